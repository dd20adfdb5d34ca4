/*
 * svd_store_schema.c - the share store's schema: create it, read its version,
 * upgrade an older one (the scripts are embedded from sql/daemon/, see
 * svd_schema.h). svd_store_open and svd_store_init_schema call it on the
 * writer's connection before any statement is prepared.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_pools.h>
#include <apu.h>
#include <apr_dbd.h>

#include "svd_conf.h"
#include "svd_log.h"
#include "svd_schema.h"
#include "svd_store_int.h"

/* Run a schema script statement by statement (split at ";" ending a line
 * outside a function's $$ body; "--" comment lines outside one are
 * skipped). */
int
svd_schema_run(struct svd_store *s, struct dbh *d, const char *script, char *err,
               size_t errlen)
{
    const char *p = script;
    char *stmt = NULL;
    /* every byte of the script, a newline after its last line (which may
     * lack one) and the NUL */
    size_t cap = strlen(script) + 2, len = 0;
    int r = -1, body = 0;

    if ((stmt = malloc(cap)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t l = nl != NULL ? (size_t)(nl - p) : strlen(p);
        const char *q = p;

        while (q < p + l && (*q == ' ' || *q == '\t'))
            q++;
        if (body || !(q + 1 < p + l && q[0] == '-' && q[1] == '-')) {
            /* each "$$" opens or closes a body */
            for (const char *t = p; t + 1 < p + l; t++)
                if (t[0] == '$' && t[1] == '$') {
                    body = !body;
                    t++;
                }
            memcpy(stmt + len, p, l);
            len += l;
            stmt[len] = '\0';
            if (!body && l > 0 && p[l - 1] == ';') {
                /* nothing may follow the ';' (the sqlite3 driver would try
                 * to run the empty rest as a statement) */
                int n, rv = apr_dbd_query(s->driver, d->h, &n, stmt);
                if (rv != 0) {
                    snprintf(err, errlen, "schema statement failed: %s (%.60s)",
                             svd_dbd_err(s, d, rv), stmt);
                    goto out;
                }
                len = 0;
            } else {
                stmt[len++] = '\n';
                stmt[len] = '\0';
            }
        }
        p += l;
        if (*p == '\n')
            p++;
    }
    r = 0;
out:
    free(stmt);
    return r;
}

/* 1 when the schema table exists, 0 when not, -1 on error; *version. */
int
svd_schema_version(struct svd_store *s, struct dbh *d, long *version)
{
    apr_pool_t *p = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *q;
    int r = -1, rv, have = 0;

    apr_pool_create(&p, d->pool);
    q = s->conf->driver == SVD_DRIVER_SQLITE3
        ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sv_schema'"
        : "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'sv_schema' "
          "AND table_schema = current_schema()";
    if ((rv = apr_dbd_select(s->driver, p, d->h, &res, q, 1)) != 0) {
        svd_err("store: %s", svd_dbd_err(s, d, rv));
        goto out;
    }
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        uint64_t c = 0;
        have = svd_parse_u64(apr_dbd_get_entry(s->driver, row, 0), &c) == 0 && c > 0;
    }
    if (!have) {
        r = 0;
        goto out;
    }
    res = NULL;
    if ((rv = apr_dbd_select(s->driver, p, d->h, &res,
                             "SELECT version FROM sv_schema WHERE component = 'splitvaultd'",
                             1)) != 0) {
        svd_err("store: %s", svd_dbd_err(s, d, rv));
        goto out;
    }
    *version = -1;
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        uint64_t v = 0;
        if (svd_parse_u64(apr_dbd_get_entry(s->driver, row, 0), &v) == 0 && v < 1000000)
            *version = (long)v;
    }
    r = 1;
out:
    apr_pool_destroy(p);
    return r;
}

/*
 * Bring a store of an older schema version up to this one, in one
 * transaction: sqlite3 under BEGIN IMMEDIATE (one daemon per file anyway),
 * pgsql holding an exclusive lock on sv_schema, so that of several daemons
 * starting on one store one upgrades it and the others find it done. The
 * version is read again inside the transaction. *version is the new one.
 */
static int
upgrade_schema(struct svd_store *s, struct dbh *d, long *version, char *err, size_t errlen)
{
    int sqlite = s->conf->driver == SVD_DRIVER_SQLITE3;
    long v = -1;
    int r = -1;

    if (svd_q_raw(s, d, sqlite ? "BEGIN IMMEDIATE" : "BEGIN") != 0) {
        snprintf(err, errlen, "store: cannot begin the schema upgrade (see the log)");
        return -1;
    }
    /* pgsql: of several daemons, one upgrades; and the copy of every
     * record into share_records may take longer than store.timeout */
    if (!sqlite && (svd_q_raw(s, d, "LOCK TABLE sv_schema IN ACCESS EXCLUSIVE MODE") != 0 ||
                    svd_q_raw(s, d, "SET LOCAL statement_timeout = 0") != 0)) {
        snprintf(err, errlen, "store: cannot lock sv_schema for the schema upgrade");
        goto rollback;
    }
    if (svd_schema_version(s, d, &v) != 1) {
        snprintf(err, errlen, "store: cannot read the schema version");
        goto rollback;
    }
    if (v == SVD_SCHEMA_VERSION) {
        *version = v; /* another daemon upgraded it meanwhile */
        r = 0;
        goto rollback;
    }
    if (v < 1 || v > SVD_SCHEMA_VERSION) {
        snprintf(err, errlen, "store: schema version %ld cannot be upgraded by this "
                 "splitvaultd (it upgrades versions 1 to %d)", v, SVD_SCHEMA_VERSION - 1);
        goto rollback;
    }
    /* one step at a time, all in this transaction */
    if (v < 2 && svd_schema_run(s, d, sqlite ? svd_upgrade2_sqlite3 : svd_upgrade2_pgsql, err,
                                errlen) != 0)
        goto rollback;
    if (v < 3 && svd_schema_run(s, d, sqlite ? svd_upgrade3_sqlite3 : svd_upgrade3_pgsql, err,
                                errlen) != 0)
        goto rollback;
    if (svd_q_raw(s, d, "COMMIT") != 0) {
        snprintf(err, errlen, "store: the schema upgrade could not be committed");
        goto rollback;
    }
    svd_warn("store: schema upgraded from version %ld to %d (%s%s)", v, SVD_SCHEMA_VERSION,
             v < 2 ? "shares are retired, not deleted; pending shares of unfinished "
                     "rotations are left to reconcile; " : "",
             sqlite ? "the decrypt limiter stays in the process"
                    : "the decrypt limiter is kept in the store, shared by its daemons");
    *version = SVD_SCHEMA_VERSION;
    return 0;
rollback:
    (void)svd_q_raw(s, d, "ROLLBACK");
    return r;
}

/*
 * An existing store's schema version made this splitvaultd's: a store of
 * version 1 or 2 is upgraded (upgrade_schema), any other version but this one is
 * refused (a newer one needs a newer splitvaultd; an unknown one, a
 * migration by hand).
 */
int
svd_schema_current(struct svd_store *s, struct dbh *d, long version, char *err, size_t errlen)
{
    if (version >= 1 && version < SVD_SCHEMA_VERSION &&
        upgrade_schema(s, d, &version, err, errlen) != 0)
        return -1;
    if (version != SVD_SCHEMA_VERSION) {
        snprintf(err, errlen, "store: schema version %ld, this splitvaultd needs %d%s", version,
                 SVD_SCHEMA_VERSION, version > SVD_SCHEMA_VERSION ? " (upgrade splitvaultd)"
                 : " (migrate the store)");
        return -1;
    }
    return 0;
}
