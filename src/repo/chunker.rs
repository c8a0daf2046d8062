//! Content-defined chunking (FastCDC with normalized chunking).
//!
//! A gear hash rolls over the stream; a cut falls where its top bits are
//! zero, so an insertion changes only the chunks around it and tonight's dump
//! of a mostly unchanged database reuses yesterday's chunks. The gear table is
//! derived from the dedup key, so chunk sizes do not fingerprint known files.
//!
//! pg_dump awareness: a line starting with `COPY ` (the start of a table's
//! data) always starts a new chunk. Rows appended to one table then change
//! only that table's last chunk instead of also the next table's first one.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

/// Chunk size parameters, stored in the repository config: a repository
/// keeps the ones it was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min_size: usize,
    pub avg_size: usize,
    pub max_size: usize,
}

/// New repositories: 128 KiB / 512 KiB / 2 MiB. A night's churn re-stores
/// each changed region's chunk, and every table's last chunk (rows are
/// appended there): on bench.sh's stream the next night stores 41.2 MB
/// instead of 49.4 MB with 256 KiB / 1 MiB / 4 MiB (repositories created
/// before 2026-12-01), for 0.5 % more bytes in the first backup (still no
/// more than restic) and twice the blobs (about 1,700 a GB). 256 KiB
/// average chunks stored 37.6 MB but 1.5 % more in the first backup (more
/// than restic) with four times the blobs (README, Benchmarks).
impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 128 * 1024,
            avg_size: 512 * 1024,
            max_size: 2 * 1024 * 1024,
        }
    }
}

/// A forced cut is not taken for chunks smaller than this, so a stream full
/// of `COPY ` lines cannot explode into tiny chunks.
const FORCED_CUT_MIN: usize = 8 * 1024;
const FORCED_MARKER: &[u8] = b"\nCOPY ";

/// Splits a byte stream into content-defined chunks.
pub struct Chunker<R> {
    reader: R,
    params: ChunkerParams,
    gear: Box<[u64; 256]>,
    mask_small: u64,
    mask_large: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    finder: memchr::memmem::Finder<'static>,
    /// What the last search for [`FORCED_MARKER`] learnt, so that each byte
    /// is searched once (a search looks up to `max_size` ahead while a
    /// chunk is about `avg_size` long): positions in `buf`.
    marker: MarkerSearch,
}

/// The result of the last search for the forced-cut marker, in `buf`
/// positions: no marker lies within `from..to` and starts before `found`,
/// where one starts (none found: none lies within `from..to`). The default
/// (`0..0`) knows nothing, since a search never starts at 0.
#[derive(Debug, Clone, Copy, Default)]
struct MarkerSearch {
    from: usize,
    to: usize,
    found: Option<usize>,
}

pub fn gear_table(seed: &[u8; 32]) -> Box<[u64; 256]> {
    let mut bytes = [0u8; 256 * 8];
    blake3::Hasher::new_keyed(seed)
        .update(b"gear")
        .finalize_xof()
        .fill(&mut bytes);
    let mut table = Box::new([0u64; 256]);
    for (i, v) in table.iter_mut().enumerate() {
        *v = u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
    }
    table
}

/// A mask of the `bits` highest bits (they depend on the last 64 bytes).
fn top_mask(bits: u32) -> u64 {
    !0u64 << (64 - bits)
}

/// What a chunker leaves to the next artifact of a backup: its buffer (a
/// backup of 10,000 small artifacts maps, and unmaps with a TLB shootdown
/// on every core, its 4 MiB buffer once, not once per artifact) and its gear
/// table (derived from the key once, not once per artifact).
pub struct Spare {
    buf: Vec<u8>,
    gear: Box<[u64; 256]>,
}

impl Spare {
    pub fn new(seed: &[u8; 32]) -> Spare {
        Spare {
            buf: Vec::new(),
            gear: gear_table(seed),
        }
    }
}

impl<R: Read> Chunker<R> {
    pub fn new(reader: R, params: ChunkerParams, seed: &[u8; 32]) -> Self {
        Chunker::with_spare(reader, params, Spare::new(seed))
    }

    /// [`Chunker::new`] with what an earlier chunker of the same key gave
    /// back ([`Chunker::into_spare`]).
    pub fn with_spare(reader: R, params: ChunkerParams, spare: Spare) -> Self {
        let Spare { mut buf, gear } = spare;
        buf.resize(params.max_size * 2, 0);
        let bits = params.avg_size.next_power_of_two().trailing_zeros();
        Chunker {
            reader,
            params,
            gear,
            mask_small: top_mask(bits + 2),
            mask_large: top_mask(bits.saturating_sub(2).max(1)),
            buf,
            start: 0,
            end: 0,
            eof: false,
            finder: memchr::memmem::Finder::new(FORCED_MARKER),
            marker: MarkerSearch::default(),
        }
    }

