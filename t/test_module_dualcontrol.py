"""key1 under dual control at the key location: shares from several admins.

Real httpd, PostgreSQL and splitvaultd. key1 is split with the stock tool
(`splitvault-admin key1-split`); each admin signs in as themselves and gives
their own share file with its passphrase. key1 is loaded only when the
split's k shares from k different admins are present, of one split of one
registered key; everything else is refused and audited, and a partial set
is wiped when its time is up, by the parent's monitor hook without any
request. No share byte or passphrase reaches a log, an audit row or a page.
"""
import os
import re
import urllib.parse

import pytest

from svtest import sharefile
from svtest.core import wait_until
from svtest.data import GOOD
from svtest.fixtures_httpd import TEST_HOOKS, Key1, key1_split, multipart_body, unescape

# admins besides ada (STAFF); ada, bob and cy give shares
ADMINS = {"bob": "bob-password-00005", "cy": "cy-password-0000006"}
KEY_PASS = "the key1 file's own passphrase 77"

pytestmark = pytest.mark.log_allows(r"SV02150", r"SV02151", r"SV02102")


class Split:
    """The share files of one key1-split run: data[i], passphrase[i]."""

    def __init__(self, paths, passes):
        self.data = {i: path.read_bytes() for i, path in paths.items()}
        self.passphrase = {i: passes[i - 1] for i in paths}

    def body_lines(self):
        """The sealed lines of every share file (its secret part)."""
        out = []
        for d in self.data.values():
            text = d.decode()
            out += [l for l in text.split("\n\n", 1)[1].splitlines()
                    if l and not l.startswith("-----")]
        return out


_splits = [0]


def split_key1(sv, key, k, n, holders=()):
    """key1-split key into n shares with threshold k, each under its own
    passphrase (given on a pipe, one line per share)."""
    _splits[0] += 1
    tag = "s%d" % _splits[0]
    out = sv.dir / ("split-" + tag)
    out.mkdir()
    passes = ["%s share %d passphrase %s" % (tag, i, os.urandom(4).hex()) for i in range(1, n + 1)]
    return Split(key1_split(key, k, holders, out, passes, dsn=sv.db.dsn), passes)


def forge_share(data, passphrase, flip):
    """The share file data with byte flip of its share value changed and
    sealed again under the same passphrase (lib/sv_share.h's format): a
    file that opens, whose share is not what it claims. What a holder who
    cheats, or a bug, would hand in."""
    text = data.decode()
    share = bytearray(sharefile.open_share(text, passphrase))
    share[flip] ^= 0x5a
    return sharefile.reseal(text, passphrase, share).encode()


def split_id(split):
    """The first 8 hex digits of a split's id (its Split header)."""
    return re.search(r"^Split: ([0-9a-f]{8})", split.data[1].decode(), re.M).group(1)


def add_admins(sv):
    for name, pw in ADMINS.items():
        sv.db.add_staff(name, pw, ("admin",))


def login(sv, name):
    return sv.login(name, ADMINS.get(name))


def give(sv, client, data, passphrase, csrf=None, form="multipart"):
    """Give a share at the key location as a browser does (the file input,
    or its text pasted: form="urlencoded"); the Response."""
    page = client.get(sv.keys_path())
    token = page.csrf() if csrf is None else csrf
    fields = [("csrf", token), ("action", "share"), ("passphrase", passphrase)]
    if form == "urlencoded":
        fields.append(("sharetext", data.decode("ascii")))
        return client.post(sv.keys_path(), body=urllib.parse.urlencode(fields))
    body, ctype = multipart_body(fields, [("sharefile", "key1.share", data)])
    return client.post(sv.keys_path(), body=body, content_type=ctype)


def give_share(sv, client, split, i, passphrase=None):
    return give(sv, client, split.data[i], split.passphrase[i] if passphrase is None
                else passphrase)


def discard(sv, client, fp):
    page = client.get(sv.keys_path())
    return client.post(sv.keys_path(), {"csrf": page.csrf(), "action": "share-discard",
                                        "fingerprint": fp})


def keys_state(sv, client):
    """(loaded fingerprints, {fp: (have, need, names, expires)}) from the page."""
    page = client.get(sv.keys_path())
    assert page.status == 200, page.text
    loaded = set(re.findall(r'value="forget"><input type="hidden" name="fingerprint" '
                            r'value="([0-9a-f]{64})"', page.text))
    pending = {}
    for row in page.text.split("<tr>"):
        m = re.search(r'<td class="mono">([0-9a-f]{64})</td>.*<td class="pending">assembling: '
                      r'(\d+) of (\d+) shares, from (.*?), expires at (\d\d:\d\d:\d\d) UTC',
                      row, re.S)
        if m:
            pending[m.group(1)] = (int(m.group(2)), int(m.group(3)), unescape(m.group(4)),
                                   m.group(5))
    return loaded, pending


