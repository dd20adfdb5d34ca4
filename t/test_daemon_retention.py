"""Retired shares: kept for retention.period, restorable, purged after.

A share a rotation replaced (RELEASE) or reconcile found unreferenced
(RECON_DELETE) is retired, never used for a decrypt again, listed by
`splitvaultctl retired` and brought back by `splitvaultctl restore`; the
housekeeping purges retired shares older than the retention period in
audited batches, and never while locked down. Retirements spend a daily
budget that locks the daemon down when exceeded. Both store drivers.
"""
import grp
import os
import pwd
import re
import subprocess
import time
import uuid as uuidlib

import pytest

from svtest.core import wait_until
from svtest.fixtures_daemon import WERR, DaemonError, Record

WEEK = 7 * 86400


@pytest.fixture
def d(daemon_factory, store_driver):
    return daemon_factory(driver=store_driver)


def rotated(d, n=1):
    """n records stored, then decrypted with rotation and released: their
    first shares are retired (why=release)."""
    recs = []
    with d.client() as c:
        for i in range(n):
            r = Record({"name": "R%d" % i, "ssn": "S%d" % i})
            r.stored(c.store(r.uuid, r.store_fields()))
            old = [f.share_id for f in r.fields]
            out = c.decrypt(r.uuid, "pat", r.decrypt_fields(rotate=True))
            c.release(r.uuid, r.commit_rotation([nid for _, nid in out]))
            r.old = old
            recs.append(r)
    return recs


def ctl_lines(p, prefix):
    return [l for l in p.stdout.splitlines() if l.startswith(prefix)]


def test_retired_listed_then_purged_after_the_period(d):
    recs = rotated(d, 2)
    old = [i for r in recs for i in r.old]
    p = d.ctl("retired", check=True)
    listed = ctl_lines(p, "share ")
    assert len(listed) == 4 and "count=4" in p.stdout
    assert all("why=release" in l and "state=active" in l for l in listed)
    assert "key2b" not in p.stdout and "pub" not in p.stdout
    # within the period: kept
    d.wait_rounds(2)
    assert set(old) <= set(d.shares())
    # past it (aged in the store): purged in a batch, audited before and after
    d.age_shares(WEEK + 60, old[:2])
    wait_until(lambda: not set(old[:2]) & set(d.shares()), 20, "not purged")
    assert set(old[2:]) <= set(d.shares())  # the younger ones stay
    text = d.wait_audit("event=purge outcome=ok")
    assert "event=purge outcome=requested count=2 first=%d last=%d" % (old[0], old[1]) in text
    assert "event=purge outcome=ok purged=2" in text
    # the live shares decrypt as before
    with d.client() as c:
        for r in recs:
            assert [pt for pt, _ in c.decrypt(r.uuid, "pat", r.decrypt_fields())] == \
                [f.value for f in r.fields]
    st = d.ctl_status()
    assert st["shares_retired"] == "2" and st["retention"] == str(WEEK)


@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_nothing_purged_while_locked_down(d):
    recs = rotated(d, 1)
    assert d.ctl("lockdown").returncode == 0
    d.age_shares(WEEK + 60)
    d.wait_rounds(3)
    assert set(recs[0].old) <= set(d.shares())
    assert not re.search(r"event=purge outcome=ok purged=[1-9]", d.audit_path.read_text())
    d.ctl("unlock", check=True)
    wait_until(lambda: not set(recs[0].old) & set(d.shares()), 20, "not purged after unlock")


