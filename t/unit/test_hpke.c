/*
 * test_hpke.c - HPKE (lib/sv_hpke.c): RFC 9180 A.1.1 and A.2.1 known-answer
 * vectors, every failure mode of open, bounds, the all-zero DH check,
 * sequence overflow, concurrent use, and (OpenSSL >= 3.2) a cross-check
 * against OSSL_HPKE.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#if OPENSSL_VERSION_NUMBER >= 0x30200000L
#include <openssl/hpke.h>
#endif

#include "sv_hpke.h"
#include "sv_key2.h"
#include "crypto_util.h"
#include "rfc9180_vectors.h"

static const uint16_t all_aeads[] = {
    SV_HPKE_AEAD_AES128GCM, SV_HPKE_AEAD_AES256GCM, SV_HPKE_AEAD_CHACHA20POLY1305
};

/* ---- RFC 9180 known answers ------------------------------------------- */

/* One whole appendix vector: keys, KEM, key schedule, every listed
 * encryption through the context API on both sides, every export. */
START_TEST(test_rfc9180_vector)
{
    const rfc9180_vector *v = &rfc9180_vectors[_i];
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN], skR[SV_X25519_LEN];
    uint8_t enc[SV_HPKE_ENC_LEN], out[256], dummy_ct[64], dummy_pt[16];
    uint8_t *info, *ikmE, *ikmR;
    size_t info_len, ikmE_len, ikmR_len, i, j;
    sv_hpke_ctx s, r;

    ck_assert_uint_eq(v->kem_id, SV_HPKE_KEM_X25519_SHA256);
    ck_assert_uint_eq(v->kdf_id, SV_HPKE_KDF_HKDF_SHA256);
    ck_assert_uint_eq(v->mode, 0);
    info = cu_unhex(v->info, &info_len);
    ikmE = cu_unhex(v->ikmE, &ikmE_len);
    ikmR = cu_unhex(v->ikmR, &ikmR_len);

    /* DeriveKeyPair */
    ck_assert_int_eq(sv_hpke_derive_keypair(ikmE, ikmE_len, sk, pk), SV_OK);
    cu_assert_hex(sk, sizeof(sk), v->skEm, "skEm");
    cu_assert_hex(pk, sizeof(pk), v->pkEm, "pkEm");
    ck_assert_int_eq(sv_hpke_derive_keypair(ikmR, ikmR_len, sk, pk), SV_OK);
    cu_assert_hex(sk, sizeof(sk), v->skRm, "skRm");
    cu_assert_hex(pk, sizeof(pk), v->pkRm, "pkRm");
    memcpy(skR, sk, sizeof(skR));

    /* SetupBaseS with the vector's ephemeral ikm, SetupBaseR with skRm */
    ck_assert_int_eq(sv_hpke_setup_s(&s, v->aead_id, pk, info, info_len, ikmE, ikmE_len, enc),
                     SV_OK);
    cu_assert_hex(enc, sizeof(enc), v->enc, "enc");
    ck_assert_int_eq(sv_hpke_setup_r(&r, v->aead_id, skR, enc, info, info_len), SV_OK);
    cu_assert_hex(s.shared_secret, SV_HPKE_HASH_LEN, v->shared_secret, "shared_secret (S)");
    cu_assert_hex(r.shared_secret, SV_HPKE_HASH_LEN, v->shared_secret, "shared_secret (R)");
    cu_assert_hex(s.key, s.key_len, v->key, "key (S)");
    cu_assert_hex(r.key, r.key_len, v->key, "key (R)");
    cu_assert_hex(s.base_nonce, SV_HPKE_NONCE_LEN, v->base_nonce, "base_nonce (S)");
    cu_assert_hex(r.base_nonce, SV_HPKE_NONCE_LEN, v->base_nonce, "base_nonce (R)");
    cu_assert_hex(s.exporter_secret, SV_HPKE_HASH_LEN, v->exporter_secret, "exporter_secret (S)");
    cu_assert_hex(r.exporter_secret, SV_HPKE_HASH_LEN, v->exporter_secret, "exporter_secret (R)");

    for (i = 0; i < v->n_encryptions; i++) {
        const rfc9180_encryption *e = &v->encryptions[i];
        uint8_t *aad, *pt, *ct, nonce[SV_HPKE_NONCE_LEN], bn[SV_HPKE_NONCE_LEN];
        size_t aad_len, pt_len, ct_len;
        char what[64];

        aad = cu_unhex(e->aad, &aad_len);
        pt = cu_unhex(e->pt, &pt_len);
        ct = cu_unhex(e->ct, &ct_len);
        ck_assert_uint_eq(ct_len, pt_len + SV_HPKE_TAG_LEN);
        ck_assert_uint_le(ct_len, sizeof(out));

        /* the vector's nonce is base_nonce XOR I2OSP(seq, 12) */
        cu_unhex_into(v->base_nonce, bn, sizeof(bn));
        cu_unhex_into(e->nonce, nonce, sizeof(nonce));
        for (j = 0; j < 8; j++)
            bn[SV_HPKE_NONCE_LEN - 1 - j] ^= (uint8_t)(e->seq >> (8 * j));
        ck_assert_mem_eq(bn, nonce, sizeof(nonce));

        /* advance both sides to seq with real messages (the listed
         * sequence numbers skip: 0, 1, 2, 4, 255, 256) */
        ck_assert_uint_le(s.seq, e->seq);
        while (s.seq < e->seq) {
            ck_assert_int_eq(sv_hpke_ctx_seal(&s, NULL, 0, (const uint8_t *)"x", 1, dummy_ct),
                             SV_OK);
            ck_assert_int_eq(sv_hpke_ctx_open(&r, NULL, 0, dummy_ct, 1 + SV_HPKE_TAG_LEN,
                                              dummy_pt), SV_OK);
            ck_assert_uint_eq(dummy_pt[0], 'x');
        }
        ck_assert_uint_eq(r.seq, e->seq);

        snprintf(what, sizeof(what), "ct of seq %llu", (unsigned long long)e->seq);
        ck_assert_int_eq(sv_hpke_ctx_seal(&s, aad, aad_len, pt, pt_len, out), SV_OK);
        cu_assert_hex(out, ct_len, e->ct, what);
        memset(out, 0xa5, sizeof(out));
        ck_assert_int_eq(sv_hpke_ctx_open(&r, aad, aad_len, ct, ct_len, out), SV_OK);
        ck_assert_mem_eq(out, pt, pt_len);
        ck_assert_uint_eq(s.seq, e->seq + 1);
        ck_assert_uint_eq(r.seq, e->seq + 1);
        free(aad);
        free(pt);
        free(ct);
    }

    for (i = 0; i < v->n_exports; i++) {
        const rfc9180_export *x = &v->exports[i];
        uint8_t *xc;
        size_t xc_len;

        xc = cu_unhex(x->context, &xc_len);
        ck_assert_uint_le(x->length, sizeof(out));
        ck_assert_int_eq(sv_hpke_ctx_export(&s, xc, xc_len, out, x->length), SV_OK);
        cu_assert_hex(out, x->length, x->value, "export (S)");
        ck_assert_int_eq(sv_hpke_ctx_export(&r, xc, xc_len, out, x->length), SV_OK);
        cu_assert_hex(out, x->length, x->value, "export (R)");
        free(xc);
    }

    sv_hpke_ctx_clear(&s);
    sv_hpke_ctx_clear(&r);
    ck_assert(cu_all_zero((const uint8_t *)&s, sizeof(s)));
    free(info);
    free(ikmE);
    free(ikmR);
    ck_assert_uint_eq(ERR_peek_error(), 0);

    printf("RFC 9180 %s DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, %s, mode_base: "
           "DeriveKeyPair, enc, shared_secret, key, base_nonce, exporter_secret, "
           "%zu encryptions (seal+open), %zu exports ... ok\n",
           v->name, v->aead_name, v->n_encryptions, v->n_exports);
    fflush(stdout);
}
END_TEST

