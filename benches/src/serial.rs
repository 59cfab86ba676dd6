//! [`SerialProvider`]: one provider call in flight at a time.
//!
//! [`Resolver::sequential`](cws_resolver::Resolver::sequential) walks the tiers one after
//! another, but a tier may still fan out inside itself (the cross-region tier asks every
//! fallback region at once). A tool that walks images the naive way makes one API call, waits
//! for the answer, then makes the next. This wrapper models that: it holds a lock for the whole
//! of every call, so with injected latency `L` a walk that makes `n` calls costs `n × L`.
//! The benchmarks report it beside the sequential tier walk so both baselines are visible.
//!
//! It forwards every [`CloudProvider`] method explicitly (the trait has no defaults), so a
//! method added to the trait must be added here too; the compiler says so.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cws_provider::*;
use cws_provider::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, Instance, InstanceFilter,
    LaunchPermission, MarketplaceProduct, MarketplaceQuery, ProviderInfo, RunInstanceRequest,
    Snapshot,
};
use tokio::sync::Mutex;

/// Serialises every call to the wrapped provider (a fair, FIFO async lock around each call).
#[derive(Debug)]
pub struct SerialProvider<P> {
    inner: P,
    gate: Mutex<()>,
}

impl<P: CloudProvider> SerialProvider<P> {
    /// Wraps `inner` so that its calls never overlap.
    pub fn new(inner: P) -> Self {
        SerialProvider {
            inner,
            gate: Mutex::new(()),
        }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

/// Forwards one call while holding the gate.
macro_rules! serial {
    ($self:ident, $call:expr) => {{
        let _one_at_a_time = $self.gate.lock().await;
        $call.await
    }};
}

#[async_trait]
impl<P: CloudProvider> ImageCatalog for SerialProvider<P> {
    fn info(&self) -> ProviderInfo {
        self.inner.info()
    }
    fn answers_in_memory(&self) -> bool {
        self.inner.answers_in_memory()
    }
    async fn describe_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Image>> {
        serial!(self, self.inner.describe_images_by_id(region, ids))
    }
    async fn describe_images(
        &self,
        region: &str,
        query: &ImageQuery,
    ) -> ProviderResult<Vec<Image>> {
        serial!(self, self.inner.describe_images(region, query))
    }
    async fn describe_snapshots(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Snapshot>> {
        serial!(self, self.inner.describe_snapshots(region, ids))
    }
    async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
        serial!(self, self.inner.describe_regions())
    }
    async fn find_marketplace_products(
        &self,
        query: &MarketplaceQuery,
    ) -> ProviderResult<Vec<MarketplaceProduct>> {
        serial!(self, self.inner.find_marketplace_products(query))
    }
}

#[async_trait]
impl<P: CloudProvider> ImageAdmin for SerialProvider<P> {
    async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image> {
        serial!(self, self.inner.copy_image(request))
    }
    async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image> {
        serial!(self, self.inner.create_image(request))
    }
    async fn create_tags(
        &self,
        region: &str,
        resource_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        serial!(self, self.inner.create_tags(region, resource_id, tags))
    }
    async fn modify_launch_permission(
        &self,
        region: &str,
        image_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        serial!(
            self,
            self.inner
                .modify_launch_permission(region, image_id, permission, add)
        )
    }
    async fn describe_launch_permissions(
        &self,
        region: &str,
        image_id: &str,
    ) -> ProviderResult<Vec<LaunchPermission>> {
        serial!(
            self,
            self.inner.describe_launch_permissions(region, image_id)
        )
    }
    async fn modify_snapshot_permission(
        &self,
        region: &str,
        snapshot_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        serial!(
            self,
            self.inner
                .modify_snapshot_permission(region, snapshot_id, permission, add)
        )
    }
    async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()> {
        serial!(self, self.inner.deregister_image(region, image_id))
    }
    async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()> {
        serial!(self, self.inner.delete_snapshot(region, snapshot_id))
    }
}

#[async_trait]
impl<P: CloudProvider> Instances for SerialProvider<P> {
    async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance> {
        serial!(self, self.inner.run_instance(request))
    }
    async fn describe_instances(
        &self,
        region: &str,
        filter: &InstanceFilter,
    ) -> ProviderResult<Vec<Instance>> {
        serial!(self, self.inner.describe_instances(region, filter))
    }
    async fn stop_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        serial!(self, self.inner.stop_instance(region, instance_id))
    }
    async fn console_output(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Option<String>> {
        serial!(self, self.inner.console_output(region, instance_id))
    }
    async fn terminate_instance(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Instance> {
        serial!(self, self.inner.terminate_instance(region, instance_id))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cws_localcloud::LocalCloud;
    use cws_provider::wrappers::LatencyProvider;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrent_calls_take_turns() {
        let latency = Duration::from_millis(100);
        let p = SerialProvider::new(LatencyProvider::new(LocalCloud::empty(), latency));
        let start = tokio::time::Instant::now();
        let (a, b, c) = tokio::join!(
            p.describe_regions(),
            p.describe_regions(),
            p.describe_regions()
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert_eq!(
            start.elapsed(),
            latency * 3,
            "three calls, one after another"
        );
        assert_eq!(p.info(), p.inner().info());
    }
}
