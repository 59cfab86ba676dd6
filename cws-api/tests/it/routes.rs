//! The routes through real HTTP: auth and scopes, visibility, consent, jobs, limits.

use cws_api::Limits;
use cws_registry::Scope;
use serde_json::json;

use crate::harness::{Server, call, get, publish_body, send};

#[tokio::test]
async fn health_and_unknown_routes_answer_json() {
    let s = Server::sqlite().await;
    let h = get(&s, "/healthz", None).await;
    assert_eq!((h.status, h.json["status"].as_str()), (200, Some("ok")));
    assert!(
        h.headers.contains_key("x-request-id"),
        "every answer names its request"
    );
    let n = get(&s, "/api/v1/nope", None).await;
    assert_eq!(n.status, 404);
    assert_eq!(n.json["error"]["code"], "not_found");
    s.stop().await;
}

/// Every route that changes something, with a body that would be valid.
fn mutating_routes() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    vec![
        (
            "POST",
            "/api/v1/listings",
            publish_body(
                "alice/lab",
                "1.0.0",
                "us-east-1",
                "ami-0123456789abcdef0",
                "public",
            ),
        ),
        (
            "PUT",
            "/api/v1/listings/alice/lab/rating",
            json!({"stars": 5}),
        ),
        (
            "POST",
            "/api/v1/listings/alice/lab/reports",
            json!({"version": "1.0.0", "reason": "security"}),
        ),
        (
            "DELETE",
            "/api/v1/listings/alice/lab/versions/1.0.0/reports",
            json!({}),
        ),
        (
            "POST",
            "/api/v1/listings/alice/lab/versions/1.0.0/revoke",
            json!({"reason": "bad"}),
        ),
        (
            "POST",
            "/api/v1/listings/alice/lab/versions/1.0.0/downloads",
            json!({}),
        ),
        (
            "PUT",
            "/api/v1/listings/alice/lab/channels/stable",
            json!({"version": "1.0.0"}),
        ),
        (
            "PUT",
            "/api/v1/listings/alice/lab/versions/1.0.0/signature",
            json!({"revision": 1, "document": "{}", "signature": "x"}),
        ),
        ("POST", "/api/v1/imports", json!({})),
        (
            "POST",
            "/api/v1/ami/copy-region",
            json!({"ami": "ami-0123456789abcdef0", "to": "us-west-2", "confirm": true}),
        ),
        (
            "POST",
            "/api/v1/ami/create",
            json!({"template": "python-ml", "instance": "i-0123456789abcdef0", "confirm": true}),
        ),
        (
            "POST",
            "/api/v1/ami/share",
            json!({"ami": "ami-0123456789abcdef0", "public": true, "confirm": true}),
        ),
    ]
}

