//! Pending images.

use cws_provider::Image;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use cws_util::fs::ReadError;

use crate::*;

/// One image in flight, as recorded in `$CWS_HOME/pending-images.json`.
///
/// The record is written before the creating call (write-ahead, with the call's intent token
/// and no image id yet) and completed with the image id once the cloud answers, so an
/// interruption or a crash at any point leaves a record of what may exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingImage {
    /// The image id; `None` while the creating call has not answered (the image may or may
    /// not exist: [`PendingImage::intent`] finds it).
    pub image_id: Option<String>,
    /// Its region.
    pub region: String,
    /// Its name.
    pub name: String,
    /// The command that made it: `create`, `create-multi` or `copy`.
    pub operation: String,
    /// The template it serves, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// When it was recorded, RFC 3339.
    pub started_at: String,
    /// The job the image belongs to: what finishing it means (re-running the same job waits
    /// for what is in flight and does what is missing). `None` in records written by an
    /// earlier cws, which kept a ready-made command in [`PendingImage::legacy_finish`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<PendingJob>,
    /// The command an earlier cws recorded to finish the job (read, never written).
    #[serde(default, rename = "finish", skip_serializing_if = "Option::is_none")]
    pub legacy_finish: Option<String>,
    /// The creating call's intent token ([`cws_provider::tags::INTENT`]): how the image is
    /// found when its id is not known, and what a re-run reuses so it never makes a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
}

/// The job an image in flight belongs to, with what it takes to run it again. The image
/// itself is cleaned up by deregistering [`PendingImage::image_id`] in its region.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PendingJob {
    /// An image made from an instance, and for a multi-region create its copies.
    Create {
        /// The template slug.
        template: String,
        /// The instance (name or id) the image is made from.
        instance: String,
        /// The image name.
        name: String,
        /// The instance's region.
        region: String,
        /// The regions a multi-region create copies to (empty for a single-region create).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        regions: Vec<String>,
        /// Whether the image is made public.
        #[serde(default)]
        public: bool,
    },
    /// A copy of an image into another region.
    Copy {
        /// The image copied.
        source_image: String,
        /// Its region.
        source_region: String,
        /// Where the copy goes.
        target_region: String,
    },
}

impl PendingJob {
    /// The operation's short name, as recorded in [`PendingImage::operation`]: `create`,
    /// `create-multi` or `copy`.
    pub fn operation(&self) -> &'static str {
        match self {
            PendingJob::Create { regions, .. } if regions.is_empty() => "create",
            PendingJob::Create { .. } => "create-multi",
            PendingJob::Copy { .. } => "copy",
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PendingFile {
    version: u32,
    #[serde(default)]
    images: Vec<PendingImage>,
}

const PENDING_FORMAT: u32 = 1;

/// The largest pending-images file cws reads: 16 MiB. A record is a few hundred bytes and
/// lives only while its image is in flight, so this is tens of thousands of images at once; a
/// larger file, or a path that is not a regular file, is refused before it is read
/// ([`LifecycleError::PendingFileRefused`]).
pub const MAX_PENDING_BYTES: u64 = 16 * 1024 * 1024;

/// The record of images in flight, shared by every cws process using the same home.
///
/// Every change takes an exclusive lock on `pending-images.lock` (std `File::lock`, an
/// advisory lock that also serialises threads of one process because each call opens its own
/// handle), re-reads the file, changes it and replaces it atomically (temporary file, fsync,
/// rename), so concurrent commands never lose each other's records and a crash never leaves
/// half a file.
#[derive(Debug, Clone)]
pub struct PendingImages {
    path: PathBuf,
    lock_path: PathBuf,
}

struct Unlock(File);

impl Drop for Unlock {
    fn drop(&mut self) {
        // Closing the handle releases the lock anyway; an unlock error leaves nothing to do.
        let _ = self.0.unlock();
    }
}

impl PendingImages {
    /// The record under a cws home: `<home>/pending-images.json`.
    pub fn open(home: &Path) -> PendingImages {
        PendingImages::at(home.join("pending-images.json"))
    }

    /// The record at an explicit path (its lock file sits beside it).
    pub fn at(path: impl Into<PathBuf>) -> PendingImages {
        let path = path.into();
        let mut lock_name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "pending-images.json".into());
        lock_name.push(".lock");
        let lock_path = path.with_file_name(lock_name);
        PendingImages { path, lock_path }
    }

    /// The file the record lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, action: &str, path: &Path, e: impl std::fmt::Display) -> LifecycleError {
        LifecycleError::PendingFile {
            action: action.to_string(),
            path: path.to_path_buf(),
            message: format!("{e}; check that the directory is writable"),
        }
    }

