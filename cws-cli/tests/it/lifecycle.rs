//! `cws ami create|create-multi|copy|share|info|deregister|status`, run as a user would on a
//! temporary `$CWS_HOME` with the simulated cloud.

use std::collections::BTreeSet;
use std::path::Path;

use super::common::*;

/// A launched `box` and an image of it, `My Setup`; returns the image id.
fn box_and_image(home: &Path) -> String {
    ok_json(home, &["--json", "launch", "python-research", "box"]);
    let v = ok_json(
        home,
        &[
            "--json",
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "My Setup",
        ],
    );
    v["ami_id"].as_str().unwrap().to_string()
}

const MY_PYTHON: &str = "name: My Python\nslug: my-python\nversion: 1.0.0\nbase: ubuntu-24.04\n\
inherits: python-research\nami_config:\n  strategy: ami_preferred\n  ami_search:\n    \
owners: [self]\n    required_tags: {\"cws:template\": python-research}\n";

#[test]
fn a_tuned_workstation_becomes_an_image_the_templates_find_in_three_regions() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let templates = h.join("my-templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(templates.join("my-python.yaml"), MY_PYTHON).unwrap();
    let tdir = templates.to_str().unwrap();

    // cws launch python-research box && cws ami create python-research box --name "My Setup"
    let out = run(h, &["launch", "python-research", "box"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        h,
        &[
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "My Setup",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("Provider: local"), "{text}");
    assert!(text.contains("Created ami-"), "{text}");
    assert!(text.contains("[simulated]"), "{text}");
    // python-research is a script template: the output says how to switch it to the image.
    assert!(text.contains("python-research has no ami_config"), "{text}");
    assert!(
        text.contains("ami_config:\n  strategy: ami_preferred"),
        "{text}"
    );
    assert!(text.contains("cws:template: python-research"), "{text}");
    // No terminal: no spinners, nothing but warnings on stderr.
    assert!(!stderr(&out).contains('✓'), "{}", stderr(&out));

    // The same command again finds the image instead of failing on the name.
    let again = ok_json(
        h,
        &[
            "--json",
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "My Setup",
        ],
    );
    assert_eq!(again["reused"], true);
    let ami = again["ami_id"].as_str().unwrap().to_string();
    for key in ["region", "name", "state", "template"] {
        assert!(again.get(key).is_some(), "{key} missing: {again}");
    }
    assert_eq!(again["region"], "us-east-1");
    assert_eq!(again["name"], "My Setup");
    assert_eq!(again["state"], "available");
    assert_eq!(again["template"], "python-research");
    assert_eq!(again["provider"]["simulated"], true);

    // cws ami list --template python-research shows it as private.
    let list = ok_json(
        h,
        &["--json", "ami", "list", "--template", "python-research"],
    );
    let row = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == ami.as_str())
        .unwrap_or_else(|| panic!("{ami} not listed: {list}"));
    assert_eq!(row["source"], "private");

    // my-python (inherits python-research, searches the account's python-research images)
    // resolves to it by dynamic search.
    let r = ok_json(
        h,
        &["--json", "--templates", tdir, "ami", "resolve", "my-python"],
    );
    assert_eq!(r["method"], "dynamic_search", "{r}");
    assert_eq!(r["ami_id"], ami.as_str());

    // create-multi spends on copies: without a terminal and without --yes it asks, shows
    // where, how long and how much, and makes nothing.
    let regions = ["us-east-1", "us-west-2", "eu-west-1"];
    let images = |h| {
        regions
            .iter()
            .map(|r| {
                ok_json(
                    h,
                    &[
                        "--json",
                        "--region",
                        r,
                        "ami",
                        "list",
                        "--template",
                        "python-research",
                    ],
                )
            })
            .collect::<Vec<_>>()
    };
    let images_before = images(h);
    let out = run(
        h,
        &[
            "ami",
            "create-multi",
            "python-research",
            "box",
            "--regions",
            &regions.join(","),
            "--name",
            "Not Asked",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for needle in [
        "copy it (",
        "us-west-2: ~",
        "eu-west-1: ~",
        "/month storage",
        "Total: ",
        "pass --yes to agree",
        "nothing was made",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    assert_eq!(
        images(h),
        images_before,
        "a declined create-multi makes nothing"
    );

    // With --yes: the master is found again, two copies are made.
    let multi = ok_json(
        h,
        &[
            "--json",
            "--yes",
            "ami",
            "create-multi",
            "python-research",
            "box",
            "--regions",
            &regions.join(","),
            "--name",
            "My Setup",
        ],
    );
    assert_eq!(multi["complete"], true, "{multi}");
    assert_eq!(multi["master"]["ami_id"], ami.as_str());
    let outcomes: Vec<&str> = multi["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["source", "copied", "copied"]);

    // cws ami test my-python --all-regions: the three are available, and every region whose
    // fallbacks reach one of them needs a copy.
    let test = ok_json(
        h,
        &[
            "--json",
            "--templates",
            tdir,
            "ami",
            "test",
            "my-python",
            "--all-regions",
        ],
    );
    let graph = cws_regions::FallbackGraph::published();
    let held: BTreeSet<&str> = regions.into_iter().collect();
    let mut neighbours = 0;
    for row in test["regions"].as_array().unwrap() {
        let region = row["region"].as_str().unwrap();
        let status = row["status"].as_str().unwrap();
        if held.contains(region) {
            assert_eq!(status, "available", "{row}");
        } else if graph
            .walk(region, 3)
            .unwrap()
            .iter()
            .any(|r| held.contains(r))
        {
            assert_eq!(status, "copy_required", "{row}");
            neighbours += 1;
        }
    }
    assert!(neighbours >= 3, "{test}");

    // Nothing is left in flight.
    let status = ok_json(h, &["--json", "ami", "status"]);
    assert_eq!(status["images"].as_array().unwrap().len(), 0, "{status}");
}

#[test]
fn create_refuses_an_instance_that_is_not_running() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok_json(h, &["--json", "launch", "python-research", "box"]);
    let out = run(h, &["instance", "stop", "box"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        h,
        &[
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "Stopped",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--wait-for-running"),
        "{}",
        stderr(&out)
    );

    let out = run(
        h,
        &[
            "ami",
            "create",
            "python-research",
            "nobody",
            "--name",
            "Nobody",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    for (flag, value) in [("--timeout", "soon"), ("--tag", "novalue")] {
        let out = run(
            h,
            &[
                "ami",
                "create",
                "python-research",
                "box",
                "--name",
                "Bad Flag",
                flag,
                value,
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{}", stderr(&out));
    }

    let out = run(
        h,
        &[
            "ami",
            "create-multi",
            "python-research",
            "box",
            "--name",
            "X Image",
            "--regions",
            "us-east-1,us-wst-2",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("us-west-2"), "{}", stderr(&out));
}

#[test]
fn copy_needs_consent_and_is_tagged_with_its_provenance() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let ami = box_and_image(h);

    let out = run(h, &["ami", "copy", &ami, "--to", "eu-west-1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Cross-region copy required"), "{err}");
    assert!(err.contains('$'), "the cost is shown: {err}");
    assert!(err.contains("pass --yes"), "{err}");
    assert!(err.contains("not copied"), "{err}");
    assert!(stdout(&out).is_empty());

    let v = ok_json(
        h,
        &[
            "--json",
            "--yes",
            "ami",
            "copy",
            &ami,
            "--to",
            "eu-west-1",
            "--from",
            "us-east-1",
        ],
    );
    assert_eq!(v["region"], "eu-west-1");
    assert_eq!(v["source_ami"], ami.as_str());
    assert_eq!(v["template"], "python-research");
    assert_eq!(v["reused"], false);
    assert!(v["estimate"]["estimated_seconds"].as_u64().unwrap() > 0);
    let copy = v["ami_id"].as_str().unwrap().to_string();

    let info = ok_json(
        h,
        &["--json", "--region", "eu-west-1", "ami", "info", &copy],
    );
    assert_eq!(info["image"]["tags"]["cws:source-ami"], ami.as_str());
    assert_eq!(info["image"]["tags"]["cws:source-region"], "us-east-1");
    assert_eq!(info["image"]["tags"]["cws:template"], "python-research");

    // A second copy finds the first; nothing to agree to.
    let again = ok_json(h, &["--json", "ami", "copy", &ami, "--to", "eu-west-1"]);
    assert_eq!(again["reused"], true);
    assert_eq!(again["ami_id"], copy.as_str());
}

#[test]
fn share_grants_revokes_and_info_shows_who_may_launch() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let ami = box_and_image(h);

    // `--public` publishes a listing too, so it needs an identity, checked first.
    let public_create = [
        "ami",
        "create",
        "python-research",
        "box",
        "--name",
        "Public Setup",
        "--public",
    ];
    let out = run(h, &public_create);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("user.email"), "{}", stderr(&out));
    // An image made public widens access too: asked before anything is made.
    let out = run_as(h, "Alice <alice@uni.edu>", &public_create);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("public? Any AWS account"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("pass --yes to agree"),
        "{}",
        stderr(&out)
    );
    let listed = ok_json(
        h,
        &["--json", "ami", "list", "--template", "python-research"],
    );
    assert!(
        !listed.to_string().contains("Public Setup"),
        "nothing was made: {listed}"
    );

    // Sharing widens access: without a terminal and without --yes nothing changes, and the
    // question says who would gain what and how to agree.
    for audience in [
        &["--public"][..],
        &["--account", "111122223333"][..],
        &[
            "--org-arn",
            "arn:aws:organizations::123456789012:organization/o-abc",
        ][..],
    ] {
        let mut args = vec!["ami", "share", ami.as_str()];
        args.extend_from_slice(audience);
        let out = run_as(h, "Alice <alice@uni.edu>", &args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("pass --yes to agree"),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("nothing changed"), "{}", stderr(&out));
        let info = ok_json(h, &["--json", "ami", "info", &ami]);
        assert_eq!(info["shared_with"].as_array().unwrap().len(), 0, "{info}");
        assert_eq!(info["image"]["public"], false, "{info}");
    }

    let v = ok_json(
        h,
        &[
            "--json",
            "--yes",
            "ami",
            "share",
            &ami,
            "--account",
            "111122223333",
            "--account",
            "444455556666",
        ],
    );
    assert_eq!(v["action"], "granted");
    // The snapshots are shared too, so the accounts can copy the image.
    assert_eq!(v["snapshots"]["done"], true, "{v}");
    assert_eq!(
        v["snapshots"]["changed"], v["snapshots"]["snapshot_ids"],
        "{v}"
    );
    assert_eq!(v["snapshots"]["failed"].as_array().unwrap().len(), 0, "{v}");
    let info = ok_json(h, &["--json", "ami", "info", &ami]);
    let shared: Vec<&str> = info["shared_with"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    assert_eq!(shared, ["111122223333", "444455556666"]);

    let out = run(h, &["ami", "info", &ami]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("account 111122223333, account 444455556666"),
        "{}",
        stdout(&out)
    );

    let out = run(
        h,
        &[
            "ami",
            "share",
            &ami,
            "--account",
            "111122223333",
            "--revoke",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Revoked"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("create-volume permission revoked from account 111122223333"),
        "the snapshot part is reported: {}",
        stdout(&out)
    );
    let info = ok_json(h, &["--json", "ami", "info", &ami]);
    assert_eq!(info["shared_with"].as_array().unwrap().len(), 1, "{info}");

    let listed = ok_json(
        h,
        &["--json", "ami", "list", "--template", "python-research"],
    );
    assert!(
        listed.to_string().contains("\"source\":\"private\""),
        "{listed}"
    );
    let v = ok_json_as(
        h,
        "Alice <alice@uni.edu>",
        &["--json", "--yes", "ami", "share", &ami, "--public"],
    );
    assert_eq!(v["listing"]["id"], "alice/python-research", "{v}");
    assert_eq!(v["launch_permissions"][0]["kind"], "public", "{v}");
    // A public image of the account's own is listed as public, not private.
    let listed = ok_json(
        h,
        &["--json", "ami", "list", "--template", "python-research"],
    );
    assert!(
        listed.to_string().contains("\"source\":\"public\""),
        "{listed}"
    );
    assert!(
        !listed.to_string().contains("\"source\":\"private\""),
        "{listed}"
    );

    // Who to share with is required, and only one kind at a time.
    let out = run(h, &["ami", "share", &ami]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        h,
        &[
            "ami",
            "share",
            &ami,
            "--public",
            "--account",
            "111122223333",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(h, &["ami", "share", &ami, "--account", "12"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("12 digits"), "{}", stderr(&out));
}

#[test]
fn deregister_asks_and_status_tracks_images_in_flight() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let ami = box_and_image(h);

    let out = run(h, &["ami", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("No images in flight"),
        "{}",
        stdout(&out)
    );

    // What an interrupted `ami create` leaves behind.
    let record = serde_json::json!({
        "version": 1,
        "images": [{
            "image_id": ami,
            "region": "us-east-1",
            "name": "My Setup",
            "operation": "create",
            "template": "python-research",
            "started_at": "2026-01-01T00:00:00.000Z",
            "finish": "cws ami create python-research box --name 'My Setup' --region us-east-1",
            "cleanup": format!("cws ami deregister {ami} --region us-east-1"),
        }]
    });
    std::fs::write(
        h.join("pending-images.json"),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();
    let s = ok_json(h, &["--json", "ami", "status"]);
    let row = &s["images"][0];
    assert_eq!(row["image_id"], ami.as_str());
    assert_eq!(row["state"], "available");
    assert!(
        row["next"]
            .as_str()
            .unwrap()
            .contains("cws ami create python-research box"),
        "{row}"
    );
    let out = run(h, &["ami", "status"]);
    assert!(stdout(&out).contains(&ami), "{}", stdout(&out));
    assert!(stdout(&out).contains("available"), "{}", stdout(&out));

    // The record this cws writes keeps the job, and the CLI words the command from it.
    let record = serde_json::json!({
        "version": 1,
        "images": [{
            "image_id": ami,
            "region": "us-east-1",
            "name": "My Setup",
            "operation": "create",
            "template": "python-research",
            "started_at": "2026-01-01T00:00:00.000Z",
            "job": {
                "kind": "create",
                "template": "python-research",
                "instance": "box",
                "name": "My Setup",
                "region": "us-east-1",
            },
        }]
    });
    std::fs::write(
        h.join("pending-images.json"),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();
    let out = run(h, &["ami", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "{ami} (us-east-1): available; `cws ami create python-research box --name 'My Setup' \
             --region us-east-1` finishes whatever else the command had to do"
        )),
        "{}",
        stdout(&out)
    );
    let s = ok_json(h, &["--json", "ami", "status"]);
    let row = &s["images"][0];
    assert_eq!(
        row["finish"],
        "cws ami create python-research box --name 'My Setup' --region us-east-1"
    );
    assert_eq!(
        row["cleanup"],
        format!("cws ami deregister {ami} --region us-east-1")
    );
    assert_eq!(row["job"]["kind"], "create");

    // Without a terminal and without --yes the prompt is answered no.
    let out = run(h, &["ami", "deregister", &ami]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("pass --yes"), "{}", stderr(&out));
    ok_json(h, &["--json", "ami", "info", &ami]);

    let v = ok_json(
        h,
        &[
            "--json",
            "--yes",
            "ami",
            "deregister",
            &ami,
            "--delete-snapshots",
        ],
    );
    assert_eq!(v["ami_id"], ami.as_str());
    assert_eq!(v["pending_record_removed"], true);
    assert_eq!(v["snapshots"]["done"], true, "{v}");
    assert_eq!(
        v["snapshots"]["changed"], v["snapshots"]["snapshot_ids"],
        "{v}"
    );
    assert!(
        v["snapshots"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("deleted"),
        "{v}"
    );
    let out = run(h, &["ami", "info", &ami]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let s = ok_json(h, &["--json", "ami", "status"]);
    assert_eq!(s["images"].as_array().unwrap().len(), 0, "{s}");

    // A corrupt record is an error that says how to recover.
    std::fs::write(h.join("pending-images.json"), "{oops").unwrap();
    let out = run(h, &["ami", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("move it aside"), "{}", stderr(&out));
}

#[test]
fn create_with_wait_for_running_offers_to_start_a_stopped_instance() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok_json(h, &["--json", "launch", "python-research", "box"]);
    assert!(run(h, &["instance", "stop", "box"]).status.success());
    let args = [
        "ami",
        "create",
        "python-research",
        "box",
        "--name",
        "Woken",
        "--wait-for-running",
    ];
    // No terminal, no --yes: the answer is No, nothing is made and the instance stays stopped.
    let out = run(h, &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is stopped. Start it"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    let st = ok_json(h, &["--json", "instance", "status", "box"]);
    assert_eq!(st["instance"]["state"], "stopped");
    // With consent it is started and imaged.
    let mut with_yes = vec!["--yes", "--json"];
    with_yes.extend(args);
    let made = ok_json(h, &with_yes);
    assert!(
        made["ami_id"].as_str().unwrap().starts_with("ami-"),
        "{made}"
    );
    let st = ok_json(h, &["--json", "instance", "status", "box"]);
    assert_eq!(st["instance"]["state"], "running");
}

#[test]
fn create_multi_prices_a_new_image_at_the_instances_disk_and_checks_the_name_before_asking() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok_json(h, &["--json", "launch", "python-research", "box"]);
    // A name EC2 refuses is refused before the question, whatever the answer would be.
    let out = run(
        h,
        &[
            "--yes",
            "ami",
            "create-multi",
            "python-research",
            "box",
            "--regions",
            "us-east-1,us-west-2",
            "--name",
            "X",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("Continue?"),
        "asked first: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("3-128"), "{}", stderr(&out));
    // The plan prices the new image at the size it will have (the template's 40 GiB root
    // volume), not a guess.
    let out = run(
        h,
        &[
            "ami",
            "create-multi",
            "python-research",
            "box",
            "--regions",
            "us-east-1,us-west-2",
            "--name",
            "Forty",
        ],
    );
    assert!(stderr(&out).contains("(40 GiB)"), "{}", stderr(&out));
    let made = ok_json(
        h,
        &[
            "--yes",
            "--json",
            "ami",
            "create-multi",
            "python-research",
            "box",
            "--regions",
            "us-east-1,us-west-2",
            "--name",
            "Forty",
        ],
    );
    assert!(made.to_string().contains("us-west-2"), "{made}");
}

/// create-multi with a name another instance's image already holds is refused before it asks
/// anything (it would not be allowed to reuse that image).
#[test]
fn create_multi_refuses_a_taken_name_before_asking() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    assert!(run(h, &["launch", "python-ml", "box"]).status.success());
    assert!(run(h, &["launch", "python-ml", "box2"]).status.success());
    assert!(
        run(
            h,
            &[
                "--yes",
                "ami",
                "create",
                "python-ml",
                "box",
                "--name",
                "My Setup"
            ]
        )
        .status
        .success()
    );
    let out = run(
        h,
        &[
            "--yes",
            "ami",
            "create-multi",
            "python-ml",
            "box2",
            "--regions",
            "us-east-1,us-west-2",
            "--name",
            "My Setup",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("already exists"), "{err}");
    assert!(!err.contains("Continue?"), "asked before refusing: {err}");
}
