//! The disaster-recovery jobs.
//!
//! * [`plan`]: the runbook as checks, each pass/fail/unknown.
//! * [`execute`] a run: a fresh machine with only config and identity gets
//!   the database back: catalog rebuilt when missing, latest verified backup
//!   (else the latest completed), full restore through the restore job,
//!   every table and its rows checked, achieved RTO recorded, a Markdown
//!   report.
//! * [`execute`] a drill: the same into a scratch database that is created
//!   and dropped; marks the backup verified-by-restore; alerts through
//!   [`super::finish`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::restore::{postgres_spec, DbOptions, Destination, Opened, Request};
use super::{finish, operator, Confirmed, Job, Ran};
use crate::catalog::{BackupRow, Catalog, DrFinish};
use crate::config::{Config, SourceSpec};
use crate::engine::postgres::check::{verify_restore, Verification};
use crate::engine::postgres::restore::RestoreType;
use crate::engine::postgres::{self as pg, ConnInfo};
use crate::error::{fail, paragraph, ExitStatus, Failure};
use crate::humanize;
use crate::repo::{self, restore as repo_restore, Repository};

// ---------------------------------------------------------------- plan

/// What `dr plan` checks.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    /// Only this source (default: every postgres source).
    pub source: Option<String>,
    /// Also check this server (where `dr run` would restore), with the
    /// file holding its password.
    pub target_db: Option<(String, Option<PathBuf>)>,
}

/// The runbook's checks; `ready` unless a check DR needs failed.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub ready: bool,
    pub checks: Vec<Check>,
}

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

