//! Logical restores over the PostgreSQL protocol (no psql), on one and on
//! several connections: every object kind a SaaS schema uses, from pg_dump
//! 15 and 18 into PostgreSQL 15, compared table by table and schema dump by
//! schema dump; a failure in the middle of the data leaves the target as it
//! was.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pg::{self, fixture, run_ok, Cluster, SourceDef, Vault, BACKUP_PASSWORD};

/// Object kinds pg_dump emits, on top of the fixture (tables, keys, foreign
/// keys, RLS, owners, grants).
const KINDS: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE SEQUENCE ticket_seq START 100;
CREATE TABLE audit_log (id serial PRIMARY KEY, what text NOT NULL);
CREATE TABLE tickets (id int PRIMARY KEY DEFAULT nextval('ticket_seq'), mood mood NOT NULL, n posint, body text);
CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- a comment; COPY tickets FROM stdin;
  INSERT INTO audit_log (what) VALUES ('COPY x FROM stdin; ' || TG_OP);
  RETURN NEW;
END $$;
CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS $body$ SELECT a + b; $body$;
CREATE TRIGGER tickets_audit AFTER INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION audit();
CREATE VIEW ticket_moods AS SELECT mood, count(*) AS n FROM tickets GROUP BY mood;
CREATE MATERIALIZED VIEW ticket_totals AS SELECT count(*) AS n, sum(n) AS s FROM tickets;
CREATE TABLE events (id bigint, at date NOT NULL, payload text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_payload ON events (payload);
CREATE TABLE ticket_links (a int NOT NULL REFERENCES tickets, b int NOT NULL REFERENCES tickets, UNIQUE (a, b));
CREATE INDEX tickets_body ON tickets (lower(body));
ALTER TABLE tickets ENABLE ROW LEVEL SECURITY;
CREATE POLICY not_sad ON tickets USING (mood <> 'sad');
COMMENT ON TABLE tickets IS 'has ; and COPY t FROM stdin; and $$ in it';
COMMENT ON FUNCTION audit() IS 'audits; every insert';
GRANT SELECT ON tickets, ticket_moods TO app;
DO $$ BEGIN PERFORM 1; END $$;
INSERT INTO tickets (mood, n, body)
  SELECT (ARRAY['sad','ok','happy'])[g % 3 + 1]::mood, g, 'ticket ' || g || E'\t; COPY \\. x' FROM generate_series(1, 500) g;
INSERT INTO events SELECT g, date '2025-06-01' + g, 'e' || g FROM generate_series(1, 400) g;
INSERT INTO ticket_links SELECT g + 100, g + 101 FROM generate_series(0, 200) g;
REFRESH MATERIALIZED VIEW ticket_totals;
"#;

/// Count and digest of every table and materialized view, and every
/// sequence's state.
fn contents(c: &Cluster, db: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let rels = c.psql(
        db,
        "SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'm', 'S') AND n.nspname = 'public' ORDER BY 1",
    );
    for line in rels.lines() {
        let (rel, kind) = line.rsplit_once(':').unwrap();
        let v = if kind == "S" {
            c.psql(
                db,
                &format!("SELECT last_value || ':' || is_called FROM {rel}"),
            )
        } else {
            c.psql(db, &format!("SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {rel} x"))
        };
        out.insert(rel.to_string(), v);
    }
    out
}

/// `pg_dump --schema-only` of a database, without the `\restrict` lines
/// (their key is random).
fn schema(c: &Cluster, db: &str) -> String {
    let out = run_ok(
        Command::new(c.bin.join("pg_dump"))
            .args(["--schema-only", "-U", "postgres", "-h"])
            .arg(c.socket_dir())
            .args(["-p", &c.port.to_string(), db]),
        "pg_dump --schema-only",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn db_exists(c: &Cluster, db: &str) -> bool {
    c.count(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'"),
    ) == 1
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn every_object_kind_round_trips_on_one_and_on_several_connections() {
    let c = fixture();
    c.psql_file("app", KINDS);
    let source = |name: &'static str, bin: PathBuf| SourceDef {
        name,
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: bin,
        pg_dump: None,
    };
    let v = Vault::new(&[
        source("db15", c.bin.clone()),
        source("db18", pg::pg18_bin()),
    ]);
    let original = contents(&c, "app");
    assert_eq!(original["public.audit_log"].split(':').next(), Some("500"));
    assert_eq!(
        original["public.ticket_totals"].split(':').next(),
        Some("1")
    );
    let original_schema = schema(&c, "app");
    // psql is not needed: the bin dir given to the restore holds none.
    let no_psql = v.dir.path().join("no-psql");
    std::fs::create_dir_all(&no_psql).unwrap();
    let mut counts: Vec<serde_json::Value> = Vec::new();
    for (source, pg_dump) in [("db15", "15"), ("db18", "18")] {
        let id = v.backup(&[source]);
        for jobs in ["1", "3"] {
            let db = format!("r{pg_dump}_{jobs}");
            let url = c.url("postgres", &db);
            let bin = no_psql.display().to_string();
            let args = [
                "--json",
                "restore",
                &id,
                "--type",
                "full",
                "--target-db",
                &url,
                "--create",
                "--yes",
                "--jobs",
                jobs,
                "--pg-bin-dir",
                &bin,
            ];
            // pg_dump 18 on 3 connections: every COPY chunk goes through a
            // spill file.
            let spill = pg_dump == "18" && jobs == "3";
            v.set_config("restore_queue_chunks", spill.then_some("0"));
            let o = v.command(&args).output().unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let report = &r["report"];
            assert_eq!(
                report["phases"]["spilled_bytes"].as_u64().unwrap() > 0,
                spill,
                "{r}"
            );
            assert_eq!(
                report["phases"]["jobs"],
                jobs.parse::<u64>().unwrap(),
                "{r}"
            );
            assert!(
                report["phases"]["copy_blocks"].as_u64().unwrap() >= 13,
                "{r}"
            );
            if pg_dump == "18" {
                assert_eq!(report["dropped_settings"][0], "transaction_timeout", "{r}");
            }
            // The trigger did not fire during the load (audit_log unchanged),
            // the materialized view was refreshed, sequences were set.
            assert_eq!(
                contents(&c, &db),
                original,
                "pg_dump {pg_dump}, --jobs {jobs}"
            );
            assert_eq!(
                schema(&c, &db),
                original_schema,
                "pg_dump {pg_dump}, --jobs {jobs}"
            );
            assert!(!db_exists(&c, &format!("{db}_vaultctl_restore")));
            counts.push(report["tables"].clone());
        }
    }
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
    // RLS still applies to the application role in the copy.
    assert_eq!(
        c.psql(
            "r18_3",
            "SET ROLE app; SELECT count(*) FROM tickets WHERE mood = 'sad'"
        ),
        "0"
    );
}

/// A "pg_dump" that prints `sql` (a handmade dump).
fn fake_pg_dump(dir: &Path, sql: &str) -> PathBuf {
    let file = dir.join("dump.sql");
    std::fs::write(&file, sql).unwrap();
    let script = dir.join("fake-pg_dump");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 15.18'; exit 0; fi\nexec cat '{}'\n",
            file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Two rows in table `kept` of the existing database `keep`: what a failed
/// `--clean` restore into `keep` must leave as it was.
fn fill_keep(c: &Cluster) {
    c.psql(
        "keep",
        "CREATE TABLE kept (a int); INSERT INTO kept VALUES (1), (2)",
    );
}

/// What a failed `--clean` restore into `keep` leaves: its two rows, none of
/// the dump's relations (`relnames`, an SQL list), no temporary database,
/// and a critical `restore_failed` alert.
fn assert_keep_as_it_was(c: &Cluster, v: &Vault, relnames: &str) {
    assert_eq!(c.count("keep", "SELECT count(*) FROM kept"), 2);
    let dump_relations = format!("SELECT count(*) FROM pg_class WHERE relname IN ({relnames})");
    assert_eq!(c.count("keep", &dump_relations), 0, "{relnames}");
    assert!(!db_exists(c, "keep_vaultctl_restore"));
    let alerts = v.json(&["alerts"]);
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "restore_failed" && a["severity"] == "critical"),
        "{alerts}"
    );
}

/// The arguments of a confirmed full restore of `id` into `url` (`how`:
/// `--create` or `--clean`) on `jobs` connections.
fn full_restore_args<'a>(id: &'a str, url: &'a str, how: &'a str, jobs: &'a str) -> [&'a str; 10] {
    [
        "restore",
        id,
        "--type",
        "full",
        "--target-db",
        url,
        how,
        "--yes",
        "--jobs",
        jobs,
    ]
}

/// A vault whose source `name` (database `app` of `c`) is backed up by a
/// fake pg_dump that prints `dump`; the directory holds that pg_dump.
fn dump_vault(c: &Cluster, name: &str, dump: &str) -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::new(&[SourceDef {
        name,
        url: c.url("postgres", "app"),
        password: pg::SUPERUSER_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: Some(fake_pg_dump(dir.path(), dump)),
    }]);
    (dir, v)
}

