/*
 * svt_admin_check.c - `check`: is the main database consistent with the
 * daemon's share store? Read-only on both sides.
 *
 * Every field row names the daemon share that holds its key2b
 * (fields.share_id, unique). The command walks both sides in share id
 * order at once, a page at a time: the rows of the main database
 * (fields joined to records) and every share of the daemon, retired ones
 * included (RECON_SCAN, over the same mutual TLS as `reconcile`, with a
 * certificate of the daemon's reconcile role; no key material crosses).
 * A merge of the two sorted lists finds:
 *
 *   missing     a field whose share the daemon does not have (never
 *               stored there, or retired and purged): its key2b is gone;
 *   retired     a field whose share is retired (restorable until purged:
 *               splitvaultctl restore);
 *   pending     a field whose share is pending (a rotation whose RELEASE
 *               never came: `reconcile --apply` activates it);
 *   orphan      a share in use (active or pending) that no field
 *               references (`reconcile --apply` retires it);
 *   mismatched  a share referenced by a row of another record or field
 *               (never touched: someone who could write the main
 *               database may have swapped references; investigate).
 *
 * Orphans and pending shares younger than the grace period (by default the
 * daemon's reconcile.min_grace, which it sends) may belong to an intake or
 * a rotation still in flight: they are counted apart, not as findings.
 * The two sides are read at slightly different moments. A field whose
 * share seems missing is looked for again, from its id, when the daemon's
 * page was read before the main database's (a share stored meanwhile);
 * other changes during a run (a rotation that finishes between the two
 * reads) can still show, so a finding that a second run repeats is real.
 *
 * Exit status: 0 consistent, 1 findings, 2 could not check (the daemon or
 * the database unreachable, a refusal, a usage error).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apr_strings.h"

#include "svt_admin.h"
#include "svt_admin_daemon.h"
#include "sv_buf.h"
#include "sv_format.h"
#include "sv_wire.h"

#define PAGE 1000
#define DEFAULT_EXAMPLES 10
#define EXIT_FINDINGS 1
#define EXIT_ERROR 2

enum { K_MISSING, K_RETIRED, K_PENDING, K_ORPHAN, K_MISMATCHED, K_RECENT, K__N };

static const char *const kind_name[K__N] = {
    "missing", "retired", "pending", "orphan", "mismatched", "recent"
};

typedef struct {
    long n[K__N];
    long fields, shares, active, pending, retired;
    uint64_t first_retired;   /* the earliest retirement of a retired finding */
    uint64_t max_main;        /* the highest share id a field references */
    uint64_t max_daemon;      /* the highest share id on the daemon */
} svt_findings;

/* One row of the main database: a field and the share it references. */
typedef struct {
    uint64_t id;
    char uuid[SV_UUID_STR_LEN + 1];
    char name[SV_FIELD_MAX + 1];
} svt_mrow;

/* The main database's rows, a page at a time (each in its own pool). */
typedef struct {
    svt_ctx *c;
    apr_pool_t *page_pool;
    svt_mrow *row;
    int n, i, more;
    uint64_t after;
    long pages;               /* pages read so far */
} svt_mstream;

/* The daemon's shares, a page at a time. */
typedef struct {
    svt_dconn *d;
    sv_recon_scan_resp page;
    unsigned i;
    int more, started;
    uint64_t after;
    uint64_t total;           /* from the first page (0: unknown) */
    uint32_t min_grace;
    long read_after;          /* the main database's pages read before this page */
    const svt_mstream *m;
} svt_dstream;

typedef struct {
    long examples;            /* < 0: all (--verbose) */
    uint64_t now;
    uint32_t grace;
    int grace_given;
    int progress;             /* stderr is a terminal */
    int shown;                /* a progress line is on the terminal */
    long done;
} svt_opts;

