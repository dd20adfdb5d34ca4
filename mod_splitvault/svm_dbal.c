/*
 * svm_dbal.c - which daemon a request goes to: the endpoints of
 * SplitVaultDaemon, their state and their load, shared by every child.
 *
 * SplitVaultDaemon names one or more daemons that share one store
 * (docs/daemon.md, "Scale-out with pgsql"). Each connect of svm_daemon.c
 * asks here for an endpoint (svm_dbal_pick) and reports how the connect
 * went (svm_dbal_failed), how the exchange went when a connection was made
 * (svm_dbal_xfailed on no answer), and when the request is done with it
 * (svm_dbal_done, which also counts an answer). An endpoint is up
 * or failed:
 *
 *   - up: picked by the fewest outstanding requests, over every child; on
 *     a tie, in turn (one counter for the table); an endpoint whose pool
 *     in the caller's process is full is passed over (the caller says);
 *   - failed (a connect failed: TCP, timeout, close before TLS, the
 *     handshake, the certificate; or SVM_DBAL_XFAIL_MAX exchanges in a row
 *     ended before any answer: a daemon that fails fast must not draw the
 *     load): avoided until its back-off has passed, 1 s doubling with each
 *     failure up to 30 s, each drawn from 3/4 to all of that (jitter:
 *     children do not probe together); failures within one back-off
 *     window (one outage's requests under way together) count once; a
 *     certificate failure waits the longest back-off at once. The first
 *     request to pick it after that is its probe: one at a time (another
 *     request still avoids it, unless the probe is older than twice
 *     SplitVaultDaemonTimeout; a probe whose process died is cleared by
 *     the reaper, one that got no connection by svm_dbal_done), over a
 *     connection it makes itself, and an answer to it makes the endpoint
 *     up again (never an answer on a connection older than the failure).
 *   - When no endpoint is up or due, the failed one whose back-off ends
 *     first is tried rather than none; one that failed its certificate
 *     check comes after every one that is merely down.
 *
 * Whether a request may move on to another endpoint is svm_daemon.c's
 * decision (only while nothing of it was sent); a state change is logged
 * here, once: up -> failed (SV01730, an error; SV01731, names a
 * certificate that failed verification; both notices when there is a
 * single daemon, whose connect lines are the errors) and failed -> up
 * (SV01732, a notice); a failed endpoint that fails its probe again is
 * logged at debug level only, unless the class of its failure changed.
 * svm_dbal_loud and svm_dbal_loud_all keep the per-request lines of an
 * outage to one per back-off window.
 *
 * The table is anonymous shared memory made by the parent in post_config
 * for each generation (a restart starts afresh: every endpoint up, no
 * count), with one global mutex (httpd's Mutex directive, name
 * "splitvault-daemons") attached in child_init. Outstanding requests are
 * counted per process: each child claims a row of counts (keyed by its
 * pid) at its first pick, so the count of an endpoint is the sum over the
 * rows. A child that dies with requests in flight leaves its row behind
 * until the parent's monitor (httpd runs it about every ten seconds; it
 * skips a round when the lock is busy) or the next child that needs a row
 * sees that its pid is gone (or belongs to another user now) and clears
 * it. Under the lock: memory accesses and the scan of the rows; kill()
 * only in the reaper, RAND_bytes never. Nothing in the table is secret.
 *
 *   +------------------------------------------------------------------+
 *   | header   entries | rows | turn (the tie-break counter)           |
 *   +------------------------------------------------------------------+
 *   | entry 0 .. entries-1: state | failures | class | since |          |
 *   |          next probe | probe's pid, until | requests served        |
 *   +------------------------------------------------------------------+
 *   | row 0 .. rows-1: pid (0: free) | a count per entry                 |
 *   +------------------------------------------------------------------+
 */
#include "svm.h"
#include "svm_dbal.h"
#include "svm_config.h"
#include "http_core.h"
#include "util_mutex.h"
#include "ap_mpm.h"
#include "apr_shm.h"
#include "apr_global_mutex.h"
#include "apr_strings.h"
#include "apr_atomic.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <openssl/rand.h>

#define SVM_DBAL_BACKOFF_MIN apr_time_from_sec(1)
#define SVM_DBAL_BACKOFF_MAX apr_time_from_sec(30)
#define SVM_DBAL_ROWS_SPARE 4 /* rows beyond the MPM's process limit */

