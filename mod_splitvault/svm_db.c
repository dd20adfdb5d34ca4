/*
 * svm_db.c - the main database through mod_dbd.
 *
 * mod_dbd is reached through its optional functions (a clear start-up error
 * when it is missing, see svm_config.c). Every statement is prepared with
 * mod_dbd from the table below, so each pooled connection prepares them
 * once; requests use ap_dbd_acquire(r). Arguments follow apr_dbd's binary
 * convention: %s takes a char *, %pDb takes four (data, &size, table,
 * column). Timestamps come from PostgreSQL's now(), so several front ends
 * agree on session and throttle times.
 *
 * Every connection the module uses gets statement_timeout =
 * SVM_DB_STATEMENT_TIMEOUT once (and again after libpq re-establishes it),
 * so no statement of the module, a COMMIT included, runs longer than that:
 * intake and decrypt rely on it to commit before reconcile's grace period
 * could have removed the shares they reference.
 *
 * The module connects as the web role of sql/roles.sql, which holds the
 * privileges these statements need and no more (column by column where a
 * table is only partly written): a new statement, or a column a statement
 * newly reads or writes, needs its grant there. t/test_module_dbroles.py
 * checks every statement of the table below against the web role. The
 * staff console's statements (svm_con_*, SplitVaultStaffConsole On) run as
 * the console role, which holds the web role's grants and theirs; the
 * same test checks them against it, and that the web role may not run
 * their writes.
 */
#include "svm.h"
#include "svm_db.h"
#include "apr_lib.h"
#include "apr_optional.h"
#include "apr_strings.h"

#include "sv_auditchain.h"
#include "sv_hex.h"

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *svm_dbd_acquire;
static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *svm_dbd_prepare;

typedef struct {
    const char *label;
    const char *sql;
} svm_stmt_def;

/* A statement prepared on first use, and the schema version it needs. */
typedef struct {
    const char *label;
    const char *sql;
    int version;
} svm_lazy_def;

#define UTC_FMT "'YYYY-MM-DD HH24:MI'"
/* A nullable column as 'N' (NULL) or 'V' and its value: NULL stays apart
 * from '' whatever the driver returns for NULL. */
#define SVM_NV(col) "CASE WHEN " col " IS NULL THEN 'N' ELSE 'V' || " col " END"

