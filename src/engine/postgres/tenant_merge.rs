//! The one-pass tenant export: every table's rows, read once in one plain
//! COPY (unsorted, as cheap for the server as pg_dump), sorted here by
//! tenant (the tenant's position in the byte-ordered tenant list, then
//! stream position) in runs of bounded size spilled to an unnamed temporary
//! file, each run followed by its directory of tenant groups
//! ([`RunWriter`]), then read tenant by tenant, run after run
//! ([`Spill::take`]: each tenant's bytes copied from every run that holds
//! some, no row parsed again) into the same artifact bytes the per-tenant
//! export writes (a COPY block per table, in foreign-key order, for every
//! tenant).
//!
//! Memory is bounded whatever the number of tenants or rows: one run
//! buffer ([`RUN_BYTES`]) per table being read, then two read buffers per
//! run ([`MERGE_BUDGET`] per table for the rows).

use std::fs::File;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Result};

use crate::error::{ExitStatus, Failure};

/// Bytes of rows (with their sort entries) a [`RunWriter`] holds before it
/// sorts them and writes them out as one run.
pub const RUN_BYTES: usize = 8 << 20;

/// Read buffers of one table's runs while they are merged, in all.
pub const MERGE_BUDGET: usize = 4 << 20;

/// The value of field `index` (0-based) of one COPY text row (without or
/// with its trailing newline), unescaped: `None` for SQL NULL (`\N`) or a
/// row with fewer fields.
pub fn field(row: &[u8], index: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    field_into(row, index, &mut out).then_some(out)
}

/// [`field`] into `out` (cleared first): false for NULL or a missing field.
fn field_into(row: &[u8], index: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    let row = row.strip_suffix(b"\n").unwrap_or(row);
    let Some(raw) = row.split(|&b| b == b'\t').nth(index) else {
        return false;
    };
    if raw == b"\\N" {
        return false;
    }
    unescape_into(raw, out);
    true
}

