-- splitvaultd share store, sqlite3, schema version 1.
-- The daemon creates this in a new store.path by itself (and
-- `splitvaultd --init-store -c FILE` does it explicitly). docs/daemon.md
-- describes every column. Statements end with ";" at the end of a line.
-- record_uuid is canonical lowercase text; key2_pub and key2b are lowercase
-- hex text (32 bytes each). A released share is deleted, key2b with it.

BEGIN;

CREATE TABLE sv_schema (
    component   TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    applied     INTEGER NOT NULL
);

CREATE TABLE shares (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    record_uuid TEXT NOT NULL CHECK (length(record_uuid) = 36),
    field       TEXT NOT NULL CHECK (length(field) BETWEEN 1 AND 64),
    key2_pub    TEXT NOT NULL CHECK (length(key2_pub) = 64),
    key2b       TEXT NOT NULL CHECK (length(key2b) = 64),
    state       INTEGER NOT NULL CHECK (state IN (1, 2)),
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL
);

CREATE INDEX shares_record ON shares (record_uuid);

CREATE TABLE sv_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    locked       INTEGER NOT NULL CHECK (locked IN (0, 1)),
    locked_since INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    updated      INTEGER NOT NULL
);

INSERT INTO sv_state (id, locked, locked_since, reason, updated)
    VALUES (1, 0, 0, '', CAST(strftime('%s', 'now') AS INTEGER));

INSERT INTO sv_schema (component, version, applied)
    VALUES ('splitvaultd', 1, CAST(strftime('%s', 'now') AS INTEGER));

COMMIT;
