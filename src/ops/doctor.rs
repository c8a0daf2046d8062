//! `vaultctl doctor`: the setup checks an operator runs once after
//! installing (and whenever something changed), each with pass, warn or
//! fail and the exact fix. Exit status like `status --check`: 0 all pass,
//! 1 a warning, 2 a failure ([`Report::status`]).
//!
//! What is checked: the keys (identity mode and owner, dedup key), every
//! target (reachable with its credentials, the storage's clock against
//! ours, a probe object written, read, listed and deleted under a temporary
//! prefix, the write features vaultctl relies on), every PostgreSQL source
//! (connection, role attributes, pg_dump version; for physical sources
//! wal_level, archive_mode, archive_command, the archiver's failures and the
//! replication privilege), schedules, and free space. The config itself is
//! checked by loading it (unknown keys are errors there), before this
//! module runs: see [`config_failed`].

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;

use crate::config::{Config, Location, Origin, PhysicalSpec, PostgresSpec, SourceSpec, Target};
use crate::engine::postgres::{self as pg, query, ConnInfo, USER_TABLES};
use crate::error::{CheckStatus, Failure};
use crate::storage::{CreateOutcome, Store};

/// Clock skew against a storage server beyond which S3 signatures fail
/// (AWS rejects requests more than 15 minutes off; others are stricter):
/// a failure.
pub const SKEW_FAIL_SECS: i64 = 5 * 60;
/// Skew worth a warning: ages and lock leases start to disagree.
pub const SKEW_WARN_SECS: i64 = 30;
/// Free space below which a directory vaultctl writes to fails the check.
pub const SPACE_FAIL_BYTES: u64 = 64 * 1024 * 1024;
/// Free space below which it warns.
pub const SPACE_WARN_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked: `config`, `keys`, `target s3`, `source db`, `schedule`, `space`.
    pub scope: String,
    /// The check's name, e.g. `clock skew`.
    pub name: String,
    pub status: Outcome,
    /// What was found.
    pub detail: String,
    /// The exact fix (warnings and failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check, in the order they ran.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    fn add(
        &mut self,
        scope: &str,
        name: &str,
        status: Outcome,
        detail: impl Into<String>,
        fix: Option<String>,
    ) {
        self.checks.push(Check {
            scope: scope.to_string(),
            name: name.to_string(),
            status,
            detail: detail.into(),
            fix,
        });
    }

    fn pass(&mut self, scope: &str, name: &str, detail: impl Into<String>) {
        self.add(scope, name, Outcome::Pass, detail, None);
    }

    fn warn(&mut self, scope: &str, name: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.add(scope, name, Outcome::Warn, detail, Some(fix.into()));
    }

    fn fail(&mut self, scope: &str, name: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.add(scope, name, Outcome::Fail, detail, Some(fix.into()));
    }

    /// A failed step: its error's text, and the error's remedy as the fix.
    fn error(
        &mut self,
        scope: &str,
        name: &str,
        status: Outcome,
        e: &anyhow::Error,
        fallback_fix: &str,
    ) {
        let (detail, fix) = describe(e);
        self.add(
            scope,
            name,
            status,
            detail,
            Some(fix.unwrap_or_else(|| fallback_fix.to_string())),
        );
    }

    /// The worst outcome.
    pub fn worst(&self) -> Outcome {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Outcome::Pass)
    }

    /// The exit status: 0 all pass, 1 a warning, 2 a failure.
    pub fn status(&self) -> CheckStatus {
        match self.worst() {
            Outcome::Pass => CheckStatus::Ok,
            Outcome::Warn => CheckStatus::Warning,
            Outcome::Fail => CheckStatus::Critical,
        }
    }
}

/// An error's text without its remedy, and the remedy.
fn describe(e: &anyhow::Error) -> (String, Option<String>) {
    match e.chain().find_map(|c| c.downcast_ref::<Failure>()) {
        Some(f) => (crate::redact::text(&f.what), f.remedy.clone()),
        None => (crate::error::paragraph(e), None),
    }
}

