//! The four-step restore wizard: `vaultctl restore` without a backup, on a
//! terminal. 1 select backup, 2 choose restore type, 3 configure options,
//! 4 confirm by typing the target's name. Every step can go back (Esc or
//! "← Back" in lists, `<` in text fields). It ends in the flag form's code
//! path ([`super::restore::execute`]) and prints the equivalent
//! non-interactive command line.

use anyhow::Result;
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::{FuzzySelect, Input, MultiSelect, Select};

use super::restore::{PgType, RestoreArgs};
use crate::catalog::{BackupFilter, BackupRow, Catalog};
use crate::cli::{output, Ctx};
use crate::config::Config;
use crate::engine::postgres::{pitr, ConnInfo};
use crate::error::{fail, ExitStatus};
use crate::jobs::offers::{offers, Kind};
use crate::jobs::pitr::Reach;

const BACK: &str = "← Back";
/// Typed into a text field: go back one step.
const BACK_KEY: &str = "<";

/// What the operator chose.
#[derive(Debug, Clone, Default)]
struct Choice {
    backup: Option<BackupRow>,
    kind: Option<Kind>,
    target_db: String,
    dir: String,
    tenants: Vec<String>,
    to_time: String,
    /// Point-in-time: start the recovered server on this port (empty: don't).
    port: String,
    /// Point-in-time, as root: the user that owns the data directory.
    owner: String,
    reason: String,
}

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
    let here: Vec<String> = repo.stores.iter().map(|s| s.name.clone()).collect();
    // Completed backups held by a target this machine reaches, newest first.
    let backups: Vec<BackupRow> = catalog
        .list(&BackupFilter {
            status: Some("completed".into()),
            ..Default::default()
        })?
        .into_iter()
        .filter(|b| b.targets.is_empty() || b.targets.iter().any(|t| here.contains(t)))
        .collect();
    if backups.is_empty() {
        return fail(
            ExitStatus::Usage,
            "the catalog lists no completed backup that a reachable target holds.",
            "On a new machine run `vaultctl catalog rebuild` first (or `vaultctl dr run`); check `vaultctl list`.",
        );
    }
    let Some(c) = choose(ctx, &config, &catalog, &repo, &backups, &args)? else {
        return cancelled();
    };
    let row = c.backup.clone().expect("chosen");
    let flags = choice_args(args, &row, &c);
    let line = command_line(ctx, &flags);
    eprintln!("vaultctl: running: {line}");
    let code = if c.kind == Some(Kind::Pitr) {
        super::pitr::run(ctx, &flags)?
    } else {
        super::restore::execute(ctx, flags)?
    };
    eprintln!("vaultctl: next time, without the wizard:\n  {line}");
    Ok(code)
}

/// The four steps, with Back between them; `None` when the operator
/// cancels.
fn choose(
    ctx: &Ctx,
    config: &Config,
    catalog: &Catalog,
    repo: &crate::repo::Repository,
    backups: &[BackupRow],
    args: &RestoreArgs,
) -> Result<Option<Choice>> {
    let theme = theme();
    let theme = theme.as_ref();
    let mut c = Choice {
        reason: args.reason.clone().unwrap_or_default(),
        ..Default::default()
    };
    let mut step = 1;
    loop {
        match step {
            1 => match step1(theme, catalog, backups)? {
                Nav::Next(b) => {
                    if c.backup.as_ref().map(|x| &x.id) != Some(&b.id) {
                        c.kind = None;
                        c.tenants.clear();
                    }
                    c.backup = Some(b);
                    step = 2;
                }
                Nav::Back => return Ok(None),
            },
            2 => {
                let row = c.backup.clone().expect("chosen in step 1");
                let details = catalog.details(&row.id)?;
                match step2(theme, &row, details.as_ref())? {
                    Nav::Next(k) => {
                        c.kind = Some(k);
                        step = 3;
                    }
                    Nav::Back => step = 1,
                }
            }
            3 => {
                let row = c.backup.clone().expect("chosen");
                let details = catalog.details(&row.id)?;
                let reach = (c.kind == Some(Kind::Pitr)).then(|| Reach::of(catalog, repo, &row));
                match step3(theme, config, &row, details.as_ref(), reach, &mut c)? {
                    Nav::Next(()) => step = 4,
                    Nav::Back => step = 2,
                }
            }
            _ => {
                let row = c.backup.clone().expect("chosen");
                match step4(ctx, theme, &row, &c)? {
                    Nav::Next(true) => break,
                    Nav::Next(false) => return Ok(None),
                    Nav::Back => step = 3,
                }
            }
        }
    }
    Ok(Some(c))
}

