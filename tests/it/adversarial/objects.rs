//! Adversarial tests: hostile repository objects (issue 10, items 4, 5, 8b
//! and 10). Every fixture is crafted here, with what the attacker has: the
//! storage (write access to the bucket and the public recipient) or a
//! compromised backup host (also the dedup key, which the test config
//! holds). Each attempt must end in a clear error or a clean skip — never
//! wrong bytes, a crash, or a success exit for the restore.

use std::path::PathBuf;
use std::process::Command;

use vaultctl::repo::keys::{self, DedupKey, Recipient};
use vaultctl::repo::wal::WalHeader;

use crate::common::*;

/// 3 GiB of address space: far more than vaultctl needs, far less than a
/// zstd bomb or an allocation sized by a hostile length field asks for.
const MEMORY_LIMIT_KIB: u64 = 3 * 1024 * 1024;

fn dedup_key(env: &Env) -> DedupKey {
    DedupKey::load(&env.path("dedup.key")).unwrap()
}

fn recipient(env: &Env) -> Recipient {
    Recipient::parse(&env.recipient).unwrap()
}

fn manifest_file(env: &Env, id: &str) -> PathBuf {
    env.local_repo().join("snapshots").join(id)
}

/// A stored manifest's parts: `"VCSNAP01" || H || sealed header` and the
/// age body after it (docs/FORMAT.md).
fn split_manifest(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(&bytes[..8], b"VCSNAP01");
    let h = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    (bytes[..12 + h].to_vec(), bytes[12 + h..].to_vec())
}

/// Backs up `len` pseudo-random bytes (from `seed`), written to the file
/// `name`, as the source `db`; returns the backup id and the file.
fn backup_noise(env: &Env, name: &str, seed: u64, len: usize) -> (String, PathBuf) {
    let file = env.path(name);
    std::fs::write(&file, pseudo_random(seed, len)).unwrap();
    let b = env.backup_json(&[
        "command",
        "--name",
        "db",
        "--",
        "cat",
        file.to_str().unwrap(),
    ]);
    (b["id"].as_str().unwrap().to_string(), file)
}

/// Two backups of the same source `db`: an old one and a newer one.
fn two_backups(env: &Env) -> (String, String) {
    (
        backup_noise(env, "old.bin", 11, 300_000).0,
        backup_noise(env, "new.bin", 12, 300_000).0,
    )
}

/// `restore SPEC --stdout` into a file: must fail, and not with a signal.
#[track_caller]
fn restore_is_refused(env: &Env, spec: &str, must_name: &str) -> String {
    let out_file = env.path("restored.bin");
    let out = env.restore_stdout_to(&[spec], &out_file);
    assert!(
        out.code.is_some_and(|c| c != 0),
        "restore of {spec} must fail, got {:?}; stderr: {}",
        out.code,
        out.stderr
    );
    assert!(
        out.stderr.contains(must_name),
        "the error must name {must_name}: {}",
        out.stderr
    );
    out.stderr
}

/// Runs vaultctl like `env.run`, under a memory (address space) limit.
fn run_limited(env: &Env, args: &[&str]) -> Out {
    let template = env.command();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(BIN)
        .args(template.get_args())
        .args(args);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.current_dir(env.root());
    c.output().expect("run vaultctl").into()
}

/// A zstd frame of RLE blocks that decompresses to `blocks` × 128 KiB of
/// zeros: a few bytes per 128 KiB.
fn zstd_bomb(blocks: usize) -> Vec<u8> {
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd]; // magic
    f.push(0x00); // frame header descriptor: no content size, no checksum
    f.push(7 << 3); // window descriptor: 2^(10+7) = 128 KiB
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = ((128 * 1024u32) << 3) | (1 << 1) | last; // RLE block
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

#[test]
fn renamed_manifest_is_refused_by_restore_verify_and_rebuild() {
    let env = Env::local();
    let (old, new) = two_backups(&env);
    // The storage rolls "latest" back: the old manifest under the new name.
    std::fs::copy(manifest_file(&env, &old), manifest_file(&env, &new)).unwrap();

    let err = restore_is_refused(&env, &new, &new);
    assert!(err.contains(&old), "names the backup it really is: {err}");
    restore_is_refused(&env, "db:latest", &new);

    let out = env.run(&["verify"]);
    out.expect_code(1);
    assert!(out.stdout_str().contains(&new), "{}", out.stdout_str());

    // A fresh catalog from the repository does not import it either.
    let out = env.run(&["--json", "catalog", "rebuild"]);
    out.expect_code(1);
    let problems = out.json()["problems"].to_string();
    assert!(problems.contains(&new), "{problems}");

    // Prune is neither blocked nor fooled: it warns and deletes nothing
    // the old backup needs.
    let out = env.run(&["prune"]);
    out.ok();
    assert!(out.stderr.contains(&new), "{}", out.stderr);
    let f = env.path("old.out");
    env.restore_stdout_to(&[&old], &f).ok();
    assert!(same_file_bytes(&f, &env.path("old.bin")));
}

