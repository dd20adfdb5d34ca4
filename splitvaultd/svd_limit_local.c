/*
 * svd_limit_local.c - the decrypt limiter's state in this process (a
 * sqlite3 store: one daemon): the token buckets, global and per staff
 * name, the pressure and the daily budgets of decrypts (svd_limit.h).
 *
 * The limiter calls it with its mutex held, so nothing here locks. The
 * per-actor buckets are an open hash table of at most decrypt.max_actors
 * entries; a full table first forgets actors whose buckets (rate and
 * budget) are full again (a fresh bucket is the same).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svd.h"
#include "svd_limit.h"
#include "svd_window.h"
#include "sv_wire.h"

#define LOCAL_MAGIC 0x10ca11b5u

struct actor {
    char name[SV_WIRE_MAX_ACTOR + 1];
    int used;
    struct svd_bucket b;        /* decrypt.actor_rate */
    struct svd_window *budget;  /* decrypt.daily_budget.actor (NULL: no budget) */
};

struct local {
    struct svd_limit_backend base; /* first: the limiter holds a pointer to it */
    unsigned magic;
    struct svd_rate global_rate, actor_rate;
    uint32_t global_budget, actor_budget; /* a day; 0: no budget */
    uint32_t drain_ms;          /* pressure drains one unit per drain_ms */
    unsigned threshold, max_actors;

    struct svd_bucket global;
    struct svd_window gbudget;  /* decrypts in the last 24 hours */
    uint32_t pressure;          /* decrypts that arrived without a token, drained */
    uint64_t pressure_ms;       /* drained up to this time */
    struct actor *actors;
    unsigned nslots, nactors;
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
purge_actors(struct local *l, uint64_t now)
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
find_actor(struct local *l, const char *name, uint64_t now)
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

/*
 * Both rate tokens available for this actor now? Then, when a daily budget
 * (global or the actor's) is spent, SVD_TAKE_TRIP. Otherwise takes the
 * tokens (and the budgets') and returns SVD_TAKE_OK. SVD_TAKE_WAIT: not
 * yet, *wait says how long.
 */
static enum svd_take
try_take(struct local *l, const char *actor, uint64_t now, uint64_t *wait, const char **why)
{
    struct actor *a = find_actor(l, actor, now);
    uint64_t wg, wa;

    if (a == NULL) {
        *wait = 1000;
        return SVD_TAKE_WAIT;
    }
    if (svd_bucket_ready(&l->global, &l->global_rate, now) &&
        svd_bucket_ready(&a->b, &l->actor_rate, now)) {
        if (l->global_budget != 0 &&
            !svd_window_fits(&l->gbudget, now, 1, l->global_budget)) {
            *why = "daily-budget";
            return SVD_TAKE_TRIP;
        }
        if (a->budget != NULL && !svd_window_fits(a->budget, now, 1, l->actor_budget)) {
            *why = "actor-daily-budget";
            return SVD_TAKE_TRIP;
        }
        AN(svd_bucket_take(&l->global, &l->global_rate, now));
        AN(svd_bucket_take(&a->b, &l->actor_rate, now));
        svd_window_add(&l->gbudget, now, 1);
        if (a->budget != NULL)
            svd_window_add(a->budget, now, 1);
        return SVD_TAKE_OK;
    }
    wg = svd_bucket_wait_ms(&l->global, &l->global_rate, now);
    wa = svd_bucket_wait_ms(&a->b, &l->actor_rate, now);
    *wait = wg > wa ? wg : wa;
    if (*wait == 0)
        *wait = 1;
    return SVD_TAKE_WAIT;
}

/* Drain the pressure: one unit per drain_ms since it was last drained. */
static void
drain_pressure(struct local *l, uint64_t now)
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

static enum svd_take
local_take(struct svd_limit_backend *b, const char *actor, enum svd_take_mode mode, uint64_t now,
           uint64_t *wait, const char **why)
{
    struct local *l = (struct local *)b;
    enum svd_take t = SVD_TAKE_WAIT;

    CHECK_OBJ_NOTNULL(l, LOCAL_MAGIC);
    *wait = 0;
    if (mode != SVD_TAKE_QUEUED && (t = try_take(l, actor, now, wait, why)) != SVD_TAKE_WAIT)
        return t;
    if (mode == SVD_TAKE_HEAD)
        return SVD_TAKE_WAIT;
    /* no token for this decrypt now: pressure (svd_limit.h) */
    drain_pressure(l, now);
    if (l->threshold > 0 && l->pressure >= l->threshold) {
        *why = "decrypt-pressure";
        return SVD_TAKE_TRIP;
    }
    if (l->drain_ms != 0 && l->pressure < UINT32_MAX)
        l->pressure++;
    return SVD_TAKE_WAIT;
}

static int
local_status(struct svd_limit_backend *b, uint64_t now, struct svd_limit_status *st)
{
    struct local *l = (struct local *)b;

    CHECK_OBJ_NOTNULL(l, LOCAL_MAGIC);
    memset(st, 0, sizeof(*st));
    credit(&l->global, &l->global_rate, now);
    st->tokens = l->global_rate.interval_ms == 0 ? -1.0 : (double)l->global.tokens;
    drain_pressure(l, now);
    st->pressure = l->pressure;
    st->decrypts = svd_window_count(&l->gbudget, now);
    st->actors = l->nactors;
    return 0;
}

/* The sysadmin looked into it: a fresh start for pressure and budgets. */
static int
local_reset(struct svd_limit_backend *b, uint64_t now)
{
    struct local *l = (struct local *)b;

    CHECK_OBJ_NOTNULL(l, LOCAL_MAGIC);
    l->pressure = 0;
    l->pressure_ms = now;
    svd_window_reset(&l->gbudget, now);
    for (unsigned i = 0; i < l->nslots; i++)
        if (l->actors[i].used && l->actors[i].budget != NULL)
            svd_window_reset(l->actors[i].budget, now);
    return 0;
}

static void
local_restart(struct svd_limit_backend *b, uint64_t now)
{
    struct local *l = (struct local *)b;

    CHECK_OBJ_NOTNULL(l, LOCAL_MAGIC);
    svd_bucket_fill(&l->global, &l->global_rate, now);
    svd_window_reset(&l->gbudget, now);
    l->pressure_ms = now;
}

static void
local_free(struct svd_limit_backend *b)
{
    struct local *l = (struct local *)b;

    if (l == NULL)
        return;
    CHECK_OBJ(l, LOCAL_MAGIC);
    for (unsigned i = 0; i < l->nslots; i++)
        free(l->actors[i].budget);
    free(l->actors);
    l->magic = 0;
    free(l);
}

static const struct svd_limit_ops local_ops = {
    "local", local_take, local_status, local_reset, local_restart, local_free
};

struct svd_limit_backend *
svd_limit_local_new(const struct svd_conf *conf, uint64_t now)
{
    struct local *l;

    CHECK_OBJ_NOTNULL(conf, SVD_CONF_MAGIC);
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return NULL;
    l->base.ops = &local_ops;
    l->magic = LOCAL_MAGIC;
    l->global_rate = conf->global;
    l->actor_rate = conf->actor;
    l->global_budget = conf->budget_global;
    l->actor_budget = conf->budget_actor;
    l->drain_ms = svd_limit_drain_ms(conf);
    l->threshold = conf->lockdown_threshold;
    l->max_actors = conf->max_actors;
    l->nslots = conf->max_actors * 2 + 1;
    if ((l->actors = calloc(l->nslots, sizeof(*l->actors))) == NULL) {
        free(l);
        return NULL;
    }
    local_restart(&l->base, now);
    return &l->base;
}
