//! Verification of a target's repository.
//!
//! Without an identity: every manifest header opens, every blob it names is
//! indexed, every pack it needs exists; with `read_data`, every (or a sample
//! of) pack's bytes match its name. With an identity, packs are also
//! decrypted and every blob checked against its id, and with `read_data`
//! every artifact is streamed and checked against its whole-stream hash.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use serde::Serialize;

use super::extsort::{self, ExternalSorter, Sorted};
use super::format::{self, content_name, INDEX_DIR, PACKS_DIR, SNAPSHOTS_DIR};
use super::ids::{self, BlobTable};
use super::index::{self, IndexedPack};
use super::keys::{self, Identity};
use super::manifest;
use super::pack::{parse_entries, read_blob, BlobId, BlobLocation, PackEntry};
use super::restore::ArtifactReader;
use super::Repository;
use crate::progress::Progress;
use crate::storage::Store;

/// Structure only (manifests, indexes, pack existence), every pack's data,
/// or a percentage of packs (the least recently read first).
pub use crate::config::VerifyMode as Mode;

#[derive(Debug, Serialize)]
pub struct Problem {
    pub message: String,
    /// Backups affected by this problem.
    pub backups: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub mode: String,
    pub ok: bool,
    pub backups_checked: usize,
    pub packs_checked: usize,
    pub content_checked: bool,
    pub problems: Vec<Problem>,
    /// Every backup named by any problem.
    pub affected_backups: Vec<String>,
    /// Damage no backup is affected by: packs no manifest references
    /// (left by an interrupted backup, or no longer needed after a prune).
    /// A warning (exit 3), not a problem: prune deletes them.
    #[serde(default)]
    pub orphans: Vec<Problem>,
    /// What is not damaged but weaker than it should be (for instance
    /// version 1 manifests, whose body is not bound to their header).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The packs the target holds (name, size).
    #[serde(skip)]
    pub packs_listed: Vec<(String, u64)>,
    /// The packs read, and whether each was intact.
    #[serde(skip)]
    pub packs_read: Vec<(String, bool)>,
}

impl Report {
    /// The result in a few words: `ok`, `ok, 2 warning(s)`, `3 problem(s)`.
    pub fn result_text(&self) -> String {
        if self.ok && !self.orphans.is_empty() {
            format!("ok, {} warning(s)", self.orphans.len())
        } else if self.ok {
            "ok".into()
        } else {
            format!("{} problem(s)", self.problems.len())
        }
    }

    /// One line per problem (with the backups it affects), then one per
    /// orphan warning, each prefixed with the target.
    pub fn findings(&self) -> Vec<String> {
        let problems = self.problems.iter().map(|p| {
            let affected = if p.backups.is_empty() {
                " (names no backup: a problem of the repository's structure)".to_string()
            } else {
                format!(" (affects backups: {})", p.backups.join(", "))
            };
            format!("{}: {}{affected}", self.target, p.message)
        });
        let orphans = self
            .orphans
            .iter()
            .map(|o| format!("{}: warning: {}", self.target, o.message));
        problems.chain(orphans).collect()
    }
}

/// The packs a sampled verify reads: `percent` of them (at least one),
/// never-read packs first, then the least recently read (`last_read`: pack
/// → when it was last read intact, sortable RFC 3339); ties in random
/// order. Repeated runs thus rotate through every pack: with a fixed set, in
/// `ceil(100 / percent)` runs.
pub fn choose_sample<'a>(
    listed: impl IntoIterator<Item = &'a String>,
    percent: f64,
    last_read: &HashMap<String, String>,
) -> Vec<&'a String> {
    let mut all: Vec<&String> = listed.into_iter().collect();
    rand::seq::SliceRandom::shuffle(&mut all[..], &mut rand::thread_rng());
    all.sort_by_key(|p| last_read.get(*p));
    let n = ((all.len() as f64 * percent / 100.0).ceil() as usize).max(1);
    all.truncate(n);
    all
}

