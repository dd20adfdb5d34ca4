/*
 * svd_limit_shared.c - the decrypt limiter's state in a pgsql store,
 * shared by every daemon on it (svd_limit.h): the token buckets, global
 * and per staff name, the pressure and the daily budgets of decrypts live
 * in the store's sv_limit tables, and each call is one statement there
 * (svd_store_limit.c), so that the daemons together serve the configured
 * rate and not a multiple of it. The store's clock decides, not the
 * daemons'. A store that does not answer refuses the decrypt (fail
 * closed): SVD_TAKE_ERROR, and the caller refuses, audits and logs it.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svd.h"
#include "svd_limit.h"
#include "svd_log.h"
#include "svd_store.h"

#define SHARED_MAGIC 0x5a1ed11bu

struct shared {
    struct svd_limit_backend base; /* first: the limiter holds a pointer to it */
    unsigned magic;
    struct svd_store *store;    /* not owned */
};

static enum svd_take
shared_take(struct svd_limit_backend *b, const char *actor, enum svd_take_mode mode,
            uint64_t now, uint64_t *wait, const char **why)
{
    struct shared *sh = (struct shared *)b;
    int result = 0;

    CHECK_OBJ_NOTNULL(sh, SHARED_MAGIC);
    (void)now; /* the store's clock */
    *wait = 0;
    if (svd_store_limit_admit(sh->store, actor, (int)mode, &result, wait, why) != 0)
        return SVD_TAKE_ERROR; /* logged by the store and by the caller */
    return result > 0 ? SVD_TAKE_OK : result == 0 ? SVD_TAKE_WAIT
         : result == -1 ? SVD_TAKE_TRIP : SVD_TAKE_LOCKED;
}

static int
shared_status(struct svd_limit_backend *b, uint64_t now, struct svd_limit_status *st)
{
    struct shared *sh = (struct shared *)b;
    struct svd_store_limit_state s;

    CHECK_OBJ_NOTNULL(sh, SHARED_MAGIC);
    (void)now;
    memset(st, 0, sizeof(*st));
    if (svd_store_limit_status(sh->store, &s) != 0)
        return -1;
    st->tokens = s.tokens;
    st->pressure = s.pressure;
    st->decrypts = s.decrypts;
    st->actors = s.actors;
    return 0;
}

static int
shared_reset(struct svd_limit_backend *b, uint64_t now)
{
    struct shared *sh = (struct shared *)b;

    CHECK_OBJ_NOTNULL(sh, SHARED_MAGIC);
    (void)now;
    if (svd_store_limit_reset(sh->store) != 0) {
        svd_err("limiter: the shared pressure and daily budgets could not be reset in the "
                "store: they stay as they were (a spent budget locks down again)");
        return -1;
    }
    return 0;
}

static void
shared_restart(struct svd_limit_backend *b, uint64_t now)
{
    (void)b;
    (void)now; /* the store's clock is the store's */
}

static void
shared_free(struct svd_limit_backend *b)
{
    struct shared *sh = (struct shared *)b;

    if (sh == NULL)
        return;
    CHECK_OBJ(sh, SHARED_MAGIC);
    sh->magic = 0;
    free(sh);
}

static const struct svd_limit_ops shared_ops = {
    "shared", shared_take, shared_status, shared_reset, shared_restart, shared_free
};

struct svd_limit_backend *
svd_limit_shared_new(const struct svd_conf *conf, struct svd_store *store)
{
    struct shared *sh;

    CHECK_OBJ_NOTNULL(conf, SVD_CONF_MAGIC);
    SVD_ASSERT(conf->driver == SVD_DRIVER_PGSQL && store != NULL);
    if ((sh = calloc(1, sizeof(*sh))) == NULL)
        return NULL;
    sh->base.ops = &shared_ops;
    sh->magic = SHARED_MAGIC;
    sh->store = store;
    return &sh->base;
}
