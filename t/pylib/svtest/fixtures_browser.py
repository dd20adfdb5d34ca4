"""pytest fixtures for a real browser (svtest.browser: headless Chromium).

- `browser`       a Browser with JavaScript on, new for each test
- `browser_nojs`  the same with JavaScript switched off
Both trust only the test PKI's server certificate's key, and are quit with
their profile removed after the test, whatever happened. Without chromium or
chromium-driver (or python3-selenium) they fail, never skip: scripts/deps.sh
installs them wherever the suite runs.

When a test that used one fails, a screenshot, the page's source and the
console are saved under $SV_BUILDDIR/t/browser/<test>/<fixture>/ with the
chromedriver log, and their paths are printed with the report (a test's
earlier artifacts are removed when it starts). SV_BROWSER_KEEP=1
keeps the browser's profile directory as well (its path is in a failure's
report, and printed at teardown: pytest -s shows it).
A CSP violation or script error on any page fails the step that loaded it
(svtest.browser.BrowserConsoleError); the teardown checks once more for
what came after the last step.
"""
import os
import re
import shutil

import pytest

from . import browser as svbrowser
from .core import BUILD

_KEEP = os.environ.get("SV_BROWSER_KEEP") == "1"

# The fixtures' names: the report hook finds a test's browsers by them.
_NAMES = ("browser", "browser_nojs")


def artifacts_dir(item):
    """Where a failed test's screenshot and page source go."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid.replace("::", "."))
    return BUILD / "t" / "browser" / name


def _browser(pki, javascript, request=None, name=None):
    if request is not None:  # what a failure saves is this run's only
        shutil.rmtree(artifacts_dir(request.node) / name, ignore_errors=True)
    why = svbrowser.missing()
    if why:
        pytest.fail("browser tests need Debian's chromium, chromium-driver and "
                    "python3-selenium: %s" % why, pytrace=False)
    b = svbrowser.Browser(server_cert=pki.server_cert, javascript=javascript,
                          keep_profile=_KEEP)
    try:
        yield b
        b.check_console()
    finally:
        b.quit()
        if _KEEP:
            print("browser profile kept: %s" % b.profile)


@pytest.fixture
def browser(request, pki):
    """Headless Chromium, JavaScript on. Give it the stack's base with
    browser.base = stack.httpd.url() (or pass full URLs to open())."""
    yield from _browser(pki, True, request, "browser")


@pytest.fixture
def browser_nojs(request, pki):
    """Headless Chromium with JavaScript switched off."""
    yield from _browser(pki, False, request, "browser_nojs")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's browsers: screenshot, page source and console saved
    while the browser still runs (teardown has not started), their paths
    and the console shown with the report."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed or call.when == "teardown":
        return
    funcargs = getattr(item, "funcargs", {})
    for name in _NAMES:
        b = funcargs.get(name)
        if not isinstance(b, svbrowser.Browser):
            continue
        lines = []
        try:
            paths = b.save_artifacts(artifacts_dir(item) / name)
            lines += ["saved: %s" % p for p in paths]
        except Exception as e:  # a dead browser: say so, keep the report
            lines.append("could not save the page: %s" % e)
        lines.append("URL: %s" % _safe(lambda: b.url))
        if b.keep_profile:
            lines.append("profile kept: %s" % b.profile)
        lines += ["console: " + svbrowser.format_entry(e) for e in b.console]
        rep.sections.append(("browser %s (%s)" % (name, call.when), "\n".join(lines)))


def _safe(f):
    try:
        return f()
    except Exception as e:
        return "(%s)" % e
