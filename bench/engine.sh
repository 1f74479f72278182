#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called indirectly (traps, "part_$p")
# dedisk engine-v2 benchmark: the targets of the engine-v2 issue, measured in one run and printed as one table
# (figure, value, target, PASS/MISS). Not part of the tests. Parts:
#
#   churn    a pool (default 16M segments), a 1 GiB volume filled (fio write bs=1M), then 6 GiB of random
#            overwrites of fresh data (half 4 KiB, half 64 KiB blocks: two concurrent fio jobs, iodepth 32) with
#            the background cleaner running; pool size on disk (du -sb of the pool dir) when the writes end and
#            after `dedisk gc`, the peak during the churn, the cleaner's write amplification; every block read
#            back and checked (fio crc32c headers in every 4 KiB) at the end
#   memory   a pool with --index-memory 16M served with -Xmx192m -XX:MaxDirectMemorySize=128m; fio writes
#            ENGINE_BENCH_UNIQUE (24G) of unique data into a volume of that size and reads it all back, checked;
#            server RSS at 2 GiB written and at the end (growth), VmHWM
#   restart  on the memory part's pool: kill -9 (under a 4 KiB write load, then idle) and time until the export
#            answers nbdinfo again; clean stop (SIGTERM) and restart time; then every block read back and checked
#
# The VM-image space and speed figures are bench/run.sh's (bench/README.md).
#
#   bench/engine.sh                       # everything (~30 min on 2 shared vCPUs)
#   ENGINE_BENCH_UNIQUE=4G bench/engine.sh  # a quick run
#
# Environment (all optional):
#   ENGINE_BENCH_PARTS="churn memory restart"  which parts (restart needs memory in the same run)
#   ENGINE_BENCH_CHURN_VOLUME=1G   churn volume size (filled once)
#   ENGINE_BENCH_CHURN=6G          bytes of random overwrites (half 4 KiB, half 64 KiB)
#   ENGINE_BENCH_SETTLE=30         seconds the churn pool is left to the background cleaner before `dedisk gc`
#   ENGINE_BENCH_UNIQUE=24G        unique bytes of the memory part (scaled down, and said so, when disk is short)
#   ENGINE_BENCH_MEMORY_JAVA_OPTS="-Xmx192m -XX:MaxDirectMemorySize=128m"  JVM options of the memory part
#   ENGINE_BENCH_RESTARTS=3        rounds of the restart part (each: kill -9 under load, kill -9 idle, clean stop); medians
#   ENGINE_BENCH_FINAL_VERIFY=1    0: skip reading the memory pool back after the restarts
#   ENGINE_BENCH_SAMPLE=2          seconds between samples (du, RSS, metrics) during the write phases
#   ENGINE_BENCH_PORT=10967 ENGINE_BENCH_METRICS_PORT=10968  loopback ports (NBD, Prometheus metrics)
#   ENGINE_BENCH_KEEP=0            1: keep the pools under $ENGINE_BENCH_OUT/pools
#   ENGINE_BENCH_STRICT=0          1: exit 3 when a target is missed (4 when data read back is wrong, always)
#   ENGINE_BENCH_OUT=bench/out/engine  pools, samples, logs and results
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DEDISK_ROOT"

help_from_header "${BASH_SOURCE[0]}" "$@"

PARTS="${ENGINE_BENCH_PARTS:-churn memory restart}"
CHURN_VOLUME="${ENGINE_BENCH_CHURN_VOLUME:-1G}"
CHURN="${ENGINE_BENCH_CHURN:-6G}"
SETTLE="${ENGINE_BENCH_SETTLE:-30}"
UNIQUE="${ENGINE_BENCH_UNIQUE:-24G}"
MEM_OPTS="${ENGINE_BENCH_MEMORY_JAVA_OPTS:--Xmx192m -XX:MaxDirectMemorySize=128m}"
FINAL_VERIFY="${ENGINE_BENCH_FINAL_VERIFY:-1}"
SAMPLE="${ENGINE_BENCH_SAMPLE:-2}"
PORT="${ENGINE_BENCH_PORT:-10967}"
MPORT="${ENGINE_BENCH_METRICS_PORT:-10968}"
KEEP="${ENGINE_BENCH_KEEP:-0}"
STRICT="${ENGINE_BENCH_STRICT:-0}"
OUT="${ENGINE_BENCH_OUT:-$DEDISK_ROOT/bench/out/engine}"
POOLS="$OUT/pools"
LOGDIR="$OUT/logs"
STAMP="$(date +%Y%m%d-%H%M%S)"
RUN="$OUT/results/$STAMP" # samples, stats and fio output of this run
ROWS="$RUN/rows.tsv"      # the table: figure, value, target, verdict
GiB=$((1 << 30))

