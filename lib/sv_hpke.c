/*
 * sv_hpke.c - RFC 9180 HPKE, base mode, on OpenSSL 3.0 EVP primitives.
 *
 *   KEM   DHKEM(X25519, HKDF-SHA256)   EVP_PKEY raw keys + EVP_PKEY_derive
 *   KDF   HKDF-SHA256                  Extract/Expand written on EVP_MAC HMAC
 *   AEAD  AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305 (EVP_CIPHER)
 *
 * Algorithm objects are fetched once per process (CRYPTO_THREAD_run_once)
 * rather than on every call: intake does several X25519 operations per field
 * and the key schedule should cost little next to them. One HMAC context,
 * duplicated from a template that already carries the SHA-256 digest, is
 * re-keyed for every step of a setup, so no name lookup and no allocation
 * happens per HKDF step. psk_id_hash (constant per suite) is computed once,
 * info_hash once per thread for the last info seen (both public).
 *
 * A recipient's public key is computed with the X25519 ladder, X25519(skR, 9)
 * (RFC 7748 6.1), on the same derive context as the DH: OpenSSL 3.0 computes
 * it on import with portable fixed-base code that costs more than its
 * assembler ladder, so skR is imported with a placeholder public half that is
 * never used (X25519 derive reads only the private key and the peer's). The
 * sender's ephemeral public key is computed the same way.
 *
 * sv_hpke_recipient keeps an imported skR, its derive context and its public
 * key for many opens (key1-rewrap opens every field with one key1).
 *
 * Every intermediate secret (DH output, PRKs, shared secret, keys) is on the
 * stack and cleansed at the single exit of the function that made it.
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "sv_hpke.h"
#include "sv_log.h"
#include "sv_secret.h"

#define HPKE_V1 "HPKE-v1"
#define KEM_SUITE_LEN 5  /* "KEM" || I2OSP(kem_id, 2) */
#define HPKE_SUITE_LEN 10 /* "HPKE" || I2OSP(kem_id, 2) || kdf_id || aead_id */
#define HKDF_MAX_OUT (255 * SV_HPKE_HASH_LEN)
/* Largest plaintext one EVP update takes (its length is an int). */
#define HPKE_MAX_PT ((size_t)INT_MAX - SV_HPKE_TAG_LEN)

/* ---- algorithm objects, fetched once ------------------------------------ */

static CRYPTO_ONCE hpke_once = CRYPTO_ONCE_STATIC_INIT;
static int hpke_init_ok;
static EVP_MAC_CTX *hmac_tmpl;   /* HMAC with digest SHA256, no key yet */
static EVP_CIPHER *cipher_aes128gcm;
static EVP_CIPHER *cipher_aes256gcm;
static EVP_CIPHER *cipher_chacha;
static EVP_PKEY *x25519_base;    /* the base point u = 9, as a peer key */
static EVP_PKEY_CTX *x25519_tmpl; /* X25519 key management, never used itself:
                                   * duplicated for each import (no name fetch) */
/* LabeledExtract("", "psk_id_hash", "") per AEAD (index aead_id - 1) */
static uint8_t psk_id_hash[3][SV_HPKE_HASH_LEN];

static int labeled_extract(EVP_MAC_CTX *m, const uint8_t *suite, size_t suite_len,
                           const uint8_t *salt, size_t salt_len, const char *label,
                           const uint8_t *ikm, size_t ikm_len, uint8_t prk[SV_HPKE_HASH_LEN]);
static void hpke_suite(uint8_t s[10], uint16_t aead_id);

/* run_once body: fetch HMAC, SHA-256 and the three AEADs. On failure the
 * objects fetched so far are released and hpke_init_ok stays 0, so every
 * later call fails cleanly with SV_ERR_INTERNAL. */
static void
hpke_init(void)
{
    EVP_MAC *mac = NULL;
    OSSL_PARAM params[2];

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        goto fail;
    hmac_tmpl = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context keeps its own reference */
    if (hmac_tmpl == NULL)
        goto fail;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_CTX_set_params(hmac_tmpl, params))
        goto fail;

    cipher_aes128gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    cipher_aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    cipher_chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    if (cipher_aes128gcm == NULL || cipher_aes256gcm == NULL || cipher_chacha == NULL)
        goto fail;
    {
        static const uint8_t nine[SV_X25519_LEN] = { 9 };
        EVP_MAC_CTX *m;
        int ok = 1;

        x25519_base = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, nine, sizeof(nine));
        x25519_tmpl = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
        if (x25519_base == NULL || x25519_tmpl == NULL || (m = EVP_MAC_CTX_dup(hmac_tmpl)) == NULL)
            goto fail;
        for (uint16_t a = 1; a <= 3 && ok; a++) {
            uint8_t suite[10];
            hpke_suite(suite, a);
            ok = labeled_extract(m, suite, sizeof(suite), NULL, 0, "psk_id_hash", NULL, 0,
                                 psk_id_hash[a - 1]);
        }
        EVP_MAC_CTX_free(m);
        if (!ok)
            goto fail;
    }
    hpke_init_ok = 1;
    return;

fail:
    sv_log_openssl(SV_LOG_ERR, "hpke: cannot fetch HMAC-SHA256 or AEAD algorithms");
    EVP_MAC_CTX_free(hmac_tmpl);
    hmac_tmpl = NULL;
    EVP_CIPHER_free(cipher_aes128gcm);
    EVP_CIPHER_free(cipher_aes256gcm);
    EVP_CIPHER_free(cipher_chacha);
    cipher_aes128gcm = cipher_aes256gcm = cipher_chacha = NULL;
    EVP_PKEY_free(x25519_base);
    x25519_base = NULL;
    EVP_PKEY_CTX_free(x25519_tmpl);
    x25519_tmpl = NULL;
}

static int
hpke_ready(void)
{
    return CRYPTO_THREAD_run_once(&hpke_once, hpke_init) && hpke_init_ok;
}

