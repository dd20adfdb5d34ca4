/*
 * crypto_util.h - small helpers shared by the core library's crypto unit
 * tests: hex decoding (lib/sv_hex) and comparison, bit flips, zero checks.
 */
#ifndef SV_CRYPTO_UTIL_H
#define SV_CRYPTO_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "sv_hex.h"

/* Decode hex into a fresh malloc'ed buffer (at least 1 byte); aborts the
 * test on malformed input. */
static inline uint8_t *
cu_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    uint8_t *b;

    ck_assert_msg(n % 2 == 0, "odd hex length");
    b = malloc(n / 2 + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_msg(sv_hex_decode(hex, n, b, n / 2) == SV_OK, "bad hex digit");
    *len = n / 2;
    return b;
}

/* Decode hex of exactly want bytes into out. */
static inline void
cu_unhex_into(const char *hex, uint8_t *out, size_t want)
{
    size_t n;
    uint8_t *b = cu_unhex(hex, &n);

    ck_assert_uint_eq(n, want);
    memcpy(out, b, n);
    free(b);
}

static inline void
cu_hex(const uint8_t *p, size_t n, char *out)
{
    sv_hex_encode(p, n, out);
}

/* Assert p[0..n) equals the hex string, with a readable message. */
#define cu_assert_hex(p, n, hex, what)                                          \
    do {                                                                        \
        char *cu_h_ = malloc(2 * (n) + 1);                                      \
        ck_assert_ptr_nonnull(cu_h_);                                           \
        cu_hex((p), (n), cu_h_);                                                \
        ck_assert_msg(strcmp(cu_h_, (hex)) == 0, "%s: got %s, want %s", (what), \
                      cu_h_, (hex));                                            \
        free(cu_h_);                                                            \
    } while (0)

static inline int
cu_all_zero(const uint8_t *p, size_t n)
{
    size_t i;
    uint8_t acc = 0;

    for (i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

#endif /* SV_CRYPTO_UTIL_H */
