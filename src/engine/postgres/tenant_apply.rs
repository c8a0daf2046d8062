//! Applying a tenant export taken at an earlier time (a tenant
//! point-in-time restore) to the live database, in one transaction. The
//! export's COPY blocks are staged the way every merge restore stages them
//! ([`restore::stage_and_apply`]: [`super::load::Loader`]'s staging tables,
//! in parallel with several jobs), then:
//!
//! * **merge** — `INSERT … ON CONFLICT DO NOTHING`, parents first: rows
//!   deleted since come back, rows that exist now are kept as they are;
//! * **replace** — the tenant's current rows deleted children first, then
//!   the staged rows inserted parents first, so the tenant's rows are
//!   exactly those of the export and no other tenant's row changes;
//! * **diff** — per table, the staged rows compared with the tenant's rows
//!   now by primary key, in SQL on the server (memory stays bounded
//!   whatever the size), then rolled back: nothing is written.
//!
//! Sequences are moved past the restored ids after merge and replace.

use std::collections::BTreeMap;

use anyhow::Result;
use tokio_postgres::Client;

use super::load::Staged;
use super::restore::{self, Opener, Options, Report};
use super::{pg_error, query, quote_ident, quote_literal, TableName};
use crate::config::TenantSpec;
use crate::storage::runtime;

/// What to do with the staged rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Merge,
    Replace,
    #[serde(rename = "dry-run")]
    Diff,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Merge => "merge",
            Action::Replace => "replace",
            Action::Diff => "dry-run",
        }
    }
}

/// How one table of the tenant differs between the export and now.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TableDiff {
    pub table: String,
    /// Compared by primary key (else as whole rows, and `differ` is 0).
    pub primary_key: Vec<String>,
    /// Rows in the export whose key is not in the table now (deleted since).
    pub only_at_time: u64,
    /// The tenant's rows now whose key the export does not hold (added since).
    pub only_now: u64,
    /// Rows under the same key with other values (changed since).
    pub differ: u64,
    /// Up to [`SAMPLES`] keys of each kind, as `(k1,k2)` text.
    pub samples_only_at_time: Vec<String>,
    pub samples_only_now: Vec<String>,
    pub samples_differ: Vec<String>,
}

impl TableDiff {
    /// The table's name, marked when it was compared as whole rows.
    pub fn label(&self) -> String {
        if self.primary_key.is_empty() {
            format!("{} (no primary key: whole rows)", self.table)
        } else {
            self.table.clone()
        }
    }
}

/// Keys listed per kind of difference.
pub const SAMPLES: i64 = 20;

/// What the apply did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Applied {
    /// merge and replace: rows per table (inserted, skipped, deleted).
    pub report: Report,
    /// diff: per table, in foreign-key order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<TableDiff>,
}

/// Stages the `count` artifacts through the merge restore's staging
/// ([`restore::stage_and_apply`]: the loader's staging tables, on
/// `opts.jobs` connections) and applies them to `opts.target` as `action`
/// says, for the tenants `ids` identified by `spec`. One transaction:
/// committed for merge and replace once every statement ran, always rolled
/// back for diff, rolled back on any error — including one `ended` returns
/// (the export's own end: a stream that stopped early because its producer
/// failed must not commit).
pub fn apply(
    open: Opener<'_>,
    count: usize,
    opts: &Options,
    tenants: (&TenantSpec, &[String]),
    action: Action,
    ended: &mut dyn FnMut() -> Result<()>,
) -> Result<Applied> {
    let (spec, ids) = tenants;
    let staged = restore::stage_and_apply(open, count, opts, &mut |client, staged| {
        let out = apply_staged(client, staged, spec, ids, action)?;
        ended()?;
        Ok((out, action != Action::Diff))
    });
    let (mut out, run) = staged.map_err(|e| {
        e.context(format!(
            "the tenant restore failed and was rolled back; {} is as it was",
            opts.target.display()
        ))
    })?;
    out.report.database = opts.target.display();
    out.report.tables_without_tenant_column = run.global;
    out.report.phases = Some(Box::new(run.phases));
    Ok(out)
}

