/*
 * svm_decrypt.c - decrypt with rotate-on-use (docs/design.md, "Decrypt").
 *
 * The route, the capability check (can_decrypt) and the CSRF check are done
 * by svm_pages.c before this runs. For a record:
 *
 *   1. read every field row; unwrap each key2a with the loaded key1 whose
 *      fingerprint the row names (a clear "key not loaded" page otherwise);
 *   2. per field, a fresh key2' (new public key, sk2' split into key2a' and
 *      key2b'); one DECRYPT per record (split over several only when the
 *      record's ciphertexts pass the 1 MiB body limit) with the staff name,
 *      wait_ms = SplitVaultDecryptWait and rotate = 1: the daemon answers
 *      the plaintexts and stores every key2b' as a pending share;
 *   3. seal each value to key2' public, wrap key2a' to the active key1 with
 *      the new share id, and in ONE transaction update every row WHERE its
 *      share id, key2 public key AND version are still the ones read in 1
 *      (all rows must match, else everything rolls back);
 *   4. after the commit, RELEASE: drop every old share, keep every new one.
 *      When the commit fails or a row changed meanwhile (a concurrent update
 *      or decrypt), RELEASE drops the new pending shares instead, the old
 *      ones stay referenced, and staff see "changed meanwhile, try again":
 *      nothing is lost, nothing is shown. When the COMMIT's answer is lost
 *      with the connection (the server may have committed), no RELEASE is
 *      sent until the rows, read again on a fresh session, say which shares
 *      they name; when they cannot tell, nothing is released at all and
 *      reconcile finishes it (svm_dec_resolve).
 *
 * The values are shown once, escaped, on a no-store page. Audit rows say
 * that a decrypt started and how it ended (never a value). key1, key2a,
 * key2a', key2b' and the plaintexts live in secret memory and are cleansed
 * right after use. A RELEASE that cannot be sent (crash, daemon gone) leaves
 * pending or old shares that `splitvault-admin reconcile` finishes.
 */
#include "svm.h"
#include "svm_decrypt.h"
#include "svm_audit.h"
#include "svm_config.h"
#include "svm_daemon.h"
#include "svm_db.h"
#include "svm_fault.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_key1.h"
#include "svm_record.h"
#include "svm_session.h"
#include "svm_shm.h"
#include "http_protocol.h"
#include "apr_optional.h"
#include "apr_strings.h"

#include <signal.h>
#include <unistd.h>

#include "sv_key2.h"
#include "sv_secret.h"

/* DECRYPT body bytes besides the fields, for the longest staff name */
#define SVM_DECRYPT_HDR_MAX sv_decrypt_req_size_fixed(SV_WIRE_MAX_ACTOR)

/* ---- one record's fields ------------------------------------------------------ */

typedef struct {
    const char *name;
    apr_uint64_t share;
    const char *share_s;
    const char *pub_hex;
    const char *fp;
    const char *version;
    unsigned char enc[SV_HPKE_ENC_LEN];
    unsigned char *ct;
    apr_size_t ct_len;
    unsigned char wenc[SV_HPKE_ENC_LEN];
    unsigned char wct[SV_WRAPPED_CT_LEN];
    unsigned char *key2a;             /* secret: unwrapped with key1 */
    /* the rotation */
    unsigned char new_pub[SV_X25519_LEN];
    unsigned char *new_key2a;         /* secret */
    unsigned char *new_key2b;         /* secret, until sent */
    apr_uint64_t new_share;           /* 0: none (yet) */
    const uint8_t *pt;                /* secret: in a reply body */
    apr_size_t pt_len;
    unsigned char new_enc[SV_HPKE_ENC_LEN];
    unsigned char *new_ct;
    unsigned char new_wenc[SV_HPKE_ENC_LEN];
    unsigned char new_wct[SV_WRAPPED_CT_LEN];
} svm_dfield;

typedef struct {
    request_rec *r;
    const svm_srv_conf *sc;
    svm_staff *st;
    ap_dbd_t *dbd;
    const char *ref;
    const char *id;
    uint8_t uuid[SV_UUID_LEN];
    svm_dfield *f;
    int n;
    apr_array_header_t *bodies;       /* svm_dreply: reply bodies to cleanse */
    int requests;
    apr_time_t first_sent;            /* the first DECRYPT began to go out */
} svm_dctx;

#define SVM_CT_MAX (SV_DATUM_MAX + SV_HPKE_TAG_LEN)

/* Read the field rows of the record. Every length that comes from the
 * database (the number of rows, each ct) is checked before anything is
 * allocated for it, and the database sends neither a ct longer than
 * SVM_CT_MAX nor more than one row over SVM_MAX_FIELDS. 0, or -1 (logged
 * once, with the first problem found). */
