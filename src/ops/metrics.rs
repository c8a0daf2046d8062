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

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
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

fn unix(t: &str) -> Option<f64> {
    crate::clock::parse(t).map(|t| (t.unix_timestamp_nanos() / 1_000_000) as f64 / 1e3)
}

/// Renders the exposition text from a status snapshot taken at `now`.
pub fn render(catalog: &Catalog, st: &Status, now: OffsetDateTime) -> Result<String> {
    let mut o = Out {
        text: String::new(),
    };

    o.family(
        "vaultctl_health_score",
        "gauge",
        "Health score 0-100 (see the README).",
    );
    o.sample("vaultctl_health_score", &[], st.health_score as f64);
    o.family(
        "vaultctl_health_state",
        "gauge",
        "Monitoring state: 0 ok, 1 warning, 2 critical.",
    );
    o.sample("vaultctl_health_state", &[], st.state.exit_code() as f64);

    o.family(
        "vaultctl_source_last_success_timestamp_seconds",
        "gauge",
        "Unix time the last successful backup of the source finished.",
    );
    for s in &st.sources {
        if let Some(t) = s.last_success.as_deref().and_then(unix) {
            o.sample(
                "vaultctl_source_last_success_timestamp_seconds",
                &[("source", &s.name)],
                t,
            );
        }
    }
    o.family(
        "vaultctl_source_last_duration_seconds",
        "gauge",
        "Duration of the last successful backup of the source.",
    );
    let mut last_bytes = Vec::new();
    let mut last_stored = Vec::new();
    for s in &st.sources {
        if let Some(b) = catalog.latest_completed(&s.name)? {
            o.sample(
                "vaultctl_source_last_duration_seconds",
                &[("source", &s.name)],
                b.duration_ms.unwrap_or(0) as f64 / 1000.0,
            );
            last_bytes.push((s.name.clone(), b.bytes));
            last_stored.push((s.name.clone(), b.stored_bytes));
        }
    }
    o.family(
        "vaultctl_source_last_bytes",
        "gauge",
        "Logical bytes of the last successful backup of the source.",
    );
    for (n, v) in &last_bytes {
        o.sample("vaultctl_source_last_bytes", &[("source", n)], *v as f64);
    }
    o.family(
        "vaultctl_source_last_stored_bytes",
        "gauge",
        "New bytes stored by the last successful backup of the source.",
    );
    for (n, v) in &last_stored {
        o.sample(
            "vaultctl_source_last_stored_bytes",
            &[("source", n)],
            *v as f64,
        );
    }
    o.family(
        "vaultctl_source_stored_bytes",
        "gauge",
        "New bytes stored by all completed backups of the source.",
    );
    for (n, v) in catalog.stored_bytes_by_source()? {
        o.sample("vaultctl_source_stored_bytes", &[("source", &n)], v as f64);
    }
    o.family(
        "vaultctl_source_stale",
        "gauge",
        "1 when the source has had no successful backup within its schedule plus grace.",
    );
    for s in st.sources.iter().filter(|s| s.stale_after_secs.is_some()) {
        o.sample(
            "vaultctl_source_stale",
            &[("source", &s.name)],
            if s.stale { 1.0 } else { 0.0 },
        );
    }
    o.family(
        "vaultctl_source_next_run_timestamp_seconds",
        "gauge",
        "Unix time of the next scheduled backup of the source (UTC schedule).",
    );
    for s in &st.sources {
        if let Some(t) = s.next_run.as_deref().and_then(unix) {
            o.sample(
                "vaultctl_source_next_run_timestamp_seconds",
                &[("source", &s.name)],
                t,
            );
        }
    }
    o.family(
        "vaultctl_backups_total",
        "counter",
        "Backups in the catalog by source and status.",
    );
    for (src, status, n) in catalog.count_by_source_status()? {
        o.sample(
            "vaultctl_backups_total",
            &[("source", &src), ("status", &status)],
            n as f64,
        );
    }
    o.family(
        "vaultctl_target_stored_bytes",
        "gauge",
        "Bytes of blobs in packs on the target, as indexed by the catalog.",
    );
    for t in &st.targets {
        o.sample(
            "vaultctl_target_stored_bytes",
            &[("target", &t.name)],
            t.stored_bytes as f64,
        );
    }
    o.family(
        "vaultctl_target_backups",
        "gauge",
        "Completed backups the target holds, as recorded in the catalog.",
    );
    for t in &st.targets {
        o.sample(
            "vaultctl_target_backups",
            &[("target", &t.name)],
            t.backups as f64,
        );
    }
    o.family(
        "vaultctl_alerts_open",
        "gauge",
        "Active (open or acknowledged) alerts by severity.",
    );
    for sev in ["critical", "warning", "info"] {
        let n = st
            .open_alerts
            .iter()
            .filter(|a| a.severity.as_str() == sev)
            .count();
        o.sample("vaultctl_alerts_open", &[("severity", sev)], n as f64);
    }
    o.family(
        "vaultctl_dedup_ratio",
        "gauge",
        "Logical bytes of completed backups divided by the bytes they stored.",
    );
    o.sample("vaultctl_dedup_ratio", &[], st.dedup_ratio.unwrap_or(1.0));
    if let Some(d) = &st.dr {
        o.family(
            "vaultctl_dr_last_drill_success",
            "gauge",
            "1 when the last DR drill (test restore) succeeded, 0 when it failed.",
        );
        o.sample(
            "vaultctl_dr_last_drill_success",
            &[("source", &d.last_drill_source)],
            if d.last_drill_outcome == "succeeded" {
                1.0
            } else {
                0.0
            },
        );
        if let Some(ms) = d.recent_rto_ms.first() {
            o.family(
                "vaultctl_dr_last_drill_rto_seconds",
                "gauge",
                "Recovery time the last successful DR drill achieved (start to verified database).",
            );
            o.sample("vaultctl_dr_last_drill_rto_seconds", &[], *ms as f64 / 1e3);
        }
    }
    o.family(
        "vaultctl_verify_last_success_timestamp_seconds",
        "gauge",
        "Unix time the last verify of the target that found no problem finished.",
    );
    for v in &st.verify {
        if let Some(t) = v.last_success.as_deref().and_then(unix) {
            o.sample(
                "vaultctl_verify_last_success_timestamp_seconds",
                &[("target", &v.target)],
                t,
            );
        }
    }
    o.family(
        "vaultctl_verify_stale",
        "gauge",
        "1 when the target has had no successful verify within [verify] max_age.",
    );
    for v in st.verify.iter().filter(|v| v.max_age_secs.is_some()) {
        o.sample(
            "vaultctl_verify_stale",
            &[("target", &v.target)],
            if v.stale { 1.0 } else { 0.0 },
        );
    }
    o.family(
        "vaultctl_verify_coverage_ratio",
        "gauge",
        "Share of the target's packs read intact within the [verify] window (0-1).",
    );
    for v in &st.verify {
        if let Some(c) = v.coverage {
            o.sample(
                "vaultctl_verify_coverage_ratio",
                &[("target", &v.target)],
                c,
            );
        }
    }
    o.family(
        "vaultctl_drill_last_success_timestamp_seconds",
        "gauge",
        "Unix time the last successful DR drill (test restore) of the source finished.",
    );
    for d in &st.drills {
        if let Some(t) = d.last_success.as_deref().and_then(unix) {
            o.sample(
                "vaultctl_drill_last_success_timestamp_seconds",
                &[("source", &d.source)],
                t,
            );
        }
    }
    o.family(
        "vaultctl_drill_rto_seconds",
        "gauge",
        "Recovery time the last successful DR drill of the source achieved.",
    );
    for d in &st.drills {
        if let Some(ms) = d.last_rto_ms {
            o.sample(
                "vaultctl_drill_rto_seconds",
                &[("source", &d.source)],
                ms as f64 / 1e3,
            );
        }
    }
    o.family(
        "vaultctl_drill_stale",
        "gauge",
        "1 when the source has had no successful DR drill within its [source.drill] max_age.",
    );
    for d in st.drills.iter().filter(|d| d.max_age_secs.is_some()) {
        o.sample(
            "vaultctl_drill_stale",
            &[("source", &d.source)],
            if d.stale { 1.0 } else { 0.0 },
        );
    }
    o.family(
        "vaultctl_metrics_generated_timestamp_seconds",
        "gauge",
        "Unix time this file was written.",
    );
    o.sample(
        "vaultctl_metrics_generated_timestamp_seconds",
        &[],
        now.unix_timestamp() as f64,
    );
    Ok(o.text)
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
