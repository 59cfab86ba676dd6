//! Exit codes (README "Configuration, output and exit codes"): 0 ok, 1 runtime/provider error, 2 invalid input, 3 no resolution.

/// Bad input from the user: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Nothing could serve the request although the provider answered: exit 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoResolution(pub String);

/// The provider failed (already described in the report): exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderFailed(pub String);

/// A signature or chain that does not verify (a tampered document, a broken audit log): exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TrustFailure(pub String);

/// A failure already reported on stdout (e.g. JSON with errors): exit with this code quietly.
#[derive(Debug, thiserror::Error)]
#[error("exit {0}")]
pub struct Reported(pub u8);

/// The exit code for an error.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    // A file refused by its size or type is bad input wherever it was met, also beneath a
    // provider or service error that would otherwise decide the code.
    if err.downcast_ref::<Reported>().is_none()
        && err
            .chain()
            .any(|cause| crate::input_hints::refused_file(cause).is_some())
    {
        return 2;
    }
    for cause in err.chain() {
        if let Some(r) = cause.downcast_ref::<Reported>() {
            return r.0;
        }
        if cause.is::<UsageError>()
            || cause.is::<cws_template::TemplateError>()
            || cause.is::<cws_regions::RegionError>()
            || cause.is::<cws_cost::CostError>()
        {
            return 2;
        }
        if cause.is::<NoResolution>() {
            return 3;
        }
        if let Some(r) = cause.downcast_ref::<cws_registry::RegistryError>() {
            return if r.is_invalid_input() { 2 } else { 1 };
        }
        if cause.is::<ProviderFailed>() || cause.is::<TrustFailure>() {
            return 1;
        }
        if let Some(p) = cause.downcast_ref::<cws_provider::ProviderError>() {
            return provider_code(p);
        }
        if let Some(l) = cause.downcast_ref::<cws_lifecycle::LifecycleError>() {
            // The service knows which of its failures are the user's (an instance that is
            // not running, a taken name, a provider refusing the input): those exit 2.
            return if l.is_invalid_input() { 2 } else { 1 };
        }
        if let Some(l) = cause.downcast_ref::<cws_resolver::service::LaunchError>() {
            return match l {
                cws_resolver::service::LaunchError::Provider(p) => provider_code(p),
                cws_resolver::service::LaunchError::Invalid(_)
                | cws_resolver::service::LaunchError::UnknownTier(_) => 2,
                cws_resolver::service::LaunchError::Wait(
                    cws_provider::wait::WaitError::Provider(p),
                ) => provider_code(p),
                _ => 1,
            };
        }
    }
    1
}

/// What to do next, for library errors that carry the facts but not the command to run: the
/// libraries never phrase a `cws` command, so the hints live here.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    use cws_lifecycle::LifecycleError as L;
    use cws_provider::wait::WaitSubject;
    for cause in err.chain() {
        if let Some(h) = crate::input_hints::hint(cause) {
            return Some(h);
        }
        if let Some(h) = provider_error(cause).and_then(provider_hint) {
            return Some(h);
        }
        if let Some(r) = cause.downcast_ref::<cws_registry::RegistryError>() {
            return registry_hint(r);
        }
        if let Some(l) = cause.downcast_ref::<L>() {
            return match l {
                L::InstanceNotRunning { .. } => {
                    Some("start it first, or pass --wait-for-running to wait until it is".into())
                }
                L::InstanceGone { .. } => Some("launch a new one (`cws launch`)".into()),
                L::Timeout {
                    what: WaitSubject::Image,
                    ..
                } => Some(
                    "`cws ami status` shows it, and running the same command again keeps waiting \
                     (or raise --timeout)"
                        .into(),
                ),
                L::Timeout { .. } => Some("start it, or raise --timeout".into()),
                L::ImageFailed { image, region, .. } => Some(format!(
                    "clean it up with `cws ami deregister {image} --region {region}` and run the \
                     command again"
                )),
                L::NameTaken { image, region, .. } => Some(format!(
                    "pick another --name or deregister it (`cws ami deregister {image} --region \
                     {region}`)"
                )),
                _ => None,
            };
        }
        if let Some(w) = cause.downcast_ref::<cws_provider::wait::WaitError>() {
            return match w {
                cws_provider::wait::WaitError::Timeout {
                    what: WaitSubject::Instance,
                    id,
                    region,
                    ..
                } => Some(format!(
                    "it may still start: `cws instance status {id} --region {region}` shows it \
                     (or wait longer with --timeout)"
                )),
                cws_provider::wait::WaitError::Timeout {
                    what: WaitSubject::Provisioning,
                    id,
                    region,
                    ..
                } => Some(format!(
                    "the workstation keeps running (and is billed); `cws instance status {id} \
                     --region {region}` shows the script's outcome once it reports one (or wait \
                     longer with --timeout)"
                )),
                cws_provider::wait::WaitError::Timeout { .. } => Some(
                    "the copy goes on; `cws ami list` shows it, and the next launch uses it once \
                     it is available"
                        .into(),
                ),
                cws_provider::wait::WaitError::ImageFailed { image, region, .. } => Some(format!(
                    "clean it up with `cws ami deregister {image} --region {region}`"
                )),
                _ => None,
            };
        }
    }
    None
}

