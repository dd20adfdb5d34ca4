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
 * The two sides are read at slightly different moments, always the main
 * database's page first and then the daemon's pages that cover its ids (a
 * daemon page read before a main page is read again from where the merge
 * stands). Shares are stored before the main database commits the rows
 * that reference them, so no share a row read this way references can be
 * missing from the daemon's later page unless it is gone. A rotation that
 * finishes between the two reads can leave a row on a share since retired,
 * or a share in use that the row read earlier does not reference yet: the
 * candidate retired and orphan findings are looked up again in the main
 * database, one query for up to a page of them, and only those that still
 * stand are reported. A share in use that no row references while a
 * newer share of its record and field, younger than the grace period, is
 * referenced is a rotation between its commit and its RELEASE: counted
 * with the shares in flight (if the RELEASE never comes, the newer share,
 * pending, is the finding once past the grace period).
 * A finding that a second run repeats is real.
 *
 * The main database is read in read-only transactions
 * (default_transaction_read_only): read access to records and fields is
 * all the command needs.
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
    uint64_t consumed;        /* the last share the merge took (0: none) */
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

/* A retired or orphan finding to confirm against the main database. */
typedef struct {
    uint64_t id;
    uint64_t retired;         /* retired: when */
    int kind;                 /* K_RETIRED or K_ORPHAN */
    uint8_t state;
    char uuid[SV_UUID_STR_LEN + 1];
    char name[SV_FIELD_MAX + 1];
    int seen;                 /* 1: a row references it now; 2: the same row */
    uint64_t now;             /* a newer share of its record and field,
                                 referenced by their row and within the
                                 grace period (0: none) */
} svt_cand;

typedef struct {
    svt_cand *c;              /* PAGE of them, in share id order */
    int n;
} svt_cands;

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

static int svt_cand_cmp(const void *k, const void *e)
{
    uint64_t id = *(const uint64_t *)k, eid = ((const svt_cand *)e)->id;

    return id < eid ? -1 : id > eid;
}

/*
 * Look the candidates up again in the main database, in one query, and
 * report those that still stand: a retired share its row (same record and
 * field) still references, an orphan no row references. Both reads of the
 * main database came after the daemon's page the candidates are from.
 * 0, or 1 (printed).
 */
static int svt_cands_flush(svt_ctx *c, svt_cands *cs, svt_opts *o, svt_findings *f)
{
    svt_ctx sub = *c;
    svt_rows res;
    apr_dbd_row_t *row;
    char *ids, *p;
    const char *a[1];
    size_t len;
    int i, rc = 0;

    if (cs->n == 0)
        return 0;
    apr_pool_create(&sub.pool, c->pool);
    /* an array literal: at most 20 digits and a comma per id */
    len = (size_t)cs->n * 21 + 3;
    p = ids = apr_palloc(sub.pool, len);
    *p++ = '{';
    for (i = 0; i < cs->n; i++)
        p += snprintf(p, len - (size_t)(p - ids), "%s%" PRIu64, i ? "," : "", cs->c[i].id);
    *p++ = '}';
    *p = '\0';
    a[0] = ids;
    if (svt_select(&sub, &res, "SELECT f.share_id, r.uuid::text, f.name FROM fields f "
                   "JOIN records r ON r.id = f.record_id "
                   "WHERE f.share_id = ANY(%s::bigint[])", 1, a)) {
        rc = 1;
        goto out;
    }
    while ((row = svt_row(&sub, &res))) {
        const char *id = svt_col(&sub, row, 0), *u = svt_col(&sub, row, 1);
        const char *n = svt_col(&sub, row, 2);
        uint64_t v;
        svt_cand *k;
        char *end;

        errno = 0;
        v = strtoull(id, &end, 10);
        if (errno || *end || end == id) {
            rc = svt_fail("check: malformed share id in the main database (%s)", id);
            goto out;
        }
        if ((k = bsearch(&v, cs->c, (size_t)cs->n, sizeof(*cs->c), svt_cand_cmp)) == NULL) {
            rc = svt_fail("check: the database answered a share id it was not asked (%s)", id);
            goto out;
        }
        k->seen = strcmp(u, k->uuid) == 0 && strcmp(n, k->name) == 0 ? 2 : 1;
    }
    for (i = 0; i < cs->n; i++) {
        const svt_cand *k = &cs->c[i];

        if (k->kind == K_RETIRED && k->seen == 2) {
            char *what = apr_psprintf(sub.pool, "retired at %" PRIu64
                                      " (splitvaultctl restore --record %s)", k->retired,
                                      k->uuid);
            if (f->first_retired == 0 || k->retired < f->first_retired)
                f->first_retired = k->retired;
            svt_note(f, o, K_RETIRED, k->id, k->uuid, k->name, what);
        }
        else if (k->kind == K_ORPHAN && k->seen == 0 && k->now)
            /* its row moved on to a newer share, in flight: a rotation
             * between its commit and its RELEASE (if the RELEASE never
             * comes, the newer share is the finding once past the grace
             * period: pending) */
            svt_note(f, o, K_RECENT, k->id, k->uuid, k->name,
                     apr_psprintf(sub.pool, "replaced by share %" PRIu64 " in the main "
                                  "database: a rotation in flight", k->now));
        else if (k->kind == K_ORPHAN && k->seen == 0)
            svt_note(f, o, K_ORPHAN, k->id, k->uuid, k->name,
                     k->state == SV_SHARE_PENDING ? "pending, not referenced"
                                                  : "active, not referenced");
    }
out:
    cs->n = 0;
    apr_pool_destroy(sub.pool);
    return rc;
}

