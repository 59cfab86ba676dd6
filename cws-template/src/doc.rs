//! From text to a validated [`Template`]: the parsing pipeline and the
//! inheritance merge.
//!
//! 1. The YAML parser reads the text into a generic value (syntax errors
//!    carry the parser's own line and column). `<<` merge keys are applied.
//! 2. [`Locator`] indexes where every key and value is written.
//! 3. `version` is checked as semver, then [`crate::structure`] checks the
//!    document against the JSON Schema (unknown fields, kinds, enums).
//! 4. For a chain child → parent → ..., the documents are merged
//!    ([`merge`]), converted to a [`Template`], and checked by
//!    [`crate::validate`]. Any problem is placed in the first file of the
//!    chain that writes the offending key.
//!
//! Every problem of a file is reported at once ([`locate_all`]): a YAML
//! syntax error stops everything (there is nothing to check), but problems
//! of shape and broken rules are collected together. When the shape is
//! wrong, the malformed values are set aside ([`set_aside`]) and the rules
//! run on the rest, so a misspelt field and a bad AMI id three lines away
//! are reported by the same run.

use serde_norway::{Mapping, Value};

use crate::TemplateError;
use crate::issue::{Issue, Source, locate, locate_all};
use crate::locate::{Locator, Pos, Seg};
use crate::model::Template;
use crate::structure::found;

/// One parsed, structurally valid template document (not yet merged).
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    /// The label used in error messages (a path, or `bundled/<file>`).
    pub label: String,
    pub value: Mapping,
    pub locator: Locator,
    /// The defaults filled in where the file was terse (a slug from the file name, a version,
    /// a base), each as a sentence.
    pub notes: Vec<String>,
}

/// The version a template without one gets.
pub const DEFAULT_VERSION: &str = "1.0.0";
/// The base a template without one (and without a parent) gets.
pub const DEFAULT_BASE: &str = "ubuntu-24.04";

/// A slug made from a file name: lowercase, anything but letters and digits turned into `-`,
/// runs of `-` collapsed, none at the ends, at most 64 characters; `None` when nothing is left.
pub(crate) fn slug_from_label(label: &str) -> Option<String> {
    let name = std::path::Path::new(label).file_stem()?.to_str()?;
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(64).collect();
    let slug = slug.trim_end_matches('-').to_string();
    (!slug.is_empty()).then_some(slug)
}

/// Fills the fields a terse file leaves out (the guide's templates give only `name` and
/// `ami_config`): `slug` from the file name, and, for a template without a parent, `version`
/// and `base`. Returns what was filled in, as notes.
fn fill_defaults(value: &mut Mapping, label: &str) -> Vec<String> {
    let mut notes = Vec::new();
    if !value.contains_key("slug")
        && let Some(slug) = slug_from_label(label)
    {
        notes.push(format!("`slug` is not set: `{slug}`, from the file name"));
        value.insert(Value::from("slug"), Value::from(slug));
    }
    if value.contains_key("inherits") {
        return notes;
    }
    if !value.contains_key("version") {
        notes.push(format!("`version` is not set: {DEFAULT_VERSION}"));
        value.insert(Value::from("version"), Value::from(DEFAULT_VERSION));
    }
    if !value.contains_key("base") {
        notes.push(format!("`base` is not set: {DEFAULT_BASE}"));
        value.insert(Value::from("base"), Value::from(DEFAULT_BASE));
    }
    notes
}

/// Removes serde_norway's " at line L column C" decorations (we report the
/// position ourselves, in `file:line:col` form).
fn strip_positions(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(" at line ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + " at line ".len()..];
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        let after = &tail[digits..];
        if digits > 0
            && let Some(col) = after.strip_prefix(" column ")
        {
            let col_digits = col.chars().take_while(char::is_ascii_digit).count();
            if col_digits > 0 {
                rest = &col[col_digits..];
                continue;
            }
        }
        out.push_str(" at line ");
        rest = tail;
    }
    out.push_str(rest);
    out
}

