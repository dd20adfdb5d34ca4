#!/bin/bash
# splitvaultd benchmark: STORE and DECRYPT throughput and latency at 16
# persistent mutual-TLS connections on loopback with the limiter off, next to
# `openssl speed ecdhx25519` measured in the same run, and the daemon's RSS
# with 1M shares stored. Prints its figures and the machine. Not a test.
#
#   bench/daemon/run.sh [BUILDDIR]        (or: make bench-daemon)
#
# Environment: SVB_SECONDS (per phase, default 10), SVB_CONNS (16),
# SVB_SHARES (1000000), SVB_ROUNDS (DECRYPT phases repeated, default 3),
# SVB_USER (nobody), SVB_PHASES (default "decrypt store memory": which
# parts to run after the X25519 figures).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
daemon=$build/splitvaultd/splitvaultd
bench=$build/bench/daemon/svbench
secs=${SVB_SECONDS:-10}
conns=${SVB_CONNS:-16}
shares=${SVB_SHARES:-1000000}
user=${SVB_USER:-nobody}
rounds=${SVB_ROUNDS:-3}
phases=${SVB_PHASES:-decrypt store memory}
# always through make: a stale load generator (it links the core library
# statically) would measure old code in its crypto figures
make -C "$build" bench/daemon/svbench >/dev/null
[ -x "$daemon" ] || { echo "build splitvaultd first" >&2; exit 1; }

umask 022
work=$(mktemp -d /tmp/svbench.XXXXXX)
chmod 755 "$work"
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"; wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "cores: $(nproc)"
echo "kernel: $(uname -sr)"
echo "openssl: $(openssl version)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"

echo "== openssl speed ecdhx25519 (X25519 derive = one scalar multiplication)"
x1=$(openssl speed -seconds 3 ecdhx25519 2>/dev/null | awk '/X25519/ {print $NF}')
# all cores: one single-threaded run per core at the same time, summed
# (openssl speed -multi's ecdh summary is not a sum in 3.0)
x2=$(for _ in $(seq "$(nproc)"); do
        openssl speed -seconds 3 ecdhx25519 2>/dev/null | awk '/X25519/ {print $NF}' &
     done | awk '{s += $1} END {printf "%.1f", s}')
echo "x25519_ops_per_s_1core=$x1"
echo "x25519_ops_per_s_$(nproc)cores=$x2"
echo "== the per-field work of a DECRYPT in the core library (one thread, no daemon)"
"$bench" --duration 6 crypto

# demo PKI
p=$work/pki; mkdir -p "$p"
ossl() { openssl "$@" >/dev/null 2>&1; }
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$p/ca.key"
ossl req -x509 -new -key "$p/ca.key" -out "$p/ca.pem" -days 2 -subj "/CN=bench CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
for n in server client; do
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$p/$n.key"
    ossl req -new -key "$p/$n.key" -out "$p/$n.csr" -subj "/CN=localhost"
    if [ $n = server ]; then
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$p/$n.ext"
    else
        printf 'extendedKeyUsage=clientAuth\n' > "$p/$n.ext"
    fi
    ossl x509 -req -in "$p/$n.csr" -CA "$p/ca.pem" -CAkey "$p/ca.key" -CAcreateserial \
        -out "$p/$n.pem" -days 2 -extfile "$p/$n.ext"
