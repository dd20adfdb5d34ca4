/*
 * test_base.c - status strings, the logging callback, secret memory, hex
 * (lib/sv_err.c, lib/sv_log.c, lib/sv_secret.c, lib/sv_hex.c).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "sv_err.h"
#include "sv_hex.h"
#include "sv_log.h"
#include "sv_secret.h"
#include "crypto_util.h"

static const sv_status all_codes[] = {
    SV_OK, SV_ERR_INTERNAL, SV_ERR_NOMEM, SV_ERR_INVAL, SV_ERR_OPEN, SV_ERR_KEY_MISMATCH,
    SV_ERR_BAD_KEY, SV_ERR_KEY_IO, SV_ERR_KEY_FORMAT, SV_ERR_KEY_TYPE, SV_ERR_KEY_PASSPHRASE,
    SV_ERR_KEY_NEED_PASS, SV_ERR_KEY_TOO_LARGE, SV_ERR_KEY_KDF, SV_ERR_WIRE_TRUNCATED,
    SV_ERR_WIRE_TOO_LARGE,
    SV_ERR_WIRE_VERSION, SV_ERR_WIRE_TYPE, SV_ERR_WIRE_MALFORMED, SV_ERR_WIRE_TRAILING,
    SV_ERR_WIRE_UNSUPPORTED, SV_ERR_NET_RESOLVE, SV_ERR_NET_CONNECT, SV_ERR_NET_TIMEOUT,
    SV_ERR_NET_IO, SV_ERR_TLS_SETUP, SV_ERR_TLS_HANDSHAKE, SV_ERR_TLS_CLOSED
};
#define N_CODES (sizeof(all_codes) / sizeof(all_codes[0]))

/* Every code has its own text; unknown values get a generic one. */
START_TEST(test_strerror_distinct)
{
    size_t i, j;
    const char *unknown = sv_strerror(SV_ERR__MAX);

    ck_assert_ptr_nonnull(unknown);
    for (i = 0; i < N_CODES; i++) {
        const char *a = sv_strerror(all_codes[i]);

        ck_assert_ptr_nonnull(a);
        ck_assert_uint_gt(strlen(a), 0);
        ck_assert_str_ne(a, unknown);
        for (j = i + 1; j < N_CODES; j++)
            ck_assert_str_ne(a, sv_strerror(all_codes[j]));
    }
    ck_assert_str_eq(sv_strerror((sv_status)9999), unknown);
    ck_assert_str_eq(sv_strerror((sv_status)-1), unknown);
}
END_TEST

/* ---- logging ---------------------------------------------------------------- */

static char last_msg[2048];
static int last_level = -1;
static int calls;
static void *last_ctx;

static void
capture(void *ctx, sv_log_level level, const char *msg)
{
    last_ctx = ctx;
    last_level = (int)level;
    calls++;
    snprintf(last_msg, sizeof(last_msg), "%s", msg);
}

START_TEST(test_log_callback)
{
    char big[3000];
    int token = 0;

    calls = 0;
    sv_log(SV_LOG_ERR, "dropped %d", 1); /* no callback yet: dropped */
    ck_assert_int_eq(calls, 0);

    sv_log_set(capture, &token);
    sv_log(SV_LOG_WARN, "value %d and %s", 42, "text");
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(last_level, SV_LOG_WARN);
    ck_assert_ptr_eq(last_ctx, &token);
    ck_assert_str_eq(last_msg, "value 42 and text");

    /* long messages are truncated at 1023 bytes */
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sv_log(SV_LOG_INFO, "%s", big);
    ck_assert_uint_eq(strlen(last_msg), 1023);

    sv_log_set(NULL, NULL);
    sv_log(SV_LOG_ERR, "silenced");
    ck_assert_int_eq(calls, 2);
}
END_TEST