static int svm_dec_read(svm_dctx *d)
{
    request_rec *r = d->r;
    svm_rows res;
    apr_dbd_row_t *row;
    apr_array_header_t *a = apr_array_make(r->pool, 8, sizeof(svm_dfield));
    const void *args[] = { apr_itoa(r->pool, SVM_CT_MAX), d->id,
                           apr_itoa(r->pool, SVM_MAX_FIELDS + 1) };
    const char *why = NULL;
    int rows = 0;

    if (svm_db_select(r, d->dbd, "svm_dec_fields", &res, args))
        return -1;
    while ((row = svm_db_row(r, d->dbd, &res))) {
        svm_dfield f;
        const char *ct_hex, *ct_len_s;
        apr_int64_t ct_len;

        if (++rows > SVM_MAX_FIELDS || why)
            continue; /* counted, never kept */
        memset(&f, 0, sizeof(f));
        f.name = svm_db_col(r, d->dbd, row, 0);
        f.share_s = svm_db_col(r, d->dbd, row, 1);
        f.share = (apr_uint64_t)apr_atoi64(f.share_s);
        f.pub_hex = svm_db_col(r, d->dbd, row, 2);
        ct_hex = svm_db_col(r, d->dbd, row, 4);
        f.fp = svm_db_col(r, d->dbd, row, 7);
        f.version = svm_db_col(r, d->dbd, row, 8);
        ct_len_s = svm_db_col(r, d->dbd, row, 9);
        ct_len = apr_atoi64(ct_len_s);
        if (!sv_field_name_valid(f.name, strlen(f.name))) {
            why = "a field name is malformed";
            continue;
        }
        if (ct_len < SV_HPKE_TAG_LEN || ct_len > SVM_CT_MAX
            || strlen(ct_hex) != 2 * (apr_size_t)ct_len) {
            why = apr_psprintf(r->pool, "field %s: its ciphertext has %s bytes (%d to %d "
                               "expected)", f.name, *ct_len_s ? ct_len_s : "no",
                               SV_HPKE_TAG_LEN, SVM_CT_MAX);
            continue;
        }
        /* the length is known good: only now is room made for the value */
        f.ct_len = (apr_size_t)ct_len;
        f.ct = apr_palloc(r->pool, f.ct_len);
        if (f.share == 0 || strlen(f.pub_hex) != 2 * SV_X25519_LEN
            || svm_hex_decode(svm_db_col(r, d->dbd, row, 3), f.enc, sizeof(f.enc))
            || svm_hex_decode(ct_hex, f.ct, f.ct_len)
            || svm_hex_decode(svm_db_col(r, d->dbd, row, 5), f.wenc, sizeof(f.wenc))
            || svm_hex_decode(svm_db_col(r, d->dbd, row, 6), f.wct, sizeof(f.wct))) {
            why = apr_psprintf(r->pool, "field %s: its row is malformed", f.name);
            continue;
        }
        *(svm_dfield *)apr_array_push(a) = f;
    }
    if (!why && rows == 0)
        why = "no field rows";
    else if (!why && rows > SVM_MAX_FIELDS)
        why = apr_psprintf(r->pool, "more than %d field rows", SVM_MAX_FIELDS);
    if (why) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02108: record %s cannot be decrypted: "
                      "%s", d->ref, why);
        return -1;
    }
    d->f = (svm_dfield *)a->elts;
    d->n = a->nelts;
    return 0;
}

/* Unwrap every key2a with the loaded key1 named by its row. Returns 0,
 * 1 when a key1 is not loaded (*missing = its fingerprint), or 2 when a
 * wrapped key2a does not open (altered or swapped rows). */
static int svm_dec_unwrap(svm_dctx *d, const char **missing)
{
    request_rec *r = d->r;
    unsigned char *sk1 = svm_secret_palloc(r->pool, SV_X25519_LEN);
    const char *have = NULL;
    int i, rc = 0;

    for (i = 0; i < d->n && rc == 0; i++) {
        svm_dfield *f = &d->f[i];
        sv_status st;
        if (!have || strcmp(have, f->fp) != 0) {
            apr_status_t rv = svm_key1_private(r, f->fp, sk1);
            if (rv != APR_SUCCESS) {
                *missing = f->fp;
                rc = 1;
                break;
            }
            have = f->fp;
        }
        f->key2a = svm_secret_palloc(r->pool, SV_X25519_LEN);
        st = sv_key2a_unwrap(sk1, d->uuid, f->name, f->share, f->wenc, f->wct, f->key2a);
        if (st != SV_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02109: record %s field %s: the "
                          "wrapped key2a does not open (altered or swapped rows?)", d->ref,
                          f->name);
            rc = 2;
        }
    }
    sv_cleanse(sk1, SV_X25519_LEN);
    return rc;
}

/* A fresh key2' per field, split; sk2' wiped at once. 0 or -1 (logged). */
static int svm_dec_newkeys(svm_dctx *d)
{
    unsigned char sk2[SV_X25519_LEN];
    sv_status st = SV_OK;
    int i;

    for (i = 0; i < d->n && st == SV_OK; i++) {
        svm_dfield *f = &d->f[i];
        f->new_key2a = svm_secret_palloc(d->r->pool, SV_X25519_LEN);
        f->new_key2b = svm_secret_palloc(d->r->pool, SV_X25519_LEN);
        if ((st = sv_x25519_generate(sk2, f->new_pub)) == SV_OK)
            st = sv_key2_split(sk2, f->new_key2a, f->new_key2b);
        sv_cleanse(sk2, sizeof(sk2));
    }
    if (st != SV_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, d->r, "SV02110: making new key2 pairs "
                      "failed: %s", sv_strerror(st));
        return -1;
    }
    return 0;
}

/* RELEASE for fields [from, to) of the record: drop (old shares when
 * commit is set, else the new pending ones) and keep (the new ones when
 * commit is set). Best effort: reconcile finishes what fails here. */