/* The single-shot API agrees with the vector too (open side: the sender is
 * random, so only the receiver can be checked against fixed bytes). */
START_TEST(test_rfc9180_single_shot_open)
{
    const rfc9180_vector *v = &rfc9180_vectors[_i];
    const rfc9180_encryption *e = &v->encryptions[0];
    uint8_t skR[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN], out[128];
    uint8_t *info, *aad, *pt, *ct;
    size_t info_len, aad_len, pt_len, ct_len;

    ck_assert_uint_eq(e->seq, 0);
    cu_unhex_into(v->skRm, skR, sizeof(skR));
    cu_unhex_into(v->enc, enc, sizeof(enc));
    info = cu_unhex(v->info, &info_len);
    aad = cu_unhex(e->aad, &aad_len);
    pt = cu_unhex(e->pt, &pt_len);
    ct = cu_unhex(e->ct, &ct_len);
    ck_assert_int_eq(sv_hpke_open(v->aead_id, skR, info, info_len, aad, aad_len, enc, ct, ct_len,
                                  out), SV_OK);
    ck_assert_mem_eq(out, pt, pt_len);
    free(info);
    free(aad);
    free(pt);
    free(ct);
}
END_TEST

/* A recipient key made once opens the vector's first message too, and
 * computes the vector's recipient public key; it serves many opens. */
