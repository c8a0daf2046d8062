//! The backup pipeline: source stream → chunk → id → dedup → compress →
//! pack → encrypt → upload to every target → index → manifest → catalog.
//!
//! Threads: the caller reads and chunks (and hashes the whole stream); two
//! workers hash blob ids, look them up and compress new ones; one collector
//! puts results back in order and fills packs; two uploaders send sealed
//! packs to all targets at once. Every queue between them is bounded, so
//! memory depends on the queue sizes and the pack size, never on the size
//! of the backup: what grows with its blobs goes to temporary files (the
//! ids in stream order, their external sort, the uploaded packs' entries:
//! [`super::spill`], [`super::extsort`]; the claims past a few hundred
//! thousand: [`super::claims`]), and its index is written in objects of
//! [`INDEX_ENTRIES`]. Only the manifest's sealed header, one hex id per
//! distinct blob, is still whole in memory at the end (about 35 bytes a
//! blob compressed). The manifest is written last, and only after the source
//! reported success: a failed source leaves unreferenced packs, never a
//! backup that looks complete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;

use super::chunker::{self, Chunker};
use super::claims::Claims;
use super::extsort::ExternalSorter;
use super::format::{index_path, manifest_path, pack_path};
use super::index::{self, IndexedPack};
use super::index::{DedupLookup, IndexStore};
use super::keys::DedupKey;
use super::lock::{CommitError, Leases, RepoLock};
use super::manifest::{self, Artifact, Body, Header, HeaderBlobs, SortedIds};
use super::pack::{compress, BlobId, PackBuilder, SealedPack};
use super::spill::{ArtifactRecord, ArtifactSpill, Artifacts, IdSpool, PackSpool, WithCounts};
use super::Repository;
use crate::error::{ExitStatus, Failure};
use crate::progress::Progress;
use crate::storage::{runtime, Payload, Store};

/// One stream of a backup (a dump, an archive, one tenant's export).
pub struct ArtifactStream {
    pub name: String,
    /// `stream` or `tar`.
    pub format: String,
    pub reader: Box<dyn Read + Send>,
    /// Called after the stream ended: the source's verdict (exit status).
    pub finish: Box<dyn FnOnce() -> Result<()> + Send>,
}

/// Something that can be backed up: a sequence of artifacts.
pub trait Source: Send {
    fn kind(&self) -> &'static str;
    fn next_artifact(&mut self) -> Result<Option<ArtifactStream>>;
    /// Facts for the manifest (argv, paths, versions…), after all artifacts.
    fn metadata(&self) -> serde_json::Value;
    /// The tenants a tenant-scoped backup holds (manifest `tenants`).
    fn tenants(&self) -> &[String] {
        &[]
    }
    /// Counts per tenant and table (manifest `engine.rows`), after all
    /// artifacts: kept out of memory, one record per entry of
    /// [`Source::tenants`], in that order.
    fn take_rows(&mut self) -> Option<super::spill::CountTable> {
        None
    }
    /// Base backups: where the WAL they need starts (manifest header).
    fn wal_start(&self) -> Option<super::wal::WalStart> {
        None
    }
}

pub struct BackupOptions {
    pub source: String,
    pub tags: Vec<String>,
    pub note: Option<String>,
    pub compression_level: i32,
    pub pack_size: usize,
}

#[derive(Debug, Serialize)]
pub struct BackupOutcome {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub bytes: u64,
    pub stored_bytes: u64,
    pub duration_ms: u64,
    pub mb_per_s: f64,
    pub targets: Vec<String>,
    /// Targets that did not get the backup, with why.
    pub failed_targets: Vec<FailedTarget>,
    pub artifacts: usize,
    pub blobs: usize,
    pub new_blobs: usize,
    /// When the manifest was written (the catalog row's `finished_at`).
    #[serde(skip)]
    pub finished_at: String,
    /// What the catalog keeps of the manifest body per backup: the JSON
    /// text of [`catalog_details`].
    #[serde(skip)]
    pub details: String,
    /// And per artifact and tenant, still in their spools.
    #[serde(skip)]
    pub contents: Contents,
}

/// A backup's artifacts and row counts per tenant, kept in the spools the
/// manifest was written from until the catalog records them as rows.
pub struct Contents {
    artifacts: ArtifactSpill,
    rows: Option<super::spill::CountTable>,
}

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Contents({} artifacts)", self.artifacts.len())
    }
}

/// Where a backup's facts per artifact and tenant go, one at a time (the
/// catalog's rows; it implements this, the repository does not know it).
pub trait ContentsSink {
    /// The artifact at position `seq` (`blake3` in hex, `blobs` its count).
    fn artifact(
        &mut self,
        seq: usize,
        name: &str,
        format: &str,
        size: u64,
        blake3: &str,
        blobs: u64,
    ) -> Result<()>;
    /// The tables of the row counts, once, before the tenants (when the
    /// backup counts rows).
    fn tables(&mut self, tables: &[String]) -> Result<()>;
    /// The tenant at position `seq`, and its rows per table in the order of
    /// [`tables`](Self::tables) (`None` for a table without a count), when
    /// the backup counts rows.
    fn tenant(&mut self, seq: usize, tenant: &str, rows: Option<&[Option<u64>]>) -> Result<()>;
}

