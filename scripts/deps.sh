#!/bin/bash
# Install the Debian 12 packages SplitVault needs to build, test and run its
# demo. Idempotent: installs only what is missing. Run as root.
set -euo pipefail

PACKAGES=(
  # build
  autoconf automake libtool pkg-config make gcc
  apache2-dev libapr1-dev libaprutil1-dev libssl-dev libyaml-dev libargon2-dev
  libgfshare-dev
  # run
  apache2 openssl libaprutil1-dbd-pgsql libaprutil1-dbd-sqlite3 postgresql postgresql-contrib
  # the share store's online backup (sqlite3 .backup; the restore drill test)
  sqlite3
  # tests and benchmarks
  check python3 python3-pytest python3-cryptography python3-psycopg2
  curl wrk apache2-utils testssl.sh valgrind clang libclang-rt-14-dev procps psmisc
  libgfshare-bin
  # the browser tests (t/test_module_browser.py): Debian's headless Chromium
  # driven through its own chromedriver; nothing downloads a browser or driver
  chromium chromium-driver python3-selenium
  # the man pages' lint (t/check-man.sh, make check)
  mandoc
  # packaging: dpkg-buildpackage -us -uc -b (debian/), lintian on the
  # packages, systemd-analyze verify on the unit (dh_apache2, which
  # debian/control's dh-apache2 names, is apache2-dev's: a virtual package
  # that dpkg-query never reports installed)
  debhelper dpkg-dev fakeroot lintian devscripts systemd
)

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/deps.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package installs must not start services: the scripts start what they need.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/splitvault-deps.log 2>&1; then
  echo "deps: updating package lists"
  apt-get update -q >>/tmp/splitvault-deps.log 2>&1
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/splitvault-deps.log 2>&1 || {
    echo "deps: apt-get install failed; see /tmp/splitvault-deps.log" >&2
    tail -20 /tmp/splitvault-deps.log >&2
    exit 1
  }
fi
echo "deps: done"
