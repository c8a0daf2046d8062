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
            let mut cmd = v.command(&args);
            if spill {
                cmd.env("VAULTCTL_RESTORE_QUEUE", "0");
            }
            let o = cmd.output().unwrap();
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

#[test]
fn a_failure_in_the_data_leaves_the_target_as_it_was() {
    let c = Cluster::start();
    c.psql("postgres", "CREATE DATABASE app");
    c.psql_file("postgres", "CREATE DATABASE keep; CREATE DATABASE empty;");
    c.psql(
        "keep",
        "CREATE TABLE kept (a int); INSERT INTO kept VALUES (1), (2)",
    );
    let mut dump = String::from("SET statement_timeout = 0;\nCREATE TABLE public.a (x int);\nCREATE TABLE public.b (x int);\nCOPY public.a (x) FROM stdin;\n");
    for i in 0..20000 {
        dump.push_str(&format!("{i}\n"));
    }
    dump.push_str("\\.\nCOPY public.b (x) FROM stdin;\n3\nnot a number\n\\.\nCREATE INDEX a_x ON public.a (x);\n");
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::new(&[SourceDef {
        name: "bad",
        url: c.url("postgres", "app"),
        password: pg::SUPERUSER_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: Some(fake_pg_dump(dir.path(), &dump)),
    }]);
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
