//! Scheduled verification and DR drills: `[verify]` and `[source.drill]`
//! rendered as crontab lines and systemd units, the staleness of verifies
//! raised and resolved with the injected clock, metrics, and sampled
//! verifies rotating through every pack of a repository of many packs.
//! (Drill staleness against real PostgreSQL is in `dr`.)

use crate::ops::{systemd_verify, walk};
use crate::ops_util;

use ops_util::{parse_prometheus, read, stderr, stdout, OpsEnv};
use time::format_description::well_known::Rfc3339;

/// A fixed "now" for a test, `h` hours after a start in the near future.
struct Clock(time::OffsetDateTime);

impl Clock {
    fn new() -> Clock {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        Clock(now + time::Duration::hours(1))
    }

    fn at(&self, hours: i64) -> String {
        (self.0 + time::Duration::hours(hours))
            .format(&Rfc3339)
            .unwrap()
    }

    fn unix(&self, hours: i64) -> f64 {
        (self.0 + time::Duration::hours(hours)).unix_timestamp() as f64
    }
}

fn active_alerts(env: &OpsEnv, now: &str, kind: &str) -> Vec<serde_json::Value> {
    env.json_at(now, &["alerts"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .cloned()
        .collect()
}

#[test]
fn verify_and_drill_schedules_render_as_cron_lines_and_hardened_units() {
    let env = OpsEnv::new(
        "[[source]]\nname = \"db\"\nkind = \"postgres\"\nurl = \"postgresql://backup@127.0.0.1:5432/app\"\nschedule = \"daily\"\n\n\
         [source.drill]\nschedule = \"Sun *-*-* 04:00:00\"\nscratch_db = \"postgresql://drill@127.0.0.1:5432/vaultctl%5Fscratch\"\npassword_file = \"{dir}/drill.password\"\n\n\
         [[source]]\nname = \"etc\"\nkind = \"files\"\npaths = [\"/etc/hostname\"]\n\n\
         [verify]\nschedule = \"0 3 * * *\"\nmode = \"read-data\"\ntargets = [\"local\"]\n",
    );
    let cfg = std::fs::canonicalize(env.path("config.toml")).unwrap();
    let cfg = cfg.display();
    let dir = env.dir.path().display().to_string();
    let cron = env.ok(&[
        "schedule",
        "show",
        "--cron",
        "--binary",
        "/usr/bin/vaultctl",
    ]);
    assert!(
        cron.contains(&format!(
            "\n0 3 * * * /usr/bin/vaultctl --config {cfg} --no-progress verify --target local --read-data\n"
        )),
        "{cron}"
    );
    // cron makes a bare % a newline: escaped.
    assert!(
        cron.contains(&format!(
            "\n0 4 * * 0 /usr/bin/vaultctl --config {cfg} --no-progress dr drill --source db --scratch-db \"postgresql://drill@127.0.0.1:5432/vaultctl\\%5Fscratch\" --password-file {dir}/drill.password\n"
        )),
        "{cron}"
    );
    assert!(cron.contains("0 0 * * * /usr/bin/vaultctl"), "{cron}");

    let rows = env.json(&["schedule", "show"]);
    let row = |job: &str, key: &str, name: &str| -> serde_json::Value {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["job"] == job && r[key] == name)
            .unwrap_or_else(|| panic!("no {job} {name} in {rows}"))
            .clone()
    };
    let v = row("verify", "target", "local");
    assert_eq!(v["stale_after_secs"], 26 * 3600, "daily: 24h + 2h grace");
    assert_eq!(v["command"], "verify --target local --read-data");
    assert!(v["next_run"].as_str().unwrap().ends_with("T03:00:00.000Z"));
    let d = row("drill", "source", "db");
    assert_eq!(
        d["stale_after_secs"],
        (7 * 24 + 14) * 3600,
        "weekly: 7d + 14h"
    );
    assert_eq!(d["on_calendar"][0], "Sun *-*-* 04:00:00 UTC");
    assert_eq!(row("backup", "source", "db")["schedule"], "daily");
    let human = env.ok(&["schedule", "show"]);
    assert!(
        human.contains("verify local") && human.contains("drill db"),
        "{human}"
    );

    let units = env.path("units");
    env.ok(&["schedule", "install", "--systemd", units.to_str().unwrap()]);
    let names: Vec<String> = walk(&units)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "vaultctl-backup-db.service",
            "vaultctl-backup-db.timer",
            "vaultctl-drill-db.service",
            "vaultctl-drill-db.timer",
            // The one-shot runner (`backup --at`) is always installed.
            "vaultctl-oneshot.service",
            "vaultctl-oneshot.timer",
            "vaultctl-verify-local.service",
            "vaultctl-verify-local.timer",
        ]
    );
    let backup = read(&units.join("vaultctl-backup-db.service"));
    let hardening: Vec<&str> = backup
        .lines()
        .filter(|l| {
            l.starts_with("Protect")
                || l.starts_with("Restrict")
                || l.starts_with("ReadWritePaths")
                || l.starts_with("NoNewPrivileges")
                || l.starts_with("Nice")
                || l.starts_with("UMask")
        })
        .collect();
    assert!(hardening.len() >= 14, "{backup}");
    for (unit, want) in [
        (
            "vaultctl-verify-local.service",
            "--no-progress verify --target local --read-data",
        ),
        (
            "vaultctl-drill-db.service",
            "dr drill --source db --scratch-db \"postgresql://drill@127.0.0.1:5432/vaultctl%%5Fscratch\"",
        ),
    ] {
        let text = read(&units.join(unit));
        assert!(text.contains(want), "missing {want}:\n{text}");
        // The same hardening as the backup units.
        for line in &hardening {
            assert!(text.contains(line), "{unit} lacks {line}:\n{text}");
        }
        // The identity this host holds, as a credential.
        assert!(
            text.contains(&format!("LoadCredential=identity.txt:{dir}/identity.txt"))
                && text.contains("Environment=VAULTCTL_IDENTITY_FILE=%d/identity.txt"),
            "{text}"
        );
    }
    let timer = read(&units.join("vaultctl-drill-db.timer"));
    for want in [
        "OnCalendar=Sun *-*-* 04:00:00 UTC",
        "Persistent=true",
        "RandomizedDelaySec=",
        "Unit=vaultctl-drill-db.service",
    ] {
        assert!(timer.contains(want), "missing {want}:\n{timer}");
    }
    let timer = read(&units.join("vaultctl-verify-local.timer"));
    assert!(
        timer.contains("OnCalendar=*-*-* 03:00:00 UTC")
            && timer.contains("Unit=vaultctl-verify-local.service"),
        "{timer}"
    );
    systemd_verify(&units);

    // Mistakes are configuration errors that say what to write.
    for (extra, want) in [
        (
            "[[source]]\nname = \"etc\"\nkind = \"files\"\npaths = [\"/etc/hostname\"]\n[source.drill]\nschedule = \"weekly\"\n",
            "belongs to postgres sources only",
        ),
        ("[verify]\nschedule = \"daily\"\ntargets = [\"nope\"]\n", "'nope', which is not a [[target]]"),
        ("[verify]\nmode = \"sample\"\n", "no sample = PERCENT"),
        ("[verify]\nsample = 150\n", "not a percentage"),
        ("[verify]\nschedule = \"Mon..Fry 01:00\"\n", "[verify] has schedule"),
        (
            "[[source]]\nname = \"db\"\nkind = \"postgres\"\nurl = \"postgresql://backup@127.0.0.1:5432/app\"\n[source.drill]\nscratch_db = \"postgresql://u:secret@127.0.0.1/x\"\n",
            "password in its scratch_db",
        ),
    ] {
        env.write_config(extra);
        let out = env.run(&["schedule", "show"]);
        assert_eq!(out.status.code(), Some(2), "{extra}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{extra}: {}", stderr(&out));
        assert!(!stderr(&out).contains("secret"), "{}", stderr(&out));
    }
    // mode = "sample=5" is the short form of mode = "sample" + sample = 5.
    env.write_config("[verify]\nschedule = \"daily\"\nmode = \"sample=5\"\n");
    assert!(env
        .ok(&["schedule", "show", "--cron", "--binary", "/b"])
        .contains("verify --target local --sample 5\n"));
}

