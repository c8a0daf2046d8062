//! The point-in-time restore job: a physical base backup extracted into a
//! new data directory, configured to replay archived WAL (through
//! `vaultctl wal fetch`) to a time or to the end of the archive, and with
//! `start` run until recovery has finished. Recorded in the restore log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use time::OffsetDateTime;

use super::{finish, Job, Ran};
use crate::catalog::{BackupFilter, BackupRow, Catalog};
use crate::config::{Origin, SourceSpec};
use crate::engine::files;
use crate::engine::postgres::pitr::{self, RecoverySettings};
use crate::error::{fail, ExitStatus, Failure};
use crate::repo::restore::{self, ArtifactReader};
use crate::repo::{wal, Repository};

/// Which base backup.
#[derive(Debug, Clone)]
pub enum Base {
    /// This one (id, prefix or SOURCE:latest).
    Backup(String),
    /// The newest of this source consistent before the target time.
    Source(String),
}

/// A point-in-time restore.
#[derive(Debug, Clone)]
pub struct Request {
    pub base: Base,
    /// The new data directory (empty or absent).
    pub pgdata: PathBuf,
    /// Recover up to this time; `None`: to the end of the archive.
    pub to_time: Option<OffsetDateTime>,
    /// Start the server and wait until recovery has finished.
    pub start: bool,
    /// As root: who owns the data directory (default: its parent's owner).
    pub owner: Option<String>,
    /// Extra server settings for the restored cluster.
    pub settings: Vec<(String, String)>,
    pub pg_bin_dir: Option<PathBuf>,
    /// Read from this target only.
    pub target: Option<String>,
    pub reason: Option<String>,
    /// The identity file named on the command line, passed on to
    /// restore_command's `vaultctl wal fetch`.
    pub identity: Option<PathBuf>,
}

/// A finished point-in-time restore.
#[derive(Debug, Serialize)]
pub struct Outcome {
    #[serde(rename = "restore")]
    pub log_id: i64,
    pub backup: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub pgdata: PathBuf,
    pub to_time: Option<String>,
    #[serde(rename = "duration_ms")]
    pub ms: u64,
    pub reached: Option<String>,
    pub stopped: Option<String>,
    pub owner: String,
    pub neutralised: Vec<pitr::Neutralised>,
    /// Whether the server was started (recovery finished).
    #[serde(skip)]
    pub started: bool,
}

impl Outcome {
    /// What the restore did and what the operator does next, for people.
    pub fn lines(&self) -> Vec<String> {
        let mut l = vec![format!(
            "restored base backup {} into {} (owner {}) in {}; stream hash verified",
            self.backup,
            self.pgdata.display(),
            self.owner,
            crate::humanize::duration_ms(self.ms)
        )];
        l.push(if self.started {
            format!(
                "recovery finished and the server was promoted; last transaction replayed: {}{}",
                self.reached.as_deref().unwrap_or("none after the base backup"),
                self.stopped.as_deref().map(|s| format!("\n{s}")).unwrap_or_default()
            )
        } else {
            format!(
                "recovery is configured (recovery.signal, postgresql.auto.conf); start it with: pg_ctl -D {} start",
                self.pgdata.display()
            )
        });
        l.push("archiving (archive_mode) is off in the restored cluster; turn it on, with its own source, if it becomes a primary".into());
        l.extend(self.neutralised.iter().map(|n| format!(
            "not trusted from the backup: {} was '{}', now '{}' (set it again with ALTER SYSTEM once you have checked it)",
            n.name, n.was, n.now
        )));
        l
    }
}

const KIND: &str = "postgres-physical";
/// How long --start waits for recovery to finish.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

fn consistent_at(catalog: &Catalog, id: &str) -> Option<time::OffsetDateTime> {
    catalog
        .details(id)
        .ok()
        .flatten()
        .and_then(|d| d["engine"]["consistent_at"].as_str().map(str::to_string))
        .and_then(|s| pitr::parse_target_time(&s).ok())
}

