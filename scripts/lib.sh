# shellcheck shell=bash
# Shared helpers for dedisk's scripts. Source it, do not run it:
#
#     . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Defines DEDISK_ROOT (the repository directory) and the functions
#   die, log, as_root, find_java25, ensure_packages, build_jar, build_aot_cache, dedisk_java.
# Nothing here changes shell options of the caller.

if [[ -n "${_DEDISK_LIB_SOURCED:-}" ]]; then
    return 0
fi
_DEDISK_LIB_SOURCED=1

DEDISK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
DEDISK_JAR="$DEDISK_ROOT/target/dedisk.jar"
# The JVM options every dedisk command runs with unless DEDISK_JAVA_OPTS says otherwise: a bounded heap keeps
# the server's memory bounded (G1 otherwise grows the heap towards 1/4 of RAM under a high allocation rate).
DEDISK_DEFAULT_JAVA_OPTS="-Xmx512m -XX:MaxDirectMemorySize=256m"

# Commands the real-client tests and the benchmark need, and the Debian
# package that provides each of them (Debian 12 "bookworm" names).
DEDISK_TOOL_PACKAGES=(
    "qemu-io:qemu-utils"
    "qemu-img:qemu-utils"
    "nbdinfo:libnbd-bin"
    "nbdcopy:libnbd-bin"
    "nbdfuse:libnbd-bin"
    "nbdsh:python3-libnbd"
    "nbdkit:nbdkit"
    "fio:fio"
    "fusermount3:fuse3"
    "promtool:prometheus"
    "chromium:chromium"
    "openssl:openssl"
)

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

log() {
    printf '%s\n' "$*" >&2
}

# Runs a command as root: directly when we are root, through sudo when it
# exists, otherwise returns 127 without running anything.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        return 127
    fi
}

