//! `vaultctl show BACKUP`: everything known about one backup.

use anyhow::Result;
use clap::Args;

use crate::catalog::Catalog;
use crate::cli::{output, Ctx};
use crate::error::ExitStatus;
use crate::ops::views;

#[derive(Args, Debug)]
#[command(
    after_help = "Without the identity, the note, tenants, engine facts, artifacts and row counts of a backup the catalog learned from the repository (`catalog rebuild` on a host without the identity) cannot be read; `show` then prints what the sealed header gives and says so."
)]
pub struct ShowArgs {
    /// Backup id, unique id prefix, or SOURCE:latest
    pub backup: String,
}

pub fn run(ctx: &Ctx, args: ShowArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let catalog = Catalog::open(&config.catalog)?;
    let v = views::backup(&config, &catalog, &args.backup)?;
    if ctx.global.json {
        output::json(&v)?;
        return Ok(ExitStatus::Success);
    }
    output::line(&header(&v).join("\n"))?;
    if !v.artifacts.is_empty() {
        output::print_table(
            &["artifact", "format", "size", "BLAKE3"],
            v.artifacts.iter().map(|a| {
                [
                    a.name.clone(),
                    a.format.clone(),
                    output::bytes(a.size),
                    a.blake3.clone(),
                ]
            }),
        )?;
    }
    if !v.table_rows.is_empty() {
        output::print_table(
            &["table", "rows"],
            v.table_rows
                .iter()
                .map(|(name, n)| [name.clone(), n.to_string()]),
        )?;
    }
    output::line(&format!(
        "verified by a restore: {}",
        v.verified_at.as_deref().unwrap_or("never")
    ))?;
    if !v.checks.is_empty() {
        output::print_table(
            &["check", "at", "outcome", "target", "RTO", "problems"],
            v.checks.iter().map(|c| {
                [
                    c.method.clone(),
                    c.at.clone(),
                    c.outcome.clone(),
                    c.target.clone().unwrap_or_default(),
                    c.rto_ms.map(output::duration_ms).unwrap_or_default(),
                    c.problems.join("; "),
                ]
            }),
        )?;
    }
    if v.restores.is_empty() {
        return output::line("restores from it: none").map(|_| ExitStatus::Success);
    }
    output::line("restores from it (`vaultctl restores show ID`):")?;
    output::print_table(
        &[
            "restore", "started", "type", "target", "operator", "outcome",
        ],
        v.restores.iter().map(|r| {
            [
                r.id.to_string(),
                r.started_at.to_string(),
                r.kind.clone(),
                r.target.clone(),
                r.operator.clone(),
                r.outcome.clone(),
            ]
        }),
    )?;
    Ok(ExitStatus::Success)
}

/// The lines above the tables: status, source, times, sizes, presence,
/// tags, note, error, and tenants and engine facts (or why they are hidden).
fn header(v: &views::BackupView) -> Vec<String> {
    let b = &v.backup;
    let presence: Vec<String> = v
        .presence
        .iter()
        .map(|p| {
            let state = if p.present { "present" } else { "MISSING" };
            let note = if p.configured {
                ""
            } else {
                " (not configured)"
            };
            format!("{} {state}{note}", p.target)
        })
        .collect();
    let mut l = vec![
        format!("backup {}: {}", b.id, b.status),
        format!("source:    {} ({})   host: {}", b.source, b.kind, b.host),
        format!(
            "started:   {}   finished: {}   duration: {}",
            b.started_at,
            output::or_dash(b.finished_at.as_ref()),
            output::or_dash(b.duration_ms.map(output::duration_ms))
        ),
        format!(
            "size:      {}   new stored: {}   speed: {}",
            output::bytes(b.bytes),
            output::bytes(b.stored_bytes),
            output::or_dash(b.throughput_mb_s.map(|s| format!("{s} MB/s")))
        ),
        format!("targets:   {}", presence.join(", ")),
    ];
    if !b.tags.is_empty() {
        l.push(format!("tags:      {}", b.tags.join(", ")));
    }
    l.extend(b.note.iter().map(|n| format!("note:      {n}")));
    l.extend(b.error.iter().map(|e| format!("error:     {e}")));
    if let Some(why) = &v.needs_identity {
        l.extend([String::new(), why.clone()]);
        return l;
    }
    if !v.tenants.is_empty() {
        l.push(format!("tenants:   {}", v.tenants.join(", ")));
    }
    if let Some(o) = v.engine.as_object().filter(|o| !o.is_empty()) {
        l.push("engine:".into());
        for (k, val) in o.iter().filter(|(_, val)| !val.is_null()) {
            let text = match val {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            l.push(format!("  {k}: {text}"));
        }
    }
    l
}
