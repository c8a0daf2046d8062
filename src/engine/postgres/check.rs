//! Checks a restored database against its backup's manifest: every table
//! the backup had is present, and its rows match — exactly against the
//! manifest's `row_counts` (counted from the dump's COPY blocks at backup
//! time) or, for older manifests, the rows the restore streamed; the
//! planner's estimates (`tables`) are compared with a tolerance and only
//! warn, since they can be stale.
//!
//! **Where "actual" comes from.** A full restore knows, for free, how many
//! rows the server stored in each table: the `COPY n` command tag the
//! server returns for every COPY segment, summed per table
//! ([`TableCount::acknowledged`]). That is the server's own word, as a
//! `count(*)` is, and it costs nothing, whereas counting every table again
//! after the load read the whole database once more, sequentially (about a
//! quarter of the restore's time at 1 GiB), on the recovery time. So a
//! table with an acknowledgement is checked against it (`actual_from:
//! "copy"`), and only tables without one (no COPY block: a partitioned
//! parent, a table of an estimate only) are counted (`"count"`); with
//! `count_rows` (`dr run --count-rows`) every table is counted, which also
//! sees rows changed after the load (by a post-data statement or anyone
//! else on the server).

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
    /// Rows in the restored database.
    pub actual: Option<u64>,
    /// Where `actual` comes from: `copy` (the server's `COPY n` tags of the
    /// restore), `count` (`SELECT count(*)` after the restore) or `none`
    /// (the table is missing).
    pub actual_from: &'static str,
    /// `pass`, `warn` or `fail`.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub ok: bool,
    pub tables_expected: usize,
    pub tables_present: usize,
    pub rows: u64,
    /// Tables whose rows came from the server's COPY tags, and tables
    /// counted with `count(*)`.
    pub acknowledged: usize,
    pub counted: usize,
    pub tables: Vec<TableCheck>,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

impl Verification {
    /// A passing check of `tables` expected tables, before any is looked at.
    fn expecting(tables: usize) -> Verification {
        Verification {
            ok: true,
            tables_expected: tables,
            tables_present: 0,
            rows: 0,
            acknowledged: 0,
            counted: 0,
            tables: Vec::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// `12/12 tables present, 3400 rows`.
    pub fn counts(&self) -> String {
        format!(
            "{}/{} tables present, {} rows",
            self.tables_present, self.tables_expected, self.rows
        )
    }

    /// `rows as the server acknowledged them (COPY tags) for 11 tables,
    /// counted for 1`.
    pub fn sources(&self) -> String {
        match (self.acknowledged, self.counted) {
            (0, n) => format!("rows counted for {n} tables"),
            (a, 0) => format!("rows as the server acknowledged them (COPY tags) for {a} tables"),
            (a, n) => format!(
                "rows as the server acknowledged them (COPY tags) for {a} tables, counted for {n}"
            ),
        }
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
/// metadata `engine`; `restored`: the restore's per-table rows). With
/// `count_rows`, every table is counted with `count(*)`, else only those
/// the server did not acknowledge rows for.
pub fn verify_restore(
    target: &ConnInfo,
    engine: &serde_json::Value,
    restored: &[TableCount],
    count_rows: bool,
) -> Result<Verification> {
    let estimates = numbers(engine.get("tables"));
    let exact = numbers(engine.get("row_counts"));
    let streamed: BTreeMap<String, u64> =
        restored.iter().map(|c| (c.table.clone(), c.rows)).collect();
    let acknowledged: BTreeMap<&str, u64> = restored
        .iter()
        .filter(|_| !count_rows)
        .filter_map(|c| Some((c.table.as_str(), c.acknowledged?)))
        .collect();
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
    let mut v = Verification::expecting(names.len());
    for name in names {
        let (expected, basis) = expectation(&name, &exact, &streamed, &estimates);
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
                actual_from: "none",
                status: "fail",
            });
            continue;
        };
        v.tables_present += 1;
        let (actual, actual_from) = match acknowledged.get(name.as_str()) {
            Some(n) => {
                v.acknowledged += 1;
                (*n, "copy")
            }
            None => {
                v.counted += 1;
                let n: i64 =
                    query(&client, &format!("SELECT count(*) FROM ONLY {quoted}"), &[])?[0].get(0);
                (n as u64, "count")
            }
        };
        v.rows += actual;
        let status = judge(&name, expected, basis, actual, &mut v);
        v.tables.push(TableCheck {
            table: name,
            present: true,
            expected,
            basis,
            actual: Some(actual),
            actual_from,
            status,
        });
    }
    Ok(v)
}

/// The rows the backup says `name` had, and where that comes from.
fn expectation(
    name: &str,
    exact: &BTreeMap<String, Option<u64>>,
    streamed: &BTreeMap<String, u64>,
    estimates: &BTreeMap<String, Option<u64>>,
) -> (Option<u64>, &'static str) {
    if let Some(n) = exact.get(name).copied().flatten() {
        (Some(n), "manifest")
    } else if let Some(n) = streamed.get(name) {
        (Some(*n), "stream")
    } else if let Some(n) = estimates.get(name).copied().flatten() {
        (Some(n), "estimate")
    } else {
        (None, "none")
    }
}

/// A present table's status: `fail` (recorded in `v`'s problems) when its
/// rows differ from an exact expectation, `warn` when they are far from
/// the planner's estimate, else `pass`.
fn judge(
    name: &str,
    expected: Option<u64>,
    basis: &str,
    actual: u64,
    v: &mut Verification,
) -> &'static str {
    match (expected, basis) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Verification {
        Verification::expecting(0)
    }

    #[test]
    fn missing_rows_fail_against_the_manifest_or_stream_and_only_warn_against_an_estimate() {
        let mut v = empty();
        assert_eq!(judge("public.a", Some(10), "manifest", 10, &mut v), "pass");
        assert!(v.ok);
        assert_eq!(judge("public.a", Some(10), "manifest", 9, &mut v), "fail");
        assert_eq!(judge("public.b", Some(10), "stream", 11, &mut v), "fail");
        assert!(!v.ok);
        assert_eq!(
            v.problems,
            [
                "table public.a has 9 rows, the backup has 10",
                "table public.b has 11 rows, the backup has 10"
            ]
        );
        let mut v = empty();
        assert_eq!(
            judge("public.c", Some(1000), "estimate", 950, &mut v),
            "pass"
        );
        assert_eq!(
            judge("public.c", Some(1000), "estimate", 500, &mut v),
            "warn"
        );
        assert_eq!(judge("public.d", None, "none", 5, &mut v), "pass");
        assert!(v.ok && v.problems.is_empty());
        assert_eq!(v.warnings.len(), 1);
    }

    #[test]
    fn the_manifest_is_preferred_to_the_stream_and_the_stream_to_estimates() {
        let exact = BTreeMap::from([("public.a".to_string(), Some(3)), ("public.b".into(), None)]);
        let streamed = BTreeMap::from([("public.a".to_string(), 4), ("public.b".into(), 5)]);
        let estimates = BTreeMap::from([("public.c".to_string(), Some(6))]);
        let e = |n| expectation(n, &exact, &streamed, &estimates);
        assert_eq!(e("public.a"), (Some(3), "manifest"));
        assert_eq!(e("public.b"), (Some(5), "stream"));
        assert_eq!(e("public.c"), (Some(6), "estimate"));
        assert_eq!(e("public.d"), (None, "none"));
    }
}
