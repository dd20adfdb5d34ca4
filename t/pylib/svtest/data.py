"""Test data and small helpers shared by the integration tests.

One place for the values several test files submit and look for, so that a
change of the default form (fixtures_httpd.DEFAULT_FIELDS) is made once.
"""
import hpke_ref  # the reference HPKE (t/pylib/hpke_ref.py)

# A valid submission of the default form (fixtures_httpd.DEFAULT_FIELDS).
GOOD = {"name": "Jane Q. Example", "ssn": "078-05-1120", "notes": "Lorem ipsum"}
# The same as an urlencoded body, as a client that builds its own sends it.
GOOD_BODY = "name=Jane+Q+Example&ssn=078-05-1120&notes=Lorem+ipsum"

# Values that must come back exactly as typed, never as markup...
XSS = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "'><svg/onload=alert(1)>",
    "javascript:alert(1)",
    "</textarea><script>alert(1)</script>",
    "&lt;b&gt;&amp;",
    "{{7*7}}${7*7}",
]
# ...or as SQL or format strings.
SQLMETA = [
    "'; DROP TABLE records; --",
    "\" OR 1=1 --",
    "Robert'); DELETE FROM fields;--",
    "%s %d %pDb \\x00 $1 ::bytea",
    "100% \\ backslash ' quote",
]

# httpd config for tests that stand behind a proxy on 127.0.0.1 (the
# client address comes from X-Forwarded-For).
REMOTEIP = ("LoadModule remoteip_module /usr/lib/apache2/modules/mod_remoteip.so\n"
            "RemoteIPHeader X-Forwarded-For\nRemoteIPInternalProxy 127.0.0.1\n")


def raw_field(sv, ref, field):
    """The stored row of one field of record ref: (uuid, share_id, key2_pub,
    enc, ct, wrap_enc, wrap_ct, key1_fp, version)."""
    rows = sv.db.query(
        "SELECT r.uuid::text, f.share_id, f.key2_pub, f.enc, f.ct, f.wrap_enc, f.wrap_ct, "
        "f.key1_fp, f.version FROM records r JOIN fields f ON f.record_id = r.id "
        "WHERE r.ref = %s AND f.name = %s", (ref, field))
    assert len(rows) == 1
    return rows[0]


def open_field(sv, ref, field):
    """Open one stored field from the raw rows, key1's PEM and the daemon's key2b."""
    uuid, share, pub, enc, ct, wenc, wct, fp, _ = raw_field(sv, ref, field)
    assert fp == sv.key1.fingerprint
    assert len(bytes(enc)) == 32 and len(bytes(wenc)) == 32 and len(bytes(wct)) == 48
    sk1, pk1 = hpke_ref.load_key1_private_pem(sv.key1.pem.read_bytes(),
                                              sv.key1.passphrase)
    assert pk1 == sv.key1.public_raw()
    key2a = hpke_ref.unwrap_key2a(sk1, uuid, field, share, bytes(wenc), bytes(wct))
    key2b = sv.daemon.key2b(share)
    assert key2b is not None, "share %d not on the daemon" % share
    sk2 = hpke_ref.combine(key2a, key2b)
    assert hpke_ref.public_key(sk2) == bytes(pub)
    return hpke_ref.open_datum(sk2, uuid, field, bytes(enc), bytes(ct))


# A database back at schema version 4: the staff console's columns of
# version 5 undone.
UNDO_SCHEMA_5 = """
    ALTER TABLE staff DROP COLUMN must_change, DROP COLUMN password_changed;
    DROP INDEX staff_name_lower_key;
    ALTER TABLE sessions DROP COLUMN id, DROP COLUMN address, DROP COLUMN user_agent,
        DROP COLUMN console;
    DELETE FROM schema_version WHERE version = 5"""

# A database back at schema version 3: version 5 undone, the audit chain of
# version 4 undone, and the web role drawing audit ids again as it did then.
UNDO_SCHEMA_4 = UNDO_SCHEMA_5 + """;
    DROP TABLE audit_head;
    DROP TRIGGER audit_chain ON audit;
    DROP TRIGGER audit_append_only ON audit;
    DROP TRIGGER audit_no_truncate ON audit;
    DROP FUNCTION audit_chain(), audit_append_only(),
        audit_chain_hash(bytea, bigint, timestamptz, text, text, text, text, text, text, text),
        audit_chain_field(text);
    ALTER TABLE audit DROP COLUMN prev_hash, DROP COLUMN hash,
        ALTER COLUMN id SET DEFAULT nextval('audit_id_seq');
    GRANT USAGE ON SEQUENCE audit_id_seq TO "%(web)s";
    DELETE FROM schema_version WHERE version = 4"""
