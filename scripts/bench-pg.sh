#!/usr/bin/env bash
# PostgreSQL benchmark: a generated database with data that compresses like
# real data (text, numbers, JSON; not pgbench's blank padding), then
#   pg_dump --format=plain > /dev/null          (the baseline)
#   vaultctl backup (first run; later runs)     target: <= 1.1x the baseline
#   pg_dump | restic backup --stdin             (when restic is installed)
#   psql -f dump.sql                            (restore baseline)
#   pg_restore -j2 of a directory-format dump   (parallel restore baseline)
#   vaultctl restore --type full (--jobs 2)     target: <= 0.75x psql -f, <= 0.9x pg_restore -j2
#   vaultctl dr run                             target: <= 1.05x vaultctl restore
#   vaultctl restore --jobs 1, 2, 4             (the curve), with peak RSS (target < 150 MB)
# Usage: scripts/bench-pg.sh [SIZE_MB]   (default 1024; e.g. 50 for a smoke run)
# VAULTCTL_BIN overrides the binary (default: a release build).
# VAULTCTL_BIN_BEFORE (optional): an older binary to compare with: after
# the run, restore and dr run with each binary, alternated, twice; prints
# wall and CPU seconds (user + sys of vaultctl) and peak RSS of each.
# BENCH_PG_ROUNDS (default 3): rounds of vaultctl restore + dr run,
# alternated; the medians are reported.
# BENCH_PG_TIMELINE=FILE (optional): the debug log of the --jobs 2 restore
# (each COPY segment and post-data statement with its start and end, in
# seconds since the load began) goes to FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB="${1:-1024}"
. scripts/lib-pg.sh
bench_pg_setup bench-pg
bench_pg_start C shared_buffers=256MB max_wal_size=4GB fsync=off
export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1)

echo "bench-pg: generating a database of about $SIZE_MB MB" >&2
"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench"
"${PSQL[@]}" -d bench <<'SQL'
CREATE TABLE tenants (id text PRIMARY KEY, name text NOT NULL);
INSERT INTO tenants SELECT 't' || g, 'Tenant ' || g FROM generate_series(1, 50) g;
CREATE TABLE customers (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, name text, email text, city text, created_at timestamptz);
CREATE TABLE orders (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, customer_id bigint, total numeric(12,2), status text, items jsonb, note text, created_at timestamptz);
CREATE TABLE products (id serial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, sku text NOT NULL, title text, price numeric(10,2), UNIQUE (tenant_id, sku));
INSERT INTO products (tenant_id, sku, title, price)
  SELECT 't' || (1 + g % 50), 'SKU-' || g, 'Product ' || md5(g::text), (g % 997) / 3.0 FROM generate_series(1, 20000) g;
CREATE TABLE order_lines (id bigserial PRIMARY KEY, order_id bigint NOT NULL, product_id int NOT NULL REFERENCES products, qty int NOT NULL, price numeric(10,2));
CREATE TABLE events (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, kind text NOT NULL, payload jsonb, at timestamptz NOT NULL);
CREATE TABLE audit_log (id bigserial PRIMARY KEY, tenant_id text NOT NULL, actor text, action text, at timestamptz);
SQL
words="'alpha','bravo','charlie','delta','echo','foxtrot','golf','hotel','india','juliet','kilo','lima','mike','november','oscar','papa','quebec','romeo','sierra','tango'"
batch=0
while :; do
    size=$("${PSQL[@]}" -At -d bench -c "SELECT pg_database_size('bench') / 1048576")
    [ "$size" -ge "$SIZE_MB" ] && break
    "${PSQL[@]}" -d bench <<SQL
INSERT INTO customers (tenant_id, name, email, city, created_at)
  SELECT 't' || (1 + (random() * 49)::int), initcap((ARRAY[$words])[1 + (random() * 19)::int]) || ' ' || initcap((ARRAY[$words])[1 + (random() * 19)::int]),
         md5(random()::text) || '@example.com', (ARRAY['Berlin','Lisbon','Austin','Osaka','Lagos','Lima'])[1 + (random() * 5)::int],
         now() - random() * interval '900 days'
    FROM generate_series(1, 20000);
