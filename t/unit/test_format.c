/*
 * test_format.c - the stored format (lib/sv_format.c): field names, uuids,
 * aad strings, datum and wrapped-key2a envelopes, and that nothing opens
 * once a uuid, field name or share id is swapped.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/err.h>

#include "sv_format.h"
#include "sv_key2.h"
#include "crypto_util.h"

static const uint8_t uuid_a[SV_UUID_LEN] = {
    0x3f, 0x1c, 0x2b, 0x8e, 0x9a, 0x0d, 0x4e, 0x21, 0xb7, 0x55, 0x00, 0xc0, 0xff, 0xee, 0x12, 0x34
};
static const uint8_t uuid_b[SV_UUID_LEN] = {
    0x3f, 0x1c, 0x2b, 0x8e, 0x9a, 0x0d, 0x4e, 0x21, 0xb7, 0x55, 0x00, 0xc0, 0xff, 0xee, 0x12, 0x35
};

START_TEST(test_field_names)
{
    char max[SV_FIELD_MAX + 2];

    ck_assert(sv_field_name_valid("ssn", 3));
    ck_assert(sv_field_name_valid("Card_Number-2", 13));
    ck_assert(sv_field_name_valid("_", 1));
    ck_assert(sv_field_name_valid("-", 1));
    ck_assert(!sv_field_name_valid("", 0));
    ck_assert(!sv_field_name_valid(NULL, 3));
    ck_assert(!sv_field_name_valid("a/b", 3));
    ck_assert(!sv_field_name_valid("a b", 3));
    ck_assert(!sv_field_name_valid("a.b", 3));
    ck_assert(!sv_field_name_valid("a\0b", 3));
    ck_assert(!sv_field_name_valid("caf\xc3\xa9", 5));
    ck_assert(!sv_field_name_valid("x\n", 2));
    memset(max, 'f', sizeof(max));
    ck_assert(sv_field_name_valid(max, SV_FIELD_MAX));
    ck_assert(!sv_field_name_valid(max, SV_FIELD_MAX + 1));
}
END_TEST

START_TEST(test_uuid_text)
{
    char s[SV_UUID_STR_LEN + 1];
    uint8_t u[SV_UUID_LEN];

    sv_uuid_format(uuid_a, s);
    ck_assert_str_eq(s, "3f1c2b8e-9a0d-4e21-b755-00c0ffee1234");
    ck_assert_int_eq(sv_uuid_parse(s, strlen(s), u), SV_OK);
    ck_assert_mem_eq(u, uuid_a, SV_UUID_LEN);
    ck_assert_int_eq(sv_uuid_parse("3F1C2B8E-9A0D-4E21-B755-00C0FFEE1234", 36, u), SV_OK);
    ck_assert_mem_eq(u, uuid_a, SV_UUID_LEN);

    memset(u, 0x77, sizeof(u));
    ck_assert_int_eq(sv_uuid_parse("3f1c2b8e-9a0d-4e21-b755-00c0ffee123", 35, u), SV_ERR_INVAL);
    ck_assert_int_eq(sv_uuid_parse("3f1c2b8e-9a0d-4e21-b755-00c0ffee12345", 37, u),
                     SV_ERR_INVAL);
    ck_assert_int_eq(sv_uuid_parse("3f1c2b8e9a0d-4e21-b755-00c0ffee1234-", 36, u), SV_ERR_INVAL);
    ck_assert_int_eq(sv_uuid_parse("3f1c2b8e-9a0d-4e21-b755-00c0ffee123g", 36, u), SV_ERR_INVAL);
    ck_assert_int_eq(sv_uuid_parse("3f1c2b8e-9a0d-4e21-b755+00c0ffee1234", 36, u), SV_ERR_INVAL);
    ck_assert_int_eq(sv_uuid_parse("{f1c2b8e-9a0d-4e21-b755-00c0ffee123}", 36, u), SV_ERR_INVAL);
    ck_assert_int_eq(sv_uuid_parse(" 3f1c2b8e-9a0d-4e21-b755-00c0ffee123", 36, u), SV_ERR_INVAL);
    ck_assert_int_eq(sv_uuid_parse("3f1c2b8e-9a0d-4e21-b755-00c0ffee12\0" "4", 36, u),
                     SV_ERR_INVAL);
    ck_assert_int_eq(sv_uuid_parse(NULL, 36, u), SV_ERR_INVAL);
    /* a failed parse leaves the output alone */
    ck_assert_uint_eq(u[0], 0x77);
}
END_TEST

