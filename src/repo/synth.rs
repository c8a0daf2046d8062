//! Synthetic repositories in the real format, for scale benchmarks and
//! tests: `blobs` tiny blobs in `packs` packs (one index object per pack)
//! and `manifests` backups of `sources` sources, one a night.
//!
//! Backup `m` (night `m / sources`, source `m % sources`) owns the `m`-th
//! run of `blobs / manifests` consecutive blobs and also references the run
//! of the same source's previous night, so consecutive backups share blobs
//! the way nightly backups do. Blob `j`'s plaintext is `blob <j>\n`, so
//! restore and `verify --read-data` check real ids and hashes. The point is
//! the count of blobs, packs, index entries and manifests, not their size.

use anyhow::{bail, Result};
use bytes::Bytes;

use super::format::{content_name, index_path, manifest_path, pack_path};
use super::index::{self, IndexedPack};
use super::keys::{DedupKey, Recipient};
use super::manifest::{self, Artifact, Body, Header};
use super::pack::{BlobId, PackBuilder};
use crate::storage::Store;

/// The shape of a synthetic repository.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub blobs: u64,
    pub packs: u64,
    pub manifests: u64,
    pub sources: u64,
}

/// What [`build`] wrote.
#[derive(Debug, Default, Clone)]
pub struct Built {
    pub blobs: u64,
    pub packs: u64,
    pub index_objects: u64,
    pub manifests: u64,
    /// Backup ids, oldest night first.
    pub backup_ids: Vec<String>,
}

/// The plaintext of blob `j`.
pub fn blob_plaintext(j: u64) -> Vec<u8> {
    format!("blob {j}\n").into_bytes()
}

/// Name of source `s`.
pub fn source_name(s: u64) -> String {
    format!("synth-{s:03}")
}

/// Writes the repository's packs, index objects and manifests to `store`
/// (which must already hold the repository's `config` and keys).
pub fn build(
    store: &Store,
    key: &DedupKey,
    recipients: &[Recipient],
    shape: Shape,
) -> Result<Built> {
    let Shape {
        blobs,
        packs,
        manifests,
        sources,
    } = shape;
    if blobs == 0 || packs == 0 || manifests == 0 || sources == 0 {
        bail!("every count of the synthetic repository must be at least 1");
    }
    if manifests > blobs || packs > blobs {
        bail!("a synthetic repository needs at least as many blobs as manifests and packs");
    }
    let run = blobs / manifests;
    let per_pack = blobs.div_ceil(packs);
    // Blob ids in order, and the pack each lives in (by pack number).
    let ids: Vec<BlobId> = (0..blobs)
        .map(|j| key.blob_id(&blob_plaintext(j)))
        .collect();
    let mut pack_names: Vec<String> = Vec::with_capacity(packs as usize);
    let mut built = Built::default();
    let mut start = 0u64;
    while start < blobs {
        let end = (start + per_pack).min(blobs);
        let mut b = PackBuilder::new(recipients, ((end - start) * 60) as usize)?;
        for j in start..end {
            let plain = blob_plaintext(j);
            b.add(ids[j as usize], 0, plain.len() as u32, &plain)?;
        }
        let sealed = b.seal()?;
        store.put(&pack_path(&sealed.name), sealed.bytes)?;
        let idx = index::encode(
            &[IndexedPack {
                name: sealed.name.clone(),
                entries: sealed.entries,
            }],
            key,
        )?;
        store.put(&index_path(&content_name(&idx)), Bytes::from(idx))?;
        pack_names.push(sealed.name);
        built.packs += 1;
        built.index_objects += 1;
        start = end;
    }
    built.blobs = blobs;
    let epoch = time::macros::datetime!(2025-01-01 02:00 UTC);
    for m in 0..manifests {
        let (night, source) = (m / sources, m % sources);
        let own_end = if m + 1 == manifests {
            blobs
        } else {
            (m + 1) * run
        };
        let mut range: Vec<u64> = (m * run..own_end).collect();
        if m >= sources {
            range.splice(0..0, (m - sources) * run..(m - sources + 1) * run);
        }
        let mut pack_list: Vec<String> = range
            .iter()
            .map(|j| pack_names[(j / per_pack) as usize].clone())
            .collect();
        pack_list.sort();
        pack_list.dedup();
        let mut blob_hex: Vec<String> = range
            .iter()
            .map(|j| hex::encode(ids[*j as usize]))
            .collect();
        let stream: Vec<String> = blob_hex.clone();
        blob_hex.sort();
        blob_hex.dedup();
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        for j in &range {
            let p = blob_plaintext(*j);
            size += p.len() as u64;
            hasher.update(&p);
        }
        let started =
            epoch + time::Duration::days(night as i64) + time::Duration::seconds(source as i64);
        let id = super::format::new_backup_id();
        let header = Header {
            version: manifest::MANIFEST_VERSION,
            id: id.clone(),
            source: source_name(source),
            kind: "command".into(),
            host: "synth".into(),
            started_at: crate::clock::format(started),
            finished_at: crate::clock::format(started + time::Duration::seconds(1)),
            duration_ms: 1000,
            tags: Vec::new(),
            bytes: size,
            stored_bytes: (own_end - m * run) * 16,
            packs: pack_list,
            blobs: blob_hex,
            wal_start: None,
        };
        let body = Body {
            id: id.clone(),
            note: None,
            tenants: Vec::new(),
            engine: serde_json::json!({ "command": ["synth"] }),
            artifacts: vec![Artifact {
                name: "stdout".into(),
                format: "stream".into(),
                size,
                blake3: hasher.finalize().to_hex().to_string(),
                blobs: stream,
            }],
        };
        let bytes = manifest::encode(&header, &body, key, recipients)?;
        store.put(&manifest_path(&id), Bytes::from(bytes))?;
        built.backup_ids.push(id);
        built.manifests += 1;
    }
    Ok(built)
}
