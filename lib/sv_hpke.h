/*
 * sv_hpke.h - RFC 9180 HPKE, base mode, on OpenSSL 3.0 EVP primitives.
 *
 * KEM DHKEM(X25519, HKDF-SHA256) (0x0020) and KDF HKDF-SHA256 (0x0001) are
 * fixed; the AEAD is one of AES-128-GCM (0x0001), AES-256-GCM (0x0002) and
 * ChaCha20-Poly1305 (0x0003). SplitVault stores data with AES-256-GCM only
 * (docs/format.md); the others exist for the RFC 9180 test vectors.
 *
 * Single-shot use: sv_hpke_seal() / sv_hpke_open(). The context API beneath
 * exists for multi-message use and for the known-answer tests.
 *
 * All functions are thread-safe. A failed open always returns SV_ERR_OPEN and
 * leaves the output buffer zeroed, whatever the cause.
 */
#ifndef SV_HPKE_H
#define SV_HPKE_H

#include <stddef.h>
#include <stdint.h>
#include "sv_err.h"

#define SV_HPKE_KEM_X25519_SHA256 0x0020
#define SV_HPKE_KDF_HKDF_SHA256 0x0001
#define SV_HPKE_AEAD_AES128GCM 0x0001
#define SV_HPKE_AEAD_AES256GCM 0x0002
#define SV_HPKE_AEAD_CHACHA20POLY1305 0x0003

#define SV_X25519_LEN 32   /* raw public or private key */
#define SV_HPKE_ENC_LEN 32 /* encapsulated key (ephemeral public key) */
#define SV_HPKE_TAG_LEN 16 /* AEAD tag appended to every ciphertext */
#define SV_HPKE_NONCE_LEN 12
#define SV_HPKE_MAX_KEY 32
#define SV_HPKE_HASH_LEN 32
/* Upper bounds accepted for info, aad and exporter context (bytes). */
#define SV_HPKE_MAX_INFO 1024
#define SV_HPKE_MAX_AAD 1024

/* An HPKE context. Treat as opaque; it holds secrets: release it with
 * sv_hpke_ctx_clear() (which cleanses it) on every path. It needs no heap, so
 * it may live on the stack. */
typedef struct {
    uint16_t aead_id;
    size_t key_len;
    uint8_t key[SV_HPKE_MAX_KEY];
    uint8_t base_nonce[SV_HPKE_NONCE_LEN];
    uint8_t exporter_secret[SV_HPKE_HASH_LEN];
    uint8_t shared_secret[SV_HPKE_HASH_LEN]; /* kept for the known-answer tests */
    uint64_t seq;
    int ready;
} sv_hpke_ctx;

/* DeriveKeyPair(ikm) for DHKEM(X25519, HKDF-SHA256), RFC 9180 7.1.3. */
sv_status sv_hpke_derive_keypair(const uint8_t *ikm, size_t ikm_len,
                                 uint8_t sk[SV_X25519_LEN],
                                 uint8_t pk[SV_X25519_LEN]);

/* SetupBaseS: encapsulate to pkR. When ikmE is NULL the ephemeral key is
 * fresh from the CSPRNG (production); otherwise it is DeriveKeyPair(ikmE)
 * (known-answer tests). Writes enc and fills ctx. */
sv_status sv_hpke_setup_s(sv_hpke_ctx *ctx, uint16_t aead_id,
                          const uint8_t pkR[SV_X25519_LEN],
                          const uint8_t *info, size_t info_len,
                          const uint8_t *ikmE, size_t ikmE_len,
                          uint8_t enc[SV_HPKE_ENC_LEN]);

/* SetupBaseR: decapsulate enc with skR and fill ctx. */
sv_status sv_hpke_setup_r(sv_hpke_ctx *ctx, uint16_t aead_id,
                          const uint8_t skR[SV_X25519_LEN],
                          const uint8_t enc[SV_HPKE_ENC_LEN],
                          const uint8_t *info, size_t info_len);

/* SetupBaseR, first checking in constant time that skR's public key equals
 * expect_pk (when not NULL) at no extra scalar multiplication: the public key
 * is computed anyway (it is part of the KEM context). SV_ERR_KEY_MISMATCH
 * when not. */
