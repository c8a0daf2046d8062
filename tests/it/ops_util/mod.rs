//! Helpers for the operations tests: a config in a tempdir with one local
//! target, the real binary, and an HTTP listener on 127.0.0.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

pub struct OpsEnv {
    pub dir: tempfile::TempDir,
}

impl OpsEnv {
    /// Generates a key, writes `config.toml` (catalog, one local target,
    /// then `extra`) and runs `init`.
    pub fn new(extra: &str) -> OpsEnv {
        let env = OpsEnv {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(env.path("data")).unwrap();
        let out = env.run(&[
            "key",
            "generate",
            "--output",
            env.path("identity.txt").to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "key generate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env.write_config(extra);
        let out = env.run(&["init"]);
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `{dir}` in `extra` becomes the tempdir; its lines before the first
    /// table go to the top of the file.
    pub fn write_config(&self, extra: &str) {
        let d = self.dir.path().display().to_string();
        let extra = extra.replace("{dir}", &d);
        let split = extra
            .find("\n[")
            .map(|i| i + 1)
            .unwrap_or(if extra.starts_with('[') {
                0
            } else {
                extra.len()
            });
        let (top, tables) = extra.split_at(if extra.starts_with('[') { 0 } else { split });
        let text = format!(
            "{top}\ncatalog = \"{d}/catalog.db\"\n\n[keys]\nidentity_file = \"{d}/identity.txt\"\n\n[[target]]\nname = \"local\"\nurl = \"file://{d}/repo\"\n\n{tables}"
        );
        std::fs::write(self.path("config.toml"), text).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vaultctl"));
        c.args(args)
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("xdg-config"))
            .env("XDG_DATA_HOME", self.path("xdg-data"))
            .env("VAULTCTL_CONFIG", self.path("config.toml"))
            .env("NO_COLOR", "1")
            .env_remove("VAULTCTL_NOW")
            .env_remove("VAULTCTL_METRICS_TEXTFILE")
            .env_remove("VAULTCTL_CATALOG")
            .env_remove("RUST_LOG")
            .arg("--no-progress");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs with `VAULTCTL_NOW` set.
    pub fn run_at(&self, now: &str, args: &[&str]) -> Output {
        self.command(args)
            .env("VAULTCTL_NOW", now)
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vaultctl {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `--json` output with `VAULTCTL_NOW` set.
    pub fn json_at(&self, now: &str, args: &[&str]) -> serde_json::Value {
        let out = self
            .command(&[&["--json"], args].concat())
            .env("VAULTCTL_NOW", now)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "vaultctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// One HTTP request the listener received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: String,
}

/// An HTTP server on 127.0.0.1 answering every request with the next status
/// from `statuses` (200 once they run out) and reporting each request.
pub struct Listener {
    pub url: String,
    pub requests: Receiver<Request>,
}

impl Listener {
    pub fn start(statuses: Vec<u16>) -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for stream in l.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.is_empty() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let status = statuses.next().unwrap_or(200);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.flush();
                if tx
                    .send(Request {
                        method,
                        path,
                        body: String::from_utf8_lossy(&body).to_string(),
                    })
                    .is_err()
                {
                    break;
                }
            }
        });
        Listener { url, requests: rx }
    }

    /// Every request received so far (waiting briefly for stragglers).
    pub fn drain(&self) -> Vec<Request> {
        let mut v = Vec::new();
        while let Ok(r) = self.requests.recv_timeout(Duration::from_millis(300)) {
            v.push(r);
        }
        v
    }
}

/// Checks Prometheus text exposition format line by line; returns the
/// samples as (name with labels, value).
pub fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    assert!(text.ends_with('\n'), "the file must end with a newline");
    let mut typed: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut p = rest.splitn(3, ' ');
            let kw = p.next().unwrap();
            let name = p.next().unwrap_or("");
            let tail = p.next().unwrap_or("");
            assert!(valid_name(name), "bad metric name in {line:?}");
            match kw {
                "HELP" => assert!(!tail.is_empty(), "empty HELP: {line:?}"),
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&tail),
                        "bad TYPE: {line:?}"
                    );
                    assert!(!typed.contains(&name.to_string()), "TYPE twice: {line:?}");
                    typed.push(name.to_string());
                }
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        assert!(!line.is_empty(), "empty line in the exposition");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "bad metric name in {line:?}");
        assert!(
            typed.contains(&name.to_string()),
            "sample before its TYPE: {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels: {line:?}"
            );
            let inner = &labels[1..labels.len() - 1];
            // label="value" pairs, values with \\ \" \n escapes.
            let mut chars = inner.chars().peekable();
            loop {
                let mut lname = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '=' {
                        break;
                    }
                    lname.push(c);
                    chars.next();
                }
                assert!(valid_name(&lname), "bad label name in {line:?}");
                assert_eq!(chars.next(), Some('='), "{line:?}");
                assert_eq!(chars.next(), Some('"'), "{line:?}");
                loop {
                    match chars.next() {
                        Some('\\') => assert!(
                            matches!(chars.next(), Some('\\' | '"' | 'n')),
                            "bad escape: {line:?}"
                        ),
                        Some('"') => break,
                        Some(_) => {}
                        None => panic!("unterminated label value: {line:?}"),
                    }
                }
                match chars.next() {
                    Some(',') => continue,
                    None => break,
                    Some(c) => panic!("unexpected {c:?} in labels: {line:?}"),
                }
            }
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line:?}"));
        samples.push((series.to_string(), v));
    }
    samples
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}
