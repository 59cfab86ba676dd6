//! Read answers kept on disk for a short time, so a repeat in the next `cws` process asks
//! nothing.
//!
//! [`DiskCache`] wraps a provider and keeps the answers of the reads a resolution or a
//! listing makes (images by id, image searches, the best image of a search, regions,
//! Marketplace products, the account id) as one small JSON file each under a directory for
//! one backend and set of credentials. An entry is used for [`DiskCache::ttl`] after it was
//! written, then asked again.
//!
//! Staleness is bounded, not absent: an image deregistered or made elsewhere in the last
//! TTL may be answered from before. So whoever spends on an answer re-checks it first, by
//! id, against the backend itself (a launch does: one call). Anything that changes images
//! through this wrapper (copy, create, tag, share, deregister, delete a snapshot) empties
//! the cache, whether the call succeeded or not (a failed call may still have acted).
//! Errors are never kept. Instances are never cached.
//!
//! Files are written atomically (a temporary file renamed into place), so concurrent `cws`
//! processes never read half an entry; an unreadable, foreign or oversized entry is a miss.
//! An entry is stamped with the time its call *started*, and emptying the cache leaves a
//! marker with the time it was emptied: an answer that was already on its way when images
//! changed (in this process or another) is older than the marker, so it is never used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cws_template::Architecture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ProviderResult;
use crate::model::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, Instance, InstanceFilter,
    LaunchPermission, MarketplaceProduct, MarketplaceQuery, ProviderInfo, RunInstanceRequest,
    Snapshot, WaitOutcome,
};
use crate::traits::{CloudProvider, ImageAdmin, ImageCatalog, Instances};

/// The time-to-live cws uses: long enough for the commands of one task (resolve, then
/// launch), short enough that an image made or removed elsewhere is seen soon.
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);

/// The largest entry read back (a search answer with thousands of images is still far
/// below it); anything larger is a miss.
const MAX_ENTRY_BYTES: u64 = 16 * 1024 * 1024;

/// A clock, so that expiry can be tested without waiting.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// One file.
#[derive(Serialize, Deserialize)]
struct Entry<T> {
    /// The full question (the file name is only its hash).
    key: String,
    /// When it was written, in milliseconds since the Unix epoch.
    stored_ms: u64,
    value: T,
}

/// A provider whose read answers are kept on disk for a time-to-live (see the module docs).
pub struct DiskCache<P> {
    inner: P,
    dir: PathBuf,
    ttl: Duration,
    clock: Clock,
    swept: AtomicBool,
    /// A [`fresh`](DiskCache::fresh) view: reads are never answered from disk.
    fresh: bool,
}

impl<P: std::fmt::Debug> std::fmt::Debug for DiskCache<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCache")
            .field("inner", &self.inner)
            .field("dir", &self.dir)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A stable 64-bit FNV-1a hash (file names must not change between builds).
fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl<P> DiskCache<P> {
    /// Keeps `inner`'s read answers under `root`, in a directory for `namespace`: a string
    /// naming the backend and the credentials (endpoint, profile, key id...). Only its hash
    /// is written anywhere, so it may hold identifiers that must not be stored in clear.
    pub fn new(inner: P, root: &Path, namespace: &str, ttl: Duration) -> Self {
        DiskCache {
            inner,
            dir: root.join(format!("{:016x}", fnv1a(namespace))),
            ttl,
            clock: Arc::new(SystemTime::now),
            swept: AtomicBool::new(false),
            fresh: false,
        }
    }

    /// The same backend and cache, with every read asked of the backend (and kept for the
    /// cached view), and every change still emptying the cache: for whatever must not act on
    /// a stale answer (waiting for an image, finding what an interrupted run made, checking
    /// an image before spending on it), while the cached view serves resolutions.
    pub fn fresh(&self) -> DiskCache<P>
    where
        P: Clone,
    {
        DiskCache {
            inner: self.inner.clone(),
            dir: self.dir.clone(),
            ttl: self.ttl,
            clock: self.clock.clone(),
            swept: AtomicBool::new(false),
            fresh: true,
        }
    }

    /// The same cache read with another clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// How long an answer is used.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The directory this backend's answers are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{:016x}.json", fnv1a(key)))
    }

    fn key(op: &str, region: &str, args: &impl Serialize) -> String {
        // Serializing the model types cannot fail; an empty key would only be a miss.
        let args = serde_json::to_string(args).unwrap_or_default();
        format!("{op}\n{region}\n{args}")
    }

    fn marker(&self) -> PathBuf {
        self.dir.join("emptied-at")
    }

    /// When the cache was last emptied (milliseconds since the epoch), if it ever was.
    fn emptied_at(&self) -> Option<u64> {
        let text = cws_util::fs::read_text_bounded(&self.marker(), 64).ok()?;
        text.trim().parse().ok()
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        if self.ttl.is_zero() || self.fresh {
            return None;
        }
        let bytes = cws_util::fs::read_bytes_bounded(&self.path(key), MAX_ENTRY_BYTES).ok()?;
        let entry: Entry<T> = serde_json::from_slice(&bytes).ok()?;
        if self.emptied_at().is_some_and(|t| entry.stored_ms <= t) {
            return None;
        }
        let now = millis((self.clock)());
        let age = now.checked_sub(entry.stored_ms)?;
        (entry.key == key && u128::from(age) < self.ttl.as_millis()).then_some(entry.value)
    }

    /// Keeps an answer whose call started at `started_ms`.
    fn put<T: Serialize>(&self, key: &str, value: &T, started_ms: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let entry = Entry {
            key: key.to_string(),
            stored_ms: started_ms,
            value,
        };
        let Ok(bytes) = serde_json::to_vec(&entry) else {
            return;
        };
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        self.sweep_once();
        if let Err(e) = cws_util::fs::write_atomic(&self.path(key), &bytes, Some(0o600)) {
            tracing::debug!("read cache: cannot write {}: {e}", self.dir.display());
        }
    }

    /// Removes expired entries, once per process (they are misses anyway; this keeps the
    /// directory from growing).
    fn sweep_once(&self) {
        if self.swept.swap(true, Ordering::Relaxed) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = (self.clock)();
        for e in entries.flatten() {
            if e.file_name() == "emptied-at" {
                continue;
            }
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age >= self.ttl);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Forgets every answer (around anything that changes images): the entries go, and the
    /// marker says when, so an answer still on its way is not kept as current.
    pub fn clear(&self) {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::debug!("read cache: cannot clear {}: {e}", self.dir.display()),
        }
        let now = millis((self.clock)()).to_string();
        if let Err(e) = std::fs::create_dir_all(&self.dir)
            .and_then(|()| cws_util::fs::write_atomic(&self.marker(), now.as_bytes(), Some(0o600)))
        {
            tracing::debug!(
                "read cache: cannot mark {} emptied: {e}",
                self.dir.display()
            );
        }
    }

    async fn cached<T, F>(
        &self,
        op: &str,
        region: &str,
        args: &impl Serialize,
        call: F,
    ) -> ProviderResult<T>
    where
        T: Serialize + DeserializeOwned,
        F: std::future::Future<Output = ProviderResult<T>>,
    {
        let key = Self::key(op, region, args);
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let started = millis((self.clock)());
        let v = call.await?;
        self.put(&key, &v, started);
        Ok(v)
    }

    async fn changing<T>(
        &self,
        call: impl std::future::Future<Output = ProviderResult<T>>,
    ) -> ProviderResult<T> {
        // Before (so nothing cached is used while the change is under way, even if this
        // process is stopped mid-call) and after (so nothing read meanwhile outlives it).
        self.clear();
        let r = call.await;
        self.clear();
        r
    }
}

/// A kept `describe_best_image` answer and the time it was chosen at.
#[derive(Serialize, Deserialize)]
struct BestPick {
    #[serde(with = "crate::model::ec2_time")]
    chosen_at: DateTime<Utc>,
    pick: Option<(Image, bool)>,
}

#[async_trait]
impl<P: CloudProvider> ImageCatalog for DiskCache<P> {
    fn info(&self) -> ProviderInfo {
        self.inner.info()
    }

    async fn describe_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Image>> {
        self.cached(
            "describe_images_by_id",
            region,
            &ids,
            self.inner.describe_images_by_id(region, ids),
        )
        .await
    }

    async fn describe_images(
        &self,
        region: &str,
        query: &ImageQuery,
    ) -> ProviderResult<Vec<Image>> {
        self.cached(
            "describe_images",
            region,
            query,
            self.inner.describe_images(region, query),
        )
        .await
    }

