/*
 * test_share.c - key1 shares (lib/sv_share.c): split and combine with
 * libgfshare, every k-subset and no fewer, mixed shares, the sealed share
 * file and its strict parser, the scrypt caps, and keys that do not match.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <libgfshare.h>
#include <openssl/evp.h>

#include "sv_share.h"

#ifdef SV_TEST_HOOKS
extern int sv_share_test_rng_fail;
#endif

static const char pass[] = "correct horse battery staple";

/* PKCS#8 PrivateKeyInfo of an X25519 key, before its 32 bytes: what
 * `openssl pkey -outform DER` writes */
static const uint8_t p8_prefix[16] = { 0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                       0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20 };

static void
keygen(uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN])
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    size_t l = SV_X25519_LEN;

    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(EVP_PKEY_get_raw_private_key(k, sk, &l), 1);
    l = SV_X25519_LEN;
    ck_assert_int_eq(EVP_PKEY_get_raw_public_key(k, pk, &l), 1);
    EVP_PKEY_free(k);
}

static int
all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t acc = 0;
    size_t i;

    for (i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

/* combine the shares of s[] whose bit is set in mask */
static sv_status
combine_mask(const sv_share *s, unsigned n, unsigned long mask, uint8_t sk[32], uint8_t pk[32])
{
    const sv_share *v[SV_SHARE_MAX_N];
    unsigned i, c = 0;

    for (i = 0; i < n; i++)
        if (mask & (1UL << i))
            v[c++] = &s[i];
    return sv_share_combine(v, c, sk, pk);
}

/* Every k-subset of every split gives key1 back, as does the whole set;
 * every (k-1)-subset is SV_ERR_SHARE_FEW with zeroed outputs. */
START_TEST(test_split_combine_subsets)
{
    static const unsigned kn[][2] = { { 2, 2 }, { 2, 3 }, { 3, 5 }, { 4, 6 }, { 5, 9 },
                                      { 8, 8 }, { 2, 12 } };
    uint8_t sk[32], pk[32], sk2[32], pk2[32];
    sv_share s[12];
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    unsigned t, i;
    unsigned long m;

    keygen(sk, pk);
    ck_assert_int_eq(sv_key1_fingerprint(pk, fp), SV_OK);
    for (t = 0; t < sizeof(kn) / sizeof(kn[0]); t++) {
        unsigned k = kn[t][0], n = kn[t][1];

        ck_assert_int_eq(sv_share_split(sk, pk, k, n, s), SV_OK);
        for (i = 0; i < n; i++) {
            ck_assert_str_eq(s[i].fp, fp);
            ck_assert_uint_eq(s[i].index, i + 1);
            ck_assert_uint_eq(s[i].k, k);
            ck_assert_uint_eq(s[i].n, n);
            ck_assert_str_eq(s[i].holder, "");
            ck_assert_int_eq(memcmp(s[i].split, s[0].split, SV_SHARE_SPLIT_LEN), 0);
        }
        for (m = 1; m < (1UL << n); m++) {
            unsigned c = (unsigned)__builtin_popcountl(m);
            sv_status st = combine_mask(s, n, m, sk2, pk2);

            if (c >= k) {
                ck_assert_msg(st == SV_OK, "k=%u n=%u mask=%lx: %s", k, n, m, sv_strerror(st));
                ck_assert_int_eq(memcmp(sk2, sk, 32), 0);
                ck_assert_int_eq(memcmp(pk2, pk, 32), 0);
            } else {
                ck_assert_int_eq(st, SV_ERR_SHARE_FEW);
                ck_assert(all_zero(sk2, 32) && all_zero(pk2, 32));
            }
        }
        for (i = 0; i < n; i++)
            sv_share_wipe(&s[i]);
        ck_assert(all_zero(&s[0], sizeof(s[0])));
    }
}
END_TEST

/* The largest split the header allows works; two splits of one key use
 * fresh coefficients and split ids. */
START_TEST(test_split_large_and_fresh)
{
    uint8_t sk[32], pk[32], sk2[32], pk2[32];
    sv_share *s = calloc(SV_SHARE_MAX_N, sizeof(*s)), a[3], b[3];
    const sv_share *v[SV_SHARE_MAX_K];
    unsigned i;

    ck_assert_ptr_nonnull(s);
    keygen(sk, pk);
    ck_assert_int_eq(sv_share_split(sk, pk, SV_SHARE_MAX_K, SV_SHARE_MAX_N, s), SV_OK);
    for (i = 0; i < SV_SHARE_MAX_K; i++)
        v[i] = &s[SV_SHARE_MAX_N - 1 - 30 * i];
    ck_assert_int_eq(sv_share_combine(v, SV_SHARE_MAX_K, sk2, pk2), SV_OK);
    ck_assert_int_eq(memcmp(sk2, sk, 32), 0);
    for (i = 0; i < SV_SHARE_MAX_N; i++)
        sv_share_wipe(&s[i]);
    free(s);

    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, a), SV_OK);
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, b), SV_OK);
    ck_assert_int_ne(memcmp(a[0].split, b[0].split, SV_SHARE_SPLIT_LEN), 0);
    ck_assert_int_ne(memcmp(a[0].share, b[0].share, SV_SHARE_SECRET_LEN), 0);
    /* no share is the secret itself */
    for (i = 0; i < 3; i++)
        ck_assert_int_ne(memcmp(a[i].share, p8_prefix, sizeof(p8_prefix)), 0);
}
END_TEST

