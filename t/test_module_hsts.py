"""Strict-Transport-Security (SplitVaultHSTS): on every answer of both
handlers over HTTPS, error pages and redirects included; never over plain
HTTP (RFC 6797, 7.2)."""
import pytest

from svtest.fixtures_httpd import STAFF
from svtest.data import GOOD

STS = "Strict-Transport-Security"


def every_page(sv):
    """(what, Response) for one of each kind of answer the module gives:
    the form, a receipt, refusals, a 404, the stylesheet, a 405 that httpd
    writes itself, redirects, the sign-in and staff pages, the key location
    and a decrypt error page."""
    out = []
    anon = sv.client()
    out.append(("form", anon.get(sv.path("/"))))
    receipt = sv.submit(GOOD)
    assert receipt.status == 200, receipt.text
    out.append(("receipt", receipt))
    out.append(("400 form refused", anon.post(sv.path("/"), {"name": "only a name"})))
    out.append(("415", anon.post(sv.path("/"), body="x", content_type="text/plain")))
    out.append(("404", anon.get(sv.path("/nope"))))
    out.append(("stylesheet", anon.get(sv.path("/style.css"))))
    out.append(("405 by httpd", anon.post(sv.path("/style.css"), {"a": "b"})))
    out.append(("303 to sign-in", anon.get(sv.path("/staff/"))))
    out.append(("403 not signed in", anon.post(sv.path("/staff/logout"), {"csrf": "0" * 64})))
    out.append(("keys, not signed in", anon.get(sv.keys_path())))
    out.append(("sign-in page", anon.get(sv.path("/staff/login"))))
    failed = sv.login("uma", "wrong-password-xyz")
    out.append(("sign-in failed", failed.last))
    ref = sv.ref_of(receipt)
    pat = sv.login("pat")
    out.append(("signed in (303)", pat.last))
    out.append(("record list", pat.get(sv.path("/staff/"))))
    out.append(("record", pat.get(sv.path("/staff/record/" + ref))))
    out.append(("no such record", pat.get(sv.path("/staff/record/ZZZZZ-ZZZZZ"))))
    out.append(("decrypt without key1 (503)", sv.decrypt(pat, ref)))
    ada = sv.login("ada")
    out.append(("audit", ada.get(sv.path("/staff/audit"))))
    out.append(("key location", ada.get(sv.keys_path())))
    out.append(("key location refused", ada.post(sv.keys_path(), {"action": "upload"})))
    out.append(("not permitted", pat.get(sv.path("/staff/audit"))))
    return out


def test_every_page_over_https_carries_hsts(sv):
    pages = every_page(sv)
    assert {r.status for _, r in pages} >= {200, 303, 400, 403, 404, 405, 415, 503}
    for what, r in pages:
        assert r.header_all(STS) == ["max-age=31536000"], (what, r.status, r.headers)
    sv.allowed_errors.append(r"SV02102|SV02106")


@pytest.mark.log_allows(r"SV02207")
def test_throttled_submission_carries_it(sv_factory):
    """The intake throttle's 429 too, over HTTPS; over plain HTTP not."""
    for tls in (True, False):
        sv = sv_factory(tls=tls, directives={"SplitVaultIntakeThrottle": "1 600"})
        assert sv.submit(GOOD).status == 200
        r = sv.submit(GOOD)
        assert r.status == 429, r.text
        assert r.header_all(STS) == (["max-age=31536000"] if tls else []), r.headers


def test_plain_http_never_carries_it(sv_factory):
    sv = sv_factory(tls=False)
    for what, r in every_page(sv):
        assert r.header(STS) is None, (what, r.status, r.headers)
    sv.allowed_errors.append(r"SV02102|SV02106")


def test_https_declared_by_server_name_behind_a_proxy(sv_factory):
    """TLS ended by a proxy in front: httpd speaks plain HTTP, but a server
    declared with ServerName https://... serves HTTPS to its visitors."""
    sv = sv_factory(tls=False, extra="ServerName https://localhost")
    r = sv.client().get(sv.path("/"))
    assert r.status == 200 and r.header(STS) == "max-age=31536000"


def test_directive_values(sv_factory):
    sv = sv_factory(directives={"SplitVaultHSTS": "max-age=600 includeSubDomains"})
    for r in (sv.client().get(sv.path("/")), sv.submit(GOOD),
              sv.client().get(sv.path("/staff/"))):
        assert r.header_all(STS) == ["max-age=600; includeSubDomains"], r.headers
    off = sv_factory(directives={"SplitVaultHSTS": "Off"})
    for r in (off.client().get(off.path("/")), off.submit(GOOD),
              off.login("uma", STAFF["uma"][0]).last, off.client().get(off.path("/nope"))):
        assert r.header(STS) is None, r.headers
