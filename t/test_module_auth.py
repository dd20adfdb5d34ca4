"""Staff sign-in, sessions, CSRF and role checks through the real httpd."""
import base64
import hashlib
import re
import time

import pytest

from svtest.core import wait_until
from svtest.fixtures_httpd import STAFF, Httpd
from svtest.data import GOOD, REMOTEIP, UNDO_SCHEMA_4

FAILED = "Sign-in failed. Check your name and password."
CSP_PARTS = ["default-src 'none'", "style-src 'self'", "form-action 'self'",
             "frame-ancestors 'none'", "base-uri 'none'"]


def session_cookie(c):
    return c.cookies.get("__Host-splitvault")


def token_hash(tok):
    raw = base64.urlsafe_b64decode(tok + "=")
    assert len(raw) == 32
    return hashlib.sha256(raw).digest()


def new_record(sv):
    r = sv.submit(GOOD)
    assert r.status == 200, r.text
    return sv.ref_of(r)


def csrf_of(sv, c, ref):
    page = c.get(sv.path("/staff/record/" + ref))
    assert page.status == 200, page.text
    return page.csrf()


def version(sv, ref, field="name"):
    return sv.db.query("SELECT f.version FROM fields f JOIN records r ON r.id = f.record_id "
                       "WHERE r.ref = %s AND f.name = %s", (ref, field))[0][0]


def test_login_logout_cookie_flags(sv):
    c = sv.client()
    page = c.get(sv.path("/staff/login"))
    assert page.status == 200 and page.csrf()
    pre = page.header("Set-Cookie")
    assert pre.startswith("__Host-splitvault-login=")
    r = c.post(sv.path("/staff/login"), {"csrf": page.csrf(), "name": "uma",
                                          "password": STAFF["uma"][0]})
    assert r.status == 303, r.text
    assert r.header("Location").endswith("/splitvault/staff/")
    cookies = [h for h in r.header_all("Set-Cookie") if h.startswith("__Host-splitvault=")]
    assert len(cookies) == 1
    ck = cookies[0]
    for flag in ("Path=/", "HttpOnly", "Secure", "SameSite=Strict"):
        assert flag in ck, ck
    assert "Domain" not in ck
    tok = session_cookie(c)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", tok)
    rows = sv.db.query("SELECT token_hash FROM sessions")
    assert [bytes(x[0]) for x in rows] == [token_hash(tok)]  # only the hash is stored
    staff = c.get(sv.path("/staff/"))
    assert staff.status == 200 and "Signed in as <strong>uma</strong>" in staff.text
    out = c.post(sv.path("/staff/logout"), {"csrf": staff.csrf()})
    assert out.status == 303 and "signed-out" in out.header("Location")
    assert sv.db.count("sessions") == 0
    assert session_cookie(c) is None
    # the old token is dead server-side
    c.cookies["__Host-splitvault"] = tok
    assert c.get(sv.path("/staff/")).status == 303
    audit = sv.db.query("SELECT actor, action, outcome FROM audit ORDER BY id")
    assert ("uma", "sign-in", "ok") in audit and ("uma", "sign-out", "ok") in audit


def test_wrong_password_and_unknown_user_look_the_same(sv):
    c = sv.client()
    page = c.get(sv.path("/staff/login"))
    timings = {}
    bodies = {}
    for name, pw in [("uma", "wrong-password-123"), ("nobody-here", "wrong-password-123"),
                     ("uma", "wrong-password-456"), ("nobody-here", "x")]:
        t0 = time.monotonic()
        r = c.post(sv.path("/staff/login"), {"csrf": page.csrf(), "name": name, "password": pw})
        timings.setdefault(name, []).append(time.monotonic() - t0)
        assert r.status == 200 and FAILED in r.text
        assert session_cookie(c) is None
        bodies.setdefault(name, set()).add(r.text)
    assert bodies["uma"] == bodies["nobody-here"]  # byte for byte
    # the same Argon2id work either way (coarse: within a factor of three)
    known, unknown = min(timings["uma"]), min(timings["nobody-here"])
    assert unknown > known / 3 and known > unknown / 3, timings
    outcomes = sv.db.query("SELECT actor, outcome, detail FROM audit WHERE action = 'sign-in'")
    assert ("uma", "failed", None) in outcomes
    assert (None, "failed", "unknown name") in outcomes  # unknown names are not kept
    keys = [k for (k,) in sv.db.query("SELECT key FROM login_throttle")]
    assert keys and not any("nobody" in k or "uma" in k for k in keys)
    assert sv.db.count("sessions") == 0


