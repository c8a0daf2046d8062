//! Point-in-time restores: a base backup extracted into an empty data
//! directory, recovery configured to replay archived WAL (fetched by this
//! binary) up to a time or to the end of the archive, and optionally the
//! server started and watched until recovery has finished.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::error::{fail, ExitStatus, Failure};

/// Who will own the data directory (and run the server).
#[derive(Debug, Clone)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => format!("uid {uid}"),
    }
}

/// The owner: `--owner NAME`, else (as root) the owner of DIR's parent,
/// else the current user.
pub fn resolve_owner(dir: &Path, explicit: Option<&str>) -> Result<Owner> {
    if let Some(name) = explicit {
        // The user database through the C library (NSS: LDAP users too).
        let Ok(Some(user)) = nix::unistd::User::from_name(name) else {
            return fail(
                ExitStatus::Usage,
                format!("there is no user '{name}' (--owner)."),
                "Name the operating-system user that runs PostgreSQL, e.g. --owner postgres.",
            );
        };
        return Ok(Owner {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            name: name.to_string(),
        });
    }
    let (euid, egid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    if euid != 0 {
        return Ok(Owner {
            uid: euid,
            gid: egid,
            name: user_name(euid),
        });
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let m = fs::metadata(parent).with_context(|| format!("cannot read {}", parent.display()))?;
    Ok(Owner {
        uid: m.uid(),
        gid: m.gid(),
        name: user_name(m.uid()),
    })
}

/// Refuses a non-empty directory; creates a missing one.
pub fn check_empty(dir: &Path) -> Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            return fail(
                ExitStatus::Usage,
                format!("{} exists and is not a directory.", dir.display()),
                "Give --pgdata a new or empty directory.",
            );
        }
        if fs::read_dir(dir)?.next().is_some() {
            return fail(
                ExitStatus::Usage,
                format!("the data directory {} is not empty.", dir.display()),
                "A point-in-time restore needs a new or empty directory; it never writes over an existing cluster. Stop and move the old one away first.",
            );
        }
    }
    Ok(())
}

/// A recovery target time in PostgreSQL's format, from RFC 3339
/// (`2026-11-22T03:00:00.123456Z`) or PostgreSQL's own text
/// (`2026-11-22 03:00:00.123456+00`), keeping every fractional digit.
pub fn parse_target_time(s: &str) -> Result<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let mut t = s.trim().to_string();
    if t.len() > 10 && t.as_bytes()[10] == b' ' {
        t.replace_range(10..11, "T");
    }
    // "+00" / "+0530" → "+00:00" / "+05:30"
    if let Some(pos) = t.rfind(['+', '-']).filter(|p| *p > 10) {
        let off = &t[pos + 1..];
        if off.len() == 2 && off.bytes().all(|b| b.is_ascii_digit()) {
            t.push_str(":00");
        } else if off.len() == 4 && off.bytes().all(|b| b.is_ascii_digit()) {
            t.insert(pos + 3, ':');
        }
    }
    time::OffsetDateTime::parse(&t, &Rfc3339).map_err(|_| {
        Failure::new(
            ExitStatus::Usage,
            format!("\"{s}\" is not a time with a zone."),
        )
        .with_remedy(
            "Use RFC 3339 with a zone, e.g. 2026-11-22T03:00:00Z or 2026-11-22 03:00:00.123456+00.",
        )
        .into()
    })
}

/// `YYYY-MM-DD HH:MM:SS.ffffff+00` (UTC, microseconds).
pub fn pg_time(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]+00"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

/// What the restore writes into the data directory for recovery.
pub struct RecoverySettings {
    pub restore_command: String,
    /// `None`: to the end of the archive.
    pub target_time: Option<time::OffsetDateTime>,
    /// Overrides that keep backup content from running code ([`neutralise`]).
    pub neutralised: Vec<Neutralised>,
    /// Extra `name = value` settings (`--set`), e.g. port; written last, so
    /// an operator's explicit choice wins over a neutralised value.
    pub extra: Vec<(String, String)>,
    pub backup_id: String,
}

/// A setting of the restored cluster that vaultctl overrode, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Neutralised {
    pub name: String,
    /// The value the base backup's configuration gave it.
    pub was: String,
    /// The value written into postgresql.auto.conf.
    pub now: String,
}

