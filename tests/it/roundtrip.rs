//! Round trips on the local target: files, a 200 MB command stream, dedup,
//! catalog rebuild, concurrent backups.

use crate::common;

use common::*;

#[test]
fn files_round_trip_local() {
    let env = Env::local();
    let src = env.path("src-tree");
    make_tree(&src);
    let b = env.backup_json(&[
        "files",
        src.to_str().unwrap(),
        "--name",
        "tree",
        "--tag",
        "t1",
        "--note",
        "first",
    ]);
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["source"], "tree");
    assert_eq!(b["kind"], "files");
    assert_eq!(str_array(&b["targets"]), vec!["local"]);
    assert!(b["failed_targets"].as_array().unwrap().is_empty());
    assert!(b["bytes"].as_u64().unwrap() > 300_000);
    assert_eq!(snapshots(&env.local_repo()), vec![id.clone()]);

    let row = env.row(&id);
    assert_eq!(row["status"], "completed");
    assert_eq!(str_array(&row["tags"]), vec!["t1"]);
    assert_eq!(row["note"], "first");
    assert_eq!(str_array(&row["targets"]), vec!["local"]);

    let out = env.path("out");
    env.run(&["restore", &id, "--to", out.to_str().unwrap()])
        .ok();
    assert_same_tree(&src, &restored_path(&out, &src));

    // SOURCE:latest and a unique prefix resolve to the same backup.
    let out2 = env.path("out2");
    env.run(&[
        "restore",
        "tree:latest",
        "--to",
        out2.to_str().unwrap(),
        "--target",
        "local",
    ])
    .ok();
    assert_same_tree(&src, &restored_path(&out2, &src));
    let out3 = env.path("out3");
    env.run(&["restore", &id[..6], "--to", out3.to_str().unwrap()])
        .ok();
    assert_same_tree(&src, &restored_path(&out3, &src));
}

#[test]
fn command_round_trip_200mb_stream() {
    let env = Env::local();
    let src = env.path("stream.bin");
    write_pseudo_random_file(&src, 42, 200_000_000);
    let b = env.backup_json(&[
        "command",
        "--name",
        "big",
        "--",
        "cat",
        src.to_str().unwrap(),
    ]);
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["bytes"], 200_000_000);
    assert_eq!(b["kind"], "command");
    // Incompressible data is stored at about its size (plus framing).
    let stored = b["stored_bytes"].as_u64().unwrap();
    assert!(stored >= 199_000_000, "stored_bytes {stored}");

    let restored = env.path("restored.bin");
    env.restore_stdout_to(&[&id], &restored).ok();
    assert!(
        same_file_bytes(&src, &restored),
        "the restored 200 MB stream differs from the source"
    );
}

#[test]
fn second_backup_of_same_data_stores_under_one_percent() {
    let env = Env::local();
    let src = env.path("data");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..4 {
        std::fs::write(
            src.join(format!("f{i}.bin")),
            pseudo_random(100 + i, 2_000_000),
        )
        .unwrap();
    }
    std::fs::write(src.join("text.txt"), "some text\n".repeat(50_000)).unwrap();
    let first = env.backup_json(&["files", src.to_str().unwrap(), "--name", "data"]);
    let second = env.backup_json(&["files", src.to_str().unwrap(), "--name", "data"]);
    let bytes = second["bytes"].as_u64().unwrap();
    assert_eq!(bytes, first["bytes"].as_u64().unwrap());
    assert!(
        first["stored_bytes"].as_u64().unwrap() > 7_000_000,
        "first: {first}"
    );
    let stored = second["stored_bytes"].as_u64().unwrap();
    assert!(
        stored * 100 < bytes,
        "second backup stored {stored} new bytes of {bytes} (>= 1 %)"
    );

    // Same for a command stream backed up twice.
    let file = src.join("f0.bin");
    let c1 = env.backup_json(&[
        "command",
        "--name",
        "stream",
        "--",
        "cat",
        file.to_str().unwrap(),
    ]);
    let c2 = env.backup_json(&[
        "command",
        "--name",
        "stream",
        "--",
        "cat",
        file.to_str().unwrap(),
    ]);
    assert_eq!(c1["bytes"], 2_000_000);
    assert!(
        c2["stored_bytes"].as_u64().unwrap() * 100 < 2_000_000,
        "second stream backup: {c2}"
    );

    // Both deduplicated backups restore correctly.
    let restored = env.path("restored.bin");
    env.restore_stdout_to(&[c2["id"].as_str().unwrap()], &restored)
        .ok();
    assert!(same_file_bytes(&file, &restored));
    let out = env.path("out");
    env.run(&[
        "restore",
        second["id"].as_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_same_tree(&src, &restored_path(&out, &src));
}

#[test]
fn catalog_rebuild_reproduces_list() {
    let env = Env::local();
    let src = env.path("src-tree");
    make_tree(&src);
    env.backup_json(&[
        "files",
        src.to_str().unwrap(),
        "--name",
        "tree",
        "--tag",
        "a",
        "--tag",
        "b",
        "--note",
        "hello note",
    ]);
    env.backup_json(&[
        "command",
        "--name",
        "cmd",
        "--tag",
        "x",
        "--",
        "sh",
        "-c",
        "echo one; echo two",
    ]);
    env.backup_json(&["files", src.to_str().unwrap(), "--name", "tree"]);
    let original = sorted_by_id(env.list());
    assert_eq!(original.len(), 3);

    let new_catalog = env.path("rebuilt.db");
    let cat = new_catalog.to_str().unwrap();
    env.run(&["--catalog", cat, "catalog", "rebuild"]).ok();
    let out = env.run(&["--catalog", cat, "--json", "list"]);
    out.ok();
    let rebuilt = sorted_by_id(out.json().as_array().unwrap().clone());
    assert_eq!(
        rebuilt, original,
        "list --json after catalog rebuild differs"
    );

    // The rebuilt catalog is usable: restore from it.
    let dir = env.path("out");
    env.run(&[
        "--catalog",
        cat,
        "restore",
        "tree:latest",
        "--to",
        dir.to_str().unwrap(),
    ])
    .ok();
    assert_same_tree(&src, &restored_path(&dir, &src));
}

#[test]
fn two_backups_at_once_on_one_catalog() {
    let env = Env::local();
    for round in 0..3 {
        // Round 0: the catalog does not exist yet; round 1: it does;
        // round 2: both back up the same bytes (racing for the same blobs).
        let spawn = |name: &str, seed: u64| {
            let file = env.path(&format!("{name}-{round}.bin"));
            std::fs::write(&file, pseudo_random(seed, 3_000_000)).unwrap();
            let child = env
                .command()
                .args(["--json", "backup", "command", "--name", name, "--", "cat"])
                .arg(&file)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (child, file)
        };
        let (a, fa) = spawn("one", 1 + round);
        let (b, fb) = spawn("two", if round == 2 { 1 + round } else { 10 + round });
        let oa: Out = a.wait_with_output().unwrap().into();
        let ob: Out = b.wait_with_output().unwrap().into();
        oa.ok();
        ob.ok();
        for (o, file) in [(&oa, &fa), (&ob, &fb)] {
            let id = o.json()["id"].as_str().unwrap().to_string();
            let row = env.row(&id);
            assert_eq!(row["status"], "completed", "{row}");
            let restored = env.path("r.bin");
            env.restore_stdout_to(&[&id], &restored).ok();
            assert!(
                same_file_bytes(file, &restored),
                "backup {id} restored wrong bytes"
            );
        }
    }
    let rows = env.list();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["status"] == "completed"), "{rows:?}");
    env.run(&["verify", "--read-data"]).ok();
}

