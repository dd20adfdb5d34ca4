/*
 * svd_limit.c - token buckets, the decrypt queue, pressure, daily budgets
 * and the lock-down trip.
 *
 * One mutex guards everything here; waiters sit in a doubly linked FIFO of
 * nodes on their own stacks and sleep on one condition variable (monotonic
 * clock), re-checking after every change. The per-actor buckets are an open
 * hash table of at most decrypt.max_actors entries; a full table first
 * forgets actors whose buckets (rate and budget) are full again (a fresh
 * bucket is the same).
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
#include "sv_wire.h"

enum { W_WAITING = 0, W_DROPPED, W_CLOSED };

struct waiter {
    struct waiter *next, *prev;
    const char *actor;
    uint64_t deadline;
    int state;
};

struct actor {
    char name[SV_WIRE_MAX_ACTOR + 1];
    int used;
    struct svd_bucket b;        /* decrypt.actor_rate */
    struct svd_window *budget;  /* decrypt.daily_budget.actor (NULL: no budget) */
};

struct svd_limiter {
    unsigned magic;
    struct svd_rate global_rate, actor_rate;
    uint32_t global_budget, actor_budget, retire_budget; /* a day; 0: no budget */
    uint32_t drain_ms;          /* pressure drains one unit per drain_ms */
    unsigned queue_max, threshold, max_actors;
    uint32_t max_wait_ms;
    uint64_t (*now_ms)(void);

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct svd_bucket global;
    struct svd_window gbudget;  /* decrypts in the last 24 hours */
    struct svd_window rbudget;  /* shares retired in the last 24 hours */
    uint32_t pressure;          /* decrypts that arrived without a token, drained */
    uint64_t pressure_ms;       /* drained up to this time */
    const char *trip_why;       /* why the last trip happened */
    struct actor *actors;
    unsigned nslots, nactors;
    struct waiter *qhead, *qtail;
    unsigned qlen;
    int locked;
    int closing;
    uint64_t locked_since;
};

static void
credit(struct svd_bucket *b, const struct svd_rate *rate, uint64_t now)
{
    uint64_t add;

    if (rate->interval_ms == 0)
        return;
    if (now <= b->last_ms)
        return;
    add = (now - b->last_ms) / rate->interval_ms;
    if (b->tokens + add >= rate->burst) {
        b->tokens = rate->burst;
        b->last_ms = now;
    } else {
        b->tokens += (uint32_t)add;
        b->last_ms += add * rate->interval_ms;
    }
}

int
svd_bucket_ready(struct svd_bucket *b, const struct svd_rate *rate, uint64_t now_ms)
{
    if (rate->interval_ms == 0)
        return 1;
    credit(b, rate, now_ms);
    return b->tokens > 0;
}

int
svd_bucket_take(struct svd_bucket *b, const struct svd_rate *rate, uint64_t now_ms)
{
    if (!svd_bucket_ready(b, rate, now_ms))
        return 0;
    if (rate->interval_ms != 0) {
        if (b->tokens == rate->burst)
            b->last_ms = now_ms; /* the refill clock starts when a full bucket is drawn */
        b->tokens--;
    }
    return 1;
}

uint64_t
svd_bucket_wait_ms(const struct svd_bucket *b, const struct svd_rate *rate, uint64_t now_ms)
{
    struct svd_bucket t = *b;

    if (rate->interval_ms == 0)
        return 0;
    credit(&t, rate, now_ms);
    if (t.tokens > 0)
        return 0;
    return t.last_ms + rate->interval_ms - now_ms;
}

void
svd_bucket_fill(struct svd_bucket *b, const struct svd_rate *rate, uint64_t now_ms)
{
    b->tokens = rate->burst;
    b->last_ms = now_ms;
}

