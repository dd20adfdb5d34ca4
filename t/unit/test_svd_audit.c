/*
 * test_svd_audit.c - the audit writer and verifier: chain, head, group
 * commit from several threads, and detection of each kind of tampering.
 */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svd_audit.h"
#include "svd_auditv.h"

static char dir[64], logp[128], headp[128];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/svd-audit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(logp, sizeof(logp), "%s/audit.log", dir);
    snprintf(headp, sizeof(headp), "%s/audit.log.head", dir);
}

static void
teardown(void)
{
    unlink(logp);
    unlink(headp);
    rmdir(dir);
}

static struct svd_audit *
open_ok(void)
{
    struct svd_audit *a = NULL;
    char err[512];

    ck_assert_msg(svd_audit_open(logp, headp, &a, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(svd_audit_start(a), 0);
    return a;
}

static void *
writer(void *arg)
{
    struct svd_audit *a = arg;

    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(svd_audit_event(a, 1, "event=test n=%d", i), 0);
    return NULL;
}

static char *
slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "r");
    char *b = malloc(1 << 20);

    ck_assert_ptr_nonnull(f);
    *n = fread(b, 1, 1 << 20, f);
    b[*n] = '\0';
    fclose(f);
    return b;
}

static void
spit(const char *p, const char *b, size_t n)
{
    FILE *f = fopen(p, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

START_TEST(chain_and_head)
{
    struct svd_audit *a = open_ok();
    struct svd_audit_result res;
    pthread_t t[4];
    uint64_t seq;
    uint8_t h[SVD_AUDIT_HASH_LEN];

    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, writer, a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(svd_audit_event(a, 1, "event=bad\nline evil=1"), 0);
    svd_audit_head(a, &seq, h);
    ck_assert_uint_eq(seq, 201);
    ck_assert_int_eq(svd_audit_verify_live(a, &res), 0);
    ck_assert_uint_eq(res.entries, 201);
    svd_audit_stop(a);
    svd_audit_close(a);
    ck_assert_int_eq(svd_audit_verify_files(logp, headp, &res), 0);
    ck_assert_uint_eq(res.last_seq, 201);
    ck_assert_uint_eq(res.head_seq, 201);
    ck_assert(memcmp(res.last_hash, h, sizeof(h)) == 0);
    {
        size_t n;
        char *b = slurp(logp, &n);
        ck_assert_ptr_nonnull(strstr(b, "event=bad?line evil=1")); /* one line */
        free(b);
    }
    /* reopen continues the chain */
    a = open_ok();
    ck_assert_int_eq(svd_audit_event(a, 1, "event=again"), 0);
    svd_audit_stop(a);
    ck_assert_int_eq(svd_audit_event(a, 1, "event=after-stop"), -1);
    svd_audit_close(a);
    ck_assert_int_eq(svd_audit_verify_files(logp, headp, &res), 0);
    ck_assert_uint_eq(res.entries, 202);
}
END_TEST

/* Rewrite the log with line i removed / lines i and i+1 swapped / line i
 * edited / cut after line i; then verify must fail. */
enum { DEL, SWAP, EDIT, CUT, TORN };

static void
tamper(int how, int i)
{
    size_t n, off = 0;
    char *b = slurp(logp, &n), *out = malloc(n + 16);
    char *ls[64];
    size_t lens[64];
    int k = 0, o = 0;

    for (char *p = b; p < b + n && k < 64;) {
        char *nl = memchr(p, '\n', (size_t)(b + n - p));
        ls[k] = p;
        lens[k] = (size_t)(nl - p) + 1;
        p = nl + 1;
        k++;
    }
    for (int j = 0; j < k; j++) {
        int src = j;
        if (how == DEL && j == i)
            continue;
        if (how == SWAP && j == i)
            src = i + 1;
        if (how == SWAP && j == i + 1)
            src = i;
        if (how == CUT && j > i)
            break;
        memcpy(out + off, ls[src], lens[src]);
        if (how == EDIT && j == i)
            out[off + lens[src] - 3] ^= 1;
        off += lens[src];
        o++;
    }
    if (how == TORN)
        off -= 5;
    spit(logp, out, off);
    free(out);
    free(b);
}

START_TEST(tampering)
{
    static const int hows[] = { DEL, SWAP, EDIT, CUT, TORN, EDIT };
    static const int at[] = { 3, 4, 5, 7, 0, 8 };

    for (size_t t = 0; t < sizeof(hows) / sizeof(hows[0]); t++) {
        struct svd_audit *a;
        struct svd_audit_result res;
        char err[512];

        unlink(logp);
        unlink(headp);
        a = open_ok();
        for (int i = 0; i < 9; i++)
            ck_assert_int_eq(svd_audit_event(a, 1, "event=e n=%d", i), 0);
        svd_audit_stop(a);
        svd_audit_close(a);
        ck_assert_int_eq(svd_audit_verify_files(logp, headp, &res), 0);
        tamper(hows[t], at[t]);
        ck_assert_msg(svd_audit_verify_files(logp, headp, &res) == -1, "case %zu passed", t);
        ck_assert(!res.ok);
        /* the daemon will not start on it either, except for a torn tail
         * past the head, which it repairs */
        a = NULL;
        if (hows[t] != TORN) {
            ck_assert_int_eq(svd_audit_open(logp, headp, &a, err, sizeof(err)), -1);
            ck_assert_ptr_nonnull(strstr(err, "does not verify"));
        }
    }
}
END_TEST

/* The log as the second record of a lock-down: the last lock-down entry
 * with no completed unlock after it means locked at the next open. */
START_TEST(lock_state_at_open)
{
    struct svd_audit *a = open_ok();
    struct svd_audit_result res;
    uint64_t since = 1;
    char big[SVD_AUDIT_EVENT_MAX + 2];

    ck_assert_int_eq(svd_audit_locked_at_open(a, &since), 0);
    ck_assert_int_eq(svd_audit_event(a, 1, "event=lockdown why=operator source=x since=1234 "
                                     "store=pending"), 0);
    /* an event longer than a line may be is refused whole, never cut */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(svd_audit_event(a, 1, "event=big v=%s", big), -1);
    svd_audit_stop(a);
    svd_audit_close(a);
    a = open_ok();
    ck_assert_int_eq(svd_audit_locked_at_open(a, &since), 1);
    ck_assert_uint_eq(since, 1234);
    /* a requested (not completed) unlock does not count */
    ck_assert_int_eq(svd_audit_event(a, 1, "event=unlock outcome=requested source=x"), 0);
    ck_assert_int_eq(svd_audit_event(a, 1, "event=store record=event=unlock"), 0);
    svd_audit_stop(a);
    svd_audit_close(a);
    a = open_ok();
    ck_assert_int_eq(svd_audit_locked_at_open(a, NULL), 1);
    ck_assert_int_eq(svd_audit_event(a, 1, "event=unlock outcome=ok source=x"), 0);
    svd_audit_stop(a);
    svd_audit_close(a);
    ck_assert_int_eq(svd_audit_verify_files(logp, headp, &res), 0);
    ck_assert_int_eq(res.lock_event, SVD_AUDIT_LOCK_UNLOCKED);
    a = open_ok();
    ck_assert_int_eq(svd_audit_locked_at_open(a, NULL), 0);
    svd_audit_stop(a);
    svd_audit_close(a);
}
END_TEST

START_TEST(head_missing_or_bad)
{
    struct svd_audit *a = open_ok();
    struct svd_audit_result res;
    uint64_t seq;
    uint8_t h[SVD_AUDIT_HASH_LEN];

    ck_assert_int_eq(svd_audit_event(a, 1, "event=x"), 0);
    svd_audit_stop(a);
    svd_audit_close(a);
    spit(headp, "", 0);
    ck_assert_int_eq(svd_audit_verify_files(logp, headp, &res), -1);
    ck_assert_ptr_nonnull(strstr(res.msg, "head file is empty"));
    spit(headp, "garbage\n", 8);
    ck_assert_int_eq(svd_audit_verify_files(logp, headp, &res), -1);
    ck_assert_int_eq(svd_audit_parse_head("x", 1, &seq, h), -1);
    /* without a head, only the chain is checked */
    ck_assert_int_eq(svd_audit_verify_files(logp, NULL, &res), 0);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("svd_audit");
    TCase *tc = tcase_create("audit");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, chain_and_head);
    tcase_add_test(tc, tampering);
    tcase_add_test(tc, head_missing_or_bad);
    tcase_add_test(tc, lock_state_at_open);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
