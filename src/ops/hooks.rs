//! What backup, verify and restore report to operations: alerts raised on
//! failure and resolved on success, healthcheck pings. Every function here
//! is best effort and never fails its caller.

use super::alerts::{kind, AlertKey};
use super::notify::{self, Ping};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::engine::postgres::sqlscan::Refusal;
use crate::error::{exit_status, paragraph, ExitStatus};
use crate::severity::Severity;

fn healthcheck_url<'a>(config: &'a Config, source: &str) -> Option<&'a str> {
    config
        .sources
        .iter()
        .find(|s| s.name == source)
        .and_then(|s| s.healthcheck_url.as_deref())
}

/// Usage and configuration errors are the caller's to fix on the spot, not
/// conditions to alert on.
fn alertable(e: &anyhow::Error) -> bool {
    exit_status(e) != ExitStatus::Usage
}

/// A backup of `source` is about to start: ping `/start`.
pub fn backup_started(config: &Config, source: &str) {
    if let Some(url) = healthcheck_url(config, source) {
        notify::ping(url, Ping::Start, None);
    }
}

/// Targets that could not be opened for this run.
pub fn targets_unreachable(config: &Config, catalog: &Catalog, unavailable: &[(String, String)]) {
    for (target, why) in unavailable {
        super::alert(
            config,
            catalog,
            AlertKey::new(kind::TARGET_UNREACHABLE, "", target),
            Severity::Warning,
            &format!("target '{target}' is unreachable: {why} Check the storage and credentials; backups go to the other targets meanwhile."),
        );
    }
}

/// A target answered (a backup or verify reached it).
pub fn target_reachable(config: &Config, catalog: &Catalog, target: &str) {
    super::clear(
        config,
        catalog,
        &AlertKey::new(kind::TARGET_UNREACHABLE, "", target),
        "vaultctl (target reached)",
    );
}

/// A backup completed. `reached`: targets that hold it; `missed`: targets
/// that did not get it, with why (exit 3).
pub fn backup_succeeded(
    config: &Config,
    catalog: &Catalog,
    source: &str,
    id: &str,
    reached: &[String],
    missed: &[(String, String)],
) {
    let by = format!("vaultctl (backup {id})");
    super::clear(
        config,
        catalog,
        &AlertKey::new(kind::BACKUP_FAILED, source, ""),
        &by,
    );
    super::clear(
        config,
        catalog,
        &AlertKey::new(kind::STALE, source, ""),
        &by,
    );
    for t in reached {
        super::clear(
            config,
            catalog,
            &AlertKey::new(kind::TARGET_MISSED, source, t),
            &by,
        );
        target_reachable(config, catalog, t);
    }
    for (t, why) in missed {
        super::alert(
            config,
            catalog,
            AlertKey::new(kind::TARGET_MISSED, source, t),
            Severity::Warning,
            &format!("backup {id} of '{source}' is missing on target '{t}': {why} Run the backup again when the target is back; the other targets hold a complete copy."),
        );
    }
    if let Some(url) = healthcheck_url(config, source) {
        let body = if missed.is_empty() {
            format!("backup {id} completed")
        } else {
            format!(
                "backup {id} completed but missed: {}",
                missed
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        notify::ping(url, Ping::Success, Some(body));
    }
}

/// A backup of `source` failed (`catalog` is `None` when it could not be
/// opened; the alert is then only logged).
pub fn backup_failed(
    config: &Config,
    catalog: Option<&Catalog>,
    source: &str,
    err: &anyhow::Error,
) {
    let text = paragraph(err);
    if let Some(url) = healthcheck_url(config, source) {
        notify::ping(url, Ping::Fail, Some(text.clone()));
    }
    if !alertable(err) {
        return;
    }
    match catalog {
        Some(c) => super::alert(
            config,
            c,
            AlertKey::new(kind::BACKUP_FAILED, source, ""),
            Severity::Critical,
            &format!("backup of '{source}' failed: {text}"),
        ),
        None => {
            tracing::warn!("cannot record the failed backup of '{source}' as an alert (no catalog)")
        }
    }
}

/// Opens the catalog for hooks that run where the command has none.
pub fn open_catalog(config: &Config) -> Option<Catalog> {
    match Catalog::open(&config.catalog) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(
                "cannot open the catalog to record alerts: {}",
                paragraph(&e)
            );
            None
        }
    }
}

