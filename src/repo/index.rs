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
use super::pack::{BlobId, PackEntry};

pub const INDEX_MAGIC: &[u8; 8] = b"VCIDX001";

/// The entries of one pack, as recorded in an index object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPack {
    pub name: String,
    pub entries: Vec<PackEntry>,
}

pub fn encode(packs: &[IndexedPack], key: &DedupKey) -> Result<Vec<u8>> {
    let mut plain = Vec::new();
    plain.extend_from_slice(INDEX_MAGIC);
    plain.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    for p in packs {
        let raw = hex::decode(&p.name)?;
        if raw.len() != 32 {
            bail!("bad pack name {}", p.name);
        }
        plain.extend_from_slice(&raw);
        plain.extend_from_slice(&(p.entries.len() as u32).to_le_bytes());
        for e in &p.entries {
            plain.extend_from_slice(&e.id);
            plain.push(e.flags);
            plain.extend_from_slice(&e.offset.to_le_bytes());
            plain.extend_from_slice(&e.stored_len.to_le_bytes());
            plain.extend_from_slice(&e.raw_len.to_le_bytes());
        }
    }
    let compressed = zstd::bulk::compress(&plain, 3)?;
    Ok(key.seal(&compressed))
}

pub fn decode(stored: &[u8], key: &DedupKey) -> Result<Vec<IndexedPack>> {
    let compressed = key.open(stored)?;
    let plain = zstd::stream::decode_all(&compressed[..])?;
    let mut r = Cursor {
        buf: &plain,
        pos: 0,
    };
    if r.take(8)? != INDEX_MAGIC {
        bail!("not a vaultctl index (bad magic)");
    }
    let n = r.u32()?;
    let mut out = Vec::new();
    for _ in 0..n {
        let name = hex::encode(r.take(32)?);
        let count = r.u32()?;
        let mut entries = Vec::with_capacity(count.min(1 << 20) as usize);
        for _ in 0..count {
            let id: BlobId = r.take(32)?.try_into().unwrap();
            let flags = r.take(1)?[0];
            let offset = r.u32()?;
            let stored_len = r.u32()?;
            let raw_len = r.u32()?;
            entries.push(PackEntry {
                id,
                flags,
                raw_len,
                stored_len,
                offset,
            });
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
}
