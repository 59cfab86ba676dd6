//! The community registry from the user's side (the README walk-through): share an image
//! with a community, browse, rate as two people, launch a template that opts into the
//! listing, revoke, and launch again.

use std::path::Path;

use super::common::*;

const ALICE: &str = "Alice Smith <alice@uni.edu>";
const BOB: &str = "Bob Jones <bob@lab.org>";

/// A template that launches from alice's listing (signatures arrive with the trust work).
const LAB_PYTHON: &str = "name: Lab Python\nslug: lab-python\nversion: 1.0.0\nbase: ubuntu-24.04\n\
inherits: python-research\nami_config:\n  strategy: ami_preferred\n  community:\n    \
listing: alice/python-research\n    min_rating: 3.0\n    require_signature: false\n";

fn tuned_image(h: &Path) -> String {
    ok_json(h, &["--json", "launch", "python-research", "box"]);
    let v = ok_json(
        h,
        &[
            "--json",
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "Tuned Python",
        ],
    );
    v["ami_id"].as_str().unwrap().to_string()
}

fn rating(h: &Path) -> (f64, u64) {
    let v = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    (
        v["rating"]["average"].as_f64().unwrap(),
        v["rating"]["count"].as_u64().unwrap(),
    )
}

#[test]
fn share_browse_rate_launch_revoke() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let ami = tuned_image(h);

    // Publishing needs an identity, checked before anything changes.
    let out = run(
        h,
        &[
            "--yes",
            "ami",
            "share",
            &ami,
            "--community",
            "cloudworkstation",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cws config set user.name"),
        "{}",
        stderr(&out)
    );
    let info = ok_json(h, &["--json", "ami", "info", &ami]);
    assert_eq!(info["image"]["public"], false, "nothing was shared: {info}");
    assert_eq!(info["listing"], serde_json::Value::Null, "{info}");

    // Without --yes and without a terminal, the answer is No: nothing shared, nothing listed.
    let out = run_as(
        h,
        ALICE,
        &["ami", "share", &ami, "--community", "cloudworkstation"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = ok_json(h, &["--json", "ami", "browse"]);
    assert_eq!(v["listings"].as_array().unwrap().len(), 0, "{v}");

    let v = ok_json_as(
        h,
        ALICE,
        &[
            "--json",
            "--yes",
            "ami",
            "share",
            &ami,
            "--community",
            "cloudworkstation",
            "--category",
            "data-science",
        ],
    );
    assert_eq!(v["listing"]["id"], "alice/python-research", "{v}");
    assert_eq!(
        v["listing"]["visibility"], "community:cloudworkstation",
        "{v}"
    );
    assert_eq!(v["listing"]["version"], "1.0.0", "{v}");
    assert_eq!(v["launch_permissions"][0]["kind"], "public", "{v}");

    // Browse by category, as the guide shows it.
    let v = ok_json(
        h,
        &["--json", "ami", "browse", "--category", "data-science"],
    );
    let listings = v["listings"].as_array().unwrap();
    assert_eq!(listings.len(), 1, "{v}");
    assert_eq!(listings[0]["latest_version"], "1.0.0");
    let v = ok_json(h, &["--json", "ami", "browse", "--category", "genomics"]);
    assert_eq!(v["listings"].as_array().unwrap().len(), 0, "{v}");
    let out = run(h, &["ami", "browse", "--category", "data-science"]);
    let text = stdout(&out);
    assert!(text.contains("📂 Community AMIs: Data Science"), "{text}");
    assert!(
        text.contains("Python Research v1.0.0  (0 downloads)"),
        "{text}"
    );

    // Two identities rate; a re-rate replaces.
    ok_json_as(
        h,
        ALICE,
        &[
            "--json",
            "ami",
            "rate",
            "alice/python-research",
            "5",
            "--review",
            "Fast",
        ],
    );
    ok_json_as(h, BOB, &["--json", "ami", "rate", &ami, "4"]);
    assert_eq!(rating(h), (4.5, 2));
    ok_json_as(
        h,
        BOB,
        &[
            "--json",
            "ami",
            "rate",
            "alice/python-research",
            "2",
            "--review",
            "slow\u{1b}[2J",
        ],
    );
    assert_eq!(rating(h), (3.5, 2));
    // Bad input: exit 2, nothing written.
    let long = "x".repeat(4001);
    for args in [
        &["ami", "rate", "alice/python-research", "0"][..],
        &["ami", "rate", "alice/python-research", "6"][..],
        &["ami", "rate", "alice/python-research", "four"][..],
        &[
            "ami",
            "rate",
            "alice/python-research",
            "5",
            "--review",
            &long,
        ][..],
        &["ami", "rate", "ami-0123456789abcdef0", "5"][..],
    ] {
        let out = run_as(h, BOB, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(rating(h), (3.5, 2));
    let out = run_as(h, BOB, &["ami", "rate", "alice/pyton-research", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `alice/python-research`"),
        "{}",
        stderr(&out)
    );
    // Review text from others is escaped before it reaches the terminal.
    let out = run(h, &["ami", "reviews", "alice/python-research"]);
    assert!(!stdout(&out).contains('\u{1b}'), "{}", stdout(&out));
    assert!(stdout(&out).contains("slow\\e[2J"), "{}", stdout(&out));

    // A template that opts into the listing launches from it, and the launch is counted.
    std::fs::create_dir_all(h.join("templates")).unwrap();
    std::fs::write(h.join("templates/lab-python.yaml"), LAB_PYTHON).unwrap();
    let v = ok_json_as(h, ALICE, &["--json", "launch", "lab-python", "box2"]);
    let r = &v["resolution"];
    assert_eq!(r["method"], "community", "{v}");
    assert_eq!(r["ami_id"], ami.as_str(), "{v}");
    assert_eq!(r["listing"], "alice/python-research", "{v}");
    assert_eq!(r["listing_version"], "1.0.0", "{v}");
    let status = ok_json(h, &["--json", "instance", "status", "box2"]);
    assert_eq!(
        status["instance"]["tags"]["cws:listing"], "alice/python-research",
        "{status}"
    );
    let info = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    assert_eq!(info["downloads"], 1, "{info}");
    assert_eq!(info["versions"][0]["downloads"], 1, "{info}");
    let alice_review = info["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["author"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(alice_review["verified_use"], true, "{info}");

    // Only the publisher (or an admin) revokes; then the next launch refuses the version
    // with the reason and falls through to script provisioning, as ami_preferred says.
    let out = run_as(
        h,
        BOB,
        &[
            "ami",
            "revoke",
            "alice/python-research@1.0.0",
            "--reason",
            "mine now",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    ok_json_as(
        h,
        ALICE,
        &[
            "--json",
            "ami",
            "revoke",
            "alice/python-research@1.0.0",
            "--reason",
            "CVE-2026-1234",
        ],
    );
    let v = ok_json_as(h, ALICE, &["--json", "launch", "lab-python", "box3"]);
    let r = &v["resolution"];
    assert_eq!(r["method"], "script_fallback", "{v}");
    let community = r["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["tier"] == "community")
        .unwrap();
    assert_eq!(community["outcome"], "not_found", "{v}");
    assert!(
        community["detail"]
            .as_str()
            .unwrap()
            .contains("CVE-2026-1234"),
        "{v}"
    );
    let info = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    assert_eq!(
        info["downloads"], 1,
        "a script launch is not a download: {info}"
    );

    // The revoked image itself is refused whichever tier finds it (a template's own search
    // here), and nothing is spent copying it.
    std::fs::write(
        h.join("templates/mine.yaml"),
        "name: Mine\nslug: mine\nversion: 1.0.0\nbase: ubuntu-24.04\ninherits: python-research\n\
         ami_config:\n  strategy: ami_preferred\n  ami_search:\n    owners: [self]\n    \
         required_tags: {\"cws:template\": python-research}\n",
    )
    .unwrap();
    let v = ok_json(h, &["--json", "ami", "resolve", "mine"]);
    assert_ne!(v["ami_id"], ami.as_str(), "{v}");
    assert!(v.to_string().contains("CVE-2026-1234"), "{v}");
    let out = run(h, &["--yes", "ami", "copy", &ami, "--to", "us-west-2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("CVE-2026-1234"), "{}", stderr(&out));
}

#[test]
fn a_private_listing_is_seen_by_its_publisher_only_and_stays_private() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let ami = tuned_image(h);
    ok_json_as(h, ALICE, &["--json", "ami", "share", &ami, "--private"]);
    let v = ok_json_as(h, BOB, &["--json", "ami", "browse"]);
    assert_eq!(v["listings"].as_array().unwrap().len(), 0, "{v}");
    let out = run_as(h, BOB, &["ami", "info", "alice/python-research"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v = ok_json_as(h, ALICE, &["--json", "ami", "browse"]);
    assert_eq!(v["listings"].as_array().unwrap().len(), 1, "{v}");
    // Its next version cannot quietly make every version public: refused before sharing.
    ok_json(h, &["--json", "launch", "python-research", "box2"]);
    let other = ok_json(
        h,
        &[
            "--json",
            "ami",
            "create",
            "python-research",
            "box2",
            "--name",
            "Other",
        ],
    )["ami_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run_as(
        h,
        ALICE,
        &[
            "--yes",
            "ami",
            "share",
            &other,
            "--public",
            "--version",
            "1.1.0",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("published as private"),
        "{}",
        stderr(&out)
    );
    let info = ok_json(h, &["--json", "ami", "info", &other]);
    assert_eq!(info["image"]["public"], false, "{info}");
}

#[test]
fn channels_reports_and_quarantine() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let ami = tuned_image(h);
    ok_json_as(
        h,
        ALICE,
        &[
            "--json",
            "--yes",
            "ami",
            "share",
            &ami,
            "--community",
            "lab",
        ],
    );

    // Channels: `latest` moves by itself; `stable` is the publisher's.
    let out = run_as(
        h,
        ALICE,
        &["ami", "channel", "alice/python-research", "latest", "1.0.0"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    ok_json_as(
        h,
        ALICE,
        &[
            "--json",
            "ami",
            "channel",
            "alice/python-research",
            "stable",
            "1.0.0",
        ],
    );
    let info = ok_json_as(
        h,
        ALICE,
        &["--json", "ami", "info", "alice/python-research"],
    );
    assert_eq!(info["channels"]["stable"], "1.0.0", "{info}");
    let out = run_as(
        h,
        ALICE,
        &["ami", "channel", "alice/python-research", "stable", "9.9.9"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // A published region never changes: another image for 1.0.0 in us-east-1 is refused
    // before anything is shared.
    ok_json(h, &["--json", "launch", "python-research", "box2"]);
    let other = ok_json(
        h,
        &[
            "--json",
            "ami",
            "create",
            "python-research",
            "box2",
            "--name",
            "Other",
        ],
    )["ami_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run_as(
        h,
        ALICE,
        &["--yes", "ami", "share", &other, "--community", "lab"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("1.0.0"), "{}", stderr(&out));
    let info = ok_json(h, &["--json", "ami", "info", &other]);
    assert_eq!(info["image"]["public"], false, "{info}");
    // As a new version it is fine.
    let v = ok_json_as(
        h,
        ALICE,
        &[
            "--json",
            "--yes",
            "ami",
            "share",
            &other,
            "--community",
            "lab",
            "--version",
            "1.1.0",
        ],
    );
    assert_eq!(v["listing"]["version"], "1.1.0", "{v}");

    // A copy of a listed image adds its region to the same version (a new revision).
    let v = ok_json_as(
        h,
        ALICE,
        &["--json", "--yes", "ami", "copy", &ami, "--to", "us-west-2"],
    );
    assert_eq!(v["listing"]["region"], "us-west-2", "{v}");
    assert_eq!(v["listing"]["revision"], 2, "{v}");
    let info = ok_json_as(
        h,
        ALICE,
        &["--json", "ami", "info", "alice/python-research@1.0.0"],
    );
    let regions = info["versions"][0]["regions"].as_object().unwrap();
    assert_eq!(regions.len(), 2, "{info}");

    // Reports: a bad reason is exit 2; security reports from three people quarantine (the
    // same person twice counts once), and the local user, admin of the embedded registry,
    // lifts it with --clear.
    let out = run_as(
        h,
        BOB,
        &["ami", "report", "alice/python-research", "--reason", "ugly"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report = |who: &str| {
        ok_json_as(
            h,
            who,
            &[
                "--json",
                "ami",
                "report",
                "alice/python-research@1.1.0",
                "--reason",
                "security",
            ],
        )
    };
    assert_eq!(report(BOB)["quarantined"], false);
    assert_eq!(report(BOB)["security_reports"], 1);
    assert_eq!(report("Carol <carol@x.org>")["quarantined"], false);
    let v = report("Dan <dan@y.org>");
    assert_eq!(v["quarantined"], true, "{v}");
    let info = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    assert_eq!(
        info["latest_version"], "1.0.0",
        "quarantined versions are not latest: {info}"
    );
    ok_json_as(
        h,
        ALICE,
        &[
            "--json",
            "ami",
            "report",
            "--clear",
            "alice/python-research@1.1.0",
        ],
    );
    let info = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    assert_eq!(info["latest_version"], "1.1.0", "{info}");
}

#[test]
fn launch_from_a_listing_pins_its_version_and_copies_carry_its_provenance() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let ami = tuned_image(h);
    ok_json_as(
        h,
        ALICE,
        &[
            "--json",
            "--yes",
            "ami",
            "share",
            &ami,
            "--community",
            "cloudworkstation",
        ],
    );

    // Unknown listings and stray arguments are exit 2, before anything is launched.
    let out = run(h, &["launch", "--listing", "alice/python-reserch", "lab"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did you mean `alice/python-research`"),
        "{}",
        stderr(&out)
    );
    let out = run(
        h,
        &[
            "launch",
            "--listing",
            "alice/python-research",
            "lab",
            "extra",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(
        h,
        &["launch", "--listing", "alice/python-research@2.0.0", "lab"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has no version 2.0.0"),
        "{}",
        stderr(&out)
    );

    // Unsigned versions need --allow-unsigned until signatures land.
    let v = ok_json(
        h,
        &[
            "--json",
            "launch",
            "--listing",
            "alice/python-research",
            "lab2",
        ],
    );
    assert_ne!(v["resolution"]["method"], "community", "{v}");
    let v = ok_json(
        h,
        &[
            "--json",
            "launch",
            "--listing",
            "alice/python-research@1.0.0",
            "--allow-unsigned",
            "lab3",
        ],
    );
    assert_eq!(v["resolution"]["method"], "community", "{v}");
    assert_eq!(v["resolution"]["listing_version"], "1.0.0", "{v}");

    // In a region where the listing has no image, cross_region copies it (with consent) and
    // the copy carries the listing's provenance; the launch counts as a download.
    let v = ok_json(
        h,
        &[
            "--json",
            "--yes",
            "--region",
            "eu-west-1",
            "launch",
            "--listing",
            "alice/python-research",
            "--allow-unsigned",
            "lab4",
        ],
    );
    let r = &v["resolution"];
    assert_eq!(r["method"], "cross_region", "{v}");
    assert_eq!(r["listing"], "alice/python-research", "{v}");
    let copy = v["copied_image"].as_str().unwrap();
    let info = ok_json(h, &["--json", "--region", "eu-west-1", "ami", "info", copy]);
    assert_eq!(
        info["image"]["tags"]["cws:listing"], "alice/python-research",
        "{info}"
    );
    assert_eq!(
        info["image"]["tags"]["cws:listing-version"], "1.0.0",
        "{info}"
    );
    let listing = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    assert_eq!(listing["downloads"], 2, "{listing}");

    // Once the version is revoked, that copy is refused too.
    ok_json_as(
        h,
        ALICE,
        &[
            "--json",
            "ami",
            "revoke",
            "alice/python-research@1.0.0",
            "--reason",
            "leaked key",
        ],
    );
    let v = ok_json(
        h,
        &[
            "--json",
            "--region",
            "eu-west-1",
            "launch",
            "--listing",
            "alice/python-research",
            "--allow-unsigned",
            "lab5",
        ],
    );
    let r = &v["resolution"];
    assert_eq!(r["method"], "script_fallback", "{v}");
    assert!(r.to_string().contains("leaked key"), "{v}");
    // ... and flagged where images are listed.
    let v = ok_json(
        h,
        &[
            "--json",
            "--region",
            "eu-west-1",
            "ami",
            "list",
            "--template",
            "python-research",
        ],
    );
    let flagged = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == copy)
        .unwrap();
    assert!(
        flagged["refused"].as_str().unwrap().contains("leaked key"),
        "{v}"
    );
    let out = run(
        h,
        &[
            "--region",
            "eu-west-1",
            "ami",
            "list",
            "--template",
            "python-research",
        ],
    );
    assert!(
        stdout(&out).contains("from a refused version"),
        "{}",
        stdout(&out)
    );
}