    /// Closes the reader; the buffer and gear table, for
    /// [`Chunker::with_spare`].
    pub fn into_spare(self) -> Spare {
        Spare {
            buf: self.buf,
            gear: self.gear,
        }
    }

    /// Fills the buffer until it holds at least `max_size` bytes or the stream
    /// ends. The buffer is twice `max_size`, so the unread tail is moved to
    /// the front only when it no longer has room behind it.
    fn fill(&mut self) -> io::Result<()> {
        if self.end - self.start >= self.params.max_size || self.eof {
            return Ok(());
        }
        if self.start + self.params.max_size > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            // Positions moved: search afresh (once per max_size bytes).
            self.marker = MarkerSearch::default();
        }
        while self.end - self.start < self.params.max_size && !self.eof {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Where the first [`FORCED_MARKER`] that starts at or after `from`
    /// and ends by `to` starts (positions in `buf`), reusing what the last
    /// search learnt: the same answer as searching `buf[from..to]`.
    fn find_marker(&mut self, from: usize, to: usize) -> Option<usize> {
        let m = self.marker;
        let known = m.from <= from && from <= m.to;
        if known {
            if let Some(f) = m.found.filter(|&f| f >= from) {
                // The first marker at or after m.from, so also after `from`.
                return (f + FORCED_MARKER.len() <= to).then_some(f);
            }
        }
        // Nothing starts in from..m.to - len + 1 (a marker could straddle
        // the old window's end): search only the rest.
        let resume = if known && m.found.is_none() {
            (m.to + 1).saturating_sub(FORCED_MARKER.len()).max(from)
        } else {
            from
        };
        let found = self.finder.find(&self.buf[resume..to]).map(|i| i + resume);
        self.marker = MarkerSearch { from, to, found };
        found
    }

    /// Where the next chunk of `data` (`buf[start..end]`) ends.
    fn cut(&mut self) -> usize {
        let p = self.params;
        let n = self.end - self.start;
        let limit = n.min(p.max_size);
        let forced = if limit > FORCED_CUT_MIN {
            let from = self.start + FORCED_CUT_MIN - 1;
            self.find_marker(from, self.start + limit)
                .map(|i| i - self.start + 1)
        } else {
            None
        };
        let data = &self.buf[self.start..self.end];
        let limit = forced.unwrap_or(limit);
        if limit <= p.min_size {
            return limit;
        }
        let normal = p.avg_size.min(limit);
        let mut hash = 0u64;
        let mut i = p.min_size;
        while i < normal {
            hash = (hash << 1).wrapping_add(self.gear[data[i] as usize]);
            if hash & self.mask_small == 0 {
                return i + 1;
            }
            i += 1;
        }
        while i < limit {
            hash = (hash << 1).wrapping_add(self.gear[data[i] as usize]);
            if hash & self.mask_large == 0 {
                return i + 1;
            }
            i += 1;
        }
        limit
    }

    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.fill()?;
        if self.start == self.end {
            return Ok(None);
        }
        let len = self.cut();
        let chunk = self.buf[self.start..self.start + len].to_vec();
        self.start += len;
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ChunkerParams {
        ChunkerParams {
            min_size: 2048,
            avg_size: 8192,
            max_size: 32768,
        }
    }

    fn chunks(data: &[u8]) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(data, params(), &[7u8; 32]);
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch);
        }
        out
    }

    #[test]
    fn a_reused_spare_cuts_the_same_chunks() {
        // A buffer left full of an earlier artifact's bytes (and one of
        // the wrong size) changes nothing.
        let a: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let b: Vec<u8> = a.iter().rev().copied().take(90_000).collect();
        let mut spare = Spare::new(&[7u8; 32]);
        spare.buf = vec![0xAAu8; 100];
        for data in [&a, &b, &a] {
            let mut c = Chunker::with_spare(&data[..], params(), spare);
            let mut out = Vec::new();
            while let Some(ch) = c.next_chunk().unwrap() {
                out.push(ch);
            }
            assert_eq!(out, chunks(data));
            assert_eq!(out.concat(), *data);
            spare = c.into_spare();
        }
    }

    fn pseudo_random(n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        blake3::Hasher::new()
            .update(b"x")
            .finalize_xof()
            .fill(&mut out);
        out
    }

    #[test]
    fn reassembles_and_respects_bounds() {
        let data = pseudo_random(1_000_000);
        let cs = chunks(&data);
        assert_eq!(cs.concat(), data);
        for c in &cs[..cs.len() - 1] {
            assert!(c.len() >= 2048 && c.len() <= 32768, "{}", c.len());
        }
        let avg = data.len() / cs.len();
        assert!(avg > 4000 && avg < 20000, "avg {avg}");
    }

    #[test]
    fn insertion_changes_few_chunks() {
        let data = pseudo_random(1_000_000);
        let mut edited = data[..500_000].to_vec();
        edited.extend_from_slice(b"inserted row\n");
        edited.extend_from_slice(&data[500_000..]);
        let a: std::collections::HashSet<_> = chunks(&data).into_iter().collect();
        let b = chunks(&edited);
        let new = b.iter().filter(|c| !a.contains(*c)).count();
        assert!(new <= 3, "{new} new chunks");
    }

    /// The cuts of the original, uncached search: the forced-cut marker
    /// searched in the whole window (up to `max_size`) for every chunk.
    fn reference_cuts(data: &[u8], p: ChunkerParams, seed: &[u8; 32]) -> Vec<usize> {
        let gear = gear_table(seed);
        let bits = p.avg_size.next_power_of_two().trailing_zeros();
        let (small, large) = (top_mask(bits + 2), top_mask(bits.saturating_sub(2).max(1)));
        let mut cuts = Vec::new();
        let mut start = 0;
        while start < data.len() {
            let window = &data[start..];
            let mut limit = window.len().min(p.max_size);
            if limit > FORCED_CUT_MIN {
                if let Some(i) =
                    memchr::memmem::find(&window[FORCED_CUT_MIN - 1..limit], FORCED_MARKER)
                {
                    limit = i + FORCED_CUT_MIN;
                }
            }
            let mut len = limit;
            if limit > p.min_size {
                let mut hash = 0u64;
                for i in p.min_size..limit {
                    hash = (hash << 1).wrapping_add(gear[window[i] as usize]);
                    let mask = if i < p.avg_size.min(limit) {
                        small
                    } else {
                        large
                    };
                    if hash & mask == 0 {
                        len = i + 1;
                        break;
                    }
                }
            }
            start += len;
            cuts.push(start);
        }
        cuts
    }

    /// Reads at most 1000 bytes a call, so the chunker refills and moves
    /// its buffer often.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(out.len()).min(1000);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_marker_search_cache_cuts_where_a_full_search_does() {
        // COPY lines at every distance: closer than the forced-cut minimum,
        // around it, within a chunk, and further apart than max_size.
        let mut data = Vec::new();
        let mut gap = 1usize;
        let noise = pseudo_random(400_000);
        while data.len() < 3_000_000 {
            let at = (data.len() * 7) % (noise.len() - 70_000);
            data.extend_from_slice(&noise[at..at + gap % 70_000]);
            data.extend_from_slice(b"\nCOPY public.t (a) FROM stdin;\n");
            gap = gap * 3 / 2 + 97;
            if gap > 150_000 {
                gap = 13;
            }
        }
        for p in [
            params(),
            ChunkerParams {
                min_size: 1024,
                avg_size: 4096,
                max_size: 9000,
            },
        ] {
            let mut c = Chunker::new(Trickle(&data), p, &[7u8; 32]);
            let mut cuts = Vec::new();
            let mut at = 0;
            while let Some(ch) = c.next_chunk().unwrap() {
                at += ch.len();
                cuts.push(at);
            }
            assert_eq!(cuts, reference_cuts(&data, p, &[7u8; 32]), "{p:?}");
        }
    }

    #[test]
    fn copy_header_starts_a_chunk() {
        let mut data = pseudo_random(50_000);
        data.extend_from_slice(b"\nCOPY public.t (a) FROM stdin;\n");
        data.extend_from_slice(&pseudo_random(10_000));
        let large = ChunkerParams {
            min_size: 65536,
            avg_size: 262144,
            max_size: 1 << 20,
        };
        let mut c = Chunker::new(&data[..], large, &[7u8; 32]);
        let first = c.next_chunk().unwrap().unwrap();
        assert_eq!(
            first.len(),
            50_001,
            "the chunk ends right before the COPY line"
        );
        assert!(c
            .next_chunk()
            .unwrap()
            .unwrap()
            .starts_with(b"COPY public.t"));
    }
}
