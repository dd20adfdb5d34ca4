"""Core of the SplitVault test harness.

Processes, ports, temp directories, a demo PKI and a throwaway PostgreSQL
cluster. Everything listens on 127.0.0.1 and free ports and lives in a temp
directory that the postgres and www-data users can traverse. Every process
started here is recorded, so that a failed test prints its log, and stopped by
its PID.
"""
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[3]
BUILD = Path(os.environ.get("SV_BUILDDIR", str(SRC / "build"))).resolve()

PG_BIN = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                     key=lambda p: int(p.parent.name))[-1]) \
    if Path("/usr/lib/postgresql").is_dir() else None

# Every log registered and every Proc started; fixtures_core prints what each
# log gained during a test that failed, and stops leftover processes.
_LOGS = {}
_PROCS = []
# How many servers of each kind the harness started and stopped (reported at
# the end of a session, so the run shows the real parts coming and going).
LIFECYCLE = {}


def _count(kind, event):
    kind = re.sub(r"[:#][^/]*$", "", kind)
    LIFECYCLE.setdefault(kind, {"started": 0, "stopped": 0})[event] += 1


def register_log(path, name, kind=None):
    """Show what this file gains during a test, if the test fails. kind
    ("daemon", "httpd"): a server's log whose warnings and errors fail the
    test unless it allows them (svtest.logcheck)."""
    _LOGS[str(Path(path))] = (name, kind)


def registered_logs():
    """{path: name} of every registered log."""
    return {p: nk[0] for p, nk in _LOGS.items()}


def registered_log_kinds():
    """{path: (name, kind)} of every registered log."""
    return dict(_LOGS)


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_workdir(prefix="sv"):
    """A fresh temp directory (mode 0755) that service users can traverse."""
    d = Path(tempfile.mkdtemp(prefix=prefix + ".", dir="/tmp"))
    d.chmod(0o755)
    return d


def run(argv, check=True, input=None, timeout=60, env=None, cwd=None):
    """Run a command, capture text output; raise with its output on failure."""
    argv = [str(a) for a in argv]
    p = subprocess.run(argv, input=input, capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=cwd)
    if check and p.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n--- stdout\n%s--- stderr\n%s"
                           % (p.returncode, " ".join(argv), p.stdout, p.stderr))
    return p


def wait_until(cond, timeout, what, interval=0.05):
    """Poll cond() until it returns something true, and return that; raise
    TimeoutError("<what> after <timeout>s") once the deadline has passed.
    cond may itself raise (an assertion) to stop at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("%s after %.0fs" % (what, timeout))
        time.sleep(interval)


# /proc/net/tcp states (include/net/tcp_states.h)
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def server_sockets(port):
    """[(state, rx_queue, accepted)] of the TCP sockets whose local port is
    port (a server's side of its connections, and its listening socket),
    from /proc/net/tcp and tcp6: rx_queue is what the server has not read
    yet; accepted is False while a connection waits in the listen backlog
    (no file yet: inode 0)."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) != port:
                        continue
                    rx = int(cols[4].split(":")[1], 16)
                    out.append((TCP_STATES.get(cols[3], cols[3]), rx, cols[9] != "0"))
        except OSError:
            continue
    return out


def server_connections(port):
    """The server-side connections on port that the server still holds
    open (ESTABLISHED, or CLOSE_WAIT: the peer closed, the server not yet),
    as [(state, rx_queue, accepted)]. Waiting until it is empty waits until the
    server has closed every connection it accepted (or has yet to accept)."""
    return [s for s in server_sockets(port) if s[0] in ("ESTABLISHED", "CLOSE_WAIT")]


def wait_server_idle(port, timeout=10, what=None):
    """Wait until the server on port holds no connection open."""
    wait_until(lambda: not server_connections(port), timeout,
               what or "connections still open on port %d" % port, interval=0.02)


def wait_port(port, host="127.0.0.1", timeout=15.0, proc=None):
    """Wait until host:port accepts a TCP connection; fail early if proc dies."""
    def listening():
        if proc is not None and not proc.alive():
            raise RuntimeError("%s exited (status %s) before listening on %s:%d"
                               % (proc.name, proc.returncode(), host, port))
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_until(listening, timeout, "nothing listening on %s:%d" % (host, port))


def wait_pid_gone(pid, timeout=10.0):
    """Poll until no process has this PID (for daemonising servers)."""
    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False
    try:
        return wait_until(gone, timeout, "process %d still there" % pid)
    except TimeoutError:
        return False


class Proc:
    """A foreground server process with its output in a log file."""

    def __init__(self, name, argv, log, env=None, cwd=None, kind=None):
        self.name = name
        self.kind = kind
        self.argv = [str(a) for a in argv]
        self.log = Path(log)
        self.env = env
        self.cwd = cwd
        self.popen = None

    def start(self):
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")
        try:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=self.env,
                                          cwd=self.cwd, start_new_session=True)
        finally:
            out.close()
        _PROCS.append(self)
        _count(self.name, "started")
        register_log(self.log, self.name, self.kind)
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def returncode(self):
        return self.popen.poll() if self.popen else None

    def wait_port(self, port, timeout=15.0, host="127.0.0.1"):
        wait_port(port, host=host, timeout=timeout, proc=self)
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.kill(self.popen.pid, sig)

    def stop(self, timeout=10.0):
        """SIGTERM, wait, then SIGKILL. Returns the exit status."""
        if self.popen is None:
            return None
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        if self in _PROCS:
            _PROCS.remove(self)
            _count(self.name, "stopped")
        return self.popen.returncode