/* The raw shares are libgfshare's own: its decoder alone gives the PKCS#8
 * DER that openssl writes for key1 (what gfcombine does). */
START_TEST(test_raw_shares_are_pkcs8)
{
    uint8_t sk[32], pk[32], der[SV_SHARE_SECRET_LEN];
    unsigned char nrs[2];
    sv_share s[3];
    gfshare_ctx *g;

    keygen(sk, pk);
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, s), SV_OK);
    nrs[0] = (unsigned char)s[2].index;
    nrs[1] = (unsigned char)s[0].index;
    g = gfshare_ctx_init_dec(nrs, 2, SV_SHARE_SECRET_LEN);
    ck_assert_ptr_nonnull(g);
    gfshare_ctx_dec_giveshare(g, 0, s[2].share);
    gfshare_ctx_dec_giveshare(g, 1, s[0].share);
    gfshare_ctx_dec_extract(g, der);
    gfshare_ctx_free(g);
    ck_assert_int_eq(memcmp(der, p8_prefix, sizeof(p8_prefix)), 0);
    ck_assert_int_eq(memcmp(der + sizeof(p8_prefix), sk, 32), 0);
}
END_TEST

/* Shares of two splits of one key, of two keys, with an index twice, or
 * with another threshold are SV_ERR_SHARE_MIX. */
START_TEST(test_mix)
{
    uint8_t sk[32], pk[32], skb[32], pkb[32], o1[32], o2[32];
    sv_share a[3], b[3], c[3], t;
    const sv_share *v[3];

    keygen(sk, pk);
    keygen(skb, pkb);
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, a), SV_OK);
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, b), SV_OK);
    ck_assert_int_eq(sv_share_split(skb, pkb, 2, 3, c), SV_OK);

    v[0] = &a[0];
    v[1] = &b[1];
    ck_assert_int_eq(sv_share_combine(v, 2, o1, o2), SV_ERR_SHARE_MIX);
    ck_assert(all_zero(o1, 32) && all_zero(o2, 32));
    v[1] = &c[1];
    ck_assert_int_eq(sv_share_combine(v, 2, o1, o2), SV_ERR_SHARE_MIX);
    v[1] = &a[0];
    ck_assert_int_eq(sv_share_combine(v, 2, o1, o2), SV_ERR_SHARE_MIX);
    /* the same index twice, even with other bytes */
    t = a[1];
    t.index = 1;
    v[1] = &t;
    ck_assert_int_eq(sv_share_combine(v, 2, o1, o2), SV_ERR_SHARE_MIX);
    /* a mix is reported before too few */
    v[1] = &b[1];
    v[2] = &a[2];
    ck_assert_int_eq(sv_share_combine(v, 3, o1, o2), SV_ERR_SHARE_MIX);
    t = a[1];
    t.k = 3;
    v[1] = &t;
    ck_assert_int_eq(sv_share_combine(v, 3, o1, o2), SV_ERR_SHARE_MIX);
    /* one share of a 2-of-3 */
    ck_assert_int_eq(sv_share_combine(v, 1, o1, o2), SV_ERR_SHARE_FEW);
}
END_TEST

