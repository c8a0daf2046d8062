//! WAL archive jobs: the archive's state per target (`wal status`), its
//! alert, and the background worker of `wal push --async`.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::config::{Config, PhysicalSpec, SourceSpec};
use crate::error::{fail, ExitStatus};
use crate::humanize;
use crate::repo::wal::{self, WalRepo};
use crate::storage::Store;

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

/// `wal push` (PostgreSQL's archive_command): `path` archived. With
/// `asynchronous` a background worker archives the next files ahead, and a
/// file it has archived already returns at once (`None`).
pub fn push(
    config: &Config,
    source: Option<&str>,
    path: &std::path::Path,
    asynchronous: bool,
) -> Result<Option<wal::PushOutcome>> {
    let (source, _) = pick_source(config, source)?;
    let repo = WalRepo::open(config, source, true)?;
    if asynchronous {
        let spool = wal::spool_dir(config, source);
        std::fs::create_dir_all(&spool)?;
        match wal::await_ahead(&spool, path, Duration::from_secs(60)) {
            wal::Ahead::Archived => {
                tracing::info!("archived ahead by the background worker");
                return Ok(None);
            }
            wal::Ahead::Failed(msg) => {
                tracing::warn!(
                    "the background worker failed on {}: {msg}; trying again",
                    path.display()
                )
            }
            wal::Ahead::Unknown => {}
        }
        start_worker(config, source, path, &spool);
    }
    wal::push(&repo, path).map(Some)
}

/// `wal fetch` (PostgreSQL's restore_command): the WAL file `name` written
/// to `dest`; the target it came from, or `None` when no target has it
/// (restore_command's "not found", the end of the archive).
pub fn fetch(
    config: &Config,
    source: Option<&str>,
    name: &str,
    dest: &std::path::Path,
) -> Result<Option<String>> {
    let (source, _) = pick_source(config, source)?;
    let repo = WalRepo::open(config, source, false)?;
    match wal::fetch(&repo, name, dest) {
        Ok(target) => Ok(Some(target)),
        Err(wal::FetchError::NotInArchive) => Ok(None),
        Err(wal::FetchError::Failed(e)) => Err(e),
    }
}

/// The hidden `wal drain`: the background worker archiving ahead of
/// PostgreSQL from `pg_wal`; how many files it archived.
pub fn drain(
    config: &Config,
    source: Option<&str>,
    pg_wal: &std::path::Path,
    skip: Option<&str>,
) -> Result<usize> {
    let (source, _) = pick_source(config, source)?;
    let repo = WalRepo::open(config, source, true)?;
    let spool = wal::spool_dir(config, source);
    wal::drain(&repo, &spool, pg_wal, skip)
}

/// What `wal sync` did: WAL files copied per target, and the targets it
/// could not reach (`target: error`).
pub type Synced = (Vec<(String, usize)>, Vec<String>);

/// `wal sync`: WAL a target lacks copied from the others.
pub fn sync(config: &Config, source: Option<&str>) -> Result<Synced> {
    let (source, _) = pick_source(config, source)?;
    let repo = WalRepo::open(config, source, false)?;
    let report = wal::sync(&repo, config)?;
    let missing = repo
        .stores
        .iter()
        .filter_map(|s| s.as_ref().err().map(|(t, e)| format!("{t}: {e}")))
        .collect();
    Ok((report, missing))
}

/// Starts the background worker (detached) unless one runs already.
pub fn start_worker(
    config: &Config,
    source: &str,
    path: &std::path::Path,
    spool: &std::path::Path,
) {
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
    // SAFETY: std has no stable safe way to start a child in a new session
    // (`CommandExt::process_group` keeps the session, and with it the
    // archiver's terminal and hang-ups). The closure runs in the child
    // before exec and makes one raw system call: no allocation, no locks.
    unsafe {
        cmd.pre_exec(|| {
            let _ = rustix::process::setsid();
            Ok(())
        });
    }
    if let Err(e) = cmd.spawn() {
        tracing::warn!("cannot start the background WAL worker: {e}");
    }
}

#[derive(Debug, serde::Serialize)]
pub struct TargetStatus {
    pub target: String,
    pub files: usize,
    pub last_segment: Option<String>,
    pub last_archived_at: Option<String>,
    pub lag_seconds: Option<i64>,
    pub gaps: Vec<(String, String)>,
    /// WAL files the primary has and this target lacks.
    pub behind_primary: usize,
    pub error: Option<String>,
}

/// The WAL archive of one source: every target, the server's view, and
/// what is critical (empty: all is well).
#[derive(Debug, Serialize)]
pub struct Status {
    pub source: String,
    pub targets: Vec<TargetStatus>,
    pub server: Option<serde_json::Value>,
    pub critical: Vec<String>,
}

