/*
 * test_pwpolicy.c - the rule for new staff passwords (lib/sv_pwpolicy.c):
 * characters counted as UTF-8 code points, invalid UTF-8 and more than one
 * line refused, the byte limit kept.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "sv_pwpolicy.h"

static const char *check_s(const char *s)
{
    return sv_pwpolicy_check(s, strlen(s));
}

/* Twelve characters pass whatever their bytes; eleven do not, even as 33
 * bytes. */
START_TEST(test_counts_characters)
{
    char big[SV_PWPOLICY_MAX_BYTES + 2];

    ck_assert_ptr_null(check_s("abcdefghijkl"));
    ck_assert_ptr_nonnull(check_s("abcdefghijk"));
    ck_assert_str_eq(check_s("abcdefghijk"), "A password needs at least 12 characters.");
    /* eleven 3-byte characters (U+20AC), 33 bytes: too short */
    ck_assert_ptr_nonnull(check_s("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                                  "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                                  "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"));
    /* twelve of them pass; so do twelve 4-byte ones (U+1F600) */
    ck_assert_ptr_null(check_s("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                               "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                               "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"));
    ck_assert_ptr_null(check_s("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
                               "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
                               "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
                               "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"));
    ck_assert_uint_eq(sv_utf8_chars("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10), 4);
    /* the byte limit stays */
    memset(big, 'a', sizeof(big));
    ck_assert_ptr_null(sv_pwpolicy_check(big, SV_PWPOLICY_MAX_BYTES));
    ck_assert_ptr_nonnull(sv_pwpolicy_check(big, SV_PWPOLICY_MAX_BYTES + 1));
}
END_TEST

/* Invalid UTF-8 of every kind is refused, whatever the length. */
START_TEST(test_invalid_utf8)
{
    static const char *const bad[] = {
        "abcdefghijkl\x80",               /* a lone continuation byte */
        "abcdefghijkl\xc3",               /* cut short */
        "abcdefghijkl\xc0\xaf",           /* overlong '/' */
        "abcdefghijkl\xe0\x80\xaf",       /* overlong, 3 bytes */
        "abcdefghijkl\xf0\x80\x80\xaf",   /* overlong, 4 bytes */
        "abcdefghijkl\xed\xa0\x80",       /* a surrogate, U+D800 */
        "abcdefghijkl\xf4\x90\x80\x80",   /* above U+10FFFF */
        "abcdefghijkl\xf5\x80\x80\x80",   /* F5 */
        "abcdefghijkl\xff",
        "abcdefghijkl\xe2\x28\xa1",       /* a bad second byte */
        "abcdefghijkl\xe2\x82\x28",       /* a bad third byte */
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(sv_utf8_chars(bad[i], strlen(bad[i])) == (size_t)-1, "case %zu", i);
        ck_assert_str_eq(check_s(bad[i]), "A password must be valid UTF-8 text.");
    }
    /* the edges that are valid */
    ck_assert_uint_eq(sv_utf8_chars("\xed\x9f\xbf", 3), 1);      /* U+D7FF */
    ck_assert_uint_eq(sv_utf8_chars("\xf4\x8f\xbf\xbf", 4), 1);  /* U+10FFFF */
    ck_assert_uint_eq(sv_utf8_chars("\xc2\x80", 2), 1);          /* U+0080 */
}
END_TEST

/* One line: no NUL, CR or LF. */
START_TEST(test_one_line)
{
    ck_assert_str_eq(check_s("abcdefghijkl\nmore"), "A password is one line of text.");
    ck_assert_str_eq(check_s("abcdefghijkl\r"), "A password is one line of text.");
    ck_assert_str_eq(sv_pwpolicy_check("abcdef\0ghijklm", 14),
                     "A password is one line of text.");
}
END_TEST

static Suite *pwpolicy_suite(void)
{
    Suite *s = suite_create("pwpolicy");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_counts_characters);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_one_line);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(pwpolicy_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
