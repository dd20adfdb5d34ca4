"""Decryption by privileged staff, with rotate-on-use, through the real
httpd, PostgreSQL and splitvaultd.

Shown here: the values come back exactly as submitted or updated (non-ASCII,
maximum length, markup); every decrypt gives every field a new share, key2
and envelopes, which the independent HPKE opens, and the old shares are gone
from the daemon; the daemon's rate limit, queue and lock-down reach staff as
plain pages and the daemon's unlock restores service; a child killed between
the daemon's answer and the commit loses nothing, and reconcile removes what
it left; swapped rows fail cleanly; a concurrent update is never lost; a
COMMIT whose answer is lost never costs the shares the rows reference.
"""
import re
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "pylib"))
import hpke_ref  # noqa: E402
from svtest.core import wait_until  # noqa: E402
from svtest.fixtures_httpd import STAFF, PgProxy, needs_test_hooks  # noqa: E402
from svtest.data import GOOD  # noqa: E402

PASS = "decrypt tests passphrase"


def rows(sv, ref):
    """{field: (share_id, key2_pub, enc, ct, wrap_enc, wrap_ct, key1_fp, version)}"""
    out = {}
    for r in sv.db.query(
            "SELECT f.name, f.share_id, f.key2_pub, f.enc, f.ct, f.wrap_enc, f.wrap_ct, "
            "f.key1_fp, f.version FROM fields f JOIN records r ON r.id = f.record_id "
            "WHERE r.ref = %s", (ref,)):
        out[r[0]] = (r[1],) + tuple(bytes(x) for x in r[2:7]) + (r[7], r[8])
    return out


def uuid_of(sv, ref):
    return sv.db.query("SELECT uuid::text FROM records WHERE ref = %s", (ref,))[0][0]


def open_stored(sv, ref, field):
    """Open one stored field from raw rows, key1's PEM and the daemon's key2b."""
    share, pub, enc, ct, wenc, wct, fp, _ = rows(sv, ref)[field]
    uuid = uuid_of(sv, ref)
    sk1, _ = hpke_ref.load_key1_private_pem(sv.key1.pem.read_bytes(), sv.key1.passphrase)
    key2a = hpke_ref.unwrap_key2a(sk1, uuid, field, share, wenc, wct)
    key2b = sv.daemon.key2b(share)
    assert key2b is not None, "share %d is not on the daemon" % share
    sk2 = hpke_ref.combine(key2a, key2b)
    assert hpke_ref.public_key(sk2) == pub
    return hpke_ref.open_datum(sk2, uuid, field, enc, ct).decode("utf-8")


def ready(sv_factory, **kw):
    """A stack with key1 loaded; returns (sv, pat's client)."""
    sv = sv_factory(key1_passphrase=PASS, **kw)
    r = sv.upload_key1()
    assert r.status == 303, r.text
    return sv, sv.login("pat")


def update(sv, client, ref, field, value):
    page = client.get(sv.path("/staff/record/" + ref))
    return client.post(sv.path("/staff/record/%s/update" % ref),
                       {"csrf": page.csrf(), "field": field, "value": value})


