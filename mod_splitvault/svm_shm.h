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
    apr_time_t at;
} svm_key1_part_info;

/* A pending set (state ASSEMBLING) without its share bytes. */
typedef struct {
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    unsigned have, need;
    apr_time_t started, expires;
    svm_key1_part_info part[SVM_KEY1_PARTS];
} svm_key1_pending_info;

/* What svm_key1_part_add did with a share. */
typedef enum {
    SVM_PART_ADDED,        /* kept; fewer than need present */
    SVM_PART_REPLACED,     /* kept in place of the same admin's earlier share */
    SVM_PART_COMPLETE,     /* need present: the set moved out to the caller */
    SVM_PART_IS_LOADED,    /* that key1 is loaded already: refused */
    SVM_PART_OTHER_SPLIT,  /* a set of another split of that key1 is pending */
    SVM_PART_DUP_INDEX,    /* another admin gave that index already */
    SVM_PART_NOSPACE,      /* every slot is taken */
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
 * *replaced = 1) or a pending set of its shares (cleansed). APR_ENOSPC
 * when every slot is taken. */
apr_status_t svm_key1_load(request_rec *r, const unsigned char sk[SV_X25519_LEN],
                           const unsigned char pk[SV_X25519_LEN], const char *fp,
                           const char *by, int *replaced);
/* Cleanse the slot holding fp. APR_NOTFOUND when none does. */
apr_status_t svm_key1_forget(request_rec *r, const char *fp);
/* Copy the private key of fp into sk (the caller cleanses it after use).
 * APR_NOTFOUND when it is not loaded. */
apr_status_t svm_key1_private(request_rec *r, const char *fp, unsigned char sk[SV_X25519_LEN]);

/* Dual control. Add an opened share from admin by to its key's pending set
 * (started, with expiry now + ttl, when there is none). info describes the
 * set afterwards (on a refusal: the set that caused it, if any). On
 * SVM_PART_COMPLETE the set's shares are copied to parts[0..info->have)
 * (secret memory of the caller, which cleanses it) and the slot is
 * cleansed. Expired sets are wiped first, as in every function below. */
svm_part_result svm_key1_part_add(request_rec *r, const sv_share *s, const char *by,
                                  apr_interval_time_t ttl, svm_key1_pending_info *info,
                                  sv_share *parts);
/* The pending sets into out[SVM_KEY1_SLOTS]; their number, or -1. */
int svm_key1_pending(request_rec *r, svm_key1_pending_info *out);
/* Wipe the pending set of fp (described in info). APR_NOTFOUND: none. */
apr_status_t svm_key1_parts_discard(request_rec *r, const char *fp,
                                    svm_key1_pending_info *info);
/* The parent's monitor: wipe expired sets, each logged here and kept for
 * svm_key1_gone_take. Never blocks: skipped while the mutex is busy. */
void svm_key1_parts_monitor(server_rec *s);
/* Sets wiped on expiry and not yet audited, into out[SVM_KEY1_GONE]
 * (forgotten here); *dropped: those that did not fit since the last take.
 * Their number, or -1. */
int svm_key1_gone_take(request_rec *r, svm_key1_pending_info *out, unsigned *dropped);

#endif /* SVM_SHM_H */
