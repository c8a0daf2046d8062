//! `vaultctl wal`: WAL archiving for point-in-time recovery — `push`
//! (archive_command), `fetch` (restore_command), `status` and `sync`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::config::Config;
use crate::error::ExitStatus;
use crate::jobs::wal::TargetStatus;

#[derive(Subcommand, Debug)]
pub enum WalCommand {
    /// Archive one WAL file: archive_command = 'vaultctl --config FILE wal push %p'
    Push(PushArgs),
    /// Restore one WAL file: restore_command = 'vaultctl --config FILE wal fetch %f %p' (exit 1 and "not in archive" when missing)
    Fetch(FetchArgs),
    /// Last archived segment and time per target, gaps, lag; exit 1 on a critical condition
    Status(StatusArgs),
    /// Copy WAL files a target lacks (e.g. after an outage) from the targets that have them
    Sync(SourceArg),
    /// The background worker of `wal push --async` (started by it)
    #[command(hide = true)]
    Drain(DrainArgs),
}

#[derive(Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    pub source: SourceArg,
    /// PostgreSQL's pg_wal directory
    #[arg(long, value_name = "DIR")]
    pub pg_wal: PathBuf,
    /// A file the caller archives itself
    #[arg(long, value_name = "NAME")]
    pub skip: Option<String>,
}

#[derive(Args, Debug)]
pub struct SourceArg {
    /// The postgres-physical source (needed when several are configured)
    #[arg(long)]
    pub source: Option<String>,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The WAL file (PostgreSQL's %p)
    pub path: PathBuf,
    #[command(flatten)]
    pub source: SourceArg,
    /// Archive ahead: a background worker pushes every WAL file PostgreSQL has ready, so later calls return at once
    #[arg(long = "async")]
    pub asynchronous: bool,
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// The WAL file name wanted (PostgreSQL's %f)
    pub name: String,
    /// Where to write it (PostgreSQL's %p)
    pub path: PathBuf,
    #[command(flatten)]
    pub source: SourceArg,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub source: SourceArg,
    /// Archiving older than this is a critical condition (e.g. 15m, 1h)
    #[arg(long, default_value = "1h", value_name = "AGE")]
    pub max_lag: String,
}

pub fn run(ctx: &Ctx, cmd: WalCommand) -> Result<ExitStatus> {
    let config = ctx.config()?;
    match cmd {
        WalCommand::Push(a) => push(ctx, &config, a),
        WalCommand::Fetch(a) => {
            let source = a.source.source.as_deref();
            match crate::jobs::wal::fetch(&config, source, &a.name, &a.path)? {
                Some(target) => {
                    tracing::info!("restored {} from target '{target}'", a.name);
                    Ok(ExitStatus::Success)
                }
                None => {
                    if ctx.global.quiet == 0 {
                        eprintln!(
                            "vaultctl: wal fetch: {} is not in the archive (exit 1: not an error)",
                            a.name
                        );
                    }
                    // restore_command's "not found" is any non-zero code.
                    Ok(ExitStatus::Failure)
                }
            }
        }
        WalCommand::Status(a) => status(ctx, &config, a),
        WalCommand::Drain(a) => {
            let source = a.source.source.as_deref();
            let n = crate::jobs::wal::drain(&config, source, &a.pg_wal, a.skip.as_deref())?;
            tracing::info!("archived {n} WAL file(s) ahead");
            Ok(ExitStatus::Success)
        }
        WalCommand::Sync(a) => sync(ctx, &config, a),
    }
}

/// `wal push`: archive one segment (PostgreSQL's archive_command); with
/// `--async`, take what a background worker archived ahead.
fn push(ctx: &Ctx, config: &Config, a: PushArgs) -> Result<ExitStatus> {
    let source = a.source.source.as_deref();
    let Some(outcome) = crate::jobs::wal::push(config, source, &a.path, a.asynchronous)? else {
        return Ok(ExitStatus::Success);
    };
    ctx.emit(&outcome, |o| {
        let (bytes, stored) = (output::bytes(o.bytes), output::bytes(o.stored_bytes));
        tracing::info!("{} {} ({bytes} -> {stored})", o.status, o.file);
        Ok(())
    })
}

/// `wal sync`: copy WAL a target lacks from the others.
fn sync(ctx: &Ctx, config: &Config, a: SourceArg) -> Result<ExitStatus> {
    let (report, missing) = crate::jobs::wal::sync(config, a.source.as_deref())?;
    ctx.emit(&report, |report| {
        for (t, n) in report {
            output::line(&format!("{t}: copied {n} WAL file(s)"))?;
        }
        Ok(())
    })?;
    if !missing.is_empty() {
        eprintln!("vaultctl: warning: not synced: {}", missing.join("; "));
        return Ok(ExitStatus::Warnings);
    }
    Ok(ExitStatus::Success)
}

fn status(ctx: &Ctx, config: &Config, a: StatusArgs) -> Result<ExitStatus> {
    let max_lag = crate::config::parse_duration(&a.max_lag).map_err(|e| {
        crate::error::Failure::new(ExitStatus::Usage, format!("--max-lag: {e}"))
            .with_remedy("Write an age such as 15m or 1h.")
    })?;
    let st = crate::jobs::wal::status(config, a.source.source.as_deref(), max_lag, &a.max_lag)?;
    crate::jobs::finish(config, None, crate::jobs::Ran::Other, &Ok(()));
    ctx.emit(&st, print_status)?;
    Ok(if st.critical.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn print_status(st: &crate::jobs::wal::Status) -> Result<()> {
    Columns::new()
        .col("target", |s: &TargetStatus| s.target.clone())
        .col("files", |s| s.files.to_string())
        .col("last segment", |s| output::or_dash(s.last_segment.as_ref()))
        .col("last archived", |s| {
            output::or_dash(s.last_archived_at.as_ref())
        })
        .col("lag", |s| {
            output::or_dash(
                s.lag_seconds
                    .map(|l| output::duration_ms(l.max(0) as u64 * 1000)),
            )
        })
        .col("gaps", |s| s.gaps.len().to_string())
        .col("behind primary", |s| s.behind_primary.to_string())
        .print(&st.targets)?;
    output::line(&st.lines().join("\n"))
}
