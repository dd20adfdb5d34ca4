/*
 * svm_decrypt.h - the decrypt action for privileged staff.
 */
#ifndef SVM_DECRYPT_H
#define SVM_DECRYPT_H

#include "svm.h"
#include "svm_config.h"
#include "svm_session.h"

int svm_decrypt_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                     const char *ref, apr_array_header_t *pairs);
/* On the record page of privileged staff: a line when key1 is not loaded
 * or the daemon is unreachable or locked down (one STATUS call). */
void svm_decrypt_status_note(request_rec *r, const svm_srv_conf *sc);
/* Start-up note when the form's largest record needs several DECRYPTs. */
void svm_decrypt_check_form(server_rec *s, const svm_srv_conf *sc);

#endif /* SVM_DECRYPT_H */
