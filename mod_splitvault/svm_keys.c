/*
 * svm_keys.c - handler "splitvault-keys": the admin key location.
 *
 * Signed-in admins (can_admin) see the registered key1 public keys, which
 * of them are loaded in this server's shared memory (since when, by whom),
 * and the daemon's status (reachable, locked down, queue). POST actions,
 * each with the session's CSRF token:
 *
 *   action=upload  a key1 PEM (file input "key1file" in a multipart form,
 *                  or pasted text "key1pem") and its "passphrase": loaded
 *                  only when its public half is a registered key1 public
 *                  key; a valid but unregistered key is a substitution
 *                  attempt and is refused. The body holding the PEM and the
 *                  passphrase is cleansed as soon as the key is decoded.
 *                  Refused when SplitVaultKey1WholeFile is Off.
 *   action=forget  "fingerprint": wipe that loaded key from shared memory (a
 *                  pending set of its shares is left alone: share-discard).
 *   action=share, action=share-discard
 *                  key1 under dual control, one admin's share at a time
 *                  (svm_shares.c).
 *
 * "kind" is "whole" (the default, and the only one). Every upload, share,
 * refusal and forget is audited (fingerprints only, never key material),
 * and so is a pending set a whole key supersedes; each view of the page,
 * and each share or discard once its body is wiped, first audits the sets
 * of shares that expired since (svm_shares_audit_gone). The sysadmin additionally fences this location with Require.
 * svm_route.c checks the route (session, can_admin, method) and reads the
 * POST's secret upload body and its CSRF token before svm_keys_post runs.
 */
#include "svm.h"
#include "svm_keys.h"
#include "svm_audit.h"
#include "svm_config.h"
#include "svm_daemon.h"
#include "svm_dbal.h"
#include "svm_db.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_key1.h"
#include "svm_parse.h"
#include "svm_session.h"
#include "svm_shares.h"
#include "svm_shm.h"
#include "svm_upload.h"

#include "sv_keyfile.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include "sv_secret.h"

/* The first non-empty value among the names given, or NULL. */
static const svm_pair *svm_pick(const apr_array_header_t *pairs, const char *a, const char *b)
{
    const svm_pair *p = svm_form_get(pairs, a);

    if (p && p->len)
        return p;
    p = svm_form_get(pairs, b);
    return p && p->len ? p : NULL;
}

/* A refusal page after an upload: audited, nothing kept. */
static int svm_upload_refused(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                              ap_dbd_t *dbd, int status, const char *detail, const char *msg)
{
    if (dbd)
        svm_audit(r, dbd, st->name, "key1-upload", NULL, NULL, "refused", detail);
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02102: key1 upload by %s refused: %s",
                  st->name, detail);
    return svm_page_message(r, sc, status, "Key not loaded",
                            apr_pstrcat(r->pool, msg, " Nothing was loaded; the attempt is "
                                        "recorded in the audit log.", NULL), st);
}

/* action=upload. The body is wiped before anything slow or fallible that
 * does not need it. */
