//! The bundled price book and user overrides.

use std::io::Write;

use cws_cost::{CostError, MAX_PRICE_FILE_BYTES, Money, PriceBook};
use cws_util::fs::ReadError;

fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

fn price_file_message(err: CostError) -> (String, String) {
    match err {
        CostError::InvalidPriceFile { origin, message } => (origin, message),
        other => panic!("expected InvalidPriceFile, got {other:?}"),
    }
}

#[test]
fn bundled_book_is_dated() {
    let book = PriceBook::bundled();
    assert_eq!(book.version(), "2026-11-01");
    assert!(book.overrides().is_empty());
    assert_eq!(PriceBook::default(), book);
}

#[test]
fn every_bundled_price_parses_and_is_the_us_east_1_price() {
    // Read the data file independently of the crate's parser and check that
    // every listed price comes back unchanged in us-east-1.
    let text = include_str!("../../data/prices.toml");
    let table: toml::Table = text.parse().unwrap();
    let instances = table["instances"].as_table().unwrap();
    assert!(instances.len() >= 80, "only {} types", instances.len());
    let book = PriceBook::bundled();
    for (ty, value) in instances {
        let listed = Money::parse(&value.as_float().unwrap().to_string()).unwrap();
        assert!(listed.is_positive(), "{ty}");
        assert_eq!(
            book.instance_hourly(ty, "us-east-1").unwrap(),
            listed,
            "{ty}"
        );
    }
    assert_eq!(book.instance_types().len(), instances.len());
}

#[test]
fn research_families_are_priced_at_list() {
    let book = PriceBook::bundled();
    for (ty, price) in [
        ("t3.medium", "0.0416"),
        ("t4g.medium", "0.0336"),
        ("m6i.large", "0.096"),
        ("m6i.xlarge", "0.192"),
        ("m7g.large", "0.0816"),
        ("c6i.xlarge", "0.17"),
        ("c7g.large", "0.0725"),
        ("r6i.large", "0.126"),
        ("r7g.large", "0.1071"),
        ("g5.xlarge", "1.006"),
        ("g5.2xlarge", "1.212"),
        ("g6.xlarge", "0.8048"),
    ] {
        assert_eq!(
            book.instance_hourly(ty, "us-east-1").unwrap(),
            m(price),
            "{ty}"
        );
    }
    for family in [
        "t3", "t4g", "m6i", "m7g", "c6i", "c7g", "r6i", "r7g", "g5", "g6",
    ] {
        let sizes = book
            .instance_types()
            .into_iter()
            .filter(|t| t.split_once('.').is_some_and(|(f, _)| f == family))
            .count();
        assert!(sizes >= 4, "{family} has only {sizes} sizes");
    }
}

#[test]
fn every_catalogue_region_prices_every_type() {
    let book = PriceBook::bundled();
    let types = book.instance_types();
    assert!(cws_regions::all().len() >= 30);
    for region in cws_regions::all() {
        for ty in &types {
            let price = book.instance_hourly(ty, region.code).unwrap();
            assert!(price.is_positive(), "{ty} in {}", region.code);
            let base = book.instance_hourly(ty, "us-east-1").unwrap();
            assert!(
                price >= base,
                "{ty} in {} is cheaper than us-east-1",
                region.code
            );
        }
        assert!(
            book.snapshot_gb_month(region.code).is_positive(),
            "{}",
            region.code
        );
        assert!(
            book.transfer_per_gb(region.code).is_positive(),
            "{}",
            region.code
        );
    }
}

#[test]
fn regions_are_derived_with_exact_multipliers() {
    let book = PriceBook::bundled();
    // 0.096 × 1.11 = 0.10656; 0.096 × 1.17 = 0.11232; 0.0416 × 1.59 = 0.066144.
    assert_eq!(
        book.instance_hourly("m6i.large", "eu-west-1").unwrap(),
        m("0.10656")
    );
    assert_eq!(
        book.instance_hourly("m6i.large", "us-west-1").unwrap(),
        m("0.11232")
    );
    assert_eq!(
        book.instance_hourly("t3.medium", "sa-east-1").unwrap(),
        m("0.066144")
    );
    assert_eq!(
        book.instance_hourly("m6i.large", "us-east-2").unwrap(),
        m("0.096")
    );
    assert_eq!(
        book.instance_hourly("m6i.large", "us-west-2").unwrap(),
        m("0.096")
    );
    // A catalogued region without its own row uses its continent's default
    // (il-central-1 → Middle East 1.23): 0.096 × 1.23 = 0.11808.
    if cws_regions::get("il-central-1").is_some() {
        assert_eq!(
            book.instance_hourly("m6i.large", "il-central-1").unwrap(),
            m("0.11808")
        );
    }
}

