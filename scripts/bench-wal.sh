#!/usr/bin/env bash
# WAL archiving benchmark: `vaultctl wal push` against `pgbackrest
# archive-push` (synchronous, zstd, Debian's pgbackrest package) on the same
# real 16 MiB WAL segments, one process per segment as archive_command runs
# them, both to a local repository, interleaved segment by segment so that
# background load hits both alike. Prints median, p95 and mean per tool.
# Target: vaultctl's median <= half of pgBackRest's mean (54 ms measured
# for the issue -> <= 27 ms).
#
# The segments come from a PostgreSQL 15 cluster running a write load of
# realistic rows (text, numbers, JSON, updates, full-page images), copied by
# archive_command = cp. Usage: scripts/bench-wal.sh [SEGMENTS] (default 120).
# VAULTCTL_BIN overrides the binary (default: a release build);
# WAL_LEVEL sets vaultctl's wal_compression_level (default: the built-in 1).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-120}"
. scripts/lib-pg.sh
bench_pg_setup bench-wal
HAVE_PGBR=1
command -v pgbackrest >/dev/null 2>&1 || { HAVE_PGBR=0; echo "bench-wal.sh: pgbackrest is not installed (apt-get install -y pgbackrest); measuring vaultctl only" >&2; }

"${RUN[@]}" mkdir -p "$WORK/segs"
bench_pg_start C shared_buffers=128MB max_wal_size=1GB archive_mode=on "archive_command='cp %p $WORK/segs/%f'"
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres -d postgres)

echo "bench-wal: generating $COUNT WAL segments with a realistic write load" >&2
"${PSQL[@]}" -c "CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, account int NOT NULL, amount numeric(12,2), payload jsonb, note text)"
round=0
while [ "$(ls "$WORK/segs" | grep -c '^[0-9A-F]\{24\}$' || true)" -lt "$COUNT" ]; do
    round=$((round + 1))
    "${PSQL[@]}" -c "INSERT INTO events (at, kind, account, amount, payload, note)
        SELECT now() - g * interval '17 seconds', (ARRAY['login','order','view','refund','invoice'])[g % 5 + 1], (g * 7919) % 50000,
               round((random() * 5000)::numeric, 2),
               jsonb_build_object('sku', 'SKU-' || (g % 4000), 'qty', g % 9 + 1, 'ip', '10.' || (g % 256) || '.' || (g * 7 % 256) || '.1', 'agent', (ARRAY['Mozilla/5.0 (X11; Linux x86_64)','curl/8.4.0','okhttp/4.12'])[g % 3 + 1]),
               CASE WHEN g % 3 = 0 THEN 'customer asked for ' || md5(g::text || $round) ELSE NULL END
          FROM generate_series(1, 150000) g"
    "${PSQL[@]}" -c "UPDATE events SET amount = amount + 1, note = coalesce(note, '') || ' adj' WHERE id % 7 = $((round % 7))"
    "${PSQL[@]}" -c "CHECKPOINT" >/dev/null
done
"${PSQL[@]}" -c "SELECT pg_switch_wal()" >/dev/null
sleep 1

# vaultctl: one local target, keys, a physical source (push needs no catalog).
cat > "$WORK/vaultctl.toml" <<EOF
catalog = "$WORK/v/catalog.db"
${WAL_LEVEL:+wal_compression_level = $WAL_LEVEL}
[keys]
identity_file = "$WORK/v/identity.txt"
dedup_key_file = "$WORK/v/dedup.key"
[[target]]
name = "local"
url = "file://$WORK/v/repo"
[[source]]
name = "bench"
kind = "postgres-physical"
url = "postgresql://postgres@127.0.0.1:$PORT/postgres"
pg_bin_dir = "$PGBIN"
EOF
chmod 644 "$WORK/vaultctl.toml"
"${RUN[@]}" mkdir -p "$WORK/v"
"${RUN[@]}" "$VAULTCTL_BIN" --config "$WORK/vaultctl.toml" key generate --output "$WORK/v/identity.txt" >/dev/null 2>&1
"${RUN[@]}" "$VAULTCTL_BIN" --config "$WORK/vaultctl.toml" init >/dev/null

