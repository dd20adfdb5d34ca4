"""splitvaultd network edge: TLS 1.3 only, client certificate required and
verified, pinning, address allow-list before the handshake, timeouts, the
connection cap, persistent connections."""
import socket
import ssl
import time

import pytest

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


def audit(d):
    return d.audit_path.read_text()


def test_right_client_accepted(daemon):
    with daemon.client() as c:
        assert c.status()["locked"] == 0
        assert c.sock.version() == "TLSv1.3"


def test_no_client_certificate_refused(daemon, pki):
    assert handshake_refused(daemon, cert=None)
    time.sleep(0.2)
    assert "why=tls-no-client-certificate" in audit(daemon)
    with daemon.client() as c:  # still serving
        c.status()


def test_other_ca_refused(daemon, pki):
    assert handshake_refused(daemon, cert=pki.other_client_cert, key=pki.other_client_key)
    time.sleep(0.2)
    assert "why=tls-certificate-not-trusted" in audit(daemon)


def test_pinning(daemon_factory, pki):
    other_cert, other_key = pki.issue_client("splitvault-web-2")
    d = daemon_factory(pins=[pki.client_cert])
    with d.client() as c:
        c.status()
    # same CA, not pinned
    assert handshake_refused(d, cert=other_cert, key=other_key)
    time.sleep(0.2)
    assert "why=tls-certificate-not-pinned" in audit(d)
    assert "certificate-not-pinned" in d.log_text()


def test_tls12_client_refused(daemon):
    assert handshake_refused(daemon, tls_version=ssl.TLSVersion.TLSv1_2)


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
    time.sleep(0.2)
    assert "why=address-not-allowed peer=127.0.0.1" in audit(d)
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


def test_connection_cap(daemon_factory):
    d = daemon_factory(max_connections=2)
    a, b = d.client(), d.client()
    a.status()
    b.status()
    assert handshake_refused(d)
    a.close()
    time.sleep(0.3)
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
