//! Schedules: a subset of systemd `OnCalendar` syntax (and 5-field cron),
//! next-run computation in UTC, and the typical interval used for staleness.
//!
//! Accepted OnCalendar forms: the shorthands `minutely`, `hourly`, `daily`,
//! `weekly`, `monthly`, `quarterly`, `semiannually`, `yearly`/`annually`, and
//! `[WEEKDAYS] [*-MONTH-DAY] [HOUR:MINUTE[:SECOND]] [UTC]`, where weekdays are
//! `Mon`, `Mon..Fri`, `Sat,Sun` and each numeric component is `*`, a number,
//! a list (`1,15`), a range (`1..5`) or a repetition (`*/15`, `0/15`). The
//! year must be `*`. Times are UTC. A 5-field cron expression (`30 1 * * 1-5`)
//! and `@daily`-style cron shorthands are accepted too.

use std::fmt::Write as _;
use std::time::Duration;

use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// One set of matching fields; a time matches when every field does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    /// bit 0 = Monday … bit 6 = Sunday.
    weekdays: u8,
    /// bits 1..=12.
    months: u16,
    /// bits 1..=31.
    days: u32,
    /// bits 0..=23.
    hours: u32,
    /// bits 0..=59.
    minutes: u64,
    /// bits 0..=59.
    seconds: u64,
}

const ALL_WEEKDAYS: u8 = 0x7f;
const ALL_MONTHS: u16 = 0x1ffe;
const ALL_DAYS: u32 = 0xffff_fffe;
const ALL_HOURS: u32 = 0x00ff_ffff;
const ALL_MINUTES: u64 = (1 << 60) - 1;

impl Spec {
    fn matches_date(&self, d: Date) -> bool {
        let wd = d.weekday().number_days_from_monday();
        self.weekdays & (1 << wd) != 0
            && self.months & (1 << d.month() as u8) != 0
            && self.days & (1 << d.day()) != 0
    }

    /// The first time of day at or after `from` (seconds since midnight).
    fn first_time_from(&self, from: u32) -> Option<u32> {
        for h in (from / 3600)..24 {
            if self.hours & (1 << h) == 0 {
                continue;
            }
            for m in 0..60u32 {
                if self.minutes & (1 << m) == 0 {
                    continue;
                }
                for s in 0..60u32 {
                    if self.seconds & (1 << s) == 0 {
                        continue;
                    }
                    let t = h * 3600 + m * 60 + s;
                    if t >= from {
                        return Some(t);
                    }
                }
            }
        }
        None
    }

    fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let t = t.to_offset(time::UtcOffset::UTC);
        let mut date = t.date();
        let mut from = t.hour() as u32 * 3600 + t.minute() as u32 * 60 + t.second() as u32 + 1;
        // Five years covers every valid month/day/weekday combination.
        for _ in 0..(5 * 366) {
            if from < 86400 && self.matches_date(date) {
                if let Some(secs) = self.first_time_from(from) {
                    let time = Time::from_hms(
                        (secs / 3600) as u8,
                        ((secs / 60) % 60) as u8,
                        (secs % 60) as u8,
                    )
                    .ok()?;
                    return Some(PrimitiveDateTime::new(date, time).assume_utc());
                }
            }
            date = date.next_day()?;
            from = 0;
        }
        None
    }
}