START_TEST(test_rfc9180_recipient_open)
{
    const rfc9180_vector *v = &rfc9180_vectors[_i];
    const rfc9180_encryption *e = &v->encryptions[0];
    uint8_t skR[SV_X25519_LEN], pkR[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN], out[128];
    uint8_t *info, *aad, *pt, *ct;
    size_t info_len, aad_len, pt_len, ct_len;
    sv_hpke_recipient *r = NULL;
    int round;

    cu_unhex_into(v->skRm, skR, sizeof(skR));
    cu_unhex_into(v->pkRm, pkR, sizeof(pkR));
    cu_unhex_into(v->enc, enc, sizeof(enc));
    info = cu_unhex(v->info, &info_len);
    aad = cu_unhex(e->aad, &aad_len);
    pt = cu_unhex(e->pt, &pt_len);
    ct = cu_unhex(e->ct, &ct_len);
    ck_assert_int_eq(sv_hpke_recipient_new(skR, &r), SV_OK);
    ck_assert_mem_eq(sv_hpke_recipient_public(r), pkR, SV_X25519_LEN);
    for (round = 0; round < 3; round++) {
        memset(out, 0, sizeof(out));
        ck_assert_int_eq(sv_hpke_open_recipient(r, v->aead_id, info, info_len, aad, aad_len, enc,
                                                ct, ct_len, out), SV_OK);
        ck_assert_mem_eq(out, pt, pt_len);
    }
    /* a failure in between leaves the recipient usable */
    ct[0] ^= 1;
    memset(out, 0xa5, sizeof(out));
    ck_assert_int_eq(sv_hpke_open_recipient(r, v->aead_id, info, info_len, aad, aad_len, enc, ct,
                                            ct_len, out), SV_ERR_OPEN);
    ck_assert(cu_all_zero(out, pt_len));
    ct[0] ^= 1;
    ck_assert_int_eq(sv_hpke_open_recipient(r, v->aead_id, info, info_len, aad, aad_len, enc, ct,
                                            ct_len, out), SV_OK);
    ck_assert_mem_eq(out, pt, pt_len);
    sv_hpke_recipient_free(r);
    sv_hpke_recipient_free(NULL);
    free(info);
    free(aad);
    free(pt);
    free(ct);
}
END_TEST

/* The recipient open fails as the plain open does: other key, small-order
 * enc, flipped enc, NULL arguments; output zeroed each time. */
START_TEST(test_recipient_failures)
{
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN], sk2[SV_X25519_LEN], pk2[SV_X25519_LEN];
    uint8_t enc[SV_HPKE_ENC_LEN], bad[SV_HPKE_ENC_LEN], ct[4 + SV_HPKE_TAG_LEN], out[4];
    sv_hpke_recipient *r = NULL, *other = NULL;

    ck_assert_int_eq(sv_hpke_derive_keypair((const uint8_t *)"recipient ikm", 13, sk, pk), SV_OK);
    ck_assert_int_eq(sv_hpke_derive_keypair((const uint8_t *)"other ikm", 9, sk2, pk2), SV_OK);
    ck_assert_int_eq(sv_hpke_seal(SV_HPKE_AEAD_AES256GCM, pk, (const uint8_t *)"i", 1,
                                  (const uint8_t *)"a", 1, (const uint8_t *)"data", 4, enc, ct),
                     SV_OK);
    ck_assert_int_eq(sv_hpke_recipient_new(sk, &r), SV_OK);
    ck_assert_int_eq(sv_hpke_recipient_new(sk2, &other), SV_OK);
    ck_assert_mem_eq(sv_hpke_recipient_public(r), pk, SV_X25519_LEN);
    ck_assert_int_eq(sv_hpke_open_recipient(r, SV_HPKE_AEAD_AES256GCM, (const uint8_t *)"i", 1,
                                            (const uint8_t *)"a", 1, enc, ct, sizeof(ct), out),
                     SV_OK);
    ck_assert_mem_eq(out, "data", 4);
#define RECIPIENT_FAILS(rr, e, c, what)                                                   \
    do {                                                                                  \
        memset(out, 0xa5, sizeof(out));                                                   \
        ck_assert_msg(sv_hpke_open_recipient((rr), SV_HPKE_AEAD_AES256GCM,                \
                                             (const uint8_t *)"i", 1, (const uint8_t *)"a", 1, \
                                             (e), (c), sizeof(ct), out) == SV_ERR_OPEN,   \
                      "%s did not fail", (what));                                         \
        ck_assert_msg(cu_all_zero(out, sizeof(out)), "%s: output not zeroed", (what));    \
    } while (0)
    RECIPIENT_FAILS(other, enc, ct, "other key");
    RECIPIENT_FAILS(NULL, enc, ct, "no recipient");
    RECIPIENT_FAILS(r, NULL, ct, "no enc");
    RECIPIENT_FAILS(r, enc, NULL, "no ciphertext");
    memset(bad, 0, sizeof(bad));
    RECIPIENT_FAILS(r, bad, ct, "small-order enc");
    memcpy(bad, enc, sizeof(bad));
    bad[31] ^= 0x80; /* ignored by X25519, but part of the KEM context */
    RECIPIENT_FAILS(r, bad, ct, "enc bit 255");
#undef RECIPIENT_FAILS
    ck_assert_int_eq(sv_hpke_recipient_new(NULL, &r), SV_ERR_INVAL);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(sv_hpke_recipient_new(sk, NULL), SV_ERR_INVAL);
    sv_hpke_recipient_free(other);
    ERR_clear_error();
}
END_TEST

/* ---- round trips -------------------------------------------------------- */

