/*
 * test_svd_limit.c - token buckets on a fake clock; the limiter's admit,
 * busy, trip, pressure, daily budget, lock-down and unlock paths
 * (non-blocking ones).
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svd_conf.h"
#include "svd_limit.h"
#include "svd_window.h"

static uint64_t fake_now;

static uint64_t
fake_clock(void)
{
    return fake_now;
}

/* The pressure now (decrypts that found no token, drained), as status
 * reports it. */
static unsigned
pressure(struct svd_limiter *l)
{
    struct svd_limit_status st;

    ck_assert_int_eq(svd_limiter_status(l, &st, NULL), 0);
    return st.pressure;
}

START_TEST(bucket)
{
    struct svd_rate rate = { 1000, 3 };
    struct svd_bucket b;

    svd_bucket_fill(&b, &rate, 0);
    ck_assert(svd_bucket_take(&b, &rate, 0));
    ck_assert(svd_bucket_take(&b, &rate, 0));
    ck_assert(svd_bucket_take(&b, &rate, 0));
    ck_assert(!svd_bucket_take(&b, &rate, 10));
    ck_assert_uint_eq(svd_bucket_wait_ms(&b, &rate, 10), 990);
    ck_assert(!svd_bucket_take(&b, &rate, 999));
    ck_assert(svd_bucket_take(&b, &rate, 1000));
    ck_assert(!svd_bucket_take(&b, &rate, 1500));
    /* a long pause refills to the burst, never beyond */
    ck_assert(svd_bucket_take(&b, &rate, 100000));
    ck_assert(svd_bucket_take(&b, &rate, 100000));
    ck_assert(svd_bucket_take(&b, &rate, 100000));
    ck_assert(!svd_bucket_take(&b, &rate, 100000));
    /* fractions are kept: 2.5 intervals give 2 tokens and half an interval */
    ck_assert(svd_bucket_ready(&b, &rate, 102500));
    ck_assert(svd_bucket_take(&b, &rate, 102500));
    ck_assert(svd_bucket_take(&b, &rate, 102500));
    ck_assert(!svd_bucket_take(&b, &rate, 102500));
    ck_assert_uint_eq(svd_bucket_wait_ms(&b, &rate, 102500), 500);
}
END_TEST

START_TEST(bucket_unlimited)
{
    struct svd_rate rate = { 0, 1 };
    struct svd_bucket b;

    svd_bucket_fill(&b, &rate, 0);
    for (int i = 0; i < 1000; i++)
        ck_assert(svd_bucket_take(&b, &rate, 0));
    ck_assert_uint_eq(svd_bucket_wait_ms(&b, &rate, 0), 0);
}
END_TEST

static struct svd_conf *
conf(uint32_t gi, uint32_t gb, uint32_t ai, uint32_t ab, unsigned qmax, unsigned thr)
{
    struct svd_conf *c = calloc(1, sizeof(*c));

    c->magic = SVD_CONF_MAGIC;
    c->global.interval_ms = gi;
    c->global.burst = gb;
    c->actor.interval_ms = ai;
    c->actor.burst = ab;
    c->queue_max = qmax;
    c->lockdown_threshold = thr;
    c->queue_max_wait_ms = 60000;
    c->max_actors = 4;
    return c;
}

START_TEST(admit_actor_and_global)
{
    struct svd_conf *c = conf(1000, 3, 1000, 1, 0, 0);
    struct svd_limiter *l;
    uint32_t retry;

    fake_now = 5000;
    l = svd_limiter_new(c, 0, 0);
    svd_limiter_set_clock(l, fake_clock);
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_OK);
    /* a's own bucket is empty; the queue holds nothing: busy */
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_BUSY);
    ck_assert_uint_gt(retry, 0);
    ck_assert_int_eq(svd_limiter_admit(l, "b", 0, &retry), SVD_ADMIT_OK);
    ck_assert_int_eq(svd_limiter_admit(l, "c", 0, &retry), SVD_ADMIT_OK);
    /* the global bucket is empty now */
    ck_assert_int_eq(svd_limiter_admit(l, "d", 0, &retry), SVD_ADMIT_BUSY);
    fake_now += 1000;
    ck_assert_int_eq(svd_limiter_admit(l, "d", 0, &retry), SVD_ADMIT_OK);
    /* more actors than max_actors: full buckets are forgotten */
    fake_now += 100000;
    for (int i = 0; i < 10; i++) {
        char name[8];
        snprintf(name, sizeof(name), "x%d", i);
        ck_assert_int_eq(svd_limiter_admit(l, name, 0, &retry), i < 3 ? SVD_ADMIT_OK
                         : SVD_ADMIT_BUSY);
    }
    svd_limiter_free(l);
    free(c);
}
END_TEST

