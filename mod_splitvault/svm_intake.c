/*
 * svm_intake.c - the public form and anonymous intake (docs/design.md, "Intake").
 *
 * For each configured field: a fresh key2 pair, the value sealed to key2's
 * public key, sk2 split into key2a and key2b. One STORE hands every key2b to
 * the daemon and returns the share ids; only then is each key2a sealed to
 * the active key1 public key (its aad names the share id), and the record
 * and all its fields are inserted in one transaction, which starts only
 * while it can still end within SVM_SHARE_MAX_AGE of the STORE. Nothing but public
 * keys is needed, so intake works while key1 is not loaded. A failure at any
 * step leaves no record (orphan shares on the daemon are removed by
 * reconcile) and shows "not stored, please try again". sk2 is wiped right
 * after the split; key2a, key2b and the plaintext body live in memory that
 * is cleansed explicitly and again at pool cleanup.
 *
 * Every configured field is stored, empty or not, so staff can later update
 * any field of any record and a record does not reveal which fields were
 * left empty.
 */
#include "svm.h"
#include "svm_intake.h"
#include "svm_config.h"
#include "svm_daemon.h"
#include "svm_db.h"
#include "svm_fault.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_key1.h"
#include "svm_parse.h"
#include "svm_record.h"
#include "svm_throttle.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include <openssl/rand.h>

#include "sv_key2.h"
#include "sv_secret.h"

#define SVM_NOT_STORED "Your submission was NOT stored because of a temporary problem on " \
                       "our side. Please try again in a few minutes."

int svm_form_page(request_rec *r, const svm_srv_conf *sc, const char *const *errors,
                  int status)
{
    const svm_field *f = (const svm_field *)sc->fields->elts;
    int i;

    r->status = status;
    svm_security_headers(r, 1);
    if (status >= 400)
        r->connection->keepalive = AP_CONN_CLOSE;
    svm_page_begin(r, sc, sc->title, NULL);
    ap_rprintf(r, "<h1>%s</h1>\n", svm_esc(r->pool, sc->title));
    if (sc->intro)
        ap_rprintf(r, "<p>%s</p>\n", svm_esc(r->pool, sc->intro));
    if (errors && errors[0]) {
        ap_rputs("<div class=\"errors\" role=\"alert\"><p class=\"error\">Nothing was stored. "
                 "Please correct the following and send the form again:</p><ul>\n", r);
        for (i = 0; errors[i]; i++)
            ap_rprintf(r, "<li>%s</li>\n", svm_esc(r->pool, errors[i]));
        ap_rputs("</ul></div>\n", r);
    }
    ap_rprintf(r, "<form method=\"post\" action=\"%s\" accept-charset=\"utf-8\">\n",
               svm_esc(r->pool, svm_url(r, sc, "/")));
    for (i = 0; i < sc->fields->nelts; i++) {
        const char *id = svm_esc(r->pool, f[i].name);
        ap_rprintf(r, "<label for=\"f-%s\">%s <span class=\"hint\">(%s, up to %d "
                   "characters)</span></label>\n", id, svm_esc(r->pool, f[i].label),
                   f[i].required ? "required" : "optional", f[i].maxlen);
        if (f[i].multiline)
            ap_rprintf(r, "<textarea id=\"f-%s\" name=\"%s\" maxlength=\"%d\"%s></textarea>\n",
                       id, id, f[i].maxlen, f[i].required ? " required" : "");
        else
            ap_rprintf(r, "<input type=\"text\" id=\"f-%s\" name=\"%s\" maxlength=\"%d\" "
                       "autocomplete=\"off\"%s>\n", id, id, f[i].maxlen,
                       f[i].required ? " required" : "");
    }
    ap_rputs("<button type=\"submit\">Send securely</button>\n</form>\n"
             "<p class=\"hint\">What you send is encrypted before it is stored. You will get "
             "a reference code; nobody can use it to read your submission back.</p>\n", r);
    svm_page_end(r);
    return OK;
}

/* A human-friendly reference code: 10 Crockford base32 symbols (50 bits)
 * as XXXXX-XXXXX. */
static int svm_make_ref(char out[SVM_REF_LEN + 1])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    unsigned char b[10];
    int i, o = 0;

    if (RAND_bytes(b, sizeof(b)) != 1)
        return -1;
    for (i = 0; i < 10; i++) {
        if (i == 5)
            out[o++] = '-';
        out[o++] = alphabet[b[i] & 31];
    }
    out[o] = '\0';
    return 0;
}

