/*
 * mod_splitvault.c - the module record, its hooks and their registration.
 *
 * SplitVault stores web-form data so that no single server, dump or backup
 * reveals it: see docs/ for operators and docs/design.md for the contract.
 * Each concern lives in its own svm_*.c file (docs/hacking.md, "The
 * module"); this file is the top of the module's call graph: the start-up
 * hooks here call into the files, no file calls back.
 */
#define SVM_MODULE_FILE
#include "svm.h"
#include "svm_auth.h"
#include "svm_config.h"
#include "svm_daemon.h"
#include "svm_dbal.h"
#include "svm_db.h"
#include "svm_decrypt.h"
#include "svm_key1.h"
#include "svm_route.h"
#include "svm_shm.h"
#include "svm_throttle.h"
#include "http_request.h"
#include "http_core.h"
#include "ap_mpm.h"
#include "mpm_common.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include "sv_log.h"
#include "sv_secret.h"

/* Core library messages go to the main server's error log. */
static server_rec *svm_log_server;
static void svm_lib_log(void *ctx, sv_log_level level, const char *msg)
{
    int lvl = level == SV_LOG_ERR ? APLOG_ERR : level == SV_LOG_WARN ? APLOG_WARNING
            : level == SV_LOG_INFO ? APLOG_INFO : APLOG_DEBUG;

    ap_log_error(APLOG_MARK, lvl, 0, svm_log_server, "SV01001: core: %s", msg);
}

static int svm_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                            server_rec *s)
{
    server_rec *sp;
    int used = 0;

    svm_db_retrieve_fns();
    for (sp = s; sp; sp = sp->next) {
        svm_srv_conf *sc = svm_conf(sp);
        const char *err;

        svm_conf_defaults(sc);
        if (!svm_conf_in_use(sc))
            continue;
        used = 1;
        if ((err = svm_conf_check(ptemp, sc))) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sp,
                         "SV01002: server %s:%u: %s", sp->server_hostname ? sp->server_hostname
                         : "(default)", (unsigned)sp->port, err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        sc->ssl_ctx = svm_daemon_ssl_ctx(pconf, sp, sc, &err);
        if (!sc->ssl_ctx) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sp,
                         "SV01003: daemon TLS set-up failed: %s", err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if ((err = svm_auth_key_load(pconf, ptemp, sp, sc))) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, sp, "SV01009: %s", err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (used && !svm_db_available()) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "SV01004: mod_splitvault needs mod_dbd: add "
                     "'LoadModule dbd_module .../mod_dbd.so' and DBDriver/DBDParams");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static int svm_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    int rc;

    svm_conf_reset();
    if ((rc = svm_shm_pre_config(pconf, plog, ptemp)) != OK)
        return rc;
    if ((rc = svm_dbal_pre_config(pconf)) != OK)
        return rc;
    return svm_ithr_pre_config(pconf);
}

static int svm_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                           server_rec *s)
{
    server_rec *sp;
    int used = 0, rc;

    svm_log_server = s;
    sv_log_set(svm_lib_log, NULL);
    svm_db_retrieve_fns();
#ifdef SV_TEST_HOOKS
    /* once per start (not on the first, checking pass): say loudly what
     * this build is, at warning level (not an error of the module) */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "SV01010: mod_splitvault %s: built with "
                     "--enable-test-hooks, so any request can trigger its fault injection "
                     "(header X-SplitVault-Fault); NEVER run this build in production",
                     SV_VERSION);
#endif
    for (sp = s; sp; sp = sp->next) {
        svm_srv_conf *sc = svm_conf(sp);

        if (!svm_conf_in_use(sc))
            continue;
        /* mod_dbd keeps a statement table per server (virtual hosts get
         * a merged copy before this runs), so prepare for each server. */
        svm_db_prepare(sp, sc->fields->nelts);
        svm_decrypt_check_form(sp, sc);
        used = 1;
        if (sc->pool_max == 0) {
            int threads = 1;
            ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
            sc->pool_max = threads > 0 ? threads : 1;
        }
    }
    if (used && svm_conf_allow_core()
        && ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "SV01006: SplitVaultAllowCoreDumps On: "
                     "httpd children may dump core, and a core dump may hold key1, key shares "
                     "and submitted values; for debugging only");
    /* key1's shared memory: one segment for the whole server */
    if (used && (rc = svm_shm_post_config(pconf, s)) != OK)
        return rc;
    /* the daemons' state and load: one table for the whole server, per start */
    if ((rc = svm_dbal_post_config(pconf, s)) != OK)
        return rc;
    /* the intake throttle's table: one for the whole server, per start */
    if ((rc = svm_ithr_post_config(pconf, s)) != OK)
        return rc;
    return svm_auth_init(pconf, s);
}

static void svm_child_init(apr_pool_t *p, server_rec *s)
{
    server_rec *sp;

    /* Request secrets (form bodies, key shares, tokens) live in OpenSSL's
     * secure heap: locked in RAM where RLIMIT_MEMLOCK allows, and excluded
     * from core dumps. When it is full, they fall back to pool memory
     * (still cleansed after use). */
    if (!sv_secret_init(SVM_SECURE_HEAP))
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "SV01005: the secure heap is not locked "
                     "in memory (RLIMIT_MEMLOCK); secrets are still cleansed after use");
    svm_key1_child_init(p);
    svm_shm_child_init(p, s);
    svm_ithr_child_init(p, s);
    svm_dbal_child_init(p, s);
    for (sp = s; sp; sp = sp->next) {
        svm_srv_conf *sc = svm_conf(sp);
        if (svm_conf_in_use(sc))
            svm_daemon_child_init(p, sp);
    }
}

/* Last of all child_init hooks, and after httpd dropped its privileges
 * (the MPMs run drop_privileges before child_init): httpd itself makes a
 * child dumpable again when CoreDumpDirectory is set (ap_unixd_setup_child),
 * so this has to come later to win. Not dumpable also means no ptrace by
 * the same user and /proc/<pid> files owned by root (docs/design.md,
 * "Invariants", 4: no key material or plaintext in a core dump). Unless
 * SplitVaultAllowCoreDumps On. */
static void svm_child_nodump(apr_pool_t *p, server_rec *s)
{
    struct rlimit no_core = { 0, 0 };

    if (svm_conf_allow_core())
        return;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, "SV01007: cannot make this child "
                     "undumpable (PR_SET_DUMPABLE)");
    if (setrlimit(RLIMIT_CORE, &no_core) != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "SV01008: cannot set RLIMIT_CORE to 0");
}

/* In the parent, about every ten seconds (every MPM runs the monitor hook
 * from its main loop): pending key1 shares whose time is up are wiped here,
 * not only when a request next looks at them; the daemons' outstanding
 * counts of children that died are cleared. */
static int svm_monitor(apr_pool_t *p, server_rec *s)
{
    svm_key1_parts_monitor(s);
    svm_dbal_monitor(s);
    return DECLINED;
}

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
    ap_hook_monitor(svm_monitor, NULL, NULL, APR_HOOK_MIDDLE);
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