static void svm_dec_release(svm_dctx *d, int from, int to, int commit)
{
    request_rec *r = d->r;
    sv_release_req *req = apr_pcalloc(r->pool, sizeof(*req));
    int i;

    while (from < to) {
        int werr = 0;

        memcpy(req->uuid, d->uuid, SV_UUID_LEN);
        req->n = 0;
        for (i = from; i < to && req->n < SV_WIRE_MAX_FIELDS; i++) {
            const svm_dfield *f = &d->f[i];
            sv_release_item *it;
            if (!f->new_share)
                continue;
            it = &req->f[req->n++];
            apr_cpystrn(it->name, f->name, sizeof(it->name));
            it->drop_id = commit ? f->share : f->new_share;
            it->keep_id = commit ? f->new_share : 0;
        }
        from = i;
        if (req->n == 0)
            continue;
        if (svm_daemon_release(r, d->sc, req, &werr) != APR_SUCCESS)
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02112: RELEASE for record %s "
                          "(%s) not confirmed%s%s; splitvault-admin reconcile will finish it",
                          d->ref, commit ? "after the commit" : "undoing the rotation",
                          werr ? ": " : "", werr ? sv_wire_error_name((uint16_t)werr) : "");
    }
}

/* Body bytes a field takes in DECRYPT with rotate = 1 (the wire library's
 * count: an extension of DECRYPT is counted here as soon as it is there). */
static apr_size_t svm_dec_field_size(const char *name, apr_size_t ct_len)
{
    return sv_decrypt_req_size_field(strlen(name), ct_len, 1);
}

/* Worst-case DECRYPT body of the configured form: sum of its fields at
 * their maximum length (4 bytes per character). */
static apr_size_t svm_dec_form_worst(const svm_srv_conf *sc, int *requests)
{
    const svm_field *f = (const svm_field *)sc->fields->elts;
    apr_size_t total = 0, cur = SVM_DECRYPT_HDR_MAX;
    int i, req = 1, in = 0;

    for (i = 0; i < sc->fields->nelts; i++) {
        apr_size_t fs = svm_dec_field_size(f[i].name, 4 * (apr_size_t)f[i].maxlen
                                           + SV_HPKE_TAG_LEN);
        total += fs;
        if (cur + fs > SV_WIRE_MAX_BODY || in == SV_WIRE_MAX_FIELDS) {
            req++;
            cur = SVM_DECRYPT_HDR_MAX;
            in = 0;
        }
        cur += fs;
        in++;
    }
    *requests = req;
    return total + SVM_DECRYPT_HDR_MAX;
}

void svm_decrypt_check_form(server_rec *s, const svm_srv_conf *sc)
{
    int requests = 1;
    apr_size_t worst = svm_dec_form_worst(sc, &requests);

    if (requests > 1)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "SV02113: a record of this form may "
                     "need %d DECRYPT requests (worst case %" APR_SIZE_T_FMT " bytes, over the "
                     "daemon's 1 MiB limit per request); each is rate-limited on its own",
                     requests, worst);
}

/* Outcome of the DECRYPT exchange. */
enum { SVM_DX_OK, SVM_DX_WERR, SVM_DX_NOANSWER, SVM_DX_BADANSWER, SVM_DX_LATE };

/* One DECRYPT for fields [from, to). On SVM_DX_OK the plaintexts and new
 * share ids are in the fields; on SVM_DX_WERR, *werr and *retry_ms are set. */
static int svm_dec_exchange(svm_dctx *d, int from, int to, int *werr, apr_uint32_t *retry_ms)
{
    request_rec *r = d->r;
    sv_decrypt_req *req = apr_pcalloc(r->pool, sizeof(*req));
    sv_decrypt_resp resp;
    svm_dreply rep;
    apr_status_t rv;
    int i;

    memcpy(req->uuid, d->uuid, SV_UUID_LEN);
    apr_cpystrn(req->actor, d->st->name, sizeof(req->actor));
    req->n = (unsigned)(to - from);
    for (i = from; i < to; i++) {
        const svm_dfield *f = &d->f[i];
        sv_decrypt_field *w = &req->f[i - from];
        w->share_id = f->share;
        apr_cpystrn(w->name, f->name, sizeof(w->name));
        w->key2a = f->key2a;
        w->enc = f->enc;
        w->ct = f->ct;
        w->ct_len = (uint32_t)f->ct_len;
        w->rotate = 1;
        w->new_pub = f->new_pub;
        w->new_key2b = f->new_key2b;
    }
    /* cleanses the shares (key2a, key2b') once they are in the frame */
    rv = svm_daemon_decrypt(r, d->sc, req, &resp, &rep, werr, retry_ms);
    if (rv == APR_EINVAL)
        return SVM_DX_BADANSWER; /* never sent */
    d->requests++;
    if (!d->first_sent)
        d->first_sent = rep.sent;
    if (rep.answered)
        *(svm_dreply *)apr_array_push(d->bodies) = rep;
    if (rv != APR_SUCCESS)
        return *werr ? SVM_DX_WERR : rep.answered ? SVM_DX_BADANSWER : SVM_DX_NOANSWER;
    for (i = from; i < to; i++) {
        const sv_decrypt_out *o = &resp.f[i - from];
        if (o->new_share_id == 0 || o->new_share_id == d->f[i].share) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02116: DECRYPT answer without a new "
                          "share for %s", d->f[i].name);
            return SVM_DX_BADANSWER;
        }
        /* a plaintext is its ciphertext less the tag: svm_dec_reseal sizes
         * the new ciphertext by it, so never take another length */
        if (o->pt_len + SV_HPKE_TAG_LEN != d->f[i].ct_len) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02140: DECRYPT answer for %s has "
                          "%" APR_SIZE_T_FMT " bytes of plaintext, not the %" APR_SIZE_T_FMT
                          " its ciphertext holds", d->f[i].name, (apr_size_t)o->pt_len,
                          d->f[i].ct_len - SV_HPKE_TAG_LEN);
            return SVM_DX_BADANSWER;
        }
        d->f[i].pt = o->pt;
        d->f[i].pt_len = o->pt_len;
        d->f[i].new_share = o->new_share_id;
    }
    sv_cleanse(&resp, sizeof(resp));
    return SVM_DX_OK;
}

