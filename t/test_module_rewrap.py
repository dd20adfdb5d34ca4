"""splitvault-admin key1-rewrap and key1-retire: key1's end of life.

Real httpd, PostgreSQL and splitvaultd. Records are submitted while an old
key1 is active; a new key1 is registered and activated; key1-rewrap moves
every field's wrapped key2a to the new key1 without touching the datum
envelopes, beside running intake, updates and decrypts, and resumes after
being killed. Afterwards every value decrypts through the module with only
the new key1 loaded, and the old key1 can be retired.
"""
import os
import re
import signal
import subprocess
import threading

import pytest

import hpke_ref
from svtest.core import wait_until
from svtest.data import GOOD
from svtest.fixtures_httpd import ADMIN, TEST_HOOKS, Key1

PASS = "correct horse battery staple 42"
PASS2 = "another horse battery staple 43"


def active_fp(sv):
    return sv.db.query("SELECT fingerprint FROM key1 WHERE active")[0][0]


def rewrap(sv, key, *args, passphrase=PASS, env=None, popen=False, to=None):
    """key1-rewrap with the passphrase on stdin (--passphrase-fd 0), to the
    active key1 unless to= names another fingerprint."""
    argv = [str(ADMIN), "-d", sv.db.dsn, "key1-rewrap", str(key.pem), "--by", "tests",
            "--to", to or active_fp(sv)]
    if passphrase is not None:
        argv += ["--passphrase-fd", "0"]
    argv += [str(a) for a in args]
    e = dict(os.environ, **(env or {}))
    if popen:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=e)
        p.stdin.write((passphrase or "") + "\n")
        p.stdin.close()
        return p
    return subprocess.run(argv, input=(passphrase or "") + "\n", capture_output=True,
                          text=True, env=e, timeout=120)


def rows(sv):
    return sv.db.query("SELECT r.uuid::text, f.name, f.share_id, f.key2_pub, f.enc, f.ct, "
                       "f.wrap_enc, f.wrap_ct, f.key1_fp, f.version FROM records r "
                       "JOIN fields f ON f.record_id = r.id ORDER BY r.id, f.name")


def open_row(sv, row, keys):
    """Open one stored row with the key1 it names (keys: fp -> Key1)."""
    uuid, name, share, pub, enc, ct, wenc, wct, fp, _ = row
    k = keys[fp]
    sk1, _ = hpke_ref.load_key1_private_pem(k.pem.read_bytes(), k.passphrase)
    key2a = hpke_ref.unwrap_key2a(sk1, uuid, name, share, bytes(wenc), bytes(wct))
    sk2 = hpke_ref.combine(key2a, sv.daemon.key2b(share))
    assert hpke_ref.public_key(sk2) == bytes(pub)
    return hpke_ref.open_datum(sk2, uuid, name, bytes(enc), bytes(ct))


def opens_with(key, row):
    uuid, name, share, _, _, _, wenc, wct, _, _ = row
    sk1, _ = hpke_ref.load_key1_private_pem(key.pem.read_bytes(), key.passphrase)
    try:
        hpke_ref.unwrap_key2a(sk1, uuid, name, share, bytes(wenc), bytes(wct))
        return True
    except Exception:
        return False


def audit(sv, action):
    return sv.db.query("SELECT actor, outcome, coalesce(detail, '') FROM audit "
                       "WHERE action = %s ORDER BY id", (action,))


def fields_per_key1(sv, client):
    """The key location's count of fields wrapped to each registered key1."""
    page = client.get(sv.keys_path())
    assert page.status == 200
    return {fp: int(n) for fp, n in re.findall(
        r'<td class="mono">([0-9a-f]{64})</td>(?:<td>[^<]*</td>){3}'
        r'<td class="fields">(\d+)</td>', page.text)}


def new_key1(sv, workdir, activate=True):
    k2 = Key1(workdir / "k2", passphrase=PASS2, name="key1new")
    sv.db.admin("key1-register", k2.pub, *(["--activate"] if activate else []),
                "--by", "tests")
    # new children: their cache of the active key is empty
    sv.httpd.graceful_ctl()
    return k2


