"""splitvaultd share store: STORE / DECRYPT / RELEASE / reconcile round
trips, the same tests against both drivers (sqlite3 and pgsql). Released
and reconciled shares are retired (never used again, restorable), not
deleted: t/test_daemon_retention.py tests the retention, purge and
restore, t/test_daemon_roles.py what each client role may do."""
import uuid

import pytest

from svtest.core import wait_until
from svtest.fixtures_daemon import ACTIVE, PENDING, DaemonError, Record, WERR
import hpke_ref


def refused(fn):
    with pytest.raises(DaemonError) as e:
        fn()
    return e.value


@pytest.fixture
def d(daemon_factory, store_driver):
    return daemon_factory(driver=store_driver)


def test_store_then_decrypt_round_trip(d):
    rec = Record({"name": "Ada Lovelace", "ssn": "078-05-1120", "notes": "x" * 5000})
    with d.client() as c:
        ids = c.store(rec.uuid, rec.store_fields())
        assert len(ids) == 3 and len(set(ids)) == 3 and all(ids)
        rec.stored(ids)
        out = c.decrypt(rec.uuid, "pat", rec.decrypt_fields())
    assert [pt for pt, _ in out] == [f.value for f in rec.fields]
    assert all(nid == 0 for _, nid in out)
    rows = d.shares()
    for f in rec.fields:
        row = rows[f.share_id]
        assert row["uuid"] == rec.uuid and row["field"] == f.name
        assert row["pub"] == f.pub and row["key2b"] == f.key2b and row["state"] == ACTIVE


def test_stored_row_opens_with_reference_hpke(d):
    """The stored format end to end: raw daemon row + key2a + ciphertext
    open with an independent HPKE implementation."""
    rec = Record({"card": "4111111111111111"})
    with d.client() as c:
        rec.stored(c.store(rec.uuid, rec.store_fields()))
    f = rec.fields[0]
    row = d.shares()[f.share_id]
    sk2 = hpke_ref.combine(f.key2a, row["key2b"])
    assert hpke_ref.public_key(sk2) == row["pub"]
    assert hpke_ref.open_datum(sk2, rec.uuid, "card", f.enc, f.ct) == b"4111111111111111"


