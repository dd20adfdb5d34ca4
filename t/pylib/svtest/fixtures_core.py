"""Core pytest fixtures: demo PKI, PostgreSQL cluster, temp dirs, log dumps.

- `pki`: session-wide demo PKI (svtest.core.Pki).
- `pg`: session-wide PostgreSQL cluster, started (svtest.core.PgCluster).
- `workdir`: a fresh 0755 temp dir per test (kept when SV_KEEP=1).
- `fake_daemon_factory`: make(mode) gives a svtest.fakedaemon.FakeDaemon
  (a stand-in for the daemon that fails in the way mode says), closed
  after the test.
When a test fails, what every registered log (servers' output, httpd's error
log, PostgreSQL's log) gained during that test is printed with the report.
A session in which no test passed is a failure, so a broken set-up can never
look green.
"""
import os
import shutil

import pytest

from . import core, fakedaemon, logcheck

_KEEP = os.environ.get("SV_KEEP") == "1"


@pytest.fixture(scope="session")
def session_dir():
    d = core.make_workdir("sv-session")
    yield d
    core.stop_all()
    if not _KEEP:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def pki(session_dir):
    return core.Pki(session_dir / "pki")


@pytest.fixture
def fake_daemon_factory(pki):
    made = []

    def make(mode):
        made.append(fakedaemon.FakeDaemon(mode, pki))
        return made[-1]

    yield make
    for f in made:
        f.close()


@pytest.fixture(scope="session")
def pg(session_dir):
    cluster = core.PgCluster(session_dir / "pg").start()
    yield cluster
    cluster.stop()


@pytest.fixture(autouse=True)
def _sv_logcheck(request):
    """After each test, once its servers have stopped (every fixture that
    starts one depends on workdir, which depends on this): the servers'
    logs must hold no warning or error the test did not allow
    (svtest.logcheck); then the test's directories go."""
    dirs = []
    yield dirs
    try:
        report = logcheck.check(request.node, core.registered_log_kinds(),
                                getattr(request.node, "_sv_log_offsets", {}))
    finally:
        logcheck.reset()
        if not _KEEP:
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)
    if report:
        pytest.fail(report, pytrace=False)


@pytest.fixture
def workdir(request, _sv_logcheck):
    """A fresh temp dir, removed after the test's logs are checked."""
    d = core.make_workdir("sv-" + request.node.name[:40].replace("/", "_").replace("[", "_")
                          .replace("]", "_"))
    _sv_logcheck.append(d)
    return d


def _sizes():
    out = {}
    for path in core.registered_logs():
        try:
            out[path] = os.path.getsize(path)
        except OSError:
            out[path] = 0
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item._sv_log_offsets = _sizes()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    offsets = getattr(item, "_sv_log_offsets", {})
    for path, name in core.registered_logs().items():
        try:
            with open(path, "rb") as f:
                f.seek(offsets.get(path, 0))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if not text.strip():
            continue
        lines = text.splitlines()
        if len(lines) > 200:
            lines = ["... (%d earlier lines)" % (len(lines) - 200)] + lines[-200:]
        rep.sections.append(("log %s (%s)" % (name, path), "\n".join(lines)))


def pytest_sessionfinish(session, exitstatus):
    core.stop_all()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter and core.LIFECYCLE:
        reporter.write("\n")
        reporter.write_sep("-", "servers started and stopped by the harness")
        for kind, n in sorted(core.LIFECYCLE.items()):
            reporter.write_line("%-24s started %4d  stopped %4d" % (kind, n["started"], n["stopped"]))
    passed = len(reporter.stats.get("passed", [])) if reporter else 0
    if exitstatus == 0 and passed == 0:
        # Nothing ran (all skipped or deselected): never report success.
        session.exitstatus = 1
        if reporter:
            reporter.write_line("ERROR: no test passed in this run; failing it", red=True)
