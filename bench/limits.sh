#!/usr/bin/env bash
# bench/limits.sh: the targets of issue 8 for the NBD layer, measured on one server process in one run (not part
# of the tests; everything on 127.0.0.1, every load bounded in count and time):
#   1. 10,000 idle connections (half stalled in the handshake, half idle after NBD_OPT_GO) and 100 writers that
#      declare 32 MiB and never send it, all at once: server RSS against the JVM's configured memory
#      (-Xmx + -XX:MaxDirectMemorySize) + 64 MiB; a well-behaved qemu-io write+read of 1 MiB every 2 s, each
#      under 1 s; every hostile connection closed by the server within its configured deadline.
#   2. TLS cost: fio 4k randread IOPS and nbdcopy read throughput, plain vs TLS, same server, alternating.
#   3. Log output while 8 connections flood NBD_OPT_LIST with data: bytes per minute.
# Environment: LIMITS_PORT (10931), LIMITS_JAVA_OPTS ("-Xmx256m -XX:MaxDirectMemorySize=256m"),
#   LIMITS_IDLE (5000), LIMITS_STALLED (5000), LIMITS_WRITERS (100), LIMITS_FIO_RUNTIME (10),
#   LIMITS_ROUNDS (3), LIMITS_FLOOD_SECONDS (60), LIMITS_OUT (bench/out/limits),
#   LIMITS_ONLY ("hold tls flood": the phases to run).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DEDISK_ROOT"

PORT="${LIMITS_PORT:-10931}"
JAVA_OPTS="${LIMITS_JAVA_OPTS:--Xmx256m -XX:MaxDirectMemorySize=256m}"
IDLE="${LIMITS_IDLE:-5000}"
STALLED="${LIMITS_STALLED:-5000}"
WRITERS="${LIMITS_WRITERS:-100}"
FIO_RUNTIME="${LIMITS_FIO_RUNTIME:-10}"
ROUNDS="${LIMITS_ROUNDS:-3}"
FLOOD_SECONDS="${LIMITS_FLOOD_SECONDS:-60}"
OUT="${LIMITS_OUT:-$DEDISK_ROOT/bench/out/limits}"
ONLY="${LIMITS_ONLY:-hold tls flood}"
phase() { [[ " $ONLY " == *" $1 "* ]]; }
# Deadlines of the server under test (flags below); the hold phase checks the closes against them.
HANDSHAKE_S=30 IDLE_S=30 GRACE_S=20 RATE=4M
WRITER_DEADLINE_S=$((GRACE_S + 32 / 4))
SLACK_S=2 # the watchdog scans every 0.2 s; closes are observed by a client polling every 0.5 s

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[[ "$(ulimit -n)" -ge $((IDLE + STALLED + WRITERS + 200)) ]] || die "ulimit -n is $(ulimit -n); need more file descriptors"
find_java25
build_jar
for tool in qemu-io fio nbdcopy openssl python3; do command -v "$tool" >/dev/null || die "$tool is needed"; done