static const svm_stmt_def svm_stmts[] = {
    /* key1 */
    { "svm_key1_active",
      "SELECT fingerprint, encode(public_key, 'hex') FROM key1 WHERE active" },
    { "svm_key1_list",
      "SELECT fingerprint, active, to_char(created AT TIME ZONE 'UTC', " UTC_FMT "), "
      "coalesce(created_by, ''), "
      "(SELECT count(*) FROM fields f WHERE f.key1_fp = key1.fingerprint) "
      "FROM key1 ORDER BY created DESC" },
    /* sessions */
    { "svm_sess_touch",
      "UPDATE sessions s SET last_seen = now() FROM staff st "
      "WHERE s.token_hash = decode(%s, 'hex') AND st.id = s.staff_id AND NOT st.disabled "
      "AND s.expires > now() AND s.last_seen > now() - make_interval(secs => %s::int) "
      "RETURNING st.id, st.name, st.can_update, st.can_decrypt, st.can_admin" },
    { "svm_sess_insert",
      "INSERT INTO sessions (token_hash, staff_id, expires) "
      "VALUES (decode(%s, 'hex'), %s::bigint, now() + make_interval(secs => %s::int))" },
    { "svm_sess_delete",
      "DELETE FROM sessions WHERE token_hash = decode(%s, 'hex')" },
    { "svm_sess_purge",
      "DELETE FROM sessions WHERE staff_id = %s::bigint AND (expires <= now() "
      "OR last_seen <= now() - make_interval(secs => %s::int))" },
    /* sign-in */
    { "svm_staff_get",
      "SELECT id, pwhash, disabled FROM staff WHERE name = %s" },
    { "svm_staff_ok",
      "UPDATE staff SET last_login = now() WHERE id = %s::bigint" },
    /* staff pages */
    { "svm_rec_list",
      "SELECT ref, to_char(created AT TIME ZONE 'UTC', " UTC_FMT "), "
      "coalesce(to_char(updated AT TIME ZONE 'UTC', " UTC_FMT "), ''), "
      "coalesce(updated_by, '') FROM records "
      "WHERE (%s = '' OR ref = %s) "
      "AND (NULLIF(%s, '') IS NULL OR created >= NULLIF(%s, '')::date) "
      "AND (NULLIF(%s, '') IS NULL OR created < NULLIF(%s, '')::date + 1) "
      "ORDER BY id DESC LIMIT 51 OFFSET %s::int" },
    { "svm_rec_get",
      "SELECT id, uuid::text, ref, to_char(created AT TIME ZONE 'UTC', " UTC_FMT "), "
      "coalesce(to_char(updated AT TIME ZONE 'UTC', " UTC_FMT "), ''), "
      "coalesce(updated_by, '') FROM records WHERE ref = %s" },
    { "svm_rec_fields",
      "SELECT name, version, to_char(updated AT TIME ZONE 'UTC', " UTC_FMT ") "
      "FROM fields WHERE record_id = %s::bigint ORDER BY name" },
    { "svm_rec_touch",
      "UPDATE records SET updated = now(), updated_by = %s WHERE id = %s::bigint" },
    /* update: read the key the row is sealed to, then compare-and-swap */
    { "svm_field_key",
      "SELECT share_id, encode(key2_pub, 'hex') FROM fields "
      "WHERE record_id = %s::bigint AND name = %s" },
    { "svm_field_update",
      "UPDATE fields SET enc = %pDb, ct = %pDb, version = version + 1, updated = now() "
      "WHERE record_id = %s::bigint AND name = %s AND share_id = %s::bigint "
      "AND key2_pub = decode(%s, 'hex')" },
    /* key location and decrypt */
    { "svm_key1_get",
      "SELECT encode(public_key, 'hex') FROM key1 WHERE fingerprint = %s" },
    /* dual control: is the giver of a share still an enabled admin? */
    { "svm_staff_is_admin",
      "SELECT id FROM staff WHERE id = %s::bigint AND can_admin AND NOT disabled" },
    /* a ct longer than the first argument is not sent at all (NULL): only
     * its length, the last column, which the module checks before it
     * allocates anything for the value */
    { "svm_dec_fields",
      "SELECT name, share_id, encode(key2_pub, 'hex'), encode(enc, 'hex'), "
      "CASE WHEN octet_length(ct) <= %s::int THEN encode(ct, 'hex') END, "
      "encode(wrap_enc, 'hex'), encode(wrap_ct, 'hex'), key1_fp, version, octet_length(ct) "
      "FROM fields WHERE record_id = %s::bigint ORDER BY name LIMIT %s::int" },
    /* after the daemon refused a DECRYPT: did the rows change meanwhile? */
    { "svm_dec_versions",
      "SELECT name, share_id, version FROM fields WHERE record_id = %s::bigint ORDER BY name" },
    /* after a COMMIT whose answer was lost: which shares do the rows name
     * now? FOR SHARE waits for a transaction still holding the rows */
    { "svm_dec_shares",
      "SELECT name, share_id FROM fields WHERE record_id = %s::bigint ORDER BY name "
      "FOR SHARE" },
    /* compare-and-swap on share id, key2 public key and version: a
     * concurrent update (same key, new value) or rotation makes it miss */
    { "svm_dec_rotate",
      "UPDATE fields SET key2_pub = %pDb, enc = %pDb, ct = %pDb, share_id = %s::bigint, "
      "wrap_enc = %pDb, wrap_ct = %pDb, key1_fp = %s, version = version + 1 "
      "WHERE record_id = %s::bigint AND name = %s AND share_id = %s::bigint "
      "AND key2_pub = decode(%s, 'hex') AND version = %s::int" },
    /* audit */
    { "svm_audit_insert",
      "INSERT INTO audit (actor, action, record_ref, field, outcome, address, detail) "
      "VALUES (%s, %s, %s, %s, %s, %s, %s)" },
    { NULL, NULL }
};

/* Statements that need a newer schema than the oldest this module works
 * with: version 3 (login_throttle.pending and login_throttle_reserve), 4
 * (the audit chain). mod_dbd prepares its statements all or none on every
 * new connection, so these are not given to it: each connection prepares
 * them on first use (svm_stmt). On a database still at version 2 only
 * sign-in is unavailable, at version 3 only the audit page (SV01111 says
 * why); intake and the other staff pages go on working. */
