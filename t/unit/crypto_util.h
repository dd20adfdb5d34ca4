/*
 * crypto_util.h - small helpers shared by the core library's crypto unit
 * tests: hex decoding and comparison, bit flips, zero checks.
 */
#ifndef SV_CRYPTO_UTIL_H
#define SV_CRYPTO_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

static inline int
cu_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode hex into a fresh malloc'ed buffer (at least 1 byte); aborts the
 * test on malformed input. */
static inline uint8_t *
cu_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex), i;
    uint8_t *b;

    ck_assert_msg(n % 2 == 0, "odd hex length");
    b = malloc(n / 2 + 1);
    ck_assert_ptr_nonnull(b);
    for (i = 0; i < n / 2; i++) {
        int hi = cu_nibble(hex[2 * i]), lo = cu_nibble(hex[2 * i + 1]);

        ck_assert_msg(hi >= 0 && lo >= 0, "bad hex digit");
        b[i] = (uint8_t)((hi << 4) | lo);
    }
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
    static const char d[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 0x0f];
    }
    out[2 * n] = '\0';
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
