//! A [`Registry`] that is a client of a registry server (`cws serve`): every call is one
//! request to the server's REST API under `/api/v1`, and the answer is the server's store's,
//! errors included (the server sends a [`RegistryError`] serialized; [`HttpRegistry`] rebuilds
//! it).
//!
//! Who calls is said per call by a bearer token from [`Credentials`]: the server acts as the
//! token's identity (and scope), whatever [`Actor`] the caller passes. [`StaticToken`] sends one
//! token (or none) for every call, which is what a CLI with one configured token does.
//!
//! Transport: HTTP/1.1 over plain TCP (`http://`) or TLS (`https://`: rustls on aws-lc-rs,
//! checking the server against the system's root certificates). Every request has a
//! [`DEFAULT_TIMEOUT`], and an answer larger than [`MAX_RESPONSE_BYTES`] is refused. A
//! request that cannot be made, or an answer that is not one the API gives, is
//! [`RegistryError::Store`] naming the registry's URL; a server refusing the token is
//! [`RegistryError::Unauthorized`].
//!
//! The wire contract (paths, bodies, answers) is the server's; each method of the
//! [`Registry`] impl names its request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::NaiveDate;
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER,
    USER_AGENT,
};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::*;
use crate::trust::SignedDocument;
use crate::{Registry, RegistryError, RegistryResult};

/// How long one request may take, answer included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read: 32 MiB.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// The API's path under the registry's base URL.
pub const API_PREFIX: &str = "/api/v1";

/// How long to wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most characters of an unstructured error answer kept in a message.
const MAX_MESSAGE_CHARS: usize = 500;

/// Characters left as they are in a path segment or query value: RFC 3986 unreserved.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Who the client is, per call: the bearer token to send for an actor (None = anonymous viewer).
#[async_trait]
pub trait Credentials: Send + Sync {
    /// The token for calls made as `actor` (or as an anonymous viewer, or for `refusals()` when
    /// None).
    async fn token(&self, actor: Option<&Actor>) -> RegistryResult<Option<String>>;
    /// The token for a download recorded `by` a handle (`Download::by`); None = the default.
    async fn token_for_handle(&self, handle: Option<&str>) -> RegistryResult<Option<String>>;
    /// The token `refusals()` reads with: the server lists the refusals of the listings that
    /// token may see (an admin's sees them all). The anonymous viewer's by default.
    async fn refusals_token(&self) -> RegistryResult<Option<String>> {
        self.token(None).await
    }
}

/// One token for every call (what the CLI uses: the server acts as the token's identity,
/// whatever actor is passed). `StaticToken(None)` calls anonymously.
#[derive(Clone, Default)]
pub struct StaticToken(pub Option<String>);

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token itself.
        match &self.0 {
            Some(_) => f.write_str("StaticToken(Some(<redacted>))"),
            None => f.write_str("StaticToken(None)"),
        }
    }
}

#[async_trait]
impl Credentials for StaticToken {
    async fn token(&self, _actor: Option<&Actor>) -> RegistryResult<Option<String>> {
        Ok(self.0.clone())
    }

    async fn token_for_handle(&self, _handle: Option<&str>) -> RegistryResult<Option<String>> {
        Ok(self.0.clone())
    }
}

type Connector = HttpsConnector<HttpConnector>;

/// A registry served by `cws serve`, reached over HTTP(S).
pub struct HttpRegistry {
    /// The base URL as given, normalized: no trailing `/`, no `/api/v1`.
    base: String,
    /// `base` + `/api/v1`.
    api: String,
    client: Client<Connector, Full<Bytes>>,
    credentials: Arc<dyn Credentials>,
    timeout: Duration,
    /// Said with TLS failures when the system's root certificates could not all be read.
    roots_note: Option<String>,
}

