/*
 * svm_fault.h - fault injection for the integration tests (test builds only).
 */
#ifndef SVM_FAULT_H
#define SVM_FAULT_H

#include "svm.h"

#ifdef SV_TEST_HOOKS
/* Name of the fault to inject, from the request header X-SplitVault-Fault
 * (compiled only into test builds), or NULL. */
const char *svm_test_fault(request_rec *r);
#endif

#endif /* SVM_FAULT_H */
