"""The main database's audit table as a hash chain (schema version 4).

Real PostgreSQL, and httpd with splitvaultd where the rows come from the
module. Rows are chained by the trigger of sql/main/004_audit_chain.sql and
checked by `splitvault-admin audit-verify` (lib/sv_auditchain.c): the two
implementations of the encoding must agree. Tampering (an edited row, a
deleted one, a chain rewritten from some row on, a truncated tail) is found
and the first broken row named; the web role cannot change rows; staff
actions at the same time still give one chain; the migration chains the
rows that were there before it; the admin's audit page says what it could
check.
"""
import hashlib
import os
import re
import shutil
import struct
import threading
import time

import psycopg2
import pytest

from svtest.core import run, wait_until
from svtest.data import GOOD, UNDO_SCHEMA_4
from svtest.fixtures_httpd import ADMIN, OWNER_ROLE, SQL_MAIN, WEB_ROLE, MainDb

ZERO = bytes(32)


def verify(db, *args):
    """audit-verify as the owner role: (exit status, stdout, stderr)."""
    r = run([ADMIN, "-d", db.dsn, "audit-verify"] + [str(a) for a in args], check=False)
    return r.returncode, r.stdout, r.stderr


def broken(db, message, *args):
    """audit-verify finds the chain broken, and says message."""
    rc, out, _ = verify(db, *args)
    assert rc == 1, out
    assert message in out, out


def head(out):
    m = re.search(r"^head: (\d+):([0-9a-f]{64})$", out, re.M)
    assert m, out
    return int(m.group(1)), m.group(2)


def enc(v):
    """The canonical encoding of one value, written out apart from the C and
    SQL ones (docs/schema.md)."""
    if v is None:
        return b"\x00"
    b = v.encode()
    return b"\x01" + struct.pack(">I", len(b)) + b


def row_hash(prev, fields):
    return hashlib.sha256(b"splitvault-audit-v1" + prev
                          + b"".join(enc(f) for f in fields)).digest()


def chain_rows(db):
    return db.query(
        "SELECT id::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "actor, action, record_ref, field, outcome, address, detail, prev_hash, hash "
        "FROM audit ORDER BY audit.id")


def insert(db, n, actor="tests", action="probe", detail=None, dsn_conn=None):
    """n audit rows as the web role, with the columns the module writes."""
    conn = dsn_conn or db.connect_web()
    try:
        with conn.cursor() as cur:
            for i in range(n):
                cur.execute("INSERT INTO audit (actor, action, record_ref, field, outcome, "
                            "address, detail) VALUES (%s, %s, NULL, %s, 'ok', '127.0.0.1', %s)",
                            (actor, action, "f%d" % i if i % 2 else None,
                             detail if detail is not None else ("" if i % 3 == 0 else None)))
    finally:
        if dsn_conn is None:
            conn.close()


def superuser_exec(db, *sql):
    """Statements as the superuser with every trigger off, as one who owns
    the database server would run them."""
    conn = db.pg.connect(db.name)
    try:
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            for s in sql:
                cur.execute(s)
    finally:
        conn.close()


@pytest.fixture
def db(pg):
    d = MainDb.create(pg)
    yield d
    d.drop()


def test_trigger_and_c_agree_and_python_too(db):
    insert(db, 7, detail=None)
    insert(db, 2, actor="x" * 300, detail="with 'quotes', \u00e9, and\nnewline")
    rows = chain_rows(db)
    assert len(rows) == 9
    prev = ZERO
    for r in rows:
        assert bytes(r[9]) == prev
        assert row_hash(prev, r[:9]) == bytes(r[10])
        prev = bytes(r[10])
    rc, out, err = verify(db)
    assert rc == 0, out + err
    assert "the chain verifies: 9 rows" in out
    assert head(out) == (int(rows[-1][0]), prev.hex())


def test_empty_table_verifies(db):
    rc, out, _ = verify(db)
    assert rc == 0
    assert "no rows" in out and head(out) == (0, ZERO.hex())


