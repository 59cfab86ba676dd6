//! The HTTP client store against a scripted server on 127.0.0.1: the requests it makes (paths,
//! encoding, bodies, bearer tokens), browse paging, the errors it rebuilds from answers, the
//! limits it keeps; and the model's JSON read back as it was written. (The conformance suite
//! over a real `cws serve` runs in the server's crate.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use cws_registry::trust::SignedDocument;
use cws_registry::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::fixtures::{publish, user};

/// One request the scripted server received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query, as sent.
    target: String,
    /// Header names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body of {} {} is not JSON: {e}", self.method, self.target))
    }

    fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

/// What the scripted server answers.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send this Content-Length instead of the body's (and no body).
    declared_length: Option<u64>,
    /// Send this many bytes of body without a Content-Length (closing the connection ends it).
    stream: Option<usize>,
    /// Never answer.
    hang: bool,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(&body).expect("JSON"),
            declared_length: None,
            stream: None,
            hang: false,
        }
    }

    fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
            declared_length: None,
            stream: None,
            hang: false,
        }
    }

    fn no_content() -> Answer {
        Answer::text(204, "")
    }

    fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

/// A scripted server: every request is recorded and answered by `handler`, one request per
/// connection.
struct Scripted {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    async fn start(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = serve_one(conn, handler, log).await;
                });
            }
        });
        Scripted { base, seen }
    }

    fn client(&self, credentials: Arc<dyn Credentials>) -> HttpRegistry {
        HttpRegistry::new(&self.base, credentials).expect("client")
    }

    fn anonymous(&self) -> HttpRegistry {
        self.client(Arc::new(StaticToken(None)))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }

    fn lines(&self) -> Vec<String> {
        self.seen().iter().map(Seen::line).collect()
    }
}

async fn serve_one(
    mut conn: TcpStream,
    handler: Handler,
    log: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let seen = Seen {
        method,
        target,
        headers,
        body,
    };
    log.lock().expect("log").push(seen.clone());
    let answer = handler(&seen);
    if answer.hang {
        tokio::time::sleep(Duration::from_secs(60)).await;
        return Ok(());
    }
    let mut out = format!(
        "HTTP/1.1 {} Scripted\r\nConnection: close\r\n",
        answer.status
    );
    for (n, v) in &answer.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(n) = answer.stream {
        out.push_str("\r\n");
        conn.write_all(out.as_bytes()).await?;
        let block = vec![b'x'; 1024 * 1024];
        let mut sent = 0;
        while sent < n {
            let k = block.len().min(n - sent);
            conn.write_all(&block[..k]).await?;
            sent += k;
        }
    } else {
        let length = answer.declared_length.unwrap_or(answer.body.len() as u64);
        out.push_str(&format!("Content-Length: {length}\r\n\r\n"));
        conn.write_all(out.as_bytes()).await?;
        if answer.declared_length.is_none() {
            conn.write_all(&answer.body).await?;
        }
    }
    conn.shutdown().await
}

fn at(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 123_456_789)
        .single()
        .expect("time")
}

fn signed(revision: u32) -> SignedDocument {
    SignedDocument {
        revision,
        document: format!("{{\"revision\":{revision},\"type\":\"cws-listing-version/1\"}}"),
        signature: "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n".into(),
    }
}

fn summary(n: usize) -> ListingSummary {
    let id: ListingId = format!("alice/listing-{n}").parse().expect("id");
    ListingSummary {
        name: format!("Listing {n}"),
        publisher: "alice".into(),
        category: "machine-learning".into(),
        description: "a fixture".into(),
        template: "python-ml".into(),
        visibility: Visibility::Community("genomics".into()),
        latest_version: Some("1.2.0".into()),
        rating: RatingSummary {
            average: 4.3,
            count: 7,
        },
        // Scores whose shortest text needs all 17 digits.
        score: 1.0 / 3.0 + n as f64 * 0.1,
        downloads: 12 + n as u64,
        signature: SignatureInfo::unsigned(),
        revoked: false,
        quarantined: false,
        publisher_email: "alice@example.edu".into(),
        latest_signed: (2, Some(signed(2))),
        id,
    }
}

