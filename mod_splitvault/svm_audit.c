/*
 * svm_audit.c - the main side's audit trail (table audit).
 *
 * Rows say who did what to which record and field, when, from where and
 * with what outcome; never a value. Staff updates write their row in the
 * same transaction as the change. Admins read the trail on /staff/audit.
 *
 * The table is a hash chain (sql/main/004_audit_chain.sql): the database's
 * trigger fills id, prev_hash and hash. The page checks what it shows,
 * cheaply: each row's hash recomputed from its columns and prev_hash
 * (lib/sv_auditchain.c), and, unfiltered, each row's link to the row
 * before it, and on the first page the newest row against the chain head
 * (audit_head); it names the head and sends admins to `splitvault-admin
 * audit-verify` for the whole chain.
 */
#include "svm.h"
#include "svm_audit.h"
#include "svm_config.h"
#include "svm_db.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_session.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include "sv_auditchain.h"
#include "sv_hex.h"

apr_status_t svm_audit(request_rec *r, ap_dbd_t *dbd, const char *actor, const char *action,
                       const char *record_ref, const char *field, const char *outcome,
                       const char *detail)
{
    const void *args[] = { actor, action, record_ref, field, outcome, r->useragent_ip,
                           detail };

    if (svm_db_exec(r, dbd, "svm_audit_insert", NULL, args)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SV01801: audit row not written: %s %s by %s", action, outcome,
                      actor ? actor : "-");
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

/* Columns of svm_audit_list after the page's eight: the id, the row as its
 * hash covers it, prev_hash and hash (svm_db.c). */
#define COL_ID 8
#define COL_PREV (COL_ID + SV_AC_NFIELDS)
#define COL_HASH (COL_PREV + 1)
#define COL_HEAD_ID (COL_HASH + 2)
#define COL_HEAD_HASH (COL_HASH + 3)

/* One listed row's chain state. */
typedef struct {
    const char *id;
    uint8_t prev[SV_AUDIT_CHAIN_HASH_LEN];
    uint8_t hash[SV_AUDIT_CHAIN_HASH_LEN];
    int ok;                     /* its hash matches its columns */
} svm_chain_row;

/* Read row's chain columns into c and check its own hash. 0, or -1 when
 * the row is malformed (c->ok is then 0). */
static int svm_chain_read(request_rec *r, ap_dbd_t *dbd, apr_dbd_row_t *row, svm_chain_row *c)
{
    const char *f[SV_AC_NFIELDS], *v, *h;
    uint8_t calc[SV_AUDIT_CHAIN_HASH_LEN];
    int i;

    c->ok = 0;
    c->id = svm_db_col(r, dbd, row, COL_ID);
    f[SV_AC_ID] = c->id;
    f[SV_AC_AT] = svm_db_col(r, dbd, row, COL_ID + SV_AC_AT);
    for (i = SV_AC_ACTOR; i < SV_AC_NFIELDS; i++) {
        v = svm_db_col(r, dbd, row, COL_ID + i);
        if (*v != 'N' && *v != 'V')
            return -1;
        f[i] = *v == 'N' ? NULL : v + 1;
    }
    v = svm_db_col(r, dbd, row, COL_PREV);
    h = svm_db_col(r, dbd, row, COL_HASH);
    if (sv_hex_decode(v, strlen(v), c->prev, sizeof(c->prev)) != SV_OK
        || sv_hex_decode(h, strlen(h), c->hash, sizeof(c->hash)) != SV_OK
        || sv_audit_chain_hash(c->prev, f, calc) != SV_OK)
        return -1;
    c->ok = memcmp(calc, c->hash, sizeof(calc)) == 0;
    return 0;
}

/* The chain's paragraph: what the page checked, and the head. n rows were
 * read (the shown ones and, when there is one, the next older row), in id
 * order newest first; linked: consecutive rows are neighbours in the chain
 * (no filter); newest: the first row is the table's newest (no filter, the
 * first page), which the head (audit_head, read in the same statement as
 * the rows; NULL when there was none) must name. */
static void svm_chain_report(request_rec *r, const char *head_id, const char *head_hash,
                             svm_chain_row *rows, int n, int shown, int linked, int newest)
{
    const char *bad = NULL, *why = NULL;
    uint8_t hh[SV_AUDIT_CHAIN_HASH_LEN];
    int i;

    if (!head_id || sv_hex_decode(head_hash, strlen(head_hash), hh, sizeof(hh)) != SV_OK) {
        bad = "(head)";
        why = "the chain head (table audit_head) cannot be read";
    }
    else if (newest && n == 0 && strcmp(head_id, "0") != 0) {
        bad = head_id;
        why = "the table is empty but the chain head names this row: rows were removed";
    }
    else if (newest && n > 0 && (strcmp(head_id, rows[0].id) != 0
                                 || memcmp(hh, rows[0].hash, sizeof(hh)) != 0)) {
        bad = rows[0].id;
        why = apr_psprintf(r->pool, "it is the newest row but the chain head names row %s "
                           "with another hash: rows after it were removed, or it or the "
                           "head was altered", head_id);
    }
    for (i = 0; i < n && !bad; i++) {
        if (!rows[i].ok) {
            bad = rows[i].id;
            why = "its columns do not match its hash: the row was altered";
        }
        else if (linked && i + 1 < n
                 && memcmp(rows[i].prev, rows[i + 1].hash, SV_AUDIT_CHAIN_HASH_LEN) != 0) {
            bad = rows[i].id;
            why = apr_psprintf(r->pool, "it does not link to row %s, the row before it: a row "
                               "between them was removed, or row %s was altered",
                               rows[i + 1].id, rows[i + 1].id);
        }
        else if (linked && i + 1 == n && n == shown && rows[i].ok) {
            static const uint8_t zero[SV_AUDIT_CHAIN_HASH_LEN];
            if (memcmp(rows[i].prev, zero, sizeof(zero)) != 0) {
                bad = rows[i].id;
                why = "it is the oldest row but does not start the chain: rows before it "
                      "were removed";
            }
        }
    }
    if (bad) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV01802: audit chain broken at row "
                      "%s (seen on the audit page)", bad);
        ap_rprintf(r, "<p class=\"errors\" id=\"chain\">Hash chain <strong>broken</strong> "
                   "at row %s: %s. Run <code>splitvault-admin audit-verify</code> to check the "
                   "whole chain, and treat the audit log as tampered with.</p>\n",
                   svm_esc(r->pool, bad), svm_esc(r->pool, why));
        return;
    }
    if (shown == 0)
        ap_rputs("<p class=\"note\" id=\"chain\">Hash chain: no rows on this page.", r);
    else
        ap_rprintf(r, "<p class=\"note\" id=\"chain\">Hash chain: the %d row%s on this page "
                   "verif%s (%s).", shown, shown == 1 ? "" : "s", shown == 1 ? "ies" : "y",
                   linked ? "each row's hash, and its link to the row before it"
                          : "each row's hash; filtered, the links are not checked here");
    if (head_id)
        ap_rprintf(r, " Head: <span class=\"mono\">%s:%s</span>.", svm_esc(r->pool, head_id),
                   svm_esc(r->pool, head_hash));
    ap_rputs(" This page checks only its own rows: run <code>splitvault-admin audit-verify"
             "</code> for the whole chain, and keep a copy of the head off the system.</p>\n",
             r);
}