impl fmt::Debug for HttpRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRegistry")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpRegistry {
    /// A client of the registry at `base`, like `http://127.0.0.1:8947` or
    /// `https://registry.example.edu` (a trailing `/`, or a trailing `/api/v1`, is accepted; a
    /// path prefix is kept, for a server behind a proxy). Nothing is sent until a call.
    ///
    /// `https://` checks the server against the system's root certificates, read here.
    pub fn new(base: &str, credentials: Arc<dyn Credentials>) -> RegistryResult<HttpRegistry> {
        let base = normalize_base(base)?;
        let https = base.starts_with("https://");
        let (roots, roots_note) = if https {
            native_roots()
        } else {
            (rustls::RootCertStore::empty(), None)
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RegistryError::Store {
                store: base.clone(),
                message: format!("setting up TLS: {e}"),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        tcp.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(HttpRegistry {
            api: format!("{base}{API_PREFIX}"),
            base,
            client,
            credentials,
            timeout: DEFAULT_TIMEOUT,
            roots_note,
        })
    }

    /// The same client with another time limit per request (the default is
    /// [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> HttpRegistry {
        self.timeout = timeout;
        self
    }

    /// The registry's base URL (normalized: no trailing `/`, no `/api/v1`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn store_error(&self, message: impl Into<String>) -> RegistryError {
        RegistryError::Store {
            store: self.base.clone(),
            message: message.into(),
        }
    }

    /// Sends one request and gives the body of a 2xx answer; any other answer is the error it
    /// carries.
    async fn send(&self, mut call: Call<'_>) -> RegistryResult<Bytes> {
        let url = format!("{}{}", self.api, call.path);
        let uri: Uri = url
            .parse()
            .map_err(|e| self.store_error(format!("cannot make a request URL from {url}: {e}")))?;
        let mut req = Request::builder()
            .method(call.method.clone())
            .uri(uri)
            .header(USER_AGENT, concat!("cws/", env!("CARGO_PKG_VERSION")))
            .header(ACCEPT, "application/json");
        if let Some(token) = &call.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                RegistryError::invalid(
                    "registry token",
                    "(the token)",
                    "a token of visible ASCII characters",
                )
            })?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let body = match call.body.take() {
            Some(json) => {
                req = req.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(json))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| self.store_error(format!("cannot make the request {url}: {e}")))?;

        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| self.transport_error(&e))?;
            let (parts, body) = resp.into_parts();
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
                return Err(self.too_large(&call));
            }
            let bytes = match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                    return Err(self.too_large(&call));
                }
                Err(e) => {
                    return Err(self.store_error(format!(
                        "reading the answer to {} {}: {}",
                        call.method,
                        call.path,
                        error_chain(e.as_ref())
                    )));
                }
            };
            Ok((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                self.store_error(format!(
                    "the registry did not answer {} {} within {} s",
                    call.method,
                    call.path,
                    self.timeout.as_secs_f64()
                ))
            })??;
        if parts.status.is_success() {
            Ok(bytes)
        } else {
            Err(self.answer_error(&call, parts.status, &parts.headers, &bytes))
        }
    }

    /// A 2xx answer's JSON body as `T`.
    async fn json<T: DeserializeOwned>(&self, call: Call<'_>) -> RegistryResult<T> {
        let what = format!("{} {}", call.method, call.path);
        let bytes = self.send(call).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            self.store_error(format!(
                "the answer to {what} is not the JSON the registry API gives: {e}"
            ))
        })
    }

    /// A 2xx answer whose body (if any) says nothing more.
    async fn unit(&self, call: Call<'_>) -> RegistryResult<()> {
        self.send(call).await.map(|_| ())
    }

    fn too_large(&self, call: &Call<'_>) -> RegistryError {
        self.store_error(format!(
            "the answer to {} {} is larger than {} MiB, the most cws reads",
            call.method,
            call.path,
            MAX_RESPONSE_BYTES / (1024 * 1024)
        ))
    }

    fn transport_error(&self, e: &hyper_util::client::legacy::Error) -> RegistryError {
        // The client's own text ("client error (Connect)") says less than its causes.
        let chain = match std::error::Error::source(e) {
            Some(cause) => error_chain(cause),
            None => error_chain(e),
        };
        let tls = chain.contains("certificate") || chain.contains("tls") || chain.contains("TLS");
        let mut message = if e.is_connect() {
            format!("cannot reach the registry at {}: {chain}", self.base)
        } else {
            format!(
                "the request to the registry at {} failed: {chain}",
                self.base
            )
        };
        if tls && let Some(note) = &self.roots_note {
            message.push_str(&format!(" ({note})"));
        }
        self.store_error(message)
    }

    /// The error a non-2xx answer says: the registry error the server sent, or one made from
    /// the status.
    fn answer_error(
        &self,
        call: &Call<'_>,
        status: StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> RegistryError {
        let detail = serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .map(|b| b.error);
        if let Some(err) = detail
            .as_ref()
            .and_then(|d| d.registry_error.clone())
            .and_then(|v| serde_json::from_value::<RegistryError>(v).ok())
        {
            return err;
        }
        let message = match &detail {
            Some(d) if !d.message.is_empty() => clip(&d.message),
            Some(d) if !d.code.is_empty() => d.code.clone(),
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() || text.starts_with('<') {
                    // Nothing said, or an HTML error page (a proxy's): the status says it.
                    status.canonical_reason().unwrap_or("").to_string()
                } else {
                    clip(text)
                }
            }
        };
        let what = format!("{} {}", call.method, call.path);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
                registry: self.base.clone(),
                message: if message.is_empty() {
                    format!("HTTP {}", status.as_u16())
                } else {
                    message
                },
            },
            StatusCode::NOT_FOUND => match call.listing {
                Some(id) => RegistryError::UnknownListing {
                    id: id.to_string(),
                    suggestions: Vec::new(),
                },
                None => self.store_error(format!(
                    "the registry has no {what} (HTTP 404: {message}); is {} a cws registry \
                     server?",
                    self.base
                )),
            },
            StatusCode::TOO_MANY_REQUESTS => {
                let after = headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after_secs);
                self.store_error(match after {
                    Some(s) => format!("rate limited by the registry; retry after {s} s"),
                    None => "rate limited by the registry; retry later".to_string(),
                })
            }
            s if s.is_redirection() => {
                let to = headers
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(clip)
                    .unwrap_or_default();
                self.store_error(format!(
                    "the registry answered {what} with HTTP {} (a redirect{}); set the registry \
                     URL to where it moved",
                    s.as_u16(),
                    if to.is_empty() {
                        String::new()
                    } else {
                        format!(" to {to}")
                    }
                ))
            }
            s => self.store_error(format!("{what}: HTTP {}: {message}", s.as_u16())),
        }
    }

    async fn token(&self, actor: Option<&Actor>) -> RegistryResult<Option<String>> {
        self.credentials.token(actor).await
    }

    /// `GET /api/v1/whoami`: the token's holder, as the server sees it (who publishes, rates
    /// and reports through this client).
    pub async fn whoami(&self) -> RegistryResult<crate::tokens::TokenInfo> {
        let token = self.token(None).await?;
        self.json(Call::new(Method::GET, "/whoami".into(), token))
            .await
    }
}

