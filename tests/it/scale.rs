//! A synthetic repository of 200,000 blobs (the real format, built through
//! `vaultctl::repo::synth`): catalog rebuild, verify, prune, sync and a
//! second rebuild on it, with their results checked (not timed; timing is
//! `scripts/bench-scale.sh`'s job).

use crate::common::*;

use std::path::Path;

use vaultctl::config::{self, Overrides};
use vaultctl::repo::synth::{self, Shape};
use vaultctl::repo::Repository;

const BLOBS: u64 = 200_000;
const PACKS: u64 = 20;
const MANIFESTS: u64 = 200;
const SOURCES: u64 = 10;

fn json(env: &Env, config: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = env.run_with(config, &a);
    out.ok();
    out.json()
}

#[test]
fn synthetic_200k_blob_repository_prune_verify_sync_rebuild() {
    let env = Env::local_uninit();
    let a = env.path("a");
    let b = env.path("b");
    let config = env.write_config(
        "scale.toml",
        &ConfigOpts {
            s3: false,
            local: false,
            extra: format!(
                "[[target]]\nname = \"a\"\nurl = \"file://{}\"\n[target.retention]\nkeep_last = {}\n\
                 [[target]]\nname = \"b\"\nurl = \"file://{}\"\n",
                a.display(),
                MANIFESTS / SOURCES / 2,
                b.display()
            ),
            ..Default::default()
        },
    );
    env.run_with(&config, &["init"]).ok();
    let loaded = config::load(&Overrides {
        config: Some(config.clone()),
        catalog: None,
        identity_file: None,
    })
    .unwrap();
    let repo = Repository::open(&loaded, Some("a")).unwrap();
    let built = synth::build(
        &repo.stores[0],
        &repo.dedup,
        &repo.recipients,
        Shape {
            blobs: BLOBS,
            packs: PACKS,
            manifests: MANIFESTS,
            sources: SOURCES,
        },
    )
    .unwrap();
    assert_eq!(built.packs, PACKS);
    assert_eq!(pack_files(&a).len(), PACKS as usize);

    // Rebuild: every manifest and index object is imported.
    let r = json(&env, &config, &["catalog", "rebuild", "--target", "a"]);
    assert_eq!(r["backups"], MANIFESTS, "{r}");
    assert_eq!(r["index_objects"], PACKS, "{r}");
    assert_eq!(r["problems"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(env.list_with(&config, &[]).len(), MANIFESTS as usize);

    // Verify, structure and every pack's data with the identity (blob ids,
    // whole-stream hashes of every backup).
    let v = json(&env, &config, &["verify", "--target", "a", "--read-data"]);
    assert_eq!(v["ok"], true, "{v}");
    let t = &v["targets"][0];
    assert_eq!(t["backups_checked"], MANIFESTS, "{v}");
    assert_eq!(t["packs_checked"], PACKS, "{v}");
    assert_eq!(t["content_checked"], true, "{v}");

    // Prune: the ten older nights of every source go. Backup m references
    // its own run of 1,000 blobs and its source's previous night's; a pack
    // holds ten runs. The kept backups (100..199) need runs 90..199, i.e.
    // packs 9..19: packs 0..8 are garbage, with their index objects.
    let p = json(&env, &config, &["prune", "--target", "a"]);
    let t = &p["targets"][0];
    let removed: Vec<String> = str_array(&t["removed"]);
    let expected: std::collections::BTreeSet<&String> = built.backup_ids
        [..(MANIFESTS / 2) as usize]
        .iter()
        .collect();
    assert_eq!(
        removed.iter().collect::<std::collections::BTreeSet<_>>(),
        expected,
        "{p}"
    );
    let gc = &t["gc"];
    assert_eq!(gc["packs_total"], PACKS, "{p}");
    assert_eq!(gc["packs_deleted"], 9, "{p}");
    assert_eq!(gc["packs_referenced"], 11, "{p}");
    assert_eq!(gc["indexes_deleted"], 9, "{p}");
    assert_eq!(gc["indexes_rewritten"], 0, "{p}");
    assert_eq!(t["problems"].as_array().unwrap().len(), 0, "{p}");
    assert_eq!(pack_files(&a).len(), 11);
    assert_eq!(snapshots(&a).len(), (MANIFESTS / 2) as usize);
    let v = json(&env, &config, &["verify", "--target", "a", "--read-data"]);
    assert_eq!(v["ok"], true, "after prune: {v}");
    assert_eq!(v["targets"][0]["backups_checked"], MANIFESTS / 2, "{v}");

    // Sync to the empty target: the kept backups, their packs and indexes.
    let s = json(&env, &config, &["sync", "--from", "a", "--to", "b"]);
    let pair = &s["pairs"][0];
    assert_eq!(
        pair["manifests_copied"].as_array().unwrap().len() as u64,
        MANIFESTS / 2,
        "{s}"
    );
    assert_eq!(pair["packs_copied"], 11, "{s}");
    assert_eq!(pair["indexes_copied"], 11, "{s}");
    assert_eq!(pair["problems"].as_array().unwrap().len(), 0, "{s}");
    let v = json(&env, &config, &["verify", "--target", "b", "--read-data"]);
    assert_eq!(v["ok"], true, "target b after sync: {v}");
    assert_eq!(v["targets"][0]["backups_checked"], MANIFESTS / 2, "{v}");

    // A fresh catalog rebuilt from the copy: the kept backups only.
    std::fs::remove_file(env.path("catalog.db")).unwrap();
    let r = json(&env, &config, &["catalog", "rebuild", "--target", "b"]);
    assert_eq!(r["backups"], MANIFESTS / 2, "{r}");
    assert_eq!(r["problems"].as_array().unwrap().len(), 0, "{r}");
    let listed = env.list_with(&config, &[]);
    assert_eq!(listed.len() as u64, MANIFESTS / 2);
    let kept: std::collections::BTreeSet<&String> = built.backup_ids[(MANIFESTS / 2) as usize..]
        .iter()
        .collect();
    for row in &listed {
        assert!(
            kept.contains(&row["id"].as_str().unwrap().to_string()),
            "{row}"
        );
    }
}
