"""splitvaultd guard rails: token buckets (global and per actor), the FIFO
queue and its maximum wait, lock-down on overflow (durable across restarts,
intake unaffected), unlock through the control socket."""
import contextlib
import os
import stat
import threading
import time

import pytest

from svtest.core import wait_until
from svtest.fixtures_daemon import DaemonError, Record, WERR


def stored(d, n=1):
    recs = []
    with d.client() as c:
        for i in range(n):
            r = Record({"name": "person %d" % i})
            recs.append(r.stored(c.store(r.uuid, r.store_fields())))
    return recs


def decrypt(c, rec, actor="pat", wait_ms=5000):
    return c.decrypt(rec.uuid, actor, rec.decrypt_fields(), wait_ms=wait_ms)


def wait_queue(d, n, timeout=30):
    """Until n decrypts wait in the daemon's queue (a request sent from a
    thread needs its TLS handshake first, which under valgrind takes a
    while)."""
    with d.client() as c:
        wait_until(lambda: c.status()["queue_len"] >= n, timeout,
                   "the queue never reached %d" % n, interval=0.02)


def code_of(fn):
    try:
        fn()
    except DaemonError as e:
        return e.code
    return 0


def test_per_actor_token_bucket(daemon_factory):
    d = daemon_factory(rate_actor=("1s", 2))
    (rec,) = stored(d)
    with d.client() as c:
        decrypt(c, rec, "pat")
        decrypt(c, rec, "pat")
        t0 = time.monotonic()
        with pytest.raises(DaemonError) as e:
            decrypt(c, rec, "pat", wait_ms=100)
        assert e.value.code == WERR["RATE_LIMITED"] and e.value.retry_ms > 0
        assert time.monotonic() - t0 < 1.0
        decrypt(c, rec, "uma")  # another actor has its own bucket
        decrypt(c, rec, "pat", wait_ms=3000)  # queued until pat's bucket refills
        assert time.monotonic() - t0 < 2.5


def test_global_token_bucket(daemon_factory):
    d = daemon_factory(rate_global=("1s", 2))
    (rec,) = stored(d)
    with d.client() as c:
        decrypt(c, rec, "a1")
        decrypt(c, rec, "a2")
        assert code_of(lambda: decrypt(c, rec, "a3", wait_ms=100)) == WERR["RATE_LIMITED"]
        # waiting in the queue is admitted when the next token comes
        t0 = time.monotonic()
        decrypt(c, rec, "a3", wait_ms=3000)
        assert 0.5 < time.monotonic() - t0 < 2.5


def test_queue_is_fifo_and_paced(daemon_factory):
    d = daemon_factory(rate_global=("500ms", 1), queue_max=6, lockdown_threshold=0)
    recs = stored(d, 5)
    with d.client() as c:
        decrypt(c, recs[0])  # takes the only token
    done, errors = [], []
    clients = [d.client() for _ in range(5)]  # handshakes done before any request

    def worker(i):
        try:
            decrypt(clients[i], recs[i], "actor%d" % i, wait_ms=20000)
            done.append((i, time.monotonic()))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def arrived(watch):
        """requests that reached the daemon: waiting, or served since the
        first (the two figures are read one after the other, so the sum can
        only fall short for a moment, never run ahead)"""
        st = watch.status()
        return st["queue_len"] + st["decrypts"] - 1

    threads = []
    try:
        with d.client() as watch:
            for i in range(1, 5):
                t = threading.Thread(target=worker, args=(i,))
                t.start()
                threads.append(t)
                # the next one is sent only once this one is in the daemon:
                # arrival order 1, 2, 3, 4 however slow the machine
                wait_until(lambda: arrived(watch) >= i, 30, "request %d never arrived" % i,
                           interval=0.01)
        for t in threads:
            t.join(60)
    finally:
        for c in clients:
            c.close()
    assert not errors, errors
    assert [i for i, _ in done] == [1, 2, 3, 4]
    gaps = [b[1] - a[1] for a, b in zip(done, done[1:])]
    assert all(g > 0.35 for g in gaps), gaps