fn detail() -> ListingDetail {
    let region = RegionImage {
        ami_id: "ami-0123456789abcdef0".into(),
        architecture: "x86_64".into(),
        snapshot_ids: vec!["snap-0123456789abcdef0".into()],
        size_gib: Some(30),
    };
    let v2 = VersionInfo {
        version: "1.2.0".into(),
        revision: 2,
        regions: BTreeMap::from([
            ("us-east-1".to_string(), region.clone()),
            (
                "eu-west-1".to_string(),
                RegionImage {
                    ami_id: "ami-0fedcba9876543210".into(),
                    architecture: "arm64".into(),
                    snapshot_ids: vec![],
                    size_gib: None,
                },
            ),
        ]),
        template_digest: format!("sha256:{}", "ab".repeat(32)),
        created_at: at(10),
        notes: Some("faster CUDA \"stack\"\n— ünïcode".into()),
        speedup: Some(std::f64::consts::E * 3.0),
        signature: SignatureInfo {
            status: "verified".into(),
            signer: Some("alice@example.edu".into()),
            detail: None,
        },
        revoked: None,
        quarantined: None,
        downloads: 41,
        signed: Some(signed(2)),
    };
    let v1 = VersionInfo {
        version: "1.0.0-rc.1+build.7".into(),
        revision: 3,
        regions: BTreeMap::from([("us-east-1".to_string(), region)]),
        template_digest: format!("sha256:{}", "cd".repeat(32)),
        created_at: at(0),
        notes: None,
        speedup: None,
        signature: SignatureInfo {
            status: "invalid".into(),
            signer: Some("mallory@example.edu".into()),
            detail: Some("the document names other images".into()),
        },
        revoked: Some(Revocation {
            reason: "leaked key".into(),
            by: "alice".into(),
            at: at(20),
        }),
        quarantined: Some(Quarantine {
            reason: "3 security reports".into(),
            at: at(30),
        }),
        downloads: 0,
        signed: None,
    };
    ListingDetail {
        summary: summary(3),
        creator: "Alice Smith <alice@example.edu>".into(),
        channels: BTreeMap::from([
            ("latest".to_string(), "1.2.0".to_string()),
            ("stable".to_string(), "1.0.0-rc.1+build.7".to_string()),
        ]),
        versions: vec![v2, v1],
        reviews: vec![Review {
            author: "bob".into(),
            stars: 4,
            text: Some("works".into()),
            verified_use: true,
            created_at: at(40),
            updated_at: at(50),
        }],
    }
}

fn id(s: &str) -> ListingId {
    s.parse().expect("listing id")
}

fn version(s: &str) -> semver::Version {
    parse_version(s).expect("version")
}

/// The Debug text of an error, to compare errors (they have no `PartialEq`).
fn dbg(e: &RegistryError) -> String {
    format!("{e:?}")
}

fn error_body(code: &str, message: &str, registry_error: Option<&RegistryError>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(e) = registry_error {
        error["registry_error"] = serde_json::to_value(e).expect("error JSON");
    }
    json!({ "error": error })
}

#[test]
fn listing_detail_round_trips_through_json() {
    let d = detail();
    let text = serde_json::to_string(&d).expect("serialize");
    let back: ListingDetail = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, d);
    // What the client needs to check signatures travels.
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["publisher_email"], "alice@example.edu");
    assert_eq!(v["latest_signed"][0], 2);
    assert_eq!(v["latest_signed"][1]["revision"], 2);
    assert_eq!(v["versions"][0]["signed"]["revision"], 2);
    assert!(
        v["versions"][1].get("signed").is_none(),
        "an unsigned version has no `signed`: {}",
        v["versions"][1]
    );
    // A listing from an older server (without the fields) still reads.
    let mut old = v.clone();
    let o = old.as_object_mut().expect("object");
    o.remove("publisher_email");
    o.remove("latest_signed");
    let back: ListingDetail = serde_json::from_value(old).expect("older JSON");
    assert_eq!(back.summary.publisher_email, "");
    assert_eq!(back.summary.latest_signed, (0, None));
}

#[tokio::test]
async fn a_stored_listing_round_trips_through_json() {
    // A listing as the embedded store gives it: revisions, a signature, ratings, a revocation.
    let store = cws_registry::testing::temp_sqlite().await;
    let alice = user("alice");
    let bob = user("bob");
    store
        .publish(&alice, &publish("alice/python-ml", 1))
        .await
        .expect("publish");
    let mut second = publish("alice/python-ml", 2);
    second.region = "eu-west-1".into();
    second.speedup = Some(7.0 / 3.0);
    second.notes = Some("two regions".into());
    store.publish(&alice, &second).await.expect("publish");
    let mut other = publish("alice/python-ml", 3);
    other.version = version("2.0.0");
    store.publish(&alice, &other).await.expect("publish");
    store
        .rate(&bob, &id("alice/python-ml"), 4, Some("good"))
        .await
        .expect("rate");
    store
        .rate(&user("carol"), &id("alice/python-ml"), 5, None)
        .await
        .expect("rate");
    let d = store
        .listing(Some(&alice), &id("alice/python-ml"))
        .await
        .expect("listing");
    let v1 = d.version(&version("1.0.0")).expect("1.0.0").clone();
    let doc =
        cws_registry::trust::version_document(&d.summary.id, "alice@example.edu", "python-ml", &v1);
    let signed = SignedDocument {
        revision: v1.revision,
        document: cws_registry::trust::canonical_document(&doc),
        signature: "-----BEGIN SSH SIGNATURE-----\nfixture\n-----END SSH SIGNATURE-----\n".into(),
    };
    store
        .sign_version(&alice, &id("alice/python-ml"), &version("1.0.0"), &signed)
        .await
        .expect("sign");
    store
        .revoke(&alice, &id("alice/python-ml"), &version("2.0.0"), "broken")
        .await
        .expect("revoke");
    let d = store
        .listing(Some(&alice), &id("alice/python-ml"))
        .await
        .expect("listing");
    assert!(
        d.versions.iter().any(|v| v.signed.is_some()),
        "a signed version: {d:?}"
    );
    let back: ListingDetail =
        serde_json::from_str(&serde_json::to_string(&d).expect("serialize")).expect("deserialize");
    assert_eq!(back, d);

    let all = store
        .browse(None, &BrowseQuery::default())
        .await
        .expect("browse");
    let back: Vec<ListingSummary> =
        serde_json::from_str(&serde_json::to_string(&all).expect("serialize")).expect("read");
    assert_eq!(back, all);
}

