//! Tenant-scoped backups: one REPEATABLE READ, READ ONLY snapshot, one
//! artifact per tenant holding that tenant's rows of every table carrying
//! the tenant column (and its row of the tenants table), in foreign-key
//! order, as COPY blocks.
//!
//! A few tenants are exported with one `COPY (SELECT … WHERE tenant = X)`
//! per table each; all of them (`--all-tenants`, or many ids: see
//! [`ONE_PASS_FROM`]) with one plain COPY per table, sorted here by the
//! tenant column in bounded runs, spilled and merged
//! ([`super::tenant_merge`]): the same artifact bytes (the rows of one
//! table within a tenant in the order the server sent them; no order is
//! promised).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use futures::StreamExt;
use tokio_postgres::Client;

use super::tenant_merge::{spill_file, RunWriter, Spill, TenantIds, Tenants, RUN_BYTES};
use super::{
    execute, fk_order, pg_error, query, quote_ident, quote_literal, ConnInfo, TableName,
    USER_TABLES,
};
use crate::config::{PostgresSpec, TenantSpec};
use crate::error::{ExitStatus, Failure};
use crate::repo::backup::{ArtifactStream, Source};
use crate::repo::spill::CountTable;
use crate::storage::runtime;

/// Which tenants to export.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    Ids(Vec<String>),
}

/// A table and the columns exported (generated columns left out).
#[derive(Debug, Clone)]
struct Table {
    name: TableName,
    columns: Vec<String>,
    /// The column rows are selected by (the tenant column, or the key of the tenants table).
    by: String,
}

/// `--tenant` ids are read each table once (spilled and merged) from this
/// many ids on, when they are also at least an eighth of the tenants;
/// fewer go per tenant, through the tenant column's index, reading only
/// their rows. Measured (scripts/bench-tenants.sh, 600,000 rows): one
/// query per table and tenant costs about 1.7 ms a tenant with four
/// tables, the one pass about 1.1 s for the whole database plus 0.1 ms a
/// tenant; `--all-tenants` always takes the one pass.
pub const ONE_PASS_FROM: usize = 32;

/// Rows per tenant and table (manifest `engine.rows`): one record per
/// tenant in the chosen order, a count per table in `State::tables` order,
/// kept out of memory ([`CountTable`]).
type Counts = Arc<Mutex<Option<CountTable>>>;

pub struct TenantExport {
    spec: PostgresSpec,
    tenants: TenantSpec,
    selection: Selection,
    /// Where the one-pass export spills each table's rows (unnamed files).
    spill_dir: PathBuf,
    state: Option<State>,
    counts: Counts,
    meta: serde_json::Value,
    /// The tenants exported, in byte order (the one-pass export sorts rows
    /// by their position here).
    chosen: Tenants,
}

struct State {
    client: Arc<Client>,
    tables: Vec<Table>,
    /// The one-pass export's spills, when it is used.
    merged: Option<Arc<Mutex<Merged>>>,
    /// The position of the next tenant in the chosen order.
    next: usize,
}

impl TenantExport {
    /// `spill_dir`: where the one-pass export spills (see
    /// `Config::tenant_spill_dir`); it needs room for the text of the
    /// tenant tables.
    pub fn new(spec: PostgresSpec, selection: Selection, spill_dir: PathBuf) -> Result<Self> {
        let tenants = spec.tenants.clone().ok_or_else(|| {
            Failure::new(ExitStatus::Usage, "this postgres source has no [source.tenants] table in the config.")
                .with_remedy("Add [source.tenants] with table, key and column, or back up the whole database without --tenant.")
        })?;
        Ok(TenantExport {
            spec,
            tenants,
            selection,
            spill_dir,
            state: None,
            counts: Arc::default(),
            meta: serde_json::Value::Null,
            chosen: Tenants::default(),
        })
    }

