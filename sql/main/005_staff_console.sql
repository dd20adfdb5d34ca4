-- SplitVault main database, schema version 5: what the staff console
-- needs. Applied by `splitvault-admin schema` inside one transaction.
--
-- staff.must_change: the password was set by someone else (a new account,
-- a reset): sign-in leads only to the page where its owner changes it.
-- staff.password_changed: when the password was last set.
-- sessions.id: an opaque number the console names a session by (never the
-- token or its hash); sessions.address and sessions.user_agent: the
-- client's address and User-Agent (cut to 200 characters) at sign-in, for
-- the console's list of sessions. Existing sessions get NULL (unknown).
-- sessions.console: the session was made by a staff console
-- (SplitVaultStaffConsole On), which accepts no other; every other server
-- accepts only sessions with it false. Only the console role may write it
-- (sql/roles.sql): the web role's credentials make no console session.
-- Staff names are unique whatever their case ("ADA" beside "ada" would
-- let one pass for the other); an installation that already has such a
-- pair is refused, naming it, until one of them is renamed or removed.
DO $names$
DECLARE
    clash text;
BEGIN
    SELECT string_agg(format('%L', name), ', ' ORDER BY lower(name), name) INTO clash
    FROM staff s
    WHERE EXISTS (SELECT FROM staff o WHERE lower(o.name) = lower(s.name) AND o.id <> s.id);
    IF clash IS NOT NULL THEN
        RAISE EXCEPTION 'staff names must differ in more than case: % (rename or delete '
                        'all but one of each, then run splitvault-admin schema again)', clash;
    END IF;
END
$names$;
CREATE UNIQUE INDEX staff_name_lower_key ON staff (lower(name));
ALTER TABLE staff ADD COLUMN must_change boolean NOT NULL DEFAULT false;
ALTER TABLE staff ADD COLUMN password_changed timestamptz;
COMMENT ON COLUMN staff.must_change IS
    'the password was set by another person: it must be changed at the next sign-in';
COMMENT ON COLUMN staff.password_changed IS 'when the password was last set (NULL: before 5)';

ALTER TABLE sessions ADD COLUMN id bigserial NOT NULL UNIQUE;
ALTER TABLE sessions ADD COLUMN address text CHECK (length(address) <= 64);
ALTER TABLE sessions ADD COLUMN user_agent text CHECK (length(user_agent) <= 200);
COMMENT ON COLUMN sessions.id IS 'opaque number naming the session on the console';
COMMENT ON COLUMN sessions.address IS 'client address at sign-in (NULL: before 5)';
COMMENT ON COLUMN sessions.user_agent IS 'User-Agent at sign-in, at most 200 characters';
ALTER TABLE sessions ADD COLUMN console boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN sessions.console IS
    'made by a staff console: valid there only (and only such sessions are valid there)';

INSERT INTO schema_version (version, name) VALUES (5, 'staff-console');
