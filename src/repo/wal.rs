//! The WAL archive: `wal push` (PostgreSQL's `archive_command`), `wal fetch`
//! (`restore_command`), `wal status`, `wal sync`, and which WAL retention may
//! remove.
//!
//! Every WAL file (segment, `.partial`, `.backup`, `.history`) is one object
//! under `wal/<source>/`, compressed with zstd and age-encrypted to the
//! recipients, so a write-only host can archive. A small plaintext header
//! carries a keyed BLAKE3 of the file's plaintext (key derived from the
//! dedup key): pushing the same file again is recognised as identical
//! without any identity, and a different file under an existing name is
//! refused: archived WAL is never overwritten.
//!
//! Each call is one process started by PostgreSQL, so it stays lean: no
//! catalog, no index sync, one write per target (plus a header read on the
//! primary when the object already exists). The first configured target is
//! the primary: success means the file is durably there. A secondary that
//! fails is recorded as pending in a small state directory and caught up by
//! later pushes or `vaultctl wal sync`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde::Serialize;

use super::format::CONFIG_OBJECT;
use super::keys::{self, DedupKey, Identity, Recipient};
use crate::config::Config;
use crate::error::{ExitStatus, Failure};
use crate::storage::{runtime, Store};

/// Top-level directory of WAL objects.
pub const WAL_DIR: &str = "wal";
const MAGIC: &[u8; 8] = b"VCWAL001";
/// Length of the plaintext header before the age file.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 32 + 32;
/// How long a secondary target that failed is skipped (marked pending
/// without trying), so a target that is down does not slow archiving.
const SECONDARY_BACKOFF: Duration = Duration::from_secs(60);
/// Pending objects a push copies to a secondary that is back, per call.
const CATCH_UP_PER_PUSH: usize = 8;
/// The default WAL segment size.
pub const DEFAULT_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;

/// The plaintext header of a WAL object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalHeader {
    /// Bit 0: the age payload is zstd-compressed.
    pub flags: u8,
    /// Length of the original file.
    pub raw_len: u64,
    /// Keyed BLAKE3 of the original file (the `vaultctl v1 wal id` key).
    pub id: [u8; 32],
    /// Unkeyed BLAKE3 of the age file that follows (bit-rot check, no key).
    pub body_blake3: [u8; 32],
}

impl WalHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(MAGIC);
        h[8] = self.flags;
        h[12..20].copy_from_slice(&self.raw_len.to_le_bytes());
        h[20..52].copy_from_slice(&self.id);
        h[52..84].copy_from_slice(&self.body_blake3);
        h
    }

    pub fn parse(b: &[u8]) -> Result<WalHeader> {
        if b.len() < HEADER_LEN || &b[..8] != MAGIC {
            anyhow::bail!("not a vaultctl WAL object (bad magic or truncated header)");
        }
        Ok(WalHeader {
            flags: b[8],
            raw_len: u64::from_le_bytes(b[12..20].try_into().unwrap()),
            id: b[20..52].try_into().unwrap(),
            body_blake3: b[52..84].try_into().unwrap(),
        })
    }
}

/// What kind of file PostgreSQL hands to `archive_command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalFile {
    /// `TTTTTTTTLLLLLLLLSSSSSSSS`, optionally `.partial`.
    Segment {
        timeline: u32,
        log: u32,
        seg: u32,
        partial: bool,
    },
    /// `TTTTTTTTLLLLLLLLSSSSSSSS.OOOOOOOO.backup`
    Backup { timeline: u32, log: u32, seg: u32 },
    /// `TTTTTTTT.history`
    History { timeline: u32 },
}

