//! `serve_load`: 200 concurrent clients resolving and browsing against one `cws serve` on
//! loopback, beside a minimal axum handler on the same machine, hit by the same driver.
//!
//! - The server is the real release binary (`target/release/cws serve --addr 127.0.0.1:0
//!   --rate-limit 0`), on a scratch `CWS_HOME` with a cleared environment (LocalCloud,
//!   offline), logging each request to a file as it does by default.
//! - Its registry holds one public listing, `alice/lab` 1.0.0, published over the API with a
//!   `publish` token; the clients carry `read` tokens, as a researcher's configured `cws` does.
//! - Each client is a tokio task with its own keep-alive HTTP/1.1 connection (hyper), sending
//!   one request after another for the run's duration, in turn: `GET
//!   /api/v1/ami/resolve/python-ml?region=us-east-1`, `GET /api/v1/listings?limit=20`, `POST
//!   /api/v1/listings/alice/lab/versions/1.0.0/downloads`.
//! - The baseline: `Router::new().route("/x", get(|| async { "ok" }))` on its own 2-thread
//!   runtime in this process, hit by the same driver. cws over baseline is the figure.
//! - Exactness: the listing's `downloads` afterwards must equal the 204s the clients got.
//!   The bench exits non-zero when they differ, or when any request failed (non-2xx or a
//!   transport error).
//!
//! Run: `cargo bench -p cws-benches --bench serve_load` (it builds the release `cws` first).
//! `SERVE_LOAD_CLIENTS` (200) and `SERVE_LOAD_SECS` (10) change the load;
//! `SERVE_LOAD_KINDS=resolve,browse` sends only those kinds; `SERVE_LOAD_ANONYMOUS_READS=1`
//! sends the GETs without a token (to see what checking tokens costs); `CWS_BIN` names another
//! `cws` binary (then nothing is built).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;

/// Read tokens handed out to the clients, in turn.
const READ_TOKENS: usize = 4;

const LISTING: &str = r#"{"listing":"alice/lab","name":"Lab","description":"d","category":"machine-learning","template":"python-ml","visibility":"public","version":"1.0.0","template_digest":"sha256:00","region":"us-east-1","image":{"ami_id":"ami-0123456789abcdef0","architecture":"x86_64","snapshot_ids":[],"size_gib":8},"notes":null,"speedup":null}"#;

/// One kind of request the driver sends.
#[derive(Clone)]
struct Kind {
    name: &'static str,
    method: Method,
    path: &'static str,
    body: &'static str,
    /// Sent without the client's token.
    anonymous: bool,
}

const CWS_KINDS: [(&str, &str, &str, &str); 3] = [
    (
        "resolve",
        "GET",
        "/api/v1/ami/resolve/python-ml?region=us-east-1",
        "",
    ),
    ("browse", "GET", "/api/v1/listings?limit=20", ""),
    (
        "download",
        "POST",
        "/api/v1/listings/alice/lab/versions/1.0.0/downloads",
        "{}",
    ),
];

fn kinds(table: &[(&'static str, &'static str, &'static str, &'static str)]) -> Vec<Kind> {
    table
        .iter()
        .map(|&(name, method, path, body)| Kind {
            name,
            method: method.parse().expect("a method"),
            path,
            body,
            anonymous: false,
        })
        .collect()
}

/// The cws kinds `SERVE_LOAD_KINDS` and `SERVE_LOAD_ANONYMOUS_READS` ask for.
fn cws_kinds() -> Vec<Kind> {
    let wanted = std::env::var("SERVE_LOAD_KINDS").ok();
    let anonymous_reads = std::env::var("SERVE_LOAD_ANONYMOUS_READS").is_ok_and(|v| v == "1");
    let mut out = kinds(&CWS_KINDS);
    if let Some(w) = &wanted {
        out.retain(|k| w.split(',').any(|n| n.trim() == k.name));
        assert!(
            !out.is_empty(),
            "SERVE_LOAD_KINDS={w} names none of resolve, browse, download"
        );
    }
    for k in &mut out {
        k.anonymous = anonymous_reads && k.method == Method::GET;
    }
    out
}