#[test]
fn request_and_answer_types_round_trip() {
    let mut p = publish("alice/python-ml", 9);
    p.notes = Some("n".into());
    p.speedup = Some(0.1 + 0.2);
    p.visibility = Visibility::Institutional("Example University".into());
    p.version = version("1.2.3-beta.1+exp.sha.5114f85");
    let back: Publish = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
    assert_eq!(back, p);

    let q = BrowseQuery {
        category: Some("genomics".into()),
        text: None,
        community: Some("bio".into()),
        sort: Sort::Recent,
        limit: 3,
    };
    let back: BrowseQuery = serde_json::from_value(serde_json::to_value(&q).unwrap()).unwrap();
    assert_eq!(back, q);
    let empty: BrowseQuery = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, BrowseQuery::default());

    let d = Download {
        listing: id("alice/python-ml"),
        version: version("1.0.0"),
        day: NaiveDate::from_ymd_opt(2025, 3, 9).unwrap(),
        by: Some("bob".into()),
    };
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["day"], "2025-03-09");
    assert_eq!(serde_json::from_value::<Download>(v).unwrap(), d);

    let o = ReportOutcome {
        listing: id("alice/python-ml"),
        version: "1.0.0".into(),
        security_reports: 2,
        quarantined: false,
    };
    assert_eq!(
        serde_json::from_value::<ReportOutcome>(serde_json::to_value(&o).unwrap()).unwrap(),
        o
    );
}

fn every_error() -> Vec<RegistryError> {
    vec![
        RegistryError::invalid("stars", "9", "a whole number of stars from 1 to 5"),
        RegistryError::UnknownListing {
            id: "alice/pyton-ml".into(),
            suggestions: vec!["alice/python-ml".into()],
        },
        RegistryError::UnknownVersion {
            listing: "alice/python-ml".into(),
            version: "3.0.0".into(),
            known: vec!["1.0.0".into(), "2.0.0".into()],
        },
        RegistryError::UnlistedImage {
            ami_id: "ami-1".into(),
        },
        RegistryError::RegionTaken {
            listing: "alice/python-ml".into(),
            version: "1.0.0".into(),
            region: "us-east-1".into(),
            existing: "ami-2".into(),
        },
        RegistryError::Forbidden {
            actor: "bob".into(),
            action: "revoke".into(),
            listing: "alice/python-ml".into(),
            why: "only its publisher or an admin may".into(),
        },
        RegistryError::Rollback {
            listing: "alice/python-ml".into(),
            version: "1.0.0".into(),
            held: 3,
            offered: 2,
        },
        RegistryError::Store {
            store: "postgres://db/registry".into(),
            message: "connection reset".into(),
        },
        RegistryError::Unauthorized {
            registry: "https://registry.example.edu".into(),
            message: "the token expired".into(),
        },
    ]
}

#[test]
fn registry_errors_serialize_with_their_kind() {
    let codes: Vec<&str> = every_error().iter().map(RegistryError::code).collect();
    assert_eq!(
        codes,
        [
            "invalid",
            "unknown_listing",
            "unknown_version",
            "unlisted_image",
            "region_taken",
            "forbidden",
            "rollback",
            "store",
            "unauthorized"
        ]
    );
    for e in every_error() {
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], e.code(), "{v}");
        let back: RegistryError = serde_json::from_value(v).unwrap();
        assert_eq!(dbg(&back), dbg(&e));
    }
    let v = serde_json::to_value(&every_error()[1]).unwrap();
    assert_eq!(
        v,
        json!({"kind": "unknown_listing", "id": "alice/pyton-ml", "suggestions": ["alice/python-ml"]})
    );
    let unauthorized = every_error().pop().unwrap();
    assert_eq!(
        unauthorized.to_string(),
        "the registry at https://registry.example.edu refused the request: the token expired"
    );
    assert!(unauthorized.is_invalid_input());
}

