/*
 * svm_parse.c - parsing of untrusted form bodies (see svm_parse.h).
 *
 * No httpd header here: the module's body readers and the libFuzzer targets
 * share this file. Every function is bounded by the lengths it is given
 * (never by a NUL inside the data) and refuses rather than guesses.
 */
#include <string.h>

#include "apr_lib.h"
#include "apr_strings.h"

#include "svm_parse.h"
#include "sv_hex.h"

#define SVM_BOUNDARY_MAX 70   /* RFC 2046 */
#define SVM_NAME_MAX 64

long svm_urldecode(char *s, apr_size_t len)
{
    apr_size_t i, o = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '+')
            s[o++] = ' ';
        else if (s[i] == '%') {
            uint8_t b;
            /* the core's decoder: either case, no branch on the digits
             * (form values are what visitors protect) */
            if (len - i < 3 || sv_hex_decode(s + i + 1, 2, &b, 1) != SV_OK)
                return -1;
            s[o++] = (char)b;
            i += 2;
        }
        else
            s[o++] = s[i];
    }
    s[o] = '\0';
    return (long)o;
}

int svm_parse_name_ok(const char *n, apr_size_t len)
{
    apr_size_t i;

    if (len == 0 || len > SVM_NAME_MAX)
        return 0;
    for (i = 0; i < len; i++)
        if (n[i] < 0x21 || n[i] > 0x7e || n[i] == '"')
            return 0;
    return 1;
}

static int svm_add(apr_array_header_t *pairs, int max, const char *name, char *value,
                   apr_size_t len)
{
    svm_pair *p;

    if (pairs->nelts >= max)
        return SVM_PARSE_TOO_MANY;
    p = apr_array_push(pairs);
    p->name = name;
    p->value = value;
    p->len = len;
    return SVM_PARSE_OK;
}

int svm_parse_urlencoded(char *buf, apr_size_t len, int max_pairs, int names,
                         apr_array_header_t *pairs)
{
    char *p = buf, *end = buf + len;

    while (p < end) {
        char *amp = memchr(p, '&', (apr_size_t)(end - p));
        char *seg_end = amp ? amp : end;
        char *eq = memchr(p, '=', (apr_size_t)(seg_end - p));
        long nl, vl;
        int rc;

        if (seg_end == p) { /* an empty segment ("a=1&&b=2") */
            p = seg_end + 1;
            continue;
        }
        if (!eq)
            return SVM_PARSE_MALFORMED;
        *eq = '\0';
        *seg_end = '\0';
        nl = svm_urldecode(p, (apr_size_t)(eq - p));
        vl = svm_urldecode(eq + 1, (apr_size_t)(seg_end - eq - 1));
        /* a name with a NUL in it would compare as another name */
        if (nl <= 0 || vl < 0 || (apr_size_t)nl != strlen(p))
            return SVM_PARSE_MALFORMED;
        if (names == SVM_NAMES_TOKEN && !svm_parse_name_ok(p, (apr_size_t)nl))
            return SVM_PARSE_MALFORMED;
        if ((rc = svm_add(pairs, max_pairs, p, eq + 1, (apr_size_t)vl)) != SVM_PARSE_OK)
            return rc;
        p = seg_end + 1;
    }
    return SVM_PARSE_OK;
}

/* Case-insensitive search for needle (ASCII) in the NUL-terminated h. */
static const char *svm_strcasestr(const char *h, const char *needle)
{
    apr_size_t nl = strlen(needle);

    for (; *h; h++)
        if (strncasecmp(h, needle, nl) == 0)
            return h;
    return NULL;
}

const char *svm_parse_boundary(apr_pool_t *p, const char *ct)
{
    const char *b = svm_strcasestr(ct, "boundary="), *c;
    apr_size_t n;

    /* the parameter's name starts after ';' or white space */
    while (b && b > ct && b[-1] != ';' && b[-1] != ' ' && b[-1] != '\t')
        b = svm_strcasestr(b + 1, "boundary=");
    if (!b)
        return NULL;
    b += 9;
    if (*b == '"') {
        const char *q = strchr(++b, '"');
        if (!q)
            return NULL;
        n = (apr_size_t)(q - b);
    }
    else
        n = strcspn(b, "; \t");
    if (n == 0 || n > SVM_BOUNDARY_MAX)
        return NULL;
    for (c = b; c < b + n; c++)
        if (*c < 0x20 || *c > 0x7e)
            return NULL;
    return apr_pstrmemdup(p, b, n);
}

