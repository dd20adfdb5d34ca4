/*
 * svm_keys.h - the admin key location (handler "splitvault-keys").
 */
#ifndef SVM_KEYS_H
#define SVM_KEYS_H

#include "svm.h"
#include "svm_config.h"
#include "svm_session.h"

/* GET: registered and loaded key1 keys, the daemon's status. */
int svm_keys_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st);
/* POST: reads the secret upload body, checks its CSRF token, then
 * action=upload or action=forget. */
int svm_keys_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st);

#endif /* SVM_KEYS_H */
