/*
 * svd_app.c - lock-down and unlock, the two state changes several threads
 * can ask for (a tripped limiter, the control socket).
 *
 * Order matters: the in-memory flag first (decrypts stop at once), then the
 * durable record in the store (survives a restart, seen by other daemons),
 * then the audit entry. A failed durable write is logged loudly; the
 * daemon stays locked in memory either way.
 */
#include "config.h"

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
    app->crypto_max = n > 0 ? (unsigned)n : 1;
}

void
svd_app_fini(struct svd_app *app)
{
    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    SVD_ASSERT(app->crypto_in == 0);
    AZ(pthread_mutex_destroy(&app->crypto_mu));
    AZ(pthread_cond_destroy(&app->crypto_cv));
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

void
svd_app_lockdown(struct svd_app *app, const char *why, const char *source)
{
    uint64_t since = svd_wall_s();

    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    (void)svd_limiter_lockdown(app->limiter, since);
    (void)svd_limiter_locked(app->limiter, &since);
    svd_err("LOCK-DOWN (%s, from %s): decrypts refused until `splitvaultctl unlock`", why, source);
    if (svd_store_set_lock(app->store, 1, since, why) != 0)
        svd_err("lock-down could not be recorded in the store: it will not survive a restart");
    if (svd_audit_event(app->audit, 1, "event=lockdown why=%s source=%s", why, source) != 0)
        svd_err("audit: lock-down not recorded");
}

int
svd_app_unlock(struct svd_app *app, const char *source)
{
    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    if (svd_store_set_lock(app->store, 0, 0, "") != 0) {
        svd_err("unlock: the store could not record it; still locked");
        return -1;
    }
    (void)svd_limiter_unlock(app->limiter);
    svd_warn("unlocked by %s: decrypts allowed again", source);
    if (svd_audit_event(app->audit, 1, "event=unlock source=%s", source) != 0)
        svd_err("audit: unlock not recorded");
    return 0;
}
