//! `vaultctl verify`: check every target (or one) and record the run
//! ([`crate::jobs::verify`]).

use anyhow::Result;
use clap::Args;

use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::error::ExitStatus;
use crate::jobs;
use crate::repo::verify::{Mode, Report};

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
    /// Download this percentage of packs, those read least recently first (repeated runs rotate through every pack)
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
    let mode = match (args.read_data, args.sample) {
        (true, _) => Mode::ReadData,
        (false, Some(p)) => Mode::Sample(p),
        // Neither flag: the `[verify]` mode, else structure only.
        (false, None) => config.verify.as_ref().map_or(Mode::Structure, |v| v.mode),
    };
    let v = jobs::verify::run(&config, args.target.as_deref(), mode, &ctx.progress())?;
    let reports = &v.targets;
    ctx.emit(&v, |v| {
        Columns::new()
            .col("target", |r: &Report| r.target.clone())
            .col("mode", |r| r.mode.clone())
            .col("backups", |r| r.backups_checked.to_string())
            .col("packs read", |r| r.packs_checked.to_string())
            .col("content", |r| if r.content_checked { "checked" } else { "-" }.to_string())
            .col("result", Report::result_text)
            .print(reports)?;
        for line in reports.iter().flat_map(Report::findings) {
            output::line(&line)?;
        }
        for r in reports {
            for w in &r.warnings {
                eprintln!("vaultctl: warning: target '{}': {w}", r.target);
            }
        }
        if !v.identity && ctx.global.quiet == 0 {
            eprintln!("vaultctl: no identity: checked ciphertext and structure only (blob contents and stream hashes need the identity).");
        }
        Ok(())
    })?;
    Ok(exit_status(reports))
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
