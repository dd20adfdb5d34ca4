"""testssl.sh against a running splitvaultd: only TLS 1.3 is offered, a
client certificate is required, and no finding is of severity MEDIUM or
above (docs/testssl.md keeps the command and a summary). About a minute."""
import json
import shutil
import subprocess

import pytest

from svtest.core import run

pytestmark = pytest.mark.slow
SEVERE = {"MEDIUM", "HIGH", "CRITICAL"}


def server_cert(pki, d):
    """A server certificate as production would have one: a year of
    validity and a CRL distribution point (testssl rates their absence)."""
    key, csr, crt, ext = d / "srv.key", d / "srv.csr", d / "srv.pem", d / "srv.ext"
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", key])
    key.chmod(0o644)
    run(["openssl", "req", "-new", "-key", key, "-out", csr,
         "-subj", "/O=SplitVault tests/CN=localhost"])
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "crlDistributionPoints=URI:http://localhost/splitvault-ca.crl\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,
         "-CAcreateserial", "-out", crt, "-days", "365", "-extfile", ext])
    return crt, key


@pytest.mark.skipif(shutil.which("testssl") is None, reason="testssl.sh not installed")
def test_testssl_tls13_only_no_medium_findings(daemon_factory, pki, workdir):
    crt, key = server_cert(pki, workdir)
    d = daemon_factory(extra={"tls": {"certificate": str(crt), "key": str(key)}})
    out = workdir / "testssl.json"
    p = subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "batch",
                        "--add-ca", str(pki.ca_cert), "--jsonfile", str(out),
                        "127.0.0.1:%d" % d.port], capture_output=True, text=True, timeout=600)
    findings = json.loads(out.read_text())
    assert any(f["id"] == "TLS1_3" for f in findings), p.stdout[-3000:] + p.stderr[-2000:]
    by_id = {f["id"]: f for f in findings}
    for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2"):
        assert by_id[proto]["finding"].startswith("not offered"), by_id[proto]
    assert by_id["TLS1_3"]["finding"].startswith("offered"), by_id["TLS1_3"]
    severe = [(f["id"], f["severity"], f["finding"]) for f in findings
              if f.get("severity") in SEVERE]
    assert not severe, "testssl findings MEDIUM or above:\n%s\n%s" % (severe, p.stdout[-3000:])


def test_client_certificate_required(daemon, pki):
    """openssl s_client: the server asks for a certificate from our CA and
    fails the handshake without one (TLS alert 116, certificate required)."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % daemon.port,
                        "-CAfile", str(pki.ca_cert), "-tls1_3", "-servername", "localhost"],
                       input="", capture_output=True, text=True, timeout=30)
    text = p.stdout + p.stderr
    assert "Acceptable client certificate CA names" in text
    assert "SplitVault Test CA" in text
    assert "alert certificate required" in text or "alert number 116" in text, text[-2000:]
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % daemon.port,
                        "-CAfile", str(pki.ca_cert), "-tls1_2"],
                       input="", capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "Cipher is (NONE)" in p.stdout + p.stderr