def share_audit(sv, action="key1-share"):
    return sv.db.query("SELECT coalesce(actor, ''), outcome, coalesce(detail, '') FROM audit "
                       "WHERE action = %s ORDER BY id", (action,))


def assert_no_secrets(sv, *splits, extra=()):
    logs = sv.httpd.log_text() + sv.httpd.access_log.read_text()
    audit = " ".join(str(x) for row in sv.db.query("SELECT * FROM audit") for x in row)
    for sp in splits:
        for s in list(sp.passphrase.values()) + sp.body_lines():
            assert s not in logs and s not in audit, s
    for s in extra:
        assert s not in logs and s not in audit, s


def test_k_shares_from_k_admins_load_and_decrypt(sv_factory):
    """2 of 3: one share loads nothing (decrypt stays unavailable), the
    second admin's share loads key1 and decrypt works. The key file itself
    has a passphrase (key1-split reads it on its own descriptor)."""
    sv = sv_factory(key1_passphrase=KEY_PASS)
    add_admins(sv)
    fp = sv.key1.fingerprint
    ref = sv.ref_of(sv.submit(GOOD))
    sp = split_key1(sv, sv.key1, 2, 3)
    ada, bob = sv.login("ada"), login(sv, "bob")
    page = ada.get(sv.keys_path())
    assert 'name="sharefile"' in page.text and 'name="key1file"' in page.text
    r = give_share(sv, ada, sp, 1)
    assert r.status == 303 and "done=share" in r.header("Location"), r.text
    loaded, pending = keys_state(sv, bob)
    assert loaded == set()
    assert pending[fp][:3] == (1, 2, "ada")
    pat = sv.login("pat")
    r = sv.decrypt(pat, ref)
    assert r.status == 503 and "Key not loaded" in r.text
    assert sv.decrypted_values(r) == {}
    # the second admin completes the set
    r = give_share(sv, bob, sp, 3)
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text
    loaded, pending = keys_state(sv, ada)
    assert loaded == {fp} and pending == {}
    page = ada.get(sv.keys_path())
    assert "by shares of ada and bob" in page.text
    r = sv.decrypt(pat, ref)
    assert r.status == 200, r.text
    assert sv.decrypted_values(r) == GOOD
    rows = share_audit(sv)
    assert rows[0][:2] == ("ada", "ok") and "key1 %s share 1 " % fp in rows[0][2] \
        and rows[0][2].endswith(": 1 of 2")
    assert rows[1][:2] == ("bob", "ok") and rows[1][2].endswith(": 2 of 2")
    assert rows[2] == ("bob", "loaded", "key1 %s loaded from shares 1 (ada), 3 (bob)" % fp)
    # a share of a key that is loaded already is refused
    r = give_share(sv, sv.login("ada"), sp, 2)
    assert r.status == 409 and "loaded on this server already" in r.text
    assert share_audit(sv)[-1][:2] == ("ada", "refused")
    assert share_audit(sv)[-1][2].startswith("already loaded: key1 %s share 2" % fp)
    assert_no_secrets(sv, sp, extra=(KEY_PASS,))


