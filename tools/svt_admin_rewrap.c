/*
 * svt_admin_rewrap.c - key1's end of life: key1-rewrap and key1-retire.
 *
 * key1-rewrap OLD.pem moves every field wrapped to an old key1 to the
 * active key1: it unwraps key2a with the old private key and wraps it again
 * to the active public key, with the aad docs/format.md prescribes
 * (sv_key2a_unwrap_recipient / sv_key2a_wrap: the module's format). It
 * never reads or writes the datum envelope (key2_pub, enc, ct), never talks
 * to the daemon and never sees a value.
 *
 * It runs while the service does, in --jobs threads, each with its own
 * connection, its own copy of the old key made ready once
 * (sv_hpke_recipient: one scalar multiplication per unwrap) and its own
 * range of record ids, walked in primary-key order: batches of --batch
 * rows, each written back by one UPDATE from unnest() of arrays in its own
 * short transaction; each row is changed only WHERE its key1_fp, share_id
 * and version still are what was read (a decrypt or an update meanwhile
 * wraps the row to the active key1 anyway, or leaves it for another pass).
 * Every committed row is valid (wrapped to the old or to the new key1), so
 * an interrupted run is resumed by running the command again. The admin
 * names the new key1's fingerprint (--to): the active key is only
 * accepted when it is that one, since whoever can write the database could
 * otherwise activate a key1 of their own and collect every key2a.
 *
 * key1-retire FP removes a registered key1 that is not active and that no
 * field names (fields.key1_fp references key1, so the DELETE cannot remove
 * a key still in use even in a race).
 *
 * The process is made undumpable first (svt_no_dump). The old private key
 * and the passphrase live in secret memory (lib/sv_secret) and are
 * cleansed on every path; each job's imported copy is in OpenSSL's secure
 * heap and freed (cleansed) when the job ends; key2a is a stack buffer
 * cleansed after each row. Runs are audited in the audit table
 * (action key1-rewrap / key1-retire) without key material.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "apr_strings.h"

#include "svt_admin.h"
#include "sv_format.h"
#include "sv_hex.h"
#include "sv_hpke.h"
#include "sv_keyfile.h"
#include "sv_secret.h"

#define SVT_BATCH_DEFAULT 1000
#define SVT_BATCH_MAX 100000
#define SVT_JOBS_MAX 64
/* --jobs by default: the online CPUs, at most this many */
#define SVT_JOBS_DEFAULT_MAX 8
/* batches in a row that selected rows but changed none (each of them
 * changed meanwhile) before giving up */
#define SVT_STALL_MAX 20

typedef struct {
    uint8_t *sk;                     /* secret: the old key1's private key */
    uint8_t pk_old[SV_X25519_LEN];
    uint8_t pk_new[SV_X25519_LEN];
    char fp_old[SV_FINGERPRINT_HEX_LEN + 1];
    char fp_new[SV_FINGERPRINT_HEX_LEN + 1];
    const char *by;
    const char *to;                  /* the fingerprint the admin expects */
} svt_rewrap;

/* What the jobs share: the totals (progress) and the stop flag. */
typedef struct {
    pthread_mutex_t lock;
    long total;                      /* fields on the old key1 at the start */
    long done;
    double t0;
    int tty;
    int stop;                        /* a job failed: the others stop too */
} svt_run;

static double svt_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int svt_audit(svt_ctx *c, const char *by, const char *action, const char *outcome,
                     const char *detail)
{
    const char *a[] = { by, action, outcome, detail };

    return svt_exec(c, NULL, "INSERT INTO audit (actor, action, outcome, detail) "
                    "VALUES (%s, %s, %s, %s)", 4, a);
}

/* Load the old key1 from its file into w->sk / w->pk_old, asking for the
 * passphrase only when the file is encrypted. Returns 0 or 1 (printed);
 * *why is the audit's reason on failure. */
