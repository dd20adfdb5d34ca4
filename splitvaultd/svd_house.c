/*
 * svd_house.c - housekeeping, once a second (see svd_house.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "svd.h"
#include "svd_audit.h"
#include "svd_clock.h"
#include "svd_conf.h"
#include "svd_house.h"
#include "svd_limit.h"
#include "svd_log.h"
#include "svd_refusal.h"
#include "svd_store.h"

#define SVD_HOUSE_MAGIC 0x40e5e0a1u
#define HOUSE_PERIOD_MS 1000

struct svd_house {
    unsigned magic;
    struct svd_app *app;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* monotonic clock */
    int stopping;
    unsigned period_ms;
    pthread_t thread;
};

/* HOUSE_PERIOD_MS; in test builds SVD_TEST_HOUSE_PERIOD_MS may make it
 * longer, so that a test can act before a round (a lock-down another
 * daemon recorded, not yet picked up here). */
static unsigned
house_period_ms(void)
{
#ifdef SV_TEST_HOOKS
    const char *t = getenv("SVD_TEST_HOUSE_PERIOD_MS");
    uint64_t v;

    if (t != NULL && svd_parse_u64(t, &v) == 0 && v >= HOUSE_PERIOD_MS && v <= 86400000) {
        svd_warn("test hook: housekeeping every %" PRIu64 " ms", v);
        return (unsigned)v;
    }
#endif
    return HOUSE_PERIOD_MS;
}

/* Pick up a lock-down another daemon recorded in a shared store. */
static void
sync_lock(struct svd_app *app)
{
    int locked = 0;
    uint64_t since = 0;

    if (svd_store_lock_state(app->store, &locked, &since) != 0)
        return;
    if (locked && svd_limiter_lockdown(app->limiter, since))
        svd_app_lockdown_seen(app, since);
}

/*
 * Purge one batch of retired shares older than retention.period: never
 * while locked down (here; and the store's purge statement itself checks
 * the lock-down row, so another daemon's lock-down on a shared store stops
 * it too), recorded durably before and after. A kill in the middle loses
 * nothing but what that one transaction was deleting (all or none of it),
 * and only retired shares.
 */
static void
purge_once(struct svd_app *app)
{
    const struct svd_conf *c = app->conf;
    uint64_t now = svd_wall_s(), before, first = 0, last = 0;
    unsigned n = 0, purged = 0;

    if (svd_limiter_locked(app->limiter, NULL) || !svd_audit_healthy(app->audit))
        return;
    if (now <= c->retention_s)
        return;
    /* retired strictly before: a share retired after the scan (in this
     * second, with retention.period 0) waits for the next round, so the
     * batch deleted is the batch recorded */
    before = now - c->retention_s;
    if (svd_store_purge_scan(app->store, before, c->purge_batch, &first, &last, &n) != 0 ||
        n == 0)
        return;
    if (svd_audit_event(app->audit, 1, "event=purge outcome=requested count=%u first=%" PRIu64
                        " last=%" PRIu64 " retired_before=%" PRIu64, n, first, last,
                        before) != 0) {
        svd_err("purge: the audit log cannot record it; nothing purged");
        return;
    }
    if (svd_store_purge(app->store, before, first, last, &purged) != 0) {
        (void)svd_audit_event(app->audit, 0, "event=purge outcome=failed count=%u first=%"
                              PRIu64 " last=%" PRIu64, n, first, last);
        svd_err("purge: the store failed; retrying later");
        return;
    }
    if (svd_audit_event(app->audit, 0, "event=purge outcome=ok purged=%u first=%" PRIu64
                        " last=%" PRIu64, purged, first, last) != 0)
        svd_err("audit: the outcome of a purge (%u shares) not recorded; its request is",
                purged);
    if (purged > 0)
        svd_info("purge: %u retired share(s) past retention.period deleted (ids %" PRIu64
                 "..%" PRIu64 ")", purged, first, last);
    else
        svd_info("purge: nothing deleted (locked down in the store, or restored meanwhile)");
}

static void
round_once(struct svd_app *app)
{
    svd_app_retry_lock_write(app);
    sync_lock(app);
    svd_refusals_flush(app->refusals, 0);
    svd_refusals_flush(app->scans, 0);
    purge_once(app);
    SVD_COUNT(app, n_house);
}

static void *
house_main(void *arg)
{
    struct svd_house *h = arg;

    CHECK_OBJ_NOTNULL(h, SVD_HOUSE_MAGIC);
    AZ(pthread_mutex_lock(&h->mu));
    while (!h->stopping) {
        struct timespec ts;
        int e;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += h->period_ms / 1000;
        ts.tv_nsec += (long)(h->period_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        e = pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        SVD_ASSERT(e == 0 || e == ETIMEDOUT);
        if (h->stopping)
            break;
        AZ(pthread_mutex_unlock(&h->mu));
        round_once(h->app);
        AZ(pthread_mutex_lock(&h->mu));
    }
    AZ(pthread_mutex_unlock(&h->mu));
    return NULL;
}

struct svd_house *
svd_house_start(struct svd_app *app)
{
    struct svd_house *h;
    pthread_condattr_t ca;
    pthread_attr_t attr;
    int rv;

    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return NULL;
    h->magic = SVD_HOUSE_MAGIC;
    h->app = app;
    h->period_ms = house_period_ms();
    AZ(pthread_mutex_init(&h->mu, NULL));
    AZ(pthread_condattr_init(&ca));
    AZ(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
    AZ(pthread_cond_init(&h->cv, &ca));
    AZ(pthread_condattr_destroy(&ca));
    AZ(pthread_attr_init(&attr));
    AZ(pthread_attr_setstacksize(&attr, 256 * 1024));
    rv = pthread_create(&h->thread, &attr, house_main, h);
    AZ(pthread_attr_destroy(&attr));
    if (rv != 0) {
        AZ(pthread_mutex_destroy(&h->mu));
        AZ(pthread_cond_destroy(&h->cv));
        free(h);
        return NULL;
    }
    return h;
}

void
svd_house_stop(struct svd_house *h)
{
    if (h == NULL)
        return;
    CHECK_OBJ(h, SVD_HOUSE_MAGIC);
    AZ(pthread_mutex_lock(&h->mu));
    h->stopping = 1;
    AZ(pthread_cond_signal(&h->cv));
    AZ(pthread_mutex_unlock(&h->mu));
    AZ(pthread_join(h->thread, NULL));
    AZ(pthread_mutex_destroy(&h->mu));
    AZ(pthread_cond_destroy(&h->cv));
    h->magic = 0;
    free(h);
}