static const svm_lazy_def svm_stmts_lazy[] = {
    /* Reserve one sign-in attempt, before any password is checked, for the
     * client network, the (name, network) pair and the name, all or none
     * (login_throttle_reserve, sql/main/003): one row per key with whether
     * it refuses, and whether this attempt paused it. Args: the three keys,
     * their windows (seconds), their limits. */
    { "svm_thr_reserve",
      "SELECT idx, refused, locked FROM login_throttle_reserve(ARRAY[%s, %s, %s]::text[], "
      "ARRAY[%s, %s, %s]::int[], ARRAY[%s, %s, %s]::int[]) ORDER BY idx", 3 },
    /* the reserved attempt failed: one failure more for each key (a row
     * purged meanwhile starts again with this failure) */
    { "svm_thr_failed",
      "INSERT INTO login_throttle AS t (key, failures, pending, first_failure) "
      "SELECT k, 1, 0, now() FROM unnest(ARRAY[%s, %s, %s]::text[]) AS k "
      "ON CONFLICT (key) DO UPDATE SET failures = t.failures + 1, "
      "pending = greatest(t.pending - 1, 0)", 3 },
    /* the reserved attempt signed in: its places are given back; no
     * failure of the network or of the name is undone, only the pair of
     * this name and network starts afresh (its password is known there) */
    { "svm_thr_succeeded",
      "UPDATE login_throttle SET pending = greatest(pending - 1, 0), "
      "failures = CASE WHEN left(key, 2) = 'p:' THEN 0 ELSE failures END "
      "WHERE key = ANY (ARRAY[%s, %s, %s]::text[])", 3 },
    /* forget keys whose window has passed and that are not locked (a few
     * at a time, on failed sign-ins), so the table does not grow */
    { "svm_thr_purge",
      "DELETE FROM login_throttle WHERE key IN (SELECT key FROM login_throttle "
      "WHERE first_failure <= now() - make_interval(secs => %s::int) "
      "AND (locked_until IS NULL OR locked_until <= now()) "
      "AND (pending = 0 OR pending_until <= now()) LIMIT 100)", 3 },
    /* ---- schema version 5: the staff console's columns. Each of the
     * first three replaces a statement above where the database is at
     * version 5 (svm_db_version); before it no account must change its
     * password and sessions have no address. A server accepts only the
     * sessions of its kind (last argument: 't' on a staff console, which
     * alone makes them, as the console role; 'f' elsewhere). */
    { "svm_sess_touch5",
      "UPDATE sessions s SET last_seen = now() FROM staff st "
      "WHERE s.token_hash = decode(%s, 'hex') AND st.id = s.staff_id AND NOT st.disabled "
      "AND s.expires > now() AND s.last_seen > now() - make_interval(secs => %s::int) "
      "AND s.console = %s::boolean "
      "RETURNING st.id, st.name, st.can_update, st.can_decrypt, st.can_admin, "
      "st.must_change", 5 },
    { "svm_sess_insert5",
      "INSERT INTO sessions (token_hash, staff_id, expires, address, user_agent) "
      "VALUES (decode(%s, 'hex'), %s::bigint, now() + make_interval(secs => %s::int), "
      "left(%s, 64), left(%s, 200))", 5 },
    { "svm_con_sess_insert",
      "INSERT INTO sessions (token_hash, staff_id, expires, address, user_agent, console) "
      "VALUES (decode(%s, 'hex'), %s::bigint, now() + make_interval(secs => %s::int), "
      "left(%s, 64), left(%s, 200), true)", 5 },
    { "svm_staff_get5",
      "SELECT id, pwhash, disabled, must_change FROM staff WHERE name = %s", 5 },
    /* the console (svm_console.c), as the console role: every account,
     * its flags, last sign-in and live sessions (arg: idle seconds) */
    { "svm_con_staff_list",
      "SELECT st.name, st.can_update, st.can_decrypt, st.can_admin, st.disabled, "
      "st.must_change, coalesce(to_char(st.last_login AT TIME ZONE 'UTC', " UTC_FMT "), ''), "
      "(SELECT count(*) FROM sessions s WHERE s.staff_id = st.id AND s.expires > now() "
      "AND s.last_seen > now() - make_interval(secs => %s::int)) "
      "FROM staff st ORDER BY st.name", 5 },
    { "svm_con_staff_get",
      "SELECT id, name, can_update, can_decrypt, can_admin, disabled, must_change, "
      "coalesce(to_char(last_login AT TIME ZONE 'UTC', " UTC_FMT "), ''), "
      "to_char(created AT TIME ZONE 'UTC', " UTC_FMT "), "
      "coalesce(to_char(password_changed AT TIME ZONE 'UTC', " UTC_FMT "), '') "
      "FROM staff WHERE name = %s", 5 },
    /* the live sessions of an account (args: the viewer's token hash,
     * which marks their own, the account's id, idle seconds): an opaque
     * number and whether the console made it, never the token or its hash */
    { "svm_con_sess_list",
      "SELECT id, to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
      "to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
      "to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), coalesce(address, ''), "
      "coalesce(user_agent, ''), token_hash = decode(%s, 'hex'), console FROM sessions "
      "WHERE staff_id = %s::bigint AND expires > now() "
      "AND last_seen > now() - make_interval(secs => %s::int) ORDER BY created DESC, id", 5 },
    /* a new account; no row when the name is taken */
    { "svm_con_staff_insert",
      "INSERT INTO staff (name, pwhash, can_update, can_decrypt, can_admin, must_change, "
      "password_changed) VALUES (%s, %s, %s::boolean, %s::boolean, %s::boolean, true, now()) "
      "ON CONFLICT DO NOTHING RETURNING id", 5 },
    /* the account whose name differs from this one at most in case (a
     * unique index on lower(name) allows one) */
    { "svm_con_staff_clash",
      "SELECT name FROM staff WHERE lower(name) = lower(%s)", 5 },
    /* inside a change's transaction: the acting admin, the target and
     * every enabled admin, locked, so that two admins' changes take turns
     * and the lock-out checks (svm_console.c) see what the other did.
     * Args: the actor's id, the target's name. */
    { "svm_con_staff_lock",
      "SELECT id, name, can_admin AND NOT disabled, can_decrypt FROM staff "
      "WHERE (can_admin AND NOT disabled) OR id = %s::bigint OR name = %s "
      "ORDER BY id FOR UPDATE", 5 },
    { "svm_con_staff_caps",
      "UPDATE staff SET can_update = %s::boolean, can_decrypt = %s::boolean, "
      "can_admin = %s::boolean, updated = now() WHERE id = %s::bigint", 5 },
    { "svm_con_staff_disable",
      "UPDATE staff SET disabled = %s::boolean, updated = now() WHERE id = %s::bigint", 5 },
    { "svm_con_staff_passwd",
      "UPDATE staff SET pwhash = %s, must_change = %s::boolean, password_changed = now(), "
      "updated = now() WHERE id = %s::bigint", 5 },
    { "svm_con_sess_end_all",
      "DELETE FROM sessions WHERE staff_id = %s::bigint", 5 },
    { "svm_con_sess_end_one",
      "DELETE FROM sessions WHERE staff_id = %s::bigint AND id = %s::bigint", 5 },
    /* own password: every session of the account but the one in use */
    { "svm_con_sess_end_others",
      "DELETE FROM sessions WHERE staff_id = %s::bigint "
      "AND token_hash <> decode(%s, 'hex')", 5 },
    { "svm_con_own_get",
      "SELECT pwhash FROM staff WHERE id = %s::bigint AND NOT disabled", 5 },
    /* only while the hash is still the one the current password was
     * checked against (an admin's reset in between wins) */
    { "svm_con_own_passwd",
      "UPDATE staff SET pwhash = %s, must_change = false, password_changed = now(), "
      "updated = now() WHERE id = %s::bigint AND pwhash = %s AND NOT disabled", 5 },
    /* the page's eight columns, then the row as its hash covers it
     * (lib/sv_auditchain.h; nullable columns as 'N' or 'V' and the value),
     * prev_hash, hash, the row's id for the order, and the chain head, all
     * in one statement's snapshot; the head's row alone (audit columns
     * NULL) when no audit row is listed */
    { "svm_audit_list",
      "SELECT a.*, h.id::text, encode(h.hash, 'hex') FROM audit_head h LEFT JOIN LATERAL ("
      "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), coalesce(actor, ''), "
      "action, coalesce(record_ref, ''), coalesce(field, ''), outcome, "
      "coalesce(address, ''), coalesce(detail, ''), "
      "id::text, " SV_AUDIT_CHAIN_AT_SQL ", " SVM_NV("actor") ", " SVM_NV("action") ", "
      SVM_NV("record_ref") ", " SVM_NV("field") ", " SVM_NV("outcome") ", "
      SVM_NV("address") ", " SVM_NV("detail") ", encode(prev_hash, 'hex'), "
      "encode(hash, 'hex'), audit.id AS ord FROM audit "
      "WHERE (%s = '' OR record_ref = %s) ORDER BY audit.id DESC LIMIT 101 OFFSET %s::int"
      ") a ON true ORDER BY a.ord DESC", 4 },
    { NULL, NULL, 0 }
};

