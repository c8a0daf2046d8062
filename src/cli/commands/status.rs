//! `vaultctl status`: the dashboard, and `--check` for monitoring.

use anyhow::Result;
use clap::Args;

use crate::catalog::Catalog;
use crate::cli::{output, Ctx};
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
    output::line(&format!(
        "health {}/100 ({})   backups: {} total, {} completed, {} failed, {} running   success (7d): {}   dedup: {}",
        st.health_score,
        st.state.label().to_ascii_lowercase(),
        st.backups.total,
        st.backups.completed,
        st.backups.failed,
        st.backups.running,
        st.success_rate_7d.map(|r| format!("{:.0}%", r * 100.0)).unwrap_or_else(|| "-".into()),
        st.dedup_ratio.map(|r| format!("{r:.2}x ({} stored for {})", output::bytes(st.stored_bytes), output::bytes(st.logical_bytes))).unwrap_or_else(|| "-".into()),
    ))?;
    let mut t = output::table();
    t.set_header(vec!["target", "backups", "packs", "stored"]);
    for x in &st.targets {
        t.add_row(vec![
            format!(
                "{}{}",
                x.name,
                if x.configured {
                    ""
                } else {
                    " (not configured)"
                }
            ),
            x.backups.to_string(),
            x.packs.to_string(),
            output::bytes(x.stored_bytes),
        ]);
    }
    output::line(&t.to_string())?;
    if !st.sources.is_empty() {
        let mut t = output::table();
        t.set_header(vec![
            "source",
            "schedule",
            "last success",
            "last run",
            "next run (UTC)",
            "state",
        ]);
        for s in &st.sources {
            let state = if s.stale {
                format!(
                    "STALE ({} without success)",
                    s.age_secs.map(crate::clock::human).unwrap_or_default()
                )
            } else if s.stale_after_secs.is_some() {
                "ok".into()
            } else {
                "-".into()
            };
            t.add_row(vec![
                s.name.clone(),
                s.schedule.clone().unwrap_or_else(|| "-".into()),
                s.last_success.clone().unwrap_or_else(|| "never".into()),
                s.last_status.clone().unwrap_or_else(|| "-".into()),
                s.next_run.clone().unwrap_or_else(|| "-".into()),
                state,
            ]);
        }
        output::line(&t.to_string())?;
        trends(&catalog, &st.sources)?;
    }
    if !st.recent_backups.is_empty() {
        let mut t = output::table();
        t.set_header(vec![
            "recent backup",
            "source",
            "status",
            "started",
            "duration",
            "size",
        ]);
        for b in &st.recent_backups {
            t.add_row(vec![
                b.id.clone(),
                b.source.clone(),
                b.status.clone(),
                b.started_at.clone(),
                b.duration_ms
                    .map(output::duration_ms)
                    .unwrap_or_else(|| "-".into()),
                output::bytes(b.bytes),
            ]);
        }
        output::line(&t.to_string())?;
    }
    print_checks(st.verify.as_slice(), st.drills.as_slice())?;
    match &st.dr {
        None => {
            output::line("DR drills: none yet (schedule `vaultctl dr drill --source S` weekly)")?
        }
        Some(d) => output::line(&format!(
            "last DR drill: #{} of '{}' {} {} ({}), RTO {}; recent RTOs {} — trend: {}",
            d.last_drill_id,
            d.last_drill_source,
            d.last_drill_outcome.to_uppercase(),
            d.last_drill_at,
            d.last_drill_backup.as_deref().unwrap_or("-"),
            d.last_drill_rto_ms
                .map(output::duration_ms)
                .unwrap_or_else(|| "-".into()),
            if d.recent_rto_ms.is_empty() {
                "-".to_string()
            } else {
                d.recent_rto_ms
                    .iter()
                    .map(|ms| output::duration_ms(*ms))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            d.trend
        ))?,
    }
    for s in &st.stale_sandboxes {
        output::line(&format!(
            "stale sandbox {} (a killed tenant restore left it{}); the next tenant restore removes it",
            s.path.display(),
            if s.running { "; its server still runs" } else { "" }
        ))?;
    }
    if st.open_alerts.is_empty() {
        output::line("no open alerts")?;
    } else {
        let mut t = output::table();
        t.set_header(vec![
            "alert", "severity", "status", "kind", "source", "target", "count", "message",
        ]);
        for a in &st.open_alerts {
            t.add_row(vec![
                a.id.to_string(),
                a.severity.to_string(),
                a.status.clone(),
                a.kind.clone(),
                a.source.clone().unwrap_or_else(|| "-".into()),
                a.target.clone().unwrap_or_else(|| "-".into()),
                a.count.to_string(),
                a.message.clone(),
            ]);
        }
        output::line(&t.to_string())?;
    }
    Ok(ExitStatus::Success.code())
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
        let mut t = output::table();
        t.set_header(vec![
            "verify of target",
            "schedule",
            "last success",
            "last run",
            "coverage",
            "state",
        ]);
        for v in verify {
            t.add_row(vec![
                v.target.clone(),
                match (&v.schedule, &v.mode) {
                    (Some(s), Some(m)) => format!("{s} ({m})"),
                    (None, Some(m)) => format!("- ({m})"),
                    _ => "-".into(),
                },
                ago(v.last_success.as_deref(), v.age_secs),
                match (&v.last_result, &v.last_mode) {
                    (Some(r), Some(m)) => format!("{r} ({m})"),
                    _ => "-".into(),
                },
                match v.coverage {
                    Some(c) => format!(
                        "{:.0}% of {} packs read in {}",
                        c * 100.0,
                        v.packs_known,
                        crate::clock::human(v.coverage_window_secs)
                    ),
                    None => "-".into(),
                },
                freshness(v.stale, v.age_secs, v.max_age_secs),
            ]);
        }
        output::line(&t.to_string())?;
    }
    if !drills.is_empty() {
        let mut t = output::table();
        t.set_header(vec![
            "drill of source",
            "schedule",
            "last success",
            "last run",
            "RTO",
            "state",
        ]);
        for d in drills {
            t.add_row(vec![
                d.source.clone(),
                d.schedule.clone().unwrap_or_else(|| "-".into()),
                ago(d.last_success.as_deref(), d.age_secs),
                d.last_outcome.clone().unwrap_or_else(|| "-".into()),
                d.last_rto_ms
                    .map(output::duration_ms)
                    .unwrap_or_else(|| "-".into()),
                freshness(d.stale, d.age_secs, d.max_age_secs),
            ]);
        }
        output::line(&t.to_string())?;
    }
    Ok(())
}

