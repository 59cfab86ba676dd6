//! The audit log: records chain, read back as written, survive concurrent writers, and any
//! change to the file (a byte edited, a line removed or inserted, a write cut short) is named
//! by `verify` at the line where it happened.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Barrier};

use chrono::{Duration, Utc};
use cws_registry::audit::*;
use serde_json::{Value, json};

fn log_in(dir: &Path) -> AuditLog {
    AuditLog::new(dir.join("audit.jsonl"))
}

/// A log of `n` records: actions alternate `launch` and `create`, subjects `box-1`, `box-2`...
fn log_with(dir: &Path, n: u64) -> (AuditLog, Vec<Record>) {
    let log = log_in(dir);
    let records = (1..=n)
        .map(|i| {
            let action = if i % 2 == 1 { "launch" } else { "create" };
            log.append(
                "Ada Lovelace <ada@example.org>",
                action,
                &format!("box-{i}"),
                json!({"region": "us-east-1", "n": i}),
            )
            .expect("append")
        })
        .collect();
    (log, records)
}

fn lines(log: &AuditLog) -> Vec<String> {
    fs::read_to_string(log.path())
        .expect("read the log")
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(log: &AuditLog, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(log.path(), text).expect("write the log");
}

#[test]
fn appended_records_read_back_as_written_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let before = Utc::now();
    let (log, written) = log_with(dir.path(), 5);

    let read = log.read(&AuditFilter::default()).unwrap();
    assert_eq!(read, written);
    let seqs: Vec<u64> = read.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(read[0].prev_hash, GENESIS_HASH);
    for pair in read.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    for r in &read {
        assert_eq!(r.hash, r.expected_hash());
        assert_eq!(r.hash.len(), 64);
        assert!(r.time >= before);
    }

    // One line per record, fields in the documented order.
    let text = lines(&log);
    assert_eq!(text.len(), 5);
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&text[0])
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        [
            "seq",
            "time",
            "actor",
            "action",
            "subject",
            "details",
            "prev_hash",
            "hash"
        ]
    );

    let report = log.verify().unwrap();
    assert_eq!(
        report,
        VerifyReport {
            count: 5,
            head_hash: written[4].hash.clone(),
            first_bad: None
        }
    );
    assert!(report.is_ok());
}

#[test]
fn the_filter_selects_by_action_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let (log, written) = log_with(dir.path(), 5);
    let creates = log
        .read(&AuditFilter {
            action: Some("create".into()),
            ..Default::default()
        })
        .unwrap();
    let subjects: Vec<&str> = creates.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(subjects, ["box-2", "box-4"]);

    let since_third = log
        .read(&AuditFilter {
            since: Some(written[2].time),
            ..Default::default()
        })
        .unwrap();
    let expected: Vec<Record> = written
        .iter()
        .filter(|r| r.time >= written[2].time)
        .cloned()
        .collect();
    assert_eq!(since_third, expected);
    assert!(since_third.iter().any(|r| r.seq == 3));

    let future = log
        .read(&AuditFilter {
            since: Some(Utc::now() + Duration::days(1)),
            action: None,
        })
        .unwrap();
    assert!(future.is_empty());
}

#[test]
fn a_missing_log_is_empty_verifies_and_is_not_created_by_reading() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::in_home(&dir.path().join("home"));
    assert!(log.read(&AuditFilter::default()).unwrap().is_empty());
    let report = log.verify().unwrap();
    assert_eq!(report.count, 0);
    assert_eq!(report.head_hash, GENESIS_HASH);
    assert!(report.is_ok());
    assert!(!dir.path().join("home").exists(), "reading created nothing");

    // The first append creates the home and the file.
    let r = log.append("ada", "launch", "box", json!({})).unwrap();
    assert_eq!((r.seq, r.prev_hash.as_str()), (1, GENESIS_HASH));
    assert!(log.path().ends_with("home/audit.jsonl"));
    assert_eq!(log.verify().unwrap().count, 1);
}

