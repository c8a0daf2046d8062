//! `vaultctl restore`: a backup into a directory (tar artifacts), to stdout
//! (streams), or into PostgreSQL (full, merge, selective), checked end to
//! end against the manifest. Every restore is recorded in the restore log.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{ArgGroup, Args, ValueEnum};

use crate::catalog::{BackupRow, Catalog, RestoreStart};
use crate::cli::{output, Ctx};
use crate::config::{Config, SourceSpec};
use crate::engine::files;
use crate::engine::postgres::filter::TenantFilter;
use crate::engine::postgres::restore::{self as pg, RestoreType};
use crate::engine::postgres::tenants::artifact_name;
use crate::error::{fail, ExitStatus, Failure};
use crate::ops;
use crate::repo::manifest::{Artifact, Body};
use crate::repo::restore::{self, ArtifactReader};
use crate::repo::Repository;
use crate::storage::Store;

#[derive(Args, Debug, Default)]
#[command(group(ArgGroup::new("destination").args(["to", "stdout", "target_db", "pgdata"])))]
pub struct RestoreArgs {
    /// Backup id, unique id prefix, or SOURCE:latest (none, on a terminal: the restore wizard; pitr: or --source with --to-time)
    pub backup: Option<String>,
    /// Restore a files backup (or tar artifact) into this directory
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Write the backup's stream to stdout (a postgres backup: its SQL)
    #[arg(long)]
    pub stdout: bool,
    /// Write into a non-empty directory (files there are replaced)
    #[arg(long, requires = "to")]
    pub force: bool,
    /// Read from this target only (default: the first, falling back to others)
    #[arg(long)]
    pub target: Option<String>,
    /// Which artifact, when the backup holds several
    #[arg(long)]
    pub artifact: Option<String>,
    /// postgres: full (schema and data into a new or empty database), merge (missing rows into an existing one), or pitr (a physical backup plus archived WAL into --pgdata)
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<PgType>,
    /// postgres: the database to restore into, postgresql://USER@HOST:PORT/DB (password from PGPASSWORD or PGPASSFILE, never in the URL)
    #[arg(long, value_name = "URL", requires = "kind")]
    pub target_db: Option<String>,
    /// A file holding the password of --target-db's role (else PGPASSWORD or PGPASSFILE; never in the URL)
    #[arg(long, value_name = "FILE", requires = "target_db")]
    pub password_file: Option<PathBuf>,
    /// postgres: restore only this tenant's rows (repeatable), from a tenant backup or a full dump
    #[arg(long = "tenant", value_name = "ID", requires = "target_db")]
    pub tenants: Vec<String>,
    /// postgres full: create the database when it does not exist
    #[arg(long, requires = "target_db")]
    pub create: bool,
    /// postgres full: replace a non-empty database (restored into a new one, swapped in only on success)
    #[arg(long, requires = "target_db")]
    pub clean: bool,
    /// postgres full: connections loading data and building indexes in parallel (default: restore_jobs in the config, else the number of cores)
    #[arg(long, value_name = "N", requires = "target_db", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Why this restore is done (kept in the restore log)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Do not ask for confirmation before writing to a database
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// pitr: where pg_ctl and pg_controldata are (default: the source's config, else PATH); logical restores need no client programs
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
    /// pitr: the new data directory (must be empty or absent)
    #[arg(long, value_name = "DIR")]
    pub pgdata: Option<PathBuf>,
    /// pitr: recover up to this time (RFC 3339 with zone, or PostgreSQL's `2026-11-22 03:00:00+00`)
    #[arg(
        long,
        value_name = "TIMESTAMP",
        requires = "pgdata",
        conflicts_with = "to_latest"
    )]
    pub to_time: Option<String>,
    /// pitr: recover to the end of the archived WAL
    #[arg(long, requires = "pgdata")]
    pub to_latest: bool,
    /// pitr: pick the base backup of this postgres-physical source (the newest one consistent before --to-time)
    #[arg(
        long,
        value_name = "SOURCE",
        requires = "pgdata",
        conflicts_with = "backup"
    )]
    pub source: Option<String>,
    /// pitr: start the server with pg_ctl and wait until recovery has finished
    #[arg(long, requires = "pgdata")]
    pub start: bool,
    /// pitr, as root: the user that owns the data directory and runs the server (default: the owner of its parent)
    #[arg(long, value_name = "USER", requires = "pgdata")]
    pub owner: Option<String>,
    /// pitr: an extra server setting for the restored cluster, NAME=VALUE (repeatable; e.g. port=5433)
    #[arg(long = "set", value_name = "NAME=VALUE", requires = "pgdata")]
    pub settings: Vec<String>,
}

