"""The main database's roles (sql/roles.sql, `splitvault-admin roles`).

The web role, which httpd connects as, may run every statement of the
module and nothing more: not create staff or change their capabilities,
passwords or state, not touch key1, not rewrite the audit trail, not alter
anything. The owner role owns everything and is what splitvault-admin uses.
The rest of the module suite runs as the web role too (the harness), which
shows the grants are enough; here they are checked to be no more than that.
"""
import re
import shutil
import subprocess

import psycopg2
import psycopg2.errors
import pytest

from svtest.core import SRC, run
from svtest.fixtures_httpd import ADMIN, SQL_MAIN, MainDb
from svtest.data import GOOD


# What the web role may do, restated from docs/schema.md: per table, the
# privilege and the columns it covers ("*": the whole table).
STAFF_READ = {"id", "name", "pwhash", "can_update", "can_decrypt", "can_admin", "disabled",
              "must_change"}
EXPECTED = {
    # read once per connection: the module chooses its statements by it
    "schema_version": {"SELECT": "*"},
    "staff": {"SELECT": STAFF_READ, "UPDATE": {"last_login"}},
    # console: read (a server accepts only its kind of session), never written
    "sessions": {"SELECT": {"token_hash", "staff_id", "last_seen", "expires", "console"},
                 "INSERT": {"token_hash", "staff_id", "expires", "address", "user_agent"},
                 "UPDATE": {"last_seen"}, "DELETE": "*"},
    "login_throttle": {"SELECT": "*", "INSERT": "*", "UPDATE": "*", "DELETE": "*"},
    "key1": {"SELECT": "*"},
    "records": {"SELECT": "*", "INSERT": {"uuid", "ref"}, "UPDATE": {"updated", "updated_by"}},
    "fields": {"SELECT": "*",
               "INSERT": {"record_id", "name", "key2_pub", "enc", "ct", "share_id", "wrap_enc",
                          "wrap_ct", "key1_fp"},
               "UPDATE": {"key2_pub", "enc", "ct", "share_id", "wrap_enc", "wrap_ct", "key1_fp",
                          "version", "updated"}},
    "audit": {"SELECT": "*",
              "INSERT": {"actor", "action", "record_ref", "field", "outcome", "address",
                         "detail"}},
    # the audit chain's head (schema version 4): read by the audit page
    "audit_head": {"SELECT": "*"},
}
# audit_id_seq: drawn by the chaining trigger as the owner (version 4)
# sessions_id_seq: a session's id is the column's default (version 5)
EXPECTED_SEQUENCES = {"records_id_seq": {"USAGE"}, "audit_id_seq": set(),
                      "staff_id_seq": set(), "sessions_id_seq": {"USAGE"}}
# What the console role may do: the web role's list and the console's own
# (docs/schema.md): staff created and changed, sessions listed.
EXPECTED_CONSOLE = dict(
    EXPECTED,
    staff={"SELECT": STAFF_READ | {"last_login", "created", "password_changed"},
           "INSERT": {"name", "pwhash", "can_update", "can_decrypt", "can_admin", "must_change",
                      "password_changed"},
           "UPDATE": {"last_login", "pwhash", "can_update", "can_decrypt", "can_admin",
                      "disabled", "must_change", "password_changed", "updated"}},
    sessions=dict(EXPECTED["sessions"],
                  SELECT=EXPECTED["sessions"]["SELECT"] | {"id", "created", "address",
                                                           "user_agent"},
                  INSERT=EXPECTED["sessions"]["INSERT"] | {"console"}))
EXPECTED_SEQUENCES_CONSOLE = dict(EXPECTED_SEQUENCES, staff_id_seq={"USAGE"})
# the columns of schema version 5
V5_COLUMNS = {"staff": {"must_change", "password_changed"},
              "sessions": {"id", "address", "user_agent", "console"}}


def before_5(expected):
    """expected without the columns schema version 5 added."""
    out = {}
    for t, privs in expected.items():
        out[t] = {}
        for p, cols in privs.items():
            if cols != "*":
                cols = cols - V5_COLUMNS.get(t, set())
            out[t][p] = cols
    return out


# before schema version 4: no chain head, and the web role drew audit ids
EXPECTED_BEFORE_4 = {t: p for t, p in before_5(EXPECTED).items() if t != "audit_head"}
EXPECTED_SEQUENCES_BEFORE_4 = {s: p for s, p in dict(EXPECTED_SEQUENCES,
                                                     audit_id_seq={"USAGE"}).items()
                               if s != "sessions_id_seq"}