START_TEST(timeout_without_wait)
{
    struct svd_conf *c = conf(1000, 1, 0, 1, 4, 0);
    struct svd_limiter *l;
    uint32_t retry;

    fake_now = 0;
    l = svd_limiter_new(c, 0, 0);
    svd_limiter_set_clock(l, fake_clock);
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_OK);
    /* may queue, but wait_ms 0: out at once */
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_TIMEOUT);
    ck_assert_uint_eq(svd_limiter_queue_len(l), 0);
    svd_limiter_free(l);
    free(c);
}
END_TEST

START_TEST(lockdown_unlock)
{
    struct svd_conf *c = conf(0, 1, 0, 1, 0, 0);
    struct svd_limiter *l;
    uint64_t since = 0;
    uint32_t retry;

    l = svd_limiter_new(c, 1, 1234);
    ck_assert(svd_limiter_locked(l, &since));
    ck_assert_uint_eq(since, 1234);
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_LOCKED);
    ck_assert(svd_limiter_unlock(l));
    ck_assert(!svd_limiter_unlock(l));
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_OK);
    ck_assert(svd_limiter_lockdown(l, 99));
    ck_assert(!svd_limiter_lockdown(l, 100));
    ck_assert(svd_limiter_locked(l, &since));
    ck_assert_uint_eq(since, 99);
    svd_limiter_close(l);
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_CLOSING);
    svd_limiter_free(l);
    free(c);
}
END_TEST

START_TEST(trip_with_threshold_zero_queue)
{
    /* threshold 1 with a queue of 1: the first request that cannot run at
     * once while one waits trips; with nothing waiting it may queue */
    struct svd_conf *c = conf(1000, 1, 0, 1, 1, 1);
    struct svd_limiter *l;
    uint32_t retry;

    fake_now = 0;
    l = svd_limiter_new(c, 0, 0);
    svd_limiter_set_clock(l, fake_clock);
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_OK);
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_TIMEOUT);
    ck_assert(!svd_limiter_locked(l, NULL));
    svd_limiter_free(l);
    free(c);
}
END_TEST

/* A client that never waits (wait_ms 0) is refused at once, and each
 * refusal is pressure: past the threshold the next one trips. */
START_TEST(pressure_without_waiting_trips)
{
    struct svd_conf *c = conf(1000, 1, 0, 1, 4, 3);
    struct svd_limiter *l;
    uint32_t retry;

    fake_now = 0;
    l = svd_limiter_new(c, 0, 0);
    svd_limiter_set_clock(l, fake_clock);
    ck_assert_int_eq(svd_limiter_admit(l, "m", 0, &retry), SVD_ADMIT_OK);
    for (int i = 0; i < 3; i++) {
        fake_now += 50;
        ck_assert_int_eq(svd_limiter_admit(l, "m", 0, &retry), SVD_ADMIT_TIMEOUT);
        ck_assert_uint_eq(pressure(l), (unsigned)i + 1);
    }
    fake_now += 50;
    ck_assert_int_eq(svd_limiter_admit(l, "m", 0, &retry), SVD_ADMIT_TRIPPED);
    ck_assert_str_eq(svd_limiter_trip_why(l), "decrypt-pressure");
    ck_assert(svd_limiter_locked(l, NULL));
    ck_assert_int_eq(svd_limiter_admit(l, "other", 0, &retry), SVD_ADMIT_LOCKED);
    /* unlock clears the pressure */
    ck_assert(svd_limiter_unlock(l));
    ck_assert_uint_eq(pressure(l), 0);
    svd_limiter_free(l);
    free(c);
}
END_TEST

/* Pressure drains at the rate: a client paced at the rate never trips, nor
 * does one that is refused now and then; a burst beyond it does. */
START_TEST(pressure_drains_at_the_rate)
{
    struct svd_conf *c = conf(1000, 1, 0, 1, 4, 3);
    struct svd_limiter *l;
    uint32_t retry;

    fake_now = 0;
    l = svd_limiter_new(c, 0, 0);
    svd_limiter_set_clock(l, fake_clock);
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(svd_limiter_admit(l, "p", 0, &retry), SVD_ADMIT_OK);
        fake_now += 1000;
    }
    ck_assert_uint_eq(pressure(l), 0);
    /* two clicks a second: one served, one refused, each second; the
     * refusals drain as fast as they come */
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(svd_limiter_admit(l, "p", 0, &retry), SVD_ADMIT_OK);
        ck_assert_int_eq(svd_limiter_admit(l, "p", 0, &retry), SVD_ADMIT_TIMEOUT);
        fake_now += 1000;
    }
    ck_assert(!svd_limiter_locked(l, NULL));
    ck_assert_uint_le(pressure(l), 1);
    /* three refused within one interval, then the fourth trips */
    fake_now += 5000;
    ck_assert_int_eq(svd_limiter_admit(l, "p", 0, &retry), SVD_ADMIT_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(svd_limiter_admit(l, "p", 0, &retry), SVD_ADMIT_TIMEOUT);
    ck_assert_int_eq(svd_limiter_admit(l, "p", 0, &retry), SVD_ADMIT_TRIPPED);
    svd_limiter_free(l);
    free(c);
}
END_TEST

