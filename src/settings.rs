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

/// What the process's environment tells the core, read once at startup by
/// the CLI ([`Environment::from_process`], then [`install`]); the core asks
/// [`environment`] and never reads a variable itself. A library user (or a
/// unit test) that installs nothing gets the empty default.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// Who runs the command, for restore and DR logs and alert
    /// acknowledgements: `SUDO_USER`, else `USER`, else `LOGNAME` (each
    /// only when not empty).
    pub operator: Option<String>,
    /// libpq's defaults for what a database URL leaves out.
    pub libpq: Libpq,
    /// `LC_ALL`, which PostgreSQL programs whose messages vaultctl reads get
    /// as each locale category instead (`engine::postgres::english_messages`).
    pub lc_all: Option<std::ffi::OsString>,
    /// `VAULTCTL_TEST_PAUSE_DIR` (debug builds: race tests freeze the
    /// process at named points, `repo::test_pause`).
    pub test_pause_dir: Option<std::path::PathBuf>,
    /// `VAULTCTL_DEBUG_MEMORY` is set: print peak-memory marks.
    pub debug_memory: bool,
}

/// libpq's environment defaults (PGUSER, PGDATABASE, PGHOST, PGPORT,
/// PGPASSWORD, PGPASSFILE) and the `USER`/`HOME` it falls back on.
#[derive(Clone, Default)]
pub struct Libpq {
    pub user: Option<String>,
    pub database: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub password: Option<String>,
    pub passfile: Option<std::path::PathBuf>,
    /// `USER`: the user when neither the URL nor PGUSER names one.
    pub login: Option<String>,
    /// `HOME`: where `~/.pgpass` is.
    pub home: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Libpq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Libpq")
            .field("user", &self.user)
            .field("database", &self.database)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("passfile", &self.passfile)
            .finish()
    }
}

impl Environment {
    /// The environment as `get` (a variable's value, if set) tells it.
    pub fn from_vars(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Environment {
        let text = |k: &str| get(k).and_then(|v| v.into_string().ok());
        let non_empty = |k: &str| text(k).filter(|v| !v.is_empty());
        Environment {
            operator: non_empty("SUDO_USER")
                .or_else(|| non_empty("USER"))
                .or_else(|| non_empty("LOGNAME")),
            libpq: Libpq {
                user: text("PGUSER"),
                database: text("PGDATABASE"),
                host: text("PGHOST"),
                port: text("PGPORT"),
                password: text("PGPASSWORD"),
                passfile: get("PGPASSFILE").map(Into::into),
                login: text("USER"),
                home: get("HOME").map(Into::into),
            },
            lc_all: get("LC_ALL"),
            test_pause_dir: get("VAULTCTL_TEST_PAUSE_DIR").map(Into::into),
            debug_memory: get("VAULTCTL_DEBUG_MEMORY").is_some(),
        }
    }

    /// This process's environment.
    pub fn from_process() -> Environment {
        Environment::from_vars(|k| std::env::var_os(k))
    }
}

static ENVIRONMENT: std::sync::OnceLock<Environment> = std::sync::OnceLock::new();

/// Makes `env` what [`environment`] returns; the first call wins (the CLI
/// calls it once, before anything reads it).
pub fn install(env: Environment) {
    let _ = ENVIRONMENT.set(env);
}

/// The installed [`Environment`], or the empty default.
pub fn environment() -> &'static Environment {
    ENVIRONMENT.get_or_init(Environment::default)
}

#[cfg(test)]
mod environment_tests {
    use super::*;

    #[test]
    fn reads_each_variable_once_with_the_old_fallbacks() {
        let vars = [
            ("SUDO_USER", ""),
            ("USER", "alice"),
            ("PGUSER", "pg"),
            ("PGPORT", "5433"),
            ("PGPASSWORD", "s3cret"),
            ("HOME", "/home/alice"),
            ("VAULTCTL_DEBUG_MEMORY", ""),
        ];
        let env = Environment::from_vars(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| std::ffi::OsString::from(v))
        });
        // An empty SUDO_USER falls back to USER.
        assert_eq!(env.operator.as_deref(), Some("alice"));
        assert_eq!(env.libpq.user.as_deref(), Some("pg"));
        assert_eq!(env.libpq.port.as_deref(), Some("5433"));
        assert_eq!(env.libpq.login.as_deref(), Some("alice"));
        assert_eq!(env.libpq.database, None);
        assert_eq!(
            env.libpq.home.as_deref(),
            Some(std::path::Path::new("/home/alice"))
        );
        // Set, even empty, turns the memory marks on.
        assert!(env.debug_memory);
        assert!(env.test_pause_dir.is_none());
        // The password never reaches a log line through Debug.
        assert!(!format!("{env:?}").contains("s3cret"));
    }
}
