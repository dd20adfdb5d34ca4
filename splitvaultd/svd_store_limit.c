/*
 * svd_store_limit.c - the decrypt limiter kept in a pgsql store and shared
 * by every daemon on it (svd_limit_shared.c is its only caller): one
 * admission, the state for status, and the fresh start of an unlock. Each
 * is one statement on a reader connection, its own transaction; the
 * buckets, the pressure and the daily budgets are updated by the store's
 * sv_limit_admit() under a row lock, with the database's clock
 * (sql/daemon/pgsql.sql).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_pools.h>
#include <apu.h>
#include <apr_dbd.h>

#include "svd.h"
#include "svd_conf.h"
#include "svd_limit.h"
#include "svd_log.h"
#include "svd_store_int.h"

/* A signed integer column; 0 when well-formed. */
static int
parse_i64(const char *e, int64_t *v)
{
    char *end;
    long long x;

    if (e == NULL || *e == '\0')
        return -1;
    errno = 0;
    x = strtoll(e, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *v = (int64_t)x;
    return 0;
}

/* Run one statement of the shared limiter on a reader: its one row's
 * entries (up to ncols) are handed to take(). 0, or -1 (logged). */
static int
limit_query(struct svd_store *s, int st, int nargs, const char **args,
            int (*take)(void *ctx, const char *const *e), void *ctx, unsigned ncols)
{
    struct dbh *d;
    apr_pool_t *p = NULL;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    const char *e[4];
    int r = -1, rows = 0;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    SVD_ASSERT(s->conf->driver == SVD_DRIVER_PGSQL && ncols <= SVD_ARRAY_LEN(e));
    if ((d = svd_reader_get(s)) == NULL)
        return -1;
    if (d->h == NULL)
        goto out;
    apr_pool_create(&p, d->pool);
    if (svd_q_select(s, d, p, st, &res, nargs, args) != 0)
        goto out;
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        if (rows++ > 0)
            continue;
        for (unsigned c = 0; c < ncols; c++)
            e[c] = apr_dbd_get_entry(s->driver, row, (int)c);
        if (take(ctx, e) != 0) {
            svd_err("store: the shared limiter answered a malformed row");
            goto out;
        }
    }
    if (rows != 1) {
        svd_err("store: the shared limiter answered %d rows, not one", rows);
        goto out;
    }
    r = 0;
out:
    if (p != NULL)
        apr_pool_destroy(p);
    svd_reader_put(s, d, r != 0);
    return r;
}

struct admit_row {
    int64_t result, wait_ms;
    const char *why;            /* a static token */
};

static int
admit_take(void *ctx, const char *const *e)
{
    struct admit_row *a = ctx;

    if (parse_i64(e[0], &a->result) != 0 || a->result < -2 || a->result > 1 ||
        parse_i64(e[1], &a->wait_ms) != 0 || a->wait_ms < 0 || e[2] == NULL)
        return -1;
    /* the reasons the lock-down records are the limiter's own tokens */
    a->why = strcmp(e[2], "daily-budget") == 0 ? "daily-budget"
           : strcmp(e[2], "actor-daily-budget") == 0 ? "actor-daily-budget"
           : strcmp(e[2], "decrypt-pressure") == 0 ? "decrypt-pressure" : NULL;
    return a->result == -1 && a->why == NULL ? -1 : 0;
}

int
svd_store_limit_admit(struct svd_store *s, const char *actor, int mode, int *result,
                      uint64_t *wait_ms, const char **why)
{
    const struct svd_conf *c;
    char v[10][24];
    const char *args[11];
    struct admit_row a = { 0, 0, NULL };

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    c = s->conf;
    snprintf(v[0], sizeof(v[0]), "%d", mode);
    snprintf(v[1], sizeof(v[1]), "%u", c->global.interval_ms);
    snprintf(v[2], sizeof(v[2]), "%u", c->global.burst);
    snprintf(v[3], sizeof(v[3]), "%u", c->actor.interval_ms);
    snprintf(v[4], sizeof(v[4]), "%u", c->actor.burst);
    snprintf(v[5], sizeof(v[5]), "%u", c->budget_global);
    snprintf(v[6], sizeof(v[6]), "%u", c->budget_actor);
    snprintf(v[7], sizeof(v[7]), "%u", c->lockdown_threshold);
    snprintf(v[8], sizeof(v[8]), "%u", svd_limit_drain_ms(c));
    snprintf(v[9], sizeof(v[9]), "%u", c->max_actors);
    args[0] = actor;
    for (int i = 0; i < 10; i++)
        args[i + 1] = v[i];
    if (limit_query(s, ST_LIMIT_ADMIT, 11, args, admit_take, &a, 3) != 0)
        return -1;
    *result = (int)a.result;
    *wait_ms = (uint64_t)a.wait_ms;
    *why = a.why;
    return 0;
}

static int
status_take(void *ctx, const char *const *e)
{
    struct svd_store_limit_state *st = ctx;
    char *end;
    int64_t p, n, k;

    if (e[0] == NULL || *e[0] == '\0')
        return -1;
    errno = 0;
    st->tokens = strtod(e[0], &end);
    if (errno != 0 || *end != '\0' || parse_i64(e[1], &p) != 0 || p < 0 ||
        parse_i64(e[2], &n) != 0 || n < 0 || parse_i64(e[3], &k) != 0 || k < 0)
        return -1;
    st->pressure = p > UINT32_MAX ? UINT32_MAX : (uint32_t)p;
    st->decrypts = (uint64_t)n;
    st->actors = (uint64_t)k;
    return 0;
}

int
svd_store_limit_status(struct svd_store *s, struct svd_store_limit_state *st)
{
    const struct svd_conf *c;
    char v[3][24];
    const char *args[3] = { v[0], v[1], v[2] };

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    c = s->conf;
    snprintf(v[0], sizeof(v[0]), "%u", c->global.interval_ms);
    snprintf(v[1], sizeof(v[1]), "%u", c->global.burst);
    snprintf(v[2], sizeof(v[2]), "%u", svd_limit_drain_ms(c));
    memset(st, 0, sizeof(*st));
    return limit_query(s, ST_LIMIT_STATUS, 3, args, status_take, st, 4);
}

int
svd_store_limit_reset(struct svd_store *s)
{
    struct dbh *d;
    apr_pool_t *p = NULL;
    int r = -1;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    SVD_ASSERT(s->conf->driver == SVD_DRIVER_PGSQL);
    if ((d = svd_reader_get(s)) == NULL)
        return -1;
    if (d->h == NULL)
        goto out;
    apr_pool_create(&p, d->pool);
    r = svd_q_exec(s, d, p, ST_LIMIT_RESET, NULL, 0, NULL);
out:
    if (p != NULL)
        apr_pool_destroy(p);
    svd_reader_put(s, d, r != 0);
    return r;
}
