/*
 * svm_form.c - reading form bodies: size cap before reading, strict
 * urlencoded parsing, strict UTF-8. The body holds plaintext data and
 * passwords, so it lives in memory that is cleansed when the request pool
 * is cleared, and decoding happens in place (no further copy).
 */
#include "svm.h"
#include "http_protocol.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include "sv_secret.h"

typedef struct {
    void *p;
    apr_size_t n;
    int secure;     /* from sv_secret_alloc(), else from the pool */
} svm_secret_block;

static apr_status_t svm_secret_cleanup(void *data)
{
    svm_secret_block *b = data;

    if (b->secure)
        sv_secret_free(b->p, b->n);
    else
        sv_cleanse(b->p, b->n);
    return APR_SUCCESS;
}

/* Secret memory tied to pool p: from the child's secure heap (locked,
 * excluded from core dumps; see svm_child_init) while it has room, else
 * from the pool; cleansed (and released) when p is cleared. */
void *svm_secret_palloc(apr_pool_t *p, apr_size_t n)
{
    svm_secret_block *b = apr_palloc(p, sizeof(*b));

    b->n = n ? n : 1;
    b->p = sv_secret_alloc(b->n);
    b->secure = b->p != NULL;
    if (!b->p)
        b->p = apr_pcalloc(p, b->n);
    apr_pool_cleanup_register(p, b, svm_secret_cleanup, apr_pool_cleanup_null);
    return b->p;
}

static int svm_unhex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = apr_tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode one urlencoded component in place ('+' is a space). Returns the
 * decoded length, or -1 on a malformed %-escape. */
static long svm_urldecode(char *s, apr_size_t len)
{
    apr_size_t i, o = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '+')
            s[o++] = ' ';
        else if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return -1;
            hi = svm_unhex((unsigned char)s[i + 1]);
            lo = svm_unhex((unsigned char)s[i + 2]);
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

/* Read the whole body (at most max bytes) into cleansed memory. */
static int svm_read_body(request_rec *r, apr_off_t max, char **out, apr_size_t *outlen,
                         const char **why)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t want = max;
    char *buf;
    apr_size_t len = 0;
    long n;
    int rc;

    if (cl) {
        char *end;
        apr_off_t v;
        if (apr_strtoff(&v, cl, &end, 10) != APR_SUCCESS || *end || v < 0) {
            *why = "The request is malformed.";
            return HTTP_BAD_REQUEST;
        }
        if (v > max) {
            *why = "The submission is larger than this form accepts.";
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
        want = v;
    }
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        *why = "The request body could not be read.";
        return rc;
    }
    buf = svm_secret_palloc(r->pool, (apr_size_t)want + 2);
    if (ap_should_client_block(r)) {
        for (;;) {
            apr_size_t room = (apr_size_t)want + 1 - len; /* one more: detects overflow */
            if (room == 0) {
                *why = "The submission is larger than this form accepts.";
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            n = ap_get_client_block(r, buf + len, room);
            if (n < 0) {
                *why = "The request body could not be read.";
                return HTTP_BAD_REQUEST;
            }
            if (n == 0)
                break;
            len += (apr_size_t)n;
            if ((apr_off_t)len > want) {
                *why = "The submission is larger than this form accepts.";
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
        }
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return OK;
}

int svm_form_read(request_rec *r, apr_off_t max, apr_array_header_t **pairs,
                  const char **why)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    char *body, *p, *end;
    apr_size_t len;
    int rc;

    *pairs = apr_array_make(r->pool, 8, sizeof(svm_pair));
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0
        || (ct[33] && ct[33] != ';' && ct[33] != ' ')) {
        *why = "The form must be sent as application/x-www-form-urlencoded.";
        return HTTP_UNSUPPORTED_MEDIA_TYPE;
    }
    if ((rc = svm_read_body(r, max, &body, &len, why)) != OK)
        return rc;
    for (p = body, end = body + len; p < end;) {
        char *amp = memchr(p, '&', (apr_size_t)(end - p));
        char *seg_end = amp ? amp : end;
        char *eq = memchr(p, '=', (apr_size_t)(seg_end - p));
        svm_pair *pr;
        long nl, vl;

        if (seg_end == p) { /* empty segment ("a=1&&b=2") */
            p = seg_end + 1;
            continue;
        }
        if (!eq) {
            *why = "The form data is malformed.";
            return HTTP_BAD_REQUEST;
        }
        *eq = '\0';
        *seg_end = '\0';
        nl = svm_urldecode(p, (apr_size_t)(eq - p));
        vl = svm_urldecode(eq + 1, (apr_size_t)(seg_end - eq - 1));
        if (nl <= 0 || vl < 0 || (apr_size_t)nl != strlen(p)) {
            *why = "The form data is malformed.";
            return HTTP_BAD_REQUEST;
        }
        if ((*pairs)->nelts >= 2 * SVM_MAX_FIELDS + 8) {
            *why = "The form has too many fields.";
            return HTTP_BAD_REQUEST;
        }
        pr = apr_array_push(*pairs);
        pr->name = p;   /* names are not secret, but live in the same block */
        pr->value = eq + 1;
        pr->len = (apr_size_t)vl;
        p = seg_end + 1;
    }
    return OK;
}

const svm_pair *svm_form_get(const apr_array_header_t *pairs, const char *name)
{
    const svm_pair *p = (const svm_pair *)pairs->elts;
    int i;

    for (i = 0; i < pairs->nelts; i++)
        if (strcmp(p[i].name, name) == 0)
            return &p[i];
    return NULL;
}

int svm_utf8_check(const char *s, apr_size_t len, apr_size_t *ncp)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t i = 0, n = 0;

    while (i < len) {
        unsigned c = u[i];
        unsigned cp, need;

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
            return 0; /* continuation byte, overlong lead (c0, c1) or > U+10FFFF */
        if (i + need >= len)
            return 0;
        {
            unsigned k;
            for (k = 1; k <= need; k++) {
                if ((u[i + k] & 0xc0) != 0x80)
                    return 0;
                cp = (cp << 6) | (u[i + k] & 0x3f);
            }
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

const char *svm_query_arg(request_rec *r, const char *name)
{
    const char *q = r->args;
    apr_size_t nl = strlen(name);

    while (q && *q) {
        const char *amp = strchr(q, '&');
        apr_size_t seg = amp ? (apr_size_t)(amp - q) : strlen(q);
        if (seg > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
            char *v = apr_pstrmemdup(r->pool, q + nl + 1, seg - nl - 1);
            long l = svm_urldecode(v, strlen(v));
            return l < 0 ? NULL : v;
        }
        if (seg == nl && strncmp(q, name, nl) == 0)
            return "";
        q = amp ? amp + 1 : NULL;
    }
    return NULL;
}