/* Daily budgets: a spent budget trips the lock-down (global, or the
 * actor's), even with the rates unlimited; spent decrypts come back only
 * when they are 24 hours old (and at most 15 minutes more); unlock refills
 * it. */
START_TEST(daily_budgets_trip)
{
    struct svd_conf *c = conf(0, 1, 0, 1, 4, 3);
    struct svd_limiter *l;
    uint32_t retry;

    c->budget_global = 4;
    c->budget_actor = 2;
    c->max_actors = 16;
    fake_now = 0;
    l = svd_limiter_new(c, 0, 0);
    svd_limiter_set_clock(l, fake_clock);
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_OK);
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_OK);
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_TRIPPED);
    ck_assert_str_eq(svd_limiter_trip_why(l), "actor-daily-budget");
    ck_assert(svd_limiter_unlock(l));
    /* unlock refilled a's budget: two more, then the global budget (4,
     * refilled too) has 2 left for b */
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_OK);
    ck_assert_int_eq(svd_limiter_admit(l, "b", 0, &retry), SVD_ADMIT_OK);
    ck_assert_int_eq(svd_limiter_admit(l, "c", 0, &retry), SVD_ADMIT_OK);
    ck_assert_int_eq(svd_limiter_admit(l, "d", 0, &retry), SVD_ADMIT_OK);
    ck_assert_int_eq(svd_limiter_admit(l, "e", 0, &retry), SVD_ADMIT_TRIPPED);
    ck_assert_str_eq(svd_limiter_trip_why(l), "daily-budget");
    ck_assert(svd_limiter_unlock(l));
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof(name), "x%d", i);
        ck_assert_int_eq(svd_limiter_admit(l, name, 0, &retry), SVD_ADMIT_OK);
    }
    /* not a quarter of a day later (a bucket refilled evenly would have
     * given one back), nor 24 hours later: a day's budget is spent for the
     * whole day */
    fake_now += 86400000 / 4;
    ck_assert_int_eq(svd_limiter_admit(l, "y", 0, &retry), SVD_ADMIT_TRIPPED);
    ck_assert(svd_limiter_unlock(l));
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof(name), "w%d", i);
        ck_assert_int_eq(svd_limiter_admit(l, name, 0, &retry), SVD_ADMIT_OK);
    }
    fake_now += 86400000 - 1;
    ck_assert_int_eq(svd_limiter_admit(l, "y", 0, &retry), SVD_ADMIT_TRIPPED);
    svd_limiter_free(l);
    free(c);
}
END_TEST

/* The window: never more than N in any 24 hours, whatever the timing; and
 * not much stingier than that (events N per 24 h 15 min all pass). */
START_TEST(budget_window_any_24_hours)
{
    enum { N = 50, EVENTS = 20000 };
    static uint64_t admitted[EVENTS];
    struct svd_window w;
    uint64_t t = 0, seed = 12345;
    unsigned na = 0;

    svd_window_reset(&w, 0);
    for (int i = 0; i < EVENTS; i++) {
        /* irregular arrivals: bursts and gaps, 0 to ~2 hours apart */
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        t += (seed >> 33) % 3 == 0 ? (seed >> 20) % 7200000 : (seed >> 40) % 1000;
        if (svd_window_fits(&w, t, 1, N)) {
            svd_window_add(&w, t, 1);
            admitted[na++] = t;
        }
    }
    ck_assert_uint_gt(na, 10 * N);
    /* any 24 hours: admitted[i] .. admitted[i] + 24 h holds at most N */
    for (unsigned i = 0, j = 0; i < na; i++) {
        while (j < na && admitted[j] < admitted[i] + 86400000)
            j++;
        ck_assert_msg(j - i <= N, "%u events in 24 hours from %llu", j - i,
                      (unsigned long long)admitted[i]);
    }
    /* evenly spaced at N per 24 h 15 min: every one admitted */
    svd_window_reset(&w, 0);
    for (uint64_t k = 0; k < 10 * N; k++) {
        uint64_t at = k * ((86400000ull + SVD_WINDOW_SLOT_MS) / N) + SVD_WINDOW_SLOT_MS;
        ck_assert_msg(svd_window_fits(&w, at, 1, N), "event %llu refused",
                      (unsigned long long)k);
        svd_window_add(&w, at, 1);
    }
    /* a full window empties once its oldest slot is 24 h 15 min old */
    svd_window_reset(&w, 0);
    svd_window_add(&w, 1000, N);
    ck_assert(!svd_window_fits(&w, 86400000, 1, N));
    ck_assert(svd_window_fits(&w, 86400000 + SVD_WINDOW_SLOT_MS, 1, N));
    ck_assert_uint_eq(svd_window_count(&w, 10 * 86400000ull), 0);
}
END_TEST

