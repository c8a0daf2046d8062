//! The operator's detail views: everything known about one backup
//! (`vaultctl show`) and one restore (`vaultctl restores show`).
//!
//! Data gathering only; the command line prints. Everything comes from the
//! catalog; a backup whose details the catalog lacks (a catalog rebuilt
//! without the identity) has them read from its manifest when the identity
//! is available, else the view holds what the sealed header gives and says
//! what needs the identity.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::catalog::{BackupRow, Catalog, DrRunRow, RestoreRow};
use crate::config::Config;
use crate::error::{ExitStatus, Failure};

/// What a backup detail shows without the identity, and why.
pub const NEEDS_IDENTITY: &str = "The note, tenants, engine facts (server and pg_dump versions, database, WAL start), artifacts and row counts are in the manifest body, which only the identity opens: give --identity FILE (or set keys.identity_file), or run `vaultctl catalog rebuild` with it.";

/// Whether one configured (or recorded) target holds the backup.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetPresence {
    pub target: String,
    pub present: bool,
    /// Not in the configuration (known only from the catalog).
    pub configured: bool,
}

/// One artifact of a backup.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArtifactView {
    pub name: String,
    pub format: String,
    pub size: u64,
    pub blake3: String,
}

/// One check that covered the backup: a `verify` run on a target that held
/// it, a drill or a DR run that restored it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckView {
    /// `verify`, `verify --read-data`, `drill` or `dr-run`.
    pub method: String,
    pub at: crate::clock::Timestamp,
    /// `ok`, `problems` (verify found some, naming this backup or not),
    /// `succeeded`, `failed` or `running`.
    pub outcome: String,
    /// The storage target checked or read from.
    pub target: Option<String>,
    /// Drills and DR runs: achieved recovery time.
    pub rto_ms: Option<u64>,
    /// Verify: problems naming this backup.
    pub problems: Vec<String>,
    /// Drills and DR runs: the `dr history` id.
    pub dr_run_id: Option<i64>,
}

/// Everything about one backup (the `show --json` shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackupView {
    #[serde(flatten)]
    pub backup: BackupRow,
    pub presence: Vec<TargetPresence>,
    /// False when only the sealed header's facts are known (see `needs_identity`).
    pub body_readable: bool,
    /// What is missing without the identity and how to get it.
    pub needs_identity: Option<String>,
    pub tenants: Vec<String>,
    /// Source-specific facts (versions, database, WAL start…), row counts removed.
    pub engine: serde_json::Value,
    pub artifacts: Vec<ArtifactView>,
    /// Rows per table (`schema.table`); tenant backups: per `tenant/schema.table`.
    pub table_rows: BTreeMap<String, u64>,
    /// When a drill or DR run last proved the backup restorable.
    pub verified_at: Option<String>,
    pub checks: Vec<CheckView>,
    pub restores: Vec<RestoreRow>,
}

/// Splits a backup's details (the catalog's, or those of a manifest body)
/// into tenants, engine facts (without row counts), artifacts and
/// per-table rows.
fn split_details(
    details: &serde_json::Value,
) -> (
    Vec<String>,
    serde_json::Value,
    Vec<ArtifactView>,
    BTreeMap<String, u64>,
) {
    let tenants = details["tenants"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut engine = details["engine"].clone();
    let mut rows = BTreeMap::new();
    if let Some(o) = engine.as_object_mut() {
        // Full dumps: {"schema.table": n}.
        if let Some(serde_json::Value::Object(m)) = o.remove("row_counts") {
            for (t, n) in m {
                rows.insert(t, n.as_u64().unwrap_or(0));
            }
        }
        // Where the dump's biggest COPY blocks sit: for the restore, not
        // for people.
        o.remove("toc");
        // Tenant exports: {"tenant": {"schema.table": n}}.
        if let Some(serde_json::Value::Object(m)) = o.remove("rows") {
            for (tenant, tables) in m {
                if let Some(tables) = tables.as_object() {
                    for (t, n) in tables {
                        rows.insert(format!("{tenant}/{t}"), n.as_u64().unwrap_or(0));
                    }
                }
            }
        }
    }
    let artifacts = details["artifacts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| ArtifactView {
                    name: a["name"].as_str().unwrap_or_default().into(),
                    format: a["format"].as_str().unwrap_or_default().into(),
                    size: a["size"].as_u64().unwrap_or(0),
                    blake3: a["blake3"].as_str().unwrap_or_default().into(),
                })
                .collect()
        })
        .unwrap_or_default();
    (tenants, engine, artifacts, rows)
}

/// The checks that covered backup `b`: verify runs on a target holding it
/// that started after it finished (every verify checks every backup of its
/// target), and the drills and DR runs that restored it.
fn checks(catalog: &Catalog, b: &BackupRow) -> Result<Vec<CheckView>> {
    let mut out = Vec::new();
    let after = b
        .finished_at
        .clone()
        .unwrap_or_else(|| b.started_at.clone());
    for v in catalog.verify_runs_since(&after)? {
        if !b.targets.contains(&v.target) {
            continue;
        }
        let problems: Vec<String> = v
            .problems
            .iter()
            .filter(|p| p.contains(&b.id))
            .cloned()
            .collect();
        out.push(CheckView {
            method: if v.mode == "read-data" {
                "verify --read-data".into()
            } else {
                "verify".into()
            },
            at: v.finished_at,
            outcome: if v.ok { "ok" } else { "problems" }.into(),
            target: Some(v.target),
            rto_ms: None,
            problems,
            dr_run_id: None,
        });
    }
    for d in catalog.dr_runs_of(&b.id)? {
        out.push(dr_check(d));
    }
    out.sort_by(|a, b| b.at.cmp(&a.at));
    Ok(out)
}

