//! The restore wizard's decisions, without a terminal: which backups and
//! restore types it offers, the fields each type asks in step 3 and how
//! their answers are checked, step 4's summary, and the flag form the
//! choice runs as (so the wizard ends in the same code path as the flags).
//! `cli::commands::wizard` only asks and renders.

use std::path::Path;

use anyhow::Result;

use super::offers::{Kind, TenantPitr};
use super::pitr::Reach;
use crate::catalog::{BackupFilter, BackupRow, Catalog};
use crate::config::{Config, SourceSpec};
use crate::engine::postgres::tenant_apply::Action;
use crate::engine::postgres::{pitr, query, tenants, ConnInfo};
use crate::error::{fail, paragraph, ExitStatus};
use crate::humanize::bytes;
use crate::repo::Repository;

/// Completed backups held by a target this machine reaches, newest first.
pub fn backups(catalog: &Catalog, repo: &Repository) -> Result<Vec<BackupRow>> {
    let here: Vec<&String> = repo.stores.iter().map(|s| &s.name).collect();
    let backups: Vec<BackupRow> = catalog
        .list(&BackupFilter {
            status: Some("completed".into()),
            ..Default::default()
        })?
        .into_iter()
        .filter(|b| b.targets.is_empty() || b.targets.iter().any(|t| here.contains(&t)))
        .collect();
    if backups.is_empty() {
        return fail(
            ExitStatus::Usage,
            "the catalog lists no completed backup that a reachable target holds.",
            "On a new machine run `vaultctl catalog rebuild` first (or `vaultctl dr run`); check `vaultctl list`.",
        );
    }
    Ok(backups)
}

/// Step 1's line for a backup: id, source, kind, when, size, tenants and
/// whether it was verified.
pub fn backup_line(catalog: &Catalog, b: &BackupRow) -> String {
    let tenants = catalog.tenants_of(&b.id).unwrap_or_default();
    format!(
        "{}  {}  {}  {}  {}  {}  {}",
        b.id,
        b.source,
        b.kind,
        b.started_at
            .get(..16)
            .unwrap_or(&b.started_at)
            .replace('T', " "),
        bytes(b.bytes),
        if tenants.is_empty() {
            "tenants: -".to_string()
        } else {
            format!("tenants: {}", tenants.join(","))
        },
        match catalog.verified_at(&b.id) {
            Ok(Some(_)) => "verified",
            _ => "not verified",
        }
    )
}

/// Whether "Point in time, one tenant" applies to `row`: from a physical
/// base backup (its source), or from a `postgres` backup of a database with
/// [source.tenants] when one physical source has base backups.
pub fn tenant_pitr(config: &Config, catalog: &Catalog, row: &BackupRow) -> TenantPitr {
    let with_tenants: Vec<&String> = config
        .sources
        .iter()
        .filter(|s| matches!(&s.spec, SourceSpec::Postgres(p) if p.tenants.is_some()))
        .map(|s| &s.name)
        .collect();
    let physical = match row.kind.as_str() {
        "postgres-physical" => row.source.clone(),
        "postgres" if with_tenants.contains(&&row.source) => {
            let has_base = |name: &String| {
                catalog
                    .list(&BackupFilter {
                        source: Some(name.clone()),
                        status: Some("completed".into()),
                        ..Default::default()
                    })
                    .is_ok_and(|r| !r.is_empty())
            };
            let bases: Vec<&String> = config
                .sources
                .iter()
                .filter(|s| matches!(s.spec, SourceSpec::PostgresPhysical(_)))
                .map(|s| &s.name)
                .filter(|n| has_base(n))
                .collect();
            match bases.as_slice() {
                [] => return TenantPitr::NotApplicable,
                [one] => (*one).clone(),
                _ => return TenantPitr::Unavailable("several postgres-physical sources have base backups: use the flags (`--type pitr --source NAME --tenant ID`)".into()),
            }
        }
        _ => return TenantPitr::NotApplicable,
    };
    let tenants = if row.kind == "postgres" {
        row.source.clone()
    } else {
        match with_tenants.as_slice() {
            [one] => (*one).clone(),
            [] => return TenantPitr::Unavailable("no postgres source has [source.tenants] in the config, so vaultctl does not know how tenants are identified".into()),
            _ => return TenantPitr::Unavailable("several postgres sources have [source.tenants]: use the flags (`--tenant-source NAME`)".into()),
        }
    };
    TenantPitr::Ready { physical, tenants }
}

/// What step 3 asks, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Target,
    Dir,
    Tenants,
    Pgdata,
    Owner,
    Time,
    Port,
    Mode,
    Reason,
}

