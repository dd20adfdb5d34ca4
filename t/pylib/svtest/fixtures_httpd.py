"""pytest fixtures that start httpd with the built mod_splitvault.

Everything real: a database whose roles are made with `splitvault-admin
roles` (as the cluster's superuser) and whose schema is applied with
`splitvault-admin schema` (as the owner role, which every splitvault-admin
call of the harness uses); httpd connects as the web role, so every module
test runs with only the grants of sql/roles.sql. Staff
accounts made with `splitvault-admin staff-add` (password on stdin), a key1
made with the stock `openssl genpkey` and registered with
`splitvault-admin key1-register`, splitvaultd (from fixtures_daemon) with
mutual TLS, and httpd (apache2) in the foreground with its own generated
config, checked with `apache2 -t` before it starts, stopped by PID. At
teardown httpd's error log must hold no unexpected error.

Fixtures
- `main_db`       a fresh main database with the schema applied (MainDb)
- `sv_factory`    make_stack(**options) -> Stack: db + key1 + daemon + httpd;
                  options are Httpd's (fields, directives, tls, ...)
- `sv`            a Stack with the default form and the standard staff
                  (STAFF below), new for each test
- `sv_shared`     the same, shared by the tests of one module (read-mostly
                  tests that do not care what others stored)

Stack also drives the key location and decryption the way a browser does:
`upload_key1()` (multipart or urlencoded, admin ada by default),
`forget_key1()`, `decrypt(client, ref)` and `decrypted_values(response)`;
`daemon_options` (to sv_factory) are passed to the daemon's fixture (rate
limits, queue, lock-down threshold).

PgProxy sits between httpd and PostgreSQL (Httpd's `db_port`) and can lose
a COMMIT on the way, or its answer.

Reusable outside pytest (the demo, benchmarks): MainDb, Key1, Httpd,
WebClient, Stack.start(...).
"""
import html
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from . import core, logcheck
from .core import BUILD, SRC, free_port, make_workdir, register_log, run

APACHE = Path("/usr/sbin/apache2")
APACHE_MODULES = Path("/usr/lib/apache2/modules")
MODULE = BUILD / "mod_splitvault" / ".libs" / "mod_splitvault.so"
ADMIN = BUILD / "tools" / "splitvault-admin"
SQL_MAIN = SRC / "sql" / "main"

def _test_hooks():
    try:
        return "#define SV_TEST_HOOKS 1" in (BUILD / "config.h").read_text()
    except OSError:
        return False


# Whether this build has the test-only fault hooks (configure --enable-test-hooks).
TEST_HOOKS = _test_hooks()
needs_test_hooks = pytest.mark.skipif(not TEST_HOOKS,
                                      reason="needs a build with --enable-test-hooks")

# The default form: the benchmark's three fields.
DEFAULT_FIELDS = [
    ("name", "Full name", "required maxlength=200"),
    ("ssn", "Social security number", "required maxlength=20"),
    ("notes", "Notes", "maxlength=2000 multiline"),
]

# Standard staff accounts: name -> (password, capabilities)
STAFF = {
    "dora": ("dora-password-0001", ()),                         # list and view only
    "uma": ("uma-password-00002", ("update",)),
    "pat": ("pat-password-00003", ("update", "decrypt")),
    "ada": ("ada-password-00004", ("admin",)),
}

# Error-log lines at these levels fail a test unless allowed.
_BAD_LEVEL = re.compile(r"\[[a-z_]*:(error|crit|alert|emerg)\]")


# The main database's roles in the test clusters: not the default names, so
# that the tests show the names are the installation's choice. Roles are
# cluster-wide; every database of a cluster shares these two (`roles` is
# idempotent), each with grants of its own.
OWNER_ROLE = "sv_test_owner"
WEB_ROLE = "sv_test_web"
# the staff console's role (SplitVaultStaffConsole On: Httpd(console=True))
CONSOLE_ROLE = "sv_test_console"


