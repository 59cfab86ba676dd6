//! `test_all_regions`: `service::test_regions` for `python-ml` over every catalogue region
//! with injected latency, against one region after another with the sequential tier walk.
//!
//! Run: `cargo bench -p cws-benches --bench test_all_regions`.

use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use cws_benches::LATENCY;
use cws_benches::suite::{AllRegions, all_regions_times, ms};

fn test_all_regions(c: &mut Criterion) {
    let rt = cws_benches::runtime().expect("tokio runtime");
    let a = AllRegions::new(LATENCY).expect("python-ml over all regions");
    let rows = rt.block_on(a.concurrent());
    let seq = rt.block_on(a.sequential());
    a.check(&rows, &seq).expect("both walks agree");

    let mut group = c.benchmark_group(format!(
        "test_all_regions_{}_L{}ms",
        a.regions.len(),
        LATENCY.as_millis()
    ));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    group.bench_function("cws_concurrent", |b| {
        b.to_async(&rt).iter(|| a.concurrent())
    });
    // About 1.5 s an iteration: give the ten samples the time they need (no criterion warning).
    group.measurement_time(Duration::from_secs(16));
    group.bench_function("sequential_regions", |b| {
        b.to_async(&rt).iter(|| a.sequential())
    });
    group.finish();

    let t = all_regions_times(&rt, LATENCY, 5, 1).expect("timed");
    println!(
        "\nami test --all-regions over {} regions, L = {} ms: cws {:.1} ms ({:.2} L), sequential {:.1} ms ({:.1} L)",
        t.regions,
        LATENCY.as_millis(),
        ms(t.concurrent),
        t.concurrent.as_secs_f64() / LATENCY.as_secs_f64(),
        ms(t.sequential),
        t.sequential.as_secs_f64() / LATENCY.as_secs_f64()
    );
}

criterion_group!(benches, test_all_regions);
criterion_main!(benches);
