/*
 * sv_share.c - key1 under dual control: k-of-n Shamir shares (libgfshare),
 * each sealed under its holder's passphrase (scrypt, AES-256-GCM). See
 * sv_share.h for the calls and docs/format.md for the share file.
 *
 * Built as lib/libsv_share.la, apart from the core library, so that only
 * the programs that split or assemble key1 (splitvault-admin, the module)
 * link libgfshare.
 *
 * libgfshare's random source is a global callback (gfshare_fill_rand) that
 * returns nothing. Ours draws from RAND_priv_bytes; when that fails it
 * zeroes what it was asked to fill and raises a per-thread flag, which
 * every split checks after the coefficients are drawn: a failed generator
 * makes the split fail, never yield shares whose coefficients are zero
 * (each share would then be key1 itself). The callback is one global of the
 * process, so every split and combination holds a mutex throughout, sets
 * the callback to ours and checks it before and after the draws: other
 * code that points it elsewhere cannot supply the coefficients.
 *
 * libgfshare keeps copies of the secret, the coefficients and the shares in
 * buffers it malloc()s. Its gfshare_ctx_free overwrites them with the
 * random callback, which may fail; so before every free we overwrite them
 * ourselves through its API: an encoder is given an all-zero secret (which
 * also redraws the coefficients), a decoder an all-zero share at every
 * index. Interpolation in libgfshare uses log/exp tables indexed by share
 * bytes: it is not constant time. It runs only on an admin's machine and
 * when the module assembles key1 from uploaded shares, never per request.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libgfshare.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "sv_hex.h"
#include "sv_log.h"
#include "sv_secret.h"
#include "sv_share.h"

#define BEGIN_TEXT "-----BEGIN SPLITVAULT KEY1 SHARE-----"
#define BEGIN_LINE BEGIN_TEXT "\n"
#define END_LINE "-----END SPLITVAULT KEY1 SHARE-----"

#define SALT_LEN 16
#define NONCE_LEN 12
#define TAG_LEN 16
#define AEAD_KEY_LEN 32
#define SEALED_LEN (SV_SHARE_SECRET_LEN + TAG_LEN)
#define B64_COLS 64

/* what writers use: 32 MiB, under a second */
#define SCRYPT_N_WRITE (1UL << 15)
#define SCRYPT_R_WRITE 8
#define SCRYPT_P_WRITE 1

/* ------------------------------------------------------------------ */
/* libgfshare's random source                                          */

static __thread int rng_failed;
/* held across every split: libgfshare's random callback is one global of
 * the process, which other code could point elsewhere meanwhile */
static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;

#ifdef SV_TEST_HOOKS
/* test builds: while set, the filler takes RAND_priv_bytes as failed */
int sv_share_test_rng_fail;
#endif

static void
fill_rand(unsigned char *buf, unsigned int len)
{
    int ok;

    if (len == 0)
        return;
    ok = len <= INT_MAX && RAND_priv_bytes(buf, (int)len) == 1;
#ifdef SV_TEST_HOOKS
    if (sv_share_test_rng_fail)
        ok = 0;
#endif
    if (!ok) {
        OPENSSL_cleanse(buf, len);
        rng_failed = 1;
    }
}

/* Take the lock and (re)install our filler: whatever set gfshare_fill_rand
 * since the last split, this one draws from RAND_priv_bytes. 0 when the
 * lock cannot be taken or the filler does not hold (nothing taken). */
static int
rng_begin(void)
{
    if (pthread_mutex_lock(&rng_lock) != 0) {
        sv_log(SV_LOG_ERR, "share: cannot lock libgfshare's random source");
        return 0;
    }
    gfshare_fill_rand = fill_rand;
    if (gfshare_fill_rand != fill_rand) {
        pthread_mutex_unlock(&rng_lock);
        sv_log(SV_LOG_ERR, "share: libgfshare's random source cannot be set");
        return 0;
    }
    rng_failed = 0;
    return 1;
}

/* After the draws, still under the lock: did every one succeed, through
 * our filler? */