enum { SVM_EP_UP = 0, SVM_EP_FAILED = 1 };

typedef struct {
    apr_uint32_t state;
    apr_uint32_t failures;     /* failures in a row, one per back-off window */
    apr_uint32_t err;          /* svm_derr of the last failure */
    apr_uint32_t xfails;       /* exchanges in a row that got no answer */
    apr_uint32_t pad;
    apr_time_t since;          /* in this state since (0: the start) */
    apr_time_t next_probe;     /* FAILED: tried again from then */
    apr_int64_t probe_pid;     /* a probe under way in that process (0: none) */
    apr_time_t probe_until;    /* ... given up on from then */
    apr_time_t loud_until;     /* per-connect lines at debug level until then */
    apr_uint64_t served;       /* requests it answered */
} svm_dbal_entry;

typedef struct {
    apr_uint32_t nent;
    apr_uint32_t nrows;
    apr_uint32_t turn;
    apr_uint32_t pad;
} svm_dbal_hdr;

/* This generation's table (set in the parent, inherited by the children;
 * the mutex attached again in child_init). */
static apr_global_mutex_t *svm_dbal_mutex;
static svm_dbal_hdr *svm_dbal;
static svm_dbal_entry *svm_dbal_ent;
static apr_int64_t *svm_dbal_rowpid;  /* nrows */
static apr_uint32_t *svm_dbal_count;  /* nrows x nent */
static int svm_dbal_myrow = -1;       /* this child's row, once claimed */

const char *svm_derr_name(svm_derr e)
{
    switch (e) {
    case SVM_DERR_NONE: return "none";
    case SVM_DERR_CONNECT: return "connect";
    case SVM_DERR_TIMEOUT: return "timeout";
    case SVM_DERR_CLOSED: return "closed-before-tls";
    case SVM_DERR_TLS: return "tls";
    case SVM_DERR_CERT: return "certificate";
    case SVM_DERR_EXCHANGE: return "exchange";
    }
    return "?";
}

int svm_dbal_pre_config(apr_pool_t *pconf)
{
    /* "Mutex sysvsem splitvault-daemons" (for example) picks the mechanism */
    return ap_mutex_register(pconf, SVM_DBAL_MUTEX, NULL, APR_LOCK_DEFAULT, 0) == APR_SUCCESS
           ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

static int svm_same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* 1 when a and b name the same daemons with the same TLS settings: their
 * endpoints may share entries (a certificate failure in one is one in the
 * other, and so is a success). */
static int svm_dbal_same(const svm_srv_conf *a, const svm_srv_conf *b)
{
    int i;

    if (a->daemons->nelts != b->daemons->nelts || a->daemon_timeout != b->daemon_timeout
        || !svm_same_str(a->daemon_name, b->daemon_name)
        || !svm_same_str(a->daemon_ca, b->daemon_ca)
        || !svm_same_str(a->client_cert, b->client_cert)
        || !svm_same_str(a->client_key, b->client_key))
        return 0;
    for (i = 0; i < a->daemons->nelts; i++) {
        const svm_daemon_ep *x = &APR_ARRAY_IDX(a->daemons, i, svm_daemon_ep);
        const svm_daemon_ep *y = &APR_ARRAY_IDX(b->daemons, i, svm_daemon_ep);
        if (x->port != y->port || strcmp(x->host, y->host) != 0)
            return 0;
    }
    return 1;
}

int svm_dbal_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *shm;
    server_rec *sp, *sq;
    apr_status_t rv;
    apr_size_t size;
    unsigned nent = 0;
    int limit = 0;
    char *base;

    svm_dbal_mutex = NULL;
    svm_dbal = NULL;
    svm_dbal_myrow = -1;
    for (sp = s; sp; sp = sp->next) {
        svm_srv_conf *sc = svm_conf(sp);

        if (!svm_conf_in_use(sc) || !sc->daemons)
            continue;
        /* a virtual host with the same daemons and TLS settings as an
         * earlier server (as one that inherits them) shares its entries */
        for (sq = s; sq != sp; sq = sq->next) {
            const svm_srv_conf *qc = svm_conf(sq);
            if (svm_conf_in_use(qc) && qc->daemons && svm_dbal_same(qc, sc))
                break;
        }
        if (sq != sp) {
            sc->dbal_base = svm_conf(sq)->dbal_base;
            continue;
        }
        sc->dbal_base = nent;
        nent += (unsigned)sc->daemons->nelts;
    }
    /* the first pass only checks the configuration: nothing to make */
    if (!nent || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS || limit < 1)
        limit = 1;
    limit += SVM_DBAL_ROWS_SPARE;
    size = APR_ALIGN_DEFAULT(sizeof(svm_dbal_hdr))
           + APR_ALIGN_DEFAULT(nent * sizeof(svm_dbal_entry))
           + APR_ALIGN_DEFAULT((apr_size_t)limit * sizeof(apr_int64_t))
           + APR_ALIGN_DEFAULT((apr_size_t)limit * nent * sizeof(apr_uint32_t));
    rv = apr_shm_create(&shm, size, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "SV01725: cannot create the anonymous "
                     "shared memory of the daemons' state (%" APR_SIZE_T_FMT " bytes)", size);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = ap_global_mutex_create(&svm_dbal_mutex, NULL, SVM_DBAL_MUTEX, NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "SV01726: cannot create the daemons' "
                     "state mutex (see the Mutex directive)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    base = apr_shm_baseaddr_get(shm);
    memset(base, 0, size);
    svm_dbal = (svm_dbal_hdr *)base;
    base += APR_ALIGN_DEFAULT(sizeof(svm_dbal_hdr));
    svm_dbal_ent = (svm_dbal_entry *)base;
    base += APR_ALIGN_DEFAULT(nent * sizeof(svm_dbal_entry));
    svm_dbal_rowpid = (apr_int64_t *)base;
    base += APR_ALIGN_DEFAULT((apr_size_t)limit * sizeof(apr_int64_t));
    svm_dbal_count = (apr_uint32_t *)base;
    svm_dbal->nent = nent;
    svm_dbal->nrows = (apr_uint32_t)limit;
    return OK;
}

void svm_dbal_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;

    svm_dbal_myrow = -1;
    if (!svm_dbal)
        return;
    rv = apr_global_mutex_child_init(&svm_dbal_mutex, apr_global_mutex_lockfile(svm_dbal_mutex),
                                     p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "SV01727: cannot attach the daemons' "
                     "state mutex in this child: its requests take the daemons in their "
                     "configured order");
        svm_dbal = NULL;
    }
}

