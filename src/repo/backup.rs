//! The backup pipeline: source stream → chunk → id → dedup → compress →
//! pack → encrypt → upload to every target → index → manifest → catalog.
//!
//! Threads: the caller reads and chunks (and hashes the whole stream); two
//! workers hash blob ids, look them up and compress new ones; one collector
//! puts results back in order and fills packs; two uploaders send sealed
//! packs to all targets at once. Every queue between them is bounded, so
//! memory depends on the queue sizes and the pack size, never on the size
//! of the backup. The manifest is written last, and only after the source
//! reported success: a failed source leaves unreferenced packs, never a
//! backup that looks complete.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;

use super::chunker::Chunker;
use super::format::{index_path, manifest_path, pack_path};
use super::index::{self, IndexedPack};
use super::keys::DedupKey;
use super::manifest::{self, Artifact, Body, Header};
use super::pack::{compress, BlobId, PackBuilder, SealedPack};
use super::Repository;
use crate::catalog::{Catalog, DedupLookup};
use crate::error::{ExitKind, Failure};
use crate::progress::Progress;
use crate::storage::{runtime, Store};

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
    fn tenants(&self) -> Vec<String> {
        Vec::new()
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
    pub catalog_path: PathBuf,
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
}

#[derive(Debug, Serialize)]
pub struct FailedTarget {
    pub target: String,
    pub error: String,
}

pub fn new_backup_id() -> String {
    let mut b = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    hex::encode(b)
}

