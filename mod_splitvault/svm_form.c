/*
 * svm_form.c - reading form bodies: size cap before reading, then the
 * strict urlencoded parser of svm_parse.c. The body holds plaintext data
 * and passwords, so it lives in memory that is cleansed when the request
 * pool is cleared, and decoding happens in place (no further copy). The
 * buffer is sized by what arrives, never by what the client claims, and
 * each request takes a bounded share of the secure heap.
 */
#include "svm.h"
#include "svm_form.h"
#include "svm_parse.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include <openssl/crypto.h>

#include "sv_secret.h"

/* What a request may take of the child's secure heap for its own secret
 * buffers; larger needs are met from the ordinary heap (cleansed all the
 * same), so that no request, however large its body, can crowd the others
 * out of the secure heap. */
#define SVM_SECURE_PER_REQUEST (32u << 10)
/* A body buffer starts this small and doubles as data arrives. */
#define SVM_BODY_FIRST 2048

enum { SVM_MEM_SECURE, SVM_MEM_HEAP, SVM_MEM_POOL };

typedef struct {
    void *p;
    apr_size_t n;
    int kind;           /* SVM_MEM_*: where p came from */
    apr_pool_t *pool;
} svm_secret_block;

/* Bytes of the secure heap this pool's blocks hold (its own counter). */
static apr_size_t *svm_secure_used(apr_pool_t *p)
{
    void *v = NULL;

    apr_pool_userdata_get(&v, "svm_secure_used", p);
    if (!v) {
        v = apr_pcalloc(p, sizeof(apr_size_t));
        apr_pool_userdata_setn(v, "svm_secure_used", NULL, p);
    }
    return v;
}

/* n zeroed bytes for b: from the secure heap while this pool's share and
 * the library's budget allow (sv_secret_alloc), else from the ordinary
 * heap, else (out of memory) from the pool. */
static void svm_block_alloc(svm_secret_block *b, apr_size_t n)
{
    apr_size_t *used = svm_secure_used(b->pool);

    b->n = n ? n : 1;
    if (*used + b->n <= SVM_SECURE_PER_REQUEST && (b->p = sv_secret_alloc(b->n)) != NULL) {
        b->kind = CRYPTO_secure_allocated(b->p) ? SVM_MEM_SECURE : SVM_MEM_HEAP;
        if (b->kind == SVM_MEM_SECURE)
            *used += b->n;
        return;
    }
    if ((b->p = OPENSSL_zalloc(b->n)) != NULL) {
        b->kind = SVM_MEM_HEAP;
        return;
    }
    b->p = apr_pcalloc(b->pool, b->n);
    b->kind = SVM_MEM_POOL;
}

/* Cleanse b's bytes and give them back. */
static void svm_block_release(svm_secret_block *b)
{
    if (!b->p)
        return;
    if (b->kind == SVM_MEM_POOL)
        sv_cleanse(b->p, b->n);
    else {
        /* secure or not, sv_secret_free cleanses before it frees */
        sv_secret_free(b->p, b->n);
        if (b->kind == SVM_MEM_SECURE)
            *svm_secure_used(b->pool) -= b->n;
    }
    b->p = NULL;
}

/* Move b to a block of n bytes, keeping its first keep bytes; the old
 * block is cleansed and released at once. */
static void svm_block_grow(svm_secret_block *b, apr_size_t n, apr_size_t keep)
{
    svm_secret_block nb;

    nb.pool = b->pool;
    svm_block_alloc(&nb, n);
    memcpy(nb.p, b->p, keep);
    svm_block_release(b);
    *b = nb;
}

static apr_status_t svm_secret_cleanup(void *data)
{
    svm_block_release(data);
    return APR_SUCCESS;
}

static svm_secret_block *svm_block_new(apr_pool_t *p, apr_size_t n)
{
    svm_secret_block *b = apr_palloc(p, sizeof(*b));

    b->pool = p;
    svm_block_alloc(b, n);
    apr_pool_cleanup_register(p, b, svm_secret_cleanup, apr_pool_cleanup_null);
    return b;
}

