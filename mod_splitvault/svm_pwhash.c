/*
 * svm_pwhash.c - Argon2id password hashes for staff accounts.
 * See svm_pwhash.h. No httpd header here: the admin tool links this file.
 */
#include <string.h>
#include <stdio.h>
#include <argon2.h>
#include <openssl/rand.h>

#include "svm_pwhash.h"
#include "sv_secret.h"

int svm_pwhash_make(const char *pw, size_t pw_len, char *out, size_t out_len)
{
    unsigned char salt[SVM_ARGON2_SALT];
    int rc;

    if (out_len < argon2_encodedlen(SVM_ARGON2_T, SVM_ARGON2_M_KIB, SVM_ARGON2_P,
                                    SVM_ARGON2_SALT, SVM_ARGON2_HASH, Argon2_id))
        return -1;
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return -1;
    rc = argon2id_hash_encoded(SVM_ARGON2_T, SVM_ARGON2_M_KIB, SVM_ARGON2_P, pw, pw_len,
                               salt, sizeof(salt), SVM_ARGON2_HASH, out, out_len);
    sv_cleanse(salt, sizeof(salt));
    return rc == ARGON2_OK ? 0 : -1;
}

int svm_pwhash_verify(const char *encoded, const char *pw, size_t pw_len)
{
    if (encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0)
        return 0;
    return argon2id_verify(encoded, pw, pw_len) == ARGON2_OK;
}

int svm_pwhash_strong(const char *encoded)
{
    unsigned v, m, t, p;

    if (encoded == NULL
        || sscanf(encoded, "$argon2id$v=%u$m=%u,t=%u,p=%u$", &v, &m, &t, &p) != 4)
        return 0;
    /* OWASP: m=19 MiB with t=2, or m=46 MiB with t=1 (equivalent settings). */
    return p >= 1 && ((m >= 19456 && t >= 2) || (m >= 47104 && t >= 1));
}
