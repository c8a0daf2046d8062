//! The catalog rebuild job: the backup list, the dedup index and the
//! verification marks back from a repository alone (a new machine, a lost
//! or damaged catalog).

use std::collections::HashMap;

use anyhow::Result;

use crate::catalog::{BodyContents, Catalog, Completed};
use crate::error::{paragraph, ExitStatus, Failure};
use crate::repo::format::SNAPSHOTS_DIR;
use crate::repo::manifest::{self, Header};
use crate::repo::Repository;
use crate::storage::Store;

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

/// Rebuilds the catalog's backup list and dedup index from the repository:
/// manifests from `target` (default: the first target that lists them).
pub fn rebuild(repo: &Repository, catalog: &mut Catalog, target: Option<&str>) -> Result<Rebuilt> {
    crate::memtrace::mark("rebuild: start");
    let (source_store, manifests) = first_listing(repo, target)?;
    let identities = repo.identities().ok();
    catalog.clear_repository_cache()?;
    let synced = repo.sync_index(catalog)?;
    crate::memtrace::mark("rebuild: index read");
    let mut problems = synced.skipped;
    let presence = presence(repo, source_store, &manifests, &mut problems);
    crate::memtrace::mark("rebuild: targets listed");
    let mut restored = 0;
    // Backups go to the catalog MANIFEST_BATCH at a time, one transaction each.
    let mut batch: Vec<Imported> = Vec::new();
    let mut batch_artifacts = 0;
    for (name, _) in manifests {
        let Some(id) = name.strip_prefix("snapshots/") else {
            continue;
        };
        let Some(bytes) = source_store.get(&name)? else {
            continue;
        };
        let header = match manifest::decode_header(&bytes, &repo.dedup, id) {
            // The blob list is the dedup index's business, not the list's.
            Ok(h) => Header {
                blobs: Vec::new(),
                ..h
            },
            Err(e) => {
                problems.push(format!("manifest {id}: {}", paragraph(&e)));
                continue;
            }
        };
        let body = match &identities {
            Some(ids) => match manifest::decode_body(&bytes, ids, &header) {
                Ok(b) => Some(BodyContents::from(b)),
                Err(e) if crate::error::exit_status(&e) != ExitStatus::Key => {
                    // A body that is not this header's (or cannot be read
                    // at all) is no backup to list.
                    problems.push(format!("manifest {id} is not imported: {}", paragraph(&e)));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("manifest {id} body: {}", paragraph(&e)));
                    None
                }
            },
            None => None,
        };
        let mut targets = presence.get(id).cloned().unwrap_or_default();
        targets.sort();
        batch_artifacts += body.as_ref().map_or(0, |b| b.artifacts.len());
        batch.push(Imported {
            header,
            body,
            targets,
        });
        if batch.len() == MANIFEST_BATCH || batch_artifacts >= BATCH_ARTIFACTS {
            restored += import(catalog, &mut batch)?;
            batch_artifacts = 0;
        }
    }
    restored += import(catalog, &mut batch)?;
    crate::memtrace::mark("rebuild: manifests read");
    Ok(Rebuilt {
        target: source_store.name.clone(),
        backups: restored,
        verified: import_marks(repo, catalog, &presence)?,
        index_objects: synced.added,
        problems,
        identity: identities.is_some(),
    })
}

/// Backups recorded in one catalog transaction.
const MANIFEST_BATCH: usize = 256;
/// Or fewer, once their bodies hold this many artifacts (tenant backups
/// of thousands of tenants are not held 256 at a time).
const BATCH_ARTIFACTS: usize = 10_000;

/// A backup read from its manifest (what the catalog keeps of its body,
/// when the identity opened it), to record.
struct Imported {
    header: Header,
    body: Option<BodyContents>,
    targets: Vec<String>,
}

/// Records a batch of backups in one transaction and empties it.
fn import(catalog: &mut Catalog, batch: &mut Vec<Imported>) -> Result<usize> {
    let rows: Vec<Completed> = batch
        .iter()
        .map(|b| Completed {
            header: &b.header,
            body: b.body.as_ref(),
            targets: &b.targets,
        })
        .collect();
    catalog.upsert_completed_many(&rows)?;
    let n = batch.len();
    batch.clear();
    Ok(n)
}

/// The first target (of `target`, or all) that can list its manifests.
fn first_listing<'a>(
    repo: &'a Repository,
    target: Option<&str>,
) -> Result<(&'a Store, Vec<(String, u64)>)> {
    let candidates: Vec<&Store> = match target {
        Some(name) => vec![repo.stores.iter().find(|s| s.name == name).ok_or_else(|| {
            Failure::new(
                ExitStatus::Usage,
                format!("target '{name}' is not available."),
            )
            .with_remedy("Check the name with the config and that the target is reachable.")
        })?],
        None => repo.stores.iter().collect(),
    };
    let mut last_err = None;
    for s in candidates {
        match s.list(SNAPSHOTS_DIR) {
            Ok(l) => return Ok((s, l)),
            Err(e) => {
                tracing::warn!(
                    "cannot list the backups on target '{}': {}; trying the next target",
                    s.name,
                    paragraph(&e)
                );
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no target is available")))
}

/// Which targets hold each manifest, by backup id (`listed`: the listing
/// of `first`, already read). A target that cannot be listed is a problem:
/// its backups would look missing on it.
fn presence(
    repo: &Repository,
    first: &Store,
    listed: &[(String, u64)],
    problems: &mut Vec<String>,
) -> HashMap<String, Vec<String>> {
    let mut presence: HashMap<String, Vec<String>> = HashMap::new();
    for s in &repo.stores {
        let list = if s.name == first.name {
            listed.to_vec()
        } else {
            match s.list(SNAPSHOTS_DIR) {
                Ok(l) => l,
                Err(e) => {
                    problems.push(format!(
                        "{}: the catalog does not know which backups target '{}' holds; run `vaultctl catalog rebuild` again when it answers",
                        paragraph(&e),
                        s.name
                    ));
                    continue;
                }
            }
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
    presence
}

/// Which backups drills and DR runs proved restorable, on any machine.
fn import_marks(
    repo: &Repository,
    catalog: &mut Catalog,
    presence: &HashMap<String, Vec<String>>,
) -> Result<usize> {
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
                paragraph(&e)
            ),
        }
    }
    Ok(verified)
}
