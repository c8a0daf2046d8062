//! Health: staleness of sources, the status snapshot and the health score.
//!
//! Health score (0–100), also in the README:
//! `100 − 30 × (1 − success rate of backups finished in the last 7 days)
//! − 25 per active critical alert − 10 per active warning alert − 2 per
//! active info alert`, where acknowledged alerts weigh half; clamped to 0–100.
//! With no backups in the window the success rate counts as 100%. Stale
//! sources count through their `source_stale` alert.
//!
//! The monitoring state (`status --check`) reflects only the present: it is
//! critical when an active critical alert exists, warning when an active
//! warning alert exists or a source is stale, otherwise ok.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use time::OffsetDateTime;

use super::alerts::{self, kind, Alert, AlertKey};
use crate::catalog::{BackupFilter, BackupRow, Catalog};
use crate::config::{Config, Source};
use crate::error::CheckStatus;
use crate::humanize;
use crate::severity::Severity;

/// Per-source health.
#[derive(Debug, Clone, Serialize)]
pub struct SourceHealth {
    pub name: String,
    pub kind: Option<String>,
    pub configured: bool,
    pub schedule: Option<String>,
    /// Seconds without a successful backup before the source is stale.
    pub stale_after_secs: Option<u64>,
    pub last_success: Option<crate::clock::Timestamp>,
    pub last_status: Option<String>,
    pub next_run: Option<String>,
    pub stale: bool,
    /// Seconds since the last success (or since the source was first seen).
    pub age_secs: Option<u64>,
}

/// The threshold after which a source without a success is stale.
pub fn stale_threshold(s: &Source) -> Option<Duration> {
    s.stale_after
        .or_else(|| s.schedule.as_ref().map(|sch| sch.default_stale_after()))
}

fn secs_between(a: OffsetDateTime, b: OffsetDateTime) -> u64 {
    (b - a).whole_seconds().max(0) as u64
}

/// Evaluates every configured source at `now`, raises `source_stale` alerts
/// for stale ones (warning; critical beyond twice the threshold) and
/// resolves them for fresh ones, notifying as configured.
pub fn check_sources(
    config: &Config,
    catalog: &Catalog,
    now: OffsetDateTime,
) -> Result<Vec<SourceHealth>> {
    let mut out = Vec::new();
    for s in &config.sources {
        let latest = catalog.latest_completed(&s.name)?;
        let last_any = catalog.list(&BackupFilter {
            source: Some(s.name.clone()),
            limit: Some(1),
            ..Default::default()
        })?;
        let last_success = latest.as_ref().map(|b| {
            b.finished_at
                .clone()
                .unwrap_or_else(|| b.started_at.clone())
        });
        let threshold = stale_threshold(s);
        let mut h = SourceHealth {
            name: s.name.clone(),
            kind: Some(s.spec.kind().to_string()),
            configured: true,
            schedule: s.schedule.as_ref().map(|x| x.text.clone()),
            stale_after_secs: threshold.map(|d| d.as_secs()),
            last_success: last_success.clone(),
            last_status: last_any.first().map(|b| b.status.clone()),
            next_run: s
                .schedule
                .as_ref()
                .and_then(|x| x.next_after(now))
                .map(crate::clock::format),
            stale: false,
            age_secs: None,
        };
        if let Some(threshold) = threshold {
            let fresh = Periodic {
                key: AlertKey::new(kind::STALE, &s.name, ""),
                first_seen_meta: format!("ops.source_first_seen.{}", s.name),
                last_success: last_success.as_deref(),
                threshold,
                resolved_by: "vaultctl (fresh backup)",
            }
            .evaluate(config, catalog, now, |age| match &last_success {
                Some(t) => format!(
                    "source '{}' has had no successful backup for {} (last success {t}; stale after {}). Check the backup's schedule and logs, then run `vaultctl backup {}`.",
                    s.name,
                    crate::clock::human(age),
                    crate::clock::human(threshold.as_secs()),
                    s.name
                ),
                None => format!(
                    "source '{}' has never had a successful backup in {} since it was configured (stale after {}). Check the backup's schedule and logs, then run `vaultctl backup {}`.",
                    s.name,
                    crate::clock::human(age),
                    crate::clock::human(threshold.as_secs()),
                    s.name
                ),
            })?;
            if let Some((age, stale)) = fresh {
                h.age_secs = Some(age);
                h.stale = stale;
            }
        }
        out.push(h);
    }
    out.extend(unconfigured_sources(config, catalog)?);
    Ok(out)
}

