//! `vaultctl sync`: copy backups a target lacks from the others
//! ([`crate::jobs::sync`]).

use anyhow::Result;
use clap::Args;

use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::error::{fail, ExitStatus};
use crate::repo::sync::SyncReport;

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Copy from this target only (default: every target)
    #[arg(long, value_name = "NAME")]
    pub from: Option<String>,
    /// Copy to this target only (default: every target)
    #[arg(long, value_name = "NAME")]
    pub to: Option<String>,
    /// Show what would be copied; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(ctx: &Ctx, args: SyncArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    for name in [&args.from, &args.to].into_iter().flatten() {
        config.target(name)?;
    }
    if args.from.is_some() && args.from == args.to {
        return fail(
            ExitStatus::Usage,
            "--from and --to name the same target.",
            "Name two different targets.",
        );
    }
    let req = crate::jobs::sync::Request {
        from: args.from,
        to: args.to,
        dry_run: args.dry_run,
    };
    let s = crate::jobs::sync::run(&config, &req)?;
    for (name, from) in &s.initialised {
        eprintln!("vaultctl: target '{name}' held no repository; copied the repository's keys and config from '{from}'");
    }
    let reports = &s.pairs;
    ctx.emit(&s.json(), |_| {
        Columns::new()
            .col("from", |r: &SyncReport| r.from.clone())
            .col("to", |r| r.to.clone())
            .col("backups", |r| r.manifests_copied.len().to_string())
            .col("packs", |r| r.packs_copied.to_string())
            .col("bytes", |r| output::bytes(r.bytes_copied))
            .col("index objects", |r| {
                (r.indexes_copied + r.indexes_written).to_string()
            })
            .col("not copied (retention)", |r| {
                r.skipped_by_retention.to_string()
            })
            .col("problems", |r| r.problems.len().to_string())
            .print(reports)?;
        if s.dry_run {
            output::line("dry run: nothing was copied")?;
        }
        Ok(())
    })?;
    for r in reports {
        for p in &r.problems {
            eprintln!("vaultctl: warning: {} → {}: {p}", r.from, r.to);
        }
    }
    for (name, why) in &s.unavailable {
        eprintln!("vaultctl: warning: target '{name}' is unavailable and was not synced: {why}");
    }
    Ok(s.status())
}
