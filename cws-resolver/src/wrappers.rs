//! Cross-cutting behaviour as wrappers around any [`CloudProvider`].
//!
//! Each wrapper implements the same trait as the provider it wraps (the `object_store`
//! `ThrottledStore`/`LimitStore` shape), so they stack in any order and the code using them
//! cannot tell a wrapped provider from a bare one:
//!
//! - [`CountingProvider`] counts calls per operation (benchmarks report "calls per resolution");
//! - [`CachingProvider`] answers repeated read-only calls from memory for a TTL;
//! - [`LatencyProvider`] adds a fixed delay to every call (to measure concurrency gains);
//! - [`FaultProvider`] makes chosen calls fail, deterministically (to test error paths).
//!
//! None of them changes [`CloudProvider::info`]: a wrapper does not change who the provider is.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::time::Instant;

use crate::error::{ProviderError, ProviderResult};
use crate::model::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, Instance, InstanceFilter,
    LaunchPermission, MarketplaceProduct, MarketplaceQuery, ProviderInfo, RunInstanceRequest,
    Snapshot,
};
use crate::provider::CloudProvider;

/// One [`CloudProvider`] operation, named like the trait method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// [`CloudProvider::describe_images_by_id`].
    DescribeImagesById,
    /// [`CloudProvider::describe_images`].
    DescribeImages,
    /// [`CloudProvider::describe_snapshots`].
    DescribeSnapshots,
    /// [`CloudProvider::describe_regions`].
    DescribeRegions,
    /// [`CloudProvider::copy_image`].
    CopyImage,
    /// [`CloudProvider::create_image`].
    CreateImage,
    /// [`CloudProvider::create_tags`].
    CreateTags,
    /// [`CloudProvider::modify_launch_permission`].
    ModifyLaunchPermission,
    /// [`CloudProvider::describe_launch_permissions`].
    DescribeLaunchPermissions,
    /// [`CloudProvider::modify_snapshot_permission`].
    ModifySnapshotPermission,
    /// [`CloudProvider::deregister_image`].
    DeregisterImage,
    /// [`CloudProvider::delete_snapshot`].
    DeleteSnapshot,
    /// [`CloudProvider::run_instance`].
    RunInstance,
    /// [`CloudProvider::describe_instances`].
    DescribeInstances,
    /// [`CloudProvider::stop_instance`].
    StopInstance,
    /// [`CloudProvider::terminate_instance`].
    TerminateInstance,
    /// [`CloudProvider::find_marketplace_products`].
    FindMarketplaceProducts,
}

impl Operation {
    /// Every operation, in trait order.
    pub const ALL: [Operation; 17] = [
        Operation::DescribeImagesById,
        Operation::DescribeImages,
        Operation::DescribeSnapshots,
        Operation::DescribeRegions,
        Operation::CopyImage,
        Operation::CreateImage,
        Operation::CreateTags,
        Operation::ModifyLaunchPermission,
        Operation::DescribeLaunchPermissions,
        Operation::ModifySnapshotPermission,
        Operation::DeregisterImage,
        Operation::DeleteSnapshot,
        Operation::RunInstance,
        Operation::DescribeInstances,
        Operation::StopInstance,
        Operation::TerminateInstance,
        Operation::FindMarketplaceProducts,
    ];

    /// The trait method's name, e.g. `describe_images`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::DescribeImagesById => "describe_images_by_id",
            Operation::DescribeImages => "describe_images",
            Operation::DescribeSnapshots => "describe_snapshots",
            Operation::DescribeRegions => "describe_regions",
            Operation::CopyImage => "copy_image",
            Operation::CreateImage => "create_image",
            Operation::CreateTags => "create_tags",
            Operation::ModifyLaunchPermission => "modify_launch_permission",
            Operation::DescribeLaunchPermissions => "describe_launch_permissions",
            Operation::ModifySnapshotPermission => "modify_snapshot_permission",
            Operation::DeregisterImage => "deregister_image",
            Operation::DeleteSnapshot => "delete_snapshot",
            Operation::RunInstance => "run_instance",
            Operation::DescribeInstances => "describe_instances",
            Operation::StopInstance => "stop_instance",
            Operation::TerminateInstance => "terminate_instance",
            Operation::FindMarketplaceProducts => "find_marketplace_products",
        }
    }

    /// The IAM action behind the operation, for permission errors.
    pub fn iam_action(self) -> &'static str {
        match self {
            Operation::DescribeImagesById | Operation::DescribeImages => "ec2:DescribeImages",
            Operation::DescribeSnapshots => "ec2:DescribeSnapshots",
            Operation::DescribeRegions => "ec2:DescribeRegions",
            Operation::CopyImage => "ec2:CopyImage",
            Operation::CreateImage => "ec2:CreateImage",
            Operation::CreateTags => "ec2:CreateTags",
            Operation::ModifyLaunchPermission => "ec2:ModifyImageAttribute",
            Operation::DescribeLaunchPermissions => "ec2:DescribeImageAttribute",
            Operation::ModifySnapshotPermission => "ec2:ModifySnapshotAttribute",
            Operation::DeregisterImage => "ec2:DeregisterImage",
            Operation::DeleteSnapshot => "ec2:DeleteSnapshot",
            Operation::RunInstance => "ec2:RunInstances",
            Operation::DescribeInstances => "ec2:DescribeInstances",
            Operation::StopInstance => "ec2:StopInstances",
            Operation::TerminateInstance => "ec2:TerminateInstances",
            Operation::FindMarketplaceProducts => "aws-marketplace:ListEntities",
        }
    }

    /// Whether the operation only reads state (no side effects in the cloud).
    pub fn is_read_only(self) -> bool {
        matches!(
            self,
            Operation::DescribeImagesById
                | Operation::DescribeImages
                | Operation::DescribeSnapshots
                | Operation::DescribeRegions
                | Operation::DescribeLaunchPermissions
                | Operation::DescribeInstances
                | Operation::FindMarketplaceProducts
        )
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Operation {
    type Err = ProviderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| ProviderError::InvalidInput {
                message: format!(
                    "unknown provider operation `{s}`; expected one of: {}",
                    Operation::ALL.map(Operation::as_str).join(", ")
                ),
            })
    }
}

