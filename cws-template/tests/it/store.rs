//! The search path, shadowing, lookup and inheritance.

use std::path::{Path, PathBuf};

use cws_template::{AmiStrategy, Origin, SearchPath, TemplateError, TemplateStore};

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write template");
    path
}

fn simple(slug: &str, name: &str) -> String {
    format!("name: {name}\nslug: {slug}\nversion: 2.0.0\nbase: al2023\n")
}

fn store(dirs: &[&Path]) -> TemplateStore {
    let flags: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    TemplateStore::new(SearchPath::new(&flags, None, None))
}

#[test]
fn search_path_order_and_origins() {
    let sp = SearchPath::new(
        &[PathBuf::from("/a"), PathBuf::from("/b")],
        Some("/c::/d"),
        Some(Path::new("/home/u/.cws")),
    );
    let shown: Vec<String> = sp.dirs.iter().map(|(_, o)| o.to_string()).collect();
    assert_eq!(
        shown,
        [
            "--templates /a",
            "--templates /b",
            "CWS_TEMPLATES_PATH /c",
            "CWS_TEMPLATES_PATH /d",
            "$CWS_HOME/templates",
        ]
    );
    assert_eq!(sp.dirs[4].0, PathBuf::from("/home/u/.cws/templates"));
    assert_eq!(sp.describe().last().map(String::as_str), Some("bundled"));
    assert_eq!(
        serde_json::to_value(Origin::Flag(PathBuf::from("/a"))).expect("json"),
        serde_json::json!({"kind": "flag", "path": "/a"})
    );
    assert_eq!(
        serde_json::to_value(Origin::Bundled).expect("json"),
        serde_json::json!({"kind": "bundled"})
    );
}

#[test]
fn first_directory_wins_and_later_ones_are_shadowed() {
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(home.path().join("templates")).expect("mkdir");
    write(
        first.path(),
        "python-ml.yaml",
        &simple("python-ml", "My ML"),
    );
    write(second.path(), "ml.yml", &simple("python-ml", "Their ML"));
    write(second.path(), "extra.yaml", &simple("extra", "Extra"));
    write(
        &home.path().join("templates"),
        "extra.yaml",
        &simple("extra", "Home Extra"),
    );
    write(first.path(), "notes.txt", "not a template");

    let env = second.path().display().to_string();
    let store = TemplateStore::new(SearchPath::new(
        &[first.path().to_path_buf()],
        Some(&env),
        Some(home.path()),
    ));
    let ml = store.get("python-ml").expect("get");
    assert_eq!(ml.template.name, "My ML");
    assert_eq!(ml.origin, Origin::Flag(first.path().to_path_buf()));
    assert_eq!(ml.file, Some(first.path().join("python-ml.yaml")));
    let extra = store.get("extra").expect("get");
    assert_eq!(extra.template.name, "Extra");
    assert!(matches!(extra.origin, Origin::Env(_)));

    let list = store.list().expect("list");
    let rows: Vec<(&str, &str, bool)> = list
        .iter()
        .map(|e| (e.slug.as_str(), e.name.as_str(), e.shadowed_by.is_some()))
        .collect();
    assert_eq!(
        rows,
        [
            ("python-ml", "My ML", false),
            ("extra", "Extra", false),
            ("python-ml", "Their ML", true),
            ("extra", "Home Extra", true),
            ("python-ml", "Python Machine Learning", true),
            ("r-research", "R Research", false),
            ("bioinformatics", "Bioinformatics", false),
            ("gis-research", "GIS Research", false),
            ("python-research", "Python Research", false),
        ]
    );
    assert_eq!(
        list[2].shadowed_by,
        Some(Origin::Flag(first.path().to_path_buf()))
    );
    assert!(matches!(list[3].shadowed_by, Some(Origin::Env(_))));
    assert_eq!(list[4].origin, Origin::Bundled);
    assert!(list.iter().all(|e| e.error.is_none()));
}

#[test]
fn lookup_by_name_and_case() {
    let s = TemplateStore::bundled_only();
    assert_eq!(
        s.get("R Research").expect("by name").template.slug,
        "r-research"
    );
    assert_eq!(
        s.get("python-ML").expect("by slug").template.slug,
        "python-ml"
    );
    let entry = s.list().expect("list");
    assert_eq!(entry.len(), 5);
    let research = entry
        .iter()
        .find(|e| e.slug == "python-research")
        .expect("row");
    assert!(!research.has_ami_config);
    assert_eq!(research.strategy, AmiStrategy::AmiFallback);
    assert_eq!(research.version, "1.0.0");
}

