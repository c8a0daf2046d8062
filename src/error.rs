//! Errors that carry an exit code and a remedy.
//!
//! Library code returns `anyhow::Result`; where the cause decides what the
//! operator must do (a missing repository, a key that cannot decrypt, an
//! outage worth retrying), the error chain contains a [`Failure`] with its
//! [`ExitKind`]. The CLI finds the outermost one and exits with its code, so
//! scripts can rely on the codes documented in the README and man page.

use std::fmt;

/// What kind of failure this is, which decides the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Generic failure (exit 1).
    Failure,
    /// Bad usage or configuration (exit 2).
    Usage,
    /// The repository does not exist on the target (exit 10).
    RepoMissing,
    /// The repository is locked by another process (exit 11).
    Locked,
    /// The key material cannot decrypt the data, or an identity is needed (exit 12).
    Key,
    /// A temporary failure (storage outage, timeout) worth retrying (exit 75).
    Temporary,
}

impl ExitKind {
    pub fn code(self) -> i32 {
        match self {
            ExitKind::Failure => 1,
            ExitKind::Usage => 2,
            ExitKind::RepoMissing => 10,
            ExitKind::Locked => 11,
            ExitKind::Key => 12,
            ExitKind::Temporary => 75,
        }
    }
}

/// A failure with its kind, what happened, and what to do about it.
#[derive(Debug)]
pub struct Failure {
    pub kind: ExitKind,
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
    pub fn new(kind: ExitKind, what: impl Into<String>) -> Self {
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
    kind: ExitKind,
    what: impl Into<String>,
    remedy: impl Into<String>,
) -> anyhow::Result<T> {
    Err(Failure::new(kind, what).with_remedy(remedy).into())
}

/// The exit kind of an error: the first [`Failure`] found in its chain.
pub fn exit_kind(err: &anyhow::Error) -> ExitKind {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map(|f| f.kind)
        .unwrap_or(ExitKind::Failure)
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
