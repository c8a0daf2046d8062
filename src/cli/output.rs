//! Output for people and scripts: stdout writes that survive a closed pipe,
//! JSON, tables, sizes, and progress (a bar on a terminal, a log line every
//! ten seconds otherwise, nothing with `--no-progress`).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{status, Items, Progress};

/// Writes a line to stdout; a broken pipe surfaces as an error that main
/// turns into exit 0.
pub fn line(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}")?;
    out.flush()?;
    Ok(())
}

/// Writes `v` as pretty JSON and a newline, streamed: `show --json` of a
/// 300,000-tenant backup is 107 MB, never one string.
pub fn json<T: serde::Serialize + ?Sized>(v: &T) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    // A write error stays an io::Error (`error::is_broken_pipe`).
    serde_json::to_writer_pretty(&mut out, v).map_err(|e| match e.is_io() {
        true => anyhow::Error::from(std::io::Error::from(e)),
        false => e.into(),
    })?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Colours only on a terminal, and never with NO_COLOR or TERM=dumb.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
        && std::io::stderr().is_terminal()
}

pub fn table() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    if !std::io::stdout().is_terminal() || std::env::var_os("NO_COLOR").is_some() {
        t.force_no_tty();
    }
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t
}

pub use crate::humanize::{bytes, duration_ms, sparkline};

/// Prints one table: a header and rows of cells.
pub fn print_table<R: IntoIterator<Item = String>>(
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> Result<()> {
    let mut t = table();
    t.set_header(header.to_vec());
    for r in rows {
        t.add_row(r.into_iter().collect::<Vec<_>>());
    }
    line(&t.to_string())
}

/// A table built column by column, each header written beside the cell it
/// heads (two parallel lists of headers and cells drift apart).
pub struct Columns<'a, T> {
    header: Vec<&'a str>,
    cells: Vec<Cell<'a, T>>,
}

/// What a column shows for one row.
type Cell<'a, T> = Box<dyn Fn(&T) -> String + 'a>;

impl<T> Default for Columns<'_, T> {
    fn default() -> Self {
        Columns {
            header: Vec::new(),
            cells: Vec::new(),
        }
    }
}

impl<'a, T> Columns<'a, T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn col(mut self, header: &'a str, cell: impl Fn(&T) -> String + 'a) -> Self {
        self.header.push(header);
        self.cells.push(Box::new(cell));
        self
    }

    /// Prints one table: the header, then a row per item.
    pub fn print<'r>(&self, rows: impl IntoIterator<Item = &'r T>) -> Result<()>
    where
        T: 'r,
    {
        print_table(
            &self.header,
            rows.into_iter()
                .map(|r| self.cells.iter().map(|c| c(r)).collect::<Vec<_>>()),
        )
    }
}

/// A catalog time as `YYYY-MM-DD HH:MM:SS`, for narrow table columns.
pub fn short_time(at: &str) -> String {
    at.replace('T', " ").chars().take(19).collect()
}

/// A message cut to its first 80 characters, for a table cell.
pub fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// A table cell: the value, or `-` when there is none.
pub fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

enum Mode {
    Silent,
    Bar,
    Log,
}

struct LogState {
    phase: String,
    done: u64,
    total: Option<u64>,
    items: Option<Items>,
    started: Instant,
    last: Instant,
}

pub struct CliProgress {
    mode: Mode,
    bar: Mutex<Option<ProgressBar>>,
    /// The bar's phase name (its message, before the items).
    bar_phase: Mutex<String>,
    log: Mutex<Option<LogState>>,
    every: Duration,
}

const LOG_EVERY: Duration = Duration::from_secs(10);

