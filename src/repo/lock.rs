//! Repository locks: shared for writers (backup, sync), exclusive for the
//! garbage-collection phase of prune. See docs/FORMAT.md, "Locks, prune and
//! garbage collection".
//!
//! A lock is an object `locks/<16 hex>` holding a sealed JSON record (kind,
//! host, pid, time, stale period). Taking one: write our lock object, then
//! list `locks/`. A shared lock conflicts with any live exclusive lock; an
//! exclusive lock conflicts with any other live lock. On a conflict we delete
//! our object, wait (with jitter) and try again, up to a deadline (then exit
//! 11). Because every party writes before it lists, and listings are strongly
//! consistent (local disks, S3 since 2020, R2, B2), of two conflicting
//! parties at least one sees the other — they can never both proceed.
//!
//! **Staleness.** A lock whose object was not rewritten for its holder's
//! stale period ([`LockTiming::stale_after`], recorded in the lock) is stale,
//! and removed by whoever finds it; ages are measured with the storage's
//! clock (our fresh lock's modification time is "now"). A lock of a process
//! of this host that is gone is stale at once.
//!
//! **Leases.** A holder trusts its lock only for a *lease*: the stale period
//! minus a safety margin, counted with CLOCK_BOOTTIME (which, unlike
//! `Instant`, advances while the machine is suspended) from the moment just
//! before the write that last refreshed the lock object began. Every
//! [`LockTiming::refresh`] a thread per lock reads the object back and
//! rewrites it; the new write counts only if it finished within the old
//! lease. A lock found missing, or whose lease ran out, is *lost* for good:
//! it is never written again, so a process that was frozen while another
//! removed its "stale" lock cannot resurrect it. Every commit (index or
//! manifest) and every garbage-collection delete happens only while the
//! lease holds ([`RepoLock::commit_put`], [`RepoLock::check`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::keys::DedupKey;
use crate::error::{ExitStatus, Failure};
use crate::storage::{runtime, ObjectInfo, Payload, Store};

pub const LOCKS_DIR: &str = "locks";
pub use crate::settings::{
    LockTiming, DEFAULT_STALE_AFTER, DEFAULT_WRITER_WAIT, MAX_STALE_AFTER, MIN_STALE_AFTER,
};

/// Time since boot including time suspended (CLOCK_BOOTTIME), so a lease
/// runs out while the machine sleeps, as the others' clocks go on.
fn boottime() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

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
    /// The holder's stale period in milliseconds: others judge this lock by
    /// it, so hosts with different `lock_stale_after` settings stay safe.
    /// Absent in locks of older versions ([`DEFAULT_STALE_AFTER`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_ms: Option<u64>,
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

    /// The stale period the holder promised to refresh within.
    pub fn stale_after(&self) -> Duration {
        self.stale_after_ms
            .map(|ms| Duration::from_millis(ms).clamp(MIN_STALE_AFTER, MAX_STALE_AFTER))
            .unwrap_or(DEFAULT_STALE_AFTER)
    }
}

/// Whether our lock on a target still protects us.
enum Lease {
    /// Valid while CLOCK_BOOTTIME < `since` + the lease; `since` was read
    /// before the write that last refreshed the lock object began.
    Held { since: Duration },
    /// Lost for good (why); the lock object is never written again.
    Lost(String),
}

struct HeldLock {
    store: Store,
    name: String,
    bytes: Bytes,
    timing: LockTiming,
    lease: Mutex<Lease>,
}

impl HeldLock {
    /// The lease alone (no storage request): Err(why) once it ran out or was lost.
    fn lease_ok(&self) -> Result<(), String> {
        let mut lease = self.lease.lock().unwrap();
        match &*lease {
            Lease::Lost(why) => Err(why.clone()),
            Lease::Held { since } => {
                let age = boottime().saturating_sub(*since);
                if age < self.timing.lease() {
                    return Ok(());
                }
                let why = format!(
                    "the repository lock on target '{}' was not refreshed for {} (the process was stalled or suspended, or the target was too slow), so another process may have found it stale and gone ahead without it",
                    self.store.name,
                    human(age)
                );
                *lease = Lease::Lost(why.clone());
                Err(why)
            }
        }
    }

