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
use crate::engine::command::{StderrTail, STDERR_TAIL};
use crate::error::{ExitStatus, Failure};
use crate::repo::backup::{ArtifactStream, Source};

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

/// What to do when the backup role cannot read every row: a role that
/// bypasses row-level security (`rls_preflight`, `vaultctl doctor`).
pub const RLS_REMEDY: &str = "Back up as a dedicated role that bypasses row-level security: CREATE ROLE vaultctl_backup LOGIN BYPASSRLS PASSWORD '…'; GRANT pg_read_all_data TO vaultctl_backup; then put vaultctl_backup in the source's url and its password in password_file.";

/// The tables with row-level security whose rows the connecting role may
/// not all see (it is not a superuser, lacks BYPASSRLS and does not own
/// them, or they force RLS on their owner); empty when it sees every row.
pub fn rls_blockers(client: &Client) -> Result<Vec<String>> {
    let role = query(
        client,
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
        &[],
    )?;
    if let Some(r) = role.first() {
        let (sup, bypass): (bool, bool) = (r.get(0), r.get(1));
        if sup || bypass {
            return Ok(Vec::new());
        }
    }
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relforcerowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relrowsecurity AND {USER_TABLES} AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE'))
          ORDER BY 1, 2"
    );
    Ok(query(client, &sql, &[])?
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
        .collect())
}

