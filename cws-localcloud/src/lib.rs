//! LocalCloud: a persisted simulation of EC2 for offline use, demos and tests.
//!
//! LocalCloud is the default provider so that cws works without an AWS account: templates
//! resolve, copies and launches happen, and instances can be listed, stopped and terminated —
//! all against a simulated account ([`LOCAL_ACCOUNT_ID`]). Nothing it does touches real cloud
//! resources, and [`ImageCatalog::info`] says so (`simulated: true`), so every cws output can
//! tell the user.
//!
//! # Semantics
//!
//! The simulation follows EC2 where cws depends on it:
//!
//! - searches need trusted owners (`self`, `amazon`, `aws-marketplace` or a 12-digit account);
//!   an image is visible when it is owned by the simulated account, public, or shared with it;
//! - deprecated images are left out of searches unless asked for, but are still found by id;
//! - unknown ids are absent from describe results; malformed ids and unknown regions are
//!   [`ProviderError::InvalidInput`];
//! - an instance type must fit the image architecture (Graviton families such as `m7g`,
//!   `c7gn` or `r6gd` are arm64), and names are unique among live instances in a region (a
//!   cws rule, not an EC2 one);
//! - image names are unique per owner and region, as EC2 enforces for `CopyImage` and
//!   `CreateImage`;
//! - terminated instances are kept but left out of `describe_instances` unless
//!   `include_terminated` is set (also when asked for by id); deregistered images disappear
//!   (their snapshots stay, as in EC2);
//! - only the owner may change or list an image's launch permissions or deregister it
//!   ([`ProviderError::PermissionDenied`] otherwise);
//! - a snapshot belongs to the owner of the image that uses it (a snapshot no image uses any
//!   more was left by a deregistration, which only the owner can make, so it is the
//!   simulated account's); only that owner may change its create-volume permissions (accounts
//!   or everyone — EC2 cannot share a snapshot with an organization) or delete it, and
//!   deleting it is a [`ProviderError::Conflict`] while an image still uses it.
//!
//! Where a real cloud takes minutes, the simulation completes at once: copies and new images
//! are `available` and new instances `running` as soon as the call returns (pending states
//! may come later). LocalCloud also follows the cws contract of
//! [`ImageCatalog::describe_images`] by leaving deprecated images out of searches unless
//! `include_deprecated` is set, even for images the account owns (EC2 would show those).
//!
//! # Persistence
//!
//! [`LocalCloud::open`] keeps the state in `<home>/localcloud/state.json`. Every mutation
//! takes an exclusive lock on `state.lock`, re-reads the state if another process changed it,
//! applies the change and replaces the file atomically, so concurrent `cws` processes never
//! lose each other's writes and a crash never leaves a half-written file. Reads take a shared
//! lock and reuse the parsed state while the file is unchanged. A corrupt state file is an
//! error that names the file and how to recover — it is never silently replaced.
//!
//! The state file is read only if it is a regular file of at most [`MAX_STATE_BYTES`]
//! (256 MiB; the seeded state is about 400 KB and each image adds well under 1 KB). A larger
//! file, or a path that is not a regular file, is refused before it is read: the
//! [`ProviderError::Generic`] returned then has a [`StateFileRefused`] as its source, which
//! carries the path and the limit.

mod seed;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use cws_template::Architecture;

use cws_provider::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, ImageState, Instance, InstanceFilter,
    InstanceState, LaunchPermission, MarketplaceProduct, MarketplaceQuery, ProviderInfo,
    RunInstanceRequest, Snapshot,
};
use cws_provider::{ImageAdmin, ImageCatalog, Instances};
use cws_provider::{ProviderError, ProviderResult};

use store::{Files, Loaded, RegionState, Stamp, State, StoredImage, StoredInstance};

pub use seed::{MARKETPLACE_REGIONS, SEARCH_IMAGE_REGIONS};
pub use store::StateFileRefused;

/// The largest state file LocalCloud reads: 256 MiB. The state grows with the images,
/// snapshots and instances it simulates (the seeded state is about 400 KB; 100 000 extra
/// images take some 60 MB), so the limit is generous; it exists so that a wrong file in its
/// place (a device, a runaway file) is refused instead of read into memory.
/// Text that, on a line of a template's `post_install` or `user_data`, makes LocalCloud's
/// simulated provisioning fail in that step (tests use it to exercise failure handling).
/// Without it, simulated provisioning succeeds at once.
pub const SIMULATE_PROVISIONING_FAILURE: &str = "cws-localcloud:simulate-provisioning-failure";

/// The console LocalCloud shows for an instance: a few boot lines and, when the user data is
/// a cws provisioning script, the outcome line that script prints as its last words (success,
/// or failure in the step holding [`SIMULATE_PROVISIONING_FAILURE`]). Nothing runs.
fn simulated_console(user_data: Option<&str>) -> String {
    let mut console = String::from(
        "[    0.000000] LocalCloud simulated console: no machine booted, no script ran\n\
         [    4.210000] cloud-init[812]: Cloud-init v. 24.1 running 'modules:final'\n",
    );
    let Some(script) = user_data else {
        return console;
    };
    let ok_prefix = format!("{} ok ", cws_template::OUTCOME_MARKER);
    // The script's own success line names the template: `... ok template=S version=V"`.
    let Some(names) = script.lines().find_map(|l| {
        let (_, rest) = l.split_once(&ok_prefix)?;
        Some(rest.trim_end().trim_end_matches('"').to_string())
    }) else {
        return console;
    };
    let mut step = "start".to_string();
    let mut failed_in = None;
    for line in script.lines() {
        if let Some(title) = line
            .strip_prefix("# --- ")
            .and_then(|t| t.strip_suffix(" ---"))
        {
            step = title.to_string();
        } else if line.contains(SIMULATE_PROVISIONING_FAILURE) {
            failed_in = Some(step.clone());
            break;
        }
    }
    let outcome = match failed_in {
        Some(step) => format!(
            "{} failed exit=1 {names} step={step}",
            cws_template::OUTCOME_MARKER
        ),
        None => format!("{} ok {names}", cws_template::OUTCOME_MARKER),
    };
    console.push_str(&format!("[   42.000000] cloud-init[812]: {outcome}\n"));
    console
}

