"""Several daemons behind one httpd (SplitVaultDaemon with several
endpoints, the daemons sharing one pgsql store): requests spread by load, a
daemon that dies is avoided and probed back, one whose certificate fails is
never used, a request that was sent is never sent again elsewhere, and
`apache2 -t` refuses a bad list."""
import os
import re
import signal
import threading
import time
import types

import pytest

from svtest.core import free_port, wait_until
from svtest.data import GOOD
from svtest.fixtures_httpd import Httpd, WebClient

# what a daemon that goes away makes httpd log (its connects, the state
# change, requests in flight on it)
DOWN = [r"SV01701", r"SV01702", r"SV01706", r"SV0170[789]", r"SV0171[01]", r"SV01730"]
STORE_EV = "event=store outcome="


def stack2(sv_factory, daemon_factory, b_options=None, daemon_options_extra=None,
           **httpd_options):
    """A stack whose httpd names two daemons on one pgsql store: its own
    (a) and b. daemon_factory must come before sv_factory in the test's
    arguments: b and the store go after httpd and a."""
    b = daemon_factory(driver="pgsql", **(b_options or {}))
    httpd_options["directives"] = dict({"SplitVaultIntakeThrottle": "Off"},
                                       **httpd_options.get("directives", {}))
    sv = sv_factory(daemon_options=dict({"driver": "pgsql", "db_name": b.db_name},
                                        **(daemon_options_extra or {})),
                    extra_daemons=["127.0.0.1:%d" % b.port], **httpd_options)
    return sv, sv.daemon, b


def stores(d):
    return d.audit_path.read_text().count(STORE_EV) if d.audit_path.exists() else 0


def daemons_table(sv, client):
    """{address: (state, outstanding, failures, last error)} from the key
    location."""
    page = client.get(sv.keys_path())
    assert page.status == 200, page.text
    rows = re.findall(r'<tr class="daemon"><td class="mono">([^<]+)</td>'
                      r'<td class="state">([^<]+)</td><td>(\d+)</td><td>(\d+)</td>'
                      r'<td>([^<]*)</td>', page.text)
    return {a: (st.split(" ")[0], int(o), int(f), e) for a, st, o, f, e in rows}


def test_requests_spread_over_both(daemon_factory, sv_factory):
    sv, a, b = stack2(sv_factory, daemon_factory)
    c = sv.client()
    refs = []
    for _ in range(8):
        r = sv.submit(GOOD, client=c)
        assert r.status == 200, r.text
        refs.append(sv.ref_of(r))
    wait_until(lambda: stores(a) + stores(b) == 8, 15, "8 STOREs audited")
    assert stores(a) >= 2 and stores(b) >= 2, (stores(a), stores(b))
    admin = sv.login("ada")
    t = daemons_table(sv, admin)
    assert t == {"127.0.0.1:%d" % a.port: ("up", 0, 0, ""),
                 "127.0.0.1:%d" % b.port: ("up", 0, 0, "")}, t
    assert sv.db.count("records") == 8
    # a decryption's DECRYPT and RELEASE may go to different daemons: the
    # rotation lives in the shared store
    assert sv.upload_key1(client=admin).status == 303
    pat = sv.login("pat")
    for ref in refs[:4]:
        assert sv.decrypted_values(sv.decrypt(pat, ref)) == GOOD
    for d in (a, b):
        assert "refused=0" in d.audit_path.read_text() or \
            "event=release" not in d.audit_path.read_text()
    # the module sends RELEASE after answering the decrypt: wait for it
    wait_until(lambda: sum(d.audit_path.read_text().count("event=release outcome=ok")
                           for d in (a, b)) == 4, 15, "4 RELEASEs audited")


@pytest.mark.log_allows(r"entries after the recorded head \(a crash between log and head "
                        r"writes\)")
