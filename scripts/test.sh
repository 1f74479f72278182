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

./mvnw -B verify "$@"
# The packaged jar, as the launcher runs it: its help models every command, so most of picocli's classes (rewritten
# by the build, scripts/UpgradeOldClassFiles.java) are loaded and verified by the JVM.
echo "== packaged jar =="
"$JAVA" --enable-native-access=ALL-UNNAMED -jar target/dedisk.jar --help >/dev/null
"$JAVA" --enable-native-access=ALL-UNNAMED -jar target/dedisk.jar volume create --help >/dev/null
echo "target/dedisk.jar: help ok"
