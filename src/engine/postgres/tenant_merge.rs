//! The one-pass tenant export: every table's rows, read once in one plain
//! COPY (unsorted, as cheap for the server as pg_dump), sorted here by the
//! tenant column (byte order, then stream position) in runs of bounded
//! size spilled to an unnamed temporary file ([`RunWriter`]), then merged
//! run by run ([`Spill::from_runs`]) and tenant by tenant into the same
//! artifact bytes the per-tenant export writes (a COPY block per table, in
//! foreign-key order, for every tenant).
//!
//! Memory is bounded whatever the number of tenants or rows: one run
//! buffer ([`RUN_BYTES`]) per table being read, then a read buffer per run
//! ([`MERGE_BUDGET`] per table) and the row at each run's head.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
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

/// One table's spilled rows (sorted by the tenant field, byte order) and
/// the row at its head.
pub struct Spill {
    name: String,
    reader: Box<dyn BufRead + Send>,
    field: usize,
    row: Vec<u8>,
    /// The head row's tenant (`None`: NULL); meaningless at the end.
    key: Option<Vec<u8>>,
    /// The last non-NULL tenant seen: the order is checked as the rows go by.
    last: Option<Vec<u8>>,
    eof: bool,
}

impl Spill {
    /// The rows of the sorted `runs` (byte ranges) of `file`, merged.
    pub fn from_runs(name: String, file: File, runs: &[(u64, u64)], field: usize) -> Result<Spill> {
        let file = Arc::new(file);
        let capacity = (MERGE_BUDGET / runs.len().max(1)).clamp(8 * 1024, 256 * 1024);
        let mut readers: Vec<BufReader<RunRead>> = runs
            .iter()
            .map(|&(pos, end)| {
                BufReader::with_capacity(
                    capacity,
                    RunRead {
                        file: file.clone(),
                        pos,
                        end,
                    },
                )
            })
            .collect();
        let reader: Box<dyn BufRead + Send> = if readers.len() == 1 {
            Box::new(readers.pop().expect("one run"))
        } else {
            Box::new(BufReader::with_capacity(
                MERGE_OUT,
                RunMerge::new(readers, field)?,
            ))
        };
        Spill::new(name, reader, field)
    }

