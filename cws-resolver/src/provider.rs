//! The [`CloudProvider`] trait: only what a backend must do.
//!
//! Shaped after `object_store::ObjectStore`: the trait holds the required operations, each a
//! single backend round trip; conveniences built from them live on [`CloudProviderExt`], which
//! every provider gets for free. `Arc<T>`, `Box<T>` and `&T` forward the trait so wrappers and
//! trait objects compose.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cws_template::Architecture;

use crate::error::{ProviderError, ProviderResult};
use crate::model::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, Instance, InstanceFilter,
    LaunchPermission, MarketplaceProduct, MarketplaceQuery, ProviderInfo, RunInstanceRequest,
    Snapshot, WaitOutcome,
};

/// A cloud backend: EC2 or something that behaves like it.
///
/// Every method is one logical round trip to the backend (pagination aside), so wrappers can
/// count, cache, delay or fail them uniformly.
#[async_trait]
pub trait CloudProvider: Send + Sync + std::fmt::Debug {
    /// Who this provider is; every cws output names it.
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
    /// it is deprecated at `now`: the order of [`select_image`](crate::tier::select_image)
    /// (available, non-deprecated first, the earliest of `preferred` architectures, newest,
    /// then name and id). `None` when nothing qualifies.
    ///
    /// Provided: the default makes the one [`describe_images`](Self::describe_images) call and
    /// selects, so wrappers that count, cache, delay or fail `describe_images` see exactly that
    /// call. A provider holding its images in memory may override it to pick in place instead
    /// of copying every match out; [`LocalCloud`](crate::local::LocalCloud) does, so a search
    /// that matches a whole region clones one image rather than thousands. An override must
    /// return what the default would (the conformance suite in `testing` checks it).
    async fn describe_best_image(
        &self,
        region: &str,
        query: &ImageQuery,
        preferred: &[Architecture],
        now: &str,
    ) -> ProviderResult<Option<(Image, bool)>> {
        let images = self.describe_images(region, query).await?;
        Ok(crate::tier::select_image(&images, preferred, now).map(|(i, d)| (i.clone(), d)))
    }

    /// Waits with the backend's own waiter until an image is available, for at most
    /// `max_wait` (EC2: the SDK's `ImageAvailable` waiter, which also stops at once when the
    /// image fails).
    ///
    /// Provided: the default answers [`ProviderError::Unsupported`], and
    /// [`lifecycle::wait_until_available`](crate::lifecycle::wait_until_available) then polls
    /// with [`describe_images_by_id`](Self::describe_images_by_id) instead (LocalCloud and the
    /// wrappers). Lifecycle calls this only once the new image is visible and pending, so a
    /// waiter need not ride out an id that is not visible yet.
    async fn wait_image_available(
        &self,
        region: &str,
        image_id: &str,
        max_wait: Duration,
    ) -> ProviderResult<WaitOutcome<Image>> {
        let _ = (region, image_id, max_wait);
        Err(no_native_waiter(self.info().name, "an image waiter"))
    }

    /// Waits with the backend's own waiter until an instance is running, for at most
    /// `max_wait` (EC2: the SDK's `InstanceRunning` waiter). Provided like
    /// [`wait_image_available`](Self::wait_image_available): the default is
    /// [`ProviderError::Unsupported`] and the caller polls.
    async fn wait_instance_running(
        &self,
        region: &str,
        instance_id: &str,
        max_wait: Duration,
    ) -> ProviderResult<WaitOutcome<Instance>> {
        let _ = (region, instance_id, max_wait);
        Err(no_native_waiter(self.info().name, "an instance waiter"))
    }

