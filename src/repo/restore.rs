//! Reading backups back: a manifest's artifact as a checked byte stream.
//!
//! A fetch thread downloads the packs in the order the stream needs them
//! (checking each pack's bytes against its name, falling back to the next
//! target when one is missing or damaged) and decrypts the part of each
//! that a run of a few MiB of blobs needs (never a whole pack: memory is
//! the fetched packs and the runs in flight); decode threads (one per
//! core, [`super::ordered`]) decompress the runs and check each blob
//! against its id, a bounded window ahead of the reader, which takes the runs
//! back in stream order, hashes the whole stream and serves the bytes.
//! At the end of the stream the length and whole-stream BLAKE3 are checked
//! against the manifest, and a mismatch is an I/O error, so no sink can
//! report success on wrong data.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read, Seek};
use std::sync::Arc;

use age::stream::StreamReader;
use anyhow::{Context, Result};
use crossbeam_channel::{bounded, Receiver};

use super::format::{manifest_path, pack_path};
use super::index::IndexStore;
use super::keys::{self, DedupKey, Identity};
use super::manifest::{self, Artifact, Body, Header};
use super::ordered::{self, Ordered};
use super::pack::{read_blob_into, BlobId, BlobLocation};
use super::Repository;
use crate::error::{ExitStatus, Failure};
use crate::storage::Store;

/// Loads a manifest from the first store that has an intact one: its
/// header opens, names this id and (version 2) seals this body. The bytes
/// as the store gave them (a 300,000-tenant manifest is 145 MB: not copied).
pub fn load_manifest(stores: &[Store], id: &str, key: &DedupKey) -> Result<(Header, bytes::Bytes)> {
    let mut last_err = None;
    for s in stores {
        match s.get(&manifest_path(id)) {
            Ok(Some(bytes)) => match manifest::decode_header(&bytes, key, id) {
                Ok(h) => return Ok((h, bytes)),
                Err(e) => {
                    let e = e.context(format!(
                        "manifest {id} on target '{}' is damaged or was tampered with",
                        s.name
                    ));
                    tracing::warn!("{}", crate::error::paragraph(&e));
                    last_err = Some(e)
                }
            },
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        Failure::new(
            ExitStatus::Failure,
            format!("backup {id} has no manifest on any target."),
        )
        .with_remedy("The backup may have been pruned or never completed; check `vaultctl list`.")
        .into()
    }))
}

/// Opens a manifest's body (needs the identity).
pub fn load_body(repo: &Repository, stores: &[Store], id: &str) -> Result<(Header, Body)> {
    load_body_only(repo, stores, id, None)
}

/// [`load_body`] keeping only the artifacts (and tenants' row counts)
/// `only` names, all when `None`.
pub fn load_body_only(
    repo: &Repository,
    stores: &[Store],
    id: &str,
    only: Option<&manifest::Only>,
) -> Result<(Header, Body)> {
    let identities = repo.identities()?;
    let (h, bytes) = load_manifest(stores, id, &repo.dedup)?;
    let body = manifest::decode_body_only(&bytes, &identities, &h, only)
        .with_context(|| format!("cannot open the manifest of backup {id}"))?;
    Ok((h, body))
}

/// Resolves every blob of an artifact to its location, syncing the catalog
/// from the targets' indexes when it does not know a blob.
pub fn plan(
    repo: &Repository,
    catalog: &mut dyn IndexStore,
    artifact: &Artifact,
) -> Result<Vec<(BlobId, BlobLocation)>> {
    let mut synced = false;
    let mut out = Vec::with_capacity(artifact.blobs.len());
    for hex_id in &artifact.blobs {
        let id: BlobId = hex::decode(hex_id)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("manifest names an invalid blob id {hex_id}"))?;
        let mut loc = catalog.blob_location(&id)?;
        if loc.is_none() && !synced {
            repo.sync_index(catalog)?;
            synced = true;
            loc = catalog.blob_location(&id)?;
        }
        let loc = loc.ok_or_else(|| {
            Failure::new(ExitStatus::Failure, format!("blob {} of artifact '{}' is not in any index.", &hex_id[..16], artifact.name))
                .with_remedy("The repository is damaged; run `vaultctl verify` to see which backups are affected.")
        })?;
        out.push((id, loc));
    }
    Ok(out)
}