def test_kill9_one_daemon_under_a_stream_of_intakes(daemon_factory, sv_factory):
    sv, a, b = stack2(sv_factory, daemon_factory)
    sv.allowed_errors += DOWN
    assert sv.upload_key1().status == 303
    results, lock, stop = [], threading.Lock(), threading.Event()

    def stream(k):
        c = sv.client()
        i = 0
        while not stop.is_set():
            vals = {"name": "n%d-%d" % (k, i), "ssn": "s%d-%d" % (k, i), "notes": ""}
            r = sv.submit(vals, client=c)
            with lock:
                results.append((r.status, sv.ref_of(r), vals, r.text))
            i += 1

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(results) >= 6 and stores(b) >= 1, 30, "intakes on both")
        b.kill9()
        at_kill = len(results)
        wait_until(lambda: len(results) >= at_kill + 15, 60, "intakes after the kill")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    acked = [(ref, vals) for status, ref, vals, _ in results if status == 200]
    for status, ref, vals, text in results:
        if status == 200:
            assert ref, text
        else:
            # the clear "try again" page, never a receipt
            assert status == 503 and ref is None, (status, text)
            assert "NOT stored" in text and "try again" in text, text
    # after the kill, b is avoided: the stream goes on through a
    assert sum(1 for s, *_ in results[at_kill + 3:] if s == 200) >= 10
    assert sv.db.count("records") == len(acked)
    admin = sv.login("ada")
    t = daemons_table(sv, admin)
    assert t["127.0.0.1:%d" % b.port][0] == "failed", t
    # connects refused after the kill, or (when two exchanges in flight
    # lost their answers first) the exchanges
    assert t["127.0.0.1:%d" % b.port][3] in ("connect", "closed-before-tls", "exchange"), t
    assert t["127.0.0.1:%d" % a.port] == ("up", 0, 0, ""), t
    # every acknowledged submission is stored and decryptable (b's ones
    # through a: one store)
    pat = sv.login("pat")
    for ref, vals in acked[:6] + acked[-6:]:
        got = sv.decrypted_values(sv.decrypt(pat, ref))
        assert got["name"] == vals["name"] and got["ssn"] == vals["ssn"], (ref, got)
    # b comes back: the next request after its back-off probes it, and it
    # serves again
    b.start()
    before = stores(b)
    c = sv.client()

    def b_serves():
        assert sv.submit(GOOD, client=c).status == 200
        return stores(b) > before

    wait_until(b_serves, 60, "b serving again", interval=0.2)
    assert daemons_table(sv, admin)["127.0.0.1:%d" % b.port][:3] == ("up", 0, 0)
    assert "SV01732" in sv.httpd.log_text()
    # each state change logged once, not per request
    log = sv.httpd.log_text()
    assert log.count("SV01730: splitvaultd at 127.0.0.1:%d" % b.port) == 1, log
    assert log.count("SV01732: splitvaultd at 127.0.0.1:%d" % b.port) == 1, log


def test_daemon_failing_its_certificate_check_is_never_used(daemon_factory, sv_factory, pki):
    cert, key = pki.issue_server("elsewhere.example", "DNS:elsewhere.example")
    sv, a, b = stack2(sv_factory, daemon_factory,
                      b_options={"extra": {"tls": {"certificate": str(cert),
                                                   "key": str(key)}}})
    sv.allowed_errors += [r"SV01702: .*certificate verify failed", r"SV01731"]
    b.allowed_log += [r"TLS handshake", r"handshake", r"alert"]
    c = sv.client()
    for _ in range(6):
        r = sv.submit(GOOD, client=c)
        assert r.status == 200, r.text
    wait_until(lambda: stores(a) == 6, 15, "6 STOREs on a")
    assert stores(b) == 0
    t = daemons_table(sv, sv.login("ada"))
    assert t["127.0.0.1:%d" % b.port][0] == "failed" and \
        t["127.0.0.1:%d" % b.port][3] == "certificate", t
    log = sv.httpd.log_text()
    # an error, once (its back-off is the longest: no probe within the test)
    assert len(re.findall(r"\[splitvault:error\].*SV01731: splitvaultd at 127\.0\.0\.1:%d "
                          r"failed its certificate check" % b.port, log)) == 1, log


