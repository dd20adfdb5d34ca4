/*
 * svd_auditv.c - audit log verifier (see svd_auditv.h for the format).
 *
 * Streams the log through a fixed buffer, so verifying a log of millions of
 * entries needs no more memory than one line. No allocation, no threads:
 * the control tool links this file alone.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "svd_auditv.h"
#include "sv_hex.h"

#define RD_CHUNK 65536

/* SHA-256 fetched once: EVP_sha256() would fetch it again on every line. */
static CRYPTO_ONCE sha256_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *sha256_md;

static void
sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
svd_audit_hash(const char *line, size_t len, uint8_t out[SVD_AUDIT_HASH_LEN])
{
    unsigned int n = SVD_AUDIT_HASH_LEN;
    const EVP_MD *md = EVP_sha256();

    if (CRYPTO_THREAD_run_once(&sha256_once, sha256_fetch) && sha256_md != NULL)
        md = sha256_md;
    if (EVP_Digest(line, len, out, &n, md, NULL) != 1)
        memset(out, 0xff, SVD_AUDIT_HASH_LEN); /* never matches a real chain */
}

/* 2n lowercase hex digits at s into out (the log's hashes are written
 * lowercase, so any other spelling is malformed). 0 or -1. */
static int
unhexs(const char *s, uint8_t *out, size_t n)
{
    char again[2 * SVD_AUDIT_HASH_LEN + 1];

    if (n > SVD_AUDIT_HASH_LEN || sv_hex_decode(s, 2 * n, out, n) != SV_OK)
        return -1;
    sv_hex_encode(out, n, again);
    return memcmp(again, s, 2 * n) == 0 ? 0 : -1;
}

/* Parse an unsigned decimal of 1..20 digits at s, ending at a space.
 * Returns the number of digits consumed, 0 when malformed. */
static size_t
parse_u64(const char *s, size_t len, uint64_t *v)
{
    size_t i = 0;
    uint64_t x = 0;

    while (i < len && i < 20 && s[i] >= '0' && s[i] <= '9') {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
        i++;
    }
    if (i == 0 || (i > 1 && s[0] == '0'))
        return 0;
    *v = x;
    return i;
}

int
svd_audit_parse_head(const char *buf, size_t len, uint64_t *seq, uint8_t hash[SVD_AUDIT_HASH_LEN])
{
    static const char p1[] = "splitvault-audit-head v1 seq=";
    static const char p2[] = " hash=";
    size_t o = sizeof(p1) - 1;
    uint64_t x = 0;

    if (len != SVD_AUDIT_HEAD_LEN || memcmp(buf, p1, o) != 0)
        return -1;
    for (size_t i = 0; i < 20; i++) {
        char c = buf[o + i];
        if (c < '0' || c > '9')
            return -1;
        if (x > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(c - '0');
    }
    o += 20;
    if (memcmp(buf + o, p2, sizeof(p2) - 1) != 0)
        return -1;
    o += sizeof(p2) - 1;
    if (unhexs(buf + o, hash, SVD_AUDIT_HASH_LEN) != 0)
        return -1;
    o += 64;
    if (buf[o] != '\n')
        return -1;
    *seq = x;
    return 0;
}

/* Check one line (without its newline) against the chain so far. */
static int
check_line(const char *line, size_t len, uint64_t want_seq, const uint8_t prev[SVD_AUDIT_HASH_LEN],
           char *msg, size_t msglen)
{
    static const char p1[] = "seq=";
    static const char p2[] = " prev=";
    static const char p3[] = " time=";
    uint8_t h[SVD_AUDIT_HASH_LEN];
    uint64_t seq;
    size_t o, n;

    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e) {
            snprintf(msg, msglen, "non-printable byte in entry");
            return -1;
        }
    if (len < sizeof(p1) - 1 || memcmp(line, p1, sizeof(p1) - 1) != 0) {
        snprintf(msg, msglen, "malformed entry (no seq=)");
        return -1;
    }
    o = sizeof(p1) - 1;
    if ((n = parse_u64(line + o, len - o, &seq)) == 0) {
        snprintf(msg, msglen, "malformed sequence number");
        return -1;
    }
    o += n;
    if (seq != want_seq) {
        snprintf(msg, msglen, "sequence number %" PRIu64 " where %" PRIu64
                 " was expected (entry deleted, inserted or reordered)", seq, want_seq);
        return -1;
    }
    if (len - o < sizeof(p2) - 1 + 64 || memcmp(line + o, p2, sizeof(p2) - 1) != 0) {
        snprintf(msg, msglen, "malformed entry (no prev=)");
        return -1;
    }
    o += sizeof(p2) - 1;
    if (unhexs(line + o, h, sizeof(h)) != 0) {
        snprintf(msg, msglen, "malformed previous-entry hash");
        return -1;
    }
    if (memcmp(h, prev, sizeof(h)) != 0) {
        snprintf(msg, msglen, "previous-entry hash does not match (an earlier entry was "
                 "edited, deleted or reordered)");
        return -1;
    }
    o += 64;
    if (len - o < sizeof(p3) - 1 || memcmp(line + o, p3, sizeof(p3) - 1) != 0 ||
        memmem(line + o, len - o, " event=", 7) == NULL) {
        snprintf(msg, msglen, "malformed entry (no time= or event=)");
        return -1;
    }
    return 0;
}

