//! Full logical backups: `pg_dump --format=plain` streamed into the
//! pipeline, after a row-level security preflight.

use std::io::Read;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio_postgres::Client;

use super::{query, ConnInfo, TableName, USER_TABLES};
use crate::config::PostgresSpec;
use crate::engine::command::describe_status;
use crate::error::{ExitKind, Failure};
use crate::repo::backup::{ArtifactStream, Source};

const STDERR_TAIL: usize = 4096;

/// Server facts for the manifest.
pub struct ServerFacts {
    pub server_version: String,
    pub database: String,
    pub role: String,
}

pub fn server_facts(client: &Client) -> Result<ServerFacts> {
    let r = query(
        client,
        "SELECT current_setting('server_version'), current_database()::text, current_user::text",
        &[],
    )?;
    Ok(ServerFacts {
        server_version: r[0].get(0),
        database: r[0].get(1),
        role: r[0].get(2),
    })
}

/// Fails when the connecting role cannot read every row of a table with
/// row-level security: pg_dump would fail on it (and `--enable-row-security`
/// would silently dump only the visible rows, so it is never used).
pub fn rls_preflight(client: &Client, conn: &ConnInfo) -> Result<()> {
    let role = query(
        client,
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
        &[],
    )?;
    if let Some(r) = role.first() {
        let (sup, bypass): (bool, bool) = (r.get(0), r.get(1));
        if sup || bypass {
            return Ok(());
        }
    }
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relforcerowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relrowsecurity AND {USER_TABLES} AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE'))
          ORDER BY 1, 2"
    );
    let rows = query(client, &sql, &[])?;
    if rows.is_empty() {
        return Ok(());
    }
    let tables: Vec<String> = rows
        .iter()
        .map(|r| {
            let t = TableName {
                schema: r.get(0),
                name: r.get(1),
            };
            if r.get::<_, bool>(2) {
                format!("{t} (FORCE ROW LEVEL SECURITY)")
            } else {
                t.to_string()
            }
        })
        .collect();
    let user = conn.user();
    Err(Failure::new(
        ExitKind::Failure,
        format!(
            "the role \"{user}\" cannot back up {} table{} with row-level security, because it is not a superuser, lacks BYPASSRLS and does not own {}: {}. pg_dump would fail on them, and dumping with --enable-row-security would silently leave out every row the policies hide, so nothing was dumped.",
            tables.len(),
            if tables.len() == 1 { "" } else { "s" },
            if tables.len() == 1 { "it (or it forces RLS on its owner)" } else { "them (or they force RLS on their owner)" },
            tables.join(", ")
        ),
    )
    .with_remedy(
        "Back up as a dedicated role that bypasses row-level security: CREATE ROLE vaultctl_backup LOGIN BYPASSRLS PASSWORD '…'; GRANT pg_read_all_data TO vaultctl_backup; then put vaultctl_backup in the source's url and its password in password_file.",
    )
    .into())
}

/// Row estimates of every user table (`null` where never analyzed).
fn row_estimates(client: &Client) -> Result<serde_json::Value> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.reltuples::float8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_TABLES} ORDER BY 1, 2"
    );
    let mut out = serde_json::Map::new();
    for r in query(client, &sql, &[])? {
        let t = TableName {
            schema: r.get(0),
            name: r.get(1),
        };
        let est: f64 = r.get(2);
        out.insert(
            t.to_string(),
            if est < 0.0 {
                serde_json::Value::Null
            } else {
                serde_json::json!(est as i64)
            },
        );
    }
    Ok(serde_json::Value::Object(out))
}

/// A full `pg_dump --format=plain` of one database.
pub struct FullDump {
    spec: PostgresSpec,
    started: bool,
    meta: serde_json::Value,
}

impl FullDump {
    pub fn new(spec: PostgresSpec) -> Self {
        FullDump {
            spec,
            started: false,
            meta: serde_json::Value::Null,
        }
    }
}

/// Keeps the last bytes of a child's stderr.
pub fn collect_tail(mut r: impl Read, tail: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut t = tail.lock().unwrap();
        t.extend_from_slice(&buf[..n]);
        if t.len() > STDERR_TAIL {
            let cut = t.len() - STDERR_TAIL;
            t.drain(..cut);
        }
    }
}

impl Source for FullDump {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        if self.started {
            return Ok(None);
        }
        self.started = true;
        let conn = ConnInfo::new(&self.spec.url, self.spec.password_file.as_deref())?;
        let pg_dump_version = super::program_version(&self.spec.pg_dump)?;
        let client = conn.connect()?;
        rls_preflight(&client, &conn)?;
        let facts = server_facts(&client)?;
        let tables = row_estimates(&client)?;
        drop(client);
        if let (Some(server), Some(dump)) = (
            super::parse_version(&facts.server_version),
            super::parse_version(&pg_dump_version),
        ) {
            if dump.0 < server.0 {
                return Err(Failure::new(
                    ExitKind::Failure,
                    format!("{} is version {}, older than the server ({}); pg_dump refuses to dump a newer server.", self.spec.pg_dump.display(), dump.0, facts.server_version),
                )
                .with_remedy("Install the client programs of the server's major version (or newer) and point pg_bin_dir at them.")
                .into());
            }
        }
        self.meta = serde_json::json!({
            "mode": "full",
            "format": "plain",
            "server_version": facts.server_version,
            "pg_dump_version": pg_dump_version,
            "database": facts.database,
            "role": facts.role,
            "url": conn.display(),
            "tables": tables,
            "tenant_spec": self.spec.tenants,
        });
        let mut cmd = conn.command(&self.spec.pg_dump);
        cmd.args(["--format=plain", "--no-password", "--quote-all-identifiers"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            Failure::new(ExitKind::Failure, format!("cannot start {}: {e}.", self.spec.pg_dump.display()))
                .with_remedy("Install the PostgreSQL client programs or set pg_bin_dir / pg_dump in the source's config.")
        })?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let tail = Arc::new(Mutex::new(Vec::new()));
        let tail_thread = {
            let tail = tail.clone();
            std::thread::spawn(move || collect_tail(stderr, tail))
        };
        let program = self.spec.pg_dump.display().to_string();
        let db = conn.display();
        let finish = Box::new(move || -> Result<()> {
            let status = child.wait()?;
            let _ = tail_thread.join();
            let text = String::from_utf8_lossy(&tail.lock().unwrap())
                .trim()
                .to_string();
            if status.success() {
                if !text.is_empty() {
                    tracing::warn!("pg_dump said: {text}");
                }
                return Ok(());
            }
            Err(Failure::new(
                ExitKind::Failure,
                format!(
                    "pg_dump ({program}) of {db} {}{}",
                    describe_status(&status),
                    if text.is_empty() {
                        ".".to_string()
                    } else {
                        format!("; its stderr ended with: {text}")
                    }
                ),
            )
            .with_remedy(
                "No backup was recorded as complete; fix the cause and run the backup again.",
            )
            .into())
        });
        Ok(Some(ArtifactStream {
            name: "dump.sql".into(),
            format: "stream".into(),
            reader: Box::new(stdout),
            finish,
        }))
    }

    fn metadata(&self) -> serde_json::Value {
        self.meta.clone()
    }
}
