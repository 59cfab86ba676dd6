//! Override file semantics and every error case, through the public API.

use std::io::Write;

use cws_regions::{EdgeSource, FallbackGraph, MAX_OVERRIDE_BYTES, RegionError};
use cws_util::fs::ReadError;

fn parse(text: &str) -> Result<FallbackGraph, RegionError> {
    FallbackGraph::from_yaml_str(text, "regions.yaml")
}

fn ok<T>(result: Result<T, RegionError>) -> T {
    result.unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

/// The full message of an `InvalidGraph` error, checking it names the file.
fn invalid(text: &str) -> String {
    match parse(text) {
        Err(err @ RegionError::InvalidGraph { .. }) => {
            let message = err.to_string();
            assert!(
                message.contains("regions.yaml"),
                "file not named: {message}"
            );
            message
        }
        other => panic!("expected InvalidGraph for {text:?}, got {other:?}"),
    }
}

#[test]
fn listed_regions_replace_edges_and_others_keep_defaults() {
    let g = ok(parse(
        "fallbacks:\n  us-east-1: [us-west-2, us-east-2]\n  eu-west-1: [eu-central-1]\n",
    ));
    assert_eq!(ok(g.fallbacks("us-east-1")), ["us-west-2", "us-east-2"]);
    assert_eq!(ok(g.source("us-east-1")), EdgeSource::Override);
    assert_eq!(ok(g.fallbacks("eu-west-1")), ["eu-central-1"]);
    assert_eq!(ok(g.source("eu-west-1")), EdgeSource::Override);

    let published = FallbackGraph::published();
    for entry in g.entries() {
        if entry.region != "us-east-1" && entry.region != "eu-west-1" {
            assert_eq!(
                ok(published.fallbacks(entry.region)),
                entry.fallbacks,
                "{} should keep its default",
                entry.region
            );
            assert_eq!(ok(published.source(entry.region)), entry.source);
        }
    }
}

#[test]
fn opt_in_regions_can_be_overridden_and_targeted() {
    let g = ok(parse(
        "fallbacks:\n  ap-southeast-3: [ap-southeast-5, ap-southeast-1]\n",
    ));
    assert_eq!(
        ok(g.fallbacks("ap-southeast-3")),
        ["ap-southeast-5", "ap-southeast-1"]
    );
    assert_eq!(ok(g.source("ap-southeast-3")), EdgeSource::Override);
}

#[test]
fn empty_list_means_no_fallbacks() {
    let g = ok(parse("fallbacks:\n  us-east-1: []\n"));
    assert!(ok(g.fallbacks("us-east-1")).is_empty());
    assert!(ok(g.walk("us-east-1", 10)).is_empty());
    assert_eq!(ok(g.source("us-east-1")), EdgeSource::Override);
}

#[test]
fn empty_documents_mean_no_overrides() {
    for text in [
        "",
        "\n",
        "# nothing yet\n",
        "~\n",
        "fallbacks:\n",
        "fallbacks: {}\n",
    ] {
        assert_eq!(ok(parse(text)), FallbackGraph::published(), "{text:?}");
    }
}

#[test]
fn block_style_lists_and_comments_are_accepted() {
    let g = ok(parse(
        "# team defaults\nfallbacks:\n  eu-north-1:   # Stockholm\n    - eu-central-1\n    - eu-west-1\n",
    ));
    assert_eq!(ok(g.fallbacks("eu-north-1")), ["eu-central-1", "eu-west-1"]);
}

#[test]
fn unknown_target_region_has_location_and_suggestion() {
    let m = invalid("fallbacks:\n  us-east-1: [us-west-2, us-est-2]\n");
    assert!(m.contains("line 2, column 26"), "{m}");
    assert!(m.contains("`us-est-2`"), "{m}");
    assert!(m.contains("fallback of `us-east-1`"), "{m}");
    assert!(m.contains("did you mean `us-east-2`?"), "{m}");
    assert!(
        !m.contains("cws "),
        "no CLI wording in a library message: {m}"
    );
    // The unknown code is data, so a front end can add its own pointer.
    match parse("fallbacks:\n  us-east-1: [us-west-2, us-est-2]\n") {
        Err(RegionError::InvalidGraph { unknown_region, .. }) => {
            assert_eq!(unknown_region.as_deref(), Some("us-est-2"));
        }
        other => panic!("expected InvalidGraph, got {other:?}"),
    }
    match parse("fallbacks:\n  mars-north-1: [us-east-1]\n") {
        Err(RegionError::InvalidGraph { unknown_region, .. }) => {
            assert_eq!(unknown_region.as_deref(), Some("mars-north-1"));
        }
        other => panic!("expected InvalidGraph, got {other:?}"),
    }
    // Other problems carry no code.
    match parse("fallbacks:\n  us-east-1: [us-east-1]\n") {
        Err(RegionError::InvalidGraph { unknown_region, .. }) => {
            assert_eq!(unknown_region, None);
        }
        other => panic!("expected InvalidGraph, got {other:?}"),
    }
}

#[test]
fn unknown_key_region_has_location_and_suggestion() {
    let m = invalid("fallbacks:\n  us-east-1: [us-west-2]\n  us-est-1: [us-west-2]\n");
    assert!(m.contains("line 3, column 3"), "{m}");
    assert!(m.contains("`us-est-1` is not a known region"), "{m}");
    assert!(m.contains("did you mean `us-east-1`?"), "{m}");
}

#[test]
fn unknown_region_far_from_anything_has_no_suggestion() {
    let m = invalid("fallbacks:\n  mars-north-1: [us-east-1]\n");
    assert!(m.contains("`mars-north-1` is not a known region"), "{m}");
    assert!(!m.contains("did you mean"), "{m}");
}

#[test]
fn self_edge_is_rejected() {
    let m = invalid("fallbacks:\n  us-east-1: [us-east-2, us-east-1]\n");
    assert!(m.contains("line 2, column 26"), "{m}");
    assert!(m.contains("`us-east-1` lists itself as a fallback"), "{m}");
    assert!(m.contains("remove `us-east-1` from its own list"), "{m}");
}

#[test]
fn duplicate_target_is_rejected() {
    let m =
        invalid("fallbacks:\n  eu-west-1:\n    - eu-west-2\n    - eu-central-1\n    - eu-west-2\n");
    assert!(m.contains("line 5, column 7"), "{m}");
    assert!(
        m.contains("`eu-west-2` appears more than once in the fallbacks of `eu-west-1`"),
        "{m}"
    );
    assert!(m.contains("list each region once"), "{m}");
}

#[test]
fn duplicate_region_key_is_rejected() {
    let m = invalid("fallbacks:\n  us-east-1: [us-west-2]\n  us-east-1: [us-east-2]\n");
    assert!(m.contains("line 3, column 3"), "{m}");
    assert!(m.contains("`us-east-1` is given more than once"), "{m}");
}

#[test]
fn malformed_yaml_reports_line_and_column() {
    let m = invalid("fallbacks:\n  us-east-1: [us-west-2\n");
    assert!(m.contains("line 3, column 1"), "{m}");
    assert!(m.contains("did not find expected"), "{m}");
    assert!(m.contains("must map each region to a list"), "{m}");

    let m = invalid("fallbacks:\n  us-east-1: us-west-2\n");
    assert!(m.contains("line 2, column 14"), "{m}");
    assert!(
        m.contains("a list of fallback regions for `us-east-1`"),
        "{m}"
    );

    let m = invalid("fallbacks:\n  us-east-1:\n");
    assert!(m.contains("line 2, column 3"), "{m}");
    assert!(m.contains("`us-east-1` has no list of fallbacks"), "{m}");
    assert!(m.contains("`us-east-1: [us-east-2]`"), "{m}");
    assert!(m.contains("`us-east-1: []` for no fallbacks"), "{m}");

    let m = invalid("fallbacks: [us-east-1]\n");
    assert!(m.contains("line 1, column 12"), "{m}");

    let m = invalid("- us-east-1\n");
    assert!(m.contains("a mapping with a `fallbacks` key"), "{m}");
}

#[test]
fn unknown_top_level_key_is_rejected() {
    let m = invalid("fallback:\n  us-east-1: [us-west-2]\n");
    assert!(m.contains("line 1, column 1"), "{m}");
    assert!(
        m.contains("unknown top-level key `fallback` (did you mean `fallbacks`?)"),
        "{m}"
    );
    assert!(m.contains("the only key allowed is `fallbacks`"), "{m}");

    let m = invalid("fallbacks:\n  us-east-1: [us-west-2]\nversion: 2\n");
    assert!(m.contains("line 3, column 1"), "{m}");
    assert!(m.contains("unknown top-level key `version`;"), "{m}");

    let m = invalid("fallbacks: {}\nfallbacks: {}\n");
    assert!(m.contains("`fallbacks` appears more than once"), "{m}");
}

#[test]
fn load_reads_files_and_names_them_in_errors() {
    let dir = ok(tempfile::tempdir().map_err(|source| RegionError::Io {
        path: std::env::temp_dir(),
        source,
    }));
    let good = dir.path().join("regions.yaml");
    let bad = dir.path().join("broken.yaml");
    let write = |path: &std::path::Path, text: &str| {
        let mut file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
        file.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    };
    write(&good, "fallbacks:\n  sa-east-1: [us-east-1]\n");
    write(&bad, "fallbacks:\n  sa-east-1: [sa-east-1]\n");

    let g = ok(FallbackGraph::load(&good));
    assert_eq!(ok(g.fallbacks("sa-east-1")), ["us-east-1"]);
    assert_eq!(ok(FallbackGraph::load_optional(&good)), g);

    match FallbackGraph::load(&bad) {
        Err(RegionError::InvalidGraph {
            origin, message, ..
        }) => {
            assert!(origin.ends_with("broken.yaml"), "{origin}");
            assert!(message.contains("line 2, column 15"), "{message}");
        }
        other => panic!("expected InvalidGraph, got {other:?}"),
    }

    let missing = dir.path().join("missing.yaml");
    match FallbackGraph::load(&missing) {
        Err(err @ RegionError::Io { .. }) => {
            assert!(err.to_string().contains("missing.yaml"), "{err}");
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert_eq!(
        ok(FallbackGraph::load_optional(&missing)),
        FallbackGraph::published()
    );

    // A directory is not a file: `load_optional` still reports it.
    assert!(matches!(
        FallbackGraph::load_optional(dir.path()),
        Err(RegionError::Refused(ReadError::NotAFile { .. }))
    ));
}

#[test]
fn an_override_file_over_the_limit_or_not_a_file_is_refused_before_reading() {
    let dir = ok(tempfile::tempdir().map_err(|source| RegionError::Io {
        path: std::env::temp_dir(),
        source,
    }));
    let huge = dir.path().join("regions.yaml");
    // Sparse: refused by its size, so nothing is read or written.
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(MAX_OVERRIDE_BYTES + 1))
        .unwrap_or_else(|e| panic!("{e}"));
    for result in [
        FallbackGraph::load(&huge),
        FallbackGraph::load_optional(&huge),
    ] {
        let Err(err) = result else {
            panic!("a file over the limit must be refused")
        };
        assert!(
            matches!(&err, RegionError::Refused(ReadError::TooLarge { path, limit })
                if path == &huge && *limit == MAX_OVERRIDE_BYTES),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("regions.yaml"), "{message}");
        assert!(message.contains("1 MiB"), "{message}");
    }
    #[cfg(unix)]
    for result in [
        FallbackGraph::load(std::path::Path::new("/dev/zero")),
        FallbackGraph::load_optional(std::path::Path::new("/dev/zero")),
    ] {
        assert!(
            matches!(&result, Err(RegionError::Refused(ReadError::NotAFile { path })) if path.ends_with("zero")),
            "{result:?}"
        );
    }
}