void svm_db_retrieve_fns(void)
{
    if (!svm_dbd_acquire)
        svm_dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    if (!svm_dbd_prepare)
        svm_dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
}

int svm_db_available(void)
{
    return svm_dbd_acquire != NULL && svm_dbd_prepare != NULL;
}

const char *svm_intake_label(apr_pool_t *p, int n)
{
    return apr_psprintf(p, "svm_intake_%d", n);
}

/* One statement stores a whole submission: the record and its n fields,
 * atomically and in one round trip (no BEGIN/COMMIT). Arguments: uuid, ref,
 * then per field: name, key2_pub, enc, ct, share_id, wrap_enc, wrap_ct,
 * key1 fingerprint. */
static const char *svm_intake_sql(apr_pool_t *p, int n)
{
    const char *sql = "WITH rec AS (INSERT INTO records (uuid, ref) VALUES (%s::uuid, %s) "
                      "RETURNING id) INSERT INTO fields (record_id, name, key2_pub, enc, ct, "
                      "share_id, wrap_enc, wrap_ct, key1_fp) SELECT rec.id, v.n, v.p, v.e, "
                      "v.c, v.s, v.we, v.wc, v.k FROM rec, (VALUES ";
    int i;

    for (i = 0; i < n; i++)
        sql = apr_pstrcat(p, sql, i ? ", " : "", "(%s::text, %pDb::bytea, %pDb::bytea, "
                          "%pDb::bytea, %s::bigint, %pDb::bytea, %pDb::bytea, %s::text)", NULL);
    return apr_pstrcat(p, sql, ") AS v(n, p, e, c, s, we, wc, k)", NULL);
}