def test_a_sent_request_that_times_out_is_not_retried(daemon_factory, sv_factory):
    """The store is locked: the STORE reaches a daemon and hangs there past
    SplitVaultDaemonTimeout. The visitor is told to try again; the request
    is not sent to the other daemon (only one daemon ever sees it)."""
    sv, a, b = stack2(sv_factory, daemon_factory,
                      directives={"SplitVaultDaemonTimeout": "2"})
    sv.allowed_errors += [r"SV01709: no answer from splitvaultd \(timed out\)"]
    for d in (a, b):
        d.allowed_log += [r"failed in the store", r"store: ", r"lock timeout",
                          r"canceling statement"]
    con = b.pg.connect(b.db_name)
    try:
        with con.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("LOCK TABLE shares IN SHARE MODE")
            r = sv.submit(GOOD)
            assert r.status == 503 and "NOT stored" in r.text, r.text
            cur.execute("ROLLBACK")
    finally:
        con.close()
    wait_until(lambda: stores(a) + stores(b) >= 1, 30, "the STORE audited")
    assert sorted((stores(a), stores(b))) == [0, 1], (stores(a), stores(b))
    assert sv.db.count("records") == 0
    # both daemons stay up: an answer that is late is not a dead daemon
    t = daemons_table(sv, sv.login("ada"))
    assert [v[0] for v in t.values()] == ["up", "up"], t
    assert sv.submit(GOOD).status == 200


def test_counts_of_a_child_that_died_are_cleared(daemon_factory, sv_factory):
    """A STORE hangs in the daemons' locked store; the httpd child serving
    it is killed: the parent clears that child's outstanding count within
    its maintenance rounds, so the daemon is not left looking busy."""
    slow = {"extra": {"store": {"timeout": "60s"}}}
    sv, a, b = stack2(sv_factory, daemon_factory, b_options=slow,
                      daemon_options_extra=slow,
                      directives={"SplitVaultDaemonTimeout": "30"})
    for d in (a, b):
        d.allowed_log += [r"failed in the store", r"store: ", r"lock timeout",
                          r"canceling statement"]
    admin = sv.login("ada")
    con = b.pg.connect(b.db_name)
    done = []
    t = threading.Thread(target=lambda: done.append(_submit_quietly(sv)))
    try:
        with con.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("LOCK TABLE shares IN SHARE MODE")
            t.start()
            wait_until(lambda: sum(v[1] for v in daemons_table(sv, admin).values()) == 1, 15,
                       "one request outstanding")
            for pid in sv.httpd.children():
                os.kill(pid, signal.SIGKILL)
            t.join(30)
            admin = sv.login("ada")
            wait_until(lambda: sum(v[1] for v in daemons_table(sv, admin).values()) == 0, 30,
                       "the dead child's count cleared", interval=0.5)
            cur.execute("ROLLBACK")
    finally:
        con.close()
    assert done == [None] or done[0] != 200
    assert sv.submit(GOOD).status == 200


def _submit_quietly(sv):
    try:
        return sv.submit(GOOD).status
    except OSError:
        return None


# what a daemon that takes the handshake and then fails the exchange makes
# httpd log
NO_ANSWER = [r"SV01708", r"SV01709", r"SV01710", r"SV01730", r"SV01735"]


