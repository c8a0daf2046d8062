//! Orchestration: the jobs a command runs, with no terminal in them.
//!
//! A job opens what it needs (repository, catalog), runs the core
//! (`repo`, `engine`), records the run (restore log, DR history) and ends in
//! [`finish`], the one place where hooks, alerts and the metrics file are
//! updated. It reports progress through [`crate::progress::Progress`], asks
//! for confirmation through [`Confirm`], and returns what it did as data:
//! printing is the CLI's job. The wizard, `dr` and the flag form of
//! `restore` call the same functions.

pub mod backup;
pub mod catalog;
pub mod dr;
#[cfg(test)]
mod faults;
pub mod offers;
pub mod pitr;
pub mod prune;
pub mod restore;
pub mod sync;
pub mod tenant_pitr;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
pub mod verify;
pub mod wal;
pub mod wizard;

use anyhow::Result;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{fail, ExitStatus};
use crate::ops;
use crate::progress::Progress;
use crate::repo::Repository;

/// Asks the operator to confirm a write. The CLI asks on a terminal and
/// refuses without one; `--yes` and tests use [`Confirmed`].
pub trait Confirm {
    /// `Ok` to go on; an error (declined, or no one to ask) otherwise.
    /// `what` completes "about to …".
    fn confirm(&self, what: &str) -> Result<()>;
}

/// Confirmation already given (`--yes`).
pub struct Confirmed;

impl Confirm for Confirmed {
    fn confirm(&self, _: &str) -> Result<()> {
        Ok(())
    }
}

/// Never confirms: for callers that have no one to ask.
pub struct NoOneToAsk;

impl Confirm for NoOneToAsk {
    fn confirm(&self, what: &str) -> Result<()> {
        fail(
            ExitStatus::Usage,
            format!(
                "about to {what}, which needs confirmation, but there is no terminal to ask on."
            ),
            "Check the target, then run it again with --yes.",
        )
    }
}

/// What every job gets from its caller.
pub struct Job<'a> {
    pub config: &'a Config,
    pub progress: std::sync::Arc<dyn Progress>,
    pub confirm: &'a dyn Confirm,
}

/// What a finished job was, for [`finish`].
pub enum Ran<'a> {
    /// A restore of backup `backup` of `source` (either may be unknown: "").
    Restore { source: &'a str, backup: &'a str },
    /// A DR drill of `source`.
    Drill { source: &'a str, backup: &'a str },
    /// Anything else: only staleness and the metrics file.
    Other,
}

/// The end of every job: alerts raised or resolved, hooks pinged, staleness
/// checked and the metrics file refreshed. Opens the catalog when the job
/// had none; never fails. A closed stdout (`… | head`) is not a failure.
pub fn finish<T>(config: &Config, catalog: Option<&Catalog>, ran: Ran, result: &Result<T>) {
    if result.as_ref().is_err_and(crate::error::is_broken_pipe) {
        return;
    }
    let opened;
    let catalog = match catalog {
        Some(c) => c,
        None => {
            opened = ops::hooks::open_catalog(config);
            match &opened {
                Some(c) => c,
                None => return,
            }
        }
    };
    match (ran, result) {
        (Ran::Restore { source, backup }, Ok(_)) => {
            ops::hooks::restore_succeeded(config, catalog, source, backup)
        }
        (Ran::Restore { source, backup }, Err(e)) => {
            ops::hooks::restore_failed(config, catalog, source, backup, e)
        }
        (Ran::Drill { source, backup }, Ok(_)) => {
            ops::hooks::drill_succeeded(config, catalog, source, backup)
        }
        // A drill that could not start (bad flags, no such source) is not
        // a failed drill.
        (Ran::Drill { source, .. }, Err(e))
            if crate::error::exit_status(e) != ExitStatus::Usage =>
        {
            ops::hooks::drill_failed(config, catalog, source, e)
        }
        (Ran::Drill { .. }, Err(_)) | (Ran::Other, _) => {}
    }
    ops::after_command(config, catalog);
}

/// The repository (one target, or all) and the catalog bound to it.
pub fn open(config: &Config, target: Option<&str>) -> Result<(Repository, Catalog)> {
    let repo = crate::ops::open_repository(config, target)?;
    let catalog = Catalog::open(&config.catalog)?;
    catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
    Ok((repo, catalog))
}

/// The restore log's first record: `row` restored (`kind`) into `target`,
/// by whom, where, when and why.
pub(crate) fn restore_start<'a>(
    row: &'a crate::catalog::BackupRow,
    kind: &'a str,
    target: &'a str,
    tenants: &'a [String],
    reason: Option<&'a str>,
) -> crate::catalog::RestoreStart<'a> {
    crate::catalog::RestoreStart {
        backup_id: &row.id,
        source: &row.source,
        kind,
        target,
        tenants,
        reason,
        operator: operator(),
        host: crate::repo::hostname(),
        started_at: crate::clock::Timestamp::now(),
    }
}

/// The restore log's last record of `log_id`: the outcome, rows inserted,
/// details and the error. A restore that cannot log its end still did what
/// it did: the error is not raised over the restore's own.
pub(crate) fn restore_end<T>(
    catalog: &Catalog,
    log_id: i64,
    result: &Result<T>,
    inserted: Option<u64>,
    details: &serde_json::Value,
) {
    let _ = catalog.restore_finished(
        log_id,
        &crate::clock::now_rfc3339(),
        result.is_ok(),
        inserted,
        details,
        result
            .as_ref()
            .err()
            .map(crate::error::paragraph)
            .as_deref(),
    );
}

/// Who runs a restore, a DR run or an alert acknowledgement, for the logs:
/// the sudo user, else the login name, else the uid. One answer for every
/// log, so that a restore and the alert it answers name the same person.
pub fn operator() -> String {
    crate::settings::environment()
        .operator
        .clone()
        .unwrap_or_else(|| format!("uid {}", rustix::process::getuid().as_raw()))
}
