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

/// Alerts live in the catalog ([`crate::catalog::alerts`]); ops raises,
/// resolves and notifies them.
pub use crate::catalog::alerts;
pub mod doctor;
pub mod health;
pub mod hooks;
pub mod metrics;
pub mod notify;
pub mod oneshot;
pub mod report;
/// Schedules are a leaf ([`crate::schedule`]) the config parses.
pub use crate::schedule;
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
        let now = config.clock.now();
        health::check_sources(config, catalog, now)
            .and_then(|_| health::check_verifies(config, catalog, now))
            .and_then(|_| health::check_drills(config, catalog, now))
            .map(|_| ())
    };
    if let Err(e) = result {
        tracing::warn!(
            "cannot check the health of the sources: {}",
            crate::error::paragraph(&e)
        );
    }
}

/// Tells operations of damaged repository objects: the alert is recorded
/// in the config's catalog at the config's clock and notified
/// ([`crate::repo::Notifier`]). Its own catalog connection: the repository
/// does not hand its caller's out.
pub struct RepoNotifier(pub Config);

impl crate::repo::Notifier for RepoNotifier {
    fn damaged(&self, target: &str, message: &str) {
        match Catalog::open(&self.0.catalog) {
            Ok(catalog) => alert(
                &self.0,
                &catalog,
                damaged_key(target),
                Severity::Warning,
                &damaged_message(target, message),
            ),
            Err(e) => tracing::warn!(
                "cannot record an alert in the catalog: {}",
                crate::error::paragraph(&e)
            ),
        }
    }
}

/// The alert of a damaged object on `target`.
pub fn damaged_key(target: &str) -> AlertKey {
    AlertKey::new(alerts::kind::REPOSITORY_DAMAGED, "", target)
}

/// The alert's text: what was found, and what to do.
pub fn damaged_message(target: &str, message: &str) -> String {
    format!(
        "{message}. Run `vaultctl verify --target {target}`; delete the object if it is garbage."
    )
}

/// The repository of `config` (one target, or all), reporting damaged
/// objects through [`RepoNotifier`]: what every command opens.
pub fn open_repository(
    config: &Config,
    target: Option<&str>,
) -> anyhow::Result<crate::repo::Repository> {
    Ok(crate::repo::Repository::open(config, target)?
        .with_notifier(std::sync::Arc::new(RepoNotifier(config.clone()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A damaged object found by the repository becomes an alert at the
    /// config's clock (not the system's) and reaches the notifiers.
    #[test]
    fn damaged_objects_are_alerted_at_the_config_clock_and_notified() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("notified");
        let file = dir.path().join("vaultctl.toml");
        std::fs::write(
            &file,
            format!(
                "catalog = \"{}/catalog.db\"\n[[target]]\nname = \"local\"\nurl = \"file://{}/repo\"\n[[notify]]\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"echo $VAULTCTL_ALERT_KIND >> {}\"]\nmin_severity = \"info\"\n",
                dir.path().display(),
                dir.path().display(),
                log.display()
            ),
        )
        .unwrap();
        let mut config = crate::config::load(&crate::config::Overrides {
            config: Some(file),
            ..Default::default()
        })
        .unwrap();
        let t = crate::clock::parse("2031-05-06T07:08:09Z").unwrap();
        config.clock = crate::clock::Clock::fixed(t);
        let catalog = Catalog::open(&config.catalog).unwrap();
        let notifier = RepoNotifier(config.clone());
        crate::repo::Notifier::damaged(&notifier, "local", "index object x is damaged");
        let active = alerts::active_alerts(&catalog).unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].kind, alerts::kind::REPOSITORY_DAMAGED);
        assert_eq!(crate::clock::parse(&active[0].first_seen), Some(t));
        let notified = std::fs::read_to_string(&log).unwrap();
        assert_eq!(notified.trim(), "repository_damaged");
    }
}