static int svm_keys_upload(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                           svm_upload *u)
{
    const svm_pair *pem = svm_pick(u->pairs, "key1file", "key1pem");
    const svm_pair *pass = svm_form_get(u->pairs, "passphrase");
    const svm_pair *kind = svm_form_get(u->pairs, "kind");
    unsigned char *sk = svm_secret_palloc(r->pool, SV_X25519_LEN);
    unsigned char pk[SV_X25519_LEN], reg[SV_X25519_LEN];
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    const char *detail;
    ap_dbd_t *dbd = svm_db(r);
    svm_key1_pending_info displaced;
    int found, replaced = 0;
    apr_status_t rv;
    sv_status kst;

    if (!sc->key1_whole_file) {
        svm_upload_wipe(u);
        return svm_upload_refused(r, sc, st, dbd, HTTP_FORBIDDEN,
                                  "whole-file upload is off (SplitVaultKey1WholeFile Off)",
                                  "This server loads key1 only from the shares of several "
                                  "administrators (dual control): a whole key file is "
                                  "refused.");
    }
    if (kind && strcmp(kind->value, "whole") != 0) {
        svm_upload_wipe(u);
        return svm_upload_refused(r, sc, st, dbd, HTTP_BAD_REQUEST, "unsupported kind",
                                  "Give a share with the share form, not the key file "
                                  "form.");
    }
    if (!pem) {
        svm_upload_wipe(u);
        return svm_upload_refused(r, sc, st, dbd, HTTP_BAD_REQUEST, "no key file",
                                  "Choose the key1 file (or paste its PEM text).");
    }
    kst = sv_key1_private_from_pem(pem->value, pem->len, pass && pass->len ? pass->value : NULL,
                                   pass ? pass->len : 0, sk, pk);
    svm_upload_wipe(u); /* the PEM and the passphrase: gone now */
    switch (kst) {
    case SV_OK:
        break;
    case SV_ERR_KEY_PASSPHRASE:
        return svm_upload_refused(r, sc, st, dbd, HTTP_FORBIDDEN, "wrong passphrase",
                                  "The passphrase does not open this key file.");
    case SV_ERR_KEY_NEED_PASS:
        return svm_upload_refused(r, sc, st, dbd, HTTP_BAD_REQUEST, "passphrase missing",
                                  "This key file is encrypted: enter its passphrase.");
    case SV_ERR_KEY_TYPE:
        return svm_upload_refused(r, sc, st, dbd, HTTP_BAD_REQUEST, "not an X25519 private key",
                                  "This is a key, but not an X25519 private key such as "
                                  "`openssl genpkey -algorithm X25519` writes.");
    case SV_ERR_KEY_KDF:
        return svm_upload_refused(r, sc, st, dbd, HTTP_BAD_REQUEST,
                                  "passphrase protection refused (unsupported or too costly)",
                                  apr_psprintf(r->pool, "This key file's passphrase "
                                               "protection was refused before any use: "
                                               "SplitVault accepts PBES2 with PBKDF2 (at most "
                                               "%d iterations) or scrypt (at most %lu MiB of "
                                               "memory, p at most %d), as `openssl genpkey "
                                               "-aes256` writes. Re-encrypt the file on your "
                                               "own machine with `openssl pkcs8 -topk8 -v2 "
                                               "aes-256-cbc -in key1.pem -out key1-new.pem`.",
                                               SV_KEYFILE_PBKDF2_ITER_MAX,
                                               (unsigned long)(SV_KEYFILE_SCRYPT_MEM_MAX >> 20),
                                               SV_KEYFILE_SCRYPT_P_MAX));
    case SV_ERR_KEY_TOO_LARGE:
    case SV_ERR_KEY_FORMAT:
    default:
        return svm_upload_refused(r, sc, st, dbd, HTTP_BAD_REQUEST, "not a key file",
                                  "This is not a PEM private key file.");
    }
    if (sv_key1_fingerprint(pk, fp) != SV_OK) {
        sv_cleanse(sk, SV_X25519_LEN);
        return svm_upload_refused(r, sc, st, dbd, HTTP_INTERNAL_SERVER_ERROR, "internal error",
                                  "The key could not be checked.");
    }
    if (!dbd) {
        sv_cleanse(sk, SV_X25519_LEN);
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Key not loaded",
                                "The database is unreachable, so the key cannot be checked "
                                "against the registered keys. Nothing was loaded.", st);
    }
    if ((found = svm_key1_registered(r, dbd, fp, reg)) < 0) {
        sv_cleanse(sk, SV_X25519_LEN);
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Key not loaded",
                                "The database failed while checking the key. Nothing "
                                "was loaded.", st);
    }
    found = found && sv_memcmp_ct(reg, pk, SV_X25519_LEN) == 0;
    if (!found) {
        sv_cleanse(sk, SV_X25519_LEN);
        detail = apr_pstrcat(r->pool, "key not registered: ", fp, NULL);
        return svm_upload_refused(r, sc, st, dbd, HTTP_FORBIDDEN, detail,
                                  "This key is not a registered key1 (its fingerprint is not "
                                  "in the database), so it cannot be used here.");
    }
    rv = svm_key1_load(r, sk, pk, fp, st->name, &replaced, &displaced);
    sv_cleanse(sk, SV_X25519_LEN);
    if (rv == APR_EBUSY)
        return svm_upload_refused(r, sc, st, dbd, HTTP_CONFLICT, "being loaded from shares",
                                  "This key1 is being loaded from shares right now.");
    if (rv == APR_ENOSPC)
        return svm_upload_refused(r, sc, st, dbd, HTTP_CONFLICT, "every key slot is in use",
                                  "Every key slot of this server is in use: forget a key "
                                  "first.");
    if (rv != APR_SUCCESS)
        return svm_upload_refused(r, sc, st, dbd, HTTP_SERVICE_UNAVAILABLE,
                                  "shared memory unavailable",
                                  "The key store of this server is unavailable.");
    svm_audit(r, dbd, st->name, "key1-upload", NULL, NULL, "ok",
              apr_pstrcat(r->pool, replaced ? "reloaded " : "loaded ", fp, NULL));
    if (displaced.have) {
        /* the whole key made a pending set of its shares moot: say whose */
        detail = apr_psprintf(r->pool, "key1 %s split %s started by %s: shares %s (%u of %u) "
                              "wiped by a whole-key load", fp, displaced.split,
                              displaced.starter, svm_shares_list(r->pool, &displaced),
                              displaced.have, displaced.need);
        svm_audit(r, dbd, st->name, "key1-share-discard", NULL, NULL, "superseded", detail);
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV02159: %s", detail);
    }
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV02103: key1 %s loaded by %s", fp,
                  st->name);
    return svm_redirect(r, apr_pstrcat(r->pool, ap_escape_uri(r->pool, r->uri), "?done=loaded",
                                       NULL));
}

