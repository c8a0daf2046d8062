//! Adversarial tests: races. A backup or a prune frozen (SIGSTOP) past the
//! lock stale period while another process finds its lock stale must not
//! commit or delete anything afterwards; a target whose lock cannot be taken
//! gets nothing; dedup never references a pack that is gone. Every test uses
//! a stale period of 4 s (`lock_stale_after`; the lease is 2.8 s), so each
//! takes a few seconds.

#![allow(unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The stale period the race tests configure, and how long they freeze a
/// process to let it pass.
const STALE: &str = "4s";
const FROZEN: Duration = Duration::from_millis(5500);

/// A local-only environment with a 4 s lock stale period, 1 MiB packs, and
/// `tail` appended to the config (after the local target's table).
fn racing_env(tail: &str) -> Env {
    let env = Env::local();
    let mut text = env.config_text(&ConfigOpts {
        s3: false,
        extra: format!("pack_size_mib = 1\nlock_stale_after = \"{STALE}\"\n"),
        ..Default::default()
    });
    text.push_str(tail);
    std::fs::write(&env.config, text).unwrap();
    env
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} {} failed", child.id());
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what} exited with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn backup_id(env: &Env, source: &str, file: &Path) -> serde_json::Value {
    env.backup_json(&[
        "command",
        "--name",
        source,
        "--",
        "cat",
        file.to_str().unwrap(),
    ])
}

/// Restores backup `id` and asserts it holds the bytes of `expected`.
fn assert_restores(env: &Env, id: &str, expected: &Path) {
    let out_file = env.path(&format!("restored-{id}"));
    env.restore_stdout_to(&[id], &out_file).ok();
    assert!(
        same_file_bytes(expected, &out_file),
        "backup {id} does not restore the bytes of {}",
        expected.display()
    );
}

fn verify_read_data(env: &Env) {
    env.run(&["verify", "--read-data"]).ok();
}

fn index_files(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("index"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits until `count()` is at least `min` and has not changed for 600 ms.
fn wait_until_settled(count: impl Fn() -> usize, min: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = count();
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let n = count();
        if n != last {
            last = n;
            since = Instant::now();
        } else if n >= min && since.elapsed() >= Duration::from_millis(600) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} (have {n}, want {min})"
        );
    }
}