/// Answers every route of the API with a fixed value, checking nothing.
fn router(seen: &Seen) -> Answer {
    let path = seen.target.split('?').next().unwrap_or_default();
    let m = seen.method.as_str();
    match (m, path) {
        ("POST", "/api/v1/listings") => Answer::json(
            201,
            json!({
                "listing": "alice/python-ml", "version": "1.0.0", "revision": 1,
                "region": "us-east-1", "ami_id": "ami-00000000000000001",
                "created_listing": true, "created_version": true, "changed": true,
                "visibility": "public"
            }),
        ),
        ("GET", "/api/v1/listings") => Answer::json(
            200,
            json!({"listings": [serde_json::to_value(summary(1)).unwrap()], "next_offset": null}),
        ),
        ("GET", "/api/v1/listings/alice/python-ml") => {
            Answer::json(200, serde_json::to_value(detail()).unwrap())
        }
        ("GET", "/api/v1/images/ami-0%20x%2Fy/listings") => Answer::json(
            200,
            json!({"listings": [{"listing": "alice/python-ml", "version": "1.0.0", "region": "us-east-1"}]}),
        ),
        ("PUT", "/api/v1/listings/alice/python-ml/channels/my%20channel") => Answer::no_content(),
        ("PUT", "/api/v1/listings/alice/python-ml/rating") => {
            Answer::json(200, json!({"average": 4.5, "count": 2}))
        }
        ("GET", "/api/v1/listings/alice/python-ml/reviews") => Answer::json(
            200,
            json!({"reviews": [serde_json::to_value(&detail().reviews[0]).unwrap()]}),
        ),
        ("POST", "/api/v1/listings/alice/python-ml/versions/1.0.0%2Bbuild.7/downloads") => {
            Answer::no_content()
        }
        ("POST", "/api/v1/listings/alice/python-ml/reports") => Answer::json(
            200,
            json!({"listing": "alice/python-ml", "version": "1.0.0", "security_reports": 1, "quarantined": false}),
        ),
        ("DELETE", "/api/v1/listings/alice/python-ml/versions/1.0.0/reports") => {
            Answer::no_content()
        }
        ("PUT", "/api/v1/listings/alice/python-ml/versions/1.0.0/signature") => {
            Answer::no_content()
        }
        ("POST", "/api/v1/imports") => Answer::json(
            200,
            json!({"listing": "alice/python-ml", "added_versions": ["1.0.0"], "added_regions": 2}),
        ),
        ("GET", "/api/v1/refusals") => Answer::json(
            200,
            json!({"refusals": [{"listing": "alice/python-ml", "version": "1.0.0", "reason": "quarantined: 3 security reports"}]}),
        ),
        ("POST", "/api/v1/listings/alice/python-ml/versions/1.0.0/revoke") => Answer::json(
            200,
            json!({"reason": "leaked", "by": "alice", "at": "2025-01-02T03:04:05.123456Z"}),
        ),
        _ => Answer::json(
            404,
            error_body("not_found", &format!("no route {m} {path}"), None),
        ),
    }
}

fn export() -> ListingExport {
    let d = detail();
    ListingExport {
        format: EXPORT_FORMAT.into(),
        id: id("alice/python-ml"),
        name: "Python ML".into(),
        description: "d".into(),
        category: "machine-learning".into(),
        template: "python-ml".into(),
        visibility: Visibility::Public,
        creator: d.creator.clone(),
        publisher_email: "alice@example.edu".into(),
        versions: vec![ExportedVersion {
            version: "1.0.0".into(),
            revision: 2,
            regions: d.versions[0].regions.clone(),
            template_digest: d.versions[0].template_digest.clone(),
            created_at: at(0),
            notes: None,
            speedup: None,
            revoked: None,
            signed: Some(signed(2)),
        }],
    }
}

