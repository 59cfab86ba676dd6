//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

use cws_util::fs::ReadError;

/// Everything that can go wrong loading, validating or finding a template.
///
/// Each message says what is wrong and carries the facts needed to fix it;
/// `Invalid` and `UnknownParent` (and each error of `InvalidMany`, which
/// holds every problem of one file) always point at a file, line and column so
/// editors and terminals can jump to them. Advice that depends on the front
/// end (which command lists the templates, which flag adds a directory) is
/// left to the front end, which has the data in the fields.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A template file is malformed or breaks a rule of the format.
    #[error("{file}:{line}:{column}: {message}{}", HelpLine(hint.as_deref()))]
    Invalid {
        /// The file (or bundled-template label) the problem is in.
        file: String,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column of the offending key or value.
        column: usize,
        /// What is wrong.
        message: String,
        /// How to fix it, when there is something useful to say.
        hint: Option<String>,
    },
    /// A template file has several problems: every one found, each a
    /// [`TemplateError::Invalid`] naming its file, line and column, ordered
    /// by line, then column (problems in the templates a child inherits
    /// from follow the child's own, file by file). Displayed one after
    /// another, each with its `help:` line. A file with a single problem is
    /// reported as that [`TemplateError::Invalid`] instead, so
    /// [`TemplateError::errors`] and [`TemplateError::count`] serve both.
    #[error("{}", Lines(errors))]
    InvalidMany {
        /// The file (or bundled-template label) that was loaded.
        file: String,
        /// Each problem, in order (at least two).
        errors: Vec<TemplateError>,
    },
    /// No template with that slug or name exists on the search path.
    #[error(
        "template `{name}` not found{}\n  searched: {}",
        DidYouMean(suggestions),
        searched.join(", ")
    )]
    NotFound {
        /// The slug or name that was asked for.
        name: String,
        /// Close slugs, best first (may be empty).
        suggestions: Vec<String>,
        /// Where the store looked, in order (e.g. `--templates /x`, `bundled`).
        searched: Vec<String>,
    },
    /// A template's `inherits` names a slug that no template on the search
    /// path has.
    #[error(
        "{file}:{line}:{column}: `inherits`: no template with slug `{parent}`{}",
        DidYouMean(&suggestions[..suggestions.len().min(1)])
    )]
    UnknownParent {
        /// The file (or bundled-template label) with the `inherits` line.
        file: String,
        /// 1-based line of the `inherits` value.
        line: usize,
        /// 1-based column of the `inherits` value.
        column: usize,
        /// The slug that was asked for.
        parent: String,
        /// Close slugs on the search path, best first (may be empty); the
        /// message names only the best.
        suggestions: Vec<String>,
    },
    /// Templates inherit from each other in a loop (fix: remove `inherits`
    /// from one of the templates named).
    #[error(
        "template inheritance cycle: {}{}",
        cycle.join(" -> "),
        if files.is_empty() { String::new() } else { format!(" (in {})", files.join(", ")) }
    )]
    InheritanceCycle {
        /// The slugs in the loop, the first repeated at the end.
        cycle: Vec<String>,
        /// The files of the templates in the loop, in the same order (bundled ones left out).
        files: Vec<String>,
    },
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}\n  help: check that the path exists and is readable", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A template file was refused before it was parsed: larger than
    /// [`MAX_TEMPLATE_BYTES`](crate::MAX_TEMPLATE_BYTES), not a regular file
    /// (a directory, a device such as `/dev/zero`, a FIFO) or not UTF-8 text.
    /// The [`ReadError`] carries the path and, for a file too large, the limit.
    #[error("template file {0}")]
    Refused(ReadError),
    /// A value given outside a template (e.g. on the command line) is not
    /// one of the allowed spellings.
    #[error("unknown {what} `{value}`{}; expected one of: {}", DidYouMean(suggestion.as_slice()), allowed.join(", "))]
    UnknownValue {
        /// What kind of value it was (e.g. `architecture`).
        what: String,
        /// The value given.
        value: String,
        /// Every accepted spelling.
        allowed: Vec<String>,
        /// The closest accepted spelling, if any is close.
        suggestion: Option<String>,
    },
}

impl From<ReadError> for TemplateError {
    /// A failed open or read stays [`TemplateError::Io`]; every refusal becomes
    /// [`TemplateError::Refused`].
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io { path, source } => TemplateError::Io { path, source },
            refused => TemplateError::Refused(refused),
        }
    }
}

impl TemplateError {
    /// Builds [`TemplateError::UnknownValue`] with a did-you-mean suggestion.
    pub(crate) fn unknown_value(what: &str, value: &str, allowed: &[&str]) -> Self {
        TemplateError::UnknownValue {
            what: what.to_string(),
            value: value.to_string(),
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            suggestion: cws_util::suggest::did_you_mean(value, allowed.iter().copied())
                .map(str::to_string),
        }
    }

