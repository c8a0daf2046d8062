//! `vaultctl restore --type pitr --tenant ID --to-time T --target-db URL`:
//! the flags, checked and handed to the tenant point-in-time restore job
//! ([`crate::jobs::tenant_pitr`]), and its outcome printed.

use anyhow::Result;

use super::restore::{RestoreArgs, TenantMode};
use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::engine::postgres::restore as pg;
use crate::engine::postgres::tenant_apply::{Action, TableDiff};
use crate::engine::postgres::{pitr, ConnInfo};
use crate::error::{fail, ExitStatus};
use crate::jobs::tenant_pitr::{self as job, Outcome, Request};

fn request(ctx: &Ctx, args: &RestoreArgs) -> Result<Request> {
    let (Some(url), Some(time)) = (&args.target_db, &args.to_time) else {
        return fail(
            ExitStatus::Usage,
            "a tenant point-in-time restore needs --tenant ID, --to-time TIMESTAMP and --target-db URL.",
            "Example: vaultctl restore --type pitr --tenant acme --to-time 2026-11-22T14:00:00Z --target-db postgresql://postgres@db/app --mode merge --reason \"bad import\"",
        );
    };
    if args.tenants.is_empty() || args.pgdata.is_some() || args.backup.is_some() {
        return fail(
            ExitStatus::Usage,
            "a point-in-time restore into --target-db puts chosen tenants back: it needs --tenant ID, and takes neither --pgdata nor a backup id (the base backup is picked by --to-time).",
            "Add --tenant ID (repeatable); name the cluster's postgres-physical source with --source when there are several.",
        );
    }
    let action = match (args.dry_run, args.mode) {
        (true, _) => Action::Diff,
        (false, Some(TenantMode::Merge)) => Action::Merge,
        (false, Some(TenantMode::Replace)) => Action::Replace,
        (false, None) => {
            return fail(
                ExitStatus::Usage,
                "say what to do with the tenants' rows as of --to-time: --mode merge, --mode replace, or --dry-run.",
                "--dry-run shows the differences first; merge brings back deleted rows and keeps the others; replace makes the tenants' rows exactly those at --to-time.",
            )
        }
    };
    Ok(Request {
        tenants: args.tenants.clone(),
        to_time: pitr::parse_target_time(time)?,
        target_db: pg::target_from_url(url, args.password_file.as_deref())?,
        action,
        source: args.source.clone(),
        tenant_source: args.tenant_source.clone(),
        work_dir: args.work_dir.clone(),
        owner: args.owner.clone(),
        pg_bin_dir: args.pg_bin_dir.clone(),
        target: args.target.clone(),
        reason: args.reason.clone(),
        identity: ctx.global.identity.clone(),
    })
}

pub fn run(ctx: &Ctx, args: &RestoreArgs) -> Result<ExitStatus> {
    let req = request(ctx, args)?;
    let config = ctx.config()?;
    let o = job::run(&ctx.job(&config, args.yes), &req)?;
    ctx.emit(&o, |o| print(o, &req.target_db))
}

fn print(o: &Outcome, target: &ConnInfo) -> Result<()> {
    for s in &o.stale_removed {
        let path = s.path.display();
        output::line(&format!("removed the stale sandbox {path} of a killed run"))?;
    }
    output::line(&o.headline())?;
    if o.mode == Action::Diff {
        Columns::new()
            .col("table", TableDiff::label)
            .col("only at the time (deleted since)", |d| {
                d.only_at_time.to_string()
            })
            .col("only now (added since)", |d| d.only_now.to_string())
            .col("differ (changed since)", |d| d.differ.to_string())
            .print(&o.applied.diff)?;
        let target = target.display();
        return output::line(&format!("dry run: nothing was written to {target}"));
    }
    let report = &o.applied.report;
    Columns::new()
        .col("table", |c: &pg::TableCount| c.table.clone())
        .col("rows at the time", |c| c.rows.to_string())
        .col("deleted first", |c| c.deleted.to_string())
        .col("inserted", |c| c.inserted.to_string())
        .col("skipped (already there)", |c| c.skipped.to_string())
        .print(&report.tables)?;
    for s in &report.sequences_advanced {
        output::line(&format!("sequence moved past the restored ids: {s}"))?;
    }
    output::line(&o.closing())
}
