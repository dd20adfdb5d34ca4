/*
 * svm_update.h - write-only field update by staff.
 */
#ifndef SVM_UPDATE_H
#define SVM_UPDATE_H

#include "svm.h"
#include "svm_config.h"
#include "svm_session.h"

int svm_update_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                    const char *ref, apr_array_header_t *pairs);

#endif /* SVM_UPDATE_H */
