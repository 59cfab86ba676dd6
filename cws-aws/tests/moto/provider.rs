//! The AWS provider against moto (a local EC2 emulator): the conformance suite, resolution
//! end to end (direct mapping, dynamic search, cross-region copy, script fallback), launch
//! and instance lifecycle, `test_regions`, call counts; and fault handling against a tiny
//! local HTTP server that answers 500 or throttles (those need no moto).
//!
//! moto is found at `$CWS_MOTO_SERVER`, `<workspace>/.venv-moto/bin/moto_server` or on
//! `PATH`; without it the moto tests print how to install it and pass, except under `CI`,
//! where they fail. Each test starts its own moto on a free loopback port, so tests run in
//! parallel on independent state.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cws_aws::moto_harness::{self, MotoServer, ids};
use cws_aws::{AwsConfig, AwsProvider};
use cws_provider::testing::{Fixture, run_all};
use cws_provider::wrappers::{CachingProvider, CountingProvider};
use cws_provider::*;
use cws_regions::FallbackGraph;
use cws_resolver::service::{self, LaunchRequest, RegionStatus};
use cws_resolver::*;
use cws_template::{Architecture, Template, TemplateStore};

// ---------------------------------------------------------------------------------------------
// Helpers

async fn moto_provider() -> Option<(MotoServer, Arc<AwsProvider>)> {
    let moto = MotoServer::start_or_skip()?;
    let provider = moto
        .provider()
        .await
        .unwrap_or_else(|e| panic!("provider for moto at {}: {e}", moto.endpoint()));
    Some((moto, Arc::new(provider)))
}

fn bundled(slug: &str) -> Template {
    TemplateStore::bundled_only()
        .get(slug)
        .unwrap_or_else(|e| panic!("bundled {slug}: {e}"))
        .template
}

fn template(yaml: &str) -> Template {
    cws_template::parse_str(yaml, "aws_moto test").unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// A template whose only image is mapped in `mapped_region`.
fn xregion_template(mapped_region: &str, image_id: &str) -> Template {
    template(&format!(
        r#"
name: Cross-region demo
slug: xregion-demo
version: 1.0.0
base: ubuntu-24.04
instance_defaults:
  type: t3.micro
  root_volume_gb: 20
ami_config:
  strategy: ami_preferred
  ami_mappings:
    {mapped_region}: {image_id}
  fallback_strategy: script_provisioning
"#
    ))
}

async fn resolve(env: &ResolveEnv, t: &Template, region: &str) -> cws_resolver::Resolution {
    Resolver::for_template(t)
        .resolve(env, &ResolveRequest::new(t.clone(), region))
        .await
}

fn launch_request(t: Template, name: &str, region: &str) -> LaunchRequest {
    LaunchRequest {
        template: t,
        name: name.to_string(),
        region: region.to_string(),
        architecture: None,
        instance_type: None,
        dry_run: false,
        forced_tier: None,
        prefer_script: false,
        session_hours: "8".parse().expect("hours"),
        added_tiers: Vec::new(),
        known_images: Vec::new(),
        refused: Vec::new(),
        allowed_owners: None,
    }
}

/// An image owned by the moto account in `region` only (a copy of a seeded image), so a
/// template can have an image in one region and not the others.
async fn own_image_in(p: &AwsProvider, region: &str, name: &str) -> String {
    let copy = p
        .copy_image(&CopyImageRequest {
            source_region: "us-east-1".into(),
            source_image_id: ids::PYTHON_ML_1_0_X86.into(),
            target_region: region.into(),
            name: name.into(),
            description: Some("aws_moto fixture".into()),
            tags: BTreeMap::new(),
        })
        .await
        .expect("copy_image");
    assert_eq!(copy.region, region);
    copy.id
}

// ---------------------------------------------------------------------------------------------
// Conformance

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_passes_on_moto() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    assert_eq!(p.info().name, "aws");
    assert!(!p.info().simulated);
    assert_eq!(p.requests_sent(), 0, "construction makes no call");
    assert_eq!(
        p.account_id().await.unwrap().as_deref(),
        Some(moto_harness::MOTO_ACCOUNT_ID),
        "account id via STS, when first asked"
    );
    assert_eq!(p.requests_sent(), 1, "one sts:GetCallerIdentity");
    p.account_id().await.unwrap();
    assert_eq!(p.requests_sent(), 1, "asked once per provider");
    let fixture = Fixture {
        region: "us-east-1".into(),
        other_region: "us-west-2".into(),
        base_image_id: ids::NOBLE_AMD64_NEWEST.into(),
        architecture: Architecture::X86_64,
        instance_type: "t3.micro".into(),
    };
    let start = Instant::now();
    run_all(p.as_ref(), &fixture).await;
    eprintln!(
        "conformance suite on moto: {:.1} s, {} HTTP requests",
        start.elapsed().as_secs_f64(),
        p.requests_sent()
    );
}