static int
rng_ok(void)
{
    return !rng_failed && gfshare_fill_rand == fill_rand;
}

static void
rng_end(void)
{
    pthread_mutex_unlock(&rng_lock);
}

/* ------------------------------------------------------------------ */
/* small checks                                                        */

static int
is_lower_hex(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int
sv_share_holder_ok(const char *h, size_t n)
{
    size_t i;

    if (n < 1 || n > SV_SHARE_HOLDER_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = h[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '@' || c == '-'))
            return 0;
    }
    return 1;
}

static int
kn_ok(unsigned k, unsigned n)
{
    return k >= 2 && k <= SV_SHARE_MAX_K && n >= k && n <= SV_SHARE_MAX_N;
}

/* headers that sv_share_seal writes and sv_share_peek accepts */
static int
headers_ok(const sv_share *s)
{
    size_t hl = strnlen(s->holder, sizeof(s->holder));

    return strnlen(s->fp, sizeof(s->fp)) == SV_FINGERPRINT_HEX_LEN
           && is_lower_hex(s->fp, SV_FINGERPRINT_HEX_LEN) && kn_ok(s->k, s->n)
           && s->index >= 1 && s->index <= s->n && hl <= SV_SHARE_HOLDER_MAX
           && (hl == 0 || sv_share_holder_ok(s->holder, hl));
}

/* The scrypt cost a share file names, against the key1 files' caps
 * (sv_keyfile.h): N a power of two in 2..2^20, r <= 32, p <= 16, and
 * the 128 * r * N bytes of scrypt's table within
 * SV_KEYFILE_SCRYPT_MEM_MAX (we call scrypt ourselves, with a limit that
 * leaves room for the p blocks beside it), and N < 2^(16 r), which scrypt
 * itself requires. */
static int
scrypt_ok(uint64_t n, uint64_t r, uint64_t p)
{
    return n >= 2 && n <= SV_KEYFILE_SCRYPT_N_MAX && (n & (n - 1)) == 0 && r >= 1
           && r <= SV_KEYFILE_SCRYPT_R_MAX && p >= 1 && p <= SV_KEYFILE_SCRYPT_P_MAX
           && 128 * r * n <= SV_KEYFILE_SCRYPT_MEM_MAX && (r >= 2 || n < (1UL << 16));
}

static sv_status
derive(const char *pass, size_t pass_len, const uint8_t salt[SALT_LEN], uint64_t n,
       uint64_t r, uint64_t p, uint8_t key[AEAD_KEY_LEN])
{
    uint64_t maxmem = 128 * r * (n + p + 2) + 4096;

    if (EVP_PBE_scrypt(pass, pass_len, salt, SALT_LEN, n, r, p, maxmem, key,
                       AEAD_KEY_LEN) != 1) {
        sv_cleanse(key, AEAD_KEY_LEN);
        sv_log_openssl(SV_LOG_ERR, "share: scrypt");
        return SV_ERR_INTERNAL;
    }
    return SV_OK;
}

/* ------------------------------------------------------------------ */
/* key1 as PKCS#8 DER                                                  */

/* The PKCS#8 PrivateKeyInfo DER of the X25519 key sk, exactly
 * SV_SHARE_SECRET_LEN bytes, into der. */
static sv_status
sk_to_der(const uint8_t sk[SV_X25519_LEN], uint8_t der[SV_SHARE_SECRET_LEN],
          uint8_t pk_out[SV_X25519_LEN])
{
    EVP_PKEY *k = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    unsigned char *p = der;
    size_t pkl = SV_X25519_LEN;
    int len;
    sv_status st = SV_ERR_INTERNAL;

    if ((k = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, sk, SV_X25519_LEN)) == NULL
        || EVP_PKEY_get_raw_public_key(k, pk_out, &pkl) != 1 || pkl != SV_X25519_LEN
        || (p8 = EVP_PKEY2PKCS8(k)) == NULL)
        goto out;
    if ((len = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL)) != SV_SHARE_SECRET_LEN) {
        sv_log(SV_LOG_ERR, "share: X25519 PKCS#8 is %d bytes, not %d", len,
               SV_SHARE_SECRET_LEN);
        goto out;
    }
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != SV_SHARE_SECRET_LEN)
        goto out;
    st = SV_OK;

