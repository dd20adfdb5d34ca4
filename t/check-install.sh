#!/bin/sh
# Install check run by `make check`: `make install DESTDIR=...` puts every
# part where the build says it goes (the three programs, the module without
# its libtool archive, the man pages, the example configurations, the SQL
# scripts, the documentation), the installed programs run, and `make
# uninstall` takes all of it away again: nothing but empty directories may
# be left.
#
# Builds nothing: it runs in a build directory whose `make` is done (make
# check builds first). A test build (--enable-test-hooks) refuses `make
# install`; this check alone stages one, into a temporary directory of its
# own that it removes at the end, by naming that directory in
# SV_TEST_INSTALL_DESTDIR as well as in DESTDIR (Makefile.am).
# Run from the build directory.
set -u
fail=0
dest=$(mktemp -d "${TMPDIR:-/tmp}/sv-install.XXXXXX") || exit 1
log=$dest.log
trap 'rm -rf "$dest" "$log"' EXIT

# A make of our own, not one of make check's jobs (its flags and jobserver).
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ${MAKE:-make} -s --no-print-directory "$@"
}

# where this build installs each kind of file
dirs=$(mk -f Makefile -f - sv-print-dirs <<'MK'
sv-print-dirs:
	@echo "sbindir='$(sbindir)' man5dir='$(man5dir)' man8dir='$(man8dir)'"
	@echo "moddir='$(mod_splitvaultdir)' pkgdatadir='$(pkgdatadir)' docdir='$(docdir)'"
	@echo "docs='$(dist_doc_DATA)'"
MK
) || { echo "cannot read the install directories from Makefile"; exit 1; }
sbindir= man5dir= man8dir= moddir= pkgdatadir= docdir= docs=
eval "$dirs"

if ! mk install DESTDIR="$dest" SV_TEST_INSTALL_DESTDIR="$dest" >"$log" 2>&1; then
    echo "make install DESTDIR=$dest failed:"
    cat "$log"
    exit 1
fi

want="$sbindir/splitvaultd $sbindir/splitvaultctl $sbindir/splitvault-admin
$moddir/mod_splitvault.so
$man5dir/splitvaultd.yaml.5 $man8dir/splitvaultd.8 $man8dir/splitvaultctl.8
$man8dir/splitvault-admin.8 $man8dir/mod_splitvault.8
$pkgdatadir/conf/httpd-splitvault.conf $pkgdatadir/conf/splitvaultd.yaml
$pkgdatadir/sql/roles.sql"
for f in "${srcdir:-.}"/sql/main/*.sql; do
    want="$want $pkgdatadir/sql/main/$(basename "$f")"
done
for f in $docs; do
    want="$want $docdir/$(basename "$f")"
done
n=0
for f in $want; do
    n=$((n + 1))
    if [ ! -f "$dest$f" ]; then
        echo "make install did not install $f"
        fail=1
    fi
done
if [ -e "$dest$moddir/mod_splitvault.la" ]; then
    echo "make install left the libtool archive $moddir/mod_splitvault.la"
    fail=1
fi

# the installed programs run from where they were put (no path into the
# build directory: libtool relinks them at install)
for p in splitvaultd splitvaultctl splitvault-admin; do
    if ! out=$("$dest$sbindir/$p" --version 2>&1); then
        echo "installed $p --version failed: $out"
        fail=1
    fi
done
bld=$(pwd -P)
for f in "$dest$sbindir"/* "$dest$moddir/mod_splitvault.so"; do
    if command -v readelf >/dev/null 2>&1 &&
       readelf -d "$f" 2>/dev/null | grep -E 'R(UN)?PATH' | grep -q "$bld"; then
        echo "$f keeps a run path into the build directory"
        fail=1
    fi
done

if ! mk uninstall DESTDIR="$dest" >"$log" 2>&1; then
    echo "make uninstall DESTDIR=$dest failed:"
    cat "$log"
    exit 1
fi
left=$(cd "$dest" && find . ! -type d | sort)
if [ -n "$left" ]; then
    echo "make uninstall left behind:"
    echo "$left"
    fail=1
fi
[ $fail -eq 0 ] &&
    echo "installed $n files into a DESTDIR and uninstalled them; nothing but directories left"
exit $fail