def stop_all():
    """Stop every Proc still running (end of session, or after a failure)."""
    for p in list(_PROCS):
        p.stop()


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


class Pki:
    """A demo PKI made with the openssl command, in dir:

    ca_cert/ca_key          the CA the daemon trusts for client certificates
                            and the module trusts for the daemon's certificate
    server_cert/server_key  the daemon's certificate: CN=localhost,
                            SAN DNS:localhost, IP:127.0.0.1
    client_cert/client_key  the module's client certificate: CN=splitvault-web
                            (the daemon's frontend role)
    reconcile_cert/reconcile_key  the reconcile tool's: CN=splitvault-reconcile
                            (the reconcile role; in production off the web host)
    monitor_cert/monitor_key  a monitoring client's: CN=splitvault-monitor
    other_ca_cert, other_client_cert/other_client_key   an unrelated CA
    Keys are P-256; files are readable (test material only, never committed).
    """

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self.ca_cert, self.ca_key = self._ca("ca", "SplitVault Test CA")
        self.other_ca_cert, self.other_ca_key = self._ca("other-ca", "Unrelated CA")
        self.server_cert, self.server_key = self._leaf(
            "server", "localhost", self.ca_cert, self.ca_key, server=True)
        self.client_cert, self.client_key = self.issue_client("splitvault-web")
        self.reconcile_cert, self.reconcile_key = self.issue_client("splitvault-reconcile")
        self.monitor_cert, self.monitor_key = self.issue_client("splitvault-monitor")
        self.other_client_cert, self.other_client_key = self._leaf(
            "other-client", "splitvault-web", self.other_ca_cert, self.other_ca_key)

    def _key(self, name):
        key = self.dir / (name + ".key")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", key])
        key.chmod(0o644)
        return key

    def _ca(self, name, cn):
        key = self._key(name)
        cert = self.dir / (name + ".pem")
        run(["openssl", "req", "-x509", "-new", "-key", key, "-out", cert, "-days", "30",
             "-subj", "/O=SplitVault tests/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return cert, key

    def _leaf(self, name, cn, ca_cert, ca_key, server=False, san="DNS:localhost,IP:127.0.0.1"):
        key = self._key(name)
        csr = self.dir / (name + ".csr")
        cert = self.dir / (name + ".pem")
        ext = self.dir / (name + ".ext")
        if server:
            ext.write_text("basicConstraints=critical,CA:FALSE\n"
                           "keyUsage=critical,digitalSignature\n"
                           "extendedKeyUsage=serverAuth\n"
                           "subjectAltName=%s\n" % san)
        else:
            ext.write_text("basicConstraints=critical,CA:FALSE\n"
                           "keyUsage=critical,digitalSignature\n"
                           "extendedKeyUsage=clientAuth\n")
        run(["openssl", "req", "-new", "-key", key, "-out", csr,
             "-subj", "/O=SplitVault tests/CN=" + cn])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
             "-CAcreateserial", "-out", cert, "-days", "30", "-extfile", ext])
        csr.unlink()
        return cert, key

    def issue_server(self, name, san):
        """A daemon certificate from the main CA for other names (san, e.g.
        "DNS:elsewhere.example"): (cert, key) paths."""
        return self._leaf("server-" + name, name, self.ca_cert, self.ca_key, server=True,
                          san=san)

    def issue_client(self, cn, name=None):
        """A new client certificate from the main CA: (cert, key) paths."""
        return self._leaf(name or ("client-" + cn), cn, self.ca_cert, self.ca_key)

    @staticmethod
    def fingerprint(cert):
        """Lowercase hex SHA-256 of the certificate's DER encoding."""
        der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"],
                             capture_output=True, check=True).stdout
        return sha256_hex(der)


