/*
 * svm.h - what every file of mod_splitvault shares.
 *
 * Only what is truly module-wide: the httpd and core headers every file
 * needs, the module record, the handler names and the limits that tie the
 * parts together. Each concern has its own header (svm_config.h, svm_db.h,
 * svm_daemon.h, ...) next to its file; a file includes the headers of what
 * it uses. docs/hacking.md ("The module") draws who may call whom.
 *
 * Log tags: every log site carries its own "SVnnnnn:" tag, never reused
 * (t/check-source.sh checks); each concern owns a range (config and start-up
 * 010xx, db 011xx, auth 012xx, session 013xx, routes and pages 014xx, intake
 * 015xx, update 016xx, daemon 017xx, audit 018xx, key1 019xx, form 020xx,
 * keys/decrypt 021xx, intake throttle 022xx, staff console 023xx). A tag keeps its number when
 * its log site moves to another file (the key location's refusals in
 * svm_route.c, the DECRYPT answer check in svm_daemon.c).
 */
#ifndef SVM_H
#define SVM_H

/* config.h first, for SV_TEST_HOOKS; its PACKAGE_* names clash with
 * ap_config_auto.h, so drop them before httpd.h. */
#include "config.h"
#undef PACKAGE_BUGREPORT
#undef PACKAGE_NAME
#undef PACKAGE_STRING
#undef PACKAGE_TARNAME
#undef PACKAGE_URL
#undef PACKAGE_VERSION

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "sv_err.h"
#include "sv_format.h"
#include "sv_wire.h"

extern module AP_MODULE_DECLARE_DATA splitvault_module;

/* Log lines name the module; AP_DECLARE_MODULE does this in its own file. */
#if defined(APLOG_USE_MODULE) && !defined(SVM_MODULE_FILE)
APLOG_USE_MODULE(splitvault);
#endif

#define SVM_HANDLER "splitvault"
#define SVM_HANDLER_KEYS "splitvault-keys"

#define SVM_MAX_FIELDS SV_WIRE_MAX_FIELDS
#define SVM_SECURE_HEAP (4u << 20) /* per child: OpenSSL secure heap bytes */
/* statement_timeout of every database connection the module uses */
#define SVM_DB_STATEMENT_TIMEOUT apr_time_from_sec(30)
/* Shares the daemon made for a STORE or DECRYPT are referenced by a commit
 * no later than this after the request was sent, or never: the module
 * checks, right before the INSERT or COMMIT, that it will end by then
 * (with SVM_DB_STATEMENT_TIMEOUT to spare), so that reconcile, whose grace
 * period must exceed this (docs/operations.md), never deletes a share that
 * a commit is about to reference. */
#define SVM_SHARE_MAX_AGE apr_time_from_sec(600)
/* Time kept free after the daemon's answer for sealing and committing:
 * SplitVaultDecryptWait + 2 x SplitVaultDaemonTimeout may not exceed
 * SVM_SHARE_MAX_AGE minus this (checked at start-up). */
#define SVM_COMMIT_RESERVE apr_time_from_sec(120)

#endif /* SVM_H */