#[test]
fn not_found_suggests_close_names_and_lists_where_it_looked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = store(&[dir.path()]).get("pyton-ml").expect_err("missing");
    match &err {
        TemplateError::NotFound {
            name,
            suggestions,
            searched,
        } => {
            assert_eq!(name, "pyton-ml");
            assert_eq!(suggestions.first().map(String::as_str), Some("python-ml"));
            assert_eq!(
                searched,
                &[
                    format!("--templates {}", dir.path().display()),
                    "bundled".to_string()
                ]
            );
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("did you mean"), "{err}");
    let err = TemplateStore::bundled_only()
        .get("python")
        .expect_err("missing");
    match err {
        TemplateError::NotFound { suggestions, .. } => {
            assert!(suggestions.contains(&"python-ml".to_string()));
            assert!(suggestions.contains(&"python-research".to_string()));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn broken_files_are_listed_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "broken.yaml",
        "name: Broken\nslug: broken\nversion: 1.0.0\nbase: al2023\nstratgy: x\n",
    );
    write(dir.path(), "good.yaml", &simple("good", "Good"));
    let s = store(&[dir.path()]);
    let list = s.list().expect("list does not fail wholesale");
    let broken = list
        .iter()
        .find(|e| e.slug == "broken")
        .expect("broken row");
    let error = broken.error.as_deref().expect("error recorded");
    assert!(
        error.contains("broken.yaml:5:1: unknown field `stratgy`"),
        "{error}"
    );
    assert!(list.iter().any(|e| e.slug == "good" && e.error.is_none()));
    // Other templates still load; asking for the broken one shows why.
    assert!(s.get("good").is_ok());
    assert!(s.get("python-ml").is_ok());
    let err = s.get("broken").expect_err("broken");
    assert!(err.to_string().contains("unknown field `stratgy`"), "{err}");
}

#[test]
fn a_broken_file_that_declares_the_asked_slug_is_named_with_its_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Meant to replace the bundled python-ml, but broken: asking for python-ml must say so
    // rather than quietly serve the bundled one.
    write(
        dir.path(),
        "my-ml.yaml",
        "name: My ML\nslug: python-ml\nversion: one\nbase: al2023\n",
    );
    let s = store(&[dir.path()]);
    let err = s
        .get("python-ml")
        .expect_err("the broken override is named");
    let text = err.to_string();
    assert!(
        text.contains("my-ml.yaml") && text.contains("version"),
        "{text}"
    );
    // By its display name too.
    assert!(s.get("My ML").is_err());
    // Other templates are served.
    assert!(s.get("r-research").is_ok());
}

#[test]
fn missing_flag_directory_is_an_error_but_missing_env_and_home_are_not() {
    let missing = PathBuf::from("/definitely/not/a/dir");
    let err = store(&[&missing])
        .get("python-ml")
        .expect_err("missing dir");
    assert!(matches!(err, TemplateError::Io { .. }), "{err}");
    let s = TemplateStore::new(SearchPath::new(
        &[],
        Some("/definitely/not/a/dir"),
        Some(Path::new("/definitely/not/home")),
    ));
    assert!(s.get("python-ml").is_ok());
    assert_eq!(s.list().expect("list").len(), 5);
}

#[test]
fn child_inherits_and_merges() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "ml-plus.yaml",
        "name: ML Plus\nslug: ml-plus\ninherits: python-ml\npackages:\n  pip: [polars]\ninstance_defaults:\n  type: g5.xlarge\ntags:\n  team: vision\nami_config:\n  ami_mappings:\n    us-east-2: ami-12345678\n",
    );
    let s = store(&[dir.path()]);
    let child = s.get("ml-plus").expect("child").template;
    let parent = s.get("python-ml").expect("parent").template;
    assert_eq!(child.name, "ML Plus");
    assert_eq!(child.inherits.as_deref(), Some("python-ml"));
    // Scalars and absent fields come from the parent.
    assert_eq!(child.version, parent.version);
    assert_eq!(child.base, parent.base);
    assert_eq!(child.description, parent.description);
    // Lists: replaced when present, inherited when absent.
    assert_eq!(child.packages.pip, ["polars"]);
    assert_eq!(child.packages.conda, parent.packages.conda);
    assert_eq!(
        child.instance_defaults.ports,
        parent.instance_defaults.ports
    );
    // Maps merge key-wise, the child winning.
    assert_eq!(
        child.instance_defaults.instance_type.as_deref(),
        Some("g5.xlarge")
    );
    assert_eq!(
        child.instance_defaults.arm64_type,
        parent.instance_defaults.arm64_type
    );
    assert_eq!(child.tags.get("team").map(String::as_str), Some("vision"));
    assert_eq!(
        child.tags.get("cws:template").map(String::as_str),
        Some("python-ml")
    );
    let c = child.ami_config.as_ref().expect("ami_config");
    let p = parent.ami_config.as_ref().expect("ami_config");
    assert_eq!(c.ami_mappings.len(), p.ami_mappings.len() + 1);
    assert_eq!(c.ami_search, p.ami_search);
    // validate_file resolves the same way.
    let validated = s
        .validate_file(&dir.path().join("ml-plus.yaml"))
        .expect("validate");
    assert_eq!(validated, child);
}

