//! `registry_browse`: `Registry::browse` on the embedded SQLite registry holding 10,000
//! listings over 20 categories (with ratings and downloads): the default query (every
//! listing, by score), the first page of it, one category, and a text search.
//!
//! The registry is filled through the `Registry` trait, one write transaction per call, as
//! `cws ami publish`, `cws ami rate` and launches would; the time that takes is printed. Then
//! the mean of each query is printed once (the README's "browse over 10,000 listings" row)
//! before criterion times them.
//!
//! Run: `cargo bench -p cws-benches --bench registry_browse`.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cws_registry::*;

/// Listings in the registry.
const LISTINGS: usize = 10_000;
/// Publishers, each with `LISTINGS / PUBLISHERS` listings.
const PUBLISHERS: usize = 100;
/// Raters; listing `i` gets `i % 7` ratings when `i % 3 == 0`.
const RATERS: usize = 8;
/// Runs of each query averaged for the printed figure.
const RUNS: u32 = 20;
/// The figure browse should stay under.
const TARGET: Duration = Duration::from_millis(50);

const CATEGORIES: [&str; 20] = [
    "machine-learning",
    "deep-learning",
    "data-science",
    "genomics",
    "proteomics",
    "bioinformatics",
    "chemistry",
    "physics",
    "astronomy",
    "climate",
    "geospatial",
    "statistics",
    "economics",
    "neuroscience",
    "imaging",
    "hpc",
    "visualization",
    "databases",
    "teaching",
    "general",
];

/// Tools named in descriptions: listing `i` names `TOOLS[i % 25]` and `TOOLS[i % 7]`, so a
/// search for one of the first seven matches about 1 in 7 listings, for any other about 1 in 25.
const TOOLS: [&str; 25] = [
    "pytorch",
    "jupyter",
    "rstudio",
    "cuda",
    "conda",
    "docker",
    "julia",
    "tensorflow",
    "jax",
    "gromacs",
    "samtools",
    "bwa",
    "gatk",
    "blast",
    "paraview",
    "qgis",
    "gdal",
    "postgis",
    "spark",
    "dask",
    "xarray",
    "openmpi",
    "lammps",
    "cp2k",
    "stata",
];

fn identity(handle: &str) -> Identity {
    Identity::new(handle, format!("{handle}@example.edu"), None).expect("bench identity")
}

fn listing_id(i: usize) -> ListingId {
    ListingId::new(
        &format!("pub-{:03}", i % PUBLISHERS),
        &format!("image-{i:05}"),
    )
    .expect("bench listing id")
}

fn publish(i: usize) -> Publish {
    let id = listing_id(i);
    Publish {
        name: format!("Image {i:05}"),
        description: format!(
            "A research workstation with {} and {}, built nightly.",
            TOOLS[i % TOOLS.len()],
            TOOLS[i % 7]
        ),
        category: CATEGORIES[i % CATEGORIES.len()].to_string(),
        template: id.slug.clone(),
        visibility: Visibility::Public,
        version: parse_version("1.0.0").expect("bench version"),
        template_digest: format!("sha256:{i:064x}"),
        region: "us-east-1".into(),
        image: RegionImage {
            ami_id: format!("ami-{i:017x}"),
            architecture: "x86_64".into(),
            snapshot_ids: vec![format!("snap-{i:017x}")],
            size_gib: Some(30),
        },
        notes: None,
        speedup: Some(5.0),
        listing: id,
    }
}

/// What was written while filling the registry.
struct Filled {
    ratings: usize,
    downloads: usize,
    took: Duration,
}

async fn fill(store: &SqliteRegistry) -> RegistryResult<Filled> {
    let start = Instant::now();
    let version = parse_version("1.0.0")?;
    let publishers: Vec<Actor> = (0..PUBLISHERS)
        .map(|p| Actor::user(identity(&format!("pub-{p:03}"))))
        .collect();
    let raters: Vec<Actor> = (0..RATERS)
        .map(|r| Actor::user(identity(&format!("rater-{r}"))))
        .collect();
    let day = NaiveDate::from_ymd_opt(2025, 3, 1).expect("bench day");
    let (mut ratings, mut downloads) = (0, 0);
    for i in 0..LISTINGS {
        store
            .publish(&publishers[i % PUBLISHERS], &publish(i))
            .await?;
        if i % 3 == 0 {
            for (r, rater) in raters.iter().enumerate().take(i % 7) {
                let stars = ((i + r) % 5 + 1) as u8;
                store.rate(rater, &listing_id(i), stars, None).await?;
                ratings += 1;
            }
        }
        let launches = if i % 2 == 0 { i % 3 } else { 0 };
        for _ in 0..launches {
            store
                .record_download(&Download {
                    listing: listing_id(i),
                    version: version.clone(),
                    day,
                    by: None,
                })
                .await?;
            downloads += 1;
        }
    }
    Ok(Filled {
        ratings,
        downloads,
        took: start.elapsed(),
    })
}

fn registry_browse(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = rt
        .block_on(SqliteRegistry::open(&dir.path().join("registry.db")))
        .expect("open the bench registry");
    let filled = rt.block_on(fill(&store)).expect("fill the bench registry");
    println!(
        "registry_browse: filled {LISTINGS} listings, {} ratings, {} downloads through the \
         Registry trait in {:.1} s ({:.2} ms per write)",
        filled.ratings,
        filled.downloads,
        filled.took.as_secs_f64(),
        filled.took.as_secs_f64() * 1000.0 / (LISTINGS + filled.ratings + filled.downloads) as f64
    );

    let cases = [
        ("default", BrowseQuery::default()),
        (
            "default_limit_20",
            BrowseQuery {
                limit: 20,
                ..BrowseQuery::default()
            },
        ),
        (
            "category",
            BrowseQuery {
                category: Some("genomics".into()),
                ..BrowseQuery::default()
            },
        ),
        (
            "text",
            BrowseQuery {
                text: Some("GROMACS".into()),
                ..BrowseQuery::default()
            },
        ),
    ];

    // The figure a reader looks for: the mean of RUNS runs of each query, printed once.
    println!(
        "registry_browse over {LISTINGS} listings (mean of {RUNS} runs; target < {TARGET:?}):"
    );
    for (name, query) in &cases {
        let found = rt.block_on(store.browse(None, query)).expect("browse");
        let start = Instant::now();
        for _ in 0..RUNS {
            std::hint::black_box(rt.block_on(store.browse(None, query)).expect("browse"));
        }
        let mean = start.elapsed() / RUNS;
        println!(
            "  {name:<17} {:>8.2} ms  {:>6} results  {}",
            mean.as_secs_f64() * 1000.0,
            found.len(),
            if mean < TARGET { "met" } else { "MISSED" }
        );
    }

    let mut group = c.benchmark_group(format!("registry_browse_{LISTINGS}_listings"));
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for (name, query) in &cases {
        group.bench_function(BenchmarkId::new("browse", name), |b| {
            b.to_async(&rt).iter(|| store.browse(None, query))
        });
    }
    group.finish();
}

criterion_group!(benches, registry_browse);
criterion_main!(benches);