def test_caller_cannot_choose_id_or_hashes(db):
    web = db.connect_web()
    try:
        with web.cursor() as cur:
            # the web role has no grant on those columns at all
            for cols, vals in (("id", "999"), ("prev_hash", "'\\x01'"), ("hash", "'\\x02'"),
                               ("at", "'2000-01-01'")):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute("INSERT INTO audit (action, outcome, %s) VALUES "
                                "('probe', 'ok', %s)" % (cols, vals))
    finally:
        web.close()
    # the owner has: the trigger replaces what it gave, the time included
    owner = db.pg.connect(db.name, db.owner)
    try:
        with owner.cursor() as cur:
            cur.execute("INSERT INTO audit (id, at, action, outcome, prev_hash, hash) VALUES "
                        "(999, '2000-01-01', 'probe', 'ok', '\\x01', '\\x02')")
    finally:
        owner.close()
    (rid, at, prev, h), = db.query("SELECT id, at > now() - interval '1 hour', prev_hash, hash "
                                   "FROM audit")
    assert rid != 999 and at and bytes(prev) == ZERO and len(bytes(h)) == 32
    assert verify(db)[0] == 0
    # a time that cannot be hashed alike in SQL and C is refused outright
    with pytest.raises(psycopg2.errors.CheckViolation):
        superuser_exec(db, "INSERT INTO audit (id, at, action, outcome, prev_hash, hash) "
                       "VALUES (1000, 'infinity', 'probe', 'ok', '\\x%s', '\\x%s')"
                       % (ZERO.hex(), ZERO.hex()))


def test_at_is_the_time_of_chaining(db):
    """A transaction that starts, waits, and inserts: its row takes the
    clock's time when it joins the chain, not its transaction's start, so
    no row is older than the one before it."""
    slow = db.connect_web()
    slow.autocommit = False
    try:
        with slow.cursor() as cur:
            cur.execute("SELECT now()")
            (started,), = cur.fetchall()
            insert(db, 2)                     # newer rows, committed meanwhile
            cur.execute("INSERT INTO audit (actor, action, outcome) VALUES "
                        "('slow', 'probe', 'ok') RETURNING at")
            (at,), = cur.fetchall()
        slow.commit()
    finally:
        slow.close()
    assert at > started
    ats = [r[0] for r in db.query("SELECT at FROM audit ORDER BY id")]
    assert ats == sorted(ats) and len(ats) == 3
    rc, out, _ = verify(db)
    assert rc == 0 and "warning" not in out


def rechain(db, *sql):
    """Statements with the triggers off, then every hash recomputed and the
    head moved: the chain verifies in itself."""
    superuser_exec(db, *sql, """DO $$ DECLARE r record; p bytea := '\\x%s'; BEGIN
                      FOR r IN SELECT * FROM audit ORDER BY id LOOP
                        UPDATE audit SET prev_hash = p, hash = audit_chain_hash(p, r.id, r.at,
                          r.actor, r.action, r.record_ref, r.field, r.outcome, r.address,
                          r.detail) WHERE id = r.id RETURNING hash INTO p;
                      END LOOP;
                      UPDATE audit_head SET hash = p,
                        id = (SELECT coalesce(max(id), 0) FROM audit); END $$""" % ZERO.hex())


def test_verify_warns_when_time_goes_backwards(db):
    insert(db, 4)
    ids = [int(r[0]) for r in chain_rows(db)]
    rechain(db, "UPDATE audit SET at = at - interval '3 hours' WHERE id = %d" % ids[2])
    rc, out, _ = verify(db)
    assert rc == 0, out
    assert re.search(r"warning: row %d's time \S+ is before row %d's" % (ids[2], ids[1]), out)
    assert "the chain verifies: 4 rows" in out


def test_all_reports_every_break(db):
    insert(db, 10)
    ids = [int(r[0]) for r in chain_rows(db)]
    superuser_exec(db, "UPDATE audit SET outcome = 'denied' WHERE id = %d" % ids[2],
                   "DELETE FROM audit WHERE id = %d" % ids[6],
                   "DELETE FROM audit WHERE id = %d" % ids[9])
    rc, out, _ = verify(db)
    assert rc == 1 and out.count("BROKEN") == 1
    rc, out, _ = verify(db, "--all")
    assert rc == 1, out
    assert "BROKEN at row %d: its contents do not match" % ids[2] in out
    # resynchronised on the stored hash: row 3 after the edited row links
    assert "BROKEN at row %d" % ids[3] not in out
    assert "BROKEN at row %d: prev_hash is not the hash of row %d" % (ids[7], ids[5]) in out
    assert "BROKEN after row %d: the chain head" % ids[8] in out
    assert "3 breaks found" in out


