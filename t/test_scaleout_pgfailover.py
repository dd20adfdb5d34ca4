"""PostgreSQL failover under intake (docs/scale-out.md).

One httpd whose DBDParams and one daemon whose pgsql store name both a
primary and its synchronous standby (host=a,b port=p,q
target_session_attrs=read-write). Intake runs in a stream while the
primary dies (an immediate stop, as a crash) and the standby is promoted:
during a bounded window a visitor sees either a receipt for a record that
the new primary holds, or the clear "not stored, please try again" page,
never a receipt for a record that is not there; then intake goes on
against the new primary by itself, and every acknowledged record opens
(the raw rows with key1 and the daemon's key2b, and through the staff
decrypt page)."""
import itertools
import threading
import time

import pytest

from svtest import core
from svtest.core import wait_until
from svtest.data import open_field
from svtest.fixtures_daemon import WERR, Daemon, DaemonError, Record
from svtest.fixtures_httpd import Stack, _daemon_factory

# What the module and the daemon log while the primary is gone: the
# statement that meets the dead connection fails, the next connection is
# made to whichever host accepts writes.
FAILOVER_LOG = (
    r"SV011(0\d|10): ",
    r"\[dbd:error\] .*AH0(0629|0639|2655): ",
    r"(STORE|DECRYPT|RELEASE|CONFIRM) record=\S+ .*failed in the store",
    r"store: (BEGIN|COMMIT|ROLLBACK|query \d+|statement \d+) failed: ",
    r"store: reconnect failed \(next attempt in a second at the earliest\):",
    r"store: the pgsql connection is broken; reconnecting",
    r"SV01714: splitvaultd refused STORE: store failed \(share store unavailable\)",
)

# After the promotion, intake must succeed again within this many seconds.
RECOVERY_S = 30


@pytest.fixture
def failover_pg(workdir):
    pair = core.PgFailover(workdir / "pg")
    yield pair
    pair.stop()


@pytest.fixture
def failover_sv(request, failover_pg, pki, workdir):
    d = workdir / "stack"
    d.mkdir()
    d.chmod(0o755)
    s = Stack(d, failover_pg, pki, _daemon_factory(request, pki, failover_pg),
              daemon_options={"driver": "pgsql"},
              # one address submits the whole stream
              directives={"SplitVaultIntakeThrottle": "Off"})
    yield s
    s.teardown()


@pytest.mark.log_allows(*FAILOVER_LOG)
def test_promote_standby_during_intake(failover_sv, failover_pg):
    sv, pair = failover_sv, failover_pg
    sv.allowed_errors += list(FAILOVER_LOG)
    assert "target_session_attrs=read-write" in sv.httpd.dbd_params()
    acked, refused = {}, 0
    n = itertools.count()

    def submit():
        i = next(n)
        values = {"name": "visitor %d" % i, "ssn": "%09d" % i}
        r = sv.submit(values)
        if r.status == 200:
            ref = sv.ref_of(r)
            assert ref, r.text
            acked[ref] = values
            return True
        assert r.status == 503 and "NOT stored" in r.text \
            and "try again" in r.text, (r.status, r.text)
        return False

    for _ in range(5):
        assert submit()
    pair.primary.wait_replayed(pair.standby)
    # the stream goes on while the primary dies and the standby takes over
    done = threading.Event()
    errors = []

    def fail_over():
        try:
            pair.fail_over()
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)
        finally:
            done.set()

    t = threading.Thread(target=fail_over)
    t.start()
    while not done.is_set():
        if not submit():
            refused += 1
    t.join()
    assert not errors, errors
    promoted = time.monotonic()
    # a bounded window, then intake works again, several times in a row
    streak = []

    def recovered():
        if submit():
            streak.append(1)
        else:
            streak.clear()
        return len(streak) >= 5

    wait_until(recovered, RECOVERY_S, "intake did not recover after the promotion",
               interval=0.1)
    window = time.monotonic() - promoted
    assert not pair.primary.in_recovery()
    # every acknowledged record is on the new primary and opens
    stored = {r[0] for r in sv.db.query("SELECT ref FROM records")}
    missing = set(acked) - stored
    assert not missing, "receipts for records the new primary lacks: %s" % sorted(missing)
    for ref, values in acked.items():
        for field, value in values.items():
            assert open_field(sv, ref, field) == value.encode()
    # and through the module and the daemon: key1 loaded, a record decrypted
    assert sv.upload_key1().status == 303
    staff = sv.login("pat")
    ref = sorted(acked)[-1]
    page = sv.decrypt(staff, ref)
    assert page.status == 200, page.text
    assert sv.decrypted_values(page)["name"] == acked[ref]["name"]
    print("acknowledged %d, refused %d, recovered %.1fs after the promotion"
          % (len(acked), refused, window))


@pytest.mark.log_allows(
    *FAILOVER_LOG,
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"lock-down recorded in the store",
    r"unlocked by control-uid-\d+: decrypts allowed again",
    r"DECRYPT record=\S+ actor=pat refused: (admission failed in the store|locked down)",
)
def test_lockdown_and_shares_survive_promotion(failover_pg, pki, workdir):
    """A lock-down recorded before the primary dies is in the promoted
    standby's store: a daemon started afresh on it is locked down, stores
    still, and decrypts once unlocked; shares stored before the failover
    decrypt through reader connections made again after it."""
    pair = failover_pg
    d = Daemon(workdir / "daemon", pki, pair, driver="pgsql").start()
    try:
        r = Record({"name": "before"})
        with d.client() as c:
            r.stored(c.store(r.uuid, r.store_fields()))
        assert d.ctl("lockdown").returncode == 0
        pair.fail_over()
        d.restart()
        assert d.ctl_status()["locked"] == "1"
        with d.client() as c:
            def stored():
                try:
                    return r2.stored(c.store(r2.uuid, r2.store_fields()))
                except DaemonError as e:
                    assert e.code == WERR["STORE"], e
                    return None

            r2 = Record({"name": "after"})
            wait_until(stored, RECOVERY_S, "no STORE after the promotion", interval=0.2)
            with pytest.raises(DaemonError) as e:
                c.decrypt(r.uuid, "pat", r.decrypt_fields())
            assert e.value.code == WERR["LOCKED_DOWN"]
        assert d.ctl("unlock").returncode == 0
        with d.client() as c:
            assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == b"before"
            assert c.decrypt(r2.uuid, "pat", r2.decrypt_fields())[0][0] == b"after"
    finally:
        d.teardown()
