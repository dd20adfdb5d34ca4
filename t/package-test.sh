#!/bin/bash
# Package test: installs the built .debs, follows docs/install.md's package
# route for one host that is web, database and daemon host at once, walks
# intake -> key1 upload -> decrypt through the installed system, removes
# and purges the packages, and checks what each step leaves.
#   t/package-test.sh DIR     (DIR holds libapache2-mod-splitvault_*.deb
#                              and splitvaultd_*.deb from dpkg-buildpackage;
#                              scripts/package-test.sh builds them first)
# Run as root on a Debian 12 machine where neither package is installed,
# /etc/splitvault, /var/lib/splitvault and /var/log/splitvault do not exist,
# the system's Apache is not running and its PostgreSQL cluster has no
# database "splitvault" (it refuses otherwise: it must not touch a real
# installation). Where it must differ from install.md it says so: the
# daemon and the site on free loopback ports, a throwaway CA for every
# certificate, no systemd (the daemon runs from the unit's own command
# lines, by hand). The EXIT trap undoes everything it did, whatever failed.
set -euo pipefail
dir=${1:?usage: t/package-test.sh DIR-WITH-DEBS}
dir=$(cd "$dir" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
fail=0
say() { echo "package-test: $*"; }
bad() { echo "package-test: FAIL: $*"; fail=1; }
die() { echo "package-test: FAIL: $*"; exit 1; }
# wait_for SECONDS WHAT COMMAND...: poll until COMMAND succeeds
wait_for() {
    local n=$(( $1 * 10 )) what=$2
    shift 2
    while ! "$@" >/dev/null 2>&1; do
        n=$((n - 1))
        [ $n -gt 0 ] || { bad "$what within the time allowed"; return 1; }
        sleep 0.1
    done
}
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
unit=/lib/systemd/system/splitvaultd.service
conf=/etc/splitvault/splitvaultd.yaml
apache_pidfile=/var/run/apache2/apache2.pid
error_log=/var/log/apache2/error.log

[ "$(id -u)" -eq 0 ] || { say "run as root"; exit 2; }
for p in splitvaultd libapache2-mod-splitvault; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed; then
        say "$p is installed here: refused (not a throwaway machine?)"
        exit 2
    fi
done
for d in /etc/splitvault /var/lib/splitvault /var/log/splitvault \
         /etc/apache2/sites-available/splitvault.conf; do
    [ ! -e "$d" ] || { say "$d exists: refused (not a throwaway machine?)"; exit 2; }
done
if [ -s "$apache_pidfile" ] && kill -0 "$(cat "$apache_pidfile")" 2>/dev/null; then
    say "the system's Apache is running: refused (not a throwaway machine?)"
    exit 2
fi
for port in 80 443; do  # ports.conf: Debian's Listen 80, and 443 with mod_ssl
    if listening $port; then say "port $port is taken: Apache could not start"; exit 2; fi
done
read -r pgver pgcluster pgport _ < <(pg_lsclusters -h | head -1) ||
    { say "no PostgreSQL cluster (pg_lsclusters)"; exit 2; }
mod=$(ls "$dir"/libapache2-mod-splitvault_*.deb | head -1)
dmn=$(ls "$dir"/splitvaultd_*.deb | head -1)

work=$(mktemp -d /tmp/sv-pkgtest.XXXXXX)
pid=
user_made=0
apache_started=0
pg_started=0 pg_edited=0 db_made=0 roles_made=
pgconf=/etc/postgresql/$pgver/$pgcluster
# what of Apache's configuration was enabled before: put it back as it was
for d in mods sites conf; do
    ls /etc/apache2/$d-enabled >"$work/$d-enabled.before"
done
# and a2enmod's and a2dismod's record of what the admin chose
cp -a /var/lib/apache2 "$work/var-lib-apache2"
apache_restore() {
    local d f name dis
    for d in mods sites conf; do
        case $d in mods) dis=a2dismod ;; sites) dis=a2dissite ;; conf) dis=a2disconf ;; esac
        for f in "/etc/apache2/$d-enabled"/*; do
            name=${f##*/}
            ! grep -qxF "$name" "$work/$d-enabled.before" || continue
            case $name in *.load | *.conf) ;; *) continue ;; esac
            [ "$d" = mods ] && [ "${name%.conf}" != "$name" ] && continue
            $dis -q -f "${name%.*}" >/dev/null 2>&1 || rm -f "$f"
        done
    done
    rm -f /etc/apache2/sites-available/splitvault.conf
    for d in module site conf; do
        [ -d "$work/var-lib-apache2/$d" ] || continue
        rm -rf "/var/lib/apache2/$d" && cp -a "$work/var-lib-apache2/$d" /var/lib/apache2/
    done
}
pg_sql() {  # pg_sql SQL: as the cluster's superuser, the statement on stdin
    runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -p "$pgport" -d postgres <<<"$1"
}
pg_online() { pg_lsclusters -h "$pgver" "$pgcluster" | grep -q ' online '; }
cleanup() {
    set +e
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    fi
    if [ "$apache_started" -eq 1 ] && [ -s "$apache_pidfile" ]; then
        apache2ctl stop >/dev/null 2>&1
        for _ in $(seq 100); do
            [ -s "$apache_pidfile" ] && kill -0 "$(cat "$apache_pidfile")" 2>/dev/null || break
            sleep 0.1
        done
    fi
    apache_restore
    if pg_online; then
        [ "$db_made" -eq 0 ] || pg_sql "DROP DATABASE IF EXISTS splitvault WITH (FORCE)" >/dev/null 2>&1
        for r in $roles_made; do pg_sql "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; done
    fi
    if [ "$pg_edited" -eq 1 ]; then
        cp -p "$work/pg_hba.conf" "$work/pg_ident.conf" "$pgconf/"
        ! pg_online || [ "$pg_started" -eq 1 ] || pg_ctlcluster "$pgver" "$pgcluster" reload
    fi
    [ "$pg_started" -eq 0 ] || pg_ctlcluster "$pgver" "$pgcluster" stop >/dev/null 2>&1
    apt-get purge -y -q splitvaultd libapache2-mod-splitvault >/dev/null 2>&1
    rm -rf /etc/splitvault /var/lib/splitvault /var/log/splitvault /run/splitvault "$work"
    [ "$user_made" -eq 0 ] || deluser --system --quiet splitvault >/dev/null 2>&1
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
say "install (apt install ./*.deb)"
apt-get install -y -q "$mod" "$dmn" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; die "apt-get install failed"; }
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
for f in $conf /etc/apache2/mods-available/splitvault.load \
         /etc/apache2/mods-available/splitvault.conf; do
    dpkg-query -W -f='${Conffiles}\n' splitvaultd libapache2-mod-splitvault | grep -q " $f " ||
        bad "$f is not a conffile"