    fn mark_lost(&self, why: String) {
        let mut lease = self.lease.lock().unwrap();
        if matches!(*lease, Lease::Held { .. }) {
            tracing::warn!("{why}");
            *lease = Lease::Lost(why);
        }
    }

    fn vanished(&self) -> String {
        format!(
            "the repository lock on target '{}' was removed by another process (it looked stale to it), which may have gone ahead without it",
            self.store.name
        )
    }

    /// The lease, then whether the lock object still exists.
    fn check(&self) -> Result<(), String> {
        self.lease_ok()?;
        match self.store.get(&self.name) {
            Ok(Some(_)) => self.lease_ok(),
            Ok(None) => {
                let why = self.vanished();
                self.mark_lost(why.clone());
                Err(why)
            }
            Err(e) => Err(crate::error::paragraph(&e)),
        }
    }

    /// One refresh: read the object back, rewrite it, and count the write
    /// only if it finished within the old lease. Never writes a lost lock.
    fn refresh(&self) {
        if self.lease_ok().is_err() {
            return;
        }
        let started = boottime();
        match self.store.get(&self.name) {
            Ok(Some(_)) => {}
            Ok(None) => return self.mark_lost(self.vanished()),
            Err(e) => {
                // Tried again at the next refresh; the lease keeps ageing.
                return tracing::warn!(
                    "cannot refresh the lock on target '{}': {}",
                    self.store.name,
                    crate::error::paragraph(&e)
                );
            }
        }
        if self.lease_ok().is_err() {
            return;
        }
        match self.store.put(&self.name, self.bytes.clone()) {
            Ok(()) => {
                let mut lease = self.lease.lock().unwrap();
                let renewed = match &*lease {
                    Lease::Held { since } => {
                        boottime().saturating_sub(*since) < self.timing.lease()
                    }
                    Lease::Lost(_) => false,
                };
                if renewed {
                    *lease = Lease::Held { since: started };
                    return;
                }
                // Written after the lease ran out: others may already have
                // removed it as stale, so it must not stay (it would look live).
                drop(lease);
                let _ = self.lease_ok();
                let _ = self.store.delete(&self.name);
            }
            Err(e) => tracing::warn!(
                "cannot refresh the lock on target '{}': {}",
                self.store.name,
                crate::error::paragraph(&e)
            ),
        }
    }
}

fn human(d: Duration) -> String {
    if d < Duration::from_secs(120) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        crate::clock::human(d.as_secs())
    }
}

struct Inner {
    held: Vec<Arc<HeldLock>>,
}

/// Locks held on one or more targets; released on drop.
pub struct RepoLock {
    inner: Arc<Inner>,
    stop: Arc<AtomicBool>,
    refreshers: Vec<std::thread::JoinHandle<()>>,
    released: bool,
    /// Targets where a shared lock could not be written: they get nothing
    /// from this run.
    pub unlocked: Vec<(String, String)>,
}

/// A cheap view of the leases, for the threads of a backup's pipeline.
#[derive(Clone)]
pub struct Leases(Arc<Inner>);

impl Leases {
    /// Whether the lease on `target` still holds (no storage request).
    pub fn lease_ok(&self, target: &str) -> Result<(), String> {
        match self.0.held.iter().find(|h| h.store.name == target) {
            Some(h) => h.lease_ok(),
            None => Err("no repository lock is held on this target".into()),
        }
    }
}

/// Why an object was not committed to a target.
#[derive(Debug)]
pub enum CommitError {
    /// Our lock there is not (or no longer) valid.
    Lock(String),
    /// The write failed.
    Write(anyhow::Error),
}

impl CommitError {
    pub fn message(&self) -> String {
        match self {
            CommitError::Lock(why) => why.clone(),
            CommitError::Write(e) => crate::error::paragraph(e),
        }
    }
}

fn lock_path(id: &str) -> String {
    format!("{LOCKS_DIR}/{id}")
}