/// `AwsProvider::new` — what the CLI calls — with the standard chain and a named profile.
/// The credential chain reads the process environment, so the check runs in a child process
/// of this test binary with its own environment (no `set_var` in a threaded test runner).
#[tokio::test(flavor = "multi_thread")]
async fn new_reads_credentials_from_a_named_profile() {
    const CHILD: &str = "CWS_TEST_CHILD_MOTO_ENDPOINT";
    if let Ok(endpoint) = std::env::var(CHILD) {
        let p = AwsProvider::new(AwsConfig {
            profile: Some("cws-test".into()),
            endpoint_url: Some(endpoint.clone()),
            max_attempts: 3,
            ..AwsConfig::default()
        })
        .await
        .expect("AwsProvider::new");
        assert_eq!(
            p.account_id().await.unwrap().as_deref(),
            Some(moto_harness::MOTO_ACCOUNT_ID)
        );
        assert!(
            p.info().description.contains("profile cws-test"),
            "{}",
            p.info().description
        );
        assert!(p.info().description.contains(&endpoint));
        let regions = p.describe_regions().await.expect("describe_regions");
        assert!(regions.contains(&"us-east-1".to_string()));
        let img = p
            .image("eu-west-1", ids::NOBLE_AMD64_NEWEST)
            .await
            .expect("describe");
        assert!(img.is_some());
        return;
    }
    let Some(moto) = MotoServer::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &credentials,
        "[cws-test]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .expect("write credentials");
    let config = dir.path().join("config");
    std::fs::write(&config, "[profile cws-test]\nregion = us-east-1\n").expect("write config");
    let exe = std::env::current_exe().expect("test binary");
    let output = std::process::Command::new(exe)
        .args([
            "--exact",
            "provider::new_reads_credentials_from_a_named_profile",
            "--nocapture",
        ])
        .env(CHILD, moto.endpoint())
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .expect("run the child test");
    assert!(
        output.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "the child ran the test"
    );
}

// ---------------------------------------------------------------------------------------------
// Provider behaviour beyond the suite

#[tokio::test(flavor = "multi_thread")]
async fn searches_map_owners_filters_and_states() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let region = "us-east-1";
    let trusted = ImageQuery::owned_by([moto_harness::CWS_PUBLISHER]).name("cws-python-ml-*");
    let found: Vec<String> = p
        .describe_images(region, &trusted)
        .await
        .expect("search")
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert!(found.contains(&ids::PYTHON_ML_1_2_X86.to_string()));
    assert!(
        !found.contains(&ids::PYTHON_ML_IMPOSTOR.to_string()),
        "untrusted owner"
    );
    assert!(
        !found.contains(&ids::PYTHON_ML_1_3_PENDING.to_string()),
        "pending by default"
    );

    let with_pending = ImageQuery {
        states: vec![ImageState::Pending],
        ..trusted.clone()
    };
    let pending = p
        .describe_images(region, &with_pending)
        .await
        .expect("search");
    assert_eq!(
        pending.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [ids::PYTHON_ML_1_3_PENDING]
    );

    let arm = trusted.clone().architectures([Architecture::Arm64]);
    let arm = p.describe_images(region, &arm).await.expect("search");
    assert_eq!(
        arm.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [ids::PYTHON_ML_1_2_ARM]
    );

    let tagged = trusted.clone().tag("cws:template-version", "1.1.0");
    let tagged = p.describe_images(region, &tagged).await.expect("search");
    assert_eq!(
        tagged.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [ids::PYTHON_ML_1_1_X86]
    );

    let mp = ImageQuery::owned_by([moto_harness::MARKETPLACE_SELLER])
        .product_code(moto_harness::MARKETPLACE_PRODUCT_CODE);
    let mp = p.describe_images(region, &mp).await.expect("search");
    // moto filters on product codes but does not return them in DescribeImages; the field
    // mapping is covered by the unit tests and the mock test (aws_marketplace_mock.rs).
    assert_eq!(
        mp.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [ids::MARKETPLACE_RSTUDIO]
    );
    let other_code = ImageQuery::owned_by([moto_harness::MARKETPLACE_SELLER]).product_code("nope");
    assert!(
        p.describe_images(region, &other_code)
            .await
            .expect("search")
            .is_empty()
    );

    let img = p
        .image(region, ids::NOBLE_AMD64_NEWEST)
        .await
        .expect("by id")
        .expect("exists");
    assert_eq!(img.owner_id, moto_harness::CANONICAL);
    assert!(img.public);
    assert_eq!(
        ec2_time::format(&img.creation_date),
        "2025-10-02T10:00:00.000Z"
    );
    assert_eq!(
        img.snapshot_ids.len(),
        1,
        "moto gives every image one snapshot"
    );
    let size = p.image_size_gb(&img).await.expect("size");
    assert!(size > 0);

    // The same ids are absent, not errors, in any region.
    let none = p
        .describe_images_by_id("eu-west-1", &["ami-0123456789abcdef0".to_string()])
        .await
        .expect("absent");
    assert!(none.is_empty());
    let none = p
        .describe_instances(
            region,
            &InstanceFilter {
                ids: vec!["i-0123456789abcdef0".into()],
                ..InstanceFilter::default()
            },
        )
        .await
        .expect("absent");
    assert!(none.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Resolution

#[tokio::test(flavor = "multi_thread")]
async fn direct_mapping_resolves_the_mapped_image() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let env = ResolveEnv::new(p.clone());
    let t = bundled("python-ml");
    let r = resolve(&env, &t, "us-east-1").await;
    assert_eq!(r.method, Method::DirectMapping, "{r:#?}");
    assert_eq!(r.ami_id.as_deref(), Some(ids::PYTHON_ML_1_2_X86));
    assert!(!r.requires_copy);
    assert!(!r.provider.simulated);
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamic_search_picks_the_newest_trusted_build() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let env = ResolveEnv::new(p.clone());
    let t = bundled("python-ml");
    // The us-west-2 mapping names an id moto does not have, so the search decides: newest
    // available build by a trusted owner (not the newer impostor, not the pending rc).
    let r = resolve(&env, &t, "us-west-2").await;
    assert_eq!(r.method, Method::DynamicSearch, "{r:#?}");
    assert_eq!(r.ami_id.as_deref(), Some(ids::PYTHON_ML_1_2_X86));
    assert_eq!(r.attempts[0].tier, "direct_mapping");

    let mut arm = ResolveRequest::new(t.clone(), "us-west-2");
    arm.architecture = Some(Architecture::Arm64);
    let r = Resolver::for_template(&t).resolve(&env, &arm).await;
    assert_eq!(r.method, Method::DynamicSearch, "{r:#?}");
    assert_eq!(r.ami_id.as_deref(), Some(ids::PYTHON_ML_1_2_ARM));
}