class MainDb:
    """A main database on a PgCluster, administered through splitvault-admin.

    dsn: the owner role's connection string (splitvault-admin); web_dsn: the
    web role's (httpd's DBDParams); console_dsn: the console role's (a
    console's DBDParams); super_dsn: the cluster's superuser. Without roles
    (owner=None), all are the superuser's: a database as an installation
    had it before it set up its roles."""

    def __init__(self, pg, name, owner=None, web=None, console=None):
        self.pg = pg
        self.name = name
        self.owner = owner
        self.web = web
        self.console = console if owner else None
        self.super_dsn = pg.dsn(name)
        self.dsn = pg.dsn(name, owner) if owner else self.super_dsn
        self.web_dsn = pg.dsn(name, web) if web else self.dsn
        self.console_dsn = pg.dsn(name, self.console) if self.console else self.dsn

    @classmethod
    def create(cls, pg, name=None, owner=OWNER_ROLE, web=WEB_ROLE, console=CONSOLE_ROLE):
        name = name or "main_%d_%d" % (os.getpid(), int(time.monotonic() * 1e6) % 10 ** 9)
        pg.create_db(name)
        db = cls(pg, name, owner, web, console)
        db.setup_roles()
        db.admin("schema", "--sql-dir", SQL_MAIN)
        return db

    # (cluster port, owner, web) -> a database with the schema and the
    # standard staff, never used itself: the template of create_standard()
    _templates = {}

    @classmethod
    def create_standard(cls, pg, owner=OWNER_ROLE, web=WEB_ROLE, console=CONSOLE_ROLE):
        """A fresh main database with the schema and the standard staff, as
        create() and add_standard_staff() make it, but copied from a
        template made once per cluster (the staff's Argon2id hashing and
        the schema are most of a stack's start-up). The copy gets its
        database-level settings and grants from `splitvault-admin roles`,
        as create() does."""
        key = (pg.port, owner, web, console)
        tmpl = cls._templates.get(key)
        if tmpl is None:
            t = cls.create(pg, name="tmpl_%s_%d" % (owner, pg.port), owner=owner, web=web,
                           console=console)
            t.add_standard_staff()
            tmpl = cls._templates[key] = t.name
        name = "main_%d_%d" % (os.getpid(), int(time.monotonic() * 1e6) % 10 ** 9)
        conn = pg.connect("postgres")
        try:
            with conn.cursor() as cur:
                cur.execute('CREATE DATABASE "%s" TEMPLATE "%s"' % (name, tmpl))
        finally:
            conn.close()
        db = cls(pg, name, owner, web, console)
        db.setup_roles()
        return db

    def setup_roles(self, check=True):
        """`splitvault-admin roles` as the superuser, with this db's names."""
        return run([ADMIN, "-d", self.super_dsn, "roles", "--owner", self.owner,
                    "--web", self.web] + (["--console", self.console] if self.console else [])
                   + ["--sql-dir", SQL_MAIN], check=check)

    def admin(self, *args, input=None, check=True):
        """splitvault-admin as the owner role."""
        return run([ADMIN, "-d", self.dsn] + [str(a) for a in args], input=input, check=check)

    def connect_web(self):
        """A psycopg2 connection as the web role (autocommit)."""
        return self.pg.connect(self.name, self.web)

    def connect_console(self):
        """A psycopg2 connection as the console role (autocommit)."""
        return self.pg.connect(self.name, self.console)

    def add_staff(self, name, password, caps=()):
        flags = ["--" + c for c in caps]
        return self.admin("staff-add", name, *flags, input=password + "\n")

    def add_standard_staff(self):
        for name, (pw, caps) in STAFF.items():
            self.add_staff(name, pw, caps)

    def query(self, sql, args=()):
        conn = self.pg.connect(self.name)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def count(self, table):
        return self.query("SELECT count(*) FROM %s" % table)[0][0]

    def age_sessions(self, seconds):
        """Make every session look `seconds` older (created, last activity
        and absolute expiry move together): idle and absolute expiry
        without waiting. The module compares them with the database's now()."""
        self.query("UPDATE sessions SET created = created - make_interval(secs => %s), "
                   "last_seen = last_seen - make_interval(secs => %s), "
                   "expires = expires - make_interval(secs => %s)",
                   (seconds, seconds, seconds))

    def age_login_throttle(self, seconds):
        """Make the sign-in throttle's windows and pauses `seconds` older:
        a pause runs out without waiting."""
        self.query("UPDATE login_throttle SET "
                   "first_failure = first_failure - make_interval(secs => %s), "
                   "locked_until = locked_until - make_interval(secs => %s), "
                   "pending_until = pending_until - make_interval(secs => %s)",
                   (seconds, seconds, seconds))

    def drop(self):
        self.pg.drop_db(self.name)


class Key1:
    """key1 made the way an admin makes it: openssl genpkey [-aes256] + pkey -pubout."""

    def __init__(self, directory, passphrase=None, name="key1"):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.pem = d / (name + ".pem")
        self.pub = d / (name + ".pub")
        self.passphrase = passphrase
        argv = ["openssl", "genpkey", "-algorithm", "X25519", "-out", self.pem]
        if passphrase:
            argv += ["-aes256", "-pass", "pass:" + passphrase]
        run(argv)
        argv = ["openssl", "pkey", "-in", self.pem, "-pubout", "-out", self.pub]
        if passphrase:
            argv += ["-passin", "pass:" + passphrase]
        run(argv)
        self.pem.chmod(0o600)

    def private_raw(self):
        """Raw 32-byte private key (for opening stored rows in tests)."""
        from cryptography.hazmat.primitives import serialization
        key = serialization.load_pem_private_key(
            self.pem.read_bytes(),
            password=self.passphrase.encode() if self.passphrase else None)
        return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())

    def public_raw(self):
        from cryptography.hazmat.primitives import serialization
        key = serialization.load_pem_public_key(self.pub.read_bytes())
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def fingerprint(self):
        return core.sha256_hex(self.public_raw())