def test_one_admin_counts_once_and_an_index_once(sv_factory):
    sv = sv_factory()
    add_admins(sv)
    fp = sv.key1.fingerprint
    sp = split_key1(sv, sv.key1, 3, 4)
    ada, bob, cy = sv.login("ada"), login(sv, "bob"), login(sv, "cy")
    assert give_share(sv, ada, sp, 1).status == 303
    _, pending = keys_state(sv, ada)
    expires = pending[fp][3]
    # ada's second share replaces her first: still one share, and the
    # set's expiry does not move
    r = give_share(sv, ada, sp, 2)
    assert r.status == 303, r.text
    _, pending = keys_state(sv, ada)
    assert pending[fp] == (1, 3, "ada", expires)
    # bob cannot give the index ada holds now
    r = give_share(sv, bob, sp, 2)
    assert r.status == 409 and "given this same share already" in r.text, r.text
    _, pending = keys_state(sv, ada)
    assert pending[fp][:3] == (1, 3, "ada")
    # ada once more (her first file again): still one
    assert give_share(sv, ada, sp, 1).status == 303
    assert give_share(sv, bob, sp, 2).status == 303
    loaded, pending = keys_state(sv, cy)
    assert loaded == set() and pending[fp][:3] == (2, 3, "ada and bob")
    # cy pastes the file's text
    r = give(sv, cy, sp.data[4], sp.passphrase[4], form="urlencoded")
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text
    assert keys_state(sv, cy)[0] == {fp}
    rows = share_audit(sv)
    assert [(a, o) for a, o, _ in rows] == [
        ("ada", "ok"), ("ada", "replaced"), ("bob", "refused"), ("ada", "replaced"),
        ("bob", "ok"), ("cy", "ok"), ("cy", "loaded")]
    assert rows[2][2].startswith("duplicate index: key1 %s share 2 " % fp)
    assert "pending shares 2 (ada)" in rows[2][2]
    assert rows[-1][2] == "key1 %s loaded from shares 1 (ada), 2 (bob), 4 (cy)" % fp
    assert_no_secrets(sv, sp)


def test_two_keys_never_mix_and_another_split_is_refused(sv_factory):
    sv = sv_factory()
    add_admins(sv)
    other = Key1(sv.dir / "key1b", name="other")
    sv.db.admin("key1-register", other.pub, "--by", "tests")
    fa, fb = sv.key1.fingerprint, other.fingerprint
    sa = split_key1(sv, sv.key1, 2, 2)
    sb = split_key1(sv, other, 2, 2)
    ada, bob, cy = sv.login("ada"), login(sv, "bob"), login(sv, "cy")
    # one share of each key from two admins: two sets, nothing loaded
    assert give_share(sv, ada, sa, 1).status == 303
    assert give_share(sv, bob, sb, 2).status == 303
    loaded, pending = keys_state(sv, cy)
    assert loaded == set()
    assert pending[fa][:3] == (1, 2, "ada") and pending[fb][:3] == (1, 2, "bob")
    # a share of another split of key A, while A's set is pending
    sa2 = split_key1(sv, sv.key1, 2, 2)
    r = give_share(sv, cy, sa2, 2)
    assert r.status == 409 and "another split" in r.text, r.text
    loaded, pending = keys_state(sv, cy)
    assert loaded == set() and pending[fa][:3] == (1, 2, "ada")
    # discard A's set; then the new split can be used
    r = discard(sv, cy, fa)
    assert r.status == 303, r.text
    loaded, pending = keys_state(sv, cy)
    assert set(pending) == {fb}
    assert discard(sv, cy, fa).status == 404
    assert give_share(sv, cy, sa2, 2).status == 303
    r = give_share(sv, ada, sa2, 1)
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text
    loaded, pending = keys_state(sv, ada)
    assert loaded == {fa} and set(pending) == {fb}
    rows = share_audit(sv)
    refused = [d for a, o, d in rows if o == "refused"]
    assert len(refused) == 1 and refused[0].startswith("other split: key1 %s share 2 " % fa)
    assert share_audit(sv, "key1-share-discard") == [
        ("cy", "ok", "key1 %s: shares 1 (ada) (1 of 2) of split %s started by ada wiped"
         % (fa, split_id(sa))),
        ("cy", "none pending", "key1 %s" % fa)]
    assert_no_secrets(sv, sa, sb, sa2)