/// One request: method, path under `/api/v1`, JSON body, token, and the listing it is about
/// (a bare 404 then means that listing is unknown).
struct Call<'a> {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    token: Option<String>,
    listing: Option<&'a ListingId>,
}

impl<'a> Call<'a> {
    fn new(method: Method, path: String, token: Option<String>) -> Call<'a> {
        Call {
            method,
            path,
            body: None,
            token,
            listing: None,
        }
    }

    fn about(mut self, id: &'a ListingId) -> Call<'a> {
        self.listing = Some(id);
        self
    }

    fn json<T: Serialize + ?Sized>(mut self, body: &T) -> RegistryResult<Call<'a>> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            RegistryError::invalid("request", &self.path, &format!("a body JSON can hold: {e}"))
        })?;
        self.body = Some(bytes);
        Ok(self)
    }
}

/// The error body of a non-2xx answer.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    /// Kept as a value: a kind this client does not know falls back to the status.
    #[serde(default)]
    registry_error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct BrowsePage {
    listings: Vec<ListingSummary>,
    #[serde(default)]
    next_offset: Option<u64>,
}

#[derive(Deserialize)]
struct ImagesAnswer {
    listings: Vec<ImageListing>,
}

#[derive(Deserialize)]
struct ReviewsAnswer {
    reviews: Vec<Review>,
    #[serde(default)]
    next_offset: Option<usize>,
}

#[derive(Deserialize)]
struct RefusalsAnswer {
    refusals: Vec<Refusal>,
}

#[derive(Serialize)]
struct ChannelBody {
    version: String,
}

#[derive(Serialize)]
struct RateBody<'a> {
    stars: u8,
    review: Option<&'a str>,
}

#[derive(Serialize)]
struct DownloadBody {
    day: NaiveDate,
}

#[derive(Serialize)]
struct ReportBody<'a> {
    version: String,
    reason: ReportReason,
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct RevokeBody<'a> {
    reason: &'a str,
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// `/listings/{publisher}/{slug}`.
fn listing_path(id: &ListingId) -> String {
    format!("/listings/{}/{}", seg(&id.publisher), seg(&id.slug))
}

/// `/listings/{publisher}/{slug}/versions/{version}`.
fn version_path(id: &ListingId, v: &semver::Version) -> String {
    format!("{}/versions/{}", listing_path(id), seg(&v.to_string()))
}

