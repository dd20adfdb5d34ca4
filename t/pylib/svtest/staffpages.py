"""The staff pages in a real browser (svtest.browser): what the browser
test files share.

- fixtures `web` and `web_nojs`: the `browser` / `browser_nojs` fixtures
  pointed at the test file's own module-scoped `stack` fixture (a test file
  imports them: `from svtest.staffpages import web, web_nojs`)
- sign_in(), signed_in_as(): the sign-in page and the staff bar, as a
  person sees them
"""
import pytest

from .fixtures_httpd import STAFF

SESSION = "__Host-splitvault"
FAILED = ("Sign-in failed. Check your name and password. After repeated failures, "
          "sign-in is paused for a while.")


@pytest.fixture
def web(browser, stack):
    browser.base = stack.httpd.url()
    return browser


@pytest.fixture
def web_nojs(browser_nojs, stack):
    browser_nojs.base = stack.httpd.url()
    return browser_nojs


def sign_in(b, stack, name, password=None):
    """Sign in on the staff sign-in page; password defaults to STAFF's."""
    b.open(stack.path("/staff/login"))
    assert b.text_of("h1") == "Staff sign-in"
    b.fill("form[action$='/staff/login']",
           {"name": name, "password": STAFF[name][0] if password is None else password})
    b.submit("Sign in")
    return b


def signed_in_as(b):
    """The name in the staff bar, or None on a page without it."""
    who = b.find_all("header.bar .who strong")
    return who[0].text if who else None
