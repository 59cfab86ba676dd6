//! `cws serve`, `cws admin token` and the CLI as a client of a server (`--registry`,
//! `--token`), through the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::common::{json, ok_json, run, stderr};

/// A `cws serve` process on an ephemeral loopback port; killed (SIGTERM) when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(home: &Path, extra: &[&str]) -> Served {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("cws"));
        c.env_clear().env("CWS_HOME", home).env("HOME", home);
        if let Some(path) = std::env::var_os("PATH") {
            c.env("PATH", path);
        }
        let mut child = c
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cws serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = String::new();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("cws serve ended before listening:\n{seen}");
            };
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap_or("").to_string();
            }
        };
        assert!(seen.contains("listening on http://127.0.0.1:"), "{seen}");
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Served { child, url }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        terminate(&self.child);
        self.child.wait().expect("wait")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(child: &Child) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
}

/// GET with an optional token, parsed as JSON, through curl-free std networking.
fn http(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let raw = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    let chunked = text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(raw)
    } else {
        raw.to_string()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        raw = &rest[n + 2..];
    }
    out
}

/// Durations measured in a run differ from run to run: zero them to compare answers.
fn without_timings(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k.ends_with("_ms") || k == "resolved_at" || k == "generated_at" {
                        *x = Value::Null;
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[test]
fn each_seed_route_answers_with_the_clis_json_for_the_same_question() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // The CLI first, so the server reads the same LocalCloud state.
    let cli_resolve = ok_json(
        h,
        &[
            "ami",
            "resolve",
            "python-ml",
            "--region",
            "us-west-2",
            "--json",
        ],
    );
    let cli_test = ok_json(
        h,
        &[
            "ami",
            "test",
            "python-ml",
            "--region",
            "eu-west-1",
            "--json",
        ],
    );
    let cli_list = ok_json(
        h,
        &[
            "ami",
            "list",
            "--template",
            "python-ml",
            "--region",
            "us-east-1",
            "--json",
        ],
    );
    let cli_costs = ok_json(
        h,
        &[
            "ami",
            "costs",
            "python-ml",
            "--region",
            "us-east-1",
            "--hours",
            "4",
            "--json",
        ],
    );
    let cli_fallbacks = ok_json(h, &["regions", "fallbacks", "ap-south-1", "--json"]);
    let cli_templates = ok_json(h, &["templates", "list", "--json"]);
    let server = Served::start(h, &[]);
    let u = &server.url;
    let (s, api_resolve) = http(
        "GET",
        &format!("{u}/api/v1/ami/resolve/python-ml?region=us-west-2"),
        None,
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(
        without_timings(api_resolve),
        without_timings(cli_resolve),
        "resolve"
    );
    assert_eq!(
        api_resolve_region(u),
        "us-west-2",
        "the region asked is the region resolved"
    );
    let (_, api_test) = http(
        "GET",
        &format!("{u}/api/v1/ami/test/python-ml?region=eu-west-1"),
        None,
        None,
    );
    assert_eq!(without_timings(api_test), without_timings(cli_test), "test");
    let (_, api_list) = http(
        "GET",
        &format!("{u}/api/v1/ami/list?template=python-ml&region=us-east-1"),
        None,
        None,
    );
    assert_eq!(api_list, cli_list, "list");
    let (_, api_costs) = http(
        "GET",
        &format!("{u}/api/v1/ami/costs?template=python-ml&region=us-east-1&hours=4"),
        None,
        None,
    );
    assert_eq!(api_costs, cli_costs, "costs");
    let (_, api_fallbacks) = http(
        "GET",
        &format!("{u}/api/v1/regions/fallbacks?region=ap-south-1"),
        None,
        None,
    );
    assert_eq!(api_fallbacks, cli_fallbacks, "fallbacks");
    let (_, api_templates) = http("GET", &format!("{u}/api/v1/templates"), None, None);
    assert_eq!(api_templates, cli_templates, "templates");
    let status = server.stop();
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly: {status:?}"
    );
}

fn api_resolve_region(u: &str) -> String {
    let (_, v) = http(
        "GET",
        &format!("{u}/api/v1/ami/resolve/python-ml?region=us-west-2"),
        None,
        None,
    );
    v["target_region"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_lab_registry_in_three_commands_and_researchers_pointed_at_it() {
    let server_home = tempfile::tempdir().unwrap();
    let sh = server_home.path();
    // 1. an admin token, against the server's (default) database.
    let out = run(
        sh,
        &[
            "admin",
            "token",
            "create",
            "--user",
            "Alice Smith <alice@uni.edu>",
            "--scope",
            "publish",
            "--org",
            "uni",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let alice = String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    assert!(
        alice.starts_with("cws_"),
        "the token alone on stdout: {alice}"
    );
    assert!(stderr(&out).contains("shown once"), "{}", stderr(&out));
    let out = run(
        sh,
        &[
            "admin",
            "token",
            "create",
            "--user",
            "Bob Jones <bob@uni.edu>",
            "--scope",
            "rate",
        ],
    );
    let bob = String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    let listed = ok_json(sh, &["admin", "token", "list", "--json"]);
    let text = listed.to_string();
    assert!(
        !text.contains(&alice) && !text.contains(&bob),
        "secrets are never listed"
    );
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 2);
    // 2. the server.
    let server = Served::start(sh, &[]);
    // 3. a researcher's cws pointed at it.
    let researcher = tempfile::tempdir().unwrap();
    let r = researcher.path();
    let out = run(r, &["config", "set", "registry.url", &server.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(r, &["config", "set", "registry.token", &alice]);
    assert!(out.status.success());
    assert!(
        !stderr(&out).contains(&alice),
        "the token is not echoed: {}",
        stderr(&out)
    );
    let shown = ok_json(r, &["config", "show", "--json"]).to_string();
    assert!(
        !shown.contains(&alice),
        "config show masks the token: {shown}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(r.join("config.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the config file holding a token is its owner's only"
        );
    }
    // Alice tunes a workstation, images it, and shares it as a community listing on the server.
    ok_json(r, &["--json", "launch", "python-research", "box"]);
    let made = ok_json(
        r,
        &[
            "--json",
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "Tuned",
        ],
    );
    let ami = made["ami_id"].as_str().unwrap().to_string();
    let out = run(
        r,
        &[
            "ami",
            "share",
            &ami,
            "--community",
            "astro",
            "--yes",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let shared = json(&out);
    assert_eq!(shared["listing"]["id"], "alice/python-research", "{shared}");
    assert_eq!(
        shared["listing"]["registry"],
        server.url.as_str(),
        "published on the server"
    );
    // Bob, from another machine, sees and rates it; the server's database has it.
    let bob_home = tempfile::tempdir().unwrap();
    let b = bob_home.path();
    let browse = ok_json(
        b,
        &[
            "--registry",
            &server.url,
            "--token",
            &bob,
            "ami",
            "browse",
            "--json",
        ],
    );
    assert_eq!(
        browse["listings"][0]["id"], "alice/python-research",
        "{browse}"
    );
    let rated = ok_json(
        b,
        &[
            "--registry",
            &server.url,
            "--token",
            &bob,
            "ami",
            "rate",
            "alice/python-research",
            "5",
            "--json",
        ],
    );
    assert_eq!(rated["rating"]["count"], 1, "{rated}");
    // Without a token a community listing is not shown, and writing is refused.
    let anon = ok_json(b, &["--registry", &server.url, "ami", "browse", "--json"]);
    assert_eq!(anon["listings"].as_array().map(Vec::len), Some(0), "{anon}");
    let out = run(
        b,
        &[
            "--registry",
            &server.url,
            "ami",
            "rate",
            "alice/python-research",
            "4",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("token"), "{}", stderr(&out));
    // A revoked token stops working at once.
    let id = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["identity"]["handle"] == "bob")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run(sh, &["admin", "token", "revoke", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        b,
        &[
            "--registry",
            &server.url,
            "--token",
            &bob,
            "ami",
            "rate",
            "alice/python-research",
            "4",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(server.stop().success());
}

#[test]
fn admin_token_create_refuses_bad_input_with_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for (args, says) in [
        (vec!["--user", "nobody", "--scope", "read"], "--user"),
        (vec!["--user", "A <a@b.edu>", "--scope", "root"], "--scope"),
        (
            vec![
                "--user",
                "A <a@b.edu>",
                "--scope",
                "read",
                "--expires",
                "soon",
            ],
            "--expires",
        ),
        (
            vec![
                "--user",
                "A <a@b.edu>",
                "--scope",
                "read",
                "--database-url",
                "mysql://x",
            ],
            "--database-url",
        ),
    ] {
        let mut a = vec!["admin", "token", "create"];
        a.extend(args);
        let out = run(h, &a);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{a:?}: {}", stderr(&out));
    }
    let out = run(h, &["serve", "--addr", "localhost"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(h, &["config", "set", "registry.url", "ftp://x"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `cws admin token create` and `cws serve` against PostgreSQL (`--database-url`), the shared
/// install: the token made by one command works on the server started by the other.
#[test]
fn serve_and_tokens_on_postgres() {
    let url = match std::env::var("CWS_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI must provide CWS_TEST_DATABASE_URL (.ci/run starts PostgreSQL)")
        }
        _ => {
            eprintln!("skipping: CWS_TEST_DATABASE_URL is not set (no PostgreSQL to test on)");
            return;
        }
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // A handle of its own, so runs against the same database never collide.
    let handle = format!("pg{}", std::process::id());
    let user = format!("Pat Gres <{handle}@uni.edu>");
    let out = run(
        h,
        &[
            "admin",
            "token",
            "create",
            "--database-url",
            &url,
            "--user",
            &user,
            "--scope",
            "read",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("password"), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    let server = Served::start(h, &["--database-url", &url]);
    let (s, who) = http(
        "GET",
        &format!("{}/api/v1/whoami", server.url),
        Some(&token),
        None,
    );
    assert_eq!(s, 200, "{who}");
    assert_eq!(who["identity"]["handle"], handle.as_str());
    let (s, _) = http("GET", &format!("{}/healthz", server.url), None, None);
    assert_eq!(s, 200);
    let id = who["id"].as_str().unwrap().to_string();
    let out = run(
        h,
        &["admin", "token", "revoke", &id, "--database-url", &url],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (s, _) = http(
        "GET",
        &format!("{}/api/v1/whoami", server.url),
        Some(&token),
        None,
    );
    assert_eq!(
        s, 401,
        "revoked in the database, refused by the running server at once"
    );
    assert!(server.stop().success());
}
