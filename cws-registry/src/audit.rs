//! The audit trail: `$CWS_HOME/audit.jsonl`, one JSON record per line for every action that
//! changed something (a launch, a copy, an image created, shared or deregistered, a listing
//! published, revoked, rated or reported, an import), chained with SHA-256 so that a record
//! changed, removed or inserted after it was written is found by [`AuditLog::verify`].
//!
//! # Format
//!
//! Each line is one [`Record`] as compact JSON, fields in this order:
//! `{"seq", "time", "actor", "action", "subject", "details", "prev_hash", "hash"}`.
//!
//! - `seq` counts from 1 and grows by exactly 1 from line to line.
//! - `prev_hash` is the previous record's `hash`; the first record's is [`GENESIS_HASH`]
//!   (64 zeros).
//! - `hash` is the lowercase hex SHA-256 of [`canonical_json`] of the record without `hash`
//!   ([`Record::expected_hash`]). It covers what the record says, not how the line spells it.
//!
//! # Writing
//!
//! [`AuditLog::append`] takes an exclusive advisory lock on a sibling lock file
//! (`audit.jsonl.lock`, std `File::lock`, which also serialises threads of one process because
//! every call opens its own handle), reads the last record from the end of the file, and adds
//! one line with a single write on a handle opened in append mode, then flushes it to disk.
//! The file is never rewritten (a write that fails part way takes back only its own bytes).
//! A last line without its newline (a write cut short by a crash) is never chained onto:
//! appending fails with [`AuditError::IncompleteLastLine`] until someone looks at the file.
//!
//! # What the chain proves
//!
//! Editing, removing or inserting a line breaks the chain at that line or the next one.
//! Whoever can write the file can still rewrite everything after some point consistently;
//! keeping [`VerifyReport::head_hash`] somewhere else detects that too.
//!
//! Secrets never enter the log: [`redact`] replaces the values of secret-looking keys in
//! `details` before a record is made.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use cws_util::fs::{ReadError, format_size};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The audit log's file name under a cws home.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// The largest audit log cws reads or appends to: 256 MiB, about a million records. A larger
/// file is refused ([`AuditError::Refused`]) and an append that would pass the limit is
/// refused ([`AuditError::Full`]); move the old log aside to start a new chain.
pub const MAX_AUDIT_BYTES: u64 = 256 * 1024 * 1024;

/// The `prev_hash` of the first record: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What [`redact`] puts in place of a secret value.
pub const REDACTED: &str = "[redacted]";

/// Words that make a `details` key secret ([`is_secret_key`]).
pub const SECRET_KEY_WORDS: &[&str] = &[
    "password",
    "passphrase",
    "secret",
    "token",
    "private_key",
    "key_material",
];

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the chain: 1 for the first record, then one more for each.
    pub seq: u64,
    /// When the record was written (UTC).
    pub time: DateTime<Utc>,
    /// Who acted (`Name <email>`, or an OS user name).
    pub actor: String,
    /// What was done: `launch`, `copy`, `create`, `share`, `deregister`, `publish`, `revoke`,
    /// `rate`, `report`, `import`.
    pub action: String,
    /// What it was done to (an instance name, an image id, a listing).
    pub subject: String,
    /// Anything else the caller recorded, with secrets [redacted](redact).
    pub details: Value,
    /// The previous record's `hash` ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// Lowercase hex SHA-256 of the record without this field ([`Record::expected_hash`]).
    pub hash: String,
}

/// The fields a record's hash covers, in the order a line holds them.
#[derive(Serialize)]
struct Unhashed<'a> {
    seq: u64,
    time: &'a DateTime<Utc>,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    details: &'a Value,
    prev_hash: &'a str,
}

/// A line as written: [`Unhashed`] and the hash.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    fields: Unhashed<'a>,
    hash: &'a str,
}

