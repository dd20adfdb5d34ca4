/*
 * sv_pwhash.h - staff password hashing with Argon2id (libargon2).
 *
 * The module (login) and splitvault-admin (staff add / passwd) both link
 * this, from its own convenience library lib/libsv_pwhash.la, so they agree
 * on the parameters; the daemon, which has no passwords, links neither it
 * nor libargon2. Hashes are stored in the PHC string form
 * ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"), which carries its own
 * parameters: raising them later keeps old hashes valid.
 */
#ifndef SV_PWHASH_H
#define SV_PWHASH_H

#include <stddef.h>

#include "sv_err.h"

/* OWASP's first recommended Argon2id setting: m = 19 MiB, t = 2, p = 1. */
#define SV_ARGON2_M_KIB 19456
#define SV_ARGON2_T 2
#define SV_ARGON2_P 1
#define SV_ARGON2_SALT 16
#define SV_ARGON2_HASH 32
#define SV_PWHASH_MAX 160   /* room for the encoded form */

/* Hash pw (pw_len bytes) with a fresh random salt into out (NUL-terminated).
 * SV_OK; SV_ERR_INVAL when out_len cannot hold the encoded form;
 * SV_ERR_INTERNAL when the random generator or libargon2 fails. */
sv_status sv_pwhash_make(const char *pw, size_t pw_len, char *out, size_t out_len);

/* 1 when pw matches encoded, 0 otherwise (also on a malformed hash or a
 * hash that is not Argon2id). Always runs the full Argon2id work of the
 * encoded parameters when the encoding parses. */
int sv_pwhash_verify(const char *encoded, const char *pw, size_t pw_len);

/* 1 when encoded is an Argon2id hash with at least the parameters above. */
int sv_pwhash_strong(const char *encoded);

#endif /* SV_PWHASH_H */
