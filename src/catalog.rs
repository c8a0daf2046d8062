//! The local SQLite catalog: backups, per-target presence, verify runs and
//! the dedup index cache.
//!
//! The catalog is a cache of the repository plus the history only this host
//! knows (failed runs, verify runs). It can be rebuilt from any target with
//! `vaultctl catalog rebuild`. WAL mode and a busy timeout let two cron jobs
//! run at once; schema changes are numbered migrations keyed on
//! `PRAGMA user_version`.

pub mod alerts;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::types::FromSql;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::clock::Timestamp;
use crate::error::{ExitStatus, Failure};
use crate::repo::backup::ContentsSink;
use crate::repo::index::{DedupLookup, IndexStore, IndexedPack};
use crate::repo::pack::{BlobId, BlobLocation, PackEntry};

const MIGRATIONS: &[&str] = &[
    // 1: the core schema.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE backups (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
        host TEXT NOT NULL,
        pid INTEGER,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        duration_ms INTEGER,
        bytes INTEGER NOT NULL DEFAULT 0,
        stored_bytes INTEGER NOT NULL DEFAULT 0,
        tags TEXT NOT NULL DEFAULT '[]',
        note TEXT,
        error TEXT,
        details TEXT
    );
    CREATE INDEX backups_source_started ON backups (source, started_at);
    CREATE TABLE backup_targets (
        backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
        target TEXT NOT NULL,
        PRIMARY KEY (backup_id, target)
    ) WITHOUT ROWID;
    CREATE TABLE blobs (
        id BLOB PRIMARY KEY,
        pack TEXT NOT NULL,
        offset INTEGER NOT NULL,
        stored_len INTEGER NOT NULL,
        raw_len INTEGER NOT NULL,
        flags INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX blobs_pack ON blobs (pack);
    CREATE TABLE pack_targets (
        pack TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (pack, target)
    ) WITHOUT ROWID;
    CREATE TABLE index_objects (
        name TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (name, target)
    ) WITHOUT ROWID;
    CREATE TABLE verify_runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        target TEXT NOT NULL,
        mode TEXT NOT NULL,
        ok INTEGER NOT NULL,
        backups_checked INTEGER NOT NULL,
        packs_checked INTEGER NOT NULL,
        problems TEXT NOT NULL
    );
    "#,
    // The restore log: every restore, who ran it, why, and how it ended.
    r#"
    CREATE TABLE restores (
        id INTEGER PRIMARY KEY,
        backup_id TEXT NOT NULL,
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        target TEXT NOT NULL,
        tenants TEXT NOT NULL DEFAULT '[]',
        reason TEXT,
        operator TEXT NOT NULL,
        host TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed')),
        rows INTEGER,
        details TEXT,
        error TEXT
    );
    CREATE INDEX restores_started ON restores (started_at);
    "#,
    // ops: alerts (raised by failures and conditions, de-duplicated per
    // kind/source/target while not resolved; '' = no source or target).
    r#"
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        source TEXT NOT NULL DEFAULT '',
        target TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        count INTEGER NOT NULL DEFAULT 1,
        status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
        acknowledged_by TEXT,
        acknowledged_at TEXT,
        ack_note TEXT,
        resolved_at TEXT,
        resolved_by TEXT,
        resolve_note TEXT
    );
    CREATE UNIQUE INDEX alerts_active_key ON alerts (kind, source, target) WHERE status <> 'resolved';
    CREATE INDEX alerts_status_seen ON alerts (status, last_seen);
    "#,
    // dr: DR runs and drills (achieved RTO, checks, steps), and backups
    // verified by a real restore (kept across catalog rebuilds: no FK).
    r#"
    CREATE TABLE dr_runs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('run', 'drill')),
        source TEXT NOT NULL,
        backup_id TEXT,
        target_db TEXT,
        storage_target TEXT,
        reason TEXT,
        operator TEXT NOT NULL,
        host TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed')),
        rto_ms INTEGER,
        restore_ms INTEGER,
        bytes INTEGER,
        tables INTEGER,
        rows INTEGER,
        restore_id INTEGER,
        checks TEXT,
        steps TEXT,
        error TEXT
    );
    CREATE INDEX dr_runs_started ON dr_runs (started_at);
    CREATE TABLE backup_verifications (
        backup_id TEXT NOT NULL,
        method TEXT NOT NULL,
        dr_run_id INTEGER,
        verified_at TEXT NOT NULL,
        PRIMARY KEY (backup_id, method)
    ) WITHOUT ROWID;
    "#,
    // verify: the packs each target held at its last verify and when each
    // was last read intact (a sampled verify reads the oldest first).
    r#"
    CREATE TABLE verify_packs (
        target TEXT NOT NULL,
        pack TEXT NOT NULL,
        size INTEGER NOT NULL,
        first_seen TEXT NOT NULL,
        read_at TEXT,
        failed_at TEXT,
        PRIMARY KEY (target, pack)
    ) WITHOUT ROWID;
    CREATE INDEX verify_runs_target ON verify_runs (target, finished_at);
    "#,
    // One-shot backups scheduled for a later time (`backup --at`), run by
    // `schedule run-due`.
    r#"
    CREATE TABLE one_shots (
        id INTEGER PRIMARY KEY,
        sources TEXT NOT NULL,
        tenants TEXT NOT NULL DEFAULT '[]',
        tags TEXT NOT NULL DEFAULT '[]',
        note TEXT,
        due_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'missed', 'cancelled')),
        started_at TEXT,
        finished_at TEXT,
        backups TEXT NOT NULL DEFAULT '[]',
        error TEXT
    );
    CREATE INDEX one_shots_status_due ON one_shots (status, due_at);
    "#,
    // Which packs each index object read from a target lists, so that when
    // a prune deletes index objects the catalog forgets just their packs
    // instead of re-reading every index of the target. Objects read before
    // this migration have `packs_known = 0`: their target is re-read in
    // full once.
    r#"
    ALTER TABLE index_objects ADD COLUMN packs_known INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE index_packs (
        target TEXT NOT NULL,
        name TEXT NOT NULL,
        pack TEXT NOT NULL,
        PRIMARY KEY (target, name, pack)
    ) WITHOUT ROWID;
    CREATE INDEX index_packs_pack ON index_packs (target, pack);
    "#,
    // A backup's tenants, artifacts and per-tenant row counts in rows of
    // their own, out of `details` (which keeps what is per backup): one
    // JSON text of 10,000 tenants was the peak of a backup's memory, and
    // `list --tenant` parsed every backup's. Existing details move here.
    r#"
    CREATE TABLE backup_artifacts (
        backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        format TEXT NOT NULL,
        size INTEGER NOT NULL,
        blake3 TEXT NOT NULL,
        blobs INTEGER NOT NULL,
        PRIMARY KEY (backup_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE backup_tenants (
        backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        PRIMARY KEY (backup_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX backup_tenants_tenant ON backup_tenants (tenant, backup_id);
    CREATE TABLE backup_tenant_rows (
        backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
        tenant_seq INTEGER NOT NULL,
        tbl TEXT NOT NULL,
        rows INTEGER NOT NULL,
        PRIMARY KEY (backup_id, tenant_seq, tbl)
    ) WITHOUT ROWID;
    CREATE TEMP TABLE old_details AS
        SELECT id, details FROM backups WHERE json_valid(details) AND json_type(details) = 'object';
    INSERT INTO backup_artifacts (backup_id, seq, name, format, size, blake3, blobs)
        SELECT b.id, a.key, coalesce(json_extract(a.value, '$.name'), ''), coalesce(json_extract(a.value, '$.format'), ''),
               coalesce(json_extract(a.value, '$.size'), 0), coalesce(json_extract(a.value, '$.blake3'), ''),
               coalesce(json_extract(a.value, '$.blobs'), 0)
        FROM temp.old_details b, json_each(b.details, '$.artifacts') a
        WHERE json_type(b.details, '$.artifacts') = 'array' AND a.type = 'object';
    INSERT INTO backup_tenants (backup_id, seq, tenant)
        SELECT b.id, t.key, t.value FROM temp.old_details b, json_each(b.details, '$.tenants') t
        WHERE json_type(b.details, '$.tenants') = 'array' AND t.type = 'text';
    INSERT OR REPLACE INTO backup_tenant_rows (backup_id, tenant_seq, tbl, rows)
        SELECT b.id, bt.seq, r.key, r.value
        FROM temp.old_details b, json_each(b.details, '$.engine.rows') tr, json_each(tr.value) r
        JOIN backup_tenants bt ON bt.backup_id = b.id AND bt.tenant = tr.key
        WHERE json_type(b.details, '$.engine.rows') = 'object' AND tr.type = 'object' AND r.type = 'integer';
    UPDATE backups SET details = json_remove(details, '$.artifacts', '$.tenants', '$.engine.rows')
        WHERE id IN (SELECT id FROM temp.old_details);
    DROP TABLE temp.old_details;
    "#,
    // Schema 9: the same contents in fewer bytes (issue 14: a year of
    // nightly backups of 10,000 tenants). A backup's rows carry a small
    // integer key (`backup_keys`, deleted with the backup, deleting them),
    // not its text id; names (tenants, tables, artifact names, formats) are
    // kept once in `names` and referred to by id; BLAKE3 digests are 32
    // bytes, not 64 hex digits.
    r#"
    CREATE TABLE backup_keys (
        num INTEGER PRIMARY KEY,
        backup_id TEXT NOT NULL UNIQUE REFERENCES backups (id) ON DELETE CASCADE
    );
    CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    DROP INDEX backup_tenants_tenant;
    ALTER TABLE backup_artifacts RENAME TO old_artifacts;
    ALTER TABLE backup_tenants RENAME TO old_tenants;
    ALTER TABLE backup_tenant_rows RENAME TO old_tenant_rows;
    CREATE TABLE backup_artifacts (
        backup INTEGER NOT NULL REFERENCES backup_keys (num) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        name INTEGER NOT NULL,
        format INTEGER NOT NULL,
        size INTEGER NOT NULL,
        blake3 BLOB NOT NULL,
        blobs INTEGER NOT NULL,
        PRIMARY KEY (backup, seq)
    ) WITHOUT ROWID;
    CREATE TABLE backup_tenants (
        backup INTEGER NOT NULL REFERENCES backup_keys (num) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        tenant INTEGER NOT NULL,
        PRIMARY KEY (backup, seq)
    ) WITHOUT ROWID;
    CREATE INDEX backup_tenants_tenant ON backup_tenants (tenant, backup);
    CREATE TABLE backup_tenant_rows (
        backup INTEGER NOT NULL REFERENCES backup_keys (num) ON DELETE CASCADE,
        tenant_seq INTEGER NOT NULL,
        tbl INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        PRIMARY KEY (backup, tenant_seq, tbl)
    ) WITHOUT ROWID;
    INSERT INTO backup_keys (backup_id)
        SELECT id FROM backups b
        WHERE EXISTS (SELECT 1 FROM old_artifacts WHERE backup_id = b.id)
           OR EXISTS (SELECT 1 FROM old_tenants WHERE backup_id = b.id)
           OR EXISTS (SELECT 1 FROM old_tenant_rows WHERE backup_id = b.id)
        ORDER BY started_at, id;
    INSERT INTO names (name)
        SELECT name FROM old_artifacts UNION SELECT format FROM old_artifacts
        UNION SELECT tenant FROM old_tenants UNION SELECT tbl FROM old_tenant_rows;
    INSERT INTO backup_artifacts (backup, seq, name, format, size, blake3, blobs)
        SELECT k.num, a.seq, n.id, f.id, a.size,
               CASE WHEN length(a.blake3) = 64 AND a.blake3 NOT GLOB '*[^0-9a-f]*' THEN unhex(a.blake3) ELSE a.blake3 END,
               a.blobs
        FROM old_artifacts a JOIN backup_keys k ON k.backup_id = a.backup_id
        JOIN names n ON n.name = a.name JOIN names f ON f.name = a.format;
    INSERT INTO backup_tenants (backup, seq, tenant)
        SELECT k.num, t.seq, n.id
        FROM old_tenants t JOIN backup_keys k ON k.backup_id = t.backup_id JOIN names n ON n.name = t.tenant;
    INSERT INTO backup_tenant_rows (backup, tenant_seq, tbl, rows)
        SELECT k.num, r.tenant_seq, n.id, r.rows
        FROM old_tenant_rows r JOIN backup_keys k ON k.backup_id = r.backup_id JOIN names n ON n.name = r.tbl;
    DROP TABLE old_tenant_rows;
    DROP TABLE old_tenants;
    DROP TABLE old_artifacts;
    "#,
    // Schema 10: a tenant's row counts in its own `backup_tenants` row
    // (issue 14: 30,000 tenants of four tables were 120,000 rows a backup,
    // whose pages overflowed SQLite's cache while the backup was recorded):
    // `rows` is the counts as decimal text, comma-separated, in the order of
    // the backup's tables (`backup_tables`), an empty field for a table the
    // manifest gave no count for; NULL when the backup has no counts.
    r#"
    CREATE TABLE backup_tables (
        backup INTEGER NOT NULL REFERENCES backup_keys (num) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        tbl INTEGER NOT NULL,
        PRIMARY KEY (backup, seq)
    ) WITHOUT ROWID;
    ALTER TABLE backup_tenants ADD COLUMN rows TEXT;
    INSERT INTO backup_tables (backup, seq, tbl)
        SELECT backup, row_number() OVER (PARTITION BY backup ORDER BY tbl) - 1, tbl
        FROM (SELECT DISTINCT backup, tbl FROM backup_tenant_rows);
    UPDATE backup_tenants SET rows = (
        SELECT group_concat(coalesce(r.rows, ''), ',' ORDER BY bt.seq)
        FROM backup_tables bt LEFT JOIN backup_tenant_rows r
          ON r.backup = bt.backup AND r.tbl = bt.tbl AND r.tenant_seq = backup_tenants.seq
        WHERE bt.backup = backup_tenants.backup)
    WHERE backup IN (SELECT backup FROM backup_tables);
    DROP TABLE backup_tenant_rows;
    "#,
];

pub struct Catalog {
    /// Crate-visible only for `ops::alerts`, whose SQL has not moved behind
    /// methods yet; everything else goes through the methods below.
    conn: Connection,
}

/// One backup as the catalog knows it (the `list --json` shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackupRow {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub status: String,
    pub host: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub duration_ms: Option<u64>,
    pub bytes: u64,
    pub stored_bytes: u64,
    pub throughput_mb_s: Option<f64>,
    pub tags: Vec<String>,
    pub note: Option<String>,
    pub error: Option<String>,
    pub targets: Vec<String>,
}

/// Filters for `list`.
#[derive(Debug, Default, Clone)]
pub struct BackupFilter {
    pub source: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub tag: Option<String>,
    /// Backups holding this tenant's rows: its tenant exports and the full
    /// dumps of a source with `[source.tenants]`.
    pub tenant: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// The catalog holds tenants, table names, row counts and command lines:
/// it is created 0600 before SQLite opens it (SQLite then gives its `-wal`
/// and `-shm` files the same mode), and an existing catalog or `-wal`/`-shm`
/// readable by others is made 0600.
fn private_files(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create the catalog {}", path.display()))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let p = std::path::PathBuf::from(name);
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            if let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                tracing::warn!(
                    "{} is readable by other users (mode {:o}) and cannot be made private: {e}",
                    p.display(),
                    mode & 0o7777
                );
            }
        }
    }
    Ok(())
}

