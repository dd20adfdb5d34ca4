/*
 * svm_db.h - mod_dbd access, the prepared statements, row helpers.
 */
#ifndef SVM_DB_H
#define SVM_DB_H

#include "svm.h"
#include "apr_dbd.h"
#include "mod_dbd.h"

void svm_db_retrieve_fns(void);
int svm_db_available(void);
/* Register every prepared statement with mod_dbd for server s, including
 * the one-statement intake for a form of nfields fields. */
void svm_db_prepare(server_rec *s, int nfields);
/* Label of the intake statement for n fields. */
const char *svm_intake_label(apr_pool_t *p, int n);
/* The request's connection (NULL when the database is unreachable; logged). */
ap_dbd_t *svm_db(request_rec *r);
apr_dbd_prepared_t *svm_stmt(request_rec *r, ap_dbd_t *dbd, const char *label);
/* The schema version of the main database as this connection read it (once
 * per connection; while it is older than 5, on every svm_db()): callers
 * choose their statements by it (SV01113 once per process when older than
 * 5). A statement of that version that then fails to prepare is an error,
 * never a reason to fall back to an older one. */
int svm_db_version(request_rec *r, ap_dbd_t *dbd);
/* 1 when a statement of this request was refused by the database for want
 * of a privilege (logged once, SV01114). */
int svm_db_denied(request_rec *r);

/* Run a prepared statement with text/blob arguments (apr_dbd_pbquery
 * convention). *nrows may be NULL. APR_SUCCESS, or APR_EGENERAL (logged). */
apr_status_t svm_db_exec(request_rec *r, ap_dbd_t *dbd, const char *label, int *nrows,
                         const void **args);
/* A result being read row by row (apr_dbd keeps its position in the row). */
typedef struct {
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
} svm_rows;
/* Run a prepared select into a random-access result. APR_SUCCESS, or
 * APR_EGENERAL (logged). */
apr_status_t svm_db_select(request_rec *r, ap_dbd_t *dbd, const char *label, svm_rows *rows,
                           const void **args);
/* Next row, or NULL at the end. */
apr_dbd_row_t *svm_db_row(request_rec *r, ap_dbd_t *dbd, svm_rows *rows);
/* Column n of row, copied into r->pool ("" for NULL). */
const char *svm_db_col(request_rec *r, ap_dbd_t *dbd, apr_dbd_row_t *row, int n);
/* Begin / end a transaction with plain BEGIN, COMMIT and ROLLBACK (apr_dbd's
 * pgsql transaction calls dereference NULL when BEGIN fails on a dead
 * connection). svm_db_tx_begin returns APR_EGENERAL on failure (logged).
 * svm_db_tx_end commits, or rolls back when rollback is set (callers set
 * it after any failed statement), and says what became of the transaction:
 * committed; rolled back (asked for, or the server answered COMMIT with an
 * error); or unknown (the COMMIT was sent but its answer was lost with the
 * connection: the server may have committed). Failures are logged. */
typedef enum {
    SVM_TX_COMMITTED = 0,
    SVM_TX_ROLLED_BACK,
    SVM_TX_UNKNOWN
} svm_tx_outcome;
apr_status_t svm_db_tx_begin(request_rec *r, ap_dbd_t *dbd);
svm_tx_outcome svm_db_tx_end(request_rec *r, ap_dbd_t *dbd, int rollback);
/* After SVM_TX_UNKNOWN: a working session on the request's connection
 * (re-established by libpq when it is broken), to find out by reading.
 * 0, or -1 when the database cannot be reached (logged). */
apr_status_t svm_db_fresh(request_rec *r, ap_dbd_t *dbd);
/* 1 (once) when the last rolled-back transaction failed only because the
 * connection had lost its prepared statements (libpq re-connects a pooled
 * connection after a database restart, without them) and they have been
 * prepared again: the caller may run its transaction once more. */
int svm_db_repaired(request_rec *r);
/* Decode hex (optionally "\x"-prefixed, as PostgreSQL prints bytea) into
 * exactly n bytes. Returns 0 on success. */
apr_status_t svm_hex_decode(const char *hex, unsigned char *out, apr_size_t n);

#endif /* SVM_DB_H */
