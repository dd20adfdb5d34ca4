/*
 * svd_store.h - the share store, through apr-util DBD (sqlite3 or pgsql).
 *
 * A share: id (never reused), record uuid, field name, key2 public, key2b
 * (secret), state (SV_SHARE_ACTIVE / SV_SHARE_PENDING), created and updated
 * (unix seconds). A released share is deleted: its key2b is gone.
 *
 * Reads go through a small pool of reader connections (store.readers), any
 * thread. Writes go through one writer thread that commits many requests in
 * one transaction (group commit) and wakes each caller only after the COMMIT
 * that holds its rows; with sqlite3 the database runs in WAL mode with
 * synchronous=FULL, so a commit is durable when it returns. The lock-down
 * state lives in the store too, so it survives restarts and is shared by
 * daemons that share a pgsql store.
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
#define SVD_SCHEMA_VERSION 1

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
};

struct svd_store;

/* Before privileges are dropped: sqlite3 takes an exclusive lock on
 * "<store.path>.lock" (one daemon per sqlite file). */
int svd_store_prelock(const struct svd_conf *conf, int *lock_fd, char *err, size_t errlen);

/* Connect, check (sqlite3: create when new) the schema and its version,
 * prepare statements. */
int svd_store_open(const struct svd_conf *conf, struct svd_store **out, char *err, size_t errlen);

/* Create the schema when absent (`splitvaultd --init-store`). */
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

int svd_store_lock_state(struct svd_store *s, int *locked, uint64_t *since);

/* Share counts (cached for a few seconds: a count scans the table). */
int svd_store_counts(struct svd_store *s, uint64_t *active, uint64_t *pending);

/* Shares created before older_than (unix s) with id > after, by id. At
 * most limit entries into out; *more when others follow. */
int svd_store_recon_list(struct svd_store *s, uint64_t after, uint64_t older_than, unsigned limit,
                         sv_recon_entry *out, unsigned *n, int *more);

/* Writes (group-committed; block until durable or failed). */

/* Insert n shares of one record in state (active or pending); ids[] gets
 * the new ids. */
int svd_store_put(struct svd_store *s, const uint8_t uuid[SV_UUID_LEN], unsigned n,
                  const char *const *names, const uint8_t *const *pubs,
                  const uint8_t *const *key2bs, int state, uint64_t *ids);

/* Per item: activate pending keep_id, then delete drop_id, each only when
 * its id, record and field match. drop_id is deleted when it is pending
 * (undoing a rotation), or when active only if this item's keep_id was
 * activated in the same transaction (the rotation committed); any other
 * active share is kept and counted in *refused. */
int svd_store_release(struct svd_store *s, const uint8_t uuid[SV_UUID_LEN],
                      const sv_release_item *items, unsigned n, unsigned *dropped,
                      unsigned *kept, unsigned *refused);

/* Delete shares whose id, record and field match and that were created
 * before older_than. *deleted counts them. */
int svd_store_recon_delete(struct svd_store *s, const sv_recon_ref *refs, unsigned n,
                           uint64_t older_than, unsigned *deleted);

/* Record the lock-down state durably. */
int svd_store_set_lock(struct svd_store *s, int locked, uint64_t since, const char *reason);

#endif /* SVD_STORE_H */
