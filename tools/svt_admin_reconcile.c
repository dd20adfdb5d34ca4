/*
 * svt_admin_reconcile.c - `reconcile`: finish what crashes left on the daemon.
 *
 * A share is deleted only after the main-database commit that stops
 * referencing it (docs/design.md, "Invariants", 2). When the module could not send
 * the RELEASE that follows a commit (a crash, a lost connection), or a
 * commit never happened after STORE or DECRYPT stored shares, the daemon
 * keeps shares that the main database does not reference (orphans), or
 * pending shares that it does reference (an unfinished rotation). This
 * command pages through the daemon's shares older than a grace period
 * (RECON_LIST), checks each id against fields.share_id, and
 *
 *   - referenced and pending:   activates it (RELEASE keep);
 *   - referenced and active:    leaves it alone;
 *   - referenced, but the row names another record or field: leaves it
 *     alone and warns (never deletes a referenced share);
 *   - unreferenced:             retires it (RECON_DELETE, with its record
 *     uuid and field; the daemon checks both and the grace period again,
 *     keeps it restorable for its retention period, then purges it).
 *
 * Without --apply it only reports what it would do (a dry run); with it,
 * the same one pass decides, and only then does it act, on exactly the
 * shares it found (nothing when more than --max-retire look unreferenced).
 * It talks to the daemon over the same mutual TLS 1.3 as the module, with
 * a client certificate the daemon lists under clients.reconcile: the
 * reconcile role, which the web server's certificate does not have (this
 * certificate belongs on the admin's machine, not on the web host). The
 * grace period must exceed the longest
 * intake or decrypt (the module commits a submission or a rotation no later
 * than 600 s after it sent the STORE or first DECRYPT that made its shares,
 * or gives it up); the daemon enforces its own minimum as well.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"
#include "apr_tables.h"

#include "svt_admin.h"
#include "svt_admin_daemon.h"
#include "sv_buf.h"
#include "sv_format.h"
#include "sv_tlsclient.h"
#include "sv_wire.h"

#define DEFAULT_GRACE 3600
#define DEFAULT_MAX_RETIRE 1000
#define PAGE 1000

/* What the main database says about one listed share. */
enum { REF_NONE, REF_MATCH, REF_OTHER };

typedef struct {
    long listed, ref_active, ref_pending, unref, mismatched, activated, retired;
} svt_tally;

/* Look up which of the page's ids the main database references:
 * ref[i] = REF_NONE, REF_MATCH or REF_OTHER (another record or field). */
static int svt_lookup(svt_ctx *c, const sv_recon_list_resp *page, int *ref)
{
    apr_pool_t *p = c->pool;
    char *ids = apr_pstrdup(p, "{");
    svt_rows res;
    apr_dbd_row_t *row;
    unsigned i;

    for (i = 0; i < page->n; i++)
        ids = apr_psprintf(p, "%s%s%" APR_UINT64_T_FMT, ids, i ? "," : "",
                           (apr_uint64_t)page->e[i].id);
    ids = apr_pstrcat(p, ids, "}", NULL);
    {
        const char *a[] = { ids };
        if (svt_select(c, &res, "SELECT f.share_id, r.uuid::text, f.name FROM fields f "
                       "JOIN records r ON r.id = f.record_id WHERE f.share_id = ANY(%s::bigint[])",
                       1, a))
            return 1;
    }
    for (i = 0; i < page->n; i++)
        ref[i] = REF_NONE;
    while ((row = svt_row(c, &res))) {
        apr_uint64_t id = (apr_uint64_t)apr_atoi64(svt_col(c, row, 0));
        const char *u = svt_col(c, row, 1), *name = svt_col(c, row, 2);
        for (i = 0; i < page->n; i++) {
            char us[SV_UUID_STR_LEN + 1];
            if (page->e[i].id != id)
                continue;
            sv_uuid_format(page->e[i].uuid, us);
            ref[i] = strcmp(us, u) == 0 && strcmp(page->e[i].name, name) == 0 ? REF_MATCH
                                                                                 : REF_OTHER;
        }
    }
    return 0;
}