    /// Snapshots by id in one region.
    async fn describe_snapshots(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Snapshot>>;

    /// The regions enabled for this account.
    async fn describe_regions(&self) -> ProviderResult<Vec<String>>;

    /// Copies an image into `request.target_region`; returns the new image (often `pending`).
    async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image>;

    /// Creates an image from an instance; returns the new image (often `pending`).
    async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image>;

    /// Adds or removes tags on a resource (image, instance, snapshot). Used to tag copies with
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

    /// Finds Marketplace products matching a query (catalogue lookup, not images).
    async fn find_marketplace_products(
        &self,
        query: &MarketplaceQuery,
    ) -> ProviderResult<Vec<MarketplaceProduct>>;
}

macro_rules! forward_provider {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: CloudProvider + ?Sized> CloudProvider for $ty {
            fn info(&self) -> ProviderInfo { (**self).info() }
            async fn describe_images_by_id(&self, region: &str, ids: &[String]) -> ProviderResult<Vec<Image>> {
                (**self).describe_images_by_id(region, ids).await
            }
            async fn describe_images(&self, region: &str, query: &ImageQuery) -> ProviderResult<Vec<Image>> {
                (**self).describe_images(region, query).await
            }
            async fn describe_best_image(&self, region: &str, query: &ImageQuery, preferred: &[Architecture], now: &str) -> ProviderResult<Option<(Image, bool)>> {
                (**self).describe_best_image(region, query, preferred, now).await
            }
            async fn wait_image_available(&self, region: &str, image_id: &str, max_wait: Duration) -> ProviderResult<WaitOutcome<Image>> {
                (**self).wait_image_available(region, image_id, max_wait).await
            }
            async fn wait_instance_running(&self, region: &str, instance_id: &str, max_wait: Duration) -> ProviderResult<WaitOutcome<Instance>> {
                (**self).wait_instance_running(region, instance_id, max_wait).await
            }
            async fn describe_snapshots(&self, region: &str, ids: &[String]) -> ProviderResult<Vec<Snapshot>> {
                (**self).describe_snapshots(region, ids).await
            }
            async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
                (**self).describe_regions().await
            }
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
            async fn find_marketplace_products(&self, query: &MarketplaceQuery) -> ProviderResult<Vec<MarketplaceProduct>> {
                (**self).find_marketplace_products(query).await
            }
        }
    )*};
}

forward_provider!(Arc<T>, Box<T>, &T);

/// What a provider without a waiter of its own answers: the caller polls instead.
fn no_native_waiter(provider: String, what: &str) -> ProviderError {
    ProviderError::Unsupported {
        provider,
        operation: what.to_string(),
        reason: "the caller polls with describe calls instead".to_string(),
    }
}

/// Conveniences every provider gets for free, built from [`CloudProvider`] calls.
#[async_trait]
pub trait CloudProviderExt: CloudProvider {
    /// One image by id, or `None` when it does not exist.
    async fn image(&self, region: &str, id: &str) -> ProviderResult<Option<Image>> {
        let found = self
            .describe_images_by_id(region, &[id.to_string()])
            .await?;
        Ok(found.into_iter().find(|i| i.id == id))
    }

    /// The size in GiB of an image's snapshots (its root volume size when snapshots are not
    /// visible). This is what copy time and cost are computed from.
    async fn image_size_gb(&self, image: &Image) -> ProviderResult<u32> {
        if !image.snapshot_ids.is_empty() {
            let snaps = self
                .describe_snapshots(&image.region, &image.snapshot_ids)
                .await?;
            let total: u32 = snaps.iter().map(|s| s.size_gb).sum();
            if total > 0 {
                return Ok(total);
            }
        }
        Ok(image.root_volume_gb.unwrap_or(8))
    }

    /// The live (not terminated) instance with this `Name` in a region, if any.
    async fn instance_by_name(&self, region: &str, name: &str) -> ProviderResult<Option<Instance>> {
        let filter = InstanceFilter {
            tags: BTreeMap::from([("Name".to_string(), name.to_string())]),
            ..InstanceFilter::default()
        };
        let found = self.describe_instances(region, &filter).await?;
        Ok(found.into_iter().find(|i| i.state.is_live()))
    }

    /// Like [`instance_by_name`](Self::instance_by_name) but an error when absent.
    async fn require_instance(&self, region: &str, name_or_id: &str) -> ProviderResult<Instance> {
        if name_or_id.starts_with("i-") {
            let filter = InstanceFilter {
                ids: vec![name_or_id.to_string()],
                ..InstanceFilter::default()
            };
            if let Some(i) = self
                .describe_instances(region, &filter)
                .await?
                .into_iter()
                .next()
            {
                return Ok(i);
            }
        }
        self.instance_by_name(region, name_or_id)
            .await?
            .ok_or_else(|| ProviderError::NotFound {
                what: format!("instance `{name_or_id}`"),
                region: region.to_string(),
            })
    }
}

impl<T: CloudProvider + ?Sized> CloudProviderExt for T {}
