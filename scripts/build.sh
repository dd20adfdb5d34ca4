#!/bin/bash
# Configure and build SplitVault in build/ (a VPATH build directory).
# Usage: scripts/build.sh [configure options...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ -n "$(find . -name Makefile.am -newer configure -o -name 'Makefile.inc' -newer configure 2>/dev/null | head -1)" ]; then
  echo "build: autoreconf"
  autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi
mkdir -p build
cd build
want="$*"
if [ ! -f config.status ] || [ "$(cat .configure-args 2>/dev/null)" != "$want" ]; then
  echo "build: configure $want"
  ../configure -q "$@"
  echo "$want" > .configure-args
fi
echo "build: make"
make -s -j"$(nproc)"
