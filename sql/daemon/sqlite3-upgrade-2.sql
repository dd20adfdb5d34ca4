-- splitvaultd share store, sqlite3: schema version 1 to 2.
-- Run by splitvaultd at start (and by --init-store) inside one transaction
-- that it opens itself, after checking that the store is at version 1.
-- Version 2 retires shares instead of deleting them (retired, retired_why),
-- binds a rotation's pending share to the share it replaces (replaces), and
-- records every (record, field) a STORE made (share_fields). Pending shares
-- from version 1 have replaces = 0: a front end cannot finish their
-- rotation, and reconcile activates or retires them instead.

ALTER TABLE shares ADD COLUMN replaces INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shares ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shares ADD COLUMN retired_why TEXT NOT NULL DEFAULT '';
CREATE INDEX shares_retired ON shares (retired) WHERE retired <> 0;

CREATE TABLE share_fields (
    record_uuid TEXT NOT NULL,
    field       TEXT NOT NULL,
    created     INTEGER NOT NULL,
    PRIMARY KEY (record_uuid, field)
) WITHOUT ROWID;

INSERT INTO share_fields (record_uuid, field, created)
    SELECT record_uuid, field, MIN(created) FROM shares GROUP BY record_uuid, field;

UPDATE sv_schema SET version = 2, applied = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE component = 'splitvaultd';
