//! Checks a restored database against its backup's manifest: every table
//! the backup had is present, and its rows match — exactly against the
//! manifest's `row_counts` (counted from the dump's COPY blocks at backup
//! time) or, for older manifests, the rows the restore streamed; the
//! planner's estimates (`tables`) are compared with a tolerance and only
//! warn, since they can be stale.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::Serialize;

use super::restore::TableCount;
use super::{query, ConnInfo, TableName, USER_TABLES};

#[derive(Debug, Clone, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub present: bool,
    /// Rows the backup says the table had.
    pub expected: Option<u64>,
    /// Where `expected` comes from: `manifest` (exact), `stream` (exact, the
    /// rows the restore loaded), `estimate` (planner statistics) or `none`.
    pub basis: &'static str,
    /// `count(*)` in the restored database.
    pub actual: Option<u64>,
    /// `pass`, `warn` or `fail`.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub ok: bool,
    pub tables_expected: usize,
    pub tables_present: usize,
    pub rows: u64,
    pub tables: Vec<TableCheck>,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

impl Verification {
    /// `12/12 tables present, 3400 rows`.
    pub fn counts(&self) -> String {
        format!(
            "{}/{} tables present, {} rows",
            self.tables_present, self.tables_expected, self.rows
        )
    }
}

fn numbers(v: Option<&serde_json::Value>) -> BTreeMap<String, Option<u64>> {
    v.and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Checks `target` (just restored from a backup with manifest engine
/// metadata `engine`; `streamed`: the restore's per-table rows).
pub fn verify_restore(
    target: &ConnInfo,
    engine: &serde_json::Value,
    streamed: &[TableCount],
) -> Result<Verification> {
    let estimates = numbers(engine.get("tables"));
    let exact = numbers(engine.get("row_counts"));
    let streamed: BTreeMap<String, u64> =
        streamed.iter().map(|c| (c.table.clone(), c.rows)).collect();
    let client = target.connect()?;
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_TABLES}"
    );
    let present: BTreeMap<String, TableName> = query(&client, &sql, &[])?
        .iter()
        .map(|r| {
            let t = TableName {
                schema: r.get(0),
                name: r.get(1),
            };
            (t.to_string(), t)
        })
        .collect();
    // Partitions hold their parent's COPY data: count them too.
    let all_relations: BTreeSet<String> = query(
        &client,
        "SELECT n.nspname::text || '.' || c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')",
        &[],
    )?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let mut names: BTreeSet<String> = estimates.keys().cloned().collect();
    names.extend(exact.keys().cloned());
    names.extend(streamed.keys().cloned());
    let mut v = Verification {
        ok: true,
        tables_expected: names.len(),
        tables_present: 0,
        rows: 0,
        tables: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    for name in names {
        let (expected, basis) = if let Some(n) = exact.get(&name).copied().flatten() {
            (Some(n), "manifest")
        } else if let Some(n) = streamed.get(&name) {
            (Some(*n), "stream")
        } else if let Some(n) = estimates.get(&name).copied().flatten() {
            (Some(n), "estimate")
        } else {
            (None, "none")
        };
        let quoted = match present.get(&name) {
            Some(t) => Some(t.quoted()),
            None if all_relations.contains(&name) => {
                let (s, n) = name.split_once('.').unwrap_or(("public", name.as_str()));
                Some(super::qualified(s, n))
            }
            None => None,
        };
        let Some(quoted) = quoted else {
            v.ok = false;
            v.problems.push(format!("table {name} is missing"));
            v.tables.push(TableCheck {
                table: name,
                present: false,
                expected,
                basis,
                actual: None,
                status: "fail",
            });
            continue;
        };
        v.tables_present += 1;
        let actual: i64 =
            query(&client, &format!("SELECT count(*) FROM ONLY {quoted}"), &[])?[0].get(0);
        let actual = actual as u64;
        v.rows += actual;
        let status = match (expected, basis) {
            (Some(e), "manifest" | "stream") if e != actual => {
                v.ok = false;
                v.problems.push(format!(
                    "table {name} has {actual} rows, the backup has {e}"
                ));
                "fail"
            }
            (Some(e), "estimate") if actual.abs_diff(e) > 10.max(e / 10) => {
                v.warnings.push(format!(
                    "table {name} has {actual} rows; the backup's planner estimate was {e}"
                ));
                "warn"
            }
            _ => "pass",
        };
        v.tables.push(TableCheck {
            table: name,
            present: true,
            expected,
            basis,
            actual: Some(actual),
            status,
        });
    }
    Ok(v)
}
