/*
 * svm_keys.h - handler "splitvault-keys": the admin key location.
 */
#ifndef SVM_KEYS_H
#define SVM_KEYS_H

#include "svm.h"

int svm_keys_handler(request_rec *r);

#endif /* SVM_KEYS_H */
