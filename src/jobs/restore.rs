//! The restore job: a backup into a directory (tar artifacts), to stdout
//! (streams), or into PostgreSQL (full, merge, tenant-selective), checked
//! end to end against the manifest and recorded in the restore log. The
//! flag form, the wizard and `dr run`/`dr drill` share it.

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{finish, Job, Ran};
use crate::catalog::{BackupRow, Catalog};
use crate::config::{Config, PostgresSpec, SourceSpec};
use crate::engine::files;
use crate::engine::postgres::filter::TenantFilter;
use crate::engine::postgres::restore::{self as pg, RestoreType};
use crate::engine::postgres::tenants::artifact_name;
use crate::engine::postgres::ConnInfo;
use crate::error::{fail, ExitStatus, Failure};
use crate::progress::Progress;
use crate::repo::manifest::{Artifact, Body};
use crate::repo::restore::{self, ArtifactReader};
use crate::repo::Repository;
use crate::storage::Store;

/// Where a restore writes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A tar artifact unpacked into a directory (`force`: a non-empty one).
    Dir { path: PathBuf, force: bool },
    /// The artifact's bytes to this process's stdout.
    Stdout,
    /// Into a PostgreSQL database.
    Database(Box<DbOptions>),
}

/// A restore into PostgreSQL.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub kind: RestoreType,
    pub target: ConnInfo,
    /// Only these tenants' rows (empty: everything).
    pub tenants: Vec<String>,
    /// full: create the database when it does not exist.
    pub create: bool,
    /// full: replace a non-empty database (swapped in only on success).
    pub clean: bool,
    /// full: connections to load on (else `restore_jobs` of the config).
    pub jobs: Option<usize>,
    /// pitr: where pg_ctl and pg_controldata are (logical restores need no
    /// client programs).
    pub pg_bin_dir: Option<PathBuf>,
}

/// What to restore, from where, to where.
#[derive(Debug, Clone)]
pub struct Request {
    /// Backup id, unique prefix, or SOURCE:latest.
    pub backup: String,
    /// Read from this target only (default: those holding it, in config order).
    pub target: Option<String>,
    /// Which artifact, when the backup holds several.
    pub artifact: Option<String>,
    /// Why (kept in the restore log).
    pub reason: Option<String>,
    pub destination: Destination,
}

/// A finished restore.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Files {
        id: String,
        to: PathBuf,
        entries: u64,
        bytes: u64,
        set_id_dropped: u64,
        #[serde(skip)]
        ms: u64,
    },
    Stream {
        id: String,
        stdout: bool,
        bytes: u64,
        #[serde(skip)]
        ms: u64,
    },
    Database(DbOutcome),
}

/// A finished restore into PostgreSQL.
#[derive(Debug, Serialize)]
pub struct DbOutcome {
    #[serde(rename = "restore")]
    pub log_id: i64,
    pub backup: String,
    #[serde(rename = "type", serialize_with = "kind_name")]
    pub kind: RestoreType,
    pub tenants: Vec<String>,
    #[serde(rename = "duration_ms")]
    pub ms: u64,
    pub report: pg::Report,
}

impl Outcome {
    /// What a files or stream restore did, for people (a database
    /// restore's lines are [`DbOutcome::lines`]).
    pub fn summary(&self) -> String {
        use crate::humanize::{bytes as b, duration_ms as d};
        let speed = |bytes, ms| crate::catalog::mb_per_s(bytes, ms);
        match self {
            Outcome::Files { id, to, entries, bytes, ms, .. } => format!(
                "restored backup {id} ({entries} entries, {}) into {} in {}, {:.1} MB/s; stream hash verified",
                b(*bytes),
                to.display(),
                d(*ms),
                speed(*bytes, *ms)
            ),
            Outcome::Stream { id, bytes, ms, .. } => format!(
                "restored backup {id} ({}) in {}, {:.1} MB/s; stream hash verified",
                b(*bytes),
                d(*ms),
                speed(*bytes, *ms)
            ),
            Outcome::Database(o) => o.lines().join("\n"),
        }
    }
}

