//! Alerts in the catalog: raise (de-duplicated), resolve, acknowledge, list.
//! The only SQL on alerts; `ops` raises and notifies through it.
//!
//! An alert is identified while active (open or acknowledged) by its
//! [`AlertKey`]: kind, source and target (`""` when not applicable). Raising
//! the same key again bumps `count` and `last_seen` (and the severity, if
//! higher) instead of adding a row; a unique partial index keeps that true
//! across concurrent processes. Resolved alerts stay as history.

use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::clock::Timestamp;
use crate::error::{ExitStatus, Failure};
use crate::severity::Severity;

/// Alert kinds raised by vaultctl. Other modules may add their own.
pub mod kind {
    /// A backup of a source failed (no manifest written).
    pub const BACKUP_FAILED: &str = "backup_failed";
    /// A backup completed but a target did not get it (exit 3).
    pub const TARGET_MISSED: &str = "backup_target_missed";
    /// A verify run found problems on a target.
    pub const VERIFY_FAILED: &str = "verify_failed";
    /// A restore (or test restore) failed.
    pub const RESTORE_FAILED: &str = "restore_failed";
    /// No successful backup of a source within its schedule plus grace.
    pub const STALE: &str = "source_stale";
    /// No successful verify of a target within `[verify] max_age`.
    pub const VERIFY_STALE: &str = "verify_stale";
    /// No successful DR drill of a source within its `[source.drill] max_age`.
    pub const DRILL_STALE: &str = "drill_stale";
    /// A target could not be reached.
    pub const TARGET_UNREACHABLE: &str = "target_unreachable";
    /// A target lacks objects another target has (replication catch-up).
    pub const REPLICATION_BEHIND: &str = "replication_behind";
    /// A DR drill (scheduled test restore) of a source failed.
    pub const DRILL_FAILED: &str = "dr_drill_failed";
    /// A restore or drill refused a backup's content as hostile (a psql
    /// meta-command in a dump, …). Unlike `restore_failed` it is not
    /// resolved by the next successful restore: someone must look.
    pub const BACKUP_REFUSED: &str = "backup_refused";
    /// WAL archiving of a postgres-physical source stalled, failed or has a
    /// gap (`wal status`): point-in-time recovery is silently breaking.
    pub const WAL_ARCHIVE: &str = "wal_archive";
    /// A repository object is damaged or not what its name says (garbage
    /// index, truncated manifest…): it is skipped, and someone should look.
    pub const REPOSITORY_DAMAGED: &str = "repository_damaged";
    /// A one-shot backup (`backup --at`) did not run when due.
    pub const ONE_SHOT_MISSED: &str = "one_shot_missed";
}

/// What identifies one condition: kind, source and target (`""` = none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertKey {
    pub kind: String,
    pub source: String,
    pub target: String,
}

impl AlertKey {
    pub fn new(kind: &str, source: &str, target: &str) -> AlertKey {
        AlertKey {
            kind: kind.into(),
            source: source.into(),
            target: target.into(),
        }
    }
}

/// One alert row (the `alerts --json` shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    pub id: i64,
    pub kind: String,
    pub severity: Severity,
    pub source: Option<String>,
    pub target: Option<String>,
    pub message: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub count: u64,
    pub status: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<Timestamp>,
    pub ack_note: Option<String>,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<String>,
    pub resolve_note: Option<String>,
}

impl Alert {
    pub fn key(&self) -> AlertKey {
        AlertKey::new(
            &self.kind,
            self.source.as_deref().unwrap_or(""),
            self.target.as_deref().unwrap_or(""),
        )
    }

    /// `backup_failed source=db target=r2`
    pub fn subject(&self) -> String {
        let mut s = self.kind.clone();
        if let Some(src) = &self.source {
            s.push_str(&format!(" source={src}"));
        }
        if let Some(t) = &self.target {
            s.push_str(&format!(" target={t}"));
        }
        s
    }
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// A new alert (notified).
    Opened,
    /// The same condition again: count and last_seen bumped (not notified).
    Repeated,
    /// The same condition with a higher severity (notified).
    Escalated,
    /// The condition cleared or someone resolved it (notified).
    Resolved,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub change: Change,
    pub alert: Alert,
}

