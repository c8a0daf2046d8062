//! `vaultctl schedule`: show schedules (or crontab lines) and install
//! systemd timers for scheduled sources, verifies and DR drills.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::cli::{output, Ctx};
use crate::error::ExitStatus;
use crate::ops::{self, units};

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Show each source's schedule and next run (UTC), and those of [verify] and [source.drill], or crontab lines
    Show(ShowArgs),
    /// Write a .service and a .timer per scheduled source, verified target ([verify]) and drilled source ([source.drill]), and the one-shot runner's
    Install(InstallArgs),
    /// Run the one-shot backups that are due (what the vaultctl-oneshot timer and the crontab line call)
    RunDue,
    /// Cancel a pending one-shot backup (`backup --at`)
    Cancel {
        /// The one-shot's id (`schedule show`)
        id: i64,
    },
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Print crontab lines instead of the table
    #[arg(long, conflicts_with = "one_shots")]
    pub cron: bool,
    /// Only the pending one-shot backups (`backup --at`)
    #[arg(long)]
    pub one_shots: bool,
    /// vaultctl binary for the generated command lines (default: this one)
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Write systemd units into DIR (e.g. /etc/systemd/system)
    #[arg(long, value_name = "DIR", required = true)]
    pub systemd: PathBuf,
    /// vaultctl binary for ExecStart= (default: this one)
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

fn binary(explicit: Option<PathBuf>) -> Result<PathBuf> {
    match explicit {
        Some(b) => Ok(b),
        None => {
            let exe = std::env::current_exe().context("cannot find the vaultctl binary")?;
            Ok(std::fs::canonicalize(&exe).unwrap_or(exe))
        }
    }
}

pub fn run(ctx: &Ctx, cmd: ScheduleCommand) -> Result<ExitStatus> {
    let config = ctx.config()?;
    match cmd {
        ScheduleCommand::Show(a) => show(ctx, &config, a),
        ScheduleCommand::RunDue => run_due(ctx, &config),
        ScheduleCommand::Cancel { id } => {
            let catalog = crate::catalog::Catalog::open(&config.catalog)?;
            let o = ops::oneshot::cancel(&catalog, id, &config.clock.now_str())?;
            ctx.emit(&o, |o| {
                let sources = o.sources.join(", ");
                let line = format!(
                    "cancelled one-shot backup {} of {sources} (was due at {})",
                    o.id, o.due_at
                );
                output::line(&line)
            })
        }
        ScheduleCommand::Install(a) => {
            let written = units::install(&config, &a.systemd, &binary(a.binary)?)?;
            ctx.emit(&written, |written| {
                for p in written {
                    output::line(&format!("wrote {}", p.display()))?;
                }
                if ctx.global.quiet == 0 {
                    eprintln!("vaultctl: enable with `systemctl daemon-reload && systemctl enable --now vaultctl-backup-SOURCE.timer` for each source, vaultctl-walcheck-SOURCE.timer for each postgres-physical source, vaultctl-verify-TARGET.timer and vaultctl-drill-SOURCE.timer for scheduled verifies and drills, and vaultctl-oneshot.timer (runs the one-shot backups of `backup --at` when due).");
                }
                Ok(())
            })
        }
    }
}

/// `schedule show`: crontab lines, the pending one-shots, or every
/// scheduled job in two tables (backups, then verifies and drills).
fn show(ctx: &Ctx, config: &crate::config::Config, a: ShowArgs) -> Result<ExitStatus> {
    if a.cron {
        output::line(units::crontab(config, &binary(a.binary)?).trim_end())?;
        return Ok(ExitStatus::Success);
    }
    let now = config.clock.now();
    let catalog = crate::catalog::Catalog::open(&config.catalog)?;
    let pending = catalog.one_shots(Some("pending"))?;
    if a.one_shots {
        return ctx.emit(&pending, |p| print_one_shots(p, now));
    }
    let jobs = units::scheduled_jobs(config, now);
    ctx.emit(&jobs, |jobs| print_jobs(jobs, &pending, now))
}

