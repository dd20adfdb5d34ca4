"""Anonymous intake through the real form, httpd, PostgreSQL and splitvaultd.

The stored rows are opened with an independent HPKE (t/pylib/hpke_ref.py)
from nothing but the raw database values, key1's PEM and the daemon's key2b,
proving the documented format. Bad input is refused with a clear page and
stores nothing; daemon or database failures store nothing and recover.
"""
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "pylib"))
import hpke_ref  # noqa: E402
from svtest.fixtures_httpd import needs_test_hooks  # noqa: E402
from svtest.data import GOOD, GOOD_BODY, SQLMETA, XSS, open_field, raw_field  # noqa: E402


def assert_refused(sv, r, status, text):
    assert r.status == status, (r.status, r.text)
    assert "Nothing was stored" in r.text or "not stored" in r.text.lower(), r.text
    assert text in r.text, r.text
    assert sv.db.count("records") == 0
    assert sv.db.count("fields") == 0


def test_form_page(sv_shared):
    sv = sv_shared
    r = sv.client().get(sv.path("/"))
    assert r.status == 200
    for name, label, _ in [("name", "Full name", 0), ("ssn", "Social security number", 0)]:
        assert 'name="%s"' % name in r.text and label in r.text
    assert "<textarea" in r.text and 'maxlength="2000"' in r.text
    assert "<script" not in r.text.lower()


def test_submit_and_open_with_independent_hpke(sv):
    values = {"name": "Jane Q. Example", "ssn": "078-05-1120",
              "notes": "Zoë 🌍 naïve\r\nline two"}
    r = sv.submit(values)
    assert r.status == 200, r.text
    ref = sv.ref_of(r)
    assert ref and re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", ref)
    assert "cannot be used to read the submission back" in r.text
    for field, value in values.items():
        assert open_field(sv, ref, field) == value.encode("utf-8")
    # each field has its own key2 and share; shares belong to this record and field
    rows = sv.db.query("SELECT f.name, f.share_id, f.key2_pub, r.uuid::text FROM fields f "
                       "JOIN records r ON r.id = f.record_id")
    assert len({bytes(r[2]) for r in rows}) == 3 and len({r[1] for r in rows}) == 3
    shares = sv.daemon.live()
    for name, share, pub, uuid in rows:
        s = shares[share]
        assert s["field"] == name and s["pub"] == bytes(pub)
        assert s["uuid"].replace("-", "").lower() == uuid.replace("-", "").lower()


def test_envelopes_are_bound_to_record_and_field(sv):
    """Swapping a ciphertext between fields makes opening fail (aad binding)."""
    ref = sv.ref_of(sv.submit(GOOD))
    uuid, share, pub, enc, ct, *_ = raw_field(sv, ref, "name")
    sk1, _ = hpke_ref.load_key1_private_pem(sv.key1.pem.read_bytes())
    _, _, _, _, _, wenc, wct, _, _ = raw_field(sv, ref, "name")
    key2a = hpke_ref.unwrap_key2a(sk1, uuid, "name", share, bytes(wenc), bytes(wct))
    sk2 = hpke_ref.combine(key2a, sv.daemon.key2b(share))
    try:
        hpke_ref.open_datum(sk2, uuid, "ssn", bytes(enc), bytes(ct))
        assert False, "opened under the wrong field name"
    except hpke_ref.OpenError:
        pass
    try:
        hpke_ref.unwrap_key2a(sk1, uuid, "name", share + 1, bytes(wenc), bytes(wct))
        assert False, "unwrapped under the wrong share id"
    except hpke_ref.OpenError:
        pass


def test_empty_optional_field_is_stored_too(sv):
    ref = sv.ref_of(sv.submit({"name": "A", "ssn": "B"}))
    assert ref
    assert open_field(sv, ref, "notes") == b""
    assert sv.db.count("fields") == 3