def test_decrypt_submitted_and_updated_values_and_rotation(sv_factory):
    sv, pat = ready(sv_factory)
    values = {"name": "é" * 200,                       # maximum length, 2-byte characters
              "ssn": "<b>&'\"x</b>" + "9" * 9,         # markup, exactly 20 characters
              "notes": "Zoë 🌍 naïve\r\nline two\n\n" + "🌍" * 1977}
    assert len(values["ssn"]) == 20 and len(values["notes"]) == 2000
    ref = sv.ref_of(sv.submit(values))
    assert ref
    new_name = "José Ñúñez " + "字" * 189                 # updated, 200 characters
    assert update(sv, sv.login("uma"), ref, "name", new_name).status == 303
    expect = dict(values, name=new_name)
    before = rows(sv, ref)
    shares_before = sv.daemon.live()

    r = sv.decrypt(pat, ref)
    assert r.status == 200, r.text
    assert sv.decrypted_values(r) == expect
    assert r.header("Cache-Control") == "no-store"
    assert "<b>&" not in r.text and "&lt;b&gt;&amp;&#39;&quot;x" in r.text

    after = rows(sv, ref)
    shares = sv.daemon.live()
    for field in expect:
        old, new = before[field], after[field]
        assert new[0] != old[0], "share id not rotated"
        assert new[1] != old[1], "key2 public not rotated"
        assert new[2] != old[2] and new[3] != old[3], "datum envelope not rotated"
        assert new[4] != old[4] and new[5] != old[5], "wrapped key2a not rotated"
        assert new[7] == old[7] + 1
        assert old[0] not in shares, "old share still on the daemon"
        assert shares[new[0]]["state"] == 1 and shares[new[0]]["pub"] == new[1]
        # the new envelopes open with the independent implementation
        assert open_stored(sv, ref, field) == expect[field]
    assert len(shares) == len(shares_before)  # nothing pending, nothing orphaned
    # audited on both sides, never the values
    audit = sv.db.query("SELECT actor, outcome FROM audit WHERE action = 'decrypt' "
                        "ORDER BY id")
    assert audit == [("pat", "started"), ("pat", "ok")]
    everything = " ".join(str(x) for row in sv.db.query("SELECT * FROM audit") for x in row)
    daemon_audit = sv.daemon.audit_path.read_text()
    assert "event=decrypt outcome=ok actor=pat" in daemon_audit
    logs = sv.httpd.log_text() + sv.httpd.access_log.read_text() + sv.daemon.log_text()
    for v in ("José", "Zoë", "078-05", "9" * 9):
        assert v not in everything and v not in logs and v not in daemon_audit

    # and again: the rotated record decrypts, and rotates once more
    r = sv.decrypt(pat, ref)
    assert r.status == 200 and sv.decrypted_values(r) == expect
    again = rows(sv, ref)
    assert all(again[f][0] != after[f][0] for f in expect)
    assert len(sv.daemon.live()) == 3


def test_decrypt_page_order_and_reference_errors(sv_factory):
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    r = sv.decrypt(pat, ref)
    assert r.status == 200
    t = r.text
    assert t.index('id="value-name"') < t.index('id="value-ssn"') < t.index('id="value-notes"')
    assert "Shown once" in t
    # a record that does not exist
    page = pat.get(sv.path("/staff/record/" + ref))
    r = pat.post(sv.path("/staff/record/ZZZZZ-ZZZZZ/decrypt"), {"csrf": page.csrf()})
    assert r.status == 404


def test_large_record_splits_over_several_decrypts(sv_factory):
    """A record whose ciphertexts pass the 1 MiB DECRYPT body limit is sent
    in several DECRYPTs, rotated in one transaction."""
    fields = [("f%02d" % i, "Field %d" % i, "maxlength=16384 multiline") for i in range(18)]
    sv, pat = ready(sv_factory, fields=fields, directives={"SplitVaultMaxBody": "4194304"})
    assert "SV02113: a record of this form may need 2 DECRYPT requests" in sv.httpd.log_text()
    values = {name: chr(0x1F300 + i) * 16384 for i, (name, _, _) in enumerate(fields)}
    r = sv.submit(values)
    assert r.status == 200, r.text[:500]
    ref = sv.ref_of(r)
    before = rows(sv, ref)
    r = sv.decrypt(pat, ref, timeout=120)
    assert r.status == 200, r.text[:2000]
    assert sv.decrypted_values(r) == values
    after = rows(sv, ref)
    assert all(after[f][0] != before[f][0] for f in values)
    assert sv.db.query("SELECT detail FROM audit WHERE action = 'decrypt' AND outcome = 'ok'") \
        == [("fields=18 requests=2 rotated",)]
    assert sv.daemon.audit_path.read_text().count("event=decrypt outcome=ok actor=pat") == 2
    assert len(sv.daemon.live()) == 18