/* A share set whose combination is not the key the shares name, or not a
 * key at all, is SV_ERR_KEY_MISMATCH; so is a split of sk with another pk. */
START_TEST(test_key_mismatch)
{
    uint8_t sk[32], pk[32], skb[32], pkb[32], o1[32], o2[32];
    char fpb[SV_FINGERPRINT_HEX_LEN + 1];
    sv_share a[3];
    const sv_share *v[2];
    unsigned i;

    keygen(sk, pk);
    keygen(skb, pkb);
    ck_assert_int_eq(sv_share_split(sk, pkb, 2, 3, a), SV_ERR_KEY_MISMATCH);
    for (i = 0; i < 3; i++)
        ck_assert(all_zero(&a[i], sizeof(a[i])));

    ck_assert_int_eq(sv_key1_fingerprint(pkb, fpb), SV_OK);
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, a), SV_OK);
    v[0] = &a[0];
    v[1] = &a[2];
    /* shares that claim key b */
    memcpy(a[0].fp, fpb, sizeof(fpb));
    memcpy(a[2].fp, fpb, sizeof(fpb));
    ck_assert_int_eq(sv_share_combine(v, 2, o1, o2), SV_ERR_KEY_MISMATCH);
    ck_assert(all_zero(o1, 32) && all_zero(o2, 32));
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, a), SV_OK);
    /* a share byte in the key, then in the PKCS#8 frame */
    a[2].share[40] ^= 1;
    ck_assert_int_eq(sv_share_combine(v, 2, o1, o2), SV_ERR_KEY_MISMATCH);
    a[2].share[40] ^= 1;
    a[2].share[3] ^= 0x10;
    ck_assert_int_eq(sv_share_combine(v, 2, o1, o2), SV_ERR_KEY_MISMATCH);
    ck_assert(all_zero(o1, 32) && all_zero(o2, 32));
    a[2].share[3] ^= 0x10;
    ck_assert_int_eq(sv_share_combine(v, 2, o1, o2), SV_OK);
}
END_TEST

START_TEST(test_invalid_arguments)
{
    uint8_t sk[32], pk[32], o1[32], o2[32];
    sv_share s[SV_SHARE_MAX_K + 1];
    const sv_share *v[1] = { NULL };

    keygen(sk, pk);
    ck_assert_int_eq(sv_share_split(sk, pk, 1, 3, s), SV_ERR_INVAL);
    ck_assert_int_eq(sv_share_split(sk, pk, 4, 3, s), SV_ERR_INVAL);
    ck_assert_int_eq(sv_share_split(sk, pk, SV_SHARE_MAX_K + 1, SV_SHARE_MAX_K + 1, s),
                     SV_ERR_INVAL);
    ck_assert_int_eq(sv_share_split(sk, pk, 2, SV_SHARE_MAX_N + 1, s), SV_ERR_INVAL);
    ck_assert_int_eq(sv_share_split(NULL, pk, 2, 3, s), SV_ERR_INVAL);
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, NULL), SV_ERR_INVAL);
    ck_assert_int_eq(sv_share_combine(NULL, 2, o1, o2), SV_ERR_INVAL);
    ck_assert_int_eq(sv_share_combine(v, 1, o1, o2), SV_ERR_INVAL);
    ck_assert_int_eq(sv_share_combine(v, 0, o1, o2), SV_ERR_INVAL);
}
END_TEST

#ifdef SV_TEST_HOOKS
/* RAND_priv_bytes failing inside libgfshare's random callback (the test
 * hook makes the filler take its result as a failure): the split fails
 * with SV_ERR_INTERNAL and leaves no share behind. */
START_TEST(test_rng_failure)
{
    uint8_t sk[32], pk[32];
    sv_share s[3];
    unsigned i;

    keygen(sk, pk);
    memset(s, 0xa5, sizeof(s));
    sv_share_test_rng_fail = 1;
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, s), SV_ERR_INTERNAL);
    sv_share_test_rng_fail = 0;
    for (i = 0; i < 3; i++)
        ck_assert(all_zero(&s[i], sizeof(s[i])));
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, s), SV_OK);
}
END_TEST
#endif

/* a random callback that other code of the process might install */
static void
zero_fill(unsigned char *buf, unsigned int len)
{
    memset(buf, 0, len);
}