INSERT INTO orders (tenant_id, customer_id, total, status, items, note, created_at)
  SELECT 't' || (1 + (random() * 49)::int), (random() * 20000 * ($batch + 1))::bigint, (random() * 900)::numeric(12,2),
         (ARRAY['new','paid','shipped','delivered','refunded'])[1 + (random() * 4)::int],
         jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (random() * 99999)::int, 'qty', 1 + (random() * 5)::int, 'price', (random() * 200)::numeric(8,2)),
                           jsonb_build_object('sku', 'SKU-' || (random() * 99999)::int, 'qty', 1 + (random() * 5)::int, 'gift', random() < 0.1)),
         CASE WHEN random() < 0.3 THEN array_to_string(ARRAY(SELECT (ARRAY[$words])[1 + (random() * 19)::int] FROM generate_series(1, 12)), ' ') END,
         now() - random() * interval '900 days'
    FROM generate_series(1, 60000);
INSERT INTO order_lines (order_id, product_id, qty, price)
  SELECT o.id, 1 + (random() * 19999)::int, 1 + (random() * 5)::int, (random() * 200)::numeric(10,2)
    FROM orders o, generate_series(1, 2) WHERE o.id > (SELECT coalesce(max(order_id), 0) FROM order_lines);
INSERT INTO events (tenant_id, kind, payload, at)
  SELECT 't' || (1 + (random() * 49)::int), (ARRAY['login','view','click','export'])[1 + (random() * 3)::int],
         jsonb_build_object('ip', '10.' || (random() * 255)::int || '.' || (random() * 255)::int || '.1', 'path', '/' || (ARRAY[$words])[1 + (random() * 19)::int]),
         now() - random() * interval '90 days'
    FROM generate_series(1, 40000);
INSERT INTO audit_log (tenant_id, actor, action, at)
  SELECT 't' || (1 + (random() * 49)::int), (ARRAY[$words])[1 + (random() * 19)::int], 'update ' || (ARRAY[$words])[1 + (random() * 19)::int], now() - random() * interval '900 days'
    FROM generate_series(1, 10000);
SQL
    batch=$((batch + 1))
done
"${PSQL[@]}" -d bench <<'SQL'
CREATE INDEX ON customers (tenant_id, email);
CREATE INDEX ON orders (tenant_id, created_at);
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON order_lines (order_id);
CREATE INDEX ON order_lines (product_id);
CREATE INDEX ON events (tenant_id, at);
CREATE INDEX ON audit_log (tenant_id, at);
ALTER TABLE order_lines ADD FOREIGN KEY (order_id) REFERENCES orders;
SQL
"${PSQL[@]}" -d bench -c "VACUUM ANALYZE"

cat > "$WORK/config.toml" <<EOF2
catalog = "$WORK/catalog.db"
[keys]
identity_file = "$WORK/identity.txt"
dedup_key_file = "$WORK/dedup.key"
[[target]]
name = "local"
url = "file://$WORK/repo"
[[source]]
name = "bench"
kind = "postgres"
url = "postgresql://postgres@127.0.0.1:$PORT/bench"
pg_bin_dir = "$PGBIN"
EOF2
V=("$VAULTCTL_BIN" --config "$WORK/config.toml" --no-progress -q)
"${V[@]}" key generate --output "$WORK/identity.txt" >/dev/null
"${V[@]}" init >/dev/null

# Times a command (its stdout discarded); prints seconds.
# A failed command stops the benchmark (its time would mean nothing).
t() {
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null || { echo "bench-pg: failed: $*" >&2; exit 1; }
    e=$(date +%s.%N)
    echo "$e - $s" | bc
}
ratio() { printf "%.2f" "$(echo "scale=4; $1 / $2" | bc)"; }

median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

# Backups: the first run once (only one can be first), then three rounds of
# pg_dump > /dev/null and a later vaultctl backup, interleaved so that
# background noise hits both alike; medians.
# One pg_dump first, untimed: the first backup must not pay for warming the
# caches that every later pg_dump enjoys.
dump_size=$("$PGBIN/pg_dump" --format=plain -d bench | wc -c)
t_v1=$(t "${V[@]}" backup bench)
dumps=(); nexts=()
for _ in 1 2 3; do
    dumps+=("$(t sh -c "'$PGBIN/pg_dump' --format=plain -d bench > /dev/null")")
    nexts+=("$(t "${V[@]}" backup bench)")
done
t_dump=$(median "${dumps[@]}")
t_v2=$(median "${nexts[@]}")
t_restic=""
if command -v restic >/dev/null; then
    export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="$WORK/restic"
    restic init -q >/dev/null
    t_restic=$(t sh -c "'$PGBIN/pg_dump' --format=plain -d bench | restic backup -q --stdin --stdin-filename dump.sql")
