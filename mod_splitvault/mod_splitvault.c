/*
 * mod_splitvault.c - the module record and hook registration, nothing else.
 *
 * SplitVault stores web-form data so that no single server, dump or backup
 * reveals it: see docs/ for operators and docs/design.md for the contract.
 * Each concern lives in its own svm_*.c file (list in svm.h).
 */
#define SVM_MODULE_FILE
#include "svm.h"
#include "http_request.h"

static const char *const svm_before_dbd[] = { "mod_dbd.c", NULL };

static void svm_register_hooks(apr_pool_t *p)
{
    ap_hook_optional_fn_retrieve(svm_db_retrieve_fns, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_config(svm_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(svm_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* Statements must reach mod_dbd before its post_config groups them. */
    ap_hook_post_config(svm_post_config, NULL, svm_before_dbd, APR_HOOK_MIDDLE);
    ap_hook_child_init(svm_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* after every other module's child_init, so that nothing makes the
     * child dumpable again */
    ap_hook_child_init(svm_child_nodump, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_handler(svm_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(svm_keys_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(splitvault) = {
    STANDARD20_MODULE_STUFF,
    NULL,                   /* per-directory config: none */
    NULL,
    svm_create_srv_conf,
    svm_merge_srv_conf,
    svm_cmds,
    svm_register_hooks,
    AP_MODULE_FLAG_NONE
};
