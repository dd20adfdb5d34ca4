/*
 * svd_store.c - share store on apr-util DBD: reader pool and group-commit
 * writer.
 *
 * Each connection (struct dbh) is owned by exactly one thread at a time:
 * the writer's by the writer thread, readers by whoever holds them from
 * svd_reader_get() to svd_reader_put(). Each has its own unmanaged APR pool
 * (own allocator), and every query runs in a subpool destroyed right after, so
 * driver copies of rows never outlive the call. Entries that held key2b are
 * cleansed in place before their pool goes.
 *
 * Writes are queued as struct wop on the caller's stack; the writer takes
 * up to store.batch_max of them, runs them in one transaction and wakes the
 * callers after the COMMIT. When the group's transaction fails, each
 * operation is retried alone so that one bad operation fails alone.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <apr_pools.h>
#include <apr_strings.h>
#include <apu.h>
#include <apr_dbd.h>

#include "svd.h"
#include "svd_clock.h"
#include "svd_done.h"
#include "svd_file.h"
#include "svd_log.h"
#include "svd_schema.h"
#include "svd_store.h"
#include "svd_store_int.h"
#include "sv_secret.h"
#include "sv_hex.h"

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

enum wkind { W_PUT, W_RELEASE, W_RDEL, W_LOCK, W_UNLOCK, W_PURGE, W_RESTORE };

struct wop {
    struct wop *next;
    enum wkind kind;
    struct svd_done done;       /* the owner waits for the writer's post */
    int res;                    /* the writer's result */
    int removed;                /* it deleted rows (set by exec_op) */
    int exists;                 /* W_PUT of STORE: the record had shares already,
                                 * nothing written, the op fails (set by exec_op) */
    /* W_PUT */
    const uint8_t *uuid;
    unsigned n;
    const char *const *names;
    const uint8_t *const *pubs;
    const uint8_t *const *key2bs;
    int state;
    const uint64_t *replaces;   /* pending shares of a rotation; NULL for STORE */
    uint64_t *ids;
    /* W_RELEASE */
    const sv_release_item *items;
    enum svd_release_mode mode;
    unsigned *retired, *kept, *refused;
    /* W_RDEL */
    const sv_recon_ref *refs;
    uint64_t older;
    /* W_LOCK: since, reason; W_UNLOCK: the lock-down it lifts (since) */
    uint64_t since;
    const char *reason;
    /* W_PURGE: retired before older, ids first..last; W_RESTORE */
    uint64_t first, last;
    enum svd_restore_by by;
    uint64_t value;             /* W_RESTORE: the id or the time */
    unsigned *count;            /* W_RDEL, W_UNLOCK, W_PURGE, W_RESTORE */
};
static int apr_ready;

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

int
svd_store_prelock(const struct svd_conf *conf, int *lock_fd, char *err, size_t errlen)
{
    char path[4200];
    int fd;

    *lock_fd = -1;
    if (conf->driver != SVD_DRIVER_SQLITE3)
        return 0;
    snprintf(path, sizeof(path), "%s.lock", conf->store_path);
    if ((fd = svd_open_regular(path, O_RDWR | O_CREAT, 0600, "store.path lock file", err,
                               errlen)) < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "store.path: %s is in use by another splitvaultd (%s)",
                 conf->store_path, strerror(errno));
        close(fd);
        return -1;
    }
    *lock_fd = fd;
    return 0;
}

