"""splitvaultd configuration: `splitvaultd -t -c FILE` accepts the example
config and refuses unknown keys, wrong types, out-of-range values, missing
required keys and contradictions, naming file, line and key."""
import fcntl
import re
import struct
import termios

import pytest

from svtest.core import SRC, run, wait_until
from svtest.fixtures_daemon import DAEMON, CTL, Daemon


@pytest.fixture
def cfg(pki, workdir):
    return Daemon(workdir / "d", pki)


def check_text(d, text):
    d.write_config(text)
    return d.check()


def test_version():
    p = run([DAEMON, "--version"])
    assert p.stdout.startswith("splitvaultd ") and "OpenSSL" in p.stdout


def test_generated_config_ok(cfg):
    p = cfg.check()
    assert p.returncode == 0, p.stderr
    assert "OK" in p.stdout


def test_example_config_parses(cfg, pki, workdir):
    """conf/splitvaultd.yaml, with its paths pointed at test files."""
    text = (SRC / "conf" / "splitvaultd.yaml").read_text()
    for key, val in (("certificate", pki.server_cert), ("key", pki.server_key),
                     ("client_ca", pki.ca_cert)):
        text = re.sub(r"(?m)^(\s+%s:).*$" % key, r"\g<1> %s" % val, text)
    text = re.sub(r"(?m)^(\s+user:).*$", r"\1 nobody", text)
    # the audit log where the test can make it (a directory of root's)
    text = text.replace("/var/log/splitvault/audit.log", str(cfg.audit_path))
    text = text.replace("/run/splitvault/splitvaultd.sock", str(cfg.sock_path))
    p = check_text(cfg, text)
    assert p.returncode == 0, p.stderr


BAD = [
    # (what to change, expected key, expected fragment)
    ({"listen": {"prot": 1}}, "listen.prot", "unknown key"),
    ({"bogus": {"a": 1}}, "bogus", "unknown key"),
    ({"listen": {"port": "x"}}, "listen.port", "expected an unsigned integer"),
    ({"listen": {"port": 70000}}, "listen.port", "out of range"),
    ({"listen": {"port": 0}}, "listen.port", "out of range"),
    ({"decrypt": {"global_rate": {"interval": "15"}}}, "decrypt.global_rate.interval",
     "expected a duration"),
    ({"decrypt": {"global_rate": {"burst": 0}}}, "decrypt.global_rate.burst", "out of range"),
    ({"decrypt": {"queue": {"max_length": 2}, "lockdown_threshold": 3}},
     "decrypt.lockdown_threshold", "above decrypt.queue.max_length"),
    ({"tls": {"pinned_clients": ["abcd"]}}, "tls.pinned_clients", "no longer supported"),
    ({"clients": {"frontend": ["abcd"]}}, "clients.frontend", "SHA-256 fingerprint"),
    ({"clients": {"frontend": None, "reconcile": None, "monitor": None}}, "clients.frontend",
     "no client certificate is listed"),
    ({"clients": {"monitor": ["ab" * 32], "reconcile": ["ab" * 32]}}, "clients",
     "listed with two roles"),
    ({"reconcile": {"min_grace": "10m"}}, "reconcile.min_grace", "below 900s"),
    ({"store": {"min_free": "a lot"}}, "store.min_free", "expected a size"),
    ({"retention": {"period": "1w"}}, "retention.period", "expected a duration"),
    ({"clients": {"allow": ["10.0.0.0/33"]}}, "clients.allow", "CIDR"),
    ({"clients": {"allow": []}}, "clients.allow", "empty allow-list"),
    ({"store": {"driver": "mysql"}}, "store.driver", "sqlite3 or pgsql"),
    ({"store": {"driver": "pgsql"}}, "store.params", "required with driver pgsql"),
    ({"process": {"mlock": "yes"}}, "process.mlock", "true or false"),
    ({"process": {"secure_heap": "3MiB"}}, "process.secure_heap", "power of two"),
    ({"process": {"log_level": "loud"}}, "process.log_level", "expected error"),
    ({"connections": {"max": 0}}, "connections.max", "out of range"),
    ({"reconcile": {"min_grace": "1500ms"}}, "reconcile.min_grace", "whole number"),
    ({"audit": None}, "audit.path", "required key missing"),
    ({"tls": {"certificate": {"a": 1}}}, "tls.certificate", "expected a single value"),
]


@pytest.mark.parametrize("change,key,frag", BAD, ids=[b[1] + ":" + b[2][:12] for b in BAD])
def test_bad_values_name_file_line_key(pki, workdir, change, key, frag):
    d = Daemon(workdir / "d", pki, extra=change)
    p = d.check()
    assert p.returncode == 1, p.stdout
    msg = p.stderr.strip()
    m = re.match(r"splitvaultd: (.+?):(\d+): (\S+): (.*)", msg)
    assert m, msg
    assert m.group(1) == str(d.conf_path) and m.group(3) == key and frag in m.group(4), msg
    line = int(m.group(2))
    text = d.conf_path.read_text().splitlines()
    if ("missing" not in frag and "above" not in frag and "required with" not in frag
            and "no client" not in frag and "below" not in frag):
        # the key's own line, or the offending entry of a list
        assert key.split(".")[-1] in text[line - 1] or text[line - 1].strip().startswith("- "), \
            (line, text[line - 1])