#[tokio::test(flavor = "multi_thread")]
async fn script_fallback_uses_the_newest_ubuntu_base() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let env = ResolveEnv::new(p.clone());
    let t = template(
        r#"
name: Plain Ubuntu
slug: plain-ubuntu
version: 0.1.0
base: ubuntu-24.04
packages:
  system: [git, htop]
"#,
    );
    let r = resolve(&env, &t, "eu-west-1").await;
    assert_eq!(r.method, Method::ScriptFallback, "{r:#?}");
    assert_eq!(r.ami_id.as_deref(), Some(ids::NOBLE_AMD64_NEWEST));

    let mut arm = ResolveRequest::new(t.clone(), "eu-west-1");
    arm.architecture = Some(Architecture::Arm64);
    let r = Resolver::for_template(&t).resolve(&env, &arm).await;
    assert_eq!(r.method, Method::ScriptFallback, "{r:#?}");
    assert_eq!(r.ami_id.as_deref(), Some(ids::NOBLE_ARM64_NEWEST));
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_region_copy_is_made_tagged_and_then_found_locally() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let env = ResolveEnv::new(p.clone());
    let source_id = own_image_in(&p, "us-west-2", "cws-xregion-demo-1.0.0-x86_64").await;
    let t = xregion_template("us-west-2", &source_id);

    let r = resolve(&env, &t, "us-east-1").await;
    assert_eq!(r.method, Method::CrossRegion, "{r:#?}");
    let plan = r.copy.clone().expect("a copy plan");
    assert_eq!(plan.source_region, "us-west-2");
    assert_eq!(plan.source_ami_id, source_id);

    let report = service::launch(
        &env,
        &launch_request(t.clone(), "xr-1", "us-east-1"),
        &AssumeYes,
    )
    .await
    .expect("launch with consent");
    let copied = report.copied_image.clone().expect("a copy was made");
    assert_ne!(copied, source_id);
    let instance = report.instance.clone().expect("launched");
    assert_eq!(instance.ami_id, copied);
    assert_eq!(instance.region, "us-east-1");

    let copy = p
        .image("us-east-1", &copied)
        .await
        .expect("describe copy")
        .expect("copy exists");
    assert_eq!(copy.owner_id, moto_harness::MOTO_ACCOUNT_ID);
    assert_eq!(
        copy.tags.get("cws:template").map(String::as_str),
        Some("xregion-demo")
    );
    assert_eq!(copy.tags.get("cws:source-ami"), Some(&source_id));
    assert_eq!(
        copy.tags.get("cws:source-region").map(String::as_str),
        Some("us-west-2")
    );

    // The next resolution finds the copy in the region: no second copy.
    let again = resolve(&env, &t, "us-east-1").await;
    assert_eq!(again.method, Method::DynamicSearch, "{again:#?}");
    assert_eq!(again.ami_id.as_deref(), Some(copied.as_str()));
    assert!(!again.requires_copy);
}

