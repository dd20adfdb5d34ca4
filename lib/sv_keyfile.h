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
 * SV_ERR_KEY_TOO_LARGE, SV_ERR_KEY_KDF. Intermediate copies of private
 * material are cleansed.
 *
 * An encrypted key's passphrase-based key derivation costs what the file
 * says, so the file is not trusted for it: before any derivation, its
 * EncryptedPrivateKeyInfo must name PBES2 with PBKDF2 (PRF HMAC with SHA-1
 * or SHA-2) or scrypt, within the caps below; anything else is
 * SV_ERR_KEY_KDF. `openssl genpkey -aes256` writes PBKDF2 with 2048
 * iterations, `openssl pkcs8 -topk8 -scrypt` N=16384, r=8, p=1 (16 MiB).
 *
 *   PBKDF2 iterations  1..SV_KEYFILE_PBKDF2_ITER_MAX: 2400 times OpenSSL's
 *                      default and about four times the most OWASP advises
 *                      (1 300 000 for SHA-1, 600 000 for SHA-256); at most
 *                      a few seconds of one core per attempt
 *   scrypt             N a power of two <= 2^20, r <= 32, p <= 16, and
 *                      128 * r * (N + p + 2) bytes of memory <= 32 MiB,
 *                      OpenSSL's own limit when it decrypts PKCS#8 (a file
 *                      over it, or with another N, would fail in there as
 *                      a "wrong passphrase"); with p <= 16 that bounds the
 *                      work to 32 times the default's
 */
#ifndef SV_KEYFILE_H
#define SV_KEYFILE_H

#include <stddef.h>
#include <stdint.h>
#include "sv_err.h"
#include "sv_hpke.h"

#define SV_KEYFILE_MAX 16384          /* no key file of ours is larger */
#define SV_KEYFILE_PBKDF2_ITER_MAX 5000000
#define SV_KEYFILE_SCRYPT_N_MAX (1UL << 20)
#define SV_KEYFILE_SCRYPT_R_MAX 32
#define SV_KEYFILE_SCRYPT_P_MAX 16
#define SV_KEYFILE_SCRYPT_MEM_MAX (32UL * 1024 * 1024)
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

/* 1 when s is a whole fingerprint as sv_key1_fingerprint writes one:
 * exactly SV_FINGERPRINT_HEX_LEN lowercase hex digits. */
int sv_key1_fingerprint_ok(const char *s);

#endif /* SV_KEYFILE_H */
