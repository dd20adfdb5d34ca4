"""splitvault-admin key1-split, key1-share-check, key1-share-export and
key1-combine: key1 under dual control, the tool's side.

No server is started: the commands need no database. Keys are made with
the stock openssl tool; every k-subset of a split must give key1 back (its
public key as `openssl pkey -pubout` prints it), fewer must not, and
nothing is written when a passphrase is wrong, a share was altered or comes
from another split, or a target exists. Exported raw shares must combine
with libgfshare's own gfcombine into DER that openssl reads. No passphrase,
key or share byte may appear in what the commands print.

An attacker's answers: key1-combine names the key before any passphrase
and refuses another than --expect's (a forged split of one's own key); a
holder who reseals other bytes gets nothing; key1-split writes nothing
when its shares do not combine or a file cannot be written (test builds
inject both); share files must be regular files; the tool is undumpable
while it holds a share; an unsealed export off a tmpfs is warned about.
"""
import base64
import fcntl
import itertools
import os
import pathlib
import pty
import stat
import subprocess

import pytest


from svtest.core import wait_until
from svtest.sharefile import reseal
from svtest.fixtures_httpd import ADMIN, needs_test_hooks

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

    def __call__(self, *args, fds=None, stdin="", env=None):
        """fds: {"--option": [lines]}: each becomes a pipe whose number is
        given after the option; env: variables added to the environment."""
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
                               env=dict(os.environ, SPLITVAULT_DSN="", **(env or {})))
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


def key_and_shares(admin, tmp_path, k, n):
    """A new key1 at tmp_path/key1.pem, split k of n into tmp_path/s with
    the default passphrases: the key's path and its share files."""
    key = tmp_path / "key1.pem"
    make_key(key)
    p = split(admin, key, tmp_path / "s", k, n)
    assert p.returncode == 0, p.stderr
    return key, share_files(tmp_path / "s", key, n)