def test_hashed_columns_are_all_of_audit(db):
    """A column added to audit must be hashed too (and the tag's "-v1"
    bumped, docs/hacking.md): audit holds exactly the hashed columns."""
    cols = {r[0] for r in db.query(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'public.audit'::regclass "
        "AND attnum > 0 AND NOT attisdropped")}
    hashed = {"id", "at", "actor", "action", "record_ref", "field", "outcome", "address",
              "detail"}
    assert cols == hashed | {"prev_hash", "hash"}
    args = db.query("SELECT pg_get_function_arguments('public.audit_chain_hash'::regproc)")
    assert [a.split()[0] for a in args[0][0].split(", ")][1:] == \
        ["id", "at", "actor", "action", "record_ref", "field", "outcome", "address", "detail"]


def test_client_encoding_does_not_change_the_hashes(db):
    insert(db, 3, detail="caf\u00e9 \u00fc")
    r = run([ADMIN, "-d", db.dsn, "audit-verify"], check=False,
            env=dict(os.environ, PGCLIENTENCODING="LATIN1"))
    assert r.returncode == 0, r.stdout + r.stderr
    db.query("ALTER ROLE %s IN DATABASE %s SET client_encoding = 'LATIN1'"
             % (db.owner, db.name))
    rc, out, err = verify(db)
    assert rc == 0, out + err


WATCHDOG = """SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a
 WHERE a.xact_start < now() - interval '1 minute'
   AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted
                  AND l.relation = 'public.audit_head'::regclass)
   AND EXISTS (SELECT 1 FROM pg_stat_activity w
                WHERE a.pid = ANY (pg_blocking_pids(w.pid)))"""


def test_a_held_head_makes_waiters_fail_fast(db):
    """A web role session that inserts and never commits holds the head:
    other inserts give up after the trigger's lock_timeout (5 s) instead
    of waiting for it, whatever lock_timeout their session set."""
    holder = db.connect_web()
    holder.autocommit = False
    other = db.connect_web()
    try:
        with holder.cursor() as cur:
            cur.execute("SET statement_timeout = 0")
            cur.execute("INSERT INTO audit (action, outcome) VALUES ('probe', 'ok')")
        with other.cursor() as cur:
            cur.execute("SET lock_timeout = 0; SET statement_timeout = 0")
            t0 = time.monotonic()
            with pytest.raises(psycopg2.errors.LockNotAvailable):
                cur.execute("INSERT INTO audit (action, outcome) VALUES ('probe', 'ok')")
            assert time.monotonic() - t0 < 30
        # the watchdog of docs/operations.md ends the holder while another
        # insert waits, which then goes through
        done = []
        waiter = threading.Thread(target=lambda: done.append(insert(db, 1) or 1))
        waiter.start()
        wait_until(lambda: db.query("SELECT count(*) FROM pg_stat_activity w WHERE %s = "
                                    "ANY (pg_blocking_pids(w.pid))",
                                    (holder.get_backend_pid(),))[0][0] > 0, 4, "a waiter")
        (ended,), = db.query(WATCHDOG.replace("1 minute", "0 seconds"))
        assert ended
        waiter.join(10)
        assert done == [1]
        with pytest.raises(psycopg2.OperationalError):
            holder.commit()
    finally:
        holder.close()
        other.close()
    assert db.count("audit") == 1
    assert verify(db)[0] == 0


def test_repeatable_read_insert_after_the_head_moved_fails(db):
    """A REPEATABLE READ transaction whose snapshot predates the head's last
    move fails with a serialisation error rather than fork the chain."""
    rr = db.connect_web()
    rr.autocommit = False
    try:
        with rr.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT count(*) FROM audit")     # the snapshot
            insert(db, 1)
            with pytest.raises(psycopg2.errors.SerializationFailure):
                cur.execute("INSERT INTO audit (action, outcome) VALUES ('probe', 'ok')")
        rr.rollback()
    finally:
        rr.close()
    rc, out, _ = verify(db)
    assert rc == 0 and "1 rows" in out


