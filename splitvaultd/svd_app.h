/*
 * svd_app.h - the daemon's shared state, handed to every thread.
 *
 * Owned by main(): created before the threads start, destroyed after they
 * have all stopped. The pointers never change while threads run; the
 * counters are updated atomically.
 */
#ifndef SVD_APP_H
#define SVD_APP_H

#include <pthread.h>
#include <stdint.h>

#include "svd_conf.h"
#include "svd_space.h"

#define SVD_APP_MAGIC 0xa99a99a9u

struct svd_store;
struct svd_audit;
struct svd_limiter;
struct svd_refusals;

struct svd_app {
    unsigned magic;
    const struct svd_conf *conf;
    struct svd_store *store;
    struct svd_audit *audit;
    struct svd_limiter *limiter;
    struct svd_refusals *refusals; /* refusal summaries (svd_refusal.h) */
    struct svd_refusals *scans;  /* RECON_SCAN pages, summarised the same way */
    struct svd_space space;      /* the free-space watermark (svd_space.h) */
    uint64_t started;            /* unix seconds */
    uint64_t n_stores;           /* counters since start (atomic) */
    uint64_t n_decrypts;
    uint64_t n_refusals;
    uint64_t n_house;            /* housekeeping rounds done (status: house_rounds) */
    /* crypto section: at most crypto_max threads at once */
    pthread_mutex_t crypto_mu;
    pthread_cond_t crypto_cv;
    unsigned crypto_in, crypto_max;
    /* lock-down transitions (one at a time), and a durable write owed */
    pthread_mutex_t lock_mu;
    int lock_write_pending;     /* locked in memory; the store does not know yet */
    uint64_t lock_pending_since;
    char lock_pending_why[32];
};

#define SVD_COUNT(app, field) __atomic_add_fetch(&(app)->field, 1, __ATOMIC_RELAXED)
#define SVD_READ(app, field) __atomic_load_n(&(app)->field, __ATOMIC_RELAXED)

/* Set up / tear down the parts of app that main() does not fill in. */
void svd_app_init(struct svd_app *app);
void svd_app_fini(struct svd_app *app);

/* Enter / leave the crypto section (at most one thread per CPU). */
void svd_crypto_enter(struct svd_app *app);
void svd_crypto_leave(struct svd_app *app);

/* Lock down: in memory at once, then durably in the store, then audited
 * (and waited for). why is a token; source names who asked. 0 when both
 * durable records were written; -1 when the store could not record it
 * (the daemon stays locked, and the store write is retried every second by
 * svd_app_retry_lock_write() until it succeeds) or the audit entry could
 * not be written. */
int svd_app_lockdown(struct svd_app *app, const char *why, const char *source);

/* A lock-down found in the store (another daemon's): audit it here too. */
void svd_app_lockdown_seen(struct svd_app *app, uint64_t since);

/* Housekeeping: retry a lock-down the store has not recorded yet. */
void svd_app_retry_lock_write(struct svd_app *app);

/* 1 while a lock-down is owed to the store. */
int svd_app_lock_write_pending(struct svd_app *app);

enum svd_unlock {
    SVD_UNLOCK_OK = 0, SVD_UNLOCK_NOT_LOCKED = 1, SVD_UNLOCK_AUDIT = -1, SVD_UNLOCK_STORE = -2,
    SVD_UNLOCK_NEWER = -3
};

/* Lift the lock-down (control socket): audited first (an unlock that cannot
 * be recorded is not done), then recorded in the store, then in memory.
 * The store's state is read once, under lock_mu. SVD_UNLOCK_NOT_LOCKED:
 * neither this daemon nor the store is locked down (nothing done, nothing
 * audited). SVD_UNLOCK_NEWER: the (shared) store records another lock-down
 * than the one this daemon knew, or one it had not picked up yet (*newer:
 * its since), which is not lifted unseen: the daemon adopts it (locked,
 * audited as seen), and a second unlock lifts it. */
enum svd_unlock svd_app_unlock(struct svd_app *app, const char *source, uint64_t *newer);

#endif /* SVD_APP_H */
