//! LocalCloud's state: the data model, its in-memory indexes, and crash-safe persistence.
//!
//! The state is one small JSON document. Every mutation runs under an exclusive advisory lock
//! on a sibling lock file, re-reads the document when another process changed it, mutates,
//! writes a temporary file, fsyncs it and renames it over the old one. A crash therefore
//! leaves either the old or the new state on disk, never half of one, and two `cws` processes
//! never lose each other's writes. Reads take a shared lock and reuse the parsed state while
//! the file on disk is unchanged (same inode, size and modification time), so the common case
//! of a CLI invocation costs one `stat` after the initial load.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};

use std::path::{Path, PathBuf};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use cws_provider::{Image, Instance, LaunchPermission, MarketplaceProduct, Snapshot};
use cws_provider::{ProviderError, ProviderResult};
use cws_util::fs::ReadError;

/// Bumped when the on-disk layout changes incompatibly.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The provider name used in errors.
pub(crate) const PROVIDER: &str = "local";

/// An image plus the launch permissions EC2 keeps beside it (`public` lives on the image).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredImage {
    pub(crate) image: Image,
    /// Accounts and organizations granted launch permission (never `Public`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) permissions: Vec<LaunchPermission>,
}

/// An instance plus what EC2 remembers about how it was launched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredInstance {
    pub(crate) instance: Instance,
    /// Root volume size in GiB; an image made from the instance gets a snapshot this big.
    pub(crate) root_volume_gb: u32,
    /// Product codes of the image it was launched from; images made from it inherit them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) product_codes: Vec<String>,
    /// The simulated serial console (what `GetConsoleOutput` answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) console: Option<String>,
}

/// Everything in one region.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RegionState {
    #[serde(default)]
    pub(crate) images: Images,
    #[serde(default)]
    pub(crate) snapshots: BTreeMap<String, Snapshot>,
    #[serde(default)]
    pub(crate) instances: BTreeMap<String, StoredInstance>,
    /// Create-volume permissions per snapshot id (accounts and `Public`, never
    /// organizations), as EC2 keeps them beside a snapshot. Only shared snapshots have an
    /// entry, so the seeded state stays small and older state files load unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) snapshot_permissions: BTreeMap<String, Vec<LaunchPermission>>,
}

impl RegionState {
    /// Adds or replaces an image.
    pub(crate) fn put_image(&mut self, stored: StoredImage) {
        self.images.insert(stored);
    }

    /// Removes an image.
    pub(crate) fn remove_image(&mut self, id: &str) -> Option<StoredImage> {
        self.images.remove(id)
    }
}

/// Where an image sits in search order: (owner, name, id).
type ImageKey = (CompactString, String, CompactString);

/// A region's images, stored in search order.
///
/// Searches always name owners (cws never searches every owner) and usually a name pattern,
/// so the records are kept in a B-tree under (owner, name, id): a search walks one owner's
/// range under the pattern's literal prefix and reads each record where it lies, in order,
/// with no second lookup per candidate (a search over a whole region of a 100,000-image
/// cloud reads thousands). An id index finds an image by id. On disk it is the same map of
/// id to image as before, in id order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Images {
    by_key: BTreeMap<ImageKey, StoredImage>,
    keys: BTreeMap<CompactString, ImageKey>,
}

/// The search key of an image. Ids and owner account ids fit inline in a `CompactString`
/// (24 bytes), so comparing keys reads the B-tree node itself instead of chasing a heap
/// pointer per comparison.
fn index_key(image: &Image) -> ImageKey {
    (
        CompactString::from(image.owner_id.as_str()),
        image.name.clone(),
        CompactString::from(image.id.as_str()),
    )
}

impl Images {
    /// The image with this id.
    pub(crate) fn get(&self, id: &str) -> Option<&StoredImage> {
        self.keys.get(id).and_then(|k| self.by_key.get(k))
    }

    /// The image with this id, to change. Its owner, name and id must not change (they
    /// place it): replace it with [`insert`](Self::insert) for that.
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut StoredImage> {
        let key = self.keys.get(id)?;
        self.by_key.get_mut(key)
    }

