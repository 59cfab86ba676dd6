//! Signed listings: signing with a key made by `ssh-keygen`, verifying with cws and with
//! `ssh-keygen -Y verify`, allowed signers, refusing unsigned versions by default, tampered
//! exports and rollbacks.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use super::common::*;

const ALICE: &str = "Alice Smith <alice@uni.edu>";

/// A fresh ed25519 key pair made by ssh-keygen; `None` (skipping) only outside CI.
fn keygen(dir: &Path, name: &str) -> Option<PathBuf> {
    let key = dir.join(name);
    let made = Std::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status();
    match made {
        Ok(s) if s.success() => Some(key),
        _ if std::env::var_os("CI").is_some() => panic!("ssh-keygen is needed in CI"),
        _ => {
            eprintln!("skipping: ssh-keygen is not installed");
            None
        }
    }
}

fn allow(home: &Path, email: &str, key: &Path) {
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut parts = public.split_whitespace();
    let line = format!(
        "{email} namespaces=\"cws-listing\" {} {}\n",
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    let path = home.join("allowed_signers");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&line);
    std::fs::write(path, text).unwrap();
}

fn shared_image(h: &Path, extra: &[&str]) -> String {
    ok_json(h, &["--json", "launch", "python-research", "box"]);
    let ami = ok_json(
        h,
        &[
            "--json",
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "Tuned",
        ],
    )["ami_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut args = vec![
        "--json",
        "--yes",
        "ami",
        "share",
        ami.as_str(),
        "--community",
        "lab",
    ];
    args.extend_from_slice(extra);
    ok_json_as(h, ALICE, &args);
    ami
}

/// A template that opts into alice's listing and, by default, requires a signature.
const SIGNED_ONLY: &str = "name: Lab\nslug: lab\nversion: 1.0.0\nbase: ubuntu-24.04\n\
inherits: python-research\nami_config:\n  strategy: ami_preferred\n  community:\n    \
listing: alice/python-research\n";

fn community_attempt(v: &serde_json::Value) -> serde_json::Value {
    v["resolution"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["tier"] == "community")
        .cloned()
        .unwrap()
}

#[test]
fn signed_versions_verify_with_cws_and_ssh_keygen_and_only_verified_ones_launch() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let Some(key) = keygen(h, "alice") else {
        return;
    };
    let key_arg = key.to_str().unwrap();
    shared_image(h, &["--sign-with", key_arg]);
    std::fs::create_dir_all(h.join("templates")).unwrap();
    std::fs::write(h.join("templates/lab.yaml"), SIGNED_ONLY).unwrap();

    // A valid signature by a key nobody listed is untrusted, and not launched.
    let info = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    assert_eq!(info["signature"]["status"], "untrusted", "{info}");
    let v = ok_json(h, &["--json", "launch", "lab", "one"]);
    assert_eq!(community_attempt(&v)["outcome"], "not_found", "{v}");

    // Allowed for alice's email: verified everywhere, and the community tier launches it.
    allow(h, "alice@uni.edu", &key);
    let info = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    assert_eq!(info["signature"]["status"], "verified", "{info}");
    assert_eq!(info["signature"]["signer"], "alice@uni.edu", "{info}");
    assert_eq!(
        info["versions"][0]["signature"]["status"], "verified",
        "{info}"
    );
    let v = ok_json(h, &["--json", "ami", "browse"]);
    assert_eq!(v["listings"][0]["signature"]["status"], "verified", "{v}");
    let v = ok_json(h, &["--json", "launch", "lab", "two"]);
    assert_eq!(v["resolution"]["method"], "community", "{v}");

    // A policy that names publishers by email trusts the verified signer, not the handle.
    std::fs::write(
        h.join("policy.toml"),
        "allowed_publishers = [\"alice@uni.edu\"]\n",
    )
    .unwrap();
    let v = ok_json(h, &["--json", "launch", "lab", "three"]);
    assert_eq!(v["resolution"]["method"], "community", "{v}");
    std::fs::write(
        h.join("policy.toml"),
        "allowed_publishers = [\"bob@lab.org\"]\n",
    )
    .unwrap();
    let v = ok_json(h, &["--json", "launch", "lab", "four"]);
    let attempt = community_attempt(&v);
    assert!(
        attempt["detail"]
            .as_str()
            .unwrap()
            .contains("policy rule `allowed_publishers`"),
        "{v}"
    );
    std::fs::remove_file(h.join("policy.toml")).unwrap();

    // OpenSSH's own verifier agrees with the exported document and signature.
    let export = h.join("export.json");
    ok(
        h,
        &[
            "ami",
            "export",
            "alice/python-research",
            "-o",
            export.to_str().unwrap(),
        ],
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let signed = &doc["versions"][0]["signed"];
    std::fs::write(h.join("doc.json"), signed["document"].as_str().unwrap()).unwrap();
    std::fs::write(h.join("doc.sig"), signed["signature"].as_str().unwrap()).unwrap();
    let out = Std::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-n",
            "cws-listing",
            "-I",
            "alice@uni.edu",
            "-f",
        ])
        .arg(h.join("allowed_signers"))
        .arg("-s")
        .arg(h.join("doc.sig"))
        .stdin(std::fs::File::open(h.join("doc.json")).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A key allowed for someone else cannot vouch for alice's listing.
    let other = tempfile::tempdir().unwrap();
    let o = other.path();
    std::fs::copy(&export, o.join("export.json")).unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut parts = public.split_whitespace();
    std::fs::write(
        o.join("allowed_signers"),
        format!(
            "mallory@evil.org {} {}\n",
            parts.next().unwrap(),
            parts.next().unwrap()
        ),
    )
    .unwrap();
    let v = ok_json_as(
        o,
        "Bob <bob@lab.org>",
        &[
            "--json",
            "ami",
            "import",
            o.join("export.json").to_str().unwrap(),
        ],
    );
    assert_eq!(v["signatures"]["1.0.0"]["status"], "untrusted", "{v}");
}