/// The query string of a browse page (without `?`; empty when nothing is set).
fn browse_query(q: &BrowseQuery, limit: Option<usize>, offset: Option<u64>) -> String {
    let sort = match q.sort {
        Sort::Score => "score",
        Sort::Rating => "rating",
        Sort::Downloads => "downloads",
        Sort::Recent => "recent",
    };
    let mut parts = Vec::new();
    if let Some(c) = &q.category {
        parts.push(format!("category={}", seg(c)));
    }
    if let Some(t) = &q.text {
        parts.push(format!("q={}", seg(t)));
    }
    if let Some(c) = &q.community {
        parts.push(format!("community={}", seg(c)));
    }
    parts.push(format!("sort={sort}"));
    if let Some(n) = limit {
        parts.push(format!("limit={n}"));
    }
    if let Some(o) = offset {
        parts.push(format!("offset={o}"));
    }
    parts.join("&")
}

/// `base` normalized: http(s), a host, no credentials, query or fragment; no trailing `/` or
/// `/api/v1`.
fn normalize_base(base: &str) -> RegistryResult<String> {
    let bad = || RegistryError::invalid("registry URL", base, "an http:// or https:// URL");
    let text = base.trim();
    if text.contains('#') || text.contains('?') || text.chars().any(|c| c.is_whitespace()) {
        return Err(bad());
    }
    let uri: Uri = text.parse().map_err(|_| bad())?;
    let scheme = uri.scheme_str().ok_or_else(bad)?.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let authority = uri.authority().ok_or_else(bad)?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        // user:password@host would travel in every message that names the registry.
        return Err(bad());
    }
    let mut path = uri.path().trim_end_matches('/');
    if let Some(p) = path.strip_suffix(API_PREFIX) {
        path = p.trim_end_matches('/');
    }
    Ok(format!(
        "{scheme}://{}{path}",
        authority.as_str().to_ascii_lowercase()
    ))
}

/// The system's root certificates, and a note when there are none or some could not be read.
fn native_roots() -> (rustls::RootCertStore, Option<String>) {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    let note = if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        Some(format!(
            "no trusted root certificates were found on this system{why}"
        ))
    } else {
        None
    };
    (roots, note)
}

/// Seconds from a `Retry-After` value: a number of seconds, or an HTTP date.
fn retry_after_secs(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Ok(n) = v.parse::<u64>() {
        return Some(n);
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    Some(secs.max(0) as u64)
}

/// An error and its sources, `: `-joined, each said once.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// A server's text, cut to [`MAX_MESSAGE_CHARS`].
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_MESSAGE_CHARS).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[async_trait]
impl Registry for HttpRegistry {
    /// The base URL.
    fn location(&self) -> String {
        self.base.clone()
    }

    /// `POST /api/v1/listings` with the [`Publish`]; answers [`Published`].
    async fn publish(&self, actor: &Actor, p: &Publish) -> RegistryResult<Published> {
        let token = self.token(Some(actor)).await?;
        self.json(Call::new(Method::POST, "/listings".into(), token).json(p)?)
            .await
    }

    /// `GET /api/v1/listings/{publisher}/{slug}`; answers [`ListingDetail`].
    async fn listing(
        &self,
        viewer: Option<&Actor>,
        id: &ListingId,
    ) -> RegistryResult<ListingDetail> {
        let token = self.token(viewer).await?;
        self.json(Call::new(Method::GET, listing_path(id), token).about(id))
            .await
    }

    /// `GET /api/v1/listings?category=&q=&community=&sort=&limit=&offset=`, page after page
    /// (`next_offset`) until the query's limit, or the end when it is 0.
    async fn browse(
        &self,
        viewer: Option<&Actor>,
        query: &BrowseQuery,
    ) -> RegistryResult<Vec<ListingSummary>> {
        let token = self.token(viewer).await?;
        let mut out: Vec<ListingSummary> = Vec::new();
        let mut offset: Option<u64> = None;
        loop {
            let limit = (query.limit > 0).then(|| query.limit - out.len());
            let qs = browse_query(query, limit, offset);
            let page: BrowsePage = self
                .json(Call::new(
                    Method::GET,
                    format!("/listings?{qs}"),
                    token.clone(),
                ))
                .await?;
            let got = page.listings.len();
            out.extend(page.listings);
            if query.limit > 0 && out.len() >= query.limit {
                out.truncate(query.limit);
                break;
            }
            match page.next_offset {
                None => break,
                Some(next) => {
                    // Each page moves on and holds something, or paging would never end.
                    if got == 0 || offset.is_some_and(|o| next <= o) || next == 0 {
                        return Err(self.store_error(format!(
                            "browse paging does not move on: next_offset {next} after {got} \
                             listings at offset {}",
                            offset.unwrap_or(0)
                        )));
                    }
                    offset = Some(next);
                }
            }
        }
        Ok(out)
    }

