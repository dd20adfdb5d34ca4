#!/bin/bash
# The package test command: builds the Debian packages from this tree
# (dpkg-buildpackage -us -uc -b, in a temporary copy: it writes the .debs
# into the parent of the tree it builds, never the repository's), runs
# lintian on them (an error fails), then t/package-test.sh: install,
# docs/install.md's package route on one host, intake -> key1 upload ->
# decrypt through the installed system, remove, purge, and everything
# undone. Removes the copy at the end.
# Run as root on a Debian 12 machine where the packages are not installed.
# The build skips make check (DEB_BUILD_OPTIONS=nocheck: scripts/test.sh
# has run it); set DEB_BUILD_OPTIONS yourself to build otherwise.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "package-test: $*"; }

if [ "$(id -u)" -ne 0 ]; then
    say "run as root: it installs packages, a system user and an Apache site"
    exit 2
fi
if ! grep -qs '^VERSION_ID="12"' /etc/os-release || ! grep -qs '^ID=debian' /etc/os-release; then
    say "this is not Debian 12: the packages are built and tested for it alone"
    exit 2
fi
for p in splitvaultd libapache2-mod-splitvault; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed; then
        say "$p is installed on this machine: the test would replace and purge it;"
        say "remove it first (apt purge $p) if this is not a real installation"
        exit 2
    fi
done

start=$(date +%s)
tmp=$(mktemp -d /tmp/sv-package-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
say "copying the tree (git ls-files) into $tmp/splitvault"
mkdir "$tmp/splitvault"
# what git tracks, and new files it does not ignore; not build/ nor files
# deleted in the work tree
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
        case $f in build/*) continue ;; esac
        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done | xargs -0 cp -P --parents -t "$tmp/splitvault") ||
    { say "copying the tree failed"; exit 1; }

say "building the packages (dpkg-buildpackage -us -uc -b; log: $tmp/build.log)"
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-"nocheck parallel=2"}
if ! (cd "$tmp/splitvault" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
    tail -40 "$tmp/build.log"
    say "dpkg-buildpackage failed"
    exit 1
fi
ls "$tmp"/*.deb | sed 's|.*/|package-test:   built |'
say "built in $(( $(date +%s) - start ))s"

# debian/README.source lists the warnings lintian leaves, and why; an
# error fails the test
say "lintian on the .changes (errors fail; log: $tmp/lintian.log)"
# (as nobody: lintian unpacks what it checks, and warns when run as root)
chmod 755 "$tmp"
if ! runuser -u nobody -- env HOME=/nonexistent lintian --fail-on error \
        "$tmp"/splitvault_*_*.changes >"$tmp/lintian.log" 2>&1; then
    cat "$tmp/lintian.log"
    say "lintian reports errors"
    exit 1
fi
sed 's/^/package-test:   lintian: /' "$tmp/lintian.log"

rc=0
"$top/t/package-test.sh" "$tmp" || rc=$?
say "done in $(( $(date +%s) - start ))s (exit status $rc)"
exit $rc
