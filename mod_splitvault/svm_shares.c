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
 *   - a share file whose passphrase protection costs more than twice what
 *     key1-split writes (SVM_SHARE_KDF_MAX), before any scrypt; and while
 *     SVM_KEY1_OPENS share files are being opened already (503);
 *   - a share of a key1 that is not registered (a retired key1's row is
 *     gone), or that is loaded already;
 *   - a share of another split of the same key1 while a set is pending
 *     (the refusal names who started that set and its split id's first
 *     digits; an admin discards the set first: action=share-discard);
 *   - an index another admin gave already;
 *   - a new set from an admin who started another one that is pending, or
 *     one that would take the last free slot.
 *
 * One admin counts once: a second share from the same admin replaces the
 * first (audited "replaced"); the set's expiry is not moved. When k are
 * present, each giver is checked again in the database: a share of an
 * admin who was disabled or lost the admin capability meanwhile is
 * dropped (audited) and the set stays pending. A set expires
 * SplitVaultKey1ShareTimeout after its first share (svm_shm.c wipes it; the
 * audit rows of expiries are written here at the next request of the key
 * location: a view, or a share or discard after its body is wiped). A
 * combination that does not give the registered key wipes the set and
 * loads nothing, and the audit row says who gave which index.
 */
#include "svm.h"
#include "svm_shares.h"
#include "svm_audit.h"
#include "svm_config.h"
#include "svm_db.h"
#include "svm_fault.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_key1.h"
#include "svm_session.h"
#include "svm_shm.h"
#include "svm_upload.h"

#include "http_protocol.h"
#include "apr_strings.h"

#include "sv_keyfile.h"
#include "sv_secret.h"
#include "sv_share.h"

/* Share files: the most scrypt N*r*p accepted here, twice what key1-split
 * writes (N=2^15, r=8, p=1); lib/sv_share.c's own cap is the key files'. */
#define SVM_SHARE_KDF_MAX (2 * 32768ULL * 8)
#define SVM_SHARE_RETRY_AFTER "5"

/* The scrypt cost N*r*p a share file's KDF header names (no secret in the
 * headers), or 0 when there is no such line to read: sv_share_peek has
 * checked the format already, and sv_share_open reads it again. */
static unsigned long long svm_share_kdf_cost(const char *text, apr_size_t len)
{
    const char *p = text, *end = text + len;
    unsigned long long n = 0, rr = 0, pp = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        apr_size_t ll = (nl ? nl : end) - p;
        if (ll == 0)
            break; /* the headers end at the first empty line */
        if (ll > 12 && ll < 80 && strncmp(p, "KDF: scrypt ", 12) == 0) {
            char line[80];
            memcpy(line, p, ll);
            line[ll] = '\0';
            if (sscanf(line, "KDF: scrypt N=%llu r=%llu p=%llu", &n, &rr, &pp) != 3
                || !n || !rr || !pp || n > SVM_SHARE_KDF_MAX || rr > SVM_SHARE_KDF_MAX
                || pp > SVM_SHARE_KDF_MAX)
                return ~0ULL;
            return n * rr * pp;
        }
        p += ll + 1;
    }
    return 0;
}

/* "1 (ada), 3 (bob)": who gave which index, for the audit log. */
const char *svm_shares_list(apr_pool_t *p, const svm_key1_pending_info *pi)
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

/* k shares are in and the slot is LOADING: check that every giver is
 * still an enabled admin (a share of one who is not is dropped and the set
 * goes back to pending), combine, check, load into that slot. parts is
 * cleansed here. */
static int svm_shares_assemble(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                               ap_dbd_t *dbd, const svm_key1_pending_info *pi,
                               sv_share *parts, const unsigned char reg[SV_X25519_LEN])
{
    const sv_share *ptrs[SVM_KEY1_PARTS];
    unsigned char *sk = svm_secret_palloc(r->pool, SV_X25519_LEN);
    unsigned char pk[SV_X25519_LEN];
    const char *who = svm_shares_list(r->pool, pi), *gone = "";
    char by[SV_WIRE_MAX_ACTOR + 1];
    int keep[SVM_KEY1_PARTS];
    sv_status sst;
    apr_status_t rv;
    unsigned i, kept = 0;

#ifdef SV_TEST_HOOKS
    if (svm_test_fault(r) && strcmp(svm_test_fault(r), "share-assemble-slow") == 0) {
        /* a completion that takes its time, its slot LOADING */
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV02162: test build: a set of shares "
                      "held LOADING for 3 s");
        apr_sleep(apr_time_from_sec(3));
    }