fi
# Restores, in one run: psql -f of the plain dump, pg_restore -j2 of a
# directory-format dump, vaultctl restore --type full (default jobs: the
# cores) and dr run; then vaultctl with --jobs 1, 2 and 4 (peak RSS each).
"$PGBIN/pg_dump" --format=plain -d bench > "$WORK/dump.sql"
"$PGBIN/pg_dump" --format=directory -d bench -f "$WORK/dump.dir"
url() { echo "postgresql://postgres@127.0.0.1:$PORT/$1"; }
drop() { "${PSQL[@]}" -d postgres -c "DROP DATABASE $1"; }
"${PSQL[@]}" -d postgres -c "CREATE DATABASE by_psql"
t_psql=$(t "${PSQL[@]}" -d by_psql -f "$WORK/dump.sql" -o /dev/null); drop by_psql
"${PSQL[@]}" -d postgres -c "CREATE DATABASE by_pg_restore"
t_pgr=$(t "$PGBIN/pg_restore" -j 2 -d by_pg_restore "$WORK/dump.dir"); drop by_pg_restore
rm -rf "$WORK/dump.sql" "$WORK/dump.dir"
# vaultctl restore and dr run, alternated for BENCH_PG_ROUNDS rounds
# (default 3; medians), so that background noise hits both alike: a dr
# run is a restore plus its own steps, and one restore against one dr run
# compared restore noise, not dr's cost.
restores=(); drs=()
for _ in $(seq "${BENCH_PG_ROUNDS:-3}"); do
    restores+=("$(t sh -c "\"\$0\" \"\$@\" > '$WORK/restore.json'" "${V[@]}" --json restore bench:latest --type full --target-db "$(url by_vaultctl)" --create --yes)"); drop by_vaultctl
    drs+=("$(t "${V[@]}" dr run --source bench --target-db "$(url by_dr)" --reason benchmark --yes --report "$WORK/dr-report.md")"); drop by_dr
done
t_restore=$(median "${restores[@]}")
t_dr=$(median "${drs[@]}")
# The phases of the last restore (milliseconds), its COPY segments and spill.
phases=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["report"]["phases"]; print("schema %(schema_ms)s ms, data %(data_ms)s ms, post-data %(post_data_ms)s ms, finalize %(finalize_ms)s ms; %(copy_blocks)s COPY blocks in %(copy_segments)s segments, %(spilled_bytes)s bytes spilled" % p)' "$WORK/restore.json")
# The last dr run: its recorded RTO, and each of its steps (ms); what it
# spends beyond its own restore step is what the checks cost.
"${V[@]}" --json dr history --kind run --limit 1 > "$WORK/dr.json"
read -r rto_ms dr_extra_ms dr_steps < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))[0]
steps = r["steps"] or []
restore = sum(s["ms"] for s in steps if s["step"].startswith("restore"))
print(r["rto_ms"], r["rto_ms"] - restore, "; ".join("%s %s ms" % (s["step"], s["ms"]) for s in steps))' "$WORK/dr.json")
curve=()
for j in 1 2 4; do
    # (Not 2>/dev/stderr: reopening a redirected stderr truncates its file.)
    exec 3>&2
    filter=vaultctl=error
    if [ "$j" = 2 ] && [ -n "${BENCH_PG_TIMELINE:-}" ]; then exec 3>"$BENCH_PG_TIMELINE"; filter=vaultctl=debug; fi
    s=$(date +%s.%N)
    RUST_LOG=$filter /usr/bin/time -f %M -o "$WORK/rss" "${V[@]}" restore bench:latest --type full --target-db "$(url by_jobs_$j)" --create --yes --jobs "$j" >/dev/null 2>&3
    exec 3>&-
    e=$(date +%s.%N)
    curve+=("$(printf '%s %.2f %s' "$j" "$(echo "$e - $s" | bc)" "$(( $(cat "$WORK/rss") / 1024 ))")")
    drop "by_jobs_$j"
done

