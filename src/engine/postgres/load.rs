//! Loads a plain dump (or a tenant export) into PostgreSQL over the wire
//! protocol, without psql, on one or several connections.
//!
//! The stream is read once, in order, through the [`sqlscan`] scanner (via
//! [`filter::walk`]), which refuses every psql meta-command and reports where
//! statements end and where COPY data starts and stops. The loader cuts it
//! into pg_dump's three sections:
//!
//! * **pre-data** — every statement before the first COPY block (schemas,
//!   types, functions, tables, views…): run in order on the coordinating
//!   connection, each as it is read.
//! * **data** — each COPY block goes to `COPY … FROM STDIN` on one of
//!   `jobs` worker connections; a big one is cut at a row boundary past
//!   [`Tuning::segment`] bytes, but only when another connection is idle:
//!   the rest is its own `COPY … FROM STDIN` of the same table on that
//!   connection, so that the largest table does not load alone at the end,
//!   yet while every connection is busy a block keeps loading on its own
//!   (several COPYs into one table contend for its extension lock; a table
//!   is loaded once all its segments are). Statements pg_dump puts between the blocks
//!   (`setval`, large objects, `SET`) run in order on the coordinator.
//! * **post-data** — from the first other statement after the data on
//!   (indexes, constraints, triggers, foreign keys, policies, ACLs…):
//!   collected (schema text only, never rows), then run once the stream
//!   was read, scheduled like `pg_restore -j`: an index or key of a table
//!   starts once that table's COPY blocks (every segment) are loaded (while the workers
//!   still load other tables), a foreign key or a barrier once every block
//!   is; a run of consecutive index,
//!   unique/primary-key/check and foreign-key statements runs in parallel,
//!   each starting once every earlier statement of the run that touches one
//!   of its tables has finished (so a foreign key waits for the key of the
//!   table it references), except that indexes of one table build at once
//!   (their SHARE locks allow it; never beside an ALTER TABLE of that
//!   table), the statements on the biggest tables first; any other
//!   statement (a trigger, a policy, a grant, REFRESH
//!   MATERIALIZED VIEW…) is a barrier that runs alone, in dump order.
//!
//! **Parallel data with one sequential stream.** A block can only be read
//! after the one before it, so a worker that streamed straight from the
//! reader would keep the reader (and so every other worker) waiting. Each
//! segment is handed to an idle worker with a small queue
//! ([`Tuning::queue`] chunks of 1 MiB, default 4);
//! when the worker falls behind and the queue is full, the rest of the block
//! is spilled to an unlinked temporary file in the spill directory, which
//! the worker reads after the queued chunks while the reader moves on to the
//! next segment and the next idle worker. Memory stays at about
//! `jobs × 5 MiB`; disk at most `spill_limit` bytes at any time (past it the
//! reader waits for the worker instead of spilling), freed as workers
//! catch up. When every worker is busy the reader waits for one.
//!
//! **The biggest blocks first.** One sequential stream reaches its biggest
//! table wherever pg_dump wrote it (by name: often late), and that table
//! then loads alone, its indexes and foreign keys after it, while the
//! other connections idle. When the stream comes with a table of contents
//! ([`LoadOptions::side`], recorded at backup time: [`super::toc`]), the
//! biggest blocks (at least [`Tuning::side_block`] bytes, at most `jobs -
//! 1`) start at the first COPY block, each on a worker fed by a reader of
//! its own at the block's byte range, as `pg_restore -j` starts its
//! biggest tables first; the main reader goes on through the stream,
//! reading past those blocks (hashing and checking them, not loading them),
//! so the other tables load on the other connections and the post-data is
//! reached early: an index of a table starts once its rows are in, while
//! the big table still loads. See [`Loader::start_side_blocks`] for why
//! the whole-stream hash still covers every byte loaded.
//!
//! **Visibility.** With several jobs every statement commits on its own
//! connection, so the caller loads into a database nobody uses yet (a new
//! one, renamed into place only after [`load`] returned, which happens only
//! after the whole stream was read and its hash checked). With one job
//! ([`Transaction::Single`]) everything runs on one connection in one
//! transaction that is committed only after the end of the stream — the
//! way an existing empty database is restored.
//!
//! **Merges** ([`LoadOptions::merge`]) run none of the dump's statements
//! but its session settings: each COPY block goes into a staging table
//! (temporary tables of the one transaction, or unlogged tables in a schema
//! of the merge's own that the workers load in parallel), and the caller
//! applies the staged rows once every stream was read and checked
//! (`restore::merge`).
//!
//! The server reads the statements with the session settings the dump set
//! (each worker replays the dump's `SET`s and `set_config` calls before its
//! next job); `SET`s of settings the server does not know (a newer pg_dump)
//! are left out. Statements must be UTF-8 (the protocol client's encoding).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Result};
use bytes::Bytes;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TrySendError};
use futures::SinkExt;
use tokio_postgres::{Client, CopyInSink};

use super::filter::{self, CopyHeader, Event, FilterReport, RowFilter, TenantFilter};
use super::sqlscan::{self, Dropped};
use super::toc::{self, CopyBlock, Toc};
use super::{pg_error, quote_ident, ConnInfo, TableName};
use crate::error::{ExitStatus, Failure};
use crate::progress::Progress;
use crate::storage::runtime;

/// Rows are sent to the server in chunks of about this size.
const CHUNK: usize = 1 << 20;
/// How the parallel loader cuts and buffers COPY data (the config keys
/// `restore_segment_mib` and `restore_queue_chunks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// A COPY block is cut (at a row boundary) once its segment holds at
    /// least this many bytes of rows and another connection is idle; the
    /// rest is its own `COPY … FROM STDIN` on that connection, so that one
    /// big table does not load alone at the end.
    pub segment: u64,
    /// COPY blocks of at least this many bytes (in the stream's table of
    /// contents) start at once on connections of their own (0: never).
    pub side_block: u64,
    /// Chunks (of about 1 MiB) queued in memory per worker before the rest
    /// of a segment spills to disk; 0 spills every chunk.
    pub queue: usize,
    /// `maintenance_work_mem` of each connection of a parallel load, in
    /// MiB, for the index builds (0: the server's setting).
    pub maintenance_work_mem_mib: u64,
}

impl Tuning {
    /// The config's `restore_segment_mib`, `restore_side_block_mib`,
    /// `restore_queue_chunks` and `restore_maintenance_work_mem_mib`.
    pub fn of(config: &crate::config::Config) -> Tuning {
        Tuning {
            segment: config.restore_segment,
            side_block: config.restore_side_block,
            queue: config.restore_queue,
            maintenance_work_mem_mib: config.restore_maintenance_work_mem_mib,
        }
    }

    /// The session settings of every connection of a parallel load (run
    /// before the dump's own `SET`s, which never touch these).
    ///
    /// `synchronous_commit = off`: a parallel load commits each statement
    /// and each COPY segment on its own, and every commit would otherwise
    /// wait for its WAL to reach the disk. It is safe here because nothing
    /// a parallel load commits is visible or relied on until a later commit
    /// made with the server's own setting (on by default) on another
    /// connection: a full restore's `ALTER DATABASE … RENAME` into place,
    /// a merge's apply transaction. Flushing that commit's WAL flushes all
    /// the WAL written before it, the load's included; a crash before it
    /// leaves only the temporary database (or staging schema) that a
    /// failed restore leaves anyway.
    ///
    /// `maintenance_work_mem`: the sort memory of `CREATE INDEX` and of
    /// adding keys; the server's default (64 MB) makes big index builds
    /// sort on disk.
    pub(crate) fn session(&self) -> Vec<String> {
        let mut out = vec!["SET synchronous_commit = off".to_string()];
        if self.maintenance_work_mem_mib > 0 {
            out.push(format!(
                "SET maintenance_work_mem = '{}MB'",
                self.maintenance_work_mem_mib
            ));
        }
        out
    }
}

/// The default cap on spilled, not yet loaded COPY data.
pub const SPILL_LIMIT: u64 = 4 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    /// One connection, one transaction, committed after the end of the
    /// stream (into an existing database).
    Single,
    /// `jobs` worker connections, each statement committing on its own
    /// (into a new database that is renamed into place afterwards).
    Parallel { jobs: usize },
}

pub struct LoadOptions<'a> {
    pub transaction: Transaction,
    pub tenants: Option<&'a TenantFilter>,
    /// Where COPY data that workers have not taken yet is spilled.
    pub spill_dir: &'a Path,
    pub spill_limit: u64,
    /// A merge: the stream's rows go into staging tables (one per table
    /// and column list, reported in [`Loaded::staged`]), and nothing else
    /// of it runs but its session settings.
    pub merge: Option<Staging<'a>>,
    /// Reports the phases: pre-data (the schema's bytes), data (tables
    /// done of the tables the schema creates, and the COPY bytes sent to
    /// the server), post-data (statements done).
    pub progress: Option<Arc<dyn Progress>>,
    /// Segment size and queue depth of the parallel data phase.
    pub tuning: Tuning,
    /// The streams' size in total, when known: the data phase's total
    /// (less what the schema took), for its ETA.
    pub size: Option<u64>,
    /// The stream's table of contents and a reader of its byte ranges: the
    /// biggest COPY blocks start at once, each from its own reader (a
    /// parallel full load of one stream, no tenant filter).
    pub side: Option<SideBlocks<'a>>,
}

/// Opens bytes `offset .. offset + len` of the stream (each blob checked
/// against its id, not the whole stream's hash: the loader's own reader
/// checks that).
pub type RangeOpener<'a> = &'a dyn Fn(u64, u64) -> Result<Box<dyn BufRead + Send>>;

/// The biggest COPY blocks, read on the side (see the module doc).
pub struct SideBlocks<'a> {
    pub toc: Toc,
    pub open: RangeOpener<'a>,
}