done
systemd-analyze verify $unit >"$work/verify.log" 2>&1 ||
    { cat "$work/verify.log"; bad "systemd-analyze verify failed"; }
if systemctl is-enabled splitvaultd >/dev/null 2>&1; then bad "splitvaultd enabled on install"; fi
for p in splitvaultd splitvaultctl splitvault-admin; do
    "/usr/sbin/$p" --version | grep -q "test build" && bad "$p is a test build"
    man -w "$p" >/dev/null 2>&1 || bad "no man page for $p"
done

say "a2enmod splitvault; apache2ctl -t"
a2enmod -q splitvault >/dev/null || bad "a2enmod splitvault failed"
apache2ctl -t >"$work/apache.log" 2>&1 || { cat "$work/apache.log"; bad "apache2ctl -t failed"; }

say "without certificates: splitvaultd -t names the missing file"
if /usr/sbin/splitvaultd -t -c $conf >"$work/t.log" 2>&1; then
    bad "splitvaultd -t passed without certificates"
fi
grep -q "/etc/splitvault/" "$work/t.log" || { cat "$work/t.log"; bad "-t does not name the file"; }

# ---------------------------------------------------------------------------
say "certificates (install.md, section 2)"
# Deviation: a throwaway CA valid two days, the daemon's name "localhost",
# and one more certificate for the HTTPS site, which a real site gets from
# its public CA.
(
    cd "$work"
    cert() {  # cert NAME SUBJECT EXTENSIONS
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
        openssl req -new -key "$1.key" -subj "$2" |
            openssl x509 -req -CA ca.crt -CAkey ca.key -days 2 -out "$1.crt" 2>/dev/null \
                -extfile <(printf '%b' "$3")
    }
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -out ca.crt -days 2 -subj "/CN=pkgtest CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    cert daemon /CN=localhost 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n'
    cert web /CN=splitvault-web1 'extendedKeyUsage=clientAuth\n'
    cert reconcile /CN=splitvault-reconcile 'extendedKeyUsage=clientAuth\n'
    cert site /CN=localhost 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n'
) || die "openssl failed"
install -m 0644 "$work/ca.crt" "$work/daemon.crt" "$work/web.crt" /etc/splitvault/
install -m 0600 "$work/daemon.key" "$work/web.key" /etc/splitvault/
/usr/sbin/splitvaultd -t -c $conf >"$work/t.log" 2>&1 ||
    { cat "$work/t.log"; bad "the default configuration fails -t with certificates"; }

