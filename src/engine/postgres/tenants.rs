//! Tenant-scoped backups: one REPEATABLE READ, READ ONLY snapshot, one
//! artifact per tenant holding that tenant's rows of every table carrying
//! the tenant column (and its row of the tenants table), in foreign-key
//! order, as COPY blocks.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use futures::StreamExt;
use tokio_postgres::Client;

use super::{
    execute, fk_order, pg_error, query, quote_ident, quote_literal, ConnInfo, TableName,
    USER_TABLES,
};
use crate::config::{PostgresSpec, TenantSpec};
use crate::error::{ExitStatus, Failure};
use crate::repo::backup::{ArtifactStream, Source};
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

pub struct TenantExport {
    spec: PostgresSpec,
    tenants: TenantSpec,
    selection: Selection,
    state: Option<State>,
    counts: Arc<Mutex<BTreeMap<String, BTreeMap<String, u64>>>>,
    meta: serde_json::Value,
    chosen: Vec<String>,
}

struct State {
    client: Arc<Client>,
    tables: Vec<Table>,
    queue: VecDeque<String>,
}

impl TenantExport {
    pub fn new(spec: PostgresSpec, selection: Selection) -> Result<Self> {
        let tenants = spec.tenants.clone().ok_or_else(|| {
            Failure::new(ExitStatus::Usage, "this postgres source has no [source.tenants] table in the config.")
                .with_remedy("Add [source.tenants] with table, key and column, or back up the whole database without --tenant.")
        })?;
        Ok(TenantExport {
            spec,
            tenants,
            selection,
            state: None,
            counts: Arc::default(),
            meta: serde_json::Value::Null,
            chosen: Vec::new(),
        })
    }

    fn start(&mut self) -> Result<()> {
        let conn = ConnInfo::new(&self.spec.url, self.spec.password_file.as_deref())?;
        let client = conn.connect()?;
        super::dump::rls_preflight(&client, &conn)?;
        execute(&client, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        let facts = super::dump::server_facts(&client)?;
        let (tenants_table, all) = tenant_ids(&client, &conn, &self.tenants)?;
        let chosen = match &self.selection {
            Selection::All => all.clone(),
            Selection::Ids(ids) => {
                let missing: Vec<&String> = ids.iter().filter(|i| !all.contains(i)).collect();
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
        self.meta = serde_json::json!({
            "mode": "tenants",
            "server_version": facts.server_version,
            "database": facts.database,
            "role": facts.role,
            "url": conn.display(),
            "snapshot": "REPEATABLE READ, READ ONLY (one snapshot for every tenant)",
            "tenant_spec": self.tenants,
            "tenants_table": tenants_table.to_string(),
            "tables": tables.iter().map(|t| t.name.to_string()).collect::<Vec<_>>(),
            "tables_without_tenant_column": global,
        });
        self.chosen = chosen.clone();
        self.state = Some(State {
            client,
            tables,
            queue: chosen.into(),
        });
        Ok(())
    }
}

/// Writes buffered bytes in large writes (COPY yields one message per row).
const COALESCE: usize = 1024 * 1024;

async fn export_tenant(
    client: &Client,
    tables: &[Table],
    tenant: &str,
    out: &mut impl Write,
    counts: &mut BTreeMap<String, u64>,
) -> Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(COALESCE + 64 * 1024);
    writeln!(
        buf,
        "-- vaultctl tenant export: tenant {}; restore with vaultctl restore --type merge",
        super::comment_text(tenant)
    )?;
    for t in tables {
        let cols = t
            .columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(buf, "COPY {} ({cols}) FROM stdin;", t.name.quoted())?;
        let sql = format!(
            "COPY (SELECT {cols} FROM {} WHERE {} = {}) TO STDOUT",
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
        counts.insert(t.name.to_string(), rows);
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
        let Some(tenant) = state.queue.pop_front() else {
            execute(&state.client, "COMMIT")?;
            return Ok(None);
        };
        let (reader, mut writer) = std::io::pipe()?;
        let client = state.client.clone();
        let tables = state.tables.clone();
        let counts = self.counts.clone();
        let t = tenant.clone();
        let handle = std::thread::Builder::new()
            .name("vaultctl-copy".into())
            .spawn(move || -> Result<()> {
                let mut c = BTreeMap::new();
                let r =
                    runtime().block_on(export_tenant(&client, &tables, &t, &mut writer, &mut c));
                counts.lock().unwrap().insert(t.clone(), c);
                r.with_context(|| format!("the export of tenant '{t}' failed"))
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
        let mut m = self.meta.clone();
        if let Some(o) = m.as_object_mut() {
            o.insert(
                "rows".into(),
                serde_json::to_value(&*self.counts.lock().unwrap()).unwrap_or_default(),
            );
        }
        m
    }

    fn tenants(&self) -> Vec<String> {
        self.chosen.clone()
    }
}

/// The artifact of one tenant in a tenant backup.
pub fn artifact_name(tenant: &str) -> String {
    format!("tenant-{tenant}")
}

/// The tenants table of `spec` and every tenant id in it (its key column as
/// text, sorted).
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
    let all = query(
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
