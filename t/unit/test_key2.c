/*
 * test_key2.c - X25519 key pairs and the key2 split (lib/sv_key2.c).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/err.h>

#include "sv_key2.h"
#include "crypto_util.h"

/* RFC 7748 6.1: Alice's and Bob's key pairs. */
START_TEST(test_public_known_answer)
{
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN];

    cu_unhex_into("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", sk, 32);
    ck_assert_int_eq(sv_x25519_public(sk, pk), SV_OK);
    cu_assert_hex(pk, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
                  "Alice public");
    cu_unhex_into("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", sk, 32);
    ck_assert_int_eq(sv_x25519_public(sk, pk), SV_OK);
    cu_assert_hex(pk, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
                  "Bob public");
}
END_TEST

START_TEST(test_generate)
{
    uint8_t sk1[32], pk1[32], sk2[32], pk2[32], pk[32];

    ck_assert_int_eq(sv_x25519_generate(sk1, pk1), SV_OK);
    ck_assert_int_eq(sv_x25519_generate(sk2, pk2), SV_OK);
    ck_assert(memcmp(sk1, sk2, 32) != 0);
    ck_assert(memcmp(pk1, pk2, 32) != 0);
    ck_assert_int_eq(sv_x25519_public(sk1, pk), SV_OK);
    ck_assert_mem_eq(pk, pk1, 32);
    ck_assert_int_eq(sv_key2_check(sk1, pk1), SV_OK);
    ck_assert_int_eq(sv_key2_check(sk2, pk2), SV_OK);
    ck_assert_int_eq(sv_x25519_generate(NULL, pk), SV_ERR_INVAL);
    ck_assert_int_eq(sv_x25519_public(sk1, NULL), SV_ERR_INVAL);
}
END_TEST

START_TEST(test_split_combine)
{
    uint8_t sk[32], pk[32], a[32], b[32], a2[32], b2[32], back[32];
    size_t i;

    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    ck_assert_int_eq(sv_key2_split(sk, a, b), SV_OK);
    for (i = 0; i < 32; i++)
        ck_assert_uint_eq(a[i] ^ b[i], sk[i]);
    ck_assert(memcmp(a, sk, 32) != 0);
    ck_assert(memcmp(b, sk, 32) != 0);
    sv_key2_combine(a, b, back);
    ck_assert_mem_eq(back, sk, 32);
    ck_assert_int_eq(sv_key2_check(back, pk), SV_OK);

    /* a second split of the same key uses fresh key2b */
    ck_assert_int_eq(sv_key2_split(sk, a2, b2), SV_OK);
    ck_assert(memcmp(b, b2, 32) != 0);
    ck_assert(memcmp(a, a2, 32) != 0);

    /* combine may write over either share */
    memcpy(back, a, 32);
    sv_key2_combine(back, b, back);
    ck_assert_mem_eq(back, sk, 32);
    memcpy(back, b, 32);
    sv_key2_combine(a, back, back);
    ck_assert_mem_eq(back, sk, 32);

    ck_assert_int_eq(sv_key2_split(sk, a, a), SV_ERR_INVAL);
    ck_assert_int_eq(sv_key2_split(NULL, a, b), SV_ERR_INVAL);
}
END_TEST

START_TEST(test_check_mismatch)
{
    uint8_t sk[32], pk[32], sk2[32], pk2[32], a[32], b[32], bad[32];
    int bit;

    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    ck_assert_int_eq(sv_x25519_generate(sk2, pk2), SV_OK);
    ck_assert_int_eq(sv_key2_check(sk, pk2), SV_ERR_KEY_MISMATCH);
    ck_assert_int_eq(sv_key2_check(sk2, pk), SV_ERR_KEY_MISMATCH);
    for (bit = 0; bit < 256; bit += 17) {
        memcpy(bad, pk, 32);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ck_assert_int_eq(sv_key2_check(sk, bad), SV_ERR_KEY_MISMATCH);
    }
    /* shares of two different keys do not combine into either */
    ck_assert_int_eq(sv_key2_split(sk, a, b), SV_OK);
    ck_assert_int_eq(sv_key2_split(sk2, bad, b), SV_OK); /* b is now sk2's key2b */
    sv_key2_combine(a, b, bad);
    ck_assert_int_eq(sv_key2_check(bad, pk), SV_ERR_KEY_MISMATCH);
    ck_assert_int_eq(sv_key2_check(bad, pk2), SV_ERR_KEY_MISMATCH);
    /* a damaged share is detected */
    ck_assert_int_eq(sv_key2_split(sk, a, b), SV_OK);
    a[3] ^= 0x10;
    sv_key2_combine(a, b, bad);
    ck_assert_int_eq(sv_key2_check(bad, pk), SV_ERR_KEY_MISMATCH);
    ck_assert_int_eq(sv_key2_check(NULL, pk), SV_ERR_INVAL);
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

static Suite *
key2_suite(void)
{
    Suite *s = suite_create("key2");
    TCase *tc = tcase_create("key2");

    tcase_add_test(tc, test_public_known_answer);
    tcase_add_test(tc, test_generate);
    tcase_add_test(tc, test_split_combine);
    tcase_add_test(tc, test_check_mismatch);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(key2_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
