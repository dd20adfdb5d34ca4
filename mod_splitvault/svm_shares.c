/*
 * svm_shares.c - key1 under dual control at the key location.
 *
 * `splitvault-admin key1-split` cuts key1's private half into n shares with
 * threshold k (lib/sv_share.h), each sealed under its holder's passphrase.
 * Here each admin uploads their own share (action=share): it is opened in
 * secret memory (the body holding the file and the passphrase is cleansed
 * right after), checked, and kept in the key1 segment (svm_shm.c) in its
 * key's pending set. When k shares from k different admins are present,
 * the set moves out of the segment, is combined, checked against the
 * registered public key and loaded as a whole-file upload loads key1.
 *
 * What comes in, and what is refused (each audited as action key1-share,
 * never with a share byte or a passphrase):
 *
 *   - a file that is not a share, a wrong passphrase or an altered file (the
 *     AEAD cannot tell these two apart);
 *   - a share whose file names a Holder other than the signed-in admin: a
 *     stolen file is not a stolen role;
 *   - a split with a threshold below SplitVaultKey1MinShares;
 *   - a share of a key1 that is not registered, or that is loaded already;
 *   - a share of another split of the same key1 while a set is pending
 *     (an admin discards the set first: action=share-discard);
 *   - an index another admin gave already.
 *
 * One admin counts once: a second share from the same admin replaces the
 * first (audited "replaced"); the set's expiry is not moved. A set expires
 * SplitVaultKey1ShareTimeout after its first share (svm_shm.c wipes it; the
 * audit rows of expiries are written here at the next view of the key
 * location). A combination that does not give the registered key wipes
 * the set and loads nothing, and the audit row says who gave which index.
 */
#include "svm.h"
#include "svm_shares.h"
#include "svm_audit.h"
#include "svm_config.h"
#include "svm_db.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_session.h"
#include "svm_shm.h"
#include "svm_upload.h"

#include "http_protocol.h"
#include "apr_strings.h"

#include "sv_keyfile.h"
#include "sv_secret.h"
#include "sv_share.h"

/* "HH:MM:SS" of t in UTC. */
static const char *svm_hms_utc(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t e;
    char buf[16];
    apr_size_t n = 0;

    if (apr_time_exp_gmt(&e, t) != APR_SUCCESS
        || apr_strftime(buf, &n, sizeof(buf), "%H:%M:%S", &e) != APR_SUCCESS)
        return "?";
    return apr_pstrmemdup(p, buf, n);
}

/* "1 (ada), 3 (bob)": who gave which index, for the audit log. */
static const char *svm_parts_list(apr_pool_t *p, const svm_key1_pending_info *pi)
{
    const char *out = "";
    unsigned i;

    for (i = 0; i < pi->have && i < SVM_KEY1_PARTS; i++)
        out = apr_psprintf(p, "%s%s%u (%s)", out, i ? ", " : "", pi->part[i].index,
                           pi->part[i].by);
    return out;
}

/* "ada", "ada and bob", "ada, bob and cy" (not escaped). */
static const char *svm_parts_names(apr_pool_t *p, const svm_key1_pending_info *pi)
{
    const char *out = "";
    unsigned i;

    for (i = 0; i < pi->have && i < SVM_KEY1_PARTS; i++)
        out = apr_pstrcat(p, out, i == 0 ? "" : i + 1 == pi->have ? " and " : ", ",
                          pi->part[i].by, NULL);
    return out;
}

/* A refusal: audited, logged, nothing kept. */
static int svm_share_refused(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                             ap_dbd_t *dbd, int status, const char *detail, const char *msg)
{
    if (dbd)
        svm_audit(r, dbd, st->name, "key1-share", NULL, NULL, "refused", detail);
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02150: key1 share from %s refused: %s",
                  st->name, detail);
    return svm_page_message(r, sc, status, "Share not accepted",
                            apr_pstrcat(r->pool, msg, " Nothing was kept; the attempt is "
                                        "recorded in the audit log.", NULL), st);
}

/* The registered public key of fp into pub: 1 found, 0 not registered,
 * -1 database failure (logged by svm_db). */