    fn start(&mut self) -> Result<()> {
        let conn = ConnInfo::new(&self.spec.url, self.spec.password_file.as_deref())?;
        let client = conn.connect()?;
        super::dump::rls_preflight(&client, &conn)?;
        execute(&client, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        let facts = super::dump::server_facts(&client)?;
        let (tenants_table, mut all) = tenant_ids(&client, &conn, &self.tenants)?;
        let tenant_count = all.len();
        let chosen = match &self.selection {
            Selection::All => std::mem::take(&mut all),
            Selection::Ids(ids) => {
                let missing: Vec<&String> = ids
                    .iter()
                    .filter(|i| all.binary_search(i).is_err())
                    .collect();
                if !missing.is_empty() {
                    return Err(Failure::new(
                        ExitStatus::Usage,
                        format!(
                            "no tenant {} in {tenants_table}.{}.",
                            missing
                                .iter()
                                .map(|m| format!("'{m}'"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            self.tenants.key
                        ),
                    )
                    .with_remedy(
                        "Check the tenant ids (the values of the tenants table's key column).",
                    )
                    .into());
                }
                let mut v = ids.clone();
                v.sort();
                v.dedup();
                v
            }
        };
        if chosen.is_empty() {
            return Err(Failure::new(
                ExitStatus::Failure,
                format!("{tenants_table} holds no tenants."),
            )
            .with_remedy("Back up the whole database instead.")
            .into());
        }
        // Every user table with its exportable columns.
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text,
                    array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attgenerated = '')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE {USER_TABLES}
              GROUP BY 1, 2 ORDER BY 1, 2"
        );
        let mut with_column = Vec::new();
        let mut global = Vec::new();
        let mut tenants_cols = Vec::new();
        for r in query(&client, &sql, &[])? {
            let name = TableName {
                schema: r.get(0),
                name: r.get(1),
            };
            let columns: Vec<String> = r.get::<_, Option<Vec<String>>>(2).unwrap_or_default();
            if name == tenants_table {
                tenants_cols = columns;
            } else if columns.contains(&self.tenants.column) {
                with_column.push(Table {
                    name,
                    columns,
                    by: self.tenants.column.clone(),
                });
            } else {
                global.push(name.to_string());
            }
        }
        // Every name goes into a one-line COPY header.
        super::one_line_name("schema", &tenants_table.schema)?;
        super::one_line_name("table", &tenants_table.name)?;
        for c in &tenants_cols {
            super::one_line_name("column", c)?;
        }
        for t in &with_column {
            super::one_line_name("schema", &t.name.schema)?;
            super::one_line_name("table", &t.name.name)?;
            for c in &t.columns {
                super::one_line_name("column", c)?;
            }
        }
        let order = fk_order(
            &client,
            &with_column
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>(),
        )?;
        let mut tables = vec![Table {
            name: tenants_table.clone(),
            columns: tenants_cols,
            by: self.tenants.key.clone(),
        }];
        for n in &order {
            tables.push(
                with_column
                    .iter()
                    .find(|t| &t.name == n)
                    .expect("ordered from this list")
                    .clone(),
            );
        }
        if !global.is_empty() {
            tracing::warn!(
                "{} table{} without the tenant column \"{}\" {} not part of a tenant backup (listed in the manifest): {}",
                global.len(),
                if global.len() == 1 { "" } else { "s" },
                self.tenants.column,
                if global.len() == 1 { "is" } else { "are" },
                global.join(", ")
            );
        }
        // Many tenants: every table read once, in the tenant column's byte
        // order (the order of `chosen`), into a spill.
        let many = chosen.len() >= ONE_PASS_FROM && chosen.len() * 8 >= tenant_count;
        let one_pass = (matches!(self.selection, Selection::All) || many)
            && tables.iter().all(|t| t.columns.contains(&t.by));
        let chosen = Tenants::new(TenantIds::new(chosen));
        let merged = if one_pass {
            let started = std::time::Instant::now();
            let spills = spill_tables(&client, &conn, &tables, &chosen, &self.spill_dir)?;
            tracing::debug!(
                "tenant export: {} tables spilled in {:.2?}",
                tables.len(),
                started.elapsed()
            );
            Some(Arc::new(Mutex::new(Merged {
                spills,
                headers: tables.iter().map(copy_header).collect(),
                next: 0,
            })))
        } else {
            None
        };
        self.meta = serde_json::json!({
            "mode": "tenants",
            "server_version": facts.server_version,
            "database": facts.database,
            "role": facts.role,
            "url": conn.display(),
            "snapshot": "REPEATABLE READ, READ ONLY (one snapshot for every tenant)",
            "export": if one_pass { "one COPY per table, merged by tenant" } else { "one COPY per table and tenant" },
            "tenant_spec": self.tenants,
            "tenants_table": tenants_table.to_string(),
            "tables": tables.iter().map(|t| t.name.to_string()).collect::<Vec<_>>(),
            "tables_without_tenant_column": global,
        });
        self.chosen = chosen;
        *self.counts.lock().unwrap() = Some(CountTable::new(
            tables.iter().map(|t| t.name.to_string()).collect(),
        ));
        self.state = Some(State {
            client,
            tables,
            merged,
            next: 0,
        });
        Ok(())
    }
}

/// The line that opens a table's COPY block in an artifact.
fn copy_header(t: &Table) -> Vec<u8> {
    format!(
        "COPY {} ({}) FROM stdin;\n",
        t.name.quoted(),
        column_list(t)
    )
    .into_bytes()
}

fn column_list(t: &Table) -> String {
    t.columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first line of a tenant's artifact.
fn artifact_header(tenant: &str) -> String {
    format!(
        "-- vaultctl tenant export: tenant {}; restore with vaultctl restore --type merge\n",
        super::comment_text(tenant)
    )
}

/// Every table's rows spilled in the tenant column's byte order (in the
/// order of `tables`): when the server exports its snapshot, on two new
/// connections in that snapshot, the tables shared out by size, each
/// connection read (and its rows sorted) by a thread of its own that also
/// drives its socket ([`ConnInfo::connect_on_this_thread`]), so the
/// server's COPY and vaultctl's sort run on both cores. Without the
/// snapshot or the connections, all go through `client`.
fn spill_tables(
    client: &Client,
    conn: &ConnInfo,
    tables: &[Table],
    tenants: &Tenants,
    dir: &std::path::Path,
) -> Result<Vec<Spill>> {
    let lanes_open = match open_lanes(client, conn) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::debug!("tenant export on one connection: {e:#}");
            None
        }
    };
    // Largest first, each to the lane with less so far. A plain table
    // without inheritance children is read with `COPY table`, a bit cheaper
    // for the server than `COPY (SELECT …)` (same rows).
    let mut sized: Vec<(i64, usize)> = Vec::with_capacity(tables.len());
    let mut plain = vec![false; tables.len()];
    for (i, t) in tables.iter().enumerate() {
        let row = &query(
            client,
            "SELECT pg_relation_size(c.oid), c.relkind = 'r' AND NOT c.relhassubclass
               FROM pg_class c WHERE c.oid = $1::text::regclass",
            &[&t.name.quoted()],
        )?[0];
        sized.push((row.get(0), i));
        plain[i] = row.get(1);
    }
    sized.sort_by(|a, b| b.cmp(a));
    let mut lanes: [(i64, Vec<usize>); 2] = Default::default();
    for (size, i) in sized {
        let lane = if lanes_open.is_some() && lanes[1].0 < lanes[0].0 {
            1
        } else {
            0
        };
        lanes[lane].0 += size;
        lanes[lane].1.push(i);
    }
    let Some([first, second]) = lanes_open else {
        let mut spills = Vec::with_capacity(tables.len());
        for (i, t) in tables.iter().enumerate() {
            spills.push(runtime().block_on(spill_table(client, t, plain[i], tenants, dir))?);
        }
        return Ok(spills);
    };
    // One lane: its tables on its connection, then COMMIT.
    let run = |(rt, c): Lane, lane: &[usize]| -> Result<Vec<(usize, Spill)>> {
        rt.block_on(async {
            let mut out = Vec::with_capacity(lane.len());
            for &i in lane {
                out.push((
                    i,
                    spill_table(&c, &tables[i], plain[i], tenants, dir).await?,
                ));
            }
            c.batch_execute("COMMIT")
                .await
                .map_err(|e| anyhow::anyhow!("{}", pg_error(&e)))?;
            Ok(out)
        })
    };
    let (a, b) = std::thread::scope(|scope| {
        let b = std::thread::Builder::new()
            .name("vaultctl-copy".into())
            .spawn_scoped(scope, || run(second, &lanes[1].1));
        let a = run(first, &lanes[0].1);
        let b = match b {
            Err(e) => Err(e.into()),
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the tenant export thread panicked"))),
        };
        (a, b)
    });
    let mut spills: Vec<Option<Spill>> = tables.iter().map(|_| None).collect();
    for (i, s) in a?.into_iter().chain(b?) {
        spills[i] = Some(s);
    }
    Ok(spills
        .into_iter()
        .map(|s| s.expect("every table spilled"))
        .collect())
}