#[test]
fn spliced_body_of_an_older_backup_is_refused() {
    let env = Env::local();
    let (old, new) = two_backups(&env);
    // The new header with the old body: pure storage access, no key at all.
    let (new_head, _) = split_manifest(&std::fs::read(manifest_file(&env, &new)).unwrap());
    let (_, old_body) = split_manifest(&std::fs::read(manifest_file(&env, &old)).unwrap());
    std::fs::write(manifest_file(&env, &new), [new_head, old_body].concat()).unwrap();

    restore_is_refused(&env, &new, &new);
    restore_is_refused(&env, "db:latest", &new);
    let out = env.run(&["verify"]);
    out.expect_code(1);
    assert!(out.stdout_str().contains(&new), "{}", out.stdout_str());
    let out = env.run(&["verify", "--read-data"]);
    out.expect_code(1);
    assert!(out.stdout_str().contains(&new), "{}", out.stdout_str());
    // The old backup itself is untouched and restores, after a prune.
    let out = env.run(&["prune"]);
    out.ok();
    assert!(out.stderr.contains(&new), "{}", out.stderr);
    let f = env.path("old.out");
    env.restore_stdout_to(&[&old], &f).ok();
    assert!(same_file_bytes(&f, &env.path("old.bin")));
}

#[test]
fn forged_empty_body_made_with_the_public_recipient_is_refused() {
    let env = Env::local();
    let (_, new) = two_backups(&env);
    // An attacker who knows only the public recipient writes a body that
    // claims the backup is empty (with --clean this would empty a database).
    let body = serde_json::json!({
        "id": new, "source": "db", "kind": "command", "note": null, "tenants": [], "engine": {},
        "artifacts": [{ "name": "stdout", "format": "stream", "size": 0,
                        "blake3": blake3::hash(b"").to_hex().to_string(), "blobs": [] }]
    });
    let forged = keys::encrypt(&[recipient(&env)], body.to_string().as_bytes()).unwrap();
    let (head, _) = split_manifest(&std::fs::read(manifest_file(&env, &new)).unwrap());
    std::fs::write(manifest_file(&env, &new), [head, forged].concat()).unwrap();

    restore_is_refused(&env, &new, &new);
    let out = env.run(&["verify", "--read-data"]);
    out.expect_code(1);
    assert!(out.stdout_str().contains(&new), "{}", out.stdout_str());
}

#[test]
fn garbage_index_object_is_reported_and_skipped() {
    let env = Env::local();
    let (a, first) = backup_noise(&env, "first.bin", 21, 200_000);
    // A name that is the correct BLAKE3 of garbage bytes.
    let garbage = b"this is not an index object".repeat(10);
    let name = blake3::hash(&garbage).to_hex().to_string();
    std::fs::write(env.local_repo().join("index").join(&name), &garbage).unwrap();

    // Unrelated work goes on: backup, prune, catalog rebuild.
    let b = env.run(&[
        "--json", "backup", "command", "--name", "db", "--", "echo", "hello",
    ]);
    b.ok();
    assert!(
        b.stderr.contains(&name),
        "the backup warns about it: {}",
        b.stderr
    );
    let alerts = env.run(&["--json", "alerts"]);
    alerts.ok();
    let alerts = alerts.json().to_string();
    assert!(
        alerts.contains("repository_damaged") && alerts.contains(&name),
        "an alert names the object: {alerts}"
    );
    env.run(&["prune"]).ok();
    let out = env.run(&["--json", "catalog", "rebuild"]);
    out.expect_code(1);
    let r = out.json();
    assert_eq!(r["backups"], 2, "{r}");
    assert!(r["problems"].to_string().contains(&name), "{r}");
    // verify reports it as a problem, and the backups still restore.
    let out = env.run(&["verify"]);
    out.expect_code(1);
    assert!(out.stdout_str().contains(&name), "{}", out.stdout_str());
    let f = env.path("a.out");
    env.restore_stdout_to(&[&a], &f).ok();
    assert!(same_file_bytes(&f, &first));
}