/* Seal each value to its key2' and wrap key2a' to the active key1. */
static int svm_dec_reseal(svm_dctx *d, const svm_key1pub *k1)
{
    sv_status st = SV_OK;
    int i;

    for (i = 0; i < d->n && st == SV_OK; i++) {
        svm_dfield *f = &d->f[i];
        f->new_ct = apr_palloc(d->r->pool, f->pt_len + SV_HPKE_TAG_LEN);
        if ((st = sv_datum_seal(f->new_pub, d->uuid, f->name, f->pt, f->pt_len, f->new_enc,
                                f->new_ct)) == SV_OK)
            st = sv_key2a_wrap(k1->pub, d->uuid, f->name, f->new_share, f->new_key2a,
                               f->new_wenc, f->new_wct);
        sv_cleanse(f->new_key2a, SV_X25519_LEN);
    }
    if (st != SV_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, d->r, "SV02117: sealing a rotated field "
                      "failed: %s", sv_strerror(st));
        return -1;
    }
    return 0;
}

/* What became of the rotation's transaction. */
enum { SVM_DC_COMMITTED, SVM_DC_CHANGED, SVM_DC_FAILED, SVM_DC_UNKNOWN };

/* The transaction: every row, compare-and-swap, plus the audit row; its
 * COMMIT starts only when it will end (SVM_DB_STATEMENT_TIMEOUT) before
 * deadline. Returns SVM_DC_COMMITTED; SVM_DC_CHANGED
 * (a row changed meanwhile: rolled back); SVM_DC_FAILED (a database
 * failure or too late: rolled back, nothing stored); SVM_DC_UNKNOWN (the
 * COMMIT was sent and its answer lost: it may have committed). */
static int svm_dec_commit(svm_dctx *d, const svm_key1pub *k1, apr_time_t deadline)
{
    request_rec *r = d->r;
    int attempt, i;

    for (attempt = 0; attempt < 2; attempt++) {
        int changed = 0, fail;
        svm_tx_outcome out;
        if (svm_db_tx_begin(r, d->dbd))
            return SVM_DC_FAILED;
        for (i = 0, fail = 0; i < d->n && !fail && !changed; i++) {
            svm_dfield *f = &d->f[i];
            apr_size_t s32 = SV_X25519_LEN, se = SV_HPKE_ENC_LEN,
                       sct = f->pt_len + SV_HPKE_TAG_LEN, sw = SV_WRAPPED_CT_LEN;
            const char *ns = apr_psprintf(r->pool, "%" APR_UINT64_T_FMT, f->new_share);
            const void *args[] = { f->new_pub, &s32, "fields", "key2_pub",
                                   f->new_enc, &se, "fields", "enc",
                                   f->new_ct, &sct, "fields", "ct",
                                   ns,
                                   f->new_wenc, &se, "fields", "wrap_enc",
                                   f->new_wct, &sw, "fields", "wrap_ct",
                                   k1->fp, d->id, f->name, f->share_s, f->pub_hex,
                                   f->version };
            int nrows = 0;
            fail = svm_db_exec(r, d->dbd, "svm_dec_rotate", &nrows, args) != 0;
#ifdef SV_TEST_HOOKS
            if (!fail && svm_test_fault(r) && strcmp(svm_test_fault(r), "decrypt-conflict") == 0)
                nrows = 0; /* as if an update had changed the row meanwhile */
#endif
            if (!fail && nrows != 1)
                changed = 1;
        }
        if (!fail && !changed)
            fail = svm_audit(r, d->dbd, d->st->name, "decrypt", d->ref, NULL, "ok",
                             apr_psprintf(r->pool, "fields=%d requests=%d rotated", d->n,
                                          d->requests)) != APR_SUCCESS;
#ifdef SV_TEST_HOOKS
        if (!fail && !changed && svm_test_fault(r)
            && strcmp(svm_test_fault(r), "decrypt-crash") == 0) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02118: test fault: this child "
                          "dies between the daemon's answer and the commit");
            kill(getpid(), SIGKILL);
        }
