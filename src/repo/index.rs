//! Index objects: which pack holds which blob.
//!
//! Written after a backup's packs and before its manifest, so a manifest
//! never names a blob that no index locates. Sealed with the metadata key
//! (derived from the dedup key): a write-only host can rebuild its dedup
//! index from them without the age identity.
//!
//! Plaintext before zstd and sealing (little-endian):
//! ```text
//! "VCIDX001", pack count u32,
//! per pack: pack name (32 raw bytes), entry count u32,
//!   per entry: id[32] flags[1] offset u32 stored_len u32 raw_len u32
//! ```

use anyhow::{bail, Result};

use super::keys::DedupKey;
use super::pack::{BlobId, BlobLocation, PackEntry};

pub const INDEX_MAGIC: &[u8; 8] = b"VCIDX001";

/// Where the repository keeps what it learned from index objects: the
/// dedup cache (blob → pack location, which targets hold which pack, which
/// index objects were read from which target). The catalog implements it;
/// the repository never sees the catalog itself, so `repo` does not depend
/// on `catalog` (docs/ARCHITECTURE.md).
pub trait IndexStore {
    /// The index objects already read from `target`.
    fn index_objects_of(&self, target: &str) -> Result<Vec<String>>;
    /// Whether index object `name` of `target` was read already.
    fn has_index_object(&self, name: &str, target: &str) -> Result<bool>;
    /// Forgets what `target`'s index objects said (a prune rewrote them).
    fn drop_target_dedup(&mut self, target: &str) -> Result<()>;
    /// Whether the store knows which packs each of `target`'s index
    /// objects `names` lists (objects read by an older vaultctl do not).
    fn knows_index_packs(&self, target: &str, names: &[String]) -> Result<bool>;
    /// Index objects `names` are gone from `target`: forgets them and the
    /// packs no other known index object of `target` lists.
    fn forget_index_objects(&mut self, target: &str, names: &[String]) -> Result<()>;
    /// Whether `pack` is known to be on `target` (its entries recorded).
    fn has_pack_on(&self, pack: &str, target: &str) -> Result<bool>;
    /// Records the index objects `objects` read from `target`, each with
    /// the slots of the packs it lists: `packs` by slot, and `next` yields
    /// `(pack slot, entry)` in ascending blob id. All or nothing.
    fn add_sorted_index(
        &mut self,
        objects: &[(String, Vec<u32>)],
        packs: &[String],
        target: &str,
        next: &mut dyn FnMut() -> Result<Option<(u32, PackEntry)>>,
    ) -> Result<()>;
    /// Records the index object a backup committed on `targets`.
    fn add_index(&mut self, name: &str, packs: &[IndexedPack], targets: &[String]) -> Result<()>;
    /// `pack` is missing on `target` although an index lists it: never
    /// dedup against it there.
    fn forget_pack_on(&mut self, pack: &str, target: &str) -> Result<()>;
    /// Where blob `id` lives, on any target.
    fn blob_location(&self, id: &BlobId) -> Result<Option<BlobLocation>>;
    /// A lookup for one backup worker thread: blobs whose pack is on every
    /// one of `targets`.
    fn dedup_lookup(&self, targets: &[String]) -> Result<Box<dyn DedupLookup>>;
}

/// A backup worker's view of the dedup cache (its own connection).
pub trait DedupLookup: Send {
    fn lookup(&self, id: &BlobId) -> Result<Option<BlobLocation>>;
}

/// The entries of one pack, as recorded in an index object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPack {
    pub name: String,
    pub entries: Vec<PackEntry>,
}

/// The sealed index object of `packs`, its entries compressed as they are
/// written ([`super::format::seal_metadata`]): besides the entries, only
/// the compressed object is in memory.
pub fn encode(packs: &[IndexedPack], key: &DedupKey) -> Result<Vec<u8>> {
    let entries: usize = packs.iter().map(|p| p.entries.len()).sum();
    // Room for the whole object: ids do not compress, so it is about the
    // plaintext's size (the nonce, zstd's few bytes and the tag on top).
    let out = Vec::with_capacity(1024 + packs.len() * PACK_LEN + entries * ENTRY_LEN);
    super::format::seal_metadata(key, out, |z| {
        z.write_all(INDEX_MAGIC)?;
        z.write_all(&(packs.len() as u32).to_le_bytes())?;
        for p in packs {
            let mut raw = [0u8; 32];
            if p.name.len() != 64 || hex::decode_to_slice(&p.name, &mut raw).is_err() {
                bail!("bad pack name {}", p.name);
            }
            z.write_all(&raw)?;
            z.write_all(&(p.entries.len() as u32).to_le_bytes())?;
            for e in &p.entries {
                z.write_all(&entry_bytes(e))?;
            }
        }
        Ok(())
    })
}

/// Bytes of one entry in the plaintext.
pub(super) const ENTRY_LEN: usize = 32 + 1 + 4 + 4 + 4;

/// One entry as the plaintext holds it (also the layout of a backup's
/// spooled entries, [`super::spill::PackSpool`]).
pub(super) fn entry_bytes(e: &PackEntry) -> [u8; ENTRY_LEN] {
    let mut b = [0u8; ENTRY_LEN];
    b[..32].copy_from_slice(&e.id);
    b[32] = e.flags;
    b[33..37].copy_from_slice(&e.offset.to_le_bytes());
    b[37..41].copy_from_slice(&e.stored_len.to_le_bytes());
    b[41..45].copy_from_slice(&e.raw_len.to_le_bytes());
    b
}