START_TEST(test_round_trip_all_aeads)
{
    static const size_t sizes[] = { 0, 1, 15, 16, 17, 1000, 65536 };
    uint16_t aead = all_aeads[_i];
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN];
    uint8_t *pt, *ct, *out;
    size_t k, n;

    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    pt = malloc(65536);
    ct = malloc(65536 + SV_HPKE_TAG_LEN);
    out = malloc(65536);
    ck_assert(pt != NULL && ct != NULL && out != NULL);
    for (n = 0; n < 65536; n++)
        pt[n] = (uint8_t)(n * 7 + 3);
    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        n = sizes[k];
        ck_assert_int_eq(sv_hpke_seal(aead, pk, (const uint8_t *)"info", 4,
                                      (const uint8_t *)"aad", 3, pt, n, enc, ct), SV_OK);
        ck_assert_int_eq(sv_hpke_open(aead, sk, (const uint8_t *)"info", 4,
                                      (const uint8_t *)"aad", 3, enc, ct, n + SV_HPKE_TAG_LEN,
                                      out), SV_OK);
        ck_assert(n == 0 || memcmp(out, pt, n) == 0);
        /* empty info and aad, NULL pointers allowed with length 0 */
        ck_assert_int_eq(sv_hpke_seal(aead, pk, NULL, 0, NULL, 0, pt, n, enc, ct), SV_OK);
        ck_assert_int_eq(sv_hpke_open(aead, sk, NULL, 0, NULL, 0, enc, ct, n + SV_HPKE_TAG_LEN,
                                      n ? out : NULL), SV_OK);
        ck_assert(n == 0 || memcmp(out, pt, n) == 0);
    }
    free(pt);
    free(ct);
    free(out);
}
END_TEST

START_TEST(test_fresh_ephemeral_each_seal)
{
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN];
    uint8_t enc1[SV_HPKE_ENC_LEN], enc2[SV_HPKE_ENC_LEN], ct1[20], ct2[20];

    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    ck_assert_int_eq(sv_hpke_seal(SV_HPKE_AEAD_AES256GCM, pk, NULL, 0, NULL, 0,
                                  (const uint8_t *)"same", 4, enc1, ct1), SV_OK);
    ck_assert_int_eq(sv_hpke_seal(SV_HPKE_AEAD_AES256GCM, pk, NULL, 0, NULL, 0,
                                  (const uint8_t *)"same", 4, enc2, ct2), SV_OK);
    ck_assert(memcmp(enc1, enc2, sizeof(enc1)) != 0);
    ck_assert(memcmp(ct1, ct2, sizeof(ct1)) != 0);
}
END_TEST

/* ---- open must fail closed ------------------------------------------------ */

#define NEG_PT_LEN 40

typedef struct {
    uint16_t aead;
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN];
    uint8_t info[24], aad[24];
    uint8_t pt[NEG_PT_LEN];
    uint8_t enc[SV_HPKE_ENC_LEN];
    uint8_t ct[NEG_PT_LEN + SV_HPKE_TAG_LEN];
} neg_case;

static void
neg_setup(neg_case *c, uint16_t aead)
{
    c->aead = aead;
    memcpy(c->info, "splitvault/v1 test info.", sizeof(c->info));
    memcpy(c->aad, "0000/field/1234567890123", sizeof(c->aad));
    memset(c->pt, 'P', sizeof(c->pt));
    ck_assert_int_eq(sv_x25519_generate(c->sk, c->pk), SV_OK);
    ck_assert_int_eq(sv_hpke_seal(aead, c->pk, c->info, sizeof(c->info), c->aad, sizeof(c->aad),
                                  c->pt, sizeof(c->pt), c->enc, c->ct), SV_OK);
}

/* Open with the given inputs; assert SV_ERR_OPEN and an all-zero output. */
static void
neg_expect_fail(const neg_case *c, const uint8_t *sk, const uint8_t *info, size_t info_len,
                const uint8_t *aad, size_t aad_len, const uint8_t *enc, const uint8_t *ct,
                size_t ct_len, const char *what)
{
    uint8_t out[NEG_PT_LEN + 8];
    sv_status st;

    memset(out, 0xa5, sizeof(out));
    st = sv_hpke_open(c->aead, sk, info, info_len, aad, aad_len, enc, ct, ct_len, out);
    ck_assert_msg(st == SV_ERR_OPEN, "%s: open returned %d, want SV_ERR_OPEN", what, (int)st);
    if (ct_len >= SV_HPKE_TAG_LEN)
        ck_assert_msg(cu_all_zero(out, ct_len - SV_HPKE_TAG_LEN), "%s: output not zeroed", what);
    ck_assert_uint_eq(ERR_peek_error(), 0);
}

