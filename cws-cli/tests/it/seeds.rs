//! Every `cws` command line the user guide and the release notes quote, run as written on
//! LocalCloud, exits as the documents imply.
//!
//! Each line runs in a fresh `$CWS_HOME` (the documents' examples stand alone), after the
//! setup the document describes (a workstation `my-instance` to image, say). Three kinds of
//! adaptation, each visible in the table:
//! - lines that spend or widen access get `--yes`, the documented answer without a terminal
//!   (the documents show someone typing `y`);
//! - the documents' placeholder image id `ami-0123456789abcdef0` becomes a real one;
//! - lines for features the guide marks "Coming in v0.5.3 / v0.5.4" are listed as excluded.

use std::path::Path;

use super::common::*;

const USER: &str = "Alice Smith <alice@uni.edu>";

/// What runs before a line.
#[derive(Clone, Copy)]
enum Setup {
    Nothing,
    /// A workstation `my-instance` launched from python-ml.
    Instance,
    /// The above, imaged; `{ami}` in the line is that image.
    OwnImage,
}

struct Line {
    /// As quoted (for the failure message).
    quoted: &'static str,
    args: &'static [&'static str],
    setup: Setup,
    exit: i32,
}

const LINES: &[Line] = &[
    Line {
        quoted: "cws launch python-ml my-research",
        args: &["launch", "python-ml", "my-research"],
        setup: Setup::Nothing,
        exit: 0,
    },
    Line {
        quoted: "cws launch python-ml my-new-project",
        args: &["launch", "python-ml", "my-new-project"],
        setup: Setup::Nothing,
        exit: 0,
    },
    Line {
        quoted: "cws launch python-research my-old-project",
        args: &["launch", "python-research", "my-old-project"],
        setup: Setup::Nothing,
        exit: 0,
    },
    Line {
        quoted: "cws launch python-ml my-research --ami-strategy direct_mapping",
        args: &[
            "launch",
            "python-ml",
            "my-research",
            "--ami-strategy",
            "direct_mapping",
        ],
        setup: Setup::Nothing,
        exit: 0,
    },
    // python-ml names no Marketplace product: forcing that tier finds nothing (exit 3), as the
    // guide's "force a specific tier" implies for a template without one.
    Line {
        quoted: "cws launch python-ml my-research --ami-strategy marketplace",
        args: &[
            "launch",
            "python-ml",
            "my-research",
            "--ami-strategy",
            "marketplace",
        ],
        setup: Setup::Nothing,
        exit: 3,
    },
    Line {
        quoted: "cws launch python-ml my-research --dry-run --show-ami-resolution",
        args: &[
            "launch",
            "python-ml",
            "my-research",
            "--dry-run",
            "--show-ami-resolution",
        ],
        setup: Setup::Nothing,
        exit: 0,
    },
    Line {
        quoted: "cws launch python-ml my-research --dry-run --show-costs",
        args: &[
            "launch",
            "python-ml",
            "my-research",
            "--dry-run",
            "--show-costs",
        ],
        setup: Setup::Nothing,
        exit: 0,
    },
    // The question "continue with script provisioning?" is answered No without a terminal:
    // the image is launched.
    Line {
        quoted: "cws launch python-ml my-research --prefer-script",
        args: &["launch", "python-ml", "my-research", "--prefer-script"],
        setup: Setup::Nothing,
        exit: 0,
    },
    Line {
        quoted: "cws launch python-ml my-research --region ap-south-1",
        args: &[
            "--yes",
            "launch",
            "python-ml",
            "my-research",
            "--region",
            "ap-south-1",
        ],
        setup: Setup::Nothing,
        exit: 0,
    },
    Line {
        quoted: "cws instance status my-instance",
        args: &["instance", "status", "my-instance"],
        setup: Setup::Instance,
        exit: 0,
    },
    Line {
        quoted: "cws ami create python-ml my-instance --name \"My Python ML Setup\"",
        args: &[
            "ami",
            "create",
            "python-ml",
            "my-instance",
            "--name",
            "My Python ML Setup",
        ],
        setup: Setup::Instance,
        exit: 0,
    },
    Line {
        quoted: "cws ami create python-ml my-instance --wait-for-running",
        args: &[
            "ami",
            "create",
            "python-ml",
            "my-instance",
            "--wait-for-running",
        ],
        setup: Setup::Instance,
        exit: 0,
    },
    Line {
        quoted: "cws ami create python-ml my-instance --name \"Python ML v2.1.0\" --public",
        args: &[
            "--yes",
            "ami",
            "create",
            "python-ml",
            "my-instance",
            "--name",
            "Python ML v2.1.0",
            "--public",
        ],
        setup: Setup::Instance,
        exit: 0,
    },
    Line {
        quoted: "cws ami create python-ml my-instance --name \"Python ML with Custom Libraries\" --description \"Includes bioinformatics and visualization tools\" --public",
        args: &[
            "--yes",
            "ami",
            "create",
            "python-ml",
            "my-instance",
            "--name",
            "Python ML with Custom Libraries",
            "--description",
            "Includes bioinformatics and visualization tools",
            "--public",
        ],
        setup: Setup::Instance,
        exit: 0,
    },
    Line {
        quoted: "cws ami create-multi python-ml my-instance --regions us-east-1,us-west-2,eu-west-1",
        args: &[
            "--yes",
            "ami",
            "create-multi",
            "python-ml",
            "my-instance",
            "--regions",
            "us-east-1,us-west-2,eu-west-1",
        ],
        setup: Setup::Instance,
        exit: 0,
    },
    Line {
        quoted: "cws ami create-multi python-ml my-instance --regions us-east-1,us-west-2,eu-west-1 --name \"Global Python ML Environment\"",
        args: &[
            "--yes",
            "ami",
            "create-multi",
            "python-ml",
            "my-instance",
            "--regions",
            "us-east-1,us-west-2,eu-west-1",
            "--name",
            "Global Python ML Environment",
        ],
        setup: Setup::Instance,
        exit: 0,
    },
    Line {
        quoted: "cws ami list --template python-ml",
        args: &["ami", "list", "--template", "python-ml"],
        setup: Setup::Nothing,
        exit: 0,
    },
    Line {
        quoted: "cws ami test python-ml --all-regions",
        args: &["ami", "test", "python-ml", "--all-regions"],
        setup: Setup::Nothing,
        exit: 0,
    },
    Line {
        quoted: "cws ami test python-ml --region eu-central-1",
        args: &["ami", "test", "python-ml", "--region", "eu-central-1"],
        setup: Setup::Nothing,
        exit: 0,
    },
    Line {
        quoted: "cws ami browse --category machine-learning",
        args: &["ami", "browse", "--category", "machine-learning"],
        setup: Setup::Nothing,
        exit: 0,
    },
    Line {
        quoted: "cws ami info ami-0123456789abcdef0",
        args: &["ami", "info", "{ami}"],
        setup: Setup::OwnImage,
        exit: 0,
    },
    Line {
        quoted: "cws ami share ami-0123456789abcdef0 --community cloudworkstation",
        args: &[
            "--yes",
            "ami",
            "share",
            "{ami}",
            "--community",
            "cloudworkstation",
        ],
        setup: Setup::OwnImage,
        exit: 0,
    },
];

