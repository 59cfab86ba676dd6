//! What to do next about bad input, in `cws` terms.
//!
//! `cws-template`, `cws-regions` and `cws-cost` return the facts (the unknown name or region,
//! the close matches, the directories searched) in library-neutral messages; the commands to
//! run and the flags to pass are worded here.

use std::error::Error;

use cws_cost::CostError;
use cws_regions::RegionError;
use cws_template::TemplateError;
use cws_util::fs::ReadError;

use crate::error::UsageError;
use crate::sanitize::shown;

/// Where a user finds the region codes cws knows.
const KNOWN_REGIONS: &str = "`cws regions list` shows the known regions";

/// A kind of file cws reads whole, each with its own size limit (see README "Size limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A template file ([`cws_template::MAX_TEMPLATE_BYTES`]).
    Template,
    /// The region fallback overrides ([`cws_regions::MAX_OVERRIDE_BYTES`]).
    Regions,
    /// A price override file ([`cws_cost::MAX_PRICE_FILE_BYTES`]).
    Prices,
    /// `$CWS_HOME/config.toml` ([`crate::config::MAX_CONFIG_BYTES`]).
    Config,
    /// LocalCloud's state ([`cws_localcloud::MAX_STATE_BYTES`]).
    LocalCloudState,
    /// The record of images in flight ([`cws_lifecycle::MAX_PENDING_BYTES`]).
    Pending,
}

/// The file behind one cause of an error, when cws refused to read it (too large, not a
/// regular file, not UTF-8): what kind of file it is and the library's typed refusal, which
/// names the path and the limit. Such an error is invalid input (exit 2) wherever it is met.
pub fn refused_file<'a>(cause: &'a (dyn Error + 'static)) -> Option<(FileKind, &'a ReadError)> {
    if let Some(TemplateError::Refused(r)) = cause.downcast_ref::<TemplateError>() {
        return Some((FileKind::Template, r));
    }
    if let Some(RegionError::Refused(r)) = cause.downcast_ref::<RegionError>() {
        return Some((FileKind::Regions, r));
    }
    if let Some(CostError::Refused(r)) = cause.downcast_ref::<CostError>() {
        return Some((FileKind::Prices, r));
    }
    if let Some(c) = cause.downcast_ref::<crate::config::ConfigRefused>() {
        return Some((FileKind::Config, &c.0));
    }
    if let Some(s) = cause.downcast_ref::<cws_localcloud::StateFileRefused>() {
        return Some((FileKind::LocalCloudState, &s.0));
    }
    if let Some(cws_lifecycle::LifecycleError::PendingFileRefused(r)) =
        cause.downcast_ref::<cws_lifecycle::LifecycleError>()
    {
        return Some((FileKind::Pending, r));
    }
    None
}

/// How to fix a refused file: the error already names the file and the limit.
fn refused_hint(kind: FileKind, refusal: &ReadError) -> String {
    let path = refusal.path().display();
    let move_aside = format!("move it aside (`mv {path} {path}.bak`) and run again");
    let not_a_file = matches!(refusal, ReadError::NotAFile { .. });
    let not_text = matches!(refusal, ReadError::NotText { .. });
    match kind {
        FileKind::Template if not_a_file => "name a template file (a regular `.yaml` file), \
             not a directory, device or pipe; a directory of templates goes with \
             `--templates DIR`, and nothing else in one may be named `*.yaml`"
            .into(),
        FileKind::Template if not_text => "save the template as UTF-8 text".into(),
        FileKind::Template => "a template is a short YAML file: check that this is the \
             template you meant, or trim it (or move it out of the template directories)"
            .into(),
        FileKind::Regions if not_a_file => {
            "--regions-file (else $CWS_HOME/regions.yaml) must name a regular YAML file".into()
        }
        FileKind::Regions => "the file is the one given with --regions-file, else \
             $CWS_HOME/regions.yaml: check that it is the fallback override file you meant"
            .into(),
        FileKind::Prices if not_a_file => {
            "--prices-file (else $CWS_HOME/prices.toml) must name a regular TOML file".into()
        }
        FileKind::Prices => "the file is the one given with --prices-file, else \
             $CWS_HOME/prices.toml: check that it is the price override file you meant"
            .into(),
        FileKind::Config => {
            format!("{move_aside}, then set the defaults again with `cws config set KEY VALUE`")
        }
        FileKind::LocalCloudState => {
            format!("{move_aside} to start from a freshly seeded simulated cloud")
        }
        FileKind::Pending => format!("{move_aside} (the images themselves are not affected)"),
    }
}

