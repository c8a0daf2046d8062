//! `vaultctl wal`: WAL archiving for point-in-time recovery — `push`
//! (archive_command), `fetch` (restore_command), `status` and `sync`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cli::{output, Ctx};
use crate::config::{Config, PhysicalSpec, SourceSpec};
use crate::error::{fail, ExitStatus};
use crate::repo::wal::{self, FetchError, WalRepo};

#[derive(Subcommand, Debug)]
pub enum WalCommand {
    /// Archive one WAL file: archive_command = 'vaultctl --config FILE wal push %p'
    Push(PushArgs),
    /// Restore one WAL file: restore_command = 'vaultctl --config FILE wal fetch %f %p' (exit 1 and "not in archive" when missing)
    Fetch(FetchArgs),
    /// Last archived segment and time per target, gaps, lag; exit 1 on a critical condition
    Status(StatusArgs),
    /// Copy WAL files a target lacks (e.g. after an outage) from the targets that have them
    Sync(SourceArg),
    /// The background worker of `wal push --async` (started by it)
    #[command(hide = true)]
    Drain(DrainArgs),
}

#[derive(Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    pub source: SourceArg,
    /// PostgreSQL's pg_wal directory
    #[arg(long, value_name = "DIR")]
    pub pg_wal: PathBuf,
    /// A file the caller archives itself
    #[arg(long, value_name = "NAME")]
    pub skip: Option<String>,
}