void svm_db_prepare(server_rec *s, int nfields)
{
    const svm_stmt_def *d;

    if (!svm_dbd_prepare)
        return;
    for (d = svm_stmts; d->label; d++)
        svm_dbd_prepare(s, d->sql, d->label);
    if (nfields > 0)
        svm_dbd_prepare(s, svm_intake_sql(s->process->pconf, nfields),
                        svm_intake_label(s->process->pconf, nfields));
}

#define SVM_DB_CONN_KEY "svm_db_conn"

/* What the module keeps with a connection, in the connection's own pool:
 * whether its session settings are in place, and the schema version it
 * read (0 until read). */
typedef struct {
    int ready;
    int version;
} svm_db_conn;

static svm_db_conn *svm_db_conn_get(ap_dbd_t *dbd)
{
    void *v = NULL;

    apr_pool_userdata_get(&v, SVM_DB_CONN_KEY, dbd->pool);
    if (!v) {
        v = apr_pcalloc(dbd->pool, sizeof(svm_db_conn));
        apr_pool_userdata_setn(v, SVM_DB_CONN_KEY, NULL, dbd->pool);
    }
    return v;
}

/* The database's schema version, into *version. Grants from before
 * version 5 give the web role no SELECT on schema_version: such a
 * database is older than 5 (`schema` applies a migration and roles.sql in
 * one transaction, so a database at 5 has the grant), and *version is 0,
 * "some version before 5". Returns 0, or -1 (logged). */
static int svm_db_read_version(request_rec *r, ap_dbd_t *dbd, int *version)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *v = NULL;
    int rv;

    rv = apr_dbd_select(dbd->driver, r->pool, dbd->handle, &res,
                        "SELECT CASE WHEN has_table_privilege(to_regclass("
                        "'public.schema_version'), 'SELECT') THEN 't' ELSE 'f' END", 0);
    while (rv == 0 && apr_dbd_get_row(dbd->driver, r->pool, res, &row, -1) == 0)
        v = apr_pstrdup(r->pool, apr_dbd_get_entry(dbd->driver, row, 0));
    if (rv == 0 && v && *v == 'f') {
        *version = 0;
        return 0;
    }
    if (rv == 0 && v) {
        v = NULL;
        rv = apr_dbd_select(dbd->driver, r->pool, dbd->handle, &res,
                            "SELECT coalesce(max(version), 0) FROM schema_version", 0);
        while (rv == 0 && apr_dbd_get_row(dbd->driver, r->pool, res, &row, -1) == 0)
            v = apr_pstrdup(r->pool, apr_dbd_get_entry(dbd->driver, row, 0));
    }
    if (rv || !v || !apr_isdigit(*v)) {
        const char *e = rv ? apr_dbd_error(dbd->driver, dbd->handle, rv) : NULL;
        const char *nl = e ? strchr(e, '\n') : NULL;
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01115: cannot read the schema version "
                      "of the main database: %s",
                      !e ? "no answer" : nl ? apr_pstrmemdup(r->pool, e, (apr_size_t)(nl - e))
                      : e);
        return -1;
    }
    *version = atoi(v);
    return 0;
}

/* Session settings of this connection and its schema version, once per
 * connection; a version before 5 is read again on every use, so that
 * `splitvault-admin schema` takes effect without a restart. Returns 0 when
 * both are in place. */