/* Whatever gfshare_fill_rand points to, a split draws its coefficients
 * from RAND_priv_bytes: with zero coefficients every share would be the
 * PKCS#8 of key1 itself. */
START_TEST(test_foreign_filler)
{
    uint8_t sk[32], pk[32], o1[32], o2[32];
    sv_share s[3];
    const sv_share *v[2] = { &s[0], &s[2] };
    unsigned i;

    keygen(sk, pk);
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, s), SV_OK); /* ours, installed once */
    gfshare_fill_rand = zero_fill;
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, s), SV_OK);
    for (i = 0; i < 3; i++)
        ck_assert(memcmp(s[i].share, p8_prefix, sizeof(p8_prefix)) != 0);
    ck_assert(memcmp(s[0].share, s[1].share, sizeof(s[0].share)) != 0);
    gfshare_fill_rand = zero_fill;
    ck_assert_int_eq(sv_share_combine(v, 2, o1, o2), SV_OK);
    ck_assert(memcmp(o1, sk, 32) == 0 && memcmp(o2, pk, 32) == 0);
    for (i = 0; i < 3; i++)
        sv_share_wipe(&s[i]);
}
END_TEST

/* ------------------------------------------------------------------ */
/* share files                                                         */

static sv_share sealed_src;
static char *sealed;
static size_t sealed_len;

static void
seal_fixture(void)
{
    uint8_t sk[32], pk[32];
    sv_share s[3];

    keygen(sk, pk);
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, s), SV_OK);
    sealed_src = s[1];
    snprintf(sealed_src.holder, sizeof(sealed_src.holder), "bob.smith@example-1_x");
    ck_assert_int_eq(sv_share_seal(&sealed_src, pass, strlen(pass), &sealed, &sealed_len),
                     SV_OK);
}

static void
seal_teardown(void)
{
    free(sealed);
    sealed = NULL;
}

/* a copy of the sealed file with the first `from` replaced by `to` */
static char *
edit(const char *from, const char *to, size_t *len)
{
    const char *at = strstr(sealed, from);
    size_t fl = strlen(from), tl = strlen(to);
    char *t;

    ck_assert_msg(at != NULL, "no %s in the share file", from);
    t = malloc(sealed_len - fl + tl + 1);
    ck_assert_ptr_nonnull(t);
    memcpy(t, sealed, (size_t)(at - sealed));
    memcpy(t + (at - sealed), to, tl);
    memcpy(t + (at - sealed) + tl, at + fl, sealed_len - (size_t)(at - sealed) - fl + 1);
    *len = sealed_len - fl + tl;
    return t;
}

static sv_status
open_edited(const char *from, const char *to)
{
    sv_share o;
    size_t len;
    char *t = edit(from, to, &len);
    sv_status st = sv_share_open(t, len, pass, strlen(pass), &o);

    if (st != SV_OK)
        ck_assert(all_zero(&o, sizeof(o)));
    free(t);
    return st;
}

static sv_status
peek_edited(const char *from, const char *to)
{
    sv_share o;
    size_t len;
    char *t = edit(from, to, &len);
    sv_status st = sv_share_peek(t, len, &o);

    free(t);
    return st;
}

/* The file has the documented shape; open gives back every field and the
 * share; peek gives the headers and no share. */
START_TEST(test_seal_open)
{
    sv_share o;
    char want[256];

    ck_assert_uint_eq(strlen(sealed), sealed_len);
    ck_assert_uint_le(sealed_len, SV_SHARE_FILE_MAX);
    ck_assert(strncmp(sealed, "-----BEGIN SPLITVAULT KEY1 SHARE-----\nKey1: ", 44) == 0);
    snprintf(want, sizeof(want),
             "\nShare: 2\nThreshold: 2\nCount: 3\nHolder: bob.smith@example-1_x\n"
             "KDF: scrypt N=32768 r=8 p=1\nSalt: ");
    ck_assert_msg(strstr(sealed, want) != NULL, "%s", sealed);
    ck_assert(strstr(sealed, "\n-----END SPLITVAULT KEY1 SHARE-----\n") != NULL);

    ck_assert_int_eq(sv_share_open(sealed, sealed_len, pass, strlen(pass), &o), SV_OK);
    ck_assert_int_eq(memcmp(&o, &sealed_src, sizeof(o)), 0);
    ck_assert_int_eq(sv_share_peek(sealed, sealed_len, &o), SV_OK);
    ck_assert_str_eq(o.fp, sealed_src.fp);
    ck_assert_str_eq(o.holder, sealed_src.holder);
    ck_assert_uint_eq(o.index, 2);
    ck_assert(all_zero(o.share, sizeof(o.share)));
    /* without its final newline, too */
    ck_assert_int_eq(sv_share_open(sealed, sealed_len - 1, pass, strlen(pass), &o), SV_OK);
}
END_TEST

