//! Builds a synthetic repository in the real format (see
//! `vaultctl::repo::synth`) on one target of an initialised repository:
//!
//! ```text
//! cargo run --release --example synth_repo -- CONFIG TARGET BLOBS PACKS MANIFESTS SOURCES
//! ```
//! Used by `scripts/bench-scale.sh`.

use std::path::PathBuf;
use std::time::Instant;

use vaultctl::config::{self, Overrides};
use vaultctl::repo::synth::{self, Shape};
use vaultctl::repo::Repository;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 6 {
        anyhow::bail!("usage: synth_repo CONFIG TARGET BLOBS PACKS MANIFESTS SOURCES");
    }
    let n = |i: usize| -> anyhow::Result<u64> { Ok(args[i].parse()?) };
    let shape = Shape {
        blobs: n(2)?,
        packs: n(3)?,
        manifests: n(4)?,
        sources: n(5)?,
    };
    let config = config::load(&Overrides {
        config: Some(PathBuf::from(&args[0])),
        catalog: None,
        identity_file: None,
    })?;
    let repo = Repository::open(&config, Some(&args[1]))?;
    let t = Instant::now();
    let built = synth::build(&repo.stores[0], &repo.dedup, &repo.recipients, shape)?;
    println!(
        "synthetic repository: {} blobs, {} packs, {} index objects, {} manifests in {:.1}s",
        built.blobs,
        built.packs,
        built.index_objects,
        built.manifests,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
