/*
 * fuzz_form.c - libFuzzer target for the urlencoded form parser and the
 * UTF-8 check of mod_splitvault/svm_parse.c (the public form, the staff
 * pages, the sign-in form and the key location's pasted upload).
 *
 * Input: byte 0 selects the name rule (bit 0: SVM_NAMES_TOKEN as the key
 * location uses, else SVM_NAMES_ANY) and bit 1 a small field limit (3
 * instead of 72); the rest is a request body. Each input goes through
 *   1. svm_parse_urlencoded() on an exactly sized copy (plus the one byte
 *      the parser may write after the body);
 *   2. an independent reference decoder written here, which must agree on
 *      acceptance, on the refusal reason and, field by field, on every name
 *      and value;
 *   3. svm_utf8_check() on the whole body and on every decoded value,
 *      compared with a reference validator built from the table of
 *      well-formed byte sequences in RFC 3629 / Unicode 3.9.
 * Any disagreement aborts (a finding), as do the sanitizers.
 *
 * Built with -fsanitize=fuzzer for fuzzing (./configure --enable-fuzz
 * CC=clang), or linked with fuzz/replay.c to replay the seed corpus in
 * `make check`. See docs/fuzzing.md.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "apr_pools.h"
#include "apr_tables.h"

#include "svm_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static apr_pool_t *root;

/* ---- the reference: simple, index based, copying ------------------------ */

static int ref_hex(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode in[0..n) into out (room for n bytes); -1 on a bad escape. */
static long ref_decode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 0, o = 0;

    while (i < n) {
        if (in[i] == '%') {
            if (n - i < 3)
                return -1;
            if (ref_hex(in[i + 1]) < 0 || ref_hex(in[i + 2]) < 0)
                return -1;
            out[o++] = (uint8_t)(ref_hex(in[i + 1]) * 16 + ref_hex(in[i + 2]));
            i += 3;
        }
        else {
            out[o++] = in[i] == '+' ? ' ' : in[i];
            i++;
        }
    }
    return (long)o;
}

static int ref_token(const uint8_t *n, size_t len)
{
    size_t i;

    if (len < 1 || len > 64)
        return 0;
    for (i = 0; i < len; i++)
        if (n[i] <= ' ' || n[i] >= 0x7f || n[i] == '"')
            return 0;
    return 1;
}

/* Well-formed UTF-8 per the Unicode table, then the control-character
 * rules; returns 1 and the number of code points, or 0. */
static int ref_utf8(const uint8_t *s, size_t n, size_t *ncp)
{
    size_t i = 0, count = 0;

    while (i < n) {
        uint8_t b = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf;
        unsigned long cp;

        if (b <= 0x7f) {
            if (b == 0x7f || (b < 0x20 && b != 0x09 && b != 0x0a && b != 0x0d))
                return 0;
            i++;
            count++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf)
            need = 1;
        else if (b >= 0xe0 && b <= 0xef) {
            need = 2;
            if (b == 0xe0)
                lo = 0xa0;
            else if (b == 0xed)
                hi = 0x9f;
        }
        else if (b >= 0xf0 && b <= 0xf4) {
            need = 3;
            if (b == 0xf0)
                lo = 0x90;
            else if (b == 0xf4)
                hi = 0x8f;
        }
        else
            return 0;
        if (n - i < need + 1)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        if (need >= 2 && (s[i + 2] < 0x80 || s[i + 2] > 0xbf))
            return 0;
        if (need == 3 && (s[i + 3] < 0x80 || s[i + 3] > 0xbf))
            return 0;
        if (need == 1) {
            cp = ((unsigned long)(b & 0x1f) << 6) | (s[i + 1] & 0x3f);
            if (cp < 0xa0)
                return 0; /* C1 controls */
        }
        i += need + 1;
        count++;
    }
    *ncp = count;
    return 1;
}

static void check_utf8(const uint8_t *s, size_t n)
{
    size_t a = 0, b = 0;
    int got = svm_utf8_check((const char *)s, n, &a);
    int want = ref_utf8(s, n, &b);

    if (got != want || (got && a != b))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    apr_array_header_t *pairs;
    const uint8_t *in;
    uint8_t *out;
    char *buf;
    size_t n, start, nref = 0;
    int names, max, rc, want = SVM_PARSE_OK;

    if (size < 1)
        return 0;
    if (!root) {
        if (apr_initialize() != APR_SUCCESS || apr_pool_create(&root, NULL) != APR_SUCCESS)
            abort();
    }
    names = data[0] & 1 ? SVM_NAMES_TOKEN : SVM_NAMES_ANY;
    max = data[0] & 2 ? 3 : 72;
    in = data + 1;
    n = size - 1;
    check_utf8(in, n);

    /* the parser may write one byte after the body: size + 1 exactly */
    buf = malloc(n + 1);
    out = malloc(n + 1);
    if (!buf || !out)
        abort();
    memcpy(buf, in, n);
    buf[n] = '\0';
    apr_pool_create(&p, root);
    pairs = apr_array_make(p, 4, sizeof(svm_pair));
    rc = svm_parse_urlencoded(buf, n, max, names, pairs);
    if (rc != SVM_PARSE_OK && rc != SVM_PARSE_MALFORMED && rc != SVM_PARSE_TOO_MANY)
        abort();
    if (pairs->nelts > max)
        abort();

    /* the reference, segment by segment; stop at the first refusal */
    for (start = 0; start <= n && want == SVM_PARSE_OK; ) {
        size_t end = start, eq;
        long nl, vl;
        const svm_pair *pr;

        while (end < n && in[end] != '&')
            end++;
        if (end == start) {
            if (end >= n)
                break;
            start = end + 1;
            continue;
        }
        for (eq = start; eq < end && in[eq] != '='; eq++)
            ;
        if (eq == end) {
            want = SVM_PARSE_MALFORMED;
            break;
        }
        nl = ref_decode(in + start, eq - start, out);
        if (nl <= 0 || memchr(out, 0, (size_t)nl)
            || (names == SVM_NAMES_TOKEN && !ref_token(out, (size_t)nl))) {
            want = SVM_PARSE_MALFORMED;
            break;
        }
        vl = ref_decode(in + eq + 1, end - eq - 1, out + nl);
        if (vl < 0) {
            want = SVM_PARSE_MALFORMED;
            break;
        }
        if ((int)nref >= max) {
            want = SVM_PARSE_TOO_MANY;
            break;
        }
        /* the parser's field nref must be this one */
        if ((int)nref >= pairs->nelts)
            abort();
        pr = &APR_ARRAY_IDX(pairs, nref, svm_pair);
        if (strlen(pr->name) != (size_t)nl || memcmp(pr->name, out, (size_t)nl) != 0)
            abort();
        if (pr->len != (size_t)vl || memcmp(pr->value, out + nl, (size_t)vl) != 0
            || pr->value[vl] != '\0')
            abort();
        /* both point into the body buffer */
        if ((const char *)pr->name < buf || pr->value < buf || pr->value + vl > buf + n)
            abort();
        check_utf8((const uint8_t *)pr->value, pr->len);
        nref++;
        if (end >= n)
            break;
        start = end + 1;
    }
    if (rc != want || (rc == SVM_PARSE_OK && (size_t)pairs->nelts != nref))
        abort();
    apr_pool_destroy(p);
    free(buf);
    free(out);
    return 0;
}
