/*
 * svm_shm.c - key1's private half in Apache shared memory.
 *
 * key1 never touches a disk of the web server: an admin uploads it at the
 * key location (svm_keys.c) and it lives here until Apache stops. The
 * segment is anonymous shared memory (no file, no name), created by the
 * parent at the first real post_config in the process pool, so it outlives
 * graceful restarts (children of every generation inherit the mapping) and
 * is gone when the parent exits. It is locked in RAM where permitted and
 * excluded from core dumps (MADV_DONTDUMP); a cleanup on each generation's
 * pconf cleanses it when Apache stops. One global mutex (created once as well, so
 * children of an old and a new generation serialise on the same lock)
 * guards every access; child_init attaches it.
 *
 * Segment layout (all slots the same size; nothing here is ever written to
 * a file, a log or a page except the public fingerprint, name and time):
 *
 *   +--------------------------------------------------------------------+
 *   | header  magic "SVK1" | layout version | slot count | slot size      |
 *   |         generation (bumped on every change)                        |
 *   +--------------------------------------------------------------------+
 *   | slot 0  state: EMPTY | LOADED | ASSEMBLING (reserved, k-of-n)       |
 *   |         fingerprint (hex) | public key (32) | private key (32)      |
 *   |         loaded by (staff name) | loaded at (apr_time_t)             |
 *   |         parts: needed (k), present, SVM_KEY1_PARTS x               |
 *   |                { index x, share y (32), by, at }  -- unused in v1  |
 *   +--------------------------------------------------------------------+
 *   | slot 1 .. SVM_KEY1_SLOTS-1 (old and new key1 loaded together while  |
 *   |         a key1 rotation runs)                                      |
 *   +--------------------------------------------------------------------+
 *
 * Dual control (docs/design.md, "Planned, and the room left for it"): a slot
 * in state ASSEMBLING will collect admin parts for a registered fingerprint
 * until k are present, then combine them, check the public key and turn
 * LOADED. The parts area is reserved now so that change keeps this layout.
 */
#include "svm.h"
#include "svm_shm.h"
#include "http_core.h"
#include "util_mutex.h"
#include "apr_shm.h"
#include "apr_global_mutex.h"
#include "apr_strings.h"

#include <errno.h>
#include <unistd.h>

#include "sv_secret.h"

#define SVM_SHM_MAGIC 0x53564b31u /* "SVK1" */
#define SVM_SHM_LAYOUT 1
#define SVM_SHM_RETAINED "mod_splitvault key1 segment"

enum { SVM_SLOT_EMPTY = 0, SVM_SLOT_LOADED = 1, SVM_SLOT_ASSEMBLING = 2 };

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t layout;
    apr_uint32_t nslots;
    apr_uint32_t slot_size;
    apr_uint64_t generation;
} svm_shm_hdr;

typedef struct {
    unsigned char x;                       /* share index (1..n) */
    unsigned char y[SV_X25519_LEN];        /* share value: secret */
    char by[SV_WIRE_MAX_ACTOR + 1];
    apr_time_t at;
} svm_key1_part;

typedef struct {
    apr_uint32_t state;
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    unsigned char pub[SV_X25519_LEN];
    unsigned char sk[SV_X25519_LEN];       /* LOADED: key1 private, secret */
    char by[SV_WIRE_MAX_ACTOR + 1];
    apr_time_t since;
    apr_uint32_t parts_need;               /* ASSEMBLING: k */
    apr_uint32_t parts_have;
    svm_key1_part part[SVM_KEY1_PARTS];
} svm_key1_slot;

typedef struct {
    svm_shm_hdr hdr;
    svm_key1_slot slot[SVM_KEY1_SLOTS];
} svm_shm_seg;

/* Kept across generations in the process pool (ap_retained_data). */
typedef struct {
    apr_shm_t *shm;
    apr_global_mutex_t *mutex;
    svm_shm_seg *seg;
    int locked;            /* mlock held */
    pid_t owner;           /* the parent that created it: the one to wipe it */
} svm_shm_retained;

static svm_shm_retained *svm_shm;   /* this process's view */

/*
 * pconf cleanup, registered by every generation: when Apache stops, cleanse
 * every slot before the mapping goes. Not a process-pool cleanup: this
 * function lives in the module's DSO, which is unloaded with pconf (and may
 * come back at another address after a restart), so it is registered on
 * pconf after LoadModule and runs before the DSO goes. It wipes only when
 * the main state is EXITING (not when pconf is cleared for a restart: key1
 * stays loaded then) and only in the parent that created the segment (a
 * process forked from it must never wipe the shared mapping).
 */