START_TEST(test_uuid_generate)
{
    uint8_t a[SV_UUID_LEN], b[SV_UUID_LEN];
    char s[SV_UUID_STR_LEN + 1];
    int i;

    for (i = 0; i < 64; i++) {
        ck_assert_int_eq(sv_uuid_generate(a), SV_OK);
        ck_assert_uint_eq(a[6] >> 4, 4);          /* version 4 */
        ck_assert_uint_eq(a[8] & 0xc0, 0x80);     /* RFC 9562 variant */
        sv_uuid_format(a, s);
        ck_assert_uint_eq(s[14], '4');
        ck_assert(strchr("89ab", s[19]) != NULL);
    }
    ck_assert_int_eq(sv_uuid_generate(b), SV_OK);
    ck_assert(memcmp(a, b, SV_UUID_LEN) != 0);
}
END_TEST

START_TEST(test_aad_strings)
{
    char out[SV_AAD_MAX], longf[SV_FIELD_MAX + 2];
    size_t n;

    n = sv_aad_datum(uuid_a, "ssn", out);
    ck_assert_str_eq(out, "3f1c2b8e-9a0d-4e21-b755-00c0ffee1234/ssn");
    ck_assert_uint_eq(n, strlen(out));

    n = sv_aad_key2a(uuid_a, "ssn", 1234567, out);
    ck_assert_str_eq(out, "3f1c2b8e-9a0d-4e21-b755-00c0ffee1234/ssn/1234567");
    ck_assert_uint_eq(n, strlen(out));
    n = sv_aad_key2a(uuid_a, "ssn", 0, out);
    ck_assert_str_eq(out, "3f1c2b8e-9a0d-4e21-b755-00c0ffee1234/ssn/0");
    ck_assert_uint_eq(n, strlen(out));

    /* the longest aad fits SV_AAD_MAX with its NUL */
    memset(longf, 'z', sizeof(longf));
    longf[SV_FIELD_MAX] = '\0';
    n = sv_aad_key2a(uuid_a, longf, UINT64_MAX, out);
    ck_assert_uint_eq(n, SV_AAD_MAX - 1);
    ck_assert_str_eq(out + SV_UUID_STR_LEN + 1 + SV_FIELD_MAX, "/18446744073709551615");

    /* invalid field names give 0 */
    longf[SV_FIELD_MAX] = 'z';
    longf[SV_FIELD_MAX + 1] = '\0';
    ck_assert_uint_eq(sv_aad_datum(uuid_a, longf, out), 0);
    ck_assert_uint_eq(sv_aad_key2a(uuid_a, longf, 1, out), 0);
    ck_assert_uint_eq(sv_aad_datum(uuid_a, "", out), 0);
    ck_assert_uint_eq(sv_aad_datum(uuid_a, "a/b", out), 0);
    ck_assert_uint_eq(sv_aad_datum(uuid_a, NULL, out), 0);
    ck_assert_uint_eq(sv_aad_key2a(uuid_a, "x/1", 2, out), 0);
}
END_TEST

START_TEST(test_datum_round_trip)
{
    static const size_t sizes[] = { 0, 1, 100, SV_DATUM_MAX };
    uint8_t sk[32], pk[32], enc[SV_HPKE_ENC_LEN];
    uint8_t *pt, *ct, *out;
    size_t k, n;

    pt = malloc(SV_DATUM_MAX + 1);
    ct = malloc(SV_DATUM_MAX + 1 + SV_HPKE_TAG_LEN);
    out = malloc(SV_DATUM_MAX + 1);
    ck_assert(pt != NULL && ct != NULL && out != NULL);
    for (n = 0; n <= SV_DATUM_MAX; n++)
        pt[n] = (uint8_t)(n ^ (n >> 8));
    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        n = sizes[k];
        ck_assert_int_eq(sv_datum_seal(pk, uuid_a, "medical_notes", pt, n, enc, ct), SV_OK);
        memset(out, 0xa5, n + 1);
        ck_assert_int_eq(sv_datum_open(sk, uuid_a, "medical_notes", enc, ct,
                                       n + SV_HPKE_TAG_LEN, out), SV_OK);
        ck_assert(n == 0 || memcmp(out, pt, n) == 0);
        ck_assert_uint_eq(out[n], 0xa5); /* nothing written past the end */
    }
    ck_assert_int_eq(sv_datum_seal(pk, uuid_a, "f", pt, SV_DATUM_MAX + 1, enc, ct),
                     SV_ERR_INVAL);
    ck_assert_int_eq(sv_datum_seal(pk, uuid_a, "bad field", pt, 1, enc, ct), SV_ERR_INVAL);
    ck_assert_int_eq(sv_datum_seal(pk, uuid_a, NULL, pt, 1, enc, ct), SV_ERR_INVAL);
    /* a ciphertext longer than any datum is refused before any work */
    ck_assert_int_eq(sv_datum_open(sk, uuid_a, "f", enc, ct,
                                   SV_DATUM_MAX + 1 + SV_HPKE_TAG_LEN, out), SV_ERR_OPEN);
    free(pt);
    free(ct);
    free(out);
}
END_TEST

