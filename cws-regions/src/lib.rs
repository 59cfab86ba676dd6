//! The AWS region catalogue and the regional fallback graph used by cws.
//!
//! cws resolves a machine image per region. When the region a user launches
//! in has no suitable image, the resolver can copy one from a nearby region
//! instead of provisioning from scratch; this crate decides which regions
//! count as "nearby", in which order, and knows enough about every region
//! (name, continent, location, opt-in) to validate templates and explain
//! those choices.
//!
//! * [`all`], [`get`], [`lookup`], [`suggest`] — the compiled-in catalogue of
//!   AWS commercial regions, sorted by code, with "did you mean" suggestions
//!   for typos.
//! * [`FallbackGraph`] — ordered fallback regions per region: the published
//!   map, user overrides from YAML, or nearest regions by [`distance_km`].
//!   An override file is read only if it is a regular file of at most
//!   [`MAX_OVERRIDE_BYTES`] (1 MiB).
//!
//! ```
//! use cws_regions::FallbackGraph;
//!
//! let graph = FallbackGraph::published();
//! assert_eq!(
//!     graph.fallbacks("ap-south-1")?,
//!     ["ap-southeast-1", "ap-northeast-1", "us-east-1"]
//! );
//!
//! let custom = FallbackGraph::from_yaml_str(
//!     "fallbacks:\n  us-east-1: [us-west-2, us-east-2]\n",
//!     "regions.yaml",
//! )?;
//! assert_eq!(custom.walk("us-east-1", 3)?, ["us-west-2", "us-east-2", "us-west-1"]);
//! # Ok::<(), cws_regions::RegionError>(())
//! ```
#![deny(missing_docs)]

mod catalogue;
mod error;
mod graph;
mod overrides;

pub use catalogue::{Continent, Region, all, distance_km, get, lookup, suggest};
pub use error::RegionError;
pub use graph::{EdgeSource, FallbackEntry, FallbackGraph};

/// The file name cws looks for under `$CWS_HOME` when no `--regions-file` is
/// given (see [`FallbackGraph::load_optional`]).
pub const OVERRIDE_FILE_NAME: &str = "regions.yaml";

/// The largest override file [`FallbackGraph::load`] and
/// [`FallbackGraph::load_optional`] read: 1 MiB, far beyond a fallback list
/// for every region. A larger file, or a path that is not a regular file
/// (a directory, `/dev/zero`, a FIFO), is refused before it is read
/// ([`RegionError::Refused`]).
pub const MAX_OVERRIDE_BYTES: u64 = 1024 * 1024;

/// Runs the README's Rust examples as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
