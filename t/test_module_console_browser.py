"""The staff console as admins and staff use it, in a real browser
(headless Chromium through WebDriver: svtest.browser), on a console server
(SplitVaultStaffConsole On, DBDParams the console role) with the real
httpd, PostgreSQL and splitvaultd over TLS.

An admin creates an account with a generated password (read from the page
once: reload and back do not show it again) and gives an account admin and
decrypt through the separation-of-duties warning; the new person signs in
with it, reaches nothing but the password page until it is changed, and
signs in with the new one. An admin disables an account (the person's open
browser lands on sign-in), enables it, resets its password (a password
typed while Generate is chosen is refused) and ends one of its sessions
from the list; an admin's own page offers no Disable or Reset and keeps
its admin box; a refusal leads back to the account. Each flow
has one side with JavaScript switched off: the pages need none. What is
asserted is what the person sees: the text of the page.
"""
import re

import pytest

from svtest.fixtures_httpd import module_stack
from svtest.staffpages import FAILED, sign_in, signed_in_as
from svtest.staffpages import web, web_nojs  # noqa: F401 (fixtures)

GENERATED = re.compile(r"^[2-9A-HJ-NP-Z]{5}(-[2-9A-HJ-NP-Z]{5}){3}-[2-9A-HJ-NP-Z]{6}$")
MUST_CHANGE = "Your password was set by an administrator: change it before you go on."


@pytest.fixture(scope="module")
def stack(request, pg, pki):
    """One console server for the file: each test uses accounts of its own."""
    yield from module_stack(request, pg, pki, "sv-console-browser", key1=False, console=True)


def tick(b, element_id):
    """Tick a checkbox or choose a radio button by clicking its label."""
    b.find("label[for='%s']" % element_id).click()
    assert b.find("#" + element_id).is_selected()


def open_account(b, stack, name):
    """From the list of staff, the account's page."""
    b.open(stack.path("/staff/console"))
    assert b.text_of("h1") == "Staff"
    b.follow("#staff-%s a" % name)
    assert b.text_of("h1") == name
    assert b.path == stack.path("/staff/console/account?name=" + name)


def sessions(b):
    """The session ids listed on an account's page."""
    return [e.get_attribute("id")[len("session-"):] for e in b.find_all("tr[id^='session-']")]


def row_text(b, name):
    """The cells of an account's row in the list of staff."""
    return [td.text for td in b.find_all("#staff-%s td" % name)]


