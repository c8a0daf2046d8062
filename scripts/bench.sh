#!/usr/bin/env bash
# Benchmark: vaultctl vs restic on a pg_dump-like stream.
#
# Usage: scripts/bench.sh [SIZE_MB]
#
# Generates (once, cached in the work dir) two deterministic pg_dump-like
# plain-text dumps with scripts/gen_dump.py: night1 (SIZE_MB MB, default 1100,
# i.e. >= 1 GiB) and night2, the next night (a tenth of the tables get a fifth
# of their rows updated and moved to the end of their COPY block; 2 % new rows
# in every table). Then, for vaultctl and restic (repository version 2, default
# compression), in fresh repositories:
#
#   first      backup of night1
#   identical  backup of night1 again
#   nextnight  backup of night2
#   restore    restore of the latest backup (night2) to /dev/null
#
# and prints throughput (MB/s, MB = 10^6 bytes of input), stored bytes
# (growth of the repository directory, du -sb), peak RSS (/usr/bin/time -v)
# and CPU time per phase, with PASS/MISS against the targets. The restored
# stream is compared with night2 once per tool (untimed). It is a
# measurement, not a test: it exits 0 even when a target is missed.
#
# Environment:
#   BENCH_SIZE_MB            size of night1 in MB (default 1100; the argument wins)
#   BENCH_SEED               generator seed (default 42)
#   BENCH_WORKDIR            work dir (default /tmp/vaultctl-bench); data is
#                            kept in WORKDIR/data and reused, repos are recreated
#   BENCH_TOOLS              "vaultctl restic" (default), or just one of them
#   BENCH_COMPRESSION_LEVEL  vaultctl compression_level (default: unset = 3)
#   BENCH_PACK_SIZE_MIB      vaultctl pack_size_mib (default: unset = 16)
#   BENCH_SWEEP              extra vaultctl-only runs after the main one, as
#                            LEVEL:PACK_MIB pairs, e.g. "1:16 6:16 3:4 3:64"
#   BENCH_REPEAT             repetitions of the whole comparison, each with fresh
#                            repositories (default 3); the table shows the median
#                            MB/s and stored bytes and the highest peak RSS
#   BENCH_SWEEP_REPEAT       repetitions of each sweep setting (default 1)
#   BENCH_VERIFY             1 (default): cmp the restored stream once per tool
#   BENCH_KEEP               1: keep the repositories afterwards (default 0)
#   VAULTCTL                 binary (default: target/release/vaultctl)
#   RESTIC                   binary (default: restic)
#
# Every run appends its figures to WORKDIR/results/*.tsv; at the end the peak
# RSS of every size measured so far is printed side by side (run once with
# BENCH_SIZE_MB=1100 and once with e.g. 4400 to see how memory scales).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MB=${1:-${BENCH_SIZE_MB:-1100}}
SEED=${BENCH_SEED:-42}
WORK=${BENCH_WORKDIR:-/tmp/vaultctl-bench}
TOOLS=${BENCH_TOOLS:-"vaultctl restic"}
LEVEL=${BENCH_COMPRESSION_LEVEL:-}
PACK=${BENCH_PACK_SIZE_MIB:-}
SWEEP=${BENCH_SWEEP:-}
VERIFY=${BENCH_VERIFY:-1}
REPEAT=${BENCH_REPEAT:-3}
SWEEP_REPEAT=${BENCH_SWEEP_REPEAT:-1}
KEEP=${BENCH_KEEP:-0}
VAULTCTL=${VAULTCTL:-$ROOT/target/release/vaultctl}
RESTIC=${RESTIC:-restic}
TIME=/usr/bin/time
PHASES="first identical nextnight restore"

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- checks
[[ $SIZE_MB =~ ^[0-9]+$ ]] || die "size must be a whole number of MB, got '$SIZE_MB'"
[[ $REPEAT =~ ^[1-9][0-9]*$ && $SWEEP_REPEAT =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEAT and BENCH_SWEEP_REPEAT must be positive numbers"
if [[ ! -x $TIME ]]; then
    log "/usr/bin/time is missing; installing the 'time' package"
    apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y time >/dev/null 2>&1; } || die "cannot install GNU time"
fi
command -v python3 >/dev/null || die "python3 is needed for the generator"
if [[ " $TOOLS " == *" vaultctl "* || -n $SWEEP ]]; then
    [[ -x $VAULTCTL ]] || die "$VAULTCTL is missing; run 'cargo build --release'"
    if [[ -n $(find "$ROOT/src" -newer "$VAULTCTL" -name '*.rs' 2>/dev/null | head -1) ]]; then
        log "warning: files in src/ have a newer mtime than $VAULTCTL; if they changed, run 'cargo build --release' first"
    fi
fi
if [[ " $TOOLS " == *" restic "* ]]; then
    command -v "$RESTIC" >/dev/null || die "restic is not installed"
fi

mkdir -p "$WORK/data" "$WORK/results" "$WORK/logs"
DATA="$WORK/data"
if [[ " $TOOLS " == *" vaultctl "* || -n $SWEEP ]]; then
    # A private copy: a rebuild during the run must not switch binaries mid-way.
    mkdir -p "$WORK/bin"
    cp -f "$VAULTCTL" "$WORK/bin/vaultctl"
    VAULTCTL_SRC=$VAULTCTL
    VAULTCTL="$WORK/bin/vaultctl"
fi
N1="$DATA/night1-${SIZE_MB}MB-s$SEED.sql"
N2="$DATA/night2-${SIZE_MB}MB-s$SEED.sql"
GENSUM="$DATA/gen-${SIZE_MB}MB-s$SEED.json"   # written last: marks complete data

avail_mb() { df -Pm "$1" | awk 'NR==2 {print $4}'; }
# Data (2x, unless cached) + two tools' repositories (~0.5x each incl. night2)
# + the restored copy for cmp (1x), with some slack.
need=$(( SIZE_MB * 5 / 2 + 500 ))
[[ -f $GENSUM ]] && need=$(( SIZE_MB * 3 / 2 + 500 ))
have=$(avail_mb "$WORK")
(( have >= need )) || die "$WORK has ${have} MB free, about ${need} MB are needed (set BENCH_WORKDIR)"

# ---------------------------------------------------------------- data
if [[ ! -f $GENSUM ]]; then
    log "generating ${SIZE_MB} MB night1 and night2 (seed $SEED) in $DATA"
    rm -f "$N1" "$N2"
    python3 "$ROOT/scripts/gen_dump.py" --size-mb "$SIZE_MB" --seed "$SEED" --manifest "$GENSUM.tmp" "$N1" "$N2" 2>"$WORK/logs/gen-${SIZE_MB}MB.log" \
        || die "generator failed, see $WORK/logs/gen-${SIZE_MB}MB.log"
    mv "$GENSUM.tmp" "$GENSUM"
else
    log "reusing generated data in $DATA"
fi
SIZE1=$(stat -c %s "$N1")
SIZE2=$(stat -c %s "$N2")
read -r GEN_TABLES GEN_TOUCHED GEN_TOUCHED_MB < <(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
print(len(m["tables"]), len(m["touched_tables"]), round(m["touched_bytes"] / 1e6, 1))' "$GENSUM")

ZSTD_RATIO=""
if command -v zstd >/dev/null; then
    zbytes=$(zstd -3 -T1 -c "$N1" | wc -c)
    ZSTD_RATIO=$(awk -v a="$SIZE1" -v b="$zbytes" 'BEGIN {printf "%.2f", a / b}')
fi

# ---------------------------------------------------------------- helpers
now() { echo "$EPOCHREALTIME"; }
du_b() { du -sb "$1" | awk '{print $1}'; }
warm() { cat "$1" >/dev/null; }   # the page cache cannot be dropped: read it once so both tools start warm
loadavg() { cut -d' ' -f1 /proc/loadavg; }
tval() { awk -F': ' -v k="$2" 'index($0, k) {gsub(/^[ \t]+/, "", $2); print $2}' "$1"; }

RESULTS="$WORK/results/results-v2.tsv"
REP=1
[[ -f $RESULTS ]] || printf 'run\trep\tsize_mb\ttool\tlevel\tpack_mib\tphase\tinput_bytes\tseconds\tuser_s\tsys_s\trss_kb\tstored_bytes\tjson_stored_bytes\tload_before\tload_after\n' >"$RESULTS"
RUN_ID=$(date +%Y%m%d-%H%M%S)

# record TOOL LEVEL PACK PHASE INPUT_BYTES T0 T1 TIMEFILE STORED JSON_STORED LOAD0
record() {
    local tool=$1 level=$2 pack=$3 phase=$4 bytes=$5 t0=$6 t1=$7 tf=$8 stored=$9 jstored=${10} l0=${11}
    local secs user sys rss
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    user=$(tval "$tf" "User time (seconds)")
    sys=$(tval "$tf" "System time (seconds)")
    rss=$(tval "$tf" "Maximum resident set size (kbytes)")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$RUN_ID" "$REP" "$SIZE_MB" "$tool" "$level" "$pack" "$phase" "$bytes" "$secs" "$user" "$sys" "$rss" "$stored" "$jstored" "$l0" "$(loadavg)" >>"$RESULTS"
    log "$(printf '#%s %-8s %-9s L%-2s P%-3s %7.1f MB/s  %6.1fs  user %6.1fs sys %5.1fs  rss %6.0f MB  stored %s' \
        "$REP" "$tool" "$phase" "$level" "$pack" "$(awk -v b="$bytes" -v s="$secs" 'BEGIN {print b / 1e6 / s}')" "$secs" "$user" "$sys" "$(awk -v r="$rss" 'BEGIN {print r / 1024}')" "$stored")"
}

# ---------------------------------------------------------------- vaultctl
# vc_setup DIR LEVEL PACK: fresh keys, config, repository and catalog.
vc_setup() {
    local dir=$1 level=$2 pack=$3
    rm -rf "$dir"
    mkdir -p "$dir/repo" "$dir/xdg-config" "$dir/xdg-data"
    local recipient
    recipient=$(vc_env "$dir" "$VAULTCTL" --no-progress -q key generate --output "$dir/identity.txt")
    {
        echo "catalog = \"$dir/catalog.db\""
        [[ -n $level ]] && echo "compression_level = $level"
        [[ -n $pack ]] && echo "pack_size_mib = $pack"
        echo
        echo "[keys]"
        echo "recipients = [\"$recipient\"]"
        echo "identity_file = \"$dir/identity.txt\""
        echo "dedup_key_file = \"$dir/dedup.key\""
        echo
        echo "[[target]]"
        echo "name = \"local\""
        echo "url = \"file://$dir/repo\""
    } >"$dir/config.toml"
    vc_env "$dir" "$VAULTCTL" --config "$dir/config.toml" --no-progress -q init >"$WORK/logs/vaultctl-init.log"
}

# Runs with a clean environment: no VAULTCTL_* overrides, XDG dirs in the work dir.
vc_env() {
    local dir=$1; shift
    env -u VAULTCTL_CONFIG -u VAULTCTL_CATALOG -u VAULTCTL_IDENTITY -u VAULTCTL_IDENTITY_FILE -u VAULTCTL_DEDUP_KEY_FILE \
        XDG_CONFIG_HOME="$dir/xdg-config" XDG_DATA_HOME="$dir/xdg-data" "$@"
}

# vc_phase DIR LEVEL PACK PHASE
vc_phase() {
    local dir=$1 level=$2 pack=$3 phase=$4
    local tag="vaultctl-L${level:-d}-P${pack:-d}-$phase-r$REP"
    local tf="$WORK/logs/$tag.time" out="$WORK/logs/$tag.out" err="$WORK/logs/$tag.err"
    local input bytes before after t0 t1 l0 jstored=""
    case $phase in
        first | identical) input=$N1 ;;
        nextnight | restore) input=$N2 ;;
    esac
    bytes=$(stat -c %s "$input")
    warm "$input"
    before=$(du_b "$dir/repo")
    l0=$(loadavg)
    t0=$(now)
    if [[ $phase == restore ]]; then
        vc_env "$dir" "$TIME" -v -o "$tf" "$VAULTCTL" --config "$dir/config.toml" --no-progress restore bench:latest --stdout >/dev/null 2>"$err" \
            || die "vaultctl restore failed, see $err"
    else
        vc_env "$dir" "$TIME" -v -o "$tf" "$VAULTCTL" --config "$dir/config.toml" --json --no-progress backup command --name bench -- cat "$input" >"$out" 2>"$err" \
            || die "vaultctl backup ($phase) failed, see $err"
        jstored=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["stored_bytes"])' "$out")
    fi
    t1=$(now)
    after=$(du_b "$dir/repo")
    record vaultctl "${level:-3}" "${pack:-16}" "$phase" "$bytes" "$t0" "$t1" "$tf" $((after - before)) "$jstored" "$l0"
}

