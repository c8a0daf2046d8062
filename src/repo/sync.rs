//! Replication catch-up: copy what one target has and another lacks.
//!
//! Packs and manifests are copied as they are (ciphertext; no identity
//! needed), packs first, then index objects, then manifests, so the
//! destination never holds a manifest whose data it lacks. The destination's
//! retention policy decides which missing backups are worth copying (a
//! target that keeps 30 days does not get last year's backups back from one
//! that keeps a year). Index objects are copied verbatim when the destination
//! holds every pack they list; otherwise a new index object covering just
//! the copied packs is written, because an index object may only list packs
//! present on its target (catalogs dedup against what indexes list).

use std::collections::{BTreeSet, HashMap, HashSet};

use anyhow::Result;
use bytes::Bytes;
use serde::Serialize;

use super::format::{
    self, content_name, index_path, manifest_path, pack_path, INDEX_DIR, PACKS_DIR, SNAPSHOTS_DIR,
};
use super::index::{self, IndexedPack};
use super::keys::DedupKey;
use super::lock::{self, CommitError, Kind};
use super::manifest::{self, Header};
use super::retention::{self, Item, Policy};
use crate::error::{ExitStatus, Failure};
use crate::storage::{runtime, Store};

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub from: String,
    pub to: String,
    pub dry_run: bool,
    /// Backups copied (or, in a dry run, to copy).
    pub manifests_copied: Vec<String>,
    /// Backups the source has that the destination's retention would not keep.
    pub skipped_by_retention: usize,
    pub packs_copied: usize,
    pub bytes_copied: u64,
    pub indexes_copied: usize,
    pub indexes_written: usize,
    pub problems: Vec<String>,
}

/// Backups `from` holds that `to` lacks and would keep under its policy.
pub struct ManifestPlan {
    /// Their headers, without blob lists.
    pub candidates: Vec<Header>,
    pub skipped_by_retention: usize,
    /// Headers of every manifest on `to`.
    pub to_headers: Vec<Header>,
    pub problems: Vec<String>,
}

fn manifest_ids(store: &Store) -> Result<BTreeSet<String>> {
    Ok(store
        .list(SNAPSHOTS_DIR)?
        .into_iter()
        .filter_map(|(n, _)| n.strip_prefix("snapshots/").map(String::from))
        .collect())
}

/// Manifests read per round of parallel requests.
const MANIFEST_BATCH: usize = 64;

/// The headers of the manifests `ids` on `store`, a batch at a time and
/// without their blob lists (sync needs the packs only), so memory grows
/// with the manifests, not with the blobs.
fn read_headers(
    store: &Store,
    key: &DedupKey,
    ids: &[String],
    problems: &mut Vec<String>,
) -> Result<Vec<Header>> {
    let mut out = Vec::new();
    for batch in ids.chunks(MANIFEST_BATCH) {
        let paths: Vec<String> = batch.iter().map(|id| manifest_path(id)).collect();
        for (id, bytes) in batch.iter().zip(store.get_many(&paths)?) {
            let Some(bytes) = bytes else { continue };
            match manifest::decode_header(&bytes, key, id) {
                Ok(mut h) => {
                    h.blobs = Vec::new();
                    out.push(h)
                }
                Err(e) => problems.push(format!(
                    "manifest {id} on target '{}' cannot be read: {}",
                    store.name,
                    crate::error::paragraph(&e)
                )),
            }
        }
    }
    Ok(out)
}