/* Key length and cipher of an AEAD id; NULL for an unknown id. */
static const EVP_CIPHER *
aead_cipher(uint16_t aead_id, size_t *key_len)
{
    switch (aead_id) {
    case SV_HPKE_AEAD_AES128GCM:
        *key_len = 16;
        return cipher_aes128gcm;
    case SV_HPKE_AEAD_AES256GCM:
        *key_len = 32;
        return cipher_aes256gcm;
    case SV_HPKE_AEAD_CHACHA20POLY1305:
        *key_len = 32;
        return cipher_chacha;
    default:
        return NULL;
    }
}

/* ---- HKDF-SHA256 with RFC 9180 labels ------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t n;
} hpke_iov;

/* An HMAC-SHA256 context for one setup, duplicated from the template; each
 * HKDF step re-keys it. NULL on error. */
static EVP_MAC_CTX *
hmac_new(void)
{
    return EVP_MAC_CTX_dup(hmac_tmpl);
}

/* Feed the pieces of v into m and finish into out (32 bytes). */
static int
hmac_run(EVP_MAC_CTX *m, const hpke_iov *v, size_t nv, uint8_t out[SV_HPKE_HASH_LEN])
{
    size_t i, outl = 0;

    for (i = 0; i < nv; i++)
        if (v[i].n > 0 && !EVP_MAC_update(m, v[i].p, v[i].n))
            return 0;
    return EVP_MAC_final(m, out, &outl, SV_HPKE_HASH_LEN) && outl == SV_HPKE_HASH_LEN;
}

/*
 * LabeledExtract(salt, label, ikm)
 *   = HKDF-Extract(salt, "HPKE-v1" || suite_id || label || ikm).
 * An empty salt is HashLen zero bytes (RFC 5869 2.2), which is what HMAC
 * would pad an empty key to anyway.
 */
static int
labeled_extract(EVP_MAC_CTX *m, const uint8_t *suite, size_t suite_len,
                const uint8_t *salt, size_t salt_len, const char *label,
                const uint8_t *ikm, size_t ikm_len, uint8_t prk[SV_HPKE_HASH_LEN])
{
    static const uint8_t zero_salt[SV_HPKE_HASH_LEN];
    hpke_iov v[4];

    if (salt_len == 0) {
        salt = zero_salt;
        salt_len = sizeof(zero_salt);
    }
    v[0].p = (const uint8_t *)HPKE_V1;
    v[0].n = sizeof(HPKE_V1) - 1;
    v[1].p = suite;
    v[1].n = suite_len;
    v[2].p = (const uint8_t *)label;
    v[2].n = strlen(label);
    v[3].p = ikm;
    v[3].n = ikm_len;

    return EVP_MAC_init(m, salt, salt_len, NULL) && hmac_run(m, v, 4, prk);
}

/*
 * LabeledExpand(prk, label, info, L)
 *   = HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L).
 * The labelled info is streamed into HMAC, never assembled, so info of any
 * accepted length needs no buffer. T(i) = HMAC(prk, T(i-1) || info' || i).
 */
static int
labeled_expand(EVP_MAC_CTX *m, const uint8_t *suite, size_t suite_len,
               const uint8_t prk[SV_HPKE_HASH_LEN], const char *label,
               const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    uint8_t t[SV_HPKE_HASH_LEN];
    uint8_t len2[2], ctr = 0;
    hpke_iov v[7];
    size_t done = 0, take;
    int ok = 0;

    if (out_len == 0 || out_len > HKDF_MAX_OUT)
        return 0;
    len2[0] = (uint8_t)(out_len >> 8);
    len2[1] = (uint8_t)out_len;

    if (!EVP_MAC_init(m, prk, SV_HPKE_HASH_LEN, NULL))
        goto out;
    v[0].p = t;
    v[0].n = 0; /* T(0) is empty */
    v[1].p = len2;
    v[1].n = 2;
    v[2].p = (const uint8_t *)HPKE_V1;
    v[2].n = sizeof(HPKE_V1) - 1;
    v[3].p = suite;
    v[3].n = suite_len;
    v[4].p = (const uint8_t *)label;
    v[4].n = strlen(label);
    v[5].p = info;
    v[5].n = info_len;
    v[6].p = &ctr;
    v[6].n = 1;

    while (done < out_len) {
        ctr++;
        /* re-key only for blocks after the first: init(NULL) reuses prk */
        if (ctr > 1 && !EVP_MAC_init(m, NULL, 0, NULL))
            goto out;
        if (!hmac_run(m, v, 7, t))
            goto out;
        take = out_len - done < SV_HPKE_HASH_LEN ? out_len - done : SV_HPKE_HASH_LEN;
        memcpy(out + done, t, take);
        done += take;
        v[0].n = SV_HPKE_HASH_LEN;
    }
    ok = 1;

out:
    sv_cleanse(t, sizeof(t));
    if (!ok)
        sv_cleanse(out, out_len);
    return ok;
}

static void
kem_suite(uint8_t s[KEM_SUITE_LEN])
{
    s[0] = 'K';
    s[1] = 'E';
    s[2] = 'M';
    s[3] = (uint8_t)(SV_HPKE_KEM_X25519_SHA256 >> 8);
    s[4] = (uint8_t)SV_HPKE_KEM_X25519_SHA256;
}

static void
hpke_suite(uint8_t s[HPKE_SUITE_LEN], uint16_t aead_id)
{
    s[0] = 'H';
    s[1] = 'P';
    s[2] = 'K';
    s[3] = 'E';
    s[4] = (uint8_t)(SV_HPKE_KEM_X25519_SHA256 >> 8);
    s[5] = (uint8_t)SV_HPKE_KEM_X25519_SHA256;
    s[6] = (uint8_t)(SV_HPKE_KDF_HKDF_SHA256 >> 8);
    s[7] = (uint8_t)SV_HPKE_KDF_HKDF_SHA256;
    s[8] = (uint8_t)(aead_id >> 8);
    s[9] = (uint8_t)aead_id;
}