fn apply_staged(
    client: &Client,
    staged: &[Staged],
    spec: &TenantSpec,
    ids: &[String],
    action: Action,
) -> Result<Applied> {
    let tables = restore::staged_tables(staged);
    let order = super::fk_order(client, &tables)?;
    let selector = |t: &TableName| -> String {
        let column = if is_tenants_table(spec, t) {
            &spec.key
        } else {
            &spec.column
        };
        format!(
            "{} IN ({})",
            quote_ident(column),
            ids.iter()
                .map(|i| quote_literal(i))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if action == Action::Diff {
        let mut diff = Vec::new();
        for t in &order {
            for s in staged.iter().filter(|s| &s.table == t) {
                diff.push(diff_table(client, s, &selector(t))?);
            }
        }
        return Ok(Applied {
            diff,
            ..Default::default()
        });
    }
    let mut deleted = BTreeMap::new();
    if action == Action::Replace {
        // Children first, so no foreign key sees a parent go before its rows.
        for t in order.iter().rev() {
            let sql = format!("DELETE FROM {} WHERE {}", t.quoted(), selector(t));
            let n = runtime()
                .block_on(client.execute(sql.as_str(), &[]))
                .map_err(|e| {
                    anyhow::anyhow!("deleting the tenant's rows of {t} failed: {}", pg_error(&e))
                })?;
            deleted.insert(t.clone(), n);
        }
    }
    Ok(Applied {
        report: restore::insert_staged(client, staged, &mut deleted)?,
        ..Default::default()
    })
}

/// Whether `t` is the tenants table `spec.table` names (`table` or
/// `schema.table`).
fn is_tenants_table(spec: &TenantSpec, t: &TableName) -> bool {
    match spec.table.split_once('.') {
        Some((schema, name)) => t.schema == schema && t.name == name,
        None => t.name == spec.table,
    }
}

/// The primary key columns of `t`, when every one is among `columns`.
fn primary_key(client: &Client, t: &TableName, columns: &[String]) -> Result<Vec<String>> {
    let rows = query(
        client,
        "SELECT a.attname::text FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = $1::text::regclass AND i.indisprimary
          ORDER BY array_position(i.indkey::int2[], a.attnum)",
        &[&t.quoted()],
    )?;
    let key: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if key.iter().all(|k| columns.contains(k)) {
        Ok(key)
    } else {
        Ok(Vec::new())
    }
}

fn list(prefix: &str, cols: &[String]) -> String {
    cols.iter()
        .map(|c| format!("{prefix}.{}", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One table's differences, counted (and sampled) by the server.
fn diff_table(client: &Client, s: &Staged, selector: &str) -> Result<TableDiff> {
    let t = &s.table;
    let key = primary_key(client, t, &s.columns)?;
    let mut d = TableDiff {
        table: t.to_string(),
        primary_key: key.clone(),
        ..Default::default()
    };
    let row = |p: &str| format!("ROW({})::text", list(p, &s.columns));
    let count = |sql: String| -> Result<(u64, Vec<String>)> {
        let n: i64 = query(client, &format!("SELECT count(*) FROM ({sql}) x"), &[])?[0].get(0);
        let samples = query(
            client,
            &format!("SELECT k FROM ({sql}) x ORDER BY k LIMIT {SAMPLES}"),
            &[],
        )?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
        Ok((n as u64, samples))
    };
    let (stage, table) = (s.stage.as_str(), t.quoted());
    if key.is_empty() {
        // No usable key: whole rows as multisets.
        (d.only_at_time, d.samples_only_at_time) = count(format!(
            "SELECT {} AS k FROM {stage} snap EXCEPT ALL SELECT {} FROM {table} cur WHERE {selector}",
            row("snap"),
            row("cur")
        ))?;
        (d.only_now, d.samples_only_now) = count(format!(
            "SELECT {} AS k FROM {table} cur WHERE {selector} EXCEPT ALL SELECT {} FROM {stage} snap",
            row("cur"),
            row("snap")
        ))?;
        return Ok(d);
    }
    let (ks, kc) = (list("snap", &key), list("cur", &key));
    let k = |p: &str| format!("ROW({})::text", list(p, &key));
    (d.only_at_time, d.samples_only_at_time) = count(format!(
        "SELECT {} AS k FROM {stage} snap WHERE NOT EXISTS (SELECT 1 FROM {table} cur WHERE ({kc}) = ({ks}))",
        k("snap")
    ))?;
    (d.only_now, d.samples_only_now) = count(format!(
        "SELECT {} AS k FROM {table} cur WHERE {selector} AND NOT EXISTS (SELECT 1 FROM {stage} snap WHERE ({ks}) = ({kc}))",
        k("cur")
    ))?;
    (d.differ, d.samples_differ) = count(format!(
        "SELECT {} AS k FROM {stage} snap JOIN {table} cur ON ({kc}) = ({ks}) WHERE {} IS DISTINCT FROM {}",
        k("snap"),
        row("snap"),
        row("cur")
    ))?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenants_table_is_matched_with_or_without_schema() {
        let t = TableName {
            schema: "app".into(),
            name: "tenants".into(),
        };
        let mut spec = TenantSpec {
            table: "tenants".into(),
            key: "id".into(),
            column: "tenant_id".into(),
        };
        assert!(is_tenants_table(&spec, &t));
        spec.table = "app.tenants".into();
        assert!(is_tenants_table(&spec, &t));
        spec.table = "public.tenants".into();
        assert!(!is_tenants_table(&spec, &t));
        assert_eq!(
            list("cur", &["a".into(), "B".into()]),
            "cur.\"a\", cur.\"B\""
        );
    }
}
