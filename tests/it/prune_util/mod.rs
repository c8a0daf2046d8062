//! Harness for the prune/sync integration tests: a private HOME/XDG tree, a
//! generated identity, a config file, the real binary; the S3 server is the
//! common harness's.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_vaultctl");
/// Names of the environment variables that carry the S3 credentials.
pub const S3_AK: &str = "PRUNETESTAK";
pub const S3_SK: &str = "PRUNETESTSECRET";

pub use crate::common::{DeleteRefusingProxy, S3Server};
use crate::common::{ACCESS_KEY, BUCKET, PREFIX, SECRET_KEY};

pub struct Env {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub recipient: String,
}

impl Env {
    /// An initialised repository on one local target, `repo`, whose
    /// retention keeps the `n` newest backups per source.
    pub fn local_keeping_last(n: usize) -> (Env, PathBuf) {
        let env = Env::new();
        let dir = env.path("repo");
        env.write_config(&local_target(
            "local",
            &dir,
            &format!("[target.retention]\nkeep_last = {n}"),
        ));
        env.ok(&["init"]);
        (env, dir)
    }

    /// A fresh tree with an identity (`id.txt`); write a config next.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        for d in ["home", "xdg-config", "xdg-data", "xdg-cache", "work"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let mut env = Env {
            _dir: dir,
            root,
            recipient: String::new(),
        };
        let out = env.run(
            &[
                "key",
                "generate",
                "--output",
                env.path("id.txt").to_str().unwrap(),
            ],
            false,
        );
        assert!(
            out.status.success(),
            "key generate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env.recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            env.recipient.starts_with("age1"),
            "unexpected key generate output {:?}",
            env.recipient
        );
        env
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `config.toml` (full keys) and `writeonly.toml` (the same
    /// repository and catalog, recipients and dedup key only).
    pub fn write_config(&self, targets: &str) {
        let head = |identity: bool| {
            format!(
                "catalog = \"{cat}\"\npack_size_mib = 1\n[keys]\nrecipients = [\"{rec}\"]\ndedup_key_file = \"{dk}\"\n{id}\n",
                cat = self.path("catalog.db").display(),
                rec = self.recipient,
                dk = self.path("dedup.key").display(),
                id = if identity { format!("identity_file = \"{}\"", self.path("id.txt").display()) } else { String::new() },
            )
        };
        std::fs::write(self.path("config.toml"), format!("{}{targets}", head(true))).unwrap();
        std::fs::write(
            self.path("writeonly.toml"),
            format!("{}{targets}", head(false)),
        )
        .unwrap();
    }

    /// A command for the binary with the private environment.
    pub fn command(&self, args: &[&str], write_only: bool) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg-config"))
            .env("XDG_DATA_HOME", self.path("xdg-data"))
            .env("XDG_CACHE_HOME", self.path("xdg-cache"))
            .env(S3_AK, ACCESS_KEY)
            .env(S3_SK, SECRET_KEY)
            .env("NO_COLOR", "1")
            .current_dir(self.path("work"));
        if args.first().is_none_or(|a| *a != "key") {
            c.arg("--config")
                .arg(self.path(if write_only {
                    "writeonly.toml"
                } else {
                    "config.toml"
                }))
                .arg("--no-progress");
        }
        c.args(args);
        c
    }

    pub fn run(&self, args: &[&str], write_only: bool) -> Output {
        self.command(args, write_only)
            .stdin(Stdio::null())
            .output()
            .expect("run vaultctl")
    }

    /// Runs and asserts exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, false);
        assert_success(args, &out);
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str], write_only: bool) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.run(&a, write_only);
        assert_success(&a, &out);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "vaultctl {a:?}: bad JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Backs up a file's bytes as a command source; returns the backup id.
    pub fn backup_file(&self, source: &str, file: &Path) -> String {
        let v = self.json(
            &[
                "backup",
                "command",
                "--name",
                source,
                "--",
                "cat",
                file.to_str().unwrap(),
            ],
            false,
        );
        v["id"].as_str().expect("backup id").to_string()
    }

    /// Restores a backup to bytes (`--target` optional).
    pub fn restore(&self, id: &str, target: Option<&str>) -> Vec<u8> {
        let mut args = vec!["restore", id, "--stdout"];
        if let Some(t) = target {
            args.extend(["--target", t]);
        }
        let out = self.run(&args, false);
        assert_success(&args, &out);
        out.stdout
    }
}

pub fn assert_success(args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "vaultctl {args:?} exited with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no data files.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Total size of the files under a directory.
pub fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            total += if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

/// Number of files under a directory.
pub fn file_count(p: &Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            n += if e.metadata().unwrap().is_dir() {
                file_count(&e.path())
            } else {
                1
            };
        }
    }
    n
}

/// The `[[target]]` table for the harness's S3 server (`common::S3Server`):
/// the repository under `PREFIX` in its bucket, credentials from the
/// environment the command gets.
pub fn s3_target(server: &S3Server, name: &str, extra: &str) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\nurl = \"s3://{BUCKET}/{PREFIX}\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
         access_key_id_env = \"{S3_AK}\"\nsecret_access_key_env = \"{S3_SK}\"\nallow_http = true\nmax_retries = 2\nretry_timeout = \"10s\"\n{extra}\n",
        server.endpoint()
    )
}

/// A `[[target]]` table for a local directory.
pub fn local_target(name: &str, dir: &Path, extra: &str) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\nurl = \"file://{}\"\n{extra}\n",
        dir.display()
    )
}
