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
pub mod oneshot;
pub mod schedule;
pub mod units;
pub mod views;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::severity::Severity;
use alerts::AlertKey;

/// Raises (or re-raises) an alert and notifies; never fails.
pub fn alert(config: &Config, catalog: &Catalog, key: AlertKey, severity: Severity, message: &str) {
    match alerts::raise(catalog, key, severity, message, &config.clock.now_str()) {
        Ok(event) => notify::deliver(config, std::slice::from_ref(&event)),
        Err(e) => tracing::warn!(
            "cannot record an alert in the catalog: {}",
            crate::error::paragraph(&e)
        ),
    }
}

/// Resolves the open alert for `key`, if any, and notifies; never fails.
pub fn clear(config: &Config, catalog: &Catalog, key: &AlertKey, by: &str) {
    match alerts::resolve(catalog, key, by, None, &config.clock.now_str()) {
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
        if let Err(e) = metrics::write(catalog, status, path, config.clock.now()) {
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
        health::status(config, catalog, config.clock.now())
            .map(|st| write_metrics(config, catalog, &st))
    } else {
        health::check_sources(config, catalog, config.clock.now()).map(|_| ())
    };
    if let Err(e) = result {
        tracing::warn!(
            "cannot check the health of the sources: {}",
            crate::error::paragraph(&e)
        );
    }
}
