//! The real AWS backend: [`AwsProvider`] implements [`CloudProvider`](cws_provider::CloudProvider) with `aws-sdk-ec2`,
//! `aws-sdk-marketplacecatalog` and the standard `aws-config` credential chain (cargo
//! feature `aws`).
//!
//! # Shape
//!
//! - **Configuration, not reconstruction.** Credentials come from the standard chain
//!   (environment, shared profile — `profile` picks one —, SSO, container and instance
//!   metadata). Retries use the SDK's standard mode with `max_attempts` (throttling and 5xx
//!   answers are retried with backoff before cws sees them), and every operation has a
//!   timeout. `endpoint_url` points every client at an emulator such as moto.
//! - **One EC2 client per region**, made the first time a region is used and shared after
//!   that (clients hold connection pools and credential caches, so one per region is what
//!   keeps repeated calls cheap).
//! - **One call per trait method where EC2 allows it.** `describe_images` is one paginated
//!   `DescribeImages` (`MaxResults` 1000, so a page is almost always all there is); lookups by
//!   id are one `DescribeImages` with `ImageIds` (which also finds deprecated images, so a
//!   pinned id keeps working). A few methods add a read that EC2 itself does not need but
//!   that makes the [`CloudProvider`](cws_provider::CloudProvider) contract hold on every backend, emulators included:
//!   `run_instance` checks the image, the name (cws keeps `Name` unique among live
//!   instances) and the instance type's architecture concurrently before `RunInstances`;
//!   `create_image` checks the name; `create_tags` on an image checks that it exists.
//! - **Errors mean one thing.** Every SDK failure goes through one mapping
//!   (`errors::map_sdk_error`) into [`ProviderError`]: unknown ids are `NotFound` (or simply
//!   absent from describe results), refusals name the IAM action, throttling that outlived
//!   the retries is `Throttled`, and an unreachable or misbehaving endpoint is `Unavailable`
//!   naming it. Nothing here panics on a backend's answer.
//! - **No secrets in output.** [`AwsProvider`]'s `Debug` and [`ProviderInfo`] show the
//!   endpoint and profile name, never credentials.
//!
//! The account id (what `self` means in owner filters) is looked up with
//! `sts:GetCallerIdentity` the first time [`ImageCatalog::account_id`] is asked, never at
//! construction: no search needs it, so it must not cost a round trip in front of one. When
//! the lookup fails (no permission, offline) the answer is `None` and the failure is logged
//! at debug level (the EC2 call beside it reports the same cause as a proper error).

mod convert;
mod errors;
mod marketplace;
#[cfg(any(test, feature = "testing"))]
pub mod moto_harness;
mod retry;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2 as ec2;
use aws_sdk_ec2::error::SdkError;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::waiters::FinalPoll;
use aws_smithy_runtime_api::client::waiters::error::WaiterError;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use cws_template::Architecture;

use cws_provider::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, ImageState, Instance, InstanceFilter,
    LaunchPermission, MarketplaceProduct, MarketplaceQuery, ProviderInfo, RunInstanceRequest,
    Snapshot, WaitOutcome,
};
use cws_provider::{ImageAdmin, ImageCatalog, Instances};
use cws_provider::{ProviderError, ProviderResult};

use errors::{CallContext, map_sdk_error};

/// The retry budget cws asks for by default: EC2 throttles bursts (`RequestLimitExceeded`),
/// and a resolution fans out several calls at once, so the SDK's default of 3 gives up too
/// early.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// The default time limit for one operation, retries and their backoff included: a dead or
/// persistently failing (5xx, throttling) endpoint is given up on after this long, whatever
/// the retry budget. Waits for images and instances are separate (each poll is one operation).
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(20);

/// How to reach AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// The shared-config profile to use (`AWS_PROFILE` and the default chain when `None`).
    pub profile: Option<String>,
    /// An endpoint for every service instead of AWS's, e.g. `http://127.0.0.1:5000` for moto.
    pub endpoint_url: Option<String>,
    /// Attempts per operation, the first included (cws uses [`DEFAULT_MAX_ATTEMPTS`]; tests
    /// may use fewer to fail fast). Must be at least 1.
    pub max_attempts: u32,
    /// Time limit for one operation, retries included.
    pub operation_timeout: Duration,
    /// The region for calls that are not about a region (`DescribeRegions`, STS) when the
    /// profile and environment name none.
    pub default_region: String,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            profile: None,
            endpoint_url: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            default_region: "us-east-1".to_string(),
        }
    }
}

impl AwsConfig {
    fn validate(&self) -> ProviderResult<()> {
        if self.max_attempts == 0 {
            return Err(ProviderError::InvalidInput {
                message: "max_attempts must be at least 1 (cws uses 10)".into(),
            });
        }
        if self.operation_timeout.is_zero() {
            return Err(ProviderError::InvalidInput {
                message: "the operation timeout must be longer than zero".into(),
            });
        }
        if let Some(url) = &self.endpoint_url
            && let Err(problem) = check_endpoint_url(url)
        {
            return Err(ProviderError::InvalidInput {
                message: format!(
                    "endpoint URL `{}` {problem} (e.g. http://127.0.0.1:5000)",
                    url.escape_debug()
                ),
            });
        }
        if self.profile.as_deref().is_some_and(str::is_empty) {
            return Err(ProviderError::InvalidInput {
                message: "the AWS profile name is empty; leave it unset to use the default chain"
                    .into(),
            });
        }
        convert::check_region(&self.default_region)
    }

    fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard().with_max_attempts(self.max_attempts)
    }

    fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5).min(self.operation_timeout))
            .operation_timeout(self.operation_timeout)
            .build()
    }
}

/// Counts HTTP requests leaving the SDK clients (retries included), so tests and benches can
/// report real round trips rather than trait calls.
#[derive(Debug, Clone)]
struct RequestCounter(Arc<AtomicU64>);