pub fn mode_name(mode: Mode) -> String {
    match mode {
        Mode::Structure => "structure".into(),
        Mode::ReadData => "read-data".into(),
        Mode::Sample(p) => format!("sample {p}%"),
    }
}

/// Verifies `store`, a sample taking packs at random.
pub fn verify_target(
    repo: &Repository,
    store: &Store,
    mode: Mode,
    identities: Option<&[Identity]>,
    progress: &dyn Progress,
) -> Result<Report> {
    verify_target_rotating(repo, store, mode, identities, &HashMap::new(), progress)
}

/// Verifies `store`. `last_read` (pack → when it was last read intact)
/// steers a sample to the packs read least recently.
pub fn verify_target_rotating(
    repo: &Repository,
    store: &Store,
    mode: Mode,
    identities: Option<&[Identity]>,
    last_read: &HashMap<String, String>,
    progress: &dyn Progress,
) -> Result<Report> {
    let mut problems: Vec<Problem> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let packs_listed: HashMap<String, u64> = store
        .list(PACKS_DIR)?
        .into_iter()
        .filter_map(|(n, size)| {
            n.rsplit('/')
                .next()
                .filter(|s| format::is_hex_name(s))
                .map(|s| (s.to_string(), size))
        })
        .collect();

    // Index objects → which pack holds each blob, one index object at a
    // time: `(blob, pack slot)` through an external sort, so that the
    // memory of the structure check and of a sampled read does not grow
    // with the blobs (a sampled pack is compared with its own index
    // entries, read again from its index object). Checking every stream
    // looks blobs up at random, so a full read with the identity keeps a
    // compact table instead.
    let mut slots: HashMap<String, u32> = HashMap::new();
    // By slot: the pack's name and the first index object that lists it.
    let mut pack_of_slot: Vec<(String, String)> = Vec::new();
    let lookups = identities.is_some() && mode == Mode::ReadData;
    let mut entries = ExternalSorter::<(BlobId, u32)>::new(extsort::RUN_LEN);
    let mut locations = BlobTable::new();
    for (name, _) in store.list(INDEX_DIR)? {
        let Some(short) = name
            .strip_prefix("index/")
            .filter(|s| format::is_hex_name(s))
        else {
            continue;
        };
        let Some(bytes) = store.get(&name)? else {
            continue;
        };
        if content_name(&bytes) != short {
            problems.push(Problem {
                message: format!(
                    "index object {short} is damaged (its bytes do not match its name)"
                ),
                backups: vec![],
            });
            continue;
        }
        match super::index::decode(&bytes, &repo.dedup) {
            Ok(packs) => {
                for p in packs {
                    let slot = *slots.entry(p.name.clone()).or_insert_with(|| {
                        pack_of_slot.push((p.name.clone(), short.to_string()));
                        (pack_of_slot.len() - 1) as u32
                    });
                    for e in p.entries {
                        if lookups {
                            locations.push(e.id, slot);
                        } else {
                            entries.push((e.id, slot))?;
                        }
                    }
                }
            }
            Err(e) => problems.push(Problem {
                message: format!(
                    "index object {short} cannot be read: {}",
                    crate::error::paragraph(&e)
                ),
                backups: vec![],
            }),
        }
    }
    locations.finish();

    // Manifests, one at a time → their blobs, `(blob, manifest number)`
    // through an external sort; related to the index entries in one pass.
    let mut refs = ExternalSorter::<(BlobId, u32)>::new(extsort::RUN_LEN);
    // Backups whose manifest was read (their streams are checked below), by
    // number, and how many of their blobs no index locates.
    let mut manifests: Vec<String> = Vec::new();
    let mut missing_blobs: Vec<u32> = Vec::new();
    let mut unbound: Vec<String> = Vec::new();
    for (name, _) in store.list(SNAPSHOTS_DIR)? {
        let Some(id) = name.strip_prefix("snapshots/") else {
            continue;
        };
        let Some(bytes) = store.get(&name)? else {
            continue;
        };
        let header = match manifest::decode_header(&bytes, &repo.dedup, id) {
            Ok(h) => h,
            Err(e) if manifest::is_truncated(&e) => {
                problems.push(Problem {
                    message: format!(
                        "manifest {id} is damaged beyond reading: {}. It can never be restored, and prune's garbage collection ignores it (its packs are not protected). Delete {} on target '{}' to clear this report; if another target holds an intact copy, `vaultctl sync` then copies it back",
                        crate::error::paragraph(&e),
                        format::manifest_path(id),
                        store.name
                    ),
                    backups: vec![id.to_string()],
                });
                continue;
            }
            Err(e) => {
                problems.push(Problem {
                    message: format!(
                        "manifest {id} is damaged, was tampered with, or cannot be read: {}",
                        crate::error::paragraph(&e)
                    ),
                    backups: vec![id.to_string()],
                });
                continue;
            }
        };
        if !manifest::body_bound(&header) {
            unbound.push(header.id.clone());
        }
        let number = u32::try_from(manifests.len())?;
        let mut unparsable = 0;
        for b in &header.blobs {
            match ids::parse_hex(b) {
                Some(id) => refs.push((id, number))?,
                None => unparsable += 1,
            }
        }
        manifests.push(header.id);
        missing_blobs.push(unparsable);
    }
    let used = if lookups {
        relate(
            refs.finish()?,
            |blob| Ok(locations.get(blob)),
            &mut missing_blobs,
        )?
    } else {
        let mut entries = entries.finish()?;
        relate(
            refs.finish()?,
            |blob| seek(&mut entries, blob),
            &mut missing_blobs,
        )?
    };

    // Which backups need which packs, and what they miss.
    let mut pack_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (number, id) in manifests.iter().enumerate() {
        let number = number as u32;
        let mut missing_packs = BTreeSet::new();
        for &(_, slot) in used.range((number, 0)..=(number, u32::MAX)) {
            let pack = &pack_of_slot[slot as usize].0;
            pack_users
                .entry(pack.clone())
                .or_default()
                .insert(id.clone());
            if !packs_listed.contains_key(pack) {
                missing_packs.insert(pack.clone());
            }
        }
        if missing_blobs[number as usize] > 0 {
            problems.push(Problem {
                message: format!(
                    "backup {id} names {} blob(s) that no index locates",
                    missing_blobs[number as usize]
                ),
                backups: vec![id.clone()],
            });
        }
        for p in missing_packs {
            problems.push(Problem {
                message: format!("pack {p} needed by backup {id} is missing"),
                backups: vec![id.clone()],
            });
        }
    }
    if !unbound.is_empty() {
        warnings.push(format!(
            "{} backup(s) have version 1 manifests ({}{}), whose body is not bound to their header: only their name is checked, so someone with write access to the storage could give them another body. Newer backups (version 2) are bound; the old ones age out with retention",
            unbound.len(),
            unbound.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if unbound.len() > 5 { ", …" } else { "" }
        ));
    }

    // Pack data.
    let mut to_read: Vec<&String> = match mode {
        Mode::Structure => Vec::new(),
        Mode::ReadData => packs_listed.keys().collect(),
        Mode::Sample(pct) => choose_sample(packs_listed.keys(), pct, last_read),
    };
    // Grouped by the index object that lists them, so each is read once.
    to_read.sort_by_key(|n| {
        (
            slots.get(*n).map(|s| pack_of_slot[*s as usize].1.as_str()),
            *n,
        )
    });
    let mut index_reader = IndexReader::default();
    if !to_read.is_empty() {
        progress.start(
            &format!("verify packs on {}", store.name),
            Some(to_read.iter().map(|n| packs_listed[*n]).sum()),
        );
    }
    let mut packs_checked = 0;
    let mut packs_read = Vec::with_capacity(to_read.len());
    let mut orphans: Vec<Problem> = Vec::new();
    // A damaged pack no backup uses is a warning: nothing is at risk.
    let mut damaged = |what: String, backups: Vec<String>| {
        if backups.is_empty() {
            orphans.push(Problem {
                message: format!("{what}; no backup references it (an interrupted backup or a prune left it), so no backup is at risk. `vaultctl prune` deletes it"),
                backups,
            });
        } else {
            problems.push(Problem {
                message: what,
                backups,
            });
        }
    };
    for name in &to_read {
        let users = || {
            pack_users
                .get(*name)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        };
        let bytes = match store.get(&format::pack_path(name))? {
            Some(b) => b,
            None => continue,
        };
        progress.advance(bytes.len() as u64);
        packs_checked += 1;
        if &content_name(&bytes) != *name {
            damaged(
                format!("pack {name} is damaged (its bytes do not match its name)"),
                users(),
            );
            packs_read.push(((*name).clone(), false));
            continue;
        }
        let mut intact = true;
        if let Some(ids) = identities {
            let indexed = match slots.get(*name) {
                Some(slot) => index_reader.entries(store, repo, &pack_of_slot[*slot as usize])?,
                None => Vec::new(),
            };
            if let Err(e) = check_pack_content(repo, name, &bytes, ids, indexed) {
                damaged(
                    format!("pack {name}: {}", crate::error::paragraph(&e)),
                    users(),
                );
                intact = false;
            }
        }
        packs_read.push(((*name).clone(), intact));
    }
    if !to_read.is_empty() {
        progress.finish();
    }

    // Whole-stream hashes, when reading everything with the identity.
    let content_checked = identities.is_some() && mode == Mode::ReadData;
    if let (Some(ids), Mode::ReadData) = (identities, mode) {
        let damaged: BTreeSet<String> = problems
            .iter()
            .flat_map(|p| p.backups.iter().cloned())
            .collect();
        for id in &manifests {
            if damaged.contains(id) {
                continue;
            }
            let checked = store
                .get(&format::manifest_path(id))?
                .ok_or_else(|| anyhow::anyhow!("the manifest vanished while verify ran"))
                .and_then(|bytes| {
                    let header = manifest::decode_header(&bytes, &repo.dedup, id)?;
                    let streams = Streams {
                        locations: &locations,
                        slots: &pack_of_slot,
                        index_reader: &mut index_reader,
                    };
                    check_streams(repo, store, &header, &bytes, ids, streams)
                });
            if let Err(e) = checked {
                problems.push(Problem {
                    message: format!("backup {id}: {}", crate::error::paragraph(&e)),
                    backups: vec![id.clone()],
                });
            }
        }
    }

    let affected: BTreeSet<String> = problems
        .iter()
        .flat_map(|p| p.backups.iter().cloned())
        .collect();
    Ok(Report {
        target: store.name.clone(),
        mode: mode_name(mode),
        ok: problems.is_empty(),
        backups_checked: manifests.len(),
        packs_checked,
        content_checked,
        problems,
        affected_backups: affected.into_iter().collect(),
        orphans,
        warnings,
        packs_listed: {
            let mut v: Vec<(String, u64)> = packs_listed.into_iter().collect();
            v.sort();
            v
        },
        packs_read,
    })
}

