"""splitvaultd process hardening: root dropped (only CAP_IPC_LOCK kept, for
locked memory), memory locked, no core dumps, secrets never in its log."""
import os
import pwd
import stat
import time

import pytest

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


def needs_test_hooks():
    from svtest.core import BUILD
    h = BUILD / "config.h"
    if not h.exists() or "SV_TEST_HOOKS 1" not in h.read_text():
        pytest.skip("needs a build with --enable-test-hooks")


def refused_to_start(d, env=None):
    t0 = time.monotonic()
    with pytest.raises(RuntimeError):
        d.start(timeout=10, env=env)
    assert time.monotonic() - t0 < 10
    d.proc = None
    return d.log_text()


@pytest.mark.log_allows(
    r"cannot start: control\.socket: \S+ was replaced after it was bound \(not",
)
def test_control_socket_swapped_for_a_symlink(daemon_factory, workdir):
    """Between bind() and handing the socket to the daemon's user, whoever
    holds that user could swap the node for a symlink to a file of root's;
    the daemon changes the node only through a descriptor of the socket it
    bound, so it refuses to start and the target stays root's (a test
    build makes the swap happen at that moment)."""
    needs_test_hooks()
    target = workdir / "root-file"
    target.write_text("root's\n")
    target.chmod(0o644)
    d = daemon_factory(start=False)
    log = refused_to_start(d, env=dict(os.environ, SVD_TEST_CTL_SWAP=str(target)))
    assert "was replaced after it was bound" in log
    st = os.stat(target)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o644


@pytest.mark.log_allows(
    r"cannot start: audit\.head \S+: has \d+ hard links \(a link to another",
    r"cannot start: audit\.path \S+: Too many levels of symbolic links \(a",
    r"cannot start: process\.pid_file \S+: not a regular file",
)
def test_planted_files_refused(daemon_factory, workdir):
    """Files root opens in the daemon's directory: a FIFO as pid file does
    not hang the start, a hard link as audit head and a symlink as audit
    log are refused, and their targets are not touched."""
    d = daemon_factory(start=False, extra={"process": {"pid_file": "PLACEHOLDER"}})
    pid = d.state / "splitvaultd.pid"
    d.config["process"]["pid_file"] = str(pid)
    d.write_config()
    os.mkfifo(pid)
    assert "process.pid_file %s: not a regular file" % pid in refused_to_start(d)
    pid.unlink()

    for f in (d.audit_path, d.head_path):  # made by the attempt above
        if f.exists():
            f.unlink()
    target = workdir / "root-file"
    target.write_text("")
    os.link(target, d.head_path)
    assert "has 2 hard links" in refused_to_start(d)
    assert target.read_text() == ""
    d.head_path.unlink()
    d.audit_path.unlink()

    os.symlink(target, d.audit_path)
    assert "a symbolic link: refused" in refused_to_start(d)
    assert target.read_text() == ""
    d.audit_path.unlink()
    d.start()
    assert d.pid == int(pid.read_text())
