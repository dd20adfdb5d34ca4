/*
 * svm_pages.h - the staff pages that show records.
 */
#ifndef SVM_PAGES_H
#define SVM_PAGES_H

#include "svm.h"
#include "svm_config.h"
#include "svm_session.h"

/* GET B/staff/: the record list (search and paging, metadata only). */
int svm_list_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st);
/* GET B/staff/record/REF (ref checked well-formed): a record's page. */
int svm_record_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                    const char *ref);

#endif /* SVM_PAGES_H */
