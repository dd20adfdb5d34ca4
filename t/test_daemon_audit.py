"""splitvaultd audit log: a hash chain plus a durable head; the verifier
(online through the control socket, offline on the files) detects edited,
deleted, reordered and truncated entries; a failing audit log stops
decrypts (fail closed) but not intake."""
import os
import re
import shutil

import pytest

import svwire as w
from svtest.core import BUILD, run, wait_until
from svtest.fixtures_daemon import CTL, DaemonError, Record, WERR


def activity(d):
    """A few of every kind of event."""
    with d.client() as c:
        recs = []
        for i in range(3):
            # values long enough that finding one in the log is never chance
            r = Record({"name": "Name-Audit-Probe-%d" % i, "ssn": "Ssn-Audit-Probe-%d" % i})
            recs.append(r.stored(c.store(r.uuid, r.store_fields())))
        out = c.decrypt(recs[0].uuid, "pat", recs[0].decrypt_fields(rotate=True))
        c.release(recs[0].uuid, recs[0].commit_rotation([n for _, n in out]))
        with pytest.raises(DaemonError):
            c.decrypt(recs[1].uuid, "pat", [recs[1].decrypt_fields()[0][:2] + (bytes(32),) +
                                            recs[1].decrypt_fields()[0][3:]])
    return recs


def offline(log, head=None):
    argv = [CTL, "--log", log] + (["--head", head] if head else []) + ["audit-verify"]
    return run(argv, check=False)


@pytest.fixture
def stopped(daemon):
    """A daemon's audit log after some activity, daemon stopped; copies of
    the log and head to tamper with."""
    recs = activity(daemon)
    daemon.stop()
    return daemon, recs


def lines(path):
    return path.read_text().splitlines(keepends=True)


