//! The fault-injection suite: backup and prune crashed at every storage
//! write of a realistic run (two targets, several packs), over an in-memory
//! store wrapped in [`crate::storage::fault::FaultStore`]; a storage error
//! at every operation of a backup and of a catalog rebuild. After each crash the repository
//! must verify clean (structure and data), every committed backup must
//! still restore byte for byte, and the next run must succeed.
//!
//! `cargo test --lib jobs::faults -- --nocapture` prints the crash points.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use object_store::memory::InMemory;
use object_store::ObjectStore;

use crate::catalog::Catalog;
use crate::progress::Silent;
use crate::repo::backup::{ArtifactStream, BackupOptions, BackupOutcome, Source};
use crate::repo::chunker::ChunkerParams;
use crate::repo::format::{manifest_path, PACKS_DIR, SNAPSHOTS_DIR};
use crate::repo::keys::{self, DedupKey, Recipient};
use crate::repo::lock::{LockTiming, LOCKS_DIR};
use crate::repo::prune::{self, PruneOptions};
use crate::repo::retention::Policy;
use crate::repo::verify::{self, Mode};
use crate::repo::{restore, RepoKeys, Repository};
use crate::storage::fault::{AfterCrash, Fault, FaultStore, Op, OpKind, Plan, Trigger};
use crate::storage::Store;

const TARGETS: [&str; 2] = ["a", "b"];
/// Small chunks and packs, so a backup of a few hundred KiB makes several.
const PACK_SIZE: usize = 64 * 1024;
const CHUNKER: ChunkerParams = ChunkerParams {
    min_size: 8 * 1024,
    avg_size: 24 * 1024,
    max_size: 64 * 1024,
};

type Data = Vec<(String, Vec<u8>)>;

/// Artifacts from memory.
struct MemSource(Data);

impl Source for MemSource {
    fn kind(&self) -> &'static str {
        "command"
    }
    fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let (name, data) = self.0.remove(0);
        Ok(Some(ArtifactStream {
            name,
            format: "stream".into(),
            reader: Box::new(std::io::Cursor::new(data)),
            finish: Box::new(|| Ok(())),
        }))
    }
    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

/// Incompressible, reproducible bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A dump of `len` bytes shared with every other generation, then
/// `fresh` bytes of its own; and a small second artifact.
fn generation(n: u64, fresh: usize) -> Data {
    let mut dump = noise(1, 160 * 1024);
    dump.extend(noise(100 + n, fresh));
    vec![
        ("dump".to_string(), dump),
        ("globals".to_string(), noise(200 + n, 20 * 1024)),
    ]
}

struct World {
    dir: tempfile::TempDir,
    identity: PathBuf,
    dedup: DedupKey,
    recipients: Vec<Recipient>,
    catalogs: std::sync::atomic::AtomicUsize,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let identity = dir.path().join("identity.txt");
        let public = keys::generate_identity(&identity).unwrap();
        World {
            identity,
            dedup: DedupKey::generate(),
            recipients: vec![Recipient::parse(&public).unwrap()],
            dir,
            catalogs: Default::default(),
        }
    }

    fn keys(&self) -> RepoKeys {
        RepoKeys {
            dedup: self.dedup.clone(),
            recipients: self.recipients.clone(),
            identity_file: Some(self.identity.clone()),
        }
    }

    /// The two targets, as prefixes of one object store (so one crash
    /// stops the writes to both, as a killed process would).
    fn stores(inner: Arc<dyn ObjectStore>) -> Vec<Store> {
        TARGETS
            .iter()
            .map(|t| Store::from_object_store(t, inner.clone(), t, &format!("memory://{t}")))
            .collect()
    }

    fn repo(&self, inner: Arc<dyn ObjectStore>) -> Repository {
        Repository::from_stores(World::stores(inner), self.keys(), LockTiming::default()).unwrap()
    }

    /// A new repository on both targets of `inner`.
    fn init_repo(&self, inner: Arc<dyn ObjectStore>) -> Repository {
        Repository::init_stores(
            World::stores(inner),
            self.keys(),
            CHUNKER,
            LockTiming::default(),
        )
        .unwrap()
    }

    /// A copy of a (closed) catalog, for one run.
    fn copy_catalog(&self, from: &Path) -> PathBuf {
        let n = self
            .catalogs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.dir.path().join(format!("catalog-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(from.parent().unwrap()).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        dir.join("catalog.db")
    }

    fn new_catalog(&self) -> PathBuf {
        let n = self
            .catalogs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.path().join(format!("catalog-{n}/catalog.db"))
    }
}

/// The prune both prune runs make: keep the newest backup, for real.
fn keep_last_one() -> (Policy, PruneOptions) {
    let policy = Policy {
        keep_last: Some(1),
        ..Default::default()
    };
    let opts = PruneOptions {
        dry_run: false,
        lock_wait: std::time::Duration::from_secs(1),
        lock_timing: LockTiming::default(),
    };
    (policy, opts)
}

fn backup(repo: &Repository, catalog: &Path, data: Data) -> Result<BackupOutcome> {
    let mut cat = Catalog::open(catalog)?;
    let opts = BackupOptions {
        source: "db".into(),
        tags: vec![],
        note: None,
        compression_level: 1,
        pack_size: PACK_SIZE,
    };
    crate::jobs::backup::back_up_one(repo, &mut cat, &mut MemSource(data), &opts, &Silent)
}

/// Restores backup `id` from `store` alone.
fn restore(repo: &Repository, catalog: &Path, store: &Store, id: &str) -> Result<Data> {
    let mut cat = Catalog::open(catalog)?;
    let stores = vec![store.clone()];
    let (_, body) = restore::load_body(repo, &stores, id)?;
    let mut out = Vec::new();
    for a in &body.artifacts {
        let plan = restore::plan(repo, &mut cat, a)?;
        let mut r = restore::ArtifactReader::open(repo, stores.clone(), a, plan)?;
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)?;
        out.push((a.name.clone(), bytes));
    }
    Ok(out)
}