    async fn describe_best_image(
        &self,
        region: &str,
        query: &ImageQuery,
        preferred: &[Architecture],
        now: DateTime<Utc>,
    ) -> ProviderResult<Option<(Image, bool)>> {
        // Kept without `now`, as `CachingProvider` does: time only moves images into
        // deprecation, so a pick still not deprecated at a later `now` still wins.
        let key = Self::key("describe_best_image", region, &(query, preferred));
        if let Some(kept) = self.get::<BestPick>(&key)
            && let Some(still) = crate::wrappers::kept_pick(kept.chosen_at, kept.pick.as_ref(), now)
        {
            return Ok(still);
        }
        let started = millis((self.clock)());
        let pick = self
            .inner
            .describe_best_image(region, query, preferred, now)
            .await?;
        self.put(
            &key,
            &BestPick {
                chosen_at: now,
                pick: pick.clone(),
            },
            started,
        );
        Ok(pick)
    }

    async fn describe_snapshots(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Snapshot>> {
        // Snapshot state is what deletions check: always asked.
        self.inner.describe_snapshots(region, ids).await
    }

    async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
        self.cached("describe_regions", "", &(), self.inner.describe_regions())
            .await
    }

    async fn find_marketplace_products(
        &self,
        query: &MarketplaceQuery,
    ) -> ProviderResult<Vec<MarketplaceProduct>> {
        self.cached(
            "find_marketplace_products",
            "",
            query,
            self.inner.find_marketplace_products(query),
        )
        .await
    }

    async fn account_id(&self) -> ProviderResult<Option<String>> {
        let key = Self::key("account_id", "", &());
        if let Some(Some(account)) = self.get::<Option<String>>(&key) {
            return Ok(Some(account));
        }
        let started = millis((self.clock)());
        let account = self.inner.account_id().await?;
        // An unknown account is asked again next time.
        if account.is_some() {
            self.put(&key, &account, started);
        }
        Ok(account)
    }

    fn answers_in_memory(&self) -> bool {
        self.inner.answers_in_memory()
    }
}

#[async_trait]
impl<P: CloudProvider> ImageAdmin for DiskCache<P> {
    async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image> {
        self.changing(self.inner.copy_image(request)).await
    }

    async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image> {
        self.changing(self.inner.create_image(request)).await
    }

    async fn create_tags(
        &self,
        region: &str,
        resource_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        self.changing(self.inner.create_tags(region, resource_id, tags))
            .await
    }

    async fn modify_launch_permission(
        &self,
        region: &str,
        image_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        self.changing(
            self.inner
                .modify_launch_permission(region, image_id, permission, add),
        )
        .await
    }

    async fn describe_launch_permissions(
        &self,
        region: &str,
        image_id: &str,
    ) -> ProviderResult<Vec<LaunchPermission>> {
        self.inner
            .describe_launch_permissions(region, image_id)
            .await
    }

    async fn modify_snapshot_permission(
        &self,
        region: &str,
        snapshot_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        self.changing(
            self.inner
                .modify_snapshot_permission(region, snapshot_id, permission, add),
        )
        .await
    }

    async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()> {
        self.changing(self.inner.deregister_image(region, image_id))
            .await
    }

    async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()> {
        self.changing(self.inner.delete_snapshot(region, snapshot_id))
            .await
    }

    async fn wait_image_available(
        &self,
        region: &str,
        image_id: &str,
        max_wait: Duration,
    ) -> ProviderResult<WaitOutcome<Image>> {
        // The image changed state: what was kept about it is stale.
        self.changing(self.inner.wait_image_available(region, image_id, max_wait))
            .await
    }
}

#[async_trait]
impl<P: CloudProvider> Instances for DiskCache<P> {
    async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance> {
        self.inner.run_instance(request).await
    }

    async fn describe_instances(
        &self,
        region: &str,
        filter: &InstanceFilter,
    ) -> ProviderResult<Vec<Instance>> {
        self.inner.describe_instances(region, filter).await
    }

    async fn start_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        self.inner.start_instance(region, instance_id).await
    }
    async fn console_output(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Option<String>> {
        self.inner.console_output(region, instance_id).await
    }
    async fn stop_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        self.inner.stop_instance(region, instance_id).await
    }

    async fn terminate_instance(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Instance> {
        self.inner.terminate_instance(region, instance_id).await
    }

    async fn wait_instance_running(
        &self,
        region: &str,
        instance_id: &str,
        max_wait: Duration,
    ) -> ProviderResult<WaitOutcome<Instance>> {
        self.inner
            .wait_instance_running(region, instance_id, max_wait)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn file_names_are_stable_hashes() {
        // FNV-1a test vectors: the names must not change between builds or versions.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
