//! Tenant point-in-time restore against a real PostgreSQL 15 cluster that
//! archives through `vaultctl wal push`: the fixture's multi-tenant schema
//! (foreign keys, RLS, identity columns, jsonb), a base backup, a batch for
//! both tenants, T noted (with a digest of every table's rows of tenant
//! acme at T), then acme's rows partly deleted, partly updated and one
//! added, and globex changed too. Then, in order: a run killed with -9
//! while its sandbox runs (the target unchanged, the sandbox left), a
//! dry run (removes that stale sandbox; reports exactly the deleted,
//! changed and added rows), a merge (deleted rows back, updated rows kept,
//! globex byte-identical) and a replace (acme equal to its digest at T
//! table by table, globex untouched).

use crate::pg;
use crate::pitr::{chown_to_pg, now_utc, wait_archived};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use pg::{Cluster, Vault, PG_USER, SUPERUSER_PASSWORD};

struct Setup {
    v: Vault,
    c: Cluster,
    work: PathBuf,
    /// A `--work-dir` other than the default (owned by the cluster user).
    elsewhere: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::Builder::new()
        .prefix("vaultctl-tpitr-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let d = dir.path().to_path_buf();
    let exe = env!("CARGO_BIN_EXE_vaultctl");
    let config = d.join("config.toml");
    let base = format!(
        "catalog = \"{0}/catalog.db\"\n[keys]\nidentity_file = \"{0}/identity.txt\"\ndedup_key_file = \"{0}/dedup.key\"\n\
         [[target]]\nname = \"local\"\nurl = \"file://{0}/repo\"\n",
        d.display()
    );
    std::fs::write(&config, &base).unwrap();
    let v = Vault { dir, config };
    let out = v.run(&[
        "key",
        "generate",
        "--output",
        &d.join("identity.txt").display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(v.run(&["init"]).status.success());
    let c = Cluster::start_with(
        &format!(
            "archive_mode = on\narchive_command = '\"{exe}\" --config \"{}\" wal push \"%p\"'\narchive_timeout = 0\n",
            v.config.display()
        ),
        &[],
    );
    c.psql("postgres", "CREATE DATABASE app");
    c.psql_file(
        "app",
        &format!("{}{}{}", pg::SCHEMA, pg::ROLES_AND_RLS, pg::DATA),
    );
    let pw = d.join("cluster.password");
    std::fs::write(&pw, format!("{SUPERUSER_PASSWORD}\n")).unwrap();
    std::fs::write(
        &v.config,
        format!(
            "{base}[[source]]\nname = \"cluster\"\nkind = \"postgres-physical\"\nurl = \"{}\"\npassword_file = \"{1}\"\npg_bin_dir = \"{2}\"\n\
             [[source]]\nname = \"app\"\nkind = \"postgres\"\nurl = \"{3}\"\npassword_file = \"{1}\"\npg_bin_dir = \"{2}\"\n\
             [source.tenants]\ntable = \"tenants\"\nkey = \"id\"\ncolumn = \"tenant_id\"\n",
            c.url("postgres", "postgres"),
            pw.display(),
            c.bin.display(),
            c.url("postgres", "app"),
        ),
    )
    .unwrap();
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    chown_to_pg(v.dir.path());
    // The default work directory: sandbox/ beside the catalog.
    let work = d.join("sandbox");
    Setup {
        v,
        c,
        work,
        elsewhere,
    }
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn switch_and_archive(c: &Cluster) {
    let seg = c.psql("app", "SELECT pg_walfile_name(pg_switch_wal())");
    wait_archived(c, &seg);
}

fn args<'a>(url: &'a str, t: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "restore",
        "--type",
        "pitr",
        "--tenant",
        "acme",
        "--to-time",
        t,
        "--target-db",
        url,
        "--owner",
        PG_USER,
        "--reason",
        "test",
    ];
    a.extend_from_slice(extra);
    a
}

fn sandboxes(work: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(work)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The keys of `sql`'s rows as the dry run prints them: `(k)`.
fn keys(c: &Cluster, sql: &str) -> Vec<String> {
    let text = c.psql("app", sql);
    text.lines().map(|l| format!("({l})")).collect()
}

#[test]
fn tenant_pitr_dry_run_merge_replace_and_a_killed_run() {
    if !pg::is_root() {
        eprintln!("skipped: needs root (the sandbox runs as {PG_USER})");
        return;
    }
    let s = setup();
    let c = &s.c;
    s.v.backup(&["cluster"]);
    // Batch 1 for both tenants, after the base backup (replayed from WAL).
    c.psql(
        "app",
        "INSERT INTO customers (tenant_id, name, email) SELECT t, 'batch1 ' || g, NULL FROM unnest(ARRAY['acme','globex']) t, generate_series(1, 5) g",
    );
    switch_and_archive(c);
    let acme_at_t = c.digests("app", Some("acme"));
    std::thread::sleep(Duration::from_millis(300));
    let t = now_utc(c);
    std::thread::sleep(Duration::from_millis(300));
    // What acme loses and what changes.
    let victim = "(SELECT min(id) FROM customers WHERE tenant_id = 'acme')";
    let deleted_orders = keys(
        c,
        &format!("SELECT id FROM orders WHERE customer_id = {victim} ORDER BY id::text"),
    );
    let deleted_items = keys(c, &format!("SELECT id FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE customer_id = {victim}) ORDER BY id::text"));
    let changed_products = keys(
        c,
        "SELECT id FROM products WHERE tenant_id = 'acme' ORDER BY id LIMIT 3",
    );
    assert_eq!(deleted_orders.len(), 2);
    assert_eq!(deleted_items.len(), 4);
    c.psql_file(
        "app",
        &format!(
            "DELETE FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE customer_id = {victim});
             DELETE FROM orders WHERE customer_id = {victim};
             UPDATE products SET price = price + 1, attrs = attrs || '{{\"edited\": true}}' WHERE id IN (SELECT id FROM products WHERE tenant_id = 'acme' ORDER BY id LIMIT 3);
             INSERT INTO customers (tenant_id, name) VALUES ('acme', 'added after T');
             INSERT INTO customers (tenant_id, name) VALUES ('globex', 'globex after T');
             UPDATE products SET price = 1 WHERE id = (SELECT min(id) FROM products WHERE tenant_id = 'globex');"
        ),
    );
    let added = keys(c, "SELECT id FROM customers WHERE name = 'added after T'");
    switch_and_archive(c);
    let acme_now = c.digests("app", Some("acme"));
    let globex = c.digests("app", Some("globex"));
    let all_now = c.digests("app", None);
    let url = c.url("postgres", "app");

    // 1. kill -9 while the sandbox runs (in a --work-dir of its own): the
    // sandbox stays, the target does not change.
    let pause = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let elsewhere = s.elsewhere.display().to_string();
    let mut child =
        s.v.command(&args(
            &url,
            &t,
            &["--mode", "replace", "--yes", "--work-dir", &elsewhere],
        ))
        .env("VAULTCTL_TEST_PAUSE_DIR", pause.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !pause.path().join("tenant-pitr-sandbox.reached").exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(started.elapsed() < Duration::from_secs(180), "no sandbox");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(sandboxes(&s.work).is_empty());
    let left = sandboxes(&s.elsewhere);
    assert_eq!(left.len(), 1, "{left:?}");
    let pid: i32 = std::fs::read_to_string(left[0].join("data/postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "sandbox server runs"
    );
    assert_eq!(c.digests("app", None), all_now, "the target changed");
    // doctor and status find it outside the default work directory (the
    // restore log names the work directory from the start of the run).
    let doctor = String::from_utf8_lossy(&s.v.run(&["doctor"]).stdout).to_string();
    assert!(
        doctor.contains("stale sandbox") && doctor.contains(&elsewhere),
        "doctor: {doctor}"
    );
    let status = s.v.json(&["status"]);
    assert_eq!(
        status["stale_sandboxes"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );

    // 2. Dry run (default work directory): removes the stale sandbox of
    // the killed run, reports exactly what changed.
    let dry = s.v.json(&args(&url, &t, &["--dry-run"]));
    assert_eq!(dry["stale_removed"].as_array().unwrap().len(), 1, "{dry}");
    assert!(
        sandboxes(&s.elsewhere).is_empty(),
        "{:?}",
        sandboxes(&s.elsewhere)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "stale server stopped"
    );
    assert!(dry["reached"].is_string(), "{dry}");
    let diff = dry["diff"].as_array().unwrap();
    let table = |name: &str| {
        diff.iter()
            .find(|d| d["table"] == format!("public.{name}"))
            .unwrap_or_else(|| panic!("{name} missing: {dry}"))
            .clone()
    };
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let orders = table("orders");
    assert_eq!(
        strs(&orders["samples_only_at_time"]),
        sorted(deleted_orders.clone())
    );
    let items = table("order_items");
    assert_eq!(
        strs(&items["samples_only_at_time"]),
        sorted(deleted_items.clone())
    );
    let products = table("products");
    assert_eq!(
        strs(&products["samples_differ"]),
        sorted(changed_products.clone())
    );
    let customers = table("customers");
    assert_eq!(strs(&customers["samples_only_now"]), added);
    let mut total = (0, 0, 0);
    for d in diff {
        total.0 += d["only_at_time"].as_u64().unwrap();
        total.1 += d["only_now"].as_u64().unwrap();
        total.2 += d["differ"].as_u64().unwrap();
    }
    assert_eq!(total, (6, 1, 3), "{dry}");
    assert_eq!(c.digests("app", None), all_now, "a dry run wrote");

    // 3. Merge: deleted rows back, updated rows kept, globex identical.
    let merged = s.v.json(&args(&url, &t, &["--mode", "merge"]));
    assert_eq!(merged["report"]["inserted"], 6, "{merged}");
    assert_eq!(
        c.count(
            "app",
            &format!(
                "SELECT count(*) FROM orders WHERE id::text IN ({})",
                deleted_orders
                    .iter()
                    .map(|k| format!("'{}'", k.trim_matches(['(', ')'])))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        ),
        2
    );
    assert_eq!(
        c.count(
            "app",
            "SELECT count(*) FROM products WHERE tenant_id = 'acme' AND attrs ? 'edited'"
        ),
        3,
        "updated rows are kept"
    );
    assert_eq!(c.digests("app", Some("globex")), globex);
    assert_ne!(c.digests("app", Some("acme")), acme_now);
    let log =
        s.v.json(&["restores", "show", &merged["restore"].to_string()]);
    let logged = log.to_string();
    assert!(
        logged.contains("tenant-pitr") && logged.contains("acme"),
        "{log}"
    );
    assert!(logged.contains("\"reached\""), "{log}");

    // 4. Replace: acme exactly as at T, table by table; globex untouched.
    let refused = s.v.run(&args(&url, &t, &["--mode", "replace"]));
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let replaced = s.v.json(&args(&url, &t, &["--mode", "replace", "--yes"]));
    assert!(
        replaced["report"]["deleted"].as_u64().unwrap() > 0,
        "{replaced}"
    );
    assert_eq!(c.digests("app", Some("acme")), acme_at_t);
    assert_eq!(c.digests("app", Some("globex")), globex);
    assert!(sandboxes(&s.work).is_empty());
    // The application's next insert does not collide with a restored id.
    c.psql(
        "app",
        "INSERT INTO customers (tenant_id, name) VALUES ('acme', 'after restore')",
    );
}
