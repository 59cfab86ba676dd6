//! Structural checks driven by the generated JSON Schema.
//!
//! Before a document is turned into a [`crate::Template`] it is walked
//! against [`crate::json_schema`]: unknown fields (with a did-you-mean),
//! missing required fields, wrong kinds of value, unknown enum values (with
//! the allowed list) and out-of-range numbers are all reported here, each
//! with the key path at fault so it can be given a line and column. Every
//! problem is reported, not just the first; below a value of the wrong kind
//! nothing more is checked.
//!
//! Walking the schema rather than hand-written field lists means the checks
//! follow the types automatically. Only the keywords our schema uses are
//! interpreted: `$ref`, `anyOf`/`oneOf`, `const`, `enum`, `type`,
//! `properties`, `additionalProperties`, `required`, `if`/`then` (with
//! `required`/`not` conditions), `items`, `minimum`, `maximum`. String
//! formats and patterns are left to [`crate::validate`], which gives better
//! messages for them.

use serde_json::Value as Json;
use serde_norway::Value as Yaml;

use crate::issue::Issue;
use crate::locate::{DisplayPath, Seg};
use cws_util::suggest::{did_you_mean, quoted_list};

/// Checks `value` (a whole template document) against the schema; returns
/// every problem, in document order (empty when it conforms).
pub(crate) fn check(value: &Yaml) -> Vec<Issue> {
    let root = crate::schema::cached();
    let walker = Walker { root };
    let mut out = Vec::new();
    walker.walk(root, value, &mut Vec::new(), &mut out);
    out
}

struct Walker<'a> {
    root: &'a Json,
}

/// Describes a YAML value for "found ..." in messages.
pub(crate) fn found(value: &Yaml) -> String {
    match value {
        Yaml::Null => "an empty value".to_string(),
        Yaml::Bool(b) => format!("`{b}`"),
        Yaml::Number(n) => format!("the number `{n}`"),
        Yaml::String(s) => format!("`{}`", clip(s)),
        Yaml::Sequence(_) => "a list".to_string(),
        Yaml::Mapping(_) => "a mapping".to_string(),
        Yaml::Tagged(t) => format!("a value tagged `{}`", t.tag),
    }
}

/// Shortens long strings for messages.
pub(crate) fn clip(s: &str) -> String {
    let one_line = s.lines().next().unwrap_or("");
    let mut out: String = one_line.chars().take(60).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

fn kind(value: &Yaml) -> &'static str {
    match value {
        Yaml::Null => "null",
        Yaml::Bool(_) => "boolean",
        Yaml::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Yaml::Number(_) => "number",
        Yaml::String(_) => "string",
        Yaml::Sequence(_) => "array",
        Yaml::Mapping(_) => "object",
        Yaml::Tagged(_) => "tagged",
    }
}

fn types_of(schema: &Json) -> Vec<&str> {
    match schema.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    }
}

fn describe_type(t: &str) -> &'static str {
    match t {
        "string" => "text",
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "`true` or `false`",
        "array" => "a list",
        "object" => "a mapping",
        _ => "a value",
    }
}

fn field_name(path: &[Seg]) -> String {
    format!("`{}`", DisplayPath(path))
}

/// Extra advice for a missing required field.
fn missing_hint(field: &str) -> Option<String> {
    Some(match field {
        "owners" => "trusted owners are required; use `self` for your own account".to_string(),
        "name" => "add a display name, e.g. `name: My Workstation`".to_string(),
        "slug" => "add a short id, e.g. `slug: my-workstation` (lowercase letters, digits and `-`)"
            .to_string(),
        "version" => "add a semantic version, e.g. `version: 1.0.0`".to_string(),
        "base" => format!(
            "add the OS image family, one of {}",
            quoted_list(crate::KNOWN_BASES.iter().copied())
        ),
        _ => return None,
    })
}