// ---------------------------------------------------------------------------------------------
// Launch and instances

#[tokio::test(flavor = "multi_thread")]
async fn launch_makes_a_tagged_instance_that_stops_and_terminates() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let env = ResolveEnv::new(p.clone());
    let region = "us-east-1";
    let report = service::launch(
        &env,
        &launch_request(bundled("python-ml"), "ws-1", region),
        &AssumeYes,
    )
    .await
    .expect("launch");
    assert_eq!(report.resolution.method, Method::DirectMapping);
    let launched = report.instance.expect("instance");
    assert_eq!(launched.ami_id, ids::PYTHON_ML_1_2_X86);
    assert_eq!(launched.instance_type, "m6i.xlarge");

    let by_name = InstanceFilter {
        tags: BTreeMap::from([("Name".to_string(), "ws-1".to_string())]),
        ..InstanceFilter::default()
    };
    let listed = p
        .describe_instances(region, &by_name)
        .await
        .expect("describe");
    assert_eq!(listed.len(), 1);
    let inst = &listed[0];
    assert_eq!(inst.id, launched.id);
    assert_eq!(inst.name, "ws-1");
    for (k, v) in [
        ("cws:template", "python-ml"),
        ("cws:managed", "true"),
        ("cws:method", "direct_mapping"),
        ("cws:category", "machine-learning"),
    ] {
        assert_eq!(inst.tags.get(k).map(String::as_str), Some(v), "tag {k}");
    }
    assert!(matches!(
        inst.state,
        InstanceState::Pending | InstanceState::Running
    ));
    assert!(inst.launch_time.timestamp() > 0);

    // GetConsoleOutput goes through the SDK and back: moto answers a fixed sample console
    // (no cws script ran there), which carries no provisioning outcome.
    let console = p
        .console_output(region, &launched.id)
        .await
        .expect("console output");
    if let Some(text) = &console {
        assert_eq!(cws_template::provisioning_outcome(text), None, "{text}");
    }

    // A second launch with the same name is refused, naming the running one.
    let dup = service::launch(
        &env,
        &launch_request(bundled("python-ml"), "ws-1", region),
        &AssumeYes,
    )
    .await;
    let err = dup.expect_err("duplicate name");
    assert!(err.to_string().contains(&launched.id), "{err}");

    let stopped = p.stop_instance(region, &launched.id).await.expect("stop");
    assert!(matches!(
        stopped.state,
        InstanceState::Stopping | InstanceState::Stopped
    ));
    let gone = p
        .terminate_instance(region, &launched.id)
        .await
        .expect("terminate");
    assert!(matches!(
        gone.state,
        InstanceState::ShuttingDown | InstanceState::Terminated
    ));
    assert!(
        p.instance_by_name(region, "ws-1")
            .await
            .expect("describe")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_waiters_see_available_images_and_running_or_terminated_instances() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let region = "us-east-1";
    let limit = Duration::from_secs(60);
    let image_id = own_image_in(&p, region, "cws-waited-for").await;
    match p.wait_image_available(region, &image_id, limit).await {
        Ok(WaitOutcome::Ready(image)) => {
            assert_eq!(image.id, image_id);
            assert_eq!(image.state, ImageState::Available);
        }
        other => panic!("ImageAvailable waiter: {other:?}"),
    }
    let unknown = p
        .wait_image_available(region, "ami-0123456789abcdef0", limit)
        .await
        .expect_err("an image that does not exist");
    assert_eq!(unknown.kind(), "not_found", "{unknown}");

    let env = ResolveEnv::new(p.clone());
    let launched = service::launch(
        &env,
        &launch_request(bundled("python-ml"), "waited-for", region),
        &AssumeYes,
    )
    .await
    .expect("launch")
    .instance
    .expect("instance");
    match p.wait_instance_running(region, &launched.id, limit).await {
        Ok(WaitOutcome::Ready(instance)) => {
            assert_eq!(instance.id, launched.id);
            assert_eq!(instance.state, InstanceState::Running);
        }
        other => panic!("InstanceRunning waiter: {other:?}"),
    }
    p.terminate_instance(region, &launched.id)
        .await
        .expect("terminate");
    match p.wait_instance_running(region, &launched.id, limit).await {
        Ok(WaitOutcome::Failed(instance)) => assert!(
            matches!(
                instance.state,
                InstanceState::ShuttingDown | InstanceState::Terminated
            ),
            "{instance:?}"
        ),
        other => panic!("InstanceRunning waiter on a terminated instance: {other:?}"),
    }
}