/// Whether another party's lock is stale, by its own stale period.
/// `server_now_ms` is the storage's clock (the modification time of the lock
/// we just wrote).
pub fn is_stale(info: &LockInfo, modified_ms: i64, server_now_ms: i64, our_host: &str) -> bool {
    if info.host == our_host
        && info.pid != std::process::id()
        && !crate::repo::process_alive(info.pid as i32)
    {
        return true;
    }
    server_now_ms.saturating_sub(modified_ms) > info.stale_after().as_millis() as i64
}

/// Lists the other locks on a store: (object, record, stale?). Unreadable
/// lock objects count as live exclusive locks until they are stale by age
/// (the longer of our stale period and the default), because a lock we
/// cannot read must not be ignored.
fn other_locks(
    store: &Store,
    key: &DedupKey,
    ours: &str,
    left_behind: &[String],
    timing: LockTiming,
) -> Result<Vec<(ObjectInfo, Option<LockInfo>, bool)>> {
    let listed = store.list_detailed(LOCKS_DIR)?;
    let now_ms = listed
        .iter()
        .find(|o| o.name == ours)
        .map(|o| o.modified_ms)
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp() * 1000);
    let host = super::hostname();
    let unreadable_stale = timing.stale_after().max(DEFAULT_STALE_AFTER);
    let mut out = Vec::new();
    for o in listed {
        if o.name == ours || left_behind.contains(&o.name) || !o.name.starts_with("locks/") {
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
            None => now_ms.saturating_sub(o.modified_ms) > unreadable_stale.as_millis() as i64,
        };
        out.push((o, info, stale));
    }
    Ok(out)
}

/// Takes a lock on every store. Shared locks that cannot be written (the
/// target fails) are reported in `unlocked` — unless no target could be
/// locked at all, which is an error, as is an exclusive lock that cannot be
/// written. Waits up to `wait` for conflicting locks (exit 11). Each lock is
/// refreshed from the moment it is taken.
pub fn acquire(
    stores: &[Store],
    key: &DedupKey,
    kind: Kind,
    purpose: &str,
    wait: Duration,
    timing: LockTiming,
) -> Result<RepoLock> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut held: Vec<Arc<HeldLock>> = Vec::new();
    let mut refreshers = Vec::new();
    let mut unlocked = Vec::new();
    let mut first_error: Option<anyhow::Error> = None;
    let give_up = |held: &[Arc<HeldLock>], refreshers: Vec<std::thread::JoinHandle<()>>| {
        stop.store(true, Ordering::SeqCst);
        for t in refreshers {
            t.thread().unpark();
            let _ = t.join();
        }
        for h in held {
            let _ = h.store.delete(&h.name);
        }
    };
    for store in stores {
        match acquire_one(store, key, kind, purpose, wait, timing) {
            Ok(h) => {
                let h = Arc::new(h);
                let spawned = {
                    let h = h.clone();
                    let stop = stop.clone();
                    std::thread::Builder::new()
                        .name("vaultctl-lock".into())
                        .spawn(move || refresh_loop(&h, &stop))
                };
                held.push(h);
                match spawned {
                    Ok(t) => refreshers.push(t),
                    Err(e) => {
                        give_up(&held, refreshers);
                        return Err(e.into());
                    }
                }
            }
            Err(e)
                if kind == Kind::Shared && crate::error::exit_status(&e) != ExitStatus::Locked =>
            {
                tracing::warn!(
                    "cannot lock target '{}'; it gets nothing from this run: {}",
                    store.name,
                    crate::error::paragraph(&e)
                );
                unlocked.push((store.name.clone(), crate::error::paragraph(&e)));
                first_error.get_or_insert(e);
            }
            Err(e) => {
                give_up(&held, refreshers);
                return Err(e);
            }
        }
    }
    if held.is_empty() {
        if let Some(e) = first_error {
            return Err(e.context(format!("no target could be locked for `{purpose}`")));
        }
    }
    Ok(RepoLock {
        inner: Arc::new(Inner { held }),
        stop,
        refreshers,
        released: false,
        unlocked,
    })
}

