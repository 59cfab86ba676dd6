//! # cws-provider
//!
//! The cloud provider surface of cws, and everything that works on any backend:
//!
//! - the capability traits [`ImageCatalog`] (what resolution tiers need), [`ImageAdmin`],
//!   [`Instances`], and [`CloudProvider`] over all three, with conveniences on
//!   [`ImageCatalogExt`] and [`InstancesExt`];
//! - the model the backends exchange ([`Image`], [`ImageQuery`], [`Instance`], ...) (times are [`chrono::DateTime<Utc>`](chrono::DateTime),
//!   parsed once at the backend boundary) and the one error type, [`ProviderError`];
//! - deterministic image selection ([`select_image`]) and the provenance [`tags`] cws writes;
//! - [`wrappers`] that add caching, call counting, latency and faults around any provider;
//! - the [`wait`] engine (poll with backoff, hand over to a backend's own waiter);
//! - with feature `testing`, the conformance suite every backend must pass ([`testing`]).
//!
//! Backends live in their own crates (`cws-localcloud`, `cws-aws`); this crate knows none.
//! Nothing here prints or words a message for a command line: errors carry data.

#![deny(missing_docs)]

pub mod disk_cache;
mod error;
mod ext;
pub mod intent;
mod model;
mod select;
pub mod tags;
#[cfg(feature = "testing")]
pub mod testing;
mod traits;
pub mod wait;
pub mod wrappers;

pub use error::{ProviderError, ProviderResult};
pub use ext::{ImageCatalogExt, InstancesExt};
pub use model::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, ImageState, Instance, InstanceFilter,
    InstanceState, LaunchPermission, MarketplaceProduct, MarketplaceQuery, ProviderInfo,
    RunInstanceRequest, Snapshot, WaitOutcome, check_image_name, ec2_time, wildcard_match,
};
pub use select::{select_best, select_image};
pub use traits::{CloudProvider, ImageAdmin, ImageCatalog, Instances};