def test_maximum_length_and_non_ascii(sv):
    name = "é" * 200  # 200 characters, 400 bytes: maxlength counts characters
    notes = "🌍" * 2000
    ref = sv.ref_of(sv.submit({"name": name, "ssn": "x" * 20, "notes": notes}))
    assert ref
    assert open_field(sv, ref, "name") == name.encode()
    assert open_field(sv, ref, "notes") == notes.encode()


def test_xss_and_sql_metacharacters_stored_verbatim(sv):
    for v in XSS + SQLMETA:
        r = sv.submit({"name": v, "ssn": v[:20], "notes": v})
        assert r.status == 200, r.text
        ref = sv.ref_of(r)
        assert open_field(sv, ref, "name") == v.encode()
        assert open_field(sv, ref, "notes") == v.encode()
        assert "<script>" not in r.text and "onerror=" not in r.text
    assert sv.db.count("records") == len(XSS + SQLMETA)


def test_missing_required(sv_shared):
    sv = sv_shared
    r = sv.submit({"name": "Only a name"})
    assert_refused(sv, r, 400, "Social security number is required.")
    r = sv.submit({"name": "", "ssn": "1"})
    assert_refused(sv, r, 400, "Full name is required.")


def test_over_long(sv_shared):
    sv = sv_shared
    r = sv.submit({"name": "x" * 201, "ssn": "1"})
    assert_refused(sv, r, 400, "Full name is longer than 200 characters.")


def test_invalid_utf8_and_controls(sv_shared):
    sv = sv_shared
    c = sv.client()
    for body in ["name=%C3%28&ssn=1", "name=%ED%A0%80&ssn=1", "name=%C0%AF&ssn=1",
                 "name=a%00b&ssn=1", "name=a%1Bb&ssn=1", "name=%F5%80%80%80&ssn=1"]:
        r = c.post(sv.path("/"), body=body)
        assert_refused(sv, r, 400, "not allowed (invalid UTF-8 or control characters)")


def test_unknown_and_duplicate_fields(sv_shared):
    sv = sv_shared
    c = sv.client()
    r = c.post(sv.path("/"), body="name=a&ssn=b&%3Cscript%3Ealert(1)%3C%2Fscript%3E=1")
    assert_refused(sv, r, 400, "unknown field &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;")
    assert "<script>alert(1)" not in r.text
    r = c.post(sv.path("/"), body="name=a&ssn=b&ssn=c")
    assert_refused(sv, r, 400, "was sent twice")


def test_malformed_body(sv_shared):
    sv = sv_shared
    c = sv.client()
    for body in ["name=%zz&ssn=1", "name=a&ssn", "name=%4"]:
        r = c.post(sv.path("/"), body=body)
        assert_refused(sv, r, 400, "malformed")


def test_wrong_content_type(sv_shared):
    sv = sv_shared
    c = sv.client()
    r = c.post(sv.path("/"), body="name=a&ssn=b", content_type="text/plain")
    assert_refused(sv, r, 415, "application/x-www-form-urlencoded")
    r = c.post(sv.path("/"), body="--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n"
               "a\r\n--x--\r\n", content_type="multipart/form-data; boundary=x")
    assert_refused(sv, r, 415, "application/x-www-form-urlencoded")
    r = c.post(sv.path("/"), body="name=a&ssn=b", content_type=None)
    assert_refused(sv, r, 415, "application/x-www-form-urlencoded")


def test_oversized_body_413(sv_factory):
    sv = sv_factory(directives={"SplitVaultMaxBody": "4096"})
    c = sv.client()
    r = c.post(sv.path("/"), body="name=" + "a" * 5000 + "&ssn=1")
    assert_refused(sv, r, 413, "larger than this form accepts")
    # chunked (no Content-Length): the cap holds while reading
    def chunks():
        yield b"name="
        for _ in range(10):
            yield b"a" * 1000
        yield b"&ssn=1"
    r = c.request("POST", sv.path("/"), body=chunks(), chunked=True,
                  headers={"Content-Type": "application/x-www-form-urlencoded",
                           "Transfer-Encoding": "chunked"})
    assert_refused(sv, r, 413, "larger than this form accepts")
    # a body within the cap is fine
    assert sv.submit(GOOD).status == 200