impl Doc {
    /// Parses and structurally checks one document. `label` names it in
    /// errors.
    pub(crate) fn parse(text: &str, label: &str) -> Result<Doc, TemplateError> {
        let invalid = |line: usize, column: usize, message: String, hint: Option<String>| {
            TemplateError::Invalid {
                file: label.to_string(),
                line,
                column,
                message,
                hint,
            }
        };
        let mut value: Value = match serde_norway::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let (mut line, mut column) =
                    e.location().map_or((1, 1), |l| (l.line(), l.column()));
                if e.to_string().contains("duplicate entry")
                    && let Some(p) = Locator::new(text).duplicate_after(Pos { line, column })
                {
                    (line, column) = (p.line, p.column);
                }
                let has_tab = text
                    .lines()
                    .nth(line.saturating_sub(1))
                    .is_some_and(|l| l.trim_start_matches(' ').starts_with('\t'));
                let raw = e.to_string();
                let hint = if has_tab {
                    Some("YAML indentation must use spaces, not tabs".to_string())
                } else if raw.contains("mapping values are not allowed") {
                    Some(
                        "check this line's indentation, or quote a value that contains `: `".into(),
                    )
                } else if raw.contains("did not find expected key")
                    || raw.contains("did not find expected '-'")
                {
                    Some("check the indentation of this line and the lines above it".into())
                } else if raw.contains("duplicate entry") {
                    Some("each field may appear only once; remove or merge the repeated one".into())
                } else {
                    None
                };
                return Err(invalid(
                    line,
                    column,
                    format!("invalid YAML: {}", strip_positions(&raw)),
                    hint,
                ));
            }
        };
        if let Err(e) = value.apply_merge() {
            return Err(invalid(
                1,
                1,
                format!(
                    "invalid YAML merge key (`<<`): {}",
                    strip_positions(&e.to_string())
                ),
                None,
            ));
        }
        let mut value = match value {
            Value::Mapping(m) => m,
            Value::Null => {
                return Err(invalid(
                    1,
                    1,
                    "the template is empty".to_string(),
                    Some("a template needs at least `name`, `slug`, `version` and `base`".into()),
                ));
            }
            other => {
                return Err(invalid(
                    1,
                    1,
                    format!(
                        "a template must be a mapping of fields, found {}",
                        found(&other)
                    ),
                    Some("start with `name: ...` on the first line".into()),
                ));
            }
        };
        // Only a template with a name is one the defaults can complete.
        let notes = if value.contains_key("name") {
            fill_defaults(&mut value, label)
        } else {
            Vec::new()
        };
        let doc = Doc {
            label: label.to_string(),
            value,
            locator: Locator::new(text),
            notes,
        };
        let sources = [doc.source()];
        let mut checked = doc.value.clone();
        let mut issues = Vec::new();
        let mut aside = Vec::new();
        if let Some(issue) = check_version(&checked) {
            issues.push(issue);
            // Reported once: a stand-in keeps the schema from repeating it.
            checked.insert(Value::from("version"), Value::from(DEFAULT_VERSION));
            aside.push(vec![Seg::from("version")]);
        }
        issues.extend(crate::structure::check(&Value::Mapping(checked.clone())));
        if issues.is_empty() {
            return Ok(doc);
        }
        // The document is broken; its rules are checked too (on what the schema accepted), so
        // that every problem of the file is reported at once. A child's rules relating two
        // fields wait for its parents, which are not loaded here.
        let local_only = doc.inherits().is_some();
        let rules = rule_issues(checked, &issues, aside, local_only);
        issues.extend(rules);
        match locate_all(issues, &sources) {
            Some(e) => Err(e),
            None => Ok(doc),
        }
    }

    fn source(&self) -> Source<'_> {
        (self.label.as_str(), &self.locator)
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }

    /// The document's own `slug` (always present after [`Doc::parse`]).
    pub(crate) fn slug(&self) -> &str {
        self.str_field("slug").unwrap_or_default()
    }

    /// The document's own `name`.
    pub(crate) fn name(&self) -> &str {
        self.str_field("name").unwrap_or_default()
    }

    /// The parent slug, if the document inherits.
    pub(crate) fn inherits(&self) -> Option<&str> {
        self.str_field("inherits")
    }

    /// An error placed in this document.
    pub(crate) fn error(&self, issue: Issue) -> TemplateError {
        locate(issue, &[self.source()])
    }
}

