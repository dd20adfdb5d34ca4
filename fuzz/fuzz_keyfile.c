/*
 * fuzz_keyfile.c - libFuzzer target for the key1 file loaders
 * (sv_key1_private_from_pem, sv_key1_public_from_pem).
 *
 * Input layout (the first byte picks what the rest is):
 *
 *   mode = byte0 & 3
 *   0  rest is given to the public loader
 *   1  rest is given to the private loader without a passphrase
 *   2  byte1 = p; the next p bytes are a passphrase, the rest is given to
 *      the private loader with it
 *   3  template: byte1 picks a PEM text made in memory at start-up from a
 *      fixed X25519 key (0 plain PKCS#8 private, 1 encrypted PKCS#8 private,
 *      2 SPKI public, 3 encrypted with PBKDF2 of 2^31-1 iterations, far
 *      over the cap, so that few patches bring it under, 4 encrypted with
 *      scrypt p one over its cap); bytes 2-3 (big-endian,
 *      0 = none) cut the text to that length; the rest is a list of 3-byte
 *      patches {u16 offset (taken modulo the length), u8 value}. Byte0 bit 2
 *      set gives the encrypted templates a wrong passphrase, bit 3 none.
 *
 * Templates 3 and 4 are made from their parameters, without deriving
 * anything (their "ciphertext" is arbitrary): the loader must refuse them
 * before it derives, or the start-up check would take seconds and a
 * mutation that raised a cost further could hang the target.
 *
 * Private-key texts are never stored in the corpus (the tree holds no
 * private key, not even a test one): mode 3 builds them from the fixed raw
 * key here, and fuzz/keyfile-seeds.sh makes mode 1 and 2 seeds with the
 * openssl tool into a temporary directory at run time.
 *
 * Oracles, each an abort: a status outside the documented set; outputs not
 * zeroed on failure; a private key whose public half is not the returned
 * public key; a public key that does not survive sv_key1_public_to_pem and
 * back; input over SV_KEYFILE_MAX not reported as SV_ERR_KEY_TOO_LARGE; an
 * unmodified template that does not load as the fixed key (templates 3 and
 * 4: that is not refused with SV_ERR_KEY_KDF, whatever the passphrase).
 *
 * The secure heap is deliberately not set up, so every allocation of the
 * loaders is on the ordinary heap where AddressSanitizer watches it.
 */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sv_keyfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TEMPLATE_PASS "splitvault fuzz template"
#define NTEMPLATES 5

static const uint8_t fixed_sk[SV_X25519_LEN] = {
    0x70, 0x1e, 0x5a, 0x2c, 0x0b, 0x93, 0x4d, 0x61, 0x88, 0x27, 0xf0, 0x3e,
    0x55, 0xa9, 0x16, 0xc4, 0x7b, 0x02, 0xde, 0x6f, 0x31, 0x9a, 0xe4, 0x58,
    0x0c, 0xb7, 0x43, 0x25, 0x96, 0x6a, 0xd1, 0x48};
static uint8_t fixed_pk[SV_X25519_LEN];
static char *templ[NTEMPLATES];
static size_t templ_len[NTEMPLATES];
static int ready;

static const uint8_t zero32[SV_X25519_LEN];

/* Copy a memory BIO's contents into a fresh heap string. */
static char *
bio_take(BIO *bio, size_t *len)
{
    char *mem, *s;
    long n = BIO_get_mem_data(bio, &mem);

    if (n <= 0 || (s = malloc((size_t)n)) == NULL)
        abort();
    memcpy(s, mem, (size_t)n);
    *len = (size_t)n;
    return s;
}

/* An "ENCRYPTED PRIVATE KEY" text under alg (taken), with arbitrary
 * ciphertext: made without running alg's key derivation. */