TABLE_PRIVS = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
COLUMN_PRIVS = ("SELECT", "INSERT", "UPDATE", "REFERENCES")


def web_privileges(db, role):
    """{table: {privilege: "*" or set of columns}} and {sequence: set} of
    what role can do in db, by any path (has_*_privilege)."""
    tables = {}
    for (t,) in db.query("SELECT relname FROM pg_class WHERE relkind = 'r' "
                         "AND relnamespace = 'public'::regnamespace"):
        got = {}
        cols = [c for (c,) in db.query("SELECT attname FROM pg_attribute WHERE attrelid = "
                                       "%s::regclass AND attnum > 0 AND NOT attisdropped",
                                       (t,))]
        for p in TABLE_PRIVS:
            if db.query("SELECT has_table_privilege(%s, %s::regclass, %s)", (role, t, p))[0][0]:
                got[p] = "*"
            elif p in COLUMN_PRIVS:
                some = {c for c in cols if db.query(
                    "SELECT has_column_privilege(%s, %s::regclass, %s, %s)", (role, t, c, p))[0][0]}
                if some:
                    got[p] = some
        tables[t] = got
    seqs = {}
    for (s,) in db.query("SELECT relname FROM pg_class WHERE relkind = 'S' "
                         "AND relnamespace = 'public'::regnamespace"):
        seqs[s] = {p for p in ("USAGE", "SELECT", "UPDATE") if db.query(
            "SELECT has_sequence_privilege(%s, %s::regclass, %s)", (role, s, p))[0][0]}
    return tables, seqs


def snapshot(db):
    """Every table's rows (as the superuser), to show that a refused
    statement changed nothing."""
    return {t: db.query("SELECT * FROM %s ORDER BY 1, 2" % t) for t in EXPECTED}


@pytest.fixture(scope="module")
def populated(sv_shared):
    """sv_shared with a record, a staff update, a decrypt and sign-ins behind it."""
    sv = sv_shared
    r = sv.submit(GOOD)
    assert r.status == 200, r.text
    ref = sv.ref_of(r)
    c = sv.login("uma")
    page = c.get(sv.path("/staff/record/" + ref))
    assert c.post(sv.path("/staff/record/%s/update" % ref),
                  {"csrf": page.csrf(), "field": "notes", "value": "updated"}).status == 303
    assert sv.upload_key1().status == 303
    assert sv.decrypt(sv.login("pat"), ref).status == 200
    return sv


def test_web_role_holds_exactly_the_module_grants(populated):
    """Table by table, column by column, sequence by sequence: what the web
    role can do (by any path) is the documented list, no more, no less."""
    db = populated.db
    tables, seqs = web_privileges(db, db.web)
    assert tables == EXPECTED
    assert seqs == EXPECTED_SEQUENCES
    name = db.name
    assert db.query("SELECT has_database_privilege(%s, %s, 'CONNECT'), "
                    "has_database_privilege(%s, %s, 'CREATE'), "
                    "has_database_privilege(%s, %s, 'TEMPORARY'), "
                    "has_schema_privilege(%s, 'public', 'USAGE'), "
                    "has_schema_privilege(%s, 'public', 'CREATE')",
                    (db.web, name, db.web, name, db.web, name, db.web, db.web))[0] == \
        (True, False, False, True, False)
    # PUBLIC (any other role of the cluster) gets nothing at all
    acl = db.query("SELECT datacl::text FROM pg_database WHERE datname = %s", (name,))[0][0]
    assert not re.search(r'(^|[{,])=', acl), acl
    for (t, relacl) in db.query("SELECT relname, coalesce(relacl::text, '') FROM pg_class "
                                "WHERE relnamespace = 'public'::regnamespace "
                                "AND relkind IN ('r', 'S')"):
        assert not re.search(r'(^|[{,])=', relacl), (t, relacl)
    nsp = db.query("SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'")[0][0]
    assert not re.search(r'(^|[{,])=', nsp), nsp
    # the owner role owns the database and every table; the web role nothing
    assert db.query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                    (name,))[0][0] == db.owner
    owners = {o for (o,) in db.query("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
                                     "WHERE relnamespace = 'public'::regnamespace")}
    assert owners == {db.owner}
    roles = dict((r[0], r[1:]) for r in db.query(
        "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, "
        "rolbypassrls, rolpassword IS NULL FROM pg_authid WHERE rolname IN (%s, %s)",
        (db.owner, db.web)))
    assert roles == {db.owner: (True, False, False, False, False, False, True),
                     db.web: (True, False, False, False, False, False, True)}


