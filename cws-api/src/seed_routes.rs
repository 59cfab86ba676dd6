//! The seed routes (resolve, test, list, costs, fallbacks, create, copy-region, share) and
//! templates. Each takes the CLI command's options as query or body fields and answers with
//! the CLI's `--json` document for the same question.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cws_lifecycle::{CopyRequest, CreateMultiRequest, CreateRequest, ShareRequest};
use cws_provider::LaunchPermission;
use cws_registry::Scope;
use cws_resolver::{Consent, ConsentRequest};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path, Query};
use crate::questions::{self, CostsQuestion, ResolveQuestion, TestQuestion};

type St = State<Arc<AppState>>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ami/resolve/{template}", get(resolve))
        .route("/ami/test/{template}", get(test))
        .route("/ami/list", get(list))
        .route("/ami/costs", get(costs))
        .route("/regions/fallbacks", get(fallbacks))
        .route("/templates", get(templates))
        .route("/templates/{slug}", get(template))
        .route("/ami/create", post(create))
        .route("/ami/copy-region", post(copy_region))
        .route("/ami/share", post(share))
}

fn region_or_default(state: &AppState, region: Option<String>) -> String {
    region.unwrap_or_else(|| state.default_region.clone())
}

/// `GET /ami/resolve/{template}` options (the resolve command's flags).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ResolveParams {
    /// The launch region (the server's default region when absent).
    region: Option<String>,
    /// `arm64` or `x86_64`.
    arch: Option<String>,
    /// A strategy or tier name instead of the template's (`--ami-strategy`).
    strategy: Option<String>,
}