    /// `GET /api/v1/images/{ami_id}/listings`; answers `{"listings": [...]}`.
    async fn find_image(
        &self,
        viewer: Option<&Actor>,
        ami_id: &str,
    ) -> RegistryResult<Vec<ImageListing>> {
        let token = self.token(viewer).await?;
        let answer: ImagesAnswer = self
            .json(Call::new(
                Method::GET,
                format!("/images/{}/listings", seg(ami_id)),
                token,
            ))
            .await?;
        Ok(answer.listings)
    }

    /// `PUT /api/v1/listings/{p}/{s}/channels/{channel}` with `{"version": ...}`.
    async fn set_channel(
        &self,
        actor: &Actor,
        id: &ListingId,
        channel: &str,
        version: &semver::Version,
    ) -> RegistryResult<()> {
        let token = self.token(Some(actor)).await?;
        let path = format!("{}/channels/{}", listing_path(id), seg(channel));
        let body = ChannelBody {
            version: version.to_string(),
        };
        self.unit(Call::new(Method::PUT, path, token).about(id).json(&body)?)
            .await
    }

    /// `PUT /api/v1/listings/{p}/{s}/rating` with `{"stars": n, "review": ...}`; answers
    /// [`RatingSummary`].
    async fn rate(
        &self,
        actor: &Actor,
        id: &ListingId,
        stars: u8,
        review: Option<&str>,
    ) -> RegistryResult<RatingSummary> {
        let token = self.token(Some(actor)).await?;
        let path = format!("{}/rating", listing_path(id));
        let body = RateBody { stars, review };
        self.json(Call::new(Method::PUT, path, token).about(id).json(&body)?)
            .await
    }

