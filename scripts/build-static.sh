#!/usr/bin/env bash
# Builds vaultctl as one fully static x86_64 Linux executable and prints its
# path on the last line of its output. Usage: scripts/build-static.sh
#
# The route is glibc with crt-static (the musl target is not installed on the
# build machines): `--target` keeps build scripts and proc-macros dynamic
# while the binary itself links libc, libm and libgcc statically. What would
# otherwise need shared libraries at run time is avoided in the crate's
# features (see Cargo.toml): DNS through reqwest's hickory resolver instead of
# getaddrinfo's NSS modules, TLS roots from webpki-roots inside the binary,
# rusqlite's bundled SQLite, rustls instead of OpenSSL. The binary is built
# with the release profile in its own target directory (CARGO_TARGET_DIR,
# default target/static) so it does not evict the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.cargo/bin:$PATH"
TARGET=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/static}"
# relocation-model=static links a classic static executable rather than a
# static-pie (which ldd calls "statically linked" and which needs its own
# startup relocation); the issue's check is ldd's "not a dynamic executable".
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static"

start=$(date +%s)
cargo build --release --locked --target "$TARGET" --bin vaultctl >&2
bin="$CARGO_TARGET_DIR/$TARGET/release/vaultctl"

# A dynamic executable here would fail in a bare root filesystem: refuse it.
# (ldd exits 1 on a static executable: its words are what count.)
said="$(ldd "$bin" 2>&1 || true)"
if ! grep -q "not a dynamic executable" <<<"$said"; then
    echo "build-static.sh: $bin is dynamically linked:" >&2
    echo "$said" >&2
    exit 1
fi
echo "build-static.sh: built in $(( $(date +%s) - start ))s, $(stat -c %s "$bin") bytes" >&2
echo "$bin"
