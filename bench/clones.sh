#!/usr/bin/env bash
# dedisk clones benchmark: the golden-image targets of the snapshots issue, measured in one run and printed as one
# table (figure, value, target, PASS/MISS). Not part of the tests.
#
#   1. a pool, a volume the image's size, the image written with nbdcopy into the served volume, a snapshot of it
#      (gold@img), `dedisk gc`; pool size (du -sb) = the baseline
#   2. CLONES_BENCH_CLONES (100) clones of gold@img, each through the running server's control endpoint (what
#      `dedisk clone` calls, without a JVM start per call): time of each (median, max), pool growth per clone
#   3. boot-style reads: the image read whole (nbdcopy to null, holes skipped as a booting guest never reads them)
#      from 10 clones at once vs from the parent snapshot 10 times at once, same run, alternated, medians of
#      CLONES_BENCH_READ_ROUNDS (2)
#   4. 64 MiB of fresh (random) data written into each of 10 clones, those 10 deleted, `dedisk gc`: pool size vs
#      the baseline
#
#   bench/clones.sh                       # base.img of bench/run.sh's image set (BENCH_ONLY=images bench/run.sh)
#   CLONES_BENCH_IMAGE=/path/raw.img bench/clones.sh
#
# Environment (all optional):
#   CLONES_BENCH_IMAGE=bench/out/images/base.img   raw image to import
#   CLONES_BENCH_CLONES=100   clones to create
#   CLONES_BENCH_READ_ROUNDS=2
#   CLONES_BENCH_ONLY=create  stop after part 2 (clone create times and pool growth), e.g. for before/after rounds
#   CLONES_BENCH_WRITE_LOAD=1 part 2 again while fio writes fresh random 4 KiB blocks (iodepth 16) into a 64 GiB
#                             volume of the same server, so checkpoints (dirty pages past half the metadata cache)
#                             run during the clone creates: their time under load
#   CLONES_BENCH_PORT         loopback NBD port (default: a free one)
#   CLONES_BENCH_OUT=bench/out/clones   pool, logs and results
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DEDISK_ROOT"

help_from_header "${BASH_SOURCE[0]}" "$@"

IMAGE="${CLONES_BENCH_IMAGE:-$DEDISK_ROOT/bench/out/images/base.img}"
CLONES="${CLONES_BENCH_CLONES:-100}"
ROUNDS="${CLONES_BENCH_READ_ROUNDS:-2}"
ONLY="${CLONES_BENCH_ONLY:-}"
WRITE_LOAD="${CLONES_BENCH_WRITE_LOAD:-}"
[[ -z "$ONLY" || "$ONLY" == create ]] || die "CLONES_BENCH_ONLY must be empty or 'create', found '$ONLY'"
PORT="${CLONES_BENCH_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
OUT="${CLONES_BENCH_OUT:-$DEDISK_ROOT/bench/out/clones}"
[[ -f "$IMAGE" ]] || die "no image at $IMAGE: build the image set with 'BENCH_ONLY=images bench/run.sh' or set CLONES_BENCH_IMAGE"
for t in nbdcopy curl; do command -v "$t" >/dev/null || die "$t is needed"; done
((CLONES >= 10)) || die "CLONES_BENCH_CLONES must be at least 10 (the read and write parts use 10 clones)"

POOL="$OUT/pool"
RUN="$OUT/results/$(date +%Y%m%d-%H%M%S)"
ROWS="$RUN/rows.tsv"
mkdir -p "$RUN"
rm -rf "$POOL"
: >"$ROWS"

SERVER_PID=""
trap stop_background_server EXIT
trap 'exit 130' INT TERM

row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$ROWS"; } # figure, value, target, verdict
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
pool_bytes() { du -sb "$POOL" | cut -f1; }
segment_bytes() { du -sb "$POOL/segments" | cut -f1; }
# Waits until the pool's size stops changing (two equal readings 1 s apart; at most 30 s), then prints it.
settled_pool_bytes() {
    local before after i
    before=$(pool_bytes)
    for ((i = 0; i < 30; i++)); do
        sleep 1
        after=$(pool_bytes)
        [[ "$after" == "$before" ]] && break
        before=$after
    done
    echo "$after"
}
uri() { echo "nbd://127.0.0.1:$PORT/$1"; }
now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
control() { # curl ARGS... PATH: a POST to the server's control endpoint with its token (docs/format.md, control file)
    local path="${*: -1}"
    curl -sS -f -X POST -H "X-Dedisk-Token: $CONTROL_TOKEN" "${@:1:$#-1}" "http://$CONTROL/$path"
}
op() { # OP QUERY: one pool operation through the server's control endpoint; prints its time in seconds
    local t
    t=$(control -o "$RUN/op.out" -w '%{time_total}' "$1?$2") || { cat "$RUN/op.out" >&2; die "control $1 failed"; }
    echo "$t"
}

