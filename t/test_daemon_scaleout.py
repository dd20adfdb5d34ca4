"""Two daemons sharing one pgsql store (scale-out): shares stored through
one decrypt through the other, ids never collide, and a lock-down recorded
by one stops decrypts on the other."""
import os
import threading
import time

import pytest

from svtest.core import wait_until
from svtest.fixtures_daemon import DaemonError, Record, WERR
from svtest.fixtures_httpd import needs_test_hooks


def waiting_on_sv_state(d):
    """How many statements wait for a lock on the store's sv_state table."""
    con = d.pg.connect(d.db_name)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks WHERE NOT granted "
                        "AND relation = 'sv_state'::regclass")
            return cur.fetchone()[0]
    finally:
        con.close()


@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"lock-down recorded in the store \(by another daemon\?\): locking down",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_two_daemons_one_pgsql_store(daemon_factory):
    a = daemon_factory(driver="pgsql")
    b = daemon_factory(driver="pgsql", db_name=a.db_name)
    recs = []
    with a.client() as ca, b.client() as cb:
        for i in range(10):
            r = Record({"name": "n%d" % i, "ssn": "s%d" % i})
            c = ca if i % 2 else cb
            recs.append(r.stored(c.store(r.uuid, r.store_fields())))
        ids = [f.share_id for r in recs for f in r.fields]
        assert len(set(ids)) == len(ids)
        for i, r in enumerate(recs):
            c = cb if i % 2 else ca  # decrypt on the other daemon
            assert [pt for pt, _ in c.decrypt(r.uuid, "pat", r.decrypt_fields())] == \
                [f.value for f in r.fields]
        # lock-down on a reaches b (at its next decrypt, and within a second)
        assert a.ctl("lockdown").returncode == 0
        with pytest.raises(DaemonError) as e:
            cb.decrypt(recs[0].uuid, "pat", recs[0].decrypt_fields())
        assert e.value.code == WERR["LOCKED_DOWN"]
        wait_until(lambda: b.ctl_status()["locked"] == "1", 10, "b did not lock down")
        # intake still works on both
        r = Record({"x": "y"})
        assert cb.store(r.uuid, r.store_fields())
        # unlock both
        assert a.ctl("unlock").returncode == 0
        assert b.ctl("unlock").returncode == 0
        assert cb.decrypt(recs[1].uuid, "pat", recs[1].decrypt_fields())
    b.db_name = None  # a drops the shared database at teardown


def store_lock_row(d):
    con = d.pg.connect(d.db_name)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT locked, locked_since FROM sv_state WHERE id = 1")
            return cur.fetchone()
    finally:
        con.close()


@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"lock-down recorded in the store \(by another daemon\?\): locking down",
    r"test hook: housekeeping every \d+ ms",
    r"unlock refused: the store records a lock-down \(since \d+\) this daemon had",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
@needs_test_hooks
def test_unlock_does_not_lift_another_daemons_lockdown_not_yet_seen(daemon_factory):
    """b locks down; a, whose housekeeping has not picked that up yet (a
    test hook makes its rounds an hour apart), is told to unlock: it
    refuses, adopts b's lock-down and audits it, and lifts it only when
    told again. An unlock with nothing locked anywhere is a no-op."""
    a = daemon_factory(driver="pgsql", start=False)
    a.start(env=dict(os.environ, SVD_TEST_HOUSE_PERIOD_MS="3600000"))
    b = daemon_factory(driver="pgsql", db_name=a.db_name)
    try:
        p = a.ctl("unlock")
        assert p.returncode == 0 and "note=was not locked" in p.stdout, p.stdout
        assert b.ctl("lockdown").returncode == 0
        since = int(b.ctl_status()["locked_since"])
        assert store_lock_row(a) == (True, since)
        st = a.ctl_status()
        assert st["locked"] == "0" and st["house_rounds"] == "0"  # not seen here yet
        p = a.ctl("unlock")
        assert p.returncode == 1 and ("another lock-down is recorded in the store (since %d"
                                      % since) in p.stdout, p.stdout
        assert store_lock_row(a) == (True, since)
        st = a.ctl_status()
        assert st["locked"] == "1" and st["locked_since"] == str(since)
        text = a.audit_path.read_text()
        assert "event=lockdown why=store source=store since=%d" % since in text
        assert "event=unlock" not in text
        with a.client() as c:
            r = Record({"x": "y"})
            r.stored(c.store(r.uuid, r.store_fields()))
            with pytest.raises(DaemonError) as e:
                c.decrypt(r.uuid, "pat", r.decrypt_fields())
            assert e.value.code == WERR["LOCKED_DOWN"]
        # told again, after a look: lifted, here and in the store
        p = a.ctl("unlock")
        assert p.returncode == 0 and "locked=0" in p.stdout, p.stdout
        assert store_lock_row(a) == (False, 0) and a.ctl_status()["locked"] == "0"
        assert "event=unlock outcome=ok" in a.audit_path.read_text()
        # b keeps its own lock-down in memory until it is unlocked itself
        assert b.ctl_status()["locked"] == "1"
        assert b.ctl("unlock").returncode == 0 and b.ctl_status()["locked"] == "0"
    finally:
        b.db_name = None  # a drops the shared database at teardown


