//! Operations end to end with the real binary: alerts, notifications,
//! staleness, status --check, metrics, schedules and systemd units.

use crate::ops_util;

use ops_util::{parse_prometheus, read, stderr, stdout, Listener, OpsEnv};
use time::format_description::well_known::Rfc3339;

/// A command source that succeeds once `{dir}/ok` exists.
fn flaky_source(extra: &str) -> String {
    format!("[[source]]\nname = \"db\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"test -f {{dir}}/ok && echo dump\"]\n{extra}\n")
}

fn in_hours(h: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::hours(h))
        .format(&Rfc3339)
        .unwrap()
}

fn alerts_json(env: &OpsEnv, status: &str) -> Vec<serde_json::Value> {
    env.json(&["alerts", "--status", status])
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn webhooks_json_and_slack_with_retry_and_auto_resolve() {
    // The JSON hook fails once (500): the notifier must retry.
    let json_hook = Listener::start(vec![500]);
    let slack_hook = Listener::start(vec![]);
    let env = OpsEnv::new(&format!(
        "{}\n[[notify]]\nkind = \"webhook\"\nurl = \"{}/hooks/json\"\nformat = \"json\"\nmin_severity = \"warning\"\n\n[[notify]]\nkind = \"webhook\"\nurl_file = \"{{dir}}/slack-url\"\nformat = \"slack\"\nmin_severity = \"critical\"\n",
        flaky_source(""),
        json_hook.url,
    ));
    // The Slack URL is a secret: read from a file when sending.
    std::fs::write(
        env.path("slack-url"),
        format!("{}/hooks/slack\n", slack_hook.url),
    )
    .unwrap();
    let out = env.run(&["backup", "db"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let reqs = json_hook.drain();
    assert_eq!(reqs.len(), 2, "one failed attempt, one retry: {reqs:?}");
    assert_eq!(reqs[0].body, reqs[1].body);
    let r = &reqs[1];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hooks/json");
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["kind"], "backup_failed");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["source"], "db");
    assert_eq!(body["status"], "open");
    assert_eq!(body["event"], "opened");
    assert_eq!(body["count"], 1);
    for k in ["id", "target", "message", "first_seen", "last_seen"] {
        assert!(body.get(k).is_some(), "missing {k} in {body}");
    }
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("[vaultctl CRITICAL] backup_failed source=db"),
        "{text}"
    );
    assert!(!text.contains('\n'));

    let slack = slack_hook.drain();
    assert_eq!(slack.len(), 1);
    assert_eq!(slack[0].path, "/hooks/slack");
    let sbody: serde_json::Value = serde_json::from_str(&slack[0].body).unwrap();
    assert_eq!(
        sbody.as_object().unwrap().len(),
        1,
        "slack gets only text: {sbody}"
    );
    assert_eq!(sbody["text"], body["text"]);

    // The same failure again: de-duplicated, not notified again.
    assert_eq!(env.run(&["backup", "db"]).status.code(), Some(1));
    assert!(json_hook.drain().is_empty());
    let open = alerts_json(&env, "open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["count"], 2);

    // Fixed: the next successful backup resolves it and says so.
    std::fs::write(env.path("ok"), "").unwrap();
    env.ok(&["backup", "db"]);
    let reqs = json_hook.drain();
    assert_eq!(reqs.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&reqs[0].body).unwrap();
    assert_eq!(body["event"], "resolved");
    assert_eq!(body["status"], "resolved");
    assert!(body["text"]
        .as_str()
        .unwrap()
        .starts_with("[vaultctl RESOLVED]"));
    assert!(alerts_json(&env, "open").is_empty());
    let all = alerts_json(&env, "all");
    assert_eq!(all.len(), 1);
    assert!(all[0]["resolved_by"].as_str().unwrap().contains("backup"));
}

#[test]
fn unreachable_webhook_never_fails_the_backup() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = OpsEnv::new(&format!(
        "[[source]]\nname = \"docs\"\nkind = \"files\"\npaths = [\"{{dir}}/data\"]\nhealthcheck_url = \"http://127.0.0.1:{port}/ping\"\n\n[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\nmin_severity = \"info\"\ntimeout = \"2s\"\n"
    ));
    let out = env.run(&["backup", "docs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("healthcheck ping failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn command_notifier_dedup_and_resolve() {
    let log = "{dir}/notified.log";
    let env = OpsEnv::new(&format!(
        "{}\n[[notify]]\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"echo \\\"$VAULTCTL_ALERT_EVENT $VAULTCTL_ALERT_SEVERITY $VAULTCTL_ALERT_KIND $VAULTCTL_ALERT_SOURCE $VAULTCTL_ALERT_COUNT\\\" >> {log}; cat > {{dir}}/stdin.json\"]\nmin_severity = \"info\"\n",
        flaky_source("")
    ));
    for _ in 0..3 {
        assert_eq!(env.run(&["backup", "db"]).status.code(), Some(1));
    }
    let log_path = env.path("notified.log");
    assert_eq!(read(&log_path), "opened critical backup_failed db 1\n");
    let stdin: serde_json::Value = serde_json::from_str(&read(&env.path("stdin.json"))).unwrap();
    assert_eq!(stdin["kind"], "backup_failed");
    let open = alerts_json(&env, "open");
    assert_eq!(open.len(), 1, "de-duplicated");
    assert_eq!(open[0]["count"], 3);
    assert_ne!(open[0]["first_seen"], open[0]["last_seen"]);

    // Acknowledge: still active (and still critical for --check).
    let id = open[0]["id"].as_i64().unwrap().to_string();
    // Under sudo the acknowledgement names the sudo user, as restore logs do.
    let out = env
        .command(&["alerts", "ack", &id, "--note", "looking into it"])
        .env("SUDO_USER", "alice")
        .env("USER", "root")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acked = alerts_json(&env, "acknowledged");
    assert_eq!(acked[0]["ack_note"], "looking into it");
    let by = acked[0]["acknowledged_by"].as_str().unwrap();
    assert!(by.starts_with("alice@"), "{by}");
    assert_eq!(env.run(&["status", "--check"]).status.code(), Some(2));

    std::fs::write(env.path("ok"), "").unwrap();
    env.ok(&["backup", "db"]);
    assert_eq!(
        read(&log_path),
        "opened critical backup_failed db 1\nresolved critical backup_failed db 3\n"
    );
    assert!(alerts_json(&env, "active").is_empty());
    assert_eq!(env.run(&["status", "--check"]).status.code(), Some(0));
}

#[test]
fn healthcheck_pings_start_success_and_fail() {
    let hc = Listener::start(vec![]);
    let env = OpsEnv::new(&flaky_source(&format!(
        "healthcheck_url = \"{}/ping/abc\"",
        hc.url
    )));
    assert_eq!(env.run(&["backup", "db"]).status.code(), Some(1));
    let reqs = hc.drain();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/ping/abc/start", "/ping/abc/fail"]);
    assert!(
        reqs[1].body.contains("exited with status"),
        "the failure is the ping's body: {}",
        reqs[1].body
    );
    std::fs::write(env.path("ok"), "").unwrap();
    env.ok(&["backup", "db"]);
    let paths: Vec<String> = hc.drain().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/ping/abc/start", "/ping/abc"]);
}

#[test]
fn staleness_with_injected_now_and_check_exit_codes() {
    let env = OpsEnv::new(&flaky_source("schedule = \"daily\""));
    std::fs::write(env.path("ok"), "").unwrap();
    env.ok(&["backup", "db"]);

    // Healthy now and an hour later.
    let out = env.run(&["status", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("VAULTCTL OK - health 100/100"),
        "{}",
        stdout(&out)
    );
    assert_eq!(stdout(&out).lines().count(), 1);
    assert_eq!(
        env.run_at(&in_hours(1), &["status", "--check"])
            .status
            .code(),
        Some(0)
    );

    // daily: stale after 24h + 2h grace → warning at 27h.
    let out = env.run_at(&in_hours(27), &["status", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("VAULTCTL WARNING"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("stale: db"), "{}", stdout(&out));
    // `alerts` checks staleness too: at the real time the source is fresh
    // again, so ask at the injected time.
    let at27 = in_hours(27);
    let stale: Vec<_> = env
        .json_at(&at27, &["alerts"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "source_stale")
        .cloned()
        .collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0]["severity"], "warning");
    assert_eq!(stale[0]["source"], "db");

    // Beyond twice the threshold: critical (escalated, same alert).
    let at60 = in_hours(60);
    let out = env.run_at(&at60, &["status", "--check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let stale: Vec<_> = env
        .json_at(&at60, &["alerts"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "source_stale")
        .cloned()
        .collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0]["severity"], "critical");
    assert!(stale[0]["count"].as_u64().unwrap() >= 2);

    // The dashboard as JSON at that time.
    let out = env
        .command(&["--json", "status"])
        .env("VAULTCTL_NOW", in_hours(60))
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["state"], "critical");
    assert!(st["health_score"].as_u64().unwrap() <= 75);
    assert_eq!(st["sources"][0]["stale"], true);
    assert_eq!(st["sources"][0]["schedule"], "daily");
    assert_eq!(st["backups"]["completed"], 1);
    assert_eq!(st["targets"][0]["name"], "local");
    assert_eq!(st["targets"][0]["backups"], 1);

    // The next successful backup resolves it.
    env.ok(&["backup", "db"]);
    assert!(alerts_json(&env, "open").is_empty());
    assert_eq!(env.run(&["status", "--check"]).status.code(), Some(0));

    // A failure is critical; resolving it by hand makes --check healthy
    // again (it reflects the present, not history).
    std::fs::remove_file(env.path("ok")).unwrap();
    assert_eq!(env.run(&["backup", "db"]).status.code(), Some(1));
    let out = env.run(&["status", "--check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).starts_with("VAULTCTL CRITICAL"),
        "{}",
        stdout(&out)
    );
    let id = alerts_json(&env, "open")[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    env.ok(&["alerts", "resolve", &id, "--note", "known flake"]);
    let out = env.run(&["status", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("health 90/100"),
        "one failure in three backups this week: {}",
        stdout(&out)
    );
}

#[test]
fn never_backed_up_source_becomes_stale_after_the_threshold() {
    let env = OpsEnv::new(&flaky_source("stale_after = \"2h\""));
    // First sight starts the clock: not stale yet.
    assert_eq!(env.run(&["status", "--check"]).status.code(), Some(0));
    let at3 = in_hours(3);
    let out = env.run_at(&at3, &["status", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let a = &env.json_at(&at3, &["alerts"])[0];
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("never had a successful backup"),
        "{a}"
    );
}

#[test]
fn failed_verify_raises_and_clean_verify_resolves() {
    let env = OpsEnv::new(&flaky_source(""));
    std::fs::write(env.path("ok"), "").unwrap();
    env.ok(&["backup", "db"]);
    env.ok(&["verify"]);
    // Damage a pack.
    let packs = env.path("repo/packs");
    let mut pack = None;
    for e in walk(&packs) {
        pack = Some(e);
    }
    let pack = pack.expect("a pack file");
    let mut bytes = std::fs::read(&pack).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&pack, &bytes).unwrap();
    assert_eq!(env.run(&["verify", "--read-data"]).status.code(), Some(1));
    let open = alerts_json(&env, "open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["kind"], "verify_failed");
    assert_eq!(open[0]["target"], "local");
    assert_eq!(open[0]["severity"], "critical");
    // A restore of the damaged backup fails: restore_failed.
    let out = env.run(&["restore", "db:latest", "--stdout"]);
    assert!(!out.status.success());
    let restore: Vec<_> = alerts_json(&env, "open")
        .into_iter()
        .filter(|a| a["kind"] == "restore_failed")
        .collect();
    assert_eq!(restore.len(), 1, "{}", stderr(&out));
    assert_eq!(restore[0]["source"], "db");
    // Repair and verify again: resolved; a good restore resolves its alert.
    bytes[n / 2] ^= 0xff;
    std::fs::write(&pack, &bytes).unwrap();
    env.ok(&["verify", "--read-data"]);
    env.ok(&["restore", "db:latest", "--stdout"]);
    assert!(alerts_json(&env, "open").is_empty());
}

#[test]
fn unreachable_target_and_missed_backup_are_warnings() {
    let env = OpsEnv::new(&flaky_source(""));
    std::fs::write(env.path("ok"), "").unwrap();
    // A second target nobody answers for (added after init).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.write_config(&format!(
        "{}\n[[target]]\nname = \"down\"\nurl = \"s3://bucket/vaultctl\"\nendpoint = \"http://127.0.0.1:{port}\"\nallow_http = true\naccess_key_id_env = \"HOME\"\nsecret_access_key_env = \"HOME\"\nmax_retries = 0\nretry_timeout = \"1s\"\nrequest_timeout = \"2s\"\n",
        flaky_source("")
    ));
    let out = env.run(&["backup", "db"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let open = alerts_json(&env, "open");
    let kinds: Vec<(&str, &str)> = open
        .iter()
        .map(|a| (a["kind"].as_str().unwrap(), a["target"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("target_unreachable", "down")), "{kinds:?}");
    assert!(
        kinds.contains(&("backup_target_missed", "down")),
        "{kinds:?}"
    );
    assert!(open.iter().all(|a| a["severity"] == "warning"));
    let out = env.run(&["status", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("VAULTCTL WARNING"));
}

pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn metrics_textfile_is_valid_and_replaced_atomically() {
    let env = OpsEnv::new(&format!(
        "metrics_textfile = \"{{dir}}/prom/vaultctl.prom\"\n\n{}",
        flaky_source("schedule = \"hourly\"")
    ));
    let prom = env.path("prom/vaultctl.prom");
    std::fs::write(env.path("ok"), "").unwrap();
    env.ok(&["backup", "db"]);
    let text = read(&prom);
    let samples = parse_prometheus(&text);
    let get = |name: &str| samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(get("vaultctl_health_score"), Some(100.0));
    assert_eq!(
        get("vaultctl_backups_total{source=\"db\",status=\"completed\"}"),
        Some(1.0)
    );
    assert!(get("vaultctl_source_last_success_timestamp_seconds{source=\"db\"}").unwrap() > 1.7e9);
    assert!(get("vaultctl_source_last_bytes{source=\"db\"}").unwrap() > 0.0);
    assert!(get("vaultctl_source_stored_bytes{source=\"db\"}").unwrap() > 0.0);
    assert!(get("vaultctl_source_last_duration_seconds{source=\"db\"}").is_some());
    assert!(get("vaultctl_target_stored_bytes{target=\"local\"}").unwrap() > 0.0);
    assert_eq!(
        get("vaultctl_alerts_open{severity=\"critical\"}"),
        Some(0.0)
    );
    assert!(get("vaultctl_source_next_run_timestamp_seconds{source=\"db\"}").is_some());

    // A failure rewrites it: a new file renamed into place (new inode), no
    // temporary files left behind.
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&prom).unwrap().ino();
    std::fs::remove_file(env.path("ok")).unwrap();
    assert_eq!(env.run(&["backup", "db"]).status.code(), Some(1));
    assert_ne!(
        std::fs::metadata(&prom).unwrap().ino(),
        ino,
        "replaced by rename, not rewritten in place"
    );
    let samples = parse_prometheus(&read(&prom));
    let get = |name: &str| samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(
        get("vaultctl_backups_total{source=\"db\",status=\"failed\"}"),
        Some(1.0)
    );
    assert_eq!(
        get("vaultctl_alerts_open{severity=\"critical\"}"),
        Some(1.0)
    );
    assert!(get("vaultctl_health_score").unwrap() < 100.0);
    let names: Vec<String> = std::fs::read_dir(env.path("prom"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["vaultctl.prom"]);

    // --metrics-textfile overrides the config.
    let other = env.path("other.prom");
    env.ok(&["--metrics-textfile", other.to_str().unwrap(), "status"]);
    parse_prometheus(&read(&other));
}

#[test]
fn schedule_validation_show_cron_and_systemd_units() {
    let env = OpsEnv::new(
        "[[source]]\nname = \"db\"\nkind = \"command\"\ncommand = [\"echo\", \"x\"]\nschedule = \"*-*-* 02:00:00\"\nstale_after = \"26h\"\n\n\
         [[source]]\nname = \"etc\"\nkind = \"files\"\npaths = [\"/etc/hostname\"]\nschedule = \"Mon..Fri 01:30\"\n\n\
         [[source]]\nname = \"weekly\"\nkind = \"files\"\npaths = [\"/etc/hostname\"]\nschedule = \"Sun *-*-* 03:00:00\"\n\n\
         [[source]]\nname = \"cron\"\nkind = \"files\"\npaths = [\"/etc/hostname\"]\nschedule = \"15 */6 * * *\"\n\n\
         [[source]]\nname = \"adhoc\"\nkind = \"files\"\npaths = [\"/etc/hostname\"]\n\n\
         [[source]]\nname = \"cluster\"\nkind = \"postgres-physical\"\nurl = \"postgresql://replicator@127.0.0.1:5432/postgres\"\n",
    );
    let cron = env.ok(&[
        "schedule",
        "show",
        "--cron",
        "--binary",
        "/usr/bin/vaultctl",
    ]);
    let config = env.path("config.toml");
    let cfg = std::fs::canonicalize(&config).unwrap();
    assert!(
        cron.contains(&format!(
            "0 2 * * * /usr/bin/vaultctl --config {} --no-progress backup db\n",
            cfg.display()
        )),
        "{cron}"
    );
    assert!(cron.contains("30 1 * * 1-5 /usr/bin/vaultctl"), "{cron}");
    assert!(cron.contains("0 3 * * 0 /usr/bin/vaultctl"), "{cron}");
    assert!(
        cron.contains("15 0,6,12,18 * * * /usr/bin/vaultctl"),
        "{cron}"
    );
    assert!(!cron.contains("backup adhoc"));
    assert!(
        cron.contains(&format!(
            "* * * * * /usr/bin/vaultctl --config {} --no-progress --quiet schedule run-due\n",
            cfg.display()
        )),
        "{cron}"
    );
    // A physical source archives WAL all day: its archive is checked every
    // 15 minutes, scheduled or not.
    assert!(
        cron.contains(&format!(
            "*/15 * * * * /usr/bin/vaultctl --config {} --quiet wal status --source cluster\n",
            cfg.display()
        )),
        "{cron}"
    );
    assert!(!cron.contains("backup cluster"), "{cron}");

    let show = env.json(&["schedule", "show"]);
    let db = show
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "db")
        .unwrap();
    assert_eq!(db["stale_after_secs"], 26 * 3600);
    let next = db["next_run"].as_str().unwrap();
    assert!(next.ends_with("T02:00:00.000Z"), "{next}");
    // Next-run with an injected now.
    let out = env
        .command(&["--json", "schedule", "show"])
        .env("VAULTCTL_NOW", "2026-11-27T02:00:00Z")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let etc = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "etc")
        .unwrap();
    assert_eq!(
        etc["next_run"], "2026-11-30T01:30:00.000Z",
        "Friday 02:00 → Monday 01:30"
    );

    let units = env.path("units");
    env.ok(&["schedule", "install", "--systemd", units.to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(&units)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 12, "{names:?}");
    let oneshot = read(&units.join("vaultctl-oneshot.timer"));
    assert!(oneshot.contains("OnCalendar=minutely"), "{oneshot}");
    let oneshot = read(&units.join("vaultctl-oneshot.service"));
    assert!(oneshot.contains("--quiet schedule run-due"), "{oneshot}");
    let walcheck = read(&units.join("vaultctl-walcheck-cluster.timer"));
    assert!(walcheck.contains("OnCalendar=*:0/15"), "{walcheck}");
    let walcheck = read(&units.join("vaultctl-walcheck-cluster.service"));
    assert!(
        walcheck.contains("--quiet wal status --source cluster")
            && walcheck.contains("ProtectSystem=strict"),
        "{walcheck}"
    );
    let service = read(&units.join("vaultctl-backup-db.service"));
    for want in [
        "Type=oneshot",
        "Nice=19",
        "IOSchedulingClass=idle",
        "LoadCredential=dedup.key:",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "--no-progress backup db",
    ] {
        assert!(service.contains(want), "missing {want}:\n{service}");
    }
    let timer = read(&units.join("vaultctl-backup-etc.timer"));
    for want in [
        "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 01:30:00 UTC",
        "Persistent=true",
        "RandomizedDelaySec=",
        "Unit=vaultctl-backup-etc.service",
        "WantedBy=timers.target",
    ] {
        assert!(timer.contains(want), "missing {want}:\n{timer}");
    }
    systemd_verify(&units);

    // Invalid schedules are configuration errors with a clear message.
    env.write_config("[[source]]\nname = \"db\"\nkind = \"command\"\ncommand = [\"echo\"]\nschedule = \"Mon..Fry 01:30\"\n");
    let out = env.run(&["schedule", "show"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("source 'db' has schedule = \"Mon..Fry 01:30\"")
            && err.contains("\"Fry\" is not a weekday")
            && err.contains("OnCalendar"),
        "{err}"
    );
}

/// `systemd-analyze verify` on the generated units, where it can run.
pub fn systemd_verify(dir: &std::path::Path) {
    let files: Vec<std::path::PathBuf> = walk(dir);
    match std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .output()
    {
        Err(e) => eprintln!(
            "SKIPPED: systemd-analyze verify ({e}); install systemd to check the generated units"
        ),
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success()
                && (err.contains("Failed to initialize manager")
                    || err.contains("No such file or directory") && err.contains("/run/systemd"))
            {
                eprintln!("SKIPPED: systemd-analyze verify cannot run in this sandbox: {err}");
                return;
            }
            assert!(
                out.status.success() && err.trim().is_empty(),
                "systemd-analyze verify failed:\n{err}"
            );
        }
    }
}
