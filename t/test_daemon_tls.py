"""splitvaultd network edge: TLS 1.3 only, client certificate required and
verified, pinning, address allow-list before the handshake, timeouts, the
connection cap, persistent connections."""
import re
import select
import socket
import ssl
import time

import pytest

from svtest.core import server_connections, wait_server_idle, wait_until
from svtest.fixtures_daemon import Client, Record


def handshake_refused(d, **kw):
    """True when the daemon refuses: the handshake fails, or (TLS 1.3: the
    client certificate is checked after the client's Finished) the first
    exchange fails."""
    try:
        c = d.client(**kw)
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    try:
        c.status()
    except (ssl.SSLError, ConnectionError, OSError, ValueError):
        return True
    finally:
        c.close()
    return False


def test_right_client_accepted(daemon):
    with daemon.client() as c:
        assert c.status()["locked"] == 0
        assert c.sock.version() == "TLSv1.3"


@pytest.mark.log_allows(r"TLS handshake refused: no-client-certificate")
def test_no_client_certificate_refused(daemon, pki):
    assert handshake_refused(daemon, cert=None)
    why = "why=tls-no-client-certificate"
    assert why in daemon.wait_audit(why)
    with daemon.client() as c:  # still serving
        c.status()


@pytest.mark.log_allows(r"TLS handshake refused: certificate-not-trusted")
def test_other_ca_refused(daemon, pki):
    assert handshake_refused(daemon, cert=pki.other_client_cert, key=pki.other_client_key)
    why = "why=tls-certificate-not-trusted"
    assert why in daemon.wait_audit(why)


@pytest.mark.log_allows(
    r"TLS handshake refused: certificate-not-listed",
    r"\d+ more refusals \(tls-certificate-not-listed\) from [\d.]+ in the last",
)
def test_unlisted_certificate_refused(daemon_factory, pki):
    """A certificate the CA issued but no role lists gets no connection."""
    other_cert, other_key = pki.issue_client("splitvault-web-2")
    d = daemon_factory(roles={"frontend": [pki.client_cert]})
    with d.client() as c:
        c.status()
    # same CA, listed under no role
    assert handshake_refused(d, cert=other_cert, key=other_key)
    why = "why=tls-certificate-not-listed"
    assert why in d.wait_audit(why)
    assert "certificate-not-listed" in d.log_text()
    # the reconcile certificate of the PKI is not listed here either
    assert handshake_refused(d, cert=pki.reconcile_cert, key=pki.reconcile_key)


@pytest.mark.log_allows(r"TLS handshake refused: no-client-certificate")
def test_tls12_client_refused(daemon):
    assert handshake_refused(daemon, tls_version=ssl.TLSVersion.TLSv1_2)


@pytest.mark.log_allows(
    r"\d+ more refusals \(address-not-allowed\) from [\d.]+ in the last \d+ s",
    r"address not in clients\.allow; closed before TLS \(more from it are",
)
def test_address_not_allowed_closed_before_tls(daemon_factory):
    d = daemon_factory(allow=["127.0.0.2/32"])
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        # the daemon closes at once, without sending a single TLS byte
        assert s.recv(1) == b""
    except ConnectionResetError:
        pass
    finally:
        s.close()
    assert handshake_refused(d)
    why = "why=address-not-allowed peer=127.0.0.1"
    assert why in d.wait_audit(why)
    # from an allowed source address it works
    with d.client(source="127.0.0.2") as c:
        c.status()


def test_handshake_timeout(daemon_factory):
    d = daemon_factory(timeouts={"handshake_timeout": "300ms"})
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    t0 = time.monotonic()
    try:
        assert s.recv(1) == b""
    except ConnectionResetError:
        pass
    assert time.monotonic() - t0 < 3
    s.close()


def test_idle_timeout_closes_then_new_connection_works(daemon_factory):
    d = daemon_factory(timeouts={"idle_timeout": "300ms"})
    c = d.client()
    c.status()
    assert c.closed_by_peer(timeout=3)
    c.close()
    with d.client() as c2:
        c2.status()


