//! `vaultctl sync`: copy backups a target lacks from the others
//! (replication catch-up after an outage). Ciphertext is copied as is.

use std::collections::HashMap;

use anyhow::Result;
use clap::Args;

use crate::catalog::Catalog;
use crate::cli::{output, Ctx};
use crate::error::{fail, ExitStatus};
use crate::repo::format::{manifest_path, CONFIG_OBJECT, DEDUP_KEY_OBJECT};
use crate::repo::manifest;
use crate::repo::sync::{self, SyncReport};
use crate::storage::Store;

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Copy from this target only (default: every target)
    #[arg(long, value_name = "NAME")]
    pub from: Option<String>,
    /// Copy to this target only (default: every target)
    #[arg(long, value_name = "NAME")]
    pub to: Option<String>,
    /// Show what would be copied; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(ctx: &Ctx, args: SyncArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    for name in [&args.from, &args.to].into_iter().flatten() {
        if !config.targets.iter().any(|t| &t.name == name) {
            return fail(
                ExitStatus::Usage,
                format!("there is no target named '{name}'."),
                format!(
                    "Configured targets: {}.",
                    config
                        .targets
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    if args.from.is_some() && args.from == args.to {
        return fail(
            ExitStatus::Usage,
            "--from and --to name the same target.",
            "Name two different targets.",
        );
    }
    let mut repo = crate::ops::open_repository(&config, None)?;
    let mut catalog = Catalog::open(&config.catalog)?;
    catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;

    // A reachable target without a repository gets the keys and config
    // first (what `init` would copy), then everything else.
    let mut still_unavailable = Vec::new();
    for (name, why) in std::mem::take(&mut repo.unavailable) {
        let target = config
            .targets
            .iter()
            .find(|t| t.name == name)
            .expect("configured");
        let opened =
            Store::open(target, true).and_then(|s| Ok((s.get(CONFIG_OBJECT)?.is_none(), s)));
        match opened {
            Ok((true, store)) if !args.dry_run => {
                let from = &repo.stores[0];
                for obj in [DEDUP_KEY_OBJECT, CONFIG_OBJECT] {
                    if let Some(b) = from.get(obj)? {
                        store.put(obj, b)?;
                    }
                }
                eprintln!("vaultctl: target '{name}' held no repository; copied the repository's keys and config from '{}'", from.name);
                repo.stores.push(store);
            }
            _ => still_unavailable.push((name, why)),
        }
    }
    repo.unavailable = still_unavailable;
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
    if !args.dry_run {
        repo.sync_index(&mut catalog)?;
    }

    let problems: usize = reports.iter().map(|r| r.problems.len()).sum();
    if ctx.global.json {
        output::json(&serde_json::json!({
            "dry_run": args.dry_run,
            "pairs": reports,
            "unavailable": repo.unavailable.iter().map(|(t, why)| serde_json::json!({"target": t, "error": why})).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut t = output::table();
        t.set_header(vec![
            "from",
            "to",
            "backups",
            "packs",
            "bytes",
            "index objects",
            "not copied (retention)",
            "problems",
        ]);
        for r in &reports {
            t.add_row(vec![
                r.from.clone(),
                r.to.clone(),
                r.manifests_copied.len().to_string(),
                r.packs_copied.to_string(),
                output::bytes(r.bytes_copied),
                (r.indexes_copied + r.indexes_written).to_string(),
                r.skipped_by_retention.to_string(),
                r.problems.len().to_string(),
            ]);
        }
        output::line(&t.to_string())?;
        if args.dry_run {
            output::line("dry run: nothing was copied")?;
        }
    }
    for r in &reports {
        for p in &r.problems {
            eprintln!("vaultctl: warning: {} → {}: {p}", r.from, r.to);
        }
    }
    for (name, why) in &repo.unavailable {
        eprintln!("vaultctl: warning: target '{name}' is unavailable and was not synced: {why}");
    }
    Ok(if problems > 0 {
        ExitStatus::Failure
    } else if !repo.unavailable.is_empty() {
        ExitStatus::Warnings
    } else {
        ExitStatus::Success
    })
}