impl Contents {
    /// Writes every artifact, every tenant of `tenants` (the source's, in
    /// the order of its count records) and their counts, a row at a time.
    pub fn write(&mut self, tenants: &[String], w: &mut dyn ContentsSink) -> Result<()> {
        let mut seq = 0;
        let mut digest = [0u8; 64];
        self.artifacts.for_each_record(|a| {
            w.artifact(
                seq,
                &a.name,
                &a.format,
                a.size,
                super::spill::hex32(&a.blake3, &mut digest),
                a.chunks,
            )?;
            seq += 1;
            Ok(())
        })?;
        let Some(rows) = self.rows.as_mut() else {
            for (i, t) in tenants.iter().enumerate() {
                w.tenant(i, t, None)?;
            }
            return Ok(());
        };
        anyhow::ensure!(
            rows.len() == tenants.len(),
            "{} count records for {} tenants",
            rows.len(),
            tenants.len()
        );
        if !rows.is_empty() {
            w.tables(rows.columns())?;
        }
        let mut counts = Vec::new();
        rows.for_each(|i, _, n| {
            counts.clear();
            counts.extend(n.iter().map(|&n| Some(n)));
            w.tenant(i, &tenants[i], Some(&counts))
        })?;
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedTarget {
    pub target: String,
    pub error: String,
    /// Missed because our lock there was lost (or refused a commit).
    #[serde(skip)]
    pub lock_lost: bool,
}

/// When and where a backup started: its id, start time and host. The
/// caller records the run (the catalog's `running` row) under this id
/// before [`run`], and completes or fails it after.
#[derive(Debug, Clone)]
pub struct Start {
    pub id: String,
    pub started_at: String,
    pub host: String,
    pub started: Instant,
}

impl Start {
    /// A new backup id, now, on this host.
    pub fn now() -> Start {
        Start {
            id: super::format::new_backup_id(),
            started_at: crate::clock::now_rfc3339(),
            host: super::hostname(),
            started: Instant::now(),
        }
    }
}

/// Runs a backup of `source` into `repo`, learning and teaching the dedup
/// cache `index` (the catalog) on the way. Recording the run itself is the
/// caller's (`jobs::backup`).
pub fn run(
    repo: &Repository,
    catalog: &mut dyn IndexStore,
    source: &mut dyn Source,
    opts: &BackupOptions,
    start: &Start,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    let (id, started_at, host, started) = (
        start.id.as_str(),
        start.started_at.as_str(),
        start.host.as_str(),
        start.started,
    );
    // A shared lock on every target for the whole run: a prune's garbage
    // collection (exclusive) cannot delete packs this backup dedups against
    // or has uploaded but not yet referenced (docs/FORMAT.md, "Locks, prune
    // and garbage collection").
    let lock = super::lock::acquire(
        &repo.stores,
        &repo.dedup,
        super::lock::Kind::Shared,
        "backup",
        repo.lock_timing.writer_wait(),
        repo.lock_timing,
    )?;
    // Only targets we hold a lock on take part: nothing (pack, index,
    // manifest) is written to the others, which miss this run.
    let locked: Vec<Store> = repo
        .stores
        .iter()
        .filter(|s| lock.is_held(&s.name))
        .cloned()
        .collect();
    let mut failed: Vec<FailedTarget> = lock
        .unlocked
        .iter()
        .map(|(t, why)| FailedTarget {
            target: t.clone(),
            error: format!("the repository lock could not be taken: {why}"),
            // The target failed (a storage error), not the lock protocol.
            lock_lost: false,
        })
        .collect();
    for (name, why) in &repo.unavailable {
        failed.push(FailedTarget {
            target: name.clone(),
            error: why.clone(),
            lock_lost: false,
        });
    }
    // Learn what other hosts (or a lost catalog) put in the repository, so
    // dedup is right and never points at a pack a target lacks (or that a
    // prune deleted). A target whose index cannot be read misses this run,
    // like one that cannot be locked: it must not cost the others theirs.
    let mut stores: Vec<Store> = Vec::new();
    let mut sync_error = None;
    for s in locked {
        match repo.sync_index_on(catalog, std::slice::from_ref(&s)) {
            Ok(_) => stores.push(s),
            Err(e) => {
                tracing::warn!(
                    "cannot read the index of target '{}'; it gets nothing from this run: {}",
                    s.name,
                    crate::error::paragraph(&e)
                );
                failed.push(FailedTarget {
                    target: s.name.clone(),
                    error: crate::error::paragraph(&e),
                    lock_lost: false,
                });
                sync_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = sync_error.filter(|_| stores.is_empty()) {
        return Err(e);
    }
    let pipeline = Pipeline::start(repo, &*catalog, opts, &stores, lock.leases(), id)?;
    phase(start, "locked, index synced, pipeline started");
    // Each artifact's name, size and BLAKE3 as it ends, out of memory
    // (10,000 tenants are 10,000 artifacts); its blobs are the next
    // `chunks` ids the pipeline collects.
    let mut artifacts = ArtifactSpill::new();
    let mut total_bytes = 0u64;
    let mut chunk_seq = 0u64;
    // One chunker buffer and gear table for every artifact (chunker::Spare).
    let mut spare = chunker::Spare::new(&repo.dedup.chunker_seed());
    while let Some(stream) = source.next_artifact()? {
        if artifacts.is_empty() {
            phase(start, "first artifact opened");
        }
        let artifact_first_seq = chunk_seq;
        progress.start(&format!("backup {} ({})", opts.source, stream.name), None);
        let mut chunker = Chunker::with_spare(stream.reader, repo.config.chunker, spare);
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let read_result: Result<()> = (|| {
            while let Some(chunk) = chunker
                .next_chunk()
                .context("reading the source stream failed")?
            {
                if pipeline.aborted() {
                    break;
                }
                hasher.update(&chunk);
                size += chunk.len() as u64;
                progress.advance(chunk.len() as u64);
                if pipeline
                    .jobs
                    .send(Job {
                        seq: chunk_seq,
                        data: chunk,
                    })
                    .is_err()
                {
                    break;
                }
                chunk_seq += 1;
            }
            Ok(())
        })();
        // Closing the stream lets a writer blocked on a full pipe end.
        spare = chunker.into_spare();
        progress.finish();
        if pipeline.aborted() {
            let _ = (stream.finish)();
            return Err(pipeline.take_error());
        }
        // The source's verdict comes next: a dump that died must fail the
        // backup even if what it wrote so far was stored fine.
        (stream.finish)().with_context(|| format!("the source '{}' failed", opts.source))?;
        read_result?;
        total_bytes += size;
        artifacts.push(&ArtifactRecord {
            name: stream.name,
            format: stream.format,
            size,
            blake3: *hasher.finalize().as_bytes(),
            chunks: chunk_seq - artifact_first_seq,
        })?;
    }
    if artifacts.is_empty() {
        return Err(Failure::new(
            ExitStatus::Failure,
            format!("the source '{}' produced nothing to back up.", opts.source),
        )
        .with_remedy("Check the source's paths or command.")
        .into());
    }
    crate::memtrace::mark("backup: every artifact read");
    phase(start, "every artifact read");
    let collected = pipeline.finish(chunk_seq)?;
    crate::memtrace::mark("backup: pipeline finished");
    phase(start, "pipeline finished");
    // Packs the catalog offered for dedup that a target lacks: forget them
    // there, so no later backup references them either.
    for (pack, target) in &collected.missing_packs {
        catalog.forget_pack_on(pack, target)?;
    }

    // Targets that got every pack under a valid lock; the others are
    // reported and skipped.
    failed.extend(collected.failed_targets);
    let mut good: Vec<&Store> = stores
        .iter()
        .filter(|s| !failed.iter().any(|f| f.target == s.name))
        .collect();

    // Index before manifest: a manifest must never name an unindexed blob.
    // Both are committed only while our lock holds (RepoLock::commit_put).
    // One index object per INDEX_ENTRIES entries, so neither its entries
    // nor the object are ever more than a few MB in memory.
    let mut index_names = Vec::new();
    let mut packs: Vec<String> = collected.known_packs.into_iter().collect();
    let mut uploaded = collected.packs;
    uploaded.for_each_group(INDEX_ENTRIES, |group| {
        let encoded = Bytes::from(index::encode(group, &repo.dedup)?);
        let name = super::format::content_name(&encoded);
        good = commit_everywhere(&lock, &good, &index_path(&name), encoded, &mut failed);
        if good.is_empty() {
            return Err(not_committed(id, &failed));
        }
        index_names.push(name);
        packs.extend(group.iter().map(|p| p.name.clone()));
        Ok(())
    })?;
    if !index_names.is_empty() {
        phase(start, "index committed");
    }
    packs.sort();
    packs.dedup();
    let mut ids = collected.blob_ids;
    let distinct = SortedIds::new(collected.distinct.finish()?);
    let finished_at = crate::clock::now_rfc3339();
    let duration_ms = started.elapsed().as_millis() as u64;
    let header = Header {
        version: super::manifest::MANIFEST_VERSION,
        id: id.to_string(),
        source: opts.source.clone(),
        kind: source.kind().to_string(),
        host: host.to_string(),
        started_at: started_at.to_string(),
        finished_at: finished_at.clone(),
        duration_ms,
        tags: opts.tags.clone(),
        bytes: total_bytes,
        stored_bytes: collected.stored_bytes,
        packs,
        blobs: Vec::new(),
        wal_start: source.wal_start(),
    };
    let engine = source.metadata();
    let mut rows = source.take_rows();
    let tenants = source.tenants();
    let artifact_count = artifacts.len();
    let encoded = {
        let mut facts = WithCounts::new(&engine);
        if let Some(rows) = rows.as_mut() {
            facts = facts.with("rows", rows, tenants);
        }
        let parts = manifest::BodyParts {
            note: &opts.note,
            tenants,
            engine: &facts,
            artifacts: &Artifacts::new(&mut artifacts, &mut ids),
        };
        // Spooled: 10,000 tenants make a body of megabytes, streamed to
        // the targets from an unnamed file, never whole in memory.
        manifest::encode_spooled(
            &header,
            HeaderBlobs::Sorted(&distinct),
            &parts,
            &repo.dedup,
            &repo.recipients,
        )?
    };
    crate::memtrace::mark("backup: manifest encoded");
    phase(start, "manifest encoded");
    // Only targets where our lock still holds get the manifest: elsewhere a
    // prune may have deleted packs it would name.
    good = commit_everywhere(&lock, &good, &manifest_path(id), encoded, &mut failed);
    if good.is_empty() {
        return Err(not_committed(id, &failed));
    }
    phase(start, "manifest committed");
    let names: Vec<String> = good.iter().map(|s| s.name.clone()).collect();
    // Only now does the catalog learn the new packs, and only on the targets
    // where the backup was committed: it never trusts an index of a run
    // that did not commit there.
    // The groups again, as they were committed: one transaction each.
    let mut objects = index_names.iter();
    uploaded.for_each_group(INDEX_ENTRIES, |group| {
        let name = objects.next().context("the index groups changed")?;
        catalog.add_index(name, group, &names)
    })?;
    let details = catalog_details(&engine).to_string();
    lock.release();
    crate::memtrace::mark("backup: catalog index written");
    phase(start, "catalog index written");
    Ok(BackupOutcome {
        id: id.to_string(),
        source: opts.source.clone(),
        kind: source.kind().to_string(),
        bytes: total_bytes,
        stored_bytes: collected.stored_bytes,
        duration_ms,
        mb_per_s: crate::humanize::mb_per_s(total_bytes, duration_ms),
        targets: names,
        failed_targets: failed,
        artifacts: artifact_count,
        blobs: distinct.written(),
        new_blobs: collected.new_blobs,
        finished_at,
        details,
        contents: Contents { artifacts, rows },
    })
}

/// Logs (at `-vv`) that the backup reached `name`, and after how long:
/// where the time of a backup goes.
pub fn phase(start: &Start, name: &str) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    // The process's CPU time so far (user + system, all threads).
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes the struct it is given.
    let cpu = if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0 {
        // SAFETY: initialised by the successful call above.
        let u = unsafe { usage.assume_init() };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(u.ru_utime) + secs(u.ru_stime)
    } else {
        f64::NAN
    };
    tracing::debug!(
        "backup {}: {name} after {:.3} s ({cpu:.3} CPU s)",
        start.id,
        start.started.elapsed().as_secs_f64()
    );
}

/// What the catalog's `details` keep of a manifest body: the per-backup
/// facts (`engine` without the row counts per tenant, which are rows of
/// their own like the tenants and artifacts, see
/// [`crate::catalog::ContentsWriter`]).
pub fn catalog_details(engine: &serde_json::Value) -> serde_json::Value {
    let engine = match engine {
        serde_json::Value::Object(o) => o
            .iter()
            .filter(|(k, _)| k.as_str() != "rows")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        other => other.clone(),
    };
    serde_json::json!({ "engine": engine })
}

/// A manifest body without its blob lists (`show` of a backup the catalog
/// has no details of).
pub fn details_json(body: &Body) -> serde_json::Value {
    serde_json::json!({
        "tenants": body.tenants,
        "engine": body.engine,
        "artifacts": artifact_details(&body.artifacts),
    })
}

/// The artifacts without their blob lists (their count only).
fn artifact_details(artifacts: &[Artifact]) -> serde_json::Value {
    artifacts
        .iter()
        .map(|a| {
            serde_json::json!({
                "name": a.name, "format": a.format, "size": a.size, "blake3": a.blake3, "blobs": a.blobs.len(),
            })
        })
        .collect::<Vec<_>>()
        .into()
}

/// The backup reached no target: exit 11 when a lock was lost (or never
/// taken) somewhere, else 75 (the writes failed; a retry may succeed).
fn not_committed(id: &str, failed: &[FailedTarget]) -> anyhow::Error {
    let list = failed
        .iter()
        .map(|f| format!("{}: {}", f.target, f.error))
        .collect::<Vec<_>>()
        .join("; ");
    if failed.iter().any(|f| f.lock_lost) {
        Failure::new(
            ExitStatus::Locked,
            format!("backup {id} was not committed on any target ({list})."),
        )
        .with_remedy("Nothing refers to what it uploaded (prune removes it). Run the backup again; if it keeps happening, check that the targets are reachable and the host is not stalled or suspended during backups.")
        .into()
    } else {
        Failure::new(
            ExitStatus::Temporary,
            format!("no target could store the backup ({list})."),
        )
        .with_remedy("Check the targets' reachability and credentials, then run the backup again.")
        .into()
    }
}

/// Commits one object to every store at once under our lock; returns those
/// that succeeded and records the others in `failed`.
fn commit_everywhere<'a>(
    lock: &RepoLock,
    stores: &[&'a Store],
    name: &str,
    data: impl Into<Payload>,
    failed: &mut Vec<FailedTarget>,
) -> Vec<&'a Store> {
    let mut ok = Vec::new();
    for (s, r) in stores.iter().zip(lock.commit_put(stores, name, data)) {
        match r {
            Ok(()) => ok.push(*s),
            Err(e) => {
                let error = e.message();
                tracing::warn!("target '{}' does not get {name}: {error}", s.name);
                failed.push(FailedTarget {
                    target: s.name.clone(),
                    error,
                    lock_lost: matches!(e, CommitError::Lock(_)),
                });
            }
        }
    }
    ok
}

struct Job {
    seq: u64,
    data: Vec<u8>,
}

struct Done {
    seq: u64,
    id: BlobId,
    raw_len: u32,
    /// The pack of an already stored blob.
    known_pack: Option<String>,
    /// Flags and stored bytes of a blob this run must store.
    new: Option<(u8, Vec<u8>)>,
}

struct Collected {
    /// Every chunk's blob id, in stream order (artifact after artifact).
    blob_ids: IdSpool,
    /// The same ids, to list each once in id order.
    distinct: ExternalSorter<BlobId>,
    known_packs: HashSet<String>,
    packs: PackSpool,
    stored_bytes: u64,
    new_blobs: usize,
    failed_targets: Vec<FailedTarget>,
    /// (pack, target): packs the catalog offered for dedup that are gone.
    missing_packs: Vec<(String, String)>,
}

/// Shared state between the pipeline's threads.
struct Shared {
    #[cfg(test)]
    panic_at_seq: u64,
    abort: AtomicBool,
    error: Mutex<Option<anyhow::Error>>,
    /// Blob ids this run has claimed for storing (so each is stored once).
    claimed: Mutex<Claims>,
    failed_targets: Mutex<Vec<FailedTarget>>,
    /// The packs uploaded so far and their entries.
    uploaded: Mutex<Uploaded>,
    target_count: usize,
    /// Packs offered for dedup, checked once per run: present on every
    /// target of this backup?
    pack_checked: Mutex<HashMap<String, bool>>,
    missing_packs: Mutex<Vec<(String, String)>>,
    /// Our locks: nothing is uploaded to a target whose lease ran out.
    leases: Leases,
    backup_id: String,
}

/// Locks a mutex of the pipeline even if a panicking thread poisoned it
/// (the panic itself fails the backup).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn set_error(&self, e: anyhow::Error) {
        let mut slot = lock(&self.error);
        if slot.is_none() {
            *slot = Some(e);
        }
        self.abort.store(true, Ordering::SeqCst);
    }
}

/// Stops the pipeline when its thread panics, so the reader does not keep
/// feeding a pipeline that lost a stage ([`Pipeline::finish`] then fails).
struct AbortOnPanic<'a>(&'a Shared, &'static str);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.set_error(pipeline_panicked(self.1));
        }
    }
}

