//! Files cws writes and reads whole: replaced atomically, read with a size limit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes` crash-safely: a temporary file in the same directory is
/// written, flushed to disk (fsync), renamed over `path`, and the directory is fsynced, so a
/// crash at any point leaves either the old file or the new one, never a mix or nothing.
///
/// The temporary file is removed when any step fails, and temporary files that crashed
/// writers left beside `path` are removed after a successful write. `mode` sets Unix
/// permissions on the new file (e.g. `0o600` for a file holding a token); `None` keeps the
/// existing file's permissions, or the process default for a new file.
///
/// A file someone made read-only is not replaced: the write fails with
/// [`io::ErrorKind::PermissionDenied`] (renaming over it would silently succeed otherwise).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().readonly()
    {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is read-only; refusing to replace it (make it writable to allow changes)",
                path.display()
            ),
        ));
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let existing = fs::metadata(path).ok().map(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.permissions().mode() & 0o7777
            });
            if let Some(m) = mode.or(existing) {
                options.mode(m);
            }
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        if let Some(m) = mode {
            // `mode` at creation is filtered by the umask; the caller asked for exactly this.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(m))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(path);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    } else {
        remove_stale_temp_files(path);
    }
    result
}

/// Removes the temporary files [`write_atomic`] calls for `path` left behind when their
/// process died mid-write (`.NAME.tmp-PID-N` whose process no longer runs). Best effort: where
/// liveness cannot be checked (no `/proc`), nothing is removed. Returns how many were removed.
pub fn remove_stale_temp_files(path: &Path) -> usize {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return 0;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if !Path::new("/proc/self").exists() {
        return 0;
    }
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A temporary name beside `path`, unique to this process and call.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Flushes a directory entry change (rename) to disk; best effort where the platform cannot.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = d.sync_all();
    }
}

/// Why a bounded read refused a file.
///
/// `TooLarge`, `NotAFile` and `NotText` are refusals decided before anything is parsed; the
/// crates that read files wrap them in their own error type (which says what kind of file it
/// was) so a front end can word the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file is larger than the limit.
    #[error("{} is larger than the limit of {}", path.display(), format_size(*limit))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// Not a regular file (a directory, a device such as /dev/zero, a FIFO).
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The content is not UTF-8 text.
    #[error("{} is not UTF-8 text", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
}

impl ReadError {
    /// Whether the file simply does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotAFile { path }
            | ReadError::NotText { path } => path,
        }
    }
}

/// A byte count the way people read limits: `1 MiB`, `64 KiB`, or `1500 bytes` when it is not
/// a whole number of KiB.
pub fn format_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    match bytes {
        0 => "0 bytes".to_string(),
        b if b % GIB == 0 => format!("{} GiB", b / GIB),
        b if b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b % KIB == 0 => format!("{} KiB", b / KIB),
        1 => "1 byte".to_string(),
        b => format!("{b} bytes"),
    }
}

/// Reads a whole text file of at most `limit` bytes. See [`read_bytes_bounded`] for what is
/// refused; the content must also be UTF-8 ([`ReadError::NotText`] otherwise).
pub fn read_text_bounded(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read_bytes_bounded(path, limit)?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotText {
        path: path.to_path_buf(),
    })
}

