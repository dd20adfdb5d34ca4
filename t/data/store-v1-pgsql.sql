-- splitvaultd share store, PostgreSQL, schema version 1.
-- Apply once per store database (psql -f sql/daemon/pgsql.sql, or
-- `splitvaultd --init-store -c FILE`); several daemons may share it.
-- docs/daemon.md describes every column. Statements end with ";" at the end
-- of a line. A released share is deleted, key2b with it.

BEGIN;

CREATE TABLE sv_schema (
    component   text PRIMARY KEY,
    version     integer NOT NULL,
    applied     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shares (
    id          bigserial PRIMARY KEY,
    record_uuid uuid NOT NULL,
    field       text NOT NULL CHECK (field ~ '^[A-Za-z0-9_-]{1,64}$'),
    key2_pub    bytea NOT NULL CHECK (length(key2_pub) = 32),
    key2b       bytea NOT NULL CHECK (length(key2b) = 32),
    state       smallint NOT NULL CHECK (state IN (1, 2)),
    created     bigint NOT NULL,
    updated     bigint NOT NULL
);

CREATE INDEX shares_record ON shares (record_uuid);

-- Lock-down state, one row, shared by every daemon on this store.
CREATE TABLE sv_state (
    id           integer PRIMARY KEY CHECK (id = 1),
    locked       boolean NOT NULL,
    locked_since bigint NOT NULL,
    reason       text NOT NULL,
    updated      bigint NOT NULL
);

INSERT INTO sv_state (id, locked, locked_since, reason, updated)
    VALUES (1, false, 0, '', extract(epoch FROM now())::bigint);

INSERT INTO sv_schema (component, version) VALUES ('splitvaultd', 1);

COMMIT;