    /// `GET /api/v1/listings/{p}/{s}/reviews`; answers `{"reviews": [...]}`.
    async fn reviews(&self, viewer: Option<&Actor>, id: &ListingId) -> RegistryResult<Vec<Review>> {
        let token = self.token(viewer).await?;
        // The server answers in pages: follow them to the end.
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let path = if offset == 0 {
                format!("{}/reviews", listing_path(id))
            } else {
                format!("{}/reviews?offset={offset}", listing_path(id))
            };
            let answer: ReviewsAnswer = self
                .json(Call::new(Method::GET, path, token.clone()).about(id))
                .await?;
            let got = answer.reviews.len();
            out.extend(answer.reviews);
            match answer.next_offset {
                Some(next) if next > offset && got > 0 => offset = next,
                _ => break,
            }
        }
        Ok(out)
    }

    /// `POST /api/v1/listings/{p}/{s}/versions/{v}/downloads` with `{"day": "YYYY-MM-DD"}`,
    /// with the token for `d.by`.
    async fn record_download(&self, d: &Download) -> RegistryResult<()> {
        let token = self.credentials.token_for_handle(d.by.as_deref()).await?;
        let path = format!("{}/downloads", version_path(&d.listing, &d.version));
        let body = DownloadBody { day: d.day };
        self.unit(
            Call::new(Method::POST, path, token)
                .about(&d.listing)
                .json(&body)?,
        )
        .await
    }

    /// `POST /api/v1/listings/{p}/{s}/reports` with `{"version", "reason", "message"}`;
    /// answers [`ReportOutcome`].
    async fn report(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        reason: ReportReason,
        message: Option<&str>,
    ) -> RegistryResult<ReportOutcome> {
        let token = self.token(Some(actor)).await?;
        let path = format!("{}/reports", listing_path(id));
        let body = ReportBody {
            version: version.to_string(),
            reason,
            message,
        };
        self.json(Call::new(Method::POST, path, token).about(id).json(&body)?)
            .await
    }

    /// `DELETE /api/v1/listings/{p}/{s}/versions/{v}/reports`.
    async fn clear_reports(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
    ) -> RegistryResult<()> {
        let token = self.token(Some(actor)).await?;
        let path = format!("{}/reports", version_path(id, version));
        self.unit(Call::new(Method::DELETE, path, token).about(id))
            .await
    }

    /// `PUT /api/v1/listings/{p}/{s}/versions/{v}/signature` with the [`SignedDocument`].
    async fn sign_version(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        signed: &SignedDocument,
    ) -> RegistryResult<()> {
        let token = self.token(Some(actor)).await?;
        let path = format!("{}/signature", version_path(id, version));
        self.unit(Call::new(Method::PUT, path, token).about(id).json(signed)?)
            .await
    }

    /// `POST /api/v1/imports` with the [`ListingExport`]; answers [`Imported`].
    async fn import(&self, actor: &Actor, export: &ListingExport) -> RegistryResult<Imported> {
        let token = self.token(Some(actor)).await?;
        self.json(Call::new(Method::POST, "/imports".into(), token).json(export)?)
            .await
    }

    /// `GET /api/v1/refusals` (with [`Credentials::refusals_token`]); answers
    /// `{"refusals": [...]}`.
    async fn refusals(&self) -> RegistryResult<Vec<Refusal>> {
        let token = self.credentials.refusals_token().await?;
        let answer: RefusalsAnswer = self
            .json(Call::new(Method::GET, "/refusals".into(), token))
            .await?;
        Ok(answer.refusals)
    }

    /// `POST /api/v1/listings/{p}/{s}/versions/{v}/revoke` with `{"reason": ...}`; answers
    /// [`Revocation`].
    async fn revoke(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        reason: &str,
    ) -> RegistryResult<Revocation> {
        let token = self.token(Some(actor)).await?;
        let path = format!("{}/revoke", version_path(id, version));
        let body = RevokeBody { reason };
        self.json(Call::new(Method::POST, path, token).about(id).json(&body)?)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalized() {
        for (given, want) in [
            ("http://127.0.0.1:8947", "http://127.0.0.1:8947"),
            ("http://127.0.0.1:8947/", "http://127.0.0.1:8947"),
            (
                "https://Registry.Example.edu/api/v1",
                "https://registry.example.edu",
            ),
            (
                "https://registry.example.edu/api/v1/",
                "https://registry.example.edu",
            ),
            ("https://example.edu/cws/", "https://example.edu/cws"),
            ("https://example.edu/cws/api/v1", "https://example.edu/cws"),
            ("HTTP://[::1]:80", "http://[::1]:80"),
        ] {
            assert_eq!(normalize_base(given).unwrap(), want, "{given}");
        }
    }

    #[test]
    fn bad_base_urls_are_invalid() {
        for bad in [
            "",
            "registry.example.edu",
            "ftp://example.edu",
            "http://",
            "https://user:pw@example.edu",
            "https://example.edu/?x=1",
            "https://example.edu/#top",
            "http://exa mple.edu",
            "/api/v1",
        ] {
            let e = normalize_base(bad).unwrap_err();
            assert!(
                matches!(&e, RegistryError::Invalid { field, expected, .. }
                    if field == "registry URL" && expected == "an http:// or https:// URL"),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn segments_and_query_values_are_encoded() {
        assert_eq!(seg("a b/c?d#e%f+g"), "a%20b%2Fc%3Fd%23e%25f%2Bg");
        assert_eq!(seg("ami-0123_x.y~z"), "ami-0123_x.y~z");
        let q = BrowseQuery {
            category: Some("machine-learning".into()),
            text: Some("deep & wide".into()),
            community: None,
            sort: Sort::Downloads,
            limit: 5,
        };
        assert_eq!(
            browse_query(&q, Some(5), Some(10)),
            "category=machine-learning&q=deep%20%26%20wide&sort=downloads&limit=5&offset=10"
        );
        assert_eq!(
            browse_query(&BrowseQuery::default(), None, None),
            "sort=score"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after_secs(" 120 "), Some(120));
        assert_eq!(retry_after_secs("soon"), None);
        let later = chrono::Utc::now() + chrono::Duration::seconds(300);
        let secs = retry_after_secs(&later.to_rfc2822()).unwrap();
        assert!((295..=300).contains(&secs), "{secs}");
        assert_eq!(retry_after_secs("Sun, 06 Nov 1994 08:49:37 GMT"), Some(0));
    }

    #[tokio::test]
    async fn static_token_is_the_same_for_everyone_and_never_shown() {
        let t = StaticToken(Some("s3cret".into()));
        assert_eq!(t.token(None).await.unwrap().as_deref(), Some("s3cret"));
        assert_eq!(
            t.token_for_handle(Some("bob")).await.unwrap().as_deref(),
            Some("s3cret")
        );
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(StaticToken(None).token(None).await.unwrap(), None);
    }
}