static int
store_setup(const struct svd_conf *conf, struct svd_store **out, char *err, size_t errlen)
{
    struct svd_store *s;
    apr_status_t rv;

    *out = NULL;
    if (!apr_ready) {
        if (apr_initialize() != APR_SUCCESS) {
            snprintf(err, errlen, "cannot initialise APR");
            return -1;
        }
        apr_ready = 1;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->magic = SVD_STORE_MAGIC;
    s->conf = conf;
    s->params = conf->driver == SVD_DRIVER_SQLITE3 ? conf->store_path : conf->store_params;
    if (conf->driver == SVD_DRIVER_PGSQL) {
        /*
         * libpq waits for ever by default: a connect gets store.timeout
         * (whole seconds, at least 2), a dead server or network is noticed
         * by TCP keepalives and, for unacknowledged writes, by
         * tcp_user_timeout. Set first, so that store.params may override
         * any of them (later keywords win); a URI cannot be prefixed.
         */
        unsigned ct = (conf->store_timeout_ms + 999) / 1000;
        if (strncmp(conf->store_params, "postgres://", 11) == 0 ||
            strncmp(conf->store_params, "postgresql://", 13) == 0) {
            svd_warn("store.params is a URI: set connect_timeout, keepalives and "
                     "tcp_user_timeout in it yourself");
        } else if (apr_pool_create_unmanaged_ex(&s->pool, NULL, NULL) == APR_SUCCESS) {
            s->params = apr_psprintf(s->pool, "connect_timeout=%u keepalives=1 "
                                     "keepalives_idle=30 keepalives_interval=10 "
                                     "keepalives_count=3 tcp_user_timeout=%u %s",
                                     ct < 2 ? 2 : ct, conf->store_timeout_ms,
                                     conf->store_params);
        }
    }
    s->wtail = &s->whead;
    AZ(pthread_mutex_init(&s->rmu, NULL));
    {
        pthread_condattr_t ca;
        AZ(pthread_condattr_init(&ca));
        AZ(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
        AZ(pthread_cond_init(&s->rcv, &ca));
        AZ(pthread_condattr_destroy(&ca));
    }
    AZ(pthread_mutex_init(&s->wmu, NULL));
    {
        pthread_condattr_t ca;
        AZ(pthread_condattr_init(&ca));
        AZ(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
        AZ(pthread_cond_init(&s->wcv_work, &ca));
        AZ(pthread_condattr_destroy(&ca));
    }
    AZ(pthread_mutex_init(&s->cmu, NULL));
    *out = s;
    if (s->pool == NULL && apr_pool_create_unmanaged_ex(&s->pool, NULL, NULL) != APR_SUCCESS) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    svd_store_sql_init(s);
    apr_dbd_init(s->pool);
    rv = apr_dbd_get_driver(s->pool, conf->driver == SVD_DRIVER_SQLITE3 ? "sqlite3" : "pgsql",
                            &s->driver);
    if (rv != APR_SUCCESS) {
        snprintf(err, errlen, "store.driver: apr-util DBD driver %s not available (%s); on "
                 "Debian install libaprutil1-dbd-%s",
                 conf->driver == SVD_DRIVER_SQLITE3 ? "sqlite3" : "pgsql",
                 rv == APR_EDSOOPEN ? "cannot load it" : "not found",
                 conf->driver == SVD_DRIVER_SQLITE3 ? "sqlite3" : "pgsql");
        return -1;
    }
    return 0;
}

int
svd_store_init_schema(const struct svd_conf *conf, char *err, size_t errlen)
{
    struct svd_store *s = NULL;
    long version = 0;
    int r = -1, have;

    if (store_setup(conf, &s, err, errlen) != 0)
        goto out;
    if (svd_dbh_open(s, &s->writer, err, errlen) != 0)
        goto out;
    if ((have = svd_schema_version(s, &s->writer, &version)) < 0) {
        snprintf(err, errlen, "cannot read the schema version");
        goto out;
    }
    if (have) {
        r = svd_schema_current(s, &s->writer, version, err, errlen);
        goto out;
    }
    if (svd_schema_run(s, &s->writer, conf->driver == SVD_DRIVER_SQLITE3 ? svd_schema_sqlite3
                       : svd_schema_pgsql, err, errlen) != 0)
        goto out;
    svd_info("store: schema version %d created", SVD_SCHEMA_VERSION);
    r = 0;
out:
    svd_store_close(s);
    return r;
}

int
svd_store_open(const struct svd_conf *conf, struct svd_store **out, char *err, size_t errlen)
{
    struct svd_store *s = NULL;
    long version = 0;
    int r = -1, have;

    *out = NULL;
    if (store_setup(conf, &s, err, errlen) != 0)
        goto out;
    if (svd_dbh_open(s, &s->writer, err, errlen) != 0)
        goto out;
    if ((have = svd_schema_version(s, &s->writer, &version)) < 0) {
        snprintf(err, errlen, "store: cannot read the schema version");
        goto out;
    }
    if (have) {
        if (svd_schema_current(s, &s->writer, version, err, errlen) != 0)
            goto out;
    } else if (conf->driver == SVD_DRIVER_SQLITE3) {
        if (svd_schema_run(s, &s->writer, svd_schema_sqlite3, err, errlen) != 0)
            goto out;
        svd_info("store: new sqlite3 store %s (schema version %d)", conf->store_path,
                 SVD_SCHEMA_VERSION);
    } else {
        snprintf(err, errlen, "store: the pgsql database has no splitvaultd schema; apply "
                 "sql/daemon/pgsql.sql or run splitvaultd --init-store");
        goto out;
    }
    if (svd_dbh_prepare(s, &s->writer, err, errlen) != 0)
        goto out;
    s->nreaders = conf->store_readers;
    if ((s->readers = calloc(s->nreaders, sizeof(*s->readers))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (unsigned i = 0; i < s->nreaders; i++)
        if (svd_dbh_open(s, &s->readers[i], err, errlen) != 0 ||
            svd_dbh_prepare(s, &s->readers[i], err, errlen) != 0)
            goto out;
    *out = s;
    s = NULL;
    r = 0;
out:
    svd_store_close(s);
    return r;
}

void
svd_store_close(struct svd_store *s)
{
    if (s == NULL)
        return;
    CHECK_OBJ(s, SVD_STORE_MAGIC);
    SVD_ASSERT(!s->running);
    if (s->readers != NULL)
        for (unsigned i = 0; i < s->nreaders; i++)
            svd_dbh_close(s, &s->readers[i]);
    free(s->readers);
    svd_dbh_close(s, &s->writer);
    if (s->pool != NULL)
        apr_pool_destroy(s->pool);
    AZ(pthread_mutex_destroy(&s->rmu));
    AZ(pthread_cond_destroy(&s->rcv));
    AZ(pthread_mutex_destroy(&s->wmu));
    AZ(pthread_cond_destroy(&s->wcv_work));
    AZ(pthread_mutex_destroy(&s->cmu));
    s->magic = 0;
    free(s);
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

/* ---- writer --------------------------------------------------------------- */

/* sqlite3: the highest id ever used (AUTOINCREMENT's record). */
static int
sqlite_last_id(struct svd_store *s, apr_pool_t *p, uint64_t *last)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;

    *last = 0;
    if (svd_q_select(s, &s->writer, p, ST_SEQ, &res, 0, NULL) != 0)
        return -1;
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0)
        if (svd_parse_u64(apr_dbd_get_entry(s->driver, row, 0), last) != 0)
            *last = 0;
    return 0;
}

/* pgsql: n ids from the sequence. */
static int
pgsql_ids(struct svd_store *s, apr_pool_t *p, unsigned n, uint64_t *ids)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    char nb[16];
    const char *args[1] = { nb };
    unsigned got = 0;

    snprintf(nb, sizeof(nb), "%u", n);
    if (svd_q_select(s, &s->writer, p, ST_SEQ, &res, 1, args) != 0)
        return -1;
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0)
        if (got < n && svd_parse_u64(apr_dbd_get_entry(s->driver, row, 0), &ids[got]) == 0)
            got++;
    return got == n ? 0 : -1;
}

static const char *
release_why(enum svd_release_mode mode, int rotation)
{
    return mode == SVD_RELEASE_DISCARD ? "discard" : rotation ? "release" : "undo";
}

/* Run one operation inside the current transaction: 0, or -1 when the
 * transaction must fail. A STORE of an existing record writes nothing and
 * sets op->exists (0: the other operations of the group go on). */
static int
exec_op(struct svd_store *s, apr_pool_t *p, struct wop *op, uint64_t *next_id)
{
    char u[SV_UUID_STR_LEN + 1];
    char a0[24], a1[24], a2[24], a3[24];
    uint64_t now = svd_wall_s();
    int nrows;

    snprintf(a1, sizeof(a1), "%" PRIu64, now);
    switch (op->kind) {
    case W_PUT: {
        char pub[2 * SV_X25519_LEN + 1], k2b[2 * SV_X25519_LEN + 1], st[8];
        const char *args[9] = { a0, u, NULL, pub, k2b, st, a1, a1, a2 };
        int r = 0;

        sv_uuid_format(op->uuid, u);
        op->exists = 0;
        if (op->replaces == NULL) {
            /* STORE makes new records only: a record once (a race between
             * daemons on one store is decided by the primary key) */
            const char *ra[2] = { u, a1 };
            if (svd_q_exec(s, &s->writer, p, ST_RECORD_NEW, &nrows, 2, ra) != 0)
                return -1;
            if (nrows != 1) {
                op->exists = 1;
                return 0; /* nothing written: the group goes on */
            }
        }
        if (s->conf->driver == SVD_DRIVER_PGSQL) {
            if (pgsql_ids(s, p, op->n, op->ids) != 0)
                return -1;
        } else {
            for (unsigned i = 0; i < op->n; i++)
                op->ids[i] = ++*next_id;
        }
        snprintf(st, sizeof(st), "%d", op->state);
        for (unsigned i = 0; i < op->n && r == 0; i++) {
            snprintf(a0, sizeof(a0), "%" PRIu64, op->ids[i]);
            snprintf(a2, sizeof(a2), "%" PRIu64, op->replaces != NULL ? op->replaces[i] : 0);
            args[2] = op->names[i];
            sv_hex_encode(op->pubs[i], SV_X25519_LEN, pub);
            sv_hex_encode(op->key2bs[i], SV_X25519_LEN, k2b);
            r = svd_q_exec(s, &s->writer, p, ST_INSERT, &nrows, 9, args);
            sv_cleanse(k2b, sizeof(k2b));
        }
        return r;
    }
    case W_RELEASE: {
        /*
         * Per item (svd_store.h): a front end finishes a rotation (keep
         * the pending share that replaces exactly drop, then retire drop)
         * or undoes one (retire a pending drop); reconcile activates a
         * pending keep; a discard retires the pending shares of a refused
         * decrypt. Which items a mode may hold is decided before (h_release,
         * discard_pending) and asserted by svd_store_release; what an item
         * asks and the store's state does not allow is counted as refused.
         */
        unsigned retired = 0, kept = 0, refused = 0;
        /* a front end acts only on pending shares of the rotation window
         * (its own rotations are committed within it); older ones are
         * reconcile's. The daemon's own discard acts on any. */
        uint64_t window = s->conf->min_grace_s;
        char young[24];
        snprintf(young, sizeof(young), "%" PRIu64,
                 op->mode == SVD_RELEASE_FRONTEND && now > window ? now - window : 0);
        sv_uuid_format(op->uuid, u);
        for (unsigned i = 0; i < op->n; i++) {
            const sv_release_item *it = &op->items[i];
            int activated = 0;
            if (it->keep_id != 0) {
                /* reconcile: keep alone; a front end: keep and drop */
                const char *args[7] = { a1, a0, u, it->name, a2, young, a2 };
                snprintf(a0, sizeof(a0), "%" PRIu64, it->keep_id);
                snprintf(a2, sizeof(a2), "%" PRIu64, it->drop_id);
                if (op->mode == SVD_RELEASE_RECONCILE) {
                    if (svd_q_exec(s, &s->writer, p, ST_KEEP, &nrows, 4, args) != 0)
                        return -1;
                } else {
                    if (svd_q_exec(s, &s->writer, p, ST_KEEP_BOUND, &nrows, 7, args) != 0)
                        return -1;
                    if (nrows == 1) {
                        /* the rotation is done: any other pending share made
                         * to replace the same share is of no use any more */
                        const char *sa[5] = { a1, a1, a2, u, it->name };
                        if (svd_q_exec(s, &s->writer, p, ST_SUPERSEDE, &nrows, 5, sa) != 0)
                            return -1;
                        retired += (unsigned)nrows;
                        nrows = 1;
                    }
                }
                kept += (unsigned)nrows;
                activated = nrows == 1;
            }
            if (it->drop_id != 0) {
                /* a front end or a discard (reconcile items have none) */
                const char *why = release_why(op->mode, activated);
                const char *args[7] = { a1, why, a1, a0, u, it->name, young };
                snprintf(a0, sizeof(a0), "%" PRIu64, it->drop_id);
                if (svd_q_exec(s, &s->writer, p, activated ? ST_RETIRE : ST_RETIRE_PENDING,
                               &nrows, activated ? 6 : 7, args) != 0)
                    return -1;
                retired += (unsigned)nrows;
                if (nrows == 0 && !activated) {
                    apr_dbd_results_t *res;
                    apr_dbd_row_t *row = NULL;
                    if (svd_q_select(s, &s->writer, p, ST_PEEK, &res, 3, args + 3) != 0)
                        return -1;
                    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0)
                        refused++; /* it exists, is not retired, and is active */
                }
            }
        }
        *op->retired = retired;
        *op->kept = kept;
        *op->refused = refused;
        return 0;
    }
    case W_RDEL: {
        unsigned n = 0;
        snprintf(a3, sizeof(a3), "%" PRIu64, op->older);
        for (unsigned i = 0; i < op->n; i++) {
            const char *args[6] = { a1, a1, a0, u, op->refs[i].name, a3 };
            snprintf(a0, sizeof(a0), "%" PRIu64, op->refs[i].id);
            sv_uuid_format(op->refs[i].uuid, u);
            if (svd_q_exec(s, &s->writer, p, ST_RDEL, &nrows, 6, args) != 0)
                return -1;
            n += (unsigned)nrows;
        }
        *op->count = n;
        return 0;
    }
    case W_LOCK: {
        const char *args[3] = { a0, op->reason, a1 };
        snprintf(a0, sizeof(a0), "%" PRIu64, op->since);
        if (svd_q_exec(s, &s->writer, p, ST_SETLOCK, &nrows, 3, args) != 0)
            return -1;
        return nrows == 1 ? 0 : -1;
    }
    case W_UNLOCK: {
        const char *args[2] = { a1, a0 };
        snprintf(a0, sizeof(a0), "%" PRIu64, op->since);
        if (svd_q_exec(s, &s->writer, p, ST_UNLOCK, &nrows, 2, args) != 0)
            return -1;
        *op->count = (unsigned)nrows;
        return 0;
    }
    case W_PURGE: {
        const char *args[3] = { a0, a2, a3 };
        snprintf(a0, sizeof(a0), "%" PRIu64, op->older);
        snprintf(a2, sizeof(a2), "%" PRIu64, op->first);
        snprintf(a3, sizeof(a3), "%" PRIu64, op->last);
        if (svd_q_exec(s, &s->writer, p, ST_PURGE, &nrows, 3, args) != 0)
            return -1;
        *op->count = (unsigned)nrows;
        op->removed = nrows > 0;
        return 0;
    }
    case W_RESTORE: {
        const char *args[2] = { a1, a0 };
        int stn = op->by == SVD_RESTORE_ID ? ST_RESTORE_ID
                  : op->by == SVD_RESTORE_RECORD ? ST_RESTORE_RECORD : ST_RESTORE_SINCE;
        if (op->by == SVD_RESTORE_RECORD) {
            sv_uuid_format(op->uuid, u);
            args[1] = u;
        } else {
            snprintf(a0, sizeof(a0), "%" PRIu64, op->value);
        }
        if (svd_q_exec(s, &s->writer, p, stn, &nrows, 2, args) != 0)
            return -1;
        *op->count = (unsigned)nrows;
        return 0;
    }
    }
    return -1;
}

/* Run ops [first, stop) in one transaction. 0 when committed. */
static int
run_tx(struct svd_store *s, struct wop *first, struct wop *stop)
{
    apr_pool_t *p = NULL;
    uint64_t next_id = 0;
    int r = -1;

    apr_pool_create(&p, s->writer.pool);
    if (svd_q_raw(s, &s->writer,
                  s->conf->driver == SVD_DRIVER_SQLITE3 ? "BEGIN IMMEDIATE" : "BEGIN") != 0)
        goto out;
    if (s->conf->driver == SVD_DRIVER_SQLITE3 && sqlite_last_id(s, p, &next_id) != 0)
        goto rollback;
    for (struct wop *op = first; op != stop; op = op->next) {
        if (exec_op(s, p, op, &next_id) != 0)
            goto rollback;
    }
    if (svd_q_raw(s, &s->writer, "COMMIT") != 0)
        goto rollback;
    r = 0;
    goto out;
rollback:
    (void)svd_q_raw(s, &s->writer, "ROLLBACK");
out:
    apr_pool_destroy(p);
    return r;
}

/*
 * sqlite3, after deletions: copy the WAL into the database file and cut the
 * WAL to zero bytes, so a deleted share's key2b (in the WAL's older frames)
 * does not stay in the WAL file until it happens to be overwritten. Waits
 * at most 100 ms for readers; when they hold an older snapshot it is simply
 * tried again later. Called by the writer thread, without wmu.
 */
static void
writer_checkpoint(struct svd_store *s)
{
    char busy[48];
    apr_pool_t *p = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int nrows, done = 0;

    if (s->writer.h == NULL)
        return;
    snprintf(busy, sizeof(busy), "PRAGMA busy_timeout = %u", s->conf->store_timeout_ms);
    apr_pool_create(&p, s->writer.pool);
    (void)apr_dbd_query(s->driver, s->writer.h, &nrows, "PRAGMA busy_timeout = 100");
    if (apr_dbd_select(s->driver, p, s->writer.h, &res, "PRAGMA wal_checkpoint(TRUNCATE)",
                       1) == 0) {
        while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
            const char *b = apr_dbd_get_entry(s->driver, row, 0);
            done = b != NULL && strcmp(b, "0") == 0; /* not blocked */
        }
    }
    (void)apr_dbd_query(s->driver, s->writer.h, &nrows, busy);
    apr_pool_destroy(p);
    s->ckpt_last_ms = svd_now_ms();
    if (done)
        s->ckpt_due = 0;
    else
        svd_debug("store: WAL checkpoint blocked by a reader; trying again");
}

