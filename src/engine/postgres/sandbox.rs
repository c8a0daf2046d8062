//! Sandbox clusters: a private, temporary PostgreSQL cluster vaultctl
//! starts on a point-in-time restore of a base backup, reads from, and
//! removes (a tenant point-in-time restore).
//!
//! A sandbox lives in `<work dir>/vaultctl-sandbox-<pid>-<n>/`: `data/`
//! (the data directory, owned by the server's user), `socket/` (its only
//! way in: `listen_addresses = ''`, a Unix socket in a directory only that
//! user and root can enter), `pg_hba.conf` (trust on that socket: nobody
//! else can reach it) and `sandbox.json`, the marker naming the vaultctl
//! process that owns it. The sandbox is stopped (immediate shutdown) and
//! deleted when dropped, on Ctrl-C/SIGTERM (a handler thread removes every
//! live sandbox, then exits with 130), and — after a kill -9 — by the next
//! run, which finds markers whose process is gone ([`sweep`]); `doctor`
//! and `status` report them ([`stale`]).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::pitr::Owner;
use crate::error::{fail, ExitStatus};

const PREFIX: &str = "vaultctl-sandbox-";
const MARKER: &str = "sandbox.json";

/// A sandbox directory and its cluster.
#[derive(Debug)]
pub struct Sandbox {
    pub root: PathBuf,
    pub data: PathBuf,
    pub socket: PathBuf,
    pub port: u16,
}

/// What the marker records.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Marker {
    pid: i32,
    /// The process's start time (clock ticks after boot), so a reused pid
    /// is not taken for the owner.
    start: Option<u64>,
    created_at: String,
}

/// A sandbox whose vaultctl process is gone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stale {
    pub path: PathBuf,
    pub pid: Option<i32>,
    pub created_at: Option<String>,
    /// Whether its server still runs (its postmaster.pid names a live process).
    pub running: bool,
}

impl Stale {
    /// The dashboard's line about it.
    pub fn notice(&self) -> String {
        format!(
            "stale sandbox {} (a killed tenant restore left it{}); the next tenant restore removes it",
            self.path.display(),
            if self.running { "; its server still runs" } else { "" }
        )
    }
}

/// Sandboxes of this process, for the interrupt handler.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A process's start time, field 22 of /proc/PID/stat.
fn start_time(pid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn owner_alive(m: &Marker) -> bool {
    crate::repo::process_alive(m.pid) && (m.start.is_none() || start_time(m.pid) == m.start)
}

/// Whether `owner` can enter every directory down to `dir` (which exists).
fn traversable(dir: &Path, owner: &Owner) -> bool {
    use std::os::unix::fs::MetadataExt;
    if owner.uid == 0 {
        return true;
    }
    dir.ancestors().all(|p| match fs::metadata(p) {
        Ok(m) => {
            let mode = m.mode();
            if m.uid() == owner.uid {
                mode & 0o100 != 0
            } else if m.gid() == owner.gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            }
        }
        Err(_) => false,
    })
}

fn chown(p: &Path, owner: &Owner) -> Result<()> {
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(p, Some(owner.uid), Some(owner.gid))
            .with_context(|| format!("cannot chown {}", p.display()))?;
    }
    Ok(())
}