fn pipeline_panicked(thread: &str) -> anyhow::Error {
    Failure::new(
        ExitStatus::Failure,
        format!("the backup pipeline's {thread} thread panicked (a bug in vaultctl), so the backup was not committed."),
    )
    .with_remedy("Run the backup again; if it happens again, report it with the log (RUST_LOG=debug).")
    .into()
}

#[cfg(test)]
thread_local! {
    /// The chunk at which a hashing thread of a backup started from this
    /// thread panics (unit tests; per thread, so backups that other tests
    /// run at the same time are not hit).
    static PANIC_AT_SEQ: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

struct Pipeline {
    jobs: Sender<Job>,
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
    collector: std::thread::JoinHandle<Option<CollectorResult>>,
    uploaders: Vec<std::thread::JoinHandle<()>>,
}

/// Entries of one index object a backup writes: about 6 MB of it and as
/// much of its entries in memory at the end of a backup, whatever the
/// backup's size (a 1 TB backup at the default chunk sizes writes one to
/// sixteen objects). A few in unit tests, so their backups write several.
const INDEX_ENTRIES: usize = if cfg!(test) { 3 } else { 1 << 17 };

const WORKERS: usize = 2;
const UPLOADERS: usize = 2;

impl Pipeline {
    /// `stores`: the targets this backup writes to (those it holds a lock on).
    fn start(
        repo: &Repository,
        index: &dyn IndexStore,
        opts: &BackupOptions,
        stores: &[Store],
        leases: Leases,
        backup_id: &str,
    ) -> Result<Pipeline> {
        let targets: Vec<String> = stores.iter().map(|s| s.name.clone()).collect();
        let shared = Arc::new(Shared {
            abort: AtomicBool::new(false),
            error: Mutex::new(None),
            claimed: Mutex::new(Claims::default()),
            failed_targets: Mutex::new(Vec::new()),
            uploaded: Mutex::new(Uploaded::default()),
            target_count: stores.len(),
            pack_checked: Mutex::new(HashMap::new()),
            missing_packs: Mutex::new(Vec::new()),
            leases,
            backup_id: backup_id.to_string(),
            #[cfg(test)]
            panic_at_seq: PANIC_AT_SEQ.with(|p| p.get()),
        });
        let (job_tx, job_rx) = bounded::<Job>(WORKERS * 2);
        let (done_tx, done_rx) = bounded::<Done>(WORKERS * 4);
        // A rendezvous channel: a sealed pack waits for a free uploader, so at
        // most UPLOADERS packs plus the one being filled are in memory.
        let (pack_tx, pack_rx) = bounded::<(u64, SealedPack)>(0);
        let mut workers = Vec::new();
        for _ in 0..WORKERS {
            let lookup = index.dedup_lookup(&targets)?;
            let rx = job_rx.clone();
            let tx = done_tx.clone();
            let shared = shared.clone();
            let key = repo.dedup.clone();
            let level = opts.compression_level;
            let stores = stores.to_vec();
            workers.push(
                std::thread::Builder::new()
                    .name("vaultctl-hash".into())
                    .spawn(move || {
                        let _guard = AbortOnPanic(&shared, "hashing");
                        if let Err(e) = worker(rx, tx, &shared, &key, &*lookup, &stores, level) {
                            shared.set_error(e);
                        }
                    })?,
            );
        }
        drop(done_tx);
        let collector = {
            let shared = shared.clone();
            let recipients = repo.recipients.clone();
            let pack_size = opts.pack_size;
            // Room for the last blob that crosses the pack size: no regrowth.
            let capacity = opts.pack_size + repo.config.chunker.max_size;
            std::thread::Builder::new()
                .name("vaultctl-pack".into())
                .spawn(move || {
                    let _guard = AbortOnPanic(&shared, "packing");
                    match collector(done_rx, pack_tx, &recipients, pack_size, capacity) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            shared.set_error(e);
                            None
                        }
                    }
                })?
        };
        let mut uploaders = Vec::new();
        // Parallel uploads pay off against network latency; on local disks
        // one uploader keeps up and saves a pack's worth of memory.
        let upload_threads = if stores.iter().all(Store::is_local) {
            1
        } else {
            UPLOADERS
        };
        for _ in 0..upload_threads {
            let rx = pack_rx.clone();
            let shared = shared.clone();
            let stores = stores.to_vec();
            uploaders.push(
                std::thread::Builder::new()
                    .name("vaultctl-upload".into())
                    .spawn(move || {
                        let _guard = AbortOnPanic(&shared, "upload");
                        uploader(rx, &shared, &stores)
                    })?,
            );
        }
        Ok(Pipeline {
            jobs: job_tx,
            shared,
            workers,
            collector,
            uploaders,
        })
    }

    fn aborted(&self) -> bool {
        self.shared.abort.load(Ordering::SeqCst)
    }

    /// The error that stopped the pipeline.
    fn take_error(&self) -> anyhow::Error {
        lock(&self.shared.error)
            .take()
            .unwrap_or_else(|| anyhow::anyhow!("the backup pipeline stopped"))
    }

    /// Waits for every thread. `sent`: how many chunks the reader sent;
    /// the result must account for each of them, in order. A thread that
    /// panicked fails the backup (never a backup with a truncated blob list).
    fn finish(self, sent: u64) -> Result<Collected> {
        drop(self.jobs);
        let mut panicked: Vec<&str> = Vec::new();
        for w in self.workers {
            if w.join().is_err() {
                panicked.push("hashing");
            }
        }
        let collected = match self.collector.join() {
            Ok(c) => c,
            Err(_) => {
                panicked.push("packing");
                None
            }
        };
        for u in self.uploaders {
            if u.join().is_err() {
                panicked.push("upload");
            }
        }
        if let Some(thread) = panicked.first() {
            return Err(pipeline_panicked(thread));
        }
        if let Some(e) = lock(&self.shared.error).take() {
            return Err(e);
        }
        let (blob_ids, distinct, known_packs, stored_bytes, new_blobs) =
            collected.ok_or_else(|| anyhow::anyhow!("the packing thread failed"))?;
        let blobs = blob_ids.len();
        if blobs != sent {
            return Err(Failure::new(
                ExitStatus::Failure,
                format!("the backup pipeline lost data ({sent} chunks read, {blobs} stored), so the backup was not committed (a bug in vaultctl)."),
            )
            .with_remedy("Run the backup again; if it happens again, report it with the log.")
            .into());
        }
        let packs = std::mem::take(&mut *lock(&self.shared.uploaded)).finish()?;
        let on_disk = lock(&self.shared.claimed).on_disk();
        if on_disk > 0 {
            tracing::debug!(
                "{on_disk} of the blobs this backup stored are listed in a temporary database"
            );
        }
        let failed_targets = std::mem::take(&mut *lock(&self.shared.failed_targets));
        let missing_packs = std::mem::take(&mut *lock(&self.shared.missing_packs));
        Ok(Collected {
            blob_ids,
            distinct,
            known_packs,
            packs,
            stored_bytes,
            new_blobs,
            failed_targets,
            missing_packs,
        })
    }
}

