/*
 * svm_throttle.c - the anonymous intake throttle, per client network, in
 * shared memory; and the client network itself, which the sign-in
 * throttle (svm_auth.c) counts by too.
 *
 * The public form takes submissions from anyone, and every submission
 * costs the daemon a share per field and the database a record: without a
 * limit, one visitor fills the daemon's disk. SplitVaultIntakeThrottle
 * allows each client network (an address, an IPv6 /64) so many POSTs of
 * the form in a fixed window that starts with its first POST; the next one
 * is refused before its body is read, with nothing sent anywhere. GETs of
 * the form are not counted. The client is r->useragent_addr, so behind a
 * proxy mod_remoteip decides who the client is.
 *
 * The counts live in one table for the whole server, shared by every
 * child: anonymous shared memory made by the parent in post_config for
 * each generation (a restart starts the counts afresh) and one global
 * mutex (httpd's Mutex directive, name "splitvault-intake"), attached in
 * child_init. The table has a fixed number of slots, grouped in buckets;
 * a network's slot is found by the HMAC-SHA256 of the server's number and
 * the network under a random salt made at each start, so that nobody can
 * choose networks that land in one bucket, and no address is kept in
 * clear. When a bucket is full, its oldest entry is replaced. The salt is
 * made by the parent with the segment and inherited by the children; it
 * never changes within a generation, so it is not in the segment.
 *
 * Segment layout (made in post_config, read and written under the mutex):
 *
 *   +------------------------------------------------------------------+
 *   | bucket 0   slot 0 | slot 1 | ... | slot SVM_ITHR_WAYS-1           |
 *   |            each slot: id (16 bytes of the HMAC; all zero: free)   |
 *   |                       window start | count | refusal logged      |
 *   +------------------------------------------------------------------+
 *   | bucket 1 .. SVM_ITHR_BUCKETS-1 (the same)                        |
 *   +------------------------------------------------------------------+
 */
#include "svm.h"
#include "svm_throttle.h"
#include "svm_config.h"
#include "http_core.h"
#include "util_mutex.h"
#include "apr_shm.h"
#include "apr_global_mutex.h"
#include "apr_strings.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "sv_secret.h"

#define SVM_ITHR_BUCKETS 1024
#define SVM_ITHR_WAYS 8
#define SVM_ITHR_ID_LEN 16

typedef struct {
    unsigned char id[SVM_ITHR_ID_LEN];
    apr_time_t start;          /* the window began with the first POST in it */
    apr_uint32_t count;        /* POSTs let through in this window */
    apr_uint32_t logged;       /* this window's refusal has been logged */
} svm_ithr_slot;

typedef struct {
    svm_ithr_slot slot[SVM_ITHR_BUCKETS * SVM_ITHR_WAYS];
} svm_ithr_seg;

/* This generation's table, salt and mutex (set in the parent, inherited by
 * the children; the mutex attached again in child_init). */
static apr_global_mutex_t *svm_ithr_mutex;
static svm_ithr_seg *svm_ithr;
static unsigned char svm_ithr_salt[32];

const char *svm_client_net(request_rec *r)
{
    const apr_sockaddr_t *sa = r->useragent_addr;

#if APR_HAVE_IPV6
    if (sa && sa->family == APR_INET6) {
        static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        const unsigned char *a = (const unsigned char *)&sa->sa.sin6.sin6_addr;
        unsigned char net[16];
        char text[INET6_ADDRSTRLEN];

        if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0)
            return apr_psprintf(r->pool, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        memset(net, 0, sizeof(net));
        memcpy(net, a, 8);
        if (inet_ntop(AF_INET6, net, text, sizeof(text)))
            return apr_pstrcat(r->pool, text, "/64", NULL);
    }
#endif
    return r->useragent_ip;
}