/* FNV-1a of an actor name. */
static uint32_t
hash_name(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Forget actors whose buckets are full again; rebuilds the table. */
static void
purge_actors(struct svd_limiter *l, uint64_t now)
{
    struct actor *old = l->actors;
    unsigned i;

    l->actors = calloc(l->nslots, sizeof(*l->actors));
    if (l->actors == NULL) {
        l->actors = old; /* keep what we had */
        return;
    }
    l->nactors = 0;
    for (i = 0; i < l->nslots; i++) {
        struct actor *a = &old[i];
        uint32_t j;
        if (!a->used)
            continue;
        credit(&a->b, &l->actor_rate, now);
        if ((l->actor_rate.interval_ms == 0 || a->b.tokens >= l->actor_rate.burst) &&
            (a->budget == NULL || svd_window_count(a->budget, now) == 0)) {
            free(a->budget);
            continue;
        }
        for (j = hash_name(a->name) % l->nslots; l->actors[j].used; j = (j + 1) % l->nslots)
            ;
        l->actors[j] = *a;
        l->nactors++;
    }
    free(old);
}

/* The actor's buckets, created full when new; NULL when the table is full. */
static struct actor *
find_actor(struct svd_limiter *l, const char *name, uint64_t now)
{
    uint32_t j;

    for (int pass = 0; pass < 2; pass++) {
        for (j = hash_name(name) % l->nslots; l->actors[j].used; j = (j + 1) % l->nslots)
            if (strcmp(l->actors[j].name, name) == 0)
                return &l->actors[j];
        if (l->nactors < l->max_actors) {
            struct actor *a = &l->actors[j];
            a->budget = NULL;
            if (l->actor_budget != 0) {
                if ((a->budget = malloc(sizeof(*a->budget))) == NULL)
                    return NULL;
                svd_window_reset(a->budget, now);
            }
            a->used = 1;
            snprintf(a->name, sizeof(a->name), "%s", name);
            svd_bucket_fill(&a->b, &l->actor_rate, now);
            l->nactors++;
            return a;
        }
        purge_actors(l, now);
    }
    return NULL;
}

struct svd_limiter *
svd_limiter_new(const struct svd_conf *conf, int locked, uint64_t locked_since)
{
    struct svd_limiter *l;
    pthread_condattr_t ca;

    CHECK_OBJ_NOTNULL(conf, SVD_CONF_MAGIC);
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return NULL;
    l->magic = SVD_LIMITER_MAGIC;
    l->global_rate = conf->global;
    l->actor_rate = conf->actor;
    l->global_budget = conf->budget_global;
    l->actor_budget = conf->budget_actor;
    l->retire_budget = conf->retire_budget;
    /* pressure drains at the rate decrypts are served: the global rate, or
     * the per-actor one when the global rate is unlimited */
    l->drain_ms = conf->global.interval_ms != 0 ? conf->global.interval_ms
                                                : conf->actor.interval_ms;
    l->queue_max = conf->queue_max;
    l->threshold = conf->lockdown_threshold;
    l->max_actors = conf->max_actors;
    l->max_wait_ms = conf->queue_max_wait_ms;
    l->now_ms = svd_now_ms;
    l->nslots = conf->max_actors * 2 + 1;
    if ((l->actors = calloc(l->nslots, sizeof(*l->actors))) == NULL) {
        free(l);
        return NULL;
    }
    AZ(pthread_mutex_init(&l->mu, NULL));
    AZ(pthread_condattr_init(&ca));
    AZ(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
    AZ(pthread_cond_init(&l->cv, &ca));
    AZ(pthread_condattr_destroy(&ca));
    svd_bucket_fill(&l->global, &l->global_rate, l->now_ms());
    svd_window_reset(&l->gbudget, l->now_ms());
    svd_window_reset(&l->rbudget, l->now_ms());
    l->pressure_ms = l->now_ms();
    l->locked = locked;
    l->locked_since = locked ? locked_since : 0;
    return l;
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
    for (unsigned i = 0; i < l->nslots; i++)
        free(l->actors[i].budget);
    free(l->actors);
    l->magic = 0;
    free(l);
}

void
svd_limiter_set_clock(struct svd_limiter *l, uint64_t (*now_ms)(void))
{
    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    l->now_ms = now_ms;
    svd_bucket_fill(&l->global, &l->global_rate, now_ms());
    svd_window_reset(&l->gbudget, now_ms());
    svd_window_reset(&l->rbudget, now_ms());
    l->pressure_ms = now_ms();
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

/*
 * Both rate tokens available for this actor now? Then, when a daily budget
 * (global or the actor's) is spent, -1: the caller trips the lock-down.
 * Otherwise takes the tokens (and the budgets') and returns 1. 0: not yet,
 * *wait says how long.
 */
static int
try_take(struct svd_limiter *l, const char *actor, uint64_t now, uint64_t *wait)
{
    struct actor *a = find_actor(l, actor, now);
    uint64_t wg, wa;

    if (a == NULL) {
        *wait = 1000;
        return 0;
    }
    if (svd_bucket_ready(&l->global, &l->global_rate, now) &&
        svd_bucket_ready(&a->b, &l->actor_rate, now)) {
        if (l->global_budget != 0 &&
            !svd_window_fits(&l->gbudget, now, 1, l->global_budget)) {
            l->trip_why = "daily-budget";
            return -1;
        }
        if (a->budget != NULL && !svd_window_fits(a->budget, now, 1, l->actor_budget)) {
            l->trip_why = "actor-daily-budget";
            return -1;
        }
        AN(svd_bucket_take(&l->global, &l->global_rate, now));
        AN(svd_bucket_take(&a->b, &l->actor_rate, now));
        svd_window_add(&l->gbudget, now, 1);
        if (a->budget != NULL)
            svd_window_add(a->budget, now, 1);
        return 1;
    }
    wg = svd_bucket_wait_ms(&l->global, &l->global_rate, now);
    wa = svd_bucket_wait_ms(&a->b, &l->actor_rate, now);
    *wait = wg > wa ? wg : wa;
    if (*wait == 0)
        *wait = 1;
    return 0;
}

/* Drain the pressure: one unit per drain_ms since it was last drained. */
static void
drain_pressure(struct svd_limiter *l, uint64_t now)
{
    uint64_t k;

    if (l->drain_ms == 0) {
        l->pressure = 0; /* no rate limit: no pressure either */
        l->pressure_ms = now;
        return;
    }
    if (l->pressure == 0 || now <= l->pressure_ms) {
        if (l->pressure == 0)
            l->pressure_ms = now;
        return;
    }
    k = (now - l->pressure_ms) / l->drain_ms;
    if (k >= l->pressure) {
        l->pressure = 0;
        l->pressure_ms = now;
    } else {
        l->pressure -= (uint32_t)k;
        l->pressure_ms += k * l->drain_ms;
    }
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
    int took;

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
    if (l->qhead == NULL && (took = try_take(l, actor, now, &next)) != 0) {
        if (took < 0) {
            trip(l, l->trip_why);
            res = SVD_ADMIT_TRIPPED;
            goto out;
        }
        res = SVD_ADMIT_OK;
        goto out;
    }
    /*
     * No token for this decrypt now: it is pressure, whatever wait_ms it
     * asked for (a client that never waits is refused at once, but counts
     * all the same). Pressure drains at the rate decrypts are served; a
     * decrypt that finds the threshold reached, in the queue or in the
     * pressure, trips the lock-down.
     */
    drain_pressure(l, now);
    if (l->threshold > 0 && (l->qlen >= l->threshold || l->pressure >= l->threshold)) {
        trip(l, l->qlen >= l->threshold ? "queue-overflow" : "decrypt-pressure");
        res = SVD_ADMIT_TRIPPED;
        goto out;
    }
    if (l->drain_ms != 0 && l->pressure < UINT32_MAX)
        l->pressure++;
    if (l->qlen >= l->queue_max) {
        *retry_ms = clamp32(next);
        res = SVD_ADMIT_BUSY;
        goto out;
    }
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
        if (l->qhead == &w && (took = try_take(l, actor, now, &next)) != 0) {
            unlink_waiter(l, &w);
            if (took < 0) {
                trip(l, l->trip_why);
                res = SVD_ADMIT_TRIPPED;
                goto out;
            }
            AZ(pthread_cond_broadcast(&l->cv)); /* the next one is head now */
            res = SVD_ADMIT_OK;
            goto out;
        }
        if (now >= w.deadline) {
            unlink_waiter(l, &w);
            AZ(pthread_cond_broadcast(&l->cv));
            *retry_ms = clamp32(l->qhead == NULL ? next : l->global_rate.interval_ms);
            res = SVD_ADMIT_TIMEOUT;
            goto out;
        }
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
    /* the sysadmin looked into it: a fresh start for pressure and budgets */
    l->pressure = 0;
    l->pressure_ms = l->now_ms();
    svd_window_reset(&l->gbudget, l->pressure_ms);
    svd_window_reset(&l->rbudget, l->pressure_ms);
    for (unsigned i = 0; i < l->nslots; i++)
        if (l->actors[i].used && l->actors[i].budget != NULL)
            svd_window_reset(l->actors[i].budget, l->pressure_ms);
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

unsigned
svd_limiter_pressure(struct svd_limiter *l)
{
    unsigned p;

    CHECK_OBJ_NOTNULL(l, SVD_LIMITER_MAGIC);
    AZ(pthread_mutex_lock(&l->mu));
    drain_pressure(l, l->now_ms());
    p = l->pressure;
    AZ(pthread_mutex_unlock(&l->mu));
    return p;
}
