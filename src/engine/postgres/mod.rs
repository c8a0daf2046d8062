//! The PostgreSQL engine: full logical backups with `pg_dump`, tenant-scoped
//! exports through COPY, and restores (full with `psql`, merge and selective
//! through staging tables).
//!
//! Passwords come from a configured file, `$PGPASSWORD` or a pgpass file and
//! are handed to children in their environment only: never on a command
//! line, in a log line or in the catalog. Queries go through tokio-postgres
//! on the storage runtime, driven from blocking code with `block_on`.

pub mod check;
pub mod dump;
pub mod filter;
pub mod load;
pub mod physical;
pub mod pitr;
pub mod restore;
pub mod sandbox;
pub mod sqlscan;
pub mod tenant_apply;
pub mod tenant_merge;
pub mod tenants;
pub mod toc;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::error::{ExitStatus, Failure};
use crate::storage::runtime;

/// Where a database is and how to log in.
#[derive(Clone)]
pub struct ConnInfo {
    pub config: Config,
    password: Option<String>,
}

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnInfo({})", self.display())
    }
}

impl ConnInfo {
    /// Parses `url` (which must hold no password) and finds the password:
    /// `password_file`, else `$PGPASSWORD`, else `$PGPASSFILE`/`~/.pgpass`.
    pub fn new(url: &str, password_file: Option<&Path>) -> Result<ConnInfo> {
        // A string that does not parse is never echoed: it may hold a password.
        let mut config: Config = url.parse().map_err(|e| {
            Failure::new(
                ExitStatus::Usage,
                format!(
                    "the database URL is not a PostgreSQL URL ({}).",
                    crate::redact::conninfo_error(&e)
                ),
            )
            .with_remedy("Write postgresql://USER@HOST:PORT/DATABASE.")
        })?;
        if config.get_password().is_some() {
            return Err(Failure::new(ExitStatus::Usage, "the database URL holds a password.")
                .with_remedy("Remove it and pass the password through PGPASSWORD, a pgpass file (PGPASSFILE) or the source's password_file: URLs end up in process lists and logs.")
                .into());
        }
        // libpq's environment defaults, as the CLI read them at startup.
        let env = &crate::settings::environment().libpq;
        if config.get_user().is_none() {
            let user = env
                .user
                .clone()
                .or_else(|| env.login.clone())
                .unwrap_or_else(|| "postgres".into());
            config.user(&user);
        }
        if config.get_dbname().is_none() {
            let db = env
                .database
                .clone()
                .unwrap_or_else(|| config.get_user().unwrap_or("postgres").to_string());
            config.dbname(&db);
        }
        if config.get_hosts().is_empty() {
            config.host(
                env.host
                    .clone()
                    .unwrap_or_else(|| "/var/run/postgresql".into()),
            );
        }
        if config.get_ports().is_empty() {
            config.port(
                env.port
                    .as_deref()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(5432),
            );
        }
        let mut info = ConnInfo {
            config,
            password: None,
        };
        info.password = match password_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| {
                        Failure::new(
                            ExitStatus::Usage,
                            format!(
                                "cannot read the PostgreSQL password file {}: {e}.",
                                p.display()
                            ),
                        )
                        .with_remedy(
                            "Check password_file in the config and that this user may read it.",
                        )
                    })?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            None => env.password.clone().or_else(|| info.pgpass_lookup()),
        };
        if let Some(p) = &info.password {
            info.config.password(p.as_bytes());
        }
        Ok(info)
    }

    pub fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        }
    }

    pub fn port(&self) -> u16 {
        self.config.get_ports().first().copied().unwrap_or(5432)
    }

    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("postgres")
    }

    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or("postgres")
    }

    /// The same server, another database.
    pub fn with_db(&self, db: &str) -> ConnInfo {
        let mut c = self.clone();
        c.config.dbname(db);
        c
    }

    /// `postgresql://user@host:port/db`, never with a password.
    pub fn display(&self) -> String {
        let host = self.host();
        let host = if host.starts_with('/') {
            format!("[{host}]")
        } else {
            host
        };
        format!(
            "postgresql://{}@{}:{}/{}",
            self.user(),
            host,
            self.port(),
            self.dbname()
        )
    }

    fn pgpass_lookup(&self) -> Option<String> {
        let env = &crate::settings::environment().libpq;
        let file = env
            .passfile
            .clone()
            .or_else(|| env.home.as_ref().map(|h| h.join(".pgpass")))?;
        let text = std::fs::read_to_string(file).ok()?;
        let host = self.host();
        let host = if host.starts_with('/') {
            "localhost".to_string()
        } else {
            host
        };
        let want = [
            host,
            self.port().to_string(),
            self.dbname().to_string(),
            self.user().to_string(),
        ];
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let fields = split_pgpass(line);
            if fields.len() != 5 {
                continue;
            }
            if fields[..4]
                .iter()
                .zip(want.iter())
                .all(|(f, w)| f == "*" || f == w)
            {
                return Some(fields[4].clone());
            }
        }
        None
    }

    /// A libpq command: the connection in PG* variables, the password in
    /// PGPASSWORD (the child's environment only, never its argv).
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PGHOST", self.host())
            .env("PGPORT", self.port().to_string())
            .env("PGUSER", self.user())
            .env("PGDATABASE", self.dbname())
            .env("PGAPPNAME", "vaultctl")
            .env_remove("PGSERVICE");
        match &self.password {
            Some(p) => cmd.env("PGPASSWORD", p),
            None => cmd.env_remove("PGPASSWORD"),
        };
        english_messages(&mut cmd);
        cmd
    }

    /// Connects on a runtime of the calling thread's own: the connection
    /// is driven only inside that runtime's `block_on`, on this thread, so
    /// a COPY's messages reach their reader without a hand-over between
    /// threads (the storage runtime's I/O thread would read the socket and
    /// wake the reader for every few rows).
    pub fn connect_on_this_thread(&self) -> Result<(tokio::runtime::Runtime, Client)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = rt.block_on(self.connect_here())?;
        Ok((rt, client))
    }

    /// Connects; the connection is driven on the storage runtime.
    pub fn connect(&self) -> Result<Arc<Client>> {
        Ok(Arc::new(runtime().block_on(self.connect_here())?))
    }

    /// Connects, the connection driven by a task of the runtime this runs on.
    async fn connect_here(&self) -> Result<Client> {
        let (client, conn) = self.config.connect(NoTls).await.map_err(|e| {
            Failure::new(ExitStatus::Failure, format!("cannot connect to {}: {}.", self.display(), pg_error(&e)))
                .with_remedy("Check the URL, that the server is running and accepts this user, and the password (password_file, PGPASSWORD or PGPASSFILE).")
        })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("PostgreSQL connection ended: {e}");
            }
        });
        Ok(client)
    }
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().unwrap().push(n);
                }
            }
            ':' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

