//! The OpenAPI document, generated from the handlers' annotations (utoipa): it cannot drift
//! from the routes. Served at `GET /api/v1/openapi.json`; a copy is committed
//! (`cws-api/openapi.json`) and a test fails with a diff when they differ.

use axum::response::IntoResponse;
use utoipa::OpenApi;

use crate::{jobs, registry_routes, seed_routes};

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "cws",
        description = "The cws REST API: resolve, test, list and price images for templates; \
            create, copy and share them; and a community registry of listings. Errors are \
            `{\"error\": {\"code\", \"message\"}}`. Requests that spend money or widen access \
            change nothing without `\"confirm\": true` and answer 409 with the plan.",
        license(name = "Apache-2.0")
    ),
    paths(
        seed_routes::resolve,
        seed_routes::test,
        seed_routes::list,
        seed_routes::costs,
        seed_routes::fallbacks,
        seed_routes::templates,
        seed_routes::template,
        seed_routes::create,
        seed_routes::copy_region,
        seed_routes::share,
        jobs::job,
        registry_routes::browse,
        registry_routes::publish,
        registry_routes::listing,
        registry_routes::rate,
        registry_routes::reviews,
        registry_routes::report,
        registry_routes::clear_reports,
        registry_routes::revoke,
        registry_routes::download,
        registry_routes::set_channel,
        registry_routes::sign_version,
        registry_routes::find_image,
        registry_routes::import,
        registry_routes::refusals,
        registry_routes::trust,
        registry_routes::audit,
        registry_routes::whoami,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []), ()),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as pretty JSON (what `GET /api/v1/openapi.json` serves and the committed copy
/// holds).
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// `GET /api/v1/openapi.json`.
pub(crate) async fn serve() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
}