/// Runs a backup of `source` into `repo`, recording it in the catalog.
pub fn run(
    repo: &Repository,
    catalog: &mut Catalog,
    source: &mut dyn Source,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    let id = new_backup_id();
    let started = Instant::now();
    let started_at = super::now_rfc3339();
    let host = super::hostname();
    catalog.insert_running(
        &id,
        &opts.source,
        source.kind(),
        &host,
        &started_at,
        &opts.tags,
        opts.note.as_deref(),
    )?;
    let result = run_inner(
        repo,
        catalog,
        source,
        opts,
        progress,
        &id,
        &started_at,
        &host,
        started,
    );
    match result {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            let ms = started.elapsed().as_millis() as u64;
            let _ = catalog.fail(
                &id,
                &super::now_rfc3339(),
                ms,
                0,
                &crate::error::paragraph(&e),
            );
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_inner(
    repo: &Repository,
    catalog: &mut Catalog,
    source: &mut dyn Source,
    opts: &BackupOptions,
    progress: &dyn Progress,
    id: &str,
    started_at: &str,
    host: &str,
    started: Instant,
) -> Result<BackupOutcome> {
    // A shared lock on every target for the whole run: a prune's garbage
    // collection (exclusive) cannot delete packs this backup dedups against
    // or has uploaded but not yet referenced (docs/FORMAT.md, "Locks and prune").
    let lock = super::lock::acquire(
        &repo.stores,
        &repo.dedup,
        super::lock::Kind::Shared,
        "backup",
        super::lock::writer_wait(),
        repo.lock_timing,
    )?;
    // Learn what other hosts (or a lost catalog) put in the repository, so
    // dedup is right and never points at a pack a target lacks (or that a
    // prune deleted).
    repo.sync_index(catalog)?;
    let target_names: Vec<String> = repo.stores.iter().map(|s| s.name.clone()).collect();
    let pipeline = Pipeline::start(repo, opts, &target_names)?;
    let mut artifacts = Vec::new();
    let mut total_bytes = 0u64;
    let mut chunk_seq = 0u64;
    let mut artifact_no = 0usize;
    while let Some(stream) = source.next_artifact()? {
        progress.start(&format!("backup {} ({})", opts.source, stream.name), None);
        let mut chunker = Chunker::new(
            stream.reader,
            repo.config.chunker,
            &repo.dedup.chunker_seed(),
        );
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
                        artifact: artifact_no,
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
        drop(chunker);
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
        artifacts.push(Artifact {
            name: stream.name,
            format: stream.format,
            size,
            blake3: hasher.finalize().to_hex().to_string(),
            blobs: Vec::new(),
        });
        artifact_no += 1;
    }
    if artifacts.is_empty() {
        return Err(Failure::new(
            ExitKind::Failure,
            format!("the source '{}' produced nothing to back up.", opts.source),
        )
        .with_remedy("Check the source's paths or command.")
        .into());
    }
    let collected = pipeline.finish()?;
    for (i, a) in artifacts.iter_mut().enumerate() {
        a.blobs = collected
            .artifact_blobs
            .get(i)
            .map(|v| v.iter().map(hex::encode).collect())
            .unwrap_or_default();
    }

    // Targets that got every pack; the others are reported and skipped.
    let mut failed: Vec<FailedTarget> = collected
        .failed_targets
        .into_iter()
        .map(|(t, e)| FailedTarget {
            target: t,
            error: e,
        })
        .collect();
    for (name, why) in &repo.unavailable {
        failed.push(FailedTarget {
            target: name.clone(),
            error: why.clone(),
        });
    }
    let mut good: Vec<&Store> = repo
        .stores
        .iter()
        .filter(|s| !failed.iter().any(|f| f.target == s.name))
        .collect();

    // Index before manifest: a manifest must never name an unindexed blob.
    if !collected.packs.is_empty() {
        let encoded = Bytes::from(index::encode(&collected.packs, &repo.dedup)?);
        let name = super::format::content_name(&encoded);
        good = put_everywhere(&good, &index_path(&name), encoded, &mut failed);
        if good.is_empty() {
            return Err(all_failed(&failed));
        }
        let names: Vec<String> = good.iter().map(|s| s.name.clone()).collect();
        catalog.add_index(&name, &collected.packs, &names)?;
    }

    let mut packs: Vec<String> = collected.known_packs.into_iter().collect();
    packs.extend(collected.packs.iter().map(|p| p.name.clone()));
    packs.sort();
    packs.dedup();
    let mut blobs: Vec<String> = artifacts
        .iter()
        .flat_map(|a| a.blobs.iter().cloned())
        .collect();
    blobs.sort();
    blobs.dedup();
    let finished_at = super::now_rfc3339();
    let duration_ms = started.elapsed().as_millis() as u64;
    let header = Header {
        version: 1,
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
        blobs,
        wal_start: source.wal_start(),
    };
    let body = Body {
        id: id.to_string(),
        note: opts.note.clone(),
        tenants: source.tenants(),
        engine: source.metadata(),
        artifacts,
    };
    let encoded = Bytes::from(manifest::encode(
        &header,
        &body,
        &repo.dedup,
        &repo.recipients,
    )?);
    // Only targets where our lock still holds get the manifest: elsewhere a
    // prune may have deleted packs it would name.
    good.retain(|s| match lock.check(&s.name) {
        Ok(()) => true,
        Err(why) => {
            tracing::warn!("target '{}' does not get backup {id}: {why}", s.name);
            failed.push(FailedTarget {
                target: s.name.clone(),
                error: why,
            });
            false
        }
    });
    if good.is_empty() {
        let list = failed
            .iter()
            .map(|f| format!("{}: {}", f.target, f.error))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Failure::new(ExitKind::Locked, format!("backup {id} could not be committed on any target ({list})."))
            .with_remedy("Run the backup again; if it keeps happening, check that the targets are reachable and the host is not suspended during backups.")
            .into());
    }
    good = put_everywhere(&good, &manifest_path(id), encoded, &mut failed);
    if good.is_empty() {
        return Err(all_failed(&failed));
    }
    let names: Vec<String> = good.iter().map(|s| s.name.clone()).collect();
    let details = details_json(&body);
    catalog.complete(
        id,
        &finished_at,
        duration_ms,
        total_bytes,
        collected.stored_bytes,
        &details,
        &names,
    )?;
    lock.release();
    Ok(BackupOutcome {
        id: id.to_string(),
        source: opts.source.clone(),
        kind: source.kind().to_string(),
        bytes: total_bytes,
        stored_bytes: collected.stored_bytes,
        duration_ms,
        mb_per_s: crate::catalog::mb_per_s(total_bytes, duration_ms),
        targets: names,
        failed_targets: failed,
        artifacts: body.artifacts.len(),
        blobs: header.blobs.len(),
        new_blobs: collected.new_blobs,
    })
}

/// What the catalog keeps of a manifest body: everything but blob lists.
pub fn details_json(body: &Body) -> serde_json::Value {
    serde_json::json!({
        "tenants": body.tenants,
        "engine": body.engine,
        "artifacts": body.artifacts.iter().map(|a| serde_json::json!({
            "name": a.name, "format": a.format, "size": a.size, "blake3": a.blake3, "blobs": a.blobs.len(),
        })).collect::<Vec<_>>(),
    })
}

fn all_failed(failed: &[FailedTarget]) -> anyhow::Error {
    let list = failed
        .iter()
        .map(|f| format!("{}: {}", f.target, f.error))
        .collect::<Vec<_>>()
        .join("; ");
    Failure::new(
        ExitKind::Temporary,
        format!("no target could store the backup ({list})."),
    )
    .with_remedy("Check the targets' reachability and credentials, then run the backup again.")
    .into()
}

/// Writes one object to every store at once; returns those that succeeded.
fn put_everywhere<'a>(
    stores: &[&'a Store],
    name: &str,
    data: Bytes,
    failed: &mut Vec<FailedTarget>,
) -> Vec<&'a Store> {
    let results = runtime().block_on(futures::future::join_all(
        stores.iter().map(|s| s.put_async(name, data.clone())),
    ));
    let mut ok = Vec::new();
    for (s, r) in stores.iter().zip(results) {
        match r {
            Ok(()) => ok.push(*s),
            Err(e) => {
                tracing::warn!(
                    "target '{}' failed: {}",
                    s.name,
                    crate::error::paragraph(&e)
                );
                failed.push(FailedTarget {
                    target: s.name.clone(),
                    error: crate::error::paragraph(&e),
                });
            }
        }
    }
    ok
}