static int svt_load_old(svt_rewrap *w, const char *file, int pass_fd, const char **why)
{
    sv_status st;
    char *pass = NULL;
    size_t pass_len = 0;

    st = sv_key1_private_from_file(file, NULL, 0, w->sk, w->pk_old);
    if (st == SV_ERR_KEY_NEED_PASS) {
        pass = svt_passphrase_read("Passphrase of the old key1: ", pass_fd, &pass_len);
        if (!pass) {
            *why = "no passphrase";
            return 1;
        }
        st = sv_key1_private_from_file(file, pass, pass_len, w->sk, w->pk_old);
        svt_password_free(pass, pass_len);
    }
    if (st != SV_OK) {
        *why = st == SV_ERR_KEY_PASSPHRASE ? "wrong passphrase" : "unusable key file";
        return svt_fail("%s: %s", file, sv_strerror(st));
    }
    if ((st = sv_key1_fingerprint(w->pk_old, w->fp_old)) != SV_OK) {
        *why = "fingerprint";
        return svt_fail("fingerprint: %s", sv_strerror(st));
    }
    return 0;
}

/* The registered key1s: the old one must be registered (same public key),
 * an active one must exist and differ from it. */
static int svt_check_keys(svt_ctx *c, svt_rewrap *w, const char **why)
{
    char hex[2 * SV_X25519_LEN + 1];
    const char *a[] = { w->fp_old, hex };
    svt_rows res;
    apr_dbd_row_t *row;
    int registered = 0, active = 0;

    sv_hex_encode(w->pk_old, SV_X25519_LEN, hex);
    if (svt_select(c, &res, "SELECT 1 FROM key1 WHERE fingerprint = %s "
                   "AND public_key = decode(%s, 'hex')", 2, a))
        return 1;
    while (svt_row(c, &res))
        registered = 1;
    if (!registered) {
        *why = "key not registered";
        return svt_fail("the key file's public key (fingerprint %s) is not a registered key1",
                        w->fp_old);
    }
    if (svt_select(c, &res, "SELECT fingerprint, encode(public_key, 'hex') FROM key1 "
                   "WHERE active", 0, NULL))
        return 1;
    while ((row = svt_row(c, &res))) {
        const char *fp = svt_col(c, row, 0), *pk = svt_col(c, row, 1);
        if (strlen(fp) != SV_FINGERPRINT_HEX_LEN
            || sv_hex_decode(pk, strlen(pk), w->pk_new, SV_X25519_LEN) != SV_OK) {
            *why = "bad active key1";
            return svt_fail("the active key1's row is malformed");
        }
        memcpy(w->fp_new, fp, SV_FINGERPRINT_HEX_LEN + 1);
        active = 1;
    }
    if (!active) {
        *why = "no active key1";
        return svt_fail("no key1 is active (key1-register / key1-activate one first)");
    }
    {
        char fp[SV_FINGERPRINT_HEX_LEN + 1];
        if (sv_key1_fingerprint(w->pk_new, fp) != SV_OK || strcmp(fp, w->fp_new) != 0) {
            *why = "bad active key1";
            return svt_fail("the active key1's fingerprint does not match its public key");
        }
    }
    if (strcmp(w->fp_old, w->fp_new) == 0) {
        *why = "old key1 is the active one";
        return svt_fail("key1 %s is the active key1: activate the new key1 first "
                        "(key1-activate), then rewrap from the old one", w->fp_old);
    }
    /* whoever can write the database can activate a key1 of their own:
     * rewrap only to the key the admin names, never to whatever is active */
    if (strcmp(w->to, w->fp_new) != 0) {
        *why = "active key1 is not the --to key";
        return svt_fail("the active key1 is %s, not %s (--to): nothing rewrapped; if nobody "
                        "meant to activate it, treat the main database as compromised",
                        w->fp_new, w->to);
    }
    return 0;
}

static long svt_count(svt_ctx *c, const char *fp)
{
    const char *a[] = { fp };
    svt_rows res;
    apr_dbd_row_t *row;
    long n = -1;

    if (svt_select(c, &res, "SELECT count(*) FROM fields WHERE key1_fp = %s", 1, a))
        return -1;
    while ((row = svt_row(c, &res)))
        n = atol(svt_col(c, row, 0));
    return n;
}

/* The key range one job works through: record_id in [lo, hi). */
typedef struct {
    svt_ctx *base;                   /* the driver and dsn to connect with */
    svt_rewrap *w;
    svt_run *run;
    long long lo, hi;
    int batch;
    long done, skipped;              /* this job's */
    int rv;
} svt_job;

/* A decimal string of v in pool p. */
static const char *svt_lld(apr_pool_t *p, long long v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)v);
}