@pytest.mark.parametrize("mode", ["close", "hang", "garbage"])
def test_a_daemon_that_fails_after_the_handshake_is_marked_failed(sv_factory,
                                                                 fake_daemon_factory, mode):
    """A daemon with a valid certificate that closes after the frame, hangs
    or answers garbage: two such exchanges in a row mark it failed, so a
    burst of submissions loses only those that reached it before that (its
    fast failures earn it no low count), and the key location says so."""
    fake = fake_daemon_factory(mode)
    sv = sv_factory(extra_daemons=[fake.addr],
                    directives={"SplitVaultIntakeThrottle": "Off",
                                "SplitVaultDaemonTimeout": "2"})
    sv.allowed_errors += NO_ANSWER
    statuses = sv.submit_at_once(GOOD, 40)
    assert len(statuses) == 40 and set(statuses) <= {200, 503}, statuses
    lost = statuses.count(503)
    # each lost submission is one the fake was sent, and the fake got only
    # what was under way when it was marked failed
    assert lost == fake.frames and lost <= 12, (lost, fake.frames, statuses)
    t = daemons_table(sv, sv.login("ada"))
    assert t[fake.addr][0] == "failed" and t[fake.addr][3] == "exchange", t
    assert t["127.0.0.1:%d" % sv.daemon.port] == ("up", 0, 0, ""), t
    assert sv.db.count("records") == 40 - lost
    # marked failed once: the requests that ran into it meanwhile are
    # debug lines, not an error each
    assert sv.httpd.log_text().count("SV01730: splitvaultd at %s" % fake.addr) == 1


def test_a_full_pool_moves_the_request_on(sv_factory, fake_daemon_factory):
    """SplitVaultDaemonPool 1 in one process, one daemon that hangs and one
    that answers, a stream of submissions from six clients: a request
    never waits for the hanging daemon's connection (it goes to the other
    daemon, or waits for one of its connections), so only the requests the
    hanging daemon was sent take the timeout or fail."""
    fake = fake_daemon_factory("hang")
    sv = sv_factory(extra_daemons=[fake.addr], server_limit=1, threads=8,
                    directives={"SplitVaultIntakeThrottle": "Off",
                                "SplitVaultDaemonPool": "1",
                                "SplitVaultDaemonTimeout": "3"})
    sv.allowed_errors += NO_ANSWER
    results, lock, stop = [], threading.Lock(), threading.Event()

    def stream():
        c = sv.client()
        while not stop.is_set():
            t0 = time.monotonic()
            st = sv.submit(GOOD, client=c).status
            with lock:
                results.append((st, time.monotonic() - t0))

    threads = [threading.Thread(target=stream) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(results) >= 60 and fake.frames >= 2, 30, "a stream of intakes")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    slow = [r for r in results if r[1] >= 2.5]
    lost = [r for r in results if r[0] != 200]
    assert len(slow) <= fake.frames and len(lost) <= fake.frames, (fake.frames, results)
    log = sv.httpd.log_text()
    assert "SV01706" not in log and "SV01724" not in log and "SV01735" not in log, log
    t = daemons_table(sv, sv.login("ada"))
    assert t[fake.addr][0] == "failed" and t[fake.addr][3] == "exchange", t


def test_an_outage_is_counted_and_logged_once(daemon_factory, sv_factory):
    """Both daemons gone, a burst of submissions: the connects under way
    together count as one failure of each daemon (not a jump to the longest
    back-off), and the log has the change of each and one line for "none
    could be reached", not a line per request."""
    sv, a, b = stack2(sv_factory, daemon_factory)
    sv.allowed_errors += DOWN + [r"SV01723"]
    assert sv.submit(GOOD).status == 200
    a.kill9()
    b.kill9()
    statuses = sv.submit_at_once(GOOD, 12)
    assert statuses == [503] * 12, statuses
    t = daemons_table(sv, sv.login("ada"))
    for d in (a, b):
        state, _, failures, err = t["127.0.0.1:%d" % d.port]
        # one for the burst; a probe after the first second may add one
        assert state == "failed" and failures <= 2 and err == "connect", t
    log = sv.httpd.log_text()
    errors = [ln for ln in log.splitlines() if "[splitvault:error]" in ln]
    assert len([ln for ln in errors if "SV01723" in ln]) == 1, log
    for d in (a, b):
        assert len([ln for ln in errors if "SV01730: splitvaultd at 127.0.0.1:%d" % d.port
                    in ln]) == 1, log
        # the connect errors: the first one, and at most one per back-off
        # window (its probe) after it
        assert len([ln for ln in errors if "SV01701" in ln
                    and "port %d" % d.port in ln]) <= 3, log


