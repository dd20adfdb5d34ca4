"""splitvault-admin: schema, staff accounts, key1 registration."""
import re

from svtest.core import run
from svtest.fixtures_httpd import ADMIN, Key1, MainDb


def admin(db, *args, input=None):
    return db.admin(*args, input=input, check=False)


def test_schema_apply_and_migrate(pg):
    name = "adm_schema"
    pg.create_db(name)
    db = MainDb(pg, name)
    try:
        p = admin(db, "schema-version")
        assert p.returncode == 0 and p.stdout.strip() == "0"
        p = admin(db, "schema", "--sql-dir", str(db_sql()))
        assert p.returncode == 0 and "applied schema version 1" in p.stdout
        assert "applied schema version 2" in p.stdout
        assert "applied schema version 3" in p.stdout
        assert "applied schema version 4" in p.stdout
        assert "applied schema version 5" in p.stdout
        p = admin(db, "schema", "--sql-dir", str(db_sql()))
        assert p.returncode == 0 and "up to date (version 5)" in p.stdout
        assert db.query("SELECT version, name FROM schema_version ORDER BY version") == \
            [(1, "initial"), (2, "login-throttle"), (3, "login-throttle-pairs"),
             (4, "audit-chain"), (5, "staff-console")]
        db.query("INSERT INTO schema_version (version, name) VALUES (99, 'future')")
        p = admin(db, "schema", "--sql-dir", str(db_sql()))
        assert p.returncode != 0 and "newer than these files" in p.stderr
    finally:
        db.drop()


def test_migration_2_drops_unsalted_name_keys(pg, workdir):
    """A database of version 1 loses the sign-in throttle's old name rows
    (an unsalted hash of the name) on the way to version 2; address rows
    stay, and so do the staff columns the previous module still names."""
    import shutil
    name = "adm_migrate2"
    pg.create_db(name)
    db = MainDb(pg, name)
    v1 = workdir / "sql-v1"
    v1.mkdir()
    shutil.copy(db_sql() / "001_initial.sql", v1)
    try:
        assert "applied schema version 1" in admin(db, "schema", "--sql-dir", str(v1)).stdout
        db.query("INSERT INTO login_throttle (key, failures) VALUES "
                 "('n:' || repeat('ab', 16), 2), ('a:192.0.2.1', 1), ('n:' || repeat('cd', 32), 1)")
        p = admin(db, "schema", "--sql-dir", str(db_sql()))
        assert p.returncode == 0 and "applied schema version 2" in p.stdout, p.stderr
        assert sorted(k for (k,) in db.query("SELECT key FROM login_throttle")) == \
            ["a:192.0.2.1", "n:" + "cd" * 32]
        cols = {c for (c,) in db.query("SELECT column_name FROM information_schema.columns "
                                       "WHERE table_name = 'staff'")}
        assert "failed_logins" in cols and "locked_until" in cols
    finally:
        db.drop()


