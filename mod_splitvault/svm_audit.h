/*
 * svm_audit.h - the main-side audit trail.
 */
#ifndef SVM_AUDIT_H
#define SVM_AUDIT_H

#include "svm.h"
#include "svm_db.h"
#include "svm_config.h"
#include "svm_session.h"

/* Insert an audit row (never a value). Any argument but action and outcome
 * may be NULL. APR_SUCCESS, or APR_EGENERAL (logged). */
apr_status_t svm_audit(request_rec *r, ap_dbd_t *dbd, const char *actor, const char *action,
                       const char *record_ref, const char *field, const char *outcome,
                       const char *detail);
int svm_audit_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st);

#endif /* SVM_AUDIT_H */