/* RELEASE keep = id for one referenced pending share. */
static int svt_activate(svt_dconn *d, const sv_recon_entry *e)
{
    sv_release_req req;
    sv_buf b;
    uint8_t type, *body = NULL;
    size_t len = 0;
    uint32_t reqid = ++d->reqid;
    int rc;

    memset(&req, 0, sizeof(req));
    memcpy(req.uuid, e->uuid, SV_UUID_LEN);
    req.n = 1;
    memcpy(req.f[0].name, e->name, sizeof(req.f[0].name));
    req.f[0].keep_id = e->id;
    sv_buf_init(&b, 0, 0);
    sv_release_req_encode(&b, reqid, &req);
    rc = svt_dcall(d, &b, &type, &body, &len);
    sv_buf_free(&b);
    if (rc == 0 && type != SV_MSG_RELEASE_OK)
        rc = svt_fail("reconcile: unexpected answer to RELEASE");
    sv_tls_body_free(body, len);
    return rc;
}

/* RECON_DELETE for n unreferenced shares (ids increasing, at most PAGE):
 * the daemon retires them. */
static int svt_delete(svt_dconn *d, uint32_t grace, sv_recon_ref *refs, unsigned n,
                      unsigned *retired)
{
    sv_recon_delete_req req;
    sv_recon_delete_resp resp;
    sv_buf b;
    uint8_t type, *body = NULL;
    size_t len = 0;
    uint32_t reqid = ++d->reqid;
    int rc;

    req.grace_s = grace;
    req.n = n;
    req.e = refs;
    sv_buf_init(&b, 0, 0);
    sv_recon_delete_req_encode(&b, reqid, &req);
    rc = svt_dcall(d, &b, &type, &body, &len);
    sv_buf_free(&b);
    if (rc == 0 && (type != SV_MSG_RECON_DELETE_OK
                    || sv_recon_delete_resp_decode(body, len, &resp) != SV_OK))
        rc = svt_fail("reconcile: unexpected answer to RECON_DELETE");
    if (rc == 0)
        *retired = resp.n;
    sv_tls_body_free(body, len);
    return rc;
}

static const char *svt_uuid(apr_pool_t *p, const uint8_t *u)
{
    char s[SV_UUID_STR_LEN + 1];

    sv_uuid_format(u, s);
    return apr_pstrdup(p, s);
}

/* What a pass found to do with --apply (sv_recon_entry each, in the
 * daemon's order): the referenced pending shares to activate, and the
 * unreferenced ones to retire; of those at most max_retire are kept (past
 * it nothing is retired, and the count alone matters). */
typedef struct {
    apr_array_header_t *act, *del;
    long max_retire;
} svt_todo;

/* One page: look up, report; with todo (--apply), note what to do. */
static int svt_page(svt_ctx *c, const sv_recon_list_resp *page, svt_tally *t, svt_todo *todo)
{
    int *ref = apr_pcalloc(c->pool, sizeof(int) * (page->n ? page->n : 1));
    unsigned i;

    if (svt_lookup(c, page, ref))
        return 1;
    for (i = 0; i < page->n; i++) {
        const sv_recon_entry *e = &page->e[i];
        const char *u = svt_uuid(c->pool, e->uuid);
        t->listed++;
        if (ref[i] == REF_OTHER) {
            t->mismatched++;
            printf("  share %" APR_UINT64_T_FMT " (record %s, field %s): referenced by a row of "
                   "another record or field: kept, investigate\n", (apr_uint64_t)e->id, u,
                   e->name);
        }
        else if (ref[i] == REF_MATCH && e->state == SV_SHARE_ACTIVE)
            t->ref_active++;
        else if (ref[i] == REF_MATCH) {
            t->ref_pending++;
            if (todo)
                *(sv_recon_entry *)apr_array_push(todo->act) = *e;
            else
                printf("  share %" APR_UINT64_T_FMT " (record %s, field %s): pending and "
                       "referenced: would activate\n", (apr_uint64_t)e->id, u, e->name);
        }
        else {
            t->unref++;
            if (todo && t->unref <= todo->max_retire)
                *(sv_recon_entry *)apr_array_push(todo->del) = *e;
            else if (!todo)
                printf("  share %" APR_UINT64_T_FMT " (record %s, field %s, %s): not "
                       "referenced: would retire\n", (apr_uint64_t)e->id, u, e->name,
                       e->state == SV_SHARE_PENDING ? "pending" : "active");
        }
    }
    return 0;
}