/// True when `value` satisfies the (small) condition schemas used in
/// `if`: `required` and `not`.
fn matches(cond: &Json, value: &Yaml) -> bool {
    if let Some(req) = cond.get("required").and_then(Json::as_array) {
        let Yaml::Mapping(map) = value else {
            return false;
        };
        if !req
            .iter()
            .filter_map(Json::as_str)
            .all(|f| map.contains_key(f))
        {
            return false;
        }
    }
    if let Some(not) = cond.get("not") {
        return !matches(not, value);
    }
    true
}

/// The fields `schema` requires of `value` (`required`, plus `then.required`
/// when the `if` condition holds).
fn required_fields<'s>(schema: &'s Json, value: &Yaml) -> Vec<&'s str> {
    let mut required: Vec<&str> = schema
        .get("required")
        .and_then(Json::as_array)
        .map(|r| r.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    if let (Some(cond), Some(then)) = (schema.get("if"), schema.get("then"))
        && matches(cond, value)
        && let Some(extra) = then.get("required").and_then(Json::as_array)
    {
        required.extend(extra.iter().filter_map(Json::as_str));
    }
    required
}

fn is_required(schema: &Json, value: &Yaml, field: &str) -> bool {
    required_fields(schema, value).contains(&field)
}

impl<'a> Walker<'a> {
    fn resolve(&self, mut schema: &'a Json) -> &'a Json {
        // Bounded: our schema never chains more than one `$ref`.
        for _ in 0..8 {
            let Some(r) = schema.get("$ref").and_then(Json::as_str) else {
                break;
            };
            match r
                .strip_prefix("#/$defs/")
                .and_then(|name| self.root.get("$defs").and_then(|d| d.get(name)))
            {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    /// The allowed string values when `schema` is an enumeration
    /// (`enum`, `const`, or `oneOf`/`anyOf` of those).
    fn enum_values(&self, schema: &'a Json) -> Option<Vec<&'a str>> {
        let schema = self.resolve(schema);
        if let Some(values) = schema.get("enum").and_then(Json::as_array) {
            return Some(values.iter().filter_map(Json::as_str).collect());
        }
        if let Some(c) = schema.get("const").and_then(Json::as_str) {
            return Some(vec![c]);
        }
        let branches = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Json::as_array)?;
        let mut out = Vec::new();
        for b in branches {
            out.extend(self.enum_values(b)?);
        }
        Some(out)
    }

    fn allows_null(&self, schema: &'a Json) -> bool {
        let schema = self.resolve(schema);
        types_of(schema).contains(&"null")
    }

    /// Checks `value` against `schema`, adding every problem to `out`.
    fn walk(&self, schema: &'a Json, value: &Yaml, path: &mut Vec<Seg>, out: &mut Vec<Issue>) {
        let schema = self.resolve(schema);

        if let Some(branches) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array)
        {
            if value.is_null() && branches.iter().any(|b| self.allows_null(b)) {
                return;
            }
            let non_null: Vec<&Json> = branches
                .iter()
                .filter(|b| types_of(self.resolve(b)) != ["null"])
                .collect();
            if let Some(allowed) = self.enum_values(schema) {
                out.extend(self.check_enum(&allowed, value, path));
                return;
            }
            if let [only] = non_null.as_slice() {
                return self.walk(only, value, path, out);
            }
            // The first branch that fits wins; when none does, the first
            // branch's problems are reported.
            let mut first_errs = None;
            for b in non_null {
                let mut errs = Vec::new();
                self.walk(b, value, path, &mut errs);
                if errs.is_empty() {
                    return;
                }
                first_errs.get_or_insert(errs);
            }
            out.extend(first_errs.unwrap_or_default());
            return;
        }

        if schema.get("enum").is_some() || schema.get("const").is_some() {
            if value.is_null() && self.allows_null(schema) {
                return;
            }
            if let Some(allowed) = self.enum_values(schema) {
                out.extend(self.check_enum(&allowed, value, path));
                return;
            }
        }

        let types = types_of(schema);
        if !types.is_empty() {
            let k = kind(value);
            let ok = types.contains(&k) || (k == "integer" && types.contains(&"number"));
            if !ok {
                out.push(self.type_mismatch(&types, value, path));
                return;
            }
            if k == "null" {
                return;
            }
        }

        match value {
            Yaml::Mapping(map) => self.walk_mapping(schema, map, value, path, out),
            Yaml::Sequence(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Seg::Index(i));
                        self.walk(item_schema, item, path, out);
                        path.pop();
                    }
                }
            }
            Yaml::Number(n) => out.extend(self.check_range(schema, n, path)),
            _ => {}
        }
    }

