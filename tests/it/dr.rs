//! Disaster recovery against real PostgreSQL 15 clusters (and a real
//! S3-compatible server): `dr run` on a fresh machine with only config and
//! identity, drills that succeed and fail (damaged pack) with the alert,
//! target fallback, `dr plan` without an identity.

use crate::common;
use crate::pg;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pg::{fixture, Cluster, SourceDef, Vault, BACKUP_PASSWORD, SUPERUSER_PASSWORD};

fn vault(c: &Cluster) -> Vault {
    Vault::new(&[SourceDef {
        name: "db",
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: None,
    }])
}

/// The `dr plan` check named `step`.
fn plan_check<'a>(plan: &'a serde_json::Value, step: &str) -> &'a serde_json::Value {
    plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == step)
        .unwrap_or_else(|| panic!("no check \"{step}\": {plan}"))
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs vaultctl with `config` and HOME = `home`, no terminal.
fn run_in(home: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vaultctl"))
        .arg("--config")
        .arg(config)
        .arg("--no-progress")
        .args(args)
        .env("HOME", home)
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        .env("USER", "tester")
        .env_remove("VAULTCTL_IDENTITY")
        .env_remove("PGPASSFILE")
        .stdin(Stdio::null())
        .output()
        .expect("run vaultctl")
}

/// The arguments of `--json dr run` of source `db` into `target`
/// (confirmed with `--yes`), then `extra`.
fn dr_run_args<'a>(target: &'a str, reason: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--json",
        "dr",
        "run",
        "--source",
        "db",
        "--target-db",
        target,
        "--reason",
        reason,
        "--yes",
    ];
    args.extend_from_slice(extra);
    args
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

/// A "fresh machine": a new HOME holding only a config and the identity.
/// `targets`: TOML of the `[[target]]` tables.
fn fresh_machine(
    v: &Vault,
    c: &Cluster,
    targets: &str,
    identity: bool,
) -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::Builder::new()
        .prefix("vaultctl-fresh-")
        .tempdir()
        .unwrap();
    let h = home.path();
    if identity {
        std::fs::copy(v.dir.path().join("identity.txt"), h.join("identity.txt")).unwrap();
        std::fs::set_permissions(
            h.join("identity.txt"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let config = h.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "catalog = \"{0}/state/catalog.db\"\n[keys]\nidentity_file = \"{0}/identity.txt\"\ndedup_key_file = \"{0}/state/dedup.key\"\n{targets}\n\
             [[source]]\nname = \"db\"\nkind = \"postgres\"\nurl = \"{1}\"\npg_bin_dir = \"{2}\"\n",
            h.display(),
            c.url("backup", "app"),
            c.bin.display()
        ),
    )
    .unwrap();
    (home, config)
}

fn local_target(name: &str, dir: &Path) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\nurl = \"file://{}\"\n",
        dir.display()
    )
}

fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![repo.join("packs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no packs under {}", repo.display());
    out
}

/// Flips a byte in the middle of every pack; returns the originals.
fn damage_packs(repo: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    packs(repo)
        .into_iter()
        .map(|p| {
            let orig = std::fs::read(&p).unwrap();
            let mut b = orig.clone();
            let mid = b.len() / 2;
            b[mid] ^= 0x5a;
            std::fs::write(&p, b).unwrap();
            (p, orig)
        })
        .collect()
}

