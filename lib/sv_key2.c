/*
 * sv_key2.c - X25519 key pairs and the key2 split.
 *
 * Raw keys cross this API as 32-byte buffers owned by the caller; the
 * EVP_PKEY objects made here are short-lived and OpenSSL keeps their private
 * halves in secure memory, cleansed on free.
 */
#include "config.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "sv_key2.h"
#include "sv_log.h"
#include "sv_secret.h"

/* Fresh key pair from OpenSSL's X25519 key generator. */
sv_status
sv_x25519_generate(uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN])
{
    EVP_PKEY_CTX *c = NULL;
    EVP_PKEY *k = NULL;
    size_t skl = SV_X25519_LEN, pkl = SV_X25519_LEN;
    sv_status st = SV_ERR_INTERNAL;

    if (sk == NULL || pk == NULL)
        return SV_ERR_INVAL;
    c = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    if (c == NULL || EVP_PKEY_keygen_init(c) <= 0 || EVP_PKEY_keygen(c, &k) <= 0)
        goto out;
    if (EVP_PKEY_get_raw_private_key(k, sk, &skl) != 1 || skl != SV_X25519_LEN
        || EVP_PKEY_get_raw_public_key(k, pk, &pkl) != 1 || pkl != SV_X25519_LEN)
        goto out;
    st = SV_OK;

out:
    if (st != SV_OK) {
        sv_log_openssl(SV_LOG_ERR, "key2: X25519 key generation");
        sv_cleanse(sk, SV_X25519_LEN);
        sv_cleanse(pk, SV_X25519_LEN);
    }
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(c);
    return st;
}

sv_status
sv_x25519_public(const uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN])
{
    EVP_PKEY *k;
    size_t pkl = SV_X25519_LEN;
    sv_status st = SV_ERR_INTERNAL;

    if (sk == NULL || pk == NULL)
        return SV_ERR_INVAL;
    k = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, sk, SV_X25519_LEN);
    if (k != NULL && EVP_PKEY_get_raw_public_key(k, pk, &pkl) == 1 && pkl == SV_X25519_LEN)
        st = SV_OK;
    if (st != SV_OK) {
        sv_log_openssl(SV_LOG_ERR, "key2: X25519 public key");
        sv_cleanse(pk, SV_X25519_LEN);
    }
    EVP_PKEY_free(k);
    return st;
}

/* key2b from the private DRBG; key2a = sk XOR key2b. On failure both are
 * zeroed, so no half-made share escapes. */
sv_status
sv_key2_split(const uint8_t sk[SV_X25519_LEN], uint8_t key2a[SV_X25519_LEN],
              uint8_t key2b[SV_X25519_LEN])
{
    size_t i;

    if (sk == NULL || key2a == NULL || key2b == NULL || key2a == key2b)
        return SV_ERR_INVAL;
    if (RAND_priv_bytes(key2b, SV_X25519_LEN) != 1) {
        sv_log_openssl(SV_LOG_ERR, "key2: RAND_priv_bytes");
        sv_cleanse(key2a, SV_X25519_LEN);
        sv_cleanse(key2b, SV_X25519_LEN);
        return SV_ERR_INTERNAL;
    }
    for (i = 0; i < SV_X25519_LEN; i++)
        key2a[i] = sk[i] ^ key2b[i];
    return SV_OK;
}

/* Byte-wise, so sk may alias either share. */
void
sv_key2_combine(const uint8_t key2a[SV_X25519_LEN], const uint8_t key2b[SV_X25519_LEN],
                uint8_t sk[SV_X25519_LEN])
{
    size_t i;

    for (i = 0; i < SV_X25519_LEN; i++)
        sk[i] = key2a[i] ^ key2b[i];
}

sv_status
sv_key2_check(const uint8_t sk[SV_X25519_LEN], const uint8_t pk[SV_X25519_LEN])
{
    uint8_t derived[SV_X25519_LEN];
    sv_status st;

    if (sk == NULL || pk == NULL)
        return SV_ERR_INVAL;
    st = sv_x25519_public(sk, derived);
    if (st == SV_OK && CRYPTO_memcmp(derived, pk, SV_X25519_LEN) != 0)
        st = SV_ERR_KEY_MISMATCH;
    sv_cleanse(derived, sizeof(derived));
    return st;
}