say "the daemon host (section 3): its clients in splitvaultd.yaml, -t, a start"
fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
daemon_port=$(free_port)
# Deviation: a free port instead of 7443 (the machine may run other daemons).
sed -i -e "s/^  port: 7443$/  port: $daemon_port/" \
    -e "s/\"0\{64\}\"/\"$(fp "$work/web.crt")\"/" \
    -e "s/\"1\{64\}\"/\"$(fp "$work/reconcile.crt")\"/" $conf
grep -q "$(fp "$work/web.crt")" $conf || die "could not list the web certificate in $conf"
# systemctl enable --now splitvaultd, without systemd: the unit's own
# ExecStartPre= and ExecStart= lines, under its capability bounding set
# and no-new-privileges, as systemd would run them (its journal: daemon.log)
pre=$(sed -n 's/^ExecStartPre=//p' $unit)
cmd=$(sed -n 's/^ExecStart=//p' $unit)
[ -n "$cmd" ] && [ "$(echo "$cmd" | wc -l)" -eq 1 ] || die "not one ExecStart= in $unit"
case "$pre$cmd" in [-@:+!]*) die "the unit's commands have prefixes this test does not run" ;; esac
caps=$(sed -n 's/^CapabilityBoundingSet=//p' $unit |
    tr 'A-Z ' 'a-z\n' | sed -n 's/^cap_/+/p' | paste -sd, -)
[ -n "$caps" ] || bad "no CapabilityBoundingSet= in the unit"
bounded() { setpriv --bounding-set=-all,"$caps" --inh-caps=-all --no-new-privs "$@"; }
while read -r line; do
    [ -n "$line" ] || continue
    # shellcheck disable=SC2086 # the unit's command line, split as systemd splits it
    bounded $line >>"$work/daemon.log" 2>&1 ||
        { cat "$work/daemon.log"; die "ExecStartPre= failed: $line"; }
done <<<"$pre"
# shellcheck disable=SC2086 # (not the function: $! must be the daemon's pid)
setpriv --bounding-set=-all,"$caps" --inh-caps=-all --no-new-privs $cmd \
    >>"$work/daemon.log" 2>&1 &
pid=$!
wait_for 10 "the daemon answering splitvaultctl status" splitvaultctl status ||
    { cat "$work/daemon.log"; die "the daemon did not start"; }
grep -q "keeping only CAP_IPC_LOCK" "$work/daemon.log" ||
    { cat "$work/daemon.log"; bad "the daemon did not drop to its user keeping CAP_IPC_LOCK"; }