#[test]
fn fresh_machine_dr_run_rebuilds_catalog_restores_and_verifies_every_table() {
    let c = fixture();
    let v = vault(&c);
    let id = v.backup(&["db"]);
    // A drill proves this backup restorable; a newer one is never drilled.
    let scratch = c.url("postgres", "drill_scratch");
    let d = v.json(&["dr", "drill", "--source", "db", "--scratch-db", &scratch]);
    assert_eq!(d["ok"], true, "{d}");
    let newer = v.backup(&["db"]);
    assert_ne!(newer, id);
    // The catalog is lost with the machine.
    std::fs::remove_file(v.dir.path().join("catalog.db")).unwrap();
    let (home, config) = fresh_machine(
        &v,
        &c,
        &local_target("local", &v.dir.path().join("repo")),
        true,
    );
    let report = home.path().join("dr-report.md");

    // Without a terminal and without --yes: exit 2, naming --yes; nothing restored.
    let target = c.url("postgres", "recovered");
    let o = run_in(
        home.path(),
        &config,
        &[
            "dr",
            "run",
            "--source",
            "db",
            "--target-db",
            &target,
            "--reason",
            "fresh machine drill",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--yes"),
        "{}",
        text(&o)
    );

    let o = run_in(
        home.path(),
        &config,
        &dr_run_args(
            &target,
            "fresh machine drill",
            &["--report", report.to_str().unwrap()],
        ),
    );
    assert!(o.status.success(), "{}", text(&o));
    let j = json_of(&o);
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(j["backup"], id.as_str());
    assert_eq!(j["storage_target"], "local");
    let rto = j["rto_ms"].as_u64().expect("rto_ms");
    assert!(rto > 0);
    eprintln!(
        "measured: fresh-machine dr run RTO {rto} ms (restore {} ms)",
        j["restore_ms"]
    );
    let steps: Vec<&str> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"rebuild catalog"), "{steps:?}");
    // The drill's mark came back from the repository: the verified backup
    // was picked, not the newer unverified one.
    let rebuild = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "rebuild catalog")
        .unwrap();
    assert!(
        rebuild["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("(1 verified by restore)"),
        "{rebuild}"
    );
    // Every table present with the manifest's exact row counts.
    let checks = &j["checks"];
    assert_eq!(checks["ok"], true, "{checks}");
    assert_eq!(checks["tables_expected"], pg::TABLES.len(), "{checks}");
    for t in checks["tables"].as_array().unwrap() {
        assert_eq!(t["basis"], "manifest", "{t}");
        assert_eq!(t["expected"], t["actual"], "{t}");
    }
    // And the data is the same, table by table.
    assert_eq!(c.digests("recovered", None), c.digests("app", None));

    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("# vaultctl DR run 1: SUCCEEDED"), "{md}");
    assert!(md.contains("RTO achieved"), "{md}");
    assert!(
        md.contains("| public.order_items | yes | 2400 | manifest | 2400 | COPY tags | pass |"),
        "{md}"
    );

    // Recorded: history, the restore log, the backup verified by restore.
    let h = json_of(&run_in(home.path(), &config, &["--json", "dr", "history"]));
    assert_eq!(h.as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h[0]["kind"], "run");
    assert_eq!(h[0]["outcome"], "succeeded");
    assert_eq!(h[0]["rto_ms"].as_u64(), Some(rto));
    assert_eq!(h[0]["reason"], "fresh machine drill");
    let r = json_of(&run_in(home.path(), &config, &["--json", "restores"]));
    assert_eq!(r[0]["outcome"], "succeeded", "{r}");
    let plan = run_in(
        home.path(),
        &config,
        &["--json", "dr", "plan", "--source", "db"],
    );
    assert!(plan.status.success(), "{}", text(&plan));
    let p = json_of(&plan);
    let verified = plan_check(&p, "latest verified backup of 'db'");
    assert_eq!(verified["status"], "pass", "{p}");
    let est = plan_check(&p, "RTO estimate for 'db'");
    assert_eq!(est["status"], "pass", "{p}");

    // A second run into the now non-empty database is refused; it stays as it was.
    let o = run_in(home.path(), &config, &dr_run_args(&target, "again", &[]));
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(c.digests("recovered", None), c.digests("app", None));
}