/// Reads a whole file of at most `limit` bytes.
///
/// Refuses anything that is not a regular file ([`ReadError::NotAFile`]: a directory, a
/// device such as `/dev/zero`, a FIFO, a socket) by its type, before opening it, so a FIFO
/// never blocks the caller and a device is never read; symbolic links are followed. A file
/// whose size is over the limit is refused ([`ReadError::TooLarge`]) without being read, and
/// at most `limit + 1` bytes are ever read, whatever the file claims its size is (a file that
/// grows while it is read, or one in `/proc` that reports size 0, is refused the same way).
pub fn read_bytes_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io_err = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_a_file = || ReadError::NotAFile {
        path: path.to_path_buf(),
    };
    let too_large = || ReadError::TooLarge {
        path: path.to_path_buf(),
        limit,
    };
    // Opening a FIFO for reading blocks until a writer appears: look at the type first.
    if !fs::metadata(path).map_err(io_err)?.is_file() {
        return Err(not_a_file());
    }
    let file = File::open(path).map_err(io_err)?;
    // Checked again on the open handle, in case the path was replaced in between.
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"old").unwrap();
        let mut perms = fs::metadata(&path).unwrap().permissions();
        perms.set_readonly(true);
        fs::set_permissions(&path, perms).unwrap();
        let err = write_atomic(&path, b"new", None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("read-only"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn temp_files_of_dead_writers_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        // A pid far above any pid_max in use: that writer is gone.
        let dead = dir.path().join(".state.json.tmp-4194304999-0");
        let mine = dir
            .path()
            .join(format!(".state.json.tmp-{}-999", std::process::id()));
        let other = dir.path().join(".other.json.tmp-4194304999-0");
        for f in [&dead, &mine, &other] {
            fs::write(f, b"partial").unwrap();
        }
        write_atomic(&path, b"new", None).unwrap();
        assert!(!dead.exists(), "a dead writer's temp file is removed");
        assert!(mine.exists(), "a live writer's temp file is kept");
        assert!(other.exists(), "another file's temp files are not touched");
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one", None).unwrap();
        write_atomic(&p, b"two", None).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the file itself remains");
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_sets_or_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        write_atomic(&p, b"a", Some(0o600)).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write_atomic(&p, b"b", None).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn bounded_read_refuses_large_and_special_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.yaml");
        fs::write(&p, "x".repeat(100)).unwrap();
        assert_eq!(read_text_bounded(&p, 100).unwrap().len(), 100);
        assert!(matches!(
            read_text_bounded(&p, 99),
            Err(ReadError::TooLarge { limit: 99, .. })
        ));
        assert!(matches!(
            read_text_bounded(dir.path(), 10),
            Err(ReadError::NotAFile { .. })
        ));
        #[cfg(unix)]
        assert!(matches!(
            read_text_bounded(Path::new("/dev/zero"), 10),
            Err(ReadError::NotAFile { .. })
        ));
        assert!(
            read_text_bounded(&dir.path().join("missing"), 10)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn bounded_read_refuses_a_file_over_the_limit_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.json");
        // Sparse: 1 GiB on paper, no blocks on disk, refused by its size alone.
        File::create(&p).unwrap().set_len(1 << 30).unwrap();
        let err = read_bytes_bounded(&p, 1 << 20).unwrap_err();
        assert!(
            matches!(&err, ReadError::TooLarge { path, limit } if path == &p && *limit == 1 << 20),
            "{err:?}"
        );
        assert_eq!(err.path(), p);
        assert_eq!(
            err.to_string(),
            format!("{} is larger than the limit of 1 MiB", p.display())
        );
        let small = dir.path().join("small.json");
        File::create(&small).unwrap().set_len(4096).unwrap();
        assert_eq!(read_bytes_bounded(&small, 4096).unwrap().len(), 4096);
    }

    #[test]
    fn bounded_read_refuses_invalid_utf8_as_text_but_not_as_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            read_text_bounded(&p, 10),
            Err(ReadError::NotText { .. })
        ));
        assert_eq!(read_bytes_bounded(&p, 10).unwrap(), [0xff, 0xfe, 0x00]);
    }

    /// A file that reports size 0 but has content (as /proc files do) is still cut at the
    /// limit: the size the file claims is never trusted.
    #[cfg(target_os = "linux")]
    #[test]
    fn bounded_read_never_trusts_the_reported_size() {
        let p = Path::new("/proc/self/status");
        assert_eq!(fs::metadata(p).unwrap().len(), 0);
        assert!(matches!(
            read_bytes_bounded(p, 16),
            Err(ReadError::TooLarge { limit: 16, .. })
        ));
        assert!(read_text_bounded(p, 1 << 20).unwrap().contains("Name:"));
    }

    /// A FIFO is refused by its type; opening it would block until a writer appeared.
    #[cfg(unix)]
    #[test]
    fn bounded_read_refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pipe.yaml");
        let status = std::process::Command::new("mkfifo").arg(&p).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("skipping: mkfifo is not available");
            return;
        }
        assert!(matches!(
            read_text_bounded(&p, 10),
            Err(ReadError::NotAFile { .. })
        ));
    }

    #[test]
    fn sizes_read_as_people_write_limits() {
        assert_eq!(format_size(1 << 20), "1 MiB");
        assert_eq!(format_size(256 << 20), "256 MiB");
        assert_eq!(format_size(64 << 10), "64 KiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(1500), "1500 bytes");
        assert_eq!(format_size(1), "1 byte");
        assert_eq!(format_size(0), "0 bytes");
    }
}
