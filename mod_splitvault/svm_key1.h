/*
 * svm_key1.h - the active key1 public key, cached per child.
 */
#ifndef SVM_KEY1_H
#define SVM_KEY1_H

#include "svm.h"
#include "svm_db.h"
#include "svm_config.h"

#include "sv_keyfile.h"

typedef struct {
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    unsigned char pub[SV_X25519_LEN];
} svm_key1pub;

void svm_key1_child_init(apr_pool_t *p);
/* The active key1 public key (cached per child for a few seconds).
 * APR_NOTFOUND when none is registered; APR_EACCES when SplitVaultKey1Pin
 * is set and does not list it (logged with its fingerprint: nothing may be
 * sealed to it); other errors logged. */
apr_status_t svm_key1_active(request_rec *r, ap_dbd_t *dbd, svm_key1pub *out);
/* The registered public key filed under fingerprint fp, into pub: 1 found
 * (a row whose key has that fingerprint), 0 not registered, -1 database
 * failure (logged by svm_db). */
int svm_key1_registered(request_rec *r, ap_dbd_t *dbd, const char *fp,
                        unsigned char pub[SV_X25519_LEN]);
/* 1 when fp may be sealed to: SplitVaultKey1Pin lists it, or is not set. */
int svm_key1_pinned(const svm_srv_conf *sc, const char *fp);

#endif /* SVM_KEY1_H */