/// The entry [`entry_bytes`] wrote.
pub(super) fn entry_from(b: &[u8; ENTRY_LEN]) -> PackEntry {
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    PackEntry {
        id: b[..32].try_into().unwrap(),
        flags: b[32],
        offset: u32_at(33),
        stored_len: u32_at(37),
        raw_len: u32_at(41),
    }
}
/// Bytes of a pack's name and entry count in the plaintext.
const PACK_LEN: usize = 32 + 4;

/// Opens, decompresses (with a ceiling: a zstd bomb fails) and parses an
/// index object; every count is checked against the bytes that remain
/// before anything is allocated for it.
pub fn decode(stored: &[u8], key: &DedupKey) -> Result<Vec<IndexedPack>> {
    let compressed = key.open(stored)?;
    let plain = super::format::decompress_metadata(&compressed, "index object")?;
    let mut r = Cursor {
        buf: &plain,
        pos: 0,
    };
    if r.take(8)? != INDEX_MAGIC {
        bail!("not a vaultctl index (bad magic)");
    }
    let n = r.u32()? as usize;
    if n > r.remaining() / PACK_LEN {
        bail!("index object claims {n} packs, more than it holds");
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let name = hex::encode(r.take(32)?);
        let count = r.u32()? as usize;
        if count > r.remaining() / ENTRY_LEN {
            bail!("index object claims {count} entries for pack {name}, more than it holds");
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            entries.push(entry_from(r.take(ENTRY_LEN)?.try_into().unwrap()));
        }
        out.push(IndexedPack { name, entries });
    }
    Ok(out)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.pos + n > self.buf.len() {
            bail!("index object is truncated");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let key = DedupKey::generate();
        let packs = vec![IndexedPack {
            name: "ab".repeat(32),
            entries: vec![PackEntry {
                id: [3; 32],
                flags: 1,
                raw_len: 10,
                stored_len: 5,
                offset: 8,
            }],
        }];
        let stored = encode(&packs, &key).unwrap();
        assert_eq!(decode(&stored, &key).unwrap(), packs);
        assert!(decode(&stored, &DedupKey::generate()).is_err());
    }

    /// Many packs and entries (streamed through zstd, sealed in place)
    /// decode to the same packs; an object written the way earlier
    /// versions wrote it (the plaintext compressed whole) still decodes.
    #[test]
    fn a_large_index_streams_and_old_objects_still_decode() {
        let key = DedupKey::generate();
        let packs: Vec<IndexedPack> = (0..40u32)
            .map(|p| IndexedPack {
                name: hex::encode(blake3::hash(&p.to_le_bytes()).as_bytes()),
                entries: (0..2_500u32)
                    .map(|i| PackEntry {
                        id: *blake3::hash(&(p * 10_000 + i).to_le_bytes()).as_bytes(),
                        flags: (i % 2) as u8,
                        raw_len: i * 7,
                        stored_len: i * 3,
                        offset: i * 40,
                    })
                    .collect(),
            })
            .collect();
        let stored = encode(&packs, &key).unwrap();
        assert_eq!(decode(&stored, &key).unwrap(), packs);
        let mut plain = INDEX_MAGIC.to_vec();
        plain.extend_from_slice(&1u32.to_le_bytes());
        plain.extend_from_slice(&hex::decode(&packs[0].name).unwrap());
        plain.extend_from_slice(&1u32.to_le_bytes());
        let e = &packs[0].entries[1];
        plain.extend_from_slice(&e.id);
        plain.push(e.flags);
        for n in [e.offset, e.stored_len, e.raw_len] {
            plain.extend_from_slice(&n.to_le_bytes());
        }
        let old = key.seal(&zstd::bulk::compress(&plain, 3).unwrap());
        let decoded = decode(&old, &key).unwrap();
        assert_eq!(decoded[0].name, packs[0].name);
        assert_eq!(decoded[0].entries, std::slice::from_ref(e));
        let bad = IndexedPack {
            name: "xy".repeat(32),
            entries: Vec::new(),
        };
        assert!(encode(&[bad], &key).is_err());
    }

    #[test]
    fn counts_beyond_the_object_are_refused() {
        let key = DedupKey::generate();
        let seal = |plain: &[u8]| key.seal(&zstd::bulk::compress(plain, 1).unwrap());
        let mut plain = INDEX_MAGIC.to_vec();
        plain.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = decode(&seal(&plain), &key).unwrap_err().to_string();
        assert!(err.contains("claims 4294967295 packs"), "{err}");
        let mut plain = INDEX_MAGIC.to_vec();
        plain.extend_from_slice(&1u32.to_le_bytes());
        plain.extend_from_slice(&[7; 32]);
        plain.extend_from_slice(&(1u32 << 30).to_le_bytes());
        let err = decode(&seal(&plain), &key).unwrap_err().to_string();
        assert!(err.contains("claims 1073741824 entries"), "{err}");
    }

    #[test]
    fn zstd_bomb_is_refused() {
        let key = DedupKey::generate();
        // 64 MiB of zeros compresses to a few KiB: far above the ceiling.
        let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 1).unwrap();
        assert!(bomb.len() < 64 << 10);
        let err = decode(&key.seal(&bomb), &key).unwrap_err().to_string();
        assert!(err.contains("zstd bomb"), "{err}");
    }
}