/// Sources known only from the catalog (ad-hoc backups, removed sources).
fn unconfigured_sources(config: &Config, catalog: &Catalog) -> Result<Vec<SourceHealth>> {
    let mut out = Vec::new();
    for name in catalog.backup_sources()? {
        if config.sources.iter().any(|s| s.name == name) {
            continue;
        }
        let latest = catalog.latest_completed(&name)?;
        let last_any = catalog.list(&BackupFilter {
            source: Some(name.clone()),
            limit: Some(1),
            ..Default::default()
        })?;
        out.push(SourceHealth {
            kind: last_any.first().map(|b| b.kind.clone()),
            configured: false,
            schedule: None,
            stale_after_secs: None,
            last_success: latest.map(|b| b.finished_at.unwrap_or(b.started_at)),
            last_status: last_any.first().map(|b| b.status.clone()),
            next_run: None,
            stale: false,
            age_secs: None,
            name,
        });
    }
    Ok(out)
}

/// A job that must succeed periodically (a backup, a verify, a drill).
struct Periodic<'a> {
    /// The staleness alert.
    key: AlertKey,
    /// Meta key remembering when the job was first seen configured, the
    /// reference while it has never succeeded (a new job is not stale at once).
    first_seen_meta: String,
    last_success: Option<&'a str>,
    threshold: Duration,
    resolved_by: &'a str,
}

impl Periodic<'_> {
    /// Age of the last success (or of the first sighting) and whether that is
    /// beyond the threshold. Raises the alert when stale (warning; critical
    /// beyond twice the threshold; `message` gets the age), resolves it when
    /// fresh. None when no reference time can be read.
    fn evaluate(
        &self,
        config: &Config,
        catalog: &Catalog,
        now: OffsetDateTime,
        message: impl FnOnce(u64) -> String,
    ) -> Result<Option<(u64, bool)>> {
        let reference = match self.last_success {
            Some(t) => crate::clock::parse(t),
            None => match catalog.meta(&self.first_seen_meta)? {
                Some(t) => crate::clock::parse(&t),
                None => {
                    catalog.set_meta(&self.first_seen_meta, &crate::clock::format(now))?;
                    Some(now)
                }
            },
        };
        let Some(reference) = reference else {
            return Ok(None);
        };
        let age = secs_between(reference, now);
        let stale = age > self.threshold.as_secs();
        if stale {
            let severity = if age > 2 * self.threshold.as_secs() {
                Severity::Critical
            } else {
                Severity::Warning
            };
            super::alert(config, catalog, self.key.clone(), severity, &message(age));
        } else {
            super::clear(config, catalog, &self.key, self.resolved_by);
        }
        Ok(Some((age, stale)))
    }
}

/// The staleness alert's text for a periodic check (a verify, a drill)
/// with no success within `threshold`: what is missing, since when, and
/// `then` (the consequence and what to do).
fn overdue(
    what: &str,
    age: u64,
    last_success: Option<&str>,
    configured_by: &str,
    threshold: Duration,
    then: &str,
) -> String {
    format!(
        "no successful {what} within {} (the last one {}; max_age {}){then}",
        crate::clock::human(age),
        match last_success {
            Some(t) => format!("finished {t}"),
            None => format!("never ran since {configured_by} was configured"),
        },
        crate::clock::human(threshold.as_secs()),
    )
}

/// The last verify of a target, its age and its sample coverage.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyHealth {
    pub target: String,
    /// Verified on the `[verify]` schedule (its staleness is checked).
    pub configured: bool,
    pub schedule: Option<String>,
    pub mode: Option<String>,
    pub max_age_secs: Option<u64>,
    pub last_success: Option<String>,
    /// `ok` or `failed`: how the last verify ended.
    pub last_result: Option<String>,
    pub last_mode: Option<String>,
    pub next_run: Option<String>,
    /// Seconds since the last clean verify (or since first configured).
    pub age_secs: Option<u64>,
    pub stale: bool,
    /// Packs read intact within `[verify] window` (default 30d).
    pub coverage_window_secs: u64,
    pub packs_read_in_window: u64,
    /// Packs the target held at its last verify.
    pub packs_known: u64,
    /// packs_read_in_window / packs_known; null before a verify.
    pub coverage: Option<f64>,
}