@pytest.mark.log_allows(r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(name, share \d+\):")
def test_entries_and_online_verify(daemon):
    recs = activity(daemon)
    p = daemon.ctl("audit-verify")
    assert p.returncode == 0 and "entries=" in p.stdout, p.stdout
    text = daemon.audit_path.read_text()
    for ev in ("event=start", "event=store outcome=ok", "event=decrypt outcome=ok actor=pat",
               "event=decrypt outcome=refused why=key-mismatch", "event=release"):
        assert ev in text
    assert "record=%s" % recs[0].uuid in text
    # never a secret
    for r in recs:
        for f in r.fields:
            for secret in (f.key2a, f.key2b, f.value):
                assert secret.hex() not in text and (f.value.decode() + " ") not in text
    st = daemon.ctl_status()
    head = daemon.head_path.read_text()
    assert st["audit_hash"] in head and int(st["audit_seq"]) == len(lines(daemon.audit_path))


@pytest.mark.log_allows(r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(name, share \d+\):")
def test_offline_verify_ok(stopped):
    d, _ = stopped
    p = offline(d.audit_path, d.head_path)
    assert p.returncode == 0, p.stdout
    p = run([CTL, "-c", d.conf_path, "--offline", "audit-verify"], check=False)
    assert p.returncode == 0, p.stdout


def tamper_cases(ls):
    n = len(ls)
    mid = n // 2
    edited = list(ls)
    edited[mid] = edited[mid].replace("outcome=ok", "outcome=no", 1).replace(
        "record=", "record=0", 1) if "record=" in edited[mid] else edited[mid].replace(
        "event=", "event=x", 1)
    last_edit = list(ls)
    last_edit[-1] = last_edit[-1].replace("event=", "event=y", 1)
    return {
        "edited": edited,
        "edited-last": last_edit,
        "deleted": ls[:mid] + ls[mid + 1:],
        "reordered": ls[:mid] + [ls[mid + 1], ls[mid]] + ls[mid + 2:],
        "truncated": ls[:-2],
        "truncated-mid-line": ls[:-1] + [ls[-1][:20]],
        "emptied": [],
        "inserted": ls[:mid] + [ls[mid]] + ls[mid:],
    }


@pytest.mark.parametrize("kind", ["edited", "edited-last", "deleted", "reordered", "truncated",
                                  "truncated-mid-line", "emptied", "inserted"])
@pytest.mark.log_allows(r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(name, share \d+\):")
def test_tampering_detected(stopped, kind, tmp_path):
    d, _ = stopped
    ls = lines(d.audit_path)
    assert len(ls) >= 8
    bad = tmp_path / "audit.log"
    bad.write_text("".join(tamper_cases(ls)[kind]))
    head = tmp_path / "audit.log.head"
    shutil.copy(d.head_path, head)
    p = offline(bad, head)
    assert p.returncode == 1, (kind, p.stdout)
    assert p.stdout.startswith("error: audit log does not verify")
    # the untouched copy still verifies
    assert offline(d.audit_path, d.head_path).returncode == 0


@pytest.mark.log_allows(
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(name, share \d+\):",
    r"cannot start: audit log \S+ does not verify at line \d+: sequence number",
)
def test_daemon_refuses_to_start_on_tampered_log(stopped):
    d, _ = stopped
    ls = lines(d.audit_path)
    d.audit_path.write_text("".join(ls[:3] + ls[4:]))
    p = d.check()
    assert p.returncode == 0  # the config is fine...
    with pytest.raises(RuntimeError):
        d.start(timeout=10)  # ...the log is not
    assert "does not verify" in d.log_text()


@pytest.mark.log_allows(
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(name, share \d+\):",
    r"audit log \S+ ends in an incomplete entry after seq \d+: removing it",
)
def test_torn_last_line_after_crash_is_repaired(stopped):
    d, _ = stopped
    with open(d.audit_path, "a") as f:
        f.write("seq=999 prev=00")  # a write cut short by a crash, past the head
    d.start()
    assert "incomplete entry" in d.log_text()
    assert d.ctl("audit-verify").returncode == 0


@pytest.mark.log_allows(
    r"DECRYPT record=\S+ actor=\S+ refused: audit log failing",
    r"DECRYPT record=\S+ actor=\S+ refused: audit log write failed",
    r"audit log \S+: write failed: Input/output error; decrypts are refused until",
    r"audit: store of record \S+ \(shares \d+\) not recorded",
)
def test_audit_failure_refuses_decrypts_not_stores(daemon_factory, workdir):
    if not (BUILD / "config.h").exists() or \
            "SV_TEST_HOOKS 1" not in (BUILD / "config.h").read_text():
        pytest.skip("needs a build with --enable-test-hooks")
    trigger = workdir / "audit-fail"
    d = daemon_factory(start=False)
    d.start(env=dict(os.environ, SVD_TEST_AUDIT_FAIL=str(trigger)))
    with d.client() as c:
        r = Record({"name": "x"})
        r.stored(c.store(r.uuid, r.store_fields()))
        assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == b"x"
        trigger.write_text("1")
        with pytest.raises(DaemonError) as e:
            c.decrypt(r.uuid, "pat", r.decrypt_fields())
        assert e.value.code == WERR["AUDIT"]
        # the next decrypt is refused up front, before any key is touched
        with pytest.raises(DaemonError) as e:
            c.decrypt(r.uuid, "pat", r.decrypt_fields())
        assert e.value.code == WERR["AUDIT"]
        # intake goes on
        r2 = Record({"name": "y"})
        assert c.store(r2.uuid, r2.store_fields())
        assert d.ctl_status()["audit_healthy"] == "0"
        trigger.unlink()
        # a later successful write (the store's entry) makes it healthy again
        r3 = Record({"name": "z"})
        c.store(r3.uuid, r3.store_fields())
        wait_until(lambda: d.ctl_status()["audit_healthy"] == "1", 10,
                   "the audit log did not become healthy again")
        assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == b"x"
        with d.reconciler() as rc2:
            assert len(rc2.call(w.ReconScan(0, 1000)).entries) == len(d.shares())
    d.stop()
    assert offline(d.audit_path, d.head_path).returncode == 0


WHY_TOKEN = re.compile(r"(?:^| )why=([^ ]*)")


@pytest.mark.log_allows(
    r"CONFIRM record=\S+ actor=\S+: share\(s\) \d+ not confirmed \(unknown,",
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(f0\d+\S+ share \d+\):",
)
def test_longest_events_are_recorded(daemon_factory):
    """The longest entries there are (32 fields of 64-character names, the
    largest ids, an IPv6 peer, the longest actor) are written whole: a
    RELEASE of that size, a refused and an answered DECRYPT. Every why= is
    a token."""
    d = daemon_factory(allow=["::1/128"], extra={"listen": {"address": "::1"}})
    names = ["f%02d" % i + "x" * 61 for i in range(32)]
    actor = "a" * 64
    r = Record({n: "v%d" % i for i, n in enumerate(names)})
    with d.client(host="::1") as c:
        r.stored(c.store(r.uuid, r.store_fields()))
        bad = [f[:2] + (bytes(32),) + f[3:] for f in r.decrypt_fields()]
        with pytest.raises(DaemonError):
            c.decrypt(r.uuid, actor, bad)
        out = c.decrypt(r.uuid, actor, r.decrypt_fields(rotate=True))
        big = (1 << 63) - 1
        items = [(n, big - 2 * i, big - 2 * i - 1) for i, n in enumerate(names)]
        assert c.release(r.uuid, items) == 32
        c.release(r.uuid, r.commit_rotation([nid for _, nid in out]))
        # a CONFIRM of every field, one with another key: the longest list
        # of unconfirmed shares too
        got = c.confirm(r.uuid, actor, [(f.share_id, f.name, f.pub if i else bytes(32))
                                        for i, f in enumerate(r.fields)])
        assert got == [0] + [1] * 31
    text = d.wait_audit("event=release outcome=ok", count=2)
    text = d.wait_audit("why=confirm-mismatch")
    lines = text.splitlines()
    assert not [l for l in lines if len(l) > 4096]
    assert "not logged" not in d.log_text()
    refused = [l for l in lines if "event=decrypt outcome=refused" in l]
    assert refused and "why=key-mismatch" in refused[0] and "peer=::1" in refused[0]
    assert ("actor=%s " % actor) in refused[0] and ",".join(names) in refused[0]
    ok = [l for l in lines if "event=decrypt outcome=ok" in l]
    assert ok and "rotated=" in ok[0] and "rotated=-" not in ok[0]
    req = [l for l in lines if "event=release outcome=requested" in l]
    assert len(req) == 2 and str(big - 63) in req[0]
    assert len([l for l in lines if "event=release outcome=ok" in l]) == 2
    conf = [l for l in lines if "event=refusal why=confirm-mismatch" in l]
    assert conf and ("actor=%s " % actor) in conf[0] and r.uuid in conf[0]
    for l in lines:
        for why in WHY_TOKEN.findall(l):
            assert re.fullmatch(r"[a-z0-9-]+", why), l
    assert d.ctl("audit-verify").returncode == 0


@pytest.mark.skipif(not (BUILD / "config.h").exists() or
                    "SV_TEST_HOOKS 1" not in (BUILD / "config.h").read_text(),
                    reason="needs a build with --enable-test-hooks")
@pytest.mark.log_allows(
    r"DECRYPT record=\S+ actor=\S+ refused: audit log write failed",
    r"RECON_DELETE refused: the audit log cannot record it",
    r"RECON_SCAN refused: the audit log cannot record it",
    r"RELEASE record=\S+ refused: the audit log cannot record it",
    r"audit log \S+: write failed: Input/output error; decrypts are refused until",
    r"audit: store of record \S+ \(shares \d+\) not recorded",
)
def test_deletions_refused_while_the_audit_log_fails(daemon_factory, workdir):
    """RELEASE and RECON_DELETE retire key2b (gone for good once purged):
    their entry is written (and synced) before the store is touched, and
    when it cannot be they are refused with AUDIT and change nothing. A
    DECRYPT whose entry cannot be written leaves no usable pending share
    behind (it is retired)."""
    trigger = workdir / "audit-fail"
    d = daemon_factory(start=False)
    d.start(env=dict(os.environ, SVD_TEST_AUDIT_FAIL=str(trigger)))
    r = Record({"name": "x", "ssn": "y"})
    with d.client() as c, d.reconciler() as rc:
        r.stored(c.store(r.uuid, r.store_fields()))
        out = c.decrypt(r.uuid, "pat", r.decrypt_fields(rotate=True, names={"name"}))
        pending = out[0][1]
        before = d.shares()
        trigger.write_text("1")
        # a rotation undone, a rotation finished, a reconcile delete
        for items in ([("name", pending, 0)], [("name", r.fields[0].share_id, pending)]):
            with pytest.raises(DaemonError) as e:
                c.release(r.uuid, items)
            assert e.value.code == WERR["AUDIT"]
        d.age_shares(1000)
        before = d.shares()
        with pytest.raises(DaemonError) as e:
            rc.recon_delete(0, [(r.fields[1].share_id, r.uuid, "ssn")])
        assert e.value.code == WERR["AUDIT"]
        assert d.shares() == before
        # nor is the store listed while no entry can say who listed it
        with pytest.raises(DaemonError) as e:
            rc.call(w.ReconScan(0, 10))
        assert e.value.code == WERR["AUDIT"]
        trigger.unlink()
        r2 = Record({"z": "w"})
        c.store(r2.uuid, r2.store_fields())  # a successful write: healthy again
        before = d.shares()
        wait_until(lambda: d.ctl_status()["audit_healthy"] == "1", 10,
                   "the audit log did not become healthy again")
        # the decrypt's own entry fails: refused, and its pending share retired
        trigger.write_text("1")
        live = d.live()
        with pytest.raises(DaemonError) as e:
            c.decrypt(r.uuid, "pat", r.decrypt_fields(rotate=True, names={"ssn"}))
        assert e.value.code == WERR["AUDIT"]
        assert d.live() == live
        gone = set(d.shares()) - set(before)
        assert len(gone) == 1 and d.shares()[gone.pop()]["why"] == "discard"
        trigger.unlink()
    d.stop()
    assert offline(d.audit_path, d.head_path).returncode == 0