rm -rf "$OUT"
mkdir -p "$OUT/certs" "$OUT/client"
POOL="$OUT/pool"
LOG="$OUT/server.log"
SERVER_PID=
cleanup() { # SIGTERM (a clean close), and if the server has not ended within 20 s, a thread dump and SIGKILL
    [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null || return 0
    kill "$SERVER_PID"
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || return 0; sleep 0.2; done
    log "limits: the server did not stop within 20 s of SIGTERM; thread dump in $OUT/stuck-threads.txt"
    "$(dirname "$JAVA")/jcmd" "$SERVER_PID" Thread.dump_to_file -format=text "$OUT/stuck-threads.txt" >/dev/null 2>&1 || true
    kill -9 "$SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT

log "limits: certificates, pool, server..."
(
    cd "$OUT/certs"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca-key.pem -out ca-cert.pem \
        -days 2 -subj "/CN=limits CA" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >server.ext
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server-key.pem -out server.csr \
        -subj /CN=127.0.0.1 2>/dev/null
    openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -days 2 \
        -extfile server.ext 2>/dev/null
)
cp "$OUT/certs/ca-cert.pem" "$OUT/client/"
"$JAVA" -jar "$DEDISK_JAR" create --pool "$POOL" --index-memory 16M >/dev/null
"$JAVA" -jar "$DEDISK_JAR" volume create --pool "$POOL" vol --size 1G >/dev/null
"$JAVA" -jar "$DEDISK_JAR" volume create --pool "$POOL" fio --size 256M >/dev/null
# shellcheck disable=SC2086 # JAVA_OPTS is a list of words
"$JAVA" --enable-native-access=ALL-UNNAMED $JAVA_OPTS -jar "$DEDISK_JAR" serve --pool "$POOL" \
    --listen "127.0.0.1:$PORT" --tls on --tls-cert "$OUT/certs/server-cert.pem" --tls-key "$OUT/certs/server-key.pem" \
    --max-connections 20000 --max-connections-per-client 20000 --handshake-timeout ${HANDSHAKE_S}s \
    --idle-timeout ${IDLE_S}s --payload-timeout ${GRACE_S}s --min-payload-rate $RATE --inflight-total 160M \
    >"$LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do grep -q "dedisk: serving pool" "$LOG" 2>/dev/null && break; sleep 0.1; done
grep -q "dedisk: serving pool" "$LOG" || { cat "$LOG"; die "server did not start"; }
PLAIN="nbd://127.0.0.1:$PORT"
TLS_QUERY="?tls-certificates=$OUT/client"
TLS="nbds://127.0.0.1:$PORT"

budget_mib() { # -Xmx + -XX:MaxDirectMemorySize of JAVA_OPTS, in MiB
    local total=0 word value
    for word in $JAVA_OPTS; do
        case "$word" in
            -Xmx*) value="${word#-Xmx}" ;;
            -XX:MaxDirectMemorySize=*) value="${word#-XX:MaxDirectMemorySize=}" ;;
            *) continue ;;
        esac
        case "$value" in
            *g|*G) total=$((total + ${value%?} * 1024)) ;;
            *m|*M) total=$((total + ${value%?})) ;;
            *) total=$((total + value / 1048576)) ;;
        esac
    done
    echo "$total"
}
rss_mib() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$SERVER_PID/status"; }
now_ms() { date +%s%3N; }

verdict() { if [[ "$1" == 1 ]]; then echo "met"; else echo "MISSED"; fi; }
REPORT="$OUT/report.txt"
: >"$REPORT"

