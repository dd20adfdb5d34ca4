/*
 * svm_keys.c - handler "splitvault-keys": the admin key location.
 *
 * Signed-in admins (can_admin) see the registered key1 public keys and the
 * daemon's status. Uploading and forgetting key1's private half (shared
 * memory) belong here too and are added with the key1 slot; the sysadmin
 * additionally fences this location with Require rules.
 */
#include "svm.h"
#include "http_protocol.h"
#include "apr_strings.h"

int svm_keys_handler(request_rec *r)
{
    svm_srv_conf *sc;
    svm_staff *st;
    ap_dbd_t *dbd;
    svm_rows res;
    apr_dbd_row_t *row;
    sv_status_resp ds;
    const void *args[] = { NULL };
    int n = 0;

    if (!r->handler || strcmp(r->handler, SVM_HANDLER_KEYS) != 0)
        return DECLINED;
    sc = svm_conf(r->server);
    if (sc->fields->nelts == 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02101: handler splitvault-keys is set "
                      "but this server has no SplitVault configuration");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!(st = svm_session_get(r, sc))) {
        if (r->method_number == M_GET)
            return svm_redirect(r, svm_url(r, sc, "/staff/login"));
        return svm_page_message(r, sc, HTTP_FORBIDDEN, "Not signed in",
                                "Sign in as an administrator first.", NULL);
    }
    if (!st->can_admin) {
        if ((dbd = svm_db(r)))
            svm_audit(r, dbd, st->name, "keys-view", NULL, NULL, "denied", "not an admin");
        return svm_page_message(r, sc, HTTP_FORBIDDEN, "Not permitted",
                                "Only administrators may open the key location.", st);
    }
    if (r->method_number != M_GET) {
        apr_table_setn(r->err_headers_out, "Allow", "GET");
        return svm_page_message(r, sc, HTTP_METHOD_NOT_ALLOWED, "Not allowed",
                                "This address does not accept that kind of request.", st);
    }
    if (!(dbd = svm_db(r)) || svm_db_select(r, dbd, "svm_key1_list", &res, args))
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Keys unavailable",
                                "The database is unreachable; please try again.", st);
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, "Keys", st);
    ap_rputs("<h1>Keys</h1>\n<h2>Registered key1 public keys</h2>\n<table><thead><tr>"
             "<th scope=\"col\">Fingerprint (SHA-256)</th><th scope=\"col\">Active</th>"
             "<th scope=\"col\">Registered (UTC)</th><th scope=\"col\">By</th></tr></thead>"
             "<tbody>\n", r);
    while ((row = svm_db_row(r, dbd, &res))) {
        n++;
        ap_rprintf(r, "<tr><td class=\"mono\">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 0)),
                   *svm_db_col(r, dbd, row, 1) == 't' ? "yes" : "no",
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 2)),
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 3)));
    }
    if (!n)
        ap_rputs("<tr><td colspan=\"4\">None: intake is refused until a key1 public key is "
                 "registered (splitvault-admin key1-register).</td></tr>\n", r);
    ap_rputs("</tbody></table>\n<h2>Daemon</h2>\n", r);
    if (svm_daemon_status(r, sc, &ds) == APR_SUCCESS)
        ap_rprintf(r, "<p>Reachable. %s Queue: %u of %u. Shares: %" APR_UINT64_T_FMT
                   " active, %" APR_UINT64_T_FMT " pending.</p>\n",
                   ds.locked ? "<strong class=\"error\">LOCKED DOWN: decryption refused "
                   "until the sysadmin unlocks it.</strong>" : "Not locked down.",
                   (unsigned)ds.queue_len, (unsigned)ds.queue_max,
                   (apr_uint64_t)ds.shares_active, (apr_uint64_t)ds.shares_pending);
    else
        ap_rputs("<p class=\"error\">Unreachable: new submissions are refused until the "
                 "daemon is back.</p>\n", r);
    svm_page_end(r);
    return OK;
}
