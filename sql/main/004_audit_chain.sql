-- SplitVault main database, schema version 4: the audit table becomes a
-- hash chain. Applied by `splitvault-admin schema` inside one transaction.
--
-- Every row carries prev_hash (the hash of the row before it in id order;
-- 32 zero bytes for the first) and hash = SHA-256 of prev_hash and the
-- row's canonical encoding (audit_chain_hash below; lib/sv_auditchain.c is
-- the same encoding in C, used by `splitvault-admin audit-verify` and the
-- admin's audit page). A BEFORE INSERT trigger fills both, and the id,
-- while it holds the one row of audit_head FOR UPDATE: inserts take turns
-- until their transaction ends, so ids grow in chain order and no two rows
-- chain to the same predecessor. The id's default is dropped: only the
-- trigger draws from the sequence, under that lock. The trigger also sets
-- at to the clock's time once it holds the lock, whoever inserts and
-- whatever the statement gave, so at never goes backwards along the chain.
-- A waiter gives up after lock_timeout (5 s): a session that holds the head
-- stalls every audited action until then, not longer. Rows are
-- append-only: UPDATE, DELETE and TRUNCATE of audit are refused by
-- triggers while they are enabled; audit_head is changed only by the
-- chaining trigger.
--
-- What this does not stop: a role that may disable the triggers (the owner
-- role, a superuser; a superuser also by session_replication_role =
-- replica) can rewrite every row and recompute the chain. Rows from before
-- this migration are chained as they stand: the chain vouches for them only
-- from the migration on. Heads
-- recorded off the system (`audit-verify --anchor`) show that; see
-- SECURITY.md and docs/operations.md.

-- No audit row is written while the existing ones are chained.
LOCK TABLE audit IN ACCESS EXCLUSIVE MODE;

-- The canonical encoding of one value: 0x00 for NULL, else 0x01, its
-- length in bytes (4, big-endian) and its UTF-8 bytes.
CREATE FUNCTION audit_chain_field(v text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(v, 'UTF8')))
                     || convert_to(v, 'UTF8') END
$$;

-- A row's hash: SHA-256 over the tag 'splitvault-audit-v1', prev_hash (32
-- bytes) and the encodings of id (decimal), at (UTC, microseconds,
-- 'YYYY-MM-DDTHH:MM:SS.uuuuuuZ'), actor, action, record_ref, field,
-- outcome, address and detail, in that order.
CREATE FUNCTION audit_chain_hash(prev bytea, id bigint, at timestamptz, actor text,
                                 action text, record_ref text, field text, outcome text,
                                 address text, detail text) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to('splitvault-audit-v1', 'UTF8') || prev
                  || audit_chain_field(id::text)
                  || audit_chain_field(to_char(at AT TIME ZONE 'UTC',
                                               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                  || audit_chain_field(actor) || audit_chain_field(action)
                  || audit_chain_field(record_ref) || audit_chain_field(field)
                  || audit_chain_field(outcome) || audit_chain_field(address)
                  || audit_chain_field(detail))
$$;

ALTER TABLE audit ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea,
                  ADD CHECK (isfinite(at));

-- The chain's head: the last row's id and hash (0 and 32 zero bytes for an
-- empty table). One row; no grant to the web role.
CREATE TABLE audit_head (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    id          bigint NOT NULL,
    hash        bytea NOT NULL CHECK (octet_length(hash) = 32)
);

-- Existing rows, in id order: the hashes computed one after the other,
-- then written in one UPDATE.
DO $chain$
DECLARE
    r       record;
    prev    bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
    h       bytea;
    last_id bigint := 0;
    ids     bigint[] := '{}';
    prevs   bytea[] := '{}';
    hashes  bytea[] := '{}';
BEGIN
    FOR r IN SELECT * FROM audit ORDER BY id LOOP
        h := audit_chain_hash(prev, r.id, r.at, r.actor, r.action, r.record_ref, r.field,
                              r.outcome, r.address, r.detail);
        ids := array_append(ids, r.id);
        prevs := array_append(prevs, prev);
        hashes := array_append(hashes, h);
        prev := h;
        last_id := r.id;
    END LOOP;
    UPDATE audit a SET prev_hash = u.p, hash = u.h
      FROM unnest(ids, prevs, hashes) AS u(i, p, h)
     WHERE a.id = u.i;
    INSERT INTO audit_head (id, hash) VALUES (last_id, prev);
END
$chain$;

ALTER TABLE audit ALTER COLUMN prev_hash SET NOT NULL,
                  ALTER COLUMN hash SET NOT NULL,
                  ADD CHECK (octet_length(prev_hash) = 32),
                  ADD CHECK (octet_length(hash) = 32),
                  ALTER COLUMN id DROP DEFAULT;
COMMENT ON COLUMN audit.prev_hash IS 'hash of the row before this one in id order (zeros: none)';
COMMENT ON COLUMN audit.hash IS
    'audit_chain_hash(prev_hash, the row): set by the trigger audit_chain';

-- Chain a new row: wait for the head, draw the id, link, move the head.
-- SECURITY DEFINER (owned by the owner role): the web role inserts rows
-- without any privilege on audit_head. Whatever id, prev_hash or hash the
-- inserting statement gave is replaced, and so is at: the time the row
-- takes its place in the chain (clock_timestamp(), not the transaction's
-- start). lock_timeout bounds the wait for the head: a transaction that
-- holds it (a web role session that never commits) makes audited actions
-- fail after 5 s instead of tying up their workers.
CREATE FUNCTION audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    h public.audit_head%ROWTYPE;
BEGIN
    SELECT * INTO h FROM public.audit_head FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit: the chain head (table audit_head) is missing';
    END IF;
    NEW.at := clock_timestamp();
    NEW.id := nextval(pg_get_serial_sequence('public.audit', 'id'));
    NEW.prev_hash := h.hash;
    NEW.hash := public.audit_chain_hash(NEW.prev_hash, NEW.id, NEW.at, NEW.actor, NEW.action,
                                 NEW.record_ref, NEW.field, NEW.outcome, NEW.address,
                                 NEW.detail);
    UPDATE public.audit_head SET id = NEW.id, hash = NEW.hash;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_chain BEFORE INSERT ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_chain();

-- Append-only: every change but the chaining insert is refused.
CREATE FUNCTION audit_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'audit_head' AND TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
        RETURN NEW; -- audit_chain moving the head
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_head_guard BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

INSERT INTO schema_version (version, name) VALUES (4, 'audit-chain');
