/*
 * sv_auditchain.c - the main database's audit hash chain (sv_auditchain.h).
 */
#include "config.h"

#include <string.h>

#include <openssl/evp.h>

#include "sv_auditchain.h"

static const char tag[] = "splitvault-audit-v1";

sv_status sv_audit_chain_hash(const uint8_t prev[SV_AUDIT_CHAIN_HASH_LEN],
                              const char *const f[SV_AC_NFIELDS],
                              uint8_t out[SV_AUDIT_CHAIN_HASH_LEN])
{
    EVP_MD_CTX *md;
    unsigned int outlen = 0;
    int ok, i;

    memset(out, 0, SV_AUDIT_CHAIN_HASH_LEN);
    if (!prev || !f || !f[SV_AC_ID] || !f[SV_AC_AT])
        return SV_ERR_INVAL;
    for (i = 0; i < SV_AC_NFIELDS; i++)
        if (f[i] && strlen(f[i]) > 0x7fffffffu)
            return SV_ERR_INVAL;
    if (!(md = EVP_MD_CTX_new()))
        return SV_ERR_NOMEM;
    ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL)
         && EVP_DigestUpdate(md, tag, sizeof(tag) - 1)
         && EVP_DigestUpdate(md, prev, SV_AUDIT_CHAIN_HASH_LEN);
    for (i = 0; ok && i < SV_AC_NFIELDS; i++) {
        uint8_t hdr[5];
        size_t len;

        if (!f[i]) {
            hdr[0] = 0;
            ok = EVP_DigestUpdate(md, hdr, 1);
            continue;
        }
        len = strlen(f[i]);
        hdr[0] = 1;
        hdr[1] = (uint8_t)(len >> 24);
        hdr[2] = (uint8_t)(len >> 16);
        hdr[3] = (uint8_t)(len >> 8);
        hdr[4] = (uint8_t)len;
        ok = EVP_DigestUpdate(md, hdr, sizeof(hdr)) && EVP_DigestUpdate(md, f[i], len);
    }
    ok = ok && EVP_DigestFinal_ex(md, out, &outlen) && outlen == SV_AUDIT_CHAIN_HASH_LEN;
    EVP_MD_CTX_free(md);
    if (!ok) {
        memset(out, 0, SV_AUDIT_CHAIN_HASH_LEN);
        return SV_ERR_INTERNAL;
    }
    return SV_OK;
}
