/*
 * svd_app.c - lock-down and unlock, the two state changes several threads
 * can ask for (a tripped limiter, the control socket, the housekeeping
 * thread).
 *
 * Lock-down: the in-memory flag first (decrypts stop at once), then the
 * durable record in the store (survives a restart, seen by other daemons),
 * then the audit entry, waited for (the audit log is the second durable
 * record: at start a lock-down entry with no later unlock means locked). A
 * store write that fails is owed: the housekeeping thread retries it every
 * second until it succeeds; the daemon stays locked in memory meanwhile.
 *
 * Unlock: the audit entry first (an unlock nobody can see later is not
 * done), then the store, then memory. lock_mu makes the transitions one at
 * a time, so a retried lock-down write never overtakes an unlock.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "svd.h"
#include "svd_app.h"
#include "svd_audit.h"
#include "svd_clock.h"
#include "svd_limit.h"
#include "svd_log.h"
#include "svd_store.h"

void
svd_app_init(struct svd_app *app)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    memset(app, 0, sizeof(*app));
    app->magic = SVD_APP_MAGIC;
    AZ(pthread_mutex_init(&app->crypto_mu, NULL));
    AZ(pthread_cond_init(&app->crypto_cv, NULL));
    AZ(pthread_mutex_init(&app->lock_mu, NULL));
    app->crypto_max = n > 0 ? (unsigned)n : 1;
}

void
svd_app_fini(struct svd_app *app)
{
    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    SVD_ASSERT(app->crypto_in == 0);
    AZ(pthread_mutex_destroy(&app->crypto_mu));
    AZ(pthread_cond_destroy(&app->crypto_cv));
    AZ(pthread_mutex_destroy(&app->lock_mu));
    app->magic = 0;
}

void
svd_crypto_enter(struct svd_app *app)
{
    AZ(pthread_mutex_lock(&app->crypto_mu));
    while (app->crypto_in >= app->crypto_max)
        AZ(pthread_cond_wait(&app->crypto_cv, &app->crypto_mu));
    app->crypto_in++;
    AZ(pthread_mutex_unlock(&app->crypto_mu));
}

void
svd_crypto_leave(struct svd_app *app)
{
    AZ(pthread_mutex_lock(&app->crypto_mu));
    SVD_ASSERT(app->crypto_in > 0);
    app->crypto_in--;
    AZ(pthread_cond_signal(&app->crypto_cv));
    AZ(pthread_mutex_unlock(&app->crypto_mu));
}

int
svd_app_lockdown(struct svd_app *app, const char *why, const char *source)
{
    uint64_t since = svd_wall_s();
    int r = 0;

    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    AZ(pthread_mutex_lock(&app->lock_mu));
    (void)svd_limiter_lockdown(app->limiter, since);
    (void)svd_limiter_locked(app->limiter, &since);
    svd_err("LOCK-DOWN (%s, from %s): decrypts refused until `splitvaultctl unlock`", why, source);
    if (svd_store_set_lock(app->store, since, why) != 0) {
        svd_err("lock-down could not be recorded in the store: retrying every second (the "
                "audit log records it meanwhile)");
        app->lock_write_pending = 1;
        app->lock_pending_since = since;
        snprintf(app->lock_pending_why, sizeof(app->lock_pending_why), "%s", why);
        r = -1;
    } else {
        app->lock_write_pending = 0;
    }
    AZ(pthread_mutex_unlock(&app->lock_mu));
    if (svd_audit_event(app->audit, 1, "event=lockdown why=%s source=%s since=%" PRIu64
                        " store=%s", why, source, since, r == 0 ? "recorded" : "pending") != 0) {
        svd_err("audit: lock-down not recorded");
        r = -1;
    }
    return r;
}

void
svd_app_lockdown_seen(struct svd_app *app, uint64_t since)
{
    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    svd_warn("lock-down recorded in the store (by another daemon?): locking down");
    if (svd_audit_event(app->audit, 1, "event=lockdown why=store source=store since=%" PRIu64
                        " store=recorded", since) != 0)
        svd_err("audit: lock-down not recorded");
}

void
svd_app_retry_lock_write(struct svd_app *app)
{
    uint64_t since = 0;

    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    AZ(pthread_mutex_lock(&app->lock_mu));
    if (app->lock_write_pending && svd_limiter_locked(app->limiter, &since)) {
        if (svd_store_set_lock(app->store, app->lock_pending_since,
                               app->lock_pending_why) == 0) {
            app->lock_write_pending = 0;
            svd_warn("lock-down now recorded in the store");
            (void)svd_audit_event(app->audit, 0, "event=lockdown why=%s source=retry since=%"
                                  PRIu64 " store=recorded", app->lock_pending_why,
                                  app->lock_pending_since);
        }
    } else {
        app->lock_write_pending = 0;
    }
    AZ(pthread_mutex_unlock(&app->lock_mu));
}

int
svd_app_lock_write_pending(struct svd_app *app)
{
    int p;

    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    AZ(pthread_mutex_lock(&app->lock_mu));
    p = app->lock_write_pending;
    AZ(pthread_mutex_unlock(&app->lock_mu));
    return p;
}

/*
 * Take over the lock-down the store records (since), in place of the one
 * this daemon had, if any (mem_locked), and audit it here as seen (unless
 * the housekeeping thread or a decrypt just did: the lock-down went from
 * off to on in their hands). lock_mu held.
 */
