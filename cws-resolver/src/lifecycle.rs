//! The AMI lifecycle: turn a tuned instance into an image, spread it across regions, share it,
//! show who may use it, and clean it up — services over any [`CloudProvider`].
//!
//! This is how a template becomes a 30-second launch: `ami create` images a workstation and
//! tags it so the template's searches (and `ami list`) find it; `ami create-multi` copies it
//! to more regions, concurrently but bounded, skipping regions that already hold a copy; the
//! resolver then finds those copies by their provenance tags.
//!
//! Everything here is written against the [`CloudProvider`] trait only, so the same code runs
//! on the simulated LocalCloud and on EC2. Three rules shape it:
//!
//! - **Re-running finishes the job.** An image is found again by name and tags rather than
//!   made twice, and a region that already holds a copy (tag `cws:source-ami`) is skipped, so
//!   after a partial failure or an interruption the same command completes only what is
//!   missing.
//! - **Nothing in flight is forgotten.** Before waiting on an image, the image is recorded in
//!   [`PendingImages`] (`$CWS_HOME/pending-images.json`); the record goes when the image is
//!   available. If the caller stops waiting (Ctrl-C drops the future), the record stays and
//!   [`pending_status`] tells the user how to finish or clean up.
//! - **Waiting is bounded and honest.** Waits poll with backoff up to a total limit
//!   ([`WaitOptions`], 30 minutes by default), stop at once when an image fails, and report
//!   progress through a [`Progress`] sink the caller chooses (spinners on a terminal, nothing
//!   under JSON). Once the image (or instance) is visible and pending, a provider with a
//!   waiter of its own takes over the rest of the wait: on AWS the SDK's `ImageAvailable` and
//!   `InstanceRunning` waiters ([`CloudProvider::wait_image_available`]); LocalCloud has none
//!   and is polled.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cws_cost::Money;
use cws_template::{AmiConfig, AmiSearch, AmiStrategy, Architecture, Template};
use futures::StreamExt;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::error::ProviderError;
use crate::model::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, ImageState, Instance, InstanceState,
    LaunchPermission, Snapshot, WaitOutcome,
};
use crate::provider::{CloudProvider, CloudProviderExt};
use crate::resolver::{CopyPlan, ProviderLabel, ResolveEnv};
use crate::service::{Consent, copy_question};
use crate::tier::tags;

/// Tag naming the instance an image was made from; with the name and `cws:template` it is
/// how a re-run recognises the image it made before.
pub const SOURCE_INSTANCE_TAG: &str = "cws:source-instance";

/// How many cross-region copies run at once in [`create_multi`]. EC2 allows a limited number
/// of concurrent copies per destination region and account; four keeps well inside it while
/// still spreading an image to a handful of regions in one copy's time.
pub const COPY_CONCURRENCY: usize = 4;

/// The default total time to wait for an image or an instance: long enough for a large
/// image to be created or copied across continents.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How many consecutive polls may miss a just-created image before it counts as gone. EC2's
/// describe calls are eventually consistent, so a new id can be briefly invisible.
const MISSING_POLLS_BEFORE_GONE: u32 = 5;

/// How many consecutive transient errors (throttling, unavailability) a wait rides out.
const TRANSIENT_POLLS_TOLERATED: u32 = 5;

/// How often progress is reported while a provider's own waiter runs.
const NATIVE_WAIT_TICK: Duration = Duration::from_secs(5);

/// What can go wrong in the lifecycle services. Every message says what to do next.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The request is invalid (unknown region, empty list, bad combination).
    #[error("{0}")]
    Invalid(String),
    /// The instance to image is not running and the caller did not ask to wait.
    #[error(
        "instance {name} ({id}) in {region} is {state}, not running; start it first, or pass \
         --wait-for-running to wait until it is"
    )]
    InstanceNotRunning {
        /// The instance's name.
        name: String,
        /// Its id.
        id: String,
        /// Its region.
        region: String,
        /// Its state.
        state: InstanceState,
    },
    /// The instance can never run again (terminated or terminating).
    #[error(
        "instance {name} ({id}) in {region} is {state}; an image can only be made from a live \
         instance — launch a new one (`cws launch`)"
    )]
    InstanceGone {
        /// The instance's name.
        name: String,
        /// Its id.
        id: String,
        /// Its region.
        region: String,
        /// Its state.
        state: InstanceState,
    },
    /// A wait ran out of time; the resource is still there and still being worked on.
    #[error("{what} {id} in {region} is still {state} after {waited_s} s; {hint}")]
    Timeout {
        /// `image` or `instance`.
        what: &'static str,
        /// The resource id.
        id: String,
        /// Its region.
        region: String,
        /// Its last seen state.
        state: String,
        /// How long cws waited.
        waited_s: u64,
        /// What to do next.
        hint: &'static str,
    },
    /// An image ended up failed, invalid or deregistered while cws waited for it.
    #[error(
        "image {image} in {region} is {state}; clean it up with `cws ami deregister {image} \
         --region {region}` and run the command again"
    )]
    ImageFailed {
        /// The image id.
        image: String,
        /// Its region.
        region: String,
        /// Its state.
        state: ImageState,
    },
    /// An image with the requested name exists but was not made by this command.
    #[error(
        "an image named `{name}` already exists in {region} ({image}), made from \
         {source_instance}; pick another --name or deregister it \
         (`cws ami deregister {image} --region {region}`)"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The region.
        region: String,
        /// The existing image.
        image: String,
        /// The instance it was made from.
        source_instance: String,
    },
    /// The user said no (or could not be asked).
    #[error("{0}")]
    Declined(String),
    /// The pending-images file could not be read or written.
    #[error("cannot {action} {}: {message}", path.display())]
    PendingFile {
        /// What cws tried to do.
        action: String,
        /// The file.
        path: PathBuf,
        /// What went wrong and how to recover.
        message: String,
    },
}

impl LifecycleError {
    /// Whether the user's input (not the cloud) is at fault: the CLI exits 2 for these.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            LifecycleError::Invalid(_)
            | LifecycleError::InstanceNotRunning { .. }
            | LifecycleError::InstanceGone { .. }
            | LifecycleError::NameTaken { .. } => true,
            LifecycleError::Provider(p) => matches!(
                p,
                ProviderError::InvalidInput { .. } | ProviderError::Conflict { .. }
            ),
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting and progress

/// How long and how often to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Total time before giving up ([`DEFAULT_TIMEOUT`] unless `--timeout`).
    pub timeout: Duration,
    /// The first pause between polls; it doubles up to `max_poll`.
    pub first_poll: Duration,
    /// The longest pause between polls.
    pub max_poll: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: DEFAULT_TIMEOUT,
            first_poll: Duration::from_millis(200),
            max_poll: Duration::from_secs(15),
        }
    }
}

