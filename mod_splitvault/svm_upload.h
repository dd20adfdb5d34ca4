/*
 * svm_upload.h - reading the key location's upload forms (secret bodies).
 */
#ifndef SVM_UPLOAD_H
#define SVM_UPLOAD_H

#include "svm.h"

/* A request body read whole into secret memory and parsed in place:
 * application/x-www-form-urlencoded or multipart/form-data. Values (the
 * PEM, the passphrase) point into buf; svm_upload_wipe() cleanses all of
 * it at once (a pool cleanup does it again at the end of the request). */
typedef struct {
    char *buf;
    apr_size_t len;
    apr_size_t size;             /* bytes of the block buf is in */
    apr_array_header_t *pairs;   /* svm_pair */
} svm_upload;

/* Read and parse the body (at most max bytes). OK, or an HTTP status with
 * *why set to an admin-safe reason. */
int svm_upload_read(request_rec *r, apr_off_t max, svm_upload *u, const char **why);
void svm_upload_wipe(svm_upload *u);

#endif /* SVM_UPLOAD_H */
