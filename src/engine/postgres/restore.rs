//! Restores into PostgreSQL.
//!
//! * full: schema and data over the protocol ([`load`], no psql), stopping
//!   at the first error. Into a new database (`create`) or with `clean` over
//!   a non-empty one: loaded on `jobs` connections into a fresh database
//!   that is renamed into place (replacing the old one) only once the whole
//!   stream passed its hash check and every statement ran, and dropped on
//!   failure, so a failure leaves the target as it was. Into an existing
//!   empty database: on one connection, in one transaction committed only
//!   after the hash check.
//! * merge: rows only, into an existing schema: every COPY block goes into a
//!   staging table, then `INSERT … ON CONFLICT DO NOTHING` in foreign-key
//!   order, all in one transaction; inserted and skipped rows per table.
//!
//! Either can be selective: a [`TenantFilter`] keeps only chosen tenants'
//! rows, from a tenant export or from a full dump (filtered while streaming).

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_postgres::Client;

use super::filter::TenantFilter;
use super::load::{self, LoadOptions, Transaction};
use super::sqlscan::Refusal;
use super::{execute, pg_error, query, quote_ident, ConnInfo, TableName};
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
    /// Connections loading in parallel (a full restore into a new database).
    pub jobs: usize,
    /// Where COPY data the connections have not taken yet is spilled.
    pub spill_dir: PathBuf,
    pub create: bool,
    pub clean: bool,
    pub tenants: Option<TenantFilter>,
    /// The backup and its artifacts' names, for messages.
    pub backup_id: String,
    pub artifacts: Vec<String>,
    /// Reports the phases.
    pub progress: Option<Arc<dyn crate::progress::Progress>>,
    /// The artifacts' plain (uncompressed) size in total, when known: the
    /// data phase's ETA.
    pub size: Option<u64>,
    /// Segment size and queue depth of the parallel data phase.
    pub tuning: load::Tuning,
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
    /// tenant replace: the tenant's rows deleted before the insert.
    #[serde(skip_serializing_if = "is_zero")]
    pub deleted: u64,
    /// full: the rows the server acknowledged storing (its `COPY n`
    /// command tags, summed over the table's COPY segments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub database: String,
    pub tables: Vec<TableCount>,
    pub rows: u64,
    pub inserted: u64,
    pub skipped: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub deleted: u64,
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
    /// full: how long each phase took, and on how many connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phases: Option<Box<load::Phases>>,
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

/// The database a restore loads into before it is renamed into place.
fn temporary_name(name: &str) -> String {
    format!(
        "{}_vaultctl_restore",
        name.chars().take(40).collect::<String>()
    )
}