impl Record {
    fn unhashed(&self) -> Unhashed<'_> {
        Unhashed {
            seq: self.seq,
            time: &self.time,
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            details: &self.details,
            prev_hash: &self.prev_hash,
        }
    }

    /// The hash this record must carry: lowercase hex SHA-256 of [`canonical_json`] of the
    /// record as JSON without its `hash` field.
    pub fn expected_hash(&self) -> String {
        // Plain fields, a timestamp and a JSON value: converting them cannot fail.
        let value = serde_json::to_value(self.unhashed()).unwrap_or(Value::Null);
        sha256_hex(canonical_json(&value).as_bytes())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `s` has the form of a hash: 64 lowercase hex digits.
fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The canonical JSON text of a value, the bytes a record's hash is taken over.
///
/// - Object keys are sorted, at every depth, by their UTF-8 bytes (Rust's `str` order, which
///   is code point order); arrays keep their order.
/// - No whitespace anywhere.
/// - Strings are escaped as serde_json escapes them: `"` and `\` with a backslash, the control
///   characters U+0008, U+0009, U+000A, U+000C and U+000D as `\b`, `\t`, `\n`, `\f`, `\r`, every
///   other character below U+0020 as `\u00XX` (lowercase hex); everything else, non-ASCII
///   included, as itself.
/// - Numbers, `true`, `false` and `null` as serde_json writes them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether a `details` key names a secret: its letters and digits, lowercased, contain those
/// of one of [`SECRET_KEY_WORDS`] (so `password`, `DB_PASSWORD`, `apiToken`, `privateKey` and
/// `private-key` all do).
pub fn is_secret_key(key: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let key = squash(key);
    SECRET_KEY_WORDS.iter().any(|w| key.contains(&squash(w)))
}

/// `details` with the value of every secret-looking key ([`is_secret_key`]), at any depth,
/// replaced by [`REDACTED`], whatever the value was (a string, a number, an object).
/// [`AuditLog::append`] applies it to every record.
pub fn redact(details: Value) -> Value {
    match details {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = if is_secret_key(&key) {
                        Value::String(REDACTED.to_string())
                    } else {
                        redact(value)
                    };
                    (key, value)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// Which records [`AuditLog::read`] returns; the default returns all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records written at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only records of this action (exact match).
    pub action: Option<String>,
}

impl AuditFilter {
    /// Whether a record passes the filter.
    pub fn matches(&self, record: &Record) -> bool {
        self.since.is_none_or(|since| record.time >= since)
            && self.action.as_ref().is_none_or(|a| *a == record.action)
    }
}

/// What [`AuditLog::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Records that verified: all of them, or those before the first bad one.
    pub count: u64,
    /// The `hash` of the last record that verified ([`GENESIS_HASH`] when none did).
    pub head_hash: String,
    /// The first line that does not verify, if any.
    pub first_bad: Option<BadRecord>,
}

impl VerifyReport {
    /// Whether the whole log verified.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// A line of the log that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRecord {
    /// The line, counted from 1.
    pub line: u64,
    /// The `seq` the line gives, when it gives one.
    pub seq: Option<u64>,
    /// What is wrong with it.
    pub problem: String,
}

/// What can go wrong reading or writing the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The file system refused (open, lock, read, write, flush).
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        /// What was being done (`open`, `lock`, `read`, `write to`, ...).
        action: String,
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// The log is larger than [`MAX_AUDIT_BYTES`], or is not a regular file.
    #[error("the audit log {0}")]
    Refused(ReadError),
    /// One more record would take the log past [`MAX_AUDIT_BYTES`].
    #[error(
        "the audit log {} holds {size} bytes; a record of {record_bytes} bytes more would take \
         it past its limit of {}",
        path.display(),
        format_size(*limit)
    )]
    Full {
        /// The log.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The size of the record that was refused.
        record_bytes: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The log's last line has no newline at its end: a write was cut short. No record is
    /// chained onto it.
    #[error(
        "line {line} of the audit log {}, its last, is incomplete (a write was cut short); no \
         record is chained onto it",
        path.display()
    )]
    IncompleteLastLine {
        /// The log.
        path: PathBuf,
        /// The incomplete line, counted from 1.
        line: u64,
    },
    /// A line is not an audit record.
    #[error("line {line} of the audit log {} is not an audit record: {message}", path.display())]
    Malformed {
        /// The log.
        path: PathBuf,
        /// The line, counted from 1.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The record could not be encoded so that it reads back (e.g. `details` nested deeper
    /// than JSON readers accept).
    #[error("the audit record cannot be written: {message}")]
    Unrecordable {
        /// Why.
        message: String,
    },
}