/// Fails when the connecting role cannot read every row of a table with
/// row-level security: pg_dump would fail on it (and `--enable-row-security`
/// would silently dump only the visible rows, so it is never used).
pub fn rls_preflight(client: &Client, conn: &ConnInfo) -> Result<()> {
    let tables = rls_blockers(client)?;
    if tables.is_empty() {
        return Ok(());
    }
    let user = conn.user();
    Err(Failure::new(
        ExitStatus::Failure,
        format!(
            "the role \"{user}\" cannot back up {} table{} with row-level security, because it is not a superuser, lacks BYPASSRLS and does not own {}: {}. pg_dump would fail on them, and dumping with --enable-row-security would silently leave out every row the policies hide, so nothing was dumped.",
            tables.len(),
            if tables.len() == 1 { "" } else { "s" },
            if tables.len() == 1 { "it (or it forces RLS on its owner)" } else { "them (or they force RLS on their owner)" },
            tables.join(", ")
        ),
    )
    .with_remedy(RLS_REMEDY)
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

/// Warns about tables whose schema, table or column name holds a line
/// break: pg_dump's COPY line for them spans several lines, which vaultctl's
/// restore refuses (it accepts COPY data only after pg_dump's one-line form).
fn multi_line_names(client: &Client) -> Result<()> {
    let sql = format!(
        "SELECT DISTINCT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          WHERE {USER_TABLES} AND (concat(n.nspname, c.relname, a.attname) ~ ('[' || chr(10) || chr(13) || ']'))
          ORDER BY 1, 2"
    );
    for r in query(client, &sql, &[])? {
        let t = TableName {
            schema: r.get(0),
            name: r.get(1),
        };
        tracing::warn!(
            "the table {} has a name (or a column name) with a line break: vaultctl restores refuse its COPY block, which pg_dump writes over several lines; rename it, or restore such a backup by hand with `vaultctl restore ID --stdout`",
            super::comment_text(&t.to_string())
        );
    }
    Ok(())
}

/// Exact rows per table, counted from the dump's COPY blocks as the stream
/// passes (for the manifest: `dr run` and `dr drill` check restores
/// against them).
pub type RowCounts = Arc<Mutex<std::collections::BTreeMap<String, u64>>>;

/// The dump's table of contents as it is recorded (`engine.toc`).
pub type TocRecorder = Arc<Mutex<super::toc::Recorder>>;

/// Passes a plain dump through unchanged while counting each COPY block's
/// rows and recording where the biggest blocks sit (the table of contents).
pub struct RowCounter<R> {
    inner: R,
    counts: RowCounts,
    toc: Option<TocRecorder>,
    /// The start of the current line (at most `LINE_PREFIX` bytes).
    line: Vec<u8>,
    line_len: usize,
    /// The stream offset of the current line's first byte.
    line_start: u64,
    /// Inside a COPY block: its table, rows so far and the offset of its
    /// `COPY` line.
    copy: Option<(String, u64, u64)>,
}

const LINE_PREFIX: usize = 64 * 1024;

impl<R> RowCounter<R> {
    pub fn new(inner: R, counts: RowCounts) -> Self {
        RowCounter {
            inner,
            counts,
            toc: None,
            line: Vec::new(),
            line_len: 0,
            line_start: 0,
            copy: None,
        }
    }

    /// Also records the table of contents into `toc`.
    pub fn with_toc(mut self, toc: TocRecorder) -> Self {
        self.toc = Some(toc);
        self
    }

    /// The line that started at `line_start` ended with its newline.
    fn end_line(&mut self) {
        // Just past the newline.
        let end = self.line_start + self.line_len as u64 + 1;
        match &mut self.copy {
            Some((table, n, offset)) => {
                if self.line_len == 2 && self.line == b"\\." {
                    let (table, n, offset) = (std::mem::take(table), *n, *offset);
                    if let Some(toc) = &self.toc {
                        toc.lock().unwrap().add(super::toc::CopyBlock {
                            table: table.clone(),
                            offset,
                            len: end - offset,
                            rows: n,
                        });
                    }
                    *self.counts.lock().unwrap().entry(table).or_default() += n;
                    self.copy = None;
                } else {
                    *n += 1;
                }
            }
            None => {
                if self.line.starts_with(b"COPY ") && self.line_len < LINE_PREFIX {
                    if let Some(h) =
                        super::filter::parse_copy_header(&String::from_utf8_lossy(&self.line))
                    {
                        self.copy = Some((h.table.to_string(), 0, self.line_start));
                    }
                }
            }
        }
        self.line.clear();
        self.line_len = 0;
        self.line_start = end;
    }

    fn scan(&mut self, mut buf: &[u8]) {
        // Inside COPY only the first bytes of a line matter (`\.`).
        while !buf.is_empty() {
            let cap = if self.copy.is_some() { 3 } else { LINE_PREFIX };
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    let keep = cap.saturating_sub(self.line.len()).min(i);
                    self.line.extend_from_slice(&buf[..keep]);
                    self.line_len += i;
                    self.end_line();
                    buf = &buf[i + 1..];
                }
                None => {
                    let keep = cap.saturating_sub(self.line.len()).min(buf.len());
                    self.line.extend_from_slice(&buf[..keep]);
                    self.line_len += buf.len();
                    buf = &[];
                }
            }
        }
    }
}

impl<R: Read> Read for RowCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n]);
        Ok(n)
    }
}

/// A full `pg_dump --format=plain` of one database.
pub struct FullDump {
    spec: PostgresSpec,
    started: bool,
    meta: serde_json::Value,
    counts: RowCounts,
    toc: TocRecorder,
}