def test_disabled_account_cannot_sign_in(sv):
    sv.db.admin("staff-disable", "uma")
    c = sv.login("uma")
    assert c.last.status == 200 and FAILED in c.last.text
    sv.db.admin("staff-enable", "uma")
    assert sv.login("uma").last.status == 303


@pytest.mark.log_allows(r"SV01208")
def test_throttle_per_account_and_unknown_names(sv_factory):
    sv = sv_factory(directives={"SplitVaultLoginThrottle": "3 3",
                                "SplitVaultLoginThrottleAddress": "100 3"})
    for name in ("uma", "ghost"):
        for _ in range(3):
            c = sv.login(name, "wrong-password-xyz")
            assert FAILED in c.last.text
    # paused: even the right password fails, with the same message
    c = sv.login("uma")
    assert c.last.status == 200 and FAILED in c.last.text
    # the name is paused from this address (the attempt after the third
    # failure paused it); ghost's three are counted the same way; the
    # name-wide counts (limit 15) are far from a pause
    rows = "SELECT failures, pending, coalesce(locked_until > now(), false) " \
           "FROM login_throttle WHERE key LIKE %s"
    assert sorted(sv.db.query(rows, ("p:%",))) == [(3, 0, False), (3, 0, True)]
    assert sorted(sv.db.query(rows, ("n:%",))) == [(3, 0, False), (3, 0, False)]
    # other accounts are not affected
    assert sv.login("pat").last.status == 303
    assert ("uma", "throttled") in sv.db.query(
        "SELECT actor, outcome FROM audit WHERE action = 'sign-in'")
    sv.db.age_login_throttle(3.5)  # the pause (3 s) is over
    assert sv.login("uma").last.status == 303
    sv.allowed_errors.append(r"SV01202")


@pytest.mark.log_allows(r"SV01202")
def test_throttle_per_address(sv_factory):
    sv = sv_factory(directives={"SplitVaultLoginThrottle": "100 3",
                                "SplitVaultLoginThrottleAddress": "4 3"})
    for i in range(4):
        sv.login("someone%d" % i, "wrong-password-xyz")
    c = sv.login("uma")
    assert c.last.status == 200 and FAILED in c.last.text
    sv.db.age_login_throttle(3.5)  # the pause (3 s) is over
    assert sv.login("uma").last.status == 303


def test_idle_expiry(sv_factory):
    sv = sv_factory(directives={"SplitVaultSessionIdle": "2", "SplitVaultSessionMax": "60"})
    c = sv.login("uma")
    assert c.get(sv.path("/staff/")).status == 200
    sv.db.age_sessions(1.5)
    assert c.get(sv.path("/staff/")).status == 200
    sv.db.age_sessions(1.5)  # 3 s since sign-in, 1.5 s since the last request
    assert c.get(sv.path("/staff/")).status == 200  # activity keeps it alive
    sv.db.age_sessions(2.5)
    r = c.get(sv.path("/staff/"))
    assert r.status == 303 and r.header("Location").endswith("/staff/login")
    r = c.post(sv.path("/staff/logout"), {"csrf": "0" * 64})
    assert r.status == 403


def test_absolute_expiry(sv_factory):
    sv = sv_factory(directives={"SplitVaultSessionIdle": "2", "SplitVaultSessionMax": "3"})
    c = sv.login("uma")
    # active every 0.7-1.5 s (within the idle limit of 2 s): alive 2.2 s
    # after sign-in, signed out 3.2 s after it (the absolute limit is 3 s)
    for age, alive in ((1.5, True), (0.7, True), (1.0, False)):
        sv.db.age_sessions(age)
        assert (c.get(sv.path("/staff/")).status == 200) == alive, (age, alive)


def test_session_fixation_planted_cookie_is_dead(sv):
    c = sv.client()
    planted = base64.urlsafe_b64encode(b"A" * 32).decode().rstrip("=")
    c.cookies["__Host-splitvault"] = planted
    assert c.get(sv.path("/staff/")).status == 303  # planted token: no session
    sv.login("uma", client=c)
    assert c.last.status == 303
    assert session_cookie(c) != planted
    hashes = [bytes(x[0]) for x in sv.db.query("SELECT token_hash FROM sessions")]
    assert token_hash(planted) not in hashes
    # an attacker's own valid session planted in the victim's browser ends at
    # the victim's sign-in and never becomes the victim's
    attacker = sv.login("dora")
    stolen = session_cookie(attacker)
    victim = sv.client()
    victim.cookies["__Host-splitvault"] = stolen
    sv.login("uma", client=victim)
    assert victim.last.status == 303 and session_cookie(victim) != stolen
    assert attacker.get(sv.path("/staff/")).status == 303
    assert "Signed in as <strong>uma</strong>" in victim.get(sv.path("/staff/")).text


