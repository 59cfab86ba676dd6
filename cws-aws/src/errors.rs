//! The one place where AWS SDK failures become [`ProviderError`]s.
//!
//! Every SDK call in this module maps its error through [`map_sdk_error`], so a given EC2
//! error code always means the same thing to the tiers and the CLI: `InvalidAMIID.NotFound`
//! is a miss, `UnauthorizedOperation` names the IAM action to grant, `RequestLimitExceeded`
//! (still failing after the SDK's retries) is `Throttled`, and an endpoint that cannot be
//! reached, times out or answers with HTML or a 5xx is `Unavailable` naming that endpoint.

use std::error::Error as StdError;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::dns::ResolveDnsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use cws_provider::ProviderError;

/// What the failed call was, so the error can name it.
#[derive(Debug, Clone)]
pub(super) struct CallContext {
    /// The IAM action behind the call, e.g. `ec2:CopyImage`.
    pub action: &'static str,
    /// The region the call was about.
    pub region: String,
    /// The endpoint the call went to (a URL, or the AWS default for the region).
    pub endpoint: String,
    /// Whether `endpoint` was configured (`--endpoint-url`) rather than AWS's own, which
    /// changes what the user should check when it cannot be reached.
    pub custom_endpoint: bool,
    /// What a `NotFound` is about, e.g. "image ami-0123…".
    pub what: Option<String>,
}

/// Why a connection could not even be opened. These fail the same way on every attempt
/// (nothing listens on the port, the host name does not exist, there is no route), so
/// retrying them only makes the user wait: the retry classifier forbids retries for them
/// and the error says what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnectFailure {
    /// The host answered, but nothing listens on the port.
    Refused,
    /// The host name could not be resolved.
    Dns,
    /// No route to the host or its network (typically: offline).
    Unreachable,
}

impl ConnectFailure {
    fn describe(self) -> &'static str {
        match self {
            ConnectFailure::Refused => "connection refused",
            ConnectFailure::Dns => "DNS lookup failed",
            ConnectFailure::Unreachable => "network unreachable",
        }
    }
}

/// Iterates over an error and its sources.
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

/// Whether an error (anywhere in its source chain) is a connection that could not be
/// opened. Works on the error types the SDK's default HTTP client produces (`std::io::Error`
/// kinds for refused/unreachable, hyper-util's `dns error` and the SDK's
/// [`ResolveDnsError`] for DNS) without depending on the HTTP client crates.
pub(super) fn connect_failure(err: &(dyn StdError + 'static)) -> Option<ConnectFailure> {
    for e in chain(err) {
        if e.is::<ResolveDnsError>() {
            return Some(ConnectFailure::Dns);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Some(ConnectFailure::Refused),
                std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable => {
                    return Some(ConnectFailure::Unreachable);
                }
                _ => {}
            }
        }
        let text = e.to_string();
        // hyper-util's resolver error, and std's getaddrinfo failure inside it.
        if text == "dns error" || text.starts_with("failed to lookup address information") {
            return Some(ConnectFailure::Dns);
        }
    }
    None
}

/// The innermost error's message (the actual cause: "Connection refused", "HTTP connect
/// timeout occurred after 5s", …) with the `(os error N)` suffix removed. Only `Display`
/// text is used: the SDK's `Debug` output is a wall of nested structs, unreadable on a
/// terminal.
pub(super) fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let last = chain(err).last().unwrap_or(err).to_string();
    let text = match last.find(" (os error ") {
        Some(i) if last.ends_with(')') => last[..i].to_string(),
        _ => last,
    };
    text.trim().to_string()
}

