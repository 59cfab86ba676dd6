//! Running the built `cws` binary on a temporary `$CWS_HOME`, shared by the CLI test files.

#![allow(dead_code)] // each test file uses a different subset
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

/// `cws` with a private home and an empty environment: nothing of the developer's reaches
/// it (no `CWS_PROVIDER=aws`, no AWS credentials, profiles or config files), so a test can
/// never touch a real account. `HOME` points at the private home too, so `~/.aws` is empty.
pub fn cws(home: &Path) -> Command {
    let mut c = Command::cargo_bin("cws").unwrap();
    c.env_clear().env("CWS_HOME", home).env("HOME", home);
    if let Some(path) = std::env::var_os("PATH") {
        c.env("PATH", path);
    }
    c
}

/// Runs `cws` with these arguments.
pub fn run(home: &Path, args: &[&str]) -> Output {
    cws(home).args(args).output().unwrap()
}

/// stdout parsed as exactly one JSON document.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs `cws`, requires success, and parses stdout as JSON.
pub fn ok_json(home: &Path, args: &[&str]) -> Value {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "{args:?} failed ({:?}):\n{}",
        out.status.code(),
        stderr(&out)
    );
    json(&out)
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cws` as the registry identity `user` (`NAME <EMAIL>`).
pub fn run_as(home: &Path, user: &str, args: &[&str]) -> Output {
    cws(home).env("CWS_USER", user).args(args).output().unwrap()
}

/// [`run_as`], requiring success and parsing stdout as JSON.
pub fn ok_json_as(home: &Path, user: &str, args: &[&str]) -> Value {
    let out = run_as(home, user, args);
    assert!(
        out.status.success(),
        "{args:?} as {user} failed ({:?}):\n{}",
        out.status.code(),
        stderr(&out)
    );
    json(&out)
}
