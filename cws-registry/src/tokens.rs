//! API tokens for `cws serve`: who a request acts as, in which organizations, and what it may
//! do ([`Scope`]).
//!
//! A token's secret (`cws_<id>_<64 hex digits>`, 256 random bits from the operating system's
//! CSPRNG) is shown once, when it is made ([`IssuedToken`]); the store keeps only its SHA-256
//! hash, and finds a token by the hash of the secret a request presents
//! ([`TokenStore::authenticate`]). The id (`t` and 10 hex digits) names a token in lists and
//! revocations; it is not secret.
//!
//! Both registry stores keep tokens in the same database as the registry
//! ([`crate::SqliteRegistry`], and `PostgresRegistry` with feature `postgres`), and pass the
//! same conformance suite (`testing::token_conformance`, feature `testing`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Actor, Identity, is_org_name};
use crate::{RegistryError, RegistryResult};

/// What a token may do. Scopes nest: admin ⊃ publish ⊃ rate ⊃ read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Reads the registry (the listings its identity and organizations may see).
    Read,
    /// Reads, and rates and reviews listings.
    Rate,
    /// Rates, and publishes (and manages) its identity's own listings.
    Publish,
    /// Everything, as an admin of the registry.
    Admin,
}

impl Scope {
    /// Every scope, from least to most.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Rate, Scope::Publish, Scope::Admin];

    /// Whether a token of this scope may do what needs `needed` (this scope includes it).
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }

    /// The scope's name: `read`, `rate`, `publish` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Rate => "rate",
            Scope::Publish => "publish",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Scope, RegistryError> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| RegistryError::invalid("scope", s, "read, rate, publish or admin"))
    }
}

/// A token to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Who the token acts as.
    pub identity: Identity,
    /// The organizations it acts in (sees their institutional listings).
    pub orgs: Vec<String>,
    /// What it may do.
    pub scope: Scope,
    /// When it stops working (`None`: never); must be in the future.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its id, `t` and 10 hex digits (not secret: the secret starts `cws_<id>_`).
    pub id: String,
    /// Who it acts as.
    pub identity: Identity,
    /// The organizations it acts in.
    pub orgs: Vec<String>,
    /// What it may do.
    pub scope: Scope,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked (`None`: not revoked).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenInfo {
    /// The registry actor this token acts as: its identity and organizations, an admin of the
    /// registry when its scope is [`Scope::Admin`].
    pub fn actor(&self) -> Actor {
        Actor {
            identity: self.identity.clone(),
            admin: self.scope == Scope::Admin,
            orgs: self.orgs.clone(),
        }
    }

    /// Whether it can be used at `now`: not revoked, and not expired (it works until just
    /// before `expires_at`).
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// A token just made: its secret is shown once and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token as stored.
    pub info: TokenInfo,
    /// The secret a client presents: `cws_<id>_<64 hex digits>`.
    pub secret: String,
}

/// Leaves the secret out, so a debug print or log line does not leak it.
impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("info", &self.info)
            .field("secret", &crate::audit::REDACTED)
            .finish()
    }
}

/// The API tokens of a registry (`cws serve`), stored hashed in its database.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Makes a token; stores only a SHA-256 hash of its secret. The identity, each
    /// organization (1 to 128 bytes, no control characters) and the expiry (in the future)
    /// are checked: [`RegistryError::Invalid`] names the field.
    async fn create_token(&self, t: &NewToken) -> RegistryResult<IssuedToken>;

    /// Every token, newest first (revoked and expired ones included).
    async fn list_tokens(&self) -> RegistryResult<Vec<TokenInfo>>;

    /// Revokes a token by id (revoking again keeps the first time). Unknown id →
    /// `RegistryError::invalid("token", id, "the id of a token from the token list")`.
    async fn revoke_token(&self, id: &str) -> RegistryResult<TokenInfo>;

    /// The token a secret belongs to, if it is known, not revoked and not expired at `now`;
    /// `None` otherwise (never an error for an unknown or malformed secret).
    async fn authenticate(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> RegistryResult<Option<TokenInfo>>;
}

