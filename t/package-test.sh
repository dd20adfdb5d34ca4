#!/bin/bash
# Package test: installs the built .debs, follows docs/install.md's package
# route, removes and purges them, and checks what each step leaves.
#   t/package-test.sh DIR     (DIR holds libapache2-mod-splitvault_*.deb
#                              and splitvaultd_*.deb from dpkg-buildpackage)
# Run as root on a Debian 12 machine where neither package is installed and
# /etc/splitvault, /var/lib/splitvault and /var/log/splitvault do not exist
# (it refuses otherwise: it must not touch a real installation). It starts
# the daemon by hand (systemd need not be PID 1) on a free loopback port,
# with a throwaway CA, and removes everything it made at the end.
set -euo pipefail
dir=${1:?usage: t/package-test.sh DIR-WITH-DEBS}
dir=$(cd "$dir" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
fail=0
say() { echo "package-test: $*"; }
bad() { echo "package-test: FAIL: $*"; fail=1; }

[ "$(id -u)" -eq 0 ] || { say "run as root"; exit 2; }
for p in splitvaultd libapache2-mod-splitvault; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed; then
        say "$p is installed here: refused (not a throwaway machine?)"
        exit 2
    fi
done
for d in /etc/splitvault /var/lib/splitvault /var/log/splitvault; do
    [ ! -e "$d" ] || { say "$d exists: refused (not a throwaway machine?)"; exit 2; }
done
mod=$(ls "$dir"/libapache2-mod-splitvault_*.deb | head -1)
dmn=$(ls "$dir"/splitvaultd_*.deb | head -1)

work=$(mktemp -d /tmp/sv-pkgtest.XXXXXX)
pid=
user_made=0
# a2enmod splitvault enables mod_dbd too: put it back as it was
dbd_was=0
[ ! -e /etc/apache2/mods-enabled/dbd.load ] || dbd_was=1
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    a2dismod -q splitvault >/dev/null 2>&1 || true
    [ "$dbd_was" -eq 1 ] || a2dismod -q dbd >/dev/null 2>&1 || true
    apt-get purge -y -q splitvaultd libapache2-mod-splitvault >/dev/null 2>&1 || true
    rm -rf /etc/splitvault /var/lib/splitvault /var/log/splitvault /run/splitvault "$work"
    [ "$user_made" -eq 0 ] || deluser --system --quiet splitvault >/dev/null 2>&1 || true
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
say "install (apt install ./*.deb)"
apt-get install -y -q "$mod" "$dmn" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; say "apt-get install failed"; exit 1; }
user_made=1
grep -q "neither enabled nor started" "$work/install.log" ||
    bad "the daemon's first-install message is missing"
grep -q "create its TLS files:" "$work/install.log" ||
    bad "the first-install message does not name the missing certificates"

say "what the packages made"
id splitvault >/dev/null 2>&1 || bad "no user splitvault"
[ "$(stat -c '%U:%G %a' /var/lib/splitvault)" = "splitvault:splitvault 700" ] ||
    bad "/var/lib/splitvault is $(stat -c '%U:%G %a' /var/lib/splitvault)"
[ "$(stat -c '%U:%G' /var/log/splitvault)" = "root:root" ] || bad "/var/log/splitvault is not root's"
[ "$(stat -c '%U:%G %a' /run/splitvault 2>/dev/null)" = "root:root 755" ] ||
    bad "/run/splitvault (tmpfiles.d) is missing or wrong"
for f in /etc/splitvault/splitvaultd.yaml /etc/apache2/mods-available/splitvault.load \
         /etc/apache2/mods-available/splitvault.conf; do
    dpkg-query -W -f='${Conffiles}\n' splitvaultd libapache2-mod-splitvault | grep -q " $f " ||
        bad "$f is not a conffile"
done
systemd-analyze verify /lib/systemd/system/splitvaultd.service >"$work/verify.log" 2>&1 ||
    { cat "$work/verify.log"; bad "systemd-analyze verify failed"; }
if systemctl is-enabled splitvaultd >/dev/null 2>&1; then bad "splitvaultd enabled on install"; fi
for p in splitvaultd splitvaultctl splitvault-admin; do
    "/usr/sbin/$p" --version | grep -q "test build" && bad "$p is a test build"
    man -w "$p" >/dev/null 2>&1 || bad "no man page for $p"
done

say "a2enmod splitvault; apache2ctl -t"
a2enmod -q splitvault >/dev/null || bad "a2enmod splitvault failed"
apache2ctl -t >"$work/apache.log" 2>&1 || { cat "$work/apache.log"; bad "apache2ctl -t failed"; }
a2dismod -q splitvault >/dev/null || bad "a2dismod splitvault failed"

say "without certificates: splitvaultd -t names the missing file"
if /usr/sbin/splitvaultd -t -c /etc/splitvault/splitvaultd.yaml >"$work/t.log" 2>&1; then
    bad "splitvaultd -t passed without certificates"