# --- 1. hostile connections ------------------------------------------------------------------------------------
hold_phase() {
    log "limits: $STALLED stalled + $IDLE idle connections and $WRITERS stalled 32 MiB writers..."
    local rss_before rss_max=0 probes=0 probe_max_ms=0 probe_fail=0 r t0 ms hold budget
    rss_before=$(rss_mib)
    python3 bench/limits_clients.py hold 127.0.0.1 "$PORT" vol --handshake "$STALLED" --idle "$IDLE" \
        --writers "$WRITERS" --max-seconds 120 >"$OUT/hold.json" 2>"$OUT/hold.err" &
    local hold_pid=$!
    while kill -0 "$hold_pid" 2>/dev/null; do
        r=$(rss_mib)
        ((r > rss_max)) && rss_max=$r
        t0=$(now_ms)
        if qemu-io -f raw "$PLAIN/vol" -c "write -P 0x5a 0 1M" -c "read -P 0x5a 0 1M" >"$OUT/probe.out" 2>&1 &&
            ! grep -q failed "$OUT/probe.out"; then
            ms=$(($(now_ms) - t0))
            ((ms > probe_max_ms)) && probe_max_ms=$ms
        else
            probe_fail=$((probe_fail + 1))
        fi
        probes=$((probes + 1))
        sleep 2
    done
    wait "$hold_pid" || die "hold clients failed: $(cat "$OUT/hold.err")"
    hold=$(cat "$OUT/hold.json")
    py() { python3 -c "import json,sys; h=json.loads(sys.argv[1]); print($1)" "$hold"; }
    local closed_all within
    closed_all=$(py "int(all(h[g]['closed_by_server'] == h[g]['count'] for g in ('handshake','idle','writers')))")
    within=$(py "int(h['handshake']['max_seconds_to_close'] <= $HANDSHAKE_S + $SLACK_S and h['idle']['max_seconds_to_close'] <= $IDLE_S + $SLACK_S and h['writers']['max_seconds_to_close'] <= $WRITER_DEADLINE_S + $SLACK_S)")
    budget=$(budget_mib)
    cat >>"$REPORT" <<PART
hostile connections: $STALLED stalled in the handshake, $IDLE idle after NBD_OPT_GO, $WRITERS stalled 32 MiB writers
  all open after            $(py "h['opened_seconds']") s; held for $(py "h['held_seconds']") s until the server closed them
  closed by the server      handshake $(py "h['handshake']['closed_by_server']")/$STALLED, idle $(py "h['idle']['closed_by_server']")/$IDLE, writers $(py "h['writers']['closed_by_server']")/$WRITERS   [$(verdict "$closed_all")]
  longest time to close     handshake $(py "h['handshake']['max_seconds_to_close']") s (deadline ${HANDSHAKE_S} s), idle $(py "h['idle']['max_seconds_to_close']") s (${IDLE_S} s), writers $(py "h['writers']['max_seconds_to_close']") s (${WRITER_DEADLINE_S} s)   [$(verdict "$within")]
  server RSS                ${rss_before} MiB before, ${rss_max} MiB at most; configured ${budget} MiB + 64 MiB = $((budget + 64)) MiB   [$(verdict "$((rss_max <= budget + 64))")]
  qemu-io write+read 1 MiB  $probes probes, $probe_fail failed, slowest ${probe_max_ms} ms (target < 1000 ms)   [$(verdict "$((probe_fail == 0 && probe_max_ms < 1000))")]
PART
}

# --- 2. TLS cost ---------------------------------------------------------------------------------------------
mkdir -p "$OUT/home/.pki/libnbd"
cp "$OUT/certs/ca-cert.pem" "$OUT/home/.pki/libnbd/" # fio's nbd engine may not name files: libnbd's default dir
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
fio_iops() { # URI
    HOME="$OUT/home" fio --name=randread --ioengine=nbd --uri="$1" --rw=randread --bs=4k --iodepth=32 --size=256M \
        --time_based --runtime="$FIO_RUNTIME" --output-format=json --output="$OUT/fio.json" >/dev/null
    python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"]))' "$OUT/fio.json"
}
copy_mbs() { # URI
    local t0 t1
    t0=$(now_ms)
    nbdcopy --no-extents "$1" null:
    t1=$(now_ms)
    echo $((256 * 1000 / (t1 - t0)))
}
RESULTS="$OUT/tls-rounds.txt"
median() { # MODE COLUMN: median of that column over the rounds
    awk -v m="$1" -v c="$2" '$1 == m {print $c}' "$RESULTS" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}
