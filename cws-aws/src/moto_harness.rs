//! A moto EC2 emulator for tests: started on a free loopback port with cws's test images,
//! killed when dropped (also when the test panics).
//!
//! ```no_run
//! # async fn demo() {
//! use cws_aws::moto_harness::MotoServer;
//! let Some(moto) = MotoServer::start_or_skip() else { return };
//! let provider = moto.provider().await.unwrap();
//! # }
//! ```
//!
//! The server is `$CWS_MOTO_SERVER` when set (used as it is), else the workspace's own
//! `.venv-moto/bin/moto_server`, which must hold moto [`MOTO_VERSION`] (the version the tests
//! are written against; another `moto_server` on `PATH` is never used). When the venv is
//! missing, the harness creates it and installs the pinned moto into it (once, under a lock,
//! for every test process), so `cargo test` on a fresh clone needs only `python3` and access
//! to PyPI. A venv holding another moto version is refused with the command that fixes it.
//! When moto cannot be had, [`MotoServer::start_or_skip`] prints why and returns `None` —
//! unless `CI` is set, where moto is required and its absence fails the test.
//!
//! moto serves every region on one port (the region comes from the request signature) and
//! loads the images of [`seed_images`] into each region (through `MOTO_AMIS_PATH`, which
//! replaces moto's defaults), so ids are the same in every region. Images that must exist in
//! one region only are made by the tests themselves (e.g. with `CopyImage`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;

use super::{AwsConfig, AwsProvider};
use cws_provider::ProviderError;

/// The moto version the tests are written against (moto's behaviour differs between
/// releases: 5.2.1 answers some of cws's calls with HTTP 500).
pub const MOTO_VERSION: &str = "5.2.5";

/// What to run to install moto, printed when it is missing.
pub const INSTALL_HINT: &str =
    "python3 -m venv .venv-moto && .venv-moto/bin/pip install 'moto[server,ec2]==5.2.5'";

/// The account moto acts as.
pub const MOTO_ACCOUNT_ID: &str = "123456789012";

/// Owner of the Canonical (Ubuntu) images.
pub const CANONICAL: &str = "099720109477";
/// Owner of the cws-published images.
pub const CWS_PUBLISHER: &str = "704381954421";
/// An owner cws does not trust, publishing look-alike names.
pub const UNTRUSTED: &str = "111122223333";
/// Owner of the Marketplace-style image (with a product code).
pub const MARKETPLACE_SELLER: &str = "679593333241";

/// Ids of the seeded images.
pub mod ids {
    /// Ubuntu 24.04 amd64, oldest (`hvm-ssd`, 2024-04-23).
    pub const NOBLE_AMD64_2024: &str = "ami-0a11ce00000a0001";
    /// Ubuntu 24.04 amd64, 2025-01-15.
    pub const NOBLE_AMD64_2025_01: &str = "ami-0a11ce00000a0002";
    /// Ubuntu 24.04 amd64, newest (2025-10-02): the base image script fallback picks.
    pub const NOBLE_AMD64_NEWEST: &str = "ami-0a11ce00000a0003";
    /// Ubuntu 24.04 arm64, 2025-01-15.
    pub const NOBLE_ARM64_2025_01: &str = "ami-0a11ce00000b0001";
    /// Ubuntu 24.04 arm64, newest (2025-10-02).
    pub const NOBLE_ARM64_NEWEST: &str = "ami-0a11ce00000b0002";
    /// Ubuntu 22.04 amd64.
    pub const JAMMY_AMD64: &str = "ami-0a11ce00000c0001";
    /// cws python-ml 1.0.0, x86_64 (2025-01-10).
    pub const PYTHON_ML_1_0_X86: &str = "ami-0c0ffee00000a100";
    /// cws python-ml 1.1.0, x86_64 (2025-05-20).
    pub const PYTHON_ML_1_1_X86: &str = "ami-0c0ffee00000a110";
    /// cws python-ml 1.2.0, x86_64 (2025-09-01): the newest available x86_64 build, and the
    /// id the bundled `python-ml` template maps for us-east-1.
    pub const PYTHON_ML_1_2_X86: &str = "ami-0c7d3e9a1b2f4a501";
    /// cws python-ml 1.2.0, arm64 (2025-09-01).
    pub const PYTHON_ML_1_2_ARM: &str = "ami-0c0ffee00000b120";
    /// cws python-ml 1.3.0-rc1, x86_64, still `pending` (2025-11-01): never selected.
    pub const PYTHON_ML_1_3_PENDING: &str = "ami-0c0ffee00000a130";
    /// A look-alike `cws-python-ml-9.9.9` from an untrusted owner (2026-01-01).
    pub const PYTHON_ML_IMPOSTOR: &str = "ami-0bad0000000a0999";
    /// Amazon Linux 2023, x86_64.
    pub const AL2023_X86: &str = "ami-0a2023000000a001";
    /// Debian 12, amd64.
    pub const DEBIAN12_AMD64: &str = "ami-0deb12000000a001";
    /// A Marketplace-style image carrying product code [`super::MARKETPLACE_PRODUCT_CODE`].
    pub const MARKETPLACE_RSTUDIO: &str = "ami-0a9a9a00000a0001";
}