# ---------------------------------------------------------------------------
say "the main database (section 4) in cluster $pgver/$pgcluster"
# The roles in from this host only, and only to this database: the owner
# role by peer authentication from root (the sysadmin running
# splitvault-admin), the web role with its password. Deviation: one host,
# so the web role comes over the Unix socket, not hostssl from the web
# hosts' network (Debian's cluster has ssl off).
cp -p "$pgconf/pg_hba.conf" "$pgconf/pg_ident.conf" "$work/"
pg_edited=1
{
    echo "local    splitvault  splitvault_owner                  peer map=splitvault"
    echo "local    splitvault  splitvault_web                    scram-sha-256"
    cat "$work/pg_hba.conf"
} >"$pgconf/pg_hba.conf"
echo "splitvault      root                    splitvault_owner" >>"$pgconf/pg_ident.conf"
if pg_online; then
    pg_ctlcluster "$pgver" "$pgcluster" reload
else
    pg_ctlcluster "$pgver" "$pgcluster" start || die "pg_ctlcluster $pgver $pgcluster start failed"
    pg_started=1
fi
[ -z "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = 'splitvault'")" ] ||
    { say "database splitvault exists in $pgver/$pgcluster: refused"; exit 2; }
for r in splitvault_owner splitvault_web splitvault_console; do
    [ -n "$(pg_sql "SELECT 1 FROM pg_roles WHERE rolname = '$r'")" ] || roles_made="$roles_made $r"
done
runuser -u postgres -- createdb splitvault || die "createdb failed"
db_made=1
runuser -u postgres -- splitvault-admin -d "dbname=splitvault" roles >"$work/roles.log" 2>&1 ||
    { cat "$work/roles.log"; die "splitvault-admin roles failed"; }
# \password as install.md says; it reads the terminal, or standard input
# where there is none (setsid: no controlling terminal)
web_pw=$(openssl rand -hex 16)
printf '%s\n%s\n' "$web_pw" "$web_pw" |
    setsid -w runuser -u postgres -- psql -X -q -c '\password splitvault_web' >/dev/null 2>&1 ||
    die "psql \\password splitvault_web failed"
export SPLITVAULT_DSN="dbname=splitvault user=splitvault_owner"
splitvault-admin schema >"$work/schema.log" 2>&1 ||
    { cat "$work/schema.log"; die "splitvault-admin schema failed"; }
splitvault-admin schema-version | grep -q . || bad "schema-version says nothing"

say "staff and key1 (section 6)"
admin_pw=$(openssl rand -hex 16)
dec_pw=$(openssl rand -hex 16)
echo "$admin_pw" | splitvault-admin staff-add alice --admin >/dev/null ||
    die "staff-add alice --admin failed"
echo "$dec_pw" | splitvault-admin staff-add bob --update --decrypt >/dev/null ||
    die "staff-add bob --update --decrypt failed"
# Deviation: the passphrase from the environment, not the terminal.
export K1PASS
K1PASS=$(openssl rand -hex 16)
openssl genpkey -algorithm X25519 -aes256 -pass env:K1PASS -out "$work/key1.pem" &&
    openssl pkey -in "$work/key1.pem" -passin env:K1PASS -pubout -out "$work/key1.pub" ||
    die "openssl could not make key1"
splitvault-admin key1-register "$work/key1.pub" --by alice >"$work/key1.log" 2>&1 ||
    { cat "$work/key1.log"; die "key1-register failed"; }