/* 1 when the process pid is gone (EPERM: the pid is another user's
 * process now, not one of our children). */
static int svm_pid_gone(apr_int64_t pid)
{
    return pid > 0 && kill((pid_t)pid, 0) != 0 && (errno == ESRCH || errno == EPERM);
}

/* Under the lock: clear the rows of processes that are gone, and the
 * probes they left under way. */
static void svm_dbal_reap(void)
{
    apr_uint32_t i;

    for (i = 0; i < svm_dbal->nrows; i++)
        if (svm_dbal_rowpid[i] && svm_pid_gone(svm_dbal_rowpid[i])) {
            svm_dbal_rowpid[i] = 0;
            memset(&svm_dbal_count[(apr_size_t)i * svm_dbal->nent], 0,
                   svm_dbal->nent * sizeof(apr_uint32_t));
        }
    for (i = 0; i < svm_dbal->nent; i++)
        if (svm_dbal_ent[i].probe_pid && svm_pid_gone(svm_dbal_ent[i].probe_pid))
            svm_dbal_ent[i].probe_pid = 0;
}

/* Under the lock: this child's row of counts (claimed at the first use;
 * -1 when none is free: its requests are then not counted). */
static int svm_dbal_row(void)
{
    apr_int64_t me = getpid();
    apr_uint32_t i;

    if (svm_dbal_myrow >= 0 && svm_dbal_rowpid[svm_dbal_myrow] == me)
        return svm_dbal_myrow;
    svm_dbal_myrow = -1;
    /* a row under this pid is a dead child's whose pid came back to this
     * one: its counts are not ours */
    for (i = 0; i < svm_dbal->nrows; i++)
        if (svm_dbal_rowpid[i] == me)
            svm_dbal_rowpid[i] = 0;
    for (int pass = 0; pass < 2 && svm_dbal_myrow < 0; pass++) {
        if (pass)
            svm_dbal_reap();
        for (i = 0; i < svm_dbal->nrows; i++)
            if (!svm_dbal_rowpid[i]) {
                svm_dbal_rowpid[i] = me;
                memset(&svm_dbal_count[(apr_size_t)i * svm_dbal->nent], 0,
                       svm_dbal->nent * sizeof(apr_uint32_t));
                svm_dbal_myrow = (int)i;
                break;
            }
    }
    return svm_dbal_myrow;
}