def test_admin_creates_an_account_and_its_person_changes_the_password(web, web_nojs, stack):
    admin, gina = web, web_nojs
    sign_in(admin, stack, "ada")
    assert signed_in_as(admin) == "ada"
    admin.follow("#nav-staff")
    assert admin.text_of("h1") == "Staff"
    assert "gina" not in admin.texts("#staff-list a")
    admin.fill("#create-form", {"account": "gina"})
    tick(admin, "create-update")
    tick(admin, "create-decrypt")
    assert admin.find("#create-pw-generate").is_selected()
    admin.submit("Create the account", form="#create-form")
    assert admin.text_of("h1") == "Account created"
    assert admin.text("result") == "The account gina was created (update, decrypt)."
    pw = admin.text("new-password")
    assert GENERATED.match(pw), pw
    assert "shown only this once" in admin.page_text()
    # shown once: the browser keeps no copy (back to it asks to send the
    # form again), and sending it again is refused; neither shows it
    admin.follow("#account-link")
    assert admin.text_of("h1") == "gina" and pw not in admin.source()
    admin.back()
    assert admin.path == stack.path("/staff/console/create")
    assert not admin.find_all("#new-password") and pw not in admin.source()
    admin.reload()
    assert admin.text_of("h1") == "Not done"
    assert admin.text_of("p.error") == ("A staff account named 'gina' exists: names are "
                                         "case-insensitive.")
    assert admin.text("back-link") == "Back to the staff list"
    assert pw not in admin.source()
    admin.back()
    assert admin.text_of("h1") == "Staff" and pw not in admin.source()
    admin.open(stack.path("/staff/console"))
    assert row_text(admin, "gina")[:4] == ["gina", "update, decrypt", "enabled", "must change"]
    # admin and decrypt together: the warning first, applied once confirmed
    admin.follow("#staff-gina a")
    assert admin.text("account-caps") == "update, decrypt"
    tick(admin, "caps-admin")
    admin.submit("Change the capabilities", form="#caps-form")
    assert admin.text("sod-warning").startswith(
        "Separation of duties: gina would hold both admin and decrypt.")
    assert admin.text("account-caps") == "update, decrypt"
    assert admin.find("#caps-admin").is_selected() and not admin.find("#caps-confirm").is_selected()
    tick(admin, "caps-confirm")
    admin.submit("Change the capabilities", form="#caps-form")
    assert admin.path == stack.path("/staff/console/account?name=gina&done=caps")
    assert admin.text("result") == "The capabilities were changed."
    assert admin.text("account-caps") == "update, decrypt, admin"
    assert not admin.find_all("#sod-warning")

    # the new person, JavaScript off: the password page, and nothing else
    sign_in(gina, stack, "gina", password=pw)
    assert gina.path == stack.path("/staff/password")
    assert gina.text_of("h1") == "Your password" and signed_in_as(gina) == "gina"
    assert gina.text("must-change") == MUST_CHANGE
    for page in ("/staff/", "/staff/console", "/staff/audit", "/staff/console/account?name=ada"):
        gina.open(stack.path(page))
        assert gina.path == stack.path("/staff/password"), page
        assert gina.text("must-change") == MUST_CHANGE
    new = "gina's own password, typed"
    gina.fill("#password-form", {"current": pw, "new": new, "new2": new + "!"})
    gina.submit("Change the password")
    assert gina.text("password-error") == "The two new passwords differ. Nothing was changed."
    gina.fill("#password-form", {"current": pw, "new": new, "new2": new})
    gina.submit("Change the password")
    assert gina.text_of("h1") == "Password changed"
    assert gina.text("result").startswith("Your password was changed")
    gina.follow("a[href$='/staff/']")
    assert gina.path == stack.path("/staff/") and signed_in_as(gina) == "gina"
    gina.follow("#nav-staff")  # gina is an admin now
    assert gina.text_of("h1") == "Staff"
    assert row_text(gina, "gina")[1:4] == ["update, decrypt, admin", "enabled", ""]
    gina.submit("Sign out")
    sign_in(gina, stack, "gina", password=pw)
    assert gina.text_of("p.error[role=alert]") == FAILED and signed_in_as(gina) is None
    sign_in(gina, stack, "gina", password=new)
    assert gina.path == stack.path("/staff/") and signed_in_as(gina) == "gina"
    for secret in (pw, new):
        assert secret not in stack.httpd.log_text()


def test_admin_disables_enables_resets_and_ends_a_session(web, web_nojs, stack):
    """The admin with JavaScript off; the person's browser with it on."""
    admin, nora = web_nojs, web
    first = "nora-password-00001"
    stack.db.add_staff("nora", first, ("update",))
    sign_in(nora, stack, "nora", password=first)
    assert nora.path == stack.path("/staff/") and signed_in_as(nora) == "nora"
    sign_in(admin, stack, "ada")
    open_account(admin, stack, "nora")
    assert admin.text("account-state") == "enabled"
    assert len(sessions(admin)) == 1

    # disabled: the person's next page load is the sign-in page
    admin.submit("Disable the account and end its sessions")
    assert admin.path == stack.path("/staff/console/account?name=nora&done=disable")
    assert admin.text("result") == "The account was disabled and its sessions ended."
    assert admin.text("account-state") == "disabled" and sessions(admin) == []
    nora.reload()
    assert nora.path == stack.path("/staff/login")
    assert nora.text_of("h1") == "Staff sign-in" and signed_in_as(nora) is None
    sign_in(nora, stack, "nora", password=first)
    assert nora.text_of("p.error[role=alert]") == FAILED and signed_in_as(nora) is None

    # enabled again: the same password works
    admin.submit("Enable the account")
    assert admin.text("result") == "The account was enabled."
    assert admin.text("account-state") == "enabled"
    sign_in(nora, stack, "nora", password=first)
    assert nora.path == stack.path("/staff/") and signed_in_as(nora) == "nora"

    # a password typed while Generate is chosen is refused, not dropped,
    # and the form comes back empty
    typed = "nora-typed-not-set-1"
    assert admin.find("#reset-pw-generate").is_selected()
    admin.fill("#reset-form", {"password": typed, "password2": typed})
    admin.submit("Reset the password and end the account's sessions")
    assert admin.text_of("h1") == "nora"
    assert admin.text("account-error") == (
        "You typed a password but chose Generate: choose Set to use yours, or clear the "
        "fields. Nothing was changed.")
    assert typed not in admin.source()
    assert admin.find("#reset-password").get_attribute("value") == ""
    assert signed_in_as(nora) == "nora"
    nora.reload()
    assert nora.path == stack.path("/staff/") and signed_in_as(nora) == "nora"

    # a reset: a generated password, shown once; the session ends
    assert admin.find("#reset-pw-generate").is_selected()
    admin.submit("Reset the password and end the account's sessions")
    assert admin.text_of("h1") == "Password reset"
    assert admin.text("result") == ("The password of nora was reset and its sessions ended; "
                                    "it must be changed at the next sign-in.")
    reset = admin.text("new-password")
    assert GENERATED.match(reset), reset
    nora.reload()
    assert nora.path == stack.path("/staff/login")
    sign_in(nora, stack, "nora", password=first)
    assert nora.text_of("p.error[role=alert]") == FAILED
    sign_in(nora, stack, "nora", password=reset)
    assert nora.path == stack.path("/staff/password")
    assert nora.text("must-change") == MUST_CHANGE
    second = "nora-password-00002"
    nora.fill("#password-form", {"current": reset, "new": second, "new2": second})
    nora.submit("Change the password")
    assert nora.text_of("h1") == "Password changed"
    nora.follow("a[href$='/staff/']")
    assert nora.text_of("h1") != "Your password" and signed_in_as(nora) == "nora"

    # one session ended from the account's list; the page says so
    admin.follow("#account-link")
    assert admin.text_of("h1") == "nora"
    assert admin.text("account-password").startswith("set by its owner")
    (sid,) = sessions(admin)
    row = admin.text_of("#session-" + sid)
    assert "127.0.0.1" in row and "this session" not in row
    assert admin.text_of("#session-%s .session-kind" % sid) == "console"
    admin.submit("End", form="form:has(#end-session-%s)" % sid)
    assert admin.text("result") == "The session was ended."
    assert sessions(admin) == []
    nora.reload()
    assert nora.path == stack.path("/staff/login") and signed_in_as(nora) is None
    for secret in (first, reset, second):
        assert secret not in stack.httpd.log_text()