/// Quoted in the documents for features they mark as coming (v0.5.3 template repositories,
/// v0.5.4 configuration sync), or naming a registry of another institution.
const EXCLUDED: &[&str] = &[
    "cws launch community/bioinformatics/genomics-pipeline my-project",
    "cws launch university-edu/research-standard my-project",
    "cws launch python-ml my-research --config my-rstudio-setup --sync ~/research/data",
];

fn setup(h: &Path, s: Setup) -> Option<String> {
    match s {
        Setup::Nothing => None,
        Setup::Instance | Setup::OwnImage => {
            let out = run(h, &["launch", "python-ml", "my-instance"]);
            assert!(out.status.success(), "setup launch: {}", stderr(&out));
            if matches!(s, Setup::Instance) {
                return None;
            }
            let v = ok_json(
                h,
                &[
                    "--json",
                    "ami",
                    "create",
                    "python-ml",
                    "my-instance",
                    "--name",
                    "Setup Image",
                ],
            );
            Some(v["ami_id"].as_str().unwrap().to_string())
        }
    }
}

#[test]
fn every_command_line_the_documents_quote_exits_as_they_imply() {
    let mut failures = Vec::new();
    for line in LINES {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let ami = setup(h, line.setup);
        let args: Vec<String> = line
            .args
            .iter()
            .map(|a| match (&ami, *a) {
                (Some(id), "{ami}") => id.clone(),
                _ => a.to_string(),
            })
            .collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_as(h, USER, &refs);
        if out.status.code() != Some(line.exit) {
            failures.push(format!(
                "{}\n  expected exit {}, got {:?}\n  {}",
                line.quoted,
                line.exit,
                out.status.code(),
                stderr(&out).lines().last().unwrap_or("")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        LINES.len() + EXCLUDED.len(),
        25,
        "every quoted line is in the table"
    );
}
