//! Tests against a real S3-compatible server (`s3s-fs`) on 127.0.0.1,
//! alongside the local target.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn files_round_trip_s3() {
    let env = Env::with_s3();
    let src = env.path("src-tree");
    make_tree(&src);
    let b = env.backup_json(&["files", src.to_str().unwrap(), "--name", "tree"]);
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(str_array(&b["targets"]), vec!["local", "s3"]);
    assert!(b["failed_targets"].as_array().unwrap().is_empty(), "{b}");
    // The objects really are on the server.
    let s3_repo = env.s3.as_ref().unwrap().repo_dir();
    assert_eq!(snapshots(&s3_repo), vec![id.clone()]);
    assert!(!pack_files(&s3_repo).is_empty());
    assert_eq!(str_array(&env.row(&id)["targets"]), vec!["local", "s3"]);

    let out = env.path("out-s3");
    env.run(&[
        "restore",
        &id,
        "--to",
        out.to_str().unwrap(),
        "--target",
        "s3",
    ])
    .ok();
    assert_same_tree(&src, &restored_path(&out, &src));

    // With the local copy gone, the default restore still works from S3 alone.
    std::fs::remove_dir_all(env.local_repo()).unwrap();
    let out2 = env.path("out-s3-only");
    env.run(&[
        "restore",
        &id,
        "--to",
        out2.to_str().unwrap(),
        "--target",
        "s3",
    ])
    .ok();
    assert_same_tree(&src, &restored_path(&out2, &src));
    env.run(&["verify", "--target", "s3", "--read-data"]).ok();
}

#[test]
fn catalog_rebuild_with_two_targets() {
    let env = Env::with_s3();
    let src = env.path("src-tree");
    make_tree(&src);
    env.backup_json(&[
        "files",
        src.to_str().unwrap(),
        "--name",
        "tree",
        "--tag",
        "nightly",
        "--note",
        "n",
    ]);
    env.backup_json(&["command", "--name", "cmd", "--", "sh", "-c", "seq 1 100000"]);
    let original = sorted_by_id(env.list());
    assert_eq!(original.len(), 2);
    for target in ["s3", "local"] {
        let cat = env.path(&format!("rebuilt-{target}.db"));
        let cat = cat.to_str().unwrap();
        env.run(&["--catalog", cat, "catalog", "rebuild", "--target", target])
            .ok();
        let out = env.run(&["--catalog", cat, "--json", "list"]);
        out.ok();
        assert_eq!(
            sorted_by_id(out.json().as_array().unwrap().clone()),
            original,
            "rebuild from {target}"
        );
    }
}

