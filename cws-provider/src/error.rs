//! The one error type every provider returns.
//!
//! Each backend maps its own failures into these cases so that callers (tiers, the CLI, the
//! REST API) can act on them: a `NotFound` image is a tier miss, `Throttled` is worth a retry,
//! `PermissionDenied` names the IAM action to grant, and so on.

use std::fmt;

/// What went wrong talking to a cloud backend.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The resource does not exist (an image, instance or snapshot id unknown to the backend).
    #[error("{what} not found in {region}")]
    NotFound {
        /// What was looked for, e.g. "image ami-0123…".
        what: String,
        /// The region that was asked.
        region: String,
    },
    /// The caller is not allowed to do this.
    #[error("permission denied: {message} (grant the IAM action `{action}`)")]
    PermissionDenied {
        /// The API action that was refused, e.g. `ec2:CopyImage`.
        action: String,
        /// What the backend said.
        message: String,
    },
    /// The backend is rate-limiting us and retries did not get through.
    #[error("throttled by the provider after retries: {message}; wait a moment and try again")]
    Throttled {
        /// What the backend said.
        message: String,
    },
    /// The backend could not be reached or answered with a server error.
    #[error("provider endpoint {endpoint} is unavailable: {message}")]
    Unavailable {
        /// The endpoint (URL or provider name) that failed.
        endpoint: String,
        /// What happened.
        message: String,
    },
    /// The request itself was wrong (unknown region, malformed id, bad parameter).
    #[error("invalid request: {message}")]
    InvalidInput {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A region name the backend does not know.
    #[error(
        "invalid request: unknown {provider} region `{region}`{}",
        did_you_mean(suggestion)
    )]
    UnknownRegion {
        /// The provider name (`aws`, `localcloud`, ...).
        provider: String,
        /// The region asked for.
        region: String,
        /// A known region the name is close to, if any.
        suggestion: Option<String>,
    },
    /// A snapshot cannot be deleted while an image still uses it.
    #[error(
        "snapshot {snapshot_id} in {region} is in use by {}; deregister the image first, then \
         delete the snapshot",
        image_id.as_deref().unwrap_or("an image")
    )]
    SnapshotInUse {
        /// The snapshot.
        snapshot_id: String,
        /// Its region.
        region: String,
        /// The image that uses it, when the backend says.
        image_id: Option<String>,
    },
    /// The request conflicts with existing state (e.g. an instance name already in use).
    #[error("{message}")]
    Conflict {
        /// What conflicts, naming the existing resource.
        message: String,
    },
    /// The backend cannot do this at all (e.g. a tier that needs a service the backend lacks).
    #[error("{provider} does not support {operation}: {reason}")]
    Unsupported {
        /// The provider name.
        provider: String,
        /// The operation that is not supported.
        operation: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// Anything else, with the backend's own error as the source (reached through
    /// [`std::error::Error::source`], not repeated in this error's own message).
    #[error("{provider} error")]
    Generic {
        /// The provider name.
        provider: String,
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl ProviderError {
    /// A generic error from a plain message.
    pub fn generic(provider: impl Into<String>, message: impl fmt::Display) -> Self {
        ProviderError::Generic {
            provider: provider.into(),
            source: message.to_string().into(),
        }
    }

    /// The same error for a second caller that waited on the same call (one answer shared by
    /// several askers). Every case is copied field by field, except that a
    /// [`Generic`](ProviderError::Generic) error's source is kept as its text.
    pub fn duplicate(&self) -> ProviderError {
        use ProviderError as E;
        match self {
            E::NotFound { what, region } => E::NotFound {
                what: what.clone(),
                region: region.clone(),
            },
            E::PermissionDenied { action, message } => E::PermissionDenied {
                action: action.clone(),
                message: message.clone(),
            },
            E::Throttled { message } => E::Throttled {
                message: message.clone(),
            },
            E::Unavailable { endpoint, message } => E::Unavailable {
                endpoint: endpoint.clone(),
                message: message.clone(),
            },
            E::InvalidInput { message } => E::InvalidInput {
                message: message.clone(),
            },
            E::UnknownRegion {
                provider,
                region,
                suggestion,
            } => E::UnknownRegion {
                provider: provider.clone(),
                region: region.clone(),
                suggestion: suggestion.clone(),
            },
            E::SnapshotInUse {
                snapshot_id,
                region,
                image_id,
            } => E::SnapshotInUse {
                snapshot_id: snapshot_id.clone(),
                region: region.clone(),
                image_id: image_id.clone(),
            },
            E::Conflict { message } => E::Conflict {
                message: message.clone(),
            },
            E::Unsupported {
                provider,
                operation,
                reason,
            } => E::Unsupported {
                provider: provider.clone(),
                operation: operation.clone(),
                reason: reason.clone(),
            },
            E::Generic { provider, source } => E::Generic {
                provider: provider.clone(),
                source: source.to_string().into(),
            },
        }
    }

    /// Whether retrying the same call later might succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Throttled { .. } | ProviderError::Unavailable { .. }
        )
    }

    /// Whether the request itself was at fault (bad input, or a conflict with existing state)
    /// rather than the backend: asking again unchanged gets the same answer.
    pub fn is_caller_error(&self) -> bool {
        matches!(self.kind(), "invalid_input" | "conflict")
    }

    /// A short machine-readable name of the case, used in JSON reports.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::NotFound { .. } => "not_found",
            ProviderError::PermissionDenied { .. } => "permission_denied",
            ProviderError::Throttled { .. } => "throttled",
            ProviderError::Unavailable { .. } => "unavailable",
            ProviderError::InvalidInput { .. } | ProviderError::UnknownRegion { .. } => {
                "invalid_input"
            }
            ProviderError::Conflict { .. } | ProviderError::SnapshotInUse { .. } => "conflict",
            ProviderError::Unsupported { .. } => "unsupported",
            ProviderError::Generic { .. } => "generic",
        }
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

/// Result alias for provider calls.
pub type ProviderResult<T> = Result<T, ProviderError>;