/// Holds an advisory lock on the lock file; released on drop, including on early returns.
struct Unlock(File);

impl Drop for Unlock {
    fn drop(&mut self) {
        // Closing the handle releases the lock anyway; an unlock error leaves nothing to do.
        let _ = self.0.unlock();
    }
}

/// The end of the log, as [`AuditLog::append`] sees it.
enum Tail {
    /// An empty file.
    Empty,
    /// The last line has no newline.
    Incomplete,
    /// The last complete line, without its newline.
    Line(Vec<u8>),
}

/// The audit log at one path. Nothing is read or created until a method is called.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
    lock_path: PathBuf,
}

impl AuditLog {
    /// The log at `path`; its lock file is `path` with `.lock` added, beside it.
    pub fn new(path: impl Into<PathBuf>) -> AuditLog {
        let path = path.into();
        let mut lock_name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| AUDIT_FILE.into());
        lock_name.push(".lock");
        let lock_path = path.with_file_name(lock_name);
        AuditLog { path, lock_path }
    }

    /// The log of a cws home: `<home>/audit.jsonl`.
    pub fn in_home(home: &Path) -> AuditLog {
        AuditLog::new(home.join(AUDIT_FILE))
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file beside it.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    fn io(&self, action: &str, path: &Path, error: io::Error) -> AuditError {
        AuditError::Io {
            action: action.to_string(),
            path: path.to_path_buf(),
            error,
        }
    }

    /// The exclusive lock appends take.
    fn lock(&self) -> Result<Unlock, AuditError> {
        if let Some(dir) = self.lock_path.parent()
            && !dir.as_os_str().is_empty()
        {
            fs::create_dir_all(dir).map_err(|e| self.io("create the directory", dir, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| self.io("open", &self.lock_path, e))?;
        file.lock()
            .map_err(|e| self.io("lock", &self.lock_path, e))?;
        Ok(Unlock(file))
    }

    /// The shared lock reads take, so they never see half an append. `None` when the lock
    /// file cannot be opened at all (a home the reader may not write to, where nobody
    /// appends either): the log is read without it.
    fn lock_shared(&self) -> Result<Option<Unlock>, AuditError> {
        let opened = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.lock_path)
            .or_else(|_| File::open(&self.lock_path));
        let Ok(file) = opened else {
            return Ok(None);
        };
        file.lock_shared()
            .map_err(|e| self.io("lock", &self.lock_path, e))?;
        Ok(Some(Unlock(file)))
    }

    /// The whole file under a shared lock, `None` when there is no log.
    fn load(&self) -> Result<Option<Vec<u8>>, AuditError> {
        match fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("read", &self.path, e)),
            Ok(_) => {}
        }
        let _guard = self.lock_shared()?;
        match cws_util::fs::read_bytes_bounded(&self.path, MAX_AUDIT_BYTES) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(ReadError::Io { path, source }) => Err(self.io("read", &path, source)),
            Err(refused) => Err(AuditError::Refused(refused)),
        }
    }

    /// Appends one record: `details` is [redacted](redact), `seq` and `prev_hash` follow the
    /// last record, `time` is now. Returns the record as written (and as [`AuditLog::read`]
    /// returns it).
    ///
    /// Creates the file (and its directory) if needed. Fails without writing when the last
    /// line is incomplete ([`AuditError::IncompleteLastLine`]) or is not a record
    /// ([`AuditError::Malformed`]), and when the log would pass [`MAX_AUDIT_BYTES`].
    pub fn append(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        details: Value,
    ) -> Result<Record, AuditError> {
        let _guard = self.lock()?;
        // Opening a FIFO blocks until a reader appears: look at the type first.
        match fs::metadata(&self.path) {
            Ok(m) if !m.is_file() => {
                return Err(AuditError::Refused(ReadError::NotAFile {
                    path: self.path.clone(),
                }));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io("open", &self.path, e)),
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| self.io("open", &self.path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| self.io("open", &self.path, e))?;
        if !meta.is_file() {
            return Err(AuditError::Refused(ReadError::NotAFile {
                path: self.path.clone(),
            }));
        }
        let len = meta.len();
        if len > MAX_AUDIT_BYTES {
            return Err(AuditError::Refused(ReadError::TooLarge {
                path: self.path.clone(),
                limit: MAX_AUDIT_BYTES,
            }));
        }

        let tail = read_tail(&mut file, len).map_err(|e| self.io("read", &self.path, e))?;
        let (seq, prev_hash) = match tail {
            Tail::Empty => (1, GENESIS_HASH.to_string()),
            Tail::Incomplete => {
                let complete =
                    count_newlines(&mut file, len).map_err(|e| self.io("read", &self.path, e))?;
                return Err(AuditError::IncompleteLastLine {
                    path: self.path.clone(),
                    line: complete + 1,
                });
            }
            Tail::Line(bytes) => {
                let malformed = |file: &mut File, message: String| match count_newlines(file, len) {
                    Ok(line) => AuditError::Malformed {
                        path: self.path.clone(),
                        line,
                        message,
                    },
                    Err(e) => self.io("read", &self.path, e),
                };
                let last: Record = match serde_json::from_slice(&bytes) {
                    Ok(r) => r,
                    Err(e) => return Err(malformed(&mut file, e.to_string())),
                };
                if !is_hash(&last.hash) {
                    return Err(malformed(
                        &mut file,
                        "its hash is not 64 lowercase hex digits".into(),
                    ));
                }
                let Some(seq) = last.seq.checked_add(1) else {
                    return Err(malformed(
                        &mut file,
                        "its seq is the largest possible".into(),
                    ));
                };
                (seq, last.hash)
            }
        };

        // The line holds `details` as serialised; the hash is taken over the value that text
        // reads back as, which is what `verify` will see (a float may not survive the round
        // trip bit for bit; the text is what is kept).
        let details = redact(details);
        let details_text = details.to_string();
        let details_read: Value =
            serde_json::from_str(&details_text).map_err(|e| AuditError::Unrecordable {
                message: format!("its details do not read back as JSON: {e}"),
            })?;
        let mut record = Record {
            seq,
            time: Utc::now(),
            actor: actor.to_string(),
            action: action.to_string(),
            subject: subject.to_string(),
            details: details_read,
            prev_hash,
            hash: String::new(),
        };
        record.hash = record.expected_hash();
        let mut fields = record.unhashed();
        fields.details = &details;
        let mut line = serde_json::to_string(&Line {
            fields,
            hash: &record.hash,
        })
        .map_err(|e| AuditError::Unrecordable {
            message: e.to_string(),
        })?;
        line.push('\n');

        let record_bytes = line.len() as u64;
        if len.saturating_add(record_bytes) > MAX_AUDIT_BYTES {
            return Err(AuditError::Full {
                path: self.path.clone(),
                size: len,
                record_bytes,
                limit: MAX_AUDIT_BYTES,
            });
        }
        if let Err(e) = file.write_all(line.as_bytes()) {
            // A write cut short (a full disk) would leave an incomplete last line that blocks
            // every later record: take back what this call added, if the file lets us.
            let _ = file.set_len(len);
            return Err(self.io("write to", &self.path, e));
        }
        file.sync_data()
            .map_err(|e| self.io("flush", &self.path, e))?;
        if len == 0 {
            sync_dir(&self.path);
        }
        Ok(record)
    }

    /// The records that pass `filter`, oldest first. No file is no records.
    ///
    /// Every line must be a record: one that is not is [`AuditError::Malformed`], an
    /// incomplete last line [`AuditError::IncompleteLastLine`]. The chain is not checked
    /// ([`AuditLog::verify`] does).
    pub fn read(&self, filter: &AuditFilter) -> Result<Vec<Record>, AuditError> {
        let Some(bytes) = self.load()? else {
            return Ok(Vec::new());
        };
        let (lines, complete) = split_lines(&bytes);
        let count = lines.len();
        let mut records = Vec::new();
        for (i, raw) in lines.into_iter().enumerate() {
            let line = i as u64 + 1;
            if !complete && i + 1 == count {
                return Err(AuditError::IncompleteLastLine {
                    path: self.path.clone(),
                    line,
                });
            }
            let record: Record =
                serde_json::from_slice(raw).map_err(|e| AuditError::Malformed {
                    path: self.path.clone(),
                    line,
                    message: if raw.is_empty() {
                        "the line is empty".to_string()
                    } else {
                        e.to_string()
                    },
                })?;
            if filter.matches(&record) {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// Checks the whole chain: every line is a record, `seq` counts 1, 2, 3, ..., every
    /// `prev_hash` is the hash of the record before it ([`GENESIS_HASH`] for the first), and
    /// every `hash` is [`Record::expected_hash`]. Stops at the first line that fails. No file
    /// verifies, with no records.
    ///
    /// A broken chain is not an error: it is [`VerifyReport::first_bad`]. Errors are a log
    /// that cannot be read at all.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        let mut report = VerifyReport {
            count: 0,
            head_hash: GENESIS_HASH.to_string(),
            first_bad: None,
        };
        let Some(bytes) = self.load()? else {
            return Ok(report);
        };
        let (lines, complete) = split_lines(&bytes);
        let total = lines.len();
        for (i, raw) in lines.into_iter().enumerate() {
            let line = i as u64 + 1;
            let bad = |seq: Option<u64>, problem: String| BadRecord { line, seq, problem };
            let problem = if !complete && i + 1 == total {
                Some(bad(
                    claimed_seq(raw),
                    "the line is incomplete: it has no newline at its end (a write was cut short)"
                        .to_string(),
                ))
            } else if raw.is_empty() {
                Some(bad(None, "the line is empty".to_string()))
            } else {
                match serde_json::from_slice::<Record>(raw) {
                    Err(e) => Some(bad(
                        claimed_seq(raw),
                        format!("the line is not an audit record: {e}"),
                    )),
                    Ok(record) => match check(&record, &report, line) {
                        Some(p) => Some(bad(Some(record.seq), p)),
                        None => {
                            report.count += 1;
                            report.head_hash = record.hash;
                            None
                        }
                    },
                }
            };
            if problem.is_some() {
                report.first_bad = problem;
                break;
            }
        }
        Ok(report)
    }
}

/// What is wrong with a parsed record following the verified part of the chain, if anything.
fn check(record: &Record, so_far: &VerifyReport, line: u64) -> Option<String> {
    let expected_seq = so_far.count + 1;
    if record.seq != expected_seq {
        return Some(format!(
            "seq is {}, expected {expected_seq} (a record was removed, inserted or renumbered)",
            record.seq
        ));
    }
    if record.prev_hash != so_far.head_hash {
        return Some(if so_far.count == 0 {
            "prev_hash of the first record is not the genesis value (64 zeros)".to_string()
        } else {
            format!(
                "prev_hash does not match the hash of the record before it (line {})",
                line - 1
            )
        });
    }
    if record.hash != record.expected_hash() {
        return Some(
            "hash does not match the record's content: the record was changed after it was \
             written"
                .to_string(),
        );
    }
    None
}

/// The `seq` a line that is not a valid record still gives, if any.
fn claimed_seq(raw: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Value>(raw)
        .ok()?
        .get("seq")?
        .as_u64()
}

/// The lines of the file without their newlines, and whether the last one had its newline.
fn split_lines(bytes: &[u8]) -> (Vec<&[u8]>, bool) {
    if bytes.is_empty() {
        return (Vec::new(), true);
    }
    match bytes.strip_suffix(b"\n") {
        Some(body) => (body.split(|b| *b == b'\n').collect(), true),
        None => (bytes.split(|b| *b == b'\n').collect(), false),
    }
}

/// How much of the file is read at a time from its end.
const TAIL_CHUNK: u64 = 8 * 1024;

/// The last line of a file of `len` bytes, read backwards from its end.
fn read_tail(file: &mut File, len: u64) -> io::Result<Tail> {
    if len == 0 {
        return Ok(Tail::Empty);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        return Ok(Tail::Incomplete);
    }
    let mut line: Vec<u8> = Vec::new();
    let mut start = len - 1;
    while start > 0 {
        let n = TAIL_CHUNK.min(start);
        let from = start - n;
        let mut chunk = vec![0u8; n as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        let newline = chunk.iter().rposition(|b| *b == b'\n');
        if let Some(pos) = newline {
            chunk.drain(..=pos);
        }
        chunk.extend_from_slice(&line);
        line = chunk;
        if newline.is_some() {
            break;
        }
        start = from;
    }
    Ok(Tail::Line(line))
}

/// How many newlines the first `len` bytes of the file hold (the number of complete lines).
fn count_newlines(file: &mut File, len: u64) -> io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = io::BufReader::new(file.take(len));
    let mut buf = [0u8; 64 * 1024];
    let mut count = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(count);
        }
        count += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
}