/// The provider error behind a cause, also when a service error wraps it transparently (a
/// transparent wrapper hides the inner error from the source chain).
fn provider_error<'a>(
    cause: &'a (dyn std::error::Error + 'static),
) -> Option<&'a cws_provider::ProviderError> {
    use cws_provider::wait::WaitError;
    use cws_resolver::service::LaunchError;
    if let Some(p) = cause.downcast_ref::<cws_provider::ProviderError>() {
        return Some(p);
    }
    let wait = |w: &'a WaitError| match w {
        WaitError::Provider(p) => Some(p),
        _ => None,
    };
    match (
        cause.downcast_ref::<cws_lifecycle::LifecycleError>(),
        cause.downcast_ref::<LaunchError>(),
        cause.downcast_ref::<WaitError>(),
    ) {
        (Some(cws_lifecycle::LifecycleError::Provider(p)), _, _) => Some(p),
        (_, Some(LaunchError::Provider(p)), _) => Some(p),
        (_, Some(LaunchError::Wait(w)), _) | (_, _, Some(w)) => wait(w),
        _ => None,
    }
}

/// Hints for provider errors that name a fix the CLI can spell out.
fn provider_hint(p: &cws_provider::ProviderError) -> Option<String> {
    use cws_provider::ProviderError as P;
    match p {
        P::UnknownRegion {
            suggestion: None, ..
        } => Some("`cws regions list` shows the known regions".into()),
        P::Unavailable { endpoint, .. }
            if endpoint.starts_with("http") && !endpoint.contains(".amazonaws.com") =>
        {
            Some(
                "the endpoint comes from --endpoint-url, CWS_ENDPOINT_URL or `cws config set \
                 endpoint`"
                    .into(),
            )
        }
        P::NotFound { what, .. } if what.starts_with("image ") => Some(
            "if it lives in another region, pass --region (or --from for `cws ami copy`)".into(),
        ),
        P::SnapshotInUse {
            image_id, region, ..
        } => Some(format!(
            "deregister the image first (`cws ami deregister {} --region {region}`), then \
             delete the snapshot",
            image_id.as_deref().unwrap_or("AMI")
        )),
        _ => None,
    }
}

fn provider_code(p: &cws_provider::ProviderError) -> u8 {
    if p.is_caller_error() { 2 } else { 1 }
}