static void *
writer_main(void *arg)
{
    struct svd_store *s = arg;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    AZ(pthread_mutex_lock(&s->wmu));
    for (;;) {
        struct wop *batch, *op, *stop;
        unsigned count = 0;

        while (s->whead == NULL && !s->stopping) {
            if (s->ckpt_due) {
                /* deletions to wipe from the WAL: when idle for 50 ms (or
                 * at once when the last checkpoint was a second ago) */
                struct timespec ts;
                int e;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += 50000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                e = pthread_cond_timedwait(&s->wcv_work, &s->wmu, &ts);
                SVD_ASSERT(e == 0 || e == ETIMEDOUT);
                if (s->whead == NULL && e == ETIMEDOUT) {
                    AZ(pthread_mutex_unlock(&s->wmu));
                    writer_checkpoint(s);
                    AZ(pthread_mutex_lock(&s->wmu));
                    if (s->ckpt_due) {
                        /* blocked: wait for work or for the next try */
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        ts.tv_sec += 1;
                        e = pthread_cond_timedwait(&s->wcv_work, &s->wmu, &ts);
                        SVD_ASSERT(e == 0 || e == ETIMEDOUT);
                    }
                }
            } else {
                AZ(pthread_cond_wait(&s->wcv_work, &s->wmu));
            }
        }
        if (s->whead == NULL)
            break;
        /* take up to batch_max operations */
        batch = s->whead;
        for (op = batch; op != NULL && count < s->conf->batch_max; op = op->next)
            count++;
        stop = op;
        if (stop == NULL) {
            s->whead = NULL;
            s->wtail = &s->whead;
        } else {
            s->whead = stop;
        }
        AZ(pthread_mutex_unlock(&s->wmu));

        if (s->ckpt_due && svd_now_ms() - s->ckpt_last_ms >= 1000)
            writer_checkpoint(s); /* busy for a second: do not wait to be idle */
        if (s->writer.h == NULL)
            (void)svd_dbh_check(s, &s->writer);
        for (op = batch; op != stop; op = op->next)
            op->removed = 0;
        if (s->writer.h != NULL && run_tx(s, batch, stop) == 0) {
            for (op = batch; op != stop; op = op->next) {
                op->res = op->exists ? -1 : 0;
                if (op->removed && s->conf->driver == SVD_DRIVER_SQLITE3)
                    s->ckpt_due = 1;
            }
            __atomic_add_fetch(&s->n_commits, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&s->n_ops, count, __ATOMIC_RELAXED);
        } else {
            /* the group failed: a fresh connection (pgsql), then each op
             * alone, so that one bad op fails alone */
            (void)svd_dbh_check(s, &s->writer);
            for (op = batch; op != stop; op = op->next) {
                struct wop *nx = op->next;
                int ok;
                if (s->writer.h == NULL)
                    (void)svd_dbh_check(s, &s->writer);
                op->next = NULL;
                op->removed = 0;
                ok = s->writer.h != NULL && run_tx(s, op, NULL) == 0 && !op->exists;
                op->next = nx;
                op->res = ok ? 0 : -1;
                if (ok && op->removed && s->conf->driver == SVD_DRIVER_SQLITE3)
                    s->ckpt_due = 1;
            }
        }
        /* wake each owner; an owner's op (on its stack) may vanish as soon
         * as it is posted, so read next first */
        for (op = batch; op != stop;) {
            struct wop *nx = op->next;
            svd_done_post(&op->done, op->res);
            op = nx;
        }
        AZ(pthread_mutex_lock(&s->wmu));
        if (count > 1)
            svd_debug("store: committed %u operations in one transaction", count);
    }
    AZ(pthread_mutex_unlock(&s->wmu));
    if (s->ckpt_due)
        writer_checkpoint(s);
    return NULL;
}

