/*
 * svd_window.c - events in the last 24 hours, by 15-minute slots (see
 * svd_window.h).
 */
#include "config.h"

#include <string.h>

#include "svd_window.h"

void
svd_window_reset(struct svd_window *w, uint64_t now_ms)
{
    memset(w, 0, sizeof(*w));
    w->head = now_ms / SVD_WINDOW_SLOT_MS;
}

/* Move the window to now: slots that fell out are emptied. A clock that
 * went back (it never should: the owner uses a monotonic one) changes
 * nothing. */
static void
advance(struct svd_window *w, uint64_t now_ms)
{
    uint64_t slot = now_ms / SVD_WINDOW_SLOT_MS;

    if (slot <= w->head)
        return;
    if (slot - w->head >= SVD_WINDOW_SLOTS) {
        memset(w->count, 0, sizeof(w->count));
        w->total = 0;
    } else {
        for (uint64_t s = w->head + 1; s <= slot; s++) {
            uint32_t *c = &w->count[s % SVD_WINDOW_SLOTS];
            w->total -= *c;
            *c = 0;
        }
    }
    w->head = slot;
}

uint64_t
svd_window_count(struct svd_window *w, uint64_t now_ms)
{
    advance(w, now_ms);
    return w->total;
}

int
svd_window_fits(struct svd_window *w, uint64_t now_ms, uint64_t n, uint64_t limit)
{
    return svd_window_count(w, now_ms) + n <= limit;
}

void
svd_window_add(struct svd_window *w, uint64_t now_ms, uint32_t n)
{
    uint32_t *c, add;

    advance(w, now_ms);
    c = &w->count[w->head % SVD_WINDOW_SLOTS];
    add = UINT32_MAX - *c < n ? UINT32_MAX - *c : n;
    *c += add;
    w->total += add;
}