done
chmod 644 "$p"/*

state=$work/state; mkdir -p "$state"; chown "$user" "$state"; chmod 700 "$state"
# the audit log where the daemon's user cannot rename or remove it
audit=$work/audit; mkdir -p "$audit"; chmod 755 "$audit"
fp=$(openssl x509 -in "$p/client.pem" -outform DER | sha256sum | cut -d' ' -f1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/splitvaultd.yaml" <<YAML
listen: {address: 127.0.0.1, port: $port, backlog: 128}
tls: {certificate: $p/server.pem, key: $p/server.key, client_ca: $p/ca.pem}
clients: {allow: [127.0.0.1/32], frontend: ["$fp"]}
connections: {max: 64, idle_timeout: 10m}
store: {driver: sqlite3, path: $state/shares.db, readers: 4}
decrypt:
  global_rate: {interval: "0", burst: 1}
  actor_rate: {interval: "0", burst: 1}
  queue: {max_length: 64, max_wait: 60s}
  lockdown_threshold: 64
  daily_budget: {global: 0, actor: 0}
retention: {daily_budget: 0}
audit: {path: $audit/audit.log}
control: {socket: $audit/ctl.sock}
process: {user: $user, log_level: warning, secure_heap: 8MiB, mlock: true}
YAML
"$daemon" -t -c "$work/splitvaultd.yaml" >/dev/null
"$daemon" -c "$work/splitvaultd.yaml" 2>"$work/daemon.log" &
pid=$!
# the control socket comes first, the listener last (after the store and
# the writer threads): wait for the listener
for _ in $(seq 300); do
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' \
        "$port" 2>/dev/null && break
    sleep 0.1
done
kill -0 "$pid"

sb() { "$bench" -p "$port" --cert "$p/client.pem" --key "$p/client.key" --ca "$p/ca.pem" \
        --conns "$conns" "$@"; }
rss() { awk '/^VmRSS|^VmHWM/ {printf "%s%s%s ", $1, $2, $3}' "/proc/$pid/status"; echo; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# run one svbench phase and append the daemon's CPU use (cores) to its line
phase() {
    local t0 t1 s0 s1 out
    t0=$(ticks); s0=$(date +%s.%N)
    out=$(sb "$@")
    t1=$(ticks); s1=$(date +%s.%N)
    echo "$out daemon_cpu_cores=$(awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.2f", (b - a) / hz / (e - s)}')"
}

has() { case " $phases " in *" $1 "*) return 0 ;; esac; return 1; }
dec=()
if has decrypt; then
echo "== DECRYPT (limiter off, no rotation, $conns connections, ${secs}s each, $rounds rounds)"
for _ in $(seq "$rounds"); do
    d1=$(phase --fields 1 --records 64 --duration "$secs" decrypt); echo "$d1"
    d3=$(phase --fields 3 --records 64 --duration "$secs" decrypt); echo "$d3"
    dec+=("$d1" "$d3")
done
fi
if has store; then
echo "== STORE ($conns connections, ${secs}s each)"
ctlst() { "$build/tools/splitvaultctl" -s "$audit/ctl.sock" status; }
c0=$(ctlst | sed -n 's/^store_commits=//p')
s3=$(phase --fields 3 --duration "$secs" store); echo "$s3"
c1=$(ctlst | sed -n 's/^store_commits=//p')
echo "group commit: $((c1 - c0)) transactions for $(echo "$s3" | sed -n 's/.* requests=\([0-9]*\).*/\1/p') STOREs"

s32=$(phase --fields 32 --duration "$secs" store); echo "$s32"
echo "rss_after_throughput: $(rss)"
fi

if has memory; then
echo "== memory: fill to $shares shares (STOREs of 32), then a mixed workload"
sb --total "$shares" fill
"$build/tools/splitvaultctl" -s "$audit/ctl.sock" status | grep -E 'shares_active|audit_seq'
sb --fields 3 --records 64 --duration "$secs" decrypt
sb --fields 3 --duration "$secs" store
echo "rss_with_${shares}_shares: $(rss)"
echo "store_file_bytes=$(stat -c %s "$state/shares.db") audit_bytes=$(stat -c %s "$audit/audit.log")"
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== summary"
python3 - "$x1" "$x2" "$(nproc)" "${dec[@]}" <<'PY'
import re, statistics, sys
x1, x2, ncpu = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
floor = 2e6 / x1   # us of CPU for 2 scalar multiplications at openssl speed's rate
print("floor: 2 X25519 scalar multiplications = %.1f us of CPU per field "
      "(openssl speed: %.0f ops/s on one core)" % (floor, x1))
print("bounds: %.0f fields/s on one core, %.0f fields/s on all %d cores "
      "(ops/s / 2)" % (x1 / 2, x2 / 2, ncpu))
def f(line, k):
    return float(re.search(k + r"=([0-9.]+)", line).group(1))
runs = {}
for line in sys.argv[4:]:
    if "mode=decrypt" not in line:
        print("a DECRYPT phase failed: %s" % line.strip())
        continue
    runs.setdefault(int(f(line, "fields_per_request")), []).append(line)
for n, lines in sorted(runs.items()):
    fps = [f(l, "fields_per_s") for l in lines]
    cpu = [f(l, "daemon_cpu_cores") for l in lines]
    ccpu = [f(l, "client_cpu_cores") for l in lines]
    per_field = [1e6 * c / x for c, x in zip(cpu, fps)]
    print("DECRYPT %d field(s)/request, %d rounds: fields/s %s; daemon CPU %s cores, "
          "load generator %s cores; daemon CPU per field %s us"
          % (n, len(lines), " ".join("%.0f" % x for x in fps),
             " ".join("%.2f" % c for c in cpu), " ".join("%.2f" % c for c in ccpu),
             " ".join("%.0f" % p for p in per_field)))
    best = max(fps)
    print("  throughput: best %.0f fields/s = %.0f%% of the single-core bound, %.0f%% of "
          "the all-core bound (target 70%%)" % (best, 200 * best / x1, 200 * best / x2))
    lo, med = min(per_field), statistics.median(per_field)
    print("  efficiency: daemon CPU per field %.0f us (best) / %.0f us (median) against the "
          "%.1f us floor = %.0f%% / %.0f%% (floor / actual; the load generator's CPU "
          "is not the daemon's)" % (lo, med, floor, 100 * floor / lo, 100 * floor / med))
PY