/// When an SDK operation started, for its `--debug` log line.
#[derive(Debug, Clone, Copy)]
struct CallStarted(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for CallStarted {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// How many HTTP attempts an SDK operation made (retries included).
#[derive(Debug, Clone, Copy)]
struct CallAttempts(u32);

impl aws_smithy_types::config_bag::Storable for CallAttempts {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "cws-request-counter"
    }

    fn read_before_execution(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(CallStarted(std::time::Instant::now()));
        cfg.interceptor_state().store_put(CallAttempts(0));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        let n = cfg.load::<CallAttempts>().map_or(0, |a| a.0);
        cfg.interceptor_state().store_put(CallAttempts(n + 1));
        Ok(())
    }

    /// One `--debug` line per provider call: operation, region, duration, outcome, attempts.
    fn read_after_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| format!("{}.{}", m.service(), m.name()))
            .unwrap_or_else(|| "?".into());
        let region = cfg
            .load::<aws_config::Region>()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "-".into());
        let ms = cfg
            .load::<CallStarted>()
            .map_or(0, |s| s.0.elapsed().as_millis() as u64);
        let attempts = cfg.load::<CallAttempts>().map_or(0, |a| a.0);
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "ok".to_string(),
            Some(Err(e)) => {
                let text = errors::chain_text(e);
                format!("error: {}", text.chars().take(200).collect::<String>())
            }
            None => "no answer".to_string(),
        };
        tracing::debug!(
            target: "cws::provider_calls",
            "{operation} in {region}: {ms} ms, {outcome}, {attempts} attempt{}",
            if attempts == 1 { "" } else { "s" }
        );
        Ok(())
    }
}

/// EC2 (and the Marketplace catalogue) through the AWS SDK.
pub struct AwsProvider {
    cfg: AwsConfig,
    sdk: SdkConfig,
    ec2_clients: Mutex<HashMap<String, ec2::Client>>,
    marketplace: aws_sdk_marketplacecatalog::Client,
    info: ProviderInfo,
    /// Looked up on first use (see the crate docs).
    account: tokio::sync::OnceCell<Option<String>>,
    requests: Arc<AtomicU64>,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let regions: Vec<String> = self.clients().keys().cloned().collect();
        f.debug_struct("AwsProvider")
            .field("endpoint_url", &self.cfg.endpoint_url)
            .field("profile", &self.cfg.profile)
            .field("default_region", &self.cfg.default_region)
            .field("account_id", &self.account.get())
            .field("max_attempts", &self.cfg.max_attempts)
            .field("operation_timeout", &self.cfg.operation_timeout)
            .field("client_regions", &regions)
            .finish_non_exhaustive()
    }
}

// IAM actions, for errors.
const DESCRIBE_IMAGES: &str = "ec2:DescribeImages";
const DESCRIBE_SNAPSHOTS: &str = "ec2:DescribeSnapshots";
const DESCRIBE_REGIONS: &str = "ec2:DescribeRegions";
const DESCRIBE_INSTANCES: &str = "ec2:DescribeInstances";
const DESCRIBE_INSTANCE_TYPES: &str = "ec2:DescribeInstanceTypes";
const COPY_IMAGE: &str = "ec2:CopyImage";
const CREATE_IMAGE: &str = "ec2:CreateImage";
const CREATE_TAGS: &str = "ec2:CreateTags";
const MODIFY_IMAGE_ATTRIBUTE: &str = "ec2:ModifyImageAttribute";
const DESCRIBE_IMAGE_ATTRIBUTE: &str = "ec2:DescribeImageAttribute";
const DEREGISTER_IMAGE: &str = "ec2:DeregisterImage";
const MODIFY_SNAPSHOT_ATTRIBUTE: &str = "ec2:ModifySnapshotAttribute";
const DELETE_SNAPSHOT: &str = "ec2:DeleteSnapshot";
const RUN_INSTANCES: &str = "ec2:RunInstances";
const STOP_INSTANCES: &str = "ec2:StopInstances";
const START_INSTANCES: &str = "ec2:StartInstances";
const GET_CONSOLE_OUTPUT: &str = "ec2:GetConsoleOutput";
const TERMINATE_INSTANCES: &str = "ec2:TerminateInstances";

impl AwsProvider {
    /// Loads the standard AWS configuration (credential chain, `profile`, `endpoint_url`).
    /// Makes no call: the account id is looked up when first needed.
    ///
    /// Fails only on an invalid `cfg`; missing credentials surface on the first call, as a
    /// [`ProviderError`] that says how to provide them.
    pub async fn new(cfg: AwsConfig) -> Result<AwsProvider, ProviderError> {
        cfg.validate()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .retry_config(cfg.retry_config())
            .timeout_config(cfg.timeout_config());
        if let Some(profile) = &cfg.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &cfg.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        Self::from_sdk_config(cfg, sdk).await
    }

    /// Like [`new`](Self::new), but with an `SdkConfig` the caller built: for embedding
    /// tools that configure credentials or HTTP themselves, and for tests (static
    /// credentials for an emulator, a scripted HTTP client). `cfg`'s retry, timeout and
    /// endpoint settings are applied on top of `sdk`.
    pub async fn from_sdk_config(
        cfg: AwsConfig,
        sdk: SdkConfig,
    ) -> Result<AwsProvider, ProviderError> {
        cfg.validate()?;
        let sdk = if sdk.http_client().is_none() {
            sdk.into_builder().http_client(https_client()).build()
        } else {
            sdk
        };
        let sdk = if sdk.region().is_none() {
            sdk.into_builder()
                .region(Region::new(cfg.default_region.clone()))
                .build()
        } else {
            sdk
        };
        let requests = Arc::new(AtomicU64::new(0));
        let mut mp = aws_sdk_marketplacecatalog::config::Builder::from(&sdk)
            .region(Region::new(marketplace::CATALOG_REGION))
            .retry_config(cfg.retry_config())
            .retry_classifier(retry::FailFastOnConnectErrors)
            .timeout_config(cfg.timeout_config())
            .interceptor(RequestCounter(requests.clone()));
        if let Some(url) = &cfg.endpoint_url {
            mp = mp.endpoint_url(url);
        }
        let marketplace = aws_sdk_marketplacecatalog::Client::from_conf(mp.build());
        let info = ProviderInfo {
            name: "aws".to_string(),
            simulated: false,
            description: describe(&cfg),
        };
        Ok(AwsProvider {
            cfg,
            sdk,
            ec2_clients: Mutex::new(HashMap::new()),
            marketplace,
            info,
            account: tokio::sync::OnceCell::new(),
            requests,
        })
    }

    /// The configuration this provider was made with.
    pub fn config(&self) -> &AwsConfig {
        &self.cfg
    }