for p in $PARTS; do
    case "$p" in churn | memory | restart) ;; *) die "ENGINE_BENCH_PARTS: unknown part $p" ;; esac
done
if [[ " $PARTS " == *" restart "* && " $PARTS " != *" memory "* ]]; then
    die "the restart part runs on the memory part's pool: ENGINE_BENCH_PARTS must include memory"
fi

# Bytes of a size with an optional binary suffix (K, M, G, T).
to_bytes() {
    local s="${1^^}" n mult=1
    s="${s%B}"
    s="${s%I}"
    case "$s" in
        *K) mult=$((1 << 10)) ;; *M) mult=$((1 << 20)) ;; *G) mult=$((1 << 30)) ;; *T) mult=$((1 << 40)) ;;
    esac
    n="${s%[KMGT]}"
    [[ "$n" =~ ^[0-9]+$ ]] || die "not a size: $1"
    echo $((n * mult))
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
gib() { awk -v b="$1" 'BEGIN { printf "%.3f GiB", b / 1073741824 }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
# verdict VALUE OP LIMIT: PASS or MISS (OP is <= or <)
verdict() {
    awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == "<=") ? v <= l : (op == "<") ? v < l : (op == ">=") ? v >= l : 0
        print ok ? "PASS" : "MISS" }'
}
# row FIGURE VALUE [TARGET VERDICT]: one line of the table
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "${3:-}" "${4:-}" >>"$ROWS"; }
note() { printf 'note\t%s\n' "$*" >>"$ROWS"; }

json() { # FILE EXPR: prints a field of a JSON file, e.g. json stats.json 'd["log"]["writeAmplification"]'
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2], {"d": d})
print(v)' "$1" "$2"
}

# du_pool DIR: apparent bytes of everything under DIR (a file deleted while du runs is just not counted)
du_pool() { { du -sb "$1" 2>/dev/null || true; } | awk 'END { print ($1 == "" ? 0 : $1) }'; }

# ---------------------------------------------------------------- servers and background jobs

SERVER_PID=""
BG_PIDS=() # samplers and background fio runs, killed on exit

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server POOL LOG [JAVA OPTIONS]: ./dedisk serve in the background; SERVER_PID is the JVM (the launcher execs it).
start_server() {
    local pool="$1" logf="$2" opts="${3:-}"
    port_open "$PORT" && die "127.0.0.1:$PORT is in use (set ENGINE_BENCH_PORT)"
    port_open "$MPORT" && die "127.0.0.1:$MPORT is in use (set ENGINE_BENCH_METRICS_PORT)"
    if [[ -n "$opts" ]]; then
        DEDISK_JAVA_OPTS="$opts" ./dedisk serve --pool "$pool" --listen "127.0.0.1:$PORT" --metrics "127.0.0.1:$MPORT" >>"$logf" 2>&1 &
    else
        env -u DEDISK_JAVA_OPTS ./dedisk serve --pool "$pool" --listen "127.0.0.1:$PORT" --metrics "127.0.0.1:$MPORT" >>"$logf" 2>&1 &
    fi
    SERVER_PID=$!
    SERVER_LOG="$logf"
}

# wait_export VOLUME [TIMEOUT_S]: polls nbdinfo until the export answers.
wait_export() {
    local deadline
    deadline=$(awk -v t="$(now)" -v d="${2:-300}" 'BEGIN { printf "%.0f", t + d }')
    until nbdinfo --size "nbd://127.0.0.1:$PORT/$1" >/dev/null 2>&1; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 20 "$SERVER_LOG" >&2
            die "server exited during startup (log: $SERVER_LOG)"
        fi
        (($(date +%s) < deadline)) || die "export $1 did not answer within ${2:-300} s (log: $SERVER_LOG)"
        sleep 0.05
    done
}

# stop_server [TIMEOUT_S]: SIGTERM, waits for exit (SIGKILL after the timeout); STOP_RC = its exit status.
STOP_RC=""
stop_server() {
    local pid="$SERVER_PID" i rc=0
    STOP_RC=""
    [[ -n "$pid" ]] || return 0
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < ${1:-120} * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "server $pid did not stop within ${1:-120} s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    STOP_RC="$rc"
}

kill9_server() {
    local pid="$SERVER_PID"
    SERVER_PID=""
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_bg() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    BG_PIDS=()
}