#[test]
fn null_clears_an_inherited_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "ml-script.yaml",
        "name: ML Script\nslug: ml-script\ninherits: python-ml\nversion: 0.1.0\nami_config: null\n",
    );
    let t = store(&[dir.path()])
        .get("ml-script")
        .expect("child")
        .template;
    assert!(t.ami_config.is_none());
    assert_eq!(t.strategy(), AmiStrategy::AmiFallback);
    assert_eq!(t.version.to_string(), "0.1.0");
}

#[test]
fn inheriting_its_own_slug_extends_the_shadowed_template() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("templates");
    std::fs::create_dir(&dir).expect("mkdir");
    write(
        &dir,
        "python-ml.yaml",
        "name: Python ML (site)\nslug: python-ml\ninherits: python-ml\ntags:\n  site: hpc\n",
    );
    let s = TemplateStore::new(SearchPath::new(&[], None, Some(home.path())));
    let t = s.get("python-ml").expect("override").template;
    assert_eq!(t.name, "Python ML (site)");
    assert_eq!(t.tags.get("site").map(String::as_str), Some("hpc"));
    assert!(
        t.ami_config.is_some(),
        "inherited from the bundled template"
    );
    assert!(matches!(
        s.get("python-ml").expect("get").origin,
        Origin::Home(_)
    ));
}

#[test]
fn inheritance_cycles_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.yaml", "name: A\nslug: a\ninherits: b\n");
    write(dir.path(), "b.yaml", "name: B\nslug: b\ninherits: c\n");
    write(dir.path(), "c.yaml", "name: C\nslug: c\ninherits: a\n");
    write(
        dir.path(),
        "self.yaml",
        "name: Self\nslug: selfish\ninherits: selfish\n",
    );
    let s = store(&[dir.path()]);
    let err = s.get("a").expect_err("cycle");
    match &err {
        TemplateError::InheritanceCycle { cycle, files } => {
            assert_eq!(cycle, &["a", "b", "c", "a"]);
            assert_eq!(files.len(), 3, "{files:?}");
            assert!(
                files[0].ends_with("a.yaml") && files[2].ends_with("c.yaml"),
                "{files:?}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string()
            .starts_with("template inheritance cycle: a -> b -> c -> a")
    );
    let err = s.get("selfish").expect_err("self cycle");
    assert!(err.to_string().contains("selfish -> selfish"), "{err}");
    // list reports the cycle per entry instead of failing.
    let list = s.list().expect("list");
    let a = list.iter().find(|e| e.slug == "a").expect("row");
    assert!(a.error.as_deref().unwrap_or_default().contains("cycle"));
}

#[test]
fn unknown_parent_points_at_inherits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "kid.yaml",
        "name: Kid\nslug: kid\ninherits: pyton-ml\n",
    );
    let err = store(&[dir.path()]).get("kid").expect_err("no parent");
    let (file, line, col) = err.location().expect("located");
    assert_eq!(file, path.display().to_string());
    assert_eq!((line, col), (3, 11));
    assert!(
        err.to_string()
            .contains("no template with slug `pyton-ml`; did you mean `python-ml`?"),
        "{err}"
    );
    match &err {
        TemplateError::UnknownParent {
            parent,
            suggestions,
            ..
        } => {
            assert_eq!(parent, "pyton-ml");
            assert_eq!(suggestions.first().map(String::as_str), Some("python-ml"));
        }
        other => panic!("expected UnknownParent, got {other:?}"),
    }
}