/* Without a holder there is no Holder line; two seals of one share differ. */
START_TEST(test_seal_no_holder)
{
    sv_share s = sealed_src, o;
    char *t = NULL, *t2 = NULL;
    size_t tl, tl2;

    s.holder[0] = '\0';
    ck_assert_int_eq(sv_share_seal(&s, pass, strlen(pass), &t, &tl), SV_OK);
    ck_assert_int_eq(sv_share_seal(&s, pass, strlen(pass), &t2, &tl2), SV_OK);
    ck_assert(strstr(t, "Holder") == NULL);
    ck_assert_str_ne(t, t2);
    ck_assert_int_eq(sv_share_open(t, tl, pass, strlen(pass), &o), SV_OK);
    ck_assert_str_eq(o.holder, "");
    ck_assert_int_eq(memcmp(o.share, s.share, sizeof(o.share)), 0);
    free(t);
    free(t2);
    /* what seal refuses */
    s.holder[0] = ' ';
    s.holder[1] = '\0';
    ck_assert_int_eq(sv_share_seal(&s, pass, strlen(pass), &t, &tl), SV_ERR_INVAL);
    ck_assert_ptr_null(t);
    s.holder[0] = '\0';
    ck_assert_int_eq(sv_share_seal(&s, pass, 0, &t, &tl), SV_ERR_INVAL);
    s.index = 4;
    ck_assert_int_eq(sv_share_seal(&s, pass, strlen(pass), &t, &tl), SV_ERR_INVAL);
}
END_TEST

START_TEST(test_wrong_passphrase)
{
    sv_share o;

    ck_assert_int_eq(sv_share_open(sealed, sealed_len, pass, strlen(pass) - 1, &o),
                     SV_ERR_SHARE_OPEN);
    ck_assert(all_zero(&o, sizeof(o)));
    ck_assert_int_eq(sv_share_open(sealed, sealed_len, "Correct horse battery staple",
                                   strlen(pass), &o),
                     SV_ERR_SHARE_OPEN);
    ck_assert_int_eq(sv_share_open(sealed, sealed_len, "", 0, &o), SV_ERR_SHARE_OPEN);
    ck_assert_int_eq(sv_share_open(sealed, sealed_len, NULL, 0, &o), SV_ERR_INVAL);
}
END_TEST

/* Every header changed to another well-formed value fails the tag. */
START_TEST(test_headers_bound)
{
    char from[128], to[128];

    /* Key1: the first hex digit */
    snprintf(from, sizeof(from), "Key1: %c", sealed_src.fp[0]);
    snprintf(to, sizeof(to), "Key1: %c", sealed_src.fp[0] == 'a' ? 'b' : 'a');
    ck_assert_int_eq(open_edited(from, to), SV_ERR_SHARE_OPEN);
    snprintf(from, sizeof(from), "Split: %.2s", strstr(sealed, "Split: ") + 7);
    snprintf(to, sizeof(to), "Split: %s", strncmp(from + 7, "00", 2) ? "00" : "11");
    ck_assert_int_eq(open_edited(from, to), SV_ERR_SHARE_OPEN);
    ck_assert_int_eq(open_edited("Share: 2\n", "Share: 1\n"), SV_ERR_SHARE_OPEN);
    ck_assert_int_eq(open_edited("Threshold: 2\n", "Threshold: 3\n"), SV_ERR_SHARE_OPEN);
    ck_assert_int_eq(open_edited("Count: 3\n", "Count: 4\n"), SV_ERR_SHARE_OPEN);
    ck_assert_int_eq(open_edited("Holder: bob.", "Holder: rob."), SV_ERR_SHARE_OPEN);
    ck_assert_int_eq(open_edited("Holder: bob.smith@example-1_x\n", ""), SV_ERR_SHARE_OPEN);
    ck_assert_int_eq(open_edited("KDF: scrypt N=32768 r=8 p=1\n", "KDF: scrypt N=32768 r=7 p=1\n"),
                     SV_ERR_SHARE_OPEN);
    ck_assert_int_eq(open_edited("p=1\n", "p=2\n"), SV_ERR_SHARE_OPEN);
    snprintf(from, sizeof(from), "Salt: %.1s", strstr(sealed, "Salt: ") + 6);
    snprintf(to, sizeof(to), "Salt: %c", from[6] == '0' ? '1' : '0');
    ck_assert_int_eq(open_edited(from, to), SV_ERR_SHARE_OPEN);
    snprintf(from, sizeof(from), "Nonce: %.1s", strstr(sealed, "Nonce: ") + 7);
    snprintf(to, sizeof(to), "Nonce: %c", from[7] == '0' ? '1' : '0');
    ck_assert_int_eq(open_edited(from, to), SV_ERR_SHARE_OPEN);
    /* the sealed bytes: one base64 digit */
    snprintf(from, sizeof(from), "\n\n%c", strstr(sealed, "\n\n")[2]);
    snprintf(to, sizeof(to), "\n\n%c", from[2] == 'A' ? 'B' : 'A');
    ck_assert_int_eq(open_edited(from, to), SV_ERR_SHARE_OPEN);
}
END_TEST

