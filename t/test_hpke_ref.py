"""The Python reference HPKE (t/pylib/hpke_ref.py) against the RFC 9180
vectors, and the C library against it, both ways, through t/unit/svcrypt.

The C side is found in $SV_BUILDDIR (a VPATH build directory, default
./build next to t/); tests that need it are skipped, saying why, only when
svcrypt has not been built.
"""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "pylib"))

import hpke_ref as H  # noqa: E402

VECTORS = json.loads((HERE / "unit" / "rfc9180-x25519-base.json").read_text())["vectors"]
BUILD = Path(os.environ.get("SV_BUILDDIR", str(HERE.parent / "build"))).resolve()
SVCRYPT = BUILD / "t" / "unit" / "svcrypt"
AEADS = [H.AEAD_AES128GCM, H.AEAD_AES256GCM, H.AEAD_CHACHA20POLY1305]
PASS = "reference test passphrase"

needs_c = pytest.mark.skipif(
    not os.access(str(SVCRYPT), os.X_OK),
    reason="%s not built (build the tree, or point SV_BUILDDIR at a build dir)" % SVCRYPT)


def svcrypt(*args, ok=True, env=None):
    """Run svcrypt; hex outputs come back as a list of bytes."""
    p = subprocess.run([str(SVCRYPT)] + [a if isinstance(a, str) else a.hex() for a in args],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    if not ok:
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        return p.stderr
    assert p.returncode == 0, (p.returncode, p.stderr)
    return [bytes.fromhex(x) for x in p.stdout.split()]


# ---- the reference against RFC 9180 ----------------------------------------------

@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_reference_rfc9180_vector(v):
    x = {k: bytes.fromhex(v[k]) for k in ("info", "ikmE", "pkEm", "skEm", "ikmR", "pkRm", "skRm",
                                           "enc", "shared_secret", "key", "base_nonce",
                                           "exporter_secret")}
    assert (v["kem_id"], v["kdf_id"], v["mode"]) == (0x20, 1, 0)
    assert H.derive_keypair(x["ikmE"]) == (x["skEm"], x["pkEm"])
    assert H.derive_keypair(x["ikmR"]) == (x["skRm"], x["pkRm"])
    enc, s = H.setup_base_s(x["pkRm"], x["info"], v["aead_id"], ikmE=x["ikmE"])
    r = H.setup_base_r(enc, x["skRm"], x["info"], v["aead_id"])
    assert enc == x["enc"]
    for c in (s, r):
        assert c.shared_secret == x["shared_secret"]
        assert c.key == x["key"]
        assert c.base_nonce == x["base_nonce"]
        assert c.exporter_secret == x["exporter_secret"]
    for e in v["encryptions"]:
        s.seq = r.seq = e["seq"]
        assert s.nonce() == bytes.fromhex(e["nonce"])
        aad, pt, ct = (bytes.fromhex(e[k]) for k in ("aad", "pt", "ct"))
        assert s.seal(aad, pt) == ct
        assert r.open(aad, ct) == pt
    for e in v["exports"]:
        want = bytes.fromhex(e["value"])
        assert s.export(bytes.fromhex(e["context"]), e["length"]) == want
        assert r.export(bytes.fromhex(e["context"]), e["length"]) == want


@pytest.mark.parametrize("aead", AEADS)
def test_reference_round_trip_and_failures(aead):
    sk, pk = H.generate_keypair()
    enc, ct = H.seal_base(pk, b"info", b"aad", b"plaintext", aead)
    assert H.open_base(enc, sk, b"info", b"aad", ct, aead) == b"plaintext"
    bad = bytearray(ct)
    bad[0] ^= 1
    for args in ((enc, sk, b"info", b"aaX", ct), (enc, sk, b"infX", b"aad", ct),
                 (enc, sk, b"info", b"aad", bytes(bad)),
                 (bytes(32), sk, b"info", b"aad", ct)):
        with pytest.raises(H.OpenError):
            H.open_base(*args, aead_id=aead)


def test_reference_stored_format_strings():
    u = "3F1C2B8E-9A0D-4E21-B755-00C0FFEE1234"
    assert H.aad_datum(u, "ssn") == b"3f1c2b8e-9a0d-4e21-b755-00c0ffee1234/ssn"
    assert H.aad_key2a(uuid.UUID(u), "ssn", 18446744073709551615) == \
        b"3f1c2b8e-9a0d-4e21-b755-00c0ffee1234/ssn/18446744073709551615"
    for bad_field in ("", "a/b", "a b", "x" * 65):
        with pytest.raises(ValueError):
            H.aad_datum(u, bad_field)
    with pytest.raises(ValueError):
        H.aad_datum("{" + u + "}", "ssn")


# ---- C library <-> reference ---------------------------------------------------------

UUID = "0b7e6a52-3c1d-4f7a-9e2b-5d8c1a7f4e90"


@needs_c
@pytest.mark.parametrize("aead", AEADS)
@pytest.mark.parametrize("size", [0, 1, 33, 4096])
def test_hpke_c_seals_reference_opens(aead, size):
    sk, pk = H.generate_keypair()
    pt, info, aad = os.urandom(size), os.urandom(size % 50), os.urandom(size % 70)
    enc, ct = svcrypt("seal", str(aead), pk, info, aad, pt)
    assert len(enc) == 32 and len(ct) == size + 16
    assert H.open_base(enc, sk, info, aad, ct, aead) == pt


@needs_c
@pytest.mark.parametrize("aead", AEADS)
@pytest.mark.parametrize("size", [0, 1, 33, 4096])
def test_hpke_reference_seals_c_opens(aead, size):
    sk, pk = H.generate_keypair()
    pt, info, aad = os.urandom(size), os.urandom(size % 50), os.urandom(size % 70)
    enc, ct = H.seal_base(pk, info, aad, pt, aead)
    assert svcrypt("open", str(aead), sk, info, aad, enc, ct) == ([pt] if pt else [])
    svcrypt("open", str(aead), sk, info, aad + b"x", enc, ct, ok=False)


@needs_c
def test_keys_agree():
    sk, pk = svcrypt("keygen")
    assert H.public_key(sk) == pk
    sk2, _ = H.generate_keypair()
    assert svcrypt("public", sk2) == [H.public_key(sk2)]
    a, b = svcrypt("split", sk)
    assert H.combine(a, b) == sk
    ha, hb = H.split(sk)
    assert svcrypt("combine", ha, hb) == [sk]
    assert svcrypt("fingerprint", pk) == [bytes.fromhex(H.fingerprint(pk))]


@needs_c
def test_datum_both_ways():
    sk2, pk2 = H.generate_keypair()
    value = "Jane Doe, 1 Main St \u00e9".encode("utf-8")
    enc, ct = svcrypt("seal-datum", pk2, UUID, "address", value)
    assert H.open_datum(sk2, UUID, "address", enc, ct) == value
    assert H.open_datum(sk2, UUID.upper(), "address", enc, ct) == value
    for u, f in ((UUID, "Address"), (str(uuid.uuid4()), "address")):
        with pytest.raises(H.OpenError):
            H.open_datum(sk2, u, f, enc, ct)

    enc, ct = H.seal_datum(pk2, UUID, "address", value)
    assert svcrypt("open-datum", sk2, UUID, "address", enc, ct) == [value]
    assert "decryption failed" in svcrypt("open-datum", sk2, UUID, "addres", enc, ct, ok=False)


@needs_c
def test_key2a_both_ways():
    sk1, pk1 = H.generate_keypair()
    key2a = os.urandom(32)
    enc, ct = svcrypt("wrap", pk1, UUID, "ssn", "77", key2a)
    assert len(ct) == 48
    assert H.unwrap_key2a(sk1, UUID, "ssn", 77, enc, ct) == key2a
    with pytest.raises(H.OpenError):
        H.unwrap_key2a(sk1, UUID, "ssn", 78, enc, ct)

    enc, ct = H.wrap_key2a(pk1, UUID, "ssn", 2**64 - 1, key2a)
    assert svcrypt("unwrap", sk1, UUID, "ssn", str(2**64 - 1), enc, ct) == [key2a]
    svcrypt("unwrap", sk1, UUID, "ssn", "77", enc, ct, ok=False)
    svcrypt("unwrap", sk1, UUID, "card", str(2**64 - 1), enc, ct, ok=False)


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


@needs_c
def test_stored_row_end_to_end(tmp_path):
    """What an auditor does: from key1's PEM (as the stock tool writes it),
    the daemon's key2b and the raw row values, recover the datum."""
    key1 = tmp_path / "key1.pem"
    _openssl("genpkey", "-algorithm", "X25519", "-aes256", "-pass", "pass:" + PASS,
             "-out", str(key1))
    _openssl("pkey", "-in", str(key1), "-passin", "pass:" + PASS, "-pubout",
             "-out", str(tmp_path / "key1.pub"))

    # intake, all in C: key2, seal, split, wrap key2a to key1 public
    pk1, = svcrypt("key1-public", str(tmp_path / "key1.pub"))
    sk2, pk2 = svcrypt("keygen")
    value = b"123-45-6789"
    enc, ct = svcrypt("seal-datum", pk2, UUID, "ssn", value)
    key2a, key2b = svcrypt("split", sk2)
    share_id = 9001
    wenc, wct = svcrypt("wrap", pk1, UUID, "ssn", str(share_id), key2a)
    fp = svcrypt("fingerprint", pk1)[0].hex()
    row = {"uuid": UUID, "field": "ssn", "pub": memoryview(pk2), "enc": memoryview(enc),
           "ct": memoryview(ct), "key2a_enc": memoryview(wenc), "key2a_ct": memoryview(wct),
           "share_id": share_id, "key1_fp": fp}

    # recovery, all in Python
    sk1, pk1_py = H.load_key1_private_pem(key1.read_bytes(), PASS)
    assert H.fingerprint(pk1_py) == row["key1_fp"]
    k2a = H.unwrap_key2a(sk1, row["uuid"], row["field"], row["share_id"], row["key2a_enc"],
                         row["key2a_ct"])
    sk2_py = H.combine(k2a, key2b)
    assert H.public_key(sk2_py) == bytes(row["pub"])
    assert H.open_datum(sk2_py, row["uuid"], row["field"], row["enc"], row["ct"]) == value

    # and C reads the same key file to the same key
    assert svcrypt("key1-private", str(key1), env={"SVCRYPT_PASS": PASS}) == [sk1, pk1_py]
    assert "passphrase" in svcrypt("key1-private", str(key1), ok=False, env={"SVCRYPT_PASS": ""})
    with pytest.raises(ValueError):
        H.load_key1_private_pem(key1.read_bytes(), "wrong")
