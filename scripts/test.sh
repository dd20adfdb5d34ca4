#!/bin/bash
# The test command: installs what is missing, builds everything with test
# hooks, runs the unit tests, fuzz-corpus replays and source checks
# (make check), then the integration suite against real servers (pytest).
# Run as root on Debian 12. Exit status 0 only when everything passed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
umask 022
start=$(date +%s)

echo "=== dependencies"
scripts/deps.sh

echo "=== build"
scripts/build.sh --enable-test-hooks

echo "=== unit tests, fuzz corpus replay, source checks (make check)"
rc=0
make -C build -s -j"$(nproc)" check || rc=$?
# Show what each test printed (vector results, replay counts), then the summary.
find build/t build/fuzz -name '*.log' ! -name 'test-suite.log' 2>/dev/null | sort | while read -r log; do
  echo "--- ${log#build/}"
  cat "$log"
done
[ -f build/test-suite.log ] && sed -n '1,12p' build/test-suite.log
if [ $rc -ne 0 ]; then
  echo "make check failed" >&2
  exit $rc
fi

echo "=== integration tests (real PostgreSQL, splitvaultd, httpd), from $(( $(date +%s) - start ))s"
SV_BUILDDIR="$top/build" /usr/bin/python3 -m pytest -v -p no:cacheprovider t/ "$@"

echo "=== the daemon's integration tests again, every daemon under valgrind (memcheck), from $(( $(date +%s) - start ))s"
make -C build -s check-daemon-valgrind

echo "=== all tests passed in $(( $(date +%s) - start ))s"
