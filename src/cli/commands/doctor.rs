//! `vaultctl doctor`: prints the setup checks of [`crate::ops::doctor`];
//! the exit status is theirs (0 pass, 1 warning, 2 failure).

use anyhow::Result;

use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::ops::doctor::{self, Outcome};

pub fn run(ctx: &Ctx) -> Result<i32> {
    let report = match ctx.config() {
        Ok(config) => {
            let binary = std::env::current_exe()
                .ok()
                .and_then(|p| std::fs::canonicalize(p).ok())
                .unwrap_or_else(|| "vaultctl".into());
            doctor::run(&config, &binary)
        }
        Err(e) => doctor::config_failed(&e),
    };
    let status = report.status();
    if ctx.global.json {
        output::json(&serde_json::json!({
            "status": report.worst(),
            "exit": status.code(),
            "checks": report.checks,
        }))?;
        return Ok(status.code());
    }
    Columns::new()
        .col("", |c: &crate::ops::doctor::Check| {
            c.status.label().to_string()
        })
        .col("scope", |c| c.scope.clone())
        .col("check", |c| c.name.clone())
        .col("detail", |c| c.detail.clone())
        .print(&report.checks)?;
    for c in report.checks.iter().filter(|c| c.status != Outcome::Pass) {
        if let Some(fix) = &c.fix {
            output::line(&format!(
                "{} {} / {}: fix: {fix}",
                c.status.label(),
                c.scope,
                c.name
            ))?;
        }
    }
    let count = |o: Outcome| report.checks.iter().filter(|c| c.status == o).count();
    output::line(&format!(
        "{} passed, {} warning(s), {} failure(s)",
        count(Outcome::Pass),
        count(Outcome::Warn),
        count(Outcome::Fail)
    ))?;
    Ok(status.code())
}
