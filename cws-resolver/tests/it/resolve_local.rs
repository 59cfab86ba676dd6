//! End-to-end resolution scenarios on the seeded simulated cloud (the "done when").

use std::sync::Arc;

use async_trait::async_trait;
use cws_localcloud::LocalCloud;
use cws_provider::*;
use cws_resolver::service::{self, LaunchRequest, RegionStatus};
use cws_resolver::tier::{Candidate, Probe, ResolveContext, Tier};
use cws_resolver::*;
use cws_template::{Architecture, Template, TemplateStore};

fn template(slug: &str) -> Template {
    TemplateStore::bundled_only()
        .get(slug)
        .unwrap_or_else(|e| panic!("bundled {slug}: {e}"))
        .template
}

fn env() -> ResolveEnv {
    ResolveEnv::new(Arc::new(LocalCloud::in_memory()))
}

async fn resolve(env: &ResolveEnv, t: &Template, region: &str) -> cws_resolver::Resolution {
    Resolver::for_template(t)
        .resolve(env, &ResolveRequest::new(t.clone(), region))
        .await
}

fn launch_req(t: Template, name: &str, region: &str) -> LaunchRequest {
    LaunchRequest {
        template: t,
        name: name.into(),
        region: region.into(),
        architecture: None,
        instance_type: None,
        dry_run: false,
        forced_tier: None,
        prefer_script: false,
        session_hours: "8".parse().unwrap(),
        added_tiers: Vec::new(),
        known_images: Vec::new(),
        refused: Vec::new(),
        allowed_owners: None,
    }
}

#[tokio::test]
async fn python_ml_in_us_east_1_is_a_direct_mapping() {
    let env = env();
    let t = template("python-ml");
    let r = resolve(&env, &t, "us-east-1").await;
    assert_eq!(r.method, Method::DirectMapping);
    assert_eq!(r.ami_id.as_deref(), Some("ami-0c7d3e9a1b2f4a501"));
    assert_eq!(r.attempts[0].tier, "direct_mapping");
    assert_eq!(r.attempts[0].outcome, Outcome::Found);
    assert!(!r.requires_copy);
    assert!(r.provider.simulated);
    // The report lists every tier of the chain, in order.
    let tiers: Vec<_> = r.attempts.iter().map(|a| a.tier.as_str()).collect();
    assert_eq!(
        tiers,
        [
            "direct_mapping",
            "dynamic_search",
            "marketplace",
            "cross_region",
            "script_fallback"
        ]
    );
}

#[tokio::test]
async fn python_ml_in_ap_south_1_copies_from_ap_southeast_1_once() {
    let env = env();
    let t = template("python-ml");
    let r = resolve(&env, &t, "ap-south-1").await;
    assert_eq!(r.method, Method::CrossRegion, "{r:#?}");
    assert!(r.requires_copy);
    let copy = r.copy.clone().expect("copy plan");
    assert_eq!(copy.source_region, "ap-southeast-1");
    assert_eq!(copy.source_ami_id, "ami-09b5d2e4f7a3c1b84");
    assert!(copy.estimated_seconds > 0);
    assert!(copy.estimated_cost_usd.micros() > 0);

    // Launch with consent: the copy is made, tagged and launched.
    let report = service::launch(&env, &launch_req(t.clone(), "x", "ap-south-1"), &AssumeYes)
        .await
        .unwrap();
    let copied = report.copied_image.clone().expect("a copy was made");
    let inst = report.instance.expect("launched");
    assert_eq!(inst.ami_id, copied);
    assert_eq!(inst.region, "ap-south-1");

    // The next resolution finds the copy in place: the region paid for it once.
    let again = resolve(&env, &t, "ap-south-1").await;
    assert_eq!(again.method, Method::DynamicSearch, "{again:#?}");
    assert_eq!(again.ami_id.as_deref(), Some(copied.as_str()));
}

#[tokio::test]
async fn declined_copy_falls_through_to_script_under_ami_preferred() {
    let env = env();
    let t = template("python-ml");
    let report = service::launch(&env, &launch_req(t, "y", "ap-south-1"), &AssumeNo)
        .await
        .unwrap();
    let r = &report.resolution;
    assert_eq!(r.method, Method::ScriptFallback);
    let cross = r
        .attempts
        .iter()
        .find(|a| a.tier == "cross_region")
        .unwrap();
    assert_eq!(cross.outcome, Outcome::Declined);
    assert!(report.copied_image.is_none());
    assert!(report.instance.is_some());
}

