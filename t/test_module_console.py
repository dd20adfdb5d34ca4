"""The staff console (SplitVaultStaffConsole On, DBDParams the console role):
staff accounts, their sessions and everyone's own password on the web;
and what a server without it does (404, the web role still cannot write
staff, must-change accounts sent to the console)."""
import base64
import hashlib
import hmac
import html
import os
import re
import sys
import threading
import urllib.parse
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "pylib"))
from svtest.fixtures_httpd import STAFF, SQL_MAIN, Httpd  # noqa: E402
from svtest.data import GOOD, UNDO_SCHEMA_5  # noqa: E402


CONSOLE_GETS = ["/staff/console", "/staff/console/account?name=uma"]
CONSOLE_POSTS = ["/staff/console/create", "/staff/console/account"]


@pytest.fixture
def con(sv_factory):
    return sv_factory(console=True)


@pytest.fixture
def pub(con):
    """A public server (no console, the web role) on the console's database,
    as an installation runs them: two servers, one database."""
    h = Httpd(con.dir / "public", con.db, con.pki, con.daemon.port, name="public")
    h.start()
    yield h
    h.stop()
    bad = h.error_lines(con.allowed_errors)
    assert not bad, "unexpected errors in the public httpd's log:\n" + "\n".join(bad)


def login_at(h, name, password=None):
    """Sign in at httpd h; the signed-in client."""
    c = h.client()
    page = c.get(h.path("/staff/login"))
    assert page.status == 200, page.text
    c.last = c.post(h.path("/staff/login"), {"csrf": page.csrf(), "name": name,
                                             "password": password or STAFF[name][0]})
    return c


def forged_session(sv, name, console=None, role="web"):
    """What a compromised public server can do with the web role's
    credentials: a sessions row of its own token for staff member name
    (console: also name the console column). The token's cookie value and
    the CSRF token a page of that session would carry."""
    tok = os.urandom(32)
    conn = sv.db.connect_web() if role == "web" else sv.db.connect_console()
    try:
        cur = conn.cursor()
        cols, vals = "token_hash, staff_id, expires", "%s, id, now() + interval '1 hour'"
        if console is not None:
            cols, vals = cols + ", console", vals + ", %s"
        cur.execute("INSERT INTO sessions (%s) SELECT %s FROM staff WHERE name = %%s"
                    % (cols, vals), (hashlib.sha256(tok).digest(),)
                    + ((console,) if console is not None else ()) + (name,))
    finally:
        conn.close()
    cookie = base64.urlsafe_b64encode(tok).rstrip(b"=").decode()
    csrf = hmac.new(tok, b"splitvault/v1 csrf", hashlib.sha256).hexdigest()
    return cookie, csrf


SESSION_COOKIE = "__Host-splitvault"


def with_cookie(h, cookie):
    c = h.client()
    c.cookies[SESSION_COOKIE] = cookie
    return c


def create(sv, c, name, caps=(), password=None, confirm=False, csrf=None):
    page = c.get(sv.path("/staff/console"))
    assert page.status == 200, page.text
    form = {"csrf": page.csrf() if csrf is None else csrf, "account": name, "create": "1"}
    for cap in caps:
        form["can_" + cap] = "1"
    if password is not None:
        form.update(pwmode="set", password=password, password2=password)
    else:
        form["pwmode"] = "generate"
    if confirm:
        form["confirm"] = "1"
    return c.post(sv.path("/staff/console/create"), form)


def new_password(resp):
    m = re.search(r'<code id="new-password"[^>]*>([^<]+)</code>', resp.text)
    return m.group(1) if m else None


def account(sv, c, name):
    return c.get(sv.path("/staff/console/account?name=" + urllib.parse.quote(name)))


def act(sv, c, name, action, **extra):
    page = account(sv, c, name)
    assert page.status == 200, page.text
    form = {"csrf": page.csrf(), "account": name, "action": action, "apply": "1"}
    form.update(extra)
    return c.post(sv.path("/staff/console/account"), form)


def change_password(sv, c, current, new, new2=None):
    page = c.get(sv.path("/staff/password"))
    assert page.status == 200, page.text
    return c.post(sv.path("/staff/password"), {"csrf": page.csrf(), "current": current,
                                                "new": new, "new2": new if new2 is None
                                                else new2, "change": "1"})


def audit(sv, action):
    return sv.db.query("SELECT actor, outcome, coalesce(detail, '') FROM audit "
                       "WHERE action = %s ORDER BY id", (action,))


def staff_row(sv, name):
    rows = sv.db.query("SELECT can_update, can_decrypt, can_admin, disabled, must_change "
                       "FROM staff WHERE name = %s", (name,))
    return rows[0] if rows else None


def signed_in(sv, c):
    r = c.get(sv.path("/staff/"))
    return r.status == 200


def nowhere_but_once(sv, secret):
    """The secret is in no log line and no audit row."""
    assert secret not in sv.httpd.log_text()
    if sv.httpd.access_log.exists():
        assert secret not in sv.httpd.access_log.read_text()
    for row in sv.db.query("SELECT * FROM audit"):
        assert secret not in repr(row)