START_TEST(test_log_openssl_drains)
{
    EVP_MD *md;

    sv_log_set(capture, NULL);
    /* provoke a real OpenSSL error */
    md = EVP_MD_fetch(NULL, "NO-SUCH-DIGEST", NULL);
    ck_assert_ptr_null(md);
    ck_assert_uint_ne(ERR_peek_error(), 0);
    sv_log_openssl(SV_LOG_ERR, "fetch");
    ck_assert_uint_eq(ERR_peek_error(), 0);
    ck_assert_int_eq(last_level, SV_LOG_ERR);
    ck_assert_msg(strncmp(last_msg, "fetch: ", 7) == 0, "got %s", last_msg);
    ck_assert_msg(strstr(last_msg, "unsupported") != NULL || strstr(last_msg, "fetch") != NULL,
                  "got %s", last_msg);

    /* an empty queue still yields one line */
    sv_log_openssl(SV_LOG_WARN, "nothing");
    ck_assert_str_eq(last_msg, "nothing: no detail from OpenSSL");

    /* without a callback the queue is still drained */
    sv_log_set(NULL, NULL);
    md = EVP_MD_fetch(NULL, "NO-SUCH-DIGEST", NULL);
    ck_assert_ptr_null(md);
    sv_log_openssl(SV_LOG_ERR, "quiet");
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* ---- secret memory ------------------------------------------------------------ */

START_TEST(test_secret_heap)
{
    uint8_t *p;
    size_t i;

    /* size must be a power of two */
    ck_assert_int_eq(sv_secret_init(12345), CRYPTO_secure_malloc_initialized() ? 1 : 0);
    /* the heap may or may not be lockable here (RLIMIT_MEMLOCK); either
     * way allocation works and a second init is harmless */
    (void)sv_secret_init(1 << 16);
    ck_assert(CRYPTO_secure_malloc_initialized());
    ck_assert_int_eq(sv_secret_init(1 << 16), 1);

    p = sv_secret_alloc(100);
    ck_assert_ptr_nonnull(p);
    ck_assert(cu_all_zero(p, 100));
    ck_assert(CRYPTO_secure_allocated(p));
    for (i = 0; i < 100; i++)
        p[i] = (uint8_t)i;
    sv_secret_free(p, 100);
    sv_secret_free(NULL, 10);

    p = sv_secret_alloc(0);
    ck_assert_ptr_nonnull(p);
    sv_secret_free(p, 0);
}
END_TEST

START_TEST(test_secret_budget)
{
    /* the secure heap (64 KiB) serves at most its budget (half by
     * default); beyond it allocations come from the ordinary heap, so
     * OpenSSL's own secure allocations always find room */
    uint8_t *a, *b, *c, *ossl;

    (void)sv_secret_init(1 << 16);
    ck_assert(CRYPTO_secure_malloc_initialized());
    a = sv_secret_alloc(12 << 10);
    b = sv_secret_alloc(12 << 10);
    c = sv_secret_alloc(12 << 10);
    ck_assert(a != NULL && b != NULL && c != NULL);
    ck_assert(CRYPTO_secure_allocated(a));
    ck_assert(CRYPTO_secure_allocated(b));
    ck_assert(!CRYPTO_secure_allocated(c));
    ck_assert(cu_all_zero(c, 12 << 10));
    ossl = OPENSSL_secure_malloc(16 << 10);
    ck_assert_ptr_nonnull(ossl);
    ck_assert(CRYPTO_secure_allocated(ossl));
    OPENSSL_secure_free(ossl);
    sv_secret_free(c, 12 << 10);
    sv_secret_free(b, 12 << 10);
    sv_secret_free(a, 12 << 10);

    /* a host may give its buffers none of the heap */
    sv_secret_set_budget(0);
    a = sv_secret_alloc(64);
    ck_assert(a != NULL && !CRYPTO_secure_allocated(a));
    sv_secret_free(a, 64);
    sv_secret_set_budget(1 << 15);
}
END_TEST

START_TEST(test_secret_without_heap)
{
    /* before (or without) sv_secret_init, allocation falls back to the heap */
    uint8_t *p = sv_secret_alloc(64);

    ck_assert_ptr_nonnull(p);
    ck_assert(cu_all_zero(p, 64));
    memset(p, 0x5a, 64);
    sv_secret_free(p, 64);
}
END_TEST

START_TEST(test_cleanse_and_compare)
{
    uint8_t a[33], b[33];

    memset(a, 0x77, sizeof(a));
    sv_cleanse(a, sizeof(a));
    ck_assert(cu_all_zero(a, sizeof(a)));
    sv_cleanse(NULL, 5);

    memset(a, 1, sizeof(a));
    memset(b, 1, sizeof(b));
    ck_assert_int_eq(sv_memcmp_ct(a, b, sizeof(a)), 0);
    b[32] ^= 0x80;
    ck_assert_int_ne(sv_memcmp_ct(a, b, sizeof(a)), 0);
    b[32] ^= 0x80;
    b[0] ^= 1;
    ck_assert_int_ne(sv_memcmp_ct(a, b, sizeof(a)), 0);
    ck_assert_int_eq(sv_memcmp_ct(a, b, 0), 0);
}
END_TEST

START_TEST(test_mem_protect)
{
    static uint8_t buf[10000];
    int rc;

    ck_assert_int_eq(sv_mem_protect(buf, 0), 0);
    errno = 0;
    ck_assert_int_eq(sv_mem_protect(NULL, 10), -1);
    ck_assert_int_eq(errno, EINVAL);
    /* best effort: mlock may be refused by RLIMIT_MEMLOCK, but then errno
     * says so and the memory stays usable */
    errno = 0;
    rc = sv_mem_protect(buf + 100, 5000);
    ck_assert(rc == 0 || (rc == -1 && (errno == ENOMEM || errno == EPERM || errno == EAGAIN)));
    memset(buf, 1, sizeof(buf));
    ck_assert_uint_eq(buf[9999], 1);
}
END_TEST

/* Every byte value encodes to its two lowercase digits and back. */
START_TEST(test_hex_all_bytes)
{
    uint8_t in[256], back[256];
    char text[513], want[4];

    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    sv_hex_encode(in, sizeof(in), text);
    ck_assert_uint_eq(strlen(text), 512);
    for (int i = 0; i < 256; i++) {
        snprintf(want, sizeof(want), "%02x", i);
        ck_assert_msg(memcmp(text + 2 * i, want, 2) == 0, "byte %d: %.2s", i, text + 2 * i);
    }
    ck_assert_int_eq(sv_hex_decode(text, 512, back, sizeof(back)), SV_OK);
    ck_assert_mem_eq(in, back, sizeof(in));
    sv_hex_encode(in, 0, text);
    ck_assert_str_eq(text, "");
}
END_TEST

/* Either case decodes; anything else, and a wrong length, is refused and
 * leaves the output zeroed. */
START_TEST(test_hex_decode_strict)
{
    uint8_t out[4];
    char s[9];

    ck_assert_int_eq(sv_hex_decode("DEADbeef", 8, out, 4), SV_OK);
    ck_assert_uint_eq(out[0], 0xde);
    ck_assert_uint_eq(out[3], 0xef);
    for (int c = 0; c < 256; c++) {
        int valid = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        for (int pos = 0; pos < 8; pos += 7) {
            memcpy(s, "01234567", 9);
            s[pos] = (char)c;
            memset(out, 0x55, sizeof(out));
            ck_assert_int_eq(sv_hex_decode(s, 8, out, 4) == SV_OK, valid && c != 0);
            if (!(valid && c != 0))
                ck_assert(cu_all_zero(out, sizeof(out)));
        }
    }
    memset(out, 0x55, sizeof(out));
    ck_assert_int_eq(sv_hex_decode("0123456", 7, out, 4), SV_ERR_INVAL);
    ck_assert(cu_all_zero(out, sizeof(out)));
    ck_assert_int_eq(sv_hex_decode("0123456789", 10, out, 4), SV_ERR_INVAL);
    ck_assert_int_eq(sv_hex_decode(NULL, 8, out, 4), SV_ERR_INVAL);
}
END_TEST

static Suite *
base_suite(void)
{
    Suite *s = suite_create("base");
    TCase *tc = tcase_create("err");

    tcase_add_test(tc, test_strerror_distinct);
    suite_add_tcase(s, tc);
    tc = tcase_create("log");
    tcase_add_test(tc, test_log_callback);
    tcase_add_test(tc, test_log_openssl_drains);
    suite_add_tcase(s, tc);
    tc = tcase_create("secret");
    tcase_add_test(tc, test_secret_without_heap);
    tcase_add_test(tc, test_secret_heap);
    tcase_add_test(tc, test_secret_budget);
    tcase_add_test(tc, test_cleanse_and_compare);
    tcase_add_test(tc, test_mem_protect);
    suite_add_tcase(s, tc);
    tc = tcase_create("hex");
    tcase_add_test(tc, test_hex_all_bytes);
    tcase_add_test(tc, test_hex_decode_strict);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(base_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
