/*
 * svd_limit.c - the decrypt queue, the lock-down trip and the budget of
 * retired shares; the buckets, pressure and daily budgets of decrypts are
 * the backend's (svd_limit_local.c, svd_limit_shared.c).
 *
 * One mutex guards everything here, and the backend's calls too; waiters
 * sit in a doubly linked FIFO of nodes on their own stacks and sleep on one
 * condition variable (monotonic clock), re-checking after every change.
 * With the shared backend each call is a round trip to the store made with
 * the mutex held: the daemon admits one decrypt at a time, which the rates
 * (a few decrypts a minute) make no bottleneck, and a hanging store holds
 * it for store.timeout at most.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svd.h"
#include "svd_clock.h"
#include "svd_limit.h"
#include "svd_log.h"
#include "svd_window.h"

enum { W_WAITING = 0, W_DROPPED, W_CLOSED };

struct waiter {
    struct waiter *next, *prev;
    const char *actor;
    uint64_t deadline;
    int state;
};

struct svd_limiter {
    unsigned magic;
    struct svd_rate global_rate;
    uint32_t retire_budget;     /* a day; 0: no budget */
    unsigned queue_max, threshold;
    uint32_t max_wait_ms;
    uint64_t (*now_ms)(void);
    struct svd_limit_backend *b; /* buckets, pressure, daily budgets of decrypts */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct svd_window rbudget;  /* shares retired in the last 24 hours */
    const char *trip_why;       /* why the last trip happened */
    struct waiter *qhead, *qtail;
    unsigned qlen;
    int locked;
    int closing;
    uint64_t locked_since;
};

uint32_t
svd_limit_drain_ms(const struct svd_conf *conf)
{
    return conf->global.interval_ms != 0 ? conf->global.interval_ms : conf->actor.interval_ms;
}