/// The fields of a restore type (as root, the point-in-time types also ask
/// who owns the files and runs the server).
pub fn fields(kind: Kind, root: bool) -> Vec<Field> {
    use Field::*;
    let mut f = match kind {
        Kind::Full => vec![Target],
        Kind::Merge => vec![Target, Tenants],
        Kind::Pitr if root => vec![Pgdata, Owner, Time, Port],
        Kind::Pitr => vec![Pgdata, Time, Port],
        // As root, also who runs the sandbox cluster.
        Kind::TenantPitr if root => vec![Tenants, Time, Mode, Target, Owner],
        Kind::TenantPitr => vec![Tenants, Time, Mode, Target],
        Kind::Directory => vec![Dir],
    };
    f.push(Reason);
    f
}

pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// What a tenant restore does with the rows, as step 3 offers it.
pub const MODES: [(Action, &str); 3] = [
    (
        Action::Merge,
        "merge — bring back the rows deleted since; rows that exist now are kept as they are",
    ),
    (
        Action::Replace,
        "replace — the tenants' rows exactly as at the time, in one transaction",
    ),
    (
        Action::Diff,
        "dry run — show per table what differs; write nothing",
    ),
];

/// What the operator chose.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub backup: Option<BackupRow>,
    pub kind: Option<Kind>,
    pub target_db: String,
    pub dir: String,
    pub tenants: Vec<String>,
    pub to_time: String,
    /// Point-in-time: start the recovered server on this port (empty: don't).
    pub port: String,
    /// Point-in-time, as root: the user that owns the data directory.
    pub owner: String,
    /// Point in time, one tenant: what to do with the rows.
    pub mode: Option<Action>,
    pub reason: String,
    /// Point in time, one tenant: the sources it works from.
    pub tenant_pitr: TenantPitr,
    /// Point-in-time kinds: what the base backups and archived WAL cover.
    pub reach: Reach,
}

impl Choice {
    fn kind(&self) -> Kind {
        self.kind.expect("chosen in step 2")
    }

    fn row(&self) -> &BackupRow {
        self.backup.as_ref().expect("chosen in step 1")
    }

    /// Picks the backup of step 1; a different one forgets step 2 and 3.
    pub fn pick_backup(&mut self, row: BackupRow) {
        if self.backup.as_ref().map(|x| &x.id) != Some(&row.id) {
            self.kind = None;
            self.tenants.clear();
        }
        self.backup = Some(row);
    }

    /// Before step 3: what the chosen type's time field is checked against.
    pub fn prepare(&mut self, catalog: &Catalog, repo: &Repository) {
        self.reach = match (&self.kind(), &self.tenant_pitr) {
            (Kind::Pitr, _) => Reach::of(catalog, repo, self.row()),
            (Kind::TenantPitr, TenantPitr::Ready { physical, .. }) => {
                Reach::of_source(catalog, repo, physical)
            }
            _ => Reach::default(),
        };
    }