impl Check {
    /// `PASS`, `UNKNOWN`, `FAIL`, or `FAIL (needed)` when DR needs it.
    pub fn status_text(&self) -> String {
        let needed = if self.required && self.status == "fail" {
            " (needed)"
        } else {
            ""
        };
        format!("{}{needed}", self.status.to_uppercase())
    }
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

pub fn age(config: &Config, ts: &str) -> String {
    match crate::clock::parse(ts) {
        Some(t) => {
            let secs = (config.clock.now() - t).whole_seconds().max(0) as u64;
            format!("{} ago", crate::clock::human(secs))
        }
        None => "-".into(),
    }
}

/// The runbook as checks; `config` is the result of loading the config
/// (a config that does not load is the first failed check).
pub fn plan(config: Result<Config>, req: &PlanRequest) -> Plan {
    let mut checks: Vec<Check> = Vec::new();
    match config {
        Ok(c) => {
            let detail = match &c.origin {
                crate::config::Origin::File(p) => format!("{} readable", p.display()),
                crate::config::Origin::Embedded => "built-in defaults (no config file)".to_string(),
            };
            check(&mut checks, "config", "pass", true, detail);
            plan_checks(&c, req, &mut checks);
        }
        Err(e) => check(&mut checks, "config", "fail", true, paragraph(&e)),
    }
    let ready = !checks.iter().any(|c| c.required && c.status == "fail");
    Plan { ready, checks }
}

fn plan_checks(config: &Config, req: &PlanRequest, checks: &mut Vec<Check>) {
    let holders = check_targets(config, checks);
    let identity_ok = check_identity(config, &holders, checks);
    let repo = if holders.is_empty() {
        None
    } else {
        match crate::ops::open_repository(config, None) {
            Ok(r) => Some(r),
            Err(e) => {
                if identity_ok {
                    check(checks, "open repository", "fail", true, paragraph(&e));
                }
                None
            }
        }
    };
    let catalog = check_catalog(config, checks);
    // Backups per source: from the catalog, else from the repository's manifests.
    let from_repo: Vec<crate::repo::manifest::Header> = match (&catalog, &repo) {
        (None, Some(r)) => manifest_headers(r),
        _ => Vec::new(),
    };
    let sources: Vec<String> = match &req.source {
        Some(s) => vec![s.clone()],
        None => config
            .sources
            .iter()
            .filter(|s| matches!(s.spec, SourceSpec::Postgres(_)))
            .map(|s| s.name.clone())
            .collect(),
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
    let known = Known {
        catalog: catalog.as_ref(),
        repo: repo.as_ref(),
        from_repo: &from_repo,
    };
    for source in &sources {
        check_source(config, req, &known, source, checks);
    }
}

/// What the plan could open: the catalog, else the repository's headers.
struct Known<'a> {
    catalog: Option<&'a Catalog>,
    repo: Option<&'a Repository>,
    from_repo: &'a [crate::repo::manifest::Header],
}

/// Each target reachable and holding the repository; the stores that do.
fn check_targets(config: &Config, checks: &mut Vec<Check>) -> Vec<crate::storage::Store> {
    let mut holders = Vec::new();
    for t in &config.targets {
        let step = format!("target '{}'", t.name);
        match t
            .store_spec()
            .and_then(|s| crate::storage::Store::open(&s, false))
            .and_then(|s| Ok((repo::read_repo_config(&s)?, s)))
        {
            Ok((Some(rc), s)) => {
                let detail = format!("reachable; holds repository {}", rc.repo_id);
                check(checks, step, "pass", false, detail);
                holders.push(s);
            }
            Ok((None, _)) => check(
                checks,
                step,
                "fail",
                false,
                "reachable, but holds no vaultctl repository",
            ),
            Err(e) => {
                let detail = format!("unreachable: {}", paragraph(&e));
                check(checks, step, "fail", false, detail)
            }
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
    holders
}

/// The identity: present and able to decrypt the repository's key material.
fn check_identity(
    config: &Config,
    holders: &[crate::storage::Store],
    checks: &mut Vec<Check>,
) -> bool {
    let p = match &config.keys.identity_file {
        None => {
            check(checks, "identity", "fail", true, "no identity is configured (keys.identity_file or --identity): restores need the private key");
            return false;
        }
        Some(p) if !p.exists() => {
            check(checks, "identity", "fail", true, format!("identity missing: {} does not exist; restores need the private key (keys.identity_file or --identity)", p.display()));
            return false;
        }
        Some(p) => p,
    };
    let ids = match crate::repo::keys::load_identities(p) {
        Err(e) => {
            let detail = format!("{} cannot be read: {}", p.display(), paragraph(&e));
            check(checks, "identity", "fail", true, detail);
            return false;
        }
        Ok(ids) => ids,
    };
    let key = holders.iter().find_map(|s| {
        s.get(repo::format::DEDUP_KEY_OBJECT)
            .ok()
            .flatten()
            .map(|b| (s.name.clone(), b))
    });
    match key {
        None => {
            check(
                checks,
                "identity",
                "unknown",
                true,
                format!(
                    "{} present, but no reachable target holds the key material to test it on",
                    p.display()
                ),
            );
            false
        }
        Some((target, b)) => match crate::repo::keys::decrypt(&ids, &b) {
            Ok(_) => {
                check(
                    checks,
                    "identity",
                    "pass",
                    true,
                    format!(
                        "{} decrypts the repository's key material (target '{target}')",
                        p.display()
                    ),
                );
                true
            }
            Err(_) => {
                check(checks, "identity", "fail", true, format!("{} cannot decrypt the repository's key material: it is not an identity of this repository", p.display()));
                false
            }
        },
    }
}

/// The catalog: present, or to be rebuilt by `dr run`.
fn check_catalog(config: &Config, checks: &mut Vec<Check>) -> Option<Catalog> {
    let path = config.catalog.display();
    if !config.catalog.exists() {
        let detail =
            format!("missing ({path}); `dr run` rebuilds it from the first healthy target");
        check(checks, "catalog", "pass", false, detail);
        return None;
    }
    match Catalog::open(&config.catalog) {
        Ok(c) => {
            let n = c.completed_count().unwrap_or(0);
            let detail = format!("{path} ({n} completed backups)");
            check(checks, "catalog", "pass", false, detail);
            Some(c)
        }
        Err(e) => {
            let detail = format!(
                "{path} unreadable ({}); `dr run` rebuilds it after you move it away",
                paragraph(&e)
            );
            check(checks, "catalog", "fail", false, detail);
            None
        }
    }
}

/// The checks of one source: its backups, the client, the server, disk, RTO.
fn check_source(
    config: &Config,
    req: &PlanRequest,
    known: &Known,
    source: &str,
    checks: &mut Vec<Check>,
) {
    let latest = check_backups(config, known, source, checks);
    let data_dir = check_target_db(config, req, source, checks);
    // Free disk for the restore: the server's data directory when it is on this machine.
    let need = latest.as_ref().map(|l| l.2).unwrap_or(0);
    match data_dir.as_deref().map(Path::new).filter(|p| p.exists()).and_then(|p| crate::ops::doctor::free_bytes_at(p).map(|f| (p.to_path_buf(), f))) {
        Some((p, free)) => {
            let want = need + need / 5;
            check(checks, format!("free disk for '{source}'"), if free >= want { "pass" } else { "fail" }, false, format!("{} free in {}; the backup holds {} of SQL (about {} needed)", humanize::bytes(free), p.display(), humanize::bytes(need), humanize::bytes(want)));
        }
        None => check(checks, format!("free disk for '{source}'"), "unknown", false, format!("the database server's disk is not visible from here; it needs room for about {} of data plus indexes", humanize::bytes(need))),
    }
    check_rto(known, source, latest.as_ref(), checks);
}

/// The latest and the latest verified backup of `source`.
fn check_backups(
    config: &Config,
    known: &Known,
    source: &str,
    checks: &mut Vec<Check>,
) -> Option<Latest> {
    let (latest, verified): (Option<Latest>, Option<(String, String)>) = match known.catalog {
        Some(c) => (
            c.latest_completed(source)
                .ok()
                .flatten()
                .map(|b| (b.id, b.started_at.into(), b.bytes)),
            c.latest_verified(source).ok().flatten().map(|b| {
                (
                    b.id.clone(),
                    c.verified_at(&b.id)
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| b.started_at.into()),
                )
            }),
        ),
        None => (
            known
                .from_repo
                .iter()
                .filter(|h| h.source == source)
                .max_by(|a, b| a.started_at.cmp(&b.started_at))
                .map(|h| (h.id.clone(), h.started_at.clone(), h.bytes)),
            None,
        ),
    };
    let step = format!("latest backup of '{source}'");
    match &latest {
        Some((id, at, bytes)) => {
            let detail = format!(
                "{id}, {} ({at}), {}",
                age(config, at),
                humanize::bytes(*bytes)
            );
            check(checks, step, "pass", true, detail)
        }
        None if known.catalog.is_none() && known.repo.is_none() => check(
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
    latest
}

/// The database server to restore into; its data directory when it says.
fn check_target_db(
    config: &Config,
    req: &PlanRequest,
    source: &str,
    checks: &mut Vec<Check>,
) -> Option<String> {
    let (target, required) = match &req.target_db {
        Some((u, pw)) => (ConnInfo::new(u, pw.as_deref()), true),
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
        let v: String = pg::query(&c, "SELECT current_setting('server_version')", &[])?[0].get(0);
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
    data_dir
}

/// The RTO estimate from recorded restore speeds.
fn check_rto(known: &Known, source: &str, latest: Option<&Latest>, checks: &mut Vec<Check>) {
    let speed = known.catalog.and_then(|c| c.restore_speed().ok().flatten());
    let step = format!("RTO estimate for '{source}'");
    match (speed, latest) {
        (Some((b, ms)), Some((_, _, bytes))) if b > 0 => {
            let est = (*bytes as f64 * ms as f64 / b as f64) as u64;
            check(
                checks,
                step,
                "pass",
                false,
                format!(
                    "about {} to restore {} (recorded restores: {:.1} MB/s){}",
                    humanize::duration_ms(est),
                    humanize::bytes(*bytes),
                    crate::catalog::mb_per_s(b, ms),
                    if known.catalog.is_none() {
                        ", plus the catalog rebuild"
                    } else {
                        ""
                    }
                ),
            );
        }
        _ => check(
            checks,
            step,
            "unknown",
            false,
            "no restore recorded on this machine yet (a `dr drill` records one)",
        ),
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

// ---------------------------------------------------------------- run / drill

/// `dr run`: restore a source's backup into a database and check it.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub source: String,
    /// The database to restore into (created when missing; must be empty).
    pub target_db: String,
    pub password_file: Option<PathBuf>,
    pub reason: String,
    /// Backup id or prefix (default: the latest verified, else the latest completed).
    pub backup: Option<String>,
    /// Write a Markdown report here.
    pub report: Option<PathBuf>,
    pub pg_bin_dir: Option<PathBuf>,
    /// Count every table's rows with `count(*)` after the restore, rather
    /// than taking the server's COPY acknowledgements.
    pub count_rows: bool,
}

/// `dr drill`: a test restore into a scratch database, created and dropped.
#[derive(Debug, Clone)]
pub struct DrillRequest {
    pub source: String,
    /// Default: vaultctl_drill_SOURCE on the source's server.
    pub scratch_db: Option<String>,
    pub password_file: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub pg_bin_dir: Option<PathBuf>,
    /// As [`RunRequest::count_rows`].
    pub count_rows: bool,
}

pub enum Mode {
    Run(RunRequest),
    Drill(DrillRequest),
}

impl Mode {
    fn kind(&self) -> &'static str {
        match self {
            Mode::Run(_) => "run",
            Mode::Drill(_) => "drill",
        }
    }

    fn source(&self) -> &str {
        match self {
            Mode::Run(a) => &a.source,
            Mode::Drill(a) => &a.source,
        }
    }

    fn reason(&self) -> String {
        match self {
            Mode::Run(a) => a.reason.clone(),
            Mode::Drill(_) => "scheduled DR drill (test restore)".to_string(),
        }
    }

    fn report_file(&self) -> Option<&PathBuf> {
        match self {
            Mode::Run(a) => a.report.as_ref(),
            Mode::Drill(a) => a.report.as_ref(),
        }
    }

    fn count_rows(&self) -> bool {
        match self {
            Mode::Run(a) => a.count_rows,
            Mode::Drill(a) => a.count_rows,
        }
    }
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
pub struct Outcome {
    pub backup: Option<BackupRow>,
    pub storage_target: Option<String>,
    pub unavailable: Vec<(String, String)>,
    pub restore_id: Option<i64>,
    pub restore_ms: Option<u64>,
    pub verification: Option<Verification>,
    pub rto_ms: Option<u64>,
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

/// What a DR run or drill did; the CLI prints it ([`Report::json`] for
/// `--json`).
pub struct Report {
    pub id: i64,
    pub kind: &'static str,
    pub source: String,
    /// Where it restored, for people (password-free).
    pub target_text: String,
    pub outcome: Outcome,
    pub steps: Vec<Step>,
    pub error: Option<String>,
    pub report_file: Option<PathBuf>,
    /// Why it failed; `None` when it succeeded.
    pub failure: Option<anyhow::Error>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// The table checks' result for people: counts, then a match or the problems.
    pub fn checks_line(&self) -> Option<String> {
        let v = self.outcome.verification.as_ref()?;
        let result = if v.ok {
            "every table matches the backup".to_string()
        } else {
            v.problems.join("; ")
        };
        Some(format!("checks: {}; {result}", v.counts()))
    }

    /// The closing line of a run or drill that succeeded.
    pub fn success_line(&self) -> Option<String> {
        let out = &self.outcome;
        self.ok().then(|| {
            format!(
                "DR {} {} succeeded: backup {} of '{}' restored into {} and verified; RTO achieved: {}",
                self.kind,
                self.id,
                out.backup.as_ref().map(|b| b.id.as_str()).unwrap_or("?"),
                self.source,
                self.target_text,
                humanize::duration_ms(out.rto_ms.unwrap_or(0))
            )
        })
    }

    pub fn json(&self) -> serde_json::Value {
        let out = &self.outcome;
        serde_json::json!({
            "id": self.id,
            "kind": self.kind,
            "source": self.source,
            "ok": self.ok(),
            "backup": out.backup.as_ref().map(|b| b.id.clone()),
            "target_db": self.target_text,
            "storage_target": out.storage_target,
            "unavailable_targets": out.unavailable.iter().map(|(t, why)| serde_json::json!({"target": t, "error": why})).collect::<Vec<_>>(),
            "rto_ms": if self.ok() { out.rto_ms } else { None },
            "restore_ms": out.restore_ms,
            "steps": self.steps,
            "checks": out.verification,
            "error": self.error,
            "report": self.report_file,
        })
    }
}

/// Runs a DR run or drill, records it in the DR history (and the backup as
/// verified by a restore when it succeeded), ends in [`finish`] and writes
/// the Markdown report when asked. An `Err` means it could not be recorded;
/// a failed run is a [`Report`] with `failure` set.
pub fn execute(job: &Job, mode: &Mode) -> Result<Report> {
    let started = Instant::now();
    let started_at = crate::clock::now_rfc3339();
    let config = job.config;
    let (kind, source, reason) = (mode.kind(), mode.source().to_string(), mode.reason());
    let catalog_missing = !config.catalog.exists();
    let mut catalog = Catalog::open(&config.catalog)?;
    let target_display = match mode {
        Mode::Run(a) => Some(pg::redact_url(&a.target_db)),
        Mode::Drill(_) => None,
    };
    let run_id = catalog.dr_started(
        kind,
        &source,
        target_display.as_deref(),
        Some(&reason),
        &operator(),
        &crate::repo::hostname(),
        &started_at,
    )?;
    let mut steps = Steps::default();
    let mut out = Outcome::default();
    let result = run_steps(
        job,
        mode,
        &mut catalog,
        catalog_missing,
        started,
        &mut steps,
        &mut out,
    );
    let finished_at = crate::clock::now_rfc3339();
    record(
        &catalog,
        run_id,
        kind,
        &finished_at,
        &result,
        &out,
        &steps.list,
    )?;
    end_in_finish(config, &catalog, mode, &out, &result);
    let target_text = match (mode, &result) {
        (Mode::Run(a), _) => pg::redact_url(&a.target_db),
        (Mode::Drill(_), Ok(t)) => format!("{t} (scratch, dropped)"),
        (Mode::Drill(_), Err(_)) => "scratch database".into(),
    };
    let error = result.as_ref().err().map(paragraph);
    let report = Report {
        id: run_id,
        kind,
        source,
        target_text,
        outcome: out,
        steps: steps.list,
        error,
        report_file: mode.report_file().cloned(),
        failure: result.err(),
    };
    if let Some(f) = &report.report_file {
        let md = markdown(&report, Some(&reason), &started_at, &finished_at);
        std::fs::write(f, md).map_err(|e| {
            Failure::new(
                ExitStatus::Failure,
                format!("cannot write the report {}: {e}", f.display()),
            )
        })?;
    }
    Ok(report)
}

/// Hooks, alerts and metrics of a run (as a restore) or drill.
fn end_in_finish(
    config: &Config,
    catalog: &Catalog,
    mode: &Mode,
    out: &Outcome,
    result: &Result<String>,
) {
    let source = mode.source();
    let backup = out
        .backup
        .as_ref()
        .map(|b| b.id.clone())
        .unwrap_or_else(|| "?".into());
    let ran = match mode {
        Mode::Drill(_) => Ran::Drill {
            source,
            backup: &backup,
        },
        Mode::Run(_) => Ran::Restore {
            source,
            backup: &backup,
        },
    };
    finish(config, Some(catalog), ran, result);
}

/// The DR history entry, and the verification mark (catalog and
/// repository) of a backup a run or drill restored and checked.
fn record(
    catalog: &Catalog,
    run_id: i64,
    kind: &str,
    finished_at: &str,
    result: &Result<String>,
    out: &Outcome,
    steps: &[Step],
) -> Result<()> {
    let v = out.verification.as_ref();
    catalog.dr_finished(
        run_id,
        finished_at,
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
            steps: Some(serde_json::to_value(steps)?),
            error: result.as_ref().err().map(paragraph).as_deref(),
        },
    )?;
    let (Ok(_), Some(b)) = (result, &out.backup) else {
        return Ok(());
    };
    let method = if kind == "drill" { "drill" } else { "dr-run" };
    catalog.mark_verified(&b.id, method, run_id, finished_at)?;
    if let Some(r) = &out.repo {
        record_mark(
            r,
            &repo::verified::Mark {
                backup_id: b.id.clone(),
                method: method.into(),
                verified_at: finished_at.to_string(),
                host: crate::repo::hostname(),
                rto_ms: out.rto_ms,
            },
        );
    }
    Ok(())
}

fn run_steps(
    job: &Job,
    mode: &Mode,
    catalog: &mut Catalog,
    catalog_missing: bool,
    started: Instant,
    steps: &mut Steps,
    out: &mut Outcome,
) -> Result<String> {
    let config = job.config;
    let source = mode.source();
    let repo = open_step(config, steps)?;
    out.unavailable = repo.unavailable.clone();
    catalog_step(config, catalog, &repo, catalog_missing, source, steps)?;
    let row = steps.time("choose backup", || choose(config, catalog, mode))?;
    out.backup = Some(row.clone());
    let stores = super::restore::stores_for(&repo, &row);
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
    let target = prepare_target(job, mode, &row, steps)?;
    let opened = Opened {
        repo: &repo,
        row: &row,
        body: &body,
        stores,
    };
    let result = restore_and_check(job, mode, &opened, catalog, &target, started, steps, out);
    if let Mode::Drill(_) = mode {
        // Dropped whether or not the restore worked; its error comes first.
        let dropped = drop_scratch(&target, steps);
        result?;
        dropped?;
    } else {
        result?;
    }
    out.repo = Some(repo);
    Ok(target.display())
}

/// The first step: the repository opened (falling back past targets this
/// machine cannot reach, each named).
fn open_step(config: &Config, steps: &mut Steps) -> Result<Repository> {
    steps.time("open repository", || {
        let r = crate::ops::open_repository(config, None)?;
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
    })
}

/// On a new machine (no catalog, or no backup of the source in it): the
/// catalog rebuilt from the repository; else bound to it.
fn catalog_step(
    config: &Config,
    catalog: &mut Catalog,
    repo: &Repository,
    catalog_missing: bool,
    source: &str,
    steps: &mut Steps,
) -> Result<()> {
    let empty = catalog.latest_completed(source)?.is_none();
    if catalog_missing || empty {
        steps.time("rebuild catalog", || {
            catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
            let r = super::catalog::rebuild(repo, catalog, None)?;
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
    Ok(())
}

/// A drill's scratch database dropped.
fn drop_scratch(target: &ConnInfo, steps: &mut Steps) -> Result<()> {
    steps.time("drop scratch database", || {
        let admin = admin_connection(target)?;
        pg::execute(
            &admin,
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                pg::quote_ident(target.dbname())
            ),
        )?;
        Ok(((), target.display()))
    })
}

fn admin_connection(target: &ConnInfo) -> Result<std::sync::Arc<tokio_postgres::Client>> {
    target
        .with_db("postgres")
        .connect()
        .or_else(|_| target.with_db("template1").connect())
}

/// The backup a run or drill restores.
fn choose(config: &Config, catalog: &Catalog, mode: &Mode) -> Result<(BackupRow, String)> {
    let source = mode.source();
    let (row, why) = match mode {
        Mode::Run(RunRequest {
            backup: Some(spec), ..
        }) => (catalog.resolve_backup(spec)?, "as requested"),
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
            None => (
                latest(catalog, source)?,
                "the latest completed (none is verified by a restore on this machine)",
            ),
        },
    };
    if row.status != "completed" {
        return fail(
            ExitStatus::Usage,
            format!("backup {} is {}, not completed.", row.id, row.status),
            "Pick a completed backup from `vaultctl list --status completed`.",
        );
    }
    if row.kind != "postgres" {
        return fail(
            ExitStatus::Usage,
            format!(
                "backup {} is a {} backup; DR restores postgres backups.",
                row.id, row.kind
            ),
            "Restore files with `vaultctl restore ID --to DIR`.",
        );
    }
    let d = format!(
        "{} ({why}), taken {} ({}), {}",
        row.id,
        row.started_at,
        age(config, &row.started_at),
        humanize::bytes(row.bytes)
    );
    Ok((row, d))
}

/// Where to restore: the run's database (confirmed), or a drill's scratch
/// database, created here.
fn prepare_target(job: &Job, mode: &Mode, row: &BackupRow, steps: &mut Steps) -> Result<ConnInfo> {
    let source = mode.source();
    let a = match mode {
        Mode::Run(a) => {
            let target = pg::restore::target_from_url(&a.target_db, a.password_file.as_deref())?;
            job.confirm.confirm(&format!(
                "restore backup {} of '{source}' into {}",
                row.id,
                target.display()
            ))?;
            return Ok(target);
        }
        Mode::Drill(a) => a,
    };
    // No scratch database given: the one in the source's [source.drill], if any.
    let plan = job.config.drill_plan(source);
    let (scratch_db, password_file) = match (&a.scratch_db, plan) {
        (Some(u), _) => (Some(u), a.password_file.as_deref()),
        (None, Some(d)) => (d.scratch_db.as_ref(), d.password_file.as_deref()),
        (None, None) => (None, None),
    };
    let target = match (scratch_db, postgres_spec(job.config, source)) {
        (Some(u), _) => ConnInfo::new(u, password_file)?,
        (None, Some(p)) => {
            let base = ConnInfo::new(&p.url, p.password_file.as_deref())?;
            let name: String = format!("vaultctl_drill_{source}").chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).take(60).collect();
            base.with_db(&name)
        }
        (None, None) => return fail(ExitStatus::Usage, format!("'{source}' is not a configured postgres source, so there is no server to drill on."), "Name a scratch database with --scratch-db URL."),
    };
    steps.time("create scratch database", || {
        let admin = admin_connection(&target)?;
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
    Ok(target)
}

/// The full restore through the restore job, then every table checked.
#[allow(clippy::too_many_arguments)]
fn restore_and_check(
    job: &Job,
    mode: &Mode,
    b: &Opened,
    catalog: &mut Catalog,
    target: &ConnInfo,
    started: Instant,
    steps: &mut Steps,
    out: &mut Outcome,
) -> Result<()> {
    let row = b.row;
    let req = Request {
        backup: row.id.clone(),
        target: None,
        artifact: None,
        reason: Some(mode.reason()),
        destination: Destination::Stdout,
    };
    let db = DbOptions {
        kind: RestoreType::Full,
        target: target.clone(),
        tenants: Vec::new(),
        create: true,
        clean: false,
        jobs: None,
        pg_bin_dir: match mode {
            Mode::Run(a) => a.pg_bin_dir.clone(),
            Mode::Drill(a) => a.pg_bin_dir.clone(),
        },
    };
    // Confirmed already (a run) or nothing to confirm (a drill's scratch).
    let confirmed = Job {
        config: job.config,
        progress: job.progress.clone(),
        confirm: &Confirmed,
    };
    let o = steps.time("restore (full)", || {
        let o = super::restore::to_database(&confirmed, b, catalog, &req, &db)?;
        let d = format!(
            "{} rows into {} in {} ({:.1} MB/s); stream hash verified (restore log #{})",
            o.report.rows,
            target.display(),
            humanize::duration_ms(o.ms),
            crate::catalog::mb_per_s(row.bytes, o.ms),
            o.log_id
        );
        Ok((o, d))
    })?;
    out.restore_id = Some(o.log_id);
    out.restore_ms = Some(o.ms);
    let v = steps.time("check tables and rows", || {
        crate::repo::test_pause("dr-check");
        let v = verify_restore(target, &b.body.engine, &o.report.tables, mode.count_rows())?;
        let d = format!("{} ({}){}", v.counts(), v.sources(), if v.ok { ", all match".to_string() } else { format!(": {}", v.problems.join("; ")) });
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
}

fn latest(catalog: &Catalog, source: &str) -> Result<BackupRow> {
    catalog.latest_completed(source)?.ok_or_else(|| {
        Failure::new(ExitStatus::Failure, format!("source '{source}' has no completed backup in the catalog or the repository."))
            .with_remedy("Check the source name (`vaultctl list`) and that the config points at the right targets.")
            .into()
    })
}

/// The Markdown report of a run or drill: what was restored, by whom and
/// how fast, then each step, then the table checks.
fn markdown(r: &Report, reason: Option<&str>, started_at: &str, finished_at: &str) -> String {
    let title = if r.kind == "drill" {
        "DR drill"
    } else {
        "DR run"
    };
    let mut s = format!(
        "# vaultctl {title} {}: {}\n\n",
        r.id,
        if r.error.is_none() {
            "SUCCEEDED"
        } else {
            "FAILED"
        }
    );
    s.push_str(&markdown_facts(r, reason, started_at, finished_at));
    s.push_str(&markdown_steps(&r.steps));
    if let Some(v) = &r.outcome.verification {
        s.push_str(&markdown_checks(v));
    }
    s
}

/// The report's first table: source, backup, target, who, when, the RTO.
fn markdown_facts(r: &Report, reason: Option<&str>, started_at: &str, finished_at: &str) -> String {
    let (out, error) = (&r.outcome, r.error.as_deref());
    let mut s = String::from("| | |\n|---|---|\n");
    let mut row =
        |k: &str, v: String| s.push_str(&format!("| {k} | {} |\n", v.replace('|', "\\|")));
    row("source", r.source.clone());
    row(
        "backup",
        out.backup
            .as_ref()
            .map(|b| {
                format!(
                    "{} (taken {}, {})",
                    b.id,
                    b.started_at,
                    humanize::bytes(b.bytes)
                )
            })
            .unwrap_or_else(|| "-".into()),
    );
    row("restored into", r.target_text.clone());
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
        format!("{} on {}", operator(), crate::repo::hostname()),
    );
    row("started", started_at.into());
    row("finished", finished_at.into());
    row(
        "RTO achieved",
        out.rto_ms
            .filter(|_| error.is_none())
            .map(humanize::duration_ms)
            .unwrap_or_else(|| "- (not recovered)".into()),
    );
    if let Some(e) = error {
        row("error", e.into());
    }
    s
}

/// The report's steps, numbered, with result and time.
fn markdown_steps(steps: &[Step]) -> String {
    let mut s = String::from(
        "\n## Steps\n\n| # | step | result | time | detail |\n|---|---|---|---|---|\n",
    );
    for (i, st) in steps.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            i + 1,
            st.step,
            if st.ok { "ok" } else { "FAILED" },
            humanize::duration_ms(st.ms),
            st.detail.replace('|', "\\|")
        ));
    }
    s
}

/// The report's table checks: each table present, and its rows.
fn markdown_checks(v: &Verification) -> String {
    let mut s = format!("\n## Table checks\n\n{}; {}.\n\n| table | present | rows in backup | basis | rows restored | from | result |\n|---|---|---|---|---|---|---|\n", v.counts(), v.sources());
    for t in &v.tables {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            t.table,
            if t.present { "yes" } else { "NO" },
            t.expected
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            t.basis,
            t.actual
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            match t.actual_from {
                "copy" => "COPY tags",
                "count" => "count(*)",
                _ => "-",
            },
            t.status
        ));
    }
    s
}
