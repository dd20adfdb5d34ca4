/*
 * svd_store.h - the share store, through apr-util DBD (sqlite3 or pgsql).
 *
 * A share: id (never reused), record uuid, field name, key2 public, key2b
 * (secret), state (SV_SHARE_ACTIVE / SV_SHARE_PENDING), created and updated
 * (unix seconds), the share a rotation's pending share replaces, and when
 * it was retired. No request deletes a share: RELEASE and RECON_DELETE
 * retire it (it is never used for a decrypt again, and the operator can
 * restore it); the housekeeping purges retired shares once they are older
 * than retention.period, and never while the store records a lock-down.
 *
 * Reads go through a small pool of reader connections (store.readers), any
 * thread. Writes go through one writer thread that commits many requests in
 * one transaction (group commit) and wakes each caller only after the COMMIT
 * that holds its rows; with sqlite3 the database runs in WAL mode with
 * synchronous=FULL, so a commit is durable when it returns. The lock-down
 * state lives in the store too, so it survives restarts and is shared by
 * daemons that share a pgsql store; so does a pgsql store's decrypt limiter
 * (svd_store_limit_*).
 */
#ifndef SVD_STORE_H
#define SVD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "svd_conf.h"
#include "sv_format.h"
#include "sv_hpke.h"
#include "sv_wire.h"

#define SVD_STORE_MAGIC 0x570e57a1u
#define SVD_SCHEMA_VERSION 3

/* One share as read back. Holds key2b: keep it in secret memory and
 * cleanse it after use. */
struct svd_share {
    uint64_t id;
    uint8_t uuid[SV_UUID_LEN];
    char field[SV_FIELD_MAX + 1];
    uint8_t pub[SV_X25519_LEN];
    uint8_t key2b[SV_X25519_LEN];
    int state;
    uint64_t created;
    uint64_t retired;     /* unix seconds; 0: not retired */
};

/* One retired share, as listed for the operator (no key material). */
struct svd_retired {
    uint64_t id;
    uint8_t uuid[SV_UUID_LEN];
    char field[SV_FIELD_MAX + 1];
    int state;            /* what it was when retired (and is again if restored) */
    uint64_t created, retired;
    char why[16];         /* release, undo, superseded, discard, reconcile */
};

/* Who releases, and so what each RELEASE item may do. */
enum svd_release_mode {
    /* a front end: drop_id and keep_id finish a rotation (keep_id pending and
     * made to replace exactly drop_id: it is activated, drop_id retired);
     * drop_id alone undoes one (only a pending share is retired) */
    SVD_RELEASE_FRONTEND,
    /* reconcile: keep_id alone activates a pending share the main database
     * references (a rotation whose RELEASE never came) */
    SVD_RELEASE_RECONCILE,
    /* the daemon itself: the pending shares of a refused decrypt */
    SVD_RELEASE_DISCARD
};

enum svd_restore_by { SVD_RESTORE_ID, SVD_RESTORE_RECORD, SVD_RESTORE_SINCE };

struct svd_store;

/* Before privileges are dropped: sqlite3 takes an exclusive lock on
 * "<store.path>.lock" (one daemon per sqlite file). */
int svd_store_prelock(const struct svd_conf *conf, int *lock_fd, char *err, size_t errlen);

/* Connect, check (sqlite3: create when new) the schema and its version,
 * prepare statements. */
int svd_store_open(const struct svd_conf *conf, struct svd_store **out, char *err, size_t errlen);

/* Create the schema when absent, upgrade an older one (`splitvaultd
 * --init-store`; svd_store_open upgrades too). */
int svd_store_init_schema(const struct svd_conf *conf, char *err, size_t errlen);

int svd_store_start(struct svd_store *s);

/* Group commit figures: transactions committed by the writer and the write
 * operations they held (their ratio is the group size). */
void svd_store_writer_stats(struct svd_store *s, uint64_t *commits, uint64_t *ops);
void svd_store_stop(struct svd_store *s);
void svd_store_close(struct svd_store *s);

/* Read shares by id. found[i] is 1 when ids[i] exists; out[i] is filled
 * then. Also reports the durable lock-down state. 0 or -1 (store error). */
int svd_store_get(struct svd_store *s, const uint64_t *ids, unsigned n, struct svd_share *out,
                  int *found, int *locked, uint64_t *locked_since);

/* The same without key2b: the store does not select it (out[i].key2b is
 * zeros), so the shares need no secret memory. For CONFIRM. */
int svd_store_get_public(struct svd_store *s, const uint64_t *ids, unsigned n,
                         struct svd_share *out, int *found);

int svd_store_lock_state(struct svd_store *s, int *locked, uint64_t *since);

/* Share counts, retired ones apart (cached for a few seconds: a count scans
 * the table). */
int svd_store_counts(struct svd_store *s, uint64_t *active, uint64_t *pending,
                     uint64_t *retired);

/* Shares not retired, created before older_than (unix s), with id > after,
 * by id. At most limit entries into out; *more when others follow. */
int svd_store_recon_list(struct svd_store *s, uint64_t after, uint64_t older_than, unsigned limit,
                         sv_recon_entry *out, unsigned *n, int *more);

/* Every share with id > after, retired ones included (retired: when, 0 in
 * use), by id; at most limit into out, *more when others follow. No key
 * material. */
