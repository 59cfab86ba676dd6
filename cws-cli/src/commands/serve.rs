//! `cws serve` and `cws admin token create|list|revoke`.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use cws_registry::{NewToken, Registry, Scope, SqliteRegistry, TokenInfo, TokenStore};

use crate::cli::{ServeArgs, TokenCommand};
use crate::context::Ctx;
use crate::error::UsageError;
use crate::output::{self, Table};
use crate::sanitize::Shown;

/// A server's database: its registry and its tokens.
pub struct ServerStore {
    pub registry: Arc<dyn Registry>,
    pub tokens: Arc<dyn TokenStore>,
    /// What to call it in output (a path, or a URL without its password).
    pub label: String,
}

/// Opens (and migrates) the database `url` names: `sqlite://PATH` or `postgres://...`; the
/// default is `$CWS_HOME/registry.db`.
pub async fn open_store(ctx: &Ctx, url: Option<&str>) -> Result<ServerStore> {
    let url = url.map(str::trim).filter(|u| !u.is_empty());
    match url {
        None => sqlite(&ctx.home.join("registry.db")).await,
        Some(u) if u.starts_with("sqlite://") || u.starts_with("sqlite:") => {
            let path = u
                .strip_prefix("sqlite://")
                .or_else(|| u.strip_prefix("sqlite:"))
                .unwrap_or(u);
            if path.is_empty() {
                return Err(UsageError(
                    "--database-url sqlite:// needs a path, e.g. sqlite:///srv/cws/registry.db"
                        .into(),
                )
                .into());
            }
            sqlite(std::path::Path::new(path)).await
        }
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            let store = cws_registry::PostgresRegistry::connect(u).await?;
            let store = Arc::new(store);
            Ok(ServerStore {
                registry: store.clone(),
                tokens: store,
                label: without_password(u),
            })
        }
        Some(u) => Err(UsageError(format!(
            "--database-url `{}` is neither sqlite://PATH nor postgres://USER@HOST:PORT/DB",
            u.escape_debug()
        ))
        .into()),
    }
}

async fn sqlite(path: &std::path::Path) -> Result<ServerStore> {
    let store = SqliteRegistry::open(path)
        .await
        .with_context(|| format!("opening the registry {}", path.display()))?;
    let store = Arc::new(store);
    Ok(ServerStore {
        registry: store.clone(),
        tokens: store,
        label: format!("sqlite://{}", path.display()),
    })
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((creds, host)) if creds.contains(':') => {
            let user = creds.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// `cws serve`.
pub fn serve(ctx: &Ctx, a: &ServeArgs) -> Result<()> {
    let addr: std::net::SocketAddr = a.addr.parse().map_err(|_| {
        UsageError(format!(
            "--addr `{}` is not HOST:PORT with an IP address, e.g. 127.0.0.1:8947",
            a.addr.escape_debug()
        ))
    })?;
    let timeout = cws_util::duration::parse(&a.request_timeout).map_err(|e| {
        UsageError(format!(
            "--request-timeout: {e}; write it like `30s` or `2m`"
        ))
    })?;
    // A server has work in flight on several connections at once: use every core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = open_store(ctx, a.database_url.as_deref()).await?;
        let site = super::site(ctx, None).await?;
        let info = site.env.provider.info();
        let mut state = cws_api::AppState::new(
            site,
            store.registry.clone(),
            store.tokens.clone(),
            cws_api::Limits {
                request_timeout: timeout,
                requests_per_minute: a.rate_limit,
                ..Default::default()
            },
            ctx.home.clone(),
        );
        state.default_region = ctx.region()?;
        state.audit = Some(cws_registry::audit::AuditLog::in_home(&ctx.home));
        state.signers_text =
            match cws_util::fs::read_text_bounded(&ctx.home.join("allowed_signers"), 1024 * 1024) {
                Ok(t) => t,
                Err(e) if e.is_not_found() => String::new(),
                Err(e) => return Err(anyhow::anyhow!("allowed_signers: {e}")),
            };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let bound = listener.local_addr()?;
        eprintln!("cws serve: listening on http://{bound} (API under /api/v1, health at /healthz)");
        eprintln!(
            "  provider: {}{}",
            Shown(&info.name),
            if info.simulated {
                " (simulated EC2 — LocalCloud; no real AWS resources)"
            } else {
                ""
            }
        );
        eprintln!("  registry: {}", Shown(&store.label));
        if !bound.ip().is_loopback() {
            eprintln!(
                "warning: {bound} is reachable from other machines, and bearer tokens travel in \
                 clear over http: put a TLS proxy in front"
            );
        }
        let router = cws_api::router(Arc::new(state));
        cws_api::serve(listener, router, cws_api::shutdown_signal()).await?;
        eprintln!("cws serve: stopped (requests in flight finished)");
        Ok(())
    })
}

