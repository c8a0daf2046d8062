//! The jobs end to end on local-disk targets, without the binary: what a
//! job returns, what it leaves in the catalog, and what it raises.

use super::testkit::{files_in, files_under, Fixture};
use super::*;
use crate::config::VerifyMode;
use crate::error::exit_status;

/// Two targets, the second keeping only the newest backup.
fn two_targets() -> Fixture {
    Fixture::new(
        &["a", "b"],
        "[[source]]\nname = \"docs\"\nkind = \"files\"\npaths = [\"{root}/data\"]\n[target.retention]\nkeep_last = 1\n",
    )
}

fn restore_dir(
    f: &Fixture,
    backup: &str,
    target: Option<&str>,
    to: &str,
) -> Result<restore::Outcome> {
    restore::run(
        &f.job(),
        &restore::Request {
            backup: backup.into(),
            target: target.map(str::to_string),
            artifact: None,
            reason: Some("unit test".into()),
            destination: restore::Destination::Dir {
                path: f.path(to),
                force: false,
            },
        },
    )
}

#[test]
fn backup_verify_restore_prune_sync_and_rebuild_on_local_targets() {
    let f = two_targets();
    f.tree("data", &[("a.txt", "first\n"), ("sub/b.txt", "second\n")]);
    let first = f.backup("docs");
    f.tree("data", &[("a.txt", "changed\n")]);
    let second = f.backup("docs");
    let rows = f.catalog().list(&Default::default()).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.status == "completed" && r.targets == ["a", "b"]));

    // Verify reads every pack on both targets and records the runs.
    let v = verify::run(
        &f.config,
        None,
        VerifyMode::ReadData,
        &crate::progress::Silent,
    )
    .unwrap();
    assert!(v.ok && v.identity, "{:?}", v.targets);
    assert_eq!(v.targets.len(), 2);
    assert!(v
        .targets
        .iter()
        .all(|t| t.backups_checked == 2 && t.content_checked));

    // The first backup restores with its own contents.
    let out = restore_dir(&f, &first, Some("a"), "r1").unwrap();
    assert!(matches!(out, restore::Outcome::Files { ref id, .. } if *id == first));
    let got = files_under(&f.path("r1"));
    assert!(
        got.iter()
            .any(|(p, t)| p.ends_with("a.txt") && t == "first\n"),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|(p, t)| p.ends_with("sub/b.txt") && t == "second\n"),
        "{got:?}"
    );

    // Prune: target b keeps only the newest; a has no policy.
    let p = prune::run(&f.config, None, false, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(p.exit_status(), ExitStatus::Success);
    let removed: Vec<(&str, &[String])> = p
        .reports
        .iter()
        .map(|r| (r.target.as_str(), r.removed.as_slice()))
        .collect();
    assert_eq!(removed, [("a", &[][..]), ("b", &[first.clone()][..])]);
    let row = f
        .catalog()
        .list(&Default::default())
        .unwrap()
        .into_iter()
        .find(|r| r.id == first)
        .unwrap();
    assert_eq!(row.targets, ["a"], "the catalog forgot the pruned copy");
    // The pruned backup still restores from a; from b it is gone.
    restore_dir(&f, &first, Some("a"), "r2").unwrap();
    assert!(restore_dir(&f, &first, Some("b"), "r3").is_err());

    // Sync copies nothing b's retention would not keep.
    let s = sync::run(
        &f.config,
        &sync::Request {
            from: Some("a".into()),
            to: Some("b".into()),
            dry_run: false,
        },
    )
    .unwrap();
    assert_eq!(s.status(), ExitStatus::Success);
    assert!(s.pairs[0].manifests_copied.is_empty());
    assert_eq!(s.pairs[0].skipped_by_retention, 1);

    // A lost catalog comes back from the repository.
    std::fs::remove_file(&f.config.catalog).unwrap();
    let (repo, mut catalog) = open(&f.config, None).unwrap();
    let r = catalog::rebuild(&repo, &mut catalog, Some("a")).unwrap();
    assert_eq!((r.backups, r.identity), (2, true));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let ids: Vec<String> = catalog
        .list(&Default::default())
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert!(ids.contains(&first) && ids.contains(&second));
}

#[test]
fn a_damaged_pack_is_reported_with_the_backups_it_affects_and_raises_an_alert() {
    let f = two_targets();
    f.tree("data", &[("a.txt", "x".repeat(10_000).as_str())]);
    let id = f.backup("docs");
    // Flip a byte in the middle of every pack on target a.
    let packs = files_in(&f.path("a").join(crate::repo::format::PACKS_DIR));
    for p in &packs {
        let mut bytes = std::fs::read(p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(p, bytes).unwrap();
    }
    let damaged = packs.len();
    assert!(damaged > 0, "the fixture has packs on target a");
    let v = verify::run(
        &f.config,
        Some("a"),
        VerifyMode::ReadData,
        &crate::progress::Silent,
    )
    .unwrap();
    assert!(!v.ok);
    assert_eq!(v.targets[0].affected_backups, std::slice::from_ref(&id));
    let open: Vec<String> = crate::catalog::alerts::list(&f.catalog(), &Default::default())
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert!(!open.is_empty(), "verify raised no alert");
    // A restore from the damaged target fails and leaves nothing behind
    // that looks complete; the restore failure is an alert too.
    let e = restore_dir(&f, &id, Some("a"), "r").unwrap_err();
    assert_ne!(exit_status(&e), ExitStatus::Success);
    let kinds: Vec<String> = crate::catalog::alerts::list(&f.catalog(), &Default::default())
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert!(kinds.iter().any(|k| k.contains("restore")), "{kinds:?}");
    // Target b's copy is whole.
    restore_dir(&f, &id, Some("b"), "rb").unwrap();
}

#[test]
fn prune_reports_an_unavailable_target_as_a_warning() {
    let f = two_targets();
    f.tree("data", &[("a.txt", "1\n")]);
    f.backup("docs");
    std::fs::rename(f.path("b"), f.path("b-away")).unwrap();
    let p = prune::run(&f.config, None, true, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(p.unavailable.len(), 1, "{:?}", p.unavailable);
    assert_eq!(p.unavailable[0].0, "b");
    assert_eq!(p.exit_status(), ExitStatus::Warnings);
}
