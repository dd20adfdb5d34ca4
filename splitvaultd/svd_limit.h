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
 * The buckets live in this process only (see docs/daemon.md, scale-out).
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
    SVD_ADMIT_CLOSING     /* the daemon is shutting down */
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

struct svd_limiter;

struct svd_limiter *svd_limiter_new(const struct svd_conf *conf, int locked, uint64_t locked_since);
void svd_limiter_free(struct svd_limiter *l);

/* Block until admitted or refused. *retry_ms receives a hint for refusals. */
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

/* The pressure now (decrypts that found no token, drained). */
unsigned svd_limiter_pressure(struct svd_limiter *l);

/* Shutdown: refuse every queued and later request with SVD_ADMIT_CLOSING. */
void svd_limiter_close(struct svd_limiter *l);

/* Test hook: replace the clock (unit tests). */
void svd_limiter_set_clock(struct svd_limiter *l, uint64_t (*now_ms)(void));

#endif /* SVD_LIMIT_H */
