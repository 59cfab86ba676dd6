//! The one error type of this crate.

use std::path::PathBuf;

use cws_util::fs::ReadError;

/// Everything that can go wrong while pricing a launch.
///
/// Each message says what to do next where the fix lies in the input, because
/// these errors end up in front of a researcher at a terminal, not in a log.
/// Pointers to a front end's own commands (how to list the known regions) are
/// left to the front end, which has the data in the fields.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// The price book has no price for this instance type in any region.
    #[error(
        "no price for instance type `{instance_type}`{}; pick a type the price book knows, or add its us-east-1 $/hour under [instances] in a price override file",
        did_you_mean(suggestion.as_deref())
    )]
    UnknownInstanceType {
        /// The type that was asked for.
        instance_type: String,
        /// The closest type the price book knows, when one is close.
        suggestion: Option<String>,
    },

    /// The instance type is only priced in some regions (through region-specific
    /// prices) and this region is not one of them.
    #[error(
        "instance type `{instance_type}` has no price in `{region}` (it is priced only in {}); add it under [region_prices.\"{region}\"] or give its us-east-1 price under [instances] in a price override file",
        priced_in.join(", ")
    )]
    NoPriceInRegion {
        /// The type that was asked for.
        instance_type: String,
        /// The region that was asked for.
        region: String,
        /// The regions where this type does have a price.
        priced_in: Vec<String>,
    },

    /// The region is not in the `cws-regions` catalogue.
    #[error("unknown region `{region}`{}", did_you_mean(*suggestion))]
    UnknownRegion {
        /// The region code that was asked for.
        region: String,
        /// The closest known region code, when one is close.
        suggestion: Option<&'static str>,
    },

    /// A money amount, multiplier or duration could not be read.
    #[error("invalid amount `{value}`: {reason}")]
    InvalidAmount {
        /// The text as given.
        value: String,
        /// Why it was rejected and what a valid value looks like.
        reason: String,
    },

    /// A price file (bundled or user override) is malformed or names something unknown.
    /// The message carries the line, column, key and the fix.
    #[error("invalid price file {origin}: {message}")]
    InvalidPriceFile {
        /// Where the text came from (usually a file path).
        origin: String,
        /// Line and column, what is wrong, and how to fix it.
        message: String,
    },

    /// A price override file could not be read.
    #[error("cannot read price file {}: {source}; check that the path exists and is readable", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A price override file was refused before it was parsed: larger than
    /// [`MAX_PRICE_FILE_BYTES`](crate::MAX_PRICE_FILE_BYTES), not a regular
    /// file (a directory, a device such as `/dev/zero`, a FIFO) or not UTF-8
    /// text. The [`ReadError`] carries the path and, for a file too large, the
    /// limit.
    #[error("price file {0}")]
    Refused(ReadError),
}

impl From<ReadError> for CostError {
    /// A failed open or read stays [`CostError::Io`]; every refusal becomes
    /// [`CostError::Refused`].
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io { path, source } => CostError::Io { path, source },
            refused => CostError::Refused(refused),
        }
    }
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

impl CostError {
    pub(crate) fn unknown_region(region: &str) -> CostError {
        CostError::UnknownRegion {
            region: region.to_owned(),
            suggestion: cws_regions::suggest(region),
        }
    }

    pub(crate) fn invalid_amount(value: &str, reason: impl Into<String>) -> CostError {
        CostError::InvalidAmount {
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_instance_type_message_suggests_and_says_how_to_fix() {
        let err = CostError::UnknownInstanceType {
            instance_type: "m6i.larg".into(),
            suggestion: Some("m6i.large".into()),
        };
        let msg = err.to_string();
        assert!(msg.contains("`m6i.larg`"), "{msg}");
        assert!(msg.contains("did you mean `m6i.large`?"), "{msg}");
        assert!(msg.contains("[instances]"), "{msg}");
    }

    #[test]
    fn unknown_region_without_suggestion_has_no_dangling_hint() {
        let err = CostError::UnknownRegion {
            region: "mars-1".into(),
            suggestion: None,
        };
        let msg = err.to_string();
        assert_eq!(msg, "unknown region `mars-1`");
        let err = CostError::UnknownRegion {
            region: "us-est-1".into(),
            suggestion: Some("us-east-1"),
        };
        assert_eq!(
            err.to_string(),
            "unknown region `us-est-1`; did you mean `us-east-1`?"
        );
    }
}
