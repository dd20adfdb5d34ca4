"""splitvaultd process hardening: root dropped (only CAP_IPC_LOCK kept, for
locked memory), memory locked, no core dumps, secrets never in its log."""
import os
import pwd

from svtest.fixtures_daemon import Record


def proc_status(pid):
    return dict(l.split(":", 1) for l in open("/proc/%d/status" % pid).read().splitlines()
                if ":" in l)


def test_privileges_dropped_and_memory_locked(daemon):
    st = proc_status(daemon.pid)
    nobody = pwd.getpwnam("nobody")
    assert st["Uid"].split() == [str(nobody.pw_uid)] * 4
    assert st["Gid"].split() == [str(nobody.pw_gid)] * 4
    assert st["Groups"].split() == [str(nobody.pw_gid)]
    assert int(st["CapEff"], 16) == 1 << 14  # CAP_IPC_LOCK only
    assert int(st["CapPrm"], 16) == 1 << 14
    assert int(st["CapInh"], 16) == 0
    assert st["NoNewPrivs"].strip() == "1"
    assert int(st["VmLck"].split()[0]) > 0  # mlockall
    limits = open("/proc/%d/limits" % daemon.pid).read()
    core = [l for l in limits.splitlines() if l.startswith("Max core file size")][0]
    assert core.split()[4] == "0" and core.split()[5] == "0"
    # not dumpable: /proc/PID files are owned by root, not the daemon's user
    assert os.stat("/proc/%d/mem" % daemon.pid).st_uid == 0


def test_daemon_keeps_working_after_drop_with_locked_memory(daemon):
    # allocations after the drop must not hit RLIMIT_MEMLOCK
    with daemon.client() as c:
        for i in range(30):
            r = Record({"f": "x" * 60000})
            r.stored(c.store(r.uuid, r.store_fields()))
            assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == b"x" * 60000
