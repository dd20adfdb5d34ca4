"""The restore drill of docs/operations.md ("Backups" and "Restore drill"),
step by step, with a real httpd, PostgreSQL and splitvaultd.

a. Back up both stores while intake runs: the main database first
   (pg_dump), then the share store (sqlite3's online backup, or pg_dump of
   a pgsql store), noting which submissions were acknowledged before the
   main database's backup began.
b. Destroy both: stop httpd and the daemon, drop the main database, delete
   the share store.
c. Restore both, start everything, run `splitvault-admin check`: the only
   findings are orphans, the shares of submissions acknowledged after the
   main database's backup began (their records are not in it); reconcile
   retires them; check is then consistent.
d. Every record acknowledged before the backup began decrypts through the
   module with its values intact; the rotation retired the old shares and
   check is still consistent.
e. One-sided restores: (i) a share store older than the main database:
   check reports the missing shares of the records made (or decrypted)
   since; the others still decrypt; the share id sequence is raised before
   intake resumes. (ii) a main database older than the share store: the
   records decrypted since reference shares the daemon retired; check
   reports them, `splitvaultctl restore --since T` brings them back,
   reconcile retires the newer shares, and every record decrypts.
"""
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from svtest.core import PG_BIN, wait_until
from svtest.data import GOOD

PASS = "restore drill passphrase"
FINDING = re.compile(r"^  (missing|retired|pending|orphan|mismatched|recent)\s+share (\d+) "
                     r"record (\S+) field (\S+): (.*)$", re.M)


# -- the operator's commands -------------------------------------------------------