/* Under the lock: requests outstanding on entry e, every child. */
static apr_uint32_t svm_dbal_outstanding(unsigned e)
{
    apr_uint32_t i, n = 0;

    for (i = 0; i < svm_dbal->nrows; i++)
        if (svm_dbal_rowpid[i])
            n += svm_dbal_count[(apr_size_t)i * svm_dbal->nent + e];
    return n;
}

static int svm_dbal_lock(request_rec *r)
{
    apr_status_t rv;

    if (!svm_dbal)
        return -1;
    if ((rv = apr_global_mutex_lock(svm_dbal_mutex)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "SV01728: cannot take the daemons' state "
                      "mutex");
        return -1;
    }
    return 0;
}

static void svm_dbal_unlock(void)
{
    apr_global_mutex_unlock(svm_dbal_mutex);
}

void svm_dbal_monitor(server_rec *s)
{
    (void)s;
    if (!svm_dbal || !svm_dbal_mutex)
        return;
    /* the parent must never wait on a child: try again at the next run */
    if (apr_global_mutex_trylock(svm_dbal_mutex) != APR_SUCCESS)
        return;
    svm_dbal_reap();
    svm_dbal_unlock();
}

int svm_dbal_pick(request_rec *r, const svm_srv_conf *sc, apr_uint32_t tried,
                  apr_uint32_t full, svm_dbal_how *how)
{
    unsigned n = (unsigned)sc->daemons->nelts, k, i, start;
    apr_time_t now = apr_time_now();
    int best = -1, probe = -1, fallback = -1, row;
    apr_uint32_t best_out = 0;

    *how = SVM_PICK_UP;
    /* an endpoint whose pool in this process is full is not waited for */
    tried |= full;
    if (svm_dbal_lock(r)) {
        /* no shared state: the first endpoint not tried yet */
        for (i = 0; i < n; i++)
            if (!(tried & (1u << i)))
                return (int)i;
        return -1;
    }
    start = svm_dbal->turn++ % n;
    for (k = 0; k < n; k++) {
        svm_dbal_entry *e;
        apr_uint32_t out;

        i = (start + k) % n;
        if (tried & (1u << i))
            continue;
        e = &svm_dbal_ent[sc->dbal_base + i];
        if (e->state == SVM_EP_UP) {
            out = svm_dbal_outstanding(sc->dbal_base + i);
            if (best < 0 || out < best_out) {
                best = (int)i;
                best_out = out;
            }
            continue;
        }
        /* failed: a probe when its back-off has passed and no other
         * request probes it (or that probe is older than its time; one
         * whose process died is cleared by svm_dbal_reap) */
        if (probe < 0 && e->next_probe <= now && (!e->probe_pid || e->probe_until <= now))
            probe = (int)i;
        if (fallback < 0)
            fallback = (int)i;
        else {
            const svm_dbal_entry *f = &svm_dbal_ent[sc->dbal_base + fallback];
            int ecert = e->err == SVM_DERR_CERT, fcert = f->err == SVM_DERR_CERT;
            if (ecert < fcert || (ecert == fcert && e->next_probe < f->next_probe))
                fallback = (int)i;
        }
    }
    if (probe >= 0) {
        svm_dbal_entry *e = &svm_dbal_ent[sc->dbal_base + probe];
        e->probe_pid = getpid();
        e->probe_until = now + 2 * sc->daemon_timeout;
        best = probe;
        *how = SVM_PICK_PROBE;
    }
    else if (best < 0) {
        best = fallback;
        *how = SVM_PICK_FAILED;
    }
    if (best >= 0 && (row = svm_dbal_row()) >= 0)
        svm_dbal_count[(apr_size_t)row * svm_dbal->nent + sc->dbal_base + best]++;
    svm_dbal_unlock();
    return best;
}