/* Parse a decimal integer column into *v, within [min, max]. */
static int svt_int_col(const char *s, long long min, long long max, long long *v)
{
    char *end = NULL;
    long long n;

    if (!*s || !((*s >= '0' && *s <= '9') || *s == '-'))
        return 0;
    n = strtoll(s, &end, 10);
    if (*end || n < min || n > max)
        return 0;
    *v = n;
    return 1;
}

/* Rewrap one row's key2a with this job's recipient key (the old key1, made
 * ready once); writes the new wrap as hex. Returns 0, or 1 when the row is
 * malformed or key2a does not open with the old key (printed). */
static int svt_rewrap_row(svt_rewrap *w, sv_hpke_recipient *old, const char *uuid_s,
                          const char *name, long long share, const char *wenc_s,
                          const char *wct_s, char *wenc_hex, char *wct_hex)
{
    uint8_t uuid[SV_UUID_LEN], wenc[SV_HPKE_ENC_LEN], wct[SV_WRAPPED_CT_LEN];
    uint8_t nenc[SV_HPKE_ENC_LEN], nct[SV_WRAPPED_CT_LEN], key2a[SV_X25519_LEN];
    sv_status st;

    if (sv_uuid_parse(uuid_s, strlen(uuid_s), uuid) != SV_OK
        || !sv_field_name_valid(name, strlen(name))
        || sv_hex_decode(wenc_s, strlen(wenc_s), wenc, sizeof(wenc)) != SV_OK
        || sv_hex_decode(wct_s, strlen(wct_s), wct, sizeof(wct)) != SV_OK)
        return svt_fail("record %s field %s: malformed row", uuid_s, name);
    st = sv_key2a_unwrap_recipient(old, uuid, name, (uint64_t)share, wenc, wct, key2a);
    if (st == SV_OK)
        st = sv_key2a_wrap(w->pk_new, uuid, name, (uint64_t)share, key2a, nenc, nct);
    sv_cleanse(key2a, sizeof(key2a));
    if (st != SV_OK)
        return svt_fail("record %s field %s: key2a %s: %s", uuid_s, name,
                        st == SV_ERR_OPEN ? "does not open with the old key1" : "rewrap",
                        sv_strerror(st));
    sv_hex_encode(nenc, sizeof(nenc), wenc_hex);
    sv_hex_encode(nct, sizeof(nct), wct_hex);
    return 0;
}

#ifdef SV_TEST_HOOKS
/* test hook: the first row read (by any job) is taken as changed
 * meanwhile, once */
static int svt_test_stale;
#endif

/* One element of a PostgreSQL array literal ("{a,b}"), after a comma when
 * it is not the first. Only digits, hex and checked field names are put in
 * (quoted, so that no name reads as NULL). */
static char *svt_elem(char *p, int first, const char *v, int quote)
{
    size_t n = strlen(v);

    if (!first)
        *p++ = ',';
    if (quote)
        *p++ = '"';
    memcpy(p, v, n);
    p += n;
    if (quote)
        *p++ = '"';
    return p;
}

/* The batch's columns as array literals for unnest(). */
typedef struct {
    char *id, *name, *share, *version, *enc, *ct;
    char *pid, *pname, *pshare, *pversion, *penc, *pct;
} svt_arrays;

static void svt_arrays_init(apr_pool_t *p, svt_arrays *a, int rows)
{
    size_t r = (size_t)rows + 1;

    a->pid = a->id = apr_palloc(p, r * 21 + 2);
    a->pname = a->name = apr_palloc(p, r * (SV_FIELD_MAX + 3) + 2);
    a->pshare = a->share = apr_palloc(p, r * 21 + 2);
    a->pversion = a->version = apr_palloc(p, r * 12 + 2);
    a->penc = a->enc = apr_palloc(p, r * (2 * SV_HPKE_ENC_LEN + 1) + 2);
    a->pct = a->ct = apr_palloc(p, r * (2 * SV_WRAPPED_CT_LEN + 1) + 2);
    *a->pid++ = *a->pname++ = *a->pshare++ = *a->pversion++ = *a->penc++ = *a->pct++ = '{';
}

static void svt_arrays_end(svt_arrays *a)
{
    char **ends[] = { &a->pid, &a->pname, &a->pshare, &a->pversion, &a->penc, &a->pct };
    size_t i;

    for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        *(*ends[i])++ = '}';
        **ends[i] = '\0';
    }
}