fn names(store: &Store, dir: &str) -> BTreeSet<String> {
    store
        .list(dir)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

fn manifest_ids(store: &Store) -> BTreeSet<String> {
    names(store, SNAPSHOTS_DIR)
        .into_iter()
        .filter_map(|n| n.strip_prefix("snapshots/").map(String::from))
        .collect()
}

/// What a restarted process finds of a killed one's locks: stale at once
/// (same host, its pid gone). This test process is still alive, so its
/// leftover locks are removed by hand.
fn reap_locks(stores: &[Store]) {
    for s in stores {
        for n in names(s, LOCKS_DIR) {
            s.delete(&n).unwrap();
        }
    }
}

/// The repository verifies clean on every target (structure and data), no
/// manifest names a missing pack, and every backup in `expected` restores
/// byte for byte from each target alone. `what` names the case.
fn check(
    w: &World,
    repo: &Repository,
    catalog: &Path,
    expected: &HashMap<String, Data>,
    what: &str,
) {
    let ids = w.identity.clone();
    let identities = keys::load_identities(&ids).unwrap();
    for s in &repo.stores {
        let r = verify::verify_target(repo, s, Mode::ReadData, Some(&identities), &Silent)
            .unwrap_or_else(|e| panic!("{what}: verify of '{}' failed: {e:#}", s.name));
        assert!(
            r.ok && r.problems.is_empty(),
            "{what}: target '{}' does not verify clean: {:#?}",
            s.name,
            r.problems
        );
        let packs = names(s, PACKS_DIR);
        for id in manifest_ids(s) {
            let (h, _) = restore::load_manifest(std::slice::from_ref(s), &id, &repo.dedup)
                .unwrap_or_else(|e| panic!("{what}: manifest {id} on '{}': {e:#}", s.name));
            for p in &h.packs {
                assert!(
                    packs.contains(&crate::repo::format::pack_path(p)),
                    "{what}: manifest {id} on '{}' names the missing pack {p}",
                    s.name
                );
            }
        }
        for (id, data) in expected {
            let got = restore(repo, catalog, s, id).unwrap_or_else(|e| {
                panic!(
                    "{what}: backup {id} does not restore from '{}': {e:#}",
                    s.name
                )
            });
            assert!(
                &got == data,
                "{what}: backup {id} restores different bytes from '{}'",
                s.name
            );
        }
    }
}

/// [`check`] with different backups expected on the two targets.
fn check_targets(
    w: &World,
    repo: &Repository,
    catalog: &Path,
    on_a: &HashMap<String, Data>,
    on_b: &HashMap<String, Data>,
    what: &str,
) {
    for (t, expected) in TARGETS.iter().zip([on_a, on_b]) {
        check(w, &only(repo, t), catalog, expected, what);
    }
}

/// Runs `op` over a copy of `pre` whose `k`-th write crashes (what follows
/// as `after` says), checks that the crash point was reached, and returns
/// the copy as the crash left it, with what `op` returned.
fn crashed_at<R>(
    pre: &InMemory,
    k: usize,
    after: AfterCrash,
    op: impl FnOnce(Arc<dyn ObjectStore>) -> R,
) -> (Arc<dyn ObjectStore>, R) {
    let mem: Arc<dyn ObjectStore> = Arc::new(pre.fork());
    let f = FaultStore::new(mem.clone(), Plan::new().crash(Trigger::Write(k), after));
    let out = op(f.clone());
    assert!(f.crashed(), "crash point {k} was never reached");
    (mem, out)
}

fn print_points(title: &str, ops: &[Op]) {
    println!("{title}: {} crash points", ops.len());
    for (k, op) in ops.iter().enumerate() {
        println!("  crash point {k:2}: before {op}");
    }
}

/// A repository on two targets holding one backup; returns the store, the
/// (closed) catalog and the backup's id and data.
fn pre_state(w: &World, generations: u64) -> (InMemory, PathBuf, HashMap<String, Data>) {
    let mem = Arc::new(InMemory::new());
    let repo = w.init_repo(mem.clone());
    let catalog = w.new_catalog();
    let mut expected = HashMap::new();
    for g in 0..generations {
        let data = generation(g, 120 * 1024);
        let out = backup(&repo, &catalog, data.clone()).unwrap();
        assert_eq!(out.targets.len(), 2);
        expected.insert(out.id, data);
    }
    (mem.fork(), catalog, expected)
}

#[test]
fn a_backup_crashed_at_every_write_leaves_a_sound_repository_and_the_next_run_succeeds() {
    backup_crashed_at_every_write(AfterCrash::Drop);
}

/// The same, with the crashed process seeing its later writes fail (so it
/// runs its error paths against a store it can no longer change).
#[test]
fn a_backup_whose_writes_fail_from_any_point_on_leaves_a_sound_repository() {
    backup_crashed_at_every_write(AfterCrash::Error);
}

fn backup_crashed_at_every_write(after: AfterCrash) {
    let w = World::new();
    let (pre, pre_catalog, committed) = pre_state(&w, 1);
    check(
        &w,
        &w.repo(Arc::new(pre.fork())),
        &pre_catalog,
        &committed,
        "pre-state",
    );

    // One clean run, to count its writes.
    let f = FaultStore::new(Arc::new(pre.fork()), Plan::new());
    let out = backup(
        &w.repo(f.clone()),
        &w.copy_catalog(&pre_catalog),
        generation(1, 600 * 1024),
    )
    .unwrap();
    assert!(out.new_blobs > 0 && out.blobs > out.new_blobs, "{out:?}");
    let writes: Vec<Op> = f.ops().into_iter().filter(|o| o.kind.is_write()).collect();
    let all_ops = f.ops().len();
    if after == AfterCrash::Drop {
        print_points("backup (two targets)", &writes);
    }
    assert!(
        writes.len() >= 20,
        "only {} writes in a backup: {writes:#?}",
        writes.len()
    );
    let packs_written = writes.iter().filter(|o| o.path.contains("/packs/")).count();
    assert!(packs_written >= 6, "{writes:#?}");
    println!("({all_ops} storage operations in all)");

    for k in 0..writes.len() {
        let catalog = w.copy_catalog(&pre_catalog);
        let data = generation(1, 600 * 1024);
        let (mem, crashed) = crashed_at(&pre, k, after, |f| {
            backup(&w.repo(f), &catalog, data.clone())
        });
        let what = format!("backup crashed ({after:?}) at point {k}");
        if after == AfterCrash::Error {
            // The process saw its writes fail: the run must have failed, or
            // have committed on a target it reports.
            if let Ok(out) = &crashed {
                for t in &out.targets {
                    let s = w.repo(mem.clone());
                    let s = s.stores.iter().find(|s| &s.name == t).unwrap();
                    assert!(
                        s.get(&manifest_path(&out.id)).unwrap().is_some(),
                        "{what}: reported committed on '{t}' but no manifest there"
                    );
                }
            }
        }

        // The "restarted process": the same store, no faults, the catalog
        // as the killed one left it (it may hold what never reached storage).
        let repo = w.repo(mem.clone());
        let mut expected = committed.clone();
        if let Ok(out) = &crashed {
            // Whatever was committed before the crash must restore too.
            if repo
                .stores
                .iter()
                .all(|s| s.get(&manifest_path(&out.id)).unwrap().is_some())
            {
                expected.insert(out.id.clone(), data);
            } else {
                for s in &repo.stores {
                    if s.get(&manifest_path(&out.id)).unwrap().is_some() {
                        let got = restore(&repo, &catalog, s, &out.id).unwrap();
                        assert!(
                            got == data,
                            "{what}: the crashed backup restores different bytes"
                        );
                    }
                }
            }
        }
        check(&w, &repo, &catalog, &expected, &what);

        let next = generation(2, 200 * 1024);
        let out = backup(&repo, &catalog, next.clone())
            .unwrap_or_else(|e| panic!("{what}: the next backup failed: {e:#}"));
        assert_eq!(out.targets.len(), 2, "{what}: {out:?}");
        assert!(out.failed_targets.is_empty(), "{what}: {out:?}");
        expected.insert(out.id, next);
        check(
            &w,
            &repo,
            &catalog,
            &expected,
            &format!("{what}, then a backup"),
        );
    }
}

#[test]
fn a_prune_crashed_at_every_write_leaves_a_sound_repository_and_the_next_prune_finishes() {
    let w = World::new();
    let (pre, pre_catalog, committed) = pre_state(&w, 3);
    let newest = {
        let repo = w.repo(Arc::new(pre.fork()));
        let cat = Catalog::open(&pre_catalog).unwrap();
        let latest = cat.latest_completed("db").unwrap().unwrap().id;
        drop(cat);
        drop(repo);
        latest
    };
    let (policy, opts) = keep_last_one();
    // The prune command: each target in turn; a failing one does not stop the others.
    let prune_all = |repo: &Repository| -> Vec<Result<prune::TargetReport>> {
        repo.stores
            .iter()
            .map(|s| prune::prune_target(s, &repo.dedup, Some(&policy), &opts))
            .collect()
    };

    let f = FaultStore::new(Arc::new(pre.fork()), Plan::new());
    let repo = w.repo(f.clone());
    for r in prune_all(&repo) {
        let r = r.unwrap();
        assert_eq!(r.removed.len(), 2);
    }
    let done: Vec<(BTreeSet<String>, BTreeSet<String>)> = repo
        .stores
        .iter()
        .map(|s| (names(s, PACKS_DIR), manifest_ids(s)))
        .collect();
    assert!(done[0].1.len() == 1 && done[0].1.contains(&newest));
    let writes: Vec<Op> = f.ops().into_iter().filter(|o| o.kind.is_write()).collect();
    print_points("prune (two targets, 2 of 3 backups removed)", &writes);
    assert!(writes.len() >= 10, "{writes:#?}");
    assert!(
        writes
            .iter()
            .any(|o| o.kind == crate::storage::fault::OpKind::Delete && o.path.contains("/packs/")),
        "the prune collects packs: {writes:#?}"
    );

    for k in 0..writes.len() {
        let (mem, _) = crashed_at(&pre, k, AfterCrash::Drop, |f| prune_all(&w.repo(f)));
        let what = format!("prune crashed at point {k}");
        let repo = w.repo(mem.clone());
        reap_locks(&repo.stores);
        let catalog = w.copy_catalog(&pre_catalog);
        // The kept backup restores; a removed one whose manifest survived
        // must restore as well (nothing half-collected may look intact).
        let mut expected = HashMap::new();
        for (id, data) in &committed {
            if repo
                .stores
                .iter()
                .all(|s| s.get(&manifest_path(id)).unwrap().is_some())
            {
                expected.insert(id.clone(), data.clone());
            }
        }
        assert!(
            expected.contains_key(&newest),
            "{what}: the kept backup is gone"
        );
        check(&w, &repo, &catalog, &expected, &what);

        for r in prune_all(&repo) {
            r.unwrap_or_else(|e| panic!("{what}: the next prune failed: {e:#}"));
        }
        for (s, (packs, ids)) in repo.stores.iter().zip(&done) {
            assert_eq!(
                &names(s, PACKS_DIR),
                packs,
                "{what}: packs left on '{}'",
                s.name
            );
            assert_eq!(
                &manifest_ids(s),
                ids,
                "{what}: backups left on '{}'",
                s.name
            );
        }
        let kept: HashMap<String, Data> = [(newest.clone(), committed[&newest].clone())].into();
        check(&w, &repo, &catalog, &kept, &format!("{what}, then a prune"));
    }
}

#[test]
fn a_storage_error_at_any_operation_of_a_backup_fails_cleanly_or_is_survived() {
    let w = World::new();
    let (pre, pre_catalog, committed) = pre_state(&w, 1);
    let f = FaultStore::new(Arc::new(pre.fork()), Plan::new());
    backup(
        &w.repo(f.clone()),
        &w.copy_catalog(&pre_catalog),
        generation(1, 200 * 1024),
    )
    .unwrap();
    let n = f.ops().len();
    println!("backup with a retryable storage error: {n} points");
    let mut survived = 0;
    for k in 0..n {
        let mem: Arc<dyn ObjectStore> = Arc::new(pre.fork());
        let f = FaultStore::new(
            mem.clone(),
            Plan::new().with(Trigger::Overall(k), Fault::Fail { retryable: true }),
        );
        let catalog = w.copy_catalog(&pre_catalog);
        let data = generation(1, 200 * 1024);
        // Opening the repository is part of the run: it can hit the error too.
        let result =
            Repository::from_stores(World::stores(f.clone()), w.keys(), LockTiming::default())
                .and_then(|repo| backup(&repo, &catalog, data.clone()));
        // The pipeline's threads interleave differently from run to run, so
        // this run may have made fewer operations than the one counted.
        let what = match f.ops().get(k) {
            Some(op) => format!("a storage error at operation {k} ({op})"),
            None => format!("a storage error at operation {k} (not reached in this run)"),
        };
        let repo = w.repo(mem.clone());
        reap_locks(&repo.stores);
        let mut expected = committed.clone();
        let cat = Catalog::open(&catalog).unwrap();
        match result {
            Ok(out) => {
                survived += 1;
                println!(
                    "  {what}: completed on {:?}, failed on {:?}",
                    out.targets,
                    out.failed_targets
                        .iter()
                        .map(|t| &t.target)
                        .collect::<Vec<_>>()
                );
                // Committed where it says, reported where it failed.
                for s in &repo.stores {
                    let has = s.get(&manifest_path(&out.id)).unwrap().is_some();
                    assert_eq!(has, out.targets.contains(&s.name), "{what}: {out:?}");
                }
                assert_eq!(
                    out.targets.len() + out.failed_targets.len(),
                    2,
                    "{what}: {out:?}"
                );
                let row = cat.get(&out.id).unwrap().unwrap();
                assert_eq!(row.status, "completed", "{what}");
                for s in repo.stores.iter().filter(|s| out.targets.contains(&s.name)) {
                    let got = restore(&repo, &catalog, s, &out.id).unwrap();
                    assert!(got == data, "{what}");
                }
            }
            Err(e) => {
                let msg = crate::error::paragraph(&e);
                assert!(
                    msg.contains("injected 503"),
                    "{what}: unclear failure: {msg}"
                );
                assert_eq!(
                    crate::error::exit_status(&e),
                    crate::error::ExitStatus::Temporary,
                    "{what}: {msg}"
                );
                println!("  operation {k:2} ({}): failed: {msg}", f.ops()[k]);
                // Two targets: an error on one of them must never cost the
                // other its backup; only opening (this test's
                // `from_stores` needs every target) may fail the run.
                assert!(
                    f.ops()[k].path.ends_with("/config"),
                    "{what}: the backup failed on both targets: {msg}"
                );
                // No row when the repository could not even be opened.
                let rows = cat.list(&Default::default()).unwrap();
                for row in rows.iter().filter(|r| !committed.contains_key(&r.id)) {
                    assert_eq!(row.status, "failed", "{what}");
                    for s in &repo.stores {
                        assert!(
                            s.get(&manifest_path(&row.id)).unwrap().is_none(),
                            "{what}: a failed backup left a manifest on '{}'",
                            s.name
                        );
                    }
                }
            }
        }
        drop(cat);
        check(&w, &repo, &catalog, &expected, &what);
        let next = generation(2, 100 * 1024);
        let out = backup(&repo, &catalog, next.clone())
            .unwrap_or_else(|e| panic!("{what}: the next backup failed: {e:#}"));
        expected.insert(out.id, next);
        check(
            &w,
            &repo,
            &catalog,
            &expected,
            &format!("{what}, then a backup"),
        );
    }
    println!("{survived} of {n} runs completed despite the error");
}

#[test]
fn a_sync_crashed_at_every_write_leaves_both_targets_sound_and_the_next_sync_finishes() {
    let w = World::new();
    let (empty, pre_catalog, _) = pre_state(&w, 0);
    // Two backups on target a only; b holds the empty repository.
    let mem = Arc::new(empty.fork());
    let only_a = Repository::from_stores(
        vec![World::stores(mem.clone())[0].clone()],
        w.keys(),
        LockTiming::default(),
    )
    .unwrap();
    let mut on_a = HashMap::new();
    for g in 0..2 {
        let data = generation(10 + g, 250 * 1024);
        let out = backup(&only_a, &pre_catalog, data.clone()).unwrap();
        on_a.insert(out.id, data);
    }
    drop(only_a);
    let pre = mem.fork();
    let sync = |repo: &Repository| {
        crate::repo::sync::sync_pair(
            &repo.stores[0],
            &repo.stores[1],
            &repo.dedup,
            None,
            false,
            LockTiming::default(),
        )
    };

    let f = FaultStore::new(Arc::new(pre.fork()), Plan::new());
    let r = sync(&w.repo(f.clone())).unwrap();
    assert_eq!(r.manifests_copied.len(), 2, "{r:?}");
    let writes: Vec<Op> = f.ops().into_iter().filter(|o| o.kind.is_write()).collect();
    print_points("sync a -> b (two backups)", &writes);
    assert!(writes.len() >= 10, "{writes:#?}");

    for k in 0..writes.len() {
        let (mem, _) = crashed_at(&pre, k, AfterCrash::Drop, |f| sync(&w.repo(f)));
        let what = format!("sync crashed at point {k}");
        let repo = w.repo(mem.clone());
        reap_locks(&repo.stores);
        let catalog = w.copy_catalog(&pre_catalog);
        // Every backup b got restores from b alone; a is untouched.
        let on_b = manifest_ids(&repo.stores[1]);
        assert_eq!(manifest_ids(&repo.stores[0]).len(), 2, "{what}");
        let expected: HashMap<String, Data> = on_a
            .iter()
            .filter(|(id, _)| on_b.contains(*id))
            .map(|(id, d)| (id.clone(), d.clone()))
            .collect();
        check_targets(&w, &repo, &catalog, &on_a, &expected, &what);

        let r = sync(&repo).unwrap_or_else(|e| panic!("{what}: the next sync failed: {e:#}"));
        assert_eq!(r.manifests_copied.len() + on_b.len(), 2, "{what}: {r:?}");
        check(&w, &repo, &catalog, &on_a, &format!("{what}, then a sync"));
    }
}

#[test]
fn a_wal_push_crashed_at_every_write_is_completed_by_the_archivers_retry() {
    use crate::repo::wal::{self, WalRepo};
    let w = World::new();
    let (empty, _, _) = pre_state(&w, 0);
    let segments: Vec<(String, Vec<u8>)> = (1..=5u64)
        .map(|i| {
            (
                format!("{:08X}{:08X}{:08X}", 1, 0, i),
                noise(300 + i, 64 * 1024),
            )
        })
        .collect();
    let wal_dir = w.dir.path().join("pg_wal");
    std::fs::create_dir_all(&wal_dir).unwrap();
    for (name, bytes) in &segments {
        std::fs::write(wal_dir.join(name), bytes).unwrap();
    }
    let state = std::sync::atomic::AtomicUsize::new(0);
    let wal_repo = |stores: Vec<Store>| {
        let n = state.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        WalRepo::from_stores(
            stores,
            w.dedup.clone(),
            w.recipients.clone(),
            Some(w.identity.clone()),
            "db",
            w.dir.path().join(format!("wal-state-{n}")),
        )
    };
    // PostgreSQL archives the segments in order, each until it succeeds.
    let archive = |repo: &WalRepo| -> Result<()> {
        for (name, _) in &segments {
            wal::push(repo, &wal_dir.join(name))?;
        }
        Ok(())
    };

    let f = FaultStore::new(Arc::new(empty.fork()), Plan::new());
    archive(&wal_repo(World::stores(f.clone()))).unwrap();
    let writes: Vec<Op> = f.ops().into_iter().filter(|o| o.kind.is_write()).collect();
    print_points("wal push of 5 segments (two targets)", &writes);
    assert!(writes.len() >= 10, "{writes:#?}");

    for k in 0..writes.len() {
        let (mem, _) = crashed_at(&empty, k, AfterCrash::Drop, |f| {
            archive(&wal_repo(World::stores(f)))
        });
        let what = format!("wal push crashed at point {k}");
        // The killed archive_command reported no success from the crash on:
        // PostgreSQL pushes those segments again (a fresh process, whose
        // state directory the killed one may not have written).
        let stores = World::stores(mem.clone());
        archive(&wal_repo(stores.clone()))
            .unwrap_or_else(|e| panic!("{what}: the retried push failed: {e:#}"));
        // Every segment is on every target, whole, and restores from it alone.
        for s in &stores {
            let alone = wal_repo(vec![s.clone()]);
            for (name, bytes) in &segments {
                let dest = w.dir.path().join(format!("restored-{k}-{}", s.name));
                wal::fetch(&alone, name, &dest).unwrap_or_else(|e| {
                    panic!(
                        "{what}: {name} does not restore from '{}': {}",
                        s.name,
                        match e {
                            wal::FetchError::NotInArchive => "not in the archive".to_string(),
                            wal::FetchError::Failed(e) => format!("{e:#}"),
                        }
                    )
                });
                assert!(
                    std::fs::read(&dest).unwrap() == *bytes,
                    "{what}: {name} from '{}'",
                    s.name
                );
            }
            let listed = wal::list(s, "db").unwrap();
            assert_eq!(listed.len(), segments.len(), "{what}: on '{}'", s.name);
        }
    }
}

/// A repository over one of `repo`'s targets.
/// Index objects list a backup's packs in the order they were sealed,
/// whichever upload finished first: with the first pack's upload held back,
/// the other uploader finishes later packs before it, and before the fix the
/// index then grouped packs by finishing order, so the index objects (and the
/// number of writes a run makes) depended on timing.
#[test]
fn index_objects_list_packs_in_the_order_they_were_sealed() {
    let w = World::new();
    let (pre, pre_catalog, _) = pre_state(&w, 1);
    let plan = Plan::new().with(
        Trigger::NthUnder(OpKind::Put, "a/packs/", 0),
        Fault::Delay(std::time::Duration::from_millis(400)),
    );
    let f = FaultStore::new(Arc::new(pre.fork()), plan);
    let repo = w.repo(f.clone());
    let out = backup(
        &repo,
        &w.copy_catalog(&pre_catalog),
        generation(1, 600 * 1024),
    )
    .unwrap();
    let a = &repo.stores[0];
    let mut indexed = Vec::new();
    for op in f.ops() {
        if let Some(name) = op.path.strip_prefix("a/index/") {
            let stored = a
                .get(&crate::repo::format::index_path(name))
                .unwrap()
                .unwrap();
            for pack in crate::repo::index::decode(&stored, &w.dedup).unwrap() {
                indexed.extend(pack.entries.iter().map(|e| hex::encode(e.id)));
            }
        }
    }
    assert!(indexed.len() >= 10, "{} blobs indexed", indexed.len());
    // The new blobs in stream order: where the packs were filled from.
    let (_, body) = restore::load_body(&repo, std::slice::from_ref(a), &out.id).unwrap();
    let new: std::collections::HashSet<&String> = indexed.iter().collect();
    let mut seen = std::collections::HashSet::new();
    let stream: Vec<&String> = body
        .artifacts
        .iter()
        .flat_map(|a| &a.blobs)
        .filter(|b| new.contains(b) && seen.insert(*b))
        .collect();
    assert_eq!(
        indexed.iter().collect::<Vec<_>>(),
        stream,
        "the index lists the packs out of their sealing order"
    );
}

fn only(repo: &Repository, target: &str) -> Repository {
    repo.only(target)
}

/// A store that acknowledges a put it kept only part of (a broken gateway
/// or proxy): the backup cannot tell, but `verify` must catch it on that
/// target, while the other target stays clean and restores everything.
#[test]
fn a_truncated_write_at_any_point_of_a_backup_is_caught_by_verify() {
    let w = World::new();
    let (pre, pre_catalog, committed) = pre_state(&w, 1);
    let data = generation(1, 300 * 1024);
    let f = FaultStore::new(Arc::new(pre.fork()), Plan::new());
    backup(
        &w.repo(f.clone()),
        &w.copy_catalog(&pre_catalog),
        data.clone(),
    )
    .unwrap();
    let writes: Vec<Op> = f.ops().into_iter().filter(|o| o.kind.is_write()).collect();
    let identities = keys::load_identities(&w.identity).unwrap();
    let mut points = 0;
    for (k, op) in writes.iter().enumerate() {
        if op.kind != crate::storage::fault::OpKind::Put || op.path.contains("/locks/") {
            continue;
        }
        points += 1;
        let mem: Arc<dyn ObjectStore> = Arc::new(pre.fork());
        let f = FaultStore::new(
            mem.clone(),
            Plan::new().with(Trigger::Write(k), Fault::Truncate { keep: 100 }),
        );
        let catalog = w.copy_catalog(&pre_catalog);
        let out = backup(&w.repo(f.clone()), &catalog, data.clone()).unwrap();
        let hit = &f
            .ops()
            .into_iter()
            .filter(|o| o.kind.is_write())
            .nth(k)
            .unwrap();
        let what = format!("{hit} truncated");
        let (damaged, other) = if hit.path.starts_with("a/") {
            ("a", "b")
        } else {
            ("b", "a")
        };
        let repo = w.repo(mem.clone());
        let s = repo.stores.iter().find(|s| s.name == damaged).unwrap();
        let r =
            verify::verify_target(&repo, s, Mode::ReadData, Some(&identities), &Silent).unwrap();
        assert!(
            !r.ok && !r.problems.is_empty(),
            "{what}: verify of '{damaged}' found nothing"
        );
        println!(
            "  {what}: verify of '{damaged}' reports: {}",
            r.problems[0].message
        );
        let mut expected = committed.clone();
        expected.insert(out.id.clone(), data.clone());
        check(&w, &only(&repo, other), &catalog, &expected, &what);
    }
    assert!(points >= 8, "{points}");
}

/// Target b answers every request with a 503 for a whole backup (after the
/// repository was opened): the backup completes on a, reports b, writes
/// nothing there; once b is back, the next backup completes on both.
#[test]
fn a_target_down_for_a_whole_backup_misses_it_and_the_next_run_catches_up() {
    let w = World::new();
    let (pre, pre_catalog, committed) = pre_state(&w, 1);
    let mem = Arc::new(pre.fork());
    let f = FaultStore::new(mem.clone(), Plan::new());
    let repo = w.repo(f.clone());
    f.set_plan(Plan::new().with(Trigger::Under(None, "b/"), Fault::Fail { retryable: true }));
    let catalog = w.copy_catalog(&pre_catalog);
    let data = generation(1, 200 * 1024);
    let out = backup(&repo, &catalog, data.clone()).unwrap();
    assert_eq!(out.targets, ["a"], "{out:?}");
    assert_eq!(out.failed_targets.len(), 1, "{out:?}");
    assert_eq!(out.failed_targets[0].target, "b");
    assert!(
        out.failed_targets[0].error.contains("503"),
        "{:?}",
        out.failed_targets[0]
    );
    let writes_to_b: Vec<Op> = f
        .ops()
        .into_iter()
        .filter(|o| o.kind.is_write() && o.path.starts_with("b/"))
        .collect();
    println!("writes tried on the down target: {writes_to_b:?}");
    let repo = w.repo(mem.clone());
    let mut on_a = committed.clone();
    on_a.insert(out.id.clone(), data);
    check_targets(&w, &repo, &catalog, &on_a, &committed, "b down");

    let next = generation(2, 100 * 1024);
    let out2 = backup(&repo, &catalog, next.clone()).unwrap();
    assert_eq!(out2.targets.len(), 2, "{out2:?}");
    let mut on_b = committed.clone();
    on_b.insert(out2.id.clone(), next.clone());
    on_a.insert(out2.id, next);
    check_targets(&w, &repo, &catalog, &on_a, &on_b, "b back");
}

/// A target that refuses every delete but its lock objects' (Object Lock
/// retention, or credentials that may write and not delete, with delete
/// allowed only under `locks/`): prune reports and defers what it cannot
/// delete, fails nothing and loses nothing; once deletes are allowed, the
/// next prune finishes the job.
#[test]
fn a_prune_whose_deletes_are_refused_defers_them_and_loses_nothing() {
    let w = World::new();
    let (pre, pre_catalog, committed) = pre_state(&w, 3);
    let refuse = |dir: &'static str| {
        (
            Trigger::Matching(Some(OpKind::Delete), dir),
            Fault::Fail { retryable: false },
        )
    };
    let mut plan = Plan::new();
    for dir in ["/snapshots/", "/packs/", "/index/", "/verified/", "/wal/"] {
        let (t, f) = refuse(dir);
        plan = plan.with(t, f);
    }
    let mem: Arc<dyn ObjectStore> = Arc::new(pre.fork());
    let f = FaultStore::new(mem.clone(), plan);
    let repo = w.repo(f.clone());
    let (policy, opts) = keep_last_one();
    let before: Vec<_> = repo
        .stores
        .iter()
        .map(|s| (names(s, PACKS_DIR), manifest_ids(s)))
        .collect();
    for s in &repo.stores {
        let r = prune::prune_target(s, &repo.dedup, Some(&policy), &opts)
            .unwrap_or_else(|e| panic!("prune of '{}' failed: {e:#}", s.name));
        assert!(r.removed.is_empty(), "{:?}", r.removed);
        assert_eq!(r.deferred.len(), 2, "{r:#?}");
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("refused") && p.contains(&r.deferred[0])),
            "{:#?}",
            r.problems
        );
        assert_eq!(r.gc.packs_deleted, 0, "{:#?}", r.gc);
    }
    // Deletes were attempted, refused, and nothing is gone.
    assert!(f
        .ops()
        .iter()
        .any(|o| o.kind == OpKind::Delete && o.path.contains("/snapshots/")));
    for (s, b) in repo.stores.iter().zip(&before) {
        assert_eq!(
            &(names(s, PACKS_DIR), manifest_ids(s)),
            b,
            "target '{}' changed",
            s.name
        );
        assert!(
            names(s, LOCKS_DIR).is_empty(),
            "prune left its lock on '{}'",
            s.name
        );
    }
    let catalog = w.copy_catalog(&pre_catalog);
    check(&w, &repo, &catalog, &committed, "deletes refused");

    // Deletes allowed again: the next prune removes what retention drops.
    f.set_plan(Plan::new());
    let newest = {
        let cat = Catalog::open(&pre_catalog).unwrap();
        cat.latest_completed("db").unwrap().unwrap().id
    };
    for s in &repo.stores {
        let r = prune::prune_target(s, &repo.dedup, Some(&policy), &opts).unwrap();
        assert_eq!(r.removed.len(), 2);
        assert!(r.deferred.is_empty() && r.gc.packs_deferred == 0);
        assert_eq!(manifest_ids(s), BTreeSet::from([newest.clone()]));
    }
    let kept: HashMap<String, Data> = [(newest.clone(), committed[&newest].clone())].into();
    check(&w, &repo, &catalog, &kept, "deletes refused, then allowed");
}