impl Sandbox {
    /// Creates an empty sandbox under `work_dir` (created when missing) for
    /// a server run by `owner`, and registers it for the interrupt handler.
    pub fn create(work_dir: &Path, owner: &Owner) -> Result<Sandbox> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(work_dir)
            .with_context(|| format!("cannot create the work directory {}", work_dir.display()))?;
        if !traversable(work_dir, owner) {
            return fail(
                ExitStatus::Usage,
                format!(
                    "the server's user {} cannot enter the work directory {} (or a directory above it), so the sandbox cluster could not start there.",
                    owner.name,
                    work_dir.display()
                ),
                "Pass --work-dir with a directory that user can reach (e.g. one under /var/lib/postgresql), or --owner another user.",
            );
        }
        let pid = std::process::id() as i32;
        let mut n = 0;
        let root = loop {
            let p = work_dir.join(format!("{PREFIX}{pid}-{n}"));
            match fs::DirBuilder::new().mode(0o711).create(&p) {
                Ok(()) => break p,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                Err(e) => return Err(e).with_context(|| format!("cannot create {}", p.display())),
            }
        };
        fs::set_permissions(&root, fs::Permissions::from_mode(0o711))?;
        let sandbox = Sandbox {
            data: root.join("data"),
            socket: root.join("socket"),
            root,
            port: free_port(),
        };
        LIVE.lock().unwrap().push(sandbox.root.clone());
        install_interrupt_handler();
        let marker = Marker {
            pid,
            start: start_time(pid),
            created_at: crate::clock::now_rfc3339(),
        };
        fs::write(sandbox.root.join(MARKER), serde_json::to_vec(&marker)?)?;
        for d in [&sandbox.data, &sandbox.socket] {
            fs::DirBuilder::new().mode(0o700).create(d)?;
            chown(d, owner)?;
        }
        let hba = sandbox.root.join("pg_hba.conf");
        fs::write(
            &hba,
            "# vaultctl sandbox: only the private socket directory, which only the server's user and root can enter\nlocal all all trust\n",
        )?;
        fs::set_permissions(&hba, fs::Permissions::from_mode(0o600))?;
        chown(&hba, owner)?;
        Ok(sandbox)
    }

    /// The server settings that make the restored cluster a private
    /// sandbox (written after the backup's own and the neutralised ones).
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("listen_addresses", String::new()),
            ("port", self.port.to_string()),
            ("unix_socket_directories", self.socket.display().to_string()),
            ("unix_socket_permissions", "0700".into()),
            (
                "hba_file",
                self.root.join("pg_hba.conf").display().to_string(),
            ),
            // The backup's certificate paths and log collector would not
            // fit here; the recovery log is read for where replay stopped.
            ("ssl", "off".into()),
            ("logging_collector", "off".into()),
            ("hot_standby", "off".into()),
            ("synchronous_standby_names", String::new()),
            ("shared_buffers", "128MB".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A connection URL to `db` in the sandbox as `user`, over its socket.
    pub fn url(&self, user: &str, db: &str) -> String {
        format!(
            "postgresql://{}@/{}?host={}&port={}",
            pct(user),
            pct(db),
            pct(&self.socket.display().to_string()),
            self.port
        )
    }
}

/// Percent-encodes everything but unreserved characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn free_port() -> u16 {
    // With listen_addresses = '' the port only names the socket file, in a
    // directory of its own: any free number does.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(54329)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = remove(&self.root) {
            tracing::warn!(
                "could not remove the sandbox {}: {e:#}; the next tenant restore removes it",
                self.root.display()
            );
        }
        LIVE.lock().unwrap().retain(|p| p != &self.root);
    }
}

