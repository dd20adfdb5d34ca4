/*
 * svd_clock.h - the daemon's two clocks.
 */
#ifndef SVD_CLOCK_H
#define SVD_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds (timeouts, rates, deadlines). */
uint64_t svd_now_ms(void);

/* Wall-clock unix seconds (what the store and the audit log record). */
uint64_t svd_wall_s(void);

#endif /* SVD_CLOCK_H */