def key1_split(key, k, holders, out_dir, passphrases, dsn=None):
    """`splitvault-admin key1-split` of key into len(passphrases) shares
    with threshold k, share i under passphrases[i-1] (given on a pipe: a
    script's way; a real ceremony types them on a terminal) and for
    holders[i-1] when holders are named; with dsn, the main database the
    split is recorded in. Returns the share files' paths, by index from 1."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(ADMIN)] + (["-d", dsn] if dsn else [])
    argv += ["key1-split", "--k", str(k), "--n", str(len(passphrases))]
    for h in holders:
        argv += ["--holder", h]
    argv += ["--out-dir", str(out_dir), "--share-passphrase-fd", "0"]
    fds = ()
    if key.passphrase:
        r, w = os.pipe()
        os.write(w, (key.passphrase + "\n").encode())
        os.close(w)
        argv += ["--passphrase-fd", str(r)]
        fds = (r,)
    argv.append(str(key.pem))
    try:
        p = subprocess.run(argv, input="".join(x + "\n" for x in passphrases),
                           capture_output=True, text=True, timeout=120, pass_fds=fds)
    finally:
        for fd in fds:
            os.close(fd)
    assert p.returncode == 0, p.stdout + p.stderr
    return {i: out_dir / ("key1-%s.share-%d" % (key.fingerprint[:16], i))
            for i in range(1, len(passphrases) + 1)}

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.raw = body
        self.text = body.decode("utf-8", "replace")

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def csrf(self):
        m = re.search(r'name="csrf" value="([0-9a-f]{64})"', self.text)
        return m.group(1) if m else None

    def __repr__(self):
        return "<Response %d %d bytes>" % (self.status, len(self.raw))


class WebClient:
    """A small cookie-keeping HTTP(S) client (standard library only)."""

    def __init__(self, port, tls=True, cafile=None, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.tls = tls
        self.cookies = {}
        self.ctx = ssl.create_default_context(cafile=str(cafile)) if tls else None

    def _conn(self, timeout):
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                               timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30, cookies=True,
                chunked=False):
        h = dict(headers or {})
        if cookies and self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        c = self._conn(timeout)
        try:
            c.request(method, path, body=body, headers=h, encode_chunked=chunked)
            r = c.getresponse()
            resp = Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()
        for sc in resp.header_all("Set-Cookie"):
            name, _, rest = sc.partition("=")
            value = rest.split(";", 1)[0]
            if re.search(r";\s*Max-Age=0(;|$)", sc) or value == "":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, form=None, body=None, content_type="application/x-www-form-urlencoded",
             headers=None, **kw):
        if form is not None:
            body = urllib.parse.urlencode(form, encoding="utf-8")
        h = {"Content-Type": content_type} if content_type else {}
        h.update(headers or {})
        return self.request("POST", path, body=body, headers=h, **kw)


class Httpd:
    """apache2 with mod_splitvault, its config generated in its own dir."""

    def __init__(self, directory, db, pki, daemon_port, fields=None, tls=True,
                 directives=None, extra="", base="/splitvault", threads=10, name="httpd",
                 loglevel="warn splitvault:info", access_log=True, dbd_max=None,
                 server_limit=2, db_port=None, mpm="event", console=False,
                 extra_daemons=()):
        self.dir = Path(directory)
        self.db = db
        self.pki = pki
        self.daemon_port = daemon_port
        # more endpoints ("host:port") after the daemon's in SplitVaultDaemon
        self.extra_daemons = list(extra_daemons)
        self.fields = fields if fields is not None else DEFAULT_FIELDS
        self.tls = tls
        self.directives = directives or {}
        self.extra = extra
        self.base = base
        self.threads = threads
        self.name = name
        self.loglevel = loglevel
        self.want_access_log = access_log
        self.dbd_max = dbd_max or threads
        self.server_limit = server_limit
        # "event" (the default), or "prefork": one connection per process,
        # and only idle processes accept (tests that need a request to be
        # served by a given process); threads is then ignored
        self.mpm = mpm
        # reach PostgreSQL through this port instead (a PgProxy in front of it)
        self.db_port = db_port
        # a staff console: SplitVaultStaffConsole On, DBDParams the console role
        self.console = console
        self.port = free_port()
        self.conf = self.dir / "httpd.conf"
        self.error_log = self.dir / "logs" / "error.log"
        self.access_log = self.dir / "logs" / "access.log"
        self.proc = None
        for sub in ("logs", "run"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self.write_config()

    def config_text(self):
        d = self.dir
        lines = [
            'ServerRoot "%s"' % d,
            'PidFile "%s/run/httpd.pid"' % d,
            'DefaultRuntimeDir "%s/run"' % d,
            'ErrorLog "%s"' % self.error_log,
            "LogLevel %s" % self.loglevel,
            "Listen 127.0.0.1:%d" % self.port,
            "ServerName localhost",
            "User www-data",
            "Group www-data",
        ]
        mods = ["mpm_" + self.mpm, "authz_core", "authz_host", "dbd"]
        if self.tls:
            mods.append("ssl")
        for m in mods:
            lines.append("LoadModule %s_module %s/mod_%s.so" % (m, APACHE_MODULES, m))
        lines += [
            'LoadModule splitvault_module "%s"' % MODULE,
            "StartServers 1",
            "ServerLimit %d" % self.server_limit,
        ]
        if self.mpm == "prefork":
            lines += [
                "MaxRequestWorkers %d" % self.server_limit,
                "MinSpareServers 1",
                "MaxSpareServers %d" % self.server_limit,
            ]
        else:
            lines += [
                "ThreadsPerChild %d" % self.threads,
                "MaxRequestWorkers %d" % (self.server_limit * self.threads),
                "MinSpareThreads 1",
                "MaxSpareThreads %d" % (self.server_limit * self.threads),
            ]
        lines += [
            "DBDriver pgsql",
            'DBDParams "%s"' % self.dbd_params(),
            "DBDMin 0",
            "DBDKeep 4",
            "DBDMax %d" % self.dbd_max,
            "DBDExptime 30",
        ]
        if self.want_access_log:
            lines += ['LogFormat "%h %u \\"%r\\" %>s %b %D" sv',
                      'CustomLog "%s" sv' % self.access_log]
        if self.tls:
            lines += [
                "SSLEngine on",
                'SSLCertificateFile "%s"' % self.pki.server_cert,
                'SSLCertificateKeyFile "%s"' % self.pki.server_key,
            ]
        directives = {
            "SplitVaultBase": self.base,
            "SplitVaultDaemon": " ".join(["127.0.0.1:%d" % self.daemon_port]
                                         + self.extra_daemons),
            "SplitVaultDaemonCA": '"%s"' % self.pki.ca_cert,
            "SplitVaultDaemonCertificate": '"%s"' % self.pki.client_cert,
            "SplitVaultDaemonKey": '"%s"' % self.pki.client_key,
            "SplitVaultDaemonTimeout": "5",
            "SplitVaultCookieSecure": "On" if self.tls else "Off",
        }
        if self.console:
            directives["SplitVaultStaffConsole"] = "On"
        directives.update(self.directives)
        for k, v in directives.items():
            if v is not None:
                lines.append("%s %s" % (k, v))
        for name, label, opts in self.fields:
            lines.append('SplitVaultField %s "%s" %s' % (name, label, opts))
        lines += [
            "<Location %s>" % self.base,
            "  SetHandler splitvault",
            "  Require all granted",
            "</Location>",
            "<Location %s-keys>" % self.base,
            "  SetHandler splitvault-keys",
            "  Require ip 127.0.0.1",
            "</Location>",
            self.extra,
        ]
        return "\n".join(lines) + "\n"

    def dbd_params(self):
        """The web role's connection string, as production's DBDParams (a
        stand-in db with only a dsn, for config checks, gives that)."""
        dsn = getattr(self.db, "console_dsn" if self.console else "web_dsn", self.db.dsn)
        if not self.db_port:
            return dsn
        # the proxy reads PostgreSQL's plain protocol: no TLS or GSS negotiation
        return re.sub(r"port=\d+", "port=%d" % self.db_port, dsn) \
            + " sslmode=disable gssencmode=disable"

    def write_config(self):
        self.conf.write_text(self.config_text())

    def check(self):
        """apache2 -t on the config: CompletedProcess (not raising)."""
        return run([APACHE, "-t", "-f", self.conf], check=False)

    def start(self, timeout=20):
        t = self.check()
        if t.returncode != 0:
            raise RuntimeError("apache2 -t refused the config:\n%s%s" % (t.stdout, t.stderr))
        self.error_log.touch()
        register_log(self.error_log, self.name + " error log", "httpd")
        started = self.log_text().count("resuming normal operations")
        self.proc = core.Proc(self.name, [APACHE, "-f", self.conf, "-DFOREGROUND"],
                              self.dir / "logs" / "stdout.log").start()
        self.proc.wait_port(self.port, timeout=timeout)
        # httpd listens before its post_config hooks run and before it writes
        # its pid file: ready once the parent says it resumes operations
        def resumed():
            if not self.proc.alive():
                raise RuntimeError("%s exited during its start-up" % self.name)
            return self.log_text().count("resuming normal operations") > started
        core.wait_until(resumed, timeout, "%s did not finish its start-up" % self.name,
                        interval=0.02)
        return self

    def stop(self):
        if self.proc:
            self.proc.stop(timeout=15)
            self.proc = None

    def children(self):
        """PIDs of the parent's children (the parent runs in the foreground)."""
        me = str(self.proc.pid)
        out = set()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                out.add(int(d))
        return out

    def _restarted(self, kick, timeout, what):
        """Run kick() (a restart of some kind); return once the parent has
        re-read its configuration, resumed, and started a new child."""
        before = self.log_text().count("resuming normal operations")
        old = self.children()
        kick()
        core.wait_until(lambda: self.log_text().count("resuming normal operations") > before,
                        timeout, "%s: no restart seen in the error log" % what)
        core.wait_until(lambda: self.children() - old, timeout,
                        "%s: no child of the new generation" % what)

    def graceful(self, timeout=20):
        """SIGUSR1 to the parent (a graceful restart)."""
        self._restarted(lambda: os.kill(self.proc.pid, signal.SIGUSR1), timeout, "SIGUSR1")

    def graceful_ctl(self, timeout=20, action="graceful"):
        """`apache2 -k graceful` (what a sysadmin runs; action="restart" for
        `-k restart`); returns once the parent has re-read its
        configuration, resumed and started a child of the new generation."""
        self._restarted(lambda: run([APACHE, "-f", self.conf, "-k", action]), timeout,
                        "apache2 -k " + action)

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def url(self, path=""):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def path(self, rel=""):
        return self.base + rel

    def client(self):
        return WebClient(self.port, tls=self.tls, cafile=self.pki.ca_cert)

    def error_lines(self, allowed=()):
        """Error-log lines at error level or worse that no pattern in allowed matches."""
        if not self.error_log.exists():
            return []
        bad = []
        for line in self.error_log.read_text(errors="replace").splitlines():
            if _BAD_LEVEL.search(line) and not any(re.search(a, line) for a in allowed):
                bad.append(line)
        return bad

    def log_text(self):
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""


