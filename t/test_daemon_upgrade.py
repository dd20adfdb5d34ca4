"""A share store of schema version 1 (the release before retirement and
client roles) is upgraded in place when splitvaultd starts: nothing is
lost, what it held decrypts, STORE's new-records rule covers the records it
had, and its unfinished rotations (pending shares that do not say what they
replace) are left to reconcile. t/data/store-v1-*.sql are the version 1
schemas as they were shipped."""
import sqlite3
import threading
import time

import pytest

from svtest.core import SRC, run
from svtest.fixtures_daemon import ACTIVE, DAEMON, PENDING, WERR, Daemon, DaemonError, Record

V1 = {"sqlite3": SRC / "t" / "data" / "store-v1-sqlite3.sql",
      "pgsql": SRC / "t" / "data" / "store-v1-pgsql.sql"}


def v1_rows(rec, state=ACTIVE, first_id=1):
    """(id, uuid, field, pub hex, key2b hex, state) rows for a record."""
    return [(first_id + i, rec.uuid, f.name, f.pub.hex(), f.key2b.hex(), state)
            for i, f in enumerate(rec.fields)]


def make_v1_store(d, rows):
    now = int(time.time()) - 7200
    if d.driver == "sqlite3":
        con = sqlite3.connect(str(d.db_path))
        try:
            con.executescript(V1["sqlite3"].read_text())
            con.executemany("INSERT INTO shares (id, record_uuid, field, key2_pub, key2b, "
                            "state, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [r + (now, now) for r in rows])
            con.commit()
        finally:
            con.close()
        import os
        import pwd
        pw = pwd.getpwnam(d.user)
        os.chown(d.db_path, pw.pw_uid, pw.pw_gid)
    else:
        d.pg.create_db(d.db_name, [V1["pgsql"]])
        for i, u, f, pub, k2b, st in rows:
            d.sql("INSERT INTO shares (id, record_uuid, field, key2_pub, key2b, state, created, "
                  "updated) VALUES (%s, %s, %s, decode(%s, 'hex'), decode(%s, 'hex'), %s, %s, %s)",
                  (i, u, f, pub, k2b, st, now, now))
        d.sql("SELECT setval('shares_id_seq', 100)")


def schema_version(d):
    if d.driver == "sqlite3":
        con = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True)
        try:
            return con.execute("SELECT version FROM sv_schema").fetchone()[0]
        finally:
            con.close()
    con = d.pg.connect(d.db_name)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT version FROM sv_schema")
            return cur.fetchone()[0]
    finally:
        con.close()


@pytest.mark.log_allows(
    r"RELEASE record=\S+: \d+ item\(s\) not done \(an active share is retired",
    r"STORE record=\S+ fields=ssn refused: the record has shares already \(more",
    r"store: schema upgraded from version \d+ to \d+ \(shares are retired, not",
)
def test_version_1_store_upgraded_at_start(pki, pg, workdir, store_driver):
    d = Daemon(workdir / "d", pki, pg if store_driver == "pgsql" else None,
               driver=store_driver, db_name="svd_v1_%d" % int(time.monotonic() * 1e6))
    a = Record({"name": "from version 1", "ssn": "v1"})
    rot = Record({"name": "half rotated"})
    # a's shares active; rot's active share 3 and its pending replacement 4
    pend = Record({"name": "half rotated"}, uuid=rot.uuid)
    rows = v1_rows(a) + v1_rows(rot, first_id=3) + v1_rows(pend, PENDING, first_id=4)
    a.stored([1, 2])
    rot.stored([3])
    pend.stored([4])
    make_v1_store(d, rows)
    try:
        d.start()
        assert schema_version(d) == 3
        assert "schema upgraded from version 1 to 3" in d.log_text()
        shares = d.shares()
        assert set(shares) == {1, 2, 3, 4} and not d.retired()
        assert shares[4]["state"] == PENDING and shares[4]["replaces"] == 0
        with d.client() as c:
            # what version 1 stored decrypts, the pending share too
            assert [pt for pt, _ in c.decrypt(a.uuid, "pat", a.decrypt_fields())] == \
                [b"from version 1", b"v1"]
            assert c.decrypt(pend.uuid, "pat", pend.decrypt_fields())[0][0] == b"half rotated"
            # its records are known to STORE's new-records rule
            with pytest.raises(DaemonError) as e:
                c.store(a.uuid, [("ssn", a.fields[1].pub, a.fields[1].key2b)])
            assert e.value.code == WERR["EXISTS"]
            # the front end cannot finish a version 1 rotation (the pending
            # share does not say what it replaces): the active share stays
            c.release(rot.uuid, [("name", 3, 4)])
        assert 3 in d.live() and d.live()[4]["state"] == PENDING
        # reconcile activates the pending share the main database references
        with d.reconciler() as rc:
            rc.release(rot.uuid, [("name", 0, 4)])
        assert d.live()[4]["state"] == ACTIVE
        # new shares get new ids, above version 1's
        n = Record({"new": "x"})
        with d.client() as c:
            (nid,) = c.store(n.uuid, n.store_fields())
        assert nid > 4
        # a restart finds version 3 and changes nothing
        d.restart()
        assert schema_version(d) == 3 and d.log_text().count("schema upgraded") == 1
    finally:
        d.teardown()


