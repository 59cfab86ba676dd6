//! Status.

use cws_provider::{ImageCatalogExt, ImageState};
use cws_resolver::{ProviderLabel, ResolveEnv};
use futures::future::join_all;
use serde::Serialize;
use std::path::PathBuf;

use crate::*;

/// One recorded image with its state now.
#[derive(Debug, Clone, Serialize)]
pub struct PendingStatus {
    /// The record.
    #[serde(flatten)]
    pub record: PendingImage,
    /// The image's state now (`null` when it no longer exists).
    pub state: Option<ImageState>,
    /// Why the state could not be read.
    pub error: Option<String>,
    /// What to do about it, in words.
    pub next: String,
}

/// The result of `cws ami status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The provider used.
    pub provider: ProviderLabel,
    /// The record file.
    pub file: PathBuf,
    /// The images in flight when their command stopped waiting.
    pub images: Vec<PendingStatus>,
}

/// `cws ami status`: every recorded image, re-described (concurrently), with the command
/// that finishes the job or cleans it up.
pub async fn pending_status(
    env: &ResolveEnv,
    pending: &PendingImages,
) -> Result<StatusReport, LifecycleError> {
    let records = pending.list()?;
    let provider = env.provider.as_ref();
    let images = join_all(records.into_iter().map(|record| async move {
        let (state, error) = match provider.image(&record.region, &record.image_id).await {
            Ok(img) => (img.map(|i| i.state), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let next = match (state, &error) {
            (_, Some(_)) => "could not read the image; try again".to_string(),
            (None, None) => format!(
                "the image no longer exists; `{}` starts over if you still want it",
                record.finish
            ),
            (Some(ImageState::Pending), _) => format!(
                "still being made; `{}` waits for it and finishes the rest",
                record.finish
            ),
            (Some(ImageState::Available), _) => format!(
                "available; `{}` finishes whatever else the command had to do",
                record.finish
            ),
            (Some(_), _) => format!("failed; clean it up with `{}`", record.cleanup),
        };
        PendingStatus {
            record,
            state,
            error,
            next,
        }
    }))
    .await;
    Ok(StatusReport {
        provider: (&env.provider.info()).into(),
        file: pending.path().to_path_buf(),
        images,
    })
}