/* One pass over the daemon's shares, page by page, reporting; with todo
 * (--apply) noting what to do, changing nothing yet. 0, or 1 (printed). */
static int svt_pass(svt_ctx *c, svt_dconn *d, uint32_t grace, svt_tally *t, svt_todo *todo)
{
    uint64_t after = 0;
    int pages = 0, rc = 0;

    printf("reconcile: daemon %s:%s, shares older than %u s, %s\n", d->host, d->port, grace,
           todo ? "applying changes" : "dry run (nothing is changed; add --apply)");
    fflush(stdout);
    for (;;) {
        sv_recon_list_req req;
        sv_recon_list_resp page;
        sv_buf b;
        uint8_t type, *body = NULL;
        size_t len = 0;
        uint32_t reqid = ++d->reqid;

        req.grace_s = grace;
        req.after_id = after;
        req.limit = PAGE;
        sv_buf_init(&b, 0, 0);
        sv_recon_list_req_encode(&b, reqid, &req);
        rc = svt_dcall(d, &b, &type, &body, &len);
        sv_buf_free(&b);
        if (rc)
            break;
        memset(&page, 0, sizeof(page));
        if (type != SV_MSG_RECON_LIST_OK || sv_recon_list_resp_decode(body, len, &page) != SV_OK) {
            sv_tls_body_free(body, len);
            rc = svt_fail("reconcile: unexpected answer to RECON_LIST");
            break;
        }
        sv_tls_body_free(body, len);
        pages++;
        if (page.n)
            printf("page %d: %u shares (ids %" APR_UINT64_T_FMT " to %" APR_UINT64_T_FMT ")\n",
                   pages, page.n, (apr_uint64_t)page.e[0].id,
                   (apr_uint64_t)page.e[page.n - 1].id);
        rc = svt_page(c, &page, t, todo);
        fflush(stdout);
        if (page.n)
            after = page.e[page.n - 1].id;
        if (rc || !page.more || page.n == 0) {
            sv_recon_list_resp_free(&page);
            break;
        }
        sv_recon_list_resp_free(&page);
    }
    return rc;
}

/* Do what the pass found: activate, then retire in batches of PAGE
 * (RECON_DELETE), exactly the shares listed, never more. */
static int svt_apply(svt_ctx *c, svt_dconn *d, uint32_t grace, const svt_todo *todo,
                     svt_tally *t)
{
    const sv_recon_entry *act = (const sv_recon_entry *)todo->act->elts;
    const sv_recon_entry *del = (const sv_recon_entry *)todo->del->elts;
    sv_recon_ref *refs;
    int i, n;

    for (i = 0; i < todo->act->nelts; i++) {
        printf("  share %" APR_UINT64_T_FMT " (record %s, field %s): pending and referenced: "
               "activating\n", (apr_uint64_t)act[i].id, svt_uuid(c->pool, act[i].uuid),
               act[i].name);
        if (svt_activate(d, &act[i]))
            return 1;
        t->activated++;
    }
    refs = apr_pcalloc(c->pool, sizeof(sv_recon_ref) * PAGE);
    for (i = 0; i < todo->del->nelts; i += n) {
        unsigned retired = 0;
        n = todo->del->nelts - i < PAGE ? todo->del->nelts - i : PAGE;
        for (int k = 0; k < n; k++) {
            const sv_recon_entry *e = &del[i + k];
            printf("  share %" APR_UINT64_T_FMT " (record %s, field %s, %s): not referenced: "
                   "retiring\n", (apr_uint64_t)e->id, svt_uuid(c->pool, e->uuid), e->name,
                   e->state == SV_SHARE_PENDING ? "pending" : "active");
            refs[k].id = e->id;
            memcpy(refs[k].uuid, e->uuid, SV_UUID_LEN);
            memcpy(refs[k].name, e->name, sizeof(refs[k].name));
        }
        fflush(stdout);
        if (svt_delete(d, grace, refs, (unsigned)n, &retired))
            return 1;
        t->retired += retired;
        if (retired != (unsigned)n)
            printf("  the daemon retired %u of %u (the others no longer matched or are within "
                   "its grace period)\n", retired, (unsigned)n);
    }
    return 0;
}

