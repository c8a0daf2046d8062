//! The sync job: backups a target lacks copied from the others
//! (replication catch-up after an outage). Ciphertext is copied as is.

use std::collections::HashMap;

use anyhow::Result;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{fail, ExitStatus};
use crate::repo::format::{manifest_path, CONFIG_OBJECT, DEDUP_KEY_OBJECT};
use crate::repo::manifest;
use crate::repo::sync::{self, SyncReport};
use crate::repo::Repository;
use crate::storage::Store;

/// Which pairs of targets to sync.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Copy from this target only (default: every target).
    pub from: Option<String>,
    /// Copy to this target only (default: every target).
    pub to: Option<String>,
    /// Show what would be copied; change nothing.
    pub dry_run: bool,
}

/// What a sync did.
#[derive(Debug, Serialize)]
pub struct Synced {
    pub dry_run: bool,
    pub pairs: Vec<SyncReport>,
    /// Targets that could not be synced, with why.
    #[serde(skip)]
    pub unavailable: Vec<(String, String)>,
    /// Targets that held no repository and got its keys and config (name,
    /// copied from).
    #[serde(skip)]
    pub initialised: Vec<(String, String)>,
}

impl Synced {
    /// `sync --json`: the pairs, and the targets that could not be synced.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "dry_run": self.dry_run,
            "pairs": self.pairs,
            "unavailable": self.unavailable.iter().map(|(t, why)| serde_json::json!({"target": t, "error": why})).collect::<Vec<_>>(),
        })
    }

    /// Exit 1 on a problem, 3 when a target could not be synced.
    pub fn status(&self) -> ExitStatus {
        if self.pairs.iter().any(|r| !r.problems.is_empty()) {
            ExitStatus::Failure
        } else if !self.unavailable.is_empty() {
            ExitStatus::Warnings
        } else {
            ExitStatus::Success
        }
    }
}

/// Syncs the requested pairs and ends in [`super::finish`].
pub fn run(config: &Config, req: &Request) -> Result<Synced> {
    let result = sync(config, req);
    super::finish(config, None, super::Ran::Other, &result);
    result
}

fn sync(config: &Config, args: &Request) -> Result<Synced> {
    let (mut repo, mut catalog) = super::open(config, None)?;
    let initialised = initialise_new_targets(config, &mut repo, args.dry_run)?;
    let available = |name: &Option<String>| -> Result<()> {
        if let Some(n) = name {
            if let Some((_, why)) = repo.unavailable.iter().find(|(t, _)| t == n) {
                return fail(
                    ExitStatus::Temporary,
                    format!("target '{n}' is unavailable: {why}"),
                    "Try again when it is reachable.",
                );
            }
        }
        Ok(())
    };
    available(&args.from)?;
    available(&args.to)?;
    let pairs = sync_pairs(config, &repo, &mut catalog, args)?;
    if !args.dry_run {
        repo.sync_index(&mut catalog)?;
    }
    Ok(Synced {
        dry_run: args.dry_run,
        pairs,
        unavailable: repo.unavailable.clone(),
        initialised,
    })
}

/// A reachable target without a repository gets the keys and config first
/// (what `init` would copy), then everything else.
fn initialise_new_targets(
    config: &Config,
    repo: &mut Repository,
    dry_run: bool,
) -> Result<Vec<(String, String)>> {
    let mut initialised = Vec::new();
    let mut still_unavailable = Vec::new();
    for (name, why) in std::mem::take(&mut repo.unavailable) {
        let target = config
            .targets
            .iter()
            .find(|t| t.name == name)
            .expect("configured");
        let opened = target
            .store_spec()
            .and_then(|s| Store::open(&s, true))
            .and_then(|s| Ok((s.get(CONFIG_OBJECT)?.is_none(), s)));
        match opened {
            Ok((true, store)) if !dry_run => {
                let from = &repo.stores[0];
                for obj in [DEDUP_KEY_OBJECT, CONFIG_OBJECT] {
                    if let Some(b) = from.get(obj)? {
                        store.put(obj, b)?;
                    }
                }
                initialised.push((name, from.name.clone()));
                repo.stores.push(store);
            }
            _ => still_unavailable.push((name, why)),
        }
    }
    repo.unavailable = still_unavailable;
    Ok(initialised)
}

fn sync_pairs(
    config: &Config,
    repo: &Repository,
    catalog: &mut Catalog,
    args: &Request,
) -> Result<Vec<SyncReport>> {
    let policies: HashMap<String, _> = config
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.retention.clone()))
        .collect();
    let mut reports: Vec<SyncReport> = Vec::new();
    for to in &repo.stores {
        if args.to.as_ref().is_some_and(|n| n != &to.name) {
            continue;
        }
        for from in &repo.stores {
            if from.name == to.name || args.from.as_ref().is_some_and(|n| n != &from.name) {
                continue;
            }
            let policy = policies.get(&to.name).cloned().flatten();
            let r = sync::sync_pair(
                from,
                to,
                &repo.dedup,
                policy.as_ref(),
                args.dry_run,
                repo.lock_timing,
            )?;
            if !args.dry_run {
                for id in &r.manifests_copied {
                    if let Some(bytes) = to.get(&manifest_path(id))? {
                        catalog.add_backup_target(
                            &manifest::decode_header(&bytes, &repo.dedup, id)?,
                            &to.name,
                        )?;
                    }
                }
            }
            reports.push(r);
        }
    }
    Ok(reports)
}