class PgProxy:
    """A TCP proxy in front of PostgreSQL that can lose a COMMIT.

    arm("after") makes it forward the next simple-query COMMIT, wait for the
    server's answer (so the server has committed), swallow that answer and
    cut both connections: the client never learns the outcome.
    arm("before") cuts both connections instead of forwarding that COMMIT
    (so the server rolls back). With refuse=True it also turns away every
    new connection until `refuse` is set False again. With bind=b"name",
    the trigger is instead the next extended-protocol statement whose Bind
    message names that prepared statement, and the cut happens at its Sync
    (for an autocommitted statement, "after" means committed, answer
    lost). `cuts` counts the connections it cut."""

    def __init__(self, pg_host, pg_port):
        self.pg = (pg_host, pg_port)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.mode = None
        self.bind = None
        self.refuse = False
        self._refuse_next = False
        self.cuts = 0
        self._lock = threading.Lock()
        self._socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, mode, refuse=False, bind=None):
        assert mode in ("after", "before")
        with self._lock:
            self.mode = mode
            self.bind = bind
            self._refuse_next = refuse

    def close(self):
        self.ls.close()
        for x in self._socks:
            self._shut(x)

    def _shut(self, x):
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        x.close()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            if self.refuse:
                c.close()
                continue
            try:
                s = socket.create_connection(self.pg)
            except OSError:
                c.close()
                continue
            self._socks += [c, s]
            held = threading.Event()
            answered = threading.Event()
            threading.Thread(target=self._c2s, args=(c, s, held, answered),
                                   daemon=True).start()
            threading.Thread(target=self._s2c, args=(c, s, held, answered),
                                   daemon=True).start()

    @staticmethod
    def _recv(sock, n):
        b = b""
        while len(b) < n:
            k = sock.recv(n - len(b))
            if not k:
                raise EOFError
            b += k
        return b

    def _s2c(self, c, s, held, answered):
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                if held.is_set():
                    answered.set()  # the server's answer to COMMIT: swallowed
                    continue
                c.sendall(d)
        except OSError:
            pass

    def _c2s(self, c, s, held, answered):
        try:
            n = struct.unpack("!I", self._recv(c, 4))[0]
            s.sendall(struct.pack("!I", n) + self._recv(c, n - 4))  # startup message
            bound = None  # armed by a matching Bind: cut at its Sync
            while True:
                t = self._recv(c, 1)
                n = struct.unpack("!I", self._recv(c, 4))[0]
                msg = t + struct.pack("!I", n) + self._recv(c, n - 4)
                mode = None
                with self._lock:
                    if self.mode and self.bind is None and t == b"Q" \
                            and msg[5:].upper().startswith(b"COMMIT"):
                        mode, self.mode = self.mode, None
                    elif self.mode and self.bind is not None and t == b"B" \
                            and self.bind + b"\0" in msg[5:]:
                        bound, self.mode = self.mode, None
                if t == b"S" and bound:
                    mode, bound = bound, None
                if mode == "after":
                    held.set()
                    s.sendall(msg)
                    answered.wait(10)
                if mode:
                    with self._lock:
                        if self._refuse_next:
                            self.refuse = True
                        self.cuts += 1
                    self._shut(c)
                    self._shut(s)
                    return
                s.sendall(msg)
        except (EOFError, OSError):
            pass
        for x in (c, s):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Stack:
    """Everything one test needs: db, key1, daemon, httpd, and ways in."""

    def __init__(self, directory, pg, pki, daemon_factory, staff=True, key1=True,
                 key1_passphrase=None, daemon_options=None, db_roles=(OWNER_ROLE, WEB_ROLE),
                 **httpd_options):
        self.dir = Path(directory)
        self.pg = pg
        self.pki = pki
        console = db_roles[2] if len(db_roles) > 2 else CONSOLE_ROLE
        if staff and db_roles[0] and db_roles[1]:
            self.db = MainDb.create_standard(pg, owner=db_roles[0], web=db_roles[1],
                                             console=console)
        else:
            self.db = MainDb.create(pg, owner=db_roles[0], web=db_roles[1], console=console)
            if staff:
                self.db.add_standard_staff()
        self.key1 = None
        if key1:
            self.key1 = Key1(self.dir / "key1", passphrase=key1_passphrase)
            self.db.admin("key1-register", self.key1.pub, "--by", "tests")
        self.daemon = daemon_factory(self.dir / "daemon", **(daemon_options or {}))
        self.httpd = Httpd(self.dir / "httpd", self.db, pki, self.daemon.port, **httpd_options)
        self.httpd.start()
        # Tests add patterns here for errors they cause on purpose (or
        # declare them with @pytest.mark.log_allows). Allowed always: the
        # event MPM's own shutdown race (httpd 2.4.x: a keep-alive socket
        # closed by close_worker_sockets() while a worker re-adds it to the
        # pollset logs AH03093 with EBADF; later httpd checks for it).
        self.allowed_errors = logcheck.allow_list(
            [r"\(9\)Bad file descriptor: AH03093: process_socket: apr_pollset_add failure"])

    def client(self):
        return self.httpd.client()

    def path(self, rel=""):
        return self.httpd.path(rel)

    def login(self, name, password=None, client=None):
        """Sign in through the form; returns the signed-in client."""
        c = client or self.client()
        page = c.get(self.path("/staff/login"))
        assert page.status == 200, page.text
        pw = password if password is not None else STAFF[name][0]
        r = c.post(self.path("/staff/login"),
                   {"csrf": page.csrf(), "name": name, "password": pw})
        c.last = r
        return c

    def submit(self, values, client=None):
        """POST the public form; returns the Response."""
        c = client or self.client()
        return c.post(self.path("/"), values)

    def submit_at_once(self, values, n, timeout=60):
        """n submissions from n new clients, released together; returns
        their statuses in the order they came back."""
        start = threading.Barrier(n)
        statuses = []

        def one():
            c = self.client()
            start.wait(timeout)
            statuses.append(self.submit(values, client=c).status)

        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
        return statuses

    # -- the key location and decryption -----------------------------------
    def keys_path(self):
        return self.httpd.base + "-keys"

    def upload_key1(self, client=None, pem=None, passphrase=None, form="multipart",
                    csrf=None, extra=None):
        """Load key1 at the key location as a browser does; returns the
        Response (303 on success). pem: bytes of the key file (default this
        stack's key1); passphrase: default this stack's; csrf: default the
        page's token (pass "" to send none)."""
        c = client or self.login("ada")
        page = c.get(self.keys_path())
        token = page.csrf() if csrf is None else csrf
        pem = self.key1.pem.read_bytes() if pem is None else pem
        if passphrase is None:
            passphrase = self.key1.passphrase or ""
        fields = [("action", "upload"), ("kind", "whole"), ("passphrase", passphrase)]
        if token:
            fields.insert(0, ("csrf", token))
        fields += list((extra or {}).items())
        if form == "multipart":
            body, ctype = multipart_body(fields, [("key1file", "key1.pem", pem)])
            return c.post(self.keys_path(), body=body, content_type=ctype)
        fields.append(("key1pem", pem.decode("ascii")))
        return c.post(self.keys_path(), body=urllib.parse.urlencode(fields))

    def give_share(self, client, data, passphrase):
        """Give a key1 share at the key location as a browser does (the
        share file input and its passphrase); returns the Response (303
        when taken)."""
        page = client.get(self.keys_path())
        fields = [("csrf", page.csrf()), ("action", "share"), ("passphrase", passphrase)]
        body, ctype = multipart_body(fields, [("sharefile", "key1.share", data)])
        return client.post(self.keys_path(), body=body, content_type=ctype)

    def forget_key1(self, fingerprint=None, client=None):
        c = client or self.login("ada")
        page = c.get(self.keys_path())
        return c.post(self.keys_path(), {"csrf": page.csrf(), "action": "forget",
                                         "fingerprint": fingerprint or self.key1.fingerprint})

    def decrypt(self, client, ref, headers=None, timeout=60):
        """Press "Decrypt this record" on the record page; returns the Response."""
        page = client.get(self.path("/staff/record/" + ref))
        assert page.status == 200, page.text
        return client.post(self.path("/staff/record/%s/decrypt" % ref), {"csrf": page.csrf()},
                           headers=headers, timeout=timeout)

    def reconcile(self, *args, check=True, cert=None, key=None):
        """`splitvault-admin reconcile` against this stack's daemon, with the
        reconcile role's client certificate (cert/key: another); extra args
        (e.g. "--grace", "900", "--apply"). Returns the CompletedProcess."""
        return self.db.admin("reconcile", "--daemon", "127.0.0.1:%d" % self.daemon.port,
                             "--ca", self.pki.ca_cert,
                             "--cert", cert or self.pki.reconcile_cert,
                             "--key", key or self.pki.reconcile_key, *args, check=check)

    @staticmethod
    def decrypted_values(resp):
        """{field: value} shown on a decrypt page (exact text, unescaped)."""
        out = {}
        for name, v in re.findall(r'<pre class="value" id="value-([A-Za-z0-9_-]+)">\n(.*?)'
                                  r'</pre>', resp.text, re.S):
            out[name] = html.unescape(v)
        return out

    @staticmethod
    def ref_of(resp):
        m = re.search(r'class="ref">([0-9A-Z]{5}-[0-9A-Z]{5})<', resp.text)
        return m.group(1) if m else None

    def stop(self):
        self.httpd.stop()
        self.daemon.stop()

    def teardown(self, check_log=True):
        self.stop()
        bad = self.httpd.error_lines(self.allowed_errors) if check_log else []
        try:
            self.db.drop()
        except Exception:
            pass
        assert not bad, "unexpected errors in httpd's error log:\n" + "\n".join(bad)


