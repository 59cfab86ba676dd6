//! # cws-examples
//!
//! How another tool embeds cws. Three programs, built with `cargo build --examples`:
//!
//! - `custom_launcher` ([`launcher`]): a downstream launcher that picks its own provider
//!   stack (LocalCloud persisted in a directory it owns, behind a cache and a call counter),
//!   loads its template from a YAML string, prints the decision, and launches with its own
//!   consent policy.
//! - `custom_tier` ([`institution`]): a resolver with a tier of its own, an institution's
//!   vetted image catalogue, inserted between dynamic search and the Marketplace without
//!   touching `cws-resolver`.
//! - `custom_provider` ([`catalogue`]): an institution's read-only image catalogue as a
//!   provider of its own (only `ImageCatalog`), resolved against with `Resolver::resolve_in`
//!   without AWS or LocalCloud.
//!
//! The logic lives in this library and the example binaries only call it, so the tests in
//! `tests/` run exactly what the examples do (CI runs the tests, then runs each example).

#![deny(missing_docs)]

pub mod catalogue;
pub mod institution;
pub mod launcher;

/// What can stop an example, with what to do about it.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    /// The template YAML is invalid; the message names the line and column.
    #[error("the template is invalid: {0}")]
    Template(#[from] cws_template::TemplateError),
    /// The provider refused a call.
    #[error("the provider failed: {0}")]
    Provider(#[from] cws_provider::ProviderError),
    /// The launch failed after resolution.
    #[error("the launch failed: {0}")]
    Launch(#[from] cws_resolver::service::LaunchError),
    /// No writable temporary directory for the simulated cloud's state.
    #[error(
        "cannot create a temporary directory for LocalCloud ({0}); set TMPDIR to a writable directory"
    )]
    TempHome(#[source] std::io::Error),
}