#endif
        if (changed) {
            svm_db_tx_end(r, d->dbd, 1);
            return SVM_DC_CHANGED;
        }
        if (!fail && apr_time_now() + SVM_DB_STATEMENT_TIMEOUT > deadline) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02122: decrypt of %s: more than "
                          "%d s since its first DECRYPT, too late to commit; the rotation is "
                          "given up", d->ref,
                          (int)apr_time_sec(SVM_SHARE_MAX_AGE - SVM_DB_STATEMENT_TIMEOUT));
            svm_db_tx_end(r, d->dbd, 1);
            return SVM_DC_FAILED;
        }
        out = svm_db_tx_end(r, d->dbd, fail);
        if (!fail && out == SVM_TX_COMMITTED)
            return SVM_DC_COMMITTED;
        if (!fail && out == SVM_TX_UNKNOWN)
            return SVM_DC_UNKNOWN; /* never run it again: it may have committed */
        if (!svm_db_repaired(r))
            return SVM_DC_FAILED;
        /* the connection was re-established: run the transaction again */
    }
    return SVM_DC_FAILED;
}

/* After a COMMIT whose answer was lost: read, on a fresh session, which
 * share every row of the record names now. FOR SHARE waits for the lost
 * session's transaction should it still hold the rows (a COMMIT the server
 * is finishing), within the statement timeout; once the client's
 * connection is gone, the server never commits what it had not received a
 * COMMIT for. Every row naming its new share: SVM_DC_COMMITTED; every row
 * its old one: SVM_DC_FAILED (rolled back); anything else, or no answer:
 * SVM_DC_UNKNOWN, left to reconcile, which activates the pending shares the
 * rows reference and deletes the unreferenced ones after its grace. */
static int svm_dec_resolve(svm_dctx *d)
{
    request_rec *r = d->r;
    const void *args[] = { d->id };
    svm_rows res;
    apr_dbd_row_t *row;
    int i, rows = 0, now_new = 0, now_old = 0;

    if (svm_db_fresh(r, d->dbd) != 0
        || svm_db_select(r, d->dbd, "svm_dec_shares", &res, args) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02124: decrypt of %s: cannot read the "
                      "rows after the lost COMMIT; its shares are left to reconcile", d->ref);
        return SVM_DC_UNKNOWN;
    }
    while ((row = svm_db_row(r, d->dbd, &res))) {
        const char *name = svm_db_col(r, d->dbd, row, 0);
        apr_uint64_t share = (apr_uint64_t)apr_atoi64(svm_db_col(r, d->dbd, row, 1));
        rows++;
        for (i = 0; i < d->n && strcmp(d->f[i].name, name) != 0; i++)
            ;
        if (i == d->n)
            continue;
        if (share == d->f[i].new_share)
            now_new++;
        else if (share == d->f[i].share)
            now_old++;
    }
    if (rows == d->n && now_new == d->n) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02125: decrypt of %s: the COMMIT's "
                      "answer was lost, and the rows show that it committed", d->ref);
        return SVM_DC_COMMITTED;
    }
    if (rows == d->n && now_old == d->n) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02126: decrypt of %s: the COMMIT's "
                      "answer was lost, and the rows show that it did not commit", d->ref);
        return SVM_DC_FAILED;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02127: decrypt of %s: after the lost COMMIT "
                  "the rows name neither all old nor all new shares (%d rows, %d new, %d old); "
                  "its shares are left to reconcile", d->ref, rows, now_new, now_old);
    return SVM_DC_UNKNOWN;
}

/* Write s[0..n) HTML-escaped, through a stack buffer that is cleansed. */
static void svm_write_escaped(request_rec *r, const uint8_t *s, apr_size_t n)
{
    char buf[1024];
    apr_size_t o = 0, i;

    for (i = 0; i < n; i++) {
        const char *e = s[i] == '&' ? "&amp;" : s[i] == '<' ? "&lt;" : s[i] == '>' ? "&gt;"
                      : s[i] == '"' ? "&quot;" : s[i] == '\'' ? "&#39;" : NULL;
        apr_size_t el = e ? strlen(e) : 1;
        if (o + el > sizeof(buf)) {
            ap_rwrite(buf, (int)o, r);
            o = 0;
        }
        if (e) {
            memcpy(buf + o, e, el);
            o += el;
        }
        else
            buf[o++] = (char)s[i];
    }
    if (o)
        ap_rwrite(buf, (int)o, r);
    sv_cleanse(buf, sizeof(buf));
}

/* The values page: once, no-store, in the form's order, then any other
 * field of the record. */
static int svm_dec_show(svm_dctx *d)
{
    request_rec *r = d->r;
    const svm_field *cf = (const svm_field *)d->sc->fields->elts;
    char *shown = apr_pcalloc(r->pool, (apr_size_t)d->n);
    int pass, i, j;

    svm_security_headers(r, 1);
    apr_table_setn(r->err_headers_out, "Expires", "0");
    svm_page_begin(r, d->sc, apr_pstrcat(r->pool, "Record ", d->ref, " (decrypted)", NULL),
                   d->st);
    ap_rprintf(r, "<h1>Record <span class=\"mono\">%s</span>: decrypted</h1>\n"
               "<p class=\"note\" role=\"status\">Shown once: this page is not stored by your "
               "browser, and reloading it does not show the values again. The decryption is "
               "recorded in both audit logs, and every field now has a new key.</p>\n<dl>\n",
               svm_esc(r->pool, d->ref));
    for (pass = 0; pass < 2; pass++) {
        int count = pass == 0 ? d->sc->fields->nelts : d->n;
        for (i = 0; i < count; i++) {
            const svm_field *cfg = NULL;
            if (pass == 0) {
                for (j = 0; j < d->n && strcmp(d->f[j].name, cf[i].name) != 0; j++)
                    ;
                if (j == d->n)
                    continue;
                cfg = &cf[i];
            }
            else
                j = i;
            if (shown[j]++)
                continue;
            ap_rprintf(r, "<dt>%s <span class=\"hint mono\">%s</span></dt>\n<dd><pre "
                       "class=\"value\" id=\"value-%s\">\n",
                       svm_esc(r->pool, cfg ? cfg->label : d->f[j].name),
                       svm_esc(r->pool, d->f[j].name), svm_esc(r->pool, d->f[j].name));
            svm_write_escaped(r, d->f[j].pt, d->f[j].pt_len);
            ap_rputs("</pre></dd>\n", r);
        }
    }
    ap_rprintf(r, "</dl>\n<p><a href=\"%s\">Back to the record</a></p>\n",
               svm_esc(r->pool, svm_url(r, d->sc, apr_pstrcat(r->pool, "/staff/record/",
                                                              d->ref, NULL))));
    svm_page_end(r);
    return OK;
}