    /// HTTP requests sent to EC2, STS and the Marketplace catalogue so far, retries included.
    /// Unlike a
    /// [`CountingProvider`](cws_provider::wrappers::CountingProvider), this counts round trips on
    /// the wire, including pages and the checks some methods make first.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<String, ec2::Client>> {
        self.ec2_clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The EC2 client for a region, made on first use and shared after.
    fn ec2(&self, region: &str) -> ec2::Client {
        self.clients()
            .entry(region.to_string())
            .or_insert_with(|| {
                let mut b = ec2::config::Builder::from(&self.sdk)
                    .region(Region::new(region.to_string()))
                    .retry_config(self.cfg.retry_config())
                    .retry_classifier(retry::FailFastOnConnectErrors)
                    .timeout_config(self.cfg.timeout_config())
                    .interceptor(RequestCounter(self.requests.clone()));
                if let Some(url) = &self.cfg.endpoint_url {
                    b = b.endpoint_url(url);
                }
                ec2::Client::from_conf(b.build())
            })
            .clone()
    }

    /// The endpoint a region's EC2 calls go to, for error messages.
    fn endpoint(&self, region: &str) -> String {
        match &self.cfg.endpoint_url {
            Some(url) => url.clone(),
            None if region.starts_with("cn-") => format!("https://ec2.{region}.amazonaws.com.cn"),
            None => format!("https://ec2.{region}.amazonaws.com"),
        }
    }

    fn marketplace_endpoint(&self) -> String {
        self.cfg
            .endpoint_url
            .clone()
            .unwrap_or_else(marketplace::default_endpoint)
    }

    /// Maps an SDK error for a call in `region`.
    /// How an SDK waiter ended, as a [`WaitOutcome`] carrying the resource from its last poll
    /// (`seen` finds it in the output; absent there, it is NotFound).
    fn waited<O, E, T>(
        &self,
        result: Result<FinalPoll<O, SdkError<E, HttpResponse>>, WaiterError<O, E>>,
        action: &'static str,
        region: &str,
        what: String,
        seen: impl Fn(&O) -> Option<T>,
    ) -> ProviderResult<WaitOutcome<T>>
    where
        O: std::fmt::Debug + Send + Sync + 'static,
        E: ec2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let found = |out: &O, outcome: fn(T) -> WaitOutcome<T>| {
            seen(out)
                .map(outcome)
                .ok_or_else(|| ProviderError::NotFound {
                    what: what.clone(),
                    region: region.to_string(),
                })
        };
        match result {
            Ok(done) => match done.into_result() {
                Ok(out) => found(&out, WaitOutcome::Ready),
                Err(e) => Err(self.err(e, action, region, Some(what.clone()))),
            },
            Err(WaiterError::FailureState(failed)) => {
                match failed.into_final_poll().into_result() {
                    Ok(out) => found(&out, WaitOutcome::Failed),
                    // The waiters have no acceptor on an error; kept for completeness.
                    Err(e) => Err(ProviderError::Generic {
                        provider: "aws".to_string(),
                        source: Box::new(e),
                    }),
                }
            }
            Err(WaiterError::ExceededMaxWait(_)) => Ok(WaitOutcome::TimedOut),
            Err(WaiterError::OperationFailed(e)) => {
                Err(self.err(e.into_error(), action, region, Some(what.clone())))
            }
            Err(other) => Err(ProviderError::Generic {
                provider: "aws".to_string(),
                source: Box::new(other),
            }),
        }
    }

    fn err<E>(
        &self,
        e: SdkError<E, HttpResponse>,
        action: &'static str,
        region: &str,
        what: Option<String>,
    ) -> ProviderError
    where
        E: ec2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        map_sdk_error(
            e,
            &CallContext {
                action,
                region: region.to_string(),
                endpoint: self.endpoint(region),
                custom_endpoint: self.cfg.endpoint_url.is_some(),
                what,
            },
        )
    }

    /// Raw EC2 images by id; unknown ids are left out (EC2 fails the whole call when any id
    /// is unknown, so a mixed list is asked again with an `image-id` filter, which does not).
    async fn raw_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<ec2::types::Image>> {
        let client = self.ec2(region);
        let what = || Some(format!("image {}", ids.join(", ")));
        match client
            .describe_images()
            .set_image_ids(Some(ids.to_vec()))
            .include_deprecated(true)
            .send()
            .await
        {
            Ok(out) => Ok(out.images().to_vec()),
            Err(e) => match self.err(e, DESCRIBE_IMAGES, region, what()) {
                ProviderError::NotFound { .. } if ids.len() == 1 => Ok(Vec::new()),
                ProviderError::NotFound { .. } => {
                    let out = client
                        .describe_images()
                        .filters(
                            ec2::types::Filter::builder()
                                .name("image-id")
                                .set_values(Some(ids.to_vec()))
                                .build(),
                        )
                        .include_deprecated(true)
                        .send()
                        .await
                        .map_err(|e| self.err(e, DESCRIBE_IMAGES, region, what()))?;
                    Ok(out.images().to_vec())
                }
                other => Err(other),
            },
        }
    }

    /// Waits briefly for a new image to become visible (EC2 is eventually consistent right
    /// after `CopyImage`/`CreateImage`).
    async fn new_image(&self, region: &str, id: &str) -> ProviderResult<Image> {
        let mut delay = Duration::from_millis(250);
        for attempt in 0..6 {
            let found = self
                .describe_images_by_id(region, &[id.to_string()])
                .await?;
            if let Some(img) = found.into_iter().find(|i| i.id == id) {
                return Ok(img);
            }
            if attempt < 5 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(ProviderError::generic(
            "aws",
            format!(
                "{id} was created in {region} but EC2 does not list it yet; it should be listed within a minute"
            ),
        ))
    }

    async fn tag(
        &self,
        region: &str,
        resource_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        if tags.is_empty() {
            return Ok(());
        }
        self.ec2(region)
            .create_tags()
            .resources(resource_id)
            .set_tags(Some(convert::ec2_tags(tags)))
            .send()
            .await
            .map_err(|e| self.err(e, CREATE_TAGS, region, Some(resource_id.to_string())))?;
        Ok(())
    }

    /// The architectures an instance type runs; `None` when EC2 would not say (e.g. no
    /// `ec2:DescribeInstanceTypes` permission), in which case `RunInstances` itself judges.
    async fn instance_type_architectures(
        &self,
        region: &str,
        instance_type: &str,
    ) -> ProviderResult<Option<Vec<Architecture>>> {
        let out = match self
            .ec2(region)
            .describe_instance_types()
            .instance_types(ec2::types::InstanceType::from(instance_type))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match self.err(e, DESCRIBE_INSTANCE_TYPES, region, None) {
                    ProviderError::InvalidInput { .. } => Err(ProviderError::InvalidInput {
                        message: format!(
                            "`{instance_type}` is not an EC2 instance type in {region} (e.g. t3.micro, m6i.xlarge, m7g.xlarge)"
                        ),
                    }),
                    e if e.is_transient() => Err(e),
                    e => {
                        tracing::debug!(error = %e, "instance type check skipped");
                        Ok(None)
                    }
                };
            }
        };
        let Some(info) = out.instance_types().first() else {
            return Err(ProviderError::InvalidInput {
                message: format!("`{instance_type}` is not an EC2 instance type in {region}"),
            });
        };
        Ok(info.processor_info().map(|p| {
            p.supported_architectures()
                .iter()
                .filter_map(|a| match a.as_str() {
                    "x86_64" => Some(Architecture::X86_64),
                    "arm64" => Some(Architecture::Arm64),
                    _ => None,
                })
                .collect()
        }))
    }

    /// Re-describes one instance (terminated ones included), or `NotFound`.
    async fn instance_by_id(&self, region: &str, id: &str) -> ProviderResult<Instance> {
        let filter = InstanceFilter {
            ids: vec![id.to_string()],
            include_terminated: true,
            ..InstanceFilter::default()
        };
        self.describe_instances(region, &filter)
            .await?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| ProviderError::NotFound {
                what: format!("instance {id}"),
                region: region.to_string(),
            })
    }
}