out:
    if (st != SV_OK) {
        sv_cleanse(der, SV_SHARE_SECRET_LEN);
        sv_cleanse(pk_out, SV_X25519_LEN);
        sv_log_openssl(SV_LOG_ERR, "share: encoding key1 as PKCS#8");
    }
    PKCS8_PRIV_KEY_INFO_free(p8); /* cleanses the key octets */
    EVP_PKEY_free(k);
    return st;
}

/* The X25519 key of a combined PKCS#8 DER: SV_ERR_KEY_MISMATCH unless it
 * is one, in exactly the encoding sk_to_der gives. */
static sv_status
der_to_sk(const uint8_t der[SV_SHARE_SECRET_LEN], uint8_t sk[SV_X25519_LEN],
          uint8_t pk[SV_X25519_LEN])
{
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    const ASN1_OBJECT *alg = NULL;
    const unsigned char *p = der;
    EVP_PKEY *k = NULL;
    uint8_t again[SV_SHARE_SECRET_LEN], pk2[SV_X25519_LEN];
    size_t skl = SV_X25519_LEN, pkl = SV_X25519_LEN;
    sv_status st = SV_ERR_KEY_MISMATCH;

    if ((p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, SV_SHARE_SECRET_LEN)) == NULL
        || p != der + SV_SHARE_SECRET_LEN || !PKCS8_pkey_get0(&alg, NULL, NULL, NULL, p8)
        || OBJ_obj2nid(alg) != NID_X25519 || (k = EVP_PKCS82PKEY(p8)) == NULL
        || !EVP_PKEY_is_a(k, "X25519")
        || EVP_PKEY_get_raw_private_key(k, sk, &skl) != 1 || skl != SV_X25519_LEN
        || EVP_PKEY_get_raw_public_key(k, pk, &pkl) != 1 || pkl != SV_X25519_LEN)
        goto out;
    /* one encoding only: what sk_to_der (and openssl pkey) writes */
    if (sk_to_der(sk, again, pk2) != SV_OK
        || CRYPTO_memcmp(again, der, SV_SHARE_SECRET_LEN) != 0)
        goto out;
    st = SV_OK;

out:
    if (st != SV_OK) {
        sv_cleanse(sk, SV_X25519_LEN);
        sv_cleanse(pk, SV_X25519_LEN);
        sv_log_openssl(SV_LOG_DEBUG, "share: the combined shares are not an X25519 key");
    }
    sv_cleanse(again, sizeof(again));
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(k);
    return st;
}

/* ------------------------------------------------------------------ */
/* split and combine                                                   */