impl WaitOptions {
    /// The defaults with another total limit.
    pub fn with_timeout(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            ..WaitOptions::default()
        }
    }
}

/// Something that happened while a lifecycle service worked, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// Waiting for an instance to be running before imaging it.
    WaitingForInstance {
        /// Region.
        region: String,
        /// The instance.
        instance_id: String,
        /// Its current state.
        state: InstanceState,
        /// Seconds waited so far.
        elapsed_s: u64,
    },
    /// An image was requested (`action` is `create` or `copy`).
    Started {
        /// Region of the new image.
        region: String,
        /// Its id.
        image_id: String,
        /// `create` or `copy`.
        action: String,
    },
    /// An image is not available yet.
    Waiting {
        /// Region.
        region: String,
        /// Image id.
        image_id: String,
        /// Its current state.
        state: ImageState,
        /// Seconds waited so far.
        elapsed_s: u64,
    },
    /// An image is available.
    Available {
        /// Region.
        region: String,
        /// Image id.
        image_id: String,
    },
    /// A region needed nothing (it already holds the image).
    Skipped {
        /// Region.
        region: String,
        /// The image already there.
        image_id: String,
    },
    /// A region failed.
    Failed {
        /// Region.
        region: String,
        /// What went wrong.
        error: String,
    },
}

impl ProgressEvent {
    /// The region the event is about.
    pub fn region(&self) -> &str {
        match self {
            ProgressEvent::WaitingForInstance { region, .. }
            | ProgressEvent::Started { region, .. }
            | ProgressEvent::Waiting { region, .. }
            | ProgressEvent::Available { region, .. }
            | ProgressEvent::Skipped { region, .. }
            | ProgressEvent::Failed { region, .. } => region,
        }
    }
}

/// Where progress goes. The CLI draws spinners on a terminal; the REST API and `--json` use
/// [`NoProgress`]. Called from the service's task, so implementations must not block long.
pub trait Progress: Send + Sync {
    /// Something happened.
    fn event(&self, event: &ProgressEvent);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: &ProgressEvent) {}
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// Waits until an image is available. Fails at once when it is failed, invalid or
/// deregistered, rides out a few transient provider errors and a briefly invisible new id,
/// and gives up after `wait.timeout` with [`LifecycleError::Timeout`].
///
/// It polls until the image is visible and pending, then hands the rest of the wait to the
/// provider's own waiter when it has one ([`CloudProvider::wait_image_available`]: the SDK's
/// `ImageAvailable` waiter on AWS), reporting progress every few seconds meanwhile; without
/// one (LocalCloud), or if that waiter errs, it keeps polling.
///
/// Uses `tokio::time`, so tests with a paused clock run instantly.
pub async fn wait_until_available(
    provider: &dyn CloudProvider,
    region: &str,
    image_id: &str,
    wait: &WaitOptions,
    progress: &dyn Progress,
) -> Result<Image, LifecycleError> {
    let start = tokio::time::Instant::now();
    let mut delay = wait.first_poll;
    let mut missing = 0u32;
    let mut transient = 0u32;
    let mut last_state = "unknown".to_string();
    let mut native_tried = false;
    loop {
        match provider.image(region, image_id).await {
            Ok(Some(img)) => {
                missing = 0;
                transient = 0;
                match img.state {
                    ImageState::Available => {
                        progress.event(&ProgressEvent::Available {
                            region: region.to_string(),
                            image_id: image_id.to_string(),
                        });
                        return Ok(img);
                    }
                    ImageState::Failed | ImageState::Invalid | ImageState::Deregistered => {
                        return Err(LifecycleError::ImageFailed {
                            image: image_id.to_string(),
                            region: region.to_string(),
                            state: img.state,
                        });
                    }
                    state => {
                        last_state = state.to_string();
                        let waiting = |elapsed_s| {
                            progress.event(&ProgressEvent::Waiting {
                                region: region.to_string(),
                                image_id: image_id.to_string(),
                                state,
                                elapsed_s,
                            })
                        };
                        waiting(secs(start.elapsed()));
                        if !native_tried {
                            native_tried = true;
                            let remaining = wait.timeout.saturating_sub(start.elapsed());
                            let waited = native_wait(
                                provider.wait_image_available(region, image_id, remaining),
                                start,
                                waiting,
                            )
                            .await;
                            match waited {
                                Some(WaitOutcome::Ready(img)) => {
                                    progress.event(&ProgressEvent::Available {
                                        region: region.to_string(),
                                        image_id: image_id.to_string(),
                                    });
                                    return Ok(img);
                                }
                                Some(WaitOutcome::Failed(img)) => {
                                    return Err(LifecycleError::ImageFailed {
                                        image: image_id.to_string(),
                                        region: region.to_string(),
                                        state: img.state,
                                    });
                                }
                                // Polling decides when the time is up, with the same message.
                                Some(WaitOutcome::TimedOut) | None => {}
                            }
                        }
                    }
                }
            }
            Ok(None) => {
                missing += 1;
                if missing >= MISSING_POLLS_BEFORE_GONE {
                    return Err(ProviderError::NotFound {
                        what: format!("image {image_id} (it was deregistered or never appeared)"),
                        region: region.to_string(),
                    }
                    .into());
                }
            }
            Err(e) if e.is_transient() && transient < TRANSIENT_POLLS_TOLERATED => {
                transient += 1;
            }
            Err(e) => return Err(e.into()),
        }
        next_poll(start, wait, &mut delay, |waited_s| {
            LifecycleError::Timeout {
                what: "image",
                id: image_id.to_string(),
                region: region.to_string(),
                state: last_state.clone(),
                waited_s,
                hint: "`cws ami status` shows it, and running the same command again keeps \
                   waiting (or raise --timeout)",
            }
        })
        .await?;
    }
}

/// Between two polls: the caller's timeout error once `wait.timeout` has passed since
/// `start`, otherwise a sleep of `delay` (never past the limit), doubling it up to
/// `wait.max_poll` for the next time.
async fn next_poll(
    start: tokio::time::Instant,
    wait: &WaitOptions,
    delay: &mut Duration,
    timeout: impl FnOnce(u64) -> LifecycleError,
) -> Result<(), LifecycleError> {
    let elapsed = start.elapsed();
    if elapsed >= wait.timeout {
        return Err(timeout(secs(elapsed)));
    }
    tokio::time::sleep((*delay).min(wait.timeout - elapsed)).await;
    *delay = (*delay * 2).min(wait.max_poll);
    Ok(())
}

