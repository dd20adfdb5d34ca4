"""The front end cannot destroy what it cannot read.

An attacker who holds the web server (its client certificate, key1, the
main database: every key2a, share id and ciphertext) talks to the daemon
with the front end's certificate. Whatever it sends, in whatever order,
locked down or not, no share the main database references becomes
unrecoverable: every such share is still on the daemon, in use or retired
(restorable, and never purged while locked down); the only way to retire
a referenced share is to finish a rotation of it, which takes a real
DECRYPT of it and so is bounded by the limiter; and every retirement is in
the audit log. Both store drivers, locked and unlocked.
"""
import os
import random
import re
import ssl
import uuid as uuidlib

import pytest

import hpke_ref
import svwire as w
from svtest.core import wait_until
from svtest.fixtures_daemon import WERR, DaemonError, Record, _uuid16


def victims(d, n=3):
    """Records as the main database holds them: {(uuid, field): Field}."""
    recs = [Record({"name": "victim %d" % i, "ssn": "%03d-00-0000" % i, "notes": "n" * i})
            for i in range(n)]
    with d.client() as c:
        for r in recs:
            r.stored(c.store(r.uuid, r.store_fields()))
    return recs


class Attacker:
    """The web host gone bad: the front end's certificate and everything
    the main database holds."""

    def __init__(self, d, recs, seed):
        self.d = d
        self.recs = recs
        self.rng = random.Random(seed)
        self.c = None
        self.rotated = {}      # pending id -> the share its DECRYPT replaced
        self.answers = {}      # answer kind -> count
        self.pool = [f.share_id for r in recs for f in r.fields]

    def conn(self):
        if self.c is None:
            self.c = self.d.client()
        return self.c

    def send(self, m):
        try:
            a = self.conn().call(m)
            kind = type(a).__name__
        except DaemonError as e:
            kind = e.name
            if e.code in (WERR["NOT_ALLOWED"], WERR["BAD_REQUEST"]):
                self.close()
            a = None
        except (ConnectionError, OSError, ssl.SSLError, w.WireError):
            self.close()
            kind, a = "closed", None
        self.answers[kind] = self.answers.get(kind, 0) + 1
        return a

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None

    # -- what the attacker can make ------------------------------------------
    def some_id(self):
        r = self.rng.random()
        if r < 0.7 and self.pool:
            return self.rng.choice(self.pool)
        if r < 0.85 and self.rotated:
            return self.rng.choice(list(self.rotated))
        return self.rng.randint(1, 10 ** 6)

    def some_record(self):
        if self.rng.random() < 0.85:
            return self.rng.choice(self.recs)
        return Record({"name": "planted"})

    def rotate(self, rec, names=None):
        """A real decrypt of a victim, with rotation (it has key2a)."""
        a = self.send(w.Decrypt(_uuid16(rec.uuid), "pat", 0, [
            w.DecryptField(sid, n, k2a, enc, ct, rot is not None,
                           rot[0] if rot else None, rot[1] if rot else None)
            for sid, n, k2a, enc, ct, rot in rec.decrypt_fields(rotate=True, names=names)]))
        if a is not None:
            fs = [f for f in rec.fields if names is None or f.name in names]
            for f, o in zip(fs, a.outs):
                if o.new_share_id:
                    self.rotated[o.new_share_id] = f.share_id
                    self.pool.append(o.new_share_id)
        return a

    def random_request(self):
        rec = self.some_record()
        u = _uuid16(rec.uuid)
        names = [f.name for f in rec.fields]
        k = self.rng.randrange(9)
        if k == 0:   # plant shares for an existing record and field
            self.send(w.Store(u, [w.StoreField(n, os.urandom(32), os.urandom(32))
                                  for n in self.rng.sample(names, self.rng.randint(1, len(names)))]))
        elif k == 1:  # a real rotation of a victim field
            if rec in self.recs:
                self.rotate(rec, {self.rng.choice(names)})
        elif k == 2:  # a decrypt with another share id or a wrong key2a
            f = self.rng.choice(rec.fields)
            self.send(w.Decrypt(u, "pat", 0, [w.DecryptField(
                self.some_id(), f.name, f.key2a if self.rng.random() < .5 else os.urandom(32),
                f.enc, f.ct, True, os.urandom(32), os.urandom(32))]))
        elif k in (3, 4, 5):  # RELEASE with any ids it knows
            items, used = [], set()
            for n in self.rng.sample(names, self.rng.randint(1, len(names))):
                drop, keep = self.some_id(), self.some_id() if self.rng.random() < .6 else 0
                if self.rng.random() < 0.1:
                    drop = 0
                if (drop == 0 and keep == 0) or drop == keep or {drop, keep} & used:
                    continue
                used |= {drop, keep} - {0}
                items.append(w.ReleaseItem(n, drop, keep))
            if items:
                self.send(w.Release(u, items))
        elif k == 6:  # reconcile's requests
            if self.rng.random() < 0.5:
                self.send(w.ReconList(0, 0, 1000))
            else:
                ids = sorted({self.some_id() for _ in range(5)})
                self.send(w.ReconDelete(0, [w.ReconRef(i, u, self.rng.choice(names))
                                            for i in ids]))
        elif k == 7:
            self.send(w.Confirm(u, "uma", [w.ConfirmItem(self.some_id(), names[0],
                                                         os.urandom(32))]))
        else:
            self.send(w.Status())


