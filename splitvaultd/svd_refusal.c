/*
 * svd_refusal.c - refusal summaries (see svd_refusal.h).
 *
 * A fixed table under one mutex; audit entries are queued (never waited
 * for) after the mutex is released, so a slow audit log does not hold up
 * the accept loop.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svd.h"
#include "svd_audit.h"
#include "svd_clock.h"
#include "svd_log.h"
#include "svd_refusal.h"

#define SVD_REFUSALS_MAGIC 0x4ef05a15u
#define REFUSAL_SLOTS 64
#define WHY_LEN 40
#define PEER_LEN 48

struct slot {
    char why[WHY_LEN];
    char peer[PEER_LEN];
    unsigned count;         /* refusals counted (not written) this period */
    int active;             /* a refusal this period */
    int used;
};

struct svd_refusals {
    unsigned magic;
    struct svd_audit *audit;
    const char *event;      /* the entries' event= token */
    const char *what;       /* what is counted, for the log */
    uint32_t period_ms;
    pthread_mutex_t mu;
    uint64_t period_start;
    unsigned other;         /* refusals of keys that did not fit */
    struct slot slot[REFUSAL_SLOTS];
};

struct svd_refusals *
svd_refusals_new(struct svd_audit *audit, uint32_t period_ms, const char *event,
                 const char *what)
{
    struct svd_refusals *r;

    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->magic = SVD_REFUSALS_MAGIC;
    r->audit = audit;
    r->event = event;
    r->what = what;
    r->period_ms = period_ms;
    r->period_start = svd_now_ms();
    AZ(pthread_mutex_init(&r->mu, NULL));
    return r;
}

void
svd_refusals_free(struct svd_refusals *r)
{
    if (r == NULL)
        return;
    CHECK_OBJ(r, SVD_REFUSALS_MAGIC);
    AZ(pthread_mutex_destroy(&r->mu));
    r->magic = 0;
    free(r);
}

int
svd_refusal(struct svd_refusals *r, const char *why, const char *peer, const char *extra)
{
    struct slot *free_slot = NULL;
    int now = 0;

    CHECK_OBJ_NOTNULL(r, SVD_REFUSALS_MAGIC);
    AZ(pthread_mutex_lock(&r->mu));
    for (unsigned i = 0; i < REFUSAL_SLOTS; i++) {
        struct slot *s = &r->slot[i];
        if (!s->used) {
            if (free_slot == NULL)
                free_slot = s;
            continue;
        }
        if (strcmp(s->why, why) == 0 && strcmp(s->peer, peer) == 0) {
            s->active = 1;
            s->count++;
            goto out;
        }
    }
    if (free_slot == NULL) {
        r->other++;
        goto out;
    }
    free_slot->used = 1;
    free_slot->active = 1;
    free_slot->count = 0;
    snprintf(free_slot->why, sizeof(free_slot->why), "%s", why);
    snprintf(free_slot->peer, sizeof(free_slot->peer), "%s", peer);
    now = 1;
out:
    AZ(pthread_mutex_unlock(&r->mu));
    if (now)
        (void)svd_audit_event(r->audit, 0, "event=%s why=%.39s peer=%.47s%.*s", r->event, why, peer,
                              SVD_REFUSAL_EXTRA_MAX, extra != NULL ? extra : "");
    return now;
}

void
svd_refusals_flush(struct svd_refusals *r, int all)
{
    struct {
        char why[WHY_LEN];
        char peer[PEER_LEN];
        unsigned count;
    } out[REFUSAL_SLOTS + 1];
    unsigned n = 0, secs;
    uint64_t now = svd_now_ms();

    CHECK_OBJ_NOTNULL(r, SVD_REFUSALS_MAGIC);
    AZ(pthread_mutex_lock(&r->mu));
    if (!all && now - r->period_start < r->period_ms) {
        AZ(pthread_mutex_unlock(&r->mu));
        return;
    }
    secs = (unsigned)((now - r->period_start + 999) / 1000);
    for (unsigned i = 0; i < REFUSAL_SLOTS; i++) {
        struct slot *s = &r->slot[i];
        if (!s->used)
            continue;
        if (s->count > 0) {
            memcpy(out[n].why, s->why, WHY_LEN);
            memcpy(out[n].peer, s->peer, PEER_LEN);
            out[n].count = s->count;
            n++;
        }
        if (!s->active)
            s->used = 0; /* a whole period without refusals: forgotten */
        s->active = 0;
        s->count = 0;
    }
    if (r->other > 0) {
        snprintf(out[n].why, WHY_LEN, "other-refusals");
        snprintf(out[n].peer, PEER_LEN, "other");
        out[n].count = r->other;
        n++;
        r->other = 0;
    }
    r->period_start = now;
    AZ(pthread_mutex_unlock(&r->mu));
    for (unsigned i = 0; i < n; i++) {
        /* refusals are warnings; other summarised events (pages of a
         * listing) are not */
        if (strcmp(r->event, "refusal") == 0)
            svd_warn("%u more %s (%s) from %s in the last %u s", out[i].count, r->what,
                     out[i].why, out[i].peer, secs);
        else
            svd_info("%u more %s (%s) from %s in the last %u s", out[i].count, r->what,
                     out[i].why, out[i].peer, secs);
        (void)svd_audit_event(r->audit, 0, "event=%s why=%.39s peer=%.47s count=%u "
                              "period=%us", r->event, out[i].why, out[i].peer, out[i].count,
                              secs);
    }
}