def submit(sv, n):
    refs = []
    for _ in range(n):
        r = sv.submit(GOOD)
        assert r.status == 200, r.text
        refs.append(sv.ref_of(r))
    return refs


def test_rewrap_moves_every_field_and_retire(sv_factory, workdir):
    sv = sv_factory(key1_passphrase=PASS)
    refs = submit(sv, 4)
    k2 = new_key1(sv, workdir)
    refs += submit(sv, 1)  # already wrapped to k2
    before = rows(sv)
    keys = {sv.key1.fingerprint: sv.key1, k2.fingerprint: k2}
    assert {r[8] for r in before} == set(keys)
    # retire refused while fields use the old key, and for the active one
    p = sv.db.admin("key1-retire", sv.key1.fingerprint, "--by", "tests", check=False)
    assert p.returncode != 0 and "12 fields" in p.stderr, p.stderr
    p = sv.db.admin("key1-retire", k2.fingerprint, check=False)
    assert p.returncode != 0 and "active" in p.stderr
    # the key location shows how many fields each key1 still opens
    ada = sv.login("ada")
    assert fields_per_key1(sv, ada) == {sv.key1.fingerprint: 12, k2.fingerprint: 3}

    p = rewrap(sv, sv.key1, "--batch", "5")
    assert p.returncode == 0, p.stderr
    assert "12 fields rewrapped" in p.stdout and "none left" in p.stdout
    assert p.stderr == ""  # not a tty: no progress, no warning
    after = rows(sv)
    assert len(after) == len(before) == 15
    for b, a in zip(before, after):
        # the datum envelope and share are untouched; only the wrap moved
        assert a[:6] == b[:6]
        assert a[8] == k2.fingerprint
        assert opens_with(k2, a) and not opens_with(sv.key1, a)
        assert open_row(sv, a, keys).decode() == GOOD[a[1]]
        if b[8] == sv.key1.fingerprint:
            assert a[9] == b[9] + 1 and bytes(a[6]) != bytes(b[6])
        else:
            assert a[6:] == b[6:]
    assert audit(sv, "key1-rewrap") == [
        ("tests", "ok", "from %s to %s fields=12 changed-meanwhile=0"
         % (sv.key1.fingerprint, k2.fingerprint))]
    # a second run finds nothing to do
    p = rewrap(sv, sv.key1)
    assert p.returncode == 0 and "0 fields rewrapped" in p.stdout, p.stderr

    assert fields_per_key1(sv, ada) == {sv.key1.fingerprint: 0, k2.fingerprint: 15}

    # through the module, with only the new key1 loaded
    assert sv.upload_key1(ada, pem=k2.pem.read_bytes(), passphrase=PASS2).status == 303
    pat = sv.login("pat")
    for ref in refs:
        r = sv.decrypt(pat, ref)
        assert r.status == 200, r.text
        assert sv.decrypted_values(r) == GOOD

    p = sv.db.admin("key1-retire", sv.key1.fingerprint, "--by", "tests")
    assert "retired" in p.stdout
    fps = {fp for (fp,) in sv.db.query("SELECT fingerprint FROM key1")}
    assert fps == {k2.fingerprint}
    assert [o for _, o, _ in audit(sv, "key1-retire")] == ["refused", "refused", "ok"]
    assert sv.db.admin("key1-retire", sv.key1.fingerprint, check=False).returncode != 0


def test_rewrap_from_a_key_file_without_passphrase(sv_factory, workdir):
    """openssl genpkey without -aes256: nothing is asked, nothing read."""
    sv = sv_factory()
    assert sv.key1.passphrase is None
    submit(sv, 1)
    k2 = new_key1(sv, workdir)
    p = rewrap(sv, sv.key1, passphrase=None)
    assert p.returncode == 0, p.stderr
    assert "3 fields rewrapped" in p.stdout
    keys = {k2.fingerprint: k2}
    for a in rows(sv):
        assert open_row(sv, a, keys).decode() == GOOD[a[1]]


