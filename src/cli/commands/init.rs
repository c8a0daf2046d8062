//! `vaultctl init`: create the repository on every target.

use anyhow::Result;

use crate::cli::{output, Ctx};
use crate::error::ExitStatus;
use crate::repo;

pub fn run(ctx: &Ctx) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let report = repo::init(&config)?;
    ctx.emit(&report, |report| print(ctx, report))
}

fn print(ctx: &Ctx, report: &repo::InitReport) -> Result<()> {
    output::line(&format!("repository {}", report.repo_id))?;
    output::print_table(
        &["target", "result"],
        report
            .targets
            .iter()
            .map(|(name, what)| [name.clone(), what.clone()]),
    )?;
    if report.created_dedup_key && ctx.global.quiet == 0 {
        eprintln!(
            "vaultctl: wrote the dedup key to {}. Copy it to every host that backs up into this repository (a write-only host needs it, not the identity).",
            report.dedup_key_file
        );
    }
    Ok(())
}
