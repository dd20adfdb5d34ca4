"""splitvault-admin check against a real daemon and main database.

check compares the main database with the daemon's share store, read-only
on both sides, over the reconcile certificate (RECON_SCAN): fields whose
share is missing, retired or pending; shares in use that no field
references; shares referenced by a row of another record or field. Exit 0
when consistent, 1 with findings, 2 when it could not check. (The restore
drill, t/test_restore_drill.py, runs it after restoring backups.)
"""
import os
import pty
import subprocess
import uuid as uuidlib

import pytest

from svtest.data import GOOD
from svtest.fixtures_httpd import ADMIN


def check(sv, *args, cert=None, key=None):
    """`splitvault-admin check` with the reconcile certificate (or another)."""
    return sv.db.admin("check", "--daemon", "127.0.0.1:%d" % sv.daemon.port,
                       "--ca", sv.pki.ca_cert, "--cert", cert or sv.pki.reconcile_cert,
                       "--key", key or sv.pki.reconcile_key, *args, check=False)


def counts(p):
    """{kind: n} from check's summary line."""
    import re
    m = re.search(r"^missing (\d+), retired (\d+), pending (\d+), orphan (\d+), "
                  r"mismatched (\d+); recent \(in flight, not findings\) (\d+)$",
                  p.stdout, re.M)
    assert m, p.stdout + p.stderr
    return dict(zip(("missing", "retired", "pending", "orphan", "mismatched", "recent"),
                    map(int, m.groups())))


def share_of(sv, ref, field):
    return sv.db.query("SELECT f.share_id FROM fields f JOIN records r ON r.id = f.record_id "
                       "WHERE r.ref = %s AND f.name = %s", (ref, field))[0][0]


def test_consistent_then_each_kind_of_finding(sv):
    refs = [sv.ref_of(sv.submit(GOOD)) for _ in range(4)]
    p = check(sv)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "result: consistent" in p.stdout and counts(p) == dict.fromkeys(
        ("missing", "retired", "pending", "orphan", "mismatched", "recent"), 0)
    assert "12 fields in the main database; 12 shares on the daemon (12 active" in p.stdout
    # the daemon audits the listing (who, which ids)
    assert "event=recon-scan why=listed peer=127.0.0.1 after=0 listed=12" in \
        sv.daemon.wait_audit("event=recon-scan")

    # one of each: an orphan (a STORE whose record never reached the main
    # database), a pending referenced share, a retired referenced one, a
    # purged one, and a row that references another record's share
    with sv.daemon.client() as c:
        [orphan] = c.store(str(uuidlib.uuid4()), [("x", os.urandom(32), os.urandom(32))])
        [swapped] = c.store(str(uuidlib.uuid4()), [("ssn", os.urandom(32), os.urandom(32))])
    pending, retired, purged = (share_of(sv, refs[0], "name"), share_of(sv, refs[1], "name"),
                                share_of(sv, refs[2], "name"))
    sv.daemon.sql("UPDATE shares SET state = 2 WHERE id = %d" % pending)
    sv.daemon.sql("UPDATE shares SET retired = 1000, retired_why = 'release' "
                  "WHERE id IN (%d, %d)" % (retired, purged))
    sv.daemon.sql("DELETE FROM shares WHERE id = %d" % purged)
    sv.db.query("UPDATE fields SET share_id = %s WHERE name = 'ssn' AND record_id = "
                "(SELECT id FROM records WHERE ref = %s)", (swapped, refs[3]))
    before = sv.daemon.shares()

    p = check(sv, "--grace", "0")
    assert p.returncode == 1, p.stdout + p.stderr
    # the ssn share refs[3] referenced before is an orphan now, too
    assert counts(p) == dict(missing=1, retired=1, pending=1, orphan=2, mismatched=1,
                             recent=0), p.stdout
    out = p.stdout
    assert "missing    share %d" % purged in out
    assert "retired    share %d" % retired in out and "restore --record" in out
    assert "splitvaultctl restore --since 1000" in out
    assert "pending    share %d" % pending in out and "reconcile --apply activates" in out
    assert "orphan     share %d" % orphan in out and "reconcile --apply retires" in out
    assert "mismatched share %d" % swapped in out and "investigate" in out
    assert "result: findings" in out
    # read-only: nothing changed on the daemon
    assert sv.daemon.shares() == before

    # within the grace period (the daemon's reconcile.min_grace by default),
    # new orphans and pending shares may be in flight: not findings
    p = check(sv)
    assert counts(p)["orphan"] == 0 and counts(p)["pending"] == 0 and \
        counts(p)["recent"] == 3, p.stdout
    # --examples bounds the listing, --verbose lists all
    p = check(sv, "--grace", "0", "--examples", "0")
    assert "orphan     share" not in p.stdout and "--verbose lists all" in p.stdout
    p = check(sv, "--grace", "0", "--examples", "0", "--verbose")
    assert p.stdout.count("orphan     share") == 2


