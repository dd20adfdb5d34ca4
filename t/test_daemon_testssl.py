"""testssl.sh against a running splitvaultd: only TLS 1.3 is offered, a
client certificate is required, and no finding is of severity MEDIUM or
above (docs/testssl.md keeps the command and a summary). About a minute.

testssl 3.0.8 (Debian 12) cannot present a client certificate; with TLS 1.3
the server's refusal of a certificate-less client arrives after the client's
Finished, so whether its s_client probes "connect" is a race. testssl is
therefore given an openssl wrapper that adds the module's client certificate
to its s_client calls (what testssl 3.2's --mtls does); its raw-socket
probes of protocols and ciphers need no certificate. The requirement itself
is checked below with s_client and no certificate."""
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


def mtls_openssl(pki, d):
    """An openssl that presents the module's client certificate in s_client."""
    w = d / "openssl-mtls"
    w.write_text('#!/bin/sh\n'
                 'if [ "$1" = s_client ]; then shift; '
                 'exec /usr/bin/openssl s_client -cert %s -key %s "$@"; fi\n'
                 'exec /usr/bin/openssl "$@"\n' % (pki.client_cert, pki.client_key))
    w.chmod(0o755)
    return w


# testssl.sh tries every protocol, cipher and probe it knows: each
# refusal it meets is logged (and summarised)
@pytest.mark.log_allows(
    r"TLS handshake refused: ",
    r"\d+ more refusals \((tls-[a-z-]+|bad-frame)\) from [\d.]+ in the last \d+",
    r"bad frame header: unknown protocol version or bad magic; closing",
)
@pytest.mark.skipif(shutil.which("testssl") is None, reason="testssl.sh not installed")
def test_testssl_tls13_only_no_medium_findings(daemon_factory, pki, workdir):
    crt, key = server_cert(pki, workdir)
    d = daemon_factory(extra={"tls": {"certificate": str(crt), "key": str(key)}})
    out = workdir / "testssl.json"
    wrapper = mtls_openssl(pki, workdir)
    p = subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "batch",
                        "--openssl", str(wrapper), "--add-ca", str(pki.ca_cert),
                        "--jsonfile", str(out), "127.0.0.1:%d" % d.port],
                       capture_output=True, text=True, timeout=600)
    findings = json.loads(out.read_text())
    assert any(f["id"] == "TLS1_3" for f in findings), p.stdout[-3000:] + p.stderr[-2000:]
    by_id = {f["id"]: f for f in findings}
    for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2"):
        assert by_id[proto]["finding"].startswith("not offered"), by_id[proto]
    assert by_id["TLS1_3"]["finding"].startswith("offered"), by_id["TLS1_3"]
    severe = [(f["id"], f["severity"], f["finding"]) for f in findings
              if f.get("severity") in SEVERE]
    assert not severe, "testssl findings MEDIUM or above:\n%s\n%s" % (severe, p.stdout[-3000:])


@pytest.mark.log_allows(
    r"TLS handshake refused: no-client-certificate",
    r"\d+ more refusals \(tls-no-client-certificate\) from [\d.]+ in the last \d+",
)
def test_client_certificate_required(daemon, pki):
    """openssl s_client: the server asks for a certificate from our CA and
    fails the handshake without one (TLS alert 116, certificate required)."""
    # -ign_eof: wait for the server's answer instead of closing at once
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % daemon.port,
                        "-CAfile", str(pki.ca_cert), "-tls1_3", "-servername", "localhost",
                        "-ign_eof"], input="", capture_output=True, text=True, timeout=30)
    text = p.stdout + p.stderr
    assert "Acceptable client certificate CA names" in text
    assert "SplitVault Test CA" in text
    assert "alert certificate required" in text or "alert number 116" in text, text[-2000:]
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % daemon.port,
                        "-CAfile", str(pki.ca_cert), "-tls1_2"],
                       input="", capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "Cipher is (NONE)" in p.stdout + p.stderr