    fn lock(&self, exclusive: bool) -> Result<Unlock, LifecycleError> {
        if let Some(dir) = self.lock_path.parent()
            && !dir.as_os_str().is_empty()
        {
            fs::create_dir_all(dir).map_err(|e| self.err("create the directory of", dir, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| self.err("open the lock file", &self.lock_path, e))?;
        let locked = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.map_err(|e| self.err("lock", &self.lock_path, e))?;
        Ok(Unlock(file))
    }

    fn load(&self) -> Result<PendingFile, LifecycleError> {
        let bytes = match cws_util::fs::read_bytes_bounded(&self.path, MAX_PENDING_BYTES) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Ok(PendingFile {
                    version: PENDING_FORMAT,
                    images: Vec::new(),
                });
            }
            Err(ReadError::Io { source, .. }) => return Err(self.err("read", &self.path, source)),
            Err(refused) => return Err(LifecycleError::PendingFileRefused(refused)),
        };
        let file: PendingFile =
            serde_json::from_slice(&bytes).map_err(|e| LifecycleError::PendingFile {
                action: "read".into(),
                path: self.path.clone(),
                message: format!(
                    "it is not a cws pending-images file ({e}); move it aside (`mv {0} {0}.bak`) \
                     and run again (the images themselves are not affected)",
                    self.path.display()
                ),
            })?;
        if file.version != PENDING_FORMAT {
            return Err(LifecycleError::PendingFile {
                action: "read".into(),
                path: self.path.clone(),
                message: format!(
                    "it has format version {} but this cws understands version {PENDING_FORMAT}; \
                     use a matching cws or move the file aside",
                    file.version
                ),
            });
        }
        Ok(file)
    }

    fn save(&self, file: &PendingFile) -> Result<(), LifecycleError> {
        let bytes = serde_json::to_vec_pretty(file)
            .map_err(|e| self.err("encode the record for", &self.path, e))?;
        cws_util::fs::write_atomic(&self.path, &bytes, None)
            .map_err(|e| self.err("write", &self.path, e))
    }

    fn update<R>(&self, f: impl FnOnce(&mut Vec<PendingImage>) -> R) -> Result<R, LifecycleError> {
        let _guard = self.lock(true)?;
        let mut file = self.load()?;
        let before = file.images.clone();
        let r = f(&mut file.images);
        if file.images != before {
            file.version = PENDING_FORMAT;
            if file.images.is_empty() {
                match fs::remove_file(&self.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(self.err("remove", &self.path, e)),
                }
            } else {
                self.save(&file)?;
            }
        }
        Ok(r)
    }

    /// Checks that the record can be read (and so written) before anything is made: an
    /// unreadable record found only after a creating call would leave an image nobody tracks.
    pub fn check(&self) -> Result<(), LifecycleError> {
        self.list().map(drop)
    }

    /// Every recorded image, oldest first.
    pub fn list(&self) -> Result<Vec<PendingImage>, LifecycleError> {
        let _guard = self.lock(false)?;
        Ok(self.load()?.images)
    }

    /// Records an image (replacing an earlier record of the same image, or of the same
    /// intent).
    pub fn add(&self, entry: PendingImage) -> Result<(), LifecycleError> {
        self.update(|images| {
            images.retain(|i| {
                let same_image = i.image_id.is_some()
                    && i.image_id == entry.image_id
                    && i.region == entry.region;
                let same_intent = i.intent.is_some() && i.intent == entry.intent;
                !(same_image || same_intent)
            });
            images.push(entry);
        })
    }

    /// Forgets an image; `true` when it was recorded.
    pub fn remove(&self, region: &str, image_id: &str) -> Result<bool, LifecycleError> {
        self.update(|images| {
            let n = images.len();
            images.retain(|i| !(i.image_id.as_deref() == Some(image_id) && i.region == region));
            images.len() != n
        })
    }

    /// Forgets the record of an intent (a creating call that was refused made nothing).
    pub fn remove_intent(&self, token: &str) -> Result<bool, LifecycleError> {
        self.update(|images| {
            let n = images.len();
            images.retain(|i| i.intent.as_deref() != Some(token));
            images.len() != n
        })
    }

