//! Durations for people: one way to print them, one way to read them from a flag.

use std::time::Duration;

/// A duration for people: `45 s`, `5.5 min`, `2 min`, `1 h 5 min`.
///
/// Minutes are shown to a tenth under an hour (rounded half-up), hours and whole minutes
/// above.
pub fn format_seconds(seconds: u64) -> String {
    if seconds < 60 {
        return format!("{seconds} s");
    }
    let tenths = (seconds.saturating_mul(10).saturating_add(30)) / 60;
    if tenths < 600 {
        return if tenths.is_multiple_of(10) {
            format!("{} min", tenths / 10)
        } else {
            format!("{}.{} min", tenths / 10, tenths % 10)
        };
    }
    let minutes = seconds.saturating_add(30) / 60;
    let (h, m) = (minutes / 60, minutes % 60);
    if m == 0 {
        format!("{h} h")
    } else {
        format!("{h} h {m} min")
    }
}

/// [`format_seconds`] for a [`Duration`] (whole seconds).
pub fn format(d: Duration) -> String {
    format_seconds(d.as_secs())
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a duration: {reason}")]
pub struct ParseDurationError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Reads a duration the way `--timeout`-style flags take it: `humantime` syntax (`90s`,
/// `30m`, `1h 30m`, `2days`), or a bare number of seconds (`90`). Zero is refused: a limit of
/// nothing is a mistake, not a request.
pub fn parse(input: &str) -> Result<Duration, ParseDurationError> {
    let text = input.trim();
    let err = |reason: String| ParseDurationError {
        input: input.to_string(),
        reason,
    };
    let d = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| err(e.to_string()))?
    } else {
        humantime::parse_duration(text).map_err(|e| err(e.to_string()))?
    };
    if d.is_zero() {
        return Err(err("it must be longer than zero".to_string()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_people_say_it() {
        assert_eq!(format_seconds(45), "45 s");
        assert_eq!(format_seconds(120), "2 min");
        assert_eq!(format_seconds(330), "5.5 min");
        assert_eq!(format_seconds(3900), "1 h 5 min");
        assert_eq!(format_seconds(7200), "2 h");
    }

    #[test]
    fn parses_humantime_and_bare_seconds() {
        assert_eq!(parse("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse(" 2s ").unwrap(), Duration::from_secs(2));
        assert!(parse("0").is_err());
        assert!(parse("soon").unwrap_err().to_string().contains("`soon`"));
        assert!(parse("").is_err());
    }
}
