/*
 * svd_window.h - how many events happened in the last 24 hours: the daily
 * budgets (decrypts globally and per staff name, shares retired).
 *
 * Events are counted in 15-minute slots; a window holds the current slot
 * and the 96 before it, so it always covers at least the whole last 24
 * hours (and at most 15 minutes more). An event admitted only while the
 * window holds fewer than N makes "at most N in any 24 hours" hold exactly
 * (a bucket refilled evenly over a day, which this replaces, let up to
 * twice N through in 24 hours: a full bucket plus a day's refill). Plain
 * data, no lock: the owner guards it.
 */
#ifndef SVD_WINDOW_H
#define SVD_WINDOW_H

#include <stdint.h>

#define SVD_WINDOW_SLOT_MS (15u * 60u * 1000u)
#define SVD_WINDOW_SLOTS 97u /* 24 h of slots, and the current one */

struct svd_window {
    uint64_t head;                    /* slot number (time / SLOT_MS) of the newest slot */
    uint64_t total;                   /* sum of count[] */
    uint32_t count[SVD_WINDOW_SLOTS]; /* ring, indexed by slot number % SLOTS */
};

/* Empty (now_ms: the clock the window is used with). */
void svd_window_reset(struct svd_window *w, uint64_t now_ms);

/* Events in the window at now_ms (at least the last 24 hours). */
uint64_t svd_window_count(struct svd_window *w, uint64_t now_ms);

/* 1 when n more events at now_ms keep the window at or under limit. */
int svd_window_fits(struct svd_window *w, uint64_t now_ms, uint64_t n, uint64_t limit);

/* Count n events at now_ms. */
void svd_window_add(struct svd_window *w, uint64_t now_ms, uint32_t n);

#endif /* SVD_WINDOW_H */