fn running_as_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The flag form of what was chosen (on top of the global flags given).
fn choice_args(mut a: RestoreArgs, row: &BackupRow, c: &Choice) -> RestoreArgs {
    a.backup = Some(row.id.clone());
    a.reason = Some(c.reason.clone());
    a.yes = true;
    match c.kind.expect("chosen") {
        kind @ (Kind::Full | Kind::Merge) => {
            a.kind = Some(if kind == Kind::Full {
                PgType::Full
            } else {
                PgType::Merge
            });
            a.target_db = Some(c.target_db.clone());
            a.tenants = c.tenants.clone();
            a.create = kind == Kind::Full;
        }
        Kind::Directory => a.to = Some(c.dir.clone().into()),
        Kind::Pitr => {
            a.kind = Some(PgType::Pitr);
            a.pgdata = Some(c.dir.clone().into());
            a.to_latest = c.to_time.is_empty();
            a.to_time = (!c.to_time.is_empty()).then(|| c.to_time.clone());
            a.owner = (!c.owner.is_empty()).then(|| c.owner.clone());
            a.start = !c.port.is_empty();
            if a.start {
                a.settings.push(format!("port={}", c.port));
            }
        }
    }
    a
}

fn verified_mark(catalog: &Catalog, id: &str) -> &'static str {
    match catalog.verified_at(id) {
        Ok(Some(_)) => "verified",
        _ => "not verified",
    }
}

fn step1(theme: &dyn Theme, catalog: &Catalog, backups: &[BackupRow]) -> Result<Nav<BackupRow>> {
    let items: Vec<String> = backups
        .iter()
        .map(|b| {
            let tenants: Vec<String> = catalog
                .details(&b.id)
                .ok()
                .flatten()
                .and_then(|d| d["tenants"].as_array().cloned())
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{}  {}  {}  {}  {}  {}  {}",
                b.id,
                b.source,
                b.kind,
                b.started_at
                    .get(..16)
                    .unwrap_or(&b.started_at)
                    .replace('T', " "),
                output::bytes(b.bytes),
                if tenants.is_empty() {
                    "tenants: -".to_string()
                } else {
                    format!("tenants: {}", tenants.join(","))
                },
                verified_mark(catalog, &b.id)
            )
        })
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