    pub fn prompt(&self, f: Field) -> &'static str {
        let tenant = self.kind() == Kind::TenantPitr;
        match f {
            Field::Target if tenant => "Database to put the tenants back into (postgresql://USER@HOST:PORT/DB, no password)",
            Field::Target => "Target database URL (postgresql://USER@HOST:PORT/DB, no password)",
            Field::Dir => "Directory to restore into",
            Field::Tenants if tenant => "Tenants to put back, comma-separated",
            Field::Tenants => "Tenants to restore, comma-separated (empty: all rows)",
            Field::Pgdata => "New data directory for the recovered cluster (empty or absent)",
            Field::Owner if tenant => "Operating-system user that runs the sandbox cluster (PostgreSQL's user)",
            Field::Owner => "Operating-system user that owns the data directory and runs the server",
            Field::Time if tenant => "Put the tenants back as they were at (e.g. 2026-01-31T12:00:00Z)",
            Field::Time => "Recover to time (e.g. 2026-01-31T12:00:00Z; empty: to the end of the archived WAL)",
            Field::Port => "Start the recovered server on port (empty: only prepare the directory)",
            Field::Mode => "What to do with the tenants' rows (Esc goes back)",
            Field::Reason => "Reason for this restore (kept in the restore log)",
        }
    }

    /// The multi-select's prompt for tenants.
    pub fn tenants_prompt(&self) -> &'static str {
        if self.kind() == Kind::TenantPitr {
            "Tenants to put back (space toggles, Enter accepts; Esc goes back)"
        } else {
            "Tenants (space toggles, Enter accepts; none = all; Esc goes back)"
        }
    }

    /// Whether a text field needs an answer.
    pub fn required(&self, f: Field) -> bool {
        match f {
            Field::Port => false,
            Field::Tenants | Field::Time => self.kind() == Kind::TenantPitr,
            _ => true,
        }
    }

    /// What a text field offers (Enter keeps it): the earlier answer, else
    /// a suggestion.
    pub fn initial(&self, f: Field, config: &Config) -> String {
        match f {
            Field::Target if self.target_db.is_empty() => self.suggested_target(config),
            Field::Target => self.target_db.clone(),
            Field::Dir | Field::Pgdata => self.dir.clone(),
            Field::Tenants => self.tenants.join(","),
            Field::Owner if self.owner.is_empty() => {
                let probe = match self.kind() {
                    Kind::TenantPitr => config.sandbox_dir().join("x"),
                    _ => Path::new(&self.dir).to_path_buf(),
                };
                pitr::resolve_owner(&probe, None)
                    .ok()
                    .filter(|o| o.uid != 0)
                    .map(|o| o.name)
                    .unwrap_or_else(|| "postgres".into())
            }
            Field::Owner => self.owner.clone(),
            Field::Time => self.to_time.clone(),
            Field::Port => self.port.clone(),
            Field::Mode => String::new(),
            Field::Reason => self.reason.clone(),
        }
    }

    /// A database URL for the target: a tenant restore goes back into the
    /// live database; the others into a new database on the source's server.
    fn suggested_target(&self, config: &Config) -> String {
        let source = match &self.tenant_pitr {
            TenantPitr::Ready { tenants, .. } if self.kind() == Kind::TenantPitr => tenants,
            _ => &self.row().source,
        };
        let spec = super::restore::postgres_spec(config, source);
        match spec.and_then(|p| ConnInfo::new(&p.url, None).ok()) {
            Some(c) if self.kind() == Kind::TenantPitr => c.display(),
            Some(c) => {
                let db = format!("{}_restored", c.dbname());
                c.with_db(&db).display()
            }
            None => String::new(),
        }
    }

    /// The tenants to pick from: those a merge's backup holds (`in_backup`,
    /// the catalog's), or those in the live tenants table for a tenant
    /// restore (empty: type them).
    pub fn known_tenants(&self, config: &Config, in_backup: &[String]) -> Vec<String> {
        match (&self.kind(), &self.tenant_pitr) {
            (
                Kind::TenantPitr,
                TenantPitr::Ready {
                    tenants: source, ..
                },
            ) => super::restore::postgres_spec(config, source)
                .and_then(|spec| tenants::list(spec).ok())
                .unwrap_or_default(),
            (Kind::TenantPitr, _) => Vec::new(),
            _ => in_backup.to_vec(),
        }
    }

    /// Chooses tenants by their positions in `known`; a tenant restore needs
    /// at least one.
    pub fn pick_tenants(&mut self, known: &[String], picked: &[usize]) -> Result<(), String> {
        if picked.is_empty() && self.kind() == Kind::TenantPitr {
            return Err("Pick at least one tenant (space toggles).".into());
        }
        self.tenants = picked.iter().map(|i| known[*i].clone()).collect();
        Ok(())
    }

    /// The line shown before the time is asked: what can be reached.
    pub fn coverage(&self) -> String {
        let show = |t: Option<time::OffsetDateTime>| {
            t.map(pitr::pg_time).unwrap_or_else(|| "unknown".into())
        };
        let what = if self.kind() == Kind::TenantPitr {
            "Base backups"
        } else {
            "Base backup"
        };
        format!(
            "{what} and archived WAL cover {} to {}.",
            show(self.reach.from),
            show(self.reach.to)
        )
    }

    /// Checks a text field's answer and keeps it; else what to tell the
    /// operator before asking again.
    pub fn set(&mut self, f: Field, v: String) -> Result<(), String> {
        match f {
            Field::Target => {
                ConnInfo::new(&v, None).map_err(|e| paragraph(&e))?;
                self.target_db = v;
            }
            Field::Dir => self.dir = v,
            Field::Tenants => {
                self.tenants = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            Field::Pgdata => {
                pitr::check_empty(Path::new(&v)).map_err(|e| paragraph(&e))?;
                self.dir = v;
            }
            Field::Owner => match pitr::resolve_owner(Path::new(&self.dir), Some(&v)) {
                Ok(o) if o.uid != 0 => self.owner = v,
                Ok(_) => return Err("PostgreSQL refuses to run as root: name the user that runs PostgreSQL (usually postgres).".into()),
                Err(e) => return Err(paragraph(&e)),
            },
            Field::Time => self.set_time(v)?,
            Field::Port if v.is_empty() || v.parse::<u16>().is_ok_and(|p| p > 0) => self.port = v,
            Field::Port => return Err(format!("\"{v}\" is not a port number.")),
            Field::Mode => unreachable!("a select, not a text field"),
            Field::Reason => self.reason = v,
        }
        Ok(())
    }

    /// The recovery time, when the base backups and WAL cover it.
    fn set_time(&mut self, v: String) -> Result<(), String> {
        if v.is_empty() {
            self.to_time.clear();
            return Ok(());
        }
        let t = pitr::parse_target_time(&v).map_err(|e| paragraph(&e))?;
        if let Some(problem) = self.reach.problem(t) {
            return Err(if self.kind() == Kind::TenantPitr {
                format!("{problem}. Choose a time in that range.")
            } else {
                format!("{problem}. Choose a time in that range, or leave it empty for the end of the archive.")
            });
        }
        self.to_time = v;
        Ok(())
    }

    /// The flag form of the choice: `restore …` (with `target`, the
    /// repository target named on the command line).
    pub fn argv(&self, target: Option<&str>) -> Vec<String> {
        let row = self.row();
        let mut v: Vec<String> = vec!["restore".into()];
        // A tenant restore's base backup is picked by its time.
        if self.kind() != Kind::TenantPitr {
            v.push(row.id.clone());
        }
        let mut flag = |name: &str, value: Option<&str>| {
            v.push(format!("--{name}"));
            v.extend(value.map(String::from));
        };
        match self.kind() {
            kind @ (Kind::Full | Kind::Merge) => {
                flag(
                    "type",
                    Some(if kind == Kind::Full { "full" } else { "merge" }),
                );
                flag("target-db", Some(&self.target_db));
                self.tenants.iter().for_each(|t| flag("tenant", Some(t)));
                if kind == Kind::Full {
                    flag("create", None);
                }
            }
            Kind::Directory => {
                flag("to", Some(&self.dir));
            }
            Kind::Pitr => {
                flag("type", Some("pitr"));
                flag("pgdata", Some(&self.dir));
                match self.to_time.as_str() {
                    "" => flag("to-latest", None),
                    t => flag("to-time", Some(t)),
                }
                if !self.owner.is_empty() {
                    flag("owner", Some(&self.owner));
                }
                if !self.port.is_empty() {
                    flag("start", None);
                    flag("set", Some(&format!("port={}", self.port)));
                }
            }
            Kind::TenantPitr => self.tenant_flags(&mut flag),
        }
        if let Some(t) = target {
            flag("target", Some(t));
        }
        flag("reason", Some(&self.reason));
        flag("yes", None);
        v
    }

    fn tenant_flags(&self, flag: &mut impl FnMut(&str, Option<&str>)) {
        let TenantPitr::Ready { physical, tenants } = &self.tenant_pitr else {
            unreachable!("offered only when ready")
        };
        flag("type", Some("pitr"));
        flag("source", Some(physical));
        self.tenants.iter().for_each(|t| flag("tenant", Some(t)));
        flag("to-time", Some(&self.to_time));
        flag("target-db", Some(&self.target_db));
        flag("tenant-source", Some(tenants));
        if !self.owner.is_empty() {
            flag("owner", Some(&self.owner));
        }
        match self.mode.expect("chosen") {
            Action::Diff => flag("dry-run", None),
            m => flag("mode", Some(m.as_str())),
        }
    }

    /// Step 4: what will happen, and what the operator types to confirm.
    pub fn summary(&self) -> Result<Summary> {
        let row = self.row();
        let kind = self.kind();
        let mut s = Summary {
            rows: vec![
                (
                    "backup".into(),
                    format!(
                        "{} ({}, {}, taken {})",
                        row.id,
                        row.source,
                        bytes(row.bytes),
                        row.started_at
                    ),
                ),
                ("restore type".into(), kind.label().into()),
            ],
            name: self.dir.clone(),
            what: "directory",
        };
        match kind {
            Kind::Directory => s.directory_rows(&self.dir),
            Kind::Pitr => s.pitr_rows(self),
            Kind::TenantPitr => s.tenant_rows(self)?,
            _ => s.database_rows(self)?,
        }
        s.add("reason", &self.reason);
        Ok(s)
    }
}

