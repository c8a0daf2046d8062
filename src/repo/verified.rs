//! Restore-verification marks kept in the repository (`verified/<id>/<method>`):
//! a drill or DR run that proved a backup restorable writes one, sealed with
//! the metadata key, to every target it reaches, so the catalog a fresh
//! machine rebuilds still knows which backups were verified — `dr run`
//! then picks the latest verified one, as it would on the old machine.

use anyhow::Result;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::keys::DedupKey;
use crate::storage::Store;

pub const VERIFIED_DIR: &str = "verified";
/// The largest object read as a verification mark (real ones are a few
/// hundred bytes).
pub const MAX_MARK_SIZE: u64 = 64 * 1024;

/// One backup proved restorable by one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub backup_id: String,
    /// `drill` or `dr-run`.
    pub method: String,
    pub verified_at: String,
    pub host: String,
    pub rto_ms: Option<u64>,
}

pub fn path(backup_id: &str, method: &str) -> String {
    format!("{VERIFIED_DIR}/{backup_id}/{method}")
}

/// The mark paths of a backup, for prune to delete with its manifest.
pub fn paths(backup_id: &str) -> Vec<String> {
    ["drill", "dr-run"]
        .iter()
        .map(|m| path(backup_id, m))
        .collect()
}

/// Writes `mark` to every store; returns the (target, error) that failed.
pub fn write(stores: &[Store], key: &DedupKey, mark: &Mark) -> Vec<(String, String)> {
    let sealed = match serde_json::to_vec(mark) {
        Ok(json) => Bytes::from(key.seal(&json)),
        Err(e) => return vec![("*".into(), e.to_string())],
    };
    stores
        .iter()
        .filter_map(|s| {
            s.put(&path(&mark.backup_id, &mark.method), sealed.clone())
                .err()
                .map(|e| (s.name.clone(), crate::error::paragraph(&e)))
        })
        .collect()
}

/// Every readable mark on `store` (unreadable ones are skipped with a warning).
pub fn read_all(store: &Store, key: &DedupKey) -> Result<Vec<Mark>> {
    let mut names: Vec<String> = Vec::new();
    for (name, size) in store.list(VERIFIED_DIR)? {
        // A mark is a few hundred bytes: a large object is not read at all.
        if size > MAX_MARK_SIZE {
            tracing::warn!("{name} is {size} bytes, too large for a verification mark; ignored");
        } else {
            names.push(name);
        }
    }
    let mut marks = Vec::new();
    for (name, bytes) in names.iter().zip(store.get_many(&names)?) {
        let Some(bytes) = bytes else { continue };
        match key
            .open(&bytes)
            .and_then(|json| Ok(serde_json::from_slice::<Mark>(&json)?))
        {
            Ok(m) if name == &path(&m.backup_id, &m.method) => marks.push(m),
            Ok(_) => tracing::warn!("{name} holds another backup's verification mark; ignored"),
            Err(e) => tracing::warn!(
                "the verification mark {name} cannot be read ({}); ignored",
                crate::error::paragraph(&e)
            ),
        }
    }
    Ok(marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_paths() {
        assert_eq!(path("abc", "drill"), "verified/abc/drill");
        assert_eq!(
            paths("abc"),
            vec!["verified/abc/drill", "verified/abc/dr-run"]
        );
    }
}