fn step2(
    theme: &dyn Theme,
    row: &BackupRow,
    details: Option<&serde_json::Value>,
) -> Result<Nav<Kind>> {
    let offers = offers(row, details);
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

/// A database URL for the target: the source's server, a new database name.
fn suggested_target(config: &Config, row: &BackupRow) -> String {
    let spec = crate::jobs::restore::postgres_spec(config, &row.source);
    match spec.and_then(|p| ConnInfo::new(&p.url, None).ok()) {
        Some(c) => {
            let db = format!("{}_restored", c.dbname());
            c.with_db(&db).display()
        }
        None => String::new(),
    }
}

fn step3(
    theme: &dyn Theme,
    config: &Config,
    row: &BackupRow,
    details: Option<&serde_json::Value>,
    reach: Option<Reach>,
    c: &mut Choice,
) -> Result<Nav<()>> {
    let kind = c.kind.expect("chosen");
    eprintln!(
        "Step 3 of 4 — Configure options ({} restore of {})",
        kind.label(),
        row.id
    );
    // The fields of this restore type, asked in order; `<` steps back a field.
    let mut fields: Vec<&str> = match kind {
        Kind::Full => vec!["target"],
        Kind::Merge => vec!["target", "tenants"],
        // As root, also who owns the files and runs the server.
        Kind::Pitr if running_as_root() => vec!["pgdata", "owner", "time", "port"],
        Kind::Pitr => vec!["pgdata", "time", "port"],
        Kind::Directory => vec!["dir"],
    };
    fields.push("reason");
    let mut i = 0;
    while i < fields.len() {
        let asked = match fields[i] {
            "target" => ask_target(theme, config, row, c)?,
            "dir" => ask_dir(theme, c)?,
            "tenants" => ask_tenants(theme, details, c)?,
            "pgdata" => ask_pgdata(theme, c)?,
            "time" => ask_time(theme, reach, c)?,
            "owner" => ask_owner(theme, c)?,
            "port" => ask_port(theme, c)?,
            _ => ask_reason(theme, c)?,
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

/// The answer to one field of step 3.
enum Asked {
    Next,
    Back,
    /// Invalid: ask the same field again.
    Again,
}

/// The target database URL (checked, no password).
fn ask_target(
    theme: &dyn Theme,
    config: &Config,
    row: &BackupRow,
    c: &mut Choice,
) -> Result<Asked> {
    Ok({
        let initial = if c.target_db.is_empty() {
            suggested_target(config, row)
        } else {
            c.target_db.clone()
        };
        loop {
            match text(
                theme,
                "Target database URL (postgresql://USER@HOST:PORT/DB, no password)",
                &initial,
                true,
            )? {
                Nav::Back => break Asked::Back,
                Nav::Next(v) => match ConnInfo::new(&v, None) {
                    Ok(_) => {
                        c.target_db = v;
                        break Asked::Next;
                    }
                    Err(e) => eprintln!("{}", crate::error::paragraph(&e)),
                },
            }
        }
    })
}

/// The directory to restore into.
fn ask_dir(theme: &dyn Theme, c: &mut Choice) -> Result<Asked> {
    Ok(
        match text(theme, "Directory to restore into", &c.dir, true)? {
            Nav::Back => Asked::Back,
            Nav::Next(v) => {
                c.dir = v;
                Asked::Next
            }
        },
    )
}

/// The tenants: a multi-select of those the backup holds, else free text.
fn ask_tenants(
    theme: &dyn Theme,
    details: Option<&serde_json::Value>,
    c: &mut Choice,
) -> Result<Asked> {
    Ok({
        let known: Vec<String> = details
            .and_then(|d| d["tenants"].as_array().cloned())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if known.is_empty() {
            match text(
                theme,
                "Tenants to restore, comma-separated (empty: all rows)",
                &c.tenants.join(","),
                false,
            )? {
                Nav::Back => Asked::Back,
                Nav::Next(v) => {
                    c.tenants = v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    Asked::Next
                }
            }
        } else {
            let defaults: Vec<bool> = known.iter().map(|t| c.tenants.contains(t)).collect();
            match MultiSelect::with_theme(theme)
                .with_prompt("Tenants (space toggles, Enter accepts; none = all; Esc goes back)")
                .items(&known)
                .defaults(&defaults)
                .interact_opt()
                .map_err(io)?
            {
                None => Asked::Back,
                Some(sel) => {
                    c.tenants = sel.into_iter().map(|i| known[i].clone()).collect();
                    Asked::Next
                }
            }
        }
    })
}

/// The new data directory of a point-in-time restore (empty or absent).
fn ask_pgdata(theme: &dyn Theme, c: &mut Choice) -> Result<Asked> {
    Ok(
        match text(
            theme,
            "New data directory for the recovered cluster (empty or absent)",
            &c.dir,
            true,
        )? {
            Nav::Back => Asked::Back,
            Nav::Next(v) => {
                if let Err(e) = pitr::check_empty(std::path::Path::new(&v)) {
                    eprintln!("{}", crate::error::paragraph(&e));
                    return Ok(Asked::Again);
                }
                c.dir = v;
                Asked::Next
            }
        },
    )
}

/// The recovery time, checked against what the base backup and WAL cover.
fn ask_time(theme: &dyn Theme, reach: Option<Reach>, c: &mut Choice) -> Result<Asked> {
    Ok({
        let reach = reach.unwrap_or_default();
        let show = |t: Option<time::OffsetDateTime>| {
            t.map(pitr::pg_time).unwrap_or_else(|| "unknown".into())
        };
        eprintln!(
            "Base backup and archived WAL cover {} to {}.",
            show(reach.from),
            show(reach.to)
        );
        match text(
            theme,
            "Recover to time (e.g. 2026-01-31T12:00:00Z; empty: to the end of the archived WAL)",
            &c.to_time,
            false,
        )? {
            Nav::Back => Asked::Back,
            Nav::Next(v) if v.is_empty() => {
                c.to_time.clear();
                Asked::Next
            }
            Nav::Next(v) => match pitr::parse_target_time(&v) {
                Err(e) => {
                    eprintln!("{}", crate::error::paragraph(&e));
                    return Ok(Asked::Again);
                }
                Ok(t) => match reach.problem(t) {
                    Some(problem) => {
                        eprintln!("{problem}. Choose a time in that range, or leave it empty for the end of the archive.");
                        return Ok(Asked::Again);
                    }
                    None => {
                        c.to_time = v;
                        Asked::Next
                    }
                },
            },
        }
    })
}

/// As root: who owns the data directory and runs the server (never root).
fn ask_owner(theme: &dyn Theme, c: &mut Choice) -> Result<Asked> {
    Ok({
        let initial = if c.owner.is_empty() {
            pitr::resolve_owner(std::path::Path::new(&c.dir), None)
                .ok()
                .filter(|o| o.uid != 0)
                .map(|o| o.name)
                .unwrap_or_else(|| "postgres".into())
        } else {
            c.owner.clone()
        };
        match text(
            theme,
            "Operating-system user that owns the data directory and runs the server",
            &initial,
            true,
        )? {
            Nav::Back => Asked::Back,
            Nav::Next(v) => match pitr::resolve_owner(std::path::Path::new(&c.dir), Some(&v)) {
                Ok(o) if o.uid != 0 => {
                    c.owner = v;
                    Asked::Next
                }
                Ok(_) => {
                    eprintln!("PostgreSQL refuses to run as root: name the user that runs PostgreSQL (usually postgres).");
                    return Ok(Asked::Again);
                }
                Err(e) => {
                    eprintln!("{}", crate::error::paragraph(&e));
                    return Ok(Asked::Again);
                }
            },
        }
    })
}

/// The port to start the recovered server on (empty: do not start it).
fn ask_port(theme: &dyn Theme, c: &mut Choice) -> Result<Asked> {
    Ok(
        match text(
            theme,
            "Start the recovered server on port (empty: only prepare the directory)",
            &c.port,
            false,
        )? {
            Nav::Back => Asked::Back,
            Nav::Next(v) if v.is_empty() || v.parse::<u16>().is_ok_and(|p| p > 0) => {
                c.port = v;
                Asked::Next
            }
            Nav::Next(v) => {
                eprintln!("\"{v}\" is not a port number.");
                return Ok(Asked::Again);
            }
        },
    )
}

/// Why (kept in the restore log).
fn ask_reason(theme: &dyn Theme, c: &mut Choice) -> Result<Asked> {
    Ok(
        match text(
            theme,
            "Reason for this restore (kept in the restore log)",
            &c.reason,
            true,
        )? {
            Nav::Back => Asked::Back,
            Nav::Next(v) => {
                c.reason = v;
                Asked::Next
            }
        },
    )
}

/// What the target looks like now: exists, and how many relations.
fn probe(url: &str) -> Option<(bool, i64)> {
    let t = ConnInfo::new(url, None).ok()?;
    let admin = t.with_db("postgres").connect().ok()?;
    let exists = !crate::engine::postgres::query(
        &admin,
        "SELECT 1 FROM pg_database WHERE datname = $1",
        &[&t.dbname()],
    )
    .ok()?
    .is_empty();
    if !exists {
        return Some((false, 0));
    }
    let c = t.connect().ok()?;
    let n: i64 = crate::engine::postgres::query(
        &c,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'",
        &[],
    )
    .ok()?[0]
        .get(0);
    Some((true, n))
}

fn step4(ctx: &Ctx, theme: &dyn Theme, row: &BackupRow, c: &Choice) -> Result<Nav<bool>> {
    let kind = c.kind.expect("chosen");
    let mut t = output::table();
    // One line per row: what is dropped and kept must read as written.
    t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    t.set_header(vec!["Step 4 of 4 — Confirm", ""]);
    t.add_row(vec![
        "backup".to_string(),
        format!(
            "{} ({}, {}, taken {})",
            row.id,
            row.source,
            output::bytes(row.bytes),
            row.started_at
        ),
    ]);
    t.add_row(vec!["restore type".to_string(), kind.label().to_string()]);
    let name = match kind {
        Kind::Directory => directory_rows(&mut t, c),
        Kind::Pitr => pitr_rows(&mut t, c),
        _ => database_rows(&mut t, kind, c)?,
    };
    t.add_row(vec!["reason".to_string(), c.reason.clone()]);
    eprintln!("{t}");
    let preview = choice_args(RestoreArgs::default_for(row.id.clone()), row, c);
    eprintln!(
        "the same, without the wizard:\n  {}",
        command_line(ctx, &preview)
    );
    let what = match kind {
        Kind::Directory | Kind::Pitr => "directory",
        _ => "database name",
    };
    let v = Input::<String>::with_theme(theme)
        .with_prompt(format!(
            "Type the {what} \"{name}\" to restore (`{BACK_KEY}` goes back, anything else cancels)"
        ))
        .allow_empty(true)
        .interact_text()
        .map_err(io)?;
    let v = v.trim();
    Ok(if v == BACK_KEY {
        Nav::Back
    } else {
        Nav::Next(v == name)
    })
}

/// Step 4's rows for a restore into a directory; the name to type.
fn directory_rows(t: &mut comfy_table::Table, c: &Choice) -> String {
    t.add_row(vec!["into directory".to_string(), c.dir.clone()]);
    t.add_row(vec![
        "dropped".to_string(),
        "nothing (the directory must be empty)".to_string(),
    ]);
    t.add_row(vec![
        "kept".to_string(),
        "everything else on this machine".to_string(),
    ]);
    c.dir.clone()
}

/// Step 4's rows for a point-in-time restore; the name to type.
fn pitr_rows(t: &mut comfy_table::Table, c: &Choice) -> String {
    t.add_row(vec!["into data directory".to_string(), c.dir.clone()]);
    if !c.owner.is_empty() {
        t.add_row(vec!["owned by".to_string(), c.owner.clone()]);
    }
    t.add_row(vec![
        "recover to".to_string(),
        if c.to_time.is_empty() {
            "the end of the archived WAL".to_string()
        } else {
            c.to_time.clone()
        },
    ]);
    t.add_row(vec![
        "then".to_string(),
        if c.port.is_empty() {
            "stop: start it yourself with pg_ctl -D DIR start".to_string()
        } else {
            format!(
                "start it on port {} and wait until recovery has finished",
                c.port
            )
        },
    ]);
    t.add_row(vec![
        "dropped".to_string(),
        "nothing (the directory must be empty)".to_string(),
    ]);
    t.add_row(vec![
        "kept".to_string(),
        "every running cluster, the source included".to_string(),
    ]);
    c.dir.clone()
}

/// Step 4's rows for a restore into a database: what is dropped and kept
/// as the server looks now; the name to type.
fn database_rows(t: &mut comfy_table::Table, kind: Kind, c: &Choice) -> Result<String> {
    let info = ConnInfo::new(&c.target_db, None)?;
    t.add_row(vec!["into database".to_string(), info.display()]);
    let state = probe(&c.target_db);
    let (dropped, kept) = match (kind, state) {
        (Kind::Full, Some((false, _))) => ("nothing: the database does not exist and is created".to_string(), "every other database on the server".to_string()),
        (Kind::Full, Some((true, 0))) => ("nothing: the database exists and is empty".to_string(), "the database's settings and owner".to_string()),
        (Kind::Full, Some((true, n))) => (format!("nothing — the database holds {n} tables, so the restore will refuse (pick a new name)"), "the existing database, untouched".to_string()),
        (Kind::Full, None) => ("nothing: a full restore needs a new or empty database (the server could not be checked from here)".to_string(), "everything".to_string()),
        (Kind::Merge, _) => ("nothing: rows are only added".to_string(), "every existing row (conflicting backup rows are skipped)".to_string()),
        _ => ("-".to_string(), "-".to_string()),
    };
    t.add_row(vec!["dropped".to_string(), dropped]);
    t.add_row(vec!["kept".to_string(), kept]);
    if kind == Kind::Merge {
        t.add_row(vec![
            "tenants".to_string(),
            if c.tenants.is_empty() {
                "all".to_string()
            } else {
                c.tenants.join(", ")
            },
        ]);
    }
    Ok(info.dbname().to_string())
}

/// Quotes for a POSIX shell when needed.
fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The non-interactive command line for `a`.
pub fn command_line(ctx: &Ctx, a: &RestoreArgs) -> String {
    let mut v: Vec<String> = vec!["vaultctl".into()];
    if let Some(c) = &ctx.global.config {
        v.push("--config".into());
        v.push(sh(&c.display().to_string()));
    }
    v.push("restore".into());
    v.push(sh(a.backup.as_deref().unwrap_or("BACKUP")));
    if let Some(k) = a.kind {
        v.push("--type".into());
        v.push(match k {
            PgType::Full => "full".into(),
            PgType::Merge => "merge".into(),
            PgType::Pitr => "pitr".into(),
        });
    }
    if let Some(t) = &a.target_db {
        v.push("--target-db".into());
        v.push(sh(t));
    }
    for t in &a.tenants {
        v.push("--tenant".into());
        v.push(sh(t));
    }
    if a.create {
        v.push("--create".into());
    }
    if let Some(d) = &a.to {
        v.push("--to".into());
        v.push(sh(&d.display().to_string()));
    }
    if let Some(d) = &a.pgdata {
        v.push("--pgdata".into());
        v.push(sh(&d.display().to_string()));
    }
    if let Some(t) = &a.to_time {
        v.push("--to-time".into());
        v.push(sh(t));
    }
    if a.to_latest {
        v.push("--to-latest".into());
    }
    if let Some(o) = &a.owner {
        v.push("--owner".into());
        v.push(sh(o));
    }
    if a.start {
        v.push("--start".into());
    }
    for s in &a.settings {
        v.push("--set".into());
        v.push(sh(s));
    }
    if let Some(t) = &a.target {
        v.push("--target".into());
        v.push(sh(t));
    }
    if let Some(r) = &a.reason {
        v.push("--reason".into());
        v.push(sh(r));
    }
    if a.yes {
        v.push("--yes".into());
    }
    v.join(" ")
}