/* Secret memory tied to pool p: from the child's secure heap (locked,
 * excluded from core dumps; see svm_child_init) up to a bounded share per
 * request, else from the heap; cleansed (and released) when p is cleared. */
void *svm_secret_palloc(apr_pool_t *p, apr_size_t n)
{
    return svm_block_new(p, n)->p;
}

int svm_body_read(request_rec *r, apr_off_t max, char **out, apr_size_t *outlen,
                  apr_size_t *size, const char *too_large, const char **why)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    svm_secret_block *b;
    apr_size_t len = 0, limit = (apr_size_t)max + 2;
    int rc;

    /* a Content-Length over the cap is refused unread; any other is not
     * trusted for anything: the buffer grows with what actually arrives */
    if (cl) {
        char *end;
        apr_off_t v;
        if (apr_strtoff(&v, cl, &end, 10) != APR_SUCCESS || *end || v < 0) {
            *why = "The request is malformed.";
            return HTTP_BAD_REQUEST;
        }
        if (v > max) {
            *why = too_large;
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        *why = "The request body could not be read.";
        return rc;
    }
    b = svm_block_new(r->pool, limit < SVM_BODY_FIRST ? limit : SVM_BODY_FIRST);
    /* (asked once: it says "no" as soon as anything has been read) */
    while (rc == OK && (len > 0 || ap_should_client_block(r))) {
        long n;
        /* room for one byte more than the cap (to see it overflow) and the
         * terminating NUL */
        if (len + 1 >= b->n)
            svm_block_grow(b, b->n * 2 < limit ? b->n * 2 : limit, len);
        n = ap_get_client_block(r, (char *)b->p + len, b->n - 1 - len);
        if (n == 0)
            break;
        if (n < 0) {
            *why = "The request body could not be read.";
            rc = HTTP_BAD_REQUEST;
        }
        else if ((apr_off_t)(len += (apr_size_t)n) > max) {
            *why = too_large;
            rc = HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    /* also on failure: the caller may cleanse what arrived at once */
    ((char *)b->p)[len] = '\0';
    *out = b->p;
    *outlen = len;
    if (size)
        *size = b->n;
    return rc;
}

int svm_ct_urlencoded(const char *ct)
{
    return ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0
           && (!ct[33] || ct[33] == ';' || ct[33] == ' ');
}

int svm_parse_verdict(int rc, const char **why)
{
    switch (rc) {
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

int svm_form_read(request_rec *r, apr_off_t max, apr_array_header_t **pairs,
                  const char **why)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    char *body;
    apr_size_t len;
    int rc;

    *pairs = apr_array_make(r->pool, 8, sizeof(svm_pair));
    if (!svm_ct_urlencoded(ct)) {
        *why = "The form must be sent as application/x-www-form-urlencoded.";
        return HTTP_UNSUPPORTED_MEDIA_TYPE;
    }
    if ((rc = svm_body_read(r, max, &body, &len, NULL,
                            "The submission is larger than this form accepts.", why)) != OK)
        return rc;
    return svm_parse_verdict(svm_parse_urlencoded(body, len, 2 * SVM_MAX_FIELDS + 8,
                                                  SVM_NAMES_ANY, *pairs), why);
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

int svm_form_fingerprint(const apr_array_header_t *pairs,
                         char fp[SV_FINGERPRINT_HEX_LEN + 1])
{
    const svm_pair *f = svm_form_get(pairs, "fingerprint");

    if (!f || f->len != SV_FINGERPRINT_HEX_LEN || !sv_key1_fingerprint_ok(f->value))
        return 0;
    memcpy(fp, f->value, SV_FINGERPRINT_HEX_LEN);
    fp[SV_FINGERPRINT_HEX_LEN] = '\0';
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

int svm_query_page(request_rec *r, const char *name, int max)
{
    const char *v = svm_query_arg(r, name);
    long page = 0;
    apr_size_t i, n;

    if (!v || !(n = strlen(v)) || n > 9)
        return 0;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        page = page * 10 + (v[i] - '0');
    }
    return page > max ? 0 : (int)page;
}