cleanup() {
    stop_bg
    if [[ -n "$SERVER_PID" ]]; then stop_server 30; fi
    if [[ "$KEEP" != 1 ]]; then rm -rf "$POOLS"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

metrics() { curl -s --max-time 2 "http://127.0.0.1:$MPORT/metrics" 2>/dev/null || true; }
rss_of() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_of() { awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
io_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0; }

SAMPLE_COLS="t du rss written segments_bytes garbage data pages moved cleaned deleted checkpoints cache_hits cache_misses physical"
# sampler POOL PID FILE: every $SAMPLE s, one line of $SAMPLE_COLS (bytes; counters as the server reports them).
sampler() {
    local pool="$1" pid="$2" file="$3" t0 m
    t0=$(now)
    echo "$SAMPLE_COLS" | tr ' ' '\t' >"$file"
    while kill -0 "$pid" 2>/dev/null; do
        m=$(metrics)
        printf '%s\t%s\t%s\t%s\n' "$(elapsed "$t0" "$(now)")" "$(du_pool "$pool")" "$(rss_of "$pid")" \
            "$(awk '
                { v[$1] = $2 }
                END {
                    n = split("dedisk_pool_blocks_written_total dedisk_log_segments_size_bytes dedisk_gc_garbage_bytes dedisk_pool_data_bytes dedisk_pool_metadata_pages_bytes dedisk_gc_moved_bytes_total dedisk_gc_segments_cleaned_total dedisk_gc_segments_deleted_total dedisk_log_checkpoints_total dedisk_cache_metadata_hits_total dedisk_cache_metadata_misses_total dedisk_pool_physical_used_bytes", k, " ")
                    for (i = 1; i <= n; i++) {
                        x = (k[i] in v) ? v[k[i]] + 0 : -1
                        if (i == 1 && x >= 0) x = x * 4096
                        printf "%s%.0f", (i > 1 ? "\t" : ""), x
                    }
                }' <<<"$m")" >>"$file"
        sleep "$SAMPLE"
    done
}

start_sampler() { # POOL FILE
    sampler "$1" "$SERVER_PID" "$2" &
    BG_PIDS+=($!)
}

# col_values NAME FILE: the values of one sample column
col_values() { awk -v c="$1" -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } { print $k }' "$2"; }

stats_json() { # POOL FILE
    ./dedisk stats --pool "$1" --json >"$2" 2>>"$LOGDIR/cli.log" || { log "warning: dedisk stats failed (see $LOGDIR/cli.log)"; echo '{}' >"$2"; }
}

# fio_nbd NAME VOLUME OUTPUT [fio options]: one fio run (jobs given in the options), JSON output; returns fio's status.
# Every written 4 KiB carries fio's crc32c verify header (offset + checksum of the block), so any later read
# with --verify=crc32c --verify_interval=4k checks every block whichever write it came from.
fio_nbd() {
    local name="$1" vol="$2" outf="$3"
    shift 3
    fio --ioengine=nbd --uri="nbd://127.0.0.1:$PORT/$vol" --refill_buffers --randrepeat=0 --verify_state_save=0 \
        --verify=crc32c --verify_interval=4k --output-format=json --output="$outf" --name="$name" "$@" \
        >>"$LOGDIR/fio.log" 2>&1
}

# fio_errors FILE: sum of the jobs' error fields (0 = fine), or "parse-failed"
fio_errors() {
    python3 -c 'import json, sys
t = open(sys.argv[1]).read()
d = json.loads(t[t.index("{"):])
print(sum(j.get("error", 0) for j in d["jobs"]))' "$1" 2>/dev/null || echo parse-failed
}
fio_bytes() { # FILE rw: bytes moved by all jobs
    python3 -c 'import json, sys
t = open(sys.argv[1]).read()
d = json.loads(t[t.index("{"):])
print(sum(j[sys.argv[2]]["io_bytes"] for j in d["jobs"]))' "$1" "$2" 2>/dev/null || echo 0
}

DATA_BAD=0
# verify_volume NAME VOLUME SIZE: reads the volume sequentially and checks every 4 KiB block; records a row.
verify_volume() {
    local name="$1" vol="$2" size="$3" t0 t1 rc=0 errs
    t0=$(now)
    fio_nbd "$name" "$vol" "$RUN/fio-$name.json" --rw=read --bs=1M --iodepth=32 --size="$size" || rc=$?
    t1=$(now)
    errs=$(fio_errors "$RUN/fio-$name.json")
    if [[ "$rc" -eq 0 && "$errs" == 0 ]]; then
        VERIFY_RESULT="ok ($(gib "$size") read in $(elapsed "$t0" "$t1") s)"
    else
        VERIFY_RESULT="FAILED (fio status $rc, errors $errs; see $LOGDIR/fio.log)"
        DATA_BAD=1
    fi
}

# ---------------------------------------------------------------- part 1: churn

part_churn() {
    local pool="$POOLS/churn" vol=churn logf="$LOGDIR/churn-server.log" volbytes churnbytes half
    local t0 t1 du_end du_peak du_settle du_gc st_end st_gc wa wa_churn io0 io1 app0 mv0 app1 mv1 pg0 pg1 rc
    volbytes=$(to_bytes "$CHURN_VOLUME")
    churnbytes=$(to_bytes "$CHURN")
    half=$((churnbytes / 2))
    log "== churn: $(gib "$volbytes") volume, $(gib "$churnbytes") of random overwrites (half 4k, half 64k) =="
    rm -rf "$pool"
    ./dedisk create --pool "$pool" >>"$LOGDIR/cli.log"
    ./dedisk volume create --pool "$pool" "$vol" --size "$volbytes" >>"$LOGDIR/cli.log"
    : >"$logf"
    start_server "$pool" "$logf"
    wait_export "$vol"
    log "churn: fill (fio write bs=1M iodepth=32)..."
    t0=$(now)
    fio_nbd fill "$vol" "$RUN/fio-churn-fill.json" --rw=write --bs=1M --iodepth=32 --size="$volbytes" --do_verify=0 ||
        die "fio fill failed (see $LOGDIR/fio.log)"
    t1=$(now)
    row "churn: fill $(gib "$volbytes") (fio write bs=1M)" "$(elapsed "$t0" "$t1") s, $(awk -v b="$volbytes" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.0f", b / s / 1e6 }') MB/s"
    stats_json "$pool" "$RUN/churn-stats-fill.json"
    app0=$(json "$RUN/churn-stats-fill.json" 'd["log"]["bytesAppended"]')
    mv0=$(json "$RUN/churn-stats-fill.json" 'd["log"]["cleanerBytesMoved"]')
    io0=$(io_of "$SERVER_PID" write_bytes)
    start_sampler "$pool" "$RUN/churn-samples.tsv"
    log "churn: $(gib "$half") of 4k + $(gib "$half") of 64k random overwrites, two fio jobs, iodepth 32 each..."
    t0=$(now)
    rc=0
    fio --ioengine=nbd --uri="nbd://127.0.0.1:$PORT/$vol" --refill_buffers --randrepeat=0 --verify_state_save=0 \
        --verify=crc32c --verify_interval=4k --do_verify=0 --rw=randwrite --iodepth=32 --size="$volbytes" \
        --io_size="$half" --output-format=json --output="$RUN/fio-churn.json" \
        --name=churn4k --bs=4k --name=churn64k --bs=64k >>"$LOGDIR/fio.log" 2>&1 || rc=$?
    t1=$(now)
    du_end=$(du_pool "$pool")
    [[ "$rc" -eq 0 ]] || die "fio churn failed with status $rc (see $LOGDIR/fio.log)"
    stats_json "$pool" "$RUN/churn-stats-end.json"
    io1=$(io_of "$SERVER_PID" write_bytes)
    stop_bg
    du_peak=$( { col_values du "$RUN/churn-samples.tsv"; echo "$du_end"; } | sort -n | tail -n 1)
    row "churn: $(gib "$churnbytes") overwrites (2 fio jobs 4k+64k, iodepth 32)" \
        "$(elapsed "$t0" "$t1") s, $(awk -v b="$churnbytes" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.0f", b / s / 1e6 }') MB/s"
    row "churn: pool du -sb when the writes end" "$(gib "$du_end")" "<= 1.35 GiB" "$(verdict "$du_end" "<=" $((135 * GiB / 100)))"
    row "churn: peak pool du -sb during the churn (every ${SAMPLE}s)" "$(gib "$du_peak")"
    wa=$(json "$RUN/churn-stats-end.json" 'd["log"]["writeAmplification"]')
    app1=$(json "$RUN/churn-stats-end.json" 'd["log"]["bytesAppended"]')
    mv1=$(json "$RUN/churn-stats-end.json" 'd["log"]["cleanerBytesMoved"]')
    row "churn: cleaner write amplification (stats log.writeAmplification)" "$wa" "<= 1.5 (aim)" "$(verdict "$wa" "<=" 1.5)"
    wa_churn=$(awk -v a=$((app1 - app0)) -v m=$((mv1 - mv0)) 'BEGIN { printf "%.3f", ((a - m) > 0 ? a / (a - m) : 1) }')
    row "  same, churn phase only (delta bytesAppended / delta client bytes)" "$wa_churn"
    row "  cleaner moved during the churn / segments cleaned" "$(gib $((mv1 - mv0))) / $(json "$RUN/churn-stats-end.json" 'd["log"]["segmentsCleaned"]')"
    pg0=$(json "$RUN/churn-stats-fill.json" 'd["log"]["pageBytesWritten"]')
    pg1=$(json "$RUN/churn-stats-end.json" 'd["log"]["pageBytesWritten"]')
    row "  cleaner bytes per client byte, churn phase (delta moved / delta client bytes)" \
        "$(awk -v a=$((app1 - app0)) -v m=$((mv1 - mv0)) 'BEGIN { printf "%.3f", ((a - m) > 0 ? m / (a - m) : 0) }')"
    row "  checkpoint pages written during the churn / checkpoints" "$(gib $((pg1 - pg0))) / $(($(json "$RUN/churn-stats-end.json" 'd["log"]["checkpoints"]') - $(json "$RUN/churn-stats-fill.json" 'd["log"]["checkpoints"]')))"
    row "  log bytes (records + checkpoint pages) per client byte, churn phase" \
        "$(awk -v a=$((app1 - app0)) -v m=$((mv1 - mv0)) -v p=$((pg1 - pg0)) 'BEGIN { printf "%.3f", ((a - m) > 0 ? (a + p) / (a - m) : 0) }')"
    if ((io1 > 0)); then
        row "  server write_bytes (/proc/PID/io) / client bytes, churn phase" \
            "$(awk -v w=$((io1 - io0)) -v c="$churnbytes" 'BEGIN { printf "%.3f", w / c }')"
    fi
    row "  stats at end: segments / live data / pages / garbage" "$(gib "$(json "$RUN/churn-stats-end.json" 'd["segmentBytes"]')") / $(gib "$(json "$RUN/churn-stats-end.json" 'd["dataBytes"]')") / $(mib "$(json "$RUN/churn-stats-end.json" 'd["pageBytes"]')") / $(gib "$(json "$RUN/churn-stats-end.json" 'd["garbageBytes"]')")"
    row "  stats at end: index files / metadata cache hits / misses" "$(mib "$(json "$RUN/churn-stats-end.json" 'd["index"]["diskBytes"]')") / $(json "$RUN/churn-stats-end.json" 'd["metadataCache"]["hits"]') / $(json "$RUN/churn-stats-end.json" 'd["metadataCache"]["misses"]')"
    if ((SETTLE > 0)); then
        log "churn: ${SETTLE}s idle with the background cleaner..."
        start_sampler "$pool" "$RUN/churn-settle-samples.tsv"
        sleep "$SETTLE"
        stop_bg
        du_settle=$(du_pool "$pool")
        row "churn: pool du -sb ${SETTLE}s after the writes (background cleaner only)" "$(gib "$du_settle")"
    fi
    log "churn: dedisk gc (through the server)..."
    t0=$(now)
    ./dedisk gc --pool "$pool" >"$RUN/churn-gc.txt" 2>&1 || { cat "$RUN/churn-gc.txt" >&2; die "dedisk gc failed"; }
    t1=$(now)
    du_gc=$(du_pool "$pool")
    stats_json "$pool" "$RUN/churn-stats-gc.json"
    row "churn: pool du -sb after dedisk gc (gc took $(elapsed "$t0" "$t1") s)" "$(gib "$du_gc")" "<= 1.25 GiB" "$(verdict "$du_gc" "<=" $((125 * GiB / 100)))"
    row "  stats after gc: segments / garbage / write amplification" "$(gib "$(json "$RUN/churn-stats-gc.json" 'd["segmentBytes"]')") / $(gib "$(json "$RUN/churn-stats-gc.json" 'd["garbageBytes"]')") / $(json "$RUN/churn-stats-gc.json" 'd["log"]["writeAmplification"]')"
    log "churn: reading every block back (fio --verify=crc32c)..."
    verify_volume churn-verify "$vol" "$volbytes"
    row "churn: data read back (every 4 KiB block's crc32c header)" "$VERIFY_RESULT"
    # For the reading of a miss: the pool reopened (segment sizes from the directory), gc offline.
    stop_server
    rc="$STOP_RC"
    du_stop=$(du_pool "$pool")
    ./dedisk gc --pool "$pool" >"$RUN/churn-gc-offline.txt" 2>&1 || log "warning: offline dedisk gc failed (see $RUN/churn-gc-offline.txt)"
    row "  after a clean stop (exit $rc): du -sb / after an offline dedisk gc" "$(gib "$du_stop") / $(gib "$(du_pool "$pool")")"
    [[ "$KEEP" == 1 ]] || rm -rf "$pool"
}

