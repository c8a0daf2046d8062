//! `vaultctl dr`: the disaster-recovery runbook.
//!
//! * `plan`: the runbook as checks, each pass/fail/unknown; exits 1 when a
//!   check DR needs fails.
//! * `run`: a fresh machine with only config and identity gets the database
//!   back: catalog rebuilt when missing, latest verified backup (else the
//!   latest completed), full restore through the same code path as
//!   `restore`, every table and its rows checked, achieved RTO recorded,
//!   a Markdown report.
//! * `drill`: the same into a scratch database that is created and dropped;
//!   marks the backup verified-by-restore, raises a critical alert on
//!   failure and resolves it on the next success.
//! * `history`: DR runs and drills.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::catalog::{BackupRow, Catalog, DrFinish};
use crate::cli::commands::restore::{self as restore_cmd, PgType, RestoreArgs};
use crate::cli::{output, Ctx};
use crate::config::{Config, SourceSpec};
use crate::engine::postgres::check::{verify_restore, Verification};
use crate::engine::postgres::{self as pg, ConnInfo};
use crate::error::{exit_status, fail, paragraph, ExitStatus, Failure};
use crate::ops;
use crate::repo::{self, restore as repo_restore, Repository};

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
    /// Where psql is (default: the source's config, else PATH)
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
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
    /// Where psql is (default: the source's config, else PATH)
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
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
        DrCommand::Run(a) => execute(ctx, Mode::Run(a)),
        DrCommand::Drill(mut a) => {
            // No --scratch-db: the one in the source's [source.drill], if any.
            if a.scratch_db.is_none() {
                let config = ctx.config()?;
                if let Some(d) = config.drill_plan(&a.source) {
                    a.scratch_db = d.scratch_db.clone();
                    a.password_file = d.password_file.clone();
                }
            }
            execute(ctx, Mode::Drill(a))
        }
        DrCommand::History(a) => history(ctx, a),
    }
}

// ---------------------------------------------------------------- plan

/// One runbook check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub step: String,
    /// `pass`, `fail` or `unknown`.
    pub status: &'static str,
    /// Whether DR needs it (a failed required check fails the plan).
    pub required: bool,
    pub detail: String,
}

fn check(
    out: &mut Vec<Check>,
    step: impl Into<String>,
    status: &'static str,
    required: bool,
    detail: impl Into<String>,
) {
    out.push(Check {
        step: step.into(),
        status,
        required,
        detail: detail.into(),
    });
}

fn age(config: &Config, ts: &str) -> String {
    match crate::clock::parse(ts) {
        Some(t) => {
            let secs = (config.clock.now() - t).whole_seconds().max(0) as u64;
            format!("{} ago", crate::clock::human(secs))
        }
        None => "-".into(),
    }
}

/// Free bytes of the file system holding `path` (for unprivileged users).
fn free_bytes(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

fn postgres_spec<'a>(config: &'a Config, source: &str) -> Option<&'a crate::config::PostgresSpec> {
    config
        .sources
        .iter()
        .find(|s| s.name == source)
        .and_then(|s| match &s.spec {
            SourceSpec::Postgres(p) => Some(p),
            _ => None,
        })
}

