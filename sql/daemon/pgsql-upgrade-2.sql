-- splitvaultd share store, PostgreSQL: schema version 1 to 2.
-- Run by splitvaultd at start (and by --init-store) inside one transaction
-- that it opens itself, holding an exclusive lock on sv_schema, after
-- checking that the store is at version 1 (so of several daemons sharing
-- the store, one upgrades it). Version 2 retires shares instead of
-- deleting them (retired, retired_why), binds a rotation's pending share to
-- the share it replaces (replaces), records every record a STORE made
-- (share_records), and lets only retired shares be deleted. Pending shares
-- from version 1 have replaces = 0: a front end can neither finish nor undo
-- their rotation, and reconcile activates or retires them instead. Stop
-- every daemon of version 1 on this store first: its RELEASE and reconcile
-- deletions now fail (they would delete shares in use).

ALTER TABLE shares ADD COLUMN replaces bigint NOT NULL DEFAULT 0,
    ADD COLUMN retired bigint NOT NULL DEFAULT 0,
    ADD COLUMN retired_why text NOT NULL DEFAULT '';
CREATE INDEX shares_retired ON shares (retired) WHERE retired <> 0;

CREATE FUNCTION shares_delete_retired_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF OLD.retired = 0 THEN RAISE EXCEPTION 'splitvaultd: only a retired share may be deleted'; END IF; RETURN OLD; END $$;
CREATE TRIGGER shares_delete_retired_only BEFORE DELETE ON shares FOR EACH ROW EXECUTE FUNCTION shares_delete_retired_only();

CREATE TABLE share_records (
    record_uuid uuid PRIMARY KEY,
    created     bigint NOT NULL
);

INSERT INTO share_records (record_uuid, created)
    SELECT record_uuid, min(created) FROM shares GROUP BY record_uuid;

UPDATE sv_schema SET version = 2, applied = now() WHERE component = 'splitvaultd';
