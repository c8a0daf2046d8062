//! Repository locks: shared for writers (backup, sync), exclusive for the
//! garbage-collection phase of prune. See docs/FORMAT.md, "Locks and prune".
//!
//! A lock is an object `locks/<16 hex>` holding a sealed JSON record (kind,
//! host, pid, time). Taking one: write our lock object, then list `locks/`.
//! A shared lock conflicts with any live exclusive lock; an exclusive lock
//! conflicts with any other live lock. On a conflict we delete our object,
//! wait (with jitter) and try again, up to a deadline (then exit 11). Because
//! every party writes before it lists, and listings are strongly consistent
//! (local disks, S3 since 2020, R2, B2), of two conflicting parties at least
//! one sees the other — they can never both proceed.
//!
//! Held locks are rewritten every [`REFRESH`]. A lock is stale, and removed by
//! whoever finds it, when it was not rewritten for [`STALE_AFTER`] (ages are
//! measured with the storage's clock: our fresh lock's modification time is
//! "now"), or at once when it belongs to a process of this host that is gone.
//! A writer checks that its lock is still valid (recently refreshed and still
//! present) right before it writes a manifest, so a process that was frozen
//! past the stale limit cannot commit a backup whose packs a prune removed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::keys::DedupKey;
use crate::error::{ExitKind, Failure};
use crate::storage::{ObjectInfo, Store};

pub const LOCKS_DIR: &str = "locks";
/// How often a held lock is rewritten.
pub const REFRESH: Duration = Duration::from_secs(60);
/// A lock not rewritten for this long belongs to a dead or frozen process.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);
/// A holder stops trusting its own lock this long before others may call it stale.
const SAFETY_MARGIN: Duration = Duration::from_secs(3 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Shared,
    Exclusive,
}

/// The record inside a lock object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    pub kind: Kind,
    pub host: String,
    pub pid: u32,
    pub created_at: String,
    /// What holds it: `backup`, `sync`, `prune`.
    pub purpose: String,
}

impl LockInfo {
    fn describe(&self) -> String {
        format!(
            "{} lock of `{}` (pid {} on {}, since {})",
            match self.kind {
                Kind::Shared => "a shared",
                Kind::Exclusive => "an exclusive",
            },
            self.purpose,
            self.pid,
            self.host,
            self.created_at
        )
    }
}

struct HeldLock {
    store: Store,
    name: String,
    bytes: Bytes,
    last_refresh: Mutex<Instant>,
}

struct Inner {
    held: Vec<HeldLock>,
    stop: AtomicBool,
}

/// Locks held on one or more targets; released on drop.
pub struct RepoLock {
    inner: Arc<Inner>,
    refresher: Option<std::thread::JoinHandle<()>>,
    /// Targets where a shared lock could not be written (they must not get a manifest).
    pub unlocked: Vec<(String, String)>,
}

fn lock_path(id: &str) -> String {
    format!("{LOCKS_DIR}/{id}")
}

/// Whether another party's lock is stale. `server_now_ms` is the storage's
/// clock (the modification time of the lock we just wrote).
pub fn is_stale(info: &LockInfo, modified_ms: i64, server_now_ms: i64, our_host: &str) -> bool {
    if info.host == our_host
        && info.pid != std::process::id()
        && !crate::repo::process_alive(info.pid as i32)
    {
        return true;
    }
    server_now_ms.saturating_sub(modified_ms) > STALE_AFTER.as_millis() as i64
}

/// Lists the other locks on a store: (object, record, stale?). Unreadable
/// lock objects count as live exclusive locks until they are stale by age,
/// because a lock we cannot read must not be ignored.
fn other_locks(
    store: &Store,
    key: &DedupKey,
    ours: &str,
) -> Result<Vec<(ObjectInfo, Option<LockInfo>, bool)>> {
    let listed = store.list_detailed(LOCKS_DIR)?;
    let now_ms = listed
        .iter()
        .find(|o| o.name == ours)
        .map(|o| o.modified_ms)
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp() * 1000);
    let host = super::hostname();
    let mut out = Vec::new();
    for o in listed {
        if o.name == ours || !o.name.starts_with("locks/") {
            continue;
        }
        // A lock record is a few hundred bytes: a larger object is not
        // downloaded, and counts as an unreadable lock.
        let bytes = if o.size > 64 * 1024 {
            Bytes::new()
        } else {
            let Some(bytes) = store.get(&o.name)? else {
                continue;
            };
            bytes
        };
        let info = key
            .open(&bytes)
            .ok()
            .and_then(|plain| serde_json::from_slice::<LockInfo>(&plain).ok());
        let stale = match &info {
            Some(i) => is_stale(i, o.modified_ms, now_ms, &host),
            None => now_ms.saturating_sub(o.modified_ms) > STALE_AFTER.as_millis() as i64,
        };
        out.push((o, info, stale));
    }
    Ok(out)
}

