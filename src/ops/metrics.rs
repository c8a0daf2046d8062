//! Prometheus metrics for the node_exporter textfile collector, written
//! atomically (a temporary file in the same directory, then rename) so the
//! collector never reads half a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use time::OffsetDateTime;

use super::health::Status;
use crate::catalog::Catalog;

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out {
    text: String,
}

/// A sample's labels: `(name, value)` pairs.
type Labels<'l> = Vec<(&'static str, &'l str)>;

impl Out {
    /// One metric family: its HELP and TYPE lines (written even when it has
    /// no samples yet), then one line per sample.
    fn family<'l>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'l>, f64)>,
    ) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = write!(self.text, "{name}");
            if !labels.is_empty() {
                let l: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
                    .collect();
                let _ = write!(self.text, "{{{}}}", l.join(","));
            }
            let _ = writeln!(self.text, " {value}");
        }
    }

    /// A gauge without labels.
    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help, [(Vec::new(), value)]);
    }

    /// A gauge with one sample per value of the label `key`.
    fn gauge_by<'l>(
        &mut self,
        name: &str,
        help: &str,
        key: &'static str,
        samples: impl IntoIterator<Item = (&'l str, f64)>,
    ) {
        let samples = samples.into_iter().map(|(v, x)| (vec![(key, v)], x));
        self.family(name, "gauge", help, samples);
    }
}

fn unix(t: &str) -> Option<f64> {
    crate::clock::parse(t).map(|t| (t.unix_timestamp_nanos() / 1_000_000) as f64 / 1e3)
}

fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}

/// Renders the exposition text from a status snapshot taken at `now`.
pub fn render(catalog: &Catalog, st: &Status, now: OffsetDateTime) -> Result<String> {
    let mut o = Out {
        text: String::new(),
    };
    o.gauge(
        "vaultctl_health_score",
        "Health score 0-100 (see the README).",
        st.health_score as f64,
    );
    o.gauge(
        "vaultctl_health_state",
        "Monitoring state: 0 ok, 1 warning, 2 critical.",
        st.state.exit_code() as f64,
    );
    sources(&mut o, catalog, st)?;
    storage(&mut o, st);
    checks(&mut o, st);
    o.gauge(
        "vaultctl_metrics_generated_timestamp_seconds",
        "Unix time this file was written.",
        now.unix_timestamp() as f64,
    );
    Ok(o.text)
}

/// Per source: the last success, its duration and sizes, staleness, the
/// next run, and backups by status.
fn sources(o: &mut Out, catalog: &Catalog, st: &Status) -> Result<()> {
    o.gauge_by(
        "vaultctl_source_last_success_timestamp_seconds",
        "Unix time the last successful backup of the source finished.",
        "source",
        st.sources
            .iter()
            .filter_map(|s| Some((s.name.as_str(), unix(s.last_success.as_deref()?)?))),
    );
    let mut last = Vec::new();
    for s in &st.sources {
        if let Some(b) = catalog.latest_completed(&s.name)? {
            last.push((s.name.as_str(), b));
        }
    }
    o.gauge_by(
        "vaultctl_source_last_duration_seconds",
        "Duration of the last successful backup of the source.",
        "source",
        last.iter()
            .map(|(n, b)| (*n, b.duration_ms.unwrap_or(0) as f64 / 1000.0)),
    );
    o.gauge_by(
        "vaultctl_source_last_bytes",
        "Logical bytes of the last successful backup of the source.",
        "source",
        last.iter().map(|(n, b)| (*n, b.bytes as f64)),
    );
    o.gauge_by(
        "vaultctl_source_last_stored_bytes",
        "New bytes stored by the last successful backup of the source.",
        "source",
        last.iter().map(|(n, b)| (*n, b.stored_bytes as f64)),
    );
    let stored = catalog.stored_bytes_by_source()?;
    o.gauge_by(
        "vaultctl_source_stored_bytes",
        "New bytes stored by all completed backups of the source.",
        "source",
        stored.iter().map(|(n, v)| (n.as_str(), *v as f64)),
    );
    o.gauge_by(
        "vaultctl_source_stale",
        "1 when the source has had no successful backup within its schedule plus grace.",
        "source",
        st.sources
            .iter()
            .filter(|s| s.stale_after_secs.is_some())
            .map(|s| (s.name.as_str(), flag(s.stale))),
    );
    o.gauge_by(
        "vaultctl_source_next_run_timestamp_seconds",
        "Unix time of the next scheduled backup of the source (UTC schedule).",
        "source",
        st.sources
            .iter()
            .filter_map(|s| Some((s.name.as_str(), unix(s.next_run.as_deref()?)?))),
    );
    let counts = catalog.count_by_source_status()?;
    o.family(
        "vaultctl_backups_total",
        "counter",
        "Backups in the catalog by source and status.",
        counts.iter().map(|(src, status, n)| {
            (
                vec![("source", src.as_str()), ("status", status.as_str())],
                *n as f64,
            )
        }),
    );
    Ok(())
}