/// Catalog rebuild (it only reads the repository): a storage error at any
/// of its operations either fails the rebuild with the error, or is named
/// among its problems; a rebuild that reports no problem lists every
/// committed backup with both targets. Either way the next rebuild restores
/// the full list, and every backup restores through it.
#[test]
fn a_storage_error_at_any_operation_of_a_catalog_rebuild_is_reported_never_silent() {
    let w = World::new();
    let (pre, _, committed) = pre_state(&w, 2);
    let rebuild = |repo: &Repository, catalog: &Path| -> Result<crate::jobs::catalog::Rebuilt> {
        let mut cat = Catalog::open(catalog)?;
        crate::jobs::catalog::rebuild(repo, &mut cat, None)
    };
    let listed = |catalog: &Path| -> BTreeSet<(String, Vec<String>)> {
        let cat = Catalog::open(catalog).unwrap();
        let rows = cat.list(&Default::default()).unwrap();
        rows.into_iter().map(|r| (r.id, r.targets)).collect()
    };
    let all: BTreeSet<(String, Vec<String>)> = committed
        .keys()
        .map(|id| (id.clone(), TARGETS.iter().map(|t| t.to_string()).collect()))
        .collect();
    let mem: Arc<dyn ObjectStore> = Arc::new(pre.fork());
    let f = FaultStore::new(mem.clone(), Plan::new());
    let clean = w.new_catalog();
    rebuild(&w.repo(f.clone()), &clean).unwrap();
    assert_eq!(listed(&clean), all);
    let n = f.ops().len();
    println!("catalog rebuild with a storage error: {n} points");
    for k in 0..n {
        for retryable in [true, false] {
            let f = FaultStore::new(
                mem.clone(),
                Plan::new().with(Trigger::Overall(k), Fault::Fail { retryable }),
            );
            let catalog = w.new_catalog();
            // Opening the repository is part of the run: it can hit the error too.
            let result =
                Repository::from_stores(World::stores(f.clone()), w.keys(), LockTiming::default())
                    .and_then(|repo| rebuild(&repo, &catalog));
            let what = format!(
                "a {} storage error at operation {k} ({})",
                if retryable { "retryable" } else { "permanent" },
                f.ops()[k]
            );
            match result {
                Ok(r) if r.problems.is_empty() => {
                    assert_eq!(listed(&catalog), all, "{what}: a silent partial rebuild")
                }
                Ok(r) => println!("  {what}: problems {:?}", r.problems),
                Err(e) => println!("  {what}: failed: {}", crate::error::paragraph(&e)),
            }
            let repo = w.repo(mem.clone());
            let r = rebuild(&repo, &catalog).unwrap();
            assert!(r.problems.is_empty(), "{what}: {:?}", r.problems);
            assert_eq!(listed(&catalog), all, "{what}, then a clean rebuild");
        }
    }
    check(
        &w,
        &w.repo(mem.clone()),
        &clean,
        &committed,
        "after the rebuilds",
    );
}