@pytest.mark.log_allows(r"SV02150")
def test_refusals_load_nothing_and_are_audited(sv_factory):
    """Wrong passphrase, a corrupted file, a share naming another holder, a
    split below SplitVaultKey1MinShares, a key that is not registered."""
    sv = sv_factory(directives={"SplitVaultKey1MinShares": "3"})
    add_admins(sv)
    fp = sv.key1.fingerprint
    ada = sv.login("ada")
    low = split_key1(sv, sv.key1, 2, 3)
    r = give_share(sv, ada, low, 1)
    assert r.status == 403 and "requires at least 3" in r.text, r.text
    sp = split_key1(sv, sv.key1, 3, 3, holders=("ada", "bob", "cy"))
    r = give_share(sv, ada, sp, 1, passphrase="not the passphrase")
    assert r.status == 403 and "does not open this share" in r.text, r.text
    r = give_share(sv, ada, sp, 1, passphrase="")
    assert r.status == 400
    # one character of the sealed part changed
    text = sp.data[1].decode()
    head, body = text.split("\n\n", 1)
    i = 10
    body = body[:i] + ("A" if body[i] != "A" else "B") + body[i + 1:]
    r = give(sv, ada, (head + "\n\n" + body).encode(), sp.passphrase[1])
    assert r.status == 403 and "does not open this share" in r.text, r.text
    # a header changed: the AEAD covers the headers too
    r = give(sv, ada, sp.data[1].replace(b"Share: 1\n", b"Share: 2\n"), sp.passphrase[1])
    assert r.status == 403, r.text
    r = give(sv, ada, b"hello, not a share\n", "x")
    assert r.status == 400 and "not a key1 share file" in r.text
    # bob's share in ada's hands (with its passphrase): refused
    r = give_share(sv, ada, sp, 2)
    assert r.status == 403 and "belongs to bob" in r.text, r.text
    # a share of a key that is not registered
    other = Key1(sv.dir / "unreg", name="unreg")
    su = split_key1(sv, other, 3, 3)
    r = give_share(sv, ada, su, 1)
    assert r.status == 403 and "not a registered key1" in r.text, r.text
    loaded, pending = keys_state(sv, ada)
    assert loaded == set() and pending == {}
    details = [d for a, o, d in share_audit(sv) if a == "ada" and o == "refused"]
    assert details[0].startswith("below minimum (3 shares): key1 %s share 1 " % fp)
    assert details[1].startswith("wrong passphrase or altered file: key1 %s share 1 " % fp)
    assert details[2].startswith("passphrase missing: key1 %s share 1" % fp)
    assert details[3].startswith("wrong passphrase or altered file: key1 %s share 1 " % fp)
    assert details[4].startswith("wrong passphrase or altered file: key1 %s share 2 " % fp)
    assert details[5] == "not a share file"
    assert details[6].startswith("holder mismatch (the file names bob): key1 %s share 2" % fp)
    assert details[7].startswith("key not registered: key1 %s share 1" % other.fingerprint)
    assert not any(o in ("ok", "loaded") for _, o, _ in share_audit(sv))
    # the right holders load it
    assert give_share(sv, ada, sp, 1).status == 303
    assert give_share(sv, login(sv, "bob"), sp, 2).status == 303
    r = give_share(sv, login(sv, "cy"), sp, 3)
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text
    assert keys_state(sv, ada)[0] == {fp}
    assert_no_secrets(sv, low, sp, su, extra=("not the passphrase",))


@pytest.mark.log_allows(r"SV02102")
def test_whole_file_off(sv_factory):
    sv = sv_factory(directives={"SplitVaultKey1WholeFile": "Off"})
    add_admins(sv)
    ada = sv.login("ada")
    page = ada.get(sv.keys_path())
    assert 'name="key1file"' not in page.text and 'name="sharefile"' in page.text
    r = sv.upload_key1(ada)
    assert r.status == 403 and "only from the shares" in r.text, r.text
    assert keys_state(sv, ada)[0] == set()
    assert sv.db.query("SELECT actor, outcome, detail FROM audit WHERE action = "
                       "'key1-upload'") == [
        ("ada", "refused", "whole-file upload is off (SplitVaultKey1WholeFile Off)")]
    sp = split_key1(sv, sv.key1, 2, 2)
    assert give_share(sv, ada, sp, 1).status == 303
    assert give_share(sv, login(sv, "bob"), sp, 2).status == 303
    assert keys_state(sv, ada)[0] == {sv.key1.fingerprint}


