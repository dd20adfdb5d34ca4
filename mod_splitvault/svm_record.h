/*
 * svm_record.h - records: reference codes, lookup by code, field values.
 */
#ifndef SVM_RECORD_H
#define SVM_RECORD_H

#include "svm.h"
#include "svm_db.h"
#include "svm_config.h"

#define SVM_REF_LEN 11            /* XXXXX-XXXXX */

/* A record by reference code: its id and uuid text. APR_SUCCESS,
 * APR_NOTFOUND, or APR_EGENERAL (a database error, logged). */
apr_status_t svm_record_lookup(request_rec *r, ap_dbd_t *dbd, const char *ref,
                               const char **id, const char **uuid);
/* 1 when s is a well-formed reference code (XXXXX-XXXXX). */
int svm_ref_valid(const char *s);

/* Field value checks shared by intake and update. Returns NULL when value
 * is acceptable for f, else a visitor-safe reason. */
const char *svm_value_problem(apr_pool_t *p, const svm_field *f, const char *v,
                              apr_size_t len);

#endif /* SVM_RECORD_H */
