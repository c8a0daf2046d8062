//! Time: one clock, one timestamp parser, one timestamp formatter.
//!
//! A leaf module: it imports nothing from the crate, so every layer can use
//! it without creating an import cycle.
//!
//! - [`Clock`] is "now" for operations (alerts, health, schedules, DR
//!   runbook ages, verify runs and the pack reads that steer sampling). It
//!   is the system clock unless the configuration fixed it (`VAULTCTL_NOW`,
//!   read once by `config::load`, so tests can inject a time instead of
//!   sleeping).
//! - [`now_rfc3339`] is the wall clock for what is written into the
//!   repository and the catalog's backup rows (start and finish times):
//!   those always record when things really happened.
//! - [`parse`] reads the catalog and manifest format (RFC 3339), [`format`]
//!   writes it (UTC, millisecond precision, sortable as text).
//! - [`human`] prints an age or period rounded for people (`26h`, `4d3h`).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// "Now" for operations: the system clock, or a fixed time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    fixed: Option<OffsetDateTime>,
}

impl Clock {
    /// The system clock.
    pub const fn system() -> Clock {
        Clock { fixed: None }
    }

    /// A clock that always says `t`.
    pub const fn fixed(t: OffsetDateTime) -> Clock {
        Clock { fixed: Some(t) }
    }

    /// The clock for an override value (`VAULTCTL_NOW`): unset or empty
    /// means the system clock; an RFC 3339 time fixes the clock; anything
    /// else is an error (the caller warns and uses the system clock).
    pub fn from_override(value: Option<&str>) -> Result<Clock, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(Clock::system()),
            Some(v) => parse(v)
                .map(Clock::fixed)
                .ok_or_else(|| format!("\"{v}\" is not an RFC 3339 time")),
        }
    }

    /// Whether this clock is fixed (a test override).
    pub fn is_fixed(&self) -> bool {
        self.fixed.is_some()
    }

    pub fn now(&self) -> OffsetDateTime {
        self.fixed.unwrap_or_else(OffsetDateTime::now_utc)
    }

    /// [`Clock::now`] in the catalog's time format.
    pub fn now_str(&self) -> String {
        format(self.now())
    }
}

/// The wall clock in the catalog's time format (never fixed: repository and
/// backup records say when things really happened).
pub fn now_rfc3339() -> String {
    format(OffsetDateTime::now_utc())
}