static int svm_share_registered(request_rec *r, ap_dbd_t *dbd, const char *fp,
                                unsigned char pub[SV_X25519_LEN])
{
    const void *args[] = { fp };
    unsigned char reg[SV_X25519_LEN];
    svm_rows res;
    apr_dbd_row_t *row;
    int found = 0;

    if (svm_db_select(r, dbd, "svm_key1_get", &res, args))
        return -1;
    while ((row = svm_db_row(r, dbd, &res)))
        if (!found && svm_hex_decode(svm_db_col(r, dbd, row, 0), reg, sizeof(reg)) == 0) {
            char rfp[SV_FINGERPRINT_HEX_LEN + 1];
            /* the row's key must have the fingerprint it is filed under */
            if (sv_key1_fingerprint(reg, rfp) == SV_OK && strcmp(rfp, fp) == 0) {
                memcpy(pub, reg, SV_X25519_LEN);
                found = 1;
            }
        }
    return found;
}

/* k shares are in: combine, check, load. parts is cleansed here. */
static int svm_shares_assemble(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                               ap_dbd_t *dbd, const svm_key1_pending_info *pi,
                               sv_share *parts, const unsigned char reg[SV_X25519_LEN])
{
    const sv_share *ptrs[SVM_KEY1_PARTS];
    unsigned char *sk = svm_secret_palloc(r->pool, SV_X25519_LEN);
    unsigned char pk[SV_X25519_LEN];
    const char *who = svm_parts_list(r->pool, pi);
    char by[SV_WIRE_MAX_ACTOR + 1];
    sv_status sst;
    apr_status_t rv;
    unsigned i;
    int replaced = 0;

    for (i = 0; i < pi->have; i++)
        ptrs[i] = &parts[i];
    sst = sv_share_combine(ptrs, pi->have, sk, pk);
    sv_cleanse(parts, SVM_KEY1_PARTS * sizeof(*parts));
    if (sst != SV_OK || sv_memcmp_ct(pk, reg, SV_X25519_LEN) != 0) {
        const char *detail = apr_psprintf(r->pool, "key1 %s: shares %s do not give the "
                                          "registered key (%s); set wiped, nothing loaded",
                                          pi->fp, who, sv_strerror(sst == SV_OK
                                          ? SV_ERR_KEY_MISMATCH : sst));
        sv_cleanse(sk, SV_X25519_LEN);
        if (dbd)
            svm_audit(r, dbd, st->name, "key1-share", NULL, NULL, "failed", detail);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02151: %s", detail);
        return svm_page_message(r, sc, HTTP_CONFLICT, "Key not loaded",
                                "The shares combine to something that is not the registered "
                                "key1: one of them is not what it claims. The pending shares "
                                "were wiped and nothing was loaded; who gave which share is "
                                "recorded in the audit log.", st);
    }
    /* "shares of ada, bob", cut to the length of a staff name */
    apr_cpystrn(by, apr_pstrcat(r->pool, "shares of ", svm_parts_names(r->pool, pi), NULL),
                sizeof(by));
    rv = svm_key1_load(r, sk, pk, pi->fp, by, &replaced);
    sv_cleanse(sk, SV_X25519_LEN);
    if (rv != APR_SUCCESS) {
        const char *detail = apr_psprintf(r->pool, "key1 %s: shares %s: %s; nothing loaded",
                                          pi->fp, who, rv == APR_ENOSPC
                                          ? "every key slot is in use"
                                          : "shared memory unavailable");
        if (dbd)
            svm_audit(r, dbd, st->name, "key1-share", NULL, NULL, "failed", detail);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02152: %s", detail);
        return svm_page_message(r, sc, rv == APR_ENOSPC ? HTTP_CONFLICT
                                : HTTP_SERVICE_UNAVAILABLE, "Key not loaded",
                                "The shares were complete, but the key store of this server "
                                "could not take the key. The shares were wiped; nothing was "
                                "loaded.", st);
    }
    if (dbd)
        svm_audit(r, dbd, st->name, "key1-share", NULL, NULL, "loaded",
                  apr_psprintf(r->pool, "key1 %s loaded from shares %s", pi->fp, who));
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV02153: key1 %s loaded from shares %s",
                  pi->fp, who);
    return svm_redirect(r, apr_pstrcat(r->pool, ap_escape_uri(r->pool, r->uri),
                                       "?done=loaded", NULL));
}

