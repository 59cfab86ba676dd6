//! Exact session lengths.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::CostError;
use crate::money::{clamp_i64, div_round_half_away, format_micros, parse_decimal_micros};

/// A length of time, stored as whole seconds so it multiplies an hourly rate
/// exactly (see [`crate::Money::per_seconds`]).
///
/// Parsed from what people type for a session: `"2"`, `"0.5"`, `"1.25"` (hours),
/// or with a unit: `"2h"`, `"90m"`, `"90min"`, `"45s"`. Fractions of a second are
/// rounded half-up. `Display` prints decimal hours (`2h`, `0.5h`, `1.25h`) when
/// that is exact and whole seconds (`3601s`) otherwise, and always reads back to
/// the same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hours(u64);

impl Hours {
    /// No time at all.
    pub const ZERO: Hours = Hours(0);

    /// A length of `seconds` seconds.
    pub const fn from_seconds(seconds: u64) -> Hours {
        Hours(seconds)
    }

    /// A length of `hours` whole hours (saturating).
    pub const fn from_hours(hours: u64) -> Hours {
        Hours(hours.saturating_mul(3600))
    }

    /// The length in seconds.
    pub const fn seconds(self) -> u64 {
        self.0
    }

    /// The length in hours as a float, for display and JSON only.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 3600.0
    }
}

impl FromStr for Hours {
    type Err = CostError;

    fn from_str(s: &str) -> Result<Hours, CostError> {
        let text = s.trim();
        let lower = text.to_ascii_lowercase();
        let (number, unit_seconds) = [
            ("hours", 3600),
            ("hour", 3600),
            ("hrs", 3600),
            ("h", 3600),
            ("minutes", 60),
            ("min", 60),
            ("m", 60),
            ("seconds", 1),
            ("sec", 1),
            ("s", 1),
        ]
        .iter()
        .find_map(|(suffix, secs)| lower.strip_suffix(suffix).map(|n| (n.trim_end(), *secs)))
        .unwrap_or((lower.as_str(), 3600));
        let millionths = parse_decimal_micros(number).map_err(|reason| {
            CostError::invalid_amount(
                s,
                format!(
                    "{reason}; write a session length like `2`, `0.5`, `1.25h`, `90m` or `45s`"
                ),
            )
        })?;
        let seconds = div_round_half_away(i128::from(millionths) * unit_seconds, 1_000_000);
        u64::try_from(seconds)
            .map(Hours)
            .map_err(|_| CostError::invalid_amount(s, "it is too long"))
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // seconds / 3600 is a finite decimal exactly when seconds is a multiple
        // of 9 (3600 = 9 × 400, and 400 = 2^4 × 5^2); then it has ≤ 4 decimals.
        let text = if self.0.is_multiple_of(9) {
            let micro_hours = clamp_i64(i128::from(self.0) * 1_000_000 / 3600);
            format!("{}h", format_micros(micro_hours, 0))
        } else {
            format!("{}s", self.0)
        };
        f.pad(&text)
    }
}

/// Serialized as a JSON number of hours (`1.25`).
impl Serialize for Hours {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> u64 {
        s.parse::<Hours>().unwrap().seconds()
    }

    #[test]
    fn parses_plain_hours_and_units() {
        assert_eq!(h("2"), 7200);
        assert_eq!(h("0.5"), 1800);
        assert_eq!(h("1.25"), 4500);
        assert_eq!(h("2h"), 7200);
        assert_eq!(h("2 hours"), 7200);
        assert_eq!(h("90m"), 5400);
        assert_eq!(h("90min"), 5400);
        assert_eq!(h("45s"), 45);
        assert_eq!(h("0"), 0);
        // 0.0001 h = 0.36 s → rounds to 0; 0.0002 h = 0.72 s → 1.
        assert_eq!(h("0.0001"), 0);
        assert_eq!(h("0.0002"), 1);
    }

    #[test]
    fn rejects_nonsense_with_a_hint() {
        for bad in ["", "-1", "two", "1.5.2", "h", "1e3"] {
            let err = bad.parse::<Hours>().unwrap_err();
            assert!(matches!(err, CostError::InvalidAmount { .. }), "{bad:?}");
            assert!(err.to_string().contains("`1.25h`"), "{err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for secs in [0, 1, 9, 45, 1800, 3600, 3601, 4500, 7200, 86_400 * 30] {
            let hours = Hours::from_seconds(secs);
            let shown = hours.to_string();
            assert_eq!(shown.parse::<Hours>().unwrap(), hours, "{shown}");
        }
        assert_eq!(Hours::from_seconds(4500).to_string(), "1.25h");
        assert_eq!(Hours::from_seconds(1800).to_string(), "0.5h");
        assert_eq!(Hours::from_hours(2).to_string(), "2h");
        assert_eq!(Hours::from_seconds(3601).to_string(), "3601s");
    }

    #[test]
    fn serializes_as_hours() {
        assert_eq!(
            serde_json::to_string(&Hours::from_seconds(4500)).unwrap(),
            "1.25"
        );
    }
}