/// Settings whose value is a shell command the server runs. A base backup
/// is data that its source host wrote (DESIGN §8): none of them may run on
/// the restore host, so each is emptied. `restore_command` is vaultctl's own.
const COMMAND_SETTINGS: &[&str] = &[
    "archive_command",
    "archive_library",
    "recovery_end_command",
    "archive_cleanup_command",
    "ssl_passphrase_command",
];

/// Settings naming shared libraries the server loads at start or connect.
/// A name with a `/` loads that file (which the backup may carry inside the
/// data directory); bare names come from the installation and stay.
const LIBRARY_SETTINGS: &[&str] = &[
    "shared_preload_libraries",
    "session_preload_libraries",
    "local_preload_libraries",
];

/// The overrides that keep a restored cluster from running a command or
/// loading code the backup chose: every command setting emptied,
/// `dynamic_library_path` back to `$libdir`, and path entries dropped from
/// the preload lists. Reads the effective values with `postgres -C` (which
/// parses the configuration, includes too, and exits without starting or
/// loading anything), as the owner, so the data directory must already
/// belong to it. Every override is written, whatever the value was; the
/// result lists those that changed something, for the report.
pub fn neutralise(bin: &Path, dir: &Path, owner: &Owner) -> Result<Vec<(Neutralised, bool)>> {
    let effective = |name: &str| -> Result<String> {
        let program = bin.join("postgres");
        let mut cmd = as_owner(&program, owner, dir);
        super::english_messages(&mut cmd)
            .arg("-D")
            .arg(dir)
            .args(["-C", name]);
        let out = server_program_output(&mut cmd, &program)?;
        if !out.status.success() {
            return fail(
                ExitStatus::Failure,
                format!(
                    "the restored configuration cannot be read (postgres -C {name}): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                "Check postgresql.conf and postgresql.auto.conf in the restored data directory (PostgreSQL could not start with them either), or restore a different base backup.",
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_string())
    };
    let mut out = Vec::new();
    for name in COMMAND_SETTINGS {
        let was = effective(name)?;
        let changed = !was.is_empty();
        out.push((
            Neutralised {
                name: name.to_string(),
                was,
                now: String::new(),
            },
            changed,
        ));
    }
    let was = effective("dynamic_library_path")?;
    let changed = was != "$libdir";
    out.push((
        Neutralised {
            name: "dynamic_library_path".into(),
            was,
            now: "$libdir".into(),
        },
        changed,
    ));
    for name in LIBRARY_SETTINGS {
        let was = effective(name)?;
        let now = safe_library_list(&was);
        let changed = now != was;
        out.push((
            Neutralised {
                name: name.to_string(),
                was,
                now,
            },
            changed,
        ));
    }
    Ok(out)
}

/// A preload list without the entries that name a file by path.
fn safe_library_list(list: &str) -> String {
    list.split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('/'))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Quotes a value for postgresql.conf, where a quoted value takes backslash
/// escapes: quotes doubled, backslashes doubled, line breaks as `\n`/`\r`
/// (a raw line break would end the line and start a setting of its own).
fn conf_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str(r"\\"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A setting name for postgresql.conf (`--set NAME=VALUE`).
fn conf_name(k: &str) -> Result<&str> {
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(Failure::new(
            ExitStatus::Usage,
            format!(
                "{} is not a PostgreSQL setting name.",
                super::comment_text(k)
            ),
        )
        .with_remedy("Use --set name=value with a setting name of letters, digits, _ and dots.")
        .into());
    }
    Ok(k)
}

/// Appends recovery settings to postgresql.auto.conf and creates
/// recovery.signal. Archiving is switched off in the restored cluster so
/// it cannot push a new timeline into the archive of the cluster it came
/// from; enable it again when it becomes the primary.
pub fn write_recovery(dir: &Path, s: &RecoverySettings) -> Result<()> {
    let mut text = format!(
        "\n# Added by vaultctl restore --type pitr (backup {}) on {}.\n",
        super::comment_text(&s.backup_id),
        crate::clock::now_rfc3339()
    );
    text.push_str(&format!(
        "restore_command = {}\n",
        conf_value(&s.restore_command)
    ));
    match s.target_time {
        Some(t) => {
            text.push_str(&format!(
                "recovery_target_time = {}\nrecovery_target_action = 'promote'\n",
                conf_value(&pg_time(t))
            ));
        }
        None => text.push_str("# no recovery target: replay to the end of the archive\n"),
    }
    text.push_str("recovery_target_timeline = 'latest'\n");
    text.push_str("# the restored cluster does not archive into the source's WAL archive\narchive_mode = 'off'\n");
    text.push_str(
        "# settings from the backup that would run a command or load a file: not trusted\n",
    );
    for n in &s.neutralised {
        text.push_str(&format!("{} = {}\n", n.name, conf_value(&n.now)));
    }
    for (k, v) in &s.extra {
        text.push_str(&format!("{} = {}\n", conf_name(k)?, conf_value(v)));
    }
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("postgresql.auto.conf"))?;
    f.write_all(text.as_bytes())?;
    fs::write(dir.join("recovery.signal"), b"")?;
    Ok(())
}

/// Gives the tree to the owner (when run as root) and sets 0700 on the
/// data directory, as PostgreSQL requires.
pub fn fix_ownership(dir: &Path, owner: &Owner) -> Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    fn walk(p: &Path, owner: &Owner) -> Result<()> {
        std::os::unix::fs::lchown(p, Some(owner.uid), Some(owner.gid))
            .with_context(|| format!("cannot chown {}", p.display()))?;
        if fs::symlink_metadata(p)?.is_dir() {
            for e in fs::read_dir(p)? {
                walk(&e?.path(), owner)?;
            }
        }
        Ok(())
    }
    walk(dir, owner)
}

