//! `vaultctl catalog rebuild`: the backup list back from a repository alone
//! ([`crate::jobs::catalog`]).

use anyhow::Result;
use clap::Subcommand;

use crate::cli::{output, Ctx};
use crate::error::ExitStatus;
use crate::jobs;

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Rebuild the catalog's backup list and dedup index from the repository
    Rebuild {
        /// Read manifests from this target (default: the first that answers)
        #[arg(long)]
        target: Option<String>,
    },
}

pub fn run(ctx: &Ctx, cmd: CatalogCommand) -> Result<ExitStatus> {
    let CatalogCommand::Rebuild { target } = cmd;
    let config = ctx.config()?;
    let (repo, mut catalog) = jobs::open(&config, None)?;
    let result = jobs::catalog::rebuild(&repo, &mut catalog, target.as_deref());
    jobs::finish(&config, Some(&catalog), jobs::Ran::Other, &result);
    let r = result?;
    if ctx.global.json {
        output::json(
            &serde_json::json!({ "target": r.target, "backups": r.backups, "verified": r.verified, "index_objects": r.index_objects, "problems": r.problems }),
        )?;
    } else {
        output::line(&format!(
            "catalog rebuilt from target '{}': {} backups ({} verification marks from drills and DR runs), {} index objects{}",
            r.target,
            r.backups,
            r.verified,
            r.index_objects,
            if !r.identity {
                " (no identity: notes and details are not readable)"
            } else {
                ""
            }
        ))?;
        for p in &r.problems {
            eprintln!("vaultctl: warning: {p}");
        }
    }
    Ok(if r.problems.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
