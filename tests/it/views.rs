//! The operator's views through the real binary: `show`, `restores show`,
//! `list` paging and filters, verify's wording for orphan damage, and the
//! global options' help heading.

use crate::common;

use common::*;

/// A small files backup; returns its id.
fn files_backup(env: &Env, name: &str, extra: &[&str]) -> String {
    let dir = env.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), format!("{name} data\n")).unwrap();
    let mut a = vec!["files", dir.to_str().unwrap(), "--name", name];
    a.extend_from_slice(extra);
    env.backup_json(&a)["id"].as_str().unwrap().to_string()
}

#[test]
fn show_a_backup_and_its_restore() {
    let env = Env::local();
    let id = files_backup(&env, "docs", &["--tag", "t1", "--note", "before upgrade"]);
    let data = std::fs::read(env.path("docs/a.txt")).unwrap();

    // A restore, so the backup has one and `restores show` has a record.
    let out = env.path("out");
    env.run(&["restore", &id[..8], "--to", out.to_str().unwrap()])
        .ok();

    for spec in [id.as_str(), &id[..6], "docs:latest"] {
        let o = env.run(&["--json", "show", spec]);
        o.ok();
        let v = o.json();
        assert_eq!(v["id"], id.as_str(), "{spec}");
        assert_eq!(v["source"], "docs");
        assert_eq!(v["kind"], "files");
        assert_eq!(v["status"], "completed");
        assert!(!v["host"].as_str().unwrap().is_empty());
        assert!(v["finished_at"].as_str().unwrap() >= v["started_at"].as_str().unwrap());
        assert!(v["duration_ms"].is_u64());
        assert!(v["bytes"].as_u64().unwrap() > data.len() as u64);
        assert!(v["stored_bytes"].as_u64().unwrap() > 0);
        assert_eq!(str_array(&v["tags"]), ["t1"]);
        assert_eq!(v["note"], "before upgrade");
        assert_eq!(
            v["presence"],
            serde_json::json!([{"target": "local", "present": true, "configured": true}])
        );
        assert_eq!(v["body_readable"], true);
        assert!(v["needs_identity"].is_null());
        assert_eq!(v["engine"]["files"], 1);
        assert_eq!(v["engine"]["file_bytes"], data.len() as u64);
        let arts = v["artifacts"].as_array().unwrap();
        assert_eq!(arts.len(), 1);
        assert_eq!(arts[0]["name"], "files.tar");
        assert_eq!(arts[0]["format"], "tar");
        assert_eq!(arts[0]["size"], v["bytes"]);
        assert_eq!(arts[0]["blake3"].as_str().unwrap().len(), 64);
        assert!(v["verified_at"].is_null());
        let restores = v["restores"].as_array().unwrap();
        assert_eq!(restores.len(), 1);
        assert_eq!(restores[0]["backup_id"], id.as_str());
        assert_eq!(restores[0]["outcome"], "succeeded");
    }

    // A verify run on the target that holds it is in its checks.
    env.run(&["verify"]).ok();
    let v = env.run(&["--json", "show", &id]).json();
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0]["method"], "verify");
    assert_eq!(checks[0]["outcome"], "ok");
    assert_eq!(checks[0]["target"], "local");

    // The text view says the same things.
    let text = env.run(&["show", &id]).stdout_str();
    for want in [
        id.as_str(),
        "docs (files)",
        "before upgrade",
        "local present",
        "files.tar",
        arts_blake3(&v).as_str(),
        "restores from it",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }

    // `restores show`: the full record.
    let restore_id = v["restores"][0]["id"].as_i64().unwrap();
    let r = env
        .run(&["--json", "restores", "show", &restore_id.to_string()])
        .json();
    assert_eq!(r["id"], restore_id);
    assert_eq!(r["backup_id"], id.as_str());
    assert_eq!(r["source"], "docs");
    assert_eq!(r["target"], out.to_str().unwrap());
    assert_eq!(r["outcome"], "succeeded");
    assert!(!r["operator"].as_str().unwrap().is_empty());
    assert!(r["finished_at"].as_str().unwrap() >= r["started_at"].as_str().unwrap());
    let text = env
        .run(&["restores", "show", &restore_id.to_string()])
        .stdout_str();
    assert!(text.contains(&id) && text.contains("succeeded"), "{text}");
    env.run(&["restores", "show", "999"]).expect_code(2);
    env.run(&["show", "nosuch:latest"]).expect_code(2);

    // A catalog rebuilt without the identity: the sealed header's facts, and
    // a sentence on what needs the identity; with --identity, everything.
    let wo = env.write_config(
        "write-only.toml",
        &ConfigOpts {
            identity: false,
            s3: false,
            catalog: Some(env.path("wo-catalog.db")),
            ..Default::default()
        },
    );
    env.run_with(&wo, &["catalog", "rebuild"]).ok();
    let o = env.run_with(&wo, &["--json", "show", &id]);
    o.ok();
    let v = o.json();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(
        v["bytes"],
        env.run(&["--json", "show", &id]).json()["bytes"]
    );
    assert_eq!(str_array(&v["tags"]), ["t1"]);
    assert_eq!(v["body_readable"], false);
    assert!(v["note"].is_null());
    assert!(v["artifacts"].as_array().unwrap().is_empty());
    assert!(v["needs_identity"]
        .as_str()
        .unwrap()
        .contains("only the identity opens"));
    let text = env.run_with(&wo, &["show", &id]).stdout_str();
    assert!(text.contains("--identity FILE"), "{text}");
    let id_file = env.path("id.txt");
    let v = env
        .run_with(
            &wo,
            &[
                "--identity",
                id_file.to_str().unwrap(),
                "--json",
                "show",
                &id,
            ],
        )
        .json();
    assert_eq!(v["body_readable"], true);
    assert_eq!(v["note"], "before upgrade");
    assert_eq!(v["artifacts"][0]["name"], "files.tar");
}