/* ---- X25519 -------------------------------------------------------------- */

/* EVP_PKEY for a raw X25519 private key (OpenSSL keeps it in secure memory
 * and computes the public key on import). NULL on error. */
static EVP_PKEY *
x25519_private(const uint8_t sk[SV_X25519_LEN])
{
    return EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, sk, SV_X25519_LEN);
}

/* An X25519 EVP_PKEY from raw parameters, through a duplicate of the
 * template context (no algorithm fetch). NULL on error. */
static EVP_PKEY *
x25519_fromdata(int selection, OSSL_PARAM *p)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_dup(x25519_tmpl);
    EVP_PKEY *k = NULL;

    if (c == NULL || EVP_PKEY_fromdata_init(c) <= 0 || EVP_PKEY_fromdata(c, &k, selection, p) <= 0) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    EVP_PKEY_CTX_free(c);
    return k;
}

/*
 * EVP_PKEY for a raw X25519 private key whose public half is NOT computed:
 * a fixed placeholder stands in for it. Only for derive contexts, which read
 * the private key alone; the caller computes the real public key with the
 * ladder (x25519_public_ladder). NULL on error.
 */
static EVP_PKEY *
x25519_private_for_derive(const uint8_t sk[SV_X25519_LEN])
{
    static const uint8_t placeholder[SV_X25519_LEN] = { 9 };
    OSSL_PARAM p[3];

    p[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, (void *)(uintptr_t)sk,
                                             SV_X25519_LEN);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                             (void *)(uintptr_t)placeholder, SV_X25519_LEN);
    p[2] = OSSL_PARAM_construct_end();
    return x25519_fromdata(EVP_PKEY_KEYPAIR, p);
}

/* EVP_PKEY for a raw X25519 public key. NULL on error. */
static EVP_PKEY *
x25519_public_key(const uint8_t pk[SV_X25519_LEN])
{
    OSSL_PARAM p[2];

    p[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(uintptr_t)pk,
                                             SV_X25519_LEN);
    p[1] = OSSL_PARAM_construct_end();
    return x25519_fromdata(EVP_PKEY_PUBLIC_KEY, p);
}

static int
x25519_public_of(const EVP_PKEY *k, uint8_t pk[SV_X25519_LEN])
{
    size_t n = SV_X25519_LEN;

    return EVP_PKEY_get_raw_public_key(k, pk, &n) == 1 && n == SV_X25519_LEN;
}

/* A derive context for the private key sk (no peer yet). NULL on error. */
static EVP_PKEY_CTX *
x25519_derive_ctx(EVP_PKEY *sk)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, sk, NULL);

    if (c != NULL && EVP_PKEY_derive_init(c) <= 0) {
        EVP_PKEY_CTX_free(c);
        c = NULL;
    }
    return c;
}

/*
 * out = X25519(c's private key, peer). SV_OK, SV_ERR_BAD_KEY when the result
 * is the all-zero value (peer is a small-order point; OpenSSL refuses it too)
 * or SV_ERR_INTERNAL. out is zeroed on failure. Logs failures.
 */
static sv_status
x25519_derive(EVP_PKEY_CTX *c, EVP_PKEY *peer, uint8_t out[SV_X25519_LEN])
{
    sv_status st = SV_ERR_INTERNAL;
    size_t n = SV_X25519_LEN, i;
    uint8_t acc = 0;

    /* validate_peer = 0: X25519 has no public-key check worth a second
     * context per call; the zero-output test below is the one that counts. */
    if (EVP_PKEY_derive_set_peer_ex(c, peer, 0) <= 0)
        goto out;
    if (EVP_PKEY_derive(c, out, &n) <= 0) {
        /* OpenSSL's X25519 fails exactly when the output would be zero */
        st = SV_ERR_BAD_KEY;
        goto out;
    }
    if (n != SV_X25519_LEN)
        goto out;
    for (i = 0; i < SV_X25519_LEN; i++)
        acc |= out[i];
    st = acc != 0 ? SV_OK : SV_ERR_BAD_KEY;

out:
    if (st != SV_OK) {
        sv_cleanse(out, SV_X25519_LEN);
        sv_log_openssl(st == SV_ERR_BAD_KEY ? SV_LOG_DEBUG : SV_LOG_ERR,
                       st == SV_ERR_BAD_KEY ? "hpke: X25519 refused a small-order point"
                                            : "hpke: X25519 failed");
    }
    return st;
}

/* dh = X25519(sk, peer) for a raw peer public key (see x25519_derive). */
static sv_status
x25519_dh(EVP_PKEY_CTX *c, const uint8_t peer[SV_X25519_LEN], uint8_t dh[SV_X25519_LEN])
{
    EVP_PKEY *pub;
    sv_status st;

    if ((pub = x25519_public_key(peer)) == NULL) {
        sv_log_openssl(SV_LOG_ERR, "hpke: X25519 peer key");
        sv_cleanse(dh, SV_X25519_LEN);
        return SV_ERR_INTERNAL;
    }
    st = x25519_derive(c, pub, dh);
    EVP_PKEY_free(pub);
    return st;
}

/* pk = X25519(c's private key, 9), the public key (RFC 7748 6.1). */
static int
x25519_public_ladder(EVP_PKEY_CTX *c, uint8_t pk[SV_X25519_LEN])
{
    return x25519_derive(c, x25519_base, pk) == SV_OK;
}

/* ---- KEM ----------------------------------------------------------------- */