/// Downloads a pack from the first store that has an intact copy.
pub fn fetch_pack(stores: &[Store], name: &str) -> Result<bytes::Bytes> {
    let mut problems = Vec::new();
    for s in stores {
        match s.get(&pack_path(name)) {
            Ok(Some(b)) if super::format::content_name(&b) == name => return Ok(b),
            Ok(Some(_)) => {
                tracing::warn!(
                    "pack {name} on target '{}' is damaged (its bytes do not match its name)",
                    s.name
                );
                problems.push(format!("damaged on '{}'", s.name));
            }
            Ok(None) => problems.push(format!("missing on '{}'", s.name)),
            Err(e) => problems.push(format!(
                "unreadable on '{}': {}",
                s.name,
                crate::error::paragraph(&e)
            )),
        }
    }
    Err(Failure::new(ExitStatus::Failure, format!("pack {name} has no intact copy ({}).", problems.join(", ")))
        .with_remedy("Restore from a target with an intact copy (--target), or run `vaultctl verify --read-data` to list the affected backups.")
        .into())
}

/// A blob to read and where it lives.
type PlannedBlob = (BlobId, BlobLocation);

/// A run of consecutive blobs of one pack: one decode job. The bytes are
/// the decrypted part of the pack that holds them, and each blob's offset
/// is within that part.
type Run = (Vec<u8>, Vec<PlannedBlob>);

/// A checked stream of one artifact's bytes.
pub struct ArtifactReader {
    decoded: Ordered<Runs, Vec<u8>>,
    spare: Spare,
    buf: Vec<u8>,
    pos: usize,
    hasher: blake3::Hasher,
    size: u64,
    expected_size: u64,
    expected_hash: String,
    name: String,
    done: bool,
    _fetcher: std::thread::JoinHandle<()>,
}

/// How many fetched packs the fetcher keeps for reuse (a stream that
/// repeats itself points back at recent packs), the one being read
/// included; bounds restore memory.
const PACK_CACHE: usize = 2;
/// Raw bytes of one decode job (at least one blob): small enough that the
/// window of decoded runs stays a few tens of MiB, large enough that the
/// threads hand over a few blobs at a time.
const RUN_BYTES: u64 = 4 << 20;

/// Cuts the consecutive blobs the stream needs from one pack into decode
/// jobs of about [`RUN_BYTES`].
fn cut_runs(blobs: &[PlannedBlob]) -> Vec<&[PlannedBlob]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (k, (_, loc)) in blobs.iter().enumerate() {
        if k > start && bytes + loc.raw_len as u64 > RUN_BYTES {
            out.push(&blobs[start..k]);
            (start, bytes) = (k, 0);
        }
        bytes += loc.raw_len as u64;
    }
    if start < blobs.len() {
        out.push(&blobs[start..]);
    }
    out
}

/// Decrypts the part of a pack that holds a run's blobs (offsets from the
/// pack's index, checked against the pack's stored length before they
/// size a buffer) and moves their offsets into that part.
fn decrypt_run(
    reader: &mut StreamReader<impl Read + Seek>,
    pack: &str,
    pack_len: u64,
    blobs: &[PlannedBlob],
) -> Result<Run> {
    let from = blobs
        .iter()
        .map(|(_, l)| l.offset as u64)
        .min()
        .unwrap_or(0);
    let to = blobs
        .iter()
        .map(|(_, l)| l.offset as u64 + l.stored_len as u64)
        .max()
        .unwrap_or(0);
    if to > pack_len {
        anyhow::bail!(
            "the index places blobs up to byte {to} of pack {pack}, which holds {pack_len} (damaged or hostile index)"
        );
    }
    let mut plain = vec![0; (to - from) as usize];
    reader
        .seek(io::SeekFrom::Start(from))
        .and_then(|_| reader.read_exact(&mut plain))
        .with_context(|| {
            format!("bytes {from}..{to} of pack {pack} are missing or damaged (or the index misplaces its blobs)")
        })?;
    let blobs = blobs
        .iter()
        .map(|(id, loc)| {
            let offset = loc.offset - from as u32;
            (
                *id,
                BlobLocation {
                    offset,
                    ..loc.clone()
                },
            )
        })
        .collect();
    Ok((plain, blobs))
}