/* Holder names: 1 to 64 of [A-Za-z0-9._@-], as the tool checks them too. */
START_TEST(test_holder_ok)
{
    char h[SV_SHARE_HOLDER_MAX + 2];

    ck_assert(sv_share_holder_ok("bob.smith@example-1_x", 21));
    ck_assert(sv_share_holder_ok("A", 1));
    ck_assert(!sv_share_holder_ok("", 0));
    ck_assert(!sv_share_holder_ok("bob smith", 9));
    ck_assert(!sv_share_holder_ok("bob\n", 4));
    ck_assert(!sv_share_holder_ok("b\xc3\xb6" "b", 4));
    ck_assert(!sv_share_holder_ok("bob:", 4));
    memset(h, 'a', sizeof(h));
    ck_assert(sv_share_holder_ok(h, SV_SHARE_HOLDER_MAX));
    ck_assert(!sv_share_holder_ok(h, SV_SHARE_HOLDER_MAX + 1));
}
END_TEST

/* Headers that are not well-formed are SV_ERR_SHARE_FORMAT, before any
 * passphrase matters. */
START_TEST(test_headers_malformed)
{
    static const char *const bad[][2] = {
        { "-----BEGIN SPLITVAULT KEY1 SHARE-----", "-----BEGIN SPLITVAULT KEY2 SHARE-----" },
        { "Key1: ", "Key1:  " },
        { "Key1: ", "key1: " },
        { "Split: ", "Split: 0" },
        { "Share: 2\n", "Share: 02\n" },
        { "Share: 2\n", "Share: 0\n" },
        { "Share: 2\n", "Share: 4\n" },
        { "Share: 2\n", "Share: +2\n" },
        { "Share: 2\n", "Share: 2 \n" },
        { "Threshold: 2\n", "Threshold: 1\n" },
        { "Threshold: 2\n", "Threshold: 9\n" },
        { "Count: 3\n", "Count: 1\n" },
        { "Count: 3\n", "Count: 256\n" },
        { "Count: 3\n", "Count: 99999999999\n" },
        { "Count: 3\n", "Count: 4294967299\n" }, /* 2^32 + 3 */
        { "Threshold: 2\n", "Threshold: 4294967298\n" },
        { "Share: 2\n", "Share: 4294967298\n" },
        { "Holder: bob.", "Holder: bob " },
        { "Holder: bob.smith@example-1_x\n", "Holder: \n" },
        { "Holder: bob.smith@example-1_x\n",
          "Holder: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" },
        { "KDF: scrypt", "KDF: pbkdf2" },
        { "N=32768 r=8 p=1", "N=32768 r=8  p=1" },
        { "N=32768 r=8 p=1", "N=32768 p=1 r=8" },
        { "N=32768 r=8 p=1", "N=32768 r=8" },
        { "N=32768 r=8 p=1", "N=032768 r=8 p=1" },
        { "N=32768 r=8 p=1", "N=32768 r=8 p=1 " },
        { "Salt: ", "Salt: A" },
        { "Nonce: ", "Nonce: 00" },
        { "\nNonce: ", "\nNonce: \n" },
        { "\n\n", "\n" },
        { "\n\n", "\n\n\n" },
        { "\n-----END", "\n\n-----END" },
        { "-----END SPLITVAULT KEY1 SHARE-----\n", "-----END SPLITVAULT KEY1 SHARE-----\n\n" },
        { "-----END SPLITVAULT KEY1 SHARE-----\n", "-----END SPLITVAULT KEY1 SHARE-----\nx" },
        { "-----END SPLITVAULT KEY1 SHARE-----\n", "-----END SPLITVAULT KEY1 SHARE----\n" },
        { "Threshold: 2\n", "Threshold: 2\r\n" },
        { "-----BEGIN", " -----BEGIN" },
        { "Split: ", "Holder: x\nSplit: " },
    };
    unsigned i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(peek_edited(bad[i][0], bad[i][1]) == SV_ERR_SHARE_FORMAT, "%s -> %s",
                      bad[i][0], bad[i][1]);
        ck_assert_msg(open_edited(bad[i][0], bad[i][1]) == SV_ERR_SHARE_FORMAT, "%s -> %s",
                      bad[i][0], bad[i][1]);
    }
}
END_TEST

