/*
 * svd_clock.c - monotonic and wall clocks.
 */
#include "config.h"

#include <time.h>

#include "svd_clock.h"

uint64_t
svd_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
svd_wall_s(void)
{
    return (uint64_t)time(NULL);
}
