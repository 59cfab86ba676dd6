//! Text cws does not control (image names, descriptions and tags from the cloud, provider
//! error messages, template files) never reaches the terminal raw: escape sequences, newlines
//! and bidi overrides are shown escaped, while `--json` keeps the real strings. Instance names
//! cws creates are checked like EC2 tag values.

use std::process::Output;

use super::common::*;

const TITLE_SEQUENCE: &str = "\u{1b}]0;pwned\u{7}";

/// Nothing in the output would act on a terminal, and no line starts with forged text.
fn assert_inert(what: &str, text: &str) {
    for c in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\r'] {
        assert!(!text.contains(c), "{what}: raw {c:?} in:\n{text}");
    }
    for line in text.lines() {
        assert!(
            !line.starts_with("FORGED") && !line.starts_with("fake"),
            "{what}: a forged line:\n{text}"
        );
    }
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

#[test]
fn image_tags_and_descriptions_from_the_cloud_are_shown_escaped() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok_json(h, &["--json", "launch", "python-research", "box"]);
    let tag = format!("k={TITLE_SEQUENCE}");
    let description = "line one\nFORGED  row \u{1b}[2J\u{202e}desrever";
    let v = ok_json(
        h,
        &[
            "--json",
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "Evil Setup",
            "--description",
            description,
            "--tag",
            &tag,
            "--tag",
            "multi=a\nfake  row",
            "--tag",
            "\u{1b}[31mred=v",
        ],
    );
    let ami = v["ami_id"].as_str().unwrap().to_string();

    // For people: escaped, on the lines the table lays out.
    let out = run(h, &["ami", "info", &ami]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_inert("ami info", &text);
    assert!(text.contains("\\e]0;pwned\\u{7}"), "{text}");
    assert!(
        text.contains("line one\\nFORGED  row \\e[2J\\u{202e}desrever"),
        "{text}"
    );
    assert!(text.contains("a\\nfake  row"), "{text}");
    assert!(text.contains("tag \\e[31mred"), "{text}");
    assert!(text.contains("Evil Setup"), "{text}");

    // As JSON: the real strings.
    let info = ok_json(h, &["--json", "ami", "info", &ami]);
    assert_eq!(info["image"]["tags"]["k"], TITLE_SEQUENCE, "{info}");
    assert_eq!(info["image"]["tags"]["multi"], "a\nfake  row", "{info}");
    assert_eq!(info["image"]["tags"]["\u{1b}[31mred"], "v", "{info}");
    assert_eq!(info["image"]["description"], description, "{info}");
}

#[test]
fn provider_error_messages_are_escaped_in_the_error_chain() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok_json(h, &["--json", "launch", "python-research", "box"]);
    // The simulated EC2 refuses the name and quotes it in its message.
    let out = run(
        h,
        &[
            "ami",
            "create",
            "python-research",
            "box",
            "--name",
            "x\u{1b}]0;pwned\u{7}\nFORGED line",
        ],
    );
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert_inert("ami create error", &err);
    assert!(err.contains("x\\e]0;pwned\\u{7}\\nFORGED line"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn instance_names_are_checked_like_ec2_tag_values() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let long = "n".repeat(257);
    for (name, says) in [
        ("a\nb", "U+000A"),
        ("box\u{1b}[2J", "U+001B"),
        ("abc\u{202e}fed", "U+202E"),
        (long.as_str(), "257 characters long"),
    ] {
        let out = run(h, &["launch", "python-ml", name]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert_inert("launch error", &err);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("instance name"), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(err.contains("1-256 characters"), "{err}");
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }
    // The newline is named, escaped.
    let err = stderr(&run(h, &["launch", "python-ml", "a\nb"]));
    assert!(err.contains(r#""a\nb""#), "{err}");

    // Nothing was launched.
    let v = ok_json(h, &["--json", "instance", "list", "--all"]);
    assert_eq!(v["instances"].as_array().unwrap().len(), 0, "{v}");

    // 256 characters is the longest name, and it launches.
    let longest = "n".repeat(256);
    let v = ok_json(h, &["--json", "launch", "python-ml", &longest]);
    assert_eq!(v["instance"]["name"], longest.as_str(), "{v}");
}

#[test]
fn template_names_and_descriptions_from_files_are_shown_escaped() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let dir = h.join("my-templates");
    std::fs::create_dir_all(&dir).unwrap();
    // YAML double-quoted strings spell ESC as \e and BEL as \a.
    std::fs::write(
        dir.join("evil.yaml"),
        "name: \"Evil \\e]0;pwned\\a\\nFORGED row\"\nslug: evil\nversion: 1.0.0\n\
         base: ubuntu-24.04\ndescription: \"abc\\u202Efed \\e[2J\"\n",
    )
    .unwrap();
    let tdir = dir.to_str().unwrap();

    let out = run(h, &["--templates", tdir, "templates", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_inert("templates list", &text);
    assert!(
        text.contains("Evil \\e]0;pwned\\u{7}\\nFORGED row"),
        "{text}"
    );

    let out = run(h, &["--templates", tdir, "templates", "show", "evil"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_inert("templates show", &stdout(&out));

    let v = ok_json(h, &["--json", "--templates", tdir, "templates", "list"]);
    let evil = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "evil")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(evil["name"], "Evil \u{1b}]0;pwned\u{7}\nFORGED row", "{v}");
}
