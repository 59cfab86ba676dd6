//! What to do next about bad input, in `cws` terms.
//!
//! `cws-template`, `cws-regions` and `cws-cost` return the facts (the unknown name or region,
//! the close matches, the directories searched) in library-neutral messages; the commands to
//! run and the flags to pass are worded here.

use std::error::Error;

use cws_cost::CostError;
use cws_regions::RegionError;
use cws_template::TemplateError;

use crate::error::UsageError;

/// Where a user finds the region codes cws knows.
const KNOWN_REGIONS: &str = "`cws regions list` shows the known regions";

/// The hint for one cause of an error, if it is an input error of a library crate that has a
/// next step in the CLI.
pub fn hint(cause: &(dyn Error + 'static)) -> Option<String> {
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

/// `err`'s message followed by its hint on a "help:" line, as `main` prints hints: for errors
/// rendered as text outside `main` (e.g. one per file by `cws templates validate`).
pub fn with_hint(err: &(dyn Error + 'static)) -> String {
    match hint(err) {
        Some(h) => format!("{err}\n  help: {h}"),
        None => err.to_string(),
    }
}

/// A bad value for `flag` (exit 2): "FLAG: message", with the hint on a "help:" line. The
/// library error becomes text here, so its hint is worded now rather than by `main`.
pub fn usage(flag: &str, err: &(dyn Error + 'static)) -> UsageError {
    UsageError(format!("{flag}: {}", with_hint(err)))
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
    }
}
