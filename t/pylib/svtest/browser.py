"""A real browser for the module's pages: headless Chromium through WebDriver.

Debian's own chromium, chromium-driver and python3-selenium (scripts/deps.sh);
nothing here ever downloads a browser or a driver: the driver is
/usr/bin/chromedriver, given to selenium as its Service, so selenium's own
driver manager is never consulted.

Each Browser has a fresh, empty profile (--user-data-dir, a temp directory
removed by quit()) and runs with the flags in FLAGS:

  --headless=new --disable-gpu   no display, no GPU on a test machine
  --no-sandbox                   Chromium's sandbox refuses to run as root
  --disable-quic --disable-background-networking --disable-component-update
  --disable-sync --no-first-run  no traffic but the test's own: without them
                                 Chromium tries hosts this network refuses,
                                 and waits for them

TLS: the test httpd's certificate comes from a throwaway CA. Nothing is
trusted globally: Chromium is told to accept the one public key of the test
server's certificate (--ignore-certificate-errors-spki-list, its SHA-256),
which Chromium honours only with a --user-data-dir of its own; every other
certificate error is still an error.

Console: the page's console is collected after every step (goog:loggingPrefs).
The module's pages carry a strict Content-Security-Policy and no script at
all, so a CSP violation, a JavaScript error or console.error() means a page
is broken: the step that saw it raises BrowserConsoleError. Network messages
(a 4xx/5xx answer the test asked for) are kept but not errors.

JavaScript can be switched off (javascript=False: the Chromium content
setting profile.managed_default_content_settings.javascript = 2), to show
that every page works without it.

The Virtual Authenticator (WebDriver's WebAuthn extension) is available
through add_authenticator() / remove_authenticator() for WebAuthn tests: a
software authenticator in the browser that answers navigator.credentials
calls as a security key would.
"""
import base64
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from . import core

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1024"]

# How long a page may take to load, and a condition to come true.
PAGE_LOAD_TIMEOUT = 30
WAIT_TIMEOUT = 15

# Console sources whose SEVERE entries mean the page is broken.
_BAD_SOURCES = ("security", "javascript", "console-api")


class BrowserMissing(RuntimeError):
    """Chromium, its driver or selenium is not installed."""


class BrowserConsoleError(AssertionError):
    """The page's console showed a CSP violation or a script error."""


def missing():
    """Why no browser can be started here (a sentence), or None."""
    for p, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(p, os.X_OK):
            return "%s not found: install Debian's %s (scripts/deps.sh)" % (p, pkg)
    if importlib.util.find_spec("selenium") is None:
        return "selenium not importable: install Debian's python3-selenium (scripts/deps.sh)"
    return None