#[derive(Args, Debug)]
pub struct SourceArg {
    /// The postgres-physical source (needed when several are configured)
    #[arg(long)]
    pub source: Option<String>,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The WAL file (PostgreSQL's %p)
    pub path: PathBuf,
    #[command(flatten)]
    pub source: SourceArg,
    /// Archive ahead: a background worker pushes every WAL file PostgreSQL has ready, so later calls return at once
    #[arg(long = "async")]
    pub asynchronous: bool,
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// The WAL file name wanted (PostgreSQL's %f)
    pub name: String,
    /// Where to write it (PostgreSQL's %p)
    pub path: PathBuf,
    #[command(flatten)]
    pub source: SourceArg,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub source: SourceArg,
    /// Archiving older than this is a critical condition (e.g. 15m, 1h)
    #[arg(long, default_value = "1h", value_name = "AGE")]
    pub max_lag: String,
}

/// The physical source named, or the only one configured.
pub fn pick_source<'a>(
    config: &'a Config,
    name: Option<&str>,
) -> Result<(&'a str, &'a PhysicalSpec)> {
    let physical: Vec<(&str, &PhysicalSpec)> = config
        .sources
        .iter()
        .filter_map(|s| match &s.spec {
            SourceSpec::PostgresPhysical(p) => Some((s.name.as_str(), p)),
            _ => None,
        })
        .collect();
    match name {
        Some(n) => physical
            .into_iter()
            .find(|(s, _)| *s == n)
            .map(Ok)
            .unwrap_or_else(|| {
                fail(
                    ExitStatus::Usage,
                    format!("there is no postgres-physical source named '{n}'."),
                    "Name a [[source]] with kind = \"postgres-physical\" from the config.",
                )
            }),
        None => match physical.len() {
            1 => Ok(physical[0]),
            0 => fail(
                ExitStatus::Usage,
                "the config has no source of kind postgres-physical.",
                "Add a [[source]] with kind = \"postgres-physical\" (see config.example.toml).",
            ),
            _ => fail(
                ExitStatus::Usage,
                format!(
                    "several postgres-physical sources are configured ({}).",
                    physical
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "Say which with --source NAME (in archive_command and restore_command too).",
            ),
        },
    }
}

pub fn run(ctx: &Ctx, cmd: WalCommand) -> Result<ExitStatus> {
    let config = ctx.config()?;
    match cmd {
        WalCommand::Push(a) => {
            let (source, _) = pick_source(&config, a.source.source.as_deref())?;
            let repo = WalRepo::open(&config, source, true)?;
            if a.asynchronous {
                let spool = wal::spool_dir(&config, source);
                std::fs::create_dir_all(&spool)?;
                match wal::await_ahead(&spool, &a.path, std::time::Duration::from_secs(60)) {
                    wal::Ahead::Archived => {
                        tracing::info!("archived ahead by the background worker");
                        return Ok(ExitStatus::Success);
                    }
                    wal::Ahead::Failed(msg) => {
                        tracing::warn!(
                            "the background worker failed on {}: {msg}; trying again",
                            a.path.display()
                        )
                    }
                    wal::Ahead::Unknown => {}
                }
                start_worker(&config, source, &a.path, &spool);
            }
            let outcome = wal::push(&repo, &a.path)?;
            if ctx.global.json {
                output::json(&outcome)?;
            } else {
                tracing::info!(
                    "{} {} ({} -> {})",
                    outcome.status,
                    outcome.file,
                    output::bytes(outcome.bytes),
                    output::bytes(outcome.stored_bytes)
                );
            }
            Ok(ExitStatus::Success)
        }
        WalCommand::Fetch(a) => {
            let (source, _) = pick_source(&config, a.source.source.as_deref())?;
            let repo = WalRepo::open(&config, source, false)?;
            match wal::fetch(&repo, &a.name, &a.path) {
                Ok(target) => {
                    tracing::info!("restored {} from target '{target}'", a.name);
                    Ok(ExitStatus::Success)
                }
                Err(FetchError::NotInArchive) => {
                    if ctx.global.quiet == 0 {
                        eprintln!(
                            "vaultctl: wal fetch: {} is not in the archive (exit 1: not an error)",
                            a.name
                        );
                    }
                    // restore_command's "not found" is any non-zero code.
                    Ok(ExitStatus::Failure)
                }
                Err(FetchError::Failed(e)) => Err(e),
            }
        }
        WalCommand::Status(a) => status(ctx, &config, a),
        WalCommand::Drain(a) => {
            let (source, _) = pick_source(&config, a.source.source.as_deref())?;
            let repo = WalRepo::open(&config, source, true)?;
            let spool = wal::spool_dir(&config, source);
            let n = wal::drain(&repo, &spool, &a.pg_wal, a.skip.as_deref())?;
            tracing::info!("archived {n} WAL file(s) ahead");
            Ok(ExitStatus::Success)
        }
        WalCommand::Sync(a) => {
            let (source, _) = pick_source(&config, a.source.as_deref())?;
            let repo = WalRepo::open(&config, source, false)?;
            let report = wal::sync(&repo, &config)?;
            if ctx.global.json {
                output::json(&report)?;
            } else {
                for (t, n) in &report {
                    output::line(&format!("{t}: copied {n} WAL file(s)"))?;
                }
            }
            let missing: Vec<String> = repo
                .stores
                .iter()
                .filter_map(|s| s.as_ref().err().map(|(t, e)| format!("{t}: {e}")))
                .collect();
            if !missing.is_empty() {
                eprintln!("vaultctl: warning: not synced: {}", missing.join("; "));
                return Ok(ExitStatus::Warnings);
            }
            Ok(ExitStatus::Success)
        }
    }
}

/// Starts the background worker (detached) unless one runs already.
fn start_worker(config: &Config, source: &str, path: &std::path::Path, spool: &std::path::Path) {
    use std::os::unix::process::CommandExt;
    if wal::try_lock(&spool.join("drain.lock")).is_none() {
        return; // running
    }
    let pg_wal = std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()));
    let (Some(pg_wal), Ok(exe)) = (pg_wal, std::env::current_exe()) else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    if let crate::config::Origin::File(p) = &config.origin {
        cmd.arg("--config")
            .arg(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()));
    }
    cmd.args(["--quiet", "wal", "drain", "--source", source, "--pg-wal"])
        .arg(pg_wal)
        .arg("--skip")
        .arg(path.file_name().unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid in the child, before exec: no allocation, no locks.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    if let Err(e) = cmd.spawn() {
        tracing::warn!("cannot start the background WAL worker: {e}");
    }
}

