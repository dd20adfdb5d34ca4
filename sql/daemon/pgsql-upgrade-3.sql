-- splitvaultd share store, PostgreSQL: schema version 2 to 3.
-- Run by splitvaultd at start (and by --init-store) inside one transaction
-- that it opens itself, holding an exclusive lock on sv_schema, after
-- checking that the store is at version 2 (so of several daemons sharing
-- the store, one upgrades it). Version 3 keeps the decrypt limiter in the
-- store (token buckets, pressure, daily budgets), shared by every daemon
-- on it. Stop every daemon of version 2 on this store first: each would
-- admit decrypts at the whole configured rate on its own. Statements end
-- with ";" at the end of a line (outside a $$ body).

-- The decrypt limiter shared by every daemon on this store (schema version
-- 3; docs/daemon.md, "Limits shared through a pgsql store"): the global
-- token bucket and the pressure in sv_limit's one row, a token bucket per
-- staff name in sv_limit_actor, and the decrypts admitted per 15-minute
-- slot (globally: scope 0, name ''; per staff name: scope 1) for the daily
-- budgets in sv_limit_budget. Times are the database's clock in
-- milliseconds, so the daemons' clocks do not matter. A NULL g_tokens is a
-- full bucket (the burst is the daemons' configuration).
CREATE TABLE sv_limit (
    id          integer PRIMARY KEY CHECK (id = 1),
    g_tokens    double precision,
    g_last_ms   bigint NOT NULL,
    pressure    integer NOT NULL,
    pressure_ms bigint NOT NULL
);

INSERT INTO sv_limit (id, g_tokens, g_last_ms, pressure, pressure_ms)
    VALUES (1, NULL, 0, 0, 0);

CREATE TABLE sv_limit_actor (
    name    text PRIMARY KEY,
    tokens  double precision NOT NULL,
    last_ms bigint NOT NULL
);

CREATE TABLE sv_limit_budget (
    scope smallint NOT NULL CHECK (scope IN (0, 1)),
    name  text NOT NULL,
    slot  bigint NOT NULL,
    n     integer NOT NULL,
    PRIMARY KEY (scope, name, slot)
);

CREATE INDEX sv_limit_budget_slot ON sv_limit_budget (slot);

-- One decrypt's admission, in one statement (its own transaction): the row
-- of sv_limit is locked first, so admissions on one store happen one after
-- another and no two daemons ever take the same token. p_mode 0: a decrypt
-- that arrives with nobody queued at its daemon (take the tokens, or count
-- one unit of pressure); 1: one that arrives behind others (pressure only);
-- 2: the head of a daemon's queue (take, no pressure). result 1: admitted
-- (tokens and budgets spent); 0: not yet, wait_ms until a token is due;
-- -1: lock down, why says why; -2: the store records a lock-down already
-- (nothing spent, nothing counted). Interval 0 is an unlimited rate;
-- budget 0 no budget; threshold 0 no lock-down on pressure.
CREATE FUNCTION sv_limit_admit(p_actor text, p_mode integer, p_g_interval bigint,
    p_g_burst integer, p_a_interval bigint, p_a_burst integer, p_g_budget bigint,
    p_a_budget bigint, p_threshold integer, p_drain bigint, p_max_actors integer,
    OUT result integer, OUT wait_ms bigint, OUT why text)
LANGUAGE plpgsql AS $$
DECLARE
    v_now  bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    v_slot bigint;
    v_l    sv_limit%ROWTYPE;
    v_a    sv_limit_actor%ROWTYPE;
    v_gt   double precision := 1;
    v_at   double precision := 1;
    v_k    bigint;
    v_n    bigint;
BEGIN
    result := 0;
    wait_ms := 0;
    why := '';
    v_slot := v_now / 900000;
    SELECT * INTO v_l FROM sv_limit WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'splitvaultd: the sv_limit row is missing';
    END IF;
    -- locked down by any daemon: one lock-down for all, not one each
    IF EXISTS (SELECT 1 FROM sv_state WHERE id = 1 AND locked) THEN
        result := -2;
        RETURN;
    END IF;
    IF p_mode <> 1 THEN
        IF p_g_interval > 0 THEN
            v_gt := least(p_g_burst::double precision, coalesce(v_l.g_tokens, p_g_burst)
                          + greatest(v_now - v_l.g_last_ms, 0)::double precision / p_g_interval);
        END IF;
        IF p_a_interval > 0 THEN
            SELECT * INTO v_a FROM sv_limit_actor WHERE name = p_actor FOR UPDATE;
            IF NOT FOUND THEN
                -- a new name starts full; a full table first forgets the
                -- names whose buckets are full again (the same as fresh)
                IF (SELECT count(*) FROM sv_limit_actor) >= p_max_actors THEN
                    DELETE FROM sv_limit_actor
                        WHERE tokens + greatest(v_now - last_ms, 0)::double precision
                              / p_a_interval >= p_a_burst;
                END IF;
                IF (SELECT count(*) FROM sv_limit_actor) >= p_max_actors THEN
                    v_at := 0;
                    wait_ms := 1000;
                ELSE
                    INSERT INTO sv_limit_actor (name, tokens, last_ms)
                        VALUES (p_actor, p_a_burst, v_now) ON CONFLICT (name) DO NOTHING;
                    SELECT * INTO v_a FROM sv_limit_actor WHERE name = p_actor FOR UPDATE;
                END IF;
            END IF;
            IF wait_ms = 0 THEN
                v_at := least(p_a_burst::double precision, v_a.tokens
                              + greatest(v_now - v_a.last_ms, 0)::double precision / p_a_interval);
            END IF;
        END IF;
        IF v_gt >= 1 AND v_at >= 1 THEN
            IF p_g_budget > 0 THEN
                SELECT coalesce(sum(n), 0) INTO v_n FROM sv_limit_budget
                    WHERE scope = 0 AND name = '' AND slot > v_slot - 97;
                IF v_n + 1 > p_g_budget THEN
                    result := -1;
                    why := 'daily-budget';
                    RETURN;
                END IF;
            END IF;
            IF p_a_budget > 0 THEN
                SELECT coalesce(sum(n), 0) INTO v_n FROM sv_limit_budget
                    WHERE scope = 1 AND name = p_actor AND slot > v_slot - 97;
                IF v_n + 1 > p_a_budget THEN
                    result := -1;
                    why := 'actor-daily-budget';
                    RETURN;
                END IF;
            END IF;
            IF p_g_interval > 0 THEN
                UPDATE sv_limit SET g_tokens = v_gt - 1, g_last_ms = v_now WHERE id = 1;
            END IF;
            IF p_a_interval > 0 THEN
                UPDATE sv_limit_actor SET tokens = v_at - 1, last_ms = v_now
                    WHERE name = p_actor;
            END IF;
            INSERT INTO sv_limit_budget AS b (scope, name, slot, n)
                VALUES (0, '', v_slot, 1), (1, p_actor, v_slot, 1)
                ON CONFLICT (scope, name, slot) DO UPDATE SET n = b.n + 1;
            DELETE FROM sv_limit_budget WHERE slot <= v_slot - 97;
            result := 1;
            RETURN;
        END IF;
        IF v_gt < 1 THEN
            wait_ms := greatest(wait_ms, ceil((1 - v_gt) * p_g_interval)::bigint);
        END IF;
        IF v_at < 1 AND p_a_interval > 0 AND v_a.name IS NOT NULL THEN
            wait_ms := greatest(wait_ms, ceil((1 - v_at) * p_a_interval)::bigint);
        END IF;
        wait_ms := greatest(wait_ms, 1);
    END IF;
    IF p_mode <> 2 AND p_drain > 0 THEN
        -- pressure drains one unit per p_drain ms
        IF v_l.pressure = 0 OR v_now <= v_l.pressure_ms THEN
            IF v_l.pressure = 0 THEN
                v_l.pressure_ms := v_now;
            END IF;
        ELSE
            v_k := (v_now - v_l.pressure_ms) / p_drain;
            IF v_k >= v_l.pressure THEN
                v_l.pressure := 0;
                v_l.pressure_ms := v_now;
            ELSE
                v_l.pressure := v_l.pressure - v_k;
                v_l.pressure_ms := v_l.pressure_ms + v_k * p_drain;
            END IF;
        END IF;
        IF p_threshold > 0 AND v_l.pressure >= p_threshold THEN
            result := -1;
            why := 'decrypt-pressure';
        ELSIF v_l.pressure < 2147483647 THEN
            v_l.pressure := v_l.pressure + 1;
        END IF;
        UPDATE sv_limit SET pressure = v_l.pressure, pressure_ms = v_l.pressure_ms
            WHERE id = 1;
    END IF;
END
$$;

-- The shared state now (splitvaultctl status): the global bucket's tokens
-- (-1: unlimited), the pressure drained to now, the decrypts admitted in
-- the last 24 hours and the staff names with a bucket.
CREATE FUNCTION sv_limit_status(p_g_interval bigint, p_g_burst integer, p_drain bigint,
    OUT tokens double precision, OUT pressure bigint, OUT decrypts bigint, OUT actors bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    v_l   sv_limit%ROWTYPE;
BEGIN
    SELECT * INTO v_l FROM sv_limit WHERE id = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'splitvaultd: the sv_limit row is missing';
    END IF;
    tokens := -1;
    IF p_g_interval > 0 THEN
        tokens := least(p_g_burst::double precision, coalesce(v_l.g_tokens, p_g_burst)
                        + greatest(v_now - v_l.g_last_ms, 0)::double precision / p_g_interval);
    END IF;
    pressure := 0;
    IF p_drain > 0 THEN
        pressure := greatest(v_l.pressure - greatest(v_now - v_l.pressure_ms, 0) / p_drain, 0);
    END IF;
    SELECT coalesce(sum(n), 0) INTO decrypts FROM sv_limit_budget
        WHERE scope = 0 AND name = '' AND slot > v_now / 900000 - 97;
    SELECT count(*) INTO actors FROM sv_limit_actor;
END
$$;

UPDATE sv_schema SET version = 3, applied = now() WHERE component = 'splitvaultd';
