"""splitvault-admin key1-split, key1-share-check, key1-share-export and
key1-combine: key1 under dual control, the tool's side.

No server is started: the commands need no database. Keys are made with
the stock openssl tool; every k-subset of a split must give key1 back (its
public key as `openssl pkey -pubout` prints it), fewer must not, and
nothing is written when a passphrase is wrong, a share was altered or comes
from another split, or a target exists. Exported raw shares must combine
with libgfshare's own gfcombine into DER that openssl reads. No passphrase,
key or share byte may appear in what the commands print.
"""
import base64
import fcntl
import itertools
import os
import pty
import stat
import subprocess

import pytest

from svtest.core import wait_until
from svtest.fixtures_httpd import ADMIN

KEYPASS = "key1-file-passphrase-01"
OUTPASS = "combined-key1-passphrase"
HOLDERS = ["alice", "bob", "carol.d", "dave@example", "eve_5"]
SHAREPASS = ["share-pass-%s-%02d" % (h.split("@")[0].replace(".", ""), i)
             for i, h in enumerate(HOLDERS)]


class Admin:
    """Runs splitvault-admin with passphrases on pipes (one line each) and
    keeps everything it printed, to check that no secret was."""

    def __init__(self):
        self.printed = []

    def __call__(self, *args, fds=None, stdin=""):
        """fds: {"--option": [lines]}: each becomes a pipe whose number is
        given after the option."""
        argv = [str(ADMIN)]
        pass_fds = []
        opts = []
        for opt, lines in (fds or {}).items():
            r, w = os.pipe()
            os.write(w, "".join(line + "\n" for line in lines).encode())
            os.close(w)
            pass_fds.append(r)
            opts += [opt, str(r)]
        argv += [str(args[0])] + opts + [str(a) for a in args[1:]]
        try:
            p = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                               pass_fds=pass_fds, timeout=120,
                               env=dict(os.environ, SPLITVAULT_DSN=""))
        finally:
            for r in pass_fds:
                os.close(r)
        self.printed.append(p.stdout + p.stderr)
        return p

    def all_printed(self):
        return "\n".join(self.printed)


@pytest.fixture
def admin():
    return Admin()


def openssl(*args, input=None):
    return subprocess.run(["openssl"] + [str(a) for a in args], input=input,
                          capture_output=True, check=True, timeout=60).stdout


def make_key(path, passphrase=KEYPASS):
    args = ["genpkey", "-algorithm", "X25519", "-out", path]
    if passphrase:
        args += ["-aes256", "-pass", "pass:" + passphrase]
    openssl(*args)
    return pubout(path, passphrase)


def pubout(path, passphrase=None, inform="PEM"):
    args = ["pkey", "-inform", inform, "-in", path, "-pubout"]
    if passphrase:
        args += ["-passin", "pass:" + passphrase]
    return openssl(*args)


def fingerprint(path, passphrase=KEYPASS):
    """sha256 of the raw public key, as sv_key1_fingerprint."""
    der = openssl("pkey", "-in", path, "-passin", "pass:" + passphrase, "-pubout",
                  "-outform", "DER")
    import hashlib
    return hashlib.sha256(der[-32:]).hexdigest()


def raw_private(path, passphrase=KEYPASS):
    return openssl("pkey", "-in", path, "-passin", "pass:" + passphrase, "-outform", "DER")[-32:]


def split(admin, key, outdir, k, n, holders=True, passes=None, keypass=KEYPASS):
    outdir.mkdir(exist_ok=True)
    args = ["key1-split", "--k", k, "--n", n, "--out-dir", outdir]
    if holders:
        for h in HOLDERS[:n]:
            args += ["--holder", h]
    fds = {"--share-passphrase-fd": passes or SHAREPASS[:n]}
    if keypass:
        fds["--passphrase-fd"] = [keypass]
    return admin(*args, key, fds=fds)


def share_files(outdir, key, n):
    fp16 = fingerprint(key)[:16]
    return [outdir / ("key1-%s.share-%d" % (fp16, i)) for i in range(1, n + 1)]


def combine(admin, out, files, passes, outpass=OUTPASS):
    return admin("key1-combine", "--out", out, *files,
                 fds={"--passphrase-fd": passes, "--out-passphrase-fd": [outpass]})


