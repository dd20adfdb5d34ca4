/*
 * sv_keyfile.h - key1 files: what the stock OpenSSL tool writes.
 *
 *   openssl genpkey -algorithm X25519 [-aes256] -out key1.pem   (PKCS#8 PEM)
 *   openssl pkey -in key1.pem -pubout -out key1.pub              (SPKI PEM)
 *
 * Loaders accept exactly those forms, from memory or a file, and return the
 * raw 32-byte keys. Errors are distinct: SV_ERR_KEY_IO, SV_ERR_KEY_FORMAT
 * (not PEM / truncated / garbage), SV_ERR_KEY_TYPE (a key, but not an X25519
 * key of the asked kind), SV_ERR_KEY_NEED_PASS, SV_ERR_KEY_PASSPHRASE,
 * SV_ERR_KEY_TOO_LARGE. Intermediate copies of private material are cleansed.
 */
#ifndef SV_KEYFILE_H
#define SV_KEYFILE_H

#include <stddef.h>
#include <stdint.h>
#include "sv_err.h"
#include "sv_hpke.h"

#define SV_KEYFILE_MAX 16384          /* no key file of ours is larger */
#define SV_FINGERPRINT_HEX_LEN 64     /* lowercase hex SHA-256 */

/* Private key from PKCS#8 PEM ("PRIVATE KEY" or "ENCRYPTED PRIVATE KEY").
 * pass may be NULL (then an encrypted key gives SV_ERR_KEY_NEED_PASS).
 * On success sk and pk hold the raw keys; on failure both are zeroed. */
sv_status sv_key1_private_from_pem(const char *pem, size_t pem_len,
                                   const char *pass, size_t pass_len,
                                   uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN]);

sv_status sv_key1_private_from_file(const char *path, const char *pass, size_t pass_len,
                                    uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN]);

/* Public key from SPKI PEM ("PUBLIC KEY"). */
sv_status sv_key1_public_from_pem(const char *pem, size_t pem_len, uint8_t pk[SV_X25519_LEN]);

sv_status sv_key1_public_from_file(const char *path, uint8_t pk[SV_X25519_LEN]);

/* SPKI PEM text of a raw X25519 public key, NUL-terminated, into out
 * (out_len >= 128). */
sv_status sv_key1_public_to_pem(const uint8_t pk[SV_X25519_LEN], char *out, size_t out_len);

/* Fingerprint: lowercase hex SHA-256 of the raw public key, NUL-terminated. */
sv_status sv_key1_fingerprint(const uint8_t pk[SV_X25519_LEN],
                              char out[SV_FINGERPRINT_HEX_LEN + 1]);

#endif /* SV_KEYFILE_H */