@pytest.mark.log_allows(r"connections\.max reached; closed before TLS \(more are summarised\)")
def test_connection_cap(daemon_factory):
    d = daemon_factory(max_connections=2)
    # (with 2 connections, 1 may be in its handshake: each client connects
    # once the one before, and the start-up probe, are through)
    wait_server_idle(d.port, what="the start-up probe's connection is still open")
    a = d.client()
    a.status()
    b = d.client()
    b.status()
    assert handshake_refused(d)
    a.close()
    wait_until(lambda: len(server_connections(d.port)) <= 1, 10,
               "the daemon did not close the connection the client closed")
    with d.client() as c:
        c.status()
    b.close()


def test_persistent_connection_many_requests(daemon):
    with daemon.client() as c:
        for _ in range(200):
            c.status()
        r = Record({"a": "b"})
        ids = c.store(r.uuid, r.store_fields())
        assert ids


def client_hello():
    """A real TLS 1.3 ClientHello, to dribble byte by byte."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def closed_now(s):
    """True when the daemon has closed s (without waiting)."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


@pytest.mark.log_allows(
    r"TLS handshake refused: handshake-timeout \(not finished within",
    r"connections\.max_handshakes_per_address reached; closed before TLS \(more",
)
def test_dribbled_handshake_cut_at_the_deadline(daemon_factory):
    """The handshake timeout is a deadline for the whole handshake: a peer
    sending its ClientHello a byte every 300 ms (each read well within the
    timeout) is cut off after 1 s all the same, and while it dribbles it
    holds one handshake slot of its address, not the daemon's connections."""
    d = daemon_factory(timeouts={"handshake_timeout": "1s"}, max_connections=4,
                       extra={"connections": {"max_handshakes": 2,
                                              "max_handshakes_per_address": 1}})
    hello = client_hello()
    wait_server_idle(d.port, what="the start-up probe's connection is still open")
    slow = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    t0 = time.monotonic()
    slow.send(hello[:1])
    # the daemon has taken it and read its first byte: it is in its handshake
    wait_until(lambda: server_connections(d.port) == [("ESTABLISHED", 0, True)], 0.5,
               "the daemon did not start the dribbled handshake", interval=0.01)
    # a second handshake from the same address: over its per-address cap
    other = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        assert other.recv(1) == b""
    except ConnectionResetError:
        pass
    other.close()
    assert time.monotonic() - t0 < 0.9
    # another address still gets through at once, and so does a second
    # connection of an authenticated client once its handshake is done
    with d.client(source="127.0.0.2") as c:
        c.status()
    i, cut = 1, None
    while time.monotonic() - t0 < 6 and i < len(hello):
        if closed_now(slow):
            cut = time.monotonic() - t0
            break
        try:
            slow.send(hello[i:i + 1])
        except OSError:
            cut = time.monotonic() - t0
            break
        i += 1
        select.select([slow], [], [], 0.3)  # the next byte in 300 ms, or the cut
    slow.close()
    assert cut is not None and 0.9 < cut < 2.5, cut
    assert "handshake-timeout" in d.log_text()
    with d.client() as c:
        c.status()


@pytest.mark.log_allows(r"connections\.max_handshakes reached; closed before TLS \(more are")
def test_handshakes_cannot_take_every_slot(daemon_factory):
    """Connections still in their handshake take at most
    connections.max_handshakes slots: the rest stays for authenticated
    clients."""
    d = daemon_factory(max_connections=3,
                       extra={"connections": {"max_handshakes": 2,
                                              "max_handshakes_per_address": 2}})
    wait_server_idle(d.port, what="the start-up probe's connection is still open")
    silent = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(2)]
    accepted = lambda n: len([c for c in server_connections(d.port) if c[2]]) == n  # noqa: E731
    wait_until(lambda: accepted(2), 10, "the daemon did not take both handshakes")
    third = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        assert third.recv(1) == b""  # over max_handshakes: closed at once
    except ConnectionResetError:
        pass
    third.close()
    for s in silent:
        s.close()
    wait_server_idle(d.port, what="the daemon did not close the silent connections")
    a = d.client()
    a.status()
    # an authenticated client holds its slot; two more handshakes fit
    refusals = int(d.ctl_status()["refusals"])
    silent = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(2)]
    wait_until(lambda: accepted(3), 10, "the daemon did not take the two handshakes")
    assert not any(closed_now(s) for s in silent)
    assert int(d.ctl_status()["refusals"]) == refusals
    for s in silent:
        s.close()
    a.close()