int svt_cmd_reconcile(svt_ctx *c, int argc, char **argv)
{
    static const char use[] = "usage: reconcile --daemon HOST:PORT --ca FILE --cert FILE "
                              "--key FILE [--name NAME] [--grace SECONDS] [--timeout SECONDS] "
                              "[--max-retire N] [--apply]";
    svt_dconn d;
    svt_tally t;
    svt_todo todo;
    long grace = DEFAULT_GRACE, max_retire = DEFAULT_MAX_RETIRE;
    int apply = 0, i, rc = 0;

    svt_dinit(&d, "reconcile");
    memset(&t, 0, sizeof(t));
    memset(&todo, 0, sizeof(todo));
    for (i = 0; i < argc; i++) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int taken;

        if (strcmp(opt, "--apply") == 0) {
            apply = 1;
            continue;
        }
        if (strcmp(opt, "--dry-run") == 0) {
            apply = 0;
            continue;
        }
        if (!v)
            return svt_fail("%s", use);
        i++;
        if ((taken = svt_dopt(&d, opt, v)) < 0)
            return 1;
        if (taken)
            continue;
        if (strcmp(opt, "--grace") == 0) {
            if (svt_dnum(&d, opt, v, SVT_DGRACE_MAX, "seconds (0 to ten years)", &grace))
                return 1;
        }
        else if (strcmp(opt, "--max-retire") == 0) {
            if (svt_dnum(&d, opt, v, 100000000, "a count (0 to 100000000)", &max_retire))
                return 1;
        }
        else
            return svt_fail("%s", use);
    }
    if (svt_dstart(c, &d, use))
        return 1;
    /*
     * One pass, changing nothing: the main database is what says a share
     * is unreferenced, and one that lost its rows (damaged, restored to
     * another point, or changed by whoever could write it) would make
     * every share look like an orphan. Past --max-retire nothing is
     * retired (or activated) at all; otherwise exactly the shares this
     * pass found are, so orphans that appear meanwhile wait for the next
     * run and never take the count past --max-retire.
     */
    if (apply) {
        todo.act = apr_array_make(c->pool, 16, sizeof(sv_recon_entry));
        todo.del = apr_array_make(c->pool, 64, sizeof(sv_recon_entry));
        todo.max_retire = max_retire;
    }
    rc = svt_pass(c, &d, (uint32_t)grace, &t, apply ? &todo : NULL);
    if (rc == 0 && apply && t.unref > max_retire) {
        svt_dclose(&d);
        return svt_fail("reconcile: %ld shares are not referenced, more than --max-retire "
                        "(%ld): nothing retired. Check the main database (is it the one "
                        "the daemon's shares belong to, complete and current?) and the "
                        "dry run, then run again with a larger --max-retire", t.unref,
                        max_retire);
    }
    if (rc == 0 && apply)
        rc = svt_apply(c, &d, (uint32_t)grace, &todo, &t);
    svt_dclose(&d);
    printf("%s: %ld listed; %ld referenced and active; %ld referenced and pending (%ld "
           "activated); %ld not referenced (%ld retired); %ld referenced by another record "
           "or field (kept)\n", rc ? "stopped" : "done", t.listed, t.ref_active, t.ref_pending,
           t.activated, t.unref, t.retired, t.mismatched);
    if (t.retired > 0)
        printf("retired shares stay on the daemon, restorable (splitvaultctl restore), for "
               "its retention.period, then are purged\n");
    return rc;
}
