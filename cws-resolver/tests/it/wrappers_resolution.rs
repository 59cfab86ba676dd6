//! Resolution through the provider wrappers: a cached repeat makes zero provider calls, and
//! injected throttling or faults give a typed failure or a clean fall-through — never a panic
//! or a wrong image.

use std::sync::Arc;
use std::time::Duration;

use cws_localcloud::LocalCloud;
use cws_provider::wrappers::{
    CachingProvider, CountingProvider, FaultKind, FaultProvider, FaultRule, LatencyProvider,
    Operation,
};
use cws_resolver::*;
use cws_template::{Template, TemplateStore};

fn template(slug: &str) -> Template {
    TemplateStore::bundled_only().get(slug).unwrap().template
}

#[tokio::test]
async fn a_cached_repeat_resolution_makes_zero_provider_calls() {
    let provider = Arc::new(CachingProvider::new(
        CountingProvider::new(LocalCloud::in_memory()),
        Duration::from_secs(300),
    ));
    let env = ResolveEnv::new(provider.clone());
    for (slug, region) in [
        ("python-ml", "us-east-1"),
        ("python-ml", "ap-south-1"),
        ("bioinformatics", "us-west-2"),
        ("python-research", "eu-west-1"),
    ] {
        let t = template(slug);
        let req = ResolveRequest::new(t.clone(), region);
        let resolver = Resolver::for_template(&t);
        let first = resolver.resolve(&env, &req).await;
        let cold = provider.inner().total();
        assert!(
            cold > 0,
            "{slug} {region}: a cold resolution asks the provider"
        );
        let second = resolver.resolve(&env, &req).await;
        assert_eq!(
            provider.inner().total(),
            cold,
            "{slug} {region}: the cached repeat made provider calls"
        );
        assert_eq!(first.method, second.method);
        assert_eq!(first.ami_id, second.ami_id);
        provider.inner().reset();
    }
}

