"""An independent RFC 9180 HPKE (mode_base) and SplitVault's stored format.

Written only on python3-cryptography primitives (X25519, HMAC-SHA256,
AESGCM, ChaCha20Poly1305), sharing no code with lib/sv_hpke.c, so that tests
can check the C library against it and open the module's stored rows from
raw database values:

    key2a = unwrap_key2a(sk1, uuid, field, share_id, key2a_enc, key2a_ct)
    sk2   = combine(key2a, key2b)               # key2b from the daemon
    value = open_datum(sk2, uuid, field, enc, ct)

Suite: DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / one of AES-128-GCM,
AES-256-GCM (SplitVault's), ChaCha20-Poly1305.
"""
import hashlib
import os
import re
import uuid as _uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

KEM_X25519_HKDF_SHA256 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_AES128GCM = 0x0001
AEAD_AES256GCM = 0x0002
AEAD_CHACHA20POLY1305 = 0x0003

_AEADS = {
    AEAD_AES128GCM: (16, AESGCM),
    AEAD_AES256GCM: (32, AESGCM),
    AEAD_CHACHA20POLY1305: (32, ChaCha20Poly1305),
}
NN = 12  # nonce length
NH = 32  # hash length
NT = 16  # tag length
NPK = 32  # X25519 public key / enc length
MODE_BASE = 0x00

# SplitVault's stored format (docs/design.md "Stored format")
INFO_DATUM = b"splitvault/v1 datum"
INFO_KEY2A = b"splitvault/v1 key2a"
SV_AEAD = AEAD_AES256GCM
FIELD_RE = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")
UUID_RE = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


class OpenError(Exception):
    """Decryption failed: wrong key, or enc, ciphertext, aad or info altered."""


def _b(x):
    """bytes from bytes, bytearray or memoryview (psycopg2 bytea)."""
    return bytes(x)


def i2osp(n, w):
    return n.to_bytes(w, "big")


# ---- HKDF-SHA256 and RFC 9180 labels --------------------------------------

def _hmac(key, data):
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def hkdf_extract(salt, ikm):
    return _hmac(salt if salt else b"\x00" * NH, ikm)


def hkdf_expand(prk, info, length):
    if length > 255 * NH:
        raise ValueError("HKDF-Expand length too large")
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = _hmac(prk, t + info + bytes([i]))
        out += t
        i += 1
    return out[:length]


def kem_suite_id():
    return b"KEM" + i2osp(KEM_X25519_HKDF_SHA256, 2)


def hpke_suite_id(aead_id):
    return (b"HPKE" + i2osp(KEM_X25519_HKDF_SHA256, 2) + i2osp(KDF_HKDF_SHA256, 2)
            + i2osp(aead_id, 2))


def labeled_extract(suite_id, salt, label, ikm):
    return hkdf_extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(suite_id, prk, label, info, length):
    labeled_info = i2osp(length, 2) + b"HPKE-v1" + suite_id + label + info
    return hkdf_expand(prk, labeled_info, length)


# ---- DHKEM(X25519, HKDF-SHA256) -----------------------------------------------

def _raw_public(priv):
    return priv.public_key().public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)


def _raw_private(priv):
    return priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                              serialization.NoEncryption())


def public_key(sk):
    """Raw X25519 public key of a raw private key."""
    return _raw_public(X25519PrivateKey.from_private_bytes(_b(sk)))


def generate_keypair():
    priv = X25519PrivateKey.generate()
    return _raw_private(priv), _raw_public(priv)


def derive_keypair(ikm):
    """RFC 9180 7.1.3 DeriveKeyPair for X25519: (sk, pk) raw bytes."""
    suite = kem_suite_id()
    dkp_prk = labeled_extract(suite, b"", b"dkp_prk", _b(ikm))
    sk = labeled_expand(suite, dkp_prk, b"sk", b"", 32)
    return sk, public_key(sk)


