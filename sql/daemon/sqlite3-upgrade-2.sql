-- splitvaultd share store, sqlite3: schema version 1 to 2.
-- Run by splitvaultd at start (and by --init-store) inside one transaction
-- that it opens itself, after checking that the store is at version 1.
-- Version 2 retires shares instead of deleting them (retired, retired_why),
-- binds a rotation's pending share to the share it replaces (replaces), and
-- records every record a STORE made (share_records), and lets only retired
-- shares be deleted. Pending shares from version 1 have replaces = 0: a
-- front end can neither finish nor undo their rotation, and reconcile
-- activates or retires them instead.

ALTER TABLE shares ADD COLUMN replaces INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shares ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shares ADD COLUMN retired_why TEXT NOT NULL DEFAULT '';
CREATE INDEX shares_retired ON shares (retired) WHERE retired <> 0;

CREATE TRIGGER shares_delete_retired_only BEFORE DELETE ON shares WHEN OLD.retired = 0 BEGIN SELECT RAISE(ABORT, 'splitvaultd: only a retired share may be deleted'); END;

CREATE TABLE share_records (
    record_uuid TEXT PRIMARY KEY,
    created     INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO share_records (record_uuid, created)
    SELECT record_uuid, MIN(created) FROM shares GROUP BY record_uuid;

UPDATE sv_schema SET version = 2, applied = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE component = 'splitvaultd';