static void
adopt_store_lock(struct svd_app *app, int mem_locked, uint64_t since)
{
    int fresh = !mem_locked && svd_limiter_lockdown(app->limiter, since);

    svd_limiter_relock(app->limiter, since);
    if (mem_locked || fresh)
        svd_app_lockdown_seen(app, since);
}

enum svd_unlock
svd_app_unlock(struct svd_app *app, const char *source, uint64_t *newer)
{
    enum svd_unlock r = SVD_UNLOCK_OK;
    uint64_t mem_since = 0, store_since = 0;
    int mem_locked, store_locked = 0, u;

    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    *newer = 0;
    AZ(pthread_mutex_lock(&app->lock_mu));
    mem_locked = svd_limiter_locked(app->limiter, &mem_since);
    if (svd_store_lock_state(app->store, &store_locked, &store_since) != 0) {
        svd_err("unlock: the store's lock-down state cannot be read; still locked");
        r = SVD_UNLOCK_STORE;
        goto out;
    }
    if (!mem_locked && !store_locked) {
        r = SVD_UNLOCK_NOT_LOCKED;
        goto out;
    }
    /* the lock-down the operator is lifting is the one this daemon knows;
     * another in a shared store (another daemon's, recorded since, or
     * before this daemon's housekeeping picked it up) is not lifted
     * unseen: this daemon adopts it, and says so */
    if (store_locked && (!mem_locked || store_since != mem_since)) {
        adopt_store_lock(app, mem_locked, store_since);
        *newer = store_since;
        if (mem_locked)
            svd_warn("unlock refused: the store records another lock-down (since %" PRIu64
                     ") than the one this daemon had (since %" PRIu64 ")", store_since,
                     mem_since);
        else
            svd_warn("unlock refused: the store records a lock-down (since %" PRIu64 ") this "
                     "daemon had not seen yet", store_since);
        r = SVD_UNLOCK_NEWER;
        goto out;
    }
    if (svd_audit_event(app->audit, 1, "event=unlock outcome=requested source=%s",
                        source) != 0) {
        svd_err("unlock: the audit log cannot record it; still locked");
        r = SVD_UNLOCK_AUDIT;
        goto out;
    }
    if ((u = svd_store_unlock(app->store, store_locked ? store_since : 0)) != 0) {
        if (u > 0) {
            /* another daemon locked down between the read and the write */
            (void)svd_store_lock_state(app->store, &store_locked, newer);
            if (*newer != 0)
                adopt_store_lock(app, 1, *newer);
            svd_warn("unlock refused: another lock-down was recorded meanwhile");
            r = SVD_UNLOCK_NEWER;
        } else {
            svd_err("unlock: the store could not record it; still locked");
            r = SVD_UNLOCK_STORE;
        }
        (void)svd_audit_event(app->audit, 0, "event=unlock outcome=failed source=%s", source);
        goto out;
    }
    app->lock_write_pending = 0;
    (void)svd_limiter_unlock(app->limiter);
    svd_warn("unlocked by %s: decrypts allowed again", source);
    if (svd_audit_event(app->audit, 1, "event=unlock outcome=ok source=%s", source) != 0)
        svd_err("audit: the unlock is recorded as requested, not as done: the daemon starts "
                "locked next time unless it is unlocked again");
out:
    AZ(pthread_mutex_unlock(&app->lock_mu));
    return r;
}
