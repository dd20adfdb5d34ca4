"""The anonymous intake throttle (SplitVaultIntakeThrottle): so many POSTs
of the public form per client network and window, counted in shared memory
by every child; the next one gets 429 with Retry-After and nothing reaches
the daemon or the database. The client is who mod_remoteip says it is
(here: X-Forwarded-For from a trusted proxy on 127.0.0.1)."""
import re
import socket
import ssl
import time
import urllib.parse

import pytest

from svtest.core import wait_until
from svtest.data import GOOD, REMOTEIP

THROTTLED = r"SV02207: intake throttled for "


def post_from(sv, addr, values=GOOD):
    return sv.client().post(sv.path("/"), values, headers={"X-Forwarded-For": addr})


def stored(sv):
    """(records, fields, shares on the daemon)"""
    return sv.db.count("records"), sv.db.count("fields"), len(sv.daemon.shares())


def throttled_lines(sv, net):
    return [l for l in sv.httpd.log_text().splitlines()
            if re.search(THROTTLED + re.escape(net) + ":", l)]


@pytest.mark.log_allows(r"SV02207")
def test_over_the_limit_is_429_and_stores_nothing(sv_factory):
    window = 6
    sv = sv_factory(extra=REMOTEIP, directives={"SplitVaultIntakeThrottle": "3 %d" % window})
    a = "192.0.2.10"
    for _ in range(5):  # looking at the form is free
        assert sv.client().get(sv.path("/"), headers={"X-Forwarded-For": a}).status == 200
    t0 = time.monotonic()
    for _ in range(3):
        r = post_from(sv, a)
        assert r.status == 200 and sv.ref_of(r), r.text
    assert stored(sv) == (3, 9, 9)

    secret = {"name": "Secret Name Visitor", "ssn": "999-88-7777", "notes": "secret notes"}
    r = post_from(sv, a, secret)
    assert r.status == 429, r.text
    retry = int(r.header("Retry-After"))
    assert 1 <= retry <= window, retry
    assert "Too many submissions" in r.text and "NOT stored" in r.text
    assert "send it again in %d seconds" % retry in r.text, r.text
    for v in secret.values():
        assert v not in r.text
    assert sv.ref_of(r) is None
    assert (r.header("Connection") or "").lower() == "close"  # the body was never read
    assert stored(sv) == (3, 9, 9)
    for _ in range(3):
        assert post_from(sv, a).status == 429
    assert stored(sv) == (3, 9, 9)
    lines = throttled_lines(sv, a)
    assert len(lines) == 1 and "[splitvault:warn]" in lines[0], lines  # once per window

    # another address is not affected
    assert post_from(sv, "192.0.2.11").status == 200
    # an IPv6 address counts by its /64
    for host in ("2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:ffff:ffff:ffff:ffff"):
        assert post_from(sv, host).status == 200
    assert post_from(sv, "2001:db8:5:6::abcd").status == 429
    assert post_from(sv, "2001:db8:5:7::1").status == 200
    assert len(throttled_lines(sv, "2001:db8:5:6::/64")) == 1
    assert stored(sv)[0] == 3 + 1 + 3 + 1

    def accepted():
        r = post_from(sv, a)
        assert r.status in (200, 429), r.status
        return r if r.status == 200 else None
    # once the window has passed, the first address may submit again
    r = wait_until(accepted, window + 20, "still throttled after the window", interval=0.2)
    assert time.monotonic() - t0 >= window - 0.5
    assert sv.ref_of(r)
    assert len(throttled_lines(sv, a)) == 1


@pytest.mark.log_allows(r"SV02207")
def test_only_posts_of_the_form_count(sv_factory):
    """With a limit of one: sign-in POSTs and staff pages do not count;
    a refused (400) submission does, since it is counted before its body is
    read."""
    sv = sv_factory(directives={"SplitVaultIntakeThrottle": "2 600"})
    uma = sv.login("uma")
    assert uma.last.status == 303
    assert sv.login("uma", "wrong-password-xyz").last.status == 200
    assert uma.get(sv.path("/staff/")).status == 200
    assert sv.client().post(sv.path("/"), {"name": "only a name"}).status == 400
    assert sv.submit(GOOD).status == 200
    assert sv.submit(GOOD).status == 429
    assert sv.db.count("records") == 1


@pytest.mark.log_allows(r"SV02207")
def test_a_burst_gets_no_more_than_the_limit(sv_factory):
    sv = sv_factory(directives={"SplitVaultIntakeThrottle": "5 600"}, threads=16, dbd_max=16)
    statuses = sv.submit_at_once(GOOD, 15)
    assert sorted(statuses) == [200] * 5 + [429] * 10, statuses
    assert stored(sv) == (5, 15, 15)
    assert len(throttled_lines(sv, "127.0.0.1")) == 1


@pytest.mark.log_allows(r"SV02207")
def test_counts_are_shared_by_the_children(sv_factory):
    """Two prefork children (one connection each; only an idle one
    accepts): a submission held in one of them (its headers sent, with
    Expect: 100-continue; the "100 Continue" shows it passed the throttle
    and waits for its body) counts for the other, which then serves the
    rest; the access log's %P shows two processes."""
    sv = sv_factory(extra=REMOTEIP + 'StartServers 2\nLogFormat "%P %>s %m" svpid\n'
                                     'CustomLog "logs/pids.log" svpid\n',
                    mpm="prefork", server_limit=2,
                    directives={"SplitVaultIntakeThrottle": "3 600"})
    # both children busy at once is the point here, which the MPM reports
    sv.allowed_errors.append(r"server reached MaxRequestWorkers setting")
    addr = "198.51.100.7"
    body = urllib.parse.urlencode(GOOD).encode()
    ctx = ssl.create_default_context(cafile=str(sv.pki.ca_cert))
    held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", sv.httpd.port), timeout=30),
                           server_hostname="localhost")
    try:
        held.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: %s\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n"
                      "Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
                      % (sv.path("/"), addr, len(body))).encode())
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = held.recv(1024)
            assert chunk, got
            got += chunk
        assert got.startswith(b"HTTP/1.1 100 Continue"), got
        # the held child's only thread is busy: the other child serves these
        assert post_from(sv, addr).status == 200
        assert post_from(sv, addr).status == 200
        assert post_from(sv, addr).status == 429
        held.sendall(body)
        answer = b""
        while True:
            chunk = held.recv(65536)
            if not chunk:
                break
            answer += chunk
    finally:
        held.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"your submission is stored" in answer
    assert sv.db.count("records") == 3
    posts = [l.split() for l in (sv.httpd.dir / "logs" / "pids.log").read_text().splitlines()
             if l.endswith(" POST")]
    held_pid = posts[-1][0]  # the held one ended last
    others = {p for p, _, _ in posts[:-1]}
    assert [s for _, s, _ in posts] == ["200", "200", "429", "200"], posts
    assert held_pid not in others, posts


@pytest.mark.log_allows(r"SV02207")
def test_default_and_off(sv_factory):
    """The default is 30 submissions per 600 s per network; Off (or 0)
    lets every one through."""
    sv = sv_factory()
    for i in range(30):
        assert sv.submit(GOOD).status == 200, i
    r = sv.submit(GOOD)
    assert r.status == 429 and 500 < int(r.header("Retry-After")) <= 600
    assert "about 10 minutes (after " in r.text and " UTC)" in r.text, r.text
    off = sv_factory(directives={"SplitVaultIntakeThrottle": "Off"})
    for i in range(31):
        assert off.submit(GOOD).status == 200, i
    assert off.db.count("records") == 31
