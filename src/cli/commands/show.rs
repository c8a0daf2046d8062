//! `vaultctl show BACKUP`: everything known about one backup.

use anyhow::Result;
use clap::Args;

use crate::catalog::Catalog;
use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
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
    ctx.emit(&v, print)
}

fn print(v: &views::BackupView) -> Result<()> {
    output::line(&header(v).join("\n"))?;
    if !v.artifacts.is_empty() {
        Columns::new()
            .col("artifact", |a: &views::ArtifactView| a.name.clone())
            .col("format", |a| a.format.clone())
            .col("size", |a| output::bytes(a.size))
            .col("BLAKE3", |a| a.blake3.clone())
            .print(&v.artifacts)?;
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
        Columns::new()
            .col("check", |c: &views::CheckView| c.method.clone())
            .col("at", |c| c.at.to_string())
            .col("outcome", |c| c.outcome.clone())
            .col("target", |c| c.target.clone().unwrap_or_default())
            .col("RTO", |c| {
                c.rto_ms.map(output::duration_ms).unwrap_or_default()
            })
            .col("problems", |c| c.problems.join("; "))
            .print(&v.checks)?;
    }
    if v.restores.is_empty() {
        return output::line("restores from it: none");
    }
    output::line("restores from it (`vaultctl restores show ID`):")?;
    Columns::new()
        .col("restore", |r: &crate::catalog::RestoreRow| r.id.to_string())
        .col("started", |r| r.started_at.to_string())
        .col("type", |r| r.kind.clone())
        .col("target", |r| r.target.clone())
        .col("operator", |r| r.operator.clone())
        .col("outcome", |r| r.outcome.clone())
        .print(&v.restores)
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
