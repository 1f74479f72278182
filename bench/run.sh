#!/usr/bin/env bash
# shellcheck disable=SC2317 # many functions are called indirectly ("start_$1", phase KEY CMD)
# dedisk benchmark: writes a set of raw disk images into one dedisk pool and,
# in the same run, into nbdkit's file plugin, with the same NBD clients, and
# prints space, throughput, IOPS, CPU and memory side by side.
# See bench/README.md for what is measured and the targets.
#
#   bench/run.sh            # images generated (debootstrap, else local trees)
#   bench/run.sh IMG...     # your own raw images instead
#
# Environment (all optional):
#   BENCH_ONLY=all|nbdkit|dedisk|images  which servers to measure (default all;
#                          "images" only builds the image set)
#   BENCH_IMAGES=auto|debootstrap|local  how to generate images (default auto:
#                          debootstrap when root and it works, else local)
#   BENCH_REGEN=1          regenerate cached images under bench/out/images
#   BENCH_SUITE=bookworm   Debian suite for debootstrap
#   BENCH_MIRROR=URL       Debian mirror for debootstrap (default: the one
#                          apt uses on this machine)
#   BENCH_DEBOOTSTRAP_INCLUDE=pkg,pkg  extra packages on top of minbase
#   BENCH_LOCAL_SRC="/usr/lib/jvm /usr/share"  trees for the local fallback
#   BENCH_FIO_RUNTIME=15   seconds per fio random phase
#   BENCH_FIO_SIZE=256M    size of the fio volumes
#   BENCH_DEDISK_PORT=10911 BENCH_NBDKIT_PORT=10912  loopback ports
#   BENCH_READ_EXTENTS=0   1: let the read phase skip holes the server reports
#   BENCH_VERIFY=1         read every image back and compare (untimed)
#   BENCH_DROP_CACHES=0    1: drop the page cache before read phases (root)
#   BENCH_ORDER="nbdkit dedisk"  order in which the servers run
#   BENCH_ROUNDS=1         run everything N times (alternating the order) and
#                          report medians; 3 is better for decisions
#   BENCH_KEEP=0           1: keep the written pool and nbdkit files in bench/out/run
#   BENCH_STRICT=0         1: exit 3 when a target is missed
#   BENCH_OUT=bench/out    where images, pools, logs and results go
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DEDISK_ROOT"

ONLY="${BENCH_ONLY:-all}"
IMAGE_MODE="${BENCH_IMAGES:-auto}"
SUITE="${BENCH_SUITE:-bookworm}"
DEBOOTSTRAP_INCLUDE="${BENCH_DEBOOTSTRAP_INCLUDE-systemd-sysv,udev,openssh-server,python3,perl,ca-certificates,curl,less,vim-tiny,iproute2,procps,locales,man-db,cron,rsyslog,sudo}"
LOCAL_SRC="${BENCH_LOCAL_SRC:-/usr/lib/jvm /usr/share}"
FIO_RUNTIME="${BENCH_FIO_RUNTIME:-15}"
FIO_SIZE="${BENCH_FIO_SIZE:-256M}"
PORT_DEDISK="${BENCH_DEDISK_PORT:-10911}"
PORT_NBDKIT="${BENCH_NBDKIT_PORT:-10912}"
VERIFY="${BENCH_VERIFY:-1}"
READ_OPTS=(--no-extents)
if [[ "${BENCH_READ_EXTENTS:-0}" == 1 ]]; then READ_OPTS=(); fi
DROP_CACHES="${BENCH_DROP_CACHES:-0}"
STRICT="${BENCH_STRICT:-0}"
KEEP="${BENCH_KEEP:-0}"
ORDER="${BENCH_ORDER:-nbdkit dedisk}"
ROUNDS="${BENCH_ROUNDS:-1}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
OUT="${BENCH_OUT:-$DEDISK_ROOT/bench/out}"
IMGDIR="$OUT/images"
RUNDIR="$OUT/run"
LOGDIR="$OUT/logs"
RESULTS="$RUNDIR/results.txt"

case "$ONLY" in all | nbdkit | dedisk | images) ;; *) die "BENCH_ONLY must be all, nbdkit, dedisk or images" ;; esac
case "$IMAGE_MODE" in auto | debootstrap | local) ;; *) die "BENCH_IMAGES must be auto, debootstrap or local" ;; esac
help_from_header "${BASH_SOURCE[0]}" "$@"

