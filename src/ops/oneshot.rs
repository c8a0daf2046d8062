//! One-shot backups: `backup SOURCE… --at TIME` records a pending one-shot
//! in the catalog; `schedule run-due` (run every minute by the
//! `vaultctl-oneshot.timer` unit or the crontab line of `schedule show
//! --cron`) takes the due ones and runs them. A one-shot that could not run
//! when due (the timer was not installed, the host was off) for longer than
//! [`MISSED_AFTER`] is not run late: it is marked `missed` and raises a
//! `one_shot_missed` alert, so the operator decides.

use std::time::Duration;

use anyhow::Result;
use time::OffsetDateTime;

use super::alerts::{kind, AlertKey};
use crate::catalog::{Catalog, OneShot, OneShotNew};
use crate::config::Config;
use crate::error::{ExitStatus, Failure};
use crate::severity::Severity;

/// A one-shot still pending this long after its due time was missed.
pub const MISSED_AFTER: Duration = Duration::from_secs(3600);

/// Parses `--at` ([`crate::clock::parse_arg`]: RFC 3339, a UTC date and
/// time, or a delay from now such as `2h`). The time must be in the future.
pub fn parse_at(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime> {
    let t = crate::clock::parse_arg(s, now, crate::clock::Age::FromNow);
    let Some(t) = t else {
        return Err(Failure::new(ExitStatus::Usage, format!("--at \"{s}\" is not a time."))
            .with_remedy("Use RFC 3339 (2026-12-01T02:00:00Z), a UTC date and time (2026-12-01 02:00) or a delay from now (2h, 30m).")
            .into());
    };
    if t <= now {
        return Err(Failure::new(
            ExitStatus::Usage,
            format!(
                "--at {} is not in the future (now is {}).",
                crate::clock::format(t),
                crate::clock::format(now)
            ),
        )
        .with_remedy("Give a later time, or run the backup now without --at.")
        .into());
    }
    Ok(t)
}

/// Records a pending one-shot; returns it.
pub fn add(catalog: &Catalog, new: &OneShotNew<'_>) -> Result<OneShot> {
    let id = catalog.one_shot_add(new)?;
    get(catalog, id)
}

fn get(catalog: &Catalog, id: i64) -> Result<OneShot> {
    catalog
        .one_shots(None)?
        .into_iter()
        .find(|o| o.id == id)
        .ok_or_else(|| {
            Failure::new(
                ExitStatus::Usage,
                format!("there is no one-shot backup {id}."),
            )
            .with_remedy("`vaultctl schedule show` lists the pending ones.")
            .into()
        })
}

/// Cancels a pending one-shot.
pub fn cancel(catalog: &Catalog, id: i64, now: &str) -> Result<OneShot> {
    let o = get(catalog, id)?;
    if !catalog.one_shot_transition(id, "pending", "cancelled", now)? {
        return Err(Failure::new(
            ExitStatus::Usage,
            format!(
                "one-shot backup {id} is {}, not pending: there is nothing to cancel.",
                o.status
            ),
        )
        .with_remedy("`vaultctl schedule show` lists the pending ones.")
        .into());
    }
    get(catalog, id)
}

/// What `run-due` found: the one-shots it took (now `running`) and the
/// ones it marked missed.
#[derive(Debug, Default)]
pub struct Due {
    pub run: Vec<OneShot>,
    pub missed: Vec<OneShot>,
}

/// Takes the due one-shots: those due within [`MISSED_AFTER`] become
/// `running` (each taken by one run only), older ones `missed` with an alert.
pub fn take_due(config: &Config, catalog: &Catalog, now: OffsetDateTime) -> Result<Due> {
    let now_s = crate::clock::format(now);
    let mut due = Due::default();
    for o in catalog.one_shots(Some("pending"))? {
        let Some(at) = crate::clock::parse(&o.due_at) else {
            continue;
        };
        if at > now {
            continue;
        }
        if now - at > MISSED_AFTER {
            if catalog.one_shot_transition(o.id, "pending", "missed", &now_s)? {
                super::alert(
                    config,
                    catalog,
                    AlertKey::new(kind::ONE_SHOT_MISSED, &o.sources.join(","), ""),
                    Severity::Warning,
                    &format!(
                        "one-shot backup {} of {} was due at {} and did not run (is `vaultctl schedule run-due` scheduled? `vaultctl schedule install` writes its timer); it was not run late: schedule it again with `vaultctl backup {} --at TIME` or run it now",
                        o.id,
                        o.sources.join(", "),
                        o.due_at,
                        o.sources.join(" ")
                    ),
                );
                due.missed.push(o);
            }
        } else if catalog.one_shot_transition(o.id, "pending", "running", &now_s)? {
            due.run.push(o);
        }
    }
    Ok(due)
}

/// A one-shot's run recorded: the backups of its sources completed since
/// `started` (when its run began), and whether it failed and why.
pub fn record_run(
    catalog: &Catalog,
    o: &OneShot,
    started: &str,
    error: Option<&str>,
) -> Result<()> {
    let mut made = Vec::new();
    for source in &o.sources {
        let filter = crate::catalog::BackupFilter {
            source: Some(source.clone()),
            status: Some("completed".into()),
            since: Some(started.to_string()),
            ..Default::default()
        };
        made.extend(catalog.list(&filter)?.into_iter().map(|b| b.id));
    }
    let finished = crate::clock::now_rfc3339();
    catalog.one_shot_finished(o.id, error.is_none(), &made, error, &finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_accepts_rfc3339_utc_date_times_and_delays() {
        let now = crate::clock::parse("2026-11-30T12:00:00Z").unwrap();
        let f = |s| crate::clock::format(parse_at(s, now).unwrap());
        assert_eq!(f("2026-12-01T02:00:00Z"), "2026-12-01T02:00:00.000Z");
        assert_eq!(f("2026-12-01 02:00"), "2026-12-01T02:00:00.000Z");
        assert_eq!(f("2026-12-01T02:00:30"), "2026-12-01T02:00:30.000Z");
        assert_eq!(f("2h"), "2026-11-30T14:00:00.000Z");
        assert!(parse_at("2026-11-30T11:00:00Z", now).is_err());
        assert!(parse_at("tomorrow", now).is_err());
    }
}
