/*
 * svm_upload.c - the key location's form bodies: a key1 PEM and its
 * passphrase, as multipart/form-data (a file input) or urlencoded (pasted).
 *
 * The whole body is kept as one block so that it can be cleansed at once,
 * right after the key has been decoded: the in-place decoding leaves parts
 * of the encoded text behind the decoded values, and a plain key1 PEM is
 * the private key itself. svm_body_read (svm_form.c) reads it into secret
 * memory that grows with what arrives (every outgrown block cleansed at
 * once, the last one again at pool cleanup).
 *
 * Parsing (svm_parse.c) is strict: a size cap before reading, names of
 * printable ASCII, at most SVM_UPLOAD_MAX_PARTS fields, and a multipart
 * body that starts with its first delimiter and ends with the closing one.
 */
#include "svm.h"
#include "svm_upload.h"
#include "svm_form.h"
#include "svm_parse.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include "sv_secret.h"

#define SVM_UPLOAD_MAX_PARTS 16

int svm_upload_read(request_rec *r, apr_off_t max, svm_upload *u, const char **why)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *boundary = NULL;
    int rc, multipart = 0;

    memset(u, 0, sizeof(*u));
    u->pairs = apr_array_make(r->pool, 8, sizeof(svm_pair));
    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0
        && (ct[19] == ';' || ct[19] == ' ')) {
        multipart = 1;
        if (!(boundary = svm_parse_boundary(r->pool, ct))) {
            *why = "The multipart form has no valid boundary.";
            return HTTP_BAD_REQUEST;
        }
    }
    else if (!svm_ct_urlencoded(ct)) {
        *why = "The form must be sent as multipart/form-data or "
               "application/x-www-form-urlencoded.";
        return HTTP_UNSUPPORTED_MEDIA_TYPE;
    }
    if ((rc = svm_body_read(r, max, &u->buf, &u->len, &u->size,
                            "The upload is larger than any key file.", why)) != OK)
        return rc;
    rc = multipart ? svm_parse_multipart(u->buf, u->len, boundary, SVM_UPLOAD_MAX_PARTS,
                                         u->pairs)
                   : svm_parse_urlencoded(u->buf, u->len, SVM_UPLOAD_MAX_PARTS,
                                          SVM_NAMES_TOKEN, u->pairs);
    return svm_parse_verdict(rc, why);
}

void svm_upload_wipe(svm_upload *u)
{
    if (u->buf)
        sv_cleanse(u->buf, u->size);
}
