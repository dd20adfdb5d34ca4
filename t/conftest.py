"""SplitVault integration tests: shared pytest set-up.

Every test starts the real parts itself (PostgreSQL, splitvaultd, httpd with
the built module) through the fixtures in t/pylib/svtest/. Build outputs are
found through SV_BUILDDIR (a VPATH build directory, default ./build).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pylib"))

pytest_plugins = [
    "svtest.fixtures_core",
    "svtest.fixtures_daemon",
    "svtest.fixtures_httpd",
    "svtest.fixtures_browser",
]
