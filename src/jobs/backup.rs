//! The backup job: the planned sources backed up one after the other into
//! every reachable target, each reported to operations (hooks, alerts), then
//! the targets' replication checked and the metrics refreshed.

use std::path::PathBuf;

use anyhow::Result;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::engine::postgres::tenants;
use crate::engine::{self, command::CommandSource, files::FilesSource};
use crate::error::{fail, ExitStatus};
use crate::ops;
use crate::repo::backup::{self, BackupOptions, BackupOutcome, Source};
use crate::repo::Repository;

/// One source to back up, under the name it is recorded as.
pub struct Planned {
    pub name: String,
    pub source: Box<dyn Source>,
    pub tags: Vec<String>,
}

/// What to back up, as the operator named it.
pub enum Selection<'a> {
    /// Ad-hoc files and directories, recorded under `name` (default:
    /// `files-BASENAME` of the first path).
    Files {
        paths: &'a [PathBuf],
        name: Option<&'a str>,
    },
    /// An ad-hoc command's stdout (a tar archive when `tar`).
    Command {
        name: &'a str,
        argv: &'a [String],
        tar: bool,
    },
    /// Configured sources by name, or all of them; `tenants` turns postgres
    /// sources into tenant exports.
    Configured {
        names: &'a [String],
        all: bool,
        tenants: Option<tenants::Selection>,
    },
}

/// The sources `what` names, ready for [`run`]; usage errors (exit 2) for
/// unknown names, bad names, or nothing to back up.
pub fn plan(config: &Config, what: Selection) -> Result<Vec<Planned>> {
    let adhoc = |name: String, source: Box<dyn Source>| -> Result<Vec<Planned>> {
        crate::config::validate_name(&name, "source")?;
        Ok(vec![Planned {
            name,
            source,
            tags: Vec::new(),
        }])
    };
    let (names, all, tenants) = match what {
        Selection::Files { paths, name } => {
            let name = name.map_or_else(|| default_name(paths), str::to_string);
            return adhoc(name, Box::new(FilesSource::new(paths.to_vec())));
        }
        Selection::Command { name, argv, tar } => {
            return adhoc(
                name.to_string(),
                Box::new(CommandSource::new(argv.to_vec(), tar)),
            );
        }
        Selection::Configured {
            names,
            all,
            tenants,
        } => (names, all, tenants),
    };
    if all && !names.is_empty() {
        return fail(
            ExitStatus::Usage,
            "--all and source names were both given.",
            "Give either --all or the source names.",
        );
    }
    let selected: Vec<&crate::config::Source> = if all {
        config.sources.iter().collect()
    } else {
        names
            .iter()
            .map(|n| config.source(n))
            .collect::<Result<_>>()?
    };
    if selected.is_empty() {
        return fail(
            ExitStatus::Usage,
            "nothing to back up: no source was named and none is configured.",
            "Name sources (`vaultctl backup SOURCE`), use --all, or run `vaultctl backup files PATH...` / `vaultctl backup command --name N -- CMD`.",
        );
    }
    selected
        .into_iter()
        .map(|s| {
            let source = match &tenants {
                Some(t) => engine::tenant_source(s, t.clone(), config.tenant_spill_dir())?,
                None => engine::from_config(s),
            };
            Ok(Planned {
                name: s.name.clone(),
                source,
                tags: s.tags.clone(),
            })
        })
        .collect()
}

/// `files-etc` for `/etc`; characters a source name cannot hold become `-`.
fn default_name(paths: &[PathBuf]) -> String {
    let base = paths
        .first()
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().to_string()))
        .unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    let clean = clean.trim_start_matches('.');
    if clean.is_empty() {
        "files".into()
    } else {
        format!("files-{clean}")
    }
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

/// The repository; when no target answers (or none holds it), every
/// selected source has missed its backup: each one's failure is recorded.
fn open_repository(config: &Config, planned: &[Planned]) -> Result<Repository> {
    ops::open_repository(config, None).inspect_err(|e| {
        let catalog = ops::hooks::open_catalog(config);
        for p in planned {
            ops::hooks::backup_failed(config, catalog.as_ref(), &p.name, e);
        }
        if let Some(c) = &catalog {
            ops::after_command(config, c);
        }
    })
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
    let repo = open_repository(config, &planned)?;
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
            compression_level: config.compression_level,
            pack_size: config.pack_size,
        };
        ops::hooks::backup_started(config, &name);
        match back_up_one(&repo, &mut catalog, source.as_mut(), &opts, &*job.progress) {
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
    crate::memtrace::mark("backup: hooks run");
    // Staleness of every source, then metrics.
    ops::after_command(config, &catalog);
    crate::memtrace::mark("backup: metrics written");
    match first_error {
        Some(e) if several => Err(e.context(format!(
            "{failures} of {total} backups failed (each is reported above)"
        ))),
        Some(e) => Err(e),
        None => Ok(code),
    }
}