sv_status
sv_share_split(const uint8_t sk[SV_X25519_LEN], const uint8_t pk[SV_X25519_LEN],
               unsigned k, unsigned n, sv_share *out)
{
    uint8_t der[SV_SHARE_SECRET_LEN], zero[SV_SHARE_SECRET_LEN], pk2[SV_X25519_LEN];
    uint8_t split[SV_SHARE_SPLIT_LEN];
    unsigned char nrs[SV_SHARE_MAX_N];
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    gfshare_ctx *g = NULL;
    unsigned i;
    int locked = 0;
    sv_status st;

    if (out == NULL)
        return SV_ERR_INVAL;
    if (sk == NULL || pk == NULL || !kn_ok(k, n))
        return SV_ERR_INVAL;
    memset(zero, 0, sizeof(zero));
    for (i = 0; i < n; i++)
        sv_share_wipe(&out[i]);

    if ((st = sk_to_der(sk, der, pk2)) != SV_OK)
        goto out;
    if (CRYPTO_memcmp(pk2, pk, SV_X25519_LEN) != 0) {
        st = SV_ERR_KEY_MISMATCH;
        goto out;
    }
    if ((st = sv_key1_fingerprint(pk, fp)) != SV_OK)
        goto out;
    if (RAND_bytes(split, sizeof(split)) != 1) {
        sv_log_openssl(SV_LOG_ERR, "share: random split id");
        st = SV_ERR_INTERNAL;
        goto out;
    }
    for (i = 0; i < n; i++)
        nrs[i] = (unsigned char)(i + 1);
    st = SV_ERR_INTERNAL;
    if (!(locked = rng_begin()))
        goto out;
    if ((g = gfshare_ctx_init_enc(nrs, n, (unsigned char)k, SV_SHARE_SECRET_LEN)) == NULL) {
        sv_log(SV_LOG_ERR, "share: libgfshare cannot set up a split");
        st = SV_ERR_NOMEM;
        goto out;
    }
    gfshare_ctx_enc_setsecret(g, der); /* draws the k-1 coefficients */
    if (!rng_ok()) {
        sv_log(SV_LOG_ERR, "share: the random generator failed; no share made");
        goto out;
    }
    for (i = 0; i < n; i++) {
        gfshare_ctx_enc_getshare(g, (unsigned char)i, out[i].share);
        memcpy(out[i].fp, fp, sizeof(fp));
        memcpy(out[i].split, split, sizeof(split));
        out[i].index = i + 1;
        out[i].k = k;
        out[i].n = n;
        out[i].holder[0] = '\0';
    }
    st = SV_OK;

out:
    if (g != NULL) {
        /* overwrite libgfshare's copy of the secret and its coefficients */
        gfshare_ctx_enc_setsecret(g, zero);
        gfshare_ctx_free(g);
    }
    if (locked)
        rng_end();
    sv_cleanse(der, sizeof(der));
    if (st != SV_OK)
        for (i = 0; i < n; i++)
            sv_share_wipe(&out[i]);
    return st;
}

sv_status
sv_share_combine(const sv_share *const *shares, unsigned count, uint8_t sk[SV_X25519_LEN],
                 uint8_t pk[SV_X25519_LEN])
{
    uint8_t der[SV_SHARE_SECRET_LEN], zero[SV_SHARE_SECRET_LEN];
    unsigned char nrs[SV_SHARE_MAX_N];
    unsigned char seen[256];
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    gfshare_ctx *g = NULL;
    const sv_share *a;
    unsigned i;
    int locked = 0;
    sv_status st = SV_ERR_INVAL;

    if (sk == NULL || pk == NULL)
        return SV_ERR_INVAL;
    sv_cleanse(sk, SV_X25519_LEN);
    sv_cleanse(pk, SV_X25519_LEN);
    memset(zero, 0, sizeof(zero));
    memset(der, 0, sizeof(der));
    if (shares == NULL || count == 0 || shares[0] == NULL)
        return SV_ERR_INVAL;
    a = shares[0];
    if (!headers_ok(a))
        return SV_ERR_INVAL;

    /* one key, one split, distinct indexes */
    memset(seen, 0, sizeof(seen));
    for (i = 0; i < count; i++) {
        const sv_share *s = shares[i];

        if (s == NULL || !headers_ok(s))
            return SV_ERR_INVAL;
        if (strcmp(s->fp, a->fp) != 0 || memcmp(s->split, a->split, SV_SHARE_SPLIT_LEN) != 0
            || s->k != a->k || s->n != a->n || seen[s->index])
            return SV_ERR_SHARE_MIX;
        seen[s->index] = 1;
    }
    if (count < a->k)
        return SV_ERR_SHARE_FEW;
    /* distinct indexes within 1..n: count <= n <= SV_SHARE_MAX_N */
    for (i = 0; i < count; i++)
        nrs[i] = (unsigned char)shares[i]->index;

    st = SV_ERR_INTERNAL;
    if (!(locked = rng_begin()))
        goto out;
    if ((g = gfshare_ctx_init_dec(nrs, count, SV_SHARE_SECRET_LEN)) == NULL) {
        sv_log(SV_LOG_ERR, "share: libgfshare cannot set up a combination");
        st = SV_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < count; i++)
        gfshare_ctx_dec_giveshare(g, (unsigned char)i, (unsigned char *)shares[i]->share);
    gfshare_ctx_dec_extract(g, der);

    if ((st = der_to_sk(der, sk, pk)) != SV_OK)
        goto out;
    if ((st = sv_key1_fingerprint(pk, fp)) != SV_OK)
        goto out;
    if (strcmp(fp, a->fp) != 0) {
        sv_log(SV_LOG_DEBUG, "share: the combined key is not the key the shares name");
        st = SV_ERR_KEY_MISMATCH;
        goto out;
    }
    st = SV_OK;

out:
    if (g != NULL) {
        /* overwrite libgfshare's copies of the shares */
        for (i = 0; i < count; i++)
            gfshare_ctx_dec_giveshare(g, (unsigned char)i, zero);
        gfshare_ctx_free(g);
    }
    if (locked)
        rng_end();
    sv_cleanse(der, sizeof(der));
    if (st != SV_OK) {
        sv_cleanse(sk, SV_X25519_LEN);
        sv_cleanse(pk, SV_X25519_LEN);
    }
    return st;
}