START_TEST(test_open_bit_flips)
{
    neg_case c;
    uint8_t buf[NEG_PT_LEN + SV_HPKE_TAG_LEN], out[NEG_PT_LEN];
    size_t i;
    int bit;

    neg_setup(&c, all_aeads[_i]);
    /* sanity: the untouched inputs open */
    ck_assert_int_eq(sv_hpke_open(c.aead, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad),
                                  c.enc, c.ct, sizeof(c.ct), out), SV_OK);
    ck_assert_mem_eq(out, c.pt, sizeof(out));

    for (i = 0; i < SV_HPKE_ENC_LEN; i++) {
        for (bit = 0; bit < 8; bit++) {
            memcpy(buf, c.enc, SV_HPKE_ENC_LEN);
            /* even bit 255, which X25519 itself ignores (RFC 7748 5),
             * changes kem_context = enc || pkRm and so the key */
            buf[i] ^= (uint8_t)(1u << bit);
            neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad), buf, c.ct,
                            sizeof(c.ct), "enc bit flip");
        }
    }
    for (i = 0; i < sizeof(c.ct); i++) {
        memcpy(buf, c.ct, sizeof(c.ct));
        buf[i] ^= (uint8_t)(1u << (i % 8));
        neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad), c.enc, buf,
                        sizeof(c.ct), i < NEG_PT_LEN ? "ciphertext bit flip" : "tag bit flip");
    }
    for (i = 0; i < sizeof(c.aad); i++) {
        uint8_t a[sizeof(c.aad)];

        memcpy(a, c.aad, sizeof(a));
        a[i] ^= (uint8_t)(1u << (i % 8));
        neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), a, sizeof(a), c.enc, c.ct,
                        sizeof(c.ct), "aad bit flip");
    }
    for (i = 0; i < sizeof(c.info); i++) {
        uint8_t in[sizeof(c.info)];

        memcpy(in, c.info, sizeof(in));
        in[i] ^= (uint8_t)(1u << (i % 8));
        neg_expect_fail(&c, c.sk, in, sizeof(in), c.aad, sizeof(c.aad), c.enc, c.ct,
                        sizeof(c.ct), "info bit flip");
    }
}
END_TEST

START_TEST(test_open_other_failures)
{
    neg_case c;
    uint8_t other_sk[SV_X25519_LEN], other_pk[SV_X25519_LEN], zero[SV_HPKE_ENC_LEN];
    uint8_t out[NEG_PT_LEN];
    uint8_t big[SV_HPKE_MAX_AAD + 1];
    uint16_t wrong_aead;

    neg_setup(&c, all_aeads[_i]);
    ck_assert_int_eq(sv_x25519_generate(other_sk, other_pk), SV_OK);
    neg_expect_fail(&c, other_sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad), c.enc, c.ct,
                    sizeof(c.ct), "wrong private key");
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info) - 1, c.aad, sizeof(c.aad), c.enc, c.ct,
                    sizeof(c.ct), "shorter info");
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad) - 1, c.enc, c.ct,
                    sizeof(c.ct), "shorter aad");
    neg_expect_fail(&c, c.sk, NULL, 0, c.aad, sizeof(c.aad), c.enc, c.ct, sizeof(c.ct),
                    "no info");
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), NULL, 0, c.enc, c.ct, sizeof(c.ct),
                    "no aad");
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad), c.enc, c.ct,
                    sizeof(c.ct) - 1, "truncated ciphertext");
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad), c.enc, c.ct,
                    SV_HPKE_TAG_LEN, "ciphertext cut to a tag's length");
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad), c.enc, c.ct,
                    SV_HPKE_TAG_LEN - 1, "shorter than a tag");
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad), c.enc, c.ct, 0,
                    "empty ciphertext");
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad), c.enc, NULL,
                    sizeof(c.ct), "NULL ciphertext");
    neg_expect_fail(&c, NULL, c.info, sizeof(c.info), c.aad, sizeof(c.aad), c.enc, c.ct,
                    sizeof(c.ct), "NULL key");
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad), NULL, c.ct,
                    sizeof(c.ct), "NULL enc");
    /* the degenerate X25519 point as enc: all-zero DH output */
    memset(zero, 0, sizeof(zero));
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad), zero, c.ct,
                    sizeof(c.ct), "all-zero enc");
    /* over the bounds */
    memset(big, 'b', sizeof(big));
    neg_expect_fail(&c, c.sk, big, SV_HPKE_MAX_INFO + 1, c.aad, sizeof(c.aad), c.enc, c.ct,
                    sizeof(c.ct), "info over SV_HPKE_MAX_INFO");
    neg_expect_fail(&c, c.sk, c.info, sizeof(c.info), big, SV_HPKE_MAX_AAD + 1, c.enc, c.ct,
                    sizeof(c.ct), "aad over SV_HPKE_MAX_AAD");

    /* another AEAD, or an unknown one */
    memset(out, 0xa5, sizeof(out));
    wrong_aead = c.aead == SV_HPKE_AEAD_AES256GCM ? SV_HPKE_AEAD_AES128GCM
                                                   : SV_HPKE_AEAD_AES256GCM;
    ck_assert_int_eq(sv_hpke_open(wrong_aead, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad),
                                  c.enc, c.ct, sizeof(c.ct), out), SV_ERR_OPEN);
    ck_assert(cu_all_zero(out, sizeof(out)));
    memset(out, 0xa5, sizeof(out));
    ck_assert_int_eq(sv_hpke_open(0x0004, c.sk, c.info, sizeof(c.info), c.aad, sizeof(c.aad),
                                  c.enc, c.ct, sizeof(c.ct), out), SV_ERR_OPEN);
    ck_assert(cu_all_zero(out, sizeof(out)));
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* A failed context open leaves seq alone and the context usable. */
START_TEST(test_ctx_open_failure_keeps_seq)
{
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN];
    uint8_t ct[3][21], out[5];
    sv_hpke_ctx s, r;
    int k;

    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    ck_assert_int_eq(sv_hpke_setup_s(&s, SV_HPKE_AEAD_AES256GCM, pk, NULL, 0, NULL, 0, enc),
                     SV_OK);
    ck_assert_int_eq(sv_hpke_setup_r(&r, SV_HPKE_AEAD_AES256GCM, sk, enc, NULL, 0), SV_OK);
    for (k = 0; k < 3; k++)
        ck_assert_int_eq(sv_hpke_ctx_seal(&s, NULL, 0, (const uint8_t *)"hello", 5, ct[k]),
                         SV_OK);
    /* out of order: message 1 does not open at seq 0 */
    memset(out, 0xa5, sizeof(out));
    ck_assert_int_eq(sv_hpke_ctx_open(&r, NULL, 0, ct[1], sizeof(ct[1]), out), SV_ERR_OPEN);
    ck_assert(cu_all_zero(out, sizeof(out)));
    ck_assert_uint_eq(r.seq, 0);
    for (k = 0; k < 3; k++) {
        ck_assert_int_eq(sv_hpke_ctx_open(&r, NULL, 0, ct[k], sizeof(ct[k]), out), SV_OK);
        ck_assert_mem_eq(out, "hello", 5);
    }
    /* replay fails */
    ck_assert_int_eq(sv_hpke_ctx_open(&r, NULL, 0, ct[2], sizeof(ct[2]), out), SV_ERR_OPEN);
    sv_hpke_ctx_clear(&s);
    sv_hpke_ctx_clear(&r);
    /* a cleared context refuses everything */
    ck_assert_int_eq(sv_hpke_ctx_seal(&s, NULL, 0, (const uint8_t *)"x", 1, ct[0]), SV_ERR_INVAL);
    ck_assert_int_eq(sv_hpke_ctx_open(&r, NULL, 0, ct[0], sizeof(ct[0]), out), SV_ERR_OPEN);
    ck_assert_int_eq(sv_hpke_ctx_export(&r, NULL, 0, out, sizeof(out)), SV_ERR_INVAL);
}
END_TEST

