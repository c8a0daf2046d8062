//! `vaultctl dr`: the disaster-recovery runbook. The work is in
//! [`crate::jobs::dr`]; this module reads the flags and prints.
//!
//! * `plan`: the runbook as checks, each pass/fail/unknown; exits 1 when a
//!   check DR needs fails.
//! * `run`: a verified full restore of a source's backup, with the achieved
//!   RTO and a Markdown report.
//! * `drill`: the same into a scratch database that is created and dropped.
//! * `history`: DR runs and drills.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::catalog::{Catalog, DrRunRow};
use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::engine::postgres as pg;
use crate::error::{fail, ExitStatus};
use crate::jobs::dr::{self as job, DrillRequest, Mode, PlanRequest, RunRequest};

#[derive(Subcommand, Debug)]
pub enum DrCommand {
    /// The DR runbook as checks and steps, each pass/fail/unknown (exit 1 when one DR needs fails)
    Plan(PlanArgs),
    /// Restore a source's latest verified backup into a database and check it (records the RTO)
    Run(RunArgs),
    /// Test restore into a scratch database (created and dropped); alerts when it fails
    Drill(DrillArgs),
    /// DR runs and drills, newest first
    History(HistoryArgs),
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Only this source (default: every postgres source in the config)
    #[arg(long)]
    pub source: Option<String>,
    /// Also check that this database server is reachable (where `dr run` would restore)
    #[arg(long, value_name = "URL")]
    pub target_db: Option<String>,
    /// A file holding the password of --target-db's role (else PGPASSWORD or PGPASSFILE; never in the URL)
    #[arg(long, value_name = "FILE", requires = "target_db")]
    pub password_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The source whose backup to restore
    #[arg(long)]
    pub source: String,
    /// The database to restore into (created when missing; must be empty), postgresql://USER@HOST:PORT/DB
    #[arg(long, value_name = "URL")]
    pub target_db: String,
    /// A file holding the password of --target-db's role (else PGPASSWORD or PGPASSFILE; never in the URL)
    #[arg(long, value_name = "FILE", requires = "target_db")]
    pub password_file: Option<PathBuf>,
    /// Why (kept in the restore log and the DR history)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Backup id or prefix (default: the latest verified, else the latest completed)
    #[arg(long)]
    pub backup: Option<String>,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Write a Markdown report of every step with timings
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Ignored, accepted so that older scripts and timers still run: DR restores are logical, over the PostgreSQL protocol, and run no client program (psql was needed once)
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
    /// Count every restored table's rows with count(*) (slower: reads the whole database again) instead of taking the rows the server acknowledged for each COPY
    #[arg(long)]
    pub count_rows: bool,
}

#[derive(Args, Debug)]
pub struct DrillArgs {
    /// The source whose latest backup to test
    #[arg(long)]
    pub source: String,
    /// The scratch database to create, restore into and drop (must not exist; default: the source's [source.drill] scratch_db, else vaultctl_drill_SOURCE on the source's server)
    #[arg(long, value_name = "URL")]
    pub scratch_db: Option<String>,
    /// A file holding the password of --scratch-db's role (else PGPASSWORD or PGPASSFILE; never in the URL)
    #[arg(long, value_name = "FILE", requires = "scratch_db")]
    pub password_file: Option<PathBuf>,
    /// Write a Markdown report of every step with timings
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Ignored, accepted so that older scripts and timers still run: DR restores are logical, over the PostgreSQL protocol, and run no client program (psql was needed once)
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
    /// Count every restored table's rows with count(*) (slower: reads the whole database again) instead of taking the rows the server acknowledged for each COPY
    #[arg(long)]
    pub count_rows: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// At most this many entries
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Only runs or only drills
    #[arg(long, value_parser = ["run", "drill"])]
    pub kind: Option<String>,
}