impl DbOutcome {
    /// The lines under the table counts: what was left out, the phases, the
    /// sequences moved, and the closing line.
    pub fn lines(&self) -> Vec<String> {
        let r = &self.report;
        let mut l = Vec::new();
        if !r.tables_without_tenant_column.is_empty() {
            l.push(format!(
                "not restored (no tenant column): {}",
                r.tables_without_tenant_column.join(", ")
            ));
        }
        l.extend(r.phases.iter().map(|p| p.to_string()));
        if !r.sequences_advanced.is_empty() {
            l.push(format!(
                "sequences advanced past the merged rows: {}",
                r.sequences_advanced.join(", ")
            ));
        }
        l.push(format!(
            "restored backup {} ({}) into {} in {}: {} rows inserted, {} skipped; stream hash verified",
            self.backup,
            self.kind.as_str(),
            r.database,
            crate::humanize::duration_ms(self.ms),
            r.inserted,
            r.skipped
        ));
        l
    }
}

fn kind_name<S: serde::Serializer>(k: &RestoreType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// Runs a restore and ends it in [`finish`] (alerts, hooks, metrics).
pub fn run(job: &Job, req: &Request) -> Result<Outcome> {
    let mut source = String::new();
    let result = restore(job, req, &mut source);
    finish(
        job.config,
        None,
        Ran::Restore {
            source: &source,
            backup: &req.backup,
        },
        &result,
    );
    result
}

/// A completed backup, resolved from the catalog.
pub fn completed(catalog: &Catalog, spec: &str) -> Result<BackupRow> {
    let row = catalog.resolve_backup(spec)?;
    if row.status != "completed" {
        return fail(
            ExitStatus::Usage,
            format!(
                "backup {} is {}, not completed; it cannot be restored.",
                row.id, row.status
            ),
            "Pick a completed backup from `vaultctl list --status completed`.",
        );
    }
    Ok(row)
}

/// The repository's stores, those holding `row` first (in config order).
pub fn stores_for(repo: &Repository, row: &BackupRow) -> Vec<Store> {
    let mut stores = repo.stores.clone();
    stores.sort_by_key(|s| !row.targets.contains(&s.name));
    stores
}

fn restore(job: &Job, req: &Request, source: &mut String) -> Result<Outcome> {
    let (repo, mut catalog) = super::open(job.config, req.target.as_deref())?;
    let row = completed(&catalog, &req.backup)?;
    source.clone_from(&row.source);
    let stores = stores_for(&repo, &row);
    // A restore of some tenants keeps only their artifacts of the body.
    let tenants = match &req.destination {
        Destination::Database(db) => db.tenants.as_slice(),
        _ => &[],
    };
    let names: Vec<String> = tenants.iter().map(|t| artifact_name(t)).collect();
    let only = crate::repo::manifest::Only::new(&names, tenants);
    let only = (!tenants.is_empty()).then_some(&only);
    let (_, body) = restore::load_body_only(&repo, &stores, &row.id, only)?;
    let opened = Opened {
        repo: &repo,
        row: &row,
        body: &body,
        stores,
    };
    match &req.destination {
        Destination::Database(db) => {
            to_database(job, &opened, &mut catalog, req, db).map(Outcome::Database)
        }
        dest => to_files(job, &opened, &mut catalog, req, dest),
    }
}

/// A backup whose manifest body is loaded, with the stores to read it from.
pub struct Opened<'a> {
    pub repo: &'a Repository,
    pub row: &'a BackupRow,
    pub body: &'a Body,
    pub stores: Vec<Store>,
}