/// One backup of `source`, recorded in the catalog: a `running` row first,
/// then completed with what was committed (and on which targets), or failed
/// with the error's paragraph (never a completed row for an uncommitted
/// backup).
pub fn back_up_one(
    repo: &Repository,
    catalog: &mut Catalog,
    source: &mut dyn Source,
    opts: &BackupOptions,
    progress: &dyn crate::progress::Progress,
) -> Result<BackupOutcome> {
    let start = backup::Start::now();
    catalog.insert_running(
        &start.id,
        &opts.source,
        source.kind(),
        &start.host,
        &start.started_at,
        &opts.tags,
        opts.note.as_deref(),
    )?;
    let result = backup::run(repo, catalog, source, opts, &start, progress).and_then(|mut o| {
        let tenants = source.tenants();
        catalog.complete(
            &o.id,
            &o.finished_at,
            o.duration_ms,
            o.bytes,
            o.stored_bytes,
            &o.details,
            &o.targets,
            &mut |w| o.contents.write(tenants, w),
        )?;
        crate::memtrace::mark("backup: recorded in the catalog");
        backup::phase(&start, "recorded in the catalog");
        Ok(o)
    });
    if let Err(e) = &result {
        let ms = start.started.elapsed().as_millis() as u64;
        let _ = catalog.fail(
            &start.id,
            &crate::clock::now_rfc3339(),
            ms,
            0,
            &crate::error::paragraph(e),
        );
    }
    result
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::config::from_toml(
            r#"
            [keys]
            recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
            [[target]]
            name = "local"
            url = "file:///var/backups/vaultctl"
            [[source]]
            name = "etc"
            kind = "files"
            paths = ["/etc"]
            tags = ["config"]
            [[source]]
            name = "home"
            kind = "files"
            paths = ["/home"]
            "#,
        )
    }

    fn names(p: &[Planned]) -> Vec<(&str, &[String])> {
        p.iter()
            .map(|p| (p.name.as_str(), p.tags.as_slice()))
            .collect()
    }

    fn usage_error(r: Result<Vec<Planned>>) -> String {
        let e = r.err().expect("a usage error");
        assert_eq!(crate::error::exit_status(&e), ExitStatus::Usage, "{e:#}");
        crate::error::paragraph(&e)
    }

    #[test]
    fn configured_sources_by_name_or_all_keep_their_tags() {
        let c = config();
        let one = ["home".to_string()];
        let p = plan(
            &c,
            Selection::Configured {
                names: &one,
                all: false,
                tenants: None,
            },
        )
        .unwrap();
        assert_eq!(names(&p), [("home", &[][..])]);
        let p = plan(
            &c,
            Selection::Configured {
                names: &[],
                all: true,
                tenants: None,
            },
        )
        .unwrap();
        assert_eq!(
            names(&p),
            [("etc", &["config".to_string()][..]), ("home", &[][..])]
        );
    }

    #[test]
    fn unknown_names_and_contradictions_are_usage_errors() {
        let c = config();
        let bad = ["db".to_string()];
        let msg = usage_error(plan(
            &c,
            Selection::Configured {
                names: &bad,
                all: false,
                tenants: None,
            },
        ));
        assert!(
            msg.contains("no source named 'db'") && msg.contains("etc, home"),
            "{msg}"
        );
        let one = ["etc".to_string()];
        let msg = usage_error(plan(
            &c,
            Selection::Configured {
                names: &one,
                all: true,
                tenants: None,
            },
        ));
        assert!(msg.contains("--all and source names"), "{msg}");
        let empty = crate::config::embedded_default();
        let msg = usage_error(plan(
            &empty,
            Selection::Configured {
                names: &[],
                all: true,
                tenants: None,
            },
        ));
        assert!(msg.contains("nothing to back up"), "{msg}");
        // Files sources cannot be tenant-exported.
        let e = plan(
            &c,
            Selection::Configured {
                names: &one,
                all: false,
                tenants: Some(tenants::Selection::All),
            },
        );
        assert!(e.is_err());
    }

    #[test]
    fn adhoc_sources_are_named_and_checked() {
        let c = config();
        let p = plan(
            &c,
            Selection::Files {
                paths: &[PathBuf::from("/")],
                name: None,
            },
        )
        .unwrap();
        assert_eq!(p[0].name, "files");
        let p = plan(
            &c,
            Selection::Files {
                paths: &[PathBuf::from("/etc/.")],
                name: None,
            },
        )
        .unwrap();
        assert_eq!(p[0].name, "files-etc");
        let argv = ["true".to_string()];
        let msg = usage_error(plan(
            &c,
            Selection::Command {
                name: "no/slash",
                argv: &argv,
                tar: false,
            },
        ));
        assert!(msg.contains("no/slash"), "{msg}");
    }
}
