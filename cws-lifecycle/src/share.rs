//! Share and info.

use cws_cost::Money;
use cws_provider::{Image, ImageCatalogExt, LaunchPermission, ProviderError, Snapshot};
use cws_resolver::{Consent, ConsentRequest, ProviderLabel, ResolveEnv};
use futures::future::join_all;
use serde::Serialize;

use crate::*;

/// A snapshot cws was asked to change but could not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotFailure {
    /// The snapshot.
    pub snapshot_id: String,
    /// The provider error's kind ([`ProviderError::kind`]).
    pub kind: String,
    /// What went wrong.
    pub error: String,
}

/// What happened to an image's snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotAction {
    /// The image's snapshots.
    pub snapshot_ids: Vec<String>,
    /// The snapshots cws changed (permission granted or revoked, or deleted).
    pub changed: Vec<String>,
    /// The snapshots cws was asked to change but could not, with why.
    pub failed: Vec<SnapshotFailure>,
    /// Whether everything asked of the snapshots was done (nothing failed). Keeping the
    /// snapshots when deletion was not asked for counts as done.
    pub done: bool,
    /// What happened, in words.
    pub detail: String,
}

impl SnapshotAction {
    pub(crate) fn new(
        snapshot_ids: &[String],
        results: Vec<(String, Result<(), ProviderError>)>,
        detail: String,
    ) -> Self {
        let mut changed = Vec::new();
        let mut failed = Vec::new();
        for (snapshot_id, result) in results {
            match result {
                Ok(()) => changed.push(snapshot_id),
                Err(e) => failed.push(SnapshotFailure {
                    snapshot_id,
                    kind: e.kind().to_string(),
                    error: e.to_string(),
                }),
            }
        }
        SnapshotAction {
            snapshot_ids: snapshot_ids.to_vec(),
            done: failed.is_empty(),
            changed,
            failed,
            detail,
        }
    }
}

/// What `cws ami share` asks for.
#[derive(Debug, Clone)]
pub struct ShareRequest {
    /// The image.
    pub image_id: String,
    /// Its region.
    pub region: String,
    /// Who to grant (or revoke).
    pub permissions: Vec<LaunchPermission>,
    /// Revoke instead of grant.
    pub revoke: bool,
}

/// The result of `cws ami share`.
#[derive(Debug, Clone, Serialize)]
pub struct ShareReport {
    /// The provider used.
    pub provider: ProviderLabel,
    /// The image.
    pub ami_id: String,
    /// Its region.
    pub region: String,
    /// `granted` or `revoked`.
    pub action: String,
    /// The permissions changed.
    pub changed: Vec<LaunchPermission>,
    /// Who may launch it now (re-read after the change).
    pub launch_permissions: Vec<LaunchPermission>,
    /// Create-volume permission on the snapshots.
    pub snapshots: SnapshotAction,
}

impl ShareReport {
    /// Whether everything asked was done (launch permissions always are when a report is
    /// returned; snapshot permissions may have failed for some snapshots).
    pub fn complete(&self) -> bool {
        self.snapshots.done
    }
}

/// A launch permission in words, e.g. `account 123456789012` or `everyone (public)`.
pub fn describe_permission(p: &LaunchPermission) -> String {
    match p {
        LaunchPermission::Account(a) => format!("account {a}"),
        LaunchPermission::Organization(o) => format!("organization {o}"),
        LaunchPermission::Public => "everyone (public)".into(),
        other => format!("{other:?}"),
    }
}

