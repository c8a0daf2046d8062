//! The four-step restore wizard: `vaultctl restore` without a backup, on a
//! terminal. 1 select backup, 2 choose restore type, 3 configure options,
//! 4 confirm by typing the target's name. Every step can go back (Esc or
//! "← Back" in lists, `<` in text fields). What to offer and how answers are
//! checked is decided in [`crate::jobs::wizard`]; this module asks and
//! renders. It ends in the flag form's code path (the choice's flags parsed
//! like a command line) and prints that command line.

use anyhow::Result;
use clap::Parser;
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::{FuzzySelect, Input, MultiSelect, Select};

use super::restore::RestoreArgs;
use crate::catalog::{BackupRow, Catalog};
use crate::cli::{output, Cli, Command, Ctx};
use crate::config::Config;
use crate::error::{fail, ExitStatus};
use crate::jobs::offers::{offers, Kind};
use crate::jobs::wizard::{self as job, Choice, Field, MODES};
use crate::repo::Repository;

const BACK: &str = "← Back";
/// Typed into a text field: go back one step.
const BACK_KEY: &str = "<";

enum Nav<T> {
    Next(T),
    Back,
}

fn theme() -> Box<dyn Theme> {
    if output::stderr_color() {
        Box::new(ColorfulTheme::default())
    } else {
        Box::new(SimpleTheme)
    }
}

fn io(e: dialoguer::Error) -> anyhow::Error {
    anyhow::anyhow!("cannot ask on the terminal: {e}")
}

fn cancelled() -> Result<ExitStatus> {
    fail(
        ExitStatus::Failure,
        "the restore was cancelled; nothing was changed.",
        "Run `vaultctl restore` again, or give the backup and destination as arguments.",
    )
}

/// A text field; `<` goes back.
fn text(theme: &dyn Theme, prompt: &str, initial: &str, required: bool) -> Result<Nav<String>> {
    let mut input = Input::<String>::with_theme(theme)
        .with_prompt(format!("{prompt} (`{BACK_KEY}` goes back)"))
        .allow_empty(!required);
    if !initial.is_empty() {
        // Enter keeps it.
        input = input.default(initial.to_string());
    }
    let v = input.interact_text().map_err(io)?;
    let v = v.trim().to_string();
    Ok(if v == BACK_KEY {
        Nav::Back
    } else {
        Nav::Next(v)
    })
}

pub fn run(ctx: &Ctx, args: RestoreArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let (repo, catalog) = crate::jobs::open(&config, args.target.as_deref())?;
    let backups = job::backups(&catalog, &repo)?;
    let mut c = Choice {
        reason: args.reason.clone().unwrap_or_default(),
        ..Default::default()
    };
    if !choose(ctx, &config, &catalog, &repo, &backups, &mut c)? {
        return cancelled();
    }
    drop((repo, catalog));
    let argv = c.argv(args.target.as_deref());
    let line = job::command_line(ctx.global.config.as_deref(), &argv);
    eprintln!("vaultctl: running: {line}");
    let code = super::restore::run(ctx, flags(&argv, args)?)?;
    eprintln!("vaultctl: next time, without the wizard:\n  {line}");
    Ok(code)
}

/// The choice's flags parsed as the command line would be, with what was
/// given on it that the wizard does not ask.
fn flags(argv: &[String], given: RestoreArgs) -> Result<RestoreArgs> {
    let cli =
        Cli::try_parse_from(std::iter::once("vaultctl").chain(argv.iter().map(|s| s.as_str())))?;
    let Command::Restore(mut a) = cli.command else {
        unreachable!("the wizard's flags are a restore")
    };
    a.password_file = a.password_file.or(given.password_file);
    a.pg_bin_dir = a.pg_bin_dir.or(given.pg_bin_dir);
    a.jobs = a.jobs.or(given.jobs);
    a.work_dir = a.work_dir.or(given.work_dir);
    Ok(a)
}