# _java_is_25 JAVA_BIN: true when that java binary reports feature version 25.
_java_is_25() {
    local bin="$1" first release
    [[ -x "$bin" ]] || return 1
    # A JDK's release file names its version: reading it is free, starting a JVM to ask costs every command ~30 ms.
    release="$(dirname "$(dirname "$bin")")/release"
    if [[ -f "$release" ]]; then
        grep -Eq '^JAVA_VERSION="25([."+-]|$)' "$release"
        return
    fi
    first="$("$bin" -version 2>&1 | head -n 1)" || return 1
    # openjdk version "25" 2025-09-16 / openjdk version "25.0.1" 2025-10-21 LTS
    [[ "$first" =~ version\ \"25([.\"+-]|$) ]]
}

# find_java25: finds a JDK 25 and exports JAVA_HOME (also puts its bin/ first
# on PATH and sets JAVA to its java binary). Order: $JAVA_HOME if it is a 25,
# then /usr/lib/jvm/*25* directories, then the java on PATH.
find_java25() {
    local cand
    if [[ -n "${JAVA_HOME:-}" ]]; then
        if _java_is_25 "$JAVA_HOME/bin/java"; then
            _use_java_home "$JAVA_HOME"
            return 0
        fi
        log "note: JAVA_HOME=$JAVA_HOME is not a JDK 25, looking elsewhere"
    fi
    for cand in /usr/lib/jvm/*25*; do
        [[ -d "$cand" ]] || continue
        if _java_is_25 "$cand/bin/java" && [[ -x "$cand/bin/javac" ]]; then
            _use_java_home "$cand"
            return 0
        fi
    done
    if cand="$(command -v java 2>/dev/null)" && _java_is_25 "$cand"; then
        cand="$(readlink -f "$cand")"
        cand="${cand%/bin/java}"
        if [[ -x "$cand/bin/javac" ]]; then
            _use_java_home "$cand"
            return 0
        fi
    fi
    die "dedisk needs JDK 25: set JAVA_HOME or install temurin-25-jdk"
}

_use_java_home() {
    JAVA_HOME="$(cd "$1" && pwd -P)"
    JAVA="$JAVA_HOME/bin/java"
    PATH="$JAVA_HOME/bin:$PATH"
    export JAVA_HOME JAVA PATH
}

# _missing_packages: prints the Debian packages whose commands are missing,
# one per line, without duplicates.
_missing_packages() {
    local entry cmd pkg seen=" "
    for entry in "${DEDISK_TOOL_PACKAGES[@]}"; do
        cmd="${entry%%:*}"
        pkg="${entry#*:}"
        if ! command -v "$cmd" >/dev/null 2>&1 && [[ "$seen" != *" $pkg "* ]]; then
            seen+="$pkg "
            printf '%s\n' "$pkg"
        fi
    done
}

_apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@"
}

# The Debian package "prometheus" is the only one with promtool, and its
# postinst starts a Prometheus server where systemd runs; the tests need only
# promtool, so that server is stopped and disabled again.
_quiet_prometheus() {
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        log "stopping the Prometheus server that the prometheus package started (only promtool is needed)"
        as_root systemctl disable --now prometheus >&2 || log "warning: could not stop prometheus.service"
    fi
}

# ensure_packages: makes sure qemu-io qemu-img nbdinfo nbdcopy nbdsh nbdkit fio
# nbdfuse (and fusermount3), promtool (metrics check) and chromium (report
# rendering check) exist; installs the missing Debian packages with
# apt-get (as root, or through sudo), running apt-get update when a plain
# install fails, then checks again.
ensure_packages() {
    local -a missing
    mapfile -t missing < <(_missing_packages)
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        die "missing tools; install these packages (Debian names): ${missing[*]}"
    fi
    if [[ "$(id -u)" -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
        die "missing tools and not root (no sudo); as root run: apt-get install -y ${missing[*]}"
    fi
    log "installing missing packages: ${missing[*]}"
    if ! _apt_install "${missing[@]}" >&2; then
        log "apt-get install failed; running apt-get update and retrying"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
            log "warning: apt-get update failed"
        _apt_install "${missing[@]}" >&2 ||
            die "could not install packages: ${missing[*]} (as root: apt-get update && apt-get install -y ${missing[*]})"
    fi
    hash -r
    if [[ " ${missing[*]} " == *" prometheus "* ]]; then
        _quiet_prometheus
    fi
    mapfile -t missing < <(_missing_packages)
    if ((${#missing[@]} > 0)); then
        die "tools still missing after install; packages: ${missing[*]}"
    fi
}

# _jar_stale: true when target/dedisk.jar is missing or older than pom.xml, the
# build's class-file upgrade, or anything (files or directories, so deletions
# count) under src/main.
_jar_stale() {
    [[ -f "$DEDISK_JAR" ]] || return 0
    [[ -n "$(find "$DEDISK_ROOT/pom.xml" "$DEDISK_ROOT/scripts/UpgradeOldClassFiles.java" "$DEDISK_ROOT/src/main" \
        -newer "$DEDISK_JAR" -print -quit 2>/dev/null)" ]]
}

# build_jar: builds target/dedisk.jar with the Maven wrapper when it is stale.
# Prints "building dedisk..." on stderr when it builds, nothing otherwise;
# Maven's own output (errors only, -q) also goes to stderr so that the
# caller's stdout stays clean. Needs JAVA_HOME (call find_java25 first).
# Concurrent callers are serialised with flock when it exists.
build_jar() {
    _jar_stale || return 0
    mkdir -p "$DEDISK_ROOT/target"
    (
        if command -v flock >/dev/null 2>&1; then
            flock 9
            _jar_stale || exit 0 # someone else built it while we waited
        fi
        log "building dedisk..."
        cd "$DEDISK_ROOT" &&
            ./mvnw -B -q package -DskipTests >&2 &&
            [[ -f "$DEDISK_JAR" ]] &&
            touch "$DEDISK_JAR"
    ) 9>"$DEDISK_ROOT/target/.build.lock" ||
        die "build failed: (cd $DEDISK_ROOT && ./mvnw -B package -DskipTests) shows why"
}

# The AOT cache of a jar (JDK 25, JEP 483/514): the jar's name with .aot; it holds the classes a served
# import loaded, loaded and linked, which cuts a one-shot command's start (docs/decisions.md).
_aot_cache_of() { printf '%s\n' "${1%.jar}.aot"; }

# build_aot_cache [JAR]: makes JAR's AOT cache (default target/dedisk.jar) when it is missing or older than the
# jar, by a training run: a served import of a small image into a throwaway pool (server on 127.0.0.1, an
# ephemeral port), the import run with -XX:AOTCacheOutput. Prints "building the AOT cache..." on stderr when it
# builds. Never fails: without a cache every command still runs, only its start is slower (the note says why).
# Needs JAVA (find_java25). Concurrent callers are serialised with flock when it exists.
build_aot_cache() {
    local jar="${1:-$DEDISK_JAR}" cache
    cache="$(_aot_cache_of "$jar")"
    _aot_settled "$jar" "$cache" && return 0
    (
        if command -v flock >/dev/null 2>&1; then
            flock 9
            _aot_settled "$jar" "$cache" && exit 0
        fi
        log "building the AOT cache $(basename "$cache")..."
        _train_aot_cache "$jar" "$cache" && exit 0
        touch "$cache.failed" # not tried again until the jar is rebuilt
        log "note: no AOT cache for $jar (the training run failed); commands start slower"
    ) 9>"$cache.lock"
    rm -f "$cache.lock"
}

# True when JAR's cache is fresh, or making it failed since the jar was built.
_aot_settled() { [[ -f "$2" && "$2" -nt "$1" ]] || [[ -f "$2.failed" && "$2.failed" -nt "$1" ]]; }

_train_aot_cache() {
    local jar="$1" cache="$2" work pid i rc=1
    local -a cmd
    _java_base
    cmd=("${_DEDISK_JAVA[@]}")
    work="$(mktemp -d)" || return 1
    rm -f "$cache" "$cache.tmp" "$cache.failed"
    # 4 MiB of data with repeats and a hole: the import writes, dedups and skips zeros, as a real one does.
    head -c 2097152 /dev/urandom >"$work/data" && cat "$work/data" "$work/data" >"$work/train.raw" &&
        truncate -s 8M "$work/train.raw" &&
        "${cmd[@]}" -jar "$jar" create --pool "$work/pool" >/dev/null &&
        {
            "${cmd[@]}" -jar "$jar" serve --pool "$work/pool" --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
            pid=$!
            for ((i = 0; i < 300; i++)); do
                grep -qs "dedisk: serving pool" "$work/serve.log" && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            "${cmd[@]}" -XX:AOTCacheOutput="$cache.tmp" -jar "$jar" import --pool "$work/pool" "$work/train.raw" train >/dev/null 2>&1 && rc=0
            kill -TERM "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        }
    ((rc == 0)) && mv -f "$cache.tmp" "$cache" && touch "$cache"
    rm -rf "$work" "$cache.tmp"
    return "$rc"
}

# Sets the array _DEDISK_JAVA to java and the options of every dedisk command (without -jar). The training run
# uses the same, as the cache requires (other options make the JVM skip it). -Xlog:aot=off: a stale, damaged or
# missing cache makes the JVM print errors and run without it; the command's output stays its own.
_java_base() {
    local -a opts
    read -r -a opts <<<"${DEDISK_JAVA_OPTS:-$DEDISK_DEFAULT_JAVA_OPTS}"
    _DEDISK_JAVA=("$JAVA" --enable-native-access=ALL-UNNAMED -Xlog:aot=off -Xlog:cds=off "${opts[@]}")
}

# dedisk_java [JAR]: sets the array DEDISK_CMD to the command a user's `dedisk` runs (java, the launcher's JVM
# options, the AOT cache when it is there and fresh, -jar JAR), so that scripts measure what users run.
dedisk_java() {
    local jar="${1:-$DEDISK_JAR}" cache
    cache="$(_aot_cache_of "$jar")"
    _java_base
    DEDISK_CMD=("${_DEDISK_JAVA[@]}")
    if [[ -f "$cache" && "$cache" -nt "$jar" ]]; then DEDISK_CMD+=(-XX:AOTCache="$cache"); fi
    DEDISK_CMD+=(-jar "$jar")
}

# For a script whose header comment (line 3 to 'set -euo') is its help: prints it and exits on -h / --help.
help_from_header() {
    local script="$1"
    shift
    if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
        sed -n '3,/^set -euo/p' "$script" | sed '$d; s/^# \{0,1\}//'
        exit 0
    fi
}

# Stops the server a benchmark started in the background (its pid in SERVER_PID) with SIGTERM: a clean stop.
stop_background_server() {
    [[ -n "${SERVER_PID:-}" ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