impl RestoreArgs {
    /// No destination or option yet: for the wizard and `dr`.
    pub fn default_for(backup: String) -> RestoreArgs {
        RestoreArgs {
            backup: Some(backup),
            to: None,
            stdout: false,
            force: false,
            target: None,
            artifact: None,
            kind: None,
            target_db: None,
            tenants: Vec::new(),
            create: false,
            clean: false,
            reason: None,
            yes: false,
            pg_bin_dir: None,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PgType {
    Full,
    Merge,
    Pitr,
}

/// Who runs the restore, for the log.
pub(crate) fn operator() -> String {
    std::env::var("SUDO_USER")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }))
}

pub fn run(ctx: &Ctx, args: RestoreArgs) -> Result<ExitStatus> {
    if args.pgdata.is_some() || args.kind == Some(PgType::Pitr) {
        return super::pitr::run(ctx, &args);
    }
    let has_destination = args.to.is_some() || args.stdout || args.target_db.is_some();
    if args.backup.is_none() || !has_destination {
        let mut missing = Vec::new();
        if args.backup.is_none() {
            missing.push("BACKUP (an id, id prefix or SOURCE:latest)");
        }
        if !has_destination {
            missing.push(
                "a destination: --target-db URL with --type full|merge, --to DIR, or --stdout",
            );
        }
        if args.backup.is_none()
            && std::io::stdin().is_terminal()
            && std::io::stderr().is_terminal()
        {
            return super::wizard::run(ctx, args);
        }
        return fail(
            ExitStatus::Usage,
            format!("restore needs {}.", missing.join(" and ")),
            "Without a terminal vaultctl never asks: give them as arguments (e.g. `vaultctl restore db:latest --type full --target-db postgresql://postgres@host/newdb --create --reason \"…\"`); on a terminal, `vaultctl restore` without a backup starts the wizard.",
        );
    }
    if args.kind.is_some() && args.target_db.is_none() {
        return fail(
            ExitStatus::Usage,
            "--type full and --type merge need --target-db.",
            "Name the database to restore into with --target-db URL.",
        );
    }
    run_checked(ctx, args)
}

/// The flag form, once the backup and a destination are known (the wizard
/// ends here too).
pub(crate) fn run_checked(ctx: &Ctx, args: RestoreArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let backup = args.backup.clone().unwrap_or_default();
    let mut source = None;
    let result = restore(ctx, &config, args, &mut source);
    if result.as_ref().is_err_and(crate::cli::is_broken_pipe) {
        return result;
    }
    if let Some(catalog) = ops::hooks::open_catalog(&config) {
        let source = source.unwrap_or_default();
        match &result {
            Ok(_) => ops::hooks::restore_succeeded(&config, &catalog, &source, &backup),
            Err(e) => ops::hooks::restore_failed(&config, &catalog, &source, &backup, e),
        }
        ops::after_command(&config, &catalog);
    }
    result
}

fn restore(
    ctx: &Ctx,
    config: &crate::config::Config,
    args: RestoreArgs,
    source: &mut Option<String>,
) -> Result<ExitStatus> {
    let repo = Repository::open(config, args.target.as_deref())?;
    let mut catalog = Catalog::open(&config.catalog)?;
    catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
    let spec = args.backup.clone().unwrap_or_default();
    let row = restore::resolve_backup(&catalog, &spec)?;
    *source = Some(row.source.clone());
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
    // Prefer the targets that hold this backup, in config order.
    let mut stores = repo.stores.clone();
    stores.sort_by_key(|s| !row.targets.contains(&s.name));
    let (_, body) = restore::load_body(&repo, &stores, &row.id)?;
    if args.target_db.is_some() {
        return run_db(ctx, &args, config, &repo, &mut catalog, &row, stores, &body);
    }
    if !args.tenants.is_empty() || args.kind.is_some() {
        return fail(
            ExitStatus::Usage,
            "--type and --tenant need --target-db.",
            "Name the database to restore into with --target-db URL.",
        );
    }
    let artifact = pick_artifact(&args, &row, &body)?;
    // A prune (here or on another host) may have deleted packs the catalog
    // still names: notice vanished index objects first (one listing per target).
    if let Err(e) = repo.sync_index(&mut catalog) {
        tracing::warn!(
            "could not refresh the catalog's index before restoring: {}",
            crate::error::paragraph(&e)
        );
    }
    let plan = restore::plan(&repo, &mut catalog, artifact)?;
    let (kind, target) = match &args.to {
        Some(dir) => ("files", dir.display().to_string()),
        None => ("stdout", "stdout".to_string()),
    };
    let log_id = catalog.restore_started(&RestoreStart {
        backup_id: &row.id,
        source: &row.source,
        kind,
        target: &target,
        tenants: &[],
        reason: args.reason.as_deref(),
        operator: &operator(),
        host: &crate::repo::hostname(),
        started_at: &crate::clock::now_rfc3339(),
    })?;
    let result = restore_stream(ctx, &args, &repo, &row, stores, artifact, plan);
    let (ok, err) = match &result {
        Ok(_) => (true, None),
        Err(e) => (false, Some(crate::error::paragraph(e))),
    };
    let _ = catalog.restore_finished(
        log_id,
        &crate::clock::now_rfc3339(),
        ok,
        None,
        &serde_json::Value::Null,
        err.as_deref(),
    );
    result
}

