#!/bin/bash
# key1-rewrap benchmark: `splitvault-admin key1-rewrap` over FIELDS fields of
# a main database on a throwaway durable PostgreSQL cluster (fsync on, as
# shipped), next to the crypto bound from `openssl speed ecdhx25519` measured
# in the same run. Prints its figures and the machine. Not a test. As root.
#
#   bench/rewrap/run.sh [BUILDDIR]        (or: make bench-rewrap)
#
# Environment: FIELDS (default 1000000; rounded up to a multiple of 3, the
# fields of one record), JOBS (key1-rewrap --jobs; default: the tool's
# default), BATCH (--batch; default: the tool's), VERIFY (fields sampled
# after the run and opened with the new key1, default 1000), SPEED_SECONDS
# (per openssl speed run, default 5), PERF (a file: the rewrap runs under
# `perf record -g -o PERF`).
#
# The bound: per field, key1-rewrap opens key2a with the old key1 (one
# X25519 scalar multiplication, the DH) and seals it to the new one (two:
# the ephemeral key and the DH), so fields/s <= X25519 ops/s / 3, where
# X25519 ops/s is what `openssl speed ecdhx25519` reports (EVP derives on
# a ready context: no key import, no KDF, no AEAD, no database). When the
# rewrap uses all cores (--jobs >= cores), its bound is the all-core figure
# (one openssl speed per core at the same time, summed); PostgreSQL runs on
# the same cores.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
admin=$build/tools/splitvault-admin
gen=$build/bench/rewrap/svrewrapgen
fields=${FIELDS:-1000000}
verify=${VERIFY:-1000}
ssecs=${SPEED_SECONDS:-5}
ncpu=$(nproc)
# always through make: the generator links the core library statically
make -C "$build" -s tools/splitvault-admin bench/rewrap/svrewrapgen >/dev/null
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k5 -n | tail -1)
[ -x "$pgbin/initdb" ] || { echo "PostgreSQL is missing: apt-get install postgresql" >&2; exit 1; }

umask 022
work=$(mktemp -d /tmp/svrewrap.XXXXXX)
chmod 755 "$work"
pg=$work/pg
cleanup() {
    if [ -f "$pg/data/postmaster.pid" ]; then
        runuser -u postgres -- "$pgbin/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
# CPU seconds of PostgreSQL: the postmaster's exited children (the
# rewrap's backends once they close) and its live ones (writers, WAL)
pgcpu() {
    local pm; pm=$(head -1 "$pg/data/postmaster.pid")
    { awk '{print $16 + $17}' "/proc/$pm/stat"
      for c in $(cat "/proc/$pm/task/$pm/children"); do
          awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || true
      done; } | awk -v hz="$(getconf CLK_TCK)" '{s += $1} END {printf "%.2f", s / hz}'
}
# busy and total jiffies of the whole machine (all cores)
cpu() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "cores: $ncpu"
echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "kernel: $(uname -sr)"
echo "openssl: $(openssl version)"
echo "postgresql: $("$pgbin/postgres" --version)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "load average at start: $(load) (other work on the machine skews every figure)"

echo "== PostgreSQL: a throwaway cluster, fsync on"
mkdir -p "$pg/sock"
chown -R postgres:postgres "$pg"
runuser -u postgres -- "$pgbin/initdb" -D "$pg/data" -U postgres -A trust -E UTF8 \
    --no-instructions >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
runuser -u postgres -- "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/postgresql.log" -w -t 60 \
    -o "-p $port -k $pg/sock -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
runuser -u postgres -- "$pgbin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c "SHOW fsync" -At | sed 's/^/fsync=/'
sql() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d main "$@"; }
psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE main"
super="host=127.0.0.1 port=$port dbname=main user=postgres"
owner="host=127.0.0.1 port=$port dbname=main user=sv_bench_owner"
"$admin" -d "$super" roles --owner sv_bench_owner --web sv_bench_web --sql-dir "$top/sql/main" >/dev/null
"$admin" -d "$owner" schema --sql-dir "$top/sql/main" >/dev/null

echo "== keys: an old key1 (active while the fields were written) and a new one"
k=$work/keys; mkdir -p "$k"; chmod 700 "$k"
for n in old new; do
    openssl genpkey -algorithm X25519 -out "$k/$n.pem" 2>/dev/null
    openssl pkey -in "$k/$n.pem" -pubout -out "$k/$n.pub"
done
"$admin" -d "$owner" key1-register "$k/old.pub" --by bench >/dev/null
"$admin" -d "$owner" key1-register "$k/new.pub" --by bench >/dev/null
fp_old=$(sql -At -c "SELECT fingerprint FROM key1 WHERE active")
fp_new=$(sql -At -c "SELECT fingerprint FROM key1 WHERE NOT active")
echo "old=$fp_old new=$fp_new"

