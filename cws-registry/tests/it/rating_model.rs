//! Random sequences of ratings applied to the SQLite store and to an in-memory oracle written
//! independently of the crate's averaging and scoring code; every listing's average, count,
//! per-author stars and score, and the order of `browse` by score must agree.

use std::collections::BTreeMap;

use cws_registry::*;
use proptest::prelude::*;

use crate::fixtures;

/// Listings rated (`alice/l0` .. `alice/l3`).
const LISTINGS: usize = 4;
/// Raters (`rater0` .. `rater4`).
const RATERS: usize = 5;

#[derive(Debug, Clone)]
struct RateOp {
    rater: usize,
    listing: usize,
    stars: u8,
    review: Option<String>,
}

fn rate_op() -> impl Strategy<Value = RateOp> {
    (
        0..RATERS,
        0..LISTINGS,
        1u8..=5,
        proptest::option::of("[a-z]{1,10}( [a-z]{1,10}){0,3}"),
    )
        .prop_map(|(rater, listing, stars, review)| RateOp {
            rater,
            listing,
            stars,
            review,
        })
}

fn listing_id(l: usize) -> String {
    format!("alice/l{l}")
}

fn rater_handle(r: usize) -> String {
    format!("rater{r}")
}

/// What the ratings should be: one rating per (listing, rater), a re-rate replaces.
#[derive(Debug, Default)]
struct Oracle {
    stars: BTreeMap<(usize, usize), u8>,
}

impl Oracle {
    fn rate(&mut self, op: &RateOp) {
        self.stars.insert((op.listing, op.rater), op.stars);
    }

    /// (sum of stars, number of ratings) of a listing.
    fn totals(&self, listing: usize) -> (u64, u64) {
        self.stars
            .iter()
            .filter(|((l, _), _)| *l == listing)
            .fold((0, 0), |(sum, n), (_, s)| (sum + u64::from(*s), n + 1))
    }

    /// Average stars rounded to one decimal; 0 with no rating.
    fn average(&self, listing: usize) -> f64 {
        let (sum, n) = self.totals(listing);
        if n == 0 {
            return 0.0;
        }
        let tenths = (sum as f64 * 10.0 / n as f64).round();
        tenths / 10.0
    }

    /// Mean of every rating in the store, or 3 when there is none.
    fn prior_mean(&self) -> f64 {
        if self.stars.is_empty() {
            return 3.0;
        }
        let sum: u64 = self.stars.values().map(|s| u64::from(*s)).sum();
        sum as f64 / self.stars.len() as f64
    }

    /// Five prior votes at the global mean plus the listing's own votes.
    fn score(&self, listing: usize) -> f64 {
        let (sum, n) = self.totals(listing);
        (5.0 * self.prior_mean() + sum as f64) / (5.0 + n as f64)
    }

    fn stars_by_rater(&self, listing: usize) -> BTreeMap<String, u8> {
        self.stars
            .iter()
            .filter(|((l, _), _)| *l == listing)
            .map(|((_, r), s)| (rater_handle(*r), *s))
            .collect()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9
}

async fn check_ratings(ops: Vec<RateOp>) -> Result<(), TestCaseError> {
    let store = cws_registry::testing::temp_sqlite().await;
    let alice = fixtures::user("alice");
    for l in 0..LISTINGS {
        store
            .publish(&alice, &fixtures::publish(&listing_id(l), l as u64 + 1))
            .await
            .map_err(|e| TestCaseError::fail(format!("publish {}: {e:?}", listing_id(l))))?;
    }
    let raters: Vec<Actor> = (0..RATERS)
        .map(|r| fixtures::user(&rater_handle(r)))
        .collect();

    let mut oracle = Oracle::default();
    for op in &ops {
        let id: ListingId = listing_id(op.listing).parse().expect("listing id");
        let got = store
            .rate(&raters[op.rater], &id, op.stars, op.review.as_deref())
            .await
            .map_err(|e| TestCaseError::fail(format!("{op:?}: {e:?}")))?;
        oracle.rate(op);
        let (_, count) = oracle.totals(op.listing);
        prop_assert_eq!(got.count, count, "rate() count after {:?}", op);
        prop_assert!(
            close(got.average, oracle.average(op.listing)),
            "rate() average after {:?}: store {}, oracle {}",
            op,
            got.average,
            oracle.average(op.listing)
        );
    }

    for l in 0..LISTINGS {
        let id: ListingId = listing_id(l).parse().expect("listing id");
        let detail = store
            .listing(None, &id)
            .await
            .map_err(|e| TestCaseError::fail(format!("listing {id}: {e:?}")))?;
        let (_, count) = oracle.totals(l);
        prop_assert_eq!(detail.summary.rating.count, count, "count of {}", id);
        prop_assert!(
            close(detail.summary.rating.average, oracle.average(l)),
            "average of {}: store {}, oracle {}",
            id,
            detail.summary.rating.average,
            oracle.average(l)
        );
        let reviews = store
            .reviews(None, &id)
            .await
            .map_err(|e| TestCaseError::fail(format!("reviews {id}: {e:?}")))?;
        let by_rater: BTreeMap<String, u8> = reviews
            .iter()
            .map(|r| (r.author.clone(), r.stars))
            .collect();
        prop_assert_eq!(
            reviews.len(),
            by_rater.len(),
            "one review per rater of {}",
            id
        );
        prop_assert_eq!(
            by_rater,
            oracle.stars_by_rater(l),
            "stars by rater of {}",
            id
        );
    }

    let query = BrowseQuery {
        sort: Sort::Score,
        ..BrowseQuery::default()
    };
    let browsed = store
        .browse(None, &query)
        .await
        .map_err(|e| TestCaseError::fail(format!("browse: {e:?}")))?;
    let mut seen: Vec<String> = browsed.iter().map(|s| s.id.to_string()).collect();
    seen.sort();
    let all: Vec<String> = (0..LISTINGS).map(listing_id).collect();
    prop_assert_eq!(seen, all, "browse lists every listing once");
    for pair in browsed.windows(2) {
        prop_assert!(
            pair[0].score >= pair[1].score - 1e-9,
            "browse(score) not in order: {} ({}) before {} ({})",
            pair[0].id,
            pair[0].score,
            pair[1].id,
            pair[1].score
        );
    }
    for s in &browsed {
        let l: usize = s.id.slug[1..].parse().expect("fixture slug l<N>");
        prop_assert!(
            close(s.score, oracle.score(l)),
            "score of {}: store {}, oracle {} (prior mean {})",
            s.id,
            s.score,
            oracle.score(l),
            oracle.prior_mean()
        );
        prop_assert_eq!(
            s.rating.count,
            oracle.totals(l).1,
            "browse count of {}",
            s.id
        );
        prop_assert!(
            close(s.rating.average, oracle.average(l)),
            "browse average of {}: store {}, oracle {}",
            s.id,
            s.rating.average,
            oracle.average(l)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn ratings_agree_with_the_oracle(ops in proptest::collection::vec(rate_op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(check_ratings(ops))?;
    }
}