def test_verify_during_concurrent_inserts(db):
    """audit-verify reads one snapshot: rows committed while it walks are
    left for the next run, never a false break."""
    insert(db, 1500)                 # more than one page
    stop = threading.Event()
    errors = []

    def writer():
        try:
            conn = db.connect_web()
            try:
                while not stop.is_set():
                    insert(db, 5, dsn_conn=conn)
            finally:
                conn.close()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(3):
            rc, out, err = verify(db)
            assert rc == 0, out + err
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    assert verify(db)[0] == 0


def test_edited_row_is_found(db):
    insert(db, 10)
    ids = [int(r[0]) for r in chain_rows(db)]
    superuser_exec(db, "UPDATE audit SET outcome = 'denied' WHERE id = %d" % ids[4])
    broken(db, "BROKEN at row %d: its contents do not match its hash" % ids[4])
    # an edit that also recomputes the row's own hash breaks the next link
    superuser_exec(db, "UPDATE audit SET hash = audit_chain_hash(prev_hash, id, at, actor, "
                   "action, record_ref, field, outcome, address, detail) WHERE id = %d"
                   % ids[4])
    broken(db, "BROKEN at row %d: prev_hash is not the hash of row %d" % (ids[5], ids[4]))


def test_deleted_rows_are_found(db):
    insert(db, 10)
    ids = [int(r[0]) for r in chain_rows(db)]
    superuser_exec(db, "DELETE FROM audit WHERE id = %d" % ids[6])
    broken(db, "BROKEN at row %d: prev_hash is not the hash of row %d" % (ids[7], ids[5]))


def test_deleted_first_and_last_rows_are_found(db):
    insert(db, 5)
    ids = [int(r[0]) for r in chain_rows(db)]
    superuser_exec(db, "DELETE FROM audit WHERE id = %d" % ids[0])
    broken(db, "BROKEN at row %d: prev_hash is not the chain's start" % ids[1])
    d2 = MainDb.create(db.pg)
    try:
        insert(d2, 5)
        ids = [int(r[0]) for r in chain_rows(d2)]
        superuser_exec(d2, "DELETE FROM audit WHERE id = %d" % ids[-1])
        broken(d2, "BROKEN after row %d: the chain head (audit_head) names row %d"
               % (ids[-2], ids[-1]))
    finally:
        d2.drop()


def test_rewritten_chain_is_found_with_an_anchor(db):
    insert(db, 6)
    rc, out, _ = verify(db)
    anchor_id, anchor_hash = head(out)
    insert(db, 3)
    assert verify(db, "--anchor", "%d:%s" % (anchor_id, anchor_hash))[0] == 0
    # whoever can switch the triggers off rewrites a row and recomputes
    # every hash after it, and the head: the chain verifies in itself
    superuser_exec(db, "UPDATE audit SET actor = 'someone else' WHERE id = %d" % (anchor_id - 2),
                   """DO $$ DECLARE r record; p bytea := '\\x%s'; BEGIN
                      FOR r IN SELECT * FROM audit ORDER BY id LOOP
                        UPDATE audit SET prev_hash = p, hash = audit_chain_hash(p, r.id, r.at,
                          r.actor, r.action, r.record_ref, r.field, r.outcome, r.address,
                          r.detail) WHERE id = r.id RETURNING hash INTO p;
                      END LOOP;
                      UPDATE audit_head SET hash = p; END $$""" % ZERO.hex())
    rc, out, _ = verify(db)
    assert rc == 0, out
    rc, out, _ = verify(db, "--anchor", "%d:%s" % (anchor_id, anchor_hash))
    assert rc == 1
    assert "BROKEN at row %d: its hash" % anchor_id in out and "not the anchor's" in out
    # an anchor past the end: rows were removed
    rc, out, _ = verify(db, "--anchor", "%d:%s" % (anchor_id + 100, anchor_hash))
    assert rc == 1 and "after the last row" in out


