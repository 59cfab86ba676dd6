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

/// Runs `cws` on a pseudo-terminal that is its controlling terminal (so `/dev/tty` works),
/// types `input` once `wait_for` appears, and returns the exit code and what it wrote there.
#[cfg(unix)]
pub fn type_on_a_terminal(
    home: &Path,
    envs: &[(&str, &str)],
    args: &[&str],
    wait_for: &str,
    input: &[u8],
) -> (i32, String) {
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::process::CommandExt;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the pointed-to ints.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors are fresh and owned from here on.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let slave_fd = slave.as_raw_fd();
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("cws"));
    command
        .env_clear()
        .env("CWS_HOME", home)
        .env("HOME", home)
        .envs(envs.iter().copied())
        .args(args)
        .stdin(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap())
        .stdout(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec: a new session whose
    // controlling terminal is the pty.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    drop(command);
    drop(slave);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(wait_for) {
        let n = master.read(&mut buf).unwrap_or(0);
        assert!(
            n > 0,
            "cws ended without asking: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    master.write_all(input).unwrap();
    let status = child.wait().unwrap();
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&seen).into_owned(),
    )
}