fn pick_artifact<'a>(args: &RestoreArgs, row: &BackupRow, body: &'a Body) -> Result<&'a Artifact> {
    let names = || {
        body.artifacts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(match &args.artifact {
        Some(name) => body
            .artifacts
            .iter()
            .find(|a| &a.name == name)
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

fn restore_stream(
    ctx: &Ctx,
    args: &RestoreArgs,
    repo: &Repository,
    row: &BackupRow,
    stores: Vec<Store>,
    artifact: &Artifact,
    plan: Vec<(crate::repo::pack::BlobId, crate::repo::pack::BlobLocation)>,
) -> Result<ExitStatus> {
    let started = std::time::Instant::now();
    let progress = ctx.progress();
    let reader = ArtifactReader::open(repo, stores, artifact, plan)?;
    let mut reader = ProgressReader {
        inner: reader,
        progress: &progress,
    };
    crate::progress::Progress::start(
        &progress,
        &format!("restore {}", row.id),
        Some(artifact.size),
    );
    let summary = if let Some(dir) = &args.to {
        if artifact.format != "tar" {
            return fail(
                ExitStatus::Usage,
                format!("artifact '{}' of backup {} is a {} stream, not an archive.", artifact.name, row.id, artifact.format),
                "Restore it with --stdout (for example `vaultctl restore ID --stdout > file`), or a postgres backup with --type and --target-db.",
            );
        }
        let x = files::restore_tar(&mut reader, dir, args.force)?;
        serde_json::json!({ "id": row.id, "to": dir, "entries": x.entries, "bytes": artifact.size, "set_id_dropped": x.set_id_dropped })
    } else {
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut reader, &mut out).context("restoring to stdout failed")?;
        std::io::Write::flush(&mut out)?;
        serde_json::json!({ "id": row.id, "stdout": true, "bytes": artifact.size })
    };
    crate::progress::Progress::finish(&progress);
    let ms = started.elapsed().as_millis() as u64;
    if let Some(dir) = &args.to {
        if ctx.global.json {
            output::json(&summary)?;
        } else {
            output::line(&format!(
                "restored backup {} ({} entries, {}) into {} in {}, {:.1} MB/s; stream hash verified",
                row.id,
                summary["entries"],
                output::bytes(artifact.size),
                dir.display(),
                output::duration_ms(ms),
                crate::catalog::mb_per_s(artifact.size, ms)
            ))?;
        }
    } else if ctx.global.quiet == 0 {
        eprintln!(
            "vaultctl: restored backup {} ({}) in {}, {:.1} MB/s; stream hash verified",
            row.id,
            output::bytes(artifact.size),
            output::duration_ms(ms),
            crate::catalog::mb_per_s(artifact.size, ms)
        );
    }
    Ok(ExitStatus::Success)
}

/// Asks on a terminal; without one, refuses and names --yes.
pub(crate) fn confirm(what: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return fail(
            ExitStatus::Usage,
            format!("this restore writes to a database ({what}) and needs confirmation, but there is no terminal to ask on."),
            "Check the target, then run it again with --yes.",
        );
    }
    eprint!("vaultctl: about to {what}.\nType yes to go on: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        return fail(
            ExitStatus::Failure,
            "the restore was cancelled; nothing was written.",
            "Run it again and type yes, or pass --yes.",
        );
    }
    Ok(())
}

