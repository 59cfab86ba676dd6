//! Properties: generated valid templates survive serialise → parse
//! unchanged; no input makes the parser panic; unknown fields are always
//! located on the line that wrote them.

use std::collections::BTreeMap;

use cws_template::{
    AmiConfig, AmiSearch, AmiStrategy, Architecture, FallbackStrategy, InstanceDefaults,
    KNOWN_BASES, MarketplaceRef, PackageManager, Packages, Template, parse_str,
};
use proptest::prelude::*;

const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-northeast-1",
];

/// Printable ASCII, including YAML's special characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).expect("regex")
}

/// Multi-line text, as scripts are.
fn script() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ -~\n]{0,80}").expect("regex")
}

fn slug() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9-]{0,20}"
}

fn version() -> impl Strategy<Value = semver::Version> {
    (
        0u64..100,
        0u64..100,
        0u64..100,
        prop::option::of("[a-z][a-z0-9]{0,5}"),
        prop::option::of("[a-z0-9]{1,5}"),
    )
        .prop_map(|(a, b, c, pre, build)| {
            let mut s = format!("{a}.{b}.{c}");
            if let Some(p) = pre {
                s.push_str(&format!("-{p}"));
            }
            if let Some(b) = build {
                s.push_str(&format!("+{b}"));
            }
            semver::Version::parse(&s).expect("generated semver is valid")
        })
}

fn packages() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z][a-z0-9._+=<>:-]{0,15}", 0..4)
}

fn tags() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        "[a-z][a-z0-9:_./-]{0,12}".prop_filter("aws: is reserved", |k| !k.starts_with("aws:")),
        text(20),
        0..3,
    )
}

fn instance_type() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,4}\\.[a-z0-9]{1,8}"
}

fn ami_id() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9a-f]{8}", "[0-9a-f]{17}"].prop_map(|h| format!("ami-{h}"))
}

fn architecture() -> impl Strategy<Value = Architecture> {
    prop::sample::select(Architecture::ALL.to_vec())
}

fn search() -> impl Strategy<Value = AmiSearch> {
    (
        prop::collection::vec(
            prop_oneof![
                Just("self".to_string()),
                Just("amazon".to_string()),
                Just("aws-marketplace".to_string()),
                "[0-9]{12}",
            ],
            1..3,
        ),
        prop::option::of("[a-z0-9*?-]{1,20}"),
        prop::collection::vec(architecture(), 0..3),
        tags(),
        any::<bool>(),
    )
        .prop_map(
            |(owners, name_pattern, architectures, required_tags, include_deprecated)| AmiSearch {
                owners,
                name_pattern,
                architectures,
                required_tags,
                include_deprecated,
            },
        )
}

fn marketplace() -> impl Strategy<Value = MarketplaceRef> {
    (
        prop::option::of("[a-z0-9]{10,25}"),
        prop::option::of("prod-[a-z0-9]{5,13}"),
        prop::option::of("[A-Za-z][ -~]{0,20}"),
    )
        .prop_map(|(product_code, product_id, title)| MarketplaceRef {
            product_code,
            product_id,
            title,
        })
        .prop_filter("at least one field", |m| {
            m.product_code.is_some() || m.product_id.is_some() || m.title.is_some()
        })
}

fn ami_config() -> impl Strategy<Value = AmiConfig> {
    (
        prop::sample::select(AmiStrategy::ALL.to_vec()),
        prop::collection::btree_map(prop::sample::select(REGIONS.to_vec()), ami_id(), 0..3),
        prop::option::of(search()),
        prop::option::of(marketplace()),
        prop::option::of(prop::sample::select(FallbackStrategy::ALL.to_vec())),
        prop::option::of(architecture()),
        ami_id(),
    )
        .prop_map(
            |(strategy, mappings, mut ami_search, marketplace, fallback, preferred, spare)| {
                let mut ami_mappings: BTreeMap<String, String> = mappings
                    .into_iter()
                    .map(|(r, a)| (r.to_string(), a))
                    .collect();
                if strategy == AmiStrategy::AmiRequired
                    && ami_mappings.is_empty()
                    && ami_search.is_none()
                    && marketplace.is_none()
                {
                    ami_mappings.insert("us-east-1".into(), spare);
                }
                if let (Some(p), Some(s)) = (preferred, ami_search.as_mut())
                    && !s.architectures.is_empty()
                    && !s.architectures.contains(&p)
                {
                    s.architectures.push(p);
                }
                AmiConfig {
                    strategy,
                    ami_mappings,
                    ami_search,
                    marketplace,
                    fallback_strategy: fallback,
                    preferred_architecture: preferred,
                    community: None,
                }
            },
        )
}

