"""splitvault-admin reconcile against a real daemon and main database.

It pages through the daemon's shares older than the grace period, retires
only the ones no row references (after a dry run that changes nothing),
never a referenced one, and says what it did. (The crash and lost-RELEASE
cases of decrypt are in test_module_decrypt.py.)
"""
import os
import uuid as uuidlib

import pytest

from svtest.fixtures_httpd import needs_test_hooks
from svtest.data import GOOD, GOOD_BODY


def orphan_records(sv, records, fields=32):
    """Store shares for records that the main database never gets."""
    made = []
    with sv.daemon.client() as c:
        for _ in range(records):
            u = str(uuidlib.uuid4())
            ids = c.store(u, [("f%02d" % i, os.urandom(32), os.urandom(32))
                              for i in range(fields)])
            made += ids
    return made


def test_pages_dry_run_then_apply(sv):
    refs = [sv.ref_of(sv.submit(GOOD)) for _ in range(2)]
    orphans = orphan_records(sv, 33)  # 1056 shares: two RECON_LIST pages
    assert len(sv.daemon.live()) == 6 + 1056
    sv.daemon.age_shares(1000)
    p = sv.reconcile("--grace", "0")
    assert p.returncode == 0, p.stderr
    assert "page 1: 1000 shares" in p.stdout and "page 2: 62 shares" in p.stdout, p.stdout
    assert "dry run" in p.stdout and p.stdout.count("would retire") == 1056
    assert "1062 listed; 6 referenced and active" in p.stdout
    assert len(sv.daemon.live()) == 1062
    # more orphans than --max-retire allows: a counting pass, and nothing retired
    p = sv.reconcile("--grace", "0", "--apply", check=False)
    assert p.returncode != 0 and "1056 shares are not referenced, more than --max-retire " \
        "(1000): nothing retired" in p.stderr, p.stdout + p.stderr
    assert len(sv.daemon.live()) == 1062
    p = sv.reconcile("--grace", "0", "--apply", "--max-retire", "2000")
    assert "1056 not referenced (1056 retired)" in p.stdout, p.stdout
    left = sv.daemon.live()
    assert len(left) == 6 and set(orphans).isdisjoint(left)
    referenced = {s for (s,) in sv.db.query("SELECT share_id FROM fields")}
    assert set(left) == referenced
    assert "event=reconcile" in sv.daemon.audit_path.read_text()
    # the records are untouched: intake goes on, nothing more to do
    assert len(refs) == 2 and sv.ref_of(sv.submit(GOOD))
    sv.daemon.age_shares(1000)
    p = sv.reconcile("--grace", "0", "--apply")
    assert "0 not referenced" in p.stdout and "9 referenced and active" in p.stdout


def test_grace_period_keeps_recent_shares(sv):
    orphan_records(sv, 1, fields=3)
    sv.daemon.age_shares(1000)
    p = sv.reconcile("--grace", "3600", "--apply")
    assert "0 listed" in p.stdout and len(sv.daemon.live()) == 3
    p = sv.reconcile("--apply")  # the default grace: an hour
    assert "older than 3600 s" in p.stdout and len(sv.daemon.live()) == 3


def test_share_referenced_by_another_record_is_kept(sv):
    """A row that references a share of another record or field (a damaged
    or tampered database) is reported, never retired."""
    ref = sv.ref_of(sv.submit(GOOD))
    [orphan] = orphan_records(sv, 1, fields=1)
    sv.db.query("UPDATE fields SET share_id = %s WHERE name = 'ssn' AND record_id = "
                "(SELECT id FROM records WHERE ref = %s)", (orphan, ref))
    sv.daemon.age_shares(1000)
    p = sv.reconcile("--grace", "0", "--apply")
    assert "referenced by a row of another record or field: kept" in p.stdout, p.stdout
    assert "1 referenced by another record or field (kept)" in p.stdout
    shares = sv.daemon.live()
    assert orphan in shares
    # the share the row referenced before is no longer referenced: retired
    assert "1 not referenced (1 retired)" in p.stdout and len(shares) == 3


@pytest.mark.log_allows(r"SV01502")
@needs_test_hooks
def test_intake_orphans_removed(sv):
    """A submission whose insert failed after STORE leaves active orphans."""
    sv.allowed_errors.append(r"SV01103: svm_intake_3 failed")
    r = sv.client().post(sv.path("/"), body=GOOD_BODY,
                         headers={"X-SplitVault-Fault": "intake-db-fail"})
    assert r.status == 503
    ref = sv.ref_of(sv.submit(GOOD))
    assert ref and len(sv.daemon.live()) == 6
    sv.daemon.age_shares(1000)
    p = sv.reconcile("--grace", "0", "--apply")
    assert "3 not referenced (3 retired)" in p.stdout, p.stdout
    assert p.stdout.count(", active): not referenced: retiring") == 3
    assert len(sv.daemon.live()) == 3


def test_a_main_database_that_lost_its_rows_retires_nothing(sv):
    """A main database whose rows are gone (restored from the wrong point,
    damaged, or changed by whoever could write it) makes every share look
    like an orphan: past --max-retire reconcile retires nothing at all."""
    refs = [sv.ref_of(sv.submit(GOOD)) for _ in range(4)]
    assert len(refs) == 4
    sv.daemon.age_shares(1000)
    sv.db.query("DELETE FROM fields")
    p = sv.reconcile("--grace", "0", "--apply", "--max-retire", "10", check=False)
    assert p.returncode != 0 and "12 shares are not referenced" in p.stderr, p.stderr
    assert len(sv.daemon.live()) == 12 and not sv.daemon.retired()
    p = sv.reconcile("--max-retire", "x", check=False)
    assert p.returncode != 0 and "--max-retire takes a count" in p.stderr


@pytest.mark.log_allows(r"TLS handshake refused: no-client-certificate")
def test_refuses_bad_arguments_and_foreign_ca(sv):
    p = sv.db.admin("reconcile", check=False)
    assert p.returncode != 0 and "usage: reconcile" in p.stderr
    p = sv.db.admin("reconcile", "--daemon", "127.0.0.1:%d" % sv.daemon.port, "--ca",
                    sv.pki.other_ca_cert, "--cert", sv.pki.client_cert, "--key",
                    sv.pki.client_key, check=False)
    assert p.returncode != 0 and "TLS handshake with the daemon failed" in p.stderr
    p = sv.reconcile("--grace", "soon", check=False)
    assert p.returncode != 0 and "--grace takes seconds" in p.stderr
    p = sv.db.admin("reconcile", "--daemon", "127.0.0.1:1", "--ca", sv.pki.ca_cert,
                    "--cert", sv.pki.client_cert, "--key", sv.pki.client_key, check=False)
    assert p.returncode != 0 and "cannot connect" in p.stderr