/* Next page of the main database's rows; 0 or 1 (printed). */
static int svt_mnext(svt_mstream *m)
{
    svt_ctx sub = *m->c;
    svt_rows res;
    apr_dbd_row_t *row;
    char after[24];
    const char *a[] = { after };

    if (m->page_pool)
        apr_pool_destroy(m->page_pool);
    apr_pool_create(&m->page_pool, m->c->pool);
    sub.pool = m->page_pool;
    m->n = m->i = 0;
    m->row = apr_pcalloc(m->page_pool, sizeof(svt_mrow) * PAGE);
    snprintf(after, sizeof(after), "%" PRIu64, m->after);
    if (svt_select(&sub, &res, "SELECT f.share_id, r.uuid::text, f.name FROM fields f "
                   "JOIN records r ON r.id = f.record_id WHERE f.share_id > %s::bigint "
                   "ORDER BY f.share_id LIMIT " APR_STRINGIFY(PAGE), 1, a))
        return 1;
    while ((row = svt_row(&sub, &res))) {
        svt_mrow *r = &m->row[m->n];
        const char *id = svt_col(&sub, row, 0), *u = svt_col(&sub, row, 1);
        const char *f = svt_col(&sub, row, 2);
        char *end;

        if (m->n >= PAGE)
            return svt_fail("check: the database answered more rows than asked");
        errno = 0;
        r->id = strtoull(id, &end, 10);
        if (errno || *end || end == id || r->id == 0 || strlen(u) != SV_UUID_STR_LEN
            || strlen(f) == 0 || strlen(f) > SV_FIELD_MAX)
            return svt_fail("check: malformed row in the main database (share id %s)", id);
        memcpy(r->uuid, u, SV_UUID_STR_LEN + 1);
        memcpy(r->name, f, strlen(f) + 1);
        m->n++;
    }
    m->more = m->n == PAGE;
    m->pages++;
    if (m->n)
        m->after = m->row[m->n - 1].id;
    return 0;
}

/* Does the row still reference its share? A rotation that finished
 * between the two reads leaves the share retired on the daemon and the row
 * on a new one. 1 yes, 0 no, -1 failed (printed). */
static int svt_mstill(svt_mstream *m, const svt_mrow *r)
{
    svt_ctx sub = *m->c;
    svt_rows res;
    char id[24];
    const char *a[] = { id, r->uuid, r->name };
    int found = 0;

    sub.pool = m->page_pool;
    snprintf(id, sizeof(id), "%" PRIu64, r->id);
    if (svt_select(&sub, &res, "SELECT 1 FROM fields f JOIN records r ON r.id = f.record_id "
                   "WHERE f.share_id = %s::bigint AND r.uuid::text = %s AND f.name = %s",
                   3, a))
        return -1;
    while (svt_row(&sub, &res))
        found = 1;
    return found;
}

/* The current row, or NULL at the end; 0 or 1 (printed). */
static int svt_mpeek(svt_mstream *m, svt_mrow **r)
{
    *r = NULL;
    if (m->i >= m->n && (m->page_pool == NULL || m->more) && svt_mnext(m))
        return 1;
    if (m->i < m->n)
        *r = &m->row[m->i];
    return 0;
}

/* Next page of the daemon's shares; 0 or 1 (printed). */
static int svt_dnext(svt_dstream *s)
{
    sv_recon_scan_req req;
    sv_buf b;
    uint8_t type, *body = NULL;
    size_t len = 0;
    int rc;

    sv_recon_scan_resp_free(&s->page);
    s->i = 0;
    req.after_id = s->after;
    req.limit = PAGE;
    sv_buf_init(&b, 0, 0);
    sv_recon_scan_req_encode(&b, ++s->d->reqid, &req);
    rc = svt_dcall(s->d, &b, &type, &body, &len);
    sv_buf_free(&b);
    if (rc)
        return 1;
    if (type != SV_MSG_RECON_SCAN_OK || sv_recon_scan_resp_decode(body, len, &s->page) != SV_OK) {
        sv_tls_body_free(body, len);
        return svt_fail("check: unexpected answer to RECON_SCAN");
    }
    sv_tls_body_free(body, len);
    if (!s->started) {
        s->total = s->page.total;
        s->min_grace = s->page.min_grace_s;
    }
    s->started = 1;
    s->read_after = s->m->pages;
    s->more = s->page.more;
    if (s->page.n)
        s->after = s->page.e[s->page.n - 1].id;
    return 0;
}