void
svd_store_writer_stats(struct svd_store *s, uint64_t *commits, uint64_t *ops)
{
    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    *commits = __atomic_load_n(&s->n_commits, __ATOMIC_RELAXED);
    *ops = __atomic_load_n(&s->n_ops, __ATOMIC_RELAXED);
}

int
svd_store_start(struct svd_store *s)
{
    pthread_attr_t attr;
    int r;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    AZ(pthread_attr_init(&attr));
    AZ(pthread_attr_setstacksize(&attr, 512 * 1024));
    AZ(pthread_mutex_lock(&s->wmu));
    s->running = 1;
    AZ(pthread_mutex_unlock(&s->wmu));
    r = pthread_create(&s->thread, &attr, writer_main, s);
    AZ(pthread_attr_destroy(&attr));
    if (r != 0) {
        s->running = 0;
        return -1;
    }
    return 0;
}

void
svd_store_stop(struct svd_store *s)
{
    if (s == NULL || !s->running)
        return;
    CHECK_OBJ(s, SVD_STORE_MAGIC);
    AZ(pthread_mutex_lock(&s->wmu));
    s->stopping = 1;
    AZ(pthread_cond_signal(&s->wcv_work));
    AZ(pthread_mutex_unlock(&s->wmu));
    AZ(pthread_join(s->thread, NULL));
    AZ(pthread_mutex_lock(&s->wmu));
    s->running = 0;
    AZ(pthread_mutex_unlock(&s->wmu));
}