/* Every truncation but the final newline's, base64 that is not the
 * canonical encoding of 64 bytes, NULs, garbage and oversize input are
 * SV_ERR_SHARE_FORMAT. */
START_TEST(test_truncation_garbage)
{
    sv_share o;
    char *t, *b;
    size_t i, len;

    for (i = 0; i + 1 < sealed_len; i++)
        ck_assert_msg(sv_share_peek(sealed, i, &o) == SV_ERR_SHARE_FORMAT, "length %zu", i);
    ck_assert_int_eq(sv_share_peek(sealed, sealed_len - 1, &o), SV_OK);

    /* base64: a line rewrapped, a padding digit, a character outside it */
    b = strstr(sealed, "\n\n") + 2;
    t = strdup(sealed);
    ck_assert_ptr_nonnull(t);
    t[(b - sealed) + 10] = '*';
    ck_assert_int_eq(sv_share_peek(t, sealed_len, &o), SV_ERR_SHARE_FORMAT);
    memcpy(t, sealed, sealed_len);
    t[(b - sealed) + 64] = 'A'; /* the first line's "\n" */
    ck_assert_int_eq(sv_share_peek(t, sealed_len, &o), SV_ERR_SHARE_FORMAT);
    memcpy(t, sealed, sealed_len);
    {
        char *eq = strstr(t, "==\n");

        ck_assert_ptr_nonnull(eq);
        eq[-1] = eq[-1] == 'B' ? 'C' : 'B'; /* non-zero bits under the padding */
        ck_assert_int_eq(sv_share_peek(t, sealed_len, &o), SV_ERR_SHARE_FORMAT);
        memcpy(t, sealed, sealed_len);
        eq[0] = 'A';
        ck_assert_int_eq(sv_share_peek(t, sealed_len, &o), SV_ERR_SHARE_FORMAT);
    }
    memcpy(t, sealed, sealed_len);
    t[30] = '\0';
    ck_assert_int_eq(sv_share_peek(t, sealed_len, &o), SV_ERR_SHARE_FORMAT);
    free(t);

    ck_assert_int_eq(sv_share_peek("", 0, &o), SV_ERR_SHARE_FORMAT);
    ck_assert_int_eq(sv_share_peek(NULL, 10, &o), SV_ERR_SHARE_FORMAT);
    ck_assert_int_eq(sv_share_peek("-----BEGIN PRIVATE" " KEY-----\n", 28, &o),
                     SV_ERR_SHARE_FORMAT);
    len = SV_SHARE_FILE_MAX + 1;
    t = malloc(len);
    ck_assert_ptr_nonnull(t);
    memset(t, '\n', len);
    memcpy(t, sealed, sealed_len);
    ck_assert_int_eq(sv_share_peek(t, len, &o), SV_ERR_SHARE_FORMAT);
    for (i = 0; i < len; i++)
        t[i] = (char)(i * 131 + 7);
    ck_assert_int_eq(sv_share_peek(t, SV_SHARE_FILE_MAX, &o), SV_ERR_SHARE_FORMAT);
    free(t);
}
END_TEST

