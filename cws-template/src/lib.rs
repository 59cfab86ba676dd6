//! Workstation templates for cws: the YAML format, loading, validation,
//! inheritance, the template search path, the bundled templates and the
//! JSON Schema.
//!
//! A template describes a research workstation: what it is called, the OS
//! image family it builds on, the packages and scripts that provision it,
//! default instance shapes, and — optionally — where pre-built machine
//! images (AMIs) for it come from (`ami_config`). Templates without
//! `ami_config` are *script templates*: they are provisioned at boot by
//! [`Template::provisioning_script`].
//!
//! ```
//! let t = cws_template::parse_str(
//!     "name: Demo\nslug: demo\nversion: 1.0.0\nbase: ubuntu-24.04\n",
//!     "demo.yaml",
//! )?;
//! assert_eq!(t.strategy(), cws_template::AmiStrategy::AmiFallback);
//! # Ok::<(), cws_template::TemplateError>(())
//! ```
//!
//! # Errors point at the source
//!
//! Every [`TemplateError::Invalid`] names the file, line and column of the
//! offending key or value — for syntax errors, unknown fields (with a
//! did-you-mean), wrong types, unknown enum values (listing the allowed
//! ones) and the format's rules alike:
//!
//! ```text
//! my.yaml:4:3: unknown field `stratgy` in `ami_config`; did you mean `strategy`?
//!   help: valid fields here: `strategy`, `ami_mappings`, ...
//! ```
//!
//! A file's problems are reported together: unknown fields, wrong types,
//! missing fields and broken rules of one file come back as one
//! [`TemplateError::InvalidMany`] holding an `Invalid` for each, in line
//! order ([`TemplateError::errors`], [`TemplateError::count`]). A file with
//! a single problem, or a YAML syntax error (which leaves nothing else to
//! check), gives that one `Invalid`.
//!
//! ```
//! let e = cws_template::parse_str(
//!     "name: Demo\nslug: Demo\nversion: 1.0.0\nbase: ubuntu-24.04\ncolour: red\n",
//!     "demo.yaml",
//! )
//! .unwrap_err();
//! assert_eq!(e.count(), 2);
//! assert_eq!(e.location(), Some(("demo.yaml", 2, 7)));
//! ```
//!
//! # Defaults for terse files
//!
//! A template with a `name` may leave out `slug` (made from the file name:
//! lowercase, other characters turned into `-`) and, without `inherits`,
//! `version` (`1.0.0`) and `base` (`ubuntu-24.04`). Each default filled in
//! is listed in [`Template::notes`] for the caller to announce.
//!
//! # Rules beyond the shape
//!
//! `slug` and `inherits` are `[a-z0-9][a-z0-9-]*`; `version` is semver;
//! `base` is one of [`KNOWN_BASES`]; AMI ids are `ami-` plus 8 or 17
//! lowercase hex digits; `ami_mappings` regions must be known to
//! `cws-regions`; `ami_search.owners` must be non-empty trusted owners
//! (`self`, `amazon`, `aws-marketplace` or 12-digit accounts, never "any");
//! `marketplace` needs at least one field; `ami_required` needs an AMI
//! source; tags follow AWS limits and may not use the `aws:` prefix.
//!
//! # Inheritance
//!
//! `inherits: parent-slug` makes a template start from its parent (found
//! through the [`TemplateStore`]: search path, then bundled). A child must
//! set `name` and `slug`; everything else, including `version` and `base`,
//! may come from the parent. The merge is a deep merge in which the child
//! wins:
//!
//! * mappings (`packages`, `instance_defaults`, `tags`, `ami_config` and
//!   the mappings inside it) are merged key by key, recursively;
//! * scalars are replaced;
//! * lists are replaced whole when the child has them (never appended) —
//!   so a child's `packages.pip` replaces the parent's `pip` list but keeps
//!   its `conda` list;
//! * `key: null` means "not set": in a child it removes the inherited
//!   value, so the field takes its default (e.g. `ami_config: null` turns
//!   an AMI template into a script template; `ami_mappings: null` inside
//!   `ami_config` drops the parent's mappings but keeps its search). This
//!   works for every field except the required `name`, `slug`, `version`
//!   and `base`; list items and tag values cannot be null.
//!
//! The merged result is validated again as a whole. A template that
//! inherits its own slug extends the template it shadows (the next one
//! with that slug further down the search path). Loops are reported as
//! [`TemplateError::InheritanceCycle`].
//!
//! # Search path
//!
//! See [`SearchPath`] and [`TemplateStore`]: `--templates DIR`...,
//! `CWS_TEMPLATES_PATH`, `$CWS_HOME/templates`, then [`bundled`]; first
//! match by slug wins and later ones are reported as shadowed.
//!
//! # Size limit
//!
//! A template file is at most [`MAX_TEMPLATE_BYTES`] (1 MiB). A larger file,
//! or a path that is not a regular file (a directory, `/dev/zero`, a FIFO),
//! is refused before it is read, as [`TemplateError::Refused`]: named
//! directly ([`load_file`], [`TemplateStore::validate_file`]) it is an
//! error; met on the search path it is listed as broken and the other
//! templates are still served.

#![deny(missing_docs)]

mod bundled;
mod doc;
mod error;
mod issue;
mod locate;
mod model;
mod schema;
pub mod script;
mod store;
mod structure;

mod validate;

use std::path::Path;

pub use bundled::{BundledTemplate, bundled};
pub use error::TemplateError;
pub use model::{
    AmiConfig, AmiSearch, AmiStrategy, Architecture, CommunityRef, FallbackStrategy,
    InstanceDefaults, MarketplaceRef, MinRating, PackageManager, Packages, Template,
};
pub use schema::{json_schema, json_schema_string};
pub use script::{OUTCOME_MARKER, ProvisioningOutcome, provisioning_outcome};
pub use store::{LoadedTemplate, Origin, SearchPath, TemplateEntry, TemplateStore};
pub use validate::is_ami_id;

/// The AWS account that publishes the official cws images (simulated).
pub const CWS_PUBLISHER_ACCOUNT: &str = "704381954421";

/// The OS image families a template's `base` may name.
pub const KNOWN_BASES: &[&str] = &["ubuntu-22.04", "ubuntu-24.04", "al2023", "debian-12"];

/// Parses and validates one template document. `origin` names it in error
/// messages (usually the file path).
///
/// `inherits` is *not* resolved here: a child template that leaves
/// `version` or `base` to its parent fails with a message saying so. Use
/// [`TemplateStore::validate_file`] or [`TemplateStore::get`] to resolve
/// inheritance.
pub fn parse_str(text: &str, origin: &str) -> Result<Template, TemplateError> {
    let doc = doc::Doc::parse(text, origin)?;
    doc::finish(&[&doc])
}

/// The largest template file cws reads: 1 MiB. Templates are short YAML
/// documents (the bundled ones are a few KiB); a larger file, or a path that
/// is not a regular file, is refused before it is read
/// ([`TemplateError::Refused`]), whether it is named directly or met on the
/// search path.
pub const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// Reads and parses the template file at `path` (no inheritance; see
/// [`parse_str`]). Errors name the path as given. Files over
/// [`MAX_TEMPLATE_BYTES`] and paths that are not regular files are refused
/// ([`TemplateError::Refused`]).
pub fn load_file(path: &Path) -> Result<Template, TemplateError> {
    let text = store::read(path)?;
    parse_str(&text, &path.display().to_string())
}