/// The last DR drill of a source and its age.
#[derive(Debug, Clone, Serialize)]
pub struct DrillHealth {
    pub source: String,
    /// Has `[source.drill]` (its staleness is checked when it has a max_age or schedule).
    pub configured: bool,
    pub schedule: Option<String>,
    pub max_age_secs: Option<u64>,
    pub last_success: Option<String>,
    /// `succeeded` or `failed`.
    pub last_outcome: Option<String>,
    /// RTO of the last successful drill.
    pub last_rto_ms: Option<u64>,
    pub next_run: Option<String>,
    pub age_secs: Option<u64>,
    pub stale: bool,
}

/// Evaluates the verify of every target at `now`: raises `verify_stale`
/// (per target in `[verify] targets`, once `max_age` is known) and resolves
/// it after a clean verify. Targets without a schedule are listed too.
pub fn check_verifies(
    config: &Config,
    catalog: &Catalog,
    now: OffsetDateTime,
) -> Result<Vec<VerifyHealth>> {
    let plan = config.verify.as_ref();
    let window = plan
        .map(|v| v.window)
        .unwrap_or(crate::config::DEFAULT_VERIFY_WINDOW);
    let mut names: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    for t in catalog.verify_targets()? {
        if !names.contains(&t) {
            names.push(t);
        }
    }
    let mut out = Vec::new();
    for name in names {
        let configured = plan.is_some_and(|v| v.targets.contains(&name));
        let schedule = plan
            .filter(|_| configured)
            .and_then(|v| v.schedule.as_ref());
        let threshold = plan.filter(|_| configured).and_then(|v| v.max_age());
        let last = catalog.last_verify(&name, false)?;
        let last_ok = catalog.last_verify(&name, true)?.map(|(t, _, _)| t);
        let since = crate::clock::format(now - window);
        let (read, known) = catalog.pack_coverage(&name, &since)?;
        let mut h = VerifyHealth {
            configured,
            schedule: schedule.map(|s| s.text.clone()),
            mode: plan
                .filter(|_| configured)
                .map(|v| crate::repo::verify::mode_name(v.mode)),
            max_age_secs: threshold.map(|d| d.as_secs()),
            last_success: last_ok.clone(),
            last_result: last
                .as_ref()
                .map(|(_, ok, _)| if *ok { "ok" } else { "failed" }.to_string()),
            last_mode: last.map(|(_, _, m)| m),
            next_run: schedule
                .and_then(|s| s.next_after(now))
                .map(crate::clock::format),
            age_secs: last_ok
                .as_deref()
                .and_then(crate::clock::parse)
                .map(|t| secs_between(t, now)),
            stale: false,
            coverage_window_secs: window.as_secs(),
            packs_read_in_window: read,
            packs_known: known,
            coverage: (known > 0).then(|| read as f64 / known as f64),
            target: name.clone(),
        };
        if let Some(threshold) = threshold {
            let fresh = Periodic {
                key: AlertKey::new(kind::VERIFY_STALE, "", &name),
                first_seen_meta: format!("ops.verify_first_seen.{name}"),
                last_success: last_ok.as_deref(),
                threshold,
                resolved_by: "vaultctl (clean verify)",
            }
            .evaluate(config, catalog, now, |age| {
                overdue(
                    &format!("verify of target '{name}'"),
                    age,
                    last_ok.as_deref(),
                    "[verify]",
                    threshold,
                    &format!(". Check the vaultctl-verify-{name} timer and its logs, then run `vaultctl verify --target {name}`."),
                )
            })?;
            if let Some((age, stale)) = fresh {
                h.age_secs = Some(age);
                h.stale = stale;
            }
        }
        out.push(h);
    }
    Ok(out)
}

