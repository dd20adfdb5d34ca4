/*
 * svd_store_sql.c - the share store's SQL statements, one set per driver,
 * prepared on every connection (svd_dbh_prepare).
 *
 * SQL differs by driver (placeholders are apr_dbd's: typed %lld/%d, text
 * %s): sqlite3 keeps uuids and keys as lowercase hex text and allocates ids
 * inside the write transaction from sqlite_sequence (AUTOINCREMENT: never
 * reused); pgsql keeps uuid and bytea columns and takes ids from a sequence,
 * so several daemons can share one database.
 */
#include "config.h"

#include <apr_strings.h>

#include "svd.h"
#include "svd_store_int.h"

/* Look-ups of 2..32 shares (with the lock-down state) are one UNION ALL of
 * point look-ups each, built at open for these sizes; unused branches
 * repeat the first id. Each comes twice: ST_GET* with key2b (a decrypt),
 * ST_PUB* with NULL in its place (CONFIRM: no share leaves the store). */
const unsigned svd_getn_size[] = { 2, 3, 4, 8, 16, 32 };

/*
 * The statements. A share is never deleted by a request: releasing or
 * deleting one sets retired (unix seconds, with a reason); every statement
 * that finds shares for a request skips retired ones; only ST_PURGE deletes,
 * retired shares older than the retention period, and never while the
 * store records a lock-down (checked in the same statement, so a lock-down
 * by another daemon on a shared store stops a purge too; reconcile's
 * retirements likewise), and the store's trigger refuses to delete a share
 * in use. A front end's RELEASE (ST_KEEP_BOUND, ST_RETIRE_PENDING) acts
 * only on pending shares younger than the rotation window that are bound
 * to the share they replace; the rotation that finishes retires the other
 * pending shares made to replace the same share (superseded), and a
 * restored pending share loses its binding (RESTORE_BINDING), so nothing
 * retired once can be retired again through an old pending share. Columns
 * of the share look-ups: id, record, field, key2 public, key2b (NULL in
 * ST_PUB*), state, created, [lock state, since,] retired.
 */
#define RESTORE_BINDING "replaces = CASE WHEN state = 2 THEN 0 ELSE replaces END, "
#define SQL_NUM_(n) #n
#define SQL_NUM(n) SQL_NUM_(n)
_Static_assert(COUNT_RETIRED != SV_SHARE_ACTIVE && COUNT_RETIRED != SV_SHARE_PENDING,
               "COUNT_RETIRED must not be a share state");
#define COUNTS_SQL "SELECT CASE WHEN retired = 0 THEN state ELSE " SQL_NUM(COUNT_RETIRED) \
                   " END, COUNT(*) FROM shares GROUP BY 1"
/* a one-field look-up: its share and the lock-down state in one query */
#define GETL_SQLITE3(key2b) \
    "SELECT s.id, s.record_uuid, s.field, s.key2_pub, " key2b ", s.state, s.created, " \
    "st.locked, st.locked_since, s.retired " \
    "FROM sv_state st LEFT JOIN shares s ON s.id = %lld WHERE st.id = 1"
#define GETL_PGSQL(key2b) \
    "SELECT s.id, s.record_uuid, s.field, encode(s.key2_pub, 'hex'), " key2b ", s.state, " \
    "s.created, CASE WHEN st.locked THEN 1 ELSE 0 END, st.locked_since, s.retired " \
    "FROM sv_state st LEFT JOIN shares s ON s.id = %lld WHERE st.id = 1"
