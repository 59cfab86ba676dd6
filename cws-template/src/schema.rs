//! The JSON Schema of the template format, generated from the types.
//!
//! The committed copy lives at `schema/template.schema.json` in the
//! workspace; a test regenerates it and fails with a diff when it drifts.
//! Editors use it through the `yaml-language-server` comment at the top of
//! each bundled template, and [`crate::structure`] walks the same schema to
//! check documents, so the two can never disagree.

use std::sync::OnceLock;

use schemars::{Schema, SchemaGenerator, json_schema};

use crate::{KNOWN_BASES, Template};

/// The semver.org suggested pattern for `MAJOR.MINOR.PATCH[-pre][+build]`.
const SEMVER_PATTERN: &str = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$";

/// Schema for `version`: a semantic-version string.
pub(crate) fn semver_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": SEMVER_PATTERN,
        "examples": ["1.0.0"]
    })
}

/// Schema for `base`: one of [`KNOWN_BASES`], so editors can complete it.
pub(crate) fn base_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": KNOWN_BASES
    })
}

/// Schema for `ami_mappings`: region codes to AMI ids, with patterns so
/// editors flag malformed ids as they are typed.
pub(crate) fn ami_mappings_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "propertyNames": { "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$" },
        "additionalProperties": {
            "type": "string",
            "pattern": "^ami-([0-9a-f]{8}|[0-9a-f]{17})$"
        }
    })
}

/// A child template (one with `inherits`) may leave `version` and `base` to
/// its parent; every other template must set them. JSON Schema says that
/// with `if`/`then`, which [`crate::structure`] understands too.
pub(crate) fn template_requirements(schema: &mut Schema) {
    if let Some(required) = schema
        .get_mut("required")
        .and_then(serde_json::Value::as_array_mut)
    {
        required.retain(|f| f != "version" && f != "base");
    }
    schema.insert(
        "if".into(),
        serde_json::json!({ "not": { "required": ["inherits"] } }),
    );
    schema.insert(
        "then".into(),
        serde_json::json!({ "required": ["version", "base"] }),
    );
}

/// The JSON Schema (draft 2020-12) of a template file.
pub fn json_schema() -> serde_json::Value {
    cached().clone()
}

/// The schema as committed to `schema/template.schema.json`: pretty-printed
/// with a trailing newline.
pub fn json_schema_string() -> String {
    // Serialising a `serde_json::Value` cannot fail (string keys only).
    let mut s = serde_json::to_string_pretty(cached()).unwrap_or_default();
    s.push('\n');
    s
}

/// The schema, generated once per process (the structural checker consults
/// it for every document).
pub(crate) fn cached() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| reorder(schemars::schema_for!(Template).to_value()))
}

/// Puts the top-level keys in reading order (`$schema`, `title`,
/// `description` first, `$defs` last) for the committed file.
fn reorder(value: serde_json::Value) -> serde_json::Value {
    const ORDER: [&str; 10] = [
        "$schema",
        "title",
        "description",
        "type",
        "properties",
        "required",
        "if",
        "then",
        "additionalProperties",
        "$defs",
    ];
    let serde_json::Value::Object(mut obj) = value else {
        return value;
    };
    let mut out = serde_json::Map::new();
    for key in ORDER {
        if let Some(v) = obj.remove(key) {
            out.insert(key.to_string(), v);
        }
    }
    out.extend(obj);
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_every_top_level_field() {
        let s = json_schema();
        let props = s["properties"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>());
        assert_eq!(
            props,
            Some(
                [
                    "name",
                    "slug",
                    "description",
                    "category",
                    "version",
                    "base",
                    "package_manager",
                    "packages",
                    "user_data",
                    "post_install",
                    "instance_defaults",
                    "tags",
                    "inherits",
                    "ami_config"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(s["required"], serde_json::json!(["name", "slug"]));
        assert_eq!(
            s["then"]["required"],
            serde_json::json!(["version", "base"])
        );
        assert_eq!(s["additionalProperties"], serde_json::json!(false));
        assert_eq!(
            s["properties"]["base"]["enum"],
            serde_json::json!(KNOWN_BASES)
        );
    }

    #[test]
    fn schema_string_is_pretty_with_newline() {
        let s = json_schema_string();
        assert!(s.starts_with("{\n"));
        assert!(s.ends_with("}\n"));
    }
}