def test_pages_through_a_large_store(sv):
    """More shares than one RECON_SCAN page and main-database page."""
    sv.ref_of(sv.submit(GOOD))
    with sv.daemon.client() as c:
        for _ in range(40):
            c.store(str(uuidlib.uuid4()), [("f%02d" % i, os.urandom(32), os.urandom(32))
                                           for i in range(32)])
    sv.daemon.sql("UPDATE shares SET retired = 1000, retired_why = 'reconcile' "
                  "WHERE field <> 'name' AND field <> 'ssn' AND field <> 'notes' "
                  "AND id % 2 = 0")
    p = check(sv, "--grace", "0", "--examples", "3")
    assert p.returncode == 1
    c = counts(p)
    assert c["orphan"] == 640 and c["missing"] == 0, p.stdout
    assert p.stdout.count("orphan     share") == 3
    assert "1283 shares on the daemon (643 active, 0 pending, 640 retired)" in p.stdout
    # on a terminal, stderr shows the progress: done/total, a page at a time
    master, slave = pty.openpty()
    try:
        q = subprocess.run([str(ADMIN), "-d", sv.db.dsn, "check", "--daemon",
                            "127.0.0.1:%d" % sv.daemon.port, "--ca", str(sv.pki.ca_cert),
                            "--cert", str(sv.pki.reconcile_cert), "--key",
                            str(sv.pki.reconcile_key), "--grace", "0"],
                           stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120)
        os.close(slave)
        slave = None
        tty = b""
        while True:
            try:
                b = os.read(master, 4096)
            except OSError:  # EIO: the other end is closed
                break
            if not b:
                break
            tty += b
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert q.returncode == 1 and counts(q)["orphan"] == 640, q.stdout
    assert b"check: 1000/1283 shares" in tty and b"check: 1283/1283 shares" in tty, tty


def test_pages_through_a_large_main_database(sv):
    """More field rows than one main-database page (1000), with the shares
    of the last row of the first page and the first of the second missing
    on the daemon: the merge crosses the main side's page boundary."""
    sv.ref_of(sv.submit(GOOD))
    uuids, names, ids = [], [], []
    with sv.daemon.client() as c:
        for _ in range(36):
            u = str(uuidlib.uuid4())
            fs = ["f%02d" % i for i in range(32)]
            got = c.store(u, [(f, os.urandom(32), os.urandom(32)) for f in fs])
            uuids += [u] * len(fs)
            names += fs
            ids += got
    sv.db.query("INSERT INTO records (uuid, ref) SELECT u, 'Z' || lpad(n::text, 4, '0') || "
                "'-00000' FROM unnest(%s::uuid[]) WITH ORDINALITY AS x(u, n)",
                (sorted(set(uuids)),))
    sv.db.query("INSERT INTO fields (record_id, name, key2_pub, enc, ct, share_id, wrap_enc, "
                "wrap_ct, key1_fp) SELECT r.id, x.name, f0.key2_pub, f0.enc, f0.ct, x.sid, "
                "f0.wrap_enc, f0.wrap_ct, f0.key1_fp FROM unnest(%s::uuid[], %s::text[], "
                "%s::bigint[]) AS x(u, name, sid) JOIN records r ON r.uuid = x.u, "
                "(SELECT * FROM fields LIMIT 1) f0", (uuids, names, ids))
    assert sv.db.count("fields") == 3 + 36 * 32
    p = check(sv, "--grace", "0")
    assert p.returncode == 0 and "1155 fields in the main database; 1155 shares" in p.stdout, \
        p.stdout + p.stderr
    edge = [r[0] for r in sv.db.query("SELECT share_id FROM fields ORDER BY share_id "
                                      "OFFSET 999 LIMIT 2")]
    sv.daemon.sql("UPDATE shares SET retired = 1000, retired_why = 'release' "
                  "WHERE id IN (%d, %d)" % tuple(edge))
    sv.daemon.sql("DELETE FROM shares WHERE id IN (%d, %d)" % tuple(edge))
    p = check(sv, "--grace", "0")
    assert p.returncode == 1, p.stdout + p.stderr
    assert counts(p) == dict(missing=2, retired=0, pending=0, orphan=0, mismatched=0,
                             recent=0), p.stdout
    assert "missing    share %d" % edge[0] in p.stdout
    assert "missing    share %d" % edge[1] in p.stdout
    assert "1155 fields in the main database; 1153 shares" in p.stdout


