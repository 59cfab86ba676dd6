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
async fn in_memory_a_direct_hit_costs_one_call_cold() {
    let provider = Arc::new(CountingProvider::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(provider.clone());
    let t = template("python-ml");
    let req = ResolveRequest::new(t.clone(), "us-east-1");
    // Calls are started in priority order, and an answer that comes back without waiting
    // (in memory, or cached) is seen before the next call starts: the mapped id decides,
    // and the search after it is never sent. Whatever the mode.
    for resolver in [
        Resolver::for_template(&t),
        Resolver::for_template(&t).eager(),
        Resolver::for_template(&t).sequential(),
    ] {
        provider.reset();
        let r = resolver.resolve(&env, &req).await;
        assert_eq!(r.method, Method::DirectMapping);
        assert_eq!(provider.total(), 1, "{resolver:?}: {:?}", provider.calls());
        assert_eq!(provider.count(Operation::DescribeImagesById), 1);
        assert!(
            r.attempts[1..]
                .iter()
                .all(|a| a.outcome == Outcome::Skipped),
            "{r:#?}"
        );
    }
}

/// Round trips a resolution takes behind `latency` per call, on tokio's paused clock (the
/// injected latency advances a virtual clock, so elapsed time counts round trips exactly).
async fn round_trips(
    resolver: &Resolver,
    env: &ResolveEnv,
    req: &ResolveRequest,
    latency: Duration,
) -> (Resolution, u32) {
    let start = tokio::time::Instant::now();
    let r = resolver.resolve(env, req).await;
    let elapsed = start.elapsed();
    (r, (elapsed.as_micros() / latency.as_micros()) as u32)
}

#[tokio::test(start_paused = true)]
async fn behind_latency_a_hit_is_one_round_trip_and_a_fall_through_two() {
    let latency = Duration::from_millis(20);
    let provider = Arc::new(CountingProvider::new(LatencyProvider::new(
        LocalCloud::in_memory(),
        latency,
    )));
    let env = ResolveEnv::new(provider.clone());
    let t = template("python-ml");
    let waves = Resolver::for_template(&t);
    let eager = Resolver::for_template(&t).eager();
    let sequential = Resolver::for_template(&t).sequential();

    // us-east-1 has the mapped image: one round trip, two calls.
    let hit = ResolveRequest::new(t.clone(), "us-east-1");
    let (r, trips) = round_trips(&waves, &env, &hit, latency).await;
    assert_eq!(r.method, Method::DirectMapping);
    // The mapped id, and python-ml's search merged with the search for the user's own copies;
    // telling the user's images from the publisher's in that answer takes the account id,
    // asked beside them in the same round trip.
    assert_eq!((trips, provider.total()), (1, 3), "{:?}", provider.calls());
    assert_eq!(provider.count(Operation::AccountId), 1);
    // The eager resolver: one round trip too, but the fallback regions were asked as well.
    provider.reset();
    let (e, eager_trips) = round_trips(&eager, &env, &hit, latency).await;
    assert_eq!(e.ami_id, r.ami_id);
    assert_eq!(eager_trips, 1);
    assert!(provider.total() > 2, "{:?}", provider.calls());

    // ap-south-1 has no python-ml image: the launch region first (its search, and the base
    // image beside it since there is no mapped id to check), then the fallback regions.
    provider.reset();
    let miss = ResolveRequest::new(t.clone(), "ap-south-1");
    let (r, trips) = round_trips(&waves, &env, &miss, latency).await;
    assert_eq!(r.method, Method::CrossRegion, "{r:#?}");
    assert_eq!(trips, 2, "{:?}", provider.calls());

    let (e, eager_trips) = round_trips(&eager, &env, &miss, latency).await;
    assert_eq!(
        (e.method.clone(), e.ami_id.clone()),
        (r.method.clone(), r.ami_id.clone())
    );
    assert_eq!(
        eager_trips, 1,
        "the eager resolver sends everything at once"
    );

    let (s, seq_trips) = round_trips(&sequential, &env, &miss, latency).await;
    assert_eq!((s.method, s.ami_id), (r.method, r.ami_id));
    // One tier at a time: the search, then the fallback regions (the base image is never
    // asked): never fewer round trips than the waves.
    assert!(
        seq_trips >= trips,
        "the sequential walk: {seq_trips} round trips vs {trips}"
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