/*
 * One batch of a job: read up to job->batch rows of its range after the
 * cursor (last_id, last_name), rewrap them, and write them back in one
 * UPDATE (its own transaction) that changes each row only while its
 * key1_fp, share_id and version are still what was read. *seen: rows read,
 * *done: rows changed. The cursor moves to the last row read.
 */
static int svt_rewrap_batch(svt_ctx *c, svt_job *job, sv_hpke_recipient *old,
                            long long *last_id, char *last_name, long *done, long *seen)
{
    svt_rewrap *w = job->w;
    const char *sa[] = { w->fp_old, svt_lld(c->pool, job->lo),
                         svt_lld(c->pool, job->hi),
                         svt_lld(c->pool, *last_id), last_name,
                         apr_itoa(c->pool, job->batch) };
    svt_arrays a;
    svt_rows res;
    apr_dbd_row_t *row;
    int fail, n = 0;

    *done = *seen = 0;
    fail = svt_select(c, &res, "SELECT r.uuid::text, f.record_id, f.name, f.share_id, "
                      "f.version, encode(f.wrap_enc, 'hex'), encode(f.wrap_ct, 'hex') "
                      "FROM fields f JOIN records r ON r.id = f.record_id "
                      "WHERE f.key1_fp = %s AND f.record_id >= %s AND f.record_id < %s "
                      "AND (f.record_id, f.name) > (%s, %s) "
                      "ORDER BY f.record_id, f.name LIMIT %s", 6, sa);
    if (fail)
        return 1;
    svt_arrays_init(c->pool, &a, job->batch);
    while ((row = svt_row(c, &res))) {
        char wenc_hex[2 * SV_HPKE_ENC_LEN + 1], wct_hex[2 * SV_WRAPPED_CT_LEN + 1];
        const char *uuid = svt_col(c, row, 0), *name = svt_col(c, row, 2);
        long long id, share, version;
        int first = *seen == 0;

        if (!svt_int_col(svt_col(c, row, 1), 1, LLONG_MAX, &id)
            || !svt_int_col(svt_col(c, row, 3), 1, LLONG_MAX, &share)
            || !svt_int_col(svt_col(c, row, 4), INT32_MIN, INT32_MAX, &version)) {
            fail = svt_fail("record %s field %s: malformed row", uuid, name);
            break;
        }
        if ((fail = svt_rewrap_row(w, old, uuid, name, share, svt_col(c, row, 5),
                                   svt_col(c, row, 6), wenc_hex, wct_hex)))
            break;
        (*seen)++;
#ifdef SV_TEST_HOOKS
        if (__atomic_exchange_n(&svt_test_stale, 0, __ATOMIC_SEQ_CST))
            version = 0; /* as if the row had changed since it was read */
#endif
        a.pid = svt_elem(a.pid, first, svt_lld(c->pool, id), 0);
        a.pname = svt_elem(a.pname, first, name, 1);
        a.pshare = svt_elem(a.pshare, first, svt_lld(c->pool, share), 0);
        a.pversion = svt_elem(a.pversion, first, svt_lld(c->pool, version), 0);
        a.penc = svt_elem(a.penc, first, wenc_hex, 0);
        a.pct = svt_elem(a.pct, first, wct_hex, 0);
        *last_id = id;
        memcpy(last_name, name, strlen(name) + 1);
    }
    while (fail && svt_row(c, &res)) /* drain the result */
        ;
    if (fail || *seen == 0)
        return fail;
    svt_arrays_end(&a);
    {
        const char *ua[] = { w->fp_new, a.id, a.name, a.share, a.version, a.enc, a.ct,
                             w->fp_old };
        fail = svt_exec(c, &n, "UPDATE fields f SET wrap_enc = decode(u.enc, 'hex'), "
                        "wrap_ct = decode(u.ct, 'hex'), key1_fp = %s, "
                        "version = f.version + 1, updated = now() "
                        "FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::integer[], "
                        "%s::text[], %s::text[]) AS u(record_id, name, share_id, version, "
                        "enc, ct) "
                        "WHERE f.record_id = u.record_id AND f.name = u.name "
                        "AND f.key1_fp = %s AND f.share_id = u.share_id "
                        "AND f.version = u.version", 8, ua);
    }
    if (fail)
        return 1;
    *done = n;
    return 0;
}

