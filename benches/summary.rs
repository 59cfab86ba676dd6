//! `summary`: every figure of the performance model in one table, with its target and whether
//! this machine met it. Medians of repeated runs, no statistics beyond that (the criterion
//! benches have those).
//!
//! Run: `cargo bench -p cws-benches --bench summary` (or `benches/summary.sh`, which first
//! builds the release `cws` binary so the CLI cold start is measured too). Set `CWS_BIN` to
//! time another `cws` binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use cws_benches::catalogue::{self, Catalogue};
use cws_benches::measure::{median, rss_bytes};
use cws_benches::suite::{
    CallsRow, LatencyRow, all_regions_times, calls_rows, cores, latency_rows, ms, per_resolution,
    throughput_all_cores, throughput_one_core,
};
use cws_benches::{BenchError, Case, LATENCY, Scenario, Walk};
use cws_localcloud::LocalCloud;

/// Counts live heap bytes while [`COUNTING`] is on, so the memory figure is the bytes the
/// catalogue really holds rather than an estimate. Off, it costs one relaxed load per call.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from `System` with this layout (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: as for `dealloc`; `new_size` obeys the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Images and regions of the throughput catalogue.
const IMAGES: usize = 100_000;
const REGIONS: usize = 30;

/// One line of the summary.
struct Line {
    what: String,
    result: String,
    target: String,
    verdict: &'static str,
}

fn line(
    what: impl Into<String>,
    result: impl Into<String>,
    target: &str,
    met: Option<bool>,
) -> Line {
    Line {
        what: what.into(),
        result: result.into(),
        target: target.into(),
        verdict: match met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        },
    }
}

fn main() -> Result<(), BenchError> {
    // `cargo bench` passes `--bench` (and any filter); a plain run needs no arguments.
    let rt = cws_benches::runtime()?;
    let l = LATENCY;
    let in_l = |d: Duration| d.as_secs_f64() / l.as_secs_f64();
    let mut lines: Vec<Line> = Vec::new();
    eprintln!("summary: latency ({} ms per call)...", l.as_millis());

    // 1. Latency per resolution, three walks.
    let scenarios = Scenario::all()?;
    let rows = latency_rows(&rt, &scenarios, l, 11)?;
    let find = |case: Case, walk: Walk| -> Option<&LatencyRow> {
        rows.iter().find(|r| r.case == case && r.walk == walk)
    };
    for case in Case::ALL {
        for walk in Walk::ALL {
            let Some(r) = find(case, walk) else { continue };
            let ratio = r.ratio(l);
            let (target, met) = match (walk, case) {
                // A hit is one round trip; a fall-through asks the fallback regions in a
                // second one.
                (Walk::Waves, Case::DirectHit | Case::DynamicHit) => {
                    ("<= 1.5 L", Some(ratio <= 1.5))
                }
                (Walk::Waves, _) => ("<= 2.5 L", Some(ratio <= 2.5)),
                (Walk::Eager, _) => ("<= 1.5 L", Some(ratio <= 1.5)),
                (_, Case::CrossRegionThird) => (">= 5 L (baseline)", Some(ratio >= 5.0)),
                _ => ("baseline", None),
            };
            lines.push(line(
                format!("{} - {}", case.label(), walk_label(walk)),
                format!("{:.1} ms = {:.2} L", ms(r.median), ratio),
                target,
                met,
            ));
        }
    }

    // 2. Provider calls per resolution.
    eprintln!("summary: provider calls...");
    let calls: Vec<CallsRow> = calls_rows(&rt, &scenarios, l);
    for case in Case::ALL {
        let get = |walk: Walk| calls.iter().find(|r| r.case == case && r.walk == walk);
        let (Some(c), Some(e), Some(s), Some(x)) = (
            get(Walk::Waves),
            get(Walk::Eager),
            get(Walk::Sequential),
            get(Walk::Serial),
        ) else {
            continue;
        };
        lines.push(line(
            format!(
                "calls/resolution, {} (cws / eager / seq / serial; cws cached repeat)",
                case.label()
            ),
            format!(
                "{} / {} / {} / {}; cached {} calls in {:.3} ms",
                c.calls.uncached,
                e.calls.uncached,
                s.calls.uncached,
                x.calls.uncached,
                c.calls.cached_repeat,
                ms(c.calls.repeat_wall)
            ),
            "cached repeat: 0 calls",
            Some(c.calls.cached_repeat == 0),
        ));
    }

    // 3. ami test --all-regions.
    eprintln!("summary: all regions...");
    let all = all_regions_times(&rt, l, 5, 3)?;
    lines.push(line(
        format!("ami test --all-regions, {} regions - cws", all.regions),
        format!(
            "{:.1} ms = {:.2} L",
            ms(all.concurrent),
            in_l(all.concurrent)
        ),
        "<= 2 L",
        Some(in_l(all.concurrent) <= 2.0),
    ));
    lines.push(line(
        format!(
            "ami test --all-regions, {} regions - one region after another, sequential tiers",
            all.regions
        ),
        format!(
            "{:.1} ms = {:.1} L",
            ms(all.sequential),
            in_l(all.sequential)
        ),
        "baseline",
        None,
    ));

    // 4. Memory held per image: build the 100k catalogue while counting heap bytes.
    eprintln!("summary: building the {IMAGES}-image catalogue...");
    let rss_before = rss_bytes();
    COUNTING.store(true, Ordering::SeqCst);
    let regions = catalogue::regions(REGIONS);
    let cloud = LocalCloud::empty();
    cloud.insert_images(catalogue::images(IMAGES, &regions))?;
    COUNTING.store(false, Ordering::SeqCst);
    let heap = LIVE.load(Ordering::SeqCst);
    let rss_after = rss_bytes();
    let cat = Catalogue::over(Arc::new(cloud), regions, IMAGES)?;
    lines.push(line(
        format!("memory per image ({IMAGES} images, {REGIONS} regions; image + snapshot + index)"),
        format!(
            "{} B live heap (counted by the allocator); {} B RSS delta",
            heap / IMAGES as i64,
            match (rss_before, rss_after) {
                (Some(a), Some(b)) => (b.saturating_sub(a) / IMAGES as u64).to_string(),
                _ => "n/a".into(),
            }
        ),
        "(reported)",
        None,
    ));

    // 5. Zero-latency throughput.
    eprintln!("summary: zero-latency throughput...");
    let threads = cores();
    let span = Duration::from_secs(1);
    // (name, template, floor in resolutions/s on one core, ceiling per resolution)
    let cases = [
        ("direct mapping", &cat.direct, Some(200_000.0), None),
        (
            "dynamic search, one family (~33 candidates)",
            &cat.selective,
            None,
            Some((Duration::from_millis(1), "< 1 ms per resolution")),
        ),
        (
            "dynamic search, whole region (~3,333 candidates)",
            &cat.broad,
            None,
            Some((Duration::from_micros(700), "<= 0.7 ms per resolution")),
        ),
    ];
    for (name, template, floor, ceiling) in cases {
        let one = throughput_one_core(&rt, &cat, template, span);
        let all_cores = throughput_all_cores(&cat, template, threads, span)?;
        let each = per_resolution(&rt, &cat, template, 201);
        let (target, met) = match (floor, ceiling) {
            (Some(f), _) => (">= 200,000/s on one core", Some(one >= f)),
            (None, Some((limit, text))) => (text, Some(each <= limit)),
            (None, None) => ("(reported)", None),
        };
        lines.push(line(
            format!("zero latency, {IMAGES} images: {name}"),
            format!(
                "{} /s on 1 core, {} /s on {threads} cores; {:.1} us each",
                thousands(one),
                thousands(all_cores),
                each.as_secs_f64() * 1e6
            ),
            target,
            met,
        ));
    }

    // 6. CLI cold start.
    eprintln!("summary: CLI cold start...");
    match cli_cold_start(21) {
        Ok((first, med)) => lines.push(line(
            "CLI cold start: cws --json ami resolve python-ml (LocalCloud)",
            format!(
                "median {:.1} ms over 21 runs (first run, which seeds the state: {:.1} ms)",
                ms(med),
                ms(first)
            ),
            "< 50 ms",
            Some(med < Duration::from_millis(50)),
        )),
        Err(why) => lines.push(line(
            "CLI cold start: cws --json ami resolve python-ml (LocalCloud)",
            format!("not measured: {why}"),
            "< 50 ms",
            None,
        )),
    }

    // Other work on the machine skews the multi-core figures most: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "n/a".into());
    println!(
        "\ncws performance summary: L = {} ms injected per provider call; {} cores; 1-min load average at the end {}",
        l.as_millis(),
        threads,
        load
    );
    println!("| measure | result | target | verdict |\n|---|---|---|---|");
    for x in &lines {
        println!(
            "| {} | {} | {} | {} |",
            x.what, x.result, x.target, x.verdict
        );
    }
    Ok(())
}

