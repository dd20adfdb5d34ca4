/*
 * svd_store_conn.c - the share store's connections and readers: connect,
 * prepare, run a statement, check and reconnect (pgsql), the pool of
 * reader connections, and the share reads of svd_store.h (a request's
 * shares with the lock-down state, the lock-down state alone).
 *
 * Each connection (struct dbh) is owned by exactly one thread at a time:
 * the writer's by the writer thread, readers by whoever holds them from
 * svd_reader_get() to svd_reader_put(). Each has its own unmanaged APR pool
 * (own allocator), and every query runs in a subpool destroyed right after,
 * so driver copies of rows never outlive the call. Entries that held key2b
 * are cleansed in place before their pool goes.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <apr_pools.h>
#include <apu.h>
#include <apr_dbd.h>

#include "svd.h"
#include "svd_clock.h"
#include "svd_conf.h"
#include "svd_log.h"
#include "svd_store_int.h"
#include "sv_format.h"
#include "sv_hex.h"
#include "sv_secret.h"

/* Forget the connection; busy is not written at all (a memset would clear
 * it for a moment, and svd_reader_get reads it under rmu from another
 * thread). */
static void
dbh_forget(struct dbh *d)
{
    d->pool = NULL;
    d->h = NULL;
    memset(d->st, 0, sizeof(d->st));
}

/*
 * The driver's message for a failed call, first line only: libpq appends
 * DETAIL and CONTEXT lines that may echo row values or statement
 * parameters (a key2b among them), and those never reach the log. A
 * per-thread copy: each handle is used by one thread at a time.
 */
const char *
svd_dbd_err(struct svd_store *s, struct dbh *d, int rv)
{
    static __thread char line[200];
    const char *e = d->h != NULL ? apr_dbd_error(s->driver, d->h, rv) : NULL;
    size_t n;

    if (e == NULL || *e == '\0')
        return "unknown database error";
    n = strcspn(e, "\r\n");
    if (n >= sizeof(line))
        n = sizeof(line) - 1;
    memcpy(line, e, n);
    line[n] = '\0';
    return line;
}

void
svd_dbh_close(struct svd_store *s, struct dbh *d)
{
    if (d->h != NULL)
        (void)apr_dbd_close(s->driver, d->h); /* the drivers register no cleanup */
    if (d->pool != NULL)
        apr_pool_destroy(d->pool);
    dbh_forget(d);
}

