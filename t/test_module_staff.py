"""Staff pages: record list and search, record page, write-only update, audit."""
import re
import sys
import urllib.parse
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "pylib"))
import hpke_ref  # noqa: E402
from svtest.fixtures_httpd import needs_test_hooks  # noqa: E402
from svtest.data import GOOD, SQLMETA, XSS, open_field, raw_field  # noqa: E402


def new_record(sv, values=GOOD):
    r = sv.submit(values)
    assert r.status == 200, r.text
    return sv.ref_of(r)


def update(sv, client, ref, field, value, expect=303):
    page = client.get(sv.path("/staff/record/" + ref))
    r = client.post(sv.path("/staff/record/%s/update" % ref),
                    {"csrf": page.csrf(), "field": field, "value": value})
    assert r.status == expect, (r.status, r.text)
    return r


def refs_on(page):
    return re.findall(r'class="mono" href="[^"]*">([0-9A-Z]{5}-[0-9A-Z]{5})<', page.text)


def test_list_paging_and_search(sv_factory):
    # 53 submissions from one address: past the intake throttle's default
    sv = sv_factory(directives={"SplitVaultIntakeThrottle": "Off"})
    refs = [new_record(sv) for _ in range(53)]
    c = sv.login("dora")
    p1 = c.get(sv.path("/staff/"))
    assert p1.status == 200
    shown = refs_on(p1)
    assert len(shown) == 50 and shown[0] == refs[-1]  # newest first
    assert "Older records" in p1.text and "Newer records" not in p1.text
    p2 = c.get(sv.path("/staff/?page=1"))
    assert len(refs_on(p2)) == 3 and "Newer records" in p2.text
    assert set(refs_on(p1) + refs_on(p2)) == set(refs)
    one = c.get(sv.path("/staff/?ref=" + refs[7]))
    assert refs_on(one) == [refs[7]]
    assert refs_on(c.get(sv.path("/staff/?ref=" + refs[7].lower()))) == [refs[7]]
    bad = c.get(sv.path("/staff/?ref=" + urllib.parse.quote("' OR 1=1 --<b>")))
    assert bad.status == 200 and refs_on(bad) == [] and "<b>" not in bad.text
    assert "value=\"&#39; OR 1=1 --&lt;b&gt;\"" in bad.text  # shown verbatim, escaped
    assert "looks like ABCDE-12345" in bad.text
    today = sv.db.query("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')")[0][0]
    assert len(refs_on(c.get(sv.path("/staff/?from=%s&to=%s" % (today, today))))) == 50
    assert refs_on(c.get(sv.path("/staff/?to=2000-01-01"))) == []
    assert "Dates look like" in c.get(sv.path("/staff/?from=yesterday")).text
    # metadata only: no envelope, key or value appears
    assert GOOD["name"] not in p1.text
    # a page number is parsed strictly: anything but 1 to 9 digits within
    # the range is the first page (no overflow into a negative offset)
    for bad_page in ("99999999999999999999", "4294967296", "2147483648", "-1", "+1",
                     "1x", "0x10", " 1", "1000001", ""):
        r = c.get(sv.path("/staff/?page=" + urllib.parse.quote(bad_page)))
        assert r.status == 200 and refs_on(r) == shown, bad_page


def test_record_page_shows_metadata_only(sv_factory):
    fields = [("name", "Name <b>bold</b> & 'quoted'", "required"),
              ("ssn", "SSN", "required maxlength=11"),
              ("notes", "Notes", "multiline")]
    sv = sv_factory(fields=fields)
    ref = new_record(sv, {"name": "Visible-Value-Never", "ssn": "1", "notes": "n"})
    c = sv.login("uma")
    page = c.get(sv.path("/staff/record/" + ref))
    assert page.status == 200
    assert "Visible-Value-Never" not in page.text
    assert "Name &lt;b&gt;bold&lt;/b&gt; &amp; &#39;quoted&#39;" in page.text
    assert "<b>bold</b>" not in page.text
    assert page.text.index("Name &lt;b&gt;") < page.text.index(">SSN ") < \
        page.text.index(">Notes ")  # the form's order
    assert 'maxlength="11"' in page.text and "<textarea" in page.text
    assert "Version 1" in page.text
    form = sv.client().get(sv.path("/"))
    assert "Name &lt;b&gt;bold&lt;/b&gt;" in form.text and "<b>bold</b>" not in form.text
    assert c.get(sv.path("/staff/record/ZZZZZ-ZZZZZ")).status == 404
    assert c.get(sv.path("/staff/record/not-a-ref")).status == 404
    assert c.get(sv.path("/staff/record/%s/other" % ref)).status == 404