fi
grep -q "/etc/splitvault/" "$work/t.log" || { cat "$work/t.log"; bad "-t does not name the file"; }

say "certificates (docs/install.md, section 2), -t, a start by hand"
(
    cd "$work"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -out ca.crt -days 2 -subj "/CN=pkgtest CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out daemon.key 2>/dev/null
    openssl req -new -key daemon.key -subj "/CN=localhost" |
        openssl x509 -req -CA ca.crt -CAkey ca.key -days 2 -out daemon.crt 2>/dev/null \
            -extfile <(printf 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n')
) || { say "openssl failed"; exit 1; }
install -m 0644 "$work/ca.crt" "$work/daemon.crt" /etc/splitvault/
install -m 0600 "$work/daemon.key" /etc/splitvault/
/usr/sbin/splitvaultd -t -c /etc/splitvault/splitvaultd.yaml >"$work/t.log" 2>&1 ||
    { cat "$work/t.log"; bad "the default configuration fails -t with certificates"; }
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s/^  port: 7443$/  port: $port/" /etc/splitvault/splitvaultd.yaml
# under the unit's capability bounding set and no-new-privileges
# (debian/splitvaultd.service), as systemd would start it
caps=$(sed -n 's/^CapabilityBoundingSet=//p' /lib/systemd/system/splitvaultd.service |
    tr 'A-Z ' 'a-z\n' | sed -n 's/^cap_/+/p' | paste -sd, -)
[ -n "$caps" ] || bad "no CapabilityBoundingSet= in the unit"
setpriv --bounding-set=-all,"$caps" --inh-caps=-all --no-new-privs \
    /usr/sbin/splitvaultd -c /etc/splitvault/splitvaultd.yaml >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    splitvaultctl status >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
splitvaultctl status >"$work/status.log" 2>&1 ||
    { cat "$work/daemon.log" "$work/status.log"; bad "the daemon did not answer status"; }
grep -q "keeping only CAP_IPC_LOCK" "$work/daemon.log" ||
    { cat "$work/daemon.log"; bad "the daemon did not drop to its user keeping CAP_IPC_LOCK"; }
kill "$pid"
for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    bad "the daemon did not stop within 10 s of SIGTERM"
    kill -9 "$pid"
fi
wait "$pid" || bad "the daemon did not stop cleanly on SIGTERM"
pid=
[ -s /var/lib/splitvault/shares.db ] || bad "no share store after a start"
[ -s /var/log/splitvault/audit.log ] || bad "no audit log after a start"

grep -q "deb-systemd-invoke stop splitvaultd.service" /var/lib/dpkg/info/splitvaultd.prerm ||
    bad "the prerm does not stop the daemon on remove"

say "apt remove: configuration and data kept"
apt-get remove -y -q splitvaultd libapache2-mod-splitvault >"$work/remove.log" 2>&1 ||
    { cat "$work/remove.log"; bad "apt-get remove failed"; }
for f in /etc/splitvault/splitvaultd.yaml /var/lib/splitvault/shares.db \
         /var/log/splitvault/audit.log /etc/apache2/mods-available/splitvault.conf; do
    [ -e "$f" ] || bad "remove took $f"
done

say "apt purge: configuration gone, store and audit log kept and named"
apt-get purge -y -q splitvaultd libapache2-mod-splitvault >"$work/purge.log" 2>&1 ||
    { cat "$work/purge.log"; bad "apt-get purge failed"; }
grep -q "NOT removed: /var/lib/splitvault /var/log/splitvault" "$work/purge.log" ||
    { cat "$work/purge.log"; bad "purge did not say it kept the store and the audit log"; }
grep -q "kept /etc/splitvault" "$work/purge.log" || bad "purge did not say it kept our certificates"
[ -s /var/lib/splitvault/shares.db ] || bad "purge removed the share store"
[ -s /var/log/splitvault/audit.log ] || bad "purge removed the audit log"
for f in /etc/splitvault/splitvaultd.yaml /etc/splitvault/splitvaultd.yaml.dpkg-old \
         /etc/apache2/mods-available/splitvault.load /etc/apache2/mods-available/splitvault.conf \
         /lib/systemd/system/splitvaultd.service /usr/lib/tmpfiles.d/splitvaultd.conf \
         /usr/sbin/splitvaultd /usr/sbin/splitvault-admin /run/splitvault; do
    [ ! -e "$f" ] || bad "purge left $f"
done
left=$(find /etc/splitvault -type f | sort | tr '\n' ' ')
[ "$left" = "/etc/splitvault/ca.crt /etc/splitvault/daemon.crt /etc/splitvault/daemon.key " ] ||
    bad "/etc/splitvault holds after purge: $left"

[ $fail -eq 0 ] && say "all checks passed"
exit $fail