/// Every message of the chain, outermost first, joined with `: ` (repeated or nested
/// messages once). The readable counterpart of `DisplayErrorContext`, without its `Debug`
/// dump.
pub(super) fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(err) {
        let text = e.to_string();
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// How a call failed, reduced to what the mapping needs (keeps [`classify`] testable
/// without building SDK error values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The service answered with an error document.
    Service {
        /// The AWS error code, e.g. `InvalidAMIID.NotFound`.
        code: Option<String>,
        /// The service's message.
        message: Option<String>,
        /// The HTTP status.
        status: u16,
    },
    /// The answer could not be read as an AWS response (HTML error page, truncated body).
    Response {
        /// The HTTP status.
        status: u16,
        /// Why it could not be read.
        cause: String,
    },
    /// No answer (or no connection) in time.
    Timeout {
        /// Which limit, e.g. "HTTP connect timeout occurred after 5s".
        cause: String,
    },
    /// No connection could be opened (refused, DNS, unreachable).
    Connect {
        /// What went wrong.
        failure: ConnectFailure,
        /// The underlying message, e.g. "Name or service not known".
        cause: String,
    },
    /// The request never got an answer for another reason (TLS, a dropped connection,
    /// missing credentials).
    Dispatch {
        /// What went wrong.
        cause: String,
    },
    /// The SDK refused to build the request (a bad parameter).
    Construction {
        /// What went wrong.
        cause: String,
    },
    /// Anything the SDK may add later.
    Other {
        /// What went wrong.
        cause: String,
    },
}

/// Maps an SDK error into a [`ProviderError`] naming the action, region and endpoint.
pub(super) fn map_sdk_error<E>(err: SdkError<E, HttpResponse>, call: &CallContext) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let failure = match &err {
        SdkError::ServiceError(se) => Failure::Service {
            code: se.err().code().map(str::to_string),
            message: se
                .err()
                .message()
                .map(str::to_string)
                .or_else(|| se.raw().body().bytes().and_then(body_summary)),
            status: se.raw().status().as_u16(),
        },
        SdkError::ResponseError(re) => Failure::Response {
            status: re.raw().status().as_u16(),
            cause: err.source().map(chain_text).unwrap_or_default(),
        },
        SdkError::TimeoutError(_) => Failure::Timeout {
            cause: root_cause(&err),
        },
        SdkError::DispatchFailure(df) if df.is_timeout() => Failure::Timeout {
            cause: root_cause(&err),
        },
        SdkError::DispatchFailure(_) => {
            let cause = err.source().map(chain_text).unwrap_or_default();
            // Credential providers make their own connections (SSO, IMDS); their failures
            // are about credentials, not about the endpoint.
            match connect_failure(&err) {
                Some(failure) if !mentions_credentials(&cause) => Failure::Connect {
                    failure,
                    cause: root_cause(&err),
                },
                _ => Failure::Dispatch { cause },
            }
        }
        SdkError::ConstructionFailure(_) => Failure::Construction {
            cause: err.source().map(chain_text).unwrap_or_default(),
        },
        _ => Failure::Other {
            cause: chain_text(&err),
        },
    };
    classify(failure, call)
}

/// Error codes meaning the caller lacks a permission (the IAM policy refuses the action).
const DENIED: &[&str] = &[
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedAccess",
];

/// Error codes meaning the credentials themselves were rejected.
const BAD_CREDENTIALS: &[&str] = &[
    "AuthFailure",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
];

/// Error codes the SDK treats as throttling.
const THROTTLED: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "PriorRequestNotComplete",
    "BandwidthLimitExceeded",
    "EC2ThrottledException",
];

/// Error codes meaning the backend is having trouble.
const SERVER_TROUBLE: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceException",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "InsufficientInstanceCapacity",
];

/// Error codes meaning the request was wrong.
const BAD_INPUT: &[&str] = &[
    "InvalidParameterValue",
    "InvalidParameter",
    "InvalidParameterCombination",
    "MissingParameter",
    "UnknownParameter",
    "ValidationError",
    "ValidationException",
    "InvalidRequest",
    "InvalidInstanceType",
    "InvalidBlockDeviceMapping",
    "InvalidFilter",
    "InvalidRegion",
    "InvalidAMIAttributeItemValue",
    "InvalidUserID.Malformed",
    "InvalidAMIName.Malformed",
    "InvalidTagKey.Malformed",
    "InvalidAction",
];

