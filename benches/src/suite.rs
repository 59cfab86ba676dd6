//! The measurements behind each bench, shared by the criterion benches (which time them with
//! statistics) and the `summary` bench (which takes medians and prints one table).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cws_localcloud::LocalCloud;
use cws_provider::wrappers::LatencyProvider;
use cws_resolver::service::{self, RegionStatus, RegionTest};
use cws_resolver::*;
use cws_template::{Template, TemplateStore};

use crate::BenchError;
use crate::catalogue::Catalogue;
use crate::measure::{Calls, count_calls, median};
use crate::scenario::{Case, Scenario, Walk};

/// The median wall time of one walk of one case.
#[derive(Debug, Clone, Copy)]
pub struct LatencyRow {
    /// The case.
    pub case: Case,
    /// The walk.
    pub walk: Walk,
    /// Median wall time per resolution.
    pub median: Duration,
}

impl LatencyRow {
    /// Wall time in units of the injected round trip.
    pub fn ratio(&self, latency: Duration) -> f64 {
        self.median.as_secs_f64() / latency.as_secs_f64()
    }
}

/// Resolves every case with every walk `runs` times (after one checked warm-up run) and keeps
/// the medians.
pub fn latency_rows(
    rt: &tokio::runtime::Runtime,
    scenarios: &[Scenario],
    latency: Duration,
    runs: usize,
) -> Result<Vec<LatencyRow>, BenchError> {
    let mut rows = Vec::new();
    for s in scenarios {
        for walk in Walk::ALL {
            let env = s.env(walk, latency);
            let resolver = walk.resolver(&s.template);
            let req = s.request();
            let first = rt.block_on(resolver.resolve(&env, &req));
            s.check(&first)?;
            let samples = (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    rt.block_on(resolver.resolve(&env, &req));
                    start.elapsed()
                })
                .collect();
            rows.push(LatencyRow {
                case: s.case,
                walk,
                median: median(samples),
            });
        }
    }
    Ok(rows)
}

/// Prints the latency rows as a table: one line per case, one column pair per walk.
pub fn print_latency_table(rows: &[LatencyRow], latency: Duration) {
    println!(
        "\nWall time per resolution, injected latency L = {} ms per provider call (median)",
        latency.as_millis()
    );
    println!(
        "| case | cws (waves) | cws eager | sequential tiers | serial calls |\n|---|---|---|---|---|"
    );
    for case in Case::ALL {
        let cell = |walk: Walk| {
            rows.iter()
                .find(|r| r.case == case && r.walk == walk)
                .map(|r| format!("{:.1} ms ({:.2} L)", ms(r.median), r.ratio(latency)))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            case.label(),
            cell(Walk::Waves),
            cell(Walk::Eager),
            cell(Walk::Sequential),
            cell(Walk::Serial)
        );
    }
}

/// Calls per resolution of one walk of one case.
#[derive(Debug, Clone, Copy)]
pub struct CallsRow {
    /// The case.
    pub case: Case,
    /// The walk.
    pub walk: Walk,
    /// The counts.
    pub calls: Calls,
}

/// Counts provider calls per resolution for every case and walk, uncached and cached.
pub fn calls_rows(
    rt: &tokio::runtime::Runtime,
    scenarios: &[Scenario],
    latency: Duration,
) -> Vec<CallsRow> {
    let mut rows = Vec::new();
    for s in scenarios {
        for walk in Walk::ALL {
            rows.push(CallsRow {
                case: s.case,
                walk,
                calls: rt.block_on(count_calls(s, walk, latency)),
            });
        }
    }
    rows
}

/// Prints the call counts as a table.
pub fn print_calls_table(rows: &[CallsRow], latency: Duration) {
    println!(
        "\nProvider calls per resolution (L = {} ms; uncached / cached repeat within the TTL)",
        latency.as_millis()
    );
    println!(
        "| case | cws (waves) | cws eager | sequential tiers | serial calls | cws cached repeat wall |\n|---|---|---|---|---|---|"
    );
    for case in Case::ALL {
        let find = |walk: Walk| rows.iter().find(|r| r.case == case && r.walk == walk);
        let cell = |walk: Walk| {
            find(walk)
                .map(|r| format!("{} / {}", r.calls.uncached, r.calls.cached_repeat))
                .unwrap_or_else(|| "-".into())
        };
        let repeat = find(Walk::Waves)
            .map(|r| format!("{:.3} ms", ms(r.calls.repeat_wall)))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            case.label(),
            cell(Walk::Waves),
            cell(Walk::Eager),
            cell(Walk::Sequential),
            cell(Walk::Serial),
            repeat
        );
    }
}

