//! Prune: apply a target's retention policy, then collect garbage.
//!
//! Works with the dedup key alone (a write-only host): manifest headers name
//! every pack a backup needs, index objects are sealed with the metadata key.
//!
//! 1. **Forget** (no lock): read every manifest header, decide keep/remove
//!    per source ([`super::retention`]), delete the removed manifests.
//!    Removing a manifest never endangers another backup.
//! 2. **Collect** (exclusive lock, see [`super::lock`]): with no backup or
//!    sync running, list the manifests again; every pack no manifest names is
//!    garbage. Write rewritten index objects without the garbage packs, then
//!    delete the old index objects, then the packs. A crash at any point
//!    leaves a repository where every manifest's blobs are indexed in packs
//!    that exist; the next prune finishes the job.
//!
//! Other hosts' catalogs notice that index objects they read have vanished
//! and re-read the target's indexes before their next backup
//! ([`super::Repository::sync_index`]), so they never dedup against a
//! deleted pack.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use serde::Serialize;

use super::extsort::{self, ExternalSorter, Sorted};
use super::format::{
    self, content_name, index_path, manifest_path, pack_path, INDEX_DIR, PACKS_DIR, SNAPSHOTS_DIR,
};
use super::ids::{self, BitSet, IdSet, IdSetBuilder};
use super::index::{self, IndexedPack};
use super::keys::DedupKey;
use super::lock::{self, Kind};
use super::manifest::{self, Header};
use super::pack::BlobId;
use super::retention::{self, Item, Policy};
use super::wal;
use crate::error::{ExitStatus, Failure};
use crate::storage::Store;

/// One backup in the prune table.
#[derive(Debug, Clone, Serialize)]
pub struct BackupDecision {
    pub id: String,
    pub source: String,
    pub host: String,
    pub started_at: String,
    pub tags: Vec<String>,
    pub stored_bytes: u64,
    /// `keep` or `remove`.
    pub action: String,
    /// The rules that kept it.
    pub reasons: Vec<String>,
}

/// WAL retention for one postgres-physical source: archived WAL older than
/// the start of every kept base backup is removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WalPrune {
    pub source: String,
    /// WAL files archived on the target before pruning.
    pub files: usize,
    pub removed: usize,
    pub bytes_removed: u64,
    /// WAL files whose delete the target refused (kept; the next prune retries).
    pub deferred: usize,
    /// The first segment kept for the oldest kept base backup.
    pub keep_from: Option<String>,
    /// Why nothing was removed, when that is not just "nothing is old enough".
    pub note: Option<String>,
    /// Why the WAL of this source was not pruned at all (for instance its
    /// segment size cannot be read): prune exits with 3 (warnings).
    pub error: Option<String>,
}

/// What garbage collection found (and, unless a dry run, did).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub packs_total: usize,
    pub packs_referenced: usize,
    pub packs_deleted: usize,
    pub bytes_deleted: u64,
    pub bytes_remaining: u64,
    pub indexes_rewritten: usize,
    pub indexes_deleted: usize,
    /// Garbage packs kept because the target refused a delete (theirs, or
    /// an old index object's that still names them); the next prune retries.
    pub packs_deferred: usize,
    /// Old index objects whose delete the target refused.
    pub indexes_deferred: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub target: String,
    pub dry_run: bool,
    /// The policy applied (`None`: no `[target.retention]`, everything kept).
    pub policy: Option<String>,
    pub backups: Vec<BackupDecision>,
    /// Backups whose manifests were (or, in a dry run, would be) removed.
    pub removed: Vec<String>,
    /// Backups retention removes whose manifest delete the target refused
    /// (Object Lock retention, append-only credentials): kept, with
    /// everything they need; the next prune retries.
    pub deferred: Vec<String>,
    pub gc: GcReport,
    /// WAL retention per postgres-physical source.
    pub wal: Vec<WalPrune>,
    /// Things prune noticed but left alone (run `verify`).
    pub problems: Vec<String>,
}

pub struct PruneOptions {
    pub dry_run: bool,
    /// How long to wait for running backups before giving up (exit 11).
    pub lock_wait: Duration,
    /// The stale period of our exclusive lock (`lock_stale_after`).
    pub lock_timing: lock::LockTiming,
}