def pg(sv, tool, *args):
    """A PostgreSQL client tool against the test cluster, as its superuser."""
    return subprocess.run([str(PG_BIN / tool), "-h", sv.pg.host, "-p", str(sv.pg.port),
                           "-U", "postgres"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=120, check=True)


def backup_main(sv, path):
    pg(sv, "pg_dump", "-Fc", "-f", path, sv.db.name)


def restore_main(sv, path):
    """Drop the main database and bring it back from its dump, with its
    owner, grants and settings (pg_restore --create)."""
    sv.db.drop()
    pg(sv, "pg_restore", "--create", "-d", "postgres", path)


def backup_store(sv, path):
    d = sv.daemon
    if d.driver == "sqlite3":
        # sqlite3's online backup: a consistent copy while the daemon writes
        subprocess.run(["sqlite3", str(d.db_path), ".backup '%s'" % path], check=True,
                       capture_output=True, text=True, timeout=120)
        ok = subprocess.run(["sqlite3", str(path), "PRAGMA integrity_check"], check=True,
                            capture_output=True, text=True, timeout=120)
        assert ok.stdout.strip() == "ok", ok.stdout
    else:
        pg(sv, "pg_dump", "-Fc", "-f", path, d.db_name)


def restore_store(sv, path):
    """With the daemon stopped: replace the store by the backup."""
    d = sv.daemon
    assert not d.alive()
    if d.driver == "sqlite3":
        for suffix in ("", "-wal", "-shm"):
            f = d.db_path.parent / (d.db_path.name + suffix)
            if f.exists():
                f.unlink()
        shutil.copyfile(path, d.db_path)
        shutil.chown(d.db_path, d.user, None)
        d.db_path.chmod(0o600)
    else:
        sv.pg.drop_db(d.db_name)
        pg(sv, "pg_restore", "--create", "-d", "postgres", path)


def raise_share_ids(sv, above):
    """After restoring an older store, with the daemon started and httpd
    still stopped: new shares get ids above every share id the main
    database references (splitvaultctl raise-ids, either driver)."""
    d = sv.daemon
    assert d.alive() and sv.httpd.proc is None
    p = d.ctl("raise-ids", str(above), check=True)
    assert "ok" in p.stdout, p.stdout


def check(sv, *args):
    p = sv.db.admin("check", "--daemon", "127.0.0.1:%d" % sv.daemon.port, "--ca",
                    sv.pki.ca_cert, "--cert", sv.pki.reconcile_cert, "--key",
                    sv.pki.reconcile_key, "--verbose", *args, check=False)
    assert p.returncode in (0, 1), p.stdout + p.stderr
    return p


def findings(p):
    """{kind: {(share id, record uuid, field)}} of a check --verbose."""
    out = {}
    for kind, share, uuid, field, _ in FINDING.findall(p.stdout):
        out.setdefault(kind, set()).add((int(share), uuid, field))
    return out


def consistent(sv):
    p = check(sv, "--grace", "0")
    assert p.returncode == 0 and "result: consistent" in p.stdout, p.stdout
    return p


# -- the service ----------------------------------------------------------------

def values(i):
    return dict(GOOD, name="Drill record %d" % i, notes="notes of record %d" % i)


def submit(sv, i):
    r = sv.submit(values(i))
    assert r.status == 200, r.text
    return sv.ref_of(r)


def uuids(sv):
    return dict(sv.db.query("SELECT ref, uuid::text FROM records"))


def shares_of(sv, ref):
    return {(s, u, f) for s, u, f in sv.db.query(
        "SELECT f.share_id, r.uuid::text, f.name FROM fields f JOIN records r "
        "ON r.id = f.record_id WHERE r.ref = %s", (ref,))}


def decrypts(sv, pat, ref, i):
    r = sv.decrypt(pat, ref)
    assert r.status == 200, r.text
    assert sv.decrypted_values(r) == values(i)


def start_service(sv):
    """Daemon, then httpd; key1 loaded again (a restart forgets it)."""
    if not sv.daemon.alive():
        sv.daemon.start()
    if sv.httpd.proc is None:
        sv.httpd.start()
    r = sv.upload_key1()
    assert r.status == 303, r.text
    return sv.login("pat")


class Intake(threading.Thread):
    """Submissions one after another until stopped; acked: [(i, ref)] in
    the order they were acknowledged."""

    def __init__(self, sv):
        super().__init__(daemon=True)
        self.sv, self.acked, self.stop, self.error = sv, [], threading.Event(), None

    def run(self):
        i = 0
        try:
            while not self.stop.is_set():
                ref = submit(self.sv, i)
                self.acked.append((i, ref))
                i += 1
        except BaseException as e:  # reported by the test
            self.error = e


# -- a to d ---------------------------------------------------------------------------

@pytest.mark.log_allows(r"control: share ids raised: new shares get ids above \d+")
@pytest.mark.parametrize("driver", ["sqlite3", "pgsql"])
def test_restore_drill(sv_factory, workdir, driver):
    # intake at full speed from one address: past the default throttle
    sv = sv_factory(key1_passphrase=PASS, daemon_options=dict(driver=driver),
                    directives={"SplitVaultIntakeThrottle": "Off"})
    main_dump, store_dump = workdir / "main.dump", workdir / "shares.backup"

    # a. both backups while intake runs: the main database first
    intake = Intake(sv)
    intake.start()
    wait_until(lambda: len(intake.acked) >= 3 or intake.error, 30, "no intake")
    before = list(intake.acked)          # acknowledged before the backup began
    backup_main(sv, main_dump)
    backup_store(sv, store_dump)
    n = len(intake.acked)
    wait_until(lambda: len(intake.acked) >= n + 2 or intake.error, 30, "intake stopped")
    # check while intake goes on: what is in flight is recent, nothing missing
    for _ in range(3):
        p = check(sv)
        assert p.returncode == 0 and "result: consistent" in p.stdout, p.stdout
    intake.stop.set()
    intake.join(60)
    assert intake.error is None, intake.error
    acked = list(intake.acked)
    known = uuids(sv)                    # ref -> uuid, of every acknowledged record
    assert {ref for _, ref in acked} <= set(known)

    # b. destroy both
    sv.httpd.stop()
    sv.daemon.stop()
    restore_needed = sv.db.name
    sv.db.drop()
    if driver == "sqlite3":
        for f in sv.daemon.state.glob("shares.db*"):
            f.unlink()
    else:
        sv.pg.drop_db(sv.daemon.db_name)

    # c. restore both, start, check
    pg(sv, "pg_restore", "--create", "-d", "postgres", main_dump)
    assert sv.db.name == restore_needed
    restore_store(sv, store_dump)
    sv.daemon.start()
    # the drill's raise-ids step: a no-op here (the store's backup is the newer)
    raise_share_ids(sv, sv.db.query("SELECT max(share_id) FROM fields")[0][0] + 1000)
    pat = start_service(sv)
    restored = uuids(sv)
    # everything acknowledged before the backup began is there
    assert {ref for _, ref in before} <= set(restored)
    after = {known[ref] for _, ref in acked if ref not in restored}  # lost with the main db
    p = check(sv)  # as the docs say: shares younger than the grace period are in flight
    assert p.returncode == 0 and "result: consistent" in p.stdout, p.stdout
    p = check(sv, "--grace", "0")
    found = findings(p)
    assert set(found) <= {"orphan"}, p.stdout
    # the only findings: shares of records acknowledged after the main
    # database's backup began, which it does not hold (those acknowledged
    # after the store's backup too have no shares left at all)
    orphans = found.get("orphan", set())
    assert {u for _, u, _ in orphans} <= after, p.stdout
    assert p.returncode == (1 if orphans else 0)
    sv.daemon.age_shares(1000)  # past the daemon's reconcile.min_grace
    r = sv.reconcile("--grace", "0", "--apply")
    assert "%d not referenced (%d retired)" % (len(orphans), len(orphans)) in r.stdout
    consistent(sv)

    # d. every record acknowledged before the backup began decrypts intact
    for i, ref in acked:
        if ref in restored:
            decrypts(sv, pat, ref, i)
    # the rotations retired the old shares: nothing left over
    p = consistent(sv)
    assert "%d fields in the main database" % (3 * len(restored)) in p.stdout


# -- e(i): the share store older than the main database ---------------------------------

@pytest.mark.log_allows(r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(\S+, share \d+\):",
                        r"SV02109", r"control: share ids raised: new shares get ids above \d+")
def test_store_older_than_main_database(sv_factory, workdir):
    sv = sv_factory(key1_passphrase=PASS)
    pat = start_service(sv)
    old = [submit(sv, i) for i in range(3)]
    store_dump = workdir / "shares-old.backup"
    backup_store(sv, store_dump)
    new = [submit(sv, i) for i in range(3, 5)]
    decrypted = old[0]
    before_decrypt = shares_of(sv, decrypted)
    decrypts(sv, pat, decrypted, 0)
    lost = set().union(*(shares_of(sv, ref) for ref in new + [decrypted]))

    sv.httpd.stop()
    sv.daemon.stop()
    restore_store(sv, store_dump)
    # before intake or decrypts resume: the store's share ids past every id
    # the main database references, or new shares (intake, and the new
    # shares of a decrypt's rotation) would take ids rows already hold
    top = sv.db.query("SELECT max(share_id) FROM fields")[0][0]
    sv.daemon.start()
    raise_share_ids(sv, top)
    pat = start_service(sv)
    p = check(sv, "--grace", "0")
    assert p.returncode == 1
    found = findings(p)
    # the shares made since the store's backup: lost with it
    assert found["missing"] == lost, p.stdout
    # the shares the decrypt replaced, back from the backup: unreferenced
    assert found["orphan"] == before_decrypt, p.stdout
    assert set(found) == {"missing", "orphan"}, p.stdout
    assert top == max(s for s, _, _ in lost)
    assert "the main database references share ids up to %d" % top in p.stdout

    # records made before the older backup and not decrypted since decrypt
    for i, ref in enumerate(old[1:], 1):
        decrypts(sv, pat, ref, i)
    # the others cannot: their key2b existed only in the lost store
    for ref in new + [decrypted]:
        r = sv.decrypt(pat, ref)
        assert r.status == 422 and "Decryption refused" in r.text, r.text
    # intake goes on, with new ids
    ref = submit(sv, 9)
    assert min(s for s, _, _ in shares_of(sv, ref)) > top
    p = check(sv, "--grace", "0")
    found = findings(p)
    assert found["missing"] == lost and set(found) == {"missing", "orphan"}, p.stdout


# -- e(ii): the main database older than the share store ----------------------------------

@pytest.mark.log_allows(r"control: \d+ retired share\(s\) restored")
def test_main_database_older_than_store(sv_factory, workdir):
    sv = sv_factory(key1_passphrase=PASS)
    pat = start_service(sv)
    old = [submit(sv, i) for i in range(3)]
    main_dump = workdir / "main-old.dump"
    backup_main(sv, main_dump)
    since = int(time.time())
    for i in (0, 1):
        decrypts(sv, pat, old[i], i)       # rotations: the old shares retired
    newer = submit(sv, 3)                   # a record the old backup lacks
    newer_shares = shares_of(sv, newer)
    rotated = set().union(*(shares_of(sv, ref) for ref in old[:2]))

    sv.httpd.stop()
    restore_main(sv, main_dump)
    pat = start_service(sv)
    p = check(sv, "--grace", "0")
    assert p.returncode == 1
    found = findings(p)
    referenced_old = set().union(*(shares_of(sv, ref) for ref in old[:2]))
    assert found["retired"] == referenced_old, p.stdout
    assert found["orphan"] == rotated | newer_shares, p.stdout
    assert set(found) == {"retired", "orphan"}, p.stdout
    first = min(sh["retired"] for sh in sv.daemon.retired().values())
    assert "splitvaultctl restore --since %d" % first in p.stdout and first >= since

    r = sv.daemon.ctl("restore", "--since", str(since), check=True)
    assert r.returncode == 0, r.stdout + r.stderr
    p = check(sv, "--grace", "0")
    assert set(findings(p)) == {"orphan"}, p.stdout
    sv.daemon.age_shares(1000)
    r = sv.reconcile("--grace", "0", "--apply")
    assert "9 not referenced (9 retired)" in r.stdout, r.stdout
    consistent(sv)
    # every record of the restored main database decrypts
    for i, ref in enumerate(old):
        decrypts(sv, pat, ref, i)
    consistent(sv)


# -- f: both backups older than retention.period --------------------------------------

@pytest.mark.parametrize("driver", ["sqlite3", "pgsql"])
@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"the audit log's last lock-down was never unlocked",
    r"control: \d+ retired share\(s\) restored",
    r"control: share ids raised: new shares get ids above \d+",
    r"unlocked by control-uid-\d+: decrypts allowed again",
    r"LOCKED DOWN",
)
def test_backups_older_than_retention(sv_factory, workdir, driver):
    """A record decrypted between the main database's backup and the
    store's has its old share retired in the store's backup; restored
    after retention.period, the daemon would purge that share within a
    second of starting. Locked down before it stops (the lock-down outlives
    the restored store through the audit log), it purges nothing until
    `restore --since` has brought the share back."""
    sv = sv_factory(key1_passphrase=PASS, daemon_options=dict(driver=driver))
    pat = start_service(sv)
    refs = [submit(sv, i) for i in range(2)]
    main_dump, store_dump = workdir / "main.dump", workdir / "shares.backup"
    since = int(time.time())            # when the main database's backup began
    backup_main(sv, main_dump)
    old_shares = {s for s, _, _ in shares_of(sv, refs[0])}
    decrypts(sv, pat, refs[0], 0)       # its old shares retired
    backup_store(sv, store_dump)
    for sid in old_shares:
        assert sv.daemon.shares()[sid]["retired"]

    # the procedure: lock down, stop httpd and the daemon, restore both
    assert sv.daemon.ctl("lockdown").returncode == 0
    sv.httpd.stop()
    sv.daemon.stop()
    restore_main(sv, main_dump)
    restore_store(sv, store_dump)
    # time passes: the backups are older than retention.period (7 days)
    age = 8 * 86400
    sv.daemon.age_shares(age)
    since -= age
    sv.daemon.start()
    st = sv.daemon.ctl_status()
    assert st["locked"] == "1", st
    sv.daemon.wait_rounds(3)             # housekeeping ran: nothing purged
    assert old_shares <= set(sv.daemon.shares())
    raise_share_ids(sv, sv.db.query("SELECT max(share_id) FROM fields")[0][0] + 1000)
    r = sv.daemon.ctl("restore", "--since", str(since), check=True)
    assert "restored=%d" % len(old_shares) in r.stdout, r.stdout
    p = check(sv, "--grace", "0")
    assert set(findings(p)) <= {"orphan"}, p.stdout
    assert sv.daemon.ctl("unlock").returncode == 0
    sv.daemon.wait_rounds(3)
    pat = start_service(sv)
    for i, ref in enumerate(refs):
        decrypts(sv, pat, ref, i)