/// Step 4's table: label and value per row; the name to type to confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub rows: Vec<(String, String)>,
    pub name: String,
    /// What `name` is: "directory" or "database name".
    pub what: &'static str,
}

impl Summary {
    fn add(&mut self, label: &str, value: &str) {
        self.rows.push((label.into(), value.into()));
    }

    fn directory_rows(&mut self, dir: &str) {
        self.add("into directory", dir);
        self.add("dropped", "nothing (the directory must be empty)");
        self.add("kept", "everything else on this machine");
    }

    fn pitr_rows(&mut self, c: &Choice) {
        self.add("into data directory", &c.dir);
        if !c.owner.is_empty() {
            self.add("owned by", &c.owner);
        }
        self.add(
            "recover to",
            if c.to_time.is_empty() {
                "the end of the archived WAL"
            } else {
                &c.to_time
            },
        );
        let then = if c.port.is_empty() {
            "stop: start it yourself with pg_ctl -D DIR start".to_string()
        } else {
            format!(
                "start it on port {} and wait until recovery has finished",
                c.port
            )
        };
        self.add("then", &then);
        self.add("dropped", "nothing (the directory must be empty)");
        self.add("kept", "every running cluster, the source included");
    }

    /// A restore into a database: what is dropped and kept as the server
    /// looks now.
    fn database_rows(&mut self, c: &Choice) -> Result<()> {
        let kind = c.kind();
        let info = self.database_row(&c.target_db)?;
        let (dropped, kept) = match (kind, probe(&info)) {
            (Kind::Full, Some((false, _))) => ("nothing: the database does not exist and is created".to_string(), "every other database on the server"),
            (Kind::Full, Some((true, 0))) => ("nothing: the database exists and is empty".to_string(), "the database's settings and owner"),
            (Kind::Full, Some((true, n))) => (format!("nothing — the database holds {n} tables, so the restore will refuse (pick a new name)"), "the existing database, untouched"),
            (Kind::Full, None) => ("nothing: a full restore needs a new or empty database (the server could not be checked from here)".to_string(), "everything"),
            (Kind::Merge, _) => ("nothing: rows are only added".to_string(), "every existing row (conflicting backup rows are skipped)"),
            _ => ("-".to_string(), "-"),
        };
        self.add("dropped", &dropped);
        self.add("kept", kept);
        if kind == Kind::Merge {
            let tenants = if c.tenants.is_empty() {
                "all".to_string()
            } else {
                c.tenants.join(", ")
            };
            self.add("tenants", &tenants);
        }
        Ok(())
    }