/* A young share its row references: an older orphan candidate of the same
 * record and field is the share a rotation in flight replaces. */
static void svt_cands_newer(svt_cands *cs, const sv_scan_entry *e, const char *uuid)
{
    for (int i = cs->n - 1; i >= 0; i--) {
        svt_cand *k = &cs->c[i];

        if (k->kind == K_ORPHAN && k->id < e->id && strcmp(k->uuid, uuid) == 0 &&
            strcmp(k->name, e->name) == 0)
            k->now = e->id;
    }
}

/* Hold a candidate finding; flush when a page of them is held. 0 or 1. */
static int svt_cand_add(svt_ctx *c, svt_cands *cs, svt_opts *o, svt_findings *f, int kind,
                        const sv_scan_entry *e, const char *uuid)
{
    svt_cand *k = &cs->c[cs->n++];

    memset(k, 0, sizeof(*k));
    k->id = e->id;
    k->retired = e->retired;
    k->kind = kind;
    k->state = e->state;
    memcpy(k->uuid, uuid, SV_UUID_STR_LEN + 1);
    memcpy(k->name, e->name, strlen(e->name) + 1);
    return cs->n == PAGE ? svt_cands_flush(c, cs, o, f) : 0;
}

/* The merge: both lists in share id order. 0, or 1 (printed). */
static int svt_compare(svt_mstream *m, svt_dstream *s, svt_opts *o, svt_findings *f)
{
    svt_cands cs;

    cs.n = 0;
    cs.c = apr_palloc(m->c->pool, sizeof(*cs.c) * PAGE);
    for (;;) {
        svt_mrow *r;
        const sv_scan_entry *e;
        char du[SV_UUID_STR_LEN + 1];

        if (svt_mpeek(m, &r))
            return 1;
        if (s->read_after < m->pages) {
            /* The daemon's page was read before this page of the main
             * database: read the daemon's shares again from where the
             * merge stands, so that every share a row of it references
             * and that exists is in the daemon's answer. */
            s->after = s->consumed;
            s->more = 1;
            s->i = s->page.n;
        }
        if (svt_dpeek(s, &e))
            return 1;
        if (!r && !e)
            break;
        if (e)
            sv_uuid_format(e->uuid, du);
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
            /* a share no field references (unless one does by now) */
            if (!e->retired) {
                if (e->created + o->grace > o->now)
                    svt_note(f, o, K_RECENT, e->id, du, e->name,
                             "not referenced, younger than the grace period");
                else if (svt_cand_add(m->c, &cs, o, f, K_ORPHAN, e, du))
                    return 1;
            }
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
                if (svt_cand_add(m->c, &cs, o, f, K_RETIRED, e, du))
                    return 1;
            }
            else if (e->state == SV_SHARE_PENDING)
                svt_note(f, o, e->created + o->grace > o->now ? K_RECENT : K_PENDING, r->id,
                         r->uuid, r->name, "pending: a rotation whose RELEASE never came");
            if (!e->retired && e->created + o->grace > o->now)
                svt_cands_newer(&cs, e, du);
        }
        s->consumed = e->id;
        s->i++;
        svt_progress(o, s, 0);
    }
    if (svt_cands_flush(m->c, &cs, o, f))
        return 1;
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
    int i, rc;

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
        if (strcmp(opt, "--grace") == 0) {
            long g;
            if (svt_dnum(&d, opt, v, SVT_DGRACE_MAX, "seconds (0 to ten years)", &g))
                return EXIT_ERROR;
            o.grace = (uint32_t)g;
            o.grace_given = 1;
        }
        else if (strcmp(opt, "--examples") == 0) {
            long n;
            if (svt_dnum(&d, opt, v, 100000000, "a count (0 to 100000000)", &n))
                return EXIT_ERROR;
            if (o.examples >= 0)
                o.examples = n;
        }
        else {
            svt_fail("%s", use);
            return EXIT_ERROR;
        }
    }
    if (svt_dstart(c, &d, use))
        return EXIT_ERROR;
    o.progress = isatty(STDERR_FILENO);
    /* never writes: every transaction of this session is read-only */
    if ((rc = apr_dbd_query(c->driver, c->handle, &i,
                            "SET default_transaction_read_only = on")) != 0) {
        svt_fail("database: %s", apr_dbd_error(c->driver, c->handle, rc));
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