static apr_status_t svm_shm_wipe(void *data)
{
    svm_shm_retained *rd = data;

    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING || getpid() != rd->owner)
        return APR_SUCCESS;
    if (rd->seg) {
#ifdef SV_TEST_HOOKS
        unsigned loaded = 0;
        size_t nonzero = 0;

        for (unsigned i = 0; i < SVM_KEY1_SLOTS; i++)
            loaded += rd->seg->slot[i].state == SVM_SLOT_LOADED;
#endif
        sv_cleanse(rd->seg, sizeof(*rd->seg));
#ifdef SV_TEST_HOOKS
        /* test builds: show the tests that the stop cleansed the segment */
        for (size_t i = 0; i < sizeof(*rd->seg); i++)
            nonzero += ((const unsigned char *)rd->seg)[i] != 0;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, NULL, "SV02139: test build: key1 segment "
                     "wiped at stop: %u key(s) were loaded, %" APR_SIZE_T_FMT " of %"
                     APR_SIZE_T_FMT " bytes nonzero after the wipe", loaded, nonzero,
                     sizeof(*rd->seg));
#endif
    }
    rd->seg = NULL;
    return APR_SUCCESS;
}

int svm_shm_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    /* "Mutex splitvault-key1 ..." picks the mechanism (httpd's Mutex). */
    return ap_mutex_register(pconf, SVM_KEY1_MUTEX, NULL, APR_LOCK_DEFAULT, 0) == APR_SUCCESS
           ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

int svm_shm_post_config(apr_pool_t *pconf, server_rec *s)
{
    svm_shm_retained *rd;
    apr_status_t rv;

    /* the first pass only checks the configuration: nothing to keep */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    rd = ap_retained_data_get(SVM_SHM_RETAINED);
    if (rd && rd->seg) {
        svm_shm = rd; /* graceful restart: keep what is loaded */
        apr_pool_cleanup_register(pconf, rd, svm_shm_wipe, apr_pool_cleanup_null);
        return OK;
    }
    if (!rd)
        rd = ap_retained_data_create(SVM_SHM_RETAINED, sizeof(*rd));
    rv = apr_shm_create(&rd->shm, sizeof(svm_shm_seg), NULL, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "SV02130: cannot create the anonymous "
                     "shared memory for key1");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* ap_global_mutex_create applies ap_unixd_set_global_mutex_perms, so
     * children running as User/Group can take it */
    rv = ap_global_mutex_create(&rd->mutex, NULL, SVM_KEY1_MUTEX, NULL, s, s->process->pool, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "SV02131: cannot create the key1 "
                     "mutex (see the Mutex directive)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rd->seg = apr_shm_baseaddr_get(rd->shm);
    memset(rd->seg, 0, sizeof(*rd->seg));
    rd->seg->hdr.magic = SVM_SHM_MAGIC;
    rd->seg->hdr.layout = SVM_SHM_LAYOUT;
    rd->seg->hdr.nslots = SVM_KEY1_SLOTS;
    rd->seg->hdr.slot_size = (apr_uint32_t)sizeof(svm_key1_slot);
    rd->owner = getpid();
    apr_pool_cleanup_register(pconf, rd, svm_shm_wipe, apr_pool_cleanup_null);
    if (sv_mem_protect(rd->seg, sizeof(*rd->seg)) == 0)
        rd->locked = 1;
    else
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s, "SV02132: the key1 segment is not "
                     "locked in memory or not excluded from core dumps (RLIMIT_MEMLOCK?)");
    svm_shm = rd;
    return OK;
}

void svm_shm_child_init(apr_pool_t *p, server_rec *s)
{
    svm_shm_retained *rd = ap_retained_data_get(SVM_SHM_RETAINED);
    apr_status_t rv;

    svm_shm = NULL;
    if (!rd || !rd->seg || !rd->mutex)
        return;
    rv = apr_global_mutex_child_init(&rd->mutex, apr_global_mutex_lockfile(rd->mutex), p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "SV02133: cannot attach the key1 mutex "
                     "in this child; key1 is unavailable here");
        return;
    }
    if (rd->seg->hdr.magic != SVM_SHM_MAGIC || rd->seg->hdr.layout != SVM_SHM_LAYOUT
        || rd->seg->hdr.nslots != SVM_KEY1_SLOTS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "SV02134: the key1 segment has an unknown "
                     "layout (a module of another version survived a graceful restart?): "
                     "stop and start Apache");
        return;
    }
    svm_shm = rd;
}

