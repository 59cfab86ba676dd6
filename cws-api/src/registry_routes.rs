//! The registry's routes: listings, versions, channels, ratings and reviews, reports,
//! revocations, downloads, signatures, imports, refusals, the institution's trust, the audit
//! log. Each answers with the registry's own JSON (the CLI's `--json` shapes).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use cws_registry::{
    BrowseQuery, Download, ListingDetail, ListingExport, ListingId, Publish, ReportReason, Scope,
    Visibility,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path, Query};

type St = State<Arc<AppState>>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/listings", get(browse).post(publish))
        .route("/listings/{publisher}/{slug}", get(listing))
        .route("/listings/{publisher}/{slug}/rating", put(rate))
        .route("/listings/{publisher}/{slug}/reviews", get(reviews))
        .route("/listings/{publisher}/{slug}/reports", post(report))
        .route(
            "/listings/{publisher}/{slug}/channels/{channel}",
            put(set_channel),
        )
        .route(
            "/listings/{publisher}/{slug}/versions/{version}/revoke",
            post(revoke),
        )
        .route(
            "/listings/{publisher}/{slug}/versions/{version}/downloads",
            post(download),
        )
        .route(
            "/listings/{publisher}/{slug}/versions/{version}/reports",
            delete(clear_reports),
        )
        .route(
            "/listings/{publisher}/{slug}/versions/{version}/signature",
            put(sign_version),
        )
        .route("/images/{ami_id}/listings", get(find_image))
        .route("/imports", post(import))
        .route("/refusals", get(refusals))
        .route("/trust", get(trust))
        .route("/audit", get(audit))
        .route("/whoami", get(whoami))
}

/// The token's holder: who the server acts as for this caller.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "registry",
    responses((status = 200, body = Object, description = "the token: {id, identity {name, email, handle}, orgs, scope, created_at, expires_at, revoked_at}"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn whoami(caller: Caller) -> ApiResult<axum::Json<cws_registry::TokenInfo>> {
    caller.require(Scope::Read)?;
    caller
        .token
        .map(axum::Json)
        .ok_or_else(|| ApiError::unauthorized("no token"))
}

fn listing_id(publisher: &str, slug: &str) -> ApiResult<ListingId> {
    Ok(ListingId::new(publisher, slug)?)
}

fn version(v: &str) -> ApiResult<semver::Version> {
    Ok(cws_registry::parse_version(v)?)
}

/// Without a token only public listings are seen (the store shows community listings to any
/// identified reader).
fn anonymous_may_see(caller: &Caller, v: &Visibility) -> bool {
    !caller.anonymous() || *v == Visibility::Public
}

/// The listing as the caller may see it (404 otherwise), with signatures checked against the
/// server's allowed signers when it has any.
async fn visible(state: &AppState, caller: &Caller, id: &ListingId) -> ApiResult<ListingDetail> {
    let mut d = state.registry.listing(caller.actor().as_ref(), id).await?;
    if !anonymous_may_see(caller, &d.summary.visibility) {
        return Err(cws_registry::RegistryError::UnknownListing {
            id: id.to_string(),
            suggestions: Vec::new(),
        }
        .into());
    }
    if !state.site.signers.signers.is_empty() {
        cws_registry::trust::annotate(&mut d, &state.site.signers);
    }
    Ok(d)
}

/// A page of a list: `next_offset` is where the next page starts (`null` at the end).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// Items per page (at most 100; default 100).
    limit: Option<usize>,
    /// Items to skip.
    offset: Option<usize>,
}

impl Page {
    fn bounds(&self) -> (usize, usize) {
        let limit = self
            .limit
            .unwrap_or(crate::MAX_PAGE)
            .clamp(1, crate::MAX_PAGE);
        (self.offset.unwrap_or(0), limit)
    }

    /// The page of `items`, and where the next page starts.
    fn cut<T>(&self, items: Vec<T>) -> (Vec<T>, Option<usize>) {
        let (offset, limit) = self.bounds();
        let total = items.len();
        let page: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
        let end = offset.saturating_add(page.len());
        let next = (end < total).then_some(end);
        (page, next)
    }
}

/// `GET /listings` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BrowseParams {
    /// Only this category.
    category: Option<String>,
    /// Words that must appear in the id, name, description or category.
    q: Option<String>,
    /// Only listings shared with this community.
    community: Option<String>,
    /// `score` (default), `rating`, `downloads` or `recent`.
    sort: Option<String>,
    /// Items per page (at most 100).
    limit: Option<usize>,
    /// Items to skip.
    offset: Option<usize>,
}