impl Event {
    /// Whether notifiers should hear about it.
    pub fn notifiable(&self) -> bool {
        self.change != Change::Repeated
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let sev: String = r.get("severity")?;
    let source: String = r.get("source")?;
    let target: String = r.get("target")?;
    Ok(Alert {
        id: r.get("id")?,
        kind: r.get("kind")?,
        severity: Severity::parse(&sev).unwrap_or(Severity::Critical),
        source: Some(source).filter(|s| !s.is_empty()),
        target: Some(target).filter(|s| !s.is_empty()),
        message: r.get("message")?,
        first_seen: r.get("first_seen")?,
        last_seen: r.get("last_seen")?,
        count: r.get("count")?,
        status: r.get("status")?,
        acknowledged_by: r.get("acknowledged_by")?,
        acknowledged_at: r.get("acknowledged_at")?,
        ack_note: r.get("ack_note")?,
        resolved_at: r.get("resolved_at")?,
        resolved_by: r.get("resolved_by")?,
        resolve_note: r.get("resolve_note")?,
    })
}

pub fn get(catalog: &Catalog, id: i64) -> Result<Option<Alert>> {
    Ok(catalog
        .conn
        .query_row("SELECT * FROM alerts WHERE id = ?1", [id], row)
        .optional()?)
}

fn active(tx: &rusqlite::Connection, key: &AlertKey) -> Result<Option<Alert>> {
    Ok(tx
        .query_row(
            "SELECT * FROM alerts WHERE kind = ?1 AND source = ?2 AND target = ?3 AND status <> 'resolved'",
            params![key.kind, key.source, key.target],
            row,
        )
        .optional()?)
}

/// Records the condition `key`: a new open alert, or the active one bumped.
/// Only records; deliver the returned event with `notify::deliver` (or use
/// `ops::alert`, which does both). `now` is the time to record, in the
/// catalog's format (`config.clock.now_str()`).
pub fn raise(
    catalog: &Catalog,
    key: AlertKey,
    severity: Severity,
    message: &str,
    now: &str,
) -> Result<Event> {
    // Alerts are stored, shown and sent: no URL's secret goes with them.
    let message = crate::redact::text(message);
    let message = message.as_str();
    // IMMEDIATE: two processes raising the same key serialize here.
    let tx = rusqlite::Transaction::new_unchecked(
        &catalog.conn,
        rusqlite::TransactionBehavior::Immediate,
    )
    .context("cannot start a catalog transaction")?;
    let (id, change) = match active(&tx, &key)? {
        Some(existing) => {
            let change = if severity > existing.severity {
                Change::Escalated
            } else {
                Change::Repeated
            };
            let sev = severity.max(existing.severity);
            tx.execute(
                "UPDATE alerts SET count = count + 1, last_seen = ?2, message = ?3, severity = ?4 WHERE id = ?1",
                params![existing.id, now, message, sev.as_str()],
            )?;
            (existing.id, change)
        }
        None => {
            tx.execute(
                "INSERT INTO alerts (kind, severity, source, target, message, first_seen, last_seen, count, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1, 'open')",
                params![key.kind, severity.as_str(), key.source, key.target, message, now],
            )?;
            (tx.last_insert_rowid(), Change::Opened)
        }
    };
    let alert = tx.query_row("SELECT * FROM alerts WHERE id = ?1", [id], row)?;
    tx.commit()?;
    Ok(Event { change, alert })
}

/// Resolves the active alert for `key` (the condition cleared); `None` when
/// there was none.
pub fn resolve(
    catalog: &Catalog,
    key: &AlertKey,
    by: &str,
    note: Option<&str>,
    now: &str,
) -> Result<Option<Event>> {
    let found: Option<i64> = catalog
        .conn
        .query_row(
            "SELECT id FROM alerts WHERE kind = ?1 AND source = ?2 AND target = ?3 AND status <> 'resolved'",
            params![key.kind, key.source, key.target],
            |r| r.get(0),
        )
        .optional()?;
    match found {
        None => Ok(None),
        Some(id) => Ok(Some(Event {
            change: Change::Resolved,
            alert: set_resolved(catalog, id, by, note, now)?,
        })),
    }
}

fn set_resolved(
    catalog: &Catalog,
    id: i64,
    by: &str,
    note: Option<&str>,
    now: &str,
) -> Result<Alert> {
    catalog.conn.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = ?2, resolved_by = ?3, resolve_note = ?4 WHERE id = ?1 AND status <> 'resolved'",
        params![id, now, by, note],
    )?;
    get(catalog, id)?.ok_or_else(|| anyhow::anyhow!("alert {id} vanished"))
}

