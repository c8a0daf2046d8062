//! Adversarial tests: hygiene — secrets in messages, file modes, local
//! crash safety, WAL sync against retention, path-escaping archives.

#![allow(unused_imports)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

const TOKEN: &str = "TOKEN-4f1c";

// ---------------------------------------------------------------- secrets

/// Every byte of the catalog (and its -wal), to search for a secret.
fn catalog_bytes(catalog: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let mut p = catalog.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn urls_with_tokens_never_reach_stderr_the_log_or_the_catalog() {
    let env = Env::local();
    // A webhook that accepts connections and never answers (a timeout), a
    // healthcheck and an S3 endpoint on a port nobody listens on.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let closed = free_port();
    let src = env.path("tree");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    let extra = format!(
        "[[notify]]\nkind = \"webhook\"\nurl = \"http://hook:{TOKEN}-pw@127.0.0.1:{silent_port}/hooks/{TOKEN}-path?token={TOKEN}-query\"\ntimeout = \"1s\"\n\
         [[source]]\nname = \"tree\"\nkind = \"files\"\npaths = [\"{}\"]\n\
         healthcheck_url = \"http://127.0.0.1:{closed}/ping/{TOKEN}-hc?k={TOKEN}-hcq\"\n\
         [[target]]\nname = \"remote\"\nurl = \"s3://bucket/prefix\"\nendpoint = \"http://127.0.0.1:{closed}/{TOKEN}-endpoint\"\n\
         region = \"us-east-1\"\naccess_key_id_env = \"T_AK\"\nsecret_access_key_env = \"T_SK\"\nallow_http = true\n\
         max_retries = 0\nretry_timeout = \"1s\"\nrequest_timeout = \"2s\"\n",
        src.display()
    );
    let mut text = env.config_text(&ConfigOpts {
        s3: false,
        ..Default::default()
    });
    text.push_str(&extra);
    let config = env.path("leaky.toml");
    std::fs::write(&config, text).unwrap();

    // The backup reaches the local target and misses the remote one: a
    // target alert (with the storage error), a webhook that times out,
    // healthcheck pings that are refused. Debug logging shows every attempt.
    let out = env.run_with(&config, &["-vv", "backup", "tree"]);
    assert!(out.code.is_some(), "{out:?}");
    assert!(
        !out.stderr.contains(TOKEN),
        "a token reached stderr:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{silent_port}")),
        "the failing webhook's host is named:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{closed}")),
        "the failing endpoint's host is named:\n{}",
        out.stderr
    );
    let alerts = env.run_with(&config, &["--json", "alerts", "list", "--status", "all"]);
    alerts.ok();
    let alerts = alerts.stdout_str();
    assert!(
        alerts.contains(&format!("127.0.0.1:{closed}")),
        "the alert names the endpoint's host: {alerts}"
    );
    assert!(
        !alerts.contains(TOKEN),
        "a token reached an alert: {alerts}"
    );
    let catalog = env.path("catalog.db");
    assert!(
        !contains(&catalog_bytes(&catalog), TOKEN),
        "a token is stored in the catalog"
    );
    drop(silent);
}

#[test]
fn bad_urls_in_the_config_are_never_echoed() {
    let env = Env::local();
    let base = env.config_text(&ConfigOpts {
        s3: false,
        ..Default::default()
    });
    let cases = [
        format!("[[source]]\nname = \"db\"\nkind = \"postgres\"\nurl = \"postgresql://app:{TOKEN}@db.example:notaport/app\"\n"),
        format!("[[source]]\nname = \"db\"\nkind = \"postgres\"\nurl = \"host=db.example password={TOKEN} port=x dbname=app\"\n"),
        format!("[[source]]\nname = \"db\"\nkind = \"postgres\"\nurl = \"postgresql://app@db.example/app?{TOKEN}\"\n"),
        format!("[[source]]\nname = \"c\"\nkind = \"postgres-physical\"\nurl = \"postgresql://r:{TOKEN}@h:x/postgres\"\n"),
        format!("[[source]]\nname = \"f\"\nkind = \"files\"\npaths = [\"/x\"]\nhealthcheck_url = \"hc.example/ping/{TOKEN}\"\n"),
        format!("[[notify]]\nkind = \"webhook\"\nurl = \"hooks.example/{TOKEN}\"\n"),
        format!("[[target]]\nname = \"web\"\nurl = \"https://ak:{TOKEN}@store.example/{TOKEN}\"\n"),
        format!("[[target]]\nname = \"s\"\nurl = \"s3://b/p\"\nendpoint = \"http://ak:{TOKEN}@store.example/{TOKEN}\"\n"),
    ];
    for (i, case) in cases.iter().enumerate() {
        let config = env.path(&format!("bad{i}.toml"));
        std::fs::write(&config, format!("{base}{case}")).unwrap();
        let out = env.run_with(&config, &["list"]);
        out.expect_code(2);
        assert!(
            !out.stderr.contains(TOKEN),
            "case {i}: the secret was echoed:\n{}",
            out.stderr
        );
    }
}