/// A page of listings.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListingsPage {
    /// Listing summaries.
    #[schema(value_type = Vec<Object>)]
    listings: Vec<cws_registry::ListingSummary>,
    /// Where the next page starts; `null` on the last page.
    next_offset: Option<usize>,
}

/// Browses listings, best first.
#[utoipa::path(get, path = "/api/v1/listings", params(BrowseParams), tag = "registry",
    responses((status = 200, body = ListingsPage), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn browse(
    State(state): St,
    caller: Caller,
    Query(p): Query<BrowseParams>,
) -> ApiResult<axum::Json<ListingsPage>> {
    let sort = match &p.sort {
        Some(s) => s.parse()?,
        None => Default::default(),
    };
    let page = Page {
        limit: p.limit,
        offset: p.offset,
    };
    let (offset, limit) = page.bounds();
    let q = BrowseQuery {
        category: p.category.clone(),
        text: p.q.clone(),
        community: p.community.clone(),
        sort,
        // One more than the page, to know whether another follows.
        limit: offset.saturating_add(limit).saturating_add(1),
    };
    let mut all = state.registry.browse(caller.actor().as_ref(), &q).await?;
    all.retain(|s| anonymous_may_see(&caller, &s.visibility));
    if !state.site.signers.signers.is_empty() {
        for s in &mut all {
            s.signature = cws_registry::trust::check_summary(s, &state.site.signers);
        }
    }
    let (listings, next_offset) = page.cut(all);
    Ok(axum::Json(ListingsPage {
        listings,
        next_offset,
    }))
}

/// Publishes one region's image of a version as the token's holder (scope `publish`).
#[utoipa::path(post, path = "/api/v1/listings", tag = "registry",
    request_body(content = Object, description = "a Publish: listing, name, description, category, template, visibility, version, template_digest, region, image {ami_id, architecture, snapshot_ids, size_gib}, notes, speedup"),
    responses((status = 200, body = Object, description = "what the publish did (nothing new: the same image again, or an added region)"), (status = 201, body = Object, description = "what the publish did: a new listing or version"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn publish(
    State(state): St,
    caller: Caller,
    Body(p): Body<Publish>,
) -> ApiResult<Response> {
    let actor = caller.require(Scope::Publish)?;
    let published = state.registry.publish(&actor, &p).await?;
    if published.changed {
        state.record(
            &caller,
            "publish",
            &format!("{}@{}", published.listing, published.version),
            serde_json::json!({"region": published.region, "ami_id": published.ami_id,
                "revision": published.revision}),
        );
    }
    let status = if published.created_listing || published.created_version {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(published)).into_response())
}

/// A listing with its versions, channels and reviews.
#[utoipa::path(get, path = "/api/v1/listings/{publisher}/{slug}", tag = "registry",
    params(("publisher" = String, Path), ("slug" = String, Path)),
    responses((status = 200, body = Object, description = "the listing summary plus creator, channels, versions and reviews"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn listing(
    State(state): St,
    caller: Caller,
    Path((publisher, slug)): Path<(String, String)>,
) -> ApiResult<axum::Json<ListingDetail>> {
    let id = listing_id(&publisher, &slug)?;
    Ok(axum::Json(visible(&state, &caller, &id).await?))
}

/// A rating: 1–5 stars and an optional review.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateBody {
    /// 1 to 5.
    stars: i64,
    /// Review text (at most 2000 characters).
    #[serde(default)]
    review: Option<String>,
}

/// Rates a listing as the token's holder (scope `rate`); a re-rate replaces.
#[utoipa::path(put, path = "/api/v1/listings/{publisher}/{slug}/rating", tag = "registry",
    params(("publisher" = String, Path), ("slug" = String, Path)), request_body = RateBody,
    responses((status = 200, body = Object, description = "the listing's ratings: {average, count}"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn rate(
    State(state): St,
    caller: Caller,
    Path((publisher, slug)): Path<(String, String)>,
    Body(b): Body<RateBody>,
) -> ApiResult<axum::Json<cws_registry::RatingSummary>> {
    let actor = caller.require(Scope::Rate)?;
    let id = listing_id(&publisher, &slug)?;
    let stars = cws_registry::check_stars(b.stars)?;
    visible(&state, &caller, &id).await?;
    let r = state
        .registry
        .rate(&actor, &id, stars, b.review.as_deref())
        .await?;
    state.record(
        &caller,
        "rate",
        &id.to_string(),
        serde_json::json!({"stars": stars}),
    );
    Ok(axum::Json(r))
}

/// A page of reviews.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReviewsPage {
    /// Reviews, newest first.
    #[schema(value_type = Vec<Object>)]
    reviews: Vec<cws_registry::Review>,
    /// Where the next page starts; `null` on the last page.
    next_offset: Option<usize>,
}

/// A listing's reviews, newest first.
#[utoipa::path(get, path = "/api/v1/listings/{publisher}/{slug}/reviews", tag = "registry",
    params(("publisher" = String, Path), ("slug" = String, Path), Page),
    responses((status = 200, body = ReviewsPage), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn reviews(
    State(state): St,
    caller: Caller,
    Path((publisher, slug)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> ApiResult<axum::Json<ReviewsPage>> {
    let id = listing_id(&publisher, &slug)?;
    visible(&state, &caller, &id).await?;
    let all = state.registry.reviews(caller.actor().as_ref(), &id).await?;
    let (reviews, next_offset) = page.cut(all);
    Ok(axum::Json(ReviewsPage {
        reviews,
        next_offset,
    }))
}

/// A report on a version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportBody {
    /// The version reported.
    version: String,
    /// `security`, `broken`, `misleading` or `other`.
    reason: String,
    /// What is wrong.
    #[serde(default)]
    message: Option<String>,
}

/// Reports a version (scope `rate`). Three distinct security reports, or one by an admin,
/// quarantine it.
#[utoipa::path(post, path = "/api/v1/listings/{publisher}/{slug}/reports", tag = "registry",
    params(("publisher" = String, Path), ("slug" = String, Path)), request_body = ReportBody,
    responses((status = 200, body = Object, description = "{listing, version, security_reports, quarantined}"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn report(
    State(state): St,
    caller: Caller,
    Path((publisher, slug)): Path<(String, String)>,
    Body(b): Body<ReportBody>,
) -> ApiResult<axum::Json<cws_registry::ReportOutcome>> {
    let actor = caller.require(Scope::Rate)?;
    let id = listing_id(&publisher, &slug)?;
    let v = version(&b.version)?;
    let reason: ReportReason = b.reason.parse()?;
    visible(&state, &caller, &id).await?;
    let out = state
        .registry
        .report(&actor, &id, &v, reason, b.message.as_deref())
        .await?;
    state.record(
        &caller,
        "report",
        &format!("{id}@{v}"),
        serde_json::json!({"reason": reason.as_str(), "quarantined": out.quarantined}),
    );
    Ok(axum::Json(out))
}

/// Clears a version's quarantine and security reports (an admin's token).
#[utoipa::path(delete, path = "/api/v1/listings/{publisher}/{slug}/versions/{version}/reports", tag = "registry",
    params(("publisher" = String, Path), ("slug" = String, Path), ("version" = String, Path)),
    responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn clear_reports(
    State(state): St,
    caller: Caller,
    Path((publisher, slug, v)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    // Only an admin may clear (the store refuses anyone else, naming why); a token that may
    // report may ask.
    let actor = caller.require(Scope::Rate)?;
    let id = listing_id(&publisher, &slug)?;
    let v = version(&v)?;
    state.registry.clear_reports(&actor, &id, &v).await?;
    state.record(
        &caller,
        "report",
        &format!("{id}@{v}"),
        serde_json::json!({"cleared": true}),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Why a version is revoked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeBody {
    /// The reason, shown to everyone the version is refused to.
    reason: String,
}

/// Revokes a version (its publisher, or an admin; scope `publish`).
#[utoipa::path(post, path = "/api/v1/listings/{publisher}/{slug}/versions/{version}/revoke", tag = "registry",
    params(("publisher" = String, Path), ("slug" = String, Path), ("version" = String, Path)), request_body = RevokeBody,
    responses((status = 200, body = Object, description = "{reason, by, at}"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn revoke(
    State(state): St,
    caller: Caller,
    Path((publisher, slug, v)): Path<(String, String, String)>,
    Body(b): Body<RevokeBody>,
) -> ApiResult<axum::Json<cws_registry::Revocation>> {
    let actor = caller.require(Scope::Publish)?;
    let id = listing_id(&publisher, &slug)?;
    let v = version(&v)?;
    let r = state.registry.revoke(&actor, &id, &v, &b.reason).await?;
    state.record(
        &caller,
        "revoke",
        &format!("{id}@{v}"),
        serde_json::json!({"reason": b.reason}),
    );
    Ok(axum::Json(r))
}

/// A launch from a version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DownloadBody {
    /// The day (UTC, `YYYY-MM-DD`); today when absent.
    #[serde(default)]
    day: Option<String>,
}

/// Counts one launch from a version by the token's holder (any scope).
#[utoipa::path(post, path = "/api/v1/listings/{publisher}/{slug}/versions/{version}/downloads", tag = "registry",
    params(("publisher" = String, Path), ("slug" = String, Path), ("version" = String, Path)), request_body = DownloadBody,
    responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn download(
    State(state): St,
    caller: Caller,
    Path((publisher, slug, v)): Path<(String, String, String)>,
    Body(b): Body<DownloadBody>,
) -> ApiResult<StatusCode> {
    let actor = caller.require(Scope::Read)?;
    let id = listing_id(&publisher, &slug)?;
    let version = version(&v)?;
    let day = match &b.day {
        None => chrono::Utc::now().date_naive(),
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid(format!(
                "day `{}` is not a date; write it as YYYY-MM-DD",
                d.escape_debug()
            ))
        })?,
    };
    // Only a listing the caller may see can be launched from, so only it is counted.
    visible(&state, &caller, &id).await?;
    state
        .registry
        .record_download(&Download {
            listing: id,
            version,
            day,
            by: Some(actor.identity.handle),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A channel move.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelBody {
    /// The version the channel points at.
    version: String,
}

/// Points a channel (`stable`, ...) at a version (publisher or admin; scope `publish`).
#[utoipa::path(put, path = "/api/v1/listings/{publisher}/{slug}/channels/{channel}", tag = "registry",
    params(("publisher" = String, Path), ("slug" = String, Path), ("channel" = String, Path)), request_body = ChannelBody,
    responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn set_channel(
    State(state): St,
    caller: Caller,
    Path((publisher, slug, channel)): Path<(String, String, String)>,
    Body(b): Body<ChannelBody>,
) -> ApiResult<StatusCode> {
    let actor = caller.require(Scope::Publish)?;
    let id = listing_id(&publisher, &slug)?;
    let v = version(&b.version)?;
    state
        .registry
        .set_channel(&actor, &id, &channel, &v)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stores the signed document of a version's current revision (its publisher; scope
/// `publish`).
#[utoipa::path(put, path = "/api/v1/listings/{publisher}/{slug}/versions/{version}/signature", tag = "registry",
    params(("publisher" = String, Path), ("slug" = String, Path), ("version" = String, Path)),
    request_body(content = Object, description = "{revision, document, signature}"),
    responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn sign_version(
    State(state): St,
    caller: Caller,
    Path((publisher, slug, v)): Path<(String, String, String)>,
    Body(signed): Body<cws_registry::trust::SignedDocument>,
) -> ApiResult<StatusCode> {
    let actor = caller.require(Scope::Publish)?;
    let id = listing_id(&publisher, &slug)?;
    let v = version(&v)?;
    state
        .registry
        .sign_version(&actor, &id, &v, &signed)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where an image id is published.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImageListings {
    /// `{listing, version, region}` per place the image is published.
    #[schema(value_type = Vec<Object>)]
    listings: Vec<cws_registry::ImageListing>,
}

/// The listings that hold an image.
#[utoipa::path(get, path = "/api/v1/images/{ami_id}/listings", tag = "registry",
    params(("ami_id" = String, Path)),
    responses((status = 200, body = ImageListings), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn find_image(
    State(state): St,
    caller: Caller,
    Path(ami_id): Path<String>,
) -> ApiResult<axum::Json<ImageListings>> {
    let mut listings = state
        .registry
        .find_image(caller.actor().as_ref(), &ami_id)
        .await?;
    if caller.anonymous() {
        let mut kept = Vec::new();
        for l in listings {
            if visible(&state, &caller, &l.listing).await.is_ok() {
                kept.push(l);
            }
        }
        listings = kept;
    }
    Ok(axum::Json(ImageListings { listings }))
}

/// Adds a listing exported from another registry (scope `publish`). Versions whose
/// signature fails against the server's allowed signers are refused.
#[utoipa::path(post, path = "/api/v1/imports", tag = "registry",
    request_body(content = Object, description = "a listing export (format cws-listing-export/1)"),
    responses((status = 200, body = Object, description = "{listing, added_versions, added_regions}"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn import(
    State(state): St,
    caller: Caller,
    Body(export): Body<ListingExport>,
) -> ApiResult<axum::Json<cws_registry::Imported>> {
    let actor = caller.require(Scope::Publish)?;
    if export.format != cws_registry::EXPORT_FORMAT {
        return Err(cws_registry::RegistryError::invalid(
            "format",
            &export.format,
            cws_registry::EXPORT_FORMAT,
        )
        .into());
    }
    if state.verify_imports
        && let Some((v, s)) = cws_registry::trust::check_export(&export, &state.site.signers)
            .into_iter()
            .find(|(_, s)| s.status == "invalid")
    {
        return Err(cws_registry::RegistryError::Invalid {
            field: "signature".into(),
            value: format!("{}@{v}", export.id),
            expected: format!(
                "a signature that verifies ({}); nothing was imported",
                s.detail.unwrap_or_default()
            ),
        }
        .into());
    }
    let out = state.registry.import(&actor, &export).await?;
    state.record(
        &caller,
        "import",
        &out.listing.to_string(),
        serde_json::json!({"added_versions": out.added_versions, "added_regions": out.added_regions}),
    );
    Ok(axum::Json(out))
}

/// Revoked and quarantined versions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Refusals {
    /// `{listing, version, reason}` per version that may not be launched.
    #[schema(value_type = Vec<Object>)]
    refusals: Vec<cws_registry::Refusal>,
}

/// Every revoked or quarantined version of a listing the caller may see.
#[utoipa::path(get, path = "/api/v1/refusals", tag = "registry",
    responses((status = 200, body = Refusals), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn refusals(State(state): St, caller: Caller) -> ApiResult<axum::Json<Refusals>> {
    let all = state.registry.refusals().await?;
    let admin = caller
        .token
        .as_ref()
        .is_some_and(|t| t.scope == Scope::Admin);
    let mut refusals = Vec::new();
    for r in all {
        if admin || visible(&state, &caller, &r.listing).await.is_ok() {
            refusals.push(r);
        }
    }
    Ok(axum::Json(Refusals { refusals }))
}

/// What the institution trusts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Trust {
    /// The allowed-signers file (git's format): the keys listings are verified against.
    allowed_signers: String,
    /// The policy in force on this server.
    #[schema(value_type = Object)]
    policy: cws_registry::policy::Policy,
}

/// The institution's signer keys and policy.
#[utoipa::path(get, path = "/api/v1/trust", tag = "registry",
    responses((status = 200, body = Trust), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn trust(State(state): St) -> axum::Json<Trust> {
    axum::Json(Trust {
        allowed_signers: state.signers_text.clone(),
        policy: state.site.policy.policy.clone(),
    })
}

/// A page of the server's audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Records, oldest first.
    #[schema(value_type = Vec<Object>)]
    records: Vec<cws_registry::audit::Record>,
    /// Where the next page starts; `null` on the last page.
    next_offset: Option<usize>,
}

/// The server's audit log (scope `admin`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "registry", params(Page),
    responses((status = 200, body = AuditPage), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn audit(
    State(state): St,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<axum::Json<AuditPage>> {
    caller.require(Scope::Admin)?;
    let records = match &state.audit {
        None => Vec::new(),
        Some(log) => log
            .read(&Default::default())
            .map_err(|e| ApiError::internal("reading the audit log", e))?,
    };
    let (records, next_offset) = page.cut(records);
    Ok(axum::Json(AuditPage {
        records,
        next_offset,
    }))
}