typedef struct {
    const svm_field *f;
    const char *value;
    apr_size_t len;
    unsigned char pub[SV_X25519_LEN];
    unsigned char enc[SV_HPKE_ENC_LEN];
    unsigned char *ct;
    apr_size_t ct_len;
    unsigned char wenc[SV_HPKE_ENC_LEN];
    unsigned char wct[SV_WRAPPED_CT_LEN];
    uint64_t share_id;
} svm_intake_field;

/* Seal every field and split its key; key2a[i] and key2b[i] receive the
 * shares (32 bytes each). Returns 0 or -1 (logged). */
static int svm_seal_fields(request_rec *r, const uint8_t uuid[SV_UUID_LEN],
                           svm_intake_field *xf, int n, unsigned char *key2a,
                           unsigned char *key2b)
{
    unsigned char sk2[SV_X25519_LEN];
    sv_status st = SV_OK;
    int i;

    for (i = 0; i < n && st == SV_OK; i++) {
        xf[i].ct_len = xf[i].len + SV_HPKE_TAG_LEN;
        xf[i].ct = apr_palloc(r->pool, xf[i].ct_len);
        if ((st = sv_x25519_generate(sk2, xf[i].pub)) == SV_OK
            && (st = sv_datum_seal(xf[i].pub, uuid, xf[i].f->name,
                                   (const uint8_t *)xf[i].value, xf[i].len, xf[i].enc,
                                   xf[i].ct)) == SV_OK)
            st = sv_key2_split(sk2, key2a + 32 * i, key2b + 32 * i);
        sv_cleanse(sk2, sizeof(sk2));
    }
    if (st != SV_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01501: sealing a field failed: %s",
                      sv_strerror(st));
        return -1;
    }
    return 0;
}

/* Insert the record and all its fields with one statement (atomic, one
 * round trip). 0 or -1 (logged). */
static int svm_insert_record(request_rec *r, ap_dbd_t *dbd, const char *uuid_s,
                             const char *ref, const svm_key1pub *k1, svm_intake_field *xf,
                             int n)
{
    const void **args = apr_palloc(r->pool, sizeof(void *) * (apr_size_t)(2 + 23 * n));
    apr_size_t *sizes = apr_palloc(r->pool, sizeof(apr_size_t) * (apr_size_t)(5 * n));
    int i, a = 0, nrows = 0;

    args[a++] = uuid_s;
    args[a++] = ref;
    for (i = 0; i < n; i++) {
        const char *share = apr_psprintf(r->pool, "%" APR_UINT64_T_FMT,
                                         (apr_uint64_t)xf[i].share_id);
#ifdef SV_TEST_HOOKS
        if (svm_test_fault(r) && strcmp(svm_test_fault(r), "intake-db-fail") == 0) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV01502: test fault: an intake "
                          "statement the database refuses");
            share = "0"; /* violates fields_share_id_check: the statement fails */
        }
#endif
        sizes[5 * i] = SV_X25519_LEN;
        sizes[5 * i + 1] = SV_HPKE_ENC_LEN;
        sizes[5 * i + 2] = xf[i].ct_len;
        sizes[5 * i + 3] = SV_HPKE_ENC_LEN;
        sizes[5 * i + 4] = SV_WRAPPED_CT_LEN;
        args[a++] = xf[i].f->name;
        args[a++] = xf[i].pub;
        args[a++] = &sizes[5 * i];
        args[a++] = "fields";
        args[a++] = "key2_pub";
        args[a++] = xf[i].enc;
        args[a++] = &sizes[5 * i + 1];
        args[a++] = "fields";
        args[a++] = "enc";
        args[a++] = xf[i].ct;
        args[a++] = &sizes[5 * i + 2];
        args[a++] = "fields";
        args[a++] = "ct";
        args[a++] = share;
        args[a++] = xf[i].wenc;
        args[a++] = &sizes[5 * i + 3];
        args[a++] = "fields";
        args[a++] = "wrap_enc";
        args[a++] = xf[i].wct;
        args[a++] = &sizes[5 * i + 4];
        args[a++] = "fields";
        args[a++] = "wrap_ct";
        args[a++] = k1->fp;
    }
    if (svm_db_exec(r, dbd, svm_intake_label(r->pool, n), &nrows, args))
        return -1;
    if (nrows != n) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01507: intake stored %d of %d fields",
                      nrows, n);
        return -1;
    }
    return 0;
}

/*
 * The INSERT failed. When the connection broke after the statement reached
 * the server, it may have committed all the same (an autocommitted
 * statement commits before its answer is sent): look for the record on a
 * fresh connection, by its reference code and uuid. 1: it is there, the
 * receipt is the right answer; 0: it is not, or that cannot be known (then
 * the visitor is told it was not stored, and a second submission may
 * duplicate the first: never a loss).
 */
