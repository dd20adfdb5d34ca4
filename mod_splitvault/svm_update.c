/*
 * svm_update.c - write-only field update by staff (docs/design.md, "Update").
 *
 * The new value is sealed to the field's existing key2 public key; no key1.
 * That key comes from the main database, which a database writer could
 * change to a key of its own and so read every later update: before
 * sealing, the daemon is asked to confirm that it holds the row's share,
 * for that record and field, in use, with exactly that key2 public key
 * (CONFIRM, one small round trip). The row is changed only WHERE its share id and key2
 * public key are still the ones the value was sealed to (compare-and-swap),
 * so a concurrent decrypt-rotation can never be overwritten by a value
 * sealed to a key that no longer exists: the update then re-reads the key
 * and seals again (a few times), or fails cleanly. The change, the record's
 * updated/updated_by and the audit row (who, when, which field; never the
 * value) commit together.
 */
#include "svm.h"
#include "svm_update.h"
#include "svm_audit.h"
#include "svm_config.h"
#include "svm_daemon.h"
#include "svm_db.h"
#include "svm_fault.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_parse.h"
#include "svm_record.h"
#include "svm_session.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include "sv_secret.h"

#define SVM_UPDATE_TRIES 3

int svm_update_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                    const char *ref, apr_array_header_t *pairs)
{
    const svm_pair *pf = svm_form_get(pairs, "field"), *pv = svm_form_get(pairs, "value");
    const char *id = NULL, *uuid_s = NULL, *problem, *back;
    svm_field dflt;
    const svm_field *f;
    uint8_t uuid[SV_UUID_LEN];
    ap_dbd_t *dbd;
    apr_status_t rv;
    int tries;

    if (!pf || !pv || !sv_field_name_valid(pf->value, pf->len))
        return svm_page_message(r, sc, HTTP_BAD_REQUEST, "Update refused",
                                "The update form is incomplete.", st);
    back = svm_url(r, sc, apr_pstrcat(r->pool, "/staff/record/", ref, NULL));
    if (!(f = svm_field_find(sc, pf->value))) {
        /* a field no longer in the form: keep the generic limits */
        memset(&dflt, 0, sizeof(dflt));
        dflt.name = dflt.label = pf->value;
        dflt.maxlen = SV_DATUM_MAX;
        f = &dflt;
    }
    if ((problem = svm_value_problem(r->pool, f, pv->value, pv->len)))
        return svm_page_message(r, sc, HTTP_BAD_REQUEST, "Update refused",
                                apr_pstrcat(r->pool, problem, " Nothing was changed.", NULL),
                                st);
    if (!(dbd = svm_db(r)))
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not updated",
                                "The database is unreachable; nothing was changed. Please "
                                "try again.", st);
    if ((rv = svm_record_lookup(r, dbd, ref, &id, &uuid_s)) != APR_SUCCESS)
        return rv == APR_NOTFOUND ? svm_page_message(r, sc, HTTP_NOT_FOUND, "No such record",
                                         "There is no record with this reference code.", st)
                      : svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not updated",
                                         "The database failed; nothing was changed.", st);
    if (sv_uuid_parse(uuid_s, strlen(uuid_s), uuid) != SV_OK)
        return svm_page_message(r, sc, HTTP_INTERNAL_SERVER_ERROR, "Not updated",
                                "The record is damaged; nothing was changed.", st);

    for (tries = 0; tries < SVM_UPDATE_TRIES; tries++) {
        svm_rows res;
        apr_dbd_row_t *row;
        const char *share = NULL, *pubhex = NULL;
        unsigned char pub[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN];
        unsigned char *ct = apr_palloc(r->pool, pv->len + SV_HPKE_TAG_LEN);
        apr_size_t s32 = 32, sct = pv->len + SV_HPKE_TAG_LEN;
        int nrows = 0, fail, confirmed = 0;
        svm_tx_outcome out;
        sv_status sst;

        {
            const void *args[] = { id, pf->value };
            if (svm_db_select(r, dbd, "svm_field_key", &res, args))
                break;
            while ((row = svm_db_row(r, dbd, &res))) {
                share = svm_db_col(r, dbd, row, 0);
                pubhex = svm_db_col(r, dbd, row, 1);
            }
        }
        if (!share) {
            sv_cleanse(pv->value, pv->len);
            return svm_page_message(r, sc, HTTP_NOT_FOUND, "No such field",
                                    "This record has no such field; nothing was changed.", st);
        }
        if (apr_atoi64(share) <= 0 || svm_hex_decode(pubhex, pub, sizeof(pub))) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01604: the key of %s/%s is "
                          "malformed in the database", ref, pf->value);
            break;
        }
        /* the daemon must confirm the key before anything is sealed to it */
        if (svm_daemon_confirm(r, sc, uuid, st->name, pf->value,
                               (apr_uint64_t)apr_atoi64(share), pub, &confirmed)
            != APR_SUCCESS) {
            sv_cleanse(pv->value, pv->len);
            svm_audit(r, dbd, st->name, "update", ref, pf->value, "daemon unavailable", NULL);
            return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not updated",
                                    "The decryption daemon could not confirm this field's key, "
                                    "so nothing was changed. Please try again in a few "
                                    "minutes.", st);
        }
        if (!confirmed) {
            sv_cleanse(pv->value, pv->len);
            ap_log_rerror(APLOG_MARK, APLOG_CRIT, 0, r, "SV01605: the daemon does not confirm "
                          "the key of %s/%s (share %s): the main database may have been "
                          "changed; update refused", ref, pf->value, share);
            svm_audit(r, dbd, st->name, "update", ref, pf->value, "key not confirmed",
                      apr_psprintf(r->pool, "share %s", share));
            return svm_page_message(r, sc, HTTP_CONFLICT, "Not updated",
                                    "The decryption daemon does not recognise this field's "
                                    "key, so the new value was not saved: nothing was "
                                    "changed. Tell the administrators: the database may have "
                                    "been tampered with.", st);
        }
        if ((sst = sv_datum_seal(pub, uuid, pf->value, (const uint8_t *)pv->value, pv->len,
                                 enc, ct)) != SV_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01601: sealing the new value of "
                          "%s/%s failed", ref, pf->value);
            break;
        }
        if (svm_db_tx_begin(r, dbd))
            break;
        {
            const void *args[] = { enc, &s32, "fields", "enc", ct, &sct, "fields", "ct",
                                   id, pf->value, share, pubhex };
            fail = svm_db_exec(r, dbd, "svm_field_update", &nrows, args) != 0;
        }