@pytest.mark.log_allows(
    r"control: \d+ retired share\(s\) restored \(id \d+\) by control-uid-\d+",
    r"control: \d+ retired share\(s\) restored \(record \S+\) by control-uid-\d+",
    r"control: \d+ retired share\(s\) restored \(since \d+\) by control-uid-\d+",
)
def test_restore_one_a_record_since_and_all(d):
    recs = rotated(d, 3)
    r0, r1, r2 = recs
    # one share
    p = d.ctl("restore", str(r0.old[0]), check=True)
    assert "restored=1" in p.stdout
    assert r0.old[0] in d.live()
    # a record's
    p = d.ctl("restore", "--record", r1.uuid, check=True)
    assert "restored=2" in p.stdout and set(r1.old) <= set(d.live())
    # since a time: nothing retired after now + 1 h, then everything
    later = int(time.time()) + 3600
    assert "restored=0" in d.ctl("restore", "--since", str(later), check=True).stdout
    p = d.ctl("restore", "--since", time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                   time.gmtime(time.time() - 3600)), check=True)
    assert "restored=3" in p.stdout  # r0's second and r2's two
    assert set(r2.old) <= set(d.live()) and not d.retired()
    assert "restored=0" in d.ctl("restore", "--all", check=True).stdout
    text = d.wait_audit("event=restore outcome=ok", count=5)
    assert "event=restore outcome=requested by=id value=%d source=control-uid-0" % r0.old[0] \
        in text
    assert "event=restore outcome=ok by=record value=%s restored=2" % r1.uuid in text
    # bad arguments are usage errors, and change nothing
    before = d.audit_path.read_text().count("event=restore")
    rotated(d, 1)
    retired = d.retired()
    for args in (["restore"], ["restore", "x1"], ["restore", "--record", "nope"],
                 ["restore", "--since", "yesterday"], ["retired", "--all"],
                 # not a uuid, though 36 characters long
                 ["restore", "--record", "z" * 36], ["retired", "--record", "-" * 36],
                 # before 1970 (timegm: -1 for the last second of 1969)
                 ["restore", "--since", "1969-12-31T23:59:59Z"],
                 ["restore", "--since", "1900-01-01T00:00:00Z"],
                 ["retired", "--since", "1969-12-31T23:59:59Z"],
                 # past what the daemon's signed times and ids hold
                 ["restore", "--since", "18446744073709551615"],
                 ["restore", "--since", "9223372036854775808"],
                 ["restore", "9223372036854775808"], ["restore", "18446744073709551616"],
                 ["restore", "0"], ["restore", "01"]):
        assert d.ctl(*args).returncode == 2, args
    # the daemon refuses such values too, from any client
    for line, answer in ((b"restore since 18446744073709551615\n",
                          "error: restore id ID | record UUID | since UNIX-SECONDS\n"),
                         (b"restore since 9223372036854775808\n",
                          "error: restore id ID | record UUID | since UNIX-SECONDS\n"),
                         (b"restore id 9223372036854775808\n",
                          "error: restore id ID | record UUID | since UNIX-SECONDS\n"),
                         (b"retired since 9223372036854775808\n",
                          "error: since takes unix seconds\n")):
        assert d.ctl_raw(line) == answer, line
    assert d.retired() == retired
    assert d.audit_path.read_text().count("event=restore") == before
    # the largest time both take: nothing retired that late
    p = d.ctl("restore", "--since", "9223372036854775807", check=True)
    assert "restored=0" in p.stdout


@pytest.mark.log_allows(
    r"retention\.period is \d+: retired shares are purged at once, and nothing",
)
def test_retention_zero_purges_at_once(daemon_factory, store_driver):
    d = daemon_factory(driver=store_driver, retention="0")
    recs = rotated(d, 1)
    wait_until(lambda: not set(recs[0].old) & set(d.shares()), 20, "not purged")
    assert not d.retired()