def test_create_with_generated_password_shown_once(con):
    ada = con.login("ada")
    r = create(con, ada, "gina", caps=("update",))
    assert r.status == 200, r.text
    assert 'id="result"' in r.text and "gina" in r.text
    assert r.header("Cache-Control") == "no-store"
    pw = new_password(r)
    assert pw and re.fullmatch(r"[2-9A-HJ-NP-Z]{5}(-[2-9A-HJ-NP-Z]{5}){3}-[2-9A-HJ-NP-Z]{6}", pw)
    assert staff_row(con, "gina") == (True, False, False, False, True)
    # shown once: not on the account page nor the list
    assert pw not in account(con, ada, "gina").text
    assert pw not in ada.get(con.path("/staff/console")).text
    # audited, without the password
    assert audit(con, "staff-create")[-1][:2] == ("ada", "ok")
    assert "gina" in audit(con, "staff-create")[-1][2]
    # it signs in, to the password page only, until it is changed
    g = con.login("gina", pw)
    assert g.last.status == 303
    assert g.last.header("Location") == con.path("/staff/password")
    assert audit(con, "sign-in")[-1] == ("gina", "ok", "password must be changed")
    r = g.get(con.path("/staff/"))
    assert r.status == 303 and r.header("Location") == con.path("/staff/password")
    ref = con.ref_of(con.submit(GOOD))
    page = g.get(con.path("/staff/password"))
    assert page.status == 200 and 'id="must-change"' in page.text
    r = g.post(con.path("/staff/record/%s/update" % ref),
               {"csrf": page.csrf(), "field": "notes", "value": "x"})
    assert r.status == 403
    assert con.db.query("SELECT actor, action, outcome, detail FROM audit WHERE record_ref = %s "
                        "ORDER BY id DESC LIMIT 1", (ref,)) == \
        [("gina", "update", "refused", "the password must be changed first")]
    assert g.get(con.path("/staff/record/" + ref)).status == 303
    r = change_password(con, g, pw, "gina's own password 1")
    assert r.status == 200 and 'id="result"' in r.text, r.text
    assert staff_row(con, "gina")[4] is False
    assert signed_in(con, g)
    assert con.login("gina", "gina's own password 1").last.status == 303
    nowhere_but_once(con, pw)
    nowhere_but_once(con, "gina's own password 1")


def test_create_with_a_set_password(con):
    ada = con.login("ada")
    n = con.db.count("staff")
    r = create(con, ada, "hugo", password="short")
    assert r.status == 400 and "at least 12 characters" in r.text
    # characters, not bytes: eleven of three bytes each are too few
    r = create(con, ada, "hugo", password="\u20ac" * 11)
    assert r.status == 400 and "at least 12 characters" in r.text
    page = ada.get(con.path("/staff/console"))
    r = ada.post(con.path("/staff/console/create"),
                 {"csrf": page.csrf(), "account": "hugo", "pwmode": "set",
                  "password": "hugo-password-001", "password2": "hugo-password-002"})
    assert r.status == 400 and "differ" in r.text
    r = create(con, ada, "bad name!", password="hugo-password-001")
    assert r.status == 400 and "A name is 1 to 64" in r.text
    assert con.db.count("staff") == n
    r = create(con, ada, "hugo", caps=("decrypt",), password="hugo-password-001")
    assert r.status == 200 and 'id="result"' in r.text
    assert new_password(r) is None and "hugo-password-001" not in r.text
    assert staff_row(con, "hugo") == (False, True, False, False, True)
    r = create(con, ada, "hugo", password="hugo-password-001")
    assert r.status == 409
    assert "A staff account named 'hugo' exists: names are case-insensitive" \
        in html.unescape(r.text)
    # another case of the same name is the same name
    r = create(con, ada, "HUGO", password="hugo-password-001")
    assert r.status == 409
    assert "A staff account named 'hugo' exists: names are case-insensitive" \
        in html.unescape(r.text)
    assert staff_row(con, "HUGO") is None
    h = con.login("hugo", "hugo-password-001")
    assert h.last.header("Location") == con.path("/staff/password")
    nowhere_but_once(con, "hugo-password-001")
    outcomes = [o for _, o, _ in audit(con, "staff-create")]
    assert outcomes.count("refused") == 6 and outcomes.count("ok") == 1


def test_separation_of_duties_needs_confirmation(con):
    ada = con.login("ada")
    r = create(con, ada, "ivan", caps=("admin", "decrypt"))
    assert r.status == 200 and 'id="sod-warning"' in r.text
    assert 'id="create-confirm"' in r.text and new_password(r) is None
    assert staff_row(con, "ivan") is None
    assert audit(con, "staff-create")[-1][1] == "held"
    # a password typed in is never sent back: the form asks for it again
    r = create(con, ada, "ivan", caps=("admin", "decrypt"), password="ivan-password-0001")
    assert r.status == 200 and 'id="sod-warning"' in r.text
    assert "ivan-password-0001" not in r.text
    assert 'id="create-pw-set" name="pwmode" value="set" checked' in r.text
    assert staff_row(con, "ivan") is None
    r = create(con, ada, "ivan", caps=("admin", "decrypt"), confirm=True)
    assert r.status == 200 and new_password(r)
    assert staff_row(con, "ivan")[:3] == (False, True, True)
    assert "admin and decrypt confirmed" in audit(con, "staff-create")[-1][2]
    # a change of capabilities too
    r = act(con, ada, "pat", "caps", can_update="1", can_decrypt="1", can_admin="1")
    assert r.status == 200 and 'id="sod-warning"' in r.text and 'id="caps-confirm"' in r.text
    assert staff_row(con, "pat")[2] is False
    r = act(con, ada, "pat", "caps", can_update="1", can_decrypt="1", can_admin="1",
            confirm="1")
    assert r.status == 303
    assert staff_row(con, "pat")[:3] == (True, True, True)
    rows = audit(con, "staff-caps")
    assert [o for _, o, _ in rows] == ["held", "ok"]
    assert "admin and decrypt confirmed" in rows[-1][2]
    # and splitvault-admin warns the same way
    p = con.db.admin("staff-caps", "uma", "--decrypt", "--admin")
    assert "separation of duties" in p.stderr
    p = con.db.admin("staff-add", "ivy", "--admin", "--decrypt", input="ivy-password-0001\n")
    assert "separation of duties" in p.stderr


