"""key1 share files (docs/format.md) opened and sealed again in Python,
independently of lib/sv_share.c: what a holder who cheats could do with
their own passphrase, for tests of what the tool and the module then
refuse."""
import base64
import hashlib

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _parts(text):
    """(BEGIN line, header block with its last newline, base64 body, END
    line) of a share file's text."""
    head, body = text.split("\n\n", 1)
    begin, headers = head.split("\n", 1)
    lines = [l for l in body.split("\n") if l]
    return begin, headers + "\n", "".join(lines[:-1]), lines[-1]


def _key(headers, passphrase):
    fields = dict(line.split(": ", 1) for line in headers.splitlines())
    kdf = dict(kv.split("=") for kv in fields["KDF"].split()[1:])
    key = hashlib.scrypt(passphrase.encode(), salt=bytes.fromhex(fields["Salt"]),
                         n=int(kdf["N"]), r=int(kdf["r"]), p=int(kdf["p"]),
                         maxmem=64 << 20, dklen=32)
    return AESGCM(key), bytes.fromhex(fields["Nonce"])


def open_share(text, passphrase):
    """The share bytes sealed in a share file's text."""
    _, headers, b64, _ = _parts(text)
    aead, nonce = _key(headers, passphrase)
    return aead.decrypt(nonce, base64.b64decode(b64), headers.encode())


def reseal(text, passphrase, share):
    """The share file text with share (bytes) sealed in it instead, under
    the same passphrase, salt, nonce and headers."""
    begin, headers, _, end = _parts(text)
    aead, nonce = _key(headers, passphrase)
    b64 = base64.b64encode(aead.encrypt(nonce, bytes(share), headers.encode())).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "%s\n%s\n%s\n%s\n" % (begin, headers, "\n".join(lines), end)
