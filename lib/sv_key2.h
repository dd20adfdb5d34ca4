/*
 * sv_key2.h - X25519 key pairs and the key2 split (docs/design.md "Keys").
 *
 * sk2 = key2a XOR key2b, key2b being 32 bytes from the CSPRNG
 * (RAND_priv_bytes). The main database keeps key2a (sealed to key1), the
 * daemon keeps key2b; neither alone says anything about sk2.
 * All buffers here hold secrets: callers cleanse them after use.
 */
#ifndef SV_KEY2_H
#define SV_KEY2_H

#include <stdint.h>
#include "sv_err.h"
#include "sv_hpke.h"

/* Fresh X25519 key pair. */
sv_status sv_x25519_generate(uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN]);

/* Public key of sk. */
sv_status sv_x25519_public(const uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN]);

/* Split sk into key2a and key2b (fresh CSPRNG bytes). sk is not modified. */
sv_status sv_key2_split(const uint8_t sk[SV_X25519_LEN],
                        uint8_t key2a[SV_X25519_LEN], uint8_t key2b[SV_X25519_LEN]);

/* sk = key2a XOR key2b. */
void sv_key2_combine(const uint8_t key2a[SV_X25519_LEN],
                     const uint8_t key2b[SV_X25519_LEN], uint8_t sk[SV_X25519_LEN]);

/* SV_OK when sk's public key equals pk (constant-time compare),
 * SV_ERR_KEY_MISMATCH otherwise. */
sv_status sv_key2_check(const uint8_t sk[SV_X25519_LEN], const uint8_t pk[SV_X25519_LEN]);

#endif /* SV_KEY2_H */