static int svt_dpeek(svt_dstream *s, const sv_scan_entry **e)
{
    *e = NULL;
    if (s->i >= s->page.n && (!s->started || s->more) && svt_dnext(s))
        return 1;
    if (s->i < s->page.n)
        *e = &s->page.e[s->i];
    return 0;
}

/* Progress on a terminal (stderr): done/total shares, a page at a time,
 * on one line that findings (stdout) clear first. */
#define PROGRESS_WIDTH 48

static void svt_progress(svt_opts *o, const svt_dstream *s, int last)
{
    if (!o->progress || (!last && o->done % PAGE != 0))
        return;
    if (s->total)
        fprintf(stderr, "\rcheck: %ld/%" PRIu64 " shares", o->done, s->total);
    else
        fprintf(stderr, "\rcheck: %ld shares", o->done);
    if (last)
        fputc('\n', stderr);
    o->shown = !last;
    fflush(stderr);
}

static void svt_progress_clear(svt_opts *o)
{
    if (!o->shown)
        return;
    fprintf(stderr, "\r%*s\r", PROGRESS_WIDTH, "");
    fflush(stderr);
    o->shown = 0;
}

/* Count one finding; print it while within the examples. */
static void svt_note(svt_findings *f, svt_opts *o, int kind, uint64_t id,
                     const char *uuid, const char *name, const char *what)
{
    f->n[kind]++;
    if (o->examples >= 0 && f->n[kind] > o->examples)
        return;
    svt_progress_clear(o);
    printf("  %-10s share %" PRIu64 " record %s field %s: %s\n", kind_name[kind], id, uuid,
           name, what);
    fflush(stdout);
}

/* The merge: both lists in share id order. 0, or 1 (printed). */
static int svt_compare(svt_mstream *m, svt_dstream *s, svt_opts *o, svt_findings *f)
{
    for (;;) {
        svt_mrow *r;
        const sv_scan_entry *e;
        char du[SV_UUID_STR_LEN + 1];
        int still;

        if (svt_mpeek(m, &r) || svt_dpeek(s, &e))
            return 1;
        if (!r && !e)
            break;
        if (e)
            sv_uuid_format(e->uuid, du);
        if (r && (!e || r->id < e->id) && s->read_after < m->pages) {
            /* The daemon's page was read before the main database's page
             * that holds this row: a share stored since (intake goes on)
             * is not in it. Read the daemon's shares again from this id
             * before calling it missing: once per page of the main
             * database at most. */
            s->after = r->id - 1;
            s->more = 1;
            s->i = s->page.n;
            continue;
        }
        if (r && (!e || r->id < e->id)) {
            /* a field whose share the daemon does not hold */
            f->fields++;
            f->max_main = r->id;
            svt_note(f, o, K_MISSING, r->id, r->uuid, r->name,
                     "the daemon has no such share (never stored there, or purged)");
            m->i++;
            continue;
        }
        o->done++;
        f->shares++;
        f->max_daemon = e->id;
        if (e->retired)
            f->retired++;
        else if (e->state == SV_SHARE_PENDING)
            f->pending++;
        else
            f->active++;
        if (!r || e->id < r->id) {
            /* a share no field references */
            int young = e->created + o->grace > o->now;
            if (!e->retired)
                svt_note(f, o, young ? K_RECENT : K_ORPHAN, e->id, du, e->name,
                         young ? "not referenced, younger than the grace period"
                               : e->state == SV_SHARE_PENDING ? "pending, not referenced"
                                                               : "active, not referenced");
        }
        else {
            f->fields++;
            f->max_main = r->id;
            m->i++;
            if (strcmp(r->uuid, du) != 0 || strcmp(r->name, e->name) != 0) {
                char *what = apr_psprintf(m->page_pool, "the daemon holds it for record %s "
                                          "field %s", du, e->name);
                svt_note(f, o, K_MISMATCHED, r->id, r->uuid, r->name, what);
            }
            else if (e->retired) {
                /* unless the row moved on to a new share meanwhile (a
                 * rotation that finished between the two reads) */
                if ((still = svt_mstill(m, r)) < 0)
                    return 1;
                if (still) {
                    char *what = apr_psprintf(m->page_pool, "retired at %" PRIu64
                                              " (splitvaultctl restore --record %s)",
                                              e->retired, du);
                    if (f->first_retired == 0 || e->retired < f->first_retired)
                        f->first_retired = e->retired;
                    svt_note(f, o, K_RETIRED, r->id, r->uuid, r->name, what);
                }
            }
            else if (e->state == SV_SHARE_PENDING)
                svt_note(f, o, e->created + o->grace > o->now ? K_RECENT : K_PENDING, r->id,
                         r->uuid, r->name, "pending: a rotation whose RELEASE never came");
        }
        s->i++;
        svt_progress(o, s, 0);
    }
    svt_progress(o, s, 1);
    return 0;
}