pub const MAX_STATE_BYTES: u64 = 256 * 1024 * 1024;

/// The simulated account LocalCloud acts as (`self` in owner filters).
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";
/// Canonical's account, owner of the Ubuntu images.
pub const CANONICAL_OWNER: &str = "099720109477";
/// Amazon's account, owner of the Amazon Linux images (alias `amazon`).
pub const AMAZON_OWNER: &str = "137112412989";
/// The Debian project's account, owner of the Debian images.
pub const DEBIAN_OWNER: &str = "136693071363";
/// Owner of AWS Marketplace images (alias `aws-marketplace`).
pub const MARKETPLACE_OWNER: &str = "679593333241";

/// A simulated EC2, in memory or persisted under a cws home directory.
///
/// Cheap to share: wrap it in an `Arc` and hand it to as many tasks as needed. In memory,
/// reads run in parallel and writes are serialised; persisted, calls are serialised (a read
/// may have to reload the file). Each call runs to completion without yielding: it is an in-memory
/// operation plus, when persisted, a `stat` per read and one small file write per mutation
/// (the seeded state is about 400 KB), too little to be worth moving to a blocking thread.
pub struct LocalCloud {
    files: Option<Files>,
    inner: RwLock<Inner>,
    /// How often the state's write lock was taken (tests check that reads do not).
    #[cfg(test)]
    write_locks: std::sync::atomic::AtomicU64,
}

struct Inner {
    state: State,
    /// Which version of the state file `state` came from (persisted mode only).
    stamp: Option<Stamp>,
}

impl std::fmt::Debug for LocalCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCloud")
            .field("state_path", &self.state_path())
            .finish_non_exhaustive()
    }
}

impl LocalCloud {
    /// Opens the persisted cloud under `home` (state in `home/localcloud/state.json`), seeding
    /// it on first use. Seeding happens under the exclusive lock, so processes opening a new
    /// home at the same moment seed it once.
    pub fn open(home: &Path) -> ProviderResult<LocalCloud> {
        let files = Files::open(home)?;
        let (state, stamp) = files.exclusive(|| match files.load(None)? {
            Loaded::State(state, stamp) => Ok((*state, stamp)),
            Loaded::Missing | Loaded::Unchanged => {
                let state = seed::seeded_state();
                let stamp = files.save(&state)?;
                Ok((state, stamp))
            }
        })?;
        Ok(LocalCloud {
            files: Some(files),
            inner: RwLock::new(Inner {
                state,
                stamp: Some(stamp),
            }),
            #[cfg(test)]
            write_locks: Default::default(),
        })
    }

    /// A seeded cloud that lives only in memory (tests, demos, `--provider local` without a
    /// home).
    pub fn in_memory() -> LocalCloud {
        LocalCloud::from_state(seed::seeded_state())
    }

    /// A cloud with nothing in it, in memory: for tests and benchmarks that insert exactly
    /// what they need.
    pub fn empty() -> LocalCloud {
        LocalCloud::from_state(State::default())
    }

    fn from_state(state: State) -> LocalCloud {
        LocalCloud {
            files: None,
            inner: RwLock::new(Inner { state, stamp: None }),
            #[cfg(test)]
            write_locks: Default::default(),
        }
    }

    /// Adds an image (test and benchmark setup) together with its snapshot of `snapshot_gb`
    /// GiB. When `image.snapshot_ids` is empty a snapshot id is generated; `root_volume_gb`
    /// defaults to the snapshot size. An id already in use is a [`ProviderError::Conflict`].
    pub fn insert_image(&self, image: Image, snapshot_gb: u32) -> ProviderResult<()> {
        self.insert_images([(image, snapshot_gb)])
    }

    /// Adds many images in one write (one file replacement when persisted), as
    /// [`insert_image`](Self::insert_image) does for one. Either all are added or none.
    pub fn insert_images(
        &self,
        images: impl IntoIterator<Item = (Image, u32)>,
    ) -> ProviderResult<()> {
        let images: Vec<(Image, u32)> = images.into_iter().collect();
        let mut seen = BTreeSet::new();
        for (image, _) in &images {
            check_region(&image.region)?;
            check_image_id(&image.id)?;
            if !seen.insert(image.id.as_str()) {
                return Err(ProviderError::Conflict {
                    message: format!("image id {} is given twice", image.id),
                });
            }
        }
        self.write(|state| {
            for (image, _) in &images {
                if let Some(rs) = state.regions.get(&image.region)
                    && rs.images.contains_key(image.id.as_str())
                {
                    return Err(ProviderError::Conflict {
                        message: format!(
                            "image {} already exists in {}; pick another id",
                            image.id, image.region
                        ),
                    });
                }
            }
            for (image, gb) in images {
                let region = image.region.clone();
                seed::add_image(state.region_mut(&region), image, gb);
            }
            Ok(())
        })
    }

    /// Adds (or replaces, by product id) a Marketplace product.
    pub fn insert_marketplace_product(&self, product: MarketplaceProduct) -> ProviderResult<()> {
        self.write(|state| {
            state
                .marketplace
                .retain(|p| p.product_id != product.product_id);
            state.marketplace.push(product);
            Ok(())
        })
    }

    /// The state file, or `None` for an in-memory cloud.
    pub fn state_path(&self) -> Option<&Path> {
        self.files.as_ref().map(|f| f.state_path.as_path())
    }

