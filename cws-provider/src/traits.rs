//! The provider surface, split by capability: only what a backend must do.
//!
//! Shaped after `object_store::ObjectStore`: each trait holds the required operations, each a
//! single backend round trip; conveniences built from them live on extension traits
//! ([`ImageCatalogExt`](crate::ImageCatalogExt), [`InstancesExt`](crate::InstancesExt)) that
//! every provider gets for free. `Arc<T>`, `Box<T>` and `&T` forward every trait, provided
//! methods included, so wrappers and trait objects compose.
//!
//! - [`ImageCatalog`]: reads about images — all a resolution tier needs. A read-only
//!   catalogue (an institution's list, a test double) implements this one trait.
//! - [`ImageAdmin`]: changes images — copy, create, tag, share, deregister, snapshots.
//! - [`Instances`]: runs and manages instances.
//! - [`CloudProvider`]: all three; implemented automatically for anything that has them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cws_template::Architecture;

use crate::error::{ProviderError, ProviderResult};
use crate::model::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, Instance, InstanceFilter,
    LaunchPermission, MarketplaceProduct, MarketplaceQuery, ProviderInfo, RunInstanceRequest,
    Snapshot, WaitOutcome,
};

/// Reads about images: what the resolution tiers need, and nothing that changes anything.
///
/// Every method is one logical round trip to the backend (pagination aside), so wrappers can
/// count, cache, delay or fail them uniformly.
#[async_trait]
pub trait ImageCatalog: Send + Sync + std::fmt::Debug {
    /// Who this backend is; every cws output names it (and says when it is simulated).
    fn info(&self) -> ProviderInfo;

    /// Images by id in one region. Ids that do not exist are simply absent from the result
    /// (deprecated images are returned: a pinned id is still found).
    async fn describe_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Image>>;

    /// Images matching a query in one region. `query.owners` must not be empty.
    async fn describe_images(&self, region: &str, query: &ImageQuery)
    -> ProviderResult<Vec<Image>>;

    /// The image the resolver would pick among `describe_images(region, query)`, and whether
    /// it is deprecated at `now`: the order of [`select_image`](crate::select_image)
    /// (available, non-deprecated first, the earliest of `preferred` architectures, newest,
    /// then name and id). `None` when nothing qualifies.
    ///
    /// Provided: the default makes the one [`describe_images`](Self::describe_images) call and
    /// selects. A backend holding its images in memory may override it to pick in place
    /// instead of copying every match out (LocalCloud does). An override must return what the
    /// default would (the conformance suite in `testing` checks it). Wrappers forward it and
    /// count, delay, fail or cache it as the `DescribeImages` call it is.
    async fn describe_best_image(
        &self,
        region: &str,
        query: &ImageQuery,
        preferred: &[Architecture],
        now: DateTime<Utc>,
    ) -> ProviderResult<Option<(Image, bool)>> {
        let images = self.describe_images(region, query).await?;
        Ok(crate::select::select_image(&images, preferred, now).map(|(i, d)| (i.clone(), d)))
    }

    /// Snapshots by id in one region.
    async fn describe_snapshots(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Snapshot>>;

    /// The regions enabled for this account.
    async fn describe_regions(&self) -> ProviderResult<Vec<String>>;

    /// Finds Marketplace products matching a query (catalogue lookup, not images).
    async fn find_marketplace_products(
        &self,
        query: &MarketplaceQuery,
    ) -> ProviderResult<Vec<MarketplaceProduct>>;

    /// The account id this backend acts as (what `self` means in owner filters), or `None`
    /// when it cannot be known (the credentials may not ask, say).
    ///
    /// No search needs it (owner filters take `self`), so callers ask for it only where they
    /// show it or compare owners, beside their searches rather than before them, and a backend
    /// looks it up when first asked, not when it is built. Provided: `None`.
    async fn account_id(&self) -> ProviderResult<Option<String>> {
        Ok(None)
    }

    /// Whether this backend answers without waiting (in memory) rather than over a network.
    /// The resolver batches and merges the questions of a network backend (each call is a
    /// round trip and counts against a rate limit); an in-memory backend is asked directly,
    /// one tier at a time in priority order, so the first answer decides before the next
    /// tier asks anything, and a narrow search is answered from its index rather than merged
    /// into a broad one. Only the number of calls depends on it, never an answer. Provided:
    /// false.
    fn answers_in_memory(&self) -> bool {
        false
    }
}

/// Changes images: copy, create, tag, share, deregister, and their snapshots.
#[async_trait]
pub trait ImageAdmin: Send + Sync + std::fmt::Debug {
    /// Copies an image into `request.target_region`; returns the new image (often `pending`).
    async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image>;

    /// Creates an image from an instance; returns the new image (often `pending`).
    async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image>;