/* Cleanse every key share this decrypt still holds (key2a, key2a',
 * key2b') and every reply body (the plaintexts): the one cleanup of
 * svm_decrypt_post, whichever way it ends. Each may have been cleansed
 * already, or never made. */
static void svm_dec_wipe(svm_dctx *d)
{
    int i;

    for (i = 0; i < d->bodies->nelts; i++) {
        svm_dreply *rep = &APR_ARRAY_IDX(d->bodies, i, svm_dreply);
        if (rep->body)
            sv_cleanse((void *)rep->body, rep->body_len);
    }
    for (i = 0; i < d->n; i++) {
        svm_dfield *f = &d->f[i];
        if (f->key2a)
            sv_cleanse(f->key2a, SV_X25519_LEN);
        if (f->new_key2a)
            sv_cleanse(f->new_key2a, SV_X25519_LEN);
        if (f->new_key2b)
            sv_cleanse(f->new_key2b, SV_X25519_LEN);
        f->pt = NULL;
        f->pt_len = 0;
    }
}

/* A decrypt that will not commit: wipe what it holds and drop the new
 * pending shares it stored (the old ones stay referenced), before its
 * failure page and audit row, so that a slow database does not keep them
 * pending. */
static void svm_dec_undo(svm_dctx *d)
{
    svm_dec_wipe(d);
    svm_dec_release(d, 0, d->n, 0);
}

/* A failure page, with its audit row. */
static int svm_dec_fail(svm_dctx *d, int status, const char *outcome, const char *detail,
                        const char *title, const char *msg)
{
    if (d->dbd)
        svm_audit(d->r, d->dbd, d->st->name, "decrypt", d->ref, NULL, outcome, detail);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, d->r, "SV02119: decrypt of %s by %s: %s",
                  d->ref, d->st->name, outcome);
    return svm_page_message(d->r, d->sc, status, title, msg, d->st);
}

/* The record changed under this decrypt: nothing changed, nothing shown. */
static int svm_dec_conflict(svm_dctx *d)
{
    return svm_dec_fail(d, HTTP_CONFLICT, "conflict", "changed meanwhile",
                        "Changed meanwhile",
                        "This record changed while it was being decrypted (someone updated "
                        "or decrypted it at the same moment). Nothing was changed and "
                        "nothing is shown: please try again.");
}

/* 1 when the record's rows are no longer the ones read for this decrypt
 * (another share id or version, or other fields): a concurrent decrypt
 * rotated them, or an update changed them; 0 when they are the same, or
 * when they cannot be read (logged). */
static int svm_dec_changed(svm_dctx *d)
{
    request_rec *r = d->r;
    const void *args[] = { d->id };
    svm_rows res;
    apr_dbd_row_t *row;
    int i, rows = 0, same = 0;

    if (svm_db_select(r, d->dbd, "svm_dec_versions", &res, args))
        return 0;
    while ((row = svm_db_row(r, d->dbd, &res))) {
        const char *name = svm_db_col(r, d->dbd, row, 0);
        apr_uint64_t share = (apr_uint64_t)apr_atoi64(svm_db_col(r, d->dbd, row, 1));
        const char *version = svm_db_col(r, d->dbd, row, 2);
        rows++;
        for (i = 0; i < d->n; i++)
            if (strcmp(d->f[i].name, name) == 0 && d->f[i].share == share
                && strcmp(d->f[i].version, version) == 0)
                same++;
    }
    return rows != d->n || same != d->n;
}