/// Which backups `to` is missing (step one of a sync; also the lag check).
pub fn plan_manifests(
    from: &Store,
    to: &Store,
    key: &DedupKey,
    to_policy: Option<&Policy>,
) -> Result<ManifestPlan> {
    let mut problems = Vec::new();
    let from_ids = manifest_ids(from)?;
    let to_ids = manifest_ids(to)?;
    let missing: Vec<String> = from_ids.difference(&to_ids).cloned().collect();
    let to_list: Vec<String> = to_ids.into_iter().collect();
    let to_headers: Vec<Header> = read_headers(to, key, &to_list, &mut problems)?;
    if missing.is_empty() {
        return Ok(ManifestPlan {
            candidates: Vec::new(),
            skipped_by_retention: 0,
            to_headers,
            problems,
        });
    }
    let missing = read_headers(from, key, &missing, &mut problems)?;
    let items: Vec<Item> = to_headers
        .iter()
        .map(Item::of)
        .chain(missing.iter().map(Item::of))
        .collect();
    let keep: HashSet<String> = retention::apply(to_policy, &items)
        .into_iter()
        .filter(|d| d.keep)
        .map(|d| d.id)
        .collect();
    let total = missing.len();
    let candidates: Vec<Header> = missing
        .into_iter()
        .filter(|h| keep.contains(&h.id))
        .collect();
    Ok(ManifestPlan {
        skipped_by_retention: total - candidates.len(),
        candidates,
        to_headers,
        problems,
    })
}

fn pack_names(store: &Store) -> Result<HashMap<String, u64>> {
    Ok(store
        .list(PACKS_DIR)?
        .into_iter()
        .filter_map(|(n, size)| {
            n.rsplit('/')
                .next()
                .filter(|s| format::is_hex_name(s))
                .map(|s| (s.to_string(), size))
        })
        .collect())
}

fn index_names(store: &Store) -> Result<Vec<String>> {
    Ok(store
        .list(INDEX_DIR)?
        .into_iter()
        .filter_map(|(n, _)| {
            n.strip_prefix("index/")
                .filter(|s| format::is_hex_name(s))
                .map(String::from)
        })
        .collect())
}

/// Reads one index object: its bytes and packs, or `None` (with a
/// problem noted when `problems` is given) when it is damaged.
fn read_index(
    store: &Store,
    key: &DedupKey,
    name: &str,
    problems: Option<&mut Vec<String>>,
) -> Result<Option<(Bytes, Vec<IndexedPack>)>> {
    let Some(bytes) = store.get(&index_path(name))? else {
        return Ok(None);
    };
    let why = if content_name(&bytes) != name {
        format!(
            "index object {name} on target '{}' is damaged; not copied",
            store.name
        )
    } else {
        match index::decode(&bytes, key) {
            Ok(p) => return Ok(Some((bytes, p))),
            Err(e) => format!(
                "index object {name} on target '{}' cannot be read: {}",
                store.name,
                crate::error::paragraph(&e)
            ),
        }
    };
    if let Some(problems) = problems {
        problems.push(why);
    }
    Ok(None)
}

