/*
 * svd_house.h - the housekeeping thread.
 *
 * Once a second, apart from every request and from the control socket (so
 * a slow or hung store delays neither): retries a lock-down that could not
 * yet be recorded in the store, picks up a lock-down another daemon
 * recorded in a shared store, writes the refusal summaries, and purges one
 * batch of retired shares past retention.period (never while locked down).
 */
#ifndef SVD_HOUSE_H
#define SVD_HOUSE_H

#include "svd_app.h"

struct svd_house;

struct svd_house *svd_house_start(struct svd_app *app);

/* Stop the thread (after its current round). */
void svd_house_stop(struct svd_house *h);

#endif /* SVD_HOUSE_H */
