//! External sort of fixed-size records: what prune needs to relate every
//! live blob to every index entry without holding either set in memory.
//!
//! An [`ExternalSorter`] keeps at most `run_len` records in memory; when
//! that buffer is full it sorts it, drops repeats and writes it to an
//! unnamed temporary file (`$TMPDIR`, gone when closed, even after a
//! crash). [`ExternalSorter::finish`] merges the runs into one ascending
//! stream of distinct records ([`Sorted`]). Memory: the buffer plus a small
//! read buffer per run, whatever the number of records; disk: the records'
//! size once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use anyhow::{Context, Result};

use super::pack::BlobId;

/// A record of fixed size that sorts by its bytes' meaning.
pub trait Record: Copy + Ord {
    const SIZE: usize;
    fn write_to(&self, out: &mut [u8]);
    fn read_from(bytes: &[u8]) -> Self;
}

impl Record for BlobId {
    const SIZE: usize = 32;
    fn write_to(&self, out: &mut [u8]) {
        out.copy_from_slice(self);
    }
    fn read_from(bytes: &[u8]) -> Self {
        let mut id = [0u8; 32];
        id.copy_from_slice(bytes);
        id
    }
}

/// A blob id with a number (prune: the slot of the pack that holds it).
impl Record for (BlobId, u32) {
    const SIZE: usize = 36;
    fn write_to(&self, out: &mut [u8]) {
        out[..32].copy_from_slice(&self.0);
        out[32..].copy_from_slice(&self.1.to_be_bytes());
    }
    fn read_from(bytes: &[u8]) -> Self {
        let mut n = [0u8; 4];
        n.copy_from_slice(&bytes[32..36]);
        (BlobId::read_from(&bytes[..32]), u32::from_be_bytes(n))
    }
}

/// Records kept in memory before a run goes to disk by default: 4.5 MB of
/// blob ids with a pack slot.
pub const RUN_LEN: usize = 1 << 17;

/// Read buffer of one run while merging.
const READ_BUF: usize = 64 * 1024;

/// Collects records in any order, with repeats; see the module docs.
pub struct ExternalSorter<T: Record> {
    buf: Vec<T>,
    run_len: usize,
    runs: Vec<File>,
}

impl<T: Record> ExternalSorter<T> {
    /// A sorter that writes a run every `run_len` records (at least 2).
    pub fn new(run_len: usize) -> Self {
        ExternalSorter {
            buf: Vec::new(),
            run_len: run_len.max(2),
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, record: T) -> Result<()> {
        if self.buf.len() == self.run_len {
            self.spill()?;
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(self.run_len);
        }
        self.buf.push(record);
        Ok(())
    }

    /// Runs written to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> Result<()> {
        self.buf.sort_unstable();
        self.buf.dedup();
        let file = tempfile::tempfile().context(
            "cannot create a temporary file for sorting (set TMPDIR to a writable directory with room)",
        )?;
        let mut out = BufWriter::with_capacity(READ_BUF, file);
        let mut rec = vec![0u8; T::SIZE];
        for r in &self.buf {
            r.write_to(&mut rec);
            out.write_all(&rec)
                .context("cannot write a temporary file for sorting (is TMPDIR full?)")?;
        }
        let mut file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .context("cannot write a temporary file for sorting (is TMPDIR full?)")?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.buf.clear();
        Ok(())
    }

    /// The records in ascending order, each once.
    pub fn finish(mut self) -> Result<Sorted<T>> {
        if self.runs.is_empty() {
            self.buf.sort_unstable();
            self.buf.dedup();
            return Sorted::new(Source::Memory(self.buf.into_iter()));
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
        self.buf = Vec::new();
        let mut readers: Vec<BufReader<File>> = self
            .runs
            .into_iter()
            .map(|f| BufReader::with_capacity(READ_BUF, f))
            .collect();
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(rec) = read_record::<T>(r)? {
                heap.push(Reverse((rec, i)));
            }
        }
        Sorted::new(Source::Runs { readers, heap })
    }
}

fn read_record<T: Record>(r: &mut BufReader<File>) -> Result<Option<T>> {
    let mut rec = [0u8; 64];
    let rec = &mut rec[..T::SIZE];
    match r.read_exact(rec) {
        Ok(()) => Ok(Some(T::read_from(rec))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e).context("cannot read a temporary file of the sort"),
    }
}

