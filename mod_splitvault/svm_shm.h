/*
 * svm_shm.h - key1 private keys in anonymous shared memory.
 */
#ifndef SVM_SHM_H
#define SVM_SHM_H

#include "svm.h"

#include "sv_keyfile.h"

#define SVM_KEY1_SLOTS 4          /* key1 private keys loaded at once, at most */
#define SVM_KEY1_PARTS 8          /* reserved: parts per slot for k-of-n loading */
#define SVM_KEY1_MUTEX "splitvault-key1"

/* What the key location may show of a loaded key (nothing secret). */
typedef struct {
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    char by[SV_WIRE_MAX_ACTOR + 1];
    apr_time_t since;
} svm_key1_info;

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
 * *replaced = 1). APR_ENOSPC when every slot is taken. */
apr_status_t svm_key1_load(request_rec *r, const unsigned char sk[SV_X25519_LEN],
                           const unsigned char pk[SV_X25519_LEN], const char *fp,
                           const char *by, int *replaced);
/* Cleanse the slot holding fp. APR_NOTFOUND when none does. */
apr_status_t svm_key1_forget(request_rec *r, const char *fp);
/* Copy the private key of fp into sk (the caller cleanses it after use).
 * APR_NOTFOUND when it is not loaded. */
apr_status_t svm_key1_private(request_rec *r, const char *fp, unsigned char sk[SV_X25519_LEN]);

#endif /* SVM_SHM_H */