static char *
costly_template(X509_ALGOR *alg, size_t *len)
{
    static const uint8_t ct[48] = { 0x5a };
    X509_SIG *sig = X509_SIG_new();
    X509_ALGOR *a = NULL;
    ASN1_OCTET_STRING *d = NULL;
    BIO *bio;
    char *s;

    if (alg == NULL || sig == NULL)
        abort();
    X509_SIG_getm(sig, &a, &d);
    if (!X509_ALGOR_copy(a, alg) || !ASN1_OCTET_STRING_set(d, ct, sizeof(ct))
        || (bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_PKCS8(bio, sig))
        abort();
    s = bio_take(bio, len);
    BIO_free(bio);
    X509_SIG_free(sig);
    X509_ALGOR_free(alg);
    return s;
}

static void
raw_public(const uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, SV_X25519_LEN);
    size_t l = SV_X25519_LEN;

    if (k == NULL || EVP_PKEY_get_raw_public_key(k, pk, &l) != 1 || l != SV_X25519_LEN)
        abort();
    EVP_PKEY_free(k);
}

/* Build the three templates from the fixed key and check that each loads. */
static void
init_templates(void)
{
    EVP_PKEY *k;
    BIO *bio;
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN];
    int t;

    if (ready)
        return;
    raw_public(fixed_sk, fixed_pk);
    k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, fixed_sk, SV_X25519_LEN);
    if (k == NULL)
        abort();

    if ((bio = BIO_new(BIO_s_mem())) == NULL ||
        !PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL))
        abort();
    templ[0] = bio_take(bio, &templ_len[0]);
    BIO_free(bio);

    if ((bio = BIO_new(BIO_s_mem())) == NULL ||
        !PEM_write_bio_PKCS8PrivateKey(bio, k, EVP_aes_256_cbc(), TEMPLATE_PASS,
                                       (int)strlen(TEMPLATE_PASS), NULL, NULL))
        abort();
    templ[1] = bio_take(bio, &templ_len[1]);
    BIO_free(bio);

    if ((bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_PUBKEY(bio, k))
        abort();
    templ[2] = bio_take(bio, &templ_len[2]);
    BIO_free(bio);
    EVP_PKEY_free(k);

    templ[3] = costly_template(PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), INT_MAX, NULL, 0, NULL,
                                                 NID_hmacWithSHA256), &templ_len[3]);
    templ[4] = costly_template(PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, 1024,
                                                     1, SV_KEYFILE_SCRYPT_P_MAX + 1),
                               &templ_len[4]);
    ready = 1;

    /* The unmodified templates load as the fixed key. */
    if (sv_key1_private_from_pem(templ[0], templ_len[0], NULL, 0, sk, pk) != SV_OK ||
        memcmp(sk, fixed_sk, sizeof(sk)) != 0 || memcmp(pk, fixed_pk, sizeof(pk)) != 0)
        abort();
    if (sv_key1_private_from_pem(templ[1], templ_len[1], TEMPLATE_PASS,
                                 strlen(TEMPLATE_PASS), sk, pk) != SV_OK ||
        memcmp(sk, fixed_sk, sizeof(sk)) != 0 || memcmp(pk, fixed_pk, sizeof(pk)) != 0)
        abort();
    if (sv_key1_private_from_pem(templ[1], templ_len[1], NULL, 0, sk, pk) !=
        SV_ERR_KEY_NEED_PASS)
        abort();
    if (sv_key1_public_from_pem(templ[2], templ_len[2], pk) != SV_OK ||
        memcmp(pk, fixed_pk, sizeof(pk)) != 0)
        abort();
    /* Over a cap: refused before any derivation, with or without the
     * passphrase. */
    for (t = 3; t < NTEMPLATES; t++)
        if (sv_key1_private_from_pem(templ[t], templ_len[t], TEMPLATE_PASS,
                                     strlen(TEMPLATE_PASS), sk, pk) != SV_ERR_KEY_KDF ||
            sv_key1_private_from_pem(templ[t], templ_len[t], NULL, 0, sk, pk) !=
            SV_ERR_KEY_KDF)
            abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    init_templates();
    return 0;
}