/// What one client saw of one kind.
#[derive(Default)]
struct Tally {
    /// Latency of each answered request, in microseconds.
    micros: Vec<u32>,
    /// Answers by status.
    statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connect, send or read failed).
    transport_errors: u64,
    /// The first transport error, to show.
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.micros.extend(other.micros);
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn failed(&self) -> u64 {
        self.transport_errors
            + self
                .statuses
                .iter()
                .filter(|(s, _)| !(200..300).contains(*s))
                .map(|(_, n)| n)
                .sum::<u64>()
    }
}

/// A run of the driver against one server.
struct Run {
    elapsed: Duration,
    /// Per kind, in the order given.
    tallies: Vec<(&'static str, Tally)>,
}

impl Run {
    fn all(&self) -> Tally {
        let mut all = Tally::default();
        for (_, t) in &self.tallies {
            all.merge(Tally {
                micros: t.micros.clone(),
                statuses: t.statuses.clone(),
                transport_errors: t.transport_errors,
                first_error: t.first_error.clone(),
            });
        }
        all
    }
}

async fn connect(addr: SocketAddr) -> Result<http1::SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request on `sender`; the status once the whole body is read.
async fn send(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    kind: &Kind,
    token: Option<&str>,
) -> Result<StatusCode, String> {
    let mut req = Request::builder()
        .method(kind.method.clone())
        .uri(kind.path)
        .header(header::HOST, addr.to_string());
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if !kind.body.is_empty() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from_static(kind.body.as_bytes())))
        .map_err(|e| format!("request: {e}"))?;
    sender.ready().await.map_err(|e| format!("ready: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = resp.status();
    resp.into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?;
    Ok(status)
}

/// `clients` tasks, each on its own connection, each sending the kinds in turn (starting at
/// its own offset) until `duration` has passed since they all connected. Requests in flight
/// at the deadline finish and count.
async fn drive(
    addr: SocketAddr,
    kinds: Arc<Vec<Kind>>,
    tokens: Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
) -> Run {
    let connected = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<Instant>);
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let kinds = kinds.clone();
        let tokens = tokens.clone();
        let connected = connected.clone();
        let mut start_rx = start_rx.clone();
        tasks.push(tokio::spawn(async move {
            let token = (!tokens.is_empty()).then(|| tokens[c % tokens.len()].clone());
            let mut tallies: Vec<Tally> = kinds.iter().map(|_| Tally::default()).collect();
            let mut sender = connect(addr).await;
            connected.wait().await;
            let start = loop {
                if let Some(s) = *start_rx.borrow_and_update() {
                    break s;
                }
                if start_rx.changed().await.is_err() {
                    return tallies;
                }
            };
            let deadline = start + duration;
            let mut i = c;
            while Instant::now() < deadline {
                let k = i % kinds.len();
                i += 1;
                let kind = &kinds[k];
                let t = &mut tallies[k];
                let s = match &mut sender {
                    Ok(s) => s,
                    Err(e) => {
                        t.transport_errors += 1;
                        t.first_error.get_or_insert_with(|| e.clone());
                        // Not a hot loop while the server refuses connections.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        sender = connect(addr).await;
                        continue;
                    }
                };
                let began = Instant::now();
                let token = if kind.anonymous {
                    None
                } else {
                    token.as_deref()
                };
                match send(s, addr, kind, token).await {
                    Ok(status) => {
                        t.micros
                            .push(began.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        *t.statuses.entry(status.as_u16()).or_default() += 1;
                    }
                    Err(e) => {
                        t.transport_errors += 1;
                        t.first_error.get_or_insert(e);
                        // A new connection for the next request.
                        sender = connect(addr).await;
                    }
                }
            }
            tallies
        }));
    }
    connected.wait().await;
    let start = Instant::now();
    start_tx.send_replace(Some(start));
    let mut tallies: Vec<(&'static str, Tally)> =
        kinds.iter().map(|k| (k.name, Tally::default())).collect();
    for task in tasks {
        let per_kind = task.await.expect("a client task panicked");
        for (slot, t) in tallies.iter_mut().zip(per_kind) {
            slot.1.merge(t);
        }
    }
    Run {
        elapsed: start.elapsed(),
        tallies,
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// req/s, p50 ms, p99 ms.
fn figures(t: &Tally, elapsed: Duration) -> (f64, f64, f64) {
    let mut m = t.micros.clone();
    m.sort_unstable();
    (
        m.len() as f64 / elapsed.as_secs_f64(),
        percentile(&m, 50.0),
        percentile(&m, 99.0),
    )
}

fn statuses(t: &Tally) -> String {
    let mut parts: Vec<String> = t
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    if t.transport_errors > 0 {
        parts.push(format!("transport errors: {}", t.transport_errors));
    }
    parts.join(", ")
}

fn row(server: &str, kind: &str, t: &Tally, elapsed: Duration) -> String {
    let (rps, p50, p99) = figures(t, elapsed);
    format!(
        "| {server} | {kind} | {} | {rps:.0} | {p50:.2} | {p99:.2} | {} |",
        t.micros.len(),
        statuses(t)
    )
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ sits in the workspace")
        .to_path_buf()
}

/// The `cws` to measure: `CWS_BIN`, else the release build, brought up to date first
/// (`cargo build --release -p cws-cli --locked`: a second when nothing changed, about 8
/// minutes from nothing). Cargo does not hold the build lock while a bench runs.
fn cws_binary() -> PathBuf {
    if let Some(b) = std::env::var_os("CWS_BIN") {
        return PathBuf::from(b);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("serve_load: cargo build --release -p cws-cli --locked");
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "cws-cli", "--locked"])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .status()
        .expect("running cargo");
    if !status.success() {
        eprintln!("serve_load: building the release cws failed ({status})");
        std::process::exit(2);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("release").join("cws")
}

/// `cws` with nothing of the caller's environment: LocalCloud, offline, in `home`.
fn cws(bin: &Path, home: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CWS_HOME", home)
        .stdin(Stdio::null());
    c
}

fn token(bin: &Path, home: &Path, user: &str, scope: &str) -> String {
    let out = cws(bin, home)
        .args(["admin", "token", "create", "--user", user, "--scope", scope])
        .output()
        .expect("running cws admin token create");
    assert!(
        out.status.success(),
        "cws admin token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("a token is ASCII")
        .trim()
        .to_string()
}

/// Kills the server when the bench ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cws serve` on a free loopback port; its stderr (the request log) goes to `log`.
fn start_server(bin: &Path, home: &Path, log: &Path) -> (Server, SocketAddr) {
    let file = std::fs::File::create(log).expect("creating the server's log");
    let child = cws(bin, home)
        .args(["serve", "--addr", "127.0.0.1:0", "--rate-limit", "0"])
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("starting cws serve");
    let mut server = Server(child);
    let started = Instant::now();
    loop {
        let f = std::fs::File::open(log).expect("the server's log");
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("cws serve: listening on http://") {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                return (server, addr.parse().expect("a socket address"));
            }
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!(
                "cws serve exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "cws serve did not say where it listens within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request on a fresh connection: status and body.
async fn once(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &'static str,
) -> (StatusCode, Vec<u8>) {
    let mut sender = connect(addr).await.expect("connecting to cws serve");
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, addr.to_string())
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("a request");
    let resp = sender.send_request(req).await.expect("an answer");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("a body").to_bytes();
    (status, body.to_vec())
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a whole number")),
        Err(_) => default,
    }
}

fn main() {
    let clients = env_number("SERVE_LOAD_CLIENTS", 200) as usize;
    let duration = Duration::from_secs(env_number("SERVE_LOAD_SECS", 10));
    let bin = cws_binary();
    if !bin.is_file() {
        eprintln!("serve_load: {} is missing", bin.display());
        std::process::exit(2);
    }
    // The driver: as many threads as the server gets (every core), in this process.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    // The baseline, on a runtime of its own, as cws serve has a process of its own.
    let base_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let base_listener = base_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("binding the baseline");
    let base_addr = base_listener.local_addr().expect("an address");
    let (stop_base, stopped) = tokio::sync::oneshot::channel::<()>();
    let base_task = base_rt.spawn(async move {
        let app = axum::Router::new().route("/x", axum::routing::get(|| async { "ok" }));
        axum::serve(base_listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    println!(
        "serve_load: {clients} clients x {} s, baseline (axum, `GET /x`) on {base_addr}",
        duration.as_secs()
    );
    let base = rt.block_on(drive(
        base_addr,
        Arc::new(kinds(&[("GET /x", "GET", "/x", "")])),
        Arc::new(Vec::new()),
        clients,
        duration,
    ));
    let _ = stop_base.send(());
    let _ = base_rt.block_on(base_task);
    drop(base_rt);

    // cws serve.
    let home = tempfile::tempdir().expect("a scratch CWS_HOME");
    let publisher = token(&bin, home.path(), "Alice <alice@uni.edu>", "publish");
    let readers: Vec<String> = (0..READ_TOKENS)
        .map(|i| {
            token(
                &bin,
                home.path(),
                &format!("Reader {i} <reader{i}@uni.edu>"),
                "read",
            )
        })
        .collect();
    let log = home.path().join("serve.log");
    let (server, addr) = start_server(&bin, home.path(), &log);
    let cws_kinds = cws_kinds();
    println!(
        "serve_load: {} serve on {addr}: {}",
        bin.display(),
        cws_kinds
            .iter()
            .map(|k| format!("{}{}", k.name, if k.anonymous { " (no token)" } else { "" }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (status, body) = rt.block_on(once(
        addr,
        Method::POST,
        "/api/v1/listings",
        Some(&publisher),
        LISTING,
    ));
    assert!(
        status.is_success(),
        "publishing alice/lab: {status} {}",
        String::from_utf8_lossy(&body)
    );
    let run = rt.block_on(drive(
        addr,
        Arc::new(cws_kinds),
        Arc::new(readers),
        clients,
        duration,
    ));
    let (status, body) = rt.block_on(once(
        addr,
        Method::GET,
        "/api/v1/listings/alice/lab",
        None,
        "",
    ));
    assert_eq!(
        status,
        StatusCode::OK,
        "GET /api/v1/listings/alice/lab: {}",
        String::from_utf8_lossy(&body)
    );
    let listing: serde_json::Value = serde_json::from_slice(&body).expect("the listing's JSON");
    let log_lines = std::fs::read_to_string(&log)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    drop(server);

    // The table.
    let base_all = base.all();
    let cws_all = run.all();
    println!();
    println!("| server | request | answered | req/s | p50 ms | p99 ms | statuses |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "{}",
        row("minimal axum 0.8", "`GET /x`", &base_all, base.elapsed)
    );
    for (name, t) in &run.tallies {
        println!("{}", row("cws serve", name, t, run.elapsed));
    }
    println!(
        "{}",
        row("cws serve", "all three, in turn", &cws_all, run.elapsed)
    );
    let (base_rps, _, base_p99) = figures(&base_all, base.elapsed);
    let (cws_rps, _, cws_p99) = figures(&cws_all, run.elapsed);
    println!();
    println!(
        "cws serve / minimal axum: {:.3} of the throughput ({cws_rps:.0} / {base_rps:.0} req/s), \
         p99 {:.1}x ({cws_p99:.2} / {base_p99:.2} ms)",
        cws_rps / base_rps,
        cws_p99 / base_p99
    );
    println!(
        "({clients} clients, {:.1} s and {:.1} s of load; cws serve wrote {log_lines} log lines)",
        base.elapsed.as_secs_f64(),
        run.elapsed.as_secs_f64()
    );

    // Exactness.
    let answered_204 = run
        .tallies
        .iter()
        .find(|(n, _)| *n == "download")
        .and_then(|(_, t)| t.statuses.get(&204).copied())
        .unwrap_or(0);
    let counted = listing["downloads"].as_u64();
    let version_counted = listing["versions"][0]["downloads"].as_u64();
    println!(
        "downloads: {answered_204} answered 204; the listing counts {}, its version 1.0.0 {}",
        counted.map_or("nothing".into(), |n| n.to_string()),
        version_counted.map_or("nothing".into(), |n| n.to_string()),
    );
    let mut ok = true;
    if counted != Some(answered_204) || version_counted != Some(answered_204) {
        eprintln!("serve_load: FAILED: downloads lost or doubled");
        ok = false;
    }
    for (server, all) in [("baseline", &base_all), ("cws serve", &cws_all)] {
        if all.failed() > 0 {
            eprintln!(
                "serve_load: FAILED: {} requests to {server} failed ({}){}",
                all.failed(),
                statuses(all),
                all.first_error
                    .as_deref()
                    .map(|e| format!("; first transport error: {e}"))
                    .unwrap_or_default()
            );
            ok = false;
        }
    }
    if !ok {
        // exit() runs no destructors: remove the scratch home first.
        drop(home);
        std::process::exit(1);
    }
    println!("serve_load: every request answered 2xx; downloads exact");
}