START_TEST(test_datum_open_checked)
{
    uint8_t sk[32], pk[32], sk2[32], pk2[32], enc[SV_HPKE_ENC_LEN];
    uint8_t ct[11 + SV_HPKE_TAG_LEN], out[11];

    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    ck_assert_int_eq(sv_x25519_generate(sk2, pk2), SV_OK);
    ck_assert_int_eq(sv_datum_seal(pk, uuid_a, "ssn", (const uint8_t *)"123-45-6789", 11, enc, ct),
                     SV_OK);
    ck_assert_int_eq(sv_datum_open_checked(sk, pk, uuid_a, "ssn", enc, ct, sizeof(ct), out),
                     SV_OK);
    ck_assert(memcmp(out, "123-45-6789", 11) == 0);
    /* the right key with the wrong expected public key: a mismatch, no output */
    memset(out, 0xa5, sizeof(out));
    ck_assert_int_eq(sv_datum_open_checked(sk, pk2, uuid_a, "ssn", enc, ct, sizeof(ct), out),
                     SV_ERR_KEY_MISMATCH);
    ck_assert(cu_all_zero(out, sizeof(out)));
    /* a consistent but wrong key pair: the open fails */
    memset(out, 0xa5, sizeof(out));
    ck_assert_int_eq(sv_datum_open_checked(sk2, pk2, uuid_a, "ssn", enc, ct, sizeof(ct), out),
                     SV_ERR_OPEN);
    ck_assert(cu_all_zero(out, sizeof(out)));
    /* the right key, another record's aad */
    ck_assert_int_eq(sv_datum_open_checked(sk, pk, uuid_b, "ssn", enc, ct, sizeof(ct), out),
                     SV_ERR_OPEN);
    ck_assert(cu_all_zero(out, sizeof(out)));
}
END_TEST

/* Open, expect SV_ERR_OPEN and a zeroed output. */
static void
datum_must_fail(const uint8_t *sk, const uint8_t *uuid, const char *field, const uint8_t *enc,
                const uint8_t *ct, size_t ct_len, const char *what)
{
    uint8_t out[64];

    memset(out, 0xa5, sizeof(out));
    ck_assert_msg(sv_datum_open(sk, uuid, field, enc, ct, ct_len, out) == SV_ERR_OPEN,
                  "%s did not fail", what);
    ck_assert_msg(cu_all_zero(out, ct_len - SV_HPKE_TAG_LEN), "%s: output not zeroed", what);
}