// ---------------------------------------------------------------- modes

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[test]
fn the_catalog_and_its_wal_and_shm_are_private_even_with_umask_022() {
    let env = Env::local();
    let catalog = env.path("state/vaultctl/catalog.db");
    let config = env.write_config(
        "private.toml",
        &ConfigOpts {
            s3: false,
            catalog: Some(catalog.clone()),
            ..Default::default()
        },
    );
    let src = env.path("tree");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    let run = |args: &[&str]| -> Out {
        let mut c = env.command_with(&config);
        c.args(args);
        // SAFETY: umask is async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        c.output().unwrap().into()
    };
    run(&["backup", "files", src.to_str().unwrap(), "--name", "t"]).ok();
    assert_eq!(mode(&catalog), 0o600, "the catalog");
    assert_eq!(
        mode(catalog.parent().unwrap()),
        0o700,
        "the catalog's directory"
    );

    // A catalog made by an older vaultctl (0644), open in another process so
    // its -wal and -shm exist (SQLite gives them the catalog's mode).
    std::fs::set_permissions(&catalog, std::fs::Permissions::from_mode(0o644)).unwrap();
    let held = rusqlite::Connection::open(&catalog).unwrap();
    held.execute_batch("CREATE TABLE IF NOT EXISTS t_hold (x); INSERT INTO t_hold VALUES (1);")
        .unwrap();
    let wal = with_suffix(&catalog, "-wal");
    let shm = with_suffix(&catalog, "-shm");
    assert_eq!(mode(&wal), 0o644, "precondition: an old -wal");
    assert_eq!(mode(&shm), 0o644, "precondition: an old -shm");
    run(&["list"]).ok();
    for p in [&catalog, &wal, &shm] {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
    drop(held);
}

// ---------------------------------------------------------------- crash safety

#[test]
fn local_objects_are_complete_and_no_temporary_file_is_left_or_listed() {
    let env = Env::local();
    let src = env.path("tree");
    std::fs::create_dir_all(&src).unwrap();
    write_pseudo_random_file(&src.join("a"), 1, 300_000);
    let b = env.backup_json(&["files", src.to_str().unwrap(), "--name", "t"]);
    let id = b["id"].as_str().unwrap();
    // Every object is whole (no empty file) and no staging file remains.
    let mut dirs = vec![env.local_repo()];
    let mut files = 0;
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
                continue;
            }
            files += 1;
            assert!(
                !name.contains('#') && !name.ends_with(".tmp"),
                "left over: {}",
                e.path().display()
            );
            if !e.path().starts_with(env.local_repo().join("locks")) {
                assert!(
                    e.metadata().unwrap().len() > 0,
                    "empty object {}",
                    e.path().display()
                );
            }
        }
    }
    assert!(files > 3);
    // A staging file a crash left behind is not taken for a manifest.
    std::fs::write(
        env.local_repo()
            .join("snapshots")
            .join(format!("{id}#1234000001")),
        b"",
    )
    .unwrap();
    env.run(&["verify"]).ok();
    env.run(&["prune"]).ok();
    assert_eq!(env.list().len(), 1);
}

// ---------------------------------------------------------------- archives

