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
//!   [`PendingImages`] (`$CWS_HOME/pending-images.json`, read only if it is a regular file of
//!   at most [`MAX_PENDING_BYTES`], 16 MiB); the record goes when the image is available. If
//!   the caller stops waiting (Ctrl-C drops the future), the record stays and
//!   [`pending_status`] tells the user how to finish or clean up.
//! - **Waiting is bounded and honest.** Waits poll with backoff up to a total limit
//!   ([`WaitOptions`], 30 minutes by default), stop at once when an image fails, and report
//!   progress through a [`Progress`] sink the caller chooses (spinners on a terminal, nothing
//!   under JSON). Once the image (or instance) is visible and pending, a provider with a
//!   waiter of its own takes over the rest of the wait: on AWS the SDK's `ImageAvailable` and
//!   `InstanceRunning` waiters ([`CloudProvider::wait_image_available`]); LocalCloud has none
//!   and is polled.
use std::path::PathBuf;

use cws_provider::wait::WaitError;
use cws_provider::{ImageState, InstanceState, ProviderError};

mod copy;
mod create;
mod deregister;
mod multi;
mod pending;
mod share;
mod status;
#[cfg(test)]
mod tests;

pub use copy::*;
pub use create::*;
pub use cws_provider::wait::{DEFAULT_TIMEOUT, NoProgress, Progress, ProgressEvent, WaitOptions};
pub use deregister::*;
pub use multi::*;
pub use pending::*;
pub use share::*;
pub use status::*;

/// Tag naming the instance an image was made from; with the name and `cws:template` it is
/// how a re-run recognises the image it made before.
pub const SOURCE_INSTANCE_TAG: &str = "cws:source-instance";

/// How many cross-region copies run at once in [`create_multi`]. EC2 allows a limited number
/// of concurrent copies per destination region and account; four keeps well inside it while
/// still spreading an image to a handful of regions in one copy's time.
pub const COPY_CONCURRENCY: usize = 4;

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
    #[error("instance {name} ({id}) in {region} is {state}, not running")]
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
         instance"
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
    #[error("{what} {id} in {region} is still {state} after {waited_s} s")]
    Timeout {
        /// What was waited for.
        what: cws_provider::wait::WaitSubject,
        /// The resource id.
        id: String,
        /// Its region.
        region: String,
        /// Its last seen state.
        state: String,
        /// How long cws waited.
        waited_s: u64,
    },
    /// An image ended up failed, invalid or deregistered while cws waited for it.
    #[error("image {image} in {region} is {state}")]
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
         {source_instance}"
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
    /// The pending-images file was refused before it was parsed: larger than
    /// [`MAX_PENDING_BYTES`], or not a regular file (a directory, a device, a FIFO). The
    /// [`ReadError`](cws_util::fs::ReadError) carries the path and, for a file too large, the
    /// limit. The file is left untouched, and nothing is recorded until it is moved aside.
    #[error("pending-images file {0}")]
    PendingFileRefused(cws_util::fs::ReadError),
}

impl From<WaitError> for LifecycleError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Provider(p) => LifecycleError::Provider(p),
            WaitError::Timeout {
                what,
                id,
                region,
                state,
                waited_s,
            } => LifecycleError::Timeout {
                what,
                id,
                region,
                state,
                waited_s,
            },
            WaitError::ImageFailed {
                image,
                region,
                state,
            } => LifecycleError::ImageFailed {
                image,
                region,
                state,
            },
            WaitError::InstanceGone {
                name,
                id,
                region,
                state,
            } => LifecycleError::InstanceGone {
                name,
                id,
                region,
                state,
            },
            other => LifecycleError::Provider(ProviderError::generic("wait", other)),
        }
    }
}

impl LifecycleError {
    /// Whether the user's input (not the cloud) is at fault: the CLI exits 2 for these.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            LifecycleError::Invalid(_)
            | LifecycleError::InstanceNotRunning { .. }
            | LifecycleError::InstanceGone { .. }
            | LifecycleError::NameTaken { .. } => true,
            LifecycleError::Provider(p) => p.is_caller_error(),
            _ => false,
        }
    }
}