fn by_id(catalog: &Catalog, id: i64) -> Result<Alert> {
    get(catalog, id)?.ok_or_else(|| {
        Failure::new(
            ExitStatus::Usage,
            format!("there is no alert with id {id}."),
        )
        .with_remedy("List alerts with `vaultctl alerts --status all`.")
        .into()
    })
}

/// `alerts ack ID`: someone knows; the alert stays active (and still counts
/// for `status --check`) until the condition clears or it is resolved.
pub fn acknowledge(
    catalog: &Catalog,
    id: i64,
    by: &str,
    note: Option<&str>,
    now: &str,
) -> Result<Alert> {
    let a = by_id(catalog, id)?;
    if a.status == "resolved" {
        return Err(Failure::new(
            ExitStatus::Usage,
            format!("alert {id} is already resolved."),
        )
        .with_remedy("Only open alerts can be acknowledged.")
        .into());
    }
    catalog.conn.execute(
        "UPDATE alerts SET status = 'acknowledged', acknowledged_by = ?2, acknowledged_at = ?3, ack_note = ?4 WHERE id = ?1",
        params![id, by, now, note],
    )?;
    by_id(catalog, id)
}

/// `alerts resolve ID`: resolved by hand. If the condition persists, the
/// next check raises a new alert.
pub fn resolve_id(
    catalog: &Catalog,
    id: i64,
    by: &str,
    note: Option<&str>,
    now: &str,
) -> Result<Event> {
    let a = by_id(catalog, id)?;
    if a.status == "resolved" {
        return Err(Failure::new(
            ExitStatus::Usage,
            format!("alert {id} is already resolved."),
        )
        .with_remedy("Nothing to do; `vaultctl alerts --status all` shows the history.")
        .into());
    }
    Ok(Event {
        change: Change::Resolved,
        alert: set_resolved(catalog, id, by, note, now)?,
    })
}

/// Filters for `alerts list`.
#[derive(Debug, Default, Clone)]
pub struct AlertFilter {
    /// `open`, `acknowledged`, `resolved`, `active` (open + acknowledged) or `all`.
    pub status: Option<String>,
    /// Minimum severity.
    pub severity: Option<Severity>,
    pub source: Option<String>,
    pub kind: Option<String>,
    /// last_seen at or after this catalog time.
    pub since: Option<String>,
}

