//! Manifests (snapshots): one object per backup, written last.
//!
//! A backup exists exactly when its manifest exists. The object has two
//! parts: a **header** sealed with the metadata key, holding only what
//! listing, retention and garbage collection need (so a write-only host can
//! do them), and a **body** encrypted to the age recipients, holding names,
//! notes, engine metadata and the ordered blob lists.
//!
//! ```text
//! "VCSNAP01", header length u32 LE, sealed(zstd(header JSON)), age(body JSON)
//! ```

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::keys::{decrypt, encrypt, DedupKey, Identity, Recipient};

pub const MANIFEST_MAGIC: &[u8; 8] = b"VCSNAP01";

/// What retention, GC and `list` need; readable with the dedup key alone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub version: u32,
    pub id: String,
    pub source: String,
    pub kind: String,
    pub host: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Plaintext bytes of all artifacts.
    pub bytes: u64,
    /// Stored bytes this backup added to the repository.
    pub stored_bytes: u64,
    /// Every distinct pack the backup's blobs live in.
    pub packs: Vec<String>,
    /// Every distinct blob id (hex), so integrity checks need no identity.
    pub blobs: Vec<String>,
    /// Base backups: where the WAL they need starts (WAL retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_start: Option<super::wal::WalStart>,
}

/// The readable part: only with the identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Body {
    pub id: String,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Source-specific facts (command argv, paths, server versions…).
    #[serde(default)]
    pub engine: serde_json::Value,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Artifact {
    pub name: String,
    /// `stream` (raw bytes) or `tar` (an archive restorable into a directory).
    pub format: String,
    pub size: u64,
    /// BLAKE3 of the whole plaintext stream, checked on restore.
    pub blake3: String,
    /// Blob ids (hex) in stream order.
    pub blobs: Vec<String>,
}

pub fn encode(
    header: &Header,
    body: &Body,
    key: &DedupKey,
    recipients: &[Recipient],
) -> Result<Vec<u8>> {
    let sealed = key.seal(&zstd::bulk::compress(&serde_json::to_vec(header)?, 3)?);
    let body = encrypt(recipients, &serde_json::to_vec_pretty(body)?)?;
    let mut out = Vec::with_capacity(12 + sealed.len() + body.len());
    out.extend_from_slice(MANIFEST_MAGIC);
    out.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    out.extend_from_slice(&sealed);
    out.extend_from_slice(&body);
    Ok(out)
}

fn split(stored: &[u8]) -> Result<(&[u8], &[u8])> {
    if stored.len() < 12 || &stored[..8] != MANIFEST_MAGIC {
        bail!("not a vaultctl manifest (bad magic)");
    }
    let n = u32::from_le_bytes(stored[8..12].try_into().unwrap()) as usize;
    if 12 + n > stored.len() {
        bail!("manifest header is truncated");
    }
    Ok((&stored[12..12 + n], &stored[12 + n..]))
}

pub fn decode_header(stored: &[u8], key: &DedupKey) -> Result<Header> {
    let (sealed, _) = split(stored)?;
    let json = zstd::stream::decode_all(&key.open(sealed)?[..])?;
    Ok(serde_json::from_slice(&json)?)
}

pub fn decode_body(stored: &[u8], identities: &[Identity]) -> Result<Body> {
    let (_, body) = split(stored)?;
    Ok(serde_json::from_slice(&decrypt(identities, body)?)?)
}