def test_login_csrf(sv):
    c = sv.client()
    page = c.get(sv.path("/staff/login"))
    creds = {"name": "uma", "password": STAFF["uma"][0]}
    assert c.post(sv.path("/staff/login"), creds).status == 403
    assert c.post(sv.path("/staff/login"), dict(creds, csrf="0" * 64)).status == 403
    other = sv.client()
    assert other.post(sv.path("/staff/login"), dict(creds, csrf=page.csrf())).status == 403
    assert sv.db.count("sessions") == 0
    assert c.post(sv.path("/staff/login"), dict(creds, csrf=page.csrf())).status == 303


def test_csrf_missing_or_wrong_is_403_and_changes_nothing(sv):
    ref = new_record(sv)
    pat = sv.login("pat")
    good = csrf_of(sv, pat, ref)
    other = csrf_of(sv, sv.login("uma"), ref)  # a valid token, of another session
    assert other != good
    upd = sv.path("/staff/record/%s/update" % ref)
    for form in ({"field": "name", "value": "x"},
                 {"field": "name", "value": "x", "csrf": ""},
                 {"field": "name", "value": "x", "csrf": "0" * 64},
                 {"field": "name", "value": "x", "csrf": other},
                 # the last digit changed (a token ending in 0 gets a 1)
                 {"field": "name", "value": "x",
                  "csrf": good[:-1] + ("1" if good.endswith("0") else "0")}):
        r = pat.post(upd, form)
        assert r.status == 403, r.text
        assert "Nothing was changed" in r.text
    assert version(sv, ref) == 1
    assert pat.post(sv.path("/staff/record/%s/decrypt" % ref), {}).status == 403
    assert pat.post(sv.path("/staff/logout"), {"csrf": other}).status == 403
    assert pat.get(sv.path("/staff/")).status == 200  # still signed in
    refused = sv.db.query("SELECT count(*) FROM audit WHERE outcome = 'refused'")[0][0]
    assert refused >= 6
    assert pat.post(upd, {"field": "name", "value": "x", "csrf": good}).status == 303
    assert version(sv, ref) == 2
    sv.allowed_errors.append(r"SV01402")


def test_get_never_changes_state(sv):
    ref = new_record(sv)
    pat = sv.login("pat")
    csrf = csrf_of(sv, pat, ref)
    q = "?field=name&value=evil&csrf=" + csrf
    for path in ("/staff/record/%s/update" % ref, "/staff/record/%s/decrypt" % ref,
                 "/staff/logout"):
        for method in ("GET", "HEAD"):
            r = pat.request(method, sv.path(path) + q)
            assert r.status == 405, (path, method, r.status)
            assert "POST" in r.header("Allow")
    assert version(sv, ref) == 1
    assert pat.get(sv.path("/staff/")).status == 200  # GET logout did not sign out
    n = sv.db.count("sessions")
    anon = sv.client()
    anon.get(sv.path("/staff/login") + "?name=uma&password=" + STAFF["uma"][0])
    assert sv.db.count("sessions") == n
    anon.get(sv.path("/") + "?name=a&ssn=b")
    assert sv.db.count("records") == 1
    assert sv.db.query("SELECT count(*) FROM audit WHERE action IN ('update', 'decrypt')")[0][0] \
        == 0


