"""pytest fixtures that start splitvaultd (real TLS, real store).

Every daemon gets its own directory with a generated YAML config, its state
(store, audit log, control socket) in a subdirectory owned by the user it runs
as (`nobody` by default: the daemon starts as root and drops to it), a free
port on 127.0.0.1, and its log registered with the harness. The config is
checked with `splitvaultd -t -c FILE` before the daemon starts in the
foreground; it is stopped by PID at teardown.

Fixtures
- `daemon_factory(**options) -> Daemon`: make and start a daemon; options
  (all optional): driver ("sqlite3" or "pgsql"), roles ({"frontend": [...],
  "reconcile": [...], "monitor": [...]}: certificate paths or fingerprints;
  default: the PKI's web certificate as frontend, its reconcile certificate
  as reconcile, its monitor certificate as monitor), allow (CIDR list),
  retention (a duration, default 7d), retire_budget (0: none, the
  default), min_free (a size, default 0: no watermark), admin_group,
  rate_global / rate_actor
  ((interval, burst) or None for unlimited), budget ((global, actor) daily
  budgets, 0 for none: the default), queue_max, queue_max_wait,
  lockdown_threshold, min_grace (default and floor 15m: tests age shares
  with `age_shares()` instead), timeouts (dict), max_connections,
  user, extra (dict of YAML sections merged over the generated ones),
  start (False: only write the config).
- `daemon`: one started daemon with the test defaults (sqlite3).
- `daemon_pg`: the same on a pgsql store.
- `store_driver`: parametrises a test over "sqlite3" and "pgsql".

Reusable outside pytest: `Daemon`, `Client` (the wire protocol over mutual
TLS), `Record` (a record built the way the module builds one: key2 per
field, datum sealed, sk2 split), `start_for_module(dir, pki, pg)` (what the
module's fixtures call). Set SV_DAEMON_VALGRIND=1 to run every daemon under
valgrind (memcheck, errors fail the test at teardown).
"""
import os
import shlex
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import time
import uuid as uuidlib
from pathlib import Path

import pytest

from . import core, logcheck
from .core import BUILD, SRC, free_port, run, wait_until

import hpke_ref  # the reference HPKE (t/pylib/hpke_ref.py)

DAEMON = BUILD / "splitvaultd" / "splitvaultd"
CTL = BUILD / "tools" / "splitvaultctl"
PG_SCHEMA = SRC / "sql" / "daemon" / "pgsql.sql"
VALGRIND = os.environ.get("SV_DAEMON_VALGRIND") == "1"

# ---------------------------------------------------------------------------
# wire protocol v1 (docs/protocol.md), client side: the reference codec
# t/pylib/svwire.py encodes and decodes; this module adds the connection.

import svwire as w

HDR_LEN = w.HDR_LEN
MSG = {m.name: int(m) for m in w.MsgType}
WERR = {e.name: int(e) for e in w.ErrCode}
WERR_NAME = {v: k for k, v in WERR.items()}
ACTIVE, PENDING = w.SHARE_ACTIVE, w.SHARE_PENDING
ROLES = ("frontend", "reconcile", "monitor")


def _uuid16(u):
    return uuidlib.UUID(str(u)).bytes


class DaemonError(Exception):
    """An ERROR answer: .code (SV_WERR_*), .name, .msg, .retry_ms."""

    def __init__(self, code, retry_ms, msg):
        super().__init__("%s (%d): %s" % (WERR_NAME.get(code, "?"), code, msg))
        self.code, self.retry_ms, self.msg = code, retry_ms, msg
        self.name = WERR_NAME.get(code, "?")