@pytest.mark.log_allows(
    r"LOCK-DOWN \(retire-budget, from [\d.]+\): decrypts refused until",
    r"RECON_DELETE refused: locked down \(more are summarised\)",
    r"RELEASE refused: the daily budget of retired shares is spent \(more are",
    r"\d+ more refusals \(retire-budget\) from [\d.]+ in the last \d+ s",
    r"\d+ share\(s\) to retire would exceed retention\.daily_budget \(\d+ in any",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_retire_budget_locks_down(daemon_factory, store_driver):
    """Three retirements a day: a RELEASE that would retire a fourth is
    refused and locks the daemon down; while locked down RECON_DELETE is
    refused (RELEASE too, with the budget spent); unlock refills it."""
    d = daemon_factory(driver=store_driver, retire_budget=3)
    r = Record({"a": "1", "b": "2"})
    r2 = Record({"c": "3", "d": "4"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
        r2.stored(c.store(r2.uuid, r2.store_fields()))
        out = c.decrypt(r.uuid, "pat", r.decrypt_fields(rotate=True))
        assert c.release(r.uuid, r.commit_rotation([nid for _, nid in out])) == 2
        out = c.decrypt(r2.uuid, "pat", r2.decrypt_fields(rotate=True))
        items = r2.commit_rotation([nid for _, nid in out])
        with pytest.raises(DaemonError) as e:
            c.release(r2.uuid, items)
        assert e.value.code == WERR["LOCKED_DOWN"]
        # past the budget again: refused, without another lock-down to record
        with pytest.raises(DaemonError) as e:
            c.release(r2.uuid, items)
        assert e.value.code == WERR["LOCKED_DOWN"]
    assert d.ctl_status()["locked"] == "1"
    text = d.wait_audit("event=refusal why=retire-budget")
    assert text.count("event=lockdown why=retire-budget") == 1
    assert "event=refusal why=retire-budget peer=127.0.0.1 type=RELEASE shares=2" in text
    old_c = items[0][1]
    d.age_shares(3600, [old_c])
    with d.reconciler() as rc:
        with pytest.raises(DaemonError) as e:
            rc.recon_delete(0, [(old_c, r2.uuid, "c")])
        assert e.value.code == WERR["LOCKED_DOWN"]
    assert "event=refusal why=reconcile-locked-down peer=127.0.0.1 type=RECON_DELETE" in \
        d.wait_audit("why=reconcile-locked-down")
    d.ctl("unlock", check=True)
    with d.client() as c:
        assert c.release(r2.uuid, items) == 2
    assert len(d.retired()) == 4


# killed between an audit entry and its head: confirmed at the restart
@pytest.mark.log_allows(r"entries after the recorded head \(a crash between log and head writes\)")
def test_kill9_during_purge_loses_nothing_in_use(daemon_factory, store_driver):
    """Purging in batches; the daemon is killed between them. After the
    restart nothing in use is missing, the rest of the purge follows, and
    the audit log verifies."""
    d = daemon_factory(driver=store_driver, extra={"retention": {"purge_batch": 20}})
    keep = []
    with d.client() as c, d.reconciler() as rc:
        for i in range(30):
            r = Record({"k": "keep %d" % i})
            keep.append(r.stored(c.store(r.uuid, r.store_fields())))
        orphans = []
        for i in range(80):  # four batches: two before the kill, two after
            o = Record({"o": "orphan %d" % i})
            o.stored(c.store(o.uuid, o.store_fields()))
            orphans.append((o.fields[0].share_id, o.uuid, "o"))
        d.age_shares(3600, [i for i, _, _ in orphans])
        for k in range(0, len(orphans), 100):
            assert rc.recon_delete(0, orphans[k:k + 100]) == len(orphans[k:k + 100])
    d.age_shares(WEEK + 60, [i for i, _, _ in orphans])
    d.wait_audit("event=purge outcome=ok", count=2)
    d.kill9()
    left = {i for i, _, _ in orphans} & set(d.shares())
    assert 0 < len(left) < len(orphans), len(left)
    d.start()
    wait_until(lambda: not {i for i, _, _ in orphans} & set(d.shares()), 60,
               "purge did not finish", interval=0.1)
    live = d.live()
    assert all(r.fields[0].share_id in live for r in keep)
    with d.client() as c:
        for r in keep[:5]:
            assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == r.fields[0].value
    assert d.ctl("audit-verify").returncode == 0


# ---- the control socket: who may restore and unlock --------------------------

ADMIN_GROUP, ADMIN_USER = "svtest-admins", "svtest-admin"


@pytest.fixture(scope="module")
def admin_user():
    """A user in an admin group (made for the tests; root only)."""
    try:
        grp.getgrnam(ADMIN_GROUP)
    except KeyError:
        subprocess.run(["groupadd", "-f", ADMIN_GROUP], check=True)
    try:
        pwd.getpwnam(ADMIN_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-N", "-g", "nogroup", "-G", ADMIN_GROUP,
                        "-s", "/usr/sbin/nologin", ADMIN_USER], check=True)
    return ADMIN_USER


@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"\d+ more refusals \(control-not-admin\) from uid-\d+ in the last \d+ s",
    r"control: \d+ retired share\(s\) restored \(record \S+\) by control-uid-\d+",
    r"control: unlock refused for uid \d+ \(the daemon's own user\): only root or",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_only_root_or_the_admin_group_unlocks_and_restores(daemon_factory, admin_user):
    d = daemon_factory(admin_group=ADMIN_GROUP)
    st = os.stat(d.sock_path)
    assert st.st_mode & 0o777 == 0o660 and st.st_gid == grp.getgrnam(ADMIN_GROUP).gr_gid
    recs = rotated(d, 1)
    assert d.ctl("lockdown").returncode == 0
    # the daemon's own user: status and lockdown, never unlock or restore
    p = d.ctl("status", user="nobody")
    assert p.returncode == 0 and p.stdout.startswith("ok")
    for args in (["unlock"], ["restore", "--all"], ["retired"]):
        p = d.ctl(*args, user="nobody")
        assert p.returncode == 1 and "permission denied" in p.stdout, (args, p.stdout)
    assert d.ctl_status()["locked"] == "1" and d.retired()
    # a member of control.admin_group: everything
    p = d.ctl("retired", user=admin_user)
    assert p.returncode == 0 and "count=2" in p.stdout, p.stdout + p.stderr
    assert d.ctl("restore", "--record", recs[0].uuid, user=admin_user).returncode == 0
    assert d.ctl("unlock", user=admin_user).returncode == 0
    assert d.ctl_status()["locked"] == "0" and not d.retired()
    text = d.wait_audit("event=unlock outcome=ok")
    uid = pwd.getpwnam(admin_user).pw_uid
    assert "source=control-uid-%d" % uid in text
    assert "control-not-admin" in text  # the refusals are audited


def test_the_daemons_user_may_not_be_an_admin(daemon_factory):
    d = daemon_factory(start=False, admin_group="nogroup")  # nobody's own group
    p = d.check()
    assert p.returncode == 1 and "the daemon's user nobody is in group nogroup" in p.stderr
    d.config["control"]["admin_group"] = "no-such-group-here"
    d.write_config()
    p = d.check()
    assert p.returncode == 1 and 'control.admin_group: no group "no-such-group-here"' in p.stderr


# ---- the audit log: out of the daemon's user's reach -------------------------

def test_audit_log_out_of_the_daemons_users_reach(daemon_factory):
    d = daemon_factory()
    # the daemon's user can neither remove, rename nor write its record
    for argv in (["rm", "-f", str(d.audit_path)], ["mv", str(d.head_path), str(d.dir / "x")],
                 ["sh", "-c", ": > %s" % d.audit_path]):
        p = subprocess.run(["runuser", "-u", "nobody", "--"] + argv, capture_output=True)
        assert p.returncode != 0, argv
    assert d.audit_path.exists() and d.head_path.exists()
    assert d.audit_path.read_text()
    d.stop()
    # a log where that user could reach it is refused at start
    for where in (d.state, d.dir / "open"):
        if where != d.state:
            where.mkdir()
            where.chmod(0o777)
        d.config["audit"]["path"] = str(where / "audit.log")
        d.write_config()
        p = d.check()
        assert p.returncode == 1 and "audit.path" in p.stderr and \
            "could rename or remove it" in p.stderr, p.stderr
    # a file of the user's in a safe directory is refused too
    safe = d.dir / "safe"
    safe.mkdir()
    log = safe / "audit.log"
    log.write_text("")
    os.chown(log, pwd.getpwnam("nobody").pw_uid, 0)
    d.config["audit"]["path"] = str(log)
    d.write_config()
    p = d.check()
    assert p.returncode == 1 and "the daemon's user nobody owns it" in p.stderr, p.stderr


@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"lock-down recorded in the store \(by another daemon\?\): locking down",
    r"unlock refused: the store records another lock-down \(since \d+\) than the",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_unlock_does_not_lift_a_newer_lockdown_unseen(daemon_factory, store_driver):
    """The store records a newer lock-down (another daemon on a shared
    store tripped after this one): unlock refuses, says so, and adopts it;
    a second unlock, after a look, lifts it."""
    d = daemon_factory(driver=store_driver)
    assert d.ctl("lockdown").returncode == 0
    since = int(d.ctl_status()["locked_since"])
    d.sql("UPDATE sv_state SET locked_since = %d, reason = 'queue-overflow' WHERE id = 1"
          % (since + 7))
    p = d.ctl("unlock")
    assert p.returncode == 1 and ("another lock-down is recorded in the store (since %d"
                                  % (since + 7)) in p.stdout, p.stdout
    st = d.ctl_status()
    assert st["locked"] == "1" and st["locked_since"] == str(since + 7)
    assert d.ctl("unlock").returncode == 0
    assert d.ctl_status()["locked"] == "0"


def test_control_lines_are_whole_and_listings_clean(daemon_factory):
    """A line cut short is refused, never taken for a shorter command; the
    retired listing shows only checked values from the store."""
    import socket
    d = daemon_factory()
    recs = rotated(d, 1)
    # the store's text, changed behind the daemon's back (it is that user's file)
    d.sql("UPDATE shares SET field = %s, retired_why = %s WHERE id = %s",
          ("x\x1b[2J", "gone\x1b]0;", recs[0].old[0]))
    p = d.ctl("retired", check=True)
    assert "\x1b" not in p.stdout and "field=? " in p.stdout and "why=?" in p.stdout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(d.sock_path))
        s.sendall(b"restore id " + b"0" * 115 + b"12345\n")
        answer = s.recv(4096).decode()
    assert answer.startswith("error: no whole command line"), answer
    assert "restored" not in d.audit_path.read_text()
    # a client that says nothing does not hold up the others
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(str(d.sock_path))
    try:
        assert d.ctl("status").returncode == 0
        # served while the idle client is still connected, not after the
        # daemon gave up on it (it would have closed that connection)
        idle.setblocking(False)
        with pytest.raises(BlockingIOError):
            idle.recv(1)
    finally:
        idle.close()


def retire_many(d, n):
    """n shares stored (random keys: never decrypted), aged past
    reconcile.min_grace and retired by reconcile."""
    refs = []
    with d.client() as c:
        for _ in range((n + 31) // 32):
            u = str(uuidlib.uuid4())
            names = ["f%02d" % i for i in range(32)]
            ids = c.store(u, [(f, os.urandom(32), os.urandom(32)) for f in names])
            refs += list(zip(ids, [u] * 32, names))
    refs = refs[:n]
    d.age_shares(3600)
    with d.reconciler() as r:
        for i in range(0, n, 1000):
            assert r.recon_delete(0, refs[i:i + 1000]) == len(refs[i:i + 1000])
    return [i for i, _, _ in refs]


@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_a_client_that_stops_reading_holds_up_nobody(daemon_factory):
    """A client that asks for a long listing and stops reading it (a pager
    left paused) holds up neither the other operators' commands nor the
    daemon's stop: the listing is cut off, never completed unread."""
    import socket
    d = daemon_factory()
    n = len(retire_many(d, 2000))
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        slow.connect(str(d.sock_path))
        slow.sendall(b"retired\n")

        def answering():
            try:
                return slow.recv(3, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"ok\n"
            except BlockingIOError:
                return False
        # the listing has begun; 2000 lines are far more than the socket
        # holds, so the daemon is waiting for room to write the rest
        wait_until(answering, 30, "the listing did not begin")
        # meanwhile the other commands are served, one that waits its turn
        # (unlock) included, and another listing read to its end
        p = d.ctl("lockdown")
        assert p.returncode == 0 and "locked=1" in p.stdout, p.stdout + p.stderr
        assert d.ctl_status()["locked"] == "1"
        p = d.ctl("retired")
        assert p.returncode == 0 and "count=%d" % n in p.stdout, p.stderr
        p = d.ctl("unlock")
        assert p.returncode == 0 and "locked=0" in p.stdout, p.stdout + p.stderr
        # and the daemon stops at SIGTERM (within the harness's stop timeout,
        # or it would be killed: exit status -9), the client still connected
        assert d.stop() == 0
        slow.settimeout(30)
        got = b""
        while True:
            b = slow.recv(65536)
            if not b:
                break
            got += b
        assert got.startswith(b"ok\n") and b"count=" not in got
    finally:
        slow.close()


def test_paths_the_daemons_user_could_change_are_refused(daemon_factory):
    """The audit log behind a symbolic link in a directory of the daemon's
    user, and a control socket in such a directory, are refused at start;
    splitvaultctl refuses to talk to a socket in a directory that is not
    root's alone."""
    d = daemon_factory(start=False)
    real = d.dir / "real-audit"
    real.mkdir()
    real.chmod(0o755)
    link = d.state / "logdir"  # the state directory is the daemon user's
    os.symlink(real, link)
    d.config["audit"]["path"] = str(link / "audit.log")
    d.write_config()
    p = d.check()
    assert p.returncode == 1 and "could rename or remove it" in p.stderr, p.stderr
    d.config["audit"]["path"] = str(d.audit_path)
    d.config["control"]["socket"] = str(d.state / "ctl.sock")
    d.write_config()
    p = d.check()
    assert p.returncode == 1 and "control.socket" in p.stderr, p.stderr
    # the client side: a socket in a directory another user can write
    open_dir = d.dir / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    p = d.ctl("-s", str(open_dir / "ctl.sock"), "status")
    assert p.returncode == 1 and "refusing to trust it" in p.stderr, p.stderr


def test_splitvaultctl_trusts_no_directory_another_user_could_change(daemon_factory):
    """splitvaultctl checks every directory above the control socket's too,
    along the path as written and as resolved: one another user can write
    (it could swap the socket's directory for one of its own between the
    check and the connect) or owns is refused; root's path, through a
    link of root's, is trusted."""
    d = daemon_factory()
    nobody = pwd.getpwnam("nobody").pw_uid
    bad = []
    for name, mode, owner in (("open", 0o777, 0), ("theirs", 0o755, nobody)):
        top = d.dir / name
        top.mkdir()
        sub = top / "run"
        sub.mkdir()
        sub.chmod(0o755)  # root's, writable by root alone: its parent is not
        top.chmod(mode)
        os.chown(top, owner, 0)
        bad.append((top, sub))
    for top, sub in bad:
        p = d.ctl("-s", str(sub / "ctl.sock"), "status")
        assert p.returncode == 1 and "refusing to trust it" in p.stderr and \
            "%s must be root's" % top in p.stderr, p.stderr
    # a link of root's in a directory of root's, to a directory another
    # user could swap: the path it resolves to is checked too
    link = d.dir / "via"
    os.symlink(bad[0][1], link)
    p = d.ctl("-s", str(link / "ctl.sock"), "status")
    assert p.returncode == 1 and "refusing to trust it" in p.stderr, p.stderr
    # the daemon's own socket, by its path and through such a link: trusted
    # (/tmp above it is writable by all, but sticky)
    os.symlink(d.run_dir, d.dir / "ctl-link")
    for sock in (d.sock_path, d.dir / "ctl-link" / "ctl.sock"):
        p = d.ctl("-s", str(sock), "status")
        assert p.returncode == 0 and p.stdout.startswith("ok"), p.stdout + p.stderr
