/*
 * svm_shares.h - key1 under dual control: shares uploaded at the key
 * location, assembled into key1 when enough admins have given theirs.
 */
#ifndef SVM_SHARES_H
#define SVM_SHARES_H

#include "svm.h"
#include "svm_config.h"
#include "svm_db.h"
#include "svm_session.h"
#include "svm_shm.h"
#include "svm_upload.h"

/* POST action=share: a share file ("sharefile", or pasted "sharetext")
 * and its "passphrase". Wipes u as soon as the share is opened. */
int svm_shares_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_upload *u);
/* POST action=share-discard: "fingerprint", the key whose pending set to
 * wipe. Wipes u. */
int svm_shares_discard(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_upload *u);
/* Audit rows for the sets wiped on expiry and not yet audited (the
 * parent's monitor cannot write them), each record removed from the
 * segment only once its row is written; the key location's page calls it,
 * and a share or discard once its body is wiped. */
void svm_shares_audit_gone(request_rec *r, ap_dbd_t *dbd);
/* "1 (ada), 3 (bob)": who gave which share of a set. */
const char *svm_shares_list(apr_pool_t *p, const svm_key1_pending_info *pi);
/* The key location's cell for a pending set: progress, expiry, a discard
 * button (self: the page's escaped URL, csrf: the session's token). */
void svm_shares_progress(request_rec *r, const svm_key1_pending_info *pi, const char *self,
                         const char *csrf);
/* The share upload form. */
void svm_shares_form(request_rec *r, const svm_srv_conf *sc, const char *self,
                     const char *csrf);

#endif /* SVM_SHARES_H */