/// The last verify per target and drill per source, for the check line:
/// `verify local 3h ago, drill db 2d ago`.
fn check_ages(st: &health::Status) -> String {
    let age = |a: Option<u64>| {
        a.map(|a| format!("{} ago", crate::clock::human(a)))
            .unwrap_or_else(|| "never".into())
    };
    st.verify
        .iter()
        .filter(|v| v.configured || v.last_success.is_some())
        .map(|v| {
            format!(
                "verify {} {}",
                v.target,
                age(v.last_success.as_ref().and(v.age_secs))
            )
        })
        .chain(st.drills.iter().map(|d| {
            format!(
                "drill {} {}",
                d.source,
                age(d.last_success.as_ref().and(d.age_secs))
            )
        }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `VAULTCTL CRITICAL - 1 critical, 0 warning: backup_failed source=db | health=75;;;0;100 ...`
fn check(ctx: &Ctx, st: &health::Status) -> Result<CheckStatus> {
    let crit = st
        .open_alerts
        .iter()
        .filter(|a| a.severity == crate::severity::Severity::Critical)
        .count();
    let warn = st
        .open_alerts
        .iter()
        .filter(|a| a.severity == crate::severity::Severity::Warning)
        .count();
    let stale: Vec<&str> = st
        .sources
        .iter()
        .filter(|s| s.stale)
        .map(|s| s.name.as_str())
        .collect();
    let stale_checks: Vec<String> = st
        .verify
        .iter()
        .filter(|v| v.stale)
        .map(|v| format!("verify {}", v.target))
        .chain(
            st.drills
                .iter()
                .filter(|d| d.stale)
                .map(|d| format!("drill {}", d.source)),
        )
        .collect();
    let ages = check_ages(st);
    let summary = match st.state {
        health::State::Ok => format!(
            "{} source(s) fresh, no open alerts{}",
            st.sources
                .iter()
                .filter(|s| s.stale_after_secs.is_some())
                .count(),
            if ages.is_empty() {
                String::new()
            } else {
                format!("; {ages}")
            }
        ),
        _ => {
            let mut parts = vec![format!("{crit} critical, {warn} warning alert(s)")];
            if !stale.is_empty() {
                parts.push(format!("stale: {}", stale.join(",")));
            }
            if !stale_checks.is_empty() {
                parts.push(format!("overdue: {}", stale_checks.join(",")));
            }
            if !ages.is_empty() {
                parts.push(ages);
            }
            if let Some(a) = st
                .open_alerts
                .iter()
                .find(|a| a.severity >= crate::severity::Severity::Warning)
            {
                parts.push(format!(
                    "{}: {}",
                    a.subject(),
                    a.message.chars().take(160).collect::<String>()
                ));
            }
            parts.join("; ")
        }
    };
    let line = format!(
        "VAULTCTL {} - health {}/100; {} | health={};;;0;100 critical={crit} warning={warn} stale={} overdue_checks={}",
        st.state.label(),
        st.health_score,
        summary,
        st.health_score,
        stale.len(),
        stale_checks.len()
    );
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
