/*
 * svd_store_list.c - the share store's counts and listings: share counts by
 * state (cached for two seconds), the page of shares reconcile compares
 * with the main database, the page of every share (retired ones included)
 * check compares with it, the next batch of retired shares to purge, and
 * the retired shares an operator may restore. Each is one read on a reader
 * connection; none selects key2b.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <apr_pools.h>
#include <apu.h>
#include <apr_dbd.h>

#include "svd.h"
#include "svd_clock.h"
#include "svd_conf.h"
#include "svd_log.h"
#include "svd_store_int.h"
#include "sv_format.h"

int
svd_store_counts(struct svd_store *s, uint64_t *active, uint64_t *pending, uint64_t *retired)
{
    struct dbh *d;
    apr_pool_t *p = NULL;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    uint64_t now = svd_now_ms(), a = 0, pe = 0, re = 0;
    int r = -1;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    AZ(pthread_mutex_lock(&s->cmu));
    if (s->c_valid && now - s->c_when < 2000) {
        *active = s->c_active;
        *pending = s->c_pending;
        *retired = s->c_retired;
        AZ(pthread_mutex_unlock(&s->cmu));
        return 0;
    }
    AZ(pthread_mutex_unlock(&s->cmu));
    if ((d = svd_reader_get(s)) == NULL)
        return -1;
    if (d->h == NULL)
        goto out;
    apr_pool_create(&p, d->pool);
    if (svd_q_select(s, d, p, ST_COUNTS, &res, 0, NULL) != 0)
        goto out;
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        uint64_t st = 0, c = 0;
        if (svd_parse_u64(apr_dbd_get_entry(s->driver, row, 0), &st) != 0 ||
            svd_parse_u64(apr_dbd_get_entry(s->driver, row, 1), &c) != 0)
            continue;
        if (st == SV_SHARE_ACTIVE)
            a = c;
        else if (st == SV_SHARE_PENDING)
            pe = c;
        else if (st == COUNT_RETIRED)
            re = c;
    }
    AZ(pthread_mutex_lock(&s->cmu));
    s->c_active = *active = a;
    s->c_pending = *pending = pe;
    s->c_retired = *retired = re;
    s->c_when = now;
    s->c_valid = 1;
    AZ(pthread_mutex_unlock(&s->cmu));
    r = 0;
out:
    if (p != NULL)
        apr_pool_destroy(p);
    svd_reader_put(s, d, r != 0);
    return r;
}

/* Columns 0..4 of a listed share (id, record, field, state, created) into
 * the entry's own members; 0 when well-formed. */
static int
listed_from_row(struct svd_store *s, apr_dbd_row_t *row, uint64_t *id,
                uint8_t uuid[SV_UUID_LEN], char field[SV_FIELD_MAX + 1], uint64_t *state,
                uint64_t *created)
{
    const char *u = apr_dbd_get_entry(s->driver, row, 1);
    const char *f = apr_dbd_get_entry(s->driver, row, 2);

    if (svd_parse_u64(apr_dbd_get_entry(s->driver, row, 0), id) != 0 || u == NULL ||
        sv_uuid_parse(u, strlen(u), uuid) != SV_OK || f == NULL || strlen(f) > SV_FIELD_MAX ||
        svd_parse_u64(apr_dbd_get_entry(s->driver, row, 3), state) != 0 ||
        svd_parse_u64(apr_dbd_get_entry(s->driver, row, 4), created) != 0)
        return -1;
    snprintf(field, SV_FIELD_MAX + 1, "%s", f);
    return 0;
}

/* Fill entry i of out from a row; 0 when well-formed. */
typedef int list_fill_fn(struct svd_store *s, apr_dbd_row_t *row, void *out, unsigned i);

/*
 * A page of a listing: statement stn with args, and LIMIT limit + 1 as its
 * last parameter (added here), so that a row past the page says *more.
 * Malformed rows are logged (what: the listing) and skipped.
 */
static int
store_list(struct svd_store *s, int stn, const char *const *args, int nargs, unsigned limit,
           list_fill_fn *fill, void *out, unsigned *n, int *more, const char *what)
{
    struct dbh *d;
    apr_pool_t *p = NULL;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    const char *a[8];
    char lim[16];
    int r = -1;

    SVD_ASSERT(nargs >= 0 && (size_t)nargs < SVD_ARRAY_LEN(a));
    *n = 0;
    *more = 0;
    for (int i = 0; i < nargs; i++)
        a[i] = args[i];
    snprintf(lim, sizeof(lim), "%u", limit + 1);
    a[nargs] = lim;
    if ((d = svd_reader_get(s)) == NULL)
        return -1;
    if (d->h == NULL)
        goto out;
    apr_pool_create(&p, d->pool);
    if (svd_q_select(s, d, p, stn, &res, nargs + 1, a) != 0)
        goto out;
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        if (*n >= limit) {
            *more = 1;
            continue;
        }
        if (fill(s, row, out, *n) != 0) {
            svd_err("store: malformed share row while listing %s", what);
            continue;
        }
        (*n)++;
    }
    r = 0;
