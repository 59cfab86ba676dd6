//! Deregister.

use std::collections::BTreeMap;
use std::time::Duration;

use cws_cost::Money;
use cws_provider::{CloudProvider, ImageCatalogExt, ProviderError};
use cws_resolver::{Consent, ConsentRequest, ProviderLabel, ResolveEnv};
use futures::future::join_all;
use serde::Serialize;

use crate::*;

/// What `cws ami deregister` asks for.
#[derive(Debug, Clone)]
pub struct DeregisterRequest {
    /// The image.
    pub image_id: String,
    /// Its region.
    pub region: String,
    /// Also delete its snapshots.
    pub delete_snapshots: bool,
}

/// The result of `cws ami deregister`.
#[derive(Debug, Clone, Serialize)]
pub struct DeregisterReport {
    /// The provider used.
    pub provider: ProviderLabel,
    /// The image.
    pub ami_id: String,
    /// Its region.
    pub region: String,
    /// Its name.
    pub name: String,
    /// What happened to its snapshots (deleted with `--delete-snapshots`, kept otherwise).
    pub snapshots: SnapshotAction,
    /// Monthly storage the snapshots left behind still cost (zero when all were deleted).
    pub snapshots_monthly_cost: Money,
    /// Whether a pending-images record of it was removed.
    pub pending_record_removed: bool,
}

impl DeregisterReport {
    /// Whether everything asked was done (the image is always deregistered when a report is
    /// returned; deleting its snapshots may have failed for some).
    pub fn complete(&self) -> bool {
        self.snapshots.done
    }
}

/// How often a snapshot deletion refused as "in use" right after deregistering its image is
/// tried again, and the first pause (doubling). EC2 is eventually consistent: for a moment
/// after `DeregisterImage` the snapshot can still count as used by the image.
const IN_USE_RETRIES: u32 = 3;
const IN_USE_FIRST_PAUSE: Duration = Duration::from_secs(1);

/// Deletes a snapshot whose image was just deregistered, riding out a briefly stale
/// "in use" answer.
pub(crate) async fn delete_released_snapshot(
    provider: &dyn CloudProvider,
    region: &str,
    snapshot_id: &str,
) -> Result<(), ProviderError> {
    let mut pause = IN_USE_FIRST_PAUSE;
    let mut retries = 0;
    loop {
        match provider.delete_snapshot(region, snapshot_id).await {
            Err(ProviderError::SnapshotInUse { .. }) if retries < IN_USE_RETRIES => {
                retries += 1;
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
}

/// `cws ami deregister`: asks, then deregisters an image the account owns, forgets any
/// pending record of it and, with `delete_snapshots`, deletes its snapshots (concurrently).
///
/// Without `delete_snapshots` the snapshots are kept, as EC2 does, and the report says what
/// they keep costing. A snapshot that cannot be deleted once the image is gone is reported in
/// [`SnapshotAction::failed`] (the CLI exits 1) rather than failing the whole command: the
/// image is deregistered either way.
pub async fn deregister(
    env: &ResolveEnv,
    req: &DeregisterRequest,
    consent: &dyn Consent,
    pending: Option<&PendingImages>,
) -> Result<DeregisterReport, LifecycleError> {
    let provider = env.provider.as_ref();
    let image = provider
        .image(&req.region, &req.image_id)
        .await?
        .ok_or_else(|| ProviderError::NotFound {
            what: format!("image {}", req.image_id),
            region: req.region.clone(),
        })?;
    if !consent.confirm(&ConsentRequest::Deregister {
        image: image.clone(),
        delete_snapshots: req.delete_snapshots,
    }) {
        return Err(LifecycleError::Declined(format!(
            "not deregistered: {} is unchanged",
            image.id
        )));
    }
    // Sizes first: once the snapshots are deleted there is nothing left to ask about. A
    // failure here only costs the cost estimate.
    let sizes: BTreeMap<String, u32> = if image.snapshot_ids.is_empty() {
        BTreeMap::new()
    } else {
        provider
            .describe_snapshots(&req.region, &image.snapshot_ids)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.id, s.size_gb))
            .collect()
    };
    provider.deregister_image(&req.region, &image.id).await?;
    let pending_record_removed = match pending {
        Some(p) => p.remove(&req.region, &image.id)?,
        None => false,
    };
    let results = if req.delete_snapshots {
        join_all(image.snapshot_ids.iter().map(|snap| async move {
            (
                snap.clone(),
                delete_released_snapshot(provider, &req.region, snap).await,
            )
        }))
        .await
    } else {
        Vec::new()
    };
    let snapshots = SnapshotAction::new(&image.snapshot_ids, results, String::new());
    let left: Vec<&String> = image
        .snapshot_ids
        .iter()
        .filter(|s| !snapshots.changed.contains(s))
        .collect();
    let left_gb: u32 = if left.len() == image.snapshot_ids.len() {
        // All of them: sized as `image_size_gb` does, falling back to the root volume when
        // the provider does not report snapshot sizes.
        let total: u32 = sizes.values().sum();
        if total > 0 {
            total
        } else {
            image.root_volume_gb.unwrap_or(8)
        }
    } else {
        left.iter()
            .map(|s| sizes.get(*s).copied().unwrap_or(0))
            .sum()
    };
    let snapshots_monthly_cost = if left.is_empty() {
        Money::ZERO
    } else {
        env.prices.snapshot_gb_month(&req.region) * i64::from(left_gb)
    };
    let detail = if image.snapshot_ids.is_empty() {
        "the provider reports no snapshots for this image".to_string()
    } else if !req.delete_snapshots {
        format!(
            "kept, as EC2 does ({snapshots_monthly_cost}/month); deleting them with the image \
             stops that"
        )
    } else if snapshots.failed.is_empty() {
        format!("deleted {}", plural(snapshots.changed.len(), "snapshot"))
    } else {
        format!(
            "deleted {}; {} could not be deleted and still cost {snapshots_monthly_cost}/month \
             ({})",
            plural(snapshots.changed.len(), "snapshot"),
            plural(snapshots.failed.len(), "snapshot"),
            snapshots
                .failed
                .iter()
                .map(|f| format!("{}: {}", f.snapshot_id, f.error))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    Ok(DeregisterReport {
        provider: (&env.provider.info()).into(),
        ami_id: image.id.clone(),
        region: req.region.clone(),
        name: image.name.clone(),
        snapshots: SnapshotAction {
            detail,
            ..snapshots
        },
        snapshots_monthly_cost,
        pending_record_removed,
    })
}
