//! The verify job: every target (or one) checked, each run recorded in the
//! catalog, alerts raised or resolved per target.

use anyhow::Result;
use serde::Serialize;

use crate::catalog::{Catalog, VerifyRecord};
use crate::config::Config;
use crate::ops;
use crate::progress::Progress;
use crate::repo::verify::{self, Mode, Report};
use crate::repo::Repository;

/// What a verify run found.
#[derive(Debug, Serialize)]
pub struct Verified {
    /// No target has a problem.
    pub ok: bool,
    /// Whether contents could be checked (the identity was available).
    pub identity: bool,
    pub targets: Vec<Report>,
}

/// Verifies `target` (or every target) in `mode`, records each run, and
/// ends in [`super::finish`]. A run that cannot finish on a target is an
/// error (after its alert is raised).
pub fn run(
    config: &Config,
    target: Option<&str>,
    mode: Mode,
    progress: &dyn Progress,
) -> Result<Verified> {
    let (repo, mut catalog) = super::open(config, target)?;
    let identities = repo.identities().ok();
    let mut reports: Vec<Report> = repo
        .unavailable
        .iter()
        .map(|(name, why)| unavailable(name, why, mode))
        .collect();
    ops::hooks::targets_unreachable(config, &catalog, &repo.unavailable);
    let result = (|| -> Result<()> {
        for store in &repo.stores {
            reports.push(verify_one(
                config,
                &repo,
                &mut catalog,
                store,
                mode,
                identities.as_deref(),
                progress,
            )?);
        }
        Ok(())
    })();
    super::finish(config, Some(&catalog), super::Ran::Other, &result);
    result?;
    Ok(Verified {
        ok: reports.iter().all(|r| r.ok),
        identity: identities.is_some(),
        targets: reports,
    })
}

fn unavailable(name: &str, why: &str, mode: Mode) -> Report {
    Report {
        target: name.to_string(),
        mode: verify::mode_name(mode),
        ok: false,
        backups_checked: 0,
        packs_checked: 0,
        content_checked: false,
        problems: vec![verify::Problem {
            message: format!("target unavailable: {why}"),
            backups: vec![],
        }],
        affected_backups: vec![],
        orphans: vec![],
        warnings: vec![],
        packs_listed: vec![],
        packs_read: vec![],
    }
}

fn verify_one(
    config: &Config,
    repo: &Repository,
    catalog: &mut Catalog,
    store: &crate::storage::Store,
    mode: Mode,
    identities: Option<&[crate::repo::keys::Identity]>,
    progress: &dyn Progress,
) -> Result<Report> {
    let started_at = config.clock.now_str();
    // A sample reads the packs read least recently first (a rotation).
    let last_read = catalog.pack_reads(&store.name)?;
    let report =
        match verify::verify_target_rotating(repo, store, mode, identities, &last_read, progress) {
            Ok(r) => r,
            Err(e) => {
                let problem = format!(
                    "the verify run could not finish: {}",
                    crate::error::paragraph(&e)
                );
                let mode = verify::mode_name(mode);
                ops::hooks::verify_finished(config, catalog, &store.name, &mode, &[problem]);
                return Err(e);
            }
        };
    let problems: Vec<String> = report.problems.iter().map(|p| p.message.clone()).collect();
    let finished_at = config.clock.now_str();
    catalog.record_pack_reads(
        &store.name,
        &report.packs_listed,
        &report.packs_read,
        &finished_at,
    )?;
    catalog.record_verify(&VerifyRecord {
        started_at: started_at.into(),
        finished_at: finished_at.into(),
        target: store.name.clone(),
        mode: report.mode.clone(),
        ok: report.ok,
        backups_checked: report.backups_checked,
        packs_checked: report.packs_checked,
        problems: problems.clone(),
    })?;
    ops::hooks::verify_finished(config, catalog, &store.name, &report.mode, &problems);
    Ok(report)
}
