//! Exit codes (DESIGN §7): 0 ok, 1 runtime/provider error, 2 invalid input, 3 no resolution.

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

/// A failure already reported on stdout (e.g. JSON with errors): exit with this code quietly.
#[derive(Debug, thiserror::Error)]
#[error("exit {0}")]
pub struct Reported(pub u8);

/// The exit code for an error.
pub fn exit_code(err: &anyhow::Error) -> u8 {
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
        if cause.is::<ProviderFailed>() {
            return 1;
        }
        if let Some(p) = cause.downcast_ref::<cws_resolver::ProviderError>() {
            return provider_code(p);
        }
        if let Some(l) = cause.downcast_ref::<cws_resolver::service::LaunchError>() {
            return match l {
                cws_resolver::service::LaunchError::Provider(p) => provider_code(p),
                cws_resolver::service::LaunchError::Invalid(_) => 2,
                _ => 1,
            };
        }
    }
    1
}

fn provider_code(p: &cws_resolver::ProviderError) -> u8 {
    match p {
        cws_resolver::ProviderError::InvalidInput { .. }
        | cws_resolver::ProviderError::Conflict { .. } => 2,
        _ => 1,
    }
}