want() { [[ "$ONLY" == all || "$ONLY" == "$1" ]]; }
now() { date +%s.%N; }
record() { printf '%s %s\n' "$1" "$2" >>"$RESULTS"; } # record KEY VALUE
MiB=$((1024 * 1024))

# ---------------------------------------------------------------- images

IMAGES=() # absolute paths of the images to write
NAMES=()  # export / volume names, one per image

# Debian mirror apt uses here for $SUITE (deb822 .sources or one-line .list).
apt_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk -v suite="$SUITE" 'BEGIN { RS = ""; FS = "\n" }
            { uris = ""; suites = ""
              for (i = 1; i <= NF; i++) {
                if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); uris = $i }
                if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", $i); suites = " " $i " " }
              }
              if (uris != "" && index(suites, " " suite " ")) { split(uris, a, " "); print a[1]; exit } }' "$f"
    done
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk -v suite="$SUITE" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^[a-z]+:\/\// ) { if ($(i + 1) == suite) print $i; break } }'
}

# Size for an ext4 image holding TREE: 1.4x its du plus 256 MiB, in 64 MiB steps.
image_size_for() {
    local used_mib
    used_mib=$(du -s -BM "$1" | awk '{ sub(/M$/, "", $1); print $1 }')
    echo $((((used_mib * 14 / 10 + 256 + 63) / 64) * 64 * MiB))
}

# mkfs_image TREE IMG SIZE [MKFS OPTIONS...]
mkfs_image() {
    local tree="$1" img="$2" size="$3"
    shift 3
    rm -f "$img"
    truncate -s "$size" "$img"
    mkfs.ext4 -q -F -b 4096 -L dedisk-bench "$@" -d "$tree" "$img" ||
        die "mkfs.ext4 -d $tree failed"
}

