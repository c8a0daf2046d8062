//! The prune job: each target's retention policy applied and the packs no
//! backup needs deleted, the catalog told what went, and the exit status
//! that says whether anything was left undone.

use std::time::Duration;

use anyhow::Result;

use crate::config::Config;
use crate::error::{exit_status, ExitStatus};
use crate::humanize;
use crate::repo::prune::{self, PruneOptions, TargetReport};

/// What a prune did, target by target.
pub struct Outcome {
    pub dry_run: bool,
    /// The targets pruned (or, with `dry_run`, what would be).
    pub reports: Vec<TargetReport>,
    /// Targets that could not be opened: (name, why).
    pub unavailable: Vec<(String, String)>,
    /// Targets whose prune failed: (name, error).
    pub errors: Vec<(String, anyhow::Error)>,
}

impl Outcome {
    /// The first failure's status; else exit 3 when a target was
    /// unavailable, WAL could not be pruned (its segment size is unknown),
    /// or deletes were refused and deferred (Object Lock, append-only
    /// credentials): nothing is lost, but storage is not reclaimed.
    pub fn exit_status(&self) -> ExitStatus {
        if let Some((_, first)) = self.errors.first() {
            return exit_status(first);
        }
        let wal_blocked = self
            .reports
            .iter()
            .any(|r| r.wal.iter().any(|w| w.error.is_some()));
        let deferred = self.reports.iter().any(|r| {
            !r.deferred.is_empty()
                || r.gc.packs_deferred > 0
                || r.gc.indexes_deferred > 0
                || r.wal.iter().any(|w| w.deferred > 0)
        });
        if self.unavailable.is_empty() && !wal_blocked && !deferred {
            ExitStatus::Success
        } else {
            ExitStatus::Warnings
        }
    }
}

impl Outcome {
    /// `prune --json`: the reports, and the targets unavailable or failed.
    pub fn json(&self) -> serde_json::Value {
        let target_error = |t: &str, e: String| serde_json::json!({"target": t, "error": e});
        serde_json::json!({
            "dry_run": self.dry_run,
            "targets": self.reports,
            "unavailable": self.unavailable.iter().map(|(t, why)| target_error(t, why.clone())).collect::<Vec<_>>(),
            "errors": self.errors.iter().map(|(t, e)| target_error(t, crate::error::paragraph(e))).collect::<Vec<_>>(),
        })
    }
}

/// A target's report for people: the policy line, the garbage collection
/// line and one line per WAL source (the table of decisions goes between
/// the first and the second).
pub fn report_lines(r: &TargetReport) -> (String, String, Vec<String>) {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    let policy = format!(
        "target '{}': {}{}",
        r.target,
        match &r.policy {
            Some(p) => format!("retention {p}"),
            None => "no retention policy: every backup is kept".into(),
        },
        if r.dry_run {
            " (dry run: nothing is changed)"
        } else {
            ""
        }
    );
    let g = &r.gc;
    let gc = format!(
        "target '{}': {verb} {} backup(s); {} {} of {} pack(s) ({}), {} index object(s) rewritten and {} deleted; {} in packs remain",
        r.target,
        r.removed.len(),
        if r.dry_run { "would delete" } else { "deleted" },
        g.packs_deleted,
        g.packs_total,
        humanize::bytes(g.bytes_deleted),
        g.indexes_rewritten,
        g.indexes_deleted,
        humanize::bytes(g.bytes_remaining),
    );
    let wal = r.wal.iter().map(|w| {
        let what = match (&w.error, &w.note) {
            (Some(e), _) => format!("not pruned: {e}"),
            (None, Some(n)) => n.clone(),
            (None, None) => format!(
                "{verb} {} of {} WAL file(s) ({}) older than {}",
                w.removed,
                w.files,
                humanize::bytes(w.bytes_removed),
                w.keep_from
                    .as_deref()
                    .unwrap_or("the oldest kept base backup")
            ),
        };
        format!(
            "target '{}': WAL of source '{}': {what}",
            r.target, w.source
        )
    });
    (policy, gc, wal.collect())
}

/// Prunes `target` (or every target, each with its own policy). A target
/// that fails does not stop the others; opening nothing at all is an error.
pub fn run(
    config: &Config,
    target: Option<&str>,
    dry_run: bool,
    lock_wait: Duration,
) -> Result<Outcome> {
    let result = prune_all(config, target, dry_run, lock_wait);
    super::finish(config, None, super::Ran::Other, &result);
    result
}

fn prune_all(
    config: &Config,
    target: Option<&str>,
    dry_run: bool,
    lock_wait: Duration,
) -> Result<Outcome> {
    crate::memtrace::mark("prune: start");
    let (repo, mut catalog) = super::open(config, target)?;
    let opts = PruneOptions {
        dry_run,
        lock_wait,
        lock_timing: repo.lock_timing,
    };
    let mut out = Outcome {
        dry_run,
        reports: Vec::new(),
        unavailable: repo.unavailable.clone(),
        errors: Vec::new(),
    };
    for store in &repo.stores {
        let policy = config
            .targets
            .iter()
            .find(|t| t.name == store.name)
            .and_then(|t| t.retention.as_ref());
        match prune::prune_target(store, &repo.dedup, policy, &opts) {
            Ok(r) => {
                if !dry_run {
                    for id in &r.removed {
                        catalog.forget_backup_on(id, &store.name)?;
                    }
                    crate::memtrace::mark("prune: catalog updated");
                }
                out.reports.push(r);
            }
            Err(e) => out.errors.push((store.name.clone(), e)),
        }
    }
    if !dry_run {
        // Re-read the rewritten indexes so this host's dedup cache is current.
        if let Err(e) = repo.sync_index(&mut catalog) {
            tracing::warn!(
                "the catalog's dedup index could not be refreshed (the next backup does it): {}",
                crate::error::paragraph(&e)
            );
        }
        crate::memtrace::mark("prune: dedup index re-read");
    }
    Ok(out)
}