static void svt_progress(long done, long total, double t0)
{
    double el = svt_now() - t0, rate = el > 0 ? done / el : 0;
    long left = total > done ? total - done : 0;

    if (rate > 0)
        fprintf(stderr, "\r%ld/%ld fields  %.0f/s  about %lds left   ", done, total, rate,
                (long)(left / rate + 0.5));
    else
        fprintf(stderr, "\r%ld/%ld fields   ", done, total);
    fflush(stderr);
}

/* A job's progress into the run's totals; 1 when the run is stopping. */
static int svt_report(svt_run *run, long done)
{
    int stop;

    pthread_mutex_lock(&run->lock);
    run->done += done;
    if (run->tty)
        svt_progress(run->done, run->total, run->t0);
    stop = run->stop;
    pthread_mutex_unlock(&run->lock);
    return stop;
}

/*
 * A job: its own connection, its own recipient key (the old key1's private
 * key imported once), and passes over its key range in batches until a
 * pass has met no row changed meanwhile.
 */
static void *svt_job_run(void *arg)
{
    svt_job *job = arg;
    svt_run *run = job->run;
    svt_ctx c = *job->base;
    sv_hpke_recipient *old = NULL;
    char last_name[SV_FIELD_MAX + 1];
    long long last_id;
    long pass_skipped = 0;
    int stall = 0;
    const char *err = NULL;
#ifdef SV_TEST_HOOKS
    const char *delay = getenv("SVT_TEST_REWRAP_DELAY_MS");
#endif

    job->rv = 1;
    c.pool = NULL;
    c.handle = NULL;
    if (apr_pool_create(&c.pool, NULL) != APR_SUCCESS) {
        svt_fail("out of memory");
        goto out;
    }
    if (apr_dbd_open_ex(c.driver, c.pool, c.dsn, &c.handle, &err) != APR_SUCCESS) {
        svt_fail("cannot connect to the database: %s", err ? err : "unknown error");
        c.handle = NULL;
        goto out;
    }
    if (sv_hpke_recipient_new(job->w->sk, &old) != SV_OK
        || CRYPTO_memcmp(sv_hpke_recipient_public(old), job->w->pk_old, SV_X25519_LEN) != 0) {
        svt_fail("cannot prepare the old key1");
        goto out;
    }
    last_id = 0;
    last_name[0] = '\0';
    for (;;) {
        long d = 0, s = 0;
        apr_pool_t *top = c.pool, *sub = NULL;
        int fail;

        /* each batch's results and strings in a pool of its own: a run's
         * memory does not grow with the number of fields */
        if (apr_pool_create(&sub, top) != APR_SUCCESS) {
            svt_fail("out of memory");
            break;
        }
        c.pool = sub;
        fail = svt_rewrap_batch(&c, job, old, &last_id, last_name, &d, &s);
        c.pool = top;
        apr_pool_destroy(sub);
        if (fail)
            break;
        if (s == 0) {
            if (pass_skipped == 0) {
                job->rv = 0;
                break;
            }
            /* rows changed meanwhile were left behind: another pass */
            pass_skipped = 0;
            last_id = 0;
            last_name[0] = '\0';
            continue;
        }
        job->done += d;
        job->skipped += s - d;
        pass_skipped += s - d;
        if (d == 0 && ++stall >= SVT_STALL_MAX) {
            svt_fail("rows keep changing under the rewrap; run it again later");
            break;
        }
        if (d)
            stall = 0;
        if (svt_report(run, d))
            break;
#ifdef SV_TEST_HOOKS
        if (delay)
            usleep((useconds_t)atoi(delay) * 1000);
#endif
    }
out:
    if (job->rv) {
        pthread_mutex_lock(&run->lock);
        run->stop = 1;
        pthread_mutex_unlock(&run->lock);
    }
    sv_hpke_recipient_free(old);
    if (c.handle)
        apr_dbd_close(c.driver, c.handle);
    if (c.pool)
        apr_pool_destroy(c.pool);
    return NULL;
}

/*
 * Split the record ids of the fields on the old key1 into ranges of about
 * equal size, one per job (fields are spread evenly over record ids: a
 * record has its fields written together). The first range starts at 0 and
 * the last has no end, so that no row falls outside them. Returns the
 * number of jobs (fewer than asked when there are few records), or -1.
 */
