//! Every kind of bad template fails with a message that names the field
//! and points at the right file, line and column.

use cws_template::{TemplateError, parse_str};

const HEAD: &str = "name: Demo\nslug: demo\nversion: 1.0.0\nbase: ubuntu-24.04\n";

/// Parses `text` as `my.yaml` and returns (line, column, full message).
fn fail(text: &str) -> (usize, usize, String) {
    match parse_str(text, "my.yaml") {
        Ok(t) => panic!("expected an error, parsed {t:?}"),
        Err(e) => {
            let shown = e.to_string();
            let (file, line, column) = e
                .location()
                .unwrap_or_else(|| panic!("no location: {shown}"));
            assert_eq!(file, "my.yaml");
            assert!(
                shown.starts_with(&format!("my.yaml:{line}:{column}: ")),
                "{shown}"
            );
            (line, column, shown)
        }
    }
}

#[test]
fn misspelt_strategy_points_at_the_key() {
    let text = "name: Demo\nslug: demo\nami_config:\n  stratgy: ami_preferred\nversion: 1.0.0\nbase: ubuntu-24.04\n";
    let (line, col, msg) = fail(text);
    assert_eq!((line, col), (4, 3));
    assert!(
        msg.starts_with(
            "my.yaml:4:3: unknown field `stratgy` in `ami_config`; did you mean `strategy`?"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("\n  help: valid fields here: `strategy`, `ami_mappings`"),
        "{msg}"
    );
}

#[test]
fn unknown_top_level_and_nested_fields() {
    let (line, col, msg) = fail(&format!(
        "{HEAD}instance_defaults:\n  type: m6i.large\n  root_volume: 50\n"
    ));
    assert_eq!((line, col), (7, 3));
    assert!(
        msg.contains(
            "unknown field `root_volume` in `instance_defaults`; did you mean `root_volume_gb`?"
        ),
        "{msg}"
    );
    let (line, col, msg) = fail(&format!("{HEAD}pacakges:\n  system: [git]\n"));
    assert_eq!((line, col), (5, 1));
    assert!(
        msg.contains("unknown field `pacakges`; did you mean `packages`?"),
        "{msg}"
    );
    // In a flow mapping too.
    let (line, col, msg) = fail(&format!(
        "{HEAD}ami_config: {{strategy: ami_preferred, ami_mapping: {{}}}}\n"
    ));
    assert_eq!((line, col), (5, 39));
    assert!(msg.contains("did you mean `ami_mappings`?"), "{msg}");
}

#[test]
fn bad_ami_id_points_at_the_value() {
    let (line, col, msg) = fail(&format!(
        "{HEAD}ami_config:\n  ami_mappings:\n    us-east-1: ami-12345\n"
    ));
    assert_eq!((line, col), (7, 16));
    assert!(
        msg.contains("invalid AMI id `ami-12345` for `ami_config.ami_mappings.us-east-1`"),
        "{msg}"
    );
    assert!(msg.contains("8 or 17 lowercase hex digits"), "{msg}");
    // Upper-case hex and the wrong length are both rejected.
    fail(&format!(
        "{HEAD}ami_config:\n  ami_mappings: {{us-east-1: ami-0123456789ABCDEF0}}\n"
    ));
    fail(&format!(
        "{HEAD}ami_config:\n  ami_mappings: {{us-east-1: ami-0123456789abcdef}}\n"
    ));
}

#[test]
fn unknown_region_suggests_one() {
    let (line, col, msg) = fail(&format!(
        "{HEAD}ami_config:\n  ami_mappings:\n    us-east-1: ami-12345678\n    us-eest-1: ami-12345678\n"
    ));
    assert_eq!((line, col), (8, 5));
    assert!(
        msg.contains(
            "unknown region `us-eest-1` in `ami_config.ami_mappings`; did you mean `us-east-1`?"
        ),
        "{msg}"
    );
}

#[test]
fn unknown_strategy_lists_allowed_values() {
    let (line, col, msg) = fail(&format!("{HEAD}ami_config:\n  strategy: always\n"));
    assert_eq!((line, col), (6, 13));
    assert!(
        msg.contains("unknown value `always` for `ami_config.strategy`; expected one of `ami_preferred`, `ami_required`, `ami_fallback`"),
        "{msg}"
    );
    let (_, _, msg) = fail(&format!("{HEAD}ami_config:\n  fallback_strategy: script\n"));
    assert!(
        msg.contains("`script_provisioning`, `cross_region`, `error`"),
        "{msg}"
    );
    let (_, _, msg) = fail(&format!(
        "{HEAD}ami_config:\n  preferred_architecture: amd64\n"
    ));
    assert!(msg.contains("`x86_64`, `arm64`"), "{msg}");
}

#[test]
fn ami_required_without_a_source() {
    let (line, col, msg) = fail(&format!(
        "{HEAD}ami_config:\n  strategy: ami_required\n  fallback_strategy: error\n"
    ));
    assert_eq!((line, col), (6, 13));
    assert!(msg.contains("`ami_required` needs an AMI source"), "{msg}");
    // Any one source is enough.
    let ok = format!(
        "{HEAD}ami_config:\n  strategy: ami_required\n  marketplace: {{product_id: prod-abc}}\n"
    );
    parse_str(&ok, "ok.yaml").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn bad_semver_names_the_field() {
    for (v, col) in [("1.0", 10), ("\"1.0\"", 10), ("one", 10), ("1.0.0.0", 10)] {
        let text = format!("name: Demo\nslug: demo\nversion: {v}\nbase: al2023\n");
        let (line, c, msg) = fail(&text);
        assert_eq!((line, c), (3, col), "{v}: {msg}");
        assert!(msg.contains("invalid `version`"), "{msg}");
        assert!(msg.contains("MAJOR.MINOR.PATCH"), "{msg}");
    }
}

#[test]
fn empty_or_missing_owners_are_refused() {
    let (line, col, msg) = fail(&format!(
        "{HEAD}ami_config:\n  ami_search:\n    owners: []\n    name_pattern: x-*\n"
    ));
    assert_eq!((line, col), (7, 13));
    assert!(
        msg.contains("`ami_config.ami_search.owners` is empty"),
        "{msg}"
    );
    assert!(
        msg.contains("trusted owners are required; use `self` for your own account"),
        "{msg}"
    );
    let (line, col, msg) = fail(&format!(
        "{HEAD}ami_config:\n  ami_search:\n    name_pattern: x-*\n"
    ));
    assert_eq!((line, col), (6, 3));
    assert!(
        msg.contains("missing required field `owners` in `ami_config.ami_search`"),
        "{msg}"
    );
    assert!(msg.contains("trusted owners are required"), "{msg}");
    let (line, col, msg) = fail(&format!(
        "{HEAD}ami_config:\n  ami_search:\n    owners: [self, '*']\n"
    ));
    assert_eq!((line, col), (7, 20));
    assert!(msg.contains("invalid owner `*`"), "{msg}");
}

#[test]
fn unknown_base_lists_known_ones() {
    let (line, col, msg) = fail("name: Demo\nslug: demo\nversion: 1.0.0\nbase: ubuntu-20.04\n");
    assert_eq!((line, col), (4, 7));
    assert!(msg.contains("unknown value `ubuntu-20.04` for `base`; expected one of `ubuntu-22.04`, `ubuntu-24.04`, `al2023`, `debian-12`"), "{msg}");
}

#[test]
fn slug_rules() {
    let (line, col, msg) = fail("name: Demo\nslug: My Demo\nversion: 1.0.0\nbase: al2023\n");
    assert_eq!((line, col), (2, 7));
    assert!(msg.contains("invalid `slug` `My Demo`"), "{msg}");
    assert!(msg.contains("e.g. `my-demo`"), "{msg}");
}

#[test]
fn missing_required_fields() {
    // A name is the one field nothing can stand in for.
    let (line, col, msg) = fail("slug: demo\nversion: 1.0.0\nbase: al2023\n");
    assert_eq!((line, col), (1, 1));
    assert!(msg.contains("missing required field `name`"), "{msg}");
    // A child template's parent fields are not resolved by parse_str.
    let (_, _, msg) = fail("name: Child\nslug: child\ninherits: python-ml\n");
    assert!(
        msg.contains("missing field `version`: it would come from `python-ml`"),
        "{msg}"
    );
    assert!(msg.contains("TemplateStore"), "{msg}");
}

#[test]
fn wrong_kinds_of_value() {
    let (line, col, msg) = fail(&format!(
        "{HEAD}instance_defaults:\n  root_volume_gb: lots\n"
    ));
    assert_eq!((line, col), (6, 19));
    assert!(
        msg.contains("`instance_defaults.root_volume_gb` must be a whole number, found `lots`"),
        "{msg}"
    );
    let (line, col, msg) = fail(&format!(
        "{HEAD}instance_defaults:\n  ports:\n    - 22\n    - 70000\n"
    ));
    assert_eq!((line, col), (8, 7));
    assert!(
        msg.contains("`instance_defaults.ports[1]` must be between 1 and 65535, found 70000"),
        "{msg}"
    );
    let (line, col, msg) = fail(&format!("{HEAD}tags:\n  year: 2024\n"));
    assert_eq!((line, col), (6, 9));
    assert!(msg.contains("quote it"), "{msg}");
    let (_, _, msg) = fail(&format!("{HEAD}packages:\n  system: git curl\n"));
    assert!(msg.contains("`packages.system` must be a list"), "{msg}");
}

#[test]
fn rule_violations_in_packages_tags_and_instance_types() {
    let (line, col, msg) = fail(&format!("{HEAD}packages:\n  system: [git, 'curl wget']\n"));
    assert_eq!((line, col), (6, 17));
    assert!(msg.contains("list each package separately"), "{msg}");
    let (_, _, msg) = fail(&format!(
        "{HEAD}packages:\n  pip: ['--index-url=http://evil']\n"
    ));
    assert!(msg.contains("starts with `-`"), "{msg}");
    let (line, col, msg) = fail(&format!("{HEAD}tags:\n  aws:owner: me\n"));
    assert_eq!((line, col), (6, 3));
    assert!(msg.contains("reserved `aws:` prefix"), "{msg}");
    let (_, _, msg) = fail(&format!("{HEAD}instance_defaults:\n  type: large\n"));
    assert!(msg.contains("invalid instance type `large`"), "{msg}");
    let (_, _, msg) = fail(&format!("{HEAD}ami_config:\n  marketplace: {{}}\n"));
    assert!(
        msg.contains("needs at least one of `product_code`, `product_id` or `title`"),
        "{msg}"
    );
    let (_, _, msg) = fail(&format!(
        "{HEAD}ami_config:\n  ami_search: {{owners: [self], architectures: [x86_64]}}\n  preferred_architecture: arm64\n"
    ));
    assert!(msg.contains("does not include it"), "{msg}");
    let (_, _, msg) = fail(&format!("{HEAD}package_manager: ami\n"));
    assert!(msg.contains("no `ami_config`"), "{msg}");
}

#[test]
fn yaml_syntax_errors_have_positions() {
    let (line, _, msg) = fail("name: Demo\nslug: [demo\nversion: 1.0.0\n");
    assert!(line >= 2, "{msg}");
    assert!(msg.contains("invalid YAML"), "{msg}");
    assert!(
        !msg.contains(" at line "),
        "positions are not repeated: {msg}"
    );
    let (line, col, msg) = fail("name: Demo\nslug: demo\nslug: again\n");
    assert_eq!((line, col), (3, 1), "{msg}");
    assert!(msg.contains("duplicate"), "{msg}");
    let (line, col, msg) = fail("name: Demo\ntags:\n  a: '1'\n  b: '2'\n  a: '3'\n");
    assert_eq!((line, col), (5, 3), "{msg}");
    let (_, _, msg) = fail("name: Demo\n\tslug: demo\n");
    assert!(msg.contains("spaces, not tabs"), "{msg}");
}

#[test]
fn not_a_mapping_or_empty() {
    let (line, col, msg) = fail("");
    assert_eq!((line, col), (1, 1));
    assert!(msg.contains("the template is empty"), "{msg}");
    let (_, _, msg) = fail("- name: Demo\n");
    assert!(msg.contains("must be a mapping"), "{msg}");
    let (_, _, msg) = fail("just text");
    assert!(msg.contains("must be a mapping"), "{msg}");
}

#[test]
fn io_errors_name_the_path() {
    let err = cws_template::load_file(std::path::Path::new("/definitely/not/here.yaml"))
        .expect_err("missing file");
    assert!(matches!(err, TemplateError::Io { .. }));
    assert!(err.to_string().contains("/definitely/not/here.yaml"));
}

#[test]
fn load_file_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "name: X\nslug: x\nversion: 1.0.0\nbase: al2023\ncolour: red\n",
    )
    .expect("write");
    let err = cws_template::load_file(&path).expect_err("invalid");
    let (file, line, col) = err.location().expect("location");
    assert_eq!(file, path.display().to_string());
    assert_eq!((line, col), (5, 1));
}