/// The HTTPS client cws gives the SDK: the SDK's own default (hyper 1, rustls on aws-lc, the
/// platform's root certificates), built here so that the SDK crates need not depend on a TLS
/// stack (see `Cargo.toml`). [`AwsProvider::from_sdk_config`] adds it to a config that has
/// no client; a raw SDK client built from `aws_config::defaults` needs it too.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
}

/// The human description in [`ProviderInfo`].
fn describe(cfg: &AwsConfig) -> String {
    let endpoint = match &cfg.endpoint_url {
        Some(url) => format!("endpoint {url}"),
        None => "AWS endpoints".to_string(),
    };
    let profile = match &cfg.profile {
        Some(p) => format!("profile {p}"),
        None => "default credential chain".to_string(),
    };
    format!("AWS EC2 ({endpoint}; {profile})")
}

/// The caller's account id via `sts:GetCallerIdentity`, or `None` (logged) when it cannot
/// be had. Bounded: a short timeout and few attempts, so a missing network does not stall
/// the command that asked.
async fn resolve_account_id(
    cfg: &AwsConfig,
    sdk: &SdkConfig,
    requests: Arc<AtomicU64>,
) -> Option<String> {
    let mut b = aws_sdk_sts::config::Builder::from(sdk)
        .interceptor(RequestCounter(requests))
        .retry_config(RetryConfig::standard().with_max_attempts(cfg.max_attempts.min(3)))
        .retry_classifier(retry::FailFastOnConnectErrors)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5).min(cfg.operation_timeout))
                .operation_timeout(cfg.operation_timeout.min(Duration::from_secs(20)))
                .build(),
        );
    if let Some(url) = &cfg.endpoint_url {
        b = b.endpoint_url(url);
    }
    match aws_sdk_sts::Client::from_conf(b.build())
        .get_caller_identity()
        .send()
        .await
    {
        Ok(out) => out.account().map(str::to_string),
        Err(e) => {
            // Debug, not a warning: the account id is cosmetic (`self` works in every owner
            // filter), and whatever broke STS (no network, a stopped emulator, missing
            // credentials) breaks the EC2 call that follows too, which reports it properly.
            tracing::debug!(
                "could not look up the AWS account id with sts:GetCallerIdentity ({}); `self` stands for it",
                errors::chain_text(&e)
            );
            None
        }
    }
}

#[async_trait]
impl ImageCatalog for AwsProvider {
    fn info(&self) -> ProviderInfo {
        self.info.clone()
    }

    async fn account_id(&self) -> ProviderResult<Option<String>> {
        let account = self
            .account
            .get_or_init(|| resolve_account_id(&self.cfg, &self.sdk, self.requests.clone()))
            .await;
        Ok(account.clone())
    }
    async fn describe_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Image>> {
        convert::check_region(region)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        convert::check_ids(ids, "ami", "an image")?;
        let raw = self.raw_images_by_id(region, ids).await?;
        Ok(raw
            .iter()
            .filter_map(|i| convert::image(i, region))
            .filter(|i| ids.contains(&i.id))
            .collect())
    }
    async fn describe_images(
        &self,
        region: &str,
        query: &ImageQuery,
    ) -> ProviderResult<Vec<Image>> {
        convert::check_region(region)?;
        if query.owners.is_empty() || query.owners.iter().any(|o| o.trim().is_empty()) {
            return Err(ProviderError::InvalidInput {
                message: "an image search needs trusted owners (account ids, `self`, `amazon` or `aws-marketplace`); cws never searches every owner".into(),
            });
        }
        let mut pages = self
            .ec2(region)
            .describe_images()
            .set_owners(Some(query.owners.clone()))
            .set_filters(Some(convert::image_filters(query)))
            .include_deprecated(query.include_deprecated)
            .max_results(1000)
            .into_paginator()
            .items()
            .send();
        let mut images = Vec::new();
        while let Some(item) = pages.next().await {
            let raw = item.map_err(|e| self.err(e, DESCRIBE_IMAGES, region, None))?;
            if let Some(img) = convert::image(&raw, region) {
                images.push(img);
            }
        }
        if !query.include_deprecated {
            // EC2 shows an owner its own deprecated images regardless; the contract is the
            // same for every owner.
            let now = chrono::Utc::now();
            images.retain(|i| !i.is_deprecated_at(now));
        }
        Ok(images)
    }
    async fn describe_snapshots(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Snapshot>> {
        convert::check_region(region)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        convert::check_ids(ids, "snap", "a snapshot")?;
        let client = self.ec2(region);
        let what = || Some(format!("snapshot {}", ids.join(", ")));
        let raw = match client
            .describe_snapshots()
            .set_snapshot_ids(Some(ids.to_vec()))
            .send()
            .await
        {
            Ok(out) => out.snapshots().to_vec(),
            Err(e) => match self.err(e, DESCRIBE_SNAPSHOTS, region, what()) {
                ProviderError::NotFound { .. } if ids.len() == 1 => Vec::new(),
                ProviderError::NotFound { .. } => client
                    .describe_snapshots()
                    .filters(
                        ec2::types::Filter::builder()
                            .name("snapshot-id")
                            .set_values(Some(ids.to_vec()))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| self.err(e, DESCRIBE_SNAPSHOTS, region, what()))?
                    .snapshots()
                    .to_vec(),
                other => return Err(other),
            },
        };
        Ok(raw
            .iter()
            .filter_map(|s| {
                Some(Snapshot {
                    id: s.snapshot_id()?.to_string(),
                    region: region.to_string(),
                    size_gb: s
                        .volume_size()
                        .and_then(|v| u32::try_from(v).ok())
                        .unwrap_or(0),
                    state: s
                        .state()
                        .map(|st| st.as_str().to_string())
                        .unwrap_or_default(),
                })
            })
            .collect())
    }
    async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
        let region = self.cfg.default_region.as_str();
        let out = self
            .ec2(region)
            .describe_regions()
            .send()
            .await
            .map_err(|e| self.err(e, DESCRIBE_REGIONS, region, None))?;
        let mut regions: Vec<String> = out
            .regions()
            .iter()
            .filter_map(|r| r.region_name().map(str::to_string))
            .collect();
        regions.sort();
        regions.dedup();
        Ok(regions)
    }
    async fn find_marketplace_products(
        &self,
        query: &MarketplaceQuery,
    ) -> ProviderResult<Vec<MarketplaceProduct>> {
        marketplace::find_products(&self.marketplace, &self.marketplace_endpoint(), query).await
    }
}

