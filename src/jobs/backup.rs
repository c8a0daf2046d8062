//! The backup job: the planned sources backed up one after the other into
//! every reachable target, each reported to operations (hooks, alerts), then
//! the targets' replication checked and the metrics refreshed.

use anyhow::Result;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::ExitStatus;
use crate::ops;
use crate::repo::backup::{self, BackupOptions, BackupOutcome, Source};
use crate::repo::Repository;

/// One source to back up, under the name it is recorded as.
pub struct Planned {
    pub name: String,
    pub source: Box<dyn Source>,
    pub tags: Vec<String>,
}

/// What the job tells its caller while it runs.
pub enum Event<'a> {
    /// A target cannot be opened: it will miss this run (name, why).
    Unavailable(&'a str, &'a str),
    /// A source's backup completed (perhaps missing on some targets).
    Done(&'a BackupOutcome),
    /// A source's backup failed; with several sources the job goes on.
    Failed(&'a str, &'a anyhow::Error),
}

/// Backs up `planned` in order (extra `tags` and `note` on each). Exit 3
/// when a backup missed a target; with several sources a failed one does
/// not stop the others, and the first error is returned at the end.
pub fn run(
    job: &super::Job,
    planned: Vec<Planned>,
    tags: &[String],
    note: Option<&str>,
    on: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<ExitStatus> {
    let config = job.config;
    let repo = match ops::open_repository(config, None) {
        Ok(r) => r,
        Err(e) => {
            // No target answered (or none holds the repository): every
            // selected source missed its backup.
            let catalog = ops::hooks::open_catalog(config);
            for p in &planned {
                ops::hooks::backup_failed(config, catalog.as_ref(), &p.name, &e);
            }
            if let Some(c) = &catalog {
                ops::after_command(config, c);
            }
            return Err(e);
        }
    };
    let mut catalog = Catalog::open(&config.catalog)?;
    catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
    catalog.reap_interrupted(&crate::repo::hostname(), &crate::clock::now_rfc3339())?;
    for (name, why) in &repo.unavailable {
        on(Event::Unavailable(name, why))?;
    }
    ops::hooks::targets_unreachable(config, &catalog, &repo.unavailable);
    let (several, total) = (planned.len() > 1, planned.len());
    let mut failures = 0;
    let mut code = ExitStatus::Success;
    let mut first_error = None;
    for Planned {
        name,
        mut source,
        tags: source_tags,
    } in planned
    {
        let mut all_tags = source_tags;
        all_tags.extend(tags.iter().cloned());
        let opts = BackupOptions {
            source: name.clone(),
            tags: all_tags,
            note: note.map(str::to_string),
            catalog_path: config.catalog.clone(),
            compression_level: config.compression_level,
            pack_size: config.pack_size,
        };
        ops::hooks::backup_started(config, &name);
        match backup::run(&repo, &mut catalog, source.as_mut(), &opts, &*job.progress) {
            Ok(outcome) => {
                report_success(config, &catalog, &outcome);
                on(Event::Done(&outcome))?;
                if !outcome.failed_targets.is_empty() {
                    code = code.max(ExitStatus::Warnings);
                }
            }
            Err(e) => {
                ops::hooks::backup_failed(config, Some(&catalog), &name, &e);
                if several {
                    on(Event::Failed(&name, &e))?;
                }
                failures += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    check_lagging_targets(config, &catalog, &repo);
    // Staleness of every source, then metrics.
    ops::after_command(config, &catalog);
    match first_error {
        Some(e) if several => Err(e.context(format!(
            "{failures} of {total} backups failed (each is reported above)"
        ))),
        Some(e) => Err(e),
        None => Ok(code),
    }
}

fn report_success(config: &Config, catalog: &Catalog, outcome: &BackupOutcome) {
    let missed: Vec<(String, String)> = outcome
        .failed_targets
        .iter()
        .map(|f| (f.target.clone(), f.error.clone()))
        .collect();
    ops::hooks::backup_succeeded(
        config,
        catalog,
        &outcome.source,
        &outcome.id,
        &outcome.targets,
        &missed,
    );
}

/// A target that lacks backups another holds (it was down) is reported; the
/// operator (or the alert wired to `report_target_behind`) runs `vaultctl sync`.
/// Warns about, and raises the replication alert for, targets that lack
/// backups another target holds (after an outage); resolves it for the rest.
fn check_lagging_targets(config: &Config, catalog: &Catalog, repo: &Repository) {
    use crate::ops::alerts::{kind, AlertKey};
    use crate::severity::Severity;
    if repo.stores.len() < 2 {
        return;
    }
    let policies = config
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.retention.clone()))
        .collect();
    match crate::repo::sync::lagging_targets(&repo.stores, &repo.dedup, &policies) {
        Ok(lags) => {
            for store in &repo.stores {
                let key = AlertKey::new(kind::REPLICATION_BEHIND, "", &store.name);
                match lags.iter().find(|l| l.target == store.name) {
                    Some(lag) => {
                        crate::repo::sync::report_target_behind(lag);
                        let message = format!(
                            "target '{}' lacks {} backup(s) that target '{}' holds; run `vaultctl sync --to {}`",
                            lag.target, lag.missing_backups, lag.from, lag.target
                        );
                        ops::alert(config, catalog, key, Severity::Warning, &message);
                    }
                    None => ops::clear(config, catalog, &key, "backup"),
                }
            }
        }
        Err(e) => tracing::warn!(
            "could not check whether the targets are in step: {}",
            crate::error::paragraph(&e)
        ),
    }
}