int svm_shares_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_upload *u)
{
    const svm_pair *file = svm_form_get(u->pairs, "sharefile");
    const svm_pair *pass = svm_form_get(u->pairs, "passphrase");
    sv_share *s = svm_secret_palloc(r->pool, sizeof(*s));
    sv_share *parts = svm_secret_palloc(r->pool, SVM_KEY1_PARTS * sizeof(*parts));
    unsigned char reg[SV_X25519_LEN];
    svm_key1_pending_info pi;
    ap_dbd_t *dbd = svm_db(r);
    const char *what;
    svm_part_result pr;
    sv_status sst;
    int found;

    if (!file || !file->len)
        file = svm_form_get(u->pairs, "sharetext");
    if (!file || !file->len) {
        svm_upload_wipe(u);
        return svm_share_refused(r, sc, st, dbd, HTTP_BAD_REQUEST, "no share file",
                                 "Choose your share file.");
    }
    /* the headers first (no secret in them), to name the share in the audit */
    if ((sst = sv_share_peek(file->value, file->len, s)) != SV_OK) {
        svm_upload_wipe(u);
        if (sst == SV_ERR_KEY_KDF)
            return svm_share_refused(r, sc, st, dbd, HTTP_BAD_REQUEST,
                                     "passphrase protection refused (too costly)",
                                     "This share file's passphrase protection costs more "
                                     "than SplitVault accepts; it was refused before any "
                                     "use.");
        return svm_share_refused(r, sc, st, dbd, HTTP_BAD_REQUEST, "not a share file",
                                 "This is not a key1 share file (as splitvault-admin "
                                 "key1-split writes them).");
    }
    what = apr_psprintf(r->pool, "key1 %s share %u of split %u of %u", s->fp, s->index,
                        s->k, s->n);
    if (!pass || !pass->len) {
        svm_upload_wipe(u);
        sv_share_wipe(s);
        return svm_share_refused(r, sc, st, dbd, HTTP_BAD_REQUEST,
                                 apr_pstrcat(r->pool, "passphrase missing: ", what, NULL),
                                 "Enter the passphrase of your share file.");
    }
    sst = sv_share_open(file->value, file->len, pass->value, pass->len, s);
    svm_upload_wipe(u); /* the share file and its passphrase: gone now */
    if (sst != SV_OK) {
        sv_share_wipe(s);
        if (sst == SV_ERR_SHARE_OPEN)
            return svm_share_refused(r, sc, st, dbd, HTTP_FORBIDDEN,
                                     apr_pstrcat(r->pool, "wrong passphrase or altered file: ",
                                                 what, NULL),
                                     "The passphrase does not open this share file, or the "
                                     "file was altered.");
        return svm_share_refused(r, sc, st, dbd, HTTP_BAD_REQUEST,
                                 apr_pstrcat(r->pool, "not a share file: ", what, NULL),
                                 "This share file could not be read.");
    }
    if (s->holder[0] && strcmp(s->holder, st->name) != 0) {
        const char *holder = apr_pstrdup(r->pool, s->holder);
        sv_share_wipe(s);
        return svm_share_refused(r, sc, st, dbd, HTTP_FORBIDDEN,
                                 apr_psprintf(r->pool, "holder mismatch (the file names %s): "
                                              "%s", holder, what),
                                 apr_psprintf(r->pool, "This share belongs to %s: only that "
                                              "administrator, signed in, may give it.",
                                              svm_esc(r->pool, holder)));
    }
    if (s->k < (unsigned)sc->key1_min_shares) {
        sv_share_wipe(s);
        return svm_share_refused(r, sc, st, dbd, HTTP_FORBIDDEN,
                                 apr_psprintf(r->pool, "below minimum (%d shares): %s",
                                              sc->key1_min_shares, what),
                                 apr_psprintf(r->pool, "This key1 was split so that %u "
                                              "shares open it; this server requires at least "
                                              "%d (SplitVaultKey1MinShares).", s->k,
                                              sc->key1_min_shares));
    }
    if (!dbd || (found = svm_share_registered(r, dbd, s->fp, reg)) < 0) {
        sv_share_wipe(s);
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Share not accepted",
                                "The database is unreachable, so the share cannot be checked "
                                "against the registered keys. Nothing was kept.", st);
    }
    if (!found) {
        sv_share_wipe(s);
        return svm_share_refused(r, sc, st, dbd, HTTP_FORBIDDEN,
                                 apr_pstrcat(r->pool, "key not registered: ", what, NULL),
                                 "This share is of a key that is not a registered key1.");
    }
    pr = svm_key1_part_add(r, s, st->name, apr_time_from_sec(sc->key1_share_timeout), &pi,
                           parts);
    sv_share_wipe(s);
    switch (pr) {
    case SVM_PART_ADDED:
    case SVM_PART_REPLACED:
    case SVM_PART_COMPLETE:
        break;
    case SVM_PART_IS_LOADED:
        return svm_share_refused(r, sc, st, dbd, HTTP_CONFLICT,
                                 apr_pstrcat(r->pool, "already loaded: ", what, NULL),
                                 "This key1 is loaded on this server already.");
    case SVM_PART_OTHER_SPLIT:
        return svm_share_refused(r, sc, st, dbd, HTTP_CONFLICT,
                                 apr_psprintf(r->pool, "other split: %s, while shares %s of "
                                              "another split are pending", what,
                                              svm_parts_list(r->pool, &pi)),
                                 "Shares of another split of this key1 are pending: all "
                                 "shares of one load must come from the same split. Discard "
                                 "the pending shares first if this split is the one to use.");
    case SVM_PART_DUP_INDEX:
        return svm_share_refused(r, sc, st, dbd, HTTP_CONFLICT,
                                 apr_psprintf(r->pool, "duplicate index: %s, pending shares "
                                              "%s", what, svm_parts_list(r->pool, &pi)),
                                 "Another administrator has given this same share already: "
                                 "each share counts once.");
    case SVM_PART_NOSPACE:
        return svm_share_refused(r, sc, st, dbd, HTTP_CONFLICT,
                                 apr_pstrcat(r->pool, "every key slot is in use: ", what, NULL),
                                 "Every key slot of this server is in use: forget a key or "
                                 "discard pending shares first.");
    case SVM_PART_ERROR:
    default:
        return svm_share_refused(r, sc, st, dbd, HTTP_SERVICE_UNAVAILABLE,
                                 apr_pstrcat(r->pool, "shared memory unavailable: ", what,
                                             NULL),
                                 "The key store of this server is unavailable.");
    }
    if (dbd)
        svm_audit(r, dbd, st->name, "key1-share", NULL, NULL,
                  pr == SVM_PART_REPLACED ? "replaced" : "ok",
                  apr_psprintf(r->pool, "%s: %u of %u%s", what, pi.have, pi.need,
                               pr == SVM_PART_REPLACED ? " (this admin's earlier share "
                               "replaced)" : ""));
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV02154: %s %s by %s: %u of %u", what,
                  pr == SVM_PART_REPLACED ? "replaced" : "accepted", st->name, pi.have,
                  pi.need);
    if (pr == SVM_PART_COMPLETE)
        return svm_shares_assemble(r, sc, st, dbd, &pi, parts, reg);
    return svm_redirect(r, apr_pstrcat(r->pool, ap_escape_uri(r->pool, r->uri), "?done=share",
                                       NULL));
}