/// Runs a PostgreSQL server program to completion; a program that cannot
/// be started is an error with the fix.
fn server_program_output(cmd: &mut Command, program: &Path) -> Result<std::process::Output> {
    cmd.stdin(Stdio::null()).output().map_err(|e| {
        Failure::new(
            ExitStatus::Failure,
            format!("cannot run {}: {e}.", program.display()),
        )
        .with_remedy("Install the PostgreSQL server programs, or pass --pg-bin-dir.")
        .into()
    })
}

fn as_owner(program: &Path, owner: &Owner, dir: &Path) -> Command {
    let mut c = Command::new(program);
    super::english_messages(&mut c);
    c.current_dir(dir);
    if rustix::process::geteuid().is_root() {
        c.uid(owner.uid).gid(owner.gid);
    }
    c
}

/// How recovery ended.
#[derive(Debug, serde::Serialize)]
pub struct Recovered {
    /// The commit time of the last transaction replayed, from the server log.
    pub reached: Option<String>,
    /// The server's words about where it stopped.
    pub stopped: Option<String>,
    pub duration_ms: u64,
    pub log: String,
}

/// `pg_controldata`'s "Database cluster state".
fn cluster_state(bin: &Path, dir: &Path) -> Option<String> {
    let out = Command::new(bin.join("pg_controldata"))
        .arg(dir)
        .env("LC_ALL", "C")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Database cluster state:"))
        .map(|s| s.trim().to_string())
}

/// postmaster.pid's status line (the 8th) reads "ready" once the server
/// accepts connections, as pg_ctl checks.
fn postmaster_ready(dir: &Path) -> bool {
    fs::read_to_string(dir.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().nth(7).map(|l| l.trim() == "ready"))
        .unwrap_or(false)
}