/* Queue op and wait until the writer has handled it. */
static int
submit(struct svd_store *s, struct wop *op)
{
    int r;

    op->next = NULL;
    AZ(pthread_mutex_lock(&s->wmu));
    if (!s->running || s->stopping) {
        AZ(pthread_mutex_unlock(&s->wmu));
        return -1;
    }
    svd_done_init(&op->done);
    *s->wtail = op;
    s->wtail = &op->next;
    AZ(pthread_cond_signal(&s->wcv_work));
    AZ(pthread_mutex_unlock(&s->wmu));
    r = svd_done_wait(&op->done);
    return r;
}

/* Submit a write that changes the share counts: the cached counts go. */
static int
submit_counted(struct svd_store *s, struct wop *op)
{
    int r = submit(s, op);

    if (r == 0) {
        AZ(pthread_mutex_lock(&s->cmu));
        s->c_valid = 0;
        AZ(pthread_mutex_unlock(&s->cmu));
    }
    return r;
}

static int
store_put(struct svd_store *s, const uint8_t uuid[SV_UUID_LEN], unsigned n,
          const char *const *names, const uint8_t *const *pubs, const uint8_t *const *key2bs,
          int state, const uint64_t *replaces, uint64_t *ids, int *exists)
{
    struct wop op;
    int r;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    memset(&op, 0, sizeof(op));
    op.kind = W_PUT;
    op.uuid = uuid;
    op.n = n;
    op.names = names;
    op.pubs = pubs;
    op.key2bs = key2bs;
    op.state = state;
    op.replaces = replaces;
    op.ids = ids;
    r = submit_counted(s, &op);
    if (exists != NULL)
        *exists = r != 0 && op.exists;
    return r;
}

