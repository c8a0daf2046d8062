use time::macros::datetime;

use super::*;
use crate::jobs::offers::offers;
use crate::jobs::testkit::Fixture;

/// A files source with a backup, a physical cluster and a postgres source
/// with [source.tenants] (nothing listens on port 1).
fn fixture() -> Fixture {
    let f = Fixture::new(
        &["local"],
        "[[source]]\nname = \"docs\"\nkind = \"files\"\npaths = [\"{root}/data\"]\n\
         [[source]]\nname = \"cluster\"\nkind = \"postgres-physical\"\nurl = \"postgresql://postgres@127.0.0.1:1/postgres\"\n\
         [[source]]\nname = \"app\"\nkind = \"postgres\"\nurl = \"postgresql://postgres@127.0.0.1:1/app\"\n\
         [source.tenants]\ntable = \"tenants\"\nkey = \"id\"\ncolumn = \"tenant_id\"\n",
    );
    f.tree("data", &[("a.txt", "alpha")]);
    f
}

fn row(source: &str, kind: &str) -> BackupRow {
    BackupRow {
        id: "20261130-0001".into(),
        source: source.into(),
        kind: kind.into(),
        status: "completed".into(),
        host: "h".into(),
        started_at: "2026-11-30T10:00:00Z".into(),
        finished_at: None,
        duration_ms: None,
        bytes: 2048,
        stored_bytes: 0,
        throughput_mb_s: None,
        tags: Vec::new(),
        note: None,
        error: None,
        targets: Vec::new(),
    }
}

fn choice(kind: Kind, row: BackupRow) -> Choice {
    Choice {
        backup: Some(row),
        kind: Some(kind),
        reason: "why".into(),
        ..Default::default()
    }
}