def combine(admin, out, files, passes, outpass=OUTPASS, expect=None):
    args = ["--expect", expect] if expect else []
    return admin("key1-combine", *args, "--out", out, *files,
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
    key, files = key_and_shares(admin, tmp_path, 3, 5)
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
    key, files = key_and_shares(admin, tmp_path, 2, 3)
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
    key, files = key_and_shares(admin, tmp_path, 3, 5)
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
    t = Tty("key1-combine", "--expect", fingerprint(key), "--out", out_pem, *files)
    t.expect("These shares name key1 %s" % fingerprint(key))
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


def test_fingerprint_shown_and_expected(admin, tmp_path):
    """key1-combine names the shares' key before any passphrase, and with
    --expect refuses the shares of any other key: a forged split of a key
    of one's own, whose shares name their own key, gives nothing."""
    key = tmp_path / "key1.pem"
    forged = tmp_path / "forged.pem"
    make_key(key)
    make_key(forged)
    fp = fingerprint(key)
    assert split(admin, key, tmp_path / "s", 2, 3).returncode == 0
    assert split(admin, forged, tmp_path / "f", 2, 3).returncode == 0
    files = share_files(tmp_path / "s", key, 3)
    ffiles = share_files(tmp_path / "f", forged, 3)
    out = tmp_path / "out.pem"

    # refused before any passphrase is read: none is given
    c = admin("key1-combine", "--expect", fp, "--out", out, *ffiles[:2])
    assert c.returncode == 1 and not out.exists()
    assert "These shares name key1 %s" % fingerprint(forged) in c.stderr
    assert "not of the expected %s" % fp in c.stderr
    assert "passphrase" not in c.stderr
    c = combine(admin, out, ffiles[:2], SHAREPASS[:2], expect=fp)
    assert c.returncode == 1 and "not of the expected" in c.stderr and not out.exists()
    for bad in [fp[:16], fp.upper(), fp + "0"]:
        c = combine(admin, out, files[:2], SHAREPASS[:2], expect=bad)
        assert c.returncode == 1 and "a whole key1 fingerprint" in c.stderr
    assert not out.exists()

    c = combine(admin, out, files[1:], SHAREPASS[1:3], expect=fp)
    assert c.returncode == 0, c.stderr
    assert "These shares name key1 %s" % fp in c.stderr
    assert "key1-list" not in c.stderr
    # without --expect: named, and the admin told to compare it
    out2 = tmp_path / "out2.pem"
    c = combine(admin, out2, files[:2], SHAREPASS[:2])
    assert c.returncode == 0 and "These shares name key1 %s" % fp in c.stderr
    assert "key1-list" in c.stderr


def test_out_passphrase_not_a_holders(admin, tmp_path):
    key, files = key_and_shares(admin, tmp_path, 2, 3)
    out = tmp_path / "out.pem"
    c = combine(admin, out, files[:2], SHAREPASS[:2], outpass=SHAREPASS[1])
    assert c.returncode == 1 and "passphrase of %s" % files[1] in c.stderr
    assert not out.exists()
    assert_no_secrets(admin, raw_private(key))


@pytest.mark.parametrize("what", ["random", "other-share"])
def test_holder_reseals_other_bytes(admin, tmp_path, what):
    """A holder who seals other bytes under their own passphrase makes a
    share file that opens: key1-combine finds the key is not the one named
    and writes nothing."""
    key, files = key_and_shares(admin, tmp_path, 2, 3)
    text = files[1].read_text()
    # the helper itself is right: resealing the same bytes still combines
    raw = tmp_path / "raw.002"
    assert admin("key1-share-export", files[1], raw,
                 fds={"--passphrase-fd": [SHAREPASS[1]]}).returncode == 0
    files[1].write_text(reseal(text, SHAREPASS[1], raw.read_bytes()))
    out = tmp_path / "same.pem"
    c = combine(admin, out, files[:2], SHAREPASS[:2])
    assert c.returncode == 0, c.stderr

    if what == "random":
        other = os.urandom(48)
    else:
        raw3 = tmp_path / "raw.003"
        assert admin("key1-share-export", files[2], raw3,
                     fds={"--passphrase-fd": [SHAREPASS[2]]}).returncode == 0
        other = raw3.read_bytes()
    files[1].write_text(reseal(text, SHAREPASS[1], other))
    c = admin("key1-share-check", files[1], fds={"--passphrase-fd": [SHAREPASS[1]]})
    assert c.returncode == 0, c.stderr
    out = tmp_path / "out.pem"
    c = combine(admin, out, files[:2], SHAREPASS[:2])
    assert c.returncode == 1 and not out.exists()
    assert "do not give the key they name" in c.stderr and "made to deceive" in c.stderr
    assert_no_secrets(admin, raw_private(key), other)


@needs_test_hooks
@pytest.mark.parametrize("at", [1, 2, 3])
def test_split_all_or_nothing_on_write_failure(admin, tmp_path, at):
    """A share file that cannot be written (a test build injects the
    failure at share `at`): the ones written before it are removed."""
    key = tmp_path / "key1.pem"
    make_key(key)
    outdir = tmp_path / "s"
    outdir.mkdir()
    p = admin("key1-split", "--k", "2", "--n", "3", "--out-dir", outdir, key,
              fds={"--passphrase-fd": [KEYPASS], "--share-passphrase-fd": SHAREPASS[:3]},
              env={"SVT_TEST_SPLIT_WRITE_FAIL": str(at)})
    assert p.returncode == 1 and "injected failure" in p.stderr
    assert "no share file kept" in p.stderr
    assert list(outdir.iterdir()) == []


@needs_test_hooks
@pytest.mark.parametrize("at", [1, 3, 5])
def test_split_checks_its_shares_combine(admin, tmp_path, at):
    """key1-split combines its shares before writing any: a share that
    would not give key1 back (a test build flips a bit of share `at`
    after the split) stops it with nothing written."""
    key = tmp_path / "key1.pem"
    make_key(key)
    outdir = tmp_path / "s"
    outdir.mkdir()
    p = admin("key1-split", "--k", "3", "--n", "5", "--out-dir", outdir, key,
              fds={"--passphrase-fd": [KEYPASS], "--share-passphrase-fd": SHAREPASS[:5]},
              env={"SVT_TEST_SPLIT_CORRUPT": str(at)})
    assert p.returncode == 1 and "do not give key1 back" in p.stderr, p.stderr
    assert "nothing written" in p.stderr
    assert list(outdir.iterdir()) == []
    assert_no_secrets(admin, raw_private(key))


def test_share_file_must_be_regular(admin, tmp_path):
    key, files = key_and_shares(admin, tmp_path, 2, 3)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(files[0])
    for f, why in [(fifo, "not a regular file"), (tmp_path, "not a regular file"),
                   (link, "symbolic link")]:
        # a FIFO with no writer must not block the tool
        c = admin("key1-share-check", f, fds={"--passphrase-fd": [SHAREPASS[0]]})
        assert c.returncode == 1 and why in c.stderr, c.stderr
        c = combine(admin, tmp_path / "out.pem", [f, files[1]], SHAREPASS[:2])
        assert c.returncode == 1 and why in c.stderr
    assert not (tmp_path / "out.pem").exists()
    # no passphrase source: the message speaks of the share, not a key file
    c = admin("key1-share-check", files[0])
    assert c.returncode == 1 and "share file needs its holder's passphrase" in c.stderr


def test_export_warns_off_tmpfs(admin, tmp_path):
    key, files = key_and_shares(admin, tmp_path, 2, 3)
    disk = ADMIN.parent / ("export-test-%d" % os.getpid())
    shm = pathlib.Path("/dev/shm") / ("export-test-%d" % os.getpid())
    for d in (disk, shm):
        d.mkdir(mode=0o700)
    try:
        is_tmpfs = {d: subprocess.run(["stat", "-f", "-c", "%T", str(d)], capture_output=True,
                                      text=True, check=True).stdout.strip() in ("tmpfs", "ramfs")
                    for d in (disk, shm)}
        assert is_tmpfs[shm]
        for d in (disk, shm):
            r = admin("key1-share-export", files[0], d / "raw.001",
                      fds={"--passphrase-fd": [SHAREPASS[0]]})
            assert r.returncode == 0, r.stderr
            assert ("is not on a tmpfs" in r.stderr) == (not is_tmpfs[d]), r.stderr
    finally:
        for d in (disk, shm):
            for f in d.iterdir():
                f.unlink()
            d.rmdir()


def test_undumpable_while_holding_a_share(tmp_path):
    """Another process of the same user can neither ptrace the tool nor
    read its memory while it holds a share: /proc/PID/mem turns root's as
    soon as the process is undumpable (the tool is run as nobody)."""
    key = tmp_path / "key1.pem"
    make_key(key)
    admin = Admin()
    assert split(admin, key, tmp_path / "s", 2, 3).returncode == 0
    files = share_files(tmp_path / "s", key, 3)
    shm = pathlib.Path("/dev/shm") / ("dump-test-%d" % os.getpid())
    shm.mkdir(mode=0o755)
    try:
        share = shm / "share"
        share.write_text(files[0].read_text())
        share.chmod(0o644)
        r, w = os.pipe()
        p = subprocess.Popen([str(ADMIN), "key1-share-check", "--passphrase-fd", str(r), share],
                             pass_fds=[r], user=65534, group=65534, extra_groups=[],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, SPLITVAULT_DSN=""))
        os.close(r)
        try:
            wait_until(lambda: os.stat("/proc/%d/mem" % p.pid).st_uid == 0, 30,
                       "splitvault-admin undumpable")
            # it reads the share file as nobody, so it was nobody's before
            assert p.poll() is None
        finally:
            os.write(w, (SHAREPASS[0] + "\n").encode())
            os.close(w)
            out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert "the passphrase opens this share" in out
    finally:
        for f in shm.iterdir():
            f.unlink()
        shm.rmdir()