/// A connection of a spill lane and the runtime of the thread that drives it.
type Lane = (tokio::runtime::Runtime, Client);

/// Two connections in `client`'s snapshot (`pg_export_snapshot`), one per
/// spill lane, each on a runtime of its own
/// ([`ConnInfo::connect_on_this_thread`]; the runtime moves to the lane's
/// thread with it).
fn open_lanes(client: &Client, conn: &ConnInfo) -> Result<[Lane; 2]> {
    let snapshot: String = query(client, "SELECT pg_export_snapshot()", &[])?[0].get(0);
    let in_snapshot = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
        quote_literal(&snapshot)
    );
    let open = || -> Result<Lane> {
        let (rt, c) = conn.connect_on_this_thread()?;
        rt.block_on(c.batch_execute(&in_snapshot)).map_err(|e| {
            anyhow::anyhow!("joining the export's snapshot failed: {}", pg_error(&e))
        })?;
        Ok((rt, c))
    };
    Ok([open()?, open()?])
}

/// The rows of `t` of every one of `tenants`, sorted by tenant, in an
/// unnamed file in `dir`: read unsorted (`plain`: with `COPY table`),
/// sorted in runs ([`RunWriter`]).
async fn spill_table(
    client: &Client,
    t: &Table,
    plain: bool,
    tenants: &Tenants,
    dir: &std::path::Path,
) -> Result<Spill> {
    let field = t
        .columns
        .iter()
        .position(|c| c == &t.by)
        .expect("checked by the caller");
    let sql = if plain {
        format!("COPY {} ({}) TO STDOUT", t.name.quoted(), column_list(t))
    } else {
        format!(
            "COPY (SELECT {} FROM {}) TO STDOUT",
            column_list(t),
            t.name.quoted()
        )
    };
    let started = std::time::Instant::now();
    let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("exporting {} failed: {e}", t.name);
    let mut runs = RunWriter::new(
        t.name.to_string(),
        spill_file(dir)?,
        field,
        tenants.clone(),
        RUN_BYTES,
    );
    let stream = client
        .copy_out(sql.as_str())
        .await
        .map_err(|e| failed(&pg_error(&e)))?;
    futures::pin_mut!(stream);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| failed(&pg_error(&e)))?;
        bytes += chunk.len() as u64;
        runs.push(&chunk)
            .map_err(|e| failed(&format!("{e:#} (in {})", dir.display())))?;
    }
    let spill = runs
        .finish()
        .map_err(|e| failed(&format!("{e:#} (in {})", dir.display())))?;
    tracing::debug!(
        "tenant export: {} read and sorted in {:.2?} ({bytes} bytes)",
        t.name,
        started.elapsed()
    );
    Ok(spill)
}

