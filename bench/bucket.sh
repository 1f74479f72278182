#!/usr/bin/env bash
# dedisk bucket-pool benchmark: a pool in a bucket against a pool directory, same run, same synthetic VM image;
# prints import and warm-read speed, FLUSH latency (with and without --sync-to-backend) and the bucket's bytes
# against the ideal (BucketPoolBench). The bucket is in memory with a fixed latency per request until the S3
# client lands (then the same figures against S3Proxy on loopback).
#
#   bench/bucket.sh                       # 256 MiB image, 2 ms per request, 200 flushes
#   bench/bucket.sh size=1G latencyMs=5 flushes=500 dir=/var/tmp
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DEDISK_ROOT"
./mvnw -q -B test-compile
cp_file=target/bench-classpath.txt
./mvnw -q -B dependency:build-classpath -Dmdep.outputFile="$cp_file" >/dev/null
exec "${JAVA_HOME:-/usr}/bin/java" -Xmx1g -cp "target/classes:target/test-classes:$(cat "$cp_file")" io.dedisk.store.bench.BucketPoolBench "$@"