def test_expired_set_is_wiped_by_the_monitor(sv_factory):
    """SplitVaultKey1ShareTimeout 2: the parent's monitor wipes the set
    without any request (its log line shows it); the next request of the
    key location, here a share POST (after its body is wiped), writes the
    audit row with a full UTC timestamp; that share starts a new set."""
    sv = sv_factory(directives={"SplitVaultKey1ShareTimeout": "2"})
    add_admins(sv)
    fp = sv.key1.fingerprint
    sp = split_key1(sv, sv.key1, 2, 3)
    ada, bob = sv.login("ada"), login(sv, "bob")
    assert give_share(sv, ada, sp, 1).status == 303
    token = bob.get(sv.keys_path()).csrf()
    gone = re.compile(r"SV02144: key1 %s: pending shares expired \(1 of 2\); wiped by the "
                      r"monitor" % fp)
    # no request until the monitor (every ~10 s in the parent) has wiped it
    wait_until(lambda: gone.search(sv.httpd.log_text()), 40, "the monitor's expiry")
    assert "SV02143" not in sv.httpd.log_text()
    assert [r for r in share_audit(sv) if r[1] == "expired"] == []
    # bob's share (no page view before it) starts a set of its own
    body, ctype = multipart_body([("csrf", token), ("action", "share"),
                                  ("passphrase", sp.passphrase[2])],
                                 [("sharefile", "key1.share", sp.data[2])])
    r = bob.post(sv.keys_path(), body=body, content_type=ctype)
    assert r.status == 303 and "done=share" in r.header("Location"), r.text
    rows = [r for r in share_audit(sv) if r[1] == "expired"]
    assert len(rows) == 1 and rows[0][0] == ""
    assert re.fullmatch(r"key1 %s split [0-9a-f]{8} started by ada: shares 1 \(ada\) \(1 of "
                        r"2\) expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; wiped by the module"
                        % fp, rows[0][2]), rows[0][2]
    loaded, pending = keys_state(sv, ada)
    assert loaded == set() and pending[fp][:3] == (1, 2, "bob")
    # the page view wrote nothing more: the record left with its row
    assert len([r for r in share_audit(sv) if r[1] == "expired"]) == 1
    assert_no_secrets(sv, sp)


def test_pending_set_survives_graceful_restart_and_stop_wipes_it(sv_factory):
    """The segment outlives a graceful restart, pending shares with it (and
    their expiry); a stop cleanses them."""
    sv = sv_factory()
    add_admins(sv)
    fp = sv.key1.fingerprint
    sp = split_key1(sv, sv.key1, 2, 3)
    assert give_share(sv, sv.login("ada"), sp, 1).status == 303
    before = keys_state(sv, sv.login("ada"))[1][fp]
    sv.httpd.graceful()
    bob = login(sv, "bob")
    assert keys_state(sv, bob)[1][fp] == before
    r = give_share(sv, bob, sp, 2)
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text
    assert keys_state(sv, bob)[0] == {fp}
    # a new pending set (after forgetting the key), then a full stop
    assert sv.forget_key1().status == 303
    assert give_share(sv, bob, sp, 3).status == 303
    sv.httpd.stop()
    if TEST_HOOKS:
        wiped = re.findall(r"SV02139: .* (\d+) key\(s\) were loaded, (\d+) set\(s\) of shares "
                           r"pending, (\d+) of \d+ bytes nonzero after the wipe",
                           sv.httpd.log_text())
        assert wiped and wiped[-1] == ("0", "1", "0"), wiped
    sv.httpd.start()
    assert keys_state(sv, sv.login("ada")) == (set(), {})


def test_a_false_share_wipes_the_set_and_loads_nothing(sv_factory):
    """A share that opens but is not what it claims: the combination fails
    the check against the registered key, the whole set is wiped, nothing
    is loaded, and the audit row says who gave which index."""
    sv = sv_factory()
    add_admins(sv)
    fp = sv.key1.fingerprint
    ref = sv.ref_of(sv.submit(GOOD))
    sp = split_key1(sv, sv.key1, 3, 3)
    ada, bob, cy = sv.login("ada"), login(sv, "bob"), login(sv, "cy")
    assert give_share(sv, ada, sp, 1).status == 303
    assert give(sv, bob, forge_share(sp.data[2], sp.passphrase[2], 20),
                sp.passphrase[2]).status == 303
    r = give_share(sv, cy, sp, 3)
    assert r.status == 409 and "not the registered key1" in r.text, r.text
    assert keys_state(sv, ada) == (set(), {})
    assert sv.decrypt(sv.login("pat"), ref).status == 503
    rows = share_audit(sv)
    assert rows[-1][:2] == ("cy", "failed")
    assert rows[-1][2].startswith("key1 %s: shares 1 (ada), 2 (bob), 3 (cy) do not give the "
                                  "registered key" % fp)
    assert rows[-1][2].endswith("set wiped, nothing loaded")
    # the set is gone: the honest shares start afresh, and load
    assert give_share(sv, ada, sp, 1).status == 303
    assert give_share(sv, bob, sp, 2).status == 303
    r = give_share(sv, cy, sp, 3)
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text
    assert sv.decrypt(sv.login("pat"), ref).status == 200
    assert_no_secrets(sv, sp)