/// The four steps, with Back between them; `false` when the operator
/// cancels.
fn choose(
    ctx: &Ctx,
    config: &Config,
    catalog: &Catalog,
    repo: &Repository,
    backups: &[BackupRow],
    c: &mut Choice,
) -> Result<bool> {
    let theme = theme();
    let theme = theme.as_ref();
    let mut step = 1;
    loop {
        step = match step {
            1 => match step1(theme, catalog, backups)? {
                Nav::Next(b) => {
                    c.tenant_pitr = job::tenant_pitr(config, catalog, &b);
                    c.pick_backup(b);
                    2
                }
                Nav::Back => return Ok(false),
            },
            2 => match step2(theme, catalog, c)? {
                Nav::Next(k) => {
                    c.kind = Some(k);
                    c.prepare(catalog, repo);
                    3
                }
                Nav::Back => 1,
            },
            3 => match step3(theme, config, catalog, c)? {
                Nav::Next(()) => 4,
                Nav::Back => 2,
            },
            _ => match step4(ctx, theme, c)? {
                Nav::Next(confirmed) => return Ok(confirmed),
                Nav::Back => 3,
            },
        }
    }
}

fn step1(theme: &dyn Theme, catalog: &Catalog, backups: &[BackupRow]) -> Result<Nav<BackupRow>> {
    let items: Vec<String> = backups
        .iter()
        .map(|b| job::backup_line(catalog, b))
        .collect();
    let pick = FuzzySelect::with_theme(theme)
        .with_prompt("Step 1 of 4 — Select backup (type to search; Esc cancels)")
        .items(&items)
        .default(0)
        .interact_opt()
        .map_err(io)?;
    Ok(match pick {
        Some(i) => Nav::Next(backups[i].clone()),
        None => Nav::Back,
    })
}

fn step2(theme: &dyn Theme, catalog: &Catalog, c: &Choice) -> Result<Nav<Kind>> {
    let row = c.backup.as_ref().expect("chosen in step 1");
    let details = catalog.details(&row.id)?;
    let formats = catalog.artifact_formats(&row.id)?;
    let offers = offers(row, details.as_ref(), &formats, &c.tenant_pitr);
    let mut items: Vec<String> = offers
        .iter()
        .map(|o| match &o.unavailable {
            None => format!("{} — {}", o.kind.label(), o.kind.explain()),
            Some(why) => format!("{} — unavailable: {why}", o.kind.label()),
        })
        .collect();
    items.push(BACK.into());
    let mut default = offers
        .iter()
        .position(|o| o.unavailable.is_none())
        .unwrap_or(0);
    loop {
        let pick = Select::with_theme(theme)
            .with_prompt(format!(
                "Step 2 of 4 — Choose restore type for {} (Esc goes back)",
                row.id
            ))
            .items(&items)
            .default(default)
            .interact_opt()
            .map_err(io)?;
        match pick {
            None => return Ok(Nav::Back),
            Some(i) if i == offers.len() => return Ok(Nav::Back),
            Some(i) => match &offers[i].unavailable {
                None => return Ok(Nav::Next(offers[i].kind)),
                Some(why) => {
                    eprintln!(
                        "{} is not available for this backup: {why}.",
                        offers[i].kind.label()
                    );
                    default = i;
                }
            },
        }
    }
}

/// The answer to one field of step 3.
enum Asked {
    Next,
    Back,
    /// Invalid: ask the same field again.
    Again,
}

