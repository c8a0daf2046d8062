//! The table of contents of a plain dump: where its biggest COPY blocks
//! sit in the stream (`engine.toc` of a full backup's manifest, see
//! docs/FORMAT.md).
//!
//! Recorded at backup time by the [`super::dump::RowCounter`] that already
//! reads every COPY block as the dump streams by; read at restore time so
//! that the loader can start the biggest tables' rows at once, each from
//! its own reader at its offset, instead of when the one sequential stream
//! reaches them (the way `pg_restore -j` starts the biggest tables of its
//! table of contents first).
//!
//! A manifest is sealed with the repository key, but the TOC is still
//! treated as untrusted input: [`Toc::from_engine`] refuses entries that
//! overlap, are out of order or lie outside the stream, and the loader
//! checks each entry it uses against the stream itself (its `COPY` line of
//! that table at the offset, its `\.` line ending at offset + len) before
//! the restore is made visible.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::{ExitStatus, Failure};

/// Blocks smaller than this are not recorded: loading them from a side
/// reader could not win anything.
pub const MIN_BLOCK: u64 = 1 << 20;
/// At most this many blocks (the biggest) are recorded, so that the
/// manifest of a database with thousands of tables stays small; a restore
/// uses at most `jobs - 1` of them.
pub const MAX_BLOCKS: usize = 64;

/// One COPY block of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyBlock {
    /// `schema.name`, as in `row_counts`.
    pub table: String,
    /// The byte offset of its `COPY … FROM stdin;` line in the stream.
    pub offset: u64,
    /// Its length, from the `COPY` line through the `\.` line (with its
    /// newline).
    pub len: u64,
    pub rows: u64,
}

impl CopyBlock {
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// The recorded blocks, kept to the [`MAX_BLOCKS`] biggest of at least
/// `min` bytes.
#[derive(Debug, Default)]
pub struct Recorder {
    min: u64,
    blocks: Vec<CopyBlock>,
}

impl Recorder {
    pub fn new(min: u64) -> Recorder {
        Recorder {
            min,
            blocks: Vec::new(),
        }
    }

    pub fn add(&mut self, block: CopyBlock) {
        if block.len < self.min {
            return;
        }
        self.blocks.push(block);
        if self.blocks.len() >= 2 * MAX_BLOCKS {
            self.keep_biggest();
        }
    }

    fn keep_biggest(&mut self) {
        self.blocks
            .sort_by(|a, b| b.len.cmp(&a.len).then(a.offset.cmp(&b.offset)));
        self.blocks.truncate(MAX_BLOCKS);
    }

    /// The blocks kept, in stream order.
    pub fn blocks(&self) -> Vec<CopyBlock> {
        let mut r = Recorder {
            min: self.min,
            blocks: self.blocks.clone(),
        };
        r.keep_biggest();
        r.blocks.sort_by_key(|b| b.offset);
        r.blocks
    }
}

/// A checked table of contents of one stream: entries in stream order,
/// none empty, none overlapping another, all inside the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toc {
    pub blocks: Vec<CopyBlock>,
}

impl Toc {
    /// The TOC of a full backup's `engine` metadata, for its stream of
    /// `size` bytes: `None` when the manifest has none (written before it
    /// existed); an error when it is malformed.
    pub fn from_engine(engine: &serde_json::Value, size: u64) -> Result<Option<Toc>> {
        let Some(v) = engine.get("toc") else {
            return Ok(None);
        };
        let blocks: Vec<CopyBlock> = serde_json::from_value(v.clone())
            .map_err(|e| invalid(format!("it does not parse ({e})")))?;
        let mut prev_end = 0u64;
        for b in &blocks {
            let end = b
                .offset
                .checked_add(b.len)
                .ok_or_else(|| invalid(format!("the block of {} overflows", b.table)))?;
            if b.len == 0 || b.offset < prev_end || end > size {
                return Err(invalid(format!(
                    "the block of {} at bytes {}..{end} is empty, overlaps the one before or lies outside the {size}-byte stream",
                    b.table, b.offset
                )));
            }
            prev_end = end;
        }
        Ok(Some(Toc { blocks }))
    }

    /// The blocks worth loading from readers of their own at once: at
    /// least `min` bytes, the biggest first, at most `n`; in stream order.
    pub fn biggest(&self, n: usize, min: u64) -> Vec<CopyBlock> {
        let mut v: Vec<CopyBlock> = self
            .blocks
            .iter()
            .filter(|b| b.len >= min)
            .cloned()
            .collect();
        v.sort_by(|a, b| b.len.cmp(&a.len).then(a.offset.cmp(&b.offset)));
        v.truncate(n);
        v.sort_by_key(|b| b.offset);
        v
    }
}

/// A TOC that does not describe its stream.
pub fn invalid(what: String) -> anyhow::Error {
    Failure::new(
        ExitStatus::Failure,
        format!("the backup's table of contents (engine.toc of its manifest) does not match its dump stream: {what}."),
    )
    .with_remedy("Treat the backup as damaged or tampered with: run `vaultctl verify --read-data` and restore another backup; nothing was made visible.")
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(table: &str, offset: u64, len: u64) -> CopyBlock {
        CopyBlock {
            table: table.into(),
            offset,
            len,
            rows: 1,
        }
    }

    #[test]
    fn the_recorder_keeps_the_biggest_blocks_in_stream_order() {
        let mut r = Recorder::new(10);
        r.add(block("public.small", 0, 9));
        for i in 0..(3 * MAX_BLOCKS as u64) {
            r.add(block("public.t", 100 + i * 1000, 10 + i));
        }
        let b = r.blocks();
        assert_eq!(b.len(), MAX_BLOCKS);
        assert!(b.windows(2).all(|w| w[0].offset < w[1].offset));
        assert_eq!(b[0].len, 10 + 2 * MAX_BLOCKS as u64);
        assert_eq!(b.last().unwrap().len, 10 + 3 * MAX_BLOCKS as u64 - 1);
    }

    #[test]
    fn malformed_tables_of_contents_are_refused() {
        let engine = |v: serde_json::Value| serde_json::json!({ "toc": v });
        let ok =
            serde_json::to_value(vec![block("public.a", 10, 5), block("public.b", 15, 5)]).unwrap();
        let toc = Toc::from_engine(&engine(ok), 20).unwrap().unwrap();
        assert_eq!(toc.blocks.len(), 2);
        assert_eq!(toc.biggest(1, 0), vec![block("public.a", 10, 5)]);
        assert_eq!(toc.biggest(5, 6), vec![]);
        assert_eq!(Toc::from_engine(&serde_json::json!({}), 20).unwrap(), None);
        for bad in [
            vec![block("public.a", 10, 6), block("public.b", 15, 5)],
            vec![block("public.b", 15, 5), block("public.a", 10, 5)],
            vec![block("public.a", 10, 11)],
            vec![block("public.a", 10, 0)],
            vec![block("public.a", u64::MAX, 2)],
        ] {
            let v = engine(serde_json::to_value(&bad).unwrap());
            let e = Toc::from_engine(&v, 20).unwrap_err();
            assert!(e.to_string().contains("table of contents"), "{e}");
        }
        assert!(Toc::from_engine(&engine(serde_json::json!([{"table": 1}])), 20).is_err());
    }
}
