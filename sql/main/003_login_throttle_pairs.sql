-- SplitVault main database, schema version 3: the sign-in throttle counts
-- failures apart from attempts still being checked, and per staff name
-- and address. Applied by `splitvault-admin schema` inside one transaction.
--
-- Until now an attempt took its place by adding one to failures before its
-- password was checked, and a successful sign-in took it back from its
-- address. Now failures only ever grow within a window: an attempt takes
-- its place in pending, and gives it back when it is checked, adding one
-- to failures when it failed. Keys (docs/schema.md):
--   'a:' the client network                 SplitVaultLoginThrottleAddress
--   'p:' HMAC of the name and the network    SplitVaultLoginThrottle
--   'n:' HMAC of the name                    SplitVaultLoginThrottleName
-- so that failures from one address pause a name for that address only,
-- and a name is paused for everyone only after failures from several.
ALTER TABLE login_throttle ADD COLUMN pending integer NOT NULL DEFAULT 0
    CHECK (pending >= 0);
ALTER TABLE login_throttle ADD COLUMN pending_until timestamptz;
COMMENT ON COLUMN login_throttle.failures IS
    'failed sign-ins in the window that began at first_failure; never decreased within it';
COMMENT ON COLUMN login_throttle.pending IS
    'attempts that took their place and whose password is still being checked';
COMMENT ON COLUMN login_throttle.pending_until IS
    'pending counts until then (a minute after the last reservation): places of attempts '
    'that never came back (a process that died) are given back after it';
COMMENT ON COLUMN login_throttle.first_failure IS
    'start of the current window (the first attempt in it)';

-- Reserve one sign-in attempt for every key at once, or for none: each
-- key i has its window (seconds) and limit. A key paused (locked_until in
-- the future) refuses. A key whose window has passed starts a new one. A
-- key with limit failures is paused now for its window (locked = true: the
-- caller logs it) and refuses; a key whose places are all taken by
-- failures and attempts under way refuses without a pause (a burst gets no
-- more checks than the limit). Only when no key refuses does the attempt
-- take a place (pending + 1) in every key; a refused attempt counts
-- nowhere, so attempts refused for one key never use up another. Attempts
-- under way keep their places across the start of a new window (their
-- failures land in it), so a window never sees more failures than its
-- limit; places not given back within a minute are dropped. The rows are
-- locked in key order, so concurrent attempts on a key take turns and
-- never deadlock.
CREATE FUNCTION login_throttle_reserve(keys text[], windows integer[], limits integer[])
RETURNS TABLE (idx integer, refused boolean, locked boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := cardinality(keys);
    t login_throttle%ROWTYPE;
    stop boolean[];
    lock_now boolean[];
    admit boolean;
    j integer;
BEGIN
    IF n IS NULL OR n = 0 OR cardinality(windows) IS DISTINCT FROM n
       OR cardinality(limits) IS DISTINCT FROM n THEN
        RAISE EXCEPTION 'login_throttle_reserve: one window and one limit per key';
    END IF;
    stop := array_fill(false, ARRAY[n]);
    lock_now := array_fill(false, ARRAY[n]);
    INSERT INTO login_throttle (key, failures, pending, first_failure)
        SELECT k, 0, 0, now() FROM unnest(keys) AS k ORDER BY k
        ON CONFLICT (key) DO NOTHING;
    PERFORM 1 FROM login_throttle WHERE key = ANY (keys) ORDER BY key FOR UPDATE;
    FOR j IN 1 .. n LOOP
        SELECT * INTO t FROM login_throttle WHERE key = keys[j];
        IF t.locked_until > now() THEN
            stop[j] := true;
            CONTINUE;
        END IF;
        IF t.pending > 0 AND (t.pending_until IS NULL OR t.pending_until <= now()) THEN
            UPDATE login_throttle SET pending = 0 WHERE key = keys[j];
            t.pending := 0;
        END IF;
        IF t.first_failure <= now() - make_interval(secs => windows[j]) THEN
            UPDATE login_throttle SET failures = 0, first_failure = now(), locked_until = NULL
             WHERE key = keys[j];
            t.failures := 0;
        END IF;
        IF t.failures >= limits[j] THEN
            UPDATE login_throttle SET locked_until = now() + make_interval(secs => windows[j])
             WHERE key = keys[j];
            stop[j] := true;
            lock_now[j] := true;
        ELSIF t.failures + t.pending >= limits[j] THEN
            stop[j] := true;
        END IF;
    END LOOP;
    admit := NOT (true = ANY (stop));
    IF admit THEN
        UPDATE login_throttle SET pending = pending + 1, pending_until = now() + interval '1 minute'
         WHERE key = ANY (keys);
    END IF;
    RETURN QUERY SELECT g, stop[g], lock_now[g] FROM generate_series(1, n) AS g;
END
$$;
COMMENT ON FUNCTION login_throttle_reserve(text[], integer[], integer[]) IS
    'sign-in throttle: take a place in every key, or in none (see 003_login_throttle_pairs.sql)';

INSERT INTO schema_version (version, name) VALUES (3, 'login-throttle-pairs');