def still_open(c, timeout):
    """True when nothing arrives on c within timeout and it is not closed."""
    c.sock.settimeout(timeout)
    try:
        return c.sock.recv(1) != b""
    except socket.timeout:
        return True
    except (ConnectionError, ssl.SSLError, OSError):
        return False


@pytest.mark.log_allows(
    r"DECRYPT body not received in time \(connections\.io_timeout\) or cut short;",
)
def test_dribbled_request_cut_at_the_io_deadline(daemon_factory):
    """connections.io_timeout bounds a whole request from its first byte,
    not each read: a body dribbled a byte every 300 ms is cut after 1 s."""
    d = daemon_factory(timeouts={"io_timeout": "1s"})
    with d.client() as c:
        # a DECRYPT header announcing a 1000-byte body, then one byte at a time
        c.send_raw(b"SV\x01\x02" + (1).to_bytes(4, "big") + (1000).to_bytes(4, "big"))
        t0 = time.monotonic()
        cut = None
        for _ in range(20):
            if not still_open(c, 0.3):
                cut = time.monotonic() - t0
                break
            try:
                c.send_raw(b"\x00")
            except OSError:
                cut = time.monotonic() - t0
                break
        assert cut is not None and 0.9 < cut < 2.5, cut
    assert "not received in time" in d.log_text()
    with d.client() as c:
        c.status()


@pytest.mark.log_allows(
    r"\d+ more refusals \(address-not-allowed\) from [\d.]+ in the last \d+ s",
    r"address not in clients\.allow; closed before TLS \(more from it are",
)
def test_refusals_summarised(daemon_factory):
    """Whoever can reach the port cannot flood the audit log (each entry is
    fsynced) or the log: the first refusal of a kind from an address is
    written at once, the others as one entry per period with a count, and
    a quiet period forgets the address."""
    d = daemon_factory(allow=["127.0.0.2/32"], extra={"audit": {"refusal_period": "2s"}})
    wait_server_idle(d.port, what="the start-up probe's connection is still open")
    r0 = int(d.ctl_status()["refusals"])  # the start-up probe's connection
    for _ in range(100):
        socket.create_connection(("127.0.0.1", d.port), timeout=5).close()
    d.wait_audit("event=refusal")
    first = [l for l in d.audit_path.read_text().splitlines() if "event=refusal" in l]
    assert len(first) <= 2 and "why=address-not-allowed peer=127.0.0.1" in first[0]

    def refusals_of(peer):
        return [l for l in d.audit_path.read_text().splitlines()
                if "event=refusal why=address-not-allowed peer=%s " % peer in l
                or l.endswith("event=refusal why=address-not-allowed peer=%s" % peer)]

    def all_counted():
        lines = refusals_of("127.0.0.1")
        counted = sum(int(re.search(r" count=(\d+)", l).group(1)) for l in lines
                      if "count=" in l)
        return len([l for l in lines if "count=" not in l]) + counted == r0 + 100 and lines

    lines = wait_until(all_counted, 10, "the refusals were not all summarised")
    assert len([l for l in lines if "count=" not in l]) == 1 and len(lines) <= 4, lines
    assert len([l for l in d.log_text().splitlines() if "127.0.0.1" in l]) <= 4
    assert int(d.ctl_status()["refusals"]) == r0 + 100
    # after a quiet period (a whole period without a refusal from it) the
    # address is written at once again. The end of that period shows: two
    # refusals from another address, made now, are summarised at its end.
    for _ in range(2):
        socket.create_connection(("127.0.0.1", d.port), timeout=5,
                                 source_address=("127.0.0.3", 0)).close()
    wait_until(lambda: [l for l in refusals_of("127.0.0.3") if " count=1 " in l], 10,
               "the period did not end")
    assert len(refusals_of("127.0.0.1")) == len(lines)  # quiet meanwhile
    socket.create_connection(("127.0.0.1", d.port), timeout=5).close()
    wait_until(lambda: len([l for l in refusals_of("127.0.0.1") if "count=" not in l]) >= 2,
               10, "the refusal after the quiet period was not written")
    assert len([l for l in refusals_of("127.0.0.1") if "count=" not in l]) == 2