/// A verify run of `target` finished; `problems` empty means clean.
pub fn verify_finished(
    config: &Config,
    catalog: &Catalog,
    target: &str,
    mode: &str,
    problems: &[String],
) {
    let key = AlertKey::new(kind::VERIFY_FAILED, "", target);
    if problems.is_empty() {
        super::clear(
            config,
            catalog,
            &key,
            &format!("vaultctl (clean verify, {mode})"),
        );
        target_reachable(config, catalog, target);
    } else {
        let first: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
        super::alert(
            config,
            catalog,
            key,
            Severity::Critical,
            &format!(
                "verify ({mode}) of target '{target}' found {} problem(s): {}{} Run `vaultctl verify --target {target}` for the full list and the affected backups.",
                problems.len(),
                first.join("; "),
                if problems.len() > 3 { "; …" } else { "" }
            ),
        );
    }
}

/// A restore or drill refused the content of a backup of `source`
/// (`err` holds a [`Refusal`]): an alert of its own, open until resolved.
fn backup_refused(config: &Config, catalog: &Catalog, source: &str, err: &anyhow::Error) {
    if !err.chain().any(|e| e.downcast_ref::<Refusal>().is_some()) {
        return;
    }
    super::alert(
        config,
        catalog,
        AlertKey::new(kind::BACKUP_REFUSED, source, ""),
        Severity::Critical,
        &format!(
            "a backup of '{source}' holds content vaultctl refused to restore: {} Find out who could write it (a compromised backup host holds the recipients and the dedup key); resolve this alert by hand once you know.",
            paragraph(err)
        ),
    );
}

/// A restore failed. `source`: the backup's source when known.
pub fn restore_failed(
    config: &Config,
    catalog: &Catalog,
    source: &str,
    backup: &str,
    err: &anyhow::Error,
) {
    if !alertable(err) {
        return;
    }
    backup_refused(config, catalog, source, err);
    super::alert(
        config,
        catalog,
        AlertKey::new(kind::RESTORE_FAILED, source, ""),
        Severity::Critical,
        &format!("restore of backup {backup} failed: {}", paragraph(err)),
    );
}

/// A restore of a backup of `source` succeeded.
pub fn restore_succeeded(config: &Config, catalog: &Catalog, source: &str, backup: &str) {
    super::clear(
        config,
        catalog,
        &AlertKey::new(kind::RESTORE_FAILED, source, ""),
        &format!("vaultctl (restore of {backup})"),
    );
}

/// A DR drill of `source` failed: critical, until the next drill succeeds.
pub fn drill_failed(config: &Config, catalog: &Catalog, source: &str, err: &anyhow::Error) {
    backup_refused(config, catalog, source, err);
    super::alert(
        config,
        catalog,
        AlertKey::new(kind::DRILL_FAILED, source, ""),
        Severity::Critical,
        &format!(
            "DR drill of '{source}' failed: {} The latest backup could not be restored and checked; run `vaultctl dr drill --source {source}` after fixing the cause.",
            paragraph(err)
        ),
    );
}

/// A DR drill of `source` succeeded: resolves an open drill alert.
pub fn drill_succeeded(config: &Config, catalog: &Catalog, source: &str, backup: &str) {
    super::clear(
        config,
        catalog,
        &AlertKey::new(kind::DRILL_FAILED, source, ""),
        &format!("vaultctl (drill of {backup})"),
    );
}
