//! `vaultctl alerts`: list, acknowledge and resolve alerts.

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::catalog::Catalog;
use crate::cli::output::{self, Columns};
use crate::cli::Ctx;
use crate::error::{ExitStatus, Failure};
use crate::ops::{self, alerts};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: Option<AlertsCommand>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// List alerts (the default): open ones, most severe first
    List(ListArgs),
    /// Acknowledge an alert: someone is on it (it stays active until the condition clears)
    Ack(ActArgs),
    /// Resolve an alert by hand (raised again if the condition persists)
    Resolve(ActArgs),
}

#[derive(Args, Debug, Default)]
pub struct ListArgs {
    /// open (default), acknowledged, resolved, active (open and acknowledged) or all
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// Minimum severity: info, warning or critical
    #[arg(long, value_name = "S", value_parser = parse_severity)]
    pub severity: Option<crate::severity::Severity>,
    /// Only alerts of this source
    #[arg(long, value_name = "S")]
    pub source: Option<String>,
    /// Only alerts seen since T (RFC 3339, a date, or an age such as 7d)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
}

#[derive(Args, Debug)]
pub struct ActArgs {
    /// The alert id (from `vaultctl alerts`)
    pub id: i64,
    /// A note stored with the alert
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

fn parse_severity(s: &str) -> Result<crate::severity::Severity, String> {
    crate::severity::Severity::parse(s)
        .ok_or_else(|| format!("\"{s}\" is not a severity (info, warning, critical)"))
}

/// Who acknowledged or resolved an alert by hand: the operator
/// ([`crate::jobs::operator`], the sudo user under sudo) `@host`.
fn actor() -> String {
    format!("{}@{}", crate::jobs::operator(), crate::repo::hostname())
}

pub fn run(ctx: &Ctx, args: AlertsArgs) -> Result<ExitStatus> {
    let config = ctx.config()?;
    let catalog = Catalog::open(&config.catalog)?;
    match args.command {
        None => list(ctx, &config, &catalog, args.list),
        Some(AlertsCommand::List(l)) => list(ctx, &config, &catalog, l),
        Some(AlertsCommand::Ack(a)) => {
            let alert = alerts::acknowledge(
                &catalog,
                a.id,
                &actor(),
                a.note.as_deref(),
                &config.clock.now_str(),
            )?;
            ops::after_command(&config, &catalog);
            ctx.emit(&alert, |a| {
                output::line(&format!("acknowledged alert {}: {}", a.id, a.subject()))
            })
        }
        Some(AlertsCommand::Resolve(a)) => {
            let event = alerts::resolve_id(
                &catalog,
                a.id,
                &actor(),
                a.note.as_deref(),
                &config.clock.now_str(),
            )?;
            ops::notify::deliver(&config, std::slice::from_ref(&event));
            ops::after_command(&config, &catalog);
            ctx.emit(&event.alert, |a| {
                output::line(&format!("resolved alert {}: {}", a.id, a.subject()))
            })
        }
    }
}

fn list(
    ctx: &Ctx,
    config: &crate::config::Config,
    catalog: &Catalog,
    l: ListArgs,
) -> Result<ExitStatus> {
    // Staleness is a condition: check it so the list is current.
    ops::after_command(config, catalog);
    if let Some(s) = &l.status {
        if !["open", "acknowledged", "resolved", "active", "all"].contains(&s.as_str()) {
            return Err(Failure::new(
                ExitStatus::Usage,
                format!("--status {s} is not an alert status."),
            )
            .with_remedy("Use open, acknowledged, resolved, active (open and acknowledged) or all.")
            .into());
        }
    }
    let filter = alerts::AlertFilter {
        status: l.status,
        severity: l.severity,
        source: l.source,
        kind: None,
        since: l
            .since
            .as_deref()
            .map(|t| output::parse_time_arg(t, config.clock.now()))
            .transpose()?,
    };
    let rows = alerts::list(catalog, &filter)?;
    ctx.emit(&rows, |rows| {
        if !rows.is_empty() {
            return print_alerts(rows);
        }
        if ctx.global.quiet == 0 {
            eprintln!("vaultctl: no alerts match.");
        }
        Ok(())
    })
}

/// The alerts table (`alerts list`, and the open alerts of `status`).
pub fn print_alerts(rows: &[alerts::Alert]) -> Result<()> {
    Columns::new()
        .col("id", |a: &alerts::Alert| a.id.to_string())
        .col("severity", |a| a.severity.to_string())
        .col("status", |a| a.status.clone())
        .col("kind", |a| a.kind.clone())
        .col("source", |a| output::or_dash(a.source.as_ref()))
        .col("target", |a| output::or_dash(a.target.as_ref()))
        .col("count", |a| a.count.to_string())
        .col("last seen", |a| a.last_seen.to_string())
        .col("message", |a| a.message.clone())
        .print(rows)
}