/// The newest completed base backup of `source` that is consistent at or
/// before `time` (or the newest one at all).
fn pick_base(
    catalog: &Catalog,
    source: &str,
    time: Option<time::OffsetDateTime>,
) -> Result<BackupRow> {
    let rows = catalog.list(&BackupFilter {
        source: Some(source.to_string()),
        kind: Some(KIND.into()),
        status: Some("completed".into()),
        ..Default::default()
    })?;
    if rows.is_empty() {
        return fail(
            ExitStatus::Usage,
            format!("source '{source}' has no completed base backup in the catalog."),
            "Take one with `vaultctl backup SOURCE` (a postgres-physical source); on a new machine run `vaultctl catalog rebuild` first.",
        );
    }
    let Some(t) = time else {
        return Ok(rows.into_iter().next().expect("not empty"));
    };
    for r in rows {
        if consistent_at(catalog, &r.id).is_some_and(|c| c <= t) {
            return Ok(r);
        }
    }
    fail(
        ExitStatus::Usage,
        format!(
            "no base backup of '{source}' is consistent by {}; the earliest time a restore can reach is the end of the oldest base backup.",
            pitr::pg_time(t)
        ),
        "Pick a later --to-time (see `vaultctl list --source SOURCE`).",
    )
}

/// `--set NAME=VALUE` pairs: extra server settings of the restored
/// cluster, names checked (letters, digits, `_` and `.`).
pub fn parse_settings(list: &[String]) -> Result<Vec<(String, String)>> {
    let mut extra = Vec::new();
    for s in list {
        match s.split_once('=') {
            Some((k, v))
                if !k.trim().is_empty()
                    && k.trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
            {
                extra.push((k.trim().to_string(), v.to_string()))
            }
            _ => {
                return fail(
                    ExitStatus::Usage,
                    format!("--set \"{s}\" is not NAME=VALUE."),
                    "Example: --set port=5433",
                )
            }
        }
    }
    Ok(extra)
}

/// What a point-in-time restore of a base backup can reach: from when it
/// became consistent to when the newest archived WAL file was stored. The
/// flag form and the wizard check a recovery time against it alike.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reach {
    pub from: Option<time::OffsetDateTime>,
    pub to: Option<time::OffsetDateTime>,
}

impl Reach {
    pub fn of(catalog: &Catalog, repo: &Repository, row: &BackupRow) -> Reach {
        Reach {
            from: consistent_at(catalog, &row.id),
            to: wal::newest_archived(&repo.stores, &row.source),
        }
    }

    /// What a tenant point-in-time restore of `source` can reach: it picks
    /// the newest base backup consistent before the time, so from the
    /// oldest completed one on.
    pub fn of_source(catalog: &Catalog, repo: &Repository, source: &str) -> Reach {
        let rows = catalog
            .list(&BackupFilter {
                source: Some(source.to_string()),
                kind: Some(KIND.into()),
                status: Some("completed".into()),
                ..Default::default()
            })
            .unwrap_or_default();
        Reach {
            from: rows
                .iter()
                .filter_map(|r| consistent_at(catalog, &r.id))
                .min(),
            to: wal::newest_archived(&repo.stores, source),
        }
    }

    /// Why recovery cannot stop at `t`, when it cannot: before the backup
    /// is consistent, or after the newest archived WAL (recovery would end
    /// short of it and PostgreSQL would not start).
    pub fn problem(&self, t: time::OffsetDateTime) -> Option<String> {
        if let Some(from) = self.from.filter(|f| t < *f) {
            return Some(format!(
                "{} is before the base backup became consistent ({}): recovery cannot stop there",
                pitr::pg_time(t),
                pitr::pg_time(from)
            ));
        }
        self.to.filter(|n| t > *n + wal::CLOCK_SLACK).map(|newest| {
            format!(
                "{} is after the newest archived WAL (stored {}): recovery would end before reaching it and PostgreSQL would refuse to start",
                pitr::pg_time(t),
                pitr::pg_time(newest)
            )
        })
    }
}

/// `"…"`-quoted for restore_command's shell; refuses characters that would
/// need more than that.
fn shell_word(s: &str) -> Result<String> {
    if s.chars().any(|c| "\"'$`\\\n".contains(c)) {
        return fail(
            ExitStatus::Usage,
            format!("the path {s} holds quotes, '$', '`' or '\\', which restore_command cannot carry safely."),
            "Use paths without those characters for the vaultctl binary and its config.",
        );
    }
    Ok(format!("\"{s}\""))
}

pub(super) fn restore_command(
    identity: Option<&Path>,
    config_origin: &Origin,
    source: &str,
) -> Result<String> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut cmd = shell_word(&exe.display().to_string())?;
    match config_origin {
        Origin::File(p) => {
            let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            cmd.push_str(&format!(
                " --config {}",
                shell_word(&p.display().to_string())?
            ));
        }
        Origin::Embedded => tracing::warn!(
            "no config file: restore_command relies on the server user's default vaultctl config"
        ),
    }
    if let Some(id) = identity {
        let id = std::fs::canonicalize(id).unwrap_or_else(|_| id.to_path_buf());
        cmd.push_str(&format!(
            " --identity {}",
            shell_word(&id.display().to_string())?
        ));
    }
    cmd.push_str(&format!(
        " --quiet wal fetch --source {} %f \"%p\"",
        shell_word(source)?
    ));
    Ok(cmd)
}