/// Undoes COPY's text escapes: `\b \f \n \r \t \v \\`, `\NNN` (octal) and
/// `\xHH` (hex); any other escaped character stands for itself.
fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    if !raw.contains(&b'\\') {
        out.extend_from_slice(raw);
        return;
    }
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' || i == raw.len() {
            out.push(b);
            continue;
        }
        let e = raw[i];
        i += 1;
        match e {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + u32::from(raw[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + (raw[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
}

/// The tenants being exported, in byte order (the order of their
/// artifacts): runs are sorted by a row's tenant's position here.
pub type Tenants = Arc<TenantIds>;

/// Tenant ids in byte order, each once, and an open-addressing table from
/// each id's hash to its position: a row's tenant is found in about one
/// probe, checked against the id itself. Compact on purpose: every row of
/// every table is looked up here in stream order, so at random; with
/// 10,000 tenants a map of `String`s missed the cache three times a row
/// (bucket, `String`, bytes: two thirds of the sort's time, `perf
/// annotate`). Here a slot is 8 bytes (a hash tag and the position) and the
/// ids' bytes lie end to end.
pub struct TenantIds<S = IdHash> {
    ids: Vec<String>,
    /// Every id's bytes, end to end, in order.
    bytes: Vec<u8>,
    /// Where id `i` ends in `bytes` (it starts where `i - 1` ends).
    ends: Vec<u32>,
    /// `tag << 32 | (position + 1)`, 0 for an empty slot; a power of two of
    /// at least twice the ids.
    slots: Vec<u64>,
    hasher: S,
}

impl TenantIds {
    /// `ids` must be in byte order, each once.
    pub fn new(ids: Vec<String>) -> TenantIds {
        TenantIds::with_hasher(ids, IdHash::new())
    }
}

/// The hash of [`TenantIds`]: a multiply-and-fold over eight bytes at a
/// time with keys drawn for each export (as foldhash does), so ids chosen
/// to collide cannot be prepared in advance. std's SipHash cost 5 % of
/// the one-pass export's CPU (one lookup a row, `perf`); this is a
/// multiplication a word.
#[derive(Clone, Copy)]
pub struct IdHash {
    start: u64,
    key: u64,
}

impl IdHash {
    fn new() -> IdHash {
        let random = RandomState::new();
        IdHash {
            start: random.hash_one(1u8),
            // Odd: multiplying by it loses no bits.
            key: random.hash_one(2u8) | 1,
        }
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            state: self.start,
            key: self.key,
        }
    }
}

/// One hash of an [`IdHash`].
pub struct IdHasher {
    state: u64,
    key: u64,
}

/// The two halves of the 128-bit product of `a` and `b`, xored.
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl IdHasher {
    fn mix(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, self.key);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" apart from "a\0".
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        folded_multiply(self.state, self.key.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15)
    }
}

impl<S: BuildHasher> TenantIds<S> {
    fn with_hasher(ids: Vec<String>, hasher: S) -> TenantIds<S> {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let mut bytes = Vec::with_capacity(ids.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(ids.len());
        for id in &ids {
            bytes.extend_from_slice(id.as_bytes());
            ends.push(u32::try_from(bytes.len()).expect("tenant ids under 4 GiB in all"));
        }
        let mut slots = vec![0u64; (ids.len() * 2).next_power_of_two().max(16)];
        let mask = slots.len() - 1;
        for (i, id) in ids.iter().enumerate() {
            let h = hasher.hash_one(id.as_bytes());
            let mut at = h as usize & mask;
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = (h & TAG) | (i as u64 + 1);
        }
        TenantIds {
            ids,
            bytes,
            ends,
            slots,
            hasher,
        }
    }

    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The position of the tenant whose id is `key`.
    fn position(&self, key: &[u8]) -> Option<u32> {
        let h = self.hasher.hash_one(key);
        let mask = self.slots.len() - 1;
        let mut at = h as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            if slot & TAG == h & TAG {
                let i = (slot as u32 - 1) as usize;
                let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
                if &self.bytes[start..self.ends[i] as usize] == key {
                    return Some(i as u32);
                }
            }
            at = (at + 1) & mask;
        }
    }
}

/// The bits of a hash kept in a [`TenantIds`] slot beside the position.
const TAG: u64 = 0xffff_ffff_0000_0000;

impl Default for TenantIds {
    fn default() -> TenantIds {
        TenantIds::new(Vec::new())
    }
}

/// One table's spilled rows, read tenant by tenant: its sorted runs, each
/// with its directory of tenant groups ([`Group`]), so the merge copies each
/// tenant's bytes run after run without looking at a row.
pub struct Spill {
    name: String,
    runs: Vec<RunCursor>,
}

/// A run being read: its rows, its directory, and the group at its head.
struct RunCursor {
    rows: BufReader<RunRead>,
    groups: BufReader<RunRead>,
    /// The next group (its bytes left to copy); `None` once the run is done.
    head: Option<Group>,
}

/// The rows of one tenant in one run: consecutive there. Stored as 16
/// bytes after the run's rows (little-endian `tenant: u32, rows: u32,
/// bytes: u64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Group {
    /// The tenant's position in [`Tenants`].
    tenant: u32,
    rows: u32,
    bytes: u64,
}

const GROUP_BYTES: usize = 16;

impl Group {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tenant.to_le_bytes());
        out.extend_from_slice(&self.rows.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
    }

    fn decode(b: &[u8; GROUP_BYTES]) -> Group {
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Group {
            tenant: u32_at(0),
            rows: u32_at(4),
            bytes: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        }
    }
}