/* Connect one handle and prepare every statement. */
int
svd_dbh_open(struct svd_store *s, struct dbh *d, char *err, size_t errlen)
{
    const char *e = NULL;
    apr_status_t rv;
    int r = -1;

    dbh_forget(d);
    if (apr_pool_create_unmanaged_ex(&d->pool, NULL, NULL) != APR_SUCCESS) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rv = apr_dbd_open_ex(s->driver, d->pool, s->params, &d->h, &e);
    if (rv != APR_SUCCESS || d->h == NULL) {
        snprintf(err, errlen, "cannot open the %s store: %s", apr_dbd_name(s->driver),
                 e != NULL ? e : "connection failed");
        d->h = NULL;
        goto out;
    }
    if (s->conf->driver == SVD_DRIVER_SQLITE3) {
        /* secure_delete: a deleted row's bytes (a key2b) are overwritten
         * in the page, not left in free space; journal_size_limit: the WAL
         * is cut back after it has been reset. The writer also checkpoints
         * the WAL with TRUNCATE after deletions (writer_checkpoint). */
        char busy[48];
        const char *const pragmas[] = { "PRAGMA journal_mode = WAL", busy,
                                        "PRAGMA secure_delete = ON",
                                        "PRAGMA journal_size_limit = 1048576" };
        int nrows;

        snprintf(busy, sizeof(busy), "PRAGMA busy_timeout = %u", s->conf->store_timeout_ms);
        for (size_t i = 0; i < SVD_ARRAY_LEN(pragmas); i++) {
            apr_dbd_results_t *res = NULL;
            apr_dbd_row_t *row = NULL;
            if ((rv = apr_dbd_select(s->driver, d->pool, d->h, &res, pragmas[i], 1)) != 0) {
                snprintf(err, errlen, "%s: %s", pragmas[i], svd_dbd_err(s, d, rv));
                goto out;
            }
            while (apr_dbd_get_row(s->driver, d->pool, res, &row, -1) == 0)
                ;
        }
        if ((rv = apr_dbd_query(s->driver, d->h, &nrows, "PRAGMA synchronous = FULL")) != 0 ||
            (rv = apr_dbd_query(s->driver, d->h, &nrows, "PRAGMA cache_size = -1024")) != 0) {
            snprintf(err, errlen, "PRAGMA: %s", svd_dbd_err(s, d, rv));
            goto out;
        }
    } else {
        /*
         * Per session, whatever the server's defaults: a statement that
         * hangs fails after store.timeout (so does a wait for a lock), and a
         * COMMIT returns only once it is durable (synchronous_commit may be
         * off for the database or the role: STORE answers after COMMIT).
         */
        char st[64], lt[64];
        const char *const sets[] = { st, lt, "SET synchronous_commit = on" };
        int nrows;

        snprintf(st, sizeof(st), "SET statement_timeout = %u", s->conf->store_timeout_ms);
        snprintf(lt, sizeof(lt), "SET lock_timeout = %u", s->conf->store_timeout_ms);
        for (size_t i = 0; i < SVD_ARRAY_LEN(sets); i++)
            if ((rv = apr_dbd_query(s->driver, d->h, &nrows, sets[i])) != 0) {
                snprintf(err, errlen, "%s: %s", sets[i], svd_dbd_err(s, d, rv));
                goto out;
            }
    }
    r = 0;
out:
    if (r != 0)
        svd_dbh_close(s, d);
    return r;
}

/* Prepare the statements (after the schema is known to be there). */
int
svd_dbh_prepare(struct svd_store *s, struct dbh *d, char *err, size_t errlen)
{
    for (int i = 0; i < ST__N; i++) {
        char label[16];
        apr_status_t rv;

        snprintf(label, sizeof(label), "svd%d", i);
        d->st[i] = NULL;
        rv = apr_dbd_prepare(s->driver, d->pool, d->h, s->sql[i], label, &d->st[i]);
        if (rv != 0) {
            snprintf(err, errlen, "cannot prepare a store statement (%d): %s", i,
                     svd_dbd_err(s, d, rv));
            return -1;
        }
    }
    return 0;
}

/* Run a prepared non-select. */
int
svd_q_exec(struct svd_store *s, struct dbh *d, apr_pool_t *p, int st, int *nrows, int nargs,
           const char **args)
{
    int rv, n = 0;

    rv = apr_dbd_pquery(s->driver, p, d->h, &n, d->st[st], nargs, args);
    if (rv != 0) {
        svd_err("store: statement %d failed: %s", st, svd_dbd_err(s, d, rv));
        return -1;
    }
    if (nrows != NULL)
        *nrows = n;
    return 0;
}

int
svd_q_select(struct svd_store *s, struct dbh *d, apr_pool_t *p, int st,
             apr_dbd_results_t **res, int nargs, const char **args)
{
    int rv;

    *res = NULL;
    rv = apr_dbd_pselect(s->driver, p, d->h, res, d->st[st], 1, nargs, args);
    if (rv != 0) {
        svd_err("store: query %d failed: %s", st, svd_dbd_err(s, d, rv));
        return -1;
    }
    return 0;
}

int
svd_q_raw(struct svd_store *s, struct dbh *d, const char *sql)
{
    int n, rv = apr_dbd_query(s->driver, d->h, &n, sql);

    if (rv != 0) {
        svd_err("store: %s failed: %s", sql, svd_dbd_err(s, d, rv));
        return -1;
    }
    return 0;
}