static int svm_intake_landed(request_rec *r, ap_dbd_t *dbd, const char *uuid_s,
                             const char *ref)
{
    const void *args[] = { ref };
    apr_dbd_row_t *row;
    svm_rows res;
    int found = 0;

    if (svm_db_fresh(r, dbd) != 0 || svm_db_select(r, dbd, "svm_rec_get", &res, args))
        return 0;
    while ((row = svm_db_row(r, dbd, &res)))
        found |= strcmp(svm_db_col(r, dbd, row, 1), uuid_s) == 0;
    if (found)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV01509: the answer to the INSERT "
                      "of record %s was lost, and the record is there: stored", ref);
    return found;
}

/* 429 for a POST over SplitVaultIntakeThrottle: when to try again, and
 * nothing of what was sent (the body is not even read: the connection is
 * closed after the answer). */
static int svm_intake_throttled(request_rec *r, const svm_srv_conf *sc, apr_time_t retry_at)
{
    apr_time_t left = retry_at - apr_time_now();
    apr_int64_t secs = left > 0 ? (apr_int64_t)((left + APR_USEC_PER_SEC - 1)
                                                / APR_USEC_PER_SEC) : 1;
    /* the minute at which the window is over, rounded up */
    const char *when = svm_time_utc(r->pool, retry_at + apr_time_from_sec(60) - 1,
                                    "%H:%M UTC");
    const char *in;

    in = secs < 120 ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT " seconds", secs)
                    : apr_psprintf(r->pool, "about %" APR_INT64_T_FMT " minutes (after %s)",
                                   (secs + 59) / 60, when);
    apr_table_setn(r->err_headers_out, "Retry-After",
                   apr_psprintf(r->pool, "%" APR_INT64_T_FMT, secs));
    r->connection->keepalive = AP_CONN_CLOSE; /* the body stays unread */
    return svm_page_message(r, sc, HTTP_TOO_MANY_REQUESTS, "Too many submissions",
                            apr_psprintf(r->pool, "This form has received too many "
                                         "submissions from your network in a short time, so "
                                         "it accepts no more for now. Your submission was NOT "
                                         "stored. Please send it again in %s.", in), NULL);
}

int svm_intake_post(request_rec *r, const svm_srv_conf *sc)
{
    const svm_field *cf = (const svm_field *)sc->fields->elts;
    int n = sc->fields->nelts, i, rc, werr = 0;
    apr_array_header_t *pairs, *errs;
    const char *why;
    svm_intake_field *xf;
    unsigned char *key2a, *key2b;
    uint8_t uuid[SV_UUID_LEN];
    char uuid_s[SV_UUID_STR_LEN + 1], ref[SVM_REF_LEN + 1];
    ap_dbd_t *dbd;
    svm_key1pub k1;
    sv_store_req *req;
    sv_store_resp resp;
    apr_status_t rv;
    apr_time_t sent = 0, retry_at = 0;
    sv_status st;

    if (n <= 0 || n > SVM_MAX_FIELDS)
        return HTTP_INTERNAL_SERVER_ERROR; /* refused at start-up; never here */
    /* counted before anything else, the body included, is looked at */
    if (!svm_ithr_admit(r, sc, &retry_at))
        return svm_intake_throttled(r, sc, retry_at);
    if ((rc = svm_form_read(r, sc->max_body, &pairs, &why)) != OK) {
        const char *e[] = { why, NULL };
        return svm_form_page(r, sc, e, rc);
    }
    /* every name must be a configured field, at most once */
    errs = apr_array_make(r->pool, 4, sizeof(const char *));
    xf = apr_pcalloc(r->pool, sizeof(*xf) * (apr_size_t)n);
    for (i = 0; i < n; i++) {
        xf[i].f = &cf[i];
        xf[i].value = "";
    }
    {
        const svm_pair *p = (const svm_pair *)pairs->elts;
        char *seen = apr_pcalloc(r->pool, (apr_size_t)n);
        int j;
        for (j = 0; j < pairs->nelts; j++) {
            for (i = 0; i < n && strcmp(cf[i].name, p[j].name) != 0; i++)
                ;
            if (i == n) {
                /* named back (escaped) only when it is short, clean UTF-8 */
                apr_size_t ncp, nl = strlen(p[j].name);
                int clean = nl <= 64 && svm_utf8_check(p[j].name, nl, &ncp);
                *(const char **)apr_array_push(errs) = clean
                    ? apr_psprintf(r->pool, "The form has an unknown field \"%s\".", p[j].name)
                    : "The form has an unknown field.";
            }
            else if (seen[i]++)
                *(const char **)apr_array_push(errs) =
                    apr_psprintf(r->pool, "%s was sent twice.", cf[i].label);
            else {
                xf[i].value = p[j].value;
                xf[i].len = p[j].len;
            }
        }
    }
    for (i = 0; i < n; i++) {
        const char *problem = svm_value_problem(r->pool, &cf[i], xf[i].value, xf[i].len);
        if (problem)
            *(const char **)apr_array_push(errs) = problem;
    }
    if (errs->nelts) {
        *(const char **)apr_array_push(errs) = NULL;
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV01503: submission refused: %d "
                      "problem(s) in the form", errs->nelts - 1);
        return svm_form_page(r, sc, (const char *const *)errs->elts, HTTP_BAD_REQUEST);
    }

    /* the database and the key first: never leave shares for nothing */
    if (!(dbd = svm_db(r)))
        goto not_stored;
    if ((rv = svm_key1_active(r, dbd, &k1)) == APR_EACCES)
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not stored",
                                "This service cannot accept submissions right now. Your "
                                "submission was NOT stored. Please try again later.", NULL);
    if (rv != APR_SUCCESS)
        goto not_stored;
    if ((st = sv_uuid_generate(uuid)) != SV_OK || svm_make_ref(ref) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01504: no random bytes for a record");
        goto not_stored;
    }
    sv_uuid_format(uuid, uuid_s);
    key2a = svm_secret_palloc(r->pool, 32 * (apr_size_t)n);
    key2b = svm_secret_palloc(r->pool, 32 * (apr_size_t)n);
    if (svm_seal_fields(r, uuid, xf, n, key2a, key2b) != 0)
        goto wipe_fail;

    req = apr_pcalloc(r->pool, sizeof(*req));
    memcpy(req->uuid, uuid, SV_UUID_LEN);
    req->n = (unsigned)n;
    for (i = 0; i < n; i++) {
        apr_cpystrn(req->f[i].name, cf[i].name, sizeof(req->f[i].name));
        req->f[i].pub = xf[i].pub;
        req->f[i].key2b = key2b + 32 * i;
    }
    rv = svm_daemon_store(r, sc, req, &resp, &werr, &sent);
    sv_cleanse(key2b, 32 * (apr_size_t)n);
    if (rv != APR_SUCCESS)
        goto wipe_fail;