@pytest.mark.log_allows(r"not allowed", r"TLS handshake refused: no-client-certificate")
def test_web_certificate_refused_and_errors_exit_2(sv):
    sv.ref_of(sv.submit(GOOD))
    # the web server's certificate (role frontend) may not list shares
    p = check(sv, cert=sv.pki.client_cert, key=sv.pki.client_key)
    assert p.returncode == 2 and "not allowed" in p.stderr, p.stdout + p.stderr
    assert "clients.reconcile" in p.stderr
    audit = sv.daemon.wait_audit("why=not-allowed")
    assert "why=not-allowed" in audit and "type=RECON_SCAN" in audit
    assert "event=recon-scan" not in audit
    # unreachable daemon, bad arguments, a foreign CA: 2, never 1
    p = sv.db.admin("check", "--daemon", "127.0.0.1:1", "--ca", sv.pki.ca_cert, "--cert",
                    sv.pki.reconcile_cert, "--key", sv.pki.reconcile_key, check=False)
    assert p.returncode == 2 and "cannot connect" in p.stderr, p.stderr
    p = sv.db.admin("check", check=False)
    assert p.returncode == 2 and "usage: check" in p.stderr
    p = check(sv, "--grace", "soon")
    assert p.returncode == 2 and "--grace takes seconds" in p.stderr
    p = sv.db.admin("check", "--daemon", "127.0.0.1:%d" % sv.daemon.port, "--ca",
                    sv.pki.other_ca_cert, "--cert", sv.pki.reconcile_cert, "--key",
                    sv.pki.reconcile_key, check=False)
    assert p.returncode == 2 and "TLS handshake with the daemon failed" in p.stderr


def test_consistent_while_decrypts_rotate(sv_factory):
    """Rotations under way while check runs (new pending shares, shares
    retired between its two reads) are not findings, with shares older
    than the grace period."""
    import threading

    sv = sv_factory(key1_passphrase="check passphrase")
    assert sv.upload_key1().status == 303
    pat = sv.login("pat")
    refs = [sv.ref_of(sv.submit(GOOD)) for _ in range(4)]
    # old shares: older than the grace period, so that a share a rotation
    # replaces between check's two reads would show as an orphan; the
    # rotations' new shares are within the grace period (in flight)
    sv.daemon.sql("UPDATE shares SET created = created - 86400")
    stop, errors, done = threading.Event(), [], [0]

    def rotate():
        try:
            while not stop.is_set():
                for ref in refs:
                    r = sv.decrypt(pat, ref)
                    assert r.status == 200, r.text
                    done[0] += 1
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=rotate, daemon=True)
    t.start()
    try:
        for _ in range(8):
            p = check(sv)
            assert p.returncode == 0 and "result: consistent" in p.stdout, p.stdout
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    assert done[0] >= 4
    p = check(sv, "--grace", "0")
    assert p.returncode == 0, p.stdout