#[test]
fn zstd_bombs_in_an_index_and_a_manifest_header_are_refused() {
    let env = Env::local();
    let (a, data) = backup_noise(&env, "d.bin", 31, 200_000);
    let key = dedup_key(&env);
    // 8 GiB of zeros in 256 KiB, sealed with the real key (a compromised
    // backup host has it).
    let bomb = key.seal(&zstd_bomb(64 * 1024));
    let index_name = blake3::hash(&bomb).to_hex().to_string();
    std::fs::write(env.local_repo().join("index").join(&index_name), &bomb).unwrap();

    let out = run_limited(
        &env,
        &["backup", "command", "--name", "db", "--", "echo", "x"],
    );
    out.ok();
    assert!(out.stderr.contains(&index_name), "{}", out.stderr);
    let out = run_limited(&env, &["verify"]);
    out.expect_code(1);
    assert!(
        out.stdout_str().contains("zstd bomb"),
        "{}",
        out.stdout_str()
    );
    std::fs::remove_file(env.local_repo().join("index").join(&index_name)).unwrap();

    // The same bomb as a manifest header.
    let bad_id = "0123456789abcdef";
    let mut m = b"VCSNAP01".to_vec();
    m.extend_from_slice(&(bomb.len() as u32).to_le_bytes());
    m.extend_from_slice(&bomb);
    std::fs::write(manifest_file(&env, bad_id), &m).unwrap();
    let out = run_limited(&env, &["verify"]);
    out.expect_code(1);
    let text = out.stdout_str();
    assert!(
        text.contains(bad_id) && text.contains("zstd bomb"),
        "{text}"
    );
    let out = run_limited(&env, &["catalog", "rebuild"]);
    out.expect_code(1);
    assert!(out.stderr.contains(bad_id), "{}", out.stderr);
    let out = run_limited(&env, &["prune"]);
    assert!(out.code.is_some(), "prune must not crash: {}", out.stderr);
    // Nothing was lost.
    let f = env.path("a.out");
    env.restore_stdout_to(&[&a], &f).ok();
    assert!(same_file_bytes(&f, &data));
}

#[test]
fn truncated_and_zero_length_manifests_do_not_block_gc() {
    let env = Env::local();
    let ids: Vec<String> = (0..3)
        .map(|i| backup_noise(&env, &format!("{i}.bin"), 40 + i, 300_000).0)
        .collect();
    // A power cut: one manifest empty, one cut inside its header.
    std::fs::write(manifest_file(&env, &ids[1]), b"").unwrap();
    let m = std::fs::read(manifest_file(&env, &ids[2])).unwrap();
    std::fs::write(manifest_file(&env, &ids[2]), &m[..40]).unwrap();
    let packs_before = pack_files(&env.local_repo()).len();

    let out = env.run(&["verify"]);
    out.expect_code(1);
    let text = out.stdout_str();
    for id in &ids[1..] {
        assert!(text.contains(id), "verify names {id}: {text}");
        assert!(
            text.contains(&format!("snapshots/{id}")),
            "and says what to delete: {text}"
        );
    }
    restore_is_refused(&env, &ids[1], &ids[1]);

    // GC is not blocked: it runs, warns, and keeps the intact backup.
    let out = env.run(&["--json", "prune"]);
    out.ok();
    assert!(
        out.stderr.contains(&ids[1]) && out.stderr.contains(&ids[2]),
        "{}",
        out.stderr
    );
    let gc = &out.json()["targets"][0]["gc"];
    assert!(gc["packs_deleted"].as_u64().unwrap() >= 1, "{gc}");
    assert!(pack_files(&env.local_repo()).len() < packs_before);
    let f = env.path("0.out");
    env.restore_stdout_to(&[&ids[0]], &f).ok();
    assert!(same_file_bytes(&f, &env.path("0.bin")));
    env.run(&["verify", "--read-data"]).expect_code(1);
}

