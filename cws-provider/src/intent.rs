//! Idempotent creation: one intent token per resource cws means to make, carried as the
//! [`INTENT`](crate::tags::INTENT) tag and as the client token of the creating call, so that
//! retrying never makes a second resource.
//!
//! A creating call whose answer is lost (a timeout, a dropped connection, a 5xx after the
//! backend acted) may or may not have made its resource. [`create_once`] retries such calls,
//! but before each retry it looks for what the earlier attempt may have made, by the intent
//! tag, and adopts it instead. Backends that honour client tokens (EC2, LocalCloud) also
//! answer a repeated token with the first resource; the lookup covers those that do not (moto)
//! and calls that take no token (EC2's `CreateImage`, which is de-duplicated by image name).

use std::future::Future;
use std::time::Duration;

use crate::error::{ProviderError, ProviderResult};
use crate::model::{Image, ImageQuery, ImageState, Instance, InstanceFilter};
use crate::tags::INTENT;
use crate::traits::{ImageCatalog, Instances};

/// The longest token EC2 accepts as a client token.
pub const MAX_TOKEN_LEN: usize = 64;

/// How many times a creating call is tried when its answer is lost.
pub const CREATE_ATTEMPTS: u32 = 4;

/// A new intent token: `cws-` and 32 hex digits (time, process, a counter and a per-process
/// random seed), unique enough that two intents never share one.
pub fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let half = |salt: u64| {
        // RandomState is seeded randomly per process.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u64(n);
        h.write_u64(salt);
        h.finish()
    };
    format!("cws-{:016x}{:016x}", half(1), half(2))
}