# each server of httpd prepares the module's statements under the same labels
@pytest.mark.log_allows(r"AH02653: conflicting SQL statements")
def test_virtual_hosts_with_another_ca_do_not_share_health(daemon_factory, sv_factory, pki):
    """A virtual host whose SplitVaultDaemonCA does not match the daemons'
    certificates fails their check; the main server's daemons, the same
    addresses with the right CA, stay up and are never marked failed."""
    port = free_port()
    extra = ("Listen 127.0.0.1:%d\n<VirtualHost 127.0.0.1:%d>\nServerName localhost\n"
             'SplitVaultDaemonCA "%s"\n</VirtualHost>' % (port, port, pki.other_ca_cert))
    sv, a, b = stack2(sv_factory, daemon_factory, extra=extra)
    sv.allowed_errors += [r"SV01702: .*certificate verify failed", r"SV01731", r"SV01723",
                          r"SV01735"]
    for d in (a, b):
        d.allowed_log += [r"TLS handshake", r"handshake", r"alert", r"refusals"]
    vc = WebClient(port, tls=True, cafile=pki.ca_cert)
    for _ in range(3):
        r = sv.submit(GOOD, client=vc)
        assert r.status == 503, r.text
        assert sv.submit(GOOD).status == 200
    t = daemons_table(sv, sv.login("ada"))
    assert [v[:3] for v in t.values()] == [("up", 0, 0), ("up", 0, 0)], t
    assert sv.db.count("records") == 3


DB = types.SimpleNamespace(dsn="host=127.0.0.1 port=1 dbname=none user=postgres")


@pytest.mark.parametrize("value,message", [
    ("127.0.0.1:7443 127.0.0.1:7443", "SplitVaultDaemon: 127.0.0.1:7443 is named twice"),
    ("LOCALHOST:7443 localhost:7443", "is named twice"),
    ("127.0.0.1:7443 nonsense", "give host:port, e.g. 127.0.0.1:7443 or [::1]:7443 "
                                "(not 'nonsense')"),
    ("127.0.0.1:7443 [::1]", "(not '[::1]')"),
    ("[0::1]:7443 [::1]:7443", "SplitVaultDaemon: [::1]:7443 is named twice"),
    ("127.1:7443 127.0.0.1:7443", "SplitVaultDaemon: 127.0.0.1:7443 is named twice"),
    ("daemon.example.:7443 DAEMON.example:7443", "DAEMON.example:7443 is named twice"),
    ("::1:7443", "an IPv6 address goes in brackets, e.g. [::1]:7443 (not '::1:7443')"),
    (" ".join("127.0.0.1:%d" % (7000 + i) for i in range(17)), "17 daemons, at most 16"),
])
def test_bad_daemon_lists_are_refused(workdir, pki, value, message):
    h = Httpd(workdir / "h", DB, pki, 1, directives={"SplitVaultDaemon": value})
    p = h.check()
    assert p.returncode != 0 and message in p.stdout + p.stderr, p.stdout + p.stderr


def test_second_daemon_line_is_refused_and_a_list_is_accepted(workdir, pki):
    h = Httpd(workdir / "h1", DB, pki, 1, extra="SplitVaultDaemon 127.0.0.1:7444")
    p = h.check()
    assert p.returncode != 0 and "SplitVaultDaemon is given twice here" in p.stdout + p.stderr
    h = Httpd(workdir / "h2", DB, pki, 1,
              directives={"SplitVaultDaemon": "127.0.0.1:7443 [::1]:7443 localhost:7444"})
    p = h.check()
    assert p.returncode == 0, p.stdout + p.stderr