sv_status
sv_hpke_derive_keypair(const uint8_t *ikm, size_t ikm_len,
                       uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN])
{
    uint8_t suite[KEM_SUITE_LEN], prk[SV_HPKE_HASH_LEN];
    EVP_PKEY *k = NULL;
    EVP_MAC_CTX *m = NULL;
    sv_status st = SV_ERR_INTERNAL;

    if (sk == NULL || pk == NULL)
        return SV_ERR_INVAL;
    if ((ikm == NULL && ikm_len > 0) || ikm_len > SV_HPKE_MAX_INFO) {
        st = SV_ERR_INVAL;
        goto out;
    }
    if (!hpke_ready())
        goto out;
    kem_suite(suite);
    if ((m = hmac_new()) == NULL
        || !labeled_extract(m, suite, sizeof(suite), NULL, 0, "dkp_prk", ikm, ikm_len, prk)
        || !labeled_expand(m, suite, sizeof(suite), prk, "sk", NULL, 0, sk, SV_X25519_LEN)) {
        sv_log_openssl(SV_LOG_ERR, "hpke: DeriveKeyPair");
        goto out;
    }
    if ((k = x25519_private(sk)) == NULL || !x25519_public_of(k, pk)) {
        sv_log_openssl(SV_LOG_ERR, "hpke: X25519 key import");
        goto out;
    }
    st = SV_OK;

out:
    EVP_MAC_CTX_free(m);
    EVP_PKEY_free(k);
    sv_cleanse(prk, sizeof(prk));
    if (st != SV_OK) {
        sv_cleanse(sk, SV_X25519_LEN);
        sv_cleanse(pk, SV_X25519_LEN);
    }
    return st;
}

/*
 * ExtractAndExpand(dh, kem_context) with kem_context = enc || pkRm:
 *   eae_prk = LabeledExtract("", "eae_prk", dh)
 *   shared_secret = LabeledExpand(eae_prk, "shared_secret", kem_context, 32)
 */
static int
kem_shared_secret(EVP_MAC_CTX *m, const uint8_t dh[SV_X25519_LEN],
                  const uint8_t enc[SV_HPKE_ENC_LEN], const uint8_t pkR[SV_X25519_LEN],
                  uint8_t ss[SV_HPKE_HASH_LEN])
{
    uint8_t suite[KEM_SUITE_LEN], prk[SV_HPKE_HASH_LEN];
    uint8_t kem_ctx[SV_HPKE_ENC_LEN + SV_X25519_LEN];
    int ok;

    kem_suite(suite);
    memcpy(kem_ctx, enc, SV_HPKE_ENC_LEN);
    memcpy(kem_ctx + SV_HPKE_ENC_LEN, pkR, SV_X25519_LEN);
    ok = labeled_extract(m, suite, sizeof(suite), NULL, 0, "eae_prk", dh, SV_X25519_LEN, prk)
         && labeled_expand(m, suite, sizeof(suite), prk, "shared_secret",
                           kem_ctx, sizeof(kem_ctx), ss, SV_HPKE_HASH_LEN);
    sv_cleanse(prk, sizeof(prk));
    return ok;
}

/* info_hash = LabeledExtract("", "info_hash", info), remembered per thread
 * for the last (aead, info) seen: info is public, and the daemon opens every
 * datum with the same one. */
#define INFO_CACHE_MAX 64
static __thread struct {
    int valid;
    uint16_t aead_id;
    size_t len;
    uint8_t info[INFO_CACHE_MAX];
    uint8_t hash[SV_HPKE_HASH_LEN];
} info_cache;

static int
info_hash(EVP_MAC_CTX *m, const uint8_t *suite, uint16_t aead_id, const uint8_t *info,
          size_t info_len, uint8_t out[SV_HPKE_HASH_LEN])
{
    if (info_cache.valid && info_cache.aead_id == aead_id && info_cache.len == info_len
        && (info_len == 0 || memcmp(info_cache.info, info, info_len) == 0)) {
        memcpy(out, info_cache.hash, SV_HPKE_HASH_LEN);
        return 1;
    }
    if (!labeled_extract(m, suite, HPKE_SUITE_LEN, NULL, 0, "info_hash", info, info_len, out))
        return 0;
    if (info_len <= INFO_CACHE_MAX) {
        info_cache.aead_id = aead_id;
        info_cache.len = info_len;
        if (info_len > 0)
            memcpy(info_cache.info, info, info_len);
        memcpy(info_cache.hash, out, SV_HPKE_HASH_LEN);
        info_cache.valid = 1;
    }
    return 1;
}

/*
 * KeySchedule for mode_base (psk and psk_id empty): fills key, base_nonce
 * and (with want_exporter) exporter_secret of ctx from shared_secret and info.
 */
static int
key_schedule(EVP_MAC_CTX *m, sv_hpke_ctx *ctx, const uint8_t *info, size_t info_len,
             int want_exporter)
{
    uint8_t suite[HPKE_SUITE_LEN];
    uint8_t ksc[1 + 2 * SV_HPKE_HASH_LEN]; /* mode || psk_id_hash || info_hash */
    uint8_t secret[SV_HPKE_HASH_LEN];
    int ok;

    hpke_suite(suite, ctx->aead_id);
    ksc[0] = 0x00; /* mode_base */
    memcpy(ksc + 1, psk_id_hash[ctx->aead_id - 1], SV_HPKE_HASH_LEN);
    ok = info_hash(m, suite, ctx->aead_id, info, info_len, ksc + 1 + SV_HPKE_HASH_LEN)
         && labeled_extract(m, suite, sizeof(suite), ctx->shared_secret, SV_HPKE_HASH_LEN,
                            "secret", NULL, 0, secret)
         && labeled_expand(m, suite, sizeof(suite), secret, "key", ksc, sizeof(ksc),
                           ctx->key, ctx->key_len)
         && labeled_expand(m, suite, sizeof(suite), secret, "base_nonce", ksc, sizeof(ksc),
                           ctx->base_nonce, SV_HPKE_NONCE_LEN)
         && (!want_exporter
             || labeled_expand(m, suite, sizeof(suite), secret, "exp", ksc, sizeof(ksc),
                               ctx->exporter_secret, SV_HPKE_HASH_LEN));
    sv_cleanse(secret, sizeof(secret));
    sv_cleanse(ksc, sizeof(ksc));
    return ok;
}