/// Runs a point-in-time restore and ends it in [`finish`].
pub fn run(job: &Job, req: &Request) -> Result<Outcome> {
    let mut source = String::new();
    let result = restore(job, req, &mut source);
    let backup = match (&result, &req.base) {
        (Ok(o), _) => o.backup.clone(),
        (Err(_), Base::Backup(b)) => b.clone(),
        (Err(_), Base::Source(_)) => String::new(),
    };
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

/// The base backup a request names, checked against what it can reach.
pub(super) fn choose_base(
    catalog: &Catalog,
    repo: &Repository,
    base: &Base,
    to_time: Option<OffsetDateTime>,
) -> Result<BackupRow> {
    let row = match base {
        Base::Backup(spec) => catalog.resolve_backup(spec)?,
        Base::Source(source) => pick_base(catalog, source, to_time)?,
    };
    if row.kind != KIND || row.status != "completed" {
        return fail(
            ExitStatus::Usage,
            format!(
                "backup {} is a {} {} backup; a pitr restore needs a completed {KIND} base backup.",
                row.id, row.status, row.kind
            ),
            "Pick one from `vaultctl list --kind postgres-physical`, or use --source SOURCE.",
        );
    }
    if let Some(t) = to_time {
        let reach = Reach::of(catalog, repo, &row);
        if reach.to.is_none() {
            tracing::warn!("no archived WAL of source '{}' could be listed; recovery can reach only the end of the base backup", row.source);
        }
        if let Some(problem) = reach.problem(t) {
            return fail(
                ExitStatus::Usage,
                format!("--to-time {problem} (base backup {})", row.id),
                "Use a later time or an older base backup (omit BACKUP and pass --source to pick one), or --to-latest; `vaultctl wal status` shows whether archiving is current.",
            );
        }
    }
    Ok(row)
}

fn restore(job: &Job, req: &Request, source: &mut String) -> Result<Outcome> {
    let config = job.config;
    let dir = &req.pgdata;
    let (repo, mut catalog) = super::open(config, req.target.as_deref())?;
    let row = choose_base(&catalog, &repo, &req.base, req.to_time)?;
    source.clone_from(&row.source);
    pitr::check_empty(dir)?;
    let owner = data_owner(req)?;
    let bin = bin_dir(config, &row, req.pg_bin_dir.as_deref());
    let command = restore_command(req.identity.as_deref(), &config.origin, &row.source)?;
    confirm_start(job, req, &row)?;
    let log_id = catalog.restore_started(&super::restore_start(
        &row,
        "pitr",
        &dir.display().to_string(),
        &[],
        req.reason.as_deref(),
    ))?;
    let started = std::time::Instant::now();
    let mut overridden: Vec<pitr::Neutralised> = Vec::new();
    let result = (|| -> Result<Option<pitr::Recovered>> {
        overridden = prepare(
            &repo,
            &mut catalog,
            &row,
            dir,
            &owner,
            &bin,
            &command,
            req.to_time,
            req.settings.clone(),
        )?;
        if req.start {
            return Ok(Some(pitr::start_and_wait(
                &bin,
                dir,
                &owner,
                RECOVERY_TIMEOUT,
            )?));
        }
        Ok(None)
    })();
    let ms = started.elapsed().as_millis() as u64;
    let details = serde_json::json!({
        "pgdata": dir,
        "to_time": req.to_time.map(pitr::pg_time),
        "to_latest": req.to_time.is_none(),
        "started": req.start,
        "recovery": result.as_ref().ok().and_then(|r| r.as_ref()),
        "neutralised": overridden,
    });
    super::restore_end(&catalog, log_id, &result, None, &details);
    let recovered = result?;
    Ok(Outcome {
        log_id,
        backup: row.id.clone(),
        kind: "pitr",
        pgdata: dir.clone(),
        to_time: req.to_time.map(pitr::pg_time),
        ms,
        reached: recovered.as_ref().and_then(|r| r.reached.clone()),
        stopped: recovered.as_ref().and_then(|r| r.stopped.clone()),
        owner: owner.name,
        neutralised: overridden,
        started: recovered.is_some(),
    })
}

/// Who will own the data directory; never root when the server is to be
/// started (PostgreSQL refuses to run as root).
fn data_owner(req: &Request) -> Result<pitr::Owner> {
    let dir = &req.pgdata;
    let owner = pitr::resolve_owner(dir, req.owner.as_deref())?;
    if req.start && owner.uid == 0 {
        return fail(
            ExitStatus::Usage,
            format!("the restored data directory would belong to root ({}'s parent is root's), and PostgreSQL refuses to run as root.", dir.display()),
            "Pass --owner postgres (the user that runs PostgreSQL).",
        );
    }
    Ok(owner)
}

/// Starting a server on restored files runs what the backup holds: asked
/// first (unless `--yes`).
fn confirm_start(job: &Job, req: &Request, row: &BackupRow) -> Result<()> {
    if !req.start {
        return Ok(());
    }
    job.confirm.confirm(&format!(
        "restore base backup {} into {} and start PostgreSQL on it ({})",
        row.id,
        req.pgdata.display(),
        req.to_time
            .map(|t| format!("recovering to {}", pitr::pg_time(t)))
            .unwrap_or_else(|| "recovering to the end of the archive".into())
    ))
}

/// The base backup `row` unpacked into `dir`, given to `owner`, with the
/// settings that could run backup content neutralised and recovery
/// configured (to `to_time`, else the end of the archive; `extra` last).
/// Returns the overrides that changed something.
#[allow(clippy::too_many_arguments)]
pub(super) fn prepare(
    repo: &Repository,
    catalog: &mut Catalog,
    row: &BackupRow,
    dir: &Path,
    owner: &pitr::Owner,
    bin: &Path,
    command: &str,
    to_time: Option<OffsetDateTime>,
    extra: Vec<(String, String)>,
) -> Result<Vec<pitr::Neutralised>> {
    unpack(repo, catalog, row, dir)?;
    pitr::fix_ownership(dir, owner)?;
    let neutralised = pitr::neutralise(bin, dir, owner)?;
    let mut overridden = Vec::new();
    for (n, changed) in &neutralised {
        if *changed {
            tracing::warn!(
                "the base backup sets {} = '{}'; the restored cluster gets '{}' (backup content never runs code here)",
                n.name,
                n.was,
                n.now
            );
            overridden.push(n.clone());
        }
    }
    pitr::write_recovery(
        dir,
        &RecoverySettings {
            restore_command: command.to_string(),
            target_time: to_time,
            neutralised: neutralised.into_iter().map(|(n, _)| n).collect(),
            extra,
            backup_id: row.id.clone(),
        },
    )?;
    pitr::fix_ownership(dir, owner)?;
    Ok(overridden)
}

/// Where pg_ctl and postgres are: the request, else the source's config,
/// else PATH.
pub(super) fn bin_dir(
    config: &crate::config::Config,
    row: &BackupRow,
    explicit: Option<&Path>,
) -> PathBuf {
    let physical = config
        .sources
        .iter()
        .find(|s| s.name == row.source)
        .and_then(|s| match &s.spec {
            SourceSpec::PostgresPhysical(p) => Some(p.clone()),
            _ => None,
        });
    explicit
        .map(Path::to_path_buf)
        .or_else(|| physical.as_ref().and_then(|p| p.pg_bin_dir.clone()))
        .unwrap_or_default()
}

/// The base backup's tar archive, checked end to end, into `dir`.
fn unpack(repo: &Repository, catalog: &mut Catalog, row: &BackupRow, dir: &Path) -> Result<()> {
    let stores = super::restore::stores_for(repo, row);
    let (_, body) = restore::load_body(repo, &stores, &row.id)?;
    let artifact = body
        .artifacts
        .iter()
        .find(|a| a.format == "tar")
        .ok_or_else(|| {
            Failure::new(
                ExitStatus::Failure,
                format!("backup {} holds no tar archive.", row.id),
            )
        })?;
    let plan = restore::plan(repo, catalog, artifact)?;
    let reader = ArtifactReader::open(repo, stores, artifact, plan)?;
    create_private_dir(dir)?;
    files::restore_tar(reader, dir, false)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_settings;

    #[test]
    fn settings_are_name_value_pairs_with_plain_names() {
        let ok = parse_settings(&[" port =5433".into(), "log_min_messages=a=b".into()]).unwrap();
        assert_eq!(
            ok,
            [
                ("port".to_string(), "5433".to_string()),
                ("log_min_messages".to_string(), "a=b".to_string())
            ]
        );
        for bad in ["port", "=1", "a;b=1", "a b=1"] {
            let err = parse_settings(&[bad.into()]).unwrap_err();
            assert!(
                err.to_string().contains("is not NAME=VALUE"),
                "{bad}: {err:#}"
            );
        }
    }
}