# ---------------------------------------------------------------- part 2: bounded memory

MEM_POOL="$POOLS/unique"
MEM_VOL=unique
MEM_OPTS_RUN=""

part_memory() {
    local pool="$MEM_POOL" vol="$MEM_VOL" logf="$LOGDIR/memory-server.log" want avail need size t0 t1
    local rss2 rss_end rss_done growth hwm
    want=$(to_bytes "$UNIQUE")
    avail=$(df -B1 --output=avail "$OUT" | tail -n 1 | tr -d ' ')
    need=$((want + want / 10 + 4 * GiB)) # data + 10 % (records, pages, garbage) + index and headroom
    size="$want"
    if ((avail < need)); then
        size=$(((avail - 4 * GiB) * 10 / 11 / GiB * GiB))
        ((size >= 4 * GiB)) || die "only $(gib "$avail") free under $OUT: not enough for the memory part"
        log "memory: only $(gib "$avail") free under $OUT; scaling ENGINE_BENCH_UNIQUE from $(gib "$want") down to $(gib "$size")"
        note "disk space short ($(gib "$avail") free): memory part scaled down from $(gib "$want") to $(gib "$size")"
    fi
    ((size > 2 * GiB)) || die "ENGINE_BENCH_UNIQUE must be more than 2 GiB (RSS is compared at 2 GiB and at the end)"
    MEM_SIZE="$size"
    MEM_OPTS_RUN="$MEM_OPTS -Xlog:gc:file=$LOGDIR/memory-jvm-gc-%p.log"
    log "== memory: --index-memory 16M, $MEM_OPTS, $(gib "$size") of unique data =="
    rm -rf "$pool"
    ./dedisk create --pool "$pool" --index-memory 16M >>"$LOGDIR/cli.log"
    ./dedisk volume create --pool "$pool" "$vol" --size "$size" >>"$LOGDIR/cli.log"
    : >"$logf"
    start_server "$pool" "$logf" "$MEM_OPTS_RUN"
    wait_export "$vol"
    start_sampler "$pool" "$RUN/memory-samples.tsv"
    log "memory: writing $(gib "$size") (fio write bs=1M iodepth=32)..."
    t0=$(now)
    fio_nbd unique-write "$vol" "$RUN/fio-memory-write.json" --rw=write --bs=1M --iodepth=32 --size="$size" --do_verify=0 ||
        die "fio write failed (see $LOGDIR/fio.log)"
    t1=$(now)
    rss_done=$(rss_of "$SERVER_PID")
    sleep "$SAMPLE" # the sampler sees the last blocks counted
    stats_json "$pool" "$RUN/memory-stats-write.json"
    row "memory: write $(gib "$size") unique (fio write bs=1M iodepth=32)" \
        "$(elapsed "$t0" "$t1") s, $(awk -v b="$size" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.0f", b / s / 1e6 }') MB/s"
    # RSS at the first sample that saw >= 2 GiB written, and at the first that saw everything written
    rss2=$(awk -F'\t' 'NR > 1 && $4 >= 2 * 1073741824 { print $3; exit }' "$RUN/memory-samples.tsv")
    rss_end=$(awk -F'\t' -v s="$size" 'NR > 1 && $4 >= s { print $3; exit }' "$RUN/memory-samples.tsv")
    [[ -n "$rss_end" ]] || rss_end="$rss_done"
    if [[ -n "$rss2" && "$rss2" -gt 0 ]]; then
        growth=$(awk -v a="$rss2" -v b="$rss_end" 'BEGIN { printf "%.1f", 100 * (b - a) / a }')
        row "memory: server RSS at 2 GiB written" "$(mib "$rss2")"
        row "memory: server RSS at $(gib "$size") written" "$(mib "$rss_end") (+${growth} %)" "growth <= 10 %" "$(verdict "$growth" "<=" 10)"
    else
        row "memory: server RSS at 2 GiB written" "n/a (no sample; see $RUN/memory-samples.tsv)"
    fi
    row "  RSS right after fio's last write / max sampled during the writes" "$(mib "$rss_done") / $(mib "$(col_values rss "$RUN/memory-samples.tsv" | sort -n | tail -n 1)")"
    log "memory: reading everything back (fio --verify=crc32c)..."
    verify_volume memory-verify "$vol" "$size"
    stop_bg
    hwm=$(hwm_of "$SERVER_PID")
    stats_json "$pool" "$RUN/memory-stats-read.json"
    row "memory: data read back (every 4 KiB block's crc32c header)" "$VERIFY_RESULT"
    row "memory: server RSS after the read back / VmHWM" "$(mib "$(rss_of "$SERVER_PID")") / $(mib "$hwm")"
    row "  metadata cache: capacity / hits / misses / evictions" "$(mib "$(json "$RUN/memory-stats-read.json" 'd["metadataCache"]["capacityBytes"]')") / $(json "$RUN/memory-stats-read.json" 'd["metadataCache"]["hits"]') / $(json "$RUN/memory-stats-read.json" 'd["metadataCache"]["misses"]') / $(json "$RUN/memory-stats-read.json" 'd["metadataCache"]["evictions"]')"
    row "  index: memory / entries / window / files on disk" "$(mib "$(json "$RUN/memory-stats-read.json" 'd["index"]["memoryBytes"]')") / $(json "$RUN/memory-stats-read.json" 'd["index"]["entries"]') / $(json "$RUN/memory-stats-read.json" 'd["index"]["windowEntries"]') / $(mib "$(json "$RUN/memory-stats-read.json" 'd["index"]["diskBytes"]')")"
    row "  pool du -sb / stats physicalUsedBytes" "$(gib "$(du_pool "$pool")") / $(gib "$(json "$RUN/memory-stats-read.json" 'd["physicalUsedBytes"]')")"
    # the server keeps running for the restart part
    if [[ " $PARTS " != *" restart "* ]]; then
        stop_server
        [[ "$KEEP" == 1 ]] || rm -rf "$pool"
    fi
}