def test_role_checks_on_every_staff_url(sv):
    ref = new_record(sv)
    rec = "/staff/record/" + ref
    keys = sv.httpd.base + "-keys"
    anon = sv.client()
    for path in ("/staff/", "/staff", rec, "/staff/audit"):
        r = anon.get(sv.path(path))
        assert r.status == 303 and r.header("Location").endswith("/staff/login"), path
    assert anon.get(keys).status == 303
    for path in (rec + "/update", rec + "/decrypt", "/staff/logout"):
        r = anon.post(sv.path(path), {"field": "name", "value": "x", "csrf": "0" * 64})
        assert r.status == 403, path
        assert ref not in r.text
    # staff without capabilities: metadata only
    dora = sv.login("dora")
    assert dora.get(sv.path("/staff/")).status == 200
    page = dora.get(sv.path(rec))
    assert page.status == 200 and "Replace value" not in page.text
    assert "Decrypt this record" not in page.text
    csrf = page.csrf()
    assert dora.post(sv.path(rec + "/update"),
                     {"csrf": csrf, "field": "name", "value": "x"}).status == 403
    assert dora.post(sv.path(rec + "/decrypt"), {"csrf": csrf}).status == 403
    assert dora.get(sv.path("/staff/audit")).status == 403
    assert dora.get(keys).status == 403
    # update without decrypt
    uma = sv.login("uma")
    page = uma.get(sv.path(rec))
    assert "Replace value" in page.text and "Decrypt this record" not in page.text
    assert uma.post(sv.path(rec + "/decrypt"), {"csrf": page.csrf()}).status == 403
    assert uma.post(sv.path(rec + "/update"),
                    {"csrf": page.csrf(), "field": "name", "value": "y"}).status == 303
    assert uma.get(sv.path("/staff/audit")).status == 403
    # privileged staff reach the decrypt action
    pat = sv.login("pat")
    page = pat.get(sv.path(rec))
    assert "Decrypt this record" in page.text
    r = pat.post(sv.path(rec + "/decrypt"), {"csrf": page.csrf()})
    assert r.status != 403
    # admin: audit log and keys, but no update or decrypt
    ada = sv.login("ada")
    assert ada.get(sv.path("/staff/audit")).status == 200
    assert ada.get(keys).status == 200
    page = ada.get(sv.path(rec))
    assert "Replace value" not in page.text
    assert ada.post(sv.path(rec + "/update"),
                    {"csrf": page.csrf(), "field": "name", "value": "z"}).status == 403
    assert ada.post(sv.path(rec + "/decrypt"), {"csrf": page.csrf()}).status == 403
    denied = sv.db.query("SELECT actor, action FROM audit WHERE outcome = 'denied'")
    for who, what in [("dora", "update"), ("dora", "decrypt"), ("uma", "decrypt"),
                      ("ada", "update"), ("ada", "decrypt"), ("dora", "audit-view")]:
        assert (who, what) in denied, denied


def check_headers(r, staff):
    csp = r.header("Content-Security-Policy") or ""
    for part in CSP_PARTS:
        assert part in csp, (r, csp)
    assert "unsafe" not in csp
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Referrer-Policy") == "no-referrer"
    assert r.header("X-Frame-Options") == "DENY"
    if staff:
        assert r.header("Cache-Control") == "no-store", r


def test_security_headers_on_every_page(sv):
    c = sv.client()
    check_headers(c.get(sv.path("/")), False)
    receipt = sv.submit(GOOD)
    check_headers(receipt, True)
    check_headers(c.post(sv.path("/"), {"name": "a"}), True)
    check_headers(c.get(sv.path("/nope")), False)
    check_headers(c.get(sv.path("/style.css")), False)
    check_headers(c.get(sv.path("/staff/login")), True)
    check_headers(c.get(sv.path("/staff/")), True)  # the redirect too
    ref = sv.ref_of(receipt)
    for who in ("pat", "ada"):
        s = sv.login(who)
        check_headers(s.last, True)
        for path in ("/staff/", "/staff/record/" + ref, "/staff/audit",
                     "/staff/record/ZZZZZ-ZZZZZ"):
            check_headers(s.get(sv.path(path)), True)
        check_headers(s.get(sv.httpd.base + "-keys"), True)
    css = c.get(sv.path("/style.css"))
    assert css.header("Content-Type").startswith("text/css")
    assert "<script" not in c.get(sv.path("/")).text.lower()


def test_sessions_shared_by_front_ends(sv, workdir):
    """Sessions live in PostgreSQL: a second httpd on the same database accepts them."""
    b = Httpd(workdir / "httpd-b", sv.db, sv.pki, sv.daemon.port, name="httpd-b").start()
    try:
        a_client = sv.login("uma")
        b_client = b.client()
        b_client.cookies = dict(a_client.cookies)
        page = b_client.get(b.path("/staff/"))
        assert page.status == 200 and "uma" in page.text
        assert b_client.post(b.path("/staff/logout"), {"csrf": page.csrf()}).status == 303
        assert a_client.get(sv.path("/staff/")).status == 303
    finally:
        b.stop()
    assert not b.error_lines()


