-- splitvaultd share store, PostgreSQL, schema version 2.
-- Apply once per store database (psql -f sql/daemon/pgsql.sql, or
-- `splitvaultd --init-store -c FILE`); several daemons may share it. A
-- version 1 store is upgraded at start by pgsql-upgrade-2.sql. docs/daemon.md
-- describes every column. Statements end with ";" at the end of a line. A
-- share that is released or deleted is retired (retired holds when), kept
-- for retention.period, then purged: its row, key2b with it, is deleted then.

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
    updated     bigint NOT NULL,
    replaces    bigint NOT NULL DEFAULT 0,
    retired     bigint NOT NULL DEFAULT 0,
    retired_why text NOT NULL DEFAULT ''
);

CREATE INDEX shares_record ON shares (record_uuid);
CREATE INDEX shares_retired ON shares (retired) WHERE retired <> 0;

-- Only a purge deletes a share, and only a retired one: a statement that
-- would delete a share in use fails (an older daemon's RELEASE, a mistake).
-- (Each statement on one line: the daemon splits scripts at a ";" that
-- ends a line.)
CREATE FUNCTION shares_delete_retired_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF OLD.retired = 0 THEN RAISE EXCEPTION 'splitvaultd: only a retired share may be deleted'; END IF; RETURN OLD; END $$;
CREATE TRIGGER shares_delete_retired_only BEFORE DELETE ON shares FOR EACH ROW EXECUTE FUNCTION shares_delete_retired_only();

-- Every record a STORE ever made shares for: a STORE naming one of them
-- again is refused (STORE makes new records only).
CREATE TABLE share_records (
    record_uuid uuid PRIMARY KEY,
    created     bigint NOT NULL
);

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

INSERT INTO sv_schema (component, version) VALUES ('splitvaultd', 2);

COMMIT;