#[test]
fn editing_any_byte_of_a_middle_line_is_named_at_that_line() {
    let dir = tempfile::tempdir().unwrap();
    let (log, written) = log_with(dir.path(), 5);
    let original = lines(&log);
    let middle = original[2].clone();
    for (at, byte) in middle.bytes().enumerate() {
        let mut bytes = middle.clone().into_bytes();
        bytes[at] = if byte == b'0' { b'1' } else { b'0' };
        let mut edited = original.clone();
        // A replaced byte inside a multi-byte character leaves invalid UTF-8: also a change.
        edited[2] = String::from_utf8_lossy(&bytes).into_owned();
        write_lines(&log, &edited);
        let report = log.verify().unwrap();
        let bad = report
            .first_bad
            .unwrap_or_else(|| panic!("byte {at} of line 3 edited, yet the log verified"));
        assert_eq!(bad.line, 3, "byte {at}: {bad:?}");
        assert_eq!(report.count, 2, "byte {at}");
        assert_eq!(report.head_hash, written[1].hash, "byte {at}");
    }

    // The subject changed by one letter: the hash no longer matches.
    let mut edited = original.clone();
    edited[2] = original[2].replace("\"box-3\"", "\"box-9\"");
    write_lines(&log, &edited);
    let bad = log.verify().unwrap().first_bad.unwrap();
    assert_eq!((bad.line, bad.seq), (3, Some(3)));
    assert!(bad.problem.contains("hash"), "{}", bad.problem);
}

#[test]
fn a_removed_middle_line_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (log, written) = log_with(dir.path(), 5);
    let mut edited = lines(&log);
    edited.remove(2);
    write_lines(&log, &edited);
    let report = log.verify().unwrap();
    let bad = report.first_bad.unwrap();
    assert_eq!((bad.line, bad.seq), (3, Some(4)));
    assert!(
        bad.problem.contains("seq is 4, expected 3"),
        "{}",
        bad.problem
    );
    assert_eq!(report.count, 2);
    assert_eq!(report.head_hash, written[1].hash);
}

#[test]
fn an_inserted_or_renumbered_line_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), 3);
    let original = lines(&log);

    // A copy of line 2 inserted after it.
    let mut edited = original.clone();
    edited.insert(2, original[1].clone());
    write_lines(&log, &edited);
    let bad = log.verify().unwrap().first_bad.unwrap();
    assert_eq!((bad.line, bad.seq), (3, Some(2)));

    // Line 3 removed and line 4 renumbered to fill the gap: the seqs count on, the links break.
    let (log, _) = log_with(&dir.path().join("b"), 4);
    let original = lines(&log);
    let mut edited = original.clone();
    edited.remove(2);
    edited[2] = original[3].replace("\"seq\":4", "\"seq\":3");
    write_lines(&log, &edited);
    let bad = log.verify().unwrap().first_bad.unwrap();
    assert_eq!((bad.line, bad.seq), (3, Some(3)));
    assert!(bad.problem.contains("prev_hash"), "{}", bad.problem);
}

#[test]
fn a_torn_last_line_is_reported_and_never_chained_onto() {
    let dir = tempfile::tempdir().unwrap();
    let (log, written) = log_with(dir.path(), 3);
    let mut text = fs::read(log.path()).unwrap();
    text.extend_from_slice(br#"{"seq":4,"time":"2025-"#);
    fs::write(log.path(), &text).unwrap();

    let report = log.verify().unwrap();
    let bad = report.first_bad.clone().unwrap();
    assert_eq!(bad.line, 4);
    assert!(bad.problem.contains("incomplete"), "{}", bad.problem);
    assert_eq!(report.count, 3);
    assert_eq!(report.head_hash, written[2].hash);

    let err = log.append("ada", "launch", "box", json!({})).unwrap_err();
    assert!(
        matches!(&err, AuditError::IncompleteLastLine { line: 4, path } if path == log.path()),
        "{err:?}"
    );
    assert!(err.to_string().contains("incomplete"), "{err}");
    assert_eq!(fs::read(log.path()).unwrap(), text, "nothing was written");

    let err = log.read(&AuditFilter::default()).unwrap_err();
    assert!(
        matches!(err, AuditError::IncompleteLastLine { line: 4, .. }),
        "{err:?}"
    );
}

#[test]
fn a_garbage_last_line_is_not_chained_onto() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), 2);
    let mut edited = lines(&log);
    edited.push("not json".into());
    write_lines(&log, &edited);
    let err = log.append("ada", "launch", "box", json!({})).unwrap_err();
    assert!(
        matches!(err, AuditError::Malformed { line: 3, .. }),
        "{err:?}"
    );
    let bad = log.verify().unwrap().first_bad.unwrap();
    assert_eq!((bad.line, bad.seq), (3, None));
    assert!(
        bad.problem.contains("not an audit record"),
        "{}",
        bad.problem
    );
}