    /// Whether an image has this id.
    pub(crate) fn contains_key(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// Every image, in search order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &StoredImage> {
        self.by_key.values()
    }

    /// Every image id, in id order.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = &CompactString> {
        self.keys.keys()
    }

    /// How many images there are.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Adds an image, or replaces the one with its id.
    pub(crate) fn insert(&mut self, stored: StoredImage) {
        self.remove(&stored.image.id);
        let key = index_key(&stored.image);
        self.keys.insert(key.2.clone(), key.clone());
        self.by_key.insert(key, stored);
    }

    /// Removes the image with this id.
    pub(crate) fn remove(&mut self, id: &str) -> Option<StoredImage> {
        let key = self.keys.remove(id)?;
        self.by_key.remove(&key)
    }

    /// Images owned by `owner` whose name starts with `prefix`, in (name, id) order.
    pub(crate) fn by_owner_prefix<'a>(
        &'a self,
        owner: &'a str,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a StoredImage> + 'a {
        let start = (
            CompactString::from(owner),
            prefix.to_string(),
            CompactString::default(),
        );
        self.by_key
            .range(start..)
            .take_while(move |((o, name, _), _)| o == owner && name.starts_with(prefix))
            .map(|(_, stored)| stored)
    }
}

impl Serialize for Images {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.keys.len()))?;
        for (id, key) in &self.keys {
            if let Some(stored) = self.by_key.get(key) {
                map.serialize_entry(id, stored)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Images {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Straight into place, entry by entry: loading the state is most of a cold `cws`.
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Images;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of image id to image")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Images, A::Error> {
                let mut images = Images::default();
                while let Some((id, stored)) = map.next_entry::<CompactString, StoredImage>()? {
                    if id != stored.image.id {
                        return Err(serde::de::Error::custom(format!(
                            "image entry `{id}` holds image `{}`",
                            stored.image.id
                        )));
                    }
                    if images.keys.contains_key(&id) {
                        return Err(serde::de::Error::custom(format!(
                            "image `{id}` is listed twice"
                        )));
                    }
                    let key = index_key(&stored.image);
                    images.keys.insert(id, key.clone());
                    images.by_key.insert(key, stored);
                }
                Ok(images)
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The whole simulated cloud.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) format: u32,
    /// Feeds fresh ids; persisted so ids stay unique across processes.
    pub(crate) next_serial: u64,
    #[serde(default)]
    pub(crate) regions: BTreeMap<String, RegionState>,
    #[serde(default)]
    pub(crate) marketplace: Vec<MarketplaceProduct>,
}

impl Default for State {
    fn default() -> Self {
        State {
            format: FORMAT_VERSION,
            next_serial: 0,
            regions: BTreeMap::new(),
            marketplace: Vec::new(),
        }
    }
}

impl State {
    /// The region's state, created empty on first use.
    pub(crate) fn region_mut(&mut self, region: &str) -> &mut RegionState {
        self.regions.entry(region.to_string()).or_default()
    }

    /// Total images across regions.
    pub(crate) fn image_count(&self) -> usize {
        self.regions.values().map(|r| r.images.len()).sum()
    }

    /// A fresh id `<prefix>-0<16 hex>` that no resource in any region uses yet.
    ///
    /// Ids come from a persisted counter run through FNV-1a, so they look like EC2 ids, are
    /// unique across the processes sharing the state (the counter is bumped under the write
    /// lock) and are reproducible: two fresh clouds hand out the same sequence.
    pub(crate) fn fresh_id(&mut self, prefix: &str) -> String {
        loop {
            self.next_serial += 1;
            let id = hex_id(prefix, &format!("{prefix}:{}", self.next_serial));
            if !self.id_in_use(&id) {
                return id;
            }
        }
    }

    fn id_in_use(&self, id: &str) -> bool {
        self.regions.values().any(|r| {
            r.images.contains_key(id)
                || r.snapshots.contains_key(id)
                || r.instances.contains_key(id)
        })
    }
}

/// 64-bit FNV-1a: tiny, dependency-free and stable across Rust versions (unlike `DefaultHasher`),
/// which is what makes seeded ids identical on every machine.
pub(crate) fn fnv1a(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `<prefix>-0` + 16 hex digits of the key's hash: 17 hex digits, the modern EC2 id shape.
pub(crate) fn hex_id(prefix: &str, key: &str) -> String {
    format!("{prefix}-0{:016x}", fnv1a(key))
}

/// Identity of the state file's current version, to skip re-parsing an unchanged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

/// Where a persisted LocalCloud lives on disk.
#[derive(Debug)]
pub(crate) struct Files {
    pub(crate) state_path: PathBuf,
    lock_path: PathBuf,
    lock_file: File,
}

/// Holds an advisory lock on the lock file; released on drop, including on early returns.
struct LockGuard<'a>(&'a File);

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // Closing the process would release it too; an unlock failure leaves nothing to do.
        let _ = self.0.unlock();
    }
}

