//! `resolve_latency`: wall time per resolution with a fixed injected latency per provider call,
//! cws's concurrent resolver against the sequential tier walk and the serial-call walk, for the
//! four cases of [`cws_benches::Case`]. Ends with a median table in units of the round trip.
//!
//! Run: `cargo bench -p cws-benches --bench resolve_latency`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use cws_benches::suite::{latency_rows, print_latency_table};
use cws_benches::{LATENCY, Scenario, Walk};

fn resolve_latency(c: &mut Criterion) {
    let rt = cws_benches::runtime().expect("tokio runtime");
    let scenarios = Scenario::all().expect("bench fixtures build");
    let mut group = c.benchmark_group(format!("resolve_latency_L{}ms", LATENCY.as_millis()));
    // Each iteration sleeps on purpose; flat sampling keeps the run to a few seconds a bench.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    for s in &scenarios {
        for walk in Walk::ALL {
            let env = s.env(walk, LATENCY);
            let resolver = walk.resolver(&s.template);
            let req = s.request();
            let first = rt.block_on(resolver.resolve(&env, &req));
            s.check(&first).expect("scenario takes its named path");
            group.bench_function(BenchmarkId::new(s.case.id(), walk.id()), |b| {
                b.to_async(&rt).iter(|| resolver.resolve(&env, &req))
            });
        }
    }
    group.finish();

    let rows = latency_rows(&rt, &scenarios, LATENCY, 9).expect("latency rows");
    print_latency_table(&rows, LATENCY);
}

criterion_group!(benches, resolve_latency);
criterion_main!(benches);
