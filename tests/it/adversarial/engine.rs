//! Adversarial tests: backup content turned against the restore host (psql meta-commands, tenant-key injection).

#![allow(unused_imports)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;
use crate::pg::{fixture, Cluster, SourceDef, Vault, BACKUP_PASSWORD, SUPERUSER_PASSWORD};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// What a compromised backup host can do with the recipients and the dedup
/// key: run its own "pg_dump", which prints `sql`.
fn fake_pg_dump(dir: &Path, name: &str, sql: &str) -> PathBuf {
    let file = dir.join(format!("{name}.sql"));
    std::fs::write(&file, sql).unwrap();
    let script = dir.join(format!("{name}-pg_dump"));
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

fn db_exists(c: &Cluster, db: &str) -> bool {
    c.count(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'"),
    ) == 1
}

/// A hostile stream: some valid SQL and data, then `hostile` on line 6,
/// then more SQL that must never run either.
fn hostile_dump(hostile: &str) -> String {
    format!(
        "SET statement_timeout = 0;\nCREATE TABLE public.evil (a int);\nCOPY public.evil (a) FROM stdin;\n1\n\\.\n{hostile}\nCREATE TABLE public.after (a int);\n"
    )
}

#[test]
fn psql_meta_commands_in_a_backup_never_run() {
    let c = Cluster::start();
    c.psql("postgres", "CREATE DATABASE app");
    c.psql("app", "CREATE TABLE evil (a int)");
    let marks = tempfile::tempdir().unwrap();
    let m = |n: &str| marks.path().join(n);
    let variants: Vec<(&str, String, Option<PathBuf>)> = vec![
        (
            "bang",
            format!("\\! touch {}", m("bang").display()),
            Some(m("bang")),
        ),
        (
            "midline",
            format!("SELECT 1; \\! touch {}", m("midline").display()),
            Some(m("midline")),
        ),
        (
            "out",
            format!("\\o {}\nSELECT 1;", m("out").display()),
            Some(m("out")),
        ),
        (
            "copyprog",
            format!(
                "\\copy (select 1) to program 'touch {}'",
                m("copyprog").display()
            ),
            Some(m("copyprog")),
        ),
        ("set", "\\set ON_ERROR_STOP 0".to_string(), None),
    ];
    let scripts: Vec<PathBuf> = variants
        .iter()
        .map(|(name, hostile, _)| fake_pg_dump(marks.path(), name, &hostile_dump(hostile)))
        .collect();
    let v = Vault::new(
        &variants
            .iter()
            .zip(&scripts)
            .map(|((name, _, _), script)| SourceDef {
                name,
                url: c.url("postgres", "app"),
                password: SUPERUSER_PASSWORD,
                bin_dir: c.bin.clone(),
                pg_dump: Some(script.clone()),
            })
            .collect::<Vec<_>>(),
    );
    let ids: Vec<String> = variants.iter().map(|(n, _, _)| v.backup(&[n])).collect();
    let no_marks = |when: &str| {
        for (name, _, mark) in &variants {
            if let Some(mark) = mark {
                assert!(!mark.exists(), "{when}: the meta-command of '{name}' ran");
            }
        }
    };
    let refused = |o: &Output, id: &str, when: &str| {
        let e = stderr(o);
        assert_eq!(o.status.code(), Some(1), "{when}: {e}");
        assert!(
            e.contains("line 6") && e.contains(id) && e.contains("meta-command"),
            "{when}: the error must name the line and the backup: {e}"
        );
    };

    // Full restores into a new database: refused, nothing left behind.
    for ((name, _, _), id) in variants.iter().zip(&ids) {
        let db = format!("full_{name}");
        let o = v.run(&[
            "restore",
            id,
            "--type",
            "full",
            "--target-db",
            &c.url("postgres", &db),
            "--create",
            "--yes",
        ]);
        refused(&o, id, &format!("full restore of {name}"));
        assert!(!db_exists(&c, &db), "{name}: the new database is dropped");
    }
    no_marks("full restore");

    // Into an existing empty database: the rows before the hostile line are
    // not committed.
    c.psql("postgres", "CREATE DATABASE empty");
    let o = v.run(&[
        "restore",
        &ids[0],
        "--type",
        "full",
        "--target-db",
        &c.url("postgres", "empty"),
        "--yes",
    ]);
    refused(&o, &ids[0], "full restore into an empty database");
    assert_eq!(
        c.count(
            "empty",
            "SELECT count(*) FROM pg_class WHERE relname IN ('evil', 'after')"
        ),
        0
    );

    // The same refusal with a psql that predates \restrict: the scanner alone
    // stops it.
    let old = c.dir.path().join("old-psql");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(
        old.join("psql"),
        format!("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'psql (PostgreSQL) 15.13'; exit 0; fi\nexec \"{}\" \"$@\"\n", c.bin.join("psql").display()),
    )
    .unwrap();
    std::fs::set_permissions(old.join("psql"), std::fs::Permissions::from_mode(0o755)).unwrap();
    for (i, name) in [(1, "midline"), (3, "copyprog")] {
        let o = v.run(&[
            "restore",
            &ids[i],
            "--type",
            "full",
            "--target-db",
            &c.url("postgres", &format!("old_{name}")),
            "--create",
            "--yes",
            "--pg-bin-dir",
            &old.display().to_string(),
        ]);
        refused(&o, &ids[i], &format!("old psql, {name}"));
    }
    no_marks("old psql");

    // Merge: refused, the target unchanged.
    for (i, name) in [(0, "bang"), (2, "out")] {
        let o = v.run(&[
            "restore",
            &ids[i],
            "--type",
            "merge",
            "--target-db",
            &c.url("postgres", "app"),
            "--yes",
        ]);
        refused(&o, &ids[i], &format!("merge of {name}"));
    }
    assert_eq!(c.count("app", "SELECT count(*) FROM evil"), 0);

    // dr drill and dr run go through the same restore.
    let o = v.run(&[
        "dr",
        "drill",
        "--source",
        "bang",
        "--scratch-db",
        &c.url("postgres", "drill_bang"),
    ]);
    refused(&o, &ids[0], "dr drill");
    assert!(!db_exists(&c, "drill_bang"));
    let o = v.run(&[
        "dr",
        "run",
        "--source",
        "midline",
        "--target-db",
        &c.url("postgres", "dr_midline"),
        "--reason",
        "adversarial test",
        "--yes",
    ]);
    assert_ne!(o.status.code(), Some(0), "dr run: {}", stderr(&o));
    assert!(stderr(&o).contains("line 6"), "dr run: {}", stderr(&o));
    no_marks("dr");

    // Alerts: the failed restores and the failed drill, naming the backup
    // and the line.
    let alerts = v.json(&["alerts"]);
    let all = alerts.as_array().unwrap();
    for (kind, source) in [
        ("restore_failed", "bang"),
        ("restore_failed", "midline"),
        ("dr_drill_failed", "bang"),
        ("backup_refused", "bang"),
        ("backup_refused", "set"),
    ] {
        let a = all
            .iter()
            .find(|a| a["kind"] == kind && a["source"] == source)
            .unwrap_or_else(|| panic!("no {kind} alert for {source}: {alerts}"));
        let msg = a["message"].as_str().unwrap();
        assert!(msg.contains("line 6"), "{msg}");
        assert_eq!(a["severity"], "critical");
    }
}

/// Content with backslashes where psql allows them — COPY data, quoted
/// strings, dollar-quoted bodies, comments — restores exactly (full, merge,
/// drill), through the real pg_dump and a crafted stream alike.
#[test]
fn backslashes_in_data_strings_and_bodies_restore() {
    let c = Cluster::start();
    c.psql("postgres", "CREATE DATABASE app");
    c.psql_file(
        "app",
        r#"
CREATE TABLE t (id int PRIMARY KEY, s text CHECK (s IS DISTINCT FROM 'C:\'), d text DEFAULT E'x\\y;z');
INSERT INTO t (id, s) VALUES (1, E'\\N'), (2, E'a\\\\b'), (3, E'tab\there'), (4, E'\\.x'), (5, E'\\.'), (6, NULL),
  (7, E'line1\nline2'), (8, E'semi;colon'), (9, E'quote''s \\'' back'), (10, E'\\! not a command');
CREATE FUNCTION slash(x text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN replace(x, '\', ';'); END; $$;
CREATE FUNCTION atomic(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT x + 1; END;
COMMENT ON TABLE t IS 'semi; colon \ back';
"#,
    );
    let marks = tempfile::tempdir().unwrap();
    let crafted = fake_pg_dump(
        marks.path(),
        "crafted",
        "SET standard_conforming_strings = on;\n\
         CREATE TABLE public.c (id int, s text DEFAULT E'a\\\\b\\'s');\n\
         CREATE FUNCTION public.body() RETURNS text LANGUAGE plpgsql AS $_$\nBEGIN\n  RETURN '\\! id; \\o x';\nEND\n$_$;\n\
         /* a comment \\! id */ SELECT 1; -- and \\! id\n\
         COPY public.c (id, s) FROM stdin;\n1\t\\\\N\n2\t\\\\.x\n3\ta\\tb\\\\c\n4\t\\N\n\\.\n\
         SELECT 'multi\nline \\! id';\n",
    );
    let v = Vault::new(&[
        SourceDef {
            name: "db",
            url: c.url("postgres", "app"),
            password: SUPERUSER_PASSWORD,
            bin_dir: c.bin.clone(),
            pg_dump: None,
        },
        SourceDef {
            name: "crafted",
            url: c.url("postgres", "app"),
            password: SUPERUSER_PASSWORD,
            bin_dir: c.bin.clone(),
            pg_dump: Some(crafted),
        },
    ]);
    let id = v.backup(&["db"]);
    let digest = |db: &str| {
        c.psql(
            db,
            "SELECT string_agg(id || ':' || coalesce(s, '<null>') || ':' || d, '|' ORDER BY id) || slash('a\\b') || atomic(1) || obj_description('t'::regclass) FROM t",
        )
    };
    let original = digest("app");
    v.ok(&[
        "restore",
        &id,
        "--type",
        "full",
        "--target-db",
        &c.url("postgres", "copy"),
        "--create",
        "--yes",
    ]);
    assert_eq!(digest("copy"), original);

    // Merge the rows back into the copy.
    c.psql("copy", "DELETE FROM t WHERE id % 2 = 0");
    v.ok(&[
        "restore",
        &id,
        "--type",
        "merge",
        "--target-db",
        &c.url("postgres", "copy"),
        "--yes",
    ]);
    assert_eq!(digest("copy"), original);

    // A drill of the same backup.
    let d = v.json(&[
        "dr",
        "drill",
        "--source",
        "db",
        "--scratch-db",
        &c.url("postgres", "drill_db"),
    ]);
    assert_eq!(d["ok"], true, "{d}");

    // The crafted stream: strings, bodies, comments and COPY data with
    // backslashes.
    let cid = v.backup(&["crafted"]);
    v.ok(&[
        "restore",
        &cid,
        "--type",
        "full",
        "--target-db",
        &c.url("postgres", "crafted"),
        "--create",
        "--yes",
    ]);
    assert_eq!(
        c.psql(
            "crafted",
            "SELECT string_agg(id || '=' || coalesce(s, '<null>'), '|' ORDER BY id) || body() FROM c"
        ),
        "1=\\N|2=\\.x|3=a\tb\\c|4=<null>\\! id; \\o x"
    );
}

/// `s` as an E'' literal for the test's own SQL.
fn lit(s: &str) -> String {
    format!(
        "E'{}'",
        s.replace('\\', "\\\\")
            .replace('\'', "\\'")
            .replace('\n', "\\n")
            .replace('\t', "\\t")
    )
}

/// Tenant keys are data: a key holding a line break and a COPY block, a
/// quote, a backslash (exported with standard_conforming_strings off) or a
/// `;` exports exactly that tenant's rows, and a merge loads nothing else.
#[test]
fn tenant_keys_cannot_break_out_of_the_export() {
    let c = fixture();
    let injected = "x\nCOPY public.plans (id, name, price) FROM stdin;\n99\tinjected\t0\n\\.\n-- ";
    let keys = [injected, "o'brien", "back\\slash", "semi;colon"];
    for k in keys {
        c.psql(
            "app",
            &format!(
                "INSERT INTO tenants VALUES ({0}, 'T', 1); INSERT INTO customers (tenant_id, name) VALUES ({0}, 'c1'), ({0}, 'c2')",
                lit(k)
            ),
        );
    }
    // The backup's session reads '…' literals with backslash escapes.
    c.psql(
        "postgres",
        "ALTER DATABASE app SET standard_conforming_strings = off",
    );
    let v = Vault::new(&[SourceDef {
        name: "db",
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: None,
    }]);
    let id = v.backup(&["db", "--all-tenants"]);
    let in_list = keys.iter().map(|k| lit(k)).collect::<Vec<_>>().join(", ");
    let customers = |k: &str| {
        c.count(
            "app",
            &format!(
                "SELECT count(*) FROM customers WHERE tenant_id = {}",
                lit(k)
            ),
        )
    };
    let plans = || {
        c.psql(
            "app",
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM plans",
        )
    };
    let plans_before = plans();
    let others = c.count("app", "SELECT count(*) FROM customers");

    // All tenants merged back: each key's own rows, nothing else.
    c.psql(
        "app",
        &format!("DELETE FROM customers WHERE tenant_id IN ({in_list})"),
    );
    v.ok(&[
        "restore",
        &id,
        "--type",
        "merge",
        "--target-db",
        &c.url("postgres", "app"),
        "--yes",
    ]);
    for k in keys {
        assert_eq!(customers(k), 2, "tenant {k:?}");
    }
    assert_eq!(plans(), plans_before, "a tenant key loaded rows into plans");
    assert_eq!(c.count("app", "SELECT count(*) FROM customers"), others);

    // Selective: only the tenants asked for.
    c.psql(
        "app",
        &format!("DELETE FROM customers WHERE tenant_id IN ({in_list})"),
    );
    v.ok(&[
        "restore",
        &id,
        "--type",
        "merge",
        "--target-db",
        &c.url("postgres", "app"),
        "--tenant",
        "o'brien",
        "--tenant",
        "back\\slash",
        "--tenant",
        injected,
        "--yes",
    ]);
    assert_eq!(customers("o'brien"), 2);
    assert_eq!(customers("back\\slash"), 2);
    assert_eq!(customers(injected), 2);
    assert_eq!(customers("semi;colon"), 0);
    assert_eq!(plans(), plans_before);
}

/// pg_basebackup's WAL start and end points are found under a translated
/// locale too (German messages through LANGUAGE, which C.UTF-8 honours).
#[test]
fn base_backup_under_a_translated_locale() {
    let c = Cluster::start();
    let v = Vault::new(&[]);
    let pw = v.dir.path().join("cluster.password");
    std::fs::write(&pw, format!("{SUPERUSER_PASSWORD}\n")).unwrap();
    let mut config = std::fs::read_to_string(&v.config).unwrap();
    config.push_str(&format!(
        "[[source]]\nname = \"cluster\"\nkind = \"postgres-physical\"\nurl = \"{}\"\npassword_file = \"{}\"\npg_bin_dir = \"{}\"\n",
        c.url("postgres", "postgres"),
        pw.display(),
        c.bin.display()
    ));
    std::fs::write(&v.config, config).unwrap();
    let o = v
        .command(&["--json", "backup", "cluster"])
        .env("LANGUAGE", "de")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let list = v.json(&["list"]);
    assert_eq!(list[0]["kind"], "postgres-physical", "{list}");
    assert_eq!(list[0]["status"], "completed", "{list}");
}

/// A table name with a line break: pg_dump writes its COPY line over two
/// lines, which restores refuse (COPY data follows only pg_dump's one-line
/// form); the backup warns about it up front, and a tenant export refuses.
#[test]
fn names_with_line_breaks_are_named_at_backup_time() {
    let c = Cluster::start();
    c.psql("postgres", "CREATE DATABASE app");
    c.psql(
        "app",
        "CREATE TABLE tenants (id text PRIMARY KEY); CREATE TABLE \"two\nlines\" (tenant_id text, a int); INSERT INTO tenants VALUES ('t'); INSERT INTO \"two\nlines\" VALUES ('t', 1)",
    );
    let v = Vault::new(&[SourceDef {
        name: "db",
        url: c.url("postgres", "app"),
        password: SUPERUSER_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: None,
    }]);
    let o = v.run(&["--json", "backup", "db"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("line break") && stderr(&o).contains("two\\nlines"),
        "{}",
        stderr(&o)
    );
    let id = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = v.run(&[
        "restore",
        &id,
        "--type",
        "full",
        "--target-db",
        &c.url("postgres", "copy"),
        "--create",
        "--yes",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("COPY statement"), "{}", stderr(&o));
    let o = v.run(&["backup", "db", "--all-tenants"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("line break"), "{}", stderr(&o));
}