/// The wrappers forward the provided wait methods, so an `AwsProvider` behind caching and
/// counting still waits with the SDK's waiters. Had a wrapper fallen back on the trait's
/// default, the wait would answer `Unsupported` (and the engine would poll instead).
#[tokio::test(flavor = "multi_thread")]
async fn wrapped_in_caching_and_counting_the_waits_still_reach_the_sdk_waiters() {
    use cws_provider::wrappers::Operation;
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let region = "us-east-1";
    let limit = Duration::from_secs(60);
    let image_id = own_image_in(&p, region, "cws-wrapped-wait").await;
    let env = ResolveEnv::new(p.clone());
    let launched = service::launch(
        &env,
        &launch_request(bundled("python-ml"), "wrapped-wait", region),
        &AssumeYes,
    )
    .await
    .expect("launch")
    .instance
    .expect("instance");

    // Both orders: caching outside counting, and counting outside caching.
    let caching_outside =
        CachingProvider::new(CountingProvider::new(p.clone()), Duration::from_secs(300));
    let counting_outside =
        CountingProvider::new(CachingProvider::new(p.clone(), Duration::from_secs(300)));
    for (order, provider, counts) in [
        (
            "caching(counting(aws))",
            &caching_outside as &dyn CloudProvider,
            Box::new(|op| caching_outside.inner().count(op)) as Box<dyn Fn(Operation) -> u64>,
        ),
        (
            "counting(caching(aws))",
            &counting_outside as &dyn CloudProvider,
            Box::new(|op| counting_outside.count(op)) as Box<dyn Fn(Operation) -> u64>,
        ),
    ] {
        for _ in 0..2 {
            let sent = p.requests_sent();
            match provider
                .wait_image_available(region, &image_id, limit)
                .await
            {
                Ok(WaitOutcome::Ready(image)) => {
                    assert_eq!(image.id, image_id);
                    assert_eq!(image.state, ImageState::Available);
                }
                other => panic!("{order}: the ImageAvailable waiter was lost: {other:?}"),
            }
            // The waiter went to EC2 each time: waits are never answered from the cache.
            assert!(p.requests_sent() > sent, "{order}: no request reached EC2");
            let sent = p.requests_sent();
            match provider
                .wait_instance_running(region, &launched.id, limit)
                .await
            {
                Ok(WaitOutcome::Ready(instance)) => {
                    assert_eq!(instance.id, launched.id);
                    assert_eq!(instance.state, InstanceState::Running);
                }
                other => panic!("{order}: the InstanceRunning waiter was lost: {other:?}"),
            }
            assert!(p.requests_sent() > sent, "{order}: no request reached EC2");
        }
        // Each forwarded wait counts once, as the lookup its polls are.
        assert_eq!(counts(Operation::DescribeImagesById), 2, "{order}");
        assert_eq!(counts(Operation::DescribeInstances), 2, "{order}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_regions_reports_every_region() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let env = ResolveEnv::new(p.clone());
    let source_id = own_image_in(&p, "us-west-2", "cws-xregion-demo-1.0.0-x86_64").await;
    let t = xregion_template("us-west-2", &source_id);
    let regions: Vec<String> = [
        "us-west-2",
        "us-east-1",
        "us-west-1",
        "eu-west-1",
        "ap-south-1",
    ]
    .iter()
    .map(|r| r.to_string())
    .collect();
    let graph = FallbackGraph::published();
    let rows = service::test_regions(&env, &t, &regions, None).await;
    assert_eq!(rows.len(), regions.len());
    for row in &rows {
        let expected = if row.region == "us-west-2" {
            RegionStatus::Available
        } else if graph
            .walk(&row.region, 3)
            .expect("known region")
            .contains(&"us-west-2")
        {
            RegionStatus::CopyRequired
        } else {
            RegionStatus::ScriptFallback
        };
        assert_eq!(row.status, expected, "{}: {}", row.region, row.detail);
        match row.status {
            RegionStatus::ScriptFallback => {
                assert_eq!(row.ami_id.as_deref(), Some(ids::NOBLE_AMD64_NEWEST))
            }
            _ => assert_eq!(row.ami_id.as_deref(), Some(source_id.as_str())),
        }
    }
    assert!(rows.iter().any(|r| r.status == RegionStatus::CopyRequired));
    assert!(
        rows.iter()
            .any(|r| r.status == RegionStatus::ScriptFallback)
    );
}

// ---------------------------------------------------------------------------------------------
// Measurements

#[tokio::test(flavor = "multi_thread")]
async fn direct_mapped_resolution_call_counts() {
    let Some((moto, _)) = moto_provider().await else {
        return;
    };
    let t = bundled("python-ml");
    let region = "us-east-1";

    // Cold: every probe reaches EC2.
    let cold = Arc::new(CountingProvider::new(
        moto.provider().await.expect("provider"),
    ));
    let env = ResolveEnv::new(cold.clone());
    let r = resolve(&env, &t, region).await;
    assert_eq!(r.method, Method::DirectMapping);
    let cold_calls = cold.total();
    let cold_requests = cold.inner().requests_sent();
    assert!(cold_calls >= 1);
    assert!(cold.calls()["describe_images_by_id"] >= 1);

    // Sequential tier walk: stops at the first success.
    let seq = Arc::new(CountingProvider::new(
        moto.provider().await.expect("provider"),
    ));
    let env = ResolveEnv::new(seq.clone());
    let r = Resolver::for_template(&t)
        .sequential()
        .resolve(&env, &ResolveRequest::new(t.clone(), region))
        .await;
    assert_eq!(r.method, Method::DirectMapping);
    assert_eq!(
        seq.total(),
        1,
        "a sequential direct mapping is one call: {:?}",
        seq.calls()
    );
    assert_eq!(seq.inner().requests_sent(), 1, "and one EC2 request");

    // Warm: a caching wrapper answers the repeat without the backend.
    let counted = CountingProvider::new(moto.provider().await.expect("provider"));
    let cached = Arc::new(CachingProvider::new(counted, Duration::from_secs(300)));
    let env = ResolveEnv::new(cached.clone());
    let first = resolve(&env, &t, region).await;
    let after_first = cached.inner().total();
    let second = resolve(&env, &t, region).await;
    let warm_calls = cached.inner().total() - after_first;
    assert_eq!(first.ami_id, second.ami_id);
    assert_eq!(warm_calls, 0, "a warm cache makes no EC2 call");

    eprintln!(
        "direct-mapped `ami resolve` (python-ml, us-east-1) on the AWS provider: cold {cold_calls} provider calls / {cold_requests} EC2 requests (concurrent tiers: {:?}); sequential {} call; warm (CachingProvider) {warm_calls} calls",
        cold.calls()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect::<BTreeMap<_, _>>(),
        seq.total()
    );
}

// ---------------------------------------------------------------------------------------------
// Faults: a local HTTP server that misbehaves (no moto needed)

/// Answers every request with one canned response, counting requests per EC2 action. Its
/// loop is bounded: at most 200 connections, at most 60 s, and it stops when dropped.
struct CannedServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    hits: Arc<std::sync::Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl CannedServer {
    fn start(
        status: u16,
        reason: &'static str,
        content_type: &'static str,
        body: &'static str,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let served = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, hits) = (stop.clone(), hits.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed)
                    && Instant::now() < deadline
                    && served.load(Ordering::Relaxed) < 200
                {
                    match listener.accept() {
                        Ok((mut conn, _)) => {
                            served.fetch_add(1, Ordering::Relaxed);
                            let request = read_request(&mut conn);
                            let action = request
                                .split('&')
                                .find_map(|kv| kv.strip_prefix("Action="))
                                .unwrap_or("?")
                                .to_string();
                            hits.lock().expect("hits").push(action);
                            let _ = write!(
                                conn,
                                "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        CannedServer {
            addr,
            stop,
            hits,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self, action: &str) -> usize {
        self.hits
            .lock()
            .expect("hits")
            .iter()
            .filter(|a| *a == action)
            .count()
    }
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (headers and a `Content-Length` body); returns the body.
fn read_request(conn: &mut std::net::TcpStream) -> String {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let head_end = data.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                return String::from_utf8_lossy(&data[end + 4..end + 4 + len]).into_owned();
            }
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&data).into_owned(),
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// The credentials the fault tests sign with; no error text may contain them.
const FAULT_KEY_ID: &str = "AKIDCWSFAULTTEST0000";
const FAULT_SECRET: &str = "cws/fault+test/secret/NEVERPRINT";

/// An error meant for a terminal: one sentence, no SDK `Debug` dump, no credentials.
fn assert_clean(err: &ProviderError) {
    let text = err.to_string();
    eprintln!("error as the user sees it: {text}");
    for dump in [
        "DispatchFailure",
        "ConnectorError",
        "ResponseError",
        "source:",
        "{ ",
        "os error",
        FAULT_KEY_ID,
        FAULT_SECRET,
    ] {
        assert!(!text.contains(dump), "`{dump}` in: {text}");
    }
    assert!(!text.contains('\n'), "one line: {text}");
}

async fn provider_at(url: &str, max_attempts: u32) -> AwsProvider {
    provider_with_timeout(url, max_attempts, Duration::from_secs(30)).await
}

async fn provider_with_timeout(
    url: &str,
    max_attempts: u32,
    operation_timeout: Duration,
) -> AwsProvider {
    let cfg = AwsConfig {
        endpoint_url: Some(url.to_string()),
        max_attempts,
        operation_timeout,
        ..AwsConfig::default()
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(cws_aws::https_client())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            FAULT_KEY_ID,
            FAULT_SECRET,
            None,
            None,
            "cws-test",
        ))
        .load()
        .await;
    AwsProvider::from_sdk_config(cfg, sdk)
        .await
        .expect("provider")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_is_unavailable_naming_the_endpoint() {
    let server = CannedServer::start(
        500,
        "Internal Server Error",
        "text/html",
        "<html><body><h1>500 Internal Server Error</h1></body></html>",
    );
    let p = provider_at(&server.url(), 2).await;
    assert_eq!(
        p.account_id().await.unwrap(),
        None,
        "STS failed too: the account is unknown"
    );
    let err = p
        .describe_images("us-east-1", &ImageQuery::owned_by(["self"]))
        .await
        .expect_err("a 500 is an error");
    match &err {
        ProviderError::Unavailable { endpoint, .. } => assert_eq!(endpoint, &server.url()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_clean(&err);
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert!(err.is_transient());
    assert_eq!(
        server.hits("DescribeImages"),
        2,
        "retried up to max_attempts"
    );
    let err = p
        .run_instance(&cws_provider::RunInstanceRequest {
            region: "us-east-1".into(),
            name: "x".into(),
            ami_id: "ami-0123456789abcdef0".into(),
            instance_type: "t3.micro".into(),
            architecture: Architecture::X86_64,
            user_data: None,
            root_volume_gb: None,
            tags: BTreeMap::new(),
        })
        .await
        .expect_err("launch against a broken endpoint");
    assert_eq!(err.kind(), "unavailable", "{err}");
}

/// A persistently failing endpoint is given up on when the call's total budget runs out,
/// not after attempts × per-attempt limits: with 10 attempts allowed and a 3 s budget, far
/// fewer attempts are made and the error says the budget ended the call.
#[tokio::test(flavor = "multi_thread")]
async fn a_persistent_503_is_given_up_on_at_the_total_budget() {
    let server = CannedServer::start(
        503,
        "Service Unavailable",
        "text/xml",
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>Unavailable</Code><Message>The service is unavailable.</Message></Error></Errors><RequestID>cws-test</RequestID></Response>"#,
    );
    let p = provider_with_timeout(&server.url(), 10, Duration::from_secs(3)).await;
    let err = p
        .describe_images_by_id("us-east-1", &[ids::NOBLE_AMD64_NEWEST.to_string()])
        .await
        .expect_err("a 503 that never ends");
    assert_eq!(err.kind(), "unavailable", "{err}");
    assert_clean(&err);
    let hits = server.hits("DescribeImages");
    assert!(
        (1..10).contains(&hits),
        "the budget, not the 10 attempts, ended the call ({hits} attempts): {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_that_outlives_the_retries_is_throttled() {
    let server = CannedServer::start(
        400,
        "Bad Request",
        "text/xml",
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>cws-test</RequestID></Response>"#,
    );
    let p = provider_at(&server.url(), 3).await;
    let err = p
        .describe_images_by_id("us-east-1", &[ids::NOBLE_AMD64_NEWEST.to_string()])
        .await
        .expect_err("throttled");
    assert_eq!(err.kind(), "throttled", "{err}");
    assert!(err.to_string().contains("RequestLimitExceeded"), "{err}");
    assert_clean(&err);
    assert_eq!(
        server.hits("DescribeImages"),
        3,
        "three attempts before giving up"
    );
}

/// A loopback URL nothing listens on (bind, note the port, drop).
fn refused_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    format!("http://127.0.0.1:{port}")
}

/// Connection refused is not retried: with the full retry budget (10 attempts, which
/// throttling and 5xx still get), construction (STS) plus a failed call take well under the
/// few seconds a user should wait, and the error is one sentence naming the endpoint, the
/// cause and what to check.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_fails_fast_with_a_clean_message() {
    let url = refused_url();
    let p = provider_at(&url, cws_aws::DEFAULT_MAX_ATTEMPTS).await;
    assert_eq!(
        p.account_id().await.unwrap(),
        None,
        "STS failed: account unknown"
    );
    // The lookup's own attempt (refused at once too) is counted; what follows is EC2's.
    let sts = p.requests_sent();
    assert_eq!(sts, 1, "one STS attempt, no retries");
    let err = p
        .describe_images("us-east-1", &ImageQuery::owned_by(["self"]))
        .await
        .expect_err("nothing listens");
    match &err {
        ProviderError::Unavailable { endpoint, message } => {
            assert_eq!(endpoint, &url);
            assert!(message.contains("connection refused"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "provider endpoint {url} is unavailable: cannot connect (connection refused) for ec2:DescribeImages in us-east-1; check the configured endpoint URL, that the service there is running, and the network"
        )
    );
    assert_clean(&err);
    assert!(err.is_transient());
    assert_eq!(p.requests_sent() - sts, 1, "one attempt, no retries");

    // Every kind of call fails the same way, on its first attempt.
    let err = p.describe_regions().await.expect_err("nothing listens");
    assert_eq!(err.kind(), "unavailable", "{err}");
    assert!(err.to_string().contains("ec2:DescribeRegions"), "{err}");
    assert_clean(&err);
    let err = p
        .find_marketplace_products(&cws_provider::MarketplaceQuery {
            product_id: Some("prod-cwstest0001".into()),
            ..Default::default()
        })
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind(), "unavailable", "{err}");
    assert!(
        err.to_string().contains("aws-marketplace:DescribeEntity"),
        "{err}"
    );
    assert_clean(&err);
    assert_eq!(p.requests_sent() - sts, 3, "one attempt per call");
}

/// A whole resolution (every tier, cross-region over several regions) against an endpoint
/// nothing listens on: each tier fails with `unavailable`, every call on its first attempt.
#[tokio::test(flavor = "multi_thread")]
async fn a_resolution_against_a_refused_endpoint_fails_on_first_attempts() {
    use cws_provider::wrappers::CountingProvider;
    let url = refused_url();
    let p = Arc::new(provider_at(&url, cws_aws::DEFAULT_MAX_ATTEMPTS).await);
    let counted = Arc::new(CountingProvider::new(p.clone()));
    let env = ResolveEnv::new(counted.clone());
    let r = resolve(&env, &bundled("python-ml"), "us-east-1").await;
    assert!(r.is_failed(), "{r:#?}");
    let failed: Vec<_> = r
        .attempts
        .iter()
        .filter(|a| a.outcome == cws_resolver::Outcome::Failed)
        .collect();
    assert!(!failed.is_empty(), "{r:#?}");
    for a in failed {
        assert_eq!(a.error_kind.as_deref(), Some("unavailable"), "{a:?}");
        assert!(a.detail.contains("connection refused"), "{a:?}");
        assert!(!a.detail.contains("DispatchFailure"), "{a:?}");
    }
    // No call was retried: the HTTP requests equal the provider calls (the account id is
    // looked up once per provider, however often it is asked).
    let account_asks = counted.count(cws_provider::wrappers::Operation::AccountId);
    assert_eq!(
        p.requests_sent(),
        counted.total() - account_asks + account_asks.min(1),
        "{:?}",
        counted.calls()
    );
}

/// A host name that does not resolve fails on the first attempt too, naming the host.
#[tokio::test(flavor = "multi_thread")]
async fn an_unresolvable_host_fails_fast_naming_it() {
    // `.invalid` never resolves (RFC 2606).
    let url = "http://cws-no-such-host.invalid:5000".to_string();
    let p = provider_at(&url, cws_aws::DEFAULT_MAX_ATTEMPTS).await;
    let err = p
        .describe_images_by_id("us-east-1", &[ids::NOBLE_AMD64_NEWEST.to_string()])
        .await
        .expect_err("no such host");
    match &err {
        ProviderError::Unavailable { endpoint, message } => {
            assert_eq!(endpoint, &url);
            assert!(
                message.starts_with("cannot resolve the host name `cws-no-such-host.invalid` ("),
                "{message}"
            );
            assert!(
                message.contains("ec2:DescribeImages in us-east-1"),
                "{message}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_clean(&err);
    assert_eq!(p.requests_sent(), 1, "one attempt, no retries");
}

/// A server that accepts connections but never answers: the operation timeout ends the
/// call with `Unavailable` saying which limit was hit.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_endpoint_times_out_cleanly() {
    // Listening but never accepting: the kernel completes the handshake, nobody answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let p = provider_with_timeout(&url, 3, Duration::from_secs(1)).await;
    let err = p.describe_regions().await.expect_err("no answer");
    match &err {
        ProviderError::Unavailable { endpoint, message } => {
            assert_eq!(endpoint, &url);
            assert!(
                message.starts_with("no answer in time for ec2:DescribeRegions in us-east-1 ("),
                "{message}"
            );
            assert!(message.contains("timeout"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_clean(&err);
    // The total budget ended the call, not the 3 attempts × the connect limit.
    assert!(p.requests_sent() <= 3, "{}", p.requests_sent());
    drop(listener);
}