def test_duplicate_key_and_syntax_error(cfg):
    text = cfg.conf_path.read_text()
    p = check_text(cfg, text + "listen:\n  port: 1\n")
    assert p.returncode == 1 and "listen: duplicate key" in p.stderr
    p = check_text(cfg, text + "listen: [unclosed\n")
    assert p.returncode == 1 and "YAML syntax error" in p.stderr
    p = check_text(cfg, "- a list\n")
    assert p.returncode == 1 and "top level must be a mapping" in p.stderr


def test_unreadable_tls_files_refused(pki, workdir):
    d = Daemon(workdir / "d", pki, extra={"tls": {"key": str(workdir / "nope.key")}})
    p = d.check()
    assert p.returncode == 1 and "tls.key" in p.stderr
    d = Daemon(workdir / "e", pki, extra={"tls": {"key": str(pki.client_key)}})
    p = d.check()
    assert p.returncode == 1 and "tls.key" in p.stderr and "mismatch" in p.stderr


def test_user_root_refused(pki, workdir):
    d = Daemon(workdir / "d", pki, extra={"process": {"user": "root"}})
    p = d.check()
    assert p.returncode == 1 and "process.user: must not be root" in p.stderr


def test_usage_errors():
    assert run([DAEMON], check=False).returncode == 2
    assert run([DAEMON, "-x"], check=False).returncode == 2
    assert run([CTL, "frobnicate"], check=False).returncode == 2


ACTORS_WARNING = "warning: decrypt.daily_budget.global"


@pytest.mark.parametrize("budget,warned", [((0, 5), True), ((11, 5), True), ((10, 5), False),
                                           ((0, 0), False), ((11, 0), False)])
def test_actor_budget_without_a_global_bound_is_warned(pki, workdir, budget, warned):
    """With the per-actor daily budget on, an actor that decrypts keeps its
    place among decrypt.max_actors for 24 hours: -t warns, and accepts,
    when the global budget (0: none) does not keep them within it."""
    d = Daemon(workdir / "d", pki, budget=budget, extra={"decrypt": {"max_actors": 10}})
    p = d.check()
    assert p.returncode == 0 and "OK" in p.stdout, p.stderr
    assert (ACTORS_WARNING in p.stdout) == warned, p.stdout
    if warned:
        assert "is 0 (none)" in p.stdout if budget[0] == 0 else \
            "(11) is above decrypt.max_actors (10)" in p.stdout


@pytest.mark.log_allows(r"decrypt\.daily_budget\.global is \d+ \(none\) while")
def test_actor_budget_without_a_global_bound_is_logged_at_start(daemon_factory):
    d = daemon_factory(budget=(0, 5), extra={"decrypt": {"max_actors": 10}})
    assert "decrypt.daily_budget.global is 0 (none) while decrypt.daily_budget.actor is on" \
        in d.log_text()


def send_and_see_read(conn, data):
    """Send data on a Unix stream socket and return once the peer has read
    all of it (nothing left in the socket's send queue), so that what is
    sent next reaches the peer in a read of its own."""
    conn.sendall(data)

    def unread():
        return struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    wait_until(lambda: unread() == 0, 10, "the peer did not read what was sent", interval=0.01)


def test_ctl_reads_an_answer_split_over_reads(workdir):
    """splitvaultctl judges the answer by its first bytes even when they
    arrive in several reads ("o", then "k\\n...")."""
    import socket
    import threading
    path = str(workdir / "fake.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def answer():
        conn, _ = srv.accept()
        conn.recv(64)
        send_and_see_read(conn, b"o")
        conn.sendall(b"k\nlocked=0\n")
        conn.close()

    t = threading.Thread(target=answer)
    t.start()
    p = run([CTL, "-s", path, "status"], check=False)
    t.join(10)
    srv.close()
    assert p.returncode == 0 and p.stdout == "ok\nlocked=0\n", (p.returncode, p.stdout)


def test_ctl_retired_listing_split_after_a_newline(workdir):
    """`retired` needs its count= trailer; found whatever reads the answer
    comes in, also when a read ends right after a newline; an answer
    without it is incomplete (exit 1)."""
    import socket
    import threading
    path = str(workdir / "fake2.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(2)

    def answer(parts):
        conn, _ = srv.accept()
        conn.recv(64)
        for part in parts:
            send_and_see_read(conn, part)
        conn.close()

    for parts, rc in (([b"ok\nshare id=1\n", b"count=1\n"], 0),
                      ([b"ok\nshare id=1\n", b"error=store unavailable\n"], 1)):
        t = threading.Thread(target=answer, args=(parts,))
        t.start()
        p = run([CTL, "-s", path, "retired"], check=False)
        t.join(10)
        assert p.returncode == rc, (parts, p.returncode, p.stdout, p.stderr)
    srv.close()
