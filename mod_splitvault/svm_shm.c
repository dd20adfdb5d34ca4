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
 * Segment layout 3 (all slots the same size; nothing here is ever written
 * to a file, a log or a page except fingerprints, split id prefixes, names
 * and times):
 *
 *   +--------------------------------------------------------------------+
 *   | header  magic "SVK1" | layout version | slot count | slot size      |
 *   |         share files being opened: SVM_KEY1_OPENS x { pid, since }  |
 *   |         expired sets not yet audited: SVM_KEY1_GONE x              |
 *   |           { fingerprint, split, have, need, indexes and names },   |
 *   |           dropped                                                  |
 *   +--------------------------------------------------------------------+
 *   | slot 0  state: EMPTY | LOADED | ASSEMBLING | LOADING               |
 *   |         fingerprint (hex) | public key (32) | private key (32)      |
 *   |         loaded by (staff name; ASSEMBLING: who started the set) |  |
 *   |         loaded (or first share) at                                 |
 *   |         ASSEMBLING, LOADING: split id, k, n, present, expires at,  |
 *   |           LOADING until,                                           |
 *   |           SVM_KEY1_PARTS x { index, share (48), by, staff id, at } |
 *   +--------------------------------------------------------------------+
 *   | slot 1 .. SVM_KEY1_SLOTS-1 (old and new key1 loaded together while  |
 *   |         a key1 rotation runs)                                      |
 *   +--------------------------------------------------------------------+
 *
 * Dual control (docs/design.md, "key1: load, forget, pins"): a slot in state
 * ASSEMBLING collects the shares of one split of a registered key1 from
 * distinct admins (svm_shares.c decides what may come in) until k are
 * present. Then, still under the lock, the slot becomes LOADING: it stays
 * reserved for that key while the caller (without the lock) checks the
 * givers, combines the copies and checks the result, and the key goes into
 * exactly that slot (svm_key1_load_shares), or the slot goes back to
 * ASSEMBLING with the shares that still count, or to EMPTY
 * (svm_key1_loading_end). Each admin starts at most one set at a time, and
 * a new set never takes the last free slot: a whole key, or a set that
 * completes, always finds room. A set that is not complete within its
 * time, and a LOADING slot left for more than SVM_LOADING_TTL (a child
 * that died), is wiped: by the parent's monitor hook (every MPM runs it
 * from its main loop, about every ten seconds: svm_key1_parts_monitor), and
 * by any function here that meets it first. Neither can write the audit
 * log (the parent has no database connection), so both log it and keep a
 * record in the header; the next request of the key location turns the
 * records into audit rows and only then removes them (svm_key1_gone_peek,
 * svm_key1_gone_done).
 *
 * A graceful restart into a module of another layout (layout 1 had 32-byte
 * parts, layout 2 no staff ids) finds a segment it cannot read:
 * post_config cleanses it whole, unmaps it and makes a new one, logging
 * that key1 must be loaded again. Children of the old generation keep the
 * old mapping until they exit: the wipe happens under the mutex and zeroes
 * the magic, which svm_shm_lock checks, so that such children (of layout 3
 * on) refuse to put anything into the orphaned segment. Earlier layouts do
 * not check: docs/operations.md asks for a stop and a start.
 */
#include "svm.h"
#include "svm_shm.h"
#include "http_core.h"
#include "util_mutex.h"
#include "apr_shm.h"
#include "apr_global_mutex.h"
#include "apr_strings.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "sv_secret.h"

#define SVM_SHM_MAGIC 0x53564b31u /* "SVK1" */
#define SVM_SHM_LAYOUT 3
#define SVM_SHM_RETAINED "mod_splitvault key1 segment"

#define SVM_LOADING_TTL apr_time_from_sec(60)  /* combining and loading, at most */
#define SVM_OPEN_TTL apr_time_from_sec(60)     /* one share file's opening, at most */

enum { SVM_SLOT_EMPTY = 0, SVM_SLOT_LOADED = 1, SVM_SLOT_ASSEMBLING = 2,
       SVM_SLOT_LOADING = 3 };

/* The first four members keep their place in every layout: they are what
 * tells a segment of another layout apart. */
typedef struct {
    apr_uint32_t magic;
    apr_uint32_t layout;
    apr_uint32_t nslots;
    apr_uint32_t slot_size;
    struct {
        apr_int64_t pid;                   /* 0: free */
        apr_time_t since;
    } opening[SVM_KEY1_OPENS];             /* share files being opened */
    apr_uint32_t gone_count;               /* records in gone[] */
    apr_uint32_t gone_dropped;             /* expired sets that did not fit */
    svm_key1_pending_info gone[SVM_KEY1_GONE]; /* no secret */
} svm_shm_hdr;

