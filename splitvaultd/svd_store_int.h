/*
 * svd_store_int.h - what the share store's files share (svd_store.h is the
 * interface for the rest of the daemon; only the store's own files include
 * this one): the statement numbers, one connection (struct dbh), the store
 * (struct svd_store), and the functions one store file calls in another.
 *
 * The files, and the store files each one calls (no cycles):
 *
 *   svd_store.c         the store's life: prelock, open, init_schema, close
 *                       -> svd_store_sql.c, svd_store_schema.c, svd_store_conn.c
 *   svd_store_writer.c  the writer thread, group commit, every write
 *                       -> svd_store_conn.c
 *   svd_store_list.c    counts and listings: reconcile, purge, retired shares
 *                       -> svd_store_conn.c
 *   svd_store_limit.c   the decrypt limiter a pgsql store shares
 *                       -> svd_store_conn.c
 *   svd_store_schema.c  the schema: create, check the version, upgrade
 *                       -> svd_store_conn.c (svd_dbd_err and svd_q_raw alone)
 *   svd_store_conn.c    connections, the reader pool, the share reads
 *                       -> none
 *   svd_store_sql.c     the statements of each driver
 *                       -> none
 */
#ifndef SVD_STORE_INT_H
#define SVD_STORE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>
#include <apu.h>
#include <apr_dbd.h>

#include "svd_conf.h"
#include "svd_store.h"

/* Look-ups of 2..32 shares: ST_GET2.. and ST_PUB2.., one for each size in
 * svd_getn_size[] (svd_store_sql.c). */
#define GETN_MAX 32
extern const unsigned svd_getn_size[];

/* The statements (svd_store_sql.c), prepared on every connection. */
enum {
    ST_GETL, ST_GET2, ST_GET3, ST_GET4, ST_GET8, ST_GET16, ST_GET32,
    ST_PUBL, ST_PUB2, ST_PUB3, ST_PUB4, ST_PUB8, ST_PUB16, ST_PUB32, ST_LOCK, ST_INSERT, ST_SEQ,
    ST_RECORD_NEW, ST_KEEP_BOUND, ST_SUPERSEDE, ST_KEEP, ST_RETIRE, ST_RETIRE_PENDING, ST_PEEK,
    ST_RLIST,
    ST_RDEL, ST_SETLOCK, ST_UNLOCK, ST_COUNTS, ST_PURGE_SCAN, ST_PURGE, ST_RESTORE_ID, ST_RESTORE_RECORD,
    ST_RESTORE_SINCE, ST_RETIRED_LIST, ST_RSCAN, ST_RAISE, ST_RAISE_NEW,
    ST_LIMIT_ADMIT, ST_LIMIT_STATUS, ST_LIMIT_RESET, ST__N
};

/* ST_COUNTS counts shares in use by state, and retired ones, whatever their
 * state, apart: under COUNT_RETIRED, which is no SV_SHARE_* state */
#define COUNT_RETIRED 3

/*
 * One connection. busy belongs to the reader pool, not to the connection:
 * a reconnect (svd_dbh_close, svd_dbh_open) by the thread holding the
 * handle leaves it set, or another thread would take the handle while it
 * is reconnected.
 */
struct dbh {
    apr_pool_t *pool;
    apr_dbd_t *h;
    apr_dbd_prepared_t *st[ST__N];
    int busy;
    int down;                   /* readers: connection lost (under rmu) */
    uint64_t retry_at;          /* pgsql: no reconnect attempt before (ms) */
    uint64_t gen;               /* pgsql: s->broken_gen when last known good */
};

struct wop;                     /* a queued write (the writer's own) */

struct svd_store {
    unsigned magic;
    const struct svd_conf *conf;
    const char *sql[ST__N];     /* the driver's statements (ST_GET2.. built at open) */
    const apr_dbd_driver_t *driver;
    apr_pool_t *pool;           /* driver load; owned by the opening thread */
    const char *params;

    struct dbh writer;
    struct dbh *readers;
    unsigned nreaders;
    pthread_mutex_t rmu;
    pthread_cond_t rcv;

    pthread_mutex_t wmu;
    pthread_cond_t wcv_work;
    struct wop *whead, **wtail;
    int running, stopping;
    pthread_t thread;

    uint64_t n_commits, n_ops;  /* writer transactions and operations (atomic) */
    uint64_t broken_gen;        /* pgsql: bumped when a connection is found
                                 * broken, as every other one probably is
                                 * too (a server restart) (atomic) */
    int ckpt_due;               /* sqlite3: rows deleted since the last checkpoint */
    uint64_t ckpt_last_ms;

    pthread_mutex_t cmu;        /* counts cache */
    uint64_t c_active, c_pending, c_retired, c_when;
    int c_valid;
};

/* The statements: the driver's into s->sql, the look-ups of several shares
 * built in s->pool. */
void svd_store_sql_init(struct svd_store *s);

/* Connections: a failed call's message (first line only), connect, close,
 * prepare every statement, and check after a failure (pgsql: reconnect). */
const char *svd_dbd_err(struct svd_store *s, struct dbh *d, int rv);
int svd_dbh_open(struct svd_store *s, struct dbh *d, char *err, size_t errlen);
void svd_dbh_close(struct svd_store *s, struct dbh *d);
int svd_dbh_prepare(struct svd_store *s, struct dbh *d, char *err, size_t errlen);
int svd_dbh_check(struct svd_store *s, struct dbh *d);

/* Statements on one connection, failures logged: a prepared non-select, a
 * prepared select, and plain SQL (BEGIN, COMMIT ...). */
int svd_q_exec(struct svd_store *s, struct dbh *d, apr_pool_t *p, int st, int *nrows,
               int nargs, const char **args);
int svd_q_select(struct svd_store *s, struct dbh *d, apr_pool_t *p, int st,
                 apr_dbd_results_t **res, int nargs, const char **args);
int svd_q_raw(struct svd_store *s, struct dbh *d, const char *sql);

/* The reader pool: take a reader (NULL: none free within store.timeout),
 * give it back (failed: the read failed, so check the connection). */
struct dbh *svd_reader_get(struct svd_store *s);
void svd_reader_put(struct svd_store *s, struct dbh *d, int failed);

/* The schema: run a script, read the version (1: there is a schema, 0:
 * none, -1: error), make an existing one this splitvaultd's (upgrade). */
int svd_schema_run(struct svd_store *s, struct dbh *d, const char *script, char *err,
                   size_t errlen);
int svd_schema_version(struct svd_store *s, struct dbh *d, long *version);
int svd_schema_current(struct svd_store *s, struct dbh *d, long version, char *err,
                       size_t errlen);

#endif /* SVD_STORE_INT_H */