/// `version` must parse as semver. Checked before the schema walk so a
/// YAML number (`version: 1.0`) gets a semver message, not a type message.
fn check_version(map: &Mapping) -> Option<Issue> {
    let at = [Seg::Key("version".to_string())];
    let hint = "use semantic versioning, MAJOR.MINOR.PATCH, e.g. `version: 1.0.0`";
    match map.get("version") {
        Some(Value::String(s)) => semver::Version::parse(s.trim()).err().map(|e| {
            Issue::value(
                &at,
                format!("invalid `version` `{}`: {e}", crate::structure::clip(s)),
            )
            .hint(hint)
        }),
        Some(Value::Number(n)) => Some(
            Issue::value(
                &at,
                format!("invalid `version` `{n}`: a semantic version has three parts"),
            )
            .hint(hint),
        ),
        _ => None,
    }
}

/// Stand-ins for the top-level fields a template cannot be read without, used only to
/// check the rules of a document that lacks them (they satisfy every rule).
const STAND_INS: [(&str, &str); 4] = [
    ("name", "template"),
    ("slug", "template"),
    ("version", DEFAULT_VERSION),
    ("base", DEFAULT_BASE),
];

/// Removes `path` (a path of mapping keys) from `map`, if it is there.
fn remove_path(map: &mut Mapping, path: &[Seg]) {
    let Some((Seg::Key(last), parents)) = path.split_last() else {
        return;
    };
    let mut here = map;
    for seg in parents {
        let Seg::Key(k) = seg else { return };
        match here.get_mut(k.as_str()) {
            Some(Value::Mapping(m)) => here = m,
            _ => return,
        }
    }
    here.remove(last.as_str());
}

/// Drops keys that are not text, at every level (the schema reports them).
fn strip_non_text_keys(map: &mut Mapping) {
    map.retain(|k, _| k.is_string());
    for (_, v) in map.iter_mut() {
        if let Value::Mapping(m) = v {
            strip_non_text_keys(m);
        }
    }
}

/// Sets aside what the schema found malformed in `map`, so the rest can be read as a
/// template: for each issue, the field at fault (a whole list, for a bad item; the mapping,
/// for one missing a required field) is removed, and a missing or removed top-level field the
/// template needs gets a stand-in. Adds the paths set aside to `aside`.
fn set_aside(map: &mut Mapping, issues: &[Issue], aside: &mut Vec<Vec<Seg>>) {
    for issue in issues {
        let keys = issue
            .path
            .iter()
            .rposition(|seg| matches!(seg, Seg::Key(_)))
            .map_or(&[][..], |i| &issue.path[..=i]);
        if !keys.is_empty() {
            remove_path(map, keys);
            aside.push(keys.to_vec());
        }
    }
    strip_non_text_keys(map);
    for (field, stand_in) in STAND_INS {
        if map.get(field).is_none_or(Value::is_null) {
            map.insert(Value::from(field), Value::from(stand_in));
            aside.push(vec![Seg::from(field)]);
        }
    }
}

/// The rule violations of a document whose shape is wrong (`structural` lists the shape's
/// problems): the rules run on what is left once the malformed values are set aside, and
/// report nothing about those values, nor anything that depends on them. With `local_only`
/// (a child checked without its parents), the rules that relate several fields are left out.
fn rule_issues(
    mut map: Mapping,
    structural: &[Issue],
    mut aside: Vec<Vec<Seg>>,
    local_only: bool,
) -> Vec<Issue> {
    set_aside(&mut map, structural, &mut aside);
    strip_nulls(&mut map);
    // A shape the schema let through but the types do not: nothing more to say than the schema did.
    let Ok(template) = serde_norway::from_value::<Template>(Value::Mapping(map)) else {
        return Vec::new();
    };
    crate::validate::check(&template)
        .into_iter()
        .filter(|i| !local_only || i.reads.is_empty())
        .filter(|i| !aside.iter().any(|p| i.touches(p)))
        .collect()
}