static int svm_db_session_init(request_rec *r, ap_dbd_t *dbd)
{
    svm_db_conn *cn = svm_db_conn_get(dbd);
    int n = 0, rv;

    if (cn->ready && cn->version >= 5)
        return 0;
    if (cn->ready)
        return svm_db_read_version(r, dbd, &cn->version) == 0 ? 0 : -1;
    rv = apr_dbd_query(dbd->driver, dbd->handle, &n,
                       apr_psprintf(r->pool, "SET statement_timeout = %d",
                                    (int)apr_time_as_msec(SVM_DB_STATEMENT_TIMEOUT)));
    if (rv) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01108: cannot set statement_timeout "
                      "on a database connection: %s",
                      apr_dbd_error(dbd->driver, dbd->handle, rv));
        return -1;
    }
    /* the audit chain's hashes are of UTF-8 text (svm_audit.c), whatever
     * client_encoding DBDParams or the role's settings gave */
    rv = apr_dbd_query(dbd->driver, dbd->handle, &n, "SET client_encoding = 'UTF8'");
    if (rv) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01112: cannot set client_encoding "
                      "on a database connection: %s",
                      apr_dbd_error(dbd->driver, dbd->handle, rv));
        return -1;
    }
    if (svm_db_read_version(r, dbd, &cn->version) != 0)
        return -1;
    cn->ready = 1;
    return 0;
}

/* The connection lost its session (libpq re-established it). */
static void svm_db_session_lost(ap_dbd_t *dbd)
{
    svm_db_conn *cn = svm_db_conn_get(dbd);

    cn->ready = 0;
    cn->version = 0;
}

ap_dbd_t *svm_db(request_rec *r)
{
    ap_dbd_t *dbd = svm_dbd_acquire ? svm_dbd_acquire(r) : NULL;

    if (!dbd)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SV01101: no database connection (is PostgreSQL up? see mod_dbd's "
                      "messages)");
    else if (svm_db_session_init(r, dbd) != 0)
        return NULL; /* no statement without its time limit */
    return dbd;
}

static apr_dbd_prepared_t *svm_stmt_get(request_rec *r, ap_dbd_t *dbd, const char *label);

apr_dbd_prepared_t *svm_stmt(request_rec *r, ap_dbd_t *dbd, const char *label)
{
    return svm_stmt_get(r, dbd, label);
}

int svm_db_version(request_rec *r, ap_dbd_t *dbd)
{
    static int told;
    int v = svm_db_conn_get(dbd)->version;

    if (v < 5 && !told) {
        told = 1; /* once per process: every request asks */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV01113: the main database is older "
                      "than schema version 5: no staff console, password changes or session "
                      "addresses until `splitvault-admin schema` has run");
    }
    return v;
}

static apr_dbd_prepared_t *svm_stmt_get(request_rec *r, ap_dbd_t *dbd, const char *label)
{
    apr_dbd_prepared_t *st = apr_hash_get(dbd->prepared, label, APR_HASH_KEY_STRING);
    const svm_lazy_def *d;
    int rv;

    if (st)
        return st;
    for (d = svm_stmts_lazy; d->label && strcmp(d->label, label) != 0; d++)
        ;
    if (!d->label) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SV01102: prepared statement %s missing (did the schema apply?)", label);
        return NULL;
    }
    /* first use on this connection: prepare it now, in the connection's
     * own pool and statement table, as mod_dbd does with the others */
    rv = apr_dbd_prepare(dbd->driver, dbd->pool, dbd->handle, d->sql, d->label, &st);
    if (rv) {
        const char *e = apr_dbd_error(dbd->driver, dbd->handle, rv);
        const char *nl = e ? strchr(e, '\n') : NULL;
        int have = svm_db_conn_get(dbd)->version;
        /* a failure on a database at the version the statement needs is
         * an error of that database, never a reason to use another one */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01111: cannot prepare %s (%s %d%s): %s",
                      label, have >= d->version ? "the database is at schema version"
                      : "the database needs schema version",
                      have >= d->version ? have : d->version,
                      have >= d->version ? "" : ": run splitvault-admin schema",
                      !e ? "unknown database error"
                      : nl ? apr_pstrmemdup(r->pool, e, (apr_size_t)(nl - e)) : e);
        return NULL;
    }
    apr_hash_set(dbd->prepared, d->label, APR_HASH_KEY_STRING, st);
    return st;
}

/* The first line of the driver's error text: PostgreSQL's DETAIL lines can
 * quote row contents (ciphertexts, hashes), which have no place in a log. */
static const char *svm_db_err(request_rec *r, ap_dbd_t *dbd, int rv)
{
    const char *e = apr_dbd_error(dbd->driver, dbd->handle, rv);
    const char *nl;

    if (!e)
        return "unknown database error";
    nl = strchr(e, '\n');
    return nl ? apr_pstrmemdup(r->pool, e, (apr_size_t)(nl - e)) : e;
}

/* Per-request state of the connection: inside a transaction; statements
 * lost and to be prepared again after the rollback; prepared again. */
typedef struct {
    int in_tx;
    int lost;
    int repaired;
    int denied;     /* a statement was refused for want of a privilege */
} svm_db_state;

