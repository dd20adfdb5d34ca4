/*
 * svm_console.h - the staff console: staff accounts, their sessions, and
 * everyone's own password (SplitVaultStaffConsole On).
 */
#ifndef SVM_CONSOLE_H
#define SVM_CONSOLE_H

#include "svm.h"
#include "svm_config.h"
#include "svm_session.h"

/* GET B/staff/console: every account, and the form that creates one. */
int svm_console_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st);
/* POST B/staff/console/create */
int svm_console_create(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                       apr_array_header_t *pairs);
/* GET B/staff/console/account?name=NAME: one account and its sessions. */
int svm_console_account_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st);
/* POST B/staff/console/account: "action" caps, disable, enable, reset,
 * end-session, end-all for the account "account". */
int svm_console_account_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                             apr_array_header_t *pairs);
/* The audit name of an account POST, from its "action". */
const char *svm_console_action(const apr_array_header_t *pairs);
/* GET and POST B/staff/password: the signed-in person's own password. */
int svm_password_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st);
int svm_password_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                      apr_array_header_t *pairs);

#endif /* SVM_CONSOLE_H */