/// Whether `pack` (offered by the catalog for dedup) exists on every store
/// of this backup: checked once per pack and run, under our lock, which then
/// keeps it from being collected until the manifest is committed. A pack
/// missing somewhere is recorded, and its blobs are stored again.
fn pack_present(shared: &Shared, stores: &[Store], pack: &str) -> bool {
    if let Some(&present) = lock(&shared.pack_checked).get(pack) {
        return present;
    }
    let path = pack_path(pack);
    let results = runtime().block_on(futures::future::join_all(
        stores.iter().map(|s| s.get_head_async(&path, 1)),
    ));
    let mut present = true;
    for (s, r) in stores.iter().zip(results) {
        match r {
            Ok(Some(_)) => {}
            Ok(None) => {
                present = false;
                tracing::warn!(
                    "pack {pack} is missing on target '{}' although an index lists it; its blobs are stored again (run `vaultctl verify`)",
                    s.name
                );
                lock(&shared.missing_packs).push((pack.to_string(), s.name.clone()));
            }
            Err(e) => {
                present = false;
                tracing::warn!(
                    "cannot check pack {pack} on target '{}', so its blobs are stored again: {}",
                    s.name,
                    crate::error::paragraph(&e)
                );
            }
        }
    }
    lock(&shared.pack_checked).insert(pack.to_string(), present);
    present
}

