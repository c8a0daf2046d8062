//! What a backup learns per artifact, kept out of memory until the manifest
//! and the catalog are written: a backup of 10,000 tenants has 10,000
//! artifacts, each with a name, a size, a BLAKE3 and its row counts per
//! table, which held in maps and JSON trees cost about 3 KB a tenant.
//!
//! [`ArtifactSpill`] and [`CountTable`] append fixed-layout records to a
//! spooled temporary file (in memory up to [`SPOOL_BYTES`], then an unnamed
//! file in `$TMPDIR`, gone when closed) and read them back one at a time
//! while the manifest body is serialized ([`Artifacts`], [`WithCounts`]:
//! the JSON is the same, byte for byte, as that of the structures they
//! replace) and again while the catalog records them as rows.

use std::cell::RefCell;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use anyhow::Result;
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use tempfile::SpooledTempFile;

use super::index::{entry_bytes, entry_from, IndexedPack, ENTRY_LEN};
use super::pack::BlobId;
use crate::error::{ExitStatus, Failure};

/// Records stay in memory up to this size, then go to an unnamed file.
pub const SPOOL_BYTES: usize = 1 << 20;

/// An append-only spool of records, read back from the start.
pub(super) struct Spool {
    out: BufWriter<SpooledTempFile>,
    /// What the records are, for the error when they cannot be written.
    what: &'static str,
}

impl Spool {
    pub(super) fn new(what: &'static str) -> Spool {
        Spool {
            out: BufWriter::with_capacity(64 * 1024, tempfile::spooled_tempfile(SPOOL_BYTES)),
            what,
        }
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let what = self.what;
        self.out.write_all(bytes).map_err(|e| unwritable(what, e))
    }

    /// A reader from the first record (ends the writes until the next
    /// [`Spool::write`], which appends after the last record again).
    fn reader(&mut self) -> Result<BufReader<&mut SpooledTempFile>> {
        let what = self.what;
        self.out.flush().map_err(|e| unwritable(what, e))?;
        let f = self.out.get_mut();
        f.seek(SeekFrom::Start(0))?;
        Ok(BufReader::with_capacity(64 * 1024, f))
    }

    fn rewind_to_end(&mut self) -> Result<()> {
        self.out.get_mut().seek(SeekFrom::End(0))?;
        Ok(())
    }
}