/// Runs a provider's own waiter, reporting the elapsed time every [`NATIVE_WAIT_TICK`].
/// `None` when the provider has no waiter or its waiter erred: the caller polls, which
/// tolerates transient errors and reports persistent ones with its own context.
async fn native_wait<T>(
    waiter: impl std::future::Future<Output = Result<WaitOutcome<T>, ProviderError>>,
    start: tokio::time::Instant,
    tick: impl Fn(u64),
) -> Option<WaitOutcome<T>> {
    let mut waiter = std::pin::pin!(waiter);
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + NATIVE_WAIT_TICK,
        NATIVE_WAIT_TICK,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            outcome = &mut waiter => {
                return match outcome {
                    Ok(outcome) => Some(outcome),
                    Err(ProviderError::Unsupported { .. }) => None,
                    Err(e) => {
                        tracing::debug!("the provider's waiter failed ({e}); polling instead");
                        None
                    }
                };
            }
            _ = ticks.tick() => tick(secs(start.elapsed())),
        }
    }
}

/// Waits until an instance is running. An instance that is terminated or terminating never
/// will be, so that fails at once ([`LifecycleError::InstanceGone`]). Like
/// [`wait_until_available`], the wait goes to the provider's own waiter
/// ([`CloudProvider::wait_instance_running`]) once the instance has been seen, when it has one.
pub async fn wait_until_running(
    provider: &dyn CloudProvider,
    region: &str,
    instance_id: &str,
    wait: &WaitOptions,
    progress: &dyn Progress,
) -> Result<Instance, LifecycleError> {
    let start = tokio::time::Instant::now();
    let mut delay = wait.first_poll;
    let mut transient = 0u32;
    let mut last_state = "unknown".to_string();
    let mut native_tried = false;
    loop {
        match provider.require_instance(region, instance_id).await {
            Ok(i) => {
                transient = 0;
                match i.state {
                    InstanceState::Running => return Ok(i),
                    InstanceState::ShuttingDown | InstanceState::Terminated => {
                        return Err(LifecycleError::InstanceGone {
                            name: i.name,
                            id: i.id,
                            region: region.to_string(),
                            state: i.state,
                        });
                    }
                    state => {
                        last_state = state.to_string();
                        let waiting = |elapsed_s| {
                            progress.event(&ProgressEvent::WaitingForInstance {
                                region: region.to_string(),
                                instance_id: i.id.clone(),
                                state,
                                elapsed_s,
                            })
                        };
                        waiting(secs(start.elapsed()));
                        // A stopped instance will not start by itself: poll until the limit.
                        if !native_tried && state == InstanceState::Pending {
                            native_tried = true;
                            let remaining = wait.timeout.saturating_sub(start.elapsed());
                            let waited = native_wait(
                                provider.wait_instance_running(region, &i.id, remaining),
                                start,
                                waiting,
                            )
                            .await;
                            match waited {
                                Some(WaitOutcome::Ready(ready)) => return Ok(ready),
                                Some(WaitOutcome::Failed(gone))
                                    if matches!(
                                        gone.state,
                                        InstanceState::ShuttingDown | InstanceState::Terminated
                                    ) =>
                                {
                                    return Err(LifecycleError::InstanceGone {
                                        name: gone.name,
                                        id: gone.id,
                                        region: region.to_string(),
                                        state: gone.state,
                                    });
                                }
                                // Stopping, out of time, or no waiter: polling takes over.
                                _ => {}
                            }
                        }
                    }
                }
            }
            Err(e) if e.is_transient() && transient < TRANSIENT_POLLS_TOLERATED => {
                transient += 1;
            }
            Err(e) => return Err(e.into()),
        }
        next_poll(start, wait, &mut delay, |waited_s| {
            LifecycleError::Timeout {
                what: "instance",
                id: instance_id.to_string(),
                region: region.to_string(),
                state: last_state.clone(),
                waited_s,
                hint: "start it (cws cannot start instances), or raise --timeout",
            }
        })
        .await?;
    }
}

// ---------------------------------------------------------------------------------------------
// Pending images

/// One image in flight, as recorded in `$CWS_HOME/pending-images.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingImage {
    /// The image id.
    pub image_id: String,
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
    /// The command that finishes the job (re-running it waits for what is in flight and does
    /// what is missing).
    pub finish: String,
    /// The command that cleans it up instead.
    pub cleanup: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PendingFile {
    version: u32,
    #[serde(default)]
    images: Vec<PendingImage>,
}

