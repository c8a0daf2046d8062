//! The tenant point-in-time restore job: one or more tenants of a live
//! database put back as they were at a time T, without touching any other
//! tenant's rows.
//!
//! 1. the newest base backup of the `postgres-physical` source consistent
//!    before T, plus archived WAL up to T, recovered into a private
//!    [`Sandbox`] cluster under the work directory (own port, no TCP, a
//!    private socket; space checked first);
//! 2. the tenants' rows exported from the sandbox in one snapshot, in
//!    foreign-key order (the tenant export of tenant backups);
//! 3. applied to the target database in one transaction
//!    ([`tenant_apply`]): merge (undelete), replace (the tenant's rows as
//!    at T), or dry-run (a per-table diff, nothing written);
//! 4. the sandbox stopped and deleted — on success, failure, Ctrl-C, and
//!    after a kill -9 by the next run.
//!
//! Recorded in the restore log (tenants, T, the time replay reached, the
//! mode and per-table counts) and ended in [`finish`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use time::OffsetDateTime;

use super::pitr::{bin_dir, choose_base, prepare, restore_command, Base};
use super::{finish, Job, Ran};
use crate::catalog::{BackupRow, Catalog};
use crate::config::{Config, PhysicalSpec, PostgresSpec, SourceSpec};
use crate::engine::postgres::pitr;
use crate::engine::postgres::restore::Options;
use crate::engine::postgres::sandbox::{self, Sandbox, Stale};
use crate::engine::postgres::tenant_apply::{self, Action, Applied};
use crate::engine::postgres::tenants::{Selection, TenantExport};
use crate::engine::postgres::ConnInfo;
use crate::error::{fail, ExitStatus};
use crate::repo::backup::Source;
use crate::repo::Repository;

/// A tenant point-in-time restore.
#[derive(Debug, Clone)]
pub struct Request {
    pub tenants: Vec<String>,
    pub to_time: OffsetDateTime,
    pub target_db: ConnInfo,
    pub action: Action,
    /// The `postgres-physical` source (default: the only one configured).
    pub source: Option<String>,
    /// The `postgres` source whose [source.tenants] says how tenants are
    /// identified (default: the one whose database is the target's).
    pub tenant_source: Option<String>,
    /// Where the sandbox goes (default: [`Config::sandbox_dir`]).
    pub work_dir: Option<PathBuf>,
    /// As root: the user that runs the sandbox (default: the work dir's owner).
    pub owner: Option<String>,
    pub pg_bin_dir: Option<PathBuf>,
    /// Read from this repository target only.
    pub target: Option<String>,
    pub reason: Option<String>,
    /// The identity file named on the command line (for `wal fetch`).
    pub identity: Option<PathBuf>,
}

/// How long each phase took.
#[derive(Debug, Default, Serialize)]
pub struct Phases {
    pub restore_base_ms: u64,
    pub replay_ms: u64,
    pub export_and_apply_ms: u64,
    pub cleanup_ms: u64,
}

/// A finished tenant point-in-time restore.
#[derive(Debug, Serialize)]
pub struct Outcome {
    #[serde(rename = "restore")]
    pub log_id: i64,
    pub backup: String,
    pub mode: Action,
    pub tenants: Vec<String>,
    pub to_time: String,
    /// The commit time of the last transaction replayed.
    pub reached: Option<String>,
    pub target_db: String,
    #[serde(flatten)]
    pub applied: Applied,
    /// Stale sandboxes of killed runs this run removed.
    pub stale_removed: Vec<Stale>,
    pub phases: Phases,
    #[serde(rename = "duration_ms")]
    pub ms: u64,
}

impl Outcome {
    /// What was put back, from which base backup, as of when.
    pub fn headline(&self) -> String {
        format!(
            "tenant{} {} at {} (base backup {}; last transaction replayed: {})",
            if self.tenants.len() == 1 { "" } else { "s" },
            self.tenants.join(", "),
            self.to_time,
            self.backup,
            self.reached
                .as_deref()
                .unwrap_or("none after the base backup")
        )
    }

    /// The closing line of a merge or replace.
    pub fn closing(&self) -> String {
        format!(
            "{} into {} in {} (restore log #{}); the sandbox was removed",
            self.mode.as_str(),
            self.target_db,
            crate::humanize::duration_ms(self.ms),
            self.log_id
        )
    }
}