/* Take the lock; 0 on success (failure logged). */
static int svm_shm_lock(request_rec *r)
{
    apr_status_t rv;

    if (!svm_shm) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02135: no key1 segment in this process");
        return -1;
    }
    if ((rv = apr_global_mutex_lock(svm_shm->mutex)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "SV02136: cannot take the key1 mutex");
        return -1;
    }
    return 0;
}

static void svm_shm_unlock(void)
{
    apr_global_mutex_unlock(svm_shm->mutex);
}

/* Cleanse a slot back to EMPTY. */
static void svm_slot_clear(svm_key1_slot *sl)
{
    sv_cleanse(sl, sizeof(*sl));
    sl->state = SVM_SLOT_EMPTY;
}

int svm_key1_slots(request_rec *r, svm_key1_info *out)
{
    int i, n = 0;

    if (svm_shm_lock(r))
        return -1;
    for (i = 0; i < SVM_KEY1_SLOTS; i++) {
        const svm_key1_slot *sl = &svm_shm->seg->slot[i];
        if (sl->state != SVM_SLOT_LOADED)
            continue;
        memcpy(out[n].fp, sl->fp, sizeof(out[n].fp));
        memcpy(out[n].by, sl->by, sizeof(out[n].by));
        out[n].since = sl->since;
        n++;
    }
    svm_shm_unlock();
    return n;
}

apr_status_t svm_key1_load(request_rec *r, const unsigned char sk[SV_X25519_LEN],
                           const unsigned char pk[SV_X25519_LEN], const char *fp,
                           const char *by, int *replaced)
{
    svm_key1_slot *sl = NULL;
    int i;

    *replaced = 0;
    if (strlen(fp) != SV_FINGERPRINT_HEX_LEN)
        return APR_EINVAL;
    if (svm_shm_lock(r))
        return APR_EGENERAL;
    for (i = 0; i < SVM_KEY1_SLOTS; i++)
        if (svm_shm->seg->slot[i].state != SVM_SLOT_EMPTY
            && strcmp(svm_shm->seg->slot[i].fp, fp) == 0) {
            sl = &svm_shm->seg->slot[i];
            *replaced = 1;
            break;
        }
    for (i = 0; !sl && i < SVM_KEY1_SLOTS; i++)
        if (svm_shm->seg->slot[i].state == SVM_SLOT_EMPTY)
            sl = &svm_shm->seg->slot[i];
    if (!sl) {
        svm_shm_unlock();
        return APR_ENOSPC;
    }
    svm_slot_clear(sl);
    apr_cpystrn(sl->fp, fp, sizeof(sl->fp));
    memcpy(sl->pub, pk, SV_X25519_LEN);
    memcpy(sl->sk, sk, SV_X25519_LEN);
    apr_cpystrn(sl->by, by, sizeof(sl->by));
    sl->since = apr_time_now();
    sl->state = SVM_SLOT_LOADED;
    svm_shm->seg->hdr.generation++;
    svm_shm_unlock();
    return APR_SUCCESS;
}

apr_status_t svm_key1_forget(request_rec *r, const char *fp)
{
    apr_status_t rv = APR_NOTFOUND;
    int i;

    if (svm_shm_lock(r))
        return APR_EGENERAL;
    for (i = 0; i < SVM_KEY1_SLOTS; i++) {
        svm_key1_slot *sl = &svm_shm->seg->slot[i];
        if (sl->state != SVM_SLOT_EMPTY && strcmp(sl->fp, fp) == 0) {
            svm_slot_clear(sl);
            rv = APR_SUCCESS;
        }
    }
    if (rv == APR_SUCCESS)
        svm_shm->seg->hdr.generation++;
    svm_shm_unlock();
    return rv;
}

apr_status_t svm_key1_private(request_rec *r, const char *fp, unsigned char sk[SV_X25519_LEN])
{
    apr_status_t rv = APR_NOTFOUND;
    int i;

    if (svm_shm_lock(r))
        return APR_EGENERAL;
    for (i = 0; i < SVM_KEY1_SLOTS; i++) {
        const svm_key1_slot *sl = &svm_shm->seg->slot[i];
        if (sl->state == SVM_SLOT_LOADED && strcmp(sl->fp, fp) == 0) {
            memcpy(sk, sl->sk, SV_X25519_LEN);
            rv = APR_SUCCESS;
            break;
        }
    }
    svm_shm_unlock();
    return rv;
}