def _dh(sk, pk):
    try:
        dh = X25519PrivateKey.from_private_bytes(sk).exchange(
            X25519PublicKey.from_public_bytes(pk))
    except ValueError as e:  # all-zero output (small-order point)
        raise OpenError("degenerate X25519 shared secret") from e
    if dh == b"\x00" * 32:
        raise OpenError("degenerate X25519 shared secret")
    return dh


def _extract_and_expand(dh, kem_context):
    suite = kem_suite_id()
    eae_prk = labeled_extract(suite, b"", b"eae_prk", dh)
    return labeled_expand(suite, eae_prk, b"shared_secret", kem_context, NH)


def encap(pkR, ikmE=None):
    """(shared_secret, enc); ephemeral key from ikmE when given (tests)."""
    pkR = _b(pkR)
    skE, pkE = derive_keypair(ikmE) if ikmE is not None else generate_keypair()
    dh = _dh(skE, pkR)
    return _extract_and_expand(dh, pkE + pkR), pkE


def decap(enc, skR):
    enc, skR = _b(enc), _b(skR)
    if len(enc) != NPK:
        raise OpenError("enc must be 32 bytes")
    dh = _dh(skR, enc)
    return _extract_and_expand(dh, enc + public_key(skR))


# ---- key schedule and context ----------------------------------------------------

class Context:
    """An HPKE context (both roles): seal/open advance seq, export does not."""

    def __init__(self, aead_id, shared_secret, info):
        if aead_id not in _AEADS:
            raise ValueError("unknown AEAD id %#x" % aead_id)
        nk, self._cls = _AEADS[aead_id]
        suite = hpke_suite_id(aead_id)
        psk_id_hash = labeled_extract(suite, b"", b"psk_id_hash", b"")
        info_hash = labeled_extract(suite, b"", b"info_hash", _b(info))
        ksc = bytes([MODE_BASE]) + psk_id_hash + info_hash
        secret = labeled_extract(suite, shared_secret, b"secret", b"")
        self.aead_id = aead_id
        self.suite = suite
        self.shared_secret = shared_secret
        self.key = labeled_expand(suite, secret, b"key", ksc, nk)
        self.base_nonce = labeled_expand(suite, secret, b"base_nonce", ksc, NN)
        self.exporter_secret = labeled_expand(suite, secret, b"exp", ksc, NH)
        self.seq = 0

    def nonce(self, seq=None):
        seq = self.seq if seq is None else seq
        return bytes(a ^ b for a, b in zip(self.base_nonce, i2osp(seq, NN)))

    def _next(self):
        if self.seq >= (1 << (8 * NN)) - 1:
            raise OverflowError("message limit reached")
        self.seq += 1

    def seal(self, aad, pt):
        ct = self._cls(self.key).encrypt(self.nonce(), _b(pt), _b(aad))
        self._next()
        return ct

    def open(self, aad, ct):
        try:
            pt = self._cls(self.key).decrypt(self.nonce(), _b(ct), _b(aad))
        except InvalidTag as e:
            raise OpenError("authentication failed") from e
        self._next()
        return pt

    def export(self, exporter_context, length):
        return labeled_expand(self.suite, self.exporter_secret, b"sec",
                              _b(exporter_context), length)


def setup_base_s(pkR, info, aead_id=SV_AEAD, ikmE=None):
    """(enc, sender context)."""
    shared_secret, enc = encap(pkR, ikmE)
    return enc, Context(aead_id, shared_secret, info)


def setup_base_r(enc, skR, info, aead_id=SV_AEAD):
    return Context(aead_id, decap(enc, skR), info)


def seal_base(pkR, info, aad, pt, aead_id=SV_AEAD):
    """Single-shot SealBase: (enc, ct)."""
    enc, ctx = setup_base_s(pkR, info, aead_id)
    return enc, ctx.seal(aad, pt)


