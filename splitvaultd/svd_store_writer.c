/*
 * svd_store_writer.c - the share store's writer: one thread that owns the
 * writer connection and runs every write, and the write functions of
 * svd_store.h that queue them.
 *
 * Writes are queued as struct wop on the caller's stack; the writer takes
 * up to store.batch_max of them, runs them in one transaction and wakes the
 * callers after the COMMIT. When the group's transaction fails, each
 * operation is retried alone so that one bad operation fails alone.
 * sqlite3: after deletions the writer also cuts the WAL back
 * (writer_checkpoint), so that no deleted key2b stays in it.
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
#include "svd_done.h"
#include "svd_log.h"
#include "svd_store_int.h"
#include "sv_format.h"
#include "sv_hex.h"
#include "sv_secret.h"

enum wkind { W_PUT, W_RELEASE, W_RDEL, W_LOCK, W_UNLOCK, W_PURGE, W_RESTORE, W_RAISE };

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
    uint64_t value;             /* W_RESTORE: the id or the time; W_RAISE: N */
    uint64_t *seq;              /* W_RAISE: the highest id handed out since */
    unsigned *count;            /* W_RDEL, W_UNLOCK, W_PURGE, W_RESTORE */
};

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
    case W_RAISE: {
        const char *args[2] = { a0, a0 };
        snprintf(a0, sizeof(a0), "%" PRIu64, op->value);
        if (s->conf->driver == SVD_DRIVER_PGSQL) {
            apr_dbd_results_t *res;
            apr_dbd_row_t *row = NULL;
            int got = 0;
            if (svd_q_select(s, &s->writer, p, ST_RAISE, &res, 1, args) != 0)
                return -1;
            while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0)
                if (svd_parse_u64(apr_dbd_get_entry(s->driver, row, 0), op->seq) == 0)
                    got = 1;
            return got ? 0 : -1;
        }
        if (svd_q_exec(s, &s->writer, p, ST_RAISE, &nrows, 2, args) != 0 ||
            svd_q_exec(s, &s->writer, p, ST_RAISE_NEW, &nrows, 1, args) != 0)
            return -1;
        if (*next_id < op->value)
            *next_id = op->value; /* the ops after it in this transaction */
        *op->seq = *next_id;
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
svd_store_raise_ids(struct svd_store *s, uint64_t n, uint64_t *seq)
{
    struct wop op;

    CHECK_OBJ_NOTNULL(s, SVD_STORE_MAGIC);
    memset(&op, 0, sizeof(op));
    op.kind = W_RAISE;
    op.value = n;
    op.seq = seq;
    return submit(s, &op);
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
