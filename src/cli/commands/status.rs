//! `vaultctl status`: the dashboard, and `--check` for monitoring.

use anyhow::Result;
use clap::Args;

use crate::catalog::Catalog;
use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::error::{CheckStatus, ExitStatus};
use crate::ops::{self, health};

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
    if ctx.global.json {
        output::json(&st)?;
        return Ok(ExitStatus::Success.code());
    }
    print_summary(&st)?;
    if !st.sources.is_empty() {
        print_sources(&st.sources)?;
        trends(&catalog, &st.sources)?;
    }
    if !st.recent_backups.is_empty() {
        Columns::new()
            .col("recent backup", |b: &crate::catalog::BackupRow| {
                b.id.clone()
            })
            .col("source", |b| b.source.clone())
            .col("status", |b| b.status.clone())
            .col("started", |b| b.started_at.clone())
            .col("duration", |b| {
                output::or_dash(b.duration_ms.map(output::duration_ms))
            })
            .col("size", |b| output::bytes(b.bytes))
            .print(&st.recent_backups)?;
    }
    print_checks(st.verify.as_slice(), st.drills.as_slice())?;
    output::line(&dr_line(st.dr.as_ref()))?;
    print_stale_sandboxes(&st.stale_sandboxes)?;
    if st.open_alerts.is_empty() {
        output::line("no open alerts")?;
    } else {
        super::alerts::print_alerts(&st.open_alerts)?;
    }
    Ok(ExitStatus::Success.code())
}

/// The headline (health, counts, success rate, dedup) and storage per target.
fn print_summary(st: &health::Status) -> Result<()> {
    output::line(&format!(
        "health {}/100 ({})   backups: {} total, {} completed, {} failed, {} running   success (7d): {}   dedup: {}",
        st.health_score,
        st.state.label().to_ascii_lowercase(),
        st.backups.total,
        st.backups.completed,
        st.backups.failed,
        st.backups.running,
        output::or_dash(st.success_rate_7d.map(|r| format!("{:.0}%", r * 100.0))),
        output::or_dash(st.dedup_ratio.map(|r| format!("{r:.2}x ({} stored for {})", output::bytes(st.stored_bytes), output::bytes(st.logical_bytes)))),
    ))?;
    Columns::new()
        .col("target", |x: &health::TargetUsage| {
            let note = if x.configured {
                ""
            } else {
                " (not configured)"
            };
            format!("{}{note}", x.name)
        })
        .col("backups", |x| x.backups.to_string())
        .col("packs", |x| x.packs.to_string())
        .col("stored", |x| output::bytes(x.stored_bytes))
        .print(&st.targets)
}

fn print_sources(sources: &[health::SourceHealth]) -> Result<()> {
    Columns::new()
        .col("source", |s: &health::SourceHealth| s.name.clone())
        .col("schedule", |s| output::or_dash(s.schedule.as_ref()))
        .col("last success", |s| {
            s.last_success.clone().unwrap_or_else(|| "never".into())
        })
        .col("last run", |s| output::or_dash(s.last_status.as_ref()))
        .col("next run (UTC)", |s| output::or_dash(s.next_run.as_ref()))
        .col("state", |s| {
            freshness(s.stale, s.age_secs, s.stale_after_secs)
        })
        .print(sources)
}

/// Sandbox clusters a killed tenant point-in-time restore left behind.
fn print_stale_sandboxes(found: &[crate::engine::postgres::sandbox::Stale]) -> Result<()> {
    for s in found {
        output::line(&format!(
            "stale sandbox {} (a killed tenant restore left it{}); the next tenant restore removes it",
            s.path.display(),
            if s.running { "; its server still runs" } else { "" }
        ))?;
    }
    Ok(())
}

/// The last DR drill of any source, its RTO and the trend.
fn dr_line(dr: Option<&health::DrStatus>) -> String {
    let Some(d) = dr else {
        return "DR drills: none yet (schedule `vaultctl dr drill --source S` weekly)".into();
    };
    let recent: Vec<String> = d
        .recent_rto_ms
        .iter()
        .map(|ms| output::duration_ms(*ms))
        .collect();
    format!(
        "last DR drill: #{} of '{}' {} {} ({}), RTO {}; recent RTOs {} — trend: {}",
        d.last_drill_id,
        d.last_drill_source,
        d.last_drill_outcome.to_uppercase(),
        d.last_drill_at,
        d.last_drill_backup.as_deref().unwrap_or("-"),
        output::or_dash(d.last_drill_rto_ms.map(output::duration_ms)),
        if recent.is_empty() {
            "-".to_string()
        } else {
            recent.join(", ")
        },
        d.trend
    )
}

/// `age ago` of a catalog time (the age computed by health), or `never`.
fn ago(at: Option<&str>, age: Option<u64>) -> String {
    match (at, age) {
        (Some(t), Some(a)) => format!("{t} ({} ago)", crate::clock::human(a)),
        (Some(t), None) => t.to_string(),
        (None, _) => "never".into(),
    }
}

fn freshness(stale: bool, age: Option<u64>, max_age: Option<u64>) -> String {
    match (stale, max_age) {
        (true, _) => format!(
            "STALE ({} without success)",
            age.map(crate::clock::human).unwrap_or_default()
        ),
        (false, Some(_)) => "ok".into(),
        (false, None) => "-".into(),
    }
}

/// The last verify per target (with sample coverage) and drill per source.
fn print_checks(verify: &[health::VerifyHealth], drills: &[health::DrillHealth]) -> Result<()> {
    if verify
        .iter()
        .any(|v| v.configured || v.last_result.is_some())
    {
        Columns::new()
            .col("verify of target", |v: &health::VerifyHealth| {
                v.target.clone()
            })
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
                output::or_dash(v.coverage.map(|c| {
                    format!(
                        "{:.0}% of {} packs read in {}",
                        c * 100.0,
                        v.packs_known,
                        crate::clock::human(v.coverage_window_secs)
                    )
                }))
            })
            .col("state", |v| freshness(v.stale, v.age_secs, v.max_age_secs))
            .print(verify)?;
    }
    if drills.is_empty() {
        return Ok(());
    }
    Columns::new()
        .col("drill of source", |d: &health::DrillHealth| {
            d.source.clone()
        })
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
fn trends(catalog: &Catalog, sources: &[health::SourceHealth]) -> Result<()> {
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