records=$(( (fields + 2) / 3 ))
fields=$(( records * 3 ))
echo "== fill: $fields fields ($records records of 3) wrapped to the old key1, $ncpu generators"
t0=$(date +%s.%N)
"$gen" records 1 "$records" | sql -c "COPY records (id, uuid, ref) FROM STDIN"
sql -c "SELECT setval('records_id_seq', $records)" >/dev/null
per=$(( (records + ncpu - 1) / ncpu ))
pids=()
for i in $(seq 0 $((ncpu - 1))); do
    first=$(( 1 + i * per )); n=$per
    [ $((first + n - 1)) -gt "$records" ] && n=$(( records - first + 1 ))
    [ "$n" -gt 0 ] || continue
    ( "$gen" fields "$k/old.pem" "$first" "$n" | sql -c "COPY fields (record_id, name, key2_pub, \
        enc, ct, share_id, wrap_enc, wrap_ct, key1_fp) FROM STDIN" ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
# what a database in service looks like: vacuumed, statistics known, and
# the fill's writes checkpointed before the clock starts
sql -c "VACUUM ANALYZE records" -c "VACUUM ANALYZE fields" -c "CHECKPOINT"
echo "fill: $(sql -At -c "SELECT count(*) FROM fields WHERE key1_fp = '$fp_old'") fields in \
$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}') s; \
fields table $(sql -At -c "SELECT pg_size_pretty(pg_total_relation_size('fields'))")"
"$admin" -d "$owner" key1-activate "$fp_new" >/dev/null

echo "== openssl speed -seconds $ssecs ecdhx25519 (one X25519 derive = one scalar multiplication)"
x1=$(openssl speed -seconds "$ssecs" ecdhx25519 2>/dev/null | awk '/X25519/ {print $NF}')
# all cores: one single-threaded run per core at the same time, summed
# (openssl speed -multi's ecdh summary is not a sum in 3.0)
xn=$(for _ in $(seq "$ncpu"); do
        openssl speed -seconds "$ssecs" ecdhx25519 2>/dev/null | awk '/X25519/ {print $NF}' &
     done | awk '{s += $1} END {printf "%.1f", s}')
echo "x25519_ops_per_s_1core=$x1"
echo "x25519_ops_per_s_${ncpu}cores=$xn"

echo "== key1-rewrap of $fields fields${JOBS:+, --jobs $JOBS}${BATCH:+, --batch $BATCH}"
echo "load average before: $(load)"
set -- "$k/old.pem" --to "$fp_new" --by bench
[ -n "${JOBS:-}" ] && set -- "$@" --jobs "$JOBS"
[ -n "${BATCH:-}" ] && set -- "$@" --batch "$BATCH"
c0=$(cpu); p0=$(pgcpu)
prof=()
[ -n "${PERF:-}" ] && prof=(perf record -q -g -o "$PERF" --)
/usr/bin/time -f "%e %U %S" -o "$work/time" "${prof[@]}" "$admin" -d "$owner" key1-rewrap "$@" \
    </dev/null 2>"$work/rewrap.err" | tee "$work/rewrap.out"
[ "${PIPESTATUS[0]}" = 0 ] || { cat "$work/rewrap.err"; exit 1; }
c1=$(cpu); p1=$(pgcpu)
echo "load average after: $(load)"
read -r wall user sys < "$work/time"
jobs_used=$(sed -n 's/.* in \([0-9]*\) jobs.*/\1/p' "$work/rewrap.out")
jobs_used=${jobs_used:-1}
busy=$(awk -v a="$c0" -v b="$c1" 'BEGIN {split(a, x, " "); split(b, y, " ");
    printf "%.2f", (y[1] - x[1]) / (y[2] - x[2])}')
tcpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')
pcpu=$(awk -v a="$p0" -v b="$p1" 'BEGIN {printf "%.2f", b - a}')
echo "key1_rewrap: wall_s=$wall tool_cpu_s=$tcpu postgresql_cpu_s=$pcpu jobs=$jobs_used \
machine_busy=$busy (fraction of all $ncpu cores, other processes included)"

echo "== check"
left=$(sql -At -c "SELECT count(*) FROM fields WHERE key1_fp = '$fp_old'")
moved=$(sql -At -c "SELECT count(*) FROM fields WHERE key1_fp = '$fp_new'")
echo "fields on the old key1: $left; on the new key1: $moved (of $fields)"
[ "$left" = 0 ] && [ "$moved" = "$fields" ] || { echo "FAILED: fields left behind" >&2; exit 1; }
sql -At -F '|' -c "SELECT r.uuid, f.name, f.share_id, encode(f.wrap_enc, 'hex'), \
    encode(f.wrap_ct, 'hex') FROM fields f JOIN records r \
    ON r.id = f.record_id ORDER BY random() LIMIT $verify" | "$gen" --verify "$verify" "$k/new.pem"

echo "== summary"
python3 - "$x1" "$xn" "$ncpu" "$fields" "$wall" "$jobs_used" "$tcpu" "$pcpu" <<'PY'
import sys
x1, xn, ncpu, fields, wall, jobs, tcpu, pcpu = (
    float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
    float(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8]))
rate = fields / wall
b1, bn = x1 / 3, xn / 3
bound, which = (bn, "all %d cores" % ncpu) if jobs >= ncpu else (b1 * jobs, "%d core(s)" % jobs)
print("bound = X25519 ops/s / 3 (open: 1 DH; seal: 1 ephemeral key + 1 DH): "
      "%.0f fields/s on one core, %.0f on all %d cores" % (b1, bn, ncpu))
print("key1-rewrap: %d fields in %.1f s = %.0f fields/s with %d job(s)" % (fields, wall, rate, jobs))
print("CPU per field: key1-rewrap %.0f us, PostgreSQL %.0f us; the crypto floor "
      "(3 X25519 at openssl speed's one-core rate) %.0f us"
      % (1e6 * tcpu / fields, 1e6 * pcpu / fields, 3e6 / x1))
print("ratio: %.2f of the one-core bound (openssl speed, one process; target 0.70: %s); "
      "%.2f of the bound for %s"
      % (rate / b1, "met" if rate / b1 >= 0.70 else "NOT met", rate / bound, which))
PY
