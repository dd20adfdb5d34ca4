"""Every test fails on a warning or error in a server's log that it did not
declare.

The logs of the daemon (splitvaultd's output: `... splitvaultd[PID]:
warning: ...` and `error:`) and of httpd (its error log: `[mod:warn]`,
`[mod:error]` and worse) are registered with a kind (core.register_log).
After a test, once its servers are stopped and before its directories are
removed (fixtures_core's `_sv_logcheck`), every line such a log gained
during the test at warning level or worse must match a pattern the test
allows:

- ALWAYS below (what every test build says when it starts);
- the test's `log_allows` markers, on the test, its class or its module
  (`pytestmark`): `@pytest.mark.log_allows(r"regex", ...)`; each regex is
  searched for in the line (the daemon's lines keep their fixed message
  text, httpd's their SVnnnnn / AHnnnnn tags);
- lists a test extends while it runs: `Stack.allowed_errors` (httpd) and
  `Daemon.allowed_log`, which register themselves here (allow_list()).

Lines of a server shared by the tests of a module count for the test
during which they were written.

SV_LOG_SURVEY=FILE: instead of failing, append "nodeid<TAB>kind<TAB>line" of
every line not allowed to FILE (to write the allow-lists).
"""
import os
import re

# kind -> what a line at warning level or worse looks like
_LEVEL = {
    "daemon": re.compile(r"^\S+ splitvaultd\[\d+\]: (warning|error): "),
    "httpd": re.compile(r"\[[a-z_0-9]*:(warn|error|crit|alert|emerg)\]"),
}

# kind -> patterns allowed in every test
ALWAYS = {
    "daemon": [
        # a test build says so at start (test_module_build checks it does)
        r": warning: splitvaultd .*: built with --enable-test-hooks",
    ],
    "httpd": [
        # the same for the module (SV01010: "test build", once per start)
        r"SV01010: ",
        # the event MPM's own shutdown race (httpd 2.4.x: a keep-alive socket
        # closed by close_worker_sockets() while a worker re-adds it to the
        # pollset); later httpd checks for it
        r"\(9\)Bad file descriptor: AH03093: process_socket: apr_pollset_add failure",
        # the harness's httpd: no SSL session cache (it loads no socache
        # module), and Debian's mod_ssl built against a newer OpenSSL point
        # release than the one installed: every TLS httpd says both at start
        r"AH01873: Init: Session Cache is not configured",
        r"AH01882: Init: this version of mod_ssl was compiled against a newer library",
    ],
}

# allow-lists registered during the current test (lists, read at its end)
_LISTS = []


def allow_list(initial=()):
    """A list of patterns the current test allows (in any server's log);
    the test may extend it while it runs."""
    lst = list(initial)
    _LISTS.append(lst)
    return lst


def reset():
    """At the start of a test: forget the previous test's lists."""
    del _LISTS[:]


def marker_patterns(item):
    out = []
    for m in item.iter_markers("log_allows"):
        out.extend(m.args)
    return out


def problems(kind, text, allowed):
    """Lines of text (a log of this kind) at warning level or worse that no
    pattern of allowed (nor ALWAYS) matches."""
    level = _LEVEL.get(kind)
    if level is None:
        return []
    pats = [re.compile(p) for p in list(ALWAYS.get(kind, ())) + list(allowed)]
    return [line for line in text.splitlines()
            if level.search(line) and not any(p.search(line) for p in pats)]


def check(item, logs, offsets):
    """Check what each log of a known kind gained during the test item.
    logs: {path: (name, kind)}; offsets: {path: size at the test's start}.
    Returns the report of what is not allowed ("" when all is well)."""
    allowed = marker_patterns(item) + [p for lst in _LISTS for p in lst]
    survey = os.environ.get("SV_LOG_SURVEY")
    out = []
    for path, (name, kind) in logs.items():
        if kind not in _LEVEL:
            continue
        try:
            with open(path, "rb") as f:
                f.seek(offsets.get(path, 0))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        bad = problems(kind, text, allowed)
        if not bad:
            continue
        if survey:
            with open(survey, "a") as f:
                for line in bad:
                    f.write("%s\t%s\t%s\n" % (item.nodeid, kind, line))
            continue
        out.append("%s (%s):\n%s" % (name, path, "\n".join(bad)))
    if not out:
        return ""
    return ("unexpected warnings or errors in the servers' logs (declare the ones the "
            "test provokes with @pytest.mark.log_allows(...)):\n" + "\n".join(out))
