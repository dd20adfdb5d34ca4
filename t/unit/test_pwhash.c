/*
 * test_pwhash.c - staff password hashing (lib/sv_pwhash.c, Argon2id): the
 * encoded form and its parameters, verification, and refusals.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "sv_pwhash.h"

static const char pw[] = "correct horse battery staple";

/* A hash carries Argon2id, the set parameters and verifies its password. */
START_TEST(test_make_and_verify)
{
    char h[SV_PWHASH_MAX], want[64];

    ck_assert_int_eq(sv_pwhash_make(pw, strlen(pw), h, sizeof(h)), SV_OK);
    snprintf(want, sizeof(want), "$argon2id$v=19$m=%d,t=%d,p=%d$", SV_ARGON2_M_KIB,
             SV_ARGON2_T, SV_ARGON2_P);
    ck_assert_msg(strncmp(h, want, strlen(want)) == 0, "%s", h);
    ck_assert_uint_lt(strlen(h), sizeof(h));
    ck_assert_int_eq(sv_pwhash_verify(h, pw, strlen(pw)), 1);
    ck_assert_int_eq(sv_pwhash_strong(h), 1);
}
END_TEST

/* Wrong, shorter or longer passwords do not verify; two hashes of one
 * password differ (fresh salt) and both verify. */
START_TEST(test_wrong_password)
{
    char h1[SV_PWHASH_MAX], h2[SV_PWHASH_MAX];

    ck_assert_int_eq(sv_pwhash_make(pw, strlen(pw), h1, sizeof(h1)), SV_OK);
    ck_assert_int_eq(sv_pwhash_make(pw, strlen(pw), h2, sizeof(h2)), SV_OK);
    ck_assert_str_ne(h1, h2);
    ck_assert_int_eq(sv_pwhash_verify(h2, pw, strlen(pw)), 1);
    ck_assert_int_eq(sv_pwhash_verify(h1, "correct horse battery stapl", strlen(pw) - 1), 0);
    ck_assert_int_eq(sv_pwhash_verify(h1, pw, strlen(pw) - 1), 0);
    ck_assert_int_eq(sv_pwhash_verify(h1, "correct horse battery staple!", strlen(pw) + 1), 0);
    ck_assert_int_eq(sv_pwhash_verify(h1, "", 0), 0);
}
END_TEST

/* Anything but an Argon2id encoding is refused without work; weak
 * parameters are not "strong"; a short output buffer is refused. */
START_TEST(test_refusals)
{
    char h[SV_PWHASH_MAX], small[32];

    ck_assert_int_eq(sv_pwhash_verify(NULL, pw, strlen(pw)), 0);
    ck_assert_int_eq(sv_pwhash_verify("", pw, strlen(pw)), 0);
    ck_assert_int_eq(sv_pwhash_verify("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
                                      pw, strlen(pw)), 0);
    ck_assert_int_eq(sv_pwhash_verify("$argon2id$garbage", pw, strlen(pw)), 0);
    ck_assert_int_eq(sv_pwhash_strong(NULL), 0);
    ck_assert_int_eq(sv_pwhash_strong("$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), 0);
    ck_assert_int_eq(sv_pwhash_strong("$argon2id$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA"), 0);
    ck_assert_int_eq(sv_pwhash_strong("$argon2id$v=19$m=19456,t=1,p=1$c2FsdA$aGFzaA"), 0);
    ck_assert_int_eq(sv_pwhash_strong("$argon2id$v=19$m=47104,t=1,p=1$c2FsdA$aGFzaA"), 1);
    ck_assert_int_eq(sv_pwhash_make(pw, strlen(pw), small, sizeof(small)), SV_ERR_INVAL);
    ck_assert_int_eq(sv_pwhash_make(pw, strlen(pw), NULL, sizeof(h)), SV_ERR_INVAL);
}
END_TEST

static Suite *
pwhash_suite(void)
{
    Suite *s = suite_create("pwhash");
    TCase *tc = tcase_create("argon2id");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_make_and_verify);
    tcase_add_test(tc, test_wrong_password);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(pwhash_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