impl RunCursor {
    fn next_group(&mut self) -> std::io::Result<()> {
        let mut b = [0u8; GROUP_BYTES];
        self.head = match self.groups.read_exact(&mut b) {
            Ok(()) => Some(Group::decode(&b)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(e) => return Err(e),
        };
        Ok(())
    }
}

impl Spill {
    /// The sorted `runs` of `file`, read side by side.
    fn from_runs(name: String, file: File, runs: &[Run]) -> Result<Spill> {
        let file = Arc::new(file);
        let capacity = (MERGE_BUDGET / runs.len().max(1)).clamp(8 * 1024, 256 * 1024);
        let reader = |capacity: usize, (pos, end): (u64, u64)| {
            BufReader::with_capacity(
                capacity,
                RunRead {
                    file: file.clone(),
                    pos,
                    end,
                },
            )
        };
        let mut cursors = Vec::with_capacity(runs.len());
        for r in runs {
            let mut c = RunCursor {
                rows: reader(capacity, r.rows),
                groups: reader(4 * 1024, r.groups),
                head: None,
            };
            c.next_group()?;
            cursors.push(c);
        }
        Ok(Spill {
            name,
            runs: cursors,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends the rows of tenant number `tenant` (its position in
    /// [`Tenants`]; asked in increasing order) to `out`, at most until it
    /// holds `limit` bytes, run after run (the order the rows came in),
    /// skipping the rows of smaller tenants not asked for. Returns the rows
    /// whose last byte was appended and whether this tenant's rows are done.
    pub fn take(&mut self, tenant: u32, out: &mut Vec<u8>, limit: usize) -> Result<(u64, bool)> {
        let mut rows = 0u64;
        for run in &mut self.runs {
            while let Some(g) = run.head {
                if g.tenant > tenant {
                    break;
                }
                if g.tenant < tenant {
                    let skipped =
                        std::io::copy(&mut (&mut run.rows).take(g.bytes), &mut std::io::sink())?;
                    if skipped != g.bytes {
                        return Err(anyhow!(
                            "the spill file of {} is shorter than written",
                            self.name
                        ));
                    }
                    run.next_group()?;
                    continue;
                }
                let room = limit.saturating_sub(out.len());
                if room == 0 {
                    return Ok((rows, false));
                }
                let n = g.bytes.min(room as u64) as usize;
                let at = out.len();
                out.resize(at + n, 0);
                run.rows.read_exact(&mut out[at..])?;
                if n as u64 == g.bytes {
                    rows += u64::from(g.rows);
                    run.next_group()?;
                } else {
                    run.head = Some(Group {
                        bytes: g.bytes - n as u64,
                        ..g
                    });
                }
            }
        }
        Ok((rows, true))
    }
}

/// An unnamed temporary file in `dir` (created if missing).
pub fn spill_file(dir: &Path) -> Result<File> {
    let failed = |e: std::io::Error| {
        anyhow::Error::new(
            Failure::new(
                ExitStatus::Failure,
                format!(
                    "the tenant export cannot spill its tables in {}: {e}.",
                    dir.display()
                ),
            )
            .with_remedy("Make that directory (beside the catalog) writable with room for the text of the tenant tables, or back up a few tenants with --tenant ID."),
        )
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    // Unnamed: nothing is left behind, whatever happens.
    tempfile::tempfile_in(dir).map_err(failed)
}

/// Sorts one table's COPY text rows by tenant (the position in [`Tenants`]
/// of the unescaped tenant field, then the order the rows came in) with
/// bounded memory: rows gather in a buffer of about [`RUN_BYTES`]; a full
/// buffer is sorted and appended to the spill file as one run, followed by
/// its directory of tenant groups. Rows whose tenant is NULL, missing or
/// not one of the tenants are dropped.
pub struct RunWriter {
    name: String,
    field: usize,
    limit: usize,
    tenants: Tenants,
    out: BufWriter<File>,
    /// The bytes of the run being gathered (and a partial row at the end).
    rows: Vec<u8>,
    /// Where the partial row at the end of `rows` starts.
    complete: usize,
    entries: Vec<Entry>,
    runs: Vec<Run>,
    written: u64,
    key: Vec<u8>,
    groups: Vec<u8>,
}

/// One gathered row: its tenant's position and its bytes in `rows`.
struct Entry {
    tenant: u32,
    start: usize,
    end: usize,
}

/// Where one sorted run lies in the spill file: its rows, then its groups.
#[derive(Debug, Clone, Copy)]
struct Run {
    rows: (u64, u64),
    groups: (u64, u64),
}

impl RunWriter {
    /// Rows of table `name` (its tenant column at `field`) into `file`,
    /// from its current position, in runs of about `limit` bytes.
    /// `tenants` must be in byte order, each once.
    pub fn new(
        name: String,
        file: File,
        field: usize,
        tenants: Tenants,
        limit: usize,
    ) -> RunWriter {
        RunWriter {
            name,
            field,
            limit: limit.max(1),
            tenants,
            out: BufWriter::with_capacity(256 * 1024, file),
            rows: Vec::new(),
            complete: 0,
            entries: Vec::new(),
            runs: Vec::new(),
            written: 0,
            key: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Appends COPY output (whole rows, or rows cut anywhere).
    pub fn push(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            // Whole rows of `data` while the run has room.
            let room = self.limit.saturating_sub(self.footprint());
            let take = match memchr::memchr_iter(b'\n', data)
                .map(|i| i + 1)
                .take_while(|&end| end <= room)
                .last()
            {
                Some(end) => end,
                // Not even one row fits: take one row when nothing is
                // gathered (a row larger than a run), else start a new run.
                None if self.complete == 0 => {
                    memchr::memchr(b'\n', data).map_or(data.len(), |i| i + 1)
                }
                None if memchr::memchr(b'\n', data).is_none() => data.len(),
                None => {
                    self.flush_run()?;
                    continue;
                }
            };
            self.rows.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.index_rows();
        }
        Ok(())
    }

    /// Bytes held for the run being gathered.
    fn footprint(&self) -> usize {
        self.rows.len() + self.entries.len() * std::mem::size_of::<Entry>()
    }

    /// Indexes the complete rows added to `rows`.
    fn index_rows(&mut self) {
        while let Some(nl) = memchr::memchr(b'\n', &self.rows[self.complete..]) {
            let (start, end) = (self.complete, self.complete + nl + 1);
            self.complete = end;
            if !field_into(&self.rows[start..end], self.field, &mut self.key) {
                continue;
            }
            if let Some(tenant) = self.tenants.position(&self.key) {
                self.entries.push(Entry { tenant, start, end });
            }
        }
    }

    /// Sorts the gathered rows and writes them as one run, then its
    /// groups; a partial row stays for the next.
    fn flush_run(&mut self) -> Result<()> {
        if !self.entries.is_empty() {
            // Stable: a tenant's rows keep the order they came in.
            self.entries.sort_by_key(|e| e.tenant);
            let start = self.written;
            self.groups.clear();
            let mut group: Option<Group> = None;
            for e in &self.entries {
                let row = &self.rows[e.start..e.end];
                self.out.write_all(row).map_err(write_failed)?;
                self.written += row.len() as u64;
                match group.as_mut() {
                    Some(g) if g.tenant == e.tenant && g.rows < u32::MAX => {
                        g.rows += 1;
                        g.bytes += row.len() as u64;
                    }
                    _ => {
                        if let Some(g) = group.take() {
                            g.encode(&mut self.groups);
                        }
                        group = Some(Group {
                            tenant: e.tenant,
                            rows: 1,
                            bytes: row.len() as u64,
                        });
                    }
                }
            }
            if let Some(g) = group {
                g.encode(&mut self.groups);
            }
            let rows_end = self.written;
            self.out.write_all(&self.groups).map_err(write_failed)?;
            self.written += self.groups.len() as u64;
            self.runs.push(Run {
                rows: (start, rows_end),
                groups: (rows_end, self.written),
            });
        }
        self.entries.clear();
        self.rows.drain(..self.complete);
        self.complete = 0;
        Ok(())
    }

    /// Writes the last run; the runs, to be read tenant by tenant, as a
    /// [`Spill`].
    pub fn finish(mut self) -> Result<Spill> {
        if self.complete != self.rows.len() {
            return Err(anyhow!("its COPY output ended within a row"));
        }
        self.flush_run()?;
        let name = std::mem::take(&mut self.name);
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| anyhow!("writing its spill file: {}", e.error()))?;
        file.flush().map_err(write_failed)?;
        Spill::from_runs(name, file, &self.runs)
    }
}

fn write_failed(e: std::io::Error) -> anyhow::Error {
    anyhow!("writing its spill file: {e}")
}

/// The bytes `range` of a file, read at their offsets (the file's own
/// position is not used, so several of these share one file).
struct RunRead {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for RunRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min((self.end - self.pos) as usize);
        if n == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..n], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the spill file is shorter than written",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasherDefault, Hasher};

    fn tenants(ids: &[&str]) -> Tenants {
        let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        v.sort();
        Arc::new(TenantIds::new(v))
    }

    /// The rows of tenant number `tenant`, taken a few bytes at a time.
    fn take_all(s: &mut Spill, tenant: u32) -> (String, u64) {
        let mut out = Vec::new();
        let mut n = 0;
        loop {
            let limit = out.len() + 8;
            let (r, done) = s.take(tenant, &mut out, limit).unwrap();
            n += r;
            if done {
                return (String::from_utf8(out).unwrap(), n);
            }
        }
    }

    fn writer(field: usize, ids: &Tenants, limit: usize) -> RunWriter {
        RunWriter::new(
            "t".into(),
            tempfile::tempfile().unwrap(),
            field,
            ids.clone(),
            limit,
        )
    }

    /// Every row of `input` through a [`RunWriter`] with runs of `limit`
    /// bytes, fed in pieces of `piece` bytes, then every tenant's rows in
    /// turn: the stream, the rows counted, and how many runs it took.
    fn sorted(
        input: &[u8],
        field: usize,
        ids: &Tenants,
        limit: usize,
        piece: usize,
    ) -> (Vec<u8>, u64, usize) {
        let mut w = writer(field, ids, limit);
        for p in input.chunks(piece.max(1)) {
            w.push(p).unwrap();
        }
        let runs = w.runs.len() + usize::from(!w.entries.is_empty());
        let mut s = w.finish().unwrap();
        let (mut out, mut rows) = (Vec::new(), 0);
        for t in 0..ids.ids().len() as u32 {
            let (text, n) = take_all(&mut s, t);
            out.extend_from_slice(text.as_bytes());
            rows += n;
        }
        (out, rows, runs)
    }

    /// The order the runs must give: a stable sort by the unescaped tenant
    /// value, rows without one of `ids` dropped.
    fn reference(input: &[u8], field: usize, ids: &Tenants) -> Vec<u8> {
        let mut rows: Vec<(Vec<u8>, &[u8])> = input
            .split_inclusive(|&b| b == b'\n')
            .filter_map(|r| super::field(r, field).map(|k| (k, r)))
            .filter(|(k, _)| ids.ids().iter().any(|i| i.as_bytes() == k.as_slice()))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.into_iter().flat_map(|r| r.1.to_vec()).collect()
    }

    #[test]
    fn runs_sort_by_tenant_then_stream_order() {
        // Equal tenants keep their order; NULL tenants, short rows and
        // tenants not listed ("zz") are dropped; escapes sort by their
        // value ("b\tc" < "bb", "\101" is "A").
        let input = b"1\tbb\tx\n2\ta\ty\n3\t\\N\tz\n4\tbb\tw\n5\tb\\tc\tv\n6\n7\t\\101\tu\n8\ta\tt\n9\tzz\ts\n";
        let want = b"7\t\\101\tu\n2\ta\ty\n8\ta\tt\n5\tb\\tc\tv\n1\tbb\tx\n4\tbb\tw\n";
        let ids = tenants(&["a", "bb", "b\tc", "A", "c"]);
        assert_eq!(reference(input, 1, &ids), want.to_vec());
        for limit in [1, 10, 30, 64, 1 << 20] {
            for piece in [1, 3, 7, 1 << 20] {
                let (out, rows, _) = sorted(input, 1, &ids, limit, piece);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(want),
                    "limit {limit}, piece {piece}"
                );
                assert_eq!(rows, 6);
            }
        }
    }

    #[test]
    fn a_tenant_whose_rows_span_runs_comes_out_whole_and_in_order() {
        // 200 rows over 5 tenants, in pseudo-random order; runs of a few
        // hundred bytes: every tenant's rows are in many runs.
        let mut x: u64 = 42;
        let mut input = Vec::new();
        for i in 0..200 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let t = ["acme", "b", "\\N", "zed", "émile"][(x >> 33) as usize % 5];
            input.extend_from_slice(
                format!("{i}\t{t}\tpayload {}\n", "x".repeat(i % 17)).as_bytes(),
            );
        }
        let ids = tenants(&["acme", "b", "zed", "émile"]);
        let want = reference(&input, 1, &ids);
        for limit in [100, 700, 5000] {
            let (out, rows, runs) = sorted(&input, 1, &ids, limit, 13);
            assert!(runs > 1, "limit {limit}: {runs} runs");
            assert_eq!(out, want, "limit {limit}");
            assert_eq!(rows as usize, want.iter().filter(|&&b| b == b'\n').count());
        }
        let mut w = writer(1, &ids, 300);
        w.push(&input).unwrap();
        let mut s = w.finish().unwrap();
        let (acme, n) = take_all(&mut s, 0);
        assert!(n > 0);
        let mut seen = Vec::new();
        for r in acme.lines() {
            assert_eq!(r.split('\t').nth(1), Some("acme"));
            seen.push(r.split('\t').next().unwrap().parse::<u32>().unwrap());
        }
        assert_eq!(seen.len() as u64, n);
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "stream order: {seen:?}"
        );
    }

    #[test]
    fn a_row_larger_than_a_run_is_a_run_of_its_own() {
        let big = format!("1\tb\t{}\n", "y".repeat(1000));
        let input = format!("2\tc\tz\n{big}3\ta\tx\n");
        let ids = tenants(&["a", "b", "c"]);
        let (out, rows, runs) = sorted(input.as_bytes(), 1, &ids, 64, 100);
        assert_eq!((rows, runs), (3, 3));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("3\ta\tx\n{big}2\tc\tz\n")
        );
    }

