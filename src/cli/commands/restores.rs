//! `vaultctl restores`: the restore log kept in the catalog.

use anyhow::Result;
use clap::Args;

use crate::catalog::Catalog;
use crate::cli::{output, Ctx};
use crate::error::ExitStatus;

#[derive(Args, Debug)]
pub struct RestoresArgs {
    /// At most N rows (newest first)
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn run(ctx: &Ctx, args: RestoresArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let catalog = Catalog::open(&config.catalog)?;
    let rows = catalog.restores(args.limit)?;
    if ctx.global.json {
        output::json(&rows)?;
        return Ok(ExitStatus::Success);
    }
    if rows.is_empty() {
        output::line("no restores recorded")?;
        return Ok(ExitStatus::Success);
    }
    let mut t = output::table();
    t.set_header(vec![
        "started", "backup", "type", "target", "tenants", "operator", "outcome", "rows", "reason",
    ]);
    for r in &rows {
        t.add_row(vec![
            r.started_at.replace('T', " ").chars().take(19).collect(),
            r.backup_id.clone(),
            r.kind.clone(),
            r.target.clone(),
            r.tenants.join(","),
            r.operator.clone(),
            match &r.error {
                Some(e) if r.outcome == "failed" => {
                    format!("failed: {}", e.chars().take(80).collect::<String>())
                }
                _ => r.outcome.clone(),
            },
            r.rows.map(|n| n.to_string()).unwrap_or_default(),
            r.reason.clone().unwrap_or_default(),
        ]);
    }
    output::line(&t.to_string())?;
    Ok(ExitStatus::Success)
}