fn arts_blake3(v: &serde_json::Value) -> String {
    v["artifacts"][0]["blake3"].as_str().unwrap().to_string()
}

#[test]
fn list_pages_and_filters() {
    let env = Env::local();
    let mut ids = Vec::new();
    for i in 0..27 {
        let name = if i % 2 == 0 { "even" } else { "odd" };
        ids.push(files_backup(&env, name, &[]));
    }
    // --json: unpaged unless --limit.
    assert_eq!(env.list().len(), 27);
    assert_eq!(env.list_with(&env.config, &["--limit", "5"]).len(), 5);
    let p2 = env.list_with(&env.config, &["--limit", "5", "--page", "2"]);
    let all = env.list();
    assert_eq!(p2, all[5..10].to_vec());
    assert_eq!(env.list_with(&env.config, &["--page", "2"]).len(), 27);
    // Filters.
    assert_eq!(env.list_with(&env.config, &["--source", "odd"]).len(), 13);
    assert_eq!(env.list_with(&env.config, &["--kind", "files"]).len(), 27);
    assert!(env
        .list_with(&env.config, &["--kind", "postgres-physical"])
        .is_empty());
    env.run(&["list", "--kind", "nosuch"]).expect_code(2);
    // Files backups hold no tenant's rows.
    assert!(env.list_with(&env.config, &["--tenant", "acme"]).is_empty());
    // Text pages of 25 with --page (on a terminal without it), and a footer.
    let p1 = env.run(&["list", "--page", "1"]).stdout_str();
    assert!(p1.contains("page 1 of 2 — `--page 2`"), "{p1}");
    assert!(p1.contains(&ids[26]) && !p1.contains(&ids[1]), "{p1}");
    let p2 = env.run(&["list", "--page", "2"]).stdout_str();
    assert!(
        p2.contains("page 2 of 2") && !p2.contains("--page 3"),
        "{p2}"
    );
    assert!(p2.contains(&ids[0]) && p2.contains(&ids[1]) && !p2.contains(&ids[2]));
    // Piped without --page: every row, no footer.
    let all_text = env.run(&["list"]).stdout_str();
    assert!(ids.iter().all(|id| all_text.contains(id)));
    assert!(!all_text.contains("page 1 of"));
    let past = env.run(&["list", "--page", "3"]).stdout_str();
    assert!(past.contains("there are 2 pages"), "{past}");
}

