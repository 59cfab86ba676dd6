//! Consent: what cws asks before it spends money or widens access, as typed requests.
//!
//! A service that is about to copy an image, share one, make images in several regions,
//! deregister an image or terminate an instance builds a
//! [`ConsentRequest`] carrying the facts (what, where, how long, how much, what the user
//! should weigh first) and asks a [`Consent`] the caller supplies. The CLI words the question
//! and asks on a terminal; the REST API answers from the request's `confirm` field; an embedder
//! decides in its own UI. Nothing here phrases a question.

use cws_cost::CopyEstimate;
use cws_provider::{Image, Instance, LaunchPermission};

use crate::report::CopyPlan;

/// Something that needs the user's agreement before it happens.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum ConsentRequest {
    /// Copy an image across regions: it takes time and costs transfer and storage.
    Copy {
        /// The copy: source, size, time and cost.
        plan: CopyPlan,
        /// Where the copy goes.
        target_region: String,
        /// What the user should weigh first (a first launch slower by copy, a deprecated
        /// source, ...).
        warnings: Vec<String>,
    },
    /// `--prefer-script` asked for script provisioning, but an image is available: agreeing
    /// continues with the script; declining (the default) launches the image.
    PreferScript {
        /// The available image.
        ami_id: String,
        /// The tier that found it.
        tier: crate::TierId,
        /// Seconds to a usable workstation from the image.
        image_seconds: u64,
        /// Seconds to a usable workstation by script.
        script_seconds: u64,
    },
    /// A workstation's provisioning script failed, and the template's strategy
    /// (`ami_fallback`) falls back to an image: launch the same workstation from `ami_id`
    /// (billed as a new instance) and terminate the failed one (its disks are deleted).
    ReplaceFailedScript {
        /// The instance whose script failed.
        instance: Instance,
        /// How the script failed, e.g. "failed at step `pip packages` (exit 1)".
        outcome: String,
        /// The image the replacement launches from (before any copy into the region).
        ami_id: String,
        /// How that image was found (e.g. `direct_mapping`, `cross_region`).
        method: String,
        /// Seconds until the replacement is usable.
        launch_seconds: Option<u64>,
        /// The copy into the region the image needs first (asked about next, on its own).
        copy: Option<CopyPlan>,
    },
    /// Deregister an image (cannot be undone).
    Deregister {
        /// The image.
        image: Image,
        /// Whether its snapshots are deleted too.
        delete_snapshots: bool,
    },
    /// Terminate an instance (cannot be undone; its root volume is deleted).
    Terminate {
        /// The instance.
        instance: Instance,
    },
    /// Start a stopped instance (it is billed again while it runs), e.g. to image it.
    StartInstance {
        /// The instance.
        instance: Instance,
        /// Why it is started.
        purpose: String,
    },
    /// Widen who can launch an image (and, for accounts and everyone, copy its snapshots).
    Share {
        /// The image, or `None` when it is still to be made (an image created public).
        image_id: Option<String>,
        /// Its name.
        name: String,
        /// Its region.
        region: String,
        /// Who gains access.
        permissions: Vec<LaunchPermission>,
        /// The snapshots that become readable too (empty for an organization, or an image
        /// still to be made).
        snapshot_ids: Vec<String>,
    },
    /// Make an image from an instance and copy it to other regions: the copies take time and
    /// cost transfer and storage.
    CreateMulti {
        /// The template the image serves.
        template: String,
        /// The image name.
        name: String,
        /// The instance it is made from.
        instance: String,
        /// Where the image is made.
        source_region: String,
        /// One estimate per region the image is copied to, in order.
        copies: Vec<CopyEstimate>,
        /// Whether every image is made public as well.
        public: bool,
        /// Whether the sizes behind the estimates are guesses (the image does not exist yet
        /// and the size of the image the instance came from is unknown).
        size_guessed: bool,
        /// The image an earlier run already made (a re-run): it is not made again, and
        /// `copies` lists only the regions still without a copy of it.
        existing_image: Option<String>,
        /// The regions that already hold a copy of `existing_image` (not copied again; made
        /// public too when `public`).
        already_copied: Vec<String>,
    },
}

/// Answers [`ConsentRequest`]s: `true` only when the user clearly agreed.
pub trait Consent: Send + Sync {
    /// Asks; `false` unless the user clearly said yes.
    fn confirm(&self, request: &ConsentRequest) -> bool;
}

/// Consent that always says yes (`--yes`, or a request that carried `"confirm": true`).
#[derive(Debug, Clone, Copy)]
pub struct AssumeYes;

impl Consent for AssumeYes {
    fn confirm(&self, _request: &ConsentRequest) -> bool {
        true
    }
}

/// Consent that always says no (no terminal and no `--yes`).
#[derive(Debug, Clone, Copy)]
pub struct AssumeNo;

impl Consent for AssumeNo {
    fn confirm(&self, _request: &ConsentRequest) -> bool {
        false
    }
}