/* action=forget. */
static int svm_keys_forget(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                           svm_upload *u)
{
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    ap_dbd_t *dbd = svm_db(r);
    apr_status_t rv;

    if (!svm_form_fingerprint(u->pairs, fp)) {
        svm_upload_wipe(u);
        return svm_page_message(r, sc, HTTP_BAD_REQUEST, "Not forgotten",
                                "Name the key by its fingerprint.", st);
    }
    svm_upload_wipe(u);
    rv = svm_key1_forget(r, fp);
    if (dbd)
        svm_audit(r, dbd, st->name, "key1-forget", NULL, NULL,
                  rv == APR_SUCCESS ? "ok" : rv == APR_NOTFOUND ? "not loaded" : "error",
                  apr_pstrcat(r->pool, "key1 ", fp, NULL));
    if (rv == APR_NOTFOUND)
        return svm_page_message(r, sc, HTTP_NOT_FOUND, "Not loaded",
                                "That key is not loaded on this server.", st);
    if (rv != APR_SUCCESS)
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not forgotten",
                                "The key store of this server is unavailable.", st);
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV02104: key1 %s forgotten by %s", fp,
                  st->name);
    return svm_redirect(r, apr_pstrcat(r->pool, ap_escape_uri(r->pool, r->uri),
                                       "?done=forgotten", NULL));
}

const char *svm_keys_audit_action(const apr_array_header_t *pairs)
{
    const svm_pair *a = svm_form_get(pairs, "action");

    if (!a)
        return "key1-post";
    if (strcmp(a->value, "upload") == 0)
        return "key1-upload";
    if (strcmp(a->value, "forget") == 0)
        return "key1-forget";
    if (strcmp(a->value, "share") == 0)
        return "key1-share";
    if (strcmp(a->value, "share-discard") == 0)
        return "key1-share-discard";
    return "key1-post";
}

int svm_keys_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_upload *u)
{
    const svm_pair *a = svm_form_get(u->pairs, "action");

    if (a && strcmp(a->value, "upload") == 0)
        return svm_keys_upload(r, sc, st, u);
    if (a && strcmp(a->value, "forget") == 0)
        return svm_keys_forget(r, sc, st, u);
    if (a && strcmp(a->value, "share") == 0)
        return svm_shares_post(r, sc, st, u);
    if (a && strcmp(a->value, "share-discard") == 0)
        return svm_shares_discard(r, sc, st, u);
    svm_upload_wipe(u);
    return svm_page_message(r, sc, HTTP_BAD_REQUEST, "Request refused", "Unknown action.", st);
}

/* The pending set of fp, or NULL. */
static const svm_key1_pending_info *svm_pending(const svm_key1_pending_info *l, int n,
                                                const char *fp)
{
    int i;

    for (i = 0; i < n; i++)
        if (strcmp(l[i].fp, fp) == 0)
            return &l[i];
    return NULL;
}

/* The loaded-keys entry for fp, or NULL. */
static const svm_key1_info *svm_loaded(const svm_key1_info *l, int n, const char *fp)
{
    int i;

    for (i = 0; i < n; i++)
        if (strcmp(l[i].fp, fp) == 0)
            return &l[i];
    return NULL;
}

/* The state of each daemon of SplitVaultDaemon (svm_dbal.c): nothing
 * secret, no count of what was stored. */
