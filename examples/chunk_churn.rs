//! What a "next night" costs under given chunker parameters, without a
//! repository: chunks OLD and NEW with the real chunker (a fixed seed),
//! compresses every chunk as a backup would, and prints the blob count,
//! the first backup's stored bytes and the bytes of NEW's chunks that OLD
//! lacks (the next night's new bytes before pack and index overhead).
//!
//! ```text
//! cargo run --release --example chunk_churn -- OLD NEW MIN_KIB AVG_KIB MAX_KIB [LEVEL|S:H:C:M]
//! ```
//! Used to choose the default chunker parameters (README, Benchmarks).

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;

use vaultctl::repo::chunker::{Chunker, ChunkerParams};
use vaultctl::repo::pack::compress;

struct Pass {
    blobs: u64,
    raw: u64,
    stored: u64,
    new_blobs: u64,
    new_raw: u64,
    new_stored: u64,
}

/// A compressor for `spec`: a zstd level, or STRATEGY:HASHLOG:CHAINLOG:MINMATCH
/// (strategy 1 fast, 2 dfast) on top of level 3.
fn compressor(spec: &str) -> anyhow::Result<zstd::bulk::Compressor<'static>> {
    use zstd::stream::raw::CParameter;
    let parts: Vec<u32> = spec
        .split(':')
        .map(|p| p.parse())
        .collect::<Result<_, _>>()?;
    if let [level] = parts[..] {
        return Ok(zstd::bulk::Compressor::new(level as i32)?);
    }
    let [strategy, hash, chain, min_match] = parts[..] else {
        anyhow::bail!("want LEVEL or STRATEGY:HASHLOG:CHAINLOG:MINMATCH, got {spec}");
    };
    let mut c = zstd::bulk::Compressor::new(3)?;
    c.set_parameter(CParameter::Strategy(match strategy {
        1 => zstd::zstd_safe::Strategy::ZSTD_fast,
        _ => zstd::zstd_safe::Strategy::ZSTD_dfast,
    }))?;
    c.set_parameter(CParameter::WindowLog(21))?;
    c.set_parameter(CParameter::HashLog(hash))?;
    c.set_parameter(CParameter::ChainLog(chain))?;
    c.set_parameter(CParameter::SearchLog(1))?;
    c.set_parameter(CParameter::MinMatch(min_match))?;
    c.set_parameter(CParameter::TargetLength(0))?;
    Ok(c)
}

fn pass(
    path: &str,
    params: ChunkerParams,
    level: &str,
    seen: &mut HashSet<[u8; 32]>,
) -> anyhow::Result<Pass> {
    let mut chunker = Chunker::new(BufReader::new(File::open(path)?), params, &[7u8; 32]);
    let mut compressor = compressor(level)?;
    let mut p = Pass {
        blobs: 0,
        raw: 0,
        stored: 0,
        new_blobs: 0,
        new_raw: 0,
        new_stored: 0,
    };
    while let Some(chunk) = chunker.next_chunk()? {
        let id = *blake3::hash(&chunk).as_bytes();
        let (_, compressed) = compress(&mut compressor, &chunk);
        let stored = compressed.map_or(chunk.len(), |c| c.len()) as u64;
        p.blobs += 1;
        p.raw += chunk.len() as u64;
        p.stored += stored;
        if seen.insert(id) {
            p.new_blobs += 1;
            p.new_raw += chunk.len() as u64;
            p.new_stored += stored;
        }
    }
    Ok(p)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        anyhow::bail!("usage: chunk_churn OLD NEW MIN_KIB AVG_KIB MAX_KIB [LEVEL|S:H:C:M]");
    }
    let kib = |i: usize| -> anyhow::Result<usize> { Ok(args[i].parse::<usize>()? * 1024) };
    let params = ChunkerParams {
        min_size: kib(2)?,
        avg_size: kib(3)?,
        max_size: kib(4)?,
    };
    let level = args.get(5).map_or("3", |l| l.as_str());
    let mut seen = HashSet::new();
    let t = std::time::Instant::now();
    let first = pass(&args[0], params, level, &mut seen)?;
    let first_s = t.elapsed().as_secs_f64();
    let next = pass(&args[1], params, level, &mut seen)?;
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "min {} avg {} max {} KiB, level {level}: first {} blobs, {:.1} MB -> {:.1} MB stored (ratio {:.3}, {first_s:.1} s); next {} blobs, {} new, {:.1} MB new raw, {:.1} MB new stored",
        params.min_size / 1024,
        params.avg_size / 1024,
        params.max_size / 1024,
        first.blobs,
        mb(first.raw),
        mb(first.stored),
        first.raw as f64 / first.stored as f64,
        next.blobs,
        next.new_blobs,
        mb(next.new_raw),
        mb(next.new_stored),
    );
    Ok(())
}