    pub fn new(name: String, reader: Box<dyn BufRead + Send>, field: usize) -> Result<Spill> {
        let mut s = Spill {
            name,
            reader,
            field,
            row: Vec::new(),
            key: None,
            last: None,
            eof: false,
        };
        s.advance()?;
        Ok(s)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn advance(&mut self) -> Result<()> {
        self.row.clear();
        if self.reader.read_until(b'\n', &mut self.row)? == 0 {
            self.eof = true;
            self.key = None;
            return Ok(());
        }
        self.key = field(&self.row, self.field);
        if let Some(k) = &self.key {
            if self.last.as_ref().is_some_and(|l| l > k) {
                return Err(anyhow!(
                    "the rows of {} did not come in the tenant column's byte order; back up with --tenant per tenant instead",
                    self.name
                ));
            }
            self.last.clone_from(&self.key);
        }
        Ok(())
    }

    /// Appends the rows of `tenant` to `out` until it holds at least
    /// `limit` bytes, skipping rows of smaller tenants (not chosen, or not
    /// in the tenants table) and NULLs. Returns the rows appended and
    /// whether this tenant's rows are done.
    pub fn take(&mut self, tenant: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(u64, bool)> {
        let mut rows = 0;
        loop {
            if self.eof {
                return Ok((rows, true));
            }
            let order = match &self.key {
                None => Ordering::Less,
                Some(k) => k.as_slice().cmp(tenant),
            };
            match order {
                Ordering::Less => self.advance()?,
                Ordering::Equal => {
                    if out.len() >= limit {
                        return Ok((rows, false));
                    }
                    out.extend_from_slice(&self.row);
                    rows += 1;
                    self.advance()?;
                }
                Ordering::Greater => return Ok((rows, true)),
            }
        }
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

/// Sorts one table's COPY text rows by the tenant field (byte order of the
/// unescaped value, then the order the rows came in) with bounded memory:
/// rows gather in a buffer of about [`RUN_BYTES`]; a full buffer is sorted
/// and appended to the spill file as one run. Rows whose tenant is NULL
/// (or missing) belong to no tenant and are dropped.
pub struct RunWriter {
    name: String,
    field: usize,
    limit: usize,
    out: BufWriter<File>,
    /// The bytes of the run being gathered (and a partial row at the end).
    rows: Vec<u8>,
    /// Where the partial row at the end of `rows` starts.
    complete: usize,
    /// The run's tenant values, unescaped, one after another.
    keys: Vec<u8>,
    entries: Vec<Entry>,
    runs: Vec<(u64, u64)>,
    written: u64,
    key: Vec<u8>,
}

/// One gathered row: its bytes in `rows`, its tenant in `keys`.
struct Entry {
    row: (usize, usize),
    key: (usize, usize),
}

impl RunWriter {
    /// Rows of table `name` (its tenant column at `field`) into `file`,
    /// from its current position, in runs of about `limit` bytes.
    pub fn new(name: String, file: File, field: usize, limit: usize) -> RunWriter {
        RunWriter {
            name,
            field,
            limit: limit.max(1),
            out: BufWriter::with_capacity(256 * 1024, file),
            rows: Vec::new(),
            complete: 0,
            keys: Vec::new(),
            entries: Vec::new(),
            runs: Vec::new(),
            written: 0,
            key: Vec::new(),
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
        self.rows.len() + self.keys.len() + self.entries.len() * std::mem::size_of::<Entry>()
    }

    /// Indexes the complete rows added to `rows`.
    fn index_rows(&mut self) {
        while let Some(nl) = memchr::memchr(b'\n', &self.rows[self.complete..]) {
            let (start, end) = (self.complete, self.complete + nl + 1);
            self.complete = end;
            if field_into(&self.rows[start..end], self.field, &mut self.key) {
                let k = self.keys.len();
                self.keys.extend_from_slice(&self.key);
                self.entries.push(Entry {
                    row: (start, end),
                    key: (k, self.keys.len()),
                });
            }
        }
    }

    /// Sorts the gathered rows and writes them as one run; a partial row
    /// stays for the next.
    fn flush_run(&mut self) -> Result<()> {
        if !self.entries.is_empty() {
            let keys = &self.keys;
            self.entries.sort_unstable_by(|a, b| {
                keys[a.key.0..a.key.1]
                    .cmp(&keys[b.key.0..b.key.1])
                    .then(a.row.0.cmp(&b.row.0))
            });
            let start = self.written;
            for e in &self.entries {
                self.out
                    .write_all(&self.rows[e.row.0..e.row.1])
                    .map_err(|err| self.write_failed(err))?;
                self.written += (e.row.1 - e.row.0) as u64;
            }
            self.runs.push((start, self.written));
        }
        self.entries.clear();
        self.keys.clear();
        self.rows.drain(..self.complete);
        self.complete = 0;
        Ok(())
    }

    fn write_failed(&self, e: std::io::Error) -> anyhow::Error {
        anyhow!("writing its spill file: {e}")
    }

    /// Writes the last run; the rows, merged, as a [`Spill`].
    pub fn finish(mut self) -> Result<Spill> {
        if self.complete != self.rows.len() {
            return Err(anyhow!("its COPY output ended within a row"));
        }
        self.flush_run()?;
        let name = std::mem::take(&mut self.name);
        let file = self
            .out
            .into_inner()
            .map_err(|e| anyhow!("writing its spill file: {}", e.error()))?;
        Spill::from_runs(name, file, &self.runs, self.field)
    }
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

/// The rows of several sorted runs as one sorted stream: the smallest
/// tenant value first, ties to the earlier run (rows came in run order).
struct RunMerge {
    runs: Vec<BufReader<RunRead>>,
    /// Each run's head row (empty once the run is done).
    heads: Vec<Vec<u8>>,
    /// (tenant value of the head row, run) of every run not done.
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    field: usize,
    out: Vec<u8>,
    pos: usize,
}

impl RunMerge {
    fn new(runs: Vec<BufReader<RunRead>>, field: usize) -> Result<RunMerge> {
        let mut m = RunMerge {
            heads: vec![Vec::new(); runs.len()],
            heap: BinaryHeap::with_capacity(runs.len()),
            runs,
            field,
            out: Vec::new(),
            pos: 0,
        };
        for i in 0..m.runs.len() {
            m.advance(i, Vec::new())?;
        }
        Ok(m)
    }

    /// Reads run `i`'s next row into its head (its key into `key`, reused).
    fn advance(&mut self, i: usize, mut key: Vec<u8>) -> std::io::Result<()> {
        let head = &mut self.heads[i];
        head.clear();
        if self.runs[i].read_until(b'\n', head)? == 0 {
            return Ok(());
        }
        // Runs hold only rows with a tenant.
        if !field_into(head, self.field, &mut key) {
            return Err(std::io::Error::other("a spilled row lost its tenant"));
        }
        self.heap.push(Reverse((key, i)));
        Ok(())
    }
}

/// Merged rows come out in reads of about this size.
const MERGE_OUT: usize = 64 * 1024;

impl Read for RunMerge {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.out.len() {
            self.out.clear();
            self.pos = 0;
            while self.out.len() < MERGE_OUT {
                let Some(Reverse((key, i))) = self.heap.pop() else {
                    break;
                };
                self.out.extend_from_slice(&self.heads[i]);
                self.advance(i, key)?;
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spill(rows: &str, field: usize) -> Spill {
        Spill::new(
            "t".into(),
            Box::new(std::io::Cursor::new(rows.as_bytes().to_vec())),
            field,
        )
        .unwrap()
    }

    fn take_all(s: &mut Spill, tenant: &str) -> (String, u64) {
        let mut out = Vec::new();
        let mut n = 0;
        loop {
            // A few rows at a time.
            let limit = out.len() + 8;
            let (r, done) = s.take(tenant.as_bytes(), &mut out, limit).unwrap();
            n += r;
            if done {
                return (String::from_utf8(out).unwrap(), n);
            }
        }
    }

    /// Every row of `input` through a [`RunWriter`] with runs of `limit`
    /// bytes, fed in pieces of `piece` bytes: the merged stream, and how
    /// many runs it took.
    fn sorted(input: &[u8], field: usize, limit: usize, piece: usize) -> (Vec<u8>, usize) {
        let mut w = RunWriter::new("t".into(), tempfile::tempfile().unwrap(), field, limit);
        for p in input.chunks(piece.max(1)) {
            w.push(p).unwrap();
        }
        let runs = w.runs.len() + usize::from(!w.entries.is_empty());
        let mut s = w.finish().unwrap();
        let mut out = std::mem::take(&mut s.row);
        s.reader.read_to_end(&mut out).unwrap();
        (out, runs)
    }

    /// The order the runs must give: a stable sort by the unescaped tenant
    /// value, rows without one dropped.
    fn reference(input: &[u8], field: usize) -> Vec<u8> {
        let mut rows: Vec<(Vec<u8>, &[u8])> = input
            .split_inclusive(|&b| b == b'\n')
            .filter_map(|r| super::field(r, field).map(|k| (k, r)))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.into_iter().flat_map(|r| r.1.to_vec()).collect()
    }

    #[test]
    fn runs_sort_by_tenant_then_stream_order() {
        // Equal tenants keep their order; NULL tenants and short rows are
        // dropped; escapes sort by their value ("b\tc" < "bb", "\101" is "A").
        let input =
            b"1\tbb\tx\n2\ta\ty\n3\t\\N\tz\n4\tbb\tw\n5\tb\\tc\tv\n6\n7\t\\101\tu\n8\ta\tt\n";
        let want = b"7\t\\101\tu\n2\ta\ty\n8\ta\tt\n5\tb\\tc\tv\n1\tbb\tx\n4\tbb\tw\n";
        assert_eq!(reference(input, 1), want.to_vec());
        for limit in [1, 10, 30, 64, 1 << 20] {
            for piece in [1, 3, 7, 1 << 20] {
                let (out, _) = sorted(input, 1, limit, piece);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(want),
                    "limit {limit}, piece {piece}"
                );
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
        let want = reference(&input, 1);
        for limit in [100, 700, 5000] {
            let (out, runs) = sorted(&input, 1, limit, 13);
            assert!(runs > 1, "limit {limit}: {runs} runs");
            assert_eq!(out, want, "limit {limit}");
        }
        // Merged, the rows go tenant by tenant through `take`.
        let mut w = RunWriter::new("t".into(), tempfile::tempfile().unwrap(), 1, 300);
        w.push(&input).unwrap();
        let mut s = w.finish().unwrap();
        let (acme, n) = take_all(&mut s, "acme");
        assert!(n > 0);
        let mut seen = Vec::new();
        for r in acme.lines() {
            assert_eq!(r.split('\t').nth(1), Some("acme"));
            seen.push(r.split('\t').next().unwrap().parse::<u32>().unwrap());
        }
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "stream order: {seen:?}"
        );
    }

    #[test]
    fn a_row_larger_than_a_run_is_a_run_of_its_own() {
        let big = format!("1\tb\t{}\n", "y".repeat(1000));
        let input = format!("2\tc\tz\n{big}3\ta\tx\n");
        let (out, runs) = sorted(input.as_bytes(), 1, 64, 100);
        assert_eq!(runs, 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("3\ta\tx\n{big}2\tc\tz\n")
        );
    }

    #[test]
    fn no_rows_and_a_cut_row() {
        assert_eq!(sorted(b"", 1, 64, 1), (Vec::new(), 0));
        assert_eq!(sorted(b"1\t\\N\n", 1, 64, 1), (Vec::new(), 0));
        let mut w = RunWriter::new("t".into(), tempfile::tempfile().unwrap(), 1, 64);
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
    fn merge_takes_each_tenants_rows_and_skips_the_rest() {
        // Sorted by field 1; "aa" is not a chosen tenant, NULLs sort last.
        let mut s = spill(
            "1\taa\tx\n2\tb\\tc\ty\n3\tbb\tz\n4\tbb\tw\n5\tc\tv\n6\t\\N\tu\n",
            1,
        );
        assert_eq!(take_all(&mut s, "a"), (String::new(), 0));
        // Tenant "b\tc" (escaped in the row) sorts before "bb".
        assert_eq!(take_all(&mut s, "b\tc"), ("2\tb\\tc\ty\n".into(), 1));
        assert_eq!(take_all(&mut s, "bb"), ("3\tbb\tz\n4\tbb\tw\n".into(), 2));
        // A tenant with no rows between two with rows.
        assert_eq!(take_all(&mut s, "bc"), (String::new(), 0));
        assert_eq!(take_all(&mut s, "c"), ("5\tc\tv\n".into(), 1));
        assert_eq!(take_all(&mut s, "d"), (String::new(), 0));
    }

    #[test]
    fn byte_order_not_collation_order() {
        // Byte order: "B" < "a" < "b" < "é" (0xC3...).
        let mut s = spill("1\tB\n2\ta\n3\tb\n4\té\n", 1);
        for (t, row) in [
            ("B", "1\tB\n"),
            ("a", "2\ta\n"),
            ("b", "3\tb\n"),
            ("é", "4\té\n"),
        ] {
            assert_eq!(take_all(&mut s, t).0, row);
        }
    }

    #[test]
    fn a_row_out_of_order_fails() {
        let mut s = spill("1\tb\n2\ta\n", 1);
        let mut out = Vec::new();
        let e = s.take(b"b", &mut out, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("byte order"), "{e}");
    }

    #[test]
    fn the_limit_splits_a_tenants_rows() {
        let mut s = spill("1\ta\n2\ta\n3\ta\n", 1);
        let mut out = Vec::new();
        let (n, done) = s.take(b"a", &mut out, 1).unwrap();
        assert_eq!((n, done), (1, false));
        let (n, done) = s.take(b"a", &mut out, 1 << 20).unwrap();
        assert_eq!((n, done), (2, true));
        assert_eq!(out, b"1\ta\n2\ta\n3\ta\n");
    }
}
