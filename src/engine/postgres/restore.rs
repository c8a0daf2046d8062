//! Restores into PostgreSQL.
//!
//! * full: schema and data with psql, `ON_ERROR_STOP`, in one transaction
//!   that is committed only after the whole stream passed its hash check.
//!   Into a new database (`create`), an empty one, or with `clean` into a
//!   fresh database that replaces the old one only once the restore worked,
//!   so a failure leaves the target as it was.
//! * merge: rows only, into an existing schema: every COPY block goes into a
//!   staging table, then `INSERT … ON CONFLICT DO NOTHING` in foreign-key
//!   order, all in one transaction; inserted and skipped rows per table.
//!
//! Either can be selective: a [`TenantFilter`] keeps only chosen tenants'
//! rows, from a tenant export or from a full dump (filtered while streaming).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::{Client, CopyInSink};

use super::filter::{self, Event, PsqlFilter, RowFilter, TenantFilter};
use super::sqlscan::{self, Refusal};
use super::{execute, pg_error, query, quote_ident, ConnInfo, TableName};
use crate::engine::command::describe_status;
use crate::engine::command::{StderrTail, STDERR_TAIL};
use crate::error::{ExitStatus, Failure};
use crate::storage::runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreType {
    Full,
    Merge,
}

impl RestoreType {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreType::Full => "full",
            RestoreType::Merge => "merge",
        }
    }
}

pub struct Options {
    pub target: ConnInfo,
    pub psql: PathBuf,
    pub create: bool,
    pub clean: bool,
    pub tenants: Option<TenantFilter>,
    /// The backup and its artifacts' names, for messages.
    pub backup_id: String,
    pub artifacts: Vec<String>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TableCount {
    pub table: String,
    /// Rows in the backup (after the tenant filter).
    pub rows: u64,
    /// merge: rows inserted; full: rows loaded.
    pub inserted: u64,
    /// merge: rows that already existed (conflicts), kept as they were.
    pub skipped: u64,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub database: String,
    pub tables: Vec<TableCount>,
    pub rows: u64,
    pub inserted: u64,
    pub skipped: u64,
    pub dropped_settings: Vec<String>,
    pub dropped_meta_commands: Vec<String>,
    /// Tables left out of a selective merge because they carry no tenant column.
    pub tables_without_tenant_column: Vec<String>,
    /// merge: sequences moved past the highest merged value (`seq = value`),
    /// so the application's next insert does not collide with a merged row.
    pub sequences_advanced: Vec<String>,
    /// full: whether the database was created, or replaced (--clean).
    pub created: bool,
    pub replaced: bool,
}

/// Opens the i-th artifact's checked stream.
pub type Opener<'a> = &'a mut dyn FnMut(usize) -> Result<Box<dyn Read + Send>>;

fn maintenance(target: &ConnInfo) -> Result<Arc<Client>> {
    target
        .with_db("postgres")
        .connect()
        .or_else(|_| target.with_db("template1").connect())
}

fn db_exists(client: &Client, name: &str) -> Result<bool> {
    Ok(!query(
        client,
        "SELECT 1 FROM pg_database WHERE datname = $1",
        &[&name],
    )?
    .is_empty())
}

/// User relations in a database (tables, views, sequences…).
fn user_relations(target: &ConnInfo) -> Result<i64> {
    let c = target.connect()?;
    let r = query(
        &c,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'",
        &[],
    )?;
    Ok(r[0].get(0))
}

fn drop_db(client: &Client, name: &str) -> Result<()> {
    execute(
        client,
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)),
    )
}

