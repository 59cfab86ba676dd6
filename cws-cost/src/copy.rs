//! What copying an AMI to another region costs, in time and money.

use std::fmt;

use serde::Serialize;

use crate::book::PriceBook;
use crate::money::Money;
use crate::timing::{copy_seconds, format_duration};

/// The estimate for copying an image's snapshot from one region to another.
///
/// `total_cost` is the transfer plus the first month of storing the copy in the
/// target region: the money a user commits to by saying yes to a copy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CopyEstimate {
    /// Where the image is now.
    pub source_region: String,
    /// Where it is needed.
    pub target_region: String,
    /// Size of the image's snapshot(s).
    pub snapshot_gb: u32,
    /// Estimated wall time until the copy is `available`.
    pub estimated_seconds: u64,
    /// Inter-region transfer: snapshot GB × the source region's $/GB.
    pub transfer_cost: Money,
    /// Storing the copy in the target region for a month.
    pub monthly_storage: Money,
    /// `transfer_cost + monthly_storage`.
    pub total_cost: Money,
}

/// Estimates a cross-region copy of an image with `snapshot_gb` GB of
/// snapshots.
///
/// Model: cost = GB × transfer $/GB out of the *source* region + GB × snapshot
/// $/GB-month in the target (the first month); time = a fixed 60 s plus 6 s/GB
/// within a continent or 10 s/GB across continents (see
/// [`crate::COPY_FIXED_SECONDS`]). A copy within one region moves no data
/// between regions, so its transfer is free. Regions unknown to `cws-regions`
/// are priced with the book's defaults and timed as a cross-continent copy —
/// the pessimistic choice.
pub fn copy_estimate(
    book: &PriceBook,
    source_region: &str,
    target_region: &str,
    snapshot_gb: u32,
) -> CopyEstimate {
    let gb = i64::from(snapshot_gb);
    let same_region = source_region.trim() == target_region.trim();
    let same_continent = match (
        cws_regions::get(source_region.trim()),
        cws_regions::get(target_region.trim()),
    ) {
        (Some(a), Some(b)) => a.continent == b.continent,
        _ => same_region,
    };
    let transfer_cost = if same_region {
        Money::ZERO
    } else {
        book.transfer_per_gb(source_region) * gb
    };
    let monthly_storage = book.snapshot_gb_month(target_region) * gb;
    CopyEstimate {
        source_region: source_region.to_owned(),
        target_region: target_region.to_owned(),
        snapshot_gb,
        estimated_seconds: copy_seconds(snapshot_gb, same_continent),
        transfer_cost,
        monthly_storage,
        total_cost: transfer_cost + monthly_storage,
    }
}

impl fmt::Display for CopyEstimate {
    /// One line, e.g. `us-east-1 → us-west-2: 8 GB, ~1.8 min, $0.56 ($0.16 transfer + $0.40/month storage)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} → {}: {} GB, ~{}, {} ({} transfer + {}/month storage)",
            self.source_region,
            self.target_region,
            self.snapshot_gb,
            format_duration(self.estimated_seconds),
            self.total_cost,
            self.transfer_cost,
            self.monthly_storage
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_copy_of_8_gb() {
        let est = copy_estimate(&PriceBook::bundled(), "us-east-1", "us-west-2", 8);
        assert_eq!(est.transfer_cost, Money::from_cents(16));
        assert_eq!(est.monthly_storage, Money::from_cents(40));
        assert_eq!(est.total_cost, Money::from_cents(56));
        assert_eq!(est.estimated_seconds, 108);
        assert_eq!(
            est.to_string(),
            "us-east-1 → us-west-2: 8 GB, ~1.8 min, $0.56 ($0.16 transfer + $0.40/month storage)"
        );
    }

    #[test]
    fn same_region_copy_has_no_transfer() {
        let est = copy_estimate(&PriceBook::bundled(), "eu-west-1", "eu-west-1", 10);
        assert_eq!(est.transfer_cost, Money::ZERO);
        assert_eq!(est.total_cost, est.monthly_storage);
    }

    #[test]
    fn unknown_regions_are_priced_pessimistically_not_rejected() {
        let book = PriceBook::bundled();
        let est = copy_estimate(&book, "xx-nowhere-1", "us-east-1", 10);
        assert_eq!(est.transfer_cost, Money::from_cents(90));
        assert_eq!(est.estimated_seconds, copy_seconds(10, false));
    }
}
