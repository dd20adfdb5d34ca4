#!/usr/bin/python3
"""The package test's walk through an installed SplitVault, over HTTPS as
a browser goes: a visitor submits the intake form, an admin signs in and
loads key1 at the key location, a decrypt-capable staff member signs in,
opens the record and decrypts it; the values shown must be those sent.

    t/package_walk.py URL CAFILE KEYS-PATH KEY1-PEM
        URL        the form's URL, e.g. https://localhost:8443/splitvault
        CAFILE     the CA that issued the site's certificate
        KEYS-PATH  the key location's path, e.g. /splitvault-keys
        KEY1-PEM   key1's encrypted private key file

Names and passwords come from the environment, never the command line:
SV_WALK_ADMIN, SV_WALK_ADMIN_PASSWORD, SV_WALK_DECRYPTER,
SV_WALK_DECRYPTER_PASSWORD, SV_WALK_KEY1_PASSPHRASE. Prints the record's
reference code; exit status 0 only when every step did what it should.
Standard library only: it runs with the system's python3 and nothing of
the build tree.
"""
import html
import http.client
import os
import re
import ssl
import sys
import urllib.parse


class Fail(Exception):
    pass


class Browser:
    """One visitor or staff member: keeps cookies, checks the server."""

    def __init__(self, url, cafile):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "https":
            raise Fail("the site must be HTTPS: %s" % url)
        self.host = u.hostname
        self.port = u.port or 443
        self.base = u.path.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.cookies = {}

    def request(self, method, path, body=None, ctype=None):
        headers = {}
        if ctype:
            headers["Content-Type"] = ctype
        if self.cookies:
            headers["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            status, text = r.status, r.read().decode("utf-8", "replace")
            set_cookies = r.headers.get_all("Set-Cookie") or []
        finally:
            c.close()
        for sc in set_cookies:
            name, _, rest = sc.partition("=")
            value = rest.split(";", 1)[0]
            if value == "" or re.search(r";\s*Max-Age=0(;|$)", sc):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return status, text

    def get(self, path, want=200):
        status, text = self.request("GET", path)
        if status != want:
            raise Fail("GET %s: %d, not %d:\n%s" % (path, status, want, text[:2000]))
        return text

    def post(self, path, fields, want, files=()):
        if files:
            body, ctype = multipart(fields, files)
        else:
            body = urllib.parse.urlencode(fields).encode("utf-8")
            ctype = "application/x-www-form-urlencoded"
        status, text = self.request("POST", path, body, ctype)
        if status != want:
            raise Fail("POST %s: %d, not %d:\n%s" % (path, status, want, text[:2000]))
        return text

    def sign_in(self, name, password):
        page = self.get(self.base + "/staff/login")
        self.post(self.base + "/staff/login",
                  [("csrf", csrf(page)), ("name", name), ("password", password)], 303)
        if not self.cookies:
            raise Fail("signing in as %s set no session cookie" % name)


def csrf(page):
    m = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    if not m:
        raise Fail("no CSRF token on the page:\n" + page[:2000])
    return m.group(1)


def multipart(fields, files):
    """A multipart/form-data body as browsers send it: (bytes, type)."""
    boundary = "----SplitVaultWalk" + os.urandom(12).hex()
    out = []
    for name, value in fields:
        out.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n'
                    % (boundary, name)).encode() + value.encode("utf-8") + b"\r\n")
    for name, filename, data in files:
        out.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n"
                    % (boundary, name, filename)).encode() + data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary


def env(name):
    v = os.environ.get(name)
    if not v:
        raise Fail("%s is not set" % name)
    return v


def walk(url, cafile, keys_path, key1_pem):
    # A visitor: the form first, for its field names, then a submission.
    visitor = Browser(url, cafile)
    form = visitor.get(visitor.base + "/")
    fields = re.findall(r'<(?:input type="text"|textarea) id="f-[^"]*" name="([^"]+)" '
                        r'maxlength="(\d+)"', form)
    if not fields:
        raise Fail("the form has no fields:\n" + form[:2000])
    names = [n for n, _ in fields]
    sent = {n: ("%s %s" % (n, os.urandom(8).hex()))[:int(maxlen)] for n, maxlen in fields}
    answer = visitor.post(visitor.base + "/", list(sent.items()), 200)
    m = re.search(r'class="ref">([0-9A-Z]{5}-[0-9A-Z]{5})<', answer)
    if not m:
        raise Fail("the intake answer holds no reference code:\n" + answer[:2000])
    ref = m.group(1)
    print("package-walk: submitted %d fields, reference %s" % (len(names), ref))

    # An admin loads key1 at the key location, as its form posts it.
    admin = Browser(url, cafile)
    admin.sign_in(env("SV_WALK_ADMIN"), env("SV_WALK_ADMIN_PASSWORD"))
    page = admin.get(keys_path)
    with open(key1_pem, "rb") as f:
        pem = f.read()
    admin.post(keys_path, [("csrf", csrf(page)), ("action", "upload"), ("kind", "whole"),
                           ("passphrase", env("SV_WALK_KEY1_PASSPHRASE"))], 303,
               files=[("key1file", "key1.pem", pem)])
    if "loaded since" not in admin.get(keys_path):
        raise Fail("the key location does not show key1 loaded")
    print("package-walk: key1 loaded at %s" % keys_path)

    # A decrypt-capable staff member opens the record and decrypts it.
    staff = Browser(url, cafile)
    staff.sign_in(env("SV_WALK_DECRYPTER"), env("SV_WALK_DECRYPTER_PASSWORD"))
    record = staff.get(staff.base + "/staff/record/" + ref)
    shown = staff.post(staff.base + "/staff/record/%s/decrypt" % ref,
                       [("csrf", csrf(record))], 200)
    got = {n: html.unescape(v) for n, v in
           re.findall(r'<pre class="value" id="value-([A-Za-z0-9_-]+)">\n(.*?)</pre>',
                      shown, re.S)}
    if got != sent:
        raise Fail("decrypted %r, sent %r" % (got, sent))
    print("package-walk: decrypted %s: the values sent" % ref)
    return ref


def main(argv):
    if len(argv) != 5:
        sys.stderr.write("usage: %s URL CAFILE KEYS-PATH KEY1-PEM\n" % argv[0])
        return 2
    try:
        walk(*argv[1:])
    except (Fail, OSError, ssl.SSLError, http.client.HTTPException) as e:
        print("package-walk: FAIL: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