def spki_sha256_b64(cert):
    """Base64 SHA-256 of a PEM certificate's SubjectPublicKeyInfo (the form
    --ignore-certificate-errors-spki-list takes)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    c = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    spki = c.public_key().public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    h = hashes.Hash(hashes.SHA256())
    h.update(spki)
    return base64.b64encode(h.finalize()).decode("ascii")


def is_bad(entry):
    """Whether a console entry means the page is broken."""
    return entry.get("level") == "SEVERE" and entry.get("source") in _BAD_SOURCES


class Browser:
    """Headless Chromium driven through chromedriver.

    base: the URL that paths given to open() are relative to (e.g.
    https://127.0.0.1:PORT); server_cert: the certificate whose public key
    is accepted for TLS; javascript: False switches scripts off; log_dir:
    where chromedriver writes its log (default: the profile's directory).
    Use as a context manager, or call quit()."""

    def __init__(self, base="", server_cert=None, javascript=True, log_dir=None,
                 keep_profile=False):
        why = missing()
        if why:
            raise BrowserMissing(why)
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.base = base.rstrip("/")
        self.javascript = javascript
        self.keep_profile = keep_profile
        self.console = []        # every console entry seen, in order
        self._checked = 0        # console entries already checked
        self.profile = Path(tempfile.mkdtemp(prefix="sv-chromium."))
        self.driver_log = Path(log_dir or self.profile) / "chromedriver.log"
        self._authenticator = None
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for f in FLAGS:
            opts.add_argument(f)
        opts.add_argument("--user-data-dir=%s" % self.profile)
        if server_cert:
            opts.add_argument("--ignore-certificate-errors-spki-list=%s"
                              % spki_sha256_b64(server_cert))
        if not javascript:
            opts.add_experimental_option(
                "prefs", {"profile.managed_default_content_settings.javascript": 2})
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # HOME inside the profile: nothing of the browser's lands in root's home
        env = {"HOME": str(self.profile), "PATH": "/usr/bin:/bin",
               "LANG": os.environ.get("LANG", "C.UTF-8")}
        service = Service(str(CHROMEDRIVER), log_path=str(self.driver_log), env=env)
        try:
            self.driver = webdriver.Chrome(service=service, options=opts)
        except Exception:
            self._remove_profile()
            raise
        self.driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)

    # -- life --------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()

    def quit(self):
        """Stop the browser and its driver, remove the profile (unless kept)."""
        try:
            if self._authenticator:
                self.remove_authenticator()
        except Exception:
            pass
        try:
            self.driver.quit()
        finally:
            self._remove_profile()

    def _remove_profile(self):
        if not self.keep_profile:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- console -----------------------------------------------------------
    def collect_console(self):
        """Fetch the console entries logged since the last call; returns them."""
        new = self.driver.get_log("browser")
        self.console.extend(new)
        return new

    def check_console(self):
        """Raise BrowserConsoleError if a new console entry shows a CSP
        violation or a script error."""
        self.collect_console()
        new = self.console[self._checked:]
        self._checked = len(self.console)
        bad = [e for e in new if is_bad(e)]
        if bad:
            raise BrowserConsoleError("the page's console at %s:\n%s"
                                      % (self.url, "\n".join(format_entry(e) for e in bad)))

    # -- pages -------------------------------------------------------------
    def open(self, url):
        """Load url (a path is relative to base) and wait for the page."""
        self.driver.get(self.base + url if url.startswith("/") else url)
        self.check_console()
        return self

    def back(self):
        self.driver.back()
        self.check_console()
        return self

    def reload(self):
        self.driver.refresh()
        self.check_console()
        return self

    @property
    def url(self):
        """The current URL."""
        return self.driver.current_url

    @property
    def path(self):
        """The current URL's path and query, without scheme and host."""
        u = self.url
        return u[len(self.base):] if self.base and u.startswith(self.base) else u

    @property
    def title(self):
        return self.driver.title

    def source(self):
        return self.driver.page_source

    def cookies(self):
        """{name: cookie dict} of the cookies the browser holds for this page."""
        return {c["name"]: c for c in self.driver.get_cookies()}

    # -- elements ----------------------------------------------------------
    def find(self, css):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, element_id):
        """The visible text of the element with this id."""
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.ID, element_id).text

    def text_of(self, css):
        """The visible text of the first element matching a CSS selector."""
        return self.find(css).text

    def texts(self, css):
        """The visible texts of every element matching a CSS selector."""
        return [e.text for e in self.find_all(css)]

    def page_text(self):
        """All the visible text of the page."""
        return self.find("body").text

    def form(self, form):
        """A form: by its id, or a CSS selector ("form[action$='/login']")."""
        from selenium.webdriver.common.by import By
        if any(ch in form for ch in "[]#.: >"):
            return self.find(form)
        return self.driver.find_element(By.ID, form)

    def fill(self, form, values):
        """Type values ({name: value}) into the form's fields by their name,
        as a person does: each field is cleared first. A file input takes
        the path of a local file (what choosing it in the dialog gives)."""
        f = self.form(form)
        from selenium.webdriver.common.by import By
        for name, value in values.items():
            el = f.find_element(By.NAME, name)
            if el.get_attribute("type") != "file":
                el.clear()
            el.send_keys(str(value))
        return f

    def submit(self, button, form=None):
        """Press a submit button, found by its text (within form, a form's
        id or selector, when given), and wait until the next page has
        loaded."""
        from selenium.webdriver.common.by import By
        scope = self.form(form) if form else self.driver
        xp = ".//button[normalize-space(.)=%s] | .//input[@type='submit' and @value=%s]" \
            % (_xpath_literal(button), _xpath_literal(button))
        buttons = [b for b in scope.find_elements(By.XPATH, xp) if b.is_displayed()]
        assert len(buttons) == 1, "%d buttons %r on %s" % (len(buttons), button, self.url)
        return self._to_next_page(buttons[0], "pressing %r" % button)

    def follow(self, css):
        """Click the link matching a CSS selector, as a person does, and
        wait until the page it leads to has loaded."""
        return self._to_next_page(self.find(css), "following %s" % css)

    def _to_next_page(self, element, what):
        """Click element and wait until a new page has replaced this one
        and loaded."""
        from selenium.webdriver.support.ui import WebDriverWait
        old = self.find("html")
        element.click()
        WebDriverWait(self.driver, PAGE_LOAD_TIMEOUT).until(
            lambda d: _gone(old), "no new page after %s" % what)
        self.wait_until(lambda b: b.driver.execute_script("return document.readyState")
                        == "complete" if b.javascript else b.find_all("body"),
                        "the page after %s did not load" % what)
        self.check_console()
        return self

    def wait_until(self, cond, what, timeout=WAIT_TIMEOUT):
        """Wait until cond(self) is true, and return its value (no sleeps:
        svtest.core.wait_until polls it)."""
        return core.wait_until(lambda: cond(self), timeout, what)

    # -- on failure --------------------------------------------------------
    def save_artifacts(self, directory):
        """Save a screenshot, the page's source and the console into
        directory; returns the paths written."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out = []
        shot = d / "screenshot.png"
        if self.driver.save_screenshot(str(shot)):
            out.append(shot)
        src = d / "page.html"
        src.write_text("<!-- %s -->\n%s" % (self.url, self.source()))
        out.append(src)
        try:
            self.collect_console()
        except Exception:
            pass
        con = d / "console.log"
        con.write_text("".join(format_entry(e) + "\n" for e in self.console))
        out.append(con)
        if self.driver_log.exists():
            out.append(Path(shutil.copy(self.driver_log, d / "chromedriver.log")))
        return out

    # -- WebAuthn ----------------------------------------------------------
    def add_authenticator(self, protocol="ctap2", transport="usb", resident_key=True,
                          user_verification=True, user_verified=True, user_consenting=True):
        """Attach a virtual authenticator (a software security key) to the
        browser; WebAuthn calls of the page then reach it instead of a real
        device. Returns its id. Its credentials: self.driver.get_credentials();
        one at a time (remove_authenticator() first to replace it)."""
        from selenium.webdriver.common.virtual_authenticator import \
            VirtualAuthenticatorOptions
        assert self._authenticator is None, "an authenticator is attached already"
        self.driver.add_virtual_authenticator(VirtualAuthenticatorOptions(
            protocol=protocol, transport=transport, has_resident_key=resident_key,
            has_user_verification=user_verification, is_user_verified=user_verified,
            is_user_consenting=user_consenting))
        self._authenticator = self.driver.virtual_authenticator_id
        return self._authenticator

    def remove_authenticator(self):
        """Detach the virtual authenticator (its credentials go with it)."""
        self.driver.remove_virtual_authenticator()
        self._authenticator = None


def _gone(element):
    """Whether an element of an earlier page is gone: stale, or unknown to
    the document that is replacing its own (chromedriver says so with an
    inspector error when it asks in the middle of the navigation)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    try:
        element.is_enabled()
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as e:
        if "does not belong to the document" in (e.msg or ""):
            return True
        raise


def format_entry(e):
    return "%s %s %s" % (e.get("level"), e.get("source"), e.get("message"))


def _xpath_literal(s):
    if "'" not in s:
        return "'%s'" % s
    if '"' not in s:
        return '"%s"' % s
    return "concat(%s)" % ", \"'\", ".join("'%s'" % p for p in s.split("'"))
