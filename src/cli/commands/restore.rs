//! `vaultctl restore`: the flags, checked and handed to the restore job
//! ([`crate::jobs::restore`]; pitr: [`crate::jobs::pitr`]), and its
//! outcome printed. Without a backup, on a terminal: the wizard.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::{ArgGroup, Args, ValueEnum};

use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::engine::postgres::restore::{self as pg, RestoreType};
use crate::error::{fail, ExitStatus};
use crate::jobs::restore::{self as job, DbOptions, DbOutcome, Destination, Outcome, Request};

#[derive(Args, Debug, Default)]
#[command(group(ArgGroup::new("destination").args(["to", "stdout", "target_db", "pgdata"])))]
pub struct RestoreArgs {
    /// Backup id, unique id prefix, or SOURCE:latest (none, on a terminal: the restore wizard; pitr: or --source with --to-time)
    pub backup: Option<String>,
    /// Restore a files backup (or tar artifact) into this directory
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Write the backup's stream to stdout (a postgres backup: its SQL)
    #[arg(long)]
    pub stdout: bool,
    /// Write into a non-empty directory (files there are replaced)
    #[arg(long, requires = "to")]
    pub force: bool,
    /// Read from this target only (default: the first, falling back to others)
    #[arg(long)]
    pub target: Option<String>,
    /// Which artifact, when the backup holds several
    #[arg(long)]
    pub artifact: Option<String>,
    /// postgres: full (schema and data into a new or empty database), merge (missing rows into an existing one), or pitr (a physical backup plus archived WAL into --pgdata)
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<PgType>,
    /// postgres: the database to restore into, postgresql://USER@HOST:PORT/DB (password from PGPASSWORD or PGPASSFILE, never in the URL)
    #[arg(long, value_name = "URL", requires = "kind")]
    pub target_db: Option<String>,
    /// A file holding the password of --target-db's role (else PGPASSWORD or PGPASSFILE; never in the URL)
    #[arg(long, value_name = "FILE", requires = "target_db")]
    pub password_file: Option<PathBuf>,
    /// postgres: restore only this tenant's rows (repeatable), from a tenant backup or a full dump
    #[arg(long = "tenant", value_name = "ID", requires = "target_db")]
    pub tenants: Vec<String>,
    /// postgres full: create the database when it does not exist
    #[arg(long, requires = "target_db")]
    pub create: bool,
    /// postgres full: replace a non-empty database (restored into a new one, swapped in only on success)
    #[arg(long, requires = "target_db")]
    pub clean: bool,
    /// postgres full and merge: connections loading data and building indexes (merge: staging rows) in parallel (default: restore_jobs in the config, else the number of cores)
    #[arg(long, value_name = "N", requires = "target_db", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Why this restore is done (kept in the restore log)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Do not ask for confirmation before writing to a database
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// pitr: where pg_ctl and pg_controldata are (default: the source's config, else PATH); logical restores need no client programs
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
    /// pitr: the new data directory (must be empty or absent)
    #[arg(long, value_name = "DIR")]
    pub pgdata: Option<PathBuf>,
    /// pitr: recover up to this time (RFC 3339 with zone, or PostgreSQL's `2026-11-22 03:00:00+00`); with --tenant and --target-db: the time the tenants go back to
    #[arg(long, value_name = "TIMESTAMP", conflicts_with = "to_latest")]
    pub to_time: Option<String>,
    /// pitr: recover to the end of the archived WAL
    #[arg(long, requires = "pgdata")]
    pub to_latest: bool,
    /// pitr: pick the base backup of this postgres-physical source (the newest one consistent before --to-time)
    #[arg(long, value_name = "SOURCE", conflicts_with = "backup")]
    pub source: Option<String>,
    /// pitr: start the server with pg_ctl and wait until recovery has finished
    #[arg(long, requires = "pgdata")]
    pub start: bool,
    /// pitr, as root: the user that owns the data directory (or the tenant restore's sandbox) and runs the server (default: the owner of its parent)
    #[arg(long, value_name = "USER")]
    pub owner: Option<String>,
    /// pitr: an extra server setting for the restored cluster, NAME=VALUE (repeatable; e.g. port=5433)
    #[arg(long = "set", value_name = "NAME=VALUE", requires = "pgdata")]
    pub settings: Vec<String>,
    /// pitr with --tenant: merge (bring back rows deleted since, keep the others) or replace (the tenants' rows exactly as at --to-time, in one transaction)
    #[arg(long, value_enum, value_name = "MODE", requires = "target_db")]
    pub mode: Option<TenantMode>,
    /// pitr with --tenant: show per table the rows only at --to-time, only now, and changed; write nothing
    #[arg(long, requires = "target_db", conflicts_with = "mode")]
    pub dry_run: bool,
    /// pitr with --tenant: the postgres source whose [source.tenants] applies (default: the one whose database is --target-db's)
    #[arg(long, value_name = "NAME", requires = "target_db")]
    pub tenant_source: Option<String>,
    /// pitr with --tenant: where the sandbox cluster goes (default: sandbox/ beside the catalog); the server's user must be able to enter it
    #[arg(long, value_name = "DIR", requires = "target_db")]
    pub work_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TenantMode {
    Merge,
    Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PgType {
    Full,
    Merge,
    Pitr,
}

pub fn run(ctx: &Ctx, args: RestoreArgs) -> Result<ExitStatus> {
    if args.kind == Some(PgType::Pitr) && args.target_db.is_some() {
        return super::tenant_pitr::run(ctx, &args);
    }
    if args.pgdata.is_some() || args.kind == Some(PgType::Pitr) {
        return super::pitr::run(ctx, &args);
    }
    if args.to_time.is_some()
        || args.source.is_some()
        || args.owner.is_some()
        || args.mode.is_some()
        || args.dry_run
        || args.tenant_source.is_some()
        || args.work_dir.is_some()
    {
        return fail(
            ExitStatus::Usage,
            "--to-time, --source, --owner, --mode, --dry-run, --tenant-source and --work-dir apply to --type pitr.",
            "A point-in-time restore: --type pitr with --pgdata DIR, or with --tenant ID and --target-db URL for one tenant.",
        );
    }
    let has_destination = args.to.is_some() || args.stdout || args.target_db.is_some();
    if args.backup.is_none() || !has_destination {
        let mut missing = Vec::new();
        if args.backup.is_none() {
            missing.push("BACKUP (an id, id prefix or SOURCE:latest)");
        }
        if !has_destination {
            missing.push(
                "a destination: --target-db URL with --type full|merge, --to DIR, or --stdout",
            );
        }
        if args.backup.is_none()
            && std::io::stdin().is_terminal()
            && std::io::stderr().is_terminal()
        {
            return super::wizard::run(ctx, args);
        }
        return fail(
            ExitStatus::Usage,
            format!("restore needs {}.", missing.join(" and ")),
            "Without a terminal vaultctl never asks: give them as arguments (e.g. `vaultctl restore db:latest --type full --target-db postgresql://postgres@host/newdb --create --reason \"…\"`); on a terminal, `vaultctl restore` without a backup starts the wizard.",
        );
    }
    if args.kind.is_some() && args.target_db.is_none() {
        return fail(
            ExitStatus::Usage,
            "--type full and --type merge need --target-db.",
            "Name the database to restore into with --target-db URL.",
        );
    }
    execute(ctx, args)
}

/// The job's request for the flag form (not pitr).
fn request(args: RestoreArgs) -> Result<Request> {
    let destination = match (&args.target_db, &args.to) {
        (Some(url), _) => Destination::Database(Box::new(DbOptions {
            kind: match args.kind {
                Some(PgType::Full) => RestoreType::Full,
                Some(PgType::Merge) => RestoreType::Merge,
                _ => {
                    return fail(
                        ExitStatus::Usage,
                        "--target-db needs --type full or --type merge.",
                        "A pitr restore writes a data directory: use --pgdata DIR.",
                    )
                }
            },
            target: pg::target_from_url(url, args.password_file.as_deref())?,
            tenants: args.tenants,
            create: args.create,
            clean: args.clean,
            jobs: args.jobs.map(usize::from),
            pg_bin_dir: args.pg_bin_dir,
        })),
        _ if !args.tenants.is_empty() || args.kind.is_some() => {
            return fail(
                ExitStatus::Usage,
                "--type and --tenant need --target-db.",
                "Name the database to restore into with --target-db URL.",
            )
        }
        (None, Some(dir)) => Destination::Dir {
            path: dir.clone(),
            force: args.force,
        },
        (None, None) => Destination::Stdout,
    };
    Ok(Request {
        backup: args.backup.unwrap_or_default(),
        target: args.target,
        artifact: args.artifact,
        reason: args.reason,
        destination,
    })
}

/// The flag form, once the backup and a destination are known (the wizard
/// ends here too): runs the job and prints what it did.
pub(crate) fn execute(ctx: &Ctx, args: RestoreArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let yes = args.yes;
    let req = request(args)?;
    match job::run(&ctx.job(&config, yes), &req)? {
        Outcome::Database(o) => ctx.emit(&o, print_db),
        o @ Outcome::Files { .. } => ctx.emit(&o, |o| output::line(&o.summary())),
        o @ Outcome::Stream { .. } => {
            if ctx.global.quiet == 0 {
                eprintln!("vaultctl: {}", o.summary());
            }
            Ok(ExitStatus::Success)
        }
    }
}

fn print_db(o: &DbOutcome) -> Result<()> {
    Columns::new()
        .col("table", |c: &pg::TableCount| c.table.clone())
        .col("rows in backup", |c| c.rows.to_string())
        .col("inserted", |c| c.inserted.to_string())
        .col("skipped (already there)", |c| c.skipped.to_string())
        .print(&o.report.tables)?;
    output::line(&o.lines().join("\n"))
}
