/*
 * svm_intake.h - the public form and anonymous intake.
 */
#ifndef SVM_INTAKE_H
#define SVM_INTAKE_H

#include "svm.h"
#include "svm_config.h"

int svm_form_page(request_rec *r, const svm_srv_conf *sc, const char *const *errors,
                  int status);
int svm_intake_post(request_rec *r, const svm_srv_conf *sc);

#endif /* SVM_INTAKE_H */
