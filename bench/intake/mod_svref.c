/* mod_svref: reference ceilings for SplitVault's intake benchmark (a yardstick, not product code).
 * Handler "svref-null": reads the form, stores a record and 3 field rows of envelope-sized random
 * bytes in one PostgreSQL transaction through mod_dbd. Handler "svref-limit": the same, plus the
 * per-field public-key work the design needs (key2 keygen, seal to key2, seal key2a to key1:
 * 5 X25519 scalar multiplications and 2 AES-256-GCM seals per field), with no daemon round trip.
 * Prepared statements come from DBDPrepareSQL labels svref_rec and svref_dat. */
#include <string.h>
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_log.h"
#include "apr_optional.h"
#include "apr_strings.h"
#include "apr_dbd.h"
#include "mod_dbd.h"
#include <openssl/evp.h>
#include <openssl/rand.h>

module AP_MODULE_DECLARE_DATA svref_module;
static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *acquire;
static unsigned char key1_pub[32];

static void retrieve(void) { acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire); }

static int x25519_keygen(unsigned char pub[32], EVP_PKEY **out)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
    EVP_PKEY *k = NULL; size_t n = 32;
    int ok = c && EVP_PKEY_keygen_init(c) > 0 && EVP_PKEY_keygen(c, &k) > 0
             && EVP_PKEY_get_raw_public_key(k, pub, &n) > 0;
    EVP_PKEY_CTX_free(c);
    if (!ok) { EVP_PKEY_free(k); return 0; }
    *out = k; return 1;
}

/* ephemeral keygen + DH to peer + one AES-256-GCM seal: the cost shape of an HPKE base seal */
static int seal_to(const unsigned char peer[32], const unsigned char *pt, int ptlen,
                   unsigned char enc[32], unsigned char *ct)
{
    EVP_PKEY *e = NULL, *p = NULL; EVP_PKEY_CTX *d = NULL; EVP_CIPHER_CTX *a = NULL;
    unsigned char z[32], key[32], iv[12] = {0}; size_t zl = 32; int l, ok = 0;
    if (!x25519_keygen(enc, &e)) goto out;
    p = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
    d = EVP_PKEY_CTX_new(e, NULL);
    if (!p || !d || EVP_PKEY_derive_init(d) <= 0 || EVP_PKEY_derive_set_peer(d, p) <= 0
        || EVP_PKEY_derive(d, z, &zl) <= 0) goto out;
    if (!EVP_Digest(z, 32, key, NULL, EVP_sha256(), NULL)) goto out;
    a = EVP_CIPHER_CTX_new();
    if (!a || !EVP_EncryptInit_ex(a, EVP_aes_256_gcm(), NULL, key, iv)
        || !EVP_EncryptUpdate(a, ct, &l, pt, ptlen) || !EVP_EncryptFinal_ex(a, ct + l, &l)
        || !EVP_CIPHER_CTX_ctrl(a, EVP_CTRL_GCM_GET_TAG, 16, ct + ptlen)) goto out;
    ok = 1;
out:
    EVP_CIPHER_CTX_free(a); EVP_PKEY_CTX_free(d); EVP_PKEY_free(p); EVP_PKEY_free(e);
    return ok;
}

