//! Exact money: integer micro-dollars.
//!
//! Cloud prices are quoted to four or five decimal places ($0.0416/hour) and the
//! figures we derive from them are small (a 6-minute setup at $0.45/hour is
//! $0.045). Summing `f64`s would drift and make seed figures flaky, so every
//! amount is an `i64` count of micro-dollars ($0.000001). That is exact for every
//! price AWS publishes and leaves room for ±9.2 trillion dollars.
//!
//! Rounding happens in exactly two places — [`Money::per_seconds`] and
//! [`Money::times_ratio`] — and both round half away from zero (for the
//! non-negative amounts that prices are, that is plain round half-up).
//! Arithmetic saturates at the `i64` bounds instead of panicking or wrapping; no
//! realistic cost comes near them.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Sub, SubAssign};
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::CostError;

/// Micro-dollars in one dollar.
pub(crate) const MICROS_PER_DOLLAR: i64 = 1_000_000;

/// An exact amount of US dollars, stored as integer micro-dollars.
///
/// `Display` prints at least two decimals and more only when needed
/// (`$0.045`, `$1.20`, `$12.00`, `$0.0004` for 417 millionths; [`Money::exact`] gives
/// every decimal). JSON carries it as a plain number
/// equal to the decimal value (`0.045`); see the `Serialize` impl for why that
/// is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

impl Money {
    /// No money at all.
    pub const ZERO: Money = Money(0);

    /// The amount that is `micros` millionths of a dollar.
    pub const fn from_micros(micros: i64) -> Money {
        Money(micros)
    }

    /// The amount in micro-dollars.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// The amount that is `cents` hundredths of a dollar (saturating).
    pub const fn from_cents(cents: i64) -> Money {
        Money(cents.saturating_mul(10_000))
    }

    /// Reads a decimal dollar amount: `"0.045"`, `"12"`, `"$1.20"`, `"-0.5"`.
    ///
    /// At most six decimal places are significant (micro-dollar precision);
    /// further non-zero digits are rejected rather than silently rounded, so a
    /// price file never means something other than what it says.
    pub fn parse(s: &str) -> Result<Money, CostError> {
        let trimmed = s.trim();
        let (negative, rest) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let rest = rest.strip_prefix('$').unwrap_or(rest);
        let micros = parse_decimal_micros(rest).map_err(|reason| {
            CostError::invalid_amount(
                s,
                format!("{reason}; write dollars like `0.045` or `$12.50`"),
            )
        })?;
        Ok(Money(if negative { -micros } else { micros }))
    }

    /// The amount as a floating-point number of dollars.
    ///
    /// For display and JSON only: never add these up, add the `Money` values.
    pub fn as_f64(self) -> f64 {
        // Exact division of an exactly representable integer: the result is
        // the f64 nearest to the true decimal value.
        self.0 as f64 / MICROS_PER_DOLLAR as f64
    }

    /// Treats `self` as an hourly rate and returns the cost of `seconds` of it:
    /// `rate × seconds / 3600`, rounded half-up to the micro-dollar.
    ///
    /// `Money::from_cents(45).per_seconds(360)` is exactly `$0.045`.
    pub fn per_seconds(self, seconds: u64) -> Money {
        let num = i128::from(self.0) * i128::from(seconds);
        Money(clamp_i64(div_round_half_away(num, 3600)))
    }

    /// `self × num / den`, rounded half-up to the micro-dollar; saturates on
    /// overflow.
    ///
    /// A zero denominator has no meaningful answer; it yields [`Money::ZERO`]
    /// (use [`Money::checked_times_ratio`] to detect it).
    pub fn times_ratio(self, num: i64, den: i64) -> Money {
        if den == 0 {
            return Money::ZERO;
        }
        let (num, den) = normalise_sign(i128::from(num), i128::from(den));
        Money(clamp_i64(div_round_half_away(
            i128::from(self.0) * num,
            den,
        )))
    }

