//! A rule violation found on parsed data, before it has a file position.
//!
//! Checks report an [`Issue`] naming the key path at fault; [`locate`] turns
//! it into a [`TemplateError::Invalid`] by looking the path up in the source
//! of the document(s) it came from. Keeping the two apart lets the same
//! checks run on a single file and on an inheritance-merged template, where
//! the offending value may live in a parent file.
//!
//! Checks report every issue they find, not just the first; [`locate_all`]
//! places them all and orders them by file, line and column, so a file's
//! problems are reported together.

use crate::TemplateError;
use crate::locate::{Locator, Pos, Seg};

/// Whether an issue is about a key (unknown or missing field) or its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    Key,
    Value,
}

/// A rule violation at a key path.
#[derive(Debug, Clone)]
pub(crate) struct Issue {
    pub path: Vec<Seg>,
    pub at: At,
    pub message: String,
    pub hint: Option<String>,
    /// Other key paths the rule looked at to decide (for a rule relating two
    /// fields, e.g. `ami_required` and the AMI sources). Such an issue is
    /// not reported when one of those values was set aside as malformed, or
    /// when a child template is checked without its parents.
    pub reads: Vec<Vec<Seg>>,
}

impl Issue {
    /// An issue with the key at `path` (e.g. an unknown field).
    pub(crate) fn key(path: &[Seg], message: impl Into<String>) -> Self {
        Issue {
            path: path.to_vec(),
            at: At::Key,
            message: message.into(),
            hint: None,
            reads: Vec::new(),
        }
    }

    /// An issue with the value at `path` (e.g. a malformed AMI id).
    pub(crate) fn value(path: &[Seg], message: impl Into<String>) -> Self {
        Issue {
            path: path.to_vec(),
            at: At::Value,
            message: message.into(),
            hint: None,
            reads: Vec::new(),
        }
    }

    /// Adds a "help:" line.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Records another key path the rule depends on (see [`Issue::reads`]).
    pub(crate) fn reads(mut self, path: &[Seg]) -> Self {
        self.reads.push(path.to_vec());
        self
    }

    /// True when the issue is about `path` or something inside it or around
    /// it, or depends on such a value.
    pub(crate) fn touches(&self, path: &[Seg]) -> bool {
        let overlap = |p: &[Seg]| p.starts_with(path) || path.starts_with(p);
        overlap(&self.path) || self.reads.iter().any(|r| overlap(r))
    }

    /// Adds a "help:" line when there is one.
    pub(crate) fn maybe_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

/// A document's label (file name) and its locator.
pub(crate) type Source<'a> = (&'a str, &'a Locator);

/// Places `issue` in the first of `sources` that mentions its path (the
/// child first, then its parents); when none does, at the nearest parent
/// key that one of them mentions; failing everything, at the top of the
/// first source.
pub(crate) fn locate(issue: Issue, sources: &[Source<'_>]) -> TemplateError {
    let (_, file, pos) = find(&issue, sources);
    TemplateError::Invalid {
        file: file.to_string(),
        line: pos.line,
        column: pos.column,
        message: issue.message,
        hint: issue.hint,
    }
}

/// Places every issue like [`locate`] and reports them together: nothing
/// for none, the [`TemplateError::Invalid`] for one, a
/// [`TemplateError::InvalidMany`] for more. They are ordered by file (in
/// `sources` order: the child first), then line, then column; issues found
/// in the same order at the same place keep their order, and an issue
/// reported twice (same place, same words) is reported once.
pub(crate) fn locate_all(issues: Vec<Issue>, sources: &[Source<'_>]) -> Option<TemplateError> {
    let mut placed: Vec<(usize, Pos, &str, Issue)> = issues
        .into_iter()
        .map(|issue| {
            let (index, file, pos) = find(&issue, sources);
            (index, pos, file, issue)
        })
        .collect();
    placed.sort_by_key(|(index, pos, _, _)| (*index, pos.line, pos.column));
    placed.dedup_by(|b, a| {
        (a.0, a.1, &a.3.message, &a.3.hint) == (b.0, b.1, &b.3.message, &b.3.hint)
    });
    let mut errors: Vec<TemplateError> = placed
        .into_iter()
        .map(|(_, pos, file, issue)| TemplateError::Invalid {
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
            message: issue.message,
            hint: issue.hint,
        })
        .collect();
    match errors.len() {
        0 => None,
        1 => Some(errors.remove(0)),
        _ => Some(TemplateError::InvalidMany {
            file: sources
                .first()
                .map_or("<template>", |(f, _)| *f)
                .to_string(),
            errors,
        }),
    }
}

/// Where `issue` is written: the index of its source, the source's label
/// and the position (see [`locate`]).
fn find<'a>(issue: &Issue, sources: &[Source<'a>]) -> (usize, &'a str, Pos) {
    for len in (0..=issue.path.len()).rev() {
        let prefix = &issue.path[..len];
        for (index, (file, loc)) in sources.iter().enumerate() {
            let pos = if len == issue.path.len() && issue.at == At::Value {
                loc.value(prefix).or_else(|| loc.key(prefix))
            } else {
                loc.key(prefix).or_else(|| loc.value(prefix))
            };
            if let Some(pos) = pos {
                return (index, file, pos);
            }
        }
    }
    let file = sources.first().map_or("<template>", |(f, _)| *f);
    (0, file, Pos { line: 1, column: 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_back_to_nearest_parent_then_parent_file() {
        let child = Locator::new("slug: c\nami_config:\n  strategy: ami_required\n");
        let parent = Locator::new("slug: p\ntags:\n  team: x\n");
        let sources = [("child.yaml", &child), ("parent.yaml", &parent)];
        let path = [Seg::from("ami_config"), Seg::from("ami_search")];
        match locate(Issue::key(&path, "m"), &sources) {
            TemplateError::Invalid {
                file, line, column, ..
            } => assert_eq!((file.as_str(), line, column), ("child.yaml", 2, 1)),
            other => panic!("{other}"),
        }
        let path = [Seg::from("tags"), Seg::from("team")];
        match locate(Issue::value(&path, "m"), &sources) {
            TemplateError::Invalid {
                file, line, column, ..
            } => assert_eq!((file.as_str(), line, column), ("parent.yaml", 3, 9)),
            other => panic!("{other}"),
        }
        match locate(Issue::value(&[Seg::from("nowhere")], "m"), &sources) {
            TemplateError::Invalid { file, line, .. } => {
                assert_eq!((file.as_str(), line), ("child.yaml", 1))
            }
            other => panic!("{other}"),
        }
    }
}