void
sv_share_wipe(sv_share *s)
{
    if (s != NULL)
        sv_cleanse(s, sizeof(*s));
}

/* ------------------------------------------------------------------ */
/* the share file                                                      */

/* the AEAD, one direction; in is SV_SHARE_SECRET_LEN bytes, sealed is
 * SEALED_LEN (ciphertext then tag) */
static sv_status
aead(int enc, const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[NONCE_LEN],
     const char *aad, size_t aad_len, uint8_t *plain, uint8_t *sealed)
{
    EVP_CIPHER_CTX *c = NULL;
    uint8_t tmp[SV_SHARE_SECRET_LEN];
    int len = 0, fin = 0;
    sv_status st = SV_ERR_INTERNAL;

    if (aad_len > INT_MAX || (c = EVP_CIPHER_CTX_new()) == NULL
        || EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1
        || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1
        || EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1
        || EVP_CipherUpdate(c, NULL, &len, (const unsigned char *)aad, (int)aad_len) != 1)
        goto out;
    if (enc) {
        if (EVP_CipherUpdate(c, sealed, &len, plain, SV_SHARE_SECRET_LEN) != 1
            || len != SV_SHARE_SECRET_LEN || EVP_CipherFinal_ex(c, sealed + len, &fin) != 1
            || fin != 0
            || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
                                   sealed + SV_SHARE_SECRET_LEN) != 1)
            goto out;
    } else {
        if (EVP_CipherUpdate(c, tmp, &len, sealed, SV_SHARE_SECRET_LEN) != 1
            || len != SV_SHARE_SECRET_LEN
            || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
                                   sealed + SV_SHARE_SECRET_LEN) != 1)
            goto out;
        if (EVP_CipherFinal_ex(c, tmp + len, &fin) != 1) {
            st = SV_ERR_SHARE_OPEN; /* the tag: wrong passphrase or altered file */
            goto out;
        }
        memcpy(plain, tmp, SV_SHARE_SECRET_LEN);
    }
    st = SV_OK;

out:
    if (st == SV_ERR_INTERNAL)
        sv_log_openssl(SV_LOG_ERR, "share: AES-256-GCM");
    else
        ERR_clear_error();
    sv_cleanse(tmp, sizeof(tmp));
    EVP_CIPHER_CTX_free(c);
    return st;
}