    /// How many images exist across all regions and owners (including ones not visible to
    /// the simulated account). A read error counts as zero.
    pub fn image_count(&self) -> usize {
        self.read(|s| Ok(s.image_count())).unwrap_or(0)
    }

    /// Who may create volumes from one of the account's snapshots (EC2's
    /// `DescribeSnapshotAttribute` for `createVolumePermission`): granted accounts, and
    /// [`LaunchPermission::Public`] when it is shared with everyone.
    ///
    /// Not on the trait, because cws only ever grants and revokes; tests and tools that
    /// inspect the simulation read it back here. Like EC2, only the owner may ask
    /// ([`ProviderError::PermissionDenied`] otherwise).
    pub fn create_volume_permissions(
        &self,
        region: &str,
        snapshot_id: &str,
    ) -> ProviderResult<Vec<LaunchPermission>> {
        check_region(region)?;
        check_snapshot_id(snapshot_id)?;
        self.read(|state| {
            let rs = own_snapshot(state, region, snapshot_id, "ec2:DescribeSnapshotAttribute")?;
            Ok(rs
                .snapshot_permissions
                .get(snapshot_id)
                .cloned()
                .unwrap_or_default())
        })
    }

    fn lock_inner(&self) -> RwLockWriteGuard<'_, Inner> {
        #[cfg(test)]
        self.write_locks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A panic while holding the lock cannot leave the state half-mutated in a way later
        // calls would trip over (mutations validate before changing anything), so a poisoned
        // lock is still usable.
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn share_inner(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings `inner` up to date with the file. Call with a file lock held.
    fn refresh(files: &Files, inner: &mut Inner) -> ProviderResult<()> {
        match files.load(inner.stamp.as_ref())? {
            Loaded::Unchanged => {}
            Loaded::State(state, stamp) => {
                inner.state = *state;
                inner.stamp = Some(stamp);
            }
            Loaded::Missing => {
                // Someone removed the state file: start again from the deterministic seed;
                // the next mutation writes it back.
                inner.state = seed::seeded_state();
                inner.stamp = None;
            }
        }
        Ok(())
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> ProviderResult<R>) -> ProviderResult<R> {
        match &self.files {
            // In memory nothing changes behind our back: readers share the state.
            None => f(&self.share_inner().state),
            // Persisted, readers share the state while the file is the one it came from
            // (one `stat`); only a reload, after another process wrote, takes the write lock.
            Some(files) => {
                {
                    let inner = self.share_inner();
                    // The in-memory state is the file's version `inner.stamp`; reading it needs
                    // no file lock once that is checked.
                    if files.shared(|| files.is_current(inner.stamp.as_ref()))? {
                        return f(&inner.state);
                    }
                }
                let mut inner = self.lock_inner();
                files.shared(|| {
                    Self::refresh(files, &mut inner)?;
                    f(&inner.state)
                })
            }
        }
    }

    fn write<R>(&self, f: impl FnOnce(&mut State) -> ProviderResult<R>) -> ProviderResult<R> {
        let mut inner = self.lock_inner();
        match &self.files {
            None => f(&mut inner.state),
            Some(files) => files.exclusive(|| {
                Self::refresh(files, &mut inner)?;
                match f(&mut inner.state) {
                    Ok(r) => match files.save(&inner.state) {
                        Ok(stamp) => {
                            inner.stamp = Some(stamp);
                            Ok(r)
                        }
                        Err(e) => {
                            // Memory is ahead of disk: forget the stamp so the next call
                            // re-reads what is really persisted.
                            inner.stamp = None;
                            Err(e)
                        }
                    },
                    Err(e) => {
                        inner.stamp = None;
                        Err(e)
                    }
                }
            }),
        }
    }
}

/// The architecture an instance type runs, from its family: Graviton families carry a `g`
/// right after the generation digit (`t4g`, `m7g`, `c7gn`, `r6gd`, `g5g`, `im4gn`), plus the
/// first-generation `a1`. `None` when the string is not shaped like `family.size`.
pub fn instance_type_architecture(instance_type: &str) -> Option<Architecture> {
    let (family, size) = instance_type.split_once('.')?;
    if family.is_empty() || size.is_empty() || !family.is_ascii() {
        return None;
    }
    if family == "a1" {
        return Some(Architecture::Arm64);
    }
    let digit = family.find(|c: char| c.is_ascii_digit())?;
    if digit == 0 {
        return None;
    }
    let suffix = family[digit..].trim_start_matches(|c: char| c.is_ascii_digit());
    Some(if suffix.starts_with('g') {
        Architecture::Arm64
    } else {
        Architecture::X86_64
    })
}

fn is_hex_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Whether `id` is shaped like an AMI id (`ami-` + 8 or 17 lowercase hex digits).
pub(crate) fn is_image_id(id: &str) -> bool {
    is_hex_id(id, "ami")
}

fn check_image_id(id: &str) -> ProviderResult<()> {
    if is_image_id(id) {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{id}` is not an AMI id; AMI ids look like `ami-` followed by 8 or 17 hex digits"
        )))
    }
}

fn check_region(region: &str) -> ProviderResult<()> {
    if cws_regions::get(region).is_some() {
        return Ok(());
    }
    Err(ProviderError::UnknownRegion {
        provider: "LocalCloud".to_string(),
        region: region.to_string(),
        suggestion: cws_regions::suggest(region).map(str::to_string),
    })
}

fn invalid(message: String) -> ProviderError {
    ProviderError::InvalidInput { message }
}

fn not_found(what: String, region: &str) -> ProviderError {
    ProviderError::NotFound {
        what,
        region: region.to_string(),
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Maps an owner filter value to the account id it means.
fn resolve_owner(owner: &str) -> ProviderResult<&str> {
    Ok(match owner {
        "self" => LOCAL_ACCOUNT_ID,
        "amazon" => AMAZON_OWNER,
        "aws-marketplace" => MARKETPLACE_OWNER,
        o if is_account_id(o) => o,
        o => {
            return Err(invalid(format!(
                "unknown image owner `{o}`; use `self`, `amazon`, `aws-marketplace` or a 12-digit account id"
            )));
        }
    })
}

/// Whether the simulated account may see and launch an image.
fn visible(stored: &StoredImage) -> bool {
    stored.image.owner_id == LOCAL_ACCOUNT_ID
        || stored.image.public
        || stored
            .permissions
            .contains(&LaunchPermission::Account(LOCAL_ACCOUNT_ID.to_string()))
}

/// The simulated cloud's clock, to the millisecond as EC2 reports times.
fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(3)
}

/// The literal part of an EC2 wildcard pattern before its first wildcard.
fn literal_prefix(pattern: &str) -> &str {
    match pattern.find(['*', '?']) {
        Some(i) => &pattern[..i],
        None => pattern,
    }
}

/// The longest prefix the given prefixes share (empty when there are none: any name).
fn common_prefix<'a>(mut prefixes: impl Iterator<Item = &'a str>) -> &'a str {
    let Some(mut common) = prefixes.next() else {
        return "";
    };
    for p in prefixes {
        let len = common
            .char_indices()
            .zip(p.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map(|((i, a), _)| i + a.len_utf8())
            .unwrap_or(0);
        common = &common[..len];
    }
    common
}

fn check_image_name(name: &str) -> ProviderResult<()> {
    cws_provider::check_image_name(name).map_err(invalid)
}

fn check_tags(tags: &BTreeMap<String, String>) -> ProviderResult<()> {
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 {
            return Err(invalid(format!(
                "tag key `{k}` must be 1-128 characters long"
            )));
        }
        if k.starts_with("aws:") {
            return Err(invalid(format!(
                "tag key `{k}` uses the reserved `aws:` prefix; pick another key"
            )));
        }
        if v.len() > 256 {
            return Err(invalid(format!(
                "the value of tag `{k}` is longer than 256 characters"
            )));
        }
    }
    Ok(())
}

/// An image with the same name owned by the simulated account in the region, if any.
fn own_image_named(state: &State, region: &str, name: &str) -> Option<String> {
    let rs = state.regions.get(region)?;
    rs.images
        .by_owner_prefix(LOCAL_ACCOUNT_ID, name)
        .find(|s| s.image.name == name)
        .map(|s| s.image.id.clone())
}

/// The account's image in `region` made for the intent in `request_tags`, as EC2 answers a
/// repeated client token: the first resource, or a mismatch when the token was used for a
/// different image (another name).
fn image_for_intent(
    state: &State,
    region: &str,
    request_tags: &BTreeMap<String, String>,
    name: &str,
) -> ProviderResult<Option<Image>> {
    let Some(token) = request_tags.get(cws_provider::tags::INTENT) else {
        return Ok(None);
    };
    let Some(rs) = state.regions.get(region) else {
        return Ok(None);
    };
    match rs.images.values().find(|s| {
        s.image.owner_id == LOCAL_ACCOUNT_ID
            && s.image.tags.get(cws_provider::tags::INTENT) == Some(token)
    }) {
        Some(s) if s.image.name == name => Ok(Some(s.image.clone())),
        Some(_) => Err(cws_provider::intent::mismatch(token, "image")),
        None => Ok(None),
    }
}

/// The instance in `region` launched for the intent in `request_tags` (see
/// [`image_for_intent`]).
fn instance_for_intent(
    state: &State,
    request: &RunInstanceRequest,
) -> ProviderResult<Option<Instance>> {
    let Some(token) = request.tags.get(cws_provider::tags::INTENT) else {
        return Ok(None);
    };
    let Some(rs) = state.regions.get(&request.region) else {
        return Ok(None);
    };
    match rs
        .instances
        .values()
        .find(|s| s.instance.tags.get(cws_provider::tags::INTENT) == Some(token))
    {
        Some(s) if s.instance.name == request.name && s.instance.ami_id == request.ami_id => {
            Ok(Some(s.instance.clone()))
        }
        Some(_) => Err(cws_provider::intent::mismatch(token, "instance")),
        None => Ok(None),
    }
}

fn name_taken(state: &State, region: &str, name: &str) -> ProviderResult<()> {
    match own_image_named(state, region, name) {
        Some(id) => Err(ProviderError::Conflict {
            message: format!(
                "an image named `{name}` already exists in {region} ({id}); pick another name or deregister it"
            ),
        }),
        None => Ok(()),
    }
}

/// The stored, visible image `id` in `region`, or NotFound.
fn find_image<'a>(state: &'a State, region: &str, id: &str) -> ProviderResult<&'a StoredImage> {
    state
        .regions
        .get(region)
        .and_then(|r| r.images.get(id))
        .filter(|s| visible(s))
        .ok_or_else(|| not_found(format!("image {id}"), region))
}

/// Like [`find_image`] but for a mutation the owner alone may make.
fn own_image_mut<'a>(
    state: &'a mut State,
    region: &str,
    id: &str,
    action: &str,
) -> ProviderResult<&'a mut StoredImage> {
    find_image(state, region, id)?;
    let stored = state
        .regions
        .get_mut(region)
        .and_then(|r| r.images.get_mut(id))
        .ok_or_else(|| not_found(format!("image {id}"), region))?;
    if stored.image.owner_id != LOCAL_ACCOUNT_ID {
        return Err(ProviderError::PermissionDenied {
            action: action.to_string(),
            message: format!(
                "image {id} in {region} is owned by {}, not by this account ({LOCAL_ACCOUNT_ID})",
                stored.image.owner_id
            ),
        });
    }
    Ok(stored)
}

fn check_snapshot_id(id: &str) -> ProviderResult<()> {
    if is_hex_id(id, "snap") {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{id}` is not a snapshot id; snapshot ids look like `snap-` followed by 8 or 17 hex digits"
        )))
    }
}

