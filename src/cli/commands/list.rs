//! `vaultctl list`: the backups in the catalog.

use anyhow::Result;
use clap::Args;

use crate::catalog::{BackupFilter, Catalog};
use crate::cli::{output, Ctx};
use crate::error::ExitStatus;

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long)]
    pub source: Option<String>,
    /// files, command
    #[arg(long)]
    pub kind: Option<String>,
    /// running, completed or failed
    #[arg(long, value_parser = ["running", "completed", "failed"])]
    pub status: Option<String>,
    #[arg(long)]
    pub tag: Option<String>,
    /// Started at or after (RFC 3339, a date, or an age such as 7d)
    #[arg(long)]
    pub since: Option<String>,
    /// Started before (RFC 3339, a date, or an age such as 7d)
    #[arg(long)]
    pub until: Option<String>,
    /// At most N rows (newest first)
    #[arg(long)]
    pub limit: Option<usize>,
    /// With --limit: which page (from 1)
    #[arg(long, default_value_t = 1, requires = "limit")]
    pub page: usize,
    /// The restore log instead of backups (the same as `vaultctl restores`)
    #[arg(long, conflicts_with_all = ["source", "kind", "status", "tag", "since", "until", "page"])]
    pub restores: bool,
}

pub fn run(ctx: &Ctx, args: ListArgs) -> Result<ExitStatus> {
    if args.restores {
        return super::restores::run(ctx, super::restores::RestoresArgs { limit: args.limit });
    }
    let config = ctx.config()?;
    let catalog = Catalog::open(&config.catalog)?;
    catalog.reap_interrupted(&crate::repo::hostname(), &crate::clock::now_rfc3339())?;
    let filter = BackupFilter {
        source: args.source,
        kind: args.kind,
        status: args.status,
        tag: args.tag,
        since: args
            .since
            .as_deref()
            .map(output::parse_time_arg)
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(output::parse_time_arg)
            .transpose()?,
        limit: args.limit,
        offset: args
            .limit
            .map(|l| l * args.page.saturating_sub(1))
            .unwrap_or(0),
    };
    let rows = catalog.list(&filter)?;
    if ctx.global.json {
        output::json(&rows)?;
        return Ok(ExitStatus::Success);
    }
    if rows.is_empty() {
        output::line("no backups match")?;
        return Ok(ExitStatus::Success);
    }
    let mut t = output::table();
    t.set_header(vec![
        "id",
        "source",
        "kind",
        "status",
        "started",
        "duration",
        "size",
        "new stored",
        "targets",
        "tags",
    ]);
    for r in &rows {
        t.add_row(vec![
            r.id.clone(),
            r.source.clone(),
            r.kind.clone(),
            r.status.clone(),
            r.started_at.replace('T', " ").chars().take(19).collect(),
            r.duration_ms.map(output::duration_ms).unwrap_or_default(),
            output::bytes(r.bytes),
            output::bytes(r.stored_bytes),
            r.targets.join(","),
            r.tags.join(","),
        ]);
    }
    output::line(&t.to_string())?;
    Ok(ExitStatus::Success)
}