    /// Adds tags on a resource (image, instance, snapshot). Used to tag copies with
    /// provenance, because `CopyImage` does not carry tags on every backend.
    async fn create_tags(
        &self,
        region: &str,
        resource_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProviderResult<()>;

    /// Grants (`add = true`) or revokes launch permission on an image.
    async fn modify_launch_permission(
        &self,
        region: &str,
        image_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()>;

    /// Lists who may launch an image.
    async fn describe_launch_permissions(
        &self,
        region: &str,
        image_id: &str,
    ) -> ProviderResult<Vec<LaunchPermission>>;

    /// Grants or revokes create-volume permission on a snapshot (EC2 ModifySnapshotAttribute).
    ///
    /// Sharing an image's launch permission is not enough for another account to copy it or
    /// make volumes from it: that needs this permission on the image's snapshots too. Only
    /// [`LaunchPermission::Account`] and [`LaunchPermission::Public`] (group `all`) apply; EC2
    /// cannot share a snapshot with an organization, so
    /// [`LaunchPermission::Organization`] is [`ProviderError::InvalidInput`]. Only the
    /// snapshot's owner may change it.
    async fn modify_snapshot_permission(
        &self,
        region: &str,
        snapshot_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()>;

    /// Deregisters an image.
    async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()>;

    /// Deletes a snapshot; Conflict while an image still uses it (EC2 InvalidSnapshot.InUse).
    ///
    /// Deregistering an image keeps its snapshots (and their storage cost), as EC2 does;
    /// deleting them is this separate, explicit step. Only the snapshot's owner may delete it.
    async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()>;

    /// Waits with the backend's own waiter until an image is available, for at most
    /// `max_wait` (EC2: the SDK's `ImageAvailable` waiter, which also stops at once when the
    /// image fails).
    ///
    /// Provided: the default answers [`ProviderError::Unsupported`], and the wait engine
    /// ([`wait::image_available`](crate::wait::image_available)) then polls with
    /// [`ImageCatalog::describe_images_by_id`] instead. The engine calls this only once the
    /// new image is visible and pending, so a waiter need not ride out an id that is not
    /// visible yet.
    async fn wait_image_available(
        &self,
        region: &str,
        image_id: &str,
        max_wait: Duration,
    ) -> ProviderResult<WaitOutcome<Image>> {
        let _ = (region, image_id, max_wait);
        Err(no_native_waiter("an image waiter"))
    }
}

/// Runs and manages instances.
#[async_trait]
pub trait Instances: Send + Sync + std::fmt::Debug {
    /// Launches one instance.
    async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance>;

    /// Lists instances in a region.
    async fn describe_instances(
        &self,
        region: &str,
        filter: &InstanceFilter,
    ) -> ProviderResult<Vec<Instance>>;

    /// Stops an instance; returns its new state.
    async fn stop_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance>;

    /// Terminates an instance; returns its new state.
    async fn terminate_instance(&self, region: &str, instance_id: &str)
    -> ProviderResult<Instance>;

    /// Starts a stopped instance; returns its new state (`pending` or `running`). Starting a
    /// running instance changes nothing; a terminated one cannot be started
    /// ([`ProviderError::InvalidInput`]). Provided: a backend that cannot start instances
    /// answers [`ProviderError::Unsupported`].
    async fn start_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        let _ = (region, instance_id);
        Err(ProviderError::Unsupported {
            provider: "this provider".into(),
            operation: "starting an instance".into(),
            reason: "it implements no start_instance; launch a new instance instead".into(),
        })
    }

    /// The instance's console output so far (EC2: `GetConsoleOutput`, decoded), or `None`
    /// while it has none yet. Provided: a backend without consoles answers
    /// [`ProviderError::Unsupported`].
    async fn console_output(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Option<String>> {
        let _ = (region, instance_id);
        Err(ProviderError::Unsupported {
            provider: "this provider".into(),
            operation: "reading an instance's console".into(),
            reason: "it implements no console_output".into(),
        })
    }

    /// Waits with the backend's own waiter until an instance is running, for at most
    /// `max_wait` (EC2: the SDK's `InstanceRunning` waiter). Provided like
    /// [`ImageAdmin::wait_image_available`]: the default is [`ProviderError::Unsupported`]
    /// and the wait engine polls.
    async fn wait_instance_running(
        &self,
        region: &str,
        instance_id: &str,
        max_wait: Duration,
    ) -> ProviderResult<WaitOutcome<Instance>> {
        let _ = (region, instance_id, max_wait);
        Err(no_native_waiter("an instance waiter"))
    }
}

/// A whole cloud backend: [`ImageCatalog`] + [`ImageAdmin`] + [`Instances`].
///
/// Implemented automatically for every type that implements the three, so a backend never
/// implements it by hand. A `&dyn CloudProvider` coerces to `&dyn ImageCatalog` (and the
/// others) where a narrower capability is asked for.
pub trait CloudProvider: ImageCatalog + ImageAdmin + Instances {}

impl<T: ImageCatalog + ImageAdmin + Instances + ?Sized> CloudProvider for T {}

// The traits are used as trait objects: keep them object-safe (checked at compile time).
const _: Option<&dyn CloudProvider> = None;

/// What a provider without a waiter of its own answers: the caller polls instead.
fn no_native_waiter(what: &str) -> ProviderError {
    ProviderError::Unsupported {
        provider: "this provider".to_string(),
        operation: what.to_string(),
        reason: "the caller polls with describe calls instead".to_string(),
    }
}

macro_rules! forward_smart_pointers {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: ImageCatalog + ?Sized> ImageCatalog for $ty {
            fn info(&self) -> ProviderInfo { (**self).info() }
            async fn describe_images_by_id(&self, region: &str, ids: &[String]) -> ProviderResult<Vec<Image>> {
                (**self).describe_images_by_id(region, ids).await
            }
            async fn describe_images(&self, region: &str, query: &ImageQuery) -> ProviderResult<Vec<Image>> {
                (**self).describe_images(region, query).await
            }
            async fn describe_best_image(&self, region: &str, query: &ImageQuery, preferred: &[Architecture], now: DateTime<Utc>) -> ProviderResult<Option<(Image, bool)>> {
                (**self).describe_best_image(region, query, preferred, now).await
            }
            async fn describe_snapshots(&self, region: &str, ids: &[String]) -> ProviderResult<Vec<Snapshot>> {
                (**self).describe_snapshots(region, ids).await
            }
            async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
                (**self).describe_regions().await
            }
            async fn find_marketplace_products(&self, query: &MarketplaceQuery) -> ProviderResult<Vec<MarketplaceProduct>> {
                (**self).find_marketplace_products(query).await
            }
            async fn account_id(&self) -> ProviderResult<Option<String>> {
                (**self).account_id().await
            }
            fn answers_in_memory(&self) -> bool { (**self).answers_in_memory() }
        }

        #[async_trait]
        impl<T: ImageAdmin + ?Sized> ImageAdmin for $ty {
            async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image> {
                (**self).copy_image(request).await
            }
            async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image> {
                (**self).create_image(request).await
            }
            async fn create_tags(&self, region: &str, resource_id: &str, tags: &BTreeMap<String, String>) -> ProviderResult<()> {
                (**self).create_tags(region, resource_id, tags).await
            }
            async fn modify_launch_permission(&self, region: &str, image_id: &str, permission: &LaunchPermission, add: bool) -> ProviderResult<()> {
                (**self).modify_launch_permission(region, image_id, permission, add).await
            }
            async fn describe_launch_permissions(&self, region: &str, image_id: &str) -> ProviderResult<Vec<LaunchPermission>> {
                (**self).describe_launch_permissions(region, image_id).await
            }
            async fn modify_snapshot_permission(&self, region: &str, snapshot_id: &str, permission: &LaunchPermission, add: bool) -> ProviderResult<()> {
                (**self).modify_snapshot_permission(region, snapshot_id, permission, add).await
            }
            async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()> {
                (**self).deregister_image(region, image_id).await
            }
            async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()> {
                (**self).delete_snapshot(region, snapshot_id).await
            }
            async fn wait_image_available(&self, region: &str, image_id: &str, max_wait: Duration) -> ProviderResult<WaitOutcome<Image>> {
                (**self).wait_image_available(region, image_id, max_wait).await
            }
        }

        #[async_trait]
        impl<T: Instances + ?Sized> Instances for $ty {
            async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance> {
                (**self).run_instance(request).await
            }
            async fn describe_instances(&self, region: &str, filter: &InstanceFilter) -> ProviderResult<Vec<Instance>> {
                (**self).describe_instances(region, filter).await
            }
            async fn stop_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
                (**self).stop_instance(region, instance_id).await
            }
            async fn terminate_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
                (**self).terminate_instance(region, instance_id).await
            }
            async fn start_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
                (**self).start_instance(region, instance_id).await
            }
            async fn console_output(&self, region: &str, instance_id: &str) -> ProviderResult<Option<String>> {
                (**self).console_output(region, instance_id).await
            }
            async fn wait_instance_running(&self, region: &str, instance_id: &str, max_wait: Duration) -> ProviderResult<WaitOutcome<Instance>> {
                (**self).wait_instance_running(region, instance_id, max_wait).await
            }
        }
    )*};
}

forward_smart_pointers!(Arc<T>, Box<T>, &T);