fn hex_u32(s: &str) -> Option<u32> {
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

impl WalFile {
    /// Parses a WAL file name; anything else (paths, odd names) is `None`.
    pub fn parse(name: &str) -> Option<WalFile> {
        let seg = |s: &str| -> Option<(u32, u32, u32)> {
            if s.len() != 24 {
                return None;
            }
            Some((hex_u32(&s[..8])?, hex_u32(&s[8..16])?, hex_u32(&s[16..24])?))
        };
        if let Some(tli) = name.strip_suffix(".history") {
            return Some(WalFile::History {
                timeline: hex_u32(tli)?,
            });
        }
        if let Some(stem) = name.strip_suffix(".partial") {
            let (timeline, log, seg) = seg(stem)?;
            return Some(WalFile::Segment {
                timeline,
                log,
                seg,
                partial: true,
            });
        }
        if let Some(stem) = name.strip_suffix(".backup") {
            let (s, offset) = stem.split_once('.')?;
            hex_u32(offset)?;
            let (timeline, log, seg) = seg(s)?;
            return Some(WalFile::Backup { timeline, log, seg });
        }
        let (timeline, log, seg) = seg(name)?;
        Some(WalFile::Segment {
            timeline,
            log,
            seg,
            partial: false,
        })
    }

    pub fn timeline(&self) -> u32 {
        match self {
            WalFile::Segment { timeline, .. }
            | WalFile::Backup { timeline, .. }
            | WalFile::History { timeline } => *timeline,
        }
    }

    /// The absolute segment number (None for history files).
    pub fn segno(&self, segment_size: u64) -> Option<u64> {
        let per_log = 0x1_0000_0000u64 / segment_size.max(1);
        match self {
            WalFile::Segment { log, seg, .. } | WalFile::Backup { log, seg, .. } => {
                Some(*log as u64 * per_log + *seg as u64)
            }
            WalFile::History { .. } => None,
        }
    }
}

/// The segment name for a timeline and absolute segment number.
pub fn segment_name(timeline: u32, segno: u64, segment_size: u64) -> String {
    let per_log = 0x1_0000_0000u64 / segment_size.max(1);
    format!(
        "{timeline:08X}{:08X}{:08X}",
        segno / per_log,
        segno % per_log
    )
}

/// The segment holding LSN `X/Y` (as PostgreSQL prints it).
pub fn segment_of_lsn(timeline: u32, lsn: &str, segment_size: u64) -> Option<String> {
    let (hi, lo) = lsn.split_once('/')?;
    let v = (u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?;
    Some(segment_name(timeline, v / segment_size, segment_size))
}

/// `wal/<source>/<first 16 hex>/<name>`, or `wal/<source>/<name>` for history files.
pub fn object_path(source: &str, name: &str) -> Result<String> {
    match WalFile::parse(name) {
        Some(WalFile::History { .. }) => Ok(format!("{WAL_DIR}/{source}/{name}")),
        Some(_) => Ok(format!("{WAL_DIR}/{source}/{}/{name}", &name[..16])),
        None => Err(Failure::new(
            ExitStatus::Usage,
            format!("\"{name}\" is not a WAL file name."),
        )
        .with_remedy(
            "wal push/fetch take PostgreSQL's %p/%f: segment, .partial, .backup or .history files.",
        )
        .into()),
    }
}

/// Compresses, encrypts and frames a WAL file, on every core: the segment
/// is cut into parts compressed as independent zstd frames (which `zstd -d`
/// reads as one stream) by one thread per core, taken in order; this thread
/// encrypts each frame as soon as it and those before it are done, hashing
/// the ciphertext as it goes, while another thread computes the keyed id.
/// No step waits for the whole segment except the header.
pub fn encode(
    plain: &[u8],
    key: &DedupKey,
    recipients: &[Recipient],
    level: i32,
) -> Result<(Vec<u8>, WalHeader)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let parts = match plain.len() {
        n if n >= 8 * 1024 * 1024 => 8,
        n if n >= 2 * 1024 * 1024 => 4,
        n if n >= 512 * 1024 => 2,
        _ => 1,
    };
    let part_len = plain.len().div_ceil(parts).max(1);
    let chunks: Vec<&[u8]> = plain.chunks(part_len).collect();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, chunks.len().max(1));
    let next = AtomicUsize::new(0);
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() / 3);
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    let mut body = HashingWriter {
        out: &mut out,
        hasher: blake3::Hasher::new(),
    };
    let id = std::thread::scope(|s| -> Result<[u8; 32]> {
        let hasher = s.spawn(|| key.wal_id(plain));
        let (tx, rx) = std::sync::mpsc::channel::<(usize, std::io::Result<Vec<u8>>)>();
        for _ in 0..workers {
            let (tx, next, chunks) = (tx.clone(), &next, &chunks);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = chunks.get(i) else { break };
                if tx.send((i, zstd::bulk::compress(c, level))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut w = keys::encrypt_writer(recipients, &mut body)?;
        let mut done: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        let mut written = 0;
        while written < chunks.len() {
            let (i, frame) = rx
                .recv()
                .map_err(|_| anyhow::anyhow!("a compression thread stopped"))?;
            done.insert(i, frame?);
            while let Some(f) = done.remove(&written) {
                w.write_all(&f)?;
                written += 1;
            }
        }
        w.finish()?;
        hasher
            .join()
            .map_err(|_| anyhow::anyhow!("hashing thread panicked"))
    })?;
    let header = WalHeader {
        flags: 1,
        raw_len: plain.len() as u64,
        id,
        body_blake3: *body.hasher.finalize().as_bytes(),
    };
    out[..HEADER_LEN].copy_from_slice(&header.encode());
    Ok((out, header))
}

/// Appends to a buffer and hashes what it appends.
struct HashingWriter<'a> {
    out: &'a mut Vec<u8>,
    hasher: blake3::Hasher,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The largest WAL segment PostgreSQL makes (`wal_segment_size` is a power
/// of two from 1 MiB to 1 GiB).
pub const MAX_SEGMENT_SIZE: u64 = 1 << 30;
/// The smallest WAL segment PostgreSQL makes.
pub const MIN_SEGMENT_SIZE: u64 = 1 << 20;
/// The largest `.history` or `.backup` file the archive accepts (they hold
/// a few lines each).
pub const MAX_SMALL_WAL_FILE: u64 = 16 << 20;

/// The most a WAL file of this kind can hold: the bound `raw_len` (read
/// from an unauthenticated header) is checked against before use.
pub fn max_len(file: &WalFile) -> u64 {
    match file {
        WalFile::Segment { .. } => MAX_SEGMENT_SIZE,
        WalFile::Backup { .. } | WalFile::History { .. } => MAX_SMALL_WAL_FILE,
    }
}

/// Checks, decrypts and decompresses a WAL object into memory; verifies the
/// plaintext against the header's length and keyed id.
pub fn decode(obj: &[u8], key: &DedupKey, identities: &[Identity]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decode_to(obj, MAX_SEGMENT_SIZE, key, identities, &mut out)?;
    Ok(out)
}

/// Checks, decrypts and decompresses a WAL object into `out`, streaming:
/// `raw_len` comes from the plaintext header, which anyone with write
/// access to the storage can change, so it is checked against `max` and
/// never used to size a buffer; producing more than it says is an error
/// at once. At the end the length and keyed id must match. Returns the
/// bytes written (`out` may hold garbage after an error).
pub fn decode_to(
    obj: &[u8],
    max: u64,
    key: &DedupKey,
    identities: &[Identity],
    out: &mut dyn Write,
) -> Result<u64> {
    use std::io::Read;
    let header = WalHeader::parse(obj)?;
    if header.raw_len > max {
        anyhow::bail!(
            "the object's header claims {} bytes, more than a WAL file of this kind holds ({max}): damaged or hostile",
            header.raw_len
        );
    }
    let body = &obj[HEADER_LEN..];
    if blake3::hash(body).as_bytes() != &header.body_blake3 {
        anyhow::bail!("the object is damaged (its BLAKE3 does not match its header)");
    }
    let decrypted = keys::decrypt_reader(identities, body)?;
    let mut reader: Box<dyn Read + '_> = if header.flags & 1 != 0 {
        Box::new(zstd::stream::read::Decoder::new(decrypted).context("zstd decompression failed")?)
    } else {
        Box::new(decrypted)
    };
    let mut hasher = key.wal_id_hasher();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => anyhow::bail!("the object cannot be decrypted or decompressed: {e}"),
        };
        total += n as u64;
        if total > header.raw_len {
            anyhow::bail!(
                "the object holds more than the {} bytes its header records (damaged or hostile)",
                header.raw_len
            );
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    if total != header.raw_len || hasher.finalize().as_bytes() != &header.id {
        anyhow::bail!("the decrypted WAL does not match its recorded length and id (damaged, or another repository's dedup key)");
    }
    Ok(total)
}

/// The stores, keys and state a WAL command needs: opened without the
/// catalog and with as few round trips as possible.
pub struct WalRepo {
    /// Configured targets in order (the first is the primary); `Err` when it
    /// could not even be set up.
    pub stores: Vec<std::result::Result<Store, (String, String)>>,
    pub dedup: DedupKey,
    pub recipients: Vec<Recipient>,
    pub source: String,
    pub state_dir: PathBuf,
    /// zstd level (`wal_compression_level`).
    pub level: i32,
    identity_file: Option<PathBuf>,
}

/// Where push records what secondaries still lack: beside the catalog.
pub fn state_dir(config: &Config) -> PathBuf {
    config.beside_catalog("wal-pending")
}

impl WalRepo {
    /// Opens the targets for WAL work. `need_recipients`: push encrypts.
    pub fn open(config: &Config, source: &str, need_recipients: bool) -> Result<WalRepo> {
        let mut stores = Vec::new();
        for t in &config.targets {
            stores.push(
                t.store_spec()
                    .and_then(|s| Store::open(&s, false))
                    .map_err(|e| (t.name.clone(), crate::error::paragraph(&e))),
            );
        }
        // Readers (fetch, status, sync) make do with any target that opens:
        // a restore must work when the first target is the one that was lost.
        let first_ok = stores.iter().find_map(|s| s.as_ref().ok()).cloned();
        let primary = match (&stores[0], first_ok) {
            (Ok(s), _) => s.clone(),
            (Err(_), Some(s)) if !need_recipients => s,
            (Err((name, e)), _) => {
                return Err(Failure::new(
                    ExitStatus::Temporary,
                    format!("the primary target '{name}' cannot be opened: {e}"),
                )
                .with_remedy("WAL is archived only once it is on the primary (first) target; fix it and PostgreSQL retries.")
                .into())
            }
        };
        let dedup = if config.keys.dedup_key_file.exists() {
            DedupKey::load(&config.keys.dedup_key_file)?
        } else {
            // A restore host may hold only the identity.
            let ids = match &config.keys.identity_file {
                Some(p) if p.exists() => keys::load_identities(p)?,
                _ => {
                    return Err(Failure::new(
                        ExitStatus::Usage,
                        format!(
                            "the dedup key file {} does not exist.",
                            config.keys.dedup_key_file.display()
                        ),
                    )
                    .with_remedy("Copy the dedup key to this host (keys.dedup_key_file); WAL archiving needs it.")
                    .into())
                }
            };
            let b = primary
                .get(super::format::DEDUP_KEY_OBJECT)?
                .ok_or_else(|| anyhow::anyhow!("the primary target holds no keys/dedup.age"))?;
            let root: [u8; 32] = keys::decrypt(&ids, &b)?
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("keys/dedup.age does not hold a 32-byte key"))?;
            DedupKey::from_root(root)
        };
        // One small read: the repository exists and the key belongs to it.
        let rc = match primary.get(CONFIG_OBJECT)? {
            Some(b) => super::format::RepoConfig::parse(&b)?,
            None => {
                return Err(Failure::new(
                    ExitStatus::RepoMissing,
                    format!("target '{}' holds no vaultctl repository.", primary.name),
                )
                .with_remedy("Run `vaultctl init`.")
                .into())
            }
        };
        if rc.dedup_key_check != dedup.check_value() {
            return Err(Failure::new(
                ExitStatus::Usage,
                format!(
                    "the dedup key in {} belongs to another repository than {}.",
                    config.keys.dedup_key_file.display(),
                    rc.repo_id
                ),
            )
            .with_remedy("Use this repository's dedup key (keys.dedup_key_file).")
            .into());
        }
        let recipients = if need_recipients {
            super::recipients(config)?
        } else {
            Vec::new()
        };
        Ok(WalRepo {
            stores,
            dedup,
            recipients,
            source: source.to_string(),
            state_dir: state_dir(config),
            level: config.wal_compression_level,
            identity_file: config.keys.identity_file.clone(),
        })
    }

    /// WAL work over given stores (the first is the primary) with these
    /// keys, without a config file (tests over in-memory stores).
    pub fn from_stores(
        stores: Vec<Store>,
        dedup: DedupKey,
        recipients: Vec<Recipient>,
        identity_file: Option<PathBuf>,
        source: &str,
        state_dir: PathBuf,
    ) -> WalRepo {
        WalRepo {
            stores: stores.into_iter().map(Ok).collect(),
            dedup,
            recipients,
            source: source.to_string(),
            state_dir,
            level: 1,
            identity_file,
        }
    }

    fn primary(&self) -> &Store {
        self.stores[0].as_ref().expect("checked in open")
    }

    fn pending_dir(&self, target: &str) -> PathBuf {
        self.state_dir.join(target).join(&self.source)
    }

    fn down_marker(&self, target: &str) -> PathBuf {
        self.state_dir.join(target).join(".down")
    }

    fn recently_down(&self, target: &str) -> bool {
        std::fs::metadata(self.down_marker(target))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < SECONDARY_BACKOFF)
    }

    fn mark_pending(&self, target: &str, name: &str, why: &str, down: bool) {
        let dir = self.pending_dir(target);
        let r = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(dir.join(name), why.as_bytes()))
            .and_then(|_| {
                if down {
                    std::fs::write(self.down_marker(target), why.as_bytes())
                } else {
                    Ok(())
                }
            });
        if let Err(e) = r {
            tracing::warn!(
                "cannot record that target '{target}' lacks {name} in {}: {e}; `vaultctl wal sync` will still find it",
                dir.display()
            );
        }
    }

    fn pending(&self, target: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.pending_dir(target))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| WalFile::parse(n).is_some())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