#[tokio::test]
async fn declined_copy_fails_under_ami_required() {
    let env = env();
    let mut t = template("python-ml");
    t.ami_config.as_mut().unwrap().strategy = cws_template::AmiStrategy::AmiRequired;
    t.ami_config.as_mut().unwrap().fallback_strategy = None;
    let report = service::launch(&env, &launch_req(t, "z", "ap-south-1"), &AssumeNo)
        .await
        .unwrap();
    assert_eq!(report.resolution.method, Method::Failed);
    assert!(!report.resolution.failed_because_provider());
    assert!(report.instance.is_none());
}

#[tokio::test]
async fn bioinformatics_resolves_by_search_gis_by_marketplace_python_research_by_script() {
    let env = env();
    let bio = resolve(&env, &template("bioinformatics"), "us-west-2").await;
    assert_eq!(bio.method, Method::DynamicSearch, "{bio:#?}");
    let name = bio.ami_name.clone().unwrap();
    assert!(name.starts_with("cws-bioinformatics-"), "{name}");

    let gis = resolve(&env, &template("gis-research"), "us-east-1").await;
    assert_eq!(gis.method, Method::Marketplace, "{gis:#?}");

    let pr = resolve(&env, &template("python-research"), "us-east-1").await;
    assert_eq!(pr.method, Method::ScriptFallback);
    assert!(
        pr.ami_name
            .as_deref()
            .unwrap()
            .contains("ubuntu-noble-24.04"),
        "{pr:#?}"
    );
    assert!(pr.estimated_launch_seconds.unwrap() > cws_cost::AMI_BOOT_SECONDS);
}

#[tokio::test]
async fn dynamic_search_picks_the_newest_non_deprecated_image() {
    let env = env();
    let t = template("bioinformatics");
    let r = resolve(&env, &t, "us-east-1").await;
    assert_eq!(r.method, Method::DynamicSearch);
    // Every other matching image is older or deprecated.
    let listing = service::list_template_images(&env, &t, &["us-east-1".into()]).await;
    let chosen = listing
        .images
        .iter()
        .find(|i| Some(&i.id) == r.ami_id.as_ref())
        .unwrap();
    assert!(!chosen.deprecated);
    for other in listing
        .images
        .iter()
        .filter(|i| !i.deprecated && i.architecture == chosen.architecture)
    {
        assert!(other.creation_date <= chosen.creation_date);
    }
}

#[tokio::test]
async fn ami_required_with_nothing_reachable_fails_without_blaming_the_provider() {
    let env = env();
    let t = cws_template::parse_str(
        "name: Nothing\nslug: nothing\nversion: 1.0.0\nbase: ubuntu-24.04\nami_config:\n  strategy: ami_required\n  ami_search:\n    owners: [self]\n    name_pattern: \"does-not-exist-*\"\n",
        "nothing.yaml",
    )
    .unwrap();
    let r = resolve(&env, &t, "eu-west-3").await;
    assert_eq!(r.method, Method::Failed);
    assert!(!r.failed_because_provider());
    assert!(r.attempts.iter().all(|a| a.tier != "script_fallback"));
}

#[tokio::test]
async fn arm64_request_never_gets_an_x86_image() {
    let env = env();
    let t = template("python-ml");
    let mut req = ResolveRequest::new(t.clone(), "us-east-1");
    req.architecture = Some(Architecture::Arm64);
    let r = Resolver::for_template(&t).resolve(&env, &req).await;
    assert_ne!(r.method, Method::DirectMapping, "mapped image is x86_64");
    if let Some(a) = r.architecture {
        assert_eq!(a, Architecture::Arm64);
    }
}

#[tokio::test]
async fn sequential_and_concurrent_walks_agree() {
    let env = env();
    for slug in [
        "python-ml",
        "r-research",
        "bioinformatics",
        "gis-research",
        "python-research",
    ] {
        let t = template(slug);
        for region in ["us-east-1", "ap-south-1", "eu-west-3", "sa-east-1"] {
            let req = ResolveRequest::new(t.clone(), region);
            let a = Resolver::for_template(&t).resolve(&env, &req).await;
            let b = Resolver::for_template(&t)
                .sequential()
                .resolve(&env, &req)
                .await;
            assert_eq!(a.method, b.method, "{slug} {region}");
            assert_eq!(a.ami_id, b.ami_id, "{slug} {region}");
        }
    }
}

#[tokio::test]
async fn forced_tier_only_runs_that_tier() {
    let env = env();
    let t = template("python-ml");
    let r = service::resolver_for(&t, Some("script_fallback"), false)
        .unwrap()
        .resolve(&env, &ResolveRequest::new(t.clone(), "us-east-1"))
        .await;
    assert_eq!(r.method, Method::ScriptFallback);
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.forced_tier, Some(TierId::SCRIPT_FALLBACK));
    assert!(service::resolver_for(&t, Some("bogus"), false).is_err());
}