typedef struct {
    unsigned char x;                       /* share index (1..255) */
    unsigned char y[SV_SHARE_SECRET_LEN];  /* share value: secret */
    char by[SV_WIRE_MAX_ACTOR + 1];
    apr_int64_t staff;                     /* the giver's staff id */
    apr_time_t at;
} svm_key1_part;

typedef struct {
    apr_uint32_t state;
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    unsigned char pub[SV_X25519_LEN];
    unsigned char sk[SV_X25519_LEN];       /* LOADED: key1 private, secret */
    char by[SV_WIRE_MAX_ACTOR + 1];
    apr_time_t since;                      /* LOADED; ASSEMBLING: first share */
    unsigned char split[SV_SHARE_SPLIT_LEN]; /* ASSEMBLING: the split's id */
    apr_uint32_t parts_need;               /* ASSEMBLING: k */
    apr_uint32_t parts_n;                  /* ASSEMBLING: n */
    apr_uint32_t parts_have;
    apr_time_t expires;
    apr_time_t loading_until;              /* LOADING */
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
        unsigned loaded = 0, pending = 0;
        size_t nonzero = 0;

        for (unsigned i = 0; i < SVM_KEY1_SLOTS; i++) {
            loaded += rd->seg->slot[i].state == SVM_SLOT_LOADED;
            pending += rd->seg->slot[i].state == SVM_SLOT_ASSEMBLING
                       || rd->seg->slot[i].state == SVM_SLOT_LOADING;
        }
#endif
        sv_cleanse(rd->seg, sizeof(*rd->seg));
#ifdef SV_TEST_HOOKS
        /* test builds: show the tests that the stop cleansed the segment */
        for (size_t i = 0; i < sizeof(*rd->seg); i++)
            nonzero += ((const unsigned char *)rd->seg)[i] != 0;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, NULL, "SV02139: test build: key1 segment "
                     "wiped at stop: %u key(s) were loaded, %u set(s) of shares pending, %"
                     APR_SIZE_T_FMT " of %" APR_SIZE_T_FMT " bytes nonzero after the wipe",
                     loaded, pending, nonzero,
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

/* 1 when seg is a segment of this layout (exactly as big as it needs). */
static int svm_shm_ours(const svm_shm_retained *rd)
{
    return apr_shm_size_get(rd->shm) == sizeof(svm_shm_seg)
           && rd->seg->hdr.magic == SVM_SHM_MAGIC && rd->seg->hdr.layout == SVM_SHM_LAYOUT
           && rd->seg->hdr.nslots == SVM_KEY1_SLOTS
           && rd->seg->hdr.slot_size == (apr_uint32_t)sizeof(svm_key1_slot);
}

int svm_shm_post_config(apr_pool_t *pconf, server_rec *s)
{
    svm_shm_retained *rd;
    apr_status_t rv;

    /* the first pass only checks the configuration: nothing to keep */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    rd = ap_retained_data_get(SVM_SHM_RETAINED);
    if (rd && rd->seg && svm_shm_ours(rd)) {
        svm_shm = rd; /* graceful restart: keep what is loaded */
        apr_pool_cleanup_register(pconf, rd, svm_shm_wipe, apr_pool_cleanup_null);
        return OK;
    }
    if (rd && rd->seg) {
        /* a graceful restart into a module of another layout: what the old
         * segment holds cannot be read here, and must not outlive it */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "SV02141: the key1 segment kept "
                     "over the restart has layout %u, this module uses %u: it is wiped "
                     "(loaded keys and pending shares with it); load key1 again",
                     (unsigned)rd->seg->hdr.layout, SVM_SHM_LAYOUT);
        /* under the mutex, so that old children (of layout 3 on, which
         * check the magic under it) see the wiped magic and load nothing
         * into a segment that is about to be orphaned */
        if (rd->mutex && (rv = apr_global_mutex_lock(rd->mutex)) != APR_SUCCESS)
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "SV02137: cannot take the key1 "
                         "mutex to wipe the old segment (wiped without it)");
        sv_cleanse(rd->seg, apr_shm_size_get(rd->shm));
        if (rd->mutex && rv == APR_SUCCESS)
            apr_global_mutex_unlock(rd->mutex);
        rd->seg = NULL;
        if ((rv = apr_shm_destroy(rd->shm)) != APR_SUCCESS)
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "SV02142: cannot unmap the old "
                         "key1 segment (it is wiped)");
        rd->shm = NULL;
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
     * children running as User/Group can take it; kept when a segment is
     * replaced, so that old children and new serialise on the same lock */
    if (!rd->mutex
        && (rv = ap_global_mutex_create(&rd->mutex, NULL, SVM_KEY1_MUTEX, NULL, s,
                                        s->process->pool, 0)) != APR_SUCCESS) {
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
    rd->locked = 0;
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
    if (!svm_shm_ours(rd)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "SV02134: the key1 segment has an unknown "
                     "layout (a module of another version survived a graceful restart?): "
                     "stop and start Apache");
        return;
    }
    svm_shm = rd;
}

