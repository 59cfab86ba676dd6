//! Retry policy on top of the SDK's standard mode: fail fast when no connection can be
//! opened.
//!
//! Standard retries (with `max_attempts` ≥ 10 and exponential backoff) are right for
//! throttling and 5xx answers: those clear up. They are wrong for a connection that cannot
//! be opened at all — nothing listens on the port, the host name does not resolve, there is
//! no route — because every attempt fails the same way, instantly, and the backoff between
//! ten attempts makes the user wait a minute for an answer that was known after the first.
//! [`FailFastOnConnectErrors`] runs after the SDK's transient-error classifier (which calls
//! every I/O error retryable) and overrides its verdict for exactly those errors.

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};

use super::errors::connect_failure;

/// Forbids retries of connection-refused, DNS-resolution and no-route errors; leaves every
/// other verdict (throttling, 5xx, timeouts, dropped connections) to the SDK's classifiers.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FailFastOnConnectErrors;

impl ClassifyRetry for FailFastOnConnectErrors {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(err)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        match err.as_connector_error() {
            // Connect and DNS failures are I/O connector errors; anything else (timeouts,
            // credential-provider failures) keeps the SDK's verdict.
            Some(ce) if ce.is_io() && connect_failure(ce).is_some() => {
                tracing::debug!("not retrying: {}", super::errors::chain_text(ce));
                RetryAction::RetryForbidden
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "cws: no retries when no connection can be opened"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::interceptors::context::{Error, Input};
    use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    fn verdict(err: OrchestratorError<Error>) -> RetryAction {
        let mut ctx = InterceptorContext::new(Input::erase(()));
        ctx.set_output_or_error(Err(err));
        FailFastOnConnectErrors.classify_retry(&ctx)
    }

    #[test]
    fn refused_connections_are_not_retried() {
        let refused = ConnectorError::io(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(
            verdict(OrchestratorError::connector(refused)),
            RetryAction::RetryForbidden
        );
    }

    #[test]
    fn other_failures_keep_the_sdk_verdict() {
        let reset = ConnectorError::io(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(
            verdict(OrchestratorError::connector(reset)),
            RetryAction::NoActionIndicated
        );
        let timeout =
            ConnectorError::timeout(Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)));
        assert_eq!(
            verdict(OrchestratorError::connector(timeout)),
            RetryAction::NoActionIndicated
        );
        let ctx = InterceptorContext::new(Input::erase(()));
        assert_eq!(
            FailFastOnConnectErrors.classify_retry(&ctx),
            RetryAction::NoActionIndicated
        );
    }

    #[test]
    fn runs_after_the_transient_error_classifier() {
        assert!(
            FailFastOnConnectErrors.priority()
                > RetryClassifierPriority::transient_error_classifier()
        );
    }
}
