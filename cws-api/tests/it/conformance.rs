//! The HTTP registry client, against a real server, passes the registry conformance suite:
//! on SQLite, and on PostgreSQL when `CWS_TEST_DATABASE_URL` names one (always in CI). And two
//! replicas over one PostgreSQL count concurrent downloads exactly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cws_api::Limits;
use cws_registry::{
    Actor, Credentials, HttpRegistry, NewToken, Registry, RegistryResult, Scope, TokenStore,
};

use crate::harness::Server;

/// Tokens minted in the server's database, one per actor, as the actor's identity, orgs and
/// admin flag. An anonymous viewer in the suite is a reader without orgs (what the stores
/// show `None`); refusals are read as an admin (the suite expects every refusal).
struct Minting {
    tokens: Arc<dyn TokenStore>,
    made: Mutex<HashMap<String, String>>,
}

impl Minting {
    async fn mint(&self, actor: &Actor, scope: Scope) -> RegistryResult<String> {
        let key = format!(
            "{}|{}|{:?}|{:?}",
            actor.identity.handle, actor.admin, actor.orgs, scope
        );
        if let Some(t) = self.made.lock().unwrap().get(&key) {
            return Ok(t.clone());
        }
        let issued = self
            .tokens
            .create_token(&NewToken {
                identity: actor.identity.clone(),
                orgs: actor.orgs.clone(),
                scope,
                expires_at: None,
            })
            .await?;
        self.made.lock().unwrap().insert(key, issued.secret.clone());
        Ok(issued.secret)
    }

    fn reader() -> Actor {
        Actor::user(
            cws_registry::Identity::new("Reader", "reader@example.edu", Some("reader".into()))
                .unwrap(),
        )
    }
}

#[async_trait]
impl Credentials for Minting {
    async fn token(&self, actor: Option<&Actor>) -> RegistryResult<Option<String>> {
        Ok(Some(match actor {
            Some(a) => {
                let scope = if a.admin {
                    Scope::Admin
                } else {
                    Scope::Publish
                };
                self.mint(a, scope).await?
            }
            None => self.mint(&Minting::reader(), Scope::Read).await?,
        }))
    }

    async fn token_for_handle(&self, handle: Option<&str>) -> RegistryResult<Option<String>> {
        let actor = match handle {
            Some(h) => Actor::user(
                cws_registry::Identity::new(
                    format!("Launcher {h}"),
                    format!("{h}@example.edu"),
                    Some(h.to_string()),
                )
                .unwrap(),
            ),
            None => Minting::reader(),
        };
        Ok(Some(self.mint(&actor, Scope::Read).await?))
    }

    async fn refusals_token(&self) -> RegistryResult<Option<String>> {
        let admin = Actor::admin(
            cws_registry::Identity::new("Auditor", "auditor@example.edu", Some("auditor".into()))
                .unwrap(),
        );
        Ok(Some(self.mint(&admin, Scope::Admin).await?))
    }
}

/// An HTTP registry in front of a server that owns its stores; the server stops when dropped.
struct Served {
    client: HttpRegistry,
    _server: Server,
}

#[async_trait]
impl Registry for Served {
    fn location(&self) -> String {
        self.client.location()
    }
    async fn publish(
        &self,
        a: &Actor,
        p: &cws_registry::Publish,
    ) -> RegistryResult<cws_registry::Published> {
        self.client.publish(a, p).await
    }
    async fn listing(
        &self,
        v: Option<&Actor>,
        id: &cws_registry::ListingId,
    ) -> RegistryResult<cws_registry::ListingDetail> {
        self.client.listing(v, id).await
    }
    async fn browse(
        &self,
        v: Option<&Actor>,
        q: &cws_registry::BrowseQuery,
    ) -> RegistryResult<Vec<cws_registry::ListingSummary>> {
        self.client.browse(v, q).await
    }
    async fn find_image(
        &self,
        v: Option<&Actor>,
        ami: &str,
    ) -> RegistryResult<Vec<cws_registry::ImageListing>> {
        self.client.find_image(v, ami).await
    }
    async fn set_channel(
        &self,
        a: &Actor,
        id: &cws_registry::ListingId,
        c: &str,
        v: &semver::Version,
    ) -> RegistryResult<()> {
        self.client.set_channel(a, id, c, v).await
    }
    async fn rate(
        &self,
        a: &Actor,
        id: &cws_registry::ListingId,
        s: u8,
        r: Option<&str>,
    ) -> RegistryResult<cws_registry::RatingSummary> {
        self.client.rate(a, id, s, r).await
    }
    async fn reviews(
        &self,
        v: Option<&Actor>,
        id: &cws_registry::ListingId,
    ) -> RegistryResult<Vec<cws_registry::Review>> {
        self.client.reviews(v, id).await
    }
    async fn record_download(&self, d: &cws_registry::Download) -> RegistryResult<()> {
        self.client.record_download(d).await
    }
    async fn report(
        &self,
        a: &Actor,
        id: &cws_registry::ListingId,
        v: &semver::Version,
        r: cws_registry::ReportReason,
        m: Option<&str>,
    ) -> RegistryResult<cws_registry::ReportOutcome> {
        self.client.report(a, id, v, r, m).await
    }
    async fn clear_reports(
        &self,
        a: &Actor,
        id: &cws_registry::ListingId,
        v: &semver::Version,
    ) -> RegistryResult<()> {
        self.client.clear_reports(a, id, v).await
    }
    async fn sign_version(
        &self,
        a: &Actor,
        id: &cws_registry::ListingId,
        v: &semver::Version,
        s: &cws_registry::trust::SignedDocument,
    ) -> RegistryResult<()> {
        self.client.sign_version(a, id, v, s).await
    }
    async fn import(
        &self,
        a: &Actor,
        e: &cws_registry::ListingExport,
    ) -> RegistryResult<cws_registry::Imported> {
        self.client.import(a, e).await
    }
    async fn refusals(&self) -> RegistryResult<Vec<cws_registry::Refusal>> {
        self.client.refusals().await
    }
    async fn revoke(
        &self,
        a: &Actor,
        id: &cws_registry::ListingId,
        v: &semver::Version,
        r: &str,
    ) -> RegistryResult<cws_registry::Revocation> {
        self.client.revoke(a, id, v, r).await
    }
}

