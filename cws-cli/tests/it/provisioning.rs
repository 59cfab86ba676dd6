//! The provisioning script's outcome through the `cws` binary on LocalCloud: `launch --wait`
//! waits for it, `instance status` shows it, and under `ami_fallback` a failed script is
//! replaced by a launch from an image, with consent.

use std::path::Path;

use crate::common::*;

/// A template provisioned by script whose `post_install` LocalCloud makes fail (the marker
/// [`cws_localcloud::SIMULATE_PROVISIONING_FAILURE`] on one of its lines).
fn write_template(dir: &Path, slug: &str, strategy: Option<&str>, fails: bool) {
    let post = if fails {
        "  echo configuring  # cws-localcloud:simulate-provisioning-failure\n"
    } else {
        "  echo configuring\n"
    };
    let ami = strategy
        .map(|s| {
            format!(
                "ami_config:\n  strategy: {s}\n  ami_mappings:\n    us-east-1: ami-0123456789abcdef0\n"
            )
        })
        .unwrap_or_default();
    std::fs::write(
        dir.join(format!("{slug}.yaml")),
        format!(
            "name: {slug}\nslug: {slug}\nversion: 1.0.0\nbase: ubuntu-24.04\npackages:\n  pip: [numpy]\npost_install: |\n{post}{ami}"
        ),
    )
    .unwrap();
}

