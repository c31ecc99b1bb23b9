//! Points in time for decisions that depend on one (time-bound role assignments). The engine
//! has no clock: the caller states "now" (the server reads its clock per request, `check` and
//! `explain` take `--now`), so every answer can be reproduced.

use std::fmt;
use std::time::{Duration, SystemTime};

/// A point in time, in milliseconds since the Unix epoch (UTC). ARM writes schedule times
/// with fractions of a second; milliseconds keep "starts at 09:00:00.5" exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a text is not an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 time (e.g. `2026-01-31T09:00:00Z`): {why}")]
pub struct TimeError {
    text: String,
    why: String,
}

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (0 before it), as JWT times count.
    pub fn unix_seconds(self) -> u64 {
        u64::try_from(self.0.div_euclid(1000)).unwrap_or(0)
    }

    /// Parses an RFC 3339 time (`2026-01-31T09:00:00Z`, `…T09:00:00.91+01:00`); fractions
    /// below a millisecond are dropped.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimeError> {
        let error = |why: String| TimeError {
            text: crate::model::excerpt::excerpt(text).to_string(),
            why,
        };
        let parsed = time::OffsetDateTime::parse(
            text.trim(),
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| error(e.to_string()))?;
        let millis = parsed.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(millis)
            .map(Timestamp)
            .map_err(|_| error("out of range".into()))
    }

    /// The time a system clock reading stands for (before 1970 counts as the epoch).
    pub fn from_system(time: SystemTime) -> Self {
        let millis = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Timestamp(i64::try_from(millis).unwrap_or(i64::MAX))
    }

    /// How long from `self` until `later` (zero if `later` is not after `self`).
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }
}

/// RFC 3339 in UTC, with milliseconds only when there are some.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = i128::from(self.0) * 1_000_000;
        let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
            return write!(f, "@{}ms", self.0);
        };
        let (year, month, day) = (t.year(), u8::from(t.month()), t.day());
        let (hour, minute, second) = (t.hour(), t.minute(), t.second());
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
        )?;
        match t.millisecond() {
            0 => f.write_str("Z"),
            ms => write!(f, ".{ms:03}Z"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_to_the_millisecond_and_print_back() {
        let t = Timestamp::parse_rfc3339("2020-09-09T21:35:27.91Z").unwrap();
        assert_eq!(t.unix_millis(), 1_599_687_327_910);
        assert_eq!(t.to_string(), "2020-09-09T21:35:27.910Z");
        let offset = Timestamp::parse_rfc3339("2020-09-09T23:35:27+02:00").unwrap();
        assert_eq!(offset.to_string(), "2020-09-09T21:35:27Z");
        assert!(Timestamp::parse_rfc3339("2020-09-09").is_err());
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
        assert!(Timestamp::parse_rfc3339("2020-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn until_is_zero_for_the_past() {
        let a = Timestamp::from_unix_millis(1_000);
        assert_eq!(
            a.until(Timestamp::from_unix_millis(3_500)).as_millis(),
            2_500
        );
        assert_eq!(a.until(Timestamp::from_unix_millis(0)), Duration::ZERO);
    }
}