/// Whether a token is usable as an EC2 client token: 1 to [`MAX_TOKEN_LEN`] printable ASCII
/// characters.
pub fn is_valid_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN_LEN && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Runs a creating call until it answers, at most [`CREATE_ATTEMPTS`] times. After an attempt
/// whose failure may hide a success (a transient error: the answer may have been lost after
/// the backend acted), `find` looks for what that attempt made, by its intent; what it finds
/// is adopted and returned instead of trying again. Errors that are not transient return at
/// once: the backend refused, so nothing was made.
pub async fn create_once<T, Make, MakeFut, Find, FindFut>(
    mut make: Make,
    mut find: Find,
) -> ProviderResult<T>
where
    Make: FnMut() -> MakeFut,
    MakeFut: Future<Output = ProviderResult<T>>,
    Find: FnMut() -> FindFut,
    FindFut: Future<Output = ProviderResult<Option<T>>>,
{
    let mut pause = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match make().await {
            Ok(made) => return Ok(made),
            Err(e) if e.is_transient() => {
                // Did the lost attempt act? A lookup that fails too leaves the question open:
                // try again only while attempts remain, and never report success unseen.
                match find().await {
                    Ok(Some(made)) => return Ok(made),
                    Ok(None) | Err(_) if attempt < CREATE_ATTEMPTS => {}
                    Ok(None) => return Err(e),
                    Err(lookup) if lookup.is_transient() => return Err(e),
                    Err(lookup) => return Err(lookup),
                }
                tracing::debug!(error = %e, attempt, "creating call failed; retrying with the same intent");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs an idempotent call (one that can be repeated safely, such as tagging) until it
/// answers, retrying transient failures up to [`CREATE_ATTEMPTS`] times with backoff: the
/// follow-up tagging of a resource whose backend dropped the tags of its creating call.
pub async fn retry_idempotent<T, Call, CallFut>(mut call: Call) -> ProviderResult<T>
where
    Call: FnMut() -> CallFut,
    CallFut: Future<Output = ProviderResult<T>>,
{
    let mut pause = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.is_transient() && attempt < CREATE_ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "idempotent call failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The account's image in `region` named `name` that was made for `token`: tagged with it, or
/// (for backends that drop tags on copy) carrying it in its description. Pending and available
/// images count; a failed one was not made.
pub async fn find_image(
    catalog: &(impl ImageCatalog + ?Sized),
    region: &str,
    name: &str,
    token: &str,
) -> ProviderResult<Option<Image>> {
    let mut query = ImageQuery::owned_by(["self"]).include_deprecated(true);
    query.names = vec![name.to_string()];
    query.states = vec![ImageState::Pending, ImageState::Available];
    Ok(catalog
        .describe_images(region, &query)
        .await?
        .into_iter()
        .find(|i| {
            i.name == name
                && (i.tags.get(INTENT).map(String::as_str) == Some(token)
                    || i.description.as_deref().is_some_and(|d| d.contains(token)))
        }))
}

/// The instance in `region` launched for `token` (by its intent tag).
pub async fn find_instance(
    instances: &(impl Instances + ?Sized),
    region: &str,
    token: &str,
) -> ProviderResult<Option<Instance>> {
    let filter = InstanceFilter {
        tags: std::collections::BTreeMap::from([(INTENT.to_string(), token.to_string())]),
        ..InstanceFilter::default()
    };
    Ok(instances
        .describe_instances(region, &filter)
        .await?
        .into_iter()
        .next())
}

/// A description that carries the intent too (found again by [`find_image`] on backends that
/// drop tags).
pub fn describe_with_intent(description: &str, token: &str) -> String {
    format!("{description} [{token}]")
}

/// A conflict that names the intent, for backends that see a token reused for a different
/// request.
pub fn mismatch(token: &str, what: &str) -> ProviderError {
    ProviderError::Conflict {
        message: format!(
            "intent {token} was already used for a different {what}; a new request needs a new \
             intent token"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn tokens_are_unique_and_fit_ec2() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(is_valid_token(&a), "{a}");
        assert_eq!(a.len(), 36);
        assert!(!is_valid_token(""));
        assert!(!is_valid_token(&"x".repeat(65)));
        assert!(!is_valid_token("has space"));
    }

    fn unavailable() -> ProviderError {
        ProviderError::Unavailable {
            endpoint: "test".into(),
            message: "answer lost".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_adopted_not_made_again() {
        let made = AtomicU32::new(0);
        let out = create_once(
            || async {
                made.fetch_add(1, Ordering::SeqCst);
                Err::<u32, _>(unavailable())
            },
            || async { Ok(Some(7)) },
        )
        .await
        .unwrap();
        assert_eq!(out, 7);
        assert_eq!(made.load(Ordering::SeqCst), 1, "no second creating call");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_made_nothing_is_tried_again_up_to_the_limit() {
        let made = AtomicU32::new(0);
        let out = create_once(
            || async {
                let n = made.fetch_add(1, Ordering::SeqCst) + 1;
                if n < 3 { Err(unavailable()) } else { Ok(n) }
            },
            || async { Ok(None) },
        )
        .await
        .unwrap();
        assert_eq!(out, 3);
        let made = AtomicU32::new(0);
        let err = create_once(
            || async {
                made.fetch_add(1, Ordering::SeqCst);
                Err::<u32, _>(unavailable())
            },
            || async { Ok(None) },
        )
        .await
        .unwrap_err();
        assert!(err.is_transient());
        assert_eq!(made.load(Ordering::SeqCst), CREATE_ATTEMPTS);
    }

    #[tokio::test(start_paused = true)]
    async fn idempotent_calls_ride_out_transient_failures_only() {
        let calls = AtomicU32::new(0);
        let out = retry_idempotent(|| async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n < 3 { Err(unavailable()) } else { Ok(n) }
        })
        .await
        .unwrap();
        assert_eq!(out, 3);
        let calls = AtomicU32::new(0);
        let err = retry_idempotent(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(ProviderError::InvalidInput {
                message: "bad tag".into(),
            })
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_not_retried_and_not_looked_up() {
        let looked = AtomicU32::new(0);
        let err = create_once(
            || async {
                Err::<u32, _>(ProviderError::InvalidInput {
                    message: "no".into(),
                })
            },
            || async {
                looked.fetch_add(1, Ordering::SeqCst);
                Ok(Some(1))
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        assert_eq!(looked.load(Ordering::SeqCst), 0);
    }
}