def test_no_secret_in_logs(sv_factory):
    sv = sv_factory(loglevel="debug")
    secret_value = "Value-Never-Logged-42"
    r = sv.submit({"name": secret_value, "ssn": "078-05-1120"})
    ref = sv.ref_of(r)
    uma = sv.login("uma")
    csrf = csrf_of(sv, uma, ref)
    uma.post(sv.path("/staff/record/%s/update" % ref),
             {"csrf": csrf, "field": "notes", "value": secret_value + "-upd"})
    sv.login("pat", "Wrong-Password-Never-Logged")
    tok = session_cookie(uma)
    logs = sv.httpd.log_text() + sv.httpd.access_log.read_text()
    for s in (secret_value, "Never-Logged", STAFF["uma"][0], tok, csrf):
        assert s not in logs, s
    audit = " ".join(str(x) for row in sv.db.query("SELECT * FROM audit") for x in row)
    assert secret_value not in audit and "Never-Logged" not in audit


# ---- throttling: reserved before the password check, keyed, bounded ----

def failed_count(sv, outcome):
    return sv.db.query("SELECT count(*) FROM audit WHERE action = 'sign-in' AND outcome = %s",
                       (outcome,))[0][0]


@pytest.mark.log_allows(r"SV01208")
def test_concurrent_burst_gets_no_more_checks_than_the_limit(sv_factory):
    """Thirty sign-ins for one name at the same moment: each takes its place
    in the throttle before its password is checked, so exactly as many are
    checked as the limit allows, and the rest are refused at once."""
    import threading
    sv = sv_factory(threads=40, dbd_max=40,
                    directives={"SplitVaultLoginConcurrency": "64"})
    c = sv.client()
    page = c.get(sv.path("/staff/login"))
    token, cookies = page.csrf(), dict(c.cookies)
    start = threading.Barrier(30)
    results = [None] * 30

    def attempt(i):
        cl = sv.client()
        cl.cookies = dict(cookies)
        start.wait()
        results[i] = cl.post(sv.path("/staff/login"),
                             {"csrf": token, "name": "dora", "password": "wrong-%02d-xxxx" % i})

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r.status == 200 and FAILED in r.text for r in results)
    assert failed_count(sv, "failed") == 5        # SplitVaultLoginThrottle 5 900
    assert failed_count(sv, "throttled") == 25
    # the right password is refused now too, with the same page
    r = sv.login("dora").last
    assert r.status == 200 and FAILED in r.text
    sv.allowed_errors.append(r"SV0120[26]")


@pytest.mark.log_allows(r"SV01208")
def test_throttled_attempt_is_answered_without_a_password_check(sv_factory):
    """A paused name (known or not) is refused at once: the test fault that
    makes a password check take 2 s does not delay it."""
    import time as _time
    sv = sv_factory(directives={"SplitVaultLoginThrottle": "1 60"})
    slow = {"X-SplitVault-Fault": "login-slow"}
    for name in ("uma", "ghost"):
        c = sv.client()
        page = c.get(sv.path("/staff/login"))
        form = {"csrf": page.csrf(), "name": name, "password": "wrong-password-xyz"}
        t0 = _time.monotonic()
        first = c.post(sv.path("/staff/login"), form, headers=slow)
        checked = _time.monotonic() - t0
        t0 = _time.monotonic()
        second = c.post(sv.path("/staff/login"), form, headers=slow)
        refused = _time.monotonic() - t0
        assert FAILED in first.text and FAILED in second.text
        assert checked >= 2.0 and refused < 1.0, (name, checked, refused)
    assert failed_count(sv, "throttled") == 2 and failed_count(sv, "failed") == 2


def test_password_checks_per_child_are_bounded(sv_factory):
    """With every verification slot of the child busy, a sign-in gets 503
    at once and is not counted; afterwards sign-in works."""
    import threading
    sv = sv_factory(server_limit=1, directives={"SplitVaultLoginConcurrency": "1"})
    out = {}

    def slow():
        c = sv.client()
        page = c.get(sv.path("/staff/login"))
        out["r"] = c.post(sv.path("/staff/login"),
                          {"csrf": page.csrf(), "name": "uma", "password": STAFF["uma"][0]},
                          headers={"X-SplitVault-Fault": "login-slow"})

    c = sv.client()
    page = c.get(sv.path("/staff/login"))
    t = threading.Thread(target=slow)
    t.start()
    # the slow one holds the slot once it has taken its place in the throttle
    wait_until(lambda: sv.db.query("SELECT coalesce(sum(pending), 0) FROM login_throttle")[0][0],
               10, "the slow sign-in did not reach its password check")
    r = c.post(sv.path("/staff/login"),
               {"csrf": page.csrf(), "name": "pat", "password": STAFF["pat"][0]})
    t.join(30)
    assert r.status == 503 and "Sign-in busy" in r.text and r.header("Retry-After") == "1"
    assert out["r"].status == 303
    assert sv.login("pat").last.status == 303
    assert failed_count(sv, "throttled") == 0


