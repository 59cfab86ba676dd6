//! The user guides in `docs/` and the README's tour are run: every ```console block's `$ cws ...` line runs against
//! the built binary, and what it prints (stdout and stderr, interleaved) and its exit code
//! (`? 1`, `? 3`) must match the text beneath it ([trycmd]). A guide cannot drift from the
//! binary.
//!
//! Each guide runs on its own fresh `$CWS_HOME` (LocalCloud, so ids are the same on every run),
//! its commands in order, so a tutorial can launch a workstation and then image it. `[..]`
//! in a guide stands for text that varies from run to run (the temporary home's path, a time,
//! a tier's timing), `...` for whole lines of it.
//!
//! Nothing of the developer's environment reaches `cws` (no `CWS_PROVIDER=aws`, `CWS_REGION`,
//! `AWS_PROFILE`, credentials, `RUST_LOG`, ...): trycmd can add variables to the commands it
//! runs but not clear them, so this test runs itself again in a child process whose
//! environment holds only what the guides need, and trycmd runs there.
//!
//! `TRYCMD=overwrite cargo test -p cws-cli --test it docs` rewrites the expected output in the
//! guides from what `cws` prints now (review the diff, then put back the `[..]`s), and
//! `-- trycmd=cost` runs only the guides whose path contains `cost`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the child process that actually runs the guides.
const CHILD: &str = "CWS_DOCS_CLEAN_ENV";
/// This test's name inside the `it` binary, for the child to run exactly it.
const THIS_TEST: &str = "docs::guides_run_as_written";

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .canonicalize()
        .expect("docs/ next to cws-cli/")
}

/// `docs/*.md`, sorted.
fn guides() -> Vec<PathBuf> {
    let mut guides: Vec<PathBuf> = std::fs::read_dir(docs_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    guides.sort();
    // The README's tour (its ```console blocks) is run the same way.
    guides.push(docs_dir().join("../README.md"));
    guides
}

#[test]
fn guides_run_as_written() {
    if std::env::var_os(CHILD).is_none() {
        run_again_in_a_clean_environment();
        return;
    }
    let guides = guides();
    assert!(
        guides.len() >= 6,
        "expected the index and four guides in docs/, and the README, found {guides:?}"
    );
    // `-- trycmd=NAME` runs only the guides whose path contains NAME (trycmd's own filter).
    let only: Vec<String> = std::env::args()
        .filter_map(|a| a.strip_prefix("trycmd=").map(str::to_owned))
        .collect();
    let mut failed = Vec::new();
    for guide in &guides {
        let path = guide.to_string_lossy();
        if !only.is_empty() && !only.iter().any(|name| path.contains(name.as_str())) {
            continue;
        }
        // A fresh home per guide; HOME too, so even `~/.aws` is empty.
        let scratch = tempfile::tempdir().unwrap();
        let home = scratch.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let home = home.to_str().expect("a UTF-8 temporary path").to_owned();
        let outcome = std::panic::catch_unwind(|| {
            trycmd::TestCases::new()
                .register_bin("cws", trycmd::cargo::cargo_bin("cws"))
                .env("CWS_PROVIDER", "local")
                .env("CWS_HOME", &home)
                .env("HOME", &home)
                .timeout(std::time::Duration::from_secs(120))
                .case(guide)
                .run();
        });
        if outcome.is_err() {
            failed.push(guide.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "these guides no longer match what `cws` does (diffs above): {failed:?}"
    );
}

/// Runs this test again in a child process with an empty environment plus what the guides
/// need, and fails with the child's report if a guide does not match.
fn run_again_in_a_clean_environment() {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .env_clear()
        .env(CHILD, "1")
        // Where trycmd::cargo::cargo_bin finds the binary under test.
        .env("CARGO_BIN_EXE_cws", env!("CARGO_BIN_EXE_cws"))
        .args([THIS_TEST, "--exact", "--nocapture", "--test-threads=1"]);
    // trycmd's own switches pass through: TRYCMD=overwrite|dump, and `trycmd=FILTER` arguments.
    if let Some(mode) = std::env::var_os("TRYCMD") {
        child.env("TRYCMD", mode);
    }
    child.args(
        std::env::args()
            .skip(1)
            .filter(|a| a.starts_with("trycmd=")),
    );
    let out = child.output().unwrap();
    assert!(
        out.status.success(),
        "docs/ does not match the binary ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