static int svt_ranges(svt_ctx *c, svt_rewrap *w, int jobs, svt_job *job)
{
    const char *a[] = { w->fp_old };
    svt_rows res;
    apr_dbd_row_t *row;
    long long lo = 0, hi = 0, span;
    int i, ok = 0;

    if (svt_select(c, &res, "SELECT min(record_id), max(record_id) FROM fields "
                   "WHERE key1_fp = %s", 1, a))
        return -1;
    while ((row = svt_row(c, &res))) {
        const char *l = svt_col(c, row, 0), *h = svt_col(c, row, 1);
        ok = !*l || (svt_int_col(l, 1, LLONG_MAX, &lo) && svt_int_col(h, lo, LLONG_MAX, &hi));
    }
    if (!ok)
        return svt_fail("cannot read the range of record ids"), -1;
    span = hi - lo + 1;
    if (hi == 0 || span < jobs)
        jobs = hi == 0 ? 1 : (int)span;
    for (i = 0; i < jobs; i++) {
        job[i].lo = i == 0 ? 0 : lo + (long long)((double)span * i / jobs);
        job[i].hi = i == jobs - 1 ? LLONG_MAX : lo + (long long)((double)span * (i + 1) / jobs);
    }
    return jobs;
}

static int svt_jobs_default(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > SVT_JOBS_DEFAULT_MAX ? SVT_JOBS_DEFAULT_MAX : (int)n;
}

int svt_cmd_key1_rewrap(svt_ctx *c, int argc, char **argv)
{
    static const char use[] =
        "usage: key1-rewrap OLD-KEY1.pem --to NEW-FINGERPRINT [--passphrase-fd N] [--batch N] "
        "[--jobs N] [--by NAME]";
    svt_rewrap w;
    svt_run run;
    svt_job job[SVT_JOBS_MAX];
    pthread_t tid[SVT_JOBS_MAX];
    const char *file = NULL, *why = "failed";
    long done = 0, skipped = 0;
    int pass_fd = -1, batch = SVT_BATCH_DEFAULT, jobs = svt_jobs_default(), i, started = 0;
    int rv = 1;

    memset(&w, 0, sizeof(w));
    memset(&run, 0, sizeof(run));
    memset(job, 0, sizeof(job));
    w.by = getenv("SUDO_USER");
    for (i = 0; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--passphrase-fd") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || v < 0 || v > 1024)
                return svt_fail("%s", use);
            pass_fd = (int)v;
        }
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || v < 1 || v > SVT_BATCH_MAX)
                return svt_fail("--batch: 1 to %d", SVT_BATCH_MAX);
            batch = (int)v;
        }
        else if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || v < 1 || v > SVT_JOBS_MAX)
                return svt_fail("--jobs: 1 to %d", SVT_JOBS_MAX);
            jobs = (int)v;
        }
        else if (strcmp(argv[i], "--by") == 0 && i + 1 < argc)
            w.by = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            w.to = argv[++i];
        else if (!file && argv[i][0] != '-')
            file = argv[i];
        else
            return svt_fail("%s", use);
    }
    if (!file || !w.to || !sv_key1_fingerprint_ok(w.to))
        return svt_fail("%s", use);
    if (!w.by)
        w.by = getlogin();
    if (!w.by)
        w.by = "admin";
    if (svt_no_dump())
        return 1;
    sv_secret_init(65536); /* best effort: the heap otherwise, still cleansed */
    if (!(w.sk = sv_secret_alloc(SV_X25519_LEN)))
        return svt_fail("out of memory");
#ifdef SV_TEST_HOOKS
    svt_test_stale = getenv("SVT_TEST_REWRAP_STALE") != NULL;
