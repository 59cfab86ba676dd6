//! Properties of exact money, durations and the price-file parser.

use cws_cost::{Hours, Money, PriceBook};
use proptest::prelude::*;

/// Amounts up to ±$1 billion: far beyond any cost, far from saturation.
fn money() -> impl Strategy<Value = Money> {
    (-1_000_000_000_000_000_i64..=1_000_000_000_000_000).prop_map(Money::from_micros)
}

/// Hourly rates up to $1000/hour.
fn rate() -> impl Strategy<Value = Money> {
    (0_i64..=1_000_000_000).prop_map(Money::from_micros)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn addition_is_commutative(a in money(), b in money()) {
        prop_assert_eq!(a + b, b + a);
    }

    #[test]
    fn addition_is_associative(a in money(), b in money(), c in money()) {
        prop_assert_eq!((a + b) + c, a + (b + c));
    }

    #[test]
    fn subtraction_undoes_addition(a in money(), b in money()) {
        prop_assert_eq!((a + b) - b, a);
        prop_assert_eq!(a - a, Money::ZERO);
        prop_assert_eq!((a - b) + b, a);
    }

    #[test]
    fn sum_matches_integer_sum_in_any_order(values in prop::collection::vec(money(), 0..50)) {
        let total: Money = values.iter().sum();
        let expected: i64 = values.iter().map(|m| m.micros()).sum();
        prop_assert_eq!(total.micros(), expected);
        let reversed: Money = values.iter().rev().copied().sum();
        prop_assert_eq!(total, reversed);
    }

    #[test]
    fn per_seconds_is_monotonic_in_seconds(r in rate(), s in 0_u64..10_000_000, extra in 0_u64..100_000) {
        prop_assert!(r.per_seconds(s) <= r.per_seconds(s + extra));
    }

    #[test]
    fn per_seconds_is_monotonic_in_rate(r in rate(), extra in 0_i64..1_000_000_000, s in 0_u64..10_000_000) {
        let higher = r + Money::from_micros(extra);
        prop_assert!(r.per_seconds(s) <= higher.per_seconds(s));
    }

    #[test]
    fn per_seconds_is_within_half_a_micro_of_the_exact_value(r in rate(), s in 0_u64..10_000_000) {
        let exact_times_3600 = i128::from(r.micros()) * i128::from(s);
        let rounded_times_3600 = i128::from(r.per_seconds(s).micros()) * 3600;
        prop_assert!((exact_times_3600 - rounded_times_3600).abs() * 2 <= 3600);
    }

    #[test]
    fn whole_hours_cost_exactly_the_rate(r in rate(), h in 0_u64..10_000) {
        prop_assert_eq!(r.per_seconds(h * 3600), r * h as i64);
    }

    #[test]
    fn display_and_parse_round_trip(a in money()) {
        // The exact form reads back as the same value.
        let exact = a.exact();
        prop_assert_eq!(Money::parse(&exact).unwrap(), a);
        // What people see: two to four decimals, no trailing zero after the cents, and
        // within half of the fourth decimal of the value.
        let shown = a.to_string();
        let decimals = shown.split_once('.').map(|(_, f)| f.len()).unwrap_or(0);
        prop_assert!((2..=4).contains(&decimals), "{}", shown);
        if decimals > 2 {
            prop_assert!(!shown.ends_with('0'), "{}", shown);
        }
        let back = Money::parse(&shown).unwrap();
        prop_assert!((back.micros() - a.micros()).abs() <= 50, "{} shown as {}", exact, shown);
    }

    #[test]
    fn json_round_trips_through_a_number(micros in -999_999_999_999_999_i64..=999_999_999_999_999) {
        // Exact for amounts under $1 billion (15 significant digits).
        let a = Money::from_micros(micros);
        let json = serde_json::to_string(&a).unwrap();
        prop_assert!(!json.starts_with('"'));
        let back: Money = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, a);
    }

    #[test]
    fn money_parse_never_panics(s in "\\PC{0,24}") {
        let _ = Money::parse(&s);
    }

    #[test]
    fn hours_display_and_parse_round_trip(s in 0_u64..100_000_000) {
        let h = Hours::from_seconds(s);
        prop_assert_eq!(h.to_string().parse::<Hours>().unwrap(), h);
    }

    #[test]
    fn hours_parse_never_panics(s in "\\PC{0,24}") {
        let _ = s.parse::<Hours>();
    }

    #[test]
    fn override_parser_never_panics(text in "(\\[[a-z._\"-]{0,20}\\]\n|[a-z0-9.\"-]{0,12} = [-0-9.\"a-z]{0,10}\n){0,6}") {
        let _ = PriceBook::bundled().with_overrides_str(&text, "fuzz.toml");
    }
}
