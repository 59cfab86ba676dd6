//! Price book and cost model for cws: what launching a research workstation
//! costs from a prepared AMI versus a provisioning script, what keeping and
//! copying AMIs costs, and which to choose.
//!
//! The resolver uses it to say things like "Cross-region copy required
//! (2 min + $0.56)"; `cws ami costs` prints a [`CostAnalysis`].
//!
//! # README
//!
//! ## Money is exact
//!
//! Every amount is a [`Money`]: an integer number of micro-dollars. Nothing is
//! ever summed as `f64`; floats appear only when a value is written to JSON
//! (as a number equal to the decimal amount, e.g. `0.045`). The two operations
//! that must round — an hourly rate over some seconds ([`Money::per_seconds`])
//! and a ratio ([`Money::times_ratio`]), which includes scaling a price by a
//! regional multiplier — round half-up to the micro-dollar.
//!
//! The seed figure holds exactly: at $0.45/hour, a 6-minute script setup
//! costs $0.045.
//!
//! ```
//! use cws_cost::Money;
//! let rate = Money::parse("0.45")?;
//! assert_eq!(rate.per_seconds(6 * 60).to_string(), "$0.045");
//! # Ok::<(), cws_cost::CostError>(())
//! ```
//!
//! ## The price book
//!
//! [`PriceBook::bundled`] is a dated list (see [`PriceBook::version`]) compiled
//! into the crate from `data/prices.toml`; `PRICES.md` beside it names the
//! sources (AWS EC2 On-Demand, EBS and data-transfer pricing pages). It holds:
//!
//! * on-demand Linux $/hour in us-east-1 for the families researchers use (t3,
//!   t4g, m5/m6i/m7i, m6g/m7g, c6i/c7i, c7g, r6i, r7g, g4dn, g5, g6);
//! * a price multiplier per region (us-west-1 1.17, eu-west-1 1.11,
//!   sa-east-1 1.59, ...) and a default per continent for regions without
//!   their own row; a regional price is the us-east-1 price × multiplier,
//!   rounded half-up to the micro-dollar;
//! * EBS snapshot storage, $0.05/GB-month standard, with a few regional
//!   exceptions;
//! * inter-region transfer $/GB by source region: $0.02 out of US, Canadian
//!   and European regions, more out of Asia Pacific (~$0.09), the Middle East
//!   ($0.1105), South America ($0.138) and Africa ($0.147).
//!
//! A user override file in the same TOML format changes any of it — an
//! instance price for all regions or for one, region multipliers, snapshot and
//! transfer prices — via [`PriceBook::with_overrides_file`]. Mistakes are
//! reported with the file, line, column, key and fix. An override file is at
//! most [`MAX_PRICE_FILE_BYTES`] (1 MiB); a larger one, or a path that is not a
//! regular file, is refused before it is read ([`CostError::Refused`]). The format is documented
//! on [`PriceBook`]'s module, [`book`].
//!
//! ```
//! use cws_cost::PriceBook;
//! let book = PriceBook::bundled().with_overrides_str(
//!     "version = \"lab-discount\"\n[region_prices.\"eu-west-1\"]\n\"m6i.large\" = 0.09\n",
//!     "lab-prices.toml",
//! )?;
//! assert_eq!(book.instance_hourly("m6i.large", "eu-west-1")?.to_string(), "$0.09");
//! assert_eq!(book.instance_hourly("m6i.large", "us-east-1")?.to_string(), "$0.096");
//! assert!(book.version().ends_with("+lab-discount"));
//! # Ok::<(), cws_cost::CostError>(())
//! ```
//!
//! ## The cost model
//!
//! **Setup time.** A prepared image is ready after [`AMI_BOOT_SECONDS`] (30 s).
//! A script launch pays a 60 s base ([`SCRIPT_BOOT_SECONDS`] + index update)
//! plus per-package time by manager — apt 3 s, conda 15 s after a 120 s
//! Miniforge install and solve, pip 5 s, spack 90 s after a 120 s bootstrap
//! (spack compiles) — plus 60 s for a template's own script
//! ([`script_setup_seconds`]; the constants and reasons are in [`timing`]). A
//! python-ml-like template (10 apt, 8 conda, 6 pip) takes 6 minutes.
//!
//! **Launch cost.** Setup seconds × hourly rate, plus the session itself
//! ([`analyze`]). The AMI saves the difference on every launch.
//!
//! **Storage.** An AMI costs its snapshot GB × $/GB-month every month; spread
//! over L launches a month that is storage ÷ L per launch.
//!
//! **Break-even** is the smallest number of launches a month whose savings pay
//! for the storage, ⌈storage ÷ saving⌉, or never when an AMI saves nothing.
//! The recommendation is the AMI at or above break-even and the script below
//! it, with the figures as reasons, e.g. "AMI saves 5.5 min per launch
//! ($0.0413 at $0.45/h)" and "storage $1.50/month (30 GB × $0.05/GB-month)
//! breaks even at 37 launches/month".
//!
//! **Cross-region copy** ([`copy_estimate`]) costs snapshot GB × the source
//! region's transfer price plus the first month of storage in the target, and
//! takes 60 s plus 6 s/GB within a continent or 10 s/GB across continents.
//!
//! ```
//! use cws_cost::{analyze, script_setup_seconds, Choice, CostInput, PackageCounts, PriceBook, AMI_BOOT_SECONDS};
//! let book = PriceBook::bundled();
//! let counts = PackageCounts { system: 10, conda: 8, pip: 6, ..Default::default() };
//! let analysis = analyze(&book, &CostInput {
//!     instance_type: "m6i.xlarge".into(),
//!     region: "us-east-1".into(),
//!     session_hours: "4".parse()?,
//!     script_setup_seconds: script_setup_seconds(&counts),
//!     ami_boot_seconds: AMI_BOOT_SECONDS,
//!     snapshot_gb: 30,
//!     launches_per_month: 100,
//! })?;
//! assert_eq!(analysis.recommendation.choice, Choice::Ami);
//! println!("{analysis}");
//! # Ok::<(), cws_cost::CostError>(())
//! ```
#![deny(missing_docs)]

mod analysis;
pub mod book;
mod copy;
mod error;
mod hours;
mod money;
pub mod timing;

pub use analysis::{
    Choice, CostAnalysis, CostInput, LaunchCost, Recommendation, StorageCost, analyze, break_even,
};
pub use book::PriceBook;
pub use copy::{CopyEstimate, copy_estimate};
pub use error::CostError;
pub use hours::Hours;
pub use money::Money;
pub use timing::{
    AMI_BOOT_SECONDS, COPY_FIXED_SECONDS, PackageCounts, SCRIPT_BOOT_SECONDS, SetupStep,
    format_duration, script_setup_breakdown, script_setup_seconds,
};

/// The largest price override file [`PriceBook::with_overrides_file`] reads:
/// 1 MiB, far beyond a price for every instance type in every region (the
/// bundled book is about 6 KiB). A larger file, or a path that is not a
/// regular file (a directory, `/dev/zero`, a FIFO), is refused before it is
/// read ([`CostError::Refused`]).
pub const MAX_PRICE_FILE_BYTES: u64 = 1024 * 1024;
