/*
 * svm_upload.c - the key location's form bodies: a key1 PEM and its
 * passphrase, as multipart/form-data (a file input) or urlencoded (pasted).
 *
 * Unlike svm_form.c, the whole body is kept as one block so that it can be
 * cleansed at once, right after the key has been checked and loaded: the
 * in-place decoding leaves parts of the encoded text behind the decoded
 * values, and a plain key1 PEM is the private key itself. The block lives
 * in secret memory (svm_secret_palloc), cleansed again at pool cleanup.
 *
 * Parsing is strict: a size cap before reading, names of printable ASCII,
 * at most SVM_UPLOAD_MAX_PARTS fields, and a multipart body that starts
 * with its first delimiter and ends with the closing one.
 */
#include "svm.h"
#include "http_protocol.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include "sv_secret.h"

#define SVM_UPLOAD_MAX_PARTS 16
#define SVM_BOUNDARY_MAX 70   /* RFC 2046 */

/* Read the whole body (at most max bytes) into secret memory. */
static int svm_upload_body(request_rec *r, apr_off_t max, svm_upload *u, const char **why)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t want = max;
    apr_size_t len = 0;
    int rc;

    if (cl) {
        char *end;
        apr_off_t v;
        if (apr_strtoff(&v, cl, &end, 10) != APR_SUCCESS || *end || v < 0) {
            *why = "The request is malformed.";
            return HTTP_BAD_REQUEST;
        }
        if (v > max) {
            *why = "The upload is larger than any key file.";
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
        want = v;
    }
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        *why = "The request body could not be read.";
        return rc;
    }
    u->buf = svm_secret_palloc(r->pool, (apr_size_t)want + 2);
    if (ap_should_client_block(r)) {
        for (;;) {
            apr_size_t room = (apr_size_t)want + 1 - len; /* one more: detects overflow */
            long n;
            if (room == 0) {
                *why = "The upload is larger than any key file.";
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            n = ap_get_client_block(r, u->buf + len, room);
            if (n < 0) {
                *why = "The request body could not be read.";
                return HTTP_BAD_REQUEST;
            }
            if (n == 0)
                break;
            len += (apr_size_t)n;
            if ((apr_off_t)len > want) {
                *why = "The upload is larger than any key file.";
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
        }
    }
    u->buf[len] = '\0';
    u->len = len;
    return OK;
}

static int svm_hexdigit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = apr_tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode one urlencoded component in place; -1 on a bad escape. */
static long svm_upload_unescape(char *s, apr_size_t len)
{
    apr_size_t i, o = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '+')
            s[o++] = ' ';
        else if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return -1;
            hi = svm_hexdigit((unsigned char)s[i + 1]);
            lo = svm_hexdigit((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            s[o++] = (char)(hi << 4 | lo);
            i += 2;
        }
        else
            s[o++] = s[i];
    }
    s[o] = '\0';
    return (long)o;
}

/* 1 when name is 1..64 printable ASCII without quotes. */
static int svm_upload_name_ok(const char *n, apr_size_t len)
{
    apr_size_t i;

    if (len == 0 || len > 64)
        return 0;
    for (i = 0; i < len; i++)
        if (n[i] < 0x21 || n[i] > 0x7e || n[i] == '"')
            return 0;
    return 1;
}

static int svm_upload_add(svm_upload *u, const char *name, char *value, apr_size_t len)
{
    svm_pair *p;

    if (u->pairs->nelts >= SVM_UPLOAD_MAX_PARTS)
        return -1;
    p = apr_array_push(u->pairs);
    p->name = name;
    p->value = value;
    p->len = len;
    return 0;
}

static int svm_upload_urlencoded(svm_upload *u, const char **why)
{
    char *p = u->buf, *end = u->buf + u->len;

    while (p < end) {
        char *amp = memchr(p, '&', (apr_size_t)(end - p));
        char *seg_end = amp ? amp : end;
        char *eq = memchr(p, '=', (apr_size_t)(seg_end - p));
        long nl, vl;

        if (seg_end == p) {
            p++;
            continue;
        }
        if (!eq)
            goto bad;
        *eq = '\0';
        *seg_end = '\0';
        nl = svm_upload_unescape(p, (apr_size_t)(eq - p));
        vl = svm_upload_unescape(eq + 1, (apr_size_t)(seg_end - eq - 1));
        if (nl <= 0 || vl < 0 || !svm_upload_name_ok(p, (apr_size_t)nl)
            || (apr_size_t)nl != strlen(p))
            goto bad;
        if (svm_upload_add(u, p, eq + 1, (apr_size_t)vl)) {
            *why = "The form has too many fields.";
            return HTTP_BAD_REQUEST;
        }
        p = seg_end + 1;
    }
    return OK;
bad:
    *why = "The form data is malformed.";
    return HTTP_BAD_REQUEST;
}