    fn tenant_rows(&mut self, c: &Choice) -> Result<()> {
        if let TenantPitr::Ready { physical, .. } = &c.tenant_pitr {
            let from = format!("the newest base backup of '{physical}' consistent before the time, and its archived WAL");
            self.add("from", &from);
        }
        self.add("tenants", &c.tenants.join(", "));
        self.add("as they were at", &c.to_time);
        self.database_row(&c.target_db)?;
        if !c.owner.is_empty() {
            self.add("sandbox run by", &c.owner);
        }
        let (mode, dropped, kept) = match c.mode.expect("chosen") {
            Action::Merge => ("merge", "nothing: rows deleted since come back; rows that exist now are kept as they are", "every other tenant's rows"),
            Action::Replace => ("replace", "the tenants' rows as they are now: replaced, in one transaction, by their rows at the time", "every other tenant's rows"),
            Action::Diff => ("dry run", "nothing: a dry run writes nothing", "everything"),
        };
        self.add("mode", mode);
        self.add("dropped", dropped);
        self.add("kept", kept);
        Ok(())
    }

    /// The "into database" row; the database name is what is typed.
    fn database_row(&mut self, url: &str) -> Result<ConnInfo> {
        let info = ConnInfo::new(url, None)?;
        self.add("into database", &info.display());
        self.name = info.dbname().to_string();
        self.what = "database name";
        Ok(info)
    }
}

/// What the target looks like now: exists, and how many relations.
fn probe(t: &ConnInfo) -> Option<(bool, i64)> {
    let admin = t.with_db("postgres").connect().ok()?;
    let exists = !query(
        &admin,
        "SELECT 1 FROM pg_database WHERE datname = $1",
        &[&t.dbname()],
    )
    .ok()?
    .is_empty();
    if !exists {
        return Some((false, 0));
    }
    let c = t.connect().ok()?;
    let n: i64 = query(
        &c,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'",
        &[],
    )
    .ok()?[0]
        .get(0);
    Some((true, n))
}

/// Quotes for a POSIX shell when needed.
fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command line that does what `argv` does, for a shell.
pub fn command_line(config: Option<&Path>, argv: &[String]) -> String {
    let mut v: Vec<String> = vec!["vaultctl".into()];
    if let Some(c) = config {
        v.push("--config".into());
        v.push(sh(&c.display().to_string()));
    }
    v.extend(argv.iter().map(|a| sh(a)));
    v.join(" ")
}

#[cfg(test)]
mod tests;