/// Issue 10, item 2: a backup frozen past the stale period, whose lock a
/// prune then removed as stale and whose uploaded packs it collected, must
/// not write a manifest naming those packs when it resumes (before the fix,
/// its lock refresher rewrote the vanished lock and the commit check passed).
/// Item 3: nor may it leave an index or catalog entry that a later backup
/// dedups against.
#[test]
fn a_backup_frozen_past_the_stale_period_does_not_commit() {
    let env = racing_env("");
    let repo = env.local_repo();
    let first = env.path("first.bin");
    write_pseudo_random_file(&first, 1, (1 << 20) + 4321);
    let first_id = backup_id(&env, "first", &first)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let packs_before = pack_files(&repo).len();

    // The racing backup: its source writes 8 MiB, says so, then waits.
    let data = env.path("race.bin");
    write_pseudo_random_file(&data, 2, 8 << 20);
    let (written, go) = (env.path("written"), env.path("go"));
    let script = format!(
        "cat '{}' && touch '{}' && while [ ! -e '{}' ]; do sleep 0.05; done",
        data.display(),
        written.display(),
        go.display()
    );
    let backup = env
        .command()
        .args([
            "--json", "backup", "command", "--name", "race", "--", "sh", "-c", &script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the backup");
    wait_for_file(&written, Duration::from_secs(60));
    // Every pack but the last (still being filled) is uploaded.
    wait_until_settled(
        || pack_files(&repo).len(),
        packs_before + 2,
        "the racing backup's packs",
    );
    signal(&backup, "STOP");
    std::thread::sleep(FROZEN);

    // A prune finds the frozen backup's lock stale and collects its packs.
    let out = env.run(&["--json", "prune", "--lock-wait", "20s"]);
    out.ok();
    let gc = &out.json()["targets"][0]["gc"];
    assert!(
        gc["packs_deleted"].as_u64().unwrap() >= 2,
        "the prune did not collect the frozen backup's packs: {gc}"
    );

    signal(&backup, "CONT");
    std::fs::write(&go, b"").unwrap();
    let out = backup.wait_with_output().unwrap();
    let code = out.status.code();
    assert!(
        code == Some(11) || code == Some(75),
        "{}",
        describe("the resumed backup (expected exit 11 or 75)", &out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lock"),
        "{}",
        describe("the resumed backup should say its lock was lost", &out)
    );
    assert_eq!(
        snapshots(&repo),
        vec![first_id.clone()],
        "the resumed backup committed a manifest"
    );
    verify_read_data(&env);
    assert_restores(&env, &first_id, &first);

    // The next run finishes the job: the same bytes are stored again (not
    // deduplicated against the collected packs) and restore.
    let again = backup_id(&env, "race", &data);
    let again_id = again["id"].as_str().unwrap();
    assert_restores(&env, again_id, &data);
    verify_read_data(&env);
}

/// Issue 10, item 2, the mirror: a prune frozen in its garbage collection
/// past the stale period, while a backup found its exclusive lock stale and
/// deduplicated against packs the prune had decided were garbage, must not
/// delete anything when it resumes (before the fix it deleted them, and the
/// backup's manifest named missing packs).
#[test]
fn a_prune_that_lost_its_lock_stops_deleting() {
    let env = racing_env("\n[target.retention]\nkeep_last = 1\n");
    let repo = env.local_repo();
    let (d, e) = (env.path("d.bin"), env.path("e.bin"));
    write_pseudo_random_file(&d, 3, (2 << 20) + 777);
    write_pseudo_random_file(&e, 4, (1 << 20) + 555);
    backup_id(&env, "a", &d);
    let packs_of_a = pack_files(&repo);
    assert!(!packs_of_a.is_empty());
    let a2 = backup_id(&env, "a", &e)["id"].as_str().unwrap().to_string();

    // Retention removes the first backup of `a`; the collection then stops
    // (test hook) right before its first write or delete.
    let pause = env.path("pause");
    std::fs::create_dir_all(&pause).unwrap();
    let prune = env
        .command()
        .env("VAULTCTL_TEST_PAUSE_DIR", &pause)
        .args(["--json", "prune", "--lock-wait", "20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the prune");
    wait_for_file(&pause.join("gc-delete.reached"), Duration::from_secs(60));
    signal(&prune, "STOP");
    std::thread::sleep(FROZEN);

    // Meanwhile a backup finds the prune's lock stale and reuses the blobs
    // of the removed backup: the packs the prune is about to delete.
    let b = backup_id(&env, "b", &d);
    assert_eq!(
        b["new_blobs"].as_u64(),
        Some(0),
        "the backup should deduplicate against the removed backup's packs: {b}"
    );
    let b = b["id"].as_str().unwrap().to_string();

    signal(&prune, "CONT");
    std::fs::write(pause.join("gc-delete.go"), b"").unwrap();
    let out = prune.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(11),
        "{}",
        describe("the resumed prune (expected exit 11)", &out)
    );
    for p in &packs_of_a {
        assert!(p.exists(), "the resumed prune deleted {}", p.display());
    }
    verify_read_data(&env);
    assert_restores(&env, &b, &d);
    assert_restores(&env, &a2, &e);

    // The next prune finishes the job and keeps what the backup needs.
    env.run(&["prune"]).ok();
    verify_read_data(&env);
    assert_restores(&env, &b, &d);
}

/// Issue 10, item 3: a target whose lock cannot be taken (here its `locks`
/// is a file, so no lock object can be written) gets no packs, no index and
/// no manifest; the backup succeeds on the other target with exit 3.
#[test]
fn a_target_that_cannot_be_locked_gets_nothing() {
    let env = Env::with_s3();
    let local = env.local_repo();
    let locks = local.join("locks");
    if locks.is_dir() {
        std::fs::remove_dir_all(&locks).unwrap();
    }
    std::fs::write(&locks, b"not a directory").unwrap();
    let (packs, indexes, manifests) = (pack_files(&local), index_files(&local), snapshots(&local));

    let f = env.path("f.bin");
    write_pseudo_random_file(&f, 5, (2 << 20) + 99);
    let out = env.run(&[
        "--json",
        "backup",
        "command",
        "--name",
        "x",
        "--",
        "cat",
        f.to_str().unwrap(),
    ]);
    out.expect_code(3);
    let id = out.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        pack_files(&local),
        packs,
        "packs were written to the unlocked target"
    );
    assert_eq!(
        index_files(&local),
        indexes,
        "an index was written to the unlocked target"
    );
    assert_eq!(snapshots(&local), manifests);

    let restored = env.path("restored");
    env.restore_stdout_to(&[&id, "--target", "s3"], &restored)
        .ok();
    assert!(same_file_bytes(&f, &restored));
}

/// Issue 10, item 3: dedup confirms a reused pack exists before referencing
/// it. Packs that vanished (lost, deleted by hand, or by a prune the catalog
/// did not notice) make the backup store the blobs again, and the catalog
/// forgets them.
#[test]
fn dedup_does_not_reuse_a_pack_that_is_gone() {
    let env = Env::local();
    let repo = env.local_repo();
    let f = env.path("f.bin");
    write_pseudo_random_file(&f, 6, (1 << 20) + 4242);
    backup_id(&env, "a", &f);
    for p in pack_files(&repo) {
        std::fs::remove_file(p).unwrap();
    }
    let b = backup_id(&env, "b", &f);
    assert!(
        b["new_blobs"].as_u64().unwrap() > 0,
        "the backup deduplicated against packs that are gone: {b}"
    );
    assert_restores(&env, b["id"].as_str().unwrap(), &f);
    // And the one after it reuses the new copy.
    let c = backup_id(&env, "c", &f);
    assert_eq!(c["new_blobs"].as_u64(), Some(0), "{c}");
    assert_restores(&env, c["id"].as_str().unwrap(), &f);
}