/// Backs up `tar` as a tar-format command source; returns the backup id.
fn backup_tar(env: &Env, name: &str, tar: &Path) -> String {
    let b = env.backup_json(&[
        "command",
        "--name",
        name,
        "--format",
        "tar",
        "--",
        "cat",
        tar.to_str().unwrap(),
    ]);
    b["id"].as_str().unwrap().to_string()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn path_escaping_archive_entries_end_in_a_clear_refusal() {
    let env = Env::local();
    let root = env.root();
    let outside = root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("secret");
    std::fs::write(&secret, "untouched").unwrap();
    let o = outside.display().to_string();
    let s = secret.display().to_string();
    // (case, archive body, PAX format, what the refusal must say)
    let cases: Vec<(&str, String, bool, &str)> = vec![
        (
            "abs-double-slash",
            format!("f('/{o}/planted')"),
            false,
            "outside",
        ),
        (
            "dotdot-middle",
            "d('a')\nf('a/./../../planted')".into(),
            false,
            "outside",
        ),
        (
            "dotdot-long-name",
            format!("f('{}/../../../planted')", "x".repeat(120)),
            true,
            "outside",
        ),
        (
            "hardlink-absolute",
            format!("h('h', '{s}')\nf('h', b'overwritten')"),
            false,
            "hard link",
        ),
        (
            "hardlink-dotdot",
            "h('h', '../../outside/secret')\nf('h', b'overwritten')".into(),
            false,
            "hard link",
        ),
        (
            "hardlink-through-symlink",
            format!("l('l', '{o}')\nh('h', 'l/secret')\nf('h', b'overwritten')"),
            false,
            "hard link",
        ),
        (
            "symlink-replaces-dir",
            format!("d('d')\nf('d/ok')\nl('d', '{o}')\nf('d/planted')"),
            false,
            "replace a directory",
        ),
        (
            "dir-replaces-symlink",
            format!("l('d', '{o}')\nd('d')\nf('d/planted')"),
            false,
            "replace a file or symlink",
        ),
        (
            "symlink-chain",
            format!("l('a', 'b')\nl('b', '{o}')\nf('a/planted')"),
            false,
            "symlink",
        ),
        (
            "dir-through-symlink",
            format!("l('d', '{o}')\nd('d/sub')\nf('d/sub/planted')"),
            false,
            "symlink",
        ),
        (
            "char-device",
            "dev('null', tarfile.CHRTYPE)".into(),
            false,
            "device",
        ),
        (
            "block-device",
            "dev('sda', tarfile.BLKTYPE)".into(),
            false,
            "device",
        ),
    ];
    // Every case is checked, then every problem reported at once.
    let mut problems: Vec<String> = Vec::new();
    for (name, body, pax, says) in cases {
        let tar = root.join(format!("{name}.tar"));
        python_tar(&tar, &body, pax);
        let id = backup_tar(&env, &format!("evil-{name}"), &tar);
        let case_dir = root.join(format!("case-{name}"));
        let dest = case_dir.join("dest");
        let out = env.run(&["restore", &id, "--to", dest.to_str().unwrap()]);
        let mut fail = |what: String| problems.push(format!("case {name}: {what}"));
        if out.code != Some(1) {
            fail(format!("exit {:?}, not 1: {}", out.code, out.stderr.trim()));
        } else if !out.stderr.contains("refusing it") || !out.stderr.contains(says) {
            fail(format!(
                "not a clear refusal (\"{says}\"): {}",
                out.stderr.trim()
            ));
        }
        if names_in(&case_dir) != vec!["dest"] {
            fail(format!(
                "wrote beside the destination: {:?}",
                names_in(&case_dir)
            ));
        }
        if names_in(&outside) != vec!["secret"] {
            fail(format!("wrote into {o}: {:?}", names_in(&outside)));
        }
        if std::fs::read_to_string(&secret).unwrap() != "untouched" {
            fail(format!("overwrote {s}"));
            std::fs::write(&secret, "untouched").unwrap();
        }
        if root.join("planted").exists() {
            fail("planted a file in the test root".into());
        }
        // No device node was created in the destination either.
        for n in names_in(&dest) {
            let ft = std::fs::symlink_metadata(dest.join(&n))
                .unwrap()
                .file_type();
            use std::os::unix::fs::FileTypeExt;
            if ft.is_char_device() || ft.is_block_device() {
                fail(format!("created the device node {n}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // A symlink then a file of the same name: the file replaces the link,
    // never writes through it.
    let tar = root.join("replace-link.tar");
    python_tar(&tar, &format!("l('s', '{s}')\nf('s', b'inside')"), false);
    let id = backup_tar(&env, "replace-link", &tar);
    let dest = root.join("case-replace-link/dest");
    env.run(&["restore", &id, "--to", dest.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "untouched");
    assert!(std::fs::symlink_metadata(dest.join("s")).unwrap().is_file());
    assert_eq!(std::fs::read_to_string(dest.join("s")).unwrap(), "inside");

    // A FIFO is skipped with a warning; the rest restores.
    let tar = root.join("fifo.tar");
    python_tar(&tar, "dev('p', tarfile.FIFOTYPE)\nf('ok', b'fine')", false);
    let id = backup_tar(&env, "fifo", &tar);
    let dest = root.join("case-fifo/dest");
    let out = env.run(&["restore", &id, "--to", dest.to_str().unwrap()]);
    out.ok();
    assert!(out.stderr.contains("FIFO"), "{}", out.stderr);
    assert_eq!(names_in(&dest), vec!["ok"]);
}

/// A set-user-ID root program in a backup is restored without the bit
/// (restoring as root keeps the archive's owner), and the restore says so.
#[test]
fn set_id_bits_from_a_backup_are_never_restored() {
    let env = Env::local();
    let root = env.root();
    let tar = root.join("setid.tar");
    python_tar(
        &tar,
        "i = tarfile.TarInfo('bin/su'); i.size = 4; i.mode = 0o4755; i.uid = 0; i.gid = 0; t.addfile(i, io.BytesIO(b'evil'))\n\
         i = tarfile.TarInfo('bin/sg'); i.size = 4; i.mode = 0o2755; t.addfile(i, io.BytesIO(b'evil'))\n\
         f('plain')",
        false,
    );
    let id = backup_tar(&env, "setid", &tar);
    let dest = root.join("setid-dest");
    let out = env.run(&["--json", "restore", &id, "--to", dest.to_str().unwrap()]);
    out.ok();
    let full_mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(full_mode(&dest.join("bin/su")), 0o755);
    assert_eq!(full_mode(&dest.join("bin/sg")), 0o755);
    assert_eq!(out.json()["set_id_dropped"], 2, "{}", out.stdout_str());
    assert!(out.stderr.contains("set-user-ID"), "{}", out.stderr);
    assert_eq!(std::fs::read(dest.join("bin/su")).unwrap(), b"evil");
}

// ---------------------------------------------------------------- wal sync

/// WAL file names under `repo/wal/<source>` (segments sit in one directory
/// per 4 GiB of WAL, .history files beside them).
fn wal_names(repo: &Path, source: &str) -> std::collections::BTreeSet<String> {
    let mut v = std::collections::BTreeSet::new();
    let mut dirs = vec![repo.join("wal").join(source)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                v.insert(e.file_name().into_string().unwrap());
            }
        }
    }
    v
}

fn psql_wal_switch(c: &crate::pg::Cluster, n: i32) -> String {
    c.psql(
        "postgres",
        &format!("INSERT INTO t SELECT {n}, g FROM generate_series(1, 100) g"),
    );
    let seg = c.psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())");
    let t = std::time::Instant::now();
    loop {
        let last = c.psql(
            "postgres",
            "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
        );
        if last.as_str() >= seg.as_str() {
            return seg;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(90),
            "segment {seg} was not archived (last: {last}); server log:\n{}",
            std::fs::read_to_string(c.dir.path().join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn wal_sync_never_copies_back_wal_that_the_destinations_retention_pruned() {
    use crate::pg::{is_root, Cluster, Vault, PG_USER, SUPERUSER_PASSWORD};
    let dir = tempfile::Builder::new()
        .prefix("vaultctl-walsync-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path().to_path_buf();
    let exe = env!("CARGO_BIN_EXE_vaultctl");
    let config = d.join("config.toml");
    let archive = format!(
        "archive_mode = on\narchive_command = '\"{exe}\" --config \"{}\" wal push \"%p\"'\narchive_timeout = 0\n",
        config.display()
    );
    // Two local targets: "a" keeps everything, "b" gets a retention policy.
    let base = format!(
        "catalog = \"{0}/catalog.db\"\n[keys]\nidentity_file = \"{0}/identity.txt\"\ndedup_key_file = \"{0}/dedup.key\"\n\
         [[target]]\nname = \"a\"\nurl = \"file://{0}/repo-a\"\n\
         [[target]]\nname = \"b\"\nurl = \"file://{0}/repo-b\"\n",
        d.display()
    );
    std::fs::write(&config, &base).unwrap();
    let v = Vault { dir, config };
    v.ok(&[
        "key",
        "generate",
        "--output",
        &d.join("identity.txt").display().to_string(),
    ]);
    v.ok(&["init"]);
    let c = Cluster::start_with(&archive, &[]);
    let pw = d.join("cluster.password");
    std::fs::write(&pw, format!("{SUPERUSER_PASSWORD}\n")).unwrap();
    let with_source = |retention: &str| {
        format!(
            "{}[[source]]\nname = \"cluster\"\nkind = \"postgres-physical\"\nurl = \"{}\"\npassword_file = \"{}\"\npg_bin_dir = \"{}\"\n",
            base.replace(
                "/repo-b\"\n",
                &format!("/repo-b\"\n{retention}"),
            ),
            c.url("postgres", "postgres"),
            pw.display(),
            c.bin.display()
        )
    };
    std::fs::write(&v.config, with_source("")).unwrap();
    if is_root() {
        let st = Command::new("chown")
            .args(["-R", &format!("{PG_USER}:{PG_USER}")])
            .arg(&d)
            .status()
            .unwrap();
        assert!(st.success());
    }

    c.psql("postgres", "CREATE TABLE t (batch int, n int)");
    v.backup(&["cluster"]);
    let old = psql_wal_switch(&c, 1);
    psql_wal_switch(&c, 2);
    v.backup(&["cluster"]);
    let newest = psql_wal_switch(&c, 3);

    // b keeps only the newest base backup: prune removes older WAL there.
    std::fs::write(
        &v.config,
        with_source("[target.retention]\nkeep_last = 1\n"),
    )
    .unwrap();
    let out = v.json(&["prune", "--target", "b"]);
    let keep_from = out["targets"][0]["wal"][0]["keep_from"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let on_a = wal_names(&d.join("repo-a"), "cluster");
    let on_b = wal_names(&d.join("repo-b"), "cluster");
    let pruned: Vec<&String> = on_a.difference(&on_b).collect();
    assert!(
        pruned.contains(&&old),
        "prune removed {old} on b: {pruned:?}"
    );
    assert!(
        pruned.iter().all(|n| n[..24] < *keep_from),
        "{pruned:?} vs {keep_from}"
    );

    // b also missed a newer segment (an outage): that one it still needs.
    let newest_path = d
        .join("repo-b/wal/cluster")
        .join(&newest[..16])
        .join(&newest);
    std::fs::remove_file(&newest_path).unwrap();

    let report = v.json(&["wal", "sync"]);
    let after = wal_names(&d.join("repo-b"), "cluster");
    for n in &pruned {
        assert!(
            !after.contains(*n),
            "wal sync copied {n} back to b, whose retention removed it (keep from {keep_from}); report: {report}"
        );
    }
    assert!(
        after.contains(&newest),
        "the newer missing segment is copied: {report}"
    );
    assert_eq!(
        wal_names(&d.join("repo-a"), "cluster"),
        on_a,
        "a is untouched"
    );
    // A second sync has nothing to do.
    let again = v.json(&["wal", "sync"]);
    assert_eq!(again, serde_json::json!([["a", 0], ["b", 0]]), "{again}");
}