/// Something that runs before every forwarded call and may refuse it.
///
/// Counting, latency and fault injection are all "do something, then forward", so one macro
/// implements the trait for the three of them from this hook.
#[async_trait]
trait BeforeCall: Send + Sync {
    async fn before(&self, op: Operation, region: Option<&str>) -> ProviderResult<()>;
}

macro_rules! forward_with_hook {
    ($wrapper:ident) => {
        #[async_trait]
        impl<P: CloudProvider> CloudProvider for $wrapper<P> {
            fn info(&self) -> ProviderInfo {
                self.inner.info()
            }
            async fn describe_images_by_id(
                &self,
                region: &str,
                ids: &[String],
            ) -> ProviderResult<Vec<Image>> {
                self.before(Operation::DescribeImagesById, Some(region))
                    .await?;
                self.inner.describe_images_by_id(region, ids).await
            }
            async fn describe_images(
                &self,
                region: &str,
                query: &ImageQuery,
            ) -> ProviderResult<Vec<Image>> {
                self.before(Operation::DescribeImages, Some(region)).await?;
                self.inner.describe_images(region, query).await
            }
            async fn describe_snapshots(
                &self,
                region: &str,
                ids: &[String],
            ) -> ProviderResult<Vec<Snapshot>> {
                self.before(Operation::DescribeSnapshots, Some(region))
                    .await?;
                self.inner.describe_snapshots(region, ids).await
            }
            async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
                self.before(Operation::DescribeRegions, None).await?;
                self.inner.describe_regions().await
            }
            async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image> {
                self.before(Operation::CopyImage, Some(&request.target_region))
                    .await?;
                self.inner.copy_image(request).await
            }
            async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image> {
                self.before(Operation::CreateImage, Some(&request.region))
                    .await?;
                self.inner.create_image(request).await
            }
            async fn create_tags(
                &self,
                region: &str,
                resource_id: &str,
                tags: &BTreeMap<String, String>,
            ) -> ProviderResult<()> {
                self.before(Operation::CreateTags, Some(region)).await?;
                self.inner.create_tags(region, resource_id, tags).await
            }
            async fn modify_launch_permission(
                &self,
                region: &str,
                image_id: &str,
                permission: &LaunchPermission,
                add: bool,
            ) -> ProviderResult<()> {
                self.before(Operation::ModifyLaunchPermission, Some(region))
                    .await?;
                self.inner
                    .modify_launch_permission(region, image_id, permission, add)
                    .await
            }
            async fn describe_launch_permissions(
                &self,
                region: &str,
                image_id: &str,
            ) -> ProviderResult<Vec<LaunchPermission>> {
                self.before(Operation::DescribeLaunchPermissions, Some(region))
                    .await?;
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
                self.before(Operation::ModifySnapshotPermission, Some(region))
                    .await?;
                self.inner
                    .modify_snapshot_permission(region, snapshot_id, permission, add)
                    .await
            }
            async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()> {
                self.before(Operation::DeregisterImage, Some(region))
                    .await?;
                self.inner.deregister_image(region, image_id).await
            }
            async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()> {
                self.before(Operation::DeleteSnapshot, Some(region)).await?;
                self.inner.delete_snapshot(region, snapshot_id).await
            }
            async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance> {
                self.before(Operation::RunInstance, Some(&request.region))
                    .await?;
                self.inner.run_instance(request).await
            }
            async fn describe_instances(
                &self,
                region: &str,
                filter: &InstanceFilter,
            ) -> ProviderResult<Vec<Instance>> {
                self.before(Operation::DescribeInstances, Some(region))
                    .await?;
                self.inner.describe_instances(region, filter).await
            }
            async fn stop_instance(
                &self,
                region: &str,
                instance_id: &str,
            ) -> ProviderResult<Instance> {
                self.before(Operation::StopInstance, Some(region)).await?;
                self.inner.stop_instance(region, instance_id).await
            }
            async fn terminate_instance(
                &self,
                region: &str,
                instance_id: &str,
            ) -> ProviderResult<Instance> {
                self.before(Operation::TerminateInstance, Some(region))
                    .await?;
                self.inner.terminate_instance(region, instance_id).await
            }
            async fn find_marketplace_products(
                &self,
                query: &MarketplaceQuery,
            ) -> ProviderResult<Vec<MarketplaceProduct>> {
                self.before(Operation::FindMarketplaceProducts, None)
                    .await?;
                self.inner.find_marketplace_products(query).await
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Counting

/// Counts calls per operation; the benchmarks' "provider calls per resolution".
///
/// Counters are atomics, so counting adds no lock to the call path. A call is counted when it
/// is made, whether or not the inner provider then succeeds.
#[derive(Debug)]
pub struct CountingProvider<P> {
    inner: P,
    counts: [AtomicU64; Operation::ALL.len()],
}

impl<P: CloudProvider> CountingProvider<P> {
    /// Wraps `inner` with all counters at zero.
    pub fn new(inner: P) -> Self {
        CountingProvider {
            inner,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Calls per operation name. Every operation is present, uncalled ones with zero, so
    /// `calls()["describe_images"]` never panics.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        Operation::ALL
            .iter()
            .map(|op| (op.as_str(), self.count(*op)))
            .collect()
    }

    /// Calls of one operation.
    pub fn count(&self, op: Operation) -> u64 {
        self.counts[op as usize].load(Ordering::Relaxed)
    }

    /// Calls of all operations.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

#[async_trait]
impl<P: CloudProvider> BeforeCall for CountingProvider<P> {
    async fn before(&self, op: Operation, _region: Option<&str>) -> ProviderResult<()> {
        self.counts[op as usize].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

forward_with_hook!(CountingProvider);

// ---------------------------------------------------------------------------------------------
// Latency

/// Sleeps a fixed time before every call, to model a provider's round trip.
///
/// Uses `tokio::time::sleep`, so tests with a paused clock run instantly and benchmarks can
/// show concurrent probes costing one round trip instead of one per tier.
#[derive(Debug)]
pub struct LatencyProvider<P> {
    inner: P,
    latency: Duration,
}

impl<P: CloudProvider> LatencyProvider<P> {
    /// Wraps `inner`, delaying every call by `latency`.
    pub fn new(inner: P, latency: Duration) -> Self {
        LatencyProvider { inner, latency }
    }

    /// The injected delay.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

#[async_trait]
impl<P: CloudProvider> BeforeCall for LatencyProvider<P> {
    async fn before(&self, _op: Operation, _region: Option<&str>) -> ProviderResult<()> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        Ok(())
    }
}

forward_with_hook!(LatencyProvider);

// ---------------------------------------------------------------------------------------------
// Faults

/// The kind of error a [`FaultRule`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// [`ProviderError::Throttled`] (transient).
    Throttled,
    /// [`ProviderError::Unavailable`] (transient).
    Unavailable,
    /// [`ProviderError::PermissionDenied`] naming the operation's IAM action.
    PermissionDenied,
    /// [`ProviderError::Generic`].
    Generic,
}

impl FaultKind {
    fn error(self, provider: &str, op: Operation, region: Option<&str>) -> ProviderError {
        let place = region.map(|r| format!(" in {r}")).unwrap_or_default();
        let message = format!("injected fault: {op}{place}");
        match self {
            FaultKind::Throttled => ProviderError::Throttled { message },
            FaultKind::Unavailable => ProviderError::Unavailable {
                endpoint: provider.to_string(),
                message,
            },
            FaultKind::PermissionDenied => ProviderError::PermissionDenied {
                action: op.iam_action().to_string(),
                message,
            },
            FaultKind::Generic => ProviderError::generic(provider, message),
        }
    }
}

/// Which calls fail, how, and how often.
///
/// ```
/// use cws_resolver::wrappers::{FaultKind, FaultRule, Operation};
/// // The next two describe_images calls in us-east-1 are throttled.
/// let rule = FaultRule::new(FaultKind::Throttled)
///     .operation(Operation::DescribeImages)
///     .region("us-east-1")
///     .times(2);
/// # let _ = rule;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// The operation to fail; `None` matches every operation.
    pub operation: Option<Operation>,
    /// The region to fail in; `None` matches every region (and the region-less calls
    /// `describe_regions` and `find_marketplace_products`, which a region rule never matches).
    pub region: Option<String>,
    /// The error to return.
    pub kind: FaultKind,
    /// How many more matching calls fail; `None` means every one.
    pub remaining: Option<u64>,
}

impl FaultRule {
    /// A rule failing every call, always, with `kind`; narrow it with the builder methods.
    pub fn new(kind: FaultKind) -> Self {
        FaultRule {
            operation: None,
            region: None,
            kind,
            remaining: None,
        }
    }

    /// Only this operation.
    pub fn operation(mut self, op: Operation) -> Self {
        self.operation = Some(op);
        self
    }

    /// Only calls in this region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Only the next `n` matching calls.
    pub fn times(mut self, n: u64) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Every matching call (the default).
    pub fn always(mut self) -> Self {
        self.remaining = None;
        self
    }

    fn matches(&self, op: Operation, region: Option<&str>) -> bool {
        self.remaining != Some(0)
            && self.operation.is_none_or(|o| o == op)
            && self.region.as_deref().is_none_or(|r| region == Some(r))
    }
}

/// Fails calls according to [`FaultRule`]s; everything else is forwarded.
///
/// Rules are checked in the order they were added and the first live match fires, so the
/// outcome of a call sequence is fully deterministic. A failed call does not reach the inner
/// provider.
#[derive(Debug)]
pub struct FaultProvider<P> {
    inner: P,
    rules: Mutex<Vec<FaultRule>>,
    injected: AtomicU64,
}

impl<P: CloudProvider> FaultProvider<P> {
    /// Wraps `inner` with no rules (everything passes).
    pub fn new(inner: P) -> Self {
        FaultProvider {
            inner,
            rules: Mutex::new(Vec::new()),
            injected: AtomicU64::new(0),
        }
    }

    /// Adds a rule (after the existing ones).
    pub fn fail(&self, rule: FaultRule) -> &Self {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rule);
        self
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// How many calls have been failed so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

#[async_trait]
impl<P: CloudProvider> BeforeCall for FaultProvider<P> {
    async fn before(&self, op: Operation, region: Option<&str>) -> ProviderResult<()> {
        let kind = {
            let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            match rules.iter_mut().find(|r| r.matches(op, region)) {
                Some(rule) => {
                    if let Some(n) = rule.remaining.as_mut() {
                        *n -= 1;
                    }
                    Some(rule.kind)
                }
                None => None,
            }
        };
        match kind {
            Some(kind) => {
                self.injected.fetch_add(1, Ordering::Relaxed);
                Err(kind.error(&self.inner.info().name, op, region))
            }
            None => Ok(()),
        }
    }
}

forward_with_hook!(FaultProvider);

// ---------------------------------------------------------------------------------------------
// Caching

/// A cached answer.
#[derive(Debug, Clone)]
enum Cached {
    Images(Vec<Image>),
    Snapshots(Vec<Snapshot>),
    Regions(Vec<String>),
    Products(Vec<MarketplaceProduct>),
    Permissions(Vec<LaunchPermission>),
}

/// (operation, region — empty for global calls, serialized arguments).
type CacheKey = (Operation, String, String);

#[derive(Debug)]
struct CacheState {
    entries: HashMap<CacheKey, (Instant, Cached)>,
    hits: u64,
    misses: u64,
}

/// Answers repeated read-only calls from memory for a time-to-live.
///
/// Cached: `describe_images_by_id`, `describe_images`, `describe_snapshots`,
/// `describe_regions`, `find_marketplace_products` and `describe_launch_permissions`, keyed by
/// operation, region and the serialized arguments. Instances are never cached (their state
/// changes behind our back). Any mutating call — successful or not, since a failed call may
/// still have changed something — drops the cached entries of the region it touched
/// (`copy_image` drops both regions). Errors are never cached. Concurrent identical misses
/// each reach the inner provider (no request coalescing).
///
/// Expiry uses `tokio::time::Instant`, so tests can advance a paused clock.
#[derive(Debug)]
pub struct CachingProvider<P> {
    inner: P,
    ttl: Duration,
    state: Mutex<CacheState>,
}

impl<P: CloudProvider> CachingProvider<P> {
    /// Wraps `inner`, keeping answers for `ttl`.
    pub fn new(inner: P, ttl: Duration) -> Self {
        CachingProvider {
            inner,
            ttl,
            state: Mutex::new(CacheState {
                entries: HashMap::new(),
                hits: 0,
                misses: 0,
            }),
        }
    }

    /// Drops every cached answer.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    /// Calls answered from the cache.
    pub fn hits(&self) -> u64 {
        self.lock().hits
    }

    /// Cacheable calls that went to the inner provider.
    pub fn misses(&self) -> u64 {
        self.lock().misses
    }

    /// Live (unexpired) entries.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .entries
            .values()
            .filter(|(at, _)| now.duration_since(*at) < self.ttl)
            .count()
    }

    /// Whether nothing live is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(op: Operation, region: &str, args: &impl Serialize) -> CacheKey {
        // Serializing the model types cannot fail (plain structs with string keys), so the
        // empty fallback is unreachable; it exists only to avoid a panic path.
        let args = serde_json::to_string(args).unwrap_or_default();
        (op, region.to_string(), args)
    }

    fn get(&self, key: &CacheKey) -> Option<Cached> {
        let mut state = self.lock();
        let now = Instant::now();
        let live = match state.entries.get(key) {
            Some((at, value)) if now.duration_since(*at) < self.ttl => Some(value.clone()),
            Some(_) => {
                state.entries.remove(key);
                None
            }
            None => None,
        };
        if live.is_some() {
            state.hits += 1;
        } else {
            state.misses += 1;
        }
        live
    }

    fn put(&self, key: CacheKey, value: Cached) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.lock();
        let now = Instant::now();
        let ttl = self.ttl;
        // Keep the map from growing without bound under many distinct queries.
        if state.entries.len() >= 4096 {
            state
                .entries
                .retain(|_, (at, _)| now.duration_since(*at) < ttl);
        }
        state.entries.insert(key, (now, value));
    }

    fn invalidate(&self, regions: &[&str]) {
        self.lock()
            .entries
            .retain(|(_, region, _), _| !regions.contains(&region.as_str()));
    }
}

macro_rules! cached_call {
    ($self:ident, $op:expr, $region:expr, $args:expr, $variant:ident, $call:expr) => {{
        let key = Self::key($op, $region, &$args);
        if let Some(Cached::$variant(v)) = $self.get(&key) {
            return Ok(v);
        }
        let value = $call.await?;
        $self.put(key, Cached::$variant(value.clone()));
        Ok(value)
    }};
}

#[async_trait]
impl<P: CloudProvider> CloudProvider for CachingProvider<P> {
    fn info(&self) -> ProviderInfo {
        self.inner.info()
    }

    async fn describe_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Image>> {
        cached_call!(
            self,
            Operation::DescribeImagesById,
            region,
            ids,
            Images,
            self.inner.describe_images_by_id(region, ids)
        )
    }

    async fn describe_images(
        &self,
        region: &str,
        query: &ImageQuery,
    ) -> ProviderResult<Vec<Image>> {
        cached_call!(
            self,
            Operation::DescribeImages,
            region,
            query,
            Images,
            self.inner.describe_images(region, query)
        )
    }

    async fn describe_snapshots(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Snapshot>> {
        cached_call!(
            self,
            Operation::DescribeSnapshots,
            region,
            ids,
            Snapshots,
            self.inner.describe_snapshots(region, ids)
        )
    }

    async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
        cached_call!(
            self,
            Operation::DescribeRegions,
            "",
            (),
            Regions,
            self.inner.describe_regions()
        )
    }

    async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image> {
        let result = self.inner.copy_image(request).await;
        self.invalidate(&[&request.target_region, &request.source_region]);
        result
    }

    async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image> {
        let result = self.inner.create_image(request).await;
        self.invalidate(&[&request.region]);
        result
    }

    async fn create_tags(
        &self,
        region: &str,
        resource_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        let result = self.inner.create_tags(region, resource_id, tags).await;
        self.invalidate(&[region]);
        result
    }

    async fn modify_launch_permission(
        &self,
        region: &str,
        image_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        let result = self
            .inner
            .modify_launch_permission(region, image_id, permission, add)
            .await;
        self.invalidate(&[region]);
        result
    }

    async fn describe_launch_permissions(
        &self,
        region: &str,
        image_id: &str,
    ) -> ProviderResult<Vec<LaunchPermission>> {
        cached_call!(
            self,
            Operation::DescribeLaunchPermissions,
            region,
            image_id,
            Permissions,
            self.inner.describe_launch_permissions(region, image_id)
        )
    }

    async fn modify_snapshot_permission(
        &self,
        region: &str,
        snapshot_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        let result = self
            .inner
            .modify_snapshot_permission(region, snapshot_id, permission, add)
            .await;
        self.invalidate(&[region]);
        result
    }

    async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()> {
        let result = self.inner.deregister_image(region, image_id).await;
        self.invalidate(&[region]);
        result
    }

    async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()> {
        // A deleted snapshot must vanish from cached `describe_snapshots` answers (and with
        // it from image sizes), so the region goes, as for every mutation.
        let result = self.inner.delete_snapshot(region, snapshot_id).await;
        self.invalidate(&[region]);
        result
    }

    async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance> {
        let result = self.inner.run_instance(request).await;
        self.invalidate(&[&request.region]);
        result
    }

    async fn describe_instances(
        &self,
        region: &str,
        filter: &InstanceFilter,
    ) -> ProviderResult<Vec<Instance>> {
        self.inner.describe_instances(region, filter).await
    }

    async fn stop_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        let result = self.inner.stop_instance(region, instance_id).await;
        self.invalidate(&[region]);
        result
    }

    async fn terminate_instance(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Instance> {
        let result = self.inner.terminate_instance(region, instance_id).await;
        self.invalidate(&[region]);
        result
    }

    async fn find_marketplace_products(
        &self,
        query: &MarketplaceQuery,
    ) -> ProviderResult<Vec<MarketplaceProduct>> {
        cached_call!(
            self,
            Operation::FindMarketplaceProducts,
            "",
            query,
            Products,
            self.inner.find_marketplace_products(query)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalCloud;
    use cws_template::Architecture;

    const REGION: &str = "us-east-1";

    fn canonical() -> ImageQuery {
        ImageQuery::owned_by([crate::local::CANONICAL_OWNER]).name("ubuntu/images/*")
    }

    fn tag(k: &str, v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(k.to_string(), v.to_string())])
    }

    async fn own_image(p: &dyn CloudProvider, region: &str) -> Image {
        let base = p
            .describe_images(region, &canonical())
            .await
            .unwrap()
            .pop()
            .unwrap();
        p.copy_image(&CopyImageRequest {
            source_region: region.to_string(),
            source_image_id: base.id,
            target_region: region.to_string(),
            name: format!("own-{region}"),
            description: None,
            tags: BTreeMap::new(),
        })
        .await
        .unwrap()
    }

    #[test]
    fn operations_round_trip_through_their_names() {
        for op in Operation::ALL {
            assert_eq!(op.as_str().parse::<Operation>().unwrap(), op);
            assert_eq!(op.to_string(), op.as_str());
            assert!(op.iam_action().contains(':'));
        }
        let err = "describe_everything".parse::<Operation>().unwrap_err();
        assert!(err.to_string().contains("describe_images"), "{err}");
        assert!(Operation::DescribeImages.is_read_only());
        assert!(!Operation::CopyImage.is_read_only());
        assert!(!Operation::DeleteSnapshot.is_read_only());
        assert_eq!(
            Operation::ModifySnapshotPermission.iam_action(),
            "ec2:ModifySnapshotAttribute"
        );
        assert_eq!(Operation::DeleteSnapshot.iam_action(), "ec2:DeleteSnapshot");
        // ALL lists every variant once, in declaration order (the counters index by it).
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op}");
        }
    }

    #[tokio::test]
    async fn wrappers_keep_the_inner_identity() {
        let expected = LocalCloud::empty().info();
        let stacked = CachingProvider::new(
            FaultProvider::new(LatencyProvider::new(
                CountingProvider::new(LocalCloud::empty()),
                Duration::ZERO,
            )),
            Duration::from_secs(60),
        );
        assert_eq!(stacked.info(), expected);
        // And they stay usable as trait objects.
        let dynamic: &dyn CloudProvider = &stacked;
        assert!(
            dynamic
                .describe_regions()
                .await
                .unwrap()
                .contains(&REGION.to_string())
        );
    }

    #[tokio::test]
    async fn counting_counts_each_operation() {
        let p = CountingProvider::new(LocalCloud::in_memory());
        assert_eq!(p.total(), 0);
        assert_eq!(p.calls().len(), Operation::ALL.len());
        p.describe_images(REGION, &canonical()).await.unwrap();
        p.describe_images(REGION, &canonical()).await.unwrap();
        p.describe_regions().await.unwrap();
        // Failed calls count too: they were round trips.
        p.describe_images(REGION, &ImageQuery::default())
            .await
            .unwrap_err();
        let calls = p.calls();
        assert_eq!(calls["describe_images"], 3);
        assert_eq!(calls["describe_regions"], 1);
        assert_eq!(calls["copy_image"], 0);
        assert_eq!(p.count(Operation::DescribeImages), 3);
        assert_eq!(p.total(), 4);
        p.reset();
        assert_eq!(p.total(), 0);
    }

    #[tokio::test]
    async fn counting_is_exact_under_concurrency() {
        let p = std::sync::Arc::new(CountingProvider::new(LocalCloud::in_memory()));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move {
                    for _ in 0..10 {
                        p.describe_regions().await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(p.count(Operation::DescribeRegions), 160);
    }

    #[tokio::test]
    async fn cache_hit_makes_zero_inner_calls() {
        let p = CachingProvider::new(
            CountingProvider::new(LocalCloud::in_memory()),
            Duration::from_secs(60),
        );
        let first = p.describe_images(REGION, &canonical()).await.unwrap();
        let second = p.describe_images(REGION, &canonical()).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(p.inner().total(), 1, "the repeat was served from the cache");
        assert_eq!((p.hits(), p.misses()), (1, 1));

        // Different arguments or regions are different entries.
        p.describe_images(REGION, &canonical().architectures([Architecture::Arm64]))
            .await
            .unwrap();
        p.describe_images("us-west-2", &canonical()).await.unwrap();
        assert_eq!(p.inner().total(), 3);

        // Every cached read-only operation.
        let id = first[0].id.clone();
        for _ in 0..2 {
            p.describe_images_by_id(REGION, std::slice::from_ref(&id))
                .await
                .unwrap();
            p.describe_snapshots(REGION, &first[0].snapshot_ids)
                .await
                .unwrap();
            p.describe_regions().await.unwrap();
            p.find_marketplace_products(&MarketplaceQuery::default())
                .await
                .unwrap();
        }
        assert_eq!(p.inner().total(), 7);
        assert_eq!(p.len(), 7);

        // Instances are never cached.
        for _ in 0..2 {
            p.describe_instances(REGION, &InstanceFilter::default())
                .await
                .unwrap();
        }
        assert_eq!(p.inner().count(Operation::DescribeInstances), 2);

        p.clear();
        assert!(p.is_empty());
        p.describe_images(REGION, &canonical()).await.unwrap();
        assert_eq!(p.inner().count(Operation::DescribeImages), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn cache_entries_expire_after_the_ttl() {
        let ttl = Duration::from_secs(30);
        let p = CachingProvider::new(CountingProvider::new(LocalCloud::in_memory()), ttl);
        p.describe_regions().await.unwrap();
        tokio::time::advance(ttl - Duration::from_millis(1)).await;
        p.describe_regions().await.unwrap();
        assert_eq!(p.inner().total(), 1, "still fresh just before the TTL");
        tokio::time::advance(Duration::from_millis(1)).await;
        p.describe_regions().await.unwrap();
        assert_eq!(p.inner().total(), 2, "expired at the TTL");
    }

    #[tokio::test]
    async fn zero_ttl_caches_nothing() {
        let p = CachingProvider::new(
            CountingProvider::new(LocalCloud::in_memory()),
            Duration::ZERO,
        );
        p.describe_regions().await.unwrap();
        p.describe_regions().await.unwrap();
        assert_eq!(p.inner().total(), 2);
    }

    #[tokio::test]
    async fn mutations_invalidate_their_region_only() {
        let p = CachingProvider::new(
            CountingProvider::new(LocalCloud::in_memory()),
            Duration::from_secs(60),
        );
        let mine = own_image(&p, REGION).await;
        let query = ImageQuery::owned_by(["self"]).tag("team", "genomics");
        assert!(p.describe_images(REGION, &query).await.unwrap().is_empty());
        p.describe_images("eu-west-1", &query).await.unwrap();
        p.describe_regions().await.unwrap();
        let before = p.inner().count(Operation::DescribeImages);

        p.create_tags(REGION, &mine.id, &tag("team", "genomics"))
            .await
            .unwrap();
        // Without invalidation this would be the stale empty answer.
        let found = p.describe_images(REGION, &query).await.unwrap();
        assert_eq!(found.len(), 1);
        // Other regions and global answers are still cached.
        p.describe_images("eu-west-1", &query).await.unwrap();
        p.describe_regions().await.unwrap();
        assert_eq!(p.inner().count(Operation::DescribeImages), before + 1);
        assert_eq!(p.inner().count(Operation::DescribeRegions), 1);

        // Launch permissions are invalidated by modify.
        assert!(
            p.describe_launch_permissions(REGION, &mine.id)
                .await
                .unwrap()
                .is_empty()
        );
        p.modify_launch_permission(REGION, &mine.id, &LaunchPermission::Public, true)
            .await
            .unwrap();
        assert_eq!(
            p.describe_launch_permissions(REGION, &mine.id)
                .await
                .unwrap(),
            vec![LaunchPermission::Public]
        );

        // A copy invalidates its target region.
        let target_query = ImageQuery::owned_by(["self"]).name("copied");
        assert!(
            p.describe_images("us-west-2", &target_query)
                .await
                .unwrap()
                .is_empty()
        );
        p.copy_image(&CopyImageRequest {
            source_region: REGION.to_string(),
            source_image_id: mine.id.clone(),
            target_region: "us-west-2".to_string(),
            name: "copied".to_string(),
            description: None,
            tags: BTreeMap::new(),
        })
        .await
        .unwrap();
        assert_eq!(
            p.describe_images("us-west-2", &target_query)
                .await
                .unwrap()
                .len(),
            1
        );

        // Deregistering invalidates too.
        let by_id = [mine.id.clone()];
        assert_eq!(
            p.describe_images_by_id(REGION, &by_id).await.unwrap().len(),
            1
        );
        p.deregister_image(REGION, &mine.id).await.unwrap();
        assert!(
            p.describe_images_by_id(REGION, &by_id)
                .await
                .unwrap()
                .is_empty()
        );

        // So do snapshot permission changes and deletions: a deleted snapshot must not be
        // served from the cache.
        let snaps = mine.snapshot_ids.clone();
        assert_eq!(p.describe_snapshots(REGION, &snaps).await.unwrap().len(), 1);
        p.describe_snapshots(REGION, &snaps).await.unwrap();
        let before = p.inner().count(Operation::DescribeSnapshots);
        p.modify_snapshot_permission(REGION, &snaps[0], &LaunchPermission::Public, true)
            .await
            .unwrap();
        p.describe_snapshots(REGION, &snaps).await.unwrap();
        assert_eq!(p.inner().count(Operation::DescribeSnapshots), before + 1);
        p.delete_snapshot(REGION, &snaps[0]).await.unwrap();
        assert!(
            p.describe_snapshots(REGION, &snaps)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(p.inner().count(Operation::ModifySnapshotPermission), 1);
        assert_eq!(p.inner().count(Operation::DeleteSnapshot), 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let p = CachingProvider::new(
            FaultProvider::new(CountingProvider::new(LocalCloud::in_memory())),
            Duration::from_secs(60),
        );
        p.inner().fail(
            FaultRule::new(FaultKind::Unavailable)
                .operation(Operation::DescribeRegions)
                .times(1),
        );
        assert_eq!(
            p.describe_regions().await.unwrap_err().kind(),
            "unavailable"
        );
        assert!(
            p.describe_regions().await.is_ok(),
            "the failure was not remembered"
        );
        assert!(p.describe_regions().await.is_ok());
        assert_eq!(p.inner().inner().count(Operation::DescribeRegions), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_delays_every_call_and_overlaps_when_concurrent() {
        let latency = Duration::from_millis(250);
        let p = LatencyProvider::new(LocalCloud::in_memory(), latency);
        assert_eq!(p.latency(), latency);
        let start = tokio::time::Instant::now();
        p.describe_regions().await.unwrap();
        assert_eq!(start.elapsed(), latency);

        let (query, products) = (canonical(), MarketplaceQuery::default());
        let start = tokio::time::Instant::now();
        let (a, b, c) = tokio::join!(
            p.describe_regions(),
            p.describe_images(REGION, &query),
            p.find_marketplace_products(&products),
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert_eq!(
            start.elapsed(),
            latency,
            "three concurrent calls cost one round trip"
        );

        let start = tokio::time::Instant::now();
        p.describe_regions().await.unwrap();
        p.describe_regions().await.unwrap();
        assert_eq!(start.elapsed(), latency * 2, "sequential calls add up");
    }

    #[tokio::test]
    async fn faults_fire_for_the_next_n_matching_calls() {
        let p = FaultProvider::new(CountingProvider::new(LocalCloud::in_memory()));
        p.fail(
            FaultRule::new(FaultKind::Throttled)
                .operation(Operation::DescribeImages)
                .region(REGION)
                .times(2),
        );
        for _ in 0..2 {
            let err = p.describe_images(REGION, &canonical()).await.unwrap_err();
            assert_eq!(err.kind(), "throttled");
            assert!(err.is_transient());
            assert!(
                err.to_string().contains("describe_images in us-east-1"),
                "{err}"
            );
        }
        assert_eq!(
            p.inner().total(),
            0,
            "failed calls never reach the provider"
        );
        // Other regions and operations were never affected.
        p.describe_images("us-west-2", &canonical()).await.unwrap();
        p.describe_regions().await.unwrap();
        // The rule is spent.
        p.describe_images(REGION, &canonical()).await.unwrap();
        assert_eq!(p.injected(), 2);
    }

    #[tokio::test]
    async fn fault_kinds_and_always_rules() {
        let p = FaultProvider::new(LocalCloud::in_memory());
        p.fail(
            FaultRule::new(FaultKind::PermissionDenied)
                .operation(Operation::CopyImage)
                .always(),
        );
        p.fail(FaultRule::new(FaultKind::Generic).region("eu-west-1"));
        let copy = CopyImageRequest {
            source_region: REGION.to_string(),
            source_image_id: "ami-0123456789abcdef0".to_string(),
            target_region: "us-west-2".to_string(),
            name: "x-copy".to_string(),
            description: None,
            tags: BTreeMap::new(),
        };
        for _ in 0..3 {
            match p.copy_image(&copy).await.unwrap_err() {
                ProviderError::PermissionDenied { action, .. } => {
                    assert_eq!(action, "ec2:CopyImage")
                }
                other => panic!("unexpected {other}"),
            }
        }
        let err = p
            .describe_instances("eu-west-1", &InstanceFilter::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "generic");
        assert!(err.to_string().starts_with("local error"), "{err}");
        // A region rule never matches the region-less calls.
        p.describe_regions().await.unwrap();
        // First matching rule wins, in insertion order.
        p.fail(FaultRule::new(FaultKind::Unavailable));
        assert_eq!(
            p.describe_regions().await.unwrap_err().kind(),
            "unavailable"
        );
        assert_eq!(
            p.describe_instances("eu-west-1", &InstanceFilter::default())
                .await
                .unwrap_err()
                .kind(),
            "generic"
        );
        p.clear();
        p.describe_regions().await.unwrap();
        assert_eq!(p.injected(), 6);
    }
}