    /// Like [`Money::times_ratio`], but `None` for a zero denominator or a result
    /// that does not fit.
    pub fn checked_times_ratio(self, num: i64, den: i64) -> Option<Money> {
        if den == 0 {
            return None;
        }
        let (num, den) = normalise_sign(i128::from(num), i128::from(den));
        i64::try_from(div_round_half_away(i128::from(self.0) * num, den))
            .ok()
            .map(Money)
    }

    /// `true` for amounts above zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// `true` for amounts below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The amount without its sign (saturating for the most negative amount).
    pub const fn abs(self) -> Money {
        Money(self.0.saturating_abs())
    }
}

fn normalise_sign(num: i128, den: i128) -> (i128, i128) {
    if den < 0 { (-num, -den) } else { (num, den) }
}

/// `num / den` rounded to the nearest integer, halves away from zero. `den > 0`.
pub(crate) fn div_round_half_away(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let q = num / den;
    let r = num % den;
    if r.abs() * 2 >= den {
        if num < 0 { q - 1 } else { q + 1 }
    } else {
        q
    }
}

pub(crate) fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Parses an unsigned decimal (`"12"`, `"0.045"`, `".5"`) into millionths.
///
/// Shared by money, multipliers and durations so they all read numbers the
/// same way. The error is a reason, without the offending text.
pub(crate) fn parse_decimal_micros(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if int_part.is_empty() && frac_part.is_none_or(str::is_empty) {
        return Err("it has no digits".into());
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err("it is not a plain decimal number".into());
    }
    let mut micros: i64 = 0;
    for b in int_part.bytes() {
        micros = micros
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(b - b'0')))
            .ok_or_else(|| "it is too large".to_string())?;
    }
    micros = micros
        .checked_mul(MICROS_PER_DOLLAR)
        .ok_or_else(|| "it is too large".to_string())?;
    if let Some(frac) = frac_part {
        if frac.is_empty() {
            return Err("it has no digits after the decimal point".into());
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err("it is not a plain decimal number".into());
        }
        let (significant, extra) = frac.split_at(frac.len().min(6));
        if extra.bytes().any(|b| b != b'0') {
            return Err(
                "it has more than 6 decimal places (amounts are exact to the micro-unit)".into(),
            );
        }
        let mut frac_micros: i64 = 0;
        for (i, b) in significant.bytes().enumerate() {
            frac_micros += i64::from(b - b'0') * 10_i64.pow(5 - i as u32);
        }
        micros = micros
            .checked_add(frac_micros)
            .ok_or_else(|| "it is too large".to_string())?;
    }
    Ok(micros)
}

/// Like [`parse_decimal_micros`], but digits beyond the sixth decimal place
/// round half away from zero instead of being rejected.
fn parse_decimal_micros_rounded(s: &str) -> Result<i64, String> {
    let Some((int_part, frac)) = s.split_once('.') else {
        return parse_decimal_micros(s);
    };
    if frac.len() <= 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return parse_decimal_micros(s);
    }
    let (kept, rest) = frac.split_at(6);
    let micros = parse_decimal_micros(&format!("{int_part}.{kept}"))?;
    if rest.as_bytes()[0] >= b'5' {
        micros
            .checked_add(1)
            .ok_or_else(|| "it is too large".to_string())
    } else {
        Ok(micros)
    }
}

/// Formats millionths as a decimal with at least `min_decimals` places and no
/// trailing zeros beyond them.
pub(crate) fn format_micros(micros: i64, min_decimals: usize) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let whole = abs / MICROS_PER_DOLLAR as u64;
    let frac = abs % MICROS_PER_DOLLAR as u64;
    let digits = format!("{frac:06}");
    let keep = digits.trim_end_matches('0').len().max(min_decimals);
    if keep == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{}", &digits[..keep])
    }
}