def test_from_and_bad_arguments(db):
    insert(db, 5)
    ids = [int(r[0]) for r in chain_rows(db)]
    rc, out, _ = verify(db, "--from", ids[2])
    assert rc == 0 and "3 rows, ids %d to %d" % (ids[2], ids[4]) in out
    superuser_exec(db, "UPDATE audit SET detail = 'x' WHERE id = %d" % ids[0])
    assert verify(db, "--from", ids[1])[0] == 0      # the edited row is before --from
    assert verify(db)[0] == 1
    for bad in (["--anchor", "12"], ["--anchor", "0:" + "00" * 32], ["--anchor", "1:abc"],
                ["--from", "-1"], ["--from", "x"], ["--bogus"], ["--from", " 1"],
                ["--from", "+1"], ["--from", " -1"], ["--from", "18446744073709551616"],
                ["--anchor", "+1:" + "00" * 32], ["--anchor", " 1:" + "00" * 32],
                ["--from", "5", "--anchor", "2:" + "00" * 32]):
        rc, _, err = verify(db, *bad)
        assert rc == 2, bad
        assert err


def test_no_chain_before_the_migration(pg, tmp_path):
    sql = tmp_path / "main"
    sql.mkdir()
    for f in sorted(SQL_MAIN.glob("00[123]_*.sql")):
        shutil.copy(f, sql)
    shutil.copy(SQL_MAIN.parent / "roles.sql", tmp_path)
    d = MainDb(pg, "main_nochain_%d" % (id(sql) % 10 ** 8), OWNER_ROLE, WEB_ROLE)
    pg.create_db(d.name)
    try:
        d.setup_roles()
        d.admin("schema", "--sql-dir", sql)
        rc, _, err = verify(d)
        assert rc == 2 and "no hash chain yet" in err
    finally:
        d.drop()


def test_migration_chains_existing_rows(pg, tmp_path):
    """Schema version 3, rows written then (ids with a gap, NULLs, '' and
    text), then `schema` to version 4: the rows are chained in id order and
    new rows follow them."""
    sql = tmp_path / "main"
    sql.mkdir()
    for f in sorted(SQL_MAIN.glob("00[123]_*.sql")):
        shutil.copy(f, sql)
    shutil.copy(SQL_MAIN.parent / "roles.sql", tmp_path)
    d = MainDb(pg, "main_mig_%d" % (id(sql) % 10 ** 8), OWNER_ROLE, WEB_ROLE)
    pg.create_db(d.name)
    try:
        d.setup_roles()
        d.admin("schema", "--sql-dir", sql)
        assert d.admin("schema-version").stdout.strip() == "3"
        insert(d, 4)
        d.query("SELECT nextval(pg_get_serial_sequence('audit', 'id'))")   # a gap
        insert(d, 3, actor=None, detail="before")
        d.admin("schema", "--sql-dir", SQL_MAIN)
        assert d.admin("schema-version").stdout.strip() == "5"
        rc, out, _ = verify(d)
        assert rc == 0 and "the chain verifies: 7 rows" in out
        insert(d, 2, actor="after")
        rows = chain_rows(d)
        assert len(rows) == 9
        prev = ZERO
        for r in rows:
            assert row_hash(prev, r[:9]) == bytes(r[10])
            prev = bytes(r[10])
        rc, out, _ = verify(d)
        assert rc == 0 and "9 rows" in out and head(out)[1] == prev.hex()
    finally:
        d.drop()