/// The images in a region that use a snapshot (any owner).
fn snapshot_users<'a>(rs: &'a RegionState, id: &'a str) -> impl Iterator<Item = &'a Image> + 'a {
    rs.images
        .values()
        .map(|s| &s.image)
        .filter(move |i| i.snapshot_ids.iter().any(|s| s == id))
}

/// Who owns a snapshot: the owner of the image using it; the simulated account when no
/// image uses it any more (only the owner can deregister an image, so a snapshot left
/// behind is the account's own).
fn snapshot_owner<'a>(rs: &'a RegionState, id: &'a str) -> &'a str {
    snapshot_users(rs, id)
        .next()
        .map_or(LOCAL_ACCOUNT_ID, |i| i.owner_id.as_str())
}

/// The region holding snapshot `id`, after checking the simulated account owns it.
fn own_snapshot<'a>(
    state: &'a State,
    region: &str,
    id: &str,
    action: &str,
) -> ProviderResult<&'a RegionState> {
    let rs = state
        .regions
        .get(region)
        .filter(|rs| rs.snapshots.contains_key(id))
        .ok_or_else(|| not_found(format!("snapshot {id}"), region))?;
    let owner = snapshot_owner(rs, id);
    if owner != LOCAL_ACCOUNT_ID {
        return Err(ProviderError::PermissionDenied {
            action: action.to_string(),
            message: format!(
                "snapshot {id} in {region} is owned by {owner}, not by this account ({LOCAL_ACCOUNT_ID})"
            ),
        });
    }
    Ok(rs)
}