/// The product code on [`ids::MARKETPLACE_RSTUDIO`].
pub const MARKETPLACE_PRODUCT_CODE: &str = "cwsmpcode123";

/// The images moto is seeded with (moto's `MOTO_AMIS_PATH` format: one object per image with
/// `ami_id`, `name`, `owner_id`, `architecture`, `creation_date`, `state`, `public`, ...).
pub fn seed_images() -> serde_json::Value {
    use serde_json::json;
    let ubuntu = |id: &str, name: &str, arch: &str, date: &str| {
        json!({
            "ami_id": id, "name": name, "owner_id": CANONICAL, "public": true,
            "architecture": arch, "creation_date": date, "state": "available",
            "description": format!("Canonical, Ubuntu, {name}"),
            "image_type": "machine", "root_device_type": "ebs", "root_device_name": "/dev/sda1",
            "virtualization_type": "hvm", "hypervisor": "xen", "image_location": format!("{CANONICAL}/{name}"),
        })
    };
    let cws = |id: &str, version: &str, arch: &str, date: &str, state: &str| {
        json!({
            "ami_id": id, "name": format!("cws-python-ml-{version}-{arch}"), "owner_id": CWS_PUBLISHER,
            "public": true, "architecture": arch, "creation_date": date, "state": state,
            "description": format!("cws python-ml {version}"),
            "image_type": "machine", "root_device_type": "ebs", "root_device_name": "/dev/sda1",
            "virtualization_type": "hvm", "hypervisor": "xen",
            "tags": {"cws:template": "python-ml", "cws:template-version": version},
        })
    };
    json!([
        ubuntu(ids::NOBLE_AMD64_2024, "ubuntu/images/hvm-ssd/ubuntu-noble-24.04-amd64-server-20240423", "x86_64", "2024-04-23T10:00:00.000Z"),
        ubuntu(ids::NOBLE_AMD64_2025_01, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250115", "x86_64", "2025-01-15T10:00:00.000Z"),
        ubuntu(ids::NOBLE_AMD64_NEWEST, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251002", "x86_64", "2025-10-02T10:00:00.000Z"),
        ubuntu(ids::NOBLE_ARM64_2025_01, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20250115", "arm64", "2025-01-15T10:00:00.000Z"),
        ubuntu(ids::NOBLE_ARM64_NEWEST, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20251002", "arm64", "2025-10-02T10:00:00.000Z"),
        ubuntu(ids::JAMMY_AMD64, "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20250110", "x86_64", "2025-01-10T10:00:00.000Z"),
        cws(ids::PYTHON_ML_1_0_X86, "1.0.0", "x86_64", "2025-01-10T12:00:00.000Z", "available"),
        cws(ids::PYTHON_ML_1_1_X86, "1.1.0", "x86_64", "2025-05-20T12:00:00.000Z", "available"),
        cws(ids::PYTHON_ML_1_2_X86, "1.2.0", "x86_64", "2025-09-01T12:00:00.000Z", "available"),
        cws(ids::PYTHON_ML_1_2_ARM, "1.2.0", "arm64", "2025-09-01T12:00:00.000Z", "available"),
        cws(ids::PYTHON_ML_1_3_PENDING, "1.3.0-rc1", "x86_64", "2025-11-01T12:00:00.000Z", "pending"),
        {
            "ami_id": ids::PYTHON_ML_IMPOSTOR, "name": "cws-python-ml-9.9.9-x86_64", "owner_id": UNTRUSTED,
            "public": true, "architecture": "x86_64", "creation_date": "2026-01-01T00:00:00.000Z",
            "state": "available", "description": "not from cws", "image_type": "machine",
            "root_device_type": "ebs", "root_device_name": "/dev/sda1", "virtualization_type": "hvm",
            "hypervisor": "xen", "tags": {"cws:template": "python-ml"},
        },
        {
            "ami_id": ids::AL2023_X86, "name": "al2023-ami-2023.6.20250115.0-kernel-6.1-x86_64",
            "owner_id": "137112412989", "public": true, "architecture": "x86_64",
            "creation_date": "2025-01-15T08:00:00.000Z", "state": "available",
            "description": "Amazon Linux 2023 AMI", "image_type": "machine", "root_device_type": "ebs",
            "root_device_name": "/dev/xvda", "virtualization_type": "hvm", "hypervisor": "xen",
        },
        {
            "ami_id": ids::DEBIAN12_AMD64, "name": "debian-12-amd64-20250112-1990",
            "owner_id": "136693071363", "public": true, "architecture": "x86_64",
            "creation_date": "2025-01-12T08:00:00.000Z", "state": "available",
            "description": "Debian 12 (20250112-1990)", "image_type": "machine",
            "root_device_type": "ebs", "root_device_name": "/dev/xvda",
            "virtualization_type": "hvm", "hypervisor": "xen",
        },
        {
            "ami_id": ids::MARKETPLACE_RSTUDIO, "name": "cws-mp-rstudio-2025.01-x86_64",
            "owner_id": MARKETPLACE_SELLER, "public": true, "architecture": "x86_64",
            "creation_date": "2025-01-20T08:00:00.000Z", "state": "available",
            "description": "RStudio Server (Marketplace)", "image_type": "machine",
            "root_device_type": "ebs", "root_device_name": "/dev/sda1",
            "virtualization_type": "hvm", "hypervisor": "xen",
            "product_codes": [MARKETPLACE_PRODUCT_CODE],
        },
    ])
}

/// Why moto could not be started.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    /// No `moto_server` was found, and it could not be installed.
    #[error("moto_server not found and not installable here: {why} (run: {INSTALL_HINT})")]
    NotFound {
        /// Why the install did not happen or failed.
        why: String,
    },
    /// The workspace venv holds another moto than [`MOTO_VERSION`].
    #[error(
        "{venv} holds moto {found}, but the tests need moto {MOTO_VERSION}: run \
         `{venv}/bin/pip install 'moto[server,ec2]=={MOTO_VERSION}'` (or remove {venv} and let \
         the tests install it)",
        venv = venv.display()
    )]
    WrongVersion {
        /// The venv.
        venv: PathBuf,
        /// The version it holds.
        found: String,
    },
    /// Starting or talking to it failed.
    #[error("moto_server at {path}: {message} (its log: {log})")]
    Failed {
        /// The executable.
        path: PathBuf,
        /// What went wrong.
        message: String,
        /// Where its output went.
        log: PathBuf,
    },
    /// Local I/O (temp files, ports) failed.
    #[error("moto harness: {0}")]
    Io(#[from] std::io::Error),
}

/// A running moto server, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
    endpoint: String,
    dir: PathBuf,
    /// Keep the temp directory (and moto's log) when the server failed to start.
    keep_dir: bool,
}

/// The moto executable: `$CWS_MOTO_SERVER` as it is, else the workspace venv's, installed
/// there with [`MOTO_VERSION`] when missing (see the module docs).
pub fn find_moto_server() -> Result<PathBuf, MotoError> {
    if let Some(p) = std::env::var_os("CWS_MOTO_SERVER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(MotoError::NotFound {
                why: format!("CWS_MOTO_SERVER={} is not a file", p.display()),
            })
        };
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| MotoError::NotFound {
            why: "no workspace directory".into(),
        })?;
    let venv = workspace.join(".venv-moto");
    // One install for every thread of this process, and a file lock for other processes.
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| install_pinned(&venv))
        .clone()
        .map_err(|why| MotoError::NotFound { why })?;
    match installed_version(&venv) {
        Some(v) if v == MOTO_VERSION => Ok(venv.join("bin/moto_server")),
        Some(found) => Err(MotoError::WrongVersion { venv, found }),
        None => Err(MotoError::NotFound {
            why: format!("{} has no moto", venv.display()),
        }),
    }
}