#[tokio::test]
async fn every_method_makes_its_request_and_reads_its_answer() {
    let server = Scripted::start(router).await;
    let r = server.anonymous();
    let alice = user("alice");
    let l = id("alice/python-ml");
    let v1 = version("1.0.0");
    assert_eq!(r.location(), server.base);

    let p = publish("alice/python-ml", 1);
    let published = r.publish(&alice, &p).await.expect("publish");
    assert_eq!(published.revision, 1);
    assert!(published.created_listing);
    assert_eq!(published.visibility, Visibility::Public);

    assert_eq!(r.listing(None, &l).await.expect("listing"), detail());
    assert_eq!(
        r.browse(None, &BrowseQuery::default())
            .await
            .expect("browse"),
        vec![summary(1)]
    );
    assert_eq!(
        r.find_image(None, "ami-0 x/y").await.expect("find_image"),
        vec![ImageListing {
            listing: l.clone(),
            version: "1.0.0".into(),
            region: "us-east-1".into()
        }]
    );
    r.set_channel(&alice, &l, "my channel", &v1)
        .await
        .expect("set_channel");
    assert_eq!(
        r.rate(&alice, &l, 5, Some("great")).await.expect("rate"),
        RatingSummary {
            average: 4.5,
            count: 2
        }
    );
    assert_eq!(
        r.reviews(None, &l).await.expect("reviews"),
        detail().reviews
    );
    r.record_download(&Download {
        listing: l.clone(),
        version: version("1.0.0+build.7"),
        day: NaiveDate::from_ymd_opt(2025, 1, 31).unwrap(),
        by: Some("bob".into()),
    })
    .await
    .expect("record_download");
    let outcome = r
        .report(&alice, &l, &v1, ReportReason::Security, Some("miner"))
        .await
        .expect("report");
    assert_eq!(outcome.security_reports, 1);
    r.clear_reports(&alice, &l, &v1)
        .await
        .expect("clear_reports");
    r.sign_version(&alice, &l, &v1, &signed(1))
        .await
        .expect("sign_version");
    let imported = r.import(&alice, &export()).await.expect("import");
    assert_eq!(imported.added_regions, 2);
    assert_eq!(
        r.refusals().await.expect("refusals"),
        vec![Refusal {
            listing: l.clone(),
            version: "1.0.0".into(),
            reason: "quarantined: 3 security reports".into()
        }]
    );
    let revocation = r.revoke(&alice, &l, &v1, "leaked").await.expect("revoke");
    assert_eq!(revocation.by, "alice");

    assert_eq!(
        server.lines(),
        [
            "POST /api/v1/listings",
            "GET /api/v1/listings/alice/python-ml",
            "GET /api/v1/listings?sort=score",
            "GET /api/v1/images/ami-0%20x%2Fy/listings",
            "PUT /api/v1/listings/alice/python-ml/channels/my%20channel",
            "PUT /api/v1/listings/alice/python-ml/rating",
            "GET /api/v1/listings/alice/python-ml/reviews",
            "POST /api/v1/listings/alice/python-ml/versions/1.0.0%2Bbuild.7/downloads",
            "POST /api/v1/listings/alice/python-ml/reports",
            "DELETE /api/v1/listings/alice/python-ml/versions/1.0.0/reports",
            "PUT /api/v1/listings/alice/python-ml/versions/1.0.0/signature",
            "POST /api/v1/imports",
            "GET /api/v1/refusals",
            "POST /api/v1/listings/alice/python-ml/versions/1.0.0/revoke",
        ]
    );
    let seen = server.seen();
    let body = |i: usize| seen[i].json();
    assert_eq!(
        serde_json::from_value::<Publish>(body(0)).expect("Publish"),
        p
    );
    assert_eq!(body(4), json!({"version": "1.0.0"}));
    assert_eq!(body(5), json!({"stars": 5, "review": "great"}));
    assert_eq!(body(7), json!({"day": "2025-01-31"}));
    assert_eq!(
        body(8),
        json!({"version": "1.0.0", "reason": "security", "message": "miner"})
    );
    assert_eq!(
        serde_json::from_value::<SignedDocument>(body(10)).expect("SignedDocument"),
        signed(1)
    );
    assert_eq!(
        serde_json::from_value::<ListingExport>(body(11)).expect("ListingExport"),
        export()
    );
    assert_eq!(body(13), json!({"reason": "leaked"}));
    for s in &seen {
        assert_eq!(
            s.header("user-agent"),
            Some(concat!("cws/", env!("CARGO_PKG_VERSION"))),
            "{}",
            s.line()
        );
        assert_eq!(s.header("authorization"), None, "{}", s.line());
        let has_body = !s.body.is_empty();
        assert_eq!(
            s.header("content-type") == Some("application/json"),
            has_body,
            "{}",
            s.line()
        );
    }
    // Optional texts travel as null.
    r.rate(&alice, &l, 3, None).await.expect("rate");
    r.report(&alice, &l, &v1, ReportReason::Other, None)
        .await
        .expect("report");
    let seen = server.seen();
    assert_eq!(seen[14].json(), json!({"stars": 3, "review": null}));
    assert_eq!(
        seen[15].json(),
        json!({"version": "1.0.0", "reason": "other", "message": null})
    );
}

#[tokio::test]
async fn browse_sends_the_query() {
    let server = Scripted::start(router).await;
    let r = server.anonymous();
    let q = BrowseQuery {
        category: Some("machine-learning".into()),
        text: Some("deep learning & more".into()),
        community: Some("bio-x".into()),
        sort: Sort::Rating,
        limit: 7,
    };
    r.browse(None, &q).await.expect("browse");
    assert_eq!(
        server.lines(),
        [
            "GET /api/v1/listings?category=machine-learning&q=deep%20learning%20%26%20more&community=bio-x&sort=rating&limit=7"
        ]
    );
}

#[tokio::test]
async fn base_with_slash_or_api_prefix_reaches_the_same_paths() {
    let server = Scripted::start(router).await;
    for base in [
        format!("{}/", server.base),
        format!("{}/api/v1", server.base),
        format!("{}/api/v1/", server.base),
    ] {
        let r = HttpRegistry::new(&base, Arc::new(StaticToken(None))).expect("client");
        assert_eq!(r.location(), server.base);
        r.refusals().await.expect("refusals");
    }
    assert_eq!(server.lines(), ["GET /api/v1/refusals"; 3]);
    let bad = HttpRegistry::new("registry.example.edu", Arc::new(StaticToken(None)))
        .expect_err("no scheme");
    assert_eq!(
        dbg(&bad),
        dbg(&RegistryError::invalid(
            "registry URL",
            "registry.example.edu",
            "an http:// or https:// URL"
        ))
    );
}