def test_console_role_holds_exactly_its_grants(populated):
    """The console role (sql/roles.sql): the web role's list and the
    console's own, no more, no less; a login role of no other role."""
    db = populated.db
    tables, seqs = web_privileges(db, db.console)
    assert tables == EXPECTED_CONSOLE
    assert seqs == EXPECTED_SEQUENCES_CONSOLE
    assert db.query("SELECT has_database_privilege(%s, %s, 'CONNECT'), "
                    "has_database_privilege(%s, %s, 'CREATE'), "
                    "has_database_privilege(%s, %s, 'TEMPORARY'), "
                    "has_schema_privilege(%s, 'public', 'CREATE')",
                    (db.console, db.name, db.console, db.name, db.console, db.name,
                     db.console))[0] == (True, False, False, False)
    assert db.query("SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, "
                    "rolreplication, rolbypassrls, rolinherit FROM pg_roles "
                    "WHERE rolname = %s", (db.console,)) == \
        [(True, False, False, False, False, False, False)]
    assert db.query("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r "
                    "ON r.oid = m.member WHERE r.rolname = %s", (db.console,))[0][0] == 0
    assert db.query("SELECT current_setting('splitvault.console_role')")[0][0] == db.console
    # a grant beyond its list is refused by the next run, as for the web role
    db.query('GRANT UPDATE (name) ON staff TO "%s"' % db.console)
    try:
        p = db.admin("roles", "--sql-dir", SQL_MAIN, check=False)
        assert p.returncode == 0  # the owner's own grants are re-applied: revoked
        assert web_privileges(db, db.console) == (tables, seqs)
        # a member of another role could borrow its rights: refused
        db.query("CREATE ROLE sv_test_cgroup")
        db.query('GRANT sv_test_cgroup TO "%s"' % db.console)
        p = db.admin("roles", "--sql-dir", SQL_MAIN, check=False)
        assert p.returncode == 1 and "is a member of sv_test_cgroup" in p.stderr, p.stderr
    finally:
        db.query("DROP ROLE IF EXISTS sv_test_cgroup")
        db.admin("roles", "--sql-dir", SQL_MAIN)
    assert web_privileges(db, db.console) == (tables, seqs)


