#!/usr/bin/env bash
# Runs vaultctl's whole test suite on a fresh machine: installs what the
# tests need (the S3-compatible test server s3s-fs), then builds and runs
# every test. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.cargo/bin:$PATH"
S3S_VERSION=0.14.1

if ! command -v s3s-fs >/dev/null 2>&1 || ! s3s-fs --version 2>/dev/null | grep -q "$S3S_VERSION"; then
    echo "test.sh: installing s3s-fs $S3S_VERSION (the S3-compatible test server)" >&2
    cargo install "s3s-fs@$S3S_VERSION" --locked --features binary
fi
export S3S_FS="$(command -v s3s-fs)"

if ! command -v python3 >/dev/null 2>&1; then
    echo "test.sh: installing python3 (used by tests to craft archives)" >&2
    apt-get update -qq && apt-get install -y -qq python3
fi

cargo build --all-targets
cargo test --all-targets -- --test-threads=2 "$@"
