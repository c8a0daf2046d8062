//! `vaultctl restore … --type pitr`: a physical base backup extracted into
//! a new data directory, configured to replay archived WAL (through
//! `vaultctl wal fetch`) to a time or to the end of the archive, and with
//! `--start` run until recovery has finished. Recorded in the restore log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::restore::{confirm, operator, PgType, RestoreArgs};
use crate::catalog::{BackupFilter, BackupRow, Catalog, RestoreStart};
use crate::cli::{output, Ctx};
use crate::config::{Origin, SourceSpec};
use crate::engine::files;
use crate::engine::postgres::pitr::{self, RecoverySettings};
use crate::error::{fail, ExitStatus, Failure};
use crate::repo::restore::{self, ArtifactReader};
use crate::repo::{wal, Repository};

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

/// What a point-in-time restore of a base backup can reach: from when it
/// became consistent to when the newest archived WAL file was stored. The
/// flag form and the wizard check a recovery time against it alike.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reach {
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

fn restore_command(ctx: &Ctx, config_origin: &Origin, source: &str) -> Result<String> {
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
    if let Some(id) = &ctx.global.identity {
        let id = std::fs::canonicalize(id).unwrap_or_else(|_| id.clone());
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

pub fn run(ctx: &Ctx, args: &RestoreArgs) -> Result<ExitStatus> {
    if args.kind != Some(PgType::Pitr) || args.pgdata.is_none() {
        return fail(
            ExitStatus::Usage,
            "a point-in-time restore needs both --type pitr and --pgdata DIR.",
            "Example: vaultctl restore --source cluster --type pitr --pgdata /var/lib/postgresql/15/restore --to-time 2026-11-22T03:00:00Z",
        );
    }
    let dir = args.pgdata.clone().expect("checked");
    if args.to_time.is_none() && !args.to_latest {
        return fail(
            ExitStatus::Usage,
            "say how far to recover: --to-time TIMESTAMP or --to-latest.",
            "--to-latest replays every archived WAL file; --to-time stops before the first transaction committed after it.",
        );
    }
    let mut extra = Vec::new();
    for s in &args.settings {
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
    let target_time = args
        .to_time
        .as_deref()
        .map(pitr::parse_target_time)
        .transpose()?;
    let config = ctx.config()?;
    let repo = Repository::open(&config, args.target.as_deref())?;
    let mut catalog = Catalog::open(&config.catalog)?;
    catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
    let row = match (&args.backup, &args.source) {
        (Some(spec), _) => restore::resolve_backup(&catalog, spec)?,
        (None, Some(source)) => pick_base(&catalog, source, target_time)?,
        (None, None) => unreachable!("clap requires one"),
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
    if let Some(t) = target_time {
        let reach = Reach::of(&catalog, &repo, &row);
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
    pitr::check_empty(&dir)?;
    let owner = pitr::resolve_owner(&dir, args.owner.as_deref())?;
    if args.start && owner.uid == 0 {
        return fail(
            ExitStatus::Usage,
            format!("the restored data directory would belong to root ({}'s parent is root's), and PostgreSQL refuses to run as root.", dir.display()),
            "Pass --owner postgres (the user that runs PostgreSQL).",
        );
    }
    let physical = config
        .sources
        .iter()
        .find(|s| s.name == row.source)
        .and_then(|s| match &s.spec {
            SourceSpec::PostgresPhysical(p) => Some(p.clone()),
            _ => None,
        });
    let bin: PathBuf = args
        .pg_bin_dir
        .clone()
        .or_else(|| physical.as_ref().and_then(|p| p.pg_bin_dir.clone()))
        .unwrap_or_default();
    let command = restore_command(ctx, &config.origin, &row.source)?;
    if args.start && !args.yes {
        confirm(&format!(
            "restore base backup {} into {} and start PostgreSQL on it ({})",
            row.id,
            dir.display(),
            target_time
                .map(|t| format!("recovering to {}", pitr::pg_time(t)))
                .unwrap_or_else(|| "recovering to the end of the archive".into())
        ))?;
    }
    let log_id = catalog.restore_started(&RestoreStart {
        backup_id: &row.id,
        source: &row.source,
        kind: "pitr",
        target: &dir.display().to_string(),
        tenants: &[],
        reason: args.reason.as_deref(),
        operator: &operator(),
        host: &crate::repo::hostname(),
        started_at: &crate::clock::now_rfc3339(),
    })?;
    let started = std::time::Instant::now();
    let mut overridden: Vec<pitr::Neutralised> = Vec::new();
    let result = (|| -> Result<Option<pitr::Recovered>> {
        let mut stores = repo.stores.clone();
        stores.sort_by_key(|s| !row.targets.contains(&s.name));
        let (_, body) = restore::load_body(&repo, &stores, &row.id)?;
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
        let plan = restore::plan(&repo, &mut catalog, artifact)?;
        let reader = ArtifactReader::open(&repo, stores, artifact, plan)?;
        create_private_dir(&dir)?;
        files::restore_tar(reader, &dir, false)?;
        pitr::fix_ownership(&dir, &owner)?;
        let neutralised = pitr::neutralise(&bin, &dir, &owner)?;
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
            &dir,
            &RecoverySettings {
                restore_command: command.clone(),
                target_time,
                neutralised: neutralised.into_iter().map(|(n, _)| n).collect(),
                extra: extra.clone(),
                backup_id: row.id.clone(),
            },
        )?;
        pitr::fix_ownership(&dir, &owner)?;
        if args.start {
            return Ok(Some(pitr::start_and_wait(
                &bin,
                &dir,
                &owner,
                RECOVERY_TIMEOUT,
            )?));
        }
        Ok(None)
    })();
    let ms = started.elapsed().as_millis() as u64;
    let details = serde_json::json!({
        "pgdata": dir,
        "to_time": target_time.map(pitr::pg_time),
        "to_latest": args.to_latest,
        "started": args.start,
        "recovery": result.as_ref().ok().and_then(|r| r.as_ref()),
        "neutralised": overridden,
    });
    let _ = catalog.restore_finished(
        log_id,
        &crate::clock::now_rfc3339(),
        result.is_ok(),
        None,
        &details,
        result
            .as_ref()
            .err()
            .map(crate::error::paragraph)
            .as_deref(),
    );
    let recovered = result?;
    if ctx.global.json {
        output::json(&serde_json::json!({
            "restore": log_id, "backup": row.id, "type": "pitr", "pgdata": dir,
            "to_time": target_time.map(pitr::pg_time), "duration_ms": ms,
            "reached": recovered.as_ref().and_then(|r| r.reached.clone()),
            "stopped": recovered.as_ref().and_then(|r| r.stopped.clone()),
            "owner": owner.name, "neutralised": overridden,
        }))?;
    } else {
        output::line(&format!(
            "restored base backup {} into {} (owner {}) in {}; stream hash verified",
            row.id,
            dir.display(),
            owner.name,
            output::duration_ms(ms)
        ))?;
        match &recovered {
            Some(r) => output::line(&format!(
                "recovery finished and the server was promoted; last transaction replayed: {}{}",
                r.reached.as_deref().unwrap_or("none after the base backup"),
                r.stopped
                    .as_deref()
                    .map(|s| format!("\n{s}"))
                    .unwrap_or_default()
            ))?,
            None => output::line(&format!(
                "recovery is configured (recovery.signal, postgresql.auto.conf); start it with: pg_ctl -D {} start",
                dir.display()
            ))?,
        }
        output::line("archiving (archive_mode) is off in the restored cluster; turn it on, with its own source, if it becomes a primary")?;
        for n in &overridden {
            output::line(&format!(
                "not trusted from the backup: {} was '{}', now '{}' (set it again with ALTER SYSTEM once you have checked it)",
                n.name, n.was, n.now
            ))?;
        }
    }
    Ok(ExitStatus::Success)
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