#[test]
fn drill_succeeds_then_fails_on_a_damaged_pack_raising_the_alert_then_resolves() {
    let c = fixture();
    let v = vault(&c);
    let id = v.backup(&["db"]);
    let scratch = c.url("postgres", "drill_scratch");
    let exists = |c: &Cluster| {
        c.count(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'drill_scratch'",
        )
    };

    let j = v.json(&["dr", "drill", "--source", "db", "--scratch-db", &scratch]);
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(j["backup"], id.as_str());
    assert!(j["rto_ms"].as_u64().unwrap() > 0);
    eprintln!("measured: drill RTO {} ms", j["rto_ms"]);
    assert_eq!(exists(&c), 0, "the scratch database must be dropped");
    let st = v.json(&["status"]);
    assert_eq!(st["dr"]["last_drill_outcome"], "succeeded", "{st}");
    assert!(st["dr"]["last_drill_rto_ms"].as_u64().is_some());
    let human = v.ok(&["status"]);
    assert!(
        human.contains("last DR drill: #1 of 'db' SUCCEEDED"),
        "{human}"
    );

    // The only target's packs are damaged: the drill fails, critical alert.
    let originals = damage_packs(&v.dir.path().join("repo"));
    let o = v.run(&["dr", "drill", "--source", "db", "--scratch-db", &scratch]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("damaged"),
        "{}",
        text(&o)
    );
    assert_eq!(
        exists(&c),
        0,
        "a failed drill drops its scratch database too"
    );
    let alerts = v.json(&["alerts"]);
    let a = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "dr_drill_failed")
        .unwrap_or_else(|| panic!("no drill alert: {alerts}"));
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["source"], "db");
    let check = v.run(&["status", "--check"]);
    assert_eq!(check.status.code(), Some(2), "{}", text(&check));
    let h = v.json(&["dr", "history", "--kind", "drill"]);
    assert_eq!(h[0]["outcome"], "failed", "{h}");
    assert!(h[0]["rto_ms"].is_null());

    // Repaired: the next drill succeeds and resolves the alert.
    for (p, b) in originals {
        std::fs::write(p, b).unwrap();
    }
    let j = v.json(&["dr", "drill", "--source", "db", "--scratch-db", &scratch]);
    assert_eq!(j["ok"], true, "{j}");
    let alerts = v.json(&["alerts"]);
    assert!(
        !alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "dr_drill_failed"),
        "{alerts}"
    );
    let st = v.json(&["status"]);
    assert_eq!(
        st["dr"]["recent_rto_ms"].as_array().unwrap().len(),
        2,
        "{st}"
    );
    assert_ne!(st["dr"]["trend"], "-", "{st}");
}

#[test]
fn dr_run_falls_back_when_a_target_is_stopped_or_holds_damaged_packs() {
    let c = fixture();
    let v = vault(&c);
    let s3root = v.dir.path().join("s3");
    let mut s3 = common::S3Server::start(&s3root);
    // A config with S3 first, the local repository second, and a third
    // (local) copy; back up to all of them.
    let second = v.dir.path().join("repo2");
    let s3_target = format!(
        "[[target]]\nname = \"s3\"\nurl = \"s3://{}/{}\"\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\naccess_key_id_env = \"T_AK\"\nsecret_access_key_env = \"T_SK\"\nallow_http = true\nmax_retries = 1\nretry_timeout = \"2s\"\nrequest_timeout = \"5s\"\n",
        common::BUCKET,
        common::PREFIX,
        s3.port
    );
    let targets = format!(
        "{s3_target}{}{}",
        local_target("local", &v.dir.path().join("repo")),
        local_target("copy", &second)
    );
    let text_cfg = std::fs::read_to_string(&v.config).unwrap();
    let (head, rest) = text_cfg.split_once("[[target]]").unwrap();
    let (_, sources) = rest.split_once("[[source]]").unwrap();
    std::fs::write(&v.config, format!("{head}{targets}[[source]]{sources}")).unwrap();
    let env = |cmd: &mut Command| {
        cmd.env("T_AK", common::ACCESS_KEY)
            .env("T_SK", common::SECRET_KEY);
    };
    let vrun = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultctl"));
        cmd.arg("--config")
            .arg(&v.config)
            .arg("--no-progress")
            .args(args)
            .env("HOME", v.dir.path())
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .stdin(Stdio::null());
        env(&mut cmd);
        cmd.output().unwrap()
    };
    // `dr run` of source db into a new database on the cluster.
    let dr_run = |db: &str, reason: &str| {
        let target = c.url("postgres", db);
        vrun(&dr_run_args(&target, reason, &[]))
    };
    let o = vrun(&["init"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = vrun(&["--json", "backup", "db"]);
    assert!(o.status.success(), "{}", text(&o));
    let id = json_of(&o)["id"].as_str().unwrap().to_string();

    // The first target is stopped: the run reads from the next one.
    s3.stop();
    let o = dr_run("fallback1", "s3 down");
    assert!(o.status.success(), "{}", text(&o));
    let j = json_of(&o);
    assert_eq!(j["backup"], id.as_str());
    assert_eq!(j["storage_target"], "local", "{j}");
    assert_eq!(j["unavailable_targets"][0]["target"], "s3", "{j}");
    assert_eq!(c.digests("fallback1", None), c.digests("app", None));

    // The next target holds damaged packs: each falls back to the third.
    damage_packs(&v.dir.path().join("repo"));
    let o = dr_run("fallback2", "s3 down, local damaged");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("damaged"),
        "{}",
        text(&o)
    );
    assert_eq!(c.digests("fallback2", None), c.digests("app", None));
}