impl Money {
    /// Every decimal it holds (`$0.018987`), for files and round trips; people see
    /// [`Display`](fmt::Display)'s at most four.
    pub fn exact(&self) -> String {
        let text = format_micros(self.0, 2);
        match text.strip_prefix('-') {
            Some(abs) => format!("-${abs}"),
            None => format!("${text}"),
        }
    }
}

/// The most decimal places money is shown with: `$0.018987` is shown `$0.019`, `$0.2016`
/// stays. The value itself keeps its millionths (JSON carries them exactly).
pub const SHOWN_DECIMALS: u32 = 4;

impl fmt::Display for Money {
    /// Dollars with two decimals, or up to [`SHOWN_DECIMALS`] when the cents do not say it
    /// all (rounded half away from zero; trailing zeros after the cents trimmed): `$8.40`,
    /// `$0.045`, `$0.0224`, `$0.019`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = 10_i64.pow(6 - SHOWN_DECIMALS);
        let rounded = match self.0.checked_abs() {
            Some(abs) => {
                let r = abs.saturating_add(step / 2) / step * step;
                if self.0 < 0 { -r } else { r }
            }
            None => self.0,
        };
        let text = format_micros(rounded, 2);
        let text = match text.strip_prefix('-') {
            Some(abs) => format!("-${abs}"),
            None => format!("${text}"),
        };
        // `pad` so callers can align columns with `{:>10}`.
        f.pad(&text)
    }
}

impl FromStr for Money {
    type Err = CostError;

    fn from_str(s: &str) -> Result<Money, CostError> {
        Money::parse(s)
    }
}

impl Add for Money {
    type Output = Money;

    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl Sub for Money {
    type Output = Money;

    fn sub(self, rhs: Money) -> Money {
        Money(self.0.saturating_sub(rhs.0))
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        *self = *self - rhs;
    }
}

impl Mul<i64> for Money {
    type Output = Money;