/* 1 when the connection still answers a trivial query. */
static int
dbh_alive(struct svd_store *s, struct dbh *d)
{
    apr_pool_t *p = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int ok;

    if (d->h == NULL)
        return 0;
    apr_pool_create(&p, d->pool);
    ok = apr_dbd_select(s->driver, p, d->h, &res, "SELECT 1", 1) == 0;
    if (ok)
        while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0)
            ;
    apr_pool_destroy(p);
    return ok;
}

#define SVD_RECONNECT_DELAY_MS 1000

/*
 * After a failed statement: keep the connection when it still answers (the
 * statement failed, the connection did not: a constraint, a bad value),
 * otherwise (pgsql: the server restarted, the connection broke) reconnect.
 * Always a fresh connection with its statements prepared again:
 * apr_dbd_check_conn() would let libpq reset the connection silently, and a
 * reset connection has lost its prepared statements. A failed attempt is
 * not repeated for SVD_RECONNECT_DELAY_MS on that handle: while the
 * database is down, requests fail at once instead of each trying to connect
 * (and logging it). A broken connection bumps s->broken_gen, so that the
 * other readers are checked before their next use (svd_reader_get). sqlite3
 * handles are never reconnected.
 */
int
svd_dbh_check(struct svd_store *s, struct dbh *d)
{
    char err[256];

    uint64_t gen = __atomic_load_n(&s->broken_gen, __ATOMIC_RELAXED);

    if (s->conf->driver != SVD_DRIVER_PGSQL)
        return d->h != NULL ? 0 : -1;
    if (dbh_alive(s, d)) {
        d->gen = gen;
        return 0;
    }
    if (d->h != NULL) {
        svd_warn("store: the pgsql connection is broken; reconnecting");
        svd_dbh_close(s, d);
        d->retry_at = 0;
        gen = __atomic_add_fetch(&s->broken_gen, 1, __ATOMIC_RELAXED);
    }
    if (svd_now_ms() < d->retry_at)
        return -1; /* the last attempt failed just now: fail fast, quietly */
    if (svd_dbh_open(s, d, err, sizeof(err)) != 0 ||
        svd_dbh_prepare(s, d, err, sizeof(err)) != 0) {
        svd_err("store: reconnect failed (next attempt in a second at the earliest): %s", err);
        svd_dbh_close(s, d);
        d->retry_at = svd_now_ms() + SVD_RECONNECT_DELAY_MS;
        return -1;
    }
    d->retry_at = 0;
    d->gen = gen;
    return 0;
}

/* ---- readers ------------------------------------------------------------ */

/* A free reader, waiting at most store.timeout for one (NULL then: every
 * reader is busy, as when the store hangs; the caller fails with a store
 * error instead of queueing for ever). */