#[tokio::test]
async fn a_direct_hit_costs_one_call_cold() {
    let provider = Arc::new(CountingProvider::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(provider.clone());
    let t = template("python-ml");
    let r = Resolver::for_template(&t)
        .resolve(&env, &ResolveRequest::new(t.clone(), "us-east-1"))
        .await;
    assert_eq!(r.method, Method::DirectMapping);
    // Probes are polled in priority order: an in-memory provider answers the direct mapping on
    // its first poll, which decides the resolution before any lower tier is started.
    assert_eq!(provider.total(), 1, "{:?}", provider.calls());
    assert_eq!(provider.count(Operation::DescribeImagesById), 1);
    assert!(
        r.attempts[1..]
            .iter()
            .all(|a| a.outcome == Outcome::Skipped && a.detail.starts_with("not needed")),
        "{r:#?}"
    );
    // A sequential walk stops at the first tier: exactly one call too.
    provider.reset();
    Resolver::for_template(&t)
        .sequential()
        .resolve(&env, &ResolveRequest::new(t.clone(), "us-east-1"))
        .await;
    assert_eq!(provider.total(), 1, "{:?}", provider.calls());
}

#[tokio::test(start_paused = true)]
async fn behind_latency_every_probe_is_in_flight_in_the_first_round_trip() {
    // Paused tokio time: the injected 20 ms latency advances a virtual clock, so the wall time
    // of the resolution counts round trips exactly.
    let latency = Duration::from_millis(20);
    let provider = Arc::new(CountingProvider::new(LatencyProvider::new(
        LocalCloud::in_memory(),
        latency,
    )));
    let env = ResolveEnv::new(provider.clone());
    // ap-south-1 has no python-ml image: direct mapping and search miss and the image is
    // planned as a copy from a fallback region; every tier's first call goes out together.
    let t = template("python-ml");
    let req = ResolveRequest::new(t.clone(), "ap-south-1");
    let start = tokio::time::Instant::now();
    let r = Resolver::for_template(&t).resolve(&env, &req).await;
    let concurrent = start.elapsed();
    assert_eq!(r.method, Method::CrossRegion, "{r:#?}");
    assert!(
        provider.total() > 1,
        "every probe starts at once: {:?}",
        provider.calls()
    );

    let start = tokio::time::Instant::now();
    let s = Resolver::for_template(&t)
        .sequential()
        .resolve(&env, &req)
        .await;
    let sequential = start.elapsed();
    assert_eq!(s.method, r.method);
    assert_eq!(s.ami_id, r.ami_id);
    assert!(
        concurrent < latency * 2,
        "the concurrent resolution is one round trip: {concurrent:?}"
    );
    assert!(
        sequential >= concurrent + latency,
        "the sequential walk pays at least one more round trip: {sequential:?} vs {concurrent:?}"
    );
}

#[tokio::test]
async fn throttling_everywhere_is_a_provider_failure_not_a_wrong_answer() {
    let faults = FaultProvider::new(LocalCloud::in_memory());
    faults.fail(FaultRule::new(FaultKind::Throttled).always());
    let env = ResolveEnv::new(Arc::new(faults));
    for slug in [
        "python-ml",
        "bioinformatics",
        "gis-research",
        "python-research",
    ] {
        let t = template(slug);
        let r = Resolver::for_template(&t)
            .resolve(&env, &ResolveRequest::new(t.clone(), "us-east-1"))
            .await;
        assert_eq!(r.method, Method::Failed, "{slug}");
        assert!(r.ami_id.is_none());
        assert!(r.failed_because_provider(), "{slug}: {r:#?}");
        assert!(
            r.attempts
                .iter()
                .any(|a| a.error_kind.as_deref() == Some("throttled")),
            "{slug}"
        );
    }
}

#[tokio::test]
async fn a_failing_by_id_lookup_falls_through_to_search_cleanly() {
    let faults = FaultProvider::new(LocalCloud::in_memory());
    faults.fail(
        FaultRule::new(FaultKind::Unavailable)
            .operation(Operation::DescribeImagesById)
            .always(),
    );
    let env = ResolveEnv::new(Arc::new(faults));
    let t = template("bioinformatics");
    let r = Resolver::for_template(&t)
        .resolve(&env, &ResolveRequest::new(t.clone(), "us-west-2"))
        .await;
    // bioinformatics has no mappings, so by-id lookups are never needed.
    assert_eq!(r.method, Method::DynamicSearch);

    let t = template("python-ml");
    let r = Resolver::for_template(&t)
        .resolve(&env, &ResolveRequest::new(t.clone(), "us-east-1"))
        .await;
    assert_eq!(r.attempts[0].outcome, Outcome::Failed);
    assert_eq!(r.attempts[0].error_kind.as_deref(), Some("unavailable"));
    // The next tier answers; whatever it chose is a real, available python-ml image or the
    // script fallback, never the unverified mapped id.
    assert_ne!(r.method, Method::DirectMapping);
    assert_ne!(r.method, Method::Failed);
}

#[tokio::test]
async fn a_fault_in_one_fallback_region_does_not_pick_a_later_region() {
    // ap-south-1's fallbacks are ap-southeast-1, ap-northeast-1, us-east-1; python-ml lives in
    // ap-southeast-1 and us-east-1. If ap-southeast-1 cannot be read, choosing us-east-1 would
    // silently ignore the graph's order: the tier reports the failure instead.
    let faults = FaultProvider::new(LocalCloud::in_memory());
    faults.fail(
        FaultRule::new(FaultKind::Unavailable)
            .region("ap-southeast-1")
            .always(),
    );
    let env = ResolveEnv::new(Arc::new(faults));
    let t = template("python-ml");
    let r = Resolver::for_template(&t)
        .resolve(&env, &ResolveRequest::new(t.clone(), "ap-south-1"))
        .await;
    let cross = r
        .attempts
        .iter()
        .find(|a| a.tier == "cross_region")
        .unwrap();
    assert_eq!(cross.outcome, Outcome::Failed, "{r:#?}");
    assert_eq!(r.method, Method::ScriptFallback);
}