/// Evaluates the DR drills of every source with `[source.drill]` (and every
/// source drilled before) at `now`: raises `drill_stale` once `max_age` is
/// known and exceeded, resolves it after a successful drill.
pub fn check_drills(
    config: &Config,
    catalog: &Catalog,
    now: OffsetDateTime,
) -> Result<Vec<DrillHealth>> {
    let mut names: Vec<String> = config
        .sources
        .iter()
        .filter(|s| s.drill.is_some())
        .map(|s| s.name.clone())
        .collect();
    for s in catalog.drill_sources()? {
        if !names.contains(&s) {
            names.push(s);
        }
    }
    let mut out = Vec::new();
    for name in names {
        let plan = config.drill_plan(&name);
        let threshold = plan.and_then(|d| d.max_age());
        let last = catalog.last_drill(&name, false)?;
        let last_ok = catalog.last_drill(&name, true)?;
        let last_success = last_ok.as_ref().map(|d| {
            d.finished_at
                .clone()
                .unwrap_or_else(|| d.started_at.clone())
        });
        let schedule = plan.and_then(|d| d.schedule.as_ref());
        let mut h = DrillHealth {
            configured: plan.is_some(),
            schedule: schedule.map(|s| s.text.clone()),
            max_age_secs: threshold.map(|d| d.as_secs()),
            last_success: last_success.clone().map(String::from),
            last_outcome: last.map(|d| d.outcome),
            last_rto_ms: last_ok.and_then(|d| d.rto_ms),
            next_run: schedule
                .and_then(|s| s.next_after(now))
                .map(crate::clock::format),
            age_secs: last_success
                .as_deref()
                .and_then(crate::clock::parse)
                .map(|t| secs_between(t, now)),
            stale: false,
            source: name.clone(),
        };
        if let Some(threshold) = threshold {
            let fresh = Periodic {
                key: AlertKey::new(kind::DRILL_STALE, &name, ""),
                first_seen_meta: format!("ops.drill_first_seen.{name}"),
                last_success: last_success.as_deref(),
                threshold,
                resolved_by: "vaultctl (successful drill)",
            }
            .evaluate(config, catalog, now, |age| {
                overdue(
                    &format!("DR drill of source '{name}'"),
                    age,
                    last_success.as_deref(),
                    "[source.drill]",
                    threshold,
                    &format!(": nobody knows whether its latest backup restores. Check the vaultctl-drill-{name} timer and its logs, then run `vaultctl dr drill --source {name}`."),
                )
            })?;
            if let Some((age, stale)) = fresh {
                h.age_secs = Some(age);
                h.stale = stale;
            }
        }
        out.push(h);
    }
    Ok(out)
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
    pub running: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetUsage {
    pub name: String,
    pub configured: bool,
    /// Completed backups the catalog knows this target holds.
    pub backups: u64,
    pub packs: u64,
    /// Bytes of blobs in packs on this target (what the catalog indexed).
    pub stored_bytes: u64,
}

/// `ok`, `warning` or `critical` (exit 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Warning,
    Critical,
}

impl State {
    /// `status --check`'s exit status (Nagios convention).
    pub fn check_status(self) -> CheckStatus {
        match self {
            State::Ok => CheckStatus::Ok,
            State::Warning => CheckStatus::Warning,
            State::Critical => CheckStatus::Critical,
        }
    }

    /// [`State::check_status`]'s code (0, 1, 2): `status --check`'s exit,
    /// its JSON `exit` and the `vaultctl_health_state` metric.
    pub fn exit_code(self) -> i32 {
        self.check_status().code()
    }

    pub fn label(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
        }
    }
}

/// The dashboard (`status --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub generated_at: String,
    pub health_score: u8,
    pub state: State,
    pub backups: Counts,
    /// Completed / (completed + failed) over the last 7 days; null without any.
    pub success_rate_7d: Option<f64>,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    /// Logical bytes of completed backups / new bytes they stored.
    pub dedup_ratio: Option<f64>,
    pub targets: Vec<TargetUsage>,
    pub sources: Vec<SourceHealth>,
    pub recent_backups: Vec<BackupRow>,
    pub open_alerts: Vec<Alert>,
    /// The last DR drill, its RTO and the trend; null before the first.
    pub dr: Option<DrStatus>,
    /// The last verify of every target, its age and sample coverage.
    pub verify: Vec<VerifyHealth>,
    /// The last DR drill of every drilled (or drill-configured) source.
    pub drills: Vec<DrillHealth>,
    /// Sandbox clusters a killed tenant point-in-time restore left behind.
    pub stale_sandboxes: Vec<crate::engine::postgres::sandbox::Stale>,
}