# Before/after: the same restore and dr run with each binary, alternated
# (so that background load hits both alike), twice.
compare=()
if [ -n "${VAULTCTL_BIN_BEFORE:-}" ]; then
    n=0
    for _ in 1 2; do
        for which in before after; do
            bin="$VAULTCTL_BIN"; [ "$which" = before ] && bin="$VAULTCTL_BIN_BEFORE"
            n=$((n + 1))
            /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$bin" --config "$WORK/config.toml" --no-progress -q \
                restore bench:latest --type full --target-db "$(url cmp_r$n)" --create --yes >/dev/null
            read -r e u s m < "$WORK/time"
            compare+=("$(printf '%-6s restore  %6.2f s wall, %6.2f s CPU, %4s MB' "$which" "$e" "$(echo "$u + $s" | bc)" "$((m / 1024))")")
            drop "cmp_r$n"
            /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$bin" --config "$WORK/config.toml" --no-progress -q \
                dr run --source bench --target-db "$(url cmp_d$n)" --reason benchmark --yes >/dev/null
            read -r e u s m < "$WORK/time"
            compare+=("$(printf '%-6s dr run   %6.2f s wall, %6.2f s CPU, %4s MB' "$which" "$e" "$(echo "$u + $s" | bc)" "$((m / 1024))")")
            drop "cmp_d$n"
        done
    done
    # glibc's malloc arenas at 4 jobs (the new binary keeps 2 unless
    # MALLOC_ARENA_MAX is set; glibc's own default is 8 per core).
    for a in 1 2 $((8 * $(nproc))); do
        /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" env MALLOC_ARENA_MAX=$a "$VAULTCTL_BIN" --config "$WORK/config.toml" --no-progress -q \
            restore bench:latest --type full --target-db "$(url cmp_arena)" --create --yes --jobs 4 >/dev/null
        read -r e u s m < "$WORK/time"
        compare+=("$(printf 'after  --jobs 4, MALLOC_ARENA_MAX=%-3s %6.2f s wall, %6.2f s CPU, %4s MB' "$a" "$e" "$(echo "$u + $s" | bc)" "$((m / 1024))")")
        drop cmp_arena
    done
fi

printf '\nPostgreSQL benchmark: database %s MB, plain dump %s MB\n' "$SIZE_MB" "$((dump_size / 1048576))"
printf '%-44s %8.2f s  (median of %s)\n' "pg_dump --format=plain > /dev/null" "$t_dump" "${dumps[*]}"
printf '%-44s %8.2f s  (%sx pg_dump; target <= 1.1x)\n' "vaultctl backup (first run)" "$t_v1" "$(ratio "$t_v1" "$t_dump")"
printf '%-44s %8.2f s  (%sx pg_dump; median of %s)\n' "vaultctl backup (later runs)" "$t_v2" "$(ratio "$t_v2" "$t_dump")" "${nexts[*]}"
if [ -n "$t_restic" ]; then
    printf '%-44s %8.2f s  (%sx pg_dump)\n' "pg_dump | restic backup --stdin" "$t_restic" "$(ratio "$t_restic" "$t_dump")"
else
    printf '%-44s %s\n' "pg_dump | restic backup --stdin" "(restic not installed: apt-get install restic)"
fi
printf '%-44s %8.2f s\n' "psql -f dump.sql" "$t_psql"
printf '%-44s %8.2f s\n' "pg_restore -j2 (directory format)" "$t_pgr"
printf '%-44s %8.2f s  (%sx psql, target <= 0.75x; %sx pg_restore -j2, target <= 0.9x)\n' "vaultctl restore --type full (median)" "$t_restore" "$(ratio "$t_restore" "$t_psql")" "$(ratio "$t_restore" "$t_pgr")"
printf '%-44s %s\n' "  its phases" "$phases"
printf '%-44s %8.2f s  (%sx vaultctl restore, target <= 1.05x; medians of %s and %s)\n' "vaultctl dr run (restore + row checks)" "$t_dr" "$(ratio "$t_dr" "$t_restore")" "${drs[*]}" "${restores[*]}"
printf '%-44s %s\n' "  its steps (last run)" "$dr_steps; RTO $rto_ms ms, of which $dr_extra_ms ms beyond its restore"
for c in "${curve[@]}"; do
    set -- $c
    printf '%-44s %8.2f s  (peak RSS %s MB, target < 150)\n' "vaultctl restore --jobs $1" "$2" "$3"
done
if [ "${#compare[@]}" -gt 0 ]; then
    printf '\nbefore: %s\nafter:  %s\n' "$VAULTCTL_BIN_BEFORE" "$VAULTCTL_BIN"
    printf '%s\n' "${compare[@]}"
fi
