//! `vaultctl schedule`: show schedules (or crontab lines) and install
//! systemd timers for scheduled sources, verifies and DR drills.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::cli::{output, Ctx};
use crate::error::{fail, ExitStatus};
use crate::ops::{self, health, units};

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Show each source's schedule and next run (UTC), and those of [verify] and [source.drill], or crontab lines
    Show(ShowArgs),
    /// Write a .service and a .timer per scheduled source, verified target ([verify]) and drilled source ([source.drill])
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
                        "job": "backup",
                        "source": s.name,
                        "schedule": s.schedule.as_ref().map(|x| x.text.clone()),
                        "on_calendar": s.schedule.as_ref().map(|x| x.on_calendar()),
                        "next_run": s.schedule.as_ref().and_then(|x| x.next_after(now)).map(crate::clock::format),
                        "stale_after_secs": health::stale_threshold(s).map(|d| d.as_secs()),
                        "healthcheck_url": s.healthcheck_url.is_some(),
                    })
                })
                .chain(units::checks(&config).iter().map(|j| {
                    serde_json::json!({
                        "job": j.job,
                        j.subject_key(): j.subject,
                        "schedule": j.schedule.map(|x| x.text.clone()),
                        "on_calendar": j.schedule.map(|x| x.on_calendar()),
                        "next_run": j.schedule.and_then(|x| x.next_after(now)).map(crate::clock::format),
                        "stale_after_secs": j.max_age.map(|d| d.as_secs()),
                        "command": j.args,
                    })
                }))
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
            let checks = units::checks(&config);
            if !checks.is_empty() {
                let mut t = output::table();
                t.set_header(vec![
                    "check",
                    "schedule",
                    "next run (UTC)",
                    "stale after",
                    "runs",
                ]);
                for j in &checks {
                    t.add_row(vec![
                        format!("{} {}", j.job, j.subject),
                        j.schedule
                            .map(|x| x.text.clone())
                            .unwrap_or_else(|| "-".into()),
                        j.schedule
                            .and_then(|x| x.next_after(now))
                            .map(crate::clock::format)
                            .unwrap_or_else(|| "-".into()),
                        j.max_age
                            .map(|d| crate::clock::human(d.as_secs()))
                            .unwrap_or_else(|| "-".into()),
                        j.args.clone(),
                    ]);
                }
                output::line(&t.to_string())?;
            }
            Ok(ExitStatus::Success)
        }
        ScheduleCommand::Install(a) => {
            let physical = units::physical_sources(&config);
            let verify_targets = units::verify_targets(&config);
            let drills = units::drill_sources(&config);
            if scheduled.is_empty()
                && physical.is_empty()
                && verify_targets.is_empty()
                && drills.is_empty()
            {
                return fail(
                    ExitStatus::Usage,
                    "no source in the config has a schedule.",
                    "Add schedule = \"daily\" (or \"*-*-* 02:00:00\", \"Mon..Fri 01:30\", …) to the [[source]] entries to schedule, to [verify] or to a postgres source's [source.drill].",
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
            let verifies = verify_targets.iter().map(|t| {
                (
                    units::verify_unit_name(t),
                    units::verify_service(&config, t, &bin),
                    units::verify_timer(&config, t),
                )
            });
            let drill_units = drills.iter().map(|s| {
                (
                    units::drill_unit_name(&s.name),
                    units::drill_service(&config, s, &bin),
                    units::drill_timer(s),
                )
            });
            for (base, service, timer) in
                backups.chain(walchecks).chain(verifies).chain(drill_units)
            {
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
                    eprintln!("vaultctl: enable with `systemctl daemon-reload && systemctl enable --now vaultctl-backup-SOURCE.timer` for each source (and vaultctl-walcheck-SOURCE.timer for each postgres-physical source, vaultctl-verify-TARGET.timer and vaultctl-drill-SOURCE.timer for scheduled verifies and drills).");
                }
            }
            Ok(ExitStatus::Success)
        }
    }
}