class PgCluster:
    """A throwaway PostgreSQL cluster owned by the postgres user.

    initdb refuses root, so every server command runs as postgres through
    runuser. It listens on 127.0.0.1 and a free port, with its socket in its own
    directory, trust authentication on loopback, fsync on (durable, as in
    production). With init=False the data directory is left to the caller
    (a standby's comes from pg_basebackup: PgCluster.standby). opts: more
    server options (-c name=value ...) for every start."""

    def __init__(self, directory, fsync=True, init=True, opts=""):
        if PG_BIN is None:
            raise RuntimeError("PostgreSQL not installed (apt-get install postgresql)")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self.data = self.dir / "data"
        self.sockdir = self.dir / "sock"
        self.logfile = self.dir / "postgresql.log"
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = "postgres"
        self.fsync = fsync
        self.opts = opts
        self.sockdir.mkdir(exist_ok=True)
        shutil.chown(self.sockdir, "postgres", "postgres")
        shutil.chown(self.dir, "postgres", "postgres")
        if init:
            # initdb's pg_hba.conf trusts loopback for replication too
            self._pg(["initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--no-instructions"])
        register_log(self.logfile, "postgresql")

    def _pg(self, argv, check=True):
        return run(["runuser", "-u", "postgres", "--", str(PG_BIN / argv[0])] + argv[1:],
                   check=check, timeout=120)

    def start(self):
        opts = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=%s -c max_connections=200" % (
            self.port, self.sockdir, "on" if self.fsync else "off")
        if self.opts:
            opts += " " + self.opts
        self._pg(["pg_ctl", "-D", self.data, "-l", self.logfile, "-w", "-t", "60",
                  "-o", opts, "start"])
        _count("postgresql", "started")
        return self

    def stop(self, mode="fast"):
        if self._pg(["pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"],
                    check=False).returncode == 0:
            _count("postgresql", "stopped")

    def running(self):
        return self._pg(["pg_ctl", "-D", self.data, "status"], check=False).returncode == 0

    def query(self, sql, db="postgres"):
        """One row of a statement as the superuser, or None."""
        conn = self.connect(db)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchone()
        finally:
            conn.close()

    def in_recovery(self):
        return self.query("SELECT pg_is_in_recovery()")[0]

    def standby(self, directory):
        """A streaming standby of this (running) cluster, started: its data
        directory from pg_basebackup -R (primary_conninfo and standby.signal
        written for it), its own port and socket directory. Ready once it
        streams from this cluster."""
        sb = PgCluster(directory, fsync=self.fsync, init=False)
        self._pg(["pg_basebackup", "-D", sb.data, "-h", self.host, "-p", str(self.port),
                  "-U", "postgres", "-X", "stream", "-R", "--checkpoint=fast"])
        sb.start()
        wait_until(lambda: self.query("SELECT count(*) FROM pg_stat_replication "
                                      "WHERE state = 'streaming'")[0], 60,
                   "the standby on port %d does not stream" % sb.port)
        return sb

    def wait_replayed(self, standby, timeout=30):
        """Wait until standby has replayed everything this cluster wrote so far."""
        lsn = self.query("SELECT pg_current_wal_lsn()")[0]
        wait_until(lambda: standby.query(
            "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn)[0], timeout,
            "the standby did not replay up to %s" % lsn)

    def promote(self, timeout=60):
        """pg_ctl promote; returns once the cluster accepts writes."""
        self._pg(["pg_ctl", "-D", self.data, "-w", "-t", str(timeout), "promote"])
        wait_until(lambda: not self.in_recovery(), timeout,
                   "the cluster on port %d is still in recovery" % self.port)
        return self

    def dsn(self, db="postgres", user="postgres"):
        """A libpq connection string (also a mod_dbd DBDParams value)."""
        return "host=%s port=%d dbname=%s user=%s" % (self.host, self.port, db, user)

    def connect(self, db="postgres", user="postgres"):
        import psycopg2
        conn = psycopg2.connect(host=self.host, port=self.port, dbname=db, user=user)
        conn.autocommit = True
        return conn

    def psql(self, db, sql):
        """Run SQL text through psql (stops at the first error)."""
        return run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host,
                    "-p", str(self.port), "-U", "postgres", "-d", db], input=sql)

    def create_db(self, name, sql_files=()):
        """Create database name and apply the given SQL files in order."""
        conn = self.connect("postgres")
        try:
            with conn.cursor() as cur:
                cur.execute('CREATE DATABASE "%s"' % name.replace('"', ''))
        finally:
            conn.close()
        for f in sql_files:
            run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host,
                 "-p", str(self.port), "-U", "postgres", "-d", name, "-f", str(f)])
        return name

    def drop_db(self, name):
        conn = self.connect("postgres")
        try:
            with conn.cursor() as cur:
                cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name.replace('"', ''))
        finally:
            conn.close()