tls_phase() {
    log "limits: filling the fio volume, then fio 4k randread and nbdcopy read, plain vs TLS ($ROUNDS rounds)..."
    fio --name=fill --ioengine=nbd --uri="$PLAIN/fio" --rw=write --bs=1M --iodepth=8 --size=256M --refill_buffers \
        --output="$OUT/fill.txt" >/dev/null
    : >"$RESULTS"
    # Reference for what TLS costs a C server with GnuTLS on this machine: nbdkit's file plugin, same certificates.
    local nbdkit_pid= reference="$OUT/reference.img"
    if command -v nbdkit >/dev/null; then
        head -c 256M /dev/urandom >"$reference"
        nbdkit --exit-with-parent -f -p "$((PORT + 1))" --tls=on --tls-certificates="$OUT/certs" file "$reference" \
            >"$OUT/nbdkit.log" 2>&1 &
        nbdkit_pid=$!
        sleep 1
    fi
    local round order mode fio_uri copy_uri c0 c1 c2 i m k
    for ((round = 1; round <= ROUNDS; round++)); do
        order="plain tls"
        ((round % 2 == 0)) && order="tls plain"
        for mode in $order; do
            if [[ $mode == plain ]]; then fio_uri="$PLAIN/fio" copy_uri="$PLAIN/fio"
            else fio_uri="$TLS/fio" copy_uri="$TLS/fio$TLS_QUERY"; fi
            c0=$(cpu_ticks)
            i=$(fio_iops "$fio_uri")
            c1=$(cpu_ticks)
            m=$(copy_mbs "$copy_uri")
            c2=$(cpu_ticks)
            k=0
            if [[ -n $nbdkit_pid ]]; then
                if [[ $mode == plain ]]; then k=$(copy_mbs "nbd://127.0.0.1:$((PORT + 1))/")
                else k=$(copy_mbs "nbds://127.0.0.1:$((PORT + 1))/$TLS_QUERY"); fi
            fi
            log "  round $round $mode: fio $i IOPS (server $((c1 - c0)) cs), nbdcopy $m MB/s (server $((c2 - c1)) cs), nbdkit $k MB/s"
            echo "$mode $i $m $((c1 - c0)) $((c2 - c1)) $k" >>"$RESULTS"
        done
    done
    [[ -n $nbdkit_pid ]] && kill "$nbdkit_pid" 2>/dev/null
    rm -f "$reference"
    local iops_plain iops_tls mbs_plain mbs_tls iops_cost mbs_cost
    iops_plain=$(median plain 2) iops_tls=$(median tls 2) mbs_plain=$(median plain 3) mbs_tls=$(median tls 3)
    iops_cost=$(python3 -c "print(round(100 * (1 - $iops_tls / $iops_plain), 1))")
    mbs_cost=$(python3 -c "print(round(100 * (1 - $mbs_tls / $mbs_plain), 1))")
    cat >>"$REPORT" <<PART
TLS cost (same server, medians of $ROUNDS alternating rounds; server CPU in centiseconds per phase)
  fio 4k randread QD32      plain $iops_plain IOPS, TLS $iops_tls IOPS: ${iops_cost} % slower (target <= 15 %)   [$(verdict "$(python3 -c "print(int($iops_cost <= 15))")")]
                            server CPU per ${FIO_RUNTIME} s run: plain $(median plain 4) cs, TLS $(median tls 4) cs
  nbdcopy read 256 MiB      plain $mbs_plain MB/s, TLS $mbs_tls MB/s: ${mbs_cost} % slower (target <= 15 %)   [$(verdict "$(python3 -c "print(int($mbs_cost <= 15))")")]
                            server CPU per copy: plain $(median plain 5) cs, TLS $(median tls 5) cs
  reference: nbdkit file    nbdcopy plain $(median plain 6) MB/s, TLS $(median tls 6) MB/s (a C server with GnuTLS, same machine and run)
  load average              $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: figures are noisy)
PART
}

# --- 3. log flood --------------------------------------------------------------------------------------------
flood_phase() {
    log "limits: 8 connections flooding NBD_OPT_LIST with data for ${FLOOD_SECONDS}s..."
    local log_before log_after flood per_min
    log_before=$(stat -c %s "$LOG")
    flood=$(python3 bench/limits_clients.py flood 127.0.0.1 "$PORT" --connections 8 --seconds "$FLOOD_SECONDS")
    sleep 1
    log_after=$(stat -c %s "$LOG")
    per_min=$(((log_after - log_before) * 60 / ${FLOOD_SECONDS%.*}))
    cat >>"$REPORT" <<PART
log under the NBD_OPT_LIST flood ($flood)
  server log                $((log_after - log_before)) bytes in ${FLOOD_SECONDS} s = $per_min bytes per minute (target <= 1 MB)   [$(verdict "$((per_min <= 1000000))")]
PART
}

for p in hold tls flood; do
    if phase "$p"; then "${p}_phase"; fi
done
echo
echo "== bench/limits.sh: issue 8 targets ($(date -u +%FT%TZ), $(nproc) CPUs, java opts: $JAVA_OPTS) =="
cat "$REPORT"