@pytest.mark.log_allows(r"SV02106")
def test_share_form_needs_an_admin_and_its_csrf_token(sv_factory):
    sv = sv_factory()
    sp = split_key1(sv, sv.key1, 2, 2)
    ada = sv.login("ada")
    r = give(sv, ada, sp.data[1], sp.passphrase[1], csrf="0" * 64)
    assert r.status == 403 and "Nothing was changed" in r.text
    r = give(sv, sv.login("pat"), sp.data[1], sp.passphrase[1])
    assert r.status == 403 and "Only administrators" in r.text
    assert keys_state(sv, ada) == (set(), {})
    assert sv.db.query("SELECT actor, action, outcome, detail FROM audit WHERE action LIKE "
                       "'key1-%%' ORDER BY id") == [
        ("ada", "key1-share", "refused", "missing or wrong CSRF token"),
        ("pat", "key1-post", "denied", "not an admin")]
    assert_no_secrets(sv, sp)


def test_whole_file_upload_supersedes_pending_shares(sv_factory):
    """With SplitVaultKey1WholeFile On, loading the whole key while shares
    of it are pending loads it and wipes the shares (a load, not a reload)."""
    sv = sv_factory()
    fp = sv.key1.fingerprint
    sp = split_key1(sv, sv.key1, 2, 2)
    ada = sv.login("ada")
    assert give_share(sv, ada, sp, 1).status == 303
    assert set(keys_state(sv, ada)[1]) == {fp}
    assert sv.upload_key1(ada).status == 303
    assert keys_state(sv, ada) == ({fp}, {})
    assert sv.db.query("SELECT actor, outcome, detail FROM audit WHERE action = "
                       "'key1-upload'") == [("ada", "ok", "loaded " + fp)]


def test_whole_file_upload_audits_the_shares_it_supersedes(sv_factory):
    """The shares a whole key wipes are named in the audit log."""
    sv = sv_factory()
    add_admins(sv)
    fp = sv.key1.fingerprint
    sp = split_key1(sv, sv.key1, 2, 3)
    assert give_share(sv, login(sv, "bob"), sp, 2).status == 303
    assert sv.upload_key1(sv.login("ada")).status == 303
    assert share_audit(sv, "key1-share-discard") == [
        ("ada", "superseded", "key1 %s split %s started by bob: shares 2 (bob) (1 of 2) wiped "
         "by a whole-key load" % (fp, split_id(sp)))]


def test_forget_leaves_a_pending_set_alone(sv_factory):
    """action=forget acts on loaded keys only: discard is for pending sets."""
    sv = sv_factory()
    add_admins(sv)
    fp = sv.key1.fingerprint
    sp = split_key1(sv, sv.key1, 2, 3)
    assert give_share(sv, sv.login("ada"), sp, 1).status == 303
    r = sv.forget_key1(client=login(sv, "bob"))
    assert r.status == 404, r.text
    loaded, pending = keys_state(sv, login(sv, "cy"))
    assert loaded == set() and pending[fp][:3] == (1, 2, "ada")
    assert share_audit(sv, "key1-forget") == [("bob", "not loaded", "key1 " + fp)]
    r = give_share(sv, login(sv, "cy"), sp, 3)
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text


def test_one_admin_cannot_block_loading(sv_factory):
    """An admin (or a stolen session) seals fake shares of registered keys:
    one pending set per admin at a time, never the last free slot, and the
    refusal of a genuine share names who started the blocking set and its
    split, which the page shows too, so that it can be discarded."""
    sv = sv_factory()
    add_admins(sv)
    sv.db.add_staff("dan", "dan-password-000007", ("admin",))
    keys = [sv.key1] + [Key1(sv.dir / ("k%d" % i), name="k%d" % i) for i in range(3)]
    for k in keys[1:]:
        sv.db.admin("key1-register", k.pub, "--by", "tests")
    fake = [split_key1(sv, k, 2, 2) for k in keys]
    ada, bob, cy = sv.login("ada"), login(sv, "bob"), login(sv, "cy")
    dan = sv.login("dan", "dan-password-000007")
    # ada starts a (fake) set of key1; a second set of hers is refused
    assert give_share(sv, ada, fake[0], 1).status == 303
    r = give_share(sv, ada, fake[1], 1)
    assert r.status == 409 and "You started another set" in r.text, r.text
    assert share_audit(sv)[-1][1] == "refused" and share_audit(sv)[-1][2].startswith(
        "another set started by this admin is pending (key1 %s split %s)"
        % (keys[0].fingerprint, split_id(fake[0])))
    # the genuine split's share is refused, naming the set and its starter
    real = split_key1(sv, sv.key1, 2, 2)
    r = give_share(sv, bob, real, 1)
    assert r.status == 409 and "split %s, started by ada" % split_id(fake[0]) in unescape(
        r.text), r.text
    assert "may discard the pending shares" in r.text
    assert "split %s" % split_id(fake[0]) in share_audit(sv)[-1][2]
    assert "started by ada" in share_audit(sv)[-1][2]
    page = bob.get(sv.keys_path()).text
    assert '<span class="mono">%s</span>, started by ada' % split_id(fake[0]) in page
    # two more sets by two more admins: the last free slot stays free
    assert give_share(sv, bob, fake[1], 1).status == 303
    assert give_share(sv, cy, fake[2], 1).status == 303
    r = give_share(sv, dan, fake[3], 1)
    assert r.status == 409 and "one is always kept" in r.text, r.text
    loaded, pending = keys_state(sv, dan)
    assert loaded == set() and len(pending) == 3
    # a whole key still finds room, and so does a set's completion
    assert sv.upload_key1(dan).status == 303
    assert keys_state(sv, dan)[0] == {sv.key1.fingerprint}
    r = give_share(sv, dan, fake[1], 2)
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text
    assert keys_state(sv, dan)[0] == {sv.key1.fingerprint, keys[1].fingerprint}