/// A validated schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// As written in the config.
    pub text: String,
    /// Written in cron syntax (day-of-month and weekday are OR'ed).
    pub cron: bool,
    /// Any of these matches (cron's day-of-month OR weekday needs two).
    specs: Vec<Spec>,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("the schedule is empty".into());
        }
        let (specs, cron) = if t.starts_with('@') || looks_like_cron(t) {
            (parse_cron(t)?, true)
        } else {
            (vec![parse_calendar(t)?], false)
        };
        let s = Schedule {
            text: t.split_whitespace().collect::<Vec<_>>().join(" "),
            cron,
            specs,
        };
        let probe = PrimitiveDateTime::new(time::macros::date!(2026 - 01 - 01), Time::MIDNIGHT)
            .assume_utc();
        if s.next_after(probe).is_none() {
            return Err("the schedule never fires (no such date)".into());
        }
        Ok(s)
    }

    /// The first run strictly after `t` (UTC).
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        self.specs.iter().filter_map(|s| s.next_after(t)).min()
    }

    /// The longest gap between two consecutive runs (over about a year from
    /// a fixed date): a day for `daily`, three days for `Mon..Fri`.
    pub fn longest_interval(&self) -> Duration {
        let start = PrimitiveDateTime::new(time::macros::date!(2026 - 01 - 01), Time::MIDNIGHT)
            .assume_utc();
        let end = start + time::Duration::days(400);
        let mut prev = match self.next_after(start) {
            Some(t) => t,
            None => return Duration::from_secs(86400),
        };
        let mut longest = time::Duration::ZERO;
        for _ in 0..20_000 {
            let Some(next) = self.next_after(prev) else {
                break;
            };
            longest = longest.max(next - prev);
            if next > end {
                break;
            }
            prev = next;
        }
        Duration::from_secs(longest.whole_seconds().max(1) as u64)
    }

    /// Default staleness threshold: the longest interval plus a grace of a
    /// twelfth of it, at least one hour (daily → 26h, hourly → 2h).
    pub fn default_stale_after(&self) -> Duration {
        let i = self.longest_interval();
        i + (i / 12).max(Duration::from_secs(3600))
    }

    /// `OnCalendar=` values for a systemd timer, spelled out and pinned to
    /// UTC (systemd would otherwise use local time).
    pub fn on_calendar(&self) -> Vec<String> {
        self.specs
            .iter()
            .map(|s| format!("{} UTC", spec_to_calendar(s)))
            .collect()
    }

    /// A crontab time field (`M H DOM MON DOW`), with a note when cron cannot
    /// express the schedule exactly.
    pub fn cron_fields(&self) -> Vec<(String, Option<String>)> {
        self.specs
            .iter()
            .map(|s| {
                let mut notes = Vec::new();
                if s.seconds != 1 {
                    notes.push("cron has no seconds; runs at second 0");
                }
                if !self.cron && s.weekdays != ALL_WEEKDAYS && s.days != ALL_DAYS {
                    notes.push("cron treats day-of-month and weekday as OR, systemd as AND");
                }
                let dow = if s.weekdays == ALL_WEEKDAYS {
                    "*".to_string()
                } else {
                    // cron: 0 = Sunday.
                    let mut mask = 0u64;
                    for b in 0..7 {
                        if s.weekdays & (1 << b) != 0 {
                            mask |= 1 << ((b + 1) % 7);
                        }
                    }
                    list(mask, 0, 6, "-")
                };
                let fields = format!(
                    "{} {} {} {} {}",
                    field(s.minutes, 0, 59, ALL_MINUTES, "-"),
                    field(s.hours as u64, 0, 23, ALL_HOURS as u64, "-"),
                    field(s.days as u64, 1, 31, ALL_DAYS as u64, "-"),
                    field(s.months as u64, 1, 12, ALL_MONTHS as u64, "-"),
                    dow
                );
                (
                    fields,
                    if notes.is_empty() {
                        None
                    } else {
                        Some(notes.join("; "))
                    },
                )
            })
            .collect()
    }
}

fn field(mask: u64, lo: u32, hi: u32, all: u64, range_sep: &str) -> String {
    if mask == all {
        "*".into()
    } else {
        list(mask, lo, hi, range_sep)
    }
}