/// A COPY block read and loaded on the side.
struct Side {
    block: CopyBlock,
    /// Its number in the load.
    number: u64,
}

/// Where a merge stages its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staging<'a> {
    /// Temporary tables of the one transaction ([`Transaction::Single`]),
    /// dropped at its end.
    Temp,
    /// Unlogged tables in this (new, empty) schema, loaded by the worker
    /// connections ([`Transaction::Parallel`]); the caller drops it.
    Schema(&'a str),
}

/// A merge's staging table: the rows of one table (with one column list).
#[derive(Debug, Clone)]
pub struct Staged {
    pub table: TableName,
    pub columns: Vec<String>,
    /// The staging table, quoted (and qualified with [`Staging::Schema`]).
    pub stage: String,
    pub rows: u64,
}

/// How long each phase took, and how the load ran.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Phases {
    pub jobs: usize,
    /// Pre-data: the schema before the first COPY block.
    pub schema_ms: u64,
    /// From the first COPY block until every block was loaded.
    pub data_ms: u64,
    /// Indexes, constraints, foreign keys, triggers, ACLs.
    pub post_data_ms: u64,
    /// After the load: a full restore's rename (or swap) into place; a
    /// merge's apply (the inserts, in one transaction).
    pub finalize_ms: u64,
    pub statements: u64,
    pub copy_blocks: u64,
    /// `COPY … FROM STDIN` jobs the blocks were loaded with: more than
    /// `copy_blocks` when big blocks were cut into segments.
    pub copy_segments: u64,
    /// COPY blocks started at once from readers of their own (the
    /// biggest, from the stream's table of contents).
    pub side_blocks: u64,
    /// COPY data written to the spill directory (in total).
    pub spilled_bytes: u64,
}

impl std::fmt::Display for Phases {
    /// `on 4 connections: schema 1.2s, data 30s (12 COPY blocks), …`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::humanize::duration_ms as d;
        write!(
            f,
            "on {} connection{}: schema {}, data {} ({} COPY blocks{}), indexes and constraints {}, finalize {}",
            self.jobs,
            if self.jobs == 1 { "" } else { "s" },
            d(self.schema_ms),
            d(self.data_ms),
            self.copy_blocks,
            match self.side_blocks {
                0 => String::new(),
                n => format!(", the {n} biggest started at once"),
            },
            d(self.post_data_ms),
            d(self.finalize_ms)
        )
    }
}

#[derive(Debug, Default)]
pub struct Loaded {
    pub filter: FilterReport,
    pub phases: Phases,
    /// A merge: the staging tables, in stream order.
    pub staged: Vec<Staged>,
    /// A selective merge: tables left out because they carry no tenant
    /// column.
    pub global: Vec<String>,
    /// The rows the server acknowledged per table (`schema.name`): the
    /// `COPY n` command tags of the table's COPY segments, summed. The
    /// server's own word on what it stored, at no cost (`dr run` checks
    /// against it instead of counting every table again).
    pub acknowledged: BTreeMap<String, u64>,
}

/// Loads the stream `reader` into `db`. Returns once the whole stream was
/// read (so its hash was checked) and every statement ran; on an error,
/// what was loaded so far is left to the caller (a rolled-back transaction
/// with [`Transaction::Single`], a database to drop otherwise).
pub fn load(reader: impl BufRead, db: &ConnInfo, opts: &LoadOptions<'_>) -> Result<Loaded> {
    let mut l = Loader::start(db, opts)?;
    l.feed(reader)?;
    l.finish()?;
    l.commit()
}

impl<'a, 'o> Loader<'a, 'o> {
    /// Connects (the coordinator, and the workers with
    /// [`Transaction::Parallel`]).
    pub(crate) fn start(db: &ConnInfo, opts: &'a LoadOptions<'o>) -> Result<Self> {
        let coord = db.connect()?;
        let known: std::collections::HashSet<String> =
            super::query(&coord, "SELECT lower(name) FROM pg_settings", &[])?
                .iter()
                .map(|r| r.get(0))
                .collect();
        let (pool, jobs) = match opts.transaction {
            Transaction::Single => {
                super::execute(&coord, "BEGIN")?;
                (None, 1)
            }
            Transaction::Parallel { jobs } => {
                let setup = opts.tuning.session();
                for sql in &setup {
                    super::execute(&coord, sql)?;
                }
                (
                    Some(Pool::start(db, jobs.max(1), &setup, opts.progress.clone())?),
                    jobs.max(1),
                )
            }
        };
        let mut l = Loader {
            coord,
            known,
            pool,
            jobs,
            opts,
            report: Loaded::default(),
            statements: Statements::default(),
            session: Arc::new(Vec::new()),
            seen_copy: false,
            post: Vec::new(),
            copy: None,
            inline: None,
            started: Instant::now(),
            data_started: None,
            table: String::new(),
            queue: opts.tuning.queue,
            blocks: 0,
            skip: false,
            stage: None,
            phase: None,
            offset: 0,
            tables_total: 0,
            tables_done: 0,
            created: Default::default(),
            post_ran: false,
            sizes: HashMap::new(),
            block_start: 0,
            consumed: Arc::new(AtomicU64::new(0)),
            line_start: 0,
            event_start: 0,
            side: Vec::new(),
            side_next: 0,
            side_reading: None,
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        l.report.phases.jobs = jobs;
        l.phase("restore: pre-data (schema)", None);
        Ok(l)
    }

    /// Reads one stream to its end (so its hash is checked). On an error
    /// the load is aborted (workers stopped, the transaction rolled back).
    pub(crate) fn feed(&mut self, reader: impl BufRead) -> Result<()> {
        let tenants = self.opts.tenants;
        let reader = Tally {
            inner: reader,
            consumed: self.consumed.clone(),
        };
        let walked = filter::walk(
            reader,
            // No psql reads the stream: an ambiguity psql could read
            // otherwise does not matter, every meta-command is still refused.
            sqlscan::Options { restricted: true },
            tenants,
            |ev| self.event(ev),
        );
        if let Err(e) = walked {
            self.abort();
            return Err(e);
        }
        Ok(())
    }

    /// After the last stream: waits for the data, runs the post-data
    /// statements. On an error the load is aborted.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if let Some(s) = self.side.get(self.side_next) {
            let e = toc::invalid(format!(
                "the stream has no COPY block of {} at byte {}",
                s.block.table, s.block.offset
            ));
            self.abort();
            return Err(e);
        }
        if let Err(e) = self.flush() {
            self.abort();
            return Err(e);
        }
        if !self.seen_copy {
            self.report.phases.schema_ms = self.started.elapsed().as_millis() as u64;
        }
        self.end_phase();
        Ok(())
    }

    /// The coordinating connection (with [`Transaction::Single`], inside
    /// the load's transaction).
    pub(crate) fn coord(&self) -> &Client {
        &self.coord
    }

    /// A merge's staging tables.
    pub(crate) fn staged(&self) -> &[Staged] {
        &self.report.staged
    }

    /// Commits the one transaction ([`Transaction::Single`]) and stops the
    /// workers.
    pub(crate) fn commit(self) -> Result<Loaded> {
        self.end(true)
    }

    /// Commits (`commit`) or rolls back the one transaction
    /// ([`Transaction::Single`]: a dry run's) and stops the workers.
    pub(crate) fn end(mut self, commit: bool) -> Result<Loaded> {
        if self.opts.transaction == Transaction::Single {
            super::execute(&self.coord, if commit { "COMMIT" } else { "ROLLBACK" })?;
        }
        if let Some(mut p) = self.pool.take() {
            for (t, n) in std::mem::take(&mut p.acknowledged) {
                *self.report.acknowledged.entry(t).or_default() += n;
            }
            p.stop();
        }
        Ok(self.report)
    }
}

/// Cuts the scanner's SQL lines into statements.
#[derive(Default)]
pub(crate) struct Statements {
    cur: Vec<u8>,
    first_line: u64,
}

impl Statements {
    /// Adds one SQL line (`ends`: the offsets just past each `;` that ends
    /// a statement on it) and calls `f` with each statement it completes
    /// (its text up to the `;`, and the line it starts on). Comment lines
    /// between statements are left out.
    pub(crate) fn push(
        &mut self,
        line: &[u8],
        ends: &[usize],
        line_no: u64,
        mut f: impl FnMut(&[u8], u64) -> Result<()>,
    ) -> Result<()> {
        let mut start = 0;
        for &e in ends {
            self.add(&line[start..e], line_no);
            f(&self.cur, self.first_line)?;
            self.cur.clear();
            start = e;
        }
        self.add(&line[start..], line_no);
        Ok(())
    }

    fn add(&mut self, part: &[u8], line_no: u64) {
        if self.cur.is_empty() {
            let t = part.trim_ascii_start();
            // Outside a statement `--` starts a comment to the end of line.
            if t.is_empty() || t.starts_with(b"--") {
                return;
            }
            self.first_line = line_no;
            self.cur.extend_from_slice(t);
        } else {
            self.cur.extend_from_slice(part);
        }
    }
}

/// Where a statement after the data belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Part of the data section (`setval`, large objects, session settings):
    /// runs in order with the data.
    Data,
    /// An index or a table constraint: may run in parallel with statements
    /// on other tables (the tables it locks).
    Tables(Vec<String>),
    /// Anything else: runs alone, in order.
    Barrier,
}

/// A statement that changes the session (`SET`, `RESET`, `set_config`):
/// every connection of the restore replays it.
pub(crate) fn is_session(sql: &str) -> bool {
    let s = sql.trim_start();
    if s.starts_with("SELECT pg_catalog.set_config(") {
        return true;
    }
    let mut w = s.split_ascii_whitespace().map(|w| w.to_ascii_uppercase());
    match (w.next().as_deref(), w.next().as_deref()) {
        (Some("RESET"), _) => true,
        (Some("SET"), Some(second)) => !matches!(second, "CONSTRAINTS" | "TRANSACTION" | "LOCAL"),
        _ => false,
    }
}

