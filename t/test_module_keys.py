"""The admin key location: key1 into Apache shared memory and out again.

Real httpd, PostgreSQL and splitvaultd. key1 files are made at run time with
the stock `openssl genpkey`; the module accepts one only when its public half
is registered, keeps it in anonymous shared memory (never on disk), keeps it
across `apache2 -k graceful`, and loses it when Apache stops. Every upload,
refusal and forget is audited; no passphrase or key material reaches a log,
an audit row or a page.
"""
import re

import pytest

from svtest.core import run, wait_until
from svtest.fixtures_httpd import TEST_HOOKS, Key1, STAFF
from svtest.data import GOOD

PASS = "correct horse battery staple 42"


def audit_rows(sv, action):
    return sv.db.query("SELECT actor, outcome, coalesce(detail, '') FROM audit "
                       "WHERE action = %s ORDER BY id", (action,))


def loaded_fingerprints(sv, client=None):
    page = (client or sv.login("ada")).get(sv.keys_path())
    assert page.status == 200, page.text
    return set(re.findall(r'name="fingerprint" value="([0-9a-f]{64})"', page.text)), page


def test_upload_multipart_loads_and_decrypt_works(sv_factory):
    sv = sv_factory(key1_passphrase=PASS)
    ref = sv.ref_of(sv.submit(GOOD))
    ada = sv.login("ada")
    fps, page = loaded_fingerprints(sv, ada)
    assert fps == set() and "No key1 is loaded" in page.text
    r = sv.upload_key1(ada)
    assert r.status == 303, r.text
    fps, page = loaded_fingerprints(sv, ada)
    assert fps == {sv.key1.fingerprint}
    assert "loaded since" in page.text and "by ada" in page.text
    assert audit_rows(sv, "key1-upload") == [("ada", "ok", "loaded " + sv.key1.fingerprint)]
    r = sv.decrypt(sv.login("pat"), ref)
    assert r.status == 200, r.text
    assert sv.decrypted_values(r) == GOOD


def test_upload_urlencoded_and_plain_pem(sv_factory):
    """A key file without passphrase (openssl genpkey without -aes256),
    pasted into the text box (urlencoded form)."""
    sv = sv_factory()
    assert sv.key1.passphrase is None
    r = sv.upload_key1(form="urlencoded", passphrase="")
    assert r.status == 303, r.text
    assert loaded_fingerprints(sv)[0] == {sv.key1.fingerprint}
    # loading the same key again replaces it (no second slot)
    assert sv.upload_key1().status == 303
    assert loaded_fingerprints(sv)[0] == {sv.key1.fingerprint}
    assert [o for _, o, _ in audit_rows(sv, "key1-upload")] == ["ok", "ok"]