fn to_files(
    job: &Job,
    b: &Opened,
    catalog: &mut Catalog,
    req: &Request,
    dest: &Destination,
) -> Result<Outcome> {
    let artifact = pick_artifact(req.artifact.as_deref(), b.row, b.body)?;
    // A prune (here or on another host) may have deleted packs the catalog
    // still names: notice vanished index objects first (one listing per target).
    if let Err(e) = b.repo.sync_index(catalog) {
        tracing::warn!(
            "could not refresh the catalog's index before restoring: {}",
            crate::error::paragraph(&e)
        );
    }
    let plan = restore::plan(b.repo, catalog, artifact)?;
    let (kind, target) = match dest {
        Destination::Dir { path, .. } => ("files", path.display().to_string()),
        _ => ("stdout", "stdout".to_string()),
    };
    let log_id = catalog.restore_started(&super::restore_start(
        b.row,
        kind,
        &target,
        &[],
        req.reason.as_deref(),
    ))?;
    let result = stream(job, b, artifact, plan, dest);
    super::restore_end(catalog, log_id, &result, None, &serde_json::Value::Null);
    result
}

/// Names for a message: all of a few, the first [`NAMED`] of many with
/// their count (a 300,000-tenant backup is not listed in one line).
fn named<'a>(names: impl ExactSizeIterator<Item = &'a str>, id: &str) -> String {
    let count = names.len();
    let first: Vec<&str> = names.take(NAMED).collect();
    if count <= NAMED {
        return first.join(", ");
    }
    format!(
        "{}, … ({count} in all; `vaultctl show {id}` lists them)",
        first.join(", ")
    )
}

/// How many names a message lists.
const NAMED: usize = 20;

fn pick_artifact<'a>(name: Option<&str>, row: &BackupRow, body: &'a Body) -> Result<&'a Artifact> {
    let names = || named(body.artifacts.iter().map(|a| a.name.as_str()), &row.id);
    Ok(match name {
        Some(name) => body
            .artifacts
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| {
                Failure::new(
                    ExitStatus::Usage,
                    format!("backup {} has no artifact '{name}'.", row.id),
                )
                .with_remedy(format!("Its artifacts: {}.", names()))
            })?,
        None if body.artifacts.len() == 1 => &body.artifacts[0],
        None => {
            return fail(
                ExitStatus::Usage,
                format!(
                    "backup {} holds {} artifacts.",
                    row.id,
                    body.artifacts.len()
                ),
                format!("Choose one with --artifact: {}.", names()),
            )
        }
    })
}

fn stream(
    job: &Job,
    b: &Opened,
    artifact: &Artifact,
    plan: Vec<(crate::repo::pack::BlobId, crate::repo::pack::BlobLocation)>,
    dest: &Destination,
) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let reader = ArtifactReader::open(b.repo, b.stores.clone(), artifact, plan)?;
    let mut reader = Counted {
        inner: reader,
        progress: job.progress.clone(),
    };
    job.progress
        .start(&format!("restore {}", b.row.id), Some(artifact.size));
    let id = b.row.id.clone();
    let unpacked = match dest {
        Destination::Dir { path, force } => {
            if artifact.format != "tar" {
                return fail(
                    ExitStatus::Usage,
                    format!("artifact '{}' of backup {} is a {} stream, not an archive.", artifact.name, id, artifact.format),
                    "Restore it with --stdout (for example `vaultctl restore ID --stdout > file`), or a postgres backup with --type and --target-db.",
                );
            }
            Some((path, files::restore_tar(&mut reader, path, *force)?))
        }
        _ => {
            let mut out = std::io::stdout().lock();
            copy_buffered(&mut reader, &mut out).context("restoring to stdout failed")?;
            std::io::Write::flush(&mut out)?;
            None
        }
    };
    job.progress.finish();
    let ms = started.elapsed().as_millis() as u64;
    let bytes = artifact.size;
    Ok(match unpacked {
        Some((to, x)) => Outcome::Files {
            id,
            to: to.clone(),
            entries: x.entries,
            bytes,
            set_id_dropped: x.set_id_dropped,
            ms,
        },
        None => Outcome::Stream {
            id,
            stdout: true,
            bytes,
            ms,
        },
    })
}

/// The configured `postgres` source called `name`, if any.
pub fn postgres_spec<'a>(config: &'a Config, name: &str) -> Option<&'a PostgresSpec> {
    config
        .sources
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| match &s.spec {
            SourceSpec::Postgres(p) => Some(p),
            _ => None,
        })
}