    #[test]
    fn no_rows_and_a_cut_row() {
        let ids = tenants(&["a", "b"]);
        assert_eq!(sorted(b"", 1, &ids, 64, 1), (Vec::new(), 0, 0));
        assert_eq!(sorted(b"1\t\\N\n", 1, &ids, 64, 1), (Vec::new(), 0, 0));
        let mut w = writer(1, &ids, 64);
        w.push(b"1\ta\n2\tb").unwrap();
        let e = w.finish().err().unwrap();
        assert!(e.to_string().contains("within a row"), "{e}");
    }

    #[test]
    fn fields_are_unescaped() {
        assert_eq!(field(b"1\tacme\tx\n", 1).unwrap(), b"acme");
        assert_eq!(field(b"1\tacme", 1).unwrap(), b"acme");
        assert_eq!(field(b"a\\tb\tc", 0).unwrap(), b"a\tb");
        assert_eq!(
            field(b"\\\\x\\n\\r\\b\\f\\v\\101\\x41\\q", 0).unwrap(),
            b"\\x\n\r\x08\x0c\x0bAAq"
        );
        assert_eq!(field(b"1\t\\N\tz\n", 1), None);
        // A literal backslash-N is escaped as \\N, not NULL.
        assert_eq!(field(b"\\\\N", 0).unwrap(), b"\\N");
        assert_eq!(field(b"1\t\tz", 1).unwrap(), b"");
        assert_eq!(field(b"1\t2", 5), None);
        // Multi-byte UTF-8 passes through.
        assert_eq!(
            field("x\tzürich\n".as_bytes(), 1).unwrap(),
            "zürich".as_bytes()
        );
    }