impl Catalog {
    pub fn open(path: &Path) -> Result<Catalog> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .with_context(|| {
                        format!("cannot create the catalog directory {}", dir.display())
                    })?;
            }
        }
        private_files(path)?;
        // Two processes creating the catalog at once can get SQLITE_BUSY
        // from the switch to WAL mode without the busy handler being asked;
        // that is transient, so it is retried for a while.
        let mut attempt = 0;
        loop {
            match Self::open_once(path) {
                Err(e) if attempt < 100 && is_busy(&e) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                r => return r,
            }
        }
    }

    fn open_once(path: &Path) -> Result<Catalog> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the catalog {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut cat = Catalog { conn };
        cat.migrate()
            .with_context(|| format!("cannot update the catalog schema in {}", path.display()))?;
        Ok(cat)
    }

    fn migrate(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            anyhow::bail!(
                "the catalog has schema version {version}, newer than this vaultctl knows ({}); use a newer vaultctl",
                MIGRATIONS.len()
            );
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Binds the catalog to one repository; a catalog from another repository
    /// would poison dedup, so it is refused.
    pub fn bind_repo(&self, repo_id: &str, path_hint: &str) -> Result<()> {
        match self.meta("repo_id")? {
            None => self.set_meta("repo_id", repo_id),
            Some(existing) if existing == repo_id => Ok(()),
            Some(existing) => Err(crate::error::Failure::new(
                crate::error::ExitStatus::Usage,
                format!("the catalog {path_hint} belongs to repository {existing}, but the targets hold repository {repo_id}."),
            )
            .with_remedy("Use a separate catalog per repository (catalog = ... in the config), or move this one away and run `vaultctl catalog rebuild`.")
            .into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn insert_running(
        &self,
        id: &str,
        source: &str,
        kind: &str,
        host: &str,
        started_at: &str,
        tags: &[String],
        note: Option<&str>,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO backups (id, source, kind, status, host, pid, started_at, tags, note) VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?8)",
            params![id, source, kind, host, std::process::id(), started_at, serde_json::to_string(tags)?, note],
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn complete(
        &mut self,
        id: &str,
        finished_at: &str,
        duration_ms: u64,
        bytes: u64,
        stored_bytes: u64,
        details: &str,
        targets: &[String],
        contents: &mut dyn FnMut(&mut ContentsWriter<'_>) -> Result<()>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE backups SET status = 'completed', finished_at = ?2, duration_ms = ?3, bytes = ?4, stored_bytes = ?5, details = ?6, pid = NULL WHERE id = ?1",
            params![id, finished_at, duration_ms, bytes, stored_bytes, details],
        )?;
        for t in targets {
            tx.execute(
                "INSERT OR IGNORE INTO backup_targets (backup_id, target) VALUES (?1, ?2)",
                params![id, t],
            )?;
        }
        let mut writer = ContentsWriter::new(&tx, id)?;
        contents(&mut writer)?;
        writer.finish()?;
        tx.commit()?;
        Ok(())
    }

    pub fn fail(
        &self,
        id: &str,
        finished_at: &str,
        duration_ms: u64,
        bytes: u64,
        error: &str,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE backups SET status = 'failed', finished_at = ?2, duration_ms = ?3, bytes = ?4, error = ?5, pid = NULL WHERE id = ?1",
            params![
                id,
                finished_at,
                duration_ms,
                bytes,
                crate::redact::text(error)
            ],
        )?;
        Ok(())
    }

    /// Marks `running` rows of this host whose process is gone as failed:
    /// a `kill -9` must not leave a backup that looks in progress forever.
    pub fn reap_interrupted(&self, host: &str, now: &str) -> Result<usize> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, pid FROM backups WHERE status = 'running' AND host = ?1")?;
        let rows: Vec<(String, Option<i64>)> = stmt
            .query_map([host], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut n = 0;
        for (id, pid) in rows {
            let alive = pid
                .map(|p| p as u32 != std::process::id() && crate::repo::process_alive(p as i32))
                .unwrap_or(false);
            if !alive {
                self.conn.execute(
                    "UPDATE backups SET status = 'failed', finished_at = ?2, error = 'interrupted: the backup process ended without finishing (killed or crashed); no manifest was written', pid = NULL WHERE id = ?1 AND status = 'running'",
                    params![id, now],
                )?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<BackupRow> {
        let tags: String = r.get("tags")?;
        let targets: Option<String> = r.get("targets")?;
        let duration_ms: Option<u64> = r.get("duration_ms")?;
        let bytes: u64 = r.get("bytes")?;
        let status: String = r.get("status")?;
        Ok(BackupRow {
            id: r.get("id")?,
            source: r.get("source")?,
            kind: r.get("kind")?,
            host: r.get("host")?,
            started_at: r.get("started_at")?,
            finished_at: r.get("finished_at")?,
            duration_ms,
            bytes,
            stored_bytes: r.get("stored_bytes")?,
            throughput_mb_s: match (status.as_str(), duration_ms) {
                ("completed", Some(ms)) => Some(mb_per_s(bytes, ms)),
                _ => None,
            },
            status,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            note: r.get("note")?,
            error: r.get("error")?,
            targets: targets
                .map(|t| t.split(',').map(String::from).collect())
                .unwrap_or_default(),
        })
    }

    const SELECT: &'static str = "SELECT b.*, (SELECT group_concat(target, ',') FROM (SELECT target FROM backup_targets bt WHERE bt.backup_id = b.id ORDER BY target)) AS targets FROM backups b";

    /// The WHERE clause of a filter (on `backups b`) and its arguments.
    fn filter_sql(f: &BackupFilter) -> (String, Vec<String>) {
        let mut sql = String::from(" WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        let mut add = |cond: &str, v: &Option<String>| {
            if let Some(v) = v {
                args.push(v.clone());
                sql.push_str(&format!(" AND {cond} ?{}", args.len()));
            }
        };
        add("b.source =", &f.source);
        add("b.kind =", &f.kind);
        add("b.status =", &f.status);
        add("b.started_at >=", &f.since);
        add("b.started_at <", &f.until);
        if let Some(tag) = &f.tag {
            args.push(tag.clone());
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM json_each(b.tags) WHERE value = ?{})",
                args.len()
            ));
        }
        if let Some(tenant) = &f.tenant {
            args.push(tenant.clone());
            sql.push_str(&format!(
                " AND (b.id IN (SELECT k.backup_id FROM names n JOIN backup_tenants t ON t.tenant = n.id \
                 JOIN backup_keys k ON k.num = t.backup WHERE n.name = ?{}) \
                 OR (json_extract(b.details, '$.engine.mode') = 'full' AND json_extract(b.details, '$.engine.tenant_spec') IS NOT NULL))",
                args.len()
            ));
        }
        (sql, args)
    }

    pub fn list(&self, f: &BackupFilter) -> Result<Vec<BackupRow>> {
        let (cond, args) = Self::filter_sql(f);
        let mut sql = format!("{}{cond}", Self::SELECT);
        sql.push_str(" ORDER BY b.started_at DESC, b.id");
        if let Some(limit) = f.limit {
            sql.push_str(&format!(" LIMIT {limit} OFFSET {}", f.offset));
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), Self::row_from)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many backups match a filter (its limit and offset ignored).
    pub fn count(&self, f: &BackupFilter) -> Result<u64> {
        let (cond, args) = Self::filter_sql(f);
        Ok(self.conn.query_row(
            &format!("SELECT count(*) FROM backups b{cond}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )?)
    }

    pub fn get(&self, id: &str) -> Result<Option<BackupRow>> {
        let sql = format!("{} WHERE b.id = ?1", Self::SELECT);
        Ok(self.conn.query_row(&sql, [id], Self::row_from).optional()?)
    }

    /// Completed backups whose id starts with `prefix`.
    pub fn find_prefix(&self, prefix: &str) -> Result<Vec<BackupRow>> {
        let sql = format!(
            "{} WHERE b.id LIKE ?1 || '%' ESCAPE '\\' ORDER BY b.started_at DESC",
            Self::SELECT
        );
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([escaped], Self::row_from)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Every source with a backup row, sorted.
    pub fn backup_sources(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT source FROM backups ORDER BY source")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Every row of a query, as tuples (counts and sums by group for the
    /// views) or single values.
    fn rows<T: FromTuple>(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params, T::from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Backup rows by status (`completed`, `failed`, `running`…).
    pub fn count_by_status(&self) -> Result<Vec<(String, u64)>> {
        self.rows("SELECT status, count(*) FROM backups GROUP BY status", [])
    }

    /// Backup rows by source and status, sorted.
    pub fn count_by_source_status(&self) -> Result<Vec<(String, String, u64)>> {
        self.rows(
            "SELECT source, status, count(*) FROM backups GROUP BY source, status ORDER BY source, status",
            [],
        )
    }

    /// Completed and failed backups that ended (or started) at `since` or later.
    pub fn outcomes_since(&self, since: &str) -> Result<(u64, u64)> {
        Ok(self.conn.query_row(
            "SELECT coalesce(sum(status = 'completed'), 0), coalesce(sum(status = 'failed'), 0) FROM backups WHERE coalesce(finished_at, started_at) >= ?1",
            [since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Logical and stored bytes of all completed backups.
    pub fn completed_bytes(&self) -> Result<(u64, u64)> {
        Ok(self.conn.query_row(
            "SELECT coalesce(sum(bytes), 0), coalesce(sum(stored_bytes), 0) FROM backups WHERE status = 'completed'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// The sizes (plaintext bytes) of the last `n` completed backups of a
    /// source, oldest first (a trend line).
    pub fn recent_sizes(&self, source: &str, n: usize) -> Result<Vec<u64>> {
        let mut stmt = self.conn.prepare(
            "SELECT bytes FROM (SELECT bytes, started_at FROM backups WHERE source = ?1 AND status = 'completed' ORDER BY started_at DESC LIMIT ?2) ORDER BY started_at",
        )?;
        let rows = stmt
            .query_map(params![source, n as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// How many completed backups the catalog holds.
    pub fn completed_count(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM backups WHERE status = 'completed'",
            [],
            |r| r.get(0),
        )?)
    }

    /// New bytes stored by the completed backups of each source, sorted.
    pub fn stored_bytes_by_source(&self) -> Result<Vec<(String, u64)>> {
        self.rows(
            "SELECT source, coalesce(sum(stored_bytes), 0) FROM backups WHERE status = 'completed' GROUP BY source ORDER BY source",
            [],
        )
    }

    /// Per target: packs indexed there and the stored bytes of their blobs.
    pub fn pack_usage_by_target(&self) -> Result<Vec<(String, u64, u64)>> {
        self.rows(
            "SELECT pt.target, count(DISTINCT pt.pack), coalesce(sum(b.stored_len), 0) FROM pack_targets pt JOIN blobs b ON b.pack = pt.pack GROUP BY pt.target",
            [],
        )
    }

    /// Per target: how many completed backups it holds.
    pub fn completed_backups_by_target(&self) -> Result<Vec<(String, u64)>> {
        self.rows(
            "SELECT bt.target, count(*) FROM backup_targets bt JOIN backups b ON b.id = bt.backup_id WHERE b.status = 'completed' GROUP BY bt.target",
            [],
        )
    }

    /// Resolves `BACKUP` (id, unique id prefix, or `SOURCE:latest`) to its
    /// row; usage errors (exit 2) when nothing or several backups match.
    pub fn resolve_backup(&self, spec: &str) -> Result<BackupRow> {
        if let Some(source) = spec.strip_suffix(":latest") {
            return self.latest_completed(source)?.ok_or_else(|| {
                Failure::new(ExitStatus::Usage, format!("source '{source}' has no completed backup in the catalog."))
                    .with_remedy("Check `vaultctl list --source NAME`; on a new machine run `vaultctl catalog rebuild` first.")
                    .into()
            });
        }
        let matches = self.find_prefix(spec)?;
        match matches.len() {
            0 => Err(Failure::new(ExitStatus::Usage, format!("no backup matches '{spec}'."))
                .with_remedy("Use an id or unique id prefix from `vaultctl list`, or SOURCE:latest; on a new machine run `vaultctl catalog rebuild` first.")
                .into()),
            1 => Ok(matches.into_iter().next().unwrap()),
            n => Err(Failure::new(ExitStatus::Usage, format!("'{spec}' matches {n} backups."))
                .with_remedy("Give more characters of the id.")
                .into()),
        }
    }

    pub fn latest_completed(&self, source: &str) -> Result<Option<BackupRow>> {
        let sql = format!(
            "{} WHERE b.source = ?1 AND b.status = 'completed' ORDER BY b.started_at DESC LIMIT 1",
            Self::SELECT
        );
        Ok(self
            .conn
            .query_row(&sql, [source], Self::row_from)
            .optional()?)
    }

    pub fn details(&self, id: &str) -> Result<Option<serde_json::Value>> {
        let d: Option<Option<String>> = self
            .conn
            .query_row("SELECT details FROM backups WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(d.flatten().and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// A backup's tenants, in backup order.
    pub fn tenants_of(&self, id: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT n.name FROM backup_keys k JOIN backup_tenants t ON t.backup = k.num
             JOIN names n ON n.id = t.tenant WHERE k.backup_id = ?1 ORDER BY t.seq",
            [id],
        )
    }

    /// A backup's artifacts (without their blob ids), in backup order.
    pub fn artifacts_of(&self, id: &str) -> Result<Vec<ArtifactRow>> {
        self.rows(
            "SELECT n.name, f.name, a.size, a.blake3, a.blobs FROM backup_keys k JOIN backup_artifacts a ON a.backup = k.num
             JOIN names n ON n.id = a.name JOIN names f ON f.id = a.format WHERE k.backup_id = ?1 ORDER BY a.seq",
            [id],
        )
    }

    /// The distinct formats of a backup's artifacts (`stream`, `tar`).
    pub fn artifact_formats(&self, id: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT DISTINCT f.name FROM backup_keys k JOIN backup_artifacts a ON a.backup = k.num
             JOIN names f ON f.id = a.format WHERE k.backup_id = ?1 ORDER BY f.name",
            [id],
        )
    }

    /// A tenant backup's row counts: (tenant, `schema.table`, rows).
    pub fn tenant_rows_of(&self, id: &str) -> Result<Vec<(String, String, u64)>> {
        let mut out = Vec::new();
        self.for_each_tenant_row(id, |tenant, table, n| {
            out.push((tenant.to_string(), table.to_string(), n))
        })?;
        Ok(out)
    }

    /// [`tenant_rows_of`](Self::tenant_rows_of) one row at a time, read
    /// tenant by tenant: a backup of 300,000 tenants has 1.2 million, which
    /// as a list of owned strings took 135 MB.
    pub fn for_each_tenant_row(&self, id: &str, mut f: impl FnMut(&str, &str, u64)) -> Result<()> {
        let tables: Vec<String> = self.rows(
            "SELECT n.name FROM backup_keys k JOIN backup_tables t ON t.backup = k.num
             JOIN names n ON n.id = t.tbl WHERE k.backup_id = ?1 ORDER BY t.seq",
            [id],
        )?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT n.name, t.rows FROM backup_keys k JOIN backup_tenants t ON t.backup = k.num
             JOIN names n ON n.id = t.tenant WHERE k.backup_id = ?1 AND t.rows IS NOT NULL ORDER BY t.seq",
        )?;
        let mut rows = stmt.query([id])?;
        let mut counts: Vec<(&str, u64)> = Vec::with_capacity(tables.len());
        while let Some(r) = rows.next()? {
            let (tenant, listed): (String, String) = (r.get(0)?, r.get(1)?);
            counts.clear();
            counts.extend(
                tables
                    .iter()
                    .zip(listed.split(','))
                    .filter_map(|(table, n)| Some((table.as_str(), n.parse().ok()?))),
            );
            counts.sort();
            for (table, n) in &counts {
                f(&tenant, table, *n);
            }
        }
        Ok(())
    }

    /// Records a backup found in a repository (sync: no body, so no
    /// details; the catalog keeps any it had).
    pub fn upsert_completed(
        &mut self,
        h: &crate::repo::manifest::Header,
        targets: &[String],
    ) -> Result<()> {
        self.upsert_completed_many(&[Completed {
            header: h,
            body: None,
            targets,
        }])
    }

    /// [`upsert_completed`](Self::upsert_completed) for many backups in one
    /// transaction (catalog rebuild).
    pub fn upsert_completed_many(&mut self, backups: &[Completed<'_>]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut backup = tx.prepare_cached(
                "INSERT INTO backups (id, source, kind, status, host, started_at, finished_at, duration_ms, bytes, stored_bytes, tags, note, details)
                 VALUES (?1, ?2, ?3, 'completed', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (id) DO UPDATE SET status = 'completed', finished_at = excluded.finished_at, duration_ms = excluded.duration_ms,
                   bytes = excluded.bytes, stored_bytes = excluded.stored_bytes, tags = excluded.tags,
                   note = coalesce(excluded.note, backups.note), details = coalesce(excluded.details, backups.details), error = NULL, pid = NULL",
            )?;
            let mut target = tx.prepare_cached(
                "INSERT OR IGNORE INTO backup_targets (backup_id, target) VALUES (?1, ?2)",
            )?;
            for b in backups {
                let h = b.header;
                backup.execute(params![
                    h.id,
                    h.source,
                    h.kind,
                    h.host,
                    h.started_at,
                    h.finished_at,
                    h.duration_ms,
                    h.bytes,
                    h.stored_bytes,
                    serde_json::to_string(&h.tags)?,
                    b.body.and_then(|body| body.note.as_deref()),
                    b.body
                        .map(|body| crate::repo::backup::catalog_details(&body.engine).to_string())
                ])?;
                for t in b.targets {
                    target.execute(params![h.id, t])?;
                }
                if let Some(body) = b.body {
                    ContentsWriter::new(&tx, &h.id)?.body(body)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records an index object: blob locations and which targets hold the packs.
    pub fn add_index(
        &mut self,
        index_name: &str,
        packs: &[IndexedPack],
        targets: &[String],
    ) -> Result<()> {
        self.add_indexes(&[(index_name, packs)], targets)
    }

    /// Records several index objects in one transaction, their blobs in
    /// ascending id order (B-tree inserts that touch each page once per
    /// batch instead of at random: a catalog rebuild of millions of blobs
    /// is bound by this).
    pub fn add_indexes(
        &mut self,
        objects: &[(&str, &[IndexedPack])],
        targets: &[String],
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut pt = tx.prepare_cached(
                "INSERT OR IGNORE INTO pack_targets (pack, target) VALUES (?1, ?2)",
            )?;
            let mut io = tx.prepare_cached(INDEX_OBJECT_INSERT)?;
            let mut ip = tx.prepare_cached(INDEX_PACK_INSERT)?;
            for (name, packs) in objects {
                for (p, t) in packs
                    .iter()
                    .flat_map(|p| targets.iter().map(move |t| (p, t)))
                {
                    ip.execute(params![t, name, p.name])?;
                }
            }
            let packs = objects.iter().flat_map(|(_, packs)| packs.iter());
            for p in packs.clone() {
                for t in targets {
                    pt.execute(params![p.name, t])?;
                }
            }
            // Stable: of two entries of one id, the one read first goes first.
            let mut entries: Vec<(&str, &PackEntry)> = packs
                .flat_map(|p| p.entries.iter().map(move |e| (p.name.as_str(), e)))
                .collect();
            entries.sort_by_key(|(_, e)| e.id);
            let mut blobs = BlobUpserts::new(&tx);
            for (pack, e) in entries {
                blobs.push(pack, e.clone())?;
            }
            blobs.finish()?;
            for (name, _) in objects {
                for t in targets {
                    io.execute(params![name, t])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the index objects `objects` read from `target` (each with
    /// the slots of the packs it lists): `packs` by slot, and `next` yields
    /// their entries `(pack slot, entry)` in ascending blob id (of one id,
    /// the pack read first first). One transaction: either every object is
    /// recorded or none.
    pub fn add_sorted_index(
        &mut self,
        objects: &[(String, Vec<u32>)],
        packs: &[String],
        target: &str,
        mut next: impl FnMut() -> Result<Option<(u32, PackEntry)>>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        // Into an empty dedup index (a catalog rebuild, a new machine's
        // first read of a target) the blobs' pack index is built once, at
        // the end: kept up to date row by row, its inserts land at random
        // (packs do not come in blob id order) and cost more than the
        // blobs' own (4 M sorted blobs, SQLite alone: 82 s with it, 24 s
        // without it and 8 s to build it after). In the transaction, so a
        // failure keeps it.
        let bulk: bool =
            tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM blobs)", [], |r| r.get(0))?;
        if bulk {
            tx.execute_batch("DROP INDEX IF EXISTS blobs_pack")?;
        }
        {
            let mut pt = tx.prepare_cached(
                "INSERT OR IGNORE INTO pack_targets (pack, target) VALUES (?1, ?2)",
            )?;
            for p in packs {
                pt.execute(params![p, target])?;
            }
            let mut ip = tx.prepare_cached(INDEX_PACK_INSERT)?;
            for (name, slots) in objects {
                for slot in slots {
                    let pack = packs
                        .get(*slot as usize)
                        .context("index object of an unknown pack")?;
                    ip.execute(params![target, name, pack])?;
                }
            }
            let mut blobs = BlobUpserts::new(&tx);
            while let Some((slot, e)) = next()? {
                let pack = packs
                    .get(slot as usize)
                    .context("index entry of an unknown pack")?;
                blobs.push(pack, e)?;
            }
            blobs.finish()?;
            let mut io = tx.prepare_cached(INDEX_OBJECT_INSERT)?;
            for (name, _) in objects {
                io.execute(params![name, target])?;
            }
        }
        if bulk {
            tx.execute_batch(BLOBS_PACK_INDEX)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The index objects the catalog has read from `target`.
    pub fn index_objects_of(&self, target: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM index_objects WHERE target = ?1")?;
        let rows = stmt
            .query_map([target], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    }

    /// Forgets everything the dedup cache learned from `target`'s index
    /// objects: a prune there rewrote indexes and deleted packs, so the
    /// cache is re-read from the indexes that remain. Blob locations whose
    /// pack is no longer known on any target are dropped, so no backup
    /// dedups against a deleted pack.
    pub fn drop_target_dedup(&mut self, target: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM pack_targets WHERE target = ?1", [target])?;
        tx.execute("DELETE FROM index_objects WHERE target = ?1", [target])?;
        tx.execute("DELETE FROM index_packs WHERE target = ?1", [target])?;
        tx.execute("DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM pack_targets pt WHERE pt.pack = blobs.pack)", [])?;
        tx.commit()?;
        Ok(())
    }

    /// Whether the catalog recorded which packs each of `target`'s index
    /// objects `names` lists (objects read before it did are re-read with
    /// their whole target, [`Catalog::drop_target_dedup`]).
    pub fn knows_index_packs(&self, target: &str, names: &[String]) -> Result<bool> {
        let mut known = self.conn.prepare_cached(
            "SELECT packs_known FROM index_objects WHERE target = ?1 AND name = ?2",
        )?;
        for name in names {
            let k: Option<bool> = known
                .query_row(params![target, name], |r| r.get(0))
                .optional()?;
            if k == Some(false) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Index objects `names` are gone from `target` (a prune deleted them
    /// after writing their replacements, which the catalog read first):
    /// forgets them, and the packs that no index object of `target` the
    /// catalog still knows lists are no longer on `target`; blob locations
    /// left in no known pack are dropped, so no backup dedups against a
    /// deleted pack.
    pub fn forget_index_objects(&mut self, target: &str, names: &[String]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut packs_of =
                tx.prepare_cached("SELECT pack FROM index_packs WHERE target = ?1 AND name = ?2")?;
            let mut forget_object =
                tx.prepare_cached("DELETE FROM index_objects WHERE target = ?1 AND name = ?2")?;
            let mut forget_packs =
                tx.prepare_cached("DELETE FROM index_packs WHERE target = ?1 AND name = ?2")?;
            let mut gone = tx.prepare_cached(
                "DELETE FROM pack_targets WHERE pack = ?2 AND target = ?1
                   AND NOT EXISTS (SELECT 1 FROM index_packs WHERE target = ?1 AND pack = ?2)",
            )?;
            let mut orphans = tx.prepare_cached(
                "DELETE FROM blobs WHERE pack = ?1 AND NOT EXISTS (SELECT 1 FROM pack_targets pt WHERE pt.pack = ?1)",
            )?;
            for name in names {
                let packs = packs_of
                    .query_map(params![target, name], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                forget_object.execute(params![target, name])?;
                forget_packs.execute(params![target, name])?;
                for pack in &packs {
                    if gone.execute(params![target, pack])? > 0 {
                        orphans.execute([pack])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether the catalog knows `pack` to be on `target`.
    pub fn has_pack_on(&self, pack: &str, target: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM pack_targets WHERE pack = ?1 AND target = ?2")?
            .query_row(params![pack, target], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// `pack` is not on `target` although an index there lists it (a backup
    /// checked before reusing it): forget that it is there, so no backup
    /// deduplicates against it on that target, and drop blob locations left
    /// in no pack the catalog knows.
    pub fn forget_pack_on(&mut self, pack: &str, target: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM pack_targets WHERE pack = ?1 AND target = ?2",
            params![pack, target],
        )?;
        tx.execute(
            "DELETE FROM blobs WHERE pack = ?1 AND NOT EXISTS (SELECT 1 FROM pack_targets pt WHERE pt.pack = ?1)",
            [pack],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A backup's manifest was removed from `target` (prune); a completed
    /// backup left on no target disappears from the list.
    pub fn forget_backup_on(&mut self, id: &str, target: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM backup_targets WHERE backup_id = ?1 AND target = ?2",
            params![id, target],
        )?;
        tx.execute(
            "DELETE FROM backups WHERE id = ?1 AND status = 'completed' AND NOT EXISTS (SELECT 1 FROM backup_targets WHERE backup_id = ?1)",
            [id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A backup's manifest now exists on `target` too (sync).
    pub fn add_backup_target(
        &mut self,
        h: &crate::repo::manifest::Header,
        target: &str,
    ) -> Result<()> {
        let known: Option<String> = self
            .conn
            .query_row("SELECT status FROM backups WHERE id = ?1", [&h.id], |r| {
                r.get(0)
            })
            .optional()?;
        match known.as_deref() {
            Some("completed") => {
                self.conn.execute(
                    "INSERT OR IGNORE INTO backup_targets (backup_id, target) VALUES (?1, ?2)",
                    params![h.id, target],
                )?;
                Ok(())
            }
            _ => self.upsert_completed(h, &[target.to_string()]),
        }
    }

    pub fn has_index_object(&self, name: &str, target: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM index_objects WHERE name = ?1 AND target = ?2",
                params![name, target],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn blob_location(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT pack, offset, stored_len, raw_len, flags FROM blobs WHERE id = ?1",
            )?
            .query_row([&id[..]], |r| {
                Ok(BlobLocation {
                    pack: r.get(0)?,
                    offset: r.get(1)?,
                    stored_len: r.get(2)?,
                    raw_len: r.get(3)?,
                    flags: r.get(4)?,
                })
            })
            .optional()?)
    }

    pub fn record_verify(&self, v: &VerifyRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO verify_runs (started_at, finished_at, target, mode, ok, backups_checked, packs_checked, problems) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![v.started_at, v.finished_at, v.target, v.mode, v.ok, v.backups_checked, v.packs_checked, serde_json::to_string(&v.problems)?],
        )?;
        Ok(())
    }

    /// The latest verify run of `target` (`ok_only`: the latest clean one):
    /// (finished_at, ok, mode).
    pub fn last_verify(
        &self,
        target: &str,
        ok_only: bool,
    ) -> Result<Option<(String, bool, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT finished_at, ok, mode FROM verify_runs WHERE target = ?1 AND (?2 = 0 OR ok = 1) ORDER BY finished_at DESC, id DESC LIMIT 1",
                params![target, ok_only],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    /// Targets with verify runs.
    pub fn verify_targets(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT target FROM verify_runs ORDER BY target")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    }

    /// When each pack of `target` was last read intact (never-read packs are absent).
    pub fn pack_reads(&self, target: &str) -> Result<std::collections::HashMap<String, String>> {
        let mut stmt = self.conn.prepare(
            "SELECT pack, read_at FROM verify_packs WHERE target = ?1 AND read_at IS NOT NULL",
        )?;
        let rows = stmt
            .query_map([target], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Records a verify of `target` at `at`: `listed` are the packs it holds
    /// (others are forgotten), `read` those read and whether they were intact.
    pub fn record_pack_reads(
        &mut self,
        target: &str,
        listed: &[(String, u64)],
        read: &[(String, bool)],
        at: &str,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "CREATE TEMP TABLE IF NOT EXISTS listed_packs (pack TEXT PRIMARY KEY)",
            [],
        )?;
        tx.execute("DELETE FROM temp.listed_packs", [])?;
        {
            let mut listed_stmt =
                tx.prepare("INSERT OR IGNORE INTO temp.listed_packs (pack) VALUES (?1)")?;
            let mut add = tx.prepare(
                "INSERT INTO verify_packs (target, pack, size, first_seen) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (target, pack) DO UPDATE SET size = excluded.size",
            )?;
            for (pack, size) in listed {
                listed_stmt.execute([pack])?;
                add.execute(params![target, pack, size, at])?;
            }
            let mut ok = tx.prepare(
                "UPDATE verify_packs SET read_at = ?3, failed_at = NULL WHERE target = ?1 AND pack = ?2",
            )?;
            let mut bad = tx.prepare(
                "UPDATE verify_packs SET read_at = NULL, failed_at = ?3 WHERE target = ?1 AND pack = ?2",
            )?;
            for (pack, intact) in read {
                if *intact { &mut ok } else { &mut bad }.execute(params![target, pack, at])?;
            }
        }
        tx.execute(
            "DELETE FROM verify_packs WHERE target = ?1 AND pack NOT IN (SELECT pack FROM temp.listed_packs)",
            [target],
        )?;
        tx.execute("DELETE FROM temp.listed_packs", [])?;
        tx.commit()?;
        Ok(())
    }

    /// Sample coverage of `target`: (packs read intact since `since`, packs
    /// it held at its last verify).
    pub fn pack_coverage(&self, target: &str, since: &str) -> Result<(u64, u64)> {
        Ok(self.conn.query_row(
            "SELECT coalesce(sum(read_at >= ?2), 0), count(*) FROM verify_packs WHERE target = ?1",
            params![target, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Wipes what a rebuild recreates (history of failed runs is kept).
    pub fn clear_repository_cache(&mut self) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute_batch("DELETE FROM blobs; DELETE FROM pack_targets; DELETE FROM index_objects; DELETE FROM index_packs; DELETE FROM backup_targets; DELETE FROM backups WHERE status = 'completed';")?;
        // Names no backup's rows use any more (a rebuild adds back those
        // the repository's backups use).
        tx.execute_batch(
            "DELETE FROM names WHERE id NOT IN (SELECT name FROM backup_artifacts UNION SELECT format FROM backup_artifacts
               UNION SELECT tenant FROM backup_tenants UNION SELECT tbl FROM backup_tables);",
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// The blobs' index by pack (prune, sync and verify ask which blobs a pack
/// holds); the schema creates it, a bulk read of indexes rebuilds it.
const BLOBS_PACK_INDEX: &str = "CREATE INDEX IF NOT EXISTS blobs_pack ON blobs (pack)";

/// Records an index object read from a target, with the packs it lists.
const INDEX_OBJECT_INSERT: &str =
    "INSERT OR REPLACE INTO index_objects (name, target, packs_known) VALUES (?1, ?2, 1)";
const INDEX_PACK_INSERT: &str =
    "INSERT OR IGNORE INTO index_packs (target, name, pack) VALUES (?1, ?2, ?3)";

/// Records blobs' locations ([`multi_row_insert`] of these columns, then
/// [`BLOB_CONFLICT`]).
const BLOB_INSERT: &str = "blobs (id, pack, offset, stored_len, raw_len, flags)";

/// A blob stored twice (two hosts at once) keeps one location: the first
/// seen, unless the new pack is on more targets (after a prune removed the
/// old pack from some target, dedup and restore move to the copy every
/// target has). Of two rows of one id in one statement, the second is
/// weighed against the first, as in two statements.
const BLOB_CONFLICT: &str = "ON CONFLICT (id) DO UPDATE SET pack = excluded.pack, offset = excluded.offset, stored_len = excluded.stored_len,
       raw_len = excluded.raw_len, flags = excluded.flags
     WHERE (SELECT count(*) FROM pack_targets WHERE pack = blobs.pack)
         < (SELECT count(*) FROM pack_targets WHERE pack = excluded.pack)";

/// Index entries recorded [`BATCH`] a statement (a statement a blob cost
/// as much again in SQLite's own overhead); [`finish`](Self::finish)
/// writes the last ones.
struct BlobUpserts<'t, 'p> {
    tx: &'t rusqlite::Transaction<'t>,
    pending: Vec<(&'p str, PackEntry)>,
}

impl<'t, 'p> BlobUpserts<'t, 'p> {
    fn new(tx: &'t rusqlite::Transaction<'t>) -> Self {
        BlobUpserts {
            tx,
            pending: Vec::with_capacity(BATCH),
        }
    }

    fn push(&mut self, pack: &'p str, e: PackEntry) -> Result<()> {
        self.pending.push((pack, e));
        if self.pending.len() >= BATCH {
            self.write()?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(self.pending.len() * 6);
        for (pack, e) in &self.pending {
            values.extend([
                &e.id as &dyn rusqlite::ToSql,
                pack,
                &e.offset,
                &e.stored_len,
                &e.raw_len,
                &e.flags,
            ]);
        }
        insert_rows(self.tx, BLOB_INSERT, 6, BLOB_CONFLICT, values)?;
        self.pending.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.write()
    }
}

/// A completed backup to record ([`Catalog::upsert_completed_many`]).
pub struct Completed<'a> {
    pub header: &'a crate::repo::manifest::Header,
    /// What it keeps of its manifest body, when an identity opened it;
    /// without it the catalog keeps what it had.
    pub body: Option<&'a BodyContents>,
    pub targets: &'a [String],
}

/// What the catalog keeps of a manifest body: the note, the engine facts,
/// the tenants and each artifact with the count of its blobs, never the
/// blob ids (a rebuild holds a batch of bodies; the ids are the dedup
/// index's).
pub struct BodyContents {
    pub note: Option<String>,
    pub engine: serde_json::Value,
    pub tenants: Vec<String>,
    pub artifacts: Vec<ArtifactRow>,
}

impl From<crate::repo::manifest::Body> for BodyContents {
    fn from(body: crate::repo::manifest::Body) -> BodyContents {
        BodyContents {
            note: body.note,
            engine: body.engine,
            tenants: body.tenants,
            artifacts: body
                .artifacts
                .into_iter()
                .map(|a| ArtifactRow {
                    blobs: a.blobs.len() as u64,
                    name: a.name,
                    format: a.format,
                    size: a.size,
                    blake3: a.blake3,
                })
                .collect(),
        }
    }
}

/// One artifact of a backup as the catalog keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactRow {
    pub name: String,
    pub format: String,
    pub size: u64,
    pub blake3: String,
    pub blobs: u64,
}

/// Writes one backup's tenants, artifacts and row counts as rows, in the
/// transaction that records the backup: they come from spools or a
/// manifest body, never as one value, and are written [`BATCH`] rows a
/// statement. [`finish`](Self::finish) writes the last ones.
pub struct ContentsWriter<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    /// The backup's key in its rows (`backup_keys.num`).
    backup: i64,
    insert_table: rusqlite::CachedStatement<'t>,
    /// The ids of the names a backup repeats (tables, formats), at most
    /// [`REPEATED_NAMES`] of them.
    repeated: std::collections::HashMap<String, i64>,
    /// Artifacts not written yet: seq, name, format id, size, digest, blobs.
    artifacts: Vec<(usize, String, i64, u64, rusqlite::types::Value, u64)>,
    /// Tenants not written yet: seq, id, row counts as text.
    tenants: Vec<(usize, String, Option<String>)>,
    /// Whether [`name_ids`](Self::name_ids) adds before it finds.
    adding_first: bool,
}

/// How many repeated names a [`ContentsWriter`] keeps the ids of.
const REPEATED_NAMES: usize = 1024;

/// Rows a [`ContentsWriter`] gathers before one statement writes them all:
/// SQLite's cost per statement (cursors opened and closed, the program
/// reset) was half of recording 10,000 tenants a row at a time.
const BATCH: usize = 128;

/// `INSERT INTO {into} VALUES` with `rows` groups of `width` parameters.
fn multi_row_insert(into: &str, width: usize, rows: usize) -> String {
    let group = format!("({})", vec!["?"; width].join(","));
    format!("INSERT INTO {into} VALUES {}", vec![group; rows].join(","))
}

/// Runs one [`multi_row_insert`] of `values` (`width` a row) followed by
/// `tail` (an `ON CONFLICT` clause, or nothing).
fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    into: &str,
    width: usize,
    tail: &str,
    values: Vec<&dyn rusqlite::ToSql>,
) -> Result<()> {
    let sql = format!(
        "{} {tail}",
        multi_row_insert(into, width, values.len() / width)
    );
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

impl<'t> ContentsWriter<'t> {
    /// Replaces what the catalog had of backup `id`'s contents.
    fn new(tx: &'t rusqlite::Transaction<'t>, id: &str) -> Result<ContentsWriter<'t>> {
        // The old key's rows go with it (ON DELETE CASCADE).
        tx.prepare_cached("DELETE FROM backup_keys WHERE backup_id = ?1")?
            .execute([id])?;
        let backup = tx
            .prepare_cached("INSERT INTO backup_keys (backup_id) VALUES (?1) RETURNING num")?
            .query_row([id], |r| r.get(0))?;
        Ok(ContentsWriter {
            tx,
            backup,
            insert_table: tx.prepare_cached(
                "INSERT INTO backup_tables (backup, seq, tbl) VALUES (?1, ?2, ?3)",
            )?,
            repeated: std::collections::HashMap::new(),
            artifacts: Vec::with_capacity(BATCH),
            tenants: Vec::with_capacity(BATCH),
            adding_first: false,
        })
    }

    /// The ids of `names` in `names` (the table), in their order, the new
    /// ones added. The names of a backup are mostly all new (a first
    /// backup of 10,000 tenants) or all known (the nights after): the
    /// statement that served the last batch whole goes first (find, or
    /// add), the other only for what it left.
    fn name_ids(&mut self, names: &[&str]) -> Result<Vec<i64>> {
        let mut distinct: Vec<&str> = names.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let mut ids: std::collections::HashMap<String, i64> =
            std::collections::HashMap::with_capacity(distinct.len());
        let mut statements = [Self::find_names, Self::add_names];
        if self.adding_first {
            statements.reverse();
        }
        let mut left = distinct;
        for (i, run) in statements.into_iter().enumerate() {
            run(self.tx, &left, &mut ids)?;
            left.retain(|n| !ids.contains_key(*n));
            if i == 0 {
                // The first served them all: it goes first again.
                self.adding_first ^= !left.is_empty();
            }
            if left.is_empty() {
                break;
            }
        }
        names
            .iter()
            .map(|n| {
                ids.get(*n)
                    .copied()
                    .ok_or_else(|| anyhow::anyhow!("the catalog lost the name '{n}'"))
            })
            .collect()
    }

    /// Puts the ids of those of `names` the catalog has in `ids`.
    fn find_names(
        tx: &rusqlite::Transaction<'_>,
        names: &[&str],
        ids: &mut std::collections::HashMap<String, i64>,
    ) -> Result<()> {
        let marks = vec!["?"; names.len()].join(",");
        let sql = format!("SELECT id, name FROM names WHERE name IN ({marks})");
        Self::collect_names(&mut tx.prepare_cached(&sql)?, names, ids)
    }

    /// Adds those of `names` the catalog lacks, their ids in `ids`.
    fn add_names(
        tx: &rusqlite::Transaction<'_>,
        names: &[&str],
        ids: &mut std::collections::HashMap<String, i64>,
    ) -> Result<()> {
        let sql = format!(
            "{} ON CONFLICT DO NOTHING RETURNING id, name",
            multi_row_insert("names (name)", 1, names.len())
        );
        Self::collect_names(&mut tx.prepare_cached(&sql)?, names, ids)
    }

    fn collect_names(
        stmt: &mut rusqlite::CachedStatement<'_>,
        names: &[&str],
        ids: &mut std::collections::HashMap<String, i64>,
    ) -> Result<()> {
        let mut rows = stmt.query(rusqlite::params_from_iter(names))?;
        while let Some(r) = rows.next()? {
            ids.insert(r.get(1)?, r.get(0)?);
        }
        Ok(())
    }

    /// [`name_ids`](Self::name_ids) of a name the backup repeats (a table,
    /// a format), remembered.
    fn repeated_name(&mut self, name: &str) -> Result<i64> {
        if let Some(&id) = self.repeated.get(name) {
            return Ok(id);
        }
        let id = self.name_ids(&[name])?[0];
        if self.repeated.len() >= REPEATED_NAMES {
            self.repeated.clear();
        }
        self.repeated.insert(name.to_string(), id);
        Ok(id)
    }

    fn write_artifacts(&mut self) -> Result<()> {
        if self.artifacts.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.artifacts);
        let names: Vec<&str> = batch.iter().map(|a| a.1.as_str()).collect();
        let ids = self.name_ids(&names)?;
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(batch.len() * 7);
        for ((seq, _, format, size, blake3, blobs), name) in batch.iter().zip(&ids) {
            values.extend([
                &self.backup as &dyn rusqlite::ToSql,
                seq,
                name,
                format,
                size,
                blake3,
                blobs,
            ]);
        }
        insert_rows(
            self.tx,
            "backup_artifacts (backup, seq, name, format, size, blake3, blobs)",
            7,
            "",
            values,
        )?;
        self.artifacts = batch;
        self.artifacts.clear();
        Ok(())
    }

    fn write_tenants(&mut self) -> Result<()> {
        if self.tenants.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.tenants);
        let names: Vec<&str> = batch.iter().map(|t| t.1.as_str()).collect();
        let ids = self.name_ids(&names)?;
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(batch.len() * 4);
        for ((seq, _, rows), tenant) in batch.iter().zip(&ids) {
            values.extend([&self.backup as &dyn rusqlite::ToSql, seq, tenant, rows]);
        }
        insert_rows(
            self.tx,
            "backup_tenants (backup, seq, tenant, rows)",
            4,
            "",
            values,
        )?;
        self.tenants = batch;
        self.tenants.clear();
        Ok(())
    }

    /// Writes the rows still gathered; without it they are not recorded.
    pub fn finish(mut self) -> Result<()> {
        self.write_artifacts()?;
        self.write_tenants()
    }

    /// The contents of a manifest body (catalog rebuild); row counts of a
    /// tenant the body does not list are not kept.
    fn body(mut self, body: &BodyContents) -> Result<()> {
        for (i, a) in body.artifacts.iter().enumerate() {
            self.artifact(i, &a.name, &a.format, a.size, &a.blake3, a.blobs)?;
        }
        // Every table any tenant has a count for, in order of appearance.
        let rows = body.engine.get("rows").and_then(|r| r.as_object());
        let per_tenant = |t: &str| rows.and_then(|r| r.get(t)).and_then(|t| t.as_object());
        let mut tables: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for t in &body.tenants {
            for table in per_tenant(t).into_iter().flat_map(|m| m.keys()) {
                if seen.insert(table.as_str()) {
                    tables.push(table.clone());
                }
            }
        }
        if rows.is_some() {
            self.tables(&tables)?;
        }
        let mut counts = Vec::with_capacity(tables.len());
        for (i, t) in body.tenants.iter().enumerate() {
            counts.clear();
            if let Some(m) = per_tenant(t) {
                counts.extend(
                    tables
                        .iter()
                        .map(|table| m.get(table).and_then(|n| n.as_u64())),
                );
            }
            self.tenant(i, t, rows.is_some().then_some(counts.as_slice()))?;
        }
        self.finish()
    }
}

impl ContentsSink for ContentsWriter<'_> {
    fn artifact(
        &mut self,
        seq: usize,
        name: &str,
        format: &str,
        size: u64,
        blake3: &str,
        blobs: u64,
    ) -> Result<()> {
        let format = self.repeated_name(format)?;
        self.artifacts.push((
            seq,
            name.to_string(),
            format,
            size,
            digest_value(blake3),
            blobs,
        ));
        if self.artifacts.len() >= BATCH {
            self.write_artifacts()?;
        }
        Ok(())
    }

    fn tables(&mut self, tables: &[String]) -> Result<()> {
        for (seq, table) in tables.iter().enumerate() {
            let table = self.repeated_name(table)?;
            self.insert_table
                .execute(params![self.backup, seq, table])?;
        }
        Ok(())
    }

    fn tenant(&mut self, seq: usize, tenant: &str, rows: Option<&[Option<u64>]>) -> Result<()> {
        let rows = rows.map(|counts| {
            let mut text = String::with_capacity(counts.len() * 4);
            for (i, n) in counts.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                if let Some(n) = n {
                    use std::fmt::Write;
                    let _ = write!(text, "{n}");
                }
            }
            text
        });
        self.tenants.push((seq, tenant.to_string(), rows));
        if self.tenants.len() >= BATCH {
            self.write_tenants()?;
        }
        Ok(())
    }
}

/// A BLAKE3 digest as the catalog keeps it: its 32 bytes when it is 64
/// lowercase hex digits (as every manifest writes it), else the text as it
/// came ([`ArtifactRow`] reads either back as the same text).
fn digest_value(hex: &str) -> rusqlite::types::Value {
    let mut bytes = [0u8; 32];
    let lower = hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match lower && hex::decode_to_slice(hex, &mut bytes).is_ok() {
        true => rusqlite::types::Value::Blob(bytes.to_vec()),
        false => rusqlite::types::Value::Text(hex.to_string()),
    }
}

/// One restore as the log keeps it (the `restores --json` shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RestoreRow {
    pub id: i64,
    pub backup_id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it went (a database URL without password, a directory, stdout).
    pub target: String,
    pub tenants: Vec<String>,
    pub reason: Option<String>,
    pub operator: String,
    pub host: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub outcome: String,
    pub rows: Option<u64>,
    pub details: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// What a restore log entry starts with.
pub struct RestoreStart<'a> {
    pub backup_id: &'a str,
    pub source: &'a str,
    pub kind: &'a str,
    pub target: &'a str,
    pub tenants: &'a [String],
    pub reason: Option<&'a str>,
    pub operator: String,
    pub host: String,
    pub started_at: Timestamp,
}

impl Catalog {
    pub fn restore_started(&self, r: &RestoreStart<'_>) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO restores (backup_id, source, type, target, tenants, reason, operator, host, started_at, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'running')",
            params![r.backup_id, r.source, r.kind, r.target, serde_json::to_string(r.tenants)?, r.reason, r.operator, r.host, r.started_at],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn restore_finished(
        &self,
        id: i64,
        finished_at: &str,
        ok: bool,
        rows: Option<u64>,
        details: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE restores SET finished_at = ?2, outcome = ?3, rows = ?4, details = ?5, error = ?6 WHERE id = ?1",
            params![id, finished_at, if ok { "succeeded" } else { "failed" }, rows, if details.is_null() { None } else { Some(details.to_string()) }, error],
        )?;
        Ok(())
    }

    /// Records a running restore's details before it finishes (a killed
    /// run leaves them behind: the tenant restore's work directory, where
    /// its sandbox stays until the next run or `doctor` finds it).
    pub fn restore_details(&self, id: i64, details: &serde_json::Value) -> Result<()> {
        self.conn.execute(
            "UPDATE restores SET details = ?2 WHERE id = ?1",
            params![id, details.to_string()],
        )?;
        Ok(())
    }

    /// Every work directory a tenant point-in-time restore has used (from
    /// the restore log), so stale sandboxes are found outside the default.
    pub fn tenant_restore_work_dirs(&self) -> Result<Vec<PathBuf>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT json_extract(details, '$.work_dir') FROM restores \
             WHERE type = 'tenant-pitr' AND json_valid(details) \
             AND json_extract(details, '$.work_dir') IS NOT NULL",
        )?;
        let dirs = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(dirs.into_iter().map(PathBuf::from).collect())
    }

    /// The restore log, newest first.
    pub fn restores(&self, limit: Option<usize>) -> Result<Vec<RestoreRow>> {
        let mut sql = String::from("SELECT * FROM restores ORDER BY started_at DESC, id DESC");
        if let Some(l) = limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([], Self::restore_from)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The restores made from one backup, newest first.
    pub fn restores_of(&self, backup_id: &str) -> Result<Vec<RestoreRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM restores WHERE backup_id = ?1 ORDER BY started_at DESC, id DESC",
        )?;
        let rows = stmt
            .query_map([backup_id], Self::restore_from)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// One restore log entry.
    pub fn restore(&self, id: i64) -> Result<Option<RestoreRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM restores WHERE id = ?1",
                [id],
                Self::restore_from,
            )
            .optional()?)
    }

    fn restore_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<RestoreRow> {
        let tenants: String = r.get("tenants")?;
        let details: Option<String> = r.get("details")?;
        Ok(RestoreRow {
            id: r.get("id")?,
            backup_id: r.get("backup_id")?,
            source: r.get("source")?,
            kind: r.get("type")?,
            target: r.get("target")?,
            tenants: serde_json::from_str(&tenants).unwrap_or_default(),
            reason: r.get("reason")?,
            operator: r.get("operator")?,
            host: r.get("host")?,
            started_at: r.get("started_at")?,
            finished_at: r.get("finished_at")?,
            outcome: r.get("outcome")?,
            rows: r.get("rows")?,
            details: details.and_then(|d| serde_json::from_str(&d).ok()),
            error: r.get("error")?,
        })
    }

    /// Verify runs that started at `since` or later, newest first.
    pub fn verify_runs_since(&self, since: &str) -> Result<Vec<VerifyRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT started_at, finished_at, target, mode, ok, backups_checked, packs_checked, problems FROM verify_runs WHERE started_at >= ?1 ORDER BY started_at DESC, id DESC",
        )?;
        let rows = stmt
            .query_map([since], |r| {
                let problems: String = r.get(7)?;
                Ok(VerifyRecord {
                    started_at: r.get(0)?,
                    finished_at: r.get(1)?,
                    target: r.get(2)?,
                    mode: r.get(3)?,
                    ok: r.get(4)?,
                    backups_checked: r.get(5)?,
                    packs_checked: r.get(6)?,
                    problems: serde_json::from_str(&problems).unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

/// A one-shot backup (`backup SOURCE… --at TIME`; the `schedule show
/// --one-shots --json` shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OneShot {
    pub id: i64,
    pub sources: Vec<String>,
    pub tenants: Vec<String>,
    pub tags: Vec<String>,
    pub note: Option<String>,
    pub due_at: Timestamp,
    pub created_at: Timestamp,
    pub created_by: String,
    /// pending, running, succeeded, failed, missed or cancelled.
    pub status: String,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// The backups it made.
    pub backups: Vec<String>,
    pub error: Option<String>,
}

/// What a new one-shot is made of.
pub struct OneShotNew<'a> {
    pub sources: &'a [String],
    pub tenants: &'a [String],
    pub tags: &'a [String],
    pub note: Option<&'a str>,
    pub due_at: &'a str,
    pub created_at: &'a str,
    pub created_by: &'a str,
}

impl Catalog {
    pub fn one_shot_add(&self, o: &OneShotNew<'_>) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO one_shots (sources, tenants, tags, note, due_at, created_at, created_by, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
            params![serde_json::to_string(o.sources)?, serde_json::to_string(o.tenants)?, serde_json::to_string(o.tags)?, o.note, o.due_at, o.created_at, o.created_by],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// One-shots with this status (all when `None`), by due time.
    pub fn one_shots(&self, status: Option<&str>) -> Result<Vec<OneShot>> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM one_shots WHERE (?1 IS NULL OR status = ?1) ORDER BY due_at, id",
        )?;
        let rows = stmt
            .query_map([status], |r| {
                let list = |c: &str| -> rusqlite::Result<Vec<String>> {
                    let t: String = r.get(c)?;
                    Ok(serde_json::from_str(&t).unwrap_or_default())
                };
                Ok(OneShot {
                    id: r.get("id")?,
                    sources: list("sources")?,
                    tenants: list("tenants")?,
                    tags: list("tags")?,
                    note: r.get("note")?,
                    due_at: r.get("due_at")?,
                    created_at: r.get("created_at")?,
                    created_by: r.get("created_by")?,
                    status: r.get("status")?,
                    started_at: r.get("started_at")?,
                    finished_at: r.get("finished_at")?,
                    backups: list("backups")?,
                    error: r.get("error")?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Moves a one-shot from status `from` to `to`; false when it was not
    /// in `from` (another run took it, or it was cancelled).
    pub fn one_shot_transition(&self, id: i64, from: &str, to: &str, at: &str) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE one_shots SET status = ?3,
               started_at = CASE WHEN ?3 = 'running' THEN ?4 ELSE started_at END,
               finished_at = CASE WHEN ?3 = 'running' THEN finished_at ELSE ?4 END
             WHERE id = ?1 AND status = ?2",
            params![id, from, to, at],
        )?;
        Ok(n == 1)
    }

    /// Records how a running one-shot ended.
    pub fn one_shot_finished(
        &self,
        id: i64,
        ok: bool,
        backups: &[String],
        error: Option<&str>,
        at: &str,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE one_shots SET status = ?2, backups = ?3, error = ?4, finished_at = ?5 WHERE id = ?1",
            params![id, if ok { "succeeded" } else { "failed" }, serde_json::to_string(backups)?, error, at],
        )?;
        Ok(())
    }
}

pub struct VerifyRecord {
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub target: String,
    pub mode: String,
    pub ok: bool,
    pub backups_checked: usize,
    pub packs_checked: usize,
    pub problems: Vec<String>,
}

/// A read-only lookup of reusable blobs, one per pipeline worker thread.
///
/// Lookups share a read transaction (one WAL snapshot) for up to
/// [`SNAPSHOT_LOOKUPS`] of them or [`SNAPSHOT_AGE`]: a transaction of its
/// own per lookup (locks on the file and the WAL index, taken and dropped)
/// cost about half of each lookup (2.9 of 5.8 µs through Python's sqlite3
/// on a catalog of 10,000 blobs; a backup of 10,000 tenants made 11,942
/// `fcntl` calls, now 92). A snapshot a little old costs at most a blob
/// stored twice (one another process recorded since); every pack a lookup
/// offers is still checked on the targets under the run's lock. A worker
/// that waits for work keeps its snapshot until its next lookup or its end.
pub struct BlobLookup {
    conn: Connection,
    targets_json: String,
    /// Lookups made in the open snapshot, and when it was opened.
    snapshot: Cell<(u32, Instant)>,
}

/// Lookups that share one read transaction of a [`BlobLookup`].
const SNAPSHOT_LOOKUPS: u32 = 1024;
/// The age after which a [`BlobLookup`]'s next lookup takes a new snapshot
/// (while it is held, a checkpoint cannot recycle the WAL past it).
const SNAPSHOT_AGE: Duration = Duration::from_millis(100);

impl BlobLookup {
    /// `targets`: the targets this backup writes to; a blob is reused only if
    /// its pack is on all of them, so every target stays complete.
    pub fn open(path: &Path, targets: &[String]) -> Result<BlobLookup> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        Ok(BlobLookup {
            conn,
            targets_json: serde_json::to_string(targets)?,
            snapshot: Cell::new((0, Instant::now())),
        })
    }

    /// Counts a lookup in the open read transaction, or ends that after
    /// enough lookups or time and opens another (the lookup's SELECT takes
    /// its snapshot).
    fn renew_snapshot(&self) -> Result<()> {
        let (lookups, opened) = self.snapshot.get();
        let open = !self.conn.is_autocommit();
        if open && lookups < SNAPSHOT_LOOKUPS && opened.elapsed() < SNAPSHOT_AGE {
            self.snapshot.set((lookups + 1, opened));
            return Ok(());
        }
        if open {
            self.conn.execute_batch("COMMIT")?;
        }
        self.conn.execute_batch("BEGIN")?;
        self.snapshot.set((1, Instant::now()));
        Ok(())
    }
}

impl DedupLookup for BlobLookup {
    fn lookup(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        self.renew_snapshot()?;
        Ok(self
            .conn
            .prepare_cached(
                "SELECT b.pack, b.offset, b.stored_len, b.raw_len, b.flags FROM blobs b WHERE b.id = ?1
                 AND NOT EXISTS (SELECT 1 FROM json_each(?2) t WHERE NOT EXISTS
                     (SELECT 1 FROM pack_targets pt WHERE pt.pack = b.pack AND pt.target = t.value))",
            )?
            .query_row(params![&id[..], self.targets_json], |r| {
                Ok(BlobLocation { pack: r.get(0)?, offset: r.get(1)?, stored_len: r.get(2)?, raw_len: r.get(3)?, flags: r.get(4)? })
            })
            .optional()?)
    }
}

/// The repository's dedup cache ([`IndexStore`]) is the catalog's `blobs`,
/// `pack_targets` and `index_objects` tables.
impl IndexStore for Catalog {
    fn index_objects_of(&self, target: &str) -> Result<Vec<String>> {
        Catalog::index_objects_of(self, target)
    }
    fn has_index_object(&self, name: &str, target: &str) -> Result<bool> {
        Catalog::has_index_object(self, name, target)
    }
    fn drop_target_dedup(&mut self, target: &str) -> Result<()> {
        Catalog::drop_target_dedup(self, target)
    }
    fn knows_index_packs(&self, target: &str, names: &[String]) -> Result<bool> {
        Catalog::knows_index_packs(self, target, names)
    }
    fn forget_index_objects(&mut self, target: &str, names: &[String]) -> Result<()> {
        Catalog::forget_index_objects(self, target, names)
    }
    fn has_pack_on(&self, pack: &str, target: &str) -> Result<bool> {
        Catalog::has_pack_on(self, pack, target)
    }
    fn add_sorted_index(
        &mut self,
        names: &[(String, Vec<u32>)],
        packs: &[String],
        target: &str,
        next: &mut dyn FnMut() -> Result<Option<(u32, PackEntry)>>,
    ) -> Result<()> {
        Catalog::add_sorted_index(self, names, packs, target, next)
    }
    fn add_index(&mut self, name: &str, packs: &[IndexedPack], targets: &[String]) -> Result<()> {
        Catalog::add_index(self, name, packs, targets)
    }
    fn forget_pack_on(&mut self, pack: &str, target: &str) -> Result<()> {
        Catalog::forget_pack_on(self, pack, target)
    }
    fn blob_location(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        Catalog::blob_location(self, id)
    }
    fn dedup_lookup(&self, targets: &[String]) -> Result<Box<dyn DedupLookup>> {
        let path = self
            .conn
            .path()
            .filter(|p| !p.is_empty())
            .context("the catalog has no file, so backup workers cannot read it")?;
        Ok(Box::new(BlobLookup::open(Path::new(path), targets)?))
    }
}

pub use crate::humanize::mb_per_s;

/// A [`Timestamp`] is stored as the text it holds.
impl rusqlite::types::ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.as_str().to_sql()
    }
}

impl rusqlite::types::FromSql for Timestamp {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        String::column_result(v).map(Timestamp::from)
    }
}

/// SQLITE_BUSY / SQLITE_LOCKED anywhere in the chain.
fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(f, _))
                if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    })
}

/// One DR run or drill (the `dr history --json` shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DrRunRow {
    pub id: i64,
    /// `run` or `drill`.
    pub kind: String,
    pub source: String,
    pub backup_id: Option<String>,
    pub target_db: Option<String>,
    /// The storage target the backup was read from (first one that worked).
    pub storage_target: Option<String>,
    pub reason: Option<String>,
    pub operator: String,
    pub host: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub outcome: String,
    /// Achieved recovery time: start of the run to a verified database.
    pub rto_ms: Option<u64>,
    pub restore_ms: Option<u64>,
    pub bytes: Option<u64>,
    pub tables: Option<u64>,
    pub rows: Option<u64>,
    pub restore_id: Option<i64>,
    pub checks: Option<serde_json::Value>,
    pub steps: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// One `dr_runs` row.
fn dr_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DrRunRow> {
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    Ok(DrRunRow {
        id: r.get("id")?,
        kind: r.get("kind")?,
        source: r.get("source")?,
        backup_id: r.get("backup_id")?,
        target_db: r.get("target_db")?,
        storage_target: r.get("storage_target")?,
        reason: r.get("reason")?,
        operator: r.get("operator")?,
        host: r.get("host")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        outcome: r.get("outcome")?,
        rto_ms: r.get("rto_ms")?,
        restore_ms: r.get("restore_ms")?,
        bytes: r.get("bytes")?,
        tables: r.get("tables")?,
        rows: r.get("rows")?,
        restore_id: r.get("restore_id")?,
        checks: json(r.get("checks")?),
        steps: json(r.get("steps")?),
        error: r.get("error")?,
    })
}

/// How a DR run or drill ended.
#[derive(Debug, Default)]
pub struct DrFinish<'a> {
    pub ok: bool,
    pub backup_id: Option<&'a str>,
    pub storage_target: Option<&'a str>,
    pub rto_ms: Option<u64>,
    pub restore_ms: Option<u64>,
    pub bytes: Option<u64>,
    pub tables: Option<u64>,
    pub rows: Option<u64>,
    pub restore_id: Option<i64>,
    pub checks: Option<serde_json::Value>,
    pub steps: Option<serde_json::Value>,
    pub error: Option<&'a str>,
}

impl Catalog {
    #[allow(clippy::too_many_arguments)]
    pub fn dr_started(
        &self,
        kind: &str,
        source: &str,
        target_db: Option<&str>,
        reason: Option<&str>,
        operator: &str,
        host: &str,
        started_at: &str,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO dr_runs (kind, source, target_db, reason, operator, host, started_at, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running')",
            params![kind, source, target_db, reason, operator, host, started_at],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn dr_finished(&self, id: i64, finished_at: &str, f: &DrFinish<'_>) -> Result<()> {
        self.conn.execute(
            "UPDATE dr_runs SET finished_at = ?2, outcome = ?3, backup_id = coalesce(?4, backup_id), storage_target = ?5, rto_ms = ?6,
               restore_ms = ?7, bytes = ?8, tables = ?9, rows = ?10, restore_id = ?11, checks = ?12, steps = ?13, error = ?14 WHERE id = ?1",
            params![
                id,
                finished_at,
                if f.ok { "succeeded" } else { "failed" },
                f.backup_id,
                f.storage_target,
                f.rto_ms,
                f.restore_ms,
                f.bytes,
                f.tables,
                f.rows,
                f.restore_id,
                f.checks.as_ref().map(|v| v.to_string()),
                f.steps.as_ref().map(|v| v.to_string()),
                f.error
            ],
        )?;
        Ok(())
    }

    /// DR runs and drills, newest first; `kind` filters (`run`, `drill`).
    pub fn dr_runs(&self, kind: Option<&str>, limit: Option<usize>) -> Result<Vec<DrRunRow>> {
        let mut sql = String::from("SELECT * FROM dr_runs WHERE (?1 IS NULL OR kind = ?1) ORDER BY started_at DESC, id DESC");
        if let Some(l) = limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([kind], dr_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The latest drill of `source` (`succeeded_only`: the latest successful one).
    pub fn last_drill(&self, source: &str, succeeded_only: bool) -> Result<Option<DrRunRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM dr_runs WHERE kind = 'drill' AND source = ?1 AND outcome <> 'running' AND (?2 = 0 OR outcome = 'succeeded') ORDER BY started_at DESC, id DESC LIMIT 1",
                params![source, succeeded_only],
                dr_row,
            )
            .optional()?)
    }

    /// Sources with drills.
    pub fn drill_sources(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT source FROM dr_runs WHERE kind = 'drill' ORDER BY source")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    }

    /// The DR runs and drills that restored one backup, newest first.
    pub fn dr_runs_of(&self, backup_id: &str) -> Result<Vec<DrRunRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM dr_runs WHERE backup_id = ?1 ORDER BY started_at DESC, id DESC",
        )?;
        let rows = stmt
            .query_map([backup_id], dr_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Marks a backup as verified by a real restore (`method`: drill, dr-run).
    pub fn mark_verified(
        &self,
        backup_id: &str,
        method: &str,
        dr_run_id: i64,
        at: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO backup_verifications (backup_id, method, dr_run_id, verified_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (backup_id, method) DO UPDATE SET dr_run_id = excluded.dr_run_id, verified_at = excluded.verified_at",
            params![backup_id, method, dr_run_id, at],
        )?;
        Ok(())
    }

    /// A verification found in the repository (catalog rebuild): kept
    /// unless this catalog knows a newer one for the same method.
    pub fn import_verification(&self, backup_id: &str, method: &str, at: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO backup_verifications (backup_id, method, dr_run_id, verified_at) VALUES (?1, ?2, NULL, ?3)
             ON CONFLICT (backup_id, method) DO UPDATE SET verified_at = excluded.verified_at
             WHERE excluded.verified_at > backup_verifications.verified_at",
            params![backup_id, method, at],
        )?;
        Ok(())
    }

    /// When a backup was last verified by a restore, if ever.
    pub fn verified_at(&self, backup_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT max(verified_at) FROM backup_verifications WHERE backup_id = ?1",
                [backup_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// The newest completed backup of `source` verified by a restore.
    pub fn latest_verified(&self, source: &str) -> Result<Option<BackupRow>> {
        let sql = format!(
            "{} WHERE b.source = ?1 AND b.status = 'completed' AND EXISTS (SELECT 1 FROM backup_verifications v WHERE v.backup_id = b.id) ORDER BY b.started_at DESC LIMIT 1",
            Self::SELECT
        );
        Ok(self
            .conn
            .query_row(&sql, [source], Self::row_from)
            .optional()?)
    }

    /// Restore speed (bytes/s of backup data) over the last successful full
    /// database restores: (bytes, milliseconds) summed.
    pub fn restore_speed(&self) -> Result<Option<(u64, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT b.bytes, r.started_at, r.finished_at FROM restores r JOIN backups b ON b.id = r.backup_id
              WHERE r.outcome = 'succeeded' AND r.type = 'full' AND r.finished_at IS NOT NULL ORDER BY r.started_at DESC LIMIT 10",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, u64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let parse = crate::clock::parse;
        let (mut bytes, mut ms) = (0u64, 0u64);
        for (b, s, f) in rows {
            if let (Some(s), Some(f)) = (parse(&s), parse(&f)) {
                let d = (f - s).whole_milliseconds().max(1) as u64;
                bytes += b;
                ms += d;
            }
        }
        Ok(if ms == 0 { None } else { Some((bytes, ms)) })
    }
}

/// A query row read as a tuple of its columns ([`Catalog::rows`]).
trait FromTuple: Sized {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

impl<A: FromSql, B: FromSql> FromTuple for (A, B) {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((r.get(0)?, r.get(1)?))
    }
}

impl<A: FromSql, B: FromSql, C: FromSql> FromTuple for (A, B, C) {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    }
}

impl FromTuple for String {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        r.get(0)
    }
}

impl FromTuple for ArtifactRow {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(ArtifactRow {
            name: r.get(0)?,
            format: r.get(1)?,
            size: r.get(2)?,
            blake3: match r.get_ref(3)? {
                rusqlite::types::ValueRef::Blob(b) => hex::encode(b),
                _ => r.get(3)?,
            },
            blobs: r.get(4)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob id whose first byte is `b`, the rest zero.
    fn blob_id(b: u8) -> BlobId {
        let mut id = [0u8; 32];
        id[0] = b;
        id
    }

    /// A one-byte blob [`blob_id`]`(b)` at the start of its pack.
    fn tiny_entry(b: u8) -> PackEntry {
        PackEntry {
            id: blob_id(b),
            flags: 0,
            raw_len: 1,
            stored_len: 1,
            offset: 0,
        }
    }

    /// Index objects `(name, packs)` read from `target`, each pack holding
    /// one blob whose id is the pack's first byte.
    fn read_indexes(c: &mut Catalog, target: &str, objects: &[(&str, &[&str])]) {
        let mut packs: Vec<String> = Vec::new();
        let mut listed = Vec::new();
        for (name, ps) in objects {
            let mut slots = Vec::new();
            for p in *ps {
                slots.push(packs.len() as u32);
                packs.push(p.to_string());
            }
            listed.push((name.to_string(), slots));
        }
        let mut entries: Vec<(u32, PackEntry)> = (0..packs.len() as u32)
            .map(|slot| (slot, tiny_entry(packs[slot as usize].as_bytes()[0])))
            .collect();
        entries.sort_by_key(|(_, e)| e.id);
        let mut it = entries.into_iter();
        c.add_sorted_index(&listed, &packs, target, || Ok(it.next()))
            .unwrap();
    }

    fn has_pack_index(c: &Catalog) -> bool {
        c.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'blobs_pack'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            == 1
    }

    #[test]
    fn a_bulk_read_into_an_empty_dedup_index_keeps_the_pack_index_even_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("c.db")).unwrap();
        // Fails half way through an empty catalog's first read: nothing is
        // recorded and the pack index (dropped for the bulk insert) is back.
        let mut calls = 0;
        let failed = c.add_sorted_index(&[("i0".into(), vec![0])], &["p".into()], "a", || {
            calls += 1;
            match calls {
                1 => Ok(Some((0, tiny_entry(1)))),
                _ => Err(anyhow::anyhow!("the index object ended early")),
            }
        });
        assert!(failed.is_err());
        assert!(has_pack_index(&c));
        assert_eq!(c.index_objects_of("a").unwrap().len(), 0);
        // A read that works, into the empty index and then into a full one.
        read_indexes(&mut c, "a", &[("i1", &["x", "y"])]);
        assert!(has_pack_index(&c));
        read_indexes(&mut c, "a", &[("i2", &["z"])]);
        assert!(has_pack_index(&c));
        let pack_of = |b: u8| c.blob_location(&blob_id(b)).unwrap().map(|l| l.pack);
        assert_eq!(pack_of(b'x').as_deref(), Some("x"));
        assert_eq!(pack_of(b'z').as_deref(), Some("z"));
        let plan: String = c
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM blobs WHERE pack = 'x'",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("blobs_pack"), "{plan}");
    }

    /// A backup worker's lookups share a read snapshot, which neither keeps
    /// a writer waiting (the write below would fail after the busy timeout)
    /// nor lasts: a blob recorded while it is open is found once it is
    /// renewed, at most [`SNAPSHOT_LOOKUPS`] lookups later.
    #[test]
    fn dedup_lookups_share_a_snapshot_that_neither_blocks_writers_nor_lasts() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("c.db")).unwrap();
        read_indexes(&mut c, "a", &[("i1", &["x"])]);
        let lookup = c.dedup_lookup(&["a".to_string()]).unwrap();
        let pack_of = |b: u8| lookup.lookup(&blob_id(b)).unwrap().map(|l| l.pack);
        assert_eq!(pack_of(b'x').as_deref(), Some("x"));
        read_indexes(&mut c, "a", &[("i2", &["y"])]);
        assert!((0..=SNAPSHOT_LOOKUPS).any(|_| pack_of(b'y').as_deref() == Some("y")));
        // Only on the targets asked for.
        let elsewhere = c.dedup_lookup(&["a".to_string(), "b".to_string()]).unwrap();
        assert!(elsewhere.lookup(&blob_id(b'x')).unwrap().is_none());
    }

    /// Blob locations are written [`BATCH`] a statement: every blob of
    /// several batches is recorded, and a blob in two packs of one call
    /// (two statements or one) keeps the first pack unless the second is on
    /// more targets, as it did a statement a blob.
    #[test]
    fn batched_blob_locations_keep_the_first_pack_unless_another_is_on_more_targets() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("c.db")).unwrap();
        let entry = |k: u32, offset: u32| PackEntry {
            id: *blake3::hash(&k.to_le_bytes()).as_bytes(),
            flags: 0,
            raw_len: 10,
            stored_len: 10,
            offset,
        };
        let pack = |name: &str, ks: std::ops::Range<u32>| IndexedPack {
            name: name.repeat(64 / name.len()),
            entries: ks.map(|k| entry(k, k)).collect(),
        };
        // 300 blobs in "a", the last 100 again in "b" (same targets).
        let (a, b) = (pack("a", 0..300), pack("b", 200..300));
        c.add_indexes(&[("i1", &[a.clone(), b.clone()])], &["t1".into()])
            .unwrap();
        for k in [0, 127, 128, 255, 299] {
            let at = c.blob_location(&entry(k, 0).id).unwrap().unwrap();
            assert_eq!(
                (at.pack.as_str(), at.offset),
                (a.name.as_str(), k),
                "blob {k}"
            );
        }
        // "c" holds the same 100 and is on both targets: they move to it.
        c.add_indexes(&[("i2", std::slice::from_ref(&a))], &["t2".into()])
            .unwrap();
        let c_pack = pack("c", 200..300);
        c.add_indexes(
            &[("i3", std::slice::from_ref(&c_pack))],
            &["t1".into(), "t2".into()],
        )
        .unwrap();
        c.add_indexes(&[("i4", std::slice::from_ref(&c_pack))], &["t3".into()])
            .unwrap();
        for (k, want) in [(199, &a.name), (200, &c_pack.name), (299, &c_pack.name)] {
            let at = c.blob_location(&entry(k, 0).id).unwrap().unwrap();
            assert_eq!(&at.pack, want, "blob {k}");
        }
        let n: i64 = c
            .conn
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 300);
    }

    #[test]
    fn forgetting_pruned_index_objects_drops_only_packs_no_other_object_lists() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("c.db")).unwrap();
        let id = blob_id;
        // Target a: i1 lists packs x and y, i2 lists z. Target b holds y too.
        read_indexes(&mut c, "a", &[("i1", &["x", "y"]), ("i2", &["z"])]);
        read_indexes(&mut c, "b", &[("j1", &["y"])]);
        // A prune on a rewrote i1 as i3 (y kept, x deleted) and kept i2.
        read_indexes(&mut c, "a", &[("i3", &["y"])]);
        assert!(c.knows_index_packs("a", &["i1".into()]).unwrap());
        c.forget_index_objects("a", &["i1".into()]).unwrap();
        assert_eq!(c.index_objects_of("a").unwrap().len(), 2);
        assert!(!c.has_pack_on("x", "a").unwrap());
        assert!(
            c.blob_location(&id(b'x')).unwrap().is_none(),
            "x is deleted everywhere"
        );
        assert!(c.has_pack_on("y", "a").unwrap() && c.has_pack_on("z", "a").unwrap());
        assert!(c.blob_location(&id(b'y')).unwrap().is_some());
        // i2 goes, and with it z on a; y's location stays (on b too).
        c.forget_index_objects("a", &["i2".into(), "i3".into()])
            .unwrap();
        assert!(!c.has_pack_on("z", "a").unwrap() && !c.has_pack_on("y", "a").unwrap());
        assert!(c.blob_location(&id(b'z')).unwrap().is_none());
        assert!(
            c.blob_location(&id(b'y')).unwrap().is_some(),
            "y is still on b"
        );
        assert!(c.index_objects_of("a").unwrap().is_empty());
        // An object read before packs were recorded is not known.
        c.conn
            .execute("UPDATE index_objects SET packs_known = 0", [])
            .unwrap();
        assert!(!c.knows_index_packs("b", &["j1".into()]).unwrap());
    }

    /// The old layout's details of a tenant backup: tenants, artifacts and
    /// row counts in one JSON text.
    fn old_details() -> serde_json::Value {
        serde_json::json!({
            "tenants": ["acme", "globex"],
            "engine": {"mode": "tenants", "database": "app", "tenant_spec": {"table": "tenants"},
                       "rows": {"acme": {"public.orders": 3, "public.items": 0}, "globex": {"public.orders": 5}}},
            "artifacts": [
                {"name": "tenant-acme", "format": "stream", "size": 10, "blake3": "ab", "blobs": 1},
                {"name": "tenant-globex", "format": "stream", "size": 20, "blake3": "cd", "blobs": 2},
            ],
        })
    }

    fn tenant_ids(c: &Catalog, tenant: &str) -> Vec<String> {
        let f = BackupFilter {
            tenant: Some(tenant.into()),
            ..Default::default()
        };
        c.list(&f).unwrap().into_iter().map(|b| b.id).collect()
    }

    /// Issue 14: a catalog whose details hold every tenant's artifacts and
    /// row counts (schema 7) is migrated on open: they become rows, the
    /// details keep the per-backup facts, and `list --tenant` finds the
    /// backup by the rows.
    #[test]
    fn old_details_move_into_rows_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..7] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 7).unwrap();
            let t = "2026-01-01T00:00:00.000Z";
            for (id, details) in [
                ("tenants1", Some(old_details().to_string())),
                ("full1", Some(r#"{"engine":{"mode":"full","tenant_spec":{"table":"tenants"},"row_counts":{"public.t":7}}}"#.into())),
                ("files1", Some(r#"{"tenants":[],"engine":{},"artifacts":[{"name":"files.tar","format":"tar","size":1,"blake3":"ef","blobs":1}]}"#.into())),
                ("odd1", Some("not json".to_string())),
                ("failed1", None),
            ] {
                conn.execute(
                    "INSERT INTO backups (id, source, kind, status, host, started_at, details) VALUES (?1, 'db', 'postgres', 'completed', 'h', ?2, ?3)",
                    params![id, t, details],
                )
                .unwrap();
            }
        }
        let mut c = Catalog::open(&path).unwrap();
        assert_eq!(c.tenants_of("tenants1").unwrap(), ["acme", "globex"]);
        let artifacts = c.artifacts_of("tenants1").unwrap();
        assert_eq!(
            artifacts[1],
            ArtifactRow {
                name: "tenant-globex".into(),
                format: "stream".into(),
                size: 20,
                blake3: "cd".into(),
                blobs: 2
            }
        );
        assert_eq!(
            c.tenant_rows_of("tenants1").unwrap(),
            [
                ("acme".to_string(), "public.items".to_string(), 0),
                ("acme".into(), "public.orders".into(), 3),
                ("globex".into(), "public.orders".into(), 5),
            ]
        );
        assert_eq!(
            c.details("tenants1").unwrap().unwrap(),
            serde_json::json!({"engine": {"mode": "tenants", "database": "app", "tenant_spec": {"table": "tenants"}}})
        );
        assert_eq!(c.artifact_formats("files1").unwrap(), ["tar"]);
        assert_eq!(
            c.details("full1").unwrap().unwrap()["engine"]["row_counts"]["public.t"],
            7
        );
        // Details that were not JSON are left as they were.
        let odd: String = c
            .conn
            .query_row("SELECT details FROM backups WHERE id = 'odd1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(odd, "not json");
        c.conn
            .execute("DELETE FROM backups WHERE id = 'odd1'", [])
            .unwrap();
        // The tenant's export and the tenant-aware full dump.
        assert_eq!(tenant_ids(&c, "acme"), ["full1", "tenants1"]);
        assert_eq!(tenant_ids(&c, "initech"), ["full1"]);
        let plan: String = c
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT backup FROM backup_tenants WHERE tenant = 1",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("backup_tenants_tenant"), "{plan}");
        // A backup's rows go with it.
        let key = backup_key(&c, "tenants1");
        c.conn
            .execute(
                "INSERT INTO backup_targets VALUES ('tenants1', 'local')",
                [],
            )
            .unwrap();
        assert_eq!(rows_of_key(&c, key), [1, 2, 2, 2]);
        c.forget_backup_on("tenants1", "local").unwrap();
        assert_eq!(rows_of_key(&c, key), [0, 0, 0, 0]);
    }

    /// Backup `id`'s key in its contents rows (`backup_keys.num`).
    fn backup_key(c: &Catalog, id: &str) -> i64 {
        c.conn
            .query_row(
                "SELECT num FROM backup_keys WHERE backup_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// How many rows of `backup_keys`, `backup_artifacts`, `backup_tenants`
    /// and `backup_tables` hold backup key `key`.
    fn rows_of_key(c: &Catalog, key: i64) -> Vec<u64> {
        [
            ("backup_keys", "num"),
            ("backup_artifacts", "backup"),
            ("backup_tenants", "backup"),
            ("backup_tables", "backup"),
        ]
        .iter()
        .map(|(table, column)| {
            c.conn
                .query_row(
                    &format!("SELECT count(*) FROM {table} WHERE {column} = ?1"),
                    [key],
                    |r| r.get(0),
                )
                .unwrap()
        })
        .collect()
    }

    /// A rebuild's manifest body fills the same rows (replacing what the
    /// catalog had), and a backup recorded without a body keeps them.
    #[test]
    fn a_manifest_body_fills_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("c.db")).unwrap();
        let d = old_details();
        let body: BodyContents = crate::repo::manifest::Body {
            id: "b1".into(),
            note: Some("n".into()),
            tenants: vec!["acme".into(), "globex".into()],
            engine: d["engine"].clone(),
            artifacts: d["artifacts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| crate::repo::manifest::Artifact {
                    name: a["name"].as_str().unwrap().into(),
                    format: "stream".into(),
                    size: a["size"].as_u64().unwrap(),
                    blake3: a["blake3"].as_str().unwrap().into(),
                    blobs: vec!["x".into(); a["blobs"].as_u64().unwrap() as usize],
                })
                .collect(),
        }
        .into();
        let header = crate::repo::manifest::Header {
            version: 2,
            id: "b1".into(),
            source: "db".into(),
            kind: "postgres".into(),
            host: "h".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            finished_at: "2026-01-01T00:00:01.000Z".into(),
            duration_ms: 1000,
            tags: Vec::new(),
            bytes: 30,
            stored_bytes: 30,
            packs: Vec::new(),
            blobs: Vec::new(),
            wal_start: None,
        };
        let targets = ["local".to_string()];
        for _ in 0..2 {
            c.upsert_completed_many(&[Completed {
                header: &header,
                body: Some(&body),
                targets: &targets,
            }])
            .unwrap();
        }
        c.upsert_completed(&header, &["s3".into()]).unwrap();
        assert_eq!(c.tenants_of("b1").unwrap(), ["acme", "globex"]);
        assert_eq!(c.artifacts_of("b1").unwrap()[1].blobs, 2);
        assert_eq!(c.tenant_rows_of("b1").unwrap().len(), 3);
        assert_eq!(c.get("b1").unwrap().unwrap().note.as_deref(), Some("n"));
        assert!(c.details("b1").unwrap().unwrap()["engine"]
            .get("rows")
            .is_none());
        assert_eq!(tenant_ids(&c, "globex"), ["b1"]);
    }

    /// Records a completed tenant backup `id` of `tenants` tenants, each
    /// with its artifact and its rows in three tables (as
    /// `scripts/bench-tenants.sh` makes them).
    fn tenant_backup(c: &mut Catalog, id: &str, tenants: usize) {
        let t = "2026-01-01T00:00:00.000Z";
        c.insert_running(id, "db", "postgres", "h", t, &[], None)
            .unwrap();
        let tables = ["public.customers", "public.orders", "public.events"];
        let mut contents = |w: &mut ContentsWriter<'_>| {
            w.tables(&tables.map(String::from))?;
            for i in 0..tenants {
                let tenant = format!("tenant-{:05}", i + 1);
                let hash = blake3::hash(format!("{id}/{tenant}").as_bytes()).to_hex();
                w.artifact(
                    i,
                    &format!("tenant-{tenant}"),
                    "stream",
                    1000 + i as u64 * 37,
                    &hash,
                    1,
                )?;
                let rows: Vec<Option<u64>> = (0..tables.len() as u64)
                    .map(|k| Some((600_000 / 6 * (k + 1)) / (i as u64 + 1)))
                    .collect();
                w.tenant(i, &tenant, Some(&rows))?;
            }
            Ok(())
        };
        let details = r#"{"engine":{"mode":"tenants","database":"app"}}"#;
        c.complete(id, t, 1, 1, 1, details, &["local".into()], &mut contents)
            .unwrap();
    }

    /// The catalog's pages in use, in bytes.
    fn used_bytes(c: &Catalog) -> u64 {
        c.conn
            .query_row(
                "SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count()),
                        (SELECT page_size FROM pragma_page_size())",
                [],
                |r| Ok(r.get::<_, u64>(0)? * r.get::<_, u64>(1)?),
            )
            .unwrap()
    }

    /// A name's id is the same whether it is new or known, repeated
    /// within one batch or not, and whatever its neighbours are.
    #[test]
    fn names_keep_their_ids_whatever_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("c.db")).unwrap();
        c.insert_running(
            "b1",
            "db",
            "postgres",
            "h",
            "2026-01-01T00:00:00.000Z",
            &[],
            None,
        )
        .unwrap();
        let tx = c.conn.transaction().unwrap();
        let mut w = ContentsWriter::new(&tx, "b1").unwrap();
        let first = w.name_ids(&["a", "b", "a"]).unwrap();
        assert_eq!(first[0], first[2]);
        assert_ne!(first[0], first[1]);
        // Known and new mixed, in another order.
        let second = w.name_ids(&["c", "b", "a", "d", "c"]).unwrap();
        assert_eq!((second[1], second[2]), (first[1], first[0]));
        assert_eq!(second[0], second[4]);
        let mut ids = vec![first[0], first[1], second[0], second[3]];
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4);
        assert_eq!(w.repeated_name("d").unwrap(), second[3]);
        drop(w);
        let n: i64 = tx
            .query_row("SELECT count(*) FROM names", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 4);
    }

    /// Issue 14: a year of nightly backups of 10,000 tenants must not cost
    /// gigabytes of catalog. What the catalog grows by, per tenant and
    /// backup, once the names are known (the second and third backups of
    /// the same tenants), pages as they are written (no VACUUM): 409 bytes
    /// with schema 8, 144 with 9, 100 with 10 (three tables).
    #[test]
    fn a_tenant_costs_little_catalog_per_backup() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("c.db")).unwrap();
        let tenants = 2000;
        tenant_backup(&mut c, "0123456789abcdef", tenants);
        let first = used_bytes(&c);
        tenant_backup(&mut c, "1123456789abcdef", tenants);
        tenant_backup(&mut c, "2123456789abcdef", tenants);
        let per_tenant = (used_bytes(&c) - first) / (2 * tenants as u64);
        eprintln!("catalog bytes per tenant per backup: {per_tenant}");
        assert!(per_tenant <= 110, "{per_tenant} bytes a tenant");
        // Deleting a backup deletes its rows, and only its.
        let (second, third) = (
            backup_key(&c, "1123456789abcdef"),
            backup_key(&c, "2123456789abcdef"),
        );
        assert_eq!(rows_of_key(&c, second), [1, 2000, 2000, 3]);
        c.forget_backup_on("1123456789abcdef", "local").unwrap();
        assert_eq!(rows_of_key(&c, second), [0, 0, 0, 0]);
        assert_eq!(rows_of_key(&c, third), [1, 2000, 2000, 3]);
        // Every row of every batch (2,000 is not a multiple of BATCH), in
        // order, with its own name.
        let tenants = c.tenants_of("2123456789abcdef").unwrap();
        let artifacts = c.artifacts_of("2123456789abcdef").unwrap();
        assert_eq!((tenants.len(), artifacts.len()), (2000, 2000));
        for (i, (t, a)) in tenants.iter().zip(&artifacts).enumerate() {
            assert_eq!(t, &format!("tenant-{:05}", i + 1));
            assert_eq!(a.name, format!("tenant-{t}"));
            assert_eq!(a.size, 1000 + i as u64 * 37);
        }
        // A rebuild starts from no names.
        c.clear_repository_cache().unwrap();
        let names: u64 = c
            .conn
            .query_row("SELECT count(*) FROM names", [], |r| r.get(0))
            .unwrap();
        assert_eq!(names, 0);
    }

    /// Issue 14: a schema-8 catalog (a backup's rows keyed by its text id,
    /// names and digests as text) is migrated on open to the same answers.
    #[test]
    fn schema_8_rows_move_to_keys_and_names_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let digest = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..8] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 8).unwrap();
            let t = "2026-01-01T00:00:00.000Z";
            for (id, details) in [
                (
                    "tenants8",
                    r#"{"engine":{"mode":"tenants","tenant_spec":{"table":"tenants"}}}"#,
                ),
                (
                    "full8",
                    r#"{"engine":{"mode":"full","tenant_spec":{"table":"tenants"}}}"#,
                ),
                ("files8", r#"{"engine":{}}"#),
                ("plain8", r#"{"engine":{"mode":"full"}}"#),
            ] {
                conn.execute(
                    "INSERT INTO backups (id, source, kind, status, host, started_at, details) VALUES (?1, 'db', 'postgres', 'completed', 'h', ?2, ?3)",
                    params![id, t, details],
                )
                .unwrap();
            }
            conn.execute_batch(&format!(
                "INSERT INTO backup_artifacts VALUES ('tenants8', 0, 'tenant-globex', 'stream', 20, '{digest}', 2),
                                                     ('tenants8', 1, 'tenant-acme', 'stream', 10, 'AB', 1),
                                                     ('files8', 0, 'files.tar', 'tar', 1, '', 0);
                 INSERT INTO backup_tenants VALUES ('tenants8', 0, 'globex'), ('tenants8', 1, 'acme');
                 INSERT INTO backup_tenant_rows VALUES ('tenants8', 0, 'public.orders', 5), ('tenants8', 1, 'public.orders', 3),
                                                       ('tenants8', 1, 'public.items', 0);"
            ))
            .unwrap();
        }
        let mut c = Catalog::open(&path).unwrap();
        assert_eq!(c.tenants_of("tenants8").unwrap(), ["globex", "acme"]);
        assert_eq!(
            c.artifacts_of("tenants8").unwrap(),
            [
                ArtifactRow {
                    name: "tenant-globex".into(),
                    format: "stream".into(),
                    size: 20,
                    blake3: digest.into(),
                    blobs: 2
                },
                ArtifactRow {
                    name: "tenant-acme".into(),
                    format: "stream".into(),
                    size: 10,
                    blake3: "AB".into(),
                    blobs: 1
                }
            ]
        );
        assert_eq!(c.artifacts_of("files8").unwrap()[0].blake3, "");
        assert_eq!(c.artifact_formats("files8").unwrap(), ["tar"]);
        assert_eq!(
            c.tenant_rows_of("tenants8").unwrap(),
            [
                ("globex".to_string(), "public.orders".to_string(), 5),
                ("acme".into(), "public.items".into(), 0),
                ("acme".into(), "public.orders".into(), 3),
            ]
        );
        assert_eq!(tenant_ids(&c, "acme"), ["full8", "tenants8"]);
        assert_eq!(tenant_ids(&c, "initech"), ["full8"]);
        let blob: String = c
            .conn
            .query_row(
                "SELECT typeof(blake3) FROM backup_artifacts WHERE seq = 0 AND blobs = 2",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(blob, "blob");
        // Rows written after it: table names come back sorted whatever
        // their ids, the digest as its hex.
        c.insert_running(
            "new9",
            "db",
            "postgres",
            "h",
            "2026-01-02T00:00:00.000Z",
            &[],
            None,
        )
        .unwrap();
        let mut contents = |w: &mut ContentsWriter<'_>| {
            w.artifact(0, "tenant-acme", "stream", 7, digest, 1)?;
            w.tables(&["z.last".into(), "public.orders".into(), "a.first".into()])?;
            w.tenant(0, "acme", Some(&[Some(1), Some(2), Some(3)]))?;
            Ok(())
        };
        c.complete(
            "new9",
            "2026-01-02T00:00:01.000Z",
            1,
            1,
            1,
            "{}",
            &[],
            &mut contents,
        )
        .unwrap();
        assert_eq!(c.artifacts_of("new9").unwrap()[0].blake3, digest);
        let tables: Vec<String> = c
            .tenant_rows_of("new9")
            .unwrap()
            .into_iter()
            .map(|(_, t, _)| t)
            .collect();
        assert_eq!(tables, ["a.first", "public.orders", "z.last"]);
        assert_eq!(tenant_ids(&c, "acme"), ["new9", "full8", "tenants8"]);
    }

    #[test]
    fn statistics_for_health_and_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("c.db")).unwrap();
        let t = "2026-01-01T00:00:00.000Z";
        for (id, source) in [("a1", "db"), ("a2", "db"), ("b1", "files")] {
            c.insert_running(id, source, "files", "h", t, &[], None)
                .unwrap();
        }
        let none = "{}";
        let mut nothing = |_: &mut ContentsWriter<'_>| Ok(());
        c.complete("a1", t, 1, 100, 40, none, &["local".into()], &mut nothing)
            .unwrap();
        c.complete(
            "b1",
            t,
            1,
            10,
            5,
            none,
            &["local".into(), "s3".into()],
            &mut nothing,
        )
        .unwrap();
        c.fail("a2", t, 1, 0, "boom").unwrap();
        assert_eq!(c.backup_sources().unwrap(), ["db", "files"]);
        let mut by_status = c.count_by_status().unwrap();
        by_status.sort();
        assert_eq!(
            by_status,
            [("completed".to_string(), 2), ("failed".to_string(), 1)]
        );
        assert_eq!(
            c.count_by_source_status().unwrap(),
            [
                ("db".to_string(), "completed".to_string(), 1),
                ("db".to_string(), "failed".to_string(), 1),
                ("files".to_string(), "completed".to_string(), 1),
            ]
        );
        assert_eq!(c.outcomes_since(t).unwrap(), (2, 1));
        assert_eq!(
            c.outcomes_since("2027-01-01T00:00:00.000Z").unwrap(),
            (0, 0)
        );
        assert_eq!(c.completed_bytes().unwrap(), (110, 45));
        assert_eq!(c.completed_count().unwrap(), 2);
        assert_eq!(
            c.stored_bytes_by_source().unwrap(),
            [("db".to_string(), 40), ("files".to_string(), 5)]
        );
        let mut by_target = c.completed_backups_by_target().unwrap();
        by_target.sort();
        assert_eq!(by_target, [("local".to_string(), 2), ("s3".to_string(), 1)]);
        assert!(c.pack_usage_by_target().unwrap().is_empty());
    }
}