/// The template, regions and environment of the all-regions bench.
#[derive(Debug, Clone)]
pub struct AllRegions {
    /// `python-ml`.
    pub template: Template,
    /// Every region of the catalogue.
    pub regions: Vec<String>,
    /// The seeded cloud with injected latency.
    pub env: ResolveEnv,
}

impl AllRegions {
    /// `python-ml` over every catalogue region on the seeded cloud with `latency` per call.
    pub fn new(latency: Duration) -> Result<AllRegions, BenchError> {
        let template = TemplateStore::bundled_only()
            .get("python-ml")
            .map(|t| t.template)
            .map_err(|source| BenchError::Template {
                slug: "python-ml".into(),
                source,
            })?;
        let regions = cws_regions::all()
            .iter()
            .map(|r| r.code.to_string())
            .collect();
        let env = ResolveEnv::new(Arc::new(LatencyProvider::new(
            Arc::new(LocalCloud::in_memory()),
            latency,
        )));
        Ok(AllRegions {
            template,
            regions,
            env,
        })
    }

    /// cws: `service::test_regions`, every region at once.
    pub async fn concurrent(&self) -> Vec<RegionTest> {
        service::test_regions(&self.env, &self.template, &self.regions, None).await
    }

    /// The baseline: one region after another, each with the sequential tier walk.
    pub async fn sequential(&self) -> Vec<Resolution> {
        let resolver = Resolver::for_template(&self.template).sequential();
        let mut out = Vec::with_capacity(self.regions.len());
        for region in &self.regions {
            let req = ResolveRequest::new(self.template.clone(), region.clone());
            out.push(resolver.resolve(&self.env, &req).await);
        }
        out
    }

    /// Checks that both walks agree region by region and that no region errored.
    pub fn check(&self, rows: &[RegionTest], seq: &[Resolution]) -> Result<(), BenchError> {
        let bad = |why: String| BenchError::Unexpected {
            case: "test_all_regions".into(),
            why,
        };
        if rows.len() != self.regions.len() || seq.len() != self.regions.len() {
            return Err(bad(format!(
                "{} concurrent and {} sequential rows for {} regions",
                rows.len(),
                seq.len(),
                self.regions.len()
            )));
        }
        for (row, r) in rows.iter().zip(seq) {
            if row.status == RegionStatus::Error {
                return Err(bad(format!("{} errored: {}", row.region, row.detail)));
            }
            if row.method != r.method || row.ami_id != r.ami_id {
                return Err(bad(format!(
                    "{}: concurrent {} {:?} vs sequential {} {:?}",
                    row.region, row.method, row.ami_id, r.method, r.ami_id
                )));
            }
        }
        Ok(())
    }
}

/// Median wall times of the all-regions test, concurrent and sequential.
#[derive(Debug, Clone, Copy)]
pub struct AllRegionsTimes {
    /// How many regions.
    pub regions: usize,
    /// cws.
    pub concurrent: Duration,
    /// One region after another.
    pub sequential: Duration,
}

/// Times the all-regions test (after a checked first run).
pub fn all_regions_times(
    rt: &tokio::runtime::Runtime,
    latency: Duration,
    concurrent_runs: usize,
    sequential_runs: usize,
) -> Result<AllRegionsTimes, BenchError> {
    let a = AllRegions::new(latency)?;
    let rows = rt.block_on(a.concurrent());
    let seq = rt.block_on(a.sequential());
    a.check(&rows, &seq)?;
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let concurrent = median(
        (0..concurrent_runs)
            .map(|_| {
                time(&|| {
                    rt.block_on(a.concurrent());
                })
            })
            .collect(),
    );
    let sequential = median(
        (0..sequential_runs)
            .map(|_| {
                time(&|| {
                    rt.block_on(a.sequential());
                })
            })
            .collect(),
    );
    Ok(AllRegionsTimes {
        regions: a.regions.len(),
        concurrent,
        sequential,
    })
}