#[async_trait]
impl<T: TokenStore + ?Sized> TokenStore for Box<T> {
    async fn create_token(&self, t: &NewToken) -> RegistryResult<IssuedToken> {
        (**self).create_token(t).await
    }
    async fn list_tokens(&self) -> RegistryResult<Vec<TokenInfo>> {
        (**self).list_tokens().await
    }
    async fn revoke_token(&self, id: &str) -> RegistryResult<TokenInfo> {
        (**self).revoke_token(id).await
    }
    async fn authenticate(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> RegistryResult<Option<TokenInfo>> {
        (**self).authenticate(secret, now).await
    }
}

#[async_trait]
impl<T: TokenStore + ?Sized> TokenStore for Arc<T> {
    async fn create_token(&self, t: &NewToken) -> RegistryResult<IssuedToken> {
        (**self).create_token(t).await
    }
    async fn list_tokens(&self) -> RegistryResult<Vec<TokenInfo>> {
        (**self).list_tokens().await
    }
    async fn revoke_token(&self, id: &str) -> RegistryResult<TokenInfo> {
        (**self).revoke_token(id).await
    }
    async fn authenticate(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> RegistryResult<Option<TokenInfo>> {
        (**self).authenticate(secret, now).await
    }
}

// ---------------------------------------------------------------------------------------------
// What the stores share
// ---------------------------------------------------------------------------------------------

/// The prefix of every secret.
const SECRET_PREFIX: &str = "cws_";
/// Random bytes in a token id (after its `t`).
const ID_BYTES: usize = 5;
/// Random bytes in a secret's key part.
const KEY_BYTES: usize = 32;
/// How many times a store draws a new id when the one drawn is taken.
pub(crate) const CREATE_ATTEMPTS: usize = 4;

/// A new token's id and secret, from the operating system's CSPRNG.
pub(crate) fn generate(store: &str) -> RegistryResult<(String, String)> {
    let mut bytes = [0u8; ID_BYTES + KEY_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| RegistryError::Store {
        store: store.to_string(),
        message: format!("drawing a token secret from the operating system's generator: {e}"),
    })?;
    let id = format!("t{}", hex(&bytes[..ID_BYTES]));
    let secret = format!("{SECRET_PREFIX}{id}_{}", hex(&bytes[ID_BYTES..]));
    Ok((id, secret))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `id` has the form of a token id: `t` and 10 lowercase hex digits.
fn is_token_id(id: &str) -> bool {
    id.len() == 1 + 2 * ID_BYTES && id.starts_with('t') && is_lower_hex(&id[1..])
}

/// The hex SHA-256 a store keeps of a secret, or `None` when `secret` does not have the form
/// of one (`cws_`, an id, `_`, 64 lowercase hex digits), with the id it names.
pub(crate) fn secret_lookup(secret: &str) -> Option<(&str, String)> {
    let rest = secret.strip_prefix(SECRET_PREFIX)?;
    let (id, key) = rest.split_once('_')?;
    if !is_token_id(id) || key.len() != 2 * KEY_BYTES || !is_lower_hex(key) {
        return None;
    }
    Some((id, secret_hash(secret)))
}

/// The hex SHA-256 of a secret: what a store keeps in its place.
pub(crate) fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// A time as the stores keep it: RFC 3339 UTC text with microseconds.
pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A new token checked, with its times at the precision the stores keep (microseconds):
/// identity, organizations (duplicates dropped, order kept), expiry after `now`.
pub(crate) fn check_new_token(t: &NewToken, now: DateTime<Utc>) -> RegistryResult<TokenInfo> {
    let identity = Identity::new(
        t.identity.name.clone(),
        t.identity.email.clone(),
        Some(t.identity.handle.clone()),
    )?;
    let mut orgs: Vec<String> = Vec::with_capacity(t.orgs.len());
    for org in &t.orgs {
        if !is_org_name(org) {
            return Err(RegistryError::invalid(
                "org",
                org,
                "an organization name of 1 to 128 bytes without control characters",
            ));
        }
        if !orgs.contains(org) {
            orgs.push(org.clone());
        }
    }
    let created_at = now.trunc_subsecs(6);
    let expires_at = t.expires_at.map(|at| at.trunc_subsecs(6));
    if let Some(at) = expires_at
        && at <= created_at
    {
        return Err(RegistryError::invalid(
            "expires_at",
            &time_text(at),
            &format!("a time after now ({}), or no expiry", time_text(created_at)),
        ));
    }
    Ok(TokenInfo {
        id: String::new(),
        identity,
        orgs,
        scope: t.scope,
        created_at,
        expires_at,
        revoked_at: None,
    })
}

/// The error for a revocation of an unknown token. A full secret given where an id was
/// expected is not echoed: only its id part is.
pub(crate) fn unknown_token(id: &str) -> RegistryError {
    let shown = match id
        .strip_prefix(SECRET_PREFIX)
        .and_then(|rest| rest.split_once('_'))
    {
        Some((token_id, _)) => format!("{SECRET_PREFIX}{token_id}_…"),
        None => id.to_string(),
    };
    RegistryError::invalid("token", &shown, "the id of a token from the token list")
}

/// A scope read back from a store.
pub(crate) fn stored_scope(store: &str, id: &str, scope: &str) -> RegistryResult<Scope> {
    scope.parse().map_err(|_| RegistryError::Store {
        store: store.to_string(),
        message: format!("token {id} has scope `{scope}`, which this build does not know"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_documented_form_and_are_found_by_hash() {
        let (id, secret) = generate("test").expect("random bytes");
        assert!(is_token_id(&id), "{id}");
        assert_eq!(secret.len(), 4 + 11 + 1 + 64);
        assert!(secret.starts_with(&format!("cws_{id}_")));
        let (found, hash) = secret_lookup(&secret).expect("a well-formed secret");
        assert_eq!(found, id);
        assert_eq!(hash, secret_hash(&secret));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&secret[16..]));
        let (other, _) = generate("test").expect("random bytes");
        assert_ne!(other, id);
    }

    #[test]
    fn malformed_secrets_are_not_looked_up() {
        let key = "0".repeat(64);
        for bad in [
            String::new(),
            "cws_".into(),
            format!("cws_t0123456789_{}", &key[1..]),
            format!("cws_t0123456789_{key}0"),
            format!("cws_t0123456789_{}", key.replace('0', "A")),
            format!("cws_T0123456789_{key}"),
            format!("cws_t012345678_{key}"),
            format!("xws_t0123456789_{key}"),
            format!(" cws_t0123456789_{key}"),
        ] {
            assert!(secret_lookup(&bad).is_none(), "{bad:?}");
        }
        assert!(secret_lookup(&format!("cws_t0123456789_{key}")).is_some());
    }

    #[test]
    fn an_issued_token_debug_print_leaves_the_secret_out() {
        let identity = Identity::new("Alice Smith", "alice@example.edu", None).expect("identity");
        let issued = IssuedToken {
            info: TokenInfo {
                id: "t0123456789".into(),
                identity,
                orgs: vec![],
                scope: Scope::Read,
                created_at: Utc::now(),
                expires_at: None,
                revoked_at: None,
            },
            secret: format!("cws_t0123456789_{}", "ab".repeat(32)),
        };
        let shown = format!("{issued:?}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(shown.contains("t0123456789"), "{shown}");
    }

    #[test]
    fn an_unknown_token_error_does_not_echo_a_secret() {
        let secret = format!("cws_t0123456789_{}", "ab".repeat(32));
        let shown = unknown_token(&secret).to_string();
        assert!(!shown.contains("abab"), "{shown}");
        assert!(shown.contains("cws_t0123456789_"), "{shown}");
        assert!(
            unknown_token("t0123456789")
                .to_string()
                .contains("`t0123456789`")
        );
    }
}
