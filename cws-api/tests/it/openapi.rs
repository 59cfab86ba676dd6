//! The committed OpenAPI document is the one the code generates.

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated = cws_api::openapi::document();
    if std::env::var_os("CWS_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("writing openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let diff = similar::TextDiff::from_lines(&committed, &generated)
            .unified_diff()
            .header("cws-api/openapi.json (committed)", "generated")
            .to_string();
        panic!(
            "cws-api/openapi.json is out of date:\n{diff}\nrefresh it with: \
             CWS_UPDATE_OPENAPI=1 cargo test -p cws-api --test it openapi"
        );
    }
}