static svm_db_state *svm_db_st(request_rec *r)
{
    void *v = NULL;

    apr_pool_userdata_get(&v, "svm_db_state", r->pool);
    if (!v) {
        v = apr_pcalloc(r->pool, sizeof(svm_db_state));
        apr_pool_userdata_setn(v, "svm_db_state", NULL, r->pool);
    }
    return v;
}

/* A statement refused for want of a privilege: one line that says which
 * role the server needs, instead of SV01103/SV01104; remembered for
 * svm_db_denied(). */
static int svm_db_refused(request_rec *r, ap_dbd_t *dbd, const char *label, int rv)
{
    const char *e = apr_dbd_error(dbd->driver, dbd->handle, rv);

    if (!e || !strstr(e, "permission denied"))
        return 0;
    svm_db_st(r)->denied = 1;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01114: %s refused by the database: %s "
                  "(this server's DBDParams name a role without its privileges; "
                  "SplitVaultStaffConsole needs the console role: docs/configuration.md)",
                  label, svm_db_err(r, dbd, rv));
    return 1;
}

int svm_db_denied(request_rec *r)
{
    return svm_db_st(r)->denied;
}

/* 1 when rv means "prepared statement ... does not exist". */
static int svm_db_stmt_lost(ap_dbd_t *dbd, int rv)
{
    const char *e = apr_dbd_error(dbd->driver, dbd->handle, rv);

    return e && strstr(e, "prepared statement") && strstr(e, "does not exist");
}

/* Prepare every statement again on this connection, into mod_dbd's own
 * statement objects. Returns 0 when all succeeded. */
static int svm_db_reprepare(request_rec *r, ap_dbd_t *dbd)
{
    const svm_stmt_def *d;
    const svm_lazy_def *l;
    int rv, bad = 0, n;

    /* a re-established connection has lost its settings as well */
    svm_db_session_lost(dbd);
    if (svm_db_session_init(r, dbd) != 0)
        bad = 1;
    for (d = svm_stmts; d->label; d++) {
        apr_dbd_prepared_t *st = apr_hash_get(dbd->prepared, d->label, APR_HASH_KEY_STRING);
        if (!st)
            continue;
        rv = apr_dbd_prepare(dbd->driver, dbd->pool, dbd->handle, d->sql, d->label, &st);
        if (rv)
            bad = 1;
    }
    /* those prepared on first use: again now if they were (else at their
     * next first use) */
    for (l = svm_stmts_lazy; l->label; l++) {
        apr_dbd_prepared_t *st = apr_hash_get(dbd->prepared, l->label, APR_HASH_KEY_STRING);
        if (st && apr_dbd_prepare(dbd->driver, dbd->pool, dbd->handle, l->sql, l->label, &st))
            bad = 1;
    }
    for (n = 1; n <= SVM_MAX_FIELDS; n++) {
        const char *label = svm_intake_label(r->pool, n);
        apr_dbd_prepared_t *st = apr_hash_get(dbd->prepared, label, APR_HASH_KEY_STRING);
        if (st && apr_dbd_prepare(dbd->driver, dbd->pool, dbd->handle,
                                  svm_intake_sql(r->pool, n), label, &st))
            bad = 1;
    }
    ap_log_rerror(APLOG_MARK, bad ? APLOG_ERR : APLOG_WARNING, 0, r,
                  "SV01107: the database connection was re-established without its "
                  "prepared statements; prepared them again%s", bad ? " (failed)" : "");
    return bad;
}

int svm_db_repaired(request_rec *r)
{
    svm_db_state *st = svm_db_st(r);
    int v = st->repaired;

    st->repaired = 0;
    return v;
}

/* After a failed statement: repair now (outside a transaction: returns 1,
 * the caller retries) or after the rollback. */
static int svm_db_after_failure(request_rec *r, ap_dbd_t *dbd, int rv)
{
    svm_db_state *st;

    if (!svm_db_stmt_lost(dbd, rv))
        return 0;
    st = svm_db_st(r);
    if (st->in_tx) {
        st->lost = 1;
        return 0;
    }
    return svm_db_reprepare(r, dbd) == 0;
}

apr_status_t svm_db_exec(request_rec *r, ap_dbd_t *dbd, const char *label, int *nrows,
                         const void **args)
{
    apr_dbd_prepared_t *st = svm_stmt(r, dbd, label);
    int n = 0, rv;

    if (!st)
        return APR_EGENERAL;
    rv = apr_dbd_pbquery(dbd->driver, r->pool, dbd->handle, &n, st, args);
    if (rv && svm_db_after_failure(r, dbd, rv))
        rv = apr_dbd_pbquery(dbd->driver, r->pool, dbd->handle, &n, st, args);
    if (rv) {
        if (!svm_db_refused(r, dbd, label, rv))
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01103: %s failed: %s", label,
                          svm_db_err(r, dbd, rv));
        return APR_EGENERAL;
    }
    if (nrows)
        *nrows = n;
    return APR_SUCCESS;
}