fn template() -> impl Strategy<Value = Template> {
    let head = (
        "[A-Za-z][ -~]{0,30}",
        slug(),
        prop::option::of(text(60)),
        prop::option::of(text(20)),
        version(),
        prop::sample::select(KNOWN_BASES.to_vec()),
        prop::option::of(prop::sample::select(PackageManager::ALL.to_vec())),
    );
    let body = (
        (packages(), packages(), packages(), packages()),
        prop::option::of(script()),
        prop::option::of(script()),
        (
            prop::option::of(instance_type()),
            prop::option::of(instance_type()),
            prop::option::of(8u32..=16384),
            prop::collection::vec(1u16..=65535, 0..4),
        ),
        tags(),
        prop::option::of(slug()),
        prop::option::of(ami_config()),
    );
    (head, body).prop_map(
        |(
            (name, slug, description, category, version, base, package_manager),
            (
                (system, conda, pip, spack),
                user_data,
                post_install,
                (instance_type, arm64_type, root_volume_gb, ports),
                tags,
                inherits,
                ami_config,
            ),
        )| {
            let package_manager = match (package_manager, &ami_config) {
                (Some(PackageManager::Ami), None) => None,
                (pm, _) => pm,
            };
            Template {
                name,
                notes: Vec::new(),
                slug,
                description,
                category,
                version,
                base: base.to_string(),
                package_manager,
                packages: Packages {
                    system,
                    conda,
                    pip,
                    spack,
                },
                user_data,
                post_install,
                instance_defaults: InstanceDefaults {
                    instance_type,
                    arm64_type,
                    root_volume_gb,
                    ports,
                },
                tags,
                inherits,
                ami_config,
            }
        },
    )
}

/// YAML-looking noise: keys, indicators, indentation and line breaks.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("name".to_string()),
        Just("slug".to_string()),
        Just("ami_config".to_string()),
        Just("strategy".to_string()),
        Just("ami_mappings".to_string()),
        Just("us-east-1".to_string()),
        Just("ami-12345678".to_string()),
        Just("version".to_string()),
        Just("1.0.0".to_string()),
        Just(": ".to_string()),
        Just(":".to_string()),
        Just("\n".to_string()),
        Just("\n  ".to_string()),
        Just("\n    ".to_string()),
        Just("- ".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(", ".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just(" # c".to_string()),
        Just("|\n".to_string()),
        Just(">-\n".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: ".to_string()),
        Just("!tag ".to_string()),
        Just("? ".to_string()),
        Just("---\n".to_string()),
        Just("\t".to_string()),
        Just("null".to_string()),
        "[a-z0-9_-]{1,8}",
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_templates_round_trip(t in template()) {
        let yaml = serde_norway::to_string(&t).expect("serialise");
        let back = parse_str(&yaml, "generated.yaml");
        prop_assert!(back.is_ok(), "{}\n---\n{}", back.as_ref().err().map(ToString::to_string).unwrap_or_default(), yaml);
        prop_assert_eq!(back.ok(), Some(t));
    }

    #[test]
    fn unknown_fields_are_located_where_written(t in template(), typo in "[a-z]{3,10}x") {
        let yaml = serde_norway::to_string(&t).expect("serialise");
        let lines = yaml.lines().count();
        let text = format!("{yaml}{typo}: 1\n");
        let err = parse_str(&text, "typo.yaml").expect_err("unknown field");
        prop_assert_eq!(err.location(), Some(("typo.yaml", lines + 1, 1)), "{}", err);
    }

    #[test]
    fn rule_violations_are_located_where_written(t in template(), which in 0usize..4) {
        let mut t = t;
        let needle = match which {
            0 => {
                t.instance_defaults.root_volume_gb = Some(1);
                "root_volume_gb: 1".to_string()
            }
            1 => {
                t.base = "ubuntu-20.04".to_string();
                "base: ubuntu-20.04".to_string()
            }
            2 => {
                let c = t.ami_config.get_or_insert_with(AmiConfig::default);
                c.ami_mappings.insert("us-eest-1".into(), "ami-12345678".into());
                "us-eest-1:".to_string()
            }
            _ => {
                t.tags.insert("aws:owner".into(), "me".into());
                "aws:owner:".to_string()
            }
        };
        let yaml = serde_norway::to_string(&t).expect("serialise");
        let want = yaml
            .lines()
            .position(|l| l.trim_start().starts_with(&needle))
            .map(|i| i + 1);
        let err = parse_str(&yaml, "bad.yaml").expect_err("invalid");
        prop_assert_eq!(err.location().map(|(_, line, _)| line), want, "{}\n---\n{}", err, yaml);
    }

    #[test]
    fn provisioning_script_is_deterministic(t in template()) {
        let script = t.provisioning_script();
        prop_assert!(script.starts_with("#!/bin/bash\n"));
        prop_assert_eq!(script, t.clone().provisioning_script());
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let _ = parse_str(&s, "fuzz.yaml");
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_str(&String::from_utf8_lossy(&b), "fuzz.yaml");
    }

    #[test]
    fn yaml_like_input_never_panics(s in yamlish()) {
        if let Err(e) = parse_str(&s, "fuzz.yaml") {
            // Every parse error is located somewhere inside the input.
            if let Some((_, line, column)) = e.location() {
                prop_assert!(line >= 1 && column >= 1);
                prop_assert!(line <= s.split('\n').count() + 1, "{}", e);
            }
        }
    }

    #[test]
    fn valid_head_plus_noise_never_panics(s in yamlish()) {
        let text = format!("name: Demo\nslug: demo\nversion: 1.0.0\nbase: al2023\n{s}");
        let _ = parse_str(&text, "fuzz.yaml");
    }
}
