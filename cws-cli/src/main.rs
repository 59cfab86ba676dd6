//! `cws`: launch research workstations from templates with the fastest reliable image.
//!
//! A thin binary: parse, dispatch to the library crates, print, and map errors to the
//! documented exit codes (0 ok, 1 runtime/provider error, 2 invalid input, 3 no resolution).

mod cli;
mod commands;
mod config;
mod context;
mod error;
mod input_hints;
mod output;
mod questions;
mod sanitize;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::context::Ctx;
use crate::error::{Reported, exit_code};

fn main() -> ExitCode {
    reset_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.global.debug, matches!(cli.command, Command::Serve(_)));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            if e.downcast_ref::<Reported>().is_none() {
                // Provider errors carry cloud text (names, tags, messages): escape it all.
                // A template file's problems are shown one per line, each as one error.
                for (i, cause) in e.chain().enumerate() {
                    let lead = if i == 0 { "error:" } else { "  caused by:" };
                    for problem in input_hints::problems(cause) {
                        eprintln!("{lead} {}", shown_cause(problem));
                    }
                }
                if let Some(hint) = crate::error::hint(&e) {
                    eprintln!("  help: {}", sanitize::Shown(&hint));
                }
            }
            ExitCode::from(code)
        }
    }
}

/// One cause of an error as shown: escaped onto one line, except a [`UsageError`], which the
/// CLI composes itself and may end in its own `help:` line (its library parts were escaped when
/// it was made, see `input_hints::usage`), and a template error, whose own `help:` line stays
/// on a line of its own.
fn shown_cause(cause: &(dyn std::error::Error + 'static)) -> String {
    let text = cause.to_string();
    if cause.is::<crate::error::UsageError>() {
        sanitize::shown_lines(&text).into_owned()
    } else if cause.is::<cws_template::TemplateError>() {
        // A template error may end in its own "help:" line: that line break is the
        // library's; what is around it (paths, values from the file) is escaped.
        text.split("\n  help: ")
            .map(|part| sanitize::shown(part).into_owned())
            .collect::<Vec<_>>()
            .join("\n  help: ")
    } else {
        sanitize::shown(&text).into_owned()
    }
}

/// `cws ... | head` must end quietly like other Unix tools, not panic on a closed pipe.
fn reset_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(debug: bool, serving: bool) {
    // Users see cws's own warnings; the AWS SDK's chatter only with --debug (or CWS_LOG).
    let filter = if serving && !debug {
        // A server logs each request (with its id) and what went wrong.
        "warn,cws_api=info"
    } else if debug {
        // cws's own debug lines, one per provider call (`cws::provider_calls`: operation,
        // region, duration, outcome, attempts) among them; the SDK's own chatter with CWS_LOG.
        "info,cws=debug"
    } else {
        "error,cws_resolver=warn,cws_provider=warn,cws_aws=warn,cws_lifecycle=warn,cws=warn"
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CWS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Completions { shell } = &cli.command {
        let mut cmd = Cli::command();
        clap_complete::generate(*shell, &mut cmd, "cws", &mut std::io::stdout());
        return Ok(());
    }
    let ctx = Ctx::new(&cli.global)?;
    if let Command::Serve(a) = &cli.command {
        return commands::serve::serve(&ctx, a);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match &cli.command {
            Command::Launch(a) => commands::launch::run(&ctx, a).await,
            Command::Ami(c) => commands::ami::run(&ctx, c).await,
            Command::Instance(c) => commands::instance::run(&ctx, c).await,
            Command::Templates(c) => commands::templates::run(&ctx, c),
            Command::Regions(c) => commands::regions::run(&ctx, c),
            Command::Config(c) => commands::config::run(&ctx, c),
            Command::Audit(a) => commands::audit::run(&ctx, a),
            Command::Admin(crate::cli::AdminCommand::Token(t)) => {
                commands::serve::token(&ctx, t).await
            }
            Command::Serve(_) | Command::Completions { .. } => Ok(()),
        }
    })
}