START_TEST(test_datum_swaps_fail)
{
    uint8_t sk[32], pk[32], sk2[32], pk2[32];
    uint8_t enc[SV_HPKE_ENC_LEN], ct[11 + SV_HPKE_TAG_LEN];
    uint8_t enc2[SV_HPKE_ENC_LEN], ct2[11 + SV_HPKE_TAG_LEN];

    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    ck_assert_int_eq(sv_x25519_generate(sk2, pk2), SV_OK);
    ck_assert_int_eq(sv_datum_seal(pk, uuid_a, "ssn", (const uint8_t *)"123-45-6789", 11, enc, ct),
                     SV_OK);
    ck_assert_int_eq(sv_datum_seal(pk2, uuid_a, "card", (const uint8_t *)"4111-1111-1", 11, enc2,
                                   ct2), SV_OK);

    datum_must_fail(sk, uuid_b, "ssn", enc, ct, sizeof(ct), "other record uuid");
    datum_must_fail(sk, uuid_a, "SSN", enc, ct, sizeof(ct), "field name case");
    datum_must_fail(sk, uuid_a, "ssn2", enc, ct, sizeof(ct), "other field name");
    datum_must_fail(sk, uuid_a, "bad/name", enc, ct, sizeof(ct), "invalid field name");
    datum_must_fail(sk2, uuid_a, "ssn", enc, ct, sizeof(ct), "other key2");
    /* another field's ciphertext under this field's key and name */
    datum_must_fail(sk, uuid_a, "ssn", enc2, ct2, sizeof(ct2), "swapped ciphertext");
    datum_must_fail(sk, uuid_a, "ssn", enc2, ct, sizeof(ct), "swapped enc");
    datum_must_fail(sk2, uuid_a, "card", enc, ct, sizeof(ct), "ciphertext moved to other field");
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_key2a_wrap)
{
    uint8_t sk1[32], pk1[32], other1[32], otherpk[32], key2a[32], out[32];
    uint8_t enc[SV_HPKE_ENC_LEN], ct[SV_WRAPPED_CT_LEN], enc2[SV_HPKE_ENC_LEN];
    uint8_t ct2[SV_WRAPPED_CT_LEN];

    ck_assert_int_eq(sv_x25519_generate(sk1, pk1), SV_OK);
    ck_assert_int_eq(sv_x25519_generate(other1, otherpk), SV_OK);
    ck_assert_int_eq(sv_x25519_generate(key2a, out), SV_OK); /* any 32 secret bytes */

    ck_assert_int_eq(sv_key2a_wrap(pk1, uuid_a, "ssn", 42, key2a, enc, ct), SV_OK);
    ck_assert_int_eq(sv_key2a_unwrap(sk1, uuid_a, "ssn", 42, enc, ct, out), SV_OK);
    ck_assert_mem_eq(out, key2a, 32);

#define UNWRAP_FAILS(sk, u, f, id, e, c, what)                                        \
    do {                                                                             \
        memset(out, 0xa5, sizeof(out));                                              \
        ck_assert_msg(sv_key2a_unwrap((sk), (u), (f), (id), (e), (c), out) == SV_ERR_OPEN, \
                      "%s did not fail", (what));                                    \
        ck_assert_msg(cu_all_zero(out, sizeof(out)), "%s: output not zeroed", (what)); \
    } while (0)

    UNWRAP_FAILS(sk1, uuid_a, "ssn", 43, enc, ct, "other share id");
    UNWRAP_FAILS(sk1, uuid_a, "ssn", 4, enc, ct, "share id prefix");
    UNWRAP_FAILS(sk1, uuid_a, "ssn", 420, enc, ct, "share id extended");
    UNWRAP_FAILS(sk1, uuid_b, "ssn", 42, enc, ct, "other record uuid");
    UNWRAP_FAILS(sk1, uuid_a, "card", 42, enc, ct, "other field");
    UNWRAP_FAILS(sk1, uuid_a, "", 42, enc, ct, "empty field");
    UNWRAP_FAILS(other1, uuid_a, "ssn", 42, enc, ct, "other key1");

    /* a wrapped key2a of another share, presented under this share id */
    ck_assert_int_eq(sv_key2a_wrap(pk1, uuid_a, "ssn", 43, key2a, enc2, ct2), SV_OK);
    UNWRAP_FAILS(sk1, uuid_a, "ssn", 42, enc2, ct2, "swapped wrapped key2a");

    /* domain separation: a datum envelope with the key2a aad never unwraps */
    {
        char aad[SV_AAD_MAX];
        size_t aad_len = sv_aad_key2a(uuid_a, "ssn", 42, aad);

        ck_assert_int_eq(sv_hpke_seal(SV_AEAD, pk1, (const uint8_t *)SV_INFO_DATUM,
                                      strlen(SV_INFO_DATUM), (const uint8_t *)aad, aad_len,
                                      key2a, 32, enc2, ct2), SV_OK);
        UNWRAP_FAILS(sk1, uuid_a, "ssn", 42, enc2, ct2, "datum info used for key2a");
    }
    ck_assert_int_eq(sv_key2a_wrap(pk1, uuid_a, "bad/f", 1, key2a, enc, ct), SV_ERR_INVAL);
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* sv_key2a_unwrap_recipient (key1-rewrap's) opens what sv_key2a_wrap made
 * and refuses what sv_key2a_unwrap refuses, with one recipient key for all. */
START_TEST(test_key2a_unwrap_recipient)
{
    uint8_t sk1[32], pk1[32], other1[32], otherpk[32], key2a[32], out[32];
    uint8_t enc[SV_HPKE_ENC_LEN], ct[SV_WRAPPED_CT_LEN];
    sv_hpke_recipient *r = NULL, *o = NULL;

    ck_assert_int_eq(sv_x25519_generate(sk1, pk1), SV_OK);
    ck_assert_int_eq(sv_x25519_generate(other1, otherpk), SV_OK);
    ck_assert_int_eq(sv_x25519_generate(key2a, out), SV_OK);
    ck_assert_int_eq(sv_hpke_recipient_new(sk1, &r), SV_OK);
    ck_assert_int_eq(sv_hpke_recipient_new(other1, &o), SV_OK);
    ck_assert_int_eq(sv_key2a_wrap(pk1, uuid_a, "ssn", 42, key2a, enc, ct), SV_OK);
    ck_assert_int_eq(sv_key2a_unwrap_recipient(r, uuid_a, "ssn", 42, enc, ct, out), SV_OK);
    ck_assert_mem_eq(out, key2a, 32);

#define RUNWRAP_FAILS(rr, u, f, id, what)                                                 \
    do {                                                                                 \
        memset(out, 0xa5, sizeof(out));                                                  \
        ck_assert_msg(sv_key2a_unwrap_recipient((rr), (u), (f), (id), enc, ct, out)      \
                      == SV_ERR_OPEN, "%s did not fail", (what));                        \
        ck_assert_msg(cu_all_zero(out, sizeof(out)), "%s: output not zeroed", (what));   \
    } while (0)
    RUNWRAP_FAILS(r, uuid_a, "ssn", 43, "other share id");
    RUNWRAP_FAILS(r, uuid_b, "ssn", 42, "other record uuid");
    RUNWRAP_FAILS(r, uuid_a, "card", 42, "other field");
    RUNWRAP_FAILS(r, uuid_a, "bad/f", 42, "invalid field name");
    RUNWRAP_FAILS(o, uuid_a, "ssn", 42, "other key1");
    RUNWRAP_FAILS(NULL, uuid_a, "ssn", 42, "no key");
#undef RUNWRAP_FAILS
    /* still opens after the failures */
    ck_assert_int_eq(sv_key2a_unwrap_recipient(r, uuid_a, "ssn", 42, enc, ct, out), SV_OK);
    ck_assert_mem_eq(out, key2a, 32);
    sv_hpke_recipient_free(r);
    sv_hpke_recipient_free(o);
    ERR_clear_error();
}
END_TEST

/* The envelopes are plain HPKE with the documented strings: an auditor can
 * open them with any HPKE implementation given only these constants. */
START_TEST(test_documented_strings)
{
    static const char datum_aad[] = "3f1c2b8e-9a0d-4e21-b755-00c0ffee1234/ssn";
    static const char key2a_aad[] = "3f1c2b8e-9a0d-4e21-b755-00c0ffee1234/ssn/7";
    uint8_t sk[32], pk[32], enc[SV_HPKE_ENC_LEN], ct[SV_WRAPPED_CT_LEN], out[32];

    ck_assert_str_eq(SV_INFO_DATUM, "splitvault/v1 datum");
    ck_assert_str_eq(SV_INFO_KEY2A, "splitvault/v1 key2a");
    ck_assert_uint_eq(SV_AEAD, 0x0002);
    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);

    ck_assert_int_eq(sv_datum_seal(pk, uuid_a, "ssn", (const uint8_t *)"hello", 5, enc, ct),
                     SV_OK);
    ck_assert_int_eq(sv_hpke_open(0x0002, sk, (const uint8_t *)"splitvault/v1 datum", 19,
                                  (const uint8_t *)datum_aad, strlen(datum_aad), enc, ct,
                                  5 + SV_HPKE_TAG_LEN, out), SV_OK);
    ck_assert_mem_eq(out, "hello", 5);

    ck_assert_int_eq(sv_key2a_wrap(pk, uuid_a, "ssn", 7, sk, enc, ct), SV_OK);
    ck_assert_int_eq(sv_hpke_open(0x0002, sk, (const uint8_t *)"splitvault/v1 key2a", 19,
                                  (const uint8_t *)key2a_aad, strlen(key2a_aad), enc, ct,
                                  sizeof(ct), out), SV_OK);
    ck_assert_mem_eq(out, sk, 32);
}
END_TEST

static Suite *
format_suite(void)
{
    Suite *s = suite_create("format");
    TCase *tc = tcase_create("strings");

    tcase_add_test(tc, test_field_names);
    tcase_add_test(tc, test_uuid_text);
    tcase_add_test(tc, test_uuid_generate);
    tcase_add_test(tc, test_aad_strings);
    suite_add_tcase(s, tc);
    tc = tcase_create("envelopes");
    tcase_add_test(tc, test_datum_round_trip);
    tcase_add_test(tc, test_datum_swaps_fail);
    tcase_add_test(tc, test_datum_open_checked);
    tcase_add_test(tc, test_key2a_wrap);
    tcase_add_test(tc, test_key2a_unwrap_recipient);
    tcase_add_test(tc, test_documented_strings);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(format_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