/// The spool could not go to its file (past [`SPOOL_BYTES`]).
fn unwritable(what: &str, e: std::io::Error) -> anyhow::Error {
    Failure::new(
        ExitStatus::Failure,
        format!("the backup cannot keep {what} in a temporary file in {}: {e}; nothing was committed.", std::env::temp_dir().display()),
    )
    .with_remedy("Set TMPDIR to a writable directory with room for them (about 100 bytes an artifact and 150 bytes a blob of the backup), then run the backup again.")
    .into()
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_text(r: &mut impl Read) -> std::io::Result<String> {
    let n = read_u64(r)? as usize;
    let mut b = vec![0u8; n];
    r.read_exact(&mut b)?;
    String::from_utf8(b).map_err(std::io::Error::other)
}

/// One finished artifact without its blob ids (those are the next
/// `chunks` ids of the backup's stream of ids).
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactRecord {
    pub name: String,
    pub format: String,
    pub size: u64,
    pub blake3: [u8; 32],
    pub chunks: u64,
}

/// The artifacts of a backup, in order.
pub struct ArtifactSpill {
    spool: Spool,
    len: usize,
}

impl Default for ArtifactSpill {
    fn default() -> Self {
        Self::new()
    }
}

impl ArtifactSpill {
    pub fn new() -> ArtifactSpill {
        ArtifactSpill {
            spool: Spool::new("its per-artifact records (names, sizes, row counts)"),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, a: &ArtifactRecord) -> Result<()> {
        let mut rec = Vec::with_capacity(a.name.len() + a.format.len() + 64);
        for text in [&a.name, &a.format] {
            rec.extend_from_slice(&(text.len() as u64).to_le_bytes());
            rec.extend_from_slice(text.as_bytes());
        }
        rec.extend_from_slice(&a.size.to_le_bytes());
        rec.extend_from_slice(&a.blake3);
        rec.extend_from_slice(&a.chunks.to_le_bytes());
        self.spool.write(&rec)?;
        self.len += 1;
        Ok(())
    }

    /// Calls `f` with every artifact in order (without its blob ids).
    pub fn for_each_record(
        &mut self,
        mut f: impl FnMut(&ArtifactRecord) -> Result<()>,
    ) -> Result<()> {
        self.read(None, |a, _| f(a))
    }

    /// Calls `f` with every artifact in order and its blob ids, read as
    /// they are used (`ids`: the backup's blob ids in stream order,
    /// `chunks` per artifact).
    pub fn for_each(
        &mut self,
        ids: &mut IdSpool,
        f: impl FnMut(&ArtifactRecord, &mut ArtifactIds<'_>) -> Result<()>,
    ) -> Result<()> {
        self.read(Some(ids), f)
    }

    /// Reads every record back; `ids`, when given, are cut into each
    /// artifact's blob ids (else it gets none).
    fn read(
        &mut self,
        ids: Option<&mut IdSpool>,
        mut f: impl FnMut(&ArtifactRecord, &mut ArtifactIds<'_>) -> Result<()>,
    ) -> Result<()> {
        let len = self.len;
        let mut r = self.spool.reader()?;
        let (mut id_reader, mut ids_left) = match ids {
            Some(ids) => (Some(ids.spool.reader()?), ids.len),
            None => (None, 0),
        };
        for _ in 0..len {
            let name = read_text(&mut r)?;
            let format = read_text(&mut r)?;
            let size = read_u64(&mut r)?;
            let mut blake3 = [0u8; 32];
            r.read_exact(&mut blake3)?;
            let chunks = read_u64(&mut r)?;
            let a = ArtifactRecord {
                name,
                format,
                size,
                blake3,
                chunks,
            };
            let mut blobs = ArtifactIds { r: None, left: 0 };
            if let Some(reader) = id_reader.as_mut() {
                if chunks > ids_left {
                    anyhow::bail!("the backup's blob list ends before its artifact {}", a.name);
                }
                ids_left -= chunks;
                blobs = ArtifactIds {
                    r: Some(reader),
                    left: chunks,
                };
            }
            f(&a, &mut blobs)?;
            // What `f` did not read belongs to this artifact all the same.
            while blobs.next_id()?.is_some() {}
        }
        drop(r);
        self.spool.rewind_to_end()
    }
}

/// A backup's blob ids in stream order, 32 bytes each, out of memory (a
/// 1 TB backup has two million, 64 MB as a `Vec`).
pub struct IdSpool {
    spool: Spool,
    len: u64,
}

impl Default for IdSpool {
    fn default() -> Self {
        Self::new()
    }
}

impl IdSpool {
    pub fn new() -> IdSpool {
        IdSpool {
            spool: Spool::new("its blob ids"),
            len: 0,
        }
    }

    pub fn push(&mut self, id: &BlobId) -> Result<()> {
        self.spool.write(id)?;
        self.len += 1;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One artifact's blob ids, read from the [`IdSpool`] as they are used.
pub struct ArtifactIds<'r> {
    r: Option<&'r mut dyn Read>,
    left: u64,
}

impl ArtifactIds<'_> {
    /// The ids not read yet.
    pub fn left(&self) -> u64 {
        self.left
    }

    pub fn next_id(&mut self) -> Result<Option<BlobId>> {
        let Some(r) = self.r.as_mut().filter(|_| self.left > 0) else {
            return Ok(None);
        };
        let mut id = [0u8; 32];
        r.read_exact(&mut id)?;
        self.left -= 1;
        Ok(Some(id))
    }
}

/// Blob ids written as a JSON array of hex strings, read as they are
/// written.
struct HexIds<'a, 'r>(RefCell<&'a mut ArtifactIds<'r>>);

impl Serialize for HexIds<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut ids = self.0.borrow_mut();
        let len = ids.left() as usize;
        serialize_hex_ids(s, Some(len), || ids.next_id())
    }
}

/// Writes the ids `next` yields as a JSON array of hex strings (no
/// string allocated per id: a backup writes millions).
pub(super) fn serialize_hex_ids<S: Serializer>(
    s: S,
    len: Option<usize>,
    mut next: impl FnMut() -> Result<Option<BlobId>>,
) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(len)?;
    let mut hex = [0u8; 64];
    while let Some(id) = next().map_err(|e| S::Error::custom(format!("{e:#}")))? {
        seq.serialize_element(hex32(&id, &mut hex))?;
    }
    seq.end()
}

/// A 32-byte id or digest as 64 lowercase hex digits in `buf`: no `String`
/// per id (a backup writes millions).
pub(crate) fn hex32<'b>(bytes: &[u8; 32], buf: &'b mut [u8; 64]) -> &'b str {
    hex::encode_to_slice(bytes, buf).expect("64 bytes for 32");
    std::str::from_utf8(buf).expect("hex is ASCII")
}

