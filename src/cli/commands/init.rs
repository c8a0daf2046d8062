//! `vaultctl init`: create the repository on every target.

use anyhow::Result;

use crate::cli::{output, Ctx};
use crate::error::ExitStatus;
use crate::repo;

pub fn run(ctx: &Ctx) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let report = repo::init(&config)?;
    if ctx.global.json {
        output::json(&report)?;
        return Ok(ExitStatus::Success);
    }
    let mut t = output::table();
    t.set_header(vec!["target", "result"]);
    for (name, what) in &report.targets {
        t.add_row(vec![name.clone(), what.clone()]);
    }
    output::line(&format!("repository {}", report.repo_id))?;
    output::line(&t.to_string())?;
    if report.created_dedup_key && ctx.global.quiet == 0 {
        eprintln!(
            "vaultctl: wrote the dedup key to {}. Copy it to every host that backs up into this repository (a write-only host needs it, not the identity).",
            report.dedup_key_file
        );
    }
    Ok(ExitStatus::Success)
}