/// The stream restore decodes on several threads: a long stream over many
/// packs comes back byte for byte, and a blob that does not match its id in
/// the middle of it fails the read there with the corrupt-data error, after
/// delivering only intact bytes from before it.
#[test]
fn a_parallel_stream_restore_is_exact_and_stops_at_a_corrupt_blob() {
    let w = World::new();
    let mem = Arc::new(InMemory::new());
    let repo = w.init_repo(mem.clone());
    let catalog = w.new_catalog();
    let data = vec![("dump".to_string(), noise(7, 6 << 20))];
    let id = backup(&repo, &catalog, data.clone()).unwrap().id;
    let store = repo.stores[0].clone();
    assert_eq!(restore(&repo, &catalog, &store, &id).unwrap(), data);

    let mut cat = Catalog::open(&catalog).unwrap();
    let (_, body) = restore::load_body(&repo, std::slice::from_ref(&store), &id).unwrap();
    let artifact = &body.artifacts[0];
    let mut plan = restore::plan(&repo, &mut cat, artifact).unwrap();
    assert!(plan.len() > 100, "{} blobs", plan.len());
    let bad = plan.len() * 2 / 3;
    let before: u64 = plan[..bad].iter().map(|(_, l)| l.raw_len as u64).sum();
    plan[bad].0[0] ^= 1;
    let mut r = restore::ArtifactReader::open(&repo, vec![store], artifact, plan).unwrap();
    let mut got = Vec::new();
    let err = r.read_to_end(&mut got).unwrap_err();
    assert!(
        err.to_string()
            .contains("does not match its id (corrupt data)"),
        "{err}"
    );
    assert!(got.len() as u64 <= before, "{} > {before}", got.len());
    assert_eq!(got[..], data[0].1[..got.len()]);
}