#[test]
fn oversized_length_fields_are_refused() {
    let env = Env::local();
    let (old, new) = two_backups(&env);

    // Manifest header length far past the object's end.
    let mut m = std::fs::read(manifest_file(&env, &new)).unwrap();
    m[8..12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    std::fs::write(manifest_file(&env, &new), &m).unwrap();
    restore_is_refused(&env, &new, &new);
    let out = run_limited(&env, &["prune"]);
    out.ok();

    // A pack whose trailer claims 2^32-1 entries (made with the public key).
    let mut plain = b"VCPACK01".to_vec();
    plain.extend_from_slice(&[0u8; 64]);
    plain.extend_from_slice(&u32::MAX.to_le_bytes());
    plain.extend_from_slice(b"VCPKEND1");
    let pack = keys::encrypt(&[recipient(&env)], &plain).unwrap();
    let name = blake3::hash(&pack).to_hex().to_string();
    let dir = env.local_repo().join("packs").join(&name[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&name), &pack).unwrap();
    let out = run_limited(&env, &["verify", "--read-data"]);
    out.expect_code(1);
    assert!(out.stdout_str().contains(&name), "{}", out.stdout_str());
    let f = env.path("old.out");
    env.restore_stdout_to(&[&old], &f).ok();
    assert!(same_file_bytes(&f, &env.path("old.bin")));
}

/// A config with a postgres-physical source `cluster` (no server needed:
/// WAL fetch and prune read only the repository).
fn with_physical_source(env: &Env) {
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text.push_str("\n[[source]]\nname = \"cluster\"\nkind = \"postgres-physical\"\nurl = \"postgresql://postgres@127.0.0.1:9/postgres\"\n");
    std::fs::write(&env.config, text).unwrap();
}

fn wal_object_path(env: &Env, name: &str) -> PathBuf {
    env.local_repo()
        .join("wal/cluster")
        .join(&name[..16])
        .join(name)
}

#[test]
fn wal_fetch_refuses_a_hostile_raw_len_without_allocating_it() {
    let env = Env::local();
    with_physical_source(&env);
    let key = dedup_key(&env);
    let plain = pseudo_random(51, 1 << 20);
    let (mut obj, _) = vaultctl::repo::wal::encode(&plain, &key, &[recipient(&env)], 1).unwrap();
    let name = "000000010000000000000001";
    // The plaintext header's raw_len is not authenticated: claim 2^60 bytes.
    obj[12..20].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let path = wal_object_path(&env, name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &obj).unwrap();
    let dest = env.path("pg_wal_out");
    let out = run_limited(&env, &["wal", "fetch", name, dest.to_str().unwrap()]);
    out.expect_code(1);
    assert!(out.stderr.contains(name), "{}", out.stderr);
    assert!(!dest.exists());

    // A raw_len smaller than the data: refused as soon as it is exceeded.
    obj[12..20].copy_from_slice(&4096u64.to_le_bytes());
    std::fs::write(&path, &obj).unwrap();
    let out = run_limited(&env, &["wal", "fetch", name, dest.to_str().unwrap()]);
    out.expect_code(1);
    assert!(!dest.exists());
    // The intact object is fetched byte for byte.
    obj[12..20].copy_from_slice(&(plain.len() as u64).to_le_bytes());
    std::fs::write(&path, &obj).unwrap();
    run_limited(&env, &["wal", "fetch", name, dest.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&dest).unwrap(), plain);
}

/// Writes a base backup manifest of `cluster` whose WAL starts at `lsn`.
fn physical_manifest(env: &Env, id: &str, lsn: &str) {
    let header: vaultctl::repo::manifest::Header = serde_json::from_value(serde_json::json!({
        "version": 1, "id": id, "source": "cluster", "kind": "postgres-physical",
        "host": "h", "started_at": "2026-11-01T00:00:00.000Z", "finished_at": "2026-11-01T00:01:00.000Z",
        "duration_ms": 1, "tags": [], "bytes": 0, "stored_bytes": 0, "packs": [], "blobs": [],
        "wal_start": { "timeline": 1, "start_lsn": lsn }
    }))
    .unwrap();
    let body: vaultctl::repo::manifest::Body = serde_json::from_value(serde_json::json!({
        "id": id, "artifacts": []
    }))
    .unwrap();
    let bytes =
        vaultctl::repo::manifest::encode(&header, &body, &dedup_key(env), &[recipient(env)])
            .unwrap();
    std::fs::create_dir_all(env.local_repo().join("snapshots")).unwrap();
    std::fs::write(manifest_file(env, id), bytes).unwrap();
}

/// A WAL object whose header records `raw_len` (or garbage), with a tiny
/// body: retention reads only headers.
fn wal_stub(env: &Env, name: &str, raw_len: Option<u64>) {
    let body = b"body".to_vec();
    let head = match raw_len {
        Some(n) => WalHeader {
            flags: 1,
            raw_len: n,
            id: [0; 32],
            body_blake3: *blake3::hash(&body).as_bytes(),
        }
        .encode()
        .to_vec(),
        None => vec![0x5a; 84],
    };
    let path = wal_object_path(env, name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, [head, body].concat()).unwrap();
}

fn wal_names(env: &Env) -> Vec<String> {
    let dir = env.local_repo().join("wal/cluster/0000000100000000");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn prune_never_guesses_the_wal_segment_size() {
    let env = Env::local();
    with_physical_source(&env);
    // 64 MiB segments: the kept base backup starts at 0/5000028, in
    // segment 1 (a 16 MiB guess would put it in segment 5).
    physical_manifest(&env, "00000000000000aa", "0/5000028");
    let seg = 64u64 << 20;
    let names: Vec<String> = (0..6)
        .map(|i| format!("0000000100000000000000{i:02X}"))
        .collect();
    for n in &names[..5] {
        wal_stub(&env, n, Some(seg));
    }
    // One unreadable header: the newest segment's.
    wal_stub(&env, &names[5], None);

    let out = env.run(&["--json", "prune"]);
    out.expect_code(3);
    assert!(out.stderr.contains("segment size"), "{}", out.stderr);
    assert_eq!(wal_names(&env), names, "no WAL may be removed on a guess");
    let wal = &out.json()["targets"][0]["wal"][0];
    assert!(wal["error"].as_str().is_some(), "{wal}");

    // Once the header is readable, exactly the WAL before segment 1 goes.
    wal_stub(&env, &names[5], Some(seg));
    env.run(&["prune"]).ok();
    assert_eq!(wal_names(&env), names[1..].to_vec());

    // Headers that disagree about the size are no better than unreadable.
    wal_stub(&env, &names[5], Some(16 << 20));
    let out = env.run(&["prune"]);
    out.expect_code(3);
    assert_eq!(wal_names(&env), names[1..].to_vec());
}

/// Rewrites backup `id` as a version 1 manifest (no `body_mac`, a body
/// without source and kind), as vaultctl wrote them before the binding.
fn downgrade_to_v1(env: &Env, id: &str) {
    use vaultctl::repo::manifest;
    let key = dedup_key(env);
    let ids = keys::load_identities(&env.path("id.txt")).unwrap();
    let stored = std::fs::read(manifest_file(env, id)).unwrap();
    let mut header = manifest::decode_header(&stored, &key, id).unwrap();
    let body = manifest::decode_body(&stored, &ids, &header).unwrap();
    header.version = 1;
    let sealed = key.seal(&zstd::bulk::compress(&serde_json::to_vec(&header).unwrap(), 3).unwrap());
    let body = keys::encrypt(&[recipient(env)], &serde_json::to_vec(&body).unwrap()).unwrap();
    let mut out = b"VCSNAP01".to_vec();
    out.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    out.extend_from_slice(&sealed);
    out.extend_from_slice(&body);
    std::fs::write(manifest_file(env, id), out).unwrap();
}

#[test]
fn version_1_manifests_still_restore_with_a_warning_and_their_checks() {
    let env = Env::local();
    let (old, new) = two_backups(&env);
    downgrade_to_v1(&env, &old);
    downgrade_to_v1(&env, &new);
    let f = env.path("new.out");
    env.restore_stdout_to(&[&new], &f).ok();
    assert!(same_file_bytes(&f, &env.path("new.bin")));
    let out = env.run(&["verify", "--read-data"]);
    out.ok();
    assert!(
        out.stderr.contains("version 1") && out.stderr.contains(&new),
        "verify warns that v1 manifests are not body-bound: {}",
        out.stderr
    );
    // What version 1 can still catch: another backup's body, another name.
    let (new_head, _) = split_manifest(&std::fs::read(manifest_file(&env, &new)).unwrap());
    let (_, old_body) = split_manifest(&std::fs::read(manifest_file(&env, &old)).unwrap());
    std::fs::write(manifest_file(&env, &new), [new_head, old_body].concat()).unwrap();
    let err = restore_is_refused(&env, &new, &new);
    assert!(err.contains(&old), "{err}");
    std::fs::copy(manifest_file(&env, &old), manifest_file(&env, &new)).unwrap();
    restore_is_refused(&env, &new, &new);
}