# ---------------------------------------------------------------------------
say "the web host (section 5): the HTTPS site, apache2ctl -t, apache2ctl start"
web_port=$(free_port)
install -m 0600 -o www-data -g www-data /dev/null /etc/splitvault/pgpass
echo "localhost:$pgport:splitvault:splitvault_web:$web_pw" >/etc/splitvault/pgpass
a2enmod -q ssl >/dev/null || bad "a2enmod ssl failed"
example=/usr/share/doc/libapache2-mod-splitvault/examples/httpd-splitvault.conf
# The site as install.md shows it: the example inside the HTTPS virtual
# host, its LoadModule line deleted, the database, the daemon and the
# certificates filled in. Deviation: a free loopback port instead of 443,
# and the site's certificate from the throwaway CA.
{
    echo "Listen 127.0.0.1:$web_port"
    echo "<VirtualHost 127.0.0.1:$web_port>"
    echo "    ServerName localhost"
    echo "    SSLEngine on"
    echo "    SSLCertificateFile $work/site.crt"
    echo "    SSLCertificateKeyFile $work/site.key"
    sed -e '/^LoadModule splitvault_module/d' \
        -e "s|^DBDParams .*|DBDParams \"dbname=splitvault user=splitvault_web passfile=/etc/splitvault/pgpass\"|" \
        -e "s|^SplitVaultDaemon 127.0.0.1:7443\$|SplitVaultDaemon 127.0.0.1:$daemon_port|" \
        -e 's|^#SplitVaultDaemonName .*|SplitVaultDaemonName localhost|' \
        -e 's/^/    /' "$example"
    echo "</VirtualHost>"
} >/etc/apache2/sites-available/splitvault.conf
grep -q "^    SplitVaultDaemon 127.0.0.1:$daemon_port\$" /etc/apache2/sites-available/splitvault.conf ||
    die "the example's SplitVaultDaemon line changed: update this test"
a2ensite -q splitvault >/dev/null || bad "a2ensite splitvault failed"
# what Apache logs from now on is this test's
log_from=$(( $(stat -c %s "$error_log" 2>/dev/null || echo 0) + 1 ))
apache2ctl -t >"$work/apache.log" 2>&1 || { cat "$work/apache.log"; die "apache2ctl -t failed"; }
# systemctl reload apache2, without systemd: apache2ctl starts httpd itself
apache2ctl start >"$work/apache.log" 2>&1 || { cat "$work/apache.log"; die "apache2ctl start failed"; }
apache_started=1
site=https://localhost:$web_port/splitvault
wait_for 30 "Apache answering $site/" curl -fsS -o /dev/null --cacert "$work/ca.crt" "$site/" ||
    { tail -20 "$error_log"; die "Apache did not answer"; }

say "the walk: intake, key1 upload, decrypt (package_walk.py)"
SV_WALK_ADMIN=alice SV_WALK_ADMIN_PASSWORD=$admin_pw \
SV_WALK_DECRYPTER=bob SV_WALK_DECRYPTER_PASSWORD=$dec_pw SV_WALK_KEY1_PASSPHRASE=$K1PASS \
    /usr/bin/python3 "$top/t/package_walk.py" "$site" "$work/ca.crt" /splitvault-keys \
    "$work/key1.pem" || { tail -20 "$error_log"; bad "the walk failed"; }
splitvaultctl status >"$work/status.log" 2>&1 || bad "splitvaultctl status failed"
grep -qx "decrypts=1" "$work/status.log" ||
    { cat "$work/status.log"; bad "splitvaultctl status does not show the decrypt"; }
if tail -c +"$log_from" "$error_log" | grep -E '\[[a-z_]*:(error|crit|alert|emerg)\]'; then
    bad "Apache logged errors"
fi

say "stop Apache and the daemon"
apache2ctl stop >/dev/null 2>&1 || bad "apache2ctl stop failed"
apache_gone() { ! { [ -s "$apache_pidfile" ] && kill -0 "$(cat "$apache_pidfile")"; } 2>/dev/null; }
wait_for 10 "Apache stopping" apache_gone || true
apache_started=0
kill "$pid"
daemon_gone() { ! kill -0 "$pid" 2>/dev/null; }
if ! wait_for 10 "the daemon stopping on SIGTERM" daemon_gone; then kill -9 "$pid"; fi
wait "$pid" || bad "the daemon did not stop cleanly on SIGTERM"
pid=
[ -s /var/lib/splitvault/shares.db ] || bad "no share store after a start"
[ -s /var/log/splitvault/audit.log ] || bad "no audit log after a start"

