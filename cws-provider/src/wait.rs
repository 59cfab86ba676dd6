//! The wait engine: poll a new image or instance until it is ready, with backoff, a total
//! limit and progress, handing over to a backend's own waiter once it can.
//!
//! Used by the lifecycle services and by launches that wait for a copy. Uses `tokio::time`,
//! so tests with a paused clock run instantly.

use std::time::Duration;

use serde::Serialize;

use crate::error::ProviderError;
use crate::ext::{ImageCatalogExt, InstancesExt};
use crate::model::{Image, ImageState, Instance, InstanceState, WaitOutcome};
use crate::traits::{ImageAdmin, ImageCatalog, Instances};

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

/// What a wait is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaitSubject {
    /// An image (created or copied).
    Image,
    /// An instance.
    Instance,
    /// An instance's provisioning script (its outcome on the console).
    Provisioning,
}

impl std::fmt::Display for WaitSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WaitSubject::Image => "image",
            WaitSubject::Instance => "instance",
            WaitSubject::Provisioning => "the provisioning of instance",
        })
    }
}

/// How a wait failed. The resource named is still there unless the variant says otherwise.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The provider failed (after the transient errors a wait rides out).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The time limit passed; the resource is still there and still being worked on.
    #[error("{what} {id} in {region} is still {state} after {waited_s} s")]
    Timeout {
        /// What was waited for.
        what: WaitSubject,
        /// The resource id.
        id: String,
        /// Its region.
        region: String,
        /// Its last seen state.
        state: String,
        /// How long the wait lasted, in seconds.
        waited_s: u64,
    },
    /// The image ended up failed, invalid or deregistered.
    #[error("image {image} in {region} is {state}")]
    ImageFailed {
        /// The image id.
        image: String,
        /// Its region.
        region: String,
        /// Its state.
        state: ImageState,
    },
    /// The instance is terminated or terminating: it will never run again.
    #[error("instance {name} ({id}) in {region} is {state}")]
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
}

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
    /// An instance runs; its provisioning script has not reported an outcome yet.
    WaitingForProvisioning {
        /// Region.
        region: String,
        /// The instance.
        instance_id: String,
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
            | ProgressEvent::WaitingForProvisioning { region, .. }
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
/// and gives up after `wait.timeout` with [`WaitError::Timeout`].
///
/// It polls until the image is visible and pending, then hands the rest of the wait to the
/// provider's own waiter when it has one ([`ImageAdmin::wait_image_available`]: the SDK's
/// `ImageAvailable` waiter on AWS), reporting progress every few seconds meanwhile; without
/// one (LocalCloud), or if that waiter errs, it keeps polling.
///
/// Uses `tokio::time`, so tests with a paused clock run instantly.
pub async fn image_available(
    provider: &(impl ImageCatalog + ImageAdmin + ?Sized),
    region: &str,
    image_id: &str,
    wait: &WaitOptions,
    progress: &dyn Progress,
) -> Result<Image, WaitError> {
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
                        return Err(WaitError::ImageFailed {
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
                                    return Err(WaitError::ImageFailed {
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
        next_poll(start, wait, &mut delay, |waited_s| WaitError::Timeout {
            what: WaitSubject::Image,
            id: image_id.to_string(),
            region: region.to_string(),
            state: last_state.clone(),
            waited_s,
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
    timeout: impl FnOnce(u64) -> WaitError,
) -> Result<(), WaitError> {
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
/// will be, so that fails at once ([`WaitError::InstanceGone`]). Like
/// [`image_available`], the wait goes to the provider's own waiter
/// ([`Instances::wait_instance_running`]) once the instance has been seen, when it has one.
pub async fn instance_running(
    provider: &(impl Instances + ?Sized),
    region: &str,
    instance_id: &str,
    wait: &WaitOptions,
    progress: &dyn Progress,
) -> Result<Instance, WaitError> {
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
                        return Err(WaitError::InstanceGone {
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
                                    return Err(WaitError::InstanceGone {
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
        next_poll(start, wait, &mut delay, |waited_s| WaitError::Timeout {
            what: WaitSubject::Instance,
            id: instance_id.to_string(),
            region: region.to_string(),
            state: last_state.clone(),
            waited_s,
        })
        .await?;
    }
}
/// Waits until a running instance's console carries an outcome, as `outcome` reads it from
/// the console text (the provisioning script's last line), for at most `wait.timeout`
/// ([`WaitError::Timeout`] about [`WaitSubject::Provisioning`]). An instance that goes away
/// first fails the wait ([`WaitError::InstanceGone`]); one that stops is waited for until the
/// limit, the timeout naming its state. Transient errors are ridden out like the other waits.
pub async fn console_outcome<T>(
    provider: &(impl Instances + ?Sized),
    region: &str,
    instance_id: &str,
    wait: &WaitOptions,
    progress: &dyn Progress,
    outcome: impl Fn(&str) -> Option<T>,
) -> Result<T, WaitError> {
    let start = tokio::time::Instant::now();
    let mut delay = wait.first_poll;
    let mut transient = 0u32;
    let mut last_state = "running, no outcome on its console yet".to_string();
    loop {
        match provider.console_output(region, instance_id).await {
            Ok(console) => {
                transient = 0;
                if let Some(found) = console.as_deref().and_then(&outcome) {
                    return Ok(found);
                }
                // No outcome yet: is the instance still there to report one?
                let i = provider.require_instance(region, instance_id).await?;
                match i.state {
                    InstanceState::ShuttingDown | InstanceState::Terminated => {
                        return Err(WaitError::InstanceGone {
                            name: i.name,
                            id: i.id,
                            region: region.to_string(),
                            state: i.state,
                        });
                    }
                    InstanceState::Running | InstanceState::Pending => {}
                    state => last_state = format!("{state}, no outcome on its console"),
                }
                progress.event(&ProgressEvent::WaitingForProvisioning {
                    region: region.to_string(),
                    instance_id: instance_id.to_string(),
                    elapsed_s: secs(start.elapsed()),
                });
            }
            Err(e) if e.is_transient() && transient < TRANSIENT_POLLS_TOLERATED => {
                transient += 1;
            }
            Err(e) => return Err(e.into()),
        }
        next_poll(start, wait, &mut delay, |waited_s| WaitError::Timeout {
            what: WaitSubject::Provisioning,
            id: instance_id.to_string(),
            region: region.to_string(),
            state: last_state.clone(),
            waited_s,
        })
        .await?;
    }
}