out:
    if (p != NULL)
        apr_pool_destroy(p);
    svd_reader_put(s, d, r != 0);
    return r;
}

static int
recon_fill(struct svd_store *s, apr_dbd_row_t *row, void *out, unsigned i)
{
    sv_recon_entry *e = &((sv_recon_entry *)out)[i];
    uint64_t st = 0;

    memset(e, 0, sizeof(*e));
    if (listed_from_row(s, row, &e->id, e->uuid, e->name, &st, &e->created) != 0)
        return -1;
    e->state = (uint8_t)st;
    return 0;
}

int
svd_store_recon_list(struct svd_store *s, uint64_t after, uint64_t older_than, unsigned limit,
                     sv_recon_entry *out, unsigned *n, int *more)
{
    char a1[24], a2[24];
    const char *args[2] = { a1, a2 };

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    snprintf(a1, sizeof(a1), "%" PRIu64, after);
    snprintf(a2, sizeof(a2), "%" PRIu64, older_than);
    return store_list(s, ST_RLIST, args, 2, limit, recon_fill, out, n, more, "shares");
}

static int
scan_fill(struct svd_store *s, apr_dbd_row_t *row, void *out, unsigned i)
{
    sv_scan_entry *e = &((sv_scan_entry *)out)[i];
    uint64_t st = 0;

    memset(e, 0, sizeof(*e));
    if (listed_from_row(s, row, &e->id, e->uuid, e->name, &st, &e->created) != 0 ||
        svd_parse_u64(apr_dbd_get_entry(s->driver, row, 5), &e->retired) != 0 ||
        (st != SV_SHARE_ACTIVE && st != SV_SHARE_PENDING))
        return -1;
    e->state = (uint8_t)st;
    return 0;
}

int
svd_store_recon_scan(struct svd_store *s, uint64_t after, unsigned limit, sv_scan_entry *out,
                     unsigned *n, int *more)
{
    char a0[24];
    const char *args[1] = { a0 };

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    snprintf(a0, sizeof(a0), "%" PRIu64, after);
    return store_list(s, ST_RSCAN, args, 1, limit, scan_fill, out, n, more, "every share");
}

int
svd_store_purge_scan(struct svd_store *s, uint64_t retired_before, unsigned batch,
                     uint64_t *first, uint64_t *last, unsigned *n)
{
    struct dbh *d;
    apr_pool_t *p = NULL;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    char a0[24], a1[16];
    const char *args[2] = { a0, a1 };
    int r = -1;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    *first = *last = 0;
    *n = 0;
    snprintf(a0, sizeof(a0), "%" PRIu64, retired_before);
    snprintf(a1, sizeof(a1), "%u", batch);
    if ((d = svd_reader_get(s)) == NULL)
        return -1;
    if (d->h == NULL)
        goto out;
    apr_pool_create(&p, d->pool);
    if (svd_q_select(s, d, p, ST_PURGE_SCAN, &res, 2, args) != 0)
        goto out;
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        uint64_t id;
        if (svd_parse_u64(apr_dbd_get_entry(s->driver, row, 0), &id) != 0)
            continue;
        if (*n == 0 || id < *first)
            *first = id;
        if (id > *last)
            *last = id;
        (*n)++;
    }
    r = 0;
out:
    if (p != NULL)
        apr_pool_destroy(p);
    svd_reader_put(s, d, r != 0);
    return r;
}

static int
retired_fill(struct svd_store *s, apr_dbd_row_t *row, void *out, unsigned i)
{
    struct svd_retired *e = &((struct svd_retired *)out)[i];
    const char *why = apr_dbd_get_entry(s->driver, row, 6);
    uint64_t st = 0;

    memset(e, 0, sizeof(*e));
    if (listed_from_row(s, row, &e->id, e->uuid, e->field, &st, &e->created) != 0 ||
        svd_parse_u64(apr_dbd_get_entry(s->driver, row, 5), &e->retired) != 0)
        return -1;
    snprintf(e->why, sizeof(e->why), "%s", why != NULL ? why : "");
    e->state = (int)st;
    return 0;
}

int
svd_store_retired_list(struct svd_store *s, uint64_t after, uint64_t since,
                       const uint8_t *uuid, unsigned limit, struct svd_retired *out,
                       unsigned *n, int *more)
{
    char a0[24], a1[24], u[SV_UUID_STR_LEN + 1];
    const char *args[4] = { a0, a1, u, u };

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    snprintf(a0, sizeof(a0), "%" PRIu64, after);
    snprintf(a1, sizeof(a1), "%" PRIu64, since);
    if (uuid != NULL)
        sv_uuid_format(uuid, u);
    else
        u[0] = '\0';
    return store_list(s, ST_RETIRED_LIST, args, 4, limit, retired_fill, out, n, more,
                      "retired shares");
}
