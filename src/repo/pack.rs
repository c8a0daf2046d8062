//! Packs: many blobs in one age-encrypted object.
//!
//! Plaintext layout (all integers little-endian):
//! ```text
//! "VCPACK01"                                  magic, 8 bytes
//! blob 0 stored bytes, blob 1 stored bytes…   (zstd frame or raw)
//! N entries of 41 bytes: id[32] flags[1] raw_len u32 stored_len u32
//! N u32, "VCPKEND1"                           trailer, 12 bytes
//! ```
//! Blob i starts at 8 + sum of the stored lengths before it. The whole
//! plaintext is one standard age file, so `age -d` opens a pack.

use std::io::Write;

use anyhow::{bail, Result};

use super::keys::{encrypt_writer, DedupKey, Recipient};

pub const PACK_MAGIC: &[u8; 8] = b"VCPACK01";
pub const PACK_END: &[u8; 8] = b"VCPKEND1";
pub const ENTRY_LEN: usize = 41;
/// Blob flag: the stored bytes are a zstd frame.
pub const FLAG_ZSTD: u8 = 1;

pub type BlobId = [u8; 32];

/// Where a blob lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: String,
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
    pub flags: u8,
}

impl BlobLocation {
    /// The pack's name shortened for messages; whole if it is shorter (a
    /// location read from a damaged or hostile index may name anything).
    pub fn short_pack(&self) -> &str {
        self.pack.get(..12).unwrap_or(&self.pack)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackEntry {
    pub id: BlobId,
    pub flags: u8,
    pub raw_len: u32,
    pub stored_len: u32,
    pub offset: u32,
}

/// Builds one pack, encrypting as blobs arrive (no plaintext copy is kept).
pub struct PackBuilder {
    writer: age::stream::StreamWriter<Vec<u8>>,
    entries: Vec<PackEntry>,
    offset: u32,
}

/// A finished pack, ready to upload.
pub struct SealedPack {
    pub name: String,
    pub bytes: bytes::Bytes,
    pub entries: Vec<PackEntry>,
    /// Sum of the blobs' stored lengths (the payload).
    pub payload: u64,
}

impl PackBuilder {
    pub fn new(recipients: &[Recipient], capacity: usize) -> Result<Self> {
        let mut writer = encrypt_writer(
            recipients,
            Vec::with_capacity(capacity + capacity / 64 + 4096),
        )?;
        writer.write_all(PACK_MAGIC)?;
        Ok(PackBuilder {
            writer,
            entries: Vec::new(),
            offset: PACK_MAGIC.len() as u32,
        })
    }

    /// Plaintext bytes written so far.
    pub fn len(&self) -> usize {
        self.offset as usize
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn add(&mut self, id: BlobId, flags: u8, raw_len: u32, stored: &[u8]) -> Result<PackEntry> {
        self.writer.write_all(stored)?;
        let e = PackEntry {
            id,
            flags,
            raw_len,
            stored_len: stored.len() as u32,
            offset: self.offset,
        };
        self.offset += stored.len() as u32;
        self.entries.push(e.clone());
        Ok(e)
    }

    pub fn seal(mut self) -> Result<SealedPack> {
        let mut trailer = Vec::with_capacity(self.entries.len() * ENTRY_LEN + 12);
        for e in &self.entries {
            trailer.extend_from_slice(&e.id);
            trailer.push(e.flags);
            trailer.extend_from_slice(&e.raw_len.to_le_bytes());
            trailer.extend_from_slice(&e.stored_len.to_le_bytes());
        }
        trailer.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        trailer.extend_from_slice(PACK_END);
        self.writer.write_all(&trailer)?;
        let bytes = self.writer.finish()?;
        let name = super::format::content_name(&bytes);
        let payload = self.entries.iter().map(|e| e.stored_len as u64).sum();
        Ok(SealedPack {
            name,
            bytes: bytes.into(),
            entries: self.entries,
            payload,
        })
    }
}

/// Parses a decrypted pack's trailer into its entries.
pub fn parse_entries(plain: &[u8]) -> Result<Vec<PackEntry>> {
    if plain.len() < PACK_MAGIC.len() + 12
        || &plain[..8] != PACK_MAGIC
        || &plain[plain.len() - 8..] != PACK_END
    {
        bail!("not a vaultctl pack (bad magic)");
    }
    let n =
        u32::from_le_bytes(plain[plain.len() - 12..plain.len() - 8].try_into().unwrap()) as usize;
    let table_len = n
        .checked_mul(ENTRY_LEN)
        .ok_or_else(|| anyhow::anyhow!("pack entry count overflows"))?;
    if table_len + 12 + 8 > plain.len() {
        bail!("pack trailer claims {n} entries, more than the pack holds");
    }
    let table = &plain[plain.len() - 12 - table_len..plain.len() - 12];
    let mut offset = PACK_MAGIC.len() as u32;
    let mut out = Vec::with_capacity(n);
    for rec in table.chunks_exact(ENTRY_LEN) {
        let e = PackEntry {
            id: rec[..32].try_into().unwrap(),
            flags: rec[32],
            raw_len: u32::from_le_bytes(rec[33..37].try_into().unwrap()),
            stored_len: u32::from_le_bytes(rec[37..41].try_into().unwrap()),
            offset,
        };
        offset = offset
            .checked_add(e.stored_len)
            .filter(|end| (*end as usize) <= plain.len() - 12 - table_len)
            .ok_or_else(|| anyhow::anyhow!("pack entry runs past the data area"))?;
        out.push(e);
    }
    Ok(out)
}

/// Extracts a blob from a decrypted pack, decompresses it and checks its id.
pub fn read_blob(plain: &[u8], loc: &BlobLocation, id: &BlobId, key: &DedupKey) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    read_blob_into(plain, loc, id, key, &mut out)?;
    Ok(out)
}

/// [`read_blob`] appending to `out` (the stream restore decodes runs of
/// blobs into one buffer); on an error `out` keeps only what it had.
pub fn read_blob_into(
    plain: &[u8],
    loc: &BlobLocation,
    id: &BlobId,
    key: &DedupKey,
    out: &mut Vec<u8>,
) -> Result<()> {
    let start = loc.offset as usize;
    let end = start + loc.stored_len as usize;
    if end > plain.len() {
        bail!(
            "blob {} lies outside pack {}",
            hex::encode(&id[..8]),
            loc.short_pack()
        );
    }
    let stored = &plain[start..end];
    if loc.raw_len as u64 > super::format::MAX_BLOB_SIZE {
        bail!(
            "blob {} in pack {} claims {} bytes, more than any blob holds (damaged or hostile index)",
            hex::encode(&id[..8]),
            loc.short_pack(),
            loc.raw_len
        );
    }
    let base = out.len();
    let len = if loc.flags & FLAG_ZSTD != 0 {
        out.resize(base + loc.raw_len as usize, 0);
        decompress_into(stored, &mut out[base..]).map_err(|e| {
            out.truncate(base);
            anyhow::anyhow!(
                "blob {} in pack {} does not decompress: {e}",
                hex::encode(&id[..8]),
                loc.short_pack()
            )
        })?
    } else {
        out.extend_from_slice(stored);
        stored.len()
    };
    if len != loc.raw_len as usize || &key.blob_id(&out[base..base + len]) != id {
        out.truncate(base);
        bail!(
            "blob {} in pack {} does not match its id (corrupt data)",
            hex::encode(&id[..8]),
            loc.short_pack()
        );
    }
    Ok(())
}

/// Decompresses a zstd frame into `out` with this thread's reused context
/// (creating one per blob is measurable in a restore).
fn decompress_into(stored: &[u8], out: &mut [u8]) -> std::io::Result<usize> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut()
            .expect("set above")
            .decompress_to_buffer(stored, out)
    })
}

