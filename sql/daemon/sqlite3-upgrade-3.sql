-- splitvaultd share store, sqlite3: schema version 2 to 3.
-- Run by splitvaultd at start (and by --init-store) inside one transaction
-- that it opens itself, after checking that the store is at version 2.
-- Version 3 keeps the decrypt limiter of a pgsql store in the store,
-- shared by the daemons on it; one daemon uses a sqlite3 store and keeps
-- its limiter in the process, so only the version changes here.

UPDATE sv_schema SET version = 3, applied = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE component = 'splitvaultd';