#[derive(Debug, Serialize)]
pub struct PushOutcome {
    pub file: String,
    pub object: String,
    /// `stored`, or `already-archived` (identical content was there).
    pub status: &'static str,
    pub bytes: u64,
    pub stored_bytes: u64,
    /// Secondary targets that did not get it now (recorded as pending).
    pub pending_targets: Vec<(String, String)>,
    /// Earlier pending objects copied to secondaries that are back.
    pub caught_up: usize,
}

/// Archives one WAL file (`archive_command = 'vaultctl wal push %p'`).
pub fn push(repo: &WalRepo, path: &Path) -> Result<PushOutcome> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let object = object_path(&repo.source, &name)?;
    let t0 = std::time::Instant::now();
    let plain = Mapped::open(path).map_err(|e| {
        Failure::new(
            ExitStatus::Failure,
            format!("cannot read the WAL file {}: {e}.", path.display()),
        )
        .with_remedy("archive_command must pass %p, run from the data directory by PostgreSQL.")
    })?;
    let t_read = t0.elapsed();
    let (encoded, header) = encode(plain.bytes(), &repo.dedup, &repo.recipients, repo.level)?;
    let t_encode = t0.elapsed();
    let encoded = Bytes::from(encoded);
    let mut outcome = PushOutcome {
        file: name.clone(),
        object: object.clone(),
        status: "stored",
        bytes: plain.bytes().len() as u64,
        stored_bytes: encoded.len() as u64,
        pending_targets: Vec::new(),
        caught_up: 0,
    };
    drop(plain);

    // Which secondaries to try now: not those that failed a moment ago.
    let mut tries: Vec<&Store> = vec![repo.primary()];
    for s in repo.stores.iter().skip(1) {
        match s {
            Ok(s) if !repo.recently_down(&s.name) => tries.push(s),
            Ok(s) => {
                let why = "skipped: the target failed less than a minute ago".to_string();
                repo.mark_pending(&s.name, &name, &why, false);
                outcome.pending_targets.push((s.name.clone(), why));
            }
            Err((t, e)) => {
                repo.mark_pending(t, &name, e, true);
                outcome.pending_targets.push((t.clone(), e.clone()));
            }
        }
    }
    let results = runtime().block_on(futures::future::join_all(
        tries
            .iter()
            .map(|s| s.put_if_absent_async(&object, encoded.clone())),
    ));
    tracing::debug!(
        "wal push {name}: read {:?}, encoded {:?}, stored {:?}",
        t_read,
        t_encode - t_read,
        t0.elapsed() - t_encode
    );
    let mut results = results.into_iter();
    let primary = results.next().expect("primary tried");
    match primary {
        Ok(true) => {}
        Ok(false) => {
            same_or_refuse(repo.primary(), &object, &header)?;
            outcome.status = "already-archived";
        }
        Err(e) => return Err(e.context(format!("archiving {name} on the primary target failed"))),
    }
    for (s, r) in tries.iter().skip(1).zip(results) {
        let failed = match r {
            Ok(true) => None,
            Ok(false) => match same_or_refuse(s, &object, &header) {
                Ok(()) => None,
                Err(e) => Some((crate::error::paragraph(&e), false)),
            },
            Err(e) => Some((crate::error::paragraph(&e), true)),
        };
        match failed {
            None => {
                let _ = std::fs::remove_file(repo.pending_dir(&s.name).join(&name));
                outcome.caught_up += catch_up(repo, s, CATCH_UP_PER_PUSH);
            }
            Some((why, down)) => {
                tracing::warn!(
                    "secondary target '{}' did not get {name} (archived on the primary; it is recorded and caught up by a later push or `vaultctl wal sync`): {why}",
                    s.name
                );
                repo.mark_pending(&s.name, &name, &why, down);
                outcome.pending_targets.push((s.name.clone(), why));
            }
        }
    }
    Ok(outcome)
}