#[test]
fn secrets_are_redacted_before_they_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_in(dir.path());
    let details = json!({
        "region": "us-east-1",
        "password": "hunter2",
        "nested": {"apiToken": "tok-123", "DB_PASSWORD": {"value": "pw-456"}, "name": "box"},
        "keys": [{"private_key": "-----BEGIN KEY-----"}, {"key_material": 4242424242u64}],
        "client_secret": "s3cr3t",
        "SSH_Passphrase": "open sesame",
    });
    let r = log.append("ada", "import", "ami-1", details).unwrap();
    let expected = json!({
        "region": "us-east-1",
        "password": "[redacted]",
        "nested": {"apiToken": "[redacted]", "DB_PASSWORD": "[redacted]", "name": "box"},
        "keys": [{"private_key": "[redacted]"}, {"key_material": "[redacted]"}],
        "client_secret": "[redacted]",
        "SSH_Passphrase": "[redacted]",
    });
    assert_eq!(r.details, expected);
    assert_eq!(
        log.read(&AuditFilter::default()).unwrap()[0].details,
        expected
    );
    let raw = fs::read_to_string(log.path()).unwrap();
    for secret in [
        "hunter2",
        "tok-123",
        "pw-456",
        "BEGIN KEY",
        "4242424242",
        "s3cr3t",
        "sesame",
    ] {
        assert!(!raw.contains(secret), "{secret} reached the file: {raw}");
    }
    assert_eq!(redact(json!("plain")), json!("plain"));
}

#[test]
fn numbers_and_text_of_every_kind_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_in(dir.path());
    let details = json!({
        "sum": 0.1 + 0.2,
        "big": 1e300,
        "tiny": 5e-324,
        "third": 1.0 / 3.0,
        // serde_json reads these back one bit off (without its `float_roundtrip` feature):
        // the hash must be taken over the value as read back.
        "off_by_a_bit": [1.0715660391465826e-75, -1.81996730402717e-179, -1.603964615428183e143],
        "max": u64::MAX,
        "min": i64::MIN,
        "text": "line\nbreak \u{1b}[31m \u{202e} \"quoted\" \\ é 中文",
    });
    log.append(
        "Zoë \u{1b}]0;x\u{7} <z@example.org>",
        "rate",
        "a/b\nc",
        details,
    )
    .unwrap();
    log.append("ada", "report", "a/b", json!(null)).unwrap();
    let report = log.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.count, 2);
    assert_eq!(lines(&log).len(), 2, "no raw newline inside a record");
}

#[test]
fn a_log_over_the_limit_or_not_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_in(dir.path());
    // Sparse: no blocks on disk.
    fs::File::create(log.path())
        .unwrap()
        .set_len(MAX_AUDIT_BYTES + 1)
        .unwrap();
    let refused = |e: &AuditError| {
        matches!(e, AuditError::Refused(cws_util::fs::ReadError::TooLarge { limit, .. })
            if *limit == MAX_AUDIT_BYTES)
    };
    let err = log.append("ada", "launch", "box", json!({})).unwrap_err();
    assert!(refused(&err), "{err:?}");
    assert!(err.to_string().contains("256 MiB"), "{err}");
    assert!(refused(&log.verify().unwrap_err()));
    assert!(refused(&log.read(&AuditFilter::default()).unwrap_err()));
    assert_eq!(fs::metadata(log.path()).unwrap().len(), MAX_AUDIT_BYTES + 1);

    let dir_log = AuditLog::new(dir.path().join("sub"));
    fs::create_dir(dir_log.path()).unwrap();
    let err = dir_log
        .append("ada", "launch", "box", json!({}))
        .unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Refused(cws_util::fs::ReadError::NotAFile { .. })
        ),
        "{err:?}"
    );
}

/// Writers per test and records each writes.
const WRITERS: usize = 4;
const EACH: usize = 50;

#[test]
fn concurrent_writers_with_their_own_handles_make_one_unbroken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let start = Arc::new(Barrier::new(WRITERS));
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let path = path.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                // Each writer has its own handle, as separate cws processes would.
                let log = AuditLog::new(path);
                start.wait();
                for i in 0..EACH {
                    log.append(
                        &format!("writer-{w}"),
                        "launch",
                        &format!("box-{w}-{i}"),
                        json!({"i": i}),
                    )
                    .expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread");
    }
    let log = AuditLog::new(&path);
    let report = log.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.count, (WRITERS * EACH) as u64);
    let records = log.read(&AuditFilter::default()).unwrap();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=(WRITERS * EACH) as u64).collect::<Vec<_>>());
    for w in 0..WRITERS {
        let mine: Vec<&str> = records
            .iter()
            .filter(|r| r.actor == format!("writer-{w}"))
            .map(|r| r.subject.as_str())
            .collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("box-{w}-{i}")).collect();
        assert_eq!(mine, expected, "writer {w}'s records, in its order");
    }
}