@pytest.mark.log_allows(r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(name, share \d+\):")
def test_rotate_on_use_pending_then_release(d):
    rec = Record({"name": "Grace", "ssn": "123-45-6789"})
    with d.client() as c:
        rec.stored(c.store(rec.uuid, rec.store_fields()))
        old = [f.share_id for f in rec.fields]
        out = c.decrypt(rec.uuid, "pat", rec.decrypt_fields(rotate=True))
        new = [nid for _, nid in out]
        assert all(new) and not set(new) & set(old)
        rows = d.shares()
        assert all(rows[i]["state"] == PENDING for i in new)
        assert all(rows[i]["state"] == ACTIVE for i in old)
        # a pending share referenced by the main DB (RELEASE lost) still decrypts
        pend = Record({"name": "Grace", "ssn": "123-45-6789"}, uuid=rec.uuid)
        for pf, f in zip(pend.fields, rec.fields):
            pf.share_id, pf.key2a, pf.enc, pf.ct = (None, f.next["key2a"], f.next["enc"],
                                                   f.next["ct"])
        pend.stored(new)
        assert [pt for pt, _ in c.decrypt(rec.uuid, "pat", pend.decrypt_fields())] == \
            [b"Grace", b"123-45-6789"]
        items = rec.commit_rotation(new)
        assert c.release(rec.uuid, items) == 2
        rows = d.shares()
        assert set(d.live()) == set(new)
        assert all(rows[i]["retired"] and rows[i]["why"] == "release" for i in old)
        assert all(rows[i]["state"] == ACTIVE and rows[i]["replaces"] == o
                   for i, o in zip(new, old))
        # idempotent
        assert c.release(rec.uuid, items) == 2
        assert d.shares() == rows
        out = c.decrypt(rec.uuid, "pat", rec.decrypt_fields())
        assert [pt for pt, _ in out] == [b"Grace", b"123-45-6789"]
        # the released shares are retired: the old key material no longer opens
        stale = Record({"name": "Grace"}, uuid=rec.uuid)
        stale.fields[0].share_id = old[0]
        e = refused(lambda: c.decrypt(rec.uuid, "pat", stale.decrypt_fields()))
        assert e.code == WERR["REFUSED"]


def test_release_only_drops_own_record_and_field(d):
    a = Record({"name": "A", "ssn": "1"})
    b = Record({"name": "B"})
    with d.client() as c:
        a.stored(c.store(a.uuid, a.store_fields()))
        b.stored(c.store(b.uuid, b.store_fields()))
        out = c.decrypt(a.uuid, "pat", a.decrypt_fields(rotate=True, names={"name"}))
        pend = out[0][1]
        before = d.shares()
        assert before[pend]["state"] == PENDING
        # wrong record, wrong field: nothing retired, nothing activated
        c.release(b.uuid, [("name", pend, 0)])
        c.release(a.uuid, [("ssn", pend, 0)])
        with d.reconciler() as r:
            r.release(b.uuid, [("name", 0, pend)])
        assert d.shares() == before
        # the rotation undone: the pending share is retired, the old one stays
        c.release(a.uuid, [("name", pend, 0)])
        live = d.live()
        assert pend not in live and a.fields[0].share_id in live
        assert d.shares()[pend]["why"] == "undo"


@pytest.mark.log_allows(r"RELEASE record=\S+: \d+ item\(s\) not done \(an active share is retired")
def test_release_never_deletes_an_active_share_on_its_own(d):
    """RELEASE retires an active share only as the second half of its own
    rotation: when the same item activates the pending share that a DECRYPT
    made to replace exactly that share. Any other active share stays
    (reconcile, with its grace period, retires unreferenced ones); the
    refusal is in the log and the audit entry."""
    r = Record({"name": "N", "ssn": "S"})
    other = Record({"name": "O"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
        other.stored(c.store(other.uuid, other.store_fields()))
        old_name, old_ssn = (f.share_id for f in r.fields)
        # drop alone; drop with an active keep; drop with a keep of another
        # record or field: the active share stays every time
        c.release(r.uuid, [("name", old_name, 0)])
        c.release(r.uuid, [("name", old_name, old_ssn)])
        c.release(r.uuid, [("ssn", old_ssn, other.fields[0].share_id)])
        out = c.decrypt(other.uuid, "pat", other.decrypt_fields(rotate=True))
        other_pending = out[0][1]
        c.release(r.uuid, [("name", old_name, other_pending)])
        rows = d.live()
        assert {old_name, old_ssn, other.fields[0].share_id, other_pending} <= set(rows)
        assert rows[other_pending]["state"] == PENDING
        # the rotation committed: the new share activated, the old one retired
        out = c.decrypt(r.uuid, "pat", r.decrypt_fields(rotate=True))
        items = r.commit_rotation([nid for _, nid in out])
        assert c.release(r.uuid, items) == 2
        rows = d.live()
        assert old_name not in rows and old_ssn not in rows
        assert all(rows[f.share_id]["state"] == ACTIVE for f in r.fields)
        assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == b"N"
        # a pending share activated earlier (reconcile's RELEASE keep): the
        # old share is then only retired by reconcile
        prev = r.fields[0].share_id
        out = c.decrypt(r.uuid, "pat", r.decrypt_fields(rotate=True, names={"name"}))
        new = out[0][1]
        with d.reconciler() as rc:
            rc.release(r.uuid, [("name", 0, new)])
        c.release(r.uuid, [("name", prev, new)])
        assert prev in d.live() and d.live()[new]["state"] == ACTIVE
    # a RELEASE's outcome entry is queued after its answer (its "requested"
    # entry was the one waited for)
    assert d.wait_audit("refused=1 ", count=5).count("refused=1 ") >= 5
    assert "not done (an active share is retired only by the rotation" in d.log_text()


@pytest.mark.log_allows(
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(name, share \d+\):",
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(ssn, share \d+\):",
)
def test_all_refusals_look_the_same(d):
    """Swapped record uuid, field, share id, ciphertext and a wrong key2a
    all give the same answer; the reason is only in the local log."""
    a = Record({"name": "Alice", "ssn": "111-11-1111"})
    b = Record({"name": "Bob", "ssn": "222-22-2222"})
    with d.client() as c:
        a.stored(c.store(a.uuid, a.store_fields()))
        b.stored(c.store(b.uuid, b.store_fields()))
        fa = a.decrypt_fields()
        fb = b.decrypt_fields()
        cases = {
            # a's fields presented as record b
            "uuid": (b.uuid, fa),
            # field names swapped within a record
            "field": (a.uuid, [(fa[0][0], "ssn") + fa[0][2:], (fa[1][0], "name") + fa[1][2:]]),
            # b's share id with a's key2a/ciphertext
            "share": (a.uuid, [(fb[0][0],) + fa[0][1:]]),
            # wrong key2a
            "key2a": (a.uuid, [fa[0][:2] + (bytes(32),) + fa[0][3:]]),
            # b's ciphertext under a's share
            "ct": (a.uuid, [fa[0][:3] + fb[0][3:5] + (None,)]),
            # unknown share id
            "unknown": (a.uuid, [(999999,) + fa[0][1:]]),
            # one good field and one bad: all or nothing
            "partial": (a.uuid, [fa[0], fa[1][:2] + (bytes(32),) + fa[1][3:]]),
        }
        answers = {}
        for name, (u, fields) in cases.items():
            e = refused(lambda: c.decrypt(u, "pat", fields))
            answers[name] = (e.code, e.msg, e.retry_ms)
        # the connection stays usable, and the good request still works
        assert [pt for pt, _ in c.decrypt(a.uuid, "pat", fa)] == [b"Alice", b"111-11-1111"]
    assert len(set(answers.values())) == 1, answers
    assert answers["uuid"][0] == WERR["REFUSED"]
    log = d.log_text()
    for why in ("record-mismatch", "field-mismatch", "key-mismatch", "open-failed",
                "unknown-share"):
        assert why in log
    # no secret in the log
    for f in a.fields + b.fields:
        assert f.key2a.hex() not in log and f.key2b.hex() not in log
        assert f.value.decode() not in log


def test_reconcile_lists_and_retires_only_old_unreferenced(d):
    old = Record({"name": "orphan", "ssn": "orphan"})
    young = Record({"name": "young"})
    with d.client() as w, d.reconciler() as c:
        old.stored(w.store(old.uuid, old.store_fields()))
        young.stored(w.store(young.uuid, young.store_fields()))
        d.age_shares(7200, [f.share_id for f in old.fields])
        listed, more = c.recon_list(3600)
        assert not more
        assert [e[0] for e in listed] == [f.share_id for f in old.fields]
        assert listed[0][1] == old.uuid and listed[0][2] == "name" and listed[0][3] == ACTIVE
        # paging
        first, more = c.recon_list(3600, 0, 1)
        assert more and len(first) == 1
        nxt, more = c.recon_list(3600, first[0][0], 1)
        assert not more and nxt[0][0] == old.fields[1].share_id
        # a wrong record or field never retires; a young share never
        assert c.recon_delete(3600, [(old.fields[0].share_id, young.uuid, "name")]) == 0
        assert c.recon_delete(3600, [(old.fields[0].share_id, old.uuid, "ssn")]) == 0
        assert c.recon_delete(3600, [(young.fields[0].share_id, young.uuid, "name")]) == 0
        n = c.recon_delete(3600, [(f.share_id, old.uuid, f.name) for f in old.fields])
        assert n == 2
        # retired shares are listed no more
        assert c.recon_list(3600) == ([], False)
    assert set(d.live()) == {young.fields[0].share_id}
    assert all(d.shares()[f.share_id]["why"] == "reconcile" for f in old.fields)


def test_reconcile_minimum_grace_enforced(daemon_factory, store_driver):
    d = daemon_factory(driver=store_driver, min_grace="1h")
    rec = Record({"name": "x"})
    with d.client() as w, d.reconciler() as c:
        rec.stored(w.store(rec.uuid, rec.store_fields()))
        d.age_shares(1800)
        # the client asks for 0 s grace: the daemon still keeps 1 h
        assert c.recon_list(0) == ([], False)
        assert c.recon_delete(0, [(rec.fields[0].share_id, rec.uuid, "name")]) == 0
    assert rec.fields[0].share_id in d.live()


def test_persistence_across_restart_and_status(d):
    rec = Record({"name": "persist", "ssn": "999"})
    with d.client() as c:
        rec.stored(c.store(rec.uuid, rec.store_fields()))
        st = c.status()
        assert st["shares_active"] == 2 and st["stores"] == 1 and st["locked"] == 0
    d.restart()
    with d.client() as c:
        out = c.decrypt(rec.uuid, "pat", rec.decrypt_fields())
        assert [pt for pt, _ in out] == [b"persist", b"999"]
    # ids are never reused, even after the highest is deleted (purged)
    d.stop()
    d.sql("UPDATE shares SET retired = 1 WHERE id = %d" % rec.fields[1].share_id)
    d.sql("DELETE FROM shares WHERE id = %d" % rec.fields[1].share_id)
    d.start()
    with d.client() as c:
        r2 = Record({"n": "y"})
        (nid,) = c.store(r2.uuid, r2.store_fields())
        assert nid > rec.fields[1].share_id


def test_many_requests_on_one_connection(d):
    with d.client() as c:
        recs = []
        for i in range(50):
            r = Record({"f%d" % (i % 3): "v%d" % i})
            recs.append(r.stored(c.store(r.uuid, r.store_fields())))
        for r in recs:
            assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == r.fields[0].value


def files_holding(d, needle):
    hits = []
    for f in sorted(d.state.glob("shares.db*")):
        if needle in f.read_bytes():
            hits.append(f.name)
    return hits


@pytest.mark.log_allows(
    r"retention\.period is \d+: retired shares are purged at once, and nothing",
)
def test_purged_key2b_leaves_the_sqlite_files(daemon_factory):
    """sqlite3: a released or reconciled share's key2b (hex in the store),
    once purged at the end of its retention, is overwritten in the database
    file (secure_delete) and gone from the WAL (checkpointed with TRUNCATE
    after deletions) within moments, not kept until the WAL happens to be
    overwritten. retention.period 0: purged at once."""
    d = daemon_factory(retention="0")
    r = Record({"ssn": "123-45-6789", "name": "N"})
    with d.client() as c, d.reconciler() as rc:
        r.stored(c.store(r.uuid, r.store_fields()))
        old = {f.name: f.key2b.hex().encode() for f in r.fields}
        out = c.decrypt(r.uuid, "pat", r.decrypt_fields(rotate=True, names={"ssn"}))
        assert files_holding(d, old["ssn"])
        c.release(r.uuid, r.commit_rotation([out[0][1], 0]))
        d.age_shares(1000, [r.fields[1].share_id])
        assert rc.recon_delete(0, [(r.fields[1].share_id, r.uuid, "name")]) == 1
    wait_until(lambda: not files_holding(d, old["ssn"]) and not files_holding(d, old["name"]),
               5, "the retired key2b are still in the store's files", interval=0.1)
    # the kept share's key2b is still there, and readable
    assert files_holding(d, r.fields[0].key2b.hex().encode())
    with d.client() as c:
        assert c.decrypt(r.uuid, "pat", r.decrypt_fields(names={"ssn"}))[0][0] == b"123-45-6789"
    d.stop()
    assert not files_holding(d, old["ssn"]) and not files_holding(d, old["name"])


@pytest.mark.log_allows(r"control: share ids raised: new shares get ids above \d+")
def test_raise_ids_on_an_empty_store_and_never_down(d):
    """splitvaultctl raise-ids N: new shares get ids above N, on a store
    that never held a share too (sqlite3 has no sequence record yet: an
    UPDATE of it alone would change nothing); a lower N changes nothing.
    Root or control.admin_group only; audited before and after."""
    p = d.ctl("raise-ids", "5000", check=True)
    assert "ok" in p.stdout and "seq=5000" in p.stdout, p.stdout
    r = Record({"name": "N", "ssn": "S"})
    with d.client() as c:
        ids = c.store(r.uuid, r.store_fields())
    assert min(ids) == 5001, ids
    p = d.ctl("raise-ids", "10", check=True)
    assert "seq=5002" in p.stdout, p.stdout
    r2 = Record({"name": "M"})
    with d.client() as c:
        assert c.store(r2.uuid, r2.store_fields()) == [5003]
    # again after a restart (the sequence is the store's, not the process's)
    d.restart()
    assert "seq=6000" in d.ctl("raise-ids", "6000", check=True).stdout
    with d.client() as c:
        r3 = Record({"name": "L"})
        assert c.store(r3.uuid, r3.store_fields()) == [6001]
    for bad in ("0", "-1", "x", "01", "9223372036854775807"):
        p = d.ctl("raise-ids", bad)
        assert p.returncode == 2 and "not a share id" in p.stderr, (bad, p.stderr)
    text = d.wait_audit("event=raise-ids outcome=ok", count=3)
    assert "event=raise-ids outcome=requested value=5000 source=" in text
    assert "event=raise-ids outcome=ok value=10 seq=5002 source=" in text