/* Cleanse a slot back to EMPTY. */
static void svm_slot_clear(svm_key1_slot *sl)
{
    sv_cleanse(sl, sizeof(*sl));
    sl->state = SVM_SLOT_EMPTY;
}

/* Cleanse a slot and hold key1 (private sk, public pk, fingerprint fp)
 * in it, LOADED by staff member by from now. Under the lock. */
static void svm_slot_load(svm_key1_slot *sl, const unsigned char sk[SV_X25519_LEN],
                          const unsigned char pk[SV_X25519_LEN], const char *fp,
                          const char *by)
{
    svm_slot_clear(sl);
    apr_cpystrn(sl->fp, fp, sizeof(sl->fp));
    memcpy(sl->pub, pk, SV_X25519_LEN);
    memcpy(sl->sk, sk, SV_X25519_LEN);
    apr_cpystrn(sl->by, by, sizeof(sl->by));
    sl->since = apr_time_now();
    sl->state = SVM_SLOT_LOADED;
}

/* A pending set's description (no share byte). */
static void svm_slot_info(const svm_key1_slot *sl, svm_key1_pending_info *out)
{
    unsigned i;

    memset(out, 0, sizeof(*out));
    memcpy(out->fp, sl->fp, sizeof(out->fp));
    for (i = 0; i < SVM_KEY1_SPLIT_HEX / 2; i++)
        apr_snprintf(out->split + 2 * i, 3, "%02x", sl->split[i]);
    memcpy(out->starter, sl->by, sizeof(out->starter));
    out->have = sl->parts_have;
    out->need = sl->parts_need;
    out->started = sl->since;
    out->expires = sl->expires;
    for (i = 0; i < sl->parts_have && i < SVM_KEY1_PARTS; i++) {
        out->part[i].index = sl->part[i].x;
        memcpy(out->part[i].by, sl->part[i].by, sizeof(out->part[i].by));
        out->part[i].staff = sl->part[i].staff;
        out->part[i].at = sl->part[i].at;
    }
}

/* Under the lock: wipe every pending set whose time is up, keep a record of
 * each for the audit log, log each (r or s names the log). */
static void svm_parts_expire(request_rec *r, server_rec *s)
{
    apr_time_t now = apr_time_now();
    svm_shm_hdr *h = &svm_shm->seg->hdr;
    int i;

    for (i = 0; i < SVM_KEY1_SLOTS; i++) {
        svm_key1_slot *sl = &svm_shm->seg->slot[i];
        svm_key1_pending_info gi;

        if (!(sl->state == SVM_SLOT_ASSEMBLING && sl->expires <= now)
            && !(sl->state == SVM_SLOT_LOADING && sl->loading_until <= now))
            continue;
        svm_slot_info(sl, &gi);
        svm_slot_clear(sl);
        if (h->gone_count < SVM_KEY1_GONE)
            h->gone[h->gone_count++] = gi;
        else
            h->gone_dropped++;
        if (r)
            ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV02143: key1 %s: pending shares "
                          "expired (%u of %u); wiped", gi.fp, gi.have, gi.need);
        else
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "SV02144: key1 %s: pending shares "
                         "expired (%u of %u); wiped by the monitor", gi.fp, gi.have, gi.need);
    }
}

/* Take the lock, wipe expired sets; 0 on success (failure logged). */
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
    if (svm_shm->seg->hdr.magic != SVM_SHM_MAGIC) {
        /* a graceful restart into another layout wiped this segment: it
         * is no longer the parent's, so nothing goes into it */
        apr_global_mutex_unlock(svm_shm->mutex);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02138: the key1 segment of this "
                      "child was replaced by a restart: key1 is unavailable in this child "
                      "until it exits");
        return -1;
    }
    svm_parts_expire(r, NULL);
    return 0;
}

