//! Sizes, durations and trends for people: tables, reports, log lines.

/// 1234567 → "1.2 MB" (decimal units, like the MB/s figures).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// 1234 → "1.2s", 75000 → "1m15s", 4000000 → "1h06m".
pub fn duration_ms(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// A one-line trend of `values` (scaled between their minimum and maximum):
/// Unicode blocks, or `_.-=#` in plain ASCII.
pub fn sparkline(values: &[u64], ascii: bool) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    const PLAIN: [char; 5] = ['_', '.', '-', '=', '#'];
    let levels: &[char] = if ascii { &PLAIN } else { &BLOCKS };
    let (Some(&min), Some(&max)) = (values.iter().min(), values.iter().max()) else {
        return String::new();
    };
    values
        .iter()
        .map(|&v| {
            let i = if max == min {
                levels.len() / 2
            } else {
                ((v - min) as f64 / (max - min) as f64 * (levels.len() - 1) as f64).round() as usize
            };
            levels[i]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_and_durations() {
        assert_eq!(super::bytes(999), "999 B");
        assert_eq!(super::bytes(1_234_567), "1.2 MB");
        assert_eq!(super::duration_ms(1234), "1.2s");
        assert_eq!(super::duration_ms(75_000), "1m15s");
        assert_eq!(super::duration_ms(4_000_000), "1h06m");
    }

    #[test]
    fn sparkline_scales_between_min_and_max() {
        use super::sparkline;
        assert_eq!(sparkline(&[], false), "");
        assert_eq!(sparkline(&[1, 8, 4], false), "▁█▄");
        assert_eq!(sparkline(&[0, 100, 50, 25], true), "_#-.");
        assert_eq!(sparkline(&[5, 5], true), "--");
        assert_eq!(sparkline(&[10, 20, 30], false).chars().count(), 3);
    }
}
