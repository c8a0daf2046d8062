//! `vaultctl catalog rebuild`: the backup list back from a repository alone.

use anyhow::Result;
use clap::Subcommand;

use crate::catalog::Catalog;
use crate::cli::{output, Ctx};
use crate::error::ExitStatus;
use crate::repo::format::SNAPSHOTS_DIR;
use crate::repo::{backup::details_json, manifest, Repository};

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Rebuild the catalog's backup list and dedup index from the repository
    Rebuild {
        /// Read manifests from this target (default: the first that answers)
        #[arg(long)]
        target: Option<String>,
    },
}

/// What a rebuild found.
#[derive(Debug, serde::Serialize)]
pub struct Rebuilt {
    pub target: String,
    pub backups: usize,
    /// Verification marks (drills, DR runs) imported from the repository.
    pub verified: usize,
    pub index_objects: usize,
    pub problems: Vec<String>,
    /// Whether manifests' bodies (notes, details) could be read.
    pub identity: bool,
}

pub fn run(ctx: &Ctx, cmd: CatalogCommand) -> Result<ExitStatus> {
    let CatalogCommand::Rebuild { target } = cmd;
    let config = ctx.config()?;
    let repo = Repository::open(&config, None)?;
    let mut catalog = Catalog::open(&config.catalog)?;
    catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
    let r = rebuild(&repo, &mut catalog, target.as_deref())?;
    crate::ops::after_command(&config, &catalog);
    if ctx.global.json {
        output::json(
            &serde_json::json!({ "target": r.target, "backups": r.backups, "verified": r.verified, "index_objects": r.index_objects, "problems": r.problems }),
        )?;
    } else {
        output::line(&format!(
            "catalog rebuilt from target '{}': {} backups ({} verification marks from drills and DR runs), {} index objects{}",
            r.target,
            r.backups,
            r.verified,
            r.index_objects,
            if !r.identity {
                " (no identity: notes and details are not readable)"
            } else {
                ""
            }
        ))?;
        for p in &r.problems {
            eprintln!("vaultctl: warning: {p}");
        }
    }
    Ok(if r.problems.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Rebuilds the catalog's backup list and dedup index from the repository:
/// manifests from `target` (default: the first target that lists them).
pub fn rebuild(repo: &Repository, catalog: &mut Catalog, target: Option<&str>) -> Result<Rebuilt> {
    let candidates: Vec<&crate::storage::Store> = match target {
        Some(name) => vec![repo.stores.iter().find(|s| s.name == name).ok_or_else(|| {
            crate::error::Failure::new(
                crate::error::ExitStatus::Usage,
                format!("target '{name}' is not available."),
            )
            .with_remedy("Check the name with the config and that the target is reachable.")
        })?],
        None => repo.stores.iter().collect(),
    };
    // The first target that can list its manifests.
    let mut listed = None;
    let mut last_err = None;
    for s in candidates {
        match s.list(SNAPSHOTS_DIR) {
            Ok(l) => {
                listed = Some((s, l));
                break;
            }
            Err(e) => {
                tracing::warn!(
                    "cannot list the backups on target '{}': {}; trying the next target",
                    s.name,
                    crate::error::paragraph(&e)
                );
                last_err = Some(e);
            }
        }
    }
    let Some((source_store, manifests)) = listed else {
        return Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no target is available")));
    };
    let identities = repo.identities().ok();
    catalog.clear_repository_cache()?;
    let synced = repo.sync_index(catalog)?;
    let indexes = synced.added;
    // Which targets hold each manifest.
    let mut presence: std::collections::HashMap<String, Vec<String>> = Default::default();
    for s in &repo.stores {
        let Ok(list) = s.list(SNAPSHOTS_DIR) else {
            continue;
        };
        for (name, _) in list {
            if let Some(id) = name.strip_prefix("snapshots/") {
                presence
                    .entry(id.to_string())
                    .or_default()
                    .push(s.name.clone());
            }
        }
    }
    let mut restored = 0;
    let mut problems = synced.skipped;
    for (name, _) in manifests {
        let Some(id) = name.strip_prefix("snapshots/") else {
            continue;
        };
        let Some(bytes) = source_store.get(&name)? else {
            continue;
        };
        let header = match manifest::decode_header(&bytes, &repo.dedup, id) {
            Ok(h) => h,
            Err(e) => {
                problems.push(format!("manifest {id}: {}", crate::error::paragraph(&e)));
                continue;
            }
        };
        let (note, details) = match &identities {
            Some(ids) => match manifest::decode_body(&bytes, ids, &header) {
                Ok(b) => (b.note.clone(), details_json(&b)),
                Err(e) if crate::error::exit_status(&e) != crate::error::ExitStatus::Key => {
                    // A body that is not this header's (or cannot be read
                    // at all) is no backup to list.
                    problems.push(format!(
                        "manifest {id} is not imported: {}",
                        crate::error::paragraph(&e)
                    ));
                    continue;
                }
                Err(e) => {
                    problems.push(format!(
                        "manifest {id} body: {}",
                        crate::error::paragraph(&e)
                    ));
                    (None, serde_json::Value::Null)
                }
            },
            None => (None, serde_json::Value::Null),
        };
        let mut targets = presence.get(id).cloned().unwrap_or_default();
        targets.sort();
        catalog.upsert_completed(&header, note.as_deref(), &details, &targets)?;
        restored += 1;
    }
    // Which backups drills and DR runs proved restorable, on any machine.
    let mut verified = 0;
    for store in &repo.stores {
        match crate::repo::verified::read_all(store, &repo.dedup) {
            Ok(marks) => {
                for m in marks.iter().filter(|m| presence.contains_key(&m.backup_id)) {
                    catalog.import_verification(&m.backup_id, &m.method, &m.verified_at)?;
                    verified += 1;
                }
            }
            Err(e) => tracing::warn!(
                "cannot read the verification marks on target '{}': {}",
                store.name,
                crate::error::paragraph(&e)
            ),
        }
    }
    Ok(Rebuilt {
        target: source_store.name.clone(),
        backups: restored,
        verified,
        index_objects: indexes,
        problems,
        identity: identities.is_some(),
    })
}