/// The packs a backup uploaded with their entries, out of memory in the
/// index object's own layout (45 bytes an entry, not 48 plus a `Vec` per
/// pack): read back in groups, each an index object and a catalog
/// transaction of bounded size.
pub struct PackSpool {
    spool: Spool,
    packs: usize,
}

impl Default for PackSpool {
    fn default() -> Self {
        Self::new()
    }
}

impl PackSpool {
    pub fn new() -> PackSpool {
        PackSpool {
            spool: Spool::new("the index entries of the packs it uploaded"),
            packs: 0,
        }
    }

    pub fn push(&mut self, pack: &IndexedPack) -> Result<()> {
        let mut raw = [0u8; 32];
        hex::decode_to_slice(&pack.name, &mut raw)
            .map_err(|_| anyhow::anyhow!("bad pack name {}", pack.name))?;
        let mut rec = Vec::with_capacity(36 + pack.entries.len() * ENTRY_LEN);
        rec.extend_from_slice(&raw);
        rec.extend_from_slice(&(pack.entries.len() as u32).to_le_bytes());
        for e in &pack.entries {
            rec.extend_from_slice(&entry_bytes(e));
        }
        self.spool.write(&rec)?;
        self.packs += 1;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.packs == 0
    }

    /// Calls `f` with the packs in order, in consecutive groups of at most
    /// `max_entries` entries (a pack with more makes a group of its own).
    pub fn for_each_group(
        &mut self,
        max_entries: usize,
        mut f: impl FnMut(&[IndexedPack]) -> Result<()>,
    ) -> Result<()> {
        let packs = self.packs;
        let mut r = self.spool.reader()?;
        let mut group: Vec<IndexedPack> = Vec::new();
        let mut entries = 0usize;
        for _ in 0..packs {
            let mut raw = [0u8; 36];
            r.read_exact(&mut raw)?;
            let count = u32::from_le_bytes(raw[32..].try_into().unwrap()) as usize;
            if !group.is_empty() && entries + count > max_entries {
                f(&group)?;
                group.clear();
                entries = 0;
            }
            let mut pack = IndexedPack {
                name: hex::encode(&raw[..32]),
                entries: Vec::with_capacity(count),
            };
            let mut e = [0u8; ENTRY_LEN];
            for _ in 0..count {
                r.read_exact(&mut e)?;
                pack.entries.push(entry_from(&e));
            }
            entries += count;
            group.push(pack);
        }
        if !group.is_empty() {
            f(&group)?;
        }
        drop(r);
        self.spool.rewind_to_end()
    }
}

/// A manifest body's `artifacts` ([`super::manifest::Artifact`]'s JSON),
/// read from the spill while it is serialized.
pub struct Artifacts<'a> {
    spill: RefCell<&'a mut ArtifactSpill>,
    ids: RefCell<&'a mut IdSpool>,
}