/// The one-pass export: every table's spill, read tenant by tenant.
struct Merged {
    spills: Vec<Spill>,
    headers: Vec<Vec<u8>>,
    /// The position of the tenant being read (or next to be read).
    next: usize,
}

/// One tenant's artifact, produced from the spills as it is read.
struct MergedReader {
    merged: Arc<Mutex<Merged>>,
    index: usize,
    tenant: String,
    counts: Counts,
    /// This tenant's rows per table so far.
    rows: Vec<u64>,
    started: bool,
    /// The table being emitted, and whether its COPY line is out.
    table: usize,
    in_table: bool,
    table_rows: u64,
    done: bool,
    buf: Vec<u8>,
    pos: usize,
}

impl MergedReader {
    fn fill(&mut self) -> Result<()> {
        let mut m = self.merged.lock().unwrap();
        if !self.started {
            if m.next > self.index {
                anyhow::bail!("tenant '{}' was read out of order", self.tenant);
            }
            // An earlier tenant left unread: its rows are skipped.
            m.next = self.index;
            self.started = true;
            self.buf
                .extend_from_slice(artifact_header(&self.tenant).as_bytes());
        } else if m.next != self.index {
            anyhow::bail!(
                "another tenant was read before tenant '{}' ended",
                self.tenant
            );
        }
        let Merged {
            spills,
            headers,
            next,
        } = &mut *m;
        while self.buf.len() < COALESCE && !self.done {
            if !self.in_table {
                self.buf.extend_from_slice(&headers[self.table]);
                self.in_table = true;
                self.table_rows = 0;
            }
            let spill = &mut spills[self.table];
            let (rows, end) = spill.take(self.index as u32, &mut self.buf, COALESCE)?;
            self.table_rows += rows;
            if end {
                self.buf.extend_from_slice(b"\\.\n");
                self.rows.push(self.table_rows);
                self.in_table = false;
                self.table += 1;
                if self.table == spills.len() {
                    self.done = true;
                    *next = self.index + 1;
                    push_counts(&self.counts, &self.rows)?;
                }
            }
        }
        Ok(())
    }
}