# ---------------------------------------------------------------- part 3: restart

RESTARTS="${ENGINE_BENCH_RESTARTS:-3}"

# metric NAME: one value of the running server's metrics page (empty when unavailable)
metric() { metrics | awk -v k="$1" '$1 == k { printf "%.6f", $2; exit }'; }

# wait_rebuilt: until the dedup index has no rebuild left (a restarted server rebuilds it in the background)
wait_rebuilt() {
    local i r
    for ((i = 0; i < 600; i++)); do
        r=$(metric dedisk_index_rebuild_remaining_ratio)
        [[ -n "$r" ]] && awk -v r="$r" 'BEGIN { exit !(r == 0) }' && return 0
        sleep 1
    done
    log "warning: the index rebuild did not finish within 600 s"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# restart_row FIGURE TARGET_OP TARGET_S VALUES...: median of the runs, all runs listed
restart_row() {
    local figure="$1" op="$2" limit="$3" med
    shift 3
    med=$(printf '%s\n' "$@" | median)
    row "$figure" "median $med s ($*)" "$op $limit s" "$(verdict "$med" "$op" "$limit")"
}

# restart_server LOG MARK: starts the server on the memory pool, waits for the export; LAST_UP = when it answered
restart_server() {
    echo "--- $(date '+%F %T.%N'): $2, starting the server" >>"$1"
    start_server "$MEM_POOL" "$1" "$MEM_OPTS_RUN"
    wait_export "$MEM_VOL"
    LAST_UP=$(now)
    echo "--- $(date '+%F %T.%N'): export answers" >>"$1"
}

part_restart() {
    local vol="$MEM_VOL" logf="$LOGDIR/memory-server.log" fio_pid t0 t1 i
    local -a load=() idle=() clean=() stop=() rcs=()
    log "== restart: $(gib "$MEM_SIZE") pool, $RESTARTS rounds =="
    [[ -n "$SERVER_PID" ]] || die "restart: no server running on the memory pool"
    t0=$(now)
    ./dedisk --version >/dev/null 2>&1
    row "restart: launcher + JVM start alone (./dedisk --version)" "$(elapsed "$t0" "$(now)") s"
    for ((i = 1; i <= RESTARTS; i++)); do
        # 1. kill -9 under a 4 KiB random write load (fresh data with verify headers; unflushed writes may be lost)
        log "restart $i/$RESTARTS: kill -9 under a 4k random write load..."
        wait_rebuilt
        fio --ioengine=nbd --uri="nbd://127.0.0.1:$PORT/$vol" --refill_buffers --randrepeat=0 --verify_state_save=0 \
            --verify=crc32c --verify_interval=4k --do_verify=0 --rw=randwrite --bs=4k --iodepth=32 \
            --size="$MEM_SIZE" --norandommap --time_based --runtime=60 --name=crashload --output="$RUN/fio-crashload-$i.txt" \
            >>"$LOGDIR/fio.log" 2>&1 &
        fio_pid=$!
        BG_PIDS+=("$fio_pid")
        sleep 10
        t0=$(now)
        kill9_server
        kill -TERM "$fio_pid" 2>/dev/null || true
        wait "$fio_pid" 2>/dev/null || true
        BG_PIDS=()
        restart_server "$logf" "kill -9 under load (round $i)"
        load+=("$(elapsed "$t0" "$LAST_UP")")
        # 2. kill -9 of an idle server, once its index is rebuilt
        log "restart $i/$RESTARTS: kill -9 idle..."
        wait_rebuilt
        sleep 5
        stats_json "$MEM_POOL" "$RUN/restart-stats-$i.json"
        t0=$(now)
        kill9_server
        restart_server "$logf" "kill -9 idle (round $i)"
        idle+=("$(elapsed "$t0" "$LAST_UP")")
        # 3. clean stop, then restart
        log "restart $i/$RESTARTS: clean stop (SIGTERM) and restart..."
        wait_rebuilt
        sleep 5
        t0=$(now)
        stop_server
        t1=$(now)
        rcs+=("$STOP_RC")
        stop+=("$(elapsed "$t0" "$t1")")
        restart_server "$logf" "clean stop (round $i)"
        clean+=("$(elapsed "$t1" "$LAST_UP")")
    done
    restart_row "restart: kill -9 during 4k random writes -> export answers (nbdinfo)" "<" 5 "${load[@]}"
    restart_row "restart: kill -9 idle -> export answers (nbdinfo)" "<" 5 "${idle[@]}"
    row "restart: clean stop, SIGTERM until exit (exit status ${rcs[*]})" "median $(printf '%s\n' "${stop[@]}" | median) s (${stop[*]})"
    restart_row "restart: after a clean stop -> export answers (nbdinfo)" "<" 3 "${clean[@]}"
    # where the time goes: the server's own log lines around each start (second resolution)
    grep -E '^--- |dedisk.index: index in|dedisk.pool: opened pool|NBD server listening' "$logf" >"$RUN/restart-timeline.txt" || true
    if [[ "$FINAL_VERIFY" == 1 ]]; then
        log "restart: reading everything back (fio --verify=crc32c)..."
        verify_volume restart-verify "$vol" "$MEM_SIZE"
        row "restart: data read back after the restarts" "$VERIFY_RESULT"
    fi
    row "restart: server VmHWM (last server)" "$(mib "$(hwm_of "$SERVER_PID")")"
    stop_server
    [[ "$KEEP" == 1 ]] || rm -rf "$MEM_POOL"
}

# ---------------------------------------------------------------- main

ensure_packages
for c in python3 curl du; do command -v "$c" >/dev/null 2>&1 || die "$c is needed"; done
find_java25
build_jar
mkdir -p "$RUN" "$POOLS" "$LOGDIR"
: >"$ROWS"
: >"$LOGDIR/cli.log"
: >"$LOGDIR/fio.log"

log "free disk under $OUT: $(gib "$(df -B1 --output=avail "$OUT" | tail -n 1 | tr -d ' ')")"
for p in $PARTS; do "part_$p"; done

# ---------------------------------------------------------------- report
{
    echo "dedisk engine v2 benchmark (bench/engine.sh), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo n/a)"
    echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)," \
        "$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo) GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "java: $("$JAVA" -version 2>&1 | head -n 1); $(fio --version); $(nbdinfo --version 2>/dev/null | head -n 1)"
    echo "parts: $PARTS$([[ " $PARTS " == *" churn "* ]] && echo "; churn: ${CHURN_VOLUME} volume, ${CHURN} overwrites")$([[ -n "${MEM_SIZE:-}" ]] && echo "; unique: $(gib "$MEM_SIZE") ($MEM_OPTS)")$([[ " $PARTS " == *" restart "* ]] && echo "; $RESTARTS restart rounds")"
    echo
    awk -F'\t' '$1 == "note" { notes[++n] = $2; next }
        { r[++m] = $0; w1 = length($1) > w1 ? length($1) : w1; w2 = length($2) > w2 ? length($2) : w2 }
        END {
            if (w1 < 6) w1 = 6
            fmt = "%-" w1 "s  %-" w2 "s  %s\n"
            printf fmt, "figure", "value", "target"
            for (i = 0; i < w1 + w2 + 24; i++) printf "-"
            printf "\n"
            for (i = 1; i <= m; i++) {
                split(r[i], f, "\t")
                t = f[3] == "" ? "" : f[3] ": " f[4]
                line = sprintf(fmt, f[1], f[2], t)
                sub(/ +\n$/, "\n", line)
                printf "%s", line
            }
            for (i = 1; i <= n; i++) printf "note: %s\n", notes[i]
        }' "$ROWS"
    missed=$(awk -F'\t' '$4 == "MISS" { printf "%s%s", (n++ ? "; " : ""), $1 }' "$ROWS")
    echo
    if [[ -n "$missed" ]]; then echo "targets MISSED: $missed"; else echo "targets: all met"; fi
    [[ "$DATA_BAD" == 0 ]] || echo "DATA READ BACK WRONG (see the verify rows)"
} | tee "$RUN/table.txt"
log "results: $RUN (table.txt, samples, stats, fio output); server logs: $LOGDIR"

[[ "$DATA_BAD" == 0 ]] || exit 4
if [[ "$STRICT" == 1 ]] && grep -q $'\tMISS$' "$ROWS"; then exit 3; fi
exit 0