/// Relates the sorted blob references `(blob, manifest number)` to the
/// packs that hold them (`slot_of`, asked in ascending blob order): returns
/// the `(manifest number, pack slot)` pairs of the packs each manifest's
/// blobs live in, and counts the blobs no index entry names in `missing`
/// (by manifest number).
fn relate(
    mut refs: Sorted<(BlobId, u32)>,
    mut slot_of: impl FnMut(&BlobId) -> Result<Option<u32>>,
    missing: &mut [u32],
) -> Result<BTreeSet<(u32, u32)>> {
    let mut used = BTreeSet::new();
    while let Some((blob, number)) = refs.next_record()? {
        match slot_of(&blob)? {
            Some(slot) => {
                used.insert((number, slot));
            }
            None => missing[number as usize] += 1,
        }
    }
    Ok(used)
}

/// The slot of `blob` in the sorted index entries `(blob, pack slot)`, for
/// ascending `blob`s (a blob indexed twice: its first pack, as
/// [`BlobTable`] has it).
fn seek(entries: &mut Sorted<(BlobId, u32)>, blob: &BlobId) -> Result<Option<u32>> {
    while entries.peek().is_some_and(|(id, _)| id < blob) {
        entries.next_record()?;
    }
    Ok(entries
        .peek()
        .filter(|(id, _)| id == blob)
        .map(|&(_, slot)| slot))
}

