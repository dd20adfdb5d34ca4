/*
 * sv_pwhash.c - Argon2id password hashes for staff accounts. See
 * sv_pwhash.h. Built as lib/libsv_pwhash.la, apart from the core library,
 * so that only the programs with passwords link libargon2.
 */
#include "config.h"

#include <string.h>
#include <stdio.h>
#include <argon2.h>
#include <openssl/rand.h>

#include "sv_pwhash.h"
#include "sv_secret.h"

sv_status
sv_pwhash_make(const char *pw, size_t pw_len, char *out, size_t out_len)
{
    unsigned char salt[SV_ARGON2_SALT];
    int rc;

    if (out == NULL || out_len < argon2_encodedlen(SV_ARGON2_T, SV_ARGON2_M_KIB, SV_ARGON2_P,
                                                   SV_ARGON2_SALT, SV_ARGON2_HASH, Argon2_id))
        return SV_ERR_INVAL;
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return SV_ERR_INTERNAL;
    rc = argon2id_hash_encoded(SV_ARGON2_T, SV_ARGON2_M_KIB, SV_ARGON2_P, pw, pw_len,
                               salt, sizeof(salt), SV_ARGON2_HASH, out, out_len);
    sv_cleanse(salt, sizeof(salt));
    return rc == ARGON2_OK ? SV_OK : SV_ERR_INTERNAL;
}

int
sv_pwhash_verify(const char *encoded, const char *pw, size_t pw_len)
{
    if (encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0)
        return 0;
    return argon2id_verify(encoded, pw, pw_len) == ARGON2_OK;
}

int
sv_pwhash_strong(const char *encoded)
{
    unsigned v, m, t, p;

    if (encoded == NULL
        || sscanf(encoded, "$argon2id$v=%u$m=%u,t=%u,p=%u$", &v, &m, &t, &p) != 4)
        return 0;
    /* OWASP: m=19 MiB with t=2, or m=46 MiB with t=1 (equivalent settings). */
    return p >= 1 && ((m >= 19456 && t >= 2) || (m >= 47104 && t >= 1));
}
