"""httpd.conf checks: `apache2 -t` refuses every bad SplitVault value with a
clear message, and accepts the documented example."""
import re
import subprocess
import types

import pytest

from svtest.core import SRC
from svtest.fixtures_httpd import APACHE, MODULE, Httpd

DB = types.SimpleNamespace(dsn="host=127.0.0.1 port=1 dbname=none user=postgres")


def check(workdir, pki, fields=None, directives=None, extra="", name="h", **kw):
    h = Httpd(workdir / name, DB, pki, 1, fields=fields, directives=directives, extra=extra,
              **kw)
    p = h.check()
    return p.returncode, p.stdout + p.stderr


def test_valid_config_passes(workdir, pki):
    rc, out = check(workdir, pki)
    assert rc == 0 and "Syntax OK" in out, out


BAD_FIELDS = [
    ([("na.me", "X", "")], "is not a valid field name"),
    ([("näme", "X", "")], "is not a valid field name"),
    ([("x" * 65, "X", "")], "is not a valid field name"),
    ([("name", "A", ""), ("name", "B", "")], "field 'name' is defined twice"),
    ([("name", "A", "maxlength=0")], "is not a number from 1"),
    ([("name", "A", "maxlength=abc")], "is not a number from 1"),
    ([("name", "A", "mandatory")], "unknown option 'mandatory'"),
    ([("f%d" % i, "L", "") for i in range(33)], "at most 32 fields"),
]


@pytest.mark.parametrize("fields,message", BAD_FIELDS)
def test_bad_fields(workdir, pki, fields, message):
    rc, out = check(workdir, pki, fields=fields)
    assert rc != 0 and message in out, out


BAD_DIRECTIVES = [
    ({"SplitVaultDaemon": "nonsense"}, "give host:port"),
    ({"SplitVaultDaemon": "127.0.0.1"}, "give host:port"),
    ({"SplitVaultDaemonCA": "/nonexistent/ca.pem"}, "is not a readable file"),
    ({"SplitVaultDaemonKey": "/tmp"}, "is not a readable file"),
    ({"SplitVaultDaemonName": "bad_name!"}, "give a DNS name or an IP address"),
    ({"SplitVaultDaemonTimeout": "0"}, "is not a number from 1 to 300"),
    ({"SplitVaultDaemonPool": "0"}, "is not a number from 1"),
    ({"SplitVaultSessionIdle": "ten"}, "is not a number from 1"),
    ({"SplitVaultSessionMax": "-5"}, "is not a number from 1"),
    ({"SplitVaultCookieSecure": "maybe"}, "SplitVaultCookieSecure"),
    ({"SplitVaultLoginThrottle": "5"}, "SplitVaultLoginThrottle takes two arguments"),
    ({"SplitVaultLoginThrottleAddress": "0 10"}, "is not a number from 1"),
    ({"SplitVaultLoginThrottleName": "25"}, "SplitVaultLoginThrottleName takes two arguments"),
    # one address may make 5 failures per pair window, twice in 900 s
    ({"SplitVaultLoginThrottleName": "10 900"},
     "SplitVaultLoginThrottleName (10 per 900 s) is within reach of a single client address"),
    # ... or be bounded by its own limit instead
    ({"SplitVaultLoginThrottle": "100 900", "SplitVaultLoginThrottleAddress": "4 900",
      "SplitVaultLoginThrottleName": "8 900"}, "let make 8 failures in that time"),
    # the default name-wide limit follows SplitVaultLoginThrottle; a short
    # name window within a long pair window is still checked
    ({"SplitVaultLoginThrottleName": "12 3600"}, "raise it above 25"),
    ({"SplitVaultMaxBody": "10"}, "is not a number from 1024"),
    ({"SplitVaultBase": "relative"}, "give a URL path"),
    ({"SplitVaultBase": "/trailing/"}, "give a URL path"),
    ({"SplitVaultBase": "/a b"}, "SplitVaultBase"),
    ({"SplitVaultFormTitle": "x" * 2001}, "give a text of 1 to 2000 characters"),
    ({"SplitVaultKey1Pin": "abc"}, "'abc' is not a key1 fingerprint (64 hex digits"),
    ({"SplitVaultKey1Pin": "g" * 64}, "is not a key1 fingerprint"),
    ({"SplitVaultKey1Pin": "ab" * 32 + " " + "ab" * 31}, "is not a key1 fingerprint"),
    ({"SplitVaultKey1Pin": "sha256:" + "ab" * 32}, "is not a key1 fingerprint"),
    ({"SplitVaultIntakeThrottle": "5"}, "give a number of submissions and seconds"),
    ({"SplitVaultIntakeThrottle": "Off 600"}, "Off takes nothing after it"),
    ({"SplitVaultIntakeThrottle": "5 0"}, "is not a number from 1 to 86400"),
    ({"SplitVaultIntakeThrottle": "-1 60"}, "is not a number from 1 to 1000000"),
    ({"SplitVaultIntakeThrottle": "many 60"}, "is not a number from 1 to 1000000"),
    ({"SplitVaultHSTS": "max-age=abc"}, "is not a number from 0 to 63072000"),
    ({"SplitVaultHSTS": "includeSubDomains"}, "give max-age=SECONDS (or Off)"),
    ({"SplitVaultHSTS": "max-age=600 bogus"}, "unexpected 'bogus'"),
    ({"SplitVaultHSTS": "max-age=600 max-age=700"}, "unexpected 'max-age=700'"),
    ({"SplitVaultHSTS": "Off max-age=600"}, "Off takes nothing after it"),
    ({"SplitVaultHSTS": "max-age=31536000 preload"}, "preload needs includeSubDomains"),
    ({"SplitVaultKey1ShareTimeout": "0"}, "'0' is not a number from 1 to 86400"),
    ({"SplitVaultKey1ShareTimeout": "15m"}, "is not a number from 1 to 86400"),
    ({"SplitVaultKey1MinShares": "1"}, "'1' is not a number from 2 to 8"),
    ({"SplitVaultKey1MinShares": "9"}, "'9' is not a number from 2 to 8"),
    ({"SplitVaultKey1WholeFile": "maybe"}, "SplitVaultKey1WholeFile must be On or Off"),
    # cross-directive checks (check_config, which -t runs too)
    ({"SplitVaultSessionIdle": "100", "SplitVaultSessionMax": "50"},
     "SplitVaultSessionIdle is longer than SplitVaultSessionMax"),
    ({"SplitVaultDaemonCertificate": None}, "are all required"),
]


