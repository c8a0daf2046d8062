//! `vaultctl restores`: the restore log kept in the catalog.

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::catalog::{Catalog, RestoreRow};
use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::error::ExitStatus;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RestoresArgs {
    /// At most N rows (newest first)
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(subcommand)]
    pub command: Option<RestoresCommand>,
}

#[derive(Subcommand, Debug)]
pub enum RestoresCommand {
    /// One restore's full record: backup, target, who, why, duration, per-table rows, error
    Show {
        /// The restore's id (`vaultctl restores --json` `id`)
        id: i64,
    },
}

pub fn run(ctx: &Ctx, args: RestoresArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let catalog = Catalog::open(&config.catalog)?;
    if let Some(RestoresCommand::Show { id }) = args.command {
        return show(ctx, &catalog, id);
    }
    let rows = catalog.restores(args.limit)?;
    ctx.emit(&rows, |rows| print_rows(rows))
}

fn print_rows(rows: &[RestoreRow]) -> Result<()> {
    if rows.is_empty() {
        return output::line("no restores recorded");
    }
    Columns::new()
        .col("id", |r: &RestoreRow| r.id.to_string())
        .col("started", |r| output::short_time(&r.started_at))
        .col("backup", |r| r.backup_id.clone())
        .col("type", |r| r.kind.clone())
        .col("target", |r| r.target.clone())
        .col("tenants", |r| r.tenants.join(","))
        .col("operator", |r| r.operator.clone())
        .col("outcome", |r| match &r.error {
            Some(e) if r.outcome == "failed" => format!("failed: {}", output::clip(e)),
            _ => r.outcome.clone(),
        })
        .col("rows", |r| {
            r.rows.map(|n| n.to_string()).unwrap_or_default()
        })
        .col("reason", |r| r.reason.clone().unwrap_or_default())
        .print(rows)
}

/// `restores show ID`.
fn show(ctx: &Ctx, catalog: &Catalog, id: i64) -> Result<ExitStatus> {
    let r = crate::ops::views::restore(catalog, id)?;
    ctx.emit(&r, print_restore)
}

fn print_restore(r: &RestoreRow) -> Result<()> {
    let duration = r
        .finished_at
        .as_deref()
        .and_then(crate::clock::parse)
        .zip(crate::clock::parse(&r.started_at))
        .map(|(f, s)| output::duration_ms((f - s).whole_milliseconds().max(0) as u64));
    let mut lines = vec![
        format!("restore {}: {}", r.id, r.outcome),
        format!("backup:    {} ({})", r.backup_id, r.source),
        format!("type:      {}", r.kind),
        format!("target:    {}", r.target),
        format!("operator:  {} on {}", r.operator, r.host),
        format!("reason:    {}", r.reason.as_deref().unwrap_or("-")),
        format!(
            "started:   {}   finished: {}   duration: {}",
            r.started_at,
            r.finished_at.as_deref().unwrap_or("-"),
            output::or_dash(duration)
        ),
    ];
    if !r.tenants.is_empty() {
        lines.push(format!("tenants:   {}", r.tenants.join(", ")));
    }
    if let Some(n) = r.rows {
        lines.push(format!("rows:      {n}"));
    }
    if let Some(e) = &r.error {
        lines.push(format!("error:     {e}"));
    }
    output::line(&lines.join("\n"))?;
    match &r.details {
        Some(d) => output::line(&format!(
            "details:\n{}",
            serde_json::to_string_pretty(d).unwrap_or_default()
        )),
        None => Ok(()),
    }
}