fn walk_label(walk: Walk) -> &'static str {
    match walk {
        Walk::Waves => "cws (waves)",
        Walk::Eager => "cws eager",
        Walk::Sequential => "sequential tiers",
        Walk::Serial => "serial calls",
    }
}

/// 123456.7 -> "123,457".
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The release `cws` binary: `$CWS_BIN`, else `<target>/release/cws`.
fn cws_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CWS_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("release").join("cws");
    bin.is_file().then_some(bin)
}

/// Runs `cws --json ami resolve python-ml` against a fresh LocalCloud home `runs + 1` times;
/// returns the first (seeding) run and the median of the rest.
fn cli_cold_start(runs: usize) -> Result<(Duration, Duration), String> {
    let bin = cws_binary().ok_or(
        "no release binary; run `cargo build --release -p cws-cli` (benches/summary.sh does) or set CWS_BIN",
    )?;
    let home = tempfile::tempdir().map_err(|e| format!("cannot create a temporary home: {e}"))?;
    let once = || -> Result<Duration, String> {
        let start = Instant::now();
        let out = Command::new(&bin)
            .args(["--home"])
            .arg(home.path())
            .args(["--json", "ami", "resolve", "python-ml"])
            .env_remove("CWS_REGION")
            .env_remove("AWS_REGION")
            .env_remove("CWS_PROVIDER")
            .env_remove("CWS_HOME")
            .env_remove("CWS_TEMPLATES_PATH")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let took = start.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains("direct_mapping") {
            return Err(format!(
                "{} exited with {} and printed no direct_mapping resolution",
                bin.display(),
                out.status
            ));
        }
        Ok(took)
    };
    let first = once()?;
    let rest = (0..runs).map(|_| once()).collect::<Result<Vec<_>, _>>()?;
    Ok((first, median(rest)))
}