void svm_dbal_done(request_rec *r, const svm_srv_conf *sc, int i, svm_dbal_how how,
                   svm_dbal_answer answer)
{
    const svm_daemon_ep *ep;
    apr_time_t was = 0;
    svm_derr err = SVM_DERR_NONE;
    apr_uint32_t failures = 0, *c;
    svm_dbal_entry *e;
    int row, changed = 0;

    if (i < 0 || svm_dbal_lock(r))
        return;
    e = &svm_dbal_ent[sc->dbal_base + i];
    if (answer != SVM_DBAL_NO_ANSWER) {
        e->served++;
        e->xfails = 0;
    }
    /* an answer on a connection made before the failure proves nothing
     * of the daemon's handshake now (its certificate, say) */
    if (answer == SVM_DBAL_ANSWER_FRESH && e->state != SVM_EP_UP) {
        changed = 1;
        was = e->since;
        err = (svm_derr)e->err;
        failures = e->failures;
        e->state = SVM_EP_UP;
        e->since = apr_time_now();
        e->failures = 0;
        e->next_probe = 0;
    }
    /* a probe that is still marked as under way (up again now, or ended
     * without a verdict: no slot free in this child's pool, a request that
     * went wrong here): the next request may probe */
    if ((changed || how == SVM_PICK_PROBE) && e->probe_pid == getpid())
        e->probe_pid = 0;
    if ((row = svm_dbal_row()) >= 0) {
        c = &svm_dbal_count[(apr_size_t)row * svm_dbal->nent + sc->dbal_base + i];
        if (*c)
            (*c)--;
    }
    svm_dbal_unlock();
    if (changed) {
        ep = &APR_ARRAY_IDX(sc->daemons, i, svm_daemon_ep);
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV01732: splitvaultd at %s is up "
                      "again after %d s failed (%u failures, the last: %s)", ep->addr,
                      (int)apr_time_sec(apr_time_now() - was), failures, svm_derr_name(err));
    }
}

/* A random byte for the back-off's jitter (a fixed middle one, logged
 * once per process, when the generator fails). */
static unsigned svm_dbal_jitter(request_rec *r)
{
    static int warned;
    unsigned char rnd;

    if (RAND_bytes(&rnd, 1) == 1)
        return rnd;
    if (!warned) {
        warned = 1;
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV01736: no random byte for the "
                      "daemons' back-off jitter (OpenSSL's RAND_bytes failed): a fixed one "
                      "is used in this process");
    }
    return 128;
}

void svm_dbal_failed(request_rec *r, const svm_srv_conf *sc, int i, svm_derr cls,
                     const char *why)
{
    const svm_daemon_ep *ep = &APR_ARRAY_IDX(sc->daemons, i, svm_daemon_ep);
    apr_time_t now = apr_time_now(), backoff;
    apr_uint32_t failures = 1;
    unsigned rnd = svm_dbal_jitter(r);
    svm_dbal_entry *e;
    int log_it = 1, lvl;

    if (svm_dbal_lock(r)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01734: splitvaultd at %s failed (%s; "
                      "its state is not shared in this process): %s", ep->addr,
                      svm_derr_name(cls), why);
        return;
    }
    e = &svm_dbal_ent[sc->dbal_base + i];
    if (e->probe_pid == getpid())
        e->probe_pid = 0;
    e->xfails = 0;
    if (e->state == SVM_EP_FAILED && now < e->next_probe
        && (e->err == (apr_uint32_t)cls || cls != SVM_DERR_CERT)) {
        /* within the back-off window: another request of the same outage
         * (connects that were under way, last-resort tries), not a new
         * failure; a certificate failure after another class is recorded
         * below at once (it waits the longest back-off) */
        failures = e->failures;
        backoff = e->next_probe - now;
        svm_dbal_unlock();
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "SV01739: splitvaultd at %s failed "
                      "again within its back-off (%s): tried again in %d ms", ep->addr,
                      svm_derr_name(cls), (int)apr_time_msec(backoff));
        return;
    }
    if (e->state == SVM_EP_FAILED) {
        log_it = e->err != (apr_uint32_t)cls;
        failures = ++e->failures;
    }
    else {
        e->state = SVM_EP_FAILED;
        e->since = now;
        e->failures = failures;
    }
    e->err = cls;
    /* 1 s doubling up to 30 s (a certificate failure: 30 s at once),
     * each from 3/4 to all of that */
    backoff = SVM_DBAL_BACKOFF_MAX;
    if (cls != SVM_DERR_CERT && failures < 6)
        backoff = SVM_DBAL_BACKOFF_MIN << (failures - 1);
    if (backoff > SVM_DBAL_BACKOFF_MAX)
        backoff = SVM_DBAL_BACKOFF_MAX;
    e->next_probe = now + backoff * 3 / 4 + backoff * (apr_interval_time_t)rnd / 1020;
    e->loud_until = e->next_probe;
    backoff = e->next_probe - now;
    svm_dbal_unlock();
    /* with a single daemon there is nowhere else to go: the connect's own
     * error line (SV01701, SV01702) says it all, this is a notice */
    lvl = sc->daemons->nelts > 1 ? APLOG_ERR : APLOG_NOTICE;
    if (log_it && cls == SVM_DERR_CERT)
        ap_log_rerror(APLOG_MARK, lvl, 0, r, "SV01731: splitvaultd at %s failed its "
                      "certificate check (not for SplitVaultDaemonName, or not from "
                      "SplitVaultDaemonCA): not used; tried again in %d s: %s", ep->addr,
                      (int)apr_time_sec(backoff + apr_time_from_sec(1) - 1), why);
    else if (log_it)
        ap_log_rerror(APLOG_MARK, lvl, 0, r, "SV01730: splitvaultd at %s failed (%s): "
                      "requests avoid it; tried again in %d s: %s", ep->addr,
                      svm_derr_name(cls), (int)apr_time_sec(backoff + apr_time_from_sec(1) - 1),
                      why);
    else
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "SV01733: splitvaultd at %s failed "
                      "again (%s, %u in a row): tried again in %d ms", ep->addr,
                      svm_derr_name(cls), failures, (int)apr_time_msec(backoff));
}