/* The page for an error answer of the daemon. */
static int svm_dec_werr(svm_dctx *d, int werr, apr_uint32_t retry_ms)
{
    request_rec *r = d->r;

    switch (werr) {
    case SV_WERR_RATE_LIMITED:
        if (retry_ms)
            apr_table_setn(r->err_headers_out, "Retry-After",
                           apr_psprintf(r->pool, "%u", (unsigned)((retry_ms + 999) / 1000)));
        return svm_dec_fail(d, HTTP_TOO_MANY_REQUESTS, "rate limited", NULL,
                            "Queued, not served: rate limit",
                            apr_psprintf(r->pool, "The decryption service allows only a few "
                                         "decryptions at a time. Your request waited in its "
                                         "queue for up to %d seconds and was not served "
                                         "(rate limit). Nothing was decrypted. Try again "
                                         "%s.", d->sc->decrypt_wait,
                                         retry_ms ? apr_psprintf(r->pool, "in about %u "
                                                                 "seconds", (unsigned)
                                                                 ((retry_ms + 999) / 1000))
                                                  : "later"));
    case SV_WERR_BUSY:
        return svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, "busy", NULL, "Refused: queue full",
                            "The decryption service's queue is full, so it refused this "
                            "request. Nothing was decrypted. Try again later.");
    case SV_WERR_LOCKED_DOWN:
        return svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, "locked down", NULL,
                            "Decryption is locked down",
                            "The decryption service is LOCKED DOWN: it saw too many "
                            "decryption requests at once and now refuses every decryption "
                            "until its system administrator unlocks it. Nothing was "
                            "decrypted. Tell your administrator.");
    case SV_WERR_AUDIT:
        return svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, "audit unavailable", NULL,
                            "Decryption unavailable",
                            "The decryption service cannot write its audit log, so it refuses "
                            "every decryption. Nothing was decrypted. Tell your "
                            "administrator.");
    case SV_WERR_REFUSED:
        /* the shares it named may have been rotated away by a concurrent
         * decrypt: that is no sign of tampering */
        if (svm_dec_changed(d))
            return svm_dec_conflict(d);
        return svm_dec_fail(d, HTTP_UNPROCESSABLE_ENTITY, "refused", "daemon refused",
                            "Decryption refused",
                            "The decryption service refused this record: its stored data does "
                            "not check out (it may have been altered, or mixed up with another "
                            "record's). Nothing was decrypted. Tell your administrator.");
    default:
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02121: splitvaultd answered DECRYPT "
                      "with %s", sv_wire_error_name((uint16_t)werr));
        return svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, "error",
                            sv_wire_error_name((uint16_t)werr), "Not decrypted",
                            "The decryption service had a temporary problem. Nothing was "
                            "decrypted; please try again.");
    }
}

void svm_decrypt_status_note(request_rec *r, const svm_srv_conf *sc)
{
    svm_key1_info loaded[SVM_KEY1_SLOTS];
    sv_status_resp ds;

    if (svm_key1_slots(r, loaded) <= 0)
        ap_rputs("<p class=\"error\" role=\"status\">The organisation's key is not loaded on "
                 "this server: decryption is unavailable until an administrator loads it.</p>\n",
                 r);
    if (svm_daemon_status(r, sc, &ds) != APR_SUCCESS)
        ap_rputs("<p class=\"error\" role=\"status\">The decryption service is unreachable."
                 "</p>\n", r);
    else if (ds.locked)
        ap_rputs("<p class=\"error\" role=\"status\">The decryption service is LOCKED DOWN: "
                 "it refuses every decryption until its system administrator unlocks it.</p>\n",
                 r);
}

int svm_decrypt_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                     const char *ref, apr_array_header_t *pairs)
{
    svm_dctx dc, *d = &dc;
    const char *uuid_s = NULL, *missing = NULL;
    svm_key1pub k1;
    apr_time_t deadline;
    apr_status_t rv;
    int rc, from, werr = 0, res = SVM_DX_OK;
    apr_uint32_t retry_ms = 0;

    memset(d, 0, sizeof(*d));
    d->r = r;
    d->sc = sc;
    d->st = st;
    d->ref = ref;
    d->bodies = apr_array_make(r->pool, 2, sizeof(svm_dreply));
    if (!(d->dbd = svm_db(r)))
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not decrypted",
                                "The database is unreachable; nothing was decrypted. Please "
                                "try again.", st);
    if ((rv = svm_record_lookup(r, d->dbd, ref, &d->id, &uuid_s)) != APR_SUCCESS)
        return rv == APR_NOTFOUND ? svm_page_message(r, sc, HTTP_NOT_FOUND, "No such record",
                                         "There is no record with this reference code.", st)
                      : svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not decrypted",
                                         "The database failed; nothing was decrypted.", st);
    if (sv_uuid_parse(uuid_s, strlen(uuid_s), d->uuid) != SV_OK || svm_dec_read(d) != 0)
        return svm_dec_fail(d, HTTP_INTERNAL_SERVER_ERROR, "error", "unreadable rows",
                            "Not decrypted", "This record's stored rows cannot be read. "
                            "Nothing was decrypted.");
    svm_audit(r, d->dbd, st->name, "decrypt", ref, NULL, "started",
              apr_psprintf(r->pool, "fields=%d", d->n));

    /* key1: loaded, and opening every wrapped key2a */
    switch (svm_dec_unwrap(d, &missing)) {
    case 0:
        break;
    case 1:
        rc = svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, "key not loaded",
                          apr_pstrcat(r->pool, "key1 ", missing, NULL), "Key not loaded",
                          apr_pstrcat(r->pool, "Decryption needs the organisation's key "
                                      "(key1, fingerprint ", missing, ") to be loaded on "
                                      "this server. It is not loaded: an administrator "
                                      "loads it at the key location (it is wiped whenever "
                                      "Apache stops). Nothing was decrypted.", NULL));
        goto out;
    default:
        rc = svm_dec_fail(d, HTTP_UNPROCESSABLE_ENTITY, "refused", "key2a does not open",
                          "Decryption refused",
                          "This record's stored keys do not check out (the rows may have "
                          "been altered, or mixed up with another record's). Nothing was "
                          "decrypted. Tell your administrator.");
        goto out;
    }