def test_admin_cannot_disable_themselves(web, stack):
    """One's own account page offers no Disable or Reset (both would be
    refused): it points to the password page; the admin box is shown
    ticked, disabled and noted, and the rest of the form still works."""
    sign_in(web, stack, "ada")
    open_account(web, stack, "ada")
    mine = web.text_of("#current-session")
    assert mine == "this session"
    assert web.text_of("#session-%s .session-kind" % sessions(web)[0]) == "console"
    assert not web.find_all("#disable-form") and not web.find_all("#reset-form")
    assert "Disable the account and end its sessions" not in web.page_text()
    assert web.text("own-account-note") == (
        "This is your own account: change your password on the password page. You cannot "
        "disable your own account or reset its password here.")
    box = web.find("#caps-admin")
    assert box.is_selected() and not box.is_enabled()
    assert web.text("own-admin-note") == "(your own: you cannot take it away from yourself)"
    # the rest of the form still applies, the admin capability kept
    tick(web, "caps-update")
    web.submit("Change the capabilities", form="#caps-form")
    assert web.text("result") == "The capabilities were changed."
    assert web.text("account-caps") == "update, admin"
    web.find("label[for='caps-update']").click()
    web.submit("Change the capabilities", form="#caps-form")
    assert web.text("account-caps") == "admin"
    web.follow("#own-password-link")
    assert web.path == stack.path("/staff/password")
    assert web.text_of("h1") == "Your password" and signed_in_as(web) == "ada"


def test_refused_action_leads_back_to_the_account(web, stack):
    """A refusal's page links back to the account it concerned."""
    stack.db.add_staff("rita", "rita-password-00001", ("update",))
    assert stack.login("rita", "rita-password-00001").last.status == 303
    sign_in(web, stack, "ada")
    open_account(web, stack, "rita")
    (sid,) = sessions(web)
    # rita's session ends (she signs out) while the page is open
    stack.db.query("DELETE FROM sessions WHERE id = %s", (int(sid),))
    web.submit("End", form="form:has(#end-session-%s)" % sid)
    assert web.text_of("h1") == "Not done"
    assert web.text_of("p.error") == "That session has ended already."
    assert web.text("back-link") == "Back to the account of rita"
    assert "Back to the records" not in web.page_text()
    web.follow("#back-link")
    assert web.path == stack.path("/staff/console/account?name=rita")
    assert web.text_of("h1") == "rita" and sessions(web) == []