int svd_store_recon_scan(struct svd_store *s, uint64_t after, unsigned limit,
                         sv_scan_entry *out, unsigned *n, int *more);

/* The next purge batch: the lowest ids (at most batch) of the shares
 * retired before retired_before; *n of them, ids first..last. */
int svd_store_purge_scan(struct svd_store *s, uint64_t retired_before, unsigned batch,
                         uint64_t *first, uint64_t *last, unsigned *n);

/* Retired shares with id > after, retired at or after since, of record
 * uuid (NULL: any), by id; at most limit into out, *more when others
 * follow. */
int svd_store_retired_list(struct svd_store *s, uint64_t after, uint64_t since,
                           const uint8_t *uuid, unsigned limit, struct svd_retired *out,
                           unsigned *n, int *more);

/* Writes (group-committed; block until durable or failed). */

/* STORE: insert n active shares of a new record; ids[] gets the new ids.
 * Refused (-1 with *exists set, nothing written) when the record ever had
 * shares, whatever their fields (share_records keeps every record stored,
 * after its shares are purged too). */
int svd_store_put_new(struct svd_store *s, const uint8_t uuid[SV_UUID_LEN], unsigned n,
                      const char *const *names, const uint8_t *const *pubs,
                      const uint8_t *const *key2bs, uint64_t *ids, int *exists);

/* DECRYPT with rotation: insert n pending shares, replaces[i] the id of the
 * share the i-th one replaces; ids[] gets the new ids. */
int svd_store_put_rotated(struct svd_store *s, const uint8_t uuid[SV_UUID_LEN], unsigned n,
                          const char *const *names, const uint8_t *const *pubs,
                          const uint8_t *const *key2bs, const uint64_t *replaces,
                          uint64_t *ids);

/* RELEASE items of one record as mode allows (enum svd_release_mode); each
 * action only when the share's id, record and field match and it is not
 * retired. The items must have the mode's shape (asserted): a front end's
 * each name a drop_id, reconcile's none, a discard's a drop_id alone; the
 * caller refuses other requests. *retired and *kept count what was done,
 * *refused what an item asked and may not do (an active share it does not
 * replace by rotation). */
int svd_store_release(struct svd_store *s, const uint8_t uuid[SV_UUID_LEN],
                      const sv_release_item *items, unsigned n, enum svd_release_mode mode,
                      unsigned *retired, unsigned *kept, unsigned *refused);

/* RECON_DELETE: retire the shares whose id, record and field match and that
 * were created before older_than. *retired counts them. */
int svd_store_recon_delete(struct svd_store *s, const sv_recon_ref *refs, unsigned n,
                           uint64_t older_than, unsigned *retired);

/* Delete the shares retired before retired_before with ids first..last,
 * unless the store records a lock-down (then nothing). *purged counts. */
int svd_store_purge(struct svd_store *s, uint64_t retired_before, uint64_t first,
                    uint64_t last, unsigned *purged);

/* Restore retired shares: one (value: its id), a record's (uuid), or all
 * retired at or after a time (value: unix seconds). *restored counts. */
int svd_store_restore(struct svd_store *s, enum svd_restore_by by, uint64_t value,
                      const uint8_t uuid[SV_UUID_LEN], unsigned *restored);

/* Raise the share id sequence so that new shares get ids above n, never
 * lowering it (sqlite3: AUTOINCREMENT's record, created when the store
 * never held a share; pgsql: shares_id_seq). *seq: the highest id handed
 * out or reserved since (new ids are above it). After restoring a store
 * from a backup older than the main database. */
int svd_store_raise_ids(struct svd_store *s, uint64_t n, uint64_t *seq);

/*
 * The decrypt limiter a pgsql store keeps for every daemon on it
 * (svd_limit_shared.c; sv_limit_admit() in sql/daemon/pgsql.sql), with
 * this daemon's decrypt.* settings. Admit: one statement, atomic in the
 * store, whatever other daemons do at the same time; mode is an enum
 * svd_take_mode (svd_limit.h); *result 1 admitted (tokens and budgets
 * spent), 0 not yet (*wait_ms until a token is due), -1 lock down (*why: a
 * static token), -2 the store records a lock-down already (nothing spent).
 * 0, or -1 when the store failed (logged).
 */
int svd_store_limit_admit(struct svd_store *s, const char *actor, int mode, int *result,
                          uint64_t *wait_ms, const char **why);

struct svd_store_limit_state {
    double tokens;       /* the global bucket's now (-1: unlimited rate) */
    uint32_t pressure;   /* drained to now */
    uint64_t decrypts;   /* admitted in the last 24 hours, by every daemon */
    uint64_t actors;     /* staff names with a bucket */
};

int svd_store_limit_status(struct svd_store *s, struct svd_store_limit_state *st);

/* Unlock: the shared pressure and daily budgets start afresh. */
int svd_store_limit_reset(struct svd_store *s);

/* Record a lock-down durably. */
int svd_store_set_lock(struct svd_store *s, uint64_t since, const char *reason);

/* Record the end of the lock-down that began at expect_since (0: the store
 * records none): 0 done; 1 not done, because the store records another
 * lock-down (a newer one, by another daemon on a shared store); -1 error. */
int svd_store_unlock(struct svd_store *s, uint64_t expect_since);

#endif /* SVD_STORE_H */