const PENDING_FORMAT: u32 = 1;

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
            message: format!("{e}; check that the directory is writable or pass another --home"),
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
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(PendingFile {
                    version: PENDING_FORMAT,
                    images: Vec::new(),
                });
            }
            Err(e) => return Err(self.err("read", &self.path, e)),
        };
        let file: PendingFile =
            serde_json::from_slice(&bytes).map_err(|e| LifecycleError::PendingFile {
                action: "read".into(),
                path: self.path.clone(),
                message: format!(
                    "it is not a cws pending-images file ({e}); move it aside (`mv {0} {0}.bak`) \
                     and run again — `cws ami list` still finds the images themselves",
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
        let tmp = self.path.with_file_name(format!(
            "{}.tmp-{}",
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pending-images.json".into()),
            std::process::id()
        ));
        let result = (|| {
            let bytes = serde_json::to_vec_pretty(file)
                .map_err(|e| self.err("encode the record for", &self.path, e))?;
            let mut f = File::create(&tmp).map_err(|e| self.err("create", &tmp, e))?;
            f.write_all(&bytes)
                .and_then(|()| f.sync_all())
                .map_err(|e| self.err("write", &tmp, e))?;
            drop(f);
            fs::rename(&tmp, &self.path).map_err(|e| self.err("replace", &self.path, e))?;
            #[cfg(unix)]
            if let Some(dir) = self.path.parent()
                && let Ok(d) = File::open(if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                })
            {
                // Makes the rename durable; best effort, the data is already safe.
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
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

    /// Every recorded image, oldest first.
    pub fn list(&self) -> Result<Vec<PendingImage>, LifecycleError> {
        let _guard = self.lock(false)?;
        Ok(self.load()?.images)
    }

    /// Records an image (replacing an earlier record of the same image).
    pub fn add(&self, entry: PendingImage) -> Result<(), LifecycleError> {
        self.update(|images| {
            images.retain(|i| !(i.image_id == entry.image_id && i.region == entry.region));
            images.push(entry);
        })
    }

    /// Forgets an image; `true` when it was recorded.
    pub fn remove(&self, region: &str, image_id: &str) -> Result<bool, LifecycleError> {
        self.update(|images| {
            let n = images.len();
            images.retain(|i| !(i.image_id == image_id && i.region == region));
            images.len() != n
        })
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Quotes a word for a POSIX shell when it needs it, so printed commands can be pasted.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn cleanup_command(image_id: &str, region: &str) -> String {
    format!("cws ami deregister {image_id} --region {region}")
}

fn record(
    pending: Option<&PendingImages>,
    image: &Image,
    operation: &str,
    template: Option<&str>,
    finish: &str,
) -> Result<(), LifecycleError> {
    match pending {
        None => Ok(()),
        Some(p) => p.add(PendingImage {
            image_id: image.id.clone(),
            region: image.region.clone(),
            name: image.name.clone(),
            operation: operation.to_string(),
            template: template.map(str::to_string),
            started_at: now_rfc3339(),
            finish: finish.to_string(),
            cleanup: cleanup_command(&image.id, &image.region),
        }),
    }
}

fn forget(pending: Option<&PendingImages>, region: &str, image_id: &str) {
    if let Some(p) = pending
        && let Err(e) = p.remove(region, image_id)
    {
        // The image itself is fine; a stale record only shows up in `cws ami status`.
        tracing::warn!("could not update the pending-images record: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Create

/// What `cws ami create` (and the first half of `create-multi`) asks for.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The template the image serves (its slug and version become tags).
    pub template: Template,
    /// The instance to image: name or id.
    pub instance: String,
    /// The instance's region (the image is made there).
    pub region: String,
    /// The image name.
    pub name: String,
    /// Image description (default: one naming the template and instance).
    pub description: Option<String>,
    /// Make the image launchable by everyone.
    pub public: bool,
    /// Wait for a non-running instance to be running instead of failing.
    pub wait_for_running: bool,
    /// Image without rebooting the instance (faster; file systems may be inconsistent).
    pub no_reboot: bool,
    /// Extra tags (cws's own tags win on conflicts).
    pub tags: BTreeMap<String, String>,
    /// How long to wait.
    pub wait: WaitOptions,
}

/// An image made (or found again) from an instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatedImage {
    /// Image id.
    pub ami_id: String,
    /// Region.
    pub region: String,
    /// Name.
    pub name: String,
    /// State (available once the service returns).
    pub state: ImageState,
    /// Template slug.
    pub template: String,
    /// Template version the image was built from.
    pub template_version: String,
    /// The instance it was made from.
    pub instance_id: String,
    /// Architecture.
    pub architecture: Architecture,
    /// Whether everyone may launch it.
    pub public: bool,
    /// True when an earlier run had already made it (found by name and tags).
    pub reused: bool,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// The result of `cws ami create`: the JSON contract `{ami_id, region, name, state, template,
/// ...}` plus the `ami_config` that makes the template launch from the image.
#[derive(Debug, Clone, Serialize)]
pub struct CreateReport {
    /// The provider used.
    pub provider: ProviderLabel,
    /// The image.
    #[serde(flatten)]
    pub image: CreatedImage,
    /// An `ami_config` for the template that resolves to this image (mapping and search).
    pub ami_config: AmiConfig,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

/// The tags cws puts on an image it makes for `template` from `instance_id`.
pub fn creation_tags(
    template: &Template,
    name: &str,
    instance_id: &str,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut t = extra.clone();
    t.insert(tags::TEMPLATE.into(), template.slug.clone());
    t.insert(tags::TEMPLATE_VERSION.into(), template.version.to_string());
    t.insert(tags::CREATED_BY.into(), "cws".into());
    t.insert(SOURCE_INSTANCE_TAG.into(), instance_id.to_string());
    t.insert("Name".into(), name.to_string());
    t
}

/// Tags marking `copy` as a copy of `source`: the source's own tags (so `cws:template` and
/// the version carry over) plus where it came from.
pub fn copy_tags(source: &Image) -> BTreeMap<String, String> {
    let mut t = source.tags.clone();
    t.insert(tags::SOURCE_AMI.into(), source.id.clone());
    t.insert(tags::SOURCE_REGION.into(), source.region.clone());
    t.insert(tags::CREATED_BY.into(), "cws".into());
    t.entry("Name".into())
        .or_insert_with(|| source.name.clone());
    t
}

/// The `ami_config` that switches `template` to its images: a mapping per region that has
/// one and a search for the account's own images of the template (which also finds later
/// images and copies).
pub fn suggested_ami_config(template: &Template, images: &[(String, String)]) -> AmiConfig {
    let mut cfg = template.ami_config.clone().unwrap_or(AmiConfig {
        strategy: AmiStrategy::AmiPreferred,
        ..AmiConfig::default()
    });
    for (region, id) in images {
        cfg.ami_mappings.insert(region.clone(), id.clone());
    }
    if cfg.ami_search.is_none() {
        cfg.ami_search = Some(AmiSearch {
            owners: vec!["self".into()],
            name_pattern: None,
            architectures: Vec::new(),
            required_tags: BTreeMap::from([(tags::TEMPLATE.to_string(), template.slug.clone())]),
            include_deprecated: false,
        });
    }
    cfg
}

/// The states a re-run accepts when looking for what an earlier run made.
fn in_flight_or_done() -> Vec<ImageState> {
    vec![ImageState::Pending, ImageState::Available]
}

/// Images the account owns in `region` named `name` and made for `template`.
async fn own_images_named(
    provider: &dyn CloudProvider,
    region: &str,
    name: &str,
    template: &str,
) -> Result<Vec<Image>, ProviderError> {
    let mut q = ImageQuery::owned_by(["self"])
        .tag(tags::TEMPLATE, template)
        .include_deprecated(true);
    // Image names cannot contain wildcards on EC2, so the name is its own exact pattern.
    q.name_pattern = Some(name.to_string());
    q.states = in_flight_or_done();
    let found = provider.describe_images(region, &q).await?;
    Ok(found.into_iter().filter(|i| i.name == name).collect())
}

fn finish_create_command(req: &CreateRequest, multi_regions: Option<&[String]>) -> String {
    let mut cmd = match multi_regions {
        Some(_) => "cws ami create-multi".to_string(),
        None => "cws ami create".to_string(),
    };
    cmd.push_str(&format!(
        " {} {} --name {} --region {}",
        shell_quote(&req.template.slug),
        shell_quote(&req.instance),
        shell_quote(&req.name),
        req.region
    ));
    if let Some(regions) = multi_regions {
        cmd.push_str(&format!(" --regions {}", regions.join(",")));
    }
    if req.public {
        cmd.push_str(" --public");
    }
    cmd
}

/// Finds the image an earlier run made (same name, template and instance) or makes it;
/// records it as pending and waits until it is available.
async fn create_or_find(
    env: &ResolveEnv,
    req: &CreateRequest,
    operation: &str,
    finish: &str,
    pending: Option<&PendingImages>,
    progress: &dyn Progress,
    keep_record: bool,
) -> Result<(CreatedImage, Vec<String>), LifecycleError> {
    let provider = env.provider.as_ref();
    if req.name.trim().is_empty() {
        return Err(LifecycleError::Invalid(
            "--name must not be empty; images need a name (e.g. \"My Setup\")".into(),
        ));
    }
    let slug = req.template.slug.as_str();
    let (existing, instance) = futures::join!(
        own_images_named(provider, &req.region, &req.name, slug),
        provider.require_instance(&req.region, &req.instance)
    );
    let existing = existing?;
    let mut warnings = Vec::new();

    // A re-run: the image this command made before, found by name and tags.
    let reusable = match &instance {
        Ok(i) => existing
            .iter()
            .find(|img| {
                img.tags
                    .get(SOURCE_INSTANCE_TAG)
                    .is_none_or(|src| *src == i.id)
            })
            .cloned(),
        // The instance is gone, but the image made from it is what matters.
        Err(ProviderError::NotFound { .. }) => existing.first().cloned(),
        Err(_) => None,
    };
    let (image, reused) = match reusable {
        Some(img) => {
            warnings.push(format!(
                "{} (`{}`) was already made by an earlier run; reusing it (deregister it or pick \
                 another --name for a fresh image)",
                img.id, img.name
            ));
            (img, true)
        }
        None => {
            let instance = instance?;
            if let Some(other) = existing.first() {
                return Err(LifecycleError::NameTaken {
                    name: req.name.clone(),
                    region: req.region.clone(),
                    image: other.id.clone(),
                    source_instance: other
                        .tags
                        .get(SOURCE_INSTANCE_TAG)
                        .cloned()
                        .unwrap_or_else(|| "another instance".into()),
                });
            }
            let instance = match instance.state {
                InstanceState::Running => instance,
                InstanceState::ShuttingDown | InstanceState::Terminated => {
                    return Err(LifecycleError::InstanceGone {
                        name: instance.name,
                        id: instance.id,
                        region: req.region.clone(),
                        state: instance.state,
                    });
                }
                _ if req.wait_for_running => {
                    wait_until_running(provider, &req.region, &instance.id, &req.wait, progress)
                        .await?
                }
                state => {
                    return Err(LifecycleError::InstanceNotRunning {
                        name: instance.name,
                        id: instance.id,
                        region: req.region.clone(),
                        state,
                    });
                }
            };
            if let Some(t) = instance.tags.get(tags::TEMPLATE)
                && t != slug
            {
                warnings.push(format!(
                    "instance {} was launched from template {t}, but the image is tagged for {slug}",
                    instance.name
                ));
            }
            let image_tags = creation_tags(&req.template, &req.name, &instance.id, &req.tags);
            let request = CreateImageRequest {
                region: req.region.clone(),
                instance_id: instance.id.clone(),
                name: req.name.clone(),
                description: Some(req.description.clone().unwrap_or_else(|| {
                    format!(
                        "cws image of {} for template {} {}",
                        instance.name, slug, req.template.version
                    )
                })),
                no_reboot: req.no_reboot,
                tags: image_tags.clone(),
            };
            let made = provider.create_image(&request).await?;
            // Some backends drop tags on CreateImage; the tags are how cws finds it again.
            if image_tags.iter().any(|(k, v)| made.tags.get(k) != Some(v)) {
                provider
                    .create_tags(&req.region, &made.id, &image_tags)
                    .await?;
            }
            progress.event(&ProgressEvent::Started {
                region: req.region.clone(),
                image_id: made.id.clone(),
                action: "create".into(),
            });
            (made, false)
        }
    };

    record(pending, &image, operation, Some(slug), finish)?;
    let image = wait_until_available(provider, &req.region, &image.id, &req.wait, progress).await?;
    if req.public && !image.public {
        provider
            .modify_launch_permission(&req.region, &image.id, &LaunchPermission::Public, true)
            .await?;
    }
    if !keep_record {
        forget(pending, &req.region, &image.id);
    }
    let instance_id = image
        .tags
        .get(SOURCE_INSTANCE_TAG)
        .cloned()
        .unwrap_or_else(|| req.instance.clone());
    Ok((
        CreatedImage {
            ami_id: image.id.clone(),
            region: image.region.clone(),
            name: image.name.clone(),
            state: image.state,
            template: slug.to_string(),
            template_version: image
                .tags
                .get(tags::TEMPLATE_VERSION)
                .cloned()
                .unwrap_or_else(|| req.template.version.to_string()),
            instance_id,
            architecture: image.architecture,
            public: req.public || image.public,
            reused,
            tags: image.tags,
        },
        warnings,
    ))
}

/// `cws ami create`: images an instance for a template, tags it (`cws:template`,
/// `cws:template-version`, `cws:created-by`, `cws:source-instance`, `Name`), waits until it
/// is available and optionally makes it public.
///
/// Running it again with the same name finds the image made before (and waits for it if it
/// is still pending) instead of failing on the duplicate name.
pub async fn create(
    env: &ResolveEnv,
    req: &CreateRequest,
    pending: Option<&PendingImages>,
    progress: &dyn Progress,
) -> Result<CreateReport, LifecycleError> {
    let finish = finish_create_command(req, None);
    let (image, warnings) =
        create_or_find(env, req, "create", &finish, pending, progress, false).await?;
    let ami_config = suggested_ami_config(
        &req.template,
        &[(image.region.clone(), image.ami_id.clone())],
    );
    Ok(CreateReport {
        provider: (&env.provider.info()).into(),
        image,
        ami_config,
        warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// Create-multi

/// What `cws ami create-multi` asks for: an image in the instance's region, copied to more.
#[derive(Debug, Clone)]
pub struct CreateMultiRequest {
    /// The image to make (its region is the instance's).
    pub create: CreateRequest,
    /// The regions that should hold the image (the instance's region may be among them).
    pub regions: Vec<String>,
    /// Copies in flight at once (at least 1; [`COPY_CONCURRENCY`] by default).
    pub concurrency: usize,
}

/// How a region came out of `create-multi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionOutcome {
    /// The master image lives here.
    Source,
    /// A copy was made.
    Copied,
    /// A copy already existed (an earlier run); nothing was spent.
    AlreadyPresent,
    /// The region failed; re-running the command retries it.
    Failed,
}

/// One region of `create-multi`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionResult {
    /// Region.
    pub region: String,
    /// How it went.
    pub outcome: RegionOutcome,
    /// The image there (none when the copy could not even start).
    pub ami_id: Option<String>,
    /// Its state when cws stopped looking.
    pub state: Option<ImageState>,
    /// What went wrong.
    pub error: Option<String>,
    /// The error's kind (`throttled`, `permission_denied`, `timeout`, ...).
    pub error_kind: Option<String>,
}

/// The result of `cws ami create-multi`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateMultiReport {
    /// The provider used.
    pub provider: ProviderLabel,
    /// Template slug.
    pub template: String,
    /// Image name (every copy keeps it).
    pub name: String,
    /// Where the master image is.
    pub source_region: String,
    /// The master image.
    pub master: CreatedImage,
    /// One row per region: the source first, then the requested regions in order.
    pub regions: Vec<RegionResult>,
    /// Whether every region holds an available image.
    pub complete: bool,
    /// An `ami_config` mapping every region that holds the image, plus a search.
    pub ami_config: AmiConfig,
    /// The command that finishes what failed (when not complete).
    pub finish: Option<String>,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

impl CreateMultiReport {
    /// The failed regions.
    pub fn failed(&self) -> impl Iterator<Item = &RegionResult> {
        self.regions
            .iter()
            .filter(|r| r.outcome == RegionOutcome::Failed)
    }
}

fn lifecycle_kind(e: &LifecycleError) -> String {
    match e {
        LifecycleError::Provider(p) => p.kind().to_string(),
        LifecycleError::Timeout { .. } => "timeout".into(),
        LifecycleError::ImageFailed { .. } => "image_failed".into(),
        LifecycleError::PendingFile { .. } => "pending_file".into(),
        LifecycleError::Declined(_) => "declined".into(),
        _ => "invalid".into(),
    }
}

/// Checks region codes and drops duplicates, keeping the order given.
fn checked_regions(regions: &[String]) -> Result<Vec<String>, LifecycleError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in regions {
        let r = r.trim();
        if r.is_empty() {
            continue;
        }
        cws_regions::lookup(r).map_err(|e| LifecycleError::Invalid(format!("--regions: {e}")))?;
        if seen.insert(r.to_string()) {
            out.push(r.to_string());
        }
    }
    if out.is_empty() {
        return Err(LifecycleError::Invalid(
            "--regions needs at least one region, e.g. --regions us-east-1,us-west-2".into(),
        ));
    }
    Ok(out)
}

/// A copy of `source` the account already holds in `region` (pending or available).
async fn existing_copy(
    provider: &dyn CloudProvider,
    region: &str,
    source: &Image,
) -> Result<Option<Image>, ProviderError> {
    let mut q = ImageQuery::owned_by(["self"])
        .tag(tags::SOURCE_AMI, source.id.clone())
        .include_deprecated(true);
    q.states = in_flight_or_done();
    let mut found = provider.describe_images(region, &q).await?;
    // Prefer an available copy, then the oldest id for determinism.
    found.sort_by(|a, b| {
        (a.state != ImageState::Available)
            .cmp(&(b.state != ImageState::Available))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(found.into_iter().next())
}

/// Copies `source` into `region` unless a copy is already there, then waits for it.
/// Returns the copy and whether it already existed.
#[allow(clippy::too_many_arguments)]
async fn copy_once(
    provider: &dyn CloudProvider,
    source: &Image,
    region: &str,
    public: bool,
    operation: &str,
    finish: &str,
    wait: &WaitOptions,
    pending: Option<&PendingImages>,
    progress: &dyn Progress,
) -> Result<(Image, bool), LifecycleError> {
    let template = source.tags.get(tags::TEMPLATE).map(String::as_str);
    let (copy, existed) = match existing_copy(provider, region, source).await? {
        Some(c) => {
            if c.state == ImageState::Available {
                progress.event(&ProgressEvent::Skipped {
                    region: region.to_string(),
                    image_id: c.id.clone(),
                });
            }
            (c, true)
        }
        None => {
            let copy_tags = copy_tags(source);
            let request = CopyImageRequest {
                source_region: source.region.clone(),
                source_image_id: source.id.clone(),
                target_region: region.to_string(),
                name: source.name.clone(),
                description: Some(format!(
                    "cws copy of {} from {}{}",
                    source.id,
                    source.region,
                    template
                        .map(|t| format!(" for template {t}"))
                        .unwrap_or_default()
                )),
                tags: copy_tags.clone(),
            };
            let copy = provider.copy_image(&request).await?;
            // CopyImage does not carry tags on every backend; provenance is how re-runs and
            // the resolver find the copy.
            if copy_tags.iter().any(|(k, v)| copy.tags.get(k) != Some(v)) {
                provider.create_tags(region, &copy.id, &copy_tags).await?;
            }
            progress.event(&ProgressEvent::Started {
                region: region.to_string(),
                image_id: copy.id.clone(),
                action: "copy".into(),
            });
            (copy, false)
        }
    };
    if copy.state != ImageState::Available {
        record(pending, &copy, operation, template, finish)?;
    }
    let copy = wait_until_available(provider, region, &copy.id, wait, progress).await?;
    if public && !copy.public {
        provider
            .modify_launch_permission(region, &copy.id, &LaunchPermission::Public, true)
            .await?;
    }
    forget(pending, region, &copy.id);
    Ok((copy, existed))
}

/// `cws ami create-multi`: the master image in the instance's region (made, or found again
/// by name and tags), then copies to the other regions, [`CreateMultiRequest::concurrency`]
/// at a time, skipping regions that already hold a copy (tag `cws:source-ami`). Each region
/// succeeds or fails on its own; the report says which, and running the same request again
/// does only what is missing.
///
/// An error is returned only when the master image cannot be made; per-region failures are in
/// the report (`complete == false`).
pub async fn create_multi(
    env: &ResolveEnv,
    req: &CreateMultiRequest,
    pending: Option<&PendingImages>,
    progress: &dyn Progress,
) -> Result<CreateMultiReport, LifecycleError> {
    let regions = checked_regions(&req.regions)?;
    let provider = env.provider.as_ref();
    let c = &req.create;
    let finish = finish_create_command(c, Some(&regions));
    // The master's record stays until every region is done: if the copies are interrupted,
    // `cws ami status` still shows how to finish.
    let (master, mut warnings) =
        create_or_find(env, c, "create-multi", &finish, pending, progress, true).await?;
    let master_image = provider
        .image(&master.region, &master.ami_id)
        .await?
        .ok_or_else(|| ProviderError::NotFound {
            what: format!("image {}", master.ami_id),
            region: master.region.clone(),
        })?;

    let targets: Vec<String> = regions
        .iter()
        .filter(|r| **r != c.region)
        .cloned()
        .collect();
    let concurrency = req.concurrency.max(1);
    let master_ref = &master_image;
    let finish_ref = finish.as_str();
    let mut results: Vec<(usize, RegionResult)> =
        futures::stream::iter(targets.iter().enumerate().map(|(i, region)| async move {
            let r = copy_once(
                provider,
                master_ref,
                region,
                c.public,
                "create-multi",
                finish_ref,
                &c.wait,
                pending,
                progress,
            )
            .await;
            let row = match r {
                Ok((copy, existed)) => RegionResult {
                    region: region.clone(),
                    outcome: if existed {
                        RegionOutcome::AlreadyPresent
                    } else {
                        RegionOutcome::Copied
                    },
                    ami_id: Some(copy.id),
                    state: Some(copy.state),
                    error: None,
                    error_kind: None,
                },
                Err(e) => {
                    progress.event(&ProgressEvent::Failed {
                        region: region.clone(),
                        error: e.to_string(),
                    });
                    let (ami_id, state) = match &e {
                        LifecycleError::ImageFailed { image, state, .. } => {
                            (Some(image.clone()), Some(*state))
                        }
                        LifecycleError::Timeout { id, .. } => {
                            (Some(id.clone()), Some(ImageState::Pending))
                        }
                        _ => (None, None),
                    };
                    RegionResult {
                        region: region.clone(),
                        outcome: RegionOutcome::Failed,
                        ami_id,
                        state,
                        error_kind: Some(lifecycle_kind(&e)),
                        error: Some(e.to_string()),
                    }
                }
            };
            (i, row)
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);

    let mut rows = vec![RegionResult {
        region: master.region.clone(),
        outcome: RegionOutcome::Source,
        ami_id: Some(master.ami_id.clone()),
        state: Some(master.state),
        error: None,
        error_kind: None,
    }];
    rows.extend(results.into_iter().map(|(_, r)| r));
    let complete = rows.iter().all(|r| r.outcome != RegionOutcome::Failed);
    if complete {
        forget(pending, &master.region, &master.ami_id);
    } else {
        warnings.push(format!(
            "{} of {} regions failed; run `{finish}` again to finish only those",
            rows.iter()
                .filter(|r| r.outcome == RegionOutcome::Failed)
                .count(),
            rows.len()
        ));
    }
    let mapped: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.outcome != RegionOutcome::Failed)
        .filter_map(|r| r.ami_id.clone().map(|id| (r.region.clone(), id)))
        .collect();
    Ok(CreateMultiReport {
        provider: (&env.provider.info()).into(),
        template: c.template.slug.clone(),
        name: c.name.clone(),
        source_region: master.region.clone(),
        ami_config: suggested_ami_config(&c.template, &mapped),
        master,
        regions: rows,
        complete,
        finish: (!complete).then_some(finish),
        warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// Copy

/// What `cws ami copy` asks for.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    /// The image to copy.
    pub image_id: String,
    /// Where it is.
    pub source_region: String,
    /// Where to copy it.
    pub target_region: String,
    /// How long to wait for the copy.
    pub wait: WaitOptions,
}

/// The result of `cws ami copy`.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// The provider used.
    pub provider: ProviderLabel,
    /// The copy's id.
    pub ami_id: String,
    /// The copy's region.
    pub region: String,
    /// Its name (the source's).
    pub name: String,
    /// Its state.
    pub state: ImageState,
    /// The image copied.
    pub source_ami: String,
    /// Where it came from.
    pub source_region: String,
    /// The template it serves, from the source's tags.
    pub template: Option<String>,
    /// True when a copy was already there (nothing was copied or spent).
    pub reused: bool,
    /// The estimate the user agreed to.
    pub estimate: CopyPlan,
}

/// Looks up an image and estimates copying it to `target_region` (size from its snapshots,
/// time and cost from the price book).
pub async fn plan_copy(
    env: &ResolveEnv,
    source_region: &str,
    image_id: &str,
    target_region: &str,
) -> Result<(Image, CopyPlan), LifecycleError> {
    let provider = env.provider.as_ref();
    let source = provider
        .image(source_region, image_id)
        .await?
        .ok_or_else(|| ProviderError::NotFound {
            what: format!("image {image_id} (pass --from REGION if it lives elsewhere)"),
            region: source_region.to_string(),
        })?;
    let size = provider.image_size_gb(&source).await?;
    let estimate = cws_cost::copy_estimate(&env.prices, source_region, target_region, size);
    let plan = CopyPlan {
        source_ami_id: source.id.clone(),
        source_region: source_region.to_string(),
        source_name: source.name.clone(),
        snapshot_gb: size,
        estimated_seconds: estimate.estimated_seconds,
        estimated_cost_usd: estimate.total_cost,
    };
    Ok((source, plan))
}

/// `cws ami copy`: copies an image to another region after asking (with the estimated time
/// and cost), tags the copy with its provenance and waits until it is available. A region
/// that already holds a copy of the image is not copied to again.
pub async fn copy_to_region(
    env: &ResolveEnv,
    req: &CopyRequest,
    consent: &dyn Consent,
    pending: Option<&PendingImages>,
    progress: &dyn Progress,
) -> Result<CopyReport, LifecycleError> {
    for r in [&req.source_region, &req.target_region] {
        cws_regions::lookup(r).map_err(|e| LifecycleError::Invalid(e.to_string()))?;
    }
    if req.source_region == req.target_region {
        return Err(LifecycleError::Invalid(format!(
            "{} is already in {}; pick another --to region",
            req.image_id, req.target_region
        )));
    }
    let provider = env.provider.as_ref();
    let (source, plan) =
        plan_copy(env, &req.source_region, &req.image_id, &req.target_region).await?;
    if source.state != ImageState::Available {
        return Err(LifecycleError::Invalid(format!(
            "{} in {} is {}, not available; wait for it (`cws ami status`) and copy it then",
            source.id, source.region, source.state
        )));
    }
    let existing = existing_copy(provider, &req.target_region, &source).await?;
    if existing.is_none() && !consent.confirm(&copy_question(&plan, &req.target_region)) {
        return Err(LifecycleError::Declined(format!(
            "not copied: {} stays in {} only",
            source.id, source.region
        )));
    }
    let finish = format!(
        "cws ami copy {} --from {} --to {}",
        source.id, source.region, req.target_region
    );
    let (copy, reused) = copy_once(
        provider,
        &source,
        &req.target_region,
        false,
        "copy",
        &finish,
        &req.wait,
        pending,
        progress,
    )
    .await?;
    Ok(CopyReport {
        provider: (&env.provider.info()).into(),
        ami_id: copy.id,
        region: copy.region,
        name: copy.name,
        state: copy.state,
        source_ami: source.id.clone(),
        source_region: source.region.clone(),
        template: source.tags.get(tags::TEMPLATE).cloned(),
        reused,
        estimate: plan,
    })
}

// ---------------------------------------------------------------------------------------------
// Share and info

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
    fn new(
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
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The words for what `share` did to the snapshots.
fn share_snapshot_detail(
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
             image but not copy it; name them with --account if they need to"
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
pub async fn share(env: &ResolveEnv, req: &ShareRequest) -> Result<ShareReport, LifecycleError> {
    if req.permissions.is_empty() {
        return Err(LifecycleError::Invalid(
            "say who to share with: --account ID (repeatable), --org-arn ARN or --public".into(),
        ));
    }
    let provider = env.provider.as_ref();
    let image = provider
        .image(&req.region, &req.image_id)
        .await?
        .ok_or_else(|| ProviderError::NotFound {
            what: format!("image {}", req.image_id),
            region: req.region.clone(),
        })?;
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

// ---------------------------------------------------------------------------------------------
// Deregister

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

/// The question asked before deregistering.
pub fn deregister_question(image: &Image, delete_snapshots: bool) -> String {
    let snaps = if image.snapshot_ids.is_empty() {
        String::new()
    } else if delete_snapshots {
        format!(
            " Its snapshots ({}) are deleted too.",
            image.snapshot_ids.join(", ")
        )
    } else {
        format!(
            " Its snapshots ({}) are kept (pass --delete-snapshots to delete them too).",
            image.snapshot_ids.join(", ")
        )
    };
    format!(
        "Deregister {} ({}) in {}? New launches from it will fail and this cannot be undone.{snaps} Continue?",
        image.id, image.name, image.region
    )
}

/// How often a snapshot deletion refused as "in use" right after deregistering its image is
/// tried again, and the first pause (doubling). EC2 is eventually consistent: for a moment
/// after `DeregisterImage` the snapshot can still count as used by the image.
const IN_USE_RETRIES: u32 = 3;
const IN_USE_FIRST_PAUSE: Duration = Duration::from_secs(1);

/// Deletes a snapshot whose image was just deregistered, riding out a briefly stale
/// "in use" answer.
async fn delete_released_snapshot(
    provider: &dyn CloudProvider,
    region: &str,
    snapshot_id: &str,
) -> Result<(), ProviderError> {
    let mut pause = IN_USE_FIRST_PAUSE;
    let mut retries = 0;
    loop {
        match provider.delete_snapshot(region, snapshot_id).await {
            Err(ProviderError::Conflict { .. }) if retries < IN_USE_RETRIES => {
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
    if !consent.confirm(&deregister_question(&image, req.delete_snapshots)) {
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
            "kept, as EC2 does ({snapshots_monthly_cost}/month); pass --delete-snapshots when \
             deregistering to delete them with the image"
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

// ---------------------------------------------------------------------------------------------
// Status

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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, region: &str) -> PendingImage {
        PendingImage {
            image_id: id.into(),
            region: region.into(),
            name: "n".into(),
            operation: "create".into(),
            template: None,
            started_at: now_rfc3339(),
            finish: "cws ami create t box --name n".into(),
            cleanup: cleanup_command(id, region),
        }
    }

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("python-research"), "python-research");
        assert_eq!(shell_quote("My Setup"), "'My Setup'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn share_details_say_what_happened_and_that_orgs_get_no_snapshots() {
        let mut image = Image {
            id: "ami-00000001".into(),
            region: "us-east-1".into(),
            name: "n".into(),
            owner_id: "123456789012".into(),
            architecture: Architecture::X86_64,
            state: ImageState::Available,
            creation_date: now_rfc3339(),
            deprecation_time: None,
            description: None,
            tags: BTreeMap::new(),
            product_codes: vec![],
            snapshot_ids: vec!["snap-00000001".into(), "snap-00000002".into()],
            root_volume_gb: Some(8),
            public: false,
        };
        let account = LaunchPermission::Account("111122223333".into());
        let org = LaunchPermission::Organization(
            "arn:aws:organizations::123456789012:organization/o-abc".into(),
        );
        let all_ok = SnapshotAction::new(
            &image.snapshot_ids,
            image
                .snapshot_ids
                .iter()
                .map(|s| (s.clone(), Ok(())))
                .collect(),
            String::new(),
        );
        assert!(all_ok.done);
        let text = share_snapshot_detail(&image, std::slice::from_ref(&account), false, &all_ok);
        assert!(
            text.starts_with(
                "create-volume permission granted to account 111122223333 on 2 snapshots"
            ),
            "{text}"
        );
        assert!(!text.contains("organization"), "{text}");

        let with_org =
            share_snapshot_detail(&image, &[account.clone(), org.clone()], true, &all_ok);
        assert!(
            with_org.contains("revoked from account 111122223333"),
            "{with_org}"
        );
        assert!(
            with_org.contains("cannot share snapshots with an organization"),
            "{with_org}"
        );
        let org_only = SnapshotAction::new(&image.snapshot_ids, vec![], String::new());
        let org_text = share_snapshot_detail(&image, std::slice::from_ref(&org), false, &org_only);
        assert!(
            org_text.starts_with("EC2 cannot share snapshots"),
            "{org_text}"
        );

        let half = SnapshotAction::new(
            &image.snapshot_ids,
            vec![
                ("snap-00000001".into(), Ok(())),
                (
                    "snap-00000002".into(),
                    Err(ProviderError::Throttled {
                        message: "slow down".into(),
                    }),
                ),
            ],
            String::new(),
        );
        assert!(!half.done);
        assert_eq!(half.changed, ["snap-00000001"]);
        assert_eq!(half.failed[0].kind, "throttled");
        let text = share_snapshot_detail(&image, std::slice::from_ref(&account), false, &half);
        assert!(text.contains("on 1 snapshot,"), "{text}");
        assert!(
            text.contains("1 snapshot could not be changed (snap-00000002: throttled"),
            "{text}"
        );

        image.snapshot_ids.clear();
        let none = share_snapshot_detail(&image, &[account], false, &org_only);
        assert!(none.contains("no snapshots"), "{none}");
    }

    #[test]
    fn pending_records_add_replace_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let p = PendingImages::open(dir.path());
        assert!(p.list().unwrap().is_empty());
        p.add(entry("ami-00000001", "us-east-1")).unwrap();
        p.add(entry("ami-00000002", "us-west-2")).unwrap();
        let mut again = entry("ami-00000001", "us-east-1");
        again.name = "renamed".into();
        p.add(again).unwrap();
        let list = p.list().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].name, "renamed");
        assert!(p.remove("us-east-1", "ami-00000001").unwrap());
        assert!(!p.remove("us-east-1", "ami-00000001").unwrap());
        assert!(p.remove("us-west-2", "ami-00000002").unwrap());
        // An empty record leaves no file behind, and no temporary files either.
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn concurrent_writers_lose_no_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pending-images.json");
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let p = PendingImages::at(&path);
                std::thread::spawn(move || {
                    for i in 0..10 {
                        p.add(entry(&format!("ami-{t:04}{i:04}"), "us-east-1"))
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(PendingImages::at(&path).list().unwrap().len(), 80);
    }

    #[test]
    fn a_corrupt_record_is_an_error_naming_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = PendingImages::open(dir.path());
        fs::write(p.path(), b"{nope").unwrap();
        let err = p.list().unwrap_err().to_string();
        assert!(err.contains("pending-images.json"), "{err}");
        assert!(err.contains("move it aside"), "{err}");
        // Writing refuses too, rather than replacing what it cannot read.
        assert!(p.add(entry("ami-00000001", "us-east-1")).is_err());
    }
}