/// How long writers wait for a prune's exclusive lock: `VAULTCTL_LOCK_WAIT`
/// (a duration such as `30m`), default 30 minutes.
pub fn writer_wait() -> Duration {
    std::env::var("VAULTCTL_LOCK_WAIT")
        .ok()
        .and_then(|v| crate::config::parse_duration(&v).ok())
        .unwrap_or(Duration::from_secs(30 * 60))
}

/// Takes a lock on every store. Shared locks that cannot be written (the
/// target fails) are reported in `unlocked`; an exclusive lock that cannot be
/// written is an error. Waits up to `wait` for conflicting locks (exit 11).
pub fn acquire(
    stores: &[Store],
    key: &DedupKey,
    kind: Kind,
    purpose: &str,
    wait: Duration,
) -> Result<RepoLock> {
    let mut held = Vec::new();
    let mut unlocked = Vec::new();
    for store in stores {
        match acquire_one(store, key, kind, purpose, wait) {
            Ok(h) => held.push(h),
            Err(e) if kind == Kind::Shared && crate::error::exit_kind(&e) != ExitKind::Locked => {
                tracing::warn!(
                    "cannot lock target '{}'; it will not get this run's manifest: {}",
                    store.name,
                    crate::error::paragraph(&e)
                );
                unlocked.push((store.name.clone(), crate::error::paragraph(&e)));
            }
            Err(e) => {
                for h in &held {
                    let _ = h.store.delete(&h.name);
                }
                return Err(e);
            }
        }
    }
    let inner = Arc::new(Inner {
        held,
        stop: AtomicBool::new(false),
    });
    let refresher = {
        let inner = inner.clone();
        std::thread::Builder::new()
            .name("vaultctl-lock".into())
            .spawn(move || refresh_loop(&inner))?
    };
    Ok(RepoLock {
        inner,
        refresher: Some(refresher),
        unlocked,
    })
}