sv_status
sv_share_seal(const sv_share *s, const char *pass, size_t pass_len, char **text,
              size_t *text_len)
{
    uint8_t salt[SALT_LEN], nonce[NONCE_LEN], key[AEAD_KEY_LEN], sealed[SEALED_LEN];
    uint8_t plain[SV_SHARE_SECRET_LEN];
    char salt_hex[2 * SALT_LEN + 1], nonce_hex[2 * NONCE_LEN + 1];
    char split_hex[2 * SV_SHARE_SPLIT_LEN + 1], holder[SV_SHARE_HOLDER_MAX + 16];
    char b64[((SEALED_LEN + 2) / 3) * 4 + 1];
    char *t = NULL;
    const char *aad;
    size_t b64_len, off, i;
    int hl, m;
    sv_status st = SV_ERR_INVAL;

    if (text == NULL || text_len == NULL)
        return SV_ERR_INVAL;
    *text = NULL;
    *text_len = 0;
    if (s == NULL || pass == NULL || pass_len == 0 || !headers_ok(s))
        return SV_ERR_INVAL;

    if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1) {
        sv_log_openssl(SV_LOG_ERR, "share: random salt and nonce");
        return SV_ERR_INTERNAL;
    }
    sv_hex_encode(salt, sizeof(salt), salt_hex);
    sv_hex_encode(nonce, sizeof(nonce), nonce_hex);
    sv_hex_encode(s->split, sizeof(s->split), split_hex);
    if (s->holder[0] != '\0')
        snprintf(holder, sizeof(holder), "Holder: %s\n", s->holder);
    else
        holder[0] = '\0';

    if ((t = malloc(SV_SHARE_FILE_MAX + 1)) == NULL)
        return SV_ERR_NOMEM;
    hl = snprintf(t, SV_SHARE_FILE_MAX + 1,
                  BEGIN_LINE "Key1: %s\nSplit: %s\nShare: %u\nThreshold: %u\nCount: %u\n%s"
                             "KDF: scrypt N=%lu r=%d p=%d\nSalt: %s\nNonce: %s\n",
                  s->fp, split_hex, s->index, s->k, s->n, holder, SCRYPT_N_WRITE,
                  SCRYPT_R_WRITE, SCRYPT_P_WRITE, salt_hex, nonce_hex);
    if (hl <= 0 || hl > SV_SHARE_FILE_MAX / 2) {
        st = SV_ERR_INTERNAL;
        goto out;
    }
    aad = t + strlen(BEGIN_LINE);
    memcpy(plain, s->share, sizeof(plain));
    if ((st = derive(pass, pass_len, salt, SCRYPT_N_WRITE, SCRYPT_R_WRITE, SCRYPT_P_WRITE,
                     key)) != SV_OK
        || (st = aead(1, key, nonce, aad, (size_t)hl - strlen(BEGIN_LINE), plain, sealed))
               != SV_OK)
        goto out;
    b64_len = (size_t)EVP_EncodeBlock((unsigned char *)b64, sealed, SEALED_LEN);

    off = (size_t)hl;
    t[off++] = '\n';
    for (i = 0; i < b64_len; i += B64_COLS) {
        size_t n = b64_len - i < B64_COLS ? b64_len - i : B64_COLS;

        memcpy(t + off, b64 + i, n);
        off += n;
        t[off++] = '\n';
    }
    m = snprintf(t + off, SV_SHARE_FILE_MAX + 1 - off, "%s\n", END_LINE);
    if (m <= 0 || off + (size_t)m > SV_SHARE_FILE_MAX) {
        st = SV_ERR_INTERNAL;
        goto out;
    }
    *text = t;
    *text_len = off + (size_t)m;
    t = NULL;
    st = SV_OK;

out:
    sv_cleanse(key, sizeof(key));
    sv_cleanse(plain, sizeof(plain));
    free(t);
    return st;
}

/* ------------------------------------------------------------------ */
/* parsing: strict, bounded, no allocation                             */

struct cursor {
    const char *p, *end;
};

/* The next line, which must start with prefix; *val and *val_len are
 * what follows prefix up to the "\n" (not included). */
