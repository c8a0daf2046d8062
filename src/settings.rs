//! Settings the config reads and the core obeys: lock timing and retention
//! policies. A leaf: the config builds them, `repo` acts on them, and
//! neither has to import the other for it.

use std::time::Duration;

/// The stale period when the config sets none (`lock_stale_after`), and of
/// lock objects that record none (written by older versions).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(10 * 60);
/// Bounds of `lock_stale_after` (values below a few minutes are for tests).
pub const MIN_STALE_AFTER: Duration = Duration::from_secs(2);
pub const MAX_STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How long writers wait for a prune's exclusive lock by default.
pub const DEFAULT_WRITER_WAIT: Duration = Duration::from_secs(30 * 60);

/// A lock's timing, all derived from its stale period, and how long a
/// writer waits for a prune's exclusive lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    stale_after: Duration,
    writer_wait: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        LockTiming {
            stale_after: DEFAULT_STALE_AFTER,
            writer_wait: DEFAULT_WRITER_WAIT,
        }
    }
}

impl LockTiming {
    /// Clamped to [`MIN_STALE_AFTER`]..=[`MAX_STALE_AFTER`].
    pub fn new(stale_after: Duration) -> LockTiming {
        LockTiming {
            stale_after: stale_after.clamp(MIN_STALE_AFTER, MAX_STALE_AFTER),
            writer_wait: DEFAULT_WRITER_WAIT,
        }
    }

    /// The same timing with writers waiting `wait` for a prune's lock
    /// (`VAULTCTL_LOCK_WAIT`, which the config reads).
    pub fn with_writer_wait(self, wait: Duration) -> LockTiming {
        LockTiming {
            writer_wait: wait,
            ..self
        }
    }

    /// How long writers (backup, sync) wait for a prune's exclusive lock
    /// before failing with exit 11.
    pub fn writer_wait(&self) -> Duration {
        self.writer_wait
    }

    /// A lock not rewritten for this long belongs to a dead or frozen process.
    pub fn stale_after(&self) -> Duration {
        self.stale_after
    }

    /// How often a held lock is rewritten (a tenth of the stale period).
    pub fn refresh(&self) -> Duration {
        self.stale_after / 10
    }

    /// How long before others may call a lock stale its holder stops trusting
    /// it (30 % of the stale period): room for clock-rate differences and for
    /// one storage request in flight.
    pub fn margin(&self) -> Duration {
        self.stale_after * 3 / 10
    }

    /// How long a refresh keeps the lock valid for its holder.
    pub fn lease(&self) -> Duration {
        self.stale_after - self.margin()
    }
}

/// A target's retention policy (`[target.retention]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within: Option<Duration>,
    pub keep_tags: Vec<String>,
}

impl Policy {
    /// True when no rule is set (such a policy would keep only the newest).
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_hourly.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
            && self.keep_yearly.is_none()
            && self.keep_within.is_none()
            && self.keep_tags.is_empty()
    }

    /// `last=3 daily=7 within=30d` — for messages and tables.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, v) in [
            ("last", self.keep_last),
            ("hourly", self.keep_hourly),
            ("daily", self.keep_daily),
            ("weekly", self.keep_weekly),
            ("monthly", self.keep_monthly),
            ("yearly", self.keep_yearly),
        ] {
            if let Some(n) = v {
                parts.push(format!("{name}={n}"));
            }
        }
        if let Some(d) = self.keep_within {
            parts.push(format!("within={}s", d.as_secs()));
        }
        if !self.keep_tags.is_empty() {
            parts.push(format!("tags={}", self.keep_tags.join(",")));
        }
        parts.join(" ")
    }
}