/* Find needle[0..nl) in [h, h+hl). */
static char *svm_memfind(char *h, apr_size_t hl, const char *needle, apr_size_t nl)
{
    while (hl >= nl) {
        char *c = memchr(h, needle[0], hl - nl + 1);
        if (!c)
            return NULL;
        if (memcmp(c, needle, nl) == 0)
            return c;
        hl -= (apr_size_t)(c + 1 - h);
        h = c + 1;
    }
    return NULL;
}

/* The name="..." of a part's headers [h, h+hl) (NUL-terminated in place),
 * or NULL when there is no form-data Content-Disposition with a good name.
 * h[hl] must be writable (it is the CR that ends the headers). */
static const char *svm_part_name(char *h, apr_size_t hl)
{
    char *line = h, *end = h + hl;

    while (line < end) {
        char *eol = svm_memfind(line, (apr_size_t)(end - line), "\r\n", 2);
        char *le = eol ? eol : end, *q;
        const char *n;
        if (le - line > 20 && strncasecmp(line, "Content-Disposition:", 20) == 0) {
            *le = '\0';
            if (!svm_strcasestr(line + 20, "form-data"))
                return NULL;
            /* name=, not filename= */
            for (n = line + 20; (n = svm_strcasestr(n, "name=\"")); n += 6)
                if (n[-1] == ' ' || n[-1] == ';' || n[-1] == '\t')
                    break;
            if (!n)
                return NULL;
            n += 6;
            if (!(q = strchr(n, '"')))
                return NULL;
            *q = '\0';
            return svm_parse_name_ok(n, (apr_size_t)(q - n)) ? n : NULL;
        }
        line = le + 2;
    }
    return NULL;
}

int svm_parse_multipart(char *buf, apr_size_t len, const char *boundary, int max_parts,
                        apr_array_header_t *pairs)
{
    char delim[2 + 2 + SVM_BOUNDARY_MAX + 1];
    apr_size_t bl = strlen(boundary), dl;
    char *p = buf, *end = buf + len;
    int rc;

    if (bl == 0 || bl > SVM_BOUNDARY_MAX)
        return SVM_PARSE_MALFORMED;
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, bl);
    dl = 4 + bl;
    /* the body starts with the first delimiter (without its CRLF) */
    if (len < dl - 2 || memcmp(p, delim + 2, dl - 2) != 0)
        return SVM_PARSE_MALFORMED;
    p += dl - 2;
    for (;;) {
        char *hdr_end, *next;
        const char *name;

        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return SVM_PARSE_OK; /* the closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return SVM_PARSE_MALFORMED;
        p += 2;
        if (!(hdr_end = svm_memfind(p, (apr_size_t)(end - p), "\r\n\r\n", 4)))
            return SVM_PARSE_MALFORMED;
        if (!(next = svm_memfind(hdr_end + 4, (apr_size_t)(end - hdr_end - 4), delim, dl)))
            return SVM_PARSE_MALFORMED;
        if (!(name = svm_part_name(p, (apr_size_t)(hdr_end - p))))
            return SVM_PARSE_MALFORMED;
        *next = '\0'; /* the CR of the delimiter: the value ends here */
        rc = svm_add(pairs, max_parts, name, hdr_end + 4, (apr_size_t)(next - hdr_end - 4));
        if (rc != SVM_PARSE_OK)
            return rc;
        p = next + dl;
    }
}

int svm_utf8_check(const char *s, apr_size_t len, apr_size_t *ncp)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t i = 0, n = 0;

    while (i < len) {
        unsigned c = u[i];
        unsigned cp, need, k;

        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
                return 0;
            i++;
            n++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        }
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        }
        else
            return 0; /* a continuation byte, an overlong lead (c0, c1) or > U+10FFFF */
        if (len - i <= need)
            return 0;
        for (k = 1; k <= need; k++) {
            if ((u[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (u[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff))
            || (cp >= 0xd800 && cp <= 0xdfff))
            return 0; /* overlong, out of range, or a surrogate */
        if (cp >= 0x80 && cp < 0xa0)
            return 0; /* C1 controls */
        i += need + 1;
        n++;
    }
    *ncp = n;
    return 1;
}