    #[test]
    fn tenants_not_asked_for_are_skipped_and_empty_ones_are_empty() {
        // Two runs; tenant 0 ("a") is never asked for.
        let ids = tenants(&["a", "b\tc", "bb", "bc", "c", "d"]);
        let mut w = writer(1, &ids, 40);
        w.push(
            b"1\ta\tx\n2\tb\\tc\ty\n3\tbb\tz\n4\tbb\tw\n5\tc\tv\n6\t\\N\tu\n7\ta\tq\n8\tbb\tr\n",
        )
        .unwrap();
        let mut s = w.finish().unwrap();
        assert!(s.runs.len() > 1, "{} runs", s.runs.len());
        assert_eq!(take_all(&mut s, 1), ("2\tb\\tc\ty\n".into(), 1));
        assert_eq!(
            take_all(&mut s, 2),
            ("3\tbb\tz\n4\tbb\tw\n8\tbb\tr\n".into(), 3)
        );
        // A tenant with no rows between two with rows.
        assert_eq!(take_all(&mut s, 3), (String::new(), 0));
        assert_eq!(take_all(&mut s, 4), ("5\tc\tv\n".into(), 1));
        assert_eq!(take_all(&mut s, 5), (String::new(), 0));
    }

    #[test]
    fn byte_order_not_collation_order() {
        // Byte order: "B" < "a" < "b" < "é" (0xC3...).
        let ids = tenants(&["é", "b", "a", "B"]);
        assert_eq!(ids.ids(), ["B", "a", "b", "é"]);
        let mut w = writer(1, &ids, 1 << 20);
        w.push("4\té\n3\tb\n1\tB\n2\ta\n".as_bytes()).unwrap();
        let mut s = w.finish().unwrap();
        for (t, row) in ["1\tB\n", "2\ta\n", "3\tb\n", "4\té\n"].iter().enumerate() {
            assert_eq!(take_all(&mut s, t as u32).0, *row);
        }
    }