#[test]
fn a_failure_in_the_data_leaves_the_target_as_it_was() {
    let c = Cluster::start();
    c.psql("postgres", "CREATE DATABASE app");
    c.psql_file("postgres", "CREATE DATABASE keep; CREATE DATABASE empty;");
    fill_keep(&c);
    let mut dump = String::from("SET statement_timeout = 0;\nCREATE TABLE public.a (x int);\nCREATE TABLE public.b (x int);\nCOPY public.a (x) FROM stdin;\n");
    for i in 0..20000 {
        dump.push_str(&format!("{i}\n"));
    }
    dump.push_str("\\.\nCOPY public.b (x) FROM stdin;\n3\nnot a number\n\\.\nCREATE INDEX a_x ON public.a (x);\n");
    let (_dir, v) = dump_vault(&c, "bad", &dump);
    let id = v.backup(&["bad"]);
    let restore = |db: &str, extra: &[&str]| {
        let url = c.url("postgres", db);
        let mut args = vec![
            "restore",
            &id,
            "--type",
            "full",
            "--target-db",
            &url,
            "--yes",
            "--jobs",
            "2",
        ];
        args.extend_from_slice(extra);
        let o = v.run(&args);
        assert_eq!(o.status.code(), Some(1), "{db}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("invalid input syntax"),
            "{db}: the server's reason: {}",
            stderr(&o)
        );
        stderr(&o)
    };
    // Replacing a database: it keeps its rows, the new one is dropped.
    let e = restore("keep", &["--clean"]);
    assert!(e.contains("was left as it was"), "{e}");
    assert_eq!(c.count("keep", "SELECT count(*) FROM kept"), 2);
    assert!(!db_exists(&c, "keep_vaultctl_restore"));
    // A new database: not created.
    let e = restore("fresh", &["--create"]);
    assert!(e.contains("was not created"), "{e}");
    assert!(!db_exists(&c, "fresh") && !db_exists(&c, "fresh_vaultctl_restore"));
    // An existing empty database: rolled back, still empty.
    restore("empty", &[]);
    assert_eq!(
        c.count(
            "empty",
            "SELECT count(*) FROM pg_class WHERE relname IN ('a', 'b', 'a_x')"
        ),
        0
    );
    // Restore log: three failed restores.
    let log = v.json(&["restores"]);
    assert_eq!(
        log.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == "failed")
            .count(),
        3,
        "{log}"
    );
}