static void svm_shm_unlock(void)
{
    apr_global_mutex_unlock(svm_shm->mutex);
}

/* The slot of fp in any state but EMPTY, or NULL (under the lock). */
static svm_key1_slot *svm_slot_of(const char *fp)
{
    int i;

    for (i = 0; i < SVM_KEY1_SLOTS; i++)
        if (svm_shm->seg->slot[i].state != SVM_SLOT_EMPTY
            && strcmp(svm_shm->seg->slot[i].fp, fp) == 0)
            return &svm_shm->seg->slot[i];
    return NULL;
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
                           const char *by, int *replaced, svm_key1_pending_info *displaced)
{
    svm_key1_slot *sl = NULL;
    int i;

    *replaced = 0;
    memset(displaced, 0, sizeof(*displaced));
    if (strlen(fp) != SV_FINGERPRINT_HEX_LEN)
        return APR_EINVAL;
    if (svm_shm_lock(r))
        return APR_EGENERAL;
    /* a loaded key of fp is replaced; so is a pending set of its shares,
     * which a whole key makes moot (described for the audit log); a set
     * being combined right now is left to finish */
    if ((sl = svm_slot_of(fp))) {
        if (sl->state == SVM_SLOT_LOADING) {
            svm_shm_unlock();
            return APR_EBUSY;
        }
        *replaced = sl->state == SVM_SLOT_LOADED;
        if (sl->state == SVM_SLOT_ASSEMBLING)
            svm_slot_info(sl, displaced);
    }
    for (i = 0; !sl && i < SVM_KEY1_SLOTS; i++)
        if (svm_shm->seg->slot[i].state == SVM_SLOT_EMPTY)
            sl = &svm_shm->seg->slot[i];
    if (!sl) {
        svm_shm_unlock();
        return APR_ENOSPC;
    }
    svm_slot_load(sl, sk, pk, fp, by);
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
        if (sl->state == SVM_SLOT_LOADED && strcmp(sl->fp, fp) == 0) {
            svm_slot_clear(sl);
            rv = APR_SUCCESS;
        }
    }
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

/* Under the lock: copy a complete set out as shares for sv_share_combine
 * (the slot keeps them until the LOADING state ends). */
static void svm_parts_copy_out(const svm_key1_slot *sl, sv_share *parts)
{
    unsigned i;

    for (i = 0; i < sl->parts_have; i++) {
        sv_share *p = &parts[i];
        memset(p, 0, sizeof(*p));
        memcpy(p->fp, sl->fp, sizeof(p->fp));
        memcpy(p->split, sl->split, sizeof(p->split));
        p->index = sl->part[i].x;
        p->k = sl->parts_need;
        p->n = sl->parts_n;
        memcpy(p->share, sl->part[i].y, sizeof(p->share));
    }
}

/* Under the lock: the number of EMPTY slots; *started: 1 when admin by
 * started a pending set (in any slot). */
static int svm_slots_free(const char *by, int *started)
{
    int i, n = 0;

    *started = 0;
    for (i = 0; i < SVM_KEY1_SLOTS; i++) {
        const svm_key1_slot *sl = &svm_shm->seg->slot[i];
        n += sl->state == SVM_SLOT_EMPTY;
        if ((sl->state == SVM_SLOT_ASSEMBLING || sl->state == SVM_SLOT_LOADING)
            && strcmp(sl->by, by) == 0)
            *started = 1;
    }
    return n;
}