#[async_trait]
impl ImageAdmin for AwsProvider {
    /// The SDK's `ImageAvailable` waiter: DescribeImages with backoff from 15 s up to 2 min,
    /// done when the image is available, stopped at once when it is failed.
    async fn wait_image_available(
        &self,
        region: &str,
        image_id: &str,
        max_wait: Duration,
    ) -> ProviderResult<WaitOutcome<Image>> {
        use aws_sdk_ec2::client::Waiters;
        convert::check_region(region)?;
        convert::check_ids(&[image_id.to_string()], "ami", "an image")?;
        let result = self
            .ec2(region)
            .wait_until_image_available()
            .image_ids(image_id)
            .include_deprecated(true)
            .wait(max_wait)
            .await;
        self.waited(
            result,
            DESCRIBE_IMAGES,
            region,
            format!("image {image_id}"),
            |out| {
                out.images()
                    .iter()
                    .filter_map(|i| convert::image(i, region))
                    .find(|i| i.id == image_id)
            },
        )
    }
    async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image> {
        convert::check_region(&request.source_region)?;
        convert::check_region(&request.target_region)?;
        convert::check_ids(
            std::slice::from_ref(&request.source_image_id),
            "ami",
            "an image",
        )?;
        let target = &request.target_region;
        let out = self
            .ec2(target)
            .copy_image()
            .source_region(&request.source_region)
            .source_image_id(&request.source_image_id)
            .name(&request.name)
            .set_description(request.description.clone())
            .set_client_token(intent_token(&request.tags))
            // Tags in the creating call, so a crash right after it cannot leave an untagged
            // copy on EC2 (emulators that drop them get the explicit tagging below).
            .set_tag_specifications((!request.tags.is_empty()).then(|| {
                vec![
                    ec2::types::TagSpecification::builder()
                        .resource_type(ec2::types::ResourceType::Image)
                        .set_tags(Some(convert::ec2_tags(&request.tags)))
                        .build(),
                ]
            }))
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| {
                let mut err = self.err(
                    e,
                    COPY_IMAGE,
                    &request.source_region,
                    Some(format!("image {}", request.source_image_id)),
                );
                if let ProviderError::Unavailable { endpoint, .. } = &mut err {
                    *endpoint = self.endpoint(target);
                }
                err
            })?;
        let Some(id) = out.image_id() else {
            return Err(ProviderError::generic(
                "aws",
                format!("CopyImage into {target} answered without an image id"),
            ));
        };
        // CopyImage does not carry tags on every backend (and never the source's): tag the
        // copy explicitly.
        self.tag(target, id, &request.tags).await?;
        self.new_image(target, id).await
    }
    async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image> {
        let region = request.region.as_str();
        convert::check_region(region)?;
        convert::check_ids(
            std::slice::from_ref(&request.instance_id),
            "i",
            "an instance",
        )?;
        // EC2 refuses a second image with the same name per owner and region; checking first
        // names the existing image, and holds on emulators that do not enforce it.
        let same_name = ImageQuery {
            states: vec![
                ImageState::Pending,
                ImageState::Available,
                ImageState::Failed,
                ImageState::Invalid,
            ],
            ..ImageQuery::owned_by(["self"])
                .name(request.name.clone())
                .include_deprecated(true)
        };
        if let Some(existing) = self
            .describe_images(region, &same_name)
            .await?
            .into_iter()
            .find(|i| i.name == request.name)
        {
            // EC2's CreateImage takes no client token; the name (unique per account and
            // region) and the intent tag make a repeated request answer the first image.
            if let Some(token) = request.tags.get(cws_provider::tags::INTENT)
                && existing.tags.get(cws_provider::tags::INTENT) == Some(token)
                && matches!(existing.state, ImageState::Pending | ImageState::Available)
            {
                return Ok(existing);
            }
            return Err(ProviderError::Conflict {
                message: format!(
                    "an image named `{}` already exists in {region} ({}); pick another name or deregister it",
                    request.name, existing.id
                ),
            });
        }
        let mut call = self
            .ec2(region)
            .create_image()
            .instance_id(&request.instance_id)
            .name(&request.name)
            .set_description(request.description.clone())
            .no_reboot(request.no_reboot);
        if !request.tags.is_empty() {
            call = call.tag_specifications(
                ec2::types::TagSpecification::builder()
                    .resource_type(ec2::types::ResourceType::Image)
                    .set_tags(Some(convert::ec2_tags(&request.tags)))
                    .build(),
            );
        }
        let out = call
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e,
                    CREATE_IMAGE,
                    region,
                    Some(format!("instance {}", request.instance_id)),
                )
            })?;
        let Some(id) = out.image_id() else {
            return Err(ProviderError::generic(
                "aws",
                format!("CreateImage in {region} answered without an image id"),
            ));
        };
        self.new_image(region, id).await
    }
    async fn create_tags(
        &self,
        region: &str,
        resource_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        convert::check_region(region)?;
        if resource_id.starts_with("ami-") {
            // Emulators accept tags on any id; EC2 refuses unknown images. Checking first
            // makes "unknown image → NotFound" hold everywhere.
            let found = self
                .describe_images_by_id(region, &[resource_id.to_string()])
                .await?;
            if found.is_empty() {
                return Err(ProviderError::NotFound {
                    what: format!("image {resource_id}"),
                    region: region.to_string(),
                });
            }
        }
        self.tag(region, resource_id, tags).await
    }
    async fn modify_launch_permission(
        &self,
        region: &str,
        image_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        convert::check_region(region)?;
        convert::check_ids(&[image_id.to_string()], "ami", "an image")?;
        let change = convert::ec2_permission(permission);
        let mods = ec2::types::LaunchPermissionModifications::builder();
        let mods = if add {
            mods.add(change)
        } else {
            mods.remove(change)
        }
        .build();
        self.ec2(region)
            .modify_image_attribute()
            .image_id(image_id)
            .launch_permission(mods)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e,
                    MODIFY_IMAGE_ATTRIBUTE,
                    region,
                    Some(format!("image {image_id}")),
                )
            })?;
        Ok(())
    }
    async fn describe_launch_permissions(
        &self,
        region: &str,
        image_id: &str,
    ) -> ProviderResult<Vec<LaunchPermission>> {
        convert::check_region(region)?;
        convert::check_ids(&[image_id.to_string()], "ami", "an image")?;
        let out = self
            .ec2(region)
            .describe_image_attribute()
            .image_id(image_id)
            .attribute(ec2::types::ImageAttributeName::LaunchPermission)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e,
                    DESCRIBE_IMAGE_ATTRIBUTE,
                    region,
                    Some(format!("image {image_id}")),
                )
            })?;
        Ok(out
            .launch_permissions()
            .iter()
            .filter_map(convert::permission)
            .collect())
    }
    async fn modify_snapshot_permission(
        &self,
        region: &str,
        snapshot_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        convert::check_region(region)?;
        convert::check_ids(&[snapshot_id.to_string()], "snap", "a snapshot")?;
        // The flat form (attribute + operation type + user ids / groups) is the one the AWS
        // CLI documents for createVolumePermission; EC2 also takes the structured
        // `CreateVolumePermission` form, but emulators such as moto read only this one.
        let call = self
            .ec2(region)
            .modify_snapshot_attribute()
            .snapshot_id(snapshot_id)
            .attribute(ec2::types::SnapshotAttributeName::CreateVolumePermission)
            .operation_type(if add {
                ec2::types::OperationType::Add
            } else {
                ec2::types::OperationType::Remove
            });
        let call = match permission {
            LaunchPermission::Account(id) => call.user_ids(id),
            LaunchPermission::Public => call.group_names("all"),
            other => {
                return Err(ProviderError::InvalidInput {
                    message: format!(
                        "EC2 shares snapshots only with account ids or everyone (group all), not \
                         with {other:?}; name the accounts instead"
                    ),
                });
            }
        };
        call.send().await.map_err(|e| {
            self.err(
                e,
                MODIFY_SNAPSHOT_ATTRIBUTE,
                region,
                Some(format!("snapshot {snapshot_id}")),
            )
        })?;
        Ok(())
    }
    async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()> {
        convert::check_region(region)?;
        convert::check_ids(&[image_id.to_string()], "ami", "an image")?;
        self.ec2(region)
            .deregister_image()
            .image_id(image_id)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e,
                    DEREGISTER_IMAGE,
                    region,
                    Some(format!("image {image_id}")),
                )
            })?;
        Ok(())
    }
    async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()> {
        convert::check_region(region)?;
        convert::check_ids(&[snapshot_id.to_string()], "snap", "a snapshot")?;
        self.ec2(region)
            .delete_snapshot()
            .snapshot_id(snapshot_id)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e,
                    DELETE_SNAPSHOT,
                    region,
                    Some(format!("snapshot {snapshot_id}")),
                )
            })?;
        Ok(())
    }
}

