//! The blobs one backup run has claimed for storing, so that a chunk that
//! repeats within the run (and is in no pack yet) is stored once.
//!
//! Memory is bounded whatever the size of the backup: the latest claims
//! are a hash set of at most [`RECENT`] ids (about 8 MB); when it is full
//! its ids move, in id order, to a private temporary SQLite database (an
//! unnamed file in `$TMPDIR` past SQLite's page cache, deleted when it is
//! closed, even after a crash), where later claims look too. A 1 TB backup
//! at the default 512 KiB chunks claims two million blobs: 80 MB or more
//! in a hash set, about 90 MB of disk here.
//!
//! An error is never read as "not claimed": a claim the run cannot check
//! fails the backup, as a blob stored twice would be wasted space but a
//! blob wrongly taken as stored would be lost.

use std::collections::HashSet;

use anyhow::Result;
use rusqlite::Connection;

use super::pack::BlobId;
use crate::error::{ExitStatus, Failure};

/// Claims kept in memory before they move to disk: fills a hash table of
/// 2^18 buckets (7/8 of it, about 8.6 MB). A handful in unit tests, so
/// their backups cross the move.
pub(super) const RECENT: usize = if cfg!(test) { 5 } else { (1 << 18) / 8 * 7 };

/// See the module docs.
#[derive(Default)]
pub struct Claims {
    recent: HashSet<BlobId>,
    older: Option<Connection>,
    moved: u64,
}

impl Claims {
    /// Claims `id` for storing: true the first time this run sees it (the
    /// caller stores the blob), false after.
    pub fn claim(&mut self, id: &BlobId) -> Result<bool> {
        if self.recent.contains(id) {
            return Ok(false);
        }
        if let Some(db) = &self.older {
            let known = db
                .prepare_cached("SELECT 1 FROM claimed WHERE id = ?1")
                .and_then(|mut q| q.exists([&id[..]]))
                .map_err(unusable)?;
            if known {
                return Ok(false);
            }
        }
        if self.recent.len() >= RECENT {
            self.move_to_disk().map_err(unusable)?;
        }
        self.recent.insert(*id);
        Ok(true)
    }

    /// Claims kept on disk so far.
    pub fn on_disk(&self) -> u64 {
        self.moved
    }

    /// Moves the recent claims to the database, in id order (each B-tree
    /// page is touched once per move, not once per id).
    fn move_to_disk(&mut self) -> rusqlite::Result<()> {
        let db = match &mut self.older {
            Some(db) => db,
            None => self.older.insert(open()?),
        };
        let mut ids: Vec<&BlobId> = self.recent.iter().collect();
        ids.sort_unstable();
        let tx = db.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO claimed (id) VALUES (?1)")?;
            for id in &ids {
                insert.execute([&id[..]])?;
            }
        }
        tx.commit()?;
        self.moved += ids.len() as u64;
        self.recent.clear();
        Ok(())
    }
}

/// A private temporary database (SQLite's empty file name): never synced,
/// no journal; a crash loses nothing the backup committed.
fn open() -> rusqlite::Result<Connection> {
    let db = Connection::open("")?;
    db.execute_batch(
        "PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA cache_size = -4096;
         CREATE TABLE claimed (id BLOB PRIMARY KEY) WITHOUT ROWID;",
    )?;
    Ok(db)
}

fn unusable(e: rusqlite::Error) -> anyhow::Error {
    Failure::new(
        ExitStatus::Failure,
        format!("the backup cannot keep the list of blobs it stored in a temporary database in {}: {e}; nothing was committed.", std::env::temp_dir().display()),
    )
    .with_remedy("Set TMPDIR to a writable directory with room (about 50 bytes a blob of the backup past the first 230,000), then run the backup again.")
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> BlobId {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        b[31] = n as u8;
        b
    }

    #[test]
    fn every_id_is_claimed_once_in_memory_and_after_moving_to_disk() {
        let mut claims = Claims::default();
        // First claims: all new, some moved to disk along the way.
        for n in 0..40 {
            assert!(claims.claim(&id(n)).unwrap(), "{n} is new");
        }
        assert!(claims.on_disk() >= 30, "{} on disk", claims.on_disk());
        // Repeats, recent ones and ones on disk alike: already claimed.
        for n in (0..40).rev() {
            assert!(!claims.claim(&id(n)).unwrap(), "{n} was claimed");
        }
        // Mixed in: new ids still come out new, once.
        for n in 40..60 {
            assert!(claims.claim(&id(n)).unwrap());
            assert!(!claims.claim(&id(n)).unwrap());
            assert!(!claims.claim(&id(n - 40)).unwrap());
        }
        assert!(claims.recent.len() <= RECENT);
    }
}