static int
line(struct cursor *c, const char *prefix, const char **val, size_t *val_len)
{
    size_t pl = strlen(prefix);
    const char *nl;

    if ((size_t)(c->end - c->p) < pl || memcmp(c->p, prefix, pl) != 0)
        return 0;
    if ((nl = memchr(c->p + pl, '\n', (size_t)(c->end - c->p - pl))) == NULL)
        return 0;
    *val = c->p + pl;
    *val_len = (size_t)(nl - *val);
    c->p = nl + 1;
    return 1;
}

/* A decimal without sign or leading zero, at most 10 digits, into *v. */
static int
decimal(const char *s, size_t n, uint64_t *v)
{
    size_t i;

    *v = 0;
    if (n < 1 || n > 10 || (n > 1 && s[0] == '0'))
        return 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *v = *v * 10 + (uint64_t)(s[i] - '0');
    }
    return 1;
}

/* "N=<n> r=<r> p=<p>" */
static int
kdf_params(const char *s, size_t n, uint64_t *pn, uint64_t *pr, uint64_t *pp)
{
    static const char *const key[3] = { "N=", "r=", "p=" };
    uint64_t *dst[3] = { pn, pr, pp };
    const char *end = s + n, *sp;
    int i;

    for (i = 0; i < 3; i++) {
        if ((size_t)(end - s) < 2 || memcmp(s, key[i], 2) != 0)
            return 0;
        s += 2;
        sp = i < 2 ? memchr(s, ' ', (size_t)(end - s)) : end;
        if (sp == NULL || !decimal(s, (size_t)(sp - s), dst[i]))
            return 0;
        s = i < 2 ? sp + 1 : sp;
    }
    return s == end;
}

struct parsed {
    uint64_t kdf_n, kdf_r, kdf_p;
    uint8_t salt[SALT_LEN], nonce[NONCE_LEN];
    const char *aad;
    size_t aad_len;
    uint8_t sealed[SEALED_LEN];
};

