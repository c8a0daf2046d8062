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
    let b = &v.backup;
    let mut l = vec![format!("backup {}: {}", b.id, b.status)];
    l.push(format!(
        "source:    {} ({})   host: {}",
        b.source, b.kind, b.host
    ));
    l.push(format!(
        "started:   {}   finished: {}   duration: {}",
        b.started_at,
        b.finished_at.as_deref().unwrap_or("-"),
        b.duration_ms
            .map(output::duration_ms)
            .unwrap_or_else(|| "-".into())
    ));
    l.push(format!(
        "size:      {}   new stored: {}   speed: {}",
        output::bytes(b.bytes),
        output::bytes(b.stored_bytes),
        b.throughput_mb_s
            .map(|s| format!("{s} MB/s"))
            .unwrap_or_else(|| "-".into())
    ));
    l.push(format!(
        "targets:   {}",
        v.presence
            .iter()
            .map(|p| format!(
                "{} {}{}",
                p.target,
                if p.present { "present" } else { "MISSING" },
                if p.configured {
                    ""
                } else {
                    " (not configured)"
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if !b.tags.is_empty() {
        l.push(format!("tags:      {}", b.tags.join(", ")));
    }
    if let Some(n) = &b.note {
        l.push(format!("note:      {n}"));
    }
    if let Some(e) = &b.error {
        l.push(format!("error:     {e}"));
    }
    if let Some(why) = &v.needs_identity {
        l.push(String::new());
        l.push(why.clone());
    } else {
        if !v.tenants.is_empty() {
            l.push(format!("tenants:   {}", v.tenants.join(", ")));
        }
        if let Some(o) = v.engine.as_object().filter(|o| !o.is_empty()) {
            l.push("engine:".into());
            for (k, val) in o {
                if val.is_null() {
                    continue;
                }
                let text = match val {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                l.push(format!("  {k}: {text}"));
            }
        }
    }
    output::line(&l.join("\n"))?;
    if !v.artifacts.is_empty() {
        let mut t = output::table();
        t.set_header(vec!["artifact", "format", "size", "BLAKE3"]);
        for a in &v.artifacts {
            t.add_row(vec![
                a.name.clone(),
                a.format.clone(),
                output::bytes(a.size),
                a.blake3.clone(),
            ]);
        }
        output::line(&t.to_string())?;
    }
    if !v.table_rows.is_empty() {
        let mut t = output::table();
        t.set_header(vec!["table", "rows"]);
        for (name, n) in &v.table_rows {
            t.add_row(vec![name.clone(), n.to_string()]);
        }
        output::line(&t.to_string())?;
    }
    output::line(&format!(
        "verified by a restore: {}",
        v.verified_at.as_deref().unwrap_or("never")
    ))?;
    if !v.checks.is_empty() {
        let mut t = output::table();
        t.set_header(vec!["check", "at", "outcome", "target", "RTO", "problems"]);
        for c in &v.checks {
            t.add_row(vec![
                c.method.clone(),
                c.at.clone(),
                c.outcome.clone(),
                c.target.clone().unwrap_or_default(),
                c.rto_ms.map(output::duration_ms).unwrap_or_default(),
                c.problems.join("; "),
            ]);
        }
        output::line(&t.to_string())?;
    }
    if v.restores.is_empty() {
        output::line("restores from it: none")?;
    } else {
        let mut t = output::table();
        t.set_header(vec![
            "restore", "started", "type", "target", "operator", "outcome",
        ]);
        for r in &v.restores {
            t.add_row(vec![
                r.id.to_string(),
                r.started_at.clone(),
                r.kind.clone(),
                r.target.clone(),
                r.operator.clone(),
                r.outcome.clone(),
            ]);
        }
        output::line(&format!(
            "restores from it (`vaultctl restores show ID`):\n{t}"
        ))?;
    }
    Ok(ExitStatus::Success)
}