enum Source<T: Record> {
    Memory(std::vec::IntoIter<T>),
    Runs {
        readers: Vec<BufReader<File>>,
        heap: BinaryHeap<Reverse<(T, usize)>>,
    },
}

impl<T: Record> Source<T> {
    fn next(&mut self) -> Result<Option<T>> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::Runs { readers, heap } => {
                let Some(Reverse((rec, i))) = heap.pop() else {
                    return Ok(None);
                };
                if let Some(next) = read_record::<T>(&mut readers[i])? {
                    heap.push(Reverse((next, i)));
                }
                Ok(Some(rec))
            }
        }
    }
}

/// The sorted, distinct records, read one at a time with a look at the next.
pub struct Sorted<T: Record> {
    source: Source<T>,
    head: Option<T>,
}

impl<T: Record> Sorted<T> {
    fn new(mut source: Source<T>) -> Result<Self> {
        let head = source.next()?;
        Ok(Sorted { source, head })
    }

    /// The next record, without taking it.
    pub fn peek(&self) -> Option<&T> {
        self.head.as_ref()
    }

    /// Takes the next record.
    pub fn next_record(&mut self) -> Result<Option<T>> {
        let Some(current) = self.head.take() else {
            return Ok(None);
        };
        // Runs are distinct within themselves, not across: skip repeats.
        loop {
            match self.source.next()? {
                Some(r) if r == current => continue,
                other => {
                    self.head = other;
                    break;
                }
            }
        }
        Ok(Some(current))
    }
}

/// `items` sorted through runs on disk of two records each (for tests of
/// the passes over sorted streams).
#[cfg(test)]
pub(crate) fn sorted<T: Record>(items: &[T]) -> Sorted<T> {
    let mut s = ExternalSorter::new(2);
    for i in items {
        s.push(*i).unwrap();
    }
    s.finish().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> BlobId {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        b[31] = (n % 253) as u8;
        b
    }

    fn drain<T: Record>(mut s: Sorted<T>) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(r) = s.next_record().unwrap() {
            out.push(r);
        }
        out
    }

    #[test]
    fn in_memory_when_the_records_fit_one_run() {
        let mut s = ExternalSorter::new(100);
        for n in [5u32, 3, 9, 3, 1, 9] {
            s.push(id(n)).unwrap();
        }
        assert_eq!(s.runs(), 0);
        assert_eq!(drain(s.finish().unwrap()), vec![id(1), id(3), id(5), id(9)]);
        assert!(drain(ExternalSorter::<BlobId>::new(10).finish().unwrap()).is_empty());
    }

    #[test]
    fn runs_on_disk_merge_sorted_and_distinct_at_every_boundary() {
        // Run lengths around the record count: one full run exactly, one
        // record over, and many small runs; repeats inside and across runs.
        for run_len in [2usize, 3, 7, 64, 999, 1000, 1001] {
            let mut s = ExternalSorter::new(run_len);
            for round in 0..2u32 {
                for n in (0..500u32).rev() {
                    s.push(id(n * 2 + round % 2 * (n % 3 == 0) as u32)).unwrap();
                }
            }
            let mut want: Vec<BlobId> = (0..500u32)
                .flat_map(|n| [id(n * 2), id(n * 2 + (n % 3 == 0) as u32)])
                .collect();
            want.sort();
            want.dedup();
            assert_eq!(s.runs() > 0, run_len < 1000, "run_len {run_len}");
            let sorted = s.finish().unwrap();
            assert_eq!(sorted.peek(), Some(&want[0]));
            assert_eq!(drain(sorted), want, "run_len {run_len}");
        }
    }

    #[test]
    fn pairs_sort_by_id_then_number() {
        let mut s = ExternalSorter::new(2);
        for r in [
            (id(2), 7u32),
            (id(1), 9),
            (id(2), 3),
            (id(1), 9),
            (id(0), 1),
        ] {
            s.push(r).unwrap();
        }
        assert!(s.runs() > 0);
        assert_eq!(
            drain(s.finish().unwrap()),
            vec![(id(0), 1), (id(1), 9), (id(2), 3), (id(2), 7)]
        );
        let mut bytes = [0u8; 36];
        (id(7), 0x0102_0304).write_to(&mut bytes);
        assert_eq!(<(BlobId, u32)>::read_from(&bytes), (id(7), 0x0102_0304));
    }
}
