#!/bin/bash
# The test command: installs what is missing, builds everything with test
# hooks, runs the unit tests, fuzz-corpus replays and source checks
# (make check), then the integration suite against real servers (pytest)
# and, at the same time, the daemon's integration tests again with every
# daemon under valgrind (make check-daemon-valgrind, in two halves): each
# valgrind run is bound by one core (valgrind runs a process's threads one
# at a time) and the plain pass mostly waits for its servers, so on two
# cores they overlap well. When all of that has passed, the package test
# (scripts/package-test.sh): the Debian packages built, installed, walked
# through a decrypt on this host, purged, and everything undone; it comes
# last and alone, as it uses the system's Apache and PostgreSQL cluster
# (port 5432), which no other phase touches (the suite's clusters are
# throwaway ones on free ports). Prints how long each phase took, and the
# total.
# Run as root on Debian 12. Exit status 0 only when everything passed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
umask 022
start=$(date +%s)
phase_start=$start
phases=()
phase_done() {  # phase_done NAME: record how long the phase since the last one took
  local now
  now=$(date +%s)
  phases+=("$(printf '%-34s %4ds' "$1" $((now - phase_start)))")
  phase_start=$now
}
times() {
  echo "=== times"
  printf '  %s\n' "${phases[@]}"
  echo "  total                              $(( $(date +%s) - start ))s"
}
trap times EXIT

echo "=== dependencies"
scripts/deps.sh
phase_done "dependencies"

echo "=== build"
scripts/build.sh --enable-test-hooks
phase_done "build"

echo "=== unit tests, fuzz corpus replay, source checks (make check)"
rc=0
make -C build -s -j"$(nproc)" check || rc=$?
# Show what each test printed (vector results, replay counts), then the summary.
find build/t build/fuzz -name '*.log' ! -name 'test-suite.log' 2>/dev/null | sort | while read -r log; do
  echo "--- ${log#build/}"
  cat "$log"
done
[ -f build/test-suite.log ] && sed -n '1,12p' build/test-suite.log
phase_done "make check"
if [ $rc -ne 0 ]; then
  echo "make check failed" >&2
  exit $rc
fi

# The valgrind pass in the background, in two halves of about the same
# length (each its own pytest, PostgreSQL cluster, ports and directories:
# the runs share nothing), their output shown after the plain pass's. The
# files are the target's own list (splitvaultd/Makefile.inc,
# SVD_VALGRIND_TESTS), given to it half at a time.
vg_all=$(make -C build -s --no-print-directory -f Makefile -f - print-vg-tests <<'MK'
print-vg-tests:
	@echo $(SVD_VALGRIND_TESTS)
MK
)
vg_a="" vg_b=""
for f in $vg_all; do
  case "$f" in
    # about half of the valgrind pass's time each (measured); the second
    # half is followed by testssl.sh (below)
    *test_daemon_tls.py|*test_daemon_limits.py|*test_daemon_audit.py|*test_daemon_scaleout.py|*test_daemon_hardening.py) vg_b="$vg_b $f" ;;
    *) vg_a="$vg_a $f" ;;
  esac
done
vg_start=$(date +%s)
vglogs=() vgpids=() vgparts=()
# testssl.sh (t/test_daemon_testssl.py: a minute and a half of one core,
# servers idle) runs after the second half instead of in the plain pass.
slow=t/test_daemon_testssl.py
for half in "$vg_a" "$vg_b"; do
  [ -n "$half" ] || continue
  log=$(mktemp /tmp/sv-valgrind-pass.XXXXXX.log)
  if [ "$half" = "$vg_b" ]; then
    ( r=0
      make -C build -s check-daemon-valgrind SVD_VALGRIND_TESTS="$half" >"$log" 2>&1 || r=$?
      echo "--- $slow (plain, not under valgrind)" >>"$log"
      SV_BUILDDIR="$top/build" /usr/bin/python3 -m pytest -v -p no:cacheprovider $slow \
        >>"$log" 2>&1 || r=$?
      echo $r >"$log.rc" ) &
    half="$half, then $slow"
  else
    ( make -C build -s check-daemon-valgrind SVD_VALGRIND_TESTS="$half" >"$log" 2>&1
      echo $? >"$log.rc" ) &
  fi
  vglogs+=("$log") vgpids+=($!) vgparts+=("$half")
done

echo "=== integration tests (real PostgreSQL, splitvaultd, httpd), from $(( $(date +%s) - start ))s"
echo "    (the valgrind pass and $slow run meanwhile; their output follows)"
prc=0
SV_BUILDDIR="$top/build" /usr/bin/python3 -m pytest -v -p no:cacheprovider t/ --ignore=$slow "$@" \
  || prc=$?
phase_done "integration tests (pytest)"

echo "=== the daemon's integration tests again, every daemon under valgrind (memcheck), and $slow, started at $(( vg_start - start ))s"
vrc=0
for i in "${!vgpids[@]}"; do
  wait "${vgpids[$i]}" || true
  log=${vglogs[$i]}
  r=$(cat "$log.rc" 2>/dev/null || echo 1)
  [ "$r" -eq 0 ] || vrc=$r
  echo "--- valgrind pass, part $((i + 1)):${vgparts[$i]}"
  cat "$log"
  rm -f "$log" "$log.rc"
done
phase_done "valgrind pass (rest after pytest)"
echo "    the valgrind pass took $(( $(date +%s) - vg_start ))s in all"

if [ "$prc" -ne 0 ] || [ "$vrc" -ne 0 ]; then
  echo "integration tests failed (pytest: $prc, valgrind pass and $slow: $vrc)" >&2
  exit 1
fi

echo "=== package test (scripts/package-test.sh), from $(( $(date +%s) - start ))s"
krc=0
scripts/package-test.sh || krc=$?
phase_done "package test"
if [ "$krc" -ne 0 ]; then
  echo "the package test failed ($krc)" >&2
  exit 1
fi
echo "=== all tests passed in $(( $(date +%s) - start ))s"
