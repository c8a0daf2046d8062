//! The PostgreSQL engine against real PostgreSQL 15 clusters (and pg_dump
//! 18): full, tenant and selective backups and restores, the RLS preflight,
//! a killed pg_dump, cross-version restores, confirmation and the restore log.

use crate::pg;

use pg::{
    fixture, Cluster, SourceDef, Vault, APP_PASSWORD, BACKUP_PASSWORD, SUPERUSER_PASSWORD, TENANTS,
};

fn vault(c: &Cluster) -> Vault {
    Vault::new(&[
        SourceDef {
            name: "db",
            url: c.url("backup", "app"),
            password: BACKUP_PASSWORD,
            bin_dir: c.bin.clone(),
            pg_dump: None,
        },
        SourceDef {
            name: "db-as-app",
            url: c.url("app", "app"),
            password: APP_PASSWORD,
            bin_dir: c.bin.clone(),
            pg_dump: None,
        },
    ])
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn full_backup_and_full_restore_roundtrip_with_restore_log() {
    let c = fixture();
    let v = vault(&c);
    let id = v.backup(&["db"]);
    let original = c.digests("app", None);
    assert!(original["order_items"].starts_with("2400:"), "{original:?}");

    // The manifest records versions, database and row estimates.
    let list = v.json(&["list"]);
    assert_eq!(list[0]["kind"], "postgres");
    let sql = v.ok(&["restore", &id, "--stdout"]);
    assert!(
        sql.contains("CREATE TABLE \"public\".\"order_items\""),
        "{}",
        &sql[..500.min(sql.len())]
    );
    assert!(!sql.contains(BACKUP_PASSWORD));

    // Without --yes and without a terminal: refused, exit 2, naming --yes.
    let target = c.url("postgres", "copy");
    let o = v.run(&[
        "restore",
        &id,
        "--type",
        "full",
        "--target-db",
        &target,
        "--create",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    assert_eq!(
        c.count(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'copy'"
        ),
        0
    );

    // A missing database without --create is refused.
    let o = v.run(&[
        "restore",
        &id,
        "--type",
        "full",
        "--target-db",
        &target,
        "--yes",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--create"));

    v.ok(&[
        "restore",
        &id,
        "--type",
        "full",
        "--target-db",
        &target,
        "--create",
        "--yes",
        "--reason",
        "restore drill",
    ]);
    assert_eq!(c.digests("copy", None), original);
    // RLS and ownership came along.
    assert_eq!(
        c.psql(
            "copy",
            "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'orders'"
        ),
        "t"
    );

    // A non-empty database is refused without --clean, replaced with it.
    let o = v.run(&[
        "restore",
        &id,
        "--type",
        "full",
        "--target-db",
        &target,
        "--yes",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--clean"), "{}", stderr(&o));
    c.psql("copy", "DELETE FROM inventory WHERE tenant_id = 'acme'");
    // This time the target's password comes from a file, not PGPASSWORD
    // (psql gets it too).
    let pw = v.dir.path().join("target.password");
    std::fs::write(&pw, format!("{SUPERUSER_PASSWORD}\n")).unwrap();
    let pw = pw.display().to_string();
    let o = v
        .command(&[
            "restore",
            &id,
            "--type",
            "full",
            "--target-db",
            &target,
            "--clean",
            "--yes",
            "--password-file",
            &pw,
        ])
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(c.digests("copy", None), original);

    // The restore log: every restore, without passwords.
    let log = v.json(&["restores"]);
    let rows = log.as_array().unwrap();
    let done: Vec<_> = rows
        .iter()
        .filter(|r| r["type"] == "full" && r["outcome"] == "succeeded")
        .collect();
    assert_eq!(done.len(), 2, "{log}");
    // Refused attempts are in the log too, as failed, with why.
    let refused = rows
        .iter()
        .filter(|r| r["type"] == "full" && r["outcome"] == "failed")
        .count();
    assert_eq!(refused, 2, "{log}");
    let first = done
        .iter()
        .find(|r| r["reason"] == "restore drill")
        .expect("reason recorded");
    assert_eq!(first["backup_id"], id.as_str());
    assert_eq!(first["outcome"], "succeeded");
    assert_eq!(first["operator"], "tester");
    assert_eq!(first["target"], target.as_str());
    assert!(first["rows"].as_u64().unwrap() >= 3000, "{first}");
    assert!(first["finished_at"].is_string());
    assert!(!log.to_string().contains(pg::SUPERUSER_PASSWORD));
    let text = v.ok(&["restores"]);
    assert!(text.contains("restore drill"), "{text}");
}

#[test]
fn rls_preflight_names_tables_and_the_fix() {
    let c = fixture();
    let v = vault(&c);
    let o = v.run(&["backup", "db-as-app"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    for t in [
        "public.customers",
        "public.orders",
        "public.order_items",
        "public.inventory",
    ] {
        assert!(e.contains(t), "{t} missing from: {e}");
    }
    assert!(
        !e.contains("public.products"),
        "app owns products (no FORCE): {e}"
    );
    assert!(
        e.contains("BYPASSRLS") && e.contains("pg_read_all_data"),
        "{e}"
    );
    assert!(!e.contains(APP_PASSWORD));
    assert_eq!(v.manifests(), 0);
    let list = v.json(&["list"]);
    assert_eq!(list[0]["status"], "failed");
    assert!(list[0]["error"]
        .as_str()
        .unwrap()
        .contains("row-level security"));
    // The same database as the backup role works.
    v.backup(&["db"]);
    assert_eq!(v.manifests(), 1);
}

#[test]
fn tenant_backups_and_merge_restore() {
    let c = fixture();
    let v = vault(&c);
    let before: Vec<_> = TENANTS.iter().map(|t| c.digests("app", Some(t))).collect();

    // One tenant.
    let one = v.backup(&["db", "--tenant", "acme"]);
    let sql = v.ok(&["restore", &one, "--stdout"]);
    assert!(sql.contains("acme") && !sql.contains("globex"));
    // Tables appear in foreign-key order.
    let pos = |t: &str| {
        sql.find(&format!("COPY \"public\".\"{t}\""))
            .unwrap_or_else(|| panic!("{t} not exported"))
    };
    assert!(
        pos("tenants") < pos("customers")
            && pos("customers") < pos("orders")
            && pos("orders") < pos("order_items")
    );
    assert!(pos("products") < pos("order_items") && pos("products") < pos("inventory"));
    let o = v.run(&["backup", "db", "--tenant", "nosuch"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // All tenants: one artifact each, globals listed.
    let all = v.backup(&["db", "--all-tenants"]);
    let o = v.run(&["restore", &all, "--stdout"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("tenant-acme") && stderr(&o).contains("tenant-umbrella"),
        "{}",
        stderr(&o)
    );
    let o = v.run(&["backup", "db", "--all-tenants"]);
    assert!(
        stderr(&o).contains("public.plans") && stderr(&o).contains("public.settings"),
        "globals must be listed: {}",
        stderr(&o)
    );

    // Lose part of acme's data, then merge it back from the all-tenants backup.
    c.psql_file(
        "app",
        "DELETE FROM order_items WHERE tenant_id = 'acme' AND order_id % 3 = 0;
         DELETE FROM orders o WHERE tenant_id = 'acme' AND id % 3 = 0 AND NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id);
         DELETE FROM inventory WHERE tenant_id = 'acme' AND product_id % 2 = 0;
         UPDATE customers SET email = 'changed@acme.example' WHERE id = (SELECT min(id) FROM customers WHERE tenant_id = 'acme');",
    );
    let missing_items = 600
        - c.count(
            "app",
            "SELECT count(*) FROM order_items WHERE tenant_id = 'acme'",
        );
    let missing_orders = 300
        - c.count(
            "app",
            "SELECT count(*) FROM orders WHERE tenant_id = 'acme'",
        );
    assert!(missing_items > 0 && missing_orders > 0);
    // As after restoring the schema elsewhere: the id sequences start low.
    c.psql_file(
        "app",
        "SELECT setval('orders_id_seq', 1); SELECT setval(pg_get_serial_sequence('order_items', 'id'), 1);",
    );
    let o = v.run(&[
        "restore",
        &all,
        "--type",
        "merge",
        "--target-db",
        &c.url("postgres", "app"),
        "--tenant",
        "acme",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "merge without --yes and no TTY must refuse: {}",
        stderr(&o)
    );
    let r = v.json(&[
        "restore",
        &all,
        "--type",
        "merge",
        "--target-db",
        &c.url("postgres", "app"),
        "--tenant",
        "acme",
        "--yes",
        "--reason",
        "ticket 42",
    ]);
    let table = |n: &str| {
        r["report"]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == format!("public.{n}"))
            .unwrap()
            .clone()
    };
    assert_eq!(
        table("order_items")["inserted"].as_i64().unwrap(),
        missing_items,
        "{r}"
    );
    assert_eq!(
        table("order_items")["skipped"].as_i64().unwrap(),
        600 - missing_items
    );
    assert_eq!(
        table("orders")["inserted"].as_i64().unwrap(),
        missing_orders
    );
    assert_eq!(table("customers")["inserted"], 0);
    assert_eq!(table("customers")["skipped"], 150);
    // The sequences behind the merged ids moved up (only those), so the
    // application's next insert gets a fresh id.
    let advanced = r["report"]["sequences_advanced"].as_array().unwrap();
    assert_eq!(advanced.len(), 2, "{r}");
    assert!(
        advanced
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("public.orders_id_seq = ")),
        "{r}"
    );
    let max_order = c.count("app", "SELECT max(id) FROM orders");
    let next = c.count(
        "app",
        "INSERT INTO orders (tenant_id, customer_id, created_at) SELECT 'acme', min(id), now() FROM customers WHERE tenant_id = 'acme' RETURNING id",
    );
    assert_eq!(next, max_order + 1);
    c.psql("app", &format!("DELETE FROM orders WHERE id = {next}"));
    assert_eq!(table("inventory")["inserted"], 20);
    // No duplicates, the existing (changed) row kept, other tenants untouched.
    let after = c.digests("app", Some("acme"));
    for t in ["orders", "order_items", "inventory", "products", "tenants"] {
        assert_eq!(after[t], before[0][t], "{t}");
    }
    assert_eq!(
        c.count(
            "app",
            "SELECT count(*) FROM customers WHERE email = 'changed@acme.example'"
        ),
        1
    );
    for (i, t) in TENANTS.iter().enumerate().skip(1) {
        assert_eq!(c.digests("app", Some(t)), before[i], "tenant {t} changed");
    }
    // Merging again inserts nothing.
    let again = v.json(&[
        "restore",
        &one,
        "--type",
        "merge",
        "--target-db",
        &c.url("postgres", "app"),
        "--yes",
    ]);
    assert_eq!(again["report"]["inserted"], 0, "{again}");
    let log = v.json(&["list", "--restores"]);
    let merge = log
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "ticket 42")
        .unwrap()
        .clone();
    assert_eq!(merge["type"], "merge");
    assert_eq!(merge["tenants"], serde_json::json!(["acme"]));
    assert_eq!(merge["outcome"], "succeeded");
}

#[test]
fn selective_restores_from_a_full_dump() {
    let c = fixture();
    let v = vault(&c);
    let full = v.backup(&["db"]);
    let globex = c.digests("app", Some("globex"));
    let others: Vec<_> = ["acme", "initech", "umbrella"]
        .iter()
        .map(|t| c.digests("app", Some(t)))
        .collect();
    // Lose all of globex's rows, then merge them back from the full dump.
    c.psql_file(
        "app",
        "DELETE FROM order_items WHERE tenant_id = 'globex'; DELETE FROM inventory WHERE tenant_id = 'globex';
         DELETE FROM orders WHERE tenant_id = 'globex'; DELETE FROM products WHERE tenant_id = 'globex';
         DELETE FROM customers WHERE tenant_id = 'globex'; DELETE FROM tenants WHERE id = 'globex';",
    );
    let r = v.json(&[
        "restore",
        &full,
        "--type",
        "merge",
        "--target-db",
        &c.url("postgres", "app"),
        "--tenant",
        "globex",
        "--yes",
    ]);
    assert_eq!(
        r["report"]["inserted"].as_u64().unwrap(),
        1 + 150 + 40 + 300 + 600 + 40,
        "{r}"
    );
    assert_eq!(r["report"]["skipped"], 0);
    let globals: Vec<String> =
        serde_json::from_value(r["report"]["tables_without_tenant_column"].clone()).unwrap();
    assert!(globals.contains(&"public.plans".to_string()), "{r}");
    assert_eq!(c.digests("app", Some("globex")), globex);
    for (i, t) in ["acme", "initech", "umbrella"].iter().enumerate() {
        assert_eq!(c.digests("app", Some(t)), others[i]);
    }
    // Full restore of one tenant into a new database: schema, globals, that tenant only.
    v.ok(&[
        "restore",
        &full,
        "--type",
        "full",
        "--target-db",
        &c.url("postgres", "only_acme"),
        "--create",
        "--tenant",
        "acme",
        "--yes",
    ]);
    assert_eq!(
        c.digests("only_acme", Some("acme")),
        c.digests("app", Some("acme"))
    );
    assert_eq!(c.count("only_acme", "SELECT count(*) FROM tenants"), 1);
    assert_eq!(
        c.count(
            "only_acme",
            "SELECT count(*) FROM order_items WHERE tenant_id <> 'acme'"
        ),
        0
    );
    assert_eq!(c.count("only_acme", "SELECT count(*) FROM plans"), 3);
}

#[test]
fn killed_pg_dump_fails_the_backup_without_a_manifest() {
    let c = fixture();
    let script = c.dir.path().join("pg_dump_killed.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\"{}\" \"$@\" | head -c 100000\nkill -KILL $$\n",
            c.bin.join("pg_dump").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let v = Vault::new(&[SourceDef {
        name: "db",
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: Some(script),
    }]);
    let o = v.run(&["backup", "db"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("killed by signal 9"), "{}", stderr(&o));
    assert_eq!(v.manifests(), 0);
    let list = v.json(&["list"]);
    assert_eq!(list[0]["status"], "failed");
    assert!(
        list[0]["error"].as_str().unwrap().contains("pg_dump"),
        "{list}"
    );
}

#[test]
fn pg_dump_18_dump_restores_into_postgresql_15() {
    let pg18 = pg::pg18_bin();
    let c = fixture();
    let v = Vault::new(&[SourceDef {
        name: "db18",
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: pg18.clone(),
        pg_dump: None,
    }]);
    let id = v.backup(&["db18"]);
    let sql = v.ok(&["restore", &id, "--stdout"]);
    assert!(
        sql.contains("SET transaction_timeout = 0;"),
        "pg_dump 18 writes transaction_timeout"
    );
    assert!(
        sql.contains("\\restrict "),
        "pg_dump 18.6 writes \\restrict"
    );
    let o = v.run(&[
        "restore",
        &id,
        "--type",
        "full",
        "--target-db",
        &c.url("postgres", "from18"),
        "--create",
        "--yes",
        "--pg-bin-dir",
        &c.bin.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("transaction_timeout"),
        "the dropped SET must be named: {}",
        stderr(&o)
    );
    assert_eq!(c.digests("from18", None), c.digests("app", None));

    // No psql reads the dump: pg_dump's \restrict lines are left out (and
    // named in the report), on several connections as on one.
    let r = v.json(&[
        "restore",
        &id,
        "--type",
        "full",
        "--target-db",
        &c.url("postgres", "from18old"),
        "--create",
        "--yes",
        "--jobs",
        "2",
    ]);
    let dropped = r["report"]["dropped_meta_commands"].to_string();
    assert!(dropped.contains("\\\\restrict"), "{r}");
    assert_eq!(c.digests("from18old", None), c.digests("app", None));
}

/// The ids `list ARGS` shows, sorted.
fn listed_ids(v: &Vault, args: &[&str]) -> Vec<String> {
    let mut a = vec!["list"];
    a.extend_from_slice(args);
    let mut ids: Vec<String> = v
        .json(&a)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// `list --tenant` finds a tenant's exports and the full dumps of the
/// tenant-aware source; `show` gives the engine facts and row counts.
#[test]
fn list_by_tenant_and_show_engine_facts() {
    let c = fixture();
    let v = vault(&c);
    let full = v.backup(&["db"]);
    let acme = v.backup(&["db", "--tenant", "acme"]);
    let globex = v.backup(&["db", "--tenant", "globex"]);
    let ids = |args: &[&str]| listed_ids(&v, args);
    let sorted = |mut x: Vec<String>| {
        x.sort();
        x
    };
    assert_eq!(
        ids(&["--tenant", "acme"]),
        sorted(vec![full.clone(), acme.clone()])
    );
    assert_eq!(
        ids(&["--tenant", "globex"]),
        sorted(vec![full.clone(), globex.clone()])
    );
    assert_eq!(ids(&["--tenant", "initech"]), vec![full.clone()]);
    assert_eq!(ids(&["--kind", "postgres"]).len(), 3);

    let s = v.json(&["show", &full]);
    assert_eq!(s["kind"], "postgres");
    assert_eq!(s["engine"]["database"], "app");
    assert_eq!(s["engine"]["mode"], "full");
    assert!(s["engine"]["server_version"].as_str().unwrap().len() >= 2);
    assert!(s["engine"]["pg_dump_version"].as_str().unwrap().len() >= 2);
    assert!(s["engine"].get("row_counts").is_none());
    assert_eq!(
        s["table_rows"]["public.customers"].as_i64().unwrap(),
        c.count("app", "SELECT count(*) FROM customers")
    );
    assert_eq!(s["artifacts"][0]["name"], "dump.sql");
    let s = v.json(&["show", &acme]);
    assert_eq!(s["tenants"], serde_json::json!(["acme"]));
    assert_eq!(s["engine"]["mode"], "tenants");
    assert_eq!(
        s["table_rows"]["acme/public.customers"].as_i64().unwrap(),
        c.count(
            "app",
            "SELECT count(*) FROM customers WHERE tenant_id = 'acme'"
        )
    );
    assert_eq!(s["artifacts"][0]["name"], "tenant-acme");
}

/// Issue 14: an `--all-tenants` backup's tenants, artifacts and row counts
/// are catalog rows, not part of its `details` text (one text of every
/// tenant was the peak of the backup's memory). `list --tenant` and `show`
/// answer from them, the same after `catalog rebuild` and after a catalog
/// of schema 8 (rows keyed by the backup's text id, a row per tenant and
/// table) or of the old layout (all of it in `details`) is opened and
/// migrated (through schema 10: a tenant's counts in its own row).
#[test]
fn tenant_contents_are_catalog_rows_kept_by_rebuild_and_migration() {
    let c = fixture();
    let v = vault(&c);
    let all = v.backup(&["db", "--all-tenants"]);
    let full = v.backup(&["db"]);
    let catalog = v.dir.path().join("catalog.db");
    let sql = |q: &str| -> String {
        let db = rusqlite::Connection::open(&catalog).unwrap();
        db.query_row(q, [&all], |r| r.get(0)).unwrap()
    };
    let details = sql("SELECT details FROM backups WHERE id = ?1");
    assert!(
        !details.contains("acme") && !details.contains("tenant-") && !details.contains("\"rows\""),
        "{details}"
    );
    // What a user sees: the backups of each tenant, and the tenant
    // backup's tenants, artifacts and row counts.
    let answers = || {
        let lists: Vec<Vec<String>> = TENANTS
            .iter()
            .map(|t| listed_ids(&v, &["--tenant", t]))
            .collect();
        let s = v.json(&["show", &all]);
        let shown = ["tenants", "artifacts", "table_rows", "engine", "note"].map(|k| s[k].clone());
        (lists, shown)
    };
    let before = answers();
    let mut both = vec![all.clone(), full.clone()];
    both.sort();
    assert!(before.0.iter().all(|ids| ids == &both), "{:?}", before.0);
    let [tenants, artifacts, rows, engine, _] = &before.1;
    assert_eq!(tenants, &serde_json::json!(TENANTS));
    let names: Vec<&str> = artifacts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        TENANTS
            .iter()
            .map(|t| format!("tenant-{t}"))
            .collect::<Vec<_>>()
    );
    assert!(
        artifacts[0]["size"].as_u64().unwrap() > 0
            && artifacts[0]["blake3"].as_str().unwrap().len() == 64
    );
    for t in TENANTS {
        assert_eq!(
            rows[format!("{t}/public.customers")].as_i64().unwrap(),
            c.count(
                "app",
                &format!("SELECT count(*) FROM customers WHERE tenant_id = '{t}'")
            )
        );
    }
    assert_eq!(engine["mode"], "tenants");
    assert!(engine.get("rows").is_none());

    // The manifests give the same rows, blob counts included.
    let blob_counts = "SELECT group_concat(a.blobs) FROM backup_keys k \
        JOIN backup_artifacts a ON a.backup = k.num WHERE k.backup_id = ?1";
    let counted = sql(blob_counts);
    assert!(counted.split(',').all(|n| n != "0"), "{counted}");
    v.ok(&["catalog", "rebuild"]);
    assert_eq!(answers(), before);
    assert_eq!(sql(blob_counts), counted);

    // A catalog of schema 8: the rows keyed by the backup's id, names and
    // digests as text.
    let db = rusqlite::Connection::open(&catalog).unwrap();
    db.execute_batch(
        "CREATE TABLE a8 (backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
             name TEXT NOT NULL, format TEXT NOT NULL, size INTEGER NOT NULL, blake3 TEXT NOT NULL, blobs INTEGER NOT NULL,
             PRIMARY KEY (backup_id, seq)) WITHOUT ROWID;
         CREATE TABLE t8 (backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
             tenant TEXT NOT NULL, PRIMARY KEY (backup_id, seq)) WITHOUT ROWID;
         CREATE TABLE r8 (backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE, tenant_seq INTEGER NOT NULL,
             tbl TEXT NOT NULL, rows INTEGER NOT NULL, PRIMARY KEY (backup_id, tenant_seq, tbl)) WITHOUT ROWID;
         INSERT INTO a8 SELECT k.backup_id, a.seq, n.name, f.name, a.size, lower(hex(a.blake3)), a.blobs
             FROM backup_artifacts a JOIN backup_keys k ON k.num = a.backup JOIN names n ON n.id = a.name JOIN names f ON f.id = a.format;
         INSERT INTO t8 SELECT k.backup_id, t.seq, n.name
             FROM backup_tenants t JOIN backup_keys k ON k.num = t.backup JOIN names n ON n.id = t.tenant;
         INSERT INTO r8 SELECT k.backup_id, t.seq, n.name, j.value
             FROM backup_tenants t JOIN backup_keys k ON k.num = t.backup, json_each('[' || t.rows || ']') j
             JOIN backup_tables bt ON bt.backup = t.backup AND bt.seq = j.key JOIN names n ON n.id = bt.tbl;
         DROP TABLE backup_tables; DROP TABLE backup_tenants; DROP TABLE backup_artifacts;
         DROP TABLE backup_keys; DROP TABLE names;
         ALTER TABLE a8 RENAME TO backup_artifacts; ALTER TABLE t8 RENAME TO backup_tenants;
         ALTER TABLE r8 RENAME TO backup_tenant_rows;
         CREATE INDEX backup_tenants_tenant ON backup_tenants (tenant, backup_id);
         PRAGMA user_version = 8;",
    )
    .unwrap();
    drop(db);
    assert_eq!(answers(), before);
    assert_eq!(sql(blob_counts), counted);
    assert_eq!(
        sql(
            "SELECT group_concat(DISTINCT typeof(a.blake3)) FROM backup_keys k \
             JOIN backup_artifacts a ON a.backup = k.num WHERE k.backup_id = ?1"
        ),
        "blob"
    );

    // A catalog of the old layout: schema 7, everything in `details`.
    let db = rusqlite::Connection::open(&catalog).unwrap();
    db.execute_batch(
        "UPDATE backups SET details = json_set(details,
            '$.tenants', json((SELECT json_group_array(tenant) FROM (SELECT n.name AS tenant FROM backup_keys k
                                 JOIN backup_tenants t ON t.backup = k.num JOIN names n ON n.id = t.tenant
                                 WHERE k.backup_id = backups.id ORDER BY t.seq))),
            '$.artifacts', json((SELECT json_group_array(json_object('name', name, 'format', format, 'size', size, 'blake3', blake3, 'blobs', blobs))
                                 FROM (SELECT n.name AS name, f.name AS format, a.size AS size, lower(hex(a.blake3)) AS blake3, a.blobs AS blobs
                                       FROM backup_keys k JOIN backup_artifacts a ON a.backup = k.num
                                       JOIN names n ON n.id = a.name JOIN names f ON f.id = a.format
                                       WHERE k.backup_id = backups.id ORDER BY a.seq))),
            '$.engine.rows', json((SELECT json_group_object(n.name, json((SELECT json_group_object(tn.name, j.value)
                                                                         FROM json_each('[' || t.rows || ']') j
                                                                         JOIN backup_tables bt ON bt.backup = t.backup AND bt.seq = j.key
                                                                         JOIN names tn ON tn.id = bt.tbl)))
                                   FROM backup_keys k JOIN backup_tenants t ON t.backup = k.num JOIN names n ON n.id = t.tenant
                                   WHERE k.backup_id = backups.id)));
         DROP TABLE backup_tables; DROP TABLE backup_tenants; DROP TABLE backup_artifacts;
         DROP TABLE backup_keys; DROP TABLE names;
         PRAGMA user_version = 7;",
    )
    .unwrap();
    drop(db);
    assert!(sql("SELECT details FROM backups WHERE id = ?1").contains("tenant-acme"));
    assert_eq!(answers(), before);
    assert!(!sql("SELECT details FROM backups WHERE id = ?1").contains("tenant-acme"));
    assert_eq!(
        sql("SELECT CAST(count(*) AS TEXT) FROM backup_keys k JOIN backup_tenants t ON t.backup = k.num \
             JOIN backup_tables bt ON bt.backup = k.num WHERE k.backup_id = ?1 AND t.rows IS NOT NULL"),
        (rows.as_object().unwrap().len()).to_string()
    );
}

/// A restored tenant export as its COPY blocks: each header with its rows
/// sorted (row order within a table is not defined).
fn copy_blocks(sql: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    let mut open = false;
    for line in sql.lines() {
        if line.starts_with("COPY ") {
            blocks.push((line.to_string(), Vec::new()));
            open = true;
        } else if line == "\\." {
            open = false;
        } else if open {
            blocks.last_mut().unwrap().1.push(line.to_string());
        }
    }
    for b in &mut blocks {
        b.1.sort();
    }
    blocks
}

/// `--all-tenants` reads each table once, ordered by tenant, and merges:
/// every tenant's artifact holds exactly the rows of its own `--tenant`
/// backup (read per tenant), with tenant ids in byte order (a backslash,
/// non-ASCII, upper case), a tenant without rows, and rows of a tenant
/// missing from the tenants table or with a NULL tenant left out.
#[test]
fn all_tenants_in_one_pass_match_per_tenant_exports() {
    let c = fixture();
    let v = vault(&c);
    c.psql_file(
        "app",
        r#"
        INSERT INTO tenants VALUES (E'Zed\\x y', 'Zed', 1), ('émile', 'Émile', 1), ('empty', 'No rows', 1);
        INSERT INTO customers (tenant_id, name, email)
          SELECT E'Zed\\x y', E'Z\t' || g, NULL FROM generate_series(1, 5) g;
        INSERT INTO customers (tenant_id, name, email)
          SELECT 'émile', 'E ' || g, 'e@x' FROM generate_series(1, 3) g;
        CREATE TABLE notes (tenant_id text, body text);
        INSERT INTO notes VALUES ('acme', 'a1'), (NULL, 'nobody'), ('ghost', 'not a tenant'),
          ('émile', E'multi\nline'), ('acme', 'a2'), ('zzz', 'after every tenant');
        "#,
    );
    let all = v.backup(&["db", "--all-tenants"]);
    let show = v.json(&["show", &all]);
    assert_eq!(
        show["engine"]["export"], "one COPY per table, merged by tenant",
        "{show}"
    );
    // Byte order: upper case before lower, 'é' (0xC3 0xA9) last.
    let order = [
        "Zed\\x y", "acme", "empty", "globex", "initech", "umbrella", "émile",
    ];
    let names: Vec<&str> = show["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = order.iter().map(|t| format!("tenant-{t}")).collect();
    assert_eq!(names, expected);
    let mut rows = 0;
    for t in order {
        let one = v.backup(&["db", "--tenant", t]);
        assert_eq!(
            v.json(&["show", &one])["engine"]["export"],
            "one COPY per table and tenant"
        );
        let alone = v.ok(&["restore", &one, "--stdout"]);
        let merged = v.ok(&[
            "restore",
            &all,
            "--artifact",
            &format!("tenant-{t}"),
            "--stdout",
        ]);
        assert_eq!(alone.lines().next(), merged.lines().next(), "{t}");
        let (a, m) = (copy_blocks(&alone), copy_blocks(&merged));
        assert_eq!(a.len(), 7, "{t}: every tenant table, notes included");
        assert_eq!(a, m, "tenant {t}");
        rows += m.iter().map(|b| b.1.len()).sum::<usize>();
        // The row counts of the manifest match.
        let n: i64 = show["table_rows"][format!("{t}/public.customers")]
            .as_i64()
            .unwrap();
        assert_eq!(
            n as usize,
            m.iter()
                .find(|b| b.0.starts_with("COPY \"public\".\"customers\""))
                .unwrap()
                .1
                .len()
        );
    }
    // Every row of a listed tenant, nothing else (the two notes of acme,
    // the note of émile; not the NULL, 'ghost' or 'zzz' notes).
    let total = c.count(
        "app",
        "SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM customers)
              + (SELECT count(*) FROM products) + (SELECT count(*) FROM orders)
              + (SELECT count(*) FROM order_items) + (SELECT count(*) FROM inventory) + 3",
    );
    assert_eq!(rows as i64, total);
    let empty = v.ok(&["restore", &all, "--artifact", "tenant-empty", "--stdout"]);
    assert_eq!(
        copy_blocks(&empty).iter().map(|b| b.1.len()).sum::<usize>(),
        1,
        "only its row of the tenants table"
    );
}

/// An all-tenants backup that cannot spill (its `tenant-spill` directory
/// is a file) fails with the directory named and leaves no manifest; a few
/// `--tenant` ids, read per tenant, need no spill.
#[test]
fn an_all_tenants_backup_that_cannot_spill_fails_cleanly() {
    let c = fixture();
    let v = vault(&c);
    std::fs::write(v.dir.path().join("tenant-spill"), b"not a directory").unwrap();
    let o = v.run(&["backup", "db", "--all-tenants"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("tenant-spill") && stderr(&o).contains("--tenant ID"),
        "{}",
        stderr(&o)
    );
    assert_eq!(v.manifests(), 0);
    assert_eq!(v.json(&["list"])[0]["status"], "failed");
    v.backup(&["db", "--tenant", "acme"]);
    assert_eq!(v.manifests(), 1);
}

/// The one-pass export reads its tables on two connections of its own in
/// the export's snapshot; a role that may hold only one connection
/// (CONNECTION LIMIT 1) gets the same artifacts, read on its first.
#[test]
fn all_tenants_on_one_connection_when_no_more_are_allowed() {
    let c = fixture();
    let v = vault(&c);
    let artifacts = |id: &str| -> Vec<(String, String)> {
        v.json(&["show", id])["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_string(),
                    a["blake3"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let lanes = v.backup(&["db", "--all-tenants"]);
    c.psql("app", "ALTER ROLE backup CONNECTION LIMIT 1");
    let o = v.run(&["-vv", "backup", "db", "--all-tenants"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("tenant export on one connection"),
        "{}",
        stderr(&o)
    );
    let one = v.json(&["list"])[0]["id"].as_str().unwrap().to_string();
    assert_ne!(one, lanes);
    assert_eq!(artifacts(&lanes).len(), TENANTS.len());
    assert_eq!(artifacts(&one), artifacts(&lanes));
}