class Client:
    """One persistent mutual-TLS connection to the daemon."""

    def __init__(self, port, cert, key, ca, host="127.0.0.1", timeout=30.0,
                 tls_version=ssl.TLSVersion.TLSv1_3, source=None):
        self.reqid = 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = tls_version
        ctx.maximum_version = tls_version
        ctx.load_verify_locations(str(ca))
        if cert is not None:
            ctx.load_cert_chain(str(cert), str(key))
        raw = socket.create_connection((host, port), timeout=timeout,
                                       source_address=(source, 0) if source else None)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        except Exception:
            raw.close()
            raise

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_frame(self):
        """(header, decoded answer) of the next frame (svwire.read_frame)."""
        return w.read_frame(self.sock)

    def closed_by_peer(self, timeout=5.0):
        """True when the daemon closes the connection (EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError, OSError):
            return True

    def call(self, m):
        """Send request m; return its answer or raise DaemonError."""
        self.reqid = (self.reqid + 1) & 0xFFFFFFFF
        a = w.exchange(self.sock, m, self.reqid)
        if isinstance(a, w.Error):
            raise DaemonError(a.code, a.retry_ms, a.msg)
        return a

    def store(self, uuid, fields):
        """fields: [(name, pub, key2b)] -> share ids"""
        m = w.Store(_uuid16(uuid), [w.StoreField(n, p, k) for n, p, k in fields])
        return list(self.call(m).share_ids)

    def decrypt(self, uuid, actor, fields, wait_ms=5000):
        """fields: [(share_id, name, key2a, enc, ct, rotate)] with rotate None
        or (new_pub, new_key2b) -> [(plaintext, new_share_id)]"""
        fs = [w.DecryptField(sid, n, k2a, enc, ct, rot is not None,
                             rot[0] if rot else None, rot[1] if rot else None)
              for sid, n, k2a, enc, ct, rot in fields]
        a = self.call(w.Decrypt(_uuid16(uuid), actor, wait_ms, fs))
        return [(o.pt, o.new_share_id) for o in a.outs]

    def release(self, uuid, items):
        """items: [(name, drop_id, keep_id)] -> items processed"""
        m = w.Release(_uuid16(uuid), [w.ReleaseItem(n, d, k) for n, d, k in items])
        return self.call(m).n

    def status(self):
        a = self.call(w.Status())
        return {k: getattr(a, k) for k in ("locked", "queue_len", "queue_max", "locked_since",
                                            "shares_active", "shares_pending", "stores",
                                            "decrypts", "refusals", "uptime")}

    def recon_list(self, grace_s, after_id=0, limit=1000):
        """-> ([(id, uuid, name, state, created)], more)"""
        a = self.call(w.ReconList(grace_s, after_id, limit))
        return ([(e.id, str(uuidlib.UUID(bytes=bytes(e.uuid))), e.name, e.state, e.created)
                 for e in a.entries], bool(a.more))

    def recon_delete(self, grace_s, refs):
        """refs: [(id, uuid, name)] -> shares retired"""
        m = w.ReconDelete(grace_s, [w.ReconRef(i, _uuid16(u), n) for i, u, n in refs])
        return self.call(m).n

    def confirm(self, uuid, actor, items):
        """items: [(share_id, name, pub)] -> [0 or 1 per item]"""
        m = w.Confirm(_uuid16(uuid), actor, [w.ConfirmItem(i, n, p) for i, n, p in items])
        return list(self.call(m).ok)


# ---------------------------------------------------------------------------
# records built the way the module builds them


class Field:
    def __init__(self, name, value, uuid):
        self.name = name
        self.value = value
        sk2, self.pub = hpke_ref.generate_keypair()
        self.enc, self.ct = hpke_ref.seal_datum(self.pub, uuid, name, value)
        self.key2a, self.key2b = hpke_ref.split(sk2)
        self.share_id = None

    def rotate(self, uuid):
        """A fresh key2' for rotate-on-use: (new_pub, new_key2b, new_key2a,
        new enc, new ct) kept on the field as .next"""
        sk2, pub = hpke_ref.generate_keypair()
        enc, ct = hpke_ref.seal_datum(pub, uuid, self.name, self.value)
        key2a, key2b = hpke_ref.split(sk2)
        self.next = dict(pub=pub, key2b=key2b, key2a=key2a, enc=enc, ct=ct)
        return pub, key2b


class Record:
    """A record: uuid plus fields {name: plaintext bytes}."""

    def __init__(self, values, uuid=None):
        self.uuid = str(uuid or uuidlib.uuid4())
        self.fields = [Field(n, v if isinstance(v, bytes) else v.encode(), self.uuid)
                       for n, v in values.items()]

    def store_fields(self):
        return [(f.name, f.pub, f.key2b) for f in self.fields]

    def stored(self, ids):
        for f, i in zip(self.fields, ids):
            f.share_id = i
        return self

    def decrypt_fields(self, rotate=False, names=None):
        out = []
        for f in self.fields:
            if names is not None and f.name not in names:
                continue
            rot = f.rotate(self.uuid) if rotate else None
            out.append((f.share_id, f.name, f.key2a, f.enc, f.ct, rot))
        return out

    def commit_rotation(self, new_ids):
        """After the main-DB commit: the new share becomes the field's share.
        Returns the RELEASE items."""
        items = []
        for f, nid in zip(self.fields, new_ids):
            if not nid:
                continue
            items.append((f.name, f.share_id, nid))
            f.share_id, f.pub, f.key2b = nid, f.next["pub"], f.next["key2b"]
            f.key2a, f.enc, f.ct = f.next["key2a"], f.next["enc"], f.next["ct"]
        return items


# ---------------------------------------------------------------------------
# the daemon process


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def to_yaml(d, indent=0):
    """A small YAML writer for the config (mappings, lists, scalars)."""
    out = []
    pad = "  " * indent
    for k, v in d.items():
        if isinstance(v, dict):
            out.append("%s%s:" % (pad, k))
            out.append(to_yaml(v, indent + 1))
        elif isinstance(v, (list, tuple)):
            if not v:
                out.append("%s%s: []" % (pad, k))
            else:
                out.append("%s%s:" % (pad, k))
                out.extend("%s  - %s" % (pad, _yaml_scalar(x)) for x in v)
        else:
            out.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
    return "\n".join(x for x in out if x != "")


def _merge(a, b):
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            _merge(a[k], v)
        elif v is None:
            a.pop(k, None)
        else:
            a[k] = v
    return a


def _rate(r):
    if r is None:
        return {"interval": "0", "burst": 1}
    return {"interval": r[0], "burst": r[1]}


class Daemon:
    """A splitvaultd in its own directory. See the module docstring."""

    def __init__(self, directory, pki, pg=None, driver="sqlite3", roles=None, allow=None,
                 rate_global=None, rate_actor=None, budget=(0, 0), queue_max=8,
                 queue_max_wait="10s", retention="7d", retire_budget=0, min_free=0,
                 admin_group=None,
                 lockdown_threshold=None, min_grace="15m", timeouts=None,
                 max_connections=64, user="nobody", extra=None, db_name=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self.pki = pki
        self.pg = pg
        self.driver = driver
        self.user = user
        self.state = self.dir / "state"
        self.state.mkdir(exist_ok=True)
        pw = pwd.getpwnam(user)
        os.chown(self.state, pw.pw_uid, pw.pw_gid)
        self.state.chmod(0o700)
        self.port = free_port()
        self.conf_path = self.dir / "splitvaultd.yaml"
        self.log = self.dir / "splitvaultd.log"
        self.db_path = self.state / "shares.db"
        # the audit log lives where the daemon's user cannot rename or
        # remove it: a directory of root's (the daemon refuses otherwise)
        self.audit_dir = self.dir / "audit"
        self.audit_dir.mkdir(exist_ok=True)
        self.audit_dir.chmod(0o755)
        self.audit_path = self.audit_dir / "audit.log"
        self.head_path = self.audit_dir / "audit.log.head"
        # the control socket where the daemon's user cannot stand in for it
        self.run_dir = self.dir / "run"
        self.run_dir.mkdir(exist_ok=True)
        self.run_dir.chmod(0o755)
        self.sock_path = self.run_dir / "ctl.sock"
        self.proc = None
        # patterns of warnings and errors in its log the current test allows
        # (besides its log_allows markers): see svtest.logcheck
        self.allowed_log = logcheck.allow_list()
        self.db_name = None
        if driver == "pgsql":
            if pg is None:
                raise ValueError("driver pgsql needs a PgCluster")
            self.db_name = db_name or "svd_%d_%d" % (os.getpid(), int(time.monotonic() * 1e6))
            if db_name is None:
                pg.create_db(self.db_name, [PG_SCHEMA])
        if roles is None:
            roles = {"frontend": [pki.client_cert], "reconcile": [pki.reconcile_cert],
                     "monitor": [pki.monitor_cert]}
        clients = {"allow": allow or ["127.0.0.0/8"]}
        for role in ROLES:
            fps = [p if len(str(p)) == 64 and not Path(str(p)).exists()
                   else core.Pki.fingerprint(p) for p in roles.get(role, [])]
            if fps:
                clients[role] = fps
        store = ({"driver": "sqlite3", "path": str(self.db_path)} if driver == "sqlite3"
                 else {"driver": "pgsql", "params": pg.dsn(self.db_name)})
        store["readers"] = 2
        store["min_free"] = min_free
        t = {"handshake_timeout": "5s", "idle_timeout": "60s", "io_timeout": "5s"}
        t.update(timeouts or {})
        self.config = {
            "listen": {"address": "127.0.0.1", "port": self.port},
            "tls": {"certificate": str(pki.server_cert), "key": str(pki.server_key),
                    "client_ca": str(pki.ca_cert)},
            "clients": clients,
            "connections": dict(max=max_connections, **t),
            "store": store,
            "decrypt": {
                "global_rate": _rate(rate_global),
                "actor_rate": _rate(rate_actor),
                "queue": {"max_length": queue_max, "max_wait": queue_max_wait},
                "lockdown_threshold": queue_max if lockdown_threshold is None
                else lockdown_threshold,
                "daily_budget": {"global": budget[0], "actor": budget[1]},
            },
            "reconcile": {"min_grace": min_grace},
            "retention": {"period": retention, "daily_budget": retire_budget},
            "audit": {"path": str(self.audit_path)},
            "control": {"socket": str(self.sock_path)},
            "process": {"user": user, "log_level": "debug", "secure_heap": "4MiB",
                        "mlock": True},
        }
        if admin_group:
            self.config["control"]["admin_group"] = admin_group
        if extra:
            _merge(self.config, extra)
        self.write_config()

    # -- configuration -------------------------------------------------------
    def write_config(self, text=None):
        self.conf_path.write_text(text if text is not None else to_yaml(self.config) + "\n")
        return self.conf_path

    def check(self):
        """splitvaultd -t -c FILE: CompletedProcess (check=False)."""
        return run([DAEMON, "-t", "-c", self.conf_path], check=False)

    # -- process ---------------------------------------------------------------
    def argv(self):
        argv = [DAEMON, "-c", self.conf_path]
        if VALGRIND:
            argv = ["valgrind", "-q", "--vgdb=no", "--error-exitcode=99", "--leak-check=full",
                    "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                    "--track-fds=no", "--log-file=%s" % (self.dir / "valgrind.%p.log")] + argv
        elif os.environ.get("SV_DAEMON_WRAP"):
            argv = shlex.split(os.environ["SV_DAEMON_WRAP"]) + argv  # a debugger, by hand
        return argv

    def start(self, timeout=None, env=None):
        """Config check, then start; ready when the daemon accepts on its
        port (it listens only once its store, audit log and threads are up)
        and on its control socket."""
        p = self.check()
        if p.returncode != 0:
            raise RuntimeError("splitvaultd -t failed:\n%s%s" % (p.stdout, p.stderr))
        if self.sock_path.exists():
            self.sock_path.unlink()  # a stale socket must not look ready
        self.proc = core.Proc("splitvaultd:%d" % self.port, self.argv(), self.log,
                              env=env, kind="daemon").start()
        self.proc.wait_port(self.port, host=self.config["listen"]["address"],
                            timeout=timeout or (120 if VALGRIND else 15))
        self._wait_ctl()
        return self

    def _wait_ctl(self, timeout=60):
        def ready():
            if self.proc is not None and not self.proc.alive():
                raise RuntimeError("splitvaultd exited before its control socket was ready")
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(str(self.sock_path))
                    return True
            except OSError:
                return False
        wait_until(ready, timeout, "control socket %s did not appear" % self.sock_path,
                   interval=0.02)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def stop(self):
        """SIGTERM; returns the exit status. Under valgrind, errors fail."""
        if self.proc is None:
            return None
        rc = self.proc.stop(timeout=60 if VALGRIND else 15)
        self.proc = None
        if VALGRIND:
            self.check_valgrind()
        return rc

    def check_valgrind(self):
        bad = []
        for f in sorted(self.dir.glob("valgrind.*.log")):
            # valgrind's own notes (a syscall it does not model: mlock2) are
            # not findings; errors and definite leaks are
            text = "\n".join(l for l in f.read_text(errors="replace").splitlines()
                             if not re.match(r"--\d+-- ", l)).strip()
            if text:
                bad.append("%s:\n%s" % (f, text))
            f.unlink()
        assert not bad, "valgrind reported errors:\n" + "\n".join(bad)

    def kill9(self):
        self.proc.kill(signal.SIGKILL)
        self.proc.popen.wait(timeout=15)
        self.proc.stop()
        self.proc = None
        for f in self.dir.glob("valgrind.*.log"):
            f.unlink()  # a killed process leaks by definition

    def restart(self):
        self.stop()
        return self.start()

    # -- control ----------------------------------------------------------------
    def ctl(self, *args, check=False, user=None):
        """splitvaultctl -c CONF ARGS: CompletedProcess."""
        argv = [CTL, "-c", self.conf_path] + list(args)
        if user is not None:
            argv = ["runuser", "-u", user, "--"] + [str(a) for a in argv]
        return run(argv, check=check)

    def ctl_raw(self, line):
        """The daemon's whole answer to one control line, sent as is (lines
        splitvaultctl would not send)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(self.sock_path))
            s.sendall(line)
            s.settimeout(30)
            out = b""
            while True:
                b = s.recv(4096)
                if not b:
                    return out.decode()
                out += b

    def wait_rounds(self, n=2, timeout=30):
        """Wait until the housekeeping thread (once a second: lock-down
        sync, refusal summaries, purge) has run n more rounds."""
        start = int(self.ctl_status()["house_rounds"])
        core.wait_until(lambda: int(self.ctl_status()["house_rounds"]) >= start + n,
                        timeout, "housekeeping did not run %d rounds" % n)

    def ctl_status(self):
        p = self.ctl("status", check=True)
        lines = p.stdout.splitlines()
        assert lines[0] == "ok", p.stdout
        return dict(l.split("=", 1) for l in lines[1:] if "=" in l)

    # -- clients ----------------------------------------------------------------
    def client(self, cert="default", key=None, **kw):
        """A Client with the module's certificate (the frontend role), or
        cert="reconcile" / "monitor" for those roles' certificates, or a
        certificate path (cert=None: no certificate)."""
        if cert == "default":
            cert, key = self.pki.client_cert, self.pki.client_key
        elif cert == "reconcile":
            cert, key = self.pki.reconcile_cert, self.pki.reconcile_key
        elif cert == "monitor":
            cert, key = self.pki.monitor_cert, self.pki.monitor_key
        return Client(self.port, cert, key, self.pki.ca_cert, **kw)

    def reconciler(self, **kw):
        """A Client with the reconcile role's certificate."""
        return self.client("reconcile", **kw)

    # -- the store, read directly (tests only) ----------------------------------
    def shares(self):
        """{id: dict(uuid, field, pub, key2b, state, created)} straight from the store."""
        out = {}
        if self.driver == "sqlite3":
            con = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=30)
            try:
                rows = con.execute("SELECT id, record_uuid, field, key2_pub, key2b, state, "
                                   "created, replaces, retired, retired_why "
                                   "FROM shares").fetchall()
            finally:
                con.close()
            for i, u, f, pub, k2b, st, cr, rp, rt, why in rows:
                out[i] = dict(uuid=u, field=f, pub=bytes.fromhex(pub), key2b=bytes.fromhex(k2b),
                              state=st, created=cr, replaces=rp, retired=rt, why=why)
        else:
            con = self.pg.connect(self.db_name)
            try:
                with con.cursor() as cur:
                    cur.execute("SELECT id, record_uuid::text, field, key2_pub, key2b, state, "
                                "created, replaces, retired, retired_why FROM shares")
                    rows = cur.fetchall()
            finally:
                con.close()
            for i, u, f, pub, k2b, st, cr, rp, rt, why in rows:
                out[i] = dict(uuid=u, field=f, pub=bytes(pub), key2b=bytes(k2b), state=st,
                              created=cr, replaces=rp, retired=rt, why=why)
        return out

    def live(self):
        """{id: share} of the shares not retired (a decrypt can use them)."""
        return {i: sh for i, sh in self.shares().items() if not sh["retired"]}

    def retired(self):
        """{id: share} of the retired shares (kept until purged)."""
        return {i: sh for i, sh in self.shares().items() if sh["retired"]}

    def age_shares(self, seconds, ids=None):
        """Make shares look older (created, and retired for retired ones) by
        seconds: reconcile's grace period and the retention period without
        waiting. ids: only those (default: all)."""
        where = "" if ids is None else " WHERE id IN (%s)" % ",".join(str(int(i)) for i in ids)
        self.sql("UPDATE shares SET created = created - %d, retired = CASE WHEN retired = 0 "
                 "THEN 0 ELSE retired - %d END%s" % (seconds, seconds, where))

    def key2b(self, share_id):
        s = self.shares().get(int(share_id))
        return s["key2b"] if s else None

    def sql(self, statement, params=()):
        """Run one statement on the store (tests that age or damage rows)."""
        if self.driver == "sqlite3":
            con = sqlite3.connect(str(self.db_path), timeout=30)
            try:
                con.execute(statement.replace("%s", "?"), params)
                con.commit()
            finally:
                con.close()
        else:
            con = self.pg.connect(self.db_name)
            try:
                with con.cursor() as cur:
                    cur.execute(statement, params)
            finally:
                con.close()

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_audit(self, needle, count=1, timeout=15):
        """The audit log's text once needle occurs count times in it (or
        after timeout): entries the daemon does not wait for (STORE, a
        RELEASE's outcome, refusals) reach the file within a group commit,
        which under valgrind can take a while."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.audit_path.read_text() if self.audit_path.exists() else ""
            if text.count(needle) >= count or time.monotonic() >= deadline:
                return text
            time.sleep(0.05)

    def teardown(self):
        try:
            self.stop()
        finally:
            if self.driver == "pgsql" and self.pg is not None and self.db_name:
                try:
                    self.pg.drop_db(self.db_name)
                except Exception:
                    pass


def start_for_module(directory, pki, pg, **options):
    """What the module's fixtures call: a started daemon (sqlite3 store,
    limiter permissive) with .port, .stop(), .key2b(share_id)."""
    return Daemon(directory, pki, pg, **options).start()


@pytest.fixture
def daemon_factory(request, pki, pg, workdir):
    made = []

    def make(start=True, **options):
        d = Daemon(workdir / ("daemon%d" % len(made)), pki,
                   pg if options.get("driver") == "pgsql" else None, **options)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    # every daemon stops before any store goes: daemons sharing a pgsql
    # store must not see it dropped under them
    errors = []
    for d in made:
        try:
            d.stop()
        except AssertionError as e:
            errors.append(str(e))
    for d in made:
        try:
            d.teardown()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture(params=["sqlite3", "pgsql"])
def store_driver(request):
    return request.param


# Left out of the valgrind pass as well: tests of timing (deadlines, token
# buckets paced in real time), whose code runs in other tests under valgrind
# too, and all but two kinds of tampering with the audit log (each starts a
# daemon that refuses to run on it; the verifier's unit tests cover them).
VALGRIND_SKIP = {
    "test_handshake_timeout", "test_dribbled_handshake_cut_at_the_deadline",
    "test_dribbled_request_cut_at_the_io_deadline",
    "test_idle_timeout_closes_then_new_connection_works", "test_per_actor_token_bucket",
    "test_global_token_bucket", "test_queue_max_wait", "test_double_click_is_only_queued",
    "test_queued_decrypts_on_both_daemons_share_the_rate",
    "test_tampering_detected[deleted]", "test_tampering_detected[truncated-mid-line]",
    "test_tampering_detected[reordered]", "test_tampering_detected[emptied]",
    "test_tampering_detected[inserted]", "test_tampering_detected[edited-last]",
}


def pytest_collection_modifyitems(config, items):
    """Under valgrind (SV_DAEMON_VALGRIND=1) the tests parametrised over
    both store drivers run with sqlite3 only: the daemon's C code is the
    same but for the SQL text, and the pgsql driver's own paths (connect,
    reconnect, a shared store, its upgrade) have tests of their own that
    still run. It keeps the valgrind pass about as long as the plain one."""
    if not VALGRIND:
        return
    keep, drop = [], []
    for item in items:
        cs = getattr(item, "callspec", None)
        name = item.name.split("[")[0]
        if (cs is not None and cs.params.get("store_driver") == "pgsql") or \
                name in VALGRIND_SKIP or item.name in VALGRIND_SKIP:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory()


@pytest.fixture
def daemon_pg(daemon_factory):
    return daemon_factory(driver="pgsql")