def test_get_does_not_store_and_other_methods_refused(sv_shared):
    sv = sv_shared
    c = sv.client()
    assert c.get(sv.path("/") + "?name=a&ssn=b").status == 200
    r = c.request("PUT", sv.path("/"), body="name=a&ssn=b",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 405 and "GET" in (r.header("Allow") or "")
    assert sv.db.count("records") == 0


def test_daemon_down_then_back(sv):
    c = sv.client()
    assert sv.submit(GOOD, client=c).status == 200
    sv.daemon.stop()
    sv.allowed_errors += [r"SV01701", r"SV01706", r"SV0170[89]", r"SV0171[01]"]
    for _ in range(2):
        r = sv.submit(GOOD, client=c)
        assert r.status == 503, r.text
        assert "NOT stored" in r.text and "try again" in r.text
    assert sv.db.count("records") == 1
    sv.daemon.start()
    r = sv.submit(GOOD, client=c)
    assert r.status == 200, r.text
    assert sv.db.count("records") == 2
    assert sv.httpd.proc.alive()


def test_daemon_restart_reuses_pool_cleanly(sv):
    """Pooled connections the daemon closed are replaced without a failed request."""
    for _ in range(3):
        assert sv.submit(GOOD).status == 200
    sv.daemon.restart()
    for _ in range(3):
        r = sv.submit(GOOD)
        assert r.status == 200, r.text
    assert sv.db.count("records") == 6


def test_database_down_then_back(sv):
    assert sv.submit(GOOD).status == 200
    # the failed statement, and mod_dbd's own reconnection messages
    sv.allowed_errors += [r"SV0110[1-7]: ", r"SV01110: ", r"\[dbd:"]
    sv.pg.stop()
    try:
        r = sv.submit(GOOD)
        assert r.status == 503, r.text
        assert "NOT stored" in r.text
    finally:
        sv.pg.start()
    ok = False
    for _ in range(20):  # mod_dbd reconnects on its own
        r = sv.submit(GOOD)
        if r.status == 200:
            ok = True
            break
    assert ok, r.text
    assert sv.httpd.proc.alive()


@pytest.mark.log_allows(r"SV01502")
@needs_test_hooks
def test_db_failure_after_store_leaves_no_record(sv):
    """Invariant 1: a record is committed only with its shares; the reverse
    failure leaves orphan shares for reconcile and no record."""
    before = len(sv.daemon.live())
    sv.allowed_errors += [r"SV01103: svm_intake_3 failed: ERROR:  new row for relation "
                          r"\"fields\" violates check constraint \"fields_share_id_check\"$"]
    r = sv.client().post(sv.path("/"), body=GOOD_BODY,
                         headers={"X-SplitVault-Fault": "intake-db-fail"})
    assert r.status == 503 and "NOT stored" in r.text
    assert sv.db.count("records") == 0 and sv.db.count("fields") == 0
    assert len(sv.daemon.live()) == before + 3  # orphans, found later by reconcile


@needs_test_hooks
def test_too_late_to_commit_leaves_no_record(sv):
    """An INSERT that could end later than 600 s after its STORE is not
    started (reconcile may take the shares for orphans by then): nothing is
    stored, the visitor is told so, the shares are left to reconcile."""
    before = len(sv.daemon.live())
    sv.allowed_errors += [r"SV01508"]
    r = sv.client().post(sv.path("/"), body=GOOD_BODY,
                         headers={"X-SplitVault-Fault": "intake-late"})
    assert r.status == 503 and "NOT stored" in r.text
    assert sv.db.count("records") == 0 and sv.db.count("fields") == 0
    assert len(sv.daemon.live()) == before + 3
    assert "SV01508: intake given up: more than 570 s since its STORE" in sv.httpd.log_text()
    assert sv.submit(GOOD).status == 200


def test_module_sets_statement_timeout(sv):
    """Every database connection of the module gets a statement timeout
    before its first statement, so no INSERT or COMMIT can end long after
    the deadline check made before it."""
    sv.db.query("ALTER DATABASE %s SET log_statement = 'all'" % sv.db.name)
    log = sv.pg.logfile
    mark = log.stat().st_size
    assert sv.submit(GOOD).status == 200
    with open(log, "rb") as f:
        f.seek(mark)
        text = f.read().decode("utf-8", "replace")
    assert "statement: SET statement_timeout = 30000" in text, text[-2000:]


def test_no_active_key1_refuses_intake(sv_factory):
    sv = sv_factory(key1=False)
    sv.allowed_errors += [r"SV01902"]
    r = sv.submit(GOOD)
    assert r.status == 503 and "NOT stored" in r.text
    assert sv.db.count("records") == 0
    assert len(sv.daemon.live()) == 0  # checked before any share is made


def test_daemon_hanging_times_out(sv_factory):
    """A daemon that accepts but never answers costs at most the timeout."""
    import signal
    import time
    sv = sv_factory(directives={"SplitVaultDaemonTimeout": "2"})
    assert sv.submit(GOOD).status == 200
    sv.allowed_errors += [r"SV01709", r"SV01701", r"SV01702", r"SV01706"]
    sv.daemon.proc.kill(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = sv.submit(GOOD)
        took = time.monotonic() - t0
        assert r.status == 503 and "NOT stored" in r.text
        assert 1.5 < took < 8, took
    finally:
        sv.daemon.proc.kill(signal.SIGCONT)
    assert sv.db.count("records") == 1
    r = sv.submit(GOOD)
    assert r.status == 200, r.text
    assert sv.db.count("records") == 2


def test_new_active_key1_is_used_within_seconds(sv):
    """Intake wraps key2a to the active key1; activating another key takes
    effect within the per-child cache time (5 s), no restart needed."""
    import time
    from svtest.core import wait_until
    from svtest.fixtures_httpd import Key1
    ref1 = sv.ref_of(sv.submit(GOOD))
    k2 = Key1(sv.dir / "key1b", name="key1b")
    sv.db.admin("key1-register", k2.pub, "--activate", "--by", "tests")
    t0 = time.monotonic()
    assert sv.db.query("SELECT fingerprint FROM key1 WHERE active")[0][0] == k2.fingerprint

    def wrapped_to_k2():
        ref = sv.ref_of(sv.submit(GOOD))
        return ref if raw_field(sv, ref, "name")[7] == k2.fingerprint else None

    ref2 = wait_until(wrapped_to_k2, 10, "the new active key1 was not used", interval=0.25)
    assert time.monotonic() - t0 < 6.5  # the cache's 5 s, and a submission
    assert raw_field(sv, ref1, "name")[7] == sv.key1.fingerprint
    assert raw_field(sv, ref2, "name")[7] == k2.fingerprint
    uuid, share, pub, enc, ct, wenc, wct, fp, _ = raw_field(sv, ref2, "ssn")
    sk, _ = hpke_ref.load_key1_private_pem(k2.pem.read_bytes())
    key2a = hpke_ref.unwrap_key2a(sk, uuid, "ssn", share, bytes(wenc), bytes(wct))
    sk2 = hpke_ref.combine(key2a, sv.daemon.key2b(share))
    assert hpke_ref.open_datum(sk2, uuid, "ssn", bytes(enc), bytes(ct)) == GOOD["ssn"].encode()


def test_graceful_restart_keeps_serving(sv):
    """A graceful restart replaces the children and their daemon pools."""
    assert sv.submit(GOOD).status == 200
    staff = sv.login("uma")
    sv.httpd.graceful()
    for _ in range(3):
        r = sv.submit(GOOD)
        assert r.status == 200, r.text
    assert staff.get(sv.path("/staff/")).status == 200  # sessions live in the database
    assert sv.db.count("records") == 4


def test_unknown_field_with_bad_name_is_not_echoed(sv_shared):
    sv = sv_shared
    r = sv.client().post(sv.path("/"), body="name=a&ssn=b&%FF%FE%3Cx=1&" + "z" * 80 + "=1")
    assert_refused(sv, r, 400, "The form has an unknown field.")
    assert "z" * 80 not in r.text


@pytest.mark.log_allows(
    r"\d+ more refusals \(handshake-cap\) from [\d.]+ in the last \d+ s",
    r"connections\.max_handshakes reached; closed before TLS \(more are",
)
def test_burst_past_the_daemons_handshake_caps_is_stored(sv_factory):
    """New connections from one host past the daemon's handshake caps are
    closed before TLS; the module tries again (nothing was sent yet), so a
    burst of intakes on fresh connections is stored in full, not refused."""
    sv = sv_factory(daemon_options=dict(extra={"connections": {
        "max_handshakes": 1, "max_handshakes_per_address": 1}}),
        directives={"SplitVaultIntakeThrottle": "Off"})  # up to 48 from one address
    total = 0
    for _ in range(4):
        sv.daemon.restart()  # every pooled connection is new again
        statuses = sv.submit_at_once(GOOD, 12)
        total += 12
        assert statuses == [200] * 12, statuses
        assert sv.db.count("records") == total
        if "reached; closed before TLS" in sv.daemon.log_text():
            break
    assert "reached; closed before TLS" in sv.daemon.log_text(), \
        "the burst never met the daemon's handshake cap"


def _lost_answer_stack(sv_factory, pg):
    from svtest.fixtures_httpd import PgProxy
    proxy = PgProxy(pg.host, pg.port)
    sv = sv_factory(db_port=proxy.port)
    # the cut connection, and mod_dbd's own reconnection messages
    sv.allowed_errors += [r"SV0110[1-9]: ", r"SV01110: ", r"\[dbd:"]
    return proxy, sv


@pytest.mark.log_allows(r"SV01509")
def test_insert_answer_lost_after_commit_shows_the_receipt(sv_factory, pg):
    """The intake statement commits, but the connection breaks before its
    answer: the module finds the record on a fresh connection and shows the
    receipt (telling the visitor "not stored" would make them submit twice)."""
    proxy, sv = _lost_answer_stack(sv_factory, pg)
    try:
        assert sv.submit(GOOD).status == 200
        proxy.arm("after", bind=b"svm_intake_%d" % len(GOOD))
        r = sv.submit(GOOD)
        assert proxy.cuts == 1
        assert r.status == 200 and "your submission is stored" in r.text, r.text
        ref = sv.ref_of(r)
        assert sv.db.query("SELECT count(*) FROM records WHERE ref = %s", (ref,))[0][0] == 1
        assert sv.db.count("records") == 2
        assert "SV01509" in sv.httpd.log_text()
        # the connection pool goes on working
        assert sv.submit(GOOD).status == 200
        assert sv.db.count("records") == 3
    finally:
        proxy.close()


def test_insert_cut_before_it_ran_is_not_stored(sv_factory, pg):
    """The connection breaks before the intake statement is complete: the
    server stores nothing, and the visitor is told so."""
    proxy, sv = _lost_answer_stack(sv_factory, pg)
    try:
        assert sv.submit(GOOD).status == 200
        proxy.arm("before", bind=b"svm_intake_%d" % len(GOOD))
        r = sv.submit(GOOD)
        assert proxy.cuts == 1
        assert r.status == 503 and "NOT stored" in r.text, r.text
        assert sv.db.count("records") == 1
        assert "SV01509" not in sv.httpd.log_text()
        assert sv.submit(GOOD).status == 200
        assert sv.db.count("records") == 2
    finally:
        proxy.close()
