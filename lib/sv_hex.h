/*
 * sv_hex.h - lowercase hexadecimal, the one encoder and decoder every part
 * of SplitVault uses (fingerprints, audit hashes, the sqlite3 store's key
 * columns, tests).
 *
 * Both directions run in time that depends on the length only, never on
 * the bytes or digits: the sqlite3 store keeps key2b as hex, so the same
 * code may see secrets. Only the overall verdict of a decode (well-formed
 * or not) is branched on.
 */
#ifndef SV_HEX_H
#define SV_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "sv_err.h"

/* Lowercase hex of n bytes into out, which holds 2n + 1 bytes; the text is
 * NUL-terminated. */
void sv_hex_encode(const uint8_t *p, size_t n, char *out);

/* Exactly 2n hex digits (either case) at s[0..slen) into out[0..n).
 * SV_ERR_INVAL when slen != 2n or a character is not a hex digit; out is
 * then all zeros. */
sv_status sv_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n);

#endif /* SV_HEX_H */