def test_migration_3_separates_pending_attempts(pg, workdir):
    """A database of version 2 keeps its throttle rows on the way to
    version 3, with no attempt under way; the reservation takes a place
    under every key or under none, and pauses a key that has its limit of
    failures."""
    import shutil
    name = "adm_migrate3"
    pg.create_db(name)
    db = MainDb(pg, name)
    v2 = workdir / "sql-v2"
    v2.mkdir()
    for f in ("001_initial.sql", "002_login_throttle.sql"):
        shutil.copy(db_sql() / f, v2)
    try:
        assert "applied schema version 2" in admin(db, "schema", "--sql-dir", str(v2)).stdout
        db.query("INSERT INTO login_throttle (key, failures) VALUES ('a:192.0.2.1', 2)")
        p = admin(db, "schema", "--sql-dir", str(db_sql()))
        assert p.returncode == 0 and "applied schema version 3" in p.stdout, p.stderr
        assert db.query("SELECT key, failures, pending FROM login_throttle") == \
            [("a:192.0.2.1", 2, 0)]

        def reserve(keys, limit):
            return db.query("SELECT idx, refused, locked FROM login_throttle_reserve("
                            "%s::text[], %s::int[], %s::int[]) ORDER BY idx",
                            (keys, [600] * len(keys), [limit] * len(keys)))

        # both keys have room: a place in each
        assert reserve(["a:192.0.2.1", "n:x"], 3) == [(1, False, False), (2, False, False)]
        assert db.query("SELECT key, failures, pending FROM login_throttle ORDER BY key") == \
            [("a:192.0.2.1", 2, 1), ("n:x", 0, 1)]
        # the address's places are all taken (2 failures, 1 under way): the
        # attempt is refused and takes no place under the other key either
        assert reserve(["a:192.0.2.1", "n:x"], 3) == [(1, True, False), (2, False, False)]
        assert db.query("SELECT pending FROM login_throttle WHERE key = 'n:x'") == [(1,)]
        # that attempt fails: three failures, and the next attempt pauses the key
        db.query("UPDATE login_throttle SET failures = failures + 1, pending = pending - 1")
        assert reserve(["a:192.0.2.1", "n:y"], 3) == [(1, True, True), (2, False, False)]
        assert reserve(["a:192.0.2.1"], 3) == [(1, True, False)]
        assert db.query("SELECT count(*) FROM login_throttle WHERE key = 'n:y'") == [(1,)]
        assert db.query("SELECT pending FROM login_throttle WHERE key = 'n:y'") == [(0,)]
    finally:
        db.drop()


def test_password_in_dsn_on_command_line_warns(main_db):
    """-d with a password shows it to every user in ps: the tool warns, and
    its usage recommends SPLITVAULT_DSN with ~/.pgpass or PGPASSFILE."""
    p = run([ADMIN, "-d", main_db.dsn + " password=secret-pw", "schema-version"], check=False)
    assert p.returncode == 0 and "warning" in p.stderr and "PGPASSFILE" in p.stderr
    assert "secret-pw" not in p.stderr
    p = run([ADMIN, "-d", "postgresql://postgres:secret-pw@127.0.0.1:1/x", "schema-version"],
            check=False)
    assert "warning" in p.stderr and "secret-pw" not in p.stderr
    p = run([ADMIN, "-d", main_db.dsn, "schema-version"], check=False)
    assert p.returncode == 0 and "warning" not in p.stderr
    p = run([ADMIN, "schema-version"], check=False, env={"PATH": "/usr/bin:/bin",
                                                         "SPLITVAULT_DSN": main_db.dsn})
    assert p.returncode == 0 and p.stderr == ""
    usage = run([ADMIN, "--help"], check=False).stdout
    assert "SPLITVAULT_DSN" in usage and "PGPASSFILE" in usage and ".pgpass" in usage


def db_sql():
    from svtest.fixtures_httpd import SQL_MAIN
    return SQL_MAIN