/// The moto version installed in a venv, from its `moto-X.Y.Z.dist-info` directory.
fn installed_version(venv: &Path) -> Option<String> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    for python in lib.flatten() {
        let Ok(packages) = std::fs::read_dir(python.path().join("site-packages")) else {
            continue;
        };
        for entry in packages.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(v) = name
                .strip_prefix("moto-")
                .and_then(|rest| rest.strip_suffix(".dist-info"))
            {
                return Some(v.to_string());
            }
        }
    }
    None
}

/// Creates the venv and installs the pinned moto when it has no `moto_server` yet.
fn install_pinned(venv: &Path) -> Result<(), String> {
    if venv.join("bin/moto_server").is_file() {
        return Ok(());
    }
    let lock_path = venv.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if venv.join("bin/moto_server").is_file() {
        return Ok(()); // another process installed it while we waited
    }
    eprintln!(
        "installing moto {MOTO_VERSION} into {} for the tests (once)",
        venv.display()
    );
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            Err(format!("{cmd:?} failed: {}", tail.join(" | ")))
        }
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("moto[server,ec2]=={MOTO_VERSION}"),
    ]))
}

impl MotoServer {
    /// Starts moto, or `None` with a printed hint when it is not installed. Panics when it
    /// is missing and `CI` is set, or when it is installed but does not start: those are
    /// failures, not skips.
    pub fn start_or_skip() -> Option<MotoServer> {
        match MotoServer::start() {
            Ok(s) => Some(s),
            Err(e @ MotoError::NotFound { .. }) if std::env::var_os("CI").is_none() => {
                eprintln!("skipping: {e}");
                None
            }
            Err(e @ MotoError::NotFound { .. }) => {
                panic!("{e}; CI is set, so moto is required")
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts moto on a free loopback port with [`seed_images`] and waits until it answers.
    ///
    /// The port is picked by binding port 0 and handed to moto; in the rare case another
    /// process takes it in between, moto exits at once and the start is retried on a new port.
    pub fn start() -> Result<MotoServer, MotoError> {
        let path = find_moto_server()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match MotoServer::start_once(&path) {
                Err(MotoError::Failed { message, .. })
                    if attempt < 3 && message.starts_with("exited") =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    fn start_once(path: &Path) -> Result<MotoServer, MotoError> {
        let dir = unique_temp_dir()?;
        let amis = dir.join("amis.json");
        std::fs::write(&amis, seed_images().to_string())?;
        let log_path = dir.join("moto.log");
        let log = std::fs::File::create(&log_path)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let failed = |message: String| MotoError::Failed {
            path: path.to_path_buf(),
            message,
            log: log_path.clone(),
        };
        let child = Command::new(path)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_AMIS_PATH", &amis)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| failed(format!("could not start: {e}")))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // From here on, Drop kills the child and removes the directory on every path.
        let mut server = MotoServer {
            child,
            addr,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
            keep_dir: true,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                return Err(failed(format!(
                    "exited with {status} before answering: {tail}"
                )));
            }
            if server.get("/moto-api/").is_ok() {
                server.keep_dir = false;
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(failed("did not answer within 60 s".into()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A provider configuration for this server: its endpoint, few retries (a failing call
    /// fails fast), us-east-1.
    pub fn config(&self) -> AwsConfig {
        AwsConfig {
            profile: None,
            endpoint_url: Some(self.endpoint.clone()),
            max_attempts: 3,
            operation_timeout: Duration::from_secs(60),
            default_region: "us-east-1".to_string(),
        }
    }

    /// An [`AwsProvider`] for this server with static dummy credentials (moto accepts any).
    pub async fn provider(&self) -> Result<AwsProvider, ProviderError> {
        self.provider_with(self.config()).await
    }

    /// An [`AwsProvider`] for this server with a custom configuration (its endpoint is
    /// forced to this server's).
    pub async fn provider_with(&self, cfg: AwsConfig) -> Result<AwsProvider, ProviderError> {
        let cfg = AwsConfig {
            endpoint_url: Some(self.endpoint.clone()),
            ..cfg
        };
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(crate::https_client())
            .region(Region::new(cfg.default_region.clone()))
            .credentials_provider(Credentials::new(
                "testing", "testing", None, None, "cws-moto",
            ))
            .endpoint_url(&self.endpoint)
            .load()
            .await;
        AwsProvider::from_sdk_config(cfg, sdk).await
    }

    /// Resets moto's state to the seed (`POST /moto-api/reset`).
    pub fn reset(&self) -> Result<(), MotoError> {
        self.request("POST", "/moto-api/reset").map(|_| ())
    }

    fn get(&self, path: &str) -> Result<String, MotoError> {
        self.request("GET", path)
    }

    /// One plain HTTP/1.0 request (no client library needed for two control calls).
    fn request(&self, method: &str, path: &str) -> Result<String, MotoError> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            self.addr
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        if answer.starts_with("HTTP/1.") {
            Ok(answer)
        } else {
            Err(MotoError::Io(std::io::Error::other(format!(
                "unexpected answer to {method} {path}: {:.80}",
                answer
            ))))
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Child::kill signals this child's pid only; nothing else is touched.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A loopback HTTP proxy in front of moto that can delay, log and lose answers.
///
/// - **Latency**: [`set_latency`](LossyProxy::set_latency) holds every request that long
///   before moto sees it, the way a distant region's round trip does.
/// - **A request log**: every request's action (`DescribeImages`, `GetCallerIdentity`, ...)
///   and the *wave* it belongs to: the requests sent before any of them was answered. A
///   request that arrives once an answer of the current wave has gone out starts the next
///   wave. With latency set, requests a client sends at once share a wave and a request it
///   sends because of an answer does not, so [`requests`](LossyProxy::requests) shows how
///   many round trips a command took and what it asked in each, measured from outside the
///   process.
/// - **Lost answers**: a request for a chosen EC2 action is carried out by moto, then
///   answered `500 InternalError` instead of moto's answer, as when a network drops a
///   response after EC2 acted; or never answered at all.
///
/// One connection carries one request (the proxy closes it after answering), so no HTTP
/// keep-alive state is involved. The proxy thread stops when this value is dropped.
#[derive(Debug)]
pub struct LossyProxy {
    endpoint: String,
    state: std::sync::Arc<ProxyState>,
    addr: SocketAddr,
}

/// One request the proxy relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    /// The API action (`DescribeImages`, `GetCallerIdentity`), or the request path for
    /// JSON APIs.
    pub action: String,
    /// The wave it was part of, from 1 (see [`LossyProxy`]).
    pub wave: u32,
}

#[derive(Debug, Default)]
struct ProxyState {
    rules: std::sync::Mutex<Vec<(String, u32, Loss)>>,
    carried: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    lost: std::sync::atomic::AtomicU32,
    stop: std::sync::atomic::AtomicBool,
    latency: std::sync::Mutex<Duration>,
    log: std::sync::Mutex<Vec<Relayed>>,
    /// (the current wave, whether an answer of it has gone out).
    flight: std::sync::Mutex<(u32, bool)>,
}

fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What happens to a matching request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// Answered `500 InternalError`.
    Lost,
    /// Never answered: the connection is held open until the proxy is dropped.
    Stalled,
}

impl LossyProxy {
    /// Starts a proxy to `moto` on a free loopback port.
    pub fn start(moto: &MotoServer) -> std::io::Result<LossyProxy> {
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let upstream = moto.addr;
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = relay_one(conn, upstream, &st);
                });
            }
        });
        Ok(LossyProxy {
            endpoint: format!("http://{addr}"),
            state,
            addr,
        })
    }

    /// The proxy's endpoint URL (point cws's `--endpoint-url` here).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Holds every request this long before relaying it (zero by default).
    pub fn set_latency(&self, latency: Duration) {
        *locked(&self.state.latency) = latency;
    }

    /// The requests relayed since the last [`clear_requests`](Self::clear_requests), in
    /// arrival order, with their waves.
    pub fn requests(&self) -> Vec<Relayed> {
        locked(&self.state.log).clone()
    }

    /// Forgets the request log and starts counting waves from 1 again.
    pub fn clear_requests(&self) {
        locked(&self.state.log).clear();
        *locked(&self.state.flight) = (0, false);
    }

    /// The next `times` requests for `action` (e.g. `RunInstances`) are carried out and their
    /// answers lost.
    pub fn lose(&self, action: &str, times: u32) {
        locked(&self.state.rules).push((action.to_string(), times, Loss::Lost));
    }

    /// The next `times` requests for `action` are carried out and never answered (the
    /// connection stays open until the proxy is dropped), as when the network stalls.
    pub fn stall(&self, action: &str, times: u32) {
        locked(&self.state.rules).push((action.to_string(), times, Loss::Stalled));
    }

    /// How many requests for `action` moto has carried out through this proxy.
    pub fn carried(&self, action: &str) -> u32 {
        locked(&self.state.carried)
            .get(action)
            .copied()
            .unwrap_or(0)
    }

    /// How many answers have been lost so far.
    pub fn lost(&self) -> u32 {
        self.state.lost.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.state
            .stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// The action a request asks for: the `Action=` of a query-protocol body (EC2, STS), else the
/// request path (JSON APIs such as the Marketplace catalogue).
fn action_of(head: &str, body: &[u8]) -> String {
    let body_text = String::from_utf8_lossy(body);
    if let Some(a) = body_text
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
    {
        return a.to_string();
    }
    head.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Reads one HTTP request from `client`, has moto carry it out (after the latency), and
/// answers with moto's response or, when a rule matches its action, with a 500.
fn relay_one(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: &ProxyState,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (head, body) = read_message(&mut client)?;
    let head_text = String::from_utf8_lossy(&head).into_owned();
    let action = action_of(&head_text, &body);
    let wave = {
        let mut flight = locked(&state.flight);
        if flight.0 == 0 || flight.1 {
            *flight = (flight.0 + 1, false);
        }
        locked(&state.log).push(Relayed {
            action: action.clone(),
            wave: flight.0,
        });
        flight.0
    };
    // Marks the wave answered before the client can see the answer (so a request it sends
    // because of this answer starts a new wave), however the relay ends.
    struct InFlight<'a>(&'a ProxyState, u32, bool);
    impl InFlight<'_> {
        fn land(&mut self) {
            if !self.2 {
                self.2 = true;
                let mut flight = locked(&self.0.flight);
                if flight.0 == self.1 {
                    flight.1 = true;
                }
            }
        }
    }
    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            self.land();
        }
    }
    let mut in_flight = InFlight(state, wave, false);
    let latency = *locked(&state.latency);
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
    // Force one request per connection upstream, so moto closes after answering.
    let mut lines: Vec<&str> = head_text
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .filter(|l| !l.is_empty())
        .collect();
    lines.push("Connection: close");
    let mut request = lines.join("\r\n").into_bytes();
    request.extend_from_slice(b"\r\n\r\n");
    request.extend_from_slice(&body);
    let mut server = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    server.set_read_timeout(Some(Duration::from_secs(60)))?;
    server.write_all(&request)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;

    *locked(&state.carried).entry(action.clone()).or_default() += 1;
    let loss = {
        let mut rules = locked(&state.rules);
        match rules.iter_mut().find(|(a, n, _)| *a == action && *n > 0) {
            Some((_, n, loss)) => {
                *n -= 1;
                Some(*loss)
            }
            None => None,
        }
    };
    if loss == Some(Loss::Stalled) {
        // Hold the connection, unanswered, until the client gives up or the proxy stops.
        in_flight.land();
        while !state.stop.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return Ok(());
    }
    let reply = if loss == Some(Loss::Lost) {
        state.lost.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>\
             InternalError</Code><Message>answer to {action} lost (injected by the test \
             proxy)</Message></Error></Errors><RequestID>lost</RequestID></Response>"
        );
        format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/xml\r\nContent-Length: \
             {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        )
        .into_bytes()
    } else {
        // moto's answer, marked as the last on this connection.
        match answer.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) => {
                let head = String::from_utf8_lossy(&answer[..end]).into_owned();
                let mut lines: Vec<&str> = head
                    .split("\r\n")
                    .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                    .collect();
                lines.push("Connection: close");
                let mut out = lines.join("\r\n").into_bytes();
                out.extend_from_slice(b"\r\n\r\n");
                out.extend_from_slice(&answer[end + 4..]);
                out
            }
            None => answer,
        }
    };
    in_flight.land();
    client.write_all(&reply)?;
    client.flush()?;
    let _ = client.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// One HTTP/1.1 message: its head (up to the blank line) and its `Content-Length` body.
fn read_message(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed before a request"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = buf[..head_end].to_vec();
    let length = String::from_utf8_lossy(&head)
        .split("\r\n")
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((head, body))
}

fn unique_temp_dir() -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "cws-moto-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_images_are_well_formed() {
        let images = seed_images();
        let list = images.as_array().expect("a list");
        let mut seen = std::collections::BTreeSet::new();
        for img in list {
            let id = img["ami_id"].as_str().expect("ami_id");
            assert!(super::super::convert::is_resource_id(id, "ami"), "{id}");
            assert!(seen.insert(id.to_string()), "duplicate {id}");
            for key in ["name", "owner_id", "architecture", "creation_date", "state"] {
                assert!(img[key].is_string(), "{id} lacks {key}");
            }
            // moto passes every key to its Ami constructor: unknown keys would crash it.
            let allowed = [
                "ami_id",
                "name",
                "description",
                "owner_id",
                "public",
                "architecture",
                "state",
                "creation_date",
                "platform",
                "image_type",
                "image_location",
                "hypervisor",
                "root_device_type",
                "root_device_name",
                "sriov",
                "virtualization_type",
                "product_codes",
                "boot_mode",
                "tags",
            ];
            for key in img.as_object().expect("object").keys() {
                assert!(
                    allowed.contains(&key.as_str()),
                    "{id}: moto does not know `{key}`"
                );
            }
        }
        assert!(seen.contains(ids::NOBLE_AMD64_NEWEST));
    }

    #[test]
    fn missing_moto_is_reported_with_the_install_hint() {
        let e = MotoError::NotFound {
            why: "python3 not found".into(),
        };
        assert!(e.to_string().contains(INSTALL_HINT), "{e}");
        assert!(e.to_string().contains("python3 not found"), "{e}");
    }

    #[test]
    fn the_venv_version_is_read_from_its_dist_info_and_another_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("cws-moto-version-{}", std::process::id()));
        let packages = dir.join("lib/python3.11/site-packages");
        std::fs::create_dir_all(packages.join("moto-5.2.1.dist-info")).unwrap();
        std::fs::create_dir_all(packages.join("boto3-1.40.0.dist-info")).unwrap();
        assert_eq!(installed_version(&dir).as_deref(), Some("5.2.1"));
        let e = MotoError::WrongVersion {
            venv: dir.clone(),
            found: "5.2.1".into(),
        };
        let text = e.to_string();
        assert!(text.contains("moto 5.2.1"), "{text}");
        assert!(text.contains("moto[server,ec2]==5.2.5"), "{text}");
        assert_eq!(installed_version(&dir.join("nowhere")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