# A copy of TREE as a VM would look after some use: extra files (unique
# random data, compressible logs, a duplicated directory), ~1% of files
# changed in place, ~0.5% deleted.
make_modified_tree() {
    local base="$1" mod="$2" f i dup
    rm -rf "$mod"
    cp -a "$base" "$mod"
    mkdir -p "$mod/srv/bench"
    head -c $((64 * MiB)) /dev/urandom >"$mod/srv/bench/userdata.bin"
    for ((i = 0; i < 400000; i++)); do
        printf '2025-01-01T00:%02d:%02d host app[%d]: request %d served in %d ms\n' \
            $((i / 60 % 60)) $((i % 60)) $((i % 977)) "$i" $((i * 7 % 250))
    done >"$mod/srv/bench/app.log"
    # a duplicated directory (the largest one two levels under usr/)
    dup=$(du -s "$mod"/usr/*/* 2>/dev/null | sort -rn | head -n 1 | cut -f 2-)
    if [[ -n "$dup" && -d "$dup" ]]; then
        cp -a "$dup" "$mod/srv/bench/copy-of-$(basename "$dup")"
    fi
    find "$mod/usr" -type f -size +0 -print0 2>/dev/null | sort -z >"$mod.files"
    i=0
    while IFS= read -r -d '' f; do
        i=$((i + 1))
        if ((i % 100 == 0)); then # change the first bytes (a patched file)
            printf 'dedisk-bench-%08d' "$i" | dd of="$f" bs=1 seek=0 conv=notrunc status=none 2>/dev/null || true
        elif ((i % 200 == 1)); then
            rm -f "$f"
        fi
    done <"$mod.files"
    rm -f "$mod.files"
}

images_complete() {
    [[ -f "$IMGDIR/base.img" && -f "$IMGDIR/modified.img" && -f "$IMGDIR/relayout.img" && -f "$IMGDIR/SOURCE" ]]
}

# Three images of one tree: base, a modified copy, and the same tree again
# with a different ext4 layout (other inode size/ratio and flex_bg, so the
# same file blocks land at other offsets).
images_from_tree() {
    local tree="$1" size
    log "making modified copy of the tree..."
    make_modified_tree "$tree" "$IMGDIR/tree-mod"
    size=$(image_size_for "$IMGDIR/tree-mod")
    log "mkfs.ext4 -d: 3 images of $((size / MiB)) MiB..."
    mkfs_image "$tree" "$IMGDIR/base.img" "$size"
    mkfs_image "$IMGDIR/tree-mod" "$IMGDIR/modified.img" "$size"
    mkfs_image "$tree" "$IMGDIR/relayout.img" "$size" -I 512 -i 8192 -G 4
    rm -rf "$IMGDIR/tree-mod"
}

gen_debootstrap() {
    local mirror tree="$IMGDIR/tree-base"
    local -a args
    if [[ "$(id -u)" -ne 0 ]]; then
        log "debootstrap needs root; not root"
        return 1
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "debootstrap not installed; trying apt-get install debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >"$LOGDIR/apt-debootstrap.log" 2>&1 ||
            { log "could not install debootstrap (see $LOGDIR/apt-debootstrap.log)"; return 1; }
    fi
    mirror="${BENCH_MIRROR:-$(apt_mirror | head -n 1)}"
    args=(--variant=minbase)
    [[ -n "$DEBOOTSTRAP_INCLUDE" ]] && args+=("--include=$DEBOOTSTRAP_INCLUDE")
    rm -rf "$tree"
    log "debootstrap ${args[*]} $SUITE ${mirror:-(default mirror)} (log: $LOGDIR/debootstrap.log)..."
    if ! timeout 900 debootstrap "${args[@]}" "$SUITE" "$tree" ${mirror:+"$mirror"} >"$LOGDIR/debootstrap.log" 2>&1; then
        log "debootstrap failed (no network to a Debian mirror?); last lines:"
        tail -n 3 "$LOGDIR/debootstrap.log" >&2 || true
        rm -rf "$tree"
        return 1
    fi
    rm -f "$tree"/var/cache/apt/archives/*.deb
    images_from_tree "$tree"
    rm -rf "$tree"
    local n=0
    [[ -n "$DEBOOTSTRAP_INCLUDE" ]] && n=$(tr ',' '\n' <<<"$DEBOOTSTRAP_INCLUDE" | wc -l)
    echo "debootstrap minbase $SUITE + $n packages: base, modified copy, relayout" >"$IMGDIR/SOURCE"
}

gen_local() {
    local tree="$IMGDIR/tree-base" src
    rm -rf "$tree"
    mkdir -p "$tree"
    : >"$LOGDIR/local-copy.log"
    for src in $LOCAL_SRC; do
        [[ -d "$src" ]] || { log "skipping $src (not a directory)"; continue; }
        src="$(readlink -f "$src")"
        log "copying $src..."
        mkdir -p "$tree$(dirname "$src")"
        cp -a "$src" "$tree$src" 2>>"$LOGDIR/local-copy.log" ||
            log "warning: some files of $src could not be copied (see $LOGDIR/local-copy.log)"
    done
    [[ -n "$(ls -A "$tree")" ]] || die "no local trees to build images from (BENCH_LOCAL_SRC=$LOCAL_SRC)"
    images_from_tree "$tree"
    rm -rf "$tree"
    echo "local trees ($LOCAL_SRC): base, modified copy, relayout" >"$IMGDIR/SOURCE"
}

prepare_images() {
    local img name n
    if (($# > 0)); then
        for img in "$@"; do
            [[ -f "$img" || -b "$img" ]] || die "no such image: $img"
            img="$(cd "$(dirname "$img")" && pwd -P)/$(basename "$img")"
            name="$(basename "$img")"
            name="${name%.*}"
            name="${name//[^A-Za-z0-9_.-]/_}"
            n=1
            while [[ " ${NAMES[*]:-} " == *" $name "* ]]; do
                n=$((n + 1))
                name="${name%-[0-9]*}-$n"
            done
            IMAGES+=("$img")
            NAMES+=("$name")
        done
        IMAGE_SOURCE="command line"
        return
    fi
    mkdir -p "$IMGDIR"
    if [[ "${BENCH_REGEN:-0}" == 1 ]]; then
        rm -f "$IMGDIR"/*.img "$IMGDIR/SOURCE"
    fi
    if ! images_complete; then
        rm -f "$IMGDIR/SOURCE"
        case "$IMAGE_MODE" in
            debootstrap) gen_debootstrap || die "debootstrap image generation failed" ;;
            local) gen_local ;;
            auto) gen_debootstrap || { log "falling back to images built from local trees"; gen_local; } ;;
        esac
    else
        log "using cached images in $IMGDIR (BENCH_REGEN=1 rebuilds them)"
    fi
    IMAGES=("$IMGDIR/base.img" "$IMGDIR/modified.img" "$IMGDIR/relayout.img")
    NAMES=(base modified relayout)
    IMAGE_SOURCE="$(cat "$IMGDIR/SOURCE")"
}

file_size() { if [[ -b "$1" ]]; then blockdev --getsize64 "$1"; else stat -c %s "$1"; fi; }

# Volume size for an image: its size rounded up to 4 KiB.
volume_size() { local s; s=$(file_size "$1"); echo $(((s + 4095) / 4096 * 4096)); }

# ---------------------------------------------------------------- servers

SERVER_PID=""
SERVER_NAME=""

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # PORT PID LOG
    local i
    for ((i = 0; i < 1200; i++)); do
        kill -0 "$2" 2>/dev/null || { tail -n 20 "$3" >&2; die "server exited during startup (log: $3)"; }
        port_open "$1" && return 0
        sleep 0.1
    done
    die "server did not listen on 127.0.0.1:$1 within 120 s (log: $3)"
}

stop_server() {
    local pid="$SERVER_PID" i
    [[ -n "$pid" ]] || return 0
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
trap 'stop_server' EXIT
trap 'exit 130' INT TERM

start_nbdkit() {
    local dir="$RUNDIR/nbdkit" i
    rm -rf "$dir"
    mkdir -p "$dir"
    for i in "${!IMAGES[@]}"; do
        truncate -s "$(volume_size "${IMAGES[$i]}")" "$dir/${NAMES[$i]}"
    done
    truncate -s "$FIO_SIZE" "$dir/fio-randwrite" "$dir/fio-randread"
    port_open "$PORT_NBDKIT" && die "127.0.0.1:$PORT_NBDKIT is in use (set BENCH_NBDKIT_PORT)"
    nbdkit --foreground --exit-with-parent -i 127.0.0.1 -p "$PORT_NBDKIT" file dir="$dir" \
        >>"$LOGDIR/nbdkit.log" 2>&1 &
    SERVER_PID=$!
    SERVER_NAME=nbdkit
    PORT="$PORT_NBDKIT"
    wait_port "$PORT" "$SERVER_PID" "$LOGDIR/nbdkit.log"
}

start_dedisk() {
    local pool="$RUNDIR/dedisk-pool" i
    rm -rf "$pool"
    ./dedisk create --pool "$pool" >>"$LOGDIR/dedisk-cli.log"
    for i in "${!IMAGES[@]}"; do
        ./dedisk volume create --pool "$pool" "${NAMES[$i]}" --size "$(volume_size "${IMAGES[$i]}")" >>"$LOGDIR/dedisk-cli.log"
    done
    ./dedisk volume create --pool "$pool" fio-randwrite --size "$FIO_SIZE" >>"$LOGDIR/dedisk-cli.log"
    ./dedisk volume create --pool "$pool" fio-randread --size "$FIO_SIZE" >>"$LOGDIR/dedisk-cli.log"
    port_open "$PORT_DEDISK" && die "127.0.0.1:$PORT_DEDISK is in use (set BENCH_DEDISK_PORT)"
    ./dedisk serve --pool "$pool" --listen "127.0.0.1:$PORT_DEDISK" >>"$LOGDIR/dedisk.log" 2>&1 &
    SERVER_PID=$! # the launcher execs java, so this is the JVM's pid
    SERVER_NAME=dedisk
    PORT="$PORT_DEDISK"
    wait_port "$PORT" "$SERVER_PID" "$LOGDIR/dedisk.log"
}

uri() { echo "nbd://127.0.0.1:$PORT/$1"; }

# utime+stime of the server, in seconds
server_cpu() {
    local ticks
    ticks=$(sed 's/^.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }')
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
server_hwm() { awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$SERVER_PID/status"; }

# phase KEY CMD...: runs CMD, records KEY.secs and KEY.cpu for this server.
phase() {
    local key="$1" t0 t1 c0 c1
    shift
    c0=$(server_cpu)
    t0=$(now)
    "$@"
    t1=$(now)
    c1=$(server_cpu)
    record "$SERVER_NAME.$key.secs" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
    record "$SERVER_NAME.$key.cpu" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')"
}

maybe_drop_caches() {
    [[ "$DROP_CACHES" == 1 ]] || return 0
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || log "warning: could not drop caches"
}

write_all() {
    local i
    for i in "${!IMAGES[@]}"; do
        nbdcopy --flush "${IMAGES[$i]}" "$(uri "${NAMES[$i]}")"
    done
}

read_all() {
    local i
    for i in "${!IMAGES[@]}"; do
        # --no-extents: both servers get the same full read stream, whether
        # or not they report holes (base:allocation) to the client
        nbdcopy "${READ_OPTS[@]}" "$(uri "${NAMES[$i]}")" null:
    done
}

verify_all() {
    local i
    for i in "${!IMAGES[@]}"; do
        # cmp stops after the image's size; nbdcopy then gets EPIPE, ignored.
        if ! { nbdcopy "$(uri "${NAMES[$i]}")" - 2>/dev/null || true; } |
            cmp -s -n "$(file_size "${IMAGES[$i]}")" - "${IMAGES[$i]}"; then
            record "$SERVER_NAME.verify" "MISMATCH:${NAMES[$i]}"
            log "$SERVER_NAME: ${NAMES[$i]} reads back DIFFERENT from ${IMAGES[$i]}"
            return 0
        fi
    done
    record "$SERVER_NAME.verify" ok
}

# fio_job KEY EXPORT RW [extra fio options]: runs fio with the nbd engine.
fio_job() {
    local key="$1" export="$2" rw="$3"
    shift 3
    fio --name="$key" --ioengine=nbd --uri="$(uri "$export")" --rw="$rw" \
        --size="$FIO_SIZE" --refill_buffers --output-format=json \
        --output="$RUNDIR/$SERVER_NAME-$key.r$ROUND.json" "$@" >/dev/null
}

fio_randwrite() { fio_job randwrite fio-randwrite randwrite --bs=4k --iodepth=32 --time_based --runtime="$FIO_RUNTIME"; }
fio_fill() { fio_job fill fio-randread write --bs=1M --iodepth=8; }
fio_randread() { fio_job randread fio-randread randread --bs=4k --iodepth=32 --time_based --runtime="$FIO_RUNTIME"; }

physical_nbdkit() {
    local i files=()
    sync
    for i in "${!NAMES[@]}"; do files+=("$RUNDIR/nbdkit/${NAMES[$i]}"); done
    du -B1 -c "${files[@]}" | awk 'END { print $1 }'
}

# dedisk's physical figure is everything its pool directory holds on disk (du, like nbdkit's files): log
# segments, manifest, superblock, the dedup index's files, stats history. The stats' own physicalUsedBytes
# (segments + index + superblock + manifest, as the engine accounts them) is recorded next to it as a check.
physical_dedisk() {
    local f
    sync
    if ./dedisk stats --pool "$RUNDIR/dedisk-pool" --json >"$RUNDIR/dedisk-stats.json" 2>>"$LOGDIR/dedisk-cli.log"; then
        for f in physicalUsedBytes segmentBytes; do
            record "dedisk.stats.$f" "$(json_field "$RUNDIR/dedisk-stats.json" "$f")" || true
        done
        record dedisk.stats.indexDiskBytes "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["index"]["diskBytes"])' "$RUNDIR/dedisk-stats.json")" || true
    else
        log "warning: dedisk stats --json failed (see $LOGDIR/dedisk-cli.log)"
    fi
    du -s -B1 "$RUNDIR/dedisk-pool" | awk '{ print $1 }'
}

json_field() { # FILE KEY: prints a top-level field of a JSON object
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
if sys.argv[2] not in d:
    sys.exit("no field %s in %s" % (sys.argv[2], sys.argv[1]))
print(d[sys.argv[2]])' "$1" "$2"
}

run_server() { # SERVER
    local phys
    log "== $1 =="
    sync # do not let the previous server's writeback slow this one down
    "start_$1"
    nbdinfo --no-content --json "$(uri "${NAMES[0]}")" >"$RUNDIR/$1-nbdinfo.json" 2>>"$LOGDIR/$1.log" || true
    log "$1: writing ${#IMAGES[@]} images with nbdcopy..."
    phase write write_all
    phys=$("physical_$1")
    [[ -n "$phys" ]] && record "$1.physical" "$phys"
    maybe_drop_caches
    log "$1: reading images back with nbdcopy..."
    phase read read_all
    if [[ "$VERIFY" == 1 ]]; then
        log "$1: verifying contents..."
        verify_all
    fi
    log "$1: fio 4k randwrite (${FIO_RUNTIME}s)..."
    phase randwrite fio_randwrite
    log "$1: fio sequential fill + 4k randread (${FIO_RUNTIME}s)..."
    phase fill fio_fill
    maybe_drop_caches
    phase randread fio_randread
    record "$1.hwm" "$(server_hwm)"
    if [[ "$1" == dedisk ]]; then
        ./dedisk stats --pool "$RUNDIR/dedisk-pool" --json >"$RUNDIR/dedisk-stats-end.json" 2>>"$LOGDIR/dedisk-cli.log" || true
    fi
    stop_server
    if [[ "$KEEP" != 1 ]]; then
        rm -rf "$RUNDIR/nbdkit" "$RUNDIR/dedisk-pool"
    fi
}

# ---------------------------------------------------------------- main

mkdir -p "$OUT" "$LOGDIR"
if [[ "$ONLY" != images ]]; then
    ensure_packages
    command -v python3 >/dev/null 2>&1 || die "python3 is needed (apt-get install -y python3)"
fi
command -v mkfs.ext4 >/dev/null 2>&1 || die "mkfs.ext4 is needed (apt-get install -y e2fsprogs)"

prepare_images "$@"
log "images (${IMAGE_SOURCE}):"
for i in "${!IMAGES[@]}"; do
    log "  ${NAMES[$i]}: ${IMAGES[$i]} ($(($(file_size "${IMAGES[$i]}") / MiB)) MiB)"
done
[[ "$ONLY" == images ]] && exit 0

if want dedisk; then
    find_java25
    build_jar
fi

rm -rf "$RUNDIR"
mkdir -p "$RUNDIR"
: >"$RESULTS"
: >"$LOGDIR/dedisk-cli.log"
: >"$LOGDIR/dedisk.log"
: >"$LOGDIR/nbdkit.log"
record images "${#IMAGES[@]}"
record logical "$(for i in "${IMAGES[@]}"; do file_size "$i"; done | awk '{ s += $1 } END { print s }')"

if want dedisk; then
    log "computing the ideal (./dedisk ideal)..."
    if ./dedisk ideal "${IMAGES[@]}" >"$RUNDIR/ideal.json" 2>>"$LOGDIR/dedisk-cli.log"; then
        for k in idealBytes uniqueBlocks nonZeroBlocks; do
            record "ideal.$k" "$(json_field "$RUNDIR/ideal.json" "$k")"
        done
    else
        log "warning: ./dedisk ideal failed (see $LOGDIR/dedisk-cli.log); no ideal in the table"
    fi
fi

# The source images come from the page cache for both servers.
cat "${IMAGES[@]}" >/dev/null

# Each round runs every server once; even rounds in reverse order. The
# report takes the median of the rounds.
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    order="$ORDER"
    ((ROUND % 2 == 0)) && order="$(tr ' ' '\n' <<<"$ORDER" | tac | tr '\n' ' ')"
    for server in $order; do
        case "$server" in nbdkit | dedisk) ;; *) die "BENCH_ORDER: unknown server $server" ;; esac
        if want "$server"; then
            ((ROUNDS > 1)) && log "-- round $ROUND of $ROUNDS"
            run_server "$server"
        fi
    done
done

# ---------------------------------------------------------------- report

{
    echo "machine.nproc $(nproc)"
    echo "machine.cpu $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "machine.kernel $(uname -r)"
    echo "machine.mem $(awk '/^MemTotal:/ { print $2 * 1024 }' /proc/meminfo)"
    echo "machine.java $({ [[ -n "${JAVA:-}" ]] && "$JAVA" -version 2>&1 | head -n 1; } || echo n/a)"
    echo "machine.nbdkit $(nbdkit --version | head -n 1)"
    echo "machine.nbdcopy $(nbdcopy --version | head -n 1)"
    echo "machine.fio $(fio --version)"
    echo "source $IMAGE_SOURCE"
    echo "fio.runtime $FIO_RUNTIME"
    echo "fio.size $FIO_SIZE"
    echo "rounds $ROUNDS"
} >>"$RESULTS"

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT/results"
set +e
python3 "$DEDISK_ROOT/bench/report.py" "$RUNDIR" "$OUT/results/$stamp.json" | tee "$OUT/results/$stamp.txt"
status=${PIPESTATUS[0]}
set -e
log "results: $OUT/results/$stamp.txt and .json; logs: $LOGDIR"
if [[ "$status" -eq 3 && "$STRICT" != 1 ]]; then
    status=0
fi
exit "$status"