/// Which artifacts a database restore reads: the dump, or the chosen
/// tenants' exports of a tenant backup.
fn db_artifacts<'a>(b: &Opened<'a>, req: &Request, db: &DbOptions) -> Result<Vec<&'a Artifact>> {
    let (row, body) = (b.row, b.body);
    let mode = body
        .engine
        .get("mode")
        .and_then(|m| m.as_str())
        .unwrap_or("full");
    if mode != "tenants" {
        return Ok(vec![pick_artifact(req.artifact.as_deref(), row, body)?]);
    }
    if db.kind == RestoreType::Full {
        return fail(
            ExitStatus::Usage,
            format!("backup {} is a tenant backup: it holds rows only, no schema.", row.id),
            "Restore it with --type merge into a database that has the schema (restore a full backup first for a new database).",
        );
    }
    if db.tenants.is_empty() {
        return Ok(body.artifacts.iter().collect());
    }
    db.tenants
        .iter()
        .map(|t| {
            body.artifacts
                .iter()
                .find(|a| a.name == artifact_name(t))
                .ok_or_else(|| {
                    Failure::new(
                        ExitStatus::Usage,
                        format!("backup {} holds no tenant '{t}'.", row.id),
                    )
                    .with_remedy(format!(
                        "It holds: {}.",
                        named(body.tenants.iter().map(String::as_str), &row.id)
                    ))
                    .into()
                })
        })
        .collect()
}

/// The tenant filter of a tenant-selective restore: how tenants are
/// identified comes from the backup, else from the source's config.
fn tenant_filter(
    b: &Opened,
    db: &DbOptions,
    configured: Option<&PostgresSpec>,
) -> Result<Option<TenantFilter>> {
    if db.tenants.is_empty() {
        return Ok(None);
    }
    let spec = pg::tenant_spec(&b.body.engine)
        .or_else(|| configured.and_then(|c| c.tenants.clone()))
        .ok_or_else(|| {
            Failure::new(ExitStatus::Usage, format!("backup {} does not say how tenants are identified, and source '{}' has no [source.tenants] in the config.", b.row.id, b.row.source))
                .with_remedy("Add [source.tenants] (table, key, column) to the source's config, then restore again.")
        })?;
    Ok(Some(TenantFilter {
        spec,
        ids: db.tenants.iter().map(|t| t.as_bytes().to_vec()).collect(),
        keep_global: true,
    }))
}

fn check_db_request(row: &BackupRow, db: &DbOptions) -> Result<()> {
    if row.kind != "postgres" {
        return fail(
            ExitStatus::Usage,
            format!(
                "backup {} is a {} backup, not a postgres one.",
                row.id, row.kind
            ),
            "Restore it with --to DIR or --stdout.",
        );
    }
    if db.kind == RestoreType::Merge && (db.create || db.clean) {
        return fail(
            ExitStatus::Usage,
            "--create and --clean apply to --type full.",
            "A merge restore writes into an existing database with the schema in place.",
        );
    }
    Ok(())
}