/// The pure mapping behind [`map_sdk_error`].
pub(super) fn classify(failure: Failure, call: &CallContext) -> ProviderError {
    let unavailable = |message: String| ProviderError::Unavailable {
        endpoint: call.endpoint.clone(),
        message,
    };
    let (action, region) = (call.action, call.region.as_str());
    match failure {
        Failure::Service {
            code,
            message,
            status,
        } => classify_service(code.as_deref(), message.as_deref(), status, call),
        Failure::Response { status, cause } => unavailable(format!(
            "answered {action} with HTTP {status} and a body that is not an AWS response ({}); {}",
            short(&cause),
            if call.custom_endpoint {
                "check that the endpoint URL points at EC2 or an EC2 emulator"
            } else {
                "AWS or a proxy in between is having trouble; try again later"
            }
        )),
        Failure::Timeout { cause } => unavailable(format!(
            "no answer in time for {action} in {region} ({}); {}, or raise the operation timeout",
            short(&cause),
            reach_hint(call)
        )),
        Failure::Connect {
            failure: ConnectFailure::Dns,
            cause,
        } => {
            let cause = cause
                .strip_prefix("failed to lookup address information: ")
                .unwrap_or(&cause);
            unavailable(format!(
                "cannot resolve the host name `{}` ({}) for {action} in {region}; {}",
                host_of(&call.endpoint),
                short(cause),
                if call.custom_endpoint {
                    "check the host in the configured endpoint URL, and the network"
                } else {
                    reach_hint(call)
                }
            ))
        }
        Failure::Connect { failure, .. } => unavailable(format!(
            "cannot connect ({}) for {action} in {region}; {}",
            failure.describe(),
            reach_hint(call)
        )),
        Failure::Dispatch { cause } if mentions_credentials(&cause) => ProviderError::generic(
            "aws",
            format!(
                "no usable AWS credentials for {action} ({}); choose a profile (AWS_PROFILE), run `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                short(&cause)
            ),
        ),
        Failure::Dispatch { cause } => unavailable(format!(
            "could not send {action} in {region} ({}); {}",
            short(&cause),
            reach_hint(call)
        )),
        Failure::Construction { cause } => ProviderError::InvalidInput {
            message: format!("{action} request could not be built: {}", short(&cause)),
        },
        Failure::Other { cause } => {
            ProviderError::generic("aws", format!("{action} failed: {}", short(&cause)))
        }
    }
}

/// What to check when an endpoint cannot be reached: a configured endpoint is the usual
/// suspect (a stopped emulator, a typo); AWS's own endpoints point at the network.
fn reach_hint(call: &CallContext) -> &'static str {
    if call.custom_endpoint {
        "check the configured endpoint URL, that the service there is running, and the network"
    } else {
        "check the network connection, DNS and proxy settings (HTTPS_PROXY)"
    }
}