static void svt_report(const svt_findings *f, const svt_opts *o)
{
    long total = f->n[K_MISSING] + f->n[K_RETIRED] + f->n[K_PENDING] + f->n[K_ORPHAN]
                 + f->n[K_MISMATCHED];

    printf("check: %ld fields in the main database; %ld shares on the daemon (%ld active, "
           "%ld pending, %ld retired); grace period %u s\n", f->fields, f->shares, f->active,
           f->pending, f->retired, o->grace);
    printf("missing %ld, retired %ld, pending %ld, orphan %ld, mismatched %ld; "
           "recent (in flight, not findings) %ld\n", f->n[K_MISSING], f->n[K_RETIRED],
           f->n[K_PENDING], f->n[K_ORPHAN], f->n[K_MISMATCHED], f->n[K_RECENT]);
    if (o->examples >= 0)
        for (int k = 0; k < K__N; k++)
            if (f->n[k] > o->examples) {
                printf("(the first %ld of each kind are listed; --verbose lists all)\n",
                       o->examples);
                break;
            }
    if (f->n[K_MISSING])
        printf("next, missing: these fields cannot be decrypted: their key2b is not on the "
               "daemon. If its share store was restored from an older backup, the shares "
               "stored since are lost with it; if it was purged, the retention period passed. "
               "See docs/operations.md, \"Restore drill\"\n");
    if (f->max_main > f->max_daemon)
        printf("next, ids: the main database references share ids up to %" PRIu64 ", above "
               "the daemon's highest (%" PRIu64 "): if its share store was restored from a "
               "backup, raise the store's id sequence past %" PRIu64 " before intake or "
               "decrypts resume (docs/operations.md, \"Restore drill\"); new shares would "
               "otherwise take ids that rows already hold\n",
               f->max_main, f->max_daemon, f->max_main);
    if (f->n[K_RETIRED])
        printf("next, retired: restore them on the daemon host before they are purged: "
               "splitvaultctl restore --record UUID for each record, or splitvaultctl restore "
               "--since %" PRIu64 " for all; then run check again (the newer shares that "
               "replaced them show as orphans, which reconcile --apply retires)\n",
               f->first_retired);
    if (f->n[K_PENDING])
        printf("next, pending: splitvault-admin reconcile --apply activates them (shares "
               "older than its --grace)\n");
    if (f->n[K_ORPHAN])
        printf("next, orphan: splitvault-admin reconcile (a dry run), then reconcile --apply "
               "retires them (restorable until purged)\n");
    if (f->n[K_MISMATCHED])
        printf("next, mismatched: change nothing; investigate who wrote these rows of the "
               "main database (its audit and backups); reconcile never touches them\n");
    if (f->n[K_RECENT] && !total)
        printf("recent shares may be intake or rotations in flight: run check again later "
               "if they stay\n");
    printf("%s\n", total ? "result: findings" : "result: consistent");
}