def assert_no_secrets(admin, *secrets):
    text = admin.all_printed()
    for s in list(secrets) + SHAREPASS + [KEYPASS, OUTPASS]:
        if isinstance(s, bytes):
            for form in (s.hex(), base64.b64encode(s).decode()):
                assert form not in text
        else:
            assert s not in text


@pytest.mark.parametrize("k,n", [(2, 3), (3, 5)])
def test_every_k_subset_combines(admin, tmp_path, k, n):
    key = tmp_path / "key1.pem"
    pub = make_key(key)
    p = split(admin, key, tmp_path / "shares", k, n)
    assert p.returncode == 0, p.stderr
    files = share_files(tmp_path / "shares", key, n)
    fp = fingerprint(key)
    assert fp in p.stdout and "any %d of these %d shares" % (k, n) in p.stdout
    for f, h in zip(files, HOLDERS):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert str(f) in p.stdout and h in p.stdout
        text = f.read_text()
        assert text.startswith("-----BEGIN SPLITVAULT KEY1 SHARE-----\nKey1: %s\n" % fp)
        assert "\nHolder: %s\n" % h in text and "\nThreshold: %d\nCount: %d\n" % (k, n) in text
    assert "key1-share-check" in p.stdout and "destroy" in p.stdout

    for i, subset in enumerate(itertools.combinations(range(n), k)):
        out = tmp_path / ("combined-%d.pem" % i)
        c = combine(admin, out, [files[j] for j in subset], [SHAREPASS[j] for j in subset])
        assert c.returncode == 0, (subset, c.stderr)
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert out.read_text().startswith("-----BEGIN ENCRYPTED " + "PRIVATE KEY-----\n")
        assert pubout(out, OUTPASS) == pub
        assert fp in c.stdout
    # every share at once, in another order
    out = tmp_path / "all.pem"
    order = list(reversed(range(n)))
    assert combine(admin, out, [files[j] for j in order],
                   [SHAREPASS[j] for j in order]).returncode == 0
    assert pubout(out, OUTPASS) == pub
    assert_no_secrets(admin, raw_private(key))


def test_too_few_and_refusals_write_nothing(admin, tmp_path):
    key = tmp_path / "key1.pem"
    make_key(key)
    assert split(admin, key, tmp_path / "s", 3, 5).returncode == 0
    files = share_files(tmp_path / "s", key, 5)
    out = tmp_path / "out.pem"

    c = combine(admin, out, files[:2], SHAREPASS[:2])
    assert c.returncode == 1 and "2 shares given, 3 needed" in c.stderr
    assert not out.exists()
    # one share twice is not two shares
    c = combine(admin, out, [files[0], files[1], files[0]], SHAREPASS[:2] + SHAREPASS[:1])
    assert c.returncode == 1 and "the same share" in c.stderr
    # a wrong passphrase for the last share
    c = combine(admin, out, files[:3], SHAREPASS[:2] + ["not-the-passphrase"])
    assert c.returncode == 1 and "wrong passphrase" in c.stderr
    assert not out.exists()
    c = admin("key1-share-check", files[1], fds={"--passphrase-fd": [SHAREPASS[0]]})
    assert c.returncode == 1 and "wrong passphrase" in c.stderr
    c = admin("key1-share-export", files[1], tmp_path / "x.002",
              fds={"--passphrase-fd": ["wrong-passphrase-x"]})
    assert c.returncode == 1 and not (tmp_path / "x.002").exists()
    # no passphrase source at all
    c = admin("key1-combine", "--out", out, *files[:3])
    assert c.returncode == 1 and "passphrase" in c.stderr and not out.exists()
    # a new key file's passphrase that is too short
    c = combine(admin, out, files[:3], SHAREPASS[:3], outpass="short")
    assert c.returncode == 1 and "too short" in c.stderr and not out.exists()
    assert_no_secrets(admin, raw_private(key), "not-the-passphrase", "wrong-passphrase-x")


def flip_b64(text):
    """One base64 digit of the sealed share changed."""
    head, body = text.split("\n\n", 1)
    c = body[5]
    return head + "\n\n" + body[:5] + ("B" if c != "B" else "C") + body[6:]


@pytest.mark.parametrize("how", ["base64", "holder", "index", "threshold", "garbage",
                                 "truncated"])
