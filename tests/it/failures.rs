//! Failure handling: failing sources, kill -9, damaged packs, keys,
//! malicious archives, usage errors.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

fn failed_command_leaves_no_manifest(script: &str, stderr_marker: &str, expect_in_error: &str) {
    let env = Env::with_s3();
    // A good backup first, so both targets hold a repository with a manifest.
    let good = env.backup_json(&["command", "--name", "ok", "--", "sh", "-c", "seq 1 1000"]);
    let good_id = good["id"].as_str().unwrap().to_string();
    let s3_repo = env.s3.as_ref().unwrap().repo_dir();
    assert_eq!(snapshots(&env.local_repo()), vec![good_id.clone()]);
    assert_eq!(snapshots(&s3_repo), vec![good_id.clone()]);

    let out = env.run(&[
        "--json", "backup", "command", "--name", "bad", "--", "sh", "-c", script,
    ]);
    out.expect_code(1);
    assert!(
        out.stderr.contains(stderr_marker),
        "the error should quote the command's stderr: {}",
        out.stderr
    );
    assert_eq!(
        snapshots(&env.local_repo()),
        vec![good_id.clone()],
        "a failed backup wrote a manifest on local"
    );
    assert_eq!(
        snapshots(&s3_repo),
        vec![good_id.clone()],
        "a failed backup wrote a manifest on s3"
    );

    let rows = env.list_with(&env.config, &["--source", "bad"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["status"], "failed");
    let error = row["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(stderr_marker),
        "list error lacks the stderr tail: {error}"
    );
    assert!(
        error.contains(expect_in_error),
        "list error lacks '{expect_in_error}': {error}"
    );
    assert!(row["targets"].as_array().unwrap().is_empty());

    // The repository is still fine, and the failed row cannot be restored.
    env.run(&["verify", "--read-data"]).ok();
    let id = row["id"].as_str().unwrap();
    let r = env.restore_stdout_to(&[id], &env.path("x.bin"));
    assert_ne!(r.code, Some(0));
}

#[test]
fn failing_command_nonzero_exit() {
    failed_command_leaves_no_manifest(
        "head -c 3000000 /dev/urandom; echo 'pg_dump: connection refused XYZZY' >&2; exit 3",
        "XYZZY",
        "status 3",
    );
}

#[test]
fn failing_command_killed_by_signal() {
    failed_command_leaves_no_manifest(
        "echo 'about to die PLUGH' >&2; head -c 3000000 /dev/urandom; kill -9 $$",
        "PLUGH",
        "signal 9",
    );
}

#[test]
fn kill_9_at_several_points() {
    let env = Env::local();
    let script = "for i in 1 2 3 4 5 6 7 8; do head -c 1500000 /dev/urandom; sleep 0.4; done";
    for (round, delay_ms) in [300u64, 1000, 2000].into_iter().enumerate() {
        let before = env.list().len();
        let mut child = env
            .command()
            .args([
                "--json", "backup", "command", "--name", "slow", "--", "sh", "-c", script,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            status.code().is_none(),
            "round {round}: the backup ended before it was killed"
        );

        env.run(&["verify", "--read-data"]).ok();
        let rows = env.list();
        assert!(
            rows.iter().all(|r| r["status"] != "running"),
            "round {round}: a row is still running: {rows:?}"
        );
        let killed: Vec<_> = rows.iter().filter(|r| r["source"] == "slow").collect();
        if delay_ms >= 1000 {
            assert_eq!(
                rows.len(),
                before + 1,
                "round {round}: the killed run is not in the list"
            );
        }
        for r in &killed {
            assert_eq!(r["status"], "failed", "round {round}: {r}");
            assert!(
                r["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("interrupted"),
                "{r}"
            );
        }
        assert!(
            snapshots(&env.local_repo()).len() == round,
            "a killed run left a manifest"
        );

        // The next backup succeeds and restores.
        let file = env.path(&format!("next-{round}.bin"));
        std::fs::write(&file, pseudo_random(round as u64, 2_500_000)).unwrap();
        let b = env.backup_json(&[
            "command",
            "--name",
            "next",
            "--",
            "cat",
            file.to_str().unwrap(),
        ]);
        let restored = env.path("restored.bin");
        env.restore_stdout_to(&[b["id"].as_str().unwrap()], &restored)
            .ok();
        assert!(same_file_bytes(&file, &restored));
    }
    env.run(&["verify", "--read-data"]).ok();
}

/// Flips one byte in the middle of a file.
fn flip_byte(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn flipped_byte_in_pack_is_detected_and_restore_fails() {
    let env = Env::local();
    let repo = env.local_repo();
    // Backup A: a stream spanning several packs.
    let a_src = env.path("a.bin");
    std::fs::write(&a_src, pseudo_random(1, 5_000_000)).unwrap();
    let a = env.backup_json(&[
        "command",
        "--name",
        "a",
        "--",
        "cat",
        a_src.to_str().unwrap(),
    ]);
    let a_id = a["id"].as_str().unwrap().to_string();
    let a_packs = pack_files(&repo);
    // Backup B: a files tree with its own packs.
    let tree = env.path("tree");
    make_tree(&tree);
    let b = env.backup_json(&["files", tree.to_str().unwrap(), "--name", "b"]);
    let b_id = b["id"].as_str().unwrap().to_string();
    let b_packs: Vec<_> = pack_files(&repo)
        .into_iter()
        .filter(|p| !a_packs.contains(p))
        .collect();
    // Backup C: untouched.
    let c_src = env.path("c.bin");
    std::fs::write(&c_src, pseudo_random(3, 1_000_000)).unwrap();
    let c = env.backup_json(&[
        "command",
        "--name",
        "c",
        "--",
        "cat",
        c_src.to_str().unwrap(),
    ]);
    let c_id = c["id"].as_str().unwrap().to_string();
    assert!(
        a_packs.len() >= 2 && !b_packs.is_empty(),
        "a: {a_packs:?} b: {b_packs:?}"
    );
    env.run(&["verify", "--read-data"]).ok();

    flip_byte(&a_packs[a_packs.len() / 2]);
    flip_byte(&b_packs[0]);

    let out = env.run(&["--json", "verify", "--read-data"]);
    assert_ne!(
        out.code,
        Some(0),
        "verify --read-data passed a damaged pack"
    );
    let v = out.json();
    assert_eq!(v["ok"], false);
    let local = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "local")
        .unwrap();
    assert_eq!(local["ok"], false);
    let affected = str_array(&local["affected_backups"]);
    assert!(
        affected.contains(&a_id),
        "affected_backups {affected:?} lacks {a_id}"
    );
    assert!(
        affected.contains(&b_id),
        "affected_backups {affected:?} lacks {b_id}"
    );
    assert!(
        !affected.contains(&c_id),
        "the intact backup {c_id} is reported as affected"
    );
    let named: Vec<String> = local["problems"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| str_array(&p["backups"]))
        .collect();
    assert!(
        named.contains(&a_id) && named.contains(&b_id),
        "problems do not name the backups: {local}"
    );
    // Human output names the backup id too.
    let text = env.run(&["verify", "--read-data"]);
    assert_ne!(text.code, Some(0));
    assert!(
        text.stdout_str().contains(&a_id),
        "verify output does not name {a_id}: {}",
        text.stdout_str()
    );

    // Restoring the damaged stream must not deliver a complete, correct stream with exit 0.
    let restored = env.path("restored-a.bin");
    let r = env.restore_stdout_to(&[&a_id, "--target", "local"], &restored);
    assert!(
        r.code.is_some() && r.code != Some(0),
        "restore of a damaged backup exited {:?}: {}",
        r.code,
        r.stderr
    );
    assert!(!same_file_bytes(&a_src, &restored) || r.code != Some(0));
    assert!(
        std::fs::metadata(&restored).unwrap().len() < 5_000_000,
        "the damaged restore wrote the whole stream"
    );

    // Restoring the damaged files backup fails too.
    let dir = env.path("restored-b");
    let r = env.run(&[
        "restore",
        &b_id,
        "--to",
        dir.to_str().unwrap(),
        "--target",
        "local",
    ]);
    assert!(
        r.code.is_some() && r.code != Some(0),
        "restore --to of a damaged backup exited {:?}",
        r.code
    );

    // The intact backup still restores.
    let restored_c = env.path("restored-c.bin");
    env.restore_stdout_to(&[&c_id, "--target", "local"], &restored_c)
        .ok();
    assert!(same_file_bytes(&c_src, &restored_c));
}

#[test]
fn wrong_identity_restore_exits_12() {
    let env = Env::local();
    let src = env.path("tree");
    make_tree(&src);
    let b = env.backup_json(&["files", src.to_str().unwrap(), "--name", "tree"]);
    let id = b["id"].as_str().unwrap();
    let s = env.backup_json(&["command", "--name", "s", "--", "sh", "-c", "seq 1 5000"]);
    let other = env.path("other-id.txt");
    env.run_raw(&["key", "generate", "--output", other.to_str().unwrap()])
        .ok();
    let dir = env.path("out");
    let out = env.run(&[
        "--identity",
        other.to_str().unwrap(),
        "restore",
        id,
        "--to",
        dir.to_str().unwrap(),
    ]);
    out.expect_code(12);
    assert!(!restored_path(&dir, &src).join("a.txt").exists());
    let r = env
        .command()
        .args([
            "--identity",
            other.to_str().unwrap(),
            "restore",
            s["id"].as_str().unwrap(),
            "--stdout",
        ])
        .output()
        .unwrap();
    let r: Out = r.into();
    r.expect_code(12);
    assert!(r.stdout.is_empty());
    // The right identity still works.
    let dir2 = env.path("out2");
    env.run(&["restore", id, "--to", dir2.to_str().unwrap()])
        .ok();
    assert_same_tree(&src, &restored_path(&dir2, &src));
}

#[test]
fn write_only_host_backs_up_and_verifies_but_cannot_restore() {
    let env = Env::local();
    let wo_catalog = env.path("write-only/catalog.db");
    let wo = env.write_config(
        "write-only.toml",
        &ConfigOpts {
            identity: false,
            recipients: true,
            s3: false,
            catalog: Some(wo_catalog.clone()),
            ..Default::default()
        },
    );
    let text = std::fs::read_to_string(&wo).unwrap();
    assert!(!text.contains("identity_file"));
    let src = env.path("tree");
    make_tree(&src);
    let out = env.run_with(
        &wo,
        &[
            "--json",
            "backup",
            "files",
            src.to_str().unwrap(),
            "--name",
            "wo",
        ],
    );
    out.ok();
    let id = out.json()["id"].as_str().unwrap().to_string();
    let s = env.run_with(
        &wo,
        &[
            "--json",
            "backup",
            "command",
            "--name",
            "wo-stream",
            "--",
            "sh",
            "-c",
            "seq 1 20000",
        ],
    );
    s.ok();
    let sid = s.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        env.list_with(&wo, &[])
            .iter()
            .filter(|r| r["status"] == "completed")
            .count(),
        2
    );

    let v = env.run_with(&wo, &["--json", "verify", "--read-data"]);
    v.ok();
    let v = v.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["identity"], false);
    assert!(
        v["targets"][0]["packs_checked"].as_u64().unwrap() > 0,
        "{v}"
    );

    let dir = env.path("out");
    let r = env.run_with(&wo, &["restore", &id, "--to", dir.to_str().unwrap()]);
    r.expect_code(12);
    assert!(
        r.stderr.contains("identity"),
        "the message should say an identity is needed: {}",
        r.stderr
    );
    let r = env.run_with(&wo, &["restore", &sid, "--stdout"]);
    r.expect_code(12);
    assert!(r.stderr.contains("identity"), "{}", r.stderr);
    assert!(r.stdout.is_empty());

    // With the identity given, the same backups restore.
    let id_file = env.path("id.txt");
    let dir2 = env.path("out2");
    env.run_with(
        &wo,
        &[
            "--identity",
            id_file.to_str().unwrap(),
            "restore",
            &id,
            "--to",
            dir2.to_str().unwrap(),
        ],
    )
    .ok();
    assert_same_tree(&src, &restored_path(&dir2, &src));
}

#[test]
fn path_escaping_archive_entries_are_refused() {
    let env = Env::local();
    let root = env.root();
    let outside_dir = root.join("outside");
    std::fs::create_dir_all(&outside_dir).unwrap();
    let secret = root.join("outside/secret");
    std::fs::write(&secret, "untouched").unwrap();
    let abs_target = root.join("abs-evil.txt");
    let cases: Vec<(&str, String, Vec<std::path::PathBuf>)> = vec![
        ("dotdot", "f('good.txt', b'fine')\nf('../evil.txt')\nf('sub/../../evil2.txt')".into(), vec![root.join("case-dotdot/evil.txt"), root.join("case-dotdot/evil2.txt")]),
        ("absolute", format!("f('good.txt', b'fine')\nf('{}')", abs_target.display()), vec![abs_target.clone()]),
        ("symlink", format!("l('link', '{}')\nf('link/file')", outside_dir.display()), vec![outside_dir.join("file")]),
        ("symlink-rel", "l('up', '..')\nf('up/evil3.txt')".into(), vec![root.join("case-symlink-rel/evil3.txt")]),
        (
            "hardlink",
            format!(
                "l('link', '{}')\ni = tarfile.TarInfo('h'); i.type = tarfile.LNKTYPE; i.linkname = 'link/secret'; t.addfile(i)\nf('h', b'overwritten')",
                outside_dir.display()
            ),
            vec![],
        ),
    ];
    for (name, body, must_not_exist) in cases {
        let tar = root.join(format!("{name}.tar"));
        python_tar(&tar, &body, false);
        let b = env.backup_json(&[
            "command",
            "--name",
            &format!("evil-{name}"),
            "--format",
            "tar",
            "--",
            "cat",
            tar.to_str().unwrap(),
        ]);
        let id = b["id"].as_str().unwrap();
        let case_dir = root.join(format!("case-{name}"));
        let dest = case_dir.join("dest");
        let out = env.run(&["restore", id, "--to", dest.to_str().unwrap()]);
        assert!(
            out.code.is_some() && out.code != Some(0),
            "case {name}: restore of a path-escaping archive exited {:?}",
            out.code
        );
        for p in &must_not_exist {
            assert!(
                std::fs::symlink_metadata(p).is_err(),
                "case {name}: {} was written outside the destination",
                p.display()
            );
        }
        // Nothing but `dest` appeared next to the destination.
        let siblings: Vec<_> = std::fs::read_dir(&case_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            siblings,
            vec![std::ffi::OsString::from("dest")],
            "case {name}"
        );
        let outside: Vec<_> = std::fs::read_dir(&outside_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            outside,
            vec![std::ffi::OsString::from("secret")],
            "case {name}: wrote into {}",
            outside_dir.display()
        );
        assert_eq!(
            std::fs::read_to_string(&secret).unwrap(),
            "untouched",
            "case {name}"
        );
    }
}

#[test]
fn usage_errors_and_idempotent_init() {
    let env = Env::local();
    // init twice: exit 0, same repository.
    let config_before = std::fs::read(env.local_repo().join("config")).unwrap();
    let key_before = std::fs::read(env.path("dedup.key")).unwrap();
    env.run(&["init"]).ok();
    env.run(&["init"]).ok();
    assert_eq!(
        std::fs::read(env.local_repo().join("config")).unwrap(),
        config_before
    );
    assert_eq!(std::fs::read(env.path("dedup.key")).unwrap(), key_before);

    // Restore into a non-empty directory without --force: exit 2, nothing replaced.
    let src = env.path("tree");
    make_tree(&src);
    let b = env.backup_json(&["files", src.to_str().unwrap(), "--name", "tree"]);
    let id = b["id"].as_str().unwrap();
    let dest = env.path("dest");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("keep.txt"), "mine").unwrap();
    env.run(&["restore", id, "--to", dest.to_str().unwrap()])
        .expect_code(2);
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_to_string(dest.join("keep.txt")).unwrap(),
        "mine"
    );
    env.run(&["restore", id, "--to", dest.to_str().unwrap(), "--force"])
        .ok();
    assert_same_tree(&src, &restored_path(&dest, &src));
    assert_eq!(
        std::fs::read_to_string(dest.join("keep.txt")).unwrap(),
        "mine"
    );

    // A typo in the config: exit 2, naming the key.
    let good = std::fs::read_to_string(&env.config).unwrap();
    for (typo_name, typo) in [
        ("top", good.replace("catalog =", "catalgo =")),
        ("target", good.replace("url = \"file", "ulr = \"file")),
    ] {
        assert_ne!(typo, good);
        let p = env.path(&format!("typo-{typo_name}.toml"));
        std::fs::write(&p, typo).unwrap();
        let out = env.run_with(&p, &["list"]);
        out.expect_code(2);
        assert!(
            out.stderr.contains("catalgo") || out.stderr.contains("ulr"),
            "{}",
            out.stderr
        );
        env.run_with(&p, &["backup", "files", src.to_str().unwrap()])
            .expect_code(2);
    }
    // A missing --config file is a usage error too.
    env.run_with(&env.path("nope.toml"), &["list"])
        .expect_code(2);
}

#[test]
fn backup_without_init_exits_10() {
    let env = Env::local_uninit();
    let src = env.path("tree");
    make_tree(&src);
    let out = env.run(&["backup", "files", src.to_str().unwrap()]);
    out.expect_code(10);
    assert!(
        out.stderr.contains("init"),
        "the message should point at `vaultctl init`: {}",
        out.stderr
    );
    // An existing but empty target directory is also "no repository".
    std::fs::create_dir_all(env.local_repo()).unwrap();
    env.run(&["backup", "files", src.to_str().unwrap()])
        .expect_code(10);
    env.run(&["restore", "x", "--stdout"]).expect_code(10);
    assert!(snapshots(&env.local_repo()).is_empty());
    // After init it works.
    env.run(&["init"]).ok();
    env.backup_json(&["files", src.to_str().unwrap()]);
}
