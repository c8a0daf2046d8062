//! `vaultctl status`: the dashboard, and `--check` for monitoring.

use anyhow::Result;
use clap::Args;

use crate::catalog::{BackupRow, Catalog};
use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::error::{CheckStatus, ExitStatus};
use crate::ops;
use crate::ops::health::{
    self, ago, freshness, DrillHealth, SourceHealth, TargetUsage, VerifyHealth,
};

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Monitoring check: one summary line; exit 0 ok, 1 warning, 2 critical (Nagios convention)
    #[arg(long)]
    pub check: bool,
}

/// The exit code: [`ExitStatus`] for the dashboard, the Nagios
/// [`CheckStatus`] with `--check`.
pub fn run(ctx: &Ctx, args: StatusArgs) -> Result<i32> {
    let config = ctx.config()?;
    let catalog = Catalog::open(&config.catalog)?;
    let st = health::status(&config, &catalog, config.clock.now())?;
    ops::write_metrics(&config, &catalog, &st);
    if args.check {
        return check(ctx, &st).map(CheckStatus::code);
    }
    ctx.emit(&st, |st| dashboard(&catalog, st))
        .map(ExitStatus::code)
}

/// Every section of the dashboard, for people.
fn dashboard(catalog: &Catalog, st: &health::Status) -> Result<()> {
    output::line(&st.headline())?;
    Columns::new()
        .col("target", TargetUsage::label)
        .col("backups", |x| x.backups.to_string())
        .col("packs", |x| x.packs.to_string())
        .col("stored", |x| output::bytes(x.stored_bytes))
        .print(&st.targets)?;
    if !st.sources.is_empty() {
        print_sources(&st.sources)?;
        trends(catalog, &st.sources)?;
    }
    if !st.recent_backups.is_empty() {
        Columns::new()
            .col("recent backup", |b: &BackupRow| b.id.clone())
            .col("source", |b| b.source.clone())
            .col("status", |b| b.status.clone())
            .col("started", |b| b.started_at.to_string())
            .col("duration", |b| {
                output::or_dash(b.duration_ms.map(output::duration_ms))
            })
            .col("size", |b| output::bytes(b.bytes))
            .print(&st.recent_backups)?;
    }
    print_checks(st.verify.as_slice(), st.drills.as_slice())?;
    output::line(&st.dr_line())?;
    for s in &st.stale_sandboxes {
        output::line(&s.notice())?;
    }
    if st.open_alerts.is_empty() {
        return output::line("no open alerts");
    }
    super::alerts::print_alerts(&st.open_alerts)
}

fn print_sources(sources: &[SourceHealth]) -> Result<()> {
    Columns::new()
        .col("source", |s: &SourceHealth| s.name.clone())
        .col("schedule", |s| output::or_dash(s.schedule.as_ref()))
        .col("last success", |s| {
            s.last_success.as_deref().unwrap_or("never").to_string()
        })
        .col("last run", |s| output::or_dash(s.last_status.as_ref()))
        .col("next run (UTC)", |s| output::or_dash(s.next_run.as_ref()))
        .col("state", |s| {
            freshness(s.stale, s.age_secs, s.stale_after_secs)
        })
        .print(sources)
}

/// The last verify per target (with sample coverage) and drill per source.
fn print_checks(verify: &[VerifyHealth], drills: &[DrillHealth]) -> Result<()> {
    if verify
        .iter()
        .any(|v| v.configured || v.last_result.is_some())
    {
        Columns::new()
            .col("verify of target", |v: &VerifyHealth| v.target.clone())
            .col("schedule", |v| match (&v.schedule, &v.mode) {
                (Some(s), Some(m)) => format!("{s} ({m})"),
                (None, Some(m)) => format!("- ({m})"),
                _ => "-".into(),
            })
            .col("last success", |v| {
                ago(v.last_success.as_deref(), v.age_secs)
            })
            .col("last run", |v| match (&v.last_result, &v.last_mode) {
                (Some(r), Some(m)) => format!("{r} ({m})"),
                _ => "-".into(),
            })
            .col("coverage", |v| {
                let window = crate::clock::human(v.coverage_window_secs);
                output::or_dash(v.coverage_text().map(|c| format!("{c} in {window}")))
            })
            .col("state", |v| freshness(v.stale, v.age_secs, v.max_age_secs))
            .print(verify)?;
    }
    if drills.is_empty() {
        return Ok(());
    }
    Columns::new()
        .col("drill of source", |d: &DrillHealth| d.source.clone())
        .col("schedule", |d| output::or_dash(d.schedule.as_ref()))
        .col("last success", |d| {
            ago(d.last_success.as_deref(), d.age_secs)
        })
        .col("last run", |d| output::or_dash(d.last_outcome.as_ref()))
        .col("RTO", |d| {
            output::or_dash(d.last_rto_ms.map(output::duration_ms))
        })
        .col("state", |d| freshness(d.stale, d.age_secs, d.max_age_secs))
        .print(drills)
}

/// `VAULTCTL CRITICAL - …` ([`health::Status::check_line`]), or it as JSON.
fn check(ctx: &Ctx, st: &health::Status) -> Result<CheckStatus> {
    let line = st.check_line();
    if ctx.global.json {
        output::json(
            &serde_json::json!({ "state": st.state, "exit": st.state.exit_code(), "health_score": st.health_score, "summary": line }),
        )?;
    } else {
        output::line(&line)?;
    }
    Ok(st.state.check_status())
}

/// One line per source: the sizes of its last 30 completed backups as a
/// sparkline (plain ASCII with `NO_COLOR` or `TERM=dumb`), and the latest.
fn trends(catalog: &Catalog, sources: &[SourceHealth]) -> Result<()> {
    let ascii = output::plain_ascii();
    let width = sources.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in sources {
        let sizes = catalog.recent_sizes(&s.name, TREND_POINTS)?;
        let Some(last) = sizes.last() else { continue };
        output::line(&format!(
            "trend {:<width$}  {:<30}  {} ({} backups)",
            s.name,
            output::sparkline(&sizes, ascii),
            output::bytes(*last),
            sizes.len()
        ))?;
    }
    Ok(())
}

/// How many backups a `status` trend line shows.
const TREND_POINTS: usize = 30;