#[test]
fn lookups_are_forgiving_about_case_and_whitespace() {
    let book = PriceBook::bundled();
    assert_eq!(
        book.instance_hourly(" M6I.Large ", " us-east-1 ").unwrap(),
        m("0.096")
    );
}

#[test]
fn unknown_instance_type_suggests_a_close_one() {
    let book = PriceBook::bundled();
    match book.instance_hourly("m6i.larg", "us-east-1").unwrap_err() {
        CostError::UnknownInstanceType {
            instance_type,
            suggestion,
        } => {
            assert_eq!(instance_type, "m6i.larg");
            assert_eq!(suggestion.as_deref(), Some("m6i.large"));
        }
        other => panic!("{other:?}"),
    }
    match book
        .instance_hourly("p4d.24xlarge", "us-east-1")
        .unwrap_err()
    {
        CostError::UnknownInstanceType { suggestion, .. } => assert_eq!(suggestion, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_region_suggests_a_close_one() {
    let book = PriceBook::bundled();
    let err = book.instance_hourly("m6i.large", "us-est-1").unwrap_err();
    match &err {
        CostError::UnknownRegion { region, suggestion } => {
            assert_eq!(region, "us-est-1");
            assert_eq!(*suggestion, Some("us-east-1"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("did you mean `us-east-1`?"),
        "{err}"
    );
}

#[test]
fn snapshot_storage_is_five_cents_standard() {
    let book = PriceBook::bundled();
    assert_eq!(book.snapshot_gb_month("us-east-1"), m("0.05"));
    assert_eq!(book.snapshot_gb_month("eu-west-1"), m("0.05"));
    assert!(book.snapshot_gb_month("sa-east-1") > m("0.05"));
    // Unknown regions fall back to the standard price rather than failing.
    assert_eq!(book.snapshot_gb_month("xx-nowhere-1"), m("0.05"));
}

#[test]
fn transfer_is_priced_by_source_region() {
    let book = PriceBook::bundled();
    for region in [
        "us-east-1",
        "us-west-2",
        "ca-central-1",
        "eu-west-1",
        "eu-central-1",
    ] {
        assert_eq!(book.transfer_per_gb(region), m("0.02"), "{region}");
    }
    assert_eq!(book.transfer_per_gb("ap-southeast-1"), m("0.09"));
    assert_eq!(book.transfer_per_gb("ap-northeast-1"), m("0.09"));
    assert_eq!(book.transfer_per_gb("sa-east-1"), m("0.138"));
    assert_eq!(book.transfer_per_gb("me-south-1"), m("0.1105"));
    assert_eq!(book.transfer_per_gb("af-south-1"), m("0.147"));
    assert_eq!(book.transfer_per_gb("xx-nowhere-1"), m("0.09"));
    for region in cws_regions::all() {
        let price = book.transfer_per_gb(region.code);
        if region.code.starts_with("ap-") {
            assert!(price > m("0.02"), "{}", region.code);
        }
    }
}

// ---------------------------------------------------------------------------
// Overrides

#[test]
fn override_one_region_only() {
    let book = PriceBook::bundled()
        .with_overrides_str(
            "[region_prices.\"eu-west-1\"]\n\"m6i.large\" = 0.1\n",
            "one.toml",
        )
        .unwrap();
    assert_eq!(
        book.instance_hourly("m6i.large", "eu-west-1").unwrap(),
        m("0.1")
    );
    assert_eq!(
        book.instance_hourly("m6i.large", "us-east-1").unwrap(),
        m("0.096")
    );
    assert_eq!(
        book.instance_hourly("m6i.large", "eu-west-2").unwrap(),
        m("0.11136")
    );
    assert_eq!(book.version(), "2026-11-01+overrides");
    assert_eq!(book.overrides(), ["one.toml"]);
}

#[test]
fn override_all_regions_scales_the_new_price() {
    let book = PriceBook::bundled()
        .with_overrides_str(
            "version = \"lab\"\n[instances]\n\"m6i.large\" = \"0.08\"\n",
            "all.toml",
        )
        .unwrap();
    assert_eq!(book.version(), "2026-11-01+lab");
    let bundled = PriceBook::bundled();
    for region in cws_regions::all() {
        let new = book.instance_hourly("m6i.large", region.code).unwrap();
        let old = bundled.instance_hourly("m6i.large", region.code).unwrap();
        assert!(new < old, "{}", region.code);
    }
    assert_eq!(
        book.instance_hourly("m6i.large", "us-east-1").unwrap(),
        m("0.08")
    );
    assert_eq!(
        book.instance_hourly("m6i.large", "eu-west-1").unwrap(),
        m("0.0888")
    );
    // Other types are untouched.
    assert_eq!(
        book.instance_hourly("m6i.xlarge", "eu-west-1").unwrap(),
        m("0.21312")
    );
}

#[test]
fn a_later_all_regions_override_replaces_earlier_regional_prices() {
    let book = PriceBook::bundled()
        .with_overrides_str(
            "[region_prices.\"eu-west-1\"]\n\"m6i.large\" = 0.5\n",
            "first.toml",
        )
        .unwrap()
        .with_overrides_str("[instances]\n\"m6i.large\" = 0.1\n", "second.toml")
        .unwrap();
    assert_eq!(
        book.instance_hourly("m6i.large", "eu-west-1").unwrap(),
        m("0.111")
    );
    assert_eq!(book.overrides(), ["first.toml", "second.toml"]);
    assert_eq!(book.version(), "2026-11-01+overrides+overrides");
}

#[test]
fn override_can_add_types_and_region_only_types_say_where_they_are_priced() {
    let book = PriceBook::bundled()
        .with_overrides_str(
            "[instances]\n\"p5.48xlarge\" = 98.32\n[region_prices.us-west-2]\n\"trn1.32xlarge\" = 21.5\n",
            "add.toml",
        )
        .unwrap();
    assert_eq!(
        book.instance_hourly("p5.48xlarge", "us-east-1").unwrap(),
        m("98.32")
    );
    assert!(book.instance_types().contains(&"p5.48xlarge"));
    assert!(book.instance_types().contains(&"trn1.32xlarge"));
    assert_eq!(
        book.instance_hourly("trn1.32xlarge", "us-west-2").unwrap(),
        m("21.5")
    );
    match book
        .instance_hourly("trn1.32xlarge", "us-east-1")
        .unwrap_err()
    {
        CostError::NoPriceInRegion {
            instance_type,
            region,
            priced_in,
        } => {
            assert_eq!(instance_type, "trn1.32xlarge");
            assert_eq!(region, "us-east-1");
            assert_eq!(priced_in, ["us-west-2"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn override_multipliers_snapshot_and_transfer() {
    let text = r#"
[multipliers.regions]
ap-southeast-1 = 1.5
[multipliers.continents]
europe = 2
[snapshot]
gb_month = "0.045"
[snapshot.regions]
eu-west-1 = 0.06
[transfer]
default = 0.2
[transfer.continents]
asia_pacific = 0.12
[transfer.regions]
us-east-1 = 0
"#;
    let book = PriceBook::bundled()
        .with_overrides_str(text, "mix.toml")
        .unwrap();
    assert_eq!(
        book.instance_hourly("m6i.large", "ap-southeast-1").unwrap(),
        m("0.144")
    );
    // eu-west-1 keeps its own row; the continent default only affects regions without one.
    assert_eq!(
        book.instance_hourly("m6i.large", "eu-west-1").unwrap(),
        m("0.10656")
    );
    assert_eq!(book.snapshot_gb_month("us-east-1"), m("0.045"));
    assert_eq!(book.snapshot_gb_month("eu-west-1"), m("0.06"));
    assert_eq!(book.transfer_per_gb("ap-northeast-1"), m("0.12"));
    assert_eq!(book.transfer_per_gb("ap-south-1"), m("0.086"));
    assert_eq!(book.transfer_per_gb("us-east-1"), Money::ZERO);
    assert_eq!(book.transfer_per_gb("xx-nowhere-1"), m("0.2"));
}

#[test]
fn override_from_a_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[region_prices.\"us-east-1\"]\n\"g5.xlarge\" = 0.9").unwrap();
    let book = PriceBook::bundled()
        .with_overrides_file(file.path())
        .unwrap();
    assert_eq!(
        book.instance_hourly("g5.xlarge", "us-east-1").unwrap(),
        m("0.9")
    );
    assert_eq!(book.overrides(), [file.path().display().to_string()]);
}

#[test]
fn missing_override_file_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = PriceBook::bundled().with_overrides_file(&path).unwrap_err();
    assert!(matches!(err, CostError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.toml"), "{err}");
}

#[test]
fn override_file_over_the_limit_or_not_a_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.toml");
    // Sparse: refused by its size, so nothing is read or written.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(MAX_PRICE_FILE_BYTES + 1)
        .unwrap();
    let err = PriceBook::bundled().with_overrides_file(&path).unwrap_err();
    assert!(
        matches!(&err, CostError::Refused(ReadError::TooLarge { path: p, limit })
            if p == &path && *limit == MAX_PRICE_FILE_BYTES),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(shown.contains("prices.toml"), "{shown}");
    assert!(shown.contains("1 MiB"), "{shown}");

    let err = PriceBook::bundled()
        .with_overrides_file(dir.path())
        .unwrap_err();
    assert!(
        matches!(err, CostError::Refused(ReadError::NotAFile { .. })),
        "{err:?}"
    );
    #[cfg(unix)]
    assert!(matches!(
        PriceBook::bundled().with_overrides_file(std::path::Path::new("/dev/zero")),
        Err(CostError::Refused(ReadError::NotAFile { .. }))
    ));
}

#[test]
fn bad_top_level_key_names_file_line_column_and_expected_keys() {
    let err = PriceBook::bundled()
        .with_overrides_str(
            "version = \"x\"\n\n[instance]\n\"m6i.large\" = 0.1\n",
            "prices.toml",
        )
        .unwrap_err();
    let shown = err.to_string();
    let (origin, message) = price_file_message(err);
    assert_eq!(origin, "prices.toml");
    assert!(message.starts_with("line 3, column 2:"), "{message}");
    assert!(message.contains("unknown field `instance`"), "{message}");
    assert!(message.contains("`instances`"), "{message}");
    assert!(
        shown.starts_with("invalid price file prices.toml: line 3"),
        "{shown}"
    );
}

#[test]
fn bad_nested_key_is_located() {
    let err = PriceBook::bundled()
        .with_overrides_str("[snapshot]\ngb_mnth = 0.05\n", "p.toml")
        .unwrap_err();
    let (_, message) = price_file_message(err);
    assert!(message.starts_with("line 2, column 1:"), "{message}");
    assert!(message.contains("unknown field `gb_mnth`"), "{message}");
    assert!(message.contains("`gb_month`"), "{message}");
}

#[test]
fn unknown_region_key_is_located_with_a_suggestion() {
    let err = PriceBook::bundled()
        .with_overrides_str(
            "[multipliers.regions]\nus-east-1 = 1.0\neu-wst-1 = 1.2\n",
            "p.toml",
        )
        .unwrap_err();
    let (_, message) = price_file_message(err);
    assert!(message.starts_with("line 3, column 1:"), "{message}");
    assert!(
        message.contains("unknown region `eu-wst-1` in [multipliers.regions]"),
        "{message}"
    );
    assert!(message.contains("did you mean `eu-west-1`?"), "{message}");

    let err = PriceBook::bundled()
        .with_overrides_str(
            "[region_prices.\"mars-north-1\"]\n\"m6i.large\" = 1\n",
            "p.toml",
        )
        .unwrap_err();
    let (_, message) = price_file_message(err);
    assert!(message.starts_with("line 1, column 16:"), "{message}");
    assert!(
        message.contains("unknown region `mars-north-1`"),
        "{message}"
    );
}

#[test]
fn misspelt_instance_type_key_is_rejected_with_a_suggestion() {
    let err = PriceBook::bundled()
        .with_overrides_str("[instances]\n\"m6i.larg\" = 0.1\n", "p.toml")
        .unwrap_err();
    let (_, message) = price_file_message(err);
    assert!(message.starts_with("line 2, column 1:"), "{message}");
    assert!(
        message.contains("`m6i.larg` in [instances] is not an EC2 instance type"),
        "{message}"
    );
    assert!(message.contains("did you mean `m6i.large`?"), "{message}");
}

#[test]
fn unquoted_dotted_instance_type_gets_a_quoting_hint() {
    let err = PriceBook::bundled()
        .with_overrides_str("[instances]\nm6i.large = 0.1\n", "p.toml")
        .unwrap_err();
    let (_, message) = price_file_message(err);
    assert!(message.starts_with("line 2, column 1:"), "{message}");
    assert!(
        message.contains("quote instance types, e.g. \"m6i.large\" = 0.096"),
        "{message}"
    );
}

#[test]
fn bad_values_are_located_and_explained() {
    for (text, line_col, needle) in [
        (
            "[instances]\n\"m6i.large\" = -0.1\n",
            "line 2, column 1:",
            "must be above zero",
        ),
        (
            "[instances]\n\"m6i.large\" = 0\n",
            "line 2, column 1:",
            "must be above zero",
        ),
        (
            "[instances]\n\"m6i.large\" = \"cheap\"\n",
            "line 2, column 1:",
            "invalid amount `cheap`",
        ),
        (
            "[instances]\n\"m6i.large\" = true\n",
            "line 2, column 1:",
            "found a boolean",
        ),
        (
            "[instances]\n\"m6i.large\" = 0.00000001\n",
            "line 2, column 1:",
            "more than 6 decimal places",
        ),
        (
            "[transfer.regions]\nus-east-1 = -0.02\n",
            "line 2, column 1:",
            "must be zero or more",
        ),
        (
            "[snapshot]\ngb_month = -1\n",
            "line 2, column 12:",
            "must be zero or more",
        ),
        (
            "[multipliers.continents]\neurope = 0\n",
            "line 2, column 1:",
            "must be above zero",
        ),
        (
            "[transfer.continents]\neurop = 0.02\n",
            "line 2, column 1:",
            "did you mean `europe`?",
        ),
        ("version = 3\n", "line 1, column 11:", "string"),
    ] {
        let err = PriceBook::bundled()
            .with_overrides_str(text, "p.toml")
            .unwrap_err();
        let (_, message) = price_file_message(err);
        assert!(message.starts_with(line_col), "{text:?}: {message}");
        assert!(message.contains(needle), "{text:?}: {message}");
    }
}

#[test]
fn toml_syntax_errors_carry_line_and_column() {
    let err = PriceBook::bundled()
        .with_overrides_str("[instances]\n\"m6i.large\" = [0.1\n", "p.toml")
        .unwrap_err();
    let (origin, message) = price_file_message(err);
    assert_eq!(origin, "p.toml");
    assert!(message.starts_with("line 2, column 19:"), "{message}");
    assert!(message.contains("expected `]`"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn a_rejected_override_leaves_no_partial_changes_behind() {
    // The first key is fine, the second is not: the error must come before
    // anything is merged (callers keep their own copy of the book).
    let original = PriceBook::bundled();
    let err = original
        .clone()
        .with_overrides_str(
            "[instances]\n\"m6i.large\" = 0.01\n\"m6i.xlarg\" = 0.2\n",
            "p.toml",
        )
        .unwrap_err();
    assert!(matches!(err, CostError::InvalidPriceFile { .. }));
    assert_eq!(
        original.instance_hourly("m6i.large", "us-east-1").unwrap(),
        m("0.096")
    );
}

#[test]
fn empty_override_changes_nothing_but_is_recorded() {
    let book = PriceBook::bundled()
        .with_overrides_str("# nothing\n", "empty.toml")
        .unwrap();
    assert_eq!(book.instance_types(), PriceBook::bundled().instance_types());
    assert_eq!(book.version(), "2026-11-01+overrides");
}

#[test]
fn a_complete_book_must_cover_every_region() {
    let err =
        PriceBook::from_toml_str("[instances]\n\"t3.micro\" = 0.01\n", "mine.toml").unwrap_err();
    let (origin, message) = price_file_message(err);
    assert_eq!(origin, "mine.toml");
    for needle in [
        "`version`",
        "`gb_month` in [snapshot]",
        "`default` in [transfer]",
        "`africa` in [multipliers.continents]",
    ] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
}
