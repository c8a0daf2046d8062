//! `vaultctl backup`: configured sources, ad-hoc files, or a command's stdout.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::catalog::Catalog;
use crate::cli::{output, Ctx};
use crate::config::Config;
use crate::engine::postgres::tenants::Selection as Tenants;
use crate::error::{fail, ExitStatus};
use crate::jobs::backup::{Event, Selection};
use crate::ops;
use crate::repo::backup::BackupOutcome;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub adhoc: Option<AdHoc>,
    /// Configured sources to back up
    pub sources: Vec<String>,
    /// Back up every configured source
    #[arg(long)]
    pub all: bool,
    /// Tag the backup (repeatable)
    #[arg(long = "tag", global = true, value_name = "TAG")]
    pub tags: Vec<String>,
    /// A note stored (encrypted) with the backup
    #[arg(long, global = true)]
    pub note: Option<String>,
    /// postgres sources: back up only this tenant's rows (repeatable; one artifact per tenant)
    #[arg(long = "tenant", value_name = "ID", conflicts_with = "all_tenants")]
    pub tenants: Vec<String>,
    /// postgres sources: back up every tenant's rows, one artifact per tenant, from one snapshot
    #[arg(long)]
    pub all_tenants: bool,
    /// Back up later instead of now: a one-shot kept in the catalog and run by `vaultctl schedule run-due` (RFC 3339, a UTC `2026-12-01 02:00`, or a delay such as 2h)
    #[arg(long, value_name = "TIME", conflicts_with_all = ["all", "all_tenants"])]
    pub at: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AdHoc {
    /// Back up files and directories (modes, owners, mtimes, symlinks)
    Files {
        /// Files and directories to back up
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Source name to record (default: the first path's base name)
        #[arg(long)]
        name: Option<String>,
    },
    /// Back up a command's standard output; its exit status decides success
    Command {
        /// Source name to record
        #[arg(long)]
        name: String,
        /// `stream` (restore with --stdout) or `tar` (stdout is a tar archive; restore with --to DIR)
        #[arg(long, default_value = "stream", value_parser = ["stream", "tar"])]
        format: String,
        /// The command and its arguments, after `--`
        #[arg(last = true, required = true, value_name = "CMD")]
        argv: Vec<String>,
    },
}

pub fn run(ctx: &Ctx, args: BackupArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    if args.adhoc.is_some() && (args.all_tenants || !args.tenants.is_empty()) {
        return fail(
            ExitStatus::Usage,
            "--tenant and --all-tenants apply to configured postgres sources only.",
            "Name a postgres source: `vaultctl backup SOURCE --tenant ID`.",
        );
    }
    if let Some(at) = &args.at {
        return schedule_one_shot(ctx, &config, &args, at);
    }
    let what = match &args.adhoc {
        Some(AdHoc::Files { paths, name }) => Selection::Files {
            paths,
            name: name.as_deref(),
        },
        Some(AdHoc::Command { name, format, argv }) => Selection::Command {
            name,
            argv,
            tar: format == "tar",
        },
        None => Selection::Configured {
            names: &args.sources,
            all: args.all,
            tenants: if args.all_tenants {
                Some(Tenants::All)
            } else if !args.tenants.is_empty() {
                Some(Tenants::Ids(args.tenants.clone()))
            } else {
                None
            },
        },
    };
    let planned = crate::jobs::backup::plan(&config, what)?;
    let mut on = |e: Event| -> Result<()> {
        match e {
            Event::Unavailable(name, why) => eprintln!(
                "vaultctl: warning: target '{name}' is unavailable and will miss this backup: {why}"
            ),
            Event::Done(outcome) => {
                print_outcome(ctx, outcome)?;
                for f in &outcome.failed_targets {
                    eprintln!(
                        "vaultctl: warning: backup {} of '{}' is missing on target '{}': {} Run the backup again when the target is back; the other targets hold a complete copy.",
                        outcome.id, outcome.source, f.target, f.error
                    );
                }
            }
            Event::Failed(name, e) => eprintln!(
                "vaultctl: error: backup of '{name}' failed: {}",
                crate::error::paragraph(e)
            ),
        }
        Ok(())
    };
    crate::jobs::backup::run(
        &ctx.job(&config, true),
        planned,
        &args.tags,
        args.note.as_deref(),
        &mut on,
    )
}

/// `backup SOURCE… --at TIME`: records a one-shot for `schedule run-due`.
fn schedule_one_shot(
    ctx: &Ctx,
    config: &Config,
    args: &BackupArgs,
    at: &str,
) -> Result<ExitStatus> {
    if args.adhoc.is_some() || args.sources.is_empty() {
        return fail(
            ExitStatus::Usage,
            "--at schedules configured sources only.",
            "Name the sources: `vaultctl backup SOURCE... --at TIME`.",
        );
    }
    for name in &args.sources {
        config.source(name)?;
    }
    let due = ops::oneshot::parse_at(at, config.clock.now())?;
    let catalog = Catalog::open(&config.catalog)?;
    let o = ops::oneshot::add(
        &catalog,
        &crate::catalog::OneShotNew {
            sources: &args.sources,
            tenants: &args.tenants,
            tags: &args.tags,
            note: args.note.as_deref(),
            due_at: &crate::clock::format(due),
            created_at: &config.clock.now_str(),
            created_by: &crate::jobs::operator(),
        },
    )?;
    ctx.emit(&o, |o| {
        output::line(&format!(
            "scheduled one-shot backup {} of {} at {} (UTC); `vaultctl schedule run-due` runs it (installed by `vaultctl schedule install` or `schedule show --cron`); `vaultctl schedule cancel {}` cancels it",
            o.id,
            o.sources.join(", "),
            o.due_at,
            o.id
        ))
    })
}

fn print_outcome(ctx: &Ctx, o: &BackupOutcome) -> Result<()> {
    if ctx.global.json {
        return output::line(&serde_json::to_string(o)?);
    }
    output::line(&format!(
        "backup {} source={} bytes={} ({}) new_stored={} ({}) duration={} speed={:.1} MB/s targets={}{}",
        o.id,
        o.source,
        o.bytes,
        output::bytes(o.bytes),
        o.stored_bytes,
        output::bytes(o.stored_bytes),
        output::duration_ms(o.duration_ms),
        o.mb_per_s,
        o.targets.join(","),
        if o.failed_targets.is_empty() {
            String::new()
        } else {
            format!(" MISSING={}", o.failed_targets.iter().map(|f| f.target.as_str()).collect::<Vec<_>>().join(","))
        }
    ))
}
