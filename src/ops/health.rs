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
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use time::OffsetDateTime;

use super::alerts::{self, kind, Alert, AlertKey};
use crate::catalog::{BackupFilter, BackupRow, Catalog};
use crate::config::{Config, Source};
use crate::error::CheckStatus;
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
    pub last_success: Option<String>,
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
            // Reference: the last success, or when this host first saw the
            // source configured (a new source is not stale at once).
            let meta_key = format!("ops.source_first_seen.{}", s.name);
            let reference = match &last_success {
                Some(t) => crate::clock::parse(t),
                None => match catalog.meta(&meta_key)? {
                    Some(t) => crate::clock::parse(&t),
                    None => {
                        catalog.set_meta(&meta_key, &crate::clock::format(now))?;
                        Some(now)
                    }
                },
            };
            if let Some(reference) = reference {
                let age = secs_between(reference, now);
                h.age_secs = Some(age);
                h.stale = age > threshold.as_secs();
                let key = AlertKey::new(kind::STALE, &s.name, "");
                if h.stale {
                    let severity = if age > 2 * threshold.as_secs() {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    let message = match &last_success {
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
                    };
                    super::alert(config, catalog, key, severity, &message);
                } else {
                    super::clear(config, catalog, &key, "vaultctl (fresh backup)");
                }
            }
        }
        out.push(h);
    }
    // Sources known only from the catalog (ad-hoc backups, removed sources).
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
        last_drill_at: last.started_at.clone(),
        last_drill_outcome: last.outcome.clone(),
        last_drill_rto_ms: last.rto_ms,
        last_success_at: ok.first().map(|d| d.started_at.clone()),
        recent_rto_ms: recent,
        trend,
    }))
}

/// Computes the dashboard at `now`; checks staleness first (raising and
/// resolving `source_stale` alerts).
pub fn status(config: &Config, catalog: &Catalog, now: OffsetDateTime) -> Result<Status> {
    let sources = check_sources(config, catalog, now)?;
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
    let state = state(&open_alerts, &sources);
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
    })
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

/// The health score; see the module documentation.
pub fn score(success_rate_7d: Option<f64>, active: &[Alert]) -> u8 {
    let mut s = 100.0 - 30.0 * (1.0 - success_rate_7d.unwrap_or(1.0));
    for a in active {
        let weight = match a.severity {
            Severity::Critical => 25.0,
            Severity::Warning => 10.0,
            Severity::Info => 2.0,
        };
        s -= if a.status == "acknowledged" {
            weight / 2.0
        } else {
            weight
        };
    }
    s.round().clamp(0.0, 100.0) as u8
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
            first_seen: String::new(),
            last_seen: String::new(),
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