@pytest.mark.parametrize("directives,message", BAD_DIRECTIVES)
def test_bad_directives(workdir, pki, directives, message):
    rc, out = check(workdir, pki, directives=directives)
    assert rc != 0 and message in out, out


@pytest.mark.parametrize("directives", [
    {"SplitVaultLoginThrottleName": "11 900"},
    {"SplitVaultLoginThrottle": "50 600"},      # the name-wide default follows it: 250 600
    {"SplitVaultLoginThrottle": "100 900", "SplitVaultLoginThrottleAddress": "4 900",
     "SplitVaultLoginThrottleName": "9 900"},
])
def test_login_throttles_accepted(workdir, pki, directives):
    rc, out = check(workdir, pki, directives=directives)
    assert rc == 0 and "Syntax OK" in out, out


@pytest.mark.parametrize("value", ["30 600", "Off", "off", "0", "0 600", "1 1"])
def test_intake_throttle_values_accepted(workdir, pki, value):
    rc, out = check(workdir, pki, directives={"SplitVaultIntakeThrottle": value})
    assert rc == 0 and "Syntax OK" in out, out


def test_key1_dual_control_accepted(workdir, pki):
    rc, out = check(workdir, pki, directives={"SplitVaultKey1ShareTimeout": "600",
                                              "SplitVaultKey1MinShares": "3",
                                              "SplitVaultKey1WholeFile": "Off"})
    assert rc == 0, out


@pytest.mark.parametrize("directive", ["SplitVaultKey1WholeFile On",
                                       "SplitVaultKey1WholeFile Off",
                                       "SplitVaultKey1MinShares 3",
                                       "SplitVaultKey1ShareTimeout 60"])
def test_key1_dual_control_refused_in_a_virtual_host(workdir, pki, directive):
    """key1's segment is the whole server's: a virtual host (an :80 twin,
    say) must not load whole key files into it while the main server
    allows only shares."""
    rc, out = check(workdir, pki, directives={"SplitVaultKey1WholeFile": "Off"},
                    extra="<VirtualHost 127.0.0.1:1>\n%s\n</VirtualHost>" % directive)
    assert rc != 0 and directive.split()[0] in out \
        and "cannot occur within <VirtualHost> section" in out, out


def test_key1_pins_accepted(workdir, pki):
    rc, out = check(workdir, pki, directives={"SplitVaultKey1Pin": "AB" * 32 + " " + "cd" * 32},
                    extra="SplitVaultKey1Pin " + "ef" * 32)
    assert rc == 0 and "Syntax OK" in out, out


def test_no_fields(workdir, pki):
    rc, out = check(workdir, pki, fields=[])
    assert rc != 0 and "no SplitVaultField is configured" in out, out


def test_no_daemon(workdir, pki):
    rc, out = check(workdir, pki, directives={"SplitVaultDaemon": None})
    assert rc != 0 and "SplitVaultDaemon is not set" in out, out


