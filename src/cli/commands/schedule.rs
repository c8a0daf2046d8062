//! `vaultctl schedule`: show schedules (or crontab lines) and install
//! systemd timers for scheduled sources.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::cli::{output, Ctx};
use crate::error::{fail, ExitStatus};
use crate::ops::{self, health, units};

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Show each source's schedule and next run (UTC), or crontab lines
    Show(ShowArgs),
    /// Write a .service and a .timer per scheduled source
    Install(InstallArgs),
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Print crontab lines instead of the table
    #[arg(long)]
    pub cron: bool,
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
    let scheduled: Vec<_> = config
        .sources
        .iter()
        .filter(|s| s.schedule.is_some())
        .collect();
    match cmd {
        ScheduleCommand::Show(a) => {
            if a.cron {
                output::line(units::crontab(&config, &binary(a.binary)?).trim_end())?;
                return Ok(ExitStatus::Success);
            }
            let now = config.clock.now();
            let rows: Vec<serde_json::Value> = config
                .sources
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "source": s.name,
                        "schedule": s.schedule.as_ref().map(|x| x.text.clone()),
                        "on_calendar": s.schedule.as_ref().map(|x| x.on_calendar()),
                        "next_run": s.schedule.as_ref().and_then(|x| x.next_after(now)).map(crate::clock::format),
                        "stale_after_secs": health::stale_threshold(s).map(|d| d.as_secs()),
                        "healthcheck_url": s.healthcheck_url.is_some(),
                    })
                })
                .collect();
            if ctx.global.json {
                output::json(&rows)?;
                return Ok(ExitStatus::Success);
            }
            let mut t = output::table();
            t.set_header(vec![
                "source",
                "schedule",
                "next run (UTC)",
                "stale after",
                "OnCalendar",
            ]);
            for s in &config.sources {
                t.add_row(vec![
                    s.name.clone(),
                    s.schedule
                        .as_ref()
                        .map(|x| x.text.clone())
                        .unwrap_or_else(|| "-".into()),
                    s.schedule
                        .as_ref()
                        .and_then(|x| x.next_after(now))
                        .map(crate::clock::format)
                        .unwrap_or_else(|| "-".into()),
                    health::stale_threshold(s)
                        .map(|d| crate::clock::human(d.as_secs()))
                        .unwrap_or_else(|| "-".into()),
                    s.schedule
                        .as_ref()
                        .map(|x| x.on_calendar().join(" | "))
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            output::line(&t.to_string())?;
            Ok(ExitStatus::Success)
        }
        ScheduleCommand::Install(a) => {
            let physical = units::physical_sources(&config);
            if scheduled.is_empty() && physical.is_empty() {
                return fail(
                    ExitStatus::Usage,
                    "no source in the config has a schedule.",
                    "Add schedule = \"daily\" (or \"*-*-* 02:00:00\", \"Mon..Fri 01:30\", …) to the [[source]] entries to schedule.",
                );
            }
            let bin = binary(a.binary)?;
            std::fs::create_dir_all(&a.systemd)
                .with_context(|| format!("cannot create {}", a.systemd.display()))?;
            let mut written = Vec::new();
            let backups = scheduled.iter().map(|s| {
                (
                    units::unit_name(&s.name),
                    units::service(&config, s, &bin),
                    units::timer(s),
                )
            });
            let walchecks = physical.iter().map(|s| {
                (
                    units::walcheck_unit_name(&s.name),
                    units::walcheck_service(&config, s, &bin),
                    units::walcheck_timer(s),
                )
            });
            for (base, service, timer) in backups.chain(walchecks) {
                for (ext, text) in [("service", service), ("timer", timer)] {
                    let path = a.systemd.join(format!("{base}.{ext}"));
                    ops::metrics::write_atomic(&path, text.as_bytes())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    written.push(path);
                }
            }
            if ctx.global.json {
                output::json(&written)?;
            } else {
                for p in &written {
                    output::line(&format!("wrote {}", p.display()))?;
                }
                if ctx.global.quiet == 0 {
                    eprintln!("vaultctl: enable with `systemctl daemon-reload && systemctl enable --now vaultctl-backup-SOURCE.timer` for each source (and vaultctl-walcheck-SOURCE.timer for each postgres-physical source).");
                }
            }
            Ok(ExitStatus::Success)
        }
    }
}
