"""The staff console (SplitVaultStaffConsole On, the console role): staff
accounts, their sessions and everyone's own password on the web."""
import re
import sys
from pathlib import Path

import psycopg2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "pylib"))
from svtest.fixtures_httpd import STAFF, SQL_MAIN  # noqa: E402
from svtest.data import UNDO_SCHEMA_5  # noqa: E402


def test_smoke(sv_factory):
    sv = sv_factory(console=True)
    ada = sv.login("ada")
    r = ada.get(sv.path("/staff/console"))
    print(r.status, r.text)
    assert r.status == 200