/// How often a line is logged without a terminal: every ten seconds, or
/// `VAULTCTL_PROGRESS_EVERY_MS` (for tests, which restore small data fast).
fn log_every() -> Duration {
    std::env::var("VAULTCTL_PROGRESS_EVERY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(LOG_EVERY)
}

impl CliProgress {
    pub fn new(silent: bool) -> Self {
        let mode = if silent {
            Mode::Silent
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Log
        };
        CliProgress {
            mode,
            bar: Mutex::new(None),
            bar_phase: Mutex::new(String::new()),
            log: Mutex::new(None),
            every: log_every(),
        }
    }
}

impl Progress for CliProgress {
    fn start(&self, phase: &str, total: Option<u64>) {
        match self.mode {
            Mode::Silent => {}
            Mode::Bar => {
                let bar = match total {
                    Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()).with_style(
                        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
                            .unwrap()
                            .progress_chars("=> "),
                    ),
                    None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                        .with_style(ProgressStyle::with_template("{spinner} {msg} {bytes} {binary_bytes_per_sec} {elapsed}").unwrap()),
                };
                bar.set_message(phase.to_string());
                *self.bar_phase.lock().unwrap() = phase.to_string();
                bar.enable_steady_tick(Duration::from_millis(200));
                *self.bar.lock().unwrap() = Some(bar);
            }
            Mode::Log => {
                let now = Instant::now();
                *self.log.lock().unwrap() = Some(LogState {
                    phase: phase.to_string(),
                    done: 0,
                    total,
                    items: None,
                    started: now,
                    last: now,
                });
            }
        }
    }

    fn advance(&self, n: u64) {
        match self.mode {
            Mode::Silent => {}
            Mode::Bar => {
                if let Some(b) = &*self.bar.lock().unwrap() {
                    b.inc(n);
                }
            }
            Mode::Log => {
                if let Some(s) = &mut *self.log.lock().unwrap() {
                    s.done += n;
                    if s.last.elapsed() >= self.every {
                        s.last = Instant::now();
                        eprintln!(
                            "vaultctl: {}: {}",
                            s.phase,
                            status(s.done, s.total, s.items, s.started.elapsed())
                        );
                    }
                }
            }
        }
    }

    fn items(&self, what: &'static str, done: u64, total: Option<u64>) {
        let items = Items { what, done, total };
        match self.mode {
            Mode::Silent => {}
            Mode::Bar => {
                if let Some(b) = &*self.bar.lock().unwrap() {
                    let phase = self.bar_phase.lock().unwrap();
                    b.set_message(match total {
                        Some(t) => format!("{phase} {done}/{} {what}", t.max(done)),
                        None => format!("{phase} {done} {what}"),
                    });
                }
            }
            Mode::Log => {
                if let Some(s) = &mut *self.log.lock().unwrap() {
                    s.items = Some(items);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap().take() {
            b.finish_and_clear();
        }
        if let Some(s) = self.log.lock().unwrap().take() {
            // A phase long enough to have been reported: say that it ended.
            if s.started.elapsed() >= self.every {
                eprintln!(
                    "vaultctl: {}: done in {}",
                    s.phase,
                    duration_ms(s.started.elapsed().as_millis() as u64)
                );
            }
        }
    }
}

/// Parses `--since`/`--until` ([`crate::clock::parse_arg`]: an age such
/// as `7d` counts back from `now`) into the catalog's time format.
pub fn parse_time_arg(s: &str, now: time::OffsetDateTime) -> Result<String> {
    match crate::clock::parse_arg(s, now, crate::clock::Age::Ago) {
        Some(t) => Ok(crate::clock::format(t)),
        None => crate::error::fail(
            crate::error::ExitStatus::Usage,
            format!("\"{s}\" is not a time."),
            "Use RFC 3339 (2026-11-01T02:00:00Z), a date (2026-11-01) or an age (7d, 12h).",
        ),
    }
}

/// Whether to draw with plain ASCII (`NO_COLOR` set, or `TERM=dumb`).
pub fn plain_ascii() -> bool {
    std::env::var_os("NO_COLOR").is_some()
        || std::env::var("TERM").map(|t| t == "dumb").unwrap_or(false)
}

/// Confirmation on a terminal; without one, a refusal that names `--yes`.
pub struct TerminalConfirm;

impl crate::jobs::Confirm for TerminalConfirm {
    fn confirm(&self, what: &str) -> Result<()> {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return crate::jobs::NoOneToAsk.confirm(what);
        }
        let ok = dialoguer::Confirm::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(format!("About to {what}. Go on?"))
            .default(false)
            .interact_opt()
            .map_err(|e| anyhow::anyhow!("cannot ask on the terminal: {e}"))?;
        if ok != Some(true) {
            return crate::error::fail(
                crate::error::ExitStatus::Failure,
                "cancelled; nothing was written.",
                "Run it again and confirm, or pass --yes.",
            );
        }
        Ok(())
    }
}