/// The restore into PostgreSQL itself (confirmation, restore log, the
/// restore), without [`finish`]: `dr` records its own outcome.
pub fn to_database(
    job: &Job,
    b: &Opened,
    catalog: &mut Catalog,
    req: &Request,
    db: &DbOptions,
) -> Result<DbOutcome> {
    check_db_request(b.row, db)?;
    let configured = postgres_spec(job.config, &b.row.source);
    let artifacts = db_artifacts(b, req, db)?;
    let tenants = tenant_filter(b, db, configured)?;
    let mut what = format!(
        "restore backup {} ({}{}) into {}",
        b.row.id,
        db.kind.as_str(),
        if db.tenants.is_empty() {
            String::new()
        } else {
            format!(", tenants {}", db.tenants.join(", "))
        },
        db.target.display()
    );
    if db.clean {
        what.push_str(", replacing that database if it is not empty");
    }
    job.confirm.confirm(&what)?;
    let target = db.target.display();
    let log_id = catalog.restore_started(&super::restore_start(
        b.row,
        db.kind.as_str(),
        &target,
        &db.tenants,
        req.reason.as_deref(),
    ))?;
    let started = std::time::Instant::now();
    let opts = pg::Options {
        target: db.target.clone(),
        jobs: db.jobs.unwrap_or(job.config.restore_jobs),
        spill_dir: job.config.restore_spill_dir(),
        create: db.create,
        clean: db.clean,
        tenants,
        backup_id: b.row.id.clone(),
        artifacts: artifacts.iter().map(|a| a.name.clone()).collect(),
        progress: Some(job.progress.clone()),
        size: Some(artifacts.iter().map(|a| a.size).sum()),
        tuning: crate::engine::postgres::load::Tuning::of(job.config),
    };
    let result = load(job, b, catalog, &artifacts, db.kind, &opts);
    let ms = started.elapsed().as_millis() as u64;
    let details = match &result {
        Ok(report) => serde_json::to_value(report)?,
        Err(_) => serde_json::Value::Null,
    };
    let inserted = result.as_ref().ok().map(|r| r.rows);
    super::restore_end(catalog, log_id, &result, inserted, &details);
    Ok(DbOutcome {
        log_id,
        backup: b.row.id.clone(),
        kind: db.kind,
        tenants: db.tenants.clone(),
        ms,
        report: result?,
    })
}

/// Streams the artifacts into the engine's full or merge restore (which
/// reports its own progress phases).
fn load(
    job: &Job,
    b: &Opened,
    catalog: &mut Catalog,
    artifacts: &[&Artifact],
    kind: RestoreType,
    opts: &pg::Options,
) -> Result<pg::Report> {
    // A full restore of a dump with a table of contents: its biggest COPY
    // blocks are read on the side too (the loader decides which).
    let toc = match (kind, artifacts, &opts.tenants) {
        (RestoreType::Full, [a], None) if opts.jobs > 1 => {
            crate::engine::postgres::toc::Toc::from_engine(&b.body.engine, a.size)?
        }
        _ => None,
    };
    let side_plan = match &toc {
        Some(_) => restore::plan(b.repo, catalog, artifacts[0])?,
        None => Vec::new(),
    };
    let open_range = |offset: u64, len: u64| -> Result<Box<dyn BufRead + Send>> {
        Ok(Box::new(restore::RangeReader::open(
            b.repo,
            b.stores.clone(),
            artifacts[0],
            &side_plan,
            offset,
            len,
        )?))
    };
    let side = toc.map(|toc| crate::engine::postgres::load::SideBlocks {
        toc,
        open: &open_range,
    });
    let mut open = |i: usize| -> Result<Box<dyn Read + Send>> {
        let a = artifacts[i];
        let plan = restore::plan(b.repo, catalog, a)?;
        // The loader reports the progress: the schema's bytes, then the
        // COPY bytes sent to the server (not those read ahead).
        Ok(Box::new(ArtifactReader::open(
            b.repo,
            b.stores.clone(),
            a,
            plan,
        )?))
    };
    let r = match kind {
        RestoreType::Full => pg::full(&mut open, side, opts),
        RestoreType::Merge => pg::merge(&mut open, artifacts.len(), opts),
    };
    job.progress.finish();
    r
}

/// A reader that reports the bytes it reads as progress.
struct Counted<R> {
    inner: R,
    progress: Arc<dyn Progress>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.progress.advance(n as u64);
    }
}

/// Copies a buffered reader's chunks to `out` as they come (the restore
/// reader's decoded runs: one write each, no copy through a small buffer).
fn copy_buffered(reader: &mut impl BufRead, out: &mut impl std::io::Write) -> std::io::Result<u64> {
    let mut total = 0;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(total);
        }
        let n = chunk.len();
        out.write_all(chunk)?;
        reader.consume(n);
        total += n as u64;
    }
}
