//! # cws-resolver
//!
//! The Universal AMI System's engine: the [`CloudProvider`] trait every backend implements,
//! the embedded simulated backend ([`local::LocalCloud`]), wrappers that add caching, call
//! counting, latency and faults around any provider, the five resolution [`tier`]s, the
//! [`Resolver`] that composes them per strategy, and the services (launch, test, list) the CLI
//! and REST API call.
//!
//! A resolution answers: for this template in this region, which image launches fastest and
//! reliably, why, and what does it cost? Tiers probe read-only and concurrently; the
//! highest-priority success wins; side effects (copies, launches) happen only afterwards, and a
//! cross-region copy only with consent.

#![deny(missing_docs)]

#[cfg(feature = "aws")]
pub mod aws;
pub mod error;
pub mod lifecycle;
pub mod local;
pub mod model;
pub mod provider;
pub mod resolver;
pub mod service;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tier;
pub mod wrappers;

pub use error::{ProviderError, ProviderResult};
pub use model::*;
pub use provider::{CloudProvider, CloudProviderExt};
pub use resolver::{
    Attempt, CopyPlan, Method, Outcome, Resolution, ResolveEnv, ResolveRequest, Resolver,
};
pub use tier::{Candidate, Probe, ResolveContext, Tier};
