/*
 * test_buf.c - unit tests for sv_buf: byte order, growth, the hard cap, the
 * sticky failure flag and the handling of secret buffers.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sv_buf.h"
#include "sv_secret.h"

static int secure_heap; /* 1 when the secure heap could be set up */

static int
all_zero(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] != 0)
            return 0;
    }
    return 1;
}

START_TEST(test_init_empty)
{
    sv_buf b;

    sv_buf_init(&b, 0, 0);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_int_eq(b.failed, 0);
    ck_assert_int_eq(sv_buf_status(&b), SV_OK);
    sv_buf_free(&b); /* freeing an empty buffer is fine */
    sv_buf_free(&b);
    sv_buf_free(NULL);
}
END_TEST

START_TEST(test_put_big_endian)
{
    static const uint8_t want[] = {
        0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef,
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 'x', 'y'};
    sv_buf b;

    sv_buf_init(&b, 0, 0);
    sv_buf_put_u8(&b, 0xab);
    sv_buf_put_u16(&b, 0x1234);
    sv_buf_put_u32(&b, 0xdeadbeefu);
    sv_buf_put_u64(&b, UINT64_C(0x0123456789abcdef));
    sv_buf_put(&b, "xy", 2);
    sv_buf_put(&b, NULL, 0); /* nothing to add: not a failure */
    ck_assert_int_eq(sv_buf_status(&b), SV_OK);
    ck_assert_uint_eq(b.len, sizeof(want));
    ck_assert_mem_eq(b.data, want, sizeof(want));
    sv_buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(test_growth_keeps_content)
{
    sv_buf b;
    size_t i;

    sv_buf_init(&b, _i, 0);
    for (i = 0; i < 100000; i++)
        sv_buf_put_u8(&b, (uint8_t)(i * 13));
    ck_assert_int_eq(sv_buf_status(&b), SV_OK);
    ck_assert_uint_eq(b.len, 100000);
    ck_assert_uint_ge(b.cap, b.len);
    for (i = 0; i < 100000; i++)
        ck_assert_uint_eq(b.data[i], (uint8_t)(i * 13));
    sv_buf_free(&b);
}
END_TEST

START_TEST(test_put_from_self)
{
    sv_buf b;

    sv_buf_init(&b, _i, 0);
    sv_buf_put(&b, "abcdefgh", 8);
    /* appending our own bytes across a reallocation */
    while (b.len < 4096)
        sv_buf_put(&b, b.data, b.len);
    ck_assert_int_eq(sv_buf_status(&b), SV_OK);
    ck_assert_uint_eq(b.len, 4096);
    ck_assert_mem_eq(b.data + 4088, "abcdefgh", 8);
    sv_buf_free(&b);
}
END_TEST

START_TEST(test_max_and_sticky_failure)
{
    sv_buf b;

    sv_buf_init(&b, _i, 10);
    sv_buf_put(&b, "0123456789", 10); /* exactly max */
    ck_assert_int_eq(sv_buf_status(&b), SV_OK);
    ck_assert_uint_eq(b.len, 10);
    ck_assert_uint_le(b.cap, 10);
    sv_buf_put_u8(&b, 'x');
    ck_assert_int_eq(sv_buf_status(&b), SV_ERR_WIRE_TOO_LARGE);
    ck_assert_int_ne(b.failed, 0);
    ck_assert_uint_eq(b.len, 10);
    /* sticky: nothing more is appended, not even what would fit */
    sv_buf_reset(&b);
    ck_assert_int_eq(sv_buf_status(&b), SV_OK);
    sv_buf_put(&b, "abc", 3);
    ck_assert_uint_eq(b.len, 3);
    sv_buf_put(&b, "0123456789", 10);
    ck_assert_int_eq(sv_buf_status(&b), SV_ERR_WIRE_TOO_LARGE);
    sv_buf_put_u8(&b, 'z');
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(sv_buf_reserve(&b, 1), SV_ERR_WIRE_TOO_LARGE);
    ck_assert_mem_eq(b.data, "abc", 3);
    sv_buf_free(&b);
}
END_TEST

START_TEST(test_reserve)
{
    sv_buf b;
    uint8_t *p;

    sv_buf_init(&b, _i, 1000);
    ck_assert_int_eq(sv_buf_reserve(&b, 1001), SV_ERR_WIRE_TOO_LARGE);
    /* a refused reserve reports but does not poison the buffer */
    ck_assert_int_eq(sv_buf_status(&b), SV_OK);
    ck_assert_int_eq(sv_buf_reserve(&b, 700), SV_OK);
    ck_assert_uint_ge(b.cap, 700);
    p = b.data;
    sv_buf_put(&b, "hello", 5);
    ck_assert_ptr_eq(b.data, p); /* reserved room: no reallocation */
    ck_assert_int_eq(sv_buf_reserve(&b, 995), SV_OK);
    ck_assert_int_eq(sv_buf_reserve(&b, 996), SV_ERR_WIRE_TOO_LARGE);
    ck_assert_int_eq(sv_buf_reserve(&b, (size_t)-1), SV_ERR_WIRE_TOO_LARGE);
    sv_buf_free(&b);
}
END_TEST

START_TEST(test_default_max)
{
    sv_buf b;

    sv_buf_init(&b, 0, 0);
    ck_assert_int_eq(sv_buf_reserve(&b, SV_BUF_DEFAULT_MAX + 1), SV_ERR_WIRE_TOO_LARGE);
    ck_assert_int_eq(sv_buf_reserve(&b, (size_t)-1), SV_ERR_WIRE_TOO_LARGE);
    ck_assert_int_eq(sv_buf_status(&b), SV_OK);
    sv_buf_free(&b);
}
END_TEST

START_TEST(test_put_null_fails)
{
    sv_buf b;

    sv_buf_init(&b, 0, 0);
    sv_buf_put(&b, NULL, 1);
    ck_assert_int_eq(sv_buf_status(&b), SV_ERR_INVAL);
    ck_assert_uint_eq(b.len, 0);
    sv_buf_free(&b);
}
END_TEST

START_TEST(test_reset_cleanses_secret)
{
    sv_buf b;
    uint8_t *p;
    size_t cap;

    sv_buf_init(&b, 1, 0);
    sv_buf_put(&b, "secret share bytes", 18);
    p = b.data;
    cap = b.cap;
    sv_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_eq(b.data, p); /* storage kept */
    ck_assert_uint_eq(b.cap, cap);
    ck_assert(all_zero(b.data, b.cap));
    sv_buf_free(&b);
}
END_TEST

/* With a secure heap, a secret buffer lives in it (a public one does not),
 * and the block a secret buffer leaves behind when it grows is cleansed.
 * The arena stays mapped after a free, so the old block can be inspected;
 * the allocator's free-list links may occupy its first bytes. */
START_TEST(test_secret_storage)
{
    sv_buf s, p;
    uint8_t *old;
    size_t oldcap;

    if (!secure_heap)
        return; /* the heap cannot be locked here: nothing to observe */
    sv_buf_init(&s, 1, 0);
    sv_buf_init(&p, 0, 0);
    sv_buf_put(&s, "k", 1);
    sv_buf_put(&p, "k", 1);
    ck_assert_int_eq(CRYPTO_secure_allocated(s.data), 1);
    ck_assert_int_eq(CRYPTO_secure_allocated(p.data), 0);

    sv_buf_reset(&s);
    while (s.len < s.cap)
        sv_buf_put_u8(&s, 0xa5);
    old = s.data;
    oldcap = s.cap;
    sv_buf_put_u8(&s, 0xa5); /* grow: new block, copy, cleanse old */
    ck_assert_int_eq(sv_buf_status(&s), SV_OK);
    ck_assert_ptr_ne(s.data, old);
    ck_assert_int_eq(CRYPTO_secure_allocated(s.data), 1);
    ck_assert(all_zero(old + 32, oldcap - 32));
    ck_assert_uint_eq(s.data[oldcap], 0xa5);
    sv_buf_free(&s);
    sv_buf_free(&p);
    ck_assert_uint_eq(CRYPTO_secure_used(), 0);
}
END_TEST

static Suite *
buf_suite(void)
{
    Suite *s = suite_create("sv_buf");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_init_empty);
    tcase_add_test(tc, test_put_big_endian);
    tcase_add_loop_test(tc, test_growth_keeps_content, 0, 2);
    tcase_add_loop_test(tc, test_put_from_self, 0, 2);
    tcase_add_loop_test(tc, test_max_and_sticky_failure, 0, 2);
    tcase_add_loop_test(tc, test_reserve, 0, 2);
    tcase_add_test(tc, test_default_max);
    tcase_add_test(tc, test_put_null_fails);
    tcase_add_test(tc, test_reset_cleanses_secret);
    tcase_add_test(tc, test_secret_storage);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    secure_heap = sv_secret_init(1u << 20);
    sr = srunner_create(buf_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