/* 1 when the entry has " key=value" with value a whole token. */
static int
has_field(const char *line, size_t len, const char *kv)
{
    size_t kl = strlen(kv);
    const char *p = line, *end = line + len;

    while ((p = memmem(p, (size_t)(end - p), kv, kl)) != NULL) {
        if (p > line && p[-1] == ' ' && (p + kl == end || p[kl] == ' '))
            return 1;
        p += kl;
    }
    return 0;
}

/* Track the last lock-down / unlock entry (a verified line). */
static void
note_lock_event(const char *line, size_t len, struct svd_audit_result *res)
{
    if (has_field(line, len, "event=lockdown")) {
        static const char k[] = " since=";
        const char *p = memmem(line, len, k, sizeof(k) - 1);
        uint64_t v = 0;

        res->lock_event = SVD_AUDIT_LOCK_LOCKED;
        res->lock_since = 0;
        if (p != NULL && parse_u64(p + sizeof(k) - 1, (size_t)(line + len - p) - (sizeof(k) - 1),
                                   &v) > 0)
            res->lock_since = v;
    } else if (has_field(line, len, "event=unlock") &&
               !has_field(line, len, "outcome=requested") &&
               !has_field(line, len, "outcome=failed")) {
        res->lock_event = SVD_AUDIT_LOCK_UNLOCKED;
        res->lock_since = 0;
    }
}