def referenced(recs):
    return {f.share_id: (r, f) for r in recs for f in r.fields}


def check_nothing_lost(d, recs, attacker):
    """Every referenced share is still on the daemon; the retired ones were
    each replaced by a real rotation; and every retirement is audited."""
    rows = d.shares()
    ref = referenced(recs)
    missing = [i for i in ref if i not in rows]
    assert not missing, "referenced shares gone: %s" % missing
    retired_ref = {i for i in ref if rows[i]["retired"]}
    replaced = set(attacker.rotated.values())
    assert retired_ref <= replaced, retired_ref - replaced
    for i in retired_ref:
        assert rows[i]["why"] == "release"
        # the share that replaced it is the pending one of its own rotation
        assert any(rows[p]["replaces"] == i for p in attacker.rotated if p in rows)
    # audited: the retirements the audit log reports are all there is (a
    # RELEASE's outcome entry is not waited for: it reaches the file with a
    # group commit, so wait for the count, never past it)
    discarded = len([s for s in rows.values() if s["why"] == "discard"])
    want = len([s for s in rows.values() if s["retired"]]) - discarded

    def reported():
        text = d.audit_path.read_text() if d.audit_path.exists() else ""
        return (sum(int(n) for n in re.findall(r"event=release outcome=ok .*?retired=(\d+)",
                                               text))
                + sum(int(n) for n in re.findall(r"event=reconcile outcome=ok .*?retired=(\d+)",
                                                 text)))

    wait_until(lambda: reported() >= want, 15, "the retirements' audit entries")
    assert reported() == want
    return retired_ref


def restore_and_read(d, recs, via_daemon=True):
    """The sysadmin restores every retired share and unlocks: each victim
    opens again from the main database's own rows, the daemon's shares
    in use again (through a DECRYPT, or, where the limiter would make the
    test wait, with the reference HPKE from the store's key2b)."""
    p = d.ctl("restore", "--all")
    assert p.returncode == 0, p.stdout + p.stderr
    d.ctl("unlock")
    if via_daemon:
        with d.client() as c:
            for r in recs:
                out = c.decrypt(r.uuid, "pat", r.decrypt_fields())
                assert [pt for pt, _ in out] == [f.value for f in r.fields]
        return
    live = d.live()
    for r in recs:
        for f in r.fields:
            sk2 = hpke_ref.combine(f.key2a, live[f.share_id]["key2b"])
            assert hpke_ref.open_datum(sk2, r.uuid, f.name, f.enc, f.ct) == f.value