FORBIDDEN = [
    # staff: no account made, no capability, password or state changed
    "INSERT INTO staff (name, pwhash, can_decrypt) VALUES ('mallory', '$argon2id$x', true)",
    "UPDATE staff SET can_decrypt = true",
    "UPDATE staff SET can_admin = true WHERE name = 'dora'",
    "UPDATE staff SET pwhash = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA'",
    "UPDATE staff SET disabled = false",
    "UPDATE staff SET name = 'ada2' WHERE name = 'ada'",
    "DELETE FROM staff",
    "SELECT failed_logins, locked_until, created FROM staff",
    # key1: not replaced, activated or deleted
    "INSERT INTO key1 (fingerprint, public_key, active) VALUES "
    "(repeat('ab', 32), decode(repeat('cd', 32), 'hex'), false)",
    "UPDATE key1 SET active = false",
    "UPDATE key1 SET public_key = decode(repeat('cd', 32), 'hex')",
    "DELETE FROM key1",
    # audit: append only, and never backdated
    "UPDATE audit SET outcome = 'ok'",
    "DELETE FROM audit",
    "INSERT INTO audit (at, action, outcome) VALUES (now() - interval '1 day', 'decrypt', 'ok')",
    "INSERT INTO audit (id, action, outcome) VALUES (1000000, 'decrypt', 'ok')",
    # the audit chain's head moves only with the chaining trigger, and its
    # sequence is the trigger's
    "UPDATE audit_head SET id = 0",
    "DELETE FROM audit_head",
    "SELECT * FROM audit_head FOR UPDATE",
    "SELECT nextval('audit_id_seq')",
    # records and fields: no deletion, no re-pointing of a row
    "DELETE FROM records",
    "DELETE FROM fields",
    "UPDATE records SET uuid = '00000000-0000-4000-8000-000000000000'",
    "UPDATE records SET ref = 'AAAAA-AAAAA'",
    "UPDATE fields SET name = 'other'",
    "UPDATE fields SET record_id = record_id + 1",
    # sessions: no session stretched
    "UPDATE sessions SET expires = now() + interval '10 years'",
    "UPDATE sessions SET staff_id = (SELECT min(id) FROM staff)",
    # schema_version: read, never written
    "INSERT INTO schema_version (version, name) VALUES (99, 'future')",
    "DELETE FROM schema_version",
    "UPDATE schema_version SET version = 99",
    # sessions: no console session made or claimed (the console role's alone)
    "INSERT INTO sessions (token_hash, staff_id, expires, console) "
    "VALUES (decode(repeat('ab', 32), 'hex'), (SELECT min(id) FROM staff), now(), true)",
    "UPDATE sessions SET console = true",
    # sequences: no resetting
    "SELECT setval('audit_id_seq', 1)",
    "SELECT setval('records_id_seq', 1)",
    # no DDL, TRUNCATE or owner-only command
    "ALTER TABLE staff ADD COLUMN x int",
    "ALTER TABLE audit DISABLE TRIGGER ALL",
    "ALTER TABLE key1 DROP CONSTRAINT key1_public_key_key",
    "CREATE TABLE evil (x int)",
    "CREATE TABLE public.evil (x int)",
    "CREATE TEMP TABLE evil (x int)",
    "CREATE SCHEMA evil",
    "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE INDEX ON audit (actor)",
    "CREATE VIEW v AS SELECT 1",
    "TRUNCATE audit",
    "TRUNCATE login_throttle",
    "TRUNCATE sessions",
    "TRUNCATE fields, records CASCADE",
    "DROP TABLE audit",
    "DROP TABLE key1 CASCADE",
    "DROP SEQUENCE audit_id_seq",
    "DROP INDEX key1_one_active",
    "COMMENT ON TABLE staff IS 'x'",
    "REINDEX TABLE audit",
    "LOCK TABLE staff IN ACCESS EXCLUSIVE MODE",
    "LOCK TABLE key1 IN EXCLUSIVE MODE",
    "LOCK TABLE audit IN ACCESS EXCLUSIVE MODE",
    "ALTER SCHEMA public RENAME TO elsewhere",
    "CREATE ROLE evil",
    "CREATE EXTENSION pgcrypto",
]


@pytest.mark.parametrize("sql", FORBIDDEN)
def test_web_role_is_refused(populated, sql):
    """Each statement fails for the web role with a permission error, and
    leaves every table as it was."""
    db = populated.db
    before = snapshot(db)
    conn = psycopg2.connect(host=db.pg.host, port=db.pg.port, dbname=db.name, user=db.web)
    try:
        with conn.cursor() as cur:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(sql)
        conn.rollback()
    finally:
        conn.close()
    assert snapshot(db) == before


def test_web_role_cannot_become_more(populated):
    """Neither the web role nor the owner role can raise its own attributes
    or take the other's rights; the web role cannot act as the owner."""
    db = populated.db
    conn = db.connect_web()
    try:
        with conn.cursor() as cur:
            for sql in ("ALTER ROLE %s SUPERUSER" % db.web, "ALTER ROLE %s CREATEROLE" % db.web,
                        "SET ROLE %s" % db.owner, "GRANT %s TO %s" % (db.owner, db.web),
                        "ALTER DATABASE %s OWNER TO %s" % (db.name, db.web)):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(sql)
    finally:
        conn.close()
    conn = db.pg.connect(db.name, db.owner)
    try:
        with conn.cursor() as cur:
            for sql in ("ALTER ROLE %s SUPERUSER" % db.owner, "CREATE ROLE evil",
                        "GRANT pg_read_server_files TO %s" % db.owner):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(sql)
    finally:
        conn.close()