/// A WAL file mapped into memory (read-only, prefaulted): no copy and no
/// zeroed buffer for 16 MiB on every call.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
    /// Small or empty files are read normally.
    owned: Vec<u8>,
}

impl Mapped {
    fn open(path: &Path) -> std::io::Result<Mapped> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(path)?;
        let len = f.metadata()?.len() as usize;
        if len < 1024 * 1024 {
            return Ok(Mapped {
                ptr: std::ptr::null_mut(),
                len: 0,
                owned: std::fs::read(path)?,
            });
        }
        // SAFETY: a private read-only mapping of a file we opened; the
        // pointer is checked and unmapped in Drop. PostgreSQL does not
        // change a segment while it waits for archive_command.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapped {
            ptr,
            len,
            owned: Vec::new(),
        })
    }

    fn bytes(&self) -> &[u8] {
        if self.ptr.is_null() {
            &self.owned
        } else {
            // SAFETY: ptr/len describe a live mapping owned by self.
            unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
        }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: unmapping the mapping created in open.
            unsafe {
                libc::munmap(self.ptr, self.len);
            }
        }
    }
}

/// Where the asynchronous mode keeps its status files: beside the catalog.
pub fn spool_dir(config: &Config, source: &str) -> PathBuf {
    config.beside_catalog("wal-spool").join(source)
}

/// What identifies one version of a file in pg_wal: inode, length and
/// modification time. A recycled segment keeps its inode but is rewritten,
/// so its time changes and an old `.ok` never vouches for new content.
pub fn file_identity(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{} {} {}.{:09}",
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

/// An exclusive, non-blocking lock on `path` (held while the file lives).
pub fn try_lock(path: &Path) -> Option<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .ok()
        .map(|()| f)
}

fn write_status(spool: &Path, name: &str, ext: &str, text: &str) {
    let tmp = spool.join(format!(".{name}.{ext}.tmp"));
    let _ = std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, spool.join(format!("{name}.{ext}"))));
}