/// How long the sandbox may take to replay WAL up to T.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Runs a tenant point-in-time restore and ends it in [`finish`].
pub fn run(job: &Job, req: &Request) -> Result<Outcome> {
    let mut source = String::new();
    let mut backup = String::new();
    let result = restore(job, req, &mut source, &mut backup);
    finish(
        job.config,
        None,
        Ran::Restore {
            source: &source,
            backup: &backup,
        },
        &result,
    );
    result
}

/// The physical source: named, or the only one configured.
fn physical_source<'a>(
    config: &'a Config,
    name: Option<&str>,
) -> Result<(String, &'a PhysicalSpec)> {
    let all: Vec<(&String, &PhysicalSpec)> = config
        .sources
        .iter()
        .filter_map(|s| match &s.spec {
            SourceSpec::PostgresPhysical(p) if name.is_none_or(|n| n == s.name) => {
                Some((&s.name, p))
            }
            _ => None,
        })
        .collect();
    match all.as_slice() {
        [(n, p)] => Ok(((*n).clone(), *p)),
        [] => fail(
            ExitStatus::Usage,
            match name {
                Some(n) => format!("there is no postgres-physical source '{n}' in the config."),
                None => "no postgres-physical source is configured: a tenant point-in-time restore starts from a base backup and archived WAL.".to_string(),
            },
            "Configure the cluster as a postgres-physical source with WAL archiving (see README, Point-in-time recovery), or name it with --source.",
        ),
        _ => fail(
            ExitStatus::Usage,
            "several postgres-physical sources are configured.",
            "Name the cluster's source with --source NAME.",
        ),
    }
}

/// The `postgres` source that says how tenants are identified: named, or
/// the one (with [source.tenants]) whose database is the target's.
fn tenant_source<'a>(config: &'a Config, req: &Request) -> Result<(String, &'a PostgresSpec)> {
    let db = req.target_db.dbname();
    let candidates: Vec<(&String, &PostgresSpec)> = config
        .sources
        .iter()
        .filter_map(|s| match &s.spec {
            SourceSpec::Postgres(p) => Some((&s.name, p)),
            _ => None,
        })
        .filter(|(n, p)| match &req.tenant_source {
            Some(want) => *n == want,
            None => {
                p.tenants.is_some() && ConnInfo::new(&p.url, None).is_ok_and(|c| c.dbname() == db)
            }
        })
        .collect();
    match candidates.as_slice() {
        [(n, p)] if p.tenants.is_some() => Ok(((*n).clone(), *p)),
        [(n, _)] => fail(
            ExitStatus::Usage,
            format!("the postgres source '{n}' has no [source.tenants] table in the config."),
            "Add [source.tenants] with table, key and column to it.",
        ),
        [] => fail(
            ExitStatus::Usage,
            match &req.tenant_source {
                Some(n) => format!("there is no postgres source '{n}' in the config."),
                None => format!("no postgres source with [source.tenants] backs up the database \"{db}\", so vaultctl does not know how its tenants are identified."),
            },
            "Name the postgres source whose [source.tenants] applies with --tenant-source NAME.",
        ),
        _ => fail(
            ExitStatus::Usage,
            format!("several postgres sources with [source.tenants] back up a database \"{db}\"."),
            "Name the one that applies with --tenant-source NAME.",
        ),
    }
}

/// Refuses a sandbox that would not fit: the base backup's size plus a
/// quarter for WAL replayed into it.
fn check_space(work_dir: &Path, backup_bytes: u64) -> Result<u64> {
    let need = backup_bytes.saturating_add(backup_bytes / 4);
    let existing = work_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if let Some(free) = crate::ops::doctor::free_bytes_at(existing) {
        if free < need {
            return fail(
                ExitStatus::Failure,
                format!(
                    "the sandbox cluster needs about {} in {} (the base backup is {}, plus room for replayed WAL), but only {} is free.",
                    crate::humanize::bytes(need),
                    work_dir.display(),
                    crate::humanize::bytes(backup_bytes),
                    crate::humanize::bytes(free)
                ),
                "Free space there, or pass --work-dir on a file system with room.",
            );
        }
    }
    Ok(need)
}

