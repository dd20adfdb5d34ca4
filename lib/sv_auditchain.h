/*
 * sv_auditchain.h - the main database's audit hash chain, in C.
 *
 * Each row of table audit carries prev_hash and hash = SHA-256 over the
 * tag "splitvault-audit-v1", prev_hash (32 bytes; zeros for the first row)
 * and the row's fields in SV_AC_* order, each encoded as 0x00 for NULL, or
 * 0x01, its length in bytes (4, big-endian) and its bytes. The id is its
 * decimal text, at the UTC time 'YYYY-MM-DDTHH:MM:SS.uuuuuuZ' (what
 * SV_AUDIT_CHAIN_AT_SQL selects). sql/main/004_audit_chain.sql computes the
 * same hash in its trigger (audit_chain_hash); t/unit/test_auditchain.c and
 * t/test_module_audit_chain.py check that both agree.
 */
#ifndef SV_AUDITCHAIN_H
#define SV_AUDITCHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "sv_err.h"

#define SV_AUDIT_CHAIN_HASH_LEN 32

/* The fields of a row, in the order they are hashed. */
enum {
    SV_AC_ID, SV_AC_AT, SV_AC_ACTOR, SV_AC_ACTION, SV_AC_RECORD_REF, SV_AC_FIELD,
    SV_AC_OUTCOME, SV_AC_ADDRESS, SV_AC_DETAIL, SV_AC_NFIELDS
};

/* The SQL expression of column at in the hashed form. */
#define SV_AUDIT_CHAIN_AT_SQL \
    "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* out = the row's hash. f[i] is field i's text (NUL-terminated; NULL for
 * SQL NULL). SV_ERR_INVAL when the id or at is NULL or a field is longer
 * than 2^31 - 1 bytes; SV_ERR_INTERNAL when OpenSSL fails. */
sv_status sv_audit_chain_hash(const uint8_t prev[SV_AUDIT_CHAIN_HASH_LEN],
                              const char *const f[SV_AC_NFIELDS],
                              uint8_t out[SV_AUDIT_CHAIN_HASH_LEN]);

#endif /* SV_AUDITCHAIN_H */