/// The hint for one cause of an error, if it is an input error of a library crate that has a
/// next step in the CLI.
pub fn hint(cause: &(dyn Error + 'static)) -> Option<String> {
    if let Some((kind, refusal)) = refused_file(cause) {
        return Some(refused_hint(kind, refusal));
    }
    if let Some(t) = cause.downcast_ref::<TemplateError>() {
        return match t {
            TemplateError::NotFound { .. } => Some(
                "run `cws templates list` to see every template, or add a directory with \
                 `--templates DIR`"
                    .into(),
            ),
            TemplateError::UnknownParent { .. } => {
                Some("run `cws templates list` to see the available slugs".into())
            }
            _ => None,
        };
    }
    if let Some(r) = cause.downcast_ref::<RegionError>() {
        return match r {
            RegionError::UnknownRegion { .. }
            | RegionError::InvalidGraph {
                unknown_region: Some(_),
                ..
            } => Some(KNOWN_REGIONS.into()),
            RegionError::Io { .. } => Some(
                "the file is the one given with --regions-file, else $CWS_HOME/regions.yaml".into(),
            ),
            _ => None,
        };
    }
    if let Some(CostError::UnknownRegion { .. }) = cause.downcast_ref::<CostError>() {
        return Some(KNOWN_REGIONS.into());
    }
    None
}

/// The separate problems one error reports, each to be shown on its own `error:` line: every
/// problem of a template file ([`TemplateError::errors`], in line order), else the error itself.
pub fn problems<'a>(err: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    match err.downcast_ref::<TemplateError>() {
        Some(t) => t
            .errors()
            .iter()
            .map(|e| e as &(dyn Error + 'static))
            .collect(),
        None => vec![err],
    }
}

/// `err`'s message followed by its hint on a "help:" line, as `main` prints hints: for errors
/// rendered as text outside `main` (e.g. one per file by `cws templates validate`).
pub fn with_hint(err: &(dyn Error + 'static)) -> String {
    match hint(err) {
        Some(h) => format!("{err}\n  help: {h}"),
        None => err.to_string(),
    }
}

/// Like [`with_hint`], for a terminal: the message (which may quote a file or a value) is
/// escaped onto one line with [`shown`]; only the line break before "help:" is the CLI's.
pub fn shown_with_hint(err: &(dyn Error + 'static)) -> String {
    // A library error may end in its own "help:" line (the template errors do): that line
    // break is the library's, so it is kept; what is around it is escaped.
    let text = err.to_string();
    let message = match text.split_once("\n  help: ") {
        Some((m, h)) => format!("{}\n  help: {}", shown(m), shown(h)),
        None => shown(&text).into_owned(),
    };
    match hint(err) {
        Some(h) => format!("{message}\n  help: {}", shown(&h)),
        None => message,
    }
}

/// A bad value for `flag` (exit 2): "FLAG: message", with the hint on a "help:" line. The
/// library error becomes text here, so its hint is worded now rather than by `main`, and its
/// message is escaped now (`main` keeps a usage error's own line breaks).
pub fn usage(flag: &str, err: &(dyn Error + 'static)) -> UsageError {
    UsageError(format!("{}: {}", shown(flag), shown_with_hint(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_errors_point_at_the_region_list() {
        let e = RegionError::UnknownRegion {
            region: "mars-1".into(),
            suggestion: None,
        };
        assert_eq!(hint(&e).as_deref(), Some(KNOWN_REGIONS));
        let e = CostError::UnknownRegion {
            region: "mars-1".into(),
            suggestion: None,
        };
        assert_eq!(hint(&e).as_deref(), Some(KNOWN_REGIONS));
        let e = RegionError::InvalidGraph {
            origin: "regions.yaml".into(),
            message: "line 2, column 3: `mars-1` is not a known region".into(),
            unknown_region: Some("mars-1".into()),
        };
        assert_eq!(hint(&e).as_deref(), Some(KNOWN_REGIONS));
        let e = RegionError::InvalidGraph {
            origin: "regions.yaml".into(),
            message: "`us-east-1` lists itself as a fallback".into(),
            unknown_region: None,
        };
        assert_eq!(hint(&e), None);
    }

    #[test]
    fn template_errors_point_at_templates_list() {
        let e = TemplateError::NotFound {
            name: "pyton-ml".into(),
            suggestions: vec!["python-ml".into()],
            searched: vec!["bundled".into()],
        };
        let h = hint(&e).unwrap_or_default();
        assert!(h.contains("`cws templates list`"), "{h}");
        assert!(h.contains("`--templates DIR`"), "{h}");
        let e = TemplateError::UnknownParent {
            file: "kid.yaml".into(),
            line: 3,
            column: 11,
            parent: "pyton-ml".into(),
            suggestions: vec!["python-ml".into()],
        };
        assert_eq!(
            with_hint(&e),
            "kid.yaml:3:11: `inherits`: no template with slug `pyton-ml`; did you mean \
             `python-ml`?\n  help: run `cws templates list` to see the available slugs"
        );
    }

    #[test]
    fn refused_files_are_recognised_and_get_a_fix() {
        let too_large = |p: &str, limit| ReadError::TooLarge {
            path: p.into(),
            limit,
        };
        let e = TemplateError::Refused(too_large("/t/huge.yaml", cws_template::MAX_TEMPLATE_BYTES));
        assert!(matches!(refused_file(&e), Some((FileKind::Template, _))));
        assert_eq!(
            e.to_string(),
            "template file /t/huge.yaml is larger than the limit of 1 MiB"
        );
        assert!(hint(&e).is_some_and(|h| h.contains("template you meant")));
        let e = TemplateError::Refused(ReadError::NotAFile {
            path: "/dev/zero".into(),
        });
        assert!(hint(&e).is_some_and(|h| h.contains("regular `.yaml` file")));
        let e = RegionError::Refused(ReadError::NotAFile {
            path: "/dev/zero".into(),
        });
        assert!(hint(&e).is_some_and(|h| h.contains("--regions-file")));
        let e = CostError::Refused(too_large("/p.toml", cws_cost::MAX_PRICE_FILE_BYTES));
        assert!(hint(&e).is_some_and(|h| h.contains("--prices-file")));
        let e = cws_localcloud::StateFileRefused(too_large(
            "/h/localcloud/state.json",
            cws_localcloud::MAX_STATE_BYTES,
        ));
        assert!(matches!(
            refused_file(&e),
            Some((FileKind::LocalCloudState, _))
        ));
        assert!(
            hint(&e).is_some_and(
                |h| h.contains("`mv /h/localcloud/state.json /h/localcloud/state.json.bak`")
            ),
            "{:?}",
            hint(&e)
        );
        let e = cws_lifecycle::LifecycleError::PendingFileRefused(too_large(
            "/h/pending-images.json",
            cws_lifecycle::MAX_PENDING_BYTES,
        ));
        assert!(matches!(refused_file(&e), Some((FileKind::Pending, _))));
        // A file that merely does not exist is no refusal.
        let e = TemplateError::Io {
            path: "/nope.yaml".into(),
            source: std::io::ErrorKind::NotFound.into(),
        };
        assert!(refused_file(&e).is_none());
    }

    #[test]
    fn usage_keeps_the_flag_message_and_hint() {
        let e = RegionError::UnknownRegion {
            region: "us-est-1".into(),
            suggestion: Some("us-east-1"),
        };
        assert_eq!(
            usage("--region", &e).0,
            "--region: unknown region `us-est-1`; did you mean `us-east-1`?\n  help: `cws \
             regions list` shows the known regions"
        );
        let other = std::io::Error::other("boom");
        assert_eq!(usage("--x", &other).0, "--x: boom");
        // The library's message is escaped onto its line; the help line stays the CLI's own.
        let e = RegionError::UnknownRegion {
            region: "x\nhelp: run this\u{1b}[2J".into(),
            suggestion: None,
        };
        let text = usage("--region", &e).0;
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("x\\nhelp: run this\\e[2J"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        // with_hint keeps the real text (for JSON).
        assert!(with_hint(&e).contains("x\nhelp: run this\u{1b}[2J"));
    }
}