    fn walk_mapping(
        &self,
        schema: &'a Json,
        map: &serde_norway::Mapping,
        whole: &Yaml,
        path: &mut Vec<Seg>,
        out: &mut Vec<Issue>,
    ) {
        let props = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties");
        for (k, v) in map {
            let Some(key) = k.as_str() else {
                out.push(
                    Issue::value(
                        path,
                        format!(
                            "keys in {} must be text, found {}",
                            if path.is_empty() {
                                "a template".to_string()
                            } else {
                                field_name(path)
                            },
                            found(k)
                        ),
                    )
                    .hint("quote the key"),
                );
                continue;
            };
            path.push(Seg::Key(key.to_string()));
            match (props.and_then(|p| p.get(key)), additional) {
                // `null` for an optional field means "not set" (and, in a
                // child template, "remove the inherited value").
                (Some(_), _) if v.is_null() && !is_required(schema, whole, key) => {}
                (Some(prop), _) => self.walk(prop, v, path, out),
                (None, Some(Json::Bool(false))) => {
                    let names: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    out.push(unknown_field(key, &names, path));
                }
                (None, Some(extra)) if extra.is_object() => self.walk(extra, v, path, out),
                (None, _) => {}
            }
            path.pop();
        }

        for field in required_fields(schema, whole) {
            if !map.contains_key(field) {
                let message = if path.is_empty() {
                    format!("missing required field `{field}`")
                } else {
                    format!("missing required field `{field}` in {}", field_name(path))
                };
                out.push(Issue::key(path, message).maybe_hint(missing_hint(field)));
            }
        }
    }

    fn check_enum(&self, allowed: &[&str], value: &Yaml, path: &[Seg]) -> Option<Issue> {
        let list = quoted_list(allowed.iter().copied());
        match value.as_str() {
            Some(s) if allowed.contains(&s) => None,
            Some(s) => {
                let mut message = format!(
                    "unknown value `{}` for {}; expected one of {list}",
                    clip(s),
                    field_name(path)
                );
                if let Some(best) = did_you_mean(s, allowed.iter().copied()) {
                    message.push_str(&format!("; did you mean `{best}`?"));
                }
                Some(Issue::value(path, message))
            }
            None => Some(Issue::value(
                path,
                format!(
                    "{} must be one of {list}, found {}",
                    field_name(path),
                    found(value)
                ),
            )),
        }
    }

    fn type_mismatch(&self, types: &[&str], value: &Yaml, path: &[Seg]) -> Issue {
        let expected: Vec<&str> = types
            .iter()
            .filter(|t| **t != "null")
            .map(|t| describe_type(t))
            .collect();
        let expected = if expected.is_empty() {
            "empty".to_string()
        } else {
            expected.join(" or ")
        };
        let what = if path.is_empty() {
            "a template".to_string()
        } else {
            field_name(path)
        };
        let issue = Issue::value(
            path,
            format!("{what} must be {expected}, found {}", found(value)),
        );
        match value {
            Yaml::Number(n) if types.contains(&"string") => {
                issue.hint(format!("quote it to make it text: \"{n}\""))
            }
            Yaml::Bool(b) if types.contains(&"string") => {
                issue.hint(format!("quote it to make it text: \"{b}\""))
            }
            Yaml::String(_) | Yaml::Number(_) | Yaml::Bool(_) if types.contains(&"array") => {
                issue.hint("write a list: `[a, b]` or one `- item` per line")
            }
            Yaml::Null if types.contains(&"object") || types.contains(&"array") => {
                issue.hint("remove the key, or give it content")
            }
            Yaml::Tagged(_) => issue.hint("remove the YAML tag"),
            _ => issue,
        }
    }

