/*
 * svm_pwhash.h - staff password hashing with Argon2id (libargon2).
 *
 * Plain C with no httpd header: splitvault-admin builds it too, so the
 * module and the tool agree on the parameters. Hashes are stored in the
 * PHC string form ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"), which
 * carries its own parameters: raising them later keeps old hashes valid.
 */
#ifndef SVM_PWHASH_H
#define SVM_PWHASH_H

#include <stddef.h>

/* OWASP's first recommended Argon2id setting: m = 19 MiB, t = 2, p = 1. */
#define SVM_ARGON2_M_KIB 19456
#define SVM_ARGON2_T 2
#define SVM_ARGON2_P 1
#define SVM_ARGON2_SALT 16
#define SVM_ARGON2_HASH 32
#define SVM_PWHASH_MAX 160   /* room for the encoded form */

/* Hash pw (pw_len bytes) with a fresh random salt into out (NUL-terminated).
 * Returns 0 on success, -1 on failure. */
int svm_pwhash_make(const char *pw, size_t pw_len, char *out, size_t out_len);

/* 1 when pw matches encoded, 0 otherwise (also on a malformed hash or a
 * hash that is not Argon2id). Always runs the full Argon2id work of the
 * encoded parameters when the encoding parses. */
int svm_pwhash_verify(const char *encoded, const char *pw, size_t pw_len);

/* 1 when encoded is an Argon2id hash with at least the parameters above. */
int svm_pwhash_strong(const char *encoded);

#endif /* SVM_PWHASH_H */