/// The report when the config does not load (it does not parse, has an
/// unknown key, or an invalid value): nothing else can be checked.
pub fn config_failed(e: &anyhow::Error) -> Report {
    let mut r = Report::default();
    r.error(
        "config",
        "parses",
        Outcome::Fail,
        e,
        "Fix the config file; config.example.toml lists every key.",
    );
    r
}

/// Runs every check against `config`. `binary`: this executable, for the
/// archive_command a physical source should have.
pub fn run(config: &Config, binary: &Path) -> Report {
    let mut r = Report::default();
    r.pass(
        "config",
        "parses",
        match &config.origin {
            Origin::File(p) => format!("{} parses and every key is known", p.display()),
            Origin::Embedded => {
                "no config file: the embedded default (one local repository)".to_string()
            }
        },
    );
    keys(config, &mut r);
    for t in &config.targets {
        target(config, t, &mut r);
    }
    for s in &config.sources {
        let scope = format!("source {}", s.name);
        match &s.spec {
            SourceSpec::Postgres(p) => postgres(&scope, p, &mut r),
            SourceSpec::PostgresPhysical(p) => physical(&scope, config, p, &s.name, binary, &mut r),
            _ => {}
        }
    }
    schedules(config, &mut r);
    space(config, &mut r);
    sandboxes(config, &mut r);
    r
}

/// Sandbox clusters left by a killed tenant point-in-time restore, in the
/// default work directory or any `--work-dir` the restore log names (the
/// catalog is only read, and only when it exists).
fn sandboxes(config: &Config, r: &mut Report) {
    let mut dirs = vec![config.sandbox_dir()];
    if config.catalog.exists() {
        match crate::catalog::Catalog::open(&config.catalog)
            .and_then(|c| super::health::sandbox_dirs(config, &c))
        {
            Ok(logged) => dirs = logged,
            Err(e) => r.warn(
                "space",
                "stale sandbox",
                format!(
                    "cannot read the work directories of past tenant restores from the catalog {}: {e:#}",
                    config.catalog.display()
                ),
                "Check the catalog (vaultctl status); only the default work directory was searched for stale sandboxes.",
            ),
        }
    }
    for s in crate::engine::postgres::sandbox::stale_in(&dirs) {
        r.warn(
            "space",
            "stale sandbox",
            format!(
                "stale sandbox {} of a killed tenant restore (vaultctl pid {}{})",
                s.path.display(),
                s.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                if s.running { ", its server still runs" } else { "" }
            ),
            "The next tenant point-in-time restore stops and removes it; or stop its server (pg_ctl -D DIR/data -m immediate stop) and delete the directory.",
        );
    }
}

/// Checks a secret file's mode and owner: 0600 (or stricter), owned by us.
fn secret_file(scope: &str, name: &str, path: &Path, what: &str, r: &mut Report) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            r.fail(
                scope,
                name,
                format!("cannot read the {what} {}: {e}", path.display()),
                "Create it (`vaultctl key generate` / `vaultctl init`) or fix the path in the config; this user must be able to read it.",
            );
            return;
        }
    };
    let mode = meta.mode() & 0o777;
    let euid = rustix::process::geteuid().as_raw();
    if mode & 0o077 != 0 {
        r.fail(
            scope,
            name,
            format!(
                "the {what} {} has mode {mode:04o}: other users can read it",
                path.display()
            ),
            format!("chmod 600 {}", path.display()),
        );
    } else if meta.uid() != euid {
        r.warn(
            scope,
            name,
            format!(
                "the {what} {} is owned by uid {}, not by this user (uid {euid})",
                path.display(),
                meta.uid()
            ),
            format!(
                "chown $(id -un) {} (or run vaultctl as its owner)",
                path.display()
            ),
        );
    } else {
        r.pass(
            scope,
            name,
            format!("{} is mode {mode:04o}, owned by this user", path.display()),
        );
    }
}

