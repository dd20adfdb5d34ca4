#!/usr/bin/python3
"""Run the whole SplitVault system locally for a person to try.

Starts a throwaway PostgreSQL, splitvaultd and Apache with the built module on
127.0.0.1, with a demo CA and certificates, a demo key1 and demo staff
accounts; prints where to point a browser; stops everything on Ctrl-C (or
SIGTERM) and removes its temp directory unless --keep is given.
"""
import argparse
import os
import shutil
import signal
import sys
from pathlib import Path

top = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(top / "t" / "pylib"))
os.environ.setdefault("SV_BUILDDIR", str(top / "build"))

from svtest import core  # noqa: E402
from svtest.fixtures_httpd import run_demo  # noqa: E402


def _term(signum, frame):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8443")),
                    help="HTTPS port for Apache on 127.0.0.1 (default 8443, or a free one)")
    ap.add_argument("--keep", action="store_true", help="keep the demo's temp directory")
    args = ap.parse_args()

    port = args.port
    try:
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
    except OSError:
        port = core.free_port()

    signal.signal(signal.SIGTERM, _term)
    d = core.make_workdir("splitvault-demo")
    try:
        run_demo(directory=d, port=port, wait=True)
    except KeyboardInterrupt:
        pass
    finally:
        core.stop_all()
        if args.keep:
            print("demo files kept in %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)
    print("SplitVault demo stopped.")


if __name__ == "__main__":
    main()