svm_part_result svm_key1_part_add(request_rec *r, const sv_share *s, const char *by,
                                  apr_int64_t staff, apr_interval_time_t ttl,
                                  svm_key1_pending_info *info, sv_share *parts)
{
    svm_key1_slot *sl;
    svm_key1_part *pt = NULL;
    svm_part_result res = SVM_PART_ADDED;
    apr_time_t now = apr_time_now();
    unsigned i;
    int j, started;

    memset(info, 0, sizeof(*info));
    apr_cpystrn(info->fp, s->fp, sizeof(info->fp));
    if (strlen(s->fp) != SV_FINGERPRINT_HEX_LEN || s->index < 1 || s->index > 255
        || s->k < 2 || s->k > SVM_KEY1_PARTS || s->n < s->k)
        return SVM_PART_ERROR;
    if (svm_shm_lock(r))
        return SVM_PART_ERROR;
    sl = svm_slot_of(s->fp);
    if (sl && sl->state == SVM_SLOT_LOADED) {
        svm_shm_unlock();
        return SVM_PART_IS_LOADED;
    }
    if (sl && sl->state == SVM_SLOT_LOADING) {
        svm_slot_info(sl, info);
        svm_shm_unlock();
        return SVM_PART_LOADING;
    }
    if (sl) {
        svm_slot_info(sl, info);
        if (memcmp(sl->split, s->split, SV_SHARE_SPLIT_LEN) != 0 || sl->parts_need != s->k
            || sl->parts_n != s->n) {
            svm_shm_unlock();
            return SVM_PART_OTHER_SPLIT;
        }
        for (i = 0; i < sl->parts_have; i++) {
            if (strcmp(sl->part[i].by, by) == 0)
                pt = &sl->part[i]; /* this admin's earlier share */
            else if (sl->part[i].x == s->index) {
                svm_shm_unlock();
                return SVM_PART_DUP_INDEX;
            }
        }
        if (pt)
            res = SVM_PART_REPLACED;
        else
            pt = &sl->part[sl->parts_have++];
    }
    else {
        /* one set started per admin; the last free slot stays free */
        if (svm_slots_free(by, &started) < 2 || started) {
            for (j = 0; started && j < SVM_KEY1_SLOTS; j++)
                if (svm_shm->seg->slot[j].state == SVM_SLOT_ASSEMBLING
                    && strcmp(svm_shm->seg->slot[j].by, by) == 0)
                    svm_slot_info(&svm_shm->seg->slot[j], info);
            svm_shm_unlock();
            return started ? SVM_PART_ADMIN_BUSY : SVM_PART_NOSPACE;
        }
        for (j = 0; !sl && j < SVM_KEY1_SLOTS; j++)
            if (svm_shm->seg->slot[j].state == SVM_SLOT_EMPTY)
                sl = &svm_shm->seg->slot[j];
        svm_slot_clear(sl);
        apr_cpystrn(sl->fp, s->fp, sizeof(sl->fp));
        apr_cpystrn(sl->by, by, sizeof(sl->by));
        memcpy(sl->split, s->split, SV_SHARE_SPLIT_LEN);
        sl->parts_need = s->k;
        sl->parts_n = s->n;
        sl->since = now;
        sl->expires = now + ttl;
        sl->state = SVM_SLOT_ASSEMBLING;
        pt = &sl->part[sl->parts_have++];
    }
    sv_cleanse(pt, sizeof(*pt));
    pt->x = (unsigned char)s->index;
    memcpy(pt->y, s->share, SV_SHARE_SECRET_LEN);
    apr_cpystrn(pt->by, by, sizeof(pt->by));
    pt->staff = staff;
    pt->at = now;
    svm_slot_info(sl, info);
    if (sl->parts_have >= sl->parts_need) {
        svm_parts_copy_out(sl, parts);
        sl->state = SVM_SLOT_LOADING;
        sl->loading_until = now + SVM_LOADING_TTL;
        res = SVM_PART_COMPLETE;
    }
    svm_shm_unlock();
    return res;
}

/* Under the lock: the LOADING slot of fp, or NULL. */
static svm_key1_slot *svm_slot_loading(const char *fp)
{
    svm_key1_slot *sl = svm_slot_of(fp);

    return sl && sl->state == SVM_SLOT_LOADING ? sl : NULL;
}

apr_status_t svm_key1_load_shares(request_rec *r, const unsigned char sk[SV_X25519_LEN],
                                  const unsigned char pk[SV_X25519_LEN], const char *fp,
                                  const char *by)
{
    svm_key1_slot *sl;

    if (svm_shm_lock(r))
        return APR_EGENERAL;
    if (!(sl = svm_slot_loading(fp))) {
        svm_shm_unlock();
        return APR_NOTFOUND;
    }
    svm_slot_load(sl, sk, pk, fp, by);
    svm_shm_unlock();
    return APR_SUCCESS;
}

apr_status_t svm_key1_loading_end(request_rec *r, const char *fp, const int *keep)
{
    svm_key1_slot *sl;
    unsigned i, n = 0;

    if (svm_shm_lock(r))
        return APR_EGENERAL;
    if (!(sl = svm_slot_loading(fp))) {
        svm_shm_unlock();
        return APR_NOTFOUND;
    }
    for (i = 0; keep && i < sl->parts_have; i++) {
        if (!keep[i])
            continue;
        if (n != i)
            sl->part[n] = sl->part[i];
        n++;
    }
    for (i = n; i < SVM_KEY1_PARTS; i++)
        sv_cleanse(&sl->part[i], sizeof(sl->part[i]));
    sl->parts_have = n;
    sl->loading_until = 0;
    if (n)
        sl->state = SVM_SLOT_ASSEMBLING; /* expired ones go at the next lock */
    else
        svm_slot_clear(sl);
    svm_shm_unlock();
    return APR_SUCCESS;
}