def test_rows_are_append_only(db):
    insert(db, 3)
    web = db.connect_web()
    try:
        with web.cursor() as cur:
            for sql in ("UPDATE audit SET outcome = 'x'", "DELETE FROM audit",
                        "TRUNCATE audit", "UPDATE audit_head SET id = 0",
                        "DELETE FROM audit_head", "SELECT * FROM audit_head FOR UPDATE",
                        "SELECT audit_chain_hash(prev_hash, id, at, actor, action, "
                        "record_ref, field, outcome, address, detail) FROM audit"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(sql)
            # the web role reads the hashes and the head (the audit page)
            cur.execute("SELECT id, prev_hash, hash FROM audit")
            assert len(cur.fetchall()) == 3
            cur.execute("SELECT id, hash FROM audit_head")
            assert len(cur.fetchall()) == 1
    finally:
        web.close()
    # not even the owner changes rows while the triggers are on
    owner = db.pg.connect(db.name, db.owner)
    try:
        with owner.cursor() as cur:
            for sql in ("UPDATE audit SET outcome = 'x'", "DELETE FROM audit",
                        "TRUNCATE audit", "UPDATE audit_head SET id = 0",
                        "DELETE FROM audit_head"):
                with pytest.raises(psycopg2.errors.RaiseException, match="append-only"):
                    cur.execute(sql)
    finally:
        owner.close()
    assert verify(db)[0] == 0


def test_concurrent_inserts_give_one_chain(db):
    """Many connections inserting at once, in transactions that take their
    time to commit: one chain, ids in chain order."""
    errors = []

    def worker(k):
        try:
            conn = db.connect_web()
            conn.autocommit = False
            try:
                for i in range(15):
                    with conn.cursor() as cur:
                        cur.execute("INSERT INTO audit (actor, action, outcome) "
                                    "VALUES (%s, 'probe', 'ok')", ("w%d" % k,))
                        if i % 2:
                            cur.execute("INSERT INTO audit (actor, action, outcome) "
                                        "VALUES (%s, 'probe', 'second')", ("w%d" % k,))
                    if i % 5 == 4:
                        conn.rollback()     # leaves a gap in the ids, none in the chain
                    else:
                        conn.commit()
            finally:
                conn.close()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    rows = chain_rows(db)
    assert len(rows) == 8 * 18       # 22 rows each, 4 of them rolled back
    rc, out, _ = verify(db)
    assert rc == 0, out
    assert "the chain verifies: %d rows" % len(rows) in out


# ------------------------------------------------------------ through the module

def chain_paragraph(page):
    m = re.search(r'<p class="[a-z]+" id="chain">(.*?)</p>', page.text, re.S)
    assert m, page.text
    return m.group(1)


@pytest.mark.log_allows(r"SV01802")
def test_module_rows_chain_and_the_page_says_so(sv):
    ref = sv.ref_of(sv.submit(GOOD))
    ada = sv.login("ada")
    assert sv.upload_key1(ada).status == 303
    pat = sv.login("pat")
    r = sv.decrypt(pat, ref)
    assert r.status == 200, r.text
    n = sv.db.count("audit")
    assert n >= 5                       # sign-ins, key1-upload, decrypt started and ok
    rc, out, err = verify(sv.db)
    assert rc == 0, out + err
    hid, hhash = head(out)

    page = ada.get(sv.path("/staff/audit"))
    assert page.status == 200
    p = chain_paragraph(page)
    # the page's own sign-in rows are older than the view: all of them shown
    assert "the %d rows on this page verify" % sv.db.count("audit") in p
    assert "its link to the row before it" in p
    assert "Head: <span class=\"mono\">%d:%s</span>" % (hid, hhash) in p
    assert "splitvault-admin audit-verify" in p
    only = ada.get(sv.path("/staff/audit?ref=" + ref))
    assert "filtered, the links are not checked here" in chain_paragraph(only)

    # a row edited behind the triggers' back: the page and audit-verify name it
    bad = sv.db.query("SELECT id FROM audit WHERE action = 'decrypt' AND outcome = 'ok'")[0][0]
    superuser_exec(sv.db, "UPDATE audit SET actor = 'dora' WHERE id = %d" % bad)
    p = chain_paragraph(ada.get(sv.path("/staff/audit")))
    assert "<strong>broken</strong> at row %d: its columns do not match its hash" % bad in p
    rc, out, _ = verify(sv.db)
    assert rc == 1 and "BROKEN at row %d" % bad in out
    assert re.search(r"SV01802: audit chain broken at row %d" % bad, sv.httpd.log_text())

    # a row removed: the next newer row no longer links
    superuser_exec(sv.db, "UPDATE audit SET actor = 'pat' WHERE id = %d" % bad)
    assert verify(sv.db)[0] == 0
    started = sv.db.query("SELECT id FROM audit WHERE action = 'decrypt' "
                          "AND outcome = 'started'")[0][0]
    newer = sv.db.query("SELECT min(id) FROM audit WHERE id > %s", (started,))[0][0]
    superuser_exec(sv.db, "DELETE FROM audit WHERE id = %d" % started)
    p = chain_paragraph(ada.get(sv.path("/staff/audit")))
    assert "<strong>broken</strong> at row %d: it does not link to row" % newer in p
    rc, out, _ = verify(sv.db)
    assert rc == 1 and "BROKEN at row %d: prev_hash is not the hash of row" % newer in out

    # the newest row removed: the head names it still
    superuser_exec(sv.db, "DELETE FROM audit WHERE id >= %d" % started)
    last = sv.db.query("SELECT max(id) FROM audit")[0][0]
    p = chain_paragraph(ada.get(sv.path("/staff/audit")))
    assert "<strong>broken</strong> at row %d: it is the newest row but the chain head " \
           "names row %d" % (last, bad) in p
    rc, out, _ = verify(sv.db)
    assert rc == 1 and "the chain head (audit_head) names row %d" % bad in out


def test_page_hashes_utf8_whatever_the_web_role_encoding(sv):
    """The web role set to LATIN1 (ALTER ROLE ... SET client_encoding): the
    module's connections still read UTF-8, and a row with non-ASCII text
    verifies on the page."""
    sv.db.query("ALTER ROLE %s IN DATABASE %s SET client_encoding = 'LATIN1'"
                % (sv.db.web, sv.db.name))
    insert(sv.db, 2, detail="caf\u00e9 \u00fc")
    ada = sv.login("ada")
    page = ada.get(sv.path("/staff/audit"))
    assert page.status == 200
    p = chain_paragraph(page)
    assert "broken" not in p
    assert "the %d rows on this page verify" % sv.db.count("audit") in p


def test_concurrent_staff_actions_give_one_chain(sv):
    """Staff without the admin capability try the audit page at the same
    time, through several httpd children (each refusal is an audit row),
    while an admin reads it: every row is chained, none forks the chain."""
    clients = [sv.login(n) for n in ("dora", "uma", "pat")]
    ada = sv.login("ada")
    before = sv.db.count("audit")
    start = threading.Barrier(7)
    errors = []

    def refused(c):
        try:
            start.wait(30)
            for _ in range(10):
                assert c.get(sv.path("/staff/audit")).status == 403
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def reader():
        try:
            start.wait(30)
            for _ in range(5):
                assert ada.get(sv.path("/staff/audit")).status == 200
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=refused, args=(c,)) for c in clients * 2]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sv.db.count("audit") - before == 6 * 10
    rc, out, err = verify(sv.db)
    assert rc == 0, out + err
    assert "Hash chain: the" in chain_paragraph(ada.get(sv.path("/staff/audit")))