/// Copies what `from` has and `to` lacks. Takes shared locks on both, so a
/// prune on either cannot delete what is being copied.
pub fn sync_pair(
    from: &Store,
    to: &Store,
    key: &DedupKey,
    to_policy: Option<&Policy>,
    dry_run: bool,
    timing: lock::LockTiming,
) -> Result<SyncReport> {
    let lock = if dry_run {
        None
    } else {
        Some(lock::acquire(
            &[from.clone(), to.clone()],
            key,
            Kind::Shared,
            "sync",
            timing.writer_wait(),
            timing,
        )?)
    };
    if let Some(l) = &lock {
        if let Some((t, why)) = l.unlocked.first() {
            anyhow::bail!("cannot lock target '{t}' for the sync: {why}");
        }
    }
    let plan = plan_manifests(from, to, key, to_policy)?;
    let mut report = SyncReport {
        from: from.name.clone(),
        to: to.name.clone(),
        dry_run,
        skipped_by_retention: plan.skipped_by_retention,
        problems: plan.problems,
        ..Default::default()
    };
    let from_packs = pack_names(from)?;
    let mut to_packs = pack_names(to)?;

    // Packs the destination needs: those of the backups to copy, and any its
    // own backups need but lack (a repair).
    let mut candidates = Vec::new();
    let mut needed: BTreeSet<String> = BTreeSet::new();
    for h in plan.candidates {
        let lacking: Vec<&String> = h
            .packs
            .iter()
            .filter(|p| !to_packs.contains_key(*p) && !from_packs.contains_key(*p))
            .collect();
        if !lacking.is_empty() {
            report.problems.push(format!(
                "backup {} is not copied: target '{}' lacks {} of its packs too",
                h.id,
                from.name,
                lacking.len()
            ));
            continue;
        }
        needed.extend(
            h.packs
                .iter()
                .filter(|p| !to_packs.contains_key(*p))
                .cloned(),
        );
        candidates.push(h);
    }
    for h in &plan.to_headers {
        for p in &h.packs {
            if !to_packs.contains_key(p) {
                if from_packs.contains_key(p) {
                    needed.insert(p.clone());
                } else {
                    report.problems.push(format!(
                        "pack {p} of backup {} is missing on both '{}' and '{}'",
                        h.id, from.name, to.name
                    ));
                }
            }
        }
    }
    if dry_run {
        report.packs_copied = needed.len();
        report.bytes_copied = needed.iter().map(|p| from_packs[p]).sum();
        report.manifests_copied = candidates.iter().map(|h| h.id.clone()).collect();
        return Ok(report);
    }

    // 1. Packs, checked against their names on the way.
    let needed: Vec<String> = needed.into_iter().collect();
    let mut failed_packs: HashSet<String> = HashSet::new();
    for chunk in needed.chunks(4) {
        let results = runtime().block_on(futures::future::join_all(chunk.iter().map(
            |p| async move {
                let path = pack_path(p);
                let bytes = from.get_async(&path).await?.ok_or_else(|| {
                    anyhow::anyhow!("pack {p} vanished from target '{}'", from.name)
                })?;
                if content_name(&bytes) != *p {
                    anyhow::bail!(
                        "pack {p} on target '{}' is damaged (its bytes do not match its name)",
                        from.name
                    );
                }
                let n = bytes.len() as u64;
                to.put_async(&path, bytes).await?;
                Ok(n)
            },
        )));
        for (p, r) in chunk.iter().zip(results) {
            match r {
                Ok(n) => {
                    report.packs_copied += 1;
                    report.bytes_copied += n;
                    to_packs.insert(p.clone(), n);
                }
                Err(e) => {
                    if crate::error::exit_status(&e) == crate::error::ExitStatus::Temporary {
                        return Err(e);
                    }
                    report.problems.push(crate::error::paragraph(&e));
                    failed_packs.insert(p.clone());
                }
            }
        }
    }

    // Index objects and manifests are committed like a backup's: only while
    // our lock on the destination holds, before and after the write
    // (RepoLock::commit_put), so none lists packs a prune collected.
    let commit = |path: &str, bytes: Bytes| -> Result<()> {
        let Some(l) = &lock else {
            return to.put(path, bytes);
        };
        match l.commit_put(&[to], path, bytes).pop() {
            Some(Err(CommitError::Write(e))) => Err(e),
            Some(Err(CommitError::Lock(why))) => Err(Failure::new(
                ExitStatus::Locked,
                format!("sync to target '{}' stopped: {why}.", to.name),
            )
            .with_remedy("What was copied so far is consistent. Run the sync again.")
            .into()),
            _ => Ok(()),
        }
    };

    // 2. Index objects: verbatim where the destination has all their packs,
    // else one new object for the packs still not indexed there.
    // One index object at a time: the destination's (names and packs),
    // then the source's, copied at once where they qualify.
    // (A damaged one there is overwritten by a good copy of that name.)
    let mut to_index_names: HashSet<String> = HashSet::new();
    let mut covered: HashSet<String> = HashSet::new();
    for name in index_names(to)? {
        if let Some((_, packs)) = read_index(to, key, &name, None)? {
            covered.extend(packs.into_iter().map(|p| p.name));
            to_index_names.insert(name);
        }
    }
    let wanted: BTreeSet<&String> = candidates
        .iter()
        .flat_map(|h| h.packs.iter())
        .chain(plan.to_headers.iter().flat_map(|h| h.packs.iter()))
        .collect();
    // Source index objects not copied that list a pack still to index.
    let mut revisit: Vec<String> = Vec::new();
    for name in index_names(from)? {
        let Some((bytes, packs)) = read_index(from, key, &name, Some(&mut report.problems))? else {
            continue;
        };
        if to_index_names.contains(&name) {
            continue;
        }
        if !packs.iter().all(|p| to_packs.contains_key(&p.name))
            || packs.iter().all(|p| covered.contains(&p.name))
        {
            if packs
                .iter()
                .any(|p| wanted.contains(&p.name) && to_packs.contains_key(&p.name))
            {
                revisit.push(name);
            }
            continue;
        }
        commit(&index_path(&name), bytes)?;
        report.indexes_copied += 1;
        covered.extend(packs.into_iter().map(|p| p.name));
    }
    let mut fresh: Vec<IndexedPack> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for name in &revisit {
        let Some((_, packs)) = read_index(from, key, name, None)? else {
            continue;
        };
        for p in packs {
            if wanted.contains(&p.name)
                && to_packs.contains_key(&p.name)
                && !covered.contains(&p.name)
                && seen.insert(p.name.clone())
            {
                fresh.push(p);
            }
        }
    }
    if !fresh.is_empty() {
        let encoded = Bytes::from(index::encode(&fresh, key)?);
        commit(&index_path(&content_name(&encoded)), encoded)?;
        report.indexes_written += 1;
        covered.extend(fresh.into_iter().map(|p| p.name));
    }

    // 3. Manifests, last, each committed only while our lock holds.
    for h in candidates {
        if let Some(p) = h.packs.iter().find(|p| {
            failed_packs.contains(*p) || !to_packs.contains_key(*p) || !covered.contains(*p)
        }) {
            report.problems.push(format!(
                "backup {} is not copied: pack {p} could not be copied or indexed",
                h.id
            ));
            continue;
        }
        // Read again (only the headers were kept) and checked again: it
        // must still be the manifest the plan read.
        let path = manifest_path(&h.id);
        let Some(bytes) = from.get(&path)? else {
            report.problems.push(format!(
                "backup {} is not copied: its manifest vanished from target '{}'",
                h.id, from.name
            ));
            continue;
        };
        if let Err(e) = manifest::decode_header(&bytes, key, &h.id) {
            report.problems.push(format!(
                "backup {} is not copied: manifest {} on target '{}' cannot be read: {}",
                h.id,
                h.id,
                from.name,
                crate::error::paragraph(&e)
            ));
            continue;
        }
        commit(&path, bytes)?;
        report.manifests_copied.push(h.id.clone());
    }
    if let Some(l) = lock {
        l.release();
    }
    Ok(report)
}