static sv_status
parse(const char *text, size_t text_len, sv_share *out, struct parsed *ps)
{
    struct cursor c;
    const char *v, *b64;
    size_t vl, b64_len = 0;
    uint64_t idx, k, n;
    char joined[((SEALED_LEN + 2) / 3) * 4 + 1], again[sizeof(joined)];
    unsigned char raw[sizeof(joined)];
    sv_status st = SV_ERR_SHARE_FORMAT;

    memset(out, 0, sizeof(*out));
    memset(ps, 0, sizeof(*ps));
    if (text == NULL || text_len == 0 || text_len > SV_SHARE_FILE_MAX)
        return SV_ERR_SHARE_FORMAT;
    if (memchr(text, '\0', text_len) != NULL)
        return SV_ERR_SHARE_FORMAT;
    c.p = text;
    c.end = text + text_len;

    if (!line(&c, BEGIN_TEXT, &v, &vl) || vl != 0)
        goto out;
    ps->aad = c.p;
    if (!line(&c, "Key1: ", &v, &vl) || vl != SV_FINGERPRINT_HEX_LEN || !is_lower_hex(v, vl))
        goto out;
    memcpy(out->fp, v, vl);
    out->fp[vl] = '\0';
    if (!line(&c, "Split: ", &v, &vl) || vl != 2 * SV_SHARE_SPLIT_LEN || !is_lower_hex(v, vl)
        || sv_hex_decode(v, vl, out->split, SV_SHARE_SPLIT_LEN) != SV_OK)
        goto out;
    if (!line(&c, "Share: ", &v, &vl) || !decimal(v, vl, &idx))
        goto out;
    if (!line(&c, "Threshold: ", &v, &vl) || !decimal(v, vl, &k))
        goto out;
    if (!line(&c, "Count: ", &v, &vl) || !decimal(v, vl, &n))
        goto out;
    /* bounded before they are narrowed to unsigned */
    if (k > SV_SHARE_MAX_K || n > SV_SHARE_MAX_N || !kn_ok((unsigned)k, (unsigned)n)
        || idx < 1 || idx > n)
        goto out;
    out->index = (unsigned)idx;
    out->k = (unsigned)k;
    out->n = (unsigned)n;
    if (line(&c, "Holder: ", &v, &vl)) {
        if (!sv_share_holder_ok(v, vl))
            goto out;
        memcpy(out->holder, v, vl);
        out->holder[vl] = '\0';
    }
    if (!line(&c, "KDF: scrypt ", &v, &vl)
        || !kdf_params(v, vl, &ps->kdf_n, &ps->kdf_r, &ps->kdf_p))
        goto out;
    if (!line(&c, "Salt: ", &v, &vl) || vl != 2 * SALT_LEN || !is_lower_hex(v, vl)
        || sv_hex_decode(v, vl, ps->salt, SALT_LEN) != SV_OK)
        goto out;
    if (!line(&c, "Nonce: ", &v, &vl) || vl != 2 * NONCE_LEN || !is_lower_hex(v, vl)
        || sv_hex_decode(v, vl, ps->nonce, NONCE_LEN) != SV_OK)
        goto out;
    ps->aad_len = (size_t)(c.p - ps->aad);
    if (!line(&c, "", &v, &vl) || vl != 0)
        goto out;

    /* base64 lines of B64_COLS, the last one shorter or as long */
    while (c.p < c.end && *c.p != '-') {
        if (!line(&c, "", &b64, &vl) || vl == 0 || vl > B64_COLS
            || b64_len + vl > sizeof(joined) - 1)
            goto out;
        memcpy(joined + b64_len, b64, vl);
        b64_len += vl;
        if (vl < B64_COLS)
            break;
    }
    joined[b64_len] = '\0';
    /* the END line, then at most its "\n" */
    vl = strlen(END_LINE);
    if ((size_t)(c.end - c.p) < vl || memcmp(c.p, END_LINE, vl) != 0)
        goto out;
    c.p += vl;
    if (c.p != c.end && !(c.end - c.p == 1 && *c.p == '\n'))
        goto out;

    /* exactly the canonical base64 of SEALED_LEN bytes */
    if (b64_len != sizeof(joined) - 1
        || EVP_DecodeBlock(raw, (const unsigned char *)joined, (int)b64_len)
               != (int)(sizeof(joined) - 1) / 4 * 3)
        goto out;
    memcpy(ps->sealed, raw, SEALED_LEN);
    if (EVP_EncodeBlock((unsigned char *)again, ps->sealed, SEALED_LEN) != (int)b64_len
        || memcmp(again, joined, b64_len) != 0)
        goto out;

    /* what combine and seal require of every share, checked once more */
    if (!headers_ok(out))
        goto out;
    if (!scrypt_ok(ps->kdf_n, ps->kdf_r, ps->kdf_p)) {
        sv_log(SV_LOG_DEBUG, "share: scrypt cost over the caps of key1 files");
        st = SV_ERR_KEY_KDF;
        goto out;
    }
    st = SV_OK;

out:
    if (st != SV_OK) {
        sv_share_wipe(out);
        memset(ps, 0, sizeof(*ps));
    }
    return st;
}

sv_status
sv_share_peek(const char *text, size_t text_len, sv_share *out)
{
    struct parsed ps;

    if (out == NULL)
        return SV_ERR_INVAL;
    return parse(text, text_len, out, &ps);
}

sv_status
sv_share_open(const char *text, size_t text_len, const char *pass, size_t pass_len,
              sv_share *out)
{
    struct parsed ps;
    uint8_t key[AEAD_KEY_LEN];
    sv_status st;

    if (out == NULL)
        return SV_ERR_INVAL;
    if ((st = parse(text, text_len, out, &ps)) != SV_OK)
        return st;
    if (pass == NULL) {
        sv_share_wipe(out);
        return SV_ERR_INVAL;
    }
    if ((st = derive(pass, pass_len, ps.salt, ps.kdf_n, ps.kdf_r, ps.kdf_p, key)) == SV_OK)
        st = aead(0, key, ps.nonce, ps.aad, ps.aad_len, out->share, ps.sealed);
    sv_cleanse(key, sizeof(key));
    if (st != SV_OK)
        sv_share_wipe(out);
    return st;
}
