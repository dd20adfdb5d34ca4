"""kill -9 during a burst of STOREs: every share the daemon acknowledged is
in the store after a restart (a STORE is answered only after its COMMIT),
with the right record, field, public key and key2b."""
import threading

import pytest

from svtest.core import wait_until
from svtest.fixtures_daemon import Record


# killed between an audit entry and its head: confirmed at the restart
@pytest.mark.log_allows(r"entries after the recorded head \(a crash between log and head writes\)")
def test_kill9_during_store_burst(daemon_factory, store_driver):
    d = daemon_factory(driver=store_driver)
    acked = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(k):
        try:
            with d.client() as c:
                while not stop.is_set():
                    r = Record({"name": "w%d" % k, "ssn": "s", "notes": "n" * 100})
                    ids = c.store(r.uuid, r.store_fields())
                    with lock:
                        acked.append((r.stored(ids)))
        except Exception:
            pass  # the connection dies with the daemon

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    # kill in the middle of the burst: once a good number were acknowledged
    # (slow under valgrind), with writers still going
    wait_until(lambda: len(acked) >= 60, 120, "the writers did not get going")
    d.kill9()
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acked) > 20, "too few STOREs acknowledged before the kill"
    d.start()
    rows = d.shares()
    missing = []
    for r in acked:
        for f in r.fields:
            row = rows.get(f.share_id)
            if row is None:
                missing.append(f.share_id)
                continue
            assert row["uuid"] == r.uuid and row["field"] == f.name
            assert row["pub"] == f.pub and row["key2b"] == f.key2b
    assert not missing, "acknowledged shares lost: %s" % missing[:20]
    # and the daemon works on after the crash
    with d.client() as c:
        r = acked[-1]
        out = c.decrypt(r.uuid, "pat", r.decrypt_fields())
        assert [pt for pt, _ in out] == [f.value for f in r.fields]
    assert d.ctl("audit-verify").returncode == 0
