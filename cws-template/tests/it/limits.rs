//! Size limits and file types: a template file over `MAX_TEMPLATE_BYTES`, or a path that is
//! not a regular file, is refused before it is read.

use std::fs::File;
use std::path::{Path, PathBuf};

use cws_template::{MAX_TEMPLATE_BYTES, SearchPath, TemplateError, TemplateStore};
use cws_util::fs::ReadError;

fn store(dir: &Path) -> TemplateStore {
    TemplateStore::new(SearchPath::new(&[dir.to_path_buf()], None, None))
}

/// A sparse file one byte over the limit: refused by its size, so it costs no disk or reading.
fn oversized(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    File::create(&path)
        .expect("create")
        .set_len(MAX_TEMPLATE_BYTES + 1)
        .expect("set_len");
    path
}

fn assert_too_large(err: &TemplateError, path: &Path) {
    match err {
        TemplateError::Refused(ReadError::TooLarge { path: p, limit }) => {
            assert_eq!(p, path);
            assert_eq!(*limit, MAX_TEMPLATE_BYTES);
        }
        other => panic!("expected a too-large refusal, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("1 MiB"), "{msg}");
}

#[test]
fn the_limit_is_one_mib() {
    assert_eq!(MAX_TEMPLATE_BYTES, 1024 * 1024);
}

#[test]
fn a_file_over_the_limit_is_refused_when_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = oversized(dir.path(), "huge.yaml");
    assert_too_large(
        &cws_template::load_file(&path).expect_err("too large"),
        &path,
    );
    let err = TemplateStore::bundled_only()
        .validate_file(&path)
        .expect_err("too large");
    assert_too_large(&err, &path);
}

#[test]
fn a_file_at_the_limit_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("padded.yaml");
    let head = "name: Padded\nslug: padded\nversion: 1.0.0\nbase: al2023\n";
    let mut text = head.to_string();
    text.push('#');
    text.push_str(&"x".repeat(MAX_TEMPLATE_BYTES as usize - head.len() - 2));
    text.push('\n');
    assert_eq!(text.len() as u64, MAX_TEMPLATE_BYTES);
    std::fs::write(&path, text).expect("write");
    assert_eq!(
        cws_template::load_file(&path).expect("at the limit").slug,
        "padded"
    );
}

#[cfg(unix)]
#[test]
fn a_device_or_directory_is_refused_by_its_type() {
    let dev = Path::new("/dev/zero");
    for err in [
        cws_template::load_file(dev).expect_err("device"),
        TemplateStore::bundled_only()
            .validate_file(dev)
            .expect_err("device"),
    ] {
        assert!(
            matches!(&err, TemplateError::Refused(ReadError::NotAFile { path }) if path == dev),
            "{err:?}"
        );
        assert!(err.to_string().contains("/dev/zero"), "{err}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let err = cws_template::load_file(dir.path()).expect_err("directory");
    assert!(
        matches!(err, TemplateError::Refused(ReadError::NotAFile { .. })),
        "{err:?}"
    );
}

#[test]
fn a_refused_file_on_the_search_path_is_listed_as_broken_and_the_rest_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("good.yaml"),
        "name: Good\nslug: good\nversion: 1.0.0\nbase: al2023\n",
    )
    .expect("write");
    let huge = oversized(dir.path(), "huge.yaml");
    // A directory named like a template is not skipped silently either.
    std::fs::create_dir(dir.path().join("folder.yaml")).expect("mkdir");
    let s = store(dir.path());

    let list = s.list().expect("list");
    let huge_row = list.iter().find(|e| e.slug == "huge").expect("huge row");
    let err = huge_row.error.as_deref().expect("huge is broken");
    assert!(err.contains(&huge.display().to_string()), "{err}");
    assert!(err.contains("1 MiB"), "{err}");
    assert_eq!(huge_row.file.as_deref(), Some(huge.as_path()));
    let folder = list
        .iter()
        .find(|e| e.slug == "folder")
        .expect("folder row");
    assert!(
        folder
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not a regular file")),
        "{folder:?}"
    );
    assert!(list.iter().any(|e| e.slug == "good" && e.error.is_none()));
    assert!(
        list.iter()
            .any(|e| e.slug == "python-ml" && e.error.is_none())
    );

    // Lookups still work; asking for the refused file by name says why.
    assert!(s.get("good").is_ok());
    assert!(s.get("python-ml").is_ok());
    assert_too_large(&s.get("huge").expect_err("refused"), &huge);
}

#[cfg(unix)]
#[test]
fn a_fifo_on_the_search_path_is_listed_as_broken_without_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("pipe.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipping: mkfifo is not available");
        return;
    }
    let list = store(dir.path()).list().expect("list");
    let row = list.iter().find(|e| e.slug == "pipe").expect("pipe row");
    assert!(
        row.error
            .as_deref()
            .is_some_and(|e| e.contains("not a regular file")),
        "{row:?}"
    );
}