struct svd_limiter *
svd_limiter_new_with(const struct svd_conf *conf, struct svd_limit_backend *b, int locked,
                     uint64_t locked_since)
{
    struct svd_limiter *l;
    pthread_condattr_t ca;

    CHECK_OBJ_NOTNULL(conf, SVD_CONF_MAGIC);
    if (b == NULL)
        return NULL;
    if ((l = calloc(1, sizeof(*l))) == NULL) {
        b->ops->free(b);
        return NULL;
    }
    l->magic = SVD_LIMITER_MAGIC;
    l->b = b;
    l->global_rate = conf->global;
    l->retire_budget = conf->retire_budget;
    l->queue_max = conf->queue_max;
    l->threshold = conf->lockdown_threshold;
    l->max_wait_ms = conf->queue_max_wait_ms;
    l->now_ms = svd_now_ms;
    AZ(pthread_mutex_init(&l->mu, NULL));
    AZ(pthread_condattr_init(&ca));
    AZ(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
    AZ(pthread_cond_init(&l->cv, &ca));
    AZ(pthread_condattr_destroy(&ca));
    svd_window_reset(&l->rbudget, l->now_ms());
    l->locked = locked;
    l->locked_since = locked ? locked_since : 0;
    return l;
}

struct svd_limiter *
svd_limiter_new(const struct svd_conf *conf, int locked, uint64_t locked_since)
{
    CHECK_OBJ_NOTNULL(conf, SVD_CONF_MAGIC);
    return svd_limiter_new_with(conf, svd_limit_local_new(conf, svd_now_ms()), locked,
                                locked_since);
}

void
svd_limiter_free(struct svd_limiter *l)
{
    if (l == NULL)
        return;
    CHECK_OBJ(l, SVD_LIMITER_MAGIC);
    SVD_ASSERT(l->qlen == 0);
    AZ(pthread_mutex_destroy(&l->mu));
    AZ(pthread_cond_destroy(&l->cv));
    l->b->ops->free(l->b);
    l->magic = 0;
    free(l);
}

void
svd_limiter_set_clock(struct svd_limiter *l, uint64_t (*now_ms)(void))
{
    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    l->now_ms = now_ms;
    l->b->ops->restart(l->b, now_ms());
    svd_window_reset(&l->rbudget, now_ms());
}

static void
unlink_waiter(struct svd_limiter *l, struct waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        l->qhead = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        l->qtail = w->prev;
    w->next = w->prev = NULL;
    SVD_ASSERT(l->qlen > 0);
    l->qlen--;
}

/* Drop every queued request (lock-down or shutdown). Called with mu held. */
static void
drop_all(struct svd_limiter *l)
{
    while (l->qhead != NULL) {
        struct waiter *w = l->qhead;
        unlink_waiter(l, w);
        w->state = l->closing ? W_CLOSED : W_DROPPED;
    }
    AZ(pthread_cond_broadcast(&l->cv));
}

/* Lock down now (with mu held): drop every waiter. */
static void
trip(struct svd_limiter *l, const char *why)
{
    l->locked = 1;
    l->locked_since = svd_wall_s();
    l->trip_why = why;
    drop_all(l);
}

static uint32_t
clamp32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

enum svd_admit
svd_limiter_admit(struct svd_limiter *l, const char *actor, uint32_t wait_ms, uint32_t *retry_ms)
{
    struct waiter w;
    enum svd_admit res;
    uint64_t now, next = 0, allow;
    enum svd_take took;
    const char *why = NULL;
    int asked;

    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    *retry_ms = 0;
    memset(&w, 0, sizeof(w));
    AZ(pthread_mutex_lock(&l->mu));
    now = l->now_ms();
    if (l->closing) {
        res = SVD_ADMIT_CLOSING;
        goto out;
    }
    if (l->locked) {
        res = SVD_ADMIT_LOCKED;
        goto out;
    }
    /*
     * A decrypt that finds no token now is pressure, whatever wait_ms it
     * asked for (a client that never waits is refused at once, but counts
     * all the same); the backend counts it, drained at the rate decrypts
     * are served. A decrypt that finds the threshold reached, in this
     * daemon's queue or in the pressure, trips the lock-down.
     */
    if (l->qhead != NULL && l->threshold > 0 && l->qlen >= l->threshold) {
        trip(l, "queue-overflow");
        res = SVD_ADMIT_TRIPPED;
        goto out;
    }
    took = l->b->ops->take(l->b, actor, l->qhead == NULL ? SVD_TAKE_FIRST : SVD_TAKE_QUEUED, now,
                           &next, &why);
    switch (took) {
    case SVD_TAKE_OK:
        res = SVD_ADMIT_OK;
        goto out;
    case SVD_TAKE_TRIP:
        trip(l, why);
        res = SVD_ADMIT_TRIPPED;
        goto out;
    case SVD_TAKE_ERROR:
        res = SVD_ADMIT_STORE;
        goto out;
    case SVD_TAKE_LOCKED:
        res = SVD_ADMIT_LOCKED;
        goto out;
    case SVD_TAKE_WAIT:
        break;
    }
    if (l->qlen >= l->queue_max) {
        *retry_ms = clamp32(next);
        res = SVD_ADMIT_BUSY;
        goto out;
    }
    /* one that found the queue empty has just asked the backend: the head
     * asks again once it has waited (a round trip saved, when shared) */
    asked = l->qhead == NULL;
    allow = wait_ms < l->max_wait_ms ? wait_ms : l->max_wait_ms;
    w.actor = actor;
    w.deadline = now + allow;
    w.state = W_WAITING;
    w.prev = l->qtail;
    if (l->qtail != NULL)
        l->qtail->next = &w;
    else
        l->qhead = &w;
    l->qtail = &w;
    l->qlen++;
    for (;;) {
        struct timespec ts;
        uint64_t until;

        if (w.state == W_DROPPED) {
            res = SVD_ADMIT_LOCKED;
            goto out;
        }
        if (w.state == W_CLOSED) {
            res = SVD_ADMIT_CLOSING;
            goto out;
        }
        now = l->now_ms();
        if (l->qhead == &w && !asked &&
            (took = l->b->ops->take(l->b, actor, SVD_TAKE_HEAD, now, &next, &why)) !=
            SVD_TAKE_WAIT) {
            unlink_waiter(l, &w);
            if (took == SVD_TAKE_TRIP) {
                trip(l, why);
                res = SVD_ADMIT_TRIPPED;
                goto out;
            }
            AZ(pthread_cond_broadcast(&l->cv)); /* the next one is head now */
            res = took == SVD_TAKE_OK ? SVD_ADMIT_OK
                : took == SVD_TAKE_LOCKED ? SVD_ADMIT_LOCKED : SVD_ADMIT_STORE;
            goto out;
        }
        if (now >= w.deadline) {
            unlink_waiter(l, &w);
            AZ(pthread_cond_broadcast(&l->cv));
            *retry_ms = clamp32(l->qhead == NULL ? next : l->global_rate.interval_ms);
            res = SVD_ADMIT_TIMEOUT;
            goto out;
        }
        asked = 0;
        until = w.deadline;
        if (l->qhead == &w && now + next < until)
            until = now + next;
        /* sleep on the monotonic clock; the limiter clock may be a test
         * clock, so never sleep longer than 50 ms at a time there */
        if (l->now_ms != svd_now_ms && until > now + 50)
            until = now + 50;
        {
            struct timespec mono;
            uint64_t rel = until - now, abs_ms;
            clock_gettime(CLOCK_MONOTONIC, &mono);
            abs_ms = (uint64_t)mono.tv_sec * 1000 + (uint64_t)mono.tv_nsec / 1000000 + rel;
            ts.tv_sec = (time_t)(abs_ms / 1000);
            ts.tv_nsec = (long)(abs_ms % 1000) * 1000000L;
            if (rel == 0)
                ts.tv_nsec += 500000L; /* at least half a millisecond */
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
        }
        {
            int e = pthread_cond_timedwait(&l->cv, &l->mu, &ts);
            SVD_ASSERT(e == 0 || e == ETIMEDOUT);
        }
    }
out:
    AZ(pthread_mutex_unlock(&l->mu));
    return res;
}

/* Locked down from now on, dropping every waiter; since is the time of the
 * lock-down, kept when one is in force unless replace. 1 when it was not
 * locked before. */
static int
lock_down(struct svd_limiter *l, uint64_t since, int replace)
{
    int was;

    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    AZ(pthread_mutex_lock(&l->mu));
    was = l->locked;
    if (!was || replace)
        l->locked_since = since;
    l->locked = 1;
    drop_all(l);
    AZ(pthread_mutex_unlock(&l->mu));
    return !was;
}

int
svd_limiter_lockdown(struct svd_limiter *l, uint64_t since)
{
    return lock_down(l, since, 0);
}

void
svd_limiter_relock(struct svd_limiter *l, uint64_t since)
{
    (void)lock_down(l, since, 1);
}

int
svd_limiter_unlock(struct svd_limiter *l)
{
    int was;

    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    AZ(pthread_mutex_lock(&l->mu));
    was = l->locked;
    l->locked = 0;
    l->locked_since = 0;
    /* the sysadmin looked into it: a fresh start for pressure and budgets
     * (a shared backend's store that fails now keeps them: logged) */
    svd_window_reset(&l->rbudget, l->now_ms());
    (void)l->b->ops->reset(l->b, l->now_ms());
    AZ(pthread_mutex_unlock(&l->mu));
    return was;
}

int
svd_limiter_locked(struct svd_limiter *l, uint64_t *since)
{
    int v;

    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    AZ(pthread_mutex_lock(&l->mu));
    v = l->locked;
    if (since != NULL)
        *since = l->locked_since;
    AZ(pthread_mutex_unlock(&l->mu));
    return v;
}

unsigned
svd_limiter_queue_len(struct svd_limiter *l)
{
    unsigned n;

    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    AZ(pthread_mutex_lock(&l->mu));
    n = l->qlen;
    AZ(pthread_mutex_unlock(&l->mu));
    return n;
}

void
svd_limiter_close(struct svd_limiter *l)
{
    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    AZ(pthread_mutex_lock(&l->mu));
    l->closing = 1;
    drop_all(l);
    AZ(pthread_mutex_unlock(&l->mu));
}

enum svd_admit
svd_limiter_retire(struct svd_limiter *l, unsigned n)
{
    enum svd_admit res = SVD_ADMIT_OK;
    uint64_t now;

    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    AZ(pthread_mutex_lock(&l->mu));
    now = l->now_ms();
    if (l->retire_budget != 0 && !svd_window_fits(&l->rbudget, now, n, l->retire_budget)) {
        /* trips once: later requests past the budget are refused without
         * another lock-down to record */
        if (l->locked) {
            res = SVD_ADMIT_LOCKED;
        } else {
            trip(l, "retire-budget");
            res = SVD_ADMIT_TRIPPED;
        }
    } else {
        svd_window_add(&l->rbudget, now, n);
    }
    AZ(pthread_mutex_unlock(&l->mu));
    return res;
}

uint64_t
svd_limiter_retired_today(struct svd_limiter *l)
{
    uint64_t n;

    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    AZ(pthread_mutex_lock(&l->mu));
    n = svd_window_count(&l->rbudget, l->now_ms());
    AZ(pthread_mutex_unlock(&l->mu));
    return n;
}

const char *
svd_limiter_trip_why(struct svd_limiter *l)
{
    const char *w;

    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    AZ(pthread_mutex_lock(&l->mu));
    w = l->trip_why != NULL ? l->trip_why : "queue-overflow";
    AZ(pthread_mutex_unlock(&l->mu));
    return w;
}

int
svd_limiter_status(struct svd_limiter *l, struct svd_limit_status *st, const char **name)
{
    int r;

    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    AZ(pthread_mutex_lock(&l->mu));
    if (name != NULL)
        *name = l->b->ops->name;
    r = l->b->ops->status(l->b, l->now_ms(), st);
    AZ(pthread_mutex_unlock(&l->mu));
    return r;
}
