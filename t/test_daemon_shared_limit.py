"""One decrypt limiter for every daemon on a shared pgsql store: the token
buckets (global and per staff name), the pressure and the daily budgets
live in the store and are updated atomically there, so the daemons together
serve the configured rate, not a multiple of it; the queue stays per
daemon. A store that does not answer at admission refuses the decrypt. The
sqlite3 store (one daemon) keeps the limiter in the process (its tests are
t/test_daemon_limits.py)."""
import os
import pwd
import sqlite3
import threading
import time

import pytest

from svtest.core import SRC, wait_until
from svtest.fixtures_daemon import VALGRIND, Daemon, DaemonError, Record, WERR

V2_PGSQL = SRC / "t" / "data" / "store-v2-pgsql.sql"
V2_SQLITE3 = SRC / "t" / "data" / "store-v2-sqlite3.sql"

# a lock-down one daemon trips reaches the other through the store
SEEN = r"lock-down recorded in the store \(by another daemon\?\): locking down"
UNLOCKED = r"unlocked by control-uid-\d+: decrypts allowed again"
SUMMARY = r"\d+ more refusals \(decrypt-locked-down\) from [\d.]+ in the last \d+ s"


def pair(daemon_factory, **options):
    """Two daemons on one new pgsql store (a drops it at teardown)."""
    a = daemon_factory(driver="pgsql", **options)
    b = daemon_factory(driver="pgsql", db_name=a.db_name, **options)
    b.db_name = None
    return a, b


def stored(d, n=1):
    recs = []
    with d.client() as c:
        for i in range(n):
            r = Record({"name": "person %d" % i})
            recs.append(r.stored(c.store(r.uuid, r.store_fields())))
    return recs


def attempt(d, rec, actor="pat", wait_ms=0):
    """One decrypt on d: 0 when it was served, else the error code."""
    try:
        with d.client() as c:
            assert c.decrypt(rec.uuid, actor, rec.decrypt_fields(), wait_ms=wait_ms)[0][0] == \
                rec.fields[0].value
        return 0
    except DaemonError as e:
        return e.code


def locked_both(a, b, timeout=15):
    for d in (a, b):
        wait_until(lambda: d.ctl_status()["locked"] == "1", timeout,
                   "daemon on port %d did not lock down" % d.port)


def test_burst_over_two_daemons_admits_one_bucket(daemon_factory):
    """A burst of decrypts spread over both daemons at once: the two admit
    exactly the burst between them (a minute's rate accrues less than a
    token meanwhile), not twice it; status shows the shared bucket."""
    a, b = pair(daemon_factory, rate_global=("60s", 3), lockdown_threshold=0, queue_max=16)
    (rec,) = stored(a)
    st = a.ctl_status()
    assert st["limiter"] == "shared" and float(st["limiter_tokens"]) == 3.0, st
    codes = []
    lock = threading.Lock()

    def one(d, i):
        code = attempt(d, rec, actor="staff%d" % i)
        with lock:
            codes.append(code)

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=((a, b)[i % 2], i)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - t0
    served = codes.count(0)
    assert len(codes) == 12 and set(codes) <= {0, WERR["RATE_LIMITED"]}, codes
    assert 3 <= served <= 3 + int(elapsed / 60), (served, elapsed, codes)
    # both see the one bucket, empty now, and how many it served
    for d in (a, b):
        st = d.ctl_status()
        assert st["limiter"] == "shared" and float(st["limiter_tokens"]) < 1, st
        assert int(st["limiter_decrypts_24h"]) == served and st["locked"] == "0", st
    assert int(a.ctl_status()["decrypts"]) + int(b.ctl_status()["decrypts"]) == served


