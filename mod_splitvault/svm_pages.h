/*
 * svm_pages.h - handler "splitvault": routing and the staff pages.
 */
#ifndef SVM_PAGES_H
#define SVM_PAGES_H

#include "svm.h"

int svm_handler(request_rec *r);

#endif /* SVM_PAGES_H */
