//! `vaultctl doctor` through the real binary: a healthy setup (local and
//! s3s-fs targets), a wrong S3 secret, a skewed clock (injected through
//! `VAULTCTL_NOW`, which fixes vaultctl's clock while s3s-fs stamps objects
//! with the real one), a world-readable identity, and PostgreSQL sources
//! whose role lacks BYPASSRLS and whose cluster does not archive.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::common::Env;
use crate::pg;

/// The checks of a `doctor --json` run, and its exit code.
fn doctor(out: &crate::common::Out) -> Vec<Value> {
    let v = out.json();
    assert_eq!(v["exit"].as_i64().map(|c| c as i32), out.code, "{v}");
    v["checks"].as_array().unwrap().clone()
}

/// The check `scope` / `name`.
fn find<'a>(checks: &'a [Value], scope: &str, name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["scope"] == scope && c["name"] == name)
        .unwrap_or_else(|| panic!("no check {scope} / {name} in {checks:#?}"))
}

fn failing(checks: &[Value]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| {
            format!(
                "{} / {}",
                c["scope"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn healthy_setup_passes_every_check() {
    let env = Env::with_s3();
    let out = env.run(&["--json", "doctor"]);
    let checks = doctor(&out);
    out.expect_code(0);
    for c in &checks {
        assert_eq!(c["status"], "pass", "{c}");
    }
    for (scope, name) in [
        ("config", "parses"),
        ("keys", "identity file"),
        ("keys", "dedup key"),
        ("target s3", "reachable"),
        ("target s3", "clock skew"),
        ("target s3", "read back"),
        ("target s3", "list"),
        ("target s3", "conditional create"),
        ("target s3", "delete"),
        ("target local", "delete"),
        ("space", "temp space"),
    ] {
        find(&checks, scope, name);
    }
    // The probe left nothing behind on either target.
    assert!(!env.local_repo().join("doctor-probe").exists());
    let s3_probe = env.s3.as_ref().unwrap().repo_dir().join("doctor-probe");
    let left: Vec<_> = walk(&s3_probe);
    assert!(left.is_empty(), "probe objects left on S3: {left:?}");
    // The human form names every check and ends with the counts.
    let text = env.run(&["doctor"]);
    text.expect_code(0);
    let s = text.stdout_str();
    assert!(
        s.contains("clock skew") && s.contains("0 warning(s), 0 failure(s)"),
        "{s}"
    );
}

/// Files under `dir` (none when it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn wrong_secret_fails_with_the_credentials_fix() {
    let env = Env::with_s3();
    let out: crate::common::Out = env
        .command()
        .env("T_SK", "not-the-secret")
        .args(["--json", "doctor"])
        .output()
        .unwrap()
        .into();
    let checks = doctor(&out);
    out.expect_code(2);
    assert_eq!(failing(&checks), ["target s3 / reachable"]);
    let c = find(&checks, "target s3", "reachable");
    assert!(c["fix"].as_str().unwrap().contains("credentials"), "{c}");
    // The local target is still checked, and passes.
    assert_eq!(find(&checks, "target local", "delete")["status"], "pass");
    // The secret never reaches the output.
    assert!(!out.stdout_str().contains("not-the-secret") && !out.stderr.contains("not-the-secret"));
}

#[test]
fn skewed_clock_fails_beyond_five_minutes() {
    let env = Env::with_s3();
    let skewed = |mins: i64| {
        let t = time::OffsetDateTime::now_utc() + time::Duration::minutes(mins);
        let out: crate::common::Out = env
            .command()
            .env(
                "VAULTCTL_NOW",
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap(),
            )
            .args(["--json", "doctor"])
            .output()
            .unwrap()
            .into();
        out
    };
    let out = skewed(20);
    let checks = doctor(&out);
    out.expect_code(2);
    assert_eq!(failing(&checks), ["target s3 / clock skew"]);
    let c = find(&checks, "target s3", "clock skew");
    let detail = c["detail"].as_str().unwrap();
    assert!(detail.contains("ahead of the storage"), "{c}");
    let secs: i64 = detail
        .split("clock is ")
        .nth(1)
        .unwrap()
        .split('s')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1190..=1210).contains(&secs), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("timesyncd"), "{c}");
    // Two minutes behind: a warning, exit 1.
    let out = skewed(-2);
    let checks = doctor(&out);
    out.expect_code(1);
    let c = find(&checks, "target s3", "clock skew");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(c["detail"].as_str().unwrap().contains("behind"), "{c}");
}

#[test]
fn readable_identity_and_broken_config_fail() {
    let env = Env::local();
    std::fs::set_permissions(env.path("id.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["--json", "doctor"]);
    let checks = doctor(&out);
    out.expect_code(2);
    assert_eq!(failing(&checks), ["keys / identity file"]);
    let c = find(&checks, "keys", "identity file");
    assert_eq!(
        c["fix"],
        format!("chmod 600 {}", env.path("id.txt").display()),
        "{c}"
    );
    // An unknown key: the config check fails, naming the key.
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, format!("compresion_level = 3\n{text}")).unwrap();
    let out = env.run(&["--json", "doctor"]);
    let checks = doctor(&out);
    out.expect_code(2);
    let c = find(&checks, "config", "parses");
    assert_eq!(c["status"], "fail");
    assert!(
        c["detail"].as_str().unwrap().contains("compresion_level"),
        "{c}"
    );
}

#[test]
fn postgres_role_without_bypassrls_and_archiving_off() {
    let c = pg::fixture();
    let bin = c.bin.clone();
    let vault = pg::Vault::new(&[
        pg::SourceDef {
            name: "app",
            url: c.url("app", "app"),
            password: pg::APP_PASSWORD,
            bin_dir: bin.clone(),
            pg_dump: None,
        },
        pg::SourceDef {
            name: "good",
            url: c.url("backup", "app"),
            password: pg::BACKUP_PASSWORD,
            bin_dir: bin.clone(),
            pg_dump: None,
        },
    ]);
    // A physical source on the same cluster, which does not archive.
    let pw = vault.dir.path().join("super.password");
    std::fs::write(&pw, pg::SUPERUSER_PASSWORD).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut toml = std::fs::read_to_string(&vault.config).unwrap();
    toml.push_str(&format!(
        "[[source]]\nname = \"cluster\"\nkind = \"postgres-physical\"\nurl = \"{}\"\npassword_file = \"{}\"\npg_bin_dir = \"{}\"\n",
        c.url("postgres", "postgres"),
        pw.display(),
        bin.display()
    ));
    std::fs::write(&vault.config, toml).unwrap();
    let out: crate::common::Out = vault.run(&["--json", "doctor"]).into();
    let checks = doctor(&out);
    out.expect_code(2);
    assert_eq!(
        failing(&checks),
        [
            "source app / row-level security",
            "source cluster / archive_mode",
            "source cluster / archive_command",
        ]
    );
    let rls = find(&checks, "source app", "row-level security");
    let detail = rls["detail"].as_str().unwrap();
    assert!(
        detail.contains("public.orders") && detail.contains("BYPASSRLS"),
        "{rls}"
    );
    assert!(rls["fix"].as_str().unwrap().contains("BYPASSRLS"), "{rls}");
    // The app role reads its tables but is not in pg_read_all_data.
    assert_eq!(
        find(&checks, "source app", "read privilege")["status"],
        "warn"
    );
    for name in [
        "connection",
        "row-level security",
        "read privilege",
        "pg_dump version",
    ] {
        assert_eq!(
            find(&checks, "source good", name)["status"],
            "pass",
            "{name}"
        );
    }
    let mode = find(&checks, "source cluster", "archive_mode");
    let fix = mode["fix"].as_str().unwrap();
    assert!(
        fix.contains("archive_mode = on")
            && fix.contains(&format!(
                "--config {} wal push %p",
                std::fs::canonicalize(&vault.config).unwrap().display()
            )),
        "{mode}"
    );
    assert!(find(&checks, "source cluster", "archive_command")["detail"]
        .as_str()
        .unwrap()
        .contains("not set"));
    assert_eq!(
        find(&checks, "source cluster", "replication privilege")["status"],
        "pass"
    );
    assert_eq!(
        find(&checks, "source cluster", "wal_level")["status"],
        "pass"
    );
    // Nothing secret in the output.
    let all = format!("{}{}", out.stdout_str(), out.stderr);
    for secret in [
        pg::APP_PASSWORD,
        pg::BACKUP_PASSWORD,
        pg::SUPERUSER_PASSWORD,
    ] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
}