def test_queued_decrypts_on_both_daemons_share_the_rate(daemon_factory):
    """Staff queue on both daemons for a few seconds: each daemon's queue
    is admitted against the one bucket, so together they serve the burst
    and one decrypt per interval, within one token, not twice that."""
    a, b = pair(daemon_factory, rate_global=("500ms", 1), lockdown_threshold=0,
                queue_max=16, queue_max_wait="30s")
    (rec,) = stored(a)
    served = []
    lock = threading.Lock()
    t0 = time.monotonic()
    run_for = 3.0

    def worker(d, i):
        with d.client() as c:
            while time.monotonic() - t0 < run_for:
                try:
                    c.decrypt(rec.uuid, "staff%d" % i, rec.decrypt_fields(), wait_ms=5000)
                except DaemonError as e:
                    assert e.code == WERR["RATE_LIMITED"], e
                    continue
                with lock:
                    served.append(time.monotonic())

    threads = [threading.Thread(target=worker, args=((a, b)[i % 2], i)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    window = max(served) - t0
    expected = 1 + window / 0.5  # the burst, then one every 500 ms
    assert len(served) <= expected + 1, (len(served), window)
    assert len(served) >= expected - 2, (len(served), window)
    # each daemon served some: the queues are per daemon, the bucket is one
    assert int(a.ctl_status()["decrypts"]) > 0 and int(b.ctl_status()["decrypts"]) > 0


def test_per_name_bucket_is_shared(daemon_factory):
    """A staff name's bucket is one for all daemons: pat's burst of two is
    spent across both, and another name still has its own."""
    a, b = pair(daemon_factory, rate_actor=("60s", 2), lockdown_threshold=0)
    (rec,) = stored(a)
    assert attempt(a, rec, "pat") == 0
    assert attempt(b, rec, "pat") == 0
    assert attempt(a, rec, "pat") == WERR["RATE_LIMITED"]
    assert attempt(b, rec, "pat") == WERR["RATE_LIMITED"]
    assert attempt(b, rec, "uma") == 0
    assert attempt(a, rec, "uma") == 0
    assert attempt(a, rec, "uma") == WERR["RATE_LIMITED"]
    assert int(a.ctl_status()["limiter_actors"]) == 2


@pytest.mark.log_allows(
    r"LOCK-DOWN \(daily-budget, from [\d.]+\): decrypts refused until", SEEN, UNLOCKED, SUMMARY,
)
def test_global_daily_budget_is_shared_and_unlock_renews_it(daemon_factory):
    """Three decrypts a day between both daemons: the fourth, wherever it
    arrives, locks both down; an unlock gives both a fresh budget."""
    a, b = pair(daemon_factory, budget=(3, 0), lockdown_threshold=0)
    (rec,) = stored(a)
    assert [attempt(d, rec, "staff%d" % i) for i, d in enumerate((a, b, a))] == [0, 0, 0]
    assert attempt(b, rec, "staff9") == WERR["LOCKED_DOWN"]
    assert "event=lockdown why=daily-budget" in b.audit_path.read_text()
    assert attempt(a, rec, "staff8") == WERR["LOCKED_DOWN"]
    locked_both(a, b)
    assert b.ctl("unlock").returncode == 0
    assert a.ctl("unlock").returncode == 0
    assert int(a.ctl_status()["limiter_decrypts_24h"]) == 0
    assert attempt(a, rec, "staff1") == 0 and attempt(b, rec, "staff2") == 0


@pytest.mark.log_allows(
    r"LOCK-DOWN \(actor-daily-budget, from [\d.]+\): decrypts refused until", SEEN, SUMMARY,
)
def test_per_name_daily_budget_is_shared(daemon_factory):
    """Two decrypts a day per staff name, between both daemons."""
    a, b = pair(daemon_factory, budget=(100, 2), lockdown_threshold=0)
    (rec,) = stored(a)
    assert attempt(a, rec, "pat") == 0
    assert attempt(b, rec, "pat") == 0
    assert attempt(a, rec, "pat") == WERR["LOCKED_DOWN"]
    assert "event=lockdown why=actor-daily-budget" in a.audit_path.read_text()
    locked_both(a, b)
    assert attempt(b, rec, "uma") == WERR["LOCKED_DOWN"]


@pytest.mark.log_allows(
    r"LOCK-DOWN \(decrypt-pressure, from [\d.]+\): decrypts refused until", SEEN, SUMMARY,
)
def test_pressure_over_both_daemons_locks_both_down(daemon_factory):
    """Decrypts faster than the rate, spread over both daemons so that
    neither alone reaches the threshold (3): the shared pressure does, and
    both lock down."""
    a, b = pair(daemon_factory, rate_global=("60s", 1), lockdown_threshold=3, queue_max=8)
    (rec,) = stored(a)
    assert attempt(a, rec) == 0
    # pressure 1, 2, 3 (each daemon alone would stand at 2 after these)
    assert [attempt(d, rec) for d in (b, a, b)] == [WERR["RATE_LIMITED"]] * 3
    assert a.ctl_status()["limiter_pressure"] == "3"
    assert attempt(a, rec) == WERR["LOCKED_DOWN"]
    assert "event=lockdown why=decrypt-pressure" in a.audit_path.read_text()
    locked_both(a, b)
    assert attempt(b, rec) == WERR["LOCKED_DOWN"]


@pytest.mark.log_allows(
    r"LOCK-DOWN \(queue-overflow, from [\d.]+\): decrypts refused until", SEEN, SUMMARY,
)
def test_queue_overflow_on_one_daemon_locks_both_down(daemon_factory):
    """The queue is per daemon: decrypts that pile up in a's queue past the
    threshold trip a's lock-down, and the store carries it to b."""
    a, b = pair(daemon_factory, rate_global=("60s", 1), lockdown_threshold=3, queue_max=3,
                queue_max_wait="60s")
    (rec,) = stored(a)
    assert attempt(a, rec) == 0
    codes = []

    def waiting(i):
        codes.append(attempt(a, rec, "staff%d" % i, wait_ms=60000))

    threads = []
    for i in range(3):
        threads.append(threading.Thread(target=waiting, args=(i,)))
        threads[-1].start()
        with a.client() as c:
            wait_until(lambda: c.status()["queue_len"] == i + 1, 60 if VALGRIND else 15,
                       "the queue never reached %d" % (i + 1), interval=0.02)
    with b.client() as c:
        assert c.status()["queue_len"] == 0
    assert attempt(a, rec, "staff9", wait_ms=60000) == WERR["LOCKED_DOWN"]
    for t in threads:
        t.join(60)
    assert codes == [WERR["LOCKED_DOWN"]] * 3
    assert "event=lockdown why=queue-overflow" in a.audit_path.read_text()
    locked_both(a, b)
    assert attempt(b, rec, "staff8") == WERR["LOCKED_DOWN"]


@pytest.mark.log_allows(
    r"store: query \d+ failed: ERROR:  canceling statement due to (statement|lock) timeout",
    r"DECRYPT record=\S+ actor=pat refused: admission failed in the store \(the shared",
)
def test_store_unreachable_at_admission_refuses(daemon_factory):
    """The store does not answer the admission (its limiter row is locked
    by another session past store.timeout): the decrypt is refused with a
    store error, audited and logged, and nothing is decrypted; once the
    store answers again, decrypts are served."""
    a, b = pair(daemon_factory, rate_global=("1s", 5), extra={"store": {"timeout": "1s"}})
    (rec,) = stored(a)
    before = int(a.ctl_status()["decrypts"])
    blocker = a.pg.connect(a.db_name)
    blocker.autocommit = False
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE sv_limit IN ACCESS EXCLUSIVE MODE")
        t0 = time.monotonic()
        assert attempt(a, rec) == WERR["STORE"]
        assert time.monotonic() - t0 < (30 if VALGRIND else 5)
        assert a.ctl_status()["limiter_store"] == "unavailable"
    finally:
        blocker.rollback()
        blocker.close()
    assert int(a.ctl_status()["decrypts"]) == before
    text = a.wait_audit("event=decrypt outcome=refused why=store-failed actor=pat record=%s"
                        % rec.uuid)
    assert "event=decrypt outcome=refused why=store-failed actor=pat record=%s" % rec.uuid \
        in text
    assert "admission failed in the store" in a.log_text()
    assert a.ctl_status()["locked"] == "0"
    assert attempt(a, rec) == 0 and attempt(b, rec) == 0


def test_sqlite3_store_keeps_the_limiter_in_the_process(daemon_factory):
    d = daemon_factory(rate_global=("60s", 2), lockdown_threshold=0)
    (rec,) = stored(d)
    st = d.ctl_status()
    assert st["limiter"] == "local" and float(st["limiter_tokens"]) == 2.0, st
    assert attempt(d, rec) == 0 and attempt(d, rec) == 0
    assert attempt(d, rec) == WERR["RATE_LIMITED"]
    assert d.ctl_status()["limiter_decrypts_24h"] == "2"


@pytest.mark.log_allows(
    r"store: schema upgraded from version 2 to 3 \(the decrypt limiter is kept in the",
)
def test_version_2_pgsql_store_upgraded(pki, pg, workdir):
    """A pgsql store of schema version 2 (as shipped, with a share in it)
    is upgraded when the first of two daemons starts on it: its shares
    decrypt, and both daemons share the limiter from then on."""
    name = "svd_v2_%d" % int(time.monotonic() * 1e6)
    ds = [Daemon(workdir / ("d%d" % i), pki, pg, driver="pgsql", db_name=name,
                 rate_global=("60s", 2), lockdown_threshold=0) for i in range(2)]
    rec = Record({"name": "from version 2"})
    f = rec.fields[0]
    now = int(time.time()) - 60
    pg.create_db(name, [V2_PGSQL])
    try:
        ds[0].sql("INSERT INTO shares (id, record_uuid, field, key2_pub, key2b, state, created, "
                  "updated) VALUES (7, %s, %s, decode(%s, 'hex'), decode(%s, 'hex'), 1, %s, %s)",
                  (rec.uuid, f.name, f.pub.hex(), f.key2b.hex(), now, now))
        ds[0].sql("INSERT INTO share_records (record_uuid, created) VALUES (%s, %s)",
                  (rec.uuid, now))
        ds[0].sql("SELECT setval('shares_id_seq', 7)")
        rec.stored([7])
        ds[0].start()
        ds[1].start()
        con = pg.connect(name)
        try:
            with con.cursor() as cur:
                cur.execute("SELECT version FROM sv_schema")
                assert cur.fetchone()[0] == 3
                cur.execute("SELECT count(*) FROM sv_limit")
                assert cur.fetchone()[0] == 1
        finally:
            con.close()
        assert sum(d.log_text().count("schema upgraded") for d in ds) == 1
        assert attempt(ds[0], rec) == 0 and attempt(ds[1], rec) == 0
        assert attempt(ds[0], rec) == WERR["RATE_LIMITED"]
        assert ds[1].ctl_status()["limiter"] == "shared"
    finally:
        ds[1].stop()
        ds[0].teardown()


@pytest.mark.log_allows(
    r"store: schema upgraded from version 2 to 3 \(the decrypt limiter stays in the process",
)
def test_version_2_sqlite3_store_upgraded(pki, workdir):
    """A sqlite3 store of schema version 2 becomes version 3 with nothing
    else changed: its one daemon keeps the limiter in the process."""
    d = Daemon(workdir / "d", pki, None, rate_global=("60s", 1), lockdown_threshold=0)
    con = sqlite3.connect(str(d.db_path))
    try:
        con.executescript(V2_SQLITE3.read_text())
    finally:
        con.close()
    pw = pwd.getpwnam(d.user)
    os.chown(d.db_path, pw.pw_uid, pw.pw_gid)
    try:
        d.start()
        con = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True)
        try:
            assert con.execute("SELECT version FROM sv_schema").fetchone()[0] == 3
        finally:
            con.close()
        (rec,) = stored(d)
        assert attempt(d, rec) == 0 and attempt(d, rec) == WERR["RATE_LIMITED"]
        assert d.ctl_status()["limiter"] == "local"
    finally:
        d.teardown()