/// The entries of a pack as its index object lists them, reading each
/// index object once for a run of packs it lists (verify visits packs
/// grouped by index object).
#[derive(Default)]
struct IndexReader {
    last: Option<(String, Vec<IndexedPack>)>,
}

impl IndexReader {
    /// `pack`: (pack name, index object name).
    fn entries(
        &mut self,
        store: &Store,
        repo: &Repository,
        pack: &(String, String),
    ) -> Result<Vec<PackEntry>> {
        let (pack_name, index_name) = pack;
        if self.last.as_ref().map(|(n, _)| n) != Some(index_name) {
            let bytes = store.get(&format::index_path(index_name))?.ok_or_else(|| {
                anyhow::anyhow!("index object {index_name} vanished while verify ran")
            })?;
            self.last = Some((index_name.clone(), index::decode(&bytes, &repo.dedup)?));
        }
        let (_, packs) = self.last.as_ref().expect("just read");
        Ok(packs
            .iter()
            .find(|p| &p.name == pack_name)
            .map(|p| p.entries.clone())
            .unwrap_or_default())
    }
}

fn location(pack: &str, e: &PackEntry) -> BlobLocation {
    BlobLocation {
        pack: pack.to_string(),
        offset: e.offset,
        stored_len: e.stored_len,
        raw_len: e.raw_len,
        flags: e.flags,
    }
}

