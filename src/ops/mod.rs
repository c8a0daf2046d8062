//! Operations: alerts, notifications, metrics, health and schedules.
//!
//! Nothing here imports `cli`; commands call into this module. Alerting and
//! notifying never fail the operation that triggered them: problems are
//! logged as warnings.
//!
//! Other modules raise and clear alerts with [`alert`] and [`clear`] (record
//! in the catalog, then notify), or record only with [`alerts::raise`] and
//! [`alerts::resolve`] and deliver the returned events with
//! [`notify::deliver`].

pub mod alerts;
pub mod health;
pub mod hooks;
pub mod metrics;
pub mod notify;
pub mod schedule;
pub mod units;

use time::OffsetDateTime;

use crate::catalog::Catalog;
use crate::config::Config;
use alerts::{AlertKey, Severity};

/// The current time, or `$VAULTCTL_NOW` (RFC 3339) when set: tests inject
/// "now" through it instead of sleeping.
pub fn now() -> OffsetDateTime {
    if let Ok(v) = std::env::var("VAULTCTL_NOW") {
        if !v.is_empty() {
            match OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339) {
                Ok(t) => return t,
                Err(_) => {
                    tracing::warn!("VAULTCTL_NOW=\"{v}\" is not an RFC 3339 time; using the clock")
                }
            }
        }
    }
    OffsetDateTime::now_utc()
}

/// [`now`] in the catalog's time format.
pub fn now_str() -> String {
    crate::repo::format_time(now())
}

/// Parses a catalog time (RFC 3339).
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Who did something by hand: `$USER@host`.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", crate::repo::hostname())
}

/// Raises (or re-raises) an alert and notifies; never fails.
pub fn alert(config: &Config, catalog: &Catalog, key: AlertKey, severity: Severity, message: &str) {
    match alerts::raise(catalog, key, severity, message) {
        Ok(event) => notify::deliver(config, std::slice::from_ref(&event)),
        Err(e) => tracing::warn!(
            "cannot record an alert in the catalog: {}",
            crate::error::paragraph(&e)
        ),
    }
}

/// Resolves the open alert for `key`, if any, and notifies; never fails.
pub fn clear(config: &Config, catalog: &Catalog, key: &AlertKey, by: &str) {
    match alerts::resolve(catalog, key, by, None) {
        Ok(Some(event)) => notify::deliver(config, std::slice::from_ref(&event)),
        Ok(None) => {}
        Err(e) => tracing::warn!(
            "cannot resolve an alert in the catalog: {}",
            crate::error::paragraph(&e)
        ),
    }
}

/// Writes the metrics textfile from `status` if one is configured; never fails.
pub fn write_metrics(config: &Config, catalog: &Catalog, status: &health::Status) {
    if let Some(path) = &config.metrics_textfile {
        if let Err(e) = metrics::write(catalog, status, path, now()) {
            tracing::warn!(
                "cannot write the metrics textfile {}: {}",
                path.display(),
                crate::error::paragraph(&e)
            );
        }
    }
}

/// After a command that changed state: checks staleness (raising and
/// resolving alerts) and, when configured, writes the metrics textfile (the
/// full status snapshot is computed only then). Never fails.
pub fn after_command(config: &Config, catalog: &Catalog) {
    let result = if config.metrics_textfile.is_some() {
        health::status(config, catalog, now()).map(|st| write_metrics(config, catalog, &st))
    } else {
        health::check_sources(config, catalog, now()).map(|_| ())
    };
    if let Err(e) = result {
        tracing::warn!(
            "cannot check the health of the sources: {}",
            crate::error::paragraph(&e)
        );
    }
}