vc_verify() {
    local dir=$1
    log "vaultctl: checking the restored stream against night2 (untimed)"
    if vc_env "$dir" "$VAULTCTL" --config "$dir/config.toml" --no-progress restore bench:latest --stdout 2>>"$WORK/logs/vaultctl-verify.err" | cmp -s - "$N2"; then
        VERIFY_VC="identical"
    else
        VERIFY_VC="DIFFERENT"
    fi
    log "vaultctl restore: $VERIFY_VC"
}

# ---------------------------------------------------------------- restic
export RESTIC_PASSWORD=bench-password
RS_DIR="$WORK/restic"
rs() { "$RESTIC" -r "$RS_DIR/repo" --cache-dir "$RS_DIR/cache" "$@"; }

rs_setup() {
    rm -rf "$RS_DIR"
    mkdir -p "$RS_DIR"
    rs init --repository-version 2 >"$WORK/logs/restic-init.log" 2>&1 || die "restic init failed, see $WORK/logs/restic-init.log"
}

rs_phase() {
    local phase=$1
    local tf="$WORK/logs/restic-$phase-r$REP.time" out="$WORK/logs/restic-$phase-r$REP.out" err="$WORK/logs/restic-$phase-r$REP.err"
    local input bytes before after t0 t1 l0 jstored=""
    case $phase in
        first | identical) input=$N1 ;;
        nextnight | restore) input=$N2 ;;
    esac
    bytes=$(stat -c %s "$input")
    warm "$input"
    before=$(du_b "$RS_DIR/repo")
    l0=$(loadavg)
    t0=$(now)
    if [[ $phase == restore ]]; then
        "$TIME" -v -o "$tf" "$RESTIC" -r "$RS_DIR/repo" --cache-dir "$RS_DIR/cache" dump latest /dump.sql >/dev/null 2>"$err" \
            || die "restic dump failed, see $err"
    else
        cat "$input" | "$TIME" -v -o "$tf" "$RESTIC" -r "$RS_DIR/repo" --cache-dir "$RS_DIR/cache" backup --quiet --json --stdin --stdin-filename dump.sql >"$out" 2>"$err" \
            || die "restic backup ($phase) failed, see $err"
        # data_added: bytes of new blobs before compression (restic 0.14)
        jstored=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("message_type") == "summary":
        print(m.get("data_added", ""))' "$out")
    fi
    t1=$(now)
    after=$(du_b "$RS_DIR/repo")
    record restic "" "" "$phase" "$bytes" "$t0" "$t1" "$tf" $((after - before)) "$jstored" "$l0"
}