/// Full restore of a plain dump.
pub fn full(open: Opener<'_>, opts: &Options) -> Result<Report> {
    let target = &opts.target;
    let name = target.dbname().to_string();
    let admin = maintenance(target)?;
    let exists = db_exists(&admin, &name)?;
    let mut report = Report {
        database: target.display(),
        ..Default::default()
    };
    // Where the restore goes, and what to drop if it fails.
    let into = if exists {
        let n = user_relations(target)?;
        if n > 0 && !opts.clean {
            return Err(Failure::new(ExitStatus::Usage, format!("the database {} is not empty ({n} tables, views or sequences); a full restore needs a new or empty database.", target.display()))
                .with_remedy("Restore into a new database (--target-db …/NEWNAME --create), use --type merge to add missing rows, or pass --clean to replace this database (it is dropped only after the restore succeeded).")
                .into());
        }
        if n > 0 {
            let tmp = format!(
                "{}_vaultctl_restore",
                name.chars().take(40).collect::<String>()
            );
            drop_db(&admin, &tmp)?;
            let props = query(&admin, "SELECT pg_get_userbyid(datdba)::text, pg_encoding_to_char(encoding)::text, datcollate::text, datctype::text FROM pg_database WHERE datname = $1", &[&name])?;
            let (owner, enc, coll, ctype): (String, String, String, String) = (
                props[0].get(0),
                props[0].get(1),
                props[0].get(2),
                props[0].get(3),
            );
            execute(
                &admin,
                &format!(
                    "CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
                    quote_ident(&tmp),
                    quote_ident(&owner),
                    super::quote_literal(&enc),
                    super::quote_literal(&coll),
                    super::quote_literal(&ctype)
                ),
            )?;
            report.replaced = true;
            Some(tmp)
        } else {
            None
        }
    } else {
        if !opts.create {
            return Err(Failure::new(
                ExitStatus::Usage,
                format!("the database {} does not exist.", target.display()),
            )
            .with_remedy("Pass --create to create it, or name an existing empty database.")
            .into());
        }
        execute(
            &admin,
            &format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&name)),
        )?;
        report.created = true;
        Some(name.clone())
    };
    let restore_db = match (&into, report.replaced) {
        (Some(tmp), true) => tmp.clone(),
        _ => name.clone(),
    };
    let result = run_psql(open, opts, &target.with_db(&restore_db), &mut report);
    match result {
        Ok(()) => {
            if report.replaced {
                drop_db(&admin, &name).and_then(|_| execute(&admin, &format!("ALTER DATABASE {} RENAME TO {}", quote_ident(&restore_db), quote_ident(&name)))).map_err(|e| {
                    Failure::new(ExitStatus::Failure, format!("the backup was restored into the database \"{restore_db}\", but replacing \"{name}\" with it failed: {}.", crate::error::paragraph(&e)))
                        .with_remedy(format!("Disconnect the clients of \"{name}\", then drop it and rename \"{restore_db}\" to \"{name}\" by hand."))
                })?;
            }
            Ok(report)
        }
        Err(e) => {
            if let Some(db) = &into {
                if let Err(d) = drop_db(&admin, db) {
                    return Err(e.context(format!(
                        "the restore failed, and the database \"{db}\" it created could not be dropped ({}); it holds a partial restore: drop it by hand",
                        crate::error::paragraph(&d)
                    )));
                }
            }
            let what = if report.replaced {
                format!(
                    "the restore failed; {} was left as it was",
                    target.display()
                )
            } else if report.created {
                format!(
                    "the restore failed; the database {} it created was dropped again",
                    target.display()
                )
            } else {
                format!(
                    "the restore failed and was rolled back; {} is as it was",
                    target.display()
                )
            };
            Err(e.context(what))
        }
    }
}

/// psql for a restore: no psqlrc, stop at the first error. (The scanner
/// does not depend on standard_conforming_strings at the start: where the
/// setting could matter it either refuses or psql enforces `\restrict`.)
fn psql_command(opts: &Options, db: &ConnInfo) -> std::process::Command {
    let mut cmd = db.command(&opts.psql);
    cmd.args([
        "--no-psqlrc",
        "--quiet",
        "--no-password",
        "--set",
        "ON_ERROR_STOP=1",
        "--file",
        "-",
    ]);
    cmd
}

/// A `\restrict` key nobody else knows (psql then refuses every
/// meta-command but `\unrestrict` with this key).
fn restrict_key() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Turns a scanner refusal of artifact `i` into the restore's error: what,
/// where (line, artifact, backup) and that nothing was committed.
fn refused(e: anyhow::Error, opts: &Options, i: usize) -> anyhow::Error {
    let Some(r) = e.downcast_ref::<Refusal>().cloned() else {
        return e;
    };
    let artifact = opts
        .artifacts
        .get(i)
        .map(|a| format!("artifact {a}"))
        .unwrap_or_else(|| format!("artifact {}", i + 1));
    // The refusal stays in the chain (ops::hooks raises its own alert for it).
    anyhow::Error::new(r.clone()).context(Failure::new(
        ExitStatus::Failure,
        format!(
            "backup {} was refused: {artifact}, {r}. vaultctl never lets a backup run psql meta-commands or commit early; the rest of the stream was not read and nothing was committed.",
            opts.backup_id
        ),
    )
    .with_remedy("Treat the backup as tampered with (or written by a compromised host) until you know why it holds this; inspect it with `vaultctl restore ID --stdout` and restore an older backup."))
}

