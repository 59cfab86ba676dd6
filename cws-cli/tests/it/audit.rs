//! `cws audit [verify]`: what commands did is in `$CWS_HOME/audit.jsonl`, listed, filtered,
//! verified, and a change to the file is named by the line it is on.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::common::*;

const ADA: &str = "Ada Lovelace <ada@example.org>";

/// `cws launch python-research box` as Ada, then `cws ami create python-research box --name
/// "My Setup"` as nobody in particular; returns the image id.
fn launch_and_create(home: &Path) -> String {
    ok_json_as(home, ADA, &["--json", "launch", "python-research", "box"]);
    let v = ok_json(
        home,
        &[
            "--json",
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "My Setup",
        ],
    );
    v["ami_id"].as_str().expect("ami_id").to_string()
}

fn records(v: &Value) -> &Vec<Value> {
    v["records"].as_array().expect("records")
}

fn field<'a>(records: &'a [Value], name: &str) -> Vec<&'a str> {
    records
        .iter()
        .map(|r| r[name].as_str().expect(name))
        .collect()
}

#[test]
fn a_launch_and_an_image_are_recorded_in_order_and_verify() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let ami = launch_and_create(h);

    let listed = ok_json(h, &["--json", "audit"]);
    assert_eq!(
        listed["file"].as_str(),
        h.join("audit.jsonl").to_str(),
        "{listed}"
    );
    let recs = records(&listed);
    assert_eq!(field(recs, "action"), ["launch", "create"], "{listed}");
    assert_eq!(field(recs, "subject"), ["box", ami.as_str()], "{listed}");
    assert_eq!(field(recs, "actor"), [ADA, "unknown"], "{listed}");
    let seqs: Vec<u64> = recs.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(recs[1]["prev_hash"], recs[0]["hash"]);

    // For people: a table with the header and both records.
    let out = run(h, &["audit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT"],
        "{text}"
    );
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].starts_with('1') && rows[0].contains("launch") && rows[0].ends_with("box"));
    assert!(rows[1].starts_with('2') && rows[1].contains("create") && rows[1].ends_with(&ami));

    // Filters.
    let creates = ok_json(h, &["--json", "audit", "--action", "create"]);
    assert_eq!(field(records(&creates), "subject"), [ami.as_str()]);
    let all = ok_json(h, &["--json", "audit", "--since", "2000-01-01"]);
    assert_eq!(records(&all).len(), 2);
    let none = ok_json(h, &["--json", "audit", "--since", "9999-12-31T00:00:00Z"]);
    assert!(records(&none).is_empty(), "{none}");

    // verify: exit 0, the count and the head.
    let out = run(h, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("audit log OK: 2 records"), "{text}");
    assert!(text.contains(recs[1]["hash"].as_str().unwrap()), "{text}");
    let report = ok_json(h, &["--json", "audit", "verify"]);
    assert_eq!(report["ok"], true);
    assert_eq!(report["count"], 2);
    assert_eq!(report["head_hash"], recs[1]["hash"]);
    assert!(report["first_bad"].is_null(), "{report}");
}

#[test]
fn one_byte_edited_in_line_1_fails_verify_naming_line_1() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    launch_and_create(h);
    let path = h.join("audit.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let first_line_len = bytes.iter().position(|b| *b == b'\n').unwrap();
    let middle = first_line_len / 2;
    bytes[middle] = if bytes[middle] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, &bytes).unwrap();

    let out = run(h, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("line 1"), "{said}");
    assert!(!said.contains("audit log OK"), "{said}");

    let out = run(h, &["--json", "audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad"]["line"], 1, "{report}");
    assert_eq!(report["count"], 0, "{report}");
}

#[test]
fn concurrent_commands_leave_one_chain_that_verifies() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Seed the simulated cloud once so the processes race on their records.
    assert!(run(h, &["templates", "list"]).status.success());
    const N: usize = 4;
    let children: Vec<_> = (0..N)
        .map(|i| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("cws"));
            c.env_clear().env("CWS_HOME", h).env("HOME", h);
            c.args(["--json", "launch", "python-research", &format!("box{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stderr(&out).contains("audit log"), "{}", stderr(&out));
    }
    let report = ok_json(h, &["--json", "audit", "verify"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["count"], N as u64, "{report}");

    let listed = ok_json(h, &["--json", "audit"]);
    let recs = records(&listed);
    let seqs: Vec<u64> = recs.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=N as u64).collect::<Vec<_>>());
    let subjects: BTreeSet<&str> = field(recs, "subject").into_iter().collect();
    let expected: BTreeSet<String> = (0..N).map(|i| format!("box{i}")).collect();
    assert_eq!(
        subjects,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert!(field(recs, "action").iter().all(|a| *a == "launch"));
}

#[test]
fn a_home_without_a_log_lists_nothing_and_verifies() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let listed = ok_json(h, &["--json", "audit"]);
    assert!(records(&listed).is_empty(), "{listed}");
    let out = run(h, &["audit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("No audit records"),
        "{}",
        stdout(&out)
    );
    let out = run(h, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("audit log OK: 0 records"),
        "{}",
        stdout(&out)
    );
    assert!(!h.join("audit.jsonl").exists(), "reading created no log");
}

#[test]
fn bad_filters_are_usage_errors_that_say_what_is_accepted() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = run(h, &["audit", "--since", "last-tuesday"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("last-tuesday") && err.contains("YYYY-MM-DD") && err.contains("RFC 3339"),
        "{err}"
    );

    let out = run(h, &["audit", "--action", "lanch"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did you mean `launch`?"),
        "{}",
        stderr(&out)
    );

    let out = run(h, &["audit", "--since", "2025-01-01", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