/* Common argument checks of both setups; fills ctx->aead_id/key_len. */
static sv_status
setup_begin(sv_hpke_ctx *ctx, uint16_t aead_id, const uint8_t *info, size_t info_len)
{
    size_t key_len = 0;

    if ((info == NULL && info_len > 0) || info_len > SV_HPKE_MAX_INFO)
        return SV_ERR_INVAL;
    if (!hpke_ready())
        return SV_ERR_INTERNAL;
    if (aead_cipher(aead_id, &key_len) == NULL)
        return SV_ERR_INVAL;
    ctx->aead_id = aead_id;
    ctx->key_len = key_len;
    return SV_OK;
}

/*
 * SetupBaseS. The ephemeral private key is DeriveKeyPair(ikmE) for the
 * known-answer tests, otherwise 32 bytes from RAND_priv_bytes (X25519 clamps
 * any 32 bytes into a valid scalar; this is what OpenSSL's keygen does).
 */
sv_status
sv_hpke_setup_s(sv_hpke_ctx *ctx, uint16_t aead_id, const uint8_t pkR[SV_X25519_LEN],
                const uint8_t *info, size_t info_len, const uint8_t *ikmE, size_t ikmE_len,
                uint8_t enc[SV_HPKE_ENC_LEN])
{
    uint8_t skE[SV_X25519_LEN], pkE[SV_X25519_LEN], dh[SV_X25519_LEN];
    EVP_PKEY *ek = NULL;
    EVP_PKEY_CTX *dc = NULL;
    EVP_MAC_CTX *m = NULL;
    sv_status st;

    if (ctx == NULL)
        return SV_ERR_INVAL;
    memset(ctx, 0, sizeof(*ctx));
    if (pkR == NULL || enc == NULL || (ikmE == NULL && ikmE_len > 0))
        return SV_ERR_INVAL;
    if ((st = setup_begin(ctx, aead_id, info, info_len)) != SV_OK)
        return st;

    if (ikmE != NULL) {
        if ((st = sv_hpke_derive_keypair(ikmE, ikmE_len, skE, pkE)) != SV_OK)
            goto out;
    } else if (RAND_priv_bytes(skE, sizeof(skE)) != 1) {
        sv_log_openssl(SV_LOG_ERR, "hpke: RAND_priv_bytes");
        st = SV_ERR_INTERNAL;
        goto out;
    }
    st = SV_ERR_INTERNAL;
    if ((ek = x25519_private_for_derive(skE)) == NULL || (dc = x25519_derive_ctx(ek)) == NULL
        || !x25519_public_ladder(dc, pkE)) {
        sv_log_openssl(SV_LOG_ERR, "hpke: ephemeral X25519 key");
        goto out;
    }
    if ((st = x25519_dh(dc, pkR, dh)) != SV_OK)
        goto out; /* SV_ERR_BAD_KEY: pkR is a small-order point */
    st = SV_ERR_INTERNAL;
    if ((m = hmac_new()) == NULL || !kem_shared_secret(m, dh, pkE, pkR, ctx->shared_secret)
        || !key_schedule(m, ctx, info, info_len, 1)) {
        sv_log_openssl(SV_LOG_ERR, "hpke: key schedule");
        goto out;
    }
    memcpy(enc, pkE, SV_HPKE_ENC_LEN);
    ctx->seq = 0;
    ctx->ready = 1;
    st = SV_OK;

out:
    EVP_MAC_CTX_free(m);
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_free(ek);
    sv_cleanse(skE, sizeof(skE));
    sv_cleanse(dh, sizeof(dh));
    if (st != SV_OK)
        sv_hpke_ctx_clear(ctx);
    return st;
}

/*
 * The part of SetupBaseR after the recipient's key is ready: dh =
 * X25519(skR, enc) on dc (skR's derive context), then the key schedule with
 * pkR, skR's public key, in the KEM context. A small-order enc is SV_ERR_OPEN.
 * ctx must have been begun (setup_begin); it is not cleared on failure.
 */
static sv_status
setup_r_dh(sv_hpke_ctx *ctx, EVP_PKEY_CTX *dc, const uint8_t pkR[SV_X25519_LEN],
           const uint8_t enc[SV_HPKE_ENC_LEN], const uint8_t *info, size_t info_len,
           int want_exporter)
{
    uint8_t dh[SV_X25519_LEN];
    EVP_MAC_CTX *m = NULL;
    sv_status st;

    if ((st = x25519_dh(dc, enc, dh)) != SV_OK) {
        if (st == SV_ERR_BAD_KEY)
            st = SV_ERR_OPEN;
        goto out;
    }
    st = SV_ERR_INTERNAL;
    if ((m = hmac_new()) == NULL || !kem_shared_secret(m, dh, enc, pkR, ctx->shared_secret)
        || !key_schedule(m, ctx, info, info_len, want_exporter)) {
        sv_log_openssl(SV_LOG_ERR, "hpke: key schedule");
        goto out;
    }
    ctx->seq = 0;
    ctx->ready = 1;
    st = SV_OK;

out:
    EVP_MAC_CTX_free(m);
    sv_cleanse(dh, sizeof(dh));
    return st;
}

/*
 * SetupBaseR, with the key check of sv_hpke_setup_r_checked when expect_pk is
 * not NULL, and the exporter secret only when want_exporter. One derive
 * context serves both scalar multiplications: pkR = X25519(skR, 9), then
 * dh = X25519(skR, enc). A mismatch is reported only at the end, after the
 * same work.
 */