/// Like [`own_snapshot`] but for a mutation.
fn own_snapshot_mut<'a>(
    state: &'a mut State,
    region: &str,
    id: &str,
    action: &str,
) -> ProviderResult<&'a mut RegionState> {
    own_snapshot(state, region, id, action)?;
    state
        .regions
        .get_mut(region)
        .ok_or_else(|| not_found(format!("snapshot {id}"), region))
}

fn check_instance_id(id: &str) -> ProviderResult<()> {
    if is_hex_id(id, "i") {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{id}` is not an instance id; instance ids look like `i-` followed by 8 or 17 hex digits"
        )))
    }
}

fn instance_mut<'a>(
    state: &'a mut State,
    region: &str,
    id: &str,
) -> ProviderResult<&'a mut StoredInstance> {
    check_instance_id(id)?;
    state
        .regions
        .get_mut(region)
        .and_then(|r| r.instances.get_mut(id))
        .ok_or_else(|| not_found(format!("instance {id}"), region))
}

/// Creates the snapshots of a new image in `region`: one per size, fresh ids.
fn new_snapshots(state: &mut State, region: &str, sizes: &[u32]) -> Vec<String> {
    let mut ids = Vec::with_capacity(sizes.len());
    for size in sizes {
        let id = state.fresh_id("snap");
        state.region_mut(region).snapshots.insert(
            id.clone(),
            Snapshot {
                id: id.clone(),
                region: region.to_string(),
                size_gb: *size,
                state: "completed".to_string(),
            },
        );
        ids.push(id);
    }
    ids
}

/// A validated image search over one region's owner/name index.
struct Search<'q> {
    region: &'q str,
    query: &'q ImageQuery,
    owners: BTreeSet<&'q str>,
    prefix: &'q str,
    now: chrono::DateTime<chrono::Utc>,
}

impl<'q> Search<'q> {
    fn new(region: &'q str, query: &'q ImageQuery) -> ProviderResult<Self> {
        check_region(region)?;
        if query.owners.is_empty() {
            return Err(invalid(
                "trusted owners are required for an image search; use `self` for your own account, \
                 `amazon`, `aws-marketplace` or a publisher's account id"
                    .to_string(),
            ));
        }
        let mut owners = BTreeSet::new();
        for o in &query.owners {
            owners.insert(resolve_owner(o)?);
        }
        Ok(Search {
            region,
            query,
            owners,
            prefix: common_prefix(query.names.iter().map(|n| literal_prefix(n))),
            now: now(),
        })
    }

    /// The visible images that match, visiting only the index entries under each owner whose
    /// name starts with the pattern's literal prefix.
    fn matches<'s>(&'s self, state: &'s State) -> impl Iterator<Item = &'s Image> + 's {
        let region = state.regions.get(self.region);
        self.owners
            .iter()
            .flat_map(move |owner| {
                region
                    .into_iter()
                    .flat_map(move |rs| rs.images.by_owner_prefix(owner, self.prefix))
            })
            .filter(|stored| visible(stored))
            .map(|stored| &stored.image)
            .filter(move |image| {
                self.query.matches_filters(image)
                    && (self.query.include_deprecated || !image.is_deprecated_at(self.now))
            })
    }
}

#[async_trait]
impl ImageCatalog for LocalCloud {
    fn info(&self) -> ProviderInfo {
        let place = match self.state_path() {
            Some(p) => p.display().to_string(),
            None => "memory, not persisted".to_string(),
        };
        ProviderInfo {
            name: "local".to_string(),
            simulated: true,
            description: format!("LocalCloud (simulated EC2; state in {place})"),
        }
    }
    async fn describe_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Image>> {
        check_region(region)?;
        for id in ids {
            check_image_id(id)?;
        }
        self.read(|state| {
            let Some(rs) = state.regions.get(region) else {
                return Ok(Vec::new());
            };
            let mut seen = BTreeSet::new();
            Ok(ids
                .iter()
                .filter(|id| seen.insert(id.as_str()))
                .filter_map(|id| rs.images.get(id.as_str()))
                .filter(|s| visible(s))
                .map(|s| s.image.clone())
                .collect())
        })
    }
    async fn describe_images(
        &self,
        region: &str,
        query: &ImageQuery,
    ) -> ProviderResult<Vec<Image>> {
        let search = Search::new(region, query)?;
        self.read(|state| {
            let mut found: Vec<Image> = search.matches(state).cloned().collect();
            found.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
            Ok(found)
        })
    }
    /// Picks in place from the index: one clone for the winner, whatever the number of matches.
    async fn describe_best_image(
        &self,
        region: &str,
        query: &ImageQuery,
        preferred: &[Architecture],
        now: chrono::DateTime<chrono::Utc>,
    ) -> ProviderResult<Option<(Image, bool)>> {
        let search = Search::new(region, query)?;
        self.read(|state| {
            Ok(
                cws_provider::select_best(search.matches(state), preferred, now)
                    .map(|(image, deprecated)| (image.clone(), deprecated)),
            )
        })
    }
    async fn describe_snapshots(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Snapshot>> {
        check_region(region)?;
        for id in ids {
            check_snapshot_id(id)?;
        }
        self.read(|state| {
            let Some(rs) = state.regions.get(region) else {
                return Ok(Vec::new());
            };
            let mut seen = BTreeSet::new();
            Ok(ids
                .iter()
                .filter(|id| seen.insert(id.as_str()))
                .filter_map(|id| rs.snapshots.get(id).cloned())
                .collect())
        })
    }
    async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
        Ok(cws_regions::all()
            .iter()
            .map(|r| r.code.to_string())
            .collect())
    }
    async fn account_id(&self) -> ProviderResult<Option<String>> {
        Ok(Some(LOCAL_ACCOUNT_ID.to_string()))
    }

    /// In memory: asked directly, a narrow search is an index range, and the first tier to
    /// answer decides before the next asks anything.
    fn answers_in_memory(&self) -> bool {
        true
    }

    async fn find_marketplace_products(
        &self,
        query: &MarketplaceQuery,
    ) -> ProviderResult<Vec<MarketplaceProduct>> {
        let title = query.title.as_ref().map(|t| t.to_lowercase());
        self.read(|state| {
            Ok(state
                .marketplace
                .iter()
                .filter(|p| {
                    query
                        .product_code
                        .as_ref()
                        .is_none_or(|c| *c == p.product_code)
                        && query
                            .product_id
                            .as_ref()
                            .is_none_or(|id| *id == p.product_id)
                        && title
                            .as_ref()
                            .is_none_or(|t| p.title.to_lowercase().contains(t.as_str()))
                })
                .cloned()
                .collect())
        })
    }
}

#[async_trait]
impl ImageAdmin for LocalCloud {
    async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image> {
        check_region(&request.source_region)?;
        check_region(&request.target_region)?;
        check_image_id(&request.source_image_id)?;
        check_image_name(&request.name)?;
        check_tags(&request.tags)?;
        self.write(|state| {
            if let Some(made) =
                image_for_intent(state, &request.target_region, &request.tags, &request.name)?
            {
                return Ok(made);
            }
            let source = find_image(state, &request.source_region, &request.source_image_id)?;
            if source.image.state != ImageState::Available {
                return Err(invalid(format!(
                    "image {} in {} is {}, not available; wait for it or pick another image",
                    source.image.id, source.image.region, source.image.state
                )));
            }
            name_taken(state, &request.target_region, &request.name)?;
            let source = source.image.clone();
            let sizes: Vec<u32> = {
                let snaps = state.regions.get(&source.region).map(|r| &r.snapshots);
                let sizes: Vec<u32> = source
                    .snapshot_ids
                    .iter()
                    .filter_map(|id| snaps.and_then(|s| s.get(id)).map(|s| s.size_gb))
                    .collect();
                if sizes.is_empty() {
                    vec![source.root_volume_gb.unwrap_or(8)]
                } else {
                    sizes
                }
            };
            let id = state.fresh_id("ami");
            let snapshot_ids = new_snapshots(state, &request.target_region, &sizes);
            let image = Image {
                id,
                region: request.target_region.clone(),
                name: request.name.clone(),
                owner_id: LOCAL_ACCOUNT_ID.to_string(),
                architecture: source.architecture,
                state: ImageState::Available,
                creation_date: now(),
                deprecation_time: None,
                description: request.description.clone().or(source.description.clone()),
                tags: request.tags.clone(),
                product_codes: source.product_codes.clone(),
                snapshot_ids,
                root_volume_gb: source.root_volume_gb.or(sizes.first().copied()),
                public: false,
            };
            state
                .region_mut(&request.target_region)
                .put_image(StoredImage {
                    image: image.clone(),
                    permissions: Vec::new(),
                });
            Ok(image)
        })
    }
    async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image> {
        check_region(&request.region)?;
        check_instance_id(&request.instance_id)?;
        check_image_name(&request.name)?;
        check_tags(&request.tags)?;
        self.write(|state| {
            if let Some(made) =
                image_for_intent(state, &request.region, &request.tags, &request.name)?
            {
                return Ok(made);
            }
            let instance = state
                .regions
                .get(&request.region)
                .and_then(|r| r.instances.get(&request.instance_id))
                .ok_or_else(|| {
                    not_found(format!("instance {}", request.instance_id), &request.region)
                })?;
            if instance.instance.state == InstanceState::Terminated {
                return Err(invalid(format!(
                    "instance {} is terminated; an image can only be made from a running or stopped instance",
                    request.instance_id
                )));
            }
            name_taken(state, &request.region, &request.name)?;
            let instance = instance.clone();
            let id = state.fresh_id("ami");
            let snapshot_ids = new_snapshots(state, &request.region, &[instance.root_volume_gb]);
            let image = Image {
                id,
                region: request.region.clone(),
                name: request.name.clone(),
                owner_id: LOCAL_ACCOUNT_ID.to_string(),
                architecture: instance.instance.architecture,
                state: ImageState::Available,
                creation_date: now(),
                deprecation_time: None,
                description: request.description.clone(),
                tags: request.tags.clone(),
                product_codes: instance.product_codes.clone(),
                snapshot_ids,
                root_volume_gb: Some(instance.root_volume_gb),
                public: false,
            };
            state.region_mut(&request.region).put_image(StoredImage {
                image: image.clone(),
                permissions: Vec::new(),
            });
            Ok(image)
        })
    }
    async fn create_tags(
        &self,
        region: &str,
        resource_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        check_region(region)?;
        check_tags(tags)?;
        let kind = if is_image_id(resource_id) {
            "image"
        } else if is_hex_id(resource_id, "i") {
            "instance"
        } else if is_hex_id(resource_id, "snap") {
            "snapshot"
        } else {
            return Err(invalid(format!(
                "`{resource_id}` is not an image, instance or snapshot id"
            )));
        };
        self.write(|state| {
            let missing = || not_found(format!("{kind} {resource_id}"), region);
            match kind {
                "image" => {
                    find_image(state, region, resource_id)?;
                    let rs = state.regions.get_mut(region).ok_or_else(missing)?;
                    let stored = rs.images.get_mut(resource_id).ok_or_else(missing)?;
                    stored.image.tags.extend(tags.clone());
                }
                "instance" => {
                    let stored = instance_mut(state, region, resource_id)?;
                    stored.instance.tags.extend(tags.clone());
                    if let Some(name) = tags.get("Name") {
                        stored.instance.name = name.clone();
                    }
                }
                _ => {
                    // Snapshots carry no tags in the model; EC2 accepts the call, so do we,
                    // after checking the snapshot exists.
                    state
                        .regions
                        .get(region)
                        .and_then(|r| r.snapshots.get(resource_id))
                        .ok_or_else(missing)?;
                }
            }
            Ok(())
        })
    }
    async fn modify_launch_permission(
        &self,
        region: &str,
        image_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        check_region(region)?;
        check_image_id(image_id)?;
        permission.check()?;
        self.write(|state| {
            let stored = own_image_mut(state, region, image_id, "ec2:ModifyImageAttribute")?;
            match permission {
                LaunchPermission::Public => stored.image.public = add,
                other => {
                    stored.permissions.retain(|p| p != other);
                    if add {
                        stored.permissions.push(other.clone());
                    }
                }
            }
            Ok(())
        })
    }
    async fn describe_launch_permissions(
        &self,
        region: &str,
        image_id: &str,
    ) -> ProviderResult<Vec<LaunchPermission>> {
        check_region(region)?;
        check_image_id(image_id)?;
        self.read(|state| {
            let stored = find_image(state, region, image_id)?;
            if stored.image.owner_id != LOCAL_ACCOUNT_ID {
                return Err(ProviderError::PermissionDenied {
                    action: "ec2:DescribeImageAttribute".to_string(),
                    message: format!(
                        "only the owner ({}) can list who may launch image {image_id}",
                        stored.image.owner_id
                    ),
                });
            }
            let mut perms = Vec::new();
            if stored.image.public {
                perms.push(LaunchPermission::Public);
            }
            perms.extend(stored.permissions.iter().cloned());
            Ok(perms)
        })
    }
    async fn modify_snapshot_permission(
        &self,
        region: &str,
        snapshot_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        check_region(region)?;
        check_snapshot_id(snapshot_id)?;
        permission.check()?;
        if let LaunchPermission::Organization(arn) = permission {
            return Err(invalid(format!(
                "EC2 shares snapshots only with account ids or everyone (group all), not with \
                 an organization ({arn}); name the organization's accounts instead"
            )));
        }
        self.write(|state| {
            let rs = own_snapshot_mut(state, region, snapshot_id, "ec2:ModifySnapshotAttribute")?;
            let perms = rs
                .snapshot_permissions
                .entry(snapshot_id.to_string())
                .or_default();
            perms.retain(|p| p != permission);
            if add {
                perms.push(permission.clone());
            }
            if perms.is_empty() {
                rs.snapshot_permissions.remove(snapshot_id);
            }
            Ok(())
        })
    }
    async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()> {
        check_region(region)?;
        check_image_id(image_id)?;
        self.write(|state| {
            own_image_mut(state, region, image_id, "ec2:DeregisterImage")?;
            // Snapshots stay, as in EC2: deleting them is a separate decision.
            state.region_mut(region).remove_image(image_id);
            Ok(())
        })
    }
    async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()> {
        check_region(region)?;
        check_snapshot_id(snapshot_id)?;
        self.write(|state| {
            let rs = own_snapshot_mut(state, region, snapshot_id, "ec2:DeleteSnapshot")?;
            if let Some(user) = snapshot_users(rs, snapshot_id).next() {
                return Err(ProviderError::SnapshotInUse {
                    snapshot_id: snapshot_id.to_string(),
                    region: region.to_string(),
                    image_id: Some(user.id.clone()),
                });
            }
            rs.snapshots.remove(snapshot_id);
            rs.snapshot_permissions.remove(snapshot_id);
            Ok(())
        })
    }
}

#[async_trait]
impl Instances for LocalCloud {
    async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance> {
        check_region(&request.region)?;
        check_image_id(&request.ami_id)?;
        check_tags(&request.tags)?;
        if request.name.trim().is_empty() {
            return Err(invalid(
                "an instance needs a name (its `Name` tag)".to_string(),
            ));
        }
        let type_arch = instance_type_architecture(&request.instance_type).ok_or_else(|| {
            invalid(format!(
                "`{}` is not an instance type; instance types look like `m7i.large` or `t4g.micro`",
                request.instance_type
            ))
        })?;
        if request.root_volume_gb == Some(0) {
            return Err(invalid(
                "the root volume must be at least 1 GiB".to_string(),
            ));
        }
        self.write(|state| {
            if let Some(launched) = instance_for_intent(state, request)? {
                return Ok(launched);
            }
            let image = find_image(state, &request.region, &request.ami_id)?;
            if image.image.state != ImageState::Available {
                return Err(invalid(format!(
                    "image {} is {}, not available; wait for it or pick another image",
                    image.image.id, image.image.state
                )));
            }
            if type_arch != image.image.architecture {
                return Err(invalid(format!(
                    "instance type {} is {} but image {} is {}; pick a {} instance type",
                    request.instance_type,
                    type_arch,
                    image.image.id,
                    image.image.architecture,
                    image.image.architecture
                )));
            }
            let image = image.image.clone();
            if let Some(existing) = state.regions.get(&request.region).and_then(|r| {
                r.instances
                    .values()
                    .find(|i| i.instance.state.is_live() && i.instance.name == request.name)
            }) {
                return Err(ProviderError::Conflict {
                    message: format!(
                        "an instance named `{}` already exists in {} ({}, {}); pick another name or terminate it",
                        request.name,
                        request.region,
                        existing.instance.id,
                        existing.instance.state
                    ),
                });
            }
            let id = state.fresh_id("i");
            let mut tags = request.tags.clone();
            tags.insert("Name".to_string(), request.name.clone());
            let instance = Instance {
                id: id.clone(),
                name: request.name.clone(),
                region: request.region.clone(),
                ami_id: image.id.clone(),
                instance_type: request.instance_type.clone(),
                architecture: image.architecture,
                state: InstanceState::Running,
                launch_time: now(),
                tags,
            };
            let root_volume_gb = request
                .root_volume_gb
                .or(image.root_volume_gb)
                .unwrap_or(8);
            state.region_mut(&request.region).instances.insert(
                id,
                StoredInstance {
                    instance: instance.clone(),
                    root_volume_gb,
                    product_codes: image.product_codes.clone(),
                    console: Some(simulated_console(request.user_data.as_deref())),
                },
            );
            Ok(instance)
        })
    }
    async fn describe_instances(
        &self,
        region: &str,
        filter: &InstanceFilter,
    ) -> ProviderResult<Vec<Instance>> {
        check_region(region)?;
        for id in &filter.ids {
            check_instance_id(id)?;
        }
        self.read(|state| {
            let Some(rs) = state.regions.get(region) else {
                return Ok(Vec::new());
            };
            let mut found: Vec<Instance> = rs
                .instances
                .values()
                .map(|s| &s.instance)
                .filter(|i| filter.ids.is_empty() || filter.ids.contains(&i.id))
                .filter(|i| filter.include_terminated || i.state != InstanceState::Terminated)
                .filter(|i| {
                    filter
                        .tags
                        .iter()
                        .all(|(k, v)| i.tags.get(k).is_some_and(|iv| iv == v))
                })
                .cloned()
                .collect();
            found.sort_by(|a, b| {
                a.launch_time
                    .cmp(&b.launch_time)
                    .then_with(|| a.id.cmp(&b.id))
            });
            Ok(found)
        })
    }
    async fn stop_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        check_region(region)?;
        self.write(|state| {
            let stored = instance_mut(state, region, instance_id)?;
            match stored.instance.state {
                InstanceState::ShuttingDown | InstanceState::Terminated => Err(invalid(format!(
                    "instance {instance_id} is {} and cannot be stopped",
                    stored.instance.state
                ))),
                _ => {
                    stored.instance.state = InstanceState::Stopped;
                    Ok(stored.instance.clone())
                }
            }
        })
    }
    async fn start_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        check_region(region)?;
        self.write(|state| {
            let stored = instance_mut(state, region, instance_id)?;
            match stored.instance.state {
                InstanceState::ShuttingDown | InstanceState::Terminated => Err(invalid(format!(
                    "instance {instance_id} is {} and cannot be started",
                    stored.instance.state
                ))),
                // Simulated instances boot at once.
                _ => {
                    stored.instance.state = InstanceState::Running;
                    Ok(stored.instance.clone())
                }
            }
        })
    }
    async fn console_output(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Option<String>> {
        check_region(region)?;
        check_instance_id(instance_id)?;
        self.read(|state| {
            state
                .regions
                .get(region)
                .and_then(|rs| rs.instances.get(instance_id))
                .map(|stored| stored.console.clone())
                .ok_or_else(|| not_found(format!("instance {instance_id}"), region))
        })
    }
    async fn terminate_instance(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Instance> {
        check_region(region)?;
        self.write(|state| {
            let stored = instance_mut(state, region, instance_id)?;
            stored.instance.state = InstanceState::Terminated;
            Ok(stored.instance.clone())
        })
    }
}

/// The conformance-suite fixture for a seeded LocalCloud: the newest Ubuntu 24.04 amd64 image
/// in us-east-1, copies to us-west-2, launched as `t3.micro`.
#[cfg(feature = "testing")]
pub fn conformance_fixture() -> cws_provider::testing::Fixture {
    let region = "us-east-1";
    cws_provider::testing::Fixture {
        region: region.to_string(),
        other_region: "us-west-2".to_string(),
        base_image_id: seed::seeded_image_id(
            region,
            "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251002",
        ),
        architecture: Architecture::X86_64,
        instance_type: "t3.micro".to_string(),
    }
}

#[cfg(test)]
mod tests;