int svt_cmd_check(svt_ctx *c, int argc, char **argv)
{
    static const char use[] = "usage: check --daemon HOST:PORT --ca FILE --cert FILE "
                              "--key FILE [--name NAME] [--timeout SECONDS] [--grace SECONDS] "
                              "[--examples N] [--verbose]";
    svt_dconn d;
    svt_mstream m;
    svt_dstream s;
    svt_opts o;
    svt_findings f;
    int i, rc, usage;
    char *end;

    svt_dinit(&d, "check");
    memset(&m, 0, sizeof(m));
    memset(&s, 0, sizeof(s));
    memset(&o, 0, sizeof(o));
    memset(&f, 0, sizeof(f));
    o.examples = DEFAULT_EXAMPLES;
    for (i = 0; i < argc; i++) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int taken;

        if (strcmp(opt, "--verbose") == 0) {
            o.examples = -1;
            continue;
        }
        if (!v) {
            svt_fail("%s", use);
            return EXIT_ERROR;
        }
        i++;
        if ((taken = svt_dopt(&d, opt, v)) < 0)
            return EXIT_ERROR;
        if (taken)
            continue;
        errno = 0;
        if (strcmp(opt, "--grace") == 0) {
            long g = strtol(v, &end, 10);
            if (errno || *end || end == v || g < 0 || g > 10L * 365 * 86400) {
                svt_fail("check: --grace takes seconds (0 to ten years)");
                return EXIT_ERROR;
            }
            o.grace = (uint32_t)g;
            o.grace_given = 1;
        }
        else if (strcmp(opt, "--examples") == 0) {
            long n = strtol(v, &end, 10);
            if (errno || *end || end == v || n < 0 || n > 100000000) {
                svt_fail("check: --examples takes a count (0 to 100000000)");
                return EXIT_ERROR;
            }
            if (o.examples >= 0)
                o.examples = n;
        }
        else {
            svt_fail("%s", use);
            return EXIT_ERROR;
        }
    }
    if (svt_dready(c, &d, &usage)) {
        if (usage)
            svt_fail("%s", use);
        return EXIT_ERROR;
    }
    o.progress = isatty(STDERR_FILENO);
    if (svt_dconnect(&d)) {
        svt_dclose(&d);
        return EXIT_ERROR;
    }
    m.c = c;
    s.d = &d;
    s.m = &m;
    /* the first page brings the daemon's minimum grace and the share count */
    rc = svt_dnext(&s);
    if (rc == 0) {
        if (!o.grace_given)
            o.grace = s.min_grace;
        o.now = (uint64_t)time(NULL);
        printf("check: daemon %s:%s, main database; read-only on both sides\n", d.host,
               d.port);
        fflush(stdout);
        rc = svt_compare(&m, &s, &o, &f);
    }
    sv_recon_scan_resp_free(&s.page);
    if (m.page_pool)
        apr_pool_destroy(m.page_pool);
    svt_dclose(&d);
    if (rc) {
        fprintf(stderr, "splitvault-admin: check: stopped; nothing was compared to the end\n");
        return EXIT_ERROR;
    }
    svt_report(&f, &o);
    return f.n[K_MISSING] + f.n[K_RETIRED] + f.n[K_PENDING] + f.n[K_ORPHAN] +
           f.n[K_MISMATCHED] ? EXIT_FINDINGS : 0;
}