static sv_status
setup_r(sv_hpke_ctx *ctx, uint16_t aead_id, const uint8_t skR[SV_X25519_LEN],
        const uint8_t *expect_pk, const uint8_t enc[SV_HPKE_ENC_LEN],
        const uint8_t *info, size_t info_len, int want_exporter)
{
    uint8_t pkR[SV_X25519_LEN];
    EVP_PKEY *rk = NULL;
    EVP_PKEY_CTX *dc = NULL;
    int mismatch = 0;
    sv_status st;

    if (ctx == NULL)
        return SV_ERR_INVAL;
    memset(ctx, 0, sizeof(*ctx));
    if (skR == NULL || enc == NULL)
        return SV_ERR_INVAL;
    if ((st = setup_begin(ctx, aead_id, info, info_len)) != SV_OK)
        return st;

    st = SV_ERR_INTERNAL;
    if ((rk = x25519_private_for_derive(skR)) == NULL || (dc = x25519_derive_ctx(rk)) == NULL
        || !x25519_public_ladder(dc, pkR)) {
        sv_log_openssl(SV_LOG_ERR, "hpke: recipient X25519 key");
        goto out;
    }
    mismatch = expect_pk != NULL && CRYPTO_memcmp(pkR, expect_pk, SV_X25519_LEN) != 0;
    if ((st = setup_r_dh(ctx, dc, pkR, enc, info, info_len, want_exporter)) == SV_OK && mismatch)
        st = SV_ERR_KEY_MISMATCH;

out:
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_free(rk);
    sv_cleanse(pkR, sizeof(pkR));
    if (st != SV_OK && st != SV_ERR_KEY_MISMATCH)
        sv_hpke_ctx_clear(ctx);
    return st;
}

/*
 * SetupBaseR. Any failure to derive the context from enc (small-order enc
 * included) is SV_ERR_OPEN; argument errors are SV_ERR_INVAL and library
 * failures SV_ERR_INTERNAL (both logged).
 */
sv_status
sv_hpke_setup_r(sv_hpke_ctx *ctx, uint16_t aead_id, const uint8_t skR[SV_X25519_LEN],
                const uint8_t enc[SV_HPKE_ENC_LEN], const uint8_t *info, size_t info_len)
{
    return setup_r(ctx, aead_id, skR, NULL, enc, info, info_len, 1);
}

/*
 * SetupBaseR after checking that skR's public key (computed with the ladder
 * on the derive context the DH uses) equals expect_pk, when expect_pk is not
 * NULL. SV_ERR_KEY_MISMATCH when it differs (ctx cleared).
 */
sv_status
sv_hpke_setup_r_checked(sv_hpke_ctx *ctx, uint16_t aead_id, const uint8_t skR[SV_X25519_LEN],
                        const uint8_t *expect_pk, const uint8_t enc[SV_HPKE_ENC_LEN],
                        const uint8_t *info, size_t info_len)
{
    sv_status st = setup_r(ctx, aead_id, skR, expect_pk, enc, info, info_len, 1);

    if (st == SV_ERR_KEY_MISMATCH)
        sv_hpke_ctx_clear(ctx);
    return st;
}

/* ---- AEAD ------------------------------------------------------------------ */

/* nonce = base_nonce XOR I2OSP(seq, Nn) */
static void
compute_nonce(const sv_hpke_ctx *ctx, uint8_t nonce[SV_HPKE_NONCE_LEN])
{
    uint64_t seq = ctx->seq;
    int i;

    memcpy(nonce, ctx->base_nonce, SV_HPKE_NONCE_LEN);
    for (i = SV_HPKE_NONCE_LEN - 1; i >= SV_HPKE_NONCE_LEN - 8; i--) {
        nonce[i] ^= (uint8_t)seq;
        seq >>= 8;
    }
}

/* A ready context with a known AEAD whose sequence number can still grow. */
static const EVP_CIPHER *
ctx_cipher(const sv_hpke_ctx *ctx)
{
    size_t key_len = 0;
    const EVP_CIPHER *c;

    if (ctx == NULL || !ctx->ready || !hpke_init_ok)
        return NULL;
    c = aead_cipher(ctx->aead_id, &key_len);
    if (c == NULL || key_len != ctx->key_len)
        return NULL;
    return c;
}

sv_status
sv_hpke_ctx_seal(sv_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len,
                 const uint8_t *pt, size_t pt_len, uint8_t *ct)
{
    uint8_t nonce[SV_HPKE_NONCE_LEN];
    const EVP_CIPHER *cipher = ctx_cipher(ctx);
    EVP_CIPHER_CTX *c = NULL;
    sv_status st = SV_ERR_INVAL;
    int outl = 0, finl = 0;

    if (cipher == NULL || ct == NULL || (aad == NULL && aad_len > 0)
        || aad_len > SV_HPKE_MAX_AAD || (pt == NULL && pt_len > 0) || pt_len > HPKE_MAX_PT)
        return SV_ERR_INVAL;
    /* RFC 9180 5.2: refuse to reuse a nonce once seq would wrap */
    if (ctx->seq == UINT64_MAX) {
        sv_log(SV_LOG_ERR, "hpke: message limit reached for this context");
        return SV_ERR_INVAL;
    }
    compute_nonce(ctx, nonce);

    st = SV_ERR_INTERNAL;
    if ((c = EVP_CIPHER_CTX_new()) == NULL
        || !EVP_EncryptInit_ex2(c, cipher, ctx->key, nonce, NULL))
        goto out;
    if (aad_len > 0 && !EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aad_len))
        goto out;
    outl = 0;
    if (pt_len > 0 && !EVP_EncryptUpdate(c, ct, &outl, pt, (int)pt_len))
        goto out;
    if (!EVP_EncryptFinal_ex(c, ct + outl, &finl) || (size_t)outl + (size_t)finl != pt_len)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, SV_HPKE_TAG_LEN, ct + pt_len) != 1)
        goto out;
    ctx->seq++;
    st = SV_OK;

