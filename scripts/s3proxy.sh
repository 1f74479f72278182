#!/usr/bin/env bash
# A local S3 server for benchmarks and manual use: S3Proxy (org.gaul:s3proxy, the
# jar-with-dependencies, fetched once through the Maven Wrapper), filesystem
# provider, fixed test keys, on 127.0.0.1 only.
#
#   scripts/s3proxy.sh [start]   start in the background (idempotent), print the exports
#   scripts/s3proxy.sh run       run in the foreground (Ctrl-C stops it)
#   scripts/s3proxy.sh env       print the exports only
#   scripts/s3proxy.sh stop      stop the background server of this PORT
#
#   eval "$(scripts/s3proxy.sh)" && dedisk create --pool s3://dedisk/mypool ...
#
# Environment: PORT (8081), BUCKET (dedisk; created as a directory), S3PROXY_DIR
# (the cache: jar, properties, logs, pid; ~/.cache/dedisk/s3proxy),
# S3PROXY_DATA (the objects; $S3PROXY_DIR/data-$PORT).
# stdout carries only the export lines; everything else goes to stderr.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=4.1.0
PORT="${PORT:-8081}"
BUCKET="${BUCKET:-dedisk}"
CACHE="${S3PROXY_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dedisk/s3proxy}"
DATA="${S3PROXY_DATA:-$CACHE/data-$PORT}"
JAR="$CACHE/s3proxy-$VERSION-jar-with-dependencies.jar"
PROPS="$CACHE/s3proxy-$PORT.properties"
PIDFILE="$CACHE/s3proxy-$PORT.pid"
LOGFILE="$CACHE/s3proxy-$PORT.log"
ACCESS_KEY=dedisk
SECRET_KEY=dedisk-secret

[[ "$PORT" =~ ^[0-9]+$ ]] && ((PORT > 0 && PORT < 65536)) || die "PORT must be a TCP port number, found '$PORT'"
[[ "$BUCKET" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "BUCKET must be an S3 bucket name (3-63 of a-z 0-9 . -), found '$BUCKET'"

print_env() {
    cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=us-east-1
# pools: s3://$BUCKET/NAME
EOF
}

fetch_jar() {
    [[ -s "$JAR" ]] && return 0
    mkdir -p "$CACHE"
    log "fetching org.gaul:s3proxy:$VERSION:jar-with-dependencies into $CACHE"
    (cd "$DEDISK_ROOT" && ./mvnw -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
        "-Dartifact=org.gaul:s3proxy:$VERSION:jar:jar-with-dependencies" "-DoutputDirectory=$CACHE" >&2) ||
        die "could not fetch S3Proxy $VERSION through the Maven Wrapper (is Maven Central reachable?)"
    [[ -s "$JAR" ]] || die "Maven reported success but $JAR is missing"
}

write_config() {
    mkdir -p "$DATA/$BUCKET" # the filesystem provider's bucket is a directory
    cat >"$PROPS" <<EOF
s3proxy.endpoint=http://127.0.0.1:$PORT
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$ACCESS_KEY
s3proxy.credential=$SECRET_KEY
jclouds.provider=filesystem
jclouds.filesystem.basedir=$DATA
EOF
}

# running: true when our background server for this PORT is alive.
running() {
    [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

start() {
    if running; then
        log "S3Proxy already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), data $DATA)"
        print_env
        return 0
    fi
    port_open && die "port $PORT is in use by another program; choose another, e.g. PORT=$((PORT + 1)) $0"
    find_java25
    fetch_jar
    write_config
    nohup "$JAVA" -jar "$JAR" --properties "$PROPS" >"$LOGFILE" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    local i
    for ((i = 0; i < 300; i++)); do
        if port_open; then
            log "S3Proxy $VERSION on 127.0.0.1:$PORT (pid $(cat "$PIDFILE")), bucket $BUCKET, data $DATA, log $LOGFILE"
            print_env
            return 0
        fi
        running || { tail -n 20 "$LOGFILE" >&2; die "S3Proxy exited at start (log above, $LOGFILE)"; }
        sleep 0.1
    done
    die "S3Proxy did not open 127.0.0.1:$PORT within 30 s (log: $LOGFILE)"
}

stop() {
    if ! running; then
        log "no S3Proxy of ours running on port $PORT"
        rm -f "$PIDFILE"
        return 0
    fi
    local pid
    pid="$(cat "$PIDFILE")"
    kill "$pid"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "S3Proxy (pid $pid) did not stop within 10 s"
    rm -f "$PIDFILE"
    log "stopped S3Proxy on port $PORT (data kept in $DATA)"
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
env) print_env ;;
run)
    port_open && die "port $PORT is in use; choose another, e.g. PORT=$((PORT + 1)) $0 run"
    find_java25
    fetch_jar
    write_config
    print_env
    exec "$JAVA" -jar "$JAR" --properties "$PROPS" >&2 # its log; stdout is the exports
    ;;
*) die "usage: $0 [start|run|env|stop]" ;;
esac