rs_verify() {
    log "restic: checking the restored stream against night2 (untimed)"
    if rs dump latest /dump.sql 2>>"$WORK/logs/restic-verify.err" | cmp -s - "$N2"; then
        VERIFY_RS="identical"
    else
        VERIFY_RS="DIFFERENT"
    fi
    log "restic restore: $VERIFY_RS"
}

# ---------------------------------------------------------------- main run
VERIFY_VC="not checked"
VERIFY_RS="not checked"
VC_DIR="$WORK/vaultctl"
LOAD_START=$(cat /proc/loadavg)
log "night1 $SIZE1 bytes, night2 $SIZE2 bytes; tools: $TOOLS; load average: $LOAD_START"
# Pipe ceiling: how fast a stream can go through a pipe here at all.
t0=$(now); cat "$N1" | cat >/dev/null; t1=$(now)
PIPE_MBS=$(awk -v b="$SIZE1" -v a="$t0" -v c="$t1" 'BEGIN {printf "%.0f", b / 1e6 / (c - a)}')
for ((REP = 1; REP <= REPEAT; REP++)); do
    log "repetition $REP of $REPEAT"
    [[ " $TOOLS " == *" vaultctl "* ]] && vc_setup "$VC_DIR" "$LEVEL" "$PACK"
    [[ " $TOOLS " == *" restic "* ]] && rs_setup
    # Phases are interleaved (vaultctl, then restic, per phase) so that load
    # from other processes on the machine hits both tools alike.
    for phase in $PHASES; do
        [[ " $TOOLS " == *" vaultctl "* ]] && vc_phase "$VC_DIR" "$LEVEL" "$PACK" "$phase"
        [[ " $TOOLS " == *" restic "* ]] && rs_phase "$phase"
    done