@pytest.mark.log_allows(r"SV02102")
def test_refusals_are_audited_and_load_nothing(sv_factory, workdir):
    sv = sv_factory(key1_passphrase=PASS)
    ada = sv.login("ada")
    pem = sv.key1.pem.read_bytes()
    # wrong passphrase
    r = sv.upload_key1(ada, passphrase="not the passphrase")
    assert r.status == 403 and "passphrase does not open" in r.text, r.text
    # no passphrase for an encrypted key
    r = sv.upload_key1(ada, passphrase="")
    assert r.status == 400 and "enter its passphrase" in r.text
    # wrong key: not a key file, a key of another type, a truncated file
    r = sv.upload_key1(ada, pem=b"hello, this is not a key\n")
    assert r.status == 400 and "not a PEM private key" in r.text
    ec = workdir / "ec.pem"
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", ec])
    r = sv.upload_key1(ada, pem=ec.read_bytes(), passphrase="")
    assert r.status == 400 and "not an X25519 private key" in r.text
    r = sv.upload_key1(ada, pem=pem[:len(pem) // 2])
    assert r.status == 400
    # a valid X25519 key that is not registered: a substitution, refused
    other = Key1(workdir / "other", passphrase=PASS, name="other")
    r = sv.upload_key1(ada, pem=other.pem.read_bytes())
    assert r.status == 403 and "not a registered key1" in r.text, r.text
    # no CSRF token, a wrong one
    r = sv.upload_key1(ada, csrf="")
    assert r.status == 403 and "Nothing was changed" in r.text
    r = sv.upload_key1(ada, csrf="0" * 64)
    assert r.status == 403
    # not an admin (privileged staff included), not signed in
    pat = sv.login("pat")
    r = sv.upload_key1(pat)
    assert r.status == 403 and "Only administrators" in r.text
    anon = sv.client()
    assert anon.post(sv.keys_path(), {"action": "upload"}).status == 403
    # nothing loaded, every refusal audited
    assert loaded_fingerprints(sv, ada)[0] == set()
    rows = audit_rows(sv, "key1-upload")
    outcomes = [(a, o, d) for a, o, d in rows]
    assert ("ada", "refused", "wrong passphrase") in outcomes
    assert ("ada", "refused", "passphrase missing") in outcomes
    assert ("ada", "refused", "not a key file") in outcomes
    assert ("ada", "refused", "not an X25519 private key") in outcomes
    assert ("ada", "refused", "key not registered: " + other.fingerprint) in outcomes
    assert sum(1 for a, o, d in rows if d == "missing or wrong CSRF token") == 2
    assert ("pat", "denied", "not an admin") not in outcomes
    # the body of a non-admin's POST is never read: its action is unknown
    assert ("pat", "denied", "not an admin") in audit_rows(sv, "key1-post")
    assert not any(o == "ok" for _, o, _ in rows)
    # no secret anywhere
    logs = sv.httpd.log_text() + sv.httpd.access_log.read_text()
    audit = " ".join(str(x) for row in sv.db.query("SELECT * FROM audit") for x in row)
    body = pem.decode().split("\n")[1]
    for s in (PASS, "not the passphrase", body):
        assert s not in logs and s not in audit
    sv.allowed_errors.append(r"SV02106")


def test_forget_then_decrypt_says_key_not_loaded(sv_factory):
    sv = sv_factory(key1_passphrase=PASS)
    ref = sv.ref_of(sv.submit(GOOD))
    assert sv.upload_key1().status == 303
    pat = sv.login("pat")
    page = pat.get(sv.path("/staff/record/" + ref))
    assert "not loaded" not in page.text and "LOCKED" not in page.text
    assert sv.decrypt(pat, ref).status == 200
    r = sv.forget_key1()
    assert r.status == 303, r.text
    assert loaded_fingerprints(sv)[0] == set()
    assert "key is not loaded" in pat.get(sv.path("/staff/record/" + ref)).text
    r = sv.decrypt(pat, ref)
    assert r.status == 503 and "Key not loaded" in r.text, r.text
    assert sv.key1.fingerprint in r.text and "key location" in r.text
    assert sv.decrypted_values(r) == {}
    assert audit_rows(sv, "key1-forget") == [("ada", "ok", "key1 " + sv.key1.fingerprint)]
    assert ("pat", "key not loaded", "key1 " + sv.key1.fingerprint) in audit_rows(sv, "decrypt")
    # forgetting a key that is not loaded
    r = sv.forget_key1()
    assert r.status == 404


def test_graceful_restart_keeps_key1_stop_drops_it(sv_factory):
    """apache2 -k graceful (and -k restart) keep key1; a stop loses it."""
    sv = sv_factory(key1_passphrase=PASS)
    ref = sv.ref_of(sv.submit(GOOD))
    assert sv.upload_key1().status == 303
    pids_before = children(sv)
    sv.httpd.graceful_ctl()
    # new children (same parent) still see key1
    assert loaded_fingerprints(sv)[0] == {sv.key1.fingerprint}
    pat = sv.login("pat")
    r = sv.decrypt(pat, ref)
    assert r.status == 200 and sv.decrypted_values(r) == GOOD, r.text
    assert children(sv) - pids_before, "graceful restart made no new child"
    # a second graceful restart, and a plain restart (the parent stays)
    sv.httpd.graceful_ctl()
    assert loaded_fingerprints(sv)[0] == {sv.key1.fingerprint}
    sv.httpd.graceful_ctl(action="restart")
    assert loaded_fingerprints(sv)[0] == {sv.key1.fingerprint}
    # a full stop and start: gone, and the stop cleansed the segment (a
    # test build's notice; the mapping itself vanishes with the parent)
    sv.httpd.stop()
    if TEST_HOOKS:
        wiped = re.findall(r"SV02139: .* (\d+) key\(s\) were loaded, \d+ set\(s\) of shares "
                           r"pending, (\d+) of (\d+) bytes nonzero after the wipe",
                           sv.httpd.log_text())
        assert wiped and wiped[-1][0] == "1" and wiped[-1][1] == "0" \
            and int(wiped[-1][2]) > 0, wiped
    sv.httpd.start()
    assert loaded_fingerprints(sv)[0] == set()
    r = sv.decrypt(sv.login("pat"), ref)
    assert r.status == 503 and "Key not loaded" in r.text


def children(sv):
    return sv.httpd.children()


def test_segment_is_anonymous_locked_and_not_dumped(sv_factory):
    """key1 lives in an anonymous shared mapping (no file), locked and marked
    not-dumpable; the key bytes never reach the disk of the test dir."""
    sv = sv_factory(key1_passphrase=PASS)
    assert sv.upload_key1().status == 303
    raw = sv.key1.private_raw()
    pid = sv.httpd.proc.pid
    smaps = open("/proc/%d/smaps" % pid).read()
    # the segment: a shared anonymous mapping with the dd (dont-dump) flag
    blocks = re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps)
    found = False
    for b in blocks:
        head = b.split("\n", 1)[0]
        if "rw-s" in head and ("/dev/zero" in head or "SYSV" in head or head.endswith(" 0")
                               or "(deleted)" in head):
            flags = re.search(r"VmFlags:(.*)", b).group(1).split()
            if "dd" in flags:
                found = True
                assert "lo" in flags, b  # locked by the parent (root)
    assert found, "no shared, dont-dump mapping in the parent"
    # nothing in the stack's files (logs included) holds the raw key
    logs = sv.httpd.log_text() + sv.httpd.access_log.read_text()
    assert raw.hex() not in logs and raw.hex().upper() not in logs
    for f in sv.dir.rglob("*"):
        if f.is_file() and f.suffix != ".pem":
            try:
                assert raw not in f.read_bytes(), f
            except PermissionError:
                pass


def test_keys_page_shows_daemon_and_non_admin_refused(sv):
    ada = sv.login("ada")
    page = ada.get(sv.keys_path())
    assert page.status == 200
    assert "Reachable." in page.text and "Not locked down." in page.text
    assert "Queue: 0 of" in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert page.header("Cache-Control") == "no-store"
    for who in ("dora", "uma", "pat"):
        r = sv.login(who).get(sv.keys_path())
        assert r.status == 403
    r = ada.request("PUT", sv.keys_path(), body="x")
    assert r.status == 405 and "POST" in r.header("Allow")


def test_malformed_upload_bodies(sv_factory):
    sv = sv_factory(key1_passphrase=PASS)
    ada = sv.login("ada")
    csrf = ada.get(sv.keys_path()).csrf()
    cases = [
        (b"--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n" + csrf.encode(),
         "multipart/form-data; boundary=x"),                        # no closing delimiter
        (b"garbage", "multipart/form-data; boundary=x"),
        (b"--x--\r\n", "multipart/form-data"),                       # no boundary
        (b"a=1", "text/plain"),
        (b"csrf=%zz", "application/x-www-form-urlencoded"),
        (b"x" * 70000, "application/x-www-form-urlencoded"),
    ]
    for body, ctype in cases:
        r = ada.post(sv.keys_path(), body=body, content_type=ctype)
        assert r.status in (400, 413, 415), (ctype, body[:40], r.status)
    assert loaded_fingerprints(sv, ada)[0] == set()
    assert sv.httpd.proc.alive()


def test_two_keys_loaded_for_rotation(sv_factory, workdir):
    """Slots hold several key1 (old and new during a rotation): records
    wrapped to either decrypt, and rotation re-wraps to the active key."""
    sv = sv_factory(key1_passphrase=PASS)
    ref1 = sv.ref_of(sv.submit(GOOD))
    k2 = Key1(workdir / "k2", passphrase=PASS, name="key1b")
    sv.db.admin("key1-register", k2.pub, "--activate", "--by", "tests")
    # new children, whose per-child cache of the active key is empty (the
    # cache's lifetime is test_new_active_key1_is_used_within_seconds's)
    sv.httpd.graceful_ctl()
    ref2 = sv.ref_of(sv.submit(GOOD))
    ada = sv.login("ada")
    assert sv.upload_key1(ada).status == 303
    pat = sv.login("pat")
    r = sv.decrypt(pat, ref2)
    assert r.status == 503 and k2.fingerprint in r.text
    assert sv.upload_key1(ada, pem=k2.pem.read_bytes()).status == 303
    assert loaded_fingerprints(sv, ada)[0] == {sv.key1.fingerprint, k2.fingerprint}
    for ref in (ref1, ref2):
        r = sv.decrypt(pat, ref)
        assert r.status == 200 and sv.decrypted_values(r) == GOOD, r.text
    # the old record's fields are now wrapped to the active key
    fps = {fp for (fp,) in sv.db.query("SELECT DISTINCT key1_fp FROM fields")}
    assert fps == {k2.fingerprint}
    # with only the new key loaded, both still decrypt
    assert sv.forget_key1(sv.key1.fingerprint, client=ada).status == 303
    assert sv.decrypt(pat, ref1).status == 200


# ---- SplitVaultKey1Pin: seal only to the key1 this server's config names ----

OTHER_FP = "ab" * 32
NOT_ACCEPTED = "This service cannot accept submissions right now"


def repin(sv, *fingerprints):
    sv.httpd.directives["SplitVaultKey1Pin"] = " ".join(fingerprints)
    sv.httpd.write_config()
    sv.httpd.graceful_ctl()


def counts(sv):
    return sv.db.count("records"), sv.db.count("fields"), len(sv.daemon.shares())


def test_key1_pin_seals_only_to_pinned_keys(sv_factory):
    """With the active key1 pinned (in any case, among others), intake and
    decrypt work; with it not pinned, a submission gets 503 "cannot accept
    submissions right now" and nothing reaches the database or the daemon,
    a decrypt is refused and changes nothing, the error log names the
    refused fingerprint and the key location says so."""
    sv = sv_factory(key1_passphrase=PASS, server_limit=1)
    assert sv.upload_key1().status == 303
    repin(sv, OTHER_FP, sv.key1.fingerprint.upper())
    r = sv.submit(GOOD)
    assert r.status == 200, r.text
    ref = sv.ref_of(r)
    assert sv.db.query("SELECT DISTINCT key1_fp FROM fields") == [(sv.key1.fingerprint,)]

    repin(sv, OTHER_FP)
    sv.allowed_errors.append(r"SV01904: the active key1 [0-9a-f]{64} is not listed in "
                             r"SplitVaultKey1Pin")
    before = counts(sv)
    r = sv.submit(GOOD)
    assert r.status == 503 and NOT_ACCEPTED in r.text and "NOT stored" in r.text, r.text
    assert GOOD["ssn"] not in r.text
    assert counts(sv) == before
    assert "SV01904: the active key1 %s is not listed" % sv.key1.fingerprint \
        in sv.httpd.log_text()
    rows = sv.db.query("SELECT name, share_id, version FROM fields ORDER BY name")
    r = sv.decrypt(sv.login("pat"), ref)
    assert r.status == 503 and "SplitVaultKey1Pin" in r.text, r.text
    assert GOOD["ssn"] not in r.text
    assert sv.db.query("SELECT name, share_id, version FROM fields ORDER BY name") == rows
    assert counts(sv) == before
    page = sv.login("ada").get(sv.keys_path())
    assert "not one of the fingerprints this server is configured to trust" in page.text

    repin(sv, sv.key1.fingerprint)
    assert sv.submit(GOOD).status == 200
    r = sv.decrypt(sv.login("pat"), ref)
    assert r.status == 200 and sv.decrypted_values(r) == GOOD, r.text


def test_key1_pin_defeats_a_key1_swapped_in_the_database(sv_factory):
    """Someone who can write the database registers and activates a key1 of
    their own: a pinned server stops sealing as soon as it sees the new key
    (its per-child cache lasts 5 s), and starts again when the pinned key is
    active again."""
    # the polls below are many submissions from one address
    sv = sv_factory(server_limit=1, directives={"SplitVaultIntakeThrottle": "Off"})
    repin(sv, sv.key1.fingerprint)
    assert sv.submit(GOOD).status == 200
    evil = Key1(sv.dir / "evil", name="evil")
    sv.db.admin("key1-register", evil.pub, "--activate", "--by", "intruder")
    sv.allowed_errors.append(r"SV01904: the active key1 %s is not listed" % evil.fingerprint)

    def refused():
        r = sv.submit(GOOD)
        assert r.status in (200, 503), r.text
        return r if r.status == 503 else None
    r = wait_until(refused, 20, "the swapped key1 was still sealed to", interval=0.2)
    assert NOT_ACCEPTED in r.text
    before = counts(sv)
    for _ in range(3):
        assert sv.submit(GOOD).status == 503
    assert counts(sv) == before
    assert sv.db.query("SELECT count(*) FROM fields WHERE key1_fp = %s",
                       (evil.fingerprint,))[0][0] == 0
    assert "SV01904: the active key1 %s is not listed" % evil.fingerprint in sv.httpd.log_text()
    sv.db.admin("key1-activate", sv.key1.fingerprint)
    wait_until(lambda: sv.submit(GOOD).status == 200, 20,
               "intake did not resume with the pinned key1", interval=0.2)
    assert sv.db.query("SELECT DISTINCT key1_fp FROM fields") == [(sv.key1.fingerprint,)]


@pytest.mark.log_allows(r"SV02102")
def test_costly_key_derivation_refused_before_use(sv_factory, workdir):
    """A key file whose passphrase protection asks for more work than the
    caps (docs/operations.md), or a scheme other than PBES2 with PBKDF2 or
    scrypt, is refused at once, before any derivation, audited, and loads
    nothing; the same key re-encrypted with scrypt within the caps loads."""
    import time
    sv = sv_factory(key1_passphrase=PASS)
    ada = sv.login("ada")

    def reencrypt(name, *opts):
        out = workdir / name
        run(["openssl", "pkcs8", "-topk8", "-in", sv.key1.pem, "-passin", "pass:" + PASS,
             "-passout", "pass:" + PASS, "-out", out] + list(opts))
        return out.read_bytes()

    costly = reencrypt("p17.pem", "-scrypt", "-scrypt_N", "16", "-scrypt_r", "1",
                       "-scrypt_p", "17")
    pbes1 = reencrypt("pbes1.pem", "-v1", "PBE-SHA1-3DES")
    for pem in (costly, pbes1):
        t0 = time.monotonic()
        r = sv.upload_key1(ada, pem=pem)
        assert time.monotonic() - t0 < 5
        assert r.status == 400 and "refused before any use" in r.text, r.text
        assert "openssl pkcs8 -topk8 -v2 aes-256-cbc" in r.text
    assert loaded_fingerprints(sv, ada)[0] == set()
    assert [(a, o, d) for a, o, d in audit_rows(sv, "key1-upload")] == \
        [("ada", "refused", "passphrase protection refused (unsupported or too costly)")] * 2
    r = sv.upload_key1(ada, pem=reencrypt("scrypt.pem", "-scrypt"))
    assert r.status == 303, r.text
    assert loaded_fingerprints(sv, ada)[0] == {sv.key1.fingerprint}