def unescape(s):
    return html.unescape(s)


def multipart_body(fields, files=()):
    """A multipart/form-data body as browsers send it: (bytes, content type).
    fields: [(name, text)]; files: [(name, filename, bytes)]."""
    boundary = "----SplitVaultTest" + os.urandom(12).hex()
    out = []
    for name, value in fields:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n"
                    % (boundary, name)).encode() + value.encode("utf-8") + b"\r\n")
    for name, filename, data in files:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n"
                    % (boundary, name, filename)).encode() + data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def main_db(pg):
    db = MainDb.create(pg)
    yield db
    try:
        db.drop()
    except Exception:
        pass


def _daemon_factory(request, pki, pg):
    """A function dir -> started daemon with .port, .stop(), .key2b(share_id)."""
    from . import fixtures_daemon  # noqa: F401 (the daemon engineer's fixtures)
    make = getattr(fixtures_daemon, "start_for_module", None)
    if make is None:
        pytest.skip("splitvaultd fixtures (fixtures_daemon.start_for_module) not available")
    return lambda d, **options: make(d, pki, pg, **options)


@pytest.fixture
def sv_factory(request, pg, pki, workdir):
    stacks = []

    def make(**options):
        d = workdir / ("stack%d" % len(stacks))
        d.mkdir()
        d.chmod(0o755)
        s = Stack(d, pg, pki, _daemon_factory(request, pki, pg), **options)
        stacks.append(s)
        return s

    yield make
    errors = []
    for s in stacks:
        try:
            s.teardown()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture
