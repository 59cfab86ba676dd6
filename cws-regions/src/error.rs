//! The crate's single public error type.

use std::path::PathBuf;

use cws_util::fs::ReadError;

/// Everything that can go wrong in `cws-regions`.
///
/// Each message names what was wrong and, where the fix lies in the input,
/// what to do about it. Pointers to a front end's own commands or flags (how
/// to list the known regions, where the override file came from) are left to
/// the front end, which has the data in the fields.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    /// A region code that is not in the catalogue.
    #[error("unknown region `{region}`{}", did_you_mean(*.suggestion))]
    UnknownRegion {
        /// The code exactly as it was given.
        region: String,
        /// The closest known code, when one is close enough to be a likely typo.
        suggestion: Option<&'static str>,
    },

    /// A fallback graph (override file or explicit edge list) that cannot be
    /// used; `message` says where, which region, and how to fix it.
    #[error("invalid region fallbacks in {origin}: {message}")]
    InvalidGraph {
        /// Where the graph came from: a file path, or a description such as
        /// "the explicit fallback edge list".
        origin: String,
        /// What is wrong, with a line and column when the source is a file.
        message: String,
        /// The code, when what is wrong is a region code the catalogue does
        /// not know (the suggestion, if any, is in `message`).
        unknown_region: Option<String>,
    },

    /// The override file could not be read.
    #[error(
        "cannot read region fallback file `{}`: {source}; check the path and its permissions",
        path.display()
    )]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The override file was refused before it was parsed: larger than
    /// [`MAX_OVERRIDE_BYTES`](crate::MAX_OVERRIDE_BYTES), not a regular file
    /// (a directory, a device such as `/dev/zero`, a FIFO) or not UTF-8 text.
    /// The [`ReadError`] carries the path and, for a file too large, the limit.
    #[error("region fallback file {0}")]
    Refused(ReadError),
}

impl From<ReadError> for RegionError {
    /// A failed open or read stays [`RegionError::Io`]; every refusal becomes
    /// [`RegionError::Refused`].
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io { path, source } => RegionError::Io { path, source },
            refused => RegionError::Refused(refused),
        }
    }
}

fn did_you_mean(suggestion: Option<&'static str>) -> String {
    match suggestion {
        Some(code) => format!("; did you mean `{code}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_region_messages() {
        let with = RegionError::UnknownRegion {
            region: "us-est-1".into(),
            suggestion: Some("us-east-1"),
        };
        assert_eq!(
            with.to_string(),
            "unknown region `us-est-1`; did you mean `us-east-1`?"
        );
        let without = RegionError::UnknownRegion {
            region: "mars-1".into(),
            suggestion: None,
        };
        assert_eq!(without.to_string(), "unknown region `mars-1`");
    }

    #[test]
    fn io_message_names_path_and_fix() {
        let err = RegionError::Io {
            path: PathBuf::from("/nope/regions.yaml"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let message = err.to_string();
        assert!(message.contains("/nope/regions.yaml"), "{message}");
        assert!(message.contains("check the path"), "{message}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