def module_statements():
    """Every statement mod_splitvault prepares from its table in svm_db.c,
    as (label, SQL with $n placeholders): the table and the macros it uses
    go through the C preprocessor, adjacent literals are joined, and the
    apr_dbd placeholders (%s, %pDb) are numbered."""
    src = (SRC / "mod_splitvault" / "svm_db.c").read_text()
    start = src.index("#define UTC_FMT")
    # both tables: mod_dbd's, and the one prepared on first use
    end = src.index("{ NULL, NULL, 0 }", src.index("svm_stmts_lazy[]"))
    # the core's SQL macros the table uses (the audit chain's time format)
    core = (SRC / "lib" / "sv_auditchain.h").read_text()
    macros = re.search(r"^#define SV_AUDIT_CHAIN_AT_SQL.*?\n(?:.*\\\n)*.*\n", core, re.M)
    text = macros.group(0) + re.sub(r"^#include.*$", "", src[start:end], flags=re.M) + "};\n"
    out = subprocess.run(["cpp", "-P"], input=text, capture_output=True, text=True,
                         check=True).stdout
    stmts = []
    for m in re.finditer(r'\{\s*"(svm_\w+)",\s*((?:"(?:[^"\\]|\\.)*"\s*)+)(?:,\s*\d+\s*)?\}', out):
        sql = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2)))
        sql = sql.encode().decode("unicode_escape")
        n = iter(range(1, 1000))
        stmts.append((m.group(1), re.sub(r"%pDb|%s", lambda _: "$%d" % next(n), sql)))
    return stmts


def test_web_role_may_run_every_module_statement(populated):
    """Each statement of the module's table (svm_db.c) passes PostgreSQL's
    privilege checks for the web role: PREPARE, then EXPLAIN EXECUTE,
    which checks every table and column privilege the statement needs
    (row locks included) without running it. The intake statement, built
    per form, is shown by the end-to-end test."""
    db = populated.db
    stmts = module_statements()
    labels = {l for l, _ in stmts}
    assert len(stmts) >= 25 and {"svm_staff_ok", "svm_dec_rotate", "svm_thr_reserve",
                                 "svm_audit_insert", "svm_dec_shares", "svm_audit_list",
                                 "svm_sess_touch5", "svm_con_staff_insert"} <= labels

    def check(conn, which):
        with conn.cursor() as cur:
            for i, (label, sql) in which:
                nargs = len(re.findall(r"\$\d+", sql))
                cur.execute("PREPARE s%d AS %s" % (i, sql))
                args = ", ".join(["NULL"] * nargs)
                cur.execute("EXPLAIN EXECUTE s%d%s" % (i, "(%s)" % args if nargs else ""))

    # the web role: every statement but the console's (svm_con_*); the
    # console role: every one
    web = [(i, s) for i, s in enumerate(stmts) if not s[0].startswith("svm_con_")]
    conn = db.connect_web()
    try:
        check(conn, web)
    finally:
        conn.close()
    conn = db.connect_console()
    try:
        check(conn, enumerate(stmts))
    finally:
        conn.close()
    # the web role may run none of the console's writes of staff, nor make
    # a console session, nor read what only the console lists (it may lock
    # the rows it reads, read names as sign-in does, and end sessions, as
    # sign-out does)
    assert "svm_con_sess_insert" in labels
    for i, (label, sql) in enumerate(stmts):
        if not label.startswith("svm_con_") or label in ("svm_con_own_get",
                                                         "svm_con_staff_clash",
                                                         "svm_con_staff_lock",
                                                         "svm_con_sess_end_all",
                                                         "svm_con_sess_end_one",
                                                         "svm_con_sess_end_others"):
            continue
        conn = db.connect_web()
        try:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                check(conn, [(i, (label, sql))])
        finally:
            conn.close()
    # and the same checks refuse a role with no grants: the test has teeth
    db.query("DROP ROLE IF EXISTS sv_test_nobody")
    db.query("CREATE ROLE sv_test_nobody LOGIN")
    db.query('GRANT CONNECT ON DATABASE "%s" TO sv_test_nobody' % db.name)
    db.query("GRANT USAGE ON SCHEMA public TO sv_test_nobody")
    try:
        conn = db.pg.connect(db.name, "sv_test_nobody")
        try:
            with conn.cursor() as cur:
                label, sql = next(s for s in stmts if s[0] == "svm_staff_ok")
                cur.execute("PREPARE s AS %s" % sql)
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute("EXPLAIN EXECUTE s(NULL)")
        finally:
            conn.close()
    finally:
        db.query("REVOKE ALL ON SCHEMA public FROM sv_test_nobody")
        db.query('REVOKE ALL ON DATABASE "%s" FROM sv_test_nobody' % db.name)
        db.query("DROP ROLE sv_test_nobody")


