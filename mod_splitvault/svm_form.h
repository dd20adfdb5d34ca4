/*
 * svm_form.h - request bodies and query strings of the public form and the staff pages.
 */
#ifndef SVM_FORM_H
#define SVM_FORM_H

#include "svm.h"
#include "svm_parse.h"

#include "sv_keyfile.h"

/* Read and parse an application/x-www-form-urlencoded body of at most max
 * bytes. Returns OK, or an HTTP status with *why set to a visitor-safe
 * reason: 415 (content type), 413 (too large), 400 (malformed). The body and
 * decoded values are cleansed when r->pool is cleared. */
int svm_form_read(request_rec *r, apr_off_t max, apr_array_header_t **pairs,
                  const char **why);
const svm_pair *svm_form_get(const apr_array_header_t *pairs, const char *name);
/* The field "fingerprint" naming a key1: 64 lowercase hex digits, copied
 * into fp (NUL-terminated). 0 when it is absent or anything else. */
int svm_form_fingerprint(const apr_array_header_t *pairs,
                         char fp[SV_FINGERPRINT_HEX_LEN + 1]);
/* Read the request body (at most max bytes; larger gets 413 with *why =
 * too_large, malformed or unreadable 400) into secret memory that grows
 * with what arrives: Content-Length is checked against max but never used
 * to size anything. *out is NUL-terminated, *outlen long, in a block of
 * *size bytes (size may be NULL), cleansed when r->pool is cleared; after
 * a failure that came to reading, they describe what arrived. */
int svm_body_read(request_rec *r, apr_off_t max, char **out, apr_size_t *outlen,
                  apr_size_t *size, const char *too_large, const char **why);
/* Is the Content-Type application/x-www-form-urlencoded (parameters
 * allowed)? */
int svm_ct_urlencoded(const char *ct);
/* OK for SVM_PARSE_OK, else 400 with *why set to a visitor-safe reason. */
int svm_parse_verdict(int rc, const char **why);
/* A zeroed buffer of n bytes tied to pool p (never NULL): secure heap while
 * this pool's share (32 KiB) and the library's budget allow, else the
 * ordinary heap; cleansed and released at pool cleanup either way. */
void *svm_secret_palloc(apr_pool_t *p, apr_size_t n);
/* Is the query-string argument name present: value copied or NULL. */
const char *svm_query_arg(request_rec *r, const char *name);
/* A page number from the query string: 1 to 9 decimal digits, at most max;
 * anything else (absent, signed, too large, not a number) is page 0. */
int svm_query_page(request_rec *r, const char *name, int max);

#endif /* SVM_FORM_H */