#[async_trait]
impl Instances for AwsProvider {
    /// The SDK's `InstanceRunning` waiter: DescribeInstances with backoff from 15 s, done when
    /// the instance is running, stopped at once when it is stopping, shutting down or
    /// terminated.
    async fn wait_instance_running(
        &self,
        region: &str,
        instance_id: &str,
        max_wait: Duration,
    ) -> ProviderResult<WaitOutcome<Instance>> {
        use aws_sdk_ec2::client::Waiters;
        convert::check_region(region)?;
        convert::check_ids(&[instance_id.to_string()], "i", "an instance")?;
        let result = self
            .ec2(region)
            .wait_until_instance_running()
            .instance_ids(instance_id)
            .wait(max_wait)
            .await;
        let what = format!("instance {instance_id}");
        self.waited(result, DESCRIBE_INSTANCES, region, what, |out| {
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| convert::instance(i, region, Architecture::X86_64))
                .find(|i| i.id == instance_id)
        })
    }
    async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance> {
        let region = request.region.as_str();
        convert::check_region(region)?;
        convert::check_ids(std::slice::from_ref(&request.ami_id), "ami", "an image")?;
        if request.name.trim().is_empty() {
            return Err(ProviderError::InvalidInput {
                message: "an instance needs a name (its `Name` tag)".into(),
            });
        }
        if request.instance_type.trim().is_empty() {
            return Err(ProviderError::InvalidInput {
                message: "an instance needs an instance type (e.g. t3.micro)".into(),
            });
        }
        let by_name = InstanceFilter {
            tags: BTreeMap::from([("Name".to_string(), request.name.clone())]),
            ..InstanceFilter::default()
        };
        // Three independent reads at once: the image (for its root device and architecture),
        // live instances with this name, and what the instance type runs.
        let (image, same_name, type_archs) = futures::join!(
            self.raw_images_by_id(region, std::slice::from_ref(&request.ami_id)),
            self.describe_instances(region, &by_name),
            self.instance_type_architectures(region, &request.instance_type),
        );
        let image = image?
            .into_iter()
            .find(|i| i.image_id() == Some(request.ami_id.as_str()))
            .ok_or_else(|| ProviderError::NotFound {
                what: format!("image {}", request.ami_id),
                region: region.to_string(),
            })?;
        if let Some(existing) = same_name?.into_iter().find(|i| i.state.is_live()) {
            return Err(ProviderError::Conflict {
                message: format!(
                    "an instance named `{}` already exists in {region}: {} ({}); pick another name or terminate it",
                    request.name, existing.id, existing.state
                ),
            });
        }
        let image_arch =
            convert::architecture(image.architecture()).unwrap_or(request.architecture);
        if let Some(archs) = type_archs?
            && !archs.is_empty()
            && !archs.contains(&image_arch)
        {
            let runs: Vec<&str> = archs.iter().map(|a| a.as_str()).collect();
            return Err(ProviderError::InvalidInput {
                message: format!(
                    "instance type {} runs {}, but image {} is {image_arch}; pick an {image_arch} instance type",
                    request.instance_type,
                    runs.join("/"),
                    request.ami_id
                ),
            });
        }

        let mut tags = request.tags.clone();
        tags.insert("Name".to_string(), request.name.clone());
        let mut call = self
            .ec2(region)
            .run_instances()
            .image_id(&request.ami_id)
            .instance_type(ec2::types::InstanceType::from(
                request.instance_type.as_str(),
            ))
            .min_count(1)
            .max_count(1)
            .tag_specifications(
                ec2::types::TagSpecification::builder()
                    .resource_type(ec2::types::ResourceType::Instance)
                    .set_tags(Some(convert::ec2_tags(&tags)))
                    .build(),
            );
        // The intent is the client token: EC2 answers a repeated token with the first
        // instance.
        call = call.set_client_token(intent_token(&request.tags));
        if let Some(script) = &request.user_data {
            call = call.user_data(aws_smithy_types::base64::encode(script.as_bytes()));
        }
        if let Some(gb) = request.root_volume_gb {
            let (device, image_gb) = root_device(&image);
            let size = gb.max(image_gb.unwrap_or(0));
            if size != gb {
                tracing::info!(
                    requested = gb,
                    size,
                    "root volume raised to the image's snapshot size"
                );
            }
            call = call.block_device_mappings(
                ec2::types::BlockDeviceMapping::builder()
                    .device_name(device)
                    .ebs(
                        ec2::types::EbsBlockDevice::builder()
                            .volume_size(i32::try_from(size).unwrap_or(i32::MAX))
                            .build(),
                    )
                    .build(),
            );
        }
        let out = call
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| {
                let err = self.err(
                    e,
                    RUN_INSTANCES,
                    region,
                    Some(format!("image {}", request.ami_id)),
                );
                with_subscription_link(err, &image)
            })?;
        let Some(raw) = out.instances().first() else {
            return Err(ProviderError::generic(
                "aws",
                format!("RunInstances in {region} answered without an instance"),
            ));
        };
        let mut inst = convert::instance(raw, region, image_arch).ok_or_else(|| {
            ProviderError::generic(
                "aws",
                format!("RunInstances in {region} answered without an instance id"),
            )
        })?;
        // Some backends leave the tags out of the RunInstances answer; they were applied.
        for (k, v) in &tags {
            inst.tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
        inst.name = request.name.clone();
        if inst.ami_id.is_empty() {
            inst.ami_id = request.ami_id.clone();
        }
        if inst.instance_type.is_empty() {
            inst.instance_type = request.instance_type.clone();
        }
        Ok(inst)
    }
    async fn describe_instances(
        &self,
        region: &str,
        filter: &InstanceFilter,
    ) -> ProviderResult<Vec<Instance>> {
        convert::check_region(region)?;
        convert::check_ids(&filter.ids, "i", "an instance")?;
        let mut pages = self
            .ec2(region)
            .describe_instances()
            .set_filters(Some(convert::instance_filters(
                &filter.ids,
                &filter.tags,
                filter.include_terminated,
            )))
            .max_results(1000)
            .into_paginator()
            .items()
            .send();
        let mut instances = Vec::new();
        while let Some(item) = pages.next().await {
            let reservation = item.map_err(|e| self.err(e, DESCRIBE_INSTANCES, region, None))?;
            instances.extend(
                reservation
                    .instances()
                    .iter()
                    .filter_map(|i| convert::instance(i, region, Architecture::X86_64)),
            );
        }
        Ok(instances)
    }
    async fn stop_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        convert::check_region(region)?;
        convert::check_ids(&[instance_id.to_string()], "i", "an instance")?;
        self.ec2(region)
            .stop_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e,
                    STOP_INSTANCES,
                    region,
                    Some(format!("instance {instance_id}")),
                )
            })?;
        self.instance_by_id(region, instance_id).await
    }
    async fn start_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        convert::check_region(region)?;
        convert::check_ids(&[instance_id.to_string()], "i", "an instance")?;
        self.ec2(region)
            .start_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e,
                    START_INSTANCES,
                    region,
                    Some(format!("instance {instance_id}")),
                )
            })?;
        self.instance_by_id(region, instance_id).await
    }
    /// `GetConsoleOutput`: EC2 keeps the last 64 KiB of the serial console, base64-encoded,
    /// and has none until the instance has booted for a while.
    ///
    /// It asks for the *latest* output: without `Latest`, EC2 answers what it buffered shortly
    /// after the last state change (the boot), which a provisioning script's last line, minutes
    /// later, may never reach. Instance types that cannot give the latest output (not on the
    /// Nitro hypervisor) answer `UnsupportedOperation`; they are asked again without it.
    async fn console_output(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Option<String>> {
        use aws_sdk_ec2::error::ProvideErrorMetadata;
        convert::check_region(region)?;
        convert::check_ids(&[instance_id.to_string()], "i", "an instance")?;
        let call = |latest: bool| {
            self.ec2(region)
                .get_console_output()
                .instance_id(instance_id)
                .set_latest(latest.then_some(true))
                .send()
        };
        let answer = match call(true).await {
            Err(e) if e.code() == Some("UnsupportedOperation") => call(false).await,
            other => other,
        };
        let out = answer.map_err(|e| {
            self.err(
                e,
                GET_CONSOLE_OUTPUT,
                region,
                Some(format!("instance {instance_id}")),
            )
        })?;
        Ok(out
            .output()
            .filter(|o| !o.is_empty())
            .map(convert::console_text))
    }
    async fn terminate_instance(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Instance> {
        convert::check_region(region)?;
        convert::check_ids(&[instance_id.to_string()], "i", "an instance")?;
        self.ec2(region)
            .terminate_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e,
                    TERMINATE_INSTANCES,
                    region,
                    Some(format!("instance {instance_id}")),
                )
            })?;
        self.instance_by_id(region, instance_id).await
    }
}