impl Status {
    /// The lines under the table: the server's archiver, then the verdict
    /// (`ok: …`, or one `CRITICAL: …` per condition).
    pub fn lines(&self) -> Vec<String> {
        let server = self.server.iter().map(|s| {
            format!(
                "server: current WAL {}, last archived {} at {}, {} failure(s)",
                s["current_wal"].as_str().unwrap_or("?"),
                s["last_archived_wal"].as_str().unwrap_or("-"),
                s["last_archived_time"].as_str().unwrap_or("-"),
                s["failed_count"]
            )
        });
        let verdict = if self.critical.is_empty() {
            vec!["ok: WAL archiving is current, no gaps".to_string()]
        } else {
            self.critical
                .iter()
                .map(|c| format!("CRITICAL: {c}"))
                .collect()
        };
        server.chain(verdict).collect()
    }
}

/// `wal status`: checks the archive of `source` (the only physical source
/// when `None`), logs and records the critical conditions as one alert
/// (resolved when there are none). `max_lag` is shown as `max_lag_text`.
pub fn status(
    config: &Config,
    source: Option<&str>,
    max_lag: Duration,
    max_lag_text: &str,
) -> Result<Status> {
    let (source, spec) = pick_source(config, source)?;
    let repo = WalRepo::open(config, source, false)?;
    // Lag against the storage's own clock: the objects' times are real.
    let now = time::OffsetDateTime::now_utc();
    let mut targets = Vec::new();
    let mut primary_names: Option<BTreeSet<String>> = None;
    for s in &repo.stores {
        targets.push(match s {
            Ok(store) => target_status(store, source, now, &mut primary_names),
            Err((t, e)) => failed_target(t.clone(), e.clone()),
        });
    }
    // What the server says (optional: the source may be unreachable from here).
    let server = server_archiver(spec);
    let critical = critical_conditions(source, &targets, server.as_ref(), max_lag, max_lag_text);
    for c in &critical {
        tracing::error!("CRITICAL: WAL archive of source '{source}': {c}");
    }
    record_alert(config, source, &critical);
    Ok(Status {
        source: source.to_string(),
        targets,
        server,
        critical,
    })
}

fn failed_target(target: String, error: String) -> TargetStatus {
    TargetStatus {
        target,
        files: 0,
        last_segment: None,
        last_archived_at: None,
        lag_seconds: None,
        gaps: Vec::new(),
        behind_primary: 0,
        error: Some(error),
    }
}

/// One target's archive; the first target listed is the primary the
/// others are compared with.
fn target_status(
    store: &Store,
    source: &str,
    now: time::OffsetDateTime,
    primary_names: &mut Option<BTreeSet<String>>,
) -> TargetStatus {
    let objs = match wal::list(store, source) {
        Ok(objs) => objs,
        Err(e) => return failed_target(store.name.clone(), crate::error::paragraph(&e)),
    };
    let seg = wal::display_segment_size(store, source, &objs);
    let last = objs
        .iter()
        .filter(|o| matches!(o.file, wal::WalFile::Segment { .. }))
        .max_by(|x, y| x.name.cmp(&y.name));
    let newest = objs.iter().map(|o| o.modified).max();
    let names: BTreeSet<String> = objs.iter().map(|o| o.name.clone()).collect();
    let behind = match primary_names {
        Some(p) => p.difference(&names).count(),
        None => {
            *primary_names = Some(names);
            0
        }
    };
    TargetStatus {
        target: store.name.clone(),
        files: objs.len(),
        last_segment: last.map(|o| o.name.clone()),
        last_archived_at: newest.map(crate::clock::format),
        lag_seconds: newest.map(|t| (now - t).whole_seconds()),
        gaps: wal::gaps(&objs, seg),
        behind_primary: behind,
        error: None,
    }
}

fn critical_conditions(
    source: &str,
    targets: &[TargetStatus],
    server: Option<&serde_json::Value>,
    max_lag: Duration,
    max_lag_text: &str,
) -> Vec<String> {
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
                    "nothing was archived on the primary target for {} (more than --max-lag {max_lag_text})",
                    humanize::duration_ms(l as u64 * 1000),
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
    if let Some(s) = server {
        if s["failing"].as_bool() == Some(true) {
            critical.push(format!(
                "PostgreSQL reports archive_command failing: last failed {} at {} ({} failures since stats reset)",
                s["last_failed_wal"].as_str().unwrap_or("?"),
                s["last_failed_time"].as_str().unwrap_or("?"),
                s["failed_count"]
            ));
        }
    }
    critical
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