/// An index object that misplaces a blob in its pack (someone else wrote
/// it, or a bit flipped before it was sealed): every read of that pack —
/// the full read and a sample — compares the pack with its own index
/// entries and reports the disagreement.
#[test]
fn an_index_that_misplaces_a_blob_in_its_pack_is_reported_by_every_data_read() {
    use crate::repo::format::{content_name, index_path, INDEX_DIR};
    use crate::repo::index;
    let w = World::new();
    let (pre, _, _) = pre_state(&w, 1);
    let repo = w.repo(Arc::new(pre));
    let s = &repo.stores[0];
    let identities = keys::load_identities(&w.identity).unwrap();
    // Swap the offsets of two blobs of one pack in its index object (sealed
    // with the repository's key: what a writer with the key could do). The
    // chunker is keyed, so chunk sizes and packs differ from run to run:
    // when every pack holds one blob, its offset is moved by a byte.
    let name = names(s, INDEX_DIR).into_iter().next().unwrap();
    let mut packs = index::decode(&s.get(&name).unwrap().unwrap(), &repo.dedup).unwrap();
    match packs.iter_mut().find(|p| p.entries.len() >= 2) {
        Some(pack) => {
            let (a, b) = (pack.entries[0].offset, pack.entries[1].offset);
            pack.entries[0].offset = b;
            pack.entries[1].offset = a;
        }
        None => packs[0].entries[0].offset += 1,
    }
    let forged = index::encode(&packs, &repo.dedup).unwrap();
    s.delete(&name).unwrap();
    s.put(&index_path(&content_name(&forged)), forged.into())
        .unwrap();
    for mode in [Mode::ReadData, Mode::Sample(100.0)] {
        let r = verify::verify_target(&repo, s, mode, Some(&identities), &Silent).unwrap();
        assert!(
            r.problems
                .iter()
                .any(|p| p.message.contains("the index disagrees with the pack")),
            "{mode:?}: {:#?}",
            r.problems
        );
    }
    // The structure check reads no pack: it cannot see it.
    let r = verify::verify_target(&repo, s, Mode::Structure, None, &Silent).unwrap();
    assert!(r.ok, "{:#?}", r.problems);
}