class PgFailover:
    """A primary and its streaming standby, seen as one PgCluster: dsn()
    names both hosts with target_session_attrs=read-write (libpq connects
    to whichever accepts writes), and connect(), create_db() and the rest
    go to the current primary. The primary commits only once the standby
    has the commit (synchronous_standby_names), so that nothing acknowledged
    is lost when the standby is promoted."""

    def __init__(self, directory, fsync=True):
        d = Path(directory)
        self.primary = PgCluster(d / "a", fsync=fsync).start()
        self.standby = self.primary.standby(d / "b")
        # in the primary's postgresql.auto.conf only: the standby, once
        # promoted, has no standby of its own to wait for
        conn = self.primary.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
                cur.execute("SELECT pg_reload_conf()")
        finally:
            conn.close()
        wait_until(lambda: self.primary.query(
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")[0], 30,
            "the standby is not synchronous")
        self.clusters = [self.primary, self.standby]
        self.host = self.primary.host
        self.user = "postgres"

    @property
    def port(self):
        return self.primary.port

    def dsn(self, db="postgres", user="postgres"):
        return ("host=%s port=%s dbname=%s user=%s target_session_attrs=read-write"
                % (",".join(c.host for c in self.clusters),
                   ",".join(str(c.port) for c in self.clusters), db, user))

    def fail_over(self):
        """The primary dies (immediate stop, as a crash) and the standby is
        promoted: it is the primary from now on."""
        self.primary.stop(mode="immediate")
        self.standby.promote()
        self.primary, self.standby = self.standby, None

    def connect(self, db="postgres", user="postgres"):
        return self.primary.connect(db, user)

    def psql(self, db, sql):
        return self.primary.psql(db, sql)

    def create_db(self, name, sql_files=()):
        return self.primary.create_db(name, sql_files)

    def drop_db(self, name):
        return self.primary.drop_db(name)

    def stop(self):
        for c in self.clusters:
            c.stop()


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