int svm_shares_discard(request_rec *r, const svm_srv_conf *sc, svm_staff *st, svm_upload *u)
{
    const svm_pair *f = svm_form_get(u->pairs, "fingerprint");
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    svm_key1_pending_info pi;
    ap_dbd_t *dbd = svm_db(r);
    apr_status_t rv;

    if (!f || f->len != SV_FINGERPRINT_HEX_LEN
        || strspn(f->value, "0123456789abcdef") != SV_FINGERPRINT_HEX_LEN) {
        svm_upload_wipe(u);
        return svm_page_message(r, sc, HTTP_BAD_REQUEST, "Not discarded",
                                "Name the key by its fingerprint.", st);
    }
    apr_cpystrn(fp, f->value, sizeof(fp));
    svm_upload_wipe(u);
    rv = svm_key1_parts_discard(r, fp, &pi);
    if (dbd)
        svm_audit(r, dbd, st->name, "key1-share-discard", NULL, NULL,
                  rv == APR_SUCCESS ? "ok" : rv == APR_NOTFOUND ? "none pending" : "error",
                  rv == APR_SUCCESS
                  ? apr_psprintf(r->pool, "key1 %s: shares %s (%u of %u) wiped", fp,
                                 svm_parts_list(r->pool, &pi), pi.have, pi.need)
                  : apr_pstrcat(r->pool, "key1 ", fp, NULL));
    if (rv == APR_NOTFOUND)
        return svm_page_message(r, sc, HTTP_NOT_FOUND, "Nothing pending",
                                "No shares of that key are pending on this server.", st);
    if (rv != APR_SUCCESS)
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not discarded",
                                "The key store of this server is unavailable.", st);
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV02155: key1 %s: pending shares %s "
                  "discarded by %s", fp, svm_parts_list(r->pool, &pi), st->name);
    return svm_redirect(r, apr_pstrcat(r->pool, ap_escape_uri(r->pool, r->uri),
                                       "?done=discarded", NULL));
}