struct dbh *
svd_reader_get(struct svd_store *s)
{
    struct dbh *d = NULL;
    struct timespec ts;
    int e = 0;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(s->conf->store_timeout_ms / 1000);
    ts.tv_nsec += (long)(s->conf->store_timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    AZ(pthread_mutex_lock(&s->rmu));
    for (;;) {
        /* a free reader that is connected, else any free one (which then
         * reconnects, or fails at once while its last attempt is recent):
         * once the database is back, requests go to the readers that
         * reconnected first */
        for (unsigned i = 0; i < s->nreaders; i++)
            if (!s->readers[i].busy && (d == NULL || (d->down && !s->readers[i].down)))
                d = &s->readers[i];
        if (d != NULL)
            d->busy = 1;
        if (d != NULL || e == ETIMEDOUT)
            break;
        e = pthread_cond_timedwait(&s->rcv, &s->rmu, &ts);
        SVD_ASSERT(e == 0 || e == ETIMEDOUT);
    }
    AZ(pthread_mutex_unlock(&s->rmu));
    if (d == NULL) {
        svd_err("store: no reader connection free within store.timeout (%u ms)",
                s->conf->store_timeout_ms);
        return NULL;
    }
    /* a reader not used since another connection was found broken is
     * checked (one SELECT 1) before use, not failed on by a request */
    if (s->conf->driver == SVD_DRIVER_PGSQL
        && (d->h == NULL || d->gen != __atomic_load_n(&s->broken_gen, __ATOMIC_RELAXED)))
        (void)svd_dbh_check(s, d);
    return d;
}

void
svd_reader_put(struct svd_store *s, struct dbh *d, int failed)
{
    if (failed && s->conf->driver == SVD_DRIVER_PGSQL)
        (void)svd_dbh_check(s, d);
    AZ(pthread_mutex_lock(&s->rmu));
    d->down = d->h == NULL;
    d->busy = 0;
    AZ(pthread_cond_signal(&s->rcv));
    AZ(pthread_mutex_unlock(&s->rmu));
}

static int
read_lock(struct svd_store *s, struct dbh *d, apr_pool_t *p, int *locked, uint64_t *since)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    int seen = 0;

    if (svd_q_select(s, d, p, ST_LOCK, &res, 0, NULL) != 0)
        return -1;
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        const char *l = apr_dbd_get_entry(s->driver, row, 0);
        const char *t = apr_dbd_get_entry(s->driver, row, 1);
        *locked = l == NULL || strcmp(l, "0") != 0; /* anything but 0: locked */
        if (svd_parse_u64(t, since) != 0)
            *since = 0;
        seen = 1;
    }
    if (!seen) {
        svd_err("store: the sv_state row is missing");
        return -1;
    }
    return 0;
}

static void
wipe_entry(const char *e)
{
    if (e != NULL)
        sv_cleanse((char *)(uintptr_t)e, strlen(e));
}

/* Fill *sh from a row's entries e[0..7] (id, record, field, key2 public,
 * key2b, state, created, retired); without with_key2b, e[4] is not read
 * and sh->key2b is zeros. 0 when well-formed. */
static int
share_from_row(const char *const e[8], int with_key2b, struct svd_share *sh)
{
    uint64_t st = 0;

    if (!with_key2b)
        memset(sh->key2b, 0, sizeof(sh->key2b));
    if (svd_parse_u64(e[0], &sh->id) == 0 &&
        e[1] != NULL && sv_uuid_parse(e[1], strlen(e[1]), sh->uuid) == SV_OK &&
        e[2] != NULL && strlen(e[2]) <= SV_FIELD_MAX &&
        e[3] != NULL && sv_hex_decode(e[3], strlen(e[3]), sh->pub, SV_X25519_LEN) == SV_OK &&
        (!with_key2b || (e[4] != NULL &&
                         sv_hex_decode(e[4], strlen(e[4]), sh->key2b, SV_X25519_LEN) == SV_OK)) &&
        svd_parse_u64(e[5], &st) == 0 && svd_parse_u64(e[6], &sh->created) == 0 &&
        svd_parse_u64(e[7], &sh->retired) == 0) {
        snprintf(sh->field, sizeof(sh->field), "%s", e[2]);
        sh->state = (int)st;
        return 0;
    }
    sv_cleanse(sh->key2b, sizeof(sh->key2b));
    return -1;
}

/*
 * The shares of one request and the durable lock state: one statement (one
 * read transaction) for up to GETN_MAX ids, rows matched back to the request
 * by id (a repeated id gets the same row). key2b is selected only
 * with_key2b; otherwise the statements select NULL in its place.
 */
