/*
 * test_auditchain.c - the main audit chain's hash (lib/sv_auditchain.c):
 * known answers computed apart from the C code (the encoding written out in
 * Python's hashlib), NULL apart from the empty string, field boundaries,
 * refusals. t/test_module_audit_chain.py holds it to the SQL trigger.
 */
#include "config.h"

#include <string.h>

#include <check.h>

#include "sv_auditchain.h"
#include "sv_hex.h"

static const char *row1[SV_AC_NFIELDS] = {
    "1", "2026-01-02T03:04:05.678901Z", "pat", "decrypt", "ABCD-EFGH-J", NULL, "ok",
    "10.0.0.5", "fields=2"
};
static const char *row2[SV_AC_NFIELDS] = {
    "2", "2026-01-02T03:04:06.000000Z", NULL, "sign-in", NULL, NULL, "bad password", "::1", ""
};

static const char *hex(const uint8_t *h)
{
    static char out[2 * SV_AUDIT_CHAIN_HASH_LEN + 1];

    sv_hex_encode(h, SV_AUDIT_CHAIN_HASH_LEN, out);
    return out;
}

START_TEST(test_known_answers)
{
    uint8_t zero[SV_AUDIT_CHAIN_HASH_LEN] = { 0 }, h1[SV_AUDIT_CHAIN_HASH_LEN],
            h2[SV_AUDIT_CHAIN_HASH_LEN];
    const char *r3[SV_AC_NFIELDS];

    ck_assert_int_eq(sv_audit_chain_hash(zero, row1, h1), SV_OK);
    ck_assert_str_eq(hex(h1), "5739662970dbebedcf0f95007774e139c9955ad2ecdd0461fc90d2bafcf78dc9");
    ck_assert_int_eq(sv_audit_chain_hash(h1, row2, h2), SV_OK);
    ck_assert_str_eq(hex(h2), "f5eb7564be85e36cd10db3d9990f93b15427810f5794bb46ba67a3eb4f9d214e");
    /* NULL detail is not the empty detail */
    memcpy(r3, row2, sizeof(r3));
    r3[SV_AC_DETAIL] = NULL;
    ck_assert_int_eq(sv_audit_chain_hash(h1, r3, h2), SV_OK);
    ck_assert_str_eq(hex(h2), "5f92c5154f46f889d85a9e831777475442fe8e687c0b2256b0b8b52bc8f874d8");
}
END_TEST

/* Moving bytes from one field to the next changes the hash. */
START_TEST(test_boundaries)
{
    uint8_t zero[SV_AUDIT_CHAIN_HASH_LEN] = { 0 }, a[SV_AUDIT_CHAIN_HASH_LEN],
            b[SV_AUDIT_CHAIN_HASH_LEN];
    const char *r[SV_AC_NFIELDS];

    memcpy(r, row1, sizeof(r));
    r[SV_AC_ACTOR] = "pa";
    r[SV_AC_ACTION] = "tdecrypt";
    ck_assert_int_eq(sv_audit_chain_hash(zero, row1, a), SV_OK);
    ck_assert_int_eq(sv_audit_chain_hash(zero, r, b), SV_OK);
    ck_assert_mem_ne(a, b, sizeof(a));
    /* the predecessor is part of the hash */
    ck_assert_int_eq(sv_audit_chain_hash(a, row1, b), SV_OK);
    ck_assert_mem_ne(a, b, sizeof(a));
}
END_TEST

START_TEST(test_refusals)
{
    uint8_t zero[SV_AUDIT_CHAIN_HASH_LEN] = { 0 }, h[SV_AUDIT_CHAIN_HASH_LEN];
    const char *r[SV_AC_NFIELDS];

    memcpy(r, row1, sizeof(r));
    r[SV_AC_ID] = NULL;
    ck_assert_int_eq(sv_audit_chain_hash(zero, r, h), SV_ERR_INVAL);
    memcpy(r, row1, sizeof(r));
    r[SV_AC_AT] = NULL;
    ck_assert_int_eq(sv_audit_chain_hash(zero, r, h), SV_ERR_INVAL);
    ck_assert_int_eq(sv_audit_chain_hash(NULL, row1, h), SV_ERR_INVAL);
    ck_assert_int_eq(sv_audit_chain_hash(zero, NULL, h), SV_ERR_INVAL);
}
END_TEST

static Suite *auditchain_suite(void)
{
    Suite *s = suite_create("sv_auditchain");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_known_answers);
    tcase_add_test(tc, test_boundaries);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(auditchain_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