static void svm_daemons_table(request_rec *r, const svm_srv_conf *sc)
{
    int n = sc->daemons->nelts, i;
    svm_dbal_info *di = apr_pcalloc(r->pool, n * sizeof(*di));

    if (svm_dbal_info_get(r, sc, di) < 0) {
        ap_rputs("<p class=\"error\">The daemons' state is not available in this "
                 "process.</p>\n", r);
        return;
    }
    ap_rputs("<table id=\"daemons\"><thead><tr><th>Daemon</th><th>State</th>"
             "<th>Outstanding</th><th>Failures</th><th>Last error</th><th>Since</th>"
             "<th>Requests</th></tr></thead><tbody>\n", r);
    for (i = 0; i < n; i++) {
        const svm_daemon_ep *ep = &APR_ARRAY_IDX(sc->daemons, i, svm_daemon_ep);
        const char *state = di[i].up ? "up" : apr_psprintf(r->pool, "failed (tried again "
                                                           "from %s)", svm_time_utc(r->pool,
                                                           di[i].next_probe, "%H:%M:%S"));

        ap_rprintf(r, "<tr class=\"daemon\"><td class=\"mono\">%s</td>"
                   "<td class=\"state\">%s</td><td>%u</td><td>%u</td><td>%s</td><td>%s</td>"
                   "<td>%" APR_UINT64_T_FMT "</td></tr>\n",
                   svm_esc(r->pool, ep->addr), state, (unsigned)di[i].outstanding,
                   (unsigned)di[i].failures,
                   di[i].err == SVM_DERR_NONE ? "" : svm_derr_name(di[i].err),
                   di[i].since ? svm_time_utc(r->pool, di[i].since, "%Y-%m-%d %H:%M:%S")
                   : "start", di[i].served);
    }
    ap_rputs("</tbody></table>\n", r);
}