impl Status {
    /// The last verify per target and drill per source, for the check line:
    /// `verify local 3h ago, drill db 2d ago`.
    fn check_ages(&self) -> String {
        let age = |a: Option<u64>| {
            a.map(|a| format!("{} ago", crate::clock::human(a)))
                .unwrap_or_else(|| "never".into())
        };
        self.verify
            .iter()
            .filter(|v| v.configured || v.last_success.is_some())
            .map(|v| {
                format!(
                    "verify {} {}",
                    v.target,
                    age(v.last_success.as_ref().and(v.age_secs))
                )
            })
            .chain(self.drills.iter().map(|d| {
                format!(
                    "drill {} {}",
                    d.source,
                    age(d.last_success.as_ref().and(d.age_secs))
                )
            }))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The monitoring line of `status --check` (Nagios plugin format, with
    /// perfdata): `VAULTCTL CRITICAL - …; backup_failed source=db: … | health=75;;;0;100 …`
    pub fn check_line(&self) -> String {
        let crit = self
            .open_alerts
            .iter()
            .filter(|a| a.severity == Severity::Critical)
            .count();
        let warn = self
            .open_alerts
            .iter()
            .filter(|a| a.severity == Severity::Warning)
            .count();
        let stale: Vec<&str> = self
            .sources
            .iter()
            .filter(|s| s.stale)
            .map(|s| s.name.as_str())
            .collect();
        let stale_checks: Vec<String> = self
            .verify
            .iter()
            .filter(|v| v.stale)
            .map(|v| format!("verify {}", v.target))
            .chain(
                self.drills
                    .iter()
                    .filter(|d| d.stale)
                    .map(|d| format!("drill {}", d.source)),
            )
            .collect();
        let ages = self.check_ages();
        let summary = match self.state {
            State::Ok => format!(
                "{} source(s) fresh, no open alerts{}",
                self.sources
                    .iter()
                    .filter(|s| s.stale_after_secs.is_some())
                    .count(),
                if ages.is_empty() {
                    String::new()
                } else {
                    format!("; {ages}")
                }
            ),
            _ => {
                let mut parts = vec![format!("{crit} critical, {warn} warning alert(s)")];
                if !stale.is_empty() {
                    parts.push(format!("stale: {}", stale.join(",")));
                }
                if !stale_checks.is_empty() {
                    parts.push(format!("overdue: {}", stale_checks.join(",")));
                }
                if !ages.is_empty() {
                    parts.push(ages);
                }
                if let Some(a) = self
                    .open_alerts
                    .iter()
                    .find(|a| a.severity >= Severity::Warning)
                {
                    parts.push(format!(
                        "{}: {}",
                        a.subject(),
                        a.message.chars().take(160).collect::<String>()
                    ));
                }
                parts.join("; ")
            }
        };
        format!(
            "VAULTCTL {} - health {}/100; {} | health={};;;0;100 critical={crit} warning={warn} stale={} overdue_checks={}",
            self.state.label(),
            self.health_score,
            summary,
            self.health_score,
            stale.len(),
            stale_checks.len()
        )
    }
}

impl Status {
    /// The headline of the dashboard: health, backup counts, the 7-day
    /// success rate and deduplication.
    pub fn headline(&self) -> String {
        let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        format!(
            "health {}/100 ({})   backups: {} total, {} completed, {} failed, {} running   success (7d): {}   dedup: {}",
            self.health_score,
            self.state.label().to_ascii_lowercase(),
            self.backups.total,
            self.backups.completed,
            self.backups.failed,
            self.backups.running,
            dash(self.success_rate_7d.map(|r| format!("{:.0}%", r * 100.0))),
            dash(self.dedup_ratio.map(|r| format!(
                "{r:.2}x ({} stored for {})",
                humanize::bytes(self.stored_bytes),
                humanize::bytes(self.logical_bytes)
            ))),
        )
    }

    /// The last DR drill of any source, its RTO and the trend (or how to
    /// start drilling).
    pub fn dr_line(&self) -> String {
        let Some(d) = &self.dr else {
            return "DR drills: none yet (schedule `vaultctl dr drill --source S` weekly)".into();
        };
        let recent: Vec<String> = d
            .recent_rto_ms
            .iter()
            .map(|ms| humanize::duration_ms(*ms))
            .collect();
        format!(
            "last DR drill: #{} of '{}' {} {} ({}), RTO {}; recent RTOs {} — trend: {}",
            d.last_drill_id,
            d.last_drill_source,
            d.last_drill_outcome.to_uppercase(),
            d.last_drill_at,
            d.last_drill_backup.as_deref().unwrap_or("-"),
            d.last_drill_rto_ms
                .map(humanize::duration_ms)
                .unwrap_or_else(|| "-".into()),
            if recent.is_empty() {
                "-".to_string()
            } else {
                recent.join(", ")
            },
            d.trend
        )
    }
}

impl TargetUsage {
    /// The target's name, marked when the config no longer has it.
    pub fn label(&self) -> String {
        let note = if self.configured {
            ""
        } else {
            " (not configured)"
        };
        format!("{}{note}", self.name)
    }
}

impl VerifyHealth {
    /// `92% of 40 packs read`: the sample coverage, once a verify ran.
    pub fn coverage_text(&self) -> Option<String> {
        self.coverage
            .map(|c| format!("{:.0}% of {} packs read", c * 100.0, self.packs_known))
    }
}

/// A check's state for people: `STALE (26h without success)` when it is
/// overdue, `ok` when it has a deadline and meets it, `-` without one.
pub fn freshness(stale: bool, age: Option<u64>, max_age: Option<u64>) -> String {
    match (stale, max_age) {
        (true, _) => format!(
            "STALE ({} without success)",
            age.map(crate::clock::human).unwrap_or_default()
        ),
        (false, Some(_)) => "ok".into(),
        (false, None) => "-".into(),
    }
}

/// When something last succeeded and how long ago: `T (3h ago)`, or `never`.
pub fn ago(at: Option<&str>, age: Option<u64>) -> String {
    match (at, age) {
        (Some(t), Some(a)) => format!("{t} ({} ago)", crate::clock::human(a)),
        (Some(t), None) => t.to_string(),
        (None, _) => "never".into(),
    }
}

/// DR drills at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct DrStatus {
    pub last_drill_id: i64,
    pub last_drill_source: String,
    pub last_drill_backup: Option<String>,
    pub last_drill_at: String,
    pub last_drill_outcome: String,
    /// RTO of the last drill (null when it failed).
    pub last_drill_rto_ms: Option<u64>,
    /// When a drill last succeeded.
    pub last_success_at: Option<String>,
    /// RTOs of the last successful drills, newest first (at most 5).
    pub recent_rto_ms: Vec<u64>,
    /// `faster`, `slower` or `steady` (newest successful RTO against the
    /// mean of the previous ones, ±10 %), or `-` with fewer than two.
    pub trend: String,
}

/// The last drill and the RTO trend.
pub fn dr_status(catalog: &Catalog) -> Result<Option<DrStatus>> {
    let drills = catalog.dr_runs(Some("drill"), Some(50))?;
    let Some(last) = drills.first() else {
        return Ok(None);
    };
    let ok: Vec<&crate::catalog::DrRunRow> = drills
        .iter()
        .filter(|d| d.outcome == "succeeded" && d.rto_ms.is_some())
        .collect();
    let recent: Vec<u64> = ok.iter().take(5).filter_map(|d| d.rto_ms).collect();
    let trend = if recent.len() < 2 {
        "-".to_string()
    } else {
        let prev = &recent[1..];
        let mean = prev.iter().sum::<u64>() as f64 / prev.len() as f64;
        let now = recent[0] as f64;
        if now < mean * 0.9 {
            "faster".into()
        } else if now > mean * 1.1 {
            "slower".into()
        } else {
            "steady".into()
        }
    };
    Ok(Some(DrStatus {
        last_drill_id: last.id,
        last_drill_source: last.source.clone(),
        last_drill_backup: last.backup_id.clone(),
        last_drill_at: last.started_at.to_string(),
        last_drill_outcome: last.outcome.clone(),
        last_drill_rto_ms: last.rto_ms,
        last_success_at: ok.first().map(|d| d.started_at.to_string()),
        recent_rto_ms: recent,
        trend,
    }))
}

/// Computes the dashboard at `now`; checks staleness first (raising and
/// resolving `source_stale` alerts).
pub fn status(config: &Config, catalog: &Catalog, now: OffsetDateTime) -> Result<Status> {
    let sources = check_sources(config, catalog, now)?;
    let verify = check_verifies(config, catalog, now)?;
    let drills = check_drills(config, catalog, now)?;
    let mut counts = Counts::default();
    for (s, n) in catalog.count_by_status()? {
        counts.total += n;
        match s.as_str() {
            "completed" => counts.completed = n,
            "failed" => counts.failed = n,
            "running" => counts.running = n,
            _ => {}
        }
    }
    let window = crate::clock::format(now - time::Duration::days(7));
    let (ok7, failed7) = catalog.outcomes_since(&window)?;
    let success_rate_7d = if ok7 + failed7 == 0 {
        None
    } else {
        Some(ok7 as f64 / (ok7 + failed7) as f64)
    };
    let (logical_bytes, stored_bytes) = catalog.completed_bytes()?;
    let dedup_ratio = if stored_bytes == 0 {
        None
    } else {
        Some(((logical_bytes as f64 / stored_bytes as f64) * 100.0).round() / 100.0)
    };
    let targets = target_usage(config, catalog)?;
    let open_alerts = alerts::active_alerts(catalog)?;
    let recent_backups = catalog.list(&BackupFilter {
        limit: Some(10),
        ..Default::default()
    })?;
    let health_score = score(success_rate_7d, &open_alerts);
    let mut state = state(&open_alerts, &sources);
    if verify.iter().any(|v| v.stale) || drills.iter().any(|d| d.stale) {
        state = state.max(State::Warning);
    }
    Ok(Status {
        generated_at: crate::clock::format(now),
        health_score,
        state,
        backups: counts,
        success_rate_7d,
        logical_bytes,
        stored_bytes,
        dedup_ratio,
        targets,
        sources,
        recent_backups,
        open_alerts,
        dr: dr_status(catalog)?,
        verify,
        drills,
        stale_sandboxes: crate::engine::postgres::sandbox::stale_in(&sandbox_dirs(
            config, catalog,
        )?),
    })
}

/// Where tenant point-in-time restores may have left a sandbox: the
/// default work directory and every `--work-dir` the restore log names.
pub fn sandbox_dirs(config: &Config, catalog: &Catalog) -> Result<Vec<PathBuf>> {
    let mut dirs = vec![config.sandbox_dir()];
    dirs.extend(catalog.tenant_restore_work_dirs()?);
    Ok(dirs)
}

pub fn target_usage(config: &Config, catalog: &Catalog) -> Result<Vec<TargetUsage>> {
    let mut map: BTreeMap<String, TargetUsage> = BTreeMap::new();
    let entry = |name: &str, configured: bool| -> TargetUsage {
        TargetUsage {
            name: name.to_string(),
            configured,
            backups: 0,
            packs: 0,
            stored_bytes: 0,
        }
    };
    let mut order: Vec<String> = Vec::new();
    for t in &config.targets {
        map.insert(t.name.clone(), entry(&t.name, true));
        order.push(t.name.clone());
    }
    for (t, packs, bytes) in catalog.pack_usage_by_target()? {
        if !map.contains_key(&t) {
            order.push(t.clone());
        }
        let e = map.entry(t.clone()).or_insert_with(|| entry(&t, false));
        e.packs = packs;
        e.stored_bytes = bytes;
    }
    for (t, n) in catalog.completed_backups_by_target()? {
        if !map.contains_key(&t) {
            order.push(t.clone());
        }
        map.entry(t.clone())
            .or_insert_with(|| entry(&t, false))
            .backups = n;
    }
    Ok(order.into_iter().filter_map(|n| map.remove(&n)).collect())
}

/// One thing that lowers the health score, and by how many points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deduction {
    pub points: f64,
    /// What lowers it: `backup success rate (7 days) 50%` or an alert's
    /// severity, kind and subject.
    pub reason: String,
    /// The alert behind it (none for the success rate).
    pub alert_id: Option<i64>,
}

