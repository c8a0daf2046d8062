//! The progress interface the core reports through; the CLI implements it
//! (a bar on a terminal, periodic log lines in cron, nothing when asked).

pub trait Progress: Send + Sync {
    /// A new phase begins; `total` in bytes when known.
    fn start(&self, phase: &str, total: Option<u64>);
    /// `bytes` more were processed in the current phase.
    fn advance(&self, bytes: u64);
    /// The phase ended.
    fn finish(&self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