/// zstd's parameters for level 3 on large inputs (`ZSTD_dfast`, window 2
/// MiB, hash table 2^17, chain table 2^16, one search, matches of 5 bytes or
/// more). For a blob of 256 KiB or less zstd would otherwise pick its
/// small-input row of level 3 (greedy search, smaller tables): on a
/// pg_dump-like stream cut into 256 KiB pieces that stores 2.6-4 % more
/// bytes and is no faster. Adjusted to each blob's size as usual (a 2 KiB
/// tenant export gets small tables).
const LEVEL3: [zstd::stream::raw::CParameter; 6] = {
    use zstd::stream::raw::CParameter::*;
    [
        Strategy(zstd::zstd_safe::Strategy::ZSTD_dfast),
        WindowLog(21),
        HashLog(17),
        ChainLog(16),
        SearchLog(1),
        MinMatch(5),
    ]
};

/// The compressor of a backup's blobs at zstd `level`: level 3 (the
/// default) with [`LEVEL3`]'s parameters for every blob size, other levels
/// as zstd defines them.
pub fn blob_compressor(level: i32) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    if level == 3 {
        for p in LEVEL3 {
            c.set_parameter(p)?;
        }
    }
    Ok(c)
}

/// Compresses a blob with zstd unless that does not make it smaller.
pub fn compress(compressor: &mut zstd::bulk::Compressor<'_>, data: &[u8]) -> (u8, Option<Vec<u8>>) {
    match compressor.compress(data) {
        Ok(c) if c.len() < data.len() => (FLAG_ZSTD, Some(c)),
        _ => (0, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::keys::{decrypt, Identity};

    #[test]
    fn a_short_or_odd_pack_name_never_panics_a_message() {
        let at = |pack: &str| BlobLocation {
            pack: pack.into(),
            offset: 0,
            stored_len: 0,
            raw_len: 0,
            flags: 0,
        };
        assert_eq!(at(&"ab".repeat(32)).short_pack(), "abababababab");
        assert_eq!(at("abc").short_pack(), "abc");
        // A multibyte character across byte 12: the whole name, no panic.
        assert_eq!(at("abcdefghijkü").short_pack(), "abcdefghijkü");
    }

    /// Text like a dump's rows: words from a small vocabulary, numbers.
    fn rows(n: usize) -> Vec<u8> {
        let words = [
            "pending", "shipped", "customer", "invoice", "berlin", "paris", "null",
        ];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut out = Vec::new();
        let mut id = 1000u64;
        while out.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            id += 1 + x % 3;
            let w = |k: u64| words[(k % words.len() as u64) as usize];
            out.extend_from_slice(
                format!(
                    "{id}\t{}\t{}\t{}.{:02}\t2026-11-{:02}\n",
                    w(x),
                    w(x >> 8),
                    x % 9999,
                    x % 100,
                    1 + x % 28
                )
                .as_bytes(),
            );
        }
        out.truncate(n);
        out
    }

    #[test]
    fn level_3_uses_the_large_input_parameters_at_every_blob_size() {
        let mut tuned = blob_compressor(3).unwrap();
        let mut plain = zstd::bulk::Compressor::new(3).unwrap();
        for n in [0, 100, 5_000, 200_000, 1 << 20] {
            let data = rows(n);
            let (flags, stored) = compress(&mut tuned, &data);
            let stored = stored.unwrap_or_else(|| data.clone());
            let back = if flags & FLAG_ZSTD != 0 {
                zstd::bulk::decompress(&stored, n).unwrap()
            } else {
                stored.clone()
            };
            assert_eq!(back, data, "{n} bytes");
            // Below 256 KiB zstd's own level 3 switches to other
            // parameters; the tuned compressor does not.
            let zstd3 = plain.compress(&data).unwrap();
            if (1000..=256 * 1024).contains(&n) {
                assert_ne!(
                    stored, zstd3,
                    "{n} bytes: zstd's small-input parameters were used"
                );
            }
        }
        // Other levels are zstd's.
        let data = rows(100_000);
        assert_eq!(
            blob_compressor(5).unwrap().compress(&data).unwrap(),
            zstd::bulk::compress(&data, 5).unwrap()
        );
    }

    #[test]
    fn pack_roundtrip() {
        let id = age::x25519::Identity::generate();
        let rcpt = vec![Recipient::X25519(id.to_public())];
        let key = DedupKey::generate();
        let mut b = PackBuilder::new(&rcpt, 1024).unwrap();
        let blobs: Vec<Vec<u8>> = vec![b"hello".repeat(100), b"world".to_vec()];
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        for data in &blobs {
            let (flags, comp) = compress(&mut c, data);
            b.add(
                key.blob_id(data),
                flags,
                data.len() as u32,
                comp.as_deref().unwrap_or(data),
            )
            .unwrap();
        }
        let sealed = b.seal().unwrap();
        assert_eq!(
            sealed.name,
            blake3::hash(&sealed.bytes).to_hex().to_string()
        );
        let plain = decrypt(&[Identity::X25519(id)], &sealed.bytes).unwrap();
        let entries = parse_entries(&plain).unwrap();
        assert_eq!(entries, sealed.entries);
        for (e, data) in entries.iter().zip(&blobs) {
            let loc = BlobLocation {
                pack: sealed.name.clone(),
                offset: e.offset,
                stored_len: e.stored_len,
                raw_len: e.raw_len,
                flags: e.flags,
            };
            assert_eq!(&read_blob(&plain, &loc, &e.id, &key).unwrap(), data);
        }
        assert_eq!(entries[0].flags, FLAG_ZSTD);
        assert_eq!(entries[1].flags, 0);
    }
}
