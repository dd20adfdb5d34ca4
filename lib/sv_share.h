/*
 * sv_share.h - key1 under dual control: Shamir's k-of-n shares over GF(256)
 * (libgfshare), each share sealed under a passphrase its holder chooses.
 *
 * What is split is key1's private key as unencrypted PKCS#8 DER (the
 * 48 bytes `openssl pkey -outform DER` writes for an X25519 key), so that
 * K raw shares handed to libgfshare's own `gfcombine` give a file that
 * `openssl pkey -inform DER` reads: a recovery path that needs none of
 * this project's code. Share indexes are libgfshare's (1..255; gfsplit
 * names its files NAME.NNN after them).
 *
 * A share file is text, at most SV_SHARE_FILE_MAX bytes: a BEGIN line,
 * the headers Key1 (fingerprint), Split (random id), Share (index),
 * Threshold, Count, Holder (optional), KDF (scrypt N, r, p), Salt and
 * Nonce in that order, an empty line, the AES-256-GCM ciphertext and tag
 * of the share in base64, an END line. The AEAD's additional data is the
 * header block as it stands in the file, so no header can be altered
 * without the tag failing; the key is scrypt(passphrase, salt), whose cost
 * is checked against the caps of key1 files (sv_keyfile.h) before anything
 * is derived. Writers use N=2^15, r=8, p=1 (32 MiB). The format, exactly:
 * docs/format.md, "key1 share files".
 */
#ifndef SV_SHARE_H
#define SV_SHARE_H

#include <stddef.h>
#include <stdint.h>
#include "sv_err.h"
#include "sv_hpke.h"
#include "sv_keyfile.h"

#define SV_SHARE_SECRET_LEN 48        /* PKCS#8 DER of an X25519 private key */
#define SV_SHARE_MAX_K 8              /* the module keeps at most 8 parts per key */
#define SV_SHARE_MAX_N 255
#define SV_SHARE_HOLDER_MAX 64
#define SV_SHARE_SPLIT_LEN 16
#define SV_SHARE_FILE_MAX 4096

/* One share, opened. share[] is secret: callers keep sv_share values in
 * secret memory or cleanse them (sv_share_wipe) on every path. */
typedef struct {
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    uint8_t split[SV_SHARE_SPLIT_LEN];
    unsigned index;                   /* 1..255 */
    unsigned k, n;
    char holder[SV_SHARE_HOLDER_MAX + 1];   /* "" when the file names none */
    uint8_t share[SV_SHARE_SECRET_LEN];
} sv_share;

/* Split key1 (raw private key sk, its public key pk) into n shares with
 * threshold k (2 <= k <= n, k <= SV_SHARE_MAX_K, n <= SV_SHARE_MAX_N) into
 * out[0..n-1], indexes 1..n, one fresh split id, holders "" (the caller may
 * set them). libgfshare's coefficients come from RAND_priv_bytes. On
 * failure out[] is cleansed. */
sv_status sv_share_split(const uint8_t sk[SV_X25519_LEN], const uint8_t pk[SV_X25519_LEN],
                         unsigned k, unsigned n, sv_share *out);

/* The share file text for s sealed under pass (a fresh salt and nonce):
 * NUL-terminated, malloc()ed (not secret: free() it). */
sv_status sv_share_seal(const sv_share *s, const char *pass, size_t pass_len,
                        char **text, size_t *text_len);

/* Read the headers of a share file without its passphrase (to name the
 * key and index before asking for one): out's share[] is left zero.
 * SV_ERR_SHARE_FORMAT when the text is not a share file of this format;
 * SV_ERR_KEY_KDF when its cost is over the caps. */
sv_status sv_share_peek(const char *text, size_t text_len, sv_share *out);

/* Open a share file: headers as sv_share_peek, then the sealed share.
 * SV_ERR_SHARE_OPEN when the passphrase is wrong or the file was altered
 * (the AEAD cannot tell them apart). On failure out is cleansed. */
sv_status sv_share_open(const char *text, size_t text_len, const char *pass,
                        size_t pass_len, sv_share *out);

/* Recombine count shares: all of one key and one split (else
 * SV_ERR_SHARE_MIX), distinct indexes (else SV_ERR_SHARE_MIX), at least
 * their threshold (else SV_ERR_SHARE_FEW). The result is parsed as
 * PKCS#8, must be an X25519 key (else SV_ERR_KEY_MISMATCH: some share was
 * not what it claims) and must have the shares' fingerprint (else
 * SV_ERR_KEY_MISMATCH). libgfshare's own buffers are overwritten before
 * they are freed. On failure sk and pk are zeroed. */
sv_status sv_share_combine(const sv_share *const *shares, unsigned count,
                           uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN]);

/* Cleanse s whole. */
void sv_share_wipe(sv_share *s);

/* 1 when the n bytes at h are a holder name a share file may carry: 1 to
 * SV_SHARE_HOLDER_MAX of [A-Za-z0-9._@-] (docs/format.md). */
int sv_share_holder_ok(const char *h, size_t n);

#endif /* SV_SHARE_H */
