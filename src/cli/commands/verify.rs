//! `vaultctl verify`: check every target (or one) and record the run.

use anyhow::Result;
use clap::Args;

use crate::catalog::{Catalog, VerifyRecord};
use crate::cli::{output, Ctx};
use crate::error::ExitStatus;
use crate::ops;
use crate::repo::verify::{self, Mode, Report};

#[derive(Args, Debug)]
#[command(
    after_help = "Every problem names the backups it affects. Exit 1 when a problem affects a backup or the repository's structure (a missing or damaged pack, index or manifest, an unreachable target); exit 3 when the only damage is in packs no backup references (an interrupted backup left them; `vaultctl prune` deletes them); exit 0 otherwise."
)]
pub struct VerifyArgs {
    /// Check only this target
    #[arg(long)]
    pub target: Option<String>,
    /// Download every pack and check its bytes (and, with the identity, every blob and stream)
    #[arg(long, conflicts_with = "sample")]
    pub read_data: bool,
    /// Download this percentage of packs, chosen at random
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub sample: Option<f64>,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("\"{s}\" is not a percentage"))?;
    if v > 0.0 && v <= 100.0 {
        Ok(v)
    } else {
        Err("the sample must be above 0 and at most 100 percent".into())
    }
}

pub fn run(ctx: &Ctx, args: VerifyArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let repo = crate::ops::open_repository(&config, args.target.as_deref())?;
    let catalog = Catalog::open(&config.catalog)?;
    catalog.bind_repo(&repo.config.repo_id, &config.catalog.display().to_string())?;
    let mode = match (args.read_data, args.sample) {
        (true, _) => Mode::ReadData,
        (false, Some(p)) => Mode::Sample(p),
        _ => Mode::Structure,
    };
    let identities = repo.identities().ok();
    let progress = ctx.progress();
    let mut reports: Vec<Report> = Vec::new();
    for (name, why) in &repo.unavailable {
        reports.push(Report {
            target: name.clone(),
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
        });
    }
    ops::hooks::targets_unreachable(&config, &catalog, &repo.unavailable);
    for store in &repo.stores {
        let started_at = crate::clock::now_rfc3339();
        let report =
            match verify::verify_target(&repo, store, mode, identities.as_deref(), &progress) {
                Ok(r) => r,
                Err(e) => {
                    let problem = format!(
                        "the verify run could not finish: {}",
                        crate::error::paragraph(&e)
                    );
                    ops::hooks::verify_finished(
                        &config,
                        &catalog,
                        &store.name,
                        verify::mode_name(mode).as_str(),
                        &[problem],
                    );
                    ops::after_command(&config, &catalog);
                    return Err(e);
                }
            };
        catalog.record_verify(&VerifyRecord {
            started_at,
            finished_at: crate::clock::now_rfc3339(),
            target: store.name.clone(),
            mode: report.mode.clone(),
            ok: report.ok,
            backups_checked: report.backups_checked,
            packs_checked: report.packs_checked,
            problems: report.problems.iter().map(|p| p.message.clone()).collect(),
        })?;
        let problems: Vec<String> = report.problems.iter().map(|p| p.message.clone()).collect();
        ops::hooks::verify_finished(&config, &catalog, &store.name, &report.mode, &problems);
        reports.push(report);
    }
    ops::after_command(&config, &catalog);
    let ok = reports.iter().all(|r| r.ok);
    if ctx.global.json {
        output::json(
            &serde_json::json!({ "ok": ok, "identity": identities.is_some(), "targets": reports }),
        )?;
    } else {
        let mut t = output::table();
        t.set_header(vec![
            "target",
            "mode",
            "backups",
            "packs read",
            "content",
            "result",
        ]);
        for r in &reports {
            t.add_row(vec![
                r.target.clone(),
                r.mode.clone(),
                r.backups_checked.to_string(),
                r.packs_checked.to_string(),
                if r.content_checked {
                    "checked".into()
                } else {
                    "-".to_string()
                },
                if r.ok && !r.orphans.is_empty() {
                    format!("ok, {} warning(s)", r.orphans.len())
                } else if r.ok {
                    "ok".into()
                } else {
                    format!("{} problem(s)", r.problems.len())
                },
            ]);
        }
        output::line(&t.to_string())?;
        for r in &reports {
            for p in &r.problems {
                let affected = if p.backups.is_empty() {
                    " (names no backup: a problem of the repository's structure)".to_string()
                } else {
                    format!(" (affects backups: {})", p.backups.join(", "))
                };
                output::line(&format!("{}: {}{affected}", r.target, p.message))?;
            }
            for o in &r.orphans {
                output::line(&format!("{}: warning: {}", r.target, o.message))?;
            }
        }
        for r in &reports {
            for w in &r.warnings {
                eprintln!("vaultctl: warning: target '{}': {w}", r.target);
            }
        }
        if identities.is_none() && ctx.global.quiet == 0 {
            eprintln!("vaultctl: no identity: checked ciphertext and structure only (blob contents and stream hashes need the identity).");
        }
    }
    Ok(exit_status(&reports))
}

/// 1 when a problem affects a backup or the repository's structure; 3 when
/// the only damage is in data no backup references (prune removes it); 0
/// otherwise.
fn exit_status(reports: &[Report]) -> ExitStatus {
    if reports.iter().any(|r| !r.ok) {
        ExitStatus::Failure
    } else if reports.iter().any(|r| !r.orphans.is_empty()) {
        ExitStatus::Warnings
    } else {
        ExitStatus::Success
    }
}
