//! One module per command group; each parses nothing and prints its own output.

pub mod ami;
pub mod audit;
pub mod config;
pub mod instance;
pub mod launch;
pub mod lifecycle;
pub mod regions;
pub mod registry;
pub mod serve;
pub mod templates;

use anyhow::Result;
use cws_template::Architecture;

use crate::error::UsageError;

/// Parses `--arch`.
pub fn parse_arch(s: Option<&str>) -> Result<Option<Architecture>> {
    match s {
        None => Ok(None),
        Some(s) => s.parse::<Architecture>().map(Some).map_err(|_| {
            UsageError(format!(
                "--arch: unknown architecture `{s}`; use arm64 or x86_64"
            ))
            .into()
        }),
    }
}

/// Parses `--hours`.
pub fn parse_hours(s: &str) -> Result<cws_cost::Hours> {
    s.parse::<cws_cost::Hours>()
        .map_err(|e| UsageError(format!("--hours: {e}")).into())
}

/// What the shared questions (`cws_api::questions`) need, as this invocation sees it: the
/// provider, templates, the registry if there is one, the identity, policy and signers.
pub async fn site(ctx: &crate::context::Ctx, reg: Option<&registry::Reg>) -> Result<cws_api::Site> {
    let (registry, viewer) = match reg {
        Some(r) => (Some(r.store.clone()), r.actor.clone()),
        None => match registry::open_existing(ctx).await? {
            Some(r) => (Some(r.store.clone()), r.actor.clone()),
            None => (
                None,
                registry::identity(ctx)?.map(cws_registry::Actor::user),
            ),
        },
    };
    Ok(cws_api::Site {
        env: ctx.env().await?,
        templates: ctx.store.clone(),
        registry,
        viewer,
        policy: ctx.policy.clone(),
        signers: registry::allowed_signers(ctx)?,
        walk: match ctx.resolve_mode {
            crate::cli::ResolveMode::Waves => cws_api::questions::waves,
            crate::cli::ResolveMode::Eager => |r: cws_resolver::Resolver| r.eager(),
            crate::cli::ResolveMode::Sequential => |r: cws_resolver::Resolver| r.sequential(),
        },
    })
}

/// A shared question's error as the CLI reports it: the library error itself (its exit code
/// and hint follow), or a usage error naming the flag.
pub fn question_error(e: cws_api::questions::QuestionError) -> anyhow::Error {
    use cws_api::questions::QuestionError as Q;
    match e {
        Q::Template(t) => t.into(),
        Q::Registry(r) => r.into(),
        Q::Provider(p) => p.into(),
        Q::Cost(c) => c.into(),
        Q::Region(r) => r.into(),
        Q::Invalid { option, message } => {
            let flag = match option.as_str() {
                "strategy" => "--ami-strategy".to_string(),
                other => format!("--{}", other.replace('_', "-")),
            };
            UsageError(format!("{flag}: {message}")).into()
        }
        Q::Refused(why) => UsageError(format!("refused: {why}")).into(),
        other => UsageError(other.to_string()).into(),
    }
}