/// A target that lacks backups another target holds.
#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    pub target: String,
    pub from: String,
    pub missing_backups: usize,
}

/// Checks every pair of targets for backups one lacks (and would keep).
pub fn lagging_targets(
    stores: &[Store],
    key: &DedupKey,
    policies: &HashMap<String, Option<Policy>>,
) -> Result<Vec<Lag>> {
    let mut ids = Vec::new();
    for s in stores {
        ids.push(manifest_ids(s)?);
    }
    let mut out = Vec::new();
    for (i, to) in stores.iter().enumerate() {
        for (j, from) in stores.iter().enumerate() {
            if i == j || ids[j].difference(&ids[i]).next().is_none() {
                continue;
            }
            let policy = policies.get(&to.name).cloned().flatten();
            let plan = plan_manifests(from, to, key, policy.as_ref())?;
            if !plan.candidates.is_empty() {
                out.push(Lag {
                    target: to.name.clone(),
                    from: from.name.clone(),
                    missing_backups: plan.candidates.len(),
                });
            }
        }
    }
    Ok(out)
}

/// INTEGRATION POINT (alerts): a target is behind another. For now this logs
/// a warning; the integrator wires it to the alerts module's "replication"
/// alert (raise here, resolve when a later check finds no lag).
pub fn report_target_behind(lag: &Lag) {
    tracing::warn!(
        "target '{}' is behind: it lacks {} backup(s) that target '{}' holds; run `vaultctl sync --to {}` to catch it up",
        lag.target,
        lag.missing_backups,
        lag.from,
        lag.target
    );
}