#endif

    if (svt_load_old(&w, file, pass_fd, &why) || svt_check_keys(c, &w, &why)) {
        svt_audit(c, w.by, "key1-rewrap", "refused",
                  apr_pstrcat(c->pool, why, *w.fp_old ? " from " : NULL, w.fp_old, NULL));
        goto done;
    }
    if ((run.total = svt_count(c, w.fp_old)) < 0 || (jobs = svt_ranges(c, &w, jobs, job)) < 0)
        goto done;
    if (pthread_mutex_init(&run.lock, NULL) != 0) {
        svt_fail("cannot create a mutex");
        goto done;
    }
    run.tty = isatty(2);
    run.t0 = svt_now();
    for (i = 0; i < jobs; i++) {
        job[i].base = c;
        job[i].w = &w;
        job[i].run = &run;
        job[i].batch = batch;
        if (pthread_create(&tid[i], NULL, svt_job_run, &job[i]) != 0) {
            svt_fail("cannot start a thread");
            pthread_mutex_lock(&run.lock);
            run.stop = 1;
            pthread_mutex_unlock(&run.lock);
            break;
        }
        started++;
    }
    rv = started == jobs ? 0 : 1;
    for (i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        done += job[i].done;
        skipped += job[i].skipped;
        if (job[i].rv)
            rv = 1;
    }
    pthread_mutex_destroy(&run.lock);
    if (run.tty && run.done)
        fputc('\n', stderr);
    if (rv == 0) {
        long left = svt_count(c, w.fp_old);
        if (left != 0) /* wrapped to the old key again meanwhile: it was not active */
            rv = left < 0 ? 1 : svt_fail("%ld fields still name key1 %s", left, w.fp_old);
    }
    svt_audit(c, w.by, "key1-rewrap", rv == 0 ? "ok" : "failed",
              apr_psprintf(c->pool, "from %s to %s fields=%ld changed-meanwhile=%ld", w.fp_old,
                           w.fp_new, done, skipped));
    printf("key1-rewrap: %ld fields rewrapped from %s to %s in %d jobs (%ld changed meanwhile, "
           "read again)%s\n", done, w.fp_old, w.fp_new, jobs, skipped,
           rv == 0 ? "; none left" : "; incomplete: run it again");
done:
    sv_secret_free(w.sk, SV_X25519_LEN);
    sv_cleanse(&w, sizeof(w));
    return rv;
}

int svt_cmd_key1_retire(svt_ctx *c, int argc, char **argv)
{
    static const char use[] = "usage: key1-retire FINGERPRINT [--by NAME]";
    apr_dbd_transaction_t *tx = NULL;
    const char *fp = NULL, *by = getenv("SUDO_USER"), *why = NULL;
    svt_rows res;
    apr_dbd_row_t *row;
    int i, fail, n = 0, found = 0, active = 0;
    long used = 0;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--by") == 0 && i + 1 < argc)
            by = argv[++i];
        else if (!fp && argv[i][0] != '-')
            fp = argv[i];
        else
            return svt_fail("%s", use);
    }
    if (!fp || !sv_key1_fingerprint_ok(fp))
        return svt_fail("%s", use);
    if (!by)
        by = getlogin();
    if (!by)
        by = "admin";
    if (apr_dbd_transaction_start(c->driver, c->pool, c->handle, &tx))
        return svt_fail("cannot begin a transaction");
    {
        const char *a[] = { fp };
        /* lock the key's row: no activation of it in between */
        fail = svt_select(c, &res, "SELECT active, (SELECT count(*) FROM fields "
                          "WHERE key1_fp = %s) FROM key1 WHERE fingerprint = %s FOR UPDATE",
                          2, (const char *[]){ fp, fp });
        while (!fail && (row = svt_row(c, &res))) {
            found = 1;
            active = *svt_col(c, row, 0) == 't';
            used = atol(svt_col(c, row, 1));
        }
        if (!fail && !found)
            why = "not registered";
        else if (!fail && active)
            why = "active";
        else if (!fail && used)
            why = "in use";
        if (!fail && !why)
            fail = svt_exec(c, &n, "DELETE FROM key1 WHERE fingerprint = %s AND NOT active",
                            1, a) || n != 1;
    }
    if (!fail)
        fail = svt_audit(c, by, "key1-retire", why ? "refused" : "ok",
                         apr_pstrcat(c->pool, why ? why : "retired", " ", fp, NULL));
    if (fail)
        apr_dbd_transaction_mode_set(c->driver, tx, APR_DBD_TRANSACTION_ROLLBACK);
    if (apr_dbd_transaction_end(c->driver, c->pool, tx) || fail)
        return svt_fail("key1-retire %s failed", fp);
    if (why && !found)
        return svt_fail("no registered key1 with fingerprint %s", fp);
    if (why && active)
        return svt_fail("key1 %s is the active key1: activate another one first", fp);
    if (why)
        return svt_fail("%ld fields are still wrapped to key1 %s: run key1-rewrap with its "
                        "key file first", used, fp);
    printf("key1 %s retired\n", fp);
    return 0;
}
