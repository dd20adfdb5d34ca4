/*
 * fuzz_multipart.c - libFuzzer target for the multipart/form-data parser
 * of mod_splitvault/svm_parse.c (the key location's file upload).
 *
 * Input: a Content-Type value, a line feed, then a request body (without a
 * line feed, the whole input is the Content-Type and the body is empty).
 * Each input goes through
 *   1. svm_parse_boundary() on the Content-Type: a boundary it returns must
 *      be 1 to 70 printable ASCII characters that occur in the value right
 *      after a "boundary=" (or its quote);
 *   2. with that boundary (or, when there is none, the fixed boundary "b"),
 *      svm_parse_multipart() on an exactly sized copy of the body (plus
 *      the one byte the parser may write after it), at most 16 parts.
 * For an accepted body it checks against the untouched input that the body
 * starts with "--boundary"; that every value lies inside the body, after
 * the previous one, right after a blank line (CRLF CRLF) and right before
 * a delimiter ("CRLF--boundary"), and is NUL-terminated there; that its
 * name is 1 to 64 printable ASCII characters without '"' and appears as
 * name="..." in that part's headers; and that the body closes with
 * "--boundary--". Any violation aborts (a finding), as do the sanitizers.
 *
 * Built with -fsanitize=fuzzer for fuzzing (./configure --enable-fuzz
 * CC=clang), or linked with fuzz/replay.c to replay the seed corpus in
 * `make check`. See docs/fuzzing.md.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apr_general.h"
#include "apr_pools.h"
#include "apr_tables.h"

#include "svm_parse.h"

#define MAX_PARTS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static apr_pool_t *root;

/* Find needle[0..nl) in h[0..hl), case-insensitively when ci is set. */
static const uint8_t *find(const uint8_t *h, size_t hl, const char *needle, size_t nl, int ci)
{
    size_t i;

    for (i = 0; nl <= hl && i <= hl - nl; i++)
        if (ci ? strncasecmp((const char *)h + i, needle, nl) == 0
               : memcmp(h + i, needle, nl) == 0)
            return h + i;
    return NULL;
}

static void check_boundary(const char *ct, const char *b)
{
    size_t n = strlen(b), i;
    const char *at;

    if (n < 1 || n > 70)
        abort();
    for (i = 0; i < n; i++)
        if (b[i] < 0x20 || b[i] > 0x7e)
            abort();
    /* it came from this Content-Type, after "boundary=" or its quote */
    for (at = ct; (at = strstr(at, b)) != NULL; at++)
        if ((at - ct >= 9 && strncasecmp(at - 9, "boundary=", 9) == 0)
            || (at - ct >= 10 && strncasecmp(at - 10, "boundary=\"", 10) == 0))
            return;
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *lf = memchr(data, '\n', size), *body;
    char *ct, *buf, delim[4 + 70 + 1];
    const char *boundary;
    size_t ctlen = lf ? (size_t)(lf - data) : size, n, bl, dl, i;
    apr_pool_t *p;
    apr_array_header_t *pairs;
    const char *prev_end;
    int rc;

    if (!root) {
        if (apr_initialize() != APR_SUCCESS || apr_pool_create(&root, NULL) != APR_SUCCESS)
            abort();
    }
    apr_pool_create(&p, root);
    if (!(ct = malloc(ctlen + 1)))
        abort();
    memcpy(ct, data, ctlen);
    ct[ctlen] = '\0';
    boundary = svm_parse_boundary(p, ct);
    if (boundary)
        check_boundary(ct, boundary);
    else
        boundary = "b";
    body = lf ? lf + 1 : data + size;
    n = (size_t)(data + size - body);
    if (!(buf = malloc(n + 1)))
        abort();
    memcpy(buf, body, n);
    buf[n] = '\0';

    pairs = apr_array_make(p, 4, sizeof(svm_pair));
    rc = svm_parse_multipart(buf, n, boundary, MAX_PARTS, pairs);
    if (rc != SVM_PARSE_OK && rc != SVM_PARSE_MALFORMED && rc != SVM_PARSE_TOO_MANY)
        abort();
    if (pairs->nelts > MAX_PARTS)
        abort();
    if (rc != SVM_PARSE_OK)
        goto out;

    bl = strlen(boundary);
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, bl);
    dl = 4 + bl;
    if (n < dl - 2 || memcmp(body, delim + 2, dl - 2) != 0)
        abort();
    prev_end = buf + dl - 2;
    for (i = 0; i < (size_t)pairs->nelts; i++) {
        const svm_pair *pr = &APR_ARRAY_IDX(pairs, i, svm_pair);
        size_t off, nl = strlen(pr->name), k;
        char pat[6 + 64 + 1];

        if (pr->value < prev_end + 4 || pr->value > buf + n || pr->len > n
            || (size_t)(buf + n - pr->value) < pr->len)
            abort();
        off = (size_t)(pr->value - buf);
        if (memcmp(body + off - 4, "\r\n\r\n", 4) != 0)
            abort();
        if (n - off - pr->len < dl || memcmp(body + off + pr->len, delim, dl) != 0)
            abort();
        if (pr->value[pr->len] != '\0')
            abort();
        /* the name: printable ASCII, and name="..." in this part's headers */
        if (nl < 1 || nl > 64 || pr->name < prev_end || pr->name > pr->value)
            abort();
        for (k = 0; k < nl; k++)
            if (pr->name[k] <= ' ' || pr->name[k] >= 0x7f || pr->name[k] == '"')
                abort();
        memcpy(pat, "name=\"", 6);
        memcpy(pat + 6, pr->name, nl);
        pat[6 + nl] = '"';
        {
            size_t from = (size_t)(prev_end - buf), to = off - 4;
            const uint8_t *at = find(body + from, to - from, "name=\"", 6, 1);
            int seen = 0;
            while (at && !seen) {
                size_t rest = (size_t)(body + to - at);
                seen = rest >= 7 + nl && memcmp(at + 6, pat + 6, nl + 1) == 0;
                at = find(at + 1, rest - 1, "name=\"", 6, 1);
            }
            if (!seen)
                abort();
        }
        prev_end = pr->value + pr->len + dl;
    }
    /* the closing delimiter follows the last part */
    {
        size_t off = (size_t)(prev_end - buf);
        if (n - off < 2 || body[off] != '-' || body[off + 1] != '-')
            abort();
    }
out:
    apr_pool_destroy(p);
    free(ct);
    free(buf);
    return 0;
}
