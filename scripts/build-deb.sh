#!/usr/bin/env bash
# Builds the Debian package from the static binary that
# scripts/build-static.sh built (cargo deb --no-build: no second release
# build) and prints the .deb's path on the last line. Usage:
# scripts/build-deb.sh  (installs the pinned cargo-deb when it is missing)
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.cargo/bin:$PATH"
CARGO_DEB_VERSION=3.8.0
TARGET=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/static}"

if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    echo "build-deb.sh: installing cargo-deb $CARGO_DEB_VERSION" >&2
    cargo install --locked "cargo-deb@$CARGO_DEB_VERSION" >&2
fi
if [ ! -x "$CARGO_TARGET_DIR/$TARGET/release/vaultctl" ]; then
    echo "build-deb.sh: no static binary under $CARGO_TARGET_DIR: run scripts/build-static.sh first" >&2
    exit 1
fi
cargo deb --no-build --no-strip --target "$TARGET" --output "$CARGO_TARGET_DIR/debian/" >&2
ls -t "$CARGO_TARGET_DIR"/debian/vaultctl_*.deb | head -1