/// Issue 14: a manifest too large to hold (many artifacts: 10,000 tenants
/// make megabytes) is spooled to a file and streamed to each target in
/// parts. Target b fails in the middle of its manifest upload (its second
/// part): the backup completes on a only and reports b; b shows no
/// manifest of it, not even a partial one, and both targets verify clean,
/// a restoring everything.
#[test]
fn a_manifest_upload_that_fails_midway_leaves_no_manifest_on_that_target() {
    let w = World::new();
    let (pre, pre_catalog, committed) = pre_state(&w, 1);
    // 1,500 small artifacts: a body of several hundred KiB, past
    // manifest::SPOOL_BYTES (64 KiB in tests), sent in 16 KiB parts.
    let data: Data = (0..1500u64)
        .map(|i| {
            (
                format!("tenant-{i:05}"),
                noise(500 + i, 40 + i as usize % 60),
            )
        })
        .collect();
    let mem = Arc::new(pre.fork());
    let f = FaultStore::new(
        mem.clone(),
        Plan::new().with(
            Trigger::NthUnder(OpKind::Put, "b/snapshots/", 2),
            Fault::Fail { retryable: false },
        ),
    );
    let stores: Vec<Store> = World::stores(f.clone())
        .into_iter()
        .map(|s| s.with_part_bytes(16 * 1024))
        .collect();
    let repo = Repository::from_stores(stores, w.keys(), LockTiming::default()).unwrap();
    let catalog = w.copy_catalog(&pre_catalog);
    let out = backup(&repo, &catalog, data.clone()).unwrap();
    assert_eq!(out.targets, vec!["a".to_string()]);
    assert_eq!(out.failed_targets.len(), 1);
    assert_eq!(out.failed_targets[0].target, "b");
    let manifest_puts = f
        .ops()
        .into_iter()
        .filter(|o| o.kind == OpKind::Put && o.path.starts_with("a/snapshots/"))
        .count();
    assert!(
        manifest_puts > 3,
        "{manifest_puts} puts: the manifest was not sent in parts"
    );
    let repo = w.repo(mem.clone());
    let b = repo.stores.iter().find(|s| s.name == "b").unwrap();
    assert!(
        !manifest_ids(b).contains(&out.id),
        "target b shows the manifest whose upload failed"
    );
    assert!(manifest_ids(&repo.stores[0]).contains(&out.id));
    let mut on_a = committed.clone();
    on_a.insert(out.id.clone(), data);
    check_targets(
        &w,
        &repo,
        &catalog,
        &on_a,
        &committed,
        "manifest part failed on b",
    );
}

