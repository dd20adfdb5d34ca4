"""A build configured with --enable-test-hooks (the one the suite runs) says
what it is: a warning at start-up in httpd's and the daemon's logs, "test
build" in every version string, and `make install` refused before anything
is copied. A build without the hooks says none of it."""
import re
import subprocess

from svtest.core import BUILD, run
from svtest.fixtures_daemon import CTL, DAEMON
from svtest.fixtures_httpd import ADMIN, TEST_HOOKS, needs_test_hooks


def test_start_up_warning_in_both_logs(sv):
    """Once per start, at warning level (the harness's check for errors
    does not trip on it), in httpd's error log; at start in the daemon's."""
    log = sv.httpd.log_text()  # Httpd.start() waits for the end of start-up
    lines = [l for l in log.splitlines() if "SV01010" in l]
    if not TEST_HOOKS:
        assert not lines
        assert "enable-test-hooks" not in sv.daemon.log_text()
        return
    assert len(lines) == 1, lines  # not on the first, checking pass of the configuration
    assert "[splitvault:warn]" in lines[0] and "test build" in lines[0], lines
    assert "NEVER run this build in production" in lines[0]
    daemon = [l for l in sv.daemon.log_text().splitlines() if "enable-test-hooks" in l]
    assert len(daemon) == 1 and ": warning: splitvaultd " in daemon[0], daemon
    assert "test build" in daemon[0]
    # a graceful restart is a new start: said again, once
    sv.httpd.graceful_ctl()
    assert sv.httpd.log_text().count("SV01010") == 2
    assert not sv.httpd.error_lines(sv.allowed_errors)


def test_version_strings_name_a_test_build():
    outs = [run([DAEMON, "-V"]).stdout, run([DAEMON, "--version"]).stdout,
            run([CTL, "-V"]).stdout, run([CTL, "--version"]).stdout,
            run([ADMIN, "--version"]).stdout]
    for out, name in zip(outs, ["splitvaultd", "splitvaultd", "splitvaultctl",
                                "splitvaultctl", "splitvault-admin"]):
        assert re.match(r"%s \d+\.\d+\.\d+" % name, out), out
        assert ("test build" in out) == TEST_HOOKS, out


@needs_test_hooks
def test_make_install_refused_before_copying_anything(workdir):
    """`make install` (and its halves) of a test build fails with the
    reason and leaves DESTDIR untouched."""
    for target in ("install", "install-exec", "install-data", "install-strip"):
        dest = workdir / ("dest-" + target)
        p = subprocess.run(["make", "-C", str(BUILD), target, "DESTDIR=%s" % dest],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode != 0, (target, p.stdout, p.stderr)
        assert "make install: refused: this build was configured with --enable-test-hooks" \
            in p.stderr, (target, p.stderr)
        assert not dest.exists(), (target, sorted(str(x) for x in dest.rglob("*")))