#[test]
fn a_terse_template_gets_its_defaults_and_says_so() {
    // The guide's template: a name and an ami_config, nothing else.
    let t = parse_str(
        "name: My Lab\nami_config:\n  ami_search:\n    owners: [self]\n    name_pattern: \"lab-*\"\n",
        "/home/r/My Lab_Template.yaml",
    )
    .unwrap();
    assert_eq!(t.slug, "my-lab-template");
    assert_eq!(t.version.to_string(), "1.0.0");
    assert_eq!(t.base, "ubuntu-24.04");
    assert_eq!(t.notes.len(), 3, "{:?}", t.notes);
    assert!(
        t.notes[0].contains("`my-lab-template`, from the file name"),
        "{:?}",
        t.notes
    );
    // What a file says is kept, and nothing is announced.
    let t = parse_str(HEAD, "my.yaml").unwrap();
    assert_eq!(t.slug, "demo");
    assert!(t.notes.is_empty());
    // A child leaves version and base to its parent: only the slug is filled in.
    let (_, _, msg) = fail("name: Child\ninherits: python-ml\n");
    assert!(msg.contains("it would come from `python-ml`"), "{msg}");
    // A slug that cannot be made from the file name is still an error.
    match parse_str("name: X\nversion: 1.0.0\nbase: al2023\n", "___.yaml") {
        Err(e) => assert!(
            e.to_string().contains("missing required field `slug`"),
            "{e}"
        ),
        Ok(t) => panic!("parsed {t:?}"),
    }
}

