//! The provisioning script: how a script template (or an AMI template whose
//! AMI could not be found) becomes a workstation on a plain base image.
//!
//! The script is bash, run once by cloud-init as EC2 user data. In order it:
//!
//! 1. installs `packages.system` with apt-get (Ubuntu, Debian) or dnf
//!    (Amazon Linux 2023), non-interactively;
//! 2. installs miniforge into `/opt/conda` and `conda install`s
//!    `packages.conda` from conda-forge (plus any channel named as
//!    `channel::package`);
//! 3. `pip install`s `packages.pip` into conda's Python when conda is used,
//!    otherwise into a virtual environment at `/opt/cws/venv` (Ubuntu 24.04
//!    and Debian 12 forbid pip in the system Python);
//! 4. clones Spack into `/opt/spack` and `spack install`s `packages.spack`;
//! 5. runs `post_install`, then `user_data`, verbatim, each in a subshell of its own (its
//!    traps and `exit` stay its own);
//! 6. writes `/var/lib/cws/provisioned`.
//!
//! `set -euxo pipefail` stops at the first failure and logs every command to
//! the cloud-init log. Whatever happens, the script's last words are one
//! [`OUTCOME_MARKER`] line on the console (stdout, which cloud-init sends to the
//! serial console, and `/dev/console`): `ok`, or `failed` with the exit code and
//! the step that failed. EC2's console output carries it back, and
//! [`provisioning_outcome`] reads it. Package names are shell-quoted; only the slug and
//! version (whose characters are restricted by validation) appear in
//! comments. The output depends only on the template, so it can be
//! snapshot-tested and cached.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::model::Template;

/// Quotes `s` for bash when it contains anything beyond a conservative set
/// of characters that are never special.
pub fn shell_quote(s: &str) -> Cow<'_, str> {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("'{}'", s.replace('\'', r"'\''")))
    }
}

/// True for bases that use dnf rather than apt.
fn uses_dnf(base: &str) -> bool {
    base.starts_with("al20") || base.starts_with("amzn") || base.starts_with("rhel")
}

/// The text that starts the provisioning script's outcome line on the console, e.g.
/// `CWS-PROVISION-RESULT: failed exit=100 template=python-ml version=1.0.0 step=system
/// packages (apt)`.
pub const OUTCOME_MARKER: &str = "CWS-PROVISION-RESULT:";

/// How a provisioning script ended, as its outcome line on the console says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProvisioningOutcome {
    /// Every step ran.
    Succeeded,
    /// A step failed; the script stopped there.
    Failed {
        /// The step that failed (a section of the script, e.g. `pip packages`), when named.
        step: Option<String>,
        /// The failing command's exit code, when given.
        exit_code: Option<i32>,
    },
}

impl std::fmt::Display for ProvisioningOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProvisioningOutcome::Succeeded => f.write_str("succeeded"),
            ProvisioningOutcome::Failed { step, exit_code } => {
                f.write_str("failed")?;
                if let Some(step) = step {
                    write!(f, " at step `{step}`")?;
                }
                if let Some(code) = exit_code {
                    write!(f, " (exit {code})")?;
                }
                Ok(())
            }
        }
    }
}

/// The outcome a provisioning script reported on a console, if it has reported one: the last
/// [`OUTCOME_MARKER`] line wins (a console may carry an earlier boot's), wherever the line
/// starts (the console prefixes lines with timestamps and `cloud-init[PID]:`). `None` while
/// the script still runs, or when the instance was not provisioned by a cws script.
pub fn provisioning_outcome(console: &str) -> Option<ProvisioningOutcome> {
    console.lines().rev().find_map(|line| {
        let (_, rest) = line.rsplit_once(OUTCOME_MARKER)?;
        let rest = rest.trim();
        if rest == "ok" || rest.starts_with("ok ") {
            return Some(ProvisioningOutcome::Succeeded);
        }
        let fields = rest.strip_prefix("failed")?;
        if !(fields.is_empty() || fields.starts_with(' ')) {
            return None;
        }
        // `step=` comes last and may hold spaces; the other fields are single words.
        let (words, step) = match fields.split_once(" step=") {
            Some((w, step)) => (w, Some(step.trim().to_string()).filter(|s| !s.is_empty())),
            None => (fields, None),
        };
        let exit_code = words
            .split_whitespace()
            .find_map(|w| w.strip_prefix("exit="))
            .and_then(|c| c.parse().ok());
        Some(ProvisioningOutcome::Failed { step, exit_code })
    })
}

struct Script {
    out: String,
    dnf: bool,
    apt_updated: bool,
}