#[test]
fn merged_errors_point_into_the_file_that_wrote_the_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parent = write(
        dir.path(),
        "strict.yaml",
        "name: Strict\nslug: strict\nversion: 1.0.0\nbase: al2023\nami_config:\n  strategy: ami_required\n  ami_mappings:\n    us-east-1: ami-12345678\n",
    );
    let child = write(
        dir.path(),
        "loose.yaml",
        "name: Loose\nslug: loose\ninherits: strict\nami_config:\n  ami_mappings: null\n",
    );
    let s = store(&[dir.path()]);
    assert!(s.get("strict").is_ok());
    let err = s.get("loose").expect_err("ami_required without a source");
    let (file, line, col) = err.location().expect("located");
    assert_eq!(file, parent.display().to_string(), "{err}");
    assert_eq!((line, col), (6, 13));
    // A bad value written by the child is reported in the child.
    std::fs::write(
        &child,
        "name: Loose\nslug: loose\ninherits: strict\nbase: al2024\n",
    )
    .expect("write");
    let err = s.validate_file(&child).expect_err("bad base");
    let (file, line, col) = err.location().expect("located");
    assert_eq!(
        (file, line, col),
        (child.display().to_string().as_str(), 4, 7)
    );
}

#[test]
fn validate_file_outside_the_search_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "mine.yaml",
        "name: Mine\nslug: mine\ninherits: r-research\npackages:\n  system: [r-base]\n",
    );
    let t = TemplateStore::bundled_only()
        .validate_file(&path)
        .expect("valid");
    assert_eq!(t.packages.system, ["r-base"]);
    assert_eq!(t.base, "ubuntu-24.04");
    // parse_str alone cannot resolve the parent.
    assert!(cws_template::load_file(&path).is_err());
    let bad = write(
        dir.path(),
        "bad.yaml",
        "name: Bad\nslug: bad\ninherits: r-research\nami_config:\n  stratgy: x\n",
    );
    let err = TemplateStore::bundled_only()
        .validate_file(&bad)
        .expect_err("invalid");
    assert_eq!(err.location().map(|(_, l, c)| (l, c)), Some((5, 3)));
}

#[test]
fn a_child_reports_all_its_problems_and_waits_for_its_parent_on_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "strict.yaml",
        "name: Strict\nslug: strict\nversion: 1.0.0\nbase: al2023\nami_config:\n  strategy: ami_required\n  ami_mappings:\n    us-east-1: ami-12345678\n",
    );
    // Broken in shape (`colour`) and by a rule (`aws:` tag): both reported. Its own
    // `ami_required` has its source in the parent, so that is not held against it.
    let child = write(
        dir.path(),
        "kid.yaml",
        "name: Kid\nslug: kid\ninherits: strict\ntags:\n  aws:team: x\nami_config:\n  strategy: ami_required\ncolour: red\n",
    );
    let s = store(&[dir.path()]);
    let kid = child.display().to_string();
    for err in [
        s.validate_file(&child).expect_err("two problems"),
        s.get("kid").expect_err("two problems"),
    ] {
        let places: Vec<(&str, usize, usize)> =
            err.errors().iter().filter_map(|e| e.location()).collect();
        assert_eq!(
            places,
            [(kid.as_str(), 5, 3), (kid.as_str(), 8, 1)],
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("reserved `aws:` prefix"), "{text}");
        assert!(text.contains("unknown field `colour`"), "{text}");
    }
    // Well-formed, but the merged template breaks rules in both files: the child's problems
    // come first, then the parent's, each in line order.
    std::fs::write(
        &child,
        "name: Kid\nslug: kid\ninherits: strict\ntags:\n  aws:team: x\nami_config:\n  ami_mappings: null\n",
    )
    .expect("write");
    let err = s.validate_file(&child).expect_err("two problems");
    let places: Vec<(String, usize, usize)> = err
        .errors()
        .iter()
        .filter_map(|e| e.location())
        .map(|(f, l, c)| (f.rsplit('/').next().unwrap_or(f).to_string(), l, c))
        .collect();
    assert_eq!(
        places,
        [
            ("kid.yaml".to_string(), 5, 3),
            ("strict.yaml".to_string(), 6, 13)
        ],
        "{err}"
    );
    match &err {
        TemplateError::InvalidMany { file, .. } => assert_eq!(file, &kid),
        other => panic!("{other:?}"),
    }
}