/// A possibly qualified name at the start of `s` (as `schema.name`, each
/// part unquoted), and the rest.
fn qualified_name(s: &str) -> Option<(String, &str)> {
    let (first, rest) = filter::ident(s)?;
    if let Some(r) = rest.strip_prefix('.') {
        let (second, r) = filter::ident(r)?;
        Some((format!("{first}.{second}"), r))
    } else {
        Some((format!("public.{first}"), rest))
    }
}

fn strip_word<'a>(s: &'a str, w: &str) -> Option<&'a str> {
    let s = s.trim_start();
    let head = s.get(..w.len())?;
    if head.eq_ignore_ascii_case(w)
        && s[w.len()..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || c == '(')
    {
        Some(&s[w.len()..])
    } else {
        None
    }
}

/// The table of a `CREATE [UNIQUE] INDEX name ON [ONLY] table …`, and the
/// rest of the statement.
fn index_on(s: &str) -> Option<(String, &str)> {
    let r = strip_word(s, "CREATE")?;
    let r = strip_word(r, "UNIQUE").unwrap_or(r);
    let r = strip_word(r, "INDEX")?;
    let (_, r) = filter::ident(r)?;
    let r = strip_word(r, "ON")?;
    qualified_name(strip_word(r, "ONLY").unwrap_or(r))
}

/// The key columns (or expressions) of a `CREATE INDEX`, 1 for any other
/// statement: a rough measure of how much more one index build of a table
/// sorts and compares than another (measured: a two-column index of a
/// table took 2–6 times as long as its one-column primary key).
fn key_columns(sql: &str) -> u64 {
    let Some((_, rest)) = index_on(sql.trim_start()) else {
        return 1;
    };
    let Some(open) = rest.find('(') else {
        return 1;
    };
    let (mut depth, mut n, mut quote) = (0u32, 1u64, None);
    for c in rest[open..].chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            (None, ',') if depth == 1 => n += 1,
            _ => {}
        }
    }
    n
}

/// Classifies a statement that comes after the first COPY block.
pub(crate) fn classify(sql: &str) -> Kind {
    let s = sql.trim_start();
    if is_session(s)
        || s.starts_with("SELECT pg_catalog.setval(")
        || s.starts_with("SELECT pg_catalog.lo_")
        || s.starts_with("SELECT pg_catalog.lowrite(")
    {
        return Kind::Data;
    }
    if strip_word(s, "CREATE").is_some() {
        return match index_on(s) {
            Some((t, _)) => Kind::Tables(vec![t]),
            None => Kind::Barrier,
        };
    }
    // ALTER TABLE [ONLY] table ADD CONSTRAINT name PRIMARY KEY | UNIQUE |
    // CHECK | EXCLUDE | FOREIGN KEY (…) REFERENCES other(…) …
    let Some(r) = strip_word(s, "ALTER").and_then(|r| strip_word(r, "TABLE")) else {
        return Kind::Barrier;
    };
    let r = strip_word(r, "ONLY").unwrap_or(r);
    let Some((table, r)) = qualified_name(r) else {
        return Kind::Barrier;
    };
    let Some(r) = strip_word(r, "ADD").and_then(|r| strip_word(r, "CONSTRAINT")) else {
        return Kind::Barrier;
    };
    let Some((_, r)) = filter::ident(r) else {
        return Kind::Barrier;
    };
    for w in ["PRIMARY", "UNIQUE", "CHECK", "EXCLUDE"] {
        if strip_word(r, w).is_some() {
            return Kind::Tables(vec![table]);
        }
    }
    if let Some(r) = strip_word(r, "FOREIGN").and_then(|r| strip_word(r, "KEY")) {
        // Skip the column list to REFERENCES.
        let Some(close) = r.find(')') else {
            return Kind::Barrier;
        };
        if let Some(r) = strip_word(&r[close + 1..], "REFERENCES") {
            if let Some((other, _)) = qualified_name(r) {
                return Kind::Tables(if other == table {
                    vec![table]
                } else {
                    vec![table, other]
                });
            }
        }
    }
    Kind::Barrier
}

/// A statement after the data, waiting for its turn.
struct Unit {
    sql: String,
    line: u64,
    /// None: a barrier.
    tables: Option<Vec<String>>,
}

impl Unit {
    /// Whether it may start while COPY blocks are still loading: an index
    /// or a key of tables whose own blocks are all loaded may; a foreign
    /// key may not (its check reads the referenced table, maybe through
    /// partitions still loading), nor may a barrier.
    fn ready(&self, pool: &Pool) -> bool {
        match &self.tables {
            None => pool.outstanding == 0,
            Some(_) if self.sql.contains("FOREIGN KEY") => pool.outstanding == 0,
            Some(t) => t.iter().all(|t| !pool.loading.contains_key(t)),
        }
    }
}

enum Msg {
    Data(Bytes),
    /// A spilled part of the block (unlinked, positioned at its start) and
    /// its size.
    Spill(File, u64),
    End,
    /// A side reader failed (or found its block not as the table of
    /// contents said): the segment fails with this error.
    Fail(anyhow::Error),
}

enum Job {
    Copy {
        /// The table loaded (`schema.name`, unquoted).
        table: String,
        /// The COPY block this segment belongs to (its number in the
        /// load).
        block: u64,
        sql: String,
        rx: Receiver<Msg>,
        session: Arc<Vec<String>>,
        /// Load with `FREEZE`: the `TRUNCATE` to run first in the
        /// segment's transaction, and the flag to set once it ran.
        freeze: Option<(String, Arc<std::sync::atomic::AtomicBool>)>,
    },
    Sql {
        id: usize,
        sql: String,
        line: u64,
        session: Arc<Vec<String>>,
    },
}

struct Done {
    /// The post-data unit (None: a COPY segment).
    id: Option<usize>,
    /// A COPY segment's table and block.
    copy: Option<(String, u64)>,
    result: Result<u64>,
}

struct Pool {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    spilled: Arc<AtomicU64>,
    /// Workers waiting for a job.
    idle: Arc<AtomicUsize>,
    handles: Vec<std::thread::JoinHandle<()>>,
    /// COPY segments handed out and not finished yet.
    outstanding: usize,
    /// COPY blocks finished: every segment loaded, the last one read.
    copies_done: u64,
    /// Tables with COPY segments handed out and not finished, and how many.
    loading: HashMap<String, usize>,
    /// Blocks not finished yet: their segments handed out and not
    /// finished, and whether the reader reached the block's end.
    blocks: HashMap<u64, (usize, bool)>,
    /// When the last COPY block finished.
    last_copy: Option<Instant>,
    /// The `COPY n` tags of the segments loaded, summed per table.
    acknowledged: BTreeMap<String, u64>,
    /// When the pool started: the timeline's zero (debug log).
    epoch: Instant,
}