fn worker(
    rx: Receiver<Job>,
    tx: Sender<Done>,
    shared: &Shared,
    key: &DedupKey,
    lookup: &dyn DedupLookup,
    stores: &[Store],
    level: i32,
) -> Result<()> {
    let mut compressor = super::pack::blob_compressor(level)?;
    for job in rx {
        if shared.abort.load(Ordering::Relaxed) {
            break;
        }
        #[cfg(test)]
        if job.seq == shared.panic_at_seq {
            panic!("injected panic (unit test)");
        }
        let id = key.blob_id(&job.data);
        let raw_len = job.data.len() as u32;
        let mut done = Done {
            seq: job.seq,
            id,
            raw_len,
            known_pack: None,
            new: None,
        };
        if let Some(loc) = lookup.lookup(&id)? {
            if pack_present(shared, stores, &loc.pack) {
                done.known_pack = Some(loc.pack);
            }
        }
        if done.known_pack.is_none() && lock(&shared.claimed).claim(&id)? {
            let (flags, compressed) = compress(&mut compressor, &job.data);
            done.new = Some((flags, compressed.unwrap_or(job.data)));
        }
        if tx.send(done).is_err() {
            break;
        }
    }
    Ok(())
}

type CollectorResult = (IdSpool, ExternalSorter<BlobId>, HashSet<String>, u64, usize);