/// The fetcher: downloads the packs the plan needs in order (each checked
/// against its name, from the first target with an intact copy) and
/// sends each run's decrypted part, never a whole decrypted pack. Stops
/// at the first error, which it sends, or when the reader hangs up.
fn fetch_runs(
    stores: &[Store],
    identities: &[Identity],
    plan: &[PlannedBlob],
    tx: &crossbeam_channel::Sender<Result<Run, String>>,
) -> Result<()> {
    let mut cache: VecDeque<(String, bytes::Bytes)> = VecDeque::new();
    let mut i = 0;
    while i < plan.len() {
        let pack = &plan[i].1.pack;
        let mut j = i;
        while j < plan.len() && plan[j].1.pack == *pack {
            j += 1;
        }
        let bytes = match cache.iter().find(|(n, _)| n == pack) {
            Some((_, b)) => b.clone(),
            None => {
                if cache.len() >= PACK_CACHE {
                    cache.pop_front(); // before the next pack comes
                }
                let b = fetch_pack(stores, pack)?;
                cache.push_back((pack.clone(), b.clone()));
                b
            }
        };
        let pack_len = bytes.len() as u64;
        let mut reader = keys::decrypt_reader(identities, io::Cursor::new(bytes))
            .with_context(|| format!("pack {pack}"))?;
        for run in cut_runs(&plan[i..j]) {
            let run = decrypt_run(&mut reader, pack, pack_len, run)?;
            if tx.send(Ok(run)).is_err() {
                return Ok(());
            }
        }
        i = j;
    }
    Ok(())
}

/// The fetcher's runs; after an error (one failing job) the input ends.
struct Runs {
    runs: Receiver<Result<Run, String>>,
    failed: bool,
}

impl Iterator for Runs {
    type Item = Result<Run, String>;

    fn next(&mut self) -> Option<Result<Run, String>> {
        if self.failed {
            return None;
        }
        let run = self.runs.recv().ok()?;
        self.failed = run.is_err();
        Some(run)
    }
}

/// Buffers of runs the reader has served, for the decode threads to fill
/// again: reused pages instead of fresh ones (a page fault and a zeroed page
/// for every 4 KiB restored). At most [`SPARE_BUFFERS`] are kept.
type Spare = Arc<std::sync::Mutex<Vec<Vec<u8>>>>;
const SPARE_BUFFERS: usize = 4;