def test_capabilities_change(con):
    ada = con.login("ada")
    r = act(con, ada, "uma", "caps", can_decrypt="1")
    assert r.status == 303
    page = ada.get(r.header("Location"))
    assert 'id="result"' in page.text and "capabilities were changed" in page.text
    assert staff_row(con, "uma")[:3] == (False, True, False)
    assert audit(con, "staff-caps")[-1] == ("ada", "ok", "account uma: decrypt")
    # read from the database on the next request: uma may decrypt now
    u = con.login("uma")
    assert 'Decrypt' in u.get(con.path("/staff/record/" + con.ref_of(con.submit(GOOD)))).text


def test_disable_ends_sessions_and_enable(con):
    ada = con.login("ada")
    u = con.login("uma")
    assert signed_in(con, u)
    r = act(con, ada, "uma", "disable")
    assert r.status == 303
    assert not signed_in(con, u)
    assert con.db.query("SELECT count(*) FROM sessions s JOIN staff st ON st.id = s.staff_id "
                        "WHERE st.name = 'uma'")[0][0] == 0
    assert staff_row(con, "uma")[3] is True
    assert con.login("uma").last.status == 200  # the sign-in page again: failed
    assert audit(con, "staff-disable")[-1][:2] == ("ada", "ok")
    assert "1 session(s) ended" in audit(con, "staff-disable")[-1][2]
    r = act(con, ada, "uma", "enable")
    assert r.status == 303
    assert con.login("uma").last.status == 303
    assert audit(con, "staff-enable")[-1][:2] == ("ada", "ok")


def test_reset_password(con):
    ada = con.login("ada")
    u = con.login("uma")
    r = act(con, ada, "uma", "reset", pwmode="generate")
    assert r.status == 200 and 'id="result"' in r.text
    pw = new_password(r)
    assert pw and not signed_in(con, u)
    assert staff_row(con, "uma")[4] is True
    assert con.login("uma").last.status == 200  # the old password fails
    u = con.login("uma", pw)
    assert u.last.header("Location") == con.path("/staff/password")
    # set by the admin
    r = act(con, ada, "uma", "reset", pwmode="set", password="uma-reset-pass-02",
            password2="uma-reset-pass-02")
    assert r.status == 200 and new_password(r) is None
    assert con.login("uma", "uma-reset-pass-02").last.status == 303
    # splitvault-admin staff-passwd is the way back in: no change forced
    con.db.admin("staff-passwd", "uma", input="uma-cli-password-3\n")
    assert staff_row(con, "uma")[4] is False
    assert con.login("uma", "uma-cli-password-3").last.header("Location") == \
        con.path("/staff/")
    # one's own password is changed on the password page, not reset
    r = act(con, ada, "ada", "reset", pwmode="generate")
    assert r.status == 409 and new_password(r) is None
    assert [o for _, o, _ in audit(con, "staff-password-reset")] == ["ok", "ok", "refused"]
    nowhere_but_once(con, pw)
    nowhere_but_once(con, "uma-reset-pass-02")


def test_sessions_listed_and_ended(con):
    ada = con.login("ada")
    u1 = con.login("uma")
    u2 = con.login("uma")
    page = account(con, ada, "uma")
    ids = re.findall(r'<tr id="session-(\d+)">', page.text)
    assert len(ids) == 2
    assert "127.0.0.1" in page.text and 'id="current-session"' not in page.text
    # never a token or its hash
    for c in (u1, u2, ada):
        for v in c.cookies.values():
            assert v not in page.text
    for (h,) in con.db.query("SELECT encode(token_hash, 'hex') FROM sessions"):
        assert h not in page.text
    own = account(con, ada, "ada")
    assert own.text.count('id="current-session"') == 1
    # end one: that cookie no longer works, the other does
    sid = con.db.query("SELECT s.id FROM sessions s JOIN staff st ON st.id = s.staff_id "
                       "WHERE st.name = 'uma' ORDER BY s.created LIMIT 1")[0][0]
    r = act(con, ada, "uma", "end-session", session=str(sid))
    assert r.status == 303
    assert not signed_in(con, u1) and signed_in(con, u2)
    assert audit(con, "session-end")[-1] == ("ada", "ok", "account uma: session %d" % sid)
    r = act(con, ada, "uma", "end-session", session=str(sid))
    assert r.status == 409
    r = act(con, ada, "uma", "end-session", session="1 OR 1=1")
    assert r.status == 400
    # a session of another account is not ended through this one's page
    ada_sid = con.db.query("SELECT s.id FROM sessions s JOIN staff st ON st.id = s.staff_id "
                           "WHERE st.name = 'ada'")[0][0]
    r = act(con, ada, "uma", "end-session", session=str(ada_sid))
    assert r.status == 409 and signed_in(con, ada)
    r = act(con, ada, "uma", "end-all")
    assert r.status == 303 and not signed_in(con, u2)
    assert audit(con, "session-end-all")[-1][:2] == ("ada", "ok")