grep -q "deb-systemd-invoke stop splitvaultd.service" /var/lib/dpkg/info/splitvaultd.prerm ||
    bad "the prerm does not stop the daemon on remove"

# ---------------------------------------------------------------------------
say "apt remove: configuration and data kept, Apache still configurable"
# every file the packages shipped, to look for after the purge
dpkg-query -L splitvaultd libapache2-mod-splitvault | sort -u >"$work/files"
# install.md: the site goes first (it uses the module's directives)
a2dissite -q splitvault >/dev/null || bad "a2dissite splitvault failed"
apt-get remove -y -q splitvaultd libapache2-mod-splitvault >"$work/remove.log" 2>&1 ||
    { cat "$work/remove.log"; bad "apt-get remove failed"; }
for f in $conf /var/lib/splitvault/shares.db \
         /var/log/splitvault/audit.log /etc/apache2/mods-available/splitvault.conf; do
    [ -e "$f" ] || bad "remove took $f"
done
[ ! -e /etc/apache2/mods-enabled/splitvault.load ] || bad "remove left the module enabled"
apache2ctl -t >"$work/apache.log" 2>&1 ||
    { cat "$work/apache.log"; bad "apache2ctl -t fails after remove"; }

say "apt purge: configuration gone, store and audit log kept and named"
apt-get purge -y -q splitvaultd libapache2-mod-splitvault >"$work/purge.log" 2>&1 ||
    { cat "$work/purge.log"; bad "apt-get purge failed"; }
grep -q "NOT removed: /var/lib/splitvault /var/log/splitvault" "$work/purge.log" ||
    { cat "$work/purge.log"; bad "purge did not say it kept the store and the audit log"; }
grep -q "kept /etc/splitvault" "$work/purge.log" || bad "purge did not say it kept our certificates"
[ -s /var/lib/splitvault/shares.db ] || bad "purge removed the share store"
[ -s /var/log/splitvault/audit.log ] || bad "purge removed the audit log"
for f in $conf /etc/splitvault/splitvaultd.yaml.dpkg-old \
         /etc/apache2/mods-available/splitvault.load /etc/apache2/mods-available/splitvault.conf \
         $unit /usr/lib/tmpfiles.d/splitvaultd.conf /usr/lib/apache2/modules/mod_splitvault.so \
         /usr/sbin/splitvaultd /usr/sbin/splitvaultctl /usr/sbin/splitvault-admin \
         /usr/share/splitvault /usr/share/doc/splitvaultd /usr/share/doc/libapache2-mod-splitvault \
         /run/splitvault; do
    [ ! -e "$f" ] || bad "purge left $f"
done
while read -r f; do
    [ -d "$f" ] || [ ! -e "$f" ] || bad "purge left $f"
done <"$work/files"
left=$(find /etc/apache2 -name '*splitvault*' ! -path /etc/apache2/sites-available/splitvault.conf)
[ -z "$left" ] || bad "purge left in /etc/apache2: $left"
left=$(find /etc/splitvault -type f | sort | tr '\n' ' ')
[ "$left" = "/etc/splitvault/ca.crt /etc/splitvault/daemon.crt /etc/splitvault/daemon.key /etc/splitvault/pgpass /etc/splitvault/web.crt /etc/splitvault/web.key " ] ||
    bad "/etc/splitvault holds after purge: $left"
left=$(find /var/lib/splitvault /var/log/splitvault -mindepth 1 | sort | tr '\n' ' ')
case "$left" in
    "/var/lib/splitvault/shares.db "*"/var/log/splitvault/audit.log /var/log/splitvault/audit.log.head ") ;;
    *) bad "the store and the audit log's directories hold after purge: $left" ;;
esac
apache2ctl -t >"$work/apache.log" 2>&1 ||
    { cat "$work/apache.log"; bad "apache2ctl -t fails after purge"; }

[ $fail -eq 0 ] && say "all checks passed"
exit $fail