/// A token per actor handle (`t-HANDLE`), `anon` for anonymous calls, `dl-HANDLE` (or
/// `dl-default`) for downloads.
struct PerActor;

#[async_trait]
impl Credentials for PerActor {
    async fn token(&self, actor: Option<&Actor>) -> RegistryResult<Option<String>> {
        Ok(Some(match actor {
            Some(a) => format!("t-{}", a.identity.handle),
            None => "anon".into(),
        }))
    }
    async fn token_for_handle(&self, handle: Option<&str>) -> RegistryResult<Option<String>> {
        Ok(Some(format!("dl-{}", handle.unwrap_or("default"))))
    }
}

/// No token for anyone but `alice`; and a failure for `mallory`.
struct OnlyAlice;

#[async_trait]
impl Credentials for OnlyAlice {
    async fn token(&self, actor: Option<&Actor>) -> RegistryResult<Option<String>> {
        match actor.map(|a| a.identity.handle.as_str()) {
            Some("alice") => Ok(Some("alice-token".into())),
            Some("mallory") => Err(RegistryError::Unauthorized {
                registry: "test".into(),
                message: "no token for mallory".into(),
            }),
            _ => Ok(None),
        }
    }
    async fn token_for_handle(&self, _handle: Option<&str>) -> RegistryResult<Option<String>> {
        Ok(None)
    }
}

#[tokio::test]
async fn the_bearer_token_is_the_credentials_for_the_actor() {
    let server = Scripted::start(router).await;
    let l = id("alice/python-ml");
    let v1 = version("1.0.0");

    let r = server.client(Arc::new(StaticToken(Some("tok-123".into()))));
    r.listing(None, &l).await.expect("listing");
    r.rate(&user("bob"), &l, 4, None).await.expect("rate");
    r.refusals().await.expect("refusals");

    let r = server.client(Arc::new(PerActor));
    r.listing(None, &l).await.expect("listing");
    r.listing(Some(&user("carol")), &l).await.expect("listing");
    r.revoke(&user("alice"), &l, &v1, "leaked")
        .await
        .expect("revoke");
    r.refusals().await.expect("refusals");
    let download = |by: Option<&str>| Download {
        listing: l.clone(),
        version: version("1.0.0+build.7"),
        day: NaiveDate::from_ymd_opt(2025, 1, 31).unwrap(),
        by: by.map(str::to_string),
    };
    r.record_download(&download(Some("bob")))
        .await
        .expect("download");
    r.record_download(&download(None)).await.expect("download");

    let r = server.client(Arc::new(OnlyAlice));
    r.publish(&user("alice"), &publish("alice/python-ml", 1))
        .await
        .expect("publish");
    r.browse(Some(&user("bob")), &BrowseQuery::default())
        .await
        .expect("browse");
    let before = server.seen().len();
    let e = r
        .publish(&user("mallory"), &publish("mallory/x", 1))
        .await
        .expect_err("credentials refuse");
    assert!(
        matches!(&e, RegistryError::Unauthorized { message, .. } if message == "no token for mallory"),
        "{e:?}"
    );
    assert_eq!(
        server.seen().len(),
        before,
        "nothing sent without credentials"
    );

    let tokens: Vec<Option<String>> = server
        .seen()
        .iter()
        .map(|s| s.header("authorization").map(str::to_string))
        .collect();
    let bearer = |t: &str| Some(format!("Bearer {t}"));
    assert_eq!(
        tokens,
        [
            bearer("tok-123"),
            bearer("tok-123"),
            bearer("tok-123"),
            bearer("anon"),
            bearer("t-carol"),
            bearer("t-alice"),
            bearer("anon"),
            bearer("dl-bob"),
            bearer("dl-default"),
            bearer("alice-token"),
            None,
        ]
    );

    // A token that cannot be a header value is refused before anything is sent, and not shown.
    let r = server.client(Arc::new(StaticToken(Some("bad\ntoken".into()))));
    let e = r.refusals().await.expect_err("bad token");
    assert!(matches!(e, RegistryError::Invalid { .. }), "{e:?}");
    assert!(!e.to_string().contains("bad\ntoken"), "{e}");
    assert_eq!(server.seen().len(), 11);
}

/// A server of `total` listings in pages of at most 100 (or `page` when the query's limit is
/// larger), `next_offset` set while more remain.
fn pager(total: usize, ignore_limit: bool) -> impl Fn(&Seen) -> Answer + Send + Sync + 'static {
    move |seen: &Seen| {
        let query = seen.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .and_then(|(_, v)| v.parse::<usize>().ok())
        };
        let offset = param("offset").unwrap_or(0);
        let limit = if ignore_limit {
            100
        } else {
            param("limit").unwrap_or(100).min(100)
        };
        let end = (offset + limit).min(total);
        let listings: Vec<Value> = (offset..end)
            .map(|i| serde_json::to_value(summary(i)).unwrap())
            .collect();
        let next = (end < total).then_some(end);
        Answer::json(200, json!({"listings": listings, "next_offset": next}))
    }
}

