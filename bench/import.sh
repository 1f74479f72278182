#!/usr/bin/env bash
# dedisk import benchmark, issue 10's target: `dedisk import` of the benchmark VM images at least as fast as
# nbdcopy into a served volume, in the same run. Each method writes every image into a fresh pool (same
# options, so dedup work is the same) and is timed from the first image to the last, CLI start-up included:
#
#   nbdcopy   volumes created, pool served; nbdcopy --flush IMG nbd://.../VOL (as bench/run.sh writes)
#   served    pool served; dedisk import --pool P IMG VOL (asks the server, which reads a raw IMG itself;
#             other formats: qemu-img into its NBD listener)
#   offline   no server; dedisk import --pool P IMG VOL (opens the pool, reads a raw IMG itself)
#   qemu:FLAGS  pool served, volumes created; qemu-img convert -n --target-is-zero FLAGS into the volume: the
#             -m / -W choice `dedisk import` makes (ImageImport.PARALLEL), measured without the CLI around it
#
# dedisk runs as the launcher runs it (scripts/lib.sh dedisk_java: its JVM options and AOT cache).
# Prints per method the wall seconds, MB/s (10^6 bytes of image per second), the CPU seconds every process of
# the copy used (copy tools, CLI, server; steadier than wall time on shared CPUs) and the MB/s ratio to nbdcopy.
#
#   bench/import.sh              # bench/out/images/{base,modified,relayout}.img (BENCH_ONLY=images bench/run.sh)
#   bench/import.sh IMG...       # other images (any format qemu-img reads for served/offline/qemu:)
#
# Environment (all optional):
#   IMPORT_BENCH_METHODS="nbdcopy|served|offline"  methods in order, separated by |; add e.g. "qemu:-m 8|qemu:-m 16 -W"
#   IMPORT_BENCH_ROUNDS=1         run the methods N times, alternating the order; medians
#   IMPORT_BENCH_PORT=10971       loopback NBD port of the served pools
#   IMPORT_BENCH_OUT=bench/out/import  pools, logs and results
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DEDISK_ROOT"

METHODS_TEXT="${IMPORT_BENCH_METHODS:-nbdcopy|served|offline}"
ROUNDS="${IMPORT_BENCH_ROUNDS:-1}"
PORT="${IMPORT_BENCH_PORT:-10971}"
OUT="${IMPORT_BENCH_OUT:-$DEDISK_ROOT/bench/out/import}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "IMPORT_BENCH_ROUNDS must be a positive integer"
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi
IFS='|' read -r -a METHODS <<<"$METHODS_TEXT"

IMAGES=("$@")
if [[ ${#IMAGES[@]} -eq 0 ]]; then
    IMAGES=("$DEDISK_ROOT"/bench/out/images/{base,modified,relayout}.img)
fi
for img in "${IMAGES[@]}"; do [[ -f "$img" ]] || die "no image $img (make them with: BENCH_ONLY=images bench/run.sh)"; done
for tool in nbdcopy qemu-img; do command -v "$tool" >/dev/null || die "$tool is missing (scripts/test.sh installs the clients)"; done

find_java25
build_jar
mkdir -p "$OUT"
# The jar built now is the one measured, even if the sources change during the run (./dedisk would rebuild).
cp "$DEDISK_JAR" "$OUT/dedisk.jar"
# What ./dedisk runs: the launcher's JVM options and an AOT cache made for this copy of the jar (the copy's own:
# a cache is only used with the jar it was trained with). Its training run is not timed.
build_aot_cache "$OUT/dedisk.jar"
dedisk_java "$OUT/dedisk.jar"
# An array, not a function: `"${DEDISK[@]}" serve &` must leave the JVM's own pid in $!.
DEDISK=("${DEDISK_CMD[@]}")
log "dedisk runs as: ${DEDISK[*]}"
LOG="$OUT/log.txt"
: >"$LOG"
BYTES=0
for img in "${IMAGES[@]}"; do BYTES=$((BYTES + $(qemu-img info --output=json "$img" | awk -F'[:,]' '/"virtual-size"/ { print $2 }'))); done
# Read the images once (untimed) so every method finds them in the page cache alike.
cat "${IMAGES[@]}" >/dev/null

SERVER_PID=""
trap stop_background_server EXIT

fresh_pool() { rm -rf "$OUT/pool" && "${DEDISK[@]}" create --pool "$OUT/pool" >>"$LOG"; }

serve() {
    local i
    cat "$OUT/serve.log" >>"$LOG" 2>/dev/null || true
    : >"$OUT/serve.log" # now, not in the background job: the wait below must not find the last server's line
    "${DEDISK[@]}" serve --pool "$OUT/pool" --listen "127.0.0.1:$PORT" >"$OUT/serve.log" 2>&1 &
    SERVER_PID=$!
    for ((i = 0; i < 600; i++)); do
        grep -q "dedisk: serving pool" "$OUT/serve.log" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "dedisk serve exited (log: $OUT/serve.log)"
        sleep 0.1
    done
    die "dedisk serve did not start within 60 s (log: $OUT/serve.log)"
}

# The volume of image I: its index and file name (two images may share a name).
volume_of() { local name; name=$(basename "${IMAGES[$1]%.*}"); echo "$1-${name//[^A-Za-z0-9._-]/_}"; }

create_volumes() {
    local i size
    for i in "${!IMAGES[@]}"; do
        size=$(qemu-img info --output=json "${IMAGES[$i]}" | awk -F'[:,]' '/"virtual-size"/ { print $2 + 0 }')
        "${DEDISK[@]}" volume create --pool "$OUT/pool" "$(volume_of "$i")" --size $(((size + 4095) / 4096 * 4096)) >>"$LOG"
    done
}

# copy METHOD IMG VOLUME: one image into the pool by METHOD (the server, if any, is running).
copy() {
    local uri="nbd://127.0.0.1:$PORT/$3" flags
    case "$1" in
        nbdcopy) nbdcopy --flush "$2" "$uri" ;;
        served | offline) "${DEDISK[@]}" import --pool "$OUT/pool" --no-progress "$2" "$3" >>"$LOG" ;;
        qemu:*)
            read -r -a flags <<<"${1#qemu:}"
            qemu-img convert -n --target-is-zero "${flags[@]}" -O raw "$2" "$uri"
            ;;
        *) die "unknown method '$1'" ;;
    esac
}

