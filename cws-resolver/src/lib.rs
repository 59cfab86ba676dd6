//! # cws-resolver
//!
//! The Universal AMI System's decision engine: the five resolution [`tier`]s, the
//! [`Resolver`] that composes them per strategy, the typed [`ConsentRequest`]s asked before
//! anything spends money, and the services (launch, test across regions, list a template's
//! images) the CLI and the REST API share.
//!
//! A resolution answers: for this template in this region, which image launches fastest and
//! reliably, why, and what does it cost? Tiers probe read-only, over any
//! [`ImageCatalog`](cws_provider::ImageCatalog), concurrently; the highest-priority success
//! wins; side effects (copies, launches) happen only afterwards, and a cross-region copy only
//! with consent. Nothing here prints or words a prompt: reports and errors carry data.

#![deny(missing_docs)]

mod consent;
mod lookups;
mod report;
mod resolver;
pub mod service;
pub mod tier;
mod tier_id;

pub use consent::{AssumeNo, AssumeYes, Consent, ConsentRequest};
pub use report::{
    Attempt, CopyAlternative, CopyPlan, ListedSource, Method, Outcome, ProviderLabel, Resolution,
};
pub use resolver::{ResolveEnv, ResolveRequest, Resolver, UnknownTier};
pub use tier::{
    Candidate, KnownImage, OwnerPolicy, Probe, RefusedProvenance, ResolveContext, Tier,
};
pub use tier_id::{InvalidTierId, TierId};