def test_queue_max_wait(daemon_factory):
    d = daemon_factory(rate_global=("10s", 1), queue_max_wait="300ms", lockdown_threshold=0)
    (rec,) = stored(d)
    with d.client() as c:
        decrypt(c, rec)
        t0 = time.monotonic()
        # the client would wait 10 s; the daemon allows 300 ms
        assert code_of(lambda: decrypt(c, rec, wait_ms=10000)) == WERR["RATE_LIMITED"]
        assert 0.25 < time.monotonic() - t0 < 2.0


def test_queue_full_without_lockdown_is_busy(daemon_factory):
    d = daemon_factory(rate_global=("10s", 1), queue_max=1, lockdown_threshold=0)
    (rec,) = stored(d)
    with d.client() as c:
        decrypt(c, rec)
    res = []
    t = threading.Thread(target=lambda: res.append(code_of(
        lambda: decrypt(d.client(), rec, wait_ms=4000))))
    t.start()
    wait_queue(d, 1)
    with d.client() as c:
        assert code_of(lambda: decrypt(c, rec, wait_ms=1000)) == WERR["BUSY"]
        assert c.status()["locked"] == 0
    t.join(20)
    assert res == [WERR["RATE_LIMITED"]]


@pytest.mark.log_allows(
    r"LOCK-DOWN \(queue-overflow, from [\d.]+\): decrypts refused until",
    r"\d+ more refusals \(decrypt-locked-down\) from [\d.]+ in the last \d+ s",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_lockdown_on_overflow_durable_and_unlock(daemon_factory):
    d = daemon_factory(rate_global=("30s", 1), queue_max=2, lockdown_threshold=2)
    recs = stored(d, 2)
    with d.client() as c:
        decrypt(c, recs[0])
    queued = []

    def waiter():
        with d.client() as c:
            queued.append(code_of(lambda: decrypt(c, recs[0], wait_ms=20000)))

    threads = [threading.Thread(target=waiter) for _ in range(2)]
    for i, t in enumerate(threads):
        t.start()
        wait_queue(d, i + 1)
    with d.client() as c:
        assert c.status()["queue_len"] == 2
        # the request that finds the queue at its threshold trips the lock-down
        assert code_of(lambda: decrypt(c, recs[1], wait_ms=20000)) == WERR["LOCKED_DOWN"]
    for t in threads:
        t.join(10)
    # queued requests were dropped, not served
    assert queued == [WERR["LOCKED_DOWN"]] * 2
    with d.client() as c:
        st = c.status()
        assert st["locked"] == 1 and st["queue_len"] == 0 and st["locked_since"] > 0
        assert code_of(lambda: decrypt(c, recs[1])) == WERR["LOCKED_DOWN"]
        # intake goes on while locked
        r = Record({"name": "new"})
        assert c.store(r.uuid, r.store_fields())
    assert "event=lockdown why=queue-overflow" in d.audit_path.read_text()
    # durable: survives a restart
    d.restart()
    assert d.ctl_status()["locked"] == "1"
    with d.client() as c:
        assert code_of(lambda: decrypt(c, recs[1])) == WERR["LOCKED_DOWN"]
    # only the sysadmin's unlock, locally, lifts it
    p = d.ctl("unlock")
    assert p.returncode == 0 and "locked=0" in p.stdout
    with d.client() as c:
        assert c.status()["locked"] == 0
        decrypt(c, recs[1])
    text = d.audit_path.read_text()
    assert "event=unlock outcome=ok source=control-uid-0" in text
    d.restart()
    assert d.ctl_status()["locked"] == "0"


@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_control_lockdown_command_and_status(daemon):
    (rec,) = stored(daemon)
    p = daemon.ctl("lockdown")
    assert p.returncode == 0, p.stdout + p.stderr
    st = daemon.ctl_status()
    assert st["locked"] == "1" and st["audit_healthy"] == "1"
    with daemon.client() as c:
        assert code_of(lambda: decrypt(c, rec)) == WERR["LOCKED_DOWN"]
    assert daemon.ctl("unlock").returncode == 0
    with daemon.client() as c:
        decrypt(c, rec)


def test_control_socket_owner_only(daemon):
    st = os.stat(daemon.sock_path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == __import__("pwd").getpwnam("nobody").pw_uid
    # the daemon's own user may use it
    p = daemon.ctl("status", user="nobody")
    assert p.returncode == 0 and p.stdout.startswith("ok")
    # another user may not
    p = daemon.ctl("unlock", user="www-data")
    assert p.returncode != 0
    assert daemon.ctl_status()["locked"] == "0"


def test_unknown_control_command(daemon):
    p = daemon.ctl("selfdestruct")
    assert p.returncode == 2
    # the daemon's own answers, to lines splitvaultctl would not send
    ask = daemon.ctl_raw
    unknown = ("error: unknown command (status, lockdown, unlock, audit-verify, retired, "
               "restore, raise-ids)\n")
    assert ask(b"selfdestruct\n") == unknown
    assert ask(b"\n") == unknown
    assert ask(b"selfdestruct now\n") == "error: selfdestruct takes no argument\n"
    assert ask(b"unlock now\n") == "error: unlock takes no argument\n"
    assert ask(b"status --all\n") == "error: status takes no argument\n"
    assert daemon.ctl_status()["locked"] == "0"


@pytest.mark.log_allows(r"LOCK-DOWN \(decrypt-pressure, from [\d.]+\): decrypts refused until")
def test_client_that_never_waits_trips_lockdown(daemon_factory):
    """A client that asks with wait_ms 0, faster than the rate, is refused
    at once each time; every refusal is pressure, and the pressure trips
    the lock-down as a queue would: it does not get one decrypt per token
    forever."""
    d = daemon_factory(rate_global=("1s", 1), queue_max=1, lockdown_threshold=1)
    recs = stored(d, 4)
    served, codes = 0, []
    t0 = time.monotonic()
    with d.client() as c:
        while time.monotonic() - t0 < 10:
            code = code_of(lambda: decrypt(c, recs[served % 4], "mallory", wait_ms=0))
            if code == 0:
                served += 1
            codes.append(code)
            if code == WERR["LOCKED_DOWN"]:
                break
            time.sleep(0.05)
        assert c.status()["locked"] == 1
    assert codes[-1] == WERR["LOCKED_DOWN"] and time.monotonic() - t0 < 3, codes
    assert served == 1 and set(codes[1:-1]) == {WERR["RATE_LIMITED"]}, codes
    assert "event=lockdown why=decrypt-pressure" in d.audit_path.read_text()


def test_double_click_is_only_queued(daemon_factory):
    """A staff member who asks twice in a row waits for the next token:
    queued, served, never locked down."""
    d = daemon_factory(rate_global=("1s", 1), queue_max=5, lockdown_threshold=5)
    (rec,) = stored(d)
    with d.client() as c:
        decrypt(c, rec)
        t0 = time.monotonic()
        decrypt(c, rec, wait_ms=5000)
        assert 0.5 < time.monotonic() - t0 < 3
        # and once more without waiting: refused, still not locked
        assert code_of(lambda: decrypt(c, rec, wait_ms=0)) == WERR["RATE_LIMITED"]
        assert c.status()["locked"] == 0
        decrypt(c, rec, wait_ms=5000)  # queued until the next token, served
        assert c.status()["locked"] == 0
    assert "event=lockdown" not in d.audit_path.read_text()


@pytest.mark.log_allows(
    r"LOCK-DOWN \(actor-daily-budget, from [\d.]+\): decrypts refused until",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_daily_budget_trips_lockdown(daemon_factory):
    """A spent daily budget (here the actor's: 2 a day) locks the daemon
    down even with the rates unlimited; unlock gives a fresh budget."""
    d = daemon_factory(budget=(100, 2))
    (rec,) = stored(d)
    with d.client() as c:
        decrypt(c, rec, "pat")
        decrypt(c, rec, "pat")
        assert code_of(lambda: decrypt(c, rec, "pat")) == WERR["LOCKED_DOWN"]
        assert code_of(lambda: decrypt(c, rec, "uma")) == WERR["LOCKED_DOWN"]
    assert "event=lockdown why=actor-daily-budget" in d.audit_path.read_text()
    assert d.ctl("unlock").returncode == 0
    with d.client() as c:
        decrypt(c, rec, "pat")


def store_locked_row(d):
    con = d.pg.connect(d.db_name)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT locked FROM sv_state WHERE id = 1")
            return cur.fetchone()[0]
    finally:
        con.close()


@contextlib.contextmanager
def sv_state_locked(d):
    """Another session holds the pgsql store's lock-down row: the daemon's
    writes to it wait, then fail after store.timeout."""
    blocker = d.pg.connect(d.db_name)
    blocker.autocommit = False
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE sv_state IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        blocker.rollback()
        blocker.close()


def wait_for(cond, timeout=10):
    wait_until(cond, timeout, "timed out", interval=0.1)


@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"lock-down could not be recorded in the store: retrying every second \(the",
    r"lock-down now recorded in the store",
    r"store: (statement|query) \d+ failed: ERROR:  canceling statement due to statement",
)
def test_lockdown_the_store_cannot_record_is_retried(daemon_factory):
    """A lock-down the store cannot record (its row locked by another
    session) is reported as an error by splitvaultctl, keeps the daemon
    locked, and is written as soon as the store works again."""
    d = daemon_factory(driver="pgsql", extra={"store": {"timeout": "1s"}})
    (rec,) = stored(d)
    with sv_state_locked(d):
        p = d.ctl("lockdown")
        assert p.returncode == 1 and "not durable yet" in p.stdout, p.stdout
        st = d.ctl_status()
        assert st["locked"] == "1" and st["lock_durable"] == "0"
        with d.client() as c:
            assert code_of(lambda: decrypt(c, rec)) == WERR["LOCKED_DOWN"]
    wait_for(lambda: d.ctl_status()["lock_durable"] == "1")
    assert store_locked_row(d) is True
    assert "lock-down now recorded in the store" in d.log_text()
    d.restart()
    assert d.ctl_status()["locked"] == "1"


@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"lock-down could not be recorded in the store: retrying every second \(the",
    r"store: (statement|query) \d+ failed: ERROR:  canceling statement due to statement",
    r"the audit log's last lock-down was never unlocked \(the store does not",
    r"unlocked by control-uid-\d+: decrypts allowed again",
    # killed between an audit entry and its head: confirmed at the restart
    r"entries after the recorded head \(a crash between log and head writes\)",
)
def test_audit_log_lockdown_survives_a_lost_store_write(daemon_factory):
    """The daemon dies before the store recorded its lock-down: at the next
    start the audit log's lock-down (no unlock after it) locks it, and the
    store is told. An unlock is then recorded in both."""
    d = daemon_factory(driver="pgsql", extra={"store": {"timeout": "1s"}})
    (rec,) = stored(d)
    with sv_state_locked(d):
        assert d.ctl("lockdown").returncode == 1
        d.kill9()
    assert store_locked_row(d) is False
    d.start()
    assert d.ctl_status()["locked"] == "1"
    assert "starting locked down" in d.log_text()
    wait_for(lambda: store_locked_row(d) is True)
    with d.client() as c:
        assert code_of(lambda: decrypt(c, rec)) == WERR["LOCKED_DOWN"]
    assert d.ctl("unlock").returncode == 0
    assert store_locked_row(d) is False
    d.restart()
    assert d.ctl_status()["locked"] == "0"
    with d.client() as c:
        decrypt(c, rec)
    text = d.audit_path.read_text()
    assert "event=unlock outcome=requested" in text and "event=unlock outcome=ok" in text
