/*
 * svm_form.c - reading form bodies: size cap before reading, then the
 * strict urlencoded parser of svm_parse.c. The body holds plaintext data
 * and passwords, so it lives in memory that is cleansed when the request
 * pool is cleared, and decoding happens in place (no further copy).
 */
#include "svm.h"
#include "http_protocol.h"
#include "apr_strings.h"

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
    char *body;
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
    switch (svm_parse_urlencoded(body, len, 2 * SVM_MAX_FIELDS + 8, SVM_NAMES_ANY, *pairs)) {
    case SVM_PARSE_OK:
        return OK;
    case SVM_PARSE_TOO_MANY:
        *why = "The form has too many fields.";
        return HTTP_BAD_REQUEST;
    default:
        *why = "The form data is malformed.";
        return HTTP_BAD_REQUEST;
    }
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
