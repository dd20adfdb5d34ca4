#!/bin/bash
# The demo command: installs what is missing, builds everything, and runs the
# whole system on 127.0.0.1 (PostgreSQL, splitvaultd, Apache with the demo
# site). Prints the URLs and demo credentials. Ctrl-C stops everything.
# Run as root on Debian 12.  Options: --port N, --keep (see scripts/demo.py).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
umask 022
scripts/deps.sh
scripts/build.sh
exec /usr/bin/python3 scripts/demo.py "$@"