/// Parses a catalog or manifest time (RFC 3339).
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Catalog and manifest times: UTC, millisecond precision, sortable as text.
pub fn format(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

/// A time as the catalog and the manifests write it (RFC 3339, see
/// [`format`]): the text is kept as read, so a row stores, compares and
/// serializes (JSON: a plain string) exactly as before, and [`time`]
/// parses it when a computation needs the instant.
///
/// [`time`]: Timestamp::time
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(String);

impl Timestamp {
    /// `t` in the catalog's format.
    pub fn at(t: OffsetDateTime) -> Timestamp {
        Timestamp(format(t))
    }

    /// The wall clock ([`now_rfc3339`]).
    pub fn now() -> Timestamp {
        Timestamp(now_rfc3339())
    }

    /// The instant, if the text is an RFC 3339 time.
    pub fn time(&self) -> Option<OffsetDateTime> {
        parse(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Text as stored (the catalog's columns are text).
impl From<String> for Timestamp {
    fn from(s: String) -> Timestamp {
        Timestamp(s)
    }
}

impl From<&str> for Timestamp {
    fn from(s: &str) -> Timestamp {
        Timestamp(s.to_string())
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.0
    }
}

impl std::ops::Deref for Timestamp {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Timestamp {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Timestamp {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Timestamp {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Parses `90s`, `5m`, `26h`, `30d`, `2w` (and combinations such as `1h30m`).
///
/// A thin wrapper over `humantime`: it accepts only the documented syntax
/// (digits, then one of `s m h d w`, repeated, no spaces), because humantime
/// alone would also take `1 hour`, `100ms`, `2M` (months) or `1y`, which the
/// README and config.example.toml do not promise.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits = true;
        } else if !digits {
            return Err(format!("invalid duration \"{s}\""));
        } else if !matches!(c, 's' | 'm' | 'h' | 'd' | 'w') {
            return Err(format!("invalid duration \"{s}\": unknown unit '{c}'"));
        } else {
            digits = false;
        }
    }
    if digits {
        return Err(format!(
            "invalid duration \"{s}\": a number needs a unit (s, m, h, d, w)"
        ));
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration \"{s}\": {e}"))
}

/// Which way an age on the command line points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// `--since 7d`: seven days before now.
    Ago,
    /// `--at 2h`: two hours from now.
    FromNow,
}

/// Parses a time given on the command line: an age ([`parse_duration`],
/// counted from `now` the way `age` says), RFC 3339, a UTC date and time
/// (`2026-12-01 02:00[:SS]`, `T` or a space between), or a date (its
/// midnight UTC).
pub fn parse_arg(s: &str, now: OffsetDateTime, age: Age) -> Option<OffsetDateTime> {
    if let Ok(d) = parse_duration(s) {
        return Some(match age {
            Age::Ago => now - d,
            Age::FromNow => now + d,
        });
    }
    if let Some(t) = parse(s) {
        return Some(t);
    }
    let s = s.trim();
    let date_time = time::macros::format_description!(
        "[year]-[month]-[day][first [T][ ]][hour]:[minute][optional [:[second]]]"
    );
    if let Ok(t) = time::PrimitiveDateTime::parse(s, &date_time) {
        return Some(t.assume_utc());
    }
    let date = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &date)
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// `90s`, `5m`, `26h`, `3d4h`.
pub fn human(secs: u64) -> String {
    if secs < 120 {
        format!("{secs}s")
    } else if secs < 7200 {
        format!("{}m", secs / 60)
    } else if secs < 3 * 86400 {
        format!("{}h", secs / 3600)
    } else {
        let h = (secs % 86400) / 3600;
        if h == 0 {
            format!("{}d", secs / 86400)
        } else {
            format!("{}d{}h", secs / 86400, h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_times() {
        let now = parse("2026-11-30T12:00:00Z").unwrap();
        let at = |s, age| parse_arg(s, now, age).map(format);
        assert_eq!(at("7d", Age::Ago).unwrap(), "2026-11-23T12:00:00.000Z");
        assert_eq!(at("2h", Age::FromNow).unwrap(), "2026-11-30T14:00:00.000Z");
        assert_eq!(
            at("2026-11-01T02:00:00+01:00", Age::Ago).unwrap(),
            "2026-11-01T01:00:00.000Z"
        );
        assert_eq!(
            at("2026-12-01 02:00", Age::FromNow).unwrap(),
            "2026-12-01T02:00:00.000Z"
        );
        assert_eq!(
            at("2026-12-01T02:00:30", Age::FromNow).unwrap(),
            "2026-12-01T02:00:30.000Z"
        );
        assert_eq!(
            at("2026-11-01", Age::Ago).unwrap(),
            "2026-11-01T00:00:00.000Z"
        );
        for bad in ["", "yesterday", "7", "1 hour", "2026-13-01"] {
            assert_eq!(at(bad, Age::Ago), None, "{bad}");
        }
    }

    #[test]
    fn override_fixes_the_clock() {
        let c = Clock::from_override(Some("2026-11-27T02:00:00Z")).unwrap();
        assert!(c.is_fixed());
        assert_eq!(c.now_str(), "2026-11-27T02:00:00.000Z");
        assert_eq!(c.now(), c.now());
    }

    #[test]
    fn no_override_is_the_system_clock() {
        assert_eq!(Clock::from_override(None).unwrap(), Clock::system());
        assert_eq!(Clock::from_override(Some("")).unwrap(), Clock::system());
        assert!(!Clock::system().is_fixed());
        assert!(Clock::from_override(Some("yesterday")).is_err());
    }

    #[test]
    fn format_and_parse_round_trip() {
        let t = parse("2026-03-01T10:20:30.456+02:00").unwrap();
        let s = format(t);
        assert_eq!(s, "2026-03-01T08:20:30.456Z");
        assert_eq!(parse(&s), Some(t));
        assert_eq!(parse("not a time"), None);
    }

    #[test]
    fn a_timestamp_keeps_its_text_and_serializes_as_a_string() {
        let t = Timestamp::from("2026-03-01T08:20:30.456Z".to_string());
        assert_eq!(t, "2026-03-01T08:20:30.456Z");
        assert_eq!(t.time(), parse("2026-03-01T08:20:30.456Z"));
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-03-01T08:20:30.456Z\""
        );
        let back: Timestamp = serde_json::from_str("\"2026-03-01T08:20:30.456Z\"").unwrap();
        assert_eq!(back, t);
        assert_eq!(Timestamp::at(t.time().unwrap()), t);
        // Text that is not a time is kept (old rows), it just has no instant.
        assert_eq!(Timestamp::from("garbage".to_string()).time(), None);
        assert!(Timestamp::from("2027-01-02T00:00:00.000Z".to_string()) > t);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(59), "59s");
        assert_eq!(human(600), "10m");
        assert_eq!(human(26 * 3600), "26h");
        assert_eq!(human(4 * 86400 + 3 * 3600), "4d3h");
    }
}