fn collector(
    rx: Receiver<Done>,
    packs: Sender<(u64, SealedPack)>,
    recipients: &[super::keys::Recipient],
    pack_size: usize,
    capacity: usize,
) -> Result<CollectorResult> {
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut blob_ids = IdSpool::new();
    let mut distinct = ExternalSorter::new(super::extsort::RUN_LEN);
    let mut known = HashSet::new();
    let mut builder: Option<PackBuilder> = None;
    let mut sealed_count = 0u64;
    let mut stored_bytes = 0u64;
    let mut new_blobs = 0usize;
    for done in rx {
        pending.insert(done.seq, done);
        while let Some(d) = pending.remove(&next) {
            next += 1;
            blob_ids.push(&d.id)?;
            distinct.push(d.id)?;
            if let Some(p) = d.known_pack {
                known.insert(p);
            }
            if let Some((flags, data)) = d.new {
                let b = match builder.as_mut() {
                    Some(b) => b,
                    None => builder.insert(PackBuilder::new(recipients, capacity)?),
                };
                b.add(d.id, flags, d.raw_len, &data)?;
                stored_bytes += data.len() as u64;
                new_blobs += 1;
                if b.len() >= pack_size {
                    let sealed = builder.take().unwrap().seal()?;
                    if packs.send((sealed_count, sealed)).is_err() {
                        anyhow::bail!("the upload threads stopped");
                    }
                    sealed_count += 1;
                }
            }
        }
    }
    if let Some(b) = builder.take().filter(|b| !b.is_empty()) {
        let _ = packs.send((sealed_count, b.seal()?));
    }
    Ok((blob_ids, distinct, known, stored_bytes, new_blobs))
}

/// Records a failed target once (two uploaders may see it fail at once).
fn target_failed(failed: &mut Vec<FailedTarget>, target: &str, error: String, lock_lost: bool) {
    if !failed.iter().any(|f| f.target == target) {
        if lock_lost {
            tracing::warn!("target '{target}' gets nothing more from this backup: {error}");
        } else {
            tracing::warn!(
                "target '{target}' failed while uploading; the backup continues on the other targets: {error}"
            );
        }
        failed.push(FailedTarget {
            target: target.to_string(),
            error,
            lock_lost,
        });
    }
}

/// The uploaded packs, spooled in the order they were sealed rather than
/// the order their uploads finished: the index objects a backup writes (how
/// its packs are grouped) then depend on its data alone, not on which
/// uploader was faster. At most one pack per other uploader waits here.
#[derive(Default)]
struct Uploaded {
    spool: PackSpool,
    /// Packs whose upload finished before an earlier-sealed one's, by seal number.
    early: BTreeMap<u64, IndexedPack>,
    /// The seal number the spool takes next.
    next: u64,
}

impl Uploaded {
    fn push(&mut self, seq: u64, pack: IndexedPack) -> Result<()> {
        self.early.insert(seq, pack);
        while let Some(pack) = self.early.remove(&self.next) {
            self.spool.push(&pack)?;
            self.next += 1;
        }
        Ok(())
    }

    /// The spool, once every sealed pack came back: one still waiting means
    /// an earlier pack never did, which a run that got here cannot have.
    fn finish(self) -> Result<PackSpool> {
        anyhow::ensure!(
            self.early.is_empty(),
            "the backup pipeline lost pack {} of {} (a bug in vaultctl), so the backup was not committed",
            self.next,
            self.next as usize + self.early.len()
        );
        Ok(self.spool)
    }
}

