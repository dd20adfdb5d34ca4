-- splitvaultd share store, sqlite3, schema version 3.
-- The daemon creates this in a new store.path by itself (and
-- `splitvaultd --init-store -c FILE` does it explicitly); a version 1 store
-- is upgraded at start by sqlite3-upgrade-2.sql, then sqlite3-upgrade-3.sql.
-- One daemon uses a sqlite3 store: its decrypt limiter lives in the
-- process, and version 3 adds nothing here (pgsql.sql has the shared one).
-- docs/daemon.md describes every column. Statements end with ";" at the
-- end of a line.
-- record_uuid is canonical lowercase text; key2_pub and key2b are lowercase
-- hex text (32 bytes each). A share that is released or deleted is retired
-- (retired holds when), kept for retention.period, then purged: its row,
-- key2b with it, is deleted then.

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
    updated     INTEGER NOT NULL,
    replaces    INTEGER NOT NULL DEFAULT 0,
    retired     INTEGER NOT NULL DEFAULT 0,
    retired_why TEXT NOT NULL DEFAULT ''
);

CREATE INDEX shares_record ON shares (record_uuid);
CREATE INDEX shares_retired ON shares (retired) WHERE retired <> 0;

-- Only a purge deletes a share, and only a retired one: a statement that
-- would delete a share in use fails (an older daemon's RELEASE, a mistake).
CREATE TRIGGER shares_delete_retired_only BEFORE DELETE ON shares WHEN OLD.retired = 0 BEGIN SELECT RAISE(ABORT, 'splitvaultd: only a retired share may be deleted'); END;

-- Every record a STORE ever made shares for: a STORE naming one of them
-- again is refused (STORE makes new records only).
CREATE TABLE share_records (
    record_uuid TEXT PRIMARY KEY,
    created     INTEGER NOT NULL
) WITHOUT ROWID;

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
    VALUES ('splitvaultd', 3, CAST(strftime('%s', 'now') AS INTEGER));

COMMIT;