fn restore(job: &Job, req: &Request, source: &mut String, backup: &mut String) -> Result<Outcome> {
    let started = Instant::now();
    let config = job.config;
    if req.tenants.is_empty() {
        return fail(
            ExitStatus::Usage,
            "a tenant point-in-time restore needs --tenant ID.",
            "Name the tenant(s) to put back, e.g. --tenant acme.",
        );
    }
    let work_dir = req.work_dir.clone().unwrap_or_else(|| config.sandbox_dir());
    let (physical_name, physical) = physical_source(config, req.source.as_deref())?;
    source.clone_from(&physical_name);
    let (_, tenant_spec) = tenant_source(config, req)?;
    let (repo, mut catalog) = super::open(config, req.target.as_deref())?;
    // A killed run's sandbox first (here, or in any work directory an
    // earlier run used): stopped and removed.
    let mut dirs = crate::ops::health::sandbox_dirs(config, &catalog)?;
    dirs.push(work_dir.clone());
    let stale_removed = sandbox::sweep(&dirs)?;
    let row = choose_base(
        &catalog,
        &repo,
        &Base::Source(physical_name.clone()),
        Some(req.to_time),
    )?;
    backup.clone_from(&row.id);
    check_space(&work_dir, row.bytes)?;
    let owner = sandbox_owner(&work_dir, req.owner.as_deref())?;
    let target = req.target_db.display();
    confirm_writes(job, req, &physical_name, &physical.url)?;
    let bin = bin_dir(config, &row, req.pg_bin_dir.as_deref());
    let command = restore_command(req.identity.as_deref(), &config.origin, &row.source)?;
    let log_id = catalog.restore_started(&super::restore_start(
        &row,
        "tenant-pitr",
        &target,
        &req.tenants,
        req.reason.as_deref(),
    ))?;
    catalog.restore_details(log_id, &serde_json::json!({ "work_dir": work_dir }))?;
    let mut phases = Phases::default();
    let mut reached = None;
    let trip = Trip {
        repo: &repo,
        row: &row,
        work_dir: &work_dir,
        owner: &owner,
        bin: &bin,
        command: &command,
        tenant_spec,
    };
    let result = round_trip(job, req, &trip, &mut catalog, &mut phases, &mut reached);
    let details = serde_json::json!({
        "mode": req.action.as_str(),
        "tenants": req.tenants,
        "to_time": pitr::pg_time(req.to_time),
        "reached": reached,
        "work_dir": work_dir,
        "phases": phases,
    });
    log_finished(&catalog, log_id, details, &result);
    Ok(Outcome {
        log_id,
        backup: row.id.clone(),
        mode: req.action,
        tenants: req.tenants.clone(),
        to_time: pitr::pg_time(req.to_time),
        reached,
        target_db: target,
        applied: result?,
        stale_removed,
        phases,
        ms: started.elapsed().as_millis() as u64,
    })
}

/// What the sandbox round trip works with.
struct Trip<'a> {
    repo: &'a Repository,
    row: &'a BackupRow,
    work_dir: &'a Path,
    owner: &'a pitr::Owner,
    bin: &'a Path,
    command: &'a str,
    /// The `postgres` source whose [source.tenants] says what to export.
    tenant_spec: &'a PostgresSpec,
}

/// The sandbox round trip, each phase timed: the base backup restored into
/// a sandbox, WAL replayed up to T, the tenants' rows exported from it and
/// applied to the target, the sandbox removed (also when a step fails: it
/// is dropped).
fn round_trip(
    job: &Job,
    req: &Request,
    trip: &Trip,
    catalog: &mut Catalog,
    phases: &mut Phases,
    reached: &mut Option<String>,
) -> Result<Applied> {
    let tenants = trip.tenant_spec.tenants.clone().expect("checked");
    let mut t = Instant::now();
    let sandbox = Sandbox::create(trip.work_dir, trip.owner)?;
    prepare(
        trip.repo,
        catalog,
        trip.row,
        &sandbox.data,
        trip.owner,
        trip.bin,
        trip.command,
        Some(req.to_time),
        sandbox.settings(),
    )?;
    phases.restore_base_ms = t.elapsed().as_millis() as u64;
    t = Instant::now();
    let recovered = pitr::start_and_wait(trip.bin, &sandbox.data, trip.owner, RECOVERY_TIMEOUT)?;
    crate::repo::test_pause("tenant-pitr-sandbox");
    reached.clone_from(&recovered.reached);
    phases.replay_ms = t.elapsed().as_millis() as u64;
    t = Instant::now();
    let conn = ConnInfo::new(&trip.tenant_spec.url, None)?;
    let export_spec = PostgresSpec {
        url: sandbox.url(conn.user(), conn.dbname()),
        password_file: None,
        tenants: Some(tenants.clone()),
        ..trip.tenant_spec.clone()
    };
    let applied = export_and_apply(job, req, &export_spec, &tenants, &trip.row.id)?;
    phases.export_and_apply_ms = t.elapsed().as_millis() as u64;
    t = Instant::now();
    drop(sandbox);
    phases.cleanup_ms = t.elapsed().as_millis() as u64;
    Ok(applied)
}