#[test]
fn dr_plan_names_a_missing_identity_and_fails() {
    let c = fixture();
    let v = vault(&c);
    v.backup(&["db"]);
    let (home, config) = fresh_machine(
        &v,
        &c,
        &local_target("local", &v.dir.path().join("repo")),
        false,
    );
    let o = run_in(home.path(), &config, &["dr", "plan", "--source", "db"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let missing = format!(
        "identity missing: {}/identity.txt does not exist",
        home.path().display()
    );
    assert!(out.contains(&missing), "{out}");
    assert!(out.contains("NOT READY"), "{out}");
    let j = json_of(&run_in(
        home.path(),
        &config,
        &["--json", "dr", "plan", "--source", "db"],
    ));
    assert_eq!(j["ready"], false);
    let id = plan_check(&j, "identity");
    assert_eq!(id["status"], "fail");
    assert!(id["detail"].as_str().unwrap().starts_with(&missing), "{id}");
    // The same machine with the identity is ready (the catalog will be rebuilt).
    std::fs::copy(
        v.dir.path().join("identity.txt"),
        home.path().join("identity.txt"),
    )
    .unwrap();
    let o = run_in(
        home.path(),
        &config,
        &["--json", "dr", "plan", "--source", "db"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let j = json_of(&o);
    let cat = plan_check(&j, "catalog");
    assert!(
        cat["detail"].as_str().unwrap().contains("rebuilds it"),
        "{cat}"
    );
}

#[test]
fn configured_drill_goes_stale_and_a_successful_drill_resolves_it_with_metrics() {
    let c = fixture();
    let v = vault(&c);
    // [source.drill] for the last source (db): weekly, scratch on the same server.
    let scratch = c.url("postgres", "drill_sched");
    let mut toml = std::fs::read_to_string(&v.config).unwrap();
    toml.push_str(&format!(
        "[source.drill]\nschedule = \"weekly\"\nscratch_db = \"{scratch}\"\nmax_age = \"8d\"\n"
    ));
    std::fs::write(&v.config, toml).unwrap();
    let prom = v.dir.path().join("vaultctl.prom");
    let prom_arg = prom.display().to_string();
    let in_days = |d: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::days(d))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let status_at = |now: &str| -> Output {
        v.command(&["--metrics-textfile", &prom_arg, "status", "--check"])
            .env("VAULTCTL_NOW", now)
            .output()
            .unwrap()
    };
    v.backup(&["db"]);
    // Configured, never drilled: listed, not stale yet.
    let st = v.json(&["status"]);
    assert_eq!(st["drills"][0]["source"], "db", "{st}");
    assert_eq!(st["drills"][0]["configured"], true);
    assert_eq!(st["drills"][0]["last_success"], serde_json::Value::Null);
    let o = status_at(&in_days(0));
    assert!(text(&o).contains("drill db never"), "{}", text(&o));
    // Nine days without a drill: drill_stale (warning).
    let o = status_at(&in_days(9));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("overdue: drill db"), "{}", text(&o));

    // Without --scratch-db: the one from [source.drill] (drill_sched).
    let j = v.json(&["dr", "drill", "--source", "db"]);
    assert!(
        j["target_db"].as_str().unwrap().contains("drill_sched"),
        "{j}"
    );
    assert_eq!(j["ok"], true, "{j}");
    let rto = j["rto_ms"].as_u64().unwrap() as f64 / 1e3;
    let alerts = v.json(&["alerts", "--status", "all"]);
    let stale = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "drill_stale")
        .unwrap_or_else(|| panic!("no drill_stale alert: {alerts}"));
    assert_eq!(stale["status"], "resolved", "{stale}");
    assert_eq!(stale["resolved_by"], "vaultctl (successful drill)");
    let o = status_at(&in_days(1));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("drill db 24h ago"), "{}", text(&o));
    let samples = crate::ops_util::parse_prometheus(&std::fs::read_to_string(&prom).unwrap());
    let get = |name: &str| samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(get("vaultctl_drill_rto_seconds{source=\"db\"}"), Some(rto));
    assert_eq!(get("vaultctl_drill_stale{source=\"db\"}"), Some(0.0));
    let last = get("vaultctl_drill_last_success_timestamp_seconds{source=\"db\"}").unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    assert!((now - 120.0..=now + 1.0).contains(&last), "{last} vs {now}");
    let st = v.json(&["status"]);
    assert_eq!(st["drills"][0]["last_outcome"], "succeeded", "{st}");
    assert_eq!(st["drills"][0]["last_rto_ms"], j["rto_ms"]);
    let human = v.ok(&["status"]);
    assert!(
        human.contains("drill of source") && human.contains("weekly"),
        "{human}"
    );
}