fn step3(theme: &dyn Theme, config: &Config, catalog: &Catalog, c: &mut Choice) -> Result<Nav<()>> {
    let row = c.backup.clone().expect("chosen in step 1");
    let kind = c.kind.expect("chosen in step 2");
    eprintln!(
        "Step 3 of 4 — Configure options ({} restore of {})",
        kind.label(),
        row.id
    );
    let in_backup = catalog.tenants_of(&row.id)?;
    // The fields of this restore type, asked in order; `<` steps back a field.
    let fields = job::fields(kind, job::running_as_root());
    let mut i = 0;
    while i < fields.len() {
        let known = match fields[i] {
            Field::Tenants => c.known_tenants(config, &in_backup),
            _ => Vec::new(),
        };
        let asked = match fields[i] {
            Field::Tenants if !known.is_empty() => ask_tenants(theme, &known, c)?,
            Field::Mode => ask_mode(theme, c)?,
            f => ask_text(theme, config, f, c)?,
        };
        match asked {
            Asked::Again => {}
            Asked::Next => i += 1,
            Asked::Back if i == 0 => return Ok(Nav::Back),
            Asked::Back => i -= 1,
        }
    }
    Ok(Nav::Next(()))
}

/// A text field, checked by the job's rules.
fn ask_text(theme: &dyn Theme, config: &Config, f: Field, c: &mut Choice) -> Result<Asked> {
    if f == Field::Time {
        eprintln!("{}", c.coverage());
    }
    let initial = c.initial(f, config);
    Ok(match text(theme, c.prompt(f), &initial, c.required(f))? {
        Nav::Back => Asked::Back,
        Nav::Next(v) => match c.set(f, v) {
            Ok(()) => Asked::Next,
            Err(why) => {
                eprintln!("{why}");
                Asked::Again
            }
        },
    })
}

/// The tenants, as a multi-select of those known.
fn ask_tenants(theme: &dyn Theme, known: &[String], c: &mut Choice) -> Result<Asked> {
    let defaults: Vec<bool> = known.iter().map(|t| c.tenants.contains(t)).collect();
    let picked = MultiSelect::with_theme(theme)
        .with_prompt(c.tenants_prompt())
        .items(known)
        .defaults(&defaults)
        .interact_opt()
        .map_err(io)?;
    let Some(picked) = picked else {
        return Ok(Asked::Back);
    };
    Ok(match c.pick_tenants(known, &picked) {
        Ok(()) => Asked::Next,
        Err(why) => {
            eprintln!("{why}");
            Asked::Again
        }
    })
}

/// A tenant restore's mode: merge, replace or dry run.
fn ask_mode(theme: &dyn Theme, c: &mut Choice) -> Result<Asked> {
    let items: Vec<&str> = MODES.iter().map(|(_, label)| *label).collect();
    let default = MODES.iter().position(|(m, _)| Some(*m) == c.mode);
    let pick = Select::with_theme(theme)
        .with_prompt(c.prompt(Field::Mode))
        .items(&items)
        .default(default.unwrap_or(0))
        .interact_opt()
        .map_err(io)?;
    Ok(match pick {
        None => Asked::Back,
        Some(i) => {
            c.mode = Some(MODES[i].0);
            Asked::Next
        }
    })
}

fn step4(ctx: &Ctx, theme: &dyn Theme, c: &Choice) -> Result<Nav<bool>> {
    let summary = c.summary()?;
    let mut t = output::table();
    // One line per row: what is dropped and kept must read as written.
    t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    t.set_header(vec!["Step 4 of 4 — Confirm", ""]);
    for (label, value) in &summary.rows {
        t.add_row(vec![label, value]);
    }
    eprintln!("{t}");
    eprintln!(
        "the same, without the wizard:\n  {}",
        job::command_line(ctx.global.config.as_deref(), &c.argv(None))
    );
    let v = Input::<String>::with_theme(theme)
        .with_prompt(format!(
            "Type the {} \"{}\" to restore (`{BACK_KEY}` goes back, anything else cancels)",
            summary.what, summary.name
        ))
        .allow_empty(true)
        .interact_text()
        .map_err(io)?;
    let v = v.trim();
    Ok(if v == BACK_KEY {
        Nav::Back
    } else {
        Nav::Next(v == summary.name)
    })
}