fn keys(config: &Config, r: &mut Report) {
    match &config.keys.identity_file {
        Some(p) => secret_file("keys", "identity file", p, "identity file", r),
        None => {
            // A write-only host: an identity lying around defeats the point.
            let default = crate::config::config_dir().join("identity.txt");
            if default.exists() {
                r.warn(
                    "keys",
                    "identity file",
                    format!("this host is configured write-only (no keys.identity_file), yet an identity sits at {}: whoever takes this host can read every backup", default.display()),
                    format!("Move {} to the hosts that restore (or offline storage) and delete it here.", default.display()),
                );
            } else {
                r.pass(
                    "keys",
                    "identity file",
                    "none configured (a write-only host: it can back up, not read backups)",
                );
            }
        }
    }
    secret_file(
        "keys",
        "dedup key",
        &config.keys.dedup_key_file,
        "dedup key",
        r,
    );
}

/// The probe: write, read, list, conditional create, delete, under a
/// temporary prefix inside the repository; the storage's clock from the
/// written object's modification time.
fn target(config: &Config, t: &Target, r: &mut Report) {
    let scope = format!("target {}", t.name);
    let scope = scope.as_str();
    let store = match t.store_spec().and_then(|s| Store::open(&s, false)) {
        Ok(s) => s,
        Err(e) => {
            r.error(
                scope,
                "reachable",
                Outcome::Fail,
                &e,
                "Check the target's url and credentials in the config.",
            );
            return;
        }
    };
    let dir = format!(
        "doctor-probe/{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let probe = format!("{dir}/probe");
    let data = Bytes::from_static(b"vaultctl doctor probe\n");
    if let Err(e) = store.put(&probe, data.clone()) {
        r.error(
            scope,
            "reachable",
            Outcome::Fail,
            &e,
            "Check the target's endpoint, bucket and credentials.",
        );
        return;
    }
    r.pass(
        scope,
        "reachable",
        format!(
            "{} accepted a write with the configured credentials",
            store.display
        ),
    );
    if matches!(t.location, Location::S3 { .. }) {
        clock_skew(config, &store, &probe, scope, r);
    }
    read_back_and_list(&store, &dir, &probe, &data, scope, r);
    let cond = conditional_create(&store, &dir, &data, scope, r);
    r.pass(
        scope,
        "upload shape",
        format!(
            "every object is written with one PUT of at most {} MiB (no multipart uploads, so no equal-part-size rule applies) and without x-amz-checksum-* headers (providers that reject them, such as B2, accept vaultctl's writes)",
            config.pack_size.div_ceil(1024 * 1024) + 1
        ),
    );
    delete_probe(&store, t, &dir, &[probe, cond], scope, r);
}

/// S3: this host's clock against the storage's, by the probe object's
/// Last-Modified (S3 rejects signatures from clocks minutes off).
fn clock_skew(config: &Config, store: &Store, probe: &str, scope: &str, r: &mut Report) {
    let now = config.clock.now();
    match store.modified_ms(probe) {
        Ok(Some(ms)) => {
            let skew = (now.unix_timestamp() * 1000 - ms) / 1000;
            let detail = format!(
                "this host's clock is {}s {} the storage's (by the probe object's Last-Modified)",
                skew.abs(),
                if skew >= 0 { "ahead of" } else { "behind" }
            );
            let fix = "Synchronize this host's clock (systemctl enable --now systemd-timesyncd, or chrony); S3 rejects signatures from clocks more than a few minutes off.";
            if skew.abs() > SKEW_FAIL_SECS {
                r.fail(scope, "clock skew", detail, fix);
            } else if skew.abs() > SKEW_WARN_SECS {
                r.warn(scope, "clock skew", detail, fix);
            } else {
                r.pass(scope, "clock skew", detail);
            }
        }
        Ok(None) => r.fail(
            scope,
            "clock skew",
            "the probe object just written is not there",
            "The endpoint does not keep what it accepts: check that it is the right bucket and provider.",
        ),
        Err(e) => r.error(scope, "clock skew", Outcome::Warn, &e, "Grant s3:GetObject on the bucket."),
    }
}

/// The probe object reads back intact and is listed at once.
fn read_back_and_list(
    store: &Store,
    dir: &str,
    probe: &str,
    data: &Bytes,
    scope: &str,
    r: &mut Report,
) {
    match store.get(probe) {
        Ok(Some(got)) if got == *data => r.pass(scope, "read back", "the probe object reads back intact"),
        Ok(Some(_)) => r.fail(scope, "read back", "the probe object reads back different", "The endpoint alters objects: check the provider settings (a proxy or transformation rule)."),
        Ok(None) => r.fail(scope, "read back", "the probe object is gone after its write", "Check the bucket and endpoint."),
        Err(e) => r.error(scope, "read back", Outcome::Fail, &e, "Grant s3:GetObject (restore and verify need it)."),
    }
    match store.list(dir) {
        Ok(l) if l.iter().any(|(n, _)| *n == probe) => r.pass(scope, "list", "the probe object is listed"),
        Ok(_) => r.fail(scope, "list", "the probe object is not listed after its write", "The provider's listings are not read-after-write consistent; vaultctl needs that (prune and sync list what exists)."),
        Err(e) => r.error(scope, "list", Outcome::Fail, &e, "Grant s3:ListBucket on the bucket."),
    }
}

/// Whether If-None-Match: * is honoured (vaultctl does not rely on it);
/// returns the name of the object it wrote.
fn conditional_create(
    store: &Store,
    dir: &str,
    data: &Bytes,
    scope: &str,
    r: &mut Report,
) -> String {
    let cond = format!("{dir}/conditional");
    let first = store.put_create(&cond, data.clone());
    let second = first
        .as_ref()
        .ok()
        .map(|_| store.put_create(&cond, data.clone()));
    match (first, second) {
        (Ok(CreateOutcome::Created), Some(Ok(CreateOutcome::Exists))) => {
            r.pass(scope, "conditional create", "If-None-Match: * is honoured (a second create of the same name was refused)")
        }
        (Ok(CreateOutcome::Created), Some(Ok(CreateOutcome::Created))) => r.pass(
            scope,
            "conditional create",
            "If-None-Match: * is ignored (a second create overwrote the first); vaultctl does not rely on it: archived WAL is checked with HEAD before its write, and repository writers hold locks",
        ),
        (Ok(CreateOutcome::Unsupported(e)), _) => r.pass(
            scope,
            "conditional create",
            format!("conditional writes are not supported ({e}); vaultctl does not rely on them"),
        ),
        (Err(e), _) | (_, Some(Err(e))) => r.error(scope, "conditional create", Outcome::Warn, &e, "The provider rejects If-None-Match: *; vaultctl does not need it, but report the error if it persists."),
        (a, b) => r.warn(scope, "conditional create", format!("unexpected outcome {a:?} then {b:?}"), "Report this to the vaultctl maintainers with the provider's name."),
    }
    cond
}

/// Deletes the probe objects: a refusal is a warning (backups need no
/// delete permission; prune defers what it cannot delete).
fn delete_probe(
    store: &Store,
    t: &Target,
    dir: &str,
    objects: &[String],
    scope: &str,
    r: &mut Report,
) {
    let deleted = store.delete_many(objects);
    if let (Ok(()), Location::Local { path }) = (&deleted, &t.location) {
        // Local deletes leave the probe's (now empty) directories.
        let _ = std::fs::remove_dir(path.join(dir));
        let _ = std::fs::remove_dir(path.join("doctor-probe"));
    }
    match deleted {
        Ok(()) => r.pass(
            scope,
            "delete",
            "the probe objects were deleted (prune can delete what retention drops)",
        ),
        Err(e) => {
            let (detail, _) = describe(&e);
            r.warn(
                scope,
                "delete",
                format!("deleting the probe objects failed: {detail}. Backups do not need delete permission, but prune does (it defers what it cannot delete)"),
                format!("If this is deliberate (Object Lock or append-only credentials), run prune from a host with delete permission; the probe objects under {dir}/ stay until then. Otherwise grant s3:DeleteObject."),
            );
        }
    }
}

fn postgres(scope: &str, spec: &PostgresSpec, r: &mut Report) {
    let client =
        match ConnInfo::new(&spec.url, spec.password_file.as_deref()).and_then(|c| c.connect()) {
            Ok(c) => {
                r.pass(
                    scope,
                    "connection",
                    format!("connected to {}", crate::redact::url(&spec.url)),
                );
                c
            }
            Err(e) => {
                r.error(
                    scope,
                    "connection",
                    Outcome::Fail,
                    &e,
                    "Check the source's url, password_file and pg_hba.conf.",
                );
                return;
            }
        };
    match pg::dump::rls_blockers(&client) {
        Ok(t) if t.is_empty() => r.pass(scope, "row-level security", "the role sees every row (superuser, BYPASSRLS, or owner of every RLS table)"),
        Ok(t) => r.fail(
            scope,
            "row-level security",
            format!("the role lacks BYPASSRLS and does not own {} table(s) with row-level security: {}; pg_dump would fail", t.len(), t.join(", ")),
            pg::dump::RLS_REMEDY,
        ),
        Err(e) => r.error(scope, "row-level security", Outcome::Fail, &e, pg::dump::RLS_REMEDY),
    }
    let sql = format!(
        "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
                CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_read_all_data')
                     THEN pg_has_role(current_user, 'pg_read_all_data', 'MEMBER') ELSE false END,
                (SELECT string_agg(n.nspname || '.' || c.relname, ', ' ORDER BY 1) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE {USER_TABLES} AND NOT has_table_privilege(c.oid, 'SELECT')),
                current_setting('server_version')"
    );
    let server_version = match query(&client, &sql, &[]) {
        Ok(rows) => {
            let row = &rows[0];
            let (sup, read_all, unreadable): (Option<bool>, bool, Option<String>) =
                (row.get(0), row.get(1), row.get(2));
            let fix = "GRANT pg_read_all_data TO <the source's role>; (PostgreSQL 14+; older: GRANT SELECT ON ALL TABLES IN SCHEMA … and ALTER DEFAULT PRIVILEGES)";
            match (sup.unwrap_or(false) || read_all, unreadable) {
                (true, _) => r.pass(scope, "read privilege", "the role may read every table (superuser or pg_read_all_data)"),
                (false, Some(list)) => r.fail(scope, "read privilege", format!("the role may not read: {list}"), fix),
                (false, None) => r.warn(
                    scope,
                    "read privilege",
                    "the role may read every table today, but is not in pg_read_all_data: a new table it is not granted breaks the next backup",
                    fix,
                ),
            }
            Some(row.get::<_, String>(3))
        }
        Err(e) => {
            r.error(
                scope,
                "read privilege",
                Outcome::Fail,
                &e,
                "Check the role's privileges.",
            );
            None
        }
    };
    pg_dump_version(scope, spec, server_version.as_deref(), r);
}

/// pg_dump's version against the server's (`server_version`, when read):
/// an older pg_dump refuses a newer server.
fn pg_dump_version(scope: &str, spec: &PostgresSpec, server_version: Option<&str>, r: &mut Report) {
    match pg::program_version(&spec.pg_dump) {
        Ok(v) => {
            let dump = pg::parse_version(&v);
            let server = server_version.and_then(pg::parse_version);
            match (dump, server) {
                (Some(d), Some(s)) if d.0 < s.0 => r.fail(
                    scope,
                    "pg_dump version",
                    format!("{} is {v}, older than the server ({}.{}): pg_dump refuses a newer server", spec.pg_dump.display(), s.0, s.1),
                    "Install the client programs of the server's major version (or newer) and point pg_bin_dir at them.",
                ),
                _ => r.pass(scope, "pg_dump version", format!("{v}, server {}", server_version.unwrap_or("?"))),
            }
        }
        Err(e) => r.error(
            scope,
            "pg_dump version",
            Outcome::Fail,
            &e,
            "Install postgresql-client or set pg_bin_dir.",
        ),
    }
}

/// The archive_command a physical source should have.
pub fn expected_archive_command(config: &Config, binary: &Path, source: &str) -> String {
    let mut cmd = binary.display().to_string();
    if let Origin::File(p) = &config.origin {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        cmd.push_str(&format!(" --config {}", abs.display()));
    }
    cmd.push_str(" wal push");
    if crate::ops::units::physical_sources(config).len() > 1 {
        cmd.push_str(&format!(" --source {source}"));
    }
    cmd.push_str(" %p");
    cmd
}

/// Whether `actual` runs `wal push` with this config (the config path as
/// written or canonical).
fn archive_command_matches(config: &Config, actual: &str) -> bool {
    if !actual.contains("wal push") || !actual.contains("vaultctl") {
        return false;
    }
    match &config.origin {
        Origin::File(p) => {
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            actual.contains(&*p.to_string_lossy()) || actual.contains(&*abs.to_string_lossy())
        }
        Origin::Embedded => !actual.contains("--config"),
    }
}

fn physical(
    scope: &str,
    config: &Config,
    spec: &PhysicalSpec,
    source: &str,
    binary: &Path,
    r: &mut Report,
) {
    let client = match ConnInfo::new(&spec.url, spec.password_file.as_deref())
        .and_then(|c| c.connect())
    {
        Ok(c) => {
            r.pass(
                scope,
                "connection",
                format!("connected to {}", crate::redact::url(&spec.url)),
            );
            c
        }
        Err(e) => {
            r.error(scope, "connection", Outcome::Fail, &e, "Check the source's url, password_file and pg_hba.conf (a normal connection, besides the replication one).");
            return;
        }
    };
    let sql = "SELECT current_setting('wal_level'), current_setting('archive_mode'), current_setting('archive_command'),
                      (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
                      a.failed_count, a.last_failed_wal,
                      coalesce(a.last_failed_time > coalesce(a.last_archived_time, '-infinity'), false)
                 FROM pg_stat_archiver a";
    let row = match query(&client, sql, &[]) {
        Ok(rows) => rows.into_iter().next(),
        Err(e) => {
            r.error(
                scope,
                "settings",
                Outcome::Fail,
                &e,
                "Check the role's privileges.",
            );
            return;
        }
    };
    let Some(row) = row else { return };
    let settings = ArchiveSettings {
        wal_level: row.get(0),
        archive_mode: row.get(1),
        archive_command: row.get(2),
    };
    archive_settings(scope, config, source, binary, &settings, r);
    let archiver = Archiver {
        replication: row.get(3),
        failed: row.get(4),
        last_failed: row.get(5),
        failing: row.get(6),
    };
    archiver_health(scope, archiver, r);
}

/// The server settings WAL archiving needs.
struct ArchiveSettings {
    wal_level: String,
    archive_mode: String,
    archive_command: String,
}

/// wal_level, archive_mode, and an archive_command that runs `vaultctl wal
/// push` with this config.
fn archive_settings(
    scope: &str,
    config: &Config,
    source: &str,
    binary: &Path,
    s: &ArchiveSettings,
    r: &mut Report,
) {
    let ArchiveSettings {
        wal_level,
        archive_mode,
        archive_command,
    } = s;
    let expected = expected_archive_command(config, binary, source);
    let restart = "then restart PostgreSQL (systemctl restart postgresql)";
    if wal_level == "minimal" {
        r.fail(
            scope,
            "wal_level",
            "wal_level = minimal: no base backup or archive is possible",
            format!("ALTER SYSTEM SET wal_level = replica; {restart}."),
        );
    } else {
        r.pass(scope, "wal_level", format!("wal_level = {wal_level}"));
    }
    if archive_mode == "off" {
        r.fail(
            scope,
            "archive_mode",
            "archive_mode = off: WAL is not archived, so no point-in-time recovery",
            format!("ALTER SYSTEM SET archive_mode = on; ALTER SYSTEM SET archive_command = '{expected}'; {restart}."),
        );
    } else {
        r.pass(
            scope,
            "archive_mode",
            format!("archive_mode = {archive_mode}"),
        );
    }
    if archive_command_matches(config, archive_command) {
        r.pass(
            scope,
            "archive_command",
            format!("archive_command = '{archive_command}'"),
        );
    } else {
        r.fail(
            scope,
            "archive_command",
            if archive_command.is_empty() || archive_command == "(disabled)" {
                // PostgreSQL shows "(disabled)" while archive_mode is off.
                "archive_command is not set (or not in effect: archive_mode is off)".to_string()
            } else {
                format!("archive_command = '{archive_command}' does not run `vaultctl wal push` with this config")
            },
            format!("ALTER SYSTEM SET archive_command = '{expected}'; SELECT pg_reload_conf();"),
        );
    }
}

/// What pg_stat_archiver and the role say.
struct Archiver {
    replication: Option<bool>,
    failed: i64,
    last_failed: Option<String>,
    failing: bool,
}

/// The archiver's last attempt, and the REPLICATION privilege
/// pg_basebackup needs.
fn archiver_health(scope: &str, a: Archiver, r: &mut Report) {
    let Archiver {
        replication,
        failed,
        last_failed,
        failing,
    } = a;
    if failing {
        r.fail(
            scope,
            "archiver",
            format!("the archiver's last attempt failed ({failed} failures so far, last on {})", last_failed.unwrap_or_default()),
            "Read the PostgreSQL log for the archive_command's error (vaultctl's message is there) and `vaultctl wal status`.",
        );
    } else if failed > 0 {
        r.pass(
            scope,
            "archiver",
            format!("archiving works; {failed} earlier failure(s) since the statistics reset"),
        );
    } else {
        r.pass(scope, "archiver", "no archive failures");
    }
    if replication == Some(true) {
        r.pass(
            scope,
            "replication privilege",
            "the role may run pg_basebackup (REPLICATION)",
        );
    } else {
        r.fail(
            scope,
            "replication privilege",
            "the role lacks REPLICATION: pg_basebackup will be refused",
            "ALTER ROLE <the source's role> REPLICATION; and allow it in pg_hba.conf: host replication <role> <address> scram-sha-256",
        );
    }
}

/// Where systemd units may be installed.
const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Whether any crontab mentions `backup SOURCE` through vaultctl.
fn in_crontab(source: &str) -> bool {
    let needle = format!("backup {source}");
    let mut files: Vec<PathBuf> = vec![PathBuf::from("/etc/crontab")];
    for dir in ["/etc/cron.d", "/var/spool/cron/crontabs", "/var/spool/cron"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            files.extend(rd.flatten().map(|e| e.path()));
        }
    }
    files.iter().any(|f| {
        std::fs::read_to_string(f)
            .map(|t| {
                t.lines().any(|l| {
                    !l.trim_start().starts_with('#')
                        && l.contains("vaultctl")
                        && l.contains(&needle)
                })
            })
            .unwrap_or(false)
    })
}

fn schedules(config: &Config, r: &mut Report) {
    let mut any = false;
    for s in config.sources.iter().filter(|s| s.schedule.is_some()) {
        any = true;
        let unit = crate::ops::units::unit_name(&s.name);
        let names = [
            format!("{unit}.timer"),
            format!("vaultctl-backup@{}.timer", s.name),
        ];
        let installed = UNIT_DIRS
            .iter()
            .any(|d| names.iter().any(|n| Path::new(d).join(n).exists()))
            || Path::new(UNIT_DIRS[0])
                .join("vaultctl-backup@.timer")
                .exists()
            || UNIT_DIRS[2..]
                .iter()
                .any(|d| Path::new(d).join("vaultctl-backup@.timer").exists());
        let enabled = UNIT_DIRS[..2].iter().any(|d| {
            names
                .iter()
                .any(|n| Path::new(d).join("timers.target.wants").join(n).exists())
        });
        let scope = format!("source {}", s.name);
        if enabled {
            r.pass(
                &scope,
                "schedule",
                format!(
                    "timer {} is enabled",
                    names
                        .iter()
                        .find(|n| UNIT_DIRS[..2]
                            .iter()
                            .any(|d| Path::new(d).join("timers.target.wants").join(n).exists()))
                        .unwrap()
                ),
            );
        } else if in_crontab(&s.name) {
            r.pass(&scope, "schedule", "a crontab runs its backup");
        } else if installed {
            r.warn(
                &scope,
                "schedule",
                "its timer is installed but not enabled",
                format!("systemctl enable --now {}", names[0]),
            );
        } else {
            r.warn(
                &scope,
                "schedule",
                "it has a schedule, but no timer or crontab line runs it",
                format!("vaultctl schedule install --dir /etc/systemd/system && systemctl daemon-reload && systemctl enable --now {unit}.timer (or add `vaultctl schedule crontab`'s lines to a crontab)"),
            );
        }
    }
    if !any {
        r.pass(
            "schedule",
            "schedules",
            "no source has a schedule (backups run when called)",
        );
    }
}

/// Free bytes of the file system holding `path` (its nearest existing
/// ancestor), for unprivileged users.
pub fn free_bytes(path: &Path) -> Option<u64> {
    free_bytes_at(path.ancestors().find(|p| p.exists())?)
}

/// Free bytes of the file system holding `path`, which must exist (for
/// unprivileged users).
pub fn free_bytes_at(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

fn space(config: &Config, r: &mut Report) {
    let mut dirs: Vec<(String, PathBuf)> = vec![("temp".into(), std::env::temp_dir())];
    if let Some(d) = config.catalog.parent() {
        dirs.push(("catalog".into(), d.to_path_buf()));
    }
    for s in crate::ops::units::physical_sources(config) {
        dirs.push((
            format!("WAL spool of {}", s.name),
            crate::repo::wal::spool_dir(config, &s.name),
        ));
    }
    for t in &config.targets {
        if let Location::Local { path } = &t.location {
            dirs.push((format!("target {}", t.name), path.clone()));
        }
    }
    for (what, dir) in dirs {
        let name = format!("{what} space");
        match free_bytes(&dir) {
            Some(b) if b < SPACE_FAIL_BYTES => r.fail(
                "space",
                &name,
                format!("{} has {} MiB free", dir.display(), b >> 20),
                format!("Free space on the file system of {}.", dir.display()),
            ),
            Some(b) if b < SPACE_WARN_BYTES => r.warn(
                "space",
                &name,
                format!("{} has {} MiB free", dir.display(), b >> 20),
                format!("Free space on the file system of {}.", dir.display()),
            ),
            Some(b) => r.pass(
                "space",
                &name,
                format!("{} has {} MiB free", dir.display(), b >> 20),
            ),
            None => r.warn(
                "space",
                &name,
                format!("cannot stat {}", dir.display()),
                "Check that the directory exists and is readable.",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_bytes_reads_the_file_system_of_a_path() {
        let t = tempfile::tempdir().unwrap();
        assert!(super::free_bytes_at(t.path()).is_some_and(|b| b > 0));
        assert_eq!(super::free_bytes_at(&t.path().join("missing")), None);
    }

    use super::*;

    #[test]
    fn worst_outcome_decides_the_exit() {
        let mut r = Report::default();
        assert_eq!(r.status().code(), 0);
        r.pass("a", "b", "ok");
        assert_eq!(r.status().code(), 0);
        r.warn("a", "c", "meh", "fix");
        assert_eq!(r.status().code(), 1);
        r.fail("a", "d", "bad", "fix");
        r.pass("a", "e", "ok");
        assert_eq!(r.status().code(), 2);
    }

    #[test]
    fn archive_command_must_use_this_config() {
        let mut c = crate::config::embedded_default();
        c.origin = Origin::File(PathBuf::from("/etc/vaultctl/config.toml"));
        assert!(archive_command_matches(
            &c,
            "/usr/bin/vaultctl --config /etc/vaultctl/config.toml wal push %p"
        ));
        assert!(!archive_command_matches(
            &c,
            "/usr/bin/vaultctl --config /etc/other.toml wal push %p"
        ));
        assert!(!archive_command_matches(&c, "cp %p /mnt/archive/%f"));
        assert!(!archive_command_matches(&c, ""));
        assert_eq!(
            expected_archive_command(&c, Path::new("/usr/bin/vaultctl"), "db"),
            "/usr/bin/vaultctl --config /etc/vaultctl/config.toml wal push %p"
        );
    }
}
