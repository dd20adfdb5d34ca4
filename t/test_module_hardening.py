"""What an httpd child running mod_splitvault withstands and keeps to itself:
request bodies take memory for what arrives, not for what a visitor
announces; children cannot dump core (even with CoreDumpDirectory), unless
SplitVaultAllowCoreDumps says so."""
import os
import socket
import ssl
import time

import pytest

from svtest.core import server_connections, wait_until
from svtest.data import GOOD
from svtest.fakedaemon import FakeDaemon

WWW_DATA = 33


def children(httpd):
    """PIDs of the httpd children (the parent runs in the foreground)."""
    return sorted(httpd.children())


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def tls_conn(sv):
    ctx = ssl.create_default_context(cafile=str(sv.pki.ca_cert))
    s = socket.create_connection(("127.0.0.1", sv.httpd.port), timeout=20)
    return ctx.wrap_socket(s, server_hostname="localhost")


def test_body_memory_follows_what_arrives(sv_factory):
    """Visitors who announce the largest body allowed and then send one byte
    make the child allocate next to nothing: memory is taken for what
    arrives, and TLS and intake keep working meanwhile."""
    sv = sv_factory(threads=16, server_limit=1,
                    directives={"SplitVaultMaxBody": "4194304"})
    assert sv.ref_of(sv.submit(GOOD))
    (child,) = children(sv.httpd)
    before = rss_kib(child)
    held = []
    try:
        for _ in range(12):
            s = tls_conn(sv)
            s.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                       "application/x-www-form-urlencoded\r\nContent-Length: 4194304\r\n\r\nn"
                       % sv.path("/")).encode())
            held.append(s)
        # httpd has taken every one of them and read all that arrived (the
        # headers and the body's first byte): they are in the handler,
        # waiting for the rest of the body
        wait_until(lambda: len([c for c in server_connections(sv.httpd.port)
                                if c[2] and c[1] == 0 and c[0] == "ESTABLISHED"]) == 12,
                   10, "httpd did not read the 12 requests")
        grown = rss_kib(child) - before
        # 12 x 4 MiB would be 48 MiB; what arrived is 12 bytes
        assert grown < 12 * 1024, "the child grew by %d KiB" % grown
        # new TLS connections and submissions still work meanwhile
        tls_conn(sv).close()
        assert sv.ref_of(sv.submit(GOOD))
    finally:
        for s in held:
            s.close()
    wait_until(lambda: not server_connections(sv.httpd.port), 10,
               "httpd did not close the abandoned requests")
    assert sv.ref_of(sv.submit(GOOD))
    assert sv.db.count("records") == 3


def owner(pid):
    """uid owning /proc/PID: root when the process is not dumpable."""
    return os.stat("/proc/%d/status" % pid).st_uid


def test_children_cannot_dump_core_even_with_core_dump_directory(sv_factory):
    """httpd makes its children dumpable again when CoreDumpDirectory is
    set; the module runs after that and wins."""
    sv = sv_factory(extra="CoreDumpDirectory %s" % "/tmp")
    sv.submit(GOOD)
    kids = children(sv.httpd)
    assert kids
    for pid in kids:
        assert owner(pid) == 0, "child %d is dumpable" % pid
    assert "SV01006" not in sv.httpd.log_text()


@pytest.mark.log_allows(r"SV01006")
def test_allow_core_dumps_for_debugging(sv_factory):
    sv = sv_factory(extra="CoreDumpDirectory /tmp",
                    directives={"SplitVaultAllowCoreDumps": "On"})
    sv.submit(GOOD)
    kids = children(sv.httpd)
    assert kids and all(owner(pid) == WWW_DATA for pid in kids)
    assert "SV01006: SplitVaultAllowCoreDumps On" in sv.httpd.log_text()


def test_allow_core_dumps_is_server_wide_only(workdir, pki):
    import types
    from svtest.fixtures_httpd import Httpd
    db = types.SimpleNamespace(dsn="host=127.0.0.1 port=1 dbname=none user=postgres")
    h = Httpd(workdir / "vh", db, pki, 1,
              extra="<VirtualHost 127.0.0.1:1>\nSplitVaultAllowCoreDumps On\n</VirtualHost>")
    p = h.check()
    assert p.returncode != 0 and "SplitVaultAllowCoreDumps" in p.stderr, p.stderr


DAEMON_DOWN = [r"SV01701", r"SV01702", r"SV01703", r"SV01706"]


def test_slow_daemon_connects_do_not_queue_behind_each_other(sv_factory):
    """Connections to the daemon are made outside the pool's lock: three
    submissions whose daemon never completes a handshake each wait their own
    SplitVaultDaemonTimeout, side by side, not one after another."""
    import threading
    fake = FakeDaemon("stall")
    try:
        sv = sv_factory(server_limit=1, threads=8,
                        directives={"SplitVaultDaemon": "127.0.0.1:%d" % fake.port,
                                    "SplitVaultDaemonTimeout": "2"})
        sv.allowed_errors += DAEMON_DOWN
        took = [None] * 3

        def submit(i):
            t0 = time.monotonic()
            r = sv.submit(GOOD)
            took[i] = (time.monotonic() - t0, r.status)

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert all(status == 503 for _, status in took), took
        assert max(t for t, _ in took) < 3.5, took   # one after another: 2, 4, 6 s
        assert fake.accepted >= 3
        assert sv.db.count("records") == 0
    finally:
        fake.close()


def test_daemon_handshake_has_one_deadline(sv_factory):
    """A daemon that keeps the handshake alive with a byte now and then
    gets no more than SplitVaultDaemonTimeout for the whole of it."""
    fake = FakeDaemon("dribble")
    try:
        sv = sv_factory(directives={"SplitVaultDaemon": "127.0.0.1:%d" % fake.port,
                                    "SplitVaultDaemonTimeout": "2"})
        sv.allowed_errors += DAEMON_DOWN
        t0 = time.monotonic()
        r = sv.submit(GOOD)
        took = time.monotonic() - t0
        assert r.status == 503 and "NOT stored" in r.text
        assert 1.5 < took < 4, took
        assert "SV01702" in sv.httpd.log_text() and "timed out" in sv.httpd.log_text()
    finally:
        fake.close()


def test_daemon_answer_has_one_deadline(sv_factory, pki):
    """A daemon that completes the handshake and then answers a byte now
    and then gets no more than SplitVaultDaemonTimeout for the whole
    exchange: a byte that arrives does not start the wait again."""
    fake = FakeDaemon("answer", pki)
    try:
        sv = sv_factory(directives={"SplitVaultDaemon": "127.0.0.1:%d" % fake.port,
                                    "SplitVaultDaemonTimeout": "2"})
        sv.allowed_errors += DAEMON_DOWN + [r"SV01711"]
        t0 = time.monotonic()
        r = sv.submit(GOOD)
        took = time.monotonic() - t0
        assert fake.requests >= 1           # the handshake was done, STORE sent
        assert r.status == 503 and "NOT stored" in r.text
        assert took < 8, took               # a byte each 0.4 s would go on for ever
        assert "SV01711" in sv.httpd.log_text()
        assert sv.db.count("records") == 0
    finally:
        fake.close()