impl<'a> Artifacts<'a> {
    pub fn new(spill: &'a mut ArtifactSpill, ids: &'a mut IdSpool) -> Self {
        Artifacts {
            spill: RefCell::new(spill),
            ids: RefCell::new(ids),
        }
    }
}

impl Serialize for Artifacts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct One<'b, 'c> {
            name: &'b str,
            format: &'b str,
            size: u64,
            blake3: &'b str,
            blobs: HexIds<'b, 'c>,
        }
        let mut spill = self.spill.borrow_mut();
        let mut ids = self.ids.borrow_mut();
        let mut seq = s.serialize_seq(Some(spill.len()))?;
        let mut failed = None;
        let mut digest = [0u8; 64];
        let read = spill.for_each(&mut ids, |a, blobs| {
            let one = One {
                name: &a.name,
                format: &a.format,
                size: a.size,
                blake3: hex32(&a.blake3, &mut digest),
                blobs: HexIds(RefCell::new(blobs)),
            };
            seq.serialize_element(&one).map_err(|e| {
                failed = Some(e);
                anyhow::anyhow!("serializing")
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        read.map_err(|e| S::Error::custom(format!("{e:#}")))?;
        seq.end()
    }
}

/// Counts per key (a tenant) and column (a table), written as a JSON
/// object of objects `{key: {column: count}}` with the columns sorted.
/// The keys are not stored: they are given when serializing (a tenant
/// backup's tenants, in the order their artifacts were read).
pub struct CountTable {
    columns: Vec<String>,
    spool: Spool,
    len: usize,
}

impl CountTable {
    /// `columns`: the names of a record's counts, in record order.
    pub fn new(columns: Vec<String>) -> CountTable {
        CountTable {
            columns,
            spool: Spool::new("its row counts"),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The names of a record's counts, in record order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Appends one record: a count per column, in column order.
    pub fn push(&mut self, counts: &[u64]) -> Result<()> {
        anyhow::ensure!(
            counts.len() == self.columns.len(),
            "{} counts for {} columns",
            counts.len(),
            self.columns.len()
        );
        let mut rec = Vec::with_capacity(counts.len() * 8);
        for c in counts {
            rec.extend_from_slice(&c.to_le_bytes());
        }
        self.spool.write(&rec)?;
        self.len += 1;
        Ok(())
    }

    /// Calls `f` with every record in order: its position, the column
    /// names and its counts (in column order).
    pub fn for_each(
        &mut self,
        mut f: impl FnMut(usize, &[String], &[u64]) -> Result<()>,
    ) -> Result<()> {
        let mut r = self.spool.reader()?;
        let mut rec = vec![0u64; self.columns.len()];
        for i in 0..self.len {
            for c in rec.iter_mut() {
                *c = read_u64(&mut r)?;
            }
            f(i, &self.columns, &rec)?;
        }
        drop(r);
        self.spool.rewind_to_end()
    }

    /// Serializes the table as `{keys[i]: {column: count}}`.
    fn serialize_keyed<S: Serializer>(&mut self, keys: &[String], s: S) -> Result<S::Ok, S::Error> {
        if keys.len() != self.len {
            return Err(S::Error::custom(format!(
                "{} count records for {} keys",
                self.len,
                keys.len()
            )));
        }
        let mut sorted: Vec<usize> = (0..self.columns.len()).collect();
        sorted.sort_by(|&a, &b| self.columns[a].cmp(&self.columns[b]));
        sorted.dedup_by(|a, b| self.columns[*a] == self.columns[*b]);
        let columns = &self.columns;
        let n = columns.len();
        let mut r = self
            .spool
            .reader()
            .map_err(|e| S::Error::custom(format!("{e:#}")))?;
        let mut map = s.serialize_map(Some(keys.len()))?;
        let mut rec = vec![0u64; n];
        for key in keys {
            for c in rec.iter_mut() {
                *c = read_u64(&mut r).map_err(S::Error::custom)?;
            }
            let inner = Inner {
                columns,
                sorted: &sorted,
                counts: &rec,
            };
            map.serialize_entry(key, &inner)?;
        }
        drop(r);
        self.spool
            .rewind_to_end()
            .map_err(|e| S::Error::custom(format!("{e:#}")))?;
        map.end()
    }
}

struct Inner<'a> {
    columns: &'a [String],
    sorted: &'a [usize],
    counts: &'a [u64],
}

impl Serialize for Inner<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.sorted.len()))?;
        for &i in self.sorted {
            // A column named twice: its last count (as a map insert keeps).
            let last = (0..self.columns.len())
                .rev()
                .find(|&j| self.columns[j] == self.columns[i])
                .unwrap_or(i);
            map.serialize_entry(&self.columns[i], &self.counts[last])?;
        }
        map.end()
    }
}