fn plan(ctx: &Ctx, args: PlanArgs) -> Result<ExitStatus> {
    let mut checks: Vec<Check> = Vec::new();
    let config = match ctx.config() {
        Ok(c) => {
            check(
                &mut checks,
                "config",
                "pass",
                true,
                match &c.origin {
                    crate::config::Origin::File(p) => format!("{} readable", p.display()),
                    crate::config::Origin::Embedded => {
                        "built-in defaults (no config file)".to_string()
                    }
                },
            );
            Some(c)
        }
        Err(e) => {
            check(&mut checks, "config", "fail", true, paragraph(&e));
            None
        }
    };
    if let Some(config) = &config {
        plan_checks(config, &args, &mut checks);
    }
    let failed = checks.iter().any(|c| c.required && c.status == "fail");
    if ctx.global.json {
        output::json(&serde_json::json!({ "ready": !failed, "checks": checks }))?;
    } else {
        let mut t = output::table();
        t.set_header(vec!["", "step", "status", "detail"]);
        for (i, c) in checks.iter().enumerate() {
            t.add_row(vec![
                (i + 1).to_string(),
                c.step.clone(),
                format!(
                    "{}{}",
                    c.status.to_uppercase(),
                    if c.required && c.status == "fail" {
                        " (needed)"
                    } else {
                        ""
                    }
                ),
                c.detail.clone(),
            ]);
        }
        output::line(&t.to_string())?;
        output::line(if failed {
            "DR plan: NOT READY — fix the failed steps marked (needed)"
        } else {
            "DR plan: ready"
        })?;
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

fn plan_checks(config: &Config, args: &PlanArgs, checks: &mut Vec<Check>) {
    // Targets: each reachable and holding the repository.
    let mut holders = Vec::new();
    for t in &config.targets {
        let step = format!("target '{}'", t.name);
        match crate::storage::Store::open(t, false)
            .and_then(|s| Ok((repo::read_repo_config(&s)?, s)))
        {
            Ok((Some(rc), s)) => {
                check(
                    checks,
                    step,
                    "pass",
                    false,
                    format!("reachable; holds repository {}", rc.repo_id),
                );
                holders.push(s);
            }
            Ok((None, _)) => check(
                checks,
                step,
                "fail",
                false,
                "reachable, but holds no vaultctl repository",
            ),
            Err(e) => check(
                checks,
                step,
                "fail",
                false,
                format!("unreachable: {}", paragraph(&e)),
            ),
        }
    }
    if holders.is_empty() {
        check(
            checks,
            "repository",
            "fail",
            true,
            "no target holds the repository: nothing to restore from",
        );
    } else {
        check(
            checks,
            "repository",
            "pass",
            true,
            format!("{} of {} target(s) hold it; `dr run` reads from '{}' first and falls back to the others", holders.len(), config.targets.len(), holders[0].name),
        );
    }
    // Identity: present and able to decrypt the repository's key material.
    let identity_ok = match &config.keys.identity_file {
        None => {
            check(checks, "identity", "fail", true, "no identity is configured (keys.identity_file or --identity): restores need the private key");
            false
        }
        Some(p) if !p.exists() => {
            check(checks, "identity", "fail", true, format!("identity missing: {} does not exist; restores need the private key (keys.identity_file or --identity)", p.display()));
            false
        }
        Some(p) => {
            match crate::repo::keys::load_identities(p) {
                Err(e) => {
                    check(
                        checks,
                        "identity",
                        "fail",
                        true,
                        format!("{} cannot be read: {}", p.display(), paragraph(&e)),
                    );
                    false
                }
                Ok(ids) => {
                    let key = holders.iter().find_map(|s| {
                        s.get(repo::format::DEDUP_KEY_OBJECT)
                            .ok()
                            .flatten()
                            .map(|b| (s.name.clone(), b))
                    });
                    match key {
                        None => {
                            check(checks, "identity", "unknown", true, format!("{} present, but no reachable target holds the key material to test it on", p.display()));
                            false
                        }
                        Some((target, b)) => match crate::repo::keys::decrypt(&ids, &b) {
                            Ok(_) => {
                                check(checks, "identity", "pass", true, format!("{} decrypts the repository's key material (target '{target}')", p.display()));
                                true
                            }
                            Err(_) => {
                                check(checks, "identity", "fail", true, format!("{} cannot decrypt the repository's key material: it is not an identity of this repository", p.display()));
                                false
                            }
                        },
                    }
                }
            }
        }
    };
    let repo = if holders.is_empty() {
        None
    } else {
        match Repository::open(config, None) {
            Ok(r) => Some(r),
            Err(e) => {
                if identity_ok {
                    check(checks, "open repository", "fail", true, paragraph(&e));
                }
                None
            }
        }
    };
    // Catalog: present, or will be rebuilt.
    let catalog = if config.catalog.exists() {
        match Catalog::open(&config.catalog) {
            Ok(c) => {
                let n = c.completed_count().unwrap_or(0);
                check(
                    checks,
                    "catalog",
                    "pass",
                    false,
                    format!("{} ({n} completed backups)", config.catalog.display()),
                );
                Some(c)
            }
            Err(e) => {
                check(
                    checks,
                    "catalog",
                    "fail",
                    false,
                    format!(
                        "{} unreadable ({}); `dr run` rebuilds it after you move it away",
                        config.catalog.display(),
                        paragraph(&e)
                    ),
                );
                None
            }
        }
    } else {
        check(
            checks,
            "catalog",
            "pass",
            false,
            format!(
                "missing ({}); `dr run` rebuilds it from the first healthy target",
                config.catalog.display()
            ),
        );
        None
    };
    // Backups per source: from the catalog, else from the repository's manifests.
    let from_repo: Vec<crate::repo::manifest::Header> = match (&catalog, &repo) {
        (None, Some(r)) => manifest_headers(r),
        _ => Vec::new(),
    };
    let sources: Vec<String> = match &args.source {
        Some(s) => vec![s.clone()],
        None => {
            let v: Vec<String> = config
                .sources
                .iter()
                .filter(|s| matches!(s.spec, SourceSpec::Postgres(_)))
                .map(|s| s.name.clone())
                .collect();
            v
        }
    };
    if sources.is_empty() {
        check(
            checks,
            "sources",
            "unknown",
            false,
            "no postgres source is configured; name one with --source",
        );
    }
    let speed = catalog
        .as_ref()
        .and_then(|c| c.restore_speed().ok().flatten());
    for source in &sources {
        let (latest, verified): (Option<Latest>, Option<(String, String)>) = match &catalog {
            Some(c) => (
                c.latest_completed(source)
                    .ok()
                    .flatten()
                    .map(|b| (b.id, b.started_at, b.bytes)),
                c.latest_verified(source).ok().flatten().map(|b| {
                    (
                        b.id.clone(),
                        c.verified_at(&b.id).ok().flatten().unwrap_or(b.started_at),
                    )
                }),
            ),
            None => (
                from_repo
                    .iter()
                    .filter(|h| &h.source == source)
                    .max_by(|a, b| a.started_at.cmp(&b.started_at))
                    .map(|h| (h.id.clone(), h.started_at.clone(), h.bytes)),
                None,
            ),
        };
        let step = format!("latest backup of '{source}'");
        match &latest {
            Some((id, at, bytes)) => check(
                checks,
                step,
                "pass",
                true,
                format!(
                    "{id}, {} ({at}), {}",
                    age(config, at),
                    output::bytes(*bytes)
                ),
            ),
            None if catalog.is_none() && repo.is_none() => check(
                checks,
                step,
                "unknown",
                true,
                "cannot list backups: neither a catalog nor an open repository",
            ),
            None => check(
                checks,
                step,
                "fail",
                true,
                format!("no completed backup of '{source}'"),
            ),
        }
        match &verified {
            Some((id, at)) => check(checks, format!("latest verified backup of '{source}'"), "pass", false, format!("{id}, verified by a restore {} ({at})", age(config, at))),
            None => check(checks, format!("latest verified backup of '{source}'"), "unknown", false, "none verified by a restore on this machine (run `vaultctl dr drill`); `dr run` uses the latest completed"),
        }
        // Client tools against the backup's server version.
        let psql = postgres_spec(config, source)
            .map(|p| p.psql.clone())
            .unwrap_or_else(|| PathBuf::from("psql"));
        let server_version = latest
            .as_ref()
            .and_then(|(id, _, _)| backup_server_version(catalog.as_ref(), repo.as_ref(), id));
        match pg::program_version(&psql) {
            Err(e) => check(
                checks,
                format!("psql for '{source}'"),
                "fail",
                true,
                paragraph(&e),
            ),
            Ok(v) => {
                let ours = pg::parse_version(&v);
                match (ours, server_version.as_deref().and_then(pg::parse_version)) {
                    (Some(c), Some(s)) if c.0 < s.0 => check(checks, format!("psql for '{source}'"), "fail", false, format!("{v} is older than the backup's server ({}): install the client of major version {} or newer", server_version.clone().unwrap_or_default(), s.0)),
                    (_, Some(_)) => check(checks, format!("psql for '{source}'"), "pass", true, format!("{v}; the backup's server is {}", server_version.clone().unwrap_or_default())),
                    (_, None) => check(checks, format!("psql for '{source}'"), "pass", true, format!("{v}; the backup's server version is not readable here")),
                }
            }
        }
        // The database server to restore into.
        let (target, required) = match &args.target_db {
            Some(u) => (ConnInfo::new(u, args.password_file.as_deref()), true),
            None => match postgres_spec(config, source) {
                Some(p) => (ConnInfo::new(&p.url, p.password_file.as_deref()), false),
                None => (
                    Err(anyhow::anyhow!(
                        "no --target-db and '{source}' is not a configured postgres source"
                    )),
                    false,
                ),
            },
        };
        let step = format!("target database for '{source}'");
        let mut data_dir = None;
        match target.and_then(|t| {
            let c = t.with_db("postgres").connect().or_else(|_| t.connect())?;
            let v: String =
                pg::query(&c, "SELECT current_setting('server_version')", &[])?[0].get(0);
            data_dir = pg::query(
                &c,
                "SELECT setting FROM pg_settings WHERE name = 'data_directory'",
                &[],
            )
            .ok()
            .and_then(|r| r.first().map(|r| r.get::<_, String>(0)));
            Ok((t.display(), v))
        }) {
            Ok((d, v)) => check(
                checks,
                step,
                "pass",
                required,
                format!("{d} reachable (PostgreSQL {v})"),
            ),
            Err(e) => check(
                checks,
                step,
                if required { "fail" } else { "unknown" },
                required,
                paragraph(&e),
            ),
        }
        // Free disk for the restore: the server's data directory when it is on this machine.
        let need = latest.as_ref().map(|l| l.2).unwrap_or(0);
        match data_dir.as_deref().map(Path::new).filter(|p| p.exists()).and_then(|p| free_bytes(p).map(|f| (p.to_path_buf(), f))) {
            Some((p, free)) => {
                let want = need + need / 5;
                check(checks, format!("free disk for '{source}'"), if free >= want { "pass" } else { "fail" }, false, format!("{} free in {}; the backup holds {} of SQL (about {} needed)", output::bytes(free), p.display(), output::bytes(need), output::bytes(want)));
            }
            None => check(checks, format!("free disk for '{source}'"), "unknown", false, format!("the database server's disk is not visible from here; it needs room for about {} of data plus indexes", output::bytes(need))),
        }
        // RTO estimate from recorded restore speeds.
        match (speed, &latest) {
            (Some((b, ms)), Some((_, _, bytes))) if b > 0 => {
                let est = (*bytes as f64 * ms as f64 / b as f64) as u64;
                check(
                    checks,
                    format!("RTO estimate for '{source}'"),
                    "pass",
                    false,
                    format!(
                        "about {} to restore {} (recorded restores: {:.1} MB/s){}",
                        output::duration_ms(est),
                        output::bytes(*bytes),
                        crate::catalog::mb_per_s(b, ms),
                        if catalog.is_none() {
                            ", plus the catalog rebuild"
                        } else {
                            ""
                        }
                    ),
                );
            }
            _ => check(
                checks,
                format!("RTO estimate for '{source}'"),
                "unknown",
                false,
                "no restore recorded on this machine yet (a `dr drill` records one)",
            ),
        }
    }
}

/// A backup's id, start time and plaintext bytes.
type Latest = (String, String, u64);

/// Manifest headers from the first target that lists them (no catalog).
fn manifest_headers(repo: &Repository) -> Vec<crate::repo::manifest::Header> {
    for s in &repo.stores {
        let Ok(list) = s.list(repo::format::SNAPSHOTS_DIR) else {
            continue;
        };
        return list
            .iter()
            .filter_map(|(name, _)| {
                let id = name.strip_prefix("snapshots/")?;
                let b = s.get(name).ok().flatten()?;
                crate::repo::manifest::decode_header(&b, &repo.dedup, id).ok()
            })
            .collect();
    }
    Vec::new()
}

fn backup_server_version(
    catalog: Option<&Catalog>,
    repo: Option<&Repository>,
    id: &str,
) -> Option<String> {
    if let Some(d) = catalog.and_then(|c| c.details(id).ok().flatten()) {
        if let Some(v) = d["engine"]["server_version"].as_str() {
            return Some(v.to_string());
        }
    }
    let repo = repo?;
    let (_, body) = repo_restore::load_body(repo, &repo.stores, id).ok()?;
    body.engine["server_version"].as_str().map(String::from)
}

// ---------------------------------------------------------------- run / drill

enum Mode {
    Run(RunArgs),
    Drill(DrillArgs),
}

/// One step of a run, with its timing.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: String,
    pub ok: bool,
    pub ms: u64,
    pub detail: String,
}

#[derive(Default)]
struct Steps {
    list: Vec<Step>,
}

impl Steps {
    fn time<T>(&mut self, name: &str, f: impl FnOnce() -> Result<(T, String)>) -> Result<T> {
        let t = Instant::now();
        let r = f();
        let ms = t.elapsed().as_millis() as u64;
        match r {
            Ok((v, detail)) => {
                tracing::info!("{name}: {detail}");
                self.list.push(Step {
                    step: name.into(),
                    ok: true,
                    ms,
                    detail,
                });
                Ok(v)
            }
            Err(e) => {
                self.list.push(Step {
                    step: name.into(),
                    ok: false,
                    ms,
                    detail: paragraph(&e),
                });
                Err(e)
            }
        }
    }
}

/// What a run or drill produced.
#[derive(Default)]
struct Outcome {
    backup: Option<BackupRow>,
    storage_target: Option<String>,
    unavailable: Vec<(String, String)>,
    restore_id: Option<i64>,
    restore_ms: Option<u64>,
    verification: Option<Verification>,
    rto_ms: Option<u64>,
    /// The repository the run opened, once it succeeded (for the mark).
    repo: Option<Repository>,
}

/// Keeps a verification mark in the repository too (every target the run
/// opened), so that a catalog rebuilt on another machine knows it; a target
/// that fails only warns.
fn record_mark(repo: &Repository, mark: &repo::verified::Mark) {
    for (target, e) in repo::verified::write(&repo.stores, &repo.dedup, mark) {
        tracing::warn!(
            "target '{target}' did not get the verification mark of backup {}: {e}",
            mark.backup_id
        );
    }
}

fn execute(ctx: &Ctx, mode: Mode) -> Result<ExitStatus> {
    let started = Instant::now();
    let started_at = crate::clock::now_rfc3339();
    let config = ctx.config()?;
    let (kind, source, reason, report_file) = match &mode {
        Mode::Run(a) => (
            "run",
            a.source.clone(),
            Some(a.reason.clone()),
            a.report.clone(),
        ),
        Mode::Drill(a) => (
            "drill",
            a.source.clone(),
            Some("scheduled DR drill (test restore)".to_string()),
            a.report.clone(),
        ),
    };
    if let Mode::Run(a) = &mode {
        if !a.yes && (!std::io::stdin().is_terminal() || !std::io::stderr().is_terminal()) {
            return fail(
                ExitStatus::Usage,
                format!("`dr run` restores into {} and needs confirmation, but there is no terminal to ask on.", pg::redact_url(&a.target_db)),
                "Check the target, then run it again with --yes.",
            );
        }
    }
    let catalog_missing = !config.catalog.exists();
    let mut catalog = Catalog::open(&config.catalog)?;
    let target_display = match &mode {
        Mode::Run(a) => Some(pg::redact_url(&a.target_db)),
        Mode::Drill(_) => None,
    };
    let run_id = catalog.dr_started(
        kind,
        &source,
        target_display.as_deref(),
        reason.as_deref(),
        &restore_cmd::operator(),
        &crate::repo::hostname(),
        &started_at,
    )?;
    let mut steps = Steps::default();
    let mut out = Outcome::default();
    let result = run_steps(
        ctx,
        &config,
        &mode,
        &mut catalog,
        catalog_missing,
        &source,
        &reason,
        started,
        &mut steps,
        &mut out,
    );
    let finished_at = crate::clock::now_rfc3339();
    let v = out.verification.as_ref();
    let err_text = result.as_ref().err().map(paragraph);
    let scratch = match &result {
        Ok(t) => Some(t.clone()),
        Err(_) => None,
    };
    catalog.dr_finished(
        run_id,
        &finished_at,
        &DrFinish {
            ok: result.is_ok(),
            backup_id: out.backup.as_ref().map(|b| b.id.as_str()),
            storage_target: out.storage_target.as_deref(),
            rto_ms: if result.is_ok() { out.rto_ms } else { None },
            restore_ms: out.restore_ms,
            bytes: out.backup.as_ref().map(|b| b.bytes),
            tables: v.map(|v| v.tables_present as u64),
            rows: v.map(|v| v.rows),
            restore_id: out.restore_id,
            checks: v.map(|v| serde_json::to_value(v).unwrap_or_default()),
            steps: Some(serde_json::to_value(&steps.list)?),
            error: err_text.as_deref(),
        },
    )?;
    let target_text = match (&mode, &scratch) {
        (Mode::Run(a), _) => pg::redact_url(&a.target_db),
        (Mode::Drill(_), Some(t)) => format!("{t} (scratch, dropped)"),
        (Mode::Drill(_), None) => "scratch database".into(),
    };
    if result.is_ok() {
        if let Some(b) = &out.backup {
            let method = if kind == "drill" { "drill" } else { "dr-run" };
            catalog.mark_verified(&b.id, method, run_id, &finished_at)?;
            if let Some(r) = &out.repo {
                record_mark(
                    r,
                    &repo::verified::Mark {
                        backup_id: b.id.clone(),
                        method: method.into(),
                        verified_at: finished_at.clone(),
                        host: crate::repo::hostname(),
                        rto_ms: out.rto_ms,
                    },
                );
            }
        }
    }
    // Alerts.
    match (&mode, &result) {
        (Mode::Drill(_), Ok(_)) => ops::hooks::drill_succeeded(
            &config,
            &catalog,
            &source,
            out.backup.as_ref().map(|b| b.id.as_str()).unwrap_or("?"),
        ),
        (Mode::Drill(_), Err(e)) if exit_status(e) != ExitStatus::Usage => {
            ops::hooks::drill_failed(&config, &catalog, &source, e)
        }
        (Mode::Run(_), Ok(_)) => ops::hooks::restore_succeeded(
            &config,
            &catalog,
            &source,
            out.backup.as_ref().map(|b| b.id.as_str()).unwrap_or("?"),
        ),
        (Mode::Run(_), Err(e)) => ops::hooks::restore_failed(
            &config,
            &catalog,
            &source,
            out.backup.as_ref().map(|b| b.id.as_str()).unwrap_or("?"),
            e,
        ),
        _ => {}
    }
    ops::after_command(&config, &catalog);
    let md = markdown(
        kind,
        run_id,
        &source,
        &target_text,
        reason.as_deref(),
        &started_at,
        &finished_at,
        &out,
        &steps.list,
        err_text.as_deref(),
    );
    if let Some(f) = &report_file {
        std::fs::write(f, &md).map_err(|e| {
            Failure::new(
                ExitStatus::Failure,
                format!("cannot write the report {}: {e}", f.display()),
            )
        })?;
    }
    if ctx.global.json {
        output::json(&serde_json::json!({
            "id": run_id,
            "kind": kind,
            "source": source,
            "ok": result.is_ok(),
            "backup": out.backup.as_ref().map(|b| b.id.clone()),
            "target_db": target_text,
            "storage_target": out.storage_target,
            "unavailable_targets": out.unavailable.iter().map(|(t, why)| serde_json::json!({"target": t, "error": why})).collect::<Vec<_>>(),
            "rto_ms": if result.is_ok() { out.rto_ms } else { None },
            "restore_ms": out.restore_ms,
            "steps": steps.list,
            "checks": out.verification,
            "error": err_text,
            "report": report_file,
        }))?;
    } else {
        let mut t = output::table();
        t.set_header(vec!["step", "result", "time", "detail"]);
        for s in &steps.list {
            t.add_row(vec![
                s.step.clone(),
                if s.ok {
                    "ok".into()
                } else {
                    "FAILED".to_string()
                },
                output::duration_ms(s.ms),
                s.detail.clone(),
            ]);
        }
        output::line(&t.to_string())?;
        if let Some(v) = &out.verification {
            output::line(&format!(
                "checks: {}/{} tables present, {} rows; {}",
                v.tables_present,
                v.tables_expected,
                v.rows,
                if v.ok {
                    "every table matches the backup".to_string()
                } else {
                    v.problems.join("; ")
                }
            ))?;
            for w in &v.warnings {
                eprintln!("vaultctl: warning: {w}");
            }
        }
        if result.is_ok() {
            output::line(&format!(
                "DR {kind} {run_id} succeeded: backup {} of '{source}' restored into {target_text} and verified; RTO achieved: {}",
                out.backup.as_ref().map(|b| b.id.as_str()).unwrap_or("?"),
                output::duration_ms(out.rto_ms.unwrap_or(0))
            ))?;
        }
        if let Some(f) = &report_file {
            output::line(&format!("report written to {}", f.display()))?;
        }
    }
    result.map(|_| ExitStatus::Success)
}

#[allow(clippy::too_many_arguments)]
fn run_steps(
    ctx: &Ctx,
    config: &Config,
    mode: &Mode,
    catalog: &mut Catalog,
    catalog_missing: bool,
    source: &str,
    reason: &Option<String>,
    started: Instant,
    steps: &mut Steps,
    out: &mut Outcome,
) -> Result<String> {
    let repo = steps.time("open repository", || {
        let r = Repository::open(config, None)?;
        let mut d = format!(
            "repository {} on {}",
            r.config.repo_id,
            r.stores
                .iter()
                .map(|s| format!("'{}'", s.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (t, why) in &r.unavailable {
            d.push_str(&format!("; target '{t}' unavailable ({why}), falling back"));
        }
        Ok((r, d))
    })?;
    out.unavailable = repo.unavailable.clone();
    let empty = catalog.latest_completed(source)?.is_none();
    if catalog_missing || empty {
        steps.time("rebuild catalog", || {
            catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
            let r = crate::cli::commands::catalog::rebuild(&repo, catalog, None)?;
            Ok((
                (),
                format!(
                    "{} ({}): {} backups ({} verified by restore), {} index objects from target '{}'",
                    if catalog_missing {
                        "catalog was missing"
                    } else {
                        "catalog had no backup of this source"
                    },
                    config.catalog.display(),
                    r.backups,
                    r.verified,
                    r.index_objects,
                    r.target
                ),
            ))
        })?;
    } else {
        catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
    }
    let chosen = match mode {
        Mode::Run(a) => a.backup.clone(),
        Mode::Drill(_) => None,
    };
    let row = steps.time("choose backup", || {
        let (row, why) = match &chosen {
            Some(spec) => (repo_restore::resolve_backup(catalog, spec)?, "as requested"),
            None => match mode {
                // A drill tests what a disaster would restore: the newest.
                Mode::Drill(_) => (latest(catalog, source)?, "the latest completed"),
                Mode::Run(_) => match catalog.latest_verified(source)? {
                    Some(v) => {
                        let newest = latest(catalog, source)?;
                        if newest.id != v.id {
                            tracing::warn!("the newest backup {} of '{source}' is not verified by a restore yet; using the latest verified {}", newest.id, v.id);
                        }
                        (v, "the latest verified by a restore")
                    }
                    None => (latest(catalog, source)?, "the latest completed (none is verified by a restore on this machine)"),
                },
            },
        };
        if row.status != "completed" {
            return fail(ExitStatus::Usage, format!("backup {} is {}, not completed.", row.id, row.status), "Pick a completed backup from `vaultctl list --status completed`.");
        }
        if row.kind != "postgres" {
            return fail(ExitStatus::Usage, format!("backup {} is a {} backup; DR restores postgres backups.", row.id, row.kind), "Restore files with `vaultctl restore ID --to DIR`.");
        }
        let d = format!("{} ({why}), taken {} ({}), {}", row.id, row.started_at, age(config, &row.started_at), output::bytes(row.bytes));
        Ok((row, d))
    })?;
    out.backup = Some(row.clone());
    let mut stores = repo.stores.clone();
    stores.sort_by_key(|s| !row.targets.contains(&s.name));
    out.storage_target = stores.first().map(|s| s.name.clone());
    let (_, body) = repo_restore::load_body(&repo, &stores, &row.id)?;
    if body.engine.get("mode").and_then(|m| m.as_str()) == Some("tenants") {
        return fail(
            ExitStatus::Usage,
            format!(
                "backup {} is a tenant export (rows only, no schema).",
                row.id
            ),
            "DR needs a full backup: name one with --backup.",
        );
    }
    let spec = postgres_spec(config, source);
    // Where to restore.
    let (target, pg_bin_dir) = match mode {
        Mode::Run(a) => (
            pg::restore::target_from_url(&a.target_db, a.password_file.as_deref())?,
            a.pg_bin_dir.clone(),
        ),
        Mode::Drill(a) => {
            let t = match (&a.scratch_db, spec) {
                (Some(u), _) => ConnInfo::new(u, a.password_file.as_deref())?,
                (None, Some(p)) => {
                    let base = ConnInfo::new(&p.url, p.password_file.as_deref())?;
                    let name: String = format!("vaultctl_drill_{source}").chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).take(60).collect();
                    base.with_db(&name)
                }
                (None, None) => return fail(ExitStatus::Usage, format!("'{source}' is not a configured postgres source, so there is no server to drill on."), "Name a scratch database with --scratch-db URL."),
            };
            (t, a.pg_bin_dir.clone())
        }
    };
    if let Mode::Drill(_) = mode {
        steps.time("create scratch database", || {
            let admin = target.with_db("postgres").connect().or_else(|_| target.with_db("template1").connect())?;
            let exists = !pg::query(&admin, "SELECT 1 FROM pg_database WHERE datname = $1", &[&target.dbname()])?.is_empty();
            if exists {
                return fail(
                    ExitStatus::Usage,
                    format!("the scratch database {} already exists.", target.display()),
                    "A drill creates and drops its own scratch database; name one that does not exist with --scratch-db (an earlier drill may have been killed: drop it by hand once you are sure).",
                );
            }
            pg::execute(&admin, &format!("CREATE DATABASE {} TEMPLATE template0", pg::quote_ident(target.dbname())))?;
            Ok(((), target.display()))
        })?;
    } else if let Mode::Run(a) = mode {
        if !a.yes {
            confirm(&format!(
                "restore backup {} of '{source}' into {}",
                row.id,
                target.display()
            ))?;
        }
    }
    let result = (|| -> Result<()> {
        let args = RestoreArgs {
            backup: Some(row.id.clone()),
            to: None,
            stdout: false,
            force: false,
            target: None,
            artifact: None,
            kind: Some(PgType::Full),
            target_db: Some(target.display()),
            tenants: Vec::new(),
            create: true,
            clean: false,
            reason: reason.clone(),
            yes: true,
            pg_bin_dir: pg_bin_dir.clone(),
            ..Default::default()
        };
        let o = steps.time("restore (full)", || {
            let o = restore_cmd::restore_db(
                ctx,
                &args,
                config,
                &repo,
                catalog,
                &row,
                stores.clone(),
                &body,
                target.clone(),
            )?;
            let d = format!(
                "{} rows into {} in {} ({:.1} MB/s); stream hash verified (restore log #{})",
                o.report.rows,
                target.display(),
                output::duration_ms(o.ms),
                crate::catalog::mb_per_s(row.bytes, o.ms),
                o.log_id
            );
            Ok((o, d))
        })?;
        out.restore_id = Some(o.log_id);
        out.restore_ms = Some(o.ms);
        let v = steps.time("check tables and rows", || {
            let v = verify_restore(&target, &body.engine, &o.report.tables)?;
            let d = format!("{}/{} tables present, {} rows{}", v.tables_present, v.tables_expected, v.rows, if v.ok { ", all match".to_string() } else { format!(": {}", v.problems.join("; ")) });
            if !v.ok {
                out.verification = Some(v.clone());
                return Err(Failure::new(ExitStatus::Failure, format!("the restored database does not match backup {}: {}.", row.id, v.problems.join("; ")))
                    .with_remedy("Look at the report's table checks; restore an older backup with --backup, and run `vaultctl verify --read-data`.")
                    .into());
            }
            Ok((v, d))
        })?;
        out.rto_ms = Some(started.elapsed().as_millis() as u64);
        out.verification = Some(v);
        Ok(())
    })();
    if let Mode::Drill(_) = mode {
        let dropped = steps.time("drop scratch database", || {
            let admin = target
                .with_db("postgres")
                .connect()
                .or_else(|_| target.with_db("template1").connect())?;
            pg::execute(
                &admin,
                &format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    pg::quote_ident(target.dbname())
                ),
            )?;
            Ok(((), target.display()))
        });
        result?;
        dropped?;
    } else {
        result?;
    }
    out.repo = Some(repo);
    Ok(target.display())
}

fn latest(catalog: &Catalog, source: &str) -> Result<BackupRow> {
    catalog.latest_completed(source)?.ok_or_else(|| {
        Failure::new(ExitStatus::Failure, format!("source '{source}' has no completed backup in the catalog or the repository."))
            .with_remedy("Check the source name (`vaultctl list`) and that the config points at the right targets.")
            .into()
    })
}

fn confirm(what: &str) -> Result<()> {
    let ok = dialoguer::Confirm::with_theme(&dialoguer::theme::ColorfulTheme::default())
        .with_prompt(format!("About to {what}. Go on?"))
        .default(false)
        .interact_opt()
        .map_err(|e| anyhow::anyhow!("cannot ask on the terminal: {e}"))?;
    if ok != Some(true) {
        return fail(
            ExitStatus::Failure,
            "the DR run was cancelled; nothing was written.",
            "Run it again and confirm, or pass --yes.",
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    kind: &str,
    id: i64,
    source: &str,
    target: &str,
    reason: Option<&str>,
    started_at: &str,
    finished_at: &str,
    out: &Outcome,
    steps: &[Step],
    error: Option<&str>,
) -> String {
    let mut s = String::new();
    let title = if kind == "drill" {
        "DR drill"
    } else {
        "DR run"
    };
    s.push_str(&format!(
        "# vaultctl {title} {id}: {}\n\n",
        if error.is_none() {
            "SUCCEEDED"
        } else {
            "FAILED"
        }
    ));
    s.push_str("| | |\n|---|---|\n");
    let mut row =
        |k: &str, v: String| s.push_str(&format!("| {k} | {} |\n", v.replace('|', "\\|")));
    row("source", source.into());
    row(
        "backup",
        out.backup
            .as_ref()
            .map(|b| {
                format!(
                    "{} (taken {}, {})",
                    b.id,
                    b.started_at,
                    output::bytes(b.bytes)
                )
            })
            .unwrap_or_else(|| "-".into()),
    );
    row("restored into", target.into());
    row(
        "read from target",
        out.storage_target.clone().unwrap_or_else(|| "-".into()),
    );
    for (t, why) in &out.unavailable {
        row("unavailable target", format!("{t}: {why}"));
    }
    row("reason", reason.unwrap_or("-").into());
    row(
        "operator",
        format!("{} on {}", restore_cmd::operator(), crate::repo::hostname()),
    );
    row("started", started_at.into());
    row("finished", finished_at.into());
    row(
        "RTO achieved",
        out.rto_ms
            .filter(|_| error.is_none())
            .map(output::duration_ms)
            .unwrap_or_else(|| "- (not recovered)".into()),
    );
    if let Some(e) = error {
        row("error", e.into());
    }
    s.push_str("\n## Steps\n\n| # | step | result | time | detail |\n|---|---|---|---|---|\n");
    for (i, st) in steps.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            i + 1,
            st.step,
            if st.ok { "ok" } else { "FAILED" },
            output::duration_ms(st.ms),
            st.detail.replace('|', "\\|")
        ));
    }
    if let Some(v) = &out.verification {
        s.push_str(&format!("\n## Table checks\n\n{}/{} tables present, {} rows.\n\n| table | present | rows in backup | basis | rows restored | result |\n|---|---|---|---|---|---|\n", v.tables_present, v.tables_expected, v.rows));
        for t in &v.tables {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                t.table,
                if t.present { "yes" } else { "NO" },
                t.expected
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                t.basis,
                t.actual
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                t.status
            ));
        }
    }
    s
}