def test_module_end_to_end_as_the_web_role(sv):
    """httpd's DBDParams name the web role, and every connection the module
    holds to the main database is the web role's: intake, sign-in, update,
    decrypt and sign-out all work with its grants alone."""
    assert "user=%s" % sv.db.web in sv.httpd.dbd_params()
    assert "user=%s" % sv.db.owner not in sv.httpd.dbd_params()
    r = sv.submit(GOOD)
    assert r.status == 200, r.text
    ref = sv.ref_of(r)
    c = sv.login("pat")
    assert c.last.status == 303
    page = c.get(sv.path("/staff/record/" + ref))
    assert c.post(sv.path("/staff/record/%s/update" % ref),
                  {"csrf": page.csrf(), "field": "ssn", "value": "000-00-0000"}).status == 303
    assert sv.upload_key1().status == 303
    d = sv.decrypt(c, ref)
    assert d.status == 200 and sv.decrypted_values(d)["ssn"] == "000-00-0000"
    bad = sv.login("dora", "not the password")
    assert bad.last.status != 303
    users = {u for (u,) in sv.db.query(
        "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = %s "
        "AND pid <> pg_backend_pid()", (sv.db.name,))}
    assert users == {sv.db.web}
    actions = {a for (a,) in sv.db.query("SELECT DISTINCT action FROM audit")}
    assert {"sign-in", "update", "decrypt", "key1-upload"} <= actions
    # reconcile only reads the main database: the web role's DBDParams do
    p = run([ADMIN, "-d", sv.db.web_dsn, "reconcile", "--daemon", "127.0.0.1:%d" % sv.daemon.port,
             "--ca", sv.pki.ca_cert, "--cert", sv.pki.reconcile_cert, "--key",
             sv.pki.reconcile_key, "--grace", "0"], check=False)
    assert p.returncode == 0, p.stderr


# ------------------------------------------------------ splitvault-admin roles


def roles_db(pg, name, owner, web):
    pg.create_db(name)
    return MainDb(pg, name, owner, web)


def drop_roles(pg, *roles):
    for r in roles:
        conn = pg.connect("postgres")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r,))
                if cur.fetchall():
                    cur.execute('DROP ROLE "%s"' % r)
        finally:
            conn.close()


def test_roles_command_creates_records_and_is_idempotent(pg):
    """`roles` as the superuser creates both roles (LOGIN, no password),
    gives the database to the owner, shuts PUBLIC out; re-running it, as
    the owner too, changes nothing; other names than the recorded ones are
    refused; `schema` applies the grants after it migrates."""
    owner, web = "sv_t1_owner", "sv_t1_web"
    db = roles_db(pg, "roles_t1", owner, web)
    try:
        p = db.setup_roles()
        assert "owner role %s, web role %s, console role splitvault_console: privileges " \
            "applied" % (owner, web) in p.stdout
        assert "next: apply the schema as %s" % owner in p.stdout
        assert db.query("SELECT rolname, rolpassword IS NULL FROM pg_authid "
                        "WHERE rolname IN (%s, %s) ORDER BY 1", (owner, web)) == \
            [(owner, True), (web, True)]
        assert db.query("SELECT current_setting('splitvault.web_role'), "
                        "current_setting('splitvault.owner_role')")[0] == (web, owner)
        p = db.admin("schema", "--sql-dir", SQL_MAIN)
        assert "applied schema version 2" in p.stdout
        assert "privileges of web role %s applied (owner role %s)" % (web, owner) in p.stdout
        tables, seqs = web_privileges(db, web)
        assert tables == EXPECTED and seqs == EXPECTED_SEQUENCES
        # again, by the superuser without names, and by the owner
        p = run([ADMIN, "-d", db.super_dsn, "roles", "--sql-dir", SQL_MAIN])
        assert "owner role %s, web role %s" % (owner, web) in p.stdout
        p = db.admin("roles", "--sql-dir", SQL_MAIN)
        assert p.returncode == 0 and "next:" not in p.stdout
        assert web_privileges(db, web) == (tables, seqs)
        # drift is repaired by the next `schema`
        db.query('REVOKE INSERT ON login_throttle FROM "%s"' % web)
        db.query('GRANT DELETE ON audit TO "%s"' % web)
        p = db.admin("schema", "--sql-dir", SQL_MAIN)
        assert "up to date" in p.stdout and "privileges of web role" in p.stdout
        assert web_privileges(db, web) == (tables, seqs)
        # other names are refused, and nothing changes
        p = db.admin("roles", "--web", "sv_t1_other", "--sql-dir", SQL_MAIN, check=False)
        assert p.returncode == 1 and "was set up with splitvault.web_role = %s" % web in p.stderr
        assert not db.query("SELECT 1 FROM pg_roles WHERE rolname = 'sv_t1_other'")
        # any other role of the cluster cannot even connect
        db.query("CREATE ROLE sv_t1_stranger LOGIN")
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            pg.connect(db.name, "sv_t1_stranger").close()
        pg.connect(db.name, web).close()
    finally:
        db.drop()
        drop_roles(pg, "sv_t1_stranger", web, owner)


