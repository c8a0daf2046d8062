//! vaultctl's integration tests: the real binary against real PostgreSQL
//! clusters and a real S3-compatible server (s3s-fs) on 127.0.0.1, started by
//! the harness modules below. One test binary: it links once, which matters
//! on a 2-core machine.

// Harnesses.
mod common;
mod ops_util;
mod pg;
mod prune_util;
mod pty;

// Suites.
mod adversarial;
mod checks;
mod docs;
mod doctor;
mod dr;
mod failures;
mod layers;
mod load;
mod ops;
mod pitr;
mod postgres;
mod prune;
mod report;
mod roundtrip;
mod s3;
mod scale;
mod shipping;
mod tenant_pitr;
mod views;
mod wizard;
