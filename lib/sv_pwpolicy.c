/*
 * sv_pwpolicy.c - what a new staff password must be (sv_pwpolicy.h).
 *
 * UTF-8 is checked by hand, against RFC 3629's table of well-formed byte
 * sequences: neither OpenSSL nor APR offers a validator, and the rule is
 * short. Nothing here depends on the value beyond its length and the
 * validity of its encoding; no message quotes it.
 */
#include "config.h"

#include "sv_pwpolicy.h"

#define SV_PW_STR_(x) #x
#define SV_PW_STR(x) SV_PW_STR_(x)

size_t sv_utf8_chars(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;

    while (i < len) {
        unsigned char c = p[i];
        size_t k, more;
        unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */

        if (c < 0x80)
            more = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            more = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0)
                lo = 0xA0;      /* no overlong form */
            else if (c == 0xED)
                hi = 0x9F;      /* no surrogate */
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0)
                lo = 0x90;      /* no overlong form */
            else if (c == 0xF4)
                hi = 0x8F;      /* nothing above U+10FFFF */
        }
        else
            return (size_t)-1;  /* a continuation byte, C0, C1 or F5..FF */
        if (more > len - i - 1)
            return (size_t)-1;  /* cut short */
        for (k = 1; k <= more; k++) {
            unsigned char b = p[i + k];
            if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
                return (size_t)-1;
        }
        i += more + 1;
        n++;
    }
    return n;
}

const char *sv_pwpolicy_check(const char *pw, size_t len)
{
    size_t i, n;

    if (len > SV_PWPOLICY_MAX_BYTES)
        return "A password is at most " SV_PW_STR(SV_PWPOLICY_MAX_BYTES) " bytes long.";
    for (i = 0; i < len; i++)
        if (pw[i] == '\0' || pw[i] == '\n' || pw[i] == '\r')
            return "A password is one line of text.";
    if ((n = sv_utf8_chars(pw, len)) == (size_t)-1)
        return "A password must be valid UTF-8 text.";
    if (n < SV_PWPOLICY_MIN_CHARS)
        return "A password needs at least " SV_PW_STR(SV_PWPOLICY_MIN_CHARS) " characters.";
    return NULL;
}