def test_failure_writes_nothing_per_account(sv):
    """A failed sign-in for an existing name does the same database work as
    for an unknown one: the account's row is not written."""
    before = sv.db.query("SELECT xmin::text FROM staff WHERE name = 'uma'")[0][0]
    for _ in range(3):
        assert FAILED in sv.login("uma", "wrong-password-xyz").last.text
        assert FAILED in sv.login("nobody-at-all", "wrong-password-xyz").last.text
    assert sv.db.query("SELECT xmin::text FROM staff WHERE name = 'uma'")[0][0] == before


def hmac_key(key_hex, name):
    import hmac
    return "n:" + hmac.new(bytes.fromhex(key_hex), name.lower().encode(),
                           hashlib.sha256).hexdigest()


@pytest.mark.log_allows(r"SV01208")
def test_names_keyed_by_hmac_under_the_login_key(sv_factory, workdir):
    """The throttle stores a name only as HMAC-SHA256 under the login key
    (SplitVaultLoginKeyFile, made by splitvault-admin login-key): not the
    unsalted hash of old, and two front ends with the same key file count a
    name together."""
    keyfile = workdir / "login.key"
    from svtest.core import run
    from svtest.fixtures_httpd import ADMIN
    assert run([ADMIN, "login-key", keyfile], check=False).returncode == 0
    key_hex = keyfile.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key_hex) and (keyfile.stat().st_mode & 0o777) == 0o600
    p = run([ADMIN, "login-key", keyfile], check=False)  # never overwrites a key
    assert p.returncode != 0 and keyfile.read_text().strip() == key_hex
    directives = {"SplitVaultLoginKeyFile": str(keyfile), "SplitVaultLoginThrottle": "3 60"}
    sv = sv_factory(directives=directives)
    for _ in range(2):
        sv.login("Uma", "wrong-password-xyz")
    keys = {k for (k,) in sv.db.query("SELECT key FROM login_throttle WHERE key LIKE 'n:%%'")}
    assert keys == {hmac_key(key_hex, "uma")}
    pairs = {k for (k,) in sv.db.query("SELECT key FROM login_throttle WHERE key LIKE 'p:%%'")}
    assert pairs == {"p:" + hmac_key(key_hex, "uma\n127.0.0.1")[2:]}
    old = "n:" + hashlib.sha256(b"uma").hexdigest()[:32]
    assert old not in keys
    # a second front end with the same key file: the name's count is shared
    b = Httpd(workdir / "httpd-b", sv.db, sv.pki, sv.daemon.port, name="httpd-b",
              directives=directives).start()
    try:
        c = b.client()
        login = c.get(b.path("/staff/login"))
        r = c.post(b.path("/staff/login"), {"csrf": login.csrf(), "name": "uma",
                                             "password": "wrong-password-xyz"})
        assert FAILED in r.text
        r = c.post(b.path("/staff/login"), {"csrf": login.csrf(), "name": "uma",
                                             "password": STAFF["uma"][0]})
        assert r.status == 200 and FAILED in r.text  # paused by the 3 attempts of both
    finally:
        b.stop()
    assert sv.login("uma").last.status == 200
    sv.allowed_errors.append(r"SV0120[26]")


def test_login_key_file_checked_at_start(workdir, pki):
    import types
    db = types.SimpleNamespace(dsn="host=127.0.0.1 port=1 dbname=none user=postgres")
    good = workdir / "good.key"
    good.write_text("ab" * 32 + "\n")
    good.chmod(0o600)
    shown = workdir / "shown.key"
    shown.write_text("ab" * 32 + "\n")
    shown.chmod(0o644)
    short = workdir / "short.key"
    short.write_text("abcd\n")
    short.chmod(0o600)
    for f, ok, msg in ((good, True, None), (shown, False, "readable by others"),
                       (short, False, "not 64 hex digits")):
        h = Httpd(workdir / ("h-" + f.stem), db, pki, 1,
                  directives={"SplitVaultLoginKeyFile": str(f)})
        p = h.check()
        assert (p.returncode == 0) == ok, p.stderr
        if msg:
            assert msg in p.stderr, p.stderr