#[tokio::test]
async fn prefer_script_warns_when_an_image_exists() {
    let env = env();
    let t = template("python-ml");
    let r = service::resolver_for(&t, None, true)
        .unwrap()
        .resolve(&env, &ResolveRequest::new(t.clone(), "us-east-1"))
        .await;
    assert_eq!(r.method, Method::ScriptFallback);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("ami-0c7d3e9a1b2f4a501")),
        "{:?}",
        r.warnings
    );
}

#[tokio::test]
async fn second_launch_with_the_same_name_is_a_conflict() {
    let env = env();
    let t = template("python-research");
    service::launch(&env, &launch_req(t.clone(), "dup", "us-east-1"), &AssumeNo)
        .await
        .unwrap();
    let err = service::launch(&env, &launch_req(t, "dup", "us-east-1"), &AssumeNo)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("dup") && msg.contains("i-"), "{msg}");
}

#[tokio::test]
async fn instance_names_are_checked_like_ec2_tag_values_before_anything_launches() {
    let env = env();
    let t = template("python-research");
    let long = "x".repeat(service::MAX_INSTANCE_NAME_CHARS + 1);
    for (name, says) in [
        ("a\nb", "U+000A at character 2"),
        ("evil\u{1b}]0;pwned\u{7}", "U+001B"),
        ("abc\u{202e}fed", "U+202E"),
        ("", "is empty"),
        ("   ", "is empty"),
        (long.as_str(), "257 characters long"),
    ] {
        // Dry runs too: the name would be refused at launch anyway.
        for dry_run in [false, true] {
            let mut req = launch_req(t.clone(), name, "us-east-1");
            req.dry_run = dry_run;
            let err = service::launch(&env, &req, &AssumeYes).await.unwrap_err();
            assert!(
                matches!(err, service::LaunchError::Invalid(_)),
                "{name:?}: {err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains(says), "{name:?}: {msg}");
            assert!(msg.contains("256 characters"), "{msg}");
            // The value is named escaped: the message itself is safe to print.
            assert!(
                !msg.chars().any(cws_util::text::is_unsafe_to_show),
                "{msg:?}"
            );
        }
    }
    let launched = env
        .provider
        .describe_instances("us-east-1", &InstanceFilter::default())
        .await
        .unwrap();
    assert!(launched.is_empty(), "{launched:?}");

    // The longest name EC2 allows, and names in any script, launch.
    let longest = "é".repeat(service::MAX_INSTANCE_NAME_CHARS);
    for name in [longest.as_str(), "数据 analysis", "my box (v2)"] {
        service::check_instance_name(name).unwrap();
        let report = service::launch(&env, &launch_req(t.clone(), name, "us-east-1"), &AssumeNo)
            .await
            .unwrap();
        assert_eq!(report.instance.unwrap().name, name);
    }
}

#[tokio::test]
async fn launch_follows_architecture_to_the_graviton_type() {
    let env = env();
    let t = template("python-research");
    let mut req = launch_req(t.clone(), "graviton", "us-east-1");
    req.architecture = Some(Architecture::Arm64);
    let report = service::launch(&env, &req, &AssumeNo).await.unwrap();
    let inst = report.instance.unwrap();
    assert_eq!(inst.architecture, Architecture::Arm64);
    let expected = t
        .instance_type_for(Architecture::Arm64)
        .unwrap_or("t4g.medium");
    assert_eq!(inst.instance_type, expected);
}

#[tokio::test]
async fn test_all_regions_covers_the_catalogue() {
    let env = env();
    let t = template("python-ml");
    let regions: Vec<String> = cws_regions::all()
        .iter()
        .map(|r| r.code.to_string())
        .collect();
    let rows = service::test_regions(&env, &t, &regions, None).await;
    assert_eq!(rows.len(), regions.len());
    let status = |r: &str| rows.iter().find(|x| x.region == r).unwrap().status;
    assert_eq!(status("us-east-1"), RegionStatus::Available);
    assert_eq!(status("ap-south-1"), RegionStatus::CopyRequired);
    assert_eq!(status("us-east-2"), RegionStatus::CopyRequired);
    assert!(rows.iter().all(|r| r.status != RegionStatus::Error));
}

/// An institution's own catalogue, added between dynamic search and marketplace.
#[derive(Debug)]
struct InstitutionCatalogue;

#[async_trait]
impl Tier for InstitutionCatalogue {
    fn id(&self) -> TierId {
        TierId::from_static("institution_catalogue")
    }
    async fn probe(&self, ctx: &ResolveContext<'_>) -> ProviderResult<Probe> {
        if ctx.region != "eu-west-3" {
            return Ok(Probe::NotFound("catalogue only covers eu-west-3".into()));
        }
        Ok(Probe::Found(Candidate {
            ami_id: "ami-0123456789abcdef0".into(),
            ami_name: "uni-bio-2025".into(),
            owner_id: "210987654321".into(),
            source_region: ctx.region.to_string(),
            architecture: Architecture::X86_64,
            copy: None,
            estimated_launch_seconds: 30,
            warnings: vec![],
            detail: "from the institution catalogue".into(),
            listing: None,
        }))
    }
}

#[tokio::test]
async fn an_embedding_tool_can_add_its_own_tier() {
    let env = env();
    let t = template("bioinformatics");
    let resolver = Resolver::for_template(&t)
        .insert_after(&TierId::DYNAMIC_SEARCH, Arc::new(InstitutionCatalogue));
    assert_eq!(resolver.tier_ids()[2], "institution_catalogue");
    let r = resolver
        .resolve(&env, &ResolveRequest::new(t.clone(), "eu-west-3"))
        .await;
    assert_eq!(r.method, Method::Custom("institution_catalogue".into()));
    assert_eq!(r.ami_id.as_deref(), Some("ami-0123456789abcdef0"));
    // Removing it restores the standard answer.
    let r2 = resolver
        .without(&"institution_catalogue".into())
        .resolve(&env, &ResolveRequest::new(t, "eu-west-3"))
        .await;
    assert_ne!(r2.method, Method::Custom("institution_catalogue".into()));
}

#[tokio::test]
async fn provider_errors_are_typed() {
    // A tier that errors is recorded as failed; the failure is the provider's.
    #[derive(Debug)]
    struct Broken;
    #[async_trait]
    impl Tier for Broken {
        fn id(&self) -> TierId {
            TierId::from_static("broken")
        }
        async fn probe(&self, _ctx: &ResolveContext<'_>) -> ProviderResult<Probe> {
            Err(ProviderError::Throttled {
                message: "slow down".into(),
            })
        }
    }
    let env = env();
    let t = template("python-ml");
    let r = Resolver::new(vec![Arc::new(Broken)])
        .resolve(&env, &ResolveRequest::new(t, "us-east-1"))
        .await;
    assert_eq!(r.method, Method::Failed);
    assert!(r.failed_because_provider());
    assert_eq!(r.attempts[0].outcome, Outcome::Failed);
    assert_eq!(r.attempts[0].error_kind.as_deref(), Some("throttled"));
}

/// `watch_provisioning` on a paused clock: a script launch is watched until its outcome; an
/// image launch only until it runs; a console that never reports times out after the limit,
/// naming the provisioning, having polled with backoff rather than spun.
#[tokio::test(start_paused = true)]
async fn provisioning_is_watched_until_its_outcome_or_the_limit() {
    use cws_provider::wait::{NoProgress, WaitError, WaitOptions, WaitSubject};
    use cws_provider::wrappers::{CountingProvider, Operation};
    let counting = Arc::new(CountingProvider::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(counting.clone());
    let consent = AssumeYes;
    let wait = WaitOptions::with_timeout(std::time::Duration::from_secs(600));

    // python-research is provisioned by script; LocalCloud reports success at once.
    let report = service::launch(
        &env,
        &launch_req(template("python-research"), "s", "us-east-1"),
        &consent,
    )
    .await
    .unwrap();
    let i = report.instance.unwrap();
    let outcome = service::watch_provisioning(env.provider.as_ref(), &i, true, &wait, &NoProgress)
        .await
        .unwrap();
    assert_eq!(outcome, Some(cws_template::ProvisioningOutcome::Succeeded));

    // From an image: nothing to watch beyond running.
    let report = service::launch(
        &env,
        &launch_req(template("python-ml"), "m", "us-east-1"),
        &consent,
    )
    .await
    .unwrap();
    let m = report.instance.unwrap();
    let before = counting.count(Operation::ConsoleOutput);
    let outcome = service::watch_provisioning(env.provider.as_ref(), &m, false, &wait, &NoProgress)
        .await
        .unwrap();
    assert_eq!(outcome, None);
    assert_eq!(counting.count(Operation::ConsoleOutput), before);

    // Watched as a script, an image launch's console never reports: the limit ends the wait.
    let started = tokio::time::Instant::now();
    let err = service::watch_provisioning(env.provider.as_ref(), &m, true, &wait, &NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            WaitError::Timeout {
                what: WaitSubject::Provisioning,
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(600));
    let polls = counting.count(Operation::ConsoleOutput) - before;
    // 200 ms doubling to 15 s: about 45 polls in 10 minutes, never thousands.
    assert!((5..=60).contains(&polls), "{polls} polls");
}