    /// For `Invalid` and `UnknownParent`: the (file, line, column) it points at;
    /// for `InvalidMany`, that of its first problem.
    pub fn location(&self) -> Option<(&str, usize, usize)> {
        match self {
            TemplateError::InvalidMany { errors, .. } => {
                errors.first().and_then(TemplateError::location)
            }
            TemplateError::Invalid {
                file, line, column, ..
            }
            | TemplateError::UnknownParent {
                file, line, column, ..
            } => Some((file.as_str(), *line, *column)),
            _ => None,
        }
    }
}

impl TemplateError {
    /// The separate problems this error reports, in order: the errors of an
    /// [`InvalidMany`](TemplateError::InvalidMany), otherwise just this error.
    pub fn errors(&self) -> &[TemplateError] {
        match self {
            TemplateError::InvalidMany { errors, .. } => errors,
            other => std::slice::from_ref(other),
        }
    }

    /// How many problems this error reports (1 unless it is an
    /// [`InvalidMany`](TemplateError::InvalidMany)).
    pub fn count(&self) -> usize {
        self.errors().len()
    }
}

/// Errors one per line (each may end in its own `help:` line).
struct Lines<'a>(&'a [TemplateError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

struct HelpLine<'a>(Option<&'a str>);

impl fmt::Display for HelpLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(h) => write!(f, "\n  help: {h}"),
            None => Ok(()),
        }
    }
}

struct DidYouMean<'a>(&'a [String]);

impl fmt::Display for DidYouMean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => Ok(()),
            [one] => write!(f, "; did you mean `{one}`?"),
            many => {
                let quoted: Vec<String> = many.iter().map(|s| format!("`{s}`")).collect();
                write!(f, "; did you mean one of {}?", quoted.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_display_has_location_and_help() {
        let e = TemplateError::Invalid {
            file: "my.yaml".into(),
            line: 4,
            column: 3,
            message: "unknown field `stratgy` in `ami_config`; did you mean `strategy`?".into(),
            hint: Some("valid fields here: `strategy`".into()),
        };
        assert_eq!(
            e.to_string(),
            "my.yaml:4:3: unknown field `stratgy` in `ami_config`; did you mean `strategy`?\n  help: valid fields here: `strategy`"
        );
        assert_eq!(e.location(), Some(("my.yaml", 4, 3)));
    }

    #[test]
    fn invalid_many_shows_every_error_and_points_at_the_first() {
        let invalid = |line: usize, message: &str, hint: Option<&str>| TemplateError::Invalid {
            file: "my.yaml".into(),
            line,
            column: 3,
            message: message.into(),
            hint: hint.map(str::to_string),
        };
        let e = TemplateError::InvalidMany {
            file: "my.yaml".into(),
            errors: vec![
                invalid(2, "first", Some("fix it")),
                invalid(5, "second", None),
            ],
        };
        assert_eq!(
            e.to_string(),
            "my.yaml:2:3: first\n  help: fix it\nmy.yaml:5:3: second"
        );
        assert_eq!(e.location(), Some(("my.yaml", 2, 3)));
        assert_eq!(e.count(), 2);
        assert_eq!(e.errors()[1].to_string(), "my.yaml:5:3: second");
        let one = invalid(4, "only", None);
        assert_eq!(one.count(), 1);
        assert_eq!(one.errors()[0].to_string(), "my.yaml:4:3: only");
    }

    #[test]
    fn cycle_and_not_found_display() {
        let e = TemplateError::InheritanceCycle {
            cycle: vec!["a".into(), "b".into(), "a".into()],
            files: Vec::new(),
        };
        assert!(
            e.to_string()
                .starts_with("template inheritance cycle: a -> b -> a")
        );
        let e = TemplateError::NotFound {
            name: "pyton-ml".into(),
            suggestions: vec!["python-ml".into()],
            searched: vec!["--templates /x".into(), "bundled".into()],
        };
        let s = e.to_string();
        assert!(
            s.starts_with("template `pyton-ml` not found; did you mean `python-ml`?"),
            "{s}"
        );
        assert!(s.ends_with("searched: --templates /x, bundled"), "{s}");
        assert!(!s.contains("help:"), "{s}");
    }

    #[test]
    fn unknown_parent_display_names_the_best_suggestion_only() {
        let e = TemplateError::UnknownParent {
            file: "kid.yaml".into(),
            line: 3,
            column: 11,
            parent: "pyton-ml".into(),
            suggestions: vec!["python-ml".into(), "python-research".into()],
        };
        assert_eq!(
            e.to_string(),
            "kid.yaml:3:11: `inherits`: no template with slug `pyton-ml`; did you mean `python-ml`?"
        );
        assert_eq!(e.location(), Some(("kid.yaml", 3, 11)));
        let e = TemplateError::UnknownParent {
            file: "kid.yaml".into(),
            line: 3,
            column: 11,
            parent: "zzz".into(),
            suggestions: Vec::new(),
        };
        assert_eq!(
            e.to_string(),
            "kid.yaml:3:11: `inherits`: no template with slug `zzz`"
        );
    }
}