def test_altered_share_refused(admin, tmp_path, how):
    key = tmp_path / "key1.pem"
    make_key(key)
    assert split(admin, key, tmp_path / "s", 2, 3).returncode == 0
    files = share_files(tmp_path / "s", key, 3)
    text = files[1].read_text()
    if how == "base64":
        bad = flip_b64(text)
    elif how == "holder":
        bad = text.replace("Holder: bob\n", "Holder: bobby\n")
    elif how == "index":
        bad = text.replace("Share: 2\n", "Share: 3\n")
    elif how == "threshold":
        bad = text.replace("Threshold: 2\n", "Threshold: 3\n")
    elif how == "garbage":
        bad = text.replace("KDF: scrypt", "KDF:  scrypt")
    else:
        bad = text[:len(text) // 2]
    assert bad != text
    files[1].write_text(bad)
    out = tmp_path / "out.pem"
    c = combine(admin, out, [files[0], files[1]], SHAREPASS[:2])
    assert c.returncode == 1, c.stdout
    assert not out.exists()
    if how in ("base64", "holder", "index"):
        assert "share file was altered" in c.stderr
    elif how == "threshold":
        # the headers no longer agree with the other share's: refused
        # before any passphrase is asked
        assert "different splits" in c.stderr
    else:
        assert "not a key1 share file" in c.stderr
    c = admin("key1-share-check", files[1], fds={"--passphrase-fd": [SHAREPASS[1]]})
    assert c.returncode == 1
    if how not in ("garbage", "truncated"):
        assert "share file was altered" in c.stderr
    assert_no_secrets(admin, raw_private(key))


def test_two_splits_and_two_keys_refused(admin, tmp_path):
    key = tmp_path / "key1.pem"
    other = tmp_path / "other.pem"
    make_key(key)
    make_key(other)
    assert split(admin, key, tmp_path / "a", 2, 3).returncode == 0
    assert split(admin, key, tmp_path / "b", 2, 3).returncode == 0
    assert split(admin, other, tmp_path / "c", 2, 3).returncode == 0
    a = share_files(tmp_path / "a", key, 3)
    b = share_files(tmp_path / "b", key, 3)
    c = share_files(tmp_path / "c", other, 3)
    out = tmp_path / "out.pem"
    r = combine(admin, out, [a[0], b[1]], SHAREPASS[:2])
    assert r.returncode == 1 and "different splits" in r.stderr
    r = combine(admin, out, [a[0], c[1]], SHAREPASS[:2])
    assert r.returncode == 1 and "different keys" in r.stderr
    assert not out.exists()
    assert combine(admin, out, [b[2], b[0]], [SHAREPASS[2], SHAREPASS[0]]).returncode == 0


def test_never_overwrites(admin, tmp_path):
    key = tmp_path / "key1.pem"
    make_key(key)
    outdir = tmp_path / "s"
    outdir.mkdir()
    files = share_files(outdir, key, 3)
    files[2].write_text("keep me")
    p = split(admin, key, outdir, 2, 3)
    assert p.returncode == 1 and "never overwritten" in p.stderr
    assert files[2].read_text() == "keep me"
    assert not files[0].exists() and not files[1].exists()
    files[2].unlink()
    assert split(admin, key, outdir, 2, 3).returncode == 0
    before = [f.read_text() for f in files]
    p = split(admin, key, outdir, 2, 3)
    assert p.returncode == 1
    assert [f.read_text() for f in files] == before

    out = tmp_path / "out.pem"
    out.write_text("keep me")
    r = combine(admin, out, files[:2], SHAREPASS[:2])
    assert r.returncode == 1 and "never overwritten" in r.stderr
    assert out.read_text() == "keep me"
    raw = tmp_path / "raw.001"
    raw.write_text("keep me")
    r = admin("key1-share-export", files[0], raw, fds={"--passphrase-fd": [SHAREPASS[0]]})
    assert r.returncode == 1 and raw.read_text() == "keep me"


def test_split_refuses_weak_or_reused_passphrases(admin, tmp_path):
    key = tmp_path / "key1.pem"
    make_key(key)
    outdir = tmp_path / "s"
    for passes, why in [
            (["short-pass", SHAREPASS[1], SHAREPASS[2]], "too short"),
            ([SHAREPASS[0], KEYPASS, SHAREPASS[2]], "the key file's passphrase"),
            ([SHAREPASS[0], SHAREPASS[1], SHAREPASS[0]], "another share has it"),
            ([SHAREPASS[0]], "no passphrase read")]:
        p = split(admin, key, outdir, 2, 3, passes=passes)
        assert p.returncode == 1 and why in p.stderr, p.stderr
        assert list(outdir.iterdir()) == []
    p = admin("key1-split", "--k", "2", "--n", "3", "--holder", "a", "--holder", "b", key,
              fds={"--passphrase-fd": [KEYPASS], "--share-passphrase-fd": SHAREPASS[:3]})
    assert p.returncode == 1 and "exactly --n" in p.stderr
    p = admin("key1-split", "--k", "2", "--n", "2", "--holder", "a", "--holder", "a", key,
              fds={"--passphrase-fd": [KEYPASS], "--share-passphrase-fd": SHAREPASS[:2]})
    assert p.returncode == 1 and "named twice" in p.stderr
    p = split(admin, key, outdir, 2, 3, keypass="wrong-key-passphrase")
    assert p.returncode == 1 and list(outdir.iterdir()) == []
    for k, n in [("1", "3"), ("4", "3"), ("9", "9"), ("2", "256")]:
        p = admin("key1-split", "--k", k, "--n", n, key)
        assert p.returncode != 0 and list(outdir.iterdir()) == []
    assert admin("key1-split", key).returncode == 1
    assert_no_secrets(admin, raw_private(key), "short-pass", "wrong-key-passphrase")


def test_unencrypted_key_and_no_holders(admin, tmp_path):
    key = tmp_path / "key1.pem"
    pub = make_key(key, passphrase=None)
    p = split(admin, key, tmp_path / "s", 2, 2, holders=False, keypass=None)
    assert p.returncode == 0, p.stderr
    fp16 = p.stdout.split()[1][:16]
    files = [tmp_path / "s" / ("key1-%s.share-%d" % (fp16, i)) for i in (1, 2)]
    assert "Holder" not in files[0].read_text()
    c = admin("key1-share-check", files[0], fds={"--passphrase-fd": [SHAREPASS[0]]})
    assert c.returncode == 0 and "holder     (none)" in c.stdout
    out = tmp_path / "out.pem"
    assert combine(admin, out, files, SHAREPASS[:2]).returncode == 0
    assert pubout(out, OUTPASS) == pub


def test_share_check(admin, tmp_path):
    key = tmp_path / "key1.pem"
    make_key(key)
    assert split(admin, key, tmp_path / "s", 3, 5).returncode == 0
    files = share_files(tmp_path / "s", key, 5)
    c = admin("key1-share-check", files[3], fds={"--passphrase-fd": [SHAREPASS[3]]})
    assert c.returncode == 0, c.stderr
    assert "the passphrase opens this share" in c.stdout
    assert "key1       %s\n" % fingerprint(key) in c.stdout
    assert "share      4 of 5\n" in c.stdout and "threshold  3\n" in c.stdout
    assert "holder     dave@example\n" in c.stdout
    assert admin("key1-share-check", tmp_path / "missing").returncode == 1
    assert admin("key1-share-check").returncode == 1
    assert_no_secrets(admin, raw_private(key))


def test_gfcombine_interop(admin, tmp_path):
    key = tmp_path / "key1.pem"
    pub = make_key(key)
    assert split(admin, key, tmp_path / "s", 3, 5).returncode == 0
    files = share_files(tmp_path / "s", key, 5)
    # the index is in the name, as gfsplit writes it
    r = admin("key1-share-export", files[2], tmp_path / "raw.002",
              fds={"--passphrase-fd": [SHAREPASS[2]]})
    assert r.returncode == 1 and "must end in .003" in r.stderr
    assert not (tmp_path / "raw.002").exists()
    raws = []
    for i in (0, 2, 4):
        raw = tmp_path / ("raw.%03d" % (i + 1))
        r = admin("key1-share-export", files[i], raw, fds={"--passphrase-fd": [SHAREPASS[i]]})
        assert r.returncode == 0, r.stderr
        assert stat.S_IMODE(raw.stat().st_mode) == 0o600
        assert raw.stat().st_size == 48
        assert "gfcombine" in r.stdout
        raws.append(raw)
    der = tmp_path / "key1.der"
    subprocess.run(["gfcombine", "-o", str(der)] + [str(r) for r in raws], check=True,
                   timeout=60)
    assert pubout(der, inform="DER") == pub
    assert der.read_bytes()[-32:] == raw_private(key)
    # two raw shares of a 3-of-5 give something else
    der2 = tmp_path / "two.der"
    subprocess.run(["gfcombine", "-o", str(der2)] + [str(r) for r in raws[:2]], check=True,
                   timeout=60)
    assert der2.read_bytes()[-32:] != raw_private(key)
    assert_no_secrets(admin, raw_private(key), *[r.read_bytes() for r in raws])


class Tty:
    """splitvault-admin on a pseudo-terminal, as an admin at a ceremony
    runs it: prompts are waited for, answers typed after each one (the
    tool flushes pending input when it turns echo off)."""

    def __init__(self, *args):
        self.master, slave = pty.openpty()
        fcntl.fcntl(self.master, fcntl.F_SETFL, os.O_NONBLOCK)
        self.p = subprocess.Popen([str(ADMIN)] + [str(a) for a in args], stdin=slave,
                                  stdout=subprocess.PIPE, stderr=slave, text=True,
                                  env=dict(os.environ, SPLITVAULT_DSN=""))
        os.close(slave)
        self.seen = ""
        self.at = 0

    def _read(self):
        try:
            self.seen += os.read(self.master, 4096).decode(errors="replace")
        except (BlockingIOError, OSError):
            pass

    def expect(self, text):
        def found():
            self._read()
            i = self.seen.find(text, self.at)
            if i >= 0:
                self.at = i + len(text)
                return True
            return False
        wait_until(found, 30, "prompt %r (terminal so far: %r)" % (text, self.seen))

    def type(self, line):
        os.write(self.master, (line + "\n").encode())

    def finish(self):
        out, _ = self.p.communicate(timeout=60)
        self._read()
        os.close(self.master)
        return self.p.returncode, out, self.seen


def test_split_and_combine_on_a_terminal(tmp_path):
    key = tmp_path / "key1.pem"
    pub = make_key(key)
    outdir = tmp_path / "s"
    outdir.mkdir()
    t = Tty("key1-split", "--k", "2", "--n", "2", "--holder", "alice", "--holder", "bob",
            "--out-dir", outdir, key)
    t.expect("Passphrase of key1: ")
    t.type(KEYPASS)
    t.expect("Passphrase for share 1 of 2 (holder alice): ")
    t.type(SHAREPASS[0])
    t.expect("Again: ")
    t.type(SHAREPASS[0] + "x")
    t.expect("the two entries differ")
    t.expect("Passphrase for share 1 of 2 (holder alice): ")
    t.type("too-short")
    t.expect("Again: ")
    t.type("too-short")
    t.expect("too short")
    t.expect("Passphrase for share 1 of 2 (holder alice): ")
    t.type(SHAREPASS[0])
    t.expect("Again: ")
    t.type(SHAREPASS[0])
    t.expect("Passphrase for share 2 of 2 (holder bob): ")
    t.type(KEYPASS)
    t.expect("Again: ")
    t.type(KEYPASS)
    t.expect("it is the key file's passphrase")
    t.expect("Passphrase for share 2 of 2 (holder bob): ")
    t.type(SHAREPASS[1])
    t.expect("Again: ")
    t.type(SHAREPASS[1])
    rc, out, term = t.finish()
    assert rc == 0, term
    files = share_files(outdir, key, 2)
    assert all(f.exists() for f in files)
    for secret in [KEYPASS] + SHAREPASS[:2]:
        assert secret not in out and secret not in term  # no echo

    out_pem = tmp_path / "out.pem"
    t = Tty("key1-combine", "--out", out_pem, *files)
    t.expect("Passphrase for share 1 of 2 (holder alice) of key1 ")
    t.type(SHAREPASS[0])
    t.expect("Passphrase for share 2 of 2 (holder bob) of key1 ")
    t.type(SHAREPASS[1])
    t.expect("Passphrase for the new key1 file: ")
    t.type(OUTPASS)
    t.expect("Again: ")
    t.type(OUTPASS)
    rc, out, term = t.finish()
    assert rc == 0, term
    assert pubout(out_pem, OUTPASS) == pub
    for secret in SHAREPASS[:2] + [OUTPASS]:
        assert secret not in out and secret not in term
