/*
 * svd_limit.h - decrypt admission: token buckets, FIFO queue, pressure,
 * daily budgets, lock-down.
 *
 * Every DECRYPT asks svd_limiter_admit() first. It is admitted at once when
 * nobody is queued and both the global bucket and the actor's bucket hold a
 * token; otherwise it waits in a bounded FIFO queue until it is at the head
 * and both buckets have refilled, or until its wait (the smaller of the
 * request's wait_ms and decrypt.queue.max_wait) runs out.
 *
 * Pressure: every decrypt that cannot be admitted at once counts one unit
 * of pressure, whatever its wait_ms (a client that never waits is refused
 * at once, and counts all the same); pressure drains one unit per interval
 * of the global rate (of the actor rate when the global one is unlimited).
 * A decrypt that arrives while lockdown_threshold requests wait, or while
 * the pressure has reached lockdown_threshold, trips the lock-down: a
 * stream of decrypts faster than the rate locks the daemon down whether or
 * not it queues. Daily budgets (decrypt.daily_budget.global / .actor: at
 * most that many decrypts in any 24 hours, svd_window.h) trip it too, when
 * a decrypt that has its rate tokens finds a budget spent; so does the
 * budget of shares retired (retention.daily_budget), which RELEASE and
 * RECON_DELETE spend before they retire anything (svd_limiter_retire).
 *
 * Tripped, every queued request is dropped (its thread cleanses it) and
 * every later decrypt is refused until svd_limiter_unlock(), which also
 * clears the pressure and refills the budgets. The durable record of the
 * lock-down is the caller's job (svd_app).
 *
 * Where the buckets, the pressure and the daily budgets of decrypts live is
 * the backend's (struct svd_limit_ops): in this process with a sqlite3
 * store, which one daemon uses (svd_limit_local.c); in the store with
 * pgsql, shared by every daemon on it, so that together they serve the
 * configured rate and not a multiple of it (svd_limit_shared.c). The queue,
 * the lock-down in memory and the budget of retired shares are this
 * process's either way (docs/daemon.md, "Which state lives where").
 */
#ifndef SVD_LIMIT_H
#define SVD_LIMIT_H

#include <stdint.h>

#include "svd_conf.h"

#define SVD_LIMITER_MAGIC 0x11a17e55u

enum svd_admit {
    SVD_ADMIT_OK = 0,
    SVD_ADMIT_TIMEOUT,    /* waited its whole allowance */
    SVD_ADMIT_BUSY,       /* queue full (lock-down disabled or below threshold) */
    SVD_ADMIT_LOCKED,     /* locked down */
    SVD_ADMIT_TRIPPED,    /* this request tripped the lock-down (svd_limiter_trip_why) */
    SVD_ADMIT_CLOSING,    /* the daemon is shutting down */
    SVD_ADMIT_STORE       /* the shared limiter's store did not answer: refused */
};

struct svd_bucket {
    uint32_t tokens;
    uint64_t last_ms;     /* time the tokens were last credited up to */
};

/* Credit tokens earned since last_ms; then take one if there is one.
 * Returns 1 when a token was taken. interval 0 means unlimited. */
int svd_bucket_take(struct svd_bucket *b, const struct svd_rate *rate, uint64_t now_ms);

/* Like take, without taking: 1 when a token is there now. */
int svd_bucket_ready(struct svd_bucket *b, const struct svd_rate *rate, uint64_t now_ms);

/* Milliseconds until the bucket holds a token (0: now). */
uint64_t svd_bucket_wait_ms(const struct svd_bucket *b, const struct svd_rate *rate,
                            uint64_t now_ms);

/* A full bucket (fresh actors start full). */
void svd_bucket_fill(struct svd_bucket *b, const struct svd_rate *rate, uint64_t now_ms);

/*
 * The backends. The limiter calls them with its mutex held, one call at a
 * time, with its clock's now_ms (the shared one uses the database's clock
 * instead). take() decides one decrypt: SVD_TAKE_FIRST for one that
 * arrives with nobody queued (take the tokens and the budgets', or count
 * one unit of pressure), SVD_TAKE_QUEUED for one that arrives behind
 * others (pressure only), SVD_TAKE_HEAD for the head of the queue (take,
 * no pressure). It answers SVD_TAKE_OK (admitted), SVD_TAKE_WAIT (*wait_ms
 * until a token is due, 0: unknown), SVD_TAKE_TRIP (lock down, *why: a
 * static token), SVD_TAKE_LOCKED (the shared store records a lock-down
 * already: refused, nothing spent; the housekeeping adopts it) or
 * SVD_TAKE_ERROR (the store failed; logged).
 */
