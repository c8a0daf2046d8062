//! Object names and the plaintext repository `config` object.
//!
//! Layout under a target's prefix (see docs/FORMAT.md):
//! `config`, `keys/dedup.age`, `packs/<2 hex>/<64 hex>`, `index/<64 hex>`,
//! `snapshots/<id>`. Pack and index names are the BLAKE3 of their stored
//! bytes, so bit rot is detectable without any key.

use serde::{Deserialize, Serialize};

use super::chunker::ChunkerParams;

/// The only repository format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
pub const FORMAT_NAME: &str = "vaultctl-repository";

pub const CONFIG_OBJECT: &str = "config";
pub const DEDUP_KEY_OBJECT: &str = "keys/dedup.age";
pub const PACKS_DIR: &str = "packs";
pub const INDEX_DIR: &str = "index";
pub const SNAPSHOTS_DIR: &str = "snapshots";

pub fn pack_path(name: &str) -> String {
    format!("{PACKS_DIR}/{}/{name}", &name[..2])
}

pub fn index_path(name: &str) -> String {
    format!("{INDEX_DIR}/{name}")
}

pub fn manifest_path(id: &str) -> String {
    format!("{SNAPSHOTS_DIR}/{id}")
}

/// A new backup (manifest) id: 16 random hex digits. Lock objects are
/// named the same way.
pub fn new_backup_id() -> String {
    let mut b = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    hex::encode(b)
}

/// Content address of a stored object: hex BLAKE3 of its bytes.
pub fn content_name(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

pub fn is_hex_name(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The largest blob (chunk) any reader accepts: 64 MiB. The chunker's
/// `max_size` may not exceed it, and a pack or index entry claiming a
/// longer blob is refused before anything is allocated for it.
pub const MAX_BLOB_SIZE: u64 = 64 << 20;

/// The most any decompression of metadata (manifest headers, index
/// objects) may produce, whatever the object says: 1 GiB.
pub const MAX_METADATA_PLAIN: u64 = 1 << 30;
/// Every metadata object may decompress to this many bytes (1 MiB),
/// however small it is.
pub const METADATA_PLAIN_FLOOR: u64 = 1 << 20;
/// Above the floor, metadata may expand at most this many times its
/// compressed size (real headers and indexes expand about 1 to 2 times).
pub const METADATA_MAX_RATIO: u64 = 32;

/// The decompression ceiling of a metadata object of `compressed` bytes:
/// `min(1 GiB, max(1 MiB, 32 × compressed))`.
pub fn metadata_ceiling(compressed: usize) -> u64 {
    (compressed as u64)
        .saturating_mul(METADATA_MAX_RATIO)
        .clamp(METADATA_PLAIN_FLOOR, MAX_METADATA_PLAIN)
}

/// Metadata (an index object, a manifest header) as `write` writes it,
/// compressed with zstd on the way, appended to `out` and sealed there
/// with `key` ([`DedupKey::seal_in_place`](super::keys::DedupKey::seal_in_place)):
/// what `key.open` and [`decompress_metadata`] read back, with only the
/// compressed bytes in memory (no plaintext or second sealed copy of an
/// object of millions of blob ids).
pub fn seal_metadata(
    key: &super::keys::DedupKey,
    mut out: Vec<u8>,
    write: impl FnOnce(&mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<u8>> {
    let at = out.len();
    out.resize(at + super::keys::SEAL_NONCE, 0);
    let mut z = zstd::stream::write::Encoder::new(out, 3)?;
    write_buffered(&mut z, write)?;
    Ok(key.seal_in_place(z.finish()?, at))
}

/// Runs `write` into `out` through a 64 KiB buffer, flushed at the end:
/// JSON comes in pieces of a few bytes, each otherwise a call into zstd or
/// the encryption (a third of encoding 10,000 artifacts).
pub fn write_buffered(
    out: &mut impl std::io::Write,
    write: impl FnOnce(&mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, out);
    write(&mut buffered)?;
    std::io::Write::flush(&mut buffered)?;
    Ok(())
}

/// Decompresses a zstd stream read from storage, refusing to produce more
/// than [`metadata_ceiling`] bytes (a zstd bomb fails here, after at most
/// that much memory, instead of exhausting it). `what` names the object.
pub fn decompress_metadata(compressed: &[u8], what: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let limit = metadata_ceiling(compressed.len());
    let decoder = zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| anyhow::anyhow!("{what} does not decompress: {e}"))?;
    let mut out = Vec::new();
    decoder
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| anyhow::anyhow!("{what} does not decompress: {e}"))?;
    if out.len() as u64 > limit {
        anyhow::bail!(
            "{what} decompresses to more than {limit} bytes from {} stored bytes (the most vaultctl accepts); it is damaged or hostile (a zstd bomb)",
            compressed.len()
        );
    }
    Ok(out)
}

/// The plaintext `config` object: what a reader needs before any key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RepoConfig {
    pub format: String,
    pub version: u32,
    pub repo_id: String,
    pub created_at: String,
    pub chunker: ChunkerParams,
    /// Public fingerprint of the dedup key (see `DedupKey::check_value`).
    pub dedup_key_check: String,
}

impl RepoConfig {
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct Probe {
            format: Option<String>,
            version: Option<u32>,
        }
        let probe: Probe = serde_json::from_slice(bytes)
            .map_err(|e| anyhow::anyhow!("the repository config object is not valid JSON: {e}"))?;
        if probe.format.as_deref() != Some(FORMAT_NAME) {
            anyhow::bail!("the object named `config` is not a vaultctl repository config");
        }
        match probe.version {
            Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(crate::error::Failure::new(
                    crate::error::ExitStatus::Failure,
                    format!("the repository uses format version {v}; this vaultctl reads version {FORMAT_VERSION} only."),
                )
                .with_remedy("Install the vaultctl release that created the repository, or a newer one.")
                .into())
            }
            None => anyhow::bail!("the repository config has no version"),
        }
        let config: RepoConfig = serde_json::from_slice(bytes)?;
        let c = &config.chunker;
        if !(1024 <= c.min_size
            && c.min_size <= c.avg_size
            && c.avg_size <= c.max_size
            && c.max_size as u64 <= MAX_BLOB_SIZE)
        {
            anyhow::bail!(
                "the repository config has impossible chunk sizes (min {}, avg {}, max {}; they must grow from at least 1 KiB to at most {} bytes): the object is damaged or was tampered with",
                c.min_size,
                c.avg_size,
                c.max_size,
                MAX_BLOB_SIZE
            );
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backup_ids_are_16_random_hex_digits() {
        let (a, b) = (super::new_backup_id(), super::new_backup_id());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