def test_key_does_not_match_certificate(workdir, pki):
    rc, out = check(workdir, pki, directives={"SplitVaultDaemonKey": str(pki.other_client_key)})
    assert rc != 0 and "SV01003" in out and "mismatch" in out, out


def test_garbage_ca_file(workdir, pki):
    junk = workdir / "junk.pem"
    junk.write_text("not a certificate\n")
    rc, out = check(workdir, pki, directives={"SplitVaultDaemonCA": str(junk)})
    assert rc != 0 and "SplitVaultDaemonCA" in out, out


def test_directive_in_location_refused(workdir, pki):
    rc, out = check(workdir, pki, extra="<Location /x>\nSplitVaultSessionIdle 5\n</Location>")
    assert rc != 0 and "SplitVaultSessionIdle" in out and "not allowed" in out, out


def test_mod_dbd_missing(workdir, pki):
    h = Httpd(workdir / "h", DB, pki, 1)
    text = h.conf.read_text()
    text = re.sub(r"(?m)^LoadModule dbd_module.*$", "", text)
    text = re.sub(r"(?m)^DBD.*$", "", text)
    h.conf.write_text(text)
    p = h.check()
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "SV01004" in out and "needs mod_dbd" in out, out


def test_example_config_is_valid(workdir, pki):
    """conf/httpd-splitvault.conf, with this machine's paths, passes apache2 -t."""
    example = (SRC / "conf" / "httpd-splitvault.conf").read_text()
    example = example.replace("/usr/lib/apache2/modules/mod_splitvault.so", str(MODULE))
    for old, new in (("/etc/splitvault/ca.crt", pki.ca_cert),
                     ("/etc/splitvault/web.crt", pki.client_cert),
                     ("/etc/splitvault/web.key", pki.client_key)):
        example = example.replace(old, str(new))
    d = workdir / "example"
    d.mkdir()
    conf = d / "httpd.conf"
    conf.write_text("\n".join([
        'ServerRoot "%s"' % d, "PidFile %s/httpd.pid" % d, "DefaultRuntimeDir %s" % d,
        "ErrorLog %s/error.log" % d, "Listen 127.0.0.1:1", "ServerName localhost",
        "LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so",
        "LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so",
        "LoadModule authz_host_module /usr/lib/apache2/modules/mod_authz_host.so",
        "LoadModule dbd_module /usr/lib/apache2/modules/mod_dbd.so",
    ]) + "\n" + example)
    p = subprocess.run([str(APACHE), "-t", "-f", str(conf)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_every_log_site_has_its_own_tag():
    """httpd's APLOGNO discipline: each ap_log_* call in the module carries an
    SVnnnnn tag, and no tag is used twice."""
    seen = {}
    for f in sorted((SRC / "mod_splitvault").glob("*.c")):
        text = f.read_text()
        for m in re.finditer(r"ap_log_(?:r|c|p)?error\((.*?)\);", text, re.S):
            call = m.group(1)
            tags = re.findall(r'"(SV\d{5}): ', call)
            assert len(tags) == 1, "%s: log call without exactly one tag: %s" % (f.name, call)
            assert tags[0] not in seen, "tag %s used in %s and %s" % (tags[0], seen[tags[0]],
                                                                   f.name)
            seen[tags[0]] = f.name
    assert len(seen) > 40


@pytest.mark.parametrize("value", ["javascript:alert(1)", "https://", "/relative/path",
                                   '"https://x.example/a b"', "https://x.example/<b>",
                                   "ftp://x.example/"],
                         ids=["javascript", "no-host", "relative", "space", "angle", "ftp"])
def test_staff_console_url_refused(workdir, pki, value):
    rc, out = check(workdir, pki, directives={"SplitVaultStaffConsoleURL": value})
    assert rc != 0 and "SplitVaultStaffConsoleURL: give an absolute" in out, out


def test_staff_console_directives(workdir, pki):
    """On or Off, in the main server and a virtual host; not in a
    <Location> (nor .htaccess)."""
    rc, out = check(workdir, pki, directives={
        "SplitVaultStaffConsole": "Off",
        "SplitVaultStaffConsoleURL": "https://console.example:8443/splitvault/staff/password"},
        extra="<VirtualHost 127.0.0.1:1>\nSplitVaultStaffConsole On\n</VirtualHost>")
    assert rc == 0 and "Syntax OK" in out, out
    rc, out = check(workdir, pki, name="h2",
                    extra="<Location /x>\nSplitVaultStaffConsole On\n</Location>")
    assert rc != 0 and "SplitVaultStaffConsole" in out and "not allowed" in out, out