int svm_ithr_pre_config(apr_pool_t *pconf)
{
    /* "Mutex sysvsem splitvault-intake" (for example) picks the mechanism */
    return ap_mutex_register(pconf, SVM_ITHR_MUTEX, NULL, APR_LOCK_DEFAULT, 0) == APR_SUCCESS
           ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

int svm_ithr_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *shm;
    server_rec *sp;
    apr_status_t rv;
    unsigned n = 0;
    int wanted = 0;

    svm_ithr_mutex = NULL;
    svm_ithr = NULL;
    /* each server counts apart: its number is part of every slot's id */
    for (sp = s; sp; sp = sp->next) {
        svm_srv_conf *sc = svm_conf(sp);
        sc->ithr_sid = n++;
        wanted |= sc->ithr_n > 0 && sc->fields->nelts > 0;
    }
    /* the first pass only checks the configuration: nothing to make */
    if (!wanted || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    rv = apr_shm_create(&shm, sizeof(svm_ithr_seg), NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "SV02201: cannot create the anonymous "
                     "shared memory of the intake throttle (%" APR_SIZE_T_FMT " bytes)",
                     sizeof(svm_ithr_seg));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = ap_global_mutex_create(&svm_ithr_mutex, NULL, SVM_ITHR_MUTEX, NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "SV02202: cannot create the intake "
                     "throttle's mutex (see the Mutex directive)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (RAND_bytes(svm_ithr_salt, sizeof(svm_ithr_salt)) != 1) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "SV02203: no random bytes for the intake "
                     "throttle's salt");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    svm_ithr = apr_shm_baseaddr_get(shm);
    memset(svm_ithr, 0, sizeof(*svm_ithr));
    return OK;
}

void svm_ithr_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;

    if (!svm_ithr)
        return;
    rv = apr_global_mutex_child_init(&svm_ithr_mutex, apr_global_mutex_lockfile(svm_ithr_mutex),
                                     p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "SV02204: cannot attach the intake "
                     "throttle's mutex in this child: submissions through it are not "
                     "throttled");
        svm_ithr = NULL;
    }
}

/* The slot id of (server, network): HMAC-SHA256 under this start's salt,
 * cut to SVM_ITHR_ID_LEN bytes; never all zero (that marks a free slot). */
static int svm_ithr_id(request_rec *r, unsigned sid, const char *net,
                       unsigned char id[SVM_ITHR_ID_LEN])
{
    const char *msg = apr_psprintf(r->pool, "%u %s", sid, net);
    unsigned char mac[32];
    unsigned int len = 0;

    if (!HMAC(EVP_sha256(), svm_ithr_salt, sizeof(svm_ithr_salt),
              (const unsigned char *)msg, strlen(msg), mac, &len) || len != sizeof(mac))
        return -1;
    memcpy(id, mac, SVM_ITHR_ID_LEN);
    id[0] |= 1;
    sv_cleanse(mac, sizeof(mac));
    return 0;
}

int svm_ithr_admit(request_rec *r, const svm_srv_conf *sc, apr_time_t *retry_at)
{
    unsigned char id[SVM_ITHR_ID_LEN];
    const char *net;
    apr_time_t now, window;
    svm_ithr_slot *bucket, *sl = NULL;
    apr_status_t rv;
    int i, admit, log_it = 0;
    unsigned count = 0;

    if (sc->ithr_n <= 0 || !svm_ithr)
        return 1; /* Off, or not attached in this child (logged at child_init) */
    net = svm_client_net(r);
    if (!net || svm_ithr_id(r, sc->ithr_sid, net, id) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02205: cannot key the intake throttle "
                      "for this client; not throttled");
        return 1;
    }
    window = apr_time_from_sec(sc->ithr_s);
    if ((rv = apr_global_mutex_lock(svm_ithr_mutex)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "SV02206: cannot take the intake "
                      "throttle's mutex; not throttled");
        return 1;
    }
    now = apr_time_now();
    bucket = &svm_ithr->slot[(((unsigned)id[1] << 8 | id[2]) % SVM_ITHR_BUCKETS)
                             * SVM_ITHR_WAYS];
    for (i = 0; i < SVM_ITHR_WAYS && !sl; i++)
        if (memcmp(bucket[i].id, id, SVM_ITHR_ID_LEN) == 0)
            sl = &bucket[i];
    if (!sl) {
        /* a free slot, else the bucket's oldest entry */
        sl = &bucket[0];
        for (i = 0; i < SVM_ITHR_WAYS; i++) {
            if (bucket[i].id[0] == 0) {
                sl = &bucket[i];
                break;
            }
            if (bucket[i].start < sl->start)
                sl = &bucket[i];
        }
        memcpy(sl->id, id, SVM_ITHR_ID_LEN);
        sl->start = now;
        sl->count = 0;
        sl->logged = 0;
    }
    else if (now >= sl->start + window || now < sl->start) {
        /* the window has passed (or the clock went back): a new one */
        sl->start = now;
        sl->count = 0;
        sl->logged = 0;
    }
    admit = sl->count < (apr_uint32_t)sc->ithr_n;
    if (admit)
        sl->count++;
    else {
        *retry_at = sl->start + window;
        log_it = !sl->logged;
        sl->logged = 1;
        count = sl->count;
    }
    apr_global_mutex_unlock(svm_ithr_mutex);
    if (log_it)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02207: intake throttled for %s: "
                      "%u submissions within %d s; further ones refused for %d s (logged once "
                      "per window)", net, count, sc->ithr_s,
                      (int)apr_time_sec(*retry_at - now + apr_time_from_sec(1) - 1));
    return admit;
}