START_TEST(test_sequence_overflow)
{
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN];
    uint8_t ct[1 + SV_HPKE_TAG_LEN], out[1];
    sv_hpke_ctx s, r;

    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    ck_assert_int_eq(sv_hpke_setup_s(&s, SV_HPKE_AEAD_AES256GCM, pk, NULL, 0, NULL, 0, enc),
                     SV_OK);
    ck_assert_int_eq(sv_hpke_setup_r(&r, SV_HPKE_AEAD_AES256GCM, sk, enc, NULL, 0), SV_OK);
    s.seq = r.seq = UINT64_MAX - 1;
    ck_assert_int_eq(sv_hpke_ctx_seal(&s, NULL, 0, (const uint8_t *)"z", 1, ct), SV_OK);
    ck_assert_int_eq(sv_hpke_ctx_open(&r, NULL, 0, ct, sizeof(ct), out), SV_OK);
    ck_assert_uint_eq(out[0], 'z');
    ck_assert_uint_eq(s.seq, UINT64_MAX);
    /* the last sequence number is never used: the counter cannot wrap */
    ck_assert_int_eq(sv_hpke_ctx_seal(&s, NULL, 0, (const uint8_t *)"z", 1, ct), SV_ERR_INVAL);
    ck_assert_uint_eq(s.seq, UINT64_MAX);
    ck_assert_int_eq(sv_hpke_ctx_open(&r, NULL, 0, ct, sizeof(ct), out), SV_ERR_OPEN);
    sv_hpke_ctx_clear(&s);
    sv_hpke_ctx_clear(&r);
}
END_TEST

/* Small-order public keys (RFC 7748 / cr.yp.to list) give an all-zero DH
 * output: seal refuses them with SV_ERR_BAD_KEY, and leaves enc zeroed. */
START_TEST(test_small_order_points)
{
    static const char *const points[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    };
    uint8_t pk[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN], ct[4 + SV_HPKE_TAG_LEN];
    sv_hpke_ctx s;
    size_t i;

    for (i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        cu_unhex_into(points[i], pk, sizeof(pk));
        memset(enc, 0xa5, sizeof(enc));
        ck_assert_int_eq(sv_hpke_seal(SV_HPKE_AEAD_AES256GCM, pk, NULL, 0, NULL, 0,
                                      (const uint8_t *)"data", 4, enc, ct), SV_ERR_BAD_KEY);
        ck_assert(cu_all_zero(enc, sizeof(enc)));
        ck_assert_int_eq(sv_hpke_setup_s(&s, SV_HPKE_AEAD_AES256GCM, pk, NULL, 0, NULL, 0, enc),
                         SV_ERR_BAD_KEY);
        ck_assert_int_eq(s.ready, 0);
        ck_assert_uint_eq(ERR_peek_error(), 0);
    }
}
END_TEST