out:
    if (st != SV_OK) {
        sv_log_openssl(SV_LOG_ERR, "hpke: AEAD seal");
        sv_cleanse(ct, pt_len + SV_HPKE_TAG_LEN);
    }
    EVP_CIPHER_CTX_free(c);
    sv_cleanse(nonce, sizeof(nonce));
    return st;
}

/*
 * ContextR.Open. Every failure, whatever the cause, is SV_ERR_OPEN with pt
 * zeroed (when its length is defined), and seq does not move. The OpenSSL
 * error queue is drained quietly: a forged ciphertext is the sender's
 * problem, not a fault worth an error line from the library.
 */
sv_status
sv_hpke_ctx_open(sv_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len,
                 const uint8_t *ct, size_t ct_len, uint8_t *pt)
{
    uint8_t nonce[SV_HPKE_NONCE_LEN], tag[SV_HPKE_TAG_LEN];
    const EVP_CIPHER *cipher = ctx_cipher(ctx);
    EVP_CIPHER_CTX *c = NULL;
    uint8_t none;
    size_t pt_len;
    int outl = 0, finl = 0, ok = 0;

    if (ct_len < SV_HPKE_TAG_LEN)
        return SV_ERR_OPEN; /* no plaintext length to zero */
    pt_len = ct_len - SV_HPKE_TAG_LEN;
    if (pt == NULL) {
        if (pt_len > 0)
            return SV_ERR_OPEN;
        pt = &none; /* empty plaintext: give EVP somewhere to point */
    }
    if (ct == NULL || cipher == NULL || (aad == NULL && aad_len > 0) || aad_len > SV_HPKE_MAX_AAD
        || pt_len > HPKE_MAX_PT || ctx->seq == UINT64_MAX)
        goto out;
    compute_nonce(ctx, nonce);
    memcpy(tag, ct + pt_len, SV_HPKE_TAG_LEN);

    if ((c = EVP_CIPHER_CTX_new()) == NULL
        || !EVP_DecryptInit_ex2(c, cipher, ctx->key, nonce, NULL))
        goto out;
    if (aad_len > 0 && !EVP_DecryptUpdate(c, NULL, &outl, aad, (int)aad_len))
        goto out;
    outl = 0;
    if (pt_len > 0 && !EVP_DecryptUpdate(c, pt, &outl, ct, (int)pt_len))
        goto out;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, SV_HPKE_TAG_LEN, tag) != 1)
        goto out;
    if (EVP_DecryptFinal_ex(c, pt + outl, &finl) != 1
        || (size_t)outl + (size_t)finl != pt_len)
        goto out;
    ctx->seq++;
    ok = 1;

out:
    if (!ok) {
        sv_cleanse(pt, pt_len);
        sv_log_openssl(SV_LOG_DEBUG, "hpke: open failed");
    }
    EVP_CIPHER_CTX_free(c);
    sv_cleanse(nonce, sizeof(nonce));
    return ok ? SV_OK : SV_ERR_OPEN;
}

/* Export(exporter_context, L) = LabeledExpand(exporter_secret, "sec", ctx, L) */
sv_status
sv_hpke_ctx_export(const sv_hpke_ctx *ctx, const uint8_t *exp_ctx, size_t exp_ctx_len,
                   uint8_t *out, size_t out_len)
{
    uint8_t suite[HPKE_SUITE_LEN];
    EVP_MAC_CTX *m;
    int ok;

    if (ctx == NULL || !ctx->ready || out == NULL || out_len == 0 || out_len > HKDF_MAX_OUT
        || (exp_ctx == NULL && exp_ctx_len > 0) || exp_ctx_len > SV_HPKE_MAX_INFO)
        return SV_ERR_INVAL;
    if (!hpke_ready())
        return SV_ERR_INTERNAL;
    hpke_suite(suite, ctx->aead_id);
    ok = (m = hmac_new()) != NULL
         && labeled_expand(m, suite, sizeof(suite), ctx->exporter_secret, "sec",
                           exp_ctx, exp_ctx_len, out, out_len);
    EVP_MAC_CTX_free(m);
    if (!ok) {
        sv_log_openssl(SV_LOG_ERR, "hpke: export");
        return SV_ERR_INTERNAL;
    }
    return SV_OK;
}

void
sv_hpke_ctx_clear(sv_hpke_ctx *ctx)
{
    if (ctx != NULL)
        sv_cleanse(ctx, sizeof(*ctx));
}

/* ---- single shot ---------------------------------------------------------- */

sv_status
sv_hpke_seal(uint16_t aead_id, const uint8_t pkR[SV_X25519_LEN],
             const uint8_t *info, size_t info_len, const uint8_t *aad, size_t aad_len,
             const uint8_t *pt, size_t pt_len, uint8_t enc[SV_HPKE_ENC_LEN], uint8_t *ct)
{
    sv_hpke_ctx ctx;
    sv_status st;

    if (ct == NULL || enc == NULL || (pt == NULL && pt_len > 0) || pt_len > HPKE_MAX_PT
        || (aad == NULL && aad_len > 0) || aad_len > SV_HPKE_MAX_AAD)
        return SV_ERR_INVAL;
    st = sv_hpke_setup_s(&ctx, aead_id, pkR, info, info_len, NULL, 0, enc);
    if (st == SV_OK)
        st = sv_hpke_ctx_seal(&ctx, aad, aad_len, pt, pt_len, ct);
    sv_hpke_ctx_clear(&ctx);
    if (st != SV_OK)
        sv_cleanse(enc, SV_HPKE_ENC_LEN);
    return st;
}

