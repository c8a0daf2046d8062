//! `vaultctl report --html FILE`: the dashboard as one self-contained page.

use anyhow::Result;
use clap::Args;

use crate::catalog::Catalog;
use crate::cli::{output, Ctx};
use crate::error::{fail, ExitStatus};
use crate::ops::{self, report};

#[derive(Args, Debug)]
#[command(
    after_help = "The page has inline CSS and SVG only: no script, no font, no image, nothing fetched, so it reads offline, in a mail client and on a wall screen. It is written atomically (a temporary file, then a rename) with mode 0644: it holds host, source and target names, sizes and alert messages, never a secret or key. With --json the same model is printed to standard output."
)]
pub struct ReportArgs {
    /// Write the HTML dashboard to FILE (replaced atomically)
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    /// The charts' window: the last DAYS days
    #[arg(long, value_name = "DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: u32,
}

pub fn run(ctx: &Ctx, args: ReportArgs) -> Result<ExitStatus> {
    if args.html.is_none() && !ctx.global.json {
        return fail(
            ExitStatus::Usage,
            "report needs somewhere to write: nothing was asked for.",
            "Give --html FILE for the HTML dashboard, or --json for the same model on standard output.",
        );
    }
    let config = ctx.config()?;
    let catalog = Catalog::open(&config.catalog)?;
    let r = report::gather(&config, &catalog, config.clock.now(), args.days)?;
    ops::write_metrics(&config, &catalog, &r.health);
    if let Some(path) = &args.html {
        report::write_html(path, &r)?;
        if !ctx.global.json {
            output::line(&format!(
                "wrote {} (health {}/100, {}; {} source(s), last {} days)",
                path.display(),
                r.health.health_score,
                r.health.state.label(),
                r.sources.len(),
                r.days
            ))?;
        }
    }
    if ctx.global.json {
        output::json(&r)?;
    }
    Ok(ExitStatus::Success)
}