@pytest.mark.log_allows(
    r"LOCK-DOWN \(decrypt-pressure, from [\d.]+\): decrypts refused until",
    r"\d+ more refusals \(decrypt-locked-down\) from [\d.]+ in the last \d+ s",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_rate_limit_queue_and_lockdown_seen_by_staff(sv_factory):
    """One decrypt per 2 s with a burst of 1; two waiting trip lock-down."""
    sv, pat = ready(sv_factory,
                    directives={"SplitVaultDecryptWait": "1"},
                    daemon_options=dict(rate_global=("2s", 1), rate_actor=None, queue_max=4,
                                        lockdown_threshold=2, queue_max_wait="10s"))
    refs = [sv.ref_of(sv.submit(GOOD)) for _ in range(7)]
    assert sv.decrypt(pat, refs[0]).status == 200
    # the next one waits in the daemon's queue past SplitVaultDecryptWait
    t0 = time.monotonic()
    r = sv.decrypt(pat, refs[1])
    assert r.status == 429, r.text
    assert "Queued, not served: rate limit" in r.text and "waited in its queue" in r.text
    assert time.monotonic() - t0 >= 0.9
    assert "Nothing was decrypted" in r.text
    # a burst: decrypts pile up in the queue until the daemon locks down
    clients = [sv.login("pat") for _ in range(5)]
    tokens = [c.get(sv.path("/staff/record/" + ref)).csrf() for c, ref in zip(clients, refs[2:])]
    results = [None] * 5
    start = threading.Barrier(5)

    def go(i):
        start.wait()
        results[i] = clients[i].post(sv.path("/staff/record/%s/decrypt" % refs[2 + i]),
                                     {"csrf": tokens[i]})

    threads = [threading.Thread(target=go, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = [x.status for x in results]
    assert any("LOCKED DOWN" in x.text for x in results), statuses
    assert all(s in (200, 429, 503) for s in statuses), statuses
    # locked: staff are told plainly, admins see it on the key location
    r = sv.decrypt(pat, refs[1])
    assert r.status == 503 and "LOCKED DOWN" in r.text and "unlocks it" in r.text
    keys = sv.login("ada").get(sv.keys_path())
    assert "LOCKED DOWN" in keys.text
    assert "LOCKED DOWN" in pat.get(sv.path("/staff/record/" + refs[1])).text
    outcomes = [o for (o,) in sv.db.query("SELECT outcome FROM audit WHERE action = 'decrypt'")]
    assert "rate limited" in outcomes and "locked down" in outcomes
    # every refused decrypt left nothing behind
    assert not [s for s in sv.daemon.live().values() if s["state"] == 2]
    # the sysadmin unlocks the daemon: service is back
    p = sv.daemon.ctl("unlock")
    assert p.returncode == 0, p.stdout + p.stderr

    def served():
        # until the next token (one per 2 s) comes, a decrypt waits its
        # second in the queue and is turned away, never locked down again
        r = sv.decrypt(pat, refs[1])
        assert r.status in (200, 429), r.text
        return r if r.status == 200 else None

    r = wait_until(served, 10, "no decrypt served after the unlock")
    assert sv.decrypted_values(r) == GOOD, r.text
    assert "Not locked down." in sv.login("ada").get(sv.keys_path()).text


@needs_test_hooks
def test_crash_between_answer_and_commit_loses_nothing(sv_factory):
    """The child dies after the daemon stored the new pending shares and
    before the commit: the record still decrypts with its old shares;
    reconcile removes the pending orphans, and nothing referenced."""
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    other = sv.ref_of(sv.submit(GOOD))
    before = rows(sv, ref)
    page = pat.get(sv.path("/staff/record/" + ref))
    with pytest.raises(Exception):
        r = pat.post(sv.path("/staff/record/%s/decrypt" % ref), {"csrf": page.csrf()},
                     headers={"X-SplitVault-Fault": "decrypt-crash"})
        raise AssertionError("the child answered: %d" % r.status)
    assert rows(sv, ref) == before  # nothing committed
    pending = {i: s for i, s in sv.daemon.live().items() if s["state"] == 2}
    assert len(pending) == 3
    assert {s["field"] for s in pending.values()} == set(GOOD)
    assert sv.db.query("SELECT outcome FROM audit WHERE action = 'decrypt' ORDER BY id") \
        == [("started",)]
    # reconcile: a dry run first changes nothing
    sv.daemon.age_shares(1000)  # past the daemon's minimum grace period
    p = sv.reconcile("--grace", "0")
    assert "dry run" in p.stdout and p.stdout.count("would retire") == 3, p.stdout
    assert len(sv.daemon.live()) == 9
    # a grace period longer than the orphans' age keeps them
    p = sv.reconcile("--grace", "3600", "--apply")
    assert "0 listed" in p.stdout and len(sv.daemon.live()) == 9
    p = sv.reconcile("--grace", "0", "--apply")
    assert "3 not referenced (3 retired)" in p.stdout, p.stdout
    assert "6 referenced and active" in p.stdout
    shares = sv.daemon.live()
    assert set(pending).isdisjoint(shares) and len(shares) == 6
    # the records still decrypt (with their old shares), and rotate
    for ref_ in (ref, other):
        r = sv.decrypt(pat, ref_)
        assert r.status == 200 and sv.decrypted_values(r) == GOOD
    sv.allowed_errors.append(r"SV02118")


@needs_test_hooks
def test_crashed_rotation_is_superseded_by_the_next(sv_factory):
    """The child dies after the daemon stored the new pending shares; the
    next decrypt of the record rotates its old shares again, and finishing
    that rotation retires the crashed one's pending shares (superseded):
    nothing is left for reconcile."""
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    page = pat.get(sv.path("/staff/record/" + ref))
    with pytest.raises(Exception):
        pat.post(sv.path("/staff/record/%s/decrypt" % ref), {"csrf": page.csrf()},
                 headers={"X-SplitVault-Fault": "decrypt-crash"})
    pending = {i for i, s in sv.daemon.live().items() if s["state"] == 2}
    assert len(pending) == 3
    r = sv.decrypt(pat, ref)
    assert r.status == 200 and sv.decrypted_values(r) == GOOD, r.text
    shares = sv.daemon.shares()
    assert all(shares[i]["why"] == "superseded" for i in pending)
    assert len(sv.daemon.live()) == 3
    sv.allowed_errors.append(r"SV02118")


@needs_test_hooks
def test_lost_release_is_finished_by_reconcile(sv_factory):
    """Committed, but the RELEASE never sent: the rows reference pending
    shares (still decryptable) and the old shares linger; reconcile
    activates the referenced ones and deletes the old ones."""
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    before = rows(sv, ref)
    r = sv.decrypt(pat, ref, headers={"X-SplitVault-Fault": "decrypt-no-release"})
    assert r.status == 200 and sv.decrypted_values(r) == GOOD
    after = rows(sv, ref)
    shares = sv.daemon.live()
    assert all(shares[after[f][0]]["state"] == 2 for f in GOOD)
    assert all(before[f][0] in shares for f in GOOD)
    sv.daemon.age_shares(1000)
    p = sv.reconcile("--grace", "0", "--apply")
    assert "3 referenced and pending (3 activated)" in p.stdout, p.stdout
    assert "3 not referenced (3 retired)" in p.stdout
    shares = sv.daemon.live()
    assert sorted(shares) == sorted(after[f][0] for f in GOOD)
    assert all(s["state"] == 1 for s in shares.values())
    # nothing left to do
    p = sv.reconcile("--grace", "0", "--apply")
    assert "0 referenced and pending" in p.stdout and "0 not referenced" in p.stdout
    r = sv.decrypt(pat, ref)
    assert r.status == 200 and sv.decrypted_values(r) == GOOD


def _swap(sv, ref_a, ref_b, field, columns):
    cols = ", ".join("%s = o.%s" % (c, c) for c in columns)
    sv.db.query(
        "UPDATE fields f SET %s FROM (SELECT f2.record_id, %s FROM fields f2 JOIN records r "
        "ON r.id = f2.record_id WHERE r.ref IN (%%s, %%s) AND f2.name = %%s) o "
        "WHERE f.name = %%s AND f.record_id IN (SELECT id FROM records WHERE ref IN (%%s, %%s)) "
        "AND o.record_id <> f.record_id" % (cols, ", ".join(columns)),
        (ref_a, ref_b, field, field, ref_a, ref_b))


@pytest.mark.parametrize("columns,why", [
    (("enc", "ct"), "daemon"),                            # the datum envelope
    (("wrap_enc", "wrap_ct"), "local"),                   # the wrapped key2a
    (("key2_pub", "enc", "ct", "wrap_enc", "wrap_ct"), "local"),  # all but the share id
])
@pytest.mark.log_allows(
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(ssn, share \d+\):",
    r"SV02109",
)
def test_swapped_rows_fail_cleanly(sv_factory, columns, why):
    sv, pat = ready(sv_factory)
    a = sv.ref_of(sv.submit(dict(GOOD, ssn="111-11-1111")))
    b = sv.ref_of(sv.submit(dict(GOOD, ssn="222-22-2222")))
    orig_a, orig_b = rows(sv, a), rows(sv, b)
    _swap(sv, a, b, "ssn", columns)
    swapped_a, swapped_b = rows(sv, a), rows(sv, b)
    assert swapped_a["ssn"] != orig_a["ssn"]
    n_shares = len(sv.daemon.live())
    for ref, swapped in ((a, swapped_a), (b, swapped_b)):
        r = sv.decrypt(pat, ref)
        assert r.status == 422, r.text
        assert "Decryption refused" in r.text and "Nothing was decrypted" in r.text
        assert "111-11" not in r.text and "222-22" not in r.text
        assert rows(sv, ref) == swapped  # nothing changed
    assert len(sv.daemon.live()) == n_shares  # no pending share left
    assert not [s for s in sv.daemon.live().values() if s["state"] == 2]
    refused = sv.db.query("SELECT detail FROM audit WHERE action = 'decrypt' AND "
                          "outcome = 'refused'")
    assert refused == [("daemon refused" if why == "daemon" else "key2a does not open",)] * 2
    # put the rows back: both decrypt again
    _swap(sv, a, b, "ssn", columns)
    for ref, ssn in ((a, "111-11-1111"), (b, "222-22-2222")):
        r = sv.decrypt(pat, ref)
        assert r.status == 200 and sv.decrypted_values(r)["ssn"] == ssn, r.text


def test_oversize_ciphertext_row_fails_cleanly(sv_factory):
    """A ct longer than any datum, written into the database with SQL, is
    refused on its length alone: the database is not even asked for the
    value, the module allocates nothing for it, nothing reaches the daemon,
    staff get a plain error page and the error log one line that says why."""
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    n_shares = len(sv.daemon.shares())
    sv.db.query("UPDATE fields SET ct = decode(repeat('ab', 1048576), 'hex') "
                "WHERE name = 'notes' AND record_id = (SELECT id FROM records WHERE ref = %s)",
                (ref,))
    before = rows(sv, ref)
    why = (r"SV02108: record %s cannot be decrypted: field notes: its ciphertext has 1048576 "
           r"bytes \(16 to 65552 expected\)" % ref)
    r = sv.decrypt(pat, ref)
    assert r.status == 500, r.text
    assert "cannot be read" in r.text and "Nothing was decrypted" in r.text
    assert GOOD["ssn"] not in r.text and "abab" not in r.text
    errors = sv.httpd.error_lines()
    assert len(errors) == 1 and re.search(why, errors[0]), errors
    sv.allowed_errors.append(why)
    assert rows(sv, ref) == before
    assert len(sv.daemon.shares()) == n_shares
    assert "event=decrypt" not in sv.daemon.wait_audit("event=store", 1)
    assert sv.db.query("SELECT outcome, detail FROM audit WHERE action = 'decrypt'") == \
        [("error", "unreadable rows")]


def test_too_many_field_rows_fail_cleanly(sv_factory):
    """Field rows added to a record with SQL, far more than a form may have,
    make it undecryptable: nothing reaches the daemon, staff get a plain
    error page and the error log one line that says why."""
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    n_shares = len(sv.daemon.shares())
    sv.db.query("INSERT INTO fields (record_id, name, key2_pub, enc, ct, share_id, wrap_enc, "
                "wrap_ct, key1_fp) SELECT record_id, 'x' || g, key2_pub, enc, ct, "
                "share_id + 1000000 + g, wrap_enc, wrap_ct, key1_fp FROM fields, "
                "generate_series(1, 2000) g WHERE name = 'notes' AND record_id = "
                "(SELECT id FROM records WHERE ref = %s)", (ref,))
    why = r"SV02108: record %s cannot be decrypted: more than 32 field rows" % ref
    sv.allowed_errors.append(why)
    r = sv.decrypt(pat, ref)
    assert r.status == 500 and "Nothing was decrypted" in r.text, r.text
    errors = sv.httpd.error_lines()
    assert len(errors) == 1 and re.search(why, errors[0]), errors
    assert len(sv.daemon.shares()) == n_shares
    assert "event=decrypt" not in sv.daemon.wait_audit("event=store", 1)


@pytest.mark.log_allows(r"SV02109")
def test_swapped_share_ids_fail_cleanly(sv_factory):
    sv, pat = ready(sv_factory)
    a = sv.ref_of(sv.submit(GOOD))
    b = sv.ref_of(sv.submit(GOOD))
    sa, sb = rows(sv, a)["name"][0], rows(sv, b)["name"][0]
    tmp = 10 ** 12
    for x, y in ((sa, tmp), (sb, sa), (tmp, sb)):  # through a free id (unique index)
        sv.db.query("UPDATE fields SET share_id = %s WHERE share_id = %s", (y, x))
    assert rows(sv, a)["name"][0] == sb
    for ref in (a, b):
        r = sv.decrypt(pat, ref)
        assert r.status == 422 and "Nothing was decrypted" in r.text


@needs_test_hooks
def test_concurrent_update_during_decrypt_is_kept(sv_factory):
    """An update that lands between the daemon's answer and the rotation's
    commit wins: the decrypt rolls back, releases its pending shares and
    says "changed meanwhile"; the updated value is there afterwards."""
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    page = pat.get(sv.path("/staff/record/" + ref))
    out = {}

    def slow_decrypt():
        out["r"] = pat.post(sv.path("/staff/record/%s/decrypt" % ref), {"csrf": page.csrf()},
                            headers={"X-SplitVault-Fault": "decrypt-pause"})

    t = threading.Thread(target=slow_decrypt)
    t.start()
    wait_until(lambda: len([s for s in sv.daemon.live().values() if s["state"] == 2]) >= 3,
               10, "the decrypt never reached the daemon")
    assert update(sv, sv.login("uma"), ref, "notes", "written meanwhile").status == 303
    t.join(30)
    r = out["r"]
    assert r.status == 409 and "changed while it was being decrypted" in r.text, r.text
    assert sv.decrypted_values(r) == {}
    assert not [s for s in sv.daemon.live().values() if s["state"] == 2]
    assert ("conflict",) in sv.db.query("SELECT outcome FROM audit WHERE action = 'decrypt'")
    r = sv.decrypt(pat, ref)
    assert r.status == 200
    assert sv.decrypted_values(r) == dict(GOOD, notes="written meanwhile")


@pytest.mark.log_allows(r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(name, share \d+\):")
@needs_test_hooks
def test_decrypt_overtaken_by_another_is_not_called_tampering(sv_factory):
    """A decrypt that read the rows just before another decrypt rotated them
    asks for shares the daemon has since deleted; the daemon refuses, and
    staff are told the record changed meanwhile, not that its data does not
    check out."""
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    page = pat.get(sv.path("/staff/record/" + ref))
    out = {}

    def slow_decrypt():
        out["r"] = pat.post(sv.path("/staff/record/%s/decrypt" % ref), {"csrf": page.csrf()},
                            headers={"X-SplitVault-Fault": "decrypt-pause-read"})

    t = threading.Thread(target=slow_decrypt)
    t.start()
    # it has read the rows (its "started" entry comes right after) and waits
    wait_until(lambda: sv.db.query("SELECT count(*) FROM audit WHERE action = 'decrypt' "
                                   "AND outcome = 'started'")[0][0], 10,
               "the slow decrypt did not start")
    r = sv.decrypt(sv.login("pat"), ref)
    assert r.status == 200 and sv.decrypted_values(r) == GOOD
    t.join(30)
    r = out["r"]
    assert r.status == 409 and "changed while it was being decrypted" in r.text, r.text
    assert sv.decrypted_values(r) == {}
    outcomes = sv.db.query("SELECT outcome, detail FROM audit WHERE action = 'decrypt' "
                           "AND outcome NOT IN ('started', 'ok')")
    assert outcomes == [("conflict", "changed meanwhile")]
    assert not [s for s in sv.daemon.live().values() if s["state"] == 2]
    r = sv.decrypt(pat, ref)
    assert r.status == 200 and sv.decrypted_values(r) == GOOD


@needs_test_hooks
def test_two_decrypts_at_once(sv_factory):
    """Two decrypts of one record at the same moment: one rotates, the other
    is told to try again; the record stays decryptable."""
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    clients = [pat, sv.login("pat")]
    tokens = [c.get(sv.path("/staff/record/" + ref)).csrf() for c in clients]
    res = [None, None]

    def go(i):
        res[i] = clients[i].post(sv.path("/staff/record/%s/decrypt" % ref),
                                 {"csrf": tokens[i]},
                                 headers={"X-SplitVault-Fault": "decrypt-pause"})

    ts = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sorted(r.status for r in res) == [200, 409], [r.status for r in res]
    shares = sv.daemon.live()
    assert len(shares) == 3 and all(s["state"] == 1 for s in shares.values())
    r = sv.decrypt(pat, ref)
    assert r.status == 200 and sv.decrypted_values(r) == GOOD


@needs_test_hooks
def test_too_late_to_commit_gives_up_cleanly(sv_factory):
    """A rotation whose COMMIT could end later than 600 s after its first
    DECRYPT is given up before COMMIT: nothing changes, the pending shares
    are released, the record decrypts afterwards."""
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    before = rows(sv, ref)
    sv.allowed_errors += [r"SV02122"]
    r = sv.decrypt(pat, ref, headers={"X-SplitVault-Fault": "decrypt-late"})
    assert r.status == 503 and "Nothing was changed and nothing is shown" in r.text
    assert sv.decrypted_values(r) == {}
    assert rows(sv, ref) == before
    assert not [s for s in sv.daemon.live().values() if s["state"] == 2]
    assert "SV02122: decrypt of %s: more than 570 s since its first DECRYPT" % ref \
        in sv.httpd.log_text()
    r = sv.decrypt(pat, ref)
    assert r.status == 200 and sv.decrypted_values(r) == GOOD


def test_daemon_down_during_decrypt(sv_factory):
    sv, pat = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    before = rows(sv, ref)
    sv.daemon.stop()
    sv.allowed_errors += [r"SV01701", r"SV01706", r"SV0170[89]", r"SV0171[01]"]
    r = sv.decrypt(pat, ref)
    assert r.status == 503 and "did not answer" in r.text
    assert rows(sv, ref) == before
    sv.daemon.start()
    r = sv.decrypt(pat, ref)
    assert r.status == 200 and sv.decrypted_values(r) == GOOD


def test_only_privileged_staff(sv_factory):
    sv, _ = ready(sv_factory)
    ref = sv.ref_of(sv.submit(GOOD))
    for who in ("dora", "uma", "ada"):
        c = sv.login(who)
        page = c.get(sv.path("/staff/record/" + ref))
        r = c.post(sv.path("/staff/record/%s/decrypt" % ref), {"csrf": page.csrf()})
        assert r.status == 403 and "Jane" not in r.text
    assert STAFF["pat"][1] == ("update", "decrypt")


def test_decrypt_wait_directive_checked(workdir, pki):
    """apache2 -t refuses a bad SplitVaultDecryptWait and accepts the key1
    mutex's name in httpd's Mutex directive."""
    import types
    from svtest.fixtures_httpd import Httpd
    db = types.SimpleNamespace(dsn="host=127.0.0.1 port=1 dbname=none user=postgres")
    for value, ok in (("0", True), ("300", True), ("301", False), ("-1", False),
                      ("soon", False)):
        h = Httpd(workdir / ("w" + value), db, pki, 1,
                  directives={"SplitVaultDecryptWait": value})
        p = h.check()
        assert (p.returncode == 0) == ok, (value, p.stderr)
        if not ok:
            assert "SplitVaultDecryptWait" in p.stderr and "is not a number from 0 to 300" \
                in p.stderr
    h = Httpd(workdir / "mutex", db, pki, 1, extra="Mutex sysvsem splitvault-key1")
    p = h.check()
    assert p.returncode == 0, p.stderr
    # a decryption that waits as long as allowed must still be able to commit
    # within 600 s of its request: wait + 2 x timeout <= 480
    for wait, timeout, ok in (("300", "90", True), ("300", "91", False),
                              ("10", "235", True), ("10", "300", False)):
        h = Httpd(workdir / ("wt%s-%s" % (wait, timeout)), db, pki, 1,
                  directives={"SplitVaultDecryptWait": wait,
                              "SplitVaultDaemonTimeout": timeout})
        p = h.check()
        assert (p.returncode == 0) == ok, (wait, timeout, p.stderr)
        if not ok:
            assert "plus twice SplitVaultDaemonTimeout" in p.stderr \
                and "more than 480 seconds" in p.stderr, p.stderr


# Errors a lost COMMIT makes httpd log (the failure itself, and what could
# not be written while the database was unreachable).
LOST_COMMIT_ERRORS = [r"SV01106", r"SV01109", r"SV01110", r"SV01103", r"SV01104", r"SV01801",
                      r"SV02124", r"SV01101"]


def proxied(sv_factory, pg):
    proxy = PgProxy(pg.host, pg.port)
    sv, pat = ready(sv_factory, db_port=proxy.port)
    sv.allowed_errors += LOST_COMMIT_ERRORS
    return proxy, sv, pat


def pending(sv):
    return {i: s for i, s in sv.daemon.live().items() if s["state"] == 2}


@pytest.mark.log_allows(r"SV01107", r"SV02125")
def test_commit_answer_lost_after_commit(sv_factory, pg):
    """The rotation's COMMIT reaches PostgreSQL and commits, but the
    connection breaks before its answer: the module reads the rows again on
    a fresh connection, sees the new shares, and finishes as committed (the
    values are shown, the old shares released). The record still decrypts."""
    proxy, sv, pat = proxied(sv_factory, pg)
    try:
        ref = sv.ref_of(sv.submit(GOOD))
        before = rows(sv, ref)
        proxy.arm("after")
        r = sv.decrypt(pat, ref)
        assert proxy.cuts == 1
        assert r.status == 200 and sv.decrypted_values(r) == GOOD, r.text
        after = rows(sv, ref)
        shares = sv.daemon.live()
        for f in GOOD:
            assert after[f][0] != before[f][0]
            assert shares[after[f][0]]["state"] == 1      # kept and activated
            assert before[f][0] not in shares              # old share released
        assert len(shares) == 3
        assert "SV02125" in sv.httpd.log_text()
        r = sv.decrypt(pat, ref)
        assert r.status == 200 and sv.decrypted_values(r) == GOOD, r.text
    finally:
        proxy.close()


@pytest.mark.log_allows(r"SV01107", r"SV02126")
def test_commit_lost_before_commit(sv_factory, pg):
    """The connection breaks before COMMIT reaches PostgreSQL: the rows keep
    their old shares, the new pending ones are released, staff are told
    nothing changed, and the record decrypts afterwards."""
    proxy, sv, pat = proxied(sv_factory, pg)
    try:
        ref = sv.ref_of(sv.submit(GOOD))
        before = rows(sv, ref)
        proxy.arm("before")
        r = sv.decrypt(pat, ref)
        assert proxy.cuts == 1
        assert r.status == 503 and "Nothing was changed and nothing is shown" in r.text
        assert sv.decrypted_values(r) == {}
        assert rows(sv, ref) == before
        assert not pending(sv) and len(sv.daemon.live()) == 3
        assert "SV02126" in sv.httpd.log_text()
        r = sv.decrypt(pat, ref)
        assert r.status == 200 and sv.decrypted_values(r) == GOOD, r.text
    finally:
        proxy.close()


@pytest.mark.log_allows(r"SV01107")
def test_commit_outcome_unknowable_releases_nothing(sv_factory, pg):
    """The COMMIT commits, its answer is lost and the database stays out of
    reach: the module cannot tell, so it releases no share at all and says
    so. Old and new shares both stay; the record decrypts once the database
    is back, and reconcile removes the unreferenced set."""
    proxy, sv, pat = proxied(sv_factory, pg)
    try:
        ref = sv.ref_of(sv.submit(GOOD))
        before = rows(sv, ref)
        proxy.arm("after", refuse=True)
        r = sv.decrypt(pat, ref)
        proxy.refuse = False
        assert proxy.cuts == 1
        assert r.status == 503 and "could not be confirmed" in r.text, r.text
        assert sv.decrypted_values(r) == {}
        after = rows(sv, ref)
        shares = sv.daemon.live()
        assert len(shares) == 6                            # nothing released
        for f in GOOD:
            assert after[f][0] != before[f][0]             # it did commit
            assert shares[after[f][0]]["state"] == 2
            assert shares[before[f][0]]["state"] == 1
        r = sv.decrypt(pat, ref)
        assert r.status == 200 and sv.decrypted_values(r) == GOOD, r.text
        sv.daemon.age_shares(1000)  # past the daemon's minimum grace period
        p = sv.reconcile("--grace", "0", "--apply")
        assert "3 not referenced (3 retired)" in p.stdout, p.stdout
        shares = sv.daemon.live()
        assert len(shares) == 3 and all(x["state"] == 1 for x in shares.values())
        r = sv.decrypt(pat, ref)
        assert r.status == 200 and sv.decrypted_values(r) == GOOD
    finally:
        proxy.close()
