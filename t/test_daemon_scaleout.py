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