#[tokio::test]
async fn every_mutating_route_is_401_without_a_token_and_changes_nothing() {
    let s = Server::sqlite().await;
    let alice = s.token("alice", Scope::Publish, &[]).await;
    let r = send(
        &s,
        "POST",
        "/api/v1/listings",
        Some(&alice),
        publish_body(
            "alice/lab",
            "1.0.0",
            "us-east-1",
            "ami-0123456789abcdef0",
            "public",
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let before = get(&s, "/api/v1/listings/alice/lab", Some(&alice))
        .await
        .json;
    let images_before = get(
        &s,
        "/api/v1/ami/list?template=python-ml&region=us-west-2",
        None,
    )
    .await
    .json;
    for (method, path, body) in mutating_routes() {
        let r = send(&s, method, path, None, body).await;
        assert_eq!(r.status, 401, "{method} {path} without a token: {}", r.text);
        assert_eq!(r.json["error"]["code"], "unauthorized", "{method} {path}");
        let bad = send(&s, method, path, Some("cws_tnope_0000"), json!({})).await;
        assert_eq!(bad.status, 401, "{method} {path} with an unknown token");
    }
    assert_eq!(
        get(&s, "/api/v1/listings/alice/lab", Some(&alice))
            .await
            .json,
        before
    );
    assert_eq!(
        get(
            &s,
            "/api/v1/ami/list?template=python-ml&region=us-west-2",
            None
        )
        .await
        .json,
        images_before
    );
    s.stop().await;
}

#[tokio::test]
async fn scopes_nest_and_a_smaller_one_is_403() {
    let s = Server::sqlite().await;
    let reader = s.token("rita", Scope::Read, &[]).await;
    let rater = s.token("ray", Scope::Rate, &[]).await;
    let alice = s.token("alice", Scope::Admin, &[]).await;
    let r = send(
        &s,
        "POST",
        "/api/v1/listings",
        Some(&alice),
        publish_body(
            "alice/lab",
            "1.0.0",
            "us-east-1",
            "ami-0123456789abcdef0",
            "public",
        ),
    )
    .await;
    assert_eq!(r.status, 201, "admin includes publish: {}", r.text);
    let r = send(
        &s,
        "PUT",
        "/api/v1/listings/alice/lab/rating",
        Some(&reader),
        json!({"stars": 4}),
    )
    .await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let r = send(
        &s,
        "PUT",
        "/api/v1/listings/alice/lab/rating",
        Some(&rater),
        json!({"stars": 4}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["count"], 1);
    let r = send(
        &s,
        "POST",
        "/api/v1/listings",
        Some(&rater),
        publish_body(
            "ray/x",
            "1.0.0",
            "us-east-1",
            "ami-0123456789abcdef1",
            "public",
        ),
    )
    .await;
    assert_eq!(r.status, 403, "rate does not include publish");
    s.stop().await;
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_401() {
    let s = Server::sqlite().await;
    let identity = cws_registry::Identity::new("Old", "old@example.edu", None).unwrap();
    let expired = s
        .tokens
        .create_token(&cws_registry::NewToken {
            identity: identity.clone(),
            orgs: vec![],
            scope: Scope::Admin,
            expires_at: Some(chrono::Utc::now() + chrono::Duration::milliseconds(1)),
        })
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = get(&s, "/api/v1/whoami", Some(&expired.secret)).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let t = s.token("bob", Scope::Read, &[]).await;
    let who = get(&s, "/api/v1/whoami", Some(&t)).await;
    assert_eq!(who.json["identity"]["handle"], "bob");
    let id = who.json["id"].as_str().unwrap().to_string();
    s.tokens.revoke_token(&id).await.unwrap();
    assert_eq!(get(&s, "/api/v1/whoami", Some(&t)).await.status, 401);
    s.stop().await;
}

#[tokio::test]
async fn private_listings_are_404_to_others_and_institutional_ones_visible_in_the_org_only() {
    visibility_through_http(Server::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_visibility_holds_on_postgres() {
    let Some(url) = crate::conformance::database_url() else {
        return;
    };
    let scratch = cws_registry::testing::PostgresScratch::new(&url).await;
    let store = std::sync::Arc::new(scratch.fresh().await);
    let server = Server::start(
        tempfile::tempdir().unwrap(),
        store.clone(),
        store,
        Limits::default(),
    )
    .await;
    visibility_through_http(server).await;
    scratch.drop_all().await;
}

async fn visibility_through_http(s: Server) {
    let alice = s.token("alice", Scope::Publish, &["uni-example"]).await;
    let bob = s.token("bob", Scope::Read, &[]).await;
    let member = s.token("mia", Scope::Read, &["uni-example"]).await;
    for (id, vis, ami) in [
        ("alice/secret", "private", "ami-0000000000000000a"),
        (
            "alice/inst",
            "institutional:uni-example",
            "ami-0000000000000000b",
        ),
        ("alice/comm", "community:astro", "ami-0000000000000000c"),
        ("alice/pub", "public", "ami-0000000000000000d"),
    ] {
        let r = send(
            &s,
            "POST",
            "/api/v1/listings",
            Some(&alice),
            publish_body(id, "1.0.0", "us-east-1", ami, vis),
        )
        .await;
        assert_eq!(r.status, 201, "{id}: {}", r.text);
    }
    let status = |r: crate::harness::Answer| r.status;
    assert_eq!(
        status(get(&s, "/api/v1/listings/alice/secret", Some(&alice)).await),
        200
    );
    assert_eq!(
        status(get(&s, "/api/v1/listings/alice/secret", Some(&bob)).await),
        404
    );
    assert_eq!(
        status(get(&s, "/api/v1/listings/alice/secret", None).await),
        404
    );
    assert_eq!(
        status(get(&s, "/api/v1/listings/alice/inst", Some(&member)).await),
        200
    );
    assert_eq!(
        status(get(&s, "/api/v1/listings/alice/inst", Some(&bob)).await),
        404
    );
    assert_eq!(
        status(get(&s, "/api/v1/listings/alice/comm", Some(&bob)).await),
        200
    );
    assert_eq!(
        status(get(&s, "/api/v1/listings/alice/comm", None).await),
        404,
        "community needs a token"
    );
    assert_eq!(
        status(get(&s, "/api/v1/listings/alice/pub", None).await),
        200
    );
    let ids = |v: &serde_json::Value| -> Vec<String> {
        let mut x: Vec<String> = v["listings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_string())
            .collect();
        x.sort();
        x
    };
    assert_eq!(
        ids(&get(&s, "/api/v1/listings", None).await.json),
        ["alice/pub"]
    );
    assert_eq!(
        ids(&get(&s, "/api/v1/listings", Some(&bob)).await.json),
        ["alice/comm", "alice/pub"]
    );
    assert_eq!(
        ids(&get(&s, "/api/v1/listings", Some(&member)).await.json),
        ["alice/comm", "alice/inst", "alice/pub"]
    );
    // A download of a listing the caller cannot see is not counted.
    let r = send(
        &s,
        "POST",
        "/api/v1/listings/alice/secret/versions/1.0.0/downloads",
        Some(&bob),
        json!({}),
    )
    .await;
    assert_eq!(r.status, 404);
    let d = get(&s, "/api/v1/listings/alice/secret", Some(&alice)).await;
    assert_eq!(d.json["downloads"], 0);
    // Refusals are shown only for listings the caller may see.
    let r = send(
        &s,
        "POST",
        "/api/v1/listings/alice/secret/versions/1.0.0/revoke",
        Some(&alice),
        json!({"reason": "leaked key"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = |v: &serde_json::Value| v["refusals"].as_array().unwrap().len();
    assert_eq!(
        seen(&get(&s, "/api/v1/refusals", Some(&alice)).await.json),
        1
    );
    assert_eq!(seen(&get(&s, "/api/v1/refusals", Some(&bob)).await.json), 0);
    assert_eq!(seen(&get(&s, "/api/v1/refusals", None).await.json), 0);
    // The institution's trust: its signers and policy, for anyone.
    let t = get(&s, "/api/v1/trust", None).await;
    assert_eq!(t.status, 200);
    assert!(
        t.json["allowed_signers"].is_string() && t.json["policy"].is_object(),
        "{}",
        t.text
    );
    s.stop().await;
}

#[tokio::test]
async fn a_copy_without_confirm_changes_nothing_and_answers_the_plan() {
    let s = Server::sqlite().await;
    let alice = s.token("alice", Scope::Publish, &[]).await;
    let list = get(
        &s,
        "/api/v1/ami/list?template=python-ml&region=us-east-1",
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let ami = list.json["images"][0]["id"]
        .as_str()
        .expect("a seeded image")
        .to_string();
    let target = || {
        get(
            &s,
            "/api/v1/ami/list?template=python-ml&region=eu-west-1",
            None,
        )
    };
    let before = target().await.json["images"].as_array().map(Vec::len);
    let r = send(
        &s,
        "POST",
        "/api/v1/ami/copy-region",
        Some(&alice),
        json!({"ami": ami, "from": "us-east-1", "to": "eu-west-1"}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json["error"]["code"], "confirmation_required");
    assert_eq!(r.json["plan"]["action"], "copy");
    assert_eq!(r.json["plan"]["target_region"], "eu-west-1");
    assert!(r.json["plan"]["estimated_cost_usd"].as_f64().unwrap() > 0.0);
    assert!(r.json["plan"]["estimated_seconds"].as_u64().unwrap() > 0);
    assert_eq!(
        target().await.json["images"].as_array().map(Vec::len),
        before,
        "nothing copied"
    );

    let r = send(
        &s,
        "POST",
        "/api/v1/ami/copy-region",
        Some(&alice),
        json!({"ami": ami, "from": "us-east-1", "to": "eu-west-1", "confirm": true}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let job = r.json["job"].as_str().unwrap().to_string();
    assert_eq!(
        r.headers["location"],
        format!("/api/v1/jobs/{job}").as_str()
    );
    let mut state = serde_json::Value::Null;
    for _ in 0..200 {
        state = get(&s, &format!("/api/v1/jobs/{job}"), Some(&alice))
            .await
            .json;
        if state["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(state["state"], "succeeded", "{state}");
    assert_eq!(state["result"]["source_ami"], ami.as_str());
    assert_eq!(state["result"]["region"], "eu-west-1");
    let other = s.token("bob", Scope::Read, &[]).await;
    assert_eq!(
        get(&s, &format!("/api/v1/jobs/{job}"), Some(&other))
            .await
            .status,
        404,
        "a job is its owner's"
    );
    let after = target().await.json["images"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(after, before.unwrap_or(0) + 1, "one copy made");
    s.stop().await;
}

#[tokio::test]
async fn share_and_create_without_confirm_answer_409_with_the_plan() {
    let s = Server::sqlite().await;
    let alice = s.token("alice", Scope::Publish, &[]).await;
    let list = get(
        &s,
        "/api/v1/ami/list?template=python-ml&region=us-east-1",
        None,
    )
    .await;
    let ami = list.json["images"][0]["id"].as_str().unwrap().to_string();
    let r = send(
        &s,
        "POST",
        "/api/v1/ami/share",
        Some(&alice),
        json!({"ami": ami, "public": true}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json["plan"]["action"], "share");
    assert_eq!(r.json["plan"]["grant"][0], "everyone (public)");
    let r = send(&s, "POST", "/api/v1/ami/create", Some(&alice),
        json!({"template": "python-ml", "instance": "i-0123456789abcdef0", "regions": ["us-west-2"]})).await;
    // With no such instance the plan cannot be made: the error says so, and nothing is made.
    assert!(
        r.status == 409 || r.status == 404 || r.status == 422,
        "{}",
        r.text
    );
    s.stop().await;
}

#[tokio::test]
async fn limits_answer_413_400_and_429_with_retry_after() {
    let s = Server::sqlite_with(Limits {
        requests_per_minute: 5,
        ..Limits::default()
    })
    .await;
    let alice = s.token("alice", Scope::Publish, &[]).await;
    let big = vec![b'x'; cws_api::MAX_BODY_BYTES + 1];
    let r = call(
        "POST",
        &format!("{}/api/v1/listings", s.url),
        Some(&alice),
        Some(big),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.json["error"]["code"], "body_too_large");
    let r = call(
        "POST",
        &format!("{}/api/v1/listings", s.url),
        Some(&alice),
        Some(b"{not json".to_vec()),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.json["error"]["message"].is_string());
    let mut last = None;
    for _ in 0..5 {
        last = Some(get(&s, "/api/v1/whoami", Some(&alice)).await);
    }
    let r = last.unwrap();
    assert_eq!(r.status, 429, "the 6th request this minute: {}", r.text);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    // Another caller has its own window.
    assert_eq!(get(&s, "/healthz", None).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn errors_carry_no_sql_and_bad_input_names_the_field() {
    let s = Server::sqlite().await;
    let alice = s.token("alice", Scope::Publish, &[]).await;
    let r = send(
        &s,
        "PUT",
        "/api/v1/listings/alice/nope/rating",
        Some(&alice),
        json!({"stars": 9}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stars")
    );
    assert_eq!(r.json["error"]["registry_error"]["kind"], "invalid");
    let r = get(&s, "/api/v1/listings?sort=loudest", None).await;
    assert_eq!(r.status, 422);
    let r = get(
        &s,
        "/api/v1/ami/resolve/python-ml?region=mars-north-1",
        None,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(!r.text.to_lowercase().contains("select "), "{}", r.text);
    s.stop().await;
}

#[tokio::test]
async fn browse_pages_through_listings() {
    let s = Server::sqlite().await;
    let alice = s.token("alice", Scope::Publish, &[]).await;
    for i in 0..7 {
        let r = send(
            &s,
            "POST",
            "/api/v1/listings",
            Some(&alice),
            publish_body(
                &format!("alice/l{i}"),
                "1.0.0",
                "us-east-1",
                &format!("ami-00000000000000{i:02}"),
                "public",
            ),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let mut seen = Vec::new();
    let mut offset = Some(0u64);
    while let Some(o) = offset {
        let r = get(&s, &format!("/api/v1/listings?limit=3&offset={o}"), None).await;
        assert!(r.json["listings"].as_array().unwrap().len() <= 3);
        seen.extend(
            r.json["listings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap().to_string()),
        );
        offset = r.json["next_offset"].as_u64();
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7, "{seen:?}");
    s.stop().await;
}

#[tokio::test]
async fn an_import_whose_signature_fails_is_refused_and_nothing_is_imported() {
    let s = Server::sqlite().await;
    let alice = s.token("alice", Scope::Publish, &[]).await;
    let export = |signature: &str| {
        json!({
            "format": "cws-listing-export/1", "id": "alice/mirrored", "name": "Mirrored",
            "description": "d", "category": "machine-learning", "template": "python-ml",
            "visibility": "public", "creator": "User alice <alice@example.edu>",
            "publisher_email": "alice@example.edu",
            "versions": [{"version": "1.0.0", "revision": 1,
                "regions": {"us-east-1": {"ami_id": "ami-0123456789abcdef0", "architecture": "x86_64"}},
                "template_digest": "sha256:00", "created_at": "2026-01-01T00:00:00Z",
                "signed": {"revision": 1, "document": "{}", "signature": signature}}]
        })
    };
    let r = send(
        &s,
        "POST",
        "/api/v1/imports",
        Some(&alice),
        export("not a signature"),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.json["error"]["registry_error"]["field"], "signature",
        "{}",
        r.text
    );
    assert_eq!(
        get(&s, "/api/v1/listings/alice/mirrored", Some(&alice))
            .await
            .status,
        404
    );
    s.stop().await;
}

/// SIGINT/SIGTERM in `cws serve` resolve the shutdown future: a request in flight then still
/// gets its answer, and new connections are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_lets_the_request_in_flight_finish() {
    let home = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        cws_registry::SqliteRegistry::open(&home.path().join("registry.db"))
            .await
            .unwrap(),
    );
    let mut site = crate::harness::site(home.path());
    // Every provider call takes a while, so the resolve below is still running at shutdown.
    let cloud = cws_localcloud::LocalCloud::open(home.path()).unwrap();
    site.env.provider = std::sync::Arc::new(cws_provider::wrappers::LatencyProvider::new(
        cloud,
        std::time::Duration::from_millis(400),
    ));
    let state = std::sync::Arc::new(cws_api::AppState::new(
        site,
        store.clone(),
        store,
        Limits::default(),
        home.path().to_path_buf(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cws_api::serve(
        listener,
        cws_api::router(state),
        async move {
            let _ = stopped.await;
        },
    ));
    let slow = tokio::spawn({
        let url = url.clone();
        async move {
            call(
                "GET",
                &format!("{url}/api/v1/ami/resolve/python-ml?region=us-east-1"),
                None,
                None,
            )
            .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let answer = slow.await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.json["ami_id"].is_string(), "{}", answer.text);
    server.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_its_time_is_answered_with_a_timeout_error() {
    let home = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        cws_registry::SqliteRegistry::open(&home.path().join("registry.db"))
            .await
            .unwrap(),
    );
    let mut site = crate::harness::site(home.path());
    let cloud = cws_localcloud::LocalCloud::open(home.path()).unwrap();
    site.env.provider = std::sync::Arc::new(cws_provider::wrappers::LatencyProvider::new(
        cloud,
        std::time::Duration::from_secs(5),
    ));
    let limits = Limits {
        request_timeout: std::time::Duration::from_millis(50),
        ..Limits::default()
    };
    let state = std::sync::Arc::new(cws_api::AppState::new(
        site,
        store.clone(),
        store,
        limits,
        home.path().to_path_buf(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(cws_api::serve(
        listener,
        cws_api::router(state),
        std::future::pending(),
    ));
    let r = call(
        "GET",
        &format!("{url}/api/v1/ami/resolve/python-ml"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.json["error"]["code"], "timeout");
    // Quick routes are not affected.
    assert_eq!(
        call("GET", &format!("{url}/healthz"), None, None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_page_past_any_end_is_empty_not_an_overflow() {
    let s = Server::sqlite().await;
    let r = get(&s, &format!("/api/v1/listings?offset={}", usize::MAX), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["listings"], serde_json::json!([]));
    assert!(r.json["next_offset"].is_null());
    let r = get(
        &s,
        &format!("/api/v1/listings/alice/x/reviews?offset={}", usize::MAX),
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    s.stop().await;
}