/// Per target: stored bytes and backups; open alerts; the dedup ratio.
fn storage(o: &mut Out, st: &Status) {
    o.gauge_by(
        "vaultctl_target_stored_bytes",
        "Bytes of blobs in packs on the target, as indexed by the catalog.",
        "target",
        st.targets
            .iter()
            .map(|t| (t.name.as_str(), t.stored_bytes as f64)),
    );
    o.gauge_by(
        "vaultctl_target_backups",
        "Completed backups the target holds, as recorded in the catalog.",
        "target",
        st.targets
            .iter()
            .map(|t| (t.name.as_str(), t.backups as f64)),
    );
    o.gauge_by(
        "vaultctl_alerts_open",
        "Active (open or acknowledged) alerts by severity.",
        "severity",
        ["critical", "warning", "info"].map(|sev| {
            let n = st
                .open_alerts
                .iter()
                .filter(|a| a.severity.as_str() == sev)
                .count();
            (sev, n as f64)
        }),
    );
    o.gauge(
        "vaultctl_dedup_ratio",
        "Logical bytes of completed backups divided by the bytes they stored.",
        st.dedup_ratio.unwrap_or(1.0),
    );
}

/// The proofs: the last DR drill, verify per target, drills per source.
fn checks(o: &mut Out, st: &Status) {
    if let Some(d) = &st.dr {
        o.gauge_by(
            "vaultctl_dr_last_drill_success",
            "1 when the last DR drill (test restore) succeeded, 0 when it failed.",
            "source",
            [(
                d.last_drill_source.as_str(),
                flag(d.last_drill_outcome == "succeeded"),
            )],
        );
        if let Some(ms) = d.recent_rto_ms.first() {
            o.gauge(
                "vaultctl_dr_last_drill_rto_seconds",
                "Recovery time the last successful DR drill achieved (start to verified database).",
                *ms as f64 / 1e3,
            );
        }
    }
    o.gauge_by(
        "vaultctl_verify_last_success_timestamp_seconds",
        "Unix time the last verify of the target that found no problem finished.",
        "target",
        st.verify
            .iter()
            .filter_map(|v| Some((v.target.as_str(), unix(v.last_success.as_deref()?)?))),
    );
    o.gauge_by(
        "vaultctl_verify_stale",
        "1 when the target has had no successful verify within [verify] max_age.",
        "target",
        st.verify
            .iter()
            .filter(|v| v.max_age_secs.is_some())
            .map(|v| (v.target.as_str(), flag(v.stale))),
    );
    o.gauge_by(
        "vaultctl_verify_coverage_ratio",
        "Share of the target's packs read intact within the [verify] window (0-1).",
        "target",
        st.verify
            .iter()
            .filter_map(|v| Some((v.target.as_str(), v.coverage?))),
    );
    o.gauge_by(
        "vaultctl_drill_last_success_timestamp_seconds",
        "Unix time the last successful DR drill (test restore) of the source finished.",
        "source",
        st.drills
            .iter()
            .filter_map(|d| Some((d.source.as_str(), unix(d.last_success.as_deref()?)?))),
    );
    o.gauge_by(
        "vaultctl_drill_rto_seconds",
        "Recovery time the last successful DR drill of the source achieved.",
        "source",
        st.drills
            .iter()
            .filter_map(|d| Some((d.source.as_str(), d.last_rto_ms? as f64 / 1e3))),
    );
    o.gauge_by(
        "vaultctl_drill_stale",
        "1 when the source has had no successful DR drill within its [source.drill] max_age.",
        "source",
        st.drills
            .iter()
            .filter(|d| d.max_age_secs.is_some())
            .map(|d| (d.source.as_str(), flag(d.stale))),
    );
}

/// Renders and writes `path` atomically.
pub fn write(catalog: &Catalog, st: &Status, path: &Path, now: OffsetDateTime) -> Result<()> {
    let text = render(catalog, st, now)?;
    write_atomic(path, text.as_bytes())
}

/// Writes a temporary file beside `path`, syncs it, and renames it over `path`.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "metrics.prom".into());
    // The collector reads only *.prom files: the temporary name must not end so.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_escaping() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
