/*
 * svm_fault.c - fault injection for the integration tests (test builds only).
 *
 * Compiled to nothing unless configure ran with --enable-test-hooks
 * (SV_TEST_HOOKS): a request names the fault to inject in the header
 * X-SplitVault-Fault; the code that honours one asks svm_test_fault().
 */
#include "svm.h"
#include "svm_fault.h"

#ifdef SV_TEST_HOOKS
const char *svm_test_fault(request_rec *r)
{
    return apr_table_get(r->headers_in, "X-SplitVault-Fault");
}
#endif
