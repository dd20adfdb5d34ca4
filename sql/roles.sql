-- SplitVault main database: its three roles and what each may do.
--
-- The owner role owns the database, schema public and every object in it:
-- it is the role splitvault-admin connects as (migrations, staff accounts,
-- key1 registration and activation). The web role is the one the module's
-- DBDParams name: it holds exactly the privileges that the statements of
-- mod_splitvault/svm_db.c need, column by column where a table is only
-- partly written, and nothing else. The console role is the one a staff
-- console's DBDParams name (SplitVaultStaffConsole On, on its own server):
-- the web role's privileges and what the console's statements need to
-- manage staff accounts and sessions, column by column. docs/schema.md
-- ("Roles and privileges") gives the reason for every grant.
--
-- Role names come from the settings splitvault.owner_role,
-- splitvault.web_role and splitvault.console_role (default
-- splitvault_owner, splitvault_web and splitvault_console): roles are
-- shared by every database of a cluster, so an installation may pick its
-- own. The first run records the names in the database's settings (ALTER
-- DATABASE ... SET), so every later run uses the same roles; asking for
-- other names than the recorded ones is refused. An installation set up
-- before the console role has none until a superuser runs this again; the
-- owner role's runs leave it out until then.
--
-- Run it the first time as a superuser (`splitvault-admin roles`, or psql:
-- docs/install.md): it creates the roles that are missing, without a
-- password, makes the owner role own the database and every object of
-- schema public (an existing installation whose tables the module's role
-- owned is taken over), and takes the default privileges away from PUBLIC.
-- It is idempotent: once that is done, the owner role itself may run it
-- again, and only the privileges are re-applied. `splitvault-admin schema`
-- does so after every migration, so new tables and columns get their
-- grants (a migration adds its grants to the lists below). The web and
-- console roles must belong to no role; finally the script checks what
-- each can really do (grants by roles other than the owner, PUBLIC)
-- against its list, and fails if it can do more.
--
-- Plain SQL, one transaction, no psql meta-command: splitvault-admin sends
-- the file as it is.

SELECT set_config('splitvault.owner_role',
                  coalesce(nullif(current_setting('splitvault.owner_role', true), ''),
                           'splitvault_owner'), false),
       set_config('splitvault.web_role',
                  coalesce(nullif(current_setting('splitvault.web_role', true), ''),
                           'splitvault_web'), false),
       set_config('splitvault.console_role',
                  coalesce(nullif(current_setting('splitvault.console_role', true), ''),
                           'splitvault_console'), false);

