//! vaultctl: encrypted, deduplicated backups of PostgreSQL, files and command
//! output into repositories on local disk and S3-compatible storage.
//!
//! The core (`repo`, `storage`, `catalog`, `engine`) knows nothing of
//! terminals; `cli` turns it into the `vaultctl` command.

pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
pub mod humanize;
pub mod jobs;
pub mod memtrace;
pub mod ops;
pub mod progress;
pub mod redact;
pub mod repo;
pub mod schedule;
pub mod settings;
pub mod severity;
pub mod storage;