#[test]
fn verify_staleness_is_raised_escalated_and_resolved_with_the_injected_clock() {
    let env = OpsEnv::new(
        "metrics_textfile = \"{dir}/vaultctl.prom\"\n\n[[source]]\nname = \"db\"\nkind = \"command\"\ncommand = [\"echo\", \"dump\"]\n\n[verify]\nschedule = \"daily\"\nmode = \"sample\"\nsample = 50\n",
    );
    env.ok(&["backup", "db"]);
    let t = Clock::new();
    // Configured, never run: the clock starts at first sight.
    let out = env.run_at(&t.at(0), &["status", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("verify local never"),
        "{}",
        stdout(&out)
    );

    let v = env.json_at(&t.at(0), &["verify"]);
    assert_eq!(v["ok"], true, "{v}");
    let out = env.run_at(&t.at(3), &["status", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("verify local 3h ago"),
        "{}",
        stdout(&out)
    );
    let st = env.json_at(&t.at(3), &["status"]);
    let local = &st["verify"][0];
    assert_eq!(local["target"], "local");
    assert_eq!(local["configured"], true);
    assert_eq!(local["mode"], "sample 50%");
    assert_eq!(local["last_result"], "ok");
    assert_eq!(local["age_secs"], 3 * 3600);
    assert_eq!(local["stale"], false);
    assert!(
        local["last_success"]
            .as_str()
            .unwrap()
            .starts_with(&t.at(0)[..19]),
        "{local}"
    );

    // daily: stale after 26h → warning at 27h, in --check and as an alert.
    let out = env.run_at(&t.at(27), &["status", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("overdue: verify local")
            && stdout(&out).contains("verify local 27h ago"),
        "{}",
        stdout(&out)
    );
    let stale = active_alerts(&env, &t.at(27), "verify_stale");
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0]["target"], "local");
    assert_eq!(stale[0]["severity"], "warning");
    assert!(
        stale[0]["message"]
            .as_str()
            .unwrap()
            .contains("no successful verify of target 'local' within 27h"),
        "{}",
        stale[0]
    );
    let human = stdout(&env.run_at(&t.at(27), &["status"]));
    assert!(human.contains("STALE (27h without success)"), "{human}");
    // Beyond twice the threshold: critical, the same alert.
    let out = env.run_at(&t.at(53), &["status", "--check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let stale = active_alerts(&env, &t.at(53), "verify_stale");
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0]["severity"], "critical");
    let prom = parse_prometheus(&read(&env.path("vaultctl.prom")));
    let get = |samples: &[(String, f64)], name: &str| {
        samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    };
    assert_eq!(
        get(&prom, "vaultctl_verify_stale{target=\"local\"}"),
        Some(1.0)
    );
    assert_eq!(
        get(
            &prom,
            "vaultctl_verify_last_success_timestamp_seconds{target=\"local\"}"
        ),
        Some(t.unix(0))
    );

    // A clean verify resolves it at once (verify checks staleness after its run).
    env.json_at(&t.at(54), &["verify"]);
    assert!(active_alerts(&env, &t.at(54), "verify_stale").is_empty());
    let all = env.json_at(&t.at(54), &["alerts", "--status", "all"]);
    let resolved = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "verify_stale")
        .unwrap();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolved_by"], "vaultctl (clean verify)");
    let out = env.run_at(&t.at(54), &["status", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let prom = parse_prometheus(&read(&env.path("vaultctl.prom")));
    assert_eq!(
        get(
            &prom,
            "vaultctl_verify_last_success_timestamp_seconds{target=\"local\"}"
        ),
        Some(t.unix(54))
    );
    assert_eq!(
        get(&prom, "vaultctl_verify_stale{target=\"local\"}"),
        Some(0.0)
    );
    // Two 50 % samples of the same packs read all of them.
    assert_eq!(
        get(&prom, "vaultctl_verify_coverage_ratio{target=\"local\"}"),
        Some(1.0)
    );
}

#[test]
fn sampled_verifies_rotate_until_every_pack_was_read_within_the_window() {
    let env = OpsEnv::new(
        "[[source]]\nname = \"db\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"head -c 3000 /dev/urandom\"]\n\n[verify]\nschedule = \"daily\"\nmode = \"sample\"\nsample = 10\nwindow = \"10d\"\n",
    );
    // Many small packs: every backup of fresh random bytes seals its own.
    let started = std::time::Instant::now();
    for _ in 0..20 {
        env.ok(&["backup", "db"]);
    }
    let packs = walk(&env.path("repo/packs")).len() as u64;
    assert!(packs >= 20, "{packs} packs");
    let per_run = (packs as f64 * 0.10).ceil() as u64;
    let runs_needed = packs.div_ceil(per_run);
    let t = Clock::new();
    let coverage = |day: i64| -> serde_json::Value {
        env.json_at(&t.at(24 * day), &["status"])["verify"][0].clone()
    };
    for day in 1..=runs_needed as i64 {
        let v = env.json_at(&t.at(24 * day), &["verify"]);
        assert_eq!(v["targets"][0]["packs_checked"], per_run, "{v}");
        let c = coverage(day);
        assert_eq!(c["packs_known"], packs, "{c}");
        // Each run reads packs no earlier run read (a random sample would not).
        assert_eq!(
            c["packs_read_in_window"],
            (day as u64 * per_run).min(packs),
            "day {day}: {c}"
        );
        if (day as u64) < runs_needed {
            assert!(c["coverage"].as_f64().unwrap() < 1.0, "{c}");
        }
    }
    let c = coverage(runs_needed as i64);
    assert_eq!(c["coverage"], 1.0, "{c}");
    let human = stdout(&env.run_at(&t.at(24 * runs_needed as i64), &["status"]));
    assert!(
        human.contains(&format!("100% of {packs} packs read in 10d")),
        "{human}"
    );
    // The next run starts over with the packs read longest ago: still 100 %.
    env.json_at(&t.at(24 * (runs_needed as i64 + 1)), &["verify"]);
    assert_eq!(coverage(runs_needed as i64 + 1)["coverage"], 1.0);
    // Without verifies, reads age out of the window.
    let c = coverage(runs_needed as i64 + 12);
    assert_eq!(c["packs_read_in_window"], 0, "{c}");
    eprintln!(
        "measured: {packs} packs, {per_run} per 10% sample, 100% coverage after {runs_needed} runs; test body {:?}",
        started.elapsed()
    );
}