# The asynchronous mode (wal push --async) measured separately afterwards
# (its background worker would steal CPU from the interleaved runs), on a
# copy of pg_wal with every segment marked .ready, as under a write burst.
sed -e "s#$WORK/v/#$WORK/v2/#g" "$WORK/vaultctl.toml" > "$WORK/vaultctl-async.toml"
chmod 644 "$WORK/vaultctl-async.toml"
"${RUN[@]}" mkdir -p "$WORK/v2" "$WORK/pgwal/archive_status"
"${RUN[@]}" "$VAULTCTL_BIN" --config "$WORK/vaultctl-async.toml" key generate --output "$WORK/v2/identity.txt" >/dev/null 2>&1
"${RUN[@]}" "$VAULTCTL_BIN" --config "$WORK/vaultctl-async.toml" init >/dev/null 2>&1
for f in $(ls "$WORK/segs" | grep '^[0-9A-F]\{24\}$' | head -n "$COUNT"); do
    "${RUN[@]}" ln "$WORK/segs/$f" "$WORK/pgwal/$f"
    "${RUN[@]}" touch "$WORK/pgwal/archive_status/$f.ready"
done

if [ "$HAVE_PGBR" = 1 ]; then
    cat > "$WORK/pgbackrest.conf" <<EOF
[global]
repo1-path=$WORK/pbrepo
compress-type=zst
archive-async=n
log-level-console=warn
log-level-file=off
lock-path=$WORK/pblock
spool-path=$WORK/pbspool
[bench]
pg1-path=$WORK/data
pg1-port=$PORT
pg1-socket-path=$WORK
pg1-user=postgres
EOF
    chmod 644 "$WORK/pgbackrest.conf"
    "${RUN[@]}" pgbackrest --config="$WORK/pgbackrest.conf" --stanza=bench stanza-create >/dev/null
fi

cat > "$WORK/bench.py" <<'EOF'
import os, resource, statistics, subprocess, sys, time
work, count, vaultctl, have_pgbr = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
segs = sorted(f for f in os.listdir(f"{work}/segs") if len(f) == 24)[:count]
tools = {"vaultctl wal push": lambda p: [vaultctl, "--config", f"{work}/vaultctl.toml", "wal", "push", p]}
if have_pgbr:
    tools["pgbackrest archive-push"] = lambda p: ["pgbackrest", f"--config={work}/pgbackrest.conf", "--stanza=bench", "archive-push", p]
times = {t: [] for t in tools}
cpu = {t: [] for t in tools}
for s in segs:
    p = f"{work}/segs/{s}"
    for name, cmd in tools.items():
        u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        r = subprocess.run(cmd(p), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = (time.perf_counter() - t0) * 1000
        u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[name].append((u1.ru_utime - u0.ru_utime + u1.ru_stime - u0.ru_stime) * 1000)
        if r.returncode != 0:
            sys.exit(f"{name} failed on {s}: {r.stderr.decode()}")
        times[name].append(dt)
def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
print(f"{len(segs)} segments of 16 MiB, one process per segment, local repository, interleaved")
print(f"{'tool':28} {'median ms':>10} {'p95 ms':>8} {'mean ms':>8} {'CPU ms/segment':>15}")
for name, v in times.items():
    print(f"{name:28} {statistics.median(v):10.1f} {pct(v, 0.95):8.1f} {statistics.mean(v):8.1f} {statistics.mean(cpu[name]):15.1f}")
print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
# wal push --async, one call per segment in order as the archiver makes them,
# each .ready renamed to .done after success as PostgreSQL does.
asyn = []
for s in segs:
    t0 = time.perf_counter()
    r = subprocess.run([vaultctl, "--config", f"{work}/vaultctl-async.toml", "wal", "push", "--async", f"{work}/pgwal/{s}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    asyn.append((time.perf_counter() - t0) * 1000)
    if r.returncode != 0:
        sys.exit(f"wal push --async failed on {s}: {r.stderr.decode()}")
    os.rename(f"{work}/pgwal/archive_status/{s}.ready", f"{work}/pgwal/archive_status/{s}.done")
print(f"{'vaultctl wal push --async':28} {statistics.median(asyn):10.1f} {pct(asyn, 0.95):8.1f} {statistics.mean(asyn):8.1f} {'(separate run)':>15}")
def du(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
raw = len(segs) * 16 * 1024 * 1024
print(f"stored: vaultctl {du(work + '/v/repo/wal') / raw:.1%} of the WAL" + (f", pgbackrest {du(work + '/pbrepo/archive') / raw:.1%}" if have_pgbr else ""))
EOF
chmod 644 "$WORK/bench.py"
echo "bench-wal: pushing $COUNT segments with each tool" >&2
"${RUN[@]}" python3 "$WORK/bench.py" "$WORK" "$COUNT" "$VAULTCTL_BIN" "$HAVE_PGBR"
# KEEP_SEGMENTS=DIR keeps the generated segments for further experiments.
if [ -n "${KEEP_SEGMENTS:-}" ]; then
    mkdir -p "$KEEP_SEGMENTS" && cp "$WORK"/segs/* "$KEEP_SEGMENTS"/
fi