/// Flushes the directory entry of a file just created; best effort.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_has_no_whitespace() {
        let v = json!({"b": [3, {"z": 1, "a": null}], "a": {"y": true, "x": "s"}, "é": 1.5});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"x":"s","y":true},"b":[3,{"a":null,"z":1}],"é":1.5}"#
        );
    }

    #[test]
    fn canonical_strings_are_escaped_as_serde_json_escapes_them() {
        let mut s: String = (0u32..0x80).filter_map(char::from_u32).collect();
        s.push_str("é中文\u{202e}\u{2028}😀");
        let mine = canonical_json(&Value::String(s.clone()));
        assert_eq!(mine, serde_json::to_string(&s).unwrap());
    }

    #[test]
    fn secret_keys_are_recognised_in_any_case_and_spelling() {
        for k in [
            "password",
            "DB_PASSWORD",
            "apiToken",
            "privateKey",
            "private-key",
            "key_material",
            "Passphrase",
            "client_secret",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["key_name", "region", "instance", "public_key", "name"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn tail_reading_finds_the_last_line_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let long = "x".repeat(3 * TAIL_CHUNK as usize + 17);
        fs::write(&p, format!("first\n{long}\n")).unwrap();
        let mut f = File::open(&p).unwrap();
        let len = f.metadata().unwrap().len();
        match read_tail(&mut f, len).unwrap() {
            Tail::Line(l) => assert_eq!(l, long.as_bytes()),
            _ => panic!("expected a line"),
        }
        fs::write(&p, "only\n").unwrap();
        let mut f = File::open(&p).unwrap();
        match read_tail(&mut f, 5).unwrap() {
            Tail::Line(l) => assert_eq!(l, b"only"),
            _ => panic!("expected a line"),
        }
        assert!(matches!(read_tail(&mut f, 0).unwrap(), Tail::Empty));
        assert!(matches!(read_tail(&mut f, 3).unwrap(), Tail::Incomplete));
        assert_eq!(count_newlines(&mut f, 5).unwrap(), 1);
    }
}