async fn served(server: Server) -> Box<dyn Registry> {
    let creds = Arc::new(Minting {
        tokens: server.tokens.clone(),
        made: Mutex::new(HashMap::new()),
    });
    let client = HttpRegistry::new(&server.url, creds).expect("client");
    Box::new(Served {
        client,
        _server: server,
    })
}

/// A server whose imports are not verified: the suite's exports carry placeholder signatures,
/// and the store contract is that callers verify first (the server is such a caller).
async fn unverified_sqlite() -> Server {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(
        cws_registry::SqliteRegistry::open(&home.path().join("registry.db"))
            .await
            .unwrap(),
    );
    Server::start_verifying(home, store.clone(), store, unlimited(), false).await
}

fn unlimited() -> Limits {
    Limits {
        requests_per_minute: 0,
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_store_passes_the_conformance_suite_on_sqlite() {
    cws_registry::testing::conformance(|| async { served(unverified_sqlite().await).await }).await;
}

/// The PostgreSQL test database, or why there is none (a failure under CI).
pub fn database_url() -> Option<String> {
    match std::env::var("CWS_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI must provide CWS_TEST_DATABASE_URL (.ci/run starts PostgreSQL)")
        }
        _ => {
            eprintln!("skipping: CWS_TEST_DATABASE_URL is not set (no PostgreSQL to test on)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_store_passes_the_conformance_suite_on_postgres() {
    let Some(url) = database_url() else { return };
    let scratch = Arc::new(cws_registry::testing::PostgresScratch::new(&url).await);
    let s = scratch.clone();
    cws_registry::testing::conformance(move || {
        let s = s.clone();
        async move {
            let store = Arc::new(s.fresh().await);
            let home = tempfile::tempdir().unwrap();
            served(Server::start_verifying(home, store.clone(), store, unlimited(), false).await)
                .await
        }
    })
    .await;
    scratch.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_over_one_postgres_count_concurrent_downloads_exactly() {
    let Some(url) = database_url() else { return };
    let scratch = cws_registry::testing::PostgresScratch::new(&url).await;
    let schema_url = scratch.schema_url().await;
    let mut servers = Vec::new();
    for _ in 0..2 {
        let store = Arc::new(
            cws_registry::PostgresRegistry::connect(&schema_url)
                .await
                .unwrap(),
        );
        servers.push(
            Server::start(
                tempfile::tempdir().unwrap(),
                store.clone(),
                store,
                unlimited(),
            )
            .await,
        );
    }
    // A token made through one replica works on the other: tokens live in the database.
    let alice = servers[0].token("alice", Scope::Publish, &[]).await;
    let r = crate::harness::send(
        &servers[1],
        "POST",
        "/api/v1/listings",
        Some(&alice),
        crate::harness::publish_body(
            "alice/lab",
            "1.0.0",
            "us-east-1",
            "ami-0123456789abcdef0",
            "public",
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let readers: Vec<String> = futures::future::join_all((0..10).map(|i| {
        let s = &servers[i % 2];
        async move { s.token(&format!("user{i}"), Scope::Read, &[]).await }
    }))
    .await;
    let per_client = 10;
    let mut calls = Vec::new();
    for (i, t) in readers.iter().enumerate() {
        for _ in 0..per_client {
            let url = format!(
                "{}/api/v1/listings/alice/lab/versions/1.0.0/downloads",
                servers[i % 2].url
            );
            let t = t.clone();
            calls.push(async move {
                crate::harness::call("POST", &url, Some(&t), Some(b"{}".to_vec()))
                    .await
                    .status
            });
        }
    }
    let statuses = futures::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    for s in &servers {
        let d = crate::harness::get(s, "/api/v1/listings/alice/lab", Some(&alice)).await;
        assert_eq!(
            d.json["downloads"],
            readers.len() * per_client,
            "every replica counts all of them"
        );
        assert_eq!(
            d.json["versions"][0]["downloads"],
            readers.len() * per_client
        );
    }
    for s in servers {
        s.stop().await;
    }
    scratch.drop_all().await;
}