def test_expired_throttle_rows_are_purged(sv):
    """Rows whose window has passed go as sign-ins fail; a pause in force
    stays."""
    sv.db.query("INSERT INTO login_throttle (key, failures, first_failure, locked_until) "
                "SELECT 'a:198.51.100.' || g, 3, now() - interval '2 days', NULL "
                "FROM generate_series(1, 50) g")
    sv.db.query("INSERT INTO login_throttle (key, failures, first_failure, locked_until) "
                "VALUES ('a:203.0.113.9', 20, now() - interval '2 days', "
                "now() + interval '1 hour')")
    assert FAILED in sv.login("uma", "wrong-password-xyz").last.text
    keys = {k for (k,) in sv.db.query("SELECT key FROM login_throttle")}
    assert not [k for k in keys if k.startswith("a:198.51.100.")]
    assert "a:203.0.113.9" in keys and "a:127.0.0.1" in keys


def test_ipv6_addresses_count_by_their_64(sv_factory):
    """Addresses of one IPv6 /64 share one count; another /64 does not; an
    IPv4-mapped address counts as its IPv4 address."""
    sv = sv_factory(extra=REMOTEIP,
                    directives={"SplitVaultLoginThrottle": "100 60",
                                "SplitVaultLoginThrottleAddress": "2 60"})

    def attempt(addr, name, pw="wrong-password-xyz"):
        c = sv.client()
        page = c.get(sv.path("/staff/login"), headers={"X-Forwarded-For": addr})
        return c.post(sv.path("/staff/login"), {"csrf": page.csrf(), "name": name,
                                                 "password": pw},
                      headers={"X-Forwarded-For": addr})

    attempt("2001:db8:1:2::10", "a1")
    attempt("2001:db8:1:2:ffff:ffff:ffff:fffe", "a2")
    r = attempt("2001:db8:1:2::99", "uma", STAFF["uma"][0])   # the same /64: paused
    assert r.status == 200 and FAILED in r.text
    r = attempt("2001:db8:1:3::10", "uma", STAFF["uma"][0])   # the next /64: fine
    assert r.status == 303
    attempt("::ffff:192.0.2.7", "a3")
    keys = {k for (k,) in sv.db.query("SELECT key FROM login_throttle WHERE key LIKE 'a:%%'")}
    assert "a:2001:db8:1:2::/64" in keys and "a:192.0.2.7" in keys
    assert not [k for k in keys if k.startswith("a:2001:db8:1:2::") and k.endswith("0")]
    sv.allowed_errors.append(r"SV0120[26]")


@pytest.mark.log_allows(r"SV01202")
def test_spraying_stops_at_the_limit_between_successful_sign_ins(sv_factory):
    """Someone with one account of their own alternates password guesses
    against other names with successful sign-ins to that account: a success
    never gives the address back a failure, so only as many guesses are
    checked as the address's limit allows, whatever the order."""
    sv = sv_factory(directives={"SplitVaultLoginThrottle": "100 600",
                                "SplitVaultLoginThrottleAddress": "4 600"})
    statuses = []
    for i in range(10):
        guess = sv.login("victim%02d" % i, "guess-%02d-xxxxxxxx" % i).last
        assert guess.status == 200 and FAILED in guess.text
        statuses.append(sv.login("dora").last.status)
    assert failed_count(sv, "failed") == 4                 # guesses checked
    assert failed_count(sv, "throttled") == 6 + statuses.count(200)
    assert statuses[:3] == [303] * 3 and 303 not in statuses[3:], statuses
    # the address's failures were never taken back, and no place is left
    # taken
    assert sv.db.query("SELECT failures, pending, locked_until > now() FROM login_throttle "
                       "WHERE key = 'a:127.0.0.1'") == [(4, 0, True)]


# ---- per (name, address) pauses, and the name-wide limit -----------------

def signin_from(sv, addr, name, pw="wrong-password-xyz"):
    """One sign-in attempt from addr (mod_remoteip, X-Forwarded-For)."""
    c = sv.client()
    page = c.get(sv.path("/staff/login"), headers={"X-Forwarded-For": addr})
    return c.post(sv.path("/staff/login"), {"csrf": page.csrf(), "name": name, "password": pw},
                  headers={"X-Forwarded-For": addr})