sv_status
sv_hpke_open(uint16_t aead_id, const uint8_t skR[SV_X25519_LEN],
             const uint8_t *info, size_t info_len, const uint8_t *aad, size_t aad_len,
             const uint8_t enc[SV_HPKE_ENC_LEN], const uint8_t *ct, size_t ct_len, uint8_t *pt)
{
    sv_hpke_ctx ctx;
    sv_status st;

    if (ct_len < SV_HPKE_TAG_LEN || (pt == NULL && ct_len > SV_HPKE_TAG_LEN))
        return SV_ERR_OPEN;
    if (ct == NULL) {
        sv_cleanse(pt, ct_len - SV_HPKE_TAG_LEN);
        return SV_ERR_OPEN;
    }
    st = sv_hpke_setup_r(&ctx, aead_id, skR, enc, info, info_len);
    if (st == SV_OK)
        st = sv_hpke_ctx_open(&ctx, aad, aad_len, ct, ct_len, pt);
    sv_hpke_ctx_clear(&ctx);
    if (st != SV_OK) {
        sv_cleanse(pt, ct_len - SV_HPKE_TAG_LEN);
        return SV_ERR_OPEN;
    }
    return SV_OK;
}

/*
 * Single-shot OpenBase with skR after checking that skR's public key equals
 * expect_pk: two scalar multiplications, no exporter secret. A mismatch still
 * runs the open (result discarded), so it costs what a failed open costs.
 * SV_OK, SV_ERR_KEY_MISMATCH or SV_ERR_OPEN; pt zeroed on failure.
 */
sv_status
sv_hpke_open_checked(uint16_t aead_id, const uint8_t skR[SV_X25519_LEN],
                     const uint8_t expect_pk[SV_X25519_LEN],
                     const uint8_t *info, size_t info_len, const uint8_t *aad, size_t aad_len,
                     const uint8_t enc[SV_HPKE_ENC_LEN], const uint8_t *ct, size_t ct_len,
                     uint8_t *pt)
{
    sv_hpke_ctx ctx;
    sv_status st, ost;

    if (ct_len < SV_HPKE_TAG_LEN || (pt == NULL && ct_len > SV_HPKE_TAG_LEN))
        return SV_ERR_OPEN;
    if (ct == NULL || expect_pk == NULL) {
        sv_cleanse(pt, ct_len - SV_HPKE_TAG_LEN);
        return SV_ERR_OPEN;
    }
    st = setup_r(&ctx, aead_id, skR, expect_pk, enc, info, info_len, 0);
    if (st == SV_OK || st == SV_ERR_KEY_MISMATCH) {
        ost = sv_hpke_ctx_open(&ctx, aad, aad_len, ct, ct_len, pt);
        if (st == SV_OK && ost != SV_OK)
            st = SV_ERR_OPEN;
    }
    sv_hpke_ctx_clear(&ctx);
    if (st != SV_OK) {
        sv_cleanse(pt, ct_len - SV_HPKE_TAG_LEN);
        return st == SV_ERR_KEY_MISMATCH ? SV_ERR_KEY_MISMATCH : SV_ERR_OPEN;
    }
    return SV_OK;
}

/* ---- a recipient key for many opens ---------------------------------------- */

struct sv_hpke_recipient {
    EVP_PKEY *key;               /* skR, in OpenSSL's (secure) heap */
    EVP_PKEY_CTX *dc;            /* its derive context */
    uint8_t pk[SV_X25519_LEN];   /* X25519(skR, 9) */
};

sv_status
sv_hpke_recipient_new(const uint8_t skR[SV_X25519_LEN], sv_hpke_recipient **out)
{
    sv_hpke_recipient *r;

    if (out == NULL)
        return SV_ERR_INVAL;
    *out = NULL;
    if (skR == NULL)
        return SV_ERR_INVAL;
    if (!hpke_ready())
        return SV_ERR_INTERNAL;
    if ((r = OPENSSL_zalloc(sizeof(*r))) == NULL)
        return SV_ERR_NOMEM;
    if ((r->key = x25519_private_for_derive(skR)) == NULL
        || (r->dc = x25519_derive_ctx(r->key)) == NULL || !x25519_public_ladder(r->dc, r->pk)) {
        sv_log_openssl(SV_LOG_ERR, "hpke: recipient X25519 key");
        sv_hpke_recipient_free(r);
        return SV_ERR_INTERNAL;
    }
    *out = r;
    return SV_OK;
}

void
sv_hpke_recipient_free(sv_hpke_recipient *r)
{
    if (r == NULL)
        return;
    EVP_PKEY_CTX_free(r->dc);
    EVP_PKEY_free(r->key);
    OPENSSL_clear_free(r, sizeof(*r));
}

const uint8_t *
sv_hpke_recipient_public(const sv_hpke_recipient *r)
{
    return r->pk;
}

sv_status
sv_hpke_open_recipient(sv_hpke_recipient *r, uint16_t aead_id,
                       const uint8_t *info, size_t info_len, const uint8_t *aad, size_t aad_len,
                       const uint8_t enc[SV_HPKE_ENC_LEN], const uint8_t *ct, size_t ct_len,
                       uint8_t *pt)
{
    sv_hpke_ctx ctx;
    sv_status st;

    if (ct_len < SV_HPKE_TAG_LEN || (pt == NULL && ct_len > SV_HPKE_TAG_LEN))
        return SV_ERR_OPEN;
    memset(&ctx, 0, sizeof(ctx));
    st = SV_ERR_OPEN;
    if (r != NULL && ct != NULL && enc != NULL
        && setup_begin(&ctx, aead_id, info, info_len) == SV_OK
        && setup_r_dh(&ctx, r->dc, r->pk, enc, info, info_len, 0) == SV_OK)
        st = sv_hpke_ctx_open(&ctx, aad, aad_len, ct, ct_len, pt);
    sv_hpke_ctx_clear(&ctx);
    if (st != SV_OK) {
        sv_cleanse(pt, ct_len - SV_HPKE_TAG_LEN);
        return SV_ERR_OPEN;
    }
    return SV_OK;
}