fn acquire_one(
    store: &Store,
    key: &DedupKey,
    kind: Kind,
    purpose: &str,
    wait: Duration,
) -> Result<HeldLock> {
    let deadline = Instant::now() + wait;
    let info = LockInfo {
        kind,
        host: super::hostname(),
        pid: std::process::id(),
        created_at: super::now_rfc3339(),
        purpose: purpose.into(),
    };
    let bytes = Bytes::from(key.seal(&serde_json::to_vec(&info)?));
    let mut attempt = 0u32;
    loop {
        let name = lock_path(&super::backup::new_backup_id());
        store.put(&name, bytes.clone())?;
        let mut blockers = Vec::new();
        let result = (|| -> Result<()> {
            for (o, other, stale) in other_locks(store, key, &name)? {
                if stale {
                    tracing::info!(
                        "removing a stale lock on target '{}': {}",
                        store.name,
                        other
                            .as_ref()
                            .map(|i| i.describe())
                            .unwrap_or_else(|| "an unreadable lock".into())
                    );
                    store.delete(&o.name)?;
                    continue;
                }
                let conflicts = match (&other, kind) {
                    (_, Kind::Exclusive) => true,
                    (Some(i), Kind::Shared) => i.kind == Kind::Exclusive,
                    (None, Kind::Shared) => true,
                };
                if conflicts {
                    blockers.push(
                        other
                            .map(|i| i.describe())
                            .unwrap_or_else(|| format!("an unreadable lock object {}", o.name)),
                    );
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = store.delete(&name);
            return Err(e);
        }
        if blockers.is_empty() {
            return Ok(HeldLock {
                store: store.clone(),
                name,
                bytes,
                last_refresh: Mutex::new(Instant::now()),
            });
        }
        store.delete(&name)?;
        if Instant::now() >= deadline {
            return Err(Failure::new(
                ExitKind::Locked,
                format!("target '{}' is locked by {}, so `{purpose}` cannot run now.", store.name, blockers.join("; ")),
            )
            .with_remedy(format!(
                "Wait for it to finish and run again (locks of crashed processes expire after {} minutes, at once on the same host).",
                STALE_AFTER.as_secs() / 60
            ))
            .into());
        }
        if attempt == 0 {
            tracing::warn!(
                "target '{}' is locked by {}; waiting",
                store.name,
                blockers.join("; ")
            );
        }
        attempt += 1;
        // Writers retry quickly; a prune backs off longer so writers get through.
        let base = match kind {
            Kind::Shared => 200,
            Kind::Exclusive => 500,
        };
        let backoff = (base * (1u64 << attempt.min(5))).min(5000);
        let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=backoff);
        let sleep = Duration::from_millis(backoff / 2 + jitter / 2)
            .min(deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(10));
        std::thread::sleep(sleep);
    }
}

fn refresh_loop(inner: &Inner) {
    let mut since = Instant::now();
    while !inner.stop.load(Ordering::SeqCst) {
        // Woken early by release (unpark), so ending a run never waits here.
        std::thread::park_timeout(REFRESH.saturating_sub(since.elapsed()));
        if inner.stop.load(Ordering::SeqCst) || since.elapsed() < REFRESH {
            continue;
        }
        since = Instant::now();
        for h in &inner.held {
            match h.store.put(&h.name, h.bytes.clone()) {
                Ok(()) => *h.last_refresh.lock().unwrap() = Instant::now(),
                Err(e) => tracing::warn!(
                    "cannot refresh the lock on target '{}': {}",
                    h.store.name,
                    crate::error::paragraph(&e)
                ),
            }
        }
    }
}

impl RepoLock {
    /// Whether our lock on `target` still protects us: refreshed recently
    /// enough that nobody may call it stale, and still present.
    pub fn check(&self, target: &str) -> Result<(), String> {
        let Some(h) = self.inner.held.iter().find(|h| h.store.name == target) else {
            return Err(self
                .unlocked
                .iter()
                .find(|(t, _)| t == target)
                .map(|(_, why)| format!("the repository lock could not be taken: {why}"))
                .unwrap_or_else(|| "no repository lock is held on this target".into()));
        };
        if h.last_refresh.lock().unwrap().elapsed() > STALE_AFTER - SAFETY_MARGIN {
            return Err("the repository lock was not refreshed in time (the process was stalled or the target unreachable), so a prune may have run".into());
        }
        match h.store.get(&h.name) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("the repository lock was removed by another process (it looked stale), so a prune may have run".into()),
            Err(e) => Err(crate::error::paragraph(&e)),
        }
    }

    /// Releases the locks now (also done on drop).
    pub fn release(mut self) {
        self.release_inner();
    }

    fn release_inner(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.refresher.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        for h in &self.inner.held {
            if let Err(e) = h.store.delete(&h.name) {
                tracing::warn!(
                    "cannot remove our lock on target '{}' (it expires by itself): {}",
                    h.store.name,
                    crate::error::paragraph(&e)
                );
            }
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        if self.refresher.is_some() {
            self.release_inner();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(host: &str, pid: u32) -> LockInfo {
        LockInfo {
            kind: Kind::Shared,
            host: host.into(),
            pid,
            created_at: String::new(),
            purpose: "backup".into(),
        }
    }

    #[test]
    fn staleness() {
        let now = 1_000_000_000;
        let fresh = now - 1000;
        let old = now - STALE_AFTER.as_millis() as i64 - 1;
        // Another host: only age counts.
        assert!(!is_stale(&info("elsewhere", 1), fresh, now, "here"));
        assert!(is_stale(&info("elsewhere", 1), old, now, "here"));
        // This host: a live process's lock is fresh, a dead one's is stale.
        assert!(!is_stale(
            &info("here", std::process::id()),
            fresh,
            now,
            "here"
        ));
        assert!(is_stale(&info("here", 0x3fff_fff0), fresh, now, "here"));
    }
}