impl Read for MergedReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.buf.clear();
            self.pos = 0;
            self.fill().map_err(std::io::Error::other)?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Records one tenant's rows per table (in table order).
fn push_counts(counts: &Counts, rows: &[u64]) -> Result<()> {
    match counts.lock().unwrap().as_mut() {
        Some(table) => table.push(rows),
        None => anyhow::bail!("the tenant export's row counts were taken before its end"),
    }
}

/// Writes buffered bytes in large writes (COPY yields one message per row).
const COALESCE: usize = 1024 * 1024;

async fn export_tenant(
    client: &Client,
    tables: &[Table],
    tenant: &str,
    out: &mut impl Write,
    counts: &mut Vec<u64>,
) -> Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(COALESCE + 64 * 1024);
    buf.extend_from_slice(artifact_header(tenant).as_bytes());
    for t in tables {
        buf.extend_from_slice(&copy_header(t));
        let sql = format!(
            "COPY (SELECT {} FROM {} WHERE {} = {}) TO STDOUT",
            column_list(t),
            t.name.quoted(),
            quote_ident(&t.by),
            quote_literal(tenant)
        );
        let stream = client
            .copy_out(sql.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("exporting {} failed: {}", t.name, pg_error(&e)))?;
        futures::pin_mut!(stream);
        let mut rows = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| anyhow::anyhow!("exporting {} failed: {}", t.name, pg_error(&e)))?;
            rows += memchr::memchr_iter(b'\n', &chunk).count() as u64;
            buf.extend_from_slice(&chunk);
            if buf.len() >= COALESCE {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        buf.extend_from_slice(b"\\.\n");
        counts.push(rows);
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
}

