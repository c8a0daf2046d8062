//! `vaultctl catalog rebuild`: the backup list back from a repository alone.

use anyhow::Result;
use clap::Subcommand;

use crate::catalog::Catalog;
use crate::cli::{output, Ctx};
use crate::repo::format::SNAPSHOTS_DIR;
use crate::repo::{backup::details_json, manifest, Repository};

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Rebuild the catalog's backup list and dedup index from the repository
    Rebuild {
        /// Read manifests from this target (default: the first that answers)
        #[arg(long)]
        target: Option<String>,
    },
}

pub fn run(ctx: &Ctx, cmd: CatalogCommand) -> Result<i32> {
    let CatalogCommand::Rebuild { target } = cmd;
    let config = ctx.config()?;
    let repo = Repository::open(&config, None)?;
    let mut catalog = Catalog::open(&config.catalog)?;
    catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
    let source_store = match &target {
        Some(name) => repo
            .stores
            .iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| {
                crate::error::Failure::new(
                    crate::error::ExitKind::Usage,
                    format!("target '{name}' is not available."),
                )
                .with_remedy("Check the name with the config and that the target is reachable.")
            })?,
        None => &repo.stores[0],
    };
    let identities = repo.identities().ok();
    catalog.clear_repository_cache()?;
    let indexes = repo.sync_index(&mut catalog)?;
    // Which targets hold each manifest.
    let mut presence: std::collections::HashMap<String, Vec<String>> = Default::default();
    for s in &repo.stores {
        for (name, _) in s.list(SNAPSHOTS_DIR)? {
            if let Some(id) = name.strip_prefix("snapshots/") {
                presence
                    .entry(id.to_string())
                    .or_default()
                    .push(s.name.clone());
            }
        }
    }
    let mut restored = 0;
    let mut problems = Vec::new();
    for (name, _) in source_store.list(SNAPSHOTS_DIR)? {
        let Some(id) = name.strip_prefix("snapshots/") else {
            continue;
        };
        let Some(bytes) = source_store.get(&name)? else {
            continue;
        };
        let header = match manifest::decode_header(&bytes, &repo.dedup) {
            Ok(h) => h,
            Err(e) => {
                problems.push(format!("manifest {id}: {}", crate::error::paragraph(&e)));
                continue;
            }
        };
        let (note, details) = match &identities {
            Some(ids) => match manifest::decode_body(&bytes, ids) {
                Ok(b) => (b.note.clone(), details_json(&b)),
                Err(e) => {
                    problems.push(format!(
                        "manifest {id} body: {}",
                        crate::error::paragraph(&e)
                    ));
                    (None, serde_json::Value::Null)
                }
            },
            None => (None, serde_json::Value::Null),
        };
        let mut targets = presence.get(id).cloned().unwrap_or_default();
        targets.sort();
        catalog.upsert_completed(&header, note.as_deref(), &details, &targets)?;
        restored += 1;
    }
    crate::ops::after_command(&config, &catalog);
    if ctx.global.json {
        output::json(
            &serde_json::json!({ "target": source_store.name, "backups": restored, "index_objects": indexes, "problems": problems }),
        )?;
    } else {
        output::line(&format!(
            "catalog rebuilt from target '{}': {restored} backups, {indexes} index objects{}",
            source_store.name,
            if identities.is_none() {
                " (no identity: notes and details are not readable)"
            } else {
                ""
            }
        ))?;
        for p in &problems {
            eprintln!("vaultctl: warning: {p}");
        }
    }
    Ok(if problems.is_empty() { 0 } else { 1 })
}
