/*
 * svd_audit.c - audit writer: group-committed, hash-chained, fsynced.
 *
 * Ownership: the object owns both file descriptors and the queue of event
 * texts (heap strings, none secret). Callers hold no pointer into it after
 * svd_audit_event() returns. Lock order: mu only; io_mu is held by the
 * writer around file I/O and by the live verifier, never together with mu.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "svd.h"
#include "svd_audit.h"
#include "svd_clock.h"
#include "svd_done.h"
#include "svd_file.h"
#include "svd_log.h"
#include "sv_hex.h"

struct ev {
    struct ev *next;
    struct svd_done *done; /* the waiting caller's completion, or NULL */
    uint64_t ticket;
    size_t len;
    char text[];
};

struct svd_audit {
    unsigned magic;
    int fd;
    int head_fd;
    char *path;

    pthread_mutex_t io_mu;      /* file I/O and the chain state below */
    uint64_t last_seq;
    uint8_t last_hash[SVD_AUDIT_HASH_LEN];
    off_t size;                 /* durable length of the log */
    int open_locked;            /* at open, the last lock entry was a lock-down */
    uint64_t open_locked_since;
    int head_dirty;             /* head rewritten, not yet synced */
    uint64_t head_synced_ms;

    pthread_mutex_t mu;         /* queue and tickets */
    pthread_cond_t cv_work;
    pthread_cond_t cv_group;    /* the writer holding a group open */
    int group_waiting;
    unsigned expect;            /* announced entries (atomic) */
    struct ev *head, **tail;
    uint64_t next_ticket;
    int healthy;
    int running;
    int stopping;
    pthread_t thread;
};

