//! `cws audit [verify]`: the audit trail of what cws did (`$CWS_HOME/audit.jsonl`), and
//! [`record`], which every command that changes something calls after it acted.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use cws_registry::audit::{AuditError, AuditFilter, AuditLog, Record, VerifyReport};
use serde::Serialize;

use crate::config::Config;
use crate::context::Ctx;
use crate::error::{Reported, UsageError};
use crate::output::{self, Table};
use crate::sanitize::Shown;

/// The actions commands record (`--action` also accepts any other action found in the log).
pub const ACTIONS: &[&str] = &[
    "launch",
    "copy",
    "create",
    "share",
    "deregister",
    "publish",
    "revoke",
    "rate",
    "report",
    "import",
    "channel",
];

/// `cws audit verify`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain: every record intact, none removed or inserted; exits 1 naming
    /// the first bad line
    Verify,
}

/// `cws audit`: list the audit trail (launches, copies, images created, shared and
/// deregistered, registry changes), or check it with `verify`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Only records written on or after DATE: YYYY-MM-DD (midnight UTC) or an RFC 3339 time
    /// such as 2025-01-31T09:30:00Z
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only records of this action (launch, copy, create, share, deregister, publish, revoke,
    /// rate, report, import)
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
}

pub fn run(ctx: &Ctx, args: &AuditArgs) -> Result<()> {
    let log = AuditLog::in_home(&ctx.home);
    match args.command {
        Some(AuditCommand::Verify) => verify(ctx, &log),
        None => list(ctx, &log, args),
    }
}

/// Records an action that was just done. Never fails the command (the action happened
/// already): a record that cannot be written is a `warning:` on stderr.
///
/// The actor is the registry identity (`CWS_USER` or `[user]` in the config file), else the
/// OS user (`USER`), else `unknown`. Secret-looking keys in `details` are redacted by the log.
pub fn record(ctx: &Ctx, action: &str, subject: &str, details: serde_json::Value) {
    let log = AuditLog::in_home(&ctx.home);
    if let Err(e) = log.append(&actor(ctx), action, subject, details) {
        eprintln!(
            "warning: {} {} was done, but the audit log did not record it: {}{}",
            Shown(action),
            Shown(subject),
            Shown(&e),
            append_hint(&e, &log)
        );
    }
}

/// Who acts: the registry identity, else the OS user, else `unknown`.
fn actor(ctx: &Ctx) -> String {
    if let Ok(config) = Config::load(&ctx.home)
        && let Ok(Some(identity)) = config.identity()
    {
        return identity.to_string();
    }
    match std::env::var("USER") {
        Ok(user) if !user.trim().is_empty() => user,
        _ => "unknown".to_string(),
    }
}

/// What to do about a record that could not be written, as the end of the warning line.
fn append_hint(e: &AuditError, log: &AuditLog) -> String {
    match e {
        AuditError::IncompleteLastLine { .. } | AuditError::Malformed { .. } => {
            "; `cws audit verify` shows the problem".to_string()
        }
        AuditError::Full { .. } | AuditError::Refused(_) => format!(
            "; move it aside (`mv {0} {0}.old`) to start a new log",
            Shown(log.path().display())
        ),
        _ => String::new(),
    }
}

/// Parses `--since`: `YYYY-MM-DD` (midnight UTC) or RFC 3339.
pub fn parse_since(value: &str) -> Result<DateTime<Utc>, UsageError> {
    let v = value.trim();
    if let Ok(day) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(day.and_time(NaiveTime::MIN).and_utc());
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(v) {
        return Ok(time.with_timezone(&Utc));
    }
    Err(UsageError(format!(
        "--since `{}` is not a date; use YYYY-MM-DD (e.g. 2025-01-31, from midnight UTC) or an \
         RFC 3339 time (e.g. 2025-01-31T09:30:00Z)",
        Shown(value)
    )))
}

