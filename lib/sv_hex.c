/*
 * sv_hex.c - lowercase hex without data-dependent branches or tables.
 *
 * A nibble v (0..15) becomes '0' + v, plus 39 when v > 9 ('a' - '0' - 10);
 * the "v > 9" is computed from the sign bit of 9 - v. A digit is decoded by
 * testing it against both ranges the same way and combining the results
 * with masks, so neither direction indexes memory or branches on a value.
 */
#include "config.h"

#include <string.h>

#include "sv_hex.h"

/* 1 when lo <= x <= hi, for values below 2^31; no branch. */
static uint32_t
in_range(uint32_t x, uint32_t lo, uint32_t hi)
{
    return (((x - lo) | (hi - x)) >> 31) ^ 1u;
}

static char
nibble_char(uint32_t v)
{
    uint32_t above9 = (9u - v) >> 31;

    return (char)('0' + v + above9 * 39u);
}

void
sv_hex_encode(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = nibble_char((uint32_t)p[i] >> 4);
        out[2 * i + 1] = nibble_char((uint32_t)p[i] & 15u);
    }
    out[2 * n] = '\0';
}

/* The digit's value in the low bits; *bad |= 1 when c is not a digit. */
static uint32_t
digit_value(unsigned char c, uint32_t *bad)
{
    uint32_t x = c, lower = x | 0x20u; /* 'A'..'F' -> 'a'..'f' */
    uint32_t is_dec = in_range(x, '0', '9');
    uint32_t is_alpha = in_range(lower, 'a', 'f');

    *bad |= (is_dec | is_alpha) ^ 1u;
    return (is_dec * (x - '0') + is_alpha * (lower - 'a' + 10u)) & 15u;
}

sv_status
sv_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n)
{
    uint32_t bad = 0;

    if (s == NULL || out == NULL || slen / 2 != n || slen % 2 != 0) {
        if (out != NULL)
            memset(out, 0, n);
        return SV_ERR_INVAL;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t hi = digit_value((unsigned char)s[2 * i], &bad);
        uint32_t lo = digit_value((unsigned char)s[2 * i + 1], &bad);

        out[i] = (uint8_t)(hi << 4 | lo);
    }
    if (bad != 0) {
        memset(out, 0, n);
        return SV_ERR_INVAL;
    }
    return SV_OK;
}
