#!/usr/bin/env bash
# dedisk bucket-pool benchmark: a pool in a bucket against a pool directory, same run, same synthetic VM image;
# prints import and warm-read speed, FLUSH latency (with and without --sync-to-backend) and the bucket's bytes
# against the ideal, and CPU seconds (BucketPoolBench). The bucket is S3Proxy in the JVM on loopback (bucket=s3proxy,
# the default: objects on disk, https; scheme=http for plain HTTP) or in memory with a fixed latency per request
# (bucket=memory latencyMs=2).
#
#   bench/bucket.sh                       # 1 GiB image on S3Proxy over https, 200 flushes
#   bench/bucket.sh size=256M             # quicker (the image is held in the heap: BUCKET_BENCH_HEAP, default 4g)
#   bench/bucket.sh scheme=http
#   bench/bucket.sh flushes=500 dir=/var/tmp
#   bench/bucket.sh bucket=memory latencyMs=5
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DEDISK_ROOT"
./mvnw -q -B test-compile
cp_file=target/bench-classpath.txt
./mvnw -q -B dependency:build-classpath -Dmdep.outputFile="$cp_file" >/dev/null
exec "${JAVA_HOME:-/usr}/bin/java" -Xmx"${BUCKET_BENCH_HEAP:-4g}" -cp "target/classes:target/test-classes:$(cat "$cp_file")" io.dedisk.store.bench.BucketPoolBench "$@"
