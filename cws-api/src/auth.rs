//! Bearer tokens, scopes and per-token rate limits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cws_registry::{Actor, Scope, TokenInfo};

use crate::AppState;
use crate::error::ApiError;

/// Who is calling: the token's holder, or an anonymous reader.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The token presented, when one was (and it is valid).
    pub token: Option<TokenInfo>,
}

impl Caller {
    /// The registry actor (None: anonymous).
    pub fn actor(&self) -> Option<Actor> {
        self.token.as_ref().map(TokenInfo::actor)
    }

    /// The actor, if the token has `scope`: 401 without a token, 403 with too small a scope.
    pub fn require(&self, scope: Scope) -> Result<Actor, ApiError> {
        match &self.token {
            None => Err(ApiError::unauthorized(format!(
                "this needs a bearer token with scope `{scope}` (Authorization: Bearer TOKEN)"
            ))),
            Some(t) if !t.scope.allows(scope) => Err(ApiError::forbidden(format!(
                "token {} has scope `{}`; this needs `{scope}`",
                t.id, t.scope
            ))),
            Some(t) => Ok(t.actor()),
        }
    }

    /// Whether this caller is anonymous.
    pub fn anonymous(&self) -> bool {
        self.token.is_none()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_default())
    }
}

/// Fixed one-minute windows of request counts, per key (token id or client address).
#[derive(Debug, Default)]
pub(crate) struct RateWindows {
    windows: Mutex<HashMap<String, (u64, u32)>>,
}

impl RateWindows {
    /// Counts a request; `Err(seconds to wait)` when the key is over `limit` this minute.
    fn hit(&self, key: &str, limit: u32, now_s: u64) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let minute = now_s / 60;
        let Ok(mut w) = self.windows.lock() else {
            return Ok(());
        };
        if w.len() > 100_000 {
            w.retain(|_, (m, _)| *m == minute);
        }
        let e = w.entry(key.to_string()).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        if e.1 >= limit {
            return Err(60 - now_s % 60);
        }
        e.1 += 1;
        Ok(())
    }
}

/// Checks the bearer token (401 for an unknown, expired or revoked one), counts the request
/// against the caller's window (429 with `Retry-After` beyond the limit), and hands the
/// [`Caller`] to the handler.
pub(crate) async fn rate_limit(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let now = chrono::Utc::now();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("").trim().to_string());
    let caller = match bearer {
        None => Caller::default(),
        Some(v) => {
            let Some(secret) = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .map(str::trim)
            else {
                return ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`")
                    .into_response();
            };
            match state.tokens.authenticate(secret, now).await {
                Ok(Some(t)) => Caller { token: Some(t) },
                Ok(None) => {
                    return ApiError::unauthorized(
                        "the token is unknown, expired or revoked; ask the registry's admin for \
                         a new one",
                    )
                    .into_response();
                }
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    };
    let key = match &caller.token {
        Some(t) => format!("token:{}", t.id),
        None => format!(
            "addr:{}",
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_default()
        ),
    };
    if let Err(wait) = state.rate.hit(
        &key,
        state.limits.requests_per_minute,
        now.timestamp().max(0) as u64,
    ) {
        let mut e = ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "more than {} requests this minute; retry after {wait} s",
                state.limits.requests_per_minute
            ),
        );
        e.retry_after = Some(wait);
        return e.into_response();
    }
    // Every route that changes something needs a token: say so before reading the body.
    if caller.anonymous() && !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS") {
        return ApiError::unauthorized(
            "changing anything needs a bearer token (Authorization: Bearer TOKEN); ask the \
             registry's admin for one",
        )
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_to_its_limit_then_says_how_long_to_wait() {
        let w = RateWindows::default();
        for _ in 0..3 {
            assert_eq!(w.hit("k", 3, 120), Ok(()));
        }
        assert_eq!(w.hit("k", 3, 130), Err(50));
        assert_eq!(w.hit("other", 3, 130), Ok(()), "keys are counted apart");
        assert_eq!(
            w.hit("k", 3, 180),
            Ok(()),
            "a new minute starts a new window"
        );
        assert_eq!(w.hit("k", 0, 180), Ok(()), "0 means no limit");
    }
}