impl Source for TenantExport {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        if self.state.is_none() {
            self.start()?;
        }
        let state = self.state.as_mut().expect("started");
        let Some(tenant) = self.chosen.ids().get(state.next).cloned() else {
            execute(&state.client, "COMMIT")?;
            return Ok(None);
        };
        let index = state.next;
        state.next += 1;
        if let Some(merged) = &state.merged {
            let reader = MergedReader {
                merged: merged.clone(),
                index,
                tenant: tenant.clone(),
                counts: self.counts.clone(),
                rows: Vec::with_capacity(state.tables.len()),
                started: false,
                table: 0,
                in_table: false,
                table_rows: 0,
                done: false,
                buf: Vec::new(),
                pos: 0,
            };
            let merged = merged.clone();
            let t = tenant.clone();
            return Ok(Some(ArtifactStream {
                name: artifact_name(&tenant),
                format: "stream".into(),
                reader: Box::new(reader),
                finish: Box::new(move || {
                    if merged.lock().unwrap().next > index {
                        Ok(())
                    } else {
                        Err(anyhow::anyhow!(
                            "the export of tenant '{t}' stopped before its end"
                        ))
                    }
                }),
            }));
        }
        let (reader, mut writer) = std::io::pipe()?;
        let client = state.client.clone();
        let tables = state.tables.clone();
        let counts = self.counts.clone();
        let t = tenant.clone();
        let handle = std::thread::Builder::new()
            .name("vaultctl-copy".into())
            .spawn(move || -> Result<()> {
                let mut c = Vec::with_capacity(tables.len());
                let r =
                    runtime().block_on(export_tenant(&client, &tables, &t, &mut writer, &mut c));
                r.and_then(|()| push_counts(&counts, &c))
                    .with_context(|| format!("the export of tenant '{t}' failed"))
            })?;
        Ok(Some(ArtifactStream {
            name: artifact_name(&tenant),
            format: "stream".into(),
            reader: Box::new(reader),
            finish: Box::new(move || {
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("the export thread panicked"))?
            }),
        }))
    }

    fn metadata(&self) -> serde_json::Value {
        self.meta.clone()
    }

    fn take_rows(&mut self) -> Option<CountTable> {
        self.counts.lock().unwrap().take()
    }

    fn tenants(&self) -> &[String] {
        self.chosen.ids()
    }
}

/// The artifact of one tenant in a tenant backup.
pub fn artifact_name(tenant: &str) -> String {
    format!("tenant-{tenant}")
}

/// The tenants table of `spec` and every tenant id in it (its key column as
/// text, in byte order, once each).
fn tenant_ids(
    client: &Client,
    conn: &ConnInfo,
    spec: &TenantSpec,
) -> Result<(TableName, Vec<String>)> {
    let (schema, tname) = match spec.table.split_once('.') {
        Some((s, t)) => (Some(s.to_string()), t.to_string()),
        None => (None, spec.table.clone()),
    };
    let found = query(
            client,
            &format!(
                "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE {USER_TABLES} AND c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2) AND ($2::text IS NOT NULL OR n.nspname = ANY (current_schemas(false)))
                  ORDER BY array_position(current_schemas(false), n.nspname::name) LIMIT 1"
            ),
            &[&tname, &schema],
        )?;
    let Some(row) = found.first() else {
        return Err(Failure::new(ExitStatus::Usage, format!("the tenants table \"{}\" does not exist in {}.", spec.table, conn.display()))
                .with_remedy("Fix [source.tenants] table in the config (schema.table if it is not on the search path).")
                .into());
    };
    let tenants_table = TableName {
        schema: row.get(0),
        name: row.get(1),
    };
    let key = quote_ident(&spec.key);
    let mut all: Vec<String> = query(
        client,
        &format!(
            "SELECT {key}::text FROM {} WHERE {key} IS NOT NULL ORDER BY 1",
            tenants_table.quoted()
        ),
        &[],
    )
    .with_context(|| {
        format!(
            "cannot list the tenants (column \"{}\" of {tenants_table})",
            spec.key
        )
    })?
    .iter()
    .map(|r| r.get(0))
    .collect();
    // Byte order: the order the one-pass export merges in.
    all.sort();
    all.dedup();
    Ok((tenants_table, all))
}

/// Every tenant id in the live database of `spec` (a postgres source with
/// [source.tenants]): what the wizard offers to restore.
pub fn list(spec: &PostgresSpec) -> Result<Vec<String>> {
    let tenants = spec.tenants.as_ref().ok_or_else(|| {
        Failure::new(
            ExitStatus::Usage,
            "this postgres source has no [source.tenants] table in the config.",
        )
    })?;
    let conn = ConnInfo::new(&spec.url, spec.password_file.as_deref())?;
    let client = conn.connect()?;
    Ok(tenant_ids(&client, &conn, tenants)?.1)
}
