#!/bin/bash
# The intake benchmark in one command: reference ceilings (intake-ceiling.sh)
# and the real SplitVault intake path, on this machine, in one run.
# Usage: bench/intake/run.sh   (DUR=10 CONN=16 SV_BUILDDIR=build by default; as root)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
export SV_BUILDDIR=${SV_BUILDDIR:-$top/build}
for f in "$SV_BUILDDIR/mod_splitvault/.libs/mod_splitvault.so" "$SV_BUILDDIR/splitvaultd/splitvaultd" \
         "$SV_BUILDDIR/tools/splitvault-admin"; do
  [ -e "$f" ] || { echo "missing $f: build first (scripts/build.sh)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
umask 022
exec /usr/bin/python3 "$top/bench/intake/bench.py"
