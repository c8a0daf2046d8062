//! `vaultctl restore`: a backup into a directory (tar artifacts) or to
//! stdout (streams), checked end to end against the manifest.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::catalog::Catalog;
use crate::cli::{output, Ctx};
use crate::engine::files;
use crate::error::{fail, ExitKind};
use crate::repo::restore::{self, ArtifactReader};
use crate::repo::Repository;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Backup id, unique id prefix, or SOURCE:latest
    pub backup: String,
    /// Restore a files backup (or tar artifact) into this directory
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "stdout",
        required_unless_present = "stdout"
    )]
    pub to: Option<PathBuf>,
    /// Write the backup's stream to stdout
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
}

pub fn run(ctx: &Ctx, args: RestoreArgs) -> Result<i32> {
    let config = ctx.config()?;
    let repo = Repository::open(&config, args.target.as_deref())?;
    let mut catalog = Catalog::open(&config.catalog)?;
    catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
    let row = restore::resolve_backup(&catalog, &args.backup)?;
    if row.status != "completed" {
        return fail(
            ExitKind::Usage,
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
    let artifact = match &args.artifact {
        Some(name) => body
            .artifacts
            .iter()
            .find(|a| &a.name == name)
            .ok_or_else(|| {
                crate::error::Failure::new(
                    ExitKind::Usage,
                    format!("backup {} has no artifact '{name}'.", row.id),
                )
                .with_remedy(format!(
                    "Its artifacts: {}.",
                    body.artifacts
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
        None if body.artifacts.len() == 1 => &body.artifacts[0],
        None => {
            return fail(
                ExitKind::Usage,
                format!(
                    "backup {} holds {} artifacts.",
                    row.id,
                    body.artifacts.len()
                ),
                format!(
                    "Choose one with --artifact: {}.",
                    body.artifacts
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
    };
    // A prune (here or on another host) may have deleted packs the catalog
    // still names: notice vanished index objects first (one listing per target).
    if let Err(e) = repo.sync_index(&mut catalog) {
        tracing::warn!(
            "could not refresh the catalog's index before restoring: {}",
            crate::error::paragraph(&e)
        );
    }
    let plan = restore::plan(&repo, &mut catalog, artifact)?;
    let started = std::time::Instant::now();
    let progress = ctx.progress();
    let reader = ArtifactReader::open(&repo, stores, artifact, plan)?;
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
                ExitKind::Usage,
                format!(
                    "artifact '{}' of backup {} is a {} stream, not an archive.",
                    artifact.name, row.id, artifact.format
                ),
                "Restore it with --stdout (for example `vaultctl restore ID --stdout > file`).",
            );
        }
        let x = files::restore_tar(&mut reader, dir, args.force)?;
        serde_json::json!({ "id": row.id, "to": dir, "entries": x.entries, "bytes": artifact.size })
    } else {
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut reader, &mut out).context("restoring to stdout failed")?;
        std::io::Write::flush(&mut out)?;
        serde_json::json!({ "id": row.id, "stdout": true, "bytes": artifact.size })
    };
    crate::progress::Progress::finish(&progress);
    let ms = started.elapsed().as_millis() as u64;
    if args.to.is_some() {
        if ctx.global.json {
            output::json(&summary)?;
        } else {
            output::line(&format!(
                "restored backup {} ({} entries, {}) into {} in {}, {:.1} MB/s; stream hash verified",
                row.id,
                summary["entries"],
                output::bytes(artifact.size),
                args.to.as_ref().unwrap().display(),
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
    Ok(0)
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
