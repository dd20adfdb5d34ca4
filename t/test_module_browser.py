"""The pages as people use them, in a real browser (headless Chromium
through WebDriver: svtest.browser), against the real httpd, PostgreSQL and
splitvaultd over TLS.

A visitor sends the form and sees the reference; staff sign in, find a
record, replace a value (never shown back), decrypt, sign out (and back or
reload does not show staff pages again); an admin loads key1 through the
key page's file input; a wrong password shows the sign-in error. The same
with JavaScript switched off: the pages need none. Every page loaded is
checked for CSP violations and script errors in the browser's console.
What is asserted is what the person sees: the text of the page.
"""
import re

import pytest

from svtest import browser as svbrowser
from svtest import fixtures_browser
from svtest.data import GOOD, open_field
from svtest.fixtures_httpd import module_stack
from svtest.staffpages import FAILED, SESSION, sign_in, signed_in_as
from svtest.staffpages import web, web_nojs  # noqa: F401 (fixtures)

PASS = "browser tests key1 passphrase"
SIGNED_OUT = "You are signed out."
REF = re.compile(r"^[0-9A-Z]{5}-[0-9A-Z]{5}$")


@pytest.fixture(scope="module")
def stack(request, pg, pki):
    """One stack for the file (as sv_shared, with a passphrase on key1):
    every test makes the records it needs and leaves key1 as it wants it."""
    yield from module_stack(request, pg, pki, "sv-browser", key1_passphrase=PASS)


def sign_out(b):
    b.submit("Sign out")
    assert b.path == "/splitvault/staff/login?signed-out=1"
    assert b.text_of("p.note[role=alert]") == SIGNED_OUT
    assert SESSION not in b.cookies()


def replace_value(b, stack, ref, field, value):
    """On the record page: type value into the field's form, press Replace."""
    assert b.text_of("h1") == "Record " + ref
    b.fill("form:has(#v-%s)" % field, {"value": value})
    b.submit("Replace value", form="form:has(#v-%s)" % field)
    assert b.path == stack.path("/staff/record/%s?updated=%s" % (ref, field))


def key1_loaded(stack):
    page = stack.login("ada").get(stack.keys_path())
    return stack.key1.fingerprint in re.findall(r'name="fingerprint" value="([0-9a-f]{64})"',
                                                page.text)


def ensure_key1(stack):
    if not key1_loaded(stack):
        assert stack.upload_key1().status == 303


def test_browser_fixture_smoke(browser, browser_nojs, stack):
    """The browsers themselves: scripts run or not, the console is watched,
    a virtual authenticator comes and goes, the profile is removed."""
    page = ("data:text/html,<title>static</title>"
            "<script>document.title = 'scripted'</script>")
    assert browser.open(page).title == "scripted"
    assert browser_nojs.open(page).title == "static"
    assert browser.javascript and not browser_nojs.javascript
    with pytest.raises(svbrowser.BrowserConsoleError, match="Content Security Policy"):
        browser.open("data:text/html,<meta http-equiv='Content-Security-Policy' "
                     "content=\"default-src 'none'\"><style>p{}</style>")
    with pytest.raises(svbrowser.BrowserConsoleError, match="Uncaught Error: broken"):
        browser.open("data:text/html,<script>throw new Error('broken')</script>")
    aid = browser.add_authenticator()
    assert aid and browser.driver.get_credentials() == []
    browser.remove_authenticator()
    # a browser told of no server key trusts nothing of the test PKI
    with svbrowser.Browser() as b:
        profile = b.profile
        assert profile.is_dir()
        b.open(stack.httpd.url(stack.path("/")))
        assert not b.find_all("form[method=post]") and "Send securely" not in b.source()
        assert "ERR_CERT_AUTHORITY_INVALID" in b.page_text()
    assert not profile.exists()


def test_browser_fixture_fails_without_the_browser(monkeypatch, pki):
    """No chromium or chromedriver: the fixture fails the test, saying
    what to install; it never skips (the suite's machines have them)."""
    monkeypatch.setattr(svbrowser, "CHROMEDRIVER", svbrowser.Path("/nonexistent/chromedriver"))
    with pytest.raises(pytest.fail.Exception, match="chromium-driver"):
        next(fixtures_browser._browser(pki, True))


def test_visitor_sends_the_form_and_sees_the_reference(web, stack):
    values = {"name": "Zoë Browser-Visitor", "ssn": "078-05-1120",
              "notes": "typed in a browser\nsecond line <b>not markup</b>"}
    web.open(stack.path("/"))
    web.fill("form[method=post]", values)
    web.submit("Send securely")
    assert web.text_of("h1") == "Thank you: your submission is stored"
    ref = web.text_of("p.ref")
    assert REF.match(ref), ref
    # what was typed is stored exactly (a textarea's line breaks as the
    # browser sends them: CRLF, HTML's form submission), and never shown back
    for field, value in values.items():
        assert open_field(stack, ref, field) == value.replace("\n", "\r\n").encode()
        assert value.splitlines()[0] not in web.page_text()
    assert web.cookies() == {}  # a visitor gets no cookie
    # the stylesheet came (a CSP or a 404 would show in the console)
    assert not [e for e in web.console if "style.css" in e["message"]]
    assert web.driver.execute_script("return document.styleSheets[0].cssRules.length") > 0
    # a required field left empty: the browser itself asks for it
    web.open(stack.path("/"))
    web.fill("form[method=post]", {"name": "only a name"})
    web.find("form[method=post] button[type=submit]").click()
    assert web.find("#f-ssn").get_attribute("validationMessage")
    assert web.text_of("h1") != "Thank you: your submission is stored"