# before schema version 5 (SV01113: no console columns yet)
@pytest.mark.log_allows(r"SV01113")
def test_schema_3_leaves_only_the_audit_page_unavailable(sv_factory):
    """On a database still at version 3 this module writes audit rows and
    serves every page but the audit page, which says it is unavailable
    (SV01111 says why); once `schema` has run it works, without a restart."""
    sv = sv_factory()
    sv.db.query(UNDO_SCHEMA_4 % {"web": sv.db.web})
    sv.httpd.stop()
    sv.httpd.start()  # connections made afresh, on version 3
    ref = sv.ref_of(sv.submit(GOOD))
    ada = sv.login("ada")
    r = ada.get(sv.path("/staff/audit"))
    assert r.status == 503 and "Audit log unavailable" in r.text
    assert "SV01111: cannot prepare svm_audit_list (the database needs schema version 4" \
        in sv.httpd.log_text()
    sv.allowed_errors.append(r"SV01111: cannot prepare svm_audit_list \(the database needs "
                             r"schema version 4")
    assert ada.get(sv.path("/staff/record/" + ref)).status == 200
    n = sv.db.count("audit")
    assert "applied schema version 4" in sv.db.admin("schema", "--sql-dir", SQL_MAIN).stdout
    r = ada.get(sv.path("/staff/audit"))
    assert r.status == 200
    assert re.search(r"the %d rows? on this page verif" % n, chain_paragraph(r))
    assert verify(sv.db)[0] == 0