size=$(stat -c %s "$IMAGE")
vsize=$(((size + 4095) / 4096 * 4096))
log "1/4 importing $(basename "$IMAGE") ($((size >> 20)) MiB) with nbdcopy into a served volume..."
./dedisk create --pool "$POOL" >"$RUN/cli.log"
./dedisk volume create --pool "$POOL" gold --size "$vsize" >>"$RUN/cli.log"
./dedisk serve --pool "$POOL" --listen "127.0.0.1:$PORT" >"$RUN/server.log" 2>&1 &
SERVER_PID=$!
for ((i = 0; i < 600; i++)); do
    [[ -s "$POOL/control" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail "$RUN/server.log" >&2; die "server exited"; }
    sleep 0.2
done
read -r CONTROL CONTROL_TOKEN <"$POOL/control"
t0=$(now)
nbdcopy --flush "$IMAGE" "$(uri gold)"
t1=$(now)
row "import (nbdcopy into a served volume)" "$(awk "BEGIN { printf \"%.1f s, %.0f MiB/s\", $t1 - $t0, $size / 1048576 / ($t1 - $t0) }")" "-" "-"
op snapshot/create "volume=gold&snapshot=img" >/dev/null
op gc "" >/dev/null
# The baseline is the settled pool: the background cleaner may still be taking garbage a gc left (measured with the
# gc that moved every segment: 0.7 MB of segments went in the 3 s after it), which counted as negative growth.
settled_pool_bytes >/dev/null
base=$(pool_bytes)
base_segments=$(segment_bytes)
row "pool after import + snapshot + gc" "$base bytes (segments $base_segments)" "-" "-"

log "2/4 creating $CLONES clones..."
: >"$RUN/clone-times"
for ((i = 0; i < CLONES; i++)); do
    op clone "snapshot=gold%40img&name=vm$i" >>"$RUN/clone-times"
done
t_cli0=$(now)
./dedisk clone --pool "$POOL" gold@img vm-cli >>"$RUN/cli.log"
t_cli1=$(now)
grown=$(($(pool_bytes) - base))
med=$(median <"$RUN/clone-times")
max=$(sort -g "$RUN/clone-times" | tail -n 1)
p95=$(sort -g "$RUN/clone-times" | awk '{ v[NR] = $1 } END { print v[int(NR * 0.95)] }')
row "clone create, median (control endpoint)" "$(awk "BEGIN { printf \"%.1f ms\", $med * 1000 }")" "< 50 ms" "$(verdict "$med < 0.05")"
row "clone create, 95th percentile" "$(awk "BEGIN { printf \"%.1f ms\", $p95 * 1000 }")" "< 50 ms" "$(verdict "$p95 < 0.05")"
row "clone create, max of $CLONES" "$(awk "BEGIN { printf \"%.1f ms\", $max * 1000 }")" "< 50 ms" "$(verdict "$max < 0.05")"
row "dedisk clone (CLI, JVM start included)" "$(awk "BEGIN { printf \"%.2f s\", $t_cli1 - $t_cli0 }")" "-" "-"
row "pool growth per clone" "$((grown / (CLONES + 1))) bytes" "< 65536" "$(verdict "$grown / ($CLONES + 1) < 65536")"
row "load (uptime) after the clones" "$(uptime | sed 's/.*load average: //')" "-" "-"
if [[ -n "$WRITE_LOAD" ]]; then
    log "2/4 again while fio writes random 4 KiB blocks into another volume..."
    command -v fio >/dev/null || die "fio is needed for CLONES_BENCH_WRITE_LOAD"
    op volume/create "name=load&size=64G" >/dev/null
    fio --name=load --ioengine=nbd --uri="$(uri load)" --rw=randwrite --bs=4k --iodepth=16 --size=64G --time_based --runtime=600 \
        --refill_buffers --randrepeat=0 --output-format=json --output="$RUN/fio-load.json" >"$RUN/fio-load.log" 2>&1 &
    FIO_PID=$!
    sleep 5 # the dirty pages build up to the first checkpoint
    ck0=$(control "stats?json=true" | python3 -c 'import json, sys; print(json.load(sys.stdin)["log"]["checkpoints"])')
    : >"$RUN/clone-times-load"
    for ((i = 0; i < CLONES; i++)); do
        op clone "snapshot=gold%40img&name=vml$i" >>"$RUN/clone-times-load"
    done
    ck1=$(control "stats?json=true" | python3 -c 'import json, sys; print(json.load(sys.stdin)["log"]["checkpoints"])')
    kill -INT "$FIO_PID" 2>/dev/null || true
    wait "$FIO_PID" || true
    for ((i = 0; i < CLONES; i++)); do op volume/delete "name=vml$i" >/dev/null; done
    op volume/delete "name=load" >/dev/null
    lmed=$(median <"$RUN/clone-times-load")
    lmax=$(sort -g "$RUN/clone-times-load" | tail -n 1)
    lp95=$(sort -g "$RUN/clone-times-load" | awk '{ v[NR] = $1 } END { print v[int(NR * 0.95)] }')
    # fio prints its "terminating on signal" line into the JSON file first
    wmb=$(python3 -c 'import json, sys; t = open(sys.argv[1]).read(); j = json.loads(t[t.index("{"):]); print("%.1f" % (sum(x["write"]["bw_bytes"] for x in j["jobs"]) / 1048576))' "$RUN/fio-load.json" 2>/dev/null || echo "?")
    row "under write load: checkpoints during the clones" "$((ck1 - ck0)) (fio randwrite $wmb MiB/s)" "-" "-"
    row "under write load: clone create, median" "$(awk "BEGIN { printf \"%.1f ms\", $lmed * 1000 }")" "< 50 ms" "$(verdict "$lmed < 0.05")"
    row "under write load: clone create, 95th pct" "$(awk "BEGIN { printf \"%.1f ms\", $lp95 * 1000 }")" "< 50 ms" "$(verdict "$lp95 < 0.05")"
    row "under write load: clone create, max" "$(awk "BEGIN { printf \"%.1f ms\", $lmax * 1000 }")" "< 50 ms" "$(verdict "$lmax < 0.05")"
    row "load (uptime) after the clones under load" "$(uptime | sed 's/.*load average: //')" "-" "-"
fi
print_rows() {
    printf '\n%-48s %-36s %-26s %s\n' FIGURE VALUE TARGET VERDICT
    while IFS=$'\t' read -r f v t d; do printf '%-48s %-36s %-26s %s\n' "$f" "$v" "$t" "$d"; done <"$ROWS"
    printf '\n(results in %s)\n' "$RUN"
}
if [[ "$ONLY" == create ]]; then
    stop_background_server
    print_rows
    exit 0
fi

log "3/4 boot-style reads: 10 clones at once vs the parent 10 times at once..."
read_all() { # NAME...: nbdcopy each export to null, all at once; prints the wall time
    local a b n
    a=$(now)
    for n in "$@"; do nbdcopy "$(uri "$n")" null: & done
    wait_readers
    b=$(now)
    awk "BEGIN { print $b - $a }"
}
wait_readers() { local p; for p in $(jobs -p); do [[ "$p" == "$SERVER_PID" ]] || wait "$p"; done; }
: >"$RUN/read-parent"
: >"$RUN/read-clones"
parents=()
clones=()
for ((i = 0; i < 10; i++)); do parents+=(gold@img); clones+=("vm$i"); done
for ((r = 0; r < ROUNDS; r++)); do
    read_all "${parents[@]}" >>"$RUN/read-parent"
    read_all "${clones[@]}" >>"$RUN/read-clones"
done
rp=$(median <"$RUN/read-parent")
rc=$(median <"$RUN/read-clones")
row "10 readers of the parent snapshot, wall" "$(awk "BEGIN { printf \"%.1f s (%.0f MiB/s)\", $rp, 10 * $size / 1048576 / $rp }")" "-" "-"
row "10 readers of 10 clones, wall" "$(awk "BEGIN { printf \"%.1f s (%.0f MiB/s)\", $rc, 10 * $size / 1048576 / $rc }")" "within 10 % of the parent" \
    "$(verdict "$rc <= $rp * 1.10")"

log "4/4 64 MiB of fresh data into each of 10 clones, delete them, gc..."
for ((i = 0; i < 10; i++)); do
    head -c $((64 << 20)) /dev/urandom >"$RUN/fresh" # different data per clone: nothing dedups

    nbdcopy --flush "$RUN/fresh" "$(uri "vm$i")"
done
rm -f "$RUN/fresh"
written=$(pool_bytes)
for ((i = 0; i < 10; i++)); do op volume/delete "name=vm$i" >/dev/null; done
settled() { # LABEL: the pool's size, its segments' and its index's, against the baseline
    local total segs
    total=$(pool_bytes)
    segs=$(segment_bytes)
    row "pool $1" "$total bytes ($(awk "BEGIN { printf \"%+.2f %%\", ($total - $base) * 100 / $base }"))" \
        "within 2 % of the baseline" "$(verdict "($total - $base) * 100 / $base <= 2 && ($base - $total) * 100 / $base <= 2")"
    row "  of which segments" "$segs bytes ($(awk "BEGIN { printf \"%+.2f %%\", ($segs - $base_segments) * 100 / $base_segments }"))" \
        "within 2 % of the baseline" "$(verdict "($segs - $base_segments) * 100 / $base_segments <= 2 && ($base_segments - $segs) * 100 / $base_segments <= 2")"
    row "  of which the dedup index" "$(du -sb "$POOL/index" | cut -f1) bytes" "-" "-"
}
op gc "" >/dev/null
row "pool with 10 x 64 MiB written into clones" "$written bytes" "-" "-"
settled "after deleting those 10 clones + gc"
# The server's own cleaner starts on the deleted clones' garbage as soon as they are gone and may race the gc's
# two checkpoints (a segment it cleans then needs one checkpoint more to go): a second gc shows the settled size.
op gc "" >/dev/null
settled "after a second gc"
op volume/list "" >/dev/null
cp "$RUN/op.out" "$RUN/volume-list.txt"
stop_background_server
if ./dedisk check --pool "$POOL" >"$RUN/check.txt" 2>&1; then row "dedisk check after the run" "consistent" "consistent" PASS; else row "dedisk check after the run" "PROBLEMS (see $RUN/check.txt)" "consistent" MISS; fi

print_rows