/// Decodes one run into a single buffer: each blob decompressed and checked
/// against its id.
fn decode_run(run: Result<Run, String>, key: &DedupKey, spare: &Spare) -> Result<Vec<u8>, String> {
    let (plain, blobs) = run?;
    let raw: u64 = blobs.iter().map(|(_, loc)| loc.raw_len as u64).sum();
    let mut out = spare
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .unwrap_or_default();
    out.clear();
    out.reserve(raw.min(RUN_BYTES + super::format::MAX_BLOB_SIZE) as usize);
    for (id, loc) in &blobs {
        read_blob_into(&plain, loc, id, key, &mut out).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Decode threads: one per core (at most 8).
fn decode_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
}

impl ArtifactReader {
    pub fn open(
        repo: &Repository,
        stores: Vec<Store>,
        artifact: &Artifact,
        plan: Vec<(BlobId, BlobLocation)>,
    ) -> Result<ArtifactReader> {
        let identities = repo.identities()?;
        let (tx, rx) = bounded::<Result<Run, String>>(1);
        let fetcher = std::thread::Builder::new()
            .name("vaultctl-fetch".into())
            .spawn(move || {
                if let Err(e) = fetch_runs(&stores, &identities, &plan, &tx) {
                    let _ = tx.send(Err(crate::error::paragraph(&e)));
                }
            })?;
        let runs = Runs {
            runs: rx,
            failed: false,
        };
        let key = repo.dedup.clone();
        let threads = decode_threads();
        let spare = Spare::default();
        let theirs = spare.clone();
        let decoded = ordered::map(runs, threads, 2 * threads, move |run| {
            decode_run(run, &key, &theirs)
        })?;
        Ok(ArtifactReader {
            decoded,
            spare,
            buf: Vec::new(),
            pos: 0,
            hasher: blake3::Hasher::new(),
            size: 0,
            expected_size: artifact.size,
            expected_hash: artifact.blake3.clone(),
            name: artifact.name.clone(),
            done: false,
            _fetcher: fetcher,
        })
    }

    /// Loads the next decoded run into `buf`; false at the end of the stream.
    fn next_run(&mut self) -> io::Result<bool> {
        match self.decoded.next() {
            Some(Ok(buf)) => {
                let served = std::mem::replace(&mut self.buf, buf);
                let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
                if spare.len() < SPARE_BUFFERS && served.capacity() > 0 {
                    spare.push(served);
                }
                drop(spare);
                self.pos = 0;
                self.hasher.update(&self.buf);
                self.size += self.buf.len() as u64;
                Ok(true)
            }
            Some(Err(msg)) => Err(io::Error::other(msg)),
            None => Ok(false),
        }
    }

    fn check_end(&self) -> io::Result<()> {
        let hash = self.hasher.finalize().to_hex().to_string();
        if self.size != self.expected_size || hash != self.expected_hash {
            return Err(io::Error::other(format!(
                "artifact '{}' does not match its manifest (got {} bytes with BLAKE3 {}, expected {} bytes with {}); the restored data must not be trusted",
                self.name,
                self.size,
                &hash[..16],
                self.expected_size,
                &self.expected_hash[..16.min(self.expected_hash.len())]
            )));
        }
        Ok(())
    }
}

impl Read for ArtifactReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, out)
    }
}

/// `Read` of a `BufRead`: what its buffer holds, copied out.
fn read_buffered(r: &mut impl BufRead, out: &mut [u8]) -> io::Result<usize> {
    if out.is_empty() {
        return Ok(0);
    }
    let avail = r.fill_buf()?;
    let n = out.len().min(avail.len());
    out[..n].copy_from_slice(&avail[..n]);
    r.consume(n);
    Ok(n)
}

/// The decoded runs as they are (a few MiB each): a sink that takes them
/// whole (stdout) writes each with one call instead of copying it out in
/// small reads.
impl BufRead for ArtifactReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.buf.len() {
            if self.done {
                return Ok(&[]);
            }
            if !self.next_run()? {
                self.done = true;
                self.check_end()?;
                return Ok(&[]);
            }
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }
}

/// Bytes `offset .. offset + len` of an artifact, read on their own (the
/// loader's side readers of big COPY blocks). Only the blobs that hold the
/// range are read, each checked against its id and its length as always,
/// so the bytes served are those at these offsets of the stream the
/// manifest names; the whole-stream hash is not checked here: the caller
/// reads the whole stream through an [`ArtifactReader`] too and makes
/// nothing visible before that one checked it.
pub struct RangeReader {
    stores: Vec<Store>,
    identities: Vec<Identity>,
    key: DedupKey,
    /// The blobs that hold the range, in stream order, not read yet.
    blobs: VecDeque<PlannedBlob>,
    /// The pack being read.
    pack: Option<OpenPack>,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes of the first blob before the range, still to skip.
    skip: u64,
    /// Bytes of the range still to serve.
    left: u64,
    name: String,
}