/// Runs `dr run` of source db into `db` with `extra` flags, paused at
/// `point` (a `VAULTCTL_TEST_PAUSE_DIR` point) while `meanwhile` runs on
/// the cluster; returns the run's output.
fn dr_run_paused(
    c: &Cluster,
    v: &Vault,
    db: &str,
    extra: &[&str],
    point: &str,
    meanwhile: impl FnOnce(),
) -> Output {
    let pause = tempfile::tempdir().unwrap();
    // The run's other pause points pass at once.
    for other in ["load-data", "dr-check"].iter().filter(|p| **p != point) {
        std::fs::write(pause.path().join(format!("{other}.go")), b"").unwrap();
    }
    let target = c.url("postgres", db);
    let child = v
        .command(&dr_run_args(&target, "check test", extra))
        .env("VAULTCTL_TEST_PAUSE_DIR", pause.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !pause.path().join(format!("{point}.reached")).exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "{point} not reached"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    meanwhile();
    std::fs::write(pause.path().join(format!("{point}.go")), b"").unwrap();
    child.wait_with_output().unwrap()
}

/// The check of `table` in a run's JSON.
fn table_check(j: &serde_json::Value, table: &str) -> serde_json::Value {
    j["checks"]["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {j}"))
        .iter()
        .find(|t| t["table"] == table)
        .unwrap_or_else(|| panic!("no check of {table}: {j}"))
        .clone()
}

#[test]
fn dr_run_checks_rows_against_the_servers_copy_tags_and_fails_when_rows_are_missing() {
    let c = fixture();
    let v = vault(&c);
    v.backup(&["db"]);
    let items = c.count("app", "SELECT count(*) FROM order_items") as u64;
    let kept = c.count("app", "SELECT count(*) FROM order_items WHERE id % 2 = 0") as u64;
    assert!(kept > 0 && kept < items);

    // The server stores only half of order_items' rows (a trigger added
    // to the database being restored, before its first COPY): the rows it
    // acknowledged (COPY tags) are fewer than the backup's, and the run
    // fails without counting the table.
    let o = dr_run_paused(&c, &v, "rows_skipped", &[], "load-data", || {
        c.psql(
            "rows_skipped_vaultctl_restore",
            "CREATE FUNCTION public.odd_out() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id % 2 = 1 THEN RETURN NULL; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER odd_out BEFORE INSERT ON public.order_items FOR EACH ROW EXECUTE FUNCTION public.odd_out();",
        );
    });
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = json_of(&o);
    assert_eq!(j["ok"], false, "{j}");
    let t = table_check(&j, "public.order_items");
    assert_eq!(t["status"], "fail", "{t}");
    assert_eq!(t["actual_from"], "copy", "{t}");
    assert_eq!(t["expected"].as_u64(), Some(items), "{t}");
    assert_eq!(t["actual"].as_u64(), Some(kept), "{t}");
    let orders = table_check(&j, "public.orders");
    assert_eq!(orders["status"], "pass", "{orders}");
    assert_eq!(orders["actual_from"], "copy", "{orders}");
    assert_eq!(j["checks"]["counted"], 0, "{j}");
    assert!(
        text(&o).contains(&format!(
            "table public.order_items has {kept} rows, the backup has {items}"
        )),
        "{}",
        text(&o)
    );

    // Rows deleted after the load (between the restore and the check):
    // --count-rows counts every table and sees it.
    let o = dr_run_paused(
        &c,
        &v,
        "rows_deleted",
        &["--count-rows"],
        "dr-check",
        || {
            c.psql("rows_deleted", "DELETE FROM order_items WHERE id % 2 = 1");
        },
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = json_of(&o);
    let t = table_check(&j, "public.order_items");
    assert_eq!(t["status"], "fail", "{t}");
    assert_eq!(t["actual_from"], "count", "{t}");
    assert_eq!(t["actual"].as_u64(), Some(kept), "{t}");
    assert_eq!(j["checks"]["acknowledged"], 0, "{j}");
}