/// What a load found on disk.
pub(crate) enum Loaded {
    /// The file is unchanged since the stamp we hold.
    Unchanged,
    /// The file was (re)read.
    State(Box<State>, Stamp),
    /// There is no state file yet.
    Missing,
}

impl Files {
    /// Opens (creating) `<home>/localcloud/` and its lock file.
    pub(crate) fn open(home: &Path) -> ProviderResult<Files> {
        let dir = home.join("localcloud");
        fs::create_dir_all(&dir).map_err(|e| io_error("create the state directory", &dir, e))?;
        let lock_path = dir.join("state.lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error("open the lock file", &lock_path, e))?;
        Ok(Files {
            state_path: dir.join("state.json"),
            lock_path,
            lock_file,
        })
    }

    /// Runs `f` under the shared (read) lock.
    pub(crate) fn shared<R>(&self, f: impl FnOnce() -> ProviderResult<R>) -> ProviderResult<R> {
        self.lock_file
            .lock_shared()
            .map_err(|e| io_error("take a shared lock on", &self.lock_path, e))?;
        let _guard = LockGuard(&self.lock_file);
        f()
    }

    /// Runs `f` under the exclusive (write) lock.
    pub(crate) fn exclusive<R>(&self, f: impl FnOnce() -> ProviderResult<R>) -> ProviderResult<R> {
        self.lock_file
            .lock()
            .map_err(|e| io_error("take an exclusive lock on", &self.lock_path, e))?;
        let _guard = LockGuard(&self.lock_file);
        f()
    }

    /// Whether the state file is still the version stamped `current` (one `stat`).
    pub(crate) fn is_current(&self, current: Option<&Stamp>) -> ProviderResult<bool> {
        match fs::metadata(&self.state_path) {
            Ok(meta) => Ok(current == Some(&Stamp::of(&meta))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("inspect", &self.state_path, e)),
        }
    }

    /// Reads the state file unless it still matches `current`. Call with a lock held.
    pub(crate) fn load(&self, current: Option<&Stamp>) -> ProviderResult<Loaded> {
        let meta = match fs::metadata(&self.state_path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(e) => return Err(io_error("inspect", &self.state_path, e)),
        };
        let stamp = Stamp::of(&meta);
        if current == Some(&stamp) {
            return Ok(Loaded::Unchanged);
        }
        let bytes = cws_util::fs::read_bytes_bounded(&self.state_path, crate::MAX_STATE_BYTES)
            .map_err(|e| match e {
                ReadError::Io { source, .. } => io_error("read", &self.state_path, source),
                refused => ProviderError::Generic {
                    provider: PROVIDER.to_string(),
                    source: Box::new(StateFileRefused(refused)),
                },
            })?;
        let state: State = serde_json::from_slice(&bytes).map_err(|e| {
            corrupt(
                &self.state_path,
                &format!("it is not valid LocalCloud JSON ({e})"),
            )
        })?;
        if state.format != FORMAT_VERSION {
            return Err(corrupt(
                &self.state_path,
                &format!(
                    "it has format version {} but this cws understands version {FORMAT_VERSION}",
                    state.format
                ),
            ));
        }
        // The stamp was taken before reading; that is sound because writers replace the file
        // only under the exclusive lock, which cannot be held while we hold ours.
        Ok(Loaded::State(Box::new(state), stamp))
    }

    /// Writes the state crash-safely (temp file, fsync, rename, fsync dir). Call with the
    /// exclusive lock held. Returns the new file's stamp.
    pub(crate) fn save(&self, state: &State) -> ProviderResult<Stamp> {
        let bytes = serde_json::to_vec(state)
            .map_err(|e| ProviderError::generic(PROVIDER, format!("cannot encode state: {e}")))?;
        cws_util::fs::write_atomic(&self.state_path, &bytes, None)
            .map_err(|e| io_error("write", &self.state_path, e))?;
        let meta =
            fs::metadata(&self.state_path).map_err(|e| io_error("inspect", &self.state_path, e))?;
        Ok(Stamp::of(&meta))
    }
}

/// The LocalCloud state file was refused before it was parsed: larger than
/// [`MAX_STATE_BYTES`](crate::MAX_STATE_BYTES), or not a regular file (a directory, a device,
/// a FIFO). It is the source of the [`ProviderError::Generic`] that [`crate::LocalCloud::open`]
/// (or a later call that reloads the state) returns; the [`ReadError`] carries the path and,
/// for a file too large, the limit. The file is left untouched.
#[derive(Debug, thiserror::Error)]
#[error("LocalCloud state file {0}")]
pub struct StateFileRefused(pub ReadError);

fn io_error(action: &str, path: &Path, e: std::io::Error) -> ProviderError {
    ProviderError::generic(
        PROVIDER,
        format!(
            "cannot {action} {} ({e}); check that the directory is writable",
            path.display()
        ),
    )
}

fn corrupt(path: &Path, why: &str) -> ProviderError {
    ProviderError::generic(
        PROVIDER,
        format!(
            "the LocalCloud state file {} cannot be used: {why}. Move it aside \
             (e.g. `mv {0} {0}.bak`) and run again to start from a freshly seeded simulated cloud",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// An error and its sources, the way the CLI prints them.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cur = c.source();
        }
        out
    }

    #[test]
    fn images_are_stored_as_a_map_of_id_in_id_order_and_read_back_in_search_order() {
        let state = crate::seed::seeded_state();
        let images = &state.regions["us-east-1"].images;
        let json = serde_json::to_value(images).unwrap();
        let ids: Vec<&String> = json.as_object().unwrap().keys().collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(
            ids, sorted,
            "the on-disk layout is a map of id to image, in id order"
        );
        let back: Images = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.len(), images.len());
        for id in images.keys() {
            assert_eq!(
                back.get(id).map(|s| &s.image),
                images.get(id).map(|s| &s.image)
            );
        }
        let canonical: Vec<&str> = back
            .by_owner_prefix(crate::CANONICAL_OWNER, "ubuntu/")
            .map(|s| s.image.name.as_str())
            .collect();
        assert!(!canonical.is_empty());
        assert!(canonical.windows(2).all(|w| w[0] <= w[1]), "search order");
        // An entry filed under another id is refused, not silently re-keyed.
        let mut wrong = json.clone();
        let first = ids[0].clone();
        let entry = wrong.as_object_mut().unwrap().remove(&first).unwrap();
        wrong
            .as_object_mut()
            .unwrap()
            .insert("ami-0000000000000dead".into(), entry);
        let err = serde_json::from_value::<Images>(wrong)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds image"), "{err}");
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn hex_ids_have_seventeen_hex_digits() {
        let id = hex_id("ami", "x");
        assert_eq!(id.len(), "ami-".len() + 17);
        assert!(id["ami-".len()..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn fresh_ids_are_unique_and_reproducible() {
        let mut a = State::default();
        let mut b = State::default();
        let ids_a: Vec<String> = (0..50).map(|_| a.fresh_id("i")).collect();
        let ids_b: Vec<String> = (0..50).map(|_| b.fresh_id("i")).collect();
        assert_eq!(ids_a, ids_b);
        let unique: BTreeSet<&String> = ids_a.iter().collect();
        assert_eq!(unique.len(), 50);
    }

    #[test]
    fn corrupt_file_error_names_path_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path()).unwrap();
        fs::write(&files.state_path, b"{not json").unwrap();
        let err = chain(&files.shared(|| files.load(None)).err().unwrap());
        assert!(
            err.contains(&files.state_path.display().to_string()),
            "{err}"
        );
        assert!(err.contains("Move it aside"), "{err}");
    }

    #[test]
    fn save_then_load_round_trips_and_stamps_detect_changes() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path()).unwrap();
        assert!(matches!(files.load(None).unwrap(), Loaded::Missing));
        let mut state = State {
            next_serial: 41,
            ..State::default()
        };
        let stamp = files.exclusive(|| files.save(&state)).unwrap();
        assert!(matches!(
            files.load(Some(&stamp)).unwrap(),
            Loaded::Unchanged
        ));
        state.next_serial = 42;
        files.exclusive(|| files.save(&state)).unwrap();
        match files.load(Some(&stamp)).unwrap() {
            Loaded::State(s, _) => assert_eq!(s.next_serial, 42),
            _ => panic!("a rewritten file must be re-read"),
        }
        // No temp files are left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("localcloud"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    /// The refusal a load returned, from the source of its `ProviderError::Generic`.
    fn refusal(err: &ProviderError) -> &ReadError {
        let source = std::error::Error::source(err).expect("a source");
        &source
            .downcast_ref::<StateFileRefused>()
            .unwrap_or_else(|| panic!("expected StateFileRefused, got {err:?}"))
            .0
    }

    #[test]
    fn a_state_file_over_the_limit_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path()).unwrap();
        // Sparse: 256 MiB + 1 on paper, no blocks on disk, refused by its size alone.
        File::create(&files.state_path)
            .unwrap()
            .set_len(crate::MAX_STATE_BYTES + 1)
            .unwrap();
        let err = files.shared(|| files.load(None)).err().unwrap();
        assert!(
            matches!(refusal(&err), ReadError::TooLarge { path, limit }
                if path == &files.state_path && *limit == crate::MAX_STATE_BYTES),
            "{err:?}"
        );
        let shown = chain(&err);
        assert!(
            shown.contains(&files.state_path.display().to_string()),
            "{shown}"
        );
        assert!(shown.contains("256 MiB"), "{shown}");
        // Left alone for the user to inspect, never reseeded over.
        assert_eq!(
            fs::metadata(&files.state_path).unwrap().len(),
            crate::MAX_STATE_BYTES + 1
        );
        let err = crate::LocalCloud::open(dir.path()).err().unwrap();
        assert!(matches!(refusal(&err), ReadError::TooLarge { .. }));
    }

    #[test]
    fn a_state_path_that_is_not_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path()).unwrap();
        fs::create_dir(&files.state_path).unwrap();
        let err = files.shared(|| files.load(None)).err().unwrap();
        assert!(
            matches!(refusal(&err), ReadError::NotAFile { path } if path == &files.state_path),
            "{err:?}"
        );
        assert!(
            chain(&err).contains("not a regular file"),
            "{}",
            chain(&err)
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_as_state_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path()).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&files.state_path)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipping: mkfifo is not available");
            return;
        }
        let err = files.shared(|| files.load(None)).err().unwrap();
        assert!(
            matches!(refusal(&err), ReadError::NotAFile { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn future_format_is_refused_not_reseeded() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path()).unwrap();
        let state = State {
            format: FORMAT_VERSION + 1,
            ..State::default()
        };
        files.exclusive(|| files.save(&state)).unwrap();
        let err = chain(&files.load(None).err().unwrap());
        assert!(err.contains("format version"), "{err}");
    }
}