#ifdef SV_TEST_HOOKS
        if (!fail && tries == 0 && svm_test_fault(r)
            && strcmp(svm_test_fault(r), "update-conflict") == 0)
            nrows = 0; /* behave as if a rotation had changed the row meanwhile */
#endif
        if (!fail && nrows == 0) {
            svm_db_tx_end(r, dbd, 1);
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV01602: %s/%s changed while "
                          "updating; sealing again", ref, pf->value);
            continue;
        }
        if (!fail) {
            const void *args[] = { st->name, id };
            fail = svm_db_exec(r, dbd, "svm_rec_touch", NULL, args) != 0
                   || svm_audit(r, dbd, st->name, "update", ref, pf->value, "ok", NULL) != 0;
        }
        out = svm_db_tx_end(r, dbd, fail);
        if (!fail && out == SVM_TX_UNKNOWN) {
            /* it may have committed: never run it again, and say so */
            sv_cleanse(pv->value, pv->len);
            if (svm_db_fresh(r, dbd) == 0)
                svm_audit(r, dbd, st->name, "update", ref, pf->value, "commit unknown", NULL);
            return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not confirmed",
                                    "The connection to the database broke while the new value "
                                    "was being saved, so whether it was saved could not be "
                                    "confirmed. Open the record again: if the field's version "
                                    "went up, the new value is stored; if not, enter it "
                                    "again.", st);
        }
        if (fail || out != SVM_TX_COMMITTED) {
            if (svm_db_repaired(r))
                continue; /* the connection was repaired: run it again */
            break;
        }
        sv_cleanse(pv->value, pv->len);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV01603: %s updated %s/%s", st->name, ref,
                      pf->value);
        return svm_redirect(r, apr_pstrcat(r->pool, back, "?updated=",
                                           ap_escape_urlencoded(r->pool, pf->value), NULL));
    }
    sv_cleanse(pv->value, pv->len);
    svm_audit(r, dbd, st->name, "update", ref, pf->value,
              tries >= SVM_UPDATE_TRIES ? "conflict" : "error", NULL);
    if (tries >= SVM_UPDATE_TRIES)
        return svm_page_message(r, sc, HTTP_CONFLICT, "Not updated",
                                "The field kept changing while you updated it; nothing was "
                                "changed. Please try again.", st);
    return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not updated",
                            "The update failed because of a temporary problem; nothing was "
                            "changed. Please try again.", st);
}
