//! `vaultctl report`: the dashboard as one self-contained HTML page (and
//! the same model as JSON).
//!
//! [`gather`] reads the catalog: the health snapshot is [`health::status`]
//! (the evaluation `status` makes, so the score and what lowers it are the
//! same), plus the backups, drills and verify runs of the last `days` days.
//! [`render_html`] is pure: inline CSS and inline SVG, no script, no URL of
//! any kind (the favicon is an empty `data:` URL so a browser does not ask a
//! server for one), every catalog string escaped. Each chart has a `<title>`
//! and `<desc>`, every point a `<title>`, and a table with its numbers.
//!
//! Memory: the rows of the window only (a year of hourly backups of ten
//! sources is ~90k small rows); the page grows with them.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;
use time::OffsetDateTime;

use super::health::{self, Deduction, Status};
use crate::catalog::{BackupFilter, Catalog};
use crate::config::Config;
use crate::humanize;

/// The report (`report --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: String,
    pub host: String,
    /// The window of the charts: the last `days` days up to `generated_at`.
    pub days: u32,
    pub since: String,
    /// What `status --json` shows (health score, state, sources, targets,
    /// open alerts, last verify and drill).
    pub health: Status,
    /// What lowers the health score, largest first.
    pub deductions: Vec<Deduction>,
    /// Per source, its completed backups in the window (oldest first).
    pub sources: Vec<SourceSeries>,
    /// Drills in the window, oldest first.
    pub drills: Vec<DrillPoint>,
    /// The RTO goal of every source with `[source.drill] rto_goal`.
    pub rto_goals: Vec<RtoGoal>,
    /// Verify runs in the window, oldest first.
    pub verify_runs: Vec<VerifyPoint>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceSeries {
    pub name: String,
    pub backups: Vec<BackupPoint>,
    /// Failed backups of this source in the window.
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackupPoint {
    pub id: String,
    pub started_at: String,
    pub bytes: u64,
    pub stored_bytes: u64,
    pub duration_ms: Option<u64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DrillPoint {
    pub id: i64,
    pub source: String,
    pub started_at: String,
    pub outcome: String,
    pub backup_id: Option<String>,
    pub rto_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RtoGoal {
    pub source: String,
    pub goal_ms: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifyPoint {
    pub started_at: crate::clock::Timestamp,
    pub target: String,
    pub mode: String,
    pub ok: bool,
    pub backups_checked: usize,
    pub packs_checked: usize,
    pub problems: usize,
}

/// Each source's completed backups in the window, oldest first, and how
/// many failed: the configured sources, then any other the catalog names.
fn source_series(
    catalog: &Catalog,
    health: &health::Status,
    since: &str,
) -> Result<Vec<SourceSeries>> {
    let rows = catalog.list(&BackupFilter {
        since: Some(since.to_string()),
        ..Default::default()
    })?;
    let mut names: Vec<String> = health.sources.iter().map(|s| s.name.clone()).collect();
    let mut sources: Vec<SourceSeries> = Vec::new();
    // Newest first from the catalog: walk backwards for oldest first.
    for b in rows.iter().rev() {
        if !names.contains(&b.source) {
            names.push(b.source.clone());
        }
    }
    for name in names {
        let mine = rows.iter().rev().filter(|b| b.source == name);
        let mut s = SourceSeries {
            name: name.clone(),
            backups: Vec::new(),
            failed: 0,
        };
        for b in mine {
            match b.status.as_str() {
                "completed" => s.backups.push(BackupPoint {
                    id: b.id.clone(),
                    started_at: b.started_at.to_string(),
                    bytes: b.bytes,
                    stored_bytes: b.stored_bytes,
                    duration_ms: b.duration_ms,
                    note: b.note.clone(),
                }),
                "failed" => s.failed += 1,
                _ => {}
            }
        }
        sources.push(s);
    }
    Ok(sources)
}

/// Reads the report at `now` over the last `days` days. Like `status`, it
/// evaluates staleness first (raising and resolving `source_stale` alerts).
pub fn gather(
    config: &Config,
    catalog: &Catalog,
    now: OffsetDateTime,
    days: u32,
) -> Result<Report> {
    let health = health::status(config, catalog, now)?;
    let since = crate::clock::format(now - time::Duration::days(days.into()));
    let deductions = health::deductions(health.success_rate_7d, &health.open_alerts);
    let sources = source_series(catalog, &health, &since)?;
    let mut drills: Vec<DrillPoint> = catalog
        .dr_runs(Some("drill"), None)?
        .into_iter()
        .filter(|d| *d.started_at >= *since && d.outcome != "running")
        .map(|d| DrillPoint {
            id: d.id,
            source: d.source,
            started_at: d.started_at.into(),
            outcome: d.outcome,
            backup_id: d.backup_id,
            rto_ms: d.rto_ms,
        })
        .collect();
    drills.reverse();
    let rto_goals = config
        .sources
        .iter()
        .filter_map(|s| {
            let goal = s.drill.as_ref()?.rto_goal?;
            Some(RtoGoal {
                source: s.name.clone(),
                goal_ms: goal.as_millis() as u64,
            })
        })
        .collect();
    let mut verify_runs: Vec<VerifyPoint> = catalog
        .verify_runs_since(&since)?
        .into_iter()
        .map(|v| VerifyPoint {
            started_at: v.started_at,
            target: v.target,
            mode: v.mode,
            ok: v.ok,
            backups_checked: v.backups_checked,
            packs_checked: v.packs_checked,
            problems: v.problems.len(),
        })
        .collect();
    verify_runs.reverse();
    Ok(Report {
        generated_at: crate::clock::format(now),
        host: crate::repo::hostname(),
        days,
        since,
        health,
        deductions,
        sources,
        drills,
        rto_goals,
        verify_runs,
    })
}

/// Renders the page and writes it atomically (a temporary file beside it,
/// then a rename) with mode 0644: names, sizes and alert messages, no secret.
pub fn write_html(path: &std::path::Path, r: &Report) -> Result<()> {
    super::metrics::write_atomic(path, render_html(r).as_bytes())
}

/// Text for HTML element content and attribute values: `& < > " '` escaped,
/// control characters other than tab and newline dropped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The chart geometry (SVG user units; the SVG scales to the page width).
const W: f64 = 640.0;
const H: f64 = 200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Colours of the series: mid tones that read on light and dark backgrounds.
const PALETTE: [&str; 6] = [
    "#3b82f6", "#e07b00", "#10a37f", "#a855f7", "#e11d48", "#0891b2",
];

/// The x of time `t` (unix seconds) on a plot from `t0` to `t1`.
pub fn x_of(t: i64, t0: i64, t1: i64) -> f64 {
    let span = (t1 - t0).max(1) as f64;
    let f = ((t - t0) as f64 / span).clamp(0.0, 1.0);
    round1(LEFT + f * (W - LEFT - RIGHT))
}

/// The y of value `v` on a plot from 0 (bottom) to `max` (top).
pub fn y_of(v: f64, max: f64) -> f64 {
    let f = if max > 0.0 {
        (v / max).clamp(0.0, 1.0)
    } else {
        0.0
    };
    round1(H - BOTTOM - f * (H - TOP - BOTTOM))
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The smallest 1, 2 or 5 × 10^k at or above `v` (the top of an axis); 1
/// for nothing to draw.
pub fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

/// How a chart labels its values.
#[derive(Clone, Copy)]
enum Unit {
    Bytes,
    Millis,
}

impl Unit {
    fn fmt(self, v: f64) -> String {
        match self {
            Unit::Bytes => humanize::bytes(v.round() as u64),
            Unit::Millis => humanize::duration_ms(v.round() as u64),
        }
    }
}

/// One line of a chart: its points (unix seconds, value) and what each
/// point's tooltip says.
struct Series {
    label: String,
    colour: &'static str,
    dashed: bool,
    points: Vec<(i64, f64, String)>,
}

/// A horizontal reference line (the RTO goal).
struct Goal {
    label: String,
    value: f64,
    colour: &'static str,
}

struct Chart<'a> {
    id: &'a str,
    title: String,
    desc: String,
    unit: Unit,
    t0: i64,
    t1: i64,
    series: Vec<Series>,
    goals: Vec<Goal>,
}

fn unix(at: &str) -> Option<i64> {
    crate::clock::parse(at).map(|t| t.unix_timestamp())
}

fn day(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(|t| crate::clock::format(t)[..10].to_string())
        .unwrap_or_default()
}

/// A line chart as inline SVG: axes, one polyline and one `<circle>` per
/// point per series, dashed goal lines, a legend. Without any point: a
/// sentence instead of an empty plot.
fn line_chart(c: &Chart<'_>) -> String {
    let n: usize = c.series.iter().map(|s| s.points.len()).sum();
    if n == 0 {
        return format!(
            "<p class=\"empty\" id=\"{}\">{}: nothing in this window.</p>",
            esc(c.id),
            esc(&c.title)
        );
    }
    let top = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(c.goals.iter().map(|g| g.value))
        .fold(0.0, f64::max);
    let max = nice_max(top);
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
        esc(&c.title),
        esc(&c.desc),
        id = esc(c.id),
    );
    axes(&mut o, max, c.unit, c.t0, c.t1);
    for g in &c.goals {
        let y = y_of(g.value, max);
        let _ = write!(
            o,
            "<line class=\"goal\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{}\"><title>{}</title></line><text class=\"goal-label\" x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{}\">{}</text>",
            W - RIGHT,
            g.colour,
            esc(&g.label),
            W - RIGHT - 2.0,
            round1(y - 3.0),
            g.colour,
            esc(&g.label),
        );
    }
    for s in &c.series {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|(t, v, _)| (x_of(*t, c.t0, c.t1), y_of(*v, max)))
            .collect();
        if pts.len() > 1 {
            let _ = write!(
                o,
                "<polyline class=\"line\" fill=\"none\" stroke=\"{}\"{} points=\"{}\"/>",
                s.colour,
                if s.dashed {
                    " stroke-dasharray=\"5 3\""
                } else {
                    ""
                },
                pts.iter()
                    .map(|(x, y)| format!("{x},{y}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        for ((x, y), (_, _, tip)) in pts.iter().zip(&s.points) {
            let _ = write!(
                o,
                "<circle class=\"pt\" cx=\"{x}\" cy=\"{y}\" r=\"3.5\" fill=\"{}\"><title>{}</title></circle>",
                s.colour,
                esc(tip)
            );
        }
    }
    o.push_str("</svg>");
    legend(&mut o, c);
    o
}

/// The chart's legend: a swatch per series (with its number of points) and
/// per goal.
fn legend(o: &mut String, c: &Chart<'_>) {
    o.push_str("<p class=\"legend\">");
    for s in &c.series {
        let _ = write!(
            o,
            "<span><i style=\"background:{}\"></i>{} ({})</span>",
            s.colour,
            esc(&s.label),
            s.points.len()
        );
    }
    for g in &c.goals {
        let _ = write!(
            o,
            "<span><i class=\"dash\" style=\"border-color:{}\"></i>{}</span>",
            g.colour,
            esc(&g.label)
        );
    }
    o.push_str("</p>");
}

/// Grid lines at 0, ½ and the top with their labels; dates at both ends
/// and the middle.
fn axes(o: &mut String, max: f64, unit: Unit, t0: i64, t1: i64) {
    for f in [0.0, 0.5, 1.0] {
        let y = y_of(max * f, max);
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/><text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            round1(y + 4.0),
            esc(&unit.fmt(max * f)),
        );
    }
    for (t, anchor) in [(t0, "start"), (t0 + (t1 - t0) / 2, "middle"), (t1, "end")] {
        let _ = write!(
            o,
            "<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            x_of(t, t0, t1),
            H - 8.0,
            day(t)
        );
    }
}

/// A verify strip: one row per target, one `<circle>` per run (filled green
/// when clean, red with problems).
fn verify_chart(r: &Report, t0: i64, t1: i64) -> String {
    let id = "chart-verify";
    if r.verify_runs.is_empty() {
        return format!(
            "<p class=\"empty\" id=\"{id}\">Verify results: no verify run in this window.</p>"
        );
    }
    let mut targets: Vec<&str> = Vec::new();
    for v in &r.verify_runs {
        if !targets.contains(&v.target.as_str()) {
            targets.push(&v.target);
        }
    }
    let row = 26.0;
    let h = TOP + row * targets.len() as f64 + BOTTOM;
    let ok = r.verify_runs.iter().filter(|v| v.ok).count();
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {W} {h}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\"><title id=\"{id}-t\">Verify results, last {} days</title><desc id=\"{id}-d\">{} verify runs on {} target(s): {} clean, {} with problems.</desc>",
        r.days,
        r.verify_runs.len(),
        targets.len(),
        ok,
        r.verify_runs.len() - ok
    );
    for (i, t) in targets.iter().enumerate() {
        let y = round1(TOP + row * i as f64 + row / 2.0);
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/><text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            round1(y + 4.0),
            esc(t)
        );
        for v in r.verify_runs.iter().filter(|v| v.target == *t) {
            let Some(at) = unix(&v.started_at) else {
                continue;
            };
            let _ = write!(
                o,
                "<circle class=\"pt {}\" cx=\"{}\" cy=\"{y}\" r=\"5\"><title>{}</title></circle>",
                if v.ok { "ok" } else { "fail" },
                x_of(at, t0, t1),
                esc(&format!(
                    "{} {} ({}): {}",
                    v.started_at,
                    v.target,
                    v.mode,
                    if v.ok {
                        "clean".to_string()
                    } else {
                        format!("{} problem(s)", v.problems)
                    }
                ))
            );
        }
    }
    for (t, anchor) in [(t0, "start"), (t1, "end")] {
        let _ = write!(
            o,
            "<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            x_of(t, t0, t1),
            round1(h - 8.0),
            day(t)
        );
    }
    o.push_str("</svg><p class=\"legend\"><span><i class=\"ok\"></i>clean</span><span><i class=\"fail\"></i>problems</span></p>");
    o
}

const CSS: &str = r#"
:root{color-scheme:light dark;--bg:#f4f5f7;--fg:#1c2230;--muted:#5d6678;--card:#fff;--line:#d8dce4;--ok:#1a7f37;--warn:#b35c00;--crit:#c62828}
@media (prefers-color-scheme:dark){:root{--bg:#11141a;--fg:#e4e7ed;--muted:#98a1b0;--card:#1a1f28;--line:#2d3441;--ok:#3fb950;--warn:#e3a008;--crit:#f85149}}
*{box-sizing:border-box}
body{margin:0;padding:24px;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{display:flex;align-items:center;gap:24px;flex-wrap:wrap;margin-bottom:20px}
h1{font-size:22px;margin:0}h2{font-size:16px;margin:0 0 10px}h3{font-size:14px;margin:14px 0 6px}
.sub{color:var(--muted)}
.score{font-size:44px;font-weight:700;line-height:1;padding:10px 18px;border-radius:10px;color:#fff}
.score small{font-size:14px;font-weight:600;display:block;text-transform:uppercase;letter-spacing:.08em}
.st-ok{background:var(--ok)}.st-warning{background:var(--warn)}.st-critical{background:var(--crit)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px;margin-bottom:16px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
td.num,th.num{text-align:right}
.bad{color:var(--crit);font-weight:600}.warn{color:var(--warn);font-weight:600}.good{color:var(--ok);font-weight:600}
.chart{width:100%;max-width:760px;height:auto;display:block}
.chart text{fill:var(--muted);font-size:11px}
.chart .grid{stroke:var(--line);stroke-width:1}
.chart .line{stroke-width:2}
.chart .goal{stroke-width:1.5;stroke-dasharray:6 4}
.chart .goal-label{font-size:11px;font-weight:600}
.chart .ok{fill:var(--ok)}.chart .fail{fill:var(--crit)}
.legend{margin:4px 0 8px;color:var(--muted);font-size:12px}
.legend span{margin-right:14px;white-space:nowrap}
.legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px;vertical-align:-1px}
.legend i.dash{border-radius:0;height:0;width:16px;border-top:2px dashed;vertical-align:3px}
.legend i.ok{background:var(--ok)}.legend i.fail{background:var(--crit)}
.empty{color:var(--muted);font-style:italic}
details summary{cursor:pointer;color:var(--muted);font-size:12px}
footer{color:var(--muted);font-size:12px}
"#;

/// The whole page.
pub fn render_html(r: &Report) -> String {
    let st = &r.health;
    let state = st.state.label().to_ascii_lowercase();
    let mut o = String::with_capacity(32 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"color-scheme\" content=\"light dark\"><link rel=\"icon\" href=\"data:,\"><title>vaultctl report: {} ({}), {}</title><style>{CSS}</style></head><body>",
        esc(&r.host),
        st.state.label(),
        esc(&r.generated_at)
    );
    let _ = write!(
        o,
        "<header><div class=\"score st-{state}\" id=\"health-score\">{}<small>{}</small></div><div><h1>vaultctl backups on {}</h1><div class=\"sub\">generated {} · charts over the last {} days (since {}) · {} backups ({} completed, {} failed, {} running) · success (7d) {} · dedup {}</div></div></header>",
        st.health_score,
        st.state.label(),
        esc(&r.host),
        esc(&r.generated_at),
        r.days,
        esc(&r.since),
        st.backups.total,
        st.backups.completed,
        st.backups.failed,
        st.backups.running,
        st.success_rate_7d
            .map(|x| format!("{:.0}%", x * 100.0))
            .unwrap_or_else(|| "-".into()),
        st.dedup_ratio
            .map(|d| format!(
                "{d:.2}x ({} stored for {})",
                humanize::bytes(st.stored_bytes),
                humanize::bytes(st.logical_bytes)
            ))
            .unwrap_or_else(|| "-".into()),
    );
    o.push_str("<div class=\"grid2\">");
    health_section(&mut o, r);
    alerts_section(&mut o, r);
    o.push_str("</div>");
    sources_section(&mut o, r);
    o.push_str("<div class=\"grid2\">");
    storage_section(&mut o, r);
    checks_section(&mut o, r);
    o.push_str("</div>");
    charts_section(&mut o, r);
    o.push_str(
        "<footer>vaultctl report · health score = 100 − 30 × (1 − 7-day success rate) − 25 per critical, 10 per warning, 2 per info alert (acknowledged: half) · this page has no scripts and loads nothing from anywhere.</footer></body></html>\n",
    );
    o
}

fn health_section(o: &mut String, r: &Report) {
    let st = &r.health;
    let _ = write!(
        o,
        "<section id=\"health\"><h2>Health {}/100: {}</h2>",
        st.health_score,
        st.state.label()
    );
    if r.deductions.is_empty() {
        o.push_str("<p class=\"good\">Nothing lowers the score.</p>");
    } else {
        o.push_str("<table><thead><tr><th class=\"num\">points</th><th>what lowers it</th></tr></thead><tbody>");
        for d in &r.deductions {
            let _ = write!(
                o,
                "<tr><td class=\"num bad\">−{}</td><td>{}</td></tr>",
                trim_points(d.points),
                esc(&d.reason)
            );
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("</section>");
}

/// 12.5 → "12.5", 10.0 → "10".
fn trim_points(p: f64) -> String {
    let s = format!("{p:.1}");
    s.strip_suffix(".0").map(String::from).unwrap_or(s)
}

fn alerts_section(o: &mut String, r: &Report) {
    let a = &r.health.open_alerts;
    let _ = write!(
        o,
        "<section id=\"alerts\"><h2>Open alerts ({})</h2>",
        a.len()
    );
    if a.is_empty() {
        o.push_str("<p class=\"good\">No open alerts.</p>");
    } else {
        o.push_str("<table><thead><tr><th>#</th><th>severity</th><th>kind</th><th>subject</th><th>since</th><th class=\"num\">count</th><th>message</th></tr></thead><tbody>");
        for x in a {
            let class = match x.severity {
                crate::severity::Severity::Critical => "bad",
                crate::severity::Severity::Warning => "warn",
                crate::severity::Severity::Info => "",
            };
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"{class}\">{}{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                x.id,
                x.severity,
                if x.status == "acknowledged" { " (ack)" } else { "" },
                esc(&x.kind),
                esc(&[x.source.as_deref(), x.target.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" → ")),
                esc(&x.first_seen),
                x.count,
                esc(&x.message)
            );
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("</section>");
}

fn sources_section(o: &mut String, r: &Report) {
    let s = &r.health.sources;
    let _ = write!(o, "<section id=\"sources\"><h2>Sources ({})</h2>", s.len());
    if s.is_empty() {
        o.push_str("<p class=\"empty\">No source configured or backed up.</p></section>");
        return;
    }
    o.push_str("<table><thead><tr><th>source</th><th>kind</th><th>schedule</th><th>last success</th><th>age</th><th>last run</th><th>next run (UTC)</th><th>state</th></tr></thead><tbody>");
    for x in s {
        let (class, state) = if x.stale {
            ("bad", "STALE")
        } else if x.stale_after_secs.is_some() {
            ("good", "ok")
        } else {
            ("", "-")
        };
        let _ = write!(
            o,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{state}</td></tr>",
            esc(&x.name),
            if x.configured { "" } else { " (not configured)" },
            esc(x.kind.as_deref().unwrap_or("-")),
            esc(x.schedule.as_deref().unwrap_or("-")),
            esc(x.last_success.as_deref().unwrap_or("never")),
            x.age_secs
                .map(|a| format!("{} ago", crate::clock::human(a)))
                .unwrap_or_else(|| "-".into()),
            esc(x.last_status.as_deref().unwrap_or("-")),
            esc(x.next_run.as_deref().unwrap_or("-")),
        );
    }
    o.push_str("</tbody></table></section>");
}

fn storage_section(o: &mut String, r: &Report) {
    o.push_str("<section id=\"storage\"><h2>Storage per target</h2>");
    if r.health.targets.is_empty() {
        o.push_str("<p class=\"empty\">No target.</p></section>");
        return;
    }
    o.push_str("<table><thead><tr><th>target</th><th class=\"num\">backups</th><th class=\"num\">packs</th><th class=\"num\">stored</th></tr></thead><tbody>");
    for t in &r.health.targets {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&t.label()),
            t.backups,
            t.packs,
            humanize::bytes(t.stored_bytes)
        );
    }
    o.push_str("</tbody></table></section>");
}

/// The last verify per target and drill per source (what `status` shows).
fn checks_section(o: &mut String, r: &Report) {
    o.push_str("<section id=\"checks\"><h2>Last checks</h2><table><thead><tr><th>check</th><th>last success</th><th>last run</th><th>detail</th><th>state</th></tr></thead><tbody>");
    let mut any = false;
    let state = |stale: bool, max: Option<u64>| match (stale, max) {
        (true, _) => ("bad", "OVERDUE"),
        (false, Some(_)) => ("good", "ok"),
        _ => ("", "-"),
    };
    for v in r
        .health
        .verify
        .iter()
        .filter(|v| v.configured || v.last_result.is_some())
    {
        any = true;
        let (class, label) = state(v.stale, v.max_age_secs);
        let _ = write!(
            o,
            "<tr><td>verify {}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{label}</td></tr>",
            esc(&v.target),
            esc(v.last_success.as_deref().unwrap_or("never")),
            esc(v.last_result.as_deref().unwrap_or("-")),
            v.coverage_text().unwrap_or_else(|| "-".into()),
        );
    }
    for d in &r.health.drills {
        any = true;
        let (class, label) = state(d.stale, d.max_age_secs);
        let _ = write!(
            o,
            "<tr><td>drill {}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{label}</td></tr>",
            esc(&d.source),
            esc(d.last_success.as_deref().unwrap_or("never")),
            esc(d.last_outcome.as_deref().unwrap_or("-")),
            d.last_rto_ms
                .map(|ms| format!("RTO {}", humanize::duration_ms(ms)))
                .unwrap_or_else(|| "-".into()),
        );
    }
    if !any {
        o.push_str("<tr><td colspan=\"5\" class=\"empty\">No verify or drill yet.</td></tr>");
    }
    o.push_str("</tbody></table></section>");
}

fn charts_section(o: &mut String, r: &Report) {
    let t1 = unix(&r.generated_at).unwrap_or(0);
    let t0 = unix(&r.since).unwrap_or(t1);
    let _ = write!(
        o,
        "<section id=\"charts\"><h2>Last {} days</h2><div class=\"grid2\">",
        r.days
    );
    for (i, s) in r.sources.iter().enumerate() {
        size_chart(o, r, s, i, (t0, t1));
        backups_table(o, s);
        o.push_str("</div>");
    }
    if r.sources.is_empty() {
        o.push_str("<p class=\"empty\">No backups yet.</p>");
    }
    o.push_str("</div><div class=\"grid2\"><div><h3>Backup durations</h3>");
    o.push_str(&durations_chart(r, t0, t1));
    o.push_str("</div><div><h3>DR drill RTO against the goal</h3>");
    drills_chart(o, r, t0, t1);
    o.push_str("</div></div><h3>Verify results</h3>");
    o.push_str(&verify_chart(r, t0, t1));
    verify_table(o, r);
    o.push_str("</section>");
}

/// One source's backup sizes and new stored bytes (its chart's `<div>` is
/// left open for the table of numbers).
fn size_chart(o: &mut String, r: &Report, s: &SourceSeries, i: usize, (t0, t1): (i64, i64)) {
    let pts = |f: &dyn Fn(&BackupPoint) -> f64, what: &str| -> Vec<(i64, f64, String)> {
        s.backups
            .iter()
            .filter_map(|b| {
                let v = f(b);
                Some((
                    unix(&b.started_at)?,
                    v,
                    format!(
                        "{} {}: {what} {}{}",
                        b.started_at,
                        b.id,
                        humanize::bytes(v as u64),
                        b.note
                            .as_deref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default()
                    ),
                ))
            })
            .collect()
    };
    let id = format!("chart-size-{i}");
    let _ = write!(
        o,
        "<div class=\"source-chart\" data-source=\"{}\"><h3>{} — size and new stored bytes</h3>",
        esc(&s.name),
        esc(&s.name)
    );
    o.push_str(&line_chart(&Chart {
        id: &id,
        title: format!(
            "{}: backup size and new stored bytes, last {} days",
            s.name, r.days
        ),
        desc: format!(
            "{} completed backups{}; latest size {}.",
            s.backups.len(),
            if s.failed > 0 {
                format!(", {} failed", s.failed)
            } else {
                String::new()
            },
            s.backups
                .last()
                .map(|b| humanize::bytes(b.bytes))
                .unwrap_or_else(|| "-".into())
        ),
        unit: Unit::Bytes,
        t0,
        t1,
        series: vec![
            Series {
                label: "size".into(),
                colour: PALETTE[0],
                dashed: false,
                points: pts(&|b| b.bytes as f64, "size"),
            },
            Series {
                label: "new stored".into(),
                colour: PALETTE[1],
                dashed: true,
                points: pts(&|b| b.stored_bytes as f64, "new stored"),
            },
        ],
        goals: vec![],
    }));
}

/// Every source's backup durations in one chart.
fn durations_chart(r: &Report, t0: i64, t1: i64) -> String {
    line_chart(&Chart {
        id: "chart-durations",
        title: format!("Backup durations per source, last {} days", r.days),
        desc: format!(
            "{} completed backups of {} source(s).",
            r.sources.iter().map(|s| s.backups.len()).sum::<usize>(),
            r.sources.len()
        ),
        unit: Unit::Millis,
        t0,
        t1,
        series: r
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| Series {
                label: s.name.clone(),
                colour: PALETTE[i % PALETTE.len()],
                dashed: false,
                points: s
                    .backups
                    .iter()
                    .filter_map(|b| {
                        let ms = b.duration_ms?;
                        Some((
                            unix(&b.started_at)?,
                            ms as f64,
                            format!("{} {}: {}", b.started_at, b.id, humanize::duration_ms(ms)),
                        ))
                    })
                    .collect(),
            })
            .collect(),
        goals: vec![],
    })
}

fn backups_table(o: &mut String, s: &SourceSeries) {
    if s.backups.is_empty() {
        return;
    }
    let _ = write!(
        o,
        "<details><summary>{} backups (numbers)</summary><table><thead><tr><th>started</th><th>backup</th><th class=\"num\">size</th><th class=\"num\">new stored</th><th class=\"num\">duration</th><th>note</th></tr></thead><tbody>",
        s.backups.len()
    );
    for b in s.backups.iter().rev() {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&b.started_at),
            esc(&b.id),
            humanize::bytes(b.bytes),
            humanize::bytes(b.stored_bytes),
            b.duration_ms
                .map(humanize::duration_ms)
                .unwrap_or_else(|| "-".into()),
            esc(b.note.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</tbody></table></details>");
}

fn drills_chart(o: &mut String, r: &Report, t0: i64, t1: i64) {
    let mut names: Vec<&str> = Vec::new();
    for d in &r.drills {
        if !names.contains(&d.source.as_str()) {
            names.push(&d.source);
        }
    }
    let colour = |name: &str| {
        let i = names.iter().position(|n| *n == name).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    o.push_str(&line_chart(&Chart {
        id: "chart-rto",
        title: format!("Achieved RTO of DR drills, last {} days", r.days),
        desc: format!(
            "{} drills, {} succeeded; goals: {}.",
            r.drills.len(),
            r.drills.iter().filter(|d| d.outcome == "succeeded").count(),
            if r.rto_goals.is_empty() {
                "none configured".to_string()
            } else {
                r.rto_goals
                    .iter()
                    .map(|g| format!("{} {}", g.source, humanize::duration_ms(g.goal_ms)))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        unit: Unit::Millis,
        t0,
        t1,
        series: names
            .iter()
            .map(|n| Series {
                label: n.to_string(),
                colour: colour(n),
                dashed: false,
                points: r
                    .drills
                    .iter()
                    .filter(|d| d.source == *n)
                    .filter_map(|d| {
                        let ms = d.rto_ms?;
                        Some((
                            unix(&d.started_at)?,
                            ms as f64,
                            format!(
                                "drill #{} {}: RTO {}",
                                d.id,
                                d.started_at,
                                humanize::duration_ms(ms)
                            ),
                        ))
                    })
                    .collect(),
            })
            .collect(),
        goals: r
            .rto_goals
            .iter()
            .filter(|g| names.contains(&g.source.as_str()) || names.is_empty())
            .map(|g| Goal {
                label: format!("goal {} {}", g.source, humanize::duration_ms(g.goal_ms)),
                value: g.goal_ms as f64,
                colour: colour(&g.source),
            })
            .collect(),
    }));
    drills_table(o, r);
}

/// The drills' numbers under their chart, newest first, each RTO against
/// its source's goal.
fn drills_table(o: &mut String, r: &Report) {
    if r.drills.is_empty() {
        return;
    }
    let goal = |s: &str| {
        r.rto_goals
            .iter()
            .find(|g| g.source == s)
            .map(|g| g.goal_ms)
    };
    let _ = write!(
        o,
        "<details><summary>{} drills (numbers)</summary><table><thead><tr><th>#</th><th>started</th><th>source</th><th>backup</th><th>outcome</th><th class=\"num\">RTO</th><th class=\"num\">goal</th></tr></thead><tbody>",
        r.drills.len()
    );
    for d in r.drills.iter().rev() {
        let over = matches!((d.rto_ms, goal(&d.source)), (Some(x), Some(g)) if x > g);
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"num{}\">{}</td><td class=\"num\">{}</td></tr>",
            d.id,
            esc(&d.started_at),
            esc(&d.source),
            esc(d.backup_id.as_deref().unwrap_or("-")),
            if d.outcome == "succeeded" { "good" } else { "bad" },
            esc(&d.outcome),
            if over { " bad" } else { "" },
            d.rto_ms
                .map(humanize::duration_ms)
                .unwrap_or_else(|| "-".into()),
            goal(&d.source)
                .map(humanize::duration_ms)
                .unwrap_or_else(|| "-".into())
        );
    }
    o.push_str("</tbody></table></details>");
}

fn verify_table(o: &mut String, r: &Report) {
    if r.verify_runs.is_empty() {
        return;
    }
    let _ = write!(
        o,
        "<details><summary>{} verify runs (numbers)</summary><table><thead><tr><th>started</th><th>target</th><th>mode</th><th>result</th><th class=\"num\">backups</th><th class=\"num\">packs</th><th class=\"num\">problems</th></tr></thead><tbody>",
        r.verify_runs.len()
    );
    for v in r.verify_runs.iter().rev() {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&v.started_at),
            esc(&v.target),
            esc(&v.mode),
            if v.ok { "good" } else { "bad" },
            if v.ok { "clean" } else { "problems" },
            v.backups_checked,
            v.packs_checked,
            v.problems
        );
    }
    o.push_str("</tbody></table></details>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::alerts::Alert;
    use crate::ops::health::{Counts, SourceHealth, TargetUsage};
    use crate::severity::Severity;

    const EVIL: &str = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";

    fn status(sources: Vec<SourceHealth>, alerts: Vec<Alert>) -> Status {
        Status {
            generated_at: "2026-11-30T12:00:00.000Z".into(),
            health_score: health::score(Some(1.0), &alerts),
            state: health::state(&alerts, &sources),
            backups: Counts::default(),
            success_rate_7d: None,
            logical_bytes: 0,
            stored_bytes: 0,
            dedup_ratio: None,
            targets: vec![TargetUsage {
                name: EVIL.into(),
                configured: false,
                backups: 1,
                packs: 2,
                stored_bytes: 3,
            }],
            sources,
            recent_backups: vec![],
            open_alerts: alerts,
            dr: None,
            verify: vec![],
            drills: vec![],
            stale_sandboxes: vec![],
        }
    }

    fn source(name: &str) -> SourceHealth {
        SourceHealth {
            name: name.into(),
            kind: Some("files".into()),
            configured: true,
            schedule: Some(EVIL.into()),
            stale_after_secs: None,
            last_success: None,
            last_status: None,
            next_run: None,
            stale: false,
            age_secs: None,
        }
    }

    fn report(status: Status, sources: Vec<SourceSeries>) -> Report {
        Report {
            generated_at: "2026-11-30T12:00:00.000Z".into(),
            host: EVIL.into(),
            days: 10,
            since: "2026-11-20T12:00:00.000Z".into(),
            deductions: health::deductions(status.success_rate_7d, &status.open_alerts),
            health: status,
            sources,
            drills: vec![],
            rto_goals: vec![],
            verify_runs: vec![],
        }
    }

    fn point(day: u32, bytes: u64) -> BackupPoint {
        BackupPoint {
            id: format!("b{day}{EVIL}"),
            started_at: format!("2026-11-{day:02}T12:00:00.000Z"),
            bytes,
            stored_bytes: bytes / 10,
            duration_ms: Some(1000 * day as u64),
            note: Some(EVIL.into()),
        }
    }

    /// The markup of the element with `id` up to its closing `</svg>`.
    fn svg<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html
            .find(&format!("<svg id=\"{id}\""))
            .unwrap_or_else(|| panic!("no svg {id}"));
        let end = html[start..].find("</svg>").unwrap() + start;
        &html[start..end]
    }

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>\u{7}"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let mut alert = Alert {
            id: 7,
            kind: EVIL.into(),
            severity: Severity::Critical,
            source: Some(EVIL.into()),
            target: Some(EVIL.into()),
            message: EVIL.into(),
            first_seen: EVIL.into(),
            last_seen: Default::default(),
            count: 1,
            status: "open".into(),
            acknowledged_by: None,
            acknowledged_at: None,
            ack_note: None,
            resolved_at: None,
            resolved_by: None,
            resolve_note: None,
        };
        alert.last_seen = alert.first_seen.clone();
        let r = report(
            status(vec![source(EVIL)], vec![alert]),
            vec![SourceSeries {
                name: EVIL.into(),
                backups: vec![point(21, 100), point(22, 200)],
                failed: 0,
            }],
        );
        let html = render_html(&r);
        // The markup is text now (`src=x` stays as letters between &lt; and &gt;).
        for bad in [
            "<script",
            "<img",
            "onerror=alert(1)>",
            "href=\"http",
            "url(",
        ] {
            assert!(!html.contains(bad), "{bad} in the page");
        }
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        // The one link: the empty data: favicon.
        assert_eq!(html.matches("href=").count(), 1);
        assert!(html.contains("<link rel=\"icon\" href=\"data:,\">"));
        assert!(!html.contains("http:") && !html.contains("https:"));
    }

    #[test]
    fn point_math() {
        assert_eq!(x_of(0, 0, 100), LEFT);
        assert_eq!(x_of(100, 0, 100), W - RIGHT);
        assert_eq!(x_of(50, 0, 100), round1(LEFT + (W - LEFT - RIGHT) / 2.0));
        // Outside the window: clamped to its edges; an empty window does not divide by zero.
        assert_eq!(x_of(-5, 0, 100), LEFT);
        assert_eq!(x_of(500, 0, 100), W - RIGHT);
        assert_eq!(x_of(7, 7, 7), LEFT);
        assert_eq!(y_of(0.0, 10.0), H - BOTTOM);
        assert_eq!(y_of(10.0, 10.0), TOP);
        assert_eq!(y_of(5.0, 10.0), round1((H - BOTTOM + TOP) / 2.0));
        assert_eq!(y_of(5.0, 0.0), H - BOTTOM);
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(1.5e6), 2e6);
        assert_eq!(nice_max(3000.0), 5000.0);
        assert_eq!(nice_max(100.0), 100.0);
    }

    #[test]
    fn one_circle_per_point_and_a_line_through_them() {
        let r = report(
            status(vec![source("db"), source("etc")], vec![]),
            vec![
                SourceSeries {
                    name: "db".into(),
                    backups: vec![point(21, 1000), point(25, 4000), point(29, 2000)],
                    failed: 1,
                },
                SourceSeries {
                    name: "etc".into(),
                    backups: vec![point(30, 10)],
                    failed: 0,
                },
            ],
        );
        let html = render_html(&r);
        let size = svg(&html, "chart-size-0");
        assert_eq!(size.matches("<circle").count(), 6, "size and new stored");
        assert_eq!(size.matches("<polyline").count(), 2);
        // Max 4000 -> axis top 5000; 4000 sits at 80 % of the plot height.
        let y = y_of(4000.0, 5000.0);
        assert!(size.contains(&format!("cy=\"{y}\"")), "{size}");
        assert!(size.contains("<title id=\"chart-size-0-t\">db: backup size"));
        assert!(size.contains("1 failed"));
        let one = svg(&html, "chart-size-1");
        assert_eq!(one.matches("<circle").count(), 2);
        assert_eq!(one.matches("<polyline").count(), 0, "one point: no line");
        assert_eq!(svg(&html, "chart-durations").matches("<circle").count(), 4);
        assert!(
            html.contains("id=\"chart-rto\">DR drill RTOs") || html.contains("id=\"chart-rto\"")
        );
        assert!(
            !html.contains("<svg id=\"chart-rto\""),
            "no drills: no plot"
        );
    }

    #[test]
    fn drills_against_the_goal_and_verify_results() {
        let mut r = report(status(vec![source("db")], vec![]), vec![]);
        r.drills = vec![
            DrillPoint {
                id: 1,
                source: "db".into(),
                started_at: "2026-11-22T04:00:00.000Z".into(),
                outcome: "succeeded".into(),
                backup_id: None,
                rto_ms: Some(600_000),
            },
            DrillPoint {
                id: 2,
                source: "db".into(),
                started_at: "2026-11-29T04:00:00.000Z".into(),
                outcome: "failed".into(),
                backup_id: None,
                rto_ms: None,
            },
        ];
        r.rto_goals = vec![RtoGoal {
            source: "db".into(),
            goal_ms: 900_000,
        }];
        r.verify_runs = ["local", "s3", "local"]
            .iter()
            .enumerate()
            .map(|(i, t)| VerifyPoint {
                started_at: format!("2026-11-2{}T05:00:00.000Z", i + 3).into(),
                target: t.to_string(),
                mode: "structure".into(),
                ok: i != 1,
                backups_checked: 2,
                packs_checked: 3,
                problems: usize::from(i == 1),
            })
            .collect();
        let html = render_html(&r);
        let rto = svg(&html, "chart-rto");
        assert_eq!(
            rto.matches("<circle").count(),
            1,
            "the failed drill has no RTO"
        );
        assert_eq!(rto.matches("class=\"goal\"").count(), 1);
        // Goal 15m -> axis top 1e6 ms (16m40s); the goal line at 90 %.
        assert!(
            rto.contains(&format!("y1=\"{}\"", y_of(900_000.0, 1_000_000.0))),
            "{rto}"
        );
        assert!(rto.contains("goal db 15m00s"));
        let v = svg(&html, "chart-verify");
        assert_eq!(v.matches("<circle").count(), 3);
        assert_eq!(v.matches("class=\"pt fail\"").count(), 1);
        assert!(v.contains("3 verify runs on 2 target(s): 2 clean, 1 with problems"));
        assert!(html.contains("2 drills (numbers)") && html.contains("3 verify runs (numbers)"));
    }

    #[test]
    fn empty_catalog_renders_every_section_without_plots() {
        let r = report(status(vec![], vec![]), vec![]);
        let html = render_html(&r);
        for id in ["health", "alerts", "sources", "storage", "checks", "charts"] {
            assert!(html.contains(&format!("<section id=\"{id}\"")), "{id}");
        }
        assert!(!html.contains("<svg"), "no data, no plot");
        assert!(html.contains("Nothing lowers the score."));
        assert!(html.contains("No open alerts."));
        assert!(html.contains("No backups yet."));
        assert!(html.contains("no verify run in this window"));
        assert!(html.contains("nothing in this window"));
    }

    #[test]
    fn what_lowers_the_score_is_listed() {
        let alerts = vec![Alert {
            id: 3,
            kind: "backup_failed".into(),
            severity: Severity::Critical,
            source: Some("db".into()),
            target: None,
            message: "m".into(),
            first_seen: Default::default(),
            last_seen: Default::default(),
            count: 2,
            status: "open".into(),
            acknowledged_by: None,
            acknowledged_at: None,
            ack_note: None,
            resolved_at: None,
            resolved_by: None,
            resolve_note: None,
        }];
        let r = report(status(vec![], alerts), vec![]);
        let html = render_html(&r);
        assert!(
            html.contains("class=\"score st-critical\" id=\"health-score\">75<"),
            "{html}"
        );
        assert!(html.contains("−25</td><td>critical alert #3: backup_failed source=db</td>"));
    }
}