sv_status sv_hpke_setup_r_checked(sv_hpke_ctx *ctx, uint16_t aead_id,
                                  const uint8_t skR[SV_X25519_LEN],
                                  const uint8_t *expect_pk,
                                  const uint8_t enc[SV_HPKE_ENC_LEN],
                                  const uint8_t *info, size_t info_len);

/* ContextS.Seal: ct receives pt_len + SV_HPKE_TAG_LEN bytes. */
sv_status sv_hpke_ctx_seal(sv_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len,
                           const uint8_t *pt, size_t pt_len, uint8_t *ct);

/* ContextR.Open: ct_len >= SV_HPKE_TAG_LEN; pt receives ct_len - 16 bytes,
 * zeroed on failure (SV_ERR_OPEN). */
sv_status sv_hpke_ctx_open(sv_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len,
                           const uint8_t *ct, size_t ct_len, uint8_t *pt);

/* Context.Export(exporter_context, L). */
sv_status sv_hpke_ctx_export(const sv_hpke_ctx *ctx, const uint8_t *exp_ctx,
                             size_t exp_ctx_len, uint8_t *out, size_t out_len);

/* Cleanse ctx. */
void sv_hpke_ctx_clear(sv_hpke_ctx *ctx);

/* Single-shot SealBase to pkR with a fresh ephemeral key. */
sv_status sv_hpke_seal(uint16_t aead_id, const uint8_t pkR[SV_X25519_LEN],
                       const uint8_t *info, size_t info_len,
                       const uint8_t *aad, size_t aad_len,
                       const uint8_t *pt, size_t pt_len,
                       uint8_t enc[SV_HPKE_ENC_LEN], uint8_t *ct);

/* Single-shot OpenBase with skR. pt receives ct_len - 16 bytes. */
sv_status sv_hpke_open(uint16_t aead_id, const uint8_t skR[SV_X25519_LEN],
                       const uint8_t *info, size_t info_len,
                       const uint8_t *aad, size_t aad_len,
                       const uint8_t enc[SV_HPKE_ENC_LEN],
                       const uint8_t *ct, size_t ct_len, uint8_t *pt);

/* Single-shot OpenBase with skR, only when skR's public key equals expect_pk
 * (constant time): two X25519 scalar multiplications in all. A mismatch runs
 * the same work and returns SV_ERR_KEY_MISMATCH; any other failure is
 * SV_ERR_OPEN. pt receives ct_len - 16 bytes, zeroed on failure. */
sv_status sv_hpke_open_checked(uint16_t aead_id, const uint8_t skR[SV_X25519_LEN],
                               const uint8_t expect_pk[SV_X25519_LEN],
                               const uint8_t *info, size_t info_len,
                               const uint8_t *aad, size_t aad_len,
                               const uint8_t enc[SV_HPKE_ENC_LEN],
                               const uint8_t *ct, size_t ct_len, uint8_t *pt);

/*
 * A recipient key made ready once for many opens with the same skR: skR
 * imported into OpenSSL once, with its derive context, and its public key
 * (needed by every open's KEM context) computed once, so that each open costs
 * one X25519 scalar multiplication instead of two. Used by key1-rewrap, which
 * opens every field with the old key1. The object holds the private key:
 * free it with sv_hpke_recipient_free() (which cleanses it) on every path.
 * Not thread-safe: one per thread.
 */
typedef struct sv_hpke_recipient sv_hpke_recipient;

sv_status sv_hpke_recipient_new(const uint8_t skR[SV_X25519_LEN], sv_hpke_recipient **out);
void sv_hpke_recipient_free(sv_hpke_recipient *r);

/* X25519(skR, 9), computed by sv_hpke_recipient_new. */
const uint8_t *sv_hpke_recipient_public(const sv_hpke_recipient *r);

/* Single-shot OpenBase with r (no exporter secret). pt receives ct_len - 16
 * bytes, zeroed on failure; every failure is SV_ERR_OPEN. */
sv_status sv_hpke_open_recipient(sv_hpke_recipient *r, uint16_t aead_id,
                                 const uint8_t *info, size_t info_len,
                                 const uint8_t *aad, size_t aad_len,
                                 const uint8_t enc[SV_HPKE_ENC_LEN],
                                 const uint8_t *ct, size_t ct_len, uint8_t *pt);

#endif /* SV_HPKE_H */