/// Bytes of a stored pack fetched by one range request: one blob's
/// encrypted chunks (a blob is at most 2 MiB) and usually the next few.
const PACK_WINDOW: u64 = 4 << 20;
/// The first request of a pack: its age header (a few hundred bytes) and,
/// from the response, the pack's length.
const PACK_HEAD: u64 = 64 << 10;

/// A pack a [`RangeReader`] reads: its name, the index of its store, its
/// length as stored and a decrypting reader over its byte ranges, which
/// seeks to each blob.
struct OpenPack {
    name: String,
    store: usize,
    len: u64,
    reader: StreamReader<PackRanges>,
}

/// A stored pack as `Read + Seek` over range requests, one window at a
/// time, so a side reader holds a window of a pack instead of all of it.
/// Its bytes are not checked against the pack's name (that needs them
/// all): each blob read through it is checked against its keyed id.
struct PackRanges {
    store: Store,
    path: String,
    len: u64,
    pos: u64,
    window: bytes::Bytes,
    window_at: u64,
}

impl PackRanges {
    /// Fetches the pack's head (and learns its length); `None` when the
    /// store does not have it.
    fn open(store: &Store, pack: &str) -> Result<Option<PackRanges>> {
        let path = pack_path(pack);
        let Some((window, len)) = store.get_range(&path, 0..PACK_HEAD)? else {
            return Ok(None);
        };
        Ok(Some(PackRanges {
            store: store.clone(),
            path,
            len,
            pos: 0,
            window,
            window_at: 0,
        }))
    }
}