/// The manifests of a target, as [`HeaderCache::load`] found them.
pub struct Loaded {
    /// Intact manifests' headers (sorted by source, newest first).
    pub headers: Vec<Header>,
    /// Why manifests could not be read: their packs are unknown, so garbage
    /// collection must not run.
    pub unreadable: Vec<String>,
    /// Manifest objects that are truncated (empty, cut short, or not a
    /// manifest): they can never be read, so they protect nothing and
    /// block nothing.
    pub truncated: Vec<String>,
    /// Authentic headers whose manifest is refused (another name, another
    /// body): no backup for retention, but garbage collection keeps the
    /// packs they name.
    pub unbound: Vec<Unbound>,
}

/// An authentic header whose manifest is refused.
pub struct Unbound {
    /// Without its blob list (see [`HeaderCache`]).
    pub header: Header,
    /// The id in the object's name (`snapshots/<object>`).
    pub object: String,
    /// Why it is refused.
    pub why: String,
}

/// Manifests read per round of parallel requests.
const MANIFEST_BATCH: usize = 64;

/// A header without its blob list: what listing and retention need.
fn without_blobs(mut h: Header) -> Header {
    h.blobs = Vec::new();
    h
}

/// Manifest headers by backup id, without their blob lists (manifests are
/// immutable, so cached reads stay valid).
#[derive(Default)]
pub struct HeaderCache {
    headers: HashMap<String, Header>,
}