/// `0,15,30` or `1-5` (with `..` for systemd).
fn list(mask: u64, lo: u32, hi: u32, range_sep: &str) -> String {
    let mut out = String::new();
    let mut v = lo;
    while v <= hi {
        if mask & (1 << v) == 0 {
            v += 1;
            continue;
        }
        let start = v;
        while v < hi && mask & (1 << (v + 1)) != 0 {
            v += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if v >= start + 2 {
            let _ = write!(out, "{start}{range_sep}{v}");
        } else if v == start + 1 {
            let _ = write!(out, "{start},{v}");
        } else {
            let _ = write!(out, "{start}");
        }
        v += 1;
    }
    out
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn spec_to_calendar(s: &Spec) -> String {
    let mut out = String::new();
    if s.weekdays != ALL_WEEKDAYS {
        let names: Vec<&str> = (0..7)
            .filter(|b| s.weekdays & (1 << b) != 0)
            .map(|b| DAY_NAMES[b])
            .collect();
        out.push_str(&names.join(","));
        out.push(' ');
    }
    let comp = |mask: u64, lo: u32, hi: u32, all: u64, width: usize| -> String {
        if mask == all {
            "*".into()
        } else {
            (lo..=hi)
                .filter(|v| mask & (1 << v) != 0)
                .map(|v| format!("{v:0width$}"))
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let _ = write!(
        out,
        "*-{}-{} {}:{}:{}",
        comp(s.months as u64, 1, 12, ALL_MONTHS as u64, 2),
        comp(s.days as u64, 1, 31, ALL_DAYS as u64, 2),
        comp(s.hours as u64, 0, 23, ALL_HOURS as u64, 2),
        comp(s.minutes, 0, 59, ALL_MINUTES, 2),
        comp(s.seconds, 0, 59, ALL_MINUTES, 2),
    );
    out
}

fn looks_like_cron(t: &str) -> bool {
    let parts: Vec<&str> = t.split_whitespace().collect();
    parts.len() == 5
        && parts.iter().all(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "*,-/".contains(c))
        })
        && !t.contains(':')
}

/// Parses one numeric component into a bit mask over `lo..=hi`. `range` is
/// the range operator (`..` for systemd, `-` for cron).
fn component(
    text: &str,
    lo: u32,
    hi: u32,
    range: &str,
    what: &str,
    names: &dyn Fn(&str) -> Option<u32>,
) -> Result<u64, String> {
    let num = |s: &str| -> Result<u32, String> {
        let v = match s.parse::<u32>() {
            Ok(v) => v,
            Err(_) => names(s).ok_or_else(|| format!("\"{s}\" is not a valid {what}"))?,
        };
        if v < lo || v > hi {
            return Err(format!("{what} {v} is out of range {lo}..{hi}"));
        }
        Ok(v)
    };
    let mut mask = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("empty {what} in \"{text}\""));
        }
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("\"{s}\" is not a valid repetition step"))?;
                if step == 0 {
                    return Err("a repetition step of 0".into());
                }
                (b, Some(step))
            }
            None => (item, None),
        };
        let (start, end) = if base == "*" {
            (lo, hi)
        } else if let Some((a, b)) = base.split_once(range) {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!("the {what} range {base} is backwards"));
            }
            (a, b)
        } else {
            let a = num(base)?;
            (a, if step.is_some() { hi } else { a })
        };
        let step = step.unwrap_or(1);
        let mut v = start;
        while v <= end {
            mask |= 1 << v;
            v += step;
        }
    }
    Ok(mask)
}

fn no_names(_: &str) -> Option<u32> {
    None
}

fn weekday_index(name: &str) -> Option<u32> {
    let n = name.to_ascii_lowercase();
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    (0..7u32).find(|&i| n == DAY_NAMES[i as usize].to_ascii_lowercase() || n == full[i as usize])
}

fn parse_calendar(t: &str) -> Result<Spec, String> {
    let expanded = match t.to_ascii_lowercase().as_str() {
        "minutely" => "*-*-* *:*:00".to_string(),
        "hourly" => "*-*-* *:00:00".to_string(),
        "daily" => "*-*-* 00:00:00".to_string(),
        "weekly" => "Mon *-*-* 00:00:00".to_string(),
        "monthly" => "*-*-01 00:00:00".to_string(),
        "quarterly" => "*-01,04,07,10-01 00:00:00".to_string(),
        "semiannually" => "*-01,07-01 00:00:00".to_string(),
        "yearly" | "annually" => "*-01-01 00:00:00".to_string(),
        _ => t.to_string(),
    };
    let mut tokens: Vec<&str> = expanded.split_whitespace().collect();
    if let Some(last) = tokens.last() {
        if last.eq_ignore_ascii_case("utc") {
            tokens.pop();
        } else if last
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '/' || c == '_')
            && last.len() > 3
            && weekday_index(last).is_none()
        {
            return Err(format!(
                "time zone \"{last}\" is not supported; schedules are UTC (write UTC or nothing)"
            ));
        }
    }
    let mut spec = Spec {
        weekdays: ALL_WEEKDAYS,
        months: ALL_MONTHS,
        days: ALL_DAYS,
        hours: 0,
        minutes: 0,
        seconds: 1,
    };
    let mut i = 0;
    if let Some(tok) = tokens.first() {
        if tok.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            spec.weekdays = parse_weekdays(tok)?;
            i = 1;
        }
    }
    let mut saw_date = false;
    let mut saw_time = false;
    for tok in &tokens[i..] {
        if tok.contains(':') && !saw_time {
            parse_time(tok, &mut spec)?;
            saw_time = true;
        } else if tok.contains('-') && !saw_date && !saw_time {
            parse_date(tok, &mut spec)?;
            saw_date = true;
        } else {
            return Err(format!(
                "unexpected \"{tok}\" (expected [WEEKDAYS] [*-MM-DD] [HH:MM[:SS]])"
            ));
        }
    }
    if i == 0 && !saw_date && !saw_time {
        return Err(
            "expected a shorthand such as daily, or [WEEKDAYS] [*-MM-DD] [HH:MM[:SS]]".into(),
        );
    }
    if !saw_time {
        spec.hours = 1;
        spec.minutes = 1;
    }
    Ok(spec)
}

