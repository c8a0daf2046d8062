//! `vaultctl prune`: apply each target's retention policy, then delete the
//! packs no backup needs (safe while backups run; see docs/FORMAT.md).

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cli::{output, Ctx};
use crate::error::{exit_status, ExitStatus};
use crate::repo::prune::{self, PruneOptions, TargetReport};

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Prune only this target (default: every target, each with its own policy)
    #[arg(long)]
    pub target: Option<String>,
    /// Show what would be removed and how much space it frees; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for running backups before giving up with exit 11
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_wait)]
    pub lock_wait: Duration,
}

fn parse_wait(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s)
}

pub fn run(ctx: &Ctx, args: PruneArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let (repo, mut catalog) = crate::jobs::open(&config, args.target.as_deref())?;
    let opts = PruneOptions {
        dry_run: args.dry_run,
        lock_wait: args.lock_wait,
        lock_timing: repo.lock_timing,
    };
    let mut reports: Vec<TargetReport> = Vec::new();
    let mut errors: Vec<(String, anyhow::Error)> = Vec::new();
    for store in &repo.stores {
        let policy = config
            .targets
            .iter()
            .find(|t| t.name == store.name)
            .and_then(|t| t.retention.as_ref());
        match prune::prune_target(store, &repo.dedup, policy, &opts) {
            Ok(r) => {
                if !args.dry_run {
                    for id in &r.removed {
                        catalog.forget_backup_on(id, &store.name)?;
                    }
                }
                reports.push(r);
            }
            Err(e) => errors.push((store.name.clone(), e)),
        }
    }
    if !args.dry_run {
        // Re-read the rewritten indexes so this host's dedup cache is current.
        if let Err(e) = repo.sync_index(&mut catalog) {
            tracing::warn!(
                "the catalog's dedup index could not be refreshed (the next backup does it): {}",
                crate::error::paragraph(&e)
            );
        }
    }

    if ctx.global.json {
        output::json(&serde_json::json!({
            "dry_run": args.dry_run,
            "targets": reports,
            "unavailable": repo.unavailable.iter().map(|(t, why)| serde_json::json!({"target": t, "error": why})).collect::<Vec<_>>(),
            "errors": errors.iter().map(|(t, e)| serde_json::json!({"target": t, "error": crate::error::paragraph(e)})).collect::<Vec<_>>(),
        }))?;
    } else {
        for r in &reports {
            print_report(r)?;
        }
    }
    for (name, why) in &repo.unavailable {
        eprintln!("vaultctl: warning: target '{name}' is unavailable and was not pruned: {why}");
    }
    for r in &reports {
        for p in &r.problems {
            eprintln!("vaultctl: warning: target '{}': {p}", r.target);
        }
    }
    if let Some((_, first)) = errors.first() {
        let kind = exit_status(first);
        for (t, e) in &errors {
            eprintln!(
                "vaultctl: error: prune of target '{t}' failed: {}",
                crate::error::paragraph(e)
            );
        }
        return Ok(kind);
    }
    // WAL that could not be pruned (its segment size is unknown) is a
    // warning: everything else was done, but the archive keeps growing.
    let wal_blocked = reports
        .iter()
        .any(|r| r.wal.iter().any(|w| w.error.is_some()));
    // Deletes the target refused (Object Lock, append-only credentials)
    // were deferred: nothing is lost, but storage is not reclaimed.
    let deferred = reports.iter().any(|r| {
        !r.deferred.is_empty()
            || r.gc.packs_deferred > 0
            || r.gc.indexes_deferred > 0
            || r.wal.iter().any(|w| w.deferred > 0)
    });
    Ok(
        if repo.unavailable.is_empty() && !wal_blocked && !deferred {
            ExitStatus::Success
        } else {
            ExitStatus::Warnings
        },
    )
}

fn print_report(r: &TargetReport) -> Result<()> {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    output::line(&format!(
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
    ))?;
    if !r.backups.is_empty() {
        let mut t = output::table();
        t.set_header(vec![
            "id", "source", "started", "host", "tags", "action", "kept by",
        ]);
        for b in &r.backups {
            t.add_row(vec![
                b.id.clone(),
                b.source.clone(),
                b.started_at.replace('T', " ").chars().take(19).collect(),
                b.host.clone(),
                b.tags.join(","),
                b.action.clone(),
                b.reasons.join(", "),
            ]);
        }
        output::line(&t.to_string())?;
    }
    let g = &r.gc;
    output::line(&format!(
        "target '{}': {verb} {} backup(s); {} {} of {} pack(s) ({}), {} index object(s) rewritten and {} deleted; {} in packs remain",
        r.target,
        r.removed.len(),
        if r.dry_run { "would delete" } else { "deleted" },
        g.packs_deleted,
        g.packs_total,
        output::bytes(g.bytes_deleted),
        g.indexes_rewritten,
        g.indexes_deleted,
        output::bytes(g.bytes_remaining),
    ))?;
    for w in &r.wal {
        let what = match (&w.error, &w.note) {
            (Some(e), _) => format!("not pruned: {e}"),
            (None, Some(n)) => n.clone(),
            (None, None) => format!(
                "{verb} {} of {} WAL file(s) ({}) older than {}",
                w.removed,
                w.files,
                output::bytes(w.bytes_removed),
                w.keep_from
                    .as_deref()
                    .unwrap_or("the oldest kept base backup")
            ),
        };
        output::line(&format!(
            "target '{}': WAL of source '{}': {what}",
            r.target, w.source
        ))?;
    }
    Ok(())
}