START_TEST(test_bounds_and_arguments)
{
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN], out[64];
    uint8_t big[SV_HPKE_MAX_INFO + 1], ct[1 + SV_HPKE_TAG_LEN], ptbuf[1];
    sv_hpke_ctx s;

    memset(big, 'i', sizeof(big));
    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    /* exactly at the bounds: accepted, and opens */
    ck_assert_int_eq(sv_hpke_seal(SV_HPKE_AEAD_AES256GCM, pk, big, SV_HPKE_MAX_INFO, big,
                                  SV_HPKE_MAX_AAD, (const uint8_t *)"q", 1, enc, ct), SV_OK);
    ck_assert_int_eq(sv_hpke_open(SV_HPKE_AEAD_AES256GCM, sk, big, SV_HPKE_MAX_INFO, big,
                                  SV_HPKE_MAX_AAD, enc, ct, sizeof(ct), ptbuf), SV_OK);
    /* one over */
    ck_assert_int_eq(sv_hpke_seal(SV_HPKE_AEAD_AES256GCM, pk, big, SV_HPKE_MAX_INFO + 1, NULL, 0,
                                  (const uint8_t *)"q", 1, enc, ct), SV_ERR_INVAL);
    ck_assert_int_eq(sv_hpke_seal(SV_HPKE_AEAD_AES256GCM, pk, NULL, 0, big, SV_HPKE_MAX_AAD + 1,
                                  (const uint8_t *)"q", 1, enc, ct), SV_ERR_INVAL);
    /* unknown AEAD, NULL with a length */
    ck_assert_int_eq(sv_hpke_seal(0x0000, pk, NULL, 0, NULL, 0, (const uint8_t *)"q", 1, enc, ct),
                     SV_ERR_INVAL);
    ck_assert_int_eq(sv_hpke_seal(0xffff, pk, NULL, 0, NULL, 0, (const uint8_t *)"q", 1, enc, ct),
                     SV_ERR_INVAL);
    ck_assert_int_eq(sv_hpke_seal(SV_HPKE_AEAD_AES256GCM, pk, NULL, 3, NULL, 0,
                                  (const uint8_t *)"q", 1, enc, ct), SV_ERR_INVAL);
    ck_assert_int_eq(sv_hpke_seal(SV_HPKE_AEAD_AES256GCM, pk, NULL, 0, NULL, 0, NULL, 1, enc, ct),
                     SV_ERR_INVAL);
    ck_assert_int_eq(sv_hpke_seal(SV_HPKE_AEAD_AES256GCM, NULL, NULL, 0, NULL, 0,
                                  (const uint8_t *)"q", 1, enc, ct), SV_ERR_INVAL);
    ck_assert_int_eq(sv_hpke_setup_s(&s, SV_HPKE_AEAD_AES256GCM, pk, NULL, 0, NULL, 5, enc),
                     SV_ERR_INVAL);
    /* a failed DeriveKeyPair zeroes its outputs */
    memset(out, 0xa5, sizeof(out));
    ck_assert_int_eq(sv_hpke_derive_keypair(NULL, 4, out, out + 32), SV_ERR_INVAL);
    ck_assert(cu_all_zero(out, 64));
    /* export length bounds */
    ck_assert_int_eq(sv_hpke_setup_s(&s, SV_HPKE_AEAD_AES256GCM, pk, NULL, 0, NULL, 0, enc),
                     SV_OK);
    ck_assert_int_eq(sv_hpke_ctx_export(&s, NULL, 0, out, 0), SV_ERR_INVAL);
    ck_assert_int_eq(sv_hpke_ctx_export(&s, big, SV_HPKE_MAX_INFO + 1, out, 32), SV_ERR_INVAL);
    ck_assert_int_eq(sv_hpke_ctx_export(&s, NULL, 0, out, 64), SV_OK); /* two HKDF blocks */
    sv_hpke_ctx_clear(&s);
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* ---- concurrency ------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 200

static void *
thread_body(void *arg)
{
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN];
    uint8_t pt[32], ct[32 + SV_HPKE_TAG_LEN], out[32];
    uintptr_t id = (uintptr_t)arg;
    int i;

    if (sv_x25519_generate(sk, pk) != SV_OK)
        return (void *)1;
    for (i = 0; i < ROUNDS; i++) {
        memset(pt, (int)(id * 31 + (uintptr_t)i), sizeof(pt));
        if (sv_hpke_seal(all_aeads[i % 3], pk, (const uint8_t *)"t", 1, NULL, 0, pt, sizeof(pt),
                         enc, ct) != SV_OK
            || sv_hpke_open(all_aeads[i % 3], sk, (const uint8_t *)"t", 1, NULL, 0, enc, ct,
                            sizeof(ct), out) != SV_OK
            || memcmp(out, pt, sizeof(pt)) != 0)
            return (void *)1;
    }
    return NULL;
}

/* First use of the library happens in several threads at once: the
 * one-time fetch must be race-free and the shared HMAC template usable. */
START_TEST(test_concurrent_first_use)
{
    pthread_t t[THREADS];
    void *rv;
    uintptr_t i;

    for (i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, thread_body, (void *)i), 0);
    for (i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], &rv), 0);
        ck_assert_ptr_null(rv);
    }
}
END_TEST

/* ---- OSSL_HPKE cross-check ----------------------------------------------- */

#if OPENSSL_VERSION_NUMBER >= 0x30200000L
static EVP_PKEY *
raw_x25519_private(const uint8_t sk[SV_X25519_LEN])
{
    return EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, sk, SV_X25519_LEN);
}