static const char *const sql_sqlite3[ST__N] = {
    [ST_GETL] = GETL_SQLITE3("s.key2b"),
    [ST_PUBL] = GETL_SQLITE3("NULL"),
    [ST_LOCK] = "SELECT locked, locked_since FROM sv_state WHERE id = 1",
    [ST_INSERT] = "INSERT INTO shares (id, record_uuid, field, key2_pub, key2b, state, "
                  "created, updated, replaces) VALUES (%lld, %s, %s, %s, %s, %d, %lld, %lld, "
                  "%lld)",
    [ST_SEQ] = "SELECT seq FROM sqlite_sequence WHERE name = 'shares'",
    [ST_RECORD_NEW] = "INSERT INTO share_records (record_uuid, created) VALUES (%s, %lld) "
                      "ON CONFLICT DO NOTHING",
    [ST_KEEP_BOUND] = "UPDATE shares SET state = 1, updated = %lld WHERE id = %lld AND "
                      "record_uuid = %s AND field = %s AND state = 2 AND retired = 0 AND "
                      "replaces = %lld AND created >= %lld AND EXISTS (SELECT 1 FROM shares d "
                      "WHERE d.id = %lld AND d.retired = 0)",
    [ST_SUPERSEDE] = "UPDATE shares SET retired = %lld, retired_why = 'superseded', "
                     "updated = %lld WHERE replaces = %lld AND record_uuid = %s AND field = %s "
                     "AND state = 2 AND retired = 0",
    [ST_KEEP] = "UPDATE shares SET state = 1, updated = %lld WHERE id = %lld AND "
                "record_uuid = %s AND field = %s AND state = 2 AND retired = 0",
    [ST_RETIRE] = "UPDATE shares SET retired = %lld, retired_why = %s, updated = %lld "
                  "WHERE id = %lld AND record_uuid = %s AND field = %s AND retired = 0",
    [ST_RETIRE_PENDING] = "UPDATE shares SET retired = %lld, retired_why = %s, updated = %lld "
                          "WHERE id = %lld AND record_uuid = %s AND field = %s AND "
                          "retired = 0 AND state = 2 AND replaces > 0 AND created >= %lld",
    [ST_PEEK] = "SELECT state FROM shares WHERE id = %lld AND record_uuid = %s AND field = %s "
                "AND retired = 0",
    [ST_RLIST] = "SELECT id, record_uuid, field, state, created FROM shares "
                 "WHERE id > %lld AND created < %lld AND retired = 0 ORDER BY id "
                 "LIMIT CAST(%d AS INTEGER)",
    [ST_RDEL] = "UPDATE shares SET retired = %lld, retired_why = 'reconcile', updated = %lld "
                "WHERE id = %lld AND record_uuid = %s AND field = %s AND created < %lld "
                "AND retired = 0 AND "
                "NOT EXISTS (SELECT 1 FROM sv_state WHERE id = 1 AND locked <> 0)",
    [ST_SETLOCK] = "UPDATE sv_state SET locked = 1, locked_since = %lld, reason = %s, "
                   "updated = %lld WHERE id = 1",
    /* only the lock-down the operator looked at: not a newer one another
     * daemon recorded meanwhile */
    [ST_UNLOCK] = "UPDATE sv_state SET locked = 0, locked_since = 0, reason = '', "
                  "updated = %lld WHERE id = 1 AND (locked = 0 OR locked_since = %lld)",
    [ST_COUNTS] = COUNTS_SQL,
    [ST_PURGE_SCAN] = "SELECT id FROM shares WHERE retired <> 0 AND retired < %lld "
                      "ORDER BY id LIMIT CAST(%d AS INTEGER)",
    [ST_PURGE] = "DELETE FROM shares WHERE retired <> 0 AND retired < %lld AND "
                 "id BETWEEN %lld AND %lld AND "
                 "NOT EXISTS (SELECT 1 FROM sv_state WHERE id = 1 AND locked <> 0)",
    [ST_RESTORE_ID] = "UPDATE shares SET retired = 0, retired_why = '', " RESTORE_BINDING
                      "updated = %lld WHERE id = %lld AND retired <> 0",
    [ST_RESTORE_RECORD] = "UPDATE shares SET retired = 0, retired_why = '', " RESTORE_BINDING
                          "updated = %lld WHERE record_uuid = %s AND retired <> 0",
    [ST_RESTORE_SINCE] = "UPDATE shares SET retired = 0, retired_why = '', " RESTORE_BINDING
                         "updated = %lld WHERE retired >= %lld AND retired <> 0",
    [ST_RETIRED_LIST] = "SELECT id, record_uuid, field, state, created, retired, retired_why "
                        "FROM shares WHERE retired <> 0 AND id > %lld AND retired >= %lld "
                        "AND (%s = '' OR record_uuid = %s) ORDER BY id "
                        "LIMIT CAST(%d AS INTEGER)",
    /* check: every share, retired ones included; never key2b */
    [ST_RSCAN] = "SELECT id, record_uuid, field, state, created, retired FROM shares "
                 "WHERE id > %lld ORDER BY id LIMIT CAST(%d AS INTEGER)",
    /* raise-ids: AUTOINCREMENT's record up to N, never down; a store that
     * never held a share has no record yet (inserted). sqlite_sequence's
     * columns have no affinity: N is cast, or it would be stored and
     * compared as text */
    [ST_RAISE] = "UPDATE sqlite_sequence SET seq = CAST(%lld AS INTEGER) "
                 "WHERE name = 'shares' AND seq < CAST(%lld AS INTEGER)",
    [ST_RAISE_NEW] = "INSERT INTO sqlite_sequence (name, seq) "
                     "SELECT 'shares', CAST(%lld AS INTEGER) "
                     "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'shares')",
    /* a sqlite3 store's limiter is the daemon's own (svd_limit_local.c):
     * never used, kept harmless */
    [ST_LIMIT_ADMIT] = "SELECT 0",
    [ST_LIMIT_STATUS] = "SELECT 0",
    [ST_LIMIT_RESET] = "SELECT 0",
};