/* The private loader on an exactly sized heap copy of pem[0..len). */
static void
check_private(const char *pem, size_t len, const char *pass, size_t pass_len)
{
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN], want[SV_X25519_LEN];
    char *c = malloc(len ? len : 1);
    sv_status st;

    if (c == NULL)
        abort();
    if (len)
        memcpy(c, pem, len);
    else
        c[0] = '\0'; /* not read (len is 0), but never uninitialised */
    memset(sk, 0xa5, sizeof(sk));
    memset(pk, 0xa5, sizeof(pk));
    st = sv_key1_private_from_pem(c, len, pass, pass_len, sk, pk);
    free(c);
    switch (st) {
    case SV_OK:
        if (len > SV_KEYFILE_MAX)
            abort();
        raw_public(sk, want);
        if (memcmp(want, pk, sizeof(pk)) != 0)
            abort();
        break;
    case SV_ERR_KEY_FORMAT:
    case SV_ERR_KEY_TYPE:
    case SV_ERR_KEY_NEED_PASS:
    case SV_ERR_KEY_PASSPHRASE:
    case SV_ERR_KEY_TOO_LARGE:
    case SV_ERR_KEY_KDF:
    case SV_ERR_NOMEM:
        if (memcmp(sk, zero32, sizeof(sk)) != 0 || memcmp(pk, zero32, sizeof(pk)) != 0)
            abort();
        if (len > SV_KEYFILE_MAX && st != SV_ERR_KEY_TOO_LARGE)
            abort();
        if (st == SV_ERR_KEY_NEED_PASS && pass != NULL)
            abort();
        if (st == SV_ERR_KEY_PASSPHRASE && pass == NULL)
            abort();
        break;
    default:
        abort();
    }
    OPENSSL_cleanse(sk, sizeof(sk));
}

/* The public loader on an exactly sized heap copy of pem[0..len), and the
 * round trip of what it returns through sv_key1_public_to_pem(). */
static void
check_public(const char *pem, size_t len)
{
    uint8_t pk[SV_X25519_LEN], pk2[SV_X25519_LEN];
    char out[256];
    char *c = malloc(len ? len : 1);
    sv_status st;

    if (c == NULL)
        abort();
    if (len)
        memcpy(c, pem, len);
    else
        c[0] = '\0'; /* not read (len is 0), but never uninitialised */
    memset(pk, 0xa5, sizeof(pk));
    st = sv_key1_public_from_pem(c, len, pk);
    free(c);
    switch (st) {
    case SV_OK:
        if (len > SV_KEYFILE_MAX)
            abort();
        if (sv_key1_public_to_pem(pk, out, sizeof(out)) != SV_OK ||
            sv_key1_public_from_pem(out, strlen(out), pk2) != SV_OK ||
            memcmp(pk, pk2, sizeof(pk)) != 0)
            abort();
        break;
    case SV_ERR_KEY_FORMAT:
    case SV_ERR_KEY_TYPE:
    case SV_ERR_KEY_TOO_LARGE:
    case SV_ERR_NOMEM:
        if (memcmp(pk, zero32, sizeof(pk)) != 0)
            abort();
        if (len > SV_KEYFILE_MAX && st != SV_ERR_KEY_TOO_LARGE)
            abort();
        break;
    default:
        abort();
    }
}

static void
run_template(uint8_t flags, const uint8_t *p, size_t n)
{
    unsigned t;
    size_t len, cut, i;
    char *s;

    if (n < 3)
        return;
    t = p[0] % NTEMPLATES;
    cut = ((size_t)p[1] << 8) | p[2];
    p += 3;
    n -= 3;
    len = templ_len[t];
    if (cut != 0 && cut < len)
        len = cut;
    if ((s = malloc(len)) == NULL)
        abort();
    memcpy(s, templ[t], len);
    for (i = 0; i + 3 <= n; i += 3) {
        size_t off = (((size_t)p[i] << 8) | p[i + 1]) % len;

        s[off] = (char)p[i + 2];
    }
    if (t == 2) {
        check_public(s, len);
    } else if (t != 0 && (flags & 8)) {
        check_private(s, len, NULL, 0);
    } else if (t != 0 && (flags & 4)) {
        check_private(s, len, "not the passphrase", 18);
    } else {
        check_private(s, len, TEMPLATE_PASS, strlen(TEMPLATE_PASS));
    }
    free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t p;

    init_templates();
    if (size < 1)
        return 0;
    switch (data[0] & 3) {
    case 0:
        check_public((const char *)data + 1, size - 1);
        break;
    case 1:
        check_private((const char *)data + 1, size - 1, NULL, 0);
        break;
    case 2:
        if (size < 2)
            return 0;
        p = data[1];
        if (p > size - 2)
            return 0;
        check_private((const char *)data + 2 + p, size - 2 - p,
                      (const char *)data + 2, p);
        break;
    default:
        run_template(data[0], data + 1, size - 1);
        break;
    }
    return 0;
}