#ifdef SV_TEST_HOOKS
    if (svm_test_fault(r) && strcmp(svm_test_fault(r), "intake-late") == 0)
        sent -= SVM_SHARE_MAX_AGE; /* as if the STORE had been sent long ago */
#endif
    for (i = 0; i < n; i++) {
        xf[i].share_id = resp.share_id[i];
        if ((st = sv_key2a_wrap(k1.pub, uuid, cf[i].name, xf[i].share_id, key2a + 32 * i,
                                xf[i].wenc, xf[i].wct)) != SV_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01505: wrapping key2a failed: %s",
                          sv_strerror(st));
            goto wipe_fail;
        }
    }
    sv_cleanse(key2a, 32 * (apr_size_t)n);
    /* the INSERT must end before reconcile could take the new shares for
     * orphans: it starts only with a whole statement timeout to spare */
    if (apr_time_now() + SVM_DB_STATEMENT_TIMEOUT > sent + SVM_SHARE_MAX_AGE) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01508: intake given up: more than %d s "
                      "since its STORE, too late to commit (the shares are left to reconcile)",
                      (int)apr_time_sec(SVM_SHARE_MAX_AGE - SVM_DB_STATEMENT_TIMEOUT));
        goto not_stored;
    }
    if (svm_insert_record(r, dbd, uuid_s, ref, &k1, xf, n) != 0
        && !svm_intake_landed(r, dbd, uuid_s, ref))
        goto not_stored;
    for (i = 0; i < n; i++)
        sv_cleanse((void *)xf[i].value, xf[i].len);

    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "SV01506: record %s stored", ref);
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, "Submission received", NULL);
    ap_rprintf(r, "<h1>Thank you: your submission is stored</h1>\n"
               "<p>Your reference code is</p>\n<p class=\"ref\">%s</p>\n"
               "<p>Keep this code if you need to refer to your submission. It cannot be used "
               "to read the submission back: only authorised staff can.</p>\n"
               "<p><a href=\"%s\">Send another submission</a></p>\n",
               svm_esc(r->pool, ref), svm_esc(r->pool, svm_url(r, sc, "/")));
    svm_page_end(r);
    return OK;

wipe_fail:
    sv_cleanse(key2a, 32 * (apr_size_t)n);
    sv_cleanse(key2b, 32 * (apr_size_t)n);
not_stored:
    return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not stored", SVM_NOT_STORED,
                            NULL);
}