def test_update_is_sealed_to_the_same_key_and_audited(sv):
    ref = new_record(sv)
    before = raw_field(sv, ref, "name")
    c = sv.login("uma")
    r = update(sv, c, ref, "name", "Jane Updated Zoë")
    assert r.header("Location").endswith("/staff/record/%s?updated=name" % ref)
    assert r.header("Location").startswith("/splitvault/")  # relative: no Host header in it
    page = c.get(r.header("Location"))
    assert "Full name was replaced." in page.text and "Jane Updated" not in page.text
    after = raw_field(sv, ref, "name")
    assert after[1] == before[1]                       # same share id
    assert bytes(after[2]) == bytes(before[2])         # same key2 public key
    assert bytes(after[3]) != bytes(before[3])         # new envelope
    assert bytes(after[5]) == bytes(before[5]) and bytes(after[6]) == bytes(before[6])
    assert after[8] == before[8] + 1                   # version
    assert open_field(sv, ref, "name") == "Jane Updated Zoë".encode()
    assert open_field(sv, ref, "ssn") == GOOD["ssn"].encode()  # others untouched
    rec = sv.db.query("SELECT updated IS NOT NULL, updated_by FROM records WHERE ref = %s",
                      (ref,))[0]
    assert rec == (True, "uma")
    audit = sv.db.query("SELECT actor, action, record_ref, field, outcome FROM audit "
                        "WHERE action = 'update'")
    assert audit == [("uma", "update", ref, "name", "ok")]
    every = " ".join(str(x) for row in sv.db.query("SELECT * FROM audit") for x in row)
    assert "Jane Updated" not in every
    assert len(sv.daemon.shares()) == 3  # no daemon call for an update


def test_update_xss_and_sql_metacharacters_verbatim(sv):
    ref = new_record(sv)
    c = sv.login("uma")
    for v in XSS + SQLMETA:
        update(sv, c, ref, "notes", v)
        assert open_field(sv, ref, "notes") == v.encode()
        page = c.get(sv.path("/staff/record/" + ref))
        assert "<script>" not in page.text and "onerror" not in page.text
    assert sv.db.count("records") == 1


def test_update_bad_input_changes_nothing(sv_shared):
    sv = sv_shared
    ref = new_record(sv)
    c = sv.login("uma")
    v0 = raw_field(sv, ref, "name")
    r = update(sv, c, ref, "name", "x" * 201, expect=400)
    assert "longer than 200 characters" in r.text and "Nothing was changed" in r.text
    update(sv, c, ref, "name", "", expect=400)
    page = c.get(sv.path("/staff/record/" + ref))
    r = c.post(sv.path("/staff/record/%s/update" % ref),
               body="csrf=%s&field=name&value=%%C3%%28" % page.csrf())
    assert r.status == 400 and "not allowed" in r.text
    update(sv, c, ref, "nosuchfield", "x", expect=404)
    update(sv, c, ref, "bad name!", "x", expect=400)
    r = c.post(sv.path("/staff/record/ZZZZZ-ZZZZZ/update"),
               {"csrf": page.csrf(), "field": "name", "value": "x"})
    assert r.status == 404
    assert raw_field(sv, ref, "name") == v0
    assert open_field(sv, ref, "name") == GOOD["name"].encode()


def test_update_follows_the_current_key(sv):
    """After a decrypt rotated the row's key2, an update seals to the new
    key (the one the row holds now, which the daemon confirms)."""
    ref = new_record(sv)
    _, share_before, pub_before, *_ = raw_field(sv, ref, "ssn")
    sv.upload_key1()
    pat = sv.login("pat")
    assert sv.decrypt(pat, ref).status == 200
    _, share, pub, *_ = raw_field(sv, ref, "ssn")
    assert share != share_before and bytes(pub) != bytes(pub_before)
    update(sv, sv.login("uma"), ref, "ssn", "rotated-then-updated")
    _, share_after, pub_after, *_ = raw_field(sv, ref, "ssn")
    assert (share_after, bytes(pub_after)) == (share, bytes(pub))
    assert open_field(sv, ref, "ssn") == b"rotated-then-updated"