def test_roles_command_refuses_bad_input(pg):
    db = roles_db(pg, "roles_t2", "sv_t2_owner", "sv_t2_web")
    try:
        for args, msg in ((["--web", "Web"], "a role name is"),
                          (["--owner", "pg_owner"], "a role name is"),
                          (["--web", "x" * 64], "a role name is"),
                          (["--web", 'a"; DROP TABLE x; --'], "a role name is"),
                          (["--owner", "same", "--web", "same"], "must be two roles"),
                          (["--web"], "usage: roles"),
                          (["--nonsense"], "usage: roles")):
            p = run([ADMIN, "-d", db.super_dsn, "roles", "--sql-dir", SQL_MAIN] + args,
                    check=False)
            assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)
        # the web role may not run it (nor may anyone but a superuser the first time)
        db.query("CREATE ROLE sv_t2_web LOGIN")
        p = run([ADMIN, "-d", db.pg.dsn(db.name, "sv_t2_web"), "roles", "--owner",
                 "sv_t2_owner", "--web", "sv_t2_web", "--sql-dir", SQL_MAIN], check=False)
        assert p.returncode == 1 and "the first run needs a superuser" in p.stderr
        # a web role with more than LOGIN is refused, and the run leaves nothing
        db.query("ALTER ROLE sv_t2_web CREATEDB")
        p = db.setup_roles(check=False)
        assert p.returncode == 1 and "must have no attribute but LOGIN" in p.stderr
        assert not db.query("SELECT 1 FROM pg_roles WHERE rolname = 'sv_t2_owner'")
        assert db.query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                        (db.name,))[0][0] == "postgres"
        # so is one that could borrow rights through a role it belongs to
        db.query("ALTER ROLE sv_t2_web NOCREATEDB")
        assert db.setup_roles().returncode == 0
        db.admin("schema", "--sql-dir", SQL_MAIN)
        db.query("CREATE ROLE sv_t2_group")
        db.query("GRANT UPDATE (pwhash) ON staff TO sv_t2_group")
        db.query("GRANT sv_t2_group TO sv_t2_web")
        p = db.admin("schema", "--sql-dir", SQL_MAIN, check=False)
        assert p.returncode == 1 and "is a member of sv_t2_group" in p.stderr
        assert "were not re-applied" in p.stderr
        db.query("REVOKE sv_t2_group FROM sv_t2_web")
        # and one given more by a grantor other than the owner, which the
        # owner's REVOKE cannot take back
        db.query("GRANT USAGE ON SCHEMA public TO sv_t2_group")
        db.query("GRANT UPDATE (pwhash) ON staff TO sv_t2_group WITH GRANT OPTION")
        db.query("SET ROLE sv_t2_group; GRANT UPDATE (pwhash) ON staff TO sv_t2_web")
        p = db.admin("schema", "--sql-dir", SQL_MAIN, check=False)
        assert p.returncode == 1 and "has UPDATE on staff.pwhash" in p.stderr
        db.query("REVOKE UPDATE (pwhash) ON staff FROM sv_t2_group CASCADE")
        db.query("REVOKE USAGE ON SCHEMA public FROM sv_t2_group")
        assert db.admin("schema", "--sql-dir", SQL_MAIN).returncode == 0
    finally:
        db.drop()
        drop_roles(pg, "sv_t2_group", "sv_t2_web", "sv_t2_owner")