/// Decrypts a pack and checks every blob against its id, and against the
/// pack's own entries in its index object (`indexed`): where the index
/// places a blob in this pack, the pack must agree.
fn check_pack_content(
    repo: &Repository,
    name: &str,
    bytes: &[u8],
    ids: &[Identity],
    indexed: Vec<PackEntry>,
) -> Result<()> {
    let plain = keys::decrypt(ids, bytes)?;
    let indexed: HashMap<BlobId, PackEntry> = indexed.into_iter().map(|e| (e.id, e)).collect();
    for e in parse_entries(&plain)? {
        let loc = location(name, &e);
        read_blob(&plain, &loc, &e.id, &repo.dedup)?;
        if let Some(i) = indexed.get(&e.id) {
            if location(name, i) != loc {
                anyhow::bail!(
                    "the index disagrees with the pack about blob {}",
                    hex::encode(&e.id[..8])
                );
            }
        }
    }
    Ok(())
}

/// What [`check_streams`] needs to locate blobs.
struct Streams<'a> {
    locations: &'a BlobTable,
    /// By slot: the pack's name and its index object.
    slots: &'a [(String, String)],
    index_reader: &'a mut IndexReader,
}

fn check_streams(
    repo: &Repository,
    store: &Store,
    header: &manifest::Header,
    bytes: &[u8],
    ids: &[Identity],
    s: Streams<'_>,
) -> Result<()> {
    let body = manifest::decode_body(bytes, ids, header)?;
    for a in &body.artifacts {
        // The full locations of the packs this artifact uses (only those).
        let mut entries: HashMap<u32, HashMap<BlobId, PackEntry>> = HashMap::new();
        let mut plan = Vec::with_capacity(a.blobs.len());
        for b in &a.blobs {
            let id: BlobId =
                ids::parse_hex(b).ok_or_else(|| anyhow::anyhow!("invalid blob id {b}"))?;
            let slot = s
                .locations
                .get(&id)
                .ok_or_else(|| anyhow::anyhow!("blob {} is not indexed", &b[..16]))?;
            let in_pack = match entries.entry(slot) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let listed = s
                        .index_reader
                        .entries(store, repo, &s.slots[slot as usize])?;
                    v.insert(listed.into_iter().map(|e| (e.id, e)).collect())
                }
            };
            let e = in_pack
                .get(&id)
                .ok_or_else(|| anyhow::anyhow!("blob {} is not indexed", &b[..16]))?;
            plan.push((id, location(&s.slots[slot as usize].0, e)));
        }
        let mut reader = ArtifactReader::open(repo, vec![store.clone()], a, plan)?;
        std::io::copy(&mut reader, &mut std::io::sink())
            .map_err(|e| anyhow::anyhow!("artifact '{}': {e}", a.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relate_finds_each_manifests_packs_and_counts_unindexed_blobs() {
        let id = |n: u8| [n; 32];
        // Blob 1 is in slots 4 and 2 (a race stored it twice), 3 in slot 0;
        // blob 2 is in no index. Manifest 0 names 1 and 2, manifest 1 names
        // 1 and 3, manifest 2 names 2.
        let indexed = [(id(3), 0), (id(1), 4), (id(1), 2)];
        let refs = [(id(1), 0), (id(2), 0), (id(1), 1), (id(3), 1), (id(2), 2)];
        // Through the sorted entries (structure) and the table (lookups).
        let mut entries = extsort::sorted(&indexed);
        let mut missing = vec![0, 0, 0];
        let used = relate(
            extsort::sorted(&refs),
            |b| seek(&mut entries, b),
            &mut missing,
        )
        .unwrap();
        assert_eq!(
            used.into_iter().collect::<Vec<_>>(),
            [(0, 2), (1, 0), (1, 2)]
        );
        assert_eq!(missing, [1, 0, 1]);
        let mut table = BlobTable::new();
        for (b, slot) in indexed {
            table.push(b, slot);
        }
        table.finish();
        let mut missing = vec![0, 0, 0];
        let used = relate(extsort::sorted(&refs), |b| Ok(table.get(b)), &mut missing).unwrap();
        assert_eq!(
            used.into_iter().collect::<Vec<_>>(),
            [(0, 2), (1, 0), (1, 2)]
        );
        assert_eq!(missing, [1, 0, 1]);
    }

    #[test]
    fn samples_rotate_through_every_pack() {
        let packs: Vec<String> = (0..40).map(|i| format!("{i:064x}")).collect();
        let mut last_read: HashMap<String, String> = HashMap::new();
        let mut runs = 0;
        // 5 %: 2 packs a run, the least recently read first: all 40 in 20 runs.
        while last_read.len() < packs.len() {
            runs += 1;
            let day = format!("2026-01-{runs:02}T00:00:00.000Z");
            let chosen = choose_sample(&packs, 5.0, &last_read);
            assert_eq!(chosen.len(), 2);
            for p in chosen {
                assert!(
                    !last_read.contains_key(p),
                    "read again before the others: {p}"
                );
                last_read.insert(p.clone(), day.clone());
            }
        }
        assert_eq!(runs, 20);
        // Then the oldest reads come first.
        let next = choose_sample(&packs, 5.0, &last_read);
        assert!(next.iter().all(|p| last_read[*p].starts_with("2026-01-01")));
        // At least one pack, even of a tiny repository.
        assert_eq!(choose_sample(&packs[..3], 1.0, &HashMap::new()).len(), 1);
    }
}