/// Alerts, most severe first, then most recent.
pub fn list(catalog: &Catalog, f: &AlertFilter) -> Result<Vec<Alert>> {
    let mut sql = String::from("SELECT * FROM alerts WHERE 1 = 1");
    let mut args: Vec<String> = Vec::new();
    match f.status.as_deref().unwrap_or("open") {
        "all" => {}
        "active" => sql.push_str(" AND status <> 'resolved'"),
        s @ ("open" | "acknowledged" | "resolved") => {
            args.push(s.into());
            sql.push_str(&format!(" AND status = ?{}", args.len()));
        }
        other => {
            return Err(Failure::new(
                ExitStatus::Usage,
                format!("--status {other} is not an alert status."),
            )
            .with_remedy("Use open, acknowledged, resolved, active (open and acknowledged) or all.")
            .into())
        }
    }
    if let Some(sev) = f.severity {
        let allowed: Vec<String> = [Severity::Info, Severity::Warning, Severity::Critical]
            .iter()
            .filter(|s| **s >= sev)
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        sql.push_str(&format!(" AND severity IN ({})", allowed.join(", ")));
    }
    for (col, v) in [("source", &f.source), ("kind", &f.kind)] {
        if let Some(v) = v {
            args.push(v.clone());
            sql.push_str(&format!(" AND {col} = ?{}", args.len()));
        }
    }
    if let Some(since) = &f.since {
        args.push(since.clone());
        sql.push_str(&format!(" AND last_seen >= ?{}", args.len()));
    }
    sql.push_str(" ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, last_seen DESC, id DESC");
    let mut stmt = catalog.conn.prepare(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Active (open or acknowledged) alerts, most severe first.
pub fn active_alerts(catalog: &Catalog) -> Result<Vec<Alert>> {
    list(
        catalog,
        &AlertFilter {
            status: Some("active".into()),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-01-01T03:00:00.000Z";

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.db")).unwrap();
        (dir, c)
    }

    #[test]
    fn dedup_escalate_resolve() {
        let (_d, c) = catalog();
        let key = AlertKey::new(kind::BACKUP_FAILED, "db", "");
        let e1 = raise(
            &c,
            key.clone(),
            Severity::Warning,
            "first",
            "2026-01-01T00:00:00.000Z",
        )
        .unwrap();
        assert_eq!(e1.change, Change::Opened);
        let e2 = raise(
            &c,
            key.clone(),
            Severity::Warning,
            "second",
            "2026-01-01T01:00:00.000Z",
        )
        .unwrap();
        assert_eq!(e2.change, Change::Repeated);
        assert_eq!(e2.alert.id, e1.alert.id);
        assert_eq!(e2.alert.count, 2);
        assert_eq!(e2.alert.first_seen, "2026-01-01T00:00:00.000Z");
        assert_eq!(e2.alert.last_seen, "2026-01-01T01:00:00.000Z");
        assert_eq!(e2.alert.message, "second");
        let e3 = raise(
            &c,
            key.clone(),
            Severity::Critical,
            "third",
            "2026-01-01T02:00:00.000Z",
        )
        .unwrap();
        assert_eq!(e3.change, Change::Escalated);
        assert_eq!(e3.alert.severity, Severity::Critical);
        // Another source is another alert.
        let other = raise(
            &c,
            AlertKey::new(kind::BACKUP_FAILED, "web", ""),
            Severity::Info,
            "x",
            "2026-01-01T02:00:00.000Z",
        )
        .unwrap();
        assert_ne!(other.alert.id, e1.alert.id);
        assert_eq!(active_alerts(&c).unwrap().len(), 2);
        let r = resolve(&c, &key, "test", None, T).unwrap().unwrap();
        assert_eq!(r.alert.status, "resolved");
        assert!(resolve(&c, &key, "test", None, T).unwrap().is_none());
        // The same condition after resolution is a new alert.
        let e4 = raise(&c, key.clone(), Severity::Warning, "again", T).unwrap();
        assert_eq!(e4.change, Change::Opened);
        assert_ne!(e4.alert.id, e1.alert.id);
        // Most severe first; source filter; severity filter.
        let all = list(
            &c,
            &AlertFilter {
                status: Some("all".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(all[0].severity, Severity::Critical);
        assert_eq!(all.len(), 3);
        let warn = list(
            &c,
            &AlertFilter {
                severity: Some(Severity::Warning),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(warn.len(), 1);
        let acked = acknowledge(&c, e4.alert.id, "me", Some("looking"), T).unwrap();
        assert_eq!(acked.status, "acknowledged");
        let e5 = raise(&c, key, Severity::Warning, "still", T).unwrap();
        assert_eq!(e5.alert.id, e4.alert.id);
        assert_eq!(e5.alert.status, "acknowledged");
        assert!(resolve_id(&c, e1.alert.id, "me", None, T).is_err());
    }
}