/// What lowers the health score (see the module documentation), largest
/// first; [`score`] is 100 minus their sum.
pub fn deductions(success_rate_7d: Option<f64>, active: &[Alert]) -> Vec<Deduction> {
    let mut out = Vec::new();
    let rate = success_rate_7d.unwrap_or(1.0);
    if rate < 1.0 {
        out.push(Deduction {
            points: 30.0 * (1.0 - rate),
            reason: format!("backup success rate (7 days) {:.0}%", rate * 100.0),
            alert_id: None,
        });
    }
    for a in active {
        let weight = match a.severity {
            Severity::Critical => 25.0,
            Severity::Warning => 10.0,
            Severity::Info => 2.0,
        };
        let acked = a.status == "acknowledged";
        out.push(Deduction {
            points: if acked { weight / 2.0 } else { weight },
            reason: format!(
                "{} alert #{}: {}{}",
                a.severity,
                a.id,
                a.subject(),
                if acked { " (acknowledged)" } else { "" }
            ),
            alert_id: Some(a.id),
        });
    }
    out.sort_by(|a, b| b.points.total_cmp(&a.points));
    out
}

/// The health score; see the module documentation.
pub fn score(success_rate_7d: Option<f64>, active: &[Alert]) -> u8 {
    let lost: f64 = deductions(success_rate_7d, active)
        .iter()
        .map(|d| d.points)
        .sum();
    (100.0 - lost).round().clamp(0.0, 100.0) as u8
}