@pytest.mark.log_allows(r"SV02157")
def test_a_giver_who_is_no_longer_an_admin_does_not_count(sv_factory):
    """A share counts only while its giver is an enabled admin: checked
    again when the set completes; the others' shares stay pending."""
    sv = sv_factory()
    add_admins(sv)
    fp = sv.key1.fingerprint
    sp = split_key1(sv, sv.key1, 3, 4)
    assert give_share(sv, sv.login("ada"), sp, 1).status == 303
    assert give_share(sv, login(sv, "bob"), sp, 2).status == 303
    sv.db.admin("staff-disable", "ada")
    cy = login(sv, "cy")
    r = give_share(sv, cy, sp, 3)
    assert r.status == 409 and "shares of 1 (ada) no longer count" in r.text, r.text
    loaded, pending = keys_state(sv, cy)
    assert loaded == set() and pending[fp][:3] == (2, 3, "bob and cy")
    assert share_audit(sv)[-1][:2] == ("cy", "dropped")
    assert share_audit(sv)[-1][2].startswith("key1 %s split %s: shares 1 (ada) dropped"
                                             % (fp, split_id(sp)))
    # an admin who lost the capability counts no more either
    sv.db.admin("staff-caps", "bob", "--no-admin")
    sv.db.add_staff("dan", "dan-password-000007", ("admin",))
    dan = sv.login("dan", "dan-password-000007")
    r = give_share(sv, dan, sp, 4)
    assert r.status == 409 and "2 (bob) no longer count" in r.text, r.text
    assert keys_state(sv, dan)[1][fp][:3] == (2, 3, "cy and dan")
    sv.db.admin("staff-enable", "ada")
    r = give_share(sv, sv.login("ada"), sp, 1)
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text


@pytest.mark.log_allows(r"SV02102")
def test_whole_file_off_leaves_pending_shares(sv_factory):
    sv = sv_factory(directives={"SplitVaultKey1WholeFile": "Off"})
    add_admins(sv)
    fp = sv.key1.fingerprint
    sp = split_key1(sv, sv.key1, 2, 2)
    ada = sv.login("ada")
    assert give_share(sv, ada, sp, 1).status == 303
    r = sv.upload_key1(login(sv, "bob"))
    assert r.status == 403, r.text
    loaded, pending = keys_state(sv, ada)
    assert loaded == set() and pending[fp][:3] == (1, 2, "ada")
    assert share_audit(sv, "key1-share-discard") == []
    r = give_share(sv, login(sv, "bob"), sp, 2)
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text


def test_k_minus_one_never_loads(sv_factory):
    """3 of 5: two shares, whichever, load nothing and decrypt stays off."""
    sv = sv_factory()
    add_admins(sv)
    fp = sv.key1.fingerprint
    ref = sv.ref_of(sv.submit(GOOD))
    sp = split_key1(sv, sv.key1, 3, 5)
    assert give_share(sv, sv.login("ada"), sp, 5).status == 303
    assert give_share(sv, login(sv, "bob"), sp, 2).status == 303
    loaded, pending = keys_state(sv, login(sv, "cy"))
    assert loaded == set() and pending[fp][:3] == (2, 3, "ada and bob")
    assert sv.decrypt(sv.login("pat"), ref).status == 503
    assert not any(o == "loaded" for _, o, _ in share_audit(sv))


