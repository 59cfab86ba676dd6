//! `resolve_calls`: provider calls per resolution for each case and walk, uncached and as a
//! cached repeat within the TTL (`CountingProvider` under `CachingProvider`), printed as a
//! table; then criterion times the cached repeat (which should cost no round trip at all).
//!
//! Run: `cargo bench -p cws-benches --bench resolve_calls`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cws_benches::suite::{calls_rows, print_calls_table};
use cws_benches::{LATENCY, Scenario, Walk};
use cws_provider::wrappers::{CachingProvider, CountingProvider};
use cws_provider::*;
use cws_resolver::*;

fn resolve_calls(c: &mut Criterion) {
    let rt = cws_benches::runtime().expect("tokio runtime");
    let scenarios = Scenario::all().expect("bench fixtures build");
    let rows = calls_rows(&rt, &scenarios, LATENCY);
    print_calls_table(&rows, LATENCY);

    // A warm cache answers without touching the (slow) provider: time the repeat.
    let mut group = c.benchmark_group(format!("cached_repeat_L{}ms", LATENCY.as_millis()));
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    for s in &scenarios {
        let cached = Arc::new(CachingProvider::new(
            CountingProvider::new(Walk::Waves.provider(s.cloud.clone(), LATENCY)),
            Duration::from_secs(3600),
        ));
        let env = ResolveEnv::new(cached.clone() as Arc<dyn CloudProvider>);
        let resolver = Walk::Waves.resolver(&s.template);
        let req = s.request();
        let first = rt.block_on(resolver.resolve(&env, &req));
        s.check(&first).expect("scenario takes its named path");
        cached.inner().reset();
        group.bench_function(BenchmarkId::new(s.case.id(), "cws_cached"), |b| {
            b.to_async(&rt).iter(|| resolver.resolve(&env, &req))
        });
        assert_eq!(
            cached.inner().total(),
            0,
            "{}: a cached repeat reached the provider",
            s.case.id()
        );
    }
    group.finish();
}

criterion_group!(benches, resolve_calls);
criterion_main!(benches);