fn templates(h: &Path) -> String {
    let dir = h.join("templates");
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

#[test]
fn the_marker_is_the_one_localcloud_knows() {
    assert_eq!(
        cws_localcloud::SIMULATE_PROVISIONING_FAILURE,
        "cws-localcloud:simulate-provisioning-failure"
    );
}

/// `launch --wait` on a script template waits for the script's outcome; `instance status`
/// shows it, in words and in JSON. A launch from an image has no provisioning to report.
#[test]
fn launch_wait_reports_success_and_status_shows_it() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let t = templates(h);
    write_template(Path::new(&t), "good-box", None, false);
    let out = run(
        h,
        &["--templates", &t, "launch", "good-box", "good", "--wait"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Provisioning succeeded: good is ready [simulated"),
        "{text}"
    );
    let status = run(h, &["instance", "status", "good"]);
    assert!(
        stdout(&status).contains("Provisioning: succeeded"),
        "{}",
        stdout(&status)
    );
    let v = ok_json(h, &["--json", "instance", "status", "good"]);
    assert_eq!(v["provisioning"]["outcome"], "succeeded", "{v}");
    let v = ok_json(
        h,
        &[
            "--json",
            "--templates",
            &t,
            "launch",
            "good-box",
            "good2",
            "--wait",
        ],
    );
    assert_eq!(v["provisioning"]["outcome"], "succeeded", "{v}");
    assert!(v.get("replaced_instance").is_none(), "{v}");
    // From an image: running is all there is to wait for.
    let out = run(h, &["launch", "python-ml", "imaged", "--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("imaged is running."),
        "{}",
        stdout(&out)
    );
    let v = ok_json(h, &["--json", "instance", "status", "imaged"]);
    assert!(v.get("provisioning").is_none(), "{v}");
    // Without --wait nothing waits, and --timeout needs --wait.
    let out = run(h, &["launch", "python-ml", "x", "--timeout", "5m"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// A failed script without an image to fall back to: exit 1 naming the step, the instance
/// kept for inspection, `instance status` showing the failure.
#[test]
fn a_failed_script_exits_1_naming_the_step_and_keeps_the_instance() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let t = templates(h);
    write_template(Path::new(&t), "bad-box", None, true);
    let out = run(
        h,
        &["--templates", &t, "launch", "bad-box", "bad", "--wait"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("failed at step `post_install (from the template)` (exit 1)"),
        "{err}"
    );
    assert!(err.contains("cws instance terminate bad"), "{err}");
    let v = ok_json(h, &["--json", "instance", "status", "bad"]);
    assert_eq!(v["instance"]["state"], "running", "{v}");
    assert_eq!(v["provisioning"]["outcome"], "failed", "{v}");
    assert_eq!(
        v["provisioning"]["step"], "post_install (from the template)",
        "{v}"
    );
    assert_eq!(v["provisioning"]["exit_code"], 1, "{v}");
    // JSON: the report says so, and the exit code is the same.
    let out = run(
        h,
        &[
            "--json",
            "--templates",
            &t,
            "launch",
            "bad-box",
            "bad2",
            "--wait",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(json(&out)["provisioning"]["outcome"], "failed");
}

/// Makes an image for `slug` (tagged for it, so dynamic_search finds it) from a workstation.
fn image_for(h: &Path, t: &str, slug: &str) -> String {
    assert!(run(h, &["launch", "python-ml", "donor"]).status.success());
    let v = ok_json(
        h,
        &[
            "--json",
            "--yes",
            "--templates",
            t,
            "ami",
            "create",
            slug,
            "donor",
        ],
    );
    v["image"]["id"]
        .as_str()
        .or_else(|| v["ami_id"].as_str())
        .unwrap_or_else(|| panic!("an image id in {v}"))
        .to_string()
}

/// `ami_fallback`: "script first, an image if the script fails". With --yes the failed
/// instance is terminated and the workstation launched again, under its name, from the image;
/// without consent (no terminal, no --yes) nothing is replaced and the launch exits 1.
#[test]
fn ami_fallback_replaces_a_failed_script_with_an_image_with_consent() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let t = templates(h);
    write_template(Path::new(&t), "flaky", Some("ami_fallback"), true);
    let image = image_for(h, &t, "flaky");

    // No consent: not replaced.
    let out = run(h, &["--templates", &t, "launch", "flaky", "ws", "--wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not replaced"), "{}", stderr(&out));
    let v = ok_json(h, &["--json", "instance", "status", "ws"]);
    assert_eq!(
        v["instance"]["tags"]["cws:method"], "script_fallback",
        "{v}"
    );
    let failed_id = v["instance"]["id"].as_str().unwrap().to_string();
    assert!(
        run(h, &["--yes", "instance", "terminate", "ws"])
            .status
            .success()
    );

    // --yes: replaced.
    let out = run(
        h,
        &[
            "--yes",
            "--templates",
            &t,
            "launch",
            "flaky",
            "ws",
            "--wait",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Provisioning failed at step"), "{text}");
    assert!(
        text.contains(&format!("from {image} via dynamic_search")),
        "{text}"
    );
    let v = ok_json(h, &["--json", "instance", "status", "ws"]);
    assert_eq!(v["instance"]["ami_id"], image.as_str(), "{v}");
    assert_eq!(v["instance"]["state"], "running", "{v}");
    assert_ne!(v["instance"]["id"], failed_id.as_str());
    // The failed instance is terminated, not left running.
    let all = ok_json(h, &["--json", "instance", "list", "--all"]);
    let ws: Vec<&serde_json::Value> = all["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["name"] == "ws")
        .collect();
    assert_eq!(ws.len(), 3, "{all}");
    assert_eq!(
        ws.iter().filter(|i| i["state"] == "running").count(),
        1,
        "{all}"
    );

    // The audit log has the termination and the launch that replaced it.
    let audit = ok_json(h, &["--json", "audit", "--action", "terminate"]);
    let terminated: Vec<&serde_json::Value> = audit["records"]
        .as_array()
        .unwrap_or_else(|| panic!("records in {audit}"))
        .iter()
        .filter(|r| r["details"]["reason"] == "provisioning script failed (ami_fallback)")
        .collect();
    assert_eq!(terminated.len(), 1, "{audit}");
    let launches = ok_json(h, &["--json", "audit", "--action", "launch"]);
    assert!(
        launches["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["details"]["replaces"] == terminated[0]["details"]["instance_id"]),
        "{launches}"
    );

    // JSON: the report names the replaced instance.
    let v = ok_json(
        h,
        &[
            "--json",
            "--yes",
            "--templates",
            &t,
            "launch",
            "flaky",
            "ws2",
            "--wait",
        ],
    );
    assert_eq!(v["provisioning"]["outcome"], "failed", "{v}");
    assert_eq!(v["replaced_instance"]["state"], "terminated", "{v}");
    assert_eq!(v["instance"]["ami_id"], image.as_str(), "{v}");
    assert_eq!(v["resolution"]["method"], "dynamic_search", "{v}");

    // Without --wait the launch says how a failure would be noticed.
    let out = run(h, &["--templates", &t, "launch", "flaky", "ws3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("pass --wait"), "{}", stdout(&out));
}

/// The replacement question on a terminal: `y` replaces, `n` keeps the failed instance.
#[cfg(unix)]
#[test]
fn the_replacement_question_on_a_terminal() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let t = templates(h);
    write_template(Path::new(&t), "flaky", Some("ami_fallback"), true);
    image_for(h, &t, "flaky");
    let (code, text) = type_on_a_terminal(
        h,
        &[],
        &["--templates", &t, "launch", "flaky", "no", "--wait"],
        "[y/N]",
        b"n\n",
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("falls back to an image"), "{text}");
    let v = ok_json(h, &["--json", "instance", "status", "no"]);
    assert_eq!(
        v["instance"]["tags"]["cws:method"], "script_fallback",
        "{v}"
    );
    let (code, text) = type_on_a_terminal(
        h,
        &[],
        &["--templates", &t, "launch", "flaky", "yes", "--wait"],
        "[y/N]",
        b"y\n",
    );
    assert_eq!(code, 0, "{text}");
    let v = ok_json(h, &["--json", "instance", "status", "yes"]);
    assert_eq!(v["instance"]["tags"]["cws:method"], "dynamic_search", "{v}");
}

/// The replacement needs a copy from another region: the copy is asked about and made before
/// anything is terminated. Refused (by the institution's cost cap, even with --yes), the
/// failed instance is kept and nothing is launched; agreed, the workstation is launched again
/// from the copy.
#[test]
fn a_replacement_that_needs_a_copy_settles_it_before_terminating() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let t = templates(h);
    write_template(Path::new(&t), "flaky", Some("ami_fallback"), true);
    // The template's only image is in us-west-2.
    assert!(
        run(
            h,
            &["--region", "us-west-2", "launch", "python-ml", "donor"]
        )
        .status
        .success()
    );
    let made = ok_json(
        h,
        &[
            "--json",
            "--yes",
            "--region",
            "us-west-2",
            "--templates",
            &t,
            "ami",
            "create",
            "flaky",
            "donor",
        ],
    );
    assert!(made.to_string().contains("ami-"), "{made}");

    std::fs::write(h.join("policy.toml"), "max_copy_cost_usd = 0.01\n").unwrap();
    let out = run(
        h,
        &[
            "--yes",
            "--templates",
            &t,
            "launch",
            "flaky",
            "capped",
            "--wait",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not replaced"), "{}", stderr(&out));
    let v = ok_json(h, &["--json", "instance", "status", "capped"]);
    assert_eq!(
        v["instance"]["state"], "running",
        "the failed instance is kept: {v}"
    );
    assert_eq!(
        v["instance"]["tags"]["cws:method"], "script_fallback",
        "{v}"
    );

    std::fs::remove_file(h.join("policy.toml")).unwrap();
    let v = ok_json(
        h,
        &[
            "--json",
            "--yes",
            "--templates",
            &t,
            "launch",
            "flaky",
            "copied",
            "--wait",
        ],
    );
    assert_eq!(v["replaced_instance"]["state"], "terminated", "{v}");
    let copy = v["copied_image"]
        .as_str()
        .unwrap_or_else(|| panic!("a copy in {v}"));
    assert_eq!(v["instance"]["ami_id"], copy, "{v}");
}

/// A bad --timeout is refused before anything is launched.
#[test]
fn a_bad_timeout_is_refused_before_the_launch() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = run(
        h,
        &[
            "launch",
            "python-ml",
            "never",
            "--wait",
            "--timeout",
            "bogus",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--timeout"), "{}", stderr(&out));
    let all = ok_json(h, &["--json", "instance", "list", "--all"]);
    assert_eq!(all["instances"].as_array().map(Vec::len), Some(0), "{all}");
}