#ifdef SV_TEST_HOOKS
    if (svm_test_fault(r) && strcmp(svm_test_fault(r), "decrypt-pause-read") == 0)
        apr_sleep(apr_time_from_sec(2)); /* room for a concurrent decrypt to rotate */
#endif
    /* the key the rotated key2a' will be wrapped to: before any share is made */
    if ((rv = svm_key1_active(r, d->dbd, &k1)) != APR_SUCCESS || svm_dec_newkeys(d) != 0) {
        if (rv == APR_EACCES)
            rc = svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, "error", "active key1 not pinned",
                              "Not decrypted", "Decryption is unavailable: the active "
                              "organisation key (key1) is not one this server is configured "
                              "to trust (SplitVaultKey1Pin), so the record's new keys could "
                              "not be sealed. Nothing was decrypted. Tell your "
                              "administrator.");
        else
            rc = svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, "error", "no active key1",
                              "Not decrypted", "Decryption is unavailable because of a "
                              "temporary problem; nothing was decrypted.");
        goto out;
    }

    /* DECRYPT, in as few requests as the 1 MiB body limit allows; another
     * one only while its longest wait still leaves time to commit */
    for (from = 0; from < d->n && res == SVM_DX_OK; ) {
        apr_size_t size = SVM_DECRYPT_HDR_MAX;
        int to = from;
        if (d->first_sent && apr_time_now() + apr_time_from_sec(sc->decrypt_wait)
                             + 2 * sc->daemon_timeout + SVM_COMMIT_RESERVE
                             > d->first_sent + SVM_SHARE_MAX_AGE) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02128: decrypt of %s: no time left "
                          "for its next DECRYPT and the commit; given up", d->ref);
            res = SVM_DX_LATE;
            break;
        }
        while (to < d->n && to - from < SV_WIRE_MAX_FIELDS
               && (to == from || size + svm_dec_field_size(d->f[to].name, d->f[to].ct_len)
                                 <= SV_WIRE_MAX_BODY))
        {
            size += svm_dec_field_size(d->f[to].name, d->f[to].ct_len);
            to++;
        }
        res = svm_dec_exchange(d, from, to, &werr, &retry_ms);
        from = to;
    }
    if (res != SVM_DX_OK) {
        /* earlier requests of this record stored pending shares: undo them */
        svm_dec_undo(d);
        if (res == SVM_DX_WERR)
            rc = svm_dec_werr(d, werr, retry_ms);
        else if (res == SVM_DX_LATE)
            rc = svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, "error", "too late to commit",
                              "Not decrypted", "The decryption service took too long to "
                              "answer. Nothing was changed and nothing is shown; please try "
                              "again.");
        else
            rc = svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, res == SVM_DX_NOANSWER
                              ? "no answer" : "error", NULL, "Not decrypted",
                              "The decryption service did not answer properly. Nothing is "
                              "shown; please try again.");
        goto out;
    }
#ifdef SV_TEST_HOOKS
    if (svm_test_fault(r) && strcmp(svm_test_fault(r), "decrypt-pause") == 0)
        apr_sleep(apr_time_from_sec(2)); /* room for a concurrent update */
#endif

    /* re-seal, then one transaction, committed within SVM_SHARE_MAX_AGE of
     * the first DECRYPT (whose pending shares are the oldest) */
#ifdef SV_TEST_HOOKS
    if (svm_test_fault(r) && strcmp(svm_test_fault(r), "decrypt-late") == 0)
        d->first_sent -= SVM_SHARE_MAX_AGE; /* as if the DECRYPT had been sent long ago */
#endif
    deadline = d->first_sent + SVM_SHARE_MAX_AGE;
    rc = svm_dec_reseal(d, &k1) == 0 ? svm_dec_commit(d, &k1, deadline) : SVM_DC_FAILED;
    if (rc == SVM_DC_UNKNOWN)
        rc = svm_dec_resolve(d);
    if (rc == SVM_DC_UNKNOWN) {
        /* Either set of shares may be the referenced one: RELEASE nothing. */
        rc = svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, "commit unknown",
                          "connection lost during COMMIT", "Not confirmed",
                          "The connection to the database broke while the decryption was "
                          "being saved, and whether the record's new keys were saved could "
                          "not be confirmed. Nothing is shown. The record is not lost: it "
                          "keeps either its old or its new keys, and the decryption service "
                          "keeps both until the administrators' reconcile run tidies up. "
                          "Please try again in a few minutes, and tell your administrator.");
        goto out;
    }
    if (rc != SVM_DC_COMMITTED) {
        svm_dec_undo(d);
        if (rc == SVM_DC_CHANGED)
            rc = svm_dec_conflict(d);
        else
            rc = svm_dec_fail(d, HTTP_SERVICE_UNAVAILABLE, "error", "commit failed",
                              "Not decrypted", "The database failed while finishing the "
                              "decryption. Nothing was changed and nothing is shown: please "
                              "try again.");
        goto out;
    }
#ifdef SV_TEST_HOOKS
    if (!(svm_test_fault(r) && strcmp(svm_test_fault(r), "decrypt-no-release") == 0))
#endif
        svm_dec_release(d, 0, d->n, 1);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV02123: %s decrypted %s (%d fields, "
                  "rotated)", st->name, ref, d->n);
    rc = svm_dec_show(d);

out:
    svm_dec_wipe(d);
    return rc;
}
