/*
 * svm_shm.h - key1 private keys in anonymous shared memory.
 */
#ifndef SVM_SHM_H
#define SVM_SHM_H

#include "svm.h"

#include "sv_keyfile.h"
#include "sv_share.h"

#define SVM_KEY1_SLOTS 4          /* key1 private keys loaded or assembling at once */
#define SVM_KEY1_PARTS SV_SHARE_MAX_K /* shares one pending set holds, at most */
#define SVM_KEY1_GONE 8           /* expired sets kept for the audit log, at most */
#define SVM_KEY1_MUTEX "splitvault-key1"
#define SVM_KEY1_SPLIT_HEX 8      /* split id digits shown on pages and in the audit */
#define SVM_KEY1_OPENS 2          /* share files opened (scrypt) at once, server-wide */

/* What the key location may show of a loaded key (nothing secret). */
typedef struct {
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    char by[SV_WIRE_MAX_ACTOR + 1];
    apr_time_t since;
} svm_key1_info;

/* One share of a pending set, as a page or an audit row may show it. */
typedef struct {
    unsigned index;
    char by[SV_WIRE_MAX_ACTOR + 1];
    apr_int64_t staff;                     /* the giver's staff id */
    apr_time_t at;
} svm_key1_part_info;

/* A pending set (state ASSEMBLING or LOADING) without its share bytes. */
typedef struct {
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    char split[SVM_KEY1_SPLIT_HEX + 1];    /* the split id's first hex digits */
    char starter[SV_WIRE_MAX_ACTOR + 1];   /* who gave its first share */
    unsigned have, need;
    apr_time_t started, expires;
    svm_key1_part_info part[SVM_KEY1_PARTS];
} svm_key1_pending_info;

/* What svm_key1_part_add did with a share. */
typedef enum {
    SVM_PART_ADDED,        /* kept; fewer than need present */
    SVM_PART_REPLACED,     /* kept in place of the same admin's earlier share */
    SVM_PART_COMPLETE,     /* need present: the slot is LOADING, shares copied out */
    SVM_PART_IS_LOADED,    /* that key1 is loaded already: refused */
    SVM_PART_LOADING,      /* that key1 is being loaded from shares right now */
    SVM_PART_OTHER_SPLIT,  /* a set of another split of that key1 is pending */
    SVM_PART_DUP_INDEX,    /* another admin gave that index already */
    SVM_PART_ADMIN_BUSY,   /* this admin started another pending set already */
    SVM_PART_NOSPACE,      /* no slot free but the one kept for a whole key */
    SVM_PART_ERROR         /* segment unavailable (logged) */
} svm_part_result;

int svm_shm_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
/* Create the segment and its mutex once (skipping the first, checking
 * pass); a graceful restart finds them again. */
int svm_shm_post_config(apr_pool_t *pconf, server_rec *s);
void svm_shm_child_init(apr_pool_t *p, server_rec *s);
/* The loaded keys into out[SVM_KEY1_SLOTS]; returns their number, or -1
 * when the segment is unavailable (logged). */
int svm_key1_slots(request_rec *r, svm_key1_info *out);
/* Copy a key1 private key (checked by the caller against its registered
 * public key) into a slot, replacing one of the same fingerprint (then
 * *replaced = 1) or a pending set of its shares (cleansed; described in
 * displaced, whose have is 0 when there was none). APR_ENOSPC when every
 * slot is taken; APR_EBUSY while that key is being loaded from shares. */
apr_status_t svm_key1_load(request_rec *r, const unsigned char sk[SV_X25519_LEN],
                           const unsigned char pk[SV_X25519_LEN], const char *fp,
                           const char *by, int *replaced, svm_key1_pending_info *displaced);
/* Cleanse the LOADED slot holding fp (a pending set is left alone: that
 * is svm_key1_parts_discard). APR_NOTFOUND when none does. */
apr_status_t svm_key1_forget(request_rec *r, const char *fp);
/* Copy the private key of fp into sk (the caller cleanses it after use).
 * APR_NOTFOUND when it is not loaded. */
apr_status_t svm_key1_private(request_rec *r, const char *fp, unsigned char sk[SV_X25519_LEN]);

/* Dual control. Add an opened share from admin by (staff id staff) to its
 * key's pending set (started, with expiry now + ttl, when there is none;
 * an admin starts at most one set at a time, and a new set never takes
 * the last free slot, kept for a whole key or a completing set). info
 * describes the set afterwards (on a refusal: the set that caused it, if
 * any). On SVM_PART_COMPLETE the set's shares are copied to
 * parts[0..info->have) (secret memory of the caller, which cleanses it)
 * and the slot stays reserved in state LOADING until the caller ends it
 * with svm_key1_load_shares or svm_key1_loading_end. Expired sets are
 * wiped first, as in every function below. */
svm_part_result svm_key1_part_add(request_rec *r, const sv_share *s, const char *by,
                                  apr_int64_t staff, apr_interval_time_t ttl,
                                  svm_key1_pending_info *info, sv_share *parts);
/* Load the key combined from a LOADING set into exactly its slot.
 * APR_NOTFOUND when the slot is no longer LOADING (it timed out). */
apr_status_t svm_key1_load_shares(request_rec *r, const unsigned char sk[SV_X25519_LEN],
                                  const unsigned char pk[SV_X25519_LEN], const char *fp,
                                  const char *by);
/* End a LOADING set without a load: keep[i] (for the set's part i) says
 * which shares go back to the set, pending again with its first expiry;
 * keep NULL, or no share kept: the slot is cleansed. APR_NOTFOUND when
 * the slot is no longer LOADING. */
apr_status_t svm_key1_loading_end(request_rec *r, const char *fp, const int *keep);
/* The pending sets into out[SVM_KEY1_SLOTS]; their number, or -1. */
int svm_key1_pending(request_rec *r, svm_key1_pending_info *out);
/* Wipe the pending set of fp (described in info). APR_NOTFOUND: none. */
apr_status_t svm_key1_parts_discard(request_rec *r, const char *fp,
                                    svm_key1_pending_info *info);
/* The parent's monitor: wipe expired sets, each logged here and kept for
 * svm_key1_gone_peek. Never blocks: skipped while the mutex is busy. */
void svm_key1_parts_monitor(server_rec *s);
/* Sets wiped on expiry and not yet audited, into out[SVM_KEY1_GONE] (left
 * in the segment); *dropped: those that did not fit. Their number, or -1. */
int svm_key1_gone_peek(request_rec *r, svm_key1_pending_info *out, unsigned *dropped);
/* Forget the first n records svm_key1_gone_peek gave (audited now) and
 * dropped of the count that did not fit. */
void svm_key1_gone_done(request_rec *r, int n, unsigned dropped);
/* Take one of the SVM_KEY1_OPENS places for opening a share file (its
 * scrypt). APR_EBUSY when all are taken; give it back with
 * svm_key1_open_end. A place whose process is gone or that is older than
 * a minute is free again. */
apr_status_t svm_key1_open_begin(request_rec *r);
void svm_key1_open_end(request_rec *r);

#endif /* SVM_SHM_H */