impl Pool {
    fn start(
        db: &ConnInfo,
        n: usize,
        setup: &[String],
        progress: Option<Arc<dyn Progress>>,
    ) -> Result<Pool> {
        // Rendezvous: a job is handed over only to an idle worker.
        let (jobs_tx, jobs_rx) = bounded::<Job>(0);
        let (done_tx, done_rx) = unbounded::<Done>();
        let spilled = Arc::new(AtomicU64::new(0));
        let idle = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        let epoch = Instant::now();
        for i in 0..n {
            let client = db.connect()?;
            for sql in setup {
                super::execute(&client, sql)?;
            }
            let (rx, tx, sp) = (jobs_rx.clone(), done_tx.clone(), spilled.clone());
            let (progress, idle) = (progress.clone(), idle.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("vaultctl-load-{i}"))
                    .spawn(move || {
                        worker(
                            client,
                            rx,
                            tx,
                            sp,
                            idle,
                            progress,
                            Timeline { epoch, worker: i },
                        )
                    })?,
            );
        }
        Ok(Pool {
            jobs: Some(jobs_tx),
            done: done_rx,
            spilled,
            idle,
            handles,
            outstanding: 0,
            copies_done: 0,
            loading: HashMap::new(),
            blocks: HashMap::new(),
            last_copy: None,
            acknowledged: BTreeMap::new(),
            epoch,
        })
    }

    fn send(&mut self, job: Job) -> Result<()> {
        if let Job::Copy { table, block, .. } = &job {
            *self.loading.entry(table.clone()).or_default() += 1;
            self.blocks.entry(*block).or_default().0 += 1;
            self.outstanding += 1;
        }
        let tx = self.jobs.as_ref().expect("pool running");
        if tx.send(job).is_err() {
            return Err(self.failure());
        }
        Ok(())
    }

    /// The first error a worker reported (waiting for it when a worker has
    /// just stopped).
    fn failure(&mut self) -> anyhow::Error {
        self.jobs = None;
        while let Ok(d) = self.done.recv_timeout(std::time::Duration::from_secs(30)) {
            if let Err(e) = d.result {
                return e;
            }
        }
        anyhow!("the restore's worker connections stopped")
    }

    /// Takes the finished COPY blocks' reports; the first error.
    fn poll(&mut self) -> Result<()> {
        while let Ok(d) = self.done.try_recv() {
            self.finished(d)?;
        }
        Ok(())
    }

    fn finished(&mut self, d: Done) -> Result<()> {
        if let Some((t, block)) = &d.copy {
            self.outstanding -= 1;
            if let Some(n) = self.loading.get_mut(t) {
                *n -= 1;
                if *n == 0 {
                    self.loading.remove(t);
                }
            }
            if let Ok(rows) = &d.result {
                *self.acknowledged.entry(t.clone()).or_default() += rows;
                self.last_copy = Some(Instant::now());
                if let Some(b) = self.blocks.get_mut(block) {
                    b.0 -= 1;
                    if *b == (0, true) {
                        self.blocks.remove(block);
                        self.copies_done += 1;
                    }
                }
            }
        }
        d.result.map(|_| ())
    }

    /// The reader reached the end of `block`: it is done once its
    /// segments handed out are.
    fn close(&mut self, block: u64) {
        if let Some(b) = self.blocks.get_mut(&block) {
            b.1 = true;
            if b.0 == 0 {
                self.blocks.remove(&block);
                self.copies_done += 1;
            }
        }
    }

    /// Waits up to `timeout` for a COPY block handed out to be loaded.
    fn wait(&mut self, timeout: std::time::Duration) -> Result<()> {
        match self.done.recv_timeout(timeout) {
            Ok(d) => self.finished(d),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(()),
            Err(_) => Err(anyhow!("the restore's worker connections stopped")),
        }
    }

    fn stop(mut self) {
        self.jobs = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// A worker's place in the load's timeline (`-vv`: a debug line with the
/// seconds since the pool started for each job's start and end, to see
/// which connection loads or builds what, when).
struct Timeline {
    epoch: Instant,
    worker: usize,
}

impl Timeline {
    fn log(&self, what: std::fmt::Arguments<'_>) {
        tracing::debug!(
            "load +{:.3}s worker {}: {what}",
            self.epoch.elapsed().as_secs_f64(),
            self.worker
        );
    }
}

fn worker(
    client: Arc<Client>,
    jobs: Receiver<Job>,
    done: Sender<Done>,
    spilled: Arc<AtomicU64>,
    idle: Arc<AtomicUsize>,
    progress: Option<Arc<dyn Progress>>,
    timeline: Timeline,
) {
    let mut applied = 0;
    loop {
        idle.fetch_add(1, Ordering::SeqCst);
        let Ok(job) = jobs.recv() else { return };
        idle.fetch_sub(1, Ordering::SeqCst);
        let session = match &job {
            Job::Copy { session, .. } | Job::Sql { session, .. } => session.clone(),
        };
        let setup: Result<()> = session[applied.min(session.len())..]
            .iter()
            .try_for_each(|s| super::execute(&client, s));
        applied = session.len();
        let label = match &job {
            Job::Copy { table, block, .. } => format!("COPY {table} (block {block})"),
            Job::Sql { line, .. } => format!("statement on line {line}"),
        };
        match &job {
            Job::Copy { .. } => timeline.log(format_args!("{label} starts")),
            Job::Sql { sql, .. } => {
                timeline.log(format_args!("{label} starts: {}", first_line(sql)))
            }
        }
        let (id, copy, result) = match job {
            Job::Copy {
                table,
                block,
                sql,
                rx,
                freeze,
                ..
            } => (
                None,
                Some((table, block)),
                setup.and_then(|_| {
                    let Some((truncate, truncated)) = freeze else {
                        return copy_from(&client, &sql, &rx, &spilled, progress.as_deref());
                    };
                    // On an error the connection closes with the
                    // transaction open: the server rolls it back.
                    super::execute(&client, "BEGIN")?;
                    super::execute(&client, &truncate)?;
                    truncated.store(true, Ordering::SeqCst);
                    let n = copy_from(&client, &sql, &rx, &spilled, progress.as_deref())?;
                    super::execute(&client, "COMMIT")?;
                    Ok(n)
                }),
            ),
            Job::Sql { id, sql, line, .. } => (
                Some(id),
                None,
                setup.and_then(|_| run_statement(&client, &sql, line).map(|_| 0)),
            ),
        };
        let failed = result.is_err();
        match &result {
            Ok(n) if copy.is_some() => timeline.log(format_args!("{label} ends: {n} rows")),
            Ok(_) => timeline.log(format_args!("{label} ends")),
            Err(e) => timeline.log(format_args!("{label} failed: {e}")),
        }
        if done.send(Done { id, copy, result }).is_err() || failed {
            return;
        }
    }
}

/// Streams one COPY segment from the reader's queue (and spill files),
/// reporting the bytes sent to the server as progress.
fn copy_from(
    client: &Client,
    sql: &str,
    rx: &Receiver<Msg>,
    spilled: &AtomicU64,
    progress: Option<&dyn Progress>,
) -> Result<u64> {
    let sent = |n: usize| {
        if let Some(p) = progress {
            p.advance(n as u64);
        }
    };
    runtime().block_on(async {
        let sink = client
            .copy_in::<_, Bytes>(sql)
            .await
            .map_err(|e| anyhow!("{sql}: {}", pg_error(&e)))?;
        futures::pin_mut!(sink);
        let failed = |e: tokio_postgres::Error| anyhow!("{}: {}", first_line(sql), pg_error(&e));
        loop {
            match rx.recv() {
                Ok(Msg::Data(b)) => {
                    let n = b.len();
                    sink.send(b).await.map_err(failed)?;
                    sent(n);
                }
                Ok(Msg::Spill(mut f, size)) => {
                    let mut left = size;
                    while left > 0 {
                        let mut buf = vec![0u8; (left as usize).min(CHUNK)];
                        f.read_exact(&mut buf)?;
                        left -= buf.len() as u64;
                        spilled.fetch_sub(buf.len() as u64, Ordering::Relaxed);
                        let n = buf.len();
                        sink.send(Bytes::from(buf)).await.map_err(failed)?;
                        sent(n);
                    }
                }
                Ok(Msg::End) => break,
                Ok(Msg::Fail(e)) => return Err(e),
                // The reader stopped (the restore failed): the block is not
                // finished, so the server rolls the COPY back.
                Err(_) => return Err(anyhow!("the restore stopped")),
            }
        }
        sink.as_mut().finish().await.map_err(failed)
    })
}

fn first_line(sql: &str) -> &str {
    let l = sql.lines().next().unwrap_or("");
    match l.char_indices().nth(100) {
        Some((i, _)) => &l[..i],
        None => l,
    }
}

fn run_statement(client: &Client, sql: &str, line: u64) -> Result<()> {
    runtime().block_on(client.batch_execute(sql)).map_err(|e| {
        Failure::new(
            ExitStatus::Failure,
            format!(
                "the statement on line {line} of the backup failed: {} (`{}`).",
                pg_error(&e),
                first_line(sql)
            ),
        )
        .with_remedy(
            "Fix the cause (often a missing role or extension on the target) and restore again.",
        )
        .into()
    })
}

/// The block being read.
struct CopyState {
    /// Its number in the load, and its `COPY … FROM STDIN`.
    block: u64,
    sql: String,
    /// The queue of the segment being read.
    tx: Sender<Msg>,
    /// Bytes of rows handed to the segment being read.
    seg: u64,
    buf: Vec<u8>,
    /// The spill file being written, and its size so far.
    spill: Option<(BufWriter<File>, u64)>,
    /// Past the spill limit: the reader waits for the worker.
    blocking: bool,
    /// The first segment is loaded with `FREEZE` after a `TRUNCATE`: set
    /// by its worker once the table is truncated (and so locked until that
    /// segment commits). The block is not cut before: a later segment's
    /// COPY must not get in before the `TRUNCATE`, which would empty it.
    truncated: Option<Arc<std::sync::atomic::AtomicBool>>,
}

pub(crate) struct Loader<'a, 'o> {
    coord: Arc<Client>,
    known: std::collections::HashSet<String>,
    pool: Option<Pool>,
    jobs: usize,
    opts: &'a LoadOptions<'o>,
    report: Loaded,
    statements: Statements,
    /// The dump's session settings so far, replayed on each worker.
    session: Arc<Vec<String>>,
    seen_copy: bool,
    post: Vec<Unit>,
    copy: Option<CopyState>,
    /// One job: the COPY on the coordinator.
    inline: Option<Pin<Box<CopyInSink<Bytes>>>>,
    started: Instant,
    data_started: Option<Instant>,
    table: String,
    queue: usize,
    /// COPY blocks started (the next block's number).
    blocks: u64,
    /// A merge: the block being read is left out (no tenant column).
    skip: bool,
    /// A merge: the staging table of the block being read.
    stage: Option<usize>,
    /// The phase being reported, and when it began.
    phase: Option<(&'static str, Instant)>,
    /// Bytes of the streams read so far (lines and rows).
    offset: u64,
    /// Tables the schema creates (the data phase's total), and the COPY
    /// blocks loaded on the coordinator or left out so far (the workers
    /// count theirs).
    tables_total: u64,
    tables_done: u64,
    /// Tables this load created whose first COPY block has not started:
    /// that block may be loaded with `FREEZE` (see [`Loader::freeze`]).
    created: std::collections::HashSet<String>,
    /// Post-data statements have run (a COPY after them: no `TRUNCATE`
    /// any more, a foreign key may point at the table).
    post_ran: bool,
    /// The bytes of rows read per table (post-data starts with the
    /// biggest tables' statements), and where the block being read began.
    sizes: HashMap<String, u64>,
    block_start: u64,
    /// Bytes of the stream the scanner consumed ([`Tally`]), and where
    /// the line of the event being handled starts.
    consumed: Arc<AtomicU64>,
    line_start: u64,
    event_start: u64,
    /// The blocks loaded on the side (in stream order), the next one the
    /// reader must meet, and the one it is reading past (not loading).
    side: Vec<Side>,
    side_next: usize,
    side_reading: Option<usize>,
    /// Tells the side readers to stop (the load failed).
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Counts the bytes the scanner consumes: the stream offset of each line.
struct Tally<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
}

impl<R: Read> Read for Tally<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tally<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        self.inner.consume(n);
    }
}

static SPILL_SEQ: AtomicU64 = AtomicU64::new(0);