int svm_key1_pending(request_rec *r, svm_key1_pending_info *out)
{
    int i, n = 0;

    if (svm_shm_lock(r))
        return -1;
    for (i = 0; i < SVM_KEY1_SLOTS; i++)
        if (svm_shm->seg->slot[i].state == SVM_SLOT_ASSEMBLING
            || svm_shm->seg->slot[i].state == SVM_SLOT_LOADING)
            svm_slot_info(&svm_shm->seg->slot[i], &out[n++]);
    svm_shm_unlock();
    return n;
}

apr_status_t svm_key1_parts_discard(request_rec *r, const char *fp,
                                    svm_key1_pending_info *info)
{
    svm_key1_slot *sl;
    apr_status_t rv = APR_NOTFOUND;

    memset(info, 0, sizeof(*info));
    if (svm_shm_lock(r))
        return APR_EGENERAL;
    if ((sl = svm_slot_of(fp)) && sl->state == SVM_SLOT_ASSEMBLING) {
        svm_slot_info(sl, info);
        svm_slot_clear(sl);
        rv = APR_SUCCESS;
    }
    svm_shm_unlock();
    return rv;
}

void svm_key1_parts_monitor(server_rec *s)
{
    if (!svm_shm || !svm_shm->seg || !svm_shm->mutex)
        return;
    /* the parent must never wait on a child: try again at the next run */
    if (apr_global_mutex_trylock(svm_shm->mutex) != APR_SUCCESS)
        return;
    svm_parts_expire(NULL, s);
    svm_shm_unlock();
}

int svm_key1_gone_peek(request_rec *r, svm_key1_pending_info *out, unsigned *dropped)
{
    svm_shm_hdr *h;
    int n;

    if (svm_shm_lock(r))
        return -1;
    h = &svm_shm->seg->hdr;
    n = (int)h->gone_count;
    memcpy(out, h->gone, n * sizeof(*out));
    *dropped = h->gone_dropped;
    svm_shm_unlock();
    return n;
}

void svm_key1_gone_done(request_rec *r, int n, unsigned dropped)
{
    svm_shm_hdr *h;

    if (n <= 0 && !dropped)
        return;
    if (svm_shm_lock(r))
        return;
    h = &svm_shm->seg->hdr;
    if (n > (int)h->gone_count)
        n = (int)h->gone_count;
    /* records added meanwhile come after the n written: keep them */
    memmove(h->gone, h->gone + n, (h->gone_count - n) * sizeof(h->gone[0]));
    h->gone_count -= n;
    memset(h->gone + h->gone_count, 0, (SVM_KEY1_GONE - h->gone_count) * sizeof(h->gone[0]));
    h->gone_dropped -= dropped < h->gone_dropped ? dropped : h->gone_dropped;
    svm_shm_unlock();
}

apr_status_t svm_key1_open_begin(request_rec *r)
{
    svm_shm_hdr *h;
    apr_time_t now = apr_time_now();
    apr_status_t rv = APR_EBUSY;
    int i;

    if (svm_shm_lock(r))
        return APR_EGENERAL;
    h = &svm_shm->seg->hdr;
    for (i = 0; i < SVM_KEY1_OPENS; i++) {
        /* a place whose process died, or that is stale, is free */
        if (h->opening[i].pid && (now - h->opening[i].since > SVM_OPEN_TTL
                                  || (kill((pid_t)h->opening[i].pid, 0) != 0
                                      && errno == ESRCH)))
            h->opening[i].pid = 0;
        if (rv != APR_SUCCESS && !h->opening[i].pid) {
            h->opening[i].pid = getpid();
            h->opening[i].since = now;
            rv = APR_SUCCESS;
        }
    }
    svm_shm_unlock();
    return rv;
}

void svm_key1_open_end(request_rec *r)
{
    svm_shm_hdr *h;
    int i;

    if (svm_shm_lock(r))
        return;
    h = &svm_shm->seg->hdr;
    for (i = 0; i < SVM_KEY1_OPENS; i++)
        if (h->opening[i].pid == getpid()) {
            h->opening[i].pid = 0;
            break;
        }
    svm_shm_unlock();
}
