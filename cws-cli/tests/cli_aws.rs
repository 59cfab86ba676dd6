//! The `cws` binary with `--provider aws` against moto's EC2 server on loopback: the same
//! commands a user runs against AWS. Skipped (with a printed reason) when moto is not
//! installed, except in CI, which always has it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use cws_aws::moto_harness::{MotoServer, ids};
use cws_provider::*;
use cws_template::Architecture;
use serde_json::Value;

struct Aws {
    moto: MotoServer,
    home: tempfile::TempDir,
}

impl Aws {
    fn start() -> Option<Aws> {
        let moto = MotoServer::start_or_skip()?;
        Some(Aws {
            moto,
            home: tempfile::tempdir().unwrap(),
        })
    }

    fn cws(&self) -> Command {
        Command::from_std(self.std_cws())
    }

    /// The same `cws` as a plain process (to spawn and signal it).
    fn std_cws(&self) -> std::process::Command {
        // Empty AWS config files: nothing from the developer's ~/.aws leaks into the tests.
        for f in ["aws-config", "aws-credentials"] {
            std::fs::write(self.home.path().join(f), "").unwrap();
        }
        // An empty environment first: no developer credentials, token or region get through.
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("cws"));
        c.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            c.env("PATH", path);
        }
        c.env("CWS_HOME", self.home.path())
            .env("HOME", self.home.path())
            .env("CWS_PROVIDER", "aws")
            .env("CWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.home.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.path().join("aws-credentials"),
            );
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cws().args(args).output().unwrap()
    }

    fn templates(&self) -> String {
        let dir = self.home.path().join("templates");
        std::fs::create_dir_all(&dir).unwrap();
        dir.display().to_string()
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn ok(out: Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn write_template(dir: &Path, slug: &str, body: &str) {
    std::fs::write(dir.join(format!("{slug}.yaml")), body).unwrap();
}

/// An image that exists only in us-east-1 (made from an instance there), and a `lab-box`
/// template that searches for it: resolving it elsewhere plans a cross-region copy. Returns
/// the image and the templates directory.
fn seed_lab_box(
    aws: &Aws,
    rt: &tokio::runtime::Runtime,
    provider: &cws_aws::AwsProvider,
) -> (Image, String) {
    let image = rt.block_on(async {
        let inst = provider
            .run_instance(&RunInstanceRequest {
                region: "us-east-1".into(),
                name: "builder".into(),
                ami_id: ids::NOBLE_AMD64_NEWEST.into(),
                instance_type: "t3.medium".into(),
                architecture: Architecture::X86_64,
                user_data: None,
                root_volume_gb: None,
                tags: BTreeMap::new(),
            })
            .await
            .unwrap();
        provider
            .create_image(&CreateImageRequest {
                region: "us-east-1".into(),
                instance_id: inst.id,
                name: "lab-box-1.0.0".into(),
                description: None,
                no_reboot: true,
                tags: BTreeMap::from([("cws:template".to_string(), "lab-box".to_string())]),
            })
            .await
            .unwrap()
    });
    let dir = aws.templates();
    write_template(
        Path::new(&dir),
        "lab-box",
        "name: Lab box\nslug: lab-box\nversion: 1.0.0\nbase: ubuntu-24.04\ninstance_defaults:\n  type: t3.medium\nami_config:\n  ami_search:\n    owners: [self]\n    name_pattern: \"lab-box-*\"\n    required_tags: {cws:template: lab-box}\n",
    );
    (image, dir)
}

#[test]
fn resolve_by_mapping_search_and_script_on_aws() {
    let Some(aws) = Aws::start() else { return };
    // The bundled python-ml maps us-east-1 to an image moto holds.
    let v = ok(aws.run(&["--json", "ami", "resolve", "python-ml"]));
    assert_eq!(v["method"], "direct_mapping");
    assert_eq!(v["ami_id"], ids::PYTHON_ML_1_2_X86);
    assert_eq!(v["provider"]["name"], "aws");
    assert_eq!(v["provider"]["simulated"], false);

    // A search template: the newest available image from the trusted owner, never the newer
    // impostor from an untrusted account or the pending release candidate.
    let dir = aws.templates();
    write_template(
        Path::new(&dir),
        "ml-search",
        "name: ML search\nslug: ml-search\nversion: 1.0.0\nbase: ubuntu-24.04\nami_config:\n  ami_search:\n    owners: [\"704381954421\"]\n    name_pattern: \"cws-python-ml-*\"\n    architectures: [x86_64]\n",
    );
    let v = ok(aws.run(&[
        "--templates",
        &dir,
        "--json",
        "ami",
        "resolve",
        "ml-search",
        "--region",
        "eu-west-3",
    ]));
    assert_eq!(v["method"], "dynamic_search");
    assert_eq!(v["ami_id"], ids::PYTHON_ML_1_2_X86);

    // A script template on the newest Canonical Ubuntu 24.04 image.
    let v = ok(aws.run(&["--json", "ami", "resolve", "python-research"]));
    assert_eq!(v["method"], "script_fallback");
    assert_eq!(v["ami_id"], ids::NOBLE_AMD64_NEWEST);
}

#[test]
fn cross_region_copy_launch_and_instance_lifecycle_on_aws() {
    let Some(aws) = Aws::start() else { return };
    let rt = rt();
    let provider = rt.block_on(aws.moto.provider()).unwrap();

    // An image that exists only in us-east-1: made from an instance there.
    let (image, dir) = seed_lab_box(&aws, &rt, &provider);

    // us-east-2 falls back to us-east-1 first: a copy is planned.
    let v = ok(aws.run(&[
        "--templates",
        &dir,
        "--region",
        "us-east-2",
        "--json",
        "ami",
        "resolve",
        "lab-box",
    ]));
    assert_eq!(v["method"], "cross_region", "{v:#}");
    assert_eq!(v["source_region"], "us-east-1");
    assert_eq!(v["ami_id"], image.id.as_str());

    // Launch with --yes: copied, tagged, launched.
    let v = ok(aws.run(&[
        "--templates",
        &dir,
        "--region",
        "us-east-2",
        "--yes",
        "--json",
        "launch",
        "lab-box",
        "box",
    ]));
    let copy = v["copied_image"].as_str().unwrap().to_string();
    let instance_id = v["instance"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["instance"]["ami_id"], copy.as_str());

    // The instance is real in EC2, with its tags.
    let found = rt
        .block_on(provider.describe_instances(
            "us-east-2",
            &InstanceFilter {
                ids: vec![instance_id.clone()],
                ..InstanceFilter::default()
            },
        ))
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "box");
    assert_eq!(
        found[0].tags.get("cws:template").map(String::as_str),
        Some("lab-box")
    );
    // The copy carries its provenance.
    let copied = rt
        .block_on(provider.image("us-east-2", &copy))
        .unwrap()
        .unwrap();
    assert_eq!(
        copied.tags.get("cws:source-ami").map(String::as_str),
        Some(image.id.as_str())
    );

    // The next resolution in us-east-2 finds the copy by search.
    let v = ok(aws.run(&[
        "--templates",
        &dir,
        "--region",
        "us-east-2",
        "--json",
        "ami",
        "resolve",
        "lab-box",
    ]));
    assert_eq!(v["method"], "dynamic_search");
    assert_eq!(v["ami_id"], copy.as_str());

    // Stop and terminate through the CLI.
    let v = ok(aws.run(&["--region", "us-east-2", "--json", "instance", "stop", "box"]));
    assert_eq!(v["instance"]["state"], "stopped");
    let v = ok(aws.run(&[
        "--region",
        "us-east-2",
        "--yes",
        "--json",
        "instance",
        "terminate",
        "box",
    ]));
    assert_eq!(v["instance"]["state"], "terminated");
}

#[test]
fn ami_test_across_regions_on_aws() {
    let Some(aws) = Aws::start() else { return };
    let v = ok(aws.run(&[
        "--json",
        "ami",
        "test",
        "python-ml",
        "--region",
        "us-east-1",
        "--region",
        "eu-west-1",
        "--region",
        "ap-south-1",
        "--region",
        "sa-east-1",
    ]));
    let rows = v["regions"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        // moto holds the seeded python-ml images in every region.
        assert_eq!(r["status"], "available", "{r:#}");
    }
}

#[test]
fn an_unreachable_endpoint_is_a_clear_provider_error() {
    let Some(aws) = Aws::start() else { return };
    let out = aws
        .cws()
        .env("CWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .args(["ami", "resolve", "python-ml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(!err.contains("WARN"), "{err}");
}

#[test]
fn an_image_of_a_launched_box_is_listed_as_private_on_aws() {
    let Some(aws) = Aws::start() else { return };
    // cws launch python-research box && cws ami create python-research box --name "My Setup"
    let launched = ok(aws.run(&[
        "--provider",
        "aws",
        "--json",
        "launch",
        "python-research",
        "box",
    ]));
    let instance = launched["instance"]["id"].as_str().unwrap().to_string();
    let out = aws.run(&[
        "--provider",
        "aws",
        "ami",
        "create",
        "python-research",
        "box",
        "--name",
        "My Setup",
    ]);
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Provider: aws"), "{text}");
    assert!(text.contains("Created ami-"), "{text}");
    assert!(text.contains(&instance), "{text}");
    assert!(!text.contains("[simulated]"), "{text}");
    assert!(text.contains("python-research has no ami_config"), "{text}");

    // The same command again finds the image on EC2 instead of failing on the name.
    let created = ok(aws.run(&[
        "--provider",
        "aws",
        "--json",
        "ami",
        "create",
        "python-research",
        "box",
        "--name",
        "My Setup",
    ]));
    assert_eq!(created["reused"], true, "{created:#}");
    assert_eq!(created["state"], "available");
    assert_eq!(created["provider"]["simulated"], false);
    let ami = created["ami_id"].as_str().unwrap().to_string();

    // cws ami list --template python-research shows it as the account's private image.
    let list = ok(aws.run(&[
        "--provider",
        "aws",
        "--json",
        "ami",
        "list",
        "--template",
        "python-research",
    ]));
    let row = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == ami.as_str())
        .unwrap_or_else(|| panic!("{ami} not listed: {list:#}"));
    assert_eq!(row["source"], "private", "{row:#}");
    let out = aws.run(&[
        "--provider",
        "aws",
        "ami",
        "list",
        "--template",
        "python-research",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&ami))
        .unwrap_or_else(|| panic!("{ami} not in the table:\n{text}"));
    assert!(line.contains("private"), "{line}");
}

/// The network loses EC2's answer after EC2 acted: a proxy in front of moto lets moto carry
/// the call out, then answers 500. moto ignores client tokens, so only cws's own intent
/// lookups stand between a retry and a second resource: one `launch` makes exactly one
/// instance, one `ami create` one image, one `ami copy` one tagged copy.
#[test]
fn a_lost_answer_makes_exactly_one_instance_image_and_copy_on_aws() {
    use cws_aws::moto_harness::LossyProxy;
    let Some(aws) = Aws::start() else { return };
    let proxy = LossyProxy::start(&aws.moto).unwrap();
    let rt = rt();
    // Checks go to moto directly, not through the proxy.
    let moto = rt.block_on(aws.moto.provider()).unwrap();
    let through_proxy = |args: &[&str]| {
        aws.cws()
            .env("CWS_ENDPOINT_URL", proxy.endpoint())
            .args(args)
            .output()
            .unwrap()
    };
    let own_named = |region: &str, name: &str| {
        rt.block_on(moto.describe_images(region, &ImageQuery::owned_by(["self"]).name(name)))
            .unwrap()
    };

    proxy.lose("RunInstances", 1);
    let v = ok(through_proxy(&["--json", "launch", "python-ml", "f1"]));
    assert_eq!(proxy.lost(), 1, "the answer was lost");
    let all = rt
        .block_on(moto.describe_instances("us-east-1", &InstanceFilter::default()))
        .unwrap();
    let f1: Vec<&Instance> = all.iter().filter(|i| i.name == "f1").collect();
    assert_eq!(f1.len(), 1, "one launch, one instance: {f1:?}");
    assert_eq!(v["instance"]["id"], f1[0].id.as_str());

    proxy.lose("CreateImage", 1);
    let v = ok(through_proxy(&[
        "--json",
        "ami",
        "create",
        "python-ml",
        "f1",
        "--name",
        "Lost Answer",
    ]));
    assert_eq!(proxy.lost(), 2);
    let images = own_named("us-east-1", "Lost Answer");
    assert_eq!(images.len(), 1, "one create, one image: {images:?}");
    let ami = v["ami_id"].as_str().unwrap().to_string();
    assert_eq!(images[0].id, ami);

    proxy.lose("CopyImage", 1);
    let v = ok(through_proxy(&[
        "--json",
        "--yes",
        "ami",
        "copy",
        &ami,
        "--to",
        "us-west-2",
    ]));
    assert_eq!(proxy.lost(), 3);
    let copies = own_named("us-west-2", "Lost Answer");
    assert_eq!(copies.len(), 1, "one copy: {copies:?}");
    assert_eq!(v["ami_id"], copies[0].id.as_str());
    assert_eq!(
        copies[0].tags.get("cws:source-ami").map(String::as_str),
        Some(ami.as_str()),
        "the copy carries its provenance"
    );
}

/// Ctrl-C while CreateImage is in flight (sent, carried out by EC2, not yet answered): cws
/// exits 130 without denying anything, and `ami status` lists the image, found by the intent
/// recorded before the call.
#[cfg(unix)]
#[test]
fn ctrl_c_after_create_image_was_sent_leaves_it_recorded_on_aws() {
    use cws_aws::moto_harness::LossyProxy;
    let Some(aws) = Aws::start() else { return };
    let proxy = LossyProxy::start(&aws.moto).unwrap();
    ok(aws.run(&["--json", "launch", "python-ml", "box"]));

    proxy.stall("CreateImage", 1);
    let child = aws
        .std_cws()
        .env("CWS_ENDPOINT_URL", proxy.endpoint())
        .args(["ami", "create", "python-ml", "box", "--name", "Interrupted"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded, not timed) until EC2 has carried the call out.
    let mut polls = 0;
    while proxy.carried("CreateImage") == 0 {
        polls += 1;
        assert!(polls < 1200, "CreateImage never reached moto");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signals the child this test spawned, by its pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(err.contains("`cws ami status` shows them"), "{err}");
    assert!(
        !err.contains("nothing to clean up"),
        "never deny what may exist: {err}"
    );

    let status = ok(aws.run(&["--json", "ami", "status"]));
    let rows = status["images"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{status}");
    let rt = rt();
    let moto = rt.block_on(aws.moto.provider()).unwrap();
    let made = rt
        .block_on(moto.describe_images(
            "us-east-1",
            &ImageQuery::owned_by(["self"]).name("Interrupted"),
        ))
        .unwrap();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(rows[0]["image_id"], made[0].id.as_str(), "{status}");
    assert_eq!(rows[0]["state"], "available", "{status}");
    assert!(
        rows[0]["finish"]
            .as_str()
            .unwrap()
            .starts_with("cws ami create python-ml box --name Interrupted"),
        "{status}"
    );

    // Finishing the job adopts that image; no second one is made.
    let v = ok(aws.run(&[
        "--json",
        "ami",
        "create",
        "python-ml",
        "box",
        "--name",
        "Interrupted",
    ]));
    assert_eq!(v["ami_id"], made[0].id.as_str());
    let after = rt
        .block_on(moto.describe_images(
            "us-east-1",
            &ImageQuery::owned_by(["self"]).name("Interrupted"),
        ))
        .unwrap();
    assert_eq!(after.len(), 1);
}

/// Ctrl-C while a launch's cross-region CopyImage is in flight: exit 130 with what may exist,
/// `ami status` lists the copy (found by the intent recorded before the call), and the next
/// launch adopts that copy instead of paying for another.
#[cfg(unix)]
#[test]
fn ctrl_c_during_a_launch_copy_loses_nothing_and_the_next_launch_pays_once() {
    use cws_aws::moto_harness::LossyProxy;
    let Some(aws) = Aws::start() else { return };
    let rt = rt();
    let moto = rt.block_on(aws.moto.provider()).unwrap();
    let (_, dir) = seed_lab_box(&aws, &rt, &moto);
    let proxy = LossyProxy::start(&aws.moto).unwrap();
    proxy.stall("CopyImage", 1);
    let child = aws
        .std_cws()
        .env("CWS_ENDPOINT_URL", proxy.endpoint())
        .args([
            "--templates",
            &dir,
            "--region",
            "us-east-2",
            "--yes",
            "launch",
            "lab-box",
            "box",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut polls = 0;
    while proxy.carried("CopyImage") == 0 {
        polls += 1;
        assert!(polls < 1200, "CopyImage never reached moto");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signals the child this test spawned, by its pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("`cws ami status` lists a copy"), "{err}");

    let copies = || {
        rt.block_on(moto.describe_images(
            "us-east-2",
            &ImageQuery::owned_by(["self"]).name("lab-box-1.0.0"),
        ))
        .unwrap()
    };
    let made = copies();
    assert_eq!(made.len(), 1, "moto carried the copy out: {made:?}");
    let status = ok(aws.run(&["--json", "ami", "status"]));
    let rows = status["images"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{status}");
    assert_eq!(rows[0]["image_id"], made[0].id.as_str(), "{status}");
    assert_eq!(rows[0]["operation"], "copy", "{status}");

    // The same launch again adopts the copy: still one copy, and the box runs from it.
    let v = ok(aws.run(&[
        "--templates",
        &dir,
        "--region",
        "us-east-2",
        "--yes",
        "--json",
        "launch",
        "lab-box",
        "box",
    ]));
    assert_eq!(copies().len(), 1, "no second copy was paid for");
    assert_eq!(v["instance"]["ami_id"], made[0].id.as_str(), "{v}");
    let status = ok(aws.run(&["--json", "ami", "status"]));
    assert_eq!(status["images"].as_array().unwrap().len(), 0, "{status}");
}

// ---------------------------------------------------------------------------------------------
// Calls and round trips, as a user meets them: the whole `cws` process, counted from outside
// by a proxy in front of moto that holds every request for a latency and logs its action and
// wave (a run of requests in flight together: one round trip).

/// What one `cws` run asked, seen by the proxy.
struct Measured {
    out: Output,
    wall: std::time::Duration,
    requests: Vec<cws_aws::moto_harness::Relayed>,
}

impl Measured {
    fn json(&self) -> Value {
        assert!(
            self.out.status.success(),
            "exit {:?}\nstderr: {}",
            self.out.status.code(),
            String::from_utf8_lossy(&self.out.stderr)
        );
        json(&self.out)
    }

    fn calls(&self) -> usize {
        self.requests.len()
    }

    fn waves(&self) -> u32 {
        self.requests.iter().map(|r| r.wave).max().unwrap_or(0)
    }

    fn asked(&self, action: &str) -> usize {
        self.requests.iter().filter(|r| r.action == action).count()
    }
}

fn measure(
    aws: &Aws,
    proxy: &cws_aws::moto_harness::LossyProxy,
    extra_env: &[(&str, &str)],
    args: &[&str],
) -> Measured {
    proxy.clear_requests();
    let mut c = aws.std_cws();
    c.env("CWS_ENDPOINT_URL", proxy.endpoint());
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let start = std::time::Instant::now();
    let out = c.args(args).output().unwrap();
    let wall = start.elapsed();
    Measured {
        out,
        wall,
        requests: proxy.requests(),
    }
}

/// The scenarios of the performance table: (label, extra args before the command, command).
fn user_view_scenarios(lab_dir: &str) -> Vec<(&'static str, Vec<String>, &'static str)> {
    let t = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        (
            "direct-mapping hit",
            t(&["ami", "resolve", "python-ml", "--region", "us-east-1"]),
            "direct_mapping",
        ),
        (
            "dynamic-search hit",
            t(&["ami", "resolve", "python-ml", "--region", "eu-central-1"]),
            "dynamic_search",
        ),
        (
            "found only in a fallback region",
            t(&[
                "--templates",
                lab_dir,
                "ami",
                "resolve",
                "lab-box",
                "--region",
                "ca-central-1",
            ]),
            "cross_region",
        ),
        (
            "nothing anywhere -> script",
            t(&[
                "--templates",
                lab_dir,
                "ami",
                "resolve",
                "absent-box",
                "--region",
                "ca-central-1",
            ]),
            "script_fallback",
        ),
    ]
}

/// A proxy with latency in front of moto, the lab-box image in us-east-1 only, and a template
/// nothing serves.
fn user_view_setup(
    latency: std::time::Duration,
) -> Option<(Aws, cws_aws::moto_harness::LossyProxy, String)> {
    let aws = Aws::start()?;
    let rt = rt();
    let moto = rt.block_on(aws.moto.provider()).unwrap();
    let (_, dir) = seed_lab_box(&aws, &rt, &moto);
    write_template(
        Path::new(&dir),
        "absent-box",
        "name: Absent box\nslug: absent-box\nversion: 1.0.0\nbase: ubuntu-24.04\nami_config:\n  ami_search:\n    owners: [self]\n    name_pattern: \"absent-box-*\"\n    required_tags: {cws:template: absent-box}\n",
    );
    let proxy = cws_aws::moto_harness::LossyProxy::start(&aws.moto).unwrap();
    proxy.set_latency(latency);
    Some((aws, proxy, dir))
}

#[test]
fn a_hit_is_one_round_trip_and_a_cached_repeat_asks_nothing() {
    // The latency only makes requests sent together overlap at the proxy, so that waves can
    // be told apart; nothing here is timed.
    let Some((aws, proxy, dir)) = user_view_setup(std::time::Duration::from_millis(100)) else {
        return;
    };
    let no_cache = [("CWS_CACHE_TTL", "0")];
    for (label, args, method) in user_view_scenarios(&dir) {
        let mut argv: Vec<&str> = vec!["--json"];
        argv.extend(args.iter().map(String::as_str));
        let m = measure(&aws, &proxy, &no_cache, &argv);
        assert_eq!(m.json()["method"], method, "{label}");
        // Nothing sequential in front of the probes: the account id, when a merged search
        // needs it to tell the user's images from the publisher's, is asked in the same
        // round trip as the searches, never in one of its own.
        assert!(
            m.requests
                .iter()
                .filter(|r| r.action == "GetCallerIdentity")
                .all(|r| r.wave == 1),
            "{label}: {:?}",
            m.requests
        );
        assert!(
            m.asked("GetCallerIdentity") <= 1,
            "{label}: {:?}",
            m.requests
        );
        // A hit: the mapped id (when there is one), python-ml's search merged with the search
        // for the user's own copies, and (no cache here) the account id beside them.
        let (max_calls, waves) = match method {
            "direct_mapping" => (3, 1),
            "dynamic_search" => (2, 1),
            _ => (usize::MAX, 2),
        };
        assert!(m.calls() <= max_calls, "{label}: {:?}", m.requests);
        assert_eq!(m.waves(), waves, "{label}: {:?}", m.requests);
    }

    // The repeat within the cache's time-to-live, in a new process: no call at all.
    let argv = [
        "--json",
        "ami",
        "resolve",
        "python-ml",
        "--region",
        "us-east-1",
    ];
    let first = measure(&aws, &proxy, &[], &argv);
    assert_eq!(first.json()["method"], "direct_mapping");
    assert!(first.calls() >= 1);
    let repeat = measure(&aws, &proxy, &[], &argv);
    assert_eq!(repeat.json()["ami_id"], first.json()["ami_id"]);
    assert_eq!(repeat.calls(), 0, "{:?}", repeat.requests);
    // Other regions within the time-to-live. Splitting a merged search needs the account id,
    // asked beside the search once; after that it comes from the cache, so the mapped id and
    // the one merged search are all a resolution takes.
    let resolve_in = |region: &str| {
        measure(
            &aws,
            &proxy,
            &[],
            &["--json", "ami", "resolve", "python-ml", "--region", region],
        )
    };
    let learns = resolve_in("eu-west-1");
    assert_eq!(learns.json()["method"], "dynamic_search");
    assert_eq!(learns.waves(), 1, "{:?}", learns.requests);
    // (The first run may already have learnt it, if its answer came back in time.)
    assert!(
        learns.asked("GetCallerIdentity") <= 1,
        "{:?}",
        learns.requests
    );
    let knows = resolve_in("ap-southeast-1");
    assert_eq!(knows.json()["method"], "dynamic_search");
    assert_eq!(
        (knows.calls(), knows.waves()),
        (2, 1),
        "{:?}",
        knows.requests
    );

    // `ami test --all-regions`: every region's first wave at once; a region's cross-region
    // answer comes from the other regions' answers, not asked again. At most two calls per
    // region (the merged search, and the mapped id where there is one or else the base
    // image), and one account lookup for the whole command.
    let m = measure(
        &aws,
        &proxy,
        &no_cache,
        &["--json", "ami", "test", "python-ml", "--all-regions"],
    );
    let regions = m.json()["regions"].as_array().unwrap().len();
    assert_eq!(regions, 34);
    assert!(m.waves() <= 2, "{:?}", m.requests);
    assert!(m.calls() <= 2 * regions + 1, "{} calls", m.calls());
    assert!(m.asked("GetCallerIdentity") <= 1);
}

/// The performance table of the README: wall time in units of the injected latency L, calls
/// and round trips per command, for the default resolver beside the eager one and the
/// sequential walk. Run with `benches/user_view.sh` (a release build, L = 200 ms).
#[test]
#[ignore = "a measurement, not a test: run by benches/user_view.sh"]
fn user_view_table() {
    let latency_ms: u64 = std::env::var("CWS_BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let latency = std::time::Duration::from_millis(latency_ms);
    let Some((aws, proxy, dir)) = user_view_setup(latency) else {
        panic!("moto is needed for this measurement");
    };
    let l = latency.as_secs_f64();
    println!(
        "\n`cws --provider aws` against moto, L = {latency_ms} ms injected per request (wall in L; calls; waves)\n"
    );
    println!("| command | waves (default) | eager | sequential |\n|---|---|---|---|");
    let no_cache = [("CWS_CACHE_TTL", "0")];
    let mut rows: Vec<(String, Vec<String>)> = user_view_scenarios(&dir)
        .into_iter()
        .map(|(label, args, _)| (label.to_string(), args))
        .collect();
    rows.push((
        "`ami test --all-regions` (34 regions)".into(),
        ["ami", "test", "python-ml", "--all-regions"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    ));
    for (label, args) in rows {
        let mut cells = Vec::new();
        for mode in ["waves", "eager", "sequential"] {
            // Best of three: the process start is noise, the round trips are not.
            let runs: Vec<Measured> = (0..3)
                .map(|_| {
                    let mut argv: Vec<&str> = vec!["--json", "--resolve-mode", mode];
                    argv.extend(args.iter().map(String::as_str));
                    measure(&aws, &proxy, &no_cache, &argv)
                })
                .collect();
            let best = runs.iter().min_by_key(|m| m.wall).unwrap();
            best.json();
            cells.push(format!(
                "{:.2} L; {} calls; {} waves",
                best.wall.as_secs_f64() / l,
                best.calls(),
                best.waves()
            ));
        }
        println!("| {label} | {} |", cells.join(" | "));
    }
    let argv = [
        "--json",
        "ami",
        "resolve",
        "python-ml",
        "--region",
        "us-east-1",
    ];
    measure(&aws, &proxy, &[], &argv).json();
    let repeat = measure(&aws, &proxy, &[], &argv);
    repeat.json();
    println!(
        "| repeat `ami resolve` within the cache TTL | {:.2} L; {} calls; {} waves | | |",
        repeat.wall.as_secs_f64() / l,
        repeat.calls(),
        repeat.waves()
    );
}

#[test]
fn a_launch_does_not_pay_for_a_copy_on_a_cached_miss() {
    // `ami resolve` keeps "no lab-box image in ca-central-1" on disk. Meanwhile a copy
    // appears there (made elsewhere). Within the cache's time-to-live, `launch` must not
    // copy again: what rests on a cached "not found" is resolved again before spending.
    let Some(aws) = Aws::start() else { return };
    let rt = rt();
    let provider = rt.block_on(aws.moto.provider()).unwrap();
    let (image, dir) = seed_lab_box(&aws, &rt, &provider);
    let resolve = ["--templates", &dir, "--region", "ca-central-1", "--json"];
    let v = ok(aws
        .cws()
        .args(resolve)
        .args(["ami", "resolve", "lab-box"])
        .output()
        .unwrap());
    assert_eq!(v["method"], "cross_region", "{v:#}");

    let copy = rt
        .block_on(provider.copy_image(&CopyImageRequest {
            source_region: "us-east-1".into(),
            source_image_id: image.id.clone(),
            target_region: "ca-central-1".into(),
            name: "lab-box-1.0.0".into(),
            description: None,
            tags: BTreeMap::new(),
        }))
        .unwrap();
    rt.block_on(provider.create_tags(
        "ca-central-1",
        &copy.id,
        &BTreeMap::from([("cws:template".to_string(), "lab-box".to_string())]),
    ))
    .unwrap();

    // The cached answer still says "copy" (that is what the cache is for) ...
    let v = ok(aws
        .cws()
        .args(resolve)
        .args(["ami", "resolve", "lab-box"])
        .output()
        .unwrap());
    assert_eq!(v["method"], "cross_region", "{v:#}");
    // ... but the launch checks before it spends, and uses the copy that is there.
    let v = ok(aws
        .cws()
        .args(resolve)
        .args(["--yes", "launch", "lab-box", "box"])
        .output()
        .unwrap());
    assert_eq!(v["resolution"]["method"], "dynamic_search", "{v:#}");
    assert_eq!(v["resolution"]["ami_id"], copy.id.as_str(), "{v:#}");
    let copies = rt
        .block_on(provider.describe_images(
            "ca-central-1",
            &ImageQuery::owned_by(["self"]).tag("cws:template", "lab-box"),
        ))
        .unwrap();
    assert_eq!(copies.len(), 1, "no second copy: {copies:?}");
}

/// `--debug` logs one line per provider call: operation, region, duration, outcome, attempts.
#[test]
fn debug_logs_each_provider_call_with_its_timing() {
    let Some(aws) = Aws::start() else { return };
    let out = aws.run(&["--debug", "--cache-ttl", "0", "ami", "resolve", "python-ml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let calls: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("cws::provider_calls"))
        .collect();
    assert!(!calls.is_empty(), "no provider call lines in:\n{err}");
    for l in &calls {
        assert!(l.contains("EC2.") || l.contains("STS."), "{l}");
        assert!(l.contains(" in us-east-1: ") && l.contains(" ms, "), "{l}");
        assert!(l.contains(", ok, 1 attempt"), "{l}");
    }
    assert!(
        calls.iter().any(|l| l.contains("DescribeImages")),
        "{calls:?}"
    );
}