#[tokio::test]
async fn browse_without_a_limit_follows_next_offset_to_the_end() {
    let server = Scripted::start(pager(250, false)).await;
    let all = server
        .anonymous()
        .browse(None, &BrowseQuery::default())
        .await
        .expect("browse");
    assert_eq!(all, (0..250).map(summary).collect::<Vec<_>>());
    assert_eq!(
        server.lines(),
        [
            "GET /api/v1/listings?sort=score",
            "GET /api/v1/listings?sort=score&offset=100",
            "GET /api/v1/listings?sort=score&offset=200",
        ]
    );
}

#[tokio::test]
async fn browse_with_a_limit_stops_there() {
    let server = Scripted::start(pager(250, false)).await;
    let r = server.anonymous();
    let q = |limit| BrowseQuery {
        limit,
        ..BrowseQuery::default()
    };
    let got = r.browse(None, &q(150)).await.expect("browse");
    assert_eq!(got, (0..150).map(summary).collect::<Vec<_>>());
    let got = r.browse(None, &q(30)).await.expect("browse");
    assert_eq!(got, (0..30).map(summary).collect::<Vec<_>>());
    let got = r.browse(None, &q(400)).await.expect("browse");
    assert_eq!(got.len(), 250);
    assert_eq!(
        server.lines(),
        [
            "GET /api/v1/listings?sort=score&limit=150",
            "GET /api/v1/listings?sort=score&limit=50&offset=100",
            "GET /api/v1/listings?sort=score&limit=30",
            "GET /api/v1/listings?sort=score&limit=400",
            "GET /api/v1/listings?sort=score&limit=300&offset=100",
            "GET /api/v1/listings?sort=score&limit=200&offset=200",
        ]
    );

    // A server that gives more than asked: the client keeps the limit.
    let server = Scripted::start(pager(250, true)).await;
    let got = server
        .anonymous()
        .browse(None, &q(30))
        .await
        .expect("browse");
    assert_eq!(got, (0..30).map(summary).collect::<Vec<_>>());
    assert_eq!(server.lines().len(), 1);
}

#[tokio::test]
async fn browse_paging_that_does_not_move_on_is_a_store_error() {
    let server = Scripted::start(|_: &Seen| {
        Answer::json(
            200,
            json!({"listings": [serde_json::to_value(summary(0)).unwrap()], "next_offset": 1}),
        )
    })
    .await;
    let e = server
        .anonymous()
        .browse(None, &BrowseQuery::default())
        .await
        .expect_err("endless paging");
    assert!(
        matches!(&e, RegistryError::Store { store, message }
            if *store == server.base && message.contains("next_offset")),
        "{e:?}"
    );
    assert_eq!(server.lines().len(), 2);
}

#[tokio::test]
async fn a_structured_error_is_the_exact_registry_error() {
    for (status, err) in [404, 422, 409, 404, 409, 403, 409, 500, 401]
        .into_iter()
        .zip(every_error())
    {
        let sent = serde_json::to_value(&err).unwrap();
        let server = Scripted::start(move |_: &Seen| {
            Answer::json(
                status,
                json!({"error": {"code": sent["kind"], "message": "whatever", "registry_error": sent}}),
            )
        })
        .await;
        let got = server
            .anonymous()
            .listing(None, &id("alice/python-ml"))
            .await
            .expect_err("an error");
        assert_eq!(dbg(&got), dbg(&err), "HTTP {status}");
    }
}

