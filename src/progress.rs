//! The progress interface the core reports through; the CLI implements it
//! (a bar on a terminal, periodic log lines in cron, nothing when asked).

use std::time::Duration;

pub trait Progress: Send + Sync {
    /// A new phase begins; `total` in bytes when known.
    fn start(&self, phase: &str, total: Option<u64>);
    /// `bytes` more were processed in the current phase.
    fn advance(&self, bytes: u64);
    /// The phase ended.
    fn finish(&self);
    /// Items of the current phase finished so far (`what`: "tables",
    /// "statements"), of `total` when known. Shown with the bytes.
    fn items(&self, _what: &'static str, _done: u64, _total: Option<u64>) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Items of a phase: what they are, how many are done, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Items {
    pub what: &'static str,
    pub done: u64,
    pub total: Option<u64>,
}

/// The state of a phase, as one line: items done/total, bytes (of the
/// total), MB/s and the estimated time left (from the bytes when their
/// total is known, else from the items).
pub fn status(bytes: u64, total: Option<u64>, items: Option<Items>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let mut parts = Vec::new();
    if let Some(i) = items {
        parts.push(match i.total {
            Some(t) => format!("{}/{} {}", i.done, t.max(i.done), i.what),
            None => format!("{} {}", i.done, i.what),
        });
    }
    if bytes > 0 {
        parts.push(match total {
            Some(t) => format!(
                "{} of {}",
                crate::humanize::bytes(bytes),
                crate::humanize::bytes(t.max(bytes))
            ),
            None => crate::humanize::bytes(bytes),
        });
        parts.push(format!("{:.1} MB/s", bytes as f64 / 1e6 / secs));
    }
    // The share of the work done, to extrapolate the time left from.
    let share = match (total, items) {
        (Some(t), _) if t > 0 && bytes > 0 => Some(bytes as f64 / t as f64),
        (
            _,
            Some(Items {
                done,
                total: Some(t),
                ..
            }),
        ) if t > 0 && done > 0 => Some(done as f64 / t as f64),
        _ => None,
    };
    match share {
        Some(s) => {
            let left = (secs / s.min(1.0) - secs).max(0.0);
            parts.push(format!(
                "ETA {}",
                crate::humanize::duration_ms((left * 1000.0).round() as u64)
            ));
        }
        None => parts.push(format!("running for {:.0} s", secs)),
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_show_items_bytes_rate_and_eta() {
        let tables = |done, total| {
            Some(Items {
                what: "tables",
                done,
                total,
            })
        };
        // A quarter of 400 MB in 10 s: 30 s left.
        assert_eq!(
            status(
                100_000_000,
                Some(400_000_000),
                tables(3, Some(12)),
                Duration::from_secs(10)
            ),
            "3/12 tables, 100.0 MB of 400.0 MB, 10.0 MB/s, ETA 0m30s"
        );
        // No byte total: the time left from the tables.
        assert_eq!(
            status(
                50_000_000,
                None,
                tables(1, Some(4)),
                Duration::from_secs(20)
            ),
            "1/4 tables, 50.0 MB, 2.5 MB/s, ETA 1m00s"
        );
        // Nothing to extrapolate from.
        assert_eq!(
            status(0, None, tables(0, None), Duration::from_secs(12)),
            "0 tables, running for 12 s"
        );
        assert_eq!(
            status(0, None, None, Duration::from_secs(3)),
            "running for 3 s"
        );
        // More read than the estimate said: never a negative time left.
        assert_eq!(
            status(5_000, Some(4_000), None, Duration::from_secs(1)),
            "5.0 kB of 5.0 kB, 0.0 MB/s, ETA 0.0s"
        );
    }
}