/// The postmaster's pid from `data/postmaster.pid`, when it still runs.
fn postmaster(root: &Path) -> Option<i32> {
    let text = fs::read_to_string(root.join("data/postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    (pid > 0 && crate::repo::process_alive(pid)).then_some(pid)
}

/// Stops a sandbox's server (immediate shutdown: SIGQUIT, then SIGKILL
/// after 10 s) and deletes the directory.
pub fn remove(root: &Path) -> Result<()> {
    if let Some(pid) = postmaster(root) {
        use rustix::process::{kill_process, Signal};
        let pid = rustix::process::Pid::from_raw(pid).context("postmaster.pid holds no pid")?;
        let _ = kill_process(pid, Signal::QUIT);
        let t = Instant::now();
        let alive = || crate::repo::process_alive(pid.as_raw_pid());
        while alive() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive() {
            let _ = kill_process(pid, Signal::KILL);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    if root.exists() {
        fs::remove_dir_all(root).with_context(|| format!("cannot delete {}", root.display()))?;
    }
    Ok(())
}

/// The sandboxes under `work_dir` whose vaultctl process is gone.
pub fn stale(work_dir: &Path) -> Vec<Stale> {
    let Ok(entries) = fs::read_dir(work_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if !e.file_name().to_string_lossy().starts_with(PREFIX) || !path.is_dir() {
            continue;
        }
        let marker: Option<Marker> = fs::read(path.join(MARKER))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if marker.as_ref().is_some_and(owner_alive) {
            continue;
        }
        out.push(Stale {
            running: postmaster(&path).is_some(),
            pid: marker.as_ref().map(|m| m.pid),
            created_at: marker.map(|m| m.created_at),
            path,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The stale sandboxes under any of `dirs` (each directory looked at once).
pub fn stale_in(dirs: &[PathBuf]) -> Vec<Stale> {
    let mut seen = std::collections::BTreeSet::new();
    dirs.iter()
        .filter(|d| seen.insert(d.as_path()))
        .flat_map(|d| stale(d))
        .collect()
}

/// Stops and deletes every stale sandbox under any of `dirs`; returns
/// those removed.
pub fn sweep(dirs: &[PathBuf]) -> Result<Vec<Stale>> {
    let found = stale_in(dirs);
    for s in &found {
        tracing::warn!(
            "removing the stale sandbox {} left by vaultctl process {} (killed or crashed){}",
            s.path.display(),
            s.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            if s.running {
                "; stopping its server"
            } else {
                ""
            }
        );
        remove(&s.path)?;
    }
    Ok(found)
}

/// On SIGINT, SIGTERM or SIGHUP: every live sandbox removed, then exit
/// 130. The handler only writes a byte to a pipe (async-signal-safe); a
/// thread does the work.
fn install_interrupt_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok((mut read, write)) = std::io::pipe() else {
            return;
        };
        if WAKE.set(write).is_err() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("vaultctl-sandbox-signal".into())
            .spawn(move || {
                use std::io::Read;
                let mut b = [0u8; 1];
                while !matches!(read.read(&mut b), Ok(1)) {}
                let live: Vec<PathBuf> = LIVE.lock().unwrap().clone();
                for root in live {
                    eprintln!(
                        "vaultctl: interrupted; removing the sandbox {}",
                        root.display()
                    );
                    let _ = remove(&root);
                }
                std::process::exit(130);
            });
        if spawned.is_err() {
            return;
        }
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: installing a signal handler has no safe std or rustix
            // API. on_signal only reads an initialized OnceLock and calls
            // write(2), both async-signal-safe.
            unsafe {
                libc::signal(
                    sig,
                    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
                )
            };
        }
    });
}

/// The pipe's write end: the handler wakes the cleanup thread through it.
static WAKE: std::sync::OnceLock<std::io::PipeWriter> = std::sync::OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    use std::io::Write;
    if let Some(mut w) = WAKE.get() {
        let _ = w.write(b"x");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_of_a_dead_process_is_stale_and_swept() {
        let work = tempfile::tempdir().unwrap();
        let me = super::super::pitr::resolve_owner(work.path(), None).unwrap();
        let live = Sandbox::create(work.path(), &me).unwrap();
        // Our own sandbox is not stale.
        assert!(stale(work.path()).is_empty());
        // One whose process is gone (pid 0x7fffffff never runs).
        let dead = work.path().join(format!("{PREFIX}2147483647-0"));
        fs::create_dir_all(dead.join("data")).unwrap();
        fs::write(
            dead.join(MARKER),
            r#"{"pid":2147483647,"start":null,"created_at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let found = stale(work.path());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, dead);
        assert!(!found[0].running);
        // Each directory is looked at once, however often it is named.
        let dirs = [work.path().to_path_buf(), work.path().to_path_buf()];
        assert_eq!(stale_in(&dirs).len(), 1);
        assert_eq!(sweep(&dirs).unwrap().len(), 1);
        assert!(!dead.exists());
        let root = live.root.clone();
        assert!(root.join("pg_hba.conf").exists());
        drop(live);
        assert!(!root.exists());
    }

    #[test]
    fn urls_reach_the_socket() {
        let s = Sandbox {
            root: "/x".into(),
            data: "/x/data".into(),
            socket: "/x/my socket".into(),
            port: 5999,
        };
        let url = s.url("postgres", "app db");
        assert_eq!(
            url,
            "postgresql://postgres@/app%20db?host=%2Fx%2Fmy%20socket&port=5999"
        );
        let c: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(c.get_dbname(), Some("app db"));
    }
}
