//! The built `cws` binary, run on a temporary `$CWS_HOME`, as a user would.

use std::process::Output;

use serde_json::Value;

use super::common::*;

#[test]
fn templates_list_shows_the_bundled_templates_and_their_origin() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["templates", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for slug in [
        "python-ml",
        "r-research",
        "bioinformatics",
        "gis-research",
        "python-research",
    ] {
        assert!(text.contains(slug), "{text}");
    }
    assert!(text.contains("bundled"));
}

#[test]
fn a_misspelt_field_exits_2_with_line_and_suggestion() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("bad.yaml");
    std::fs::write(
        &file,
        "name: Bad\nslug: bad\nversion: 1.0.0\nbase: ubuntu-24.04\nami_config:\n  stratgy: ami_preferred\n",
    )
    .unwrap();
    let out = run(
        home.path(),
        &["templates", "validate", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:6:"), "{err}");
    assert!(err.contains("did you mean `strategy`"), "{err}");
}

/// Three independent problems, found in another order (the version first, then the shape,
/// then the rules) than that of their lines.
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
fn templates_validate_reports_every_problem_of_a_file_in_line_order() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let broken = h.join("broken.yaml");
    std::fs::write(&broken, THREE_PROBLEMS).unwrap();
    let one = h.join("one.yaml");
    std::fs::write(
        &one,
        "name: One\nslug: one\nversion: 1.0.0\nbase: ubuntu-24.04\ncolour: red\n",
    )
    .unwrap();
    let path = broken.to_str().unwrap();

    // A file with one problem: its exit code is the one a file with three must give too.
    let single = run(h, &["templates", "validate", one.to_str().unwrap()]);
    assert_eq!(single.status.code(), Some(2), "{}", stderr(&single));
    assert_eq!(stderr(&single).matches("error: ").count(), 1);

    let out = run(h, &["templates", "validate", path]);
    assert_eq!(out.status.code(), single.status.code(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        format!(
            "error: {path}:5:13: unknown value `sometimes` for `ami_config.strategy`; expected \
             one of `ami_preferred`, `ami_required`, `ami_fallback`\n\
             error: {path}:7:16: invalid AMI id `ami-12345` for \
             `ami_config.ami_mappings.us-east-1`\n  \
             help: AMI ids are `ami-` followed by 8 or 17 lowercase hex digits, e.g. \
             `ami-0123456789abcdef0`\n\
             error: {path}:8:10: invalid `version` `1.0`: unexpected end of input while parsing \
             minor version number\n  \
             help: use semantic versioning, MAJOR.MINOR.PATCH, e.g. `version: 1.0.0`\n\
             1 of 1 template file(s) invalid\n"
        )
    );

    // JSON lists them too, one entry each, in the same order.
    let out = run(h, &["--json", "templates", "validate", path]);
    assert_eq!(out.status.code(), Some(2));
    let row = &json(&out)[0];
    assert_eq!(row["valid"], false);
    let errors: Vec<&str> = row["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 3, "{row}");
    for (e, at) in errors.iter().zip([":5:13: ", ":7:16: ", ":8:10: "]) {
        assert!(e.starts_with(&format!("{path}{at}")), "{e}");
    }
    assert_eq!(row["error"].as_str(), Some(errors.join("\n").as_str()));

    // Met through the search path, the template's problems are all named too.
    let dir = h.join("templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken-lab.yaml"), THREE_PROBLEMS).unwrap();
    let out = run(h, &["launch", "broken-lab", "box", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let places: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .filter_map(|l| l.split(": ").next())
        .map(|l| l.rsplit('/').next().unwrap_or(l))
        .collect();
    assert_eq!(
        places,
        [
            "broken-lab.yaml:5:13",
            "broken-lab.yaml:7:16",
            "broken-lab.yaml:8:10"
        ],
        "{err}"
    );
}

#[test]
fn fallbacks_for_ap_south_1_are_in_published_order() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &["--json", "regions", "fallbacks", "ap-south-1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let codes: Vec<&str> = v["fallbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ap-southeast-1", "ap-northeast-1", "us-east-1"]);

    let out = run(home.path(), &["regions", "fallbacks", "ap-sout-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `ap-south-1`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ami_costs_reports_both_launch_kinds_storage_break_even_and_a_recommendation() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &[
            "--json",
            "ami",
            "costs",
            "python-ml",
            "--region",
            "us-east-1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert!(v["script"]["setup_cost"].as_f64().unwrap() > v["ami"]["setup_cost"].as_f64().unwrap());
    assert!(v["storage"]["per_month"].as_f64().unwrap() > 0.0);
    assert!(v.get("break_even_launches_per_month").is_some());
    assert!(
        !v["recommendation"]["reasons"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn launch_python_ml_resolves_by_direct_mapping_and_names_the_simulated_provider() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &["--json", "launch", "python-ml", "my-research"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["resolution"]["method"], "direct_mapping");
    assert_eq!(v["resolution"]["ami_id"], "ami-0c7d3e9a1b2f4a501");
    assert_eq!(v["resolution"]["provider"]["simulated"], true);
    assert_eq!(v["instance"]["name"], "my-research");
    assert_eq!(v["instance"]["state"], "running");
    assert_eq!(v["instance"]["ami_id"], "ami-0c7d3e9a1b2f4a501");
    assert!(v["costs"].is_object());

    // Table output names the provider and says it is simulated.
    let out = run(home.path(), &["instance", "status", "my-research"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("simulated"));

    // The same name again is an error naming the existing instance.
    let out = run(home.path(), &["launch", "python-ml", "my-research"]);
    assert_eq!(out.status.code(), Some(2));
    let id = v["instance"]["id"].as_str().unwrap();
    assert!(stderr(&out).contains(id), "{}", stderr(&out));
}

#[test]
fn dry_run_with_preview_launches_nothing() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &[
            "launch",
            "python-ml",
            "preview",
            "--dry-run",
            "--show-ami-resolution",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Fallback chain"), "{text}");
    assert!(text.contains("✅ direct_mapping"), "{text}");
    let out = run(home.path(), &["--json", "instance", "list"]);
    assert_eq!(json(&out)["instances"].as_array().unwrap().len(), 0);
}

#[test]
fn cross_region_copy_needs_consent_and_is_paid_once() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &[
            "--region",
            "ap-south-1",
            "--json",
            "ami",
            "resolve",
            "python-ml",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["method"], "cross_region");
    assert_eq!(v["source_region"], "ap-southeast-1");
    assert_eq!(v["requires_copy"], true);
    assert!(v["copy"]["estimated_seconds"].as_u64().unwrap() > 0);
    assert!(v["copy"]["estimated_cost_usd"].as_f64().unwrap() > 0.0);

    // No terminal, no --yes: the prompt is answered No (on stderr) and the launch falls
    // through to script provisioning; stdout stays one JSON document.
    let out = run(
        home.path(),
        &[
            "--region",
            "ap-south-1",
            "--json",
            "launch",
            "python-ml",
            "declined",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("pass --yes"), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["resolution"]["method"], "script_fallback");
    let declined = v["resolution"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["tier"] == "cross_region")
        .unwrap()
        .clone();
    assert_eq!(declined["outcome"], "declined");

    // With --yes: copied, then launched from the copy.
    let out = run(
        home.path(),
        &[
            "--region",
            "ap-south-1",
            "--yes",
            "--json",
            "launch",
            "python-ml",
            "x",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let copy = v["copied_image"].as_str().unwrap().to_string();
    assert_eq!(v["instance"]["ami_id"], copy.as_str());

    // The next resolution in ap-south-1 finds the copy by dynamic search.
    let out = run(
        home.path(),
        &[
            "--region",
            "ap-south-1",
            "--json",
            "ami",
            "resolve",
            "python-ml",
        ],
    );
    let v = json(&out);
    assert_eq!(v["method"], "dynamic_search");
    assert_eq!(v["ami_id"], copy.as_str());
}

#[test]
fn each_bundled_template_resolves_by_its_tier() {
    let home = tempfile::tempdir().unwrap();
    let method = |t: &str, region: &str| {
        let out = run(
            home.path(),
            &["--json", "ami", "resolve", t, "--region", region],
        );
        assert!(out.status.success(), "{t}: {}", stderr(&out));
        json(&out)
    };
    assert_eq!(
        method("bioinformatics", "us-west-2")["method"],
        "dynamic_search"
    );
    assert_eq!(method("gis-research", "us-east-1")["method"], "marketplace");
    let pr = method("python-research", "us-east-1");
    assert_eq!(pr["method"], "script_fallback");
    assert!(
        pr["ami_name"]
            .as_str()
            .unwrap()
            .contains("ubuntu-noble-24.04")
    );
}

#[test]
fn ami_required_with_nothing_reachable_exits_3() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("my-templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("strict.yaml"),
        "name: Strict\nslug: strict\nversion: 1.0.0\nbase: ubuntu-24.04\nami_config:\n  strategy: ami_required\n  ami_search:\n    owners: [self]\n    name_pattern: \"strict-*\"\n",
    )
    .unwrap();
    let out = run(
        home.path(),
        &[
            "--templates",
            dir.to_str().unwrap(),
            "--json",
            "ami",
            "resolve",
            "strict",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(json(&out)["method"], "failed");
}

#[test]
fn ami_test_all_regions_covers_the_catalogue() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &["--json", "ami", "test", "python-ml", "--all-regions"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let rows = v["regions"].as_array().unwrap();
    assert_eq!(rows.len(), cws_regions::all().len());
    let status = |r: &str| {
        rows.iter().find(|x| x["region"] == r).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("us-east-1"), "available");
    assert_eq!(status("ap-south-1"), "copy_required");
}

#[test]
fn eight_concurrent_launches_all_survive() {
    let home = tempfile::tempdir().unwrap();
    // Seed once so the eight processes race on writes, not on first-use seeding only.
    assert!(run(home.path(), &["templates", "list"]).status.success());
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("cws"));
            c.env_clear()
                .env("CWS_HOME", home.path())
                .env("HOME", home.path());
            c.args(["--json", "launch", "python-research", &format!("box-{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(home.path(), &["--json", "instance", "list"]);
    let names: std::collections::BTreeSet<String> = json(&out)["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 8, "{names:?}");
}

#[test]
fn instance_stop_and_terminate() {
    let home = tempfile::tempdir().unwrap();
    assert!(
        run(home.path(), &["launch", "python-research", "box"])
            .status
            .success()
    );
    let out = run(home.path(), &["--json", "instance", "stop", "box"]);
    assert_eq!(json(&out)["instance"]["state"], "stopped");
    // A stopped workstation starts again, and stops again.
    let out = run(home.path(), &["--json", "instance", "start", "box"]);
    assert_eq!(json(&out)["instance"]["state"], "running");
    let out = run(home.path(), &["instance", "start", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = run(home.path(), &["--json", "instance", "stop", "box"]);
    assert_eq!(json(&out)["instance"]["state"], "stopped");
    // Terminate asks; without a terminal the answer is No.
    let out = run(home.path(), &["instance", "terminate", "box"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--yes"));
    let out = run(
        home.path(),
        &["--yes", "--json", "instance", "terminate", "box"],
    );
    assert_eq!(json(&out)["instance"]["state"], "terminated");
    // A terminated one cannot be started: bad input, exit 2.
    let out = run(home.path(), &["instance", "start", "box"]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(home.path(), &["instance", "status", "box"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn an_unknown_provider_is_invalid_input() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &["--provider", "gcp", "ami", "resolve", "python-ml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`local`"), "{}", stderr(&out));
}

#[test]
fn config_file_is_beaten_by_env_which_is_beaten_by_flag() {
    let home = tempfile::tempdir().unwrap();
    assert!(
        run(home.path(), &["config", "set", "region", "eu-west-1"])
            .status
            .success()
    );
    let region = |out: Output| json(&out)["region"].as_str().unwrap().to_string();
    assert_eq!(
        region(run(home.path(), &["--json", "ami", "resolve", "python-ml"])),
        "eu-west-1"
    );
    let out = cws(home.path())
        .env("CWS_REGION", "us-west-2")
        .args(["--json", "ami", "resolve", "python-ml"])
        .output()
        .unwrap();
    assert_eq!(region(out), "us-west-2");
    let out = cws(home.path())
        .env("CWS_REGION", "us-west-2")
        .args([
            "--region",
            "ap-southeast-1",
            "--json",
            "ami",
            "resolve",
            "python-ml",
        ])
        .output()
        .unwrap();
    assert_eq!(region(out), "ap-southeast-1");
    let out = run(home.path(), &["config", "set", "region", "mars-1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn version_and_completions() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["--version"]);
    assert!(stdout(&out).starts_with("cws "));
    let out = run(home.path(), &["completions", "bash"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("_cws"));
}

#[test]
fn unknown_template_is_invalid_input_with_suggestions() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["ami", "resolve", "python-m"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("python-ml"), "{}", stderr(&out));
}

#[test]
fn the_fallback_graph_can_be_overridden_from_home_or_a_flag() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("regions.yaml"),
        "fallbacks:\n  ap-south-1: [us-east-1]\n",
    )
    .unwrap();
    let out = run(
        home.path(),
        &["--json", "regions", "fallbacks", "ap-south-1"],
    );
    let v = json(&out);
    assert_eq!(v["source"], "override");
    assert_eq!(v["fallbacks"][0]["code"], "us-east-1");
    // The override steers cross-region resolution too.
    let out = run(
        home.path(),
        &[
            "--region",
            "ap-south-1",
            "--json",
            "ami",
            "resolve",
            "python-ml",
        ],
    );
    assert_eq!(json(&out)["source_region"], "us-east-1");

    let bad = home.path().join("bad-regions.yaml");
    std::fs::write(&bad, "fallbacks:\n  us-east-1: [us-east-1]\n").unwrap();
    let out = run(
        home.path(),
        &[
            "--regions-file",
            bad.to_str().unwrap(),
            "regions",
            "fallbacks",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad-regions.yaml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn templates_path_env_and_home_templates_are_searched_before_bundled() {
    let home = tempfile::tempdir().unwrap();
    let env_dir = home.path().join("env-templates");
    std::fs::create_dir_all(&env_dir).unwrap();
    std::fs::write(
        env_dir.join("python-ml.yaml"),
        "name: Lab Python ML\nslug: python-ml\ninherits: python-ml\ndescription: our lab's variant\n",
    )
    .unwrap();
    let out = cws(home.path())
        .env("CWS_TEMPLATES_PATH", &env_dir)
        .args(["--json", "templates", "list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let entries = json(&out);
    let ml: Vec<&Value> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["slug"] == "python-ml")
        .collect();
    assert!(ml.iter().any(|e| e["name"] == "Lab Python ML"), "{ml:?}");
    let out = cws(home.path())
        .env("CWS_TEMPLATES_PATH", &env_dir)
        .args(["--json", "ami", "resolve", "python-ml"])
        .output()
        .unwrap();
    // The lab variant inherits the mappings, so it still resolves directly.
    assert_eq!(json(&out)["method"], "direct_mapping");
}

/// A sparse file of `len` bytes: refused by its size, so it costs no disk and is never read.
fn sparse(path: &std::path::Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// Exit 2, and stderr names the file, says why, and has a `help:` line with the fix.
fn refused(out: &Output, file: &str, why: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(file), "the file is not named: {err}");
    assert!(err.contains(why), "{err}");
    assert!(err.contains("help:"), "no fix: {err}");
    err
}

#[cfg(unix)]
#[test]
fn templates_validate_dev_zero_is_refused_by_its_type() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["templates", "validate", "/dev/zero"]);
    let err = refused(&out, "/dev/zero", "not a regular file");
    assert!(err.contains("template file"), "{err}");
}

#[test]
fn templates_validate_refuses_a_file_over_the_limit() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("huge.yaml");
    sparse(&file, cws_template::MAX_TEMPLATE_BYTES + 1);
    let out = run(
        home.path(),
        &["templates", "validate", file.to_str().unwrap()],
    );
    refused(&out, "huge.yaml", "larger than the limit of 1 MiB");
    // JSON says the same in the file's row.
    let out = run(
        home.path(),
        &["--json", "templates", "validate", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let row = &json(&out)[0];
    assert_eq!(row["valid"], false);
    assert!(
        row["error"]
            .as_str()
            .is_some_and(|e| e.contains("larger than the limit of 1 MiB")),
        "{row}"
    );
}

#[test]
fn a_too_large_template_on_the_search_path_is_listed_as_broken_and_the_rest_still_list() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("lab-templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("lab.yaml"),
        "name: Lab\nslug: lab\nversion: 1.0.0\nbase: ubuntu-24.04\n",
    )
    .unwrap();
    sparse(&dir.join("huge.yaml"), cws_template::MAX_TEMPLATE_BYTES + 1);
    let dir_arg = dir.to_str().unwrap();

    let out = run(home.path(), &["--templates", dir_arg, "templates", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let huge_row = text
        .lines()
        .find(|l| l.contains("huge.yaml"))
        .unwrap_or_else(|| panic!("huge.yaml is not listed:\n{text}"));
    assert!(huge_row.contains("broken"), "{huge_row}");
    for slug in ["lab", "python-ml", "r-research"] {
        assert!(text.contains(slug), "{slug} missing:\n{text}");
    }
    let err = stderr(&out);
    assert!(err.contains("warning:"), "{err}");
    assert!(err.contains("huge.yaml"), "{err}");
    assert!(err.contains("larger than the limit of 1 MiB"), "{err}");

    let out = run(
        home.path(),
        &["--templates", dir_arg, "--json", "templates", "list"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let entries = json(&out);
    let entries = entries.as_array().unwrap();
    let by_slug = |s: &str| entries.iter().find(|e| e["slug"] == s).unwrap();
    assert!(by_slug("huge")["error"].is_string());
    assert!(by_slug("lab")["error"].is_null());

    // The other templates are still served.
    let out = run(
        home.path(),
        &["--templates", dir_arg, "templates", "show", "lab"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[cfg(unix)]
#[test]
fn a_regions_or_prices_file_that_is_not_a_regular_file_exits_2() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &["--regions-file", "/dev/zero", "regions", "fallbacks"],
    );
    let err = refused(&out, "/dev/zero", "not a regular file");
    assert!(err.contains("--regions-file"), "{err}");

    let out = run(
        home.path(),
        &["--prices-file", "/dev/zero", "ami", "costs", "python-ml"],
    );
    let err = refused(&out, "/dev/zero", "not a regular file");
    assert!(err.contains("--prices-file"), "{err}");
}

#[test]
fn a_regions_file_over_the_limit_exits_2() {
    let home = tempfile::tempdir().unwrap();
    sparse(
        &home.path().join("regions.yaml"),
        cws_regions::MAX_OVERRIDE_BYTES + 1,
    );
    let out = run(home.path(), &["regions", "fallbacks"]);
    refused(&out, "regions.yaml", "larger than the limit of 1 MiB");
}

#[test]
fn config_state_and_pending_files_over_their_limits_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    sparse(&config, 64 * 1024 + 1);
    let out = run(home.path(), &["templates", "list"]);
    let err = refused(&out, "config.toml", "larger than the limit of 64 KiB");
    assert!(err.contains("cws config set"), "{err}");
    std::fs::remove_file(&config).unwrap();

    // The simulated cloud's state: generous, but bounded.
    assert!(run(home.path(), &["instance", "list"]).status.success());
    let state = home.path().join("localcloud").join("state.json");
    let kept = home.path().join("state.json.real");
    std::fs::rename(&state, &kept).unwrap();
    sparse(&state, cws_localcloud::MAX_STATE_BYTES + 1);
    let out = run(home.path(), &["instance", "list"]);
    let err = refused(&out, "state.json", "larger than the limit of 256 MiB");
    assert!(err.contains("freshly seeded"), "{err}");
    std::fs::rename(&kept, &state).unwrap();

    let pending = home.path().join("pending-images.json");
    sparse(&pending, cws_lifecycle::MAX_PENDING_BYTES + 1);
    let out = run(home.path(), &["ami", "status"]);
    let err = refused(
        &out,
        "pending-images.json",
        "larger than the limit of 16 MiB",
    );
    assert!(err.contains("not affected"), "{err}");
}

#[test]
fn a_malformed_endpoint_url_is_bad_input_before_any_call() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &[
            "--provider",
            "aws",
            "--endpoint-url",
            "http://[::1",
            "ami",
            "resolve",
            "python-ml",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("http://[::1"), "{}", stderr(&out));
    assert!(stderr(&out).contains("IPv6"), "{}", stderr(&out));
}

#[test]
fn an_endpoint_url_with_the_simulated_provider_is_called_out() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &[
            "--endpoint-url",
            "http://127.0.0.1:5000",
            "ami",
            "resolve",
            "python-ml",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("LocalCloud, the simulated provider in use, ignores it"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_errors_point_at_the_file_line_and_key() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let config = h.join("config.toml");

    // A TOML mistake: the file, line and column, and a fix that works while the file is broken.
    std::fs::write(&config, "provider = \"local\"\nregion = us-east-1\n").unwrap();
    let out = run(h, &["ami", "resolve", "python-ml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("config.toml:2:10:"), "{err}");
    assert!(err.contains(".bak"), "{err}");

    // A region the catalogue does not know is blamed on the config file, not on --region.
    std::fs::write(&config, "region = \"us-est-1\"\n").unwrap();
    let out = run(h, &["ami", "resolve", "python-ml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("`region` in "), "{err}");
    assert!(err.contains("config.toml"), "{err}");
    assert!(!err.starts_with("error: --region"), "{err}");
    assert!(err.contains("us-east-1"), "did you mean: {err}");
}

#[test]
fn a_broken_state_file_is_reported_once_with_its_fix() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("localcloud");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("state.json"), "{broken").unwrap();
    let out = run(home.path(), &["ami", "resolve", "python-ml"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("is not valid LocalCloud JSON").count(),
        1,
        "the cause is said once, not repeated by its wrapper: {err}"
    );
    assert!(err.contains(".bak"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_read_only_state_file_is_not_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    assert!(
        run(home.path(), &["ami", "resolve", "python-ml"])
            .status
            .success()
    );
    let state = home.path().join("localcloud").join("state.json");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&state).unwrap();
    let out = run(home.path(), &["launch", "python-research", "box"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "the file is untouched"
    );
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444, "and still read-only");
}

/// Runs `cws` on a terminal, answers its question with `input` once `[y/N]` appears, and
/// returns the exit code and what it wrote to the terminal.
#[cfg(unix)]
fn answer_on_a_terminal(home: &std::path::Path, args: &[&str], input: &[u8]) -> (i32, String) {
    type_on_a_terminal(home, &[], args, "[y/N]", input)
}

/// The terminate question on a real terminal: `y` agrees; `n`, a bare Enter and end of input
/// (Ctrl-D) all mean no, and nothing is terminated.
#[cfg(unix)]
#[test]
fn prompts_on_a_terminal_take_y_and_refuse_n_enter_and_eof() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    assert!(
        run(h, &["launch", "python-research", "box"])
            .status
            .success()
    );
    let state = |h: &std::path::Path| {
        let v = json(&run(h, &["--json", "instance", "status", "box"]));
        v["instance"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for (input, label) in [
        (&b"n\n"[..], "n"),
        (&b"\n"[..], "Enter"),
        (&b"\x04"[..], "EOF"),
    ] {
        let (code, text) = answer_on_a_terminal(h, &["instance", "terminate", "box"], input);
        assert_ne!(code, 0, "{label}: {text}");
        assert!(text.contains("Terminate box"), "{label}: {text}");
        assert_eq!(state(h), "running", "{label} must not terminate");
    }
    let (code, text) = answer_on_a_terminal(h, &["instance", "terminate", "box"], b"y\n");
    assert_eq!(code, 0, "{text}");
    // A terminated instance no longer answers to its name.
    let out = run(h, &["instance", "status", "box"]);
    assert!(!out.status.success(), "{}", stdout(&out));
}

#[test]
fn resolve_modes_give_the_same_answer_and_a_bad_cache_ttl_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    for region in ["us-east-1", "ap-south-1", "me-south-1"] {
        let answers: Vec<(Value, Value)> = ["waves", "eager", "sequential"]
            .iter()
            .map(|mode| {
                let v = ok_json(
                    home.path(),
                    &[
                        "--json",
                        "--resolve-mode",
                        mode,
                        "ami",
                        "resolve",
                        "python-ml",
                        "--region",
                        region,
                    ],
                );
                (v["method"].clone(), v["ami_id"].clone())
            })
            .collect();
        assert!(
            answers.windows(2).all(|w| w[0] == w[1]),
            "{region}: {answers:?}"
        );
    }
    let out = run(
        home.path(),
        &["--cache-ttl", "banana", "ami", "resolve", "python-ml"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--cache-ttl") && err.contains("banana") && err.contains("2m"),
        "{err}"
    );
}

/// The guide's launch line: how much faster the image path is than the script, from the
/// timing model; a script launch has none.
#[test]
fn an_image_launch_says_how_much_faster_it_is_than_the_script() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = run(h, &["launch", "python-ml", "fast"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("📈 Performance: "))
        .unwrap_or_else(|| panic!("no performance line: {text}"));
    assert!(line.contains("x faster launch (30 s vs "), "{line}");
    let out = run(h, &["launch", "python-research", "slow"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("📈"), "{}", stdout(&out));
}

/// The guide's `cws ami create python-ml my-instance --wait-for-running` runs as written: the
/// image is named after the template, its version and the time.
#[test]
fn ami_create_without_a_name_names_the_image_after_the_template() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    assert!(
        run(h, &["launch", "python-ml", "my-instance"])
            .status
            .success()
    );
    let out = run(
        h,
        &[
            "--json",
            "ami",
            "create",
            "python-ml",
            "my-instance",
            "--wait-for-running",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let name = v["name"].as_str().unwrap();
    assert!(name.starts_with("Python Machine Learning 1.2.0 "), "{name}");
    assert!(name.ends_with(" UTC"), "{name}");
    assert!(
        stderr(&out).contains("pass --name to choose"),
        "{}",
        stderr(&out)
    );
}

/// `--prefer-script` asks as the release notes do: "Continue with script provisioning?"; `y`
/// and `--yes` keep the script, `n`, Enter and no terminal take the image.
#[cfg(unix)]
#[test]
fn prefer_script_asks_whether_to_continue_with_the_script() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (code, text) = answer_on_a_terminal(
        h,
        &["launch", "python-ml", "kept", "--prefer-script"],
        b"y\n",
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Continue with script provisioning?"),
        "{text}"
    );
    let method = |name: &str| {
        let v = json(&run(h, &["--json", "instance", "status", name]));
        v["instance"]["tags"]["cws:method"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(method("kept"), "script_fallback");
    let (code, text) = answer_on_a_terminal(
        h,
        &["launch", "python-ml", "switched", "--prefer-script"],
        b"n\n",
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(method("switched"), "direct_mapping");
    // No terminal: No, the image.
    let v = ok_json(
        h,
        &["--json", "launch", "python-ml", "quiet", "--prefer-script"],
    );
    assert_eq!(v["resolution"]["method"], "direct_mapping", "{v}");
    // --yes: the script, as asked for.
    let v = ok_json(
        h,
        &[
            "--json",
            "--yes",
            "launch",
            "python-ml",
            "scripted",
            "--prefer-script",
        ],
    );
    assert_eq!(v["resolution"]["method"], "script_fallback", "{v}");
}

/// A dry run predicts what the launch would refuse: a name already in use.
#[test]
fn a_dry_run_refuses_a_name_the_launch_would_refuse() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    assert!(run(h, &["launch", "python-ml", "taken"]).status.success());
    let out = run(h, &["launch", "python-ml", "taken", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert!(
        run(h, &["launch", "python-ml", "free", "--dry-run"])
            .status
            .success()
    );
}

#[test]
fn a_dry_run_says_what_the_launch_would_refuse_or_ask_about_its_copy() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let args = [
        "--json",
        "--region",
        "ap-south-1",
        "launch",
        "python-ml",
        "mumbai",
        "--dry-run",
    ];
    let v = ok_json(h, &args);
    assert_eq!(v["resolution"]["method"], "cross_region", "{v}");
    let warnings = v["resolution"]["warnings"].to_string();
    assert!(
        warnings.contains("asks before this copy") && warnings.contains("--yes"),
        "{warnings}"
    );
    // Above the policy's copy cap, --yes alone would not do: the dry run says so.
    std::fs::write(h.join("policy.toml"), "max_copy_cost_usd = 1.0\n").unwrap();
    let mut with_yes = vec!["--yes"];
    with_yes.extend(args);
    let v = ok_json(h, &with_yes);
    let warnings = v["resolution"]["warnings"].to_string();
    assert!(
        warnings.contains("would not make this copy")
            && warnings.contains("max_copy_cost_usd")
            && warnings.contains("--allow-cost"),
        "{warnings}"
    );
}

#[test]
fn the_guides_terse_template_validates_with_its_defaults_announced() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let dir = h.join("templates");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("my-lab.yaml");
    std::fs::write(
        &file,
        "name: My Lab\nami_config:\n  ami_search:\n    owners: [self]\n    name_pattern: \"my-lab-*\"\n",
    )
    .unwrap();
    let out = run(h, &["templates", "validate", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("ok ") && text.contains("(my-lab 1.0.0)"),
        "{text}"
    );
    assert!(
        text.contains("note: `slug` is not set: `my-lab`, from the file name"),
        "{text}"
    );
    assert!(
        text.contains("note: `base` is not set: ubuntu-24.04"),
        "{text}"
    );
    let v = ok_json(
        h,
        &["--json", "templates", "validate", file.to_str().unwrap()],
    );
    assert_eq!(v[0]["notes"].as_array().map(Vec::len), Some(3), "{v}");
    // Found by its file name's slug on the search path.
    let v = ok_json(h, &["--json", "templates", "show", "my-lab"]);
    assert_eq!(v["template"]["slug"], "my-lab");
}

#[test]
fn a_dry_run_explains_a_plan_its_cost_recommendation_disagrees_with() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &[
            "--region",
            "ap-south-1",
            "launch",
            "python-ml",
            "mumbai",
            "--dry-run",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("Recommendation: script"), "{text}");
    assert!(
        text.contains("The plan launches from an image")
            && text.contains("--ami-strategy script_fallback"),
        "{text}"
    );
}

/// A template error's own `help:` line is printed on a line of its own, not as a literal `\n`.
#[test]
fn a_template_errors_help_line_is_a_line_of_its_own() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let missing = h.join("no-such-dir");
    let out = run(
        h,
        &[
            "--templates",
            missing.to_str().unwrap(),
            "launch",
            "python-ml",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("\\n"), "{err}");
    assert!(
        err.lines()
            .any(|l| l == "  help: check that the path exists and is readable"),
        "{err}"
    );
}

/// `templates list` names each problem of a broken file on a warning line of its own, its
/// help on the next line, never a literal `\n`.
#[test]
fn templates_list_warns_once_per_problem_of_a_broken_file() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("lab-templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("two.yaml"),
        "name: Two\nslug: two\nversion: \"1.0\"\nbase: ubuntu-24.04\ncolour: red\n",
    )
    .unwrap();
    let out = run(
        home.path(),
        &["--templates", dir.to_str().unwrap(), "templates", "list"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("\\n"), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(warnings[0].contains("two.yaml:3:"), "{err}");
    assert!(warnings[1].contains("two.yaml:5:"), "{err}");
    assert!(err.lines().any(|l| l.starts_with("  help: ")), "{err}");
}
