#!/usr/bin/env bash
# The project's test command (also what CI runs, via .ci/run): checks for
# JDK 25 and the real NBD clients the tests drive (installing the Debian
# packages when missing), then runs every test with ./mvnw -B verify.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$DEDISK_ROOT"

find_java25
ensure_packages

echo "== dedisk tests =="
echo "java:     $("$JAVA" -version 2>&1 | head -n 1) ($JAVA_HOME)"
echo "qemu-img: $(qemu-img --version | head -n 1)"
echo "nbdinfo:  $(nbdinfo --version 2>&1 | head -n 1)"
echo "nbdkit:   $(nbdkit --version 2>&1 | head -n 1)"
echo "fio:      $(fio --version)"
echo "promtool: $(promtool --version 2>&1 | head -n 1)"
echo "chromium: $(chromium --version 2>/dev/null | head -n 1)"
echo "kernel:   $(uname -r), $(nproc) CPUs"
echo

exec ./mvnw -B verify "$@"