DO $roles$
DECLARE
    owner_name  text := current_setting('splitvault.owner_role');
    web_name    text := current_setting('splitvault.web_role');
    con_name    text := current_setting('splitvault.console_role');
    con_oid     oid;
    -- the console role is set up by a superuser's run, or was recorded
    with_con    boolean;
    con_recorded boolean := false;
    rname       text;
    roid        oid;
    rgrants     text[];
    rseqs       text[];
    whole       boolean;
    db          text := current_database();
    owner_oid   oid;
    web_oid     oid;
    dbo_oid     oid := (SELECT oid FROM pg_roles WHERE rolname = 'pg_database_owner');
    kv          record;
    obj         record;
    g           text[];
    cols        text[];
    priv        text;
    col         text;
    -- What the web role may do: table, privilege, columns (empty: the whole
    -- table). Every statement of mod_splitvault/svm_db.c runs with these and
    -- no more; a migration that adds a table or a column the module uses
    -- adds its line here.
    grants      text[] := ARRAY[
        -- sign-in reads the hash and flags (must_change: sign-in leads only
        -- to the password page); success stamps last_login only
        ['staff',          'SELECT', 'id name pwhash can_update can_decrypt can_admin disabled must_change'],
        ['staff',          'UPDATE', 'last_login'],
        -- sessions: created at sign-in (with the client's address and
        -- User-Agent), touched per request, deleted at sign-out
        -- (console: a server accepts only the sessions of its kind; the
        -- web role never writes it, so it makes no console session)
        ['sessions',       'SELECT', 'token_hash staff_id last_seen expires console'],
        ['sessions',       'INSERT', 'token_hash staff_id expires address user_agent'],
        ['sessions',       'UPDATE', 'last_seen'],
        ['sessions',       'DELETE', ''],
        -- the schema's version: each connection reads it once, to choose
        -- its statements
        ['schema_version', 'SELECT', ''],
        -- the sign-in throttle is the module's own state
        ['login_throttle', 'SELECT', ''],
        ['login_throttle', 'INSERT', ''],
        ['login_throttle', 'UPDATE', ''],
        ['login_throttle', 'DELETE', ''],
        -- key1: public keys, read only
        ['key1',           'SELECT', ''],
        -- records: intake inserts, staff updates stamp updated, updated_by
        ['records',        'SELECT', ''],
        ['records',        'INSERT', 'uuid ref'],
        ['records',        'UPDATE', 'updated updated_by'],
        -- fields: intake inserts; updates and decrypt rotations rewrite the
        -- envelope, never the row's record or name
        ['fields',         'SELECT', ''],
        ['fields',         'INSERT', 'record_id name key2_pub enc ct share_id wrap_enc wrap_ct key1_fp'],
        ['fields',         'UPDATE', 'key2_pub enc ct share_id wrap_enc wrap_ct key1_fp version updated'],
        -- audit: append only; at, id, prev_hash and hash come from the
        -- chaining trigger (SECURITY DEFINER: audit_head and
        -- the id's sequence need no grant); the audit page reads the hashes
        ['audit',          'SELECT', ''],
        ['audit',          'INSERT', 'actor action record_ref field outcome address detail'],
        -- the chain's head: the audit page compares it with the newest row
        ['audit_head',     'SELECT', '']
    ];
    -- Sequences the web role draws from (table, serial column): USAGE only.
    -- audit's id comes from the chaining trigger since schema version 4
    -- (004_audit_chain.sql); before it, from the column's default (below).
    -- sessions' id (schema version 5) is the column's default at sign-in.
    sequences   text[] := ARRAY[['records', 'id'], ['sessions', 'id']];
    -- What the console role may do beyond the web role's list (the same
    -- form; a privilege on a table in both lists holds the columns of
    -- both): create staff accounts, change their capabilities, passwords
    -- and disabled, list them with their sessions, end sessions (DELETE,
    -- already the web role's); its sign-ins make console sessions
    -- (sessions.console, which only this role may write).
    console_grants text[] := ARRAY[
        ['staff',          'SELECT', 'last_login created password_changed'],
        ['staff',          'INSERT', 'name pwhash can_update can_decrypt can_admin must_change password_changed'],
        ['staff',          'UPDATE', 'pwhash can_update can_decrypt can_admin disabled must_change password_changed updated'],
        ['sessions',       'SELECT', 'id created address user_agent'],
        ['sessions',       'INSERT', 'console']
    ];
    console_seqs text[] := ARRAY[['staff', 'id']];
    -- Functions the module calls (SECURITY INVOKER: they run with the web
    -- role's own grants above): EXECUTE only.
    routines    text[] := ARRAY['login_throttle_reserve(text[], integer[], integer[])'];
    fn          text;
    seq_ok      text[] := '{}';
    recorded    int := 0;
BEGIN
    IF owner_name !~ '^[a-z_][a-z0-9_]{0,62}$' OR web_name !~ '^[a-z_][a-z0-9_]{0,62}$'
       OR con_name !~ '^[a-z_][a-z0-9_]{0,62}$'
       OR owner_name LIKE 'pg\_%' OR web_name LIKE 'pg\_%' OR con_name LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'role names must be 1 to 63 of a-z, 0-9 and _, not starting with a '
                        'digit or pg_ (owner "%", web "%", console "%")', owner_name, web_name,
                        con_name;
    END IF;
    IF to_regclass('public.audit') IS NOT NULL AND to_regclass('public.audit_head') IS NULL THEN
        sequences := sequences || ARRAY[['audit', 'id']];
    END IF;
    IF owner_name = web_name THEN
        RAISE EXCEPTION 'the owner role and the web role must be two roles (both are "%")',
                        owner_name;
    END IF;
    IF con_name IN (owner_name, web_name) THEN
        RAISE EXCEPTION 'the console role must be a role of its own, neither the owner role '
                        'nor the web role (all are "%")', con_name;
    END IF;

    -- The names this database was set up with, if any.
    FOR kv IN SELECT split_part(s, '=', 1) AS k, substr(s, strpos(s, '=') + 1) AS v
              FROM pg_db_role_setting d, unnest(d.setconfig) s
              WHERE d.setrole = 0
                AND d.setdatabase = (SELECT oid FROM pg_database WHERE datname = db)
    LOOP
        IF (kv.k = 'splitvault.owner_role' AND kv.v <> owner_name)
           OR (kv.k = 'splitvault.web_role' AND kv.v <> web_name)
           OR (kv.k = 'splitvault.console_role' AND kv.v <> con_name) THEN
            RAISE EXCEPTION 'database % was set up with % = %, not %', db, kv.k, kv.v,
                  CASE kv.k WHEN 'splitvault.owner_role' THEN owner_name
                            WHEN 'splitvault.web_role' THEN web_name ELSE con_name END
                  USING HINT = 'To move to another role, take everything from the old one '
                               'first (REASSIGN OWNED, DROP OWNED), then ALTER DATABASE ... '
                               'RESET the setting and run this again.';
        END IF;
        IF kv.k IN ('splitvault.owner_role', 'splitvault.web_role') THEN
            recorded := recorded + 1;
        END IF;
        IF kv.k = 'splitvault.console_role' THEN
            con_recorded := true;
        END IF;
    END LOOP;
    with_con := con_recorded OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
    IF NOT with_con THEN
        RAISE NOTICE 'no console role yet: a superuser''s run of this script creates it';
    END IF;
    IF recorded < 2 AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'database % has no roles set up yet: the first run needs a superuser',
                        db
              USING HINT = 'It creates the roles, gives the database to the owner role and '
                           'records the names in the database''s settings: run it as the '
                           'postgres user, e.g. sudo -u postgres splitvault-admin -d '
                           '"dbname=' || db || '" roles';
    END IF;

    -- The roles: created when missing, never given more than LOGIN.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = owner_name) THEN
        EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                       'NOREPLICATION NOBYPASSRLS', owner_name);
        RAISE NOTICE 'created role % (LOGIN, no password yet)', owner_name;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = web_name) THEN
        EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE '
                       'NOREPLICATION NOBYPASSRLS', web_name);
        RAISE NOTICE 'created role % (LOGIN, no password yet)', web_name;
    END IF;
    IF with_con AND NOT EXISTS (SELECT FROM pg_roles WHERE rolname = con_name) THEN
        IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            RAISE EXCEPTION 'the console role % recorded for database % does not exist',
                            con_name, db
                  USING HINT = 'Run this again as a superuser: it creates it.';
        END IF;
        EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE '
                       'NOREPLICATION NOBYPASSRLS', con_name);
        RAISE NOTICE 'created role % (LOGIN, no password yet)', con_name;
    END IF;
    SELECT oid INTO owner_oid FROM pg_roles WHERE rolname = owner_name;
    SELECT oid INTO web_oid FROM pg_roles WHERE rolname = web_name;
    SELECT oid INTO con_oid FROM pg_roles WHERE rolname = con_name;
    IF NOT with_con THEN
        con_oid := NULL;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE oid = owner_oid
               AND (rolsuper OR rolreplication OR rolbypassrls)) THEN
        RAISE EXCEPTION 'the owner role % must not be a superuser, nor have REPLICATION or '
                        'BYPASSRLS', owner_name;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE oid = web_oid
               AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication
                    OR rolbypassrls)) THEN
        RAISE EXCEPTION 'the web role % must have no attribute but LOGIN (it is a superuser, '
                        'or has CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS)', web_name;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE oid = con_oid
               AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication
                    OR rolbypassrls)) THEN
        RAISE EXCEPTION 'the console role % must have no attribute but LOGIN (it is a '
                        'superuser, or has CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS)',
                        con_name;
    END IF;
    IF EXISTS (SELECT FROM pg_auth_members WHERE member = con_oid) THEN
        RAISE EXCEPTION 'the console role % is a member of %: it must belong to no role',
              con_name,
              (SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname)
               FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
               WHERE m.member = con_oid);
    END IF;
    -- A member of another role could borrow its rights (SET ROLE, even
    -- with NOINHERIT): the web role belongs to none.
    IF EXISTS (SELECT FROM pg_auth_members WHERE member = web_oid) THEN
        RAISE EXCEPTION 'the web role % is a member of %: it must belong to no role', web_name,
              (SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname)
               FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
               WHERE m.member = web_oid);
    END IF;

    -- Record the names (a placeholder setting: only a superuser may, so
    -- only the first run does).
    IF NOT EXISTS (SELECT FROM pg_db_role_setting d, unnest(d.setconfig) s
                   WHERE d.setrole = 0
                     AND d.setdatabase = (SELECT oid FROM pg_database WHERE datname = db)
                     AND s = 'splitvault.owner_role=' || owner_name) THEN
        EXECUTE format('ALTER DATABASE %I SET splitvault.owner_role = %L', db, owner_name);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_db_role_setting d, unnest(d.setconfig) s
                   WHERE d.setrole = 0
                     AND d.setdatabase = (SELECT oid FROM pg_database WHERE datname = db)
                     AND s = 'splitvault.web_role=' || web_name) THEN
        EXECUTE format('ALTER DATABASE %I SET splitvault.web_role = %L', db, web_name);
    END IF;
    IF con_oid IS NOT NULL AND NOT con_recorded THEN
        EXECUTE format('ALTER DATABASE %I SET splitvault.console_role = %L', db, con_name);
    END IF;

    -- The database: owned by the owner role; the web role may connect and
    -- nothing more (no CREATE of schemas, no TEMPORARY tables); PUBLIC
    -- loses its default CONNECT and TEMPORARY.
    IF (SELECT datdba FROM pg_database WHERE datname = db) <> owner_oid THEN
        EXECUTE format('ALTER DATABASE %I OWNER TO %I', db, owner_name);
        RAISE NOTICE 'database % now owned by %', db, owner_name;
    END IF;
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', db);
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', db, web_name);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', db, web_name);
    IF con_oid IS NOT NULL THEN
        EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', db, con_name);
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', db, con_name);
    END IF;

    -- Schema public: owned by the database's owner (PostgreSQL 15's
    -- pg_database_owner) or the owner role; USAGE for the web role, and
    -- neither CREATE nor USAGE for PUBLIC (15 already drops CREATE).
    IF (SELECT nspowner FROM pg_namespace WHERE nspname = 'public')
       NOT IN (owner_oid, coalesce(dbo_oid, owner_oid)) THEN
        EXECUTE format('ALTER SCHEMA public OWNER TO %I', owner_name);
        RAISE NOTICE 'schema public now owned by %', owner_name;
    END IF;
    REVOKE ALL ON SCHEMA public FROM PUBLIC;
    EXECUTE format('REVOKE ALL ON SCHEMA public FROM %I', web_name);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', web_name);
    IF con_oid IS NOT NULL THEN
        EXECUTE format('REVOKE ALL ON SCHEMA public FROM %I', con_name);
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', con_name);
    END IF;

    -- Every object of schema public belongs to the owner role. Tables take
    -- their indexes, row types and serial sequences along.
    FOR obj IN SELECT c.oid::regclass::text AS name, c.relkind
               FROM pg_class c
               WHERE c.relnamespace = 'public'::regnamespace AND c.relowner <> owner_oid
                 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
                 AND NOT EXISTS (SELECT FROM pg_depend d
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                   AND d.deptype = 'e')
               ORDER BY c.oid
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I',
                       CASE obj.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                        WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE'
                                        ELSE 'TABLE' END,
                       obj.name, owner_name);
        RAISE NOTICE '% now owned by %', obj.name, owner_name;
    END LOOP;
    FOR obj IN SELECT c.oid::regclass::text AS name
               FROM pg_class c
               WHERE c.relnamespace = 'public'::regnamespace AND c.relowner <> owner_oid
                 AND c.relkind = 'S'
                 AND NOT EXISTS (SELECT FROM pg_depend d
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                   AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', obj.name, owner_name);
        RAISE NOTICE '% now owned by %', obj.name, owner_name;
    END LOOP;
    FOR obj IN SELECT p.oid::regprocedure::text AS name
               FROM pg_proc p
               WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> owner_oid
                 AND NOT EXISTS (SELECT FROM pg_depend d
                                 WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                   AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', obj.name, owner_name);
        RAISE NOTICE '% now owned by %', obj.name, owner_name;
    END LOOP;
    FOR obj IN SELECT t.oid::regtype::text AS name
               FROM pg_type t
               WHERE t.typnamespace = 'public'::regnamespace AND t.typowner <> owner_oid
                 AND t.typtype IN ('d', 'e', 'r') AND t.typrelid = 0
                 AND NOT EXISTS (SELECT FROM pg_depend d
                                 WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                                   AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO %I', obj.name, owner_name);
        RAISE NOTICE '% now owned by %', obj.name, owner_name;
    END LOOP;

    -- Functions a migration may add are not executable by PUBLIC unless
    -- granted here.
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE ALL ON FUNCTIONS FROM PUBLIC',
                   owner_name);

    -- The privileges themselves: everything taken away, then the lists.
    -- The console role holds the web role's list and its own.
    FOR rname IN SELECT x FROM unnest(ARRAY[web_name, con_name]) x LOOP
        CONTINUE WHEN rname = con_name AND con_oid IS NULL;
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, %I', rname);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, %I', rname);
        EXECUTE format('REVOKE ALL ON ALL ROUTINES IN SCHEMA public FROM PUBLIC, %I', rname);
    END LOOP;
    FOR rname IN SELECT x FROM unnest(ARRAY[web_name, con_name]) x LOOP
        CONTINUE WHEN rname = con_name AND con_oid IS NULL;
        roid := CASE WHEN rname = web_name THEN web_oid ELSE con_oid END;
        rgrants := CASE WHEN rname = web_name THEN grants ELSE grants || console_grants END;
        rseqs := CASE WHEN rname = web_name THEN sequences ELSE sequences || console_seqs END;
        seq_ok := '{}';
        FOREACH g SLICE 1 IN ARRAY rgrants LOOP
            CONTINUE WHEN to_regclass(format('public.%I', g[1])) IS NULL; -- before `schema`
            IF g[3] = '' THEN
                EXECUTE format('GRANT %s ON public.%I TO %I', g[2], g[1], rname);
                CONTINUE;
            END IF;
            -- the columns that exist: one a later migration adds is granted
            -- once it is there
            priv := (SELECT string_agg(quote_ident(c), ', ')
                     FROM unnest(string_to_array(g[3], ' ')) c
                     WHERE EXISTS (SELECT FROM pg_attribute a
                                   WHERE a.attrelid = to_regclass(format('public.%I', g[1]))
                                     AND a.attname = c AND a.attnum > 0
                                     AND NOT a.attisdropped));
            CONTINUE WHEN priv IS NULL;
            EXECUTE format('GRANT %s (%s) ON public.%I TO %I', g[2], priv, g[1], rname);
        END LOOP;
        FOREACH fn IN ARRAY routines LOOP
            CONTINUE WHEN to_regprocedure('public.' || fn) IS NULL; -- before its migration
            EXECUTE format('GRANT EXECUTE ON FUNCTION public.%s TO %I', fn, rname);
        END LOOP;
        FOREACH g SLICE 1 IN ARRAY rseqs LOOP
            CONTINUE WHEN to_regclass(format('public.%I', g[1])) IS NULL;
            CONTINUE WHEN NOT EXISTS (SELECT FROM pg_attribute a
                                      WHERE a.attrelid = to_regclass(format('public.%I', g[1]))
                                        AND a.attname = g[2] AND NOT a.attisdropped);
            CONTINUE WHEN pg_get_serial_sequence(format('public.%I', g[1]), g[2]) IS NULL;
            EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I',
                           pg_get_serial_sequence(format('public.%I', g[1]), g[2]), rname);
            seq_ok := seq_ok || pg_get_serial_sequence(format('public.%I', g[1]), g[2])::regclass::oid::text;
        END LOOP;

        -- Check what the role can do now, by whatever path (other
        -- grantors, memberships, PUBLIC), against its list.
        IF has_database_privilege(roid, db, 'CREATE')
           OR has_database_privilege(roid, db, 'TEMPORARY') THEN
            RAISE EXCEPTION 'the role % can still create schemas or temporary tables in %',
                            rname, db;
        END IF;
        FOR obj IN SELECT n.nspname FROM pg_namespace n
                   WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
                     AND has_schema_privilege(roid, n.oid, 'CREATE')
        LOOP
            RAISE EXCEPTION 'the role % can still create objects in schema %', rname,
                            obj.nspname;
        END LOOP;
        FOR obj IN SELECT c.oid, c.relname FROM pg_class c
                   WHERE c.relnamespace = 'public'::regnamespace
                     AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        LOOP
            FOREACH priv IN ARRAY ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                        'REFERENCES', 'TRIGGER'] LOOP
                cols := NULL;
                whole := false;
                FOREACH g SLICE 1 IN ARRAY rgrants LOOP
                    IF g[1] = obj.relname AND g[2] = priv THEN
                        IF g[3] = '' THEN
                            whole := true;
                        ELSE
                            cols := coalesce(cols, '{}') || string_to_array(g[3], ' ');
                        END IF;
                    END IF;
                END LOOP;
                CONTINUE WHEN whole; -- granted on the whole table
                IF has_table_privilege(roid, obj.oid, priv) THEN
                    RAISE EXCEPTION 'the role % has % on table % (granted by another role, '
                                    'or through a role it belongs to)', rname, priv,
                                    obj.relname;
                END IF;
                CONTINUE WHEN priv NOT IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES');
                FOR col IN SELECT a.attname FROM pg_attribute a
                           WHERE a.attrelid = obj.oid AND a.attnum > 0 AND NOT a.attisdropped
                LOOP
                    IF has_column_privilege(roid, obj.oid, col, priv)
                       AND NOT (col = ANY (coalesce(cols, '{}'))) THEN
                        RAISE EXCEPTION 'the role % has % on %.% (granted by another role, '
                                        'or through a role it belongs to)', rname, priv,
                                        obj.relname, col;
                    END IF;
                END LOOP;
            END LOOP;
        END LOOP;
        FOR obj IN SELECT c.oid, c.relname FROM pg_class c
                   WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
        LOOP
            IF has_sequence_privilege(roid, obj.oid, 'SELECT')
               OR has_sequence_privilege(roid, obj.oid, 'UPDATE')
               OR (has_sequence_privilege(roid, obj.oid, 'USAGE')
                   AND NOT (obj.oid::text = ANY (seq_ok))) THEN
                RAISE EXCEPTION 'the role % has more than USAGE on sequence %', rname,
                                obj.relname;
            END IF;
        END LOOP;
        FOR obj IN SELECT p.oid, p.oid::regprocedure::text AS sig FROM pg_proc p
                   WHERE p.pronamespace = 'public'::regnamespace
        LOOP
            IF has_function_privilege(roid, obj.oid, 'EXECUTE')
               AND NOT (obj.oid = ANY (SELECT to_regprocedure('public.' || r)
                                       FROM unnest(routines) r)) THEN
                RAISE EXCEPTION 'the role % may execute function %', rname, obj.sig;
            END IF;
        END LOOP;
        FOR obj IN SELECT 'table ' || relname AS what FROM pg_class WHERE relowner = roid
                   UNION ALL
                   SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = roid
                   UNION ALL
                   SELECT 'function ' || oid::regprocedure::text FROM pg_proc
                   WHERE proowner = roid
                   UNION ALL
                   SELECT 'type ' || oid::regtype::text FROM pg_type WHERE typowner = roid
        LOOP
            RAISE EXCEPTION 'the role % owns % in database %', rname, obj.what, db
                  USING HINT = 'An object outside schema public is not moved by this '
                               'script: ALTER ... OWNER TO the owner role, then run it again.';
        END LOOP;
    END LOOP;
END
$roles$;