pub(crate) fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The words for what `share` did to the snapshots.
pub(crate) fn share_snapshot_detail(
    image: &Image,
    perms: &[LaunchPermission],
    revoke: bool,
    action: &SnapshotAction,
) -> String {
    if image.snapshot_ids.is_empty() {
        return "the provider reports no snapshots for this image; nothing to share".into();
    }
    let who: Vec<String> = perms
        .iter()
        .filter(|p| !matches!(p, LaunchPermission::Organization(_)))
        .map(describe_permission)
        .collect();
    let mut parts = Vec::new();
    if !who.is_empty() && !action.changed.is_empty() {
        parts.push(format!(
            "create-volume permission {} {} on {}{}",
            if revoke { "revoked from" } else { "granted to" },
            who.join(", "),
            plural(action.changed.len(), "snapshot"),
            if revoke {
                ""
            } else {
                ", so they can copy the image and make volumes from it too"
            }
        ));
    }
    if !action.failed.is_empty() {
        parts.push(format!(
            "{} could not be changed ({}); run the same command again to retry (it is safe to \
             repeat)",
            plural(action.failed.len(), "snapshot"),
            action
                .failed
                .iter()
                .map(|f| format!("{}: {}", f.snapshot_id, f.error))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if perms
        .iter()
        .any(|p| matches!(p, LaunchPermission::Organization(_)))
    {
        parts.push(
            "EC2 cannot share snapshots with an organization, so its accounts can launch the \
             image but not copy it; share with those accounts by id if they need to"
                .into(),
        );
    }
    parts.join(". ")
}

/// `cws ami share`: grants (or with `revoke`, removes) launch permission on an image for
/// accounts, an organization or everyone, and the matching create-volume permission on the
/// image's snapshots (without which the others can launch the image but not copy it), then
/// reports who may launch it.
///
/// Launch permissions come first: a failure there is an error and nothing else is tried. A
/// snapshot that cannot be changed afterwards does not undo them; it is reported in
/// [`SnapshotAction::failed`] (the CLI exits 1), and running the same request again finishes
/// the job, since granting and revoking are idempotent. EC2 cannot share a snapshot with an
/// organization, so organizations get launch permission only (the report says so).
///
/// Granting widens access, so it is asked first ([`ConsentRequest::Share`]); a refusal changes
/// nothing and is [`LifecycleError::Declined`]. Revoking narrows access and is not asked.
pub async fn share(
    env: &ResolveEnv,
    req: &ShareRequest,
    consent: &dyn Consent,
) -> Result<ShareReport, LifecycleError> {
    if req.permissions.is_empty() {
        return Err(LifecycleError::Invalid(
            "say who to share with: account ids, an organization ARN or everyone (public)".into(),
        ));
    }
    for p in &req.permissions {
        p.check()?;
    }
    let provider = env.provider.as_ref();
    let image = provider
        .image(&req.region, &req.image_id)
        .await?
        .ok_or_else(|| ProviderError::NotFound {
            what: format!("image {}", req.image_id),
            region: req.region.clone(),
        })?;
    if !req.revoke {
        let snapshot_ids = if req
            .permissions
            .iter()
            .all(|p| matches!(p, LaunchPermission::Organization(_)))
        {
            Vec::new()
        } else {
            image.snapshot_ids.clone()
        };
        let asked = ConsentRequest::Share {
            image_id: Some(image.id.clone()),
            name: image.name.clone(),
            region: image.region.clone(),
            permissions: req.permissions.clone(),
            snapshot_ids,
        };
        if !consent.confirm(&asked) {
            return Err(LifecycleError::Declined(format!(
                "not shared: nothing changed on {} in {}",
                image.id, image.region
            )));
        }
    }
    let mut changed = Vec::new();
    for p in &req.permissions {
        provider
            .modify_launch_permission(&req.region, &image.id, p, !req.revoke)
            .await?;
        changed.push(p.clone());
    }
    let for_snapshots: Vec<&LaunchPermission> = req
        .permissions
        .iter()
        .filter(|p| !matches!(p, LaunchPermission::Organization(_)))
        .collect();
    let snapshot_results = if for_snapshots.is_empty() {
        Vec::new()
    } else {
        // Snapshots are independent: change them concurrently (one round trip per
        // permission each, instead of one per snapshot and permission in a row).
        join_all(image.snapshot_ids.iter().map(|snap| {
            let for_snapshots = &for_snapshots;
            async move {
                for p in for_snapshots {
                    if let Err(e) = provider
                        .modify_snapshot_permission(&req.region, snap, p, !req.revoke)
                        .await
                    {
                        return (snap.clone(), Err(e));
                    }
                }
                (snap.clone(), Ok(()))
            }
        }))
        .await
    };
    let mut snapshots = SnapshotAction::new(&image.snapshot_ids, snapshot_results, String::new());
    snapshots.detail = share_snapshot_detail(&image, &req.permissions, req.revoke, &snapshots);
    let launch_permissions = provider
        .describe_launch_permissions(&req.region, &image.id)
        .await?;
    Ok(ShareReport {
        provider: (&env.provider.info()).into(),
        ami_id: image.id.clone(),
        region: image.region.clone(),
        action: if req.revoke { "revoked" } else { "granted" }.into(),
        changed,
        launch_permissions,
        snapshots,
    })
}

/// The result of `cws ami info`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// The provider used.
    pub provider: ProviderLabel,
    /// The image, as the provider describes it.
    pub image: Image,
    /// Total snapshot size in GiB.
    pub size_gb: u32,
    /// The snapshots behind it.
    pub snapshots: Vec<Snapshot>,
    /// Who may launch it (`null` when the provider would not say, e.g. not the owner).
    pub shared_with: Option<Vec<LaunchPermission>>,
    /// Why `shared_with` is missing.
    pub shared_with_error: Option<String>,
    /// Monthly storage cost of its snapshots in its region.
    pub monthly_storage_cost: Money,
}

/// `cws ami info`: an image's details, its snapshots and who it is shared with.
pub async fn image_info(
    env: &ResolveEnv,
    region: &str,
    image_id: &str,
) -> Result<ImageInfo, LifecycleError> {
    let provider = env.provider.as_ref();
    let image = provider
        .image(region, image_id)
        .await?
        .ok_or_else(|| ProviderError::NotFound {
            what: format!("image {image_id}"),
            region: region.to_string(),
        })?;
    let snaps = async {
        if image.snapshot_ids.is_empty() {
            Ok(Vec::new())
        } else {
            provider
                .describe_snapshots(region, &image.snapshot_ids)
                .await
        }
    };
    let (snapshots, perms) = futures::join!(
        snaps,
        provider.describe_launch_permissions(region, image_id)
    );
    let snapshots = snapshots?;
    let size_gb = {
        let total: u32 = snapshots.iter().map(|s| s.size_gb).sum();
        if total > 0 {
            total
        } else {
            image.root_volume_gb.unwrap_or(8)
        }
    };
    let (shared_with, shared_with_error) = match perms {
        Ok(p) => (Some(p), None),
        Err(e @ ProviderError::PermissionDenied { .. }) => (None, Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    Ok(ImageInfo {
        provider: (&env.provider.info()).into(),
        monthly_storage_cost: env.prices.snapshot_gb_month(region) * i64::from(size_gb),
        image,
        size_gb,
        snapshots,
        shared_with,
        shared_with_error,
    })
}
