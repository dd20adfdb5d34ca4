/*
 * sv_format.h - SplitVault's stored format (docs/design.md "Stored format").
 *
 * Every envelope is HPKE base mode, DHKEM(X25519, HKDF-SHA256) /
 * HKDF-SHA256 / AES-256-GCM, single-shot:
 *
 *   datum        to key2 public   info "splitvault/v1 datum"
 *                                 aad  "<record uuid>/<field name>"
 *   wrapped key2a to key1 public  info "splitvault/v1 key2a"
 *                                 aad  "<record uuid>/<field name>/<share id>"
 *
 * with <record uuid> in canonical lowercase 8-4-4-4-12 form and <share id> in
 * decimal. Field names are 1..SV_FIELD_MAX of [A-Za-z0-9_-], so the aad is
 * unambiguous. This is the only place that builds these strings.
 */
#ifndef SV_FORMAT_H
#define SV_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include "sv_err.h"
#include "sv_hpke.h"

#define SV_INFO_DATUM "splitvault/v1 datum"
#define SV_INFO_KEY2A "splitvault/v1 key2a"
#define SV_AEAD SV_HPKE_AEAD_AES256GCM

#define SV_UUID_LEN 16
#define SV_UUID_STR_LEN 36
#define SV_FIELD_MAX 64        /* longest field name */
#define SV_DATUM_MAX 65536     /* longest plaintext datum, bytes */
#define SV_WRAPPED_CT_LEN (SV_X25519_LEN + SV_HPKE_TAG_LEN) /* 48 */
/* aad buffer large enough for both aad forms */
#define SV_AAD_MAX (SV_UUID_STR_LEN + 1 + SV_FIELD_MAX + 1 + 20 + 1)

/* 1 when name is a valid field name (length 1..SV_FIELD_MAX, [A-Za-z0-9_-]). */
int sv_field_name_valid(const char *name, size_t len);

/* Canonical lowercase text of a 16-byte uuid, NUL-terminated. */
void sv_uuid_format(const uint8_t uuid[SV_UUID_LEN], char out[SV_UUID_STR_LEN + 1]);

/* Parse the 8-4-4-4-12 form (either case). SV_ERR_INVAL when malformed. */
sv_status sv_uuid_parse(const char *s, size_t len, uint8_t uuid[SV_UUID_LEN]);

/* A fresh random (version 4) uuid. */
sv_status sv_uuid_generate(uint8_t uuid[SV_UUID_LEN]);

/* The aad strings; return their length, or 0 when the field name is invalid. */
size_t sv_aad_datum(const uint8_t uuid[SV_UUID_LEN], const char *field,
                    char out[SV_AAD_MAX]);
size_t sv_aad_key2a(const uint8_t uuid[SV_UUID_LEN], const char *field,
                    uint64_t share_id, char out[SV_AAD_MAX]);

/* Seal a datum (pt_len <= SV_DATUM_MAX) to key2 public pk2.
 * ct receives pt_len + SV_HPKE_TAG_LEN bytes. */
sv_status sv_datum_seal(const uint8_t pk2[SV_X25519_LEN],
                        const uint8_t uuid[SV_UUID_LEN], const char *field,
                        const uint8_t *pt, size_t pt_len,
                        uint8_t enc[SV_HPKE_ENC_LEN], uint8_t *ct);

/* Open a datum with sk2. pt receives ct_len - 16 bytes. SV_ERR_OPEN on any
 * mismatch. */
sv_status sv_datum_open(const uint8_t sk2[SV_X25519_LEN],
                        const uint8_t uuid[SV_UUID_LEN], const char *field,
                        const uint8_t enc[SV_HPKE_ENC_LEN],
                        const uint8_t *ct, size_t ct_len, uint8_t *pt);

/* Open a datum with sk2 only when sk2's public key equals pk2 (constant-time
 * compare), importing sk2 once for both: two X25519 scalar multiplications
 * per datum (the public key, the DH) instead of three for
 * sv_key2_check() followed by sv_datum_open(). SV_ERR_KEY_MISMATCH or
 * SV_ERR_OPEN on failure (pt zeroed). Used by splitvaultd's DECRYPT. */
sv_status sv_datum_open_checked(const uint8_t sk2[SV_X25519_LEN],
                                const uint8_t pk2[SV_X25519_LEN],
                                const uint8_t uuid[SV_UUID_LEN], const char *field,
                                const uint8_t enc[SV_HPKE_ENC_LEN],
                                const uint8_t *ct, size_t ct_len, uint8_t *pt);

/* Wrap key2a to key1 public pk1: ct is SV_WRAPPED_CT_LEN bytes. */
sv_status sv_key2a_wrap(const uint8_t pk1[SV_X25519_LEN],
                        const uint8_t uuid[SV_UUID_LEN], const char *field,
                        uint64_t share_id, const uint8_t key2a[SV_X25519_LEN],
                        uint8_t enc[SV_HPKE_ENC_LEN], uint8_t ct[SV_WRAPPED_CT_LEN]);

/* Unwrap key2a with key1 private sk1. SV_ERR_OPEN on any mismatch. */
sv_status sv_key2a_unwrap(const uint8_t sk1[SV_X25519_LEN],
                          const uint8_t uuid[SV_UUID_LEN], const char *field,
                          uint64_t share_id, const uint8_t enc[SV_HPKE_ENC_LEN],
                          const uint8_t ct[SV_WRAPPED_CT_LEN],
                          uint8_t key2a[SV_X25519_LEN]);

/* sv_key2a_unwrap with a recipient key made once (sv_hpke_recipient_new of
 * key1's private key): one scalar multiplication per key2a instead of two.
 * For key1-rewrap, which unwraps every field with the same old key1. */
sv_status sv_key2a_unwrap_recipient(sv_hpke_recipient *r1,
                                    const uint8_t uuid[SV_UUID_LEN], const char *field,
                                    uint64_t share_id, const uint8_t enc[SV_HPKE_ENC_LEN],
                                    const uint8_t ct[SV_WRAPPED_CT_LEN],
                                    uint8_t key2a[SV_X25519_LEN]);

#endif /* SV_FORMAT_H */
