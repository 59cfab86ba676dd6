//! # cws-benches
//!
//! Fixtures shared by the criterion benches and the `summary` bench that prints one table.
//!
//! The claim under test (README "Performance"): a resolution is bound by provider round trips, not CPU;
//! a hit costs one round trip and one or two calls, a fall-through two round trips, and a
//! cached repeat no call. To show that, every scenario here is resolved four ways against the
//! same simulated cloud with the same injected per-call latency:
//!
//! - [`Walk::Waves`]: cws's resolver as shipped ([`Resolver::for_template`]);
//! - [`Walk::Eager`]: every tier at once ([`Resolver::eager`]);
//! - [`Walk::Sequential`]: the same tiers walked one at a time ([`Resolver::sequential`]);
//! - [`Walk::Serial`]: the sequential walk with one provider call in flight at a time
//!   ([`SerialProvider`]), the way a script that calls the API in a loop behaves.
//!
//! Scenario fixtures check their own outcome ([`Scenario::check`]) before anything is timed,
//! so a change in the seeded cloud or the fallback graph cannot silently make a benchmark
//! measure a different path than its name says.

#![deny(missing_docs)]

pub mod catalogue;
pub mod measure;
pub mod scenario;
pub mod serial;
pub mod suite;

pub use catalogue::Catalogue;
pub use scenario::{Case, Scenario, Walk};
pub use serial::SerialProvider;

/// The latency injected per provider call in the latency benches: a typical EC2 API round trip
/// from a laptop to a nearby region.
pub const LATENCY: std::time::Duration = std::time::Duration::from_millis(20);

/// Why a fixture could not be built or did not behave as its benchmark assumes.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A fixture template does not parse (a bug in this crate: fix the YAML it generates).
    #[error("bench template `{slug}` is invalid: {source}")]
    Template {
        /// The template's slug.
        slug: String,
        /// What the parser said.
        #[source]
        source: cws_template::TemplateError,
    },
    /// The simulated cloud refused a fixture image or call.
    #[error("LocalCloud refused the bench fixture: {0}")]
    Provider(#[from] cws_provider::ProviderError),
    /// A scenario resolved differently than its benchmark assumes; the numbers would measure
    /// the wrong path, so the run stops. Check recent changes to the seeded cloud, the
    /// fallback graph or the tiers.
    #[error("scenario `{case}` resolved unexpectedly: {why}")]
    Unexpected {
        /// The scenario.
        case: String,
        /// What differed.
        why: String,
    },
    /// The tokio runtime could not be started.
    #[error("cannot start a tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A current-thread tokio runtime with timers: one resolution's concurrency lives inside one
/// task, so one thread is all the latency benches need (and keeps their timing honest).
pub fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(BenchError::Runtime)
}
