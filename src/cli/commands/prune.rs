//! `vaultctl prune`: apply each target's retention policy, then delete the
//! packs no backup needs (safe while backups run; see docs/FORMAT.md).

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::error::ExitStatus;
use crate::repo::prune::TargetReport;

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
    let o = crate::jobs::prune::run(
        &config,
        args.target.as_deref(),
        args.dry_run,
        args.lock_wait,
    )?;
    let target_error = |t: &str, e: String| serde_json::json!({"target": t, "error": e});
    if ctx.global.json {
        output::json(&serde_json::json!({
            "dry_run": o.dry_run,
            "targets": o.reports,
            "unavailable": o.unavailable.iter().map(|(t, why)| target_error(t, why.clone())).collect::<Vec<_>>(),
            "errors": o.errors.iter().map(|(t, e)| target_error(t, crate::error::paragraph(e))).collect::<Vec<_>>(),
        }))?;
    } else {
        for r in &o.reports {
            print_report(r)?;
        }
    }
    for (name, why) in &o.unavailable {
        eprintln!("vaultctl: warning: target '{name}' is unavailable and was not pruned: {why}");
    }
    for r in &o.reports {
        for p in &r.problems {
            eprintln!("vaultctl: warning: target '{}': {p}", r.target);
        }
    }
    for (t, e) in &o.errors {
        eprintln!(
            "vaultctl: error: prune of target '{t}' failed: {}",
            crate::error::paragraph(e)
        );
    }
    Ok(o.exit_status())
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
        Columns::new()
            .col("id", |b: &crate::repo::prune::BackupDecision| b.id.clone())
            .col("source", |b| b.source.clone())
            .col("started", |b| output::short_time(&b.started_at))
            .col("host", |b| b.host.clone())
            .col("tags", |b| b.tags.join(","))
            .col("action", |b| b.action.clone())
            .col("kept by", |b| b.reasons.join(", "))
            .print(&r.backups)?;
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