/// The root device name of an image (EC2's `RootDeviceName`; else `/dev/sda1` when the image
/// maps it, else `/dev/xvda`) and its snapshot size.
fn root_device(image: &ec2::types::Image) -> (String, Option<u32>) {
    let mappings = image.block_device_mappings();
    let device = image
        .root_device_name()
        .map(str::to_string)
        .unwrap_or_else(|| {
            if mappings
                .iter()
                .any(|m| m.device_name() == Some("/dev/sda1"))
            {
                "/dev/sda1".to_string()
            } else {
                "/dev/xvda".to_string()
            }
        });
    let size = mappings
        .iter()
        .find(|m| m.device_name() == Some(device.as_str()))
        .and_then(|m| m.ebs()?.volume_size())
        .and_then(|s| u32::try_from(s).ok());
    (device, size)
}

/// `OptInRequired` on launch means the Marketplace product behind the image needs a
/// subscription; when EC2's message has no link, point at the product code's page.
fn with_subscription_link(err: ProviderError, image: &ec2::types::Image) -> ProviderError {
    match err {
        ProviderError::PermissionDenied { action, message }
            if action == "aws-marketplace:Subscribe" && !message.contains("https://") =>
        {
            let code = image
                .product_codes()
                .iter()
                .find_map(|p| p.product_code_id());
            let message = match code {
                Some(code) => format!(
                    "subscribe to this product first: https://aws.amazon.com/marketplace/pp?sku={code} ({message})"
                ),
                None => message,
            };
            ProviderError::PermissionDenied { action, message }
        }
        other => other,
    }
}