/// The asynchronous worker: pushes every `.ready` WAL file in
/// `pg_wal/archive_status` ahead of PostgreSQL's calls and leaves
/// `<name>.ok` (or `<name>.error`) in the spool directory; the foreground
/// `wal push --async` then returns at once. One worker per source (a lock);
/// it exits after a second with nothing to do.
pub fn drain(repo: &WalRepo, spool: &Path, pg_wal: &Path, skip: Option<&str>) -> Result<usize> {
    std::fs::create_dir_all(spool)?;
    let Some(_lock) = try_lock(&spool.join("drain.lock")) else {
        return Ok(0);
    };
    let mut done: BTreeSet<String> = skip.map(|s| s.to_string()).into_iter().collect();
    let mut pushed = 0;
    let mut idle = 0;
    while idle < 5 {
        let mut ready: Vec<String> = std::fs::read_dir(pg_wal.join("archive_status"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter_map(|n| n.strip_suffix(".ready").map(str::to_string))
                    .filter(|n| WalFile::parse(n).is_some())
                    .collect()
            })
            .unwrap_or_default();
        ready.sort();
        ready.retain(|n| !done.contains(n) && !spool.join(format!("{n}.ok")).exists());
        if ready.is_empty() {
            idle += 1;
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        idle = 0;
        for name in ready {
            let path = pg_wal.join(&name);
            let Some(identity) = file_identity(&path) else {
                continue;
            };
            match push(repo, &path) {
                Ok(_) => {
                    write_status(spool, &name, "ok", &identity);
                    pushed += 1;
                }
                Err(e) => write_status(spool, &name, "error", &crate::error::paragraph(&e)),
            }
            done.insert(name);
        }
    }
    // Status files of WAL PostgreSQL no longer waits for.
    if let Ok(d) = std::fs::read_dir(spool) {
        for e in d.filter_map(|e| e.ok()) {
            let n = e.file_name().to_string_lossy().to_string();
            if let Some(stem) = n.strip_suffix(".ok").or_else(|| n.strip_suffix(".error")) {
                if !pg_wal
                    .join("archive_status")
                    .join(format!("{stem}.ready"))
                    .exists()
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    Ok(pushed)
}

/// What the foreground of `wal push --async` found in the spool.
pub enum Ahead {
    /// The worker archived exactly this file.
    Archived,
    /// The worker failed on it: the message (the foreground retries itself).
    Failed(String),
    /// Nothing known: archive it now.
    Unknown,
}

/// Waits (while a worker runs, up to `wait`) for the worker's verdict on `path`.
pub fn await_ahead(spool: &Path, path: &Path, wait: Duration) -> Ahead {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let ok = spool.join(format!("{name}.ok"));
    let err = spool.join(format!("{name}.error"));
    let started = std::time::Instant::now();
    loop {
        if let Ok(id) = std::fs::read_to_string(&ok) {
            let _ = std::fs::remove_file(&ok);
            if Some(id) == file_identity(path) {
                return Ahead::Archived;
            }
            return Ahead::Unknown;
        }
        if let Ok(msg) = std::fs::read_to_string(&err) {
            let _ = std::fs::remove_file(&err);
            return Ahead::Failed(msg);
        }
        // No worker running: nobody will write a verdict.
        if started.elapsed() >= wait || try_lock(&spool.join("drain.lock")).is_some() {
            return Ahead::Unknown;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Succeeds when the object at `object` holds the same file, else refuses.
fn same_or_refuse(store: &Store, object: &str, header: &WalHeader) -> Result<()> {
    let existing = runtime()
        .block_on(store.get_head_async(object, HEADER_LEN))?
        .ok_or_else(|| anyhow::anyhow!("{object} vanished on target '{}'", store.name))?;
    let old = WalHeader::parse(&existing)
        .with_context(|| format!("{object} on target '{}'", store.name))?;
    if old.id == header.id && old.raw_len == header.raw_len {
        return Ok(());
    }
    Err(Failure::new(
        ExitStatus::Failure,
        format!(
            "target '{}' already holds {object} with DIFFERENT content ({} bytes archived, {} bytes now); refusing to overwrite archived WAL.",
            store.name, old.raw_len, header.raw_len
        ),
    )
    .with_remedy("Two clusters may be archiving into the same source name, or a restored cluster kept archive_command: give each cluster its own source (wal push --source), and check `vaultctl wal status`.")
    .into())
}

/// Copies up to `limit` pending objects from the primary to `target`.
fn catch_up(repo: &WalRepo, target: &Store, limit: usize) -> usize {
    let mut done = 0;
    for name in repo.pending(&target.name).into_iter().take(limit) {
        let Ok(object) = object_path(&repo.source, &name) else {
            continue;
        };
        let r = (|| -> Result<()> {
            if let Some(bytes) = repo.primary().get(&object)? {
                runtime().block_on(target.put_if_absent_async(&object, bytes))?;
            }
            Ok(())
        })();
        match r {
            Ok(()) => {
                let _ = std::fs::remove_file(repo.pending_dir(&target.name).join(&name));
                done += 1;
            }
            Err(e) => {
                tracing::warn!("catching up {name} on '{}' failed: {e:#}", target.name);
                break;
            }
        }
    }
    if done > 0 {
        tracing::info!("caught up {done} WAL file(s) on target '{}'", target.name);
    }
    done
}

/// Why `wal fetch` did not produce the file.
#[derive(Debug)]
pub enum FetchError {
    /// No target has it: PostgreSQL's "not in archive".
    NotInArchive,
    Failed(anyhow::Error),
}

/// Restores one WAL file (`restore_command = 'vaultctl wal fetch %f %p'`),
/// writing `dest` atomically. Targets are tried in order.
pub fn fetch(repo: &WalRepo, name: &str, dest: &Path) -> std::result::Result<String, FetchError> {
    let object = object_path(&repo.source, name).map_err(FetchError::Failed)?;
    let mut errors = Vec::new();
    for s in &repo.stores {
        let s = match s {
            Ok(s) => s,
            Err((t, e)) => {
                errors.push(format!("{t}: {e}"));
                continue;
            }
        };
        match s.get(&object) {
            Ok(Some(bytes)) => {
                let r = (|| -> Result<()> {
                    let ids = identities(repo)?;
                    let max = WalFile::parse(name).map_or(MAX_SEGMENT_SIZE, |f| max_len(&f));
                    write_atomically(dest, |f| {
                        decode_to(&bytes, max, &repo.dedup, &ids, f)
                            .with_context(|| format!("{object} on target '{}'", s.name))
                            .map(|_| ())
                    })
                })();
                match r {
                    Ok(()) => return Ok(s.name.clone()),
                    Err(e) => {
                        tracing::warn!("{e:#}");
                        errors.push(format!("{}: {}", s.name, crate::error::paragraph(&e)));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => errors.push(format!("{}: {}", s.name, crate::error::paragraph(&e))),
        }
    }
    if errors.is_empty() {
        Err(FetchError::NotInArchive)
    } else {
        Err(FetchError::Failed(
            Failure::new(
                ExitStatus::Failure,
                format!("cannot fetch {name}: {}", errors.join("; ")),
            )
            .with_remedy("This is an error, not the end of the archive: fix the target or key, and restart recovery.")
            .into(),
        ))
    }
}

fn identities(repo: &WalRepo) -> Result<Vec<Identity>> {
    match &repo.identity_file {
        Some(p) if p.exists() => keys::load_identities(p),
        _ => Err(Failure::new(
            ExitStatus::Key,
            "wal fetch decrypts WAL and needs the identity, and none is available (keys.identity_file).",
        )
        .with_remedy("Run restores on a host with the identity, readable by the PostgreSQL server's user.")
        .into()),
    }
}

/// Writes `dest` through a temporary file in its directory (`write` fills
/// it), fsync and rename; on any error the temporary file is removed and
/// `dest` is untouched.
fn write_atomically(dest: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty());
    let tmp_name = format!(
        ".{}.vaultctl-{}.tmp",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("wal"),
        std::process::id()
    );
    let tmp = match dir {
        Some(d) => d.join(tmp_name),
        None => PathBuf::from(tmp_name),
    };
    let mut f = match std::fs::File::create(&tmp) {
        Ok(f) => f,
        Err(e) => return Err(anyhow::anyhow!("cannot write {}: {e}", dest.display())),
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut f);
    let written = write(&mut w).and_then(|()| Ok(w.flush()?));
    drop(w);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let r = f.sync_all().and_then(|()| std::fs::rename(&tmp, dest));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::anyhow!("cannot write {}: {e}", dest.display()));
    }
    Ok(())
}

/// One archived WAL object as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub file: WalFile,
    pub modified: time::OffsetDateTime,
    /// Stored (compressed, encrypted) size.
    pub size: u64,
}

/// Lists the WAL objects of `source` on a store.
pub fn list(store: &Store, source: &str) -> Result<Vec<Listed>> {
    let prefix = format!("{WAL_DIR}/{source}");
    let mut out: Vec<Listed> = store
        .list_detailed(&prefix)?
        .into_iter()
        .filter_map(|o| {
            let name = o.name.rsplit('/').next()?.to_string();
            let file = WalFile::parse(&name)?;
            let modified =
                time::OffsetDateTime::from_unix_timestamp_nanos(o.modified_ms as i128 * 1_000_000)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            Some(Listed {
                name,
                file,
                modified,
                size: o.size,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Missing segments between the first and last archived of each timeline:
/// (first missing, last missing).
pub fn gaps(objects: &[Listed], segment_size: u64) -> Vec<(String, String)> {
    let mut by_tli: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    for o in objects {
        if let WalFile::Segment { timeline, .. } = o.file {
            if let Some(n) = o.file.segno(segment_size) {
                by_tli.entry(timeline).or_default().insert(n);
            }
        }
    }
    let mut out = Vec::new();
    for (tli, segs) in by_tli {
        let mut prev: Option<u64> = None;
        for n in segs {
            if let Some(p) = prev {
                if n > p + 1 {
                    out.push((
                        segment_name(tli, p + 1, segment_size),
                        segment_name(tli, n - 1, segment_size),
                    ));
                }
            }
            prev = Some(n);
        }
    }
    out
}

/// Where the WAL a base backup needs starts. Kept in the backup's sealed
/// manifest header, so prune (which may hold only the dedup key) knows
/// which archived WAL its kept backups still need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WalStart {
    pub timeline: u32,
    /// The backup's start WAL location (`X/Y`).
    pub start_lsn: String,
}

/// The start segment of the oldest of `kept` base backups: the first WAL
/// segment any of them needs. `None` when there is none, or when one's
/// start is unknown (it could need anything).
pub fn first_needed(kept: &[WalStart], segment_size: u64) -> Option<String> {
    let starts: Option<Vec<String>> = kept
        .iter()
        .map(|k| segment_of_lsn(k.timeline, &k.start_lsn, segment_size))
        .collect();
    starts?
        .into_iter()
        .min_by_key(|n| WalFile::parse(n).and_then(|f| f.segno(segment_size)))
}

/// Retention for the WAL archive: given the base backups that retention
/// keeps and the WAL object names of their source, the names that may be
/// removed. A segment (or `.partial`/`.backup` file) may go when its
/// segment number is below the start segment of every kept backup, on any
/// timeline; `.history` files are always kept (they are tiny and recovery
/// needs the whole chain). With no kept backup nothing is removed.
pub fn removable(kept: &[WalStart], names: &[String], segment_size: u64) -> Vec<String> {
    let Some(oldest) =
        first_needed(kept, segment_size).and_then(|n| WalFile::parse(&n)?.segno(segment_size))
    else {
        return Vec::new();
    };
    names
        .iter()
        .filter(|n| {
            WalFile::parse(n)
                .and_then(|f| f.segno(segment_size))
                .is_some_and(|s| s < oldest)
        })
        .cloned()
        .collect()
}

/// The base backups of `source` that `store`'s retention keeps, decided as
/// `prune` decides (every manifest header on the store, the target's
/// policy), with where their WAL starts. `None` when all WAL must stay
/// there: no kept base backup, one whose start is unknown, or a manifest
/// that cannot be read (it may be an older base backup).
fn kept_starts(
    store: &Store,
    key: &DedupKey,
    policy: Option<&crate::repo::retention::Policy>,
    source: &str,
) -> Result<Option<Vec<WalStart>>> {
    use crate::repo::retention;
    let loaded = crate::repo::prune::HeaderCache::default().load(store, key)?;
    // A manifest that cannot be read, or is refused, may be an older base
    // backup: keep everything rather than decide without it.
    if !loaded.unreadable.is_empty() || !loaded.unbound.is_empty() {
        return Ok(None);
    }
    let headers = loaded.headers;
    let items: Vec<retention::Item> = headers.iter().map(retention::Item::of).collect();
    let decisions = retention::apply(policy, &items);
    let kept: Vec<Option<WalStart>> = headers
        .iter()
        .zip(decisions)
        .filter(|(h, d)| d.keep && h.source == source && h.kind == "postgres-physical")
        .map(|(h, _)| h.wal_start.clone())
        .collect();
    if kept.is_empty() {
        return Ok(None);
    }
    Ok(kept.into_iter().collect())
}

/// Copies WAL objects that a target lacks from a target that has them, but
/// only those the destination's own retention still keeps: WAL older than
/// the start of every base backup the destination keeps ([`removable`]
/// there, as `prune` computes it) is never copied back after prune removed
/// it. Returns (target, copied) per target.
pub fn sync(repo: &WalRepo, config: &Config) -> Result<Vec<(String, usize)>> {
    let stores: Vec<&Store> = repo.stores.iter().filter_map(|s| s.as_ref().ok()).collect();
    let mut have: Vec<BTreeMap<String, Listed>> = Vec::new();
    for s in &stores {
        have.push(
            list(s, &repo.source)?
                .into_iter()
                .map(|o| (o.name.clone(), o))
                .collect(),
        );
    }
    let all: BTreeSet<String> = have.iter().flat_map(|h| h.keys().cloned()).collect();
    // One segment size for the source, from a target that holds WAL. When it
    // cannot be proved, nothing is filtered: copying WAL a retention removed
    // only costs space, while a guessed size could withhold WAL a kept base
    // backup needs.
    let segment_size = stores
        .iter()
        .zip(&have)
        .find(|(_, h)| !h.is_empty())
        .and_then(|(s, h)| {
            let objects: Vec<Listed> = h.values().cloned().collect();
            match segment_size(s, &repo.source, &objects) {
                Ok(size) => size,
                Err(e) => {
                    tracing::warn!(
                        "the WAL segment size of source '{}' is not known, so wal sync copies every missing file: {}",
                        repo.source,
                        crate::error::paragraph(&e)
                    );
                    None
                }
            }
        });
    let mut report = Vec::new();
    for (i, s) in stores.iter().enumerate() {
        let missing: Vec<String> = all
            .iter()
            .filter(|n| !have[i].contains_key(*n))
            .cloned()
            .collect();
        let policy = config
            .targets
            .iter()
            .find(|t| t.name == s.name)
            .and_then(|t| t.retention.as_ref());
        let pruned: BTreeSet<String> = match segment_size {
            Some(size) if !missing.is_empty() => {
                match kept_starts(s, &repo.dedup, policy, &repo.source)? {
                    Some(starts) => removable(&starts, &missing, size).into_iter().collect(),
                    None => BTreeSet::new(),
                }
            }
            _ => BTreeSet::new(),
        };
        if !pruned.is_empty() {
            tracing::info!(
                "target '{}': not copying {} WAL file(s) older than its retention keeps (up to {})",
                s.name,
                pruned.len(),
                pruned.iter().next_back().map(String::as_str).unwrap_or("")
            );
        }
        let mut copied = 0;
        for name in missing.iter().filter(|n| !pruned.contains(*n)) {
            let obj = object_path(&repo.source, name)?;
            let from = stores
                .iter()
                .zip(&have)
                .find(|(_, h)| h.contains_key(name))
                .map(|(s, _)| *s)
                .expect("some target has it");
            if let Some(b) = from.get(&obj)? {
                runtime().block_on(s.put_if_absent_async(&obj, b))?;
                copied += 1;
            }
        }
        // Everything it needs is there now: nothing pending for this target.
        let _ = std::fs::remove_dir_all(repo.pending_dir(&s.name));
        let _ = std::fs::remove_file(repo.down_marker(&s.name));
        report.push((s.name.clone(), copied));
    }
    Ok(report)
}

/// When the newest archived WAL file of `source` was stored, over the
/// targets that answer (`None`: none holds any). Recovery cannot reach a
/// time after it: PostgreSQL stops with "recovery ended before configured
/// recovery target was reached". Reads only the newest segment directory
/// (the highest timeline and log), not a year of archive.
pub fn newest_archived(stores: &[Store], source: &str) -> Option<time::OffsetDateTime> {
    let top = format!("{WAL_DIR}/{source}");
    stores
        .iter()
        .filter_map(|s| {
            let (dirs, _) = s.list_level(&top).ok()?;
            let newest_dir = dirs.into_iter().max()?;
            let (_, objects) = s.list_level(&newest_dir).ok()?;
            objects.iter().map(|o| o.modified_ms).max()
        })
        .max()
        .and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok())
}

/// Slack for clock differences between the database server (whose clock
/// recovery targets use) and the storage (whose clock dates WAL objects).
pub const CLOCK_SLACK: time::Duration = time::Duration::seconds(60);

/// The segment size for showing gaps (`wal status`): the newest segment's
/// header, else 16 MiB. A display hint only; retention uses
/// [`segment_size`], which never guesses.
pub fn display_segment_size(store: &Store, source: &str, objects: &[Listed]) -> u64 {
    objects
        .iter()
        .rev()
        .find(|o| matches!(o.file, WalFile::Segment { partial: false, .. }))
        .and_then(|o| object_path(source, &o.name).ok())
        .and_then(|p| {
            runtime()
                .block_on(store.get_head_async(&p, HEADER_LEN))
                .ok()
                .flatten()
        })
        .and_then(|b| WalHeader::parse(&b).ok())
        .map(|h| h.raw_len)
        .filter(|n| n.is_power_of_two() && (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(n))
        .unwrap_or(DEFAULT_SEGMENT_SIZE)
}

/// The WAL segment size of `source` on a store, from the headers of its
/// newest and oldest complete segments (two ranged reads), which must agree,
/// be a size PostgreSQL makes, and fit every listed name. `Ok(None)`: no
/// complete segment is archived, so there is nothing to read it from. An
/// error when it cannot be known: a header unreadable or implausible, or
/// the two disagree. Never a guess: with the wrong size, retention would
/// compute the wrong segment numbers and delete WAL a kept backup needs.
pub fn segment_size(store: &Store, source: &str, objects: &[Listed]) -> Result<Option<u64>> {
    let mut segments = objects
        .iter()
        .filter(|o| matches!(o.file, WalFile::Segment { partial: false, .. }));
    let Some(oldest) = segments.next() else {
        return Ok(None);
    };
    let newest = segments.next_back().unwrap_or(oldest);
    let mut size = None;
    for o in [newest, oldest] {
        let path = object_path(source, &o.name)?;
        let head = runtime()
            .block_on(store.get_head_async(&path, HEADER_LEN))
            .with_context(|| {
                format!(
                    "cannot read the header of {path} on target '{}'",
                    store.name
                )
            })?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{path} vanished from target '{}' while it was read",
                    store.name
                )
            })?;
        let n = WalHeader::parse(&head)
            .with_context(|| format!("{path} on target '{}'", store.name))?
            .raw_len;
        if !(n.is_power_of_two() && (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&n)) {
            anyhow::bail!(
                "{path} on target '{}' records a length of {n} bytes, which is no WAL segment size",
                store.name
            );
        }
        if size.is_some_and(|s| s != n) {
            anyhow::bail!(
                "the segments of source '{source}' on target '{}' record different sizes ({} and {n} bytes)",
                store.name,
                size.unwrap_or_default()
            );
        }
        size = Some(n);
    }
    let size = size.expect("read at least one header");
    let per_log = 0x1_0000_0000u64 / size;
    if let Some(o) = objects.iter().find(|o| match o.file {
        WalFile::Segment { seg, .. } | WalFile::Backup { seg, .. } => seg as u64 >= per_log,
        WalFile::History { .. } => false,
    }) {
        anyhow::bail!(
            "the WAL file name {} of source '{source}' on target '{}' cannot exist with the {size}-byte segments its headers record",
            o.name,
            store.name
        );
    }
    Ok(Some(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(
            object_path("c", "000000010000000A000000FF").unwrap(),
            "wal/c/000000010000000A/000000010000000A000000FF"
        );
        assert_eq!(
            object_path("c", "00000002.history").unwrap(),
            "wal/c/00000002.history"
        );
        assert!(object_path("c", "../etc/passwd").is_err());
        assert!(object_path("c", "000000010000000A000000FF.00000028.backup").is_ok());
        assert!(object_path("c", "000000010000000A000000FF.partial").is_ok());
        let f = WalFile::parse("000000010000000A000000FF").unwrap();
        assert_eq!(f.segno(DEFAULT_SEGMENT_SIZE), Some(10 * 256 + 255));
        assert_eq!(
            segment_name(1, 10 * 256 + 255, DEFAULT_SEGMENT_SIZE),
            "000000010000000A000000FF"
        );
        assert_eq!(
            segment_of_lsn(1, "0/3000028", DEFAULT_SEGMENT_SIZE).unwrap(),
            "000000010000000000000003"
        );
    }

    #[test]
    fn encode_decode_and_identity() {
        let key = DedupKey::generate();
        let id = age::x25519::Identity::generate();
        let r = vec![Recipient::X25519(id.to_public())];
        let mut data = vec![0u8; 3 * 1024 * 1024];
        for (i, b) in data.iter_mut().enumerate().step_by(7) {
            *b = (i % 251) as u8;
        }
        let (obj, h) = encode(&data, &key, &r, 1).unwrap();
        assert!(obj.len() < data.len());
        assert_eq!(WalHeader::parse(&obj).unwrap(), h);
        let ids = vec![Identity::X25519(id)];
        assert_eq!(decode(&obj, &key, &ids).unwrap(), data);
        let (again, h2) = encode(&data, &key, &r, 1).unwrap();
        assert_eq!(h.id, h2.id);
        assert_ne!(obj, again, "age output is randomized");
        let mut bad = obj.clone();
        let n = bad.len() - 10;
        bad[n] ^= 1;
        assert!(decode(&bad, &key, &ids).is_err());
    }

    #[test]
    fn gaps_and_retention() {
        let mk = |n: &str| Listed {
            name: n.into(),
            file: WalFile::parse(n).unwrap(),
            modified: time::OffsetDateTime::UNIX_EPOCH,
            size: 0,
        };
        let objs = vec![
            mk("000000010000000000000001"),
            mk("000000010000000000000002"),
            mk("000000010000000000000005"),
            mk("00000002.history"),
            mk("000000020000000000000005"),
        ];
        assert_eq!(
            gaps(&objs, DEFAULT_SEGMENT_SIZE),
            vec![(
                "000000010000000000000003".to_string(),
                "000000010000000000000004".to_string()
            )]
        );
        let names: Vec<String> = objs.iter().map(|o| o.name.clone()).collect();
        let kept = vec![WalStart {
            timeline: 1,
            start_lsn: "0/2000028".into(),
        }];
        assert_eq!(
            removable(&kept, &names, DEFAULT_SEGMENT_SIZE),
            vec!["000000010000000000000001".to_string()]
        );
        assert!(removable(&[], &names, DEFAULT_SEGMENT_SIZE).is_empty());
    }
}
