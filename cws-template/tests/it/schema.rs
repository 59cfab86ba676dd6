//! The committed JSON Schema must match the one generated from the types.
//!
//! Refresh it with `CWS_UPDATE_SCHEMA=1 cargo test -p cws-template schema`.

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/template.schema.json")
}

#[test]
fn schema_is_up_to_date() {
    let generated = cws_template::json_schema_string();
    let path = committed_path();
    if std::env::var_os("CWS_UPDATE_SCHEMA").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create schema/");
        }
        std::fs::write(&path, &generated).expect("write schema/template.schema.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let diff = similar::TextDiff::from_lines(&committed, &generated)
            .unified_diff()
            .context_radius(3)
            .header(
                "schema/template.schema.json (committed)",
                "generated from cws-template types",
            )
            .to_string();
        panic!(
            "schema/template.schema.json is out of date with the cws-template types.\n\
             Refresh it with:\n\n    CWS_UPDATE_SCHEMA=1 cargo test -p cws-template schema\n\n{diff}"
        );
    }
}

#[test]
fn schema_is_valid_json_and_matches_the_function() {
    let text = cws_template::json_schema_string();
    let parsed: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    assert_eq!(parsed, cws_template::json_schema());
    assert_eq!(
        parsed["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}
