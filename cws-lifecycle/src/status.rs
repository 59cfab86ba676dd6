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
    /// What to do about it.
    pub next: NextStep,
}

/// What to do about an image in flight.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Its state could not be read: ask again.
    Retry,
    /// The image no longer exists: running the job again starts over.
    StartOver,
    /// Still being made: running the job again waits for it and does the rest.
    WaitAndFinish,
    /// Available: running the job again finishes whatever else it had to do.
    Finish,
    /// It failed: deregister it.
    CleanUp,
    /// The creating call never answered and the cloud does not list an image for it: the
    /// request may not have arrived. Running the job again reuses its intent, so it never
    /// makes a second image.
    Unconfirmed,
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

/// `cws ami status`: every recorded image, re-described (concurrently), with what to do
/// next: finish its job or clean it up.
pub async fn pending_status(
    env: &ResolveEnv,
    pending: &PendingImages,
) -> Result<StatusReport, LifecycleError> {
    let records = pending.list()?;
    let provider = env.provider.as_ref();
    let images = join_all(records.into_iter().map(|mut record| async move {
        // An unanswered request is looked for by its intent; what it made gets its id here.
        let unanswered = record.image_id.is_none();
        let found = match (&record.image_id, &record.intent) {
            (Some(id), _) => provider.image(&record.region, id).await,
            (None, Some(token)) => {
                cws_provider::intent::find_image(provider, &record.region, &record.name, token)
                    .await
            }
            (None, None) => Ok(None),
        };
        let (state, error) = match found {
            Ok(img) => {
                if let Some(i) = &img {
                    record.image_id = Some(i.id.clone());
                }
                (img.map(|i| i.state), None)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        let next = match (state, &error) {
            (_, Some(_)) => NextStep::Retry,
            (None, None) if unanswered => NextStep::Unconfirmed,
            (None, None) => NextStep::StartOver,
            (Some(ImageState::Pending), _) => NextStep::WaitAndFinish,
            (Some(ImageState::Available), _) => NextStep::Finish,
            (Some(_), _) => NextStep::CleanUp,
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