/// The same losses in two copies of the fixture, merged back on one and on
/// three connections: the same counts, the same rows, no staging left.
#[test]
fn merges_on_one_and_on_several_connections_count_the_same() {
    let c = fixture();
    let v = Vault::new(&[SourceDef {
        name: "db",
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: None,
    }]);
    let full = v.backup(&["db"]);
    let all = v.backup(&["db", "--all-tenants"]);
    let original = c.digests("app", None);
    let lose = "DELETE FROM order_items WHERE order_id % 3 = 0;
         DELETE FROM orders o WHERE id % 3 = 0 AND NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id);
         DELETE FROM inventory WHERE product_id % 2 = 0;
         DELETE FROM order_items WHERE tenant_id = 'globex'; DELETE FROM inventory WHERE tenant_id = 'globex';
         DELETE FROM orders WHERE tenant_id = 'globex'; DELETE FROM products WHERE tenant_id = 'globex';
         DELETE FROM customers WHERE tenant_id = 'globex'; DELETE FROM tenants WHERE id = 'globex';
         DELETE FROM settings WHERE key = 'features';";
    for jobs in ["1", "3"] {
        c.psql("postgres", &format!("CREATE DATABASE m{jobs} TEMPLATE app"));
        c.psql_file(&format!("m{jobs}"), lose);
    }
    let merge = |backup: &str, jobs: &str, extra: &[&str]| {
        let url = c.url("postgres", &format!("m{jobs}"));
        let mut args = vec![
            "restore",
            backup,
            "--type",
            "merge",
            "--target-db",
            &url,
            "--yes",
            "--jobs",
            jobs,
        ];
        args.extend_from_slice(extra);
        let r = v.json(&args);
        assert_eq!(
            r["report"]["phases"]["jobs"],
            jobs.parse::<u64>().unwrap(),
            "{r}"
        );
        r["report"].clone()
    };
    let mut reports = Vec::new();
    for jobs in ["1", "3"] {
        // A tenant from the full dump (settings has no tenant column: left
        // out), then every tenant's export (several artifacts), then the
        // whole dump.
        let a = merge(&full, jobs, &["--tenant", "globex"]);
        let b = merge(&all, jobs, &[]);
        let f = merge(&full, jobs, &[]);
        assert_eq!(a["inserted"], 1 + 150 + 40 + 300 + 600 + 40, "{a}");
        assert!(b["inserted"].as_u64().unwrap() > 0, "{b}");
        assert_eq!(f["inserted"], 1, "settings only: {f}");
        let db = format!("m{jobs}");
        assert_eq!(c.digests(&db, None), original, "--jobs {jobs}");
        assert_eq!(
            c.count(
                &db,
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'vaultctl_merge%'"
            ),
            0
        );
        let strip = |r: &serde_json::Value| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("phases");
            r.as_object_mut().unwrap().remove("database");
            r
        };
        reports.push([strip(&a), strip(&b), strip(&f)]);
    }
    assert_eq!(reports[0], reports[1]);
}