static const char *const sql_pgsql[ST__N] = {
    [ST_GETL] = GETL_PGSQL("encode(s.key2b, 'hex')"),
    [ST_PUBL] = GETL_PGSQL("CAST(NULL AS text)"),
    [ST_LOCK] = "SELECT CASE WHEN locked THEN 1 ELSE 0 END, locked_since FROM sv_state WHERE id = 1",
    [ST_INSERT] = "INSERT INTO shares (id, record_uuid, field, key2_pub, key2b, state, "
                  "created, updated, replaces) VALUES (%lld, CAST(%s AS uuid), %s, "
                  "decode(%s, 'hex'), decode(%s, 'hex'), %d, %lld, %lld, %lld)",
    [ST_SEQ] = "SELECT nextval('shares_id_seq') FROM generate_series(1, %d)",
    [ST_RECORD_NEW] = "INSERT INTO share_records (record_uuid, created) "
                      "VALUES (CAST(%s AS uuid), %lld) ON CONFLICT DO NOTHING",
    [ST_KEEP_BOUND] = "UPDATE shares SET state = 1, updated = %lld WHERE id = %lld AND "
                      "record_uuid = CAST(%s AS uuid) AND field = %s AND state = 2 AND "
                      "retired = 0 AND replaces = %lld AND created >= %lld AND EXISTS "
                      "(SELECT 1 FROM shares d WHERE d.id = %lld AND d.retired = 0)",
    [ST_SUPERSEDE] = "UPDATE shares SET retired = %lld, retired_why = 'superseded', "
                     "updated = %lld WHERE replaces = %lld AND record_uuid = CAST(%s AS uuid) "
                     "AND field = %s AND state = 2 AND retired = 0",
    [ST_KEEP] = "UPDATE shares SET state = 1, updated = %lld WHERE id = %lld AND "
                "record_uuid = CAST(%s AS uuid) AND field = %s AND state = 2 AND retired = 0",
    [ST_RETIRE] = "UPDATE shares SET retired = %lld, retired_why = %s, updated = %lld "
                  "WHERE id = %lld AND record_uuid = CAST(%s AS uuid) AND field = %s AND "
                  "retired = 0",
    [ST_RETIRE_PENDING] = "UPDATE shares SET retired = %lld, retired_why = %s, updated = %lld "
                          "WHERE id = %lld AND record_uuid = CAST(%s AS uuid) AND field = %s "
                          "AND retired = 0 AND state = 2 AND replaces > 0 AND created >= %lld",
    [ST_PEEK] = "SELECT state FROM shares WHERE id = %lld AND record_uuid = CAST(%s AS uuid) "
                "AND field = %s AND retired = 0",
    [ST_RLIST] = "SELECT id, record_uuid, field, state, created FROM shares "
                 "WHERE id > %lld AND created < %lld AND retired = 0 ORDER BY id LIMIT %d",
    [ST_RDEL] = "UPDATE shares SET retired = %lld, retired_why = 'reconcile', updated = %lld "
                "WHERE id = %lld AND record_uuid = CAST(%s AS uuid) AND field = %s "
                "AND created < %lld AND retired = 0 AND "
                "NOT EXISTS (SELECT 1 FROM sv_state WHERE id = 1 AND locked)",
    [ST_SETLOCK] = "UPDATE sv_state SET locked = true, locked_since = %lld, reason = %s, "
                   "updated = %lld WHERE id = 1",
    [ST_UNLOCK] = "UPDATE sv_state SET locked = false, locked_since = 0, reason = '', "
                  "updated = %lld WHERE id = 1 AND (NOT locked OR locked_since = %lld)",
    [ST_COUNTS] = COUNTS_SQL,
    [ST_PURGE_SCAN] = "SELECT id FROM shares WHERE retired <> 0 AND retired < %lld "
                      "ORDER BY id LIMIT %d",
    [ST_PURGE] = "DELETE FROM shares WHERE retired <> 0 AND retired < %lld AND "
                 "id BETWEEN %lld AND %lld AND "
                 "NOT EXISTS (SELECT 1 FROM sv_state WHERE id = 1 AND locked)",
    [ST_RESTORE_ID] = "UPDATE shares SET retired = 0, retired_why = '', " RESTORE_BINDING
                      "updated = %lld WHERE id = %lld AND retired <> 0",
    [ST_RESTORE_RECORD] = "UPDATE shares SET retired = 0, retired_why = '', " RESTORE_BINDING
                          "updated = %lld WHERE record_uuid = CAST(%s AS uuid) AND retired <> 0",
    [ST_RESTORE_SINCE] = "UPDATE shares SET retired = 0, retired_why = '', " RESTORE_BINDING
                         "updated = %lld WHERE retired >= %lld AND retired <> 0",
    [ST_RETIRED_LIST] = "SELECT id, record_uuid, field, state, created, retired, retired_why "
                        "FROM shares WHERE retired <> 0 AND id > %lld AND retired >= %lld "
                        "AND (%s = '' OR record_uuid = CAST(NULLIF(%s, '') AS uuid)) "
                        "ORDER BY id LIMIT %d",
    [ST_RSCAN] = "SELECT id, record_uuid, field, state, created, retired FROM shares "
                 "WHERE id > %lld ORDER BY id LIMIT %d",
    /* raise-ids: the sequence up to N, never down (a fresh sequence's
     * last_value is 1, not yet called); answers the sequence's value */
    [ST_RAISE] = "SELECT setval('shares_id_seq', GREATEST(%lld, "
                 "(SELECT last_value FROM shares_id_seq)))",
    /* not used with pgsql (ST_RAISE does it all); kept harmless */
    [ST_RAISE_NEW] = "SELECT %lld",
    /* the shared decrypt limiter (svd_store_limit.c; the functions are the
     * store's, sql/daemon/pgsql.sql) */
    [ST_LIMIT_ADMIT] = "SELECT result, wait_ms, why FROM sv_limit_admit(CAST(%s AS text), "
                       "CAST(%d AS integer), CAST(%lld AS bigint), CAST(%d AS integer), "
                       "CAST(%lld AS bigint), CAST(%d AS integer), CAST(%lld AS bigint), "
                       "CAST(%lld AS bigint), CAST(%d AS integer), CAST(%lld AS bigint), "
                       "CAST(%d AS integer))",
    [ST_LIMIT_STATUS] = "SELECT tokens, pressure, decrypts, actors FROM "
                        "sv_limit_status(CAST(%lld AS bigint), CAST(%d AS integer), "
                        "CAST(%lld AS bigint))",
    [ST_LIMIT_RESET] = "WITH d AS (DELETE FROM sv_limit_budget RETURNING 1) UPDATE sv_limit "
                       "SET pressure = 0, pressure_ms = "
                       "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint) WHERE id = 1",
};