done
REP=$REPEAT
if [[ $VERIFY == 1 ]]; then
    [[ " $TOOLS " == *" vaultctl "* ]] && vc_verify "$VC_DIR"
    [[ " $TOOLS " == *" restic "* ]] && rs_verify
fi
VC_REPO_TOTAL=""; RS_REPO_TOTAL=""
[[ -d $VC_DIR/repo ]] && [[ " $TOOLS " == *" vaultctl "* ]] && VC_REPO_TOTAL=$(du_b "$VC_DIR/repo")
[[ -d $RS_DIR/repo ]] && [[ " $TOOLS " == *" restic "* ]] && RS_REPO_TOTAL=$(du_b "$RS_DIR/repo")
LOAD_END=$(cat /proc/loadavg)

# ---------------------------------------------------------------- sweep
for pair in $SWEEP; do
    lv=${pair%%:*}; pk=${pair##*:}
    log "sweep: vaultctl compression_level=$lv pack_size_mib=$pk"
    for ((REP = 1; REP <= SWEEP_REPEAT; REP++)); do
        vc_setup "$WORK/vaultctl-sweep" "$lv" "$pk"
        for phase in $PHASES; do
            vc_phase "$WORK/vaultctl-sweep" "$lv" "$pk" "$phase"
        done
    done
    rm -rf "$WORK/vaultctl-sweep"
done

# ---------------------------------------------------------------- report
echo
echo "== vaultctl vs restic: ${SIZE_MB} MB pg_dump-like stream (seed $SEED) =="
echo "night1: $SIZE1 bytes, night2: $SIZE2 bytes; $GEN_TABLES tables, $GEN_TOUCHED touched ($GEN_TOUCHED_MB MB of table data); zstd -3 ratio of night1: ${ZSTD_RATIO:-n/a}"
echo "vaultctl: $("$VAULTCTL" --version 2>/dev/null || echo '?') from ${VAULTCTL_SRC:-?} (compression_level ${LEVEL:-3 (default)}, pack_size_mib ${PACK:-16 (default)}); restic: $("$RESTIC" version 2>/dev/null | awk '{print $2}') (repository version 2, compression auto)"
echo "machine: $(nproc) CPUs; load average at start: $LOAD_START; at end: $LOAD_END; pipe ceiling (cat | cat): ${PIPE_MBS:-?} MB/s"
echo "repetitions: $REPEAT (table: median MB/s and stored bytes, highest peak RSS); sweep: $SWEEP_REPEAT per setting"
echo "note: timings are noisy when other work runs on the machine (load average above);"
echo "      MB/s is input bytes / wall time, MB = 10^6 bytes; stored = growth of the repository directory (du -sb)."
echo

python3 - "$RESULTS" "$RUN_ID" "$SIZE_MB" "${LEVEL:-3}" "${PACK:-16}" "$VERIFY_VC" "$VERIFY_RS" "${VC_REPO_TOTAL:-}" "${RS_REPO_TOTAL:-}" "$REPEAT" <<'PY'
import csv, statistics, sys
path, run, size, level, pack, vvc, vrs, vtot, rtot, nrep = sys.argv[1:11]
nrep = int(nrep)
rows = [r for r in csv.DictReader(open(path), delimiter="\t") if r["run"] == run]
groups_main = {}
groups_sweep = {}
seen_main = set()
for r in rows:
    key = (r["tool"], r["phase"])
    if r["tool"] == "restic":
        groups_main.setdefault(key, []).append(r)
    elif r["level"] == level and r["pack_mib"] == pack and (key, r["rep"]) not in seen_main and len(groups_main.get(key, [])) < nrep:
        seen_main.add((key, r["rep"]))
        groups_main.setdefault(key, []).append(r)
    else:
        groups_sweep.setdefault((r["level"], r["pack_mib"]), {}).setdefault(r["phase"], []).append(r)

def combine(rs):
    """Median of time, CPU and stored bytes; highest RSS; the spread of MB/s."""
    out = dict(rs[0])
    secs = sorted(float(r["seconds"]) for r in rs)
    out["seconds"] = statistics.median(secs)
    for k in ("user_s", "sys_s"):
        out[k] = statistics.median(float(r[k]) for r in rs)
    for k in ("stored_bytes", "json_stored_bytes"):
        vals = [int(r[k]) for r in rs if r[k] != ""]
        out[k] = str(int(statistics.median(vals))) if vals else ""
    out["rss_kb"] = str(max(int(r["rss_kb"]) for r in rs))
    b = int(rs[0]["input_bytes"]) / 1e6
    out["spread"] = "%.0f-%.0f" % (b / secs[-1], b / secs[0]) if len(rs) > 1 else ""
    out["n"] = len(rs)
    return out

main = {k: combine(v) for k, v in groups_main.items()}
sweep = {k: {p: combine(v) for p, v in ph.items()} for k, ph in groups_sweep.items()}

def mbs(r):
    return int(r["input_bytes"]) / 1e6 / float(r["seconds"]) if r else None

def f(v, fmt):
    return "-" if v is None else fmt % v

def mb(b):
    return "-" if b in (None, "") else "%.1f MB" % (int(b) / 1e6)

phases = ["first", "identical", "nextnight", "restore"]
labels = {"first": "1 first backup", "identical": "2 identical re-backup", "nextnight": "3 next-night backup", "restore": "4 restore"}
hdr = ["phase", "vaultctl MB/s", "restic MB/s", "ratio", "vaultctl stored", "restic stored", "vaultctl peak RSS", "restic peak RSS"]
table = []
for p in phases:
    v, r = main.get(("vaultctl", p)), main.get(("restic", p))
    a, b = mbs(v), mbs(r)
    ratio = a / b if a and b else None
    vs = mb(v["stored_bytes"]) if v and p != "restore" else "-"
    rs = mb(r["stored_bytes"]) if r and p != "restore" else "-"
    table.append([labels[p], f(a, "%.1f"), f(b, "%.1f"), f(ratio, "%.2fx"), vs, rs,
                  f(int(v["rss_kb"]) / 1024 if v else None, "%.0f MB"), f(int(r["rss_kb"]) / 1024 if r else None, "%.0f MB")])

def show(hdr, table):
    w = [max(len(str(x)) for x in col) for col in zip(hdr, *table)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(n) for c, n in zip(cells, w)) + " |"
    print(line(hdr))
    print("|" + "|".join("-" * (n + 2) for n in w) + "|")
    for t in table:
        print(line(t))

show(hdr, table)
print()

# CPU time per phase.
hdr2 = ["phase", "vaultctl wall", "vaultctl user+sys", "vaultctl CPU %", "vaultctl MB/s range", "restic wall", "restic user+sys", "restic CPU %", "restic MB/s range", "vaultctl JSON stored_bytes", "restic data_added (uncompressed)"]
t2 = []
for p in phases:
    cells = [labels[p]]
    for tool in ("vaultctl", "restic"):
        r = main.get((tool, p))
        if r:
            cpu = float(r["user_s"]) + float(r["sys_s"])
            cells += ["%.1fs" % float(r["seconds"]), "%.1f+%.1fs" % (float(r["user_s"]), float(r["sys_s"])), "%.0f%%" % (100 * cpu / float(r["seconds"])), r["spread"] or "-"]
        else:
            cells += ["-", "-", "-", "-"]
    v, r = main.get(("vaultctl", p)), main.get(("restic", p))
    cells.append(mb(v["json_stored_bytes"]) if v and v["json_stored_bytes"] else "-")
    cells.append(mb(r["json_stored_bytes"]) if r and r["json_stored_bytes"] else "-")
    t2.append(cells)
show(hdr2, t2)
print()
print("restored stream equals night2: vaultctl %s, restic %s" % (vvc, vrs))
if vtot or rtot:
    print("repository size at the end: vaultctl %s, restic %s" % (mb(vtot or None), mb(rtot or None)))
print()

# Targets.
def get(tool, p):
    return main.get((tool, p))

def check(name, ok, detail):
    if ok is None:
        print("  n/a   %s (%s)" % (name, detail))
    else:
        print("  %s  %s (%s)" % ("PASS" if ok else "MISS", name, detail))

print("targets (vaultctl / restic):")
v, r = get("vaultctl", "first"), get("restic", "first")
if v and r:
    ratio = mbs(v) / mbs(r)
    check("first backup >= 1.5x MB/s", ratio >= 1.5, "%.2fx" % ratio)
    s = int(v["stored_bytes"]) / int(r["stored_bytes"])
    check("first backup stored bytes <= restic", s <= 1.0, "%.3fx: %s vs %s" % (s, mb(v["stored_bytes"]), mb(r["stored_bytes"])))
v, r = get("vaultctl", "identical"), get("restic", "identical")
if v and r:
    ratio = mbs(v) / mbs(r)
    check("identical re-backup >= 2x MB/s", ratio >= 2.0, "%.2fx" % ratio)
v, r = get("vaultctl", "nextnight"), get("restic", "nextnight")
if v and r:
    s = int(v["stored_bytes"]) / max(1, int(r["stored_bytes"]))
    check("next-night new stored bytes <= 0.6x", s <= 0.6, "%.3fx: %s vs %s" % (s, mb(v["stored_bytes"]), mb(r["stored_bytes"])))
v, r = get("vaultctl", "restore"), get("restic", "restore")
if v and r:
    ratio = mbs(v) / mbs(r)
    check("restore >= 1.5x MB/s", ratio >= 1.5, "%.2fx" % ratio)
for p in phases:
    v, r = get("vaultctl", p), get("restic", p)
    if v and r:
        a, b = int(v["rss_kb"]), int(r["rss_kb"])
        check("peak RSS <= restic, %s" % labels[p][2:], a <= b, "%.0f MB vs %.0f MB" % (a / 1024, b / 1024))
print("  (%s; exit status is 0 whatever the outcome)" % ("medians of %d repetitions, highest peak RSS" % nrep if nrep > 1 else "one repetition"))

if sweep:
    print()
    print("== vaultctl settings sweep (same data, fresh repository each) ==")
    hdr3 = ["level", "pack MiB", "first MB/s", "first stored", "identical MB/s", "next-night MB/s", "next-night stored", "restore MB/s", "max peak RSS", "first user+sys"]
    t3 = []
    allv = dict(sweep)
    base = {p: main[("vaultctl", p)] for p in phases if ("vaultctl", p) in main}
    if base:
        allv = {(level, pack): base, **sweep}
    for (lv, pk), ph in sorted(allv.items(), key=lambda kv: (int(kv[0][0]), int(kv[0][1]))):
        g = lambda p: ph.get(p)
        t3.append([lv, pk, f(mbs(g("first")), "%.1f"), mb(g("first")["stored_bytes"]) if g("first") else "-",
                   f(mbs(g("identical")), "%.1f"), f(mbs(g("nextnight")), "%.1f"),
                   mb(g("nextnight")["stored_bytes"]) if g("nextnight") else "-", f(mbs(g("restore")), "%.1f"),
                   "%.0f MB" % (max(int(x["rss_kb"]) for x in ph.values()) / 1024),
                   "%.1f+%.1fs" % (float(g("first")["user_s"]), float(g("first")["sys_s"])) if g("first") else "-"])
    show(hdr3, t3)
PY

# Peak RSS by input size, over every run recorded in the results file
# (latest run per size and tool, default vaultctl settings).
python3 - "$RESULTS" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t")
        if r["tool"] == "restic" or (r["level"], r["pack_mib"]) == ("3", "16")]