/* "time=<UTC> " into out (SVD_AUDIT_TIME_PREFIX_MAX + 1 bytes); its length. */
static size_t
fmt_time(char *out)
{
    struct timespec ts;
    struct tm tm;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(out, SVD_AUDIT_TIME_PREFIX_MAX + 1, "time=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (int)(ts.tv_nsec / 1000000L) % 1000);
    SVD_ASSERT(n > 0 && n <= SVD_AUDIT_TIME_PREFIX_MAX);
    return (size_t)n;
}

/* Write all of buf at the end of the log (the fd is O_APPEND). */
static int
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Rewrite the head line in place; with sync, also fdatasync it. */
static int
write_head(struct svd_audit *a, uint64_t seq, const uint8_t hash[SVD_AUDIT_HASH_LEN], int sync)
{
    char hx[2 * SVD_AUDIT_HASH_LEN + 1];
    char line[SVD_AUDIT_HEAD_LEN + 1];
    int n;

    sv_hex_encode(hash, SVD_AUDIT_HASH_LEN, hx);
    n = snprintf(line, sizeof(line), SVD_AUDIT_HEAD_FMT, (unsigned long long)seq, hx);
    SVD_ASSERT(n == (int)SVD_AUDIT_HEAD_LEN);
    if (pwrite(a->head_fd, line, (size_t)n, 0) != n)
        return -1;
    if (sync && fdatasync(a->head_fd) != 0)
        return -1;
    return 0;
}

int
svd_audit_open(const char *path, const char *head_path, struct svd_audit **out, char *err,
               size_t errlen)
{
    struct svd_audit *a = NULL;
    struct svd_audit_result res;
    int r = -1;

    *out = NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    a->magic = SVD_AUDIT_MAGIC;
    a->fd = a->head_fd = -1;
    a->tail = &a->head;
    a->healthy = 1;
    AZ(pthread_mutex_init(&a->mu, NULL));
    AZ(pthread_mutex_init(&a->io_mu, NULL));
    AZ(pthread_cond_init(&a->cv_work, NULL));
    AZ(pthread_cond_init(&a->cv_group, NULL));
    if ((a->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* opened as root in the daemon's own directory: plain files only */
    if ((a->fd = svd_open_regular(path, O_RDWR | O_APPEND | O_CREAT, 0600, "audit.path", err,
                                  errlen)) < 0 ||
        (a->head_fd = svd_open_regular(head_path, O_RDWR | O_CREAT, 0600, "audit.head", err,
                                       errlen)) < 0)
        goto out;
    if (svd_audit_verify_fds(a->fd, a->head_fd, &res) != 0) {
        if (res.torn_tail && res.last_seq >= res.head_seq) {
            /* A crash mid-write: the incomplete line was never confirmed
             * (the head is written after the log is synced). */
            svd_warn("audit log %s ends in an incomplete entry after seq %" PRIu64
                     ": removing it (interrupted write)", path, res.last_seq);
            if (ftruncate(a->fd, (off_t)res.good_len) != 0 || fdatasync(a->fd) != 0) {
                snprintf(err, errlen, "audit.path %s: cannot cut the incomplete entry: %s",
                         path, strerror(errno));
                goto out;
            }
            if (svd_audit_verify_fds(a->fd, a->head_fd, &res) != 0)
                goto bad;
        } else {
bad:
            snprintf(err, errlen, "audit log %s does not verify at line %" PRIu64 ": %s "
                     "(run splitvaultctl audit-verify; move the log and its head aside to "
                     "start a new chain)", path, res.bad_line, res.msg);
            goto out;
        }
    }
    if (res.unconfirmed > 0)
        svd_warn("audit log %s: %" PRIu64 " entries after the recorded head (a crash between "
                 "log and head writes); confirming them", path, res.unconfirmed);
    a->last_seq = res.last_seq;
    memcpy(a->last_hash, res.last_hash, SVD_AUDIT_HASH_LEN);
    a->open_locked = res.lock_event == SVD_AUDIT_LOCK_LOCKED;
    a->open_locked_since = res.lock_since;
    a->size = (off_t)res.good_len;
    if (write_head(a, a->last_seq, a->last_hash, 1) != 0) {
        snprintf(err, errlen, "audit.head %s: cannot write: %s", head_path, strerror(errno));
        goto out;
    }
    *out = a;
    a = NULL;
    r = 0;
out:
    svd_audit_close(a);
    return r;
}

#ifdef SV_TEST_HOOKS
/* Test builds only: a write "fails" while the file named by
 * SVD_TEST_AUDIT_FAIL exists. */
static int
test_fail(void)
{
    const char *p = getenv("SVD_TEST_AUDIT_FAIL");

    return p != NULL && access(p, F_OK) == 0;
}
#endif

/* Chain and write one batch of events. Called by the writer with io_mu. */
static int
write_batch(struct svd_audit *a, struct ev *batch)
{
    size_t cap = 0, len = 0;
    char *buf = NULL;
    uint64_t seq = a->last_seq;
    uint8_t hash[SVD_AUDIT_HASH_LEN];
    char hx[2 * SVD_AUDIT_HASH_LEN + 1];
    struct ev *e;
    int r = -1;

    memcpy(hash, a->last_hash, sizeof(hash));
    for (e = batch; e != NULL; e = e->next)
        cap += SVD_AUDIT_CHAIN_PREFIX_MAX + e->len + 2;
    if ((buf = malloc(cap)) == NULL)
        goto out;
    for (e = batch; e != NULL; e = e->next) {
        int n;
        sv_hex_encode(hash, sizeof(hash), hx);
        n = snprintf(buf + len, cap - len, "seq=%" PRIu64 " prev=%s %s", seq + 1, hx, e->text);
        SVD_ASSERT(n > 0 && (size_t)n < cap - len);
        svd_audit_hash(buf + len, (size_t)n, hash);
        len += (size_t)n;
        buf[len++] = '\n';
        seq++;
    }
#ifdef SV_TEST_HOOKS
    if (test_fail()) {
        errno = EIO;
        goto out;
    }
#endif
    if (write_all(a->fd, buf, len) != 0 || fdatasync(a->fd) != 0)
        goto out;
    /* the entries are durable now; the head follows (see head_sync) */
    if (write_head(a, seq, hash, 0) != 0)
        goto out;
    a->head_dirty = 1;
    a->last_seq = seq;
    memcpy(a->last_hash, hash, sizeof(hash));
    a->size += (off_t)len;
    r = 0;
out:
    if (r != 0) {
        int e2 = errno;
        svd_err("audit log %s: write failed: %s; decrypts are refused until it works again",
                a->path, strerror(e2));
        /* cut back to the last durable length so the chain stays whole */
        if (ftruncate(a->fd, a->size) != 0)
            svd_err("audit log %s: cannot cut back to %lld bytes: %s", a->path,
                    (long long)a->size, strerror(errno));
    }
    free(buf);
    return r;
}

/*
 * Make the head durable. The writer answers its callers once their entries
 * are fsynced in the log (one flush per group); the head file, rewritten
 * after every group, is fsynced at most every SVD_AUDIT_HEAD_SYNC_MS while
 * busy, after 20 ms of quiet, and at stop. After a crash the durable head
 * may name an earlier entry than the log's last: those entries verify as
 * "unconfirmed" and the daemon confirms them at start. Truncation below the
 * durable head is always detected.
 */
static void
head_sync(struct svd_audit *a)
{
    AZ(pthread_mutex_lock(&a->io_mu));
    if (a->head_dirty) {
        if (fdatasync(a->head_fd) != 0)
            svd_err("audit head: fdatasync: %s", strerror(errno));
        else
            a->head_dirty = 0;
        a->head_synced_ms = svd_now_ms();
    }
    AZ(pthread_mutex_unlock(&a->io_mu));
}

static void *
writer_main(void *arg)
{
    struct svd_audit *a = arg;

    CHECK_OBJ_NOTNULL(a, SVD_AUDIT_MAGIC);
    AZ(pthread_mutex_lock(&a->mu));
    for (;;) {
        struct ev *batch, *e;
        int ok;

        while (a->head == NULL && !a->stopping) {
            if (a->head_dirty) {
                /* idle with an unsynced head: give new events 20 ms, then
                 * make the head durable */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 20000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                if (pthread_cond_timedwait(&a->cv_work, &a->mu, &ts) != 0 && a->head == NULL) {
                    AZ(pthread_mutex_unlock(&a->mu));
                    head_sync(a);
                    AZ(pthread_mutex_lock(&a->mu));
                }
            } else {
                AZ(pthread_cond_wait(&a->cv_work, &a->mu));
            }
        }
        if (a->head == NULL && a->stopping)
            break;
        if (__atomic_load_n(&a->expect, __ATOMIC_ACQUIRE) > 0 && !a->stopping) {
            /* entries are on their way (decrypts past the limiter): hold the
             * group open for them, a bounded time, so they share the write
             * and the fdatasync */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += SVD_AUDIT_GROUP_WAIT_US * 1000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            a->group_waiting = 1;
            while (__atomic_load_n(&a->expect, __ATOMIC_ACQUIRE) > 0 && !a->stopping)
                if (pthread_cond_timedwait(&a->cv_group, &a->mu, &ts) != 0)
                    break;
            a->group_waiting = 0;
        }
        batch = a->head;
        a->head = NULL;
        a->tail = &a->head;
        AZ(pthread_mutex_unlock(&a->mu));

        AZ(pthread_mutex_lock(&a->io_mu));
        ok = write_batch(a, batch) == 0;
        AZ(pthread_mutex_unlock(&a->io_mu));

        AZ(pthread_mutex_lock(&a->mu));
        a->healthy = ok;
        AZ(pthread_mutex_unlock(&a->mu));
        /* wake exactly the callers of this group, without holding mu */
        while (batch != NULL) {
            e = batch->next;
            if (batch->done != NULL)
                svd_done_post(batch->done, ok ? 0 : -1);
            free(batch);
            batch = e;
        }
        AZ(pthread_mutex_lock(&a->mu));
        if (svd_now_ms() - a->head_synced_ms >= SVD_AUDIT_HEAD_SYNC_MS) {
            AZ(pthread_mutex_unlock(&a->mu));
            head_sync(a);
            AZ(pthread_mutex_lock(&a->mu));
        }
    }
    AZ(pthread_mutex_unlock(&a->mu));
    head_sync(a);
    return NULL;
}

int
svd_audit_start(struct svd_audit *a)
{
    pthread_attr_t attr;
    int r;

    CHECK_OBJ_NOTNULL(a, SVD_AUDIT_MAGIC);
    AZ(pthread_attr_init(&attr));
    AZ(pthread_attr_setstacksize(&attr, 256 * 1024));
    AZ(pthread_mutex_lock(&a->mu));
    a->running = 1;
    AZ(pthread_mutex_unlock(&a->mu));
    r = pthread_create(&a->thread, &attr, writer_main, a);
    AZ(pthread_attr_destroy(&attr));
    if (r != 0) {
        a->running = 0;
        return -1;
    }
    return 0;
}

void
svd_audit_stop(struct svd_audit *a)
{
    if (a == NULL || !a->running)
        return;
    CHECK_OBJ(a, SVD_AUDIT_MAGIC);
    AZ(pthread_mutex_lock(&a->mu));
    a->stopping = 1;
    AZ(pthread_cond_signal(&a->cv_work));
    AZ(pthread_cond_signal(&a->cv_group));
    AZ(pthread_mutex_unlock(&a->mu));
    AZ(pthread_join(a->thread, NULL));
    AZ(pthread_mutex_lock(&a->mu));
    a->running = 0;
    AZ(pthread_mutex_unlock(&a->mu));
}

void
svd_audit_close(struct svd_audit *a)
{
    struct ev *e;

    if (a == NULL)
        return;
    CHECK_OBJ(a, SVD_AUDIT_MAGIC);
    SVD_ASSERT(!a->running);
    while ((e = a->head) != NULL) {
        a->head = e->next;
        free(e);
    }
    if (a->fd >= 0)
        close(a->fd);
    if (a->head_fd >= 0)
        close(a->head_fd);
    AZ(pthread_mutex_destroy(&a->mu));
    AZ(pthread_mutex_destroy(&a->io_mu));
    AZ(pthread_cond_destroy(&a->cv_work));
    AZ(pthread_cond_destroy(&a->cv_group));
    free(a->path);
    a->magic = 0;
    free(a);
}

int
svd_audit_event(struct svd_audit *a, int wait, const char *fmt, ...)
{
    char text[SVD_AUDIT_TIME_PREFIX_MAX + SVD_AUDIT_EVENT_MAX + 1];
    struct ev *e;
    va_list ap;
    size_t off;
    int n, r = -1;
    struct svd_done done;

    CHECK_OBJ_NOTNULL(a, SVD_AUDIT_MAGIC);
    off = fmt_time(text);
    va_start(ap, fmt);
    n = vsnprintf(text + off, SVD_AUDIT_EVENT_MAX + 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n > SVD_AUDIT_EVENT_MAX) {
        /* callers size their events for the worst case (static assertions):
         * this is a bug, and the caller is told (a destructive request then
         * fails instead of going unrecorded) */
        svd_err("audit event longer than %zu bytes; not logged", (size_t)SVD_AUDIT_EVENT_MAX);
        goto out;
    }
    off += (size_t)n;
    /* one line of printable ASCII, whatever a caller passed */
    for (size_t i = 0; i < off; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
            text[i] = '?';
    if ((e = malloc(sizeof(*e) + off + 1)) == NULL)
        goto out;
    memcpy(e->text, text, off + 1);
    e->len = off;
    SVD_ASSERT(SVD_AUDIT_CHAIN_PREFIX_MAX + e->len <= SVD_AUDIT_LINE_MAX);
    e->next = NULL;
    e->done = wait ? &done : NULL;

    AZ(pthread_mutex_lock(&a->mu));
    if (!a->running || a->stopping) {
        /* before start or after stop: nobody would write it */
        AZ(pthread_mutex_unlock(&a->mu));
        free(e);
        goto out;
    }
    if (wait)
        svd_done_init(&done);
    e->ticket = ++a->next_ticket;
    *a->tail = e;
    a->tail = &e->next;
    AZ(pthread_cond_signal(&a->cv_work));
    r = a->healthy ? 0 : -1;
    AZ(pthread_mutex_unlock(&a->mu));
    if (wait)
        r = svd_done_wait(&done);
out:
    return r;
}

void
svd_audit_expect(struct svd_audit *a)
{
    CHECK_OBJ_NOTNULL(a, SVD_AUDIT_MAGIC);
    (void)__atomic_add_fetch(&a->expect, 1, __ATOMIC_ACQ_REL);
}

void
svd_audit_unexpect(struct svd_audit *a)
{
    unsigned left;

    CHECK_OBJ_NOTNULL(a, SVD_AUDIT_MAGIC);
    left = __atomic_sub_fetch(&a->expect, 1, __ATOMIC_ACQ_REL);
    SVD_ASSERT(left != UINT32_MAX);
    if (left == 0) {
        /* the last one on its way: a group held open for it can go */
        AZ(pthread_mutex_lock(&a->mu));
        if (a->group_waiting)
            AZ(pthread_cond_signal(&a->cv_group));
        AZ(pthread_mutex_unlock(&a->mu));
    }
}

int
svd_audit_fd(struct svd_audit *a)
{
    CHECK_OBJ_NOTNULL(a, SVD_AUDIT_MAGIC);
    return a->fd;
}

int
svd_audit_healthy(struct svd_audit *a)
{
    int h;

    CHECK_OBJ_NOTNULL(a, SVD_AUDIT_MAGIC);
    AZ(pthread_mutex_lock(&a->mu));
    h = a->healthy;
    AZ(pthread_mutex_unlock(&a->mu));
    return h;
}

void
svd_audit_head(struct svd_audit *a, uint64_t *seq, uint8_t hash[SVD_AUDIT_HASH_LEN])
{
    CHECK_OBJ_NOTNULL(a, SVD_AUDIT_MAGIC);
    AZ(pthread_mutex_lock(&a->io_mu));
    *seq = a->last_seq;
    memcpy(hash, a->last_hash, SVD_AUDIT_HASH_LEN);
    AZ(pthread_mutex_unlock(&a->io_mu));
}

int
svd_audit_verify_live(struct svd_audit *a, struct svd_audit_result *res)
{
    int r;

    CHECK_OBJ_NOTNULL(a, SVD_AUDIT_MAGIC);
    AZ(pthread_mutex_lock(&a->io_mu));
    r = svd_audit_verify_fds(a->fd, a->head_fd, res);
    AZ(pthread_mutex_unlock(&a->io_mu));
    return r;
}

int
svd_audit_locked_at_open(struct svd_audit *a, uint64_t *since)
{
    CHECK_OBJ_NOTNULL(a, SVD_AUDIT_MAGIC);
    if (since != NULL)
        *since = a->open_locked_since;
    return a->open_locked;
}