/* GET: the page. */
int svm_keys_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st)
{
    ap_dbd_t *dbd;
    svm_rows res;
    apr_dbd_row_t *row;
    sv_status_resp ds;
    svm_key1_info loaded[SVM_KEY1_SLOTS];
    svm_key1_pending_info pending[SVM_KEY1_SLOTS];
    const void *args[] = { NULL };
    const char *done = svm_query_arg(r, "done");
    const char *self = svm_esc(r->pool, ap_escape_uri(r->pool, r->uri));
    int n = 0, nl, np, i, seen[SVM_KEY1_SLOTS] = { 0 }, unpinned = 0;

    if ((dbd = svm_db(r)))
        svm_shares_audit_gone(r, dbd); /* before the list's result set is open */
    if (!dbd || svm_db_select(r, dbd, "svm_key1_list", &res, args))
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Keys unavailable",
                                "The database is unreachable; please try again.", st);
    nl = svm_key1_slots(r, loaded);
    np = nl < 0 ? 0 : svm_key1_pending(r, pending);
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, "Keys", st);
    ap_rputs("<h1>Keys</h1>\n", r);
    if (done && strcmp(done, "loaded") == 0)
        ap_rputs("<p class=\"note\" role=\"status\">key1 is loaded.</p>\n", r);
    else if (done && strcmp(done, "forgotten") == 0)
        ap_rputs("<p class=\"note\" role=\"status\">key1 was wiped from this server's "
                 "memory.</p>\n", r);
    else if (done && strcmp(done, "share") == 0)
        ap_rputs("<p class=\"note\" role=\"status\">Your share was accepted; key1 is "
                 "loaded when enough administrators have given theirs.</p>\n", r);
    else if (done && strcmp(done, "discarded") == 0)
        ap_rputs("<p class=\"note\" role=\"status\">The pending shares were wiped.</p>\n",
                 r);
    if (nl < 0)
        ap_rputs("<p class=\"error\">The key store of this server is unavailable.</p>\n", r);
    else if (nl == 0)
        ap_rputs("<p class=\"error\" role=\"status\">No key1 is loaded on this server: "
                 "decryption is unavailable until an administrator loads it below. "
                 "(Submissions are accepted all the same.)</p>\n", r);
    ap_rputs("<h2>Registered key1 public keys</h2>\n<table><thead><tr>"
             "<th scope=\"col\">Fingerprint (SHA-256)</th><th scope=\"col\">Active</th>"
             "<th scope=\"col\">Registered (UTC)</th><th scope=\"col\">By</th>"
             "<th scope=\"col\">Fields wrapped to it</th>"
             "<th scope=\"col\">Loaded here</th></tr></thead><tbody>\n", r);
    while ((row = svm_db_row(r, dbd, &res))) {
        const char *fp = svm_db_col(r, dbd, row, 0);
        const svm_key1_info *li = nl > 0 ? svm_loaded(loaded, nl, fp) : NULL;
        const svm_key1_pending_info *pi = np > 0 ? svm_pending(pending, np, fp) : NULL;
        n++;
        if (*svm_db_col(r, dbd, row, 1) == 't' && !svm_key1_pinned(sc, fp))
            unpinned = 1;
        if (li)
            seen[li - loaded] = 1;
        ap_rprintf(r, "<tr><td class=\"mono\">%s</td><td>%s</td><td>%s</td><td>%s</td>"
                   "<td class=\"fields\">%s</td>",
                   svm_esc(r->pool, fp), *svm_db_col(r, dbd, row, 1) == 't' ? "yes" : "no",
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 2)),
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 3)),
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 4)));
        if (li)
            ap_rprintf(r, "<td class=\"loaded\">loaded since %s UTC by %s "
                       "<form method=\"post\" action=\"%s\"><input type=\"hidden\" "
                       "name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"action\" "
                       "value=\"forget\"><input type=\"hidden\" name=\"fingerprint\" "
                       "value=\"%s\"><button type=\"submit\" class=\"secondary\">Forget"
                       "</button></form></td></tr>\n",
                       svm_time_utc(r->pool, li->since, "%Y-%m-%d %H:%M"), svm_esc(r->pool, li->by), self,
                       svm_esc(r->pool, st->csrf), svm_esc(r->pool, li->fp));
        else if (pi)
            svm_shares_progress(r, pi, self, st->csrf);
        else
            ap_rputs("<td>no</td></tr>\n", r);
    }
    if (!n)
        ap_rputs("<tr><td colspan=\"6\">None: intake is refused until a key1 public key is "
                 "registered (splitvault-admin key1-register).</td></tr>\n", r);
    ap_rputs("</tbody></table>\n", r);
    if (unpinned)
        ap_rputs("<p class=\"error\" role=\"status\">The active key1 is not one of the "
                 "fingerprints this server is configured to trust (SplitVaultKey1Pin): "
                 "submissions and decryptions are refused until the sysadmin pins it, or the "
                 "pinned key is made active again. If nobody meant to activate it, treat the "
                 "database as compromised.</p>\n", r);
    for (i = 0; i < nl; i++) {
        /* loaded, but no longer registered: still offer to forget it */
        if (seen[i])
            continue;
        ap_rprintf(r, "<p>Also loaded (not registered any more): <span class=\"mono\">%s"
                   "</span> <form method=\"post\" action=\"%s\"><input type=\"hidden\" "
                   "name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"action\" "
                   "value=\"forget\"><input type=\"hidden\" name=\"fingerprint\" value=\"%s\">"
                   "<button type=\"submit\" class=\"secondary\">Forget</button></form></p>\n",
                   svm_esc(r->pool, loaded[i].fp), self, svm_esc(r->pool, st->csrf),
                   svm_esc(r->pool, loaded[i].fp));
    }
    svm_shares_form(r, sc, self, st->csrf);
    if (sc->key1_whole_file)
        ap_rprintf(r, "<h2>Load key1 from its file</h2>\n<p class=\"hint\">The key file "
                   "is the one made with "
                   "<code>openssl genpkey -algorithm X25519 -aes256 -out key1.pem</code>. It is "
                   "accepted only when its public half is registered, is kept in this server's "
                   "memory only (never on disk) until Apache stops, and survives a graceful "
                   "restart.</p>\n"
                   "<form method=\"post\" action=\"%s\" enctype=\"multipart/form-data\" "
                   "autocomplete=\"off\"><input type=\"hidden\" name=\"csrf\" value=\"%s\">"
                   "<input type=\"hidden\" name=\"action\" value=\"upload\">"
                   "<input type=\"hidden\" name=\"kind\" value=\"whole\">"
                   "<label for=\"key1file\">key1 file (PEM)</label>"
                   "<input type=\"file\" id=\"key1file\" name=\"key1file\">"
                   "<label for=\"key1pem\">or paste its text</label>"
                   "<textarea id=\"key1pem\" name=\"key1pem\" spellcheck=\"false\"></textarea>"
                   "<label for=\"passphrase\">Passphrase</label>"
                   "<input type=\"password\" id=\"passphrase\" name=\"passphrase\" "
                   "autocomplete=\"off\">"
                   "<button type=\"submit\">Load key1</button></form>\n",
                   self, svm_esc(r->pool, st->csrf));
    ap_rputs("<h2>Daemon</h2>\n", r);
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
    svm_daemons_table(r, sc);
    svm_page_end(r);
    return OK;
}
