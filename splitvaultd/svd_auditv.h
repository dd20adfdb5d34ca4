/*
 * svd_auditv.h - the audit log's format and its verifier.
 *
 * The audit log is a text file, one entry per line:
 *
 *   seq=<n> prev=<sha256 hex of the previous line> time=<UTC> event=<name> k=v ...
 *
 * seq counts from 1 without gaps; the first entry's prev is 64 zeros; the
 * hash of an entry is SHA-256 of its line without the newline. Values are
 * printable ASCII without spaces (names the wire protocol already limits).
 *
 * The head file holds one fixed-size line naming the last durable entry:
 *
 *   splitvault-audit-head v1 seq=<20 digits> hash=<64 hex>\n
 *
 * rewritten in place (and fsynced) after every group of entries, so a log
 * cut short (truncated, or its last entries deleted) no longer reaches the
 * head. Edits break the next entry's prev (or the head's hash), deletions
 * and reordering break seq and prev. This file is shared by the daemon and
 * by `splitvaultctl audit-verify`, which checks the files offline.
 */
#ifndef SVD_AUDITV_H
#define SVD_AUDITV_H

#include <stddef.h>
#include <stdint.h>

#define SVD_AUDIT_HASH_LEN 32
#define SVD_AUDIT_LINE_MAX 4096
#define SVD_AUDIT_HEAD_FMT "splitvault-audit-head v1 seq=%020llu hash=%s\n"
#define SVD_AUDIT_HEAD_LEN (sizeof("splitvault-audit-head v1 seq=") - 1 + 20 + \
                            sizeof(" hash=") - 1 + 64 + 1)

struct svd_audit_result {
    int ok;                    /* 1 when the chain and the head agree */
    uint64_t entries;          /* complete, chained entries read */
    uint64_t last_seq;         /* seq of the last good entry (0: none) */
    uint8_t last_hash[SVD_AUDIT_HASH_LEN];
    uint64_t good_len;         /* bytes of the log up to the last good entry */
    int head_present;
    uint64_t head_seq;
    uint64_t unconfirmed;      /* good entries after the head's (crash window) */
    int torn_tail;             /* the file ends in an incomplete line */
    uint64_t bad_line;         /* first line that failed (0: none) */
    char msg[256];             /* what failed, or a summary */
    /* the last lock-down or unlock entry: SVD_AUDIT_LOCK_NONE when there is
     * neither, else which, and for a lock-down its since= (0 if absent) */
    int lock_event;
    uint64_t lock_since;
};

#define SVD_AUDIT_LOCK_NONE 0
#define SVD_AUDIT_LOCK_LOCKED 1   /* event=lockdown */
#define SVD_AUDIT_LOCK_UNLOCKED 2 /* event=unlock, done (not outcome=requested/failed) */

/* Verify the log read from log_fd (from offset 0, with pread) against the
 * head read from head_fd (-1: no head file). Fills res; returns 0 when the
 * log verifies, -1 otherwise (res->msg says why). A torn last line fails
 * the check; the daemon removes one at start when it lies past the head. */
int svd_audit_verify_fds(int log_fd, int head_fd, struct svd_audit_result *res);

/* Same for files named by path (head_path may be NULL). */
int svd_audit_verify_files(const char *log_path, const char *head_path,
                           struct svd_audit_result *res);

/* Parse a head line; 0 on success. */
int svd_audit_parse_head(const char *buf, size_t len, uint64_t *seq,
                         uint8_t hash[SVD_AUDIT_HASH_LEN]);

/* SHA-256 of a line. */
void svd_audit_hash(const char *line, size_t len, uint8_t out[SVD_AUDIT_HASH_LEN]);

#endif /* SVD_AUDITV_H */
