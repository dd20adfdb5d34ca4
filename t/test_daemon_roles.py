"""Client roles: what each client certificate may ask the daemon.

frontend (the web server): STORE, DECRYPT, RELEASE of its own rotations,
CONFIRM, STATUS. reconcile (the admin's machine): RECON_LIST, RECON_DELETE,
RECON_SCAN, RELEASE that activates a pending share, STATUS. monitor: STATUS. Anything
else is refused with NOT_ALLOWED before its body is read, the connection
closed, and the refusal audited (summarised like other refusals). Both
store drivers.
"""
import re
import uuid as uuidlib

import pytest

import svwire as w
from svtest.fixtures_daemon import WERR, DaemonError, Record, _uuid16


@pytest.fixture
def d(daemon_factory, store_driver):
    return daemon_factory(driver=store_driver)


def one_of_each(d):
    """A valid request of every type, against a stored, rotated record."""
    r = Record({"name": "N", "ssn": "S"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
        out = c.decrypt(r.uuid, "pat", r.decrypt_fields(rotate=True, names={"ssn"}))
    pend = out[0][1]
    u = _uuid16(r.uuid)
    n, s = r.fields
    fresh = Record({"x": "y"})
    return {
        "STORE": w.Store(_uuid16(fresh.uuid), [w.StoreField(f.name, f.pub, f.key2b)
                                               for f in fresh.fields]),
        "DECRYPT": w.Decrypt(u, "pat", 0, [w.DecryptField(n.share_id, "name", n.key2a, n.enc,
                                                          n.ct)]),
        "RELEASE-rotation": w.Release(u, [w.ReleaseItem("ssn", s.share_id, pend)]),
        "RELEASE-activate": w.Release(u, [w.ReleaseItem("ssn", 0, pend)]),
        "STATUS": w.Status(),
        "RECON_LIST": w.ReconList(0, 0, 10),
        "RECON_DELETE": w.ReconDelete(0, [w.ReconRef(n.share_id, u, "name")]),
        "CONFIRM": w.Confirm(u, "uma", [w.ConfirmItem(n.share_id, "name", n.pub)]),
        "RECON_SCAN": w.ReconScan(0, 10),
    }


ALLOWED = {
    "frontend": {"STORE", "DECRYPT", "RELEASE-rotation", "STATUS", "CONFIRM"},
    "reconcile": {"RELEASE-activate", "STATUS", "RECON_LIST", "RECON_DELETE", "RECON_SCAN"},
    "monitor": {"STATUS"},
}


@pytest.mark.log_allows(
    r"RELEASE record=\S+ refused: a frontend client may not activate shares",
    r"STORE refused: not allowed for a monitor client \(certificate",
    r"STORE refused: not allowed for a reconcile client \(certificate",
    r"\d+ more refusals \(not-allowed\) from [\d.]+ in the last \d+ s",
)
@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_may_send_only_its_requests(d, role):
    reqs = one_of_each(d)
    cert = "default" if role == "frontend" else role
    for name, m in reqs.items():
        before = d.shares()
        with d.client(cert) as c:
            try:
                c.call(m)
                code = None
            except DaemonError as e:
                code = e.code
            if name in ALLOWED[role]:
                assert code != WERR["NOT_ALLOWED"], (role, name)
            else:
                assert code == WERR["NOT_ALLOWED"], (role, name, code)
                assert c.closed_by_peer(), (role, name)
                # refused before anything was done
                assert d.shares() == before, (role, name)
    text = d.wait_audit("why=not-allowed")
    assert ("why=not-allowed peer=127.0.0.1" in text and
            ("role=%s" % role) in text), text
    # logged once; the rest are summarised
    assert ("a %s client" % role) in d.log_text()


@pytest.mark.log_allows(
    r"RELEASE record=\S+ refused: a frontend client may not activate shares",
    r"\d+ more refusals \(not-allowed\) from [\d.]+ in the last \d+ s",
)
def test_release_items_follow_the_role(d):
    """A front end may not activate a pending share on its own (its RELEASE
    names the share the rotation replaces); reconcile may not retire
    anything by RELEASE; no request mixes both. Each is NOT_ALLOWED, whole,
    with nothing changed."""
    r = Record({"name": "N", "ssn": "S"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
        out = c.decrypt(r.uuid, "pat", r.decrypt_fields(rotate=True))
    pn, ps = (nid for _, nid in out)
    n, s = r.fields
    before = d.shares()
    cases = [
        ("default", [("name", 0, pn)]),
        ("default", [("name", n.share_id, pn), ("ssn", 0, ps)]),
        ("reconcile", [("name", n.share_id, pn)]),
        ("reconcile", [("name", pn, 0)]),
        ("reconcile", [("name", 0, pn), ("ssn", s.share_id, ps)]),
    ]
    for cert, items in cases:
        with d.client(cert) as c:
            with pytest.raises(DaemonError) as e:
                c.release(r.uuid, items)
            assert e.value.code == WERR["NOT_ALLOWED"], (cert, items)
            assert c.closed_by_peer()
    assert d.shares() == before
    # each side's own request goes through
    with d.client() as c:
        c.release(r.uuid, [("name", n.share_id, pn)])
    with d.reconciler() as rc:
        rc.release(r.uuid, [("ssn", 0, ps)])
    live = d.live()
    assert n.share_id not in live and live[pn]["state"] == 1 and live[ps]["state"] == 1
    assert s.share_id in live  # reconcile retires it later, as an orphan


@pytest.mark.log_allows(r"TLS handshake refused: certificate-not-listed")
def test_unlisted_and_foreign_certificates_get_nothing(daemon_factory, pki):
    """A daemon that lists only a monitor: the module's certificate is
    refused at the handshake."""
    d = daemon_factory(roles={"monitor": [pki.monitor_cert]})
    with d.client("monitor") as c:
        assert c.status()["locked"] == 0
    with pytest.raises(Exception):
        with d.client() as c:
            c.status()


@pytest.mark.log_allows(
    r"CONFIRM record=\S+ actor=\S+: share\(s\) \d+ not confirmed \(unknown,",
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"\d+ more refusals \(confirm-mismatch\) from [\d.]+ in the last \d+ s",
)
def test_confirm_answers_only_for_the_right_key(d):
    """CONFIRM: 1 only for a share of that record and field, in use, with
    that key2 public; a mismatch is audited (as a refusal). Works while
    locked down."""
    a = Record({"name": "A", "ssn": "1"})
    b = Record({"name": "B"})
    with d.client() as c:
        a.stored(c.store(a.uuid, a.store_fields()))
        b.stored(c.store(b.uuid, b.store_fields()))
        n, s = a.fields
        assert c.confirm(a.uuid, "uma", [(n.share_id, "name", n.pub),
                                         (s.share_id, "ssn", s.pub)]) == [1, 1]
        # another key, another record's share, another field, unknown id
        assert c.confirm(a.uuid, "uma", [(n.share_id, "name", b.fields[0].pub)]) == [0]
        assert c.confirm(a.uuid, "uma", [(b.fields[0].share_id, "name", b.fields[0].pub)]) \
            == [0]
        assert c.confirm(a.uuid, "uma", [(n.share_id, "ssn", n.pub)]) == [0]
        assert c.confirm(a.uuid, "uma", [(999999, "name", n.pub)]) == [0]
        # a retired share is not in use: a rotation finished
        out = c.decrypt(a.uuid, "pat", a.decrypt_fields(rotate=True, names={"name"}))
        old = n.share_id
        c.release(a.uuid, a.commit_rotation([out[0][1], 0]))
        assert c.confirm(a.uuid, "uma", [(old, "name", d.shares()[old]["pub"])]) == [0]
        assert c.confirm(a.uuid, "uma", [(a.fields[0].share_id, "name", a.fields[0].pub)]) \
            == [1]
    assert d.ctl("lockdown").returncode == 0
    with d.client() as c:
        assert c.confirm(a.uuid, "uma", [(s.share_id, "ssn", s.pub)]) == [1]
    # mismatches are refusals: the first at once, with who and what; the
    # rest summarised (a client cannot flood the audit log with them)
    text = d.wait_audit("why=confirm-mismatch")
    assert "event=refusal why=confirm-mismatch peer=127.0.0.1 actor=uma record=%s" % a.uuid \
        in text
    assert "event=confirm" not in text  # confirmed keys are not audited
    assert "not confirmed" in d.log_text()


@pytest.mark.log_allows(
    r"CONFIRM record=\S+ actor=\S+: share\(s\) \d+ not confirmed \(unknown,",
    r"\d+ more refusals \(confirm-mismatch\) from [\d.]+ in the last \d+ s",
)
def test_confirm_answers_each_item_of_a_large_request(d):
    """CONFIRM of 3, 5 and 32 items at once (the store's look-ups of
    several shares, which leave key2b out): each item answered on its
    own."""
    r = Record({"f%02d" % i: str(i) for i in range(32)})
    other = Record({"x": "1"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
        other.stored(c.store(other.uuid, other.store_fields()))
        items = [(f.share_id, f.name, f.pub) for f in r.fields]
        for k in (3, 5, 32):
            assert c.confirm(r.uuid, "uma", items[:k]) == [1] * k
        bad = list(items)
        bad[1] = (bad[1][0], bad[1][1], other.fields[0].pub)  # another key
        bad[4] = (other.fields[0].share_id, bad[4][1], bad[4][2])  # another record's
        bad[30], bad[31] = ((bad[30][0], "f31", bad[30][2]),  # fields swapped
                            (bad[31][0], "f30", bad[31][2]))
        assert c.confirm(r.uuid, "uma", bad[:3]) == [1, 0, 1]
        assert c.confirm(r.uuid, "uma", bad[:5]) == [1, 0, 1, 1, 0]
        assert c.confirm(r.uuid, "uma", bad) == [1, 0, 1, 1, 0] + [1] * 25 + [0, 0]


def test_combined_roles_refused_unless_said(daemon_factory, pki):
    d = daemon_factory(start=False, roles={"frontend": [pki.client_cert],
                                           "reconcile": [pki.client_cert]})
    p = d.check()
    assert p.returncode == 1 and "listed with two roles (frontend+reconcile)" in p.stderr
    d.config["clients"]["allow_combined_roles"] = True
    d.write_config()
    d.start()
    r = Record({"x": "1"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
        assert c.recon_list(0) == ([], False)  # both roles: allowed


def test_recon_scan_lists_every_share_read_only(d):
    """RECON_SCAN (check): every share, retired ones included, with when it
    was retired, a page at a time; no key material; each page audited."""
    r = Record({"name": "N", "ssn": "S"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
        out = c.decrypt(r.uuid, "pat", r.decrypt_fields(rotate=True, names={"ssn"}))
        n, s = r.fields
        c.release(r.uuid, [("ssn", s.share_id, out[0][1])])  # the rotation finishes
    before = d.shares()
    assert before[s.share_id]["retired"] and before[out[0][1]]["state"] == 1
    with d.reconciler() as c:
        first = c.call(w.ReconScan(0, 2))
        rest = c.call(w.ReconScan(first.entries[-1].id, 1000))
    assert first.more == 1 and rest.more == 0 and first.total == 3
    assert rest.total == 0 and first.min_grace_s == 900
    got = {e.id: e for e in first.entries + rest.entries}
    assert set(got) == set(before)
    for i, sh in before.items():
        e = got[i]
        assert (str(uuidlib.UUID(bytes=e.uuid)), e.name, e.state, e.created, e.retired) == \
            (sh["uuid"], sh["field"], sh["state"], sh["created"], sh["retired"])
    assert d.shares() == before  # read-only
    # the first page of a peer is audited at once, with its ids; later
    # ones are counted, one entry per audit.refusal_period (here: at stop)
    text = d.wait_audit("event=recon-scan")
    assert "event=recon-scan why=listed peer=127.0.0.1 after=0 listed=2 first=%d last=%d " \
        "more=1" % (first.entries[0].id, first.entries[1].id) in text
    d.stop()
    assert "event=recon-scan why=listed peer=127.0.0.1 count=1 period=" in d.audit_path.read_text()


@pytest.mark.log_allows(r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until")
def test_recon_scan_flood_does_not_grow_the_audit_log(d):
    """A stolen reconcile certificate asking for pages at will (limit 1,
    from the start each time, while locked down) gets one audit entry at
    once and counts after it, not an entry per page."""
    r = Record({"name": "N", "ssn": "S"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
    assert d.ctl("lockdown").returncode == 0
    before = d.audit_path.stat().st_size
    with d.reconciler() as c:
        for i in range(3000):
            assert len(c.call(w.ReconScan(0 if i % 2 else 1, 1)).entries) == 1
    d.stop()
    lines = [l for l in d.audit_path.read_text().splitlines() if "event=recon-scan" in l]
    # one at once, then one count per period (10 s) and the last at stop
    assert 2 <= len(lines) <= 6, lines
    assert "after=0 listed=1" in lines[0] or "after=1 listed=1" in lines[0]
    assert sum(int(re.search(r" count=(\d+) ", l).group(1)) for l in lines[1:]) == 2999
    assert d.audit_path.stat().st_size - before < 4000


@pytest.mark.log_allows(
    r"RECON_SCAN refused: \d+ bytes free, below store\.min_free \(\d+\);",
    r"\d+ more refusals \(no-space\) from [\d.]+ in the last \d+ s",
)
def test_recon_scan_refused_below_the_watermark(d):
    """Below store.min_free, RECON_SCAN is refused like STORE: the room
    left is for decrypts, lock-down and unlock."""
    d.stop()
    d.config["store"]["min_free"] = "1000000GiB"
    d.write_config()
    d.start()
    with d.reconciler() as c:
        for _ in range(3):
            with pytest.raises(DaemonError) as e:
                c.call(w.ReconScan(0, 10))
            assert e.value.code == WERR["NO_SPACE"]
    text = d.wait_audit("why=no-space")
    assert "event=refusal why=no-space peer=127.0.0.1 type=RECON_SCAN free=" in text
    assert "event=recon-scan" not in text
