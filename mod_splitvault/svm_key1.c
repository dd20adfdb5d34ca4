/*
 * svm_key1.c - the active key1 public key, as intake needs it.
 *
 * Intake wraps every key2a to the one active key1 public key registered in
 * table key1. Each child caches it (fingerprint and raw key) for a few
 * seconds, so a submission costs no extra query, and a newly activated key
 * is picked up quickly. Only public material here; the private half is
 * part 2's shared-memory slot.
 *
 * Whoever can write the database can register and activate a key1 of
 * their own, and every later submission (and every decrypt's rotation)
 * would wrap its key2a to them. SplitVaultKey1Pin names the fingerprints
 * this server may seal to, from its own configuration: an active key1
 * that is not pinned is refused here, before anything is sealed or sent.
 */
#include "svm.h"
#include "svm_key1.h"
#include "svm_config.h"
#include "svm_db.h"
#include "apr_strings.h"

#define SVM_KEY1_TTL apr_time_from_sec(5)

static apr_thread_mutex_t *svm_key1_mutex;
static svm_key1pub svm_key1_cache;
static apr_time_t svm_key1_fetched; /* 0: nothing cached */

void svm_key1_child_init(apr_pool_t *p)
{
    if (apr_thread_mutex_create(&svm_key1_mutex, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS)
        svm_key1_mutex = NULL; /* then every intake reads the database */
}

int svm_key1_pinned(const svm_srv_conf *sc, const char *fp)
{
    int i;

    if (!sc->key1_pins || sc->key1_pins->nelts == 0)
        return 1;
    for (i = 0; i < sc->key1_pins->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(sc->key1_pins, i, const char *), fp) == 0)
            return 1;
    return 0;
}

/* The pin check on a key about to be used (from the cache or just read).
 * A refusal is logged as an error when the key was just read, so at most
 * once per SVM_KEY1_TTL and child however many submissions come in; at
 * debug level when it came from the cache. */
static apr_status_t svm_key1_check_pin(request_rec *r, const svm_key1pub *k, int fresh)
{
    if (svm_key1_pinned(svm_conf(r->server), k->fp))
        return APR_SUCCESS;
    ap_log_rerror(APLOG_MARK, fresh ? APLOG_ERR : APLOG_DEBUG, 0, r, "SV01904: the active "
                  "key1 %s is not listed in SplitVaultKey1Pin: nothing is sealed to it (was "
                  "it activated by someone who should not have?)", k->fp);
    return APR_EACCES;
}

apr_status_t svm_key1_active(request_rec *r, ap_dbd_t *dbd, svm_key1pub *out)
{
    apr_time_t now = apr_time_now();
    svm_rows res;
    apr_dbd_row_t *row;
    const void *args[] = { NULL };
    int n = 0;

    if (svm_key1_mutex && apr_thread_mutex_lock(svm_key1_mutex) == APR_SUCCESS) {
        int hit = svm_key1_fetched && now - svm_key1_fetched < SVM_KEY1_TTL;
        if (hit)
            *out = svm_key1_cache;
        apr_thread_mutex_unlock(svm_key1_mutex);
        if (hit)
            return svm_key1_check_pin(r, out, 0);
    }
    if (svm_db_select(r, dbd, "svm_key1_active", &res, args))
        return APR_EGENERAL;
    while ((row = svm_db_row(r, dbd, &res))) {
        if (n++)
            continue;
        apr_cpystrn(out->fp, svm_db_col(r, dbd, row, 0), sizeof(out->fp));
        if (strlen(out->fp) != SV_FINGERPRINT_HEX_LEN
            || svm_hex_decode(svm_db_col(r, dbd, row, 1), out->pub, SV_X25519_LEN)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "SV01901: the active key1 row is malformed");
            return APR_EGENERAL;
        }
    }
    if (n == 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SV01902: no active key1 public key is registered: run "
                      "splitvault-admin key1-register");
        return APR_NOTFOUND;
    }
    {
        /* the fingerprint must be the key's: a row edited by hand is refused */
        char fp[SV_FINGERPRINT_HEX_LEN + 1];
        if (sv_key1_fingerprint(out->pub, fp) != SV_OK || strcmp(fp, out->fp) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "SV01903: the active key1 fingerprint does not match its key");
            return APR_EGENERAL;
        }
    }
    if (svm_key1_mutex && apr_thread_mutex_lock(svm_key1_mutex) == APR_SUCCESS) {
        svm_key1_cache = *out;
        svm_key1_fetched = now;
        apr_thread_mutex_unlock(svm_key1_mutex);
    }
    return svm_key1_check_pin(r, out, 1);
}

int svm_key1_registered(request_rec *r, ap_dbd_t *dbd, const char *fp,
                        unsigned char pub[SV_X25519_LEN])
{
    const void *args[] = { fp };
    unsigned char reg[SV_X25519_LEN];
    svm_rows res;
    apr_dbd_row_t *row;
    int found = 0;

    if (svm_db_select(r, dbd, "svm_key1_get", &res, args))
        return -1;
    while ((row = svm_db_row(r, dbd, &res)))
        if (!found && svm_hex_decode(svm_db_col(r, dbd, row, 0), reg, sizeof(reg)) == 0) {
            char rfp[SV_FINGERPRINT_HEX_LEN + 1];
            /* the row's key must have the fingerprint it is filed under */
            if (sv_key1_fingerprint(reg, rfp) == SV_OK && strcmp(rfp, fp) == 0) {
                memcpy(pub, reg, SV_X25519_LEN);
                found = 1;
            }
        }
    return found;
}
