/*
 * svm_record.c - records: reference codes, lookup by code, field values.
 *
 * What the public intake, the staff pages, update and decrypt all need to
 * know about a record and its fields, and nothing else.
 */
#include "svm.h"
#include "svm_record.h"
#include "svm_config.h"
#include "svm_db.h"
#include "svm_parse.h"
#include "apr_strings.h"
#include "apr_lib.h"

int svm_ref_valid(const char *s)
{
    int i;

    if (strlen(s) != SVM_REF_LEN)
        return 0;
    for (i = 0; i < SVM_REF_LEN; i++)
        if (i == 5 ? s[i] != '-' : !(apr_isdigit(s[i]) || apr_isupper(s[i])))
            return 0;
    return 1;
}

apr_status_t svm_record_lookup(request_rec *r, ap_dbd_t *dbd, const char *ref,
                               const char **id, const char **uuid)
{
    svm_rows res;
    apr_dbd_row_t *row;
    const void *args[] = { ref };
    int found = 0;

    if (svm_db_select(r, dbd, "svm_rec_get", &res, args) != APR_SUCCESS)
        return APR_EGENERAL;
    while ((row = svm_db_row(r, dbd, &res))) {
        if (found++)
            continue;
        *id = svm_db_col(r, dbd, row, 0);
        *uuid = svm_db_col(r, dbd, row, 1);
    }
    return found ? APR_SUCCESS : APR_NOTFOUND;
}

const char *svm_value_problem(apr_pool_t *p, const svm_field *f, const char *v,
                              apr_size_t len)
{
    apr_size_t ncp = 0;

    if (len > SV_DATUM_MAX || !svm_utf8_check(v, len, &ncp))
        return len > SV_DATUM_MAX
               ? apr_psprintf(p, "%s is too long.", f->label)
               : apr_psprintf(p, "%s contains characters that are not allowed (invalid "
                              "UTF-8 or control characters).", f->label);
    if (ncp > (apr_size_t)f->maxlen)
        return apr_psprintf(p, "%s is longer than %d characters.", f->label, f->maxlen);
    if (f->required && len == 0)
        return apr_psprintf(p, "%s is required.", f->label);
    return NULL;
}