/// The monitoring state: active alerts and stale sources only.
pub fn state(active: &[Alert], sources: &[SourceHealth]) -> State {
    let mut st = State::Ok;
    for a in active {
        st = st.max(match a.severity {
            Severity::Critical => State::Critical,
            Severity::Warning => State::Warning,
            Severity::Info => State::Ok,
        });
    }
    if sources.iter().any(|s| s.stale) {
        st = st.max(State::Warning);
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(sev: Severity, status: &str) -> Alert {
        Alert {
            id: 1,
            kind: "k".into(),
            severity: sev,
            source: None,
            target: None,
            message: String::new(),
            first_seen: Default::default(),
            last_seen: Default::default(),
            count: 1,
            status: status.into(),
            acknowledged_by: None,
            acknowledged_at: None,
            ack_note: None,
            resolved_at: None,
            resolved_by: None,
            resolve_note: None,
        }
    }

    #[test]
    fn score_and_state() {
        assert_eq!(score(None, &[]), 100);
        assert_eq!(score(Some(0.5), &[]), 85);
        assert_eq!(score(Some(1.0), &[alert(Severity::Critical, "open")]), 75);
        assert_eq!(
            score(Some(1.0), &[alert(Severity::Critical, "acknowledged")]),
            88
        );
        assert_eq!(
            score(Some(0.0), &vec![alert(Severity::Critical, "open"); 4]),
            0
        );
        let d = deductions(
            Some(0.5),
            &[
                alert(Severity::Warning, "open"),
                alert(Severity::Critical, "acknowledged"),
            ],
        );
        let points: Vec<f64> = d.iter().map(|d| d.points).collect();
        assert_eq!(points, vec![15.0, 12.5, 10.0]);
        assert_eq!(d[0].reason, "backup success rate (7 days) 50%");
        assert_eq!(d[0].alert_id, None);
        assert!(d[1].reason.contains("acknowledged"), "{:?}", d[1]);
        assert!(deductions(None, &[]).is_empty());
        assert_eq!(state(&[], &[]), State::Ok);
        assert_eq!(state(&[alert(Severity::Info, "open")], &[]), State::Ok);
        assert_eq!(
            state(&[alert(Severity::Warning, "open")], &[]),
            State::Warning
        );
        assert_eq!(
            state(
                &[
                    alert(Severity::Warning, "open"),
                    alert(Severity::Critical, "acknowledged")
                ],
                &[]
            ),
            State::Critical
        );
    }
}