def test_staff_signs_in_finds_updates_and_signs_out(web, stack):
    ref = stack.ref_of(stack.submit(GOOD))
    sign_in(web, stack, "uma")
    assert web.path == stack.path("/staff/")
    assert signed_in_as(web) == "uma"
    # the browser took the session cookie as the module meant it: TLS only,
    # out of scripts' reach, never sent by another site's request
    cookie = web.cookies()[SESSION]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "expiry" not in cookie  # a session cookie: gone when the browser closes
    assert ref in web.texts("a.mono")
    # find it by its reference, open it
    web.fill("form[role=search]", {"ref": ref.lower()})
    web.submit("Search")
    assert web.texts("a.mono") == [ref]
    web.find("a.mono").click()
    web.wait_until(lambda b: b.text_of("h1") == "Record " + ref, "record page")
    assert GOOD["name"] not in web.page_text()
    new = "Replaced In Browser Ünïcode"
    replace_value(web, stack, ref, "name", new)
    assert web.text_of("p.note[role=status]") == "Full name was replaced."
    # write-only: the new value is stored, and shown nowhere, not even in the field
    assert open_field(stack, ref, "name") == new.encode()
    assert new not in web.source() and web.find("#v-name").get_attribute("value") == ""
    assert "uma" in web.text_of("table")  # "Updated by"
    sign_out(web)
    # the staff pages are gone: back and reload come back to the sign-in page
    web.back()
    assert web.text_of("h1") == "Staff sign-in" and signed_in_as(web) is None
    assert GOOD["name"] not in web.source() and ref not in web.page_text()
    web.reload()
    assert web.text_of("h1") == "Staff sign-in"
    web.open(stack.path("/staff/record/" + ref))
    assert web.path == stack.path("/staff/login") and signed_in_as(web) is None


def test_wrong_password_shows_the_sign_in_error(web, stack):
    sign_in(web, stack, "dora", password="not-doras-password")
    assert web.text_of("h1") == "Staff sign-in"
    assert web.text_of("p.error[role=alert]") == FAILED
    assert SESSION not in web.cookies() and signed_in_as(web) is None
    assert web.find("#password").get_attribute("value") == ""
    # and the right one still works
    sign_in(web, stack, "dora")
    assert signed_in_as(web) == "dora"


def test_admin_loads_key1_from_its_file(web, stack):
    if key1_loaded(stack):
        assert stack.forget_key1().status == 303
    sign_in(web, stack, "ada")
    web.open(stack.keys_path())
    assert "No key1 is loaded on this server" in web.page_text()
    assert stack.key1.fingerprint in web.texts("td.mono")
    form = "form[enctype='multipart/form-data']:has(#key1file)"
    web.fill(form, {"key1file": stack.key1.pem, "passphrase": PASS})
    web.submit("Load key1", form=form)
    assert web.path == stack.keys_path() + "?done=loaded"
    loaded = web.text_of("td.loaded")
    assert loaded.startswith("loaded since") and "by ada" in loaded
    assert "No key1 is loaded" not in web.page_text()
    assert PASS not in web.source()
    assert key1_loaded(stack)


def test_staff_decrypts_and_sees_the_values(web, stack):
    ensure_key1(stack)
    values = {"name": "Decrypted In Browser", "ssn": "<b>123</b>&'\"",
              "notes": "Zoë 🌍\nline two"}
    ref = stack.ref_of(stack.submit(values))
    sign_in(web, stack, "pat")
    web.open(stack.path("/staff/record/" + ref))
    assert values["name"] not in web.page_text()
    web.submit("Decrypt this record")
    assert web.text_of("h1") == "Record %s: decrypted" % ref
    for field, value in values.items():
        assert web.text("value-" + field) == value
    assert "Shown once" in web.text_of("p.note[role=status]")
    # dora may view but not decrypt: no button for her
    sign_out(web)
    sign_in(web, stack, "dora")
    web.open(stack.path("/staff/record/" + ref))
    assert not web.find_all("button.secondary")
    assert "Decrypt this record" not in web.page_text()


def test_everything_without_javascript(web_nojs, stack):
    """Sign-in error, sign-in, update, decrypt, sign-out and the form, with
    scripts switched off in the browser."""
    b = web_nojs
    ensure_key1(stack)
    b.open(stack.path("/"))
    b.fill("form[method=post]", {"name": "No Script Visitor", "ssn": "999-99-9999",
                                 "notes": ""})
    b.submit("Send securely")
    ref = b.text_of("p.ref")
    assert REF.match(ref)
    sign_in(b, stack, "pat", password="wrong-password-nojs")
    assert b.text_of("p.error[role=alert]") == FAILED and signed_in_as(b) is None
    sign_in(b, stack, "pat")
    assert signed_in_as(b) == "pat" and ref in b.texts("a.mono")
    b.open(stack.path("/staff/record/" + ref))
    replace_value(b, stack, ref, "ssn", "111-22-3333")
    assert b.text_of("p.note[role=status]") == "Social security number was replaced."
    assert "111-22-3333" not in b.source()
    b.submit("Decrypt this record")
    assert b.text("value-name") == "No Script Visitor"
    assert b.text("value-ssn") == "111-22-3333"
    sign_out(b)
    # back to the decrypted page: not kept by the browser (no-store), and
    # sending the form again is refused without the session
    b.back()
    assert "111-22-3333" not in b.source() and signed_in_as(b) is None
    b.reload()  # the browser sends the decrypt form again
    assert b.text_of("h1") == "Not signed in"
    assert "111-22-3333" not in b.source() and signed_in_as(b) is None
    assert stack.db.query("SELECT count(*) FROM audit WHERE action = 'decrypt' AND "
                          "outcome = 'ok' AND record_ref = %s", (ref,))[0][0] == 1