int svm_audit_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st)
{
    ap_dbd_t *dbd = svm_db(r);
    const char *q = svm_query_arg(r, "ref");
    int page = svm_query_page(r, "page", 100000), n = 0, i;
    svm_chain_row *chain;
    const char *head_id = NULL, *head_hash = NULL;
    svm_rows res;
    apr_dbd_row_t *row;

    if (!dbd)
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Audit log unavailable",
                                "The database is unreachable; please try again.", st);
    if (!q)
        q = "";
    {
        const void *args[] = { q, q, apr_itoa(r->pool, page * 100) };
        if (svm_db_select(r, dbd, "svm_audit_list", &res, args))
            return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Audit log unavailable",
                                    "The audit log could not be read; please try again.", st);
    }
    chain = apr_pcalloc(r->pool, 101 * sizeof(*chain));
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, "Audit log", st);
    ap_rprintf(r, "<h1>Audit log</h1>\n<form class=\"search\" method=\"get\" action=\"%s\">"
               "<div><label for=\"ref\">Reference code</label><input type=\"search\" "
               "id=\"ref\" name=\"ref\" value=\"%s\" maxlength=\"11\"></div>"
               "<button type=\"submit\">Filter</button></form>\n",
               svm_esc(r->pool, svm_url(r, sc, "/staff/audit")), svm_esc(r->pool, q));
    ap_rputs("<table>\n<thead><tr><th scope=\"col\">When (UTC)</th><th scope=\"col\">Who"
             "</th><th scope=\"col\">Action</th><th scope=\"col\">Record</th>"
             "<th scope=\"col\">Field</th><th scope=\"col\">Outcome</th>"
             "<th scope=\"col\">Address</th><th scope=\"col\">Detail</th></tr></thead>\n"
             "<tbody>\n", r);
    while ((row = svm_db_row(r, dbd, &res))) {
        head_id = svm_db_col(r, dbd, row, COL_HEAD_ID);
        head_hash = svm_db_col(r, dbd, row, COL_HEAD_HASH);
        if (!*svm_db_col(r, dbd, row, COL_ID))
            continue; /* the head alone: no audit row listed */
        if (n < 101)
            svm_chain_read(r, dbd, row, &chain[n]);
        if (++n > 100)
            continue;
        ap_rputs(chain[n - 1].ok ? "<tr>" : "<tr class=\"error\">", r);
        for (i = 0; i < 8; i++)
            ap_rprintf(r, "<td>%s</td>", svm_esc(r->pool, svm_db_col(r, dbd, row, i)));
        ap_rputs("</tr>\n", r);
    }
    ap_rputs("</tbody>\n</table>\n", r);
    svm_chain_report(r, head_id, head_hash, chain, n > 101 ? 101 : n, n > 100 ? 100 : n,
                     *q == '\0', *q == '\0' && page == 0);
    ap_rputs("<p class=\"pager\">", r);
    if (page > 0)
        ap_rprintf(r, "<a href=\"%s?ref=%s&amp;page=%d\">Newer</a>",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/audit")),
                   svm_esc(r->pool, ap_escape_urlencoded(r->pool, q)), page - 1);
    if (n > 100)
        ap_rprintf(r, "<a href=\"%s?ref=%s&amp;page=%d\">Older</a>",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/audit")),
                   svm_esc(r->pool, ap_escape_urlencoded(r->pool, q)), page + 1);
    ap_rputs("</p>\n", r);
    svm_page_end(r);
    return OK;
}
