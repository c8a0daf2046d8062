#!/usr/bin/env bash
# Scale benchmark: memory and time of vaultctl on a repository with millions
# of blobs and ten thousand manifests.
#
# Usage: scripts/bench-scale.sh [BLOBS...]        (default: 1000000 4000000)
#
# For each BLOBS count, builds a fresh synthetic repository in the real format
# (examples/synth_repo.rs, i.e. vaultctl::repo::synth: BLOBS tiny blobs,
# BLOBS/SCALE_BLOBS_PER_PACK packs with one index object each, SCALE_MANIFESTS
# nightly backups of SCALE_SOURCES sources; each backup references its own run
# of blobs and its source's previous night's) on target `a` of a repository
# with two local targets (`b` initialised and empty), then measures peak RSS
# (/usr/bin/time -v: maximum resident set size) and wall time of:
#
#   rebuild    catalog rebuild --target a  (empty catalog: every index and manifest)
#   list       list
#   verify     verify --target a  (structure)
#   readdata   verify --target a --sample 1  (reads 1 % of the packs)
#   sync       sync --from a --to b  (b empty)
#   backup     backup of a 32 MB command output that dedups (its second run;
#              the catalog's dedup index holds every blob)
#   prune      prune --target a  (keep_last: half of every source's backups expire)
#
# A baseline round (SCALE_BASE_BLOBS blobs, SCALE_BASE_MANIFESTS manifests)
# gives each operation's fixed cost; the table prints bytes of RSS per indexed
# blob above it: (RSS - RSS at baseline) / (BLOBS - base blobs).
# It is a measurement, not a test: it exits 0 whatever the figures.
#
# Environment:
#   SCALE_MANIFESTS        manifests (default 10000)
#   SCALE_SOURCES          sources (default 30)
#   SCALE_BLOBS_PER_PACK   blobs per pack (default 10000)
#   SCALE_BASE_BLOBS       blobs of the baseline round (default 20000)
#   SCALE_BASE_MANIFESTS   manifests of the baseline round (default 200)
#   SCALE_WORKDIR          work dir (default /tmp/vaultctl-scale; recreated per round)
#   SCALE_OPS              operations to run (default: all, in the order above)
#   SCALE_LABEL            label of this run in WORKDIR/results.tsv (default: git HEAD)
#   VAULTCTL               binary (default: target/release/vaultctl)
#   SYNTH                  generator (default: target/release/examples/synth_repo)

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MANIFESTS=${SCALE_MANIFESTS:-10000}
SOURCES=${SCALE_SOURCES:-30}
PER_PACK=${SCALE_BLOBS_PER_PACK:-10000}
BASE_BLOBS=${SCALE_BASE_BLOBS:-20000}
BASE_MANIFESTS=${SCALE_BASE_MANIFESTS:-200}
WORK=${SCALE_WORKDIR:-/tmp/vaultctl-scale}
OPS=${SCALE_OPS:-"rebuild list verify readdata sync backup prune"}
LABEL=${SCALE_LABEL:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}
VAULTCTL=${VAULTCTL:-$ROOT/target/release/vaultctl}
SYNTH=${SYNTH:-$ROOT/target/release/examples/synth_repo}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000 4000000)

if [ ! -x "$VAULTCTL" ] || [ ! -x "$SYNTH" ]; then
    (cd "$ROOT" && cargo build --release --bin vaultctl --example synth_repo)
fi
[ -x /usr/bin/time ] || { echo "bench-scale: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }

mkdir -p "$WORK"
RESULTS=$WORK/results.tsv
declare -A RSS SECS

# round NAME BLOBS MANIFESTS: builds a repository and measures every operation.
round() {
    local name=$1 blobs=$2 manifests=$3
    local dir=$WORK/$name
    rm -rf "$dir"
    mkdir -p "$dir"
    local v="$VAULTCTL --config $dir/config.toml"
    local recipient
    recipient=$($VAULTCTL key generate --output "$dir/id.txt" 2>/dev/null)
    head -c 32000000 /dev/urandom > "$dir/data.bin"
    cat > "$dir/config.toml" <<CFG
catalog = "$dir/catalog.db"

[keys]
identity_file = "$dir/id.txt"
recipients = ["$recipient"]
dedup_key_file = "$dir/dedup.key"

[[target]]
name = "a"
url = "file://$dir/a"

[target.retention]
keep_last = $(( manifests / SOURCES / 2 ))

[[target]]
name = "b"
url = "file://$dir/b"

[[source]]
name = "dedup"
kind = "command"
command = ["cat", "$dir/data.bin"]
format = "stream"
CFG
    $v init > /dev/null 2>&1
    local t0=$SECONDS
    "$SYNTH" "$dir/config.toml" a "$blobs" $(( (blobs + PER_PACK - 1) / PER_PACK )) "$manifests" "$SOURCES"
    echo "  (built in $((SECONDS - t0)) s)"
    for op in $OPS; do
        local args
        case $op in
            rebuild) args="catalog rebuild --target a" ;;
            list) args="list" ;;
            verify) args="verify --target a" ;;
            readdata) args="verify --target a --sample 1" ;;
            sync) args="sync --from a --to b" ;;
            backup) $v backup dedup > /dev/null 2>&1 || true; args="backup dedup" ;;
            prune) args="prune --target a" ;;
            *) echo "unknown operation $op" >&2; exit 2 ;;
        esac
        local rc=0
        /usr/bin/time -f "%M %e" -o "$dir/time.$op" $v $args > "$dir/out.$op" 2> "$dir/err.$op" || rc=$?
        read -r kb secs < <(tail -1 "$dir/time.$op")
        RSS[$name.$op]=$((kb * 1024))
        SECS[$name.$op]=$secs
        printf '  %-9s rc=%-2s %8.1f MB %8ss\n' "$op" "$rc" "$(echo "$kb / 1024" | bc -l)" "$secs"
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
            sed 's/^/    /' "$dir/err.$op" | tail -5
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$LABEL" "$blobs" "$manifests" "$op" "$((kb * 1024))" "$secs" >> "$RESULTS"
    done
    # Keep only the repository of the last round (disk space).
    rm -rf "$dir/a" "$dir/b"
}

echo "baseline: $BASE_BLOBS blobs, $BASE_MANIFESTS manifests"
round base "$BASE_BLOBS" "$BASE_MANIFESTS"
for n in "${SIZES[@]}"; do
    echo "round: $n blobs, $MANIFESTS manifests, $SOURCES sources, $PER_PACK blobs per pack"
    round "n$n" "$n" "$MANIFESTS"
done

echo
echo "Peak RSS (MB), time (s) and bytes of RSS per indexed blob above the baseline ($LABEL, $(nproc) cores):"
printf '%-9s' op
for n in "${SIZES[@]}"; do printf ' | %10s %7s %7s' "RSS@$n" "s" "B/blob"; done
echo
for op in $OPS; do
    printf '%-9s' "$op"
    for n in "${SIZES[@]}"; do
        rss=${RSS[n$n.$op]} base=${RSS[base.$op]}
        printf ' | %10.1f %7s %7.1f' "$(echo "$rss / 1048576" | bc -l)" "${SECS[n$n.$op]}" \
            "$(echo "($rss - $base) / ($n - $BASE_BLOBS)" | bc -l)"
    done
    echo
done