@pytest.mark.log_allows(r"SV01202", r"SV01206", r"SV01208")
def test_own_password(sv_factory):
    sv = sv_factory(console=True, directives={"SplitVaultLoginThrottle": "3 900"})
    d1 = sv.login("dora")
    d2 = sv.login("dora")
    pw = STAFF["dora"][0]
    r = change_password(sv, d1, "wrong password!!", "dora-new-password-1")
    assert r.status == 403 and "current password is wrong" in r.text
    r = change_password(sv, d1, pw, "dora-new-password-1", "dora-new-password-2")
    assert r.status == 400 and "differ" in r.text
    r = change_password(sv, d1, pw, "short")
    assert r.status == 400
    # twelve characters of two bytes each pass the length; eleven do not,
    # and neither does text that is not UTF-8
    r = change_password(sv, d1, pw, "\u00fc" * 11)
    assert r.status == 400 and "at least 12 characters" in r.text
    page = d1.get(sv.path("/staff/password"))
    r = d1.post(sv.path("/staff/password"), {"csrf": page.csrf(), "current": pw,
                                              "new": b"abcdefghijkl\xff",
                                              "new2": b"abcdefghijkl\xff", "change": "1"})
    assert r.status == 400 and "valid UTF-8" in r.text
    r = change_password(sv, d1, pw, "dora-new-password-1")
    assert r.status == 200 and 'id="result"' in r.text
    assert signed_in(sv, d1) and not signed_in(sv, d2)
    assert sv.login("dora", pw).last.status == 200
    assert sv.login("dora", "dora-new-password-1").last.status == 303
    rows = audit(sv, "password-change")
    assert [o for _, o, _ in rows] == ["failed", "ok"]
    assert rows[-1] == ("dora", "ok", "1 other session(s) ended")
    # a stolen session cannot guess the password faster than sign-in could
    d = sv.login("dora", "dora-new-password-1")
    for _ in range(3):
        assert change_password(sv, d, "guess-guess-guess", "dora-new-password-9").status == 403
    r = change_password(sv, d, "dora-new-password-1", "dora-new-password-9")
    assert r.status == 403
    assert audit(sv, "password-change")[-1][1] == "throttled"
    nowhere_but_once(sv, "dora-new-password-1")