fn list(ctx: &Ctx, log: &AuditLog, args: &AuditArgs) -> Result<()> {
    let filter = AuditFilter {
        since: args.since.as_deref().map(parse_since).transpose()?,
        action: args.action.clone(),
    };
    let all = log.read(&AuditFilter::default())?;
    if let Some(action) = &filter.action
        && !ACTIONS.contains(&action.as_str())
        && !all.iter().any(|r| &r.action == action)
    {
        let mut msg = format!(
            "--action `{}` is not an action; use one of {}",
            Shown(action),
            cws_util::suggest::quoted_list(ACTIONS.iter().copied())
        );
        if let Some(close) = cws_util::suggest::did_you_mean(action, ACTIONS.iter().copied()) {
            msg.push_str(&format!(" (did you mean `{close}`?)"));
        }
        return Err(UsageError(msg).into());
    }
    let records: Vec<&Record> = all.iter().filter(|r| filter.matches(r)).collect();

    if ctx.json {
        #[derive(Serialize)]
        struct Listed<'a> {
            file: String,
            records: &'a [&'a Record],
        }
        return output::json(&Listed {
            file: log.path().display().to_string(),
            records: &records,
        });
    }
    if records.is_empty() {
        let which = if filter == AuditFilter::default() {
            "No audit records"
        } else {
            "No audit records match"
        };
        println!("{which} in {}.", Shown(log.path().display()));
        return Ok(());
    }
    let mut table = Table::new(["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT"]);
    for r in records {
        table.row([
            r.seq.to_string(),
            r.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            r.actor.clone(),
            r.action.clone(),
            r.subject.clone(),
        ]);
    }
    table.print();
    Ok(())
}

fn verify(ctx: &Ctx, log: &AuditLog) -> Result<()> {
    let report = log.verify()?;
    if ctx.json {
        #[derive(Serialize)]
        struct Verified<'a> {
            file: String,
            ok: bool,
            #[serde(flatten)]
            report: &'a VerifyReport,
        }
        output::json(&Verified {
            file: log.path().display().to_string(),
            ok: report.is_ok(),
            report: &report,
        })?;
    } else {
        let records = |n: u64| format!("{n} record{}", if n == 1 { "" } else { "s" });
        match &report.first_bad {
            None => println!(
                "audit log OK: {}, head {}",
                records(report.count),
                report.head_hash
            ),
            Some(bad) => {
                let seq = bad.seq.map(|s| format!(" (seq {s})")).unwrap_or_default();
                println!(
                    "audit log BROKEN at line {}{seq}: {}",
                    bad.line,
                    Shown(&bad.problem)
                );
                println!(
                    "  file: {}; the {} before it verify (head {})",
                    Shown(log.path().display()),
                    records(report.count),
                    report.head_hash
                );
            }
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(Reported(1).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        audit: AuditArgs,
    }

    fn parse(args: &[&str]) -> Result<AuditArgs, clap::Error> {
        Probe::try_parse_from(std::iter::once("audit").chain(args.iter().copied())).map(|p| p.audit)
    }

    #[test]
    fn arguments_parse_as_documented() {
        let a = parse(&[]).unwrap();
        assert!(a.command.is_none() && a.since.is_none() && a.action.is_none());
        let a = parse(&["verify"]).unwrap();
        assert!(matches!(a.command, Some(AuditCommand::Verify)));
        let a = parse(&["--since", "2025-01-31", "--action", "launch"]).unwrap();
        assert_eq!(a.since.as_deref(), Some("2025-01-31"));
        assert_eq!(a.action.as_deref(), Some("launch"));
        assert!(
            parse(&["--since", "2025-01-31", "verify"]).is_err(),
            "filters do not apply to verify"
        );
    }

    #[test]
    fn since_takes_a_day_or_an_rfc3339_time() {
        assert_eq!(
            parse_since("2025-01-31").unwrap().to_rfc3339(),
            "2025-01-31T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2025-01-31T09:30:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2025-01-31T07:30:00+00:00"
        );
        for bad in [
            "yesterday",
            "2025-13-01",
            "31/01/2025",
            "",
            "2025-01-31T25:00:00Z",
        ] {
            let e = parse_since(bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("`{bad}`"))
                    && e.contains("YYYY-MM-DD")
                    && e.contains("RFC 3339"),
                "{e}"
            );
        }
        let e = parse_since("1\n\u{1b}[2J").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}') && !e.contains('\n'), "{e}");
    }
}