#[test]
fn configured_sources_and_tar_command_round_trip() {
    let env = Env::local();
    let src = env.path("src-tree");
    make_tree(&src);
    let sources = format!(
        "pack_size_mib = 2\n\
         [[source]]\nname = \"tree\"\nkind = \"files\"\npaths = [\"{src}\"]\ntags = [\"cfg\"]\n\
         [[source]]\nname = \"dump\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"seq 1 200000\"]\ntags = [\"db\"]\n\
         [[source]]\nname = \"tarred\"\nkind = \"command\"\nformat = \"tar\"\ncommand = [\"tar\", \"-C\", \"{src}\", \"-cf\", \"-\", \".\"]\n",
        src = src.display()
    );
    let config = env.write_config(
        "sources.toml",
        &ConfigOpts {
            s3: false,
            extra: sources,
            ..Default::default()
        },
    );
    let out = env.run_with(&config, &["--json", "backup", "--all", "--tag", "extra"]);
    out.ok();
    let outcomes: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    let names: Vec<&str> = outcomes
        .iter()
        .map(|o| o["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["tree", "dump", "tarred"]);
    env.run_with(&config, &["backup", "dump"]).ok();

    let rows = env.list_with(&config, &["--tag", "db"]);
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r["source"] == "dump" && r["kind"] == "command"));
    let tagged = env.list_with(&config, &["--tag", "extra"]);
    assert_eq!(tagged.len(), 3);
    let tree_row = tagged.iter().find(|r| r["source"] == "tree").unwrap();
    assert_eq!(str_array(&tree_row["tags"]), vec!["cfg", "extra"]);
    assert_eq!(
        env.list_with(&config, &["--limit", "1", "--page", "2"])
            .len(),
        1
    );
    assert_eq!(env.list_with(&config, &["--kind", "files"]).len(), 1);

    // The files source.
    let dir = env.path("out-tree");
    env.run_with(
        &config,
        &["restore", "tree:latest", "--to", dir.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&src, &restored_path(&dir, &src));
    // A stream source.
    let r = env.run_with(&config, &["restore", "dump:latest", "--stdout"]);
    r.ok();
    let expected: String = (1..=200000).map(|i| format!("{i}\n")).collect();
    assert!(r.stdout == expected.as_bytes(), "restored dump differs");
    // A tar from `tar -C DIR -cf - .` (its first entry is `./`) restores into DIR.
    let dir = env.path("out-tarred");
    env.run_with(
        &config,
        &["restore", "tarred:latest", "--to", dir.to_str().unwrap()],
    )
    .ok();
    let mut names: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut got: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    got.sort();
    assert_eq!(got, names);
    for n in names {
        assert_same_tree(&src.join(&n), &dir.join(&n));
    }
}