def test_lockout_guards(con):
    ada = con.login("ada")
    r = act(con, ada, "ada", "disable")
    assert r.status == 409 and "cannot disable your own" in r.text
    r = act(con, ada, "ada", "caps", can_update="1")
    assert r.status == 409 and "own admin capability" in r.text
    assert staff_row(con, "ada")[2:4] == (True, False)
    r = ada.post(con.path("/staff/console/account"),
                 {"csrf": ada.get(con.path("/staff/console")).csrf(), "account": "nobody",
                  "action": "disable"})
    assert r.status == 404
    assert [o for _, o, _ in audit(con, "staff-disable")] == ["refused", "refused"]
    # two admins disable each other at once: one wins, an admin is left
    create(con, ada, "bob", caps=("admin",), password="bob-password-00001")
    con.db.query("UPDATE staff SET must_change = false WHERE name = 'bob'")
    bob = con.login("bob", "bob-password-00001")
    pages = {"ada": account(con, ada, "bob"), "bob": account(con, bob, "ada")}
    out = {}

    def disable(who, c, target):
        out[who] = c.post(con.path("/staff/console/account"),
                          {"csrf": pages[who].csrf(), "account": target,
                           "action": "disable"}).status

    ts = [threading.Thread(target=disable, args=("ada", ada, "bob")),
          threading.Thread(target=disable, args=("bob", bob, "ada"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert sorted(out.values())[0] == 303 and sorted(out.values())[1] != 303, out
    assert con.db.query("SELECT count(*) FROM staff WHERE can_admin AND NOT disabled")[0][0] == 1
    # the winner disabled the other, whose own request changed nothing
    winner, loser = ("ada", "bob") if out["ada"] == 303 else ("bob", "ada")
    assert staff_row(con, winner)[3] is False and staff_row(con, loser)[3] is True


def test_own_account_page_offers_nothing_refused(con):
    """An admin's own page offers no Disable or Reset (both refused): it
    says where one's own password is changed; its admin box is ticked,
    disabled and noted, and sent as a hidden field so the form still
    changes the rest. Another account's page offers all of it."""
    ada = con.login("ada")
    own = account(con, ada, "ada")
    assert own.status == 200
    for form in ('id="disable-form"', 'id="enable-form"', 'id="reset-form"'):
        assert form not in own.text
    note = re.search(r'<p id="own-account-note"[^>]*>(.*?)</p>', own.text).group(1)
    assert "cannot disable your own account" in note
    assert 'href="%s"' % con.path("/staff/password") in note
    box = re.search(r'<input type="checkbox" id="caps-admin"[^>]*>', own.text).group(0)
    assert " checked" in box and " disabled" in box
    assert 'id="own-admin-note"' in own.text
    assert '<input type="hidden" name="can_admin" value="1">' in own.text
    # the form as a browser sends it: the disabled box's hidden twin
    r = ada.post(con.path("/staff/console/account"),
                 {"csrf": own.csrf(), "account": "ada", "action": "caps", "can_admin": "1",
                  "can_update": "1", "apply": "1"})
    assert r.status == 303, r.text
    assert staff_row(con, "ada")[:3] == (True, False, True)
    other = account(con, ada, "uma")
    for form in ('id="disable-form"', 'id="reset-form"'):
        assert form in other.text
    assert 'id="own-account-note"' not in other.text
    assert 'id="own-admin-note"' not in other.text
    assert '<input type="hidden" name="can_admin"' not in other.text
    box = re.search(r'<input type="checkbox" id="caps-admin"[^>]*>', other.text).group(0)
    assert " disabled" not in box
    # the server still refuses what the page no longer offers
    r = act(con, ada, "ada", "caps", can_update="1")
    assert r.status == 409 and "own admin capability" in r.text
    assert staff_row(con, "ada")[2] is True


def test_typed_password_with_generate_refused(con):
    """A password typed while Generate is chosen is refused, not dropped
    for a generated one; the form comes back without it."""
    ada = con.login("ada")
    typed = "typed-but-generate-01"
    for fields in ({"password": typed, "password2": typed}, {"password": typed},
                   {"password2": typed}):
        page = ada.get(con.path("/staff/console"))
        form = {"csrf": page.csrf(), "account": "gen", "create": "1", "pwmode": "generate"}
        form.update(fields)
        r = ada.post(con.path("/staff/console/create"), form)
        assert r.status == 400, r.text
        assert "You typed a password but chose Generate" in r.text
        assert 'id="create-form"' in r.text and 'value="gen"' in r.text
        assert typed not in r.text and new_password(r) is None
        assert staff_row(con, "gen") is None
    # pwmode missing is Generate too
    r = ada.post(con.path("/staff/console/create"),
                 {"csrf": page.csrf(), "account": "gen", "password": typed,
                  "password2": typed})
    assert r.status == 400 and staff_row(con, "gen") is None
    # empty fields with Generate: generated as before
    r = create(con, ada, "gen")
    assert r.status == 200 and new_password(r)
    # the reset form likewise: nothing changed, uma still signs in
    r = act(con, ada, "uma", "reset", pwmode="generate", password=typed, password2=typed)
    assert r.status == 400 and "You typed a password but chose Generate" in r.text
    assert 'id="reset-form"' in r.text and typed not in r.text and new_password(r) is None
    assert staff_row(con, "uma")[4] is False
    assert con.login("uma").last.status == 303
    rows = audit(con, "staff-create")
    assert [o for _, o, _ in rows] == ["refused"] * 4 + ["ok"]
    assert rows[0][2] == "account gen: password not accepted"
    assert audit(con, "staff-password-reset") == [
        ("ada", "refused", "account uma: password not accepted")]
    nowhere_but_once(con, typed)


def test_refusals_lead_back(con):
    """A refused action's page links back to the account it concerned, or
    to the staff list when there is none."""
    ada = con.login("ada")
    back = re.compile(r'<a id="back-link" href="([^"]*)">([^<]*)</a>')

    def link(r):
        m = back.search(r.text)
        assert m, r.text
        return html.unescape(m.group(1)), m.group(2)

    r = act(con, ada, "ada", "disable")
    assert r.status == 409
    assert link(r) == (con.path("/staff/console/account?name=ada"), "Back to the account of ada")
    assert "Back to the records" not in r.text
    r = act(con, ada, "uma", "end-session", session="x")
    assert r.status == 400
    assert link(r) == (con.path("/staff/console/account?name=uma"), "Back to the account of uma")
    csrf = ada.get(con.path("/staff/console")).csrf()
    r = ada.post(con.path("/staff/console/account"),
                 {"csrf": csrf, "account": "uma", "action": "explode"})
    assert r.status == 400
    assert link(r) == (con.path("/staff/console/account?name=uma"), "Back to the account of uma")
    for form in ({"account": "nobody", "action": "disable"},
                 {"account": "<b>", "action": "disable"}):
        form["csrf"] = csrf
        r = ada.post(con.path("/staff/console/account"), form)
        assert r.status in (400, 404), r.text
        assert link(r) == (con.path("/staff/console"), "Back to the staff list")
    r = create(con, ada, "UMA")
    assert r.status == 409 and link(r) == (con.path("/staff/console"), "Back to the staff list")


def test_sessions_show_their_server(con, pub):
    """The account page tells console sessions from a public server's."""
    ada = con.login("ada")
    u_con = con.login("uma")
    u_pub = login_at(pub, "uma")
    assert u_con.last.status == 303 and u_pub.last.status == 303
    kinds = dict(con.db.query("SELECT s.id, s.console FROM sessions s JOIN staff st "
                              "ON st.id = s.staff_id WHERE st.name = 'uma'"))
    assert sorted(kinds.values()) == [False, True]
    page = account(con, ada, "uma")
    assert "<th>Server</th>" in page.text
    shown = dict((int(i), k) for i, k in re.findall(
        r'<tr id="session-(\d+)">.*?<td class="session-kind">([^<]*)</td>', page.text))
    assert shown == {i: "console" if c else "public server" for i, c in kinds.items()}


def test_non_admins_get_403_everywhere(con):
    u = con.login("uma")
    page = u.get(con.path("/staff/password"))
    assert page.status == 200
    n = con.db.count("audit")
    for path in CONSOLE_GETS:
        assert u.get(con.path(path)).status == 403, path
    for path in CONSOLE_POSTS:
        r = u.post(con.path(path), {"csrf": page.csrf(), "account": "uma", "action": "caps",
                                    "can_admin": "1", "can_decrypt": "1", "confirm": "1",
                                    "pwmode": "generate"})
        assert r.status == 403, path
    assert staff_row(con, "uma") == (True, False, False, False, False)
    rows = con.db.query("SELECT actor, outcome, detail FROM audit WHERE id > (SELECT max(id) "
                        "FROM audit) - %s ORDER BY id", (con.db.count("audit") - n,))
    assert len(rows) == 4 and all(r[:2] == ("uma", "denied") for r in rows)
    assert "staff-caps" in [a for (a,) in con.db.query("SELECT action FROM audit")]
    # a signed-out visitor: GETs go to sign-in, POSTs are refused
    v = con.client()
    assert v.get(con.path("/staff/console")).status == 303
    assert v.post(con.path("/staff/console/create"), {"account": "x"}).status == 403


@pytest.mark.log_allows(r"SV01402")
def test_csrf_required(con):
    ada = con.login("ada")
    n = con.db.count("staff")
    assert create(con, ada, "mallory", caps=("admin",), csrf="").status == 403
    assert create(con, ada, "mallory", caps=("admin",), csrf="0" * 64).status == 403
    r = ada.post(con.path("/staff/console/account"),
                 {"account": "uma", "action": "disable"})
    assert r.status == 403
    other = con.login("dora").get(con.path("/staff/password")).csrf()
    r = ada.post(con.path("/staff/password"), {"csrf": other, "current": STAFF["ada"][0],
                                               "new": "x" * 20, "new2": "x" * 20})
    assert r.status == 403
    assert con.db.count("staff") == n and staff_row(con, "uma")[3] is False
    rows = con.db.query("SELECT action, outcome, detail FROM audit WHERE outcome = 'refused'")
    assert {a for a, _, _ in rows} >= {"staff-create", "staff-disable", "password-change"}
    assert all("CSRF" in d for _, _, d in rows)


def test_console_off(sv_factory):
    """Without SplitVaultStaffConsole the console's pages do not exist, the
    staff pages work with the web role, the web role cannot write staff,
    and a must-change account is sent to the console."""
    sv = sv_factory(directives={"SplitVaultStaffConsoleURL": "https://console.example/sv/staff/password"})
    assert "user=%s" % sv.db.web in sv.httpd.dbd_params()
    ada = sv.login("ada")
    for path in CONSOLE_GETS + ["/staff/password"]:
        assert ada.get(sv.path(path)).status == 404, path
    page = ada.get(sv.path("/staff/"))
    assert page.status == 200
    assert 'id="nav-password" href="https://console.example/sv/staff/password"' in page.text
    assert 'id="nav-staff"' not in page.text
    for path in CONSOLE_POSTS + ["/staff/password"]:
        assert ada.post(sv.path(path), {"csrf": page.csrf()}).status == 404, path
    conn = sv.db.connect_web()
    try:
        for sql in ("INSERT INTO staff (name, pwhash) VALUES ('m', '$argon2id$x')",
                    "UPDATE staff SET pwhash = '$argon2id$x'",
                    "UPDATE staff SET must_change = false",
                    "UPDATE staff SET disabled = false",
                    "UPDATE staff SET can_admin = true",
                    "SELECT address, user_agent FROM sessions",
                    "SELECT password_changed FROM staff"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                conn.cursor().execute(sql)
    finally:
        conn.close()
    # an account whose password must be changed cannot sign in here
    sv.db.query("UPDATE staff SET must_change = true WHERE name = 'uma'")
    n = sv.db.count("sessions")
    r = sv.login("uma").last
    assert r.status == 403 and "must be changed at the staff console" in r.text
    assert "https://console.example/sv/staff/password" in r.text
    assert sv.db.count("sessions") == n
    assert audit(sv, "sign-in")[-1][:2] == ("uma", "refused")


@pytest.mark.log_allows(r"SV01114")
def test_console_on_with_the_web_role(sv_factory):
    """Console On but DBDParams the web role: no sign-in there (the web role
    may not make a console session), the log says why (SV01114), nothing
    changes."""
    sv = sv_factory(directives={"SplitVaultStaffConsole": "On"})
    assert "user=%s" % sv.db.web in sv.httpd.dbd_params()
    n = sv.db.count("sessions")
    r = sv.login("ada").last
    assert r.status == 503 and "Sign-in unavailable" in r.text
    assert sv.db.count("sessions") == n
    assert "SV01114: svm_con_sess_insert refused by the database" in sv.httpd.log_text()
    assert "SplitVaultStaffConsole needs the console role" in sv.httpd.log_text()
    assert sv.client().get(sv.path("/staff/console")).status == 303
    sv.allowed_errors.append(r"SV01114")


@pytest.mark.log_allows(r"SV01113", r"SV01302")
def test_schema_4_then_upgrade(con, pub):
    """On a database still at version 4 the public server's sign-in and
    staff pages work (no must-change, no addresses); the console makes no
    session (it accepts only console sessions, which need version 5);
    `schema` migrates to 5 and everything works without a restart, the
    public server's sessions kept. The grants of a version 4 installation
    do not let the web role read schema_version: that is a database before
    version 5 too."""
    con.db.query(UNDO_SCHEMA_5)
    con.db.query('REVOKE SELECT ON schema_version FROM "%s"' % con.db.web)
    for h in (con.httpd, pub):
        h.stop()
        h.start()
    p = login_at(pub, "ada")
    assert p.last.status == 303
    assert p.get(pub.path("/staff/")).status == 200
    c = login_at(con.httpd, "ada")
    assert c.last.status == 503 and "Sign-in unavailable" in c.last.text
    assert "SV01302: no sign-in at the staff console before schema version 5" \
        in con.httpd.log_text()
    con.allowed_errors.append(r"SV01302")
    out = con.db.admin("schema", "--sql-dir", SQL_MAIN).stdout
    assert "applied schema version 5" in out
    assert con.db.query("SELECT has_table_privilege(%s, 'schema_version', 'SELECT')",
                        (con.db.web,)) == [(True,)]
    assert p.get(pub.path("/staff/")).status == 200
    c = login_at(con.httpd, "ada")
    assert c.last.status == 303
    assert c.get(con.path("/staff/console")).status == 200
    assert staff_row(con, "uma")[4] is False
    assert con.db.query("SELECT console, address IS NULL FROM sessions ORDER BY created") == \
        [(False, True), (True, False)]


def test_forged_session_refused_by_the_console(con):
    """The web role (a compromised public server's credentials) may insert
    sessions rows, but makes no session the console accepts: on no route,
    GET or POST; nor may it mark a row as the console's."""
    n = con.db.count("staff")
    cookie, csrf = forged_session(con, "ada")
    c = with_cookie(con.httpd, cookie)
    for path in CONSOLE_GETS + ["/staff/", "/staff/password", "/staff/audit"]:
        r = c.get(con.path(path))
        assert r.status == 303 and r.header("Location").endswith("/staff/login"), path
    form = {"csrf": csrf, "account": "mallory", "create": "1", "can_admin": "1",
            "can_decrypt": "1", "confirm": "1", "pwmode": "generate"}
    r = c.post(con.path("/staff/console/create"), form)
    assert r.status in (303, 403) and 'id="result"' not in r.text
    r = c.post(con.path("/staff/console/account"),
               {"csrf": csrf, "account": "uma", "action": "reset", "apply": "1",
                "pwmode": "generate"})
    assert r.status in (303, 403) and 'id="result"' not in r.text
    r = c.post(con.path("/staff/password"), {"csrf": csrf, "current": "x" * 12,
                                              "new": "y" * 12, "new2": "y" * 12,
                                              "change": "1"})
    assert r.status in (303, 403) and 'id="result"' not in r.text
    assert con.db.count("staff") == n and staff_row(con, "mallory") is None
    # the web role may not write the column that makes a console session
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        forged_session(con, "ada", console=True)
    conn = con.db.connect_web()
    try:
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            conn.cursor().execute("UPDATE sessions SET console = true")
    finally:
        conn.close()
    # the console role's own row is one (the console's role is the console)
    cookie, _ = forged_session(con, "ada", console=True, role="console")
    assert with_cookie(con.httpd, cookie).get(con.path("/staff/console")).status == 200


def test_sessions_stay_on_their_kind_of_server(con, pub):
    """A console session is no session on the public server, and a public
    one none on the console: a cookie carried over (by a compromised public
    server, or a browser sending one host's cookie to another port) gets
    the sign-in page."""
    c = login_at(con.httpd, "ada")
    p = login_at(pub, "ada")
    assert c.last.status == 303 and p.last.status == 303
    assert c.get(con.path("/staff/console")).status == 200
    assert p.get(pub.path("/staff/")).status == 200
    assert sorted(con.db.query("SELECT console FROM sessions")) == [(False,), (True,)]
    for h, cookie in ((pub, c.cookies[SESSION_COOKIE]),
                      (con.httpd, p.cookies[SESSION_COOKIE])):
        for path in ("/staff/", "/staff/password", "/staff/console"):
            r = with_cookie(h, cookie).get(h.path(path))
            assert r.status in (303, 404), (h.name, path, r.status)
            assert r.status == 404 or r.header("Location").endswith("/staff/login")
    # both still work where they were made
    assert c.get(con.path("/staff/console")).status == 200
    assert p.get(pub.path("/staff/")).status == 200


@pytest.mark.log_allows(r"SV01111: cannot prepare svm_sess_insert5 \(the database is at "
                        r"schema version 5\)")
def test_schema_5_statement_failure_refuses(sv):
    """On a database at version 5 a statement of version 5 that cannot be
    prepared is an error: sign-in is refused, never made with the older
    statement that leaves out what version 5 records."""
    sv.db.query("ALTER TABLE sessions RENAME COLUMN user_agent TO agent")
    sv.httpd.stop()
    sv.httpd.start()
    n = sv.db.count("sessions")
    r = sv.login("ada").last
    assert r.status == 503 and "Sign-in unavailable" in r.text
    assert sv.db.count("sessions") == n
    assert "SV01111: cannot prepare svm_sess_insert5 (the database is at schema version 5)" \
        in sv.httpd.log_text()
    sv.allowed_errors.append(r"SV01111: cannot prepare svm_sess_insert5")


def test_names_differ_in_more_than_case(con, workdir):
    """`staff-add` refuses a name another account has in another case; the
    migration to version 5 refuses a database that already has such a pair,
    naming it, and applies once one of them is gone."""
    p = con.db.admin("staff-add", "ADA", input="ada-other-password-1\n", check=False)
    assert p.returncode == 1
    assert "a staff account named 'ada' exists: names are case-insensitive" in p.stderr
    con.db.query(UNDO_SCHEMA_5)
    con.db.query("INSERT INTO staff (name, pwhash) SELECT 'ADA', pwhash FROM staff "
                 "WHERE name = 'ada'")
    p = con.db.admin("schema", "--sql-dir", SQL_MAIN, check=False)
    assert p.returncode == 1
    assert "staff names must differ in more than case: 'ADA', 'ada'" in p.stderr
    assert con.db.query("SELECT max(version) FROM schema_version") == [(4,)]
    con.db.query("DELETE FROM staff WHERE name = 'ADA'")
    p = con.db.admin("schema", "--sql-dir", SQL_MAIN)
    assert "applied schema version 5" in p.stdout
    with pytest.raises(psycopg2.errors.UniqueViolation):
        con.db.query("INSERT INTO staff (name, pwhash) SELECT 'Ada', pwhash FROM staff "
                     "WHERE name = 'ada'")


def test_migration_commits_with_its_grants(con, workdir):
    """`schema` applies a migration and roles.sql in one transaction: when
    the grants cannot be applied, the migration is not either (a module
    already upgraded never meets version 5 without its grants)."""
    import shutil
    sql = workdir / "sql"
    shutil.copytree(SQL_MAIN, sql / "main")
    (sql / "roles.sql").write_text((SQL_MAIN.parent / "roles.sql").read_text()
                                   + "\nDO $$ BEGIN RAISE EXCEPTION 'grants broken'; END $$;\n")
    con.db.query(UNDO_SCHEMA_5)
    p = con.db.admin("schema", "--sql-dir", sql / "main", check=False)
    assert p.returncode == 1 and "grants broken" in p.stderr
    assert "applied schema version 5" not in p.stdout
    assert con.db.query("SELECT max(version) FROM schema_version") == [(4,)]
    p = con.db.admin("schema", "--sql-dir", SQL_MAIN)
    assert "applied schema version 5" in p.stdout
    assert "privileges of web role" in p.stdout
    assert con.db.query("SELECT has_sequence_privilege(%s, 'sessions_id_seq', 'USAGE')",
                        (con.db.web,)) == [(True,)]


def test_staff_passwd_all_or_nothing(con):
    """`staff-passwd` sets the hash, clears must-change and ends the
    account's sessions in one transaction: when a step fails, nothing
    changed and it says so."""
    ada = con.login("ada")
    r = act(con, ada, "uma", "reset", pwmode="generate")
    assert r.status == 200 and new_password(r)
    u = con.login("uma", new_password(r))
    before = con.db.query("SELECT pwhash, must_change FROM staff WHERE name = 'uma'")
    con.db.query("REVOKE DELETE ON sessions FROM %s" % con.db.owner)
    p = con.db.admin("staff-passwd", "uma", input="uma-own-password-1\n", check=False)
    assert p.returncode == 1 and "nothing changed" in p.stderr
    assert con.db.query("SELECT pwhash, must_change FROM staff WHERE name = 'uma'") == before
    assert u.get(con.path("/staff/password")).status == 200
    con.db.query("GRANT DELETE ON sessions TO %s" % con.db.owner)
    p = con.db.admin("staff-passwd", "uma", input="uma-own-password-1\n")
    assert "its sessions ended" in p.stdout
    assert con.db.query("SELECT must_change FROM staff WHERE name = 'uma'") == [(False,)]
    assert u.get(con.path("/staff/password")).status == 303
    assert con.login("uma", "uma-own-password-1").last.status == 303


def test_roles_console_option(pg):
    """`splitvault-admin roles --console NAME` names the console role."""
    from svtest.fixtures_httpd import MainDb
    db = MainDb.create(pg, console="sv_test_console2")
    try:
        assert db.query("SELECT current_setting('splitvault.console_role')")[0][0] == \
            "sv_test_console2"
        p = db.setup_roles()
        assert "console role sv_test_console2: privileges applied" in p.stdout
        p = db.admin("roles", "--console", "sv_test_web", "--sql-dir", SQL_MAIN, check=False)
        assert p.returncode == 1
        conn = db.connect_console()
        try:
            cur = conn.cursor()
            cur.execute("SELECT count(*) FROM staff")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("DELETE FROM staff")
        finally:
            conn.close()
    finally:
        db.drop()