static int handler(request_rec *r)
{
    int limit;
    if (!r->handler) return DECLINED;
    if (!strcmp(r->handler, "svref-null")) limit = 0;
    else if (!strcmp(r->handler, "svref-limit")) limit = 1;
    else return DECLINED;
    if (r->method_number != M_POST) return HTTP_METHOD_NOT_ALLOWED;

    apr_array_header_t *pairs = NULL;
    if (ap_parse_form_data(r, NULL, &pairs, 16, 65536) != OK) return HTTP_BAD_REQUEST;
    ap_dbd_t *dbd = acquire ? acquire(r) : NULL;
    if (!dbd) return HTTP_SERVICE_UNAVAILABLE;
    apr_dbd_prepared_t *rec = apr_hash_get(dbd->prepared, "svref_rec", APR_HASH_KEY_STRING);
    apr_dbd_prepared_t *dat = apr_hash_get(dbd->prepared, "svref_dat", APR_HASH_KEY_STRING);
    if (!rec || !dat) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "svref: prepared statements missing");
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    unsigned char uuid[16]; RAND_bytes(uuid, 16);
    char *u = apr_palloc(r->pool, 37), *q = u;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *q++ = '-';
        q += apr_snprintf(q, 3, "%02x", uuid[i]);
    }
    apr_dbd_transaction_t *tx = NULL; apr_dbd_results_t *res = NULL; apr_dbd_row_t *row = NULL;
    int n, rv = apr_dbd_transaction_start(dbd->driver, r->pool, dbd->handle, &tx);
    if (!rv) rv = apr_dbd_pvselect(dbd->driver, r->pool, dbd->handle, &res, rec, 0, u, NULL);
    if (!rv) rv = apr_dbd_get_row(dbd->driver, r->pool, res, &row, -1);
    const char *id = (!rv && row) ? apr_pstrdup(r->pool, apr_dbd_get_entry(dbd->driver, row, 0)) : NULL;
    while (id && apr_dbd_get_row(dbd->driver, r->pool, res, &row, -1) == 0) ;
    for (int i = 0; id && !rv && i < pairs->nelts && i < 8; i++) {
        ap_form_pair_t *fp = &((ap_form_pair_t *)pairs->elts)[i];
        apr_off_t len; apr_size_t sz; char *val;
        apr_brigade_length(fp->value, 1, &len); sz = (apr_size_t)len;
        val = apr_palloc(r->pool, sz + 1); apr_brigade_flatten(fp->value, val, &sz);
        unsigned char pk[32], enc[32], wenc[32], key2b[32], key2a[32], wct[48];
        unsigned char *ct = apr_palloc(r->pool, sz + 16);
        if (limit) {
            EVP_PKEY *k2 = NULL; size_t sl = 32;
            if (!x25519_keygen(pk, &k2)) return HTTP_INTERNAL_SERVER_ERROR;
            EVP_PKEY_get_raw_private_key(k2, key2a, &sl); EVP_PKEY_free(k2);
            RAND_priv_bytes(key2b, 32);
            for (int j = 0; j < 32; j++) key2a[j] ^= key2b[j];
            if (!seal_to(pk, (unsigned char *)val, (int)sz, enc, ct)
                || !seal_to(key1_pub, key2a, 32, wenc, wct)) return HTTP_INTERNAL_SERVER_ERROR;
        } else {
            RAND_bytes(pk, 32); RAND_bytes(enc, 32); RAND_bytes(ct, (int)sz + 16);
            RAND_bytes(wenc, 32); RAND_bytes(wct, 48);
        }
        apr_int64_t rid = apr_atoi64(id);
        apr_size_t s32 = 32, s48 = 48, sct = sz + 16;
        const void *args[] = { &rid, fp->name, pk, &s32, "", "", enc, &s32, "", "",
                               ct, &sct, "", "", wenc, &s32, "", "", wct, &s48, "", "" };
        rv = apr_dbd_pbquery(dbd->driver, r->pool, dbd->handle, &n, dat, args);
    }
    if (rv || !id)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "svref: rv=%d id=%s: %s", rv, id ? id : "-",
                      apr_dbd_error(dbd->driver, dbd->handle, rv));
    int end = apr_dbd_transaction_end(dbd->driver, r->pool, tx);
    if (rv || end || !id) return HTTP_INTERNAL_SERVER_ERROR;
    ap_set_content_type(r, "text/plain");
    ap_rprintf(r, "stored %s\n", u);
    return OK;
}

static int post_config(apr_pool_t *p, apr_pool_t *pl, apr_pool_t *pt, server_rec *s)
{
    EVP_PKEY *k = NULL; (void)p; (void)pl; (void)pt; (void)s;
    if (x25519_keygen(key1_pub, &k)) EVP_PKEY_free(k);
    return OK;
}

static void hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_optional_fn_retrieve(retrieve, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(svref) = { STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, hooks,
                             AP_MODULE_FLAG_NONE };
