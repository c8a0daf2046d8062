#!/usr/bin/env bash
# Tenant point-in-time restore: wall time of each phase (base backup into the
# sandbox, WAL replay, export + apply, cleanup) for a cluster of SIZE_MB of
# table data and one tenant of 5 % of it, on a real PostgreSQL 15 that
# archives through `vaultctl wal push`.
#
# Usage: scripts/bench-tenant-pitr.sh [SIZE_MB] (default 1024; the issue asks
# 1 GiB). 20 tenants of equal size: tenant t00 is 5 %. After the base backup
# a batch for every tenant, T, then half of t00's events deleted; then a
# --dry-run and a --mode merge of t00 at T, each with --json; prints the
# phases of both. VAULTCTL_BIN overrides the binary (default: a release
# build). Run as root (the cluster and sandbox run as vaultctl-pg).
# KEEP_WORK=1 keeps the work directory and the cluster for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB="${1:-1024}"
[ "$(id -u)" = 0 ] || { echo "bench-tenant-pitr.sh: run as root (the cluster runs as vaultctl-pg)" >&2; exit 1; }
. scripts/lib-pg.sh
bench_pg_setup bench-tpitr
mkdir -p "$WORK/v"
cat > "$WORK/vaultctl.toml" <<EOF
catalog = "$WORK/v/catalog.db"
[keys]
identity_file = "$WORK/v/identity.txt"
dedup_key_file = "$WORK/v/dedup.key"
[[target]]
name = "local"
url = "file://$WORK/v/repo"
[[source]]
name = "cluster"
kind = "postgres-physical"
url = "postgresql://postgres@127.0.0.1:$PORT/postgres"
pg_bin_dir = "$PGBIN"
[[source]]
name = "app"
kind = "postgres"
url = "postgresql://postgres@127.0.0.1:$PORT/app"
pg_bin_dir = "$PGBIN"
[source.tenants]
table = "tenants"
key = "id"
column = "tenant_id"
EOF
V=("$VAULTCTL_BIN" --config "$WORK/vaultctl.toml" --no-progress)
"${V[@]}" key generate --output "$WORK/v/identity.txt" >/dev/null
"${V[@]}" init >/dev/null
chown -R vaultctl-pg: "$WORK"
bench_pg_start C shared_buffers=256MB max_wal_size=4GB fsync=off archive_mode=on archive_timeout=0 \
    "archive_command='\"$VAULTCTL_BIN\" --config \"$WORK/vaultctl.toml\" wal push \"%p\"'"
PSQL=("$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE app"
# ~1 KiB per event row, 20 tenants; items are 1/10 of the events.
ROWS=$((SIZE_MB * 1024 / 20))
echo "bench-tenant-pitr: $SIZE_MB MB of rows, 20 tenants of $ROWS events each" >&2
"${PSQL[@]}" -d app <<SQL
CREATE TABLE tenants (id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE items (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, sku text NOT NULL, price numeric(10,2));
CREATE TABLE events (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants, item_id bigint NOT NULL REFERENCES items, at timestamptz NOT NULL, payload jsonb, note text);
CREATE INDEX ON items (tenant_id);
CREATE INDEX ON events (tenant_id);
INSERT INTO tenants SELECT 't' || lpad(g::text, 2, '0'), 'Tenant ' || g FROM generate_series(0, 19) g;
INSERT INTO items (tenant_id, sku, price) SELECT t.id, 'SKU-' || g, g * 1.5 FROM tenants t, generate_series(1, $ROWS / 10) g;
INSERT INTO events (tenant_id, item_id, at, payload, note)
  SELECT i.tenant_id, i.id, now() - g * interval '1 minute', jsonb_build_object('qty', g, 'ip', '10.0.' || g || '.1'), repeat(md5(i.id::text || g), 25)
    FROM items i, generate_series(1, 10) g;
SQL
"${PSQL[@]}" -d app -c "SELECT pg_size_pretty(pg_database_size('app'))" | sed 's/^/database size: /' >&2
chown -R vaultctl-pg: "$WORK/v"
t0=$(date +%s.%N)
"${V[@]}" --json backup cluster >/dev/null
echo "base backup: $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s" >&2
"${PSQL[@]}" -d app -c "INSERT INTO events (tenant_id, item_id, at, note) SELECT tenant_id, id, now(), 'batch 1' FROM items WHERE id % 100 = 0"
"${PSQL[@]}" -d app -c "SELECT pg_switch_wal()" >/dev/null
sleep 2
T=$("${PSQL[@]}" -d app -c "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
sleep 1
# Every other event of t00 in id order (its ids all have one parity: the
# generated rows interleave the 20 tenants, so "id % 2" would delete none,
# commit nothing after T, and the replay could not reach T).
"${PSQL[@]}" -d app -c "DELETE FROM events e USING (SELECT id, row_number() OVER (ORDER BY id) AS n FROM events WHERE tenant_id = 't00') s WHERE e.id = s.id AND s.n % 2 = 0"
SEG=$("${PSQL[@]}" -d app -c "SELECT pg_walfile_name(pg_switch_wal())")
until [ "$("${PSQL[@]}" -d postgres -c "SELECT coalesce(last_archived_wal, '') >= '$SEG' FROM pg_stat_archiver")" = t ]; do sleep 0.5; done
chown -R vaultctl-pg: "$WORK/v"
for mode in "--dry-run" "--mode merge"; do
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "${V[@]}" --json restore --type pitr --tenant t00 --to-time "$T" \
        --target-db "postgresql://postgres@127.0.0.1:$PORT/app" $mode --owner vaultctl-pg \
        --reason bench > "$WORK/out.json"
    wall=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
    python3 - "$WORK/out.json" "$mode" "$wall" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
p = o["phases"]
rows = sum(t.get("rows", 0) for t in o.get("report", {}).get("tables", []))
print(f"{sys.argv[2]}: wall {sys.argv[3]} s; base backup into sandbox {p['restore_base_ms']/1000:.1f} s, "
      f"WAL replay {p['replay_ms']/1000:.1f} s, export + apply {p['export_and_apply_ms']/1000:.1f} s, "
      f"cleanup {p['cleanup_ms']/1000:.1f} s; rows of the tenant at T: {rows or '-'}")
PY
done