int
svd_store_put_new(struct svd_store *s, const uint8_t uuid[SV_UUID_LEN], unsigned n,
                  const char *const *names, const uint8_t *const *pubs,
                  const uint8_t *const *key2bs, uint64_t *ids, int *exists)
{
    return store_put(s, uuid, n, names, pubs, key2bs, SV_SHARE_ACTIVE, NULL, ids, exists);
}

int
svd_store_put_rotated(struct svd_store *s, const uint8_t uuid[SV_UUID_LEN], unsigned n,
                      const char *const *names, const uint8_t *const *pubs,
                      const uint8_t *const *key2bs, const uint64_t *replaces, uint64_t *ids)
{
    AN(replaces);
    return store_put(s, uuid, n, names, pubs, key2bs, SV_SHARE_PENDING, replaces, ids, NULL);
}

int
svd_store_release(struct svd_store *s, const uint8_t uuid[SV_UUID_LEN],
                  const sv_release_item *items, unsigned n, enum svd_release_mode mode,
                  unsigned *retired, unsigned *kept, unsigned *refused)
{
    struct wop op;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    /* the shapes each mode allows are the caller's rules (h_release,
     * discard_pending); exec_op relies on them */
    for (unsigned i = 0; i < n; i++) {
        if (mode == SVD_RELEASE_RECONCILE)
            AZ(items[i].drop_id);
        else
            AN(items[i].drop_id);
        if (mode == SVD_RELEASE_DISCARD)
            AZ(items[i].keep_id);
    }
    memset(&op, 0, sizeof(op));
    op.kind = W_RELEASE;
    op.uuid = uuid;
    op.items = items;
    op.n = n;
    op.mode = mode;
    op.retired = retired;
    op.kept = kept;
    op.refused = refused;
    return submit_counted(s, &op);
}

