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

/// Content address of a stored object: hex BLAKE3 of its bytes.
pub fn content_name(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

pub fn is_hex_name(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
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
                    crate::error::ExitKind::Failure,
                    format!("the repository uses format version {v}; this vaultctl reads version {FORMAT_VERSION} only."),
                )
                .with_remedy("Install the vaultctl release that created the repository, or a newer one.")
                .into())
            }
            None => anyhow::bail!("the repository config has no version"),
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}