/// The intent token of a creating request (its [`INTENT`](cws_provider::tags::INTENT) tag),
/// sent as the call's client token when it is a valid one.
fn intent_token(tags: &std::collections::BTreeMap<String, String>) -> Option<String> {
    tags.get(cws_provider::tags::INTENT)
        .filter(|t| cws_provider::intent::is_valid_token(t))
        .cloned()
}

/// Creating calls are not retried by the SDK: cws retries them itself, looking for what a
/// lost attempt made before trying again ([`cws_provider::intent::create_once`]), so a retry
/// never makes a second resource on a backend that ignores client tokens.
fn no_retries() -> ec2::config::Builder {
    ec2::config::Builder::default().retry_config(RetryConfig::disabled())
}

/// Checks an endpoint URL's shape: `http(s)://HOST[:PORT][/PATH]`, HOST a name, an IPv4
/// address or a bracketed IPv6 address, PORT 1–65535, nothing blank or control.
fn check_endpoint_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry credentials");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or("has an IPv6 address without its `]`")?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("has an invalid IPv6 address");
        }
        match after {
            "" => (addr, None),
            p => (
                addr,
                Some(
                    p.strip_prefix(':')
                        .ok_or("has junk after the IPv6 address")?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    if !authority.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err("has an invalid host name");
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0)
    {
        return Err("has an invalid port (1-65535)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        assert!(AwsConfig::default().validate().is_ok());
        let bad = [
            AwsConfig {
                max_attempts: 0,
                ..AwsConfig::default()
            },
            AwsConfig {
                endpoint_url: Some("127.0.0.1:5000".into()),
                ..AwsConfig::default()
            },
            AwsConfig {
                endpoint_url: Some("http://[::1".into()),
                ..AwsConfig::default()
            },
            AwsConfig {
                default_region: "mars-north-1".into(),
                ..AwsConfig::default()
            },
            AwsConfig {
                profile: Some(String::new()),
                ..AwsConfig::default()
            },
            AwsConfig {
                operation_timeout: Duration::ZERO,
                ..AwsConfig::default()
            },
        ];
        for cfg in bad {
            assert_eq!(
                cfg.validate().unwrap_err().kind(),
                "invalid_input",
                "{cfg:?}"
            );
        }
    }

    #[test]
    fn endpoint_urls_are_checked_before_any_call() {
        for ok in [
            "http://127.0.0.1:5000",
            "https://ec2.eu-west-1.amazonaws.com",
            "http://[::1]:5000/",
            "http://[::1]",
            "http://localhost/path?x=1",
        ] {
            assert_eq!(check_endpoint_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("127.0.0.1:5000", "http://"),
            ("http://[::1", "`]`"),
            ("http://[zz::1]:5000", "IPv6"),
            ("http://host:99999", "port"),
            ("http://host:0", "port"),
            ("http://", "no host"),
            ("http://:5000", "no host"),
            ("http://ho st", "spaces"),
            ("http://user:pw@host", "credentials"),
            ("http://h\u{1b}[2J", "control"),
            ("http://bad$host", "host name"),
        ] {
            let e = check_endpoint_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn description_names_endpoint_and_profile() {
        let cfg = AwsConfig {
            endpoint_url: Some("http://127.0.0.1:5000".into()),
            profile: Some("research".into()),
            ..AwsConfig::default()
        };
        assert_eq!(
            describe(&cfg),
            "AWS EC2 (endpoint http://127.0.0.1:5000; profile research)"
        );
        assert_eq!(
            describe(&AwsConfig::default()),
            "AWS EC2 (AWS endpoints; default credential chain)"
        );
    }

    #[test]
    fn root_device_defaults() {
        let img = ec2::types::Image::builder()
            .root_device_name("/dev/xvda")
            .block_device_mappings(
                ec2::types::BlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(ec2::types::EbsBlockDevice::builder().volume_size(8).build())
                    .build(),
            )
            .build();
        assert_eq!(root_device(&img), ("/dev/xvda".to_string(), Some(8)));
        let sda = ec2::types::Image::builder()
            .block_device_mappings(
                ec2::types::BlockDeviceMapping::builder()
                    .device_name("/dev/sda1")
                    .build(),
            )
            .build();
        assert_eq!(root_device(&sda), ("/dev/sda1".to_string(), None));
        let bare = ec2::types::Image::builder().build();
        assert_eq!(root_device(&bare).0, "/dev/xvda");
    }

    #[test]
    fn opt_in_errors_get_a_subscription_link() {
        let img = ec2::types::Image::builder()
            .product_codes(
                ec2::types::ProductCode::builder()
                    .product_code_id("cwsmp123")
                    .build(),
            )
            .build();
        let err = ProviderError::PermissionDenied {
            action: "aws-marketplace:Subscribe".into(),
            message: "the account must opt in first".into(),
        };
        let err = with_subscription_link(err, &img);
        assert!(
            err.to_string()
                .contains("subscribe to this product first: https://aws.amazon.com/marketplace/pp?sku=cwsmp123"),
            "{err}"
        );
        let other = ProviderError::Throttled {
            message: "x".into(),
        };
        assert_eq!(with_subscription_link(other, &img).kind(), "throttled");
    }
}