fn ready() -> TenantPitr {
    TenantPitr::Ready {
        physical: "cluster".into(),
        tenants: "app".into(),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn offers_the_reachable_completed_backups_with_their_step_1_line() {
    let f = fixture();
    let id = f.backup("docs");
    let (repo, catalog) = crate::jobs::open(&f.config, None).unwrap();
    let found = backups(&catalog, &repo).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    let line = backup_line(&catalog, &found[0]);
    assert!(line.starts_with(&format!("{id}  docs  files  ")), "{line}");
    assert!(line.ends_with("tenants: -  not verified"), "{line}");

    let empty = Fixture::new(&["local"], "");
    let (repo, catalog) = crate::jobs::open(&empty.config, None).unwrap();
    let err = backups(&catalog, &repo).unwrap_err();
    assert!(err.to_string().contains("no completed backup"), "{err:#}");
}

#[test]
fn tenant_point_in_time_is_offered_from_a_physical_backup_when_tenants_are_configured() {
    let f = fixture();
    let catalog = f.catalog();
    let physical = row("cluster", "postgres-physical");
    assert_eq!(tenant_pitr(&f.config, &catalog, &physical), ready());
    let kinds: Vec<(Kind, bool)> = offers(&physical, None, &[], &ready())
        .iter()
        .map(|o| (o.kind, o.unavailable.is_none()))
        .collect();
    assert_eq!(
        kinds,
        [
            (Kind::Full, false),
            (Kind::Merge, false),
            (Kind::Pitr, true),
            (Kind::TenantPitr, true)
        ]
    );
    // A postgres backup: only once a physical source has a base backup.
    let logical = row("app", "postgres");
    assert_eq!(
        tenant_pitr(&f.config, &catalog, &logical),
        TenantPitr::NotApplicable
    );
    assert_eq!(
        offers(&logical, None, &[], &TenantPitr::NotApplicable).len(),
        3
    );
    // Files never.
    assert_eq!(
        tenant_pitr(&f.config, &catalog, &row("docs", "files")),
        TenantPitr::NotApplicable
    );
    // Without [source.tenants] it says why.
    let bare = Fixture::new(
        &["local"],
        "[[source]]\nname = \"cluster\"\nkind = \"postgres-physical\"\nurl = \"postgresql://postgres@127.0.0.1:1/postgres\"\n",
    );
    match tenant_pitr(&bare.config, &bare.catalog(), &physical) {
        TenantPitr::Unavailable(why) => assert!(why.contains("[source.tenants]"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_type_asks_its_fields_then_the_reason() {
    use Field::*;
    assert_eq!(fields(Kind::Full, false), [Target, Reason]);
    assert_eq!(fields(Kind::Merge, true), [Target, Tenants, Reason]);
    assert_eq!(fields(Kind::Pitr, false), [Pgdata, Time, Port, Reason]);
    assert_eq!(
        fields(Kind::Pitr, true),
        [Pgdata, Owner, Time, Port, Reason]
    );
    assert_eq!(
        fields(Kind::TenantPitr, true),
        [Tenants, Time, Mode, Target, Owner, Reason]
    );
    assert_eq!(fields(Kind::Directory, false), [Dir, Reason]);
}

#[test]
fn answers_are_checked_before_they_are_kept() {
    let mut c = choice(Kind::Pitr, row("cluster", "postgres-physical"));
    assert!(c
        .set(Field::Port, "0".into())
        .unwrap_err()
        .contains("not a port"));
    assert!(c.set(Field::Port, "x".into()).is_err());
    c.set(Field::Port, "5433".into()).unwrap();
    assert_eq!(c.port, "5433");
    assert!(c.set(Field::Target, "not a url".into()).is_err());
    assert!(c.target_db.is_empty());
    c.set(Field::Target, "postgresql://u@h:5432/db".into())
        .unwrap();
    c.set(Field::Tenants, " a, ,b ".into()).unwrap();
    assert_eq!(c.tenants, ["a", "b"]);
    // A data directory must be empty or absent.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), "").unwrap();
    let full = dir.path().display().to_string();
    assert!(c.set(Field::Pgdata, full).is_err());
    let fresh = dir.path().join("new").display().to_string();
    c.set(Field::Pgdata, fresh.clone()).unwrap();
    assert_eq!(c.dir, fresh);
    // A tenant restore needs a tenant.
    let mut t = choice(Kind::TenantPitr, row("cluster", "postgres-physical"));
    let known = strings(&["acme", "globex"]);
    assert!(t.pick_tenants(&known, &[]).is_err());
    t.pick_tenants(&known, &[1]).unwrap();
    assert_eq!(t.tenants, ["globex"]);
    assert!(t.required(Field::Time) && t.required(Field::Tenants));
    assert!(!c.required(Field::Time) && !c.required(Field::Port));
}

#[test]
fn a_time_outside_what_base_backups_and_wal_cover_is_refused_with_the_range() {
    let mut c = choice(Kind::TenantPitr, row("cluster", "postgres-physical"));
    c.reach = Reach {
        from: Some(datetime!(2026-11-30 10:00 UTC)),
        to: Some(datetime!(2026-11-30 12:00 UTC)),
    };
    assert_eq!(
        c.coverage(),
        "Base backups and archived WAL cover 2026-11-30 10:00:00.000000+00 to 2026-11-30 12:00:00.000000+00."
    );
    let early = c
        .set(Field::Time, "2026-11-30T09:00:00Z".into())
        .unwrap_err();
    assert!(
        early.contains("before the base backup became consistent (2026-11-30 10:00:00.000000+00)"),
        "{early}"
    );
    let late = c
        .set(Field::Time, "2026-11-30T18:00:00Z".into())
        .unwrap_err();
    assert!(late.contains("after the newest archived WAL"), "{late}");
    assert!(c.set(Field::Time, "yesterday".into()).is_err());
    assert!(c.to_time.is_empty());
    c.set(Field::Time, "2026-11-30T11:00:00Z".into()).unwrap();
    assert_eq!(c.to_time, "2026-11-30T11:00:00Z");
    // A point-in-time restore may leave it empty: the end of the archive.
    let mut p = choice(Kind::Pitr, row("cluster", "postgres-physical"));
    p.to_time = "2026-11-30T11:00:00Z".into();
    p.set(Field::Time, String::new()).unwrap();
    assert!(p.to_time.is_empty());
}

#[test]
fn the_choice_runs_as_the_flag_form() {
    let mut c = choice(Kind::Full, row("app", "postgres"));
    c.target_db = "postgresql://u@h/new db".into();
    assert_eq!(
        c.argv(None),
        strings(&[
            "restore",
            "20261130-0001",
            "--type",
            "full",
            "--target-db",
            "postgresql://u@h/new db",
            "--create",
            "--reason",
            "why",
            "--yes"
        ])
    );
    assert_eq!(
        command_line(Some(Path::new("/etc/v.toml")), &c.argv(Some("s3"))),
        "vaultctl --config /etc/v.toml restore 20261130-0001 --type full --target-db 'postgresql://u@h/new db' --create --target s3 --reason why --yes"
    );
}

#[test]
fn merge_directory_and_point_in_time_choices_run_as_their_flags() {
    let mut c = choice(Kind::Merge, row("app", "postgres"));
    c.target_db = "postgresql://u@h/new db".into();
    c.tenants = strings(&["a", "b"]);
    assert_eq!(
        c.argv(None)[2..9],
        strings(&[
            "--type",
            "merge",
            "--target-db",
            "postgresql://u@h/new db",
            "--tenant",
            "a",
            "--tenant"
        ])
    );
    c.kind = Some(Kind::Directory);
    c.dir = "/r".into();
    assert_eq!(
        c.argv(None),
        strings(&[
            "restore",
            "20261130-0001",
            "--to",
            "/r",
            "--reason",
            "why",
            "--yes"
        ])
    );
    let mut p = choice(Kind::Pitr, row("cluster", "postgres-physical"));
    p.dir = "/d".into();
    assert_eq!(
        p.argv(None)[2..7],
        strings(&["--type", "pitr", "--pgdata", "/d", "--to-latest"])
    );
    p.to_time = "2026-11-30T11:00:00Z".into();
    p.owner = "postgres".into();
    p.port = "5433".into();
    assert_eq!(
        p.argv(None)[6..13],
        strings(&[
            "--to-time",
            "2026-11-30T11:00:00Z",
            "--owner",
            "postgres",
            "--start",
            "--set",
            "port=5433"
        ])
    );
}

#[test]
fn a_tenant_choice_runs_as_restore_type_pitr_with_tenants() {
    let mut t = choice(Kind::TenantPitr, row("cluster", "postgres-physical"));
    t.tenant_pitr = ready();
    t.tenants = strings(&["acme"]);
    t.to_time = "2026-11-30T11:00:00Z".into();
    t.target_db = "postgresql://u@h/app".into();
    t.mode = Some(Action::Replace);
    assert_eq!(
        t.argv(None),
        strings(&[
            "restore",
            "--type",
            "pitr",
            "--source",
            "cluster",
            "--tenant",
            "acme",
            "--to-time",
            "2026-11-30T11:00:00Z",
            "--target-db",
            "postgresql://u@h/app",
            "--tenant-source",
            "app",
            "--mode",
            "replace",
            "--reason",
            "why",
            "--yes"
        ])
    );
    t.mode = Some(Action::Diff);
    t.owner = "postgres".into();
    assert_eq!(
        t.argv(None)[11..16],
        strings(&["--tenant-source", "app", "--owner", "postgres", "--dry-run"])
    );
    assert!(!t.argv(None).contains(&"--mode".to_string()));
}

#[test]
fn step_4_says_what_is_dropped_and_kept_and_what_to_type() {
    let mut d = choice(Kind::Directory, row("docs", "files"));
    d.dir = "/r".into();
    let s = d.summary().unwrap();
    assert_eq!((s.what, s.name.as_str()), ("directory", "/r"));
    assert_eq!(
        s.rows[0].1,
        "20261130-0001 (docs, 2.0 kB, taken 2026-11-30T10:00:00Z)"
    );
    assert_eq!(
        s.rows.last().unwrap(),
        &("reason".to_string(), "why".to_string())
    );

    let mut full = choice(Kind::Full, row("app", "postgres"));
    full.target_db = "postgresql://u@127.0.0.1:1/newdb".into();
    let s = full.summary().unwrap();
    assert_eq!((s.what, s.name.as_str()), ("database name", "newdb"));
    assert!(s
        .rows
        .iter()
        .any(|(k, v)| k == "dropped" && v.contains("could not be checked")));

    let mut t = choice(Kind::TenantPitr, row("cluster", "postgres-physical"));
    t.tenant_pitr = ready();
    t.tenants = strings(&["acme", "globex"]);
    t.to_time = "2026-11-30T11:00:00Z".into();
    t.target_db = "postgresql://u@h/app".into();
    t.mode = Some(Action::Replace);
    let s = t.summary().unwrap();
    assert_eq!(s.name, "app");
    let get = |k: &str| {
        s.rows
            .iter()
            .find(|(l, _)| l == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("tenants"), "acme, globex");
    assert_eq!(get("mode"), "replace");
    assert!(get("dropped").starts_with("the tenants' rows as they are now"));
    assert_eq!(get("kept"), "every other tenant's rows");
}

#[test]
fn the_target_suggested_is_a_new_database_or_for_tenants_the_live_one() {
    let f = fixture();
    let full = choice(Kind::Full, row("app", "postgres"));
    assert_eq!(
        full.initial(Field::Target, &f.config),
        "postgresql://postgres@127.0.0.1:1/app_restored"
    );
    let mut t = choice(Kind::TenantPitr, row("cluster", "postgres-physical"));
    t.tenant_pitr = ready();
    assert_eq!(
        t.initial(Field::Target, &f.config),
        "postgresql://postgres@127.0.0.1:1/app"
    );
    // The live tenants table cannot be read here: the tenants are typed.
    assert!(t.known_tenants(&f.config, &[]).is_empty());
}