@pytest.mark.log_allows(
    r"CONFIRM record=\S+ actor=\S+: share\(s\) \d+ not confirmed \(unknown,",
    r"\d+ more refusals \(confirm-mismatch\) from [\d.]+ in the last \d+ s",
)
def test_update_refuses_a_key_the_daemon_does_not_confirm(sv):
    """A database writer swaps a field's key2 public key for one of its own
    (to read the next update): the daemon does not confirm it, the update
    is refused with nothing sealed to that key and nothing changed, and it
    is in the logs and both audit trails. The same for a row pointed at
    another record's share."""
    ref = new_record(sv)
    other = new_record(sv)
    sv.allowed_errors.append(r"SV01605: the daemon does not confirm the key")
    sk_evil, pk_evil = hpke_ref.generate_keypair()
    sv.db.query("UPDATE fields SET key2_pub = %s WHERE name = 'ssn' AND record_id = "
                "(SELECT id FROM records WHERE ref = %s)", (pk_evil, ref))
    before = raw_field(sv, ref, "ssn")
    r = update(sv, sv.login("uma"), ref, "ssn", "secret-after-swap", expect=409)
    assert "does not recognise this field" in r.text
    assert raw_field(sv, ref, "ssn") == before
    assert "SV01605" in sv.httpd.log_text()
    assert sv.db.query("SELECT count(*) FROM audit WHERE action = 'update' AND "
                       "outcome = 'key not confirmed' AND record_ref = %s", (ref,))[0][0] == 1
    assert "event=refusal why=confirm-mismatch peer=127.0.0.1 actor=uma record=" in \
        sv.daemon.wait_audit("why=confirm-mismatch")
    # the two records' "name" rows swap shares and keys: each now names a
    # share of another record
    _, mshare, mpub, *_ = raw_field(sv, ref, "name")
    _, oshare, opub, *_ = raw_field(sv, other, "name")
    q = ("UPDATE fields SET share_id = %s, key2_pub = %s WHERE name = 'name' AND "
         "record_id = (SELECT id FROM records WHERE ref = %s)")
    sv.db.query(q, (999999, bytes(opub), ref))
    sv.db.query(q, (mshare, bytes(mpub), other))
    sv.db.query(q, (oshare, bytes(opub), ref))
    update(sv, sv.login("uma"), ref, "name", "also refused", expect=409)
    # the record that was left alone updates as before
    update(sv, sv.login("uma"), other, "ssn", "fine")
    assert open_field(sv, other, "ssn") == b"fine"


def test_update_refuses_a_row_without_a_share(sv):
    """A row whose share id is not a positive number (its CHECK dropped by
    whoever can alter the database) is malformed: nothing is asked of the
    daemon, nothing sealed or changed, and the log says which field."""
    ref = new_record(sv)
    sv.db.query("ALTER TABLE fields DROP CONSTRAINT fields_share_id_check")
    sv.db.query("UPDATE fields SET share_id = 0 WHERE name = 'ssn' AND record_id = "
                "(SELECT id FROM records WHERE ref = %s)", (ref,))
    why = r"SV01604: the key of %s/ssn is malformed in the database" % ref
    sv.allowed_errors.append(why)
    before = raw_field(sv, ref, "ssn")
    r = update(sv, sv.login("uma"), ref, "ssn", "not sealed", expect=503)
    assert "nothing was changed" in r.text
    assert raw_field(sv, ref, "ssn") == before
    assert re.search(why, sv.httpd.log_text())
    assert "CONFIRM record=" not in sv.daemon.log_text()
    assert sv.db.query("SELECT outcome FROM audit WHERE action = 'update' AND "
                       "record_ref = %s", (ref,)) == [("error",)]


@needs_test_hooks
def test_update_retries_when_the_row_changed_meanwhile(sv):
    ref = new_record(sv)
    c = sv.login("uma")
    page = c.get(sv.path("/staff/record/" + ref))
    r = c.post(sv.path("/staff/record/%s/update" % ref),
               {"csrf": page.csrf(), "field": "name", "value": "after conflict"},
               headers={"X-SplitVault-Fault": "update-conflict"})
    assert r.status == 303, r.text
    assert open_field(sv, ref, "name") == b"after conflict"
    assert "SV01602" in sv.httpd.log_text()


def test_audit_page(sv):
    ref = new_record(sv)
    update(sv, sv.login("uma"), ref, "name", "x")
    ada = sv.login("ada")
    page = ada.get(sv.path("/staff/audit"))
    assert page.status == 200
    assert "sign-in" in page.text and ">update<" in page.text and ref in page.text
    only = ada.get(sv.path("/staff/audit?ref=" + ref))
    assert "sign-in" not in only.text and ref in only.text
    for bad_page in ("99999999999999999999", "2147483648", "-5", "1e3", "100001"):
        r = ada.get(sv.path("/staff/audit?page=" + bad_page))
        assert r.status == 200 and ">update<" in r.text, bad_page


def test_keys_page_for_admins(sv_shared):
    sv = sv_shared
    ada = sv.login("ada")
    page = ada.get(sv.httpd.base + "-keys")
    assert page.status == 200
    assert sv.key1.fingerprint in page.text
    assert "Reachable" in page.text
