//! Errors as the API answers them: `{"error": {"code", "message"}}` with a status, never a
//! stack trace or SQL. A registry error also travels whole (`registry_error`), so the HTTP
//! registry client gives its caller the same error the store gave.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cws_registry::RegistryError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::questions::QuestionError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable snake_case code (`unknown_listing`, `unauthorized`, `rate_limited`, ...).
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The registry's own error, when it is one.
    pub registry_error: Option<Box<RegistryError>>,
    /// Seconds to wait (429).
    pub retry_after: Option<u64>,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What an error says.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// The registry's error, tagged by `kind`, when the registry refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub registry_error: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            registry_error: None,
            retry_after: None,
        }
    }

    /// 400: a malformed request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422: a well-formed request with a value that is not acceptable.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 401: no token, or a token that is unknown, expired or revoked.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a token without the scope this needs.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500, logged with its detail; the answer says only that the server failed.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context} failed on the server; its log has the detail"),
        )
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        let status = match &e {
            RegistryError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            RegistryError::UnknownListing { .. }
            | RegistryError::UnknownVersion { .. }
            | RegistryError::UnlistedImage { .. } => StatusCode::NOT_FOUND,
            RegistryError::RegionTaken { .. } | RegistryError::Rollback { .. } => {
                StatusCode::CONFLICT
            }
            RegistryError::Forbidden { .. } => StatusCode::FORBIDDEN,
            RegistryError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            RegistryError::Store { .. } => {
                // The store's message may hold SQL or paths: it stays in the log.
                return ApiError::internal("the registry store", &e);
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError {
            status,
            code: e.code().to_string(),
            message: e.to_string(),
            registry_error: Some(Box::new(e)),
            retry_after: None,
        }
    }
}

impl From<QuestionError> for ApiError {
    fn from(e: QuestionError) -> ApiError {
        match e {
            QuestionError::Registry(r) => r.into(),
            QuestionError::Template(t) => {
                let not_found = matches!(t, cws_template::TemplateError::NotFound { .. });
                if not_found {
                    ApiError::new(StatusCode::NOT_FOUND, "unknown_template", t.to_string())
                } else {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_template",
                        t.to_string(),
                    )
                }
            }
            QuestionError::Provider(p) => provider_error(&p),
            QuestionError::Region(r) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_region",
                r.to_string(),
            ),
            QuestionError::Refused(why) => ApiError::new(
                StatusCode::FORBIDDEN,
                "refused_by_policy",
                format!("refused: {why}"),
            ),
            e @ (QuestionError::Invalid { .. } | QuestionError::Cost(_)) => {
                ApiError::invalid(e.to_string())
            }
        }
    }
}

/// A provider's failure: the cloud's own words are fine to pass on (they are the client's
/// cloud), but not as a 5xx the client can do nothing about when the input was at fault.
pub fn provider_error(p: &cws_provider::ProviderError) -> ApiError {
    match p.kind() {
        "not_found" => ApiError::new(StatusCode::NOT_FOUND, "not_found", p.to_string()),
        "invalid_input" => ApiError::invalid(p.to_string()),
        "conflict" => ApiError::new(StatusCode::CONFLICT, "conflict", p.to_string()),
        "throttled" | "unavailable" => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, p.kind(), p.to_string())
        }
        kind => ApiError::new(StatusCode::BAD_GATEWAY, kind, p.to_string()),
    }
}

impl From<cws_lifecycle::LifecycleError> for ApiError {
    fn from(e: cws_lifecycle::LifecycleError) -> ApiError {
        match e {
            cws_lifecycle::LifecycleError::Provider(p) => provider_error(&p),
            e if e.is_invalid_input() => ApiError::invalid(e.to_string()),
            e => ApiError::new(StatusCode::CONFLICT, "lifecycle", e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                registry_error: self
                    .registry_error
                    .as_ref()
                    .and_then(|e| serde_json::to_value(e).ok()),
            },
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