def open_base(enc, skR, info, aad, ct, aead_id=SV_AEAD):
    """Single-shot OpenBase; raises OpenError."""
    return setup_base_r(enc, skR, info, aead_id).open(aad, ct)


# ---- SplitVault stored format ---------------------------------------------------

def canonical_uuid(u):
    """Canonical lowercase 8-4-4-4-12 text of a uuid given as str or UUID."""
    if isinstance(u, _uuid.UUID):
        return str(u)
    if isinstance(u, (bytes, bytearray, memoryview)):
        u = bytes(u).decode("ascii")
    if not UUID_RE.match(u):
        raise ValueError("not an 8-4-4-4-12 uuid: %r" % (u,))
    return u.lower()


def _field(field):
    if not FIELD_RE.match(field):
        raise ValueError("invalid field name %r" % (field,))
    return field


def aad_datum(uuid_str, field):
    return ("%s/%s" % (canonical_uuid(uuid_str), _field(field))).encode("ascii")


def aad_key2a(uuid_str, field, share_id):
    share_id = int(share_id)
    if not 0 <= share_id < 1 << 64:
        raise ValueError("share id out of range")
    return ("%s/%s/%d" % (canonical_uuid(uuid_str), _field(field), share_id)).encode("ascii")


def seal_datum(pk2, uuid_str, field, pt):
    """Seal a field value to key2 public: (enc, ct)."""
    return seal_base(pk2, INFO_DATUM, aad_datum(uuid_str, field), pt, SV_AEAD)


def open_datum(sk2, uuid_str, field, enc, ct):
    """Open a stored datum with sk2; raises OpenError."""
    return open_base(enc, sk2, INFO_DATUM, aad_datum(uuid_str, field), ct, SV_AEAD)


def wrap_key2a(pk1, uuid_str, field, share_id, key2a):
    """Seal key2a to key1 public: (enc, ct)."""
    key2a = _b(key2a)
    if len(key2a) != 32:
        raise ValueError("key2a must be 32 bytes")
    return seal_base(pk1, INFO_KEY2A, aad_key2a(uuid_str, field, share_id), key2a, SV_AEAD)


def unwrap_key2a(sk1, uuid_str, field, share_id, enc, ct):
    """Open a wrapped key2a with key1 private; raises OpenError."""
    return open_base(enc, sk1, INFO_KEY2A, aad_key2a(uuid_str, field, share_id), ct, SV_AEAD)


def split(sk2, key2b=None):
    """(key2a, key2b) with key2a = sk2 XOR key2b."""
    sk2 = _b(sk2)
    key2b = os.urandom(32) if key2b is None else _b(key2b)
    return bytes(a ^ b for a, b in zip(sk2, key2b)), key2b


def combine(key2a, key2b):
    """sk2 = key2a XOR key2b."""
    key2a, key2b = _b(key2a), _b(key2b)
    if len(key2a) != 32 or len(key2b) != 32:
        raise ValueError("shares must be 32 bytes")
    return bytes(a ^ b for a, b in zip(key2a, key2b))


def load_key1_private_pem(pem_bytes, passphrase=None):
    """(sk, pk) raw bytes from the PKCS#8 PEM `openssl genpkey -algorithm
    X25519 [-aes256]` writes; passphrase as str or bytes (None if plain)."""
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    key = serialization.load_pem_private_key(_b(pem_bytes), password=passphrase)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError("not an X25519 private key")
    return _raw_private(key), _raw_public(key)


def load_key1_public_pem(pem_bytes):
    """Raw public key from the SPKI PEM `openssl pkey -pubout` writes."""
    key = serialization.load_pem_public_key(_b(pem_bytes))
    if not isinstance(key, X25519PublicKey):
        raise ValueError("not an X25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(pk):
    """key1 fingerprint: lowercase hex SHA-256 of the raw public key."""
    return hashlib.sha256(_b(pk)).hexdigest()