# CPU seconds (user + system) of this shell's finished children so far: the copy tools, the CLI and, once
# stopped and waited for, the server. On shared CPUs this is steadier than wall time.
# Sets CPU; `times` must run in this shell, not in a $(...) subshell (which has no children of its own).
children_cpu() {
    times >"$OUT/.times"
    CPU=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] } } END { printf "%.2f", s }' "$OUT/.times")
}

# run_method METHOD: records the seconds all images took, the CPU seconds they cost and the bytes stored.
run_method() {
    local m="$1" i t0 t1 c0 c1 setup stored
    fresh_pool
    [[ "$m" == offline ]] || serve
    [[ "$m" == nbdcopy || "$m" == qemu:* ]] && create_volumes
    # The server's start-up and the volume creation are not the copy's cost: count the server's CPU from here.
    setup=$([[ -n "$SERVER_PID" ]] && awk '{ printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$SERVER_PID/stat" || echo 0)
    children_cpu
    c0=$CPU
    t0=$(date +%s.%N)
    for i in "${!IMAGES[@]}"; do copy "$m" "${IMAGES[$i]}" "$(volume_of "$i")"; done
    t1=$(date +%s.%N)
    stop_background_server # its clean stop (checkpoint, index save) is part of the cost, as an offline import's own
    children_cpu
    c1=$CPU
    stored=$("${DEDISK[@]}" stats --pool "$OUT/pool" --json | sed 's/.*"physicalUsedBytes":\([0-9]*\).*/\1/')
    echo "$m $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') $(awk -v a="$c0" -v b="$c1" -v s="$setup" 'BEGIN { printf "%.2f", b - a - s }') $stored" >>"$OUT/results.txt"
}

: >"$OUT/results.txt"
for ((r = 0; r < ROUNDS; r++)); do
    order=("${METHODS[@]}")
    if ((r % 2 == 1)); then order=(); for ((i = ${#METHODS[@]} - 1; i >= 0; i--)); do order+=("${METHODS[$i]}"); done; fi
    for m in "${order[@]}"; do log "round $((r + 1)): $m"; run_method "$m"; done
done

printf '%d image(s), %s bytes of image; %d round(s)\n' "${#IMAGES[@]}" "$BYTES" "$ROUNDS"
printf '%-22s %10s %10s %10s %14s %10s\n' method seconds MB/s cpu-s stored-bytes vs-nbdcopy
base=""
# results.txt: METHOD (may contain spaces) SECONDS CPU STORED; medians over rounds.
median_of() { # METHOD FIELD (1 = seconds, 2 = cpu, counted from the end: 3, 2)
    awk -v m="$1" -v f="$2" '{ k = $1; for (i = 2; i < NF - 2; i++) k = k " " $i; if (k == m) print $(NF - 3 + f) }' "$OUT/results.txt" | sort -n |
        awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
for m in "${METHODS[@]}"; do
    secs=$(median_of "$m" 1)
    cpu=$(median_of "$m" 2)
    stored=$(awk -v m="$m" '{ k = $1; for (i = 2; i < NF - 2; i++) k = k " " $i; if (k == m) s = $NF } END { print s }' "$OUT/results.txt")
    rate=$(awk -v b="$BYTES" -v s="$secs" 'BEGIN { printf "%.1f", b / s / 1e6 }')
    [[ "$m" == nbdcopy ]] && base="$rate"
    ratio=$([[ -n "$base" ]] && awk -v r="$rate" -v b="$base" 'BEGIN { printf "%.2f", r / b }' || echo "-")
    printf '%-22s %10s %10s %10s %14s %10s\n' "$m" "$secs" "$rate" "$cpu" "$stored" "$ratio"
done
