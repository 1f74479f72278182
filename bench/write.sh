#!/usr/bin/env bash
# Focused write benchmark: `nbdcopy --flush` of bench/run.sh's cached images (bench/out/images: base, modified,
# relayout) into nbdkit's file plugin and into a fresh dedisk pool, round after round, printing elapsed time,
# MB/s (logical image bytes), server CPU and the dedisk/nbdkit ratio; with OTHER, also into a pool served by that
# other checkout's ./dedisk (same rounds, alternating), for before/after comparisons on a noisy machine.
#
#   bench/write.sh [OTHER_CHECKOUT]
#
# Environment: WRITE_ROUNDS=3, WRITE_IMAGES=bench/out/images (run bench/run.sh once to build them),
# WRITE_PORT=10941 (and +1, +2), DEDISK_JAVA_OPTS as for ./dedisk (e.g. add a JFR recording).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DEDISK_ROOT"
OTHER="${1:-}"
ROUNDS="${WRITE_ROUNDS:-3}"
IMGDIR="${WRITE_IMAGES:-$DEDISK_ROOT/bench/out/images}"
PORT="${WRITE_PORT:-10941}"
WORK="$DEDISK_ROOT/bench/out/write"
IMAGES=(base modified relayout)
for i in "${IMAGES[@]}"; do [[ -f "$IMGDIR/$i.img" ]] || die "$IMGDIR/$i.img missing: run bench/run.sh once (BENCH_ONLY=images)"; done
[[ -z "$OTHER" || -x "$OTHER/dedisk" ]] || die "$OTHER/dedisk is not an executable launcher"
logical=0
for i in "${IMAGES[@]}"; do logical=$((logical + $(stat -c %s "$IMGDIR/$i.img"))); done

cpu_of() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }'; }
wait_listening() {
    local _
    for _ in $(seq 300); do nbdinfo --list "nbd://127.0.0.1:$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "no NBD server on port $1"
}
# measure NAME PORT PID: writes every image, prints one line, stops the server
measure() {
    local name="$1" port="$2" pid="$3" t0 t1 c0 c1 i
    wait_listening "$port"
    c0=$(cpu_of "$pid")
    t0=$(date +%s.%N)
    for i in "${IMAGES[@]}"; do nbdcopy --flush "$IMGDIR/$i.img" "nbd://127.0.0.1:$port/$i"; done
    t1=$(date +%s.%N)
    c1=$(cpu_of "$pid")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    awk -v n="$name" -v a="$t0" -v b="$t1" -v c="$c0" -v d="$c1" -v bytes="$logical" \
        'BEGIN { printf "%s %.2f %.1f %.2f\n", n, b - a, bytes / (b - a) / 1e6, d - c }'
}
nbdkit_round() {
    rm -rf "$WORK/nbdkit"
    mkdir -p "$WORK/nbdkit"
    local i
    for i in "${IMAGES[@]}"; do truncate -s "$(stat -c %s "$IMGDIR/$i.img")" "$WORK/nbdkit/$i"; done
    nbdkit --foreground -i 127.0.0.1 -p "$PORT" file dir="$WORK/nbdkit" >/dev/null 2>&1 &
    measure nbdkit "$PORT" $!
    rm -rf "$WORK/nbdkit"
}
# dedisk_round NAME CHECKOUT PORT
dedisk_round() {
    local pool="$WORK/pool-$1" i
    rm -rf "$pool"
    "$2/dedisk" create --pool "$pool" >/dev/null
    for i in "${IMAGES[@]}"; do "$2/dedisk" volume create --pool "$pool" "$i" --size "$(stat -c %s "$IMGDIR/$i.img")" >/dev/null; done
    "$2/dedisk" serve --pool "$pool" --listen "127.0.0.1:$3" >"$WORK/serve-$1.log" 2>&1 &
    measure "$1" "$3" $!
    rm -rf "$pool"
}

mkdir -p "$WORK"
"$DEDISK_ROOT/dedisk" --version >/dev/null # build the jar before the first round
[[ -z "$OTHER" ]] || "$OTHER/dedisk" --version >/dev/null
echo "bench/write.sh $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $ROUNDS rounds, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "images: ${IMAGES[*]} ($(awk -v b="$logical" 'BEGIN { printf "%.3f GiB", b / 2^30 }') logical)${OTHER:+; other: $OTHER}"
results="$WORK/results.txt"
: >"$results"
for ((r = 1; r <= ROUNDS; r++)); do
    nbdkit_round >>"$results"
    if [[ -n "$OTHER" ]] && ((r % 2 == 1)); then dedisk_round other "$OTHER" $((PORT + 2)) >>"$results"; fi
    dedisk_round dedisk "$DEDISK_ROOT" $((PORT + 1)) >>"$results"
    if [[ -n "$OTHER" ]] && ((r % 2 == 0)); then dedisk_round other "$OTHER" $((PORT + 2)) >>"$results"; fi
done
awk -v rounds="$ROUNDS" '
    { secs[$1, ++n[$1]] = $2; mbs[$1, n[$1]] = $3; cpu[$1, n[$1]] = $4; if (!($1 in seen)) { seen[$1]; order[++k] = $1 } }
    function median(a, name, m,   i, j, t, v) {
        for (i = 1; i <= m; i++) v[i] = a[name, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    END {
        printf "%-8s %-36s %-28s %-24s %s\n", "server", "elapsed s (rounds)", "MB/s median", "server CPU s median", "vs nbdkit (median of per-round ratios)"
        for (o = 1; o <= k; o++) {
            s = ""; name = order[o]
            for (i = 1; i <= n[name]; i++) s = s sprintf("%s%.2f", i > 1 ? " " : "", secs[name, i])
            ratio = "-"
            if (name != "nbdkit") {
                for (i = 1; i <= n[name]; i++) rr[name, i] = secs["nbdkit", i] / secs[name, i]
                ratio = sprintf("%.2fx", median(rr, name, n[name]))
            }
            printf "%-8s %-36s %-28.1f %-24.2f %s\n", name, s, median(mbs, name, n[name]), median(cpu, name, n[name]), ratio
        }
    }' "$results"