/// Starts the server (pg_ctl, as the owner) and waits until recovery has
/// finished and the server has been promoted.
pub fn start_and_wait(
    bin: &Path,
    dir: &Path,
    owner: &Owner,
    timeout: Duration,
) -> Result<Recovered> {
    let started = Instant::now();
    let log = dir.join("vaultctl-recovery.log");
    let program = bin.join("pg_ctl");
    let mut cmd = as_owner(&program, owner, dir);
    cmd.arg("-D")
        .arg(dir)
        .arg("-l")
        .arg(&log)
        // The log is read for where recovery stopped: in English, whatever
        // lc_messages the cluster's own configuration has.
        .args(["-o", "-c lc_messages=C"])
        .args(["-W", "start"]);
    let out = server_program_output(&mut cmd, &program)?;
    if !out.status.success() {
        return fail(
            ExitStatus::Failure,
            format!(
                "pg_ctl start failed: {}{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                log_tail(&log)
            ),
            "The data directory is restored and configured; fix the problem and start it with pg_ctl.",
        );
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let state = cluster_state(bin, dir);
        // Promoted, and the postmaster says it accepts connections.
        if state.as_deref() == Some("in production") && postmaster_ready(dir) {
            break;
        }
        let running = as_owner(&bin.join("pg_ctl"), owner, dir)
            .arg("-D")
            .arg(dir)
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !running {
            return fail(
                ExitStatus::Failure,
                format!("the restored server stopped during recovery.{}", log_tail(&log)),
                "Read the server log above: a recovery target before the backup's end, WAL missing from the archive (see `vaultctl wal status`), or (\"recovery ended before configured recovery target was reached\") a target time after the last transaction in the archived WAL are the usual causes; for the last, have the server archive its current segment (SELECT pg_switch_wal()) and wait for `vaultctl wal status` to show it, or choose an earlier time.",
            );
        }
        if started.elapsed() > timeout {
            return fail(
                ExitStatus::Failure,
                format!(
                    "recovery did not finish within {} s (cluster state: {}).",
                    timeout.as_secs(),
                    state.unwrap_or_else(|| "unknown".into())
                ),
                "The server keeps recovering in the background; watch its log.",
            );
        }
    }
    let text = fs::read_to_string(&log).unwrap_or_default();
    let reached = text.lines().rev().find_map(|l| {
        l.split("last completed transaction was at log time ")
            .nth(1)
            .map(|s| s.trim().to_string())
    });
    let stopped = text
        .lines()
        .rev()
        .find(|l| l.contains("recovery stopping") || l.contains("archive recovery complete"))
        .map(|l| l.trim().to_string());
    Ok(Recovered {
        reached,
        stopped,
        duration_ms: started.elapsed().as_millis() as u64,
        log: log.display().to_string(),
    })
}

fn log_tail(log: &PathBuf) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(12)..].join("\n");
    if tail.is_empty() {
        String::new()
    } else {
        format!(" Server log ({}):\n{tail}", log.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_lists_keep_bare_names_only() {
        assert_eq!(safe_library_list(""), "");
        assert_eq!(
            safe_library_list("pg_stat_statements"),
            "pg_stat_statements"
        );
        assert_eq!(
            safe_library_list("pg_stat_statements, /srv/pgdata/evil.so,auto_explain, ../x"),
            "pg_stat_statements, auto_explain"
        );
    }

    #[test]
    fn conf_values_stay_on_their_line() {
        assert_eq!(conf_value("it's"), "'it''s'");
        assert_eq!(
            conf_value("a\\'\nrecovery_end_command = 'x'"),
            r"'a\\''\nrecovery_end_command = ''x'''"
        );
        assert!(conf_name("port").is_ok());
        assert!(conf_name("x\ny").is_err());
        let dir = tempfile::tempdir().unwrap();
        write_recovery(
            dir.path(),
            &RecoverySettings {
                restore_command: "vaultctl wal fetch %f %p\nrecovery_end_command = 'x'".into(),
                target_time: None,
                neutralised: Vec::new(),
                extra: vec![("port".into(), "5433\\".into())],
                backup_id: "abc\nrecovery_end_command = 'touch /tmp/x'".into(),
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join("postgresql.auto.conf")).unwrap();
        assert!(
            text.lines().all(|l| !l.starts_with("recovery_end_command")),
            "{text}"
        );
        assert!(text.contains(r"port = '5433\\'"), "{text}");
    }

    #[test]
    fn target_times() {
        let a = parse_target_time("2026-11-22T03:00:00.123456Z").unwrap();
        let b = parse_target_time("2026-11-22 03:00:00.123456+00").unwrap();
        let c = parse_target_time("2026-11-22 04:00:00.123456+0100").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(pg_time(a), "2026-11-22 03:00:00.123456+00");
        assert!(parse_target_time("yesterday").is_err());
        assert!(parse_target_time("2026-11-22 03:00:00").is_err());
    }
}
