//! Physical base backups: `pg_basebackup` in tar format streamed into the
//! pipeline (no copy on disk), with a fast checkpoint and the WAL needed for
//! consistency fetched into the archive (`-X fetch`), so a base backup is
//! restorable on its own; WAL archiving (`vaultctl wal push`) adds the rest.
//!
//! Only the default tablespaces fit into one tar stream: a cluster with
//! other tablespaces is refused with a clear error, never backed up with
//! data silently missing.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use anyhow::Result;

use super::{query, ConnInfo};
use crate::config::PhysicalSpec;
use crate::engine::command::describe_status;
use crate::engine::command::StderrTail;
use crate::error::{ExitStatus, Failure};
use crate::repo::backup::{ArtifactStream, Source};

const STDERR_TAIL: usize = 16 * 1024;

/// What the manifest records about a base backup.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct BaseFacts {
    pub server_version: Option<String>,
    pub system_identifier: Option<String>,
    pub timeline: Option<u32>,
    pub start_lsn: Option<String>,
    pub stop_lsn: Option<String>,
    pub start_wal: Option<String>,
    pub stop_wal: Option<String>,
    /// The server's time when the backup ended: the earliest time a
    /// point-in-time restore from it can reach.
    pub consistent_at: Option<String>,
    pub pg_basebackup: String,
    pub url: String,
}

pub struct BaseBackup {
    spec: PhysicalSpec,
    started: bool,
    facts: Arc<Mutex<BaseFacts>>,
}

impl BaseBackup {
    pub fn new(spec: PhysicalSpec) -> Self {
        BaseBackup {
            spec,
            started: false,
            facts: Arc::new(Mutex::new(BaseFacts::default())),
        }
    }
}

/// Parses pg_basebackup's `--verbose` lines for the WAL start/end points.
fn parse_points(stderr: &str, facts: &mut BaseFacts) {
    for line in stderr.lines() {
        if let Some(rest) = line.split("write-ahead log start point: ").nth(1) {
            let mut w = rest.split_whitespace();
            facts.start_lsn = w.next().map(str::to_string);
            // "… on timeline N"
            if let Some(t) = rest.split("on timeline ").nth(1) {
                facts.timeline = t.trim().parse().ok();
            }
        }
        if let Some(rest) = line.split("write-ahead log end point: ").nth(1) {
            facts.stop_lsn = rest.split_whitespace().next().map(str::to_string);
        }
    }
}