fn registry_hint(e: &cws_registry::RegistryError) -> Option<String> {
    use cws_registry::RegistryError as R;
    match e {
        R::UnknownListing { suggestions, .. } if !suggestions.is_empty() => Some(format!(
            "did you mean {}? (`cws ami browse` lists listings)",
            cws_util::suggest::quoted_list(suggestions.iter().map(String::as_str))
        )),
        R::UnknownListing { .. } => Some("`cws ami browse` lists the listings you can see".into()),
        R::UnknownVersion { known, .. } if !known.is_empty() => Some(format!(
            "its versions are {}",
            cws_util::suggest::quoted_list(known.iter().map(String::as_str))
        )),
        R::RegionTaken { .. } => Some(
            "publish the new image as a new version (`--version X.Y.Z`); a published version \
             never changes under its users"
                .into(),
        ),
        R::UnlistedImage { .. } => Some(
            "publish it first with `cws ami share AMI --community NAME` (or --public, \
             --institution ORG, --private)"
                .into(),
        ),
        R::Store { store, message }
            if store.starts_with("http://") || store.starts_with("https://") =>
        {
            Some(if message.starts_with("rate limited") {
                "wait, then run the command again".into()
            } else {
                format!("check that the registry server at {store} is running and reachable")
            })
        }
        R::Store { .. } => {
            Some("the registry is $CWS_HOME/registry.db; check the disk and its permissions".into())
        }
        R::Unauthorized { .. } => Some(
            "pass a token with access to the registry: --token or CWS_TOKEN, or set it once \
             with `cws config set registry.token TOKEN`"
                .into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cws_lifecycle::LifecycleError;
    use cws_provider::ProviderError;

    fn code(e: LifecycleError) -> u8 {
        exit_code(&anyhow::Error::from(e))
    }

    #[test]
    fn refused_files_exit_2_even_beneath_a_provider_error() {
        let refusal = cws_util::fs::ReadError::TooLarge {
            path: "/h/localcloud/state.json".into(),
            limit: cws_localcloud::MAX_STATE_BYTES,
        };
        let provider = ProviderError::Generic {
            provider: "local".into(),
            source: Box::new(cws_localcloud::StateFileRefused(refusal)),
        };
        let err = anyhow::Error::from(provider).context("opening the simulated cloud");
        assert_eq!(exit_code(&err), 2);
        assert!(
            hint(&err).is_some_and(|h| h.contains("freshly seeded")),
            "{:?}",
            hint(&err)
        );
        let pending = LifecycleError::PendingFileRefused(cws_util::fs::ReadError::NotAFile {
            path: "/h/pending-images.json".into(),
        });
        assert_eq!(code(pending), 2);
    }

    #[test]
    fn lifecycle_errors_exit_2_for_bad_input_and_1_otherwise() {
        assert_eq!(code(LifecycleError::Invalid("no regions".into())), 2);
        assert_eq!(
            code(LifecycleError::InstanceNotRunning {
                name: "box".into(),
                id: "i-00000001".into(),
                region: "us-east-1".into(),
                state: cws_provider::InstanceState::Stopped,
            }),
            2
        );
        assert_eq!(
            code(LifecycleError::Provider(ProviderError::InvalidInput {
                message: "bad id".into()
            })),
            2
        );
        assert_eq!(
            code(LifecycleError::Provider(ProviderError::Conflict {
                message: "name taken".into()
            })),
            2
        );
        assert_eq!(
            code(LifecycleError::Provider(ProviderError::Unavailable {
                endpoint: "http://127.0.0.1:1".into(),
                message: "refused".into()
            })),
            1
        );
        assert_eq!(code(LifecycleError::Declined("not copied".into())), 1);
        // Wrapped in context, the cause still decides.
        let wrapped =
            anyhow::Error::from(LifecycleError::Invalid("x".into())).context("ami create");
        assert_eq!(exit_code(&wrapped), 2);
    }

    #[test]
    fn a_registry_refusing_the_token_exits_2_and_says_how_to_pass_one() {
        use cws_registry::RegistryError as R;
        let err = anyhow::Error::from(R::Unauthorized {
            registry: "https://registry.example.edu".into(),
            message: "the token expired".into(),
        })
        .context("ami browse");
        assert_eq!(exit_code(&err), 2);
        let h = hint(&err).unwrap_or_default();
        assert!(
            h.contains("--token") && h.contains("CWS_TOKEN") && h.contains("registry.token"),
            "{h}"
        );
        let unreachable = anyhow::Error::from(R::Store {
            store: "https://registry.example.edu".into(),
            message: "cannot reach the registry".into(),
        });
        assert_eq!(exit_code(&unreachable), 1);
        assert!(
            hint(&unreachable).is_some_and(|h| h.contains("https://registry.example.edu")),
            "{:?}",
            hint(&unreachable)
        );
    }
}