def test_a_costly_share_file_is_refused_before_scrypt(sv_factory):
    """Share files whose scrypt costs more than twice what key1-split
    writes are refused from their headers, before any derivation."""
    sv = sv_factory()
    sp = split_key1(sv, sv.key1, 2, 2)
    costly = sp.data[1].replace(b" p=1\n", b" p=3\n")
    assert costly != sp.data[1]
    r = give(sv, sv.login("ada"), costly, sp.passphrase[1])
    assert r.status == 400 and "refused before any use" in r.text, r.text
    assert share_audit(sv) == [("ada", "refused", "passphrase protection refused (too costly)")]


@pytest.mark.skipif(not TEST_HOOKS, reason="needs --enable-test-hooks")
@pytest.mark.log_allows(r"SV02158")
def test_share_openings_at_once_are_bounded(sv_factory):
    """At most two share files are opened (scrypt) at once in the whole
    httpd: a third gets 503 with Retry-After and nothing is kept."""
    import threading
    sv = sv_factory()
    add_admins(sv)
    fp = sv.key1.fingerprint
    sp = split_key1(sv, sv.key1, 3, 3)
    slow = {"X-SplitVault-Fault": "share-open-slow"}
    out = {}

    def give_slowly(name, i):
        c = sv.login(name) if name == "ada" else login(sv, name)
        token = c.get(sv.keys_path()).csrf()
        body, ctype = multipart_body([("csrf", token), ("action", "share"),
                                      ("passphrase", sp.passphrase[i])],
                                     [("sharefile", "key1.share", sp.data[i])])
        out[name] = c.post(sv.keys_path(), body=body, content_type=ctype, headers=slow)

    cy = login(sv, "cy")
    threads = [threading.Thread(target=give_slowly, args=a) for a in (("ada", 1), ("bob", 2))]
    for t in threads:
        t.start()
    wait_until(lambda: len(re.findall("SV02161", sv.httpd.log_text())) == 2, 20,
               "two slow openings")
    r = give_share(sv, cy, sp, 3)
    assert r.status == 503 and r.header("Retry-After") == "5", r.text
    assert "try again in a few seconds" in r.text
    for t in threads:
        t.join(30)
    assert out["ada"].status == 303 and out["bob"].status == 303
    assert keys_state(sv, cy) == (set(), {fp: keys_state(sv, cy)[1][fp]})
    r = give_share(sv, cy, sp, 3)
    assert r.status == 303 and "done=loaded" in r.header("Location"), r.text


@pytest.mark.skipif(not TEST_HOOKS, reason="needs --enable-test-hooks")
@pytest.mark.log_allows(r"SV02102")
def test_a_completing_set_keeps_its_slot(sv_factory):
    """Between the last share and the load the slot stays reserved
    (LOADING): a whole-key upload of that key and new shares of it are
    refused meanwhile, and the combined key goes into exactly that slot."""
    import threading
    sv = sv_factory()
    add_admins(sv)
    fp = sv.key1.fingerprint
    sp = split_key1(sv, sv.key1, 2, 3)
    assert give_share(sv, sv.login("ada"), sp, 1).status == 303
    bob = login(sv, "bob")
    token = bob.get(sv.keys_path()).csrf()
    out = {}

    def complete():
        body, ctype = multipart_body([("csrf", token), ("action", "share"),
                                      ("passphrase", sp.passphrase[2])],
                                     [("sharefile", "key1.share", sp.data[2])])
        out["r"] = bob.post(sv.keys_path(), body=body, content_type=ctype,
                            headers={"X-SplitVault-Fault": "share-assemble-slow"})

    t = threading.Thread(target=complete)
    t.start()
    wait_until(lambda: "SV02162" in sv.httpd.log_text(), 20, "the slow completion")
    cy = login(sv, "cy")
    r = sv.upload_key1(cy)
    assert r.status == 409 and "being loaded from shares" in r.text, r.text
    r = give_share(sv, cy, sp, 3)
    assert r.status == 409 and "being loaded from shares" in r.text, r.text
    t.join(30)
    assert out["r"].status == 303 and "done=loaded" in out["r"].header("Location")
    assert keys_state(sv, cy) == ({fp}, {})
    assert share_audit(sv)[-2][2].startswith("being loaded: key1 %s share 3" % fp)
    assert share_audit(sv)[-1] == ("bob", "loaded",
                                   "key1 %s loaded from shares 1 (ada), 2 (bob)" % fp)