#endif
    for (i = 0; i < pi->have; i++) {
        const void *args[] = { apr_psprintf(r->pool, "%" APR_INT64_T_FMT, pi->part[i].staff) };
        svm_rows res;

        if (!dbd || svm_db_select(r, dbd, "svm_staff_is_admin", &res, args)) {
            sv_cleanse(parts, SVM_KEY1_PARTS * sizeof(*parts));
            for (i = 0; i < pi->have; i++)
                keep[i] = 1;
            if (svm_key1_loading_end(r, pi->fp, keep) != APR_SUCCESS)
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02156: key1 %s: the set "
                              "of shares was lost while the database failed", pi->fp);
            return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Key not loaded",
                                    "The database failed while checking the administrators "
                                    "who gave the shares. The shares stay pending; give "
                                    "yours again later to complete the set.", st);
        }
        keep[i] = 0;
        while (svm_db_row(r, dbd, &res))
            keep[i] = 1;
        if (keep[i])
            kept++;
        else
            gone = apr_psprintf(r->pool, "%s%s%u (%s)", gone, *gone ? ", " : "",
                                pi->part[i].index, pi->part[i].by);
    }
    if (kept < pi->have) {
        const char *detail = apr_psprintf(r->pool, "key1 %s split %s: shares %s dropped (no "
                                          "longer an enabled admin); %u of %u remain pending",
                                          pi->fp, pi->split, gone, kept, pi->need);
        sv_cleanse(parts, SVM_KEY1_PARTS * sizeof(*parts));
        rv = svm_key1_loading_end(r, pi->fp, keep);
        svm_audit(r, dbd, st->name, "key1-share", NULL, NULL, "dropped", detail);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02157: %s", detail);
        return svm_page_message(r, sc, rv == APR_SUCCESS ? HTTP_CONFLICT
                                : HTTP_SERVICE_UNAVAILABLE, "Key not loaded",
                                apr_pstrcat(r->pool, "Your share was kept, but the shares "
                                            "of ", gone, " no longer count: that "
                                            "administrator is disabled or no longer an "
                                            "administrator. The set stays pending until "
                                            "enough administrators have given theirs.", NULL),
                                st);
    }
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
        svm_key1_loading_end(r, pi->fp, NULL);
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
    rv = svm_key1_load_shares(r, sk, pk, pi->fp, by);
    sv_cleanse(sk, SV_X25519_LEN);
    if (rv != APR_SUCCESS) {
        const char *detail = apr_psprintf(r->pool, "key1 %s: shares %s: %s; nothing loaded",
                                          pi->fp, who, rv == APR_NOTFOUND
                                          ? "the set timed out while it was combined"
                                          : "shared memory unavailable");
        if (rv != APR_NOTFOUND)
            svm_key1_loading_end(r, pi->fp, NULL);
        if (dbd)
            svm_audit(r, dbd, st->name, "key1-share", NULL, NULL, "failed", detail);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02152: %s", detail);
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Key not loaded",
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

/* The split id's first digits, as the page and the audit rows show them. */
static const char *svm_split_hex(apr_pool_t *p, const sv_share *s)
{
    char out[SVM_KEY1_SPLIT_HEX + 1];
    unsigned i;

    for (i = 0; i < SVM_KEY1_SPLIT_HEX / 2; i++)
        apr_snprintf(out + 2 * i, 3, "%02x", s->split[i]);
    return apr_pstrdup(p, out);
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
    apr_status_t rv;
    int found;

    if (!file || !file->len)
        file = svm_form_get(u->pairs, "sharetext");
    if (!file || !file->len) {
        svm_upload_wipe(u);
        return svm_share_refused(r, sc, st, dbd, HTTP_BAD_REQUEST, "no share file",
                                 "Choose your share file.");
    }
    /* the headers first (no secret in them), to name the share in the audit */
    if ((sst = sv_share_peek(file->value, file->len, s)) != SV_OK
        || svm_share_kdf_cost(file->value, file->len) > SVM_SHARE_KDF_MAX) {
        svm_upload_wipe(u);
        if (sst == SV_ERR_KEY_KDF || sst == SV_OK)
            return svm_share_refused(r, sc, st, dbd, HTTP_BAD_REQUEST,
                                     "passphrase protection refused (too costly)",
                                     "This share file's passphrase protection costs more "
                                     "than SplitVault accepts; it was refused before any "
                                     "use.");
        return svm_share_refused(r, sc, st, dbd, HTTP_BAD_REQUEST, "not a share file",
                                 "This is not a key1 share file (as splitvault-admin "
                                 "key1-split writes them).");
    }
    what = apr_psprintf(r->pool, "key1 %s share %u of split %s, %u of %u", s->fp, s->index,
                        svm_split_hex(r->pool, s), s->k, s->n);
    if (!pass || !pass->len) {
        svm_upload_wipe(u);
        sv_share_wipe(s);
        return svm_share_refused(r, sc, st, dbd, HTTP_BAD_REQUEST,
                                 apr_pstrcat(r->pool, "passphrase missing: ", what, NULL),
                                 "Enter the passphrase of your share file.");
    }
    /* scrypt costs tens of MiB and a fraction of a second: a few at once */
    if ((rv = svm_key1_open_begin(r)) != APR_SUCCESS) {
        svm_upload_wipe(u);
        sv_share_wipe(s);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, "SV02158: key1 share from %s not "
                      "opened: %d share files are being opened already", st->name,
                      SVM_KEY1_OPENS);
        apr_table_setn(r->err_headers_out, "Retry-After", SVM_SHARE_RETRY_AFTER);
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Share not accepted",
                                "Other share files are being opened right now. Nothing was "
                                "kept; please try again in a few seconds.", st);
    }