/// Issue 12: the side reader of a big COPY block reads its byte range
/// blob by blob, through range requests. Any range comes back exact; a
/// copy damaged on the first target (a truncated pack) is read from the
/// next one; a range no target holds intact fails and names the blob; an
/// index that claims a blob longer than its pack fails before that length
/// sizes a buffer.
#[test]
fn a_range_of_an_artifact_is_read_exact_from_an_intact_copy_and_forged_lengths_fail() {
    use crate::repo::format::pack_path;
    let w = World::new();
    let mem = Arc::new(InMemory::new());
    let repo = w.init_repo(mem.clone());
    let catalog = w.new_catalog();
    let data = noise(12, 3 << 20);
    let id = backup(&repo, &catalog, vec![("dump".to_string(), data.clone())])
        .unwrap()
        .id;
    let mut cat = Catalog::open(&catalog).unwrap();
    let (_, body) = restore::load_body(&repo, &repo.stores, &id).unwrap();
    let artifact = &body.artifacts[0];
    let plan = restore::plan(&repo, &mut cat, artifact).unwrap();
    let read = |stores: &[Store], plan: &[_], offset: u64, len: u64| -> Result<Vec<u8>> {
        let mut r =
            restore::RangeReader::open(&repo, stores.to_vec(), artifact, plan, offset, len)?;
        let mut got = Vec::new();
        r.read_to_end(&mut got)?;
        Ok(got)
    };
    let len = data.len() as u64;
    for (offset, n) in [
        (0, len),
        (1, 100),
        (70_000, 1 << 20),
        (len - 5, 5),
        (len / 2, 0),
    ] {
        let got = read(&repo.stores, &plan, offset, n).unwrap();
        assert_eq!(
            got,
            data[offset as usize..(offset + n) as usize],
            "{offset}+{n}"
        );
    }
    // Truncate on target a the pack of a blob in the middle of the range.
    let (a, b) = (&repo.stores[0], &repo.stores[1]);
    let victim = plan[plan.len() / 2].1.pack.clone();
    let whole = a.get(&pack_path(&victim)).unwrap().unwrap();
    a.put(&pack_path(&victim), whole.slice(..whole.len() / 3))
        .unwrap();
    let got = read(&[a.clone(), b.clone()], &plan, 0, len).unwrap();
    assert!(got == data, "read past the damaged copy");
    let err = read(std::slice::from_ref(a), &plan, 0, len).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("of pack {victim} has no intact copy")),
        "{err}"
    );
    // An index entry claiming 3 GiB of a pack: refused, nothing sized by it.
    let mut forged = plan.clone();
    let k = forged.len() / 4;
    forged[k].1.stored_len = 3 << 30;
    let err = read(std::slice::from_ref(b), &forged, 0, len).unwrap_err();
    assert!(
        format!("{err:#}").contains("(damaged or hostile index)"),
        "{err:#}"
    );
    // The whole stream's reader refuses it the same way.
    let mut r = restore::ArtifactReader::open(&repo, vec![b.clone()], artifact, forged).unwrap();
    let err = r.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(
        err.to_string().contains("(damaged or hostile index)"),
        "{err}"
    );
}