def test_staff_accounts(main_db):
    db = main_db
    p = admin(db, "staff-add", "alice", "--update", input="a-long-password-1\n")
    assert p.returncode == 0, p.stderr
    h = db.query("SELECT pwhash, can_update, can_decrypt, can_admin FROM staff")[0]
    assert re.fullmatch(r"\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+",
                        h[0])
    assert "a-long-password-1" not in h[0] and h[1:] == (True, False, False)
    assert admin(db, "staff-add", "alice", input="another-password\n").returncode != 0
    p = admin(db, "staff-add", "bob", input="short\n")
    assert p.returncode != 0 and "at least 12 characters" in p.stderr
    # characters, not bytes: eleven of two bytes each are too few; twelve pass
    p = admin(db, "staff-add", "bob", input="\u00e9" * 11 + "\n")
    assert p.returncode != 0 and "at least 12 characters" in p.stderr
    p = admin(db, "staff-add", "ALICE", input="a-long-password-1\n")
    assert p.returncode != 0
    assert "a staff account named 'alice' exists: names are case-insensitive" in p.stderr
    p = admin(db, "staff-add", "bad name", input="a-long-password-1\n")
    assert p.returncode != 0 and "not a valid staff name" in p.stderr
    p = admin(db, "staff-add", "carol", "--superuser", input="a-long-password-1\n")
    assert p.returncode != 0
    p = admin(db, "staff-add", "dave", input="")
    assert p.returncode != 0 and "no password" in p.stderr
    assert [r[0] for r in db.query("SELECT name FROM staff")] == ["alice"]
    assert admin(db, "staff-caps", "alice", "--no-update", "--decrypt", "--admin").returncode == 0
    assert db.query("SELECT can_update, can_decrypt, can_admin FROM staff")[0] == \
        (False, True, True)
    sid = db.query("SELECT id FROM staff")[0][0]
    db.query("INSERT INTO sessions (token_hash, staff_id, expires) VALUES "
             "(decode(repeat('ab', 32), 'hex'), %s, now() + interval '1 hour')", (sid,))
    old = db.query("SELECT pwhash FROM staff")[0][0]
    assert admin(db, "staff-passwd", "alice", input="a-new-password-22\n").returncode == 0
    assert db.query("SELECT pwhash FROM staff")[0][0] != old
    assert db.count("sessions") == 0  # a new password ends the sessions
    db.query("INSERT INTO sessions (token_hash, staff_id, expires) VALUES "
             "(decode(repeat('cd', 32), 'hex'), %s, now() + interval '1 hour')", (sid,))
    assert admin(db, "staff-disable", "alice").returncode == 0
    assert db.count("sessions") == 0
    assert db.query("SELECT disabled FROM staff")[0][0] is True
    assert admin(db, "staff-enable", "alice").returncode == 0
    p = admin(db, "staff-list")
    assert p.returncode == 0 and "alice" in p.stdout
    assert admin(db, "staff-passwd", "nobody", input="a-long-password-1\n").returncode != 0


def test_password_never_on_the_command_line():
    p = run([ADMIN, "--help"], check=False)
    assert p.returncode == 0
    assert "password" in p.stdout and "--password" not in p.stdout


def test_key1_registration(main_db, workdir):
    db = main_db
    k1 = Key1(workdir / "a", passphrase="pass phrase one")
    k2 = Key1(workdir / "b", name="k2")
    p = admin(db, "key1-register", k1.pub, "--by", "ada")
    assert p.returncode == 0 and k1.fingerprint in p.stdout and "(active)" in p.stdout
    p = admin(db, "key1-register", k2.pub)
    assert p.returncode == 0 and "(active)" not in p.stdout
    rows = dict(db.query("SELECT fingerprint, active FROM key1"))
    assert rows == {k1.fingerprint: True, k2.fingerprint: False}
    pub = db.query("SELECT public_key FROM key1 WHERE fingerprint = %s", (k1.fingerprint,))[0][0]
    assert bytes(pub) == k1.public_raw()
    assert admin(db, "key1-register", k2.pub).returncode != 0  # already registered
    assert admin(db, "key1-activate", k2.fingerprint).returncode == 0
    assert dict(db.query("SELECT fingerprint, active FROM key1")) == \
        {k1.fingerprint: False, k2.fingerprint: True}
    assert admin(db, "key1-activate", "0" * 64).returncode != 0
    assert db.query("SELECT count(*) FROM key1 WHERE active")[0][0] == 1
    # the private key file, or junk, is refused
    p = admin(db, "key1-register", k1.pem)
    assert p.returncode != 0
    junk = workdir / "junk.pub"
    junk.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert admin(db, "key1-register", junk).returncode != 0
    ec = workdir / "ec.pub"
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", workdir / "ec.pem"])
    run(["openssl", "pkey", "-in", workdir / "ec.pem", "-pubout", "-out", ec])
    assert admin(db, "key1-register", ec).returncode != 0
    p = admin(db, "key1-list")
    assert p.returncode == 0 and k1.fingerprint in p.stdout


def test_no_database():
    p = run([ADMIN, "staff-list"], check=False, env={"PATH": "/usr/bin:/bin"})
    assert p.returncode != 0 and "SPLITVAULT_DSN" in p.stderr
    p = run([ADMIN, "-d", "host=127.0.0.1 port=1 dbname=x user=postgres", "staff-list"],
            check=False)
    assert p.returncode != 0 and "cannot connect" in p.stderr