impl Read for PackRanges {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let in_window =
            self.pos >= self.window_at && self.pos < self.window_at + self.window.len() as u64;
        if !in_window {
            self.window = bytes::Bytes::new(); // the last window goes before the next comes
            let end = self.len.min(self.pos + PACK_WINDOW);
            let (window, _) = self
                .store
                .get_range(&self.path, self.pos..end)
                .map_err(|e| io::Error::other(crate::error::paragraph(&e)))?
                .ok_or_else(|| io::Error::other(format!("{} vanished while read", self.path)))?;
            if window.is_empty() {
                return Ok(0);
            }
            self.window = window;
            self.window_at = self.pos;
        }
        let at = (self.pos - self.window_at) as usize;
        let n = out.len().min(self.window.len() - at);
        out[..n].copy_from_slice(&self.window[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PackRanges {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let pos = match to {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::other("seek before the start of a pack"))?;
        Ok(self.pos)
    }
}

impl RangeReader {
    /// One blob at a time, on the caller's thread, fetching and decrypting
    /// only that blob's part of its pack (age's STREAM seeks by 64 KiB
    /// chunk, each authenticated): memory is a [`PACK_WINDOW`] and one
    /// blob, where an [`ArtifactReader`]'s pipeline holds decrypted packs
    /// in flight and a window of decoded runs. A side reader feeds one
    /// COPY, which the server's CPU bounds far below its decode speed, so
    /// it needs no read-ahead.
    pub fn open(
        repo: &Repository,
        stores: Vec<Store>,
        artifact: &Artifact,
        plan: &[(BlobId, BlobLocation)],
        offset: u64,
        len: u64,
    ) -> Result<RangeReader> {
        let mut pos = 0u64;
        let mut first = None;
        let mut blobs = VecDeque::new();
        for b in plan {
            let end = pos + b.1.raw_len as u64;
            if end > offset && pos < offset + len {
                first.get_or_insert(pos);
                blobs.push_back(b.clone());
            }
            pos = end;
        }
        Ok(RangeReader {
            stores,
            identities: repo.identities()?,
            key: repo.dedup.clone(),
            blobs,
            pack: None,
            buf: Vec::new(),
            pos: 0,
            skip: offset - first.unwrap_or(offset),
            left: len,
            name: artifact.name.clone(),
        })
    }

    /// Reads, checks and decompresses the next blob into `buf`, from the
    /// first target with an intact copy (the one read last first); false
    /// when none is left.
    fn next_blob(&mut self) -> Result<bool> {
        let Some((id, loc)) = self.blobs.pop_front() else {
            return Ok(false);
        };
        let last = match &self.pack {
            Some(p) if p.name == loc.pack => p.store,
            _ => 0,
        };
        let mut problems = Vec::new();
        for k in 0..self.stores.len() {
            let store = (last + k) % self.stores.len();
            match self.read_blob(store, &id, &loc) {
                Ok(true) => return Ok(true),
                Ok(false) => problems.push(format!("missing on '{}'", self.stores[store].name)),
                Err(e) => {
                    self.pack = None;
                    let e = crate::error::paragraph(&e);
                    tracing::warn!(
                        "blob {} of pack {} on target '{}': {e}",
                        hex::encode(&id[..8]),
                        loc.short_pack(),
                        self.stores[store].name
                    );
                    problems.push(format!("unreadable on '{}': {e}", self.stores[store].name));
                }
            }
        }
        Err(Failure::new(
            ExitStatus::Failure,
            format!(
                "blob {} of pack {} has no intact copy ({}).",
                hex::encode(&id[..8]),
                loc.pack,
                problems.join(", ")
            ),
        )
        .with_remedy("Restore from a target with an intact copy (--target), or run `vaultctl verify --read-data` to list the affected backups.")
        .into())
    }

    /// Reads one blob from one store into `buf`; false when the store does
    /// not have its pack.
    fn read_blob(&mut self, store: usize, id: &BlobId, loc: &BlobLocation) -> Result<bool> {
        let open = matches!(&self.pack, Some(p) if p.name == loc.pack && p.store == store);
        if !open {
            self.pack = None; // the last pack's window goes before the next comes
            let Some(source) = PackRanges::open(&self.stores[store], &loc.pack)? else {
                return Ok(false);
            };
            let len = source.len;
            let reader = keys::decrypt_reader(&self.identities, source)
                .with_context(|| format!("pack {}", loc.pack))?;
            self.pack = Some(OpenPack {
                name: loc.pack.clone(),
                store,
                len,
                reader,
            });
        }
        let OpenPack {
            name, len, reader, ..
        } = self.pack.as_mut().expect("opened above");
        let (plain, blobs) = decrypt_run(reader, name, *len, &[(*id, loc.clone())])?;
        self.buf.clear();
        self.pos = 0;
        read_blob_into(&plain, &blobs[0].1, id, &self.key, &mut self.buf)?;
        Ok(true)
    }
}

impl BufRead for RangeReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        loop {
            if self.left == 0 {
                return Ok(&[]);
            }
            if self.pos == self.buf.len() {
                if !self
                    .next_blob()
                    .map_err(|e| io::Error::other(crate::error::paragraph(&e)))?
                {
                    return Err(io::Error::other(format!(
                        "artifact '{}' ended {} bytes before the range read on the side",
                        self.name, self.left
                    )));
                }
                continue;
            }
            if self.skip > 0 {
                let n = (self.buf.len() - self.pos).min(self.skip as usize);
                self.pos += n;
                self.skip -= n as u64;
                continue;
            }
            let end = self.buf.len().min(self.pos + self.left as usize);
            return Ok(&self.buf[self.pos..end]);
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.left as usize);
        self.pos += n;
        self.left -= n as u64;
    }
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, out)
    }
}

/// Downloads, checks and decrypts one pack.
pub fn open_pack(stores: &[Store], name: &str, identities: &[Identity]) -> Result<Vec<u8>> {
    let bytes = fetch_pack(stores, name)?;
    keys::decrypt(identities, &bytes).with_context(|| format!("pack {name}"))
}
