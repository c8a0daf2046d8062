//! Retention, prune and garbage collection end to end (local and S3), prune
//! racing backups, lock recovery, and sync after an outage. Every test runs
//! the real binary in a private HOME/XDG tree.

use crate::prune_util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use prune_util::*;

/// Five backups of one source with partly shared data; keep_last = 2.
fn make_history(env: &Env) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..5u64 {
        // Each backup: 2 MiB of its own, then 1 MiB that every backup shares.
        let mut data = random_bytes(1000 + i, 2 << 20);
        data.extend(random_bytes(42, 1 << 20));
        let f = env.path(&format!("work/data{i}"));
        std::fs::write(&f, &data).unwrap();
        out.push((env.backup_file("db", &f), data));
    }
    // A second source with a single backup: the newest of a source is always kept.
    let f = env.path("work/other");
    std::fs::write(&f, random_bytes(77, 300_000)).unwrap();
    out.push((env.backup_file("other", &f), std::fs::read(&f).unwrap()));
    out
}

fn backups_on(env: &Env, target: &str) -> usize {
    let v = env.json(&["verify", "--target", target], false);
    assert_eq!(v["ok"], true, "verify --target {target}: {v}");
    v["targets"][0]["backups_checked"].as_u64().unwrap() as usize
}

/// The whole prune flow against one target, from a write-only host.
fn prune_end_to_end(env: &Env, stored: &dyn Fn() -> u64) {
    let history = make_history(env);
    let before = stored();

    // Dry run: the table names every backup, nothing changes.
    let dry = env.json(&["prune", "--dry-run"], true);
    let t = &dry["targets"][0];
    assert_eq!(t["dry_run"], true);
    let rows = t["backups"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{dry}");
    let action: BTreeMap<String, (String, Vec<String>)> = rows
        .iter()
        .map(|r| {
            let reasons = r["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            (
                r["id"].as_str().unwrap().to_string(),
                (r["action"].as_str().unwrap().to_string(), reasons),
            )
        })
        .collect();
    let ids: Vec<&String> = history.iter().map(|(id, _)| id).collect();
    assert_eq!(
        action[ids[4]],
        (
            "keep".to_string(),
            vec!["last".to_string(), "newest".to_string()]
        )
    );
    assert_eq!(
        action[ids[3]],
        ("keep".to_string(), vec!["last".to_string()])
    );
    for id in &ids[0..3] {
        assert_eq!(action[*id].0, "remove");
        assert!(action[*id].1.is_empty());
    }
    assert_eq!(
        action[ids[5]],
        (
            "keep".to_string(),
            vec!["last".to_string(), "newest".to_string()]
        ),
        "rules apply per source"
    );
    assert!(t["gc"]["packs_deleted"].as_u64().unwrap() > 0, "{dry}");
    assert_eq!(stored(), before, "a dry run must not change anything");
    let text = String::from_utf8_lossy(&env.run(&["prune", "--dry-run"], true).stdout).to_string();
    assert!(
        text.contains("remove") && text.contains("last, newest") && text.contains("would delete"),
        "{text}"
    );

    // The real thing, on a host without the identity.
    let out = env.json(&["prune"], true);
    let t = &out["targets"][0];
    let removed: BTreeSet<&str> = t["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(removed, ids[0..3].iter().map(|s| s.as_str()).collect());
    let after = stored();
    let freed = t["gc"]["bytes_deleted"].as_u64().unwrap();
    assert!(
        freed >= 4 << 20,
        "most of the six unshared MiB of the removed backups go: {out}"
    );
    assert!(
        after + freed <= before + 4096,
        "stored bytes went from {before} to {after}, freed {freed}"
    );

    // Clean afterwards, by ciphertext (write-only) and by content (identity).
    let v = env.json(&["verify", "--read-data"], true);
    assert_eq!(v["ok"], true, "{v}");
    let v = env.json(&["verify", "--read-data"], false);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["targets"][0]["backups_checked"], 3);
    for (id, data) in &history {
        if removed.contains(id.as_str()) {
            let out = env.run(&["restore", id, "--stdout"], false);
            assert!(!out.status.success(), "a pruned backup must not restore");
        } else {
            assert_eq!(&env.restore(id, None), data, "backup {id}");
        }
    }
    // The catalog forgot the removed backups.
    let list = env.json(&["list"], false);
    let listed: BTreeSet<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(removed.iter().all(|id| !listed.contains(id)), "{list}");

    // A second prune finds nothing to do, and a new backup that dedups
    // against what is left still restores.
    let again = env.json(&["prune"], true);
    assert_eq!(again["targets"][0]["gc"]["packs_deleted"], 0, "{again}");
    assert_eq!(again["targets"][0]["removed"].as_array().unwrap().len(), 0);
    let f = env.path("work/data-new");
    let mut data = history[4].1.clone();
    data.extend(random_bytes(9, 100_000));
    std::fs::write(&f, &data).unwrap();
    let id = env.backup_file("db", &f);
    assert_eq!(env.restore(&id, None), data);
    let v = env.json(&["verify", "--read-data"], false);
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn prune_local_target_from_a_write_only_host() {
    let (env, dir) = Env::local_keeping_last(2);
    prune_end_to_end(&env, &|| {
        dir_size(&dir.join("packs"))
            + dir_size(&dir.join("index"))
            + dir_size(&dir.join("snapshots"))
    });
}

#[test]
fn prune_s3_target() {
    let env = Env::new();
    let server = S3Server::start(&env.path("s3"));
    env.write_config(&s3_target(
        &server,
        "cloud",
        "[target.retention]\nkeep_last = 2",
    ));
    env.ok(&["init"]);
    let root = server.repo_dir();
    prune_end_to_end(&env, &|| {
        dir_size(&root.join("packs"))
            + dir_size(&root.join("index"))
            + dir_size(&root.join("snapshots"))
    });
}

/// Backups and prunes as separate processes at the same time, round after
/// round, arranged so that deduplication races garbage collection: in round
/// r, s1 backs up A(r), which makes its previous backup A(r-1) removable
/// (keep_last = 1), while s2 — "another host", with its own catalog —
/// streams A(r-1), deduplicating against packs that, once s1's backup is in,
/// no other manifest needs, pauses, then streams B(r). The prune starts with
/// a varying delay. Every backup must restore while its manifest exists, and
/// the repository must verify clean at the end. Without mutual exclusion
/// between backups and garbage collection this test fails.
#[test]
fn concurrent_prune_and_backups_stay_restorable() {
    let (env, dir) = Env::local_keeping_last(1);
    let seg = |name: &str, i: u64| -> std::path::PathBuf {
        let f = env.path(&format!("work/{name}{i}"));
        if !f.exists() {
            let seed = if name == "A" { 5000 + i } else { 9000 + i };
            std::fs::write(&f, random_bytes(seed, 2_000_000)).unwrap();
        }
        f
    };
    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut packs_deleted = 0u64;
    let mut lock_waits = 0;
    let mut restored: BTreeSet<String> = BTreeSet::new();
    let host1 = env.path("catalog.db").to_string_lossy().to_string();
    let host2 = env.path("catalog-host2.db").to_string_lossy().to_string();
    // Restores go through the catalog of the host that made the backup.
    let restore = |id: &str| -> Vec<u8> {
        for cat in [&host1, &host2] {
            let out = env.run(&["--catalog", cat, "restore", id, "--stdout"], false);
            if out.status.success() {
                return out.stdout;
            }
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(
                err.contains("no backup") || err.contains("not found") || err.contains("unknown"),
                "restore {id}: {err}"
            );
        }
        panic!("backup {id} is in no catalog");
    };
    const ROUNDS: u64 = 22;
    for round in 1..=ROUNDS {
        let (a_prev, a_now, b_now) = (seg("A", round - 1), seg("A", round), seg("B", round));
        let read = |f: &std::path::PathBuf| std::fs::read(f).unwrap();
        let jobs = [
            ("s1", format!("cat {}", a_now.display()), read(&a_now)),
            (
                "s2",
                format!(
                    "cat {}; sleep 1.5; cat {}",
                    a_prev.display(),
                    b_now.display()
                ),
                [read(&a_prev), read(&b_now)].concat(),
            ),
        ];
        let mut children = Vec::new();
        for (source, script, data) in jobs {
            let catalog = if source == "s2" {
                host2.as_str()
            } else {
                host1.as_str()
            };
            let child = env
                .command(
                    &[
                        "--catalog",
                        catalog,
                        "--json",
                        "backup",
                        "command",
                        "--name",
                        source,
                        "--",
                        "sh",
                        "-c",
                        &script,
                    ],
                    false,
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            children.push((Some(data), child));
        }
        std::thread::sleep(Duration::from_millis(150 * (round % 5)));
        let prune = env
            .command(&["--json", "prune"], round % 2 == 0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push((None, prune));
        for (data, child) in children {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            if stderr.contains("is locked by") {
                lock_waits += 1;
            }
            assert!(
                out.status.success(),
                "round {round}: {:?} failed: {stderr}",
                out.status.code()
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            match data {
                Some(d) => {
                    expected.insert(v["id"].as_str().unwrap().to_string(), d);
                }
                None => {
                    let t = &v["targets"][0];
                    removed.extend(
                        t["removed"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_str().unwrap().to_string()),
                    );
                    packs_deleted += t["gc"]["packs_deleted"].as_u64().unwrap();
                }
            }
        }
        // Every backup whose manifest still exists restores byte for byte.
        let present: BTreeSet<String> = std::fs::read_dir(dir.join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        for (id, data) in &expected {
            if present.contains(id) {
                // Each backup right after it completed, and all of them every few rounds.
                if !restored.insert(id.clone()) && round % 4 != 0 {
                    continue;
                }
                assert!(
                    &restore(id) == data,
                    "round {round}: backup {id} does not restore correctly"
                );
            } else {
                assert!(
                    removed.contains(id),
                    "round {round}: backup {id} vanished without prune removing it"
                );
            }
        }
    }
    // A last prune with nothing running, then everything must be in order.
    env.json(&["prune"], false);
    let v = env.json(&["verify", "--read-data"], false);
    assert_eq!(v["ok"], true, "{v}");
    let present: BTreeSet<String> = std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(present.len(), 2, "keep_last = 1 for each of two sources");
    for id in &present {
        assert!(
            restore(id) == expected[id],
            "backup {id} does not restore correctly"
        );
    }
    assert_eq!(expected.len() as u64, 2 * ROUNDS);
    assert!(
        packs_deleted > 0,
        "garbage collection never deleted anything, so the test proved little"
    );
    eprintln!(
        "concurrent test: {} backups, {} removed by retention, {packs_deleted} packs deleted, {lock_waits} processes waited for a lock",
        expected.len(),
        removed.len()
    );
}

/// A running backup blocks garbage collection (exit 11 after --lock-wait);
/// the lock of a killed backup is recovered at once on the same host.
#[test]
fn locks_block_prune_and_stale_locks_are_recovered() {
    let (env, dir) = Env::local_keeping_last(1);
    let f = env.path("work/a");
    std::fs::write(&f, random_bytes(1, 1_200_000)).unwrap();
    env.backup_file("s", &f);
    std::fs::write(&f, random_bytes(2, 1_200_000)).unwrap();
    env.backup_file("s", &f);

    let mut slow = env
        .command(
            &[
                "backup",
                "command",
                "--name",
                "slow",
                "--",
                "sh",
                "-c",
                "sleep 20; echo late",
            ],
            false,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while file_count(&dir.join("locks")) == 0 {
        assert!(Instant::now() < deadline, "the backup never took its lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = env.run(&["prune", "--lock-wait", "1s"], false);
    assert_eq!(
        out.status.code(),
        Some(11),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("locked by a shared lock of `backup`"),
        "{stderr}"
    );
    // Retention already ran (removing a manifest is always safe); the packs wait.
    assert_eq!(file_count(&dir.join("snapshots")), 1);

    slow.kill().unwrap();
    slow.wait().unwrap();
    assert_eq!(
        file_count(&dir.join("locks")),
        1,
        "kill -9 leaves the lock behind"
    );
    let v = env.json(&["prune", "--lock-wait", "1s"], false);
    assert!(
        v["targets"][0]["gc"]["packs_deleted"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert_eq!(
        file_count(&dir.join("locks")),
        0,
        "the stale lock was removed and ours released"
    );
    let v = env.json(&["verify", "--read-data"], false);
    assert_eq!(v["ok"], true, "{v}");
}

/// A target that was down during two backups is caught up by `sync`.
#[test]
fn sync_after_a_target_was_down() {
    let env = Env::new();
    let a = env.path("repo-a");
    let b = env.path("repo-b");
    env.write_config(&format!(
        "{}{}",
        local_target("a", &a, ""),
        local_target("b", &b, "")
    ));
    env.ok(&["init"]);
    let mut data = Vec::new();
    for i in 0..4u64 {
        let mut d = random_bytes(10, 1 << 20);
        d.extend(random_bytes(20 + i, 1 << 20));
        data.push(d);
    }
    let file = |i: usize| {
        let f = env.path(&format!("work/d{i}"));
        std::fs::write(&f, &data[i]).unwrap();
        f
    };
    let first = env.backup_file("db", &file(0));

    // Target b goes away for two backups: they succeed with warnings (exit 3).
    std::fs::rename(&b, env.path("repo-b.away")).unwrap();
    let mut missed = Vec::new();
    for i in 1..3 {
        let f = file(i);
        let out = env.run(
            &[
                "--json",
                "backup",
                "command",
                "--name",
                "db",
                "--",
                "cat",
                f.to_str().unwrap(),
            ],
            false,
        );
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        missed.push(v["id"].as_str().unwrap().to_string());
    }
    std::fs::rename(env.path("repo-b.away"), &b).unwrap();

    // The next backup notices that b is behind.
    let f = file(3);
    let out = env.run(
        &[
            "backup",
            "command",
            "--name",
            "db",
            "--",
            "cat",
            f.to_str().unwrap(),
        ],
        false,
    );
    assert_success(&["backup"], &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("target 'b' is behind") && stderr.contains("lacks 2 backup(s)"),
        "{stderr}"
    );
    assert_eq!(backups_on(&env, "b"), 2);

    let dry = env.json(&["sync", "--dry-run"], false);
    let pair = dry["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["to"] == "b")
        .unwrap()
        .clone();
    assert_eq!(
        pair["manifests_copied"].as_array().unwrap().len(),
        2,
        "{dry}"
    );
    assert_eq!(backups_on(&env, "b"), 2, "a dry run copies nothing");

    let v = env.json(&["sync"], false);
    let pair = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["to"] == "b")
        .unwrap()
        .clone();
    let copied: BTreeSet<&str> = pair["manifests_copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(copied, missed.iter().map(|s| s.as_str()).collect(), "{v}");
    assert!(pair["packs_copied"].as_u64().unwrap() >= 2, "{v}");
    let to_a = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["to"] == "a")
        .unwrap();
    assert_eq!(to_a["manifests_copied"].as_array().unwrap().len(), 0);

    // Both targets are complete and clean, and b alone restores the caught-up backups.
    let v = env.json(&["verify", "--read-data"], false);
    assert_eq!(v["ok"], true, "{v}");
    for t in v["targets"].as_array().unwrap() {
        assert_eq!(t["backups_checked"], 4, "{v}");
    }
    for (i, id) in missed.iter().enumerate() {
        assert_eq!(env.restore(id, Some("b")), data[i + 1]);
    }
    assert_eq!(env.restore(&first, Some("b")), data[0]);
    // The catalog knows b holds them now.
    let list = env.json(&["list"], false);
    for r in list.as_array().unwrap() {
        assert_eq!(r["targets"], serde_json::json!(["a", "b"]), "{list}");
    }
    // Nothing left to copy; the next backup finds the targets in step.
    let again = env.json(&["sync"], false);
    assert!(again["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["packs_copied"] == 0 && p["manifests_copied"].as_array().unwrap().is_empty()));
    let out = env.run(
        &[
            "backup",
            "command",
            "--name",
            "db",
            "--",
            "cat",
            f.to_str().unwrap(),
        ],
        false,
    );
    assert_success(&["backup"], &out);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("behind"));
}

/// A target keeping fewer backups does not get old ones back from sync.
#[test]
fn sync_respects_the_destinations_retention() {
    let env = Env::new();
    let a = env.path("repo-a");
    let b = env.path("repo-b");
    env.write_config(&format!(
        "{}{}",
        local_target("a", &a, "[target.retention]\nkeep_last = 1"),
        local_target("b", &b, "")
    ));
    env.ok(&["init"]);
    let f = env.path("work/x");
    for i in 0..3 {
        std::fs::write(&f, random_bytes(300 + i, 400_000)).unwrap();
        env.backup_file("s", &f);
    }
    env.json(&["prune"], false);
    assert_eq!(backups_on(&env, "a"), 1);
    let out = env.run(
        &[
            "backup",
            "command",
            "--name",
            "s",
            "--",
            "cat",
            f.to_str().unwrap(),
        ],
        false,
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("behind"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = env.json(&["sync"], false);
    let to_a = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["to"] == "a")
        .unwrap();
    assert_eq!(to_a["manifests_copied"].as_array().unwrap().len(), 0, "{v}");
    // a holds backups 3 and 4 (pruned before the 4th); b's 1 and 2 stay out.
    assert_eq!(to_a["skipped_by_retention"], 2, "{v}");
    let v = env.json(&["verify", "--read-data"], false);
    assert_eq!(v["ok"], true, "{v}");
}

/// Another host's catalog learned blob locations before a prune deleted the
/// packs; its next backup of the same data must store it again, not point at
/// the deleted packs.
/// "Host B": backs up `file` as command source `t` with its own catalog
/// `catalog` and `-v`; returns the JSON report and the log.
fn backup_as_host_b(env: &Env, catalog: &str, file: &Path) -> (serde_json::Value, String) {
    let args = [
        "-v",
        "--json",
        "--catalog",
        catalog,
        "backup",
        "command",
        "--name",
        "t",
        "--",
        "cat",
        file.to_str().unwrap(),
    ];
    let out = env.run(&args, false);
    assert_success(&args, &out);
    let v = serde_json::from_slice(&out.stdout).unwrap();
    (v, String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn other_hosts_catalogs_do_not_dedup_against_deleted_packs() {
    let (env, _) = Env::local_keeping_last(1);
    let host_b = env.path("catalog-b.db");
    let b = host_b.to_str().unwrap();
    let d1 = env.path("work/d1");
    std::fs::write(&d1, random_bytes(1, 1_500_000)).unwrap();
    let d2 = env.path("work/d2");
    std::fs::write(&d2, random_bytes(2, 600_000)).unwrap();
    let d3 = env.path("work/d3");
    std::fs::write(&d3, random_bytes(3, 600_000)).unwrap();

    env.backup_file("s", &d1); // host A stores d1
    let (v, _) = backup_as_host_b(&env, b, &d2);
    assert!(v["id"].is_string()); // host B reads A's index: it now knows d1's blobs
    env.backup_file("s", &d3);
    let p = env.json(&["prune"], false); // host A: d1's backup and packs go
    assert!(
        p["targets"][0]["gc"]["packs_deleted"].as_u64().unwrap() > 0,
        "{p}"
    );

    let (v, _) = backup_as_host_b(&env, b, &d1);
    assert!(
        v["new_blobs"].as_u64().unwrap() > 0,
        "host B must store d1 again: {v}"
    );
    let id = v["id"].as_str().unwrap();
    let out = env.run(&["--catalog", b, "restore", id, "--stdout"], false);
    assert_success(&["restore"], &out);
    assert_eq!(out.stdout, std::fs::read(&d1).unwrap());
    let v = env.json(&["verify", "--read-data"], false);
    assert_eq!(v["ok"], true, "{v}");
}

/// After a prune, catalogs forget the index objects it deleted (and the
/// packs only they listed) instead of re-reading every index object of the
/// target, on the pruning host and on another host; a catalog that read
/// its index objects before it recorded their packs re-reads the target
/// once. Dedup never points at a deleted pack either way.
#[test]
fn catalogs_forget_pruned_index_objects_without_rereading_the_target() {
    let (env, _) = Env::local_keeping_last(1);
    let host_b = env.path("catalog-b.db");
    let b = host_b.to_str().unwrap();
    let data: Vec<PathBuf> = (1..=4u64)
        .map(|i| {
            let f = env.path(&format!("work/d{i}"));
            std::fs::write(&f, random_bytes(i, 700_000)).unwrap();
            f
        })
        .collect();
    let backup_b = |f: &Path| backup_as_host_b(&env, b, f);
    let prune_a = || {
        let out = env.run(&["-v", "--json", "prune"], false);
        assert_success(&["prune"], &out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v["targets"][0]["gc"]["packs_deleted"].as_u64().unwrap() > 0,
            "{v}"
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    };

    env.backup_file("s", &data[0]);
    backup_b(&data[1]); // host B reads A's index: it knows d1's blobs
    env.backup_file("s", &data[2]);
    let log = prune_a(); // d1's backup and packs go
    assert!(
        !log.contains("re-reading its index"),
        "the pruning host re-read the target: {log}"
    );
    let (v, log) = backup_b(&data[0]);
    assert!(
        !log.contains("re-reading its index"),
        "host B re-read the target: {log}"
    );
    assert!(
        v["new_blobs"].as_u64().unwrap() > 0,
        "host B must store d1 again: {v}"
    );

    // Host B's catalog as an older vaultctl left it: index objects read
    // without their packs.
    let db = rusqlite::Connection::open(&host_b).unwrap();
    db.execute("UPDATE index_objects SET packs_known = 0", [])
        .unwrap();
    drop(db);
    env.backup_file("s", &data[3]);
    prune_a(); // d3's backup and packs go
    let (v, log) = backup_b(&data[2]);
    assert!(log.contains("re-reading its index"), "{log}");
    assert!(
        v["new_blobs"].as_u64().unwrap() > 0,
        "host B must store d3 again: {v}"
    );

    for id in [
        v["id"].as_str().unwrap().to_string(),
        backup_b(&data[1]).0["id"].as_str().unwrap().to_string(),
    ] {
        let out = env.run(&["--catalog", b, "restore", &id, "--stdout"], false);
        assert_success(&["restore"], &out);
    }
    let v = env.json(&["verify", "--read-data"], false);
    assert_eq!(v["ok"], true, "{v}");
}

/// A target that refuses deletes (Object Lock retention, or credentials that
/// may write but not delete; here a proxy answering every delete with S3's
/// 403 AccessDenied): a backup still succeeds, prune keeps and reports what
/// it could not delete (exit 3, nothing lost, the repository verifies and
/// every backup restores), and once deletes are allowed again the next
/// prune removes what was deferred.
#[test]
fn prune_against_a_target_that_refuses_deletes_defers_and_loses_nothing() {
    let env = Env::new();
    let server = S3Server::start(&env.path("s3"));
    let proxy = DeleteRefusingProxy::start(server.port);
    let retention = "[target.retention]\nkeep_last = 1";
    let direct = s3_target(&server, "cloud", retention);
    let locked = direct.replace(&server.endpoint(), &proxy.endpoint());
    env.write_config(&direct);
    env.ok(&["init"]);
    let mut history = Vec::new();
    for i in 0..2u64 {
        let f = env.path(&format!("work/data{i}"));
        std::fs::write(&f, random_bytes(300 + i, 600_000)).unwrap();
        history.push(env.backup_file("db", &f));
    }

    // From here on every delete is refused.
    env.write_config(&locked);
    let f = env.path("work/data2");
    std::fs::write(&f, random_bytes(302, 600_000)).unwrap();
    history.push(env.backup_file("db", &f));
    let refused_by_backup = proxy.refused.load(std::sync::atomic::Ordering::SeqCst);

    let manifests = || file_count(&server.repo_dir().join("snapshots"));
    assert_eq!(manifests(), 3);
    let out = env.run(&["--json", "prune"], false);
    assert_eq!(
        out.status.code(),
        Some(3),
        "refused deletes are a warning, not success and not a failure: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &report["targets"][0];
    let deferred: BTreeSet<&str> = t["deferred"]
        .as_array()
        .unwrap_or_else(|| panic!("no deferred list: {report}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        deferred,
        history[0..2].iter().map(|s| s.as_str()).collect(),
        "{report}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused") && stderr.contains("Object Lock"),
        "the operator is told why storage was not reclaimed: {stderr}"
    );
    assert!(
        proxy.refused.load(std::sync::atomic::Ordering::SeqCst) > refused_by_backup,
        "prune really tried to delete"
    );
    assert_eq!(manifests(), 3, "nothing was deleted");

    // Nothing is lost: the repository verifies, every backup restores.
    env.write_config(&direct);
    let v = env.json(&["verify", "--read-data"], false);
    assert_eq!(v["ok"], true, "{v}");
    for (i, id) in history.iter().enumerate() {
        assert_eq!(
            env.restore(id, None),
            std::fs::read(env.path(&format!("work/data{i}"))).unwrap()
        );
    }

    // Deletes allowed again (the retention period ended): the next prune
    // removes what it deferred.
    let out = env.json(&["prune"], false);
    let removed: BTreeSet<&str> = out["targets"][0]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(removed, history[0..2].iter().map(|s| s.as_str()).collect());
    assert_eq!(manifests(), 1);
    let v = env.json(&["verify", "--read-data"], false);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        env.restore(&history[2], None),
        std::fs::read(env.path("work/data2")).unwrap()
    );
}
