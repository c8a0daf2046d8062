//! `vaultctl prune`: apply each target's retention policy, then delete the
//! packs no backup needs (safe while backups run; see docs/FORMAT.md).

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::error::ExitStatus;
use crate::repo::prune::{BackupDecision, TargetReport};

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
    ctx.emit(&o.json(), |_| o.reports.iter().try_for_each(print_report))?;
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
    let (policy, gc, wal) = crate::jobs::prune::report_lines(r);
    output::line(&policy)?;
    if !r.backups.is_empty() {
        Columns::new()
            .col("id", |b: &BackupDecision| b.id.clone())
            .col("source", |b| b.source.clone())
            .col("started", |b| output::short_time(&b.started_at))
            .col("host", |b| b.host.clone())
            .col("tags", |b| b.tags.join(","))
            .col("action", |b| b.action.clone())
            .col("kept by", |b| b.reasons.join(", "))
            .print(&r.backups)?;
    }
    output::line(&gc)?;
    wal.iter().try_for_each(|l| output::line(l))
}