    fn mul(self, rhs: i64) -> Money {
        Money(self.0.saturating_mul(rhs))
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

/// Serialized as a JSON number equal to the decimal amount (`0.045`, not
/// `45000`), because that is what every consumer of the JSON expects.
///
/// Why this is exact: the micro-dollar count is an integer below 2^53 for any
/// amount under $9 billion, so it converts to `f64` exactly; dividing by 10^6
/// (also exact) is correctly rounded by IEEE 754, giving the `f64` nearest to
/// the true decimal; and serde_json prints the shortest text that reads back as
/// that `f64` — which is the decimal itself for amounts under $1 billion (at
/// most 15 significant digits). The conversion happens here only, never in
/// sums.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

/// Accepts a number (`0.045`, `12`) or a decimal string (`"0.045"`, `"$1.20"`).
///
/// A float is read through its shortest decimal form (Rust's `Display` for
/// `f64`), which undoes the conversion done by `Serialize` exactly; any digits
/// beyond micro-dollars (float noise from a lossy JSON parser) are rounded half
/// away from zero. Strings are strict: more than 6 decimal places is an error.
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        deserializer.deserialize_any(MoneyVisitor)
    }
}

struct MoneyVisitor;

impl Visitor<'_> for MoneyVisitor {
    type Value = Money;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a dollar amount as a number (0.045) or a decimal string (\"0.045\")")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
        v.checked_mul(MICROS_PER_DOLLAR)
            .map(Money)
            .ok_or_else(|| E::custom(format!("amount {v} is too large")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
        i64::try_from(v)
            .ok()
            .and_then(|v| v.checked_mul(MICROS_PER_DOLLAR))
            .map(Money)
            .ok_or_else(|| E::custom(format!("amount {v} is too large")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
        if !v.is_finite() {
            return Err(E::custom("amount is not a finite number"));
        }
        // JSON parsers may land a float one ULP away from the written decimal
        // (serde_json does without its `float_roundtrip` feature), which shows
        // up as `0.045000000000000005`: round to the nearest micro-dollar.
        let text = v.to_string();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let micros = parse_decimal_micros_rounded(digits)
            .map_err(|reason| E::custom(format!("amount {text}: {reason}")))?;
        Ok(Money(if negative { -micros } else { micros }))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
        Money::parse(v).map_err(|e| E::custom(e.to_string()))
    }
}

/// Converts a float read from a file into money through its shortest decimal
/// text, so `0.0416` means exactly 41 600 micro-dollars.
pub(crate) fn money_from_f64(v: f64) -> Result<Money, CostError> {
    if !v.is_finite() {
        return Err(CostError::invalid_amount(
            &v.to_string(),
            "it is not a finite number",
        ));
    }
    Money::parse(&v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_figure_six_minutes_at_45_cents_an_hour_is_exactly_0_045() {
        let rate = Money::parse("0.45").unwrap();
        let cost = rate.per_seconds(360);
        assert_eq!(cost.micros(), 45_000);
        assert_eq!(cost, Money::parse("0.045").unwrap());
        assert_eq!(cost.to_string(), "$0.045");
    }

    #[test]
    fn display_keeps_cents_and_only_needed_decimals() {
        assert_eq!(Money::from_micros(45_000).to_string(), "$0.045");
        // One format: at most four decimals, rounded half away from zero.
        assert_eq!(Money::from_micros(18_987).to_string(), "$0.019");
        assert_eq!(Money::from_micros(201_600).to_string(), "$0.2016");
        assert_eq!(Money::from_micros(22_400).to_string(), "$0.0224");
        assert_eq!(Money::from_micros(8_400_000).to_string(), "$8.40");
        assert_eq!(Money::from_micros(-18_987).to_string(), "-$0.019");
        assert_eq!(Money::from_micros(49).to_string(), "$0.00");
        assert_eq!(Money::from_micros(50).to_string(), "$0.0001");
        assert_eq!(Money::from_cents(120).to_string(), "$1.20");
        assert_eq!(Money::from_cents(1200).to_string(), "$12.00");
        assert_eq!(Money::from_micros(417).to_string(), "$0.0004");
        assert_eq!(Money::ZERO.to_string(), "$0.00");
        assert_eq!(Money::from_micros(-50_000).to_string(), "-$0.05");
        assert_eq!(
            Money::from_micros(i64::MIN).to_string(),
            "-$9223372036854.775808"
        );
        assert_eq!(format!("{:>8}", Money::from_cents(5)), "   $0.05");
    }

    #[test]
    fn parse_accepts_common_forms() {
        assert_eq!(Money::parse("0.045").unwrap().micros(), 45_000);
        assert_eq!(Money::parse("$1.20").unwrap().micros(), 1_200_000);
        assert_eq!(Money::parse(" 12 ").unwrap().micros(), 12_000_000);
        assert_eq!(Money::parse(".5").unwrap().micros(), 500_000);
        assert_eq!(Money::parse("-$0.05").unwrap().micros(), -50_000);
        assert_eq!(Money::parse("0.0450000").unwrap().micros(), 45_000);
        assert_eq!("0.000417".parse::<Money>().unwrap().micros(), 417);
    }

    #[test]
    fn parse_rejects_ambiguous_or_imprecise_text() {
        for bad in [
            "",
            "$",
            "-",
            "abc",
            "1.",
            "1.2.3",
            "1,000",
            "1e3",
            "0.0000001",
            "--1",
            "+1",
            "99999999999999999999",
        ] {
            let err = Money::parse(bad).unwrap_err();
            assert!(
                matches!(err, CostError::InvalidAmount { .. }),
                "{bad:?} gave {err}"
            );
        }
        let msg = Money::parse("0.0000001").unwrap_err().to_string();
        assert!(msg.contains("more than 6 decimal places"), "{msg}");
    }

    #[test]
    fn per_seconds_rounds_half_up() {
        // 1 micro-dollar/hour for 1800 s = 0.5 micro → 1.
        assert_eq!(Money::from_micros(1).per_seconds(1800).micros(), 1);
        // 1799 s = 0.4997 micro → 0.
        assert_eq!(Money::from_micros(1).per_seconds(1799).micros(), 0);
        // t3.medium for one second: 41 600 / 3600 = 11.555… → 12.
        assert_eq!(Money::from_micros(41_600).per_seconds(1).micros(), 12);
        assert_eq!(Money::from_micros(-1).per_seconds(1800).micros(), -1);
        assert_eq!(
            Money::from_micros(i64::MAX).per_seconds(u64::MAX).micros(),
            i64::MAX
        );
    }

    #[test]
    fn times_ratio_rounds_and_handles_degenerate_denominators() {
        assert_eq!(Money::from_cents(150).times_ratio(1, 40).micros(), 37_500);
        assert_eq!(Money::from_micros(10).times_ratio(1, 4).micros(), 3); // 2.5 → 3
        assert_eq!(Money::from_micros(10).times_ratio(-1, -4).micros(), 3);
        assert_eq!(Money::from_micros(10).times_ratio(1, -4).micros(), -3);
        assert_eq!(Money::from_micros(10).times_ratio(1, 0), Money::ZERO);
        assert_eq!(Money::from_micros(10).checked_times_ratio(1, 0), None);
        assert_eq!(Money::from_micros(i64::MAX).checked_times_ratio(2, 1), None);
        assert_eq!(
            Money::from_micros(i64::MAX).times_ratio(2, 1).micros(),
            i64::MAX
        );
    }

    #[test]
    fn arithmetic_and_sum_are_exact() {
        let tenth = Money::parse("0.1").unwrap();
        let total: Money = std::iter::repeat_n(tenth, 10).sum();
        assert_eq!(total, Money::from_cents(100));
        let mut m = Money::from_cents(5);
        m += Money::from_cents(5);
        m -= Money::from_cents(3);
        assert_eq!(m, Money::from_cents(7));
        assert_eq!(Money::from_cents(7) * 3, Money::from_cents(21));
        assert_eq!(
            Money::from_micros(i64::MAX) + Money::from_micros(1),
            Money::from_micros(i64::MAX)
        );
    }

    #[test]
    fn json_is_a_number_equal_to_the_decimal() {
        for (micros, json) in [
            (45_000, "0.045"),
            (1_200_000, "1.2"),
            (12_000_000, "12.0"),
            (417, "0.000417"),
            (41_600, "0.0416"),
            (-50_000, "-0.05"),
        ] {
            let m = Money::from_micros(micros);
            assert_eq!(serde_json::to_string(&m).unwrap(), json);
            let back: Money = serde_json::from_str(json).unwrap();
            assert_eq!(back, m);
        }
    }

    #[test]
    fn json_accepts_strings_and_integers_and_rejects_junk() {
        assert_eq!(
            serde_json::from_str::<Money>("\"$0.045\"")
                .unwrap()
                .micros(),
            45_000
        );
        assert_eq!(
            serde_json::from_str::<Money>("3").unwrap().micros(),
            3_000_000
        );
        assert!(serde_json::from_str::<Money>("\"cheap\"").is_err());
        assert_eq!(
            serde_json::from_str::<Money>("0.30000000000000004")
                .unwrap()
                .micros(),
            300_000
        );
        assert_eq!(
            serde_json::from_str::<Money>("0.0000005").unwrap().micros(),
            1
        );
        assert_eq!(
            serde_json::from_str::<Money>("-0.0000005")
                .unwrap()
                .micros(),
            -1
        );
        assert_eq!(
            serde_json::from_str::<Money>("0.00000049")
                .unwrap()
                .micros(),
            0
        );
        assert!(serde_json::from_str::<Money>("\"0.0000005\"").is_err());
        assert!(serde_json::from_str::<Money>("1e300").is_err());
        assert!(serde_json::from_str::<Money>("true").is_err());
    }
}