impl FullDump {
    pub fn new(spec: PostgresSpec) -> Self {
        FullDump {
            spec,
            started: false,
            meta: serde_json::Value::Null,
            counts: RowCounts::default(),
            toc: Arc::new(Mutex::new(super::toc::Recorder::new(super::toc::MIN_BLOCK))),
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
        multi_line_names(&client)?;
        drop(client);
        if let (Some(server), Some(dump)) = (
            super::parse_version(&facts.server_version),
            super::parse_version(&pg_dump_version),
        ) {
            if dump.0 < server.0 {
                return Err(Failure::new(
                    ExitStatus::Failure,
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
            Failure::new(ExitStatus::Failure, format!("cannot start {}: {e}.", self.spec.pg_dump.display()))
                .with_remedy("Install the PostgreSQL client programs or set pg_bin_dir / pg_dump in the source's config.")
        })?;
        let stdout = child.stdout.take().expect("piped");
        crate::engine::command::widen_pipe(&stdout);
        let stderr = child.stderr.take().expect("piped");
        let tail = StderrTail::spawn(stderr, STDERR_TAIL);
        let program = self.spec.pg_dump.display().to_string();
        let db = conn.display();
        let finish = Box::new(move || -> Result<()> {
            let status = child.wait()?;
            let text = tail.finish();
            if status.success() {
                if !text.is_empty() {
                    tracing::warn!("pg_dump said: {text}");
                }
                return Ok(());
            }
            Err(Failure::new(
                ExitStatus::Failure,
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
            reader: Box::new(
                RowCounter::new(stdout, self.counts.clone()).with_toc(self.toc.clone()),
            ),
            finish,
        }))
    }

    fn metadata(&self) -> serde_json::Value {
        let mut meta = self.meta.clone();
        if let Some(m) = meta.as_object_mut() {
            // Exact rows per table, from the COPY blocks of the dump itself.
            m.insert(
                "row_counts".into(),
                serde_json::json!(*self.counts.lock().unwrap()),
            );
            // Where the biggest COPY blocks sit: a restore starts them at
            // once (see `toc`).
            m.insert(
                "toc".into(),
                serde_json::json!(self.toc.lock().unwrap().blocks()),
            );
        }
        meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn row_counter_counts_copy_rows_across_any_read_boundaries() {
        let dump = b"SET x = 1;\nCOPY \"public\".\"t\" (\"a\", \"b\") FROM stdin;\n1\tx\n2\t\\\\.\n3\ty\\nz\n\\.\n\nCOPY public.empty (a) FROM stdin;\n\\.\nCOPY \"s\".\"u\" (\"a\") FROM stdin;\n\\.x\n\\.\nSELECT 1;\n";
        let text = String::from_utf8_lossy(dump);
        let at = |s: &str| text.find(s).unwrap() as u64;
        // Where each block starts and ends (through its `\.` line).
        let t = at("COPY \"public\".\"t\"");
        let empty = at("COPY public.empty");
        let u = at("COPY \"s\".\"u\"");
        let expected = vec![
            crate::engine::postgres::toc::CopyBlock {
                table: "public.t".into(),
                offset: t,
                len: at("\nCOPY public.empty") - t,
                rows: 3,
            },
            crate::engine::postgres::toc::CopyBlock {
                table: "public.empty".into(),
                offset: empty,
                len: u - empty,
                rows: 0,
            },
            crate::engine::postgres::toc::CopyBlock {
                table: "s.u".into(),
                offset: u,
                len: at("SELECT 1;") - u,
                rows: 1,
            },
        ];
        for chunk in [1usize, 2, 3, 7, 4096] {
            let counts = RowCounts::default();
            let toc = TocRecorder::default();
            let mut r = RowCounter::new(
                Chunked {
                    data: &dump[..],
                    chunk,
                },
                counts.clone(),
            )
            .with_toc(toc.clone());
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, dump);
            let c = counts.lock().unwrap().clone();
            assert_eq!(c.get("public.t"), Some(&3), "chunk {chunk}: {c:?}");
            assert_eq!(c.get("public.empty"), Some(&0), "chunk {chunk}: {c:?}");
            assert_eq!(c.get("s.u"), Some(&1), "chunk {chunk}: {c:?}");
            let blocks = toc.lock().unwrap().blocks();
            assert_eq!(blocks, expected, "chunk {chunk}");
            for b in &blocks {
                let bytes = &dump[b.offset as usize..b.end() as usize];
                assert!(bytes.starts_with(b"COPY ") && bytes.ends_with(b"\n\\.\n"));
            }
        }
        // The backup records only the blocks big enough to matter.
        let toc = Arc::new(Mutex::new(crate::engine::postgres::toc::Recorder::new(
            expected[0].len,
        )));
        let mut r = RowCounter::new(&dump[..], RowCounts::default()).with_toc(toc.clone());
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(toc.lock().unwrap().blocks(), expected[..1]);
    }

    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }
}