fn run_psql(open: Opener<'_>, opts: &Options, db: &ConnInfo, report: &mut Report) -> Result<()> {
    let client = db.connect()?;
    let known: HashSet<String> = query(&client, "SELECT lower(name) FROM pg_settings", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    drop(client);
    let psql_version = super::program_version(&opts.psql)?;
    let knows_restrict = super::parse_version(&psql_version)
        .map(filter::psql_knows_restrict)
        .unwrap_or(false);
    let mut child = psql_command(opts, db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Failure::new(
                ExitStatus::Failure,
                format!("cannot start {}: {e}.", opts.psql.display()),
            )
            .with_remedy("Install the PostgreSQL client programs, or pass --pg-bin-dir.")
        })?;
    let stderr = child.stderr.take().expect("piped");
    let tail = StderrTail::spawn(stderr, STDERR_TAIL);
    let stdin = child.stdin.take().expect("piped");
    crate::engine::command::widen_pipe(&stdin);
    let mut out = BufWriter::with_capacity(1024 * 1024, stdin);
    let streamed: Result<filter::FilterReport> = (|| {
        let reader = open(0)?;
        if knows_restrict {
            // psql itself refuses any meta-command from here on: a second
            // guard behind the scanner.
            writeln!(out, "\\restrict {}", restrict_key())?;
        }
        out.write_all(b"BEGIN;\n")?;
        let f = PsqlFilter {
            known_settings: &known,
            scan: sqlscan::Options {
                restricted: knows_restrict,
            },
            tenants: opts.tenants.as_ref(),
        };
        let r = filter::to_psql(BufReader::with_capacity(1024 * 1024, reader), &mut out, &f)
            .map_err(|e| refused(e, opts, 0))?;
        // Commit only after the stream passed its end-of-stream hash check.
        out.write_all(b"COMMIT;\n")?;
        out.flush()?;
        Ok(r)
    })();
    // psql stopped on its own (an SQL error): its message says why.
    let psql_stopped = streamed
        .as_ref()
        .err()
        .is_some_and(crate::error::is_broken_pipe);
    if streamed.is_err() && !psql_stopped {
        // Kill psql before it sees the end of its input: at the end psql
        // would run an unterminated statement; killed, it commits nothing.
        let _ = child.kill();
        let (stdin, _) = out.into_parts();
        drop(stdin);
    } else {
        drop(out);
    }
    let status = child.wait()?;
    let text = tail.finish();
    let r = match streamed {
        Ok(r) => Some(r),
        Err(e) if psql_stopped && !status.success() => {
            tracing::debug!("writing to psql failed: {}", crate::error::paragraph(&e));
            None
        }
        Err(e) => return Err(e),
    };
    if !status.success() {
        return Err(Failure::new(
            ExitStatus::Failure,
            format!("psql {}{}", describe_status(&status), if text.is_empty() { ".".into() } else { format!("; its stderr ended with: {text}") }),
        )
        .with_remedy("Nothing was committed. Fix the cause (often a missing role or extension on the target) and restore again.")
        .into());
    }
    let r = r.expect("psql succeeded, so the stream was written");
    if !text.is_empty() {
        tracing::warn!("psql said: {text}");
    }
    for s in &r.dropped_settings {
        tracing::warn!("dropped `SET {s} = …` from the dump: the target server does not know the setting {s} (the dump comes from a newer pg_dump)");
    }
    if !knows_restrict {
        for m in &r.dropped_meta_commands {
            tracing::warn!("dropped the psql meta-command {m} from the dump: {} does not know it ({psql_version}); vaultctl's own check refuses every meta-command, and a psql of 15.14/16.10/17.6 or newer adds psql's own protection", opts.psql.display());
        }
    }
    report.dropped_settings = r.dropped_settings.into_iter().collect();
    report.dropped_meta_commands = r.dropped_meta_commands.into_iter().collect();
    for (t, n) in &r.rows {
        report.tables.push(TableCount {
            table: t.clone(),
            rows: *n,
            inserted: *n,
            skipped: 0,
        });
        report.rows += n;
        report.inserted += n;
    }
    Ok(())
}

