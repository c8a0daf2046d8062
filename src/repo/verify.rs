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

use super::format::{self, content_name, INDEX_DIR, PACKS_DIR, SNAPSHOTS_DIR};
use super::keys::{self, Identity};
use super::manifest;
use super::pack::{parse_entries, read_blob, BlobId, BlobLocation};
use super::restore::ArtifactReader;
use super::Repository;
use crate::progress::Progress;
use crate::storage::Store;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Structure only: manifests, indexes, pack existence.
    Structure,
    /// Download and check every pack.
    ReadData,
    /// Download and check this percentage of packs.
    Sample(f64),
}

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
}

pub fn mode_name(mode: Mode) -> String {
    match mode {
        Mode::Structure => "structure".into(),
        Mode::ReadData => "read-data".into(),
        Mode::Sample(p) => format!("sample {p}%"),
    }
}

pub fn verify_target(
    repo: &Repository,
    store: &Store,
    mode: Mode,
    identities: Option<&[Identity]>,
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

    // Index objects → blob locations.
    let mut locations: HashMap<BlobId, BlobLocation> = HashMap::new();
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
                    for e in p.entries {
                        locations.entry(e.id).or_insert(BlobLocation {
                            pack: p.name.clone(),
                            offset: e.offset,
                            stored_len: e.stored_len,
                            raw_len: e.raw_len,
                            flags: e.flags,
                        });
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

    // Manifests → which backups need which packs.
    let mut pack_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut manifests: Vec<(manifest::Header, Vec<u8>)> = Vec::new();
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
        let mut missing_blobs = 0;
        let mut missing_packs = BTreeSet::new();
        for b in &header.blobs {
            let Some(id_bytes) = hex::decode(b).ok().and_then(|v| <BlobId>::try_from(v).ok())
            else {
                missing_blobs += 1;
                continue;
            };
            match locations.get(&id_bytes) {
                None => missing_blobs += 1,
                Some(loc) => {
                    pack_users
                        .entry(loc.pack.clone())
                        .or_default()
                        .insert(header.id.clone());
                    if !packs_listed.contains_key(&loc.pack) {
                        missing_packs.insert(loc.pack.clone());
                    }
                }
            }
        }
        if missing_blobs > 0 {
            problems.push(Problem {
                message: format!(
                    "backup {} names {missing_blobs} blob(s) that no index locates",
                    header.id
                ),
                backups: vec![header.id.clone()],
            });
        }
        for p in missing_packs {
            problems.push(Problem {
                message: format!("pack {p} needed by backup {} is missing", header.id),
                backups: vec![header.id.clone()],
            });
        }
        manifests.push((header, bytes.to_vec()));
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
        Mode::Sample(pct) => {
            let mut all: Vec<&String> = packs_listed.keys().collect();
            rand::seq::SliceRandom::shuffle(&mut all[..], &mut rand::thread_rng());
            let n = ((all.len() as f64 * pct / 100.0).ceil() as usize).min(all.len());
            all.truncate(n.max(1).min(all.len()));
            all
        }
    };
    to_read.sort();
    if !to_read.is_empty() {
        progress.start(
            &format!("verify packs on {}", store.name),
            Some(to_read.iter().map(|n| packs_listed[*n]).sum()),
        );
    }
    let mut packs_checked = 0;
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
            continue;
        }
        if let Some(ids) = identities {
            if let Err(e) = check_pack_content(repo, name, &bytes, ids, &locations) {
                damaged(
                    format!("pack {name}: {}", crate::error::paragraph(&e)),
                    users(),
                );
            }
        }
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
        for (header, bytes) in &manifests {
            let id = &header.id;
            if damaged.contains(id) {
                continue;
            }
            if let Err(e) = check_streams(repo, store, header, bytes, ids, &locations) {
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
    })
}

fn check_pack_content(
    repo: &Repository,
    name: &str,
    bytes: &[u8],
    ids: &[Identity],
    locations: &HashMap<BlobId, BlobLocation>,
) -> Result<()> {
    let plain = keys::decrypt(ids, bytes)?;
    for e in parse_entries(&plain)? {
        let loc = BlobLocation {
            pack: name.to_string(),
            offset: e.offset,
            stored_len: e.stored_len,
            raw_len: e.raw_len,
            flags: e.flags,
        };
        read_blob(&plain, &loc, &e.id, &repo.dedup)?;
        if let Some(indexed) = locations.get(&e.id) {
            if indexed.pack == name && *indexed != loc {
                anyhow::bail!(
                    "the index disagrees with the pack about blob {}",
                    hex::encode(&e.id[..8])
                );
            }
        }
    }
    Ok(())
}

fn check_streams(
    repo: &Repository,
    store: &Store,
    header: &manifest::Header,
    bytes: &[u8],
    ids: &[Identity],
    locations: &HashMap<BlobId, BlobLocation>,
) -> Result<()> {
    let body = manifest::decode_body(bytes, ids, header)?;
    for a in &body.artifacts {
        let mut plan = Vec::with_capacity(a.blobs.len());
        for b in &a.blobs {
            let id: BlobId = hex::decode(b)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| anyhow::anyhow!("invalid blob id {b}"))?;
            let loc = locations
                .get(&id)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("blob {} is not indexed", &b[..16]))?;
            plan.push((id, loc));
        }
        let mut reader = ArtifactReader::open(repo, vec![store.clone()], a, plan)?;
        std::io::copy(&mut reader, &mut std::io::sink())
            .map_err(|e| anyhow::anyhow!("artifact '{}': {e}", a.name))?;
    }
    Ok(())
}