pub fn run(ctx: &Ctx, cmd: DrCommand) -> Result<ExitStatus> {
    match cmd {
        DrCommand::Plan(a) => plan(ctx, a),
        DrCommand::Run(a) => {
            if !a.yes && (!std::io::stdin().is_terminal() || !std::io::stderr().is_terminal()) {
                return fail(
                    ExitStatus::Usage,
                    format!("`dr run` restores into {} and needs confirmation, but there is no terminal to ask on.", pg::redact_url(&a.target_db)),
                    "Check the target, then run it again with --yes.",
                );
            }
            let yes = a.yes;
            let mode = Mode::Run(RunRequest {
                source: a.source,
                target_db: a.target_db,
                password_file: a.password_file,
                reason: a.reason,
                backup: a.backup,
                report: a.report,
                pg_bin_dir: a.pg_bin_dir,
                count_rows: a.count_rows,
            });
            execute(ctx, &mode, yes)
        }
        DrCommand::Drill(a) => {
            let mode = Mode::Drill(DrillRequest {
                source: a.source,
                scratch_db: a.scratch_db,
                password_file: a.password_file,
                report: a.report,
                pg_bin_dir: a.pg_bin_dir,
                count_rows: a.count_rows,
            });
            execute(ctx, &mode, true)
        }
        DrCommand::History(a) => history(ctx, a),
    }
}

fn plan(ctx: &Ctx, args: PlanArgs) -> Result<ExitStatus> {
    let req = PlanRequest {
        source: args.source,
        target_db: args.target_db.map(|u| (u, args.password_file)),
    };
    let plan = job::plan(ctx.config(), &req);
    ctx.emit(&plan, |plan| {
        Columns::new()
            .col("", |(i, _): &(usize, &job::Check)| (i + 1).to_string())
            .col("step", |(_, c)| c.step.clone())
            .col("status", |(_, c)| c.status_text())
            .col("detail", |(_, c)| c.detail.clone())
            .print(&plan.checks.iter().enumerate().collect::<Vec<_>>())?;
        output::line(if plan.ready {
            "DR plan: ready"
        } else {
            "DR plan: NOT READY — fix the failed steps marked (needed)"
        })
    })?;
    Ok(if plan.ready {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn execute(ctx: &Ctx, mode: &Mode, yes: bool) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let mut r = job::execute(&ctx.job(&config, yes), mode)?;
    ctx.emit(&r.json(), |_| print(&r))?;
    match r.failure.take() {
        Some(e) => Err(e),
        None => Ok(ExitStatus::Success),
    }
}

fn print(r: &job::Report) -> Result<()> {
    Columns::new()
        .col("step", |s: &job::Step| s.step.clone())
        .col("result", |s| if s.ok { "ok" } else { "FAILED" }.to_string())
        .col("time", |s| output::duration_ms(s.ms))
        .col("detail", |s| s.detail.clone())
        .print(&r.steps)?;
    if let Some(line) = r.checks_line() {
        output::line(&line)?;
    }
    for w in r.outcome.verification.iter().flat_map(|v| &v.warnings) {
        eprintln!("vaultctl: warning: {w}");
    }
    if let Some(line) = r.success_line() {
        output::line(&line)?;
    }
    if let Some(f) = &r.report_file {
        output::line(&format!("report written to {}", f.display()))?;
    }
    Ok(())
}

fn history(ctx: &Ctx, args: HistoryArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let catalog = Catalog::open(&config.catalog)?;
    let rows = catalog.dr_runs(args.kind.as_deref(), Some(args.limit))?;
    ctx.emit(&rows, |rows| {
        if rows.is_empty() {
            return output::line(
                "no DR runs or drills yet (`vaultctl dr drill --source S` runs one)",
            );
        }
        Columns::new()
            .col("id", |r: &DrRunRow| r.id.to_string())
            .col("kind", |r| r.kind.clone())
            .col("source", |r| r.source.clone())
            .col("backup", |r| output::or_dash(r.backup_id.as_ref()))
            .col("started", |r| r.started_at.to_string())
            .col("outcome", |r| r.outcome.clone())
            .col("RTO", |r| {
                output::or_dash(r.rto_ms.map(output::duration_ms))
            })
            .col("tables", |r| output::or_dash(r.tables))
            .col("rows", |r| output::or_dash(r.rows))
            .col("target db", |r| {
                r.target_db.clone().unwrap_or_else(|| "(scratch)".into())
            })
            .col("error", |r| {
                r.error.as_deref().map(output::clip).unwrap_or_default()
            })
            .print(rows)
    })
}
