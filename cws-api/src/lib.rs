//! The cws REST API: an axum [`Router`](axum::Router) over the resolver, lifecycle and
//! registry crates, served by `cws serve` and embeddable in any tokio program.
//!
//! - [`questions`]: the read-only questions (`ami resolve`, `test`, `list`, `costs`,
//!   `regions fallbacks`) that the CLI and the API answer with the same code and JSON.
//! - [`router`]: the routes under `/api/v1` (see [`openapi::ApiDoc`], served at
//!   `GET /api/v1/openapi.json`), and `GET /healthz`.
//! - Auth: `Authorization: Bearer <token>`; tokens live hashed in the registry database
//!   ([`cws_registry::TokenStore`]). Scopes nest: admin ⊃ publish ⊃ rate ⊃ read. Without a
//!   token a caller may read public listings and ask read-only questions.
//! - Limits ([`Limits`]): request bodies (413), request time, requests per token per minute
//!   (429 with `Retry-After`; counted per replica), pages of at most 100 items.
//! - Consent: a request that spends or widens access changes nothing without
//!   `"confirm": true`; it answers 409 with the plan (what, where, time, cost).
//! - Long operations (image creation, copies) answer 202 with a job to poll.
//!
//! Everything but rate-limit windows and job progress lives in the database, so replicas
//! over one PostgreSQL give the same answers and exact counts.

#![deny(missing_docs)]

mod auth;
pub mod error;
mod extract;
mod jobs;
pub mod openapi;
pub mod questions;
mod registry_routes;
mod seed_routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cws_registry::{Registry, TokenStore};

pub use auth::Caller;
pub use error::{ApiError, ApiResult};
pub use jobs::{Job, JobState};
pub use questions::Site;

/// The largest request body accepted: 1 MiB (413 beyond).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The most items a list route returns per page.
pub const MAX_PAGE: usize = 100;

/// How much a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// How long a request may take (jobs run in the background and are not bound by it).
    pub request_timeout: Duration,
    /// Requests per minute per token (per client address without one); 0 for no limit.
    /// Counted per replica.
    pub requests_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: MAX_BODY_BYTES,
            request_timeout: Duration::from_secs(30),
            requests_per_minute: 1200,
        }
    }
}

/// What the server serves from.
pub struct AppState {
    /// Provider, templates, registry, policy and signers (the viewer is set per request).
    pub site: Site,
    /// The registry (also in `site`).
    pub registry: Arc<dyn Registry>,
    /// Where bearer tokens are checked.
    pub tokens: Arc<dyn TokenStore>,
    /// Limits.
    pub limits: Limits,
    /// The server's own audit log (`None`: not kept).
    pub audit: Option<cws_registry::audit::AuditLog>,
    /// The allowed-signers file as published by `GET /api/v1/trust`.
    pub signers_text: String,
    /// Where this server keeps its records of images in flight (`$CWS_HOME`).
    pub home: PathBuf,
    /// The region a request works in when it names none.
    pub default_region: String,
    /// Refuse an import whose signatures fail against the server's allowed signers (on by
    /// default; the registry conformance suite turns it off, because the store contract is
    /// "callers verify first" and its fixtures carry placeholder signatures).
    pub verify_imports: bool,
    jobs: jobs::Jobs,
    rate: auth::RateWindows,
}

impl AppState {
    /// A state serving `site` (whose `registry` must be set), checking tokens in `tokens`.
    pub fn new(
        site: Site,
        registry: Arc<dyn Registry>,
        tokens: Arc<dyn TokenStore>,
        limits: Limits,
        home: PathBuf,
    ) -> AppState {
        let mut site = site;
        site.registry = Some(registry.clone());
        site.viewer = None;
        AppState {
            site,
            registry,
            tokens,
            limits,
            audit: None,
            signers_text: String::new(),
            home,
            default_region: "us-east-1".into(),
            verify_imports: true,
            jobs: jobs::Jobs::default(),
            rate: auth::RateWindows::default(),
        }
    }

    /// The site as `caller` sees it.
    pub(crate) fn site_for(&self, caller: &Caller) -> Site {
        let mut s = self.site.clone();
        s.viewer = caller.actor();
        s
    }

    /// Appends to the server's audit log, if it keeps one. A failure is logged, not answered:
    /// the action is done.
    pub(crate) fn record(
        &self,
        caller: &Caller,
        action: &str,
        subject: &str,
        details: serde_json::Value,
    ) {
        if let Some(log) = &self.audit {
            let who = caller
                .token
                .as_ref()
                .map(|t| format!("{} <{}>", t.identity.name, t.identity.email))
                .unwrap_or_else(|| "anonymous".into());
            if let Err(e) = log.append(&who, action, subject, details) {
                tracing::error!(error = %e, action, subject, "could not append to the audit log");
            }
        }
    }
}

/// The API's routes, with its limits, auth and request ids.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .merge(seed_routes::routes())
        .merge(registry_routes::routes())
        .merge(jobs::routes())
        .route("/openapi.json", get(openapi::serve));
    let limits = state.limits;
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::rate_limit,
        ))
        .layer(middleware::from_fn_with_state(limits, guard))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; GET /api/v1/openapi.json lists them")
}

/// `GET /healthz`: the server answers and its database does.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match state.tokens.list_tokens().await {
        Ok(_) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// Refuses bodies over the limit before reading them (413) and bounds each request's time.
async fn guard(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return too_large(limits);
    }
    // A panic in a handler is a bug: answer 500 (logged) rather than dropping the connection.
    let run = std::panic::AssertUnwindSafe(next.run(req));
    let guarded = futures::FutureExt::catch_unwind(run);
    match tokio::time::timeout(limits.request_timeout, guarded).await {
        Ok(Ok(r)) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(limits),
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            ApiError::internal("the request", format!("a handler panicked: {what}")).into_response()
        }
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} s; long operations run as jobs",
                limits.request_timeout.as_secs()
            ),
        )
        .into_response(),
    }
}

fn too_large(limits: Limits) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "request bodies are limited to {} bytes",
            limits.max_body_bytes
        ),
    )
    .into_response()
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives each request an id (the caller's `x-request-id` when it is a short plain token),
/// answers with it, and logs the request with it.
async fn request_id(req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_string);
    let id = given.unwrap_or_else(|| {
        format!(
            "{:x}-{:x}",
            std::process::id(),
            REQUESTS.fetch_add(1, Ordering::Relaxed)
        )
    });
    let method = req.method().clone();
    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let started = Instant::now();
    let mut r = next.run(req).await;
    tracing::info!(
        request_id = %id,
        %method,
        path = %path.escape_debug(),
        status = r.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        peer = peer.as_deref().unwrap_or("-"),
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert(REQUEST_ID, v);
    }
    r
}

/// Serves `router` on `listener` until `shutdown` resolves; requests in flight then finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