/* A cost over the caps of key1 files is SV_ERR_KEY_KDF, without deriving
 * (it returns at once); the largest cost within them opens. */
START_TEST(test_kdf_caps)
{
    static const char *const over[] = {
        "N=2097152 r=8 p=1", "N=32768 r=33 p=1", "N=32768 r=8 p=17", "N=32767 r=8 p=1",
        "N=1 r=8 p=1",       "N=0 r=8 p=1",      "N=32768 r=0 p=1",  "N=32768 r=8 p=0",
        "N=65536 r=8 p=1",   "N=1048576 r=1 p=1", "N=4294967296 r=8 p=1",
        "N=9999999999 r=8 p=1", "N=65536 r=1 p=1", /* scrypt wants N < 2^(16 r) */
    };
    struct timespec a, b;
    sv_share o;
    unsigned i;

    for (i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        ck_assert_msg(open_edited("N=32768 r=8 p=1", over[i]) == SV_ERR_KEY_KDF, "%s",
                      over[i]);
        clock_gettime(CLOCK_MONOTONIC, &b);
        ck_assert_msg((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 20,
                      "%s took time", over[i]);
        ck_assert_int_eq(peek_edited("N=32768 r=8 p=1", over[i]), SV_ERR_KEY_KDF);
    }
    /* within the caps (wrong tag, so derived then refused) */
    ck_assert_int_eq(open_edited("N=32768 r=8 p=1", "N=16384 r=16 p=1"), SV_ERR_SHARE_OPEN);
    ck_assert_int_eq(sv_share_open(sealed, sealed_len, pass, strlen(pass), &o), SV_OK);
}
END_TEST

/* Opened files combine: the holder's round trip end to end. */
START_TEST(test_seal_open_combine)
{
    uint8_t sk[32], pk[32], o1[32], o2[32];
    sv_share s[3], o[3];
    const sv_share *v[2];
    char *t[3];
    size_t tl[3];
    unsigned i;

    keygen(sk, pk);
    ck_assert_int_eq(sv_share_split(sk, pk, 2, 3, s), SV_OK);
    for (i = 0; i < 3; i += 2) {
        ck_assert_int_eq(sv_share_seal(&s[i], pass, strlen(pass), &t[i], &tl[i]), SV_OK);
        ck_assert_int_eq(sv_share_open(t[i], tl[i], pass, strlen(pass), &o[i]), SV_OK);
        free(t[i]);
    }
    v[0] = &o[2];
    v[1] = &o[0];
    ck_assert_int_eq(sv_share_combine(v, 2, o1, o2), SV_OK);
    ck_assert_int_eq(memcmp(o1, sk, 32), 0);
    ck_assert_int_eq(memcmp(o2, pk, 32), 0);
}
END_TEST

static Suite *
share_suite(void)
{
    Suite *s = suite_create("share");
    TCase *tc = tcase_create("split");
    TCase *tf = tcase_create("file");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_split_combine_subsets);
    tcase_add_test(tc, test_split_large_and_fresh);
    tcase_add_test(tc, test_raw_shares_are_pkcs8);
    tcase_add_test(tc, test_mix);
    tcase_add_test(tc, test_key_mismatch);
    tcase_add_test(tc, test_invalid_arguments);
#ifdef SV_TEST_HOOKS
    tcase_add_test(tc, test_rng_failure);
#endif
    tcase_add_test(tc, test_foreign_filler);
    tcase_add_test(tc, test_seal_open_combine);
    suite_add_tcase(s, tc);

    tcase_set_timeout(tf, 60);
    tcase_add_checked_fixture(tf, seal_fixture, seal_teardown);
    tcase_add_test(tf, test_seal_open);
    tcase_add_test(tf, test_seal_no_holder);
    tcase_add_test(tf, test_wrong_passphrase);
    tcase_add_test(tf, test_headers_bound);
    tcase_add_test(tf, test_holder_ok);
    tcase_add_test(tf, test_headers_malformed);
    tcase_add_test(tf, test_truncation_garbage);
    tcase_add_test(tf, test_kdf_caps);
    suite_add_tcase(s, tf);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(share_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