impl Script {
    fn line(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// A new step: a comment, and the step's name for the outcome line if it fails.
    fn section(&mut self, title: &str) {
        self.out.push('\n');
        self.line(&format!("# --- {title} ---"));
        self.line(&format!("cws_step={}", shell_quote(title)));
    }

    /// A command followed by one quoted argument per continuation line.
    fn command_with_list<'a>(&mut self, command: &str, args: impl IntoIterator<Item = &'a str>) {
        self.out.push_str(command);
        for a in args {
            // Writing to a String cannot fail.
            let _ = write!(self.out, " \\\n  {}", shell_quote(a));
        }
        self.out.push('\n');
    }

    fn os_install(&mut self, packages: &[&str]) {
        if self.dnf {
            self.command_with_list("dnf install -y", packages.iter().copied());
        } else {
            if !self.apt_updated {
                self.line("apt-get update -y");
                self.apt_updated = true;
            }
            self.command_with_list(
                "apt-get install -y --no-install-recommends",
                packages.iter().copied(),
            );
        }
    }
}

/// Renders the provisioning script of `t`.
pub(crate) fn render(t: &Template) -> String {
    let mut s = Script {
        out: String::new(),
        dnf: uses_dnf(&t.base),
        apt_updated: false,
    };
    let slug = shell_quote(&t.slug);
    let version = t.version.to_string();
    s.line("#!/bin/bash");
    s.line(&format!(
        "# cws provisioning script for template {slug} version {version} (base {})",
        shell_quote(&t.base)
    ));
    s.line("# Generated by cws from the template; runs once as EC2 user data on first boot.");
    s.line("set -euxo pipefail");
    // The outcome line, written on every exit: the console carries it back to cws. Tracing is
    // off inside, so the marker appears only in the line itself.
    s.line("cws_step=start");
    s.line("cws_outcome() {");
    s.line("  local rc=$?");
    s.line("  set +x");
    s.line("  local line");
    s.line("  if [ \"$rc\" -eq 0 ]; then");
    s.line(&format!(
        "    line=\"{OUTCOME_MARKER} ok template={slug} version={version}\""
    ));
    s.line("  else");
    s.line(&format!(
        "    line=\"{OUTCOME_MARKER} failed exit=$rc template={slug} version={version} step=$cws_step\""
    ));
    s.line("  fi");
    s.line("  { echo \"$line\" > \"${CWS_CONSOLE:-/dev/console}\"; } 2>/dev/null || true");
    s.line("  echo \"$line\" || true");
    s.line("}");
    s.line("trap cws_outcome EXIT");
    if !s.dnf {
        s.line("export DEBIAN_FRONTEND=noninteractive");
    }

    let p = &t.packages;
    if !p.system.is_empty() {
        s.section(if s.dnf {
            "system packages (dnf)"
        } else {
            "system packages (apt)"
        });
        let pkgs: Vec<&str> = p.system.iter().map(String::as_str).collect();
        s.os_install(&pkgs);
    }

    let conda = !p.conda.is_empty();
    if conda {
        s.section("conda packages (miniforge in /opt/conda)");
        s.line("if [ ! -x /opt/conda/bin/conda ]; then");
        s.line("  curl -fsSL -o /tmp/miniforge.sh \"https://github.com/conda-forge/miniforge/releases/latest/download/Miniforge3-Linux-$(uname -m).sh\"");
        s.line("  bash /tmp/miniforge.sh -b -p /opt/conda");
        s.line("  rm -f /tmp/miniforge.sh");
        s.line("fi");
        let mut channels: Vec<&str> = p
            .conda
            .iter()
            .filter_map(|pkg| pkg.split_once("::").map(|(ch, _)| ch))
            .filter(|ch| *ch != "conda-forge" && !ch.is_empty())
            .collect();
        channels.sort_unstable();
        channels.dedup();
        let mut cmd = "/opt/conda/bin/conda install -y -c conda-forge".to_string();
        for ch in channels {
            let _ = write!(cmd, " -c {}", shell_quote(ch));
        }
        s.command_with_list(&cmd, p.conda.iter().map(String::as_str));
        s.line("echo 'export PATH=/opt/conda/bin:$PATH' > /etc/profile.d/cws-conda.sh");
    }

    if !p.pip.is_empty() {
        let pip = if conda {
            s.section("pip packages (into conda's Python)");
            "/opt/conda/bin/pip"
        } else {
            s.section("pip packages (virtual environment in /opt/cws/venv)");
            if s.dnf {
                s.os_install(&["python3", "python3-pip"]);
            } else {
                s.os_install(&["python3-venv", "python3-pip"]);
            }
            s.line("python3 -m venv /opt/cws/venv");
            s.line("/opt/cws/venv/bin/pip install --upgrade pip");
            s.line("echo 'export PATH=/opt/cws/venv/bin:$PATH' > /etc/profile.d/cws-venv.sh");
            "/opt/cws/venv/bin/pip"
        };
        s.command_with_list(
            &format!("{pip} install --no-input"),
            p.pip.iter().map(String::as_str),
        );
    }

    if !p.spack.is_empty() {
        s.section("Spack packages (/opt/spack)");
        if s.dnf {
            s.os_install(&[
                "gcc",
                "gcc-c++",
                "gcc-gfortran",
                "make",
                "patch",
                "git",
                "python3",
                "unzip",
                "bzip2",
                "xz",
                "file",
            ]);
        } else {
            s.os_install(&[
                "build-essential",
                "gfortran",
                "git",
                "python3",
                "unzip",
                "bzip2",
                "xz-utils",
                "file",
                "ca-certificates",
            ]);
        }
        s.line("if [ ! -d /opt/spack ]; then");
        s.line("  git clone --depth=1 https://github.com/spack/spack.git /opt/spack");
        s.line("fi");
        s.line("set +u  # spack's setup script reads unset variables");
        s.line(". /opt/spack/share/spack/setup-env.sh");
        s.line("set -u");
        s.command_with_list("spack install", p.spack.iter().map(String::as_str));
        s.line("echo '. /opt/spack/share/spack/setup-env.sh' > /etc/profile.d/cws-spack.sh");
    }

    for (title, script) in [
        ("post_install (from the template)", &t.post_install),
        ("user_data (from the template)", &t.user_data),
    ] {
        if let Some(body) = script.as_deref().filter(|b| !b.trim().is_empty()) {
            s.section(title);
            // A subshell of its own: the body's traps (a cleanup `trap ... EXIT`) and `exit`
            // stay its own, so the outcome line and the later steps are never lost to them.
            s.line("(");
            s.out.push_str(body);
            if !body.ends_with('\n') {
                s.out.push('\n');
            }
            s.line(")");
        }
    }

    s.section("done");
    s.line("cws_state=\"${CWS_STATE_DIR:-/var/lib/cws}\"");
    s.line("mkdir -p \"$cws_state\"");
    s.line(&format!(
        "echo {} > \"$cws_state/provisioned\"",
        shell_quote(&format!("{} {version}", t.slug))
    ));
    s.line(&format!(
        "echo {}",
        shell_quote(&format!("cws: template {} {version} provisioned", t.slug))
    ));
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("numpy"), "numpy");
        assert_eq!(shell_quote("bioconda::samtools"), "bioconda::samtools");
        assert_eq!(shell_quote("numpy>=1.26"), "'numpy>=1.26'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn al2023_uses_dnf_and_spack_and_a_venv() {
        let t = crate::parse_str(
            "name: HPC\nslug: hpc\nversion: 0.3.0\nbase: al2023\npackages:\n  system: [gcc, htop]\n  pip: ['numpy>=1.26']\n  spack: ['hdf5 +mpi']\nuser_data: echo hi\n",
            "hpc.yaml",
        )
        .expect("valid template");
        let script = render(&t);
        assert!(
            script.contains("dnf install -y \\\n  gcc \\\n  htop\n"),
            "{script}"
        );
        assert!(!script.contains("apt-get") && !script.contains("DEBIAN_FRONTEND"));
        assert!(script.contains("/opt/cws/venv/bin/pip install --no-input \\\n  'numpy>=1.26'\n"));
        assert!(script.contains("spack install \\\n  'hdf5 +mpi'\n"));
        assert!(script.ends_with("echo 'cws: template hpc 0.3.0 provisioned'\n"));
        let user_data = script.find("echo hi\n").expect("user_data verbatim");
        assert!(script.find("spack install").is_some_and(|s| s < user_data));
        if let Ok(out) = std::process::Command::new("bash")
            .arg("-n")
            .arg("-c")
            .arg(&script)
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn script_template_without_packages_is_minimal() {
        let t = crate::parse_str(
            "name: Bare\nslug: bare\nversion: 1.0.0\nbase: debian-12\n",
            "bare.yaml",
        )
        .expect("valid template");
        let script = render(&t);
        assert!(!script.contains("apt-get") && !script.contains("conda"));
        assert!(script.contains("${CWS_STATE_DIR:-/var/lib/cws}"));
        assert!(script.contains("$cws_state/provisioned"));
    }

    #[test]
    fn outcome_lines_are_read_wherever_they_start_and_the_last_wins() {
        assert_eq!(
            provisioning_outcome("booting\nCloud-init v. 24.1 running\n"),
            None
        );
        let console = "[   12.3] cloud-init[811]: CWS-PROVISION-RESULT: failed exit=100 \
                       template=python-ml version=1.0.0 step=system packages (apt)\r\n\
                       [   13.0] reboot: Restarting system\n";
        assert_eq!(
            provisioning_outcome(console),
            Some(ProvisioningOutcome::Failed {
                step: Some("system packages (apt)".into()),
                exit_code: Some(100),
            })
        );
        let rebooted = format!(
            "{console}[   40.0] cloud-init[902]: CWS-PROVISION-RESULT: ok template=python-ml version=1.0.0\n"
        );
        assert_eq!(
            provisioning_outcome(&rebooted),
            Some(ProvisioningOutcome::Succeeded)
        );
        // Anything else after the marker is not an outcome.
        assert_eq!(provisioning_outcome("CWS-PROVISION-RESULT: okay\n"), None);
        assert_eq!(
            provisioning_outcome("CWS-PROVISION-RESULT: failed\n"),
            Some(ProvisioningOutcome::Failed {
                step: None,
                exit_code: None
            })
        );
        assert_eq!(
            ProvisioningOutcome::Failed {
                step: Some("pip packages".into()),
                exit_code: Some(1)
            }
            .to_string(),
            "failed at step `pip packages` (exit 1)"
        );
    }

    /// The generated script, run by bash, reports its own outcome: the step that failed and
    /// its exit code, or ok.
    #[test]
    fn a_script_reports_its_outcome_on_the_console() {
        let run = |post_install: &str| {
            let mut t = crate::parse_str(
                "slug: probe\nname: Probe\nversion: 1.0.0\nbase: ubuntu-24.04\n",
                "probe.yaml",
            )
            .expect("a minimal template");
            t.post_install = Some(post_install.to_string());
            let dir = tempfile::tempdir().expect("temporary directory");
            let console = dir.path().join("console");
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(render(&t))
                .env("CWS_CONSOLE", &console)
                .env("CWS_STATE_DIR", dir.path().join("state"))
                .output()
                .ok()?;
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let written = std::fs::read_to_string(&console).unwrap_or_default();
            Some((out.status.code(), stdout, written))
        };
        let Some((code, stdout, console)) = run("echo working\nexit 7\n") else {
            eprintln!("bash not available; skipping");
            return;
        };
        assert_eq!(code, Some(7));
        let failed = Some(ProvisioningOutcome::Failed {
            step: Some("post_install (from the template)".into()),
            exit_code: Some(7),
        });
        assert_eq!(provisioning_outcome(&stdout), failed, "{stdout}");
        assert_eq!(provisioning_outcome(&console), failed, "{console}");
        assert!(stdout.contains("template=probe version=1.0.0"), "{stdout}");
        // A cleanup trap of the template's own does not silence the outcome line.
        let (code, stdout, _) =
            run("tmp=$(mktemp -d)\ntrap 'rm -rf \"$tmp\"' EXIT\nfalse\n").expect("bash ran before");
        assert_eq!(code, Some(1));
        assert_eq!(
            provisioning_outcome(&stdout),
            Some(ProvisioningOutcome::Failed {
                step: Some("post_install (from the template)".into()),
                exit_code: Some(1),
            }),
            "{stdout}"
        );
        // Every step ran: ok, and the state file is written (here under a scratch directory).
        let (code, stdout, _) = run("echo fine\n").expect("bash ran before");
        assert_eq!(code, Some(0));
        assert_eq!(
            provisioning_outcome(&stdout),
            Some(ProvisioningOutcome::Succeeded),
            "{stdout}"
        );
        // `exit 0` ends the template's own step only: the later steps still run.
        let (code, stdout, _) = run("exit 0\n").expect("bash ran before");
        assert_eq!(code, Some(0));
        assert!(stdout.contains("provisioned"), "{stdout}");
    }

    #[test]
    fn quoted_words_survive_bash() {
        let words = [
            "plain",
            "numpy>=1.26,<2",
            "it's",
            "$(echo pwned)",
            "`x`",
            "a b",
            "*",
            "\"q\"",
            "back\\slash",
            "",
        ];
        let args: Vec<String> = words.iter().map(|w| shell_quote(w).into_owned()).collect();
        let cmd = format!("printf '%s\\n' {}", args.join(" "));
        let Ok(out) = std::process::Command::new("bash")
            .arg("-c")
            .arg(&cmd)
            .output()
        else {
            eprintln!("bash not available; skipping");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let got: Vec<&str> = text.split('\n').take(words.len()).collect();
        assert_eq!(got, words);
    }
}