impl HeaderCache {
    /// Reads the headers of every manifest on `store`.
    pub fn load(&mut self, store: &Store, key: &DedupKey) -> Result<Loaded> {
        let ids: Vec<String> = store
            .list(SNAPSHOTS_DIR)?
            .into_iter()
            .filter_map(|(n, _)| n.strip_prefix("snapshots/").map(String::from))
            .collect();
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !self.headers.contains_key(*id))
            .cloned()
            .collect();
        let mut unreadable = Vec::new();
        let mut truncated = Vec::new();
        let mut unbound = Vec::new();
        // A batch of manifests at a time; the cache keeps headers without
        // their blob lists (garbage collection streams those, see
        // [`live_blobs`]), so memory grows with the manifests, not the blobs.
        for batch in missing.chunks(MANIFEST_BATCH) {
            let paths: Vec<String> = batch.iter().map(|id| manifest_path(id)).collect();
            for (id, bytes) in batch.iter().zip(store.get_many(&paths)?) {
                let Some(bytes) = bytes else { continue };
                match manifest::decode_header(&bytes, key, id) {
                    Ok(h) => {
                        self.headers.insert(id.clone(), without_blobs(h));
                    }
                    Err(e) if manifest::is_truncated(&e) => truncated.push(format!(
                        "manifest {id} can never be restored ({}); garbage collection ignores it, so it protects no pack. Delete {} on target '{}' (`vaultctl verify` reports it until then)",
                        crate::error::paragraph(&e),
                        manifest_path(id),
                        store.name
                    )),
                    Err(e) => match manifest::decode_header_unbound(&bytes, key) {
                        // An authentic header under the wrong name or with
                        // another body: not a backup, but its packs are known.
                        Ok(h) => unbound.push(Unbound {
                            header: without_blobs(h),
                            object: id.clone(),
                            why: format!(
                                "manifest {id} is refused ({}); it is kept, and so are the packs its header names",
                                crate::error::paragraph(&e)
                            ),
                        }),
                        Err(_) => unreadable.push(format!(
                            "manifest {id} cannot be read: {}",
                            crate::error::paragraph(&e)
                        )),
                    },
                }
            }
        }
        let mut out: Vec<Header> = ids
            .iter()
            .filter_map(|id| self.headers.get(id).cloned())
            .collect();
        out.sort_by(|a, b| {
            a.source
                .cmp(&b.source)
                .then(b.started_at.cmp(&a.started_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(Loaded {
            headers: out,
            unreadable,
            truncated,
            unbound,
        })
    }

    pub fn forget(&mut self, id: &str) {
        self.headers.remove(id);
    }
}

/// Prunes one target: retention, then garbage collection.
pub fn prune_target(
    store: &Store,
    key: &DedupKey,
    policy: Option<&Policy>,
    opts: &PruneOptions,
) -> Result<TargetReport> {
    let mut problems = Vec::new();
    let mut headers = HeaderCache::default();
    let loaded = headers.load(store, key)?;
    crate::memtrace::mark("prune: headers read");
    let all = loaded.headers;
    for u in &loaded.unreadable {
        problems.push(format!("{u}; it is kept"));
    }
    problems.extend(loaded.truncated);
    problems.extend(loaded.unbound.into_iter().map(|u| u.why));
    let items: Vec<Item> = all.iter().map(Item::of).collect();
    let decisions = retention::apply(policy, &items);
    let mut backups = Vec::new();
    let mut removed = Vec::new();
    for (h, d) in all.iter().zip(decisions) {
        if !d.keep {
            removed.push(h.id.clone());
        }
        backups.push(BackupDecision {
            id: h.id.clone(),
            source: h.source.clone(),
            host: h.host.clone(),
            started_at: h.started_at.clone(),
            tags: h.tags.clone(),
            stored_bytes: h.stored_bytes,
            action: if d.keep {
                "keep".into()
            } else {
                "remove".into()
            },
            reasons: d.reasons,
        });
    }
    let mut deferred = Vec::new();
    if !opts.dry_run && !removed.is_empty() {
        let paths: Vec<String> = removed.iter().map(|id| manifest_path(id)).collect();
        let refused: HashSet<String> = store.delete_many_or_refused(&paths)?.into_iter().collect();
        if !refused.is_empty() {
            (deferred, removed) = removed
                .into_iter()
                .partition(|id| refused.contains(&manifest_path(id)));
            problems.push(format!(
                "{} backup(s) that retention removes were kept, because the target refused to delete their manifests (permission denied: Object Lock retention or credentials without delete permission): {}; everything they need is kept and the next prune retries",
                deferred.len(),
                deferred.join(", ")
            ));
        }
        // Their verification marks go too (after the manifests: a mark
        // without its backup is ignored, never the other way round).
        let marks: Vec<String> = removed
            .iter()
            .flat_map(|id| super::verified::paths(id))
            .collect();
        if let Err(e) = store.delete_many(&marks) {
            problems.push(format!(
                "the verification marks of removed backups were not all deleted: {}",
                crate::error::paragraph(&e)
            ));
        }
    }
    for id in &removed {
        headers.forget(id);
    }
    let removed_set: HashSet<String> = removed.iter().cloned().collect();
    let mut wal = Vec::new();
    for source in all
        .iter()
        .filter(|h| h.kind == "postgres-physical")
        .map(|h| h.source.as_str())
        .collect::<BTreeSet<_>>()
    {
        let kept: Vec<&Header> = all
            .iter()
            .filter(|h| h.source == source && !removed_set.contains(&h.id))
            .collect();
        match prune_wal(store, source, &kept, opts.dry_run) {
            Ok(w) => {
                if w.deferred > 0 {
                    problems.push(format!(
                        "{} WAL file(s) of source '{source}' were kept, because the target refused to delete them (permission denied); the next prune retries",
                        w.deferred
                    ));
                }
                wal.push(w)
            }
            Err(e) => {
                let why = crate::error::paragraph(&e);
                problems.push(format!(
                    "the WAL of source '{source}' was not pruned: {why}"
                ));
                wal.push(WalPrune {
                    source: source.to_string(),
                    error: Some(why),
                    ..Default::default()
                });
            }
        }
    }
    // Garbage collection reads the headers again under its lock.
    drop(all);
    crate::memtrace::mark("prune: retention applied");
    let gc = collect_garbage(store, key, &mut headers, &removed_set, opts, &mut problems)?;
    crate::memtrace::mark("prune: garbage collected");
    Ok(TargetReport {
        target: store.name.clone(),
        dry_run: opts.dry_run,
        policy: policy.map(|p| p.describe()),
        backups,
        removed,
        deferred,
        gc,
        wal,
        problems,
    })
}

/// Removes the archived WAL of `source` that no kept base backup needs.
/// Conservative: with no kept backup, or one whose start is unknown
/// (written before vaultctl recorded it), every WAL file stays.
fn prune_wal(store: &Store, source: &str, kept: &[&Header], dry_run: bool) -> Result<WalPrune> {
    let mut report = WalPrune {
        source: source.to_string(),
        ..Default::default()
    };
    let starts: Option<Vec<wal::WalStart>> = kept.iter().map(|h| h.wal_start.clone()).collect();
    let starts = match starts {
        _ if kept.is_empty() => {
            report.note = Some("no base backup is kept, so all WAL is kept".into());
            return Ok(report);
        }
        None => {
            report.note = Some(
                "a kept base backup does not record where its WAL starts (made before vaultctl 0.1 recorded it), so all WAL is kept".into(),
            );
            return Ok(report);
        }
        Some(s) => s,
    };
    let objects = wal::list(store, source)?;
    report.files = objects.len();
    let segment_size = match wal::segment_size(store, source, &objects) {
        Ok(Some(n)) => n,
        Ok(None) => {
            report.note = Some(
                "no complete WAL segment is archived yet, so the segment size is unknown and all WAL is kept".into(),
            );
            return Ok(report);
        }
        Err(e) => {
            return Err(Failure::new(
                ExitStatus::Failure,
                format!("its WAL segment size cannot be determined, so no WAL is removed (a guess could delete WAL a kept backup needs): {}", crate::error::paragraph(&e)),
            )
            .with_remedy("Run `vaultctl wal status` and `vaultctl verify`; fix or remove the damaged WAL object, then prune again.")
            .into())
        }
    };
    report.keep_from = wal::first_needed(&starts, segment_size);
    let names: Vec<String> = objects.iter().map(|o| o.name.clone()).collect();
    let removable: HashSet<String> = wal::removable(&starts, &names, segment_size)
        .into_iter()
        .collect();
    let mut paths = Vec::new();
    for o in objects.iter().filter(|o| removable.contains(&o.name)) {
        report.removed += 1;
        report.bytes_removed += o.size;
        paths.push(wal::object_path(source, &o.name)?);
    }
    if !dry_run && !paths.is_empty() {
        let refused: HashSet<String> = store.delete_many_or_refused(&paths)?.into_iter().collect();
        for o in objects.iter().filter(|o| removable.contains(&o.name)) {
            if wal::object_path(source, &o.name).is_ok_and(|p| refused.contains(&p)) {
                report.removed -= 1;
                report.bytes_removed -= o.size;
                report.deferred += 1;
            }
        }
    }
    Ok(report)
}

/// Reads and checks one index object; `None` (with a problem noted) when it
/// is damaged or cannot be read: it is left in place.
fn read_index(
    store: &Store,
    key: &DedupKey,
    name: &str,
    problems: &mut Vec<String>,
) -> Result<Option<Vec<IndexedPack>>> {
    let Some(bytes) = store.get(&index_path(name))? else {
        return Ok(None);
    };
    if content_name(&bytes) != name {
        note(
            problems,
            format!(
                "index object {name} is damaged (its bytes do not match its name); left in place"
            ),
        );
        return Ok(None);
    }
    match index::decode(&bytes, key) {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            note(
                problems,
                format!(
                    "index object {name} cannot be read ({}); left in place",
                    crate::error::paragraph(&e)
                ),
            );
            Ok(None)
        }
    }
}

fn note(problems: &mut Vec<String>, what: String) {
    if !problems.contains(&what) {
        problems.push(what);
    }
}

/// Every distinct blob the live manifests name, read from their headers a
/// batch at a time, in ascending order (an external sort: memory does not
/// grow with the blobs).
fn live_blobs(store: &Store, key: &DedupKey, objects: &[String]) -> Result<Sorted<BlobId>> {
    let mut set = ExternalSorter::new(extsort::RUN_LEN);
    for batch in objects.chunks(MANIFEST_BATCH) {
        let paths: Vec<String> = batch.iter().map(|id| manifest_path(id)).collect();
        for (id, bytes) in batch.iter().zip(store.get_many(&paths)?) {
            let Some(bytes) = bytes else { continue };
            // Read (and checked) moments ago under the same lock: only the
            // blob list is wanted now.
            let h = manifest::decode_header_unbound(&bytes, key).map_err(|e| {
                Failure::new(
                    ExitStatus::Failure,
                    format!(
                        "garbage collection on target '{}' stopped before deleting anything: manifest {id} cannot be read any more ({}).",
                        store.name,
                        crate::error::paragraph(&e)
                    ),
                )
                .with_remedy("Run `vaultctl verify`, then prune again.")
            })?;
            for b in h.blobs.iter().filter_map(|b| ids::parse_hex(b)) {
                set.push(b)?;
            }
        }
    }
    set.finish()
}

/// Where the live blobs are, as [`locate`] found them.
#[derive(Debug, Default, PartialEq)]
struct Located {
    /// Live blobs no index entry names.
    unlocated: usize,
    /// Slots of the packs that hold a live blob no kept pack holds
    /// (ascending, each once).
    elsewhere: Vec<u32>,
}

/// Relates the sorted live blobs to the sorted index entries (`(blob,
/// pack slot)`) in one pass: a live blob is located when an entry names it,
/// and safe when one of those entries is in a kept pack; otherwise every
/// pack that holds it must be kept too.
fn locate(
    mut blobs: Sorted<BlobId>,
    mut entries: Sorted<(BlobId, u32)>,
    slots: usize,
    kept: impl Fn(u32) -> bool,
) -> Result<Located> {
    let mut out = Located::default();
    // A bit per pack slot: memory grows with the packs, not the blobs.
    let mut elsewhere = BitSet::new(slots);
    let mut holders: Vec<u32> = Vec::new();
    while let Some(blob) = blobs.next_record()? {
        while entries.peek().is_some_and(|(id, _)| *id < blob) {
            entries.next_record()?;
        }
        holders.clear();
        let mut safe = false;
        while let Some(&(id, slot)) = entries.peek() {
            if id != blob {
                break;
            }
            safe |= kept(slot);
            holders.push(slot);
            entries.next_record()?;
        }
        if holders.is_empty() {
            out.unlocated += 1;
        } else if !safe {
            for slot in &holders {
                elsewhere.set(*slot as usize);
            }
        }
    }
    out.elsewhere = (0..slots)
        .filter(|s| elsewhere.get(*s))
        .map(|s| s as u32)
        .collect();
    Ok(out)
}

fn collect_garbage(
    store: &Store,
    key: &DedupKey,
    headers: &mut HeaderCache,
    removed: &HashSet<String>,
    opts: &PruneOptions,
    problems: &mut Vec<String>,
) -> Result<GcReport> {
    let lock = if opts.dry_run {
        None
    } else {
        Some(lock::acquire(
            std::slice::from_ref(store),
            key,
            Kind::Exclusive,
            "prune",
            opts.lock_wait,
            opts.lock_timing,
        )?)
    };

    // Under the lock: nothing is being written; list everything afresh.
    let Loaded {
        headers: live,
        unreadable,
        truncated,
        unbound,
    } = headers.load(store, key)?;
    for t in truncated
        .into_iter()
        .chain(unbound.iter().map(|u| u.why.clone()))
    {
        note(problems, t);
    }
    if !unreadable.is_empty() {
        return Err(Failure::new(
            ExitStatus::Failure,
            format!(
                "garbage collection on target '{}' stopped before deleting anything, because {} manifest(s) cannot be read ({}), so the packs they need are unknown.",
                store.name,
                unreadable.len(),
                unreadable.join("; ")
            ),
        )
        .with_remedy("Run `vaultctl verify` and fix or remove the damaged manifests (or run prune with the right dedup key).")
        .into());
    }
    // The live manifests (kept backups, and refused but authentic ones) by
    // object name, and the packs their headers name.
    let mut live_objects: Vec<String> = Vec::new();
    let mut referenced = IdSetBuilder::new();
    for (object, h) in live
        .iter()
        .filter(|h| !removed.contains(&h.id))
        .map(|h| (&h.id, h))
        .chain(unbound.iter().map(|u| (&u.object, &u.header)))
    {
        live_objects.push(object.clone());
        referenced.extend(h.packs.iter().filter_map(|p| ids::parse_hex(p)));
    }
    drop(live);
    let mut referenced = referenced.build();
    let mut packs: Vec<(BlobId, u64)> = store
        .list(PACKS_DIR)?
        .into_iter()
        .filter_map(|(path, size)| {
            path.rsplit('/')
                .next()
                .filter(|s| format::is_hex_name(s))
                .and_then(ids::parse_hex)
                .map(|p| (p, size))
        })
        .collect();
    packs.sort_unstable();
    packs.dedup_by_key(|(p, _)| *p);

    // Belt and braces: every blob of a live backup must stay located in a
    // kept pack. The header's pack list guarantees it; should an index say
    // otherwise, keep every pack that holds the blob. Neither the live
    // blobs nor the index entries are held in memory: both go through an
    // external sort, and one pass over the two sorted streams relates them.
    crate::memtrace::mark("prune: live manifests listed");
    let blobs = live_blobs(store, key, &live_objects)?;
    crate::memtrace::mark("prune: live blobs sorted");
    // Every pack an index entry names, by slot (the entries carry the slot).
    let mut slots: Vec<BlobId> = Vec::new();
    let mut entries = ExternalSorter::<(BlobId, u32)>::new(extsort::RUN_LEN);
    // Index objects that name a pack no manifest needs, with their packs.
    let mut touched: Vec<(String, Vec<BlobId>)> = Vec::new();
    let index_names: Vec<String> = store
        .list(INDEX_DIR)?
        .into_iter()
        .filter_map(|(n, _)| {
            n.strip_prefix("index/")
                .filter(|s| format::is_hex_name(s))
                .map(String::from)
        })
        .collect();
    for name in &index_names {
        let Some(ps) = read_index(store, key, name, problems)? else {
            continue;
        };
        let mut pack_ids = Vec::with_capacity(ps.len());
        for p in &ps {
            let Some(pid) = ids::parse_hex(&p.name) else {
                continue;
            };
            pack_ids.push(pid);
            let slot = u32::try_from(slots.len())?;
            slots.push(pid);
            for e in &p.entries {
                entries.push((e.id, slot))?;
            }
        }
        if pack_ids.iter().any(|p| !referenced.contains(p)) {
            touched.push((name.clone(), pack_ids));
        }
    }
    crate::memtrace::mark("prune: indexes read");
    let located = locate(blobs, entries.finish()?, slots.len(), |slot| {
        referenced.contains(&slots[slot as usize])
    })?;
    crate::memtrace::mark("prune: live blobs located");
    let extra: IdSet = located
        .elsewhere
        .iter()
        .map(|slot| slots[*slot as usize])
        .collect();
    drop(slots);
    let unlocated = located.unlocated;
    if !extra.is_empty() {
        problems.push(format!(
            "{} pack(s) not named by any manifest hold blobs that backups need; they are kept",
            extra.len()
        ));
        referenced.insert_all(extra.iter().copied());
    }
    if unlocated > 0 {
        problems.push(format!(
            "{unlocated} blob(s) of kept backups are in no index (run `vaultctl verify`)"
        ));
    }

    let garbage: Vec<&(BlobId, u64)> = packs
        .iter()
        .filter(|(p, _)| !referenced.contains(p))
        .collect();
    let mut report = GcReport {
        packs_total: packs.len(),
        packs_referenced: packs.len() - garbage.len(),
        packs_deleted: garbage.len(),
        bytes_deleted: garbage.iter().map(|(_, s)| s).sum(),
        bytes_remaining: packs
            .iter()
            .filter(|(p, _)| referenced.contains(p))
            .map(|(_, s)| s)
            .sum(),
        ..Default::default()
    };

    // Index objects that mention a pack no manifest needs are rewritten
    // (or deleted when nothing in them is kept).
    let mut old_indexes: Vec<String> = Vec::new();
    let mut rewrite: Vec<String> = Vec::new();
    for (name, ps) in &touched {
        if ps.iter().all(|p| referenced.contains(p)) {
            continue;
        }
        if ps.iter().any(|p| referenced.contains(p)) {
            report.indexes_rewritten += 1;
            rewrite.push(name.clone());
        } else {
            report.indexes_deleted += 1;
        }
        old_indexes.push(name.clone());
    }
    drop(touched);
    if opts.dry_run {
        return Ok(report);
    }
    super::test_pause("gc-delete");
    // Before every write and every batch of deletes: is our exclusive lock
    // still ours? A prune that was frozen past the stale period may have
    // lost it to a backup that now references what we call garbage, so it
    // stops at once; the next prune finishes the job.
    let guard = |what: &str| -> Result<()> {
        match lock.as_ref().map(|l| l.check(&store.name)) {
            Some(Err(why)) => Err(Failure::new(
                ExitStatus::Locked,
                format!(
                    "garbage collection on target '{}' stopped before {what}: {why}.",
                    store.name
                ),
            )
            .with_remedy("Nothing more was written or deleted. Run prune again: the next run finishes the job.")
            .into()),
            _ => Ok(()),
        }
    };
    // New index objects first (each read again and written at once, so
    // memory holds one), then the old ones go, then the packs: at no
    // moment does a manifest's blob lack an index entry in an existing pack.
    for name in &rewrite {
        let Some(ps) = read_index(store, key, name, problems)? else {
            // Read a moment ago; should it fail now, it stays in place.
            old_indexes.retain(|n| n != name);
            continue;
        };
        let kept: Vec<IndexedPack> = ps
            .into_iter()
            .filter(|p| ids::parse_hex(&p.name).is_some_and(|id| referenced.contains(&id)))
            .collect();
        let encoded = Bytes::from(index::encode(&kept, key)?);
        guard("writing the rewritten index objects")?;
        store.put(&index_path(&content_name(&encoded)), encoded)?;
    }
    let old_paths: Vec<String> = old_indexes.iter().map(|n| index_path(n)).collect();
    for batch in old_paths.chunks(GC_BATCH) {
        guard("deleting old index objects")?;
        report.indexes_deferred += store.delete_many_or_refused(batch)?.len();
    }
    let garbage_paths: Vec<String> = garbage
        .iter()
        .map(|(p, _)| pack_path(&hex::encode(p)))
        .collect();
    let kept: HashSet<String> = if report.indexes_deferred > 0 {
        // An old index object that stays names garbage packs: deleting them
        // would let a catalog that reads it dedup against a deleted pack.
        problems.push(format!(
            "{} old index object(s) could not be deleted (the target refused: permission denied), so the {} garbage pack(s) were kept too; the next prune retries",
            report.indexes_deferred,
            garbage_paths.len()
        ));
        garbage_paths.iter().cloned().collect()
    } else {
        let mut refused = HashSet::new();
        for batch in garbage_paths.chunks(GC_BATCH) {
            guard("deleting garbage packs")?;
            refused.extend(store.delete_many_or_refused(batch)?);
        }
        if !refused.is_empty() {
            problems.push(format!(
                "{} garbage pack(s) were kept, because the target refused to delete them (permission denied); the next prune retries",
                refused.len()
            ));
        }
        refused
    };
    if !kept.is_empty() {
        report.packs_deferred = kept.len();
        report.packs_deleted -= kept.len();
        report.bytes_deleted -= garbage
            .iter()
            .filter(|(p, _)| kept.contains(&pack_path(&hex::encode(p))))
            .map(|(_, size)| size)
            .sum::<u64>();
    }
    if let Some(l) = lock {
        l.release();
    }
    Ok(report)
}

/// Deletes between two checks of prune's exclusive lock (one round of
/// parallel requests in [`Store::delete_many`]).
const GC_BATCH: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> BlobId {
        [n; 32]
    }

    use extsort::sorted;

    #[test]
    fn locate_counts_unlocated_blobs_and_names_the_packs_to_keep() {
        // Slots 0 and 5 are kept packs.
        let kept = |slot: u32| slot == 0 || slot == 5;
        let blobs = sorted(&[id(4), id(1), id(2), id(3), id(9), id(1)]);
        let entries = sorted(&[
            (id(1), 0), // live, in a kept pack
            (id(2), 1), // live, in a dropped pack and a kept one: safe
            (id(2), 5),
            (id(3), 2), // live, only in dropped packs: both are kept
            (id(3), 3),
            (id(5), 4), // not live
            (id(0), 6), // not live, before every live blob
            (id(8), 7), // not live, between two live blobs
        ]);
        // id(4) and id(9): in no index.
        let got = locate(blobs, entries, 8, kept).unwrap();
        assert_eq!(
            got,
            Located {
                unlocated: 2,
                elsewhere: vec![2, 3],
            }
        );
        // Nothing live: nothing to keep, whatever the index says.
        let got = locate(sorted(&[]), sorted(&[(id(1), 2)]), 3, kept).unwrap();
        assert_eq!(got, Located::default());
        // No index at all: every live blob is unlocated.
        let got = locate(sorted(&[id(1), id(2)]), sorted(&[]), 0, kept).unwrap();
        assert_eq!(got.unlocated, 2);
    }
}
