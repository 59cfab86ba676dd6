//! A server on an ephemeral loopback port over a store, and a small HTTP client.

use std::sync::Arc;

use cws_api::{AppState, Limits, Site};
use cws_registry::{Identity, NewToken, Registry, Scope, TokenStore};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A running server and what it serves from.
pub struct Server {
    pub url: String,
    #[allow(dead_code)] // for tests that look inside
    pub state: Arc<AppState>,
    pub tokens: Arc<dyn TokenStore>,
    #[allow(dead_code)] // kept alive with the server
    pub home: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A site on LocalCloud in `home` with the bundled templates.
pub fn site(home: &std::path::Path) -> Site {
    let cloud = cws_localcloud::LocalCloud::open(home).expect("LocalCloud");
    Site {
        env: cws_resolver::ResolveEnv {
            provider: Arc::new(cloud),
            fallbacks: cws_regions::FallbackGraph::published(),
            prices: cws_cost::PriceBook::bundled(),
            reads: None,
        },
        templates: cws_template::TemplateStore::new(cws_template::SearchPath::new(
            &[],
            None,
            Some(home),
        )),
        registry: None,
        viewer: None,
        policy: Default::default(),
        signers: Default::default(),
        walk: cws_api::questions::waves,
    }
}

impl Server {
    /// A server over a fresh SQLite registry in a temporary home.
    pub async fn sqlite() -> Server {
        Server::sqlite_with(Limits::default()).await
    }

    /// The same, with these limits.
    pub async fn sqlite_with(limits: Limits) -> Server {
        let home = tempfile::tempdir().expect("temp home");
        let store = Arc::new(
            cws_registry::SqliteRegistry::open(&home.path().join("registry.db"))
                .await
                .expect("sqlite registry"),
        );
        Server::start(home, store.clone(), store, limits).await
    }

    /// A server over these stores, in `home`.
    pub async fn start(
        home: tempfile::TempDir,
        registry: Arc<dyn Registry>,
        tokens: Arc<dyn TokenStore>,
        limits: Limits,
    ) -> Server {
        Server::start_verifying(home, registry, tokens, limits, true).await
    }

    /// The same, choosing whether imports are verified against the server's signers.
    pub async fn start_verifying(
        home: tempfile::TempDir,
        registry: Arc<dyn Registry>,
        tokens: Arc<dyn TokenStore>,
        limits: Limits,
        verify_imports: bool,
    ) -> Server {
        let mut state = AppState::new(
            site(home.path()),
            registry,
            tokens.clone(),
            limits,
            home.path().to_path_buf(),
        );
        state.audit = Some(cws_registry::audit::AuditLog::in_home(home.path()));
        state.verify_imports = verify_imports;
        let state = Arc::new(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = cws_api::router(state.clone());
        let task = tokio::spawn(async move {
            cws_api::serve(listener, router, async move {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Server {
            url,
            state,
            tokens,
            home,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// A token for `handle` (email handle@example.edu) with `scope` and `orgs`.
    pub async fn token(&self, handle: &str, scope: Scope, orgs: &[&str]) -> String {
        let identity = Identity::new(
            format!("User {handle}"),
            format!("{handle}@example.edu"),
            Some(handle.to_string()),
        )
        .expect("identity");
        self.tokens
            .create_token(&NewToken {
                identity,
                orgs: orgs.iter().map(|o| o.to_string()).collect(),
                scope,
                expires_at: None,
            })
            .await
            .expect("token")
            .secret
    }

    /// Stops the server; requests in flight finish first.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// An answer: status, headers and the body as JSON (`Value::Null` when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub json: Value,
    pub text: String,
}

/// Sends one request.
pub async fn call(method: &str, url: &str, token: Option<&str>, body: Option<Vec<u8>>) -> Answer {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let r = client.request(req).await.expect("HTTP request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Answer {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    }
}

/// GET.
pub async fn get(server: &Server, path: &str, token: Option<&str>) -> Answer {
    call("GET", &format!("{}{path}", server.url), token, None).await
}

/// A request with a JSON body.
pub async fn send(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Answer {
    call(
        method,
        &format!("{}{path}", server.url),
        token,
        Some(serde_json::to_vec(&body).expect("json")),
    )
    .await
}

/// A publish body for `publisher/slug@version` in `region` with `ami`.
pub fn publish_body(id: &str, version: &str, region: &str, ami: &str, visibility: &str) -> Value {
    serde_json::json!({
        "listing": id,
        "name": format!("Listing {id}"),
        "description": "a test listing",
        "category": "machine-learning",
        "template": "python-ml",
        "visibility": visibility,
        "version": version,
        "template_digest": "sha256:00",
        "region": region,
        "image": {"ami_id": ami, "architecture": "x86_64", "snapshot_ids": [], "size_gib": 8},
        "notes": null,
        "speedup": null,
    })
}