    fn check_range(&self, schema: &Json, n: &serde_norway::Number, path: &[Seg]) -> Option<Issue> {
        let as_i128 = |j: Option<&Json>| -> Option<i128> {
            let j = j?;
            j.as_i64()
                .map(i128::from)
                .or_else(|| j.as_u64().map(i128::from))
        };
        let min = as_i128(schema.get("minimum"));
        let max = as_i128(schema.get("maximum"));
        let v = n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))?;
        let too_low = min.is_some_and(|m| v < m);
        let too_high = max.is_some_and(|m| v > m);
        if !too_low && !too_high {
            return None;
        }
        let range = match (min, max) {
            (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
            (Some(lo), None) => format!("at least {lo}"),
            (None, Some(hi)) => format!("at most {hi}"),
            (None, None) => String::new(),
        };
        Some(Issue::value(
            path,
            format!("{} must be {range}, found {v}", field_name(path)),
        ))
    }
}

fn unknown_field(key: &str, names: &[&str], path: &[Seg]) -> Issue {
    let parent = &path[..path.len().saturating_sub(1)];
    let mut message = if parent.is_empty() {
        format!("unknown field `{}`", clip(key))
    } else {
        format!("unknown field `{}` in {}", clip(key), field_name(parent))
    };
    if let Some(best) = did_you_mean(key, names.iter().copied()) {
        message.push_str(&format!("; did you mean `{best}`?"));
    }
    Issue::key(path, message).hint(format!(
        "valid fields here: {}",
        quoted_list(names.iter().copied())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first problem found, if any.
    fn check_str(text: &str) -> Result<(), Issue> {
        let v: Yaml = serde_norway::from_str(text).expect("test YAML parses");
        match check(&v).into_iter().next() {
            Some(issue) => Err(issue),
            None => Ok(()),
        }
    }

    const MIN: &str = "name: A\nslug: a\nversion: 1.0.0\nbase: al2023\n";

    #[test]
    fn minimal_template_passes() {
        assert!(check_str(MIN).is_ok());
    }

    #[test]
    fn unknown_field_suggests() {
        let e = check_str(&format!("{MIN}ami_config:\n  stratgy: ami_preferred\n")).unwrap_err();
        assert_eq!(
            e.message,
            "unknown field `stratgy` in `ami_config`; did you mean `strategy`?"
        );
        assert_eq!(DisplayPath(&e.path).to_string(), "ami_config.stratgy");
        let e = check_str(&format!("{MIN}descripton: x\n")).unwrap_err();
        assert_eq!(
            e.message,
            "unknown field `descripton`; did you mean `description`?"
        );
    }

    #[test]
    fn enum_values_are_listed() {
        let e = check_str(&format!("{MIN}ami_config:\n  strategy: sometimes\n")).unwrap_err();
        assert!(
            e.message
                .contains("`ami_preferred`, `ami_required`, `ami_fallback`"),
            "{}",
            e.message
        );
        let e = check_str(&format!("{MIN}package_manager: yum\n")).unwrap_err();
        assert!(e.message.contains("`package_manager`"), "{}", e.message);
        let e = check_str("name: A\nslug: a\nversion: 1.0.0\nbase: ubuntu-20.04\n").unwrap_err();
        assert!(e.message.contains("`ubuntu-24.04`"), "{}", e.message);
        let e = check_str(&format!(
            "{MIN}ami_config:\n  ami_search:\n    owners: [self]\n    architectures: [arm]\n"
        ))
        .unwrap_err();
        assert_eq!(
            DisplayPath(&e.path).to_string(),
            "ami_config.ami_search.architectures[0]"
        );
        assert!(e.message.contains("did you mean `arm64`"), "{}", e.message);
    }

    #[test]
    fn required_fields_follow_inherits() {
        let e = check_str("name: A\nslug: a\nbase: al2023\n").unwrap_err();
        assert_eq!(e.message, "missing required field `version`");
        assert!(check_str("name: A\nslug: a\ninherits: b\n").is_ok());
        let e = check_str("name: A\ninherits: b\n").unwrap_err();
        assert_eq!(e.message, "missing required field `slug`");
        let e = check_str(&format!(
            "{MIN}ami_config:\n  ami_search:\n    name_pattern: x\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("`owners` in `ami_config.ami_search`"));
        assert!(e.hint.unwrap_or_default().contains("use `self`"));
    }

    #[test]
    fn kinds_and_ranges() {
        let e =
            check_str(&format!("{MIN}instance_defaults:\n  root_volume_gb: big\n")).unwrap_err();
        assert_eq!(
            e.message,
            "`instance_defaults.root_volume_gb` must be a whole number, found `big`"
        );
        let e = check_str(&format!("{MIN}instance_defaults:\n  root_volume_gb: 4\n")).unwrap_err();
        assert_eq!(
            e.message,
            "`instance_defaults.root_volume_gb` must be between 8 and 16384, found 4"
        );
        let e = check_str(&format!("{MIN}instance_defaults:\n  ports: [22, 0]\n")).unwrap_err();
        assert!(
            e.message.contains("ports[1]` must be between 1 and 65535"),
            "{}",
            e.message
        );
        let e = check_str(&format!("{MIN}tags:\n  year: 2024\n")).unwrap_err();
        assert_eq!(
            e.message,
            "`tags.year` must be text, found the number `2024`"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("quote it to make it text: \"2024\"")
        );
        let e = check_str(&format!("{MIN}packages:\n  pip: numpy\n")).unwrap_err();
        assert!(e.message.contains("must be a list"), "{}", e.message);
        let e = check_str("- a\n- b\n").unwrap_err();
        assert_eq!(e.message, "a template must be a mapping, found a list");
    }

    #[test]
    fn every_problem_is_reported_in_document_order() {
        let v: Yaml = serde_norway::from_str(
            "name: A\nversion: 1.0.0\nbase: al2023\ncolour: red\ninstance_defaults:\n  ports: [0, 22, 70000]\n  root_volume_gb: big\nami_config:\n  strategy: always\n",
        )
        .expect("test YAML parses");
        let found: Vec<(String, String)> = check(&v)
            .into_iter()
            .map(|i| (DisplayPath(&i.path).to_string(), i.message))
            .collect();
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "colour",
                "instance_defaults.ports[0]",
                "instance_defaults.ports[2]",
                "instance_defaults.root_volume_gb",
                "ami_config.strategy",
                "(top level)",
            ],
            "{found:#?}"
        );
        assert_eq!(found[5].1, "missing required field `slug`");
    }

    #[test]
    fn nulls_allowed_only_for_optional_fields() {
        assert!(check_str(&format!("{MIN}ami_config:\ndescription:\npackages:\n")).is_ok());
        let e = check_str("name: A\nslug:\nversion: 1.0.0\nbase: al2023\n").unwrap_err();
        assert!(e.message.contains("`slug` must be text"), "{}", e.message);
        let e = check_str(&format!("{MIN}packages:\n  pip: [a, null]\n")).unwrap_err();
        assert!(
            e.message.contains("`packages.pip[1]` must be text"),
            "{}",
            e.message
        );
        let e = check_str(&format!("{MIN}tags:\n  team:\n")).unwrap_err();
        assert!(
            e.message.contains("`tags.team` must be text"),
            "{}",
            e.message
        );
    }
}