enum svd_take_mode { SVD_TAKE_FIRST, SVD_TAKE_QUEUED, SVD_TAKE_HEAD };
enum svd_take {
    SVD_TAKE_LOCKED = -3, SVD_TAKE_ERROR = -2, SVD_TAKE_TRIP = -1, SVD_TAKE_WAIT = 0,
    SVD_TAKE_OK = 1
};

/* The state for splitvaultctl status. */
struct svd_limit_status {
    double tokens;       /* the global bucket's (-1: unlimited rate) */
    unsigned pressure;   /* drained to now */
    uint64_t decrypts;   /* admitted in the last 24 hours (the global budget's count) */
    uint64_t actors;     /* staff names with a bucket */
};

struct svd_limit_backend;

struct svd_limit_ops {
    const char *name;    /* "local", "shared" */
    enum svd_take (*take)(struct svd_limit_backend *b, const char *actor,
                          enum svd_take_mode mode, uint64_t now_ms, uint64_t *wait_ms,
                          const char **why);
    int (*status)(struct svd_limit_backend *b, uint64_t now_ms, struct svd_limit_status *st);
    /* unlock: pressure and daily budgets start afresh; 0 or -1 (logged) */
    int (*reset)(struct svd_limit_backend *b, uint64_t now_ms);
    /* the limiter's clock was replaced (unit tests) */
    void (*restart)(struct svd_limit_backend *b, uint64_t now_ms);
    void (*free)(struct svd_limit_backend *b);
};

/* Each backend's state begins with this. */
struct svd_limit_backend {
    const struct svd_limit_ops *ops;
};

/* Pressure drains at the rate decrypts are served: one unit per interval
 * of the global rate, of the actor rate when the global one is unlimited
 * (0: no rate limit, no pressure). */
uint32_t svd_limit_drain_ms(const struct svd_conf *conf);

/* In this process (svd_limit_local.c). */
struct svd_limit_backend *svd_limit_local_new(const struct svd_conf *conf, uint64_t now_ms);

/* In a pgsql store, shared by every daemon on it (svd_limit_shared.c). */
struct svd_store;
struct svd_limit_backend *svd_limit_shared_new(const struct svd_conf *conf,
                                               struct svd_store *store);

struct svd_limiter;

/* A limiter with the local backend. */
struct svd_limiter *svd_limiter_new(const struct svd_conf *conf, int locked, uint64_t locked_since);

/* A limiter with backend b, which it owns from now on (freed with it, or
 * here when this fails). */
struct svd_limiter *svd_limiter_new_with(const struct svd_conf *conf, struct svd_limit_backend *b,
                                         int locked, uint64_t locked_since);
void svd_limiter_free(struct svd_limiter *l);

/* Block until admitted or refused. *retry_ms receives a hint for refusals.
 * SVD_ADMIT_STORE: the shared backend's store failed (fail closed). */
enum svd_admit svd_limiter_admit(struct svd_limiter *l, const char *actor, uint32_t wait_ms,
                                 uint32_t *retry_ms);

/* Lock down now (control command, or another daemon's lock seen in the
 * store). Returns 1 when it was not locked before. */
int svd_limiter_lockdown(struct svd_limiter *l, uint64_t since);

/* Locked down, since since (replacing the time of a lock-down in force:
 * another daemon's newer one on a shared store). */
void svd_limiter_relock(struct svd_limiter *l, uint64_t since);

/* Lift the lock-down. Returns 1 when it was locked. */
int svd_limiter_unlock(struct svd_limiter *l);

int svd_limiter_locked(struct svd_limiter *l, uint64_t *since);
unsigned svd_limiter_queue_len(struct svd_limiter *l);

/* Spend n of the daily budget of retired shares: SVD_ADMIT_OK; or, when n
 * more would exceed it (nothing spent), SVD_ADMIT_TRIPPED when this call
 * tripped the lock-down (the caller records it), SVD_ADMIT_LOCKED when the
 * daemon was locked down already. Works while locked down. */
enum svd_admit svd_limiter_retire(struct svd_limiter *l, unsigned n);

/* Shares retired in the last 24 hours (the budget's count). */
uint64_t svd_limiter_retired_today(struct svd_limiter *l);

/* Why the last trip happened: "queue-overflow", "decrypt-pressure",
 * "daily-budget", "actor-daily-budget" or "retire-budget" (a static
 * string). */
const char *svd_limiter_trip_why(struct svd_limiter *l);

/* The backend's state now, and its name ("local", "shared"): 0, or -1 when
 * the store failed. */
int svd_limiter_status(struct svd_limiter *l, struct svd_limit_status *st, const char **name);

/* Shutdown: refuse every queued and later request with SVD_ADMIT_CLOSING. */
void svd_limiter_close(struct svd_limiter *l);

/* Test hook: replace the clock (unit tests). */
void svd_limiter_set_clock(struct svd_limiter *l, uint64_t (*now_ms)(void));

#endif /* SVD_LIMIT_H */