int
svd_audit_verify_fds(int log_fd, int head_fd, struct svd_audit_result *res)
{
    char *buf = NULL;
    size_t have = 0;
    uint64_t off = 0, line_no = 0;
    uint8_t prev[SVD_AUDIT_HASH_LEN];
    uint8_t head_hash[SVD_AUDIT_HASH_LEN];
    uint8_t head_match[SVD_AUDIT_HASH_LEN];
    int head_seen = 0;
    int r = -1;

    memset(res, 0, sizeof(*res));
    memset(prev, 0, sizeof(prev));
    memset(head_match, 0, sizeof(head_match));

    if (head_fd >= 0) {
        char hb[SVD_AUDIT_HEAD_LEN + 1];
        ssize_t n = pread(head_fd, hb, sizeof(hb), 0);
        if (n < 0) {
            snprintf(res->msg, sizeof(res->msg), "cannot read the head file: %s", strerror(errno));
            goto out;
        }
        if (n > 0) {
            if (svd_audit_parse_head(hb, (size_t)n, &res->head_seq, head_hash) != 0) {
                snprintf(res->msg, sizeof(res->msg), "head file is malformed");
                goto out;
            }
            res->head_present = 1;
        }
    }
    if ((buf = malloc(RD_CHUNK + SVD_AUDIT_LINE_MAX)) == NULL) {
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = pread(log_fd, buf + have, RD_CHUNK + SVD_AUDIT_LINE_MAX - have,
                          (off_t)(off + have));
        size_t start = 0;
        char *nl;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(res->msg, sizeof(res->msg), "read error: %s", strerror(errno));
            goto out;
        }
        have += (size_t)n;
        while ((nl = memchr(buf + start, '\n', have - start)) != NULL) {
            size_t len = (size_t)(nl - (buf + start));

            line_no++;
            if (len > SVD_AUDIT_LINE_MAX ||
                check_line(buf + start, len, res->last_seq + 1, prev, res->msg,
                           sizeof(res->msg)) != 0) {
                if (len > SVD_AUDIT_LINE_MAX)
                    snprintf(res->msg, sizeof(res->msg), "entry longer than %d bytes",
                             SVD_AUDIT_LINE_MAX);
                res->bad_line = line_no;
                goto out;
            }
            svd_audit_hash(buf + start, len, prev);
            note_lock_event(buf + start, len, res);
            res->last_seq++;
            res->entries++;
            if (res->head_present && res->last_seq == res->head_seq) {
                memcpy(head_match, prev, sizeof(prev));
                head_seen = 1;
            }
            start += len + 1;
            res->good_len = off + start;
        }
        if (n == 0) {
            if (have - start > 0) {
                res->torn_tail = 1;
                res->bad_line = line_no + 1;
                snprintf(res->msg, sizeof(res->msg),
                         "the log ends in an incomplete entry (%zu bytes)", have - start);
                goto out;
            }
            break;
        }
        if (have - start > SVD_AUDIT_LINE_MAX) {
            res->bad_line = line_no + 1;
            snprintf(res->msg, sizeof(res->msg), "entry longer than %d bytes", SVD_AUDIT_LINE_MAX);
            goto out;
        }
        memmove(buf, buf + start, have - start);
        off += start;
        have -= start;
    }
    memcpy(res->last_hash, prev, sizeof(prev));
    if (head_fd >= 0 && !res->head_present && res->entries > 0) {
        snprintf(res->msg, sizeof(res->msg), "the head file is empty but the log holds %" PRIu64
                 " entries", res->entries);
        goto out;
    }
    if (res->head_present) {
        if (res->head_seq > res->last_seq) {
            snprintf(res->msg, sizeof(res->msg),
                     "log truncated: the head names entry %" PRIu64 " but the log ends at %" PRIu64,
                     res->head_seq, res->last_seq);
            goto out;
        }
        if (res->head_seq > 0 && (!head_seen || memcmp(head_match, head_hash, sizeof(head_hash)) != 0)) {
            res->bad_line = res->head_seq;
            snprintf(res->msg, sizeof(res->msg),
                     "entry %" PRIu64 " does not match the hash recorded in the head "
                     "(edited or replaced)", res->head_seq);
            goto out;
        }
        res->unconfirmed = res->last_seq - res->head_seq;
    }
    {
        char hx[2 * SVD_AUDIT_HASH_LEN + 1];
        sv_hex_encode(res->last_hash, SVD_AUDIT_HASH_LEN, hx);
        snprintf(res->msg, sizeof(res->msg), "%" PRIu64 " entries verified; last seq=%" PRIu64
                 " hash=%s", res->entries, res->last_seq, hx);
    }
    res->ok = 1;
    r = 0;
out:
    free(buf);
    return r;
}

int
svd_audit_verify_files(const char *log_path, const char *head_path, struct svd_audit_result *res)
{
    int lfd = -1, hfd = -1, r = -1;

    memset(res, 0, sizeof(*res));
    if ((lfd = open(log_path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(res->msg, sizeof(res->msg), "%s: %s", log_path, strerror(errno));
        goto out;
    }
    if (head_path != NULL && (hfd = open(head_path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(res->msg, sizeof(res->msg), "%s: %s (the head file records the last entry; "
                 "without it truncation cannot be detected)", head_path, strerror(errno));
        goto out;
    }
    r = svd_audit_verify_fds(lfd, hfd, res);
out:
    if (lfd >= 0)
        close(lfd);
    if (hfd >= 0)
        close(hfd);
    return r;
}
