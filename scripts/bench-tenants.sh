#!/usr/bin/env bash
# Ten thousand tenants: `backup DB --all-tenants` against a plain pg_dump of
# the same database (target: <= 1.5x), its peak RSS (target: the same at
# 1,000 and 10,000 tenants), and the lookups that must stay under a second
# on the resulting repository: `list --tenant X`, `show`, and
# `restore --type merge --tenant X` of one small tenant (and of the
# largest).
#
# Each round, ROUNDS of them alternated (default 5), times a `pg_dump`, then
# in a fresh repository a plain `backup DB` ("full": one artifact, the
# pipeline's own cost), the first `--all-tenants` backup (every tenant's rows
# new: "first", with its peak RSS) and a second one ("later": a later night,
# every tenant's rows already stored). The table shows medians and the
# ratios of medians; single runs mean little on a shared 2-core machine
# (`pg_dump` of the same database took 0.44 s and 0.85 s within a minute),
# so the spread of `pg_dump` and of the first backup is printed too. At the
# end: the phases of the last round's first backup (its -vv log: wall and
# CPU time at each phase).
#
# The database is generated with a realistic skew: tenant k holds about
# 1/k of the rows (log-uniform: a few large tenants, a long tail of small
# ones; some hold none). About ROWS rows in all (default 600000: ~70 MB of
# COPY text) over customers, orders and events, whatever the tenant count.
#
# Usage: scripts/bench-tenants.sh [TENANTS...]   (default: 1000 10000)
# VAULTCTL_BIN overrides the binary (default: a release build); ROWS the
# row count; ROUNDS the rounds. Run as root (the cluster runs as
# vaultctl-pg). Needs /usr/bin/time (apt-get install time). KEEP_WORK=1
# keeps the cluster and the repositories (the work directory is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(1000 10000)
ROWS="${ROWS:-600000}"
ROUNDS="${ROUNDS:-5}"
[ "$(id -u)" = 0 ] || { echo "bench-tenants.sh: run as root (the cluster runs as vaultctl-pg)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-tenants.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
. scripts/lib-pg.sh
bench_pg_setup bench-tenants
bench_pg_start C.UTF-8 shared_buffers=256MB max_wal_size=4GB fsync=off
PSQL=("$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)

# Prints "peak-RSS-bytes seconds" of a command (its output to $WORK/out).
measure() {
    /usr/bin/time -f "%M %e" -o "$WORK/time" "$@" > "$WORK/out" 2> "$WORK/err" || {
        echo "bench-tenants: $* failed:" >&2; cat "$WORK/err" >&2; exit 1; }
    read -r kb secs < <(tail -1 "$WORK/time")
    echo "$((kb * 1024)) $secs"
}

# The median of numbers, and "min-max".
median() { printf '%s\n' "$@" | sort -g | python3 -c 'import statistics,sys; print(statistics.median(float(l) for l in sys.stdin))'; }
range() { printf '%s\n' "$@" | sort -g | sed -n '1h;${H;x;s/\n/-/;p}'; }

declare -A R
for n in "${COUNTS[@]}"; do
    db="t$n"
    # Tenant ids are zero-padded to five digits, or to n's width past 99,999.
    w=$(( ${#n} > 5 ? ${#n} : 5 ))
    echo "bench-tenants: generating $db: $n tenants, about $ROWS rows" >&2
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $db"
    # tenant(): log-uniform over 1..n (tenant k gets about 1/k of the rows).
    "${PSQL[@]}" -d "$db" <<SQL
CREATE TABLE tenants (id text PRIMARY KEY, name text NOT NULL, plan text);
INSERT INTO tenants SELECT 'tenant-' || lpad(g::text, $w, '0'), 'Tenant ' || g, (ARRAY['free','pro','enterprise'])[1 + g % 3]
  FROM generate_series(1, $n) g;
CREATE FUNCTION pick() RETURNS text LANGUAGE sql VOLATILE
  AS 'SELECT ''tenant-'' || lpad(least($n, floor(exp(random() * ln($n + 1)))::int)::text, $w, ''0'')';
CREATE TABLE customers (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, name text, email text, created_at timestamptz);
CREATE TABLE orders (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, customer_id bigint, total numeric(12,2), status text, note text, created_at timestamptz);
CREATE TABLE events (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, kind text NOT NULL, payload jsonb, at timestamptz NOT NULL);
CREATE INDEX ON customers (tenant_id); CREATE INDEX ON orders (tenant_id); CREATE INDEX ON events (tenant_id);
INSERT INTO customers (tenant_id, name, email, created_at)
  SELECT pick(), 'Customer ' || g, md5(g::text) || '@example.com', now() - g * interval '1 minute'
    FROM generate_series(1, $ROWS / 6) g;
INSERT INTO orders (tenant_id, customer_id, total, status, note, created_at)
  SELECT pick(), g % 100000, (g % 9000) / 10.0, (ARRAY['new','paid','shipped'])[1 + g % 3],
         CASE WHEN g % 4 = 0 THEN 'deliver after 5pm, ring twice' END, now() - g * interval '1 minute'
    FROM generate_series(1, $ROWS / 3) g;
INSERT INTO events (tenant_id, kind, payload, at)
  SELECT pick(), (ARRAY['login','view','click','export'])[1 + g % 4],
         jsonb_build_object('page', '/p/' || (g % 977), 'ms', g % 1000), now() - g * interval '1 second'
    FROM generate_series(1, $ROWS / 2) g;
VACUUM ANALYZE;
SQL
    V="$WORK/v$n"
    mkdir -p "$V"
    cat > "$V/vaultctl.toml" <<EOF
catalog = "$V/catalog.db"
[keys]
identity_file = "$V/identity.txt"
dedup_key_file = "$V/dedup.key"
[[target]]
name = "local"
url = "file://$V/repo"
[[source]]
name = "db"
kind = "postgres"
url = "postgresql://postgres@127.0.0.1:$PORT/$db"
pg_bin_dir = "$PGBIN"
[source.tenants]
table = "tenants"
key = "id"
column = "tenant_id"
EOF
    VC=("$VAULTCTL_BIN" --config "$V/vaultctl.toml" --no-progress)
    "${VC[@]}" key generate --output "$V/identity.txt" >/dev/null
    T_DUMP=(); T_FULL=(); T_FIRST=(); T_LATER=(); RSS=()
    for round in $(seq "$ROUNDS"); do
        read -r _ t < <(measure "$PGBIN/pg_dump" -h 127.0.0.1 -p "$PORT" -U postgres --format=plain -f /dev/null "$db")
        T_DUMP+=("$t")
        rm -rf "$V/repo" "$V/catalog.db" "$V/catalog.db-wal" "$V/catalog.db-shm"
        "${VC[@]}" init >/dev/null
        read -r _ t < <(measure "${VC[@]}" --json backup db)
        T_FULL+=("$t")
        read -r rss t < <(measure "${VC[@]}" -vv --json backup db --all-tenants)
        T_FIRST+=("$t"); RSS+=("$rss")
        # Where its time went (-vv: each phase's wall and CPU time so far).
        grep -E "backup [0-9a-f]+: .* after " "$WORK/err" | sed 's/^.*backup [0-9a-f]*: /  /' > "$WORK/phases.$n" || true
        id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/out")
        read -r _ t < <(measure "${VC[@]}" --json backup db --all-tenants)
        T_LATER+=("$t")
        echo "bench-tenants: $db round $round: pg_dump ${T_DUMP[-1]} s, first ${T_FIRST[-1]} s, later ${T_LATER[-1]} s" >&2
    done
    R[$n.pgdump]=$(median "${T_DUMP[@]}"); R[$n.pgdump_range]=$(range "${T_DUMP[@]}")
    R[$n.full]=$(median "${T_FULL[@]}")
    R[$n.backup]=$(median "${T_FIRST[@]}"); R[$n.backup_range]=$(range "${T_FIRST[@]}")
    R[$n.later]=$(median "${T_LATER[@]}")
    R[$n.rss]=$(printf '%s\n' "${RSS[@]}" | sort -n | tail -1)
    R[$n.artifacts]=$("${VC[@]}" --json show "$id" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["artifacts"]))')
    # A small tenant from the long tail, and the largest.
    small="tenant-$(printf "%0${w}d" $((n - 1)))"
    read -r _ R[$n.list] < <(measure "${VC[@]}" --json list --tenant "$small")
    read -r _ R[$n.show] < <(measure "${VC[@]}" --json show "$id")
    read -r _ R[$n.restore] < <(measure "${VC[@]}" restore "$id" --type merge --tenant "$small" \
        --target-db "postgresql://postgres@127.0.0.1:$PORT/$db" --yes)
    read -r _ R[$n.restore_big] < <(measure "${VC[@]}" restore "$id" --type merge --tenant "tenant-$(printf "%0${w}d" 1)" \
        --target-db "postgresql://postgres@127.0.0.1:$PORT/$db" --yes)
    R[$n.repo]=$(du -sb "$V/repo" | cut -f1)
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$V/repo"
done

[ -z "${KEEP_WORK:-}" ] || echo "bench-tenants: kept $WORK (cluster on port $PORT)" >&2
echo
echo "Tenant backups ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $ROWS rows, $ROUNDS rounds, medians, $VAULTCTL_BIN):"
printf '%-8s %9s %11s %7s %9s %11s %6s %8s %6s %9s %10s %8s %8s %10s %10s %9s\n' tenants "pg_dump s" "(range)" "full s" "first s" "(range)" ratio "later s" ratio "RSS MB" artifacts "list s" "show s" "restore s" "largest s" "repo MB"
for n in "${COUNTS[@]}"; do
    printf '%-8s %9.3f %11s %7.3f %9.3f %11s %6.2f %8.3f %6.2f %9.1f %10s %8s %8s %10s %10s %9.1f\n' "$n" "${R[$n.pgdump]}" "${R[$n.pgdump_range]}" "${R[$n.full]}" \
        "${R[$n.backup]}" "${R[$n.backup_range]}" "$(echo "${R[$n.backup]} / ${R[$n.pgdump]}" | bc -l)" \
        "${R[$n.later]}" "$(echo "${R[$n.later]} / ${R[$n.pgdump]}" | bc -l)" "$(echo "${R[$n.rss]} / 1048576" | bc -l)" \
        "${R[$n.artifacts]}" "${R[$n.list]}" "${R[$n.show]}" "${R[$n.restore]}" "${R[$n.restore_big]}" \
        "$(echo "${R[$n.repo]} / 1048576" | bc -l)"
done
for n in "${COUNTS[@]}"; do
    if [ -s "$WORK/phases.$n" ]; then
        echo "Phases of the last round's first --all-tenants backup, $n tenants:"
        cat "$WORK/phases.$n"
    fi
done