    /// The intent of an earlier, unfinished request for the same job, image name and region
    /// (interrupted before the cloud answered, or before the image was tagged and ready): a
    /// re-run reuses it, so the image that request made is found by it instead of a second
    /// one being made.
    pub fn unanswered_intent(
        &self,
        job: &PendingJob,
        region: &str,
        name: &str,
    ) -> Result<Option<String>, LifecycleError> {
        Ok(self.list()?.into_iter().find_map(|i| {
            (i.region == region && i.name == name && i.job.as_ref() == Some(job))
                .then_some(i.intent)
                .flatten()
        }))
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Records an image the cloud answered with (replacing the write-ahead record of its intent).
pub(crate) fn record(
    pending: Option<&PendingImages>,
    image: &Image,
    template: Option<&str>,
    job: &PendingJob,
) -> Result<(), LifecycleError> {
    match pending {
        None => Ok(()),
        Some(p) => p.add(PendingImage {
            image_id: Some(image.id.clone()),
            region: image.region.clone(),
            name: image.name.clone(),
            operation: job.operation().to_string(),
            template: template.map(str::to_string),
            started_at: now_rfc3339(),
            job: Some(job.clone()),
            legacy_finish: None,
            intent: image.tags.get(cws_provider::tags::INTENT).cloned(),
        }),
    }
}

/// The intent for a creating call, recorded before the call, and whether it is resumed: an
/// unanswered one of an interrupted earlier run of the same job (whose image the caller looks
/// for first, so it is found, not made twice), else a new one.
pub(crate) fn intent_for(
    pending: Option<&PendingImages>,
    region: &str,
    name: &str,
    template: Option<&str>,
    job: &PendingJob,
) -> Result<(String, bool), LifecycleError> {
    let Some(p) = pending else {
        return Ok((cws_provider::intent::new_token(), false));
    };
    let (token, resumed) = match p.unanswered_intent(job, region, name)? {
        Some(t) => (t, true),
        None => (cws_provider::intent::new_token(), false),
    };
    p.add(PendingImage {
        image_id: None,
        region: region.to_string(),
        name: name.to_string(),
        operation: job.operation().to_string(),
        template: template.map(str::to_string),
        started_at: now_rfc3339(),
        job: Some(job.clone()),
        legacy_finish: None,
        intent: Some(token.clone()),
    })?;
    Ok((token, resumed))
}

/// Records the image a creating call answered with in place of its write-ahead record.
pub(crate) fn settle_answered_intent(
    pending: Option<&PendingImages>,
    token: &str,
    image: &Image,
    template: Option<&str>,
    job: &PendingJob,
) -> Result<(), LifecycleError> {
    if let Some(p) = pending {
        p.remove_intent(token)?;
    }
    record(pending, image, template, job)
}

/// Settles the write-ahead record of a creating call that failed: a refusal made nothing, so
/// its record goes; an unanswered call (transient failure) may have made the image, so its
/// record stays for `ami status` and the next run.
pub(crate) fn settle_failed_intent(
    pending: Option<&PendingImages>,
    token: &str,
    error: &cws_provider::ProviderError,
) {
    if let Some(p) = pending
        && !error.is_transient()
        && let Err(e) = p.remove_intent(token)
    {
        tracing::warn!("could not update the pending-images record: {e}");
    }
}

pub(crate) fn forget(pending: Option<&PendingImages>, region: &str, image_id: &str) {
    if let Some(p) = pending
        && let Err(e) = p.remove(region, image_id)
    {
        // The image itself is fine; a stale record only shows up in `cws ami status`.
        tracing::warn!("could not update the pending-images record: {e}");
    }
}

/// A launch's cross-region copy is recorded with the other images in flight: requested with
/// its intent, completed with its id, forgotten once available. Its job is the copy itself, so
/// `ami status` offers `ami copy` to finish it.
impl cws_resolver::service::CopyJournal for PendingImages {
    fn requested(
        &self,
        plan: &cws_resolver::CopyPlan,
        target_region: &str,
        template: &str,
        token: String,
    ) -> Result<String, String> {
        let job = launch_copy_job(plan, target_region);
        let earlier = self
            .unanswered_intent(&job, target_region, &plan.source_name)
            .map_err(|e| e.to_string())?;
        let token = earlier.unwrap_or(token);
        self.add(PendingImage {
            image_id: None,
            region: target_region.to_string(),
            name: plan.source_name.clone(),
            operation: job.operation().to_string(),
            template: Some(template.to_string()),
            started_at: now_rfc3339(),
            job: Some(job),
            legacy_finish: None,
            intent: Some(token.clone()),
        })
        .map_err(|e| e.to_string())?;
        Ok(token)
    }

    fn answered(&self, token: &str, image: &Image, template: &str, plan: &cws_resolver::CopyPlan) {
        let job = launch_copy_job(plan, &image.region);
        if let Err(e) = settle_answered_intent(Some(self), token, image, Some(template), &job) {
            tracing::warn!("could not update the pending-images record: {e}");
        }
    }

    fn failed(&self, token: &str, error: &cws_provider::ProviderError) {
        settle_failed_intent(Some(self), token, error);
    }

    fn done(&self, image: &Image) {
        forget(Some(self), &image.region, &image.id);
    }
}

fn launch_copy_job(plan: &cws_resolver::CopyPlan, target_region: &str) -> PendingJob {
    PendingJob::Copy {
        source_image: plan.source_ami_id.clone(),
        source_region: plan.source_region.clone(),
        target_region: target_region.to_string(),
    }
}