int
svd_store_recon_delete(struct svd_store *s, const sv_recon_ref *refs, unsigned n,
                       uint64_t older_than, unsigned *retired)
{
    struct wop op;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    memset(&op, 0, sizeof(op));
    op.kind = W_RDEL;
    op.refs = refs;
    op.n = n;
    op.older = older_than;
    op.count = retired;
    return submit_counted(s, &op);
}

int
svd_store_purge(struct svd_store *s, uint64_t retired_before, uint64_t first, uint64_t last,
                unsigned *purged)
{
    struct wop op;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    memset(&op, 0, sizeof(op));
    op.kind = W_PURGE;
    op.older = retired_before;
    op.first = first;
    op.last = last;
    op.count = purged;
    return submit_counted(s, &op);
}

int
svd_store_restore(struct svd_store *s, enum svd_restore_by by, uint64_t value,
                  const uint8_t uuid[SV_UUID_LEN], unsigned *restored)
{
    struct wop op;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    memset(&op, 0, sizeof(op));
    op.kind = W_RESTORE;
    op.by = by;
    op.value = value;
    op.uuid = uuid;
    op.count = restored;
    return submit_counted(s, &op);
}

int
svd_store_set_lock(struct svd_store *s, uint64_t since, const char *reason)
{
    struct wop op;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    memset(&op, 0, sizeof(op));
    op.kind = W_LOCK;
    op.since = since;
    op.reason = reason != NULL ? reason : "";
    return submit(s, &op);
}

int
svd_store_unlock(struct svd_store *s, uint64_t expect_since)
{
    struct wop op;
    unsigned n = 0;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    memset(&op, 0, sizeof(op));
    op.kind = W_UNLOCK;
    op.since = expect_since;
    op.count = &n;
    if (submit(s, &op) != 0)
        return -1;
    return n == 1 ? 0 : 1;
}