#[test]
fn an_unsigned_listing_is_never_launched_by_default() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    shared_image(h, &[]);
    std::fs::create_dir_all(h.join("templates")).unwrap();
    std::fs::write(h.join("templates/lab.yaml"), SIGNED_ONLY).unwrap();
    let v = ok_json(h, &["--json", "launch", "lab", "one"]);
    let attempt = community_attempt(&v);
    assert_eq!(attempt["outcome"], "not_found", "{v}");
    assert!(
        attempt["detail"].as_str().unwrap().contains("unsigned"),
        "{v}"
    );
    assert_ne!(v["resolution"]["method"], "community", "{v}");
    // Opting out is possible, and warned about on every launch.
    let out = run(
        h,
        &[
            "launch",
            "--listing",
            "alice/python-research",
            "--allow-unsigned",
            "two",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("signatures are not required"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tampered_exports_and_rollbacks_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let Some(key) = keygen(h, "alice") else {
        return;
    };
    let ami = shared_image(h, &["--sign-with", key.to_str().unwrap()]);
    allow(h, "alice@uni.edu", &key);
    let rev1 = h.join("rev1.json");
    ok(
        h,
        &[
            "ami",
            "export",
            "alice/python-research",
            "-o",
            rev1.to_str().unwrap(),
        ],
    );

    // One byte of an image id changed where the registry would serve it (the signed
    // document untouched): the document and the data disagree.
    let text = std::fs::read_to_string(&rev1).unwrap();
    let mut flipped = ami.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["versions"][0]["regions"]["us-east-1"]["ami_id"] = flipped.clone().into();
    let bad = h.join("bad.json");
    std::fs::write(&bad, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let mirror = tempfile::tempdir().unwrap();
    let m = mirror.path();
    std::fs::copy(h.join("allowed_signers"), m.join("allowed_signers")).unwrap();
    let out = run_as(m, ALICE, &["ami", "import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid"), "{}", stderr(&out));
    assert!(stderr(&out).contains(&flipped), "{}", stderr(&out));
    let v = ok_json_as(m, ALICE, &["--json", "ami", "browse"]);
    assert_eq!(
        v["listings"].as_array().unwrap().len(),
        0,
        "nothing imported: {v}"
    );
    // A region added under the signed revision (no new revision, no new signature): a
    // substitution, refused.
    let mut added = doc.clone();
    added["versions"][0]["regions"]["us-east-1"]["ami_id"] = ami.clone().into();
    added["versions"][0]["regions"]["eu-west-2"] =
        added["versions"][0]["regions"]["us-east-1"].clone();
    added["versions"][0]["regions"]["eu-west-2"]["ami_id"] = "ami-0000000000000evil".into();
    let added_file = h.join("added.json");
    std::fs::write(&added_file, added.to_string()).unwrap();
    let out = run_as(m, ALICE, &["ami", "import", added_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("eu-west-2"), "{}", stderr(&out));
    // The same byte changed inside the signed document: the signature no longer holds.
    let bad2 = h.join("bad2.json");
    std::fs::write(&bad2, text.replace(&ami, &flipped)).unwrap();
    let out = run_as(m, ALICE, &["ami", "import", bad2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // A copy adds a region: revision 2, signed again (user.signing_key). A mirror that has
    // seen revision 2 refuses revision 1 in its place.
    ok(
        h,
        &["config", "set", "user.signing_key", key.to_str().unwrap()],
    );
    ok_json_as(
        h,
        ALICE,
        &["--json", "--yes", "ami", "copy", &ami, "--to", "us-west-2"],
    );
    let info = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    assert_eq!(info["versions"][0]["revision"], 2, "{info}");
    assert_eq!(
        info["versions"][0]["signature"]["status"], "verified",
        "{info}"
    );
    let rev2 = h.join("rev2.json");
    ok(
        h,
        &[
            "ami",
            "export",
            "alice/python-research",
            "-o",
            rev2.to_str().unwrap(),
        ],
    );
    ok_json_as(
        m,
        ALICE,
        &["--json", "ami", "import", rev2.to_str().unwrap()],
    );
    let out = run_as(m, ALICE, &["ami", "import", rev1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("rollback"), "{}", stderr(&out));

    // A revocation is a new revision, signed again: a mirror cannot strip it.
    let out = run_as(
        h,
        ALICE,
        &[
            "ami",
            "revoke",
            "alice/python-research@1.0.0",
            "--reason",
            "bad driver",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("The revocation is signed"),
        "{}",
        stdout(&out)
    );
    let info = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    assert_eq!(info["versions"][0]["revision"], 3, "{info}");
    assert_eq!(
        info["versions"][0]["signature"]["status"], "verified",
        "{info}"
    );
    let rev3 = h.join("rev3.json");
    ok(
        h,
        &[
            "ami",
            "export",
            "alice/python-research",
            "-o",
            rev3.to_str().unwrap(),
        ],
    );
    let mut stripped: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rev3).unwrap()).unwrap();
    stripped["versions"][0]["revoked"] = serde_json::Value::Null;
    let stripped_file = h.join("stripped.json");
    std::fs::write(&stripped_file, stripped.to_string()).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    std::fs::copy(
        h.join("allowed_signers"),
        fresh.path().join("allowed_signers"),
    )
    .unwrap();
    let out = run_as(
        fresh.path(),
        ALICE,
        &["ami", "import", stripped_file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("revocation"), "{}", stderr(&out));
    // The mirror takes the revocation, and then refuses the revision before it.
    ok_json_as(
        m,
        ALICE,
        &["--json", "ami", "import", rev3.to_str().unwrap()],
    );
    let out = run_as(m, ALICE, &["ami", "import", rev2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = ok_json_as(
        m,
        ALICE,
        &["--json", "ami", "info", "alice/python-research"],
    );
    assert_eq!(v["versions"][0]["revoked"]["reason"], "bad driver", "{v}");
}

/// Runs `cws` and requires success.
fn ok(h: &Path, args: &[&str]) {
    let out = run(h, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
}

#[test]
fn policy_beats_the_template_and_every_refusal_names_its_rule() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    shared_image(h, &[]);
    std::fs::create_dir_all(h.join("templates")).unwrap();
    // The template opts out of signatures; the policy does not allow that.
    std::fs::write(
        h.join("templates/lab.yaml"),
        format!("{SIGNED_ONLY}    require_signature: false\n"),
    )
    .unwrap();
    let v = ok_json(h, &["--json", "launch", "lab", "free"]);
    assert_eq!(
        v["resolution"]["method"], "community",
        "without a policy: {v}"
    );

    std::fs::write(
        h.join("policy.toml"),
        "allowed_regions = [\"us-east-1\", \"us-west-2\"]\nrequire_signature = true\n\
         max_copy_cost_usd = 1.0\n",
    )
    .unwrap();
    let v = ok_json(h, &["--json", "launch", "lab", "guarded"]);
    let attempt = community_attempt(&v);
    assert_eq!(attempt["outcome"], "not_found", "{v}");
    assert!(
        attempt["detail"].as_str().unwrap().contains("unsigned"),
        "{v}"
    );
    let out = run(
        h,
        &[
            "launch",
            "--listing",
            "alice/python-research",
            "--allow-unsigned",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("policy rule `require_signature`"),
        "{}",
        stderr(&out)
    );

    // Regions outside the policy are refused before anything happens.
    let out = run(
        h,
        &["--region", "eu-west-1", "launch", "python-research", "far"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("policy rule `allowed_regions`"),
        "{}",
        stderr(&out)
    );

    // A copy above the cost cap is not agreed by --yes alone.
    let ami = ok_json(
        h,
        &["--json", "ami", "list", "--template", "python-research"],
    )["images"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run(h, &["--yes", "ami", "copy", &ami, "--to", "us-west-2"]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("max_copy_cost_usd"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--allow-cost"), "{}", stderr(&out));
    let out = run(
        h,
        &[
            "--yes",
            "--allow-cost",
            "ami",
            "copy",
            &ami,
            "--to",
            "us-west-2",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // Only allowed owners: the official and base images' owners are not, so launches fall to
    // nothing and say which rule.
    std::fs::write(
        h.join("policy.toml"),
        "allowed_owners = [\"111122223333\"]\n",
    )
    .unwrap();
    let out = run(h, &["launch", "python-research", "owned"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = run(h, &["--json", "ami", "resolve", "python-research"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let v = json(&out);
    assert!(
        v.to_string().contains("policy rule `allowed_owners`"),
        "{v}"
    );

    // A broken policy file is exit 2 naming the file.
    std::fs::write(h.join("policy.toml"), "allowed_regionz = []\n").unwrap();
    let out = run(h, &["ami", "browse"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("policy.toml"), "{}", stderr(&out));
}

/// An encrypted key asks for its passphrase on the terminal; a wrong one, or no terminal to
/// ask on, changes nothing.
#[cfg(unix)]
#[test]
fn an_encrypted_signing_key_asks_for_its_passphrase_before_anything_changes() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let key = h.join("locked");
    let made = Std::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "correct horse",
            "-C",
            "alice",
            "-f",
        ])
        .arg(&key)
        .status();
    if !matches!(made, Ok(s) if s.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "ssh-keygen is needed in CI"
        );
        eprintln!("skipping: ssh-keygen is not installed");
        return;
    }
    ok_json(h, &["--json", "launch", "python-research", "box"]);
    let ami = ok_json(
        h,
        &[
            "--json",
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "Tuned",
        ],
    )["ami_id"]
        .as_str()
        .unwrap()
        .to_string();
    let key_arg = key.to_str().unwrap();
    let share = [
        "--yes",
        "ami",
        "share",
        ami.as_str(),
        "--community",
        "lab",
        "--sign-with",
        key_arg,
    ];
    let public = |h: &Path| ok_json(h, &["--json", "ami", "info", &ami])["image"]["public"].clone();

    // No terminal: refused before anything changes.
    let out = run_as(h, ALICE, &share);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("encrypted"), "{}", stderr(&out));
    assert_eq!(public(h), false);

    // A wrong passphrase: refused, nothing changed.
    let (code, text) = type_on_a_terminal(
        h,
        &[("CWS_USER", ALICE)],
        &share,
        "Passphrase for",
        b"wrong\n",
    );
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("wrong passphrase"), "{text}");
    assert_eq!(public(h), false);

    // The right one: shared, listed and signed.
    let (code, text) = type_on_a_terminal(
        h,
        &[("CWS_USER", ALICE)],
        &share,
        "Passphrase for",
        b"correct horse\n",
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(public(h), true);
    let info = ok_json(h, &["--json", "ami", "info", "alice/python-research"]);
    assert_eq!(
        info["signature"]["status"], "untrusted",
        "signed, by a key nobody allowed: {info}"
    );
}