void svm_dbal_xfailed(request_rec *r, const svm_srv_conf *sc, int i, const char *why)
{
    const svm_daemon_ep *ep = &APR_ARRAY_IDX(sc->daemons, i, svm_daemon_ep);
    apr_uint32_t x;
    svm_dbal_entry *e;

    if (svm_dbal_lock(r))
        return;
    e = &svm_dbal_ent[sc->dbal_base + i];
    x = ++e->xfails;
    if (e->state == SVM_EP_UP && x < SVM_DBAL_XFAIL_MAX) {
        svm_dbal_unlock();
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "SV01737: splitvaultd at %s gave no "
                      "answer (%u in a row, failed at %d): %s", ep->addr, x,
                      SVM_DBAL_XFAIL_MAX, why);
        return;
    }
    svm_dbal_unlock();
    svm_dbal_failed(r, sc, i, SVM_DERR_EXCHANGE, why);
}

int svm_dbal_loud(request_rec *r, const svm_srv_conf *sc, int i)
{
    apr_time_t now = apr_time_now();
    svm_dbal_entry *e;
    int loud = 0;

    if (svm_dbal_lock(r))
        return 1;
    e = &svm_dbal_ent[sc->dbal_base + i];
    if (now >= e->loud_until) {
        loud = 1;
        e->loud_until = now + SVM_DBAL_BACKOFF_MIN;
        if (e->state == SVM_EP_FAILED && e->next_probe > e->loud_until)
            e->loud_until = e->next_probe;
    }
    svm_dbal_unlock();
    return loud;
}

int svm_dbal_loud_all(void)
{
    static apr_uint32_t quiet_until; /* seconds, this process */
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now()), was;

    was = apr_atomic_read32(&quiet_until);
    if (now < was)
        return 0;
    return apr_atomic_cas32(&quiet_until, now + (apr_uint32_t)apr_time_sec(SVM_DBAL_BACKOFF_MAX),
                            was) == was;
}

int svm_dbal_info_get(request_rec *r, const svm_srv_conf *sc, svm_dbal_info *out)
{
    int n = sc->daemons->nelts, i;

    if (svm_dbal_lock(r)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV01729: no daemons' state in this "
                      "process");
        return -1;
    }
    for (i = 0; i < n; i++) {
        const svm_dbal_entry *e = &svm_dbal_ent[sc->dbal_base + i];
        out[i].up = e->state == SVM_EP_UP;
        out[i].outstanding = svm_dbal_outstanding(sc->dbal_base + i);
        out[i].failures = e->failures;
        out[i].err = (svm_derr)e->err;
        out[i].since = e->since;
        out[i].next_probe = e->next_probe;
        out[i].served = e->served;
    }
    svm_dbal_unlock();
    return n;
}