impl Source for BaseBackup {
    fn kind(&self) -> &'static str {
        "postgres-physical"
    }

    fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        if self.started {
            return Ok(None);
        }
        self.started = true;
        let conn = ConnInfo::new(&self.spec.url, self.spec.password_file.as_deref())?;
        // Facts and the tablespace check over a normal connection; a role
        // limited to replication connections gets a warning, and
        // pg_basebackup itself still refuses extra tablespaces with -D -.
        let client = match conn.connect() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("cannot query the server before the base backup (versions and the tablespace check come from pg_basebackup alone): {}", crate::error::paragraph(&e));
                None
            }
        };
        if let Some(c) = &client {
            let r = query(
                c,
                "SELECT current_setting('server_version'),
                        (SELECT string_agg(spcname::text, ', ' ORDER BY spcname) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global'))",
                &[],
            )?;
            let extra: Option<String> = r[0].get(1);
            if let Some(list) = extra {
                return Err(Failure::new(
                    ExitStatus::Failure,
                    format!("the cluster at {} has tablespaces besides pg_default and pg_global ({list}); a vaultctl base backup is one tar stream and holds the default tablespaces only.", conn.display()),
                )
                .with_remedy("Move those tables and indexes to pg_default (ALTER TABLE … SET TABLESPACE pg_default), or back them up with another tool; vaultctl refuses rather than leave data out.")
                .into());
            }
            let mut f = self.facts.lock().unwrap();
            f.server_version = Some(r[0].get(0));
            // pg_control_system() is not granted to every role.
            if let Ok(r) = query(
                c,
                "SELECT system_identifier::text FROM pg_control_system()",
                &[],
            ) {
                f.system_identifier = r.first().map(|r| r.get(0));
            }
        }
        let program = self.spec.program("pg_basebackup");
        let version = super::program_version(&program)?;
        {
            let mut f = self.facts.lock().unwrap();
            f.pg_basebackup = version;
            f.url = conn.display();
        }
        let mut child = conn
            .command(&program)
            .args([
                "--pgdata=-",
                "--format=tar",
                "--wal-method=fetch",
                "--checkpoint=fast",
                "--verbose",
                "--no-password",
                "--label=vaultctl",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Failure::new(ExitStatus::Failure, format!("cannot start {}: {e}.", program.display()))
                    .with_remedy("Install the PostgreSQL server programs or set pg_bin_dir in the source's config.")
            })?;
        let stdout = child.stdout.take().expect("piped");
        crate::engine::command::widen_pipe(&stdout);
        let stderr = child.stderr.take().expect("piped");
        let tail = StderrTail::spawn(stderr, STDERR_TAIL);
        let facts = self.facts.clone();
        let finish = Box::new(move || -> Result<()> {
            let status = child.wait()?;
            let text = tail.finish();
            if !status.success() {
                let hint = if text.contains("single tablespace") || text.contains("tablespace") {
                    "The cluster has tablespaces besides the default ones, which one tar stream cannot hold; move them to pg_default."
                } else {
                    "Check that the role has REPLICATION, that pg_hba.conf allows a replication connection, and max_wal_senders. No backup was recorded."
                };
                return Err(Failure::new(
                    ExitStatus::Failure,
                    format!(
                        "pg_basebackup {}; its stderr ended with: {}",
                        describe_status(&status),
                        text.trim()
                    ),
                )
                .with_remedy(hint)
                .into());
            }
            let mut f = facts.lock().unwrap();
            parse_points(&text, &mut f);
            let tli = f.timeline.unwrap_or(1);
            let seg = crate::repo::wal::DEFAULT_SEGMENT_SIZE;
            f.start_wal = f
                .start_lsn
                .as_deref()
                .and_then(|l| crate::repo::wal::segment_of_lsn(tli, l, seg));
            f.stop_wal = f
                .stop_lsn
                .as_deref()
                .and_then(|l| crate::repo::wal::segment_of_lsn(tli, l, seg));
            if f.stop_lsn.is_none() {
                return Err(Failure::new(
                    ExitStatus::Failure,
                    "pg_basebackup succeeded but did not report its WAL end point.",
                )
                .with_remedy("Use pg_basebackup 10 or later.")
                .into());
            }
            Ok(())
        });
        Ok(Some(ArtifactStream {
            name: "base.tar".into(),
            format: "tar".into(),
            reader: Box::new(stdout),
            finish,
        }))
    }

    fn wal_start(&self) -> Option<crate::repo::wal::WalStart> {
        let f = self.facts.lock().unwrap();
        Some(crate::repo::wal::WalStart {
            timeline: f.timeline.unwrap_or(1),
            start_lsn: f.start_lsn.clone()?,
        })
    }

    fn metadata(&self) -> serde_json::Value {
        let mut f = self.facts.lock().unwrap().clone();
        // The server's clock decides recovery_target_time: ask it.
        let now = ConnInfo::new(&self.spec.url, self.spec.password_file.as_deref())
            .ok()
            .and_then(|c| c.connect().ok())
            .and_then(|c| {
                query(
                    &c,
                    "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                    &[],
                )
                .ok()
            })
            .and_then(|r| r.first().map(|r| r.get::<_, String>(0)));
        f.consistent_at = Some(now.unwrap_or_else(crate::clock::now_rfc3339));
        let mut v = serde_json::to_value(&f).unwrap_or_default();
        v["mode"] = "physical".into();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_points_from_verbose_output() {
        let mut f = BaseFacts::default();
        parse_points(
            "pg_basebackup: initiating base backup, waiting for checkpoint to complete\n\
             pg_basebackup: checkpoint completed\n\
             pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1\n\
             pg_basebackup: write-ahead log end point: 0/2000100\n\
             pg_basebackup: base backup completed\n",
            &mut f,
        );
        assert_eq!(f.start_lsn.as_deref(), Some("0/2000028"));
        assert_eq!(f.stop_lsn.as_deref(), Some("0/2000100"));
        assert_eq!(f.timeline, Some(1));
    }
}
