//! Conveniences every provider gets for free, built from the capability traits' calls.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::{ProviderError, ProviderResult};
use crate::model::{Image, Instance, InstanceFilter};
use crate::traits::{ImageCatalog, Instances};

/// Conveniences over [`ImageCatalog`].
#[async_trait]
pub trait ImageCatalogExt: ImageCatalog {
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
}

impl<T: ImageCatalog + ?Sized> ImageCatalogExt for T {}

/// Conveniences over [`Instances`].
#[async_trait]
pub trait InstancesExt: Instances {
    /// The live (not terminated) instance with this `Name` in a region, if any.
    async fn instance_by_name(&self, region: &str, name: &str) -> ProviderResult<Option<Instance>> {
        let filter = InstanceFilter {
            tags: BTreeMap::from([("Name".to_string(), name.to_string())]),
            ..InstanceFilter::default()
        };
        let found = self.describe_instances(region, &filter).await?;
        Ok(found.into_iter().find(|i| i.state.is_live()))
    }

    /// An instance by id (`i-…`) or by live `Name`; [`ProviderError::NotFound`] when absent.
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

impl<T: Instances + ?Sized> InstancesExt for T {}