/// A JSON object (`value`, e.g. a manifest's `engine`) with one more key
/// whose value is a [`CountTable`], placed where a `serde_json` object
/// (sorted keys) would put it. Without a table, `value` as it is.
pub struct WithCounts<'a> {
    value: &'a serde_json::Value,
    extra: Option<(&'a str, RefCell<&'a mut CountTable>, &'a [String])>,
}

impl<'a> WithCounts<'a> {
    pub fn new(value: &'a serde_json::Value) -> Self {
        WithCounts { value, extra: None }
    }

    /// `key` (e.g. `rows`) holds `table`, its records named by `keys`.
    pub fn with(mut self, key: &'a str, table: &'a mut CountTable, keys: &'a [String]) -> Self {
        self.extra = Some((key, RefCell::new(table), keys));
        self
    }
}

struct Keyed<'a, 'b>(&'b RefCell<&'a mut CountTable>, &'b [String]);

impl Serialize for Keyed<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.borrow_mut().serialize_keyed(self.1, s)
    }
}

impl Serialize for WithCounts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some((key, table, keys)) = &self.extra else {
            return self.value.serialize(s);
        };
        let empty = serde_json::Map::new();
        let object = match self.value {
            serde_json::Value::Object(o) => o,
            serde_json::Value::Null => &empty,
            _ => return Err(S::Error::custom("engine facts that are not an object")),
        };
        let others = object.iter().filter(|(k, _)| k.as_str() != *key);
        let mut map = s.serialize_map(Some(others.clone().count() + 1))?;
        let mut placed = false;
        for (k, v) in others {
            if !placed && k.as_str() > *key {
                map.serialize_entry(key, &Keyed(table, keys))?;
                placed = true;
            }
            map.serialize_entry(k, v)?;
        }
        if !placed {
            map.serialize_entry(key, &Keyed(table, keys))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn record(i: u64) -> ArtifactRecord {
        ArtifactRecord {
            name: format!("tenant-{i:05}"),
            format: "stream".into(),
            size: i * 1000,
            blake3: [i as u8; 32],
            chunks: i % 3,
        }
    }

    #[test]
    fn artifacts_read_back_in_order_with_their_ids_and_past_the_spool() {
        let mut spill = ArtifactSpill::new();
        let mut ids = Vec::new();
        let mut spooled = IdSpool::new();
        // Enough records and ids to leave memory for the file.
        for i in 0..40_000u64 {
            let r = record(i);
            for c in 0..r.chunks {
                let id = [(i + c) as u8; 32];
                ids.push(id);
                spooled.push(&id).unwrap();
            }
            spill.push(&r).unwrap();
        }
        assert!(ids.len() * 32 > SPOOL_BYTES);
        for pass in 0..2 {
            let mut n = 0u64;
            let mut at = 0usize;
            spill
                .for_each(&mut spooled, |a, blobs| {
                    assert_eq!(a, &record(n));
                    assert_eq!(blobs.left(), a.chunks);
                    // The second pass leaves its ids unread: the next
                    // artifact still gets its own.
                    if pass == 0 || n.is_multiple_of(2) {
                        let mut got = Vec::new();
                        while let Some(id) = blobs.next_id().unwrap() {
                            got.push(id);
                        }
                        assert_eq!(got, &ids[at..at + a.chunks as usize]);
                    }
                    at += a.chunks as usize;
                    n += 1;
                    Ok(())
                })
                .unwrap();
            assert_eq!(n, 40_000);
        }
        // Appending after a read goes after the last record.
        spill.push(&record(7)).unwrap();
        for _ in 0..record(7).chunks {
            spooled.push(&[7; 32]).unwrap();
        }
        let mut last = None;
        spill
            .for_each(&mut spooled, |a, _| {
                last = Some(a.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(last, Some(record(7)));
        // Fewer ids than the records need: an error, not a short list.
        assert!(spill.for_each(&mut IdSpool::new(), |_, _| Ok(())).is_err());
    }

    #[test]
    fn packs_read_back_in_groups_of_bounded_entries() {
        let pack = |n: usize, entries: usize| IndexedPack {
            name: hex::encode([n as u8; 32]),
            entries: (0..entries)
                .map(|e| crate::repo::pack::PackEntry {
                    id: [(n * 7 + e) as u8; 32],
                    flags: e as u8 & 1,
                    raw_len: 1000 + e as u32,
                    stored_len: 500 + e as u32,
                    offset: 64 * e as u32,
                })
                .collect(),
        };
        // Sizes 3, 4, 1, 9 (over the limit alone), 2, 2 with at most 5 a group.
        let packs: Vec<IndexedPack> = [3, 4, 1, 9, 2, 2]
            .iter()
            .enumerate()
            .map(|(n, &e)| pack(n, e))
            .collect();
        let mut spool = PackSpool::new();
        assert!(spool.is_empty());
        for p in &packs {
            spool.push(p).unwrap();
        }
        for _ in 0..2 {
            let mut groups: Vec<Vec<IndexedPack>> = Vec::new();
            spool
                .for_each_group(5, |g| {
                    groups.push(g.to_vec());
                    Ok(())
                })
                .unwrap();
            let sizes: Vec<Vec<usize>> = groups
                .iter()
                .map(|g| g.iter().map(|p| p.entries.len()).collect())
                .collect();
            assert_eq!(sizes, vec![vec![3], vec![4, 1], vec![9], vec![2, 2]]);
            assert_eq!(groups.concat(), packs);
        }
        // A name that is not a pack's: refused when spooled.
        let mut bad = pack(0, 1);
        bad.name = "zz".into();
        assert!(spool.push(&bad).is_err());
    }

    #[test]
    fn counts_serialize_as_the_nested_maps_they_replace() {
        let tables = vec![
            "public.tenants".to_string(),
            "public.orders".into(),
            "a.z".into(),
        ];
        let keys: Vec<String> = (0..50).map(|i| format!("t{i:03}")).collect();
        let mut table = CountTable::new(tables.clone());
        let mut maps: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            let counts: Vec<u64> = (0..3).map(|j| (i * 7 + j) as u64).collect();
            table.push(&counts).unwrap();
            maps.insert(
                k.clone(),
                tables.iter().cloned().zip(counts.iter().copied()).collect(),
            );
        }
        assert!(table.push(&[1]).is_err());
        let engine =
            serde_json::json!({"mode": "tenants", "database": "d", "tables": ["x"], "zz": 1});
        let mut old = engine.clone();
        old["rows"] = serde_json::to_value(&maps).unwrap();
        let streamed = WithCounts::new(&engine).with("rows", &mut table, &keys);
        assert_eq!(
            serde_json::to_string_pretty(&streamed).unwrap(),
            serde_json::to_string_pretty(&old).unwrap()
        );
        assert_eq!(serde_json::to_string(&streamed).unwrap(), old.to_string());
        // Keys that do not match the records: refused.
        let mut t = CountTable::new(vec!["a".into()]);
        t.push(&[1]).unwrap();
        let w = WithCounts::new(&engine).with("rows", &mut t, &[]);
        assert!(serde_json::to_string(&w).is_err());
        // No table: the value as it is.
        assert_eq!(
            serde_json::to_string(&WithCounts::new(&engine)).unwrap(),
            engine.to_string()
        );
    }
}
