//! Errors that carry an exit code and a remedy.
//!
//! Library code returns `anyhow::Result`; where the cause decides what the
//! operator must do (a missing repository, a key that cannot decrypt, an
//! outage worth retrying), the error chain contains a [`Failure`] with its
//! [`ExitStatus`]. The CLI finds the outermost one and exits with its code, so
//! scripts can rely on the codes documented in the README and man page.

use std::fmt;

/// The process exit status: the one list of every code `vaultctl` exits
/// with (README, man page and `--help` print it from [`ExitStatus::ALL`]).
/// Variants are in code order, so `max` keeps the more serious outcome.
///
/// `status --check` speaks the Nagios plugin convention instead; its codes
/// come from [`CheckStatus`], below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// Success (exit 0).
    Success,
    /// Generic failure (exit 1).
    Failure,
    /// Bad usage or configuration (exit 2).
    Usage,
    /// Completed, but with warnings, e.g. a target missed a backup the
    /// others hold (exit 3).
    Warnings,
    /// The repository does not exist on the target (exit 10).
    RepoMissing,
    /// The repository is locked by another process (exit 11).
    Locked,
    /// The key material cannot decrypt the data, or an identity is needed (exit 12).
    Key,
    /// A temporary failure (storage outage, timeout) worth retrying (exit 75).
    Temporary,
}

impl ExitStatus {
    /// Every documented status, in code order.
    pub const ALL: [ExitStatus; 8] = [
        ExitStatus::Success,
        ExitStatus::Failure,
        ExitStatus::Usage,
        ExitStatus::Warnings,
        ExitStatus::RepoMissing,
        ExitStatus::Locked,
        ExitStatus::Key,
        ExitStatus::Temporary,
    ];

    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Warnings => 3,
            ExitStatus::RepoMissing => 10,
            ExitStatus::Locked => 11,
            ExitStatus::Key => 12,
            ExitStatus::Temporary => 75,
        }
    }

    /// What the code means, as the README, man page and `--help` say it.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::Failure => "failure",
            ExitStatus::Usage => "usage or configuration error",
            ExitStatus::Warnings => {
                "completed with warnings (e.g. a target missed the backup; the others hold it)"
            }
            ExitStatus::RepoMissing => "repository missing (run `vaultctl init`)",
            ExitStatus::Locked => "repository locked",
            ExitStatus::Key => "the key cannot decrypt, or an identity is needed (write-only host)",
            ExitStatus::Temporary => {
                "temporary failure worth retrying (storage unreachable after retries)"
            }
        }
    }
}

/// `status --check`'s exit status: the Nagios plugin convention (0 OK,
/// 1 WARNING, 2 CRITICAL, 3 UNKNOWN), which monitoring systems expect from
/// a check command. Only `status --check` exits with these; there 2 means
/// "critical", not "usage error", and 3 means "unknown", not "warnings".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckStatus {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl CheckStatus {
    pub fn code(self) -> i32 {
        match self {
            CheckStatus::Ok => 0,
            CheckStatus::Warning => 1,
            CheckStatus::Critical => 2,
            CheckStatus::Unknown => 3,
        }
    }
}

/// A failure with its kind, what happened, and what to do about it.
#[derive(Debug)]
pub struct Failure {
    pub kind: ExitStatus,
    pub what: String,
    pub remedy: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some(r) = &self.remedy {
            let sep = if self.what.ends_with(['.', '!', '?']) {
                " "
            } else {
                ". "
            };
            write!(f, "{sep}{r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

impl Failure {
    pub fn new(kind: ExitStatus, what: impl Into<String>) -> Self {
        Failure {
            kind,
            what: what.into(),
            remedy: None,
        }
    }

    pub fn with_remedy(mut self, remedy: impl Into<String>) -> Self {
        self.remedy = Some(remedy.into());
        self
    }
}

/// Shorthand for `Err(Failure)` converted into `anyhow::Error`.
pub fn fail<T>(
    kind: ExitStatus,
    what: impl Into<String>,
    remedy: impl Into<String>,
) -> anyhow::Result<T> {
    Err(Failure::new(kind, what).with_remedy(remedy).into())
}

/// The exit status of an error: the first [`Failure`] found in its chain.
pub fn exit_status(err: &anyhow::Error) -> ExitStatus {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map(|f| f.kind)
        .unwrap_or(ExitStatus::Failure)
}

/// A reader of our stdout went away (`vaultctl list | head`): not an error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .map(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            .unwrap_or(false)
    })
}

/// One paragraph: the context chain joined, outermost first, without
/// repeats, with URLs redacted ([`crate::redact::text`]): this is the text
/// that reaches the terminal, the log, alerts and notifications.
pub fn paragraph(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(if out.ends_with('.') { " " } else { ": " });
        }
        out.push_str(p.trim_end());
    }
    crate::redact::text(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_exit_codes() {
        let codes: Vec<i32> = ExitStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 10, 11, 12, 75]);
        // Code order is variant order: `max` keeps the more serious outcome.
        let mut sorted = ExitStatus::ALL;
        sorted.sort();
        assert_eq!(sorted, ExitStatus::ALL);
        assert_eq!(
            ExitStatus::Success.max(ExitStatus::Warnings),
            ExitStatus::Warnings
        );
    }

    #[test]
    fn check_status_is_nagios() {
        let codes: Vec<i32> = [
            CheckStatus::Ok,
            CheckStatus::Warning,
            CheckStatus::Critical,
            CheckStatus::Unknown,
        ]
        .iter()
        .map(|s| s.code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3]);
    }
}
