/*
 * svm_parse.h - parsing of untrusted form bodies: urlencoded pairs,
 * multipart/form-data parts and strict UTF-8.
 *
 * Pure functions on a caller's buffer, with APR pools and arrays only and no
 * httpd header, so that the libFuzzer targets (fuzz/fuzz_form.c,
 * fuzz/fuzz_multipart.c) run exactly the code the module runs. Both body
 * readers use it: svm_form.c (the public form and the staff pages) and
 * svm_upload.c (the key location's upload).
 *
 * Everything is decoded in place, in the buffer that holds the body (which
 * the readers keep in cleansed memory): a pair's name and value point into
 * it and are NUL-terminated there. The buffer must have one writable byte
 * after its len bytes (buf[len], normally the body's terminating NUL).
 */
#ifndef SVM_PARSE_H
#define SVM_PARSE_H

#include "apr_pools.h"
#include "apr_tables.h"

/* One field of a form body. value is NUL-terminated and len bytes long
 * (a decoded value may hold NUL bytes itself: len is what counts). */
typedef struct {
    const char *name;
    char *value;
    apr_size_t len;
} svm_pair;

/* Outcome of a parse (never an HTTP status: the callers map them). */
enum {
    SVM_PARSE_OK = 0,
    SVM_PARSE_MALFORMED,    /* not the encoding it claims to be */
    SVM_PARSE_TOO_MANY      /* more than the caller's maximum of fields */
};

/* Field names accepted by svm_parse_urlencoded. */
#define SVM_NAMES_ANY   0   /* any non-empty name without a NUL byte */
#define SVM_NAMES_TOKEN 1   /* svm_parse_name_ok() names only */

/* Decode one urlencoded component s[0..len) in place ('+' is a space, %XX
 * a byte) and NUL-terminate it at its decoded length. Returns that length,
 * or -1 on a malformed %-escape (s is then partly decoded). */
long svm_urldecode(char *s, apr_size_t len);

/* Parse buf[0..len) as application/x-www-form-urlencoded into pairs (an
 * array of svm_pair), at most max_pairs of them. Empty segments ("a=1&&b=2")
 * are skipped; every other segment needs an '='. names: SVM_NAMES_ANY or
 * SVM_NAMES_TOKEN. On failure pairs holds what was parsed before it. */
int svm_parse_urlencoded(char *buf, apr_size_t len, int max_pairs, int names,
                         apr_array_header_t *pairs);

/* The boundary parameter of a multipart/form-data Content-Type value (1 to
 * 70 printable ASCII characters, RFC 2046), copied into p; NULL when there
 * is none or it is malformed. */
const char *svm_parse_boundary(apr_pool_t *p, const char *content_type);

/* Parse buf[0..len) as multipart/form-data with this boundary into pairs,
 * at most max_parts. The body must start with the first delimiter and
 * close with the last one; each part needs a Content-Disposition form-data
 * header with a name="..." that svm_parse_name_ok() accepts. A value is the
 * part's raw bytes (no transfer decoding), NUL-terminated in place where
 * its delimiter began. */
int svm_parse_multipart(char *buf, apr_size_t len, const char *boundary, int max_parts,
                        apr_array_header_t *pairs);

/* 1 when n[0..len) is 1 to 64 printable ASCII characters without '"'. */
int svm_parse_name_ok(const char *n, apr_size_t len);

/* Strict UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) without NUL, C0 controls other than TAB, LF and CR, DEL or C1
 * controls. Returns 1 when valid and sets *ncp to the number of code
 * points; 0 otherwise. */
int svm_utf8_check(const char *s, apr_size_t len, apr_size_t *ncp);

#endif /* SVM_PARSE_H */