/// Three independent problems, written so the order they are found in (the version first,
/// then the shape, then the rules) is not the order of their lines.
const THREE_PROBLEMS: &str = "\
name: Broken Lab
slug: broken-lab
base: ubuntu-24.04
ami_config:
  strategy: sometimes
  ami_mappings:
    us-east-1: ami-12345
version: \"1.0\"
";

#[test]
fn every_problem_of_a_file_is_reported_in_line_order() {
    let err = parse_str(THREE_PROBLEMS, "broken.yaml").expect_err("three problems");
    assert_eq!(err.count(), 3, "{err}");
    let TemplateError::InvalidMany { file, errors } = &err else {
        panic!("expected InvalidMany, got {err:?}");
    };
    assert_eq!(file, "broken.yaml");
    let places: Vec<(&str, usize, usize)> = errors
        .iter()
        .map(|e| e.location().expect("each problem has a place"))
        .collect();
    assert_eq!(
        places,
        [
            ("broken.yaml", 5, 13),
            ("broken.yaml", 7, 16),
            ("broken.yaml", 8, 10)
        ]
    );
    // The first problem is the error's location.
    assert_eq!(err.location(), Some(("broken.yaml", 5, 13)));
    assert_eq!(
        err.to_string(),
        "broken.yaml:5:13: unknown value `sometimes` for `ami_config.strategy`; expected one of \
         `ami_preferred`, `ami_required`, `ami_fallback`\n\
         broken.yaml:7:16: invalid AMI id `ami-12345` for `ami_config.ami_mappings.us-east-1`\n  \
         help: AMI ids are `ami-` followed by 8 or 17 lowercase hex digits, e.g. \
         `ami-0123456789abcdef0`\n\
         broken.yaml:8:10: invalid `version` `1.0`: unexpected end of input while parsing minor \
         version number\n  \
         help: use semantic versioning, MAJOR.MINOR.PATCH, e.g. `version: 1.0.0`"
    );
    // Each problem is an `Invalid` of its own, the same as when it is the only one.
    for e in errors {
        assert!(matches!(e, TemplateError::Invalid { .. }), "{e:?}");
        assert_eq!(e.count(), 1);
    }
}