def test_roles_takes_over_a_database_the_module_role_owns(pg, workdir):
    """An installation from before the roles: the module's role owns the
    database and every table. `roles` with that role as the web role gives
    everything to the owner role, and the module's role keeps only its
    grants; until then `schema` says the roles are missing."""
    legacy, owner = "sv_t3_web", "sv_t3_owner"
    conn = pg.connect("postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE ROLE %s LOGIN" % legacy)
            cur.execute("CREATE DATABASE roles_t3 OWNER %s" % legacy)
    finally:
        conn.close()
    db = MainDb(pg, "roles_t3", owner, legacy)
    try:
        old = run([ADMIN, "-d", db.web_dsn, "schema", "--sql-dir", SQL_MAIN])
        assert "applied schema version 2" in old.stdout
        assert "has no web role of its own yet" in old.stderr
        db.query("INSERT INTO staff (name, pwhash, can_admin) VALUES ('ada', '$argon2id$x', true)")
        p = db.setup_roles()
        assert "owner role %s, web role %s" % (owner, legacy) in p.stdout
        assert {o for (o,) in db.query("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
                                       "WHERE relnamespace = 'public'::regnamespace")} == {owner}
        assert web_privileges(db, legacy) == (EXPECTED, EXPECTED_SEQUENCES)
        conn = db.connect_web()
        try:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                conn.cursor().execute("UPDATE staff SET can_decrypt = true")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                conn.cursor().execute("ALTER TABLE staff ADD COLUMN x int")
        finally:
            conn.close()
        assert db.query("SELECT name FROM staff") == [("ada",)]
    finally:
        db.drop()
        drop_roles(pg, legacy, owner)


def test_schema_grants_what_a_migration_adds(pg, workdir):
    """`schema` applies roles.sql (read next to the migrations' directory)
    after migrating: tables of a new version get exactly their listed
    grants, and a table that is not listed gets none (default deny)."""
    sql = workdir / "sql"
    (sql / "main").mkdir(parents=True)
    shutil.copy(SQL_MAIN / "001_initial.sql", sql / "main")
    shutil.copy(SQL_MAIN.parent / "roles.sql", sql)
    owner, web = "sv_t4_owner", "sv_t4_web"
    db = roles_db(pg, "roles_t4", owner, web)
    try:
        run([ADMIN, "-d", db.super_dsn, "roles", "--owner", owner, "--web", web,
             "--sql-dir", sql / "main"])
        p = db.admin("schema", "--sql-dir", sql / "main")
        assert "applied schema version 1" in p.stdout and "privileges of web role" in p.stdout
        assert web_privileges(db, web) == (EXPECTED_BEFORE_4, EXPECTED_SEQUENCES_BEFORE_4)
        shutil.copy(SQL_MAIN / "002_login_throttle.sql", sql / "main")
        (sql / "main" / "003_extra.sql").write_text(
            "CREATE TABLE extra (id bigserial PRIMARY KEY, note text);\n"
            "INSERT INTO schema_version (version, name) VALUES (3, 'extra');\n")
        p = db.admin("schema", "--sql-dir", sql / "main")
        assert "applied schema version 3" in p.stdout and "privileges of web role" in p.stdout
        tables, seqs = web_privileges(db, web)
        assert tables == dict(EXPECTED_BEFORE_4, extra={})
        assert seqs == dict(EXPECTED_SEQUENCES_BEFORE_4, extra_id_seq=set())
        assert db.query("SELECT pg_get_userbyid(relowner) FROM pg_class "
                        "WHERE relname = 'extra'") == [(owner,)]
        # without roles.sql next to them, `schema` migrates but says it could not grant
        (sql / "roles.sql").unlink()
        p = db.admin("schema", "--sql-dir", sql / "main", check=False)
        assert p.returncode == 1 and "roles.sql" in p.stderr
    finally:
        db.drop()
        drop_roles(pg, web, owner)


def test_no_password_in_the_roles_script():
    """Roles are made without a password, and no password is ever part of
    the script or the tool's arguments (docs/install.md sets them)."""
    text = (SQL_MAIN.parent / "roles.sql").read_text()
    assert not re.search(r"\bPASSWORD\s+'", text, re.I)
    assert not re.search(r"ENCRYPTED\s+PASSWORD", text, re.I)
    usage = run([ADMIN, "--help"]).stdout
    roles_help = usage[usage.index("  roles"):usage.index("  schema")]
    assert "password" not in roles_help.replace("without passwords", "")
    assert "--password" not in usage