/// The S3 server dies in the middle of a backup: the backup completes on
/// the local target and exits 3.
#[test]
fn s3_stopped_mid_run_exits_3_and_local_is_complete() {
    let mut env = Env::with_s3();
    let src = env.path("stream.bin");
    let first = 12_000_000usize;
    write_pseudo_random_file(&src, 5, first + 8_000_000);
    let marker = env.path("half-way");
    let go = env.path("go-on");
    // The command pauses half-way until the test has stopped the server.
    let script = format!(
        "head -c {first} '{src}'; touch '{marker}'; while [ ! -e '{go}' ]; do sleep 0.1; done; tail -c +{} '{src}'",
        first + 1,
        src = src.display(),
        marker = marker.display(),
        go = go.display()
    );
    let child = env
        .command()
        .args([
            "--json", "backup", "command", "--name", "slow", "--", "sh", "-c", &script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&marker, Duration::from_secs(120));
    // Wait until packs of the first part have reached the server.
    let s3_repo = env.s3().repo_dir();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while pack_files(&s3_repo).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no packs reached the S3 server"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    env.s3().stop();
    std::fs::write(&go, "").unwrap();
    let out: Out = child.wait_with_output().unwrap().into();
    out.expect_code(3);
    let b = out.json();
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(str_array(&b["targets"]), vec!["local"]);
    let failed: Vec<&str> = b["failed_targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["target"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["s3"]);
    assert!(
        out.stderr.contains("s3"),
        "stderr should name the missing target: {}",
        out.stderr
    );

    let row = env.row(&id);
    assert_eq!(row["status"], "completed");
    assert_eq!(str_array(&row["targets"]), vec!["local"]);
    assert_eq!(snapshots(&env.local_repo()), vec![id.clone()]);
    assert!(
        snapshots(&env.s3().repo_dir()).is_empty(),
        "S3 must not hold a manifest of the incomplete backup"
    );

    let restored = env.path("restored.bin");
    env.restore_stdout_to(&[&id, "--target", "local"], &restored)
        .ok();
    assert!(same_file_bytes(&src, &restored));
    env.run(&["verify", "--target", "local"]).ok();
    env.run(&["verify", "--target", "local", "--read-data"])
        .ok();
}

#[test]
fn s3_down_from_the_start_backup_completes_on_local_with_exit_3() {
    let mut env = Env::with_s3();
    env.s3().stop();
    let src = env.path("src-tree");
    make_tree(&src);
    let out = env.run(&[
        "--json",
        "backup",
        "files",
        src.to_str().unwrap(),
        "--name",
        "tree",
    ]);
    out.expect_code(3);
    let b = out.json();
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(str_array(&b["targets"]), vec!["local"]);
    assert_eq!(b["failed_targets"][0]["target"], "s3");
    assert!(out.stderr.contains("'s3'"), "stderr: {}", out.stderr);
    assert_eq!(str_array(&env.row(&id)["targets"]), vec!["local"]);
    assert_eq!(env.row(&id)["status"], "completed");

    let dir = env.path("out");
    env.run(&[
        "restore",
        &id,
        "--to",
        dir.to_str().unwrap(),
        "--target",
        "local",
    ])
    .ok();
    assert_same_tree(&src, &restored_path(&dir, &src));
    env.run(&["verify", "--target", "local", "--read-data"])
        .ok();
    // Verifying every target reports the unreachable one as a problem.
    let v = env.run(&["--json", "verify"]);
    assert_ne!(
        v.code,
        Some(0),
        "verify of an unreachable target must not pass"
    );
    let s3_report = v.json()["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "s3")
        .cloned()
        .unwrap();
    assert_eq!(s3_report["ok"], false);

    // S3 comes back: the next backup of the same data is complete on both
    // targets, re-sending what S3 lacks instead of deduplicating against
    // packs only the local target holds.
    env.s3().restart();
    let b2 = env.backup_json(&["files", src.to_str().unwrap(), "--name", "tree"]);
    let id2 = b2["id"].as_str().unwrap().to_string();
    assert_eq!(str_array(&b2["targets"]), vec!["local", "s3"]);
    assert_eq!(snapshots(&env.s3().repo_dir()), vec![id2.clone()]);
    env.run(&["verify", "--read-data"]).ok();
    let dir2 = env.path("out2");
    env.run(&[
        "restore",
        &id2,
        "--to",
        dir2.to_str().unwrap(),
        "--target",
        "s3",
    ])
    .ok();
    assert_same_tree(&src, &restored_path(&dir2, &src));
    // Dedup works again for both targets: a third backup stores almost nothing.
    let b3 = env.backup_json(&["files", src.to_str().unwrap(), "--name", "tree"]);
    assert!(
        b3["stored_bytes"].as_u64().unwrap() * 100 < b3["bytes"].as_u64().unwrap(),
        "third backup: {b3}"
    );
    let dir4 = env.path("out4");
    env.run(&[
        "restore",
        b3["id"].as_str().unwrap(),
        "--to",
        dir4.to_str().unwrap(),
        "--target",
        "s3",
    ])
    .ok();
    assert_same_tree(&src, &restored_path(&dir4, &src));
    // The older backup is still only on local, and restores from there by default.
    assert_eq!(str_array(&env.row(&id)["targets"]), vec!["local"]);
    let dir3 = env.path("out3");
    env.run(&["restore", &id, "--to", dir3.to_str().unwrap()])
        .ok();
    assert_same_tree(&src, &restored_path(&dir3, &src));
}

#[test]
fn every_target_down_exits_75() {
    let mut env = Env::with_s3();
    let s3_only = env.write_config(
        "s3-only.toml",
        &ConfigOpts {
            local: false,
            ..Default::default()
        },
    );
    env.run_with(&s3_only, &["init"]).ok();
    let src = env.path("src-tree");
    make_tree(&src);
    env.run_with(
        &s3_only,
        &["backup", "files", src.to_str().unwrap(), "--name", "tree"],
    )
    .ok();
    env.s3().stop();
    let out = env.run_with(
        &s3_only,
        &["backup", "files", src.to_str().unwrap(), "--name", "tree"],
    );
    out.expect_code(75);
    let out = env.run_with(&s3_only, &["restore", "tree:latest", "--stdout"]);
    out.expect_code(75);
    // The catalog still answers without storage.
    let rows = env.list_with(&s3_only, &["--status", "completed"]);
    assert_eq!(rows.len(), 1);
}

#[test]
fn damaged_local_pack_falls_back_to_s3() {
    let env = Env::with_s3();
    let src = env.path("a.bin");
    std::fs::write(&src, pseudo_random(9, 5_000_000)).unwrap();
    let b = env.backup_json(&["command", "--name", "a", "--", "cat", src.to_str().unwrap()]);
    let id = b["id"].as_str().unwrap().to_string();
    let packs = pack_files(&env.local_repo());
    assert!(packs.len() >= 2);
    let victim = &packs[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let i = bytes.len() / 3;
    bytes[i] ^= 1;
    std::fs::write(victim, bytes).unwrap();

    let v = env.run(&["--json", "verify", "--read-data"]);
    v.expect_code(1);
    let v = v.json();
    for t in v["targets"].as_array().unwrap() {
        match t["target"].as_str().unwrap() {
            "local" => assert_eq!(str_array(&t["affected_backups"]), vec![id.clone()]),
            "s3" => assert_eq!(t["ok"], true, "{t}"),
            other => panic!("unexpected target {other}"),
        }
    }
    env.run(&["verify", "--target", "s3", "--read-data"]).ok();
    assert_ne!(
        env.run(&["verify", "--target", "local", "--read-data"])
            .code,
        Some(0)
    );

    // Only local: refused. Default: the intact S3 copy is used.
    let r = env.restore_stdout_to(&[&id, "--target", "local"], &env.path("bad.bin"));
    assert!(r.code.is_some() && r.code != Some(0));
    let restored = env.path("good.bin");
    env.restore_stdout_to(&[&id], &restored).ok();
    assert!(same_file_bytes(&src, &restored));
}

/// An S3 target without credentials in the config takes the usual `AWS_*`
/// variables (README: "credentials from the named variables, or the usual
/// `AWS_*` ones"), which the config reads and hands to storage; a wrong
/// secret there is refused by the server.
#[test]
fn aws_variables_supply_the_credentials_the_config_leaves_out() {
    let env = Env::with_s3();
    let text = env
        .config_text(&ConfigOpts {
            local: false,
            ..Default::default()
        })
        .replace("access_key_id_env = \"T_AK\"\n", "")
        .replace("secret_access_key_env = \"T_SK\"\n", "");
    assert!(!text.contains("T_AK"), "{text}");
    let config = env.path("aws-env.toml");
    std::fs::write(&config, text).unwrap();
    let src = env.path("src-tree");
    make_tree(&src);
    let run = |secret: &str, args: &[&str]| -> Out {
        env.command_with(&config)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .args(args)
            .output()
            .expect("run vaultctl")
            .into()
    };
    run(SECRET_KEY, &["init"]).ok();
    let backup = ["backup", "files", src.to_str().unwrap(), "--name", "tree"];
    run(SECRET_KEY, &backup).ok();
    let out = run("not-the-secret", &backup);
    assert_ne!(
        out.code,
        Some(0),
        "a wrong AWS_SECRET_ACCESS_KEY was accepted"
    );
    let rows = env.list_with(&config, &["--status", "completed"]);
    assert_eq!(rows.len(), 1);
}
