//! `resolve_throughput`: resolutions per second on a zero-latency in-memory provider holding
//! 100,000 images over 30 regions, single-threaded and on all cores, for a direct mapping, a
//! one-family search and a search where every image of the region is a candidate.
//!
//! Run: `cargo bench -p cws-benches --bench resolve_throughput`.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use cws_benches::Catalogue;
use cws_benches::suite::cores;
use cws_resolver::*;

/// Images in the catalogue.
const IMAGES: usize = 100_000;
/// Regions they are spread over.
const REGIONS: usize = 30;

fn resolve_throughput(c: &mut Criterion) {
    let rt = cws_benches::runtime().expect("tokio runtime");
    let catalogue = Catalogue::build(IMAGES, REGIONS).expect("100k-image catalogue");
    let env = ResolveEnv::new(catalogue.cloud.clone());
    let cases = [
        ("direct_mapping", &catalogue.direct),
        ("search_one_family", &catalogue.selective),
        ("search_whole_region", &catalogue.broad),
    ];

    let mut group = c.benchmark_group("resolve_throughput_100k_images");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (name, template) in cases {
        let resolver = Resolver::for_template(template);
        let req = ResolveRequest::new(template.clone(), Catalogue::TARGET_REGION);
        group.bench_function(BenchmarkId::new(name, "1_thread"), |b| {
            b.to_async(&rt).iter(|| resolver.resolve(&env, &req))
        });

        // All cores: split each batch over one OS thread per core, each with its own
        // current-thread runtime; criterion divides the wall time by the batch size.
        let threads = cores();
        group.bench_function(BenchmarkId::new(name, format!("{threads}_threads")), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads as u64);
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(|| {
                            let rt = cws_benches::runtime().expect("tokio runtime");
                            rt.block_on(async {
                                for _ in 0..per_thread {
                                    std::hint::black_box(resolver.resolve(&env, &req).await);
                                }
                            });
                        });
                    }
                });
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, resolve_throughput);
criterion_main!(benches);
