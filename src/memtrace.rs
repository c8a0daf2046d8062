//! Peak-memory marks for profiling at scale: with `VAULTCTL_DEBUG_MEMORY`
//! set, [`mark`] prints the process's peak and current resident set size
//! (`VmHWM`, `VmRSS` from `/proc/self/status`) to stderr at a phase
//! boundary, with the seconds since the first mark. The CLI reads the
//! variable at startup ([`crate::settings::Environment`]); otherwise a mark
//! costs one flag test.

use std::sync::OnceLock;
use std::time::Instant;

/// Prints `memory: <phase>: peak … MB, now … MB, … s` when
/// `VAULTCTL_DEBUG_MEMORY` is set (Linux; elsewhere nothing).
pub fn mark(phase: &str) {
    if !crate::settings::environment().debug_memory {
        return;
    }
    static START: OnceLock<Instant> = OnceLock::new();
    let secs = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return;
    };
    let kb = |field: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    if let (Some(hwm), Some(rss)) = (kb("VmHWM:"), kb("VmRSS:")) {
        eprintln!(
            "memory: {phase}: peak {:.1} MB, now {:.1} MB, {secs:.1} s",
            hwm as f64 / 1024.0,
            rss as f64 / 1024.0
        );
    }
}