fn acquire_one(
    store: &Store,
    key: &DedupKey,
    kind: Kind,
    purpose: &str,
    wait: Duration,
    timing: LockTiming,
) -> Result<HeldLock> {
    let deadline = Instant::now() + wait;
    let info = LockInfo {
        kind,
        host: super::hostname(),
        pid: std::process::id(),
        created_at: crate::clock::now_rfc3339(),
        purpose: purpose.into(),
        stale_after_ms: Some(timing.stale_after().as_millis() as u64),
    };
    let bytes = Bytes::from(key.seal(&serde_json::to_vec(&info)?));
    let mut attempt = 0u32;
    // Our own earlier attempts' lock objects that the target refused to
    // delete (Object Lock, append-only credentials): never a conflict.
    let mut left_behind: Vec<String> = Vec::new();
    loop {
        let name = lock_path(&super::format::new_backup_id());
        let since = boottime();
        store.put(&name, bytes.clone())?;
        let mut blockers = Vec::new();
        let result = (|| -> Result<()> {
            for (o, other, stale) in other_locks(store, key, &name, &left_behind, timing)? {
                if stale {
                    let what = other
                        .as_ref()
                        .map(|i| i.describe())
                        .unwrap_or_else(|| "an unreadable lock".into());
                    tracing::info!("removing a stale lock on target '{}': {what}", store.name);
                    // A stale lock never blocks anyone, so a target that
                    // refuses the delete (Object Lock retention,
                    // append-only credentials) only keeps a dead object.
                    if !store.delete_unless_refused(&o.name)? {
                        tracing::info!(
                            "target '{}' refused to delete the stale lock {} (permission denied); it is ignored",
                            store.name,
                            o.name
                        );
                    }
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
            let h = HeldLock {
                store: store.clone(),
                name,
                bytes,
                timing,
                lease: Mutex::new(Lease::Held { since }),
            };
            // Taking the lock took longer than its lease (a very slow
            // target): it may already look stale to others.
            if let Err(why) = h.lease_ok() {
                let _ = store.delete(&h.name);
                return Err(Failure::new(ExitStatus::Temporary, why)
                    .with_remedy("Run again; if it keeps happening, the target is too slow for `lock_stale_after`.")
                    .into());
            }
            return Ok(h);
        }
        if !store.delete_unless_refused(&name)? {
            left_behind.push(name);
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(
                ExitStatus::Locked,
                format!("target '{}' is locked by {}, so `{purpose}` cannot run now.", store.name, blockers.join("; ")),
            )
            .with_remedy(
                "Wait for it to finish and run again (the lock of a crashed process expires after its holder's `lock_stale_after`, 10 minutes by default, and at once on the same host).",
            )
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

fn refresh_loop(h: &HeldLock, stop: &AtomicBool) {
    let interval = h.timing.refresh();
    let mut since = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        // Woken early by release (unpark), so ending a run never waits here.
        std::thread::park_timeout(interval.saturating_sub(since.elapsed()));
        if stop.load(Ordering::SeqCst) || since.elapsed() < interval {
            continue;
        }
        since = Instant::now();
        h.refresh();
    }
}

impl RepoLock {
    fn held(&self, target: &str) -> Result<&HeldLock, String> {
        self.inner
            .held
            .iter()
            .find(|h| h.store.name == target)
            .map(|h| &**h)
            .ok_or_else(|| {
                self.unlocked
                    .iter()
                    .find(|(t, _)| t == target)
                    .map(|(_, why)| format!("the repository lock could not be taken: {why}"))
                    .unwrap_or_else(|| "no repository lock is held on this target".into())
            })
    }

    /// Whether a lock was taken on `target` at all.
    pub fn is_held(&self, target: &str) -> bool {
        self.held(target).is_ok()
    }

    /// Whether our lock on `target` still protects us: its lease holds and
    /// the lock object still exists (one GET).
    pub fn check(&self, target: &str) -> Result<(), String> {
        self.held(target)?.check()
    }

    /// The lease alone, without a storage request.
    pub fn lease_ok(&self, target: &str) -> Result<(), String> {
        self.held(target)?.lease_ok()
    }

    pub fn leases(&self) -> Leases {
        Leases(self.inner.clone())
    }

    /// Commits `data` as `name` to each of `stores` the way every commit
    /// must: [`check`](Self::check), write, then the lease must still hold
    /// when the write has finished. Where it ran out during the write, the
    /// object is deleted again, because a prune may have collected what it
    /// names (docs/FORMAT.md explains why a write that finishes within the
    /// lease cannot be missed by a prune). One result per store, in order.
    pub fn commit_put(
        &self,
        stores: &[&Store],
        name: &str,
        data: impl Into<Payload>,
    ) -> Vec<Result<(), CommitError>> {
        let data: Payload = data.into();
        let allowed: Vec<Result<(), String>> = stores.iter().map(|s| self.check(&s.name)).collect();
        let writes = runtime().block_on(futures::future::join_all(
            stores
                .iter()
                .zip(&allowed)
                .filter(|(_, a)| a.is_ok())
                .map(|(s, _)| s.put_payload_async(name, data.clone())),
        ));
        let mut writes = writes.into_iter();
        let mut out = Vec::new();
        for (s, a) in stores.iter().zip(allowed) {
            if let Err(why) = a {
                out.push(Err(CommitError::Lock(why)));
                continue;
            }
            let written = writes.next().expect("one write per allowed store");
            out.push(match written {
                Err(e) => Err(CommitError::Write(e)),
                Ok(()) => match self.lease_ok(&s.name) {
                    Ok(()) => Ok(()),
                    Err(why) => {
                        if let Err(e) = s.delete(name) {
                            tracing::error!(
                                "{name} was written to target '{}' after our lock ran out and could not be removed again; run `vaultctl verify` there: {}",
                                s.name,
                                crate::error::paragraph(&e)
                            );
                        }
                        Err(CommitError::Lock(why))
                    }
                },
            });
        }
        out
    }

    /// Releases the locks now (also done on drop).
    pub fn release(mut self) {
        self.release_inner();
    }

    fn release_inner(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        self.stop.store(true, Ordering::SeqCst);
        for t in self.refreshers.drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
        for h in &self.inner.held {
            // Lost or not, the object's name is ours alone: removing it can
            // only unblock others.
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
        self.release_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StoreLocation, StoreSpec};

    fn info(host: &str, pid: u32, stale_after_ms: Option<u64>) -> LockInfo {
        LockInfo {
            kind: Kind::Shared,
            host: host.into(),
            pid,
            created_at: String::new(),
            purpose: "backup".into(),
            stale_after_ms,
        }
    }

    #[test]
    fn staleness() {
        let now = 1_000_000_000;
        let fresh = now - 1000;
        let old = now - DEFAULT_STALE_AFTER.as_millis() as i64 - 1;
        // Another host: only age counts.
        assert!(!is_stale(&info("elsewhere", 1, None), fresh, now, "here"));
        assert!(is_stale(&info("elsewhere", 1, None), old, now, "here"));
        // This host: a live process's lock is fresh, a dead one's is stale.
        assert!(!is_stale(
            &info("here", std::process::id(), None),
            fresh,
            now,
            "here"
        ));
        assert!(is_stale(
            &info("here", 0x3fff_fff0, None),
            fresh,
            now,
            "here"
        ));
        // A lock is judged by the stale period its holder recorded.
        let short = info("elsewhere", 1, Some(3000));
        assert!(!is_stale(&short, now - 2999, now, "here"));
        assert!(is_stale(&short, now - 3001, now, "here"));
        let long = info("elsewhere", 1, Some(3_600_000));
        assert!(!is_stale(&long, old, now, "here"));
    }

    #[test]
    fn timing_scales_with_the_stale_period() {
        let t = LockTiming::default();
        assert_eq!(t.stale_after(), Duration::from_secs(600));
        assert_eq!(t.refresh(), Duration::from_secs(60));
        assert_eq!(t.margin(), Duration::from_secs(180));
        assert_eq!(t.lease(), Duration::from_secs(420));
        let t = LockTiming::new(Duration::from_secs(3));
        assert_eq!(t.refresh(), Duration::from_millis(300));
        assert_eq!(t.lease(), Duration::from_millis(2100));
        assert_eq!(
            LockTiming::new(Duration::ZERO).stale_after(),
            MIN_STALE_AFTER
        );
        // The boot-time clock runs.
        let a = boottime();
        std::thread::sleep(Duration::from_millis(5));
        assert!(boottime() > a);
    }

    fn local_store(dir: &std::path::Path) -> Store {
        Store::open(
            &StoreSpec {
                name: "local".into(),
                location: StoreLocation::Local {
                    path: dir.to_path_buf(),
                },
                max_retries: 0,
                retry_timeout: Duration::from_secs(5),
                request_timeout: Duration::from_secs(5),
            },
            true,
        )
        .unwrap()
    }

    fn lock_objects(store: &Store) -> Vec<String> {
        store
            .list(LOCKS_DIR)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    fn take(store: &Store) -> RepoLock {
        acquire(
            std::slice::from_ref(store),
            &DedupKey::generate(),
            Kind::Shared,
            "backup",
            Duration::from_secs(1),
            LockTiming::new(Duration::from_secs(2)),
        )
        .unwrap()
    }

    /// A lock removed by another process (it looked stale to it) is never
    /// written again, and nothing is committed under it.
    #[test]
    fn a_vanished_lock_is_not_resurrected() {
        let dir = tempfile::tempdir().unwrap();
        let store = local_store(dir.path());
        let lock = take(&store);
        assert!(lock.check("local").is_ok());
        let ours = lock_objects(&store);
        assert_eq!(ours.len(), 1);
        store.delete(&ours[0]).unwrap();
        // Several refresh intervals (200 ms) pass.
        std::thread::sleep(Duration::from_millis(700));
        assert!(lock_objects(&store).is_empty(), "the lock came back");
        let why = lock.check("local").unwrap_err();
        assert!(why.contains("removed by another process"), "{why}");
        let r = lock.commit_put(&[&store], "snapshots/x", Bytes::from_static(b"m"));
        assert!(matches!(r[0], Err(CommitError::Lock(_))));
        assert!(store.get("snapshots/x").unwrap().is_none());
        lock.release();
    }

    /// A lock whose lease ran out (the process was frozen or the machine
    /// suspended) is lost for good: the refresher does not rewrite it and
    /// commits are refused.
    #[test]
    fn a_lease_that_ran_out_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = local_store(dir.path());
        let lock = take(&store);
        let h = &lock.inner.held[0];
        let name = h.name.clone();
        let before = std::fs::metadata(dir.path().join(&name))
            .unwrap()
            .modified()
            .unwrap();
        *h.lease.lock().unwrap() = Lease::Held {
            since: boottime().saturating_sub(h.timing.lease()),
        };
        std::thread::sleep(Duration::from_millis(700));
        let after = std::fs::metadata(dir.path().join(&name))
            .ok()
            .and_then(|m| m.modified().ok());
        assert!(
            after.is_none() || after == Some(before),
            "a lock whose lease ran out was rewritten"
        );
        let why = lock.check("local").unwrap_err();
        assert!(why.contains("was not refreshed for"), "{why}");
        let r = lock.commit_put(&[&store], "snapshots/x", Bytes::from_static(b"m"));
        assert!(matches!(r[0], Err(CommitError::Lock(_))));
        assert!(store.get("snapshots/x").unwrap().is_none());
        lock.release();
        assert!(lock_objects(&store).is_empty());
    }

    /// A held lock is refreshed, commits go through, release removes it.
    #[test]
    fn a_live_lock_is_refreshed_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = local_store(dir.path());
        let lock = take(&store);
        // Longer than the lease (1.4 s): only refreshes keep it valid.
        std::thread::sleep(Duration::from_millis(1800));
        assert!(lock.check("local").is_ok());
        let r = lock.commit_put(&[&store], "snapshots/x", Bytes::from_static(b"m"));
        assert!(r[0].is_ok());
        assert!(store.get("snapshots/x").unwrap().is_some());
        lock.release();
        assert!(lock_objects(&store).is_empty());
    }
}