last_run = {}
for r in rows:
    last_run[(r["size_mb"], r["tool"])] = max(last_run.get((r["size_mb"], r["tool"]), ""), r["run"])
latest = {}
for r in rows:
    if r["run"] == last_run[(r["size_mb"], r["tool"])]:
        k = (r["size_mb"], r["tool"], r["phase"])
        if k not in latest or int(r["rss_kb"]) > int(latest[k]["rss_kb"]):
            latest[k] = r
sizes = sorted({k[0] for k in latest}, key=int)
if len(sizes) < 2:
    print("\n(peak RSS by input size: only %s MB measured so far; run again with a larger BENCH_SIZE_MB to compare)" % ", ".join(sizes))
    sys.exit(0)
print("\n== peak RSS by input size (latest run of each size, highest of its repetitions; vaultctl at level 3, 16 MiB packs) ==")
phases = ["first", "identical", "nextnight", "restore"]
print("| size MB | " + " | ".join("%s %s" % (t, p) for t in ("vaultctl", "restic") for p in phases) + " |")
for s in sizes:
    cells = []
    for t in ("vaultctl", "restic"):
        for p in phases:
            r = latest.get((s, t, p))
            cells.append("%.0f MB" % (int(r["rss_kb"]) / 1024) if r else "-")
    print("| %s | %s |" % (s, " | ".join(cells)))
PY

if [[ $KEEP != 1 ]]; then
    rm -rf "$VC_DIR" "$RS_DIR"
fi
echo
echo "results appended to $RESULTS; logs in $WORK/logs; generated data kept in $DATA"
exit 0