/// Full restore of a plain dump; `side`: its table of contents and a reader
/// of its byte ranges, to start the biggest tables' rows at once.
pub fn full(
    open: Opener<'_>,
    side: Option<load::SideBlocks<'_>>,
    opts: &Options,
) -> Result<Report> {
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
            let tmp = temporary_name(&name);
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
        // Loaded under another name, renamed only once the stream's hash
        // matched and every statement ran.
        let tmp = temporary_name(&name);
        drop_db(&admin, &tmp)?;
        execute(
            &admin,
            &format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&tmp)),
        )?;
        report.created = true;
        Some(tmp)
    };
    let restore_db = into.clone().unwrap_or_else(|| name.clone());
    // Into a database of our own: several connections, each committing; into
    // an existing empty one: one transaction, committed at the end.
    let transaction = match into {
        Some(_) => Transaction::Parallel { jobs: opts.jobs },
        None => {
            if opts.jobs > 1 {
                tracing::warn!(
                    "restoring into the existing empty database {} on one connection, in one transaction (--jobs {} applies to a new database, --create, or a replaced one, --clean): the database stays the one you made (its owner, grants and settings), and a failure rolls everything back",
                    target.display(),
                    opts.jobs
                );
            }
            Transaction::Single
        }
    };
    let result = run_load(
        open,
        side,
        opts,
        &target.with_db(&restore_db),
        transaction,
        &mut report,
    );
    match result {
        Ok(()) => {
            let finalize = std::time::Instant::now();
            if report.created {
                execute(
                    &admin,
                    &format!(
                        "ALTER DATABASE {} RENAME TO {}",
                        quote_ident(&restore_db),
                        quote_ident(&name)
                    ),
                )
                .map_err(|e| {
                    Failure::new(ExitStatus::Failure, format!("the backup was restored into the database \"{restore_db}\", but renaming it to \"{name}\" failed: {}.", crate::error::paragraph(&e)))
                        .with_remedy(format!("Rename \"{restore_db}\" to \"{name}\" by hand (ALTER DATABASE … RENAME TO …)."))
                })?;
            }
            if report.replaced {
                drop_db(&admin, &name).and_then(|_| execute(&admin, &format!("ALTER DATABASE {} RENAME TO {}", quote_ident(&restore_db), quote_ident(&name)))).map_err(|e| {
                    Failure::new(ExitStatus::Failure, format!("the backup was restored into the database \"{restore_db}\", but replacing \"{name}\" with it failed: {}.", crate::error::paragraph(&e)))
                        .with_remedy(format!("Disconnect the clients of \"{name}\", then drop it and rename \"{restore_db}\" to \"{name}\" by hand."))
                })?;
            }
            if let Some(p) = report.phases.as_mut() {
                p.finalize_ms = finalize.elapsed().as_millis() as u64;
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
                    "the restore failed; {} was not created (the database it loaded into was dropped)",
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

fn run_load(
    open: Opener<'_>,
    side: Option<load::SideBlocks<'_>>,
    opts: &Options,
    db: &ConnInfo,
    transaction: Transaction,
    report: &mut Report,
) -> Result<()> {
    let reader = open(0)?;
    let loaded = load::load(
        BufReader::with_capacity(1024 * 1024, reader),
        db,
        &LoadOptions {
            transaction,
            tenants: opts.tenants.as_ref(),
            spill_dir: &opts.spill_dir,
            spill_limit: load::SPILL_LIMIT,
            merge: None,
            progress: opts.progress.clone(),
            size: opts.size,
            tuning: opts.tuning,
            side,
        },
    )
    .map_err(|e| refused(e, opts, 0))?;
    let r = loaded.filter;
    for s in &r.dropped_settings {
        tracing::warn!("dropped `SET {s} = …` from the dump: the target server does not know the setting {s} (the dump comes from a newer pg_dump)");
    }
    report.dropped_settings = r.dropped_settings.into_iter().collect();
    report.dropped_meta_commands = r.dropped_meta_commands.into_iter().collect();
    for (t, n) in &r.rows {
        report.tables.push(TableCount {
            table: t.clone(),
            rows: *n,
            inserted: *n,
            acknowledged: loaded.acknowledged.get(t).copied(),
            ..Default::default()
        });
        report.rows += n;
        report.inserted += n;
    }
    report.phases = Some(Box::new(loaded.phases));
    Ok(())
}

/// Merge restore of `count` artifacts (plain dumps or tenant exports).
///
/// **Stage, check, then apply in one transaction.** A merge writes into a
/// live database, so it cannot be loaded elsewhere and renamed in, and
/// once rows are committed there a failure cannot take them back out
/// (the application may already have used them). So every artifact is
/// first read to its end — which checks its BLAKE3 hash — into staging
/// tables, and only then are the rows applied: `INSERT … SELECT … ON
/// CONFLICT DO NOTHING` table by table in foreign-key order (parents
/// first), then the sequences are moved past the merged ids, all in
/// **one transaction** on one connection. One transaction rather than
/// one per table: a merge that fails half-way (a constraint, a lost
/// connection) leaves the target exactly as it was, and no reader ever
/// sees children merged without their parents. The price is that the
/// apply step runs on one connection; it is a server-side copy between
/// tables, while the part that scales with `jobs` — streaming, checking
/// and parsing the backup's rows — runs in parallel.
///
/// With `jobs > 1` the staging tables are unlogged tables in a schema of
/// their own (`vaultctl_merge_…`, created first, dropped at the end
/// whatever happens), loaded on `jobs` connections; this needs the CREATE
/// privilege on the database, and without it the merge runs on one
/// connection. With one job they are temporary tables of the merge's own
/// transaction, as before.
pub fn merge(open: Opener<'_>, count: usize, opts: &Options) -> Result<Report> {
    let (report, staged) = stage_and_apply(open, count, opts, &mut |client, staged| {
        insert_staged(client, staged, &mut BTreeMap::new()).map(|r| (r, true))
    })
    .map_err(|e| {
        e.context(format!(
            "the merge failed and was rolled back; {} is as it was",
            opts.target.display()
        ))
    })?;
    Ok(Report {
        database: opts.target.display(),
        tables_without_tenant_column: staged.global,
        phases: Some(Box::new(staged.phases)),
        ..report
    })
}

/// What [`stage_and_apply`] staged, besides the apply's own result.
pub(super) struct StagedRun {
    /// Tables left out of a selective merge (no tenant column).
    pub global: Vec<String>,
    pub phases: load::Phases,
}

/// The apply step of [`stage_and_apply`]: runs in the one transaction on
/// the connection given, with the staging tables; returns its result and
/// whether to commit (false: rolled back, as a dry run is).
pub(super) type ApplyStep<'a, T> = &'a mut dyn FnMut(&Client, &[load::Staged]) -> Result<(T, bool)>;

/// The one staging path of every merge (merge restores, tenant-selective
/// ones, a tenant point-in-time restore's merge, replace and dry run):
/// streams the `count` artifacts through [`load::Loader`] into staging
/// tables, then runs `apply` in one transaction (see [`merge`] for why).
///
/// With `jobs > 1` the staging tables are unlogged tables in a schema of
/// their own (`vaultctl_merge_…`, created first, dropped at the end
/// whatever happens), loaded on `jobs` connections; this needs the CREATE
/// privilege on the database, and without it the merge runs on one
/// connection. With one job they are temporary tables of the apply's own
/// transaction.
pub(super) fn stage_and_apply<T>(
    open: Opener<'_>,
    count: usize,
    opts: &Options,
    apply: ApplyStep<'_, T>,
) -> Result<(T, StagedRun)> {
    let target = &opts.target;
    let mut schema = None;
    if opts.jobs > 1 {
        let admin = target.connect()?;
        let name = format!(
            "vaultctl_merge_{}_{}",
            std::process::id(),
            crate::clock::now_rfc3339()
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        );
        match execute(&admin, &format!("CREATE SCHEMA {}", quote_ident(&name))) {
            Ok(()) => schema = Some((admin, name)),
            Err(e) => tracing::warn!(
                "merging on one connection: the staging schema for {} connections could not be created ({}); grant CREATE on the database to merge in parallel",
                opts.jobs,
                crate::error::paragraph(&e)
            ),
        }
    }
    let result = merge_in(
        open,
        count,
        opts,
        schema.as_ref().map(|(_, n)| n.as_str()),
        apply,
    );
    if let Some((admin, name)) = &schema {
        if let Err(d) = execute(
            admin,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(name)),
        ) {
            tracing::warn!(
                "could not drop the merge's staging schema {name} in {}: {}; drop it by hand (DROP SCHEMA {name} CASCADE)",
                target.display(),
                crate::error::paragraph(&d)
            );
        }
    }
    result
}

fn merge_in<T>(
    open: Opener<'_>,
    count: usize,
    opts: &Options,
    schema: Option<&str>,
    apply: ApplyStep<'_, T>,
) -> Result<(T, StagedRun)> {
    let tenants = opts.tenants.clone().map(|mut t| {
        t.keep_global = false;
        t
    });
    let (transaction, staging) = match schema {
        Some(s) => (
            Transaction::Parallel { jobs: opts.jobs },
            load::Staging::Schema(s),
        ),
        None => (Transaction::Single, load::Staging::Temp),
    };
    let lo = LoadOptions {
        transaction,
        tenants: tenants.as_ref(),
        spill_dir: &opts.spill_dir,
        spill_limit: load::SPILL_LIMIT,
        merge: Some(staging),
        progress: opts.progress.clone(),
        size: opts.size,
        tuning: opts.tuning,
        side: None,
    };
    let mut loader = load::Loader::start(&opts.target, &lo)?;
    for i in 0..count {
        let reader = match open(i) {
            Ok(r) => r,
            Err(e) => {
                loader.abort();
                return Err(e);
            }
        };
        loader
            .feed(BufReader::with_capacity(1024 * 1024, reader))
            .map_err(|e| refused(e, opts, i))?;
    }
    // Every stream was read to its end: their hashes matched.
    loader.finish()?;
    if let Some(p) = &opts.progress {
        p.start("restore: finalize (applying the merge)", None);
    }
    let started = std::time::Instant::now();
    let applied = match schema {
        // One job: the staging tables live in the loader's transaction,
        // whose session took the dump's settings: back to the role's own,
        // as on the connection of several jobs. Rolled back (a dry run)
        // by the loader's abort.
        None => execute(loader.coord(), "RESET ALL")
            .and_then(|_| apply(loader.coord(), loader.staged())),
        Some(_) => opts.target.connect().and_then(|client| {
            execute(&client, "BEGIN")?;
            match apply(&client, loader.staged()) {
                Ok((r, commit)) => {
                    execute(&client, if commit { "COMMIT" } else { "ROLLBACK" })?;
                    Ok((r, commit))
                }
                Err(e) => {
                    let _ = execute(&client, "ROLLBACK");
                    Err(e)
                }
            }
        }),
    };
    let (value, commit) = match applied {
        Ok(r) => r,
        Err(e) => {
            loader.abort();
            return Err(e);
        }
    };
    let apply_ms = started.elapsed().as_millis() as u64;
    if let Some(p) = &opts.progress {
        p.finish();
    }
    let loaded = loader.end(commit)?;
    let mut phases = loaded.phases;
    phases.finalize_ms = apply_ms;
    Ok((
        value,
        StagedRun {
            global: loaded.global,
            phases,
        },
    ))
}

/// Inserts the staged rows into their tables in foreign-key order
/// (`INSERT … ON CONFLICT DO NOTHING`, parents first), counting inserted
/// and skipped (already there) rows per table, then moves the sequences.
/// `deleted`: rows a tenant replace removed first, by table (reported with
/// the table's counts).
pub(super) fn insert_staged(
    client: &Client,
    staged: &[load::Staged],
    deleted: &mut BTreeMap<TableName, u64>,
) -> Result<Report> {
    let mut report = Report::default();
    let tables = staged_tables(staged);
    for t in super::fk_order(client, &tables)? {
        let mut c = TableCount {
            table: t.to_string(),
            deleted: deleted.remove(&t).unwrap_or(0),
            ..Default::default()
        };
        for s in staged.iter().filter(|s| s.table == t) {
            let cols = s
                .columns
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO {} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {} ON CONFLICT DO NOTHING", t.quoted(), s.stage);
            let inserted = runtime()
                .block_on(client.execute(sql.as_str(), &[]))
                .map_err(|e| anyhow::anyhow!("inserting into {t} failed: {}", pg_error(&e)))?;
            c.rows += s.rows;
            c.inserted += inserted;
            c.skipped += s.rows - inserted.min(s.rows);
        }
        report.rows += c.rows;
        report.inserted += c.inserted;
        report.skipped += c.skipped;
        report.deleted += c.deleted;
        report.tables.push(c);
    }
    report.sequences_advanced = advance_sequences(client, &tables)?;
    Ok(report)
}

/// The distinct tables of the staged blocks.
pub(super) fn staged_tables(staged: &[load::Staged]) -> Vec<TableName> {
    let mut v: Vec<TableName> = staged.iter().map(|s| s.table.clone()).collect();
    v.sort();
    v.dedup();
    v
}

/// After a merge: every serial or identity column's sequence is moved up to
/// the column's highest value when it is behind (never down), in the merge's
/// transaction. Without it the next `nextval` could hand out an id a merged
/// row already has, and the application's insert would fail.
pub(super) fn advance_sequences(client: &Client, tables: &[TableName]) -> Result<Vec<String>> {
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