struct Job {
    seq: u64,
    artifact: usize,
    data: Vec<u8>,
}

struct Done {
    seq: u64,
    artifact: usize,
    id: BlobId,
    raw_len: u32,
    /// The pack of an already stored blob.
    known_pack: Option<String>,
    /// Flags and stored bytes of a blob this run must store.
    new: Option<(u8, Vec<u8>)>,
}

struct Collected {
    artifact_blobs: Vec<Vec<BlobId>>,
    known_packs: HashSet<String>,
    packs: Vec<IndexedPack>,
    stored_bytes: u64,
    new_blobs: usize,
    failed_targets: Vec<(String, String)>,
}

/// Shared state between the pipeline's threads.
struct Shared {
    abort: AtomicBool,
    error: Mutex<Option<anyhow::Error>>,
    /// Blob ids this run has claimed for storing (so each is stored once).
    claimed: Mutex<HashSet<BlobId>>,
    failed_targets: Mutex<Vec<(String, String)>>,
    uploaded: Mutex<Vec<IndexedPack>>,
    target_count: usize,
}

impl Shared {
    fn set_error(&self, e: anyhow::Error) {
        let mut slot = self.error.lock().unwrap();
        if slot.is_none() {
            *slot = Some(e);
        }
        self.abort.store(true, Ordering::SeqCst);
    }
}

struct Pipeline {
    jobs: Sender<Job>,
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
    collector: std::thread::JoinHandle<Option<CollectorResult>>,
    uploaders: Vec<std::thread::JoinHandle<()>>,
}

const WORKERS: usize = 2;
const UPLOADERS: usize = 2;