/* The boundary parameter of a multipart Content-Type, or NULL. */
static const char *svm_boundary(request_rec *r, const char *ct)
{
    const char *b = ap_strcasestr(ct, "boundary=");
    apr_size_t n;

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
    return apr_pstrmemdup(r->pool, b, n);
}

/* Find needle in [h, h+hl). */
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
 * or NULL when there is no form-data Content-Disposition with a name. */
static const char *svm_part_name(char *h, apr_size_t hl)
{
    char *line = h, *end = h + hl;

    while (line < end) {
        char *eol = svm_memfind(line, (apr_size_t)(end - line), "\r\n", 2);
        char *le = eol ? eol : end, *n, *q;
        if (le - line > 20 && strncasecmp(line, "Content-Disposition:", 20) == 0) {
            *le = '\0';
            if (!ap_strcasestr(line, "form-data"))
                return NULL;
            /* name=, not filename= */
            for (n = line; (n = ap_strcasestr(n, "name=\"")); n += 6)
                if (n[-1] == ' ' || n[-1] == ';')
                    break;
            if (!n)
                return NULL;
            n += 6;
            if (!(q = strchr(n, '"')))
                return NULL;
            *q = '\0';
            return svm_upload_name_ok(n, (apr_size_t)(q - n)) ? n : NULL;
        }
        line = le + 2;
    }
    return NULL;
}

static int svm_upload_multipart(request_rec *r, svm_upload *u, const char *boundary,
                                const char **why)
{
    const char *delim = apr_pstrcat(r->pool, "\r\n--", boundary, NULL);
    apr_size_t dl = strlen(delim);
    char *p = u->buf, *end = u->buf + u->len;

    /* the body starts with the first delimiter (without its CRLF) */
    if (u->len < dl - 2 || memcmp(p, delim + 2, dl - 2) != 0)
        goto bad;
    p += dl - 2;
    for (;;) {
        char *hdr_end, *next;
        const char *name;

        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            goto bad;
        p += 2;
        if (!(hdr_end = svm_memfind(p, (apr_size_t)(end - p), "\r\n\r\n", 4)))
            goto bad;
        if (!(next = svm_memfind(hdr_end + 4, (apr_size_t)(end - hdr_end - 4), delim, dl)))
            goto bad;
        if (!(name = svm_part_name(p, (apr_size_t)(hdr_end - p))))
            goto bad;
        *next = '\0'; /* the CR of the delimiter: the value ends here */
        if (svm_upload_add(u, name, hdr_end + 4, (apr_size_t)(next - hdr_end - 4))) {
            *why = "The form has too many fields.";
            return HTTP_BAD_REQUEST;
        }
        p = next + dl;
    }
    return OK;
bad:
    *why = "The form data is malformed.";
    return HTTP_BAD_REQUEST;
}

int svm_upload_read(request_rec *r, apr_off_t max, svm_upload *u, const char **why)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *boundary = NULL;
    int rc, multipart = 0;

    memset(u, 0, sizeof(*u));
    u->pairs = apr_array_make(r->pool, 8, sizeof(svm_pair));
    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0
        && (ct[19] == ';' || ct[19] == ' ')) {
        multipart = 1;
        if (!(boundary = svm_boundary(r, ct))) {
            *why = "The multipart form has no valid boundary.";
            return HTTP_BAD_REQUEST;
        }
    }
    else if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0
             || (ct[33] && ct[33] != ';' && ct[33] != ' ')) {
        *why = "The form must be sent as multipart/form-data or "
               "application/x-www-form-urlencoded.";
        return HTTP_UNSUPPORTED_MEDIA_TYPE;
    }
    if ((rc = svm_upload_body(r, max, u, why)) != OK)
        return rc;
    return multipart ? svm_upload_multipart(r, u, boundary, why)
                     : svm_upload_urlencoded(u, why);
}

void svm_upload_wipe(svm_upload *u)
{
    if (u->buf)
        sv_cleanse(u->buf, u->len + 2);
}
