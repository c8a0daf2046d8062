//! The restore wizard driven for real through a pseudo-terminal: all four
//! steps to a completed restore (with going back and a disabled option on
//! the way), a cancel at step 4 that changes nothing, and no prompting
//! without a terminal.

use crate::pg;
use crate::pty;

use pg::{fixture, Cluster, SourceDef, Vault, BACKUP_PASSWORD, SUPERUSER_PASSWORD};
use pty::{exit_code, send, DOWN, ENTER, ESC, UP};
use rexpect::session::PtySession;

fn vault(c: &Cluster) -> Vault {
    Vault::new(&[SourceDef {
        name: "db",
        url: c.url("backup", "app"),
        password: BACKUP_PASSWORD,
        bin_dir: c.bin.clone(),
        pg_dump: None,
    }])
}

fn wizard(v: &Vault) -> PtySession {
    pty::wizard(
        &v.config,
        v.dir.path(),
        &[("PGPASSWORD", SUPERUSER_PASSWORD)],
    )
}

fn db_exists(c: &Cluster, name: &str) -> bool {
    c.count(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    ) == 1
}

#[test]
fn wizard_walks_four_steps_with_back_and_disabled_pitr_to_a_completed_restore() {
    let c = fixture();
    let v = vault(&c);
    let id = v.backup(&["db"]);
    let target = c.url("postgres", "wizdb");
    let mut p = wizard(&v);

    // Step 1: search, pick.
    p.exp_string("Step 1 of 4").unwrap();
    send(&mut p, "db");
    p.exp_string(&id).unwrap();
    send(&mut p, ENTER);
    // Step 2: Esc goes back to step 1.
    p.exp_string("Step 2 of 4").unwrap();
    p.exp_string("unavailable: needs a physical base backup: kind postgres-physical")
        .unwrap();
    send(&mut p, ESC);
    p.exp_string("Step 1 of 4").unwrap();
    send(&mut p, ENTER);
    // Step 2: the disabled option is refused with its reason; then Full.
    p.exp_string("Step 2 of 4").unwrap();
    send(&mut p, DOWN);
    send(&mut p, DOWN);
    send(&mut p, ENTER);
    p.exp_string("Point-in-time is not available for this backup: needs a physical base backup")
        .unwrap();
    p.exp_string("Step 2 of 4").unwrap();
    send(&mut p, UP);
    send(&mut p, UP);
    send(&mut p, ENTER);
    // Step 3: target, then `<` back to the target, then reason.
    p.exp_string("Step 3 of 4").unwrap();
    p.exp_string("Target database URL").unwrap();
    send(&mut p, &format!("{target}{ENTER}"));
    p.exp_string("Reason for this restore").unwrap();
    send(&mut p, &format!("<{ENTER}"));
    p.exp_string("Target database URL").unwrap();
    send(&mut p, ENTER); // keeps the value typed before
    p.exp_string("Reason for this restore").unwrap();
    send(&mut p, &format!("wizard test restore{ENTER}"));
    // Step 4: the summary, the command line, typed confirmation.
    p.exp_string("Step 4 of 4").unwrap();
    p.exp_string("the database does not exist and is created")
        .unwrap();
    p.exp_string(&format!("vaultctl --config {} restore {id} --type full --target-db {target} --create --reason 'wizard test restore' --yes", v.config.display())).unwrap();
    p.exp_string("Type the database name \"wizdb\"").unwrap();
    send(&mut p, &format!("wizdb{ENTER}"));
    p.exp_string("restored backup").unwrap();
    p.exp_string("next time, without the wizard").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&mut p), 0);

    assert_eq!(c.digests("wizdb", None), c.digests("app", None));
    let log = v.json(&["restores"]);
    assert_eq!(log[0]["outcome"], "succeeded", "{log}");
    assert_eq!(log[0]["reason"], "wizard test restore");
    assert_eq!(log[0]["type"], "full");
}

#[test]
fn wizard_cancel_at_step_4_changes_nothing() {
    let c = fixture();
    let v = vault(&c);
    v.backup(&["db"]);
    let target = c.url("postgres", "untouched");
    let mut p = wizard(&v);
    p.exp_string("Step 1 of 4").unwrap();
    send(&mut p, ENTER);
    p.exp_string("Step 2 of 4").unwrap();
    send(&mut p, ENTER);
    p.exp_string("Target database URL").unwrap();
    send(&mut p, &format!("{target}{ENTER}"));
    p.exp_string("Reason for this restore").unwrap();
    send(&mut p, &format!("just looking{ENTER}"));
    p.exp_string("Step 4 of 4").unwrap();
    p.exp_string("Type the database name").unwrap();
    // Back to step 3 and forward again, then a wrong name cancels.
    send(&mut p, &format!("<{ENTER}"));
    p.exp_string("Step 3 of 4").unwrap();
    p.exp_string("Target database URL").unwrap();
    send(&mut p, ENTER);
    p.exp_string("Reason for this restore").unwrap();
    send(&mut p, ENTER);
    p.exp_string("Step 4 of 4").unwrap();
    p.exp_string("Type the database name \"untouched\"")
        .unwrap();
    send(&mut p, &format!("nope{ENTER}"));
    p.exp_string("cancelled; nothing was changed").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&mut p), 1);
    assert!(!db_exists(&c, "untouched"));
    let log = v.json(&["restores"]);
    assert_eq!(log.as_array().unwrap().len(), 0, "{log}");
}

#[test]
fn without_a_terminal_restore_never_prompts_and_lists_the_missing_flags() {
    let c = fixture();
    let v = vault(&c);
    let o = v.run(&["restore"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("BACKUP")
            && err.contains("--target-db")
            && err.contains("--to DIR")
            && err.contains("--stdout"),
        "{err}"
    );
    let o = v.run(&["restore", "db:latest"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("a destination") && !err.contains("BACKUP ("),
        "{err}"
    );
}