/* The budget of retired shares: spent by n at a time, trips the lock-down
 * when n more would not fit (nothing spent then), refilled by unlock. */
START_TEST(retire_budget_trips)
{
    struct svd_conf *c = conf(0, 1, 0, 1, 4, 3);
    struct svd_limiter *l;

    c->retire_budget = 10;
    fake_now = 0;
    l = svd_limiter_new(c, 0, 0);
    svd_limiter_set_clock(l, fake_clock);
    ck_assert_int_eq(svd_limiter_retire(l, 6), SVD_ADMIT_OK);
    ck_assert_int_eq(svd_limiter_retire(l, 4), SVD_ADMIT_OK);
    ck_assert_uint_eq(svd_limiter_retired_today(l), 10);
    ck_assert_int_eq(svd_limiter_retire(l, 1), SVD_ADMIT_TRIPPED);
    ck_assert(svd_limiter_locked(l, NULL));
    ck_assert_str_eq(svd_limiter_trip_why(l), "retire-budget");
    /* still spent while locked down, and 23 hours later; refused without
     * another trip (nothing more to record) */
    fake_now += 23ull * 3600000;
    ck_assert_int_eq(svd_limiter_retire(l, 1), SVD_ADMIT_LOCKED);
    ck_assert_uint_eq(svd_limiter_retired_today(l), 10);
    ck_assert(svd_limiter_unlock(l));
    ck_assert_uint_eq(svd_limiter_retired_today(l), 0);
    ck_assert_int_eq(svd_limiter_retire(l, 10), SVD_ADMIT_OK);
    svd_limiter_free(l);
    c->retire_budget = 0; /* no budget */
    l = svd_limiter_new(c, 0, 0);
    ck_assert_int_eq(svd_limiter_retire(l, 1000000), SVD_ADMIT_OK);
    svd_limiter_free(l);
    free(c);
}
END_TEST

/* A backend that answers what the test says and records the modes it was
 * asked in: the limiter's part of the bargain with a shared store. */
struct fake_backend {
    struct svd_limit_backend base;
    enum svd_take answer;
    enum svd_take_mode modes[8];
    unsigned calls, resets;
    unsigned by_mode[3];        /* calls per mode */
};

static enum svd_take
fake_take(struct svd_limit_backend *b, const char *actor, enum svd_take_mode mode,
          uint64_t now, uint64_t *wait, const char **why)
{
    struct fake_backend *f = (struct fake_backend *)b;

    (void)actor;
    (void)now;
    if (f->calls < 8)
        f->modes[f->calls] = mode;
    f->calls++;
    f->by_mode[mode]++;
    *wait = 0;
    *why = "decrypt-pressure";
    return __atomic_load_n(&f->answer, __ATOMIC_SEQ_CST);
}

static int
fake_status(struct svd_limit_backend *b, uint64_t now, struct svd_limit_status *st)
{
    (void)b;
    (void)now;
    memset(st, 0, sizeof(*st));
    st->pressure = 7;
    return 0;
}

static int
fake_reset(struct svd_limit_backend *b, uint64_t now)
{
    (void)now;
    ((struct fake_backend *)b)->resets++;
    return 0;
}

static void
fake_restart(struct svd_limit_backend *b, uint64_t now)
{
    (void)b;
    (void)now;
}

static void
fake_free(struct svd_limit_backend *b)
{
    (void)b; /* on the test's stack */
}

static const struct svd_limit_ops fake_ops = {
    "fake", fake_take, fake_status, fake_reset, fake_restart, fake_free
};

#define AZ_T(x) ck_assert_int_eq((x), 0)

struct waiting_admit {
    struct svd_limiter *l;
    enum svd_admit res;
};

