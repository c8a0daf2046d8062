//! Point-in-time recovery against a real PostgreSQL 15 cluster that archives
//! through `vaultctl wal push` (run by the server as `vaultctl-pg`) to a
//! local target and an S3 target (s3s-fs): base backup, restores to a time
//! between two batches and to the latest WAL, push idempotency, fetch of a
//! missing segment, archiving while the S3 target is down, and catch-up.

use crate::common;
use crate::pg;
use crate::pty;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, S3Server, ACCESS_KEY as AK, SECRET_KEY as SK};
use pg::{as_owner, is_root, Cluster, Vault, PG_USER, SUPERUSER_PASSWORD};
use pty::{exit_code, send, ENTER};

/// A cluster archiving into a vault with a local and an S3 target.
struct Setup {
    s3: S3Server,
    v: Vault,
    c: Cluster,
    restored: Vec<PathBuf>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for d in &self.restored {
            let _ = as_owner(&self.c.bin.join("pg_ctl"))
                .arg("-D")
                .arg(d)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub(crate) fn chown_to_pg(p: &Path) {
    if is_root() {
        let st = Command::new("chown")
            .args(["-R", &format!("{PG_USER}:{PG_USER}")])
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

/// `asynchronous`: archive_command uses `wal push --async`.
fn setup(asynchronous: bool) -> Setup {
    std::env::set_var("VAULTCTL_TEST_S3_AK", AK);
    std::env::set_var("VAULTCTL_TEST_S3_SK", SK);
    let dir = tempfile::Builder::new()
        .prefix("vaultctl-pitr-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path().to_path_buf();
    let s3 = S3Server::start(&d.join("s3"));
    // The cluster's port must be known for the source url: reserve the
    // config now and fill the url in after the cluster started.
    let exe = env!("CARGO_BIN_EXE_vaultctl");
    let config = d.join("config.toml");
    let archive = format!(
        "archive_mode = on\narchive_command = '\"{exe}\" --config \"{}\" wal push {}\"%p\"'\narchive_timeout = 0\n",
        config.display(),
        if asynchronous { "--async " } else { "" }
    );
    // Write a config without the source so init can run first.
    let base = format!(
        "catalog = \"{0}/catalog.db\"\n[keys]\nidentity_file = \"{0}/identity.txt\"\ndedup_key_file = \"{0}/dedup.key\"\n\
         [[target]]\nname = \"local\"\nurl = \"file://{0}/repo\"\n\
         [[target]]\nname = \"s3\"\nurl = \"s3://bkt/vault\"\nendpoint = \"http://127.0.0.1:{1}\"\nregion = \"us-east-1\"\n\
         access_key_id_env = \"VAULTCTL_TEST_S3_AK\"\nsecret_access_key_env = \"VAULTCTL_TEST_S3_SK\"\nallow_http = true\nmax_retries = 2\nretry_timeout = \"5s\"\n",
        d.display(),
        s3.port
    );
    std::fs::write(&config, &base).unwrap();
    let v = Vault { dir, config };
    let out = v.run(&[
        "key",
        "generate",
        "--output",
        &d.join("identity.txt").display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = v.run(&["init"]);
    assert!(out.status.success(), "init: {}", stderr(&out));
    let c = Cluster::start_with(
        &archive,
        &[("VAULTCTL_TEST_S3_AK", AK), ("VAULTCTL_TEST_S3_SK", SK)],
    );
    let pw = d.join("cluster.password");
    std::fs::write(&pw, format!("{SUPERUSER_PASSWORD}\n")).unwrap();
    std::fs::write(
        &v.config,
        format!(
            "{base}[[source]]\nname = \"cluster\"\nkind = \"postgres-physical\"\nurl = \"{}\"\npassword_file = \"{}\"\npg_bin_dir = \"{}\"\n",
            c.url("postgres", "postgres"),
            pw.display(),
            c.bin.display()
        ),
    )
    .unwrap();
    // The server (vaultctl-pg) runs wal push/fetch: it reads the config and
    // keys and writes the local repository's wal/ and the pending state.
    chown_to_pg(v.dir.path());
    Setup {
        s3,
        v,
        c,
        restored: Vec::new(),
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Runs vaultctl as the server's user, as PostgreSQL would.
fn run_as_pg(v: &Vault, args: &[&str]) -> Output {
    as_owner(Path::new(env!("CARGO_BIN_EXE_vaultctl")))
        .arg("--config")
        .arg(&v.config)
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Inserts a batch, switches WAL and waits until the segment is archived.
fn batch(c: &Cluster, n: i32) -> String {
    c.psql(
        "postgres",
        &format!("INSERT INTO t SELECT {n}, g FROM generate_series(1, 100) g"),
    );
    let seg = c.psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())");
    wait_archived(c, &seg);
    seg
}

pub(crate) fn wait_archived(c: &Cluster, seg: &str) {
    let t = Instant::now();
    loop {
        let last = c.psql(
            "postgres",
            "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
        );
        if last.as_str() >= seg {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "segment {seg} was not archived (last: {last}); server log:\n{}",
            std::fs::read_to_string(c.dir.path().join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn now_utc(c: &Cluster) -> String {
    c.psql(
        "postgres",
        "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    )
}

fn psql_at(c: &Cluster, port: u16, sql: &str) -> String {
    let out = Command::new(c.bin.join("psql"))
        .args(["-X", "-q", "-A", "-t", "-U", "postgres", "-h"])
        .arg(c.socket_dir())
        .args(["-p", &port.to_string(), "-d", "postgres", "-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn restore(s: &mut Setup, name: &str, extra: &[&str]) -> (u16, String) {
    let dir = s.c.dir.path().join(name);
    let port = free_port();
    let mut args = vec![
        "restore".to_string(),
        "--type".into(),
        "pitr".into(),
        "--pgdata".into(),
        dir.display().to_string(),
        "--start".into(),
        "--yes".into(),
        "--owner".into(),
        PG_USER.into(),
        "--set".into(),
        format!("port={port}"),
        "--set".into(),
        format!("unix_socket_directories={}", s.c.socket_dir().display()),
        "--reason".into(),
        format!("test {name}"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    s.restored.push(dir.clone());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = s.v.run(&refs);
    assert!(
        out.status.success(),
        "restore {name}: {}\n{}\nrecovery log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out),
        std::fs::read_to_string(dir.join("vaultctl-recovery.log")).unwrap_or_default()
    );
    // The newest archived WAL was found (the --to-time check ran).
    assert!(
        !stderr(&out).contains("could be listed"),
        "{}",
        stderr(&out)
    );
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "data directory mode");
    (port, String::from_utf8_lossy(&out.stdout).to_string())
}

fn counts(c: &Cluster, port: u16) -> String {
    psql_at(
        c,
        port,
        "SELECT string_agg(batch || ':' || n, ',' ORDER BY batch) FROM (SELECT batch, count(*) n FROM t GROUP BY batch) x",
    )
}

#[test]
fn pitr_restore_to_time_and_to_latest_from_local_and_s3() {
    // Archiving in the asynchronous mode here; synchronous in the other test.
    let mut s = setup(true);
    let c = &s.c;
    c.psql("postgres", "CREATE TABLE t (batch int, n int)");
    c.psql(
        "postgres",
        "INSERT INTO t SELECT 0, g FROM generate_series(1, 10) g",
    );
    let id = s.v.backup(&["cluster"]);
    let list = s.v.json(&["list", "--source", "cluster"]);
    assert_eq!(list[0]["kind"], "postgres-physical", "{list}");
    // The manifest's engine facts, as the catalog keeps them.
    let db = rusqlite::Connection::open(s.v.dir.path().join("catalog.db")).unwrap();
    let details: String = db
        .query_row("SELECT details FROM backups WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    let engine = &serde_json::from_str::<serde_json::Value>(&details).unwrap()["engine"];
    for key in [
        "start_lsn",
        "stop_lsn",
        "start_wal",
        "stop_wal",
        "system_identifier",
        "server_version",
        "consistent_at",
    ] {
        assert!(engine[key].is_string(), "{key} missing: {engine}");
    }
    assert_eq!(engine["timeline"], 1, "{engine}");
    assert!(engine["server_version"].as_str().unwrap().starts_with("15"));

    batch(c, 1);
    let t1 = now_utc(c);
    std::thread::sleep(Duration::from_millis(300));
    batch(c, 2);
    let t2 = now_utc(c);
    std::thread::sleep(Duration::from_millis(300));
    batch(c, 3);

    // Between batches 1 and 2: exactly the rows committed before t1.
    let (p1, out) = restore(&mut s, "to-t1", &["--source", "cluster", "--to-time", &t1]);
    assert!(out.contains("last transaction replayed"), "{out}");
    assert_eq!(counts(&s.c, p1), "0:10,1:100");
    assert_eq!(psql_at(&s.c, p1, "SELECT pg_is_in_recovery()"), "f");

    // Between 2 and 3, from the S3 target only, naming the backup.
    let (p2, _) = restore(&mut s, "to-t2", &[&id, "--to-time", &t2, "--target", "s3"]);
    assert_eq!(counts(&s.c, p2), "0:10,1:100,2:100");

    // To the end of the archive.
    let (p3, _) = restore(&mut s, "latest", &["--source", "cluster", "--to-latest"]);
    assert_eq!(counts(&s.c, p3), "0:10,1:100,2:100,3:100");

    // The wizard, through a pty: a time before the backup is refused in
    // step 3, then t1; it prepares the directory (no port: not started).
    let parent = s.c.dir.path().join("wizard");
    std::fs::create_dir(&parent).unwrap();
    chown_to_pg(&parent);
    let pgdata = parent.join("data").display().to_string();
    let mut p = pty::wizard(&s.v.config, s.v.dir.path(), &[]);
    p.exp_string("Step 1 of 4").unwrap();
    send(&mut p, ENTER);
    p.exp_string("Step 2 of 4").unwrap();
    p.exp_string("unavailable: a physical backup restores as point-in-time")
        .unwrap();
    send(&mut p, ENTER); // the first available: point-in-time
    p.exp_string("Step 3 of 4").unwrap();
    p.exp_string("New data directory").unwrap();
    send(&mut p, &format!("{pgdata}{ENTER}"));
    let owner = if is_root() {
        // As root it asks who owns the files: the parent's owner is offered.
        p.exp_string("Operating-system user").unwrap();
        p.exp_string(PG_USER).unwrap();
        send(&mut p, ENTER);
        format!(" --owner {PG_USER}")
    } else {
        String::new()
    };
    p.exp_string("archived WAL cover").unwrap();
    send(&mut p, &format!("2001-01-01T00:00:00Z{ENTER}"));
    p.exp_string("before the base backup became consistent")
        .unwrap();
    send(&mut p, &format!("{t1}{ENTER}"));
    p.exp_string("Start the recovered server on port").unwrap();
    send(&mut p, ENTER);
    p.exp_string("Reason for this restore").unwrap();
    send(&mut p, &format!("wizard pitr{ENTER}"));
    p.exp_string("Step 4 of 4").unwrap();
    p.exp_string(&format!(
        "restore {id} --type pitr --pgdata {pgdata} --to-time {t1}{owner} --reason 'wizard pitr' --yes"
    ))
    .unwrap();
    p.exp_string("Type the directory").unwrap();
    send(&mut p, &format!("{pgdata}{ENTER}"));
    p.exp_string("next time, without the wizard").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&mut p), 0);
    let port = free_port();
    s.restored.push(pgdata.clone().into());
    let out = as_owner(&s.c.bin.join("pg_ctl"))
        .args(["-D", &pgdata, "-l"])
        .arg(parent.join("log"))
        .arg("-o")
        .arg(format!("-p {port} -k {}", s.c.socket_dir().display()))
        .args(["-w", "-t", "120", "start"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let t = Instant::now();
    while psql_at(&s.c, port, "SELECT pg_is_in_recovery()") != "f" {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "recovery did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(counts(&s.c, port), "0:10,1:100");

    // Refused before anything is written: a time after the newest archived
    // WAL, and a non-empty directory.
    let refused = |dir: &str, to: &[&str]| {
        let pgdata = s.c.dir.path().join(dir).display().to_string();
        let mut args = vec!["restore", &id, "--type", "pitr", "--pgdata", &pgdata];
        args.extend_from_slice(to);
        let o = s.v.run(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        stderr(&o)
    };
    let e = refused("future", &["--to-time", "2999-01-01T00:00:00Z"]);
    assert!(e.contains("after the newest archived WAL"), "{e}");
    assert!(!s.c.dir.path().join("future").exists());
    let e = refused("latest", &["--to-latest"]);
    assert!(e.contains("not empty"), "{e}");

    // The restore log has the four restores (three by flags, one by the wizard).
    let log = s.v.json(&["restores"]);
    let pitr: Vec<_> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "pitr" && r["outcome"] == "succeeded")
        .collect();
    assert_eq!(pitr.len(), 4, "{log}");
    assert!(pitr.iter().any(|r| r["reason"] == "wizard pitr"), "{log}");

    // Both targets hold the WAL; no gaps, nothing behind.
    let st = s.v.run(&["--json", "wal", "status"]);
    let j: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st.status.code(), Some(0), "{j}\n{}", stderr(&st));
    assert_eq!(j["targets"][1]["target"], "s3");
    assert_eq!(j["targets"][1]["behind_primary"], 0, "{j}");
    assert!(j["targets"][0]["files"].as_u64().unwrap() >= 4, "{j}");
}

#[test]
fn wal_push_idempotent_fetch_missing_and_secondary_outage() {
    let mut s = setup(false);
    let c = &s.c;
    c.psql("postgres", "CREATE TABLE t (batch int, n int)");

    // Same content twice: success; different content: refused.
    let work = s.v.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let seg = work.join("0000000A0000000000000001");
    std::fs::write(&seg, vec![7u8; 1 << 20]).unwrap();
    chown_to_pg(&work);
    let p = seg.display().to_string();
    let o = run_as_pg(&s.v, &["--json", "wal", "push", &p]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_as_pg(&s.v, &["--json", "wal", "push", &p]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("already-archived"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    std::fs::write(&seg, vec![8u8; 1 << 20]).unwrap();
    let o = run_as_pg(&s.v, &["wal", "push", &p]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("DIFFERENT"), "{}", stderr(&o));

    // Fetch: the archived content comes back; a missing one exits 1 and says so.
    let back = work.join("fetched");
    let o = run_as_pg(
        &s.v,
        &[
            "wal",
            "fetch",
            "0000000A0000000000000001",
            &back.display().to_string(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&back).unwrap(), vec![7u8; 1 << 20]);
    let o = run_as_pg(
        &s.v,
        &[
            "wal",
            "fetch",
            "0000000A00000000000000FF",
            &back.display().to_string(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not in the archive"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("vaultctl: error"), "{}", stderr(&o));

    // The S3 target goes down: archiving goes on (primary = local).
    s.s3.stop();
    let mut down = Vec::new();
    for n in 1..=3 {
        down.push(batch(c, n));
    }
    let failed = c.count("postgres", "SELECT failed_count FROM pg_stat_archiver");
    assert_eq!(
        failed, 0,
        "archiving must not fail while a secondary is down"
    );
    let st = s.v.run(&["--json", "wal", "status"]);
    assert_eq!(st.status.code(), Some(1), "{}", stderr(&st));
    assert!(stderr(&st).contains("CRITICAL"), "{}", stderr(&st));
    // ... and raises the critical alert that `status` and notifiers see.
    let wal_alert = |s: &Setup| {
        s.v.json(&["alerts"])
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "wal_archive")
            .cloned()
    };
    let a = wal_alert(&s).expect("a wal_archive alert");
    assert_eq!(a["severity"], "critical", "{a}");
    assert_eq!(a["source"], "cluster", "{a}");
    assert!(a["message"].as_str().unwrap().contains("'s3'"), "{a}");
    let pending = s.v.dir.path().join("wal-pending/s3/cluster");
    for seg in &down {
        assert!(pending.join(seg).exists(), "{seg} not recorded as pending");
    }

    // Back up: the next push catches up what is pending.
    s.s3.restart();
    let _ = std::fs::remove_file(s.v.dir.path().join("wal-pending/s3/.down"));
    batch(c, 4);
    for seg in &down {
        assert!(!pending.join(seg).exists(), "{seg} still pending");
    }
    let st = s.v.run(&["--json", "wal", "status"]);
    let j: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(j["targets"][1]["behind_primary"], 0, "{j}");
    assert_eq!(st.status.code(), Some(0), "{j}");
    assert!(
        wal_alert(&s).is_none(),
        "the alert resolves once archiving is whole"
    );

    // And `wal sync` fills anything else in (here: nothing left).
    let o = s.v.run(&["--json", "wal", "sync"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The first target is lost: fetch falls back to the S3 target.
    let repo = s.v.dir.path().join("repo");
    std::fs::rename(&repo, s.v.dir.path().join("repo-lost")).unwrap();
    let o = run_as_pg(
        &s.v,
        &["wal", "fetch", &down[0], &back.display().to_string()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&back).unwrap().len(), 16 << 20);
}

#[test]
fn prune_removes_wal_only_older_than_every_kept_base_backup() {
    let mut s = setup(false);
    let c = &s.c;
    c.psql("postgres", "CREATE TABLE t (batch int, n int)");
    let first = s.v.backup(&["cluster"]);
    let before_second = batch(c, 1);
    batch(c, 2);
    let second = s.v.backup(&["cluster"]);
    batch(c, 3);
    // The WAL file names on the local target (segments sit in one
    // directory per 4 GiB of WAL, .history files beside them).
    let list = |s: &Setup| -> Vec<String> {
        let mut v = Vec::new();
        let mut dirs = vec![s.v.dir.path().join("repo/wal/cluster")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    dirs.push(e.path());
                } else {
                    v.push(e.file_name().into_string().unwrap());
                }
            }
        }
        v.sort();
        v
    };
    let all = list(&s);
    assert!(all.contains(&before_second), "{all:?}");

    // Keep only the newest base backup on the local target.
    let text = std::fs::read_to_string(&s.v.config).unwrap();
    let local = format!("url = \"file://{}/repo\"\n", s.v.dir.path().display());
    std::fs::write(
        &s.v.config,
        text.replace(
            &local,
            &format!("{local}[target.retention]\nkeep_last = 1\n"),
        ),
    )
    .unwrap();
    let dry = s.v.json(&["prune", "--target", "local", "--dry-run"]);
    let wal = &dry["targets"][0]["wal"][0];
    assert_eq!(wal["source"], "cluster", "{dry}");
    assert!(wal["removed"].as_u64().unwrap() >= 1, "{dry}");
    assert_eq!(list(&s), all, "a dry run removes nothing");

    let out = s.v.json(&["prune", "--target", "local"]);
    assert_eq!(out["targets"][0]["removed"][0], first.as_str(), "{out}");
    let keep_from = out["targets"][0]["wal"][0]["keep_from"]
        .as_str()
        .unwrap()
        .to_string();
    let left = list(&s);
    for name in &all {
        let segment = name.len() == 24 || name.ends_with(".partial") || name.ends_with(".backup");
        let needed = !segment || name[..24] >= *keep_from;
        assert_eq!(
            left.contains(name),
            needed,
            "{name} (keep from {keep_from}): {left:?}"
        );
    }
    assert!(!left.contains(&before_second), "{left:?}");
    // The S3 target has no policy: its WAL is untouched.
    let st = s.v.json(&["wal", "status"]);
    assert!(
        st["targets"][1]["files"].as_u64().unwrap() as usize >= all.len(),
        "{st}"
    );

    // What is left still recovers to the latest WAL from the kept backup.
    let (p, _) = restore(
        &mut s,
        "after-prune",
        &[&second, "--to-latest", "--target", "local"],
    );
    assert_eq!(counts(&s.c, p), "1:100,2:100,3:100");

    // A tablespace outside the data directory cannot ride in the one tar
    // stream: the base backup is refused, saying so, and nothing is recorded.
    let ts = s.c.dir.path().join("tablespace");
    std::fs::create_dir(&ts).unwrap();
    chown_to_pg(&ts);
    s.c.psql(
        "postgres",
        &format!("CREATE TABLESPACE extra LOCATION '{}'", ts.display()),
    );
    let completed = |s: &Setup| {
        s.v.json(&["list", "--source", "cluster", "--status", "completed"])
            .as_array()
            .unwrap()
            .len()
    };
    let before = completed(&s);
    let o = s.v.run(&["backup", "cluster"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("tablespace"), "{}", stderr(&o));
    assert_eq!(completed(&s), before);
}

/// A base backup is data: settings in its postgresql.auto.conf that would
/// make the restore host run a command or load a library from a path
/// (recovery_end_command, archive_cleanup_command, ssl_passphrase_command,
/// dynamic_library_path, preload libraries named by path) are neutralised
/// in the restored cluster and reported.
#[test]
fn pitr_neutralises_command_settings_from_the_backup() {
    let mut s = setup(false);
    let marker = s.c.dir.path().join("pwned");
    let touch = format!("touch {}", marker.display());
    let c = &s.c;
    c.psql("postgres", "CREATE TABLE t (batch int, n int)");
    // ALTER SYSTEM only writes postgresql.auto.conf: the source cluster is
    // not reloaded, so it never runs these; the restored one would.
    for sql in [
        format!("ALTER SYSTEM SET recovery_end_command = '{touch}'"),
        format!("ALTER SYSTEM SET archive_cleanup_command = '{touch}'"),
        format!("ALTER SYSTEM SET ssl_passphrase_command = '{touch}'"),
        "ALTER SYSTEM SET dynamic_library_path = '/tmp/vaultctl-evil:$libdir'".to_string(),
        "ALTER SYSTEM SET shared_preload_libraries = '/tmp/vaultctl-evil/lib.so'".to_string(),
    ] {
        c.psql("postgres", &sql);
    }
    let id = s.v.backup(&["cluster"]);
    batch(c, 1);
    let (port, stdout) = restore(&mut s, "neutralised", &[&id, "--to-latest"]);
    assert_eq!(counts(&s.c, port), "1:100");
    assert!(!marker.exists(), "a command from the backup ran");
    for (name, want) in [
        ("recovery_end_command", ""),
        ("archive_cleanup_command", ""),
        ("ssl_passphrase_command", ""),
        ("dynamic_library_path", "$libdir"),
        ("shared_preload_libraries", ""),
    ] {
        assert_eq!(psql_at(&s.c, port, &format!("SHOW {name}")), want, "{name}");
    }
    for name in [
        "recovery_end_command",
        "shared_preload_libraries",
        "dynamic_library_path",
    ] {
        assert!(stdout.contains(name), "not reported: {name}\n{stdout}");
    }
}
