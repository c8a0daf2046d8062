//! Notifications: webhooks (JSON or Slack), commands, and healthchecks.io
//! style pings. Delivery never fails the caller: each attempt has a short
//! timeout, failures are retried a few times and then logged.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::alerts::{Change, Event};
use crate::config::{Config, Notify, NotifyKind};
use crate::redact;

/// Attempts per notification (one try plus retries).
pub const ATTEMPTS: u32 = 3;

/// The one-line summary: `[vaultctl CRITICAL] backup_failed source=db on host: message`.
pub fn text(e: &Event) -> String {
    let label = match e.change {
        Change::Resolved => "RESOLVED".to_string(),
        _ => e.alert.severity.as_str().to_ascii_uppercase(),
    };
    let msg = e.alert.message.lines().next().unwrap_or("");
    format!(
        "[vaultctl {label}] {} on {}: {msg}",
        e.alert.subject(),
        crate::repo::hostname()
    )
}

/// The webhook body for `format = "json"`: every alert field, the event,
/// the host and the one-line text.
pub fn payload(e: &Event) -> serde_json::Value {
    let mut v = serde_json::to_value(&e.alert).unwrap_or_else(|_| json!({}));
    if let Some(obj) = v.as_object_mut() {
        obj.insert("event".into(), json!(e.change));
        obj.insert("host".into(), json!(crate::repo::hostname()));
        obj.insert("text".into(), json!(text(e)));
    }
    v
}

/// Sends notifiable events to every notifier whose minimum severity they
/// reach. Never fails; problems are logged.
pub fn deliver(config: &Config, events: &[Event]) {
    for e in events.iter().filter(|e| e.notifiable()) {
        for n in config
            .notify
            .iter()
            .filter(|n| e.alert.severity >= n.min_severity)
        {
            if let Err(err) = send(n, e) {
                tracing::warn!(
                    "notification of alert {} ({}) failed after {ATTEMPTS} attempts: {err}",
                    e.alert.id,
                    e.alert.kind
                );
            }
        }
    }
}

fn send(n: &Notify, e: &Event) -> Result<(), String> {
    match &n.kind {
        NotifyKind::Webhook { url, slack } => {
            let url = url.get().map_err(|e| crate::error::paragraph(&e))?;
            let body = if *slack {
                json!({ "text": text(e) })
            } else {
                payload(e)
            };
            retry(|| post(&url, Some(body.to_string()), n.timeout))
        }
        NotifyKind::Command { argv } => retry(|| run_command(argv, e, n.timeout)),
    }
}

fn retry(mut f: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 * (1 << (attempt - 1))));
        }
        match f() {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::debug!("notification attempt {} failed: {e}", attempt + 1);
                last = e;
            }
        }
    }
    Err(last)
}

/// POSTs `body` (JSON) to `url`; success is a 2xx answer.
pub fn post(url: &str, body: Option<String>, timeout: Duration) -> Result<(), String> {
    let url = url.to_string();
    crate::storage::runtime().block_on(async move {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("vaultctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| redact::text(&e.without_url().to_string()))?;
        let mut req = client.post(&url);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.map_err(|e| http_error(&url, e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "POST {} answered {}",
                redact::url(&url),
                resp.status()
            ))
        }
    })
}

/// A reqwest error without its URL (webhook and healthcheck URLs carry
/// tokens), with its causes; any URL a cause still names is redacted.
fn http_error(url: &str, e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = format!("POST {}: {e}", redact::url(url));
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        let s = inner.to_string();
        if !text.contains(&s) {
            text.push_str(&format!(": {s}"));
        }
        src = inner.source();
    }
    redact::text(&text)
}

/// The `VAULTCTL_ALERT_*` variables a command notifier gets.
pub fn env_vars(e: &Event) -> Vec<(String, String)> {
    let a = &e.alert;
    let change = serde_json::to_value(e.change)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    [
        ("ID", a.id.to_string()),
        ("EVENT", change),
        ("KIND", a.kind.clone()),
        ("SEVERITY", a.severity.as_str().into()),
        ("SOURCE", a.source.clone().unwrap_or_default()),
        ("TARGET", a.target.clone().unwrap_or_default()),
        ("MESSAGE", a.message.clone()),
        ("STATUS", a.status.clone()),
        ("COUNT", a.count.to_string()),
        ("FIRST_SEEN", a.first_seen.to_string()),
        ("LAST_SEEN", a.last_seen.to_string()),
        ("HOST", crate::repo::hostname()),
        ("TEXT", text(e)),
    ]
    .into_iter()
    .map(|(k, v)| (format!("VAULTCTL_ALERT_{k}"), v))
    .collect()
}

/// Runs the notifier command with the alert in its environment and the
/// JSON payload on stdin; success is exit status 0 within the timeout.
fn run_command(argv: &[String], e: &Event, timeout: Duration) -> Result<(), String> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env_vars(e))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run {}: {err}", argv[0]))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{}\n", payload(e)).as_bytes());
    }
    let started = Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => {
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut s, &mut err);
                }
                let tail: String = err
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect();
                return Err(format!(
                    "{} exited with {status}{}",
                    argv[0],
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!(": {tail}")
                    }
                ));
            }
            None if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not finish within {}s and was killed",
                    argv[0],
                    timeout.as_secs()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A healthchecks.io-style ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    Start,
    Success,
    Fail,
}

/// Pings `url` (`/start`, bare, `/fail`); the body (e.g. the error) becomes
/// the check's log. Never fails; problems are logged.
pub fn ping(url: &str, kind: Ping, body: Option<String>) {
    let full = ping_url(url, kind);
    let body = body.map(|b| b.chars().take(10_000).collect::<String>());
    if let Err(e) = retry(|| post_text(&full, body.clone())) {
        tracing::warn!("healthcheck ping failed after {ATTEMPTS} attempts: {e}");
    }
}

/// The URL of a ping: `/start` and `/fail` go at the end of the path,
/// before any query (`https://hc.example/ping/UUID?rid=1` →
/// `https://hc.example/ping/UUID/start?rid=1`).
fn ping_url(url: &str, kind: Ping) -> String {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let base = path.trim_end_matches('/');
    let mut full = match kind {
        Ping::Start => format!("{base}/start"),
        Ping::Success => base.to_string(),
        Ping::Fail => format!("{base}/fail"),
    };
    if let Some(q) = query {
        full.push('?');
        full.push_str(q);
    }
    full
}

fn post_text(url: &str, body: Option<String>) -> Result<(), String> {
    let url = url.to_string();
    crate::storage::runtime().block_on(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("vaultctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| redact::text(&e.without_url().to_string()))?;
        let resp = client
            .post(&url)
            .body(body.unwrap_or_default())
            .send()
            .await
            .map_err(|e| http_error(&url, e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "POST {} answered {}",
                redact::url(&url),
                resp.status()
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_suffixes_go_before_the_query() {
        assert_eq!(
            ping_url("https://hc.example/ping/UUID/", Ping::Start),
            "https://hc.example/ping/UUID/start"
        );
        assert_eq!(
            ping_url("https://hc.example/ping/UUID?rid=1", Ping::Fail),
            "https://hc.example/ping/UUID/fail?rid=1"
        );
        assert_eq!(
            ping_url("https://hc.example/ping/UUID?rid=1", Ping::Success),
            "https://hc.example/ping/UUID?rid=1"
        );
    }
}
