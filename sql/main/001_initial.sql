-- SplitVault main database, schema version 1.
-- Applied by `splitvault-admin schema` inside one transaction, which also
-- records the version in schema_version. docs/schema.md describes every
-- table and column. No table ever holds a plaintext datum, key1's private
-- half, sk2, key2a in clear or key2b.

CREATE TABLE schema_version (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied     timestamptz NOT NULL DEFAULT now()
);

-- Staff accounts. Capabilities are separate flags (separation of duties).
CREATE TABLE staff (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE
                    CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    pwhash          text NOT NULL CHECK (pwhash LIKE '$argon2id$%'),
    can_update      boolean NOT NULL DEFAULT false,
    can_decrypt     boolean NOT NULL DEFAULT false,
    can_admin       boolean NOT NULL DEFAULT false,
    disabled        boolean NOT NULL DEFAULT false,
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    last_login      timestamptz,
    created         timestamptz NOT NULL DEFAULT now(),
    updated         timestamptz NOT NULL DEFAULT now()
);

-- Staff sessions. Only SHA-256 of the session token is stored: a dump of
-- this table does not let anyone sign in.
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    staff_id    bigint NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    created     timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    expires     timestamptz NOT NULL
);
CREATE INDEX sessions_staff_idx ON sessions (staff_id);
CREATE INDEX sessions_expires_idx ON sessions (expires);

-- Failed sign-ins per client address and per submitted staff name (known
-- or not, so that throttling does not reveal which names exist).
-- key is 'a:<address>' or 'n:<lower-cased name>'.
CREATE TABLE login_throttle (
    key             text PRIMARY KEY,
    failures        integer NOT NULL DEFAULT 0,
    first_failure   timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz
);

-- key1 public keys. Exactly one is active: intake wraps key2a to it.
CREATE TABLE key1 (
    fingerprint char(64) PRIMARY KEY CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    public_key  bytea NOT NULL UNIQUE CHECK (octet_length(public_key) = 32),
    active      boolean NOT NULL DEFAULT false,
    created     timestamptz NOT NULL DEFAULT now(),
    created_by  text
);
CREATE UNIQUE INDEX key1_one_active ON key1 (active) WHERE active;

-- One record per submission: metadata only.
CREATE TABLE records (
    id          bigserial PRIMARY KEY,
    uuid        uuid NOT NULL UNIQUE,
    ref         text NOT NULL UNIQUE CHECK (ref ~ '^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$'),
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz,
    updated_by  text
);
CREATE INDEX records_created_idx ON records (created);

-- One row per field value: the datum sealed to key2 public (enc, ct), the
-- daemon's share id for key2b, and key2a sealed to key1 (wrap_enc, wrap_ct).
-- version grows on every change of the row; updates and rotations change a
-- row only WHERE share_id and key2_pub still are what they sealed to.
CREATE TABLE fields (
    record_id   bigint NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
    key2_pub    bytea NOT NULL CHECK (octet_length(key2_pub) = 32),
    enc         bytea NOT NULL CHECK (octet_length(enc) = 32),
    ct          bytea NOT NULL CHECK (octet_length(ct) >= 16),
    share_id    bigint NOT NULL CHECK (share_id > 0),
    wrap_enc    bytea NOT NULL CHECK (octet_length(wrap_enc) = 32),
    wrap_ct     bytea NOT NULL CHECK (octet_length(wrap_ct) = 48),
    key1_fp     char(64) NOT NULL REFERENCES key1(fingerprint),
    version     integer NOT NULL DEFAULT 1,
    updated     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (record_id, name)
);
CREATE UNIQUE INDEX fields_share_idx ON fields (share_id);
CREATE INDEX fields_key1_idx ON fields (key1_fp);

-- Staff audit trail of the main side. Never holds a value.
CREATE TABLE audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text,
    action      text NOT NULL,
    record_ref  text,
    field       text,
    outcome     text NOT NULL,
    address     text,
    detail      text
);
CREATE INDEX audit_at_idx ON audit (at);
CREATE INDEX audit_record_idx ON audit (record_ref);

INSERT INTO schema_version (version, name) VALUES (1, 'initial');