@pytest.mark.log_allows(
    r"store: schema upgraded from version \d+ to \d+ \(shares are retired, not",
)
def test_two_daemons_upgrade_one_pgsql_store_once(pki, pg, workdir):
    """Daemons sharing a version 1 pgsql store start together: one
    upgrades it (under a lock), the others find it done."""
    name = "svd_v1_pair_%d" % int(time.monotonic() * 1e6)
    ds = [Daemon(workdir / ("d%d" % i), pki, pg, driver="pgsql", db_name=name)
          for i in range(3)]
    a = Record({"name": "shared"})
    make_v1_store(ds[0], v1_rows(a))
    a.stored([1])
    try:
        errors = []

        def start(d):
            try:
                d.start()
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=start, args=(d,)) for d in ds]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert schema_version(ds[0]) == 3
        assert sum(d.log_text().count("schema upgraded") for d in ds) == 1
        for d in ds:
            with d.client() as c:
                assert c.decrypt(a.uuid, "pat", a.decrypt_fields())[0][0] == b"shared"
    finally:
        for d in ds[1:]:
            d.stop()
        ds[0].teardown()


def init_store(d):
    """splitvaultd --init-store -c FILE: CompletedProcess (check=False)."""
    return run([DAEMON, "--init-store", "-c", d.conf_path], check=False)


@pytest.mark.log_allows(r"cannot start: store: schema version \d+, this splitvaultd needs \d+")
def test_init_store_creates_upgrades_and_refuses_a_newer_schema(pki, pg, workdir,
                                                                store_driver):
    """--init-store creates an absent schema (either driver) and upgrades a
    version 1 store as a start does; it and a start both refuse a store of
    a newer version."""
    pgc = pg if store_driver == "pgsql" else None
    stamp = int(time.monotonic() * 1e6)
    d = Daemon(workdir / "new", pki, pgc, driver=store_driver, db_name="svd_new_%d" % stamp)
    try:
        if pgc is not None:
            pg.create_db(d.db_name)
        p = init_store(d)
        assert p.returncode == 0 and "store schema version 3 present" in p.stdout, p.stderr
        assert schema_version(d) == 3
    finally:
        d.teardown()
    d = Daemon(workdir / "v1", pki, pgc, driver=store_driver, db_name="svd_v1i_%d" % stamp)
    make_v1_store(d, v1_rows(Record({"name": "from version 1"})))
    try:
        p = init_store(d)
        assert p.returncode == 0 and "schema upgraded from version 1 to 3" in p.stderr, p.stderr
        assert schema_version(d) == 3
        p = init_store(d)
        assert p.returncode == 0 and "schema upgraded" not in p.stderr, p.stderr
        d.sql("UPDATE sv_schema SET version = 4")
        p = init_store(d)
        assert p.returncode == 1
        assert "schema version 4, this splitvaultd needs 3 (upgrade splitvaultd)" in p.stderr
        with pytest.raises(RuntimeError):
            d.start()
        assert "schema version 4, this splitvaultd needs 3 (upgrade splitvaultd)" in \
            d.log_text()
    finally:
        d.teardown()