/// The server kills a loader connection in the middle of a COPY (a row
/// trigger slows that table's load in the restore's own database, so the
/// test can see the COPY and terminate it): the restore fails with the
/// server's reason and exit 1, its database is dropped, the target is as
/// it was, and an alert is raised. Into an existing empty database the
/// restore runs on one connection whatever --jobs says, and says so.
#[test]
fn a_killed_connection_fails_the_restore_and_leaves_the_target_as_it_was() {
    let c = Cluster::start();
    c.psql_file(
        "postgres",
        "CREATE DATABASE app; CREATE DATABASE keep; CREATE DATABASE empty;",
    );
    fill_keep(&c);
    let mut dump = String::from(
        "SET statement_timeout = 0;\nCREATE TABLE public.a (x int);\nCREATE TABLE public.slow (x int);\n\
         CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  IF current_database() LIKE '%vaultctl_restore' THEN PERFORM pg_sleep(0.005); END IF;\n  RETURN NEW;\nEND $$;\n\
         CREATE TRIGGER slow BEFORE INSERT ON public.slow FOR EACH ROW EXECUTE FUNCTION public.slow();\n\
         COPY public.a (x) FROM stdin;\n",
    );
    for i in 0..1000 {
        dump.push_str(&format!("{i}\n"));
    }
    dump.push_str("\\.\nCOPY public.slow (x) FROM stdin;\n");
    for i in 0..4000 {
        dump.push_str(&format!("{i}\n"));
    }
    dump.push_str("\\.\nCREATE INDEX a_x ON public.a (x);\n");
    let (_dir, v) = dump_vault(&c, "slow", &dump);
    let id = v.backup(&["slow"]);
    let url = c.url("postgres", "keep");
    let started = std::time::Instant::now();
    let child = v
        .command(&[
            "restore",
            &id,
            "--type",
            "full",
            "--target-db",
            &url,
            "--clean",
            "--yes",
            "--jobs",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Terminate the backend running the slow table's COPY once it runs.
    let mut killed = false;
    while !killed && started.elapsed() < std::time::Duration::from_secs(60) {
        killed = c.psql(
            "postgres",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE 'COPY \"public\".\"slow\"%'",
        ) == "1";
        if !killed {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let o = child.wait_with_output().unwrap();
    assert!(killed, "the COPY never showed up: {}", stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("terminating connection"),
        "the server's reason: {e}"
    );
    assert!(e.contains("was left as it was"), "{e}");
    assert_keep_as_it_was(&c, &v, "'a', 'slow'");
    // An existing empty database: one connection, one transaction.
    let url = c.url("postgres", "empty");
    let o = v
        .command(&[
            "--json",
            "restore",
            &id,
            "--type",
            "full",
            "--target-db",
            &url,
            "--yes",
            "--jobs",
            "3",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["report"]["phases"]["jobs"], 1, "{r}");
    assert!(stderr(&o).contains("on one connection"), "{}", stderr(&o));
    assert_eq!(c.count("empty", "SELECT count(*) FROM slow"), 4000);
    for phase in ["schema_ms", "data_ms", "post_data_ms", "finalize_ms"] {
        assert!(r["report"]["phases"][phase].is_u64(), "{phase}: {r}");
    }
}

/// Without a terminal, the data phase's periodic lines show the tables
/// loaded of the tables the schema creates, the bytes, MB/s and the time
/// left; `--no-progress` prints none.
#[test]
fn data_phase_lines_show_tables_and_eta_without_a_terminal() {
    // The fixture alone (a stream the restore reader decodes in one run,
    // read whole before the schema is loaded): the data phase counts the
    // COPY bytes sent to the server, not those read ahead.
    let c = fixture();
    let v = Vault::new(&[SourceDef {
        name: "db",
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: None,
    }]);
    let id = v.backup(&["db"]);
    let restore = |db: &str, quiet: bool| {
        let url = c.url("postgres", db);
        let mut args = vec![
            "--json",
            "restore",
            &id,
            "--type",
            "full",
            "--target-db",
            &url,
            "--create",
            "--yes",
            "--jobs",
            "2",
        ];
        if quiet {
            args.insert(0, "--no-progress");
        }
        // A line at every step instead of every ten seconds.
        let o = v
            .command_with_progress(&args)
            .env("VAULTCTL_PROGRESS_EVERY_MS", "0")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (r["report"]["tables"].as_array().unwrap().len(), stderr(&o))
    };
    let (tables, err) = restore("progress_lines", false);
    assert!(tables >= 8, "{tables}");
    let data: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("vaultctl: restore: data (COPY): "))
        .collect();
    // Tables loaded of those the schema creates (the last ones may finish
    // while post-data runs), bytes of the stream's total, the time left.
    assert!(
        data.iter()
            .any(|l| l.contains(&format!("/{tables} tables, "))
                && !l.contains(&format!(": 0/{tables} tables"))
                && l.contains(" of ")
                && l.contains(" MB/s, ETA ")),
        "{err}"
    );
    // Started counting from none, every table known from the schema.
    assert!(data[0].contains(&format!(": 0/{tables} tables")), "{err}");
    let post = err
        .lines()
        .filter(|l| l.starts_with("vaultctl: restore: post-data (indexes, constraints): "));
    assert!(post.clone().any(|l| l.contains(" statements")), "{err}");
    let (_, quiet) = restore("progress_quiet", true);
    assert!(!quiet.contains("vaultctl: restore:"), "{quiet}");
}

/// A table several COPY segments long (`restore_segment_mib = 1`, about
/// 5.6 MB of rows, cut past each MiB whenever the other connection is idle,
/// so at least once), with its index waiting for every segment: the same tables, rows
/// and per-table counts on two connections as on one, also with every
/// chunk spilled; merged back (one tenant's rows through the row filter,
/// then the whole dump) the same counts and rows on two connections as on
/// one.
#[test]
fn a_big_table_loads_in_segments_on_several_connections() {
    let c = fixture();
    c.psql_file(
        "app",
        "CREATE TABLE big (id bigint PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, payload text NOT NULL);
         INSERT INTO big SELECT g, (ARRAY['acme','globex','initech','umbrella'])[g % 4 + 1], repeat(md5(g::text), 3) FROM generate_series(1, 50000) g;
         CREATE INDEX big_payload ON big (payload);",
    );
    let v = Vault::new(&[SourceDef {
        name: "db",
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: None,
    }]);
    let id = v.backup(&["db"]);
    let original = contents(&c, "app");
    v.set_config("restore_segment_mib", Some("1"));
    let phases = |r: &serde_json::Value, what: &str| {
        let p = &r["report"]["phases"];
        let n = |k: &str| p[k].as_u64().unwrap_or_else(|| panic!("{k}: {r}"));
        (
            n("copy_blocks"),
            n("copy_segments"),
            n("spilled_bytes"),
            what.to_string(),
        )
    };
    let mut tables = Vec::new();
    for (db, jobs, queue) in [
        ("s1", "1", None),
        ("s2", "2", None),
        ("s2_spill", "2", Some("0")),
    ] {
        v.set_config("restore_queue_chunks", queue);
        let url = c.url("postgres", db);
        let r = v.json(&full_restore_args(&id, &url, "--create", jobs));
        let (blocks, segments, spilled, _) = phases(&r, db);
        if jobs == "1" {
            assert_eq!(segments, blocks, "one connection, no cut: {r}");
        } else {
            assert!(segments > blocks, "big is cut into segments: {r}");
        }
        if queue.is_some() {
            assert!(spilled > 0, "every chunk spilled: {r}");
        }
        assert_eq!(contents(&c, db), original, "{db}");
        assert_eq!(
            c.count(
                db,
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'big_payload'"
            ),
            1
        );
        let big = r["report"]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == "public.big")
            .cloned();
        assert_eq!(
            big.as_ref().map(|t| t["rows"].clone()),
            Some(50000.into()),
            "{r}"
        );
        tables.push(r["report"]["tables"].clone());
    }
    assert!(tables.windows(2).all(|w| w[0] == w[1]), "{tables:?}");
    v.set_config("restore_queue_chunks", None);

    // Merges: a tenant's lost rows through the row filter, then the rest.
    let lose = "DELETE FROM big WHERE id % 3 = 0 OR tenant_id = 'globex';";
    let mut reports = Vec::new();
    for jobs in ["1", "2"] {
        let db = format!("big_m{jobs}");
        c.psql("postgres", &format!("CREATE DATABASE {db} TEMPLATE app"));
        c.psql(&db, lose);
        let url = c.url("postgres", &db);
        let merge = |extra: &[&str]| {
            let mut args = vec![
                "restore",
                &id,
                "--type",
                "merge",
                "--target-db",
                &url,
                "--yes",
                "--jobs",
                jobs,
            ];
            args.extend_from_slice(extra);
            let r = v.json(&args);
            let (blocks, segments, _, _) = phases(&r, &db);
            assert_eq!(jobs == "2", segments > blocks, "{r}");
            let mut report = r["report"].clone();
            report.as_object_mut().unwrap().remove("phases");
            report.as_object_mut().unwrap().remove("database");
            report
        };
        let tenant = merge(&["--tenant", "globex"]);
        assert_eq!(tenant["inserted"], 12500, "{tenant}");
        let rest = merge(&[]);
        assert_eq!(rest["inserted"], (50000 - 12500) / 3, "{rest}");
        assert_eq!(contents(&c, &db), original, "--jobs {jobs}");
        reports.push([tenant, rest]);
    }
    assert_eq!(reports[0], reports[1]);
}

/// A bad row about 2.6 MB into a table cut into COPY segments (1 MiB,
/// whenever the other connection is idle), loaded on two connections while
/// earlier segments committed on theirs: the restore
/// fails with the server's reason, the database it loaded into is dropped,
/// the target is as it was, and an alert is raised.
#[test]
fn a_failure_in_a_later_segment_leaves_the_target_as_it_was() {
    let c = Cluster::start();
    c.psql_file("postgres", "CREATE DATABASE app; CREATE DATABASE keep;");
    fill_keep(&c);
    let mut dump = String::from(
        "SET statement_timeout = 0;\nCREATE TABLE public.a (x int, pad text);\nCOPY public.a (x, pad) FROM stdin;\n",
    );
    let pad = "p".repeat(100);
    // About 3.2 MB of rows; the bad one at about 2.6 MB.
    for i in 0..30000 {
        if i == 25000 {
            dump.push_str("oops\tbad\n");
        } else {
            dump.push_str(&format!("{i}\t{pad}\n"));
        }
    }
    dump.push_str("\\.\nCREATE INDEX a_x ON public.a (x);\n");
    let (_dir, v) = dump_vault(&c, "bad", &dump);
    let id = v.backup(&["bad"]);
    v.set_config("restore_segment_mib", Some("1"));
    for (db, flag, said) in [
        ("keep", "--clean", "was left as it was"),
        ("fresh", "--create", "was not created"),
    ] {
        let url = c.url("postgres", db);
        let o = v.run(&full_restore_args(&id, &url, flag, "2"));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{db}: {e}");
        assert!(e.contains("invalid input syntax"), "{db}: {e}");
        assert!(e.contains(said), "{db}: {e}");
        assert!(!db_exists(&c, &format!("{db}_vaultctl_restore")), "{db}");
    }
    assert_keep_as_it_was(&c, &v, "'a', 'a_x'");
    assert!(!db_exists(&c, "fresh"));
}

/// The settings of a parallel restore reach every connection: a generated
/// column computed by the server while each COPY segment loads records the
/// worker's `maintenance_work_mem` and `synchronous_commit`
/// (`restore_maintenance_work_mem_mib = 77`, and off). A table's first COPY
/// segment is loaded with `FREEZE` (its pages all-frozen in the visibility
/// map, `pg_visibility`), later segments of the same table are not; the
/// rows are all there.
#[test]
fn a_parallel_restore_sets_its_session_and_freezes_first_segments() {
    let c = Cluster::start();
    c.psql_file("postgres", "CREATE DATABASE app;");
    let mut dump = String::from(
        "SET statement_timeout = 0;\n\
         CREATE FUNCTION public.setting(name text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT current_setting(name) $$;\n\
         CREATE TABLE public.small (x int, mwm text GENERATED ALWAYS AS (public.setting('maintenance_work_mem')) STORED, sc text GENERATED ALWAYS AS (public.setting('synchronous_commit')) STORED);\n\
         CREATE TABLE public.big (x int, pad text, mwm text GENERATED ALWAYS AS (public.setting('maintenance_work_mem')) STORED);\n\
         COPY public.big (x, pad) FROM stdin;\n",
    );
    let pad = "p".repeat(100);
    // About 3.2 MB of rows, first (the other connection is idle): cut into
    // segments of 1 MiB.
    for i in 0..30000 {
        dump.push_str(&format!("{i}\t{pad}\n"));
    }
    dump.push_str(
        "\\.\nCOPY public.small (x) FROM stdin;\n1\n2\n3\n\\.\nCREATE INDEX big_x ON public.big (x);\n",
    );
    let (_dir, v) = dump_vault(&c, "probe", &dump);
    let id = v.backup(&["probe"]);
    v.set_config("restore_segment_mib", Some("1"));
    v.set_config("restore_maintenance_work_mem_mib", Some("77"));
    let url = c.url("postgres", "restored");
    let r = v.json(&full_restore_args(&id, &url, "--create", "2"));
    let phases = &r["report"]["phases"];
    assert!(
        phases["copy_segments"].as_u64() > phases["copy_blocks"].as_u64(),
        "big is cut into segments: {r}"
    );
    assert_eq!(
        c.psql(
            "restored",
            "SELECT string_agg(DISTINCT mwm || ' ' || sc, ',') FROM small"
        ),
        "77MB off"
    );
    assert_eq!(
        c.psql("restored", "SELECT string_agg(DISTINCT mwm, ',') FROM big"),
        "77MB"
    );
    assert_eq!(c.count("restored", "SELECT count(*) FROM big"), 30000);
    c.psql("restored", "CREATE EXTENSION pg_visibility");
    let frozen = |t: &str| {
        c.psql(
            "restored",
            &format!("SELECT (all_frozen > 0)::text || ' ' || (all_frozen = pg_relation_size('{t}') / 8192)::text FROM pg_visibility_map_summary('{t}')"),
        )
    };
    // small: one segment, every page frozen; big: the first segment's
    // pages frozen, the later segments' not.
    assert_eq!(frozen("small"), "true true");
    assert_eq!(frozen("big"), "true false");
}

/// The engine metadata of backup `id`'s manifest, opened with the
/// repository's keys; `forge` rewrites it and seals the manifest again
/// with the repository key (what an attacker holding the keys, or a bug,
/// could write).
fn manifest_engine(
    v: &Vault,
    id: &str,
    forge: Option<&dyn Fn(&mut serde_json::Value)>,
) -> serde_json::Value {
    use vaultctl::repo::{format::manifest_path, manifest, restore, Repository};
    let loaded = vaultctl::config::load(&vaultctl::config::Overrides {
        config: Some(v.config.clone()),
        catalog: None,
        identity_file: None,
    })
    .unwrap();
    let repo = Repository::open(&loaded, None).unwrap();
    let (header, mut body) = restore::load_body(&repo, &repo.stores, id).unwrap();
    if let Some(f) = forge {
        f(&mut body.engine);
        let sealed = manifest::encode(&header, &body, &repo.dedup, &repo.recipients).unwrap();
        let path = v.dir.path().join("repo").join(manifest_path(id));
        std::fs::write(path, sealed).unwrap();
    }
    body.engine
}

/// The backup records where its biggest COPY blocks sit (`engine.toc`);
/// a parallel restore starts them at once, each on a connection and a
/// reader of its own, the biggest first (at most jobs - 1). The restored
/// tables, rows and schema are the same on 1, 2 and 3 connections, and as
/// from the same backup with its table of contents taken out of the
/// manifest (the way backups made before it restore).
#[test]
fn the_biggest_copy_blocks_start_at_once_from_the_table_of_contents() {
    let c = fixture();
    c.psql_file(
        "app",
        "CREATE TABLE big (id bigint PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, payload text NOT NULL);
         INSERT INTO big SELECT g, (ARRAY['acme','globex','initech','umbrella'])[g % 4 + 1], repeat(md5(g::text), 3) FROM generate_series(1, 20000) g;
         CREATE INDEX big_payload ON big (payload);
         CREATE TABLE bigger (id bigint PRIMARY KEY, big_id bigint NOT NULL REFERENCES big, note text);
         INSERT INTO bigger SELECT g, g % 20000 + 1, repeat(md5((g * 7)::text), 4) FROM generate_series(1, 20000) g;
         CREATE INDEX bigger_big ON bigger (big_id);",
    );
    let v = Vault::new(&[SourceDef {
        name: "db",
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: None,
    }]);
    let id = v.backup(&["db"]);
    let toc = manifest_engine(&v, &id, None)["toc"].clone();
    // Only the blocks of at least 1 MiB, in stream order (big before
    // bigger: pg_dump writes the data by table name).
    let tables: Vec<&str> = toc
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["table"].as_str().unwrap())
        .collect();
    assert_eq!(tables, ["public.big", "public.bigger"], "{toc}");
    assert_eq!(toc[0]["rows"], 20000, "{toc}");
    assert!(toc[0]["offset"].as_u64() < toc[1]["offset"].as_u64());
    let original = contents(&c, "app");
    let original_schema = schema(&c, "app");
    v.set_config("restore_side_block_mib", Some("1"));
    let restore = |db: &str, jobs: &str| {
        let url = c.url("postgres", db);
        let r = v.json(&full_restore_args(&id, &url, "--create", jobs));
        assert_eq!(contents(&c, db), original, "{db}");
        assert_eq!(schema(&c, db), original_schema, "{db}");
        assert!(!db_exists(&c, &format!("{db}_vaultctl_restore")));
        let side = r["report"]["phases"]["side_blocks"].as_u64().unwrap();
        (side, r["report"]["tables"].clone())
    };
    let (side1, tables1) = restore("toc1", "1");
    let (side2, tables2) = restore("toc2", "2");
    let (side3, tables3) = restore("toc3", "3");
    assert_eq!((side1, side2, side3), (0, 1, 2));
    // The manifest without its table of contents: restored as before.
    manifest_engine(
        &v,
        &id,
        Some(&|e| {
            e.as_object_mut().unwrap().remove("toc");
        }),
    );
    assert_eq!(manifest_engine(&v, &id, None).get("toc"), None);
    let (side_old, tables_old) = restore("toc_old", "3");
    assert_eq!(side_old, 0);
    assert_eq!(tables1, tables2);
    assert_eq!(tables1, tables3);
    assert_eq!(tables1, tables_old);
    let big = tables1
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.bigger")
        .cloned()
        .unwrap();
    assert_eq!(big["rows"], 20000);
    assert_eq!(big["acknowledged"], 20000);
}

/// A table of contents that does not describe the stream (sealed with the
/// repository key, so only the loader's own checks catch it): a block not
/// at its `COPY` line, of another table, ending before or after its `\.`
/// line, entries overlapping or past the end of the stream. Each restore
/// fails with the reason before anything is made visible: the database it
/// replaces keeps its rows, the one it loaded into is dropped.
#[test]
fn a_forged_table_of_contents_fails_the_restore_and_leaves_the_target_as_it_was() {
    let c = Cluster::start();
    c.psql_file("postgres", "CREATE DATABASE app; CREATE DATABASE keep;");
    fill_keep(&c);
    let mut dump = String::from(
        "SET statement_timeout = 0;\nCREATE TABLE public.a (x int, pad text);\nCREATE TABLE public.b (x int);\nCOPY public.a (x, pad) FROM stdin;\n",
    );
    let pad = "p".repeat(100);
    for i in 0..15000 {
        dump.push_str(&format!("{i}\t{pad}\n"));
    }
    dump.push_str(
        "\\.\nCOPY public.b (x) FROM stdin;\n1\n2\n\\.\nCREATE INDEX a_x ON public.a (x);\n",
    );
    let (_dir, v) = dump_vault(&c, "toc", &dump);
    let id = v.backup(&["toc"]);
    v.set_config("restore_side_block_mib", Some("1"));
    let engine = manifest_engine(&v, &id, None);
    let good = engine["toc"][0].clone();
    let (offset, len) = (
        good["offset"].as_u64().unwrap(),
        good["len"].as_u64().unwrap(),
    );
    assert_eq!(offset as usize, dump.find("COPY public.a").unwrap());
    assert_eq!((offset + len) as usize, dump.find("COPY public.b").unwrap());
    let entry = |table: &str, offset: u64, len: u64| serde_json::json!({"table": table, "offset": offset, "len": len, "rows": 15000});
    let b_end = dump.find("CREATE INDEX").unwrap() as u64;
    let forgeries = [
        (
            "not at its COPY line",
            vec![entry("public.a", offset + 1, len - 1)],
        ),
        ("another table", vec![entry("public.b", offset, len)]),
        ("ending early", vec![entry("public.a", offset, len - 1)]),
        (
            "ending late",
            vec![entry("public.a", offset, b_end - offset)],
        ),
        (
            "overlapping",
            vec![
                entry("public.a", offset, len),
                entry("public.a", offset + 10, 10),
            ],
        ),
        (
            "past the end",
            vec![entry("public.a", offset, dump.len() as u64)],
        ),
    ];
    for (what, toc) in forgeries {
        manifest_engine(&v, &id, Some(&|e| e["toc"] = serde_json::json!(toc)));
        for (db, flag, said) in [
            ("keep", "--clean", "was left as it was"),
            ("fresh", "--create", "was not created"),
        ] {
            let url = c.url("postgres", db);
            let o = v.run(&full_restore_args(&id, &url, flag, "2"));
            let e = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{what}, {db}: {e}");
            assert!(e.contains("table of contents"), "{what}, {db}: {e}");
            // Overlapping or out-of-range entries are refused before the
            // restore starts; the others while the stream is read.
            if !matches!(what, "overlapping" | "past the end") {
                assert!(e.contains(said), "{what}, {db}: {e}");
            }
            assert!(!db_exists(&c, &format!("{db}_vaultctl_restore")), "{what}");
        }
        assert_eq!(c.count("keep", "SELECT count(*) FROM kept"), 2, "{what}");
        assert!(!db_exists(&c, "fresh"), "{what}");
    }
    // The true one restores.
    manifest_engine(&v, &id, Some(&|e| e["toc"] = serde_json::json!([good])));
    let url = c.url("postgres", "fresh");
    let r = v.json(&full_restore_args(&id, &url, "--create", "2"));
    assert_eq!(r["report"]["phases"]["side_blocks"], 1, "{r}");
    assert_eq!(c.count("fresh", "SELECT count(*) FROM a"), 15000);
    assert_eq!(c.count("fresh", "SELECT count(*) FROM b"), 2);
}