    #[test]
    fn the_limit_splits_a_tenants_rows() {
        let ids = tenants(&["a"]);
        let mut w = writer(1, &ids, 1 << 20);
        w.push(b"1\ta\n2\ta\n3\ta\n").unwrap();
        let mut s = w.finish().unwrap();
        let mut out = Vec::new();
        // Cut within the first row: no row is complete yet.
        let (n, done) = s.take(0, &mut out, 2).unwrap();
        assert_eq!((n, done, out.as_slice()), (0, false, &b"1\t"[..]));
        let (n, done) = s.take(0, &mut out, 1 << 20).unwrap();
        assert_eq!((n, done), (3, true));
        assert_eq!(out, b"1\ta\n2\ta\n3\ta\n");
    }

    /// A hasher that gives every key the same hash: every lookup walks
    /// one probe chain.
    #[derive(Default)]
    struct Constant;

    impl Hasher for Constant {
        fn finish(&self) -> u64 {
            0x1234_5678_9abc_def0
        }

        fn write(&mut self, _: &[u8]) {}
    }

    /// Ids alike but for a digit or a byte of padding spread over the
    /// slots and the tags (a bad hash makes long probe chains: every row's
    /// lookup walks them).
    #[test]
    fn id_hash_spreads_similar_ids() {
        let hash = IdHash::new();
        let mut keys: Vec<Vec<u8>> = (0..100_000)
            .map(|i| format!("tenant-{i:05}").into_bytes())
            .collect();
        keys.extend([b"a".to_vec(), b"a\0".to_vec(), b"a\0\0\0\0\0\0\0".to_vec()]);
        let hashes: Vec<u64> = keys.iter().map(|k| hash.hash_one(k.as_slice())).collect();
        assert_eq!(hashes[0], hash.hash_one(b"tenant-00000".as_slice()));
        let mut tags: Vec<u64> = hashes.iter().map(|h| h & TAG).collect();
        tags.sort_unstable();
        tags.dedup();
        assert!(tags.len() > keys.len() - 10, "{} tags", tags.len());
        let mut load = vec![0u32; 1 << 18];
        for h in &hashes {
            load[*h as usize & ((1 << 18) - 1)] += 1;
        }
        let max = load.iter().max().unwrap();
        assert!(*max <= 8, "{max} ids in one slot");
        let n = hashes.len();
        let (a, pad1, pad7) = (hashes[n - 3], hashes[n - 2], hashes[n - 1]);
        assert!(a != pad1 && a != pad7 && pad1 != pad7);
        // Another export draws other keys.
        assert_ne!(
            IdHash::new().hash_one(b"tenant-00000".as_slice()),
            hashes[0]
        );
    }