#[tokio::test]
async fn unstructured_errors_are_made_from_the_status() {
    let server = Scripted::start(|seen: &Seen| match seen.target.as_str() {
        "/api/v1/refusals" => Answer::json(401, error_body("unauthorized", "token expired", None)),
        "/api/v1/listings/alice/python-ml" => Answer::text(403, "Forbidden by proxy"),
        "/api/v1/listings/alice/python-ml/reviews" => Answer::text(404, "<html>nope</html>"),
        "/api/v1/imports" => Answer::text(404, ""),
        "/api/v1/listings/alice/python-ml/rating" => {
            Answer::json(500, error_body("internal", "database is down", None))
        }
        "/api/v1/listings/alice/python-ml/reports" => Answer::json(
            409,
            // A kind this client does not know: the status decides.
            json!({"error": {"code": "teapot", "message": "short and stout",
                "registry_error": {"kind": "teapot", "spout": true}}}),
        ),
        "/api/v1/listings/alice/python-ml/versions/1.0.0/revoke" => {
            Answer::text(302, "").header("Location", "https://elsewhere.example.edu/api/v1")
        }
        _ => Answer::text(200, "this is not JSON"),
    })
    .await;
    let r = server.anonymous();
    let l = id("alice/python-ml");
    let v1 = version("1.0.0");
    let alice = user("alice");

    let e = r.refusals().await.expect_err("401");
    assert_eq!(
        dbg(&e),
        dbg(&RegistryError::Unauthorized {
            registry: server.base.clone(),
            message: "token expired".into()
        })
    );
    assert_eq!(e.code(), "unauthorized");
    let e = r.listing(None, &l).await.expect_err("403");
    assert_eq!(
        dbg(&e),
        dbg(&RegistryError::Unauthorized {
            registry: server.base.clone(),
            message: "Forbidden by proxy".into()
        })
    );
    let e = r.reviews(None, &l).await.expect_err("404");
    assert_eq!(
        dbg(&e),
        dbg(&RegistryError::UnknownListing {
            id: "alice/python-ml".into(),
            suggestions: vec![]
        })
    );
    let e = r.import(&alice, &export()).await.expect_err("404");
    assert!(
        matches!(&e, RegistryError::Store { store, message }
            if *store == server.base && message.contains("POST /imports")
                && message.contains("404") && message.contains("cws registry server")),
        "{e:?}"
    );
    let e = r.rate(&alice, &l, 3, None).await.expect_err("500");
    assert!(
        matches!(&e, RegistryError::Store { message, .. }
            if message.contains("500") && message.contains("database is down")),
        "{e:?}"
    );
    let e = r
        .report(&alice, &l, &v1, ReportReason::Broken, None)
        .await
        .expect_err("409");
    assert!(
        matches!(&e, RegistryError::Store { message, .. }
            if message.contains("409") && message.contains("short and stout")),
        "{e:?}"
    );
    let e = r.revoke(&alice, &l, &v1, "x").await.expect_err("302");
    assert!(
        matches!(&e, RegistryError::Store { message, .. }
            if message.contains("302") && message.contains("https://elsewhere.example.edu/api/v1")),
        "{e:?}"
    );
    let e = r
        .browse(None, &BrowseQuery::default())
        .await
        .expect_err("not JSON");
    assert!(
        matches!(&e, RegistryError::Store { message, .. }
            if message.contains("GET /listings?sort=score") && message.contains("not the JSON")),
        "{e:?}"
    );
}

#[tokio::test]
async fn rate_limiting_says_when_to_retry() {
    let server = Scripted::start(|seen: &Seen| {
        if seen.target.contains("refusals") {
            Answer::json(429, error_body("rate_limited", "slow down", None))
                .header("Retry-After", "17")
        } else {
            Answer::text(429, "")
        }
    })
    .await;
    let r = server.anonymous();
    let e = r.refusals().await.expect_err("429");
    assert_eq!(
        dbg(&e),
        dbg(&RegistryError::Store {
            store: server.base.clone(),
            message: "rate limited by the registry; retry after 17 s".into()
        })
    );
    let e = r
        .reviews(None, &id("alice/python-ml"))
        .await
        .expect_err("429");
    assert!(
        matches!(&e, RegistryError::Store { message, .. } if message.contains("rate limited")),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_answer_over_32_mib_is_refused() {
    let over = 32 * 1024 * 1024 + 1;
    let server = Scripted::start(move |seen: &Seen| {
        let mut a = Answer::text(200, "");
        if seen.target.contains("refusals") {
            a.declared_length = Some(over as u64);
        } else {
            a.stream = Some(over);
        }
        a
    })
    .await;
    let r = server.anonymous();
    for e in [
        r.refusals().await.expect_err("declared too large"),
        r.reviews(None, &id("alice/python-ml"))
            .await
            .expect_err("streamed too large"),
    ] {
        assert!(
            matches!(&e, RegistryError::Store { store, message }
                if *store == server.base && message.contains("larger than 32 MiB")),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_registry_is_a_store_error_naming_its_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let r = HttpRegistry::new(&base, Arc::new(StaticToken(None))).expect("client");
    let e = r.refusals().await.expect_err("refused");
    match &e {
        RegistryError::Store { store, message } => {
            assert_eq!(*store, base);
            assert!(
                message.starts_with(&format!("cannot reach the registry at {base}: ")),
                "{message}"
            );
            assert!(message.to_lowercase().contains("refused"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.is_invalid_input());
}

#[tokio::test]
async fn a_registry_that_does_not_answer_times_out() {
    let server = Scripted::start(|_: &Seen| {
        let mut a = Answer::text(200, "");
        a.hang = true;
        a
    })
    .await;
    let r = server.anonymous().with_timeout(Duration::from_millis(300));
    let e = r.refusals().await.expect_err("timeout");
    assert!(
        matches!(&e, RegistryError::Store { message, .. }
            if message.contains("did not answer GET /refusals within 0.3 s")),
        "{e:?}"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_store_error() {
    // The server answers the TLS hello with plain HTTP, as a plain server does.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
            let _ = conn.shutdown().await;
        }
    });
    let base = format!("https://127.0.0.1:{port}");
    let r = HttpRegistry::new(&base, Arc::new(StaticToken(None))).expect("client");
    let e = r.refusals().await.expect_err("not TLS");
    assert!(
        matches!(&e, RegistryError::Store { store, message }
            if *store == base && message.contains(&base)),
        "{e:?}"
    );
}