def test_rewrap_refusals_change_nothing(sv_factory, workdir):
    sv = sv_factory(key1_passphrase=PASS)
    submit(sv, 2)
    before = rows(sv)
    # old == active
    p = rewrap(sv, sv.key1)
    assert p.returncode != 0 and "is the active key1" in p.stderr
    k2 = new_key1(sv, workdir)
    # wrong passphrase
    p = rewrap(sv, sv.key1, passphrase="not the passphrase at all")
    assert p.returncode != 0 and "passphrase" in p.stderr
    # no passphrase given and no terminal
    p = rewrap(sv, sv.key1, passphrase=None)
    assert p.returncode != 0 and "passphrase" in p.stderr
    # a key file that is not registered
    k3 = Key1(workdir / "k3", passphrase=PASS, name="key1other")
    p = rewrap(sv, k3)
    assert p.returncode != 0 and "not a registered key1" in p.stderr
    # the new (active) key as the old one
    p = rewrap(sv, k2, passphrase=PASS2)
    assert p.returncode != 0 and "is the active key1" in p.stderr
    # the active key is not the one the admin expects (say, an attacker's)
    p = rewrap(sv, sv.key1, to=k3.fingerprint)
    assert p.returncode != 0 and "not %s (--to)" % k3.fingerprint in p.stderr
    assert k2.fingerprint in p.stderr
    # --to is required and must be a fingerprint
    p = sv.db.admin("key1-rewrap", sv.key1.pem, "--passphrase-fd", "0", input=PASS + "\n",
                    check=False)
    assert p.returncode != 0 and "--to" in p.stderr
    assert rows(sv) == before
    outcomes = audit(sv, "key1-rewrap")
    assert [o for _, o, _ in outcomes] == ["refused"] * 6
    for _, _, detail in outcomes:
        assert PASS not in detail and "PRIVATE" not in detail


@pytest.mark.skipif(not TEST_HOOKS, reason="needs --enable-test-hooks")
def test_rewrap_resumes_after_sigkill(sv_factory, workdir):
    sv = sv_factory(key1_passphrase=PASS)
    submit(sv, 10)
    k2 = new_key1(sv, workdir)
    keys = {sv.key1.fingerprint: sv.key1, k2.fingerprint: k2}
    before = rows(sv)

    def moved():
        return sv.db.query("SELECT count(*) FROM fields WHERE key1_fp = %s",
                           (k2.fingerprint,))[0][0]

    p = rewrap(sv, sv.key1, "--batch", "3", env={"SVT_TEST_REWRAP_DELAY_MS": "300"},
               popen=True)
    try:
        wait_until(lambda: moved() >= 6, 60, "two batches rewrapped")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    mid = rows(sv)
    n = moved()
    assert 6 <= n < 30
    for b, m in zip(before, mid):
        assert m[:6] == b[:6]
        assert open_row(sv, m, keys).decode() == GOOD[m[1]]  # old or new: valid
    q = rewrap(sv, sv.key1, "--batch", "3")
    assert q.returncode == 0, q.stderr
    assert "%d fields rewrapped" % (30 - n) in q.stdout
    for a in rows(sv):
        assert a[8] == k2.fingerprint and open_row(sv, a, keys).decode() == GOOD[a[1]]


@pytest.mark.skipif(not TEST_HOOKS, reason="needs --enable-test-hooks")
def test_rewrap_leaves_a_changed_row_for_a_later_batch(sv_factory, workdir):
    """A row whose version is no longer the one read is not written; the
    next batch reads it again and moves it."""
    sv = sv_factory(key1_passphrase=PASS)
    submit(sv, 2)
    k2 = new_key1(sv, workdir)
    before = rows(sv)
    p = rewrap(sv, sv.key1, "--batch", "4", env={"SVT_TEST_REWRAP_STALE": "1"})
    assert p.returncode == 0, p.stderr
    assert "6 fields rewrapped" in p.stdout and "(1 changed meanwhile" in p.stdout
    keys = {k2.fingerprint: k2}
    for b, a in zip(before, rows(sv)):
        assert a[8] == k2.fingerprint and a[9] == b[9] + 1
        assert open_row(sv, a, keys).decode() == GOOD[a[1]]
    assert audit(sv, "key1-rewrap")[0][2].endswith("fields=6 changed-meanwhile=1")