static int
store_get(struct svd_store *s, const uint64_t *ids, unsigned n, int with_key2b,
          struct svd_share *out, int *found, int *locked, uint64_t *locked_since)
{
    struct dbh *d;
    apr_pool_t *p = NULL;
    int r = -1, seen_lock = 0;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    SVD_ASSERT(n > 0);
    for (unsigned i = 0; i < n; i++)
        found[i] = 0;
    if ((d = svd_reader_get(s)) == NULL)
        return -1;
    if (d->h == NULL)
        goto out;
    apr_pool_create(&p, d->pool);
    for (unsigned base = 0; base < n; base += GETN_MAX) {
        unsigned k = n - base < GETN_MAX ? n - base : GETN_MAX, nargs = 1, t;
        int stl = with_key2b ? ST_GETL : ST_PUBL, stn = stl;
        char idbuf[GETN_MAX][24];
        const char *args[GETN_MAX];
        apr_dbd_results_t *res;
        apr_dbd_row_t *row = NULL;

        if (k > 1) {
            for (t = 0; svd_getn_size[t] < k; t++)
                ;
            stn = (with_key2b ? ST_GET2 : ST_PUB2) + (int)t;
            nargs = svd_getn_size[t];
        }
        for (unsigned a = 0; a < nargs; a++) {
            snprintf(idbuf[a], sizeof(idbuf[a]), "%" PRIu64, ids[base + (a < k ? a : 0)]);
            args[a] = idbuf[a];
        }
        if (svd_q_select(s, d, p, stn, &res, (int)nargs, args) != 0)
            goto out;
        while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
            const char *e[8];
            const char *l = apr_dbd_get_entry(s->driver, row, 7);
            uint64_t rid;
            int first = -1;

            for (int c = 0; c < 7; c++)
                e[c] = apr_dbd_get_entry(s->driver, row, c);
            e[7] = apr_dbd_get_entry(s->driver, row, 9);
            if (e[0] != NULL && e[0][0] == '\0')
                e[0] = NULL; /* pgsql's driver gives NULL as "" */
            if (stn == stl || e[0] == NULL) {
                /* ST_GETL, ST_PUBL: every row; the unions: the row without
                 * a share */
                *locked = l == NULL || strcmp(l, "0") != 0; /* anything but 0: locked */
                if (svd_parse_u64(apr_dbd_get_entry(s->driver, row, 8), locked_since) != 0)
                    *locked_since = 0;
                seen_lock = 1;
            }
            if (e[0] == NULL)
                continue; /* the lock-state row, or no such share (the LEFT JOIN) */
            if (svd_parse_u64(e[0], &rid) != 0) {
                svd_err("store: a share row has a malformed id");
                wipe_entry(e[4]);
                continue;
            }
            for (unsigned i = base; i < base + k; i++) {
                if (ids[i] != rid || found[i])
                    continue;
                if (first >= 0) {
                    out[i] = out[first];
                    found[i] = 1;
                } else if (share_from_row(e, with_key2b, &out[i]) == 0) {
                    found[i] = 1;
                    first = (int)i;
                } else {
                    svd_err("store: share %" PRIu64 " has a malformed row", rid);
                    break;
                }
            }
            wipe_entry(e[4]);
        }
    }
    if (!seen_lock) {
        svd_err("store: the sv_state row is missing");
        goto out;
    }
    r = 0;
out:
    if (p != NULL)
        apr_pool_destroy(p);
    svd_reader_put(s, d, r != 0);
    return r;
}

int
svd_store_get(struct svd_store *s, const uint64_t *ids, unsigned n, struct svd_share *out,
              int *found, int *locked, uint64_t *locked_since)
{
    return store_get(s, ids, n, 1, out, found, locked, locked_since);
}

int
svd_store_get_public(struct svd_store *s, const uint64_t *ids, unsigned n,
                     struct svd_share *out, int *found)
{
    int locked = 0;
    uint64_t since = 0;

    return store_get(s, ids, n, 0, out, found, &locked, &since);
}

int
svd_store_lock_state(struct svd_store *s, int *locked, uint64_t *since)
{
    struct dbh *d;
    apr_pool_t *p = NULL;
    int r = -1;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    if ((d = svd_reader_get(s)) == NULL)
        return -1;
    if (d->h == NULL)
        goto out;
    apr_pool_create(&p, d->pool);
    r = read_lock(s, d, p, locked, since);
out:
    if (p != NULL)
        apr_pool_destroy(p);
    svd_reader_put(s, d, r != 0);
    return r;
}