@pytest.mark.log_allows(
    r"CONFIRM record=\S+ actor=\S+: share\(s\) \d+ not confirmed \(unknown,",
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(name, share \d+\):",
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(notes, share \d+\):",
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(ssn, share \d+\):",
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"RECON_DELETE refused: not allowed for a frontend client \(certificate",
    r"RELEASE record=\S+: \d+ item\(s\) not done \(an active share is retired",
    r"STORE record=\S+ fields=name refused: the record has shares already \(more",
    r"\d+ more refusals \(confirm-mismatch\) from [\d.]+ in the last \d+ s",
    r"\d+ more refusals \(decrypt-locked-down\) from [\d.]+ in the last \d+ s",
    r"\d+ more refusals \(not-allowed\) from [\d.]+ in the last \d+ s",
    r"\d+ more refusals \(store-exists\) from [\d.]+ in the last \d+ s",
    r"control: \d+ retired share\(s\) restored \(since \d+\) by control-uid-\d+",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_no_request_sequence_destroys_a_referenced_share(daemon_factory, store_driver, locked):
    d = daemon_factory(driver=store_driver)
    recs = victims(d)
    if locked:
        assert d.ctl("lockdown").returncode == 0
    a = Attacker(d, recs, seed=hash((store_driver, locked)) & 0xffff)
    # the two known attacks first, then every kind of request at random
    for r in recs:
        for f in r.fields:
            a.send(w.ReconDelete(0, [w.ReconRef(f.share_id, _uuid16(r.uuid), f.name)]))
            a.send(w.Store(_uuid16(r.uuid), [w.StoreField(f.name, os.urandom(32),
                                                          os.urandom(32))]))
    r0 = recs[0]
    a.rotate(r0, {"name"})
    planted = [p for p, old in a.rotated.items() if old != r0.fields[0].share_id]
    a.send(w.Release(_uuid16(r0.uuid), [w.ReleaseItem("ssn", r0.fields[1].share_id,
                                                      planted[0] if planted else 10 ** 6)]))
    # a rotation finished without the main database's commit: the record's
    # referenced shares are retired (what an attacker can do, at the rate)
    r1 = recs[1]
    out = a.rotate(r1)
    if out is not None:
        a.send(w.Release(_uuid16(r1.uuid), [w.ReleaseItem(f.name, f.share_id, o.new_share_id)
                                            for f, o in zip(r1.fields, out.outs)]))
    for _ in range(400):
        a.random_request()
    a.close()
    retired = check_nothing_lost(d, recs, a)
    assert a.answers.get("NOT_ALLOWED", 0) > 0 and a.answers.get("EXISTS", 0) > 0, a.answers
    if locked:
        # nothing could be decrypted, so nothing referenced could be retired
        assert not retired and not a.rotated, (retired, a.answers)
        assert a.answers.get("LOCKED_DOWN", 0) > 0
    else:
        # the attacker did rotate and retire referenced shares: restorable
        assert a.rotated and retired, a.answers
        assert {f.share_id for f in r1.fields} <= retired
    # never purged while locked down, whatever the retention
    restore_and_read(d, recs)


@pytest.mark.log_allows(
    r"LOCK-DOWN \(decrypt-pressure, from [\d.]+\): decrypts refused until",
    r"control: \d+ retired share\(s\) restored \(since \d+\) by control-uid-\d+",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_retiring_referenced_shares_is_bounded_by_the_limiter(daemon_factory, store_driver):
    """Retiring a referenced share takes a real rotation of it: at the
    daemon's rate and within its budgets. An attacker rotating as fast as
    it can gets the burst, then locks the daemon down."""
    d = daemon_factory(driver=store_driver, rate_global=("15s", 3), rate_actor=("15s", 3),
                       lockdown_threshold=2, queue_max=2)
    recs = victims(d, n=6)
    a = Attacker(d, recs, seed=7)
    for r in recs:
        out = a.rotate(r)
        if out is not None:
            a.send(w.Release(_uuid16(r.uuid), [
                w.ReleaseItem(f.name, f.share_id, o.new_share_id)
                for f, o in zip(r.fields, out.outs)]))
    a.close()
    retired = check_nothing_lost(d, recs, a)
    assert len(retired) <= 3 * 3  # at most the burst of rotations, of 3 fields each
    assert d.ctl_status()["locked"] == "1"
    assert "event=lockdown" in d.audit_path.read_text()
    restore_and_read(d, recs, via_daemon=False)


@pytest.mark.log_allows(
    r"RELEASE record=\S+: \d+ item\(s\) not done \(an active share is retired",
    r"control: \d+ retired share\(s\) restored \(record \S+\) by control-uid-\d+",
    r"control: \d+ retired share\(s\) restored \(since \d+\) by control-uid-\d+",
)
def test_a_restored_share_cannot_be_retired_again_by_an_old_rotation(daemon_factory,
                                                                      store_driver):
    """Two rotations of one share: finishing one retires the share and
    supersedes the other pending share; after the sysadmin restores the
    record, no pending share left over can retire it again (a restored
    pending share is bound to nothing)."""
    d = daemon_factory(driver=store_driver)
    (r,) = victims(d, 1)
    a = Attacker(d, [r], seed=1)
    f = r.fields[0]
    a.rotate(r, {f.name})
    a.rotate(r, {f.name})
    p1, p2 = sorted(a.rotated)
    a.send(w.Release(_uuid16(r.uuid), [w.ReleaseItem(f.name, f.share_id, p1)]))
    rows = d.shares()
    assert rows[f.share_id]["why"] == "release" and rows[p2]["why"] == "superseded"
    assert d.ctl("restore", "--record", r.uuid).returncode == 0
    rows = d.live()
    assert f.share_id in rows and rows[p2]["state"] == 2 and rows[p2]["replaces"] == 0
    # the left-over pending share: retires nothing, activates nothing
    for keep in (p2, p1):
        a.send(w.Release(_uuid16(r.uuid), [w.ReleaseItem(f.name, f.share_id, keep)]))
    a.send(w.Release(_uuid16(r.uuid), [w.ReleaseItem(f.name, p2, 0)]))  # nor undone
    a.close()
    live = d.live()
    assert f.share_id in live and live[p2]["state"] == 2
    restore_and_read(d, [r])


@pytest.mark.log_allows(r"RELEASE record=\S+: \d+ item\(s\) not done \(an active share is retired")
def test_old_pending_shares_are_reconciles(daemon_factory, store_driver):
    """A front end acts only on pending shares of the rotation window
    (reconcile.min_grace): an older one it can neither activate in place
    of its share nor undo; reconcile activates it if a record references
    it."""
    d = daemon_factory(driver=store_driver)
    (r,) = victims(d, 1)
    a = Attacker(d, [r], seed=2)
    f, g = r.fields[0], r.fields[1]
    a.rotate(r, {f.name, g.name})
    pf = next(p for p, old in a.rotated.items() if old == f.share_id)
    pg = next(p for p, old in a.rotated.items() if old == g.share_id)
    d.age_shares(15 * 60 + 60, [pf, pg])
    a.send(w.Release(_uuid16(r.uuid), [w.ReleaseItem(f.name, f.share_id, pf)]))
    a.send(w.Release(_uuid16(r.uuid), [w.ReleaseItem(g.name, pg, 0)]))
    a.close()
    live = d.live()
    assert {f.share_id, g.share_id, pf, pg} <= set(live)
    assert live[pf]["state"] == 2 and live[pg]["state"] == 2
    assert "refused=1" in d.wait_audit("refused=1", count=2)
    with d.reconciler() as rc:
        rc.release(r.uuid, [(f.name, 0, pf)])
    assert d.live()[pf]["state"] == 1


def test_only_retired_shares_can_be_deleted(daemon_factory, store_driver):
    """The store itself refuses to delete a share in use (an older daemon's
    RELEASE, a mistake at the SQL prompt); a retired one goes."""
    d = daemon_factory(driver=store_driver)
    (r,) = victims(d, 1)
    sid = r.fields[0].share_id
    with pytest.raises(Exception) as e:
        d.sql("DELETE FROM shares WHERE id = %d" % sid)
    assert "only a retired share may be deleted" in str(e.value)
    assert sid in d.live()
    d.sql("UPDATE shares SET retired = 1 WHERE id = %d" % sid)
    d.sql("DELETE FROM shares WHERE id = %d" % sid)
    assert sid not in d.shares()


@pytest.mark.log_allows(
    r"STORE record=\S+ fields=brand_new_field refused: the record has shares",
    r"\d+ more refusals \(store-exists\) from [\d.]+ in the last \d+ s",
)
def test_store_makes_new_records_only(daemon_factory, store_driver):
    """A record that has shares gets no more from STORE, whatever the field
    names; concurrent STOREs of one record: one wins."""
    import threading
    d = daemon_factory(driver=store_driver)
    (r,) = victims(d, 1)
    with d.client() as c:
        with pytest.raises(DaemonError) as e:
            c.store(r.uuid, [("brand_new_field", os.urandom(32), os.urandom(32))])
        assert e.value.code == WERR["EXISTS"]
    fresh = str(uuidlib.uuid4())
    results = []

    def store(i):
        try:
            with d.client() as c:
                results.append(c.store(fresh, [("f%d" % i, os.urandom(32), os.urandom(32))]))
        except DaemonError as e:
            results.append(e.code)

    ts = [threading.Thread(target=store, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert len([x for x in results if isinstance(x, list)]) == 1, results
    assert results.count(WERR["EXISTS"]) == 5, results
    assert len([s for s in d.shares().values() if s["uuid"] == fresh]) == 1