/// The work directory created, and the user the sandbox runs as (never
/// root: PostgreSQL refuses to).
fn sandbox_owner(work_dir: &Path, owner: Option<&str>) -> Result<pitr::Owner> {
    std::fs::create_dir_all(work_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the work directory {}: {e}",
            work_dir.display()
        )
    })?;
    let owner = pitr::resolve_owner(&work_dir.join("x"), owner)?;
    if owner.uid == 0 {
        return fail(
            ExitStatus::Usage,
            format!("the sandbox would belong to root (the owner of {}), and PostgreSQL refuses to run as root.", work_dir.display()),
            "Pass --owner postgres (the user that runs PostgreSQL), or a --work-dir that user owns.",
        );
    }
    Ok(owner)
}

/// Confirmation for what cannot be taken back: a target on another server
/// than the one the physical source backs up, and a replace.
fn confirm_writes(job: &Job, req: &Request, physical_name: &str, physical_url: &str) -> Result<()> {
    let target = req.target_db.display();
    let mut what = Vec::new();
    let cluster = ConnInfo::new(physical_url, None)?;
    if (cluster.host(), cluster.port()) != (req.target_db.host(), req.target_db.port()) {
        what.push(format!(
            "write into {target}, which is not on the server source '{physical_name}' backs up ({})",
            cluster.display()
        ));
    }
    if req.action == Action::Replace {
        what.push(format!(
            "replace every row of tenant{} {} in {target} with its rows as of {}",
            if req.tenants.len() == 1 { "" } else { "s" },
            req.tenants.join(", "),
            pitr::pg_time(req.to_time)
        ));
    }
    if what.is_empty() {
        return Ok(());
    }
    job.confirm.confirm(&what.join(", and "))
}

/// The restore log's end: `details` plus the per-table counts, the diff
/// and the sequences moved (on success), or the error.
fn log_finished(
    catalog: &Catalog,
    log_id: i64,
    mut details: serde_json::Value,
    result: &Result<Applied>,
) {
    if let Ok(a) = result {
        details["tables"] = serde_json::json!(a.report.tables);
        details["diff"] = serde_json::json!(a.diff);
        details["sequences_advanced"] = serde_json::json!(a.report.sequences_advanced);
    }
    let inserted = result.as_ref().ok().map(|a| a.report.inserted);
    super::restore_end(catalog, log_id, result, inserted, &details);
}

/// Ends one tenant's export stream (its thread's result).
type ExportFinish = Box<dyn FnOnce() -> Result<()> + Send>;

/// The tenants' rows streamed from the sandbox (one snapshot, one
/// artifact per tenant) into [`tenant_apply::apply`] on the target.
fn export_and_apply(
    job: &Job,
    req: &Request,
    export_spec: &PostgresSpec,
    tenants: &crate::config::TenantSpec,
    backup_id: &str,
) -> Result<Applied> {
    let mut export = TenantExport::new(
        export_spec.clone(),
        Selection::Ids(req.tenants.clone()),
        job.config.tenant_spill_dir(),
    )?;
    let finishes: std::cell::RefCell<Vec<ExportFinish>> = Default::default();
    let mut open = |_: usize| -> Result<Box<dyn std::io::Read + Send>> {
        let stream = export.next_artifact()?.ok_or_else(|| {
            anyhow::anyhow!("the sandbox export ended before every tenant was read")
        })?;
        finishes.borrow_mut().push(stream.finish);
        Ok(stream.reader)
    };
    let mut ids = req.tenants.clone();
    ids.sort();
    ids.dedup();
    let opts = Options {
        target: req.target_db.clone(),
        // Staged on this many connections, applied in one transaction.
        jobs: job.config.restore_jobs,
        spill_dir: job.config.restore_spill_dir(),
        create: false,
        clean: false,
        tenants: None,
        backup_id: format!("{backup_id} (sandbox at {})", pitr::pg_time(req.to_time)),
        artifacts: ids.iter().map(|t| format!("tenant {t}")).collect(),
        progress: None,
        size: None,
        tuning: crate::engine::postgres::load::Tuning::of(job.config),
    };
    // Every export thread finished cleanly, or nothing is committed.
    let mut ended = || -> Result<()> {
        for f in finishes.borrow_mut().drain(..) {
            f()?;
        }
        Ok(())
    };
    let applied = tenant_apply::apply(
        &mut open,
        ids.len(),
        &opts,
        (tenants, &ids),
        req.action,
        &mut ended,
    )?;
    // The export's snapshot ends (COMMIT) when it is asked for more.
    let _ = export.next_artifact();
    Ok(applied)
}