/// The host part of an endpoint URL (for DNS errors).
fn host_of(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map_or(authority, |(h, _)| h.trim_start_matches('['));
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Error causes can be long (a parser quoting a whole HTML page); keep one line's worth.
fn short(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn classify_service(
    code: Option<&str>,
    message: Option<&str>,
    status: u16,
    call: &CallContext,
) -> ProviderError {
    // AWS messages are kept whole: an `UnauthorizedOperation` message names the policy
    // problem before its encoded blob, which `strip_encoded_message` removes.
    let message = message.unwrap_or("no error message").trim().to_string();
    let code_str = code.unwrap_or("");
    let said = if code_str.is_empty() {
        message.clone()
    } else {
        format!("{code_str}: {message}")
    };
    let not_found = |default_what: &str| ProviderError::NotFound {
        what: call
            .what
            .clone()
            .unwrap_or_else(|| default_what.to_string()),
        region: call.region.clone(),
    };
    match code_str {
        c if c.ends_with("ID.Malformed") && c != "InvalidUserID.Malformed" => {
            ProviderError::InvalidInput {
                message: format!(
                    "{said} (ids look like ami-0123456789abcdef0 / i-0123456789abcdef0)"
                ),
            }
        }
        c if c.starts_with("InvalidAMIID.") => not_found("image"),
        c if c.starts_with("InvalidInstanceID.") => not_found("instance"),
        c if c.starts_with("InvalidSnapshot") && c.ends_with("NotFound") => not_found("snapshot"),
        "InvalidSnapshot.InUse" => ProviderError::SnapshotInUse {
            snapshot_id: id_in(&message, "snap-")
                .or_else(|| call.what.as_deref().and_then(|w| id_in(w, "snap-")))
                .unwrap_or_else(|| "(unnamed)".to_string()),
            region: call.region.clone(),
            image_id: id_in(&message, "ami-"),
        },
        c if c.ends_with(".NotFound") || c == "ResourceNotFoundException" => not_found("resource"),
        c if c.ends_with(".Duplicate") => ProviderError::Conflict {
            message: format!("{said}; pick another name or deregister the existing image"),
        },
        c if DENIED.contains(&c) => ProviderError::PermissionDenied {
            action: call.action.to_string(),
            message: strip_encoded_message(&message),
        },
        c if BAD_CREDENTIALS.contains(&c) => ProviderError::PermissionDenied {
            action: call.action.to_string(),
            message: format!(
                "the AWS credentials were rejected ({said}); refresh them (e.g. `aws sso login`), check the system clock, or use another profile"
            ),
        },
        "OptInRequired" => ProviderError::PermissionDenied {
            action: "aws-marketplace:Subscribe".to_string(),
            message: match find_url(&message) {
                Some(url) => format!("subscribe to this product first: {url} ({message})"),
                None => format!(
                    "the account must opt in first ({message}); subscribe to the Marketplace product or enable the region {}",
                    call.region
                ),
            },
        },
        c if THROTTLED.contains(&c) => ProviderError::Throttled {
            message: said.trim_end_matches('.').to_string(),
        },
        c if SERVER_TROUBLE.contains(&c) => ProviderError::Unavailable {
            endpoint: call.endpoint.clone(),
            message: said,
        },
        "UnsupportedOperation" | "Unsupported" | "NotImplemented" => ProviderError::Unsupported {
            provider: "aws".to_string(),
            operation: call.action.to_string(),
            reason: message,
        },
        c if BAD_INPUT.contains(&c) || (c.starts_with("Invalid") && status < 500) => {
            ProviderError::InvalidInput { message: said }
        }
        _ if status == 429 => ProviderError::Throttled { message: said },
        "" if status >= 500 => ProviderError::Unavailable {
            endpoint: call.endpoint.clone(),
            message: format!(
                "answered {} with HTTP {status} and no AWS error code ({message}); {}",
                call.action,
                if call.custom_endpoint {
                    "check that the endpoint URL points at EC2 or an EC2 emulator, or try again later"
                } else {
                    "AWS or a proxy in between is having trouble; try again later"
                }
            ),
        },
        _ if status >= 500 => ProviderError::Unavailable {
            endpoint: call.endpoint.clone(),
            message: format!("HTTP {status} from {}: {said}", call.action),
        },
        _ => ProviderError::generic("aws", format!("{} failed with {said}", call.action)),
    }
}

/// What a body that is not an AWS error document says, in a few words: an HTML page's
/// title (or first heading), else its first line. `None` for an empty body.
fn body_summary(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let looks_html = lower.starts_with("<!doctype html") || lower.contains("<html");
    if looks_html {
        for tag in ["title", "h1"] {
            let open = format!("<{tag}>");
            let close = format!("</{tag}>");
            if let Some(start) = lower.find(&open) {
                let start = start + open.len();
                if let Some(len) = lower[start..].find(&close) {
                    let inner = text[start..start + len].trim();
                    if !inner.is_empty() {
                        return Some(format!("an HTML page: {}", short(inner)));
                    }
                }
            }
        }
        return Some("an HTML page".to_string());
    }
    let first = text.lines().next().unwrap_or(text);
    Some(format!("body: {}", short(first)))
}

/// `UnauthorizedOperation` messages end with a long encoded authorization message that is
/// useless on a terminal (decode it with `aws sts decode-authorization-message`); keep the
/// human part.
fn strip_encoded_message(message: &str) -> String {
    match message.find("Encoded authorization failure message:") {
        Some(i) => format!(
            "{} (decode the details with `aws sts decode-authorization-message`)",
            message[..i].trim_end()
        ),
        None => message.to_string(),
    }
}

/// The first `https://` URL in a message (EC2's `OptInRequired` names the subscription page).
fn find_url(message: &str) -> Option<&str> {
    let start = message.find("https://")?;
    let rest = &message[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == ')' || c == '<')
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches(['.', ',']))
}

/// Whether a dispatch failure came from the credential chain (the SDK reports "failed to
/// load credentials", "no providers in chain provided credentials", …).
fn mentions_credentials(cause: &str) -> bool {
    cause.to_ascii_lowercase().contains("credential")
}

/// The first resource id with this prefix in a message (EC2 names the image that holds a
/// snapshot in its `InvalidSnapshot.InUse` message).
fn id_in(message: &str, prefix: &str) -> Option<String> {
    let start = message.find(prefix)?;
    let id: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (id.len() > prefix.len()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> CallContext {
        CallContext {
            action: "ec2:CopyImage",
            region: "eu-west-1".into(),
            endpoint: "https://ec2.eu-west-1.amazonaws.com".into(),
            custom_endpoint: false,
            what: Some("image ami-0123".into()),
        }
    }

    fn emulator_call() -> CallContext {
        CallContext {
            action: "ec2:DescribeImages",
            region: "us-east-1".into(),
            endpoint: "http://127.0.0.1:1".into(),
            custom_endpoint: true,
            what: None,
        }
    }

    fn service(code: &str, message: &str, status: u16) -> ProviderError {
        classify(
            Failure::Service {
                code: Some(code.into()),
                message: Some(message.into()),
                status,
            },
            &call(),
        )
    }

    #[test]
    fn not_found_codes_name_the_resource() {
        for code in ["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"] {
            match service(code, "The image id '[ami-0123]' does not exist", 400) {
                ProviderError::NotFound { what, region } => {
                    assert_eq!(what, "image ami-0123");
                    assert_eq!(region, "eu-west-1");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert_eq!(
            service("InvalidInstanceID.NotFound", "x", 400).kind(),
            "not_found"
        );
        assert_eq!(
            service("InvalidSnapshot.NotFound", "x", 400).kind(),
            "not_found"
        );
    }

    #[test]
    fn malformed_ids_are_invalid_input() {
        assert_eq!(
            service("InvalidAMIID.Malformed", "bad", 400).kind(),
            "invalid_input"
        );
        assert_eq!(
            service("InvalidInstanceID.Malformed", "bad", 400).kind(),
            "invalid_input"
        );
    }

    #[test]
    fn permission_errors_name_the_iam_action() {
        let e = service(
            "UnauthorizedOperation",
            "You are not authorized to perform this operation. Encoded authorization failure message: AAAA",
            403,
        );
        match &e {
            ProviderError::PermissionDenied { action, message } => {
                assert_eq!(action, "ec2:CopyImage");
                assert!(!message.contains("AAAA"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("ec2:CopyImage"));
        let e = service(
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
            401,
        );
        assert_eq!(e.kind(), "permission_denied");
        assert!(e.to_string().contains("credentials were rejected"), "{e}");
    }

    #[test]
    fn throttling_and_server_trouble() {
        let e = service("RequestLimitExceeded", "Request limit exceeded.", 503);
        assert_eq!(e.kind(), "throttled");
        assert!(e.is_transient());
        let e = service("InternalError", "oops", 500);
        match e {
            ProviderError::Unavailable { endpoint, .. } => {
                assert_eq!(endpoint, "https://ec2.eu-west-1.amazonaws.com")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(service("Whatever", "x", 502).kind(), "unavailable");
        assert_eq!(service("Whatever", "x", 429).kind(), "throttled");
        assert_eq!(service("Whatever", "x", 400).kind(), "generic");
    }

    #[test]
    fn bad_input_and_conflicts() {
        assert_eq!(
            service("InvalidParameterValue", "bad arch", 400).kind(),
            "invalid_input"
        );
        assert_eq!(
            service("InvalidSomethingNew", "bad", 400).kind(),
            "invalid_input"
        );
        assert_eq!(
            service("InvalidAMIName.Duplicate", "dup", 400).kind(),
            "conflict"
        );
        let in_use = service(
            "InvalidSnapshot.InUse",
            "The snapshot snap-0123 is currently in use by ami-0123",
            400,
        );
        assert_eq!(in_use.kind(), "conflict");
        assert!(
            in_use.to_string().contains("deregister the image"),
            "{in_use}"
        );
        assert_eq!(
            service("UnsupportedOperation", "no", 400).kind(),
            "unsupported"
        );
    }

    #[test]
    fn opt_in_required_links_the_subscription_page() {
        let e = service(
            "OptInRequired",
            "In order to use this AWS Marketplace product you need to accept terms and subscribe. To do so please visit https://aws.amazon.com/marketplace/pp?sku=abc123. ",
            401,
        );
        match e {
            ProviderError::PermissionDenied { message, .. } => {
                assert!(message.starts_with("subscribe to this product first: https://aws.amazon.com/marketplace/pp?sku=abc123 "), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn transport_failures() {
        let e = classify(
            Failure::Timeout {
                cause: "HTTP connect timeout occurred after 5s".into(),
            },
            &call(),
        );
        assert_eq!(e.kind(), "unavailable");
        let text = e.to_string();
        assert!(
            text.contains("https://ec2.eu-west-1.amazonaws.com"),
            "{text}"
        );
        assert!(text.contains("connect timeout occurred after 5s"), "{text}");
        let e = classify(
            Failure::Dispatch {
                cause: "failed to load credentials from the chain".into(),
            },
            &call(),
        );
        assert_eq!(e.kind(), "generic");
        let text = format!(
            "{e}: {}",
            std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default()
        );
        assert!(text.contains("aws sso login"), "{text}");
        let e = classify(
            Failure::Dispatch {
                cause: "invalid peer certificate: UnknownIssuer".into(),
            },
            &call(),
        );
        assert_eq!(e.kind(), "unavailable");
        assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        let e = classify(
            Failure::Response {
                status: 502,
                cause: format!("<html>{}</html>", "x".repeat(1000)),
            },
            &call(),
        );
        assert_eq!(e.kind(), "unavailable");
        assert!(e.to_string().len() < 500, "long causes are cut: {e}");
        assert_eq!(
            classify(Failure::Construction { cause: "x".into() }, &call()).kind(),
            "invalid_input"
        );
        assert_eq!(
            classify(Failure::Other { cause: "x".into() }, &call()).kind(),
            "generic"
        );
    }

    #[test]
    fn connect_failures_are_one_clean_sentence() {
        let refused = classify(
            Failure::Connect {
                failure: ConnectFailure::Refused,
                cause: "Connection refused".into(),
            },
            &emulator_call(),
        );
        assert_eq!(
            refused.to_string(),
            "provider endpoint http://127.0.0.1:1 is unavailable: cannot connect (connection refused) for ec2:DescribeImages in us-east-1; check the configured endpoint URL, that the service there is running, and the network"
        );
        let dns = classify(
            Failure::Connect {
                failure: ConnectFailure::Dns,
                cause: "failed to lookup address information: Name or service not known".into(),
            },
            &call(),
        );
        assert_eq!(dns.kind(), "unavailable");
        assert_eq!(
            dns.to_string(),
            "provider endpoint https://ec2.eu-west-1.amazonaws.com is unavailable: cannot resolve the host name `ec2.eu-west-1.amazonaws.com` (Name or service not known) for ec2:CopyImage in eu-west-1; check the network connection, DNS and proxy settings (HTTPS_PROXY)"
        );
        let unreachable = classify(
            Failure::Connect {
                failure: ConnectFailure::Unreachable,
                cause: "Network is unreachable".into(),
            },
            &call(),
        );
        assert!(
            unreachable.to_string().contains("network unreachable"),
            "{unreachable}"
        );
    }

    /// An error with a source, like the layers the HTTP client stacks.
    #[derive(Debug)]
    struct Layer(
        &'static str,
        Option<Box<dyn StdError + Send + Sync + 'static>>,
    );

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn StdError + 'static))
        }
    }

    fn layered(inner: impl StdError + Send + Sync + 'static) -> Layer {
        Layer(
            "io error",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(inner)),
            ))),
        )
    }

    #[test]
    fn connect_failures_are_found_in_the_source_chain() {
        let refused = layered(Layer(
            "tcp connect error",
            Some(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
        ));
        assert_eq!(connect_failure(&refused), Some(ConnectFailure::Refused));
        let dns = layered(Layer(
            "dns error",
            Some(Box::new(std::io::Error::other(
                "failed to lookup address information: Name or service not known",
            ))),
        ));
        assert_eq!(connect_failure(&dns), Some(ConnectFailure::Dns));
        assert_eq!(
            root_cause(&dns),
            "failed to lookup address information: Name or service not known"
        );
        let smithy_dns = layered(ResolveDnsError::new("no such host"));
        assert_eq!(connect_failure(&smithy_dns), Some(ConnectFailure::Dns));
        let unreachable = layered(std::io::Error::from(std::io::ErrorKind::NetworkUnreachable));
        assert_eq!(
            connect_failure(&unreachable),
            Some(ConnectFailure::Unreachable)
        );
        // A connection that was dropped mid-way is worth retrying: not a connect failure.
        let reset = layered(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(connect_failure(&reset), None);
        assert_eq!(
            chain_text(&reset),
            "io error: client error (Connect): connection reset"
        );
    }

    #[test]
    fn root_causes_drop_os_error_numbers() {
        let e = Layer(
            "tcp connect error",
            Some(Box::new(std::io::Error::from_raw_os_error(111))),
        );
        let cause = root_cause(&e);
        assert!(!cause.contains("os error"), "{cause}");
        assert!(!cause.is_empty());
    }

    #[test]
    fn server_errors_without_a_code_say_what_came_back() {
        let page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
        let summary = body_summary(page);
        assert_eq!(summary.as_deref(), Some("an HTML page: 502 Bad Gateway"));
        let e = classify(
            Failure::Service {
                code: None,
                message: summary,
                status: 502,
            },
            &emulator_call(),
        );
        assert_eq!(e.kind(), "unavailable");
        assert_eq!(
            e.to_string(),
            "provider endpoint http://127.0.0.1:1 is unavailable: answered ec2:DescribeImages with HTTP 502 and no AWS error code (an HTML page: 502 Bad Gateway); check that the endpoint URL points at EC2 or an EC2 emulator, or try again later"
        );
        assert_eq!(
            body_summary(b"<!DOCTYPE html><body><H1>Oops</H1></body>").as_deref(),
            Some("an HTML page: Oops")
        );
        assert_eq!(
            body_summary(b"upstream connect error\nmore").as_deref(),
            Some("body: upstream connect error")
        );
        assert_eq!(body_summary(b"  "), None);
    }

    #[test]
    fn hosts_are_cut_from_endpoints() {
        assert_eq!(host_of("http://127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(
            host_of("https://ec2.eu-west-1.amazonaws.com/"),
            "ec2.eu-west-1.amazonaws.com"
        );
        assert_eq!(host_of("http://[::1]:5000/x"), "::1");
        assert_eq!(host_of("moto.internal"), "moto.internal");
    }

    #[test]
    fn urls_are_cut_at_sentence_end() {
        assert_eq!(
            find_url("visit https://a.b/c?d=1. Thanks"),
            Some("https://a.b/c?d=1")
        );
        assert_eq!(find_url("no link"), None);
    }
}