/// A finished restore into PostgreSQL.
pub struct DbOutcome {
    pub log_id: i64,
    pub kind: RestoreType,
    pub report: pg::Report,
    pub ms: u64,
}

#[allow(clippy::too_many_arguments)]
fn run_db(
    ctx: &Ctx,
    args: &RestoreArgs,
    config: &Config,
    repo: &Repository,
    catalog: &mut Catalog,
    row: &BackupRow,
    stores: Vec<Store>,
    body: &Body,
) -> Result<ExitStatus> {
    let DbOutcome {
        log_id,
        kind,
        report,
        ms,
    } = {
        let url = args.target_db.as_deref().expect("checked");
        let target = pg::target_from_url(url, args.password_file.as_deref())?;
        restore_db(ctx, args, config, repo, catalog, row, stores, body, target)?
    };
    if ctx.global.json {
        output::json(
            &serde_json::json!({ "restore": log_id, "backup": row.id, "type": kind.as_str(), "tenants": args.tenants, "duration_ms": ms, "report": report }),
        )?;
    } else {
        let mut t = output::table();
        t.set_header(vec![
            "table",
            "rows in backup",
            "inserted",
            "skipped (already there)",
        ]);
        for c in &report.tables {
            t.add_row(vec![
                c.table.clone(),
                c.rows.to_string(),
                c.inserted.to_string(),
                c.skipped.to_string(),
            ]);
        }
        output::line(&t.to_string())?;
        if !report.tables_without_tenant_column.is_empty() {
            output::line(&format!(
                "not restored (no tenant column): {}",
                report.tables_without_tenant_column.join(", ")
            ))?;
        }
        if let Some(p) = &report.phases {
            output::line(&format!(
                "on {} connection{}: schema {}, data {} ({} COPY blocks), indexes and constraints {}",
                p.jobs,
                if p.jobs == 1 { "" } else { "s" },
                output::duration_ms(p.schema_ms),
                output::duration_ms(p.data_ms),
                p.copy_blocks,
                output::duration_ms(p.post_data_ms)
            ))?;
        }
        if !report.sequences_advanced.is_empty() {
            output::line(&format!(
                "sequences advanced past the merged rows: {}",
                report.sequences_advanced.join(", ")
            ))?;
        }
        output::line(&format!(
            "restored backup {} ({}) into {} in {}: {} rows inserted, {} skipped; stream hash verified",
            row.id,
            kind.as_str(),
            report.database,
            output::duration_ms(ms),
            report.inserted,
            report.skipped
        ))?;
    }
    Ok(ExitStatus::Success)
}