static void *
admit_thread(void *arg)
{
    struct waiting_admit *wa = arg;
    uint32_t retry;

    wa->res = svd_limiter_admit(wa->l, "a", 60000, &retry);
    return NULL;
}

START_TEST(backend_answers)
{
    struct svd_conf *c = conf(1000, 1, 0, 1, 4, 4);
    struct fake_backend f;
    struct svd_limiter *l;
    struct svd_limit_status st;
    const char *name = NULL;
    uint32_t retry;

    memset(&f, 0, sizeof(f));
    f.base.ops = &fake_ops;
    l = svd_limiter_new_with(c, &f.base, 0, 0);
    ck_assert_ptr_nonnull(l);
    f.answer = SVD_TAKE_OK;
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_OK);
    ck_assert_int_eq(f.modes[0], SVD_TAKE_FIRST);
    /* not yet: queued; wait_ms 0 runs out before the head asks again */
    f.answer = SVD_TAKE_WAIT;
    f.calls = 0;
    ck_assert_int_eq(svd_limiter_admit(l, "a", 0, &retry), SVD_ADMIT_TIMEOUT);
    ck_assert_uint_eq(f.calls, 1);
    /* a decrypt behind a waiting one only counts (pressure); the waiting
     * one, at the head, asks again once it has waited, and is admitted */
    {
        pthread_t t;
        struct waiting_admit wa = { l, SVD_ADMIT_CLOSING };

        f.calls = 0;
        memset(f.by_mode, 0, sizeof(f.by_mode));
        AZ_T(pthread_create(&t, NULL, admit_thread, &wa));
        while (svd_limiter_queue_len(l) == 0)
            usleep(1000);
        /* the limiter's mutex orders these calls: by_mode is read under it */
        ck_assert_int_eq(svd_limiter_admit(l, "b", 0, &retry), SVD_ADMIT_TIMEOUT);
        __atomic_store_n(&f.answer, SVD_TAKE_OK, __ATOMIC_SEQ_CST);
        AZ_T(pthread_join(t, NULL));
        ck_assert_int_eq(wa.res, SVD_ADMIT_OK);
        ck_assert_int_eq(f.modes[0], SVD_TAKE_FIRST);
        ck_assert_uint_eq(f.by_mode[SVD_TAKE_FIRST], 1);
        ck_assert_uint_eq(f.by_mode[SVD_TAKE_QUEUED], 1);
        ck_assert_uint_ge(f.by_mode[SVD_TAKE_HEAD], 1);
    }
    /* the store fails: refused (fail closed), nothing queued, not locked */
    f.answer = SVD_TAKE_ERROR;
    ck_assert_int_eq(svd_limiter_admit(l, "a", 1000, &retry), SVD_ADMIT_STORE);
    ck_assert_uint_eq(svd_limiter_queue_len(l), 0);
    ck_assert(!svd_limiter_locked(l, NULL));
    /* the store is locked down already: refused, no trip of its own */
    f.answer = SVD_TAKE_LOCKED;
    ck_assert_int_eq(svd_limiter_admit(l, "a", 1000, &retry), SVD_ADMIT_LOCKED);
    ck_assert(!svd_limiter_locked(l, NULL));
    /* the store says trip: locked down here, with its reason */
    f.answer = SVD_TAKE_TRIP;
    ck_assert_int_eq(svd_limiter_admit(l, "a", 1000, &retry), SVD_ADMIT_TRIPPED);
    ck_assert(svd_limiter_locked(l, NULL));
    ck_assert_str_eq(svd_limiter_trip_why(l), "decrypt-pressure");
    ck_assert(svd_limiter_unlock(l));
    ck_assert_uint_eq(f.resets, 1);
    ck_assert_int_eq(svd_limiter_status(l, &st, &name), 0);
    ck_assert_str_eq(name, "fake");
    ck_assert_uint_eq(pressure(l), 7);
    svd_limiter_free(l);
    free(c);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("svd_limit");
    TCase *tc = tcase_create("limit");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, bucket);
    tcase_add_test(tc, bucket_unlimited);
    tcase_add_test(tc, admit_actor_and_global);
    tcase_add_test(tc, timeout_without_wait);
    tcase_add_test(tc, lockdown_unlock);
    tcase_add_test(tc, trip_with_threshold_zero_queue);
    tcase_add_test(tc, pressure_without_waiting_trips);
    tcase_add_test(tc, pressure_drains_at_the_rate);
    tcase_add_test(tc, daily_budgets_trip);
    tcase_add_test(tc, budget_window_any_24_hours);
    tcase_add_test(tc, retire_budget_trips);
    tcase_add_test(tc, backend_answers);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