/// Resolves a template in a region: the image chosen, every tier's attempt, copy plan, cost.
/// A resolution that found nothing is answered too (`"failed": true` in its attempts).
#[utoipa::path(get, path = "/api/v1/ami/resolve/{template}", tag = "ami",
    params(("template" = String, Path), ResolveParams),
    responses((status = 200, body = Object, description = "the resolution report: decision, every tier's attempt, copy plan, costs"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn resolve(
    State(state): St,
    caller: Caller,
    Path(template): Path<String>,
    Query(p): Query<ResolveParams>,
) -> ApiResult<Response> {
    let site = state.site_for(&caller);
    let q = ResolveQuestion {
        template,
        region: region_or_default(&state, p.region),
        arch: p.arch,
        strategy: p.strategy,
    };
    let r = questions::resolve(&site, &q).await?;
    Ok(axum::Json(r).into_response())
}

/// `GET /ami/test/{template}` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TestParams {
    /// The region to test (the server's default when absent; ignored with `all_regions`).
    region: Option<String>,
    /// Test every region in the catalogue.
    #[serde(default)]
    all_regions: bool,
    /// `arm64` or `x86_64`.
    arch: Option<String>,
}

fn regions(state: &AppState, region: Option<String>, all: bool) -> Vec<String> {
    if all {
        cws_regions::all()
            .iter()
            .map(|r| r.code.to_string())
            .collect()
    } else {
        vec![region_or_default(state, region)]
    }
}

/// Tests whether each region can launch a template, and how.
#[utoipa::path(get, path = "/api/v1/ami/test/{template}", tag = "ami",
    params(("template" = String, Path), TestParams),
    responses((status = 200, body = Object, description = "the test report: {provider, template, regions}"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn test(
    State(state): St,
    caller: Caller,
    Path(template): Path<String>,
    Query(p): Query<TestParams>,
) -> ApiResult<Response> {
    let site = state.site_for(&caller);
    let q = TestQuestion {
        template,
        regions: regions(&state, p.region, p.all_regions),
        arch: p.arch,
    };
    Ok(axum::Json(questions::test(&site, &q).await?).into_response())
}

/// `GET /ami/list` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// The template whose images to list.
    template: String,
    /// The region (the server's default when absent; ignored with `all_regions`).
    region: Option<String>,
    /// Every region in the catalogue.
    #[serde(default)]
    all_regions: bool,
}

/// A template's images, by region, with their source, listing, rating and signature.
#[utoipa::path(get, path = "/api/v1/ami/list", tag = "ami", params(ListParams),
    responses((status = 200, body = Object, description = "the image listing: {provider, template, images, errors}"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn list(
    State(state): St,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> ApiResult<Response> {
    let site = state.site_for(&caller);
    let regions = regions(&state, p.region, p.all_regions);
    let answer = questions::list(&site, &p.template, &regions).await?;
    Ok(axum::Json(answer.to_json()).into_response())
}

/// `GET /ami/costs` options (the costs command's flags).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CostsParams {
    /// The template.
    template: String,
    /// The region whose prices apply (the server's default when absent).
    region: Option<String>,
    /// Session length (`8`, `8h`, `30m`; default 8).
    hours: Option<String>,
    /// Instance type instead of the template's.
    instance_type: Option<String>,
    /// `arm64` or `x86_64`.
    arch: Option<String>,
    /// Launches per month (default 20).
    launches_per_month: Option<u32>,
    /// Snapshot size in GiB (default the template's root volume, else 30).
    snapshot_gb: Option<u32>,
}

/// AMI against script provisioning: time and money per launch and per month.
#[utoipa::path(get, path = "/api/v1/ami/costs", tag = "ami", params(CostsParams),
    responses((status = 200, body = Object, description = "the cost analysis: AMI against script, per launch and per month"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn costs(
    State(state): St,
    caller: Caller,
    Query(p): Query<CostsParams>,
) -> ApiResult<Response> {
    let site = state.site_for(&caller);
    let q = CostsQuestion {
        template: p.template,
        region: region_or_default(&state, p.region),
        hours: p.hours.unwrap_or_else(|| "8".into()),
        instance_type: p.instance_type,
        arch: p.arch,
        launches_per_month: p.launches_per_month.unwrap_or(20),
        snapshot_gb: p.snapshot_gb,
    };
    Ok(axum::Json(questions::costs(&site, &q)?).into_response())
}

/// `GET /regions/fallbacks` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FallbackParams {
    /// One region (its entry alone), else every region.
    region: Option<String>,
}

/// The regional fallback order: one region's entry, or every region's.
#[utoipa::path(get, path = "/api/v1/regions/fallbacks", tag = "regions", params(FallbackParams),
    responses((status = 200, body = serde_json::Value, description = "one region's fallbacks when `region` is given, else an array of every region's"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn fallbacks(
    State(state): St,
    Query(p): Query<FallbackParams>,
) -> ApiResult<Response> {
    let out = questions::fallbacks(&state.site.env.fallbacks, p.region.as_deref())?;
    // One region asked: its entry alone, as the CLI prints it.
    Ok(match (p.region.is_some(), out.first()) {
        (true, Some(one)) => axum::Json(one).into_response(),
        _ => axum::Json(out).into_response(),
    })
}

/// `GET /templates` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TemplatePage {
    /// Items per page (at most 100).
    limit: Option<usize>,
    /// Items to skip.
    offset: Option<usize>,
}

/// The templates the server knows, one entry each (one page).
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", params(TemplatePage),
    responses((status = 200, body = Vec<Object>), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn templates(
    State(state): St,
    Query(p): Query<TemplatePage>,
) -> ApiResult<Response> {
    let entries = state
        .site
        .templates
        .list()
        .map_err(questions::QuestionError::from)?;
    let limit = p.limit.unwrap_or(crate::MAX_PAGE).clamp(1, crate::MAX_PAGE);
    let page: Vec<_> = entries
        .into_iter()
        .skip(p.offset.unwrap_or(0))
        .take(limit)
        .collect();
    Ok(axum::Json(page).into_response())
}

/// One template, inheritance merged, with where it came from.
#[utoipa::path(get, path = "/api/v1/templates/{slug}", tag = "templates",
    params(("slug" = String, Path)),
    responses((status = 200, body = Object, description = "{origin, file, template}"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn template(State(state): St, Path(slug): Path<String>) -> ApiResult<Response> {
    let loaded = state
        .site
        .templates
        .get(&slug)
        .map_err(questions::QuestionError::from)?;
    Ok(axum::Json(serde_json::json!({
        "origin": loaded.origin,
        "file": loaded.file,
        "template": loaded.template,
    }))
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// Spending and sharing: a plan first (409 without "confirm": true), then the work.

/// Consent over HTTP: the body's `confirm` (and `allow_cost` above the policy's copy cap);
/// the first question asked is kept, to answer 409 with its plan.
struct HttpConsent {
    confirm: bool,
    allow_cost: bool,
    policy: cws_registry::policy::LoadedPolicy,
    asked: Mutex<Option<(serde_json::Value, Option<String>)>>,
}

impl HttpConsent {
    fn new(state: &AppState, confirm: bool, allow_cost: bool) -> HttpConsent {
        HttpConsent {
            confirm,
            allow_cost,
            policy: state.site.policy.clone(),
            asked: Mutex::new(None),
        }
    }

    /// The plan asked about, and why it was refused beyond a missing confirm.
    fn asked(&self) -> Option<(serde_json::Value, Option<String>)> {
        self.asked.lock().ok().and_then(|a| a.clone())
    }
}

impl Consent for HttpConsent {
    fn confirm(&self, request: &ConsentRequest) -> bool {
        let costs: Vec<f64> = match request {
            ConsentRequest::Copy { plan, .. } => vec![plan.estimated_cost_usd.as_f64()],
            ConsentRequest::CreateMulti { copies, .. } => copies
                .iter()
                .map(|c| (c.transfer_cost + c.monthly_storage).as_f64())
                .collect(),
            _ => Vec::new(),
        };
        let over = if self.allow_cost {
            None
        } else {
            costs
                .iter()
                .find_map(|c| self.policy.check_copy_cost(*c))
                .map(|why| format!("{why}; send \"allow_cost\": true as well to agree"))
        };
        if let Ok(mut a) = self.asked.lock()
            && a.is_none()
        {
            *a = Some((plan_json(request), over.clone()));
        }
        self.confirm && over.is_none()
    }
}

/// What a request would do, for the client to confirm: what, where, time and cost.
fn plan_json(request: &ConsentRequest) -> serde_json::Value {
    match request {
        ConsentRequest::Copy {
            plan,
            target_region,
            warnings,
        } => serde_json::json!({
            "action": "copy",
            "source_ami": plan.source_ami_id,
            "source_region": plan.source_region,
            "target_region": target_region,
            "snapshot_gb": plan.snapshot_gb,
            "estimated_seconds": plan.estimated_seconds,
            "estimated_cost_usd": plan.estimated_cost_usd.as_f64(),
            "warnings": warnings,
        }),
        ConsentRequest::CreateMulti {
            template,
            name,
            instance,
            source_region,
            copies,
            public,
            size_guessed,
            existing_image,
            already_copied,
        } => serde_json::json!({
            "already_copied": already_copied,
            "action": "create",
            "template": template,
            "name": name,
            "instance": instance,
            "region": source_region,
            "public": public,
            "size_guessed": size_guessed,
            "existing_image": existing_image,
            "copies": copies,
            "estimated_cost_usd": copies
                .iter()
                .map(|c| (c.transfer_cost + c.monthly_storage).as_f64())
                .sum::<f64>(),
        }),
        ConsentRequest::Share {
            image_id,
            name,
            region,
            permissions,
            snapshot_ids,
        } => serde_json::json!({
            "action": "share",
            "ami_id": image_id,
            "name": name,
            "region": region,
            "grant": permissions.iter().map(cws_lifecycle::describe_permission).collect::<Vec<_>>(),
            "snapshots_shared": snapshot_ids,
            "estimated_cost_usd": 0.0,
        }),
        ConsentRequest::ReplaceFailedScript {
            instance,
            outcome,
            ami_id,
            method,
            launch_seconds,
            copy,
        } => serde_json::json!({
            "action": "replace_failed_script",
            "copy": copy,
            "instance": instance.id,
            "name": instance.name,
            "region": instance.region,
            "outcome": outcome,
            "ami_id": ami_id,
            "method": method,
            "estimated_seconds": launch_seconds,
        }),
        ConsentRequest::StartInstance { instance, purpose } => serde_json::json!({
            "action": "start_instance",
            "instance": instance.id,
            "name": instance.name,
            "region": instance.region,
            "purpose": purpose,
        }),
        _ => serde_json::json!({"action": "other"}),
    }
}

/// 409: nothing was done; here is the plan to confirm.
fn confirmation_required(plan: serde_json::Value, over_cap: Option<String>) -> Response {
    let message = over_cap.unwrap_or_else(|| {
        "this spends money or widens access: nothing was done; send the same request with \
         \"confirm\": true to go ahead"
            .into()
    });
    (
        StatusCode::CONFLICT,
        axum::Json(serde_json::json!({
            "error": {"code": "confirmation_required", "message": message},
            "plan": plan,
        })),
    )
        .into_response()
}

fn accepted(id: String) -> Response {
    let location = format!("/api/v1/jobs/{id}");
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(serde_json::json!({"job": id})),
    )
        .into_response()
}

/// Runs a lifecycle call that asks `consent` before it does anything; answers 409 with the
/// plan when it was declined.
fn declined(e: cws_lifecycle::LifecycleError, consent: &HttpConsent) -> Response {
    match (e, consent.asked()) {
        (cws_lifecycle::LifecycleError::Declined(_), Some((plan, over))) => {
            confirmation_required(plan, over)
        }
        (e, _) => ApiError::from(e).into_response(),
    }
}

/// `POST /ami/copy-region`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CopyBody {
    /// The image to copy.
    ami: String,
    /// Its region (the server's default when absent).
    #[serde(default)]
    from: Option<String>,
    /// The region to copy it to.
    to: String,
    /// Agree to the plan (time and cost); without it nothing is copied (409 with the plan).
    #[serde(default)]
    confirm: bool,
    /// Agree to a copy above the policy's cost cap as well.
    #[serde(default)]
    allow_cost: bool,
}

/// Copies an image to another region (scope `publish`): 409 with the plan without
/// `"confirm": true`, else 202 with a job whose result is the copy report.
#[utoipa::path(post, path = "/api/v1/ami/copy-region", tag = "ami", request_body = CopyBody,
    responses((status = 202, description = "{job}: poll GET /api/v1/jobs/{job}"), (status = 409, description = "{error, plan}: nothing was done"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn copy_region(
    State(state): St,
    caller: Caller,
    Body(b): Body<CopyBody>,
) -> ApiResult<Response> {
    caller.require(Scope::Publish)?;
    let site = state.site_for(&caller);
    let from = region_or_default(&state, b.from);
    cws_regions::lookup(&from).map_err(questions::QuestionError::from)?;
    questions::check_region(&site, &b.to)?;
    if let Some(r) = questions::refused_sources(&site)
        .await?
        .into_iter()
        .find(|r| r.ami_ids.contains(&b.ami))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "refused",
            format!("refused: {} is {}", b.ami, r.reason),
        ));
    }
    let req = CopyRequest {
        image_id: b.ami.clone(),
        source_region: from,
        target_region: b.to.clone(),
        wait: Default::default(),
    };
    // Ask first, here, with nothing spent: the plan, and whether the caller agreed to it.
    let (_, plan) = cws_lifecycle::plan_copy(&site.env, &req.source_region, &b.ami, &b.to).await?;
    let consent = HttpConsent::new(&state, b.confirm, b.allow_cost);
    let asked = ConsentRequest::Copy {
        plan,
        target_region: b.to.clone(),
        warnings: Vec::new(),
    };
    if !consent.confirm(&asked) {
        let (plan, over) = consent.asked().unwrap_or_default();
        return Ok(confirmation_required(plan, over));
    }
    let pending = cws_lifecycle::PendingImages::open(&state.home);
    let env = site.env.clone();
    let st = state.clone();
    let who = caller.clone();
    let id = crate::jobs::spawn(
        &state,
        &caller,
        "copy-region",
        move |progress: Arc<dyn cws_lifecycle::Progress>| async move {
            let report = cws_lifecycle::copy_to_region(
                &env,
                &req,
                &cws_resolver::AssumeYes,
                Some(&pending),
                progress.as_ref(),
            )
            .await?;
            if !report.reused {
                st.record(
                    &who,
                    "copy",
                    &report.ami_id,
                    serde_json::json!({"source_ami": report.source_ami,
                    "source_region": report.source_region, "region": report.region}),
                );
            }
            serde_json::to_value(&report).map_err(|e| ApiError::internal("the copy report", e))
        },
    );
    Ok(accepted(id))
}

/// `POST /ami/create`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    /// The template the image serves.
    template: String,
    /// The instance to image (name or id).
    instance: String,
    /// The instance's region (the server's default when absent).
    #[serde(default)]
    region: Option<String>,
    /// The image name ("<template> <version> <time>" when absent).
    #[serde(default)]
    name: Option<String>,
    /// More regions to copy the image to (create-multi).
    #[serde(default)]
    regions: Vec<String>,
    /// Make the image(s) public.
    #[serde(default)]
    public: bool,
    /// Agree to the plan; without it nothing is made (409 with the plan).
    #[serde(default)]
    confirm: bool,
    /// Agree to copies above the policy's cost cap as well.
    #[serde(default)]
    allow_cost: bool,
}

/// Makes an image from an instance, and copies it to more regions (scope `publish`): 409 with
/// the plan without `"confirm": true`, else 202 with a job whose result is
/// the create report (or the create-multi report with `regions`).
#[utoipa::path(post, path = "/api/v1/ami/create", tag = "ami", request_body = CreateBody,
    responses((status = 202, description = "{job}: poll GET /api/v1/jobs/{job}"), (status = 409, description = "{error, plan}: nothing was done"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn create(
    State(state): St,
    caller: Caller,
    Body(b): Body<CreateBody>,
) -> ApiResult<Response> {
    caller.require(Scope::Publish)?;
    let site = state.site_for(&caller);
    let region = region_or_default(&state, b.region);
    questions::check_region(&site, &region)?;
    for r in &b.regions {
        questions::check_region(&site, r)?;
    }
    let loaded = site
        .templates
        .get(&b.template)
        .map_err(questions::QuestionError::from)?;
    let name = match b.name {
        Some(n) if n.trim().is_empty() => {
            return Err(ApiError::invalid(
                "name must not be empty; leave it out for \"<template> <version> <time>\"",
            ));
        }
        Some(n) => n,
        None => cws_lifecycle::default_image_name(&loaded.template, chrono::Utc::now()),
    };
    let create = CreateRequest {
        template: loaded.template.clone(),
        instance: b.instance,
        region: region.clone(),
        name,
        description: None,
        public: b.public,
        wait_for_running: false,
        no_reboot: false,
        tags: Default::default(),
        wait: Default::default(),
    };
    let mut all_regions = vec![region.clone()];
    for r in b.regions {
        if !all_regions.contains(&r) {
            all_regions.push(r);
        }
    }
    let multi = CreateMultiRequest {
        create: create.clone(),
        regions: all_regions.clone(),
        concurrency: cws_lifecycle::COPY_CONCURRENCY,
    };
    // The plan, from the same question create-multi asks before it makes anything.
    let consent = HttpConsent::new(&state, b.confirm, b.allow_cost);
    if !b.confirm {
        let env = site.env.clone();
        let plan_req = multi.clone();
        let (e, consent) = off_thread(move || async move {
            let e = cws_lifecycle::create_multi(
                &env,
                &plan_req,
                &consent,
                None,
                &cws_lifecycle::NoProgress,
            )
            .await
            .err();
            (e, consent)
        })
        .await?;
        return Ok(match e {
            Some(e) => declined(e, &consent),
            None => ApiError::internal("planning an image", "it was made without consent")
                .into_response(),
        });
    }
    let pending = cws_lifecycle::PendingImages::open(&state.home);
    let env = site.env.clone();
    let st = state.clone();
    let who = caller.clone();
    let single = all_regions.len() == 1;
    let kind = if single { "create" } else { "create-multi" };
    let work = CreateWork {
        env,
        create,
        multi,
        consent,
        pending,
        state: st,
        caller: who,
        single,
    };
    // create-multi's future is not `Send` as rustc sees it (a higher-ranked lifetime in its
    // copy loop), so the job runs on a thread of its own with its own small runtime.
    let id = crate::jobs::spawn(&state, &caller, kind, move |progress| async move {
        off_thread(move || work.run(progress)).await?
    });
    Ok(accepted(id))
}

/// Runs a future that rustc cannot prove `Send` (create-multi's copy loop holds a
/// higher-ranked lifetime) on a thread of its own, with its own small runtime.
async fn off_thread<F, Fut, T>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ApiError::internal("starting a worker", e))?;
        Ok(rt.block_on(f()))
    })
    .await
    .map_err(|e| ApiError::internal("a worker", e))?
}

/// An image creation, run as a job.
struct CreateWork {
    env: cws_resolver::ResolveEnv,
    create: CreateRequest,
    multi: CreateMultiRequest,
    consent: HttpConsent,
    pending: cws_lifecycle::PendingImages,
    state: Arc<AppState>,
    caller: Caller,
    single: bool,
}

impl CreateWork {
    async fn run(
        self,
        progress: Arc<dyn cws_lifecycle::Progress>,
    ) -> Result<serde_json::Value, ApiError> {
        let value = if self.single {
            let r = cws_lifecycle::create(
                &self.env,
                &self.create,
                &self.consent,
                Some(&self.pending),
                progress.as_ref(),
            )
            .await?;
            self.state.record(
                &self.caller,
                "create",
                &r.image.ami_id,
                serde_json::json!({"region": r.image.region}),
            );
            serde_json::to_value(&r)
        } else {
            let r = cws_lifecycle::create_multi(
                &self.env,
                &self.multi,
                &self.consent,
                Some(&self.pending),
                progress.as_ref(),
            )
            .await?;
            self.state.record(
                &self.caller,
                "create",
                &self.create.name,
                serde_json::json!({"regions": self.multi.regions}),
            );
            serde_json::to_value(&r)
        };
        value.map_err(|e| ApiError::internal("the create report", e))
    }
}

/// `POST /ami/share`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareBody {
    /// The image.
    ami: String,
    /// Its region (the server's default when absent).
    #[serde(default)]
    region: Option<String>,
    /// AWS account ids to grant.
    #[serde(default)]
    accounts: Vec<String>,
    /// An AWS Organization ARN to grant.
    #[serde(default)]
    org_arn: Option<String>,
    /// Grant everyone.
    #[serde(default)]
    public: bool,
    /// Take these grants away instead (narrows access: needs no confirm).
    #[serde(default)]
    revoke: bool,
    /// Agree to widen access; without it nothing changes (409 with the plan).
    #[serde(default)]
    confirm: bool,
}

/// Grants (or revokes) launch permission on an image (scope `publish`), as
/// the share report; a grant needs `"confirm": true` (409 with the plan without it).
#[utoipa::path(post, path = "/api/v1/ami/share", tag = "ami", request_body = ShareBody,
    responses((status = 200, body = Object, description = "the share report: permissions changed and in force, snapshots"), (status = 409, description = "{error, plan}: nothing was done"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn share(
    State(state): St,
    caller: Caller,
    Body(b): Body<ShareBody>,
) -> ApiResult<Response> {
    caller.require(Scope::Publish)?;
    let site = state.site_for(&caller);
    let region = region_or_default(&state, b.region);
    cws_regions::lookup(&region).map_err(questions::QuestionError::from)?;
    let mut permissions: Vec<LaunchPermission> = b
        .accounts
        .into_iter()
        .map(LaunchPermission::Account)
        .collect();
    if let Some(o) = b.org_arn {
        permissions.push(LaunchPermission::Organization(o));
    }
    if b.public {
        permissions.push(LaunchPermission::Public);
    }
    for p in &permissions {
        p.check().map_err(|e| ApiError::invalid(e.to_string()))?;
    }
    let req = ShareRequest {
        image_id: b.ami.clone(),
        region,
        permissions,
        revoke: b.revoke,
    };
    let consent = HttpConsent::new(&state, b.confirm, false);
    match cws_lifecycle::share(&site.env, &req, &consent).await {
        Ok(report) => {
            state.record(
                &caller,
                "share",
                &report.ami_id,
                serde_json::json!({"action": report.action, "changed": report.changed}),
            );
            Ok(axum::Json(report).into_response())
        }
        Err(e) => Ok(declined(e, &consent)),
    }
}