def sv(sv_factory):
    return sv_factory()


def module_stack(request, pg, pki, prefix, **options):
    """Generator for a module-scoped fixture: one Stack (options as Stack's)
    in a work directory of its own, torn down and removed after the file
    (kept with SV_KEEP=1)."""
    d = make_workdir(prefix)
    s = Stack(d, pg, pki, _daemon_factory(request, pki, pg), **options)
    yield s
    try:
        s.teardown()
    finally:
        if os.environ.get("SV_KEEP") != "1":
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def sv_shared(request, pg, pki):
    yield from module_stack(request, pg, pki, "sv-shared")


# ---------------------------------------------------------------- the demo


# The demo's second admin and the passphrases of its key1 shares.
DEMO_BOB = ("bob-password-000005",)
DEMO_SHARE_PASS = {"ada": "ada's share passphrase", "bob": "bob's share passphrase"}


def run_demo(directory=None, port=None, wait=True):
    """Start the whole system for a person to try (scripts/demo.sh calls
    this): PostgreSQL, splitvaultd (with the guard rails on: a few decrypts
    per staff member, then queueing and lock-down), httpd with the demo form
    on HTTPS, the standard staff accounts and a passphrase-protected key1
    that is registered but not loaded, and split into two admins' shares.
    Prints the story to walk through: submit, load key1 at the key
    location (whole, or under dual control), decrypt as privileged staff,
    trip and lift a lock-down, reconcile. Stops everything on Ctrl-C (or
    returns the started Stack when wait is False)."""
    from . import fixtures_daemon
    d = Path(directory) if directory else make_workdir("splitvault-demo")
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o755)
    pki = core.Pki(d / "pki")
    pg = core.PgCluster(d / "pg").start()
    demo_daemon = dict(rate_global=("10s", 3), rate_actor=("10s", 3), queue_max=3,
                       lockdown_threshold=3, queue_max_wait="30s", min_grace="15m")
    stack = Stack(d / "stack", pg, pki,
                  lambda x, **kw: fixtures_daemon.start_for_module(x, pki, pg, **kw),
                  key1_passphrase="demo key1 passphrase", daemon_options=demo_daemon,
                  db_roles=("splitvault_owner", "splitvault_web",
                            "splitvault_console"),  # as installed
                  directives={"SplitVaultFormTitle": '"Report a concern securely"',
                              "SplitVaultFormIntro": '"This is a demonstration. What you '
                                                     'send is encrypted before it is '
                                                     'stored."',
                              "SplitVaultDecryptWait": "5"})
    # the staff console: a virtual host of its own port (and host name, so
    # that browsers keep its cookies apart), as the console role
    h = stack.httpd
    h.stop()
    if port:
        h.port = port
    console_port = free_port()
    if port:
        try:
            with socket.socket() as sk:
                sk.bind(("127.0.0.1", port + 1))
            console_port = port + 1
        except OSError:
            pass
    console_url = "https://localhost:%d%s" % (console_port, h.path("/staff/console"))
    h.directives["SplitVaultStaffConsoleURL"] = "https://localhost:%d%s" % (
        console_port, h.path("/staff/password"))
    h.extra = "\n".join([
        "Listen 127.0.0.1:%d" % console_port,
        "<VirtualHost 127.0.0.1:%d>" % console_port,
        "  ServerName localhost",
        "  SSLEngine on",
        '  SSLCertificateFile "%s"' % pki.server_cert,
        '  SSLCertificateKeyFile "%s"' % pki.server_key,
        "  DBDriver pgsql",
        '  DBDParams "%s"' % stack.db.console_dsn,
        "  DBDMin 0",
        "  DBDKeep 2",
        "  DBDMax 4",
        "  SplitVaultStaffConsole On",
        "</VirtualHost>"])
    h.write_config()
    h.start()
    stack.console_port = console_port
    stack.console_url = console_url
    # dual control: a second admin, and key1 split 2-of-2 between ada and bob
    stack.db.add_staff("bob", DEMO_BOB[0], ("admin",))
    shares = key1_split(stack.key1, 2, ("ada", "bob"), d / "key1-shares",
                        [DEMO_SHARE_PASS["ada"], DEMO_SHARE_PASS["bob"]])
    ctl = "%s -c %s" % (fixtures_daemon.CTL, stack.daemon.conf_path)
    print("SplitVault demo is running (everything under %s)" % d)
    print("  public form:   %s" % h.url(h.path("/")))
    print("  staff sign-in: %s" % h.url(h.path("/staff/login")))
    print("  key location:  %s" % h.url(h.base + "-keys"))
    print("  staff console: %s" % console_url)
    print("    (its own virtual host, connecting as role %s: admins manage staff"
          % stack.db.console)
    print("    and sessions there, and everyone changes their own password)")
    print("  the browser will not know the demo CA: trust %s or accept the warning" % pki.ca_cert)
    print("  staff accounts (name / password / capabilities):")
    for name, (pw, caps) in STAFF.items():
        print("    %-5s %-20s %s" % (name, pw, ", ".join(caps) or "view only"))
    print("    %-5s %-20s %s" % ("bob", DEMO_BOB[0], "admin"))
    print("  main database %s: httpd connects as role %s (only the module's grants),"
          % (stack.db.name, stack.db.web))
    print("    splitvault-admin as role %s (its owner)" % stack.db.owner)
    print("  key1 file to upload at the key location: %s" % stack.key1.pem)
    print("  key1 passphrase: %s" % stack.key1.passphrase)
    print("The story:")
    print("  1. Submit the public form; keep the reference code.")
    print("  2. Sign in as ada (admin), open the key location and load the key1 file above")
    print("     with its passphrase. It lives in Apache's memory only; the page shows who")
    print("     loaded it and when. (Until then, decryption says the key is not loaded.)")
    print("     Or under dual control, as when the whole key1 file has been destroyed:")
    print("     key1 is also split into 2 shares (splitvault-admin key1-split --k 2 --n 2),")
    print("     one for each admin, each sealed under its holder's own passphrase:")
    for i, who in ((1, "ada"), (2, "bob")):
        print("       share %d for %-3s: %s  passphrase: %s" % (i, who, shares[i],
                                                            DEMO_SHARE_PASS[who]))
    print("     Sign in as ada and give share 1 at the key location: the page shows")
    print("     \"1 of 2 shares, from ada\" and when the shares expire. Then sign in as")
    print("     bob (another browser or a private window) and give share 2: key1 is")
    print("     assembled, checked against its registered public key and loaded; the")
    print("     shares are wiped. (SplitVaultKey1WholeFile Off forbids the whole file.)")
    print("  3. Sign in as pat (privileged staff), open the record, press \"Decrypt this")
    print("     record\": the values are shown once, and every field gets a new key.")
    print("  4. Decrypt several records quickly: after 3 the daemon queues requests, and")
    print("     when too many wait it locks down; staff and the key location say so.")
    print("     Lift it like the daemon's sysadmin: %s unlock" % ctl)
    print("  5. Shares left by interrupted work are cleaned up with:")
    print("     %s -d \"%s\" reconcile --daemon 127.0.0.1:%d --ca %s --cert %s --key %s"
          % (ADMIN, stack.db.dsn, stack.daemon.port, pki.ca_cert, pki.reconcile_cert,
             pki.reconcile_key))
    print("     (a dry run; add --apply to change anything). It uses the reconcile")
    print("     certificate, which in production lives on the admin's machine, never on")
    print("     the web host: the web server's own certificate cannot list or retire")
    print("     shares. Retired shares stay restorable for a week: %s retired" % ctl)
    if not wait:
        stack.pg_cluster = pg
        return stack
    try:
        while stack.httpd.proc.alive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        pg.stop()
    return None