#[test]
fn shape_problems_and_broken_rules_are_reported_together() {
    let text = "\
name: Lab
slug: Lab Two
version: 1.0.0
base: ubuntu-20.04
tags:
  aws:owner: me
instance_defaults:
  root_volume: 50
  type: large
ami_config:
  ami_mappings:
    us-eest-1: ami-12345678
  ami_search:
    owners: [self, '*']
    architectures: [arm]
";
    let err = parse_str(text, "lab.yaml").expect_err("many problems");
    let shown: Vec<String> = err.errors().iter().map(ToString::to_string).collect();
    let lines: Vec<usize> = err
        .errors()
        .iter()
        .filter_map(|e| e.location().map(|(_, line, _)| line))
        .collect();
    assert_eq!(lines, [2, 4, 6, 8, 9, 12, 14, 15], "{shown:#?}");
    let expect = [
        "lab.yaml:2:7: invalid `slug` `Lab Two`",
        "lab.yaml:4:7: unknown value `ubuntu-20.04` for `base`",
        "lab.yaml:6:3: tag key `aws:owner` in `tags` uses the reserved `aws:` prefix",
        "lab.yaml:8:3: unknown field `root_volume` in `instance_defaults`; did you mean `root_volume_gb`?",
        "lab.yaml:9:9: invalid instance type `large` for `instance_defaults.type`",
        "lab.yaml:12:5: unknown region `us-eest-1` in `ami_config.ami_mappings`; did you mean `us-east-1`?",
        "lab.yaml:14:20: invalid owner `*` in `ami_config.ami_search.owners`",
        "lab.yaml:15:21: unknown value `arm` for `ami_config.ami_search.architectures[0]`",
    ];
    for (shown, expect) in shown.iter().zip(expect) {
        assert!(shown.starts_with(expect), "{shown}\nexpected: {expect}");
    }
    // A value set aside as malformed is not judged again by the rules (one problem each).
    assert_eq!(
        shown.iter().filter(|s| s.contains("ubuntu-20.04")).count(),
        1
    );
}