#ifdef SV_TEST_HOOKS
    if (svm_test_fault(r) && strcmp(svm_test_fault(r), "share-open-slow") == 0) {
        /* an opening that takes its time, holding its place */
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV02161: test build: a share file "
                      "opening held for 3 s");
        apr_sleep(apr_time_from_sec(3));
    }
#endif
    sst = sv_share_open(file->value, file->len, pass->value, pass->len, s);
    svm_key1_open_end(r);
    svm_upload_wipe(u); /* the share file and its passphrase: gone now */
    if (dbd)
        svm_shares_audit_gone(r, dbd); /* only now: the body is wiped */
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
                                              holder));
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
    if (!dbd || (found = svm_key1_registered(r, dbd, s->fp, reg)) < 0) {
        sv_share_wipe(s);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "SV02160: key1 share from %s refused "
                      "(not audited: the database is unreachable): %s", st->name, what);
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
    pr = svm_key1_part_add(r, s, st->name, st->id, apr_time_from_sec(sc->key1_share_timeout),
                           &pi, parts);
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
    case SVM_PART_LOADING:
        return svm_share_refused(r, sc, st, dbd, HTTP_CONFLICT,
                                 apr_pstrcat(r->pool, "being loaded: ", what, NULL),
                                 "This key1 is being loaded from shares right now.");
    case SVM_PART_OTHER_SPLIT:
        return svm_share_refused(r, sc, st, dbd, HTTP_CONFLICT,
                                 apr_psprintf(r->pool, "other split: %s, while shares %s of "
                                              "split %s started by %s are pending", what,
                                              svm_shares_list(r->pool, &pi), pi.split,
                                              pi.starter),
                                 apr_psprintf(r->pool, "Shares of another split of this key1 "
                                              "(split %s, started by %s) are pending: all "
                                              "shares of one load must come from the same "
                                              "split. If that set is not genuine, or this "
                                              "split is the one to use, an administrator "
                                              "may discard the pending shares first.",
                                              pi.split, pi.starter));
    case SVM_PART_DUP_INDEX:
        return svm_share_refused(r, sc, st, dbd, HTTP_CONFLICT,
                                 apr_psprintf(r->pool, "duplicate index: %s, pending shares "
                                              "%s", what, svm_shares_list(r->pool, &pi)),
                                 "Another administrator has given this same share already: "
                                 "each share counts once.");
    case SVM_PART_ADMIN_BUSY:
        return svm_share_refused(r, sc, st, dbd, HTTP_CONFLICT,
                                 apr_psprintf(r->pool, "another set started by this admin is "
                                              "pending (key1 %s split %s): %s", pi.fp,
                                              pi.split, what),
                                 apr_psprintf(r->pool, "You started another set of shares "
                                              "(key1 %.16s..., split %s) that is still "
                                              "pending: each administrator starts one set at "
                                              "a time. Discard it first, or let it complete.",
                                              pi.fp, pi.split));
    case SVM_PART_NOSPACE:
        return svm_share_refused(r, sc, st, dbd, HTTP_CONFLICT,
                                 apr_pstrcat(r->pool, "no free key slot for a new set: ",
                                             what, NULL),
                                 "The key slots of this server are in use (one is always "
                                 "kept for a key being loaded): forget a key or discard "
                                 "pending shares first.");
    case SVM_PART_ERROR:
    default:
        return svm_share_refused(r, sc, st, dbd, HTTP_SERVICE_UNAVAILABLE,
                                 apr_pstrcat(r->pool, "shared memory unavailable: ", what,
                                             NULL),
                                 "The key store of this server is unavailable.");
    }
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
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    svm_key1_pending_info pi;
    ap_dbd_t *dbd = svm_db(r);
    apr_status_t rv;

    if (!svm_form_fingerprint(u->pairs, fp)) {
        svm_upload_wipe(u);
        return svm_page_message(r, sc, HTTP_BAD_REQUEST, "Not discarded",
                                "Name the key by its fingerprint.", st);
    }
    svm_upload_wipe(u);
    if (dbd)
        svm_shares_audit_gone(r, dbd);
    rv = svm_key1_parts_discard(r, fp, &pi);
    if (dbd)
        svm_audit(r, dbd, st->name, "key1-share-discard", NULL, NULL,
                  rv == APR_SUCCESS ? "ok" : rv == APR_NOTFOUND ? "none pending" : "error",
                  rv == APR_SUCCESS
                  ? apr_psprintf(r->pool, "key1 %s: shares %s (%u of %u) of split %s started "
                                 "by %s wiped", fp, svm_shares_list(r->pool, &pi), pi.have,
                                 pi.need, pi.split, pi.starter)
                  : apr_pstrcat(r->pool, "key1 ", fp, NULL));
    if (rv == APR_NOTFOUND)
        return svm_page_message(r, sc, HTTP_NOT_FOUND, "Nothing pending",
                                "No shares of that key are pending on this server.", st);
    if (rv != APR_SUCCESS)
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not discarded",
                                "The key store of this server is unavailable.", st);
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "SV02155: key1 %s: pending shares %s "
                  "discarded by %s", fp, svm_shares_list(r->pool, &pi), st->name);
    return svm_redirect(r, apr_pstrcat(r->pool, ap_escape_uri(r->pool, r->uri),
                                       "?done=discarded", NULL));
}

