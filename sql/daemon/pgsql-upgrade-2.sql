-- splitvaultd share store, PostgreSQL: schema version 1 to 2.
-- Run by splitvaultd at start (and by --init-store) inside one transaction
-- that it opens itself, holding an exclusive lock on sv_schema, after
-- checking that the store is at version 1 (so of several daemons sharing
-- the store, one upgrades it). Version 2 retires shares instead of
-- deleting them (retired, retired_why), binds a rotation's pending share to
-- the share it replaces (replaces), and records every (record, field) a
-- STORE made (share_fields). Pending shares from version 1 have
-- replaces = 0: a front end cannot finish their rotation, and reconcile
-- activates or retires them instead. Stop every daemon of version 1 on this
-- store first: it would still delete shares instead of retiring them.

ALTER TABLE shares ADD COLUMN replaces bigint NOT NULL DEFAULT 0,
    ADD COLUMN retired bigint NOT NULL DEFAULT 0,
    ADD COLUMN retired_why text NOT NULL DEFAULT '';
CREATE INDEX shares_retired ON shares (retired) WHERE retired <> 0;

CREATE TABLE share_fields (
    record_uuid uuid NOT NULL,
    field       text NOT NULL,
    created     bigint NOT NULL,
    PRIMARY KEY (record_uuid, field)
);

INSERT INTO share_fields (record_uuid, field, created)
    SELECT record_uuid, field, min(created) FROM shares GROUP BY record_uuid, field;

UPDATE sv_schema SET version = 2, applied = now() WHERE component = 'splitvaultd';