def test_rewrap_in_jobs_stops_at_a_forged_row(sv_factory, workdir):
    """Jobs share the fields by record id. A wrapped key2a that a database
    writer forged stops the run (every job) with an error naming the row;
    every committed row stays valid and the forged one untouched. Repaired,
    a second run in several jobs moves the rest."""
    sv = sv_factory(key1_passphrase=PASS)
    submit(sv, 6)
    k2 = new_key1(sv, workdir)
    keys = {sv.key1.fingerprint: sv.key1, k2.fingerprint: k2}
    before = rows(sv)
    forged = before[len(before) // 2]
    uuid, name = forged[0], forged[1]
    sv.db.query("UPDATE fields SET wrap_ct = %s FROM records r WHERE r.id = fields.record_id "
                "AND r.uuid = %s AND fields.name = %s", (os.urandom(48), uuid, name))
    for bad in ("0", "65", "x"):
        p = rewrap(sv, sv.key1, "--jobs", bad)
        assert p.returncode != 0 and "--jobs" in p.stderr
    p = rewrap(sv, sv.key1, "--jobs", "3", "--batch", "2")
    assert p.returncode != 0
    assert "record %s field %s" % (uuid, name) in p.stderr
    assert "does not open with the old key1" in p.stderr
    assert "incomplete: run it again" in p.stdout
    mid = rows(sv)
    for b, m in zip(before, mid):
        assert m[:6] == b[:6]
        if (m[0], m[1]) == (uuid, name):
            assert m[8] == sv.key1.fingerprint and m[9] == b[9]
        else:
            assert open_row(sv, m, keys).decode() == GOOD[m[1]]
    assert [o for _, o, _ in audit(sv, "key1-rewrap")] == ["failed"]
    # the row repaired, the run finishes
    sv.db.query("UPDATE fields SET wrap_ct = %s FROM records r WHERE r.id = fields.record_id "
                "AND r.uuid = %s AND fields.name = %s", (bytes(forged[7]), uuid, name))
    p = rewrap(sv, sv.key1, "--jobs", "3", "--batch", "2")
    assert p.returncode == 0, p.stderr
    # at most 3 jobs: fewer when fewer records are left than jobs asked
    # (how many the failed run moved depends on how its jobs interleaved)
    assert re.search(r" in [123] jobs ", p.stdout) and "none left" in p.stdout, p.stdout
    for b, a in zip(before, rows(sv)):
        assert a[:6] == b[:6] and a[8] == k2.fingerprint
        assert open_row(sv, a, keys).decode() == GOOD[a[1]]


def test_rewrap_on_a_terminal_asks_and_shows_progress(sv_factory, workdir):
    """On a terminal: the passphrase is asked once without echo, progress
    (done/total, rate, time left) goes to the terminal."""
    import pty
    import select
    sv = sv_factory(key1_passphrase=PASS)
    submit(sv, 2)
    k2 = new_key1(sv, workdir)
    master, slave = pty.openpty()
    p = subprocess.Popen([str(ADMIN), "-d", sv.db.dsn, "key1-rewrap", str(sv.key1.pem),
                          "--to", k2.fingerprint, "--batch", "2", "--by", "tests"], stdin=slave, stderr=slave,
                         stdout=subprocess.PIPE, text=True)
    os.close(slave)
    seen = b""

    def read_some():
        nonlocal seen
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                seen += os.read(master, 4096)
            except OSError:  # the child closed the terminal
                return True
        return False

    try:
        wait_until(lambda: read_some() or b"Passphrase" in seen, 30, "the passphrase prompt")
        os.write(master, (PASS + "\n").encode())
        wait_until(lambda: read_some() or p.poll() is not None, 60, "the rewrap's end")
        while not read_some() and select.select([master], [], [], 0)[0]:
            pass
        out = p.communicate(timeout=30)[0]
    finally:
        os.close(master)
    assert p.returncode == 0, seen
    assert "6 fields rewrapped" in out
    assert PASS.encode() not in seen  # not echoed
    assert b"6/6 fields" in seen and b"/s" in seen
    assert sv.db.query("SELECT count(*) FROM fields WHERE key1_fp = %s",
                       (k2.fingerprint,))[0][0] == 6


def update(sv, client, ref, field, value):
    page = client.get(sv.path("/staff/record/" + ref))
    return client.post(sv.path("/staff/record/%s/update" % ref),
                       {"csrf": page.csrf(), "field": field, "value": value})


def test_rewrap_beside_intake_updates_and_decrypts(sv_factory, workdir):
    sv = sv_factory(key1_passphrase=PASS, directives={"SplitVaultIntakeThrottle": "Off"})
    refs = submit(sv, 20)
    k2 = new_key1(sv, workdir)
    ada = sv.login("ada")
    assert sv.upload_key1(ada).status == 303
    assert sv.upload_key1(ada, pem=k2.pem.read_bytes(), passphrase=PASS2).status == 303
    expect = {ref: dict(GOOD) for ref in refs}
    lock = threading.Lock()
    stop = threading.Event()
    errors = []
    done = {"updates": 0, "decrypts": 0}

    def intake():
        while not stop.is_set():
            r = sv.submit(GOOD)
            if r.status != 200:
                errors.append("intake %d" % r.status)
                return
            with lock:
                expect[sv.ref_of(r)] = dict(GOOD)

    def updates():
        uma, i = sv.login("uma"), 0
        while not stop.is_set():
            ref = refs[i % len(refs)]
            value = "updated %d" % i
            r = update(sv, uma, ref, "notes", value)
            if r.status != 303:
                errors.append("update %d" % r.status)
                return
            with lock:
                expect[ref]["notes"] = value
            done["updates"] += 1
            i += 1

    def decrypts():
        pat, i = sv.login("pat"), 0
        while not stop.is_set():
            r = sv.decrypt(pat, refs[(i * 7) % len(refs)])
            if r.status not in (200, 409):  # 409: changed meanwhile
                errors.append("decrypt %d" % r.status)
                return
            done["decrypts"] += 1
            i += 1

    threads = [threading.Thread(target=f) for f in (intake, updates, decrypts)]
    for t in threads:
        t.start()
    # each batch waits a little (test hook), so that the run overlaps the others
    env = {"SVT_TEST_REWRAP_DELAY_MS": "50"} if TEST_HOOKS else None
    try:
        wait_until(lambda: len(expect) > 21 and done["decrypts"] and done["updates"], 60,
                   "intake, updates and decrypts running")
        p = rewrap(sv, sv.key1, "--batch", "2", env=env)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert p.returncode == 0, p.stderr
    assert not errors, errors
    assert "fields rewrapped" in p.stdout
    assert sv.db.query("SELECT count(*) FROM fields WHERE key1_fp = %s",
                       (sv.key1.fingerprint,))[0][0] == 0
    keys = {k2.fingerprint: k2}
    byref = dict(sv.db.query("SELECT uuid::text, ref FROM records"))
    for row in rows(sv):
        assert open_row(sv, row, keys).decode() == expect[byref[row[0]]][row[1]]
    assert sv.forget_key1(sv.key1.fingerprint, client=ada).status == 303
    pat = sv.login("pat")
    for ref in refs[:5]:
        r = sv.decrypt(pat, ref)
        assert r.status == 200, r.text
        assert sv.decrypted_values(r) == expect[ref]
    sv.db.admin("key1-retire", sv.key1.fingerprint, "--by", "tests")
