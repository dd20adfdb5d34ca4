/*
 * svm_route.h - both handlers: the table of routes and its guard.
 */
#ifndef SVM_ROUTE_H
#define SVM_ROUTE_H

#include "svm.h"

/* handler "splitvault" (SplitVaultBase and below) */
int svm_handler(request_rec *r);
/* handler "splitvault-keys" (the key location) */
int svm_keys_handler(request_rec *r);

#endif /* SVM_ROUTE_H */