// ---------------------------------------------------------------- history

fn history(ctx: &Ctx, args: HistoryArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let catalog = Catalog::open(&config.catalog)?;
    let rows = catalog.dr_runs(args.kind.as_deref(), Some(args.limit))?;
    if ctx.global.json {
        output::json(&rows)?;
        return Ok(ExitStatus::Success);
    }
    if rows.is_empty() {
        output::line("no DR runs or drills yet (`vaultctl dr drill --source S` runs one)")?;
        return Ok(ExitStatus::Success);
    }
    let mut t = output::table();
    t.set_header(vec![
        "id",
        "kind",
        "source",
        "backup",
        "started",
        "outcome",
        "RTO",
        "tables",
        "rows",
        "target db",
        "error",
    ]);
    for r in &rows {
        t.add_row(vec![
            r.id.to_string(),
            r.kind.clone(),
            r.source.clone(),
            r.backup_id.clone().unwrap_or_else(|| "-".into()),
            r.started_at.clone(),
            r.outcome.clone(),
            r.rto_ms
                .map(output::duration_ms)
                .unwrap_or_else(|| "-".into()),
            r.tables
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            r.rows.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            r.target_db.clone().unwrap_or_else(|| "(scratch)".into()),
            r.error
                .clone()
                .map(|e| e.chars().take(80).collect::<String>())
                .unwrap_or_default(),
        ]);
    }
    output::line(&t.to_string())?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_bytes_reads_the_file_system_of_a_path() {
        let t = tempfile::tempdir().unwrap();
        assert!(super::free_bytes(t.path()).is_some_and(|b| b > 0));
        assert_eq!(super::free_bytes(&t.path().join("missing")), None);
    }
}