fn spill_file(dir: &Path) -> Result<File> {
    std::fs::create_dir_all(dir)?;
    let path: PathBuf = dir.join(format!(
        ".vaultctl-load-{}-{}",
        std::process::id(),
        SPILL_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| anyhow!("cannot create a spill file in {}: {e}", dir.display()))?;
    // Unlinked at once: nothing is left behind, whatever happens.
    std::fs::remove_file(&path)?;
    Ok(f)
}

impl Loader<'_, '_> {
    fn event(&mut self, ev: Event<'_>) -> Result<()> {
        let start = self.line_start;
        self.event_start = start;
        self.line_start = self.consumed.load(Ordering::Relaxed);
        if let Some(k) = self.side_reading {
            // Inside a block loaded on the side: read past it (the stream's
            // hash covers it), check that it ends where the TOC says.
            return match ev {
                Event::Row(row) => {
                    self.offset += row.len() as u64;
                    Ok(())
                }
                Event::CopyEnd(kept, _) => self.side_end(k, kept),
                _ => Err(anyhow!("a line other than COPY data inside a COPY block")),
            };
        }
        if let Some(s) = self.side.get(self.side_next) {
            let at_copy =
                matches!(ev, Event::CopyStart(h, _) if h.table.to_string() == s.block.table);
            if start > s.block.offset || (start == s.block.offset && !at_copy) {
                return Err(toc::invalid(format!(
                    "no COPY block of {} starts at byte {}",
                    s.block.table, s.block.offset
                )));
            }
        }
        match ev {
            Event::Line(line, _, ends, no) => {
                self.offset += line.len() as u64;
                if !self.seen_copy {
                    // The schema phase counts the statements read; the
                    // data phase the COPY bytes sent to the server.
                    if let Some(p) = &self.opts.progress {
                        p.advance(line.len() as u64);
                    }
                }
                let body = line.strip_suffix(b"\n").unwrap_or(line);
                let mut st = std::mem::take(&mut self.statements);
                let r = st.push(body, ends, no, |sql, at| self.statement(sql, at));
                // The newline belongs to the statement in progress.
                st.push(b"\n", &[], no, |_, _| Ok(()))?;
                self.statements = st;
                r?;
            }
            Event::Dropped(line, d) => match d {
                Dropped::Restrict | Dropped::Unrestrict => {
                    let word = String::from_utf8_lossy(line)
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    self.report.filter.dropped_meta_commands.insert(word);
                }
                // pg_dump's transaction around large objects: their
                // descriptors live only inside one. (One job: the restore's
                // own transaction covers them.)
                Dropped::Begin | Dropped::Commit
                    if self.pool.is_some() && self.opts.merge.is_none() =>
                {
                    let sql = if d == Dropped::Begin {
                        "BEGIN"
                    } else {
                        "COMMIT"
                    };
                    if self.post.is_empty() {
                        super::execute(&self.coord, sql)?;
                    } else {
                        self.post.push(Unit {
                            sql: sql.into(),
                            line: 0,
                            tables: None,
                        });
                    }
                }
                Dropped::Begin | Dropped::Commit => {}
            },
            Event::CopyStart(h, f) => self.copy_start(h, f)?,
            Event::Row(row) if self.skip => self.offset += row.len() as u64,
            Event::CopyEnd(..) if self.skip => {
                self.skip = false;
                self.table_done();
            }
            Event::Row(row) => {
                self.offset += row.len() as u64;
                let segment = self.segment_size();
                let c = self.copy.as_mut().expect("inside a COPY block");
                c.buf.extend_from_slice(row);
                let full = c.buf.len() >= CHUNK;
                let due = c.seg + c.buf.len() as u64 >= segment;
                if full || (due && self.worker_idle()) {
                    self.ship(false)?;
                }
            }
            Event::CopyEnd(kept, skipped) => {
                *self.sizes.entry(self.table.clone()).or_default() +=
                    self.offset - self.block_start;
                self.ship(true)?;
                if let Some(i) = self.stage.take() {
                    self.report.staged[i].rows += kept;
                }
                *self
                    .report
                    .filter
                    .rows
                    .entry(self.table.clone())
                    .or_default() += kept;
                if skipped > 0 {
                    *self
                        .report
                        .filter
                        .rows_left_out
                        .entry(self.table.clone())
                        .or_default() += skipped;
                }
            }
        }
        Ok(())
    }

    fn statement(&mut self, sql: &[u8], line: u64) -> Result<()> {
        if !self.seen_copy {
            if let Some(t) = creates_table_with_data(sql) {
                self.tables_total += 1;
                self.created.insert(t);
            }
        }
        if let Some(name) = filter::set_line_name(sql) {
            // Custom (dotted) settings are accepted by any server.
            if !name.contains('.') && !self.known.contains(&name) {
                self.report.filter.dropped_settings.insert(name);
                return Ok(());
            }
        }
        if self.opts.merge.is_some() {
            // A merge runs none of the dump's statements, but loads the
            // rows with its session settings.
            if let Ok(sql) = std::str::from_utf8(sql) {
                if is_session(sql) {
                    Arc::make_mut(&mut self.session).push(sql.to_string());
                    if self.pool.is_none() {
                        run_statement(&self.coord, sql, line)?;
                    }
                }
            }
            return Ok(());
        }
        let sql = std::str::from_utf8(sql).map_err(|_| {
            Failure::new(
                ExitStatus::Failure,
                format!("the statement on line {line} of the backup is not UTF-8."),
            )
            .with_remedy("vaultctl restores dumps in the UTF8 client encoding; restore this one with `vaultctl restore ID --stdout | psql`.")
        })?;
        self.report.phases.statements += 1;
        let kind = classify(sql);
        if is_session(sql) {
            Arc::make_mut(&mut self.session).push(sql.to_string());
        }
        if self.pool.is_none() || !self.seen_copy {
            return run_statement(&self.coord, sql, line);
        }
        match kind {
            Kind::Data if self.post.is_empty() => run_statement(&self.coord, sql, line),
            Kind::Data | Kind::Barrier => {
                self.post.push(Unit {
                    sql: sql.to_string(),
                    line,
                    tables: None,
                });
                Ok(())
            }
            Kind::Tables(t) => {
                self.post.push(Unit {
                    sql: sql.to_string(),
                    line,
                    tables: Some(t),
                });
                Ok(())
            }
        }
    }

    fn copy_start(&mut self, h: &CopyHeader, f: &RowFilter) -> Result<()> {
        if self.opts.merge.is_some() && *f == RowFilter::None {
            self.skip = true;
            let t = h.table.to_string();
            if !self.report.global.contains(&t) {
                self.report.global.push(t);
            }
            return Ok(());
        }
        if !self.seen_copy {
            // Tests: the schema is in place, no row is loaded yet.
            crate::repo::test_pause("load-data");
            self.seen_copy = true;
            self.report.phases.schema_ms = self.started.elapsed().as_millis() as u64;
            let left = self.opts.size.map(|s| s.saturating_sub(self.offset));
            self.phase("restore: data (COPY)", left);
            self.report_tables();
            self.start_side_blocks()?;
        }
        if self.data_started.is_none() {
            self.data_started = Some(Instant::now());
        }
        // A COPY after post-data statements (not how pg_dump writes): those
        // run first, in order.
        if !self.post.is_empty() {
            self.flush()?;
            self.data_started = Some(Instant::now());
        }
        self.report.phases.copy_blocks += 1;
        self.table = h.table.to_string();
        self.block_start = self.offset;
        if let Some(s) = self.side.get(self.side_next) {
            if s.block.offset == self.event_start {
                if s.block.table != self.table {
                    return Err(toc::invalid(format!(
                        "the COPY block at byte {} is of {}, not {}",
                        s.block.offset, self.table, s.block.table
                    )));
                }
                // Loaded on the side already: read past it.
                self.side_reading = Some(self.side_next);
                self.side_next += 1;
                return Ok(());
            }
        }
        let into = match self.opts.merge {
            Some(staging) => {
                let i = self.staging_table(h, staging)?;
                self.stage = Some(i);
                self.report.staged[i].stage.clone()
            }
            None => h.table.quoted(),
        };
        let sql = copy_sql(&into, h);
        let block = self.blocks;
        self.blocks += 1;
        if let Some(p) = &self.pool {
            tracing::debug!(
                "load +{:.3}s reader: COPY block {block} of {} at byte {} of the stream",
                p.epoch.elapsed().as_secs_f64(),
                self.table,
                self.offset
            );
        }
        let mut truncated = None;
        let tx = match &mut self.pool {
            Some(pool) => {
                pool.poll()?;
                let freeze = if self.freeze(h)? {
                    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    truncated = Some(flag.clone());
                    Some((format!("TRUNCATE ONLY {}", h.table.quoted()), flag))
                } else {
                    None
                };
                self.segment(block, &sql, freeze)?
            }
            None => {
                let sink = runtime()
                    .block_on(self.coord.copy_in::<_, Bytes>(sql.as_str()))
                    .map_err(|e| anyhow!("{sql}: {}", pg_error(&e)))?;
                self.inline = Some(Box::pin(sink));
                self.report.phases.copy_segments += 1;
                bounded(1).0
            }
        };
        self.report_tables();
        self.copy = Some(CopyState {
            block,
            sql,
            tx,
            seg: 0,
            buf: Vec::with_capacity(CHUNK + 64 * 1024),
            spill: None,
            blocking: false,
            truncated,
        });
        Ok(())
    }

    /// Starts the biggest COPY blocks of the table of contents (at most
    /// `jobs - 1`, at least a segment each) at once, each on a worker
    /// from a reader of its own, while this reader goes on through the
    /// stream: called at the first COPY block, when the schema is in place
    /// and every worker is idle. The biggest table then no longer starts
    /// when the one stream reaches it (in the stream's table-name order,
    /// often late) and ends the data phase alone; the post-data is reached
    /// early, and a table's indexes start once its rows are in.
    ///
    /// **The stream's hash still covers every byte loaded.** A side reader
    /// fetches the blobs of its range by the manifest's blob list and
    /// checks each against its id and length, so it serves the bytes at
    /// those offsets of the stream the manifest names; this reader still
    /// reads and hashes the whole stream (skipping only the loading of the
    /// side blocks), checks that each side block is a COPY block of its
    /// table starting and ending exactly where the TOC says, and the load
    /// is made visible only after that (the rename). The cost: the side
    /// blocks are fetched, decrypted and decompressed twice.
    fn start_side_blocks(&mut self) -> Result<()> {
        let (Some(side), Some(_)) = (&self.opts.side, &self.pool) else {
            return Ok(());
        };
        let min = self.opts.tuning.side_block;
        if self.jobs < 2 || min == 0 || self.opts.merge.is_some() || self.opts.tenants.is_some() {
            return Ok(());
        }
        let chosen = side.toc.biggest(self.jobs - 1, min);
        for b in chosen {
            if b.offset < self.event_start {
                return Err(toc::invalid(format!(
                    "the block of {} at byte {} lies before the first COPY block (byte {})",
                    b.table, b.offset, self.event_start
                )));
            }
            let mut r = (side.open)(b.offset, b.len)?;
            let mut line = Vec::new();
            (&mut r).take(64 * 1024).read_until(b'\n', &mut line)?;
            let h = std::str::from_utf8(&line)
                .ok()
                .and_then(filter::parse_copy_header)
                .filter(|h| h.table.to_string() == b.table && line.ends_with(b"\n"))
                .ok_or_else(|| {
                    toc::invalid(format!("no COPY line of {} at byte {}", b.table, b.offset))
                })?;
            let rows = b
                .len
                .checked_sub(line.len() as u64 + 3)
                .ok_or_else(|| toc::invalid(format!("the block of {} is too short", b.table)))?;
            let number = self.blocks;
            self.blocks += 1;
            self.table = b.table.clone();
            let freeze = if self.freeze(&h)? {
                let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
                Some((format!("TRUNCATE ONLY {}", h.table.quoted()), flag))
            } else {
                None
            };
            let sql = copy_sql(&h.table.quoted(), &h);
            let (tx, rx) = bounded(self.queue.max(1));
            let pool = self.pool.as_mut().expect("parallel");
            tracing::debug!(
                "load +{:.3}s side reader: COPY block {number} of {} at byte {} ({} bytes)",
                pool.epoch.elapsed().as_secs_f64(),
                b.table,
                b.offset,
                b.len
            );
            pool.send(Job::Copy {
                table: b.table.clone(),
                block: number,
                sql: match freeze {
                    Some(_) => format!("{sql} WITH (FREEZE)"),
                    None => sql,
                },
                rx,
                session: self.session.clone(),
                freeze,
            })?;
            self.report.phases.copy_segments += 1;
            self.report.phases.side_blocks += 1;
            let (block, stop) = (b.clone(), self.stop.clone());
            std::thread::Builder::new()
                .name("vaultctl-side".into())
                .spawn(move || feed_side(r, block, rows, tx, stop))?;
            self.side.push(Side { block: b, number });
        }
        Ok(())
    }

    /// The reader is past a block loaded on the side: it must end where
    /// the TOC says; its rows count as loaded once its worker is done.
    fn side_end(&mut self, k: usize, kept: u64) -> Result<()> {
        self.side_reading = None;
        let s = &self.side[k];
        if self.line_start != s.block.end() {
            return Err(toc::invalid(format!(
                "the COPY block of {} at byte {} ends at byte {}, not {}",
                s.block.table,
                s.block.offset,
                self.line_start,
                s.block.end()
            )));
        }
        let (table, number) = (s.block.table.clone(), s.number);
        *self.sizes.entry(table.clone()).or_default() += self.offset - self.block_start;
        *self.report.filter.rows.entry(table).or_default() += kept;
        if let Some(p) = &mut self.pool {
            p.close(number);
        }
        self.report_tables();
        Ok(())
    }

    /// Whether the first segment of this block is loaded with `COPY …
    /// FREEZE` (in a transaction that first truncates the empty table,
    /// which `FREEZE` requires): its rows are written frozen and its pages
    /// all-visible, so the first index build and the first (auto)vacuum
    /// need not rewrite every page to set hint bits. Only into a table
    /// this load created (a new database: nobody else sees it), for its
    /// first block, before any post-data statement ran (no foreign key
    /// points at it yet), on several connections (one job runs in one
    /// transaction, or loads a database that may have readers), when
    /// the user may truncate it (the dump may have given it away with
    /// `ALTER … OWNER TO`).
    fn freeze(&mut self, h: &CopyHeader) -> Result<bool> {
        if self.opts.merge.is_some() || self.post_ran || !self.created.remove(&self.table) {
            return Ok(false);
        }
        // A plain table (not a partitioned parent loaded through its
        // root), which the user may truncate.
        let rows = super::query(
            &self.coord,
            "SELECT coalesce((SELECT relkind = 'r' AND has_table_privilege(oid, 'TRUNCATE') FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass($1)), false)",
            &[&h.table.quoted()],
        )?;
        Ok(rows[0].get::<_, bool>(0))
    }

    /// Where a COPY block is cut: with several workers, every
    /// [`Tuning::segment`] bytes; else never (one connection loads it all).
    fn segment_size(&self) -> u64 {
        if self.pool.is_some() && self.jobs > 1 {
            self.opts.tuning.segment.max(1)
        } else {
            u64::MAX
        }
    }

    /// Whether a worker waits for a job (only the reader hands them out,
    /// so it waits until the reader hands it one).
    fn worker_idle(&self) -> bool {
        self.pool
            .as_ref()
            .is_some_and(|p| p.idle.load(Ordering::SeqCst) > 0)
    }

    /// Hands a new segment of `block` (the table being read) to the next
    /// free worker; returns its queue.
    fn segment(
        &mut self,
        block: u64,
        sql: &str,
        freeze: Option<(String, Arc<std::sync::atomic::AtomicBool>)>,
    ) -> Result<Sender<Msg>> {
        let (tx, rx) = bounded(self.queue.max(1));
        let pool = self.pool.as_mut().expect("parallel");
        let sql = match freeze {
            Some(_) => format!("{sql} WITH (FREEZE)"),
            None => sql.to_string(),
        };
        pool.send(Job::Copy {
            table: self.table.clone(),
            block,
            sql,
            rx,
            session: self.session.clone(),
            freeze,
        })?;
        self.report.phases.copy_segments += 1;
        Ok(tx)
    }

    /// Sends the rows read so far; at the end of the block, finishes it.
    fn ship(&mut self, end: bool) -> Result<()> {
        let segment = self.segment_size();
        let c = self.copy.as_mut().expect("inside a COPY block");
        let data = Bytes::from(std::mem::replace(
            &mut c.buf,
            if end {
                Vec::new()
            } else {
                Vec::with_capacity(CHUNK + 64 * 1024)
            },
        ));
        if let Some(sink) = &mut self.inline {
            let table = &self.table;
            let failed =
                |e: tokio_postgres::Error| anyhow!("loading {table} failed: {}", pg_error(&e));
            if !data.is_empty() {
                let n = data.len() as u64;
                runtime().block_on(sink.send(data)).map_err(failed)?;
                if let Some(p) = &self.opts.progress {
                    p.advance(n);
                }
            }
            if end {
                let rows = runtime().block_on(sink.as_mut().finish()).map_err(failed)?;
                *self.report.acknowledged.entry(table.clone()).or_default() += rows;
                self.inline = None;
                self.copy = None;
                self.table_done();
            }
            return Ok(());
        }
        let pool = self.pool.as_mut().expect("a pool without an inline COPY");
        let limit = self.opts.spill_limit;
        let lost = |pool: &mut Pool| pool.failure();
        let len = data.len() as u64;
        if !data.is_empty() {
            let over = pool.spilled.load(Ordering::Relaxed) + len > limit;
            if c.spill.is_some() && over {
                // Past the limit: hand over what is spilled, then wait for
                // the worker from here on.
                let (w, size) = c.spill.take().expect("spilling");
                send_spill(&c.tx, w, size).map_err(|_| lost(pool))?;
                c.blocking = true;
                c.tx.send(Msg::Data(data)).map_err(|_| lost(pool))?;
            } else if let Some((w, size)) = &mut c.spill {
                w.write_all(&data)?;
                *size += len;
                pool.spilled.fetch_add(len, Ordering::Relaxed);
                self.report.phases.spilled_bytes += len;
            } else if c.blocking {
                c.tx.send(Msg::Data(data)).map_err(|_| lost(pool))?;
            } else {
                let sent = if self.queue == 0 {
                    Err(TrySendError::Full(Msg::Data(data)))
                } else {
                    c.tx.try_send(Msg::Data(data))
                };
                match sent {
                    Ok(()) => {}
                    Err(TrySendError::Full(msg)) => {
                        if over {
                            c.blocking = true;
                            c.tx.send(msg).map_err(|_| lost(pool))?;
                        } else {
                            let Msg::Data(data) = msg else {
                                unreachable!("only data is queued here")
                            };
                            let mut w =
                                BufWriter::with_capacity(CHUNK, spill_file(self.opts.spill_dir)?);
                            w.write_all(&data)?;
                            pool.spilled.fetch_add(len, Ordering::Relaxed);
                            self.report.phases.spilled_bytes += len;
                            c.spill = Some((w, len));
                        }
                    }
                    Err(TrySendError::Disconnected(_)) => return Err(lost(pool)),
                }
            }
        }
        c.seg += len;
        // Past the segment size the block is cut only when another
        // connection is idle: while every one is busy it keeps loading
        // here (no two COPYs into one table for nothing).
        let mut cut = c.seg >= segment && pool.idle.load(Ordering::SeqCst) > 0;
        if let Some(t) = c.truncated.as_ref().filter(|_| cut) {
            // A first segment loaded with FREEZE: its worker truncates the
            // table first (a few round trips), and no later segment may
            // start before. Wait for it, a while: past that (a worker
            // stuck or failed) the block is not cut for another segment.
            let until = Instant::now() + std::time::Duration::from_secs(2);
            while !t.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if !t.load(Ordering::SeqCst) {
                cut = false;
                c.seg = 0;
            }
        }
        if end || cut {
            // The segment ends (its worker finishes its COPY after the
            // queued and spilled chunks).
            if let Some((w, size)) = c.spill.take() {
                send_spill(&c.tx, w, size).map_err(|_| lost(pool))?;
            }
            c.tx.send(Msg::End).map_err(|_| lost(pool))?;
            if end {
                let c = self.copy.take().expect("inside a COPY block");
                pool.close(c.block);
            } else {
                // The rest of the block: a new COPY of the same table on
                // the next free connection.
                let (block, sql) = (c.block, std::mem::take(&mut c.sql));
                let tx = self.segment(block, &sql, None)?;
                let c = self.copy.as_mut().expect("inside a COPY block");
                (c.tx, c.sql, c.seg, c.blocking) = (tx, sql, 0, false);
                c.truncated = None;
            }
        }
        Ok(())
    }

    /// Runs the post-data statements collected, then waits for the data.
    /// An index or key of a table whose rows are all loaded starts while
    /// other tables still load (as `pg_restore -j` does); foreign keys and
    /// barriers wait for every COPY block.
    fn flush(&mut self) -> Result<()> {
        if self.pool.is_none() {
            if let Some(t) = self.data_started.take() {
                self.report.phases.data_ms += t.elapsed().as_millis() as u64;
            }
            return Ok(());
        }
        let started = Instant::now();
        let units = std::mem::take(&mut self.post);
        if !units.is_empty() {
            self.post_ran = true;
            self.phase("restore: post-data (indexes, constraints)", None);
        }
        let total = units.len() as u64;
        let mut i = 0;
        while i < units.len() {
            if let Some(p) = &self.opts.progress {
                p.items("statements", i as u64, Some(total));
            }
            if units[i].tables.is_none() {
                self.wait_for_data()?;
                run_statement(&self.coord, &units[i].sql, units[i].line)?;
                i += 1;
                continue;
            }
            let j = (i..units.len())
                .find(|&k| units[k].tables.is_none())
                .unwrap_or(units.len());
            self.window(&units[i..j], (i as u64, total))?;
            i = j;
        }
        self.wait_for_data()?;
        if !units.is_empty() {
            self.report.phases.post_data_ms += started.elapsed().as_millis() as u64;
        }
        Ok(())
    }

    /// Waits until every COPY block handed out has been loaded; the data
    /// phase ends with the last one.
    fn wait_for_data(&mut self) -> Result<()> {
        while let Some(pool) = &mut self.pool {
            if pool.outstanding == 0 {
                break;
            }
            let before = pool.copies_done;
            pool.wait(std::time::Duration::from_secs(1))?;
            if pool.copies_done > before {
                self.report_tables();
            } else if let Some(p) = &self.opts.progress {
                // A heartbeat, for the periodic line.
                p.advance(0);
            }
        }
        if let Some(t) = self.data_started.take() {
            let end = self
                .pool
                .as_ref()
                .and_then(|p| p.last_copy)
                .filter(|&e| e > t)
                .unwrap_or_else(Instant::now);
            self.report.phases.data_ms += (end - t).as_millis() as u64;
        }
        Ok(())
    }

    /// Runs a run of table statements on the workers: each once the earlier
    /// ones on any of its tables have finished.
    fn window(&mut self, units: &[Unit], (before, total): (u64, u64)) -> Result<()> {
        let pool = self.pool.as_mut().expect("parallel");
        // deps[k]: the earlier units on k's tables that k must wait for.
        // An index build takes a SHARE lock, which other index builds of the
        // table do not conflict with (as `pg_restore -j`, several indexes of
        // one table build at once); a key or a foreign key (ALTER TABLE)
        // locks the table against both. So an index waits for the last
        // ALTER TABLE on its tables, an ALTER TABLE for that one and for the
        // indexes since (those before it finished before it started).
        #[derive(Default)]
        struct Locks {
            exclusive: Option<usize>,
            shared: Vec<usize>,
        }
        let mut locks: HashMap<&str, Locks> = HashMap::new();
        let mut deps: Vec<Vec<usize>> = Vec::with_capacity(units.len());
        for (k, u) in units.iter().enumerate() {
            let index = strip_word(&u.sql, "CREATE").is_some();
            let mut d = Vec::new();
            for t in u.tables.as_deref().unwrap_or_default() {
                let l = locks.entry(t).or_default();
                d.extend(l.exclusive);
                if index {
                    l.shared.push(k);
                } else {
                    d.append(&mut l.shared);
                    l.exclusive = Some(k);
                }
            }
            deps.push(d);
        }
        #[derive(Clone, Copy, PartialEq)]
        enum S {
            Waiting,
            Running,
            Done,
        }
        // The longest chains first: the longest builds do not start last,
        // with the other connections idle meanwhile. A statement's cost is
        // the bytes of rows of the tables it touches (as `pg_restore -j`
        // orders by size), times its key columns for an index; its
        // priority that cost plus the highest priority of the statements
        // that wait for it (a primary key that the big index builds and
        // foreign keys of its table wait for goes before a bigger table's
        // last index). Ties (and statements on tables without rows) in
        // dump order.
        let cost = |u: &Unit| -> u64 {
            let bytes: u64 = u
                .tables
                .iter()
                .flatten()
                .map(|t| self.sizes.get(t).copied().unwrap_or(0))
                .sum();
            bytes.saturating_mul(key_columns(&u.sql))
        };
        let mut priority = vec![0u64; units.len()];
        let mut waiting_on = vec![0u64; units.len()];
        for k in (0..units.len()).rev() {
            priority[k] = cost(&units[k]).saturating_add(waiting_on[k]);
            for &m in &deps[k] {
                waiting_on[m] = waiting_on[m].max(priority[k]);
            }
        }
        let mut order: Vec<usize> = (0..units.len()).collect();
        order.sort_by_key(|&k| std::cmp::Reverse(priority[k]));
        let mut state = vec![S::Waiting; units.len()];
        let (mut running, mut done, mut next) = (0, 0, 0);
        let mut ended: Option<Done> = None;
        loop {
            // Everything that ended by now before the next choice: the
            // statement waited for, and COPY segments that ended while the
            // reader read on (a table whose rows are all in must count as
            // loaded, the first choice included).
            let waited = ended.is_some();
            while let Some(d) = ended.take().or_else(|| pool.done.try_recv().ok()) {
                let id = d.id;
                pool.finished(d)?;
                if let Some(id) = id {
                    state[id] = S::Done;
                    running -= 1;
                    done += 1;
                }
            }
            if waited {
                if let Some(p) = &self.opts.progress {
                    p.items("statements", before + done as u64, Some(total));
                    // A heartbeat: the periodic line of a phase without bytes.
                    p.advance(0);
                }
            }
            if done == units.len() {
                break;
            }
            while next < units.len() && state[order[next]] != S::Waiting {
                next += 1;
            }
            let mut i = next;
            while i < units.len() && running + pool.outstanding < self.jobs {
                let k = order[i];
                if state[k] == S::Waiting
                    && deps[k].iter().all(|&m| state[m] == S::Done)
                    && units[k].ready(pool)
                {
                    pool.send(Job::Sql {
                        id: k,
                        sql: units[k].sql.clone(),
                        line: units[k].line,
                        session: self.session.clone(),
                    })?;
                    state[k] = S::Running;
                    running += 1;
                }
                i += 1;
            }
            ended = Some(
                pool.done
                    .recv()
                    .map_err(|_| anyhow!("the restore's worker connections stopped"))?,
            );
        }
        Ok(())
    }

    /// The staging table of a merge's COPY block (created on its first
    /// block): the table's columns of the block, no constraints.
    fn staging_table(&mut self, h: &CopyHeader, staging: Staging<'_>) -> Result<usize> {
        if let Some(i) = self
            .report
            .staged
            .iter()
            .position(|s| s.table == h.table && s.columns == h.columns)
        {
            return Ok(i);
        }
        let exists = super::query(
            &self.coord,
            "SELECT to_regclass($1) IS NOT NULL",
            &[&h.table.quoted()],
        )?;
        if !exists[0].get::<_, bool>(0) {
            return Err(Failure::new(ExitStatus::Failure, format!("the table {} of the backup does not exist in the target database.", h.table))
                .with_remedy("A merge restore needs the schema in place: restore the schema first (a full restore into a new database), or migrate the target.")
                .into());
        }
        let n = self.report.staged.len();
        let (create, stage) = match staging {
            Staging::Temp => ("CREATE TEMP TABLE", format!("pg_temp.vaultctl_stage_{n}")),
            Staging::Schema(schema) => (
                "CREATE UNLOGGED TABLE",
                format!("{}.stage_{n}", quote_ident(schema)),
            ),
        };
        let cols = if h.columns.is_empty() {
            "*".to_string()
        } else {
            h.columns
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let on_commit = if staging == Staging::Temp {
            " ON COMMIT DROP"
        } else {
            ""
        };
        super::execute(
            &self.coord,
            &format!(
                "{create} {stage}{on_commit} AS SELECT {cols} FROM {} WITH NO DATA",
                h.table.quoted()
            ),
        )?;
        self.report.staged.push(Staged {
            table: h.table.clone(),
            columns: h.columns.clone(),
            stage,
            rows: 0,
        });
        Ok(n)
    }

    /// One more table's rows loaded (or left out).
    fn table_done(&mut self) {
        self.tables_done += 1;
        self.report_tables();
    }

    /// Reports the tables loaded (on this connection, left out, and by
    /// the workers) of the tables the schema creates.
    fn report_tables(&self) {
        if let Some(p) = &self.opts.progress {
            let total = Some(self.tables_total).filter(|&t| t > 0);
            let workers = self.pool.as_ref().map_or(0, |p| p.copies_done);
            p.items("tables", self.tables_done + workers, total);
            // Lets the periodic line show it (the stream may be read ahead).
            p.advance(0);
        }
    }

    /// Reports a new phase.
    fn phase(&mut self, name: &'static str, total: Option<u64>) {
        self.end_phase();
        if let Some(p) = &self.opts.progress {
            p.start(name, total);
        }
        self.phase = Some((name, Instant::now()));
    }

    fn end_phase(&mut self) {
        if self.phase.take().is_some() {
            if let Some(p) = &self.opts.progress {
                p.finish();
            }
        }
    }

    /// After an error: stop the workers (they roll back what is unfinished).
    pub(crate) fn abort(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.copy = None;
        self.inline = None;
        if let Some(mut p) = self.pool.take() {
            p.jobs = None;
        }
        if self.opts.transaction == Transaction::Single {
            let _ = super::execute(&self.coord, "ROLLBACK");
        }
    }
}

/// `COPY into (columns) FROM STDIN` for a block with header `h`.
fn copy_sql(into: &str, h: &CopyHeader) -> String {
    if h.columns.is_empty() {
        format!("COPY {into} FROM STDIN")
    } else {
        let cols = h
            .columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        format!("COPY {into} ({cols}) FROM STDIN")
    }
}

/// Feeds a block read on the side to its worker: the rows after its
/// `COPY` line (`rows` bytes), then checks that its `\.` line follows.
fn feed_side(
    mut r: Box<dyn BufRead + Send>,
    block: CopyBlock,
    mut rows: u64,
    tx: Sender<Msg>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut fed = || -> Result<()> {
        while rows > 0 {
            if stop.load(Ordering::Relaxed) {
                return Err(anyhow!("the restore stopped"));
            }
            let avail = r.fill_buf()?;
            if avail.is_empty() {
                return Err(anyhow!("the stream ended inside the block"));
            }
            let n = avail.len().min(rows as usize).min(CHUNK);
            let chunk = Bytes::copy_from_slice(&avail[..n]);
            r.consume(n);
            rows -= n as u64;
            tx.send(Msg::Data(chunk))
                .map_err(|_| anyhow!("the worker stopped"))?;
        }
        let mut end = [0u8; 3];
        r.read_exact(&mut end)?;
        if &end != b"\\.\n" {
            return Err(toc::invalid(format!(
                "the block of {} at byte {} does not end with its \\. line at byte {}",
                block.table,
                block.offset,
                block.end()
            )));
        }
        Ok(())
    };
    let msg = match fed() {
        Ok(()) => Msg::End,
        Err(e) => Msg::Fail(e.context(format!(
            "reading the COPY block of {} on the side failed",
            block.table
        ))),
    };
    let _ = tx.send(msg);
}

/// A `CREATE [UNLOGGED] TABLE` of a table that holds rows (not a
/// partitioned parent, whose rows pg_dump writes under its partitions): one
/// COPY block of the data phase, for its progress.
/// Returns its name (`schema.name`, unquoted).
fn creates_table_with_data(sql: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(sql).ok()?;
    let r = strip_word(s, "CREATE")?;
    let r = strip_word(r, "UNLOGGED").unwrap_or(r);
    let r = strip_word(r, "TABLE")?;
    // pg_dump writes `)\nPARTITION BY …` after the columns.
    let words = s.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
    if words.contains(") PARTITION BY ") {
        return None;
    }
    qualified_name(r).map(|(name, _)| name)
}

fn send_spill(tx: &Sender<Msg>, w: BufWriter<File>, size: u64) -> Result<()> {
    let mut f = w.into_inner().map_err(|e| e.into_error())?;
    f.rewind()?;
    tx.send(Msg::Spill(f, size))
        .map_err(|_| anyhow!("the worker stopped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(dump: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut st = Statements::default();
        filter::walk(
            dump.as_bytes(),
            sqlscan::Options { restricted: true },
            None,
            |ev| {
                if let Event::Line(line, _, ends, no) = ev {
                    let body = line.strip_suffix(b"\n").unwrap_or(line);
                    st.push(body, ends, no, |s, at| {
                        out.push((String::from_utf8(s.to_vec()).unwrap(), at));
                        Ok(())
                    })?;
                    st.push(b"\n", &[], no, |_, _| Ok(()))?;
                }
                Ok(())
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn statements_with_bodies_and_comments() {
        let dump = "--\n-- Name: f; Type: FUNCTION\n--\n\nCREATE FUNCTION public.f() RETURNS int\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n  -- a; COPY t FROM stdin;\n  RETURN 1; END $$;\n\n\nSET a = 1; SET b = 'x;y';\nCOMMENT ON TABLE public.t IS 'has ; and COPY x FROM stdin;';\n";
        let s = split(dump);
        assert_eq!(s.len(), 4, "{s:?}");
        assert!(s[0].0.starts_with("CREATE FUNCTION") && s[0].0.ends_with("END $$;"));
        assert_eq!(s[0].1, 5);
        assert_eq!(s[1], ("SET a = 1;".to_string(), 13));
        assert_eq!(s[2], ("SET b = 'x;y';".to_string(), 13));
        assert_eq!(s[3].1, 14);
    }

    #[test]
    fn key_columns_of_index_builds() {
        assert_eq!(
            key_columns("CREATE INDEX i ON public.t USING btree (a);"),
            1
        );
        assert_eq!(
            key_columns("CREATE UNIQUE INDEX \"i\" ON ONLY \"public\".\"t\" USING \"btree\" (\"a,b\", \"c(\") INCLUDE (d, e);"),
            2
        );
        assert_eq!(
            key_columns("CREATE INDEX i ON public.t USING btree (lower(a), coalesce(b, ','), c) WHERE (x IN (1, 2));"),
            3
        );
        assert_eq!(
            key_columns("ALTER TABLE ONLY public.t ADD CONSTRAINT k PRIMARY KEY (a, b);"),
            1
        );
        assert_eq!(key_columns("CREATE INDEX broken"), 1);
    }

    #[test]
    fn session_of_a_parallel_load() {
        let t = |mib| Tuning {
            segment: 1,
            side_block: 0,
            queue: 1,
            maintenance_work_mem_mib: mib,
        };
        assert_eq!(
            t(256).session(),
            [
                "SET synchronous_commit = off",
                "SET maintenance_work_mem = '256MB'"
            ]
        );
        assert_eq!(t(0).session(), ["SET synchronous_commit = off"]);
    }

    #[test]
    fn tables_created_with_rows() {
        let c = |s: &str| creates_table_with_data(s.as_bytes());
        assert_eq!(
            c("CREATE TABLE public.orders (\n    id bigint NOT NULL\n);"),
            Some("public.orders".into())
        );
        assert_eq!(
            c("CREATE UNLOGGED TABLE \"S\".\"T x\" (a int);"),
            Some("S.T x".into())
        );
        assert_eq!(
            c("CREATE TABLE public.events (\n    at date\n)\nPARTITION BY RANGE (at);"),
            None
        );
        assert_eq!(c("CREATE VIEW public.v AS SELECT 1;"), None);
    }

    #[test]
    fn post_data_kinds() {
        let t = |v: &[&str]| Kind::Tables(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            classify("CREATE INDEX orders_t ON public.orders USING btree (tenant_id);"),
            t(&["public.orders"])
        );
        assert_eq!(
            classify("CREATE UNIQUE INDEX \"X\" ON ONLY \"S\".\"Parent\" USING btree (a);"),
            t(&["S.Parent"])
        );
        assert_eq!(
            classify(
                "ALTER TABLE ONLY public.orders\n    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);"
            ),
            t(&["public.orders"])
        );
        assert_eq!(
            classify("ALTER TABLE ONLY public.orders\n    ADD CONSTRAINT orders_fk FOREIGN KEY (tenant_id, x) REFERENCES public.tenants(id, y) ON DELETE CASCADE;"),
            t(&["public.orders", "public.tenants"])
        );
        assert_eq!(
            classify("ALTER TABLE public.parent\n    ADD CONSTRAINT self_fk FOREIGN KEY (p) REFERENCES public.parent(id);"),
            t(&["public.parent"])
        );
        assert_eq!(
            classify("SELECT pg_catalog.setval('public.s', 3, true);"),
            Kind::Data
        );
        assert_eq!(classify("SET search_path = x;"), Kind::Data);
        assert_eq!(classify("SET SESSION AUTHORIZATION bob;"), Kind::Data);
        assert!(!is_session("SET CONSTRAINTS ALL DEFERRED;"));
        assert!(is_session(
            "SELECT pg_catalog.set_config('search_path', '', false);"
        ));
        for b in [
            "CREATE TRIGGER t AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();",
            "ALTER INDEX public.p_idx ATTACH PARTITION public.c_idx;",
            "CREATE POLICY p ON public.t USING (true);",
            "ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;",
            "GRANT SELECT ON TABLE public.t TO app;",
            "REFRESH MATERIALIZED VIEW public.mv;",
        ] {
            assert_eq!(classify(b), Kind::Barrier, "{b}");
        }
    }
}