/// Merges `child` over `parent`, the inheritance rule:
///
/// * a mapping in both is merged key by key, recursively (so `tags`,
///   `packages`, `instance_defaults`, `ami_config` and the maps inside it
///   combine);
/// * anything else in the child (a scalar, a list) replaces the parent's —
///   lists are replaced whole, never concatenated;
/// * an explicit `null` in the child removes the inherited value (e.g.
///   `ami_config: null` makes a script template of an AMI template); nulls
///   left after merging are dropped by [`finish`] so fields take their
///   defaults.
pub(crate) fn merge(parent: &mut Mapping, child: &Mapping) {
    for (key, value) in child {
        match (parent.get_mut(key), value) {
            (_, Value::Null) => {
                parent.remove(key);
            }
            (Some(Value::Mapping(p)), Value::Mapping(c)) => merge(p, c),
            _ => {
                parent.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Removes `key: null` entries (optional fields explicitly left unset) at
/// every level, so they take their defaults.
fn strip_nulls(map: &mut Mapping) {
    map.retain(|_, v| !v.is_null());
    for (_, v) in map.iter_mut() {
        if let Value::Mapping(m) = v {
            strip_nulls(m);
        }
    }
}

/// Builds the template of `chain` (the child first, then its ancestors):
/// merge, convert, validate.
pub(crate) fn finish(chain: &[&Doc]) -> Result<Template, TemplateError> {
    let sources: Vec<Source<'_>> = chain.iter().map(|d| d.source()).collect();
    let Some((root, descendants)) = chain.split_last() else {
        return Err(TemplateError::Invalid {
            file: "<template>".into(),
            line: 1,
            column: 1,
            message: "no template document".into(),
            hint: None,
        });
    };
    let mut merged = root.value.clone();
    for doc in descendants.iter().rev() {
        merge(&mut merged, &doc.value);
    }
    let child = chain[0];
    // A child loaded without its parents (`parse_str`): the rules relating two fields wait.
    let unresolved = child.inherits().is_some() && chain.len() == 1;
    let mut issues = Vec::new();
    let mut aside = Vec::new();
    for field in ["version", "base"] {
        if merged.contains_key(field) {
            continue;
        }
        let issue = match (child.inherits(), chain.len()) {
            (Some(parent), 1) => Issue::key(
                &[],
                format!("missing field `{field}`: it would come from `{parent}`, but inheritance is not resolved here"),
            )
            .hint("load the file through a `TemplateStore`, which resolves `inherits`"),
            _ => Issue::key(
                &[],
                format!("missing required field `{field}` (set neither here nor in a parent template)"),
            ),
        };
        issues.push(issue);
        aside.push(vec![Seg::from(field)]);
    }
    strip_nulls(&mut merged);
    if chain.len() > 1 {
        issues.extend(crate::structure::check(&Value::Mapping(merged.clone())));
    }
    if !issues.is_empty() {
        // Reported with the rules the rest of the template breaks.
        let rules = rule_issues(merged.clone(), &issues, aside, unresolved);
        issues.extend(rules);
    }
    if let Some(e) = locate_all(issues, &sources) {
        return Err(e);
    }
    let template: Template = serde_norway::from_value(Value::Mapping(merged)).map_err(|e| {
        locate(
            Issue::key(
                &[],
                format!("invalid template: {}", strip_positions(&e.to_string())),
            ),
            &sources,
        )
    })?;
    let rules: Vec<Issue> = crate::validate::check(&template)
        .into_iter()
        .filter(|i| !unresolved || i.reads.is_empty())
        .collect();
    if let Some(e) = locate_all(rules, &sources) {
        return Err(e);
    }
    let mut template = template;
    template.notes = chain[0].notes.clone();
    Ok(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_positions() {
        assert_eq!(
            strip_positions(
                "did not find expected key at line 3 column 1, while parsing a block mapping at line 1 column 1"
            ),
            "did not find expected key, while parsing a block mapping"
        );
        assert_eq!(strip_positions("at line x"), "at line x");
        assert_eq!(strip_positions("foo at line 2"), "foo at line 2");
    }

    #[test]
    fn merge_rule() {
        let parent: Mapping = serde_norway::from_str(
            "a: 1\ntags: {x: '1', y: '2'}\nlist: [1, 2]\nami_config: {strategy: ami_required}\n",
        )
        .expect("yaml");
        let child: Mapping =
            serde_norway::from_str("tags: {y: '3'}\nlist: [9]\nami_config: null\nb: 2\n")
                .expect("yaml");
        let mut merged = parent.clone();
        merge(&mut merged, &child);
        let want: Mapping =
            serde_norway::from_str("a: 1\ntags: {x: '1', y: '3'}\nlist: [9]\nb: 2\n")
                .expect("yaml");
        assert_eq!(merged, want);
    }
}