/* Both directions for one AEAD: ours seals, OSSL_HPKE opens; OSSL_HPKE
 * seals, ours opens. */
static void
ossl_cross_check(uint16_t aead)
{
    static const uint8_t info[] = "splitvault/v1 datum";
    static const uint8_t aad[] = "3f1c2b8e-0000-4000-8000-000000000001/ssn";
    static const uint8_t pt[] = "123-45-6789";
    OSSL_HPKE_SUITE suite = { OSSL_HPKE_KEM_ID_X25519, OSSL_HPKE_KDF_ID_HKDF_SHA256, aead };
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN];
    uint8_t ct[sizeof(pt) + SV_HPKE_TAG_LEN], out[sizeof(pt)];
    size_t enclen = sizeof(enc), ctlen = sizeof(ct), outlen = sizeof(out);
    OSSL_HPKE_CTX *hc;
    EVP_PKEY *k;

    ck_assert_int_eq(sv_x25519_generate(sk, pk), SV_OK);
    k = raw_x25519_private(sk);
    ck_assert_ptr_nonnull(k);

    /* ours -> OSSL_HPKE */
    ck_assert_int_eq(sv_hpke_seal(aead, pk, info, sizeof(info) - 1, aad, sizeof(aad) - 1, pt,
                                  sizeof(pt), enc, ct), SV_OK);
    hc = OSSL_HPKE_CTX_new(OSSL_HPKE_MODE_BASE, suite, OSSL_HPKE_ROLE_RECEIVER, NULL, NULL);
    ck_assert_ptr_nonnull(hc);
    ck_assert_int_eq(OSSL_HPKE_decap(hc, enc, sizeof(enc), k, info, sizeof(info) - 1), 1);
    ck_assert_int_eq(OSSL_HPKE_open(hc, out, &outlen, aad, sizeof(aad) - 1, ct, sizeof(ct)), 1);
    ck_assert_uint_eq(outlen, sizeof(pt));
    ck_assert_mem_eq(out, pt, sizeof(pt));
    OSSL_HPKE_CTX_free(hc);

    /* OSSL_HPKE -> ours */
    hc = OSSL_HPKE_CTX_new(OSSL_HPKE_MODE_BASE, suite, OSSL_HPKE_ROLE_SENDER, NULL, NULL);
    ck_assert_ptr_nonnull(hc);
    ck_assert_int_eq(OSSL_HPKE_encap(hc, enc, &enclen, pk, sizeof(pk), info, sizeof(info) - 1),
                     1);
    ck_assert_uint_eq(enclen, sizeof(enc));
    ck_assert_int_eq(OSSL_HPKE_seal(hc, ct, &ctlen, aad, sizeof(aad) - 1, pt, sizeof(pt)), 1);
    ck_assert_uint_eq(ctlen, sizeof(ct));
    OSSL_HPKE_CTX_free(hc);
    memset(out, 0, sizeof(out));
    ck_assert_int_eq(sv_hpke_open(aead, sk, info, sizeof(info) - 1, aad, sizeof(aad) - 1, enc,
                                  ct, ctlen, out), SV_OK);
    ck_assert_mem_eq(out, pt, sizeof(pt));
    EVP_PKEY_free(k);
}
#endif

START_TEST(test_ossl_hpke_cross_check)
{
#if OPENSSL_VERSION_NUMBER >= 0x30200000L
    size_t i;

    for (i = 0; i < sizeof(all_aeads) / sizeof(all_aeads[0]); i++)
        ossl_cross_check(all_aeads[i]);
    printf("OSSL_HPKE cross-check (%s): seal/open both ways, 3 AEADs ... ok\n",
           OpenSSL_version(OPENSSL_VERSION));
#else
    printf("SKIP: OSSL_HPKE cross-check needs OpenSSL >= 3.2 "
           "(built against %s, which has no HPKE API)\n", OPENSSL_VERSION_TEXT);
#endif
    fflush(stdout);
}
END_TEST

static Suite *
hpke_suite(void)
{
    Suite *s = suite_create("hpke");
    TCase *tc;

    tc = tcase_create("rfc9180");
    tcase_add_loop_test(tc, test_rfc9180_vector, 0, (int)RFC9180_N_VECTORS);
    tcase_add_loop_test(tc, test_rfc9180_single_shot_open, 0, (int)RFC9180_N_VECTORS);
    tcase_add_loop_test(tc, test_rfc9180_recipient_open, 0, (int)RFC9180_N_VECTORS);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_add_loop_test(tc, test_round_trip_all_aeads, 0, 3);
    tcase_add_test(tc, test_fresh_ephemeral_each_seal);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_open_bit_flips, 0, 3);
    tcase_add_loop_test(tc, test_open_other_failures, 0, 3);
    tcase_add_test(tc, test_ctx_open_failure_keeps_seq);
    tcase_add_test(tc, test_sequence_overflow);
    tcase_add_test(tc, test_small_order_points);
    tcase_add_test(tc, test_recipient_failures);
    tcase_add_test(tc, test_bounds_and_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_concurrent_first_use);
    suite_add_tcase(s, tc);

    tc = tcase_create("ossl_hpke");
    tcase_add_test(tc, test_ossl_hpke_cross_check);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(hpke_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
