"""pytest fixtures that start splitvaultd (real TLS, real store).

Every daemon gets its own directory with a generated YAML config, its state
(store, audit log, control socket) in a subdirectory owned by the user it runs
as (`nobody` by default: the daemon starts as root and drops to it), a free
port on 127.0.0.1, and its log registered with the harness. The config is
checked with `splitvaultd -t -c FILE` before the daemon starts in the
foreground; it is stopped by PID at teardown.

Fixtures
- `daemon_factory(**options) -> Daemon`: make and start a daemon; options
  (all optional): driver ("sqlite3" or "pgsql"), pins (list of certificate
  paths or fingerprints), allow (CIDR list), rate_global / rate_actor
  ((interval, burst) or None for unlimited), queue_max, queue_max_wait,
  lockdown_threshold, min_grace, timeouts (dict), max_connections,
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
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import time
import uuid as uuidlib
from pathlib import Path

import pytest

from . import core
from .core import BUILD, SRC, free_port, register_log, run

try:  # the wire engineer's reference codec, when present
    import hpke_ref
except ImportError:  # pragma: no cover
    hpke_ref = None

DAEMON = BUILD / "splitvaultd" / "splitvaultd"
CTL = BUILD / "tools" / "splitvaultctl"
PG_SCHEMA = SRC / "sql" / "daemon" / "pgsql.sql"
VALGRIND = os.environ.get("SV_DAEMON_VALGRIND") == "1"

# ---------------------------------------------------------------------------
# wire protocol v1 (lib/sv_wire.h, docs/protocol.md), client side

MAGIC = b"SV"
VERSION = 1
HDR = struct.Struct(">2sBBII")
MSG = dict(STORE=0x01, DECRYPT=0x02, RELEASE=0x03, STATUS=0x04, RECON_LIST=0x05,
           RECON_DELETE=0x06, STORE_OK=0x81, DECRYPT_OK=0x82, RELEASE_OK=0x83,
           STATUS_OK=0x84, RECON_LIST_OK=0x85, RECON_DELETE_OK=0x86, ERROR=0x7F)
WERR = dict(BAD_REQUEST=1, UNSUPPORTED=2, REFUSED=3, RATE_LIMITED=4, LOCKED_DOWN=5,
            BUSY=6, STORE=7, AUDIT=8, INTERNAL=9, NOT_ALLOWED=10)
WERR_NAME = {v: k for k, v in WERR.items()}
ACTIVE, PENDING = 1, 2
NO_EXT = b"\x00\x00"


def frame(mtype, reqid, body):
    return HDR.pack(MAGIC, VERSION, mtype, reqid, len(body)) + body


def _str8(s):
    b = s.encode("ascii")
    return bytes([len(b)]) + b


def _uuid16(u):
    return uuidlib.UUID(str(u)).bytes


class _Rd:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        if self.o + n > len(self.b):
            raise ValueError("truncated answer")
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def str8(self):
        return self.take(self.u8()).decode("ascii")

    def ext(self):
        for _ in range(self.u16()):
            self.u16()
            self.take(self.u16())
        if self.o != len(self.b):
            raise ValueError("trailing bytes in answer")


def enc_store(uuid, fields):
    """fields: [(name, pub32, key2b32)]"""
    b = _uuid16(uuid) + bytes([len(fields)])
    for name, pub, k2b in fields:
        b += _str8(name) + pub + k2b
    return b + NO_EXT


def enc_decrypt(uuid, actor, wait_ms, fields):
    """fields: [(share_id, name, key2a, enc, ct, rotate)] where rotate is
    None or (new_pub, new_key2b)."""
    b = _uuid16(uuid) + _str8(actor) + struct.pack(">IB", wait_ms, len(fields))
    for sid, name, key2a, enc, ct, rot in fields:
        b += struct.pack(">Q", sid) + _str8(name) + key2a + enc + struct.pack(">I", len(ct)) + ct
        b += b"\x01" + rot[0] + rot[1] if rot else b"\x00"
    return b + NO_EXT


def enc_release(uuid, items):
    """items: [(name, drop_id, keep_id)]"""
    b = _uuid16(uuid) + bytes([len(items)])
    for name, drop, keep in items:
        b += _str8(name) + struct.pack(">QQ", drop, keep)
    return b + NO_EXT


def enc_recon_list(grace_s, after_id, limit):
    return struct.pack(">IQH", grace_s, after_id, limit) + NO_EXT


def enc_recon_delete(grace_s, refs):
    """refs: [(id, uuid, name)]"""
    b = struct.pack(">IH", grace_s, len(refs))
    for sid, u, name in refs:
        b += struct.pack(">Q", sid) + _uuid16(u) + _str8(name)
    return b + NO_EXT


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

    def _recv_exact(self, n):
        b = b""
        while len(b) < n:
            chunk = self.sock.recv(n - len(b))
            if not chunk:
                raise ConnectionError("connection closed by the daemon")
            b += chunk
        return b

    def recv_frame(self):
        magic, ver, mtype, reqid, blen = HDR.unpack(self._recv_exact(HDR.size))
        if magic != MAGIC or ver != VERSION:
            raise ValueError("bad frame header from the daemon")
        return mtype, reqid, self._recv_exact(blen)

    def closed_by_peer(self, timeout=5.0):
        """True when the daemon closes the connection (EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError, OSError):
            return True

    def call(self, mtype, body, want):
        self.reqid = (self.reqid + 1) & 0xFFFFFFFF
        self.sock.sendall(frame(mtype, self.reqid, body))
        t, rid, b = self.recv_frame()
        if rid != self.reqid:
            raise ValueError("answer to request %d, expected %d" % (rid, self.reqid))
        if t == MSG["ERROR"]:
            r = _Rd(b)
            code, retry, msg = r.u16(), r.u32(), r.str8()
            r.ext()
            raise DaemonError(code, retry, msg)
        if t != want:
            raise ValueError("unexpected answer type 0x%02x" % t)
        return _Rd(b)

    def store(self, uuid, fields):
        r = self.call(MSG["STORE"], enc_store(uuid, fields), MSG["STORE_OK"])
        ids = [r.u64() for _ in range(r.u8())]
        r.ext()
        return ids

    def decrypt(self, uuid, actor, fields, wait_ms=5000):
        """-> [(plaintext, new_share_id)] in request order."""
        r = self.call(MSG["DECRYPT"], enc_decrypt(uuid, actor, wait_ms, fields),
                      MSG["DECRYPT_OK"])
        out = []
        for _ in range(r.u8()):
            pt = r.take(r.u32())
            out.append((pt, r.u64()))
        r.ext()
        return out

    def release(self, uuid, items):
        r = self.call(MSG["RELEASE"], enc_release(uuid, items), MSG["RELEASE_OK"])
        n = r.u8()
        r.ext()
        return n

    def status(self):
        r = self.call(MSG["STATUS"], NO_EXT, MSG["STATUS_OK"])
        st = dict(locked=r.u8(), queue_len=r.u32(), queue_max=r.u32(), locked_since=r.u64(),
                  shares_active=r.u64(), shares_pending=r.u64(), stores=r.u64(),
                  decrypts=r.u64(), refusals=r.u64(), uptime=r.u64())
        r.ext()
        return st

    def recon_list(self, grace_s, after_id=0, limit=1000):
        """-> (entries [(id, uuid, name, state, created)], more)"""
        r = self.call(MSG["RECON_LIST"], enc_recon_list(grace_s, after_id, limit),
                      MSG["RECON_LIST_OK"])
        more = r.u8()
        out = []
        for _ in range(r.u16()):
            sid = r.u64()
            u = str(uuidlib.UUID(bytes=r.take(16)))
            out.append((sid, u, r.str8(), r.u8(), r.u64()))
        r.ext()
        return out, bool(more)

    def recon_delete(self, grace_s, refs):
        r = self.call(MSG["RECON_DELETE"], enc_recon_delete(grace_s, refs),
                      MSG["RECON_DELETE_OK"])
        n = r.u16()
        r.ext()
        return n


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

    def __init__(self, directory, pki, pg=None, driver="sqlite3", pins=None, allow=None,
                 rate_global=None, rate_actor=None, queue_max=8, queue_max_wait="10s",
                 lockdown_threshold=None, min_grace="0", timeouts=None,
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
        self.audit_path = self.state / "audit.log"
        self.head_path = self.state / "audit.log.head"
        self.sock_path = self.state / "ctl.sock"
        self.proc = None
        self.db_name = None
        if driver == "pgsql":
            if pg is None:
                raise ValueError("driver pgsql needs a PgCluster")
            self.db_name = db_name or "svd_%d_%d" % (os.getpid(), int(time.monotonic() * 1e6))
            if db_name is None:
                pg.create_db(self.db_name, [PG_SCHEMA])
        pinned = []
        for p in pins or []:
            pinned.append(p if len(str(p)) == 64 and not Path(str(p)).exists()
                          else core.Pki.fingerprint(p))
        store = ({"driver": "sqlite3", "path": str(self.db_path)} if driver == "sqlite3"
                 else {"driver": "pgsql", "params": pg.dsn(self.db_name)})
        store["readers"] = 2
        t = {"handshake_timeout": "5s", "idle_timeout": "60s", "io_timeout": "5s"}
        t.update(timeouts or {})
        self.config = {
            "listen": {"address": "127.0.0.1", "port": self.port},
            "tls": {"certificate": str(pki.server_cert), "key": str(pki.server_key),
                    "client_ca": str(pki.ca_cert), "pinned_clients": pinned},
            "clients": {"allow": allow or ["127.0.0.0/8"]},
            "connections": dict(max=max_connections, **t),
            "store": store,
            "decrypt": {
                "global_rate": _rate(rate_global),
                "actor_rate": _rate(rate_actor),
                "queue": {"max_length": queue_max, "max_wait": queue_max_wait},
                "lockdown_threshold": queue_max if lockdown_threshold is None
                else lockdown_threshold,
            },
            "reconcile": {"min_grace": min_grace},
            "audit": {"path": str(self.audit_path)},
            "control": {"socket": str(self.sock_path)},
            "process": {"user": user, "log_level": "debug", "secure_heap": "4MiB",
                        "mlock": True},
        }
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
                              env=env).start()
        self.proc.wait_port(self.port, timeout=timeout or (120 if VALGRIND else 15))
        self._wait_ctl()
        return self

    def _wait_ctl(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and not self.proc.alive():
                raise RuntimeError("splitvaultd exited before its control socket was ready")
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(str(self.sock_path))
                    return
            except OSError:
                time.sleep(0.02)
        raise TimeoutError("control socket %s did not appear" % self.sock_path)

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

    def ctl_status(self):
        p = self.ctl("status", check=True)
        lines = p.stdout.splitlines()
        assert lines[0] == "ok", p.stdout
        return dict(l.split("=", 1) for l in lines[1:] if "=" in l)

    # -- clients ----------------------------------------------------------------
    def client(self, cert="default", key=None, **kw):
        """A Client with the module's certificate (cert=None: no certificate)."""
        if cert == "default":
            cert, key = self.pki.client_cert, self.pki.client_key
        return Client(self.port, cert, key, self.pki.ca_cert, **kw)

    # -- the store, read directly (tests only) ----------------------------------
    def shares(self):
        """{id: dict(uuid, field, pub, key2b, state, created)} straight from the store."""
        out = {}
        if self.driver == "sqlite3":
            con = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=30)
            try:
                rows = con.execute("SELECT id, record_uuid, field, key2_pub, key2b, state, "
                                   "created FROM shares").fetchall()
            finally:
                con.close()
            for i, u, f, pub, k2b, st, cr in rows:
                out[i] = dict(uuid=u, field=f, pub=bytes.fromhex(pub), key2b=bytes.fromhex(k2b),
                              state=st, created=cr)
        else:
            con = self.pg.connect(self.db_name)
            try:
                with con.cursor() as cur:
                    cur.execute("SELECT id, record_uuid::text, field, key2_pub, key2b, state, "
                                "created FROM shares")
                    rows = cur.fetchall()
            finally:
                con.close()
            for i, u, f, pub, k2b, st, cr in rows:
                out[i] = dict(uuid=u, field=f, pub=bytes(pub), key2b=bytes(k2b), state=st,
                              created=cr)
        return out

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
    errors = []
    for d in made:
        try:
            d.teardown()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture(params=["sqlite3", "pgsql"])
def store_driver(request):
    return request.param


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory()


@pytest.fixture
def daemon_pg(daemon_factory):
    return daemon_factory(driver="pgsql")
