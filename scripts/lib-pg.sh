# shellcheck shell=bash
# What the PostgreSQL benchmarks share: sourced by scripts/bench-*.sh from
# the repository root, after `set -euo pipefail`.

# bench_pg_setup NAME: PGBIN (PostgreSQL 15, else exit 1), VAULTCTL_BIN (a
# release build unless set), WORK (a fresh directory, removed at exit with
# the server stopped, unless KEEP_WORK is set), RUN (runs a command as
# vaultctl-pg when we are root: the server refuses to run as root), PORT
# (a free port on 127.0.0.1).
bench_pg_setup() {
    local name=$1
    PGBIN="${VAULTCTL_PG15_BIN:-/usr/lib/postgresql/15/bin}"
    [ -x "$PGBIN/initdb" ] || { echo "$name: PostgreSQL 15 is missing; run scripts/test.sh or apt-get install postgresql" >&2; exit 1; }
    if [ -z "${VAULTCTL_BIN:-}" ]; then
        cargo build --release -q --bin vaultctl
        VAULTCTL_BIN="$PWD/target/release/vaultctl"
    fi
    WORK="$(mktemp -d "/tmp/vaultctl-$name.XXXXXX")"
    chmod 755 "$WORK"
    RUN=()
    if [ "$(id -u)" = 0 ]; then
        id -u vaultctl-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin vaultctl-pg
        chown vaultctl-pg: "$WORK"
        RUN=(runuser -u vaultctl-pg --)
    fi
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    trap bench_pg_cleanup EXIT
    [ -z "${KEEP_WORK:-}" ] || trap - EXIT
}

bench_pg_cleanup() {
    "${RUN[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}

# bench_pg_start LOCALE [SETTING=VALUE...]: a new cluster in $WORK/data,
# listening on 127.0.0.1:$PORT and a socket in $WORK, with those settings.
bench_pg_start() {
    local locale=$1 opts="-p $PORT -k $WORK -c listen_addresses=127.0.0.1" s
    shift
    for s in "$@"; do opts+=" -c $s"; done
    "${RUN[@]}" "$PGBIN/initdb" -D "$WORK/data" -U postgres -E UTF8 --locale="$locale" --auth=trust --no-sync >/dev/null
    "${RUN[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w -o "$opts" start >/dev/null
}