fn parse_weekdays(tok: &str) -> Result<u8, String> {
    let mut mask = 0u8;
    for item in tok.split(',') {
        let (a, b) = item.split_once("..").unwrap_or((item, item));
        let a = weekday_index(a)
            .ok_or_else(|| format!("\"{a}\" is not a weekday (Mon, Tue, … Sun)"))?;
        let b = weekday_index(b)
            .ok_or_else(|| format!("\"{b}\" is not a weekday (Mon, Tue, … Sun)"))?;
        if a > b {
            return Err(format!(
                "the weekday range {item} is backwards (write Mon..Fri)"
            ));
        }
        for d in a..=b {
            mask |= 1 << d;
        }
    }
    Ok(mask)
}

fn parse_date(tok: &str, spec: &mut Spec) -> Result<(), String> {
    if tok.contains('~') {
        return Err("\"~\" (days from the end of the month) is not supported".into());
    }
    let parts: Vec<&str> = tok.split('-').collect();
    let (month, day) = match parts.as_slice() {
        [year, m, d] => {
            if *year != "*" {
                return Err(format!(
                    "a specific year (\"{year}\") is not supported; write *-MM-DD"
                ));
            }
            (*m, *d)
        }
        [m, d] => (*m, *d),
        _ => {
            return Err(format!(
                "\"{tok}\" is not a date (write *-*-*, *-MM-DD or MM-DD)"
            ))
        }
    };
    spec.months = component(month, 1, 12, "..", "month", &no_names)? as u16;
    spec.days = component(day, 1, 31, "..", "day", &no_names)? as u32;
    Ok(())
}

fn parse_time(tok: &str, spec: &mut Spec) -> Result<(), String> {
    let parts: Vec<&str> = tok.split(':').collect();
    let (h, m, s) = match parts.as_slice() {
        [h, m] => (*h, *m, "00"),
        [h, m, s] => (*h, *m, *s),
        _ => return Err(format!("\"{tok}\" is not a time (write HH:MM or HH:MM:SS)")),
    };
    if s.contains('.') {
        return Err("fractional seconds are not supported".into());
    }
    spec.hours = component(h, 0, 23, "..", "hour", &no_names)? as u32;
    spec.minutes = component(m, 0, 59, "..", "minute", &no_names)?;
    spec.seconds = component(s, 0, 59, "..", "second", &no_names)?;
    Ok(())
}

