/*
 * svm_keys.h - the admin key location (handler "splitvault-keys").
 */
#ifndef SVM_KEYS_H
#define SVM_KEYS_H

#include "svm.h"
#include "svm_config.h"
#include "svm_session.h"
#include "svm_upload.h"

#include "sv_keyfile.h"

/* Largest POST body of the key location: a key file, URL-encoded, and the
 * rest of the form. */
#define SVM_UPLOAD_MAX (4 * SV_KEYFILE_MAX)

/* GET: registered and loaded key1 keys, the daemon's status. */
int svm_keys_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st);
/* POST, its upload body read and its CSRF token checked (svm_route.c):
 * action=upload or action=forget. Wipes u as soon as it is done with it. */
int svm_keys_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_upload *u);
/* The audit log's name for a POST of the key location, by its action. */
const char *svm_keys_audit_action(const apr_array_header_t *pairs);

#endif /* SVM_KEYS_H */