fn dr_check(d: DrRunRow) -> CheckView {
    CheckView {
        method: if d.kind == "run" { "dr-run" } else { "drill" }.into(),
        at: d.finished_at.unwrap_or(d.started_at),
        outcome: d.outcome,
        target: d.storage_target,
        rto_ms: d.rto_ms,
        problems: d.error.into_iter().collect(),
        dr_run_id: Some(d.id),
    }
}

/// Everything about the backup `spec` (an id, a unique id prefix or
/// `SOURCE:latest`).
pub fn backup(config: &Config, catalog: &Catalog, spec: &str) -> Result<BackupView> {
    let row = catalog.resolve_backup(spec)?;
    let mut details = catalog.details(&row.id)?;
    let in_catalog = details.is_some();
    let mut note = row.note.clone();
    if details.is_none() && row.status == "completed" {
        if let Some((n, d)) = body_from_repository(config, &row.id) {
            note = n;
            details = Some(d);
        }
    }
    let body_readable = details.is_some() || row.status != "completed";
    let (mut tenants, engine, mut artifacts, mut table_rows) =
        split_details(details.as_ref().unwrap_or(&serde_json::Value::Null));
    // The catalog keeps tenants, artifacts and tenant row counts as rows.
    if in_catalog {
        tenants = catalog.tenants_of(&row.id)?;
        artifacts = catalog
            .artifacts_of(&row.id)?
            .into_iter()
            .map(|a| ArtifactView {
                name: a.name,
                format: a.format,
                size: a.size,
                blake3: a.blake3,
            })
            .collect();
        catalog.for_each_tenant_row(&row.id, |tenant, table, n| {
            table_rows.insert(format!("{tenant}/{table}"), n);
        })?;
    }
    let mut presence: Vec<TargetPresence> = config
        .targets
        .iter()
        .map(|t| TargetPresence {
            target: t.name.clone(),
            present: row.targets.contains(&t.name),
            configured: true,
        })
        .collect();
    for t in &row.targets {
        if !presence.iter().any(|p| &p.target == t) {
            presence.push(TargetPresence {
                target: t.clone(),
                present: true,
                configured: false,
            });
        }
    }
    let checks = checks(catalog, &row)?;
    let restores = catalog.restores_of(&row.id)?;
    let verified_at = catalog.verified_at(&row.id)?;
    Ok(BackupView {
        backup: BackupRow { note, ..row },
        presence,
        body_readable,
        needs_identity: (!body_readable).then(|| NEEDS_IDENTITY.to_string()),
        tenants,
        engine,
        artifacts,
        table_rows,
        verified_at,
        checks,
        restores,
    })
}

/// The note and details from the manifest body, when an identity opens it.
fn body_from_repository(config: &Config, id: &str) -> Option<(Option<String>, serde_json::Value)> {
    let repo = crate::repo::Repository::open(config, None).ok()?;
    repo.identities().ok()?;
    match crate::repo::restore::load_body(&repo, &repo.stores, id) {
        Ok((_, body)) => Some((body.note.clone(), crate::repo::backup::details_json(&body))),
        Err(e) => {
            tracing::warn!(
                "cannot read the manifest of backup {id}: {}",
                crate::error::paragraph(&e)
            );
            None
        }
    }
}

/// One restore's full record (the `restores show --json` shape).
pub fn restore(catalog: &Catalog, id: i64) -> Result<RestoreRow> {
    catalog.restore(id)?.ok_or_else(|| {
        Failure::new(ExitStatus::Usage, format!("no restore with id {id}."))
            .with_remedy(
                "Use an id from `vaultctl restores` (the first column of `--json`'s `id`).",
            )
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_split_into_rows_engine_and_artifacts() {
        let d = serde_json::json!({
            "tenants": ["acme"],
            "engine": {"mode": "tenants", "database": "app", "rows": {"acme": {"public.orders": 3, "public.items": 0}}},
            "artifacts": [{"name": "tenant-acme", "format": "stream", "size": 10, "blake3": "ab", "blobs": 1}],
        });
        let (tenants, engine, artifacts, rows) = split_details(&d);
        assert_eq!(tenants, ["acme"]);
        assert_eq!(
            engine,
            serde_json::json!({"mode": "tenants", "database": "app"})
        );
        assert_eq!(artifacts[0].name, "tenant-acme");
        assert_eq!(artifacts[0].size, 10);
        assert_eq!(rows["acme/public.orders"], 3);
        assert_eq!(rows["acme/public.items"], 0);
        let full = serde_json::json!({"engine": {"row_counts": {"public.t": 7}}});
        let (_, engine, _, rows) = split_details(&full);
        assert_eq!(engine, serde_json::json!({}));
        assert_eq!(rows["public.t"], 7);
        let (t, e, a, r) = split_details(&serde_json::Value::Null);
        assert!(t.is_empty() && e.is_null() && a.is_empty() && r.is_empty());
    }
}