#[derive(Debug, serde::Serialize)]
struct TargetStatus {
    target: String,
    files: usize,
    last_segment: Option<String>,
    last_archived_at: Option<String>,
    lag_seconds: Option<i64>,
    gaps: Vec<(String, String)>,
    /// WAL files the primary has and this target lacks.
    behind_primary: usize,
    error: Option<String>,
}

fn status(ctx: &Ctx, config: &Config, a: StatusArgs) -> Result<ExitStatus> {
    let (source, spec) = pick_source(config, a.source.source.as_deref())?;
    let max_lag = crate::config::parse_duration(&a.max_lag).map_err(|e| {
        crate::error::Failure::new(ExitStatus::Usage, format!("--max-lag: {e}"))
            .with_remedy("Write an age such as 15m or 1h.")
    })?;
    let repo = WalRepo::open(config, source, false)?;
    let now = time::OffsetDateTime::now_utc();
    let mut targets = Vec::new();
    let mut primary_names: Option<std::collections::BTreeSet<String>> = None;
    for s in &repo.stores {
        let store = match s {
            Ok(s) => s,
            Err((t, e)) => {
                targets.push(TargetStatus {
                    target: t.clone(),
                    files: 0,
                    last_segment: None,
                    last_archived_at: None,
                    lag_seconds: None,
                    gaps: Vec::new(),
                    behind_primary: 0,
                    error: Some(e.clone()),
                });
                continue;
            }
        };
        match wal::list(store, source) {
            Ok(objs) => {
                let seg = wal::display_segment_size(store, source, &objs);
                let last = objs
                    .iter()
                    .filter(|o| matches!(o.file, wal::WalFile::Segment { .. }))
                    .max_by(|x, y| x.name.cmp(&y.name));
                let newest = objs.iter().map(|o| o.modified).max();
                let names: std::collections::BTreeSet<String> =
                    objs.iter().map(|o| o.name.clone()).collect();
                let behind = match &primary_names {
                    Some(p) => p.difference(&names).count(),
                    None => {
                        primary_names = Some(names);
                        0
                    }
                };
                targets.push(TargetStatus {
                    target: store.name.clone(),
                    files: objs.len(),
                    last_segment: last.map(|o| o.name.clone()),
                    last_archived_at: newest.map(crate::clock::format),
                    lag_seconds: newest.map(|t| (now - t).whole_seconds()),
                    gaps: wal::gaps(&objs, seg),
                    behind_primary: behind,
                    error: None,
                });
            }
            Err(e) => targets.push(TargetStatus {
                target: store.name.clone(),
                files: 0,
                last_segment: None,
                last_archived_at: None,
                lag_seconds: None,
                gaps: Vec::new(),
                behind_primary: 0,
                error: Some(crate::error::paragraph(&e)),
            }),
        }
    }
    // What the server says (optional: the source may be unreachable from here).
    let server = server_archiver(spec);
    let mut critical: Vec<String> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        if let Some(e) = &t.error {
            critical.push(format!("target '{}' cannot be read: {e}", t.target));
        }
        for (from, to) in &t.gaps {
            critical.push(format!("target '{}' misses WAL {from} .. {to} (a gap: point-in-time recovery cannot cross it)", t.target));
        }
        if i == 0 {
            match t.lag_seconds {
                Some(l) if l as u64 > max_lag.as_secs() => critical.push(format!(
                    "nothing was archived on the primary target for {} (more than --max-lag {})",
                    output::duration_ms(l as u64 * 1000),
                    a.max_lag
                )),
                None if t.error.is_none() => critical.push(format!(
                    "no WAL of source '{source}' is archived on the primary target"
                )),
                _ => {}
            }
        } else if t.behind_primary > 0 {
            critical.push(format!(
                "target '{}' lacks {} WAL file(s) the primary has (run `vaultctl wal sync`)",
                t.target, t.behind_primary
            ));
        }
    }
    if let Some(s) = &server {
        if s["failing"].as_bool() == Some(true) {
            critical.push(format!(
                "PostgreSQL reports archive_command failing: last failed {} at {} ({} failures since stats reset)",
                s["last_failed_wal"].as_str().unwrap_or("?"),
                s["last_failed_time"].as_str().unwrap_or("?"),
                s["failed_count"]
            ));
        }
    }
    for c in &critical {
        tracing::error!("CRITICAL: WAL archive of source '{source}': {c}");
    }
    record_alert(config, source, &critical);
    if ctx.global.json {
        output::json(&serde_json::json!({
            "source": source,
            "targets": targets,
            "server": server,
            "critical": critical,
        }))?;
    } else {
        let mut t = output::table();
        t.set_header(vec![
            "target",
            "files",
            "last segment",
            "last archived",
            "lag",
            "gaps",
            "behind primary",
        ]);
        for s in &targets {
            t.add_row(vec![
                s.target.clone(),
                s.files.to_string(),
                s.last_segment.clone().unwrap_or_else(|| "-".into()),
                s.last_archived_at.clone().unwrap_or_else(|| "-".into()),
                s.lag_seconds
                    .map(|l| output::duration_ms(l.max(0) as u64 * 1000))
                    .unwrap_or_else(|| "-".into()),
                s.gaps.len().to_string(),
                s.behind_primary.to_string(),
            ]);
        }
        output::line(&t.to_string())?;
        if let Some(s) = &server {
            output::line(&format!(
                "server: current WAL {}, last archived {} at {}, {} failure(s)",
                s["current_wal"].as_str().unwrap_or("?"),
                s["last_archived_wal"].as_str().unwrap_or("-"),
                s["last_archived_time"].as_str().unwrap_or("-"),
                s["failed_count"]
            ))?;
        }
        if critical.is_empty() {
            output::line("ok: WAL archiving is current, no gaps")?;
        } else {
            for c in &critical {
                output::line(&format!("CRITICAL: {c}"))?;
            }
        }
    }
    Ok(if critical.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Raises the critical WAL-archive alert of `source` (one, de-duplicated,
/// listing every condition) or resolves it when all is well again.
fn record_alert(config: &Config, source: &str, critical: &[String]) {
    use crate::ops::{self, alerts};
    let catalog = match crate::catalog::Catalog::open(&config.catalog) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(
                "cannot record the WAL archive state as an alert: {}",
                crate::error::paragraph(&e)
            );
            return;
        }
    };
    let key = alerts::AlertKey::new(alerts::kind::WAL_ARCHIVE, source, "");
    if critical.is_empty() {
        ops::clear(config, &catalog, &key, "wal status");
    } else {
        let message = format!(
            "WAL archiving of source '{source}' is broken, so point-in-time recovery would stop short: {}. Fix archive_command or the target, then run `vaultctl wal status` again.",
            critical.join("; ")
        );
        ops::alert(
            config,
            &catalog,
            key,
            crate::severity::Severity::Critical,
            &message,
        );
    }
}

/// pg_stat_archiver of the source's server, when it answers.
fn server_archiver(spec: &PhysicalSpec) -> Option<serde_json::Value> {
    use crate::engine::postgres::{query, ConnInfo};
    let conn = ConnInfo::new(&spec.url, spec.password_file.as_deref()).ok()?;
    let client = conn.connect().ok()?;
    let r = query(
        &client,
        "SELECT last_archived_wal, to_char(last_archived_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                last_failed_wal, to_char(last_failed_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                failed_count, coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false),
                CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END
           FROM pg_stat_archiver",
        &[],
    )
    .ok()?;
    let row = r.first()?;
    Some(serde_json::json!({
        "last_archived_wal": row.get::<_, Option<String>>(0),
        "last_archived_time": row.get::<_, Option<String>>(1),
        "last_failed_wal": row.get::<_, Option<String>>(2),
        "last_failed_time": row.get::<_, Option<String>>(3),
        "failed_count": row.get::<_, i64>(4),
        "failing": row.get::<_, bool>(5),
        "current_wal": row.get::<_, Option<String>>(6),
    }))
}