/// Every scheduled job in two tables (backups, then verifies and drills),
/// and the pending one-shots.
fn print_jobs(
    jobs: &[units::ScheduledJob],
    pending: &[crate::catalog::OneShot],
    now: time::OffsetDateTime,
) -> Result<()> {
    let (backups, checks): (Vec<_>, Vec<_>) = jobs.iter().partition(|j| j.job == "backup");
    let cells = |j: &units::ScheduledJob, first: String, last: String| {
        vec![
            first,
            output::or_dash(j.schedule.as_ref()),
            output::or_dash(j.next_run.as_ref()),
            output::or_dash(j.stale_after_secs.map(crate::clock::human)),
            last,
        ]
    };
    output::print_table(
        &[
            "source",
            "schedule",
            "next run (UTC)",
            "stale after",
            "OnCalendar",
        ],
        backups.iter().map(|j| {
            let calendar = j.on_calendar.as_ref().map(|c| c.join(" | "));
            cells(j, j.subject().to_string(), output::or_dash(calendar))
        }),
    )?;
    if !checks.is_empty() {
        output::print_table(
            &["check", "schedule", "next run (UTC)", "stale after", "runs"],
            checks.iter().map(|j| {
                let command = j.command.clone().unwrap_or_default();
                cells(j, format!("{} {}", j.job, j.subject()), command)
            }),
        )?;
    }
    print_one_shots(pending, now)
}

fn print_one_shots(pending: &[crate::catalog::OneShot], now: time::OffsetDateTime) -> Result<()> {
    if pending.is_empty() {
        return output::line("pending one-shot backups: none");
    }
    let mut t = output::table();
    t.set_header(vec![
        "one-shot",
        "sources",
        "due (UTC)",
        "tenants",
        "note",
        "by",
    ]);
    for o in pending {
        let overdue = crate::clock::parse(&o.due_at).is_some_and(|d| d < now);
        t.add_row(vec![
            o.id.to_string(),
            o.sources.join(", "),
            format!("{}{}", o.due_at, if overdue { " (overdue)" } else { "" }),
            o.tenants.join(", "),
            o.note.clone().unwrap_or_default(),
            o.created_by.clone(),
        ]);
    }
    output::line(&format!(
        "pending one-shot backups (`vaultctl schedule cancel ID` cancels one):\n{t}"
    ))
}

/// `schedule run-due`: runs the due one-shots, one backup run each.
fn run_due(ctx: &Ctx, config: &crate::config::Config) -> Result<ExitStatus> {
    let catalog = crate::catalog::Catalog::open(&config.catalog)?;
    let due = ops::oneshot::take_due(config, &catalog, config.clock.now())?;
    let mut code = if due.missed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Warnings
    };
    for o in &due.missed {
        eprintln!(
            "vaultctl: warning: one-shot backup {} of {} was due at {} and was missed; it is not run late (an alert is raised)",
            o.id,
            o.sources.join(", "),
            o.due_at
        );
    }
    let mut first_error = None;
    for o in due.run {
        let started = crate::clock::now_rfc3339();
        let args = super::backup::BackupArgs {
            adhoc: None,
            sources: o.sources.clone(),
            all: false,
            tags: o.tags.clone(),
            note: o.note.clone(),
            tenants: o.tenants.clone(),
            all_tenants: false,
            at: None,
        };
        let result = super::backup::run(ctx, args);
        let error = result.as_ref().err().map(crate::error::paragraph);
        ops::oneshot::record_run(&catalog, &o, &started, error.as_deref())?;
        match result {
            Ok(c) => code = code.max(c),
            Err(e) => {
                let text = error.unwrap_or_default();
                eprintln!("vaultctl: error: one-shot backup {} failed: {text}", o.id);
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(code),
    }
}