# What a daemon logs while its database is down: whichever statement
# meets the closed connection fails, and it reconnects.
PG_DOWN = (
    r"(STORE|DECRYPT|RELEASE|CONFIRM) record=\S+ .*failed in the store",
    r"store: (BEGIN|COMMIT|ROLLBACK|query \d+|statement \d+) failed: ",
    r"store: reconnect failed \(next attempt in a second at the earliest\):",
    r"store: the pgsql connection is broken; reconnecting",
)


@pytest.mark.log_allows(*PG_DOWN)
def test_pgsql_restart_daemon_reconnects(daemon_factory, pg):
    """The database goes away and comes back: requests in between fail with
    a store error (nothing half-done), then the daemon reconnects by itself."""
    d = daemon_factory(driver="pgsql")
    r = Record({"name": "before"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
    pg.stop()
    try:
        with d.client() as c:
            r2 = Record({"name": "during"})
            with pytest.raises(DaemonError) as e:
                c.store(r2.uuid, r2.store_fields())
            assert e.value.code == WERR["STORE"]
            with pytest.raises(DaemonError) as e:
                c.decrypt(r.uuid, "pat", r.decrypt_fields())
            assert e.value.code == WERR["STORE"]
    finally:
        pg.start()
    with d.client() as c:
        r3 = Record({"name": "after"})

        def stored():
            try:
                return r3.stored(c.store(r3.uuid, r3.store_fields()))
            except DaemonError:
                return None

        wait_until(stored, 20, "the daemon did not reconnect", interval=0.2)
        assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == b"before"
        assert c.decrypt(r3.uuid, "pat", r3.decrypt_fields())[0][0] == b"after"
    # every reader connection broke with the restart, most of them unused
    # since: concurrent requests, which take several readers, all succeed
    outs = []

    def one():
        try:
            with d.client() as c2:
                outs.append(c2.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0])
        except DaemonError as e:
            outs.append(e)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outs == [b"before"] * 8, outs


@pytest.mark.log_allows(*PG_DOWN)
def test_pgsql_down_concurrent_readers_reconnect_safely(daemon_factory, pg):
    """With the database down, many requests at once fail on the reader
    connections and each failure reconnects its reader. A reader being
    reconnected stays taken: no second thread may pick it up meanwhile
    (two threads in one connection's pool crashed the daemon)."""
    d = daemon_factory(driver="pgsql", extra={"store": {"readers": 2}})
    r = Record({"name": "kept"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
    pg.stop()
    failures = []

    def hammer():
        try:
            with d.client() as c:
                end = time.monotonic() + 3
                while time.monotonic() < end:
                    try:
                        c.status()
                    except DaemonError as e:
                        assert e.code == WERR["STORE"], e
        except Exception as e:  # noqa: BLE001 -- reported below
            failures.append(repr(e))

    try:
        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        pg.start()
    assert not failures, failures
    assert d.alive()
    with d.client() as c:
        def decrypted():
            try:
                return c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0]
            except DaemonError as e:
                assert e.code == WERR["STORE"], e
                return None

        assert wait_until(decrypted, 20, "the daemon did not reconnect", interval=0.2) \
            == b"kept"


@pytest.mark.log_allows(
    r"store: query \d+ failed: ERROR:  canceling statement due to statement",
    # the shared limiter's admission reads the lock-down row too
    r"DECRYPT record=\S+ actor=pat refused: admission failed in the store \(the shared",
)
def test_hung_store_times_out_and_control_answers(daemon_factory):
    """A store that hangs (here: its lock-down row locked by another
    session) fails requests after store.timeout instead of holding them for
    ever, and the control socket answers meanwhile: the lock sync runs on
    its own thread. The connection is kept (the statement failed, not the
    connection)."""
    d = daemon_factory(driver="pgsql", extra={"store": {"timeout": "1s"}})
    r = Record({"name": "x"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
    blocker = d.pg.connect(d.db_name)
    blocker.autocommit = False
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE sv_state IN ACCESS EXCLUSIVE MODE")
        # the housekeeping thread is stuck in its sync now: its statement
        # waits for the lock
        wait_until(lambda: waiting_on_sv_state(d), 10,
                   "the daemon's lock sync did not reach the locked table")
        t0 = time.monotonic()
        st = d.ctl_status()
        assert time.monotonic() - t0 < 2 and st["locked"] == "0"
        with d.client() as c:
            t0 = time.monotonic()
            with pytest.raises(DaemonError) as e:
                c.decrypt(r.uuid, "pat", r.decrypt_fields())
            assert e.value.code == WERR["STORE"]
            assert time.monotonic() - t0 < 5
    finally:
        blocker.rollback()
        blocker.close()
    with d.client() as c:
        assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == b"x"
    assert "reconnect" not in d.log_text()