apr_status_t svm_db_select(request_rec *r, ap_dbd_t *dbd, const char *label, svm_rows *rows,
                           const void **args)
{
    apr_dbd_prepared_t *st = svm_stmt(r, dbd, label);
    int rv;

    rows->res = NULL;
    rows->row = NULL;
    if (!st)
        return APR_EGENERAL;
    rv = apr_dbd_pbselect(dbd->driver, r->pool, dbd->handle, &rows->res, st, 1, args);
    if (rv && svm_db_after_failure(r, dbd, rv))
        rv = apr_dbd_pbselect(dbd->driver, r->pool, dbd->handle, &rows->res, st, 1, args);
    if (rv) {
        if (!svm_db_refused(r, dbd, label, rv))
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01104: %s failed: %s", label,
                          svm_db_err(r, dbd, rv));
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_dbd_row_t *svm_db_row(request_rec *r, ap_dbd_t *dbd, svm_rows *rows)
{
    if (!rows->res || apr_dbd_get_row(dbd->driver, r->pool, rows->res, &rows->row, -1) != 0) {
        rows->res = NULL; /* the driver has released the result */
        rows->row = NULL;
        return NULL;
    }
    return rows->row;
}

const char *svm_db_col(request_rec *r, ap_dbd_t *dbd, apr_dbd_row_t *row, int n)
{
    const char *v = apr_dbd_get_entry(dbd->driver, row, n);

    return v ? apr_pstrdup(r->pool, v) : "";
}

apr_status_t svm_db_tx_begin(request_rec *r, ap_dbd_t *dbd)
{
    int n = 0, rv = apr_dbd_query(dbd->driver, dbd->handle, &n, "BEGIN");

    if (rv)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01105: cannot begin a transaction: %s",
                      svm_db_err(r, dbd, rv));
    else
        svm_db_st(r)->in_tx = 1;
    return rv ? APR_EGENERAL : APR_SUCCESS;
}

svm_tx_outcome svm_db_tx_end(request_rec *r, ap_dbd_t *dbd, int rollback)
{
    svm_db_state *st = svm_db_st(r);
    int n = 0, rv = apr_dbd_query(dbd->driver, dbd->handle, &n,
                                  rollback ? "ROLLBACK" : "COMMIT");
    svm_tx_outcome out = SVM_TX_COMMITTED;

    st->in_tx = 0;
    if (rv) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01106: %s failed: %s",
                      rollback ? "ROLLBACK" : "COMMIT",
                      svm_db_err(r, dbd, rv));
        if (rollback)
            out = SVM_TX_ROLLED_BACK; /* never committed: no COMMIT was sent */
        else {
            /* Did the server answer the COMMIT (with an error: it rolled the
             * transaction back), or did the answer never arrive? Only a
             * connection that still answers tells the first. */
            int m = 0;
            out = apr_dbd_query(dbd->driver, dbd->handle, &m, "SELECT 1") == 0
                  ? SVM_TX_ROLLED_BACK : SVM_TX_UNKNOWN;
            if (out == SVM_TX_UNKNOWN)
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01109: the connection failed "
                              "during COMMIT: whether the transaction committed is unknown");
        }
    }
    else if (rollback)
        out = SVM_TX_ROLLED_BACK;
    if (st->lost) {
        st->lost = 0;
        st->repaired = rv == 0 && svm_db_reprepare(r, dbd) == 0;
    }
    return out;
}

apr_status_t svm_db_fresh(request_rec *r, ap_dbd_t *dbd)
{
    svm_db_state *st = svm_db_st(r);
    apr_status_t rv;

    st->in_tx = 0;
    st->lost = 0;
    /* libpq's PQreset when the connection is broken: a new session, which
     * needs its settings again, and whose statements are prepared again on
     * first use (svm_db_after_failure) */
    svm_db_session_lost(dbd);
    rv = apr_dbd_check_conn(dbd->driver, r->pool, dbd->handle);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01110: cannot reconnect to the "
                      "database: %s", svm_db_err(r, dbd, rv));
        return APR_EGENERAL;
    }
    return svm_db_session_init(r, dbd) == 0 ? APR_SUCCESS : APR_EGENERAL;
}

apr_status_t svm_hex_decode(const char *hex, unsigned char *out, apr_size_t n)
{
    /* PostgreSQL's bytea hex output starts with \x */
    if (hex[0] == '\\' && hex[1] == 'x')
        hex += 2;
    return sv_hex_decode(hex, strlen(hex), out, n) == SV_OK ? APR_SUCCESS : APR_EINVAL;
}
