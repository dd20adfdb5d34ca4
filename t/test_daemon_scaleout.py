"""Two daemons sharing one pgsql store (scale-out): shares stored through
one decrypt through the other, ids never collide, and a lock-down recorded
by one stops decrypts on the other."""
import time

import pytest

from svtest.fixtures_daemon import DaemonError, Record, WERR


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
        time.sleep(1.5)
        assert b.ctl_status()["locked"] == "1"
        # intake still works on both
        r = Record({"x": "y"})
        assert cb.store(r.uuid, r.store_fields())
        # unlock both
        assert a.ctl("unlock").returncode == 0
        assert b.ctl("unlock").returncode == 0
        assert cb.decrypt(recs[1].uuid, "pat", recs[1].decrypt_fields())
    b.db_name = None  # a drops the shared database at teardown


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
        deadline = time.monotonic() + 20
        while True:
            try:
                r3 = Record({"name": "after"})
                r3.stored(c.store(r3.uuid, r3.store_fields()))
                break
            except DaemonError:
                assert time.monotonic() < deadline, "the daemon did not reconnect"
                time.sleep(0.2)
        assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == b"before"
        assert c.decrypt(r3.uuid, "pat", r3.decrypt_fields())[0][0] == b"after"