impl Pipeline {
    fn start(repo: &Repository, opts: &BackupOptions, targets: &[String]) -> Result<Pipeline> {
        let shared = Arc::new(Shared {
            abort: AtomicBool::new(false),
            error: Mutex::new(None),
            claimed: Mutex::new(HashSet::new()),
            failed_targets: Mutex::new(Vec::new()),
            uploaded: Mutex::new(Vec::new()),
            target_count: repo.stores.len(),
        });
        let (job_tx, job_rx) = bounded::<Job>(WORKERS * 2);
        let (done_tx, done_rx) = bounded::<Done>(WORKERS * 4);
        // A rendezvous channel: a sealed pack waits for a free uploader, so at
        // most UPLOADERS packs plus the one being filled are in memory.
        let (pack_tx, pack_rx) = bounded::<SealedPack>(0);
        let mut workers = Vec::new();
        for _ in 0..WORKERS {
            let lookup = DedupLookup::open(&opts.catalog_path, targets)?;
            let rx = job_rx.clone();
            let tx = done_tx.clone();
            let shared = shared.clone();
            let key = repo.dedup.clone();
            let level = opts.compression_level;
            workers.push(
                std::thread::Builder::new()
                    .name("vaultctl-hash".into())
                    .spawn(move || {
                        if let Err(e) = worker(rx, tx, &shared, &key, &lookup, level) {
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
        let upload_threads = if repo.stores.iter().all(Store::is_local) {
            1
        } else {
            UPLOADERS
        };
        for _ in 0..upload_threads {
            let rx = pack_rx.clone();
            let shared = shared.clone();
            let stores = repo.stores.clone();
            uploaders.push(
                std::thread::Builder::new()
                    .name("vaultctl-upload".into())
                    .spawn(move || uploader(rx, &shared, &stores))?,
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
        self.shared
            .error
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| anyhow::anyhow!("the backup pipeline stopped"))
    }

    fn finish(self) -> Result<Collected> {
        drop(self.jobs);
        for w in self.workers {
            let _ = w.join();
        }
        let collected = self
            .collector
            .join()
            .map_err(|_| anyhow::anyhow!("the packing thread panicked"))?;
        for u in self.uploaders {
            let _ = u.join();
        }
        if let Some(e) = self.shared.error.lock().unwrap().take() {
            return Err(e);
        }
        let (artifact_blobs, known_packs, stored_bytes, new_blobs) =
            collected.ok_or_else(|| anyhow::anyhow!("the packing thread failed"))?;
        let packs = std::mem::take(&mut *self.shared.uploaded.lock().unwrap());
        let failed_targets = std::mem::take(&mut *self.shared.failed_targets.lock().unwrap());
        Ok(Collected {
            artifact_blobs,
            known_packs,
            packs,
            stored_bytes,
            new_blobs,
            failed_targets,
        })
    }
}

fn worker(
    rx: Receiver<Job>,
    tx: Sender<Done>,
    shared: &Shared,
    key: &DedupKey,
    lookup: &DedupLookup,
    level: i32,
) -> Result<()> {
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    for job in rx {
        if shared.abort.load(Ordering::Relaxed) {
            break;
        }
        let id = key.blob_id(&job.data);
        let raw_len = job.data.len() as u32;
        let mut done = Done {
            seq: job.seq,
            artifact: job.artifact,
            id,
            raw_len,
            known_pack: None,
            new: None,
        };
        if let Some(loc) = lookup.lookup(&id)? {
            done.known_pack = Some(loc.pack);
        } else if shared.claimed.lock().unwrap().insert(id) {
            let (flags, compressed) = compress(&mut compressor, &job.data);
            done.new = Some((flags, compressed.unwrap_or(job.data)));
        }
        if tx.send(done).is_err() {
            break;
        }
    }
    Ok(())
}

type CollectorResult = (Vec<Vec<BlobId>>, HashSet<String>, u64, usize);

fn collector(
    rx: Receiver<Done>,
    packs: Sender<SealedPack>,
    recipients: &[super::keys::Recipient],
    pack_size: usize,
    capacity: usize,
) -> Result<CollectorResult> {
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut artifact_blobs: Vec<Vec<BlobId>> = Vec::new();
    let mut known = HashSet::new();
    let mut builder: Option<PackBuilder> = None;
    let mut stored_bytes = 0u64;
    let mut new_blobs = 0usize;
    for done in rx {
        pending.insert(done.seq, done);
        while let Some(d) = pending.remove(&next) {
            next += 1;
            if artifact_blobs.len() <= d.artifact {
                artifact_blobs.resize_with(d.artifact + 1, Vec::new);
            }
            artifact_blobs[d.artifact].push(d.id);
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
                    if packs.send(sealed).is_err() {
                        anyhow::bail!("the upload threads stopped");
                    }
                }
            }
        }
    }
    if let Some(b) = builder.take().filter(|b| !b.is_empty()) {
        let _ = packs.send(b.seal()?);
    }
    Ok((artifact_blobs, known, stored_bytes, new_blobs))
}

fn uploader(rx: Receiver<SealedPack>, shared: &Shared, stores: &[Store]) {
    for pack in rx {
        let live: Vec<&Store> = {
            let failed = shared.failed_targets.lock().unwrap();
            stores
                .iter()
                .filter(|s| !failed.iter().any(|(n, _)| *n == s.name))
                .collect()
        };
        let path = pack_path(&pack.name);
        let results = runtime().block_on(futures::future::join_all(
            live.iter().map(|s| s.put_async(&path, pack.bytes.clone())),
        ));
        let mut failed = shared.failed_targets.lock().unwrap();
        for (s, r) in live.iter().zip(results) {
            // Two uploaders may see the same target fail at once: it is one
            // failed target, recorded once.
            if let Err(e) = r {
                if !failed.iter().any(|(n, _)| *n == s.name) {
                    tracing::warn!(
                        "target '{}' failed while uploading; the backup continues on the other targets: {}",
                        s.name,
                        crate::error::paragraph(&e)
                    );
                    failed.push((s.name.clone(), crate::error::paragraph(&e)));
                }
            }
        }
        if failed.len() >= shared.target_count {
            let list = failed
                .iter()
                .map(|(t, e)| format!("{t}: {e}"))
                .collect::<Vec<_>>()
                .join("; ");
            drop(failed);
            shared.set_error(
                Failure::new(
                    ExitKind::Temporary,
                    format!("no target could store the backup ({list})."),
                )
                .with_remedy(
                    "Check the targets' reachability and credentials, then run the backup again.",
                )
                .into(),
            );
            return;
        }
        drop(failed);
        shared.uploaded.lock().unwrap().push(IndexedPack {
            name: pack.name,
            entries: pack.entries,
        });
    }
}