    #[test]
    fn tenants_are_found_by_hash_and_along_a_probe_chain() {
        let ids = tenants(&["a", "b", "c", "acme"]);
        assert_eq!(ids.position(b"a"), Some(0));
        assert_eq!(ids.position(b"acme"), Some(1));
        assert_eq!(ids.position(b"c"), Some(3));
        assert_eq!(ids.position(b"d"), None);
        assert_eq!(ids.position(b""), None);
        // Every id with the same hash (and tag): found by its bytes along
        // the chain; a prefix, an extension or an unknown id is not.
        let ids: Vec<String> = ["", "a", "ab", "b", "tenant-00001"]
            .map(String::from)
            .into();
        let forced = TenantIds::with_hasher(ids, BuildHasherDefault::<Constant>::default());
        for (i, id) in ["", "a", "ab", "b", "tenant-00001"].iter().enumerate() {
            assert_eq!(forced.position(id.as_bytes()), Some(i as u32), "{id}");
        }
        for unknown in ["abc", "tenant-0000", "tenant-000011", "x"] {
            assert_eq!(forced.position(unknown.as_bytes()), None, "{unknown}");
        }
        // Many ids: the table grows, every one is found.
        let many: Vec<String> = (0..5000).map(|i| format!("t{i:05}")).collect();
        let ids = TenantIds::new(many.clone());
        assert!(ids.slots.len() >= 2 * many.len());
        for (i, id) in many.iter().enumerate() {
            assert_eq!(ids.position(id.as_bytes()), Some(i as u32));
        }
        assert_eq!(ids.position(b"t5000"), None);
    }

    #[test]
    fn groups_round_trip() {
        let g = Group {
            tenant: 70_000,
            rows: 3,
            bytes: 5 << 33,
        };
        let mut b = Vec::new();
        g.encode(&mut b);
        assert_eq!(b.len(), GROUP_BYTES);
        assert_eq!(Group::decode(b.as_slice().try_into().unwrap()), g);
    }
}