#[test]
fn list_pages_on_a_terminal() {
    let env = Env::local();
    for _ in 0..26 {
        files_backup(&env, "t", &[]);
    }
    let mut cmd = env.command();
    cmd.arg("list").env("NO_COLOR", "1").env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).expect("spawn in a pty");
    // rexpect reads bytes as Latin-1: match around the em dash.
    p.exp_string("page 1 of 2 ")
        .expect("a page footer on a terminal");
    p.exp_string(" `--page 2`").expect("the next page's flag");
    assert_eq!(crate::pty::exit_code(&mut p), 0);
}

#[test]
fn verify_calls_orphan_damage_a_warning() {
    let env = Env::local();
    let id = files_backup(&env, "docs", &[]);
    // A damaged pack no manifest references (what an interrupted upload leaves).
    let name = format!("ab{}", "0".repeat(62));
    let dir = env.local_repo().join("packs/ab");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&name), pseudo_random(7, 5000)).unwrap();
    let o = env.run(&["--json", "verify", "--read-data"]);
    o.expect_code(3);
    let v = o.json();
    assert_eq!(v["ok"], true);
    let t = &v["targets"][0];
    assert!(t["problems"].as_array().unwrap().is_empty());
    assert!(t["affected_backups"].as_array().unwrap().is_empty());
    assert_eq!(t["orphans"].as_array().unwrap().len(), 1);
    let msg = t["orphans"][0]["message"].as_str().unwrap();
    assert!(msg.contains(&name) && msg.contains("no backup references it"));
    assert!(msg.contains("`vaultctl prune` deletes it"), "{msg}");
    let text = env.run(&["verify", "--read-data"]);
    text.expect_code(3);
    assert!(
        text.stdout_str().contains("warning: pack"),
        "{}",
        text.stdout_str()
    );
    // No critical alert for damage nothing depends on.
    let alerts = env.run(&["--json", "alerts"]).json();
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] != "verify_failed"),
        "{alerts}"
    );
    // Prune removes it; verify is clean again.
    env.run(&["prune"]).ok();
    env.run(&["verify", "--read-data"]).ok();
    // Damage to a pack the backup uses names it and exits 1.
    let pack = pack_files(&env.local_repo())
        .into_iter()
        .next()
        .expect("a pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&pack, bytes).unwrap();
    let o = env.run(&["--json", "verify", "--read-data"]);
    o.expect_code(1);
    assert_eq!(str_array(&o.json()["targets"][0]["affected_backups"]), [id]);
}

#[test]
fn global_options_come_after_the_commands_own() {
    let env = Env::local();
    for cmd in [
        &["list", "--help"][..],
        &["backup", "--help"],
        &["show", "--help"],
    ] {
        let help = env.run_raw(cmd).stdout_str();
        let own = help.find("\nOptions:").expect("Options heading");
        let global = help
            .find("\nGlobal options:")
            .expect("Global options heading");
        assert!(own < global, "{help}");
        let after = &help[global..];
        for flag in [
            "--config <FILE>",
            "--json ",
            "--identity <FILE>",
            "--catalog <FILE>",
        ] {
            assert!(
                after.contains(flag) && !help[..global].contains(flag),
                "{flag}: {help}"
            );
        }
    }
}

/// `vaultctl` at an injected time (`VAULTCTL_NOW`).
fn at(env: &Env, now: &str, args: &[&str]) -> Out {
    env.command()
        .env("VAULTCTL_NOW", now)
        .args(args)
        .output()
        .expect("run vaultctl")
        .into()
}