fn uploader(rx: Receiver<(u64, SealedPack)>, shared: &Shared, stores: &[Store]) {
    for (seq, pack) in rx {
        let live: Vec<&Store> = {
            let mut failed = lock(&shared.failed_targets);
            // Nothing goes to a target whose lock ran out or vanished.
            for s in stores {
                if let Err(why) = shared.leases.lease_ok(&s.name) {
                    target_failed(&mut failed, &s.name, why, true);
                }
            }
            stores
                .iter()
                .filter(|s| !failed.iter().any(|f| f.target == s.name))
                .collect()
        };
        let path = pack_path(&pack.name);
        let results = runtime().block_on(futures::future::join_all(
            live.iter().map(|s| s.put_async(&path, pack.bytes.clone())),
        ));
        let mut failed = lock(&shared.failed_targets);
        for (s, r) in live.iter().zip(results) {
            if let Err(e) = r {
                target_failed(&mut failed, &s.name, crate::error::paragraph(&e), false);
            }
        }
        if failed.len() >= shared.target_count {
            let e = not_committed(&shared.backup_id, &failed);
            drop(failed);
            shared.set_error(e);
            return;
        }
        drop(failed);
        let spooled = lock(&shared.uploaded).push(
            seq,
            IndexedPack {
                name: pack.name,
                entries: pack.entries,
            },
        );
        if let Err(e) = spooled {
            shared.set_error(e);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::config::{validate, Config, FileConfig, Origin};

    /// One artifact of fixed bytes.
    struct Bytes1(Option<Vec<u8>>);

    impl Source for Bytes1 {
        fn kind(&self) -> &'static str {
            "command"
        }
        fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
            Ok(self.0.take().map(|data| ArtifactStream {
                name: "stdout".into(),
                format: "stream".into(),
                reader: Box::new(std::io::Cursor::new(data)),
                finish: Box::new(|| Ok(())),
            }))
        }
        fn metadata(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
    }

    fn data(len: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Many artifacts, some empty, with tenants and row counts: a tenant
    /// export's shape.
    struct Tenants {
        names: Vec<String>,
        next: usize,
        rows: Option<crate::repo::spill::CountTable>,
    }

    impl Source for Tenants {
        fn kind(&self) -> &'static str {
            "postgres"
        }
        fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
            let Some(t) = self.names.get(self.next) else {
                return Ok(None);
            };
            let i = self.next;
            self.next += 1;
            // Every seventh tenant empty; one large enough for several chunks.
            let len = if i % 7 == 3 {
                0
            } else if i == 5 {
                3 << 20
            } else {
                100 + i * 37
            };
            self.rows
                .as_mut()
                .unwrap()
                .push(&[1, i as u64, (i * i) as u64])?;
            Ok(Some(ArtifactStream {
                name: format!("tenant-{t}"),
                format: "stream".into(),
                reader: Box::new(std::io::Cursor::new(data(len + i).split_off(i))),
                finish: Box::new(|| Ok(())),
            }))
        }
        fn metadata(&self) -> serde_json::Value {
            serde_json::json!({"mode": "tenants", "database": "app", "tables": ["t", "b", "a"]})
        }
        fn take_rows(&mut self) -> Option<crate::repo::spill::CountTable> {
            self.rows.take()
        }
        fn tenants(&self) -> &[String] {
            &self.names
        }
    }

    /// A new repository on one local target (1 MiB packs) in a temporary
    /// directory, with its config and catalog.
    fn local_repository() -> (tempfile::TempDir, Config, Repository, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let recipient = super::super::keys::generate_identity(&d.join("id.txt")).unwrap();
        let text = format!(
            "catalog = \"{c}\"\npack_size_mib = 1\n[keys]\nrecipients = [\"{recipient}\"]\ndedup_key_file = \"{k}\"\n[[target]]\nname = \"local\"\nurl = \"file://{r}\"\n",
            c = d.join("catalog.db").display(),
            k = d.join("dedup.key").display(),
            r = d.join("repo").display(),
        );
        let raw: FileConfig = toml::from_str(&text).unwrap();
        let config = validate(raw, Origin::File(d.join("config.toml"))).unwrap();
        super::super::init(&config).unwrap();
        let repo = Repository::open(&config, None).unwrap();
        let catalog = Catalog::open(&config.catalog).unwrap();
        (dir, config, repo, catalog)
    }

    /// Artifacts of given bytes, in order.
    struct Streams(std::vec::IntoIter<Vec<u8>>);

    impl Source for Streams {
        fn kind(&self) -> &'static str {
            "command"
        }
        fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
            Ok(self.0.next().map(|data| ArtifactStream {
                name: "part".into(),
                format: "stream".into(),
                reader: Box::new(std::io::Cursor::new(data)),
                finish: Box::new(|| Ok(())),
            }))
        }
        fn metadata(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
    }

    /// A backup that repeats its chunks after its claims moved to disk and
    /// writes more index entries than one object takes (both bounds are a
    /// handful in unit tests): each distinct blob is stored once, listed
    /// once in the header and in exactly one index object, and known to
    /// the catalog; the body lists every chunk in stream order.
    #[test]
    fn repeats_past_the_claims_in_memory_are_stored_once_and_indexed_in_groups() {
        let (dir, config, repo, mut catalog) = local_repository();
        let d = dir.path();
        // Ten blocks of incompressible bytes, each read six times.
        let blocks: Vec<Vec<u8>> = (0..10).map(|k| data(200_000 + k).split_off(k)).collect();
        let parts: Vec<Vec<u8>> = (0..60).map(|i| blocks[(i * 7) % 10].clone()).collect();
        let opts = BackupOptions {
            source: "cmd".into(),
            tags: vec![],
            note: None,
            compression_level: 3,
            pack_size: config.pack_size,
        };
        let out = run(
            &repo,
            &mut catalog,
            &mut Streams(parts.clone().into_iter()),
            &opts,
            &Start::now(),
            &crate::progress::Silent,
        )
        .unwrap();
        let stored = std::fs::read(d.join("repo").join(manifest_path(&out.id))).unwrap();
        let header = manifest::decode_header(&stored, &repo.dedup, &out.id).unwrap();
        let ids = super::super::keys::load_identities(&d.join("id.txt")).unwrap();
        let body = manifest::decode_body(&stored, &ids, &header).unwrap();
        let distinct = header.blobs.len();
        assert!(distinct >= 10, "{distinct} distinct blobs");
        assert!(distinct > super::super::claims::RECENT);
        assert_eq!(out.blobs, distinct);
        assert_eq!(out.new_blobs, distinct, "each distinct blob stored once");
        // Every artifact lists its chunks: the same list for the same bytes.
        let lists: Vec<&Vec<String>> = body.artifacts.iter().map(|a| &a.blobs).collect();
        assert_eq!(lists.len(), 60);
        for (i, list) in lists.iter().enumerate() {
            assert_eq!(*list, lists[i % 10], "artifact {i}");
        }
        let mut listed: Vec<String> = lists.iter().flat_map(|l| l.iter().cloned()).collect();
        listed.sort();
        listed.dedup();
        assert_eq!(listed, header.blobs);
        // The index objects: several, together each blob once.
        let index_dir = d.join("repo").join("index");
        let mut indexed: Vec<String> = Vec::new();
        let mut objects = 0;
        for f in std::fs::read_dir(&index_dir).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            for p in index::decode(&bytes, &repo.dedup).unwrap() {
                indexed.extend(p.entries.iter().map(|e| hex::encode(e.id)));
            }
            objects += 1;
        }
        assert!(objects >= 2, "{objects} index objects");
        indexed.sort();
        assert_eq!(indexed, header.blobs, "each blob in one index entry");
        for id in &header.blobs {
            let raw: BlobId = hex::decode(id).unwrap().try_into().unwrap();
            assert!(catalog.blob_location(&raw).unwrap().is_some(), "{id}");
        }
    }

    /// The manifest and the catalog's rows of a backup written from the
    /// spills hold what the trees held: the body decodes to the artifacts
    /// read (sizes, BLAKE3, blobs in order) and the row counts per tenant,
    /// and the catalog gets the same artifacts, tenants and counts as rows.
    #[test]
    fn spilled_artifacts_and_rows_make_the_manifest_and_details() {
        let (dir, config, repo, mut catalog) = local_repository();
        let d = dir.path();
        let names: Vec<String> = (0..600).map(|i| format!("t{i:04}")).collect();
        let mut source = Tenants {
            names: names.clone(),
            next: 0,
            rows: Some(crate::repo::spill::CountTable::new(vec![
                "t".into(),
                "b".into(),
                "a".into(),
            ])),
        };
        let opts = BackupOptions {
            source: "db".into(),
            tags: vec!["x".into()],
            note: Some("n".into()),
            compression_level: 3,
            pack_size: config.pack_size,
        };
        let start = Start::now();
        let out = run(
            &repo,
            &mut catalog,
            &mut source,
            &opts,
            &start,
            &crate::progress::Silent,
        )
        .unwrap();
        assert_eq!(out.artifacts, 600);
        let stored = std::fs::read(d.join("repo").join(manifest_path(&out.id))).unwrap();
        let header = manifest::decode_header(&stored, &repo.dedup, &out.id).unwrap();
        let ids = super::super::keys::load_identities(&d.join("id.txt")).unwrap();
        let body = manifest::decode_body(&stored, &ids, &header).unwrap();
        assert_eq!(body.tenants, names);
        assert_eq!(body.artifacts.len(), 600);
        let mut all: Vec<String> = Vec::new();
        for (i, a) in body.artifacts.iter().enumerate() {
            let len = if i % 7 == 3 {
                0
            } else if i == 5 {
                3 << 20
            } else {
                100 + i * 37
            };
            let bytes = data(len + i).split_off(i);
            assert_eq!(a.name, format!("tenant-t{i:04}"));
            assert_eq!(a.size, len as u64);
            assert_eq!(a.blake3, blake3::hash(&bytes).to_hex().to_string());
            assert_eq!(a.blobs.is_empty(), len == 0, "{i}");
            if i == 5 {
                assert!(a.blobs.len() >= 3, "{}", a.blobs.len());
            }
            all.extend(a.blobs.iter().cloned());
        }
        all.sort();
        all.dedup();
        assert_eq!(header.blobs, all);
        assert_eq!(out.blobs, all.len());
        assert_eq!(
            body.engine["rows"]["t0009"],
            serde_json::json!({"a": 81, "b": 9, "t": 1})
        );
        assert_eq!(body.engine["rows"].as_object().unwrap().len(), 600);
        assert_eq!(body.engine["database"], "app");
        // The catalog's details keep the per-backup facts; the tenants,
        // artifacts and row counts become rows, read from the spools.
        assert_eq!(out.details, catalog_details(&body.engine).to_string());
        assert!(!out.details.contains("t0009"));
        let mut out = out;
        catalog
            .insert_running(&out.id, "db", "postgres", "h", &start.started_at, &[], None)
            .unwrap();
        catalog
            .complete(
                &out.id,
                &out.finished_at,
                out.duration_ms,
                out.bytes,
                out.stored_bytes,
                &out.details,
                &out.targets,
                &mut |w| out.contents.write(&names, w),
            )
            .unwrap();
        assert_eq!(catalog.tenants_of(&out.id).unwrap(), names);
        let rows = catalog.artifacts_of(&out.id).unwrap();
        assert_eq!(rows.len(), 600);
        for (r, a) in rows.iter().zip(&body.artifacts) {
            assert_eq!(
                (&r.name, &r.format, r.size, &r.blake3, r.blobs as usize),
                (&a.name, &a.format, a.size, &a.blake3, a.blobs.len())
            );
        }
        let counts = catalog.tenant_rows_of(&out.id).unwrap();
        assert_eq!(counts.len(), 600 * 3);
        for (tenant, table, n) in counts {
            assert_eq!(body.engine["rows"][&tenant][&table], n, "{tenant}/{table}");
        }
    }

    /// Issue 10, item 9b: a pipeline thread that panics fails the backup;
    /// before, `finish` ignored the hashing thread's panic and the backup
    /// was committed with the blobs after the lost chunk missing.
    #[test]
    fn a_panicking_pipeline_thread_fails_the_backup() {
        let (dir, config, repo, mut catalog) = local_repository();
        let d = dir.path();
        let opts = |source: &str| BackupOptions {
            source: source.into(),
            tags: Vec::new(),
            note: None,
            compression_level: 3,
            pack_size: config.pack_size,
        };
        let manifests = || {
            std::fs::read_dir(d.join("repo/snapshots"))
                .map(|rd| rd.count())
                .unwrap_or(0)
        };
        let progress = crate::progress::Silent;

        // The harness works: the same backup without a panic succeeds.
        let ok = run(
            &repo,
            &mut catalog,
            &mut Bytes1(Some(data(5 << 20))),
            &opts("control"),
            &Start::now(),
            &progress,
        )
        .unwrap();
        assert!(ok.blobs >= 3, "want several chunks, got {}", ok.blobs);
        assert_eq!(manifests(), 1);

        // The hashing thread panics on the second chunk of new data.
        PANIC_AT_SEQ.with(|p| p.set(1));
        let r = run(
            &repo,
            &mut catalog,
            &mut Bytes1(Some(data(6 << 20).into_iter().rev().collect())),
            &opts("panics"),
            &Start::now(),
            &progress,
        );
        PANIC_AT_SEQ.with(|p| p.set(u64::MAX));
        let e = r.expect_err("a backup whose pipeline panicked succeeded");
        assert!(
            crate::error::paragraph(&e).contains("panicked"),
            "{}",
            crate::error::paragraph(&e)
        );
        assert_eq!(crate::error::exit_status(&e), ExitStatus::Failure);
        assert_eq!(manifests(), 1, "a manifest was written");
    }
}
