"""Intake benchmark: the real path, measured against the reference ceilings.

Starts, on this machine and in one run: the reference script
(intake-ceiling.sh: Apache + one PostgreSQL transaction per submission, with
no crypto ("null") and with the design's public-key work but no daemon
("limit")), then the real SplitVault stack — durable PostgreSQL (fsync on),
splitvaultd with its default durable sqlite3 store, mutual TLS between
module and daemon, httpd with mod_splitvault — and drives the public form
with wrk: the same 3-field body, 16 connections. Prints both figures, their
ratio and the latency percentiles, plus the machine.

The reference's "limit" and our intake are measured alternately (ROUNDS
times each, after one reference "null"/"limit" pair), so that both see the
same load on the machine; the best of each is compared.

Usage: bench/intake/run.sh  (environment: DUR seconds per run, default 10;
CONN connections, default 16; ROUNDS, default 2; SV_BUILDDIR build directory)
"""
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1]
sys.path.insert(0, str(SRC / "t" / "pylib"))

from svtest import core  # noqa: E402
from svtest.fixtures_daemon import Daemon  # noqa: E402
from svtest.fixtures_httpd import Httpd, Key1, MainDb  # noqa: E402

DUR = int(os.environ.get("DUR", "10"))
CONN = int(os.environ.get("CONN", "16"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
BODY = ("name=Jane+Q+Example&ssn=078-05-1120&notes=Lorem+ipsum+dolor+sit+amet%2C+"
        "consectetur+adipiscing+elit")


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    except OSError:
        pass
    ver = lambda argv: subprocess.run(argv, capture_output=True, text=True).stdout.strip()
    print("machine: %s, %d cores, %s RAM, %s %s" % (cpu, os.cpu_count(), mem, platform.system(),
                                                    platform.release()))
    print("software: %s; %s; %s" % (
        ver(["/usr/sbin/apache2", "-v"]).splitlines()[0],
        ver(["openssl", "version"]),
        ver([str(core.PG_BIN / "postgres"), "--version"])))
    print("run: %d s per measurement, %d connections, wrk -t2" % (DUR, CONN))


TCK = os.sysconf("SC_CLK_TCK")


def tree_cpu(roots):
    """CPU seconds (user + system) of the processes roots and their children."""
    stats = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                st = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
                stats[int(pid)] = (int(st[1]), (int(st[11]) + int(st[12])) / TCK)
            except (OSError, IndexError, ValueError):
                pass
    total = 0.0
    for pid, (ppid, cpu) in stats.items():
        if pid in roots or ppid in roots:
            total += cpu
    return total


def wrk(url, script):
    p = subprocess.run(["wrk", "-t2", "-c%d" % CONN, "-d%ds" % DUR, "--latency", "-s", script,
                        url], capture_output=True, text=True, check=True)
    out = p.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, out, re.M)
        v = float(m.group(1))
        lat[pct] = v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    bad = int(m.group(1)) if m else 0
    m = re.search(r"(\d+) requests in", out)
    return rps, lat, bad, int(m.group(1)) if m else 0


def reference(modes):
    env = dict(os.environ, DUR=str(DUR), CONN=str(CONN), MODES=modes)
    p = subprocess.run(["bash", str(HERE / "intake-ceiling.sh")], capture_output=True,
                       text=True, env=env)
    sys.stdout.write("".join("  reference: " + l + "\n" for l in p.stdout.splitlines()))
    if p.returncode != 0:
        sys.stdout.write(p.stderr)
        raise SystemExit("intake-ceiling.sh failed")
    figs = {"null": [], "limit": [], "cpu": []}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in figs:
            figs[parts[0]].append(float(parts[1]))
        if len(parts) == 3 and parts[0] == "cpu" and parts[1] == "limit":
            figs["cpu"].append(float(parts[2]))
    return figs


def splitvault(work, between):
    """Start the real stack, warm it up, then alternate: one measurement of
    ours, then between() (a reference run), and so on, so that both see the
    same machine load."""
    pki = core.Pki(work / "pki")
    pg = core.PgCluster(work / "pg").start()  # fsync on: durable
    daemon = httpd = None
    try:
        db = MainDb.create(pg, "splitvault")
        key1 = Key1(work / "key1")
        db.admin("key1-register", key1.pub)
        # the daemon as shipped: sqlite3 store (durable), its default log level
        daemon = Daemon(work / "daemon", pki, extra={"process": {"log_level": "info"}},
                        max_connections=256).start()
        # every request comes from one address: the intake throttle would
        # refuse all but the first few
        httpd = Httpd(work / "httpd", db, pki, daemon.port, tls=False, threads=25,
                      server_limit=4, dbd_max=32, access_log=False, loglevel="warn",
                      directives={"SplitVaultIntakeThrottle": "Off"}).start()
        script = work / "post.lua"
        script.write_text('wrk.method = "POST"\n'
                          'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                          'wrk.body = "%s"\n' % BODY)
        url = "http://127.0.0.1:%d/splitvault/" % httpd.port
        c = httpd.client()
        r = c.post("/splitvault/", body=BODY)
        assert r.status == 200, r.text
        wrk(url, str(script))  # warm-up (connections, pools, caches): not counted
        pm = int((pg.data / "postmaster.pid").read_text().split()[0])
        roots = {httpd.proc.pid, daemon.pid, pm}
        runs = []
        parts = (("httpd", {httpd.proc.pid}), ("PostgreSQL", {pm}),
                 ("splitvaultd", {daemon.pid}))
        for i in range(ROUNDS):
            c0 = tree_cpu(roots)
            p0 = [tree_cpu(r) for _, r in parts]
            res = wrk(url, str(script))
            n = max(res[3], 1)
            cpu = (tree_cpu(roots) - c0) / n * 1e6
            print("  CPU per request by part, run %d: %s" % (i + 1, ", ".join(
                "%s %.0f us" % (name, (tree_cpu(r) - b) / n * 1e6)
                for (name, r), b in zip(parts, p0))), flush=True)
            runs.append(res + (cpu,))
            between(i)
        rows = db.count("records")
        errors = httpd.error_lines()
        return runs, rows, errors
    finally:
        if httpd:
            httpd.stop()
        if daemon:
            daemon.stop()
        pg.stop()


def main():
    os.umask(0o022)
    machine()
    t0 = time.monotonic()
    figs = reference("null limit")

    def between(i):
        f = reference("limit")
        figs["limit"] += f["limit"]
        figs["cpu"] += f["cpu"]

    work = core.make_workdir("sv-bench")
    try:
        runs, rows, errors = splitvault(work, between)
    finally:
        if os.environ.get("SV_KEEP") != "1":
            subprocess.run(["rm", "-rf", str(work)])
    limit = max(figs["limit"])
    best = max(runs, key=lambda x: x[0])
    print("reference null:  %s req/s" % " / ".join("%.0f" % v for v in figs["null"]))
    print("reference limit: %s req/s (best %.0f)" % (" / ".join("%.0f" % v
                                                                 for v in figs["limit"]), limit))
    print("reference limit CPU per request (httpd + PostgreSQL): %s us"
          % " / ".join("%.0f" % v for v in figs["cpu"]))
    for i, (rps, lat, bad, n, cpu) in enumerate(runs):
        print("splitvault intake run %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx, "
              "CPU per request (httpd + PostgreSQL + splitvaultd) %.0f us"
              % (i + 1, rps, lat["50"], lat["99"], bad, cpu))
    print("intake %.0f req/s = %.2f x limit (target >= 0.80); p50 %.2f ms, p99 %.2f ms"
          % (best[0], best[0] / limit, best[1]["50"], best[1]["99"]))
    print("records stored: %d; httpd errors: %d; total time %.0f s"
          % (rows, len(errors), time.monotonic() - t0))
    for e in errors[:5]:
        print("  " + e)
    if figs["cpu"]:
        print("CPU per request: intake %.0f us vs reference limit %.0f us (%.2f x): the "
              "throughput ratio on an idle machine tends to the inverse"
              % (min(r[4] for r in runs), min(figs["cpu"]),
                 min(r[4] for r in runs) / min(figs["cpu"])))
    return 0 if not errors and all(r[2] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