struct Stage {
    name: String,
    table: TableName,
    columns: Vec<String>,
    rows: u64,
}

/// Merge restore of `count` artifacts (plain dumps or tenant exports).
pub fn merge(open: Opener<'_>, count: usize, opts: &Options) -> Result<Report> {
    let target = &opts.target;
    let client = target.connect()?;
    execute(&client, "BEGIN")?;
    let result = merge_in(&client, open, count, opts);
    match result {
        Ok(r) => {
            execute(&client, "COMMIT")?;
            Ok(r)
        }
        Err(e) => {
            let _ = execute(&client, "ROLLBACK");
            Err(e.context(format!(
                "the merge failed and was rolled back; {} is as it was",
                target.display()
            )))
        }
    }
}

fn merge_in(client: &Client, open: Opener<'_>, count: usize, opts: &Options) -> Result<Report> {
    let mut report = Report {
        database: opts.target.display(),
        ..Default::default()
    };
    let mut stages: Vec<Stage> = Vec::new();
    let mut global: Vec<String> = Vec::new();
    let tenants = opts.tenants.clone().map(|mut t| {
        t.keep_global = false;
        t
    });
    for i in 0..count {
        let reader = open(i)?;
        let mut sink: Option<(Pin<Box<CopyInSink<Bytes>>>, usize)> = None;
        let mut buf: Vec<u8> = Vec::with_capacity(1024 * 1024 + 64 * 1024);
        filter::walk(
            BufReader::with_capacity(1024 * 1024, reader),
            // No psql reads the stream here (only COPY data reaches the
            // server, through the protocol), so readings that only psql
            // could take differently do not matter; the scanner still
            // refuses a hostile stream.
            sqlscan::Options { restricted: true },
            tenants.as_ref(),
            |ev| {
                match ev {
                    Event::Line(..) | Event::Dropped(..) => {}
                    Event::CopyStart(h, f) => {
                        if *f == RowFilter::None {
                            if !global.contains(&h.table.to_string()) {
                                global.push(h.table.to_string());
                            }
                            return Ok(());
                        }
                        let exists = query(
                            client,
                            "SELECT to_regclass($1) IS NOT NULL",
                            &[&h.table.quoted()],
                        )?;
                        if !exists[0].get::<_, bool>(0) {
                            return Err(Failure::new(ExitStatus::Failure, format!("the table {} of the backup does not exist in {}.", h.table, opts.target.display()))
                            .with_remedy("A merge restore needs the schema in place: restore the schema first (a full restore into a new database), or migrate the target.")
                            .into());
                        }
                        let idx = match stages
                            .iter()
                            .position(|s| s.table == h.table && s.columns == h.columns)
                        {
                            Some(i) => i,
                            None => {
                                let name = format!("vaultctl_stage_{}", stages.len());
                                let cols = h
                                    .columns
                                    .iter()
                                    .map(|c| quote_ident(c))
                                    .collect::<Vec<_>>()
                                    .join(", ");
                                execute(client, &format!("CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {cols} FROM {} WITH NO DATA", h.table.quoted()))?;
                                stages.push(Stage {
                                    name,
                                    table: h.table.clone(),
                                    columns: h.columns.clone(),
                                    rows: 0,
                                });
                                stages.len() - 1
                            }
                        };
                        let s = &stages[idx];
                        let cols = s
                            .columns
                            .iter()
                            .map(|c| quote_ident(c))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let sql = format!("COPY {} ({cols}) FROM STDIN", s.name);
                        let copy = runtime()
                            .block_on(client.copy_in::<_, Bytes>(sql.as_str()))
                            .map_err(|e| anyhow::anyhow!("{}", pg_error(&e)))?;
                        sink = Some((Box::pin(copy), idx));
                    }
                    Event::Row(row) => {
                        if let Some((s, _)) = &mut sink {
                            buf.extend_from_slice(row);
                            if buf.len() >= 1024 * 1024 {
                                let data = Bytes::from(std::mem::take(&mut buf));
                                runtime()
                                    .block_on(s.send(data))
                                    .map_err(|e| anyhow::anyhow!("{}", pg_error(&e)))?;
                                buf.reserve(1024 * 1024 + 64 * 1024);
                            }
                        }
                    }
                    Event::CopyEnd(kept, _) => {
                        if let Some((mut s, idx)) = sink.take() {
                            if !buf.is_empty() {
                                let data = Bytes::from(std::mem::take(&mut buf));
                                runtime()
                                    .block_on(s.send(data))
                                    .map_err(|e| anyhow::anyhow!("{}", pg_error(&e)))?;
                            }
                            let n = runtime().block_on(s.as_mut().finish()).map_err(|e| {
                                anyhow::anyhow!(
                                    "staging rows of {} failed: {}",
                                    stages[idx].table,
                                    pg_error(&e)
                                )
                            })?;
                            debug_assert_eq!(n, kept);
                            stages[idx].rows += n;
                        }
                    }
                }
                Ok(())
            },
        )
        .map_err(|e| refused(e, opts, i))?;
    }
    let tables: Vec<TableName> = {
        let mut v: Vec<TableName> = stages.iter().map(|s| s.table.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut per: BTreeMap<TableName, TableCount> = BTreeMap::new();
    for t in super::fk_order(client, &tables)? {
        for s in stages.iter().filter(|s| s.table == t) {
            let cols = s
                .columns
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO {} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {} ON CONFLICT DO NOTHING", t.quoted(), s.name);
            let inserted = runtime()
                .block_on(client.execute(sql.as_str(), &[]))
                .map_err(|e| anyhow::anyhow!("inserting into {t} failed: {}", pg_error(&e)))?;
            let c = per.entry(t.clone()).or_insert_with(|| TableCount {
                table: t.to_string(),
                ..Default::default()
            });
            c.rows += s.rows;
            c.inserted += inserted;
            c.skipped += s.rows - inserted.min(s.rows);
        }
    }
    // Report in restore (foreign-key) order.
    for t in super::fk_order(client, &tables)? {
        if let Some(c) = per.remove(&t) {
            report.rows += c.rows;
            report.inserted += c.inserted;
            report.skipped += c.skipped;
            report.tables.push(c);
        }
    }
    report.tables_without_tenant_column = global;
    report.sequences_advanced = advance_sequences(client, &tables)?;
    Ok(report)
}

/// After a merge: every serial or identity column's sequence is moved up to
/// the column's highest value when it is behind (never down), in the merge's
/// transaction. Without it the next `nextval` could hand out an id a merged
/// row already has, and the application's insert would fail.
fn advance_sequences(client: &Client, tables: &[TableName]) -> Result<Vec<String>> {
    let mut advanced = Vec::new();
    for t in tables {
        let owned = query(
            client,
            "SELECT a.attname::text, pg_get_serial_sequence($1::text, a.attname)
               FROM pg_attribute a
              WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
                AND pg_get_serial_sequence($1::text, a.attname) IS NOT NULL",
            &[&t.quoted()],
        )?;
        for r in owned {
            let column: String = r.get(0);
            let sequence: String = r.get(1);
            // setval(…, max, true): the next value is max + 1.
            let sql = format!(
                "SELECT setval($1::text::regclass, m)::text FROM (SELECT max({col})::bigint AS m FROM {table}) x
                  WHERE m IS NOT NULL
                    AND m > (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {sequence})",
                col = quote_ident(&column),
                table = t.quoted(),
            );
            let moved = query(client, &sql, &[&sequence])
                .with_context(|| format!("advancing the sequence {sequence} of {t}.{column}"))?;
            if let Some(row) = moved.first() {
                advanced.push(format!("{sequence} = {}", row.get::<_, String>(0)));
            }
        }
    }
    Ok(advanced)
}

/// Reads a manifest's tenant spec (recorded at backup time).
pub fn tenant_spec(engine: &serde_json::Value) -> Option<crate::config::TenantSpec> {
    serde_json::from_value(engine.get("tenant_spec")?.clone()).ok()
}

/// The database to restore into; its password comes from `password_file`,
/// PGPASSWORD or PGPASSFILE. Refuses a URL with a password (it would sit in
/// argv and shell history).
pub fn target_from_url(url: &str, password_file: Option<&std::path::Path>) -> Result<ConnInfo> {
    ConnInfo::new(url, password_file).context("--target-db")
}