void svm_shares_audit_gone(request_rec *r, ap_dbd_t *dbd)
{
    svm_key1_pending_info gone[SVM_KEY1_GONE];
    unsigned dropped = 0;
    int n, i;

    if (!dbd || (n = svm_key1_gone_peek(r, gone, &dropped)) < 0 || (n == 0 && !dropped))
        return;
    /* a record leaves the segment only once its row is written */
    for (i = 0; i < n; i++)
        if (svm_audit(r, dbd, NULL, "key1-share", NULL, NULL, "expired",
                      apr_psprintf(r->pool, "key1 %s split %s started by %s: shares %s "
                                   "(%u of %u) expired at %s; wiped by the module",
                                   gone[i].fp, gone[i].split, gone[i].starter,
                                   svm_shares_list(r->pool, &gone[i]), gone[i].have,
                                   gone[i].need, svm_time_utc(r->pool, gone[i].expires, "%Y-%m-%dT%H:%M:%SZ")))
            != APR_SUCCESS)
            break;
    if (i == n && dropped
        && svm_audit(r, dbd, NULL, "key1-share", NULL, NULL, "expired",
                     apr_psprintf(r->pool, "%u more expired: sets of shares wiped by the "
                                  "module that did not fit its record (see the error log)",
                                  dropped)) != APR_SUCCESS)
        dropped = 0;
    svm_key1_gone_done(r, i, i == n ? dropped : 0);
}

void svm_shares_progress(request_rec *r, const svm_key1_pending_info *pi, const char *self,
                         const char *csrf)
{
    ap_rprintf(r, "<td class=\"pending\">assembling: %u of %u shares, from %s, expires at %s "
               "UTC (split <span class=\"mono\">%s</span>, started by %s) <form method=\"post\" action=\"%s\"><input type=\"hidden\" "
               "name=\"csrf\" value=\"%s\"><input type=\"hidden\" name=\"action\" "
               "value=\"share-discard\"><input type=\"hidden\" name=\"fingerprint\" "
               "value=\"%s\"><button type=\"submit\" class=\"secondary\">Discard shares"
               "</button></form></td></tr>\n", pi->have, pi->need,
               svm_esc(r->pool, svm_parts_names(r->pool, pi)),
               svm_time_utc(r->pool, pi->expires, "%H:%M:%S"), svm_esc(r->pool, pi->split),
               svm_esc(r->pool, pi->starter), self, svm_esc(r->pool, csrf),
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