#[test]
fn a_file_with_one_problem_gives_exactly_that_problem() {
    let text = "name: Bad\nslug: bad\nversion: 1.0.0\nbase: ubuntu-24.04\nami_config:\n  stratgy: ami_preferred\n";
    let err = parse_str(text, "bad.yaml").expect_err("one problem");
    assert!(matches!(err, TemplateError::Invalid { .. }), "{err:?}");
    assert_eq!(err.count(), 1);
    assert_eq!(err.errors().len(), 1);
    assert_eq!(
        err.to_string(),
        "bad.yaml:6:3: unknown field `stratgy` in `ami_config`; did you mean `strategy`?\n  \
         help: valid fields here: `strategy`, `ami_mappings`, `ami_search`, `marketplace`, \
         `fallback_strategy`, `preferred_architecture`, `community`"
    );
    // A broken rule alone, too.
    let err = parse_str(
        &format!("{HEAD}ami_config:\n  ami_mappings:\n    us-east-1: ami-12345\n"),
        "my.yaml",
    )
    .expect_err("one problem");
    assert!(matches!(err, TemplateError::Invalid { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "my.yaml:7:16: invalid AMI id `ami-12345` for `ami_config.ami_mappings.us-east-1`\n  \
         help: AMI ids are `ami-` followed by 8 or 17 lowercase hex digits, e.g. \
         `ami-0123456789abcdef0`"
    );
}

#[test]
fn a_malformed_value_does_not_make_the_rules_that_read_it_complain() {
    // `ami_search` lacks its owners: the one problem. The search set aside, `ami_required`
    // would have no AMI source, but that is the same problem, not a second one.
    let err = parse_str(
        &format!(
            "{HEAD}ami_config:\n  strategy: ami_required\n  ami_search:\n    name_pattern: x-*\n"
        ),
        "my.yaml",
    )
    .expect_err("one problem");
    assert_eq!(err.count(), 1, "{err}");
    assert!(
        err.to_string()
            .contains("missing required field `owners` in `ami_config.ami_search`"),
        "{err}"
    );
    // A missing name is reported, and the rules still judge the rest.
    let err = parse_str(
        "slug: demo\nversion: 1.0.0\nbase: al2023\npackages:\n  pip: ['-e .']\n",
        "my.yaml",
    )
    .expect_err("two problems");
    let shown: Vec<String> = err.errors().iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(shown[0].starts_with("my.yaml:1:1: missing required field `name`"));
    assert!(shown[1].starts_with("my.yaml:5:9: package `-e .` in `packages.pip` starts with `-`"));
}
