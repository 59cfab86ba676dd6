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
//! None of them changes [`ImageCatalog::info`]: a wrapper does not change who the provider is.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cws_template::Architecture;
use serde::Serialize;
use tokio::time::Instant;

use crate::error::{ProviderError, ProviderResult};
use crate::model::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, Instance, InstanceFilter,
    LaunchPermission, MarketplaceProduct, MarketplaceQuery, ProviderInfo, RunInstanceRequest,
    Snapshot, WaitOutcome,
};
use crate::traits::{CloudProvider, ImageAdmin, ImageCatalog, Instances};

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
    /// [`CloudProvider::start_instance`].
    StartInstance,
    /// [`CloudProvider::terminate_instance`].
    TerminateInstance,
    /// [`CloudProvider::console_output`].
    ConsoleOutput,
    /// [`CloudProvider::find_marketplace_products`].
    FindMarketplaceProducts,
    /// [`CloudProvider::account_id`].
    AccountId,
}

impl Operation {
    /// Every operation, in trait order.
    pub const ALL: [Operation; 20] = [
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
        Operation::StartInstance,
        Operation::TerminateInstance,
        Operation::ConsoleOutput,
        Operation::FindMarketplaceProducts,
        Operation::AccountId,
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
            Operation::StartInstance => "start_instance",
            Operation::TerminateInstance => "terminate_instance",
            Operation::ConsoleOutput => "console_output",
            Operation::FindMarketplaceProducts => "find_marketplace_products",
            Operation::AccountId => "account_id",
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
            Operation::StartInstance => "ec2:StartInstances",
            Operation::TerminateInstance => "ec2:TerminateInstances",
            Operation::ConsoleOutput => "ec2:GetConsoleOutput",
            Operation::FindMarketplaceProducts => "aws-marketplace:ListEntities",
            Operation::AccountId => "sts:GetCallerIdentity",
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
                | Operation::ConsoleOutput
                | Operation::FindMarketplaceProducts
                | Operation::AccountId
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
    /// `Err` refuses the call before it reaches the inner provider; `Ok(Some(e))` lets it run
    /// and then loses its answer, returning `e` instead (what a network that drops a response
    /// does after the backend acted).
    async fn before(
        &self,
        op: Operation,
        region: Option<&str>,
    ) -> ProviderResult<Option<ProviderError>>;

    /// [`ImageCatalog::answers_in_memory`], given the inner provider's answer.
    fn answers_in_memory(&self, inner: bool) -> bool {
        inner
    }
}

/// The answer a forwarded call gives: its own, or the error that replaced a lost answer.
fn lose<T>(lost: Option<ProviderError>, answer: ProviderResult<T>) -> ProviderResult<T> {
    match lost {
        Some(e) => Err(e),
        None => answer,
    }
}

macro_rules! forward_with_hook {
    ($wrapper:ident) => {
        #[async_trait]
        impl<P: CloudProvider> ImageCatalog for $wrapper<P> {
            fn info(&self) -> ProviderInfo {
                self.inner.info()
            }
            async fn describe_images_by_id(
                &self,
                region: &str,
                ids: &[String],
            ) -> ProviderResult<Vec<Image>> {
                let lost = self
                    .before(Operation::DescribeImagesById, Some(region))
                    .await?;
                lose(lost, self.inner.describe_images_by_id(region, ids).await)
            }
            async fn describe_images(
                &self,
                region: &str,
                query: &ImageQuery,
            ) -> ProviderResult<Vec<Image>> {
                let lost = self.before(Operation::DescribeImages, Some(region)).await?;
                lose(lost, self.inner.describe_images(region, query).await)
            }
            // Forwarded, so the inner provider's own pick (LocalCloud's in-place selection)
            // is kept; it is the one DescribeImages call it stands for.
            async fn describe_best_image(
                &self,
                region: &str,
                query: &ImageQuery,
                preferred: &[Architecture],
                now: DateTime<Utc>,
            ) -> ProviderResult<Option<(Image, bool)>> {
                let lost = self.before(Operation::DescribeImages, Some(region)).await?;
                lose(
                    lost,
                    self.inner
                        .describe_best_image(region, query, preferred, now)
                        .await,
                )
            }
            async fn describe_snapshots(
                &self,
                region: &str,
                ids: &[String],
            ) -> ProviderResult<Vec<Snapshot>> {
                let lost = self
                    .before(Operation::DescribeSnapshots, Some(region))
                    .await?;
                lose(lost, self.inner.describe_snapshots(region, ids).await)
            }
            async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
                let lost = self.before(Operation::DescribeRegions, None).await?;
                lose(lost, self.inner.describe_regions().await)
            }
            async fn find_marketplace_products(
                &self,
                query: &MarketplaceQuery,
            ) -> ProviderResult<Vec<MarketplaceProduct>> {
                let lost = self
                    .before(Operation::FindMarketplaceProducts, None)
                    .await?;
                lose(lost, self.inner.find_marketplace_products(query).await)
            }
            async fn account_id(&self) -> ProviderResult<Option<String>> {
                let lost = self.before(Operation::AccountId, None).await?;
                lose(lost, self.inner.account_id().await)
            }
            fn answers_in_memory(&self) -> bool {
                BeforeCall::answers_in_memory(self, self.inner.answers_in_memory())
            }
        }

        #[async_trait]
        impl<P: CloudProvider> ImageAdmin for $wrapper<P> {
            async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image> {
                let lost = self
                    .before(Operation::CopyImage, Some(&request.target_region))
                    .await?;
                lose(lost, self.inner.copy_image(request).await)
            }
            async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image> {
                let lost = self
                    .before(Operation::CreateImage, Some(&request.region))
                    .await?;
                lose(lost, self.inner.create_image(request).await)
            }
            async fn create_tags(
                &self,
                region: &str,
                resource_id: &str,
                tags: &BTreeMap<String, String>,
            ) -> ProviderResult<()> {
                let lost = self.before(Operation::CreateTags, Some(region)).await?;
                lose(
                    lost,
                    self.inner.create_tags(region, resource_id, tags).await,
                )
            }
            async fn modify_launch_permission(
                &self,
                region: &str,
                image_id: &str,
                permission: &LaunchPermission,
                add: bool,
            ) -> ProviderResult<()> {
                let lost = self
                    .before(Operation::ModifyLaunchPermission, Some(region))
                    .await?;
                lose(
                    lost,
                    self.inner
                        .modify_launch_permission(region, image_id, permission, add)
                        .await,
                )
            }
            async fn describe_launch_permissions(
                &self,
                region: &str,
                image_id: &str,
            ) -> ProviderResult<Vec<LaunchPermission>> {
                let lost = self
                    .before(Operation::DescribeLaunchPermissions, Some(region))
                    .await?;
                lose(
                    lost,
                    self.inner
                        .describe_launch_permissions(region, image_id)
                        .await,
                )
            }
            async fn modify_snapshot_permission(
                &self,
                region: &str,
                snapshot_id: &str,
                permission: &LaunchPermission,
                add: bool,
            ) -> ProviderResult<()> {
                let lost = self
                    .before(Operation::ModifySnapshotPermission, Some(region))
                    .await?;
                lose(
                    lost,
                    self.inner
                        .modify_snapshot_permission(region, snapshot_id, permission, add)
                        .await,
                )
            }
            async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()> {
                let lost = self
                    .before(Operation::DeregisterImage, Some(region))
                    .await?;
                lose(lost, self.inner.deregister_image(region, image_id).await)
            }
            async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()> {
                let lost = self.before(Operation::DeleteSnapshot, Some(region)).await?;
                lose(lost, self.inner.delete_snapshot(region, snapshot_id).await)
            }
            // Forwarded, so a backend's own waiter (the SDK's on AWS) survives wrapping. It
            // counts, is delayed and fails as the image lookup its polls are.
            async fn wait_image_available(
                &self,
                region: &str,
                image_id: &str,
                max_wait: Duration,
            ) -> ProviderResult<WaitOutcome<Image>> {
                let lost = self
                    .before(Operation::DescribeImagesById, Some(region))
                    .await?;
                lose(
                    lost,
                    self.inner
                        .wait_image_available(region, image_id, max_wait)
                        .await,
                )
            }
        }

        #[async_trait]
        impl<P: CloudProvider> Instances for $wrapper<P> {
            async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance> {
                let lost = self
                    .before(Operation::RunInstance, Some(&request.region))
                    .await?;
                lose(lost, self.inner.run_instance(request).await)
            }
            async fn describe_instances(
                &self,
                region: &str,
                filter: &InstanceFilter,
            ) -> ProviderResult<Vec<Instance>> {
                let lost = self
                    .before(Operation::DescribeInstances, Some(region))
                    .await?;
                lose(lost, self.inner.describe_instances(region, filter).await)
            }
            async fn stop_instance(
                &self,
                region: &str,
                instance_id: &str,
            ) -> ProviderResult<Instance> {
                let lost = self.before(Operation::StopInstance, Some(region)).await?;
                lose(lost, self.inner.stop_instance(region, instance_id).await)
            }
            async fn start_instance(
                &self,
                region: &str,
                instance_id: &str,
            ) -> ProviderResult<Instance> {
                let lost = self.before(Operation::StartInstance, Some(region)).await?;
                lose(lost, self.inner.start_instance(region, instance_id).await)
            }
            async fn terminate_instance(
                &self,
                region: &str,
                instance_id: &str,
            ) -> ProviderResult<Instance> {
                let lost = self
                    .before(Operation::TerminateInstance, Some(region))
                    .await?;
                lose(
                    lost,
                    self.inner.terminate_instance(region, instance_id).await,
                )
            }
            async fn console_output(
                &self,
                region: &str,
                instance_id: &str,
            ) -> ProviderResult<Option<String>> {
                let lost = self.before(Operation::ConsoleOutput, Some(region)).await?;
                lose(lost, self.inner.console_output(region, instance_id).await)
            }
            // Forwarded like `wait_image_available`, counted as the DescribeInstances it polls.
            async fn wait_instance_running(
                &self,
                region: &str,
                instance_id: &str,
                max_wait: Duration,
            ) -> ProviderResult<WaitOutcome<Instance>> {
                let lost = self
                    .before(Operation::DescribeInstances, Some(region))
                    .await?;
                lose(
                    lost,
                    self.inner
                        .wait_instance_running(region, instance_id, max_wait)
                        .await,
                )
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
    async fn before(
        &self,
        op: Operation,
        _region: Option<&str>,
    ) -> ProviderResult<Option<ProviderError>> {
        self.counts[op as usize].fetch_add(1, Ordering::Relaxed);
        Ok(None)
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
    async fn before(
        &self,
        _op: Operation,
        _region: Option<&str>,
    ) -> ProviderResult<Option<ProviderError>> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        Ok(None)
    }

    /// With latency, the provider stands for one behind a network, and is asked as one.
    fn answers_in_memory(&self, inner: bool) -> bool {
        inner && self.latency.is_zero()
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
    /// The call is carried out, then its answer is lost: [`ProviderError::Unavailable`]
    /// (transient) although the backend acted, as when a network drops a response.
    LostResponse,
}

impl FaultKind {
    fn error(self, provider: &str, op: Operation, region: Option<&str>) -> ProviderError {
        let place = region.map(|r| format!(" in {r}")).unwrap_or_default();
        let message = format!("injected fault: {op}{place}");
        match self {
            FaultKind::Throttled => ProviderError::Throttled { message },
            FaultKind::Unavailable | FaultKind::LostResponse => ProviderError::Unavailable {
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
/// use cws_provider::wrappers::{FaultKind, FaultRule, Operation};
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
    /// How many matching calls still pass before the rule starts failing them.
    pub skip: u64,
}

impl FaultRule {
    /// A rule failing every call, always, with `kind`; narrow it with the builder methods.
    pub fn new(kind: FaultKind) -> Self {
        FaultRule {
            operation: None,
            region: None,
            kind,
            remaining: None,
            skip: 0,
        }
    }

    /// Lets the next `n` matching calls through first.
    pub fn after(mut self, n: u64) -> Self {
        self.skip = n;
        self
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
/// provider, except with [`FaultKind::LostResponse`], where it does and only its answer is
/// lost.
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
    async fn before(
        &self,
        op: Operation,
        region: Option<&str>,
    ) -> ProviderResult<Option<ProviderError>> {
        let kind = {
            let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            match rules.iter_mut().find(|r| r.matches(op, region)) {
                Some(rule) if rule.skip > 0 => {
                    rule.skip -= 1;
                    None
                }
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
                let e = kind.error(&self.inner.info().name, op, region);
                if kind == FaultKind::LostResponse {
                    Ok(Some(e))
                } else {
                    Err(e)
                }
            }
            None => Ok(None),
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
    Account(Option<String>),
    /// A `describe_best_image` answer and the `now` it was chosen at.
    Best(DateTime<Utc>, Option<Box<(Image, bool)>>),
}

/// A `describe_best_image` answer chosen at `chosen_at`, if it is still the answer at `now`.
///
/// Time only moves images into deprecation, so a winner that is still not deprecated at a
/// later `now` is still the winner (and "nothing", or a deprecated winner, stays so); a pick
/// that became deprecated since, or a `now` earlier than `chosen_at`, is not trusted (`None`:
/// ask again). Shared by the in-memory and the on-disk cache.
pub(crate) fn kept_pick(
    chosen_at: DateTime<Utc>,
    pick: Option<&(Image, bool)>,
    now: DateTime<Utc>,
) -> Option<Option<(Image, bool)>> {
    match pick {
        _ if now < chosen_at => None,
        None => Some(None),
        Some((image, false)) if !image.is_deprecated_at(now) => Some(Some((image.clone(), false))),
        Some((image, true)) => Some(Some((image.clone(), true))),
        Some(_) => None,
    }
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
/// (`copy_image` drops both regions). Errors are never cached. Identical misses in flight at
/// once share one call (single-flight): the first reaches the inner provider, the others wait
/// for it and take its answer from the cache (after an error, the next one tries itself).
///
/// Expiry uses `tokio::time::Instant`, so tests can advance a paused clock.
#[derive(Debug)]
pub struct CachingProvider<P> {
    inner: P,
    ttl: Duration,
    state: Mutex<CacheState>,
    /// One gate per key with a call in flight: identical misses queue on it.
    flights: Mutex<HashMap<CacheKey, std::sync::Arc<tokio::sync::Mutex<()>>>>,
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
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for the gate of `key`: held while one call for it is in flight.
    async fn flight(&self, key: &CacheKey) -> tokio::sync::OwnedMutexGuard<()> {
        let gate = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            // Gates nobody holds or waits for are dropped, so the map stays small.
            if flights.len() >= 1024 {
                flights.retain(|_, g| std::sync::Arc::strong_count(g) > 1);
            }
            flights.entry(key.clone()).or_default().clone()
        };
        gate.lock_owned().await
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

    /// A live entry, counted as a hit when there is one (a call it waited for filled it) and
    /// not counted otherwise (the miss was counted when the caller first looked).
    fn peek(&self, key: &CacheKey) -> Option<Cached> {
        let mut state = self.lock();
        let now = Instant::now();
        let live = match state.entries.get(key) {
            Some((at, value)) if now.duration_since(*at) < self.ttl => Some(value.clone()),
            _ => None,
        };
        if live.is_some() {
            state.hits += 1;
            state.misses = state.misses.saturating_sub(1);
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
        // Single-flight: an identical call already in flight answers for this one too.
        let _gate = $self.flight(&key).await;
        if let Some(Cached::$variant(v)) = $self.peek(&key) {
            return Ok(v);
        }
        let value = $call.await?;
        $self.put(key, Cached::$variant(value.clone()));
        Ok(value)
    }};
}

#[async_trait]
impl<P: CloudProvider> ImageCatalog for CachingProvider<P> {
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

    async fn describe_best_image(
        &self,
        region: &str,
        query: &ImageQuery,
        preferred: &[Architecture],
        now: DateTime<Utc>,
    ) -> ProviderResult<Option<(Image, bool)>> {
        // Keyed by query and architectures, never by `now`: the answer is kept with the time
        // it was chosen at. Time only moves images into deprecation, so a winner that is
        // still not deprecated at a later `now` is still the winner; otherwise (or when
        // `now` went backwards) the cached pick is not trusted and the provider is asked.
        let key = Self::key(
            Operation::DescribeImages,
            region,
            &("best", query, preferred),
        );
        if let Some(Cached::Best(chosen_at, pick)) = self.get(&key)
            && let Some(still) = kept_pick(chosen_at, pick.as_deref(), now)
        {
            return Ok(still);
        }
        let pick = self
            .inner
            .describe_best_image(region, query, preferred, now)
            .await?;
        self.put(key, Cached::Best(now, pick.clone().map(Box::new)));
        Ok(pick)
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

    async fn account_id(&self) -> ProviderResult<Option<String>> {
        cached_call!(
            self,
            Operation::AccountId,
            "",
            (),
            Account,
            self.inner.account_id()
        )
    }

    fn answers_in_memory(&self) -> bool {
        self.inner.answers_in_memory()
    }
}

#[async_trait]
impl<P: CloudProvider> ImageAdmin for CachingProvider<P> {
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

    // Waits are never cached: they exist to see a change.
    async fn wait_image_available(
        &self,
        region: &str,
        image_id: &str,
        max_wait: Duration,
    ) -> ProviderResult<WaitOutcome<Image>> {
        let result = self
            .inner
            .wait_image_available(region, image_id, max_wait)
            .await;
        self.invalidate(&[region]);
        result
    }
}

#[async_trait]
impl<P: CloudProvider> Instances for CachingProvider<P> {
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

    async fn start_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        let result = self.inner.start_instance(region, instance_id).await;
        self.invalidate(&[region]);
        result
    }

    /// Never cached: the console grows while the instance boots.
    async fn console_output(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Option<String>> {
        self.inner.console_output(region, instance_id).await
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