/// `cws admin token ...`.
pub async fn token(ctx: &Ctx, cmd: &TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Create {
            user,
            handle,
            org,
            scope,
            expires,
            database_url,
        } => {
            let identity = cws_registry::Identity::parse(user, handle.clone())
                .map_err(|e| UsageError(format!("--user: {e}")))?;
            let scope: Scope = scope
                .parse()
                .map_err(|e: cws_registry::RegistryError| UsageError(format!("--scope: {e}")))?;
            let expires_at = match expires {
                None => None,
                Some(e) => {
                    let d = cws_util::duration::parse(e).map_err(|err| {
                        UsageError(format!("--expires: {err}; write it like `90d` or `12h`"))
                    })?;
                    Some(
                        chrono::Utc::now()
                            + chrono::Duration::from_std(d).map_err(|_| {
                                UsageError(format!("--expires `{e}` is too far away"))
                            })?,
                    )
                }
            };
            let store = open_store(ctx, database_url.as_deref()).await?;
            let issued = store
                .tokens
                .create_token(&NewToken {
                    identity,
                    orgs: org.clone(),
                    scope,
                    expires_at,
                })
                .await?;
            super::audit::record(
                ctx,
                "token-create",
                &issued.info.id,
                serde_json::json!({"user": issued.info.identity.email, "scope": scope.as_str()}),
            );
            if ctx.json {
                return output::json(&serde_json::json!({
                    "token": issued.secret,
                    "id": issued.info.id,
                    "info": issued.info,
                    "database": store.label,
                }));
            }
            eprintln!(
                "Created token {} for {} <{}> (handle {}, scope {}{}{}) in {}",
                Shown(&issued.info.id),
                Shown(&issued.info.identity.name),
                Shown(&issued.info.identity.email),
                Shown(&issued.info.identity.handle),
                scope,
                if issued.info.orgs.is_empty() {
                    String::new()
                } else {
                    format!(", orgs {}", issued.info.orgs.join(", "))
                },
                issued
                    .info
                    .expires_at
                    .map(|e| format!(", expires {}", e.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default(),
                Shown(&store.label)
            );
            eprintln!(
                "It is shown once, now; only its hash is kept. Give it to its user: \
                 cws config set registry.token TOKEN"
            );
            println!("{}", issued.secret);
            Ok(())
        }
        TokenCommand::List { database_url } => {
            let store = open_store(ctx, database_url.as_deref()).await?;
            let tokens = store.tokens.list_tokens().await?;
            if ctx.json {
                return output::json(&serde_json::json!({"tokens": tokens}));
            }
            if tokens.is_empty() {
                println!(
                    "No tokens in {}. Make one: cws admin token create --user \"NAME <EMAIL>\" \
                     --scope read",
                    Shown(&store.label)
                );
                return Ok(());
            }
            let now = chrono::Utc::now();
            let mut t = Table::new(["ID", "USER", "HANDLE", "SCOPE", "ORGS", "STATE", "CREATED"]);
            for k in &tokens {
                t.row([
                    k.id.clone(),
                    format!("{} <{}>", k.identity.name, k.identity.email),
                    k.identity.handle.clone(),
                    k.scope.to_string(),
                    k.orgs.join(","),
                    state_word(k, now),
                    k.created_at.format("%Y-%m-%d").to_string(),
                ]);
            }
            t.print();
            Ok(())
        }
        TokenCommand::Revoke { id, database_url } => {
            let store = open_store(ctx, database_url.as_deref()).await?;
            let info = store.tokens.revoke_token(id).await?;
            super::audit::record(ctx, "token-revoke", &info.id, serde_json::json!({}));
            if ctx.json {
                return output::json(&info);
            }
            println!(
                "Revoked token {} of {} <{}>: it no longer works.",
                Shown(&info.id),
                Shown(&info.identity.name),
                Shown(&info.identity.email)
            );
            Ok(())
        }
    }
}

fn state_word(k: &TokenInfo, now: chrono::DateTime<chrono::Utc>) -> String {
    if let Some(r) = k.revoked_at {
        return format!("revoked {}", r.format("%Y-%m-%d"));
    }
    match k.expires_at {
        Some(e) if e <= now => format!("expired {}", e.format("%Y-%m-%d")),
        Some(e) => format!("active until {}", e.format("%Y-%m-%d")),
        None => "active".into(),
    }
}
