//! `vaultctl list`: the backups in the catalog.

use anyhow::Result;
use clap::Args;

use crate::catalog::{BackupFilter, Catalog};
use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::error::ExitStatus;

/// Rows a page when `list` pages (on a terminal, or with `--page`).
pub const PAGE_ROWS: usize = 25;

#[derive(Args, Debug)]
#[command(
    after_help = "On a terminal `list` shows 25 rows a page (newest first) and says how to get the next page; piped, it prints every row unless --limit or --page is given. --json is unpaged unless --limit is given."
)]
pub struct ListArgs {
    /// Only backups of this source (a [[source]] name, or the --name of `backup files`/`backup command`)
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Only this kind: postgres (logical dumps and tenant exports), postgres-physical (base backups), files, command
    #[arg(long, value_name = "KIND", value_parser = ["postgres", "postgres-physical", "files", "command"])]
    pub kind: Option<String>,
    /// running, completed or failed
    #[arg(long, value_parser = ["running", "completed", "failed"])]
    pub status: Option<String>,
    /// Only backups carrying this tag (`backup --tag`)
    #[arg(long)]
    pub tag: Option<String>,
    /// Only backups holding this tenant's rows: its tenant exports and the full dumps of a source with [source.tenants]
    #[arg(long, value_name = "ID")]
    pub tenant: Option<String>,
    /// Started at or after (RFC 3339, a date, or an age such as 7d)
    #[arg(long)]
    pub since: Option<String>,
    /// Started before (RFC 3339, a date, or an age such as 7d)
    #[arg(long)]
    pub until: Option<String>,
    /// At most N rows a page (newest first); in JSON, at most N rows
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub limit: Option<usize>,
    /// Which page (from 1) of --limit rows, or of 25 rows without --limit
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub page: Option<usize>,
    /// The restore log instead of backups (the same as `vaultctl restores`)
    #[arg(long, conflicts_with_all = ["source", "kind", "status", "tag", "tenant", "since", "until", "page"])]
    pub restores: bool,
}

/// The page size: --limit; else 25 rows on a terminal or with --page
/// (never for --json, which is unpaged unless --limit).
fn page_rows(
    limit: Option<usize>,
    page: Option<usize>,
    json: bool,
    terminal: bool,
) -> Option<usize> {
    match limit {
        Some(l) => Some(l),
        None if json => None,
        None if terminal || page.is_some() => Some(PAGE_ROWS),
        None => None,
    }
}

/// The footer under a page: "page 1 of 4 — `--page 2`".
pub fn page_footer(page: usize, pages: usize) -> Option<String> {
    if pages <= 1 {
        return None;
    }
    Some(if page < pages {
        format!("page {page} of {pages} — `--page {}`", page + 1)
    } else {
        format!("page {page} of {pages}")
    })
}

pub fn run(ctx: &Ctx, args: ListArgs) -> Result<ExitStatus> {
    if args.restores {
        return super::restores::run(
            ctx,
            super::restores::RestoresArgs {
                limit: args.limit,
                command: None,
            },
        );
    }
    let config = ctx.config()?;
    let catalog = Catalog::open(&config.catalog)?;
    catalog.reap_interrupted(&crate::repo::hostname(), &crate::clock::now_rfc3339())?;
    use std::io::IsTerminal;
    let rows_per_page = page_rows(
        args.limit,
        args.page,
        ctx.global.json,
        std::io::stdout().is_terminal(),
    );
    let page = args.page.unwrap_or(1);
    let mut filter = filter(args, config.clock.now())?;
    let pages = match rows_per_page {
        Some(n) => {
            filter.limit = Some(n);
            filter.offset = n * (page - 1);
            (catalog.count(&filter)? as usize).div_ceil(n)
        }
        None => 1,
    };
    let rows = catalog.list(&filter)?;
    ctx.emit(&rows, |rows| {
        if rows.is_empty() {
            return output::line(&if page > 1 && pages > 0 {
                format!("no backups on page {page}: there are {pages} pages")
            } else {
                "no backups match".to_string()
            });
        }
        print_rows(rows)?;
        page_footer(page, pages).map_or(Ok(()), |f| output::line(&f))
    })
}

/// The catalog filter of `list`'s options (times parsed; no paging yet).
fn filter(args: ListArgs, now: time::OffsetDateTime) -> Result<BackupFilter> {
    let time = |t: Option<String>| {
        t.as_deref()
            .map(|t| output::parse_time_arg(t, now))
            .transpose()
    };
    Ok(BackupFilter {
        source: args.source,
        kind: args.kind,
        status: args.status,
        tag: args.tag,
        tenant: args.tenant,
        since: time(args.since)?,
        until: time(args.until)?,
        limit: None,
        offset: 0,
    })
}

fn print_rows(rows: &[crate::catalog::BackupRow]) -> Result<()> {
    Columns::new()
        .col("id", |r: &crate::catalog::BackupRow| r.id.clone())
        .col("source", |r| r.source.clone())
        .col("kind", |r| r.kind.clone())
        .col("status", |r| r.status.clone())
        .col("started", |r| output::short_time(&r.started_at))
        .col("duration", |r| {
            r.duration_ms.map(output::duration_ms).unwrap_or_default()
        })
        .col("size", |r| output::bytes(r.bytes))
        .col("new stored", |r| output::bytes(r.stored_bytes))
        .col("targets", |r| r.targets.join(","))
        .col("tags", |r| r.tags.join(","))
        .print(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_rules() {
        assert_eq!(page_rows(None, None, false, true), Some(PAGE_ROWS));
        assert_eq!(page_rows(None, None, false, false), None);
        assert_eq!(page_rows(None, Some(2), false, false), Some(PAGE_ROWS));
        assert_eq!(page_rows(None, Some(2), true, true), None);
        assert_eq!(page_rows(Some(5), None, true, false), Some(5));
        assert_eq!(page_footer(1, 1), None);
        assert_eq!(page_footer(1, 4).unwrap(), "page 1 of 4 — `--page 2`");
        assert_eq!(page_footer(4, 4).unwrap(), "page 4 of 4");
    }
}