void svm_shares_audit_gone(request_rec *r, ap_dbd_t *dbd)
{
    svm_key1_pending_info gone[SVM_KEY1_GONE];
    unsigned dropped = 0;
    int n, i;

    if (!dbd || (n = svm_key1_gone_take(r, gone, &dropped)) <= 0)
        return;
    for (i = 0; i < n; i++)
        svm_audit(r, dbd, NULL, "key1-share", NULL, NULL, "expired",
                  apr_psprintf(r->pool, "key1 %s: shares %s (%u of %u) expired at %s UTC; "
                               "wiped", gone[i].fp, svm_parts_list(r->pool, &gone[i]),
                               gone[i].have, gone[i].need,
                               svm_hms_utc(r->pool, gone[i].expires)));
    if (dropped)
        svm_audit(r, dbd, NULL, "key1-share", NULL, NULL, "expired",
                  apr_psprintf(r->pool, "%u more set(s) of shares expired and were wiped "
                               "(see the error log)", dropped));
}

void svm_shares_progress(request_rec *r, const svm_key1_pending_info *pi, const char *self,
                         const char *csrf)
{
    ap_rprintf(r, "<td class=\"pending\">assembling: %u of %u shares, from %s, expires at %s "
               "UTC <form method=\"post\" action=\"%s\"><input type=\"hidden\" "
               "name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"action\" "
               "value=\"share-discard\"><input type=\"hidden\" name=\"fingerprint\" "
               "value=\"%s\"><button type=\"submit\" class=\"secondary\">Discard shares"
               "</button></form></td></tr>\n", pi->have, pi->need,
               svm_esc(r->pool, svm_parts_names(r->pool, pi)),
               svm_hms_utc(r->pool, pi->expires), self, svm_esc(r->pool, csrf),
               svm_esc(r->pool, pi->fp));
}

void svm_shares_form(request_rec *r, const svm_srv_conf *sc, const char *self,
                     const char *csrf)
{
    ap_rprintf(r, "<h2>Give your key1 share</h2>\n<p class=\"hint\">Under dual control, "
               "key1 is loaded when enough administrators, each signed in as themselves, "
               "have given their own share (a file <code>key1-&hellip;.share-N</code> "
               "from <code>splitvault-admin key1-split</code>) within %d seconds of the "
               "first. A share is kept in this server's memory only, never on disk.</p>\n"
               "<form method=\"post\" action=\"%s\" enctype=\"multipart/form-data\" "
               "autocomplete=\"off\"><input type=\"hidden\" name=\"csrf\" value=\"%s\">"
               "<input type=\"hidden\" name=\"action\" value=\"share\">"
               "<label for=\"sharefile\">Your share file</label>"
               "<input type=\"file\" id=\"sharefile\" name=\"sharefile\">"
               "<label for=\"sharetext\">or paste its text</label>"
               "<textarea id=\"sharetext\" name=\"sharetext\" spellcheck=\"false\">"
               "</textarea>"
               "<label for=\"sharepass\">Its passphrase</label>"
               "<input type=\"password\" id=\"sharepass\" name=\"passphrase\" "
               "autocomplete=\"off\">"
               "<button type=\"submit\">Give share</button></form>\n",
               sc->key1_share_timeout, self, svm_esc(r->pool, csrf));
}