/* The driver's statements into s->sql; the look-ups of several shares
 * (ST_GET2.., ST_PUB2..) are built in s->pool. */
void
svd_store_sql_init(struct svd_store *s)
{
    const struct svd_conf *conf = s->conf;

    for (int i = 0; i < ST__N; i++)
        s->sql[i] = conf->driver == SVD_DRIVER_SQLITE3 ? sql_sqlite3[i] : sql_pgsql[i];
    for (size_t t = 0; t < 2 * SVD_ARRAY_LEN(svd_getn_size); t++) {
        /* the shares first (their column types lead the union), the lock-down
         * state last: a row with a NULL id; the first half with key2b
         * (ST_GET2..), the second without (ST_PUB2..) */
        int sqlite = conf->driver == SVD_DRIVER_SQLITE3, pub = t >= SVD_ARRAY_LEN(svd_getn_size);
        const char *head = sqlite ? "SELECT id, record_uuid, field, key2_pub, "
                                  : "SELECT id, record_uuid, field, encode(key2_pub, 'hex'), ";
        const char *key2b = sqlite ? (pub ? "NULL" : "key2b")
                                   : (pub ? "CAST(NULL AS text)" : "encode(key2b, 'hex')");
        const char *tail = sqlite
            ? ", state, created, NULL, NULL, retired FROM shares WHERE id = %lld UNION ALL "
            : ", state, created, CAST(NULL AS bigint), CAST(NULL AS bigint), retired "
              "FROM shares WHERE id = %lld UNION ALL ";
        const char *lock = sqlite
            ? "SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, locked, locked_since, NULL "
              "FROM sv_state WHERE id = 1"
            : "SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
              "CASE WHEN locked THEN 1 ELSE 0 END, locked_since, NULL FROM sv_state "
              "WHERE id = 1";
        size_t k = pub ? t - SVD_ARRAY_LEN(svd_getn_size) : t;
        char *q = apr_pstrdup(s->pool, "");

        for (unsigned i = 0; i < svd_getn_size[k]; i++)
            q = apr_pstrcat(s->pool, q, head, key2b, tail, NULL);
        s->sql[(pub ? ST_PUB2 : ST_GET2) + (int)k] = apr_pstrcat(s->pool, q, lock, NULL);
    }
}