/// A database URL for messages: `postgresql://user@host:port/db` as parsed,
/// never with a password; a string that does not parse is not echoed.
pub fn redact_url(url: &str) -> String {
    match crate::redact::without_password(url).parse::<Config>() {
        Ok(c) => {
            let info = ConnInfo {
                config: c,
                password: None,
            };
            info.display()
        }
        Err(_) => crate::redact::UNPARSABLE.to_string(),
    }
}

/// The server's message of a database error (with detail and hint).
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!(" Hint: {h}"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
    }
}

/// Runs a query on the runtime and maps errors to one paragraph.
pub fn query(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>> {
    runtime()
        .block_on(client.query(sql, params))
        .map_err(|e| anyhow::anyhow!("{}", pg_error(&e)))
        .with_context(|| format!("query failed: {}", first_line(sql)))
}

pub fn execute(client: &Client, sql: &str) -> Result<()> {
    runtime()
        .block_on(client.batch_execute(sql))
        .map_err(|e| anyhow::anyhow!("{}", pg_error(&e)))
        .with_context(|| format!("statement failed: {}", first_line(sql)))
}

fn first_line(sql: &str) -> String {
    let l = sql.trim().lines().next().unwrap_or("").trim();
    if l.len() > 120 {
        format!("{}…", &l[..120])
    } else {
        l.to_string()
    }
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A string literal that means `s` whatever standard_conforming_strings
/// is: `'text'` with quotes doubled, or — when `s` holds a backslash —
/// `E'text'` with backslashes doubled too (as PostgreSQL's own
/// `quote_literal` does). A `'…'` literal with a backslash would end early
/// with standard_conforming_strings off and let the rest run as SQL.
pub fn quote_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', r"\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// `s` for one line of a `--` comment: as a JSON string, so a line break
/// (psql ends a comment at `\n` or `\r`) or a control character can never
/// start a line of SQL.
pub fn comment_text(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into())
}

/// Refuses a name that cannot stay on one line of generated SQL (vaultctl
/// frames COPY blocks line by line).
pub fn one_line_name(what: &str, name: &str) -> Result<()> {
    if name.contains(['\n', '\r', '\0']) {
        return Err(Failure::new(
            ExitStatus::Failure,
            format!(
                "the {what} {} holds a line break, which a vaultctl tenant export cannot frame.",
                comment_text(name)
            ),
        )
        .with_remedy(
            "Rename it (ALTER TABLE … RENAME), or back up the whole database without --tenant.",
        )
        .into());
    }
    Ok(())
}

/// `schema.table`, both quoted.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// `(major, minor)` from `pg_dump (PostgreSQL) 15.18 (Debian …)` or `18.6`.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let word = text
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let mut parts = word.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// The locale variables for a PostgreSQL program whose messages vaultctl
/// reads (pg_basebackup's WAL start point, versions, psql's errors): its
/// messages in English (`LC_MESSAGES=C`, no `LANGUAGE`), every other
/// category as it was — an `LC_ALL`, which would override LC_MESSAGES, is
/// handed down as each of the other categories instead, so the character
/// type (and with it the client encoding) does not change. `None`: remove.
fn message_env(
    get: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<(&'static str, Option<std::ffi::OsString>)> {
    let mut env = vec![("LC_MESSAGES", Some("C".into())), ("LANGUAGE", None)];
    if let Some(all) = get("LC_ALL").filter(|v| !v.is_empty()) {
        env.push(("LC_ALL", None));
        for cat in [
            "LC_CTYPE",
            "LC_COLLATE",
            "LC_NUMERIC",
            "LC_TIME",
            "LC_MONETARY",
        ] {
            env.push((cat, Some(all.clone())));
        }
    }
    env
}

/// Sets [`message_env`] on `cmd`.
pub fn english_messages(cmd: &mut Command) -> &mut Command {
    let lc_all = &crate::settings::environment().lc_all;
    for (k, v) in message_env(|k| if k == "LC_ALL" { lc_all.clone() } else { None }) {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd
}

/// `pg_dump --version` (or psql's) as text, with a clear error when missing.
pub fn program_version(program: &Path) -> Result<String> {
    let out = english_messages(&mut Command::new(program)).arg("--version").output().map_err(|e| {
        Failure::new(ExitStatus::Failure, format!("cannot run {}: {e}.", program.display()))
            .with_remedy("Install the PostgreSQL client programs (Debian: postgresql-client), or set pg_bin_dir, pg_dump or psql in the source's config (restore: --pg-bin-dir).")
    })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A user table: schema, name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn quoted(&self) -> String {
        qualified(&self.schema, &self.name)
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// The condition that selects the user tables of a database in pg_class `c`
/// joined with pg_namespace `n`.
pub const USER_TABLES: &str = "c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/// Orders `tables` so that every table comes after the tables it references
/// (foreign keys among them); cycles are broken by name, with a warning.
pub fn fk_order(client: &Client, tables: &[TableName]) -> Result<Vec<TableName>> {
    let rows = query(
        client,
        "SELECT cn.nspname, c.relname, fn.nspname, f.relname
           FROM pg_constraint k
           JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
           JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
          WHERE k.contype = 'f'",
        &[],
    )?;
    let mut deps: std::collections::BTreeMap<TableName, Vec<TableName>> =
        tables.iter().map(|t| (t.clone(), Vec::new())).collect();
    for r in rows {
        let from = TableName {
            schema: r.get(0),
            name: r.get(1),
        };
        let to = TableName {
            schema: r.get(2),
            name: r.get(3),
        };
        if from != to && deps.contains_key(&to) {
            if let Some(d) = deps.get_mut(&from) {
                d.push(to);
            }
        }
    }
    let mut out: Vec<TableName> = Vec::new();
    let mut left: Vec<TableName> = deps.keys().cloned().collect();
    while !left.is_empty() {
        let ready: Vec<TableName> = left
            .iter()
            .filter(|t| deps[*t].iter().all(|d| out.contains(d)))
            .cloned()
            .collect();
        if ready.is_empty() {
            let t = left.remove(0);
            tracing::warn!(
                "foreign keys between {} and other tables form a cycle; it is ordered by name",
                t
            );
            out.push(t);
            continue;
        }
        left.retain(|t| !ready.contains(t));
        out.extend(ready);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some((15, 18))
        );
        assert_eq!(parse_version("psql (PostgreSQL) 18.6"), Some((18, 6)));
        assert_eq!(parse_version("15.4"), Some((15, 4)));
    }

    #[test]
    fn redaction_and_quoting() {
        assert_eq!(
            redact_url("postgresql://u:pw@h/db"),
            "postgresql://u@h:5432/db"
        );
        assert_eq!(
            redact_url("postgresql://u:p@ss@h:5433/db"),
            "postgresql://u@h:5433/db"
        );
        assert_eq!(
            redact_url("postgresql://u@h/db"),
            "postgresql://u@h:5432/db"
        );
        for bad in [
            "host=h password=SECRET port=x",
            "postgresql://u:SECRET@h:notaport/db",
            "postgresql://u:SECRET@h/db?SECRET",
        ] {
            assert!(!redact_url(bad).contains("SECRET"), "{bad}");
            let e = ConnInfo::new(bad, None).unwrap_err();
            assert!(
                !crate::error::paragraph(&e).contains("SECRET"),
                "{bad}: {e}"
            );
        }
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        // The same value whatever standard_conforming_strings is.
        assert_eq!(quote_literal(r"a\' OR true --"), r"E'a\\'' OR true --'");
        assert_eq!(quote_literal(r"x\"), r"E'x\\'");
        assert_eq!(
            comment_text("x\nCOPY public.plans FROM stdin;\r\\."),
            r#""x\nCOPY public.plans FROM stdin;\r\\.""#
        );
        assert!(one_line_name("table", "a\nb").is_err());
        assert!(one_line_name("table", r#"a "b" \c"#).is_ok());
        assert_eq!(
            split_pgpass(r"h:5432:db:u:p\:w"),
            vec!["h", "5432", "db", "u", "p:w"]
        );
    }

    #[test]
    fn messages_in_english_without_touching_the_character_type() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            message_env(move |k| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            })
        };
        let get = |e: &[(&str, Option<std::ffi::OsString>)], k: &str| {
            e.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone().map(|v| v.into_string().unwrap()))
        };
        let e = env(&[("LANG", "de_DE.UTF-8"), ("LANGUAGE", "de")]);
        assert_eq!(get(&e, "LC_MESSAGES"), Some(Some("C".into())));
        assert_eq!(get(&e, "LANGUAGE"), Some(None));
        assert_eq!(get(&e, "LC_CTYPE"), None, "LANG still decides the rest");
        let e = env(&[("LC_ALL", "de_DE.UTF-8")]);
        assert_eq!(get(&e, "LC_ALL"), Some(None));
        assert_eq!(get(&e, "LC_MESSAGES"), Some(Some("C".into())));
        assert_eq!(get(&e, "LC_CTYPE"), Some(Some("de_DE.UTF-8".into())));
        assert_eq!(get(&e, "LC_NUMERIC"), Some(Some("de_DE.UTF-8".into())));
        // The children vaultctl starts get it.
        let c = ConnInfo::new("postgresql://u@127.0.0.1:5433/db", None).unwrap();
        let cmd = c.command(Path::new("pg_basebackup"));
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.contains(&(
            std::ffi::OsStr::new("LC_MESSAGES"),
            Some(std::ffi::OsStr::new("C"))
        )));
        assert!(envs.contains(&(std::ffi::OsStr::new("LANGUAGE"), None)));
    }

    #[test]
    fn password_in_url_is_refused() {
        assert!(ConnInfo::new("postgresql://u:pw@127.0.0.1/db", None).is_err());
        let c = ConnInfo::new("postgresql://u@127.0.0.1:5433/db", None).unwrap();
        assert_eq!(c.display(), "postgresql://u@127.0.0.1:5433/db");
    }
}
