/*
 * svd_audit.h - the daemon's append-only, hash-chained audit log.
 *
 * Any thread appends an event; one writer thread turns queued events into
 * chained lines (svd_auditv.h), writes them in one write(2), fdatasyncs the
 * log, then rewrites and fdatasyncs the head file (group commit). A caller
 * that must not go on before its entry is durable (every decrypt) waits for
 * it. When a write fails the log is cut back to its last durable length,
 * the waiting callers are told, and the log counts as unhealthy until a
 * later write succeeds: decrypts are refused meanwhile (fail closed).
 *
 * Events never carry secrets: record uuids, field names, share ids, actor
 * names, peer addresses, outcomes and reasons only.
 */
#ifndef SVD_AUDIT_H
#define SVD_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "svd_auditv.h"

#define SVD_AUDIT_MAGIC 0xa0d17c4au
/*
 * Sizes. A line is at most SVD_AUDIT_LINE_MAX (the verifier refuses longer
 * ones): the chain prefix "seq=<20 digits> prev=<64 hex> ", the time
 * "time=<UTC> " and the event text. SVD_AUDIT_EVENT_MAX is what is left for
 * the event text ("event=... k=v ..."); every caller formats events whose
 * worst case fits it, checked by static assertions where they are built.
 */
#define SVD_AUDIT_CHAIN_PREFIX_MAX (sizeof("seq= prev= ") - 1 + 20 + 2 * SVD_AUDIT_HASH_LEN)
#define SVD_AUDIT_TIME_PREFIX_MAX 48
#define SVD_AUDIT_EVENT_MAX \
    (SVD_AUDIT_LINE_MAX - SVD_AUDIT_CHAIN_PREFIX_MAX - SVD_AUDIT_TIME_PREFIX_MAX)
#define SVD_AUDIT_HEAD_SYNC_MS 100 /* longest the durable head lags while busy */
#define SVD_AUDIT_GROUP_WAIT_US 1000 /* longest a group waits for announced entries */

struct svd_audit;

/* Open (creating when absent, mode 0600) the log and its head file, verify
 * the chain, and cut off an incomplete last line left by a crash when it
 * lies past the head. Fails when the chain does not verify. */
int svd_audit_open(const char *path, const char *head_path, struct svd_audit **out,
                   char *err, size_t errlen);

/* Start / stop the writer thread. stop flushes what is queued. */
int svd_audit_start(struct svd_audit *a);
void svd_audit_stop(struct svd_audit *a);
void svd_audit_close(struct svd_audit *a);

/* Queue one event: "event=<name> k=v ..." (time and chain are added).
 * With wait, returns 0 only once the entry is durable; without, 0 once
 * queued. -1 when the log is failing (or the event is malformed). */
int svd_audit_event(struct svd_audit *a, int wait, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Group commit hints. A caller that will queue an entry shortly (a decrypt
 * past the limiter) announces it with svd_audit_expect() and withdraws the
 * announcement with svd_audit_unexpect() just before queueing it (or when it
 * gives up). While announced entries are outstanding, the writer holds a
 * group open for up to SVD_AUDIT_GROUP_WAIT_US, so concurrent decrypts share
 * one write and one fdatasync; it writes at once when none is outstanding.
 * Durability is unchanged: each waiting caller is answered only after the
 * fdatasync covering its entry.
 */
void svd_audit_expect(struct svd_audit *a);
void svd_audit_unexpect(struct svd_audit *a);

/* The log's descriptor, for fstatvfs (svd_space.h); never written by the
 * caller. */
int svd_audit_fd(struct svd_audit *a);

/* 1 while the last write succeeded. */
int svd_audit_healthy(struct svd_audit *a);

/* The last durable entry's sequence number and hash. */
void svd_audit_head(struct svd_audit *a, uint64_t *seq, uint8_t hash[SVD_AUDIT_HASH_LEN]);

/* 1 when, at open, the log's last lock-down or unlock entry was a
 * lock-down (the audit log as a second durable record of the lock-down
 * state); *since gets its since= (0 when it has none). */
int svd_audit_locked_at_open(struct svd_audit *a, uint64_t *since);

/* Verify the live log (blocks the writer meanwhile). */
int svd_audit_verify_live(struct svd_audit *a, struct svd_audit_result *res);

#endif /* SVD_AUDIT_H */