fn parse_cron(t: &str) -> Result<Vec<Spec>, String> {
    let expanded = match t {
        "@hourly" => "0 * * * *",
        "@daily" | "@midnight" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        "@yearly" | "@annually" => "0 0 1 1 *",
        other if other.starts_with('@') => return Err(format!("\"{other}\" is not a supported cron shorthand (@hourly, @daily, @weekly, @monthly, @yearly)")),
        other => other,
    };
    let f: Vec<&str> = expanded.split_whitespace().collect();
    let month_names = |s: &str| -> Option<u32> {
        let m = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        m.iter()
            .position(|x| s.eq_ignore_ascii_case(x))
            .map(|i| i as u32 + 1)
    };
    let dow_names = |s: &str| -> Option<u32> {
        let d = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        d.iter()
            .position(|x| s.eq_ignore_ascii_case(x))
            .map(|i| i as u32)
    };
    let minutes = component(f[0], 0, 59, "-", "minute", &no_names)?;
    let hours = component(f[1], 0, 23, "-", "hour", &no_names)? as u32;
    let days = component(f[2], 1, 31, "-", "day of month", &no_names)? as u32;
    let months = component(f[3], 1, 12, "-", "month", &month_names)? as u16;
    let cron_dow = component(f[4], 0, 7, "-", "day of week", &dow_names)?;
    // cron 0 and 7 = Sunday → our bit 6; 1 = Monday → bit 0.
    let mut weekdays = 0u8;
    for c in 0..=7u32 {
        if cron_dow & (1 << c) != 0 {
            weekdays |= 1 << ((c + 6) % 7);
        }
    }
    let base = Spec {
        weekdays: ALL_WEEKDAYS,
        months,
        days: ALL_DAYS,
        hours,
        minutes,
        seconds: 1,
    };
    let dom_any = f[2] == "*";
    let dow_any = f[4] == "*";
    Ok(match (dom_any, dow_any) {
        (true, true) => vec![base],
        (false, true) => vec![Spec { days, ..base }],
        (true, false) => vec![Spec { weekdays, ..base }],
        // Both restricted: cron runs when either matches.
        (false, false) => vec![
            Spec {
                days,
                ..base.clone()
            },
            Spec { weekdays, ..base },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn next(s: &str, t: OffsetDateTime) -> OffsetDateTime {
        Schedule::parse(s).unwrap().next_after(t).unwrap()
    }

    #[test]
    fn shorthands() {
        // 2026-11-22 is a Sunday.
        let t = datetime!(2026-11-22 10:30:00 UTC);
        assert_eq!(next("hourly", t), datetime!(2026-11-22 11:00:00 UTC));
        assert_eq!(next("daily", t), datetime!(2026-11-23 00:00:00 UTC));
        assert_eq!(next("weekly", t), datetime!(2026-11-23 00:00:00 UTC));
        assert_eq!(next("monthly", t), datetime!(2026-12-01 00:00:00 UTC));
        assert_eq!(next("yearly", t), datetime!(2027-01-01 00:00:00 UTC));
        assert_eq!(next("minutely", t), datetime!(2026-11-22 10:31:00 UTC));
    }

    #[test]
    fn calendar_forms() {
        let t = datetime!(2026-11-22 10:30:00 UTC); // Sunday
        assert_eq!(
            next("*-*-* 02:00:00", t),
            datetime!(2026-11-23 02:00:00 UTC)
        );
        assert_eq!(next("*-*-* 11:00", t), datetime!(2026-11-22 11:00:00 UTC));
        assert_eq!(
            next("Sun *-*-* 03:00:00", t),
            datetime!(2026-11-29 03:00:00 UTC)
        );
        assert_eq!(
            next("Sun *-*-* 12:00:00", t),
            datetime!(2026-11-22 12:00:00 UTC)
        );
        assert_eq!(
            next("Mon..Fri 01:30", t),
            datetime!(2026-11-23 01:30:00 UTC)
        );
        assert_eq!(
            next("Mon..Fri 01:30", datetime!(2026-11-27 02:00:00 UTC)),
            datetime!(2026-11-30 01:30:00 UTC)
        );
        assert_eq!(
            next("Sat,Sun 04:00", datetime!(2026-11-23 00:00:00 UTC)),
            datetime!(2026-11-28 04:00:00 UTC)
        );
        assert_eq!(
            next("*-*-01 00:00:00", t),
            datetime!(2026-12-01 00:00:00 UTC)
        );
        assert_eq!(next("*:0/15", t), datetime!(2026-11-22 10:45:00 UTC));
        assert_eq!(
            next("*-*-* 02:00:00 UTC", t),
            datetime!(2026-11-23 02:00:00 UTC)
        );
        assert_eq!(next("02-29 00:00", t), datetime!(2028-02-29 00:00:00 UTC));
        // Exactly on a run: the next one is strictly after.
        assert_eq!(
            next("daily", datetime!(2026-11-23 00:00:00 UTC)),
            datetime!(2026-11-24 00:00:00 UTC)
        );
    }

    #[test]
    fn cron_forms() {
        let t = datetime!(2026-11-22 10:30:00 UTC); // Sunday
        assert_eq!(next("30 1 * * 1-5", t), datetime!(2026-11-23 01:30:00 UTC));
        assert_eq!(next("0 */6 * * *", t), datetime!(2026-11-22 12:00:00 UTC));
        assert_eq!(next("0 3 * * 0", t), datetime!(2026-11-29 03:00:00 UTC));
        assert_eq!(next("0 3 * * 7", t), datetime!(2026-11-29 03:00:00 UTC));
        assert_eq!(next("@daily", t), datetime!(2026-11-23 00:00:00 UTC));
        // Day of month OR weekday: the 1st, or any Monday.
        assert_eq!(next("0 0 1 * mon", t), datetime!(2026-11-23 00:00:00 UTC));
        assert_eq!(
            next("0 0 1 * mon", datetime!(2026-11-30 00:00:00 UTC)),
            datetime!(2026-12-01 00:00:00 UTC)
        );
        let s = Schedule::parse("0 0 1 * mon").unwrap();
        assert_eq!(
            s.on_calendar(),
            vec![
                "*-*-01 00:00:00 UTC".to_string(),
                "Mon *-*-* 00:00:00 UTC".to_string()
            ]
        );
        assert_eq!(
            Schedule::parse("Mon..Fri 01:30").unwrap().on_calendar(),
            vec!["Mon,Tue,Wed,Thu,Fri *-*-* 01:30:00 UTC".to_string()]
        );
        assert_eq!(
            Schedule::parse("hourly").unwrap().on_calendar(),
            vec!["*-*-* *:00:00 UTC".to_string()]
        );
    }

    #[test]
    fn invalid_schedules_have_clear_errors() {
        for (s, want) in [
            ("", "empty"),
            ("every day", "not a weekday"),
            ("Mon 01:00 02:00", "unexpected"),
            ("*-*-* 25:00", "hour 25 is out of range"),
            ("Mon..Fry 01:30", "\"Fry\" is not a weekday"),
            ("Fri..Mon 01:30", "backwards"),
            ("2027-*-* 01:00", "specific year"),
            ("*-02-30 00:00", "never fires"),
            ("*-*-* 02:00 Europe/Berlin", "time zone"),
            ("61 * * * *", "minute 61 is out of range"),
            ("@often", "cron shorthand"),
            ("*-*-* 01:00:00.5", "fractional"),
        ] {
            let err = Schedule::parse(s).unwrap_err();
            assert!(err.contains(want), "{s:?}: {err}");
        }
    }

    #[test]
    fn intervals_and_staleness() {
        let h = 3600;
        assert_eq!(
            Schedule::parse("daily").unwrap().longest_interval(),
            Duration::from_secs(24 * h)
        );
        assert_eq!(
            Schedule::parse("daily").unwrap().default_stale_after(),
            Duration::from_secs(26 * h)
        );
        assert_eq!(
            Schedule::parse("hourly").unwrap().default_stale_after(),
            Duration::from_secs(2 * h)
        );
        assert_eq!(
            Schedule::parse("Mon..Fri 01:30")
                .unwrap()
                .longest_interval(),
            Duration::from_secs(72 * h)
        );
        assert_eq!(
            Schedule::parse("weekly").unwrap().longest_interval(),
            Duration::from_secs(7 * 24 * h)
        );
    }

    #[test]
    fn cron_output() {
        let s = Schedule::parse("Mon..Fri 01:30").unwrap();
        assert_eq!(s.cron_fields(), vec![("30 1 * * 1-5".to_string(), None)]);
        let s = Schedule::parse("Sun *-*-* 03:00:00").unwrap();
        assert_eq!(s.cron_fields()[0].0, "0 3 * * 0");
        let s = Schedule::parse("hourly").unwrap();
        assert_eq!(s.cron_fields()[0].0, "0 * * * *");
        let s = Schedule::parse("*:0/15").unwrap();
        assert_eq!(s.cron_fields()[0].0, "0,15,30,45 * * * *");
        assert_eq!(
            Schedule::parse("*-*-* 02:00:30").unwrap().cron_fields()[0]
                .1
                .as_deref(),
            Some("cron has no seconds; runs at second 0")
        );
    }
}