def name_rows(sv):
    return sv.db.query("SELECT failures, coalesce(locked_until > now(), false) "
                       "FROM login_throttle WHERE key LIKE 'n:%%'")


@pytest.mark.log_allows(r"SV01208")
def test_failures_from_one_address_pause_the_name_only_there(sv_factory):
    """Address A guessing at uma pauses uma for A alone: uma signs in from
    B, and however long A goes on, A cannot pause uma for everyone (its
    refused attempts count nowhere)."""
    sv = sv_factory(extra=REMOTEIP, directives={"SplitVaultLoginThrottle": "3 600",
                                                "SplitVaultLoginThrottleAddress": "100 600"})
    a, b = "192.0.2.21", "198.51.100.22"
    for _ in range(3):
        assert FAILED in signin_from(sv, a, "uma").text
    r = signin_from(sv, a, "uma", STAFF["uma"][0])
    assert r.status == 200 and FAILED in r.text  # paused for A
    for _ in range(20):
        assert FAILED in signin_from(sv, a, "uma").text
    assert failed_count(sv, "failed") == 3 and failed_count(sv, "throttled") == 21
    assert name_rows(sv) == [(3, False)]
    assert signin_from(sv, b, "uma", STAFF["uma"][0]).status == 303
    assert FAILED in signin_from(sv, a, "uma", STAFF["uma"][0]).text  # still paused for A
    log = sv.httpd.log_text()
    assert log.count("SV01208: sign-in paused for 600 s after 3 failures") == 1, log
    assert "SV01206" not in log


@pytest.mark.log_allows(r"SV01206")
def test_name_wide_limit_trips_with_several_addresses(sv_factory):
    """Failures from several addresses add up per name: past
    SplitVaultLoginThrottleName the name is paused from everywhere; other
    names are not."""
    sv = sv_factory(extra=REMOTEIP, directives={"SplitVaultLoginThrottle": "2 600",
                                                "SplitVaultLoginThrottleAddress": "100 600",
                                                "SplitVaultLoginThrottleName": "5 600"})
    for i in (1, 2, 3):
        for _ in range(2):
            assert FAILED in signin_from(sv, "203.0.113.%d" % i, "uma").text
    assert failed_count(sv, "failed") == 5 and failed_count(sv, "throttled") == 1
    assert (5, True) in name_rows(sv)
    r = signin_from(sv, "192.0.2.99", "uma", STAFF["uma"][0])
    assert r.status == 200 and FAILED in r.text
    assert signin_from(sv, "192.0.2.99", "pat", STAFF["pat"][0]).status == 303
    assert sv.httpd.log_text().count("SV01206: sign-in paused for 600 s after 5 failures") == 1


# before schema version 5 (SV01113: no console columns yet)
@pytest.mark.log_allows(r"SV01113")
def test_schema_2_leaves_only_sign_in_unavailable(sv_factory):
    """This module's sign-in needs schema version 3; on a database still at
    version 2 every other page works, sign-in says it is unavailable and
    the log says why, and once `splitvault-admin schema` has run, sign-in
    works without a restart."""
    from svtest.fixtures_httpd import SQL_MAIN
    sv = sv_factory()
    sv.db.query(UNDO_SCHEMA_4 % {"web": sv.db.web})
    sv.db.query("DROP FUNCTION login_throttle_reserve(text[], integer[], integer[]); "
                "ALTER TABLE login_throttle DROP COLUMN pending, DROP COLUMN pending_until; "
                "DELETE FROM schema_version WHERE version = 3")
    sv.httpd.stop()
    sv.httpd.start()  # connections made afresh, on version 2
    assert sv.submit(GOOD).status == 200
    r = sv.login("uma").last
    assert r.status == 503 and "Sign-in unavailable" in r.text
    assert "SV01111: cannot prepare svm_thr_reserve (the database needs schema version 3" \
        in sv.httpd.log_text()
    sv.allowed_errors.append(r"SV01111: cannot prepare svm_thr_reserve \(the database needs "
                             r"schema version 3")
    out = sv.db.admin("schema", "--sql-dir", SQL_MAIN).stdout
    assert "applied schema version 3" in out and "applied schema version 4" in out
    assert sv.login("uma").last.status == 303
    assert sv.submit(GOOD).status == 200