/// Resolutions of `template` in the catalogue's target region per second on one thread, for
/// about `span`.
pub fn throughput_one_core(
    rt: &tokio::runtime::Runtime,
    catalogue: &Catalogue,
    template: &Template,
    span: Duration,
) -> f64 {
    let env = ResolveEnv::new(catalogue.cloud.clone());
    let resolver = Resolver::for_template(template);
    let req = ResolveRequest::new(template.clone(), Catalogue::TARGET_REGION);
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < span {
        rt.block_on(async {
            for _ in 0..64 {
                std::hint::black_box(resolver.resolve(&env, &req).await);
            }
        });
        done += 64;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Resolutions per second with `threads` OS threads, each driving its own current-thread
/// runtime, all sharing one cloud, for about `span`.
pub fn throughput_all_cores(
    catalogue: &Catalogue,
    template: &Template,
    threads: usize,
    span: Duration,
) -> Result<f64, BenchError> {
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<(), BenchError> {
                    let rt = crate::runtime()?;
                    let env = ResolveEnv::new(catalogue.cloud.clone());
                    let resolver = Resolver::for_template(template);
                    let req = ResolveRequest::new(template.clone(), Catalogue::TARGET_REGION);
                    while start.elapsed() < span {
                        rt.block_on(async {
                            for _ in 0..64 {
                                std::hint::black_box(resolver.resolve(&env, &req).await);
                            }
                        });
                        done.fetch_add(64, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(r) => r?,
                Err(_) => {
                    return Err(BenchError::Unexpected {
                        case: "throughput_all_cores".into(),
                        why: "a worker thread panicked".into(),
                    });
                }
            }
        }
        Ok(())
    })?;
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Median wall time of one resolution of `template` in the catalogue's target region.
pub fn per_resolution(
    rt: &tokio::runtime::Runtime,
    catalogue: &Catalogue,
    template: &Template,
    runs: usize,
) -> Duration {
    let env = ResolveEnv::new(catalogue.cloud.clone());
    let resolver = Resolver::for_template(template);
    let req = ResolveRequest::new(template.clone(), Catalogue::TARGET_REGION);
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(rt.block_on(resolver.resolve(&env, &req)));
                start.elapsed()
            })
            .collect(),
    )
}

/// The number of cores to use for "all cores" figures.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Milliseconds as a float, for tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_regions_walks_agree_and_cover_the_catalogue() {
        let rt = crate::runtime().unwrap();
        let t = all_regions_times(&rt, Duration::ZERO, 1, 1).unwrap();
        assert_eq!(t.regions, cws_regions::all().len());
        assert!(t.regions >= 30);
    }

    #[test]
    fn throughput_counts_resolutions() {
        let rt = crate::runtime().unwrap();
        let c = Catalogue::build(30 * 200, 30).unwrap();
        let one = throughput_one_core(&rt, &c, &c.direct, Duration::from_millis(20));
        assert!(one > 0.0);
        let all = throughput_all_cores(&c, &c.selective, 2, Duration::from_millis(20)).unwrap();
        assert!(all > 0.0);
        assert!(per_resolution(&rt, &c, &c.broad, 3) > Duration::ZERO);
    }

    #[test]
    fn tables_print_without_panicking() {
        let rt = crate::runtime().unwrap();
        let scenarios = Scenario::all().unwrap();
        let rows = latency_rows(&rt, &scenarios[..1], Duration::from_millis(1), 1).unwrap();
        assert_eq!(rows.len(), Walk::ALL.len());
        print_latency_table(&rows, Duration::from_millis(1));
        let calls = calls_rows(&rt, &scenarios[..1], Duration::from_millis(1));
        assert_eq!(calls[0].calls.cached_repeat, 0);
        print_calls_table(&calls, Duration::from_millis(1));
    }
}