/// The restore into PostgreSQL itself (confirmation, restore log, the
/// restore): the flag form, the wizard and `dr run`/`dr drill` share it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn restore_db(
    ctx: &Ctx,
    args: &RestoreArgs,
    config: &Config,
    repo: &Repository,
    catalog: &mut Catalog,
    row: &BackupRow,
    stores: Vec<Store>,
    body: &Body,
    target: crate::engine::postgres::ConnInfo,
) -> Result<DbOutcome> {
    let kind = match args.kind {
        Some(PgType::Full) => RestoreType::Full,
        Some(PgType::Merge) => RestoreType::Merge,
        _ => {
            return fail(
                ExitStatus::Usage,
                "--target-db needs --type full or --type merge.",
                "A pitr restore writes a data directory: use --pgdata DIR.",
            )
        }
    };
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
    if kind == RestoreType::Merge && (args.create || args.clean) {
        return fail(
            ExitStatus::Usage,
            "--create and --clean apply to --type full.",
            "A merge restore writes into an existing database with the schema in place.",
        );
    }
    let mode = body
        .engine
        .get("mode")
        .and_then(|m| m.as_str())
        .unwrap_or("full");
    let configured = config
        .sources
        .iter()
        .find(|s| s.name == row.source)
        .and_then(|s| match &s.spec {
            SourceSpec::Postgres(p) => Some(p.clone()),
            _ => None,
        });
    // Which artifacts: the dump, or the chosen tenants' exports.
    let artifacts: Vec<&Artifact> = if mode == "tenants" {
        if kind == RestoreType::Full {
            return fail(
                ExitStatus::Usage,
                format!("backup {} is a tenant backup: it holds rows only, no schema.", row.id),
                "Restore it with --type merge into a database that has the schema (restore a full backup first for a new database).",
            );
        }
        if args.tenants.is_empty() {
            body.artifacts.iter().collect()
        } else {
            let mut v = Vec::new();
            for t in &args.tenants {
                match body.artifacts.iter().find(|a| a.name == artifact_name(t)) {
                    Some(a) => v.push(a),
                    None => {
                        return fail(
                            ExitStatus::Usage,
                            format!("backup {} holds no tenant '{t}'.", row.id),
                            format!("It holds: {}.", body.tenants.join(", ")),
                        )
                    }
                }
            }
            v
        }
    } else {
        vec![pick_artifact(args, row, body)?]
    };
    let tenant_filter = if args.tenants.is_empty() {
        None
    } else {
        let spec = pg::tenant_spec(&body.engine).or_else(|| configured.as_ref().and_then(|c| c.tenants.clone())).ok_or_else(|| {
            Failure::new(ExitStatus::Usage, format!("backup {} does not say how tenants are identified, and source '{}' has no [source.tenants] in the config.", row.id, row.source))
                .with_remedy("Add [source.tenants] (table, key, column) to the source's config, then restore again.")
        })?;
        Some(TenantFilter {
            spec,
            ids: args.tenants.iter().map(|t| t.as_bytes().to_vec()).collect(),
            keep_global: true,
        })
    };
    let mut what = format!(
        "restore backup {} ({}{}) into {}",
        row.id,
        kind.as_str(),
        if args.tenants.is_empty() {
            String::new()
        } else {
            format!(", tenants {}", args.tenants.join(", "))
        },
        target.display()
    );
    if args.clean {
        what.push_str(", replacing that database if it is not empty");
    }
    if !args.yes {
        confirm(&what)?;
    }
    let log_id = catalog.restore_started(&RestoreStart {
        backup_id: &row.id,
        source: &row.source,
        kind: kind.as_str(),
        target: &target.display(),
        tenants: &args.tenants,
        reason: args.reason.as_deref(),
        operator: &operator(),
        host: &crate::repo::hostname(),
        started_at: &crate::clock::now_rfc3339(),
    })?;
    let started = std::time::Instant::now();
    let opts = pg::Options {
        target: target.clone(),
        jobs: args.jobs.map(usize::from).unwrap_or(config.restore_jobs),
        spill_dir: config.restore_spill_dir(),
        create: args.create,
        clean: args.clean,
        tenants: tenant_filter,
        backup_id: row.id.clone(),
        artifacts: artifacts.iter().map(|a| a.name.clone()).collect(),
    };
    let result = {
        let progress = std::sync::Arc::new(ctx.progress());
        let mut open = |i: usize| -> Result<Box<dyn Read + Send>> {
            let a = artifacts[i];
            let plan = restore::plan(repo, catalog, a)?;
            crate::progress::Progress::finish(&*progress);
            crate::progress::Progress::start(
                &*progress,
                &format!("restore {} ({})", row.id, a.name),
                Some(a.size),
            );
            let reader = ArtifactReader::open(repo, stores.clone(), a, plan)?;
            Ok(Box::new(OwnedProgressReader {
                inner: reader,
                progress: progress.clone(),
            }))
        };
        let r = match kind {
            RestoreType::Full => pg::full(&mut open, &opts),
            RestoreType::Merge => pg::merge(&mut open, artifacts.len(), &opts),
        };
        crate::progress::Progress::finish(&*progress);
        r
    };
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(report) => {
            let details = serde_json::to_value(&report)?;
            catalog.restore_finished(
                log_id,
                &crate::clock::now_rfc3339(),
                true,
                Some(report.rows),
                &details,
                None,
            )?;
            Ok(DbOutcome {
                log_id,
                kind,
                report,
                ms,
            })
        }
        Err(e) => {
            let _ = catalog.restore_finished(
                log_id,
                &crate::clock::now_rfc3339(),
                false,
                None,
                &serde_json::Value::Null,
                Some(&crate::error::paragraph(&e)),
            );
            Err(e)
        }
    }
}

struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a dyn crate::progress::Progress,
}

impl<R: std::io::Read> std::io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

struct OwnedProgressReader<R> {
    inner: R,
    progress: std::sync::Arc<dyn crate::progress::Progress>,
}

impl<R: std::io::Read> std::io::Read for OwnedProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