#[test]
fn one_shot_backups_run_when_due_cancel_and_miss() {
    let env = Env::local();
    let config = env.write_config(
        "config.toml",
        &ConfigOpts {
            s3: false,
            extra:
                "[[source]]\nname = \"app\"\nkind = \"command\"\ncommand = [\"echo\", \"hello\"]\n"
                    .into(),
            ..Default::default()
        },
    );
    assert_eq!(config, env.config);
    let t0 = "2026-12-01T01:00:00Z";
    let o = at(
        &env,
        t0,
        &[
            "--json",
            "backup",
            "app",
            "--at",
            "2026-12-01 02:00",
            "--note",
            "before upgrade",
            "--tag",
            "pre",
        ],
    );
    o.ok();
    let first = o.json();
    assert_eq!(first["status"], "pending");
    assert_eq!(first["due_at"], "2026-12-01T02:00:00.000Z");
    assert_eq!(str_array(&first["sources"]), ["app"]);
    assert_eq!(first["note"], "before upgrade");
    let second = at(&env, t0, &["--json", "backup", "app", "--at", "2h"]).json();
    assert_eq!(second["due_at"], "2026-12-01T03:00:00.000Z");
    // In the past, or an unknown source: refused.
    at(&env, t0, &["backup", "app", "--at", "2026-11-30T00:00:00Z"]).expect_code(2);
    at(&env, t0, &["backup", "nosuch", "--at", "1h"]).expect_code(2);

    let pending = at(&env, t0, &["--json", "schedule", "show", "--one-shots"]).json();
    assert_eq!(pending.as_array().unwrap().len(), 2);
    let text = at(&env, t0, &["schedule", "show"]).stdout_str();
    assert!(
        text.contains("pending one-shot backups") && text.contains("2026-12-01T02:00:00.000Z"),
        "{text}"
    );

    // Cancel the second; cancelling it again is refused.
    let id2 = second["id"].as_i64().unwrap().to_string();
    let c = at(&env, t0, &["--json", "schedule", "cancel", &id2]).json();
    assert_eq!(c["status"], "cancelled");
    at(&env, t0, &["schedule", "cancel", &id2]).expect_code(2);

    // Not due yet: nothing runs.
    at(&env, "2026-12-01T01:59:00Z", &["schedule", "run-due"]).ok();
    assert!(env.list().is_empty());
    // Due: it runs once, with its note and tag.
    at(&env, "2026-12-01T02:00:30Z", &["schedule", "run-due"]).ok();
    at(&env, "2026-12-01T02:01:30Z", &["schedule", "run-due"]).ok();
    let list = env.list();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["source"], "app");
    assert_eq!(list[0]["note"], "before upgrade");
    assert_eq!(str_array(&list[0]["tags"]), ["pre"]);
    let pending = at(
        &env,
        "2026-12-01T02:01:30Z",
        &["--json", "schedule", "show", "--one-shots"],
    )
    .json();
    assert!(pending.as_array().unwrap().is_empty(), "{pending}");

    // One that could not run when due (no run-due for hours): missed, not
    // run late, and an alert.
    at(&env, t0, &["backup", "app", "--at", "2026-12-01T04:00:00Z"]).ok();
    at(&env, "2026-12-01T06:00:00Z", &["schedule", "run-due"]).expect_code(3);
    assert_eq!(env.list().len(), 1);
    let alerts = at(&env, "2026-12-01T06:00:00Z", &["--json", "alerts"]).json();
    let missed: Vec<_> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "one_shot_missed")
        .collect();
    assert_eq!(missed.len(), 1, "{alerts}");
    assert_eq!(missed[0]["source"], "app");
    assert!(missed[0]["message"]
        .as_str()
        .unwrap()
        .contains("was due at 2026-12-01T04:00:00.000Z"));
}

#[test]
fn status_draws_a_size_trend_per_source() {
    let env = Env::local();
    let dir = env.path("docs");
    std::fs::create_dir_all(&dir).unwrap();
    for len in [1_000usize, 40_000, 20_000] {
        std::fs::write(dir.join("a.bin"), pseudo_random(len as u64, len)).unwrap();
        env.backup_json(&["files", dir.to_str().unwrap(), "--name", "docs"]);
    }
    let trend = |no_color: bool| -> String {
        let mut c = env.command();
        c.arg("status");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let out: Out = c.output().unwrap().into();
        out.ok();
        let text = out.stdout_str();
        text.lines()
            .find(|l| l.starts_with("trend docs"))
            .unwrap_or_else(|| panic!("no trend line:\n{text}"))
            .to_string()
    };
    let line = trend(false);
    let spark: String = line["trend docs".len()..]
        .trim_start()
        .chars()
        .take(3)
        .collect();
    assert_eq!(spark.chars().next(), Some('▁'), "{line}");
    assert_eq!(spark.chars().nth(1), Some('█'), "{line}");
    assert!(line.contains("(3 backups)"), "{line}");
    let line = trend(true);
    let spark: String = line["trend docs".len()..]
        .trim_start()
        .chars()
        .take(3)
        .collect();
    assert!(spark.starts_with("_#"), "{line}");
    assert!(line.is_ascii(), "{line}");
}
