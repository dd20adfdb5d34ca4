/*
 * svm_console.c - the staff console: staff accounts and their sessions on
 * the web, and everyone's own password.
 *
 * Only a server with SplitVaultStaffConsole On has these pages (svm_route.c
 * answers 404 elsewhere), and its DBDParams name the console role of
 * sql/roles.sql: the web role may not write staff. A write the database
 * refuses for want of a privilege says so on the page (and once in the
 * log, SV01114, svm_db.c); nothing is half-done, each action being one
 * transaction that holds its audit row.
 *
 * Under SplitVaultBase (B), all but the last two for admins (can_admin),
 * every POST with the session's CSRF token (svm_route.c):
 *   GET  B/staff/console            accounts; the form that creates one
 *   POST B/staff/console/create     create: name, capabilities, a password
 *                                   generated (shown once) or set by the
 *                                   admin (typed twice); must_change set
 *   GET  B/staff/console/account?name=NAME   one account and its sessions
 *                                   (each a console's or a public server's)
 *   POST B/staff/console/account    action=caps, disable, enable, reset,
 *                                   end-session (session=N), end-all
 *   GET  B/staff/password           one's own password (any signed-in
 *   POST B/staff/password           staff member)
 *
 * Separation of duties: giving one account both admin and decrypt is
 * applied only when the form comes back with "confirm" ticked; the first
 * submission shows the warning and the box (and is audited as held).
 * Lock-out guards, checked inside the change's transaction with the
 * actor, the target and every enabled admin locked (svm_con_staff_lock):
 * the actor must still be an enabled admin; nobody disables themselves,
 * takes away their own admin capability or resets their own password here
 * (the password page is for that), and their own account page offers none
 * of these; no change leaves no enabled admin. A refusal's page leads back
 * to the account concerned (or to the list of staff).
 *
 * Passwords: generated ones are 130 bits from RAND_priv_bytes over an
 * alphabet without look-alikes, kept in cleansed memory and shown once on
 * a no-store page; set ones follow splitvault-admin's rule
 * (lib/sv_pwpolicy: at least 12 characters of valid UTF-8, one line) and
 * are typed twice; a password typed while "Generate" is chosen is refused,
 * never dropped. Either is hashed with lib/sv_pwhash (the CLI's Argon2id
 * parameters), in one of the child's sign-in verification slots
 * (svm_auth_hash), so a stolen admin session cannot tie up more memory and
 * cores with it than sign-in can. No password, hash or token is ever
 * logged or audited; sessions are named by their opaque id, never by the token.
 * Disabling an account or resetting its password ends its sessions in the
 * same transaction. The own-password page checks the current password
 * under sign-in's throttle (svm_auth_check), so a stolen session cannot
 * guess it faster than sign-in could; a change clears must_change and ends
 * the person's other sessions.
 */
#include "svm.h"
#include "svm_console.h"
#include "svm_audit.h"
#include "svm_auth.h"
#include "svm_config.h"
#include "svm_db.h"
#include "svm_form.h"
#include "svm_html.h"
#include "svm_session.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include <openssl/rand.h>

#include "sv_pwhash.h"
#include "sv_pwpolicy.h"
#include "sv_secret.h"
#include "sv_wire.h"

#define SVM_CON_GEN_CHARS 26       /* 26 x 5 bits = 130 bits */

/* 32 characters, none of 0 O 1 I: one random byte's low 5 bits each. */
static const char svm_pw_alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

typedef struct {
    int update, decrypt, admin;
} svm_caps;

/* A password chosen on a form: generated, or typed by the admin. */
typedef struct {
    char *pw;          /* secret memory, or the form's (cleansed with the pool) */
    apr_size_t len;
    int generated;
} svm_newpw;

/* What an account change found, its rows locked. */
typedef struct {
    apr_int64_t id;    /* the target; 0: no such account */
    int admin;         /* the target is an enabled admin */
    int actor_ok;      /* the actor still is one */
    int admins;        /* enabled admins */
} svm_lockinfo;

static const char *svm_i64(apr_pool_t *p, apr_int64_t v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

static int svm_form_flag(const apr_array_header_t *pairs, const char *name)
{
    const svm_pair *x = svm_form_get(pairs, name);

    return x && x->len == 1 && x->value[0] == '1';
}

static svm_caps svm_form_caps(const apr_array_header_t *pairs)
{
    svm_caps c;

    c.update = svm_form_flag(pairs, "can_update");
    c.decrypt = svm_form_flag(pairs, "can_decrypt");
    c.admin = svm_form_flag(pairs, "can_admin");
    return c;
}

static const char *svm_caps_text(apr_pool_t *p, const svm_caps *c)
{
    if (!c->update && !c->decrypt && !c->admin)
        return "none";
    return apr_pstrcat(p, c->update ? "update" : "",
                       c->update && (c->decrypt || c->admin) ? ", " : "",
                       c->decrypt ? "decrypt" : "", c->decrypt && c->admin ? ", " : "",
                       c->admin ? "admin" : "", NULL);
}

/* The form's "account", when it is a valid staff name (sv_actor_name_valid). */
static const char *svm_form_account(const apr_array_header_t *pairs)
{
    const svm_pair *x = svm_form_get(pairs, "account");

    if (!x || !sv_actor_name_valid(x->value, x->len))
        return NULL;
    return x->value;
}

/* A generated password in secret memory of r->pool: groups of five, the
 * last of six. */
static char *svm_pw_generate(request_rec *r, apr_size_t *len)
{
    unsigned char raw[SVM_CON_GEN_CHARS];
    char *pw = svm_secret_palloc(r->pool, SVM_CON_GEN_CHARS + SVM_CON_GEN_CHARS / 5 + 1);
    char *o = pw;
    int i;

    if (RAND_priv_bytes(raw, sizeof(raw)) != 1) {
        sv_cleanse(raw, sizeof(raw));
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SV02301: no random bytes for a "
                      "generated password");
        return NULL;
    }
    for (i = 0; i < SVM_CON_GEN_CHARS; i++) {
        if (i && i % 5 == 0 && i < SVM_CON_GEN_CHARS - 1)
            *o++ = '-';
        *o++ = svm_pw_alphabet[raw[i] & 31];
    }
    *o = '\0';
    sv_cleanse(raw, sizeof(raw));
    *len = (apr_size_t)(o - pw);
    return pw;
}

/* The new password a create or reset form asks for (fields pwmode,
 * password, password2): generated unless pwmode is "set". A password
 * typed while "Generate" is chosen is refused, never silently dropped
 * (without JavaScript, typing cannot choose "Set"). NULL, or what is
 * wrong with it (*np untouched then). */
static const char *svm_form_newpw(request_rec *r, const apr_array_header_t *pairs,
                                  svm_newpw *np)
{
    const svm_pair *mode = svm_form_get(pairs, "pwmode");
    const svm_pair *a = svm_form_get(pairs, "password"), *b = svm_form_get(pairs, "password2");
    const char *why;

    if (!mode || strcmp(mode->value, "set") != 0) {
        if ((a && a->len) || (b && b->len))
            return "You typed a password but chose Generate: choose Set to use yours, or "
                   "clear the fields. Nothing was changed.";
        if (!(np->pw = svm_pw_generate(r, &np->len)))
            return "No password could be generated right now; nothing was changed.";
        np->generated = 1;
        return NULL;
    }
    if (!a || !b || a->len == 0)
        return "Type the password twice, or let one be generated.";
    if (a->len != b->len || memcmp(a->value, b->value, a->len) != 0)
        return "The two passwords differ; nothing was changed.";
    if ((why = sv_pwpolicy_check(a->value, a->len)))
        return apr_pstrcat(r->pool, why, " Nothing was changed.", NULL);
    np->pw = a->value;
    np->len = a->len;
    np->generated = 0;
    return NULL;
}

static void svm_newpw_wipe(const apr_array_header_t *pairs, svm_newpw *np)
{
    const char *names[] = { "password", "password2", "current", "new", "new2" };
    apr_size_t i;

    if (np && np->pw && np->generated)
        sv_cleanse(np->pw, np->len);
    for (i = 0; pairs && i < sizeof(names) / sizeof(names[0]); i++) {
        const svm_pair *x = svm_form_get(pairs, names[i]);
        if (x)
            sv_cleanse(x->value, x->len);
    }
}

/* Argon2id hash of np into out (SV_PWHASH_MAX), in one of sign-in's
 * verification slots (svm_auth_hash). 0, or -1 with the page sent that
 * says why and *page its handler status. */
static int svm_pw_hash(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                       const svm_newpw *np, char *out, int *page)
{
    int rc = svm_auth_hash(r, sc, np->pw, np->len, out, SV_PWHASH_MAX);

    if (rc == SVM_AUTH_OK)
        return 0;
    if (rc == SVM_AUTH_BUSY) {
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
        *page = svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Busy",
                                 "The server is busy checking passwords; nothing was "
                                 "changed. Please try again in a moment.", st);
    }
    else
        *page = svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Not done",
                                 "The new password could not be stored; nothing was "
                                 "changed.", st);
    return -1;
}

/* The page for a failed database step: the role's want of privileges said
 * plainly, else the database's unavailability. */
static int svm_con_unavailable(request_rec *r, const svm_srv_conf *sc, svm_staff *st)
{
    if (svm_db_denied(r))
        return svm_page_message(r, sc, HTTP_INTERNAL_SERVER_ERROR, "Staff console unavailable",
                                "This server's database role may not change staff accounts "
                                "(SplitVaultStaffConsole needs the console role: "
                                "docs/configuration.md). Nothing was changed.", st);
    return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Staff console unavailable",
                            "The database is unavailable right now; nothing was changed. "
                            "Please try again.", st);
}

/* Lock the actor, the account name and every enabled admin (inside a
 * transaction) and say what they are. 0, or -1 (logged). */
static int svm_con_lock(request_rec *r, ap_dbd_t *dbd, const svm_staff *st, const char *name,
                        svm_lockinfo *li)
{
    const void *args[] = { svm_i64(r->pool, st->id), name };
    svm_rows res;
    apr_dbd_row_t *row;

    memset(li, 0, sizeof(*li));
    if (svm_db_select(r, dbd, "svm_con_staff_lock", &res, args))
        return -1;
    while ((row = svm_db_row(r, dbd, &res))) {
        apr_int64_t id = apr_atoi64(svm_db_col(r, dbd, row, 0));
        int en_admin = *svm_db_col(r, dbd, row, 2) == 't';
        if (en_admin)
            li->admins++;
        if (id == st->id && en_admin)
            li->actor_ok = 1;
        if (strcmp(svm_db_col(r, dbd, row, 1), name) == 0) {
            li->id = id;
            li->admin = en_admin;
        }
    }
    return 0;
}

/* A refused action: rolled back (when a transaction is open), audited on
 * its own, and a page with status that says why and leads back to the
 * account (name, a valid one), or to the staff list when there is none. */
static int svm_con_refuse(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                          ap_dbd_t *dbd, int in_tx, const char *action, const char *name,
                          const char *why, int status)
{
    if (in_tx)
        svm_db_tx_end(r, dbd, 1);
    svm_audit(r, dbd, st->name, action, NULL, NULL, "refused",
              apr_pstrcat(r->pool, "account ", name ? name : "(invalid)", ": ", why, NULL));
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV02303: %s of %s refused for %s: %s",
                  action, name ? name : "an invalid name", st->name, why);
    if (status == HTTP_FORBIDDEN) /* no longer an admin: the console is closed to them */
        return svm_page_message(r, sc, status, "Not done", why, st);
    if (!name || status == HTTP_NOT_FOUND || strcmp(action, "staff-create") == 0)
        return svm_page_message_back(r, sc, status, "Not done", why, st,
                                     svm_url(r, sc, "/staff/console"), "Back to the staff list");
    return svm_page_message_back(r, sc, status, "Not done", why, st,
                                 apr_pstrcat(r->pool, svm_url(r, sc, "/staff/console/account"),
                                             "?name=", name, NULL),
                                 apr_pstrcat(r->pool, "Back to the account of ", name, NULL));
}

/* A failed step inside the transaction: rolled back, audited as an error. */
static int svm_con_failed(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                          ap_dbd_t *dbd, const char *action, const char *name)
{
    svm_db_tx_end(r, dbd, 1);
    svm_audit(r, dbd, st->name, action, NULL, NULL, "error",
              apr_pstrcat(r->pool, "account ", name, svm_db_denied(r)
                          ? ": the database role may not change staff accounts" : "", NULL));
    return svm_con_unavailable(r, sc, st);
}

/* The end of a successful action: its audit row in the transaction, then
 * COMMIT. 0 when committed; else 1, with the page that says it did not
 * happen sent and *page its handler status. */
static int svm_con_commit(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                          ap_dbd_t *dbd, const char *action, const char *name,
                          const char *detail, int *page)
{
    svm_tx_outcome out;

    if (svm_audit(r, dbd, st->name, action, NULL, NULL, "ok", detail) != APR_SUCCESS) {
        *page = svm_con_failed(r, sc, st, dbd, action, name);
        return 1;
    }
    out = svm_db_tx_end(r, dbd, 0);
    if (out == SVM_TX_COMMITTED)
        return 0;
    if (out == SVM_TX_UNKNOWN)
        *page = svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Outcome unknown",
                                 "The database connection failed while the change was being "
                                 "saved: look at the account before you try again.", st);
    else
        *page = svm_con_unavailable(r, sc, st);
    return 1;
}

/* The page that shows a new password once (no-store, like every staff
 * page), or says what was done. */
static int svm_con_result(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                          const char *title, const char *msg, const char *name,
                          const svm_newpw *np)
{
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, title, st);
    ap_rprintf(r, "<h1>%s</h1>\n<p id=\"result\" class=\"note\" role=\"status\">%s</p>\n",
               svm_esc(r->pool, title), svm_esc(r->pool, msg));
    if (np && np->generated) {
        ap_rprintf(r, "<p>The password, shown only this once: give it to %s in person. "
                   "They must change it when they first sign in.</p>\n"
                   "<p><code id=\"new-password\" class=\"mono\">%s</code></p>\n",
                   svm_esc(r->pool, name), svm_esc(r->pool, np->pw));
    }
    ap_rprintf(r, "<p><a id=\"account-link\" href=\"%s?name=%s\">The account of %s</a> · "
               "<a href=\"%s\">All staff</a></p>\n",
               svm_esc(r->pool, svm_url(r, sc, "/staff/console/account")),
               svm_esc(r->pool, name), svm_esc(r->pool, name),
               svm_esc(r->pool, svm_url(r, sc, "/staff/console")));
    svm_page_end(r);
    return OK;
}

/* The capability checkboxes of a form (ids prefix-update, ...); own_admin:
 * the admin's own account, whose admin box is shown ticked and disabled
 * with a note (and sent as a hidden field, which a disabled box is not). */
static void svm_caps_inputs(request_rec *r, const char *prefix, const svm_caps *c,
                            int own_admin)
{
    static const char *const names[3] = { "update", "decrypt", "admin" };
    static const char *const labels[3] = { "Update records", "Decrypt records",
                                           "Administer (staff, keys, audit log)" };
    const int on[3] = { c->update, c->decrypt, c->admin };
    int i;

    ap_rputs("<fieldset><legend>Capabilities</legend>\n", r);
    for (i = 0; i < 3; i++) {
        int locked = own_admin && i == 2;
        ap_rprintf(r, "<div><input type=\"checkbox\" id=\"%s-%s\" name=\"can_%s\" "
                   "value=\"1\"%s%s> <label class=\"inline\" for=\"%s-%s\">%s</label>%s</div>\n",
                   prefix, names[i], names[i], on[i] || locked ? " checked" : "",
                   locked ? " disabled" : "", prefix, names[i], labels[i],
                   locked ? " <span id=\"own-admin-note\" class=\"hint\">(your own: you "
                            "cannot take it away from yourself)</span>" : "");
    }
    if (own_admin)
        ap_rputs("<input type=\"hidden\" name=\"can_admin\" value=\"1\">\n", r);
    ap_rputs("</fieldset>\n", r);
}

/* The choice of a new password (ids prefix-pw-generate, prefix-password...);
 * set: "Set this one" is chosen (a form given back: the password itself is
 * never sent back, it is typed again). */
static void svm_newpw_inputs(request_rec *r, const char *prefix, int set)
{
    ap_rprintf(r, "<fieldset><legend>Password</legend>\n"
               "<div><input type=\"radio\" id=\"%s-pw-generate\" name=\"pwmode\" "
               "value=\"generate\"%s> <label class=\"inline\" for=\"%s-pw-generate\">"
               "Generate one (shown once)</label></div>\n"
               "<div><input type=\"radio\" id=\"%s-pw-set\" name=\"pwmode\" value=\"set\"%s> "
               "<label class=\"inline\" for=\"%s-pw-set\">Set this one%s</label></div>\n"
               "<label for=\"%s-password\">Password <span class=\"hint\">(at least %d "
               "characters)</span></label>\n"
               "<input type=\"password\" id=\"%s-password\" name=\"password\" "
               "autocomplete=\"new-password\" maxlength=\"%d\">\n"
               "<label for=\"%s-password2\">The same again</label>\n"
               "<input type=\"password\" id=\"%s-password2\" name=\"password2\" "
               "autocomplete=\"new-password\" maxlength=\"%d\">\n"
               "<p class=\"hint\">The person must change it when they next sign in.</p>\n"
               "</fieldset>\n", prefix, set ? "" : " checked", prefix, prefix,
               set ? " checked" : "", prefix, set ? " (type it again below)" : "", prefix,
               SV_PWPOLICY_MIN_CHARS, prefix, SVM_PASSWORD_MAX, prefix, prefix, SVM_PASSWORD_MAX);
}

/* The separation-of-duties warning and its confirmation box. */
static void svm_sod_warning(request_rec *r, const char *prefix, const char *name)
{
    ap_rprintf(r, "<p id=\"sod-warning\" class=\"error\" role=\"alert\">Separation of duties: "
               "%s would hold both admin and decrypt. One person could then load key1, "
               "manage staff and read every record alone. Tick the box below to confirm "
               "that this is intended; the change is audited as confirmed.</p>\n"
               "<div><input type=\"checkbox\" id=\"%s-confirm\" name=\"confirm\" value=\"1\"> "
               "<label class=\"inline\" for=\"%s-confirm\">I confirm: give %s both admin and "
               "decrypt</label></div>\n", svm_esc(r->pool, name), prefix, prefix,
               svm_esc(r->pool, name));
}

/* ---- the list and the create form ----------------------------------------- */

/* The list page; a create form given back (name, caps) with a message
 * (msg: an error, sod: the separation-of-duties warning). */
static int svm_console_list(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                            const char *name, const svm_caps *caps, const char *msg, int sod,
                            int pw_set, int status)
{
    ap_dbd_t *dbd = svm_db(r);
    svm_rows res;
    apr_dbd_row_t *row;
    svm_caps none = { 0, 0, 0 };
    const void *args[1];
    int n = 0;

    if (!dbd)
        return svm_con_unavailable(r, sc, st);
    args[0] = apr_itoa(r->pool, sc->session_idle);
    if (svm_db_select(r, dbd, "svm_con_staff_list", &res, args))
        return svm_con_unavailable(r, sc, st);
    r->status = status;
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, "Staff", st);
    ap_rputs("<h1>Staff</h1>\n<table id=\"staff-list\"><thead><tr><th>Name</th>"
             "<th>Capabilities</th><th>State</th><th>Password</th><th>Last sign-in (UTC)</th>"
             "<th>Sessions</th></tr></thead><tbody>\n", r);
    while ((row = svm_db_row(r, dbd, &res))) {
        const char *nm = svm_db_col(r, dbd, row, 0);
        svm_caps c;
        c.update = *svm_db_col(r, dbd, row, 1) == 't';
        c.decrypt = *svm_db_col(r, dbd, row, 2) == 't';
        c.admin = *svm_db_col(r, dbd, row, 3) == 't';
        ap_rprintf(r, "<tr id=\"staff-%s\"><td><a href=\"%s?name=%s\">%s</a></td><td>%s</td>"
                   "<td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                   svm_esc(r->pool, nm),
                   svm_esc(r->pool, svm_url(r, sc, "/staff/console/account")),
                   svm_esc(r->pool, nm), svm_esc(r->pool, nm),
                   svm_caps_text(r->pool, &c),
                   *svm_db_col(r, dbd, row, 4) == 't' ? "disabled" : "enabled",
                   *svm_db_col(r, dbd, row, 5) == 't' ? "must change" : "",
                   svm_esc(r->pool, *svm_db_col(r, dbd, row, 6)
                                    ? svm_db_col(r, dbd, row, 6) : "never"),
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 7)));
        n++;
    }
    if (!n)
        ap_rputs("<tr><td colspan=\"6\">No accounts.</td></tr>\n", r);
    ap_rputs("</tbody></table>\n", r);

    ap_rputs("<h2 id=\"create\">Create an account</h2>\n", r);
    if (msg)
        ap_rprintf(r, "<p id=\"create-error\" class=\"error\" role=\"alert\">%s</p>\n",
                   svm_esc(r->pool, msg));
    ap_rprintf(r, "<form id=\"create-form\" method=\"post\" action=\"%s\">\n"
               "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
               "<label for=\"create-name\">Name <span class=\"hint\">(1 to 64 of A-Z a-z 0-9 "
               "_ . @ -)</span></label>\n"
               "<input type=\"text\" id=\"create-name\" name=\"account\" maxlength=\"64\" "
               "value=\"%s\" autocomplete=\"off\" required>\n",
               svm_esc(r->pool, svm_url(r, sc, "/staff/console/create")),
               svm_esc(r->pool, st->csrf), svm_esc(r->pool, name ? name : ""));
    svm_caps_inputs(r, "create", caps ? caps : &none, 0);
    svm_newpw_inputs(r, "create", pw_set);
    if (sod)
        svm_sod_warning(r, "create", name);
    ap_rputs("<button type=\"submit\" id=\"create-submit\" name=\"create\" value=\"1\">"
             "Create the account</button>\n</form>\n", r);
    svm_page_end(r);
    return OK;
}

int svm_console_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st)
{
    return svm_console_list(r, sc, st, NULL, NULL, NULL, 0, 0, HTTP_OK);
}

int svm_console_create(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                       apr_array_header_t *pairs)
{
    const char *name = svm_form_account(pairs), *why, *detail;
    svm_caps caps = svm_form_caps(pairs);
    const svm_pair *mode = svm_form_get(pairs, "pwmode");
    int confirmed = svm_form_flag(pairs, "confirm"), rc, nrows = 0;
    int pw_set = mode && strcmp(mode->value, "set") == 0;
    svm_newpw np = { NULL, 0, 0 };
    char hash[SV_PWHASH_MAX] = "";
    svm_lockinfo li;
    svm_rows res;
    ap_dbd_t *dbd = svm_db(r);

    if (!dbd) {
        svm_newpw_wipe(pairs, NULL);
        return svm_con_unavailable(r, sc, st);
    }
    if (!name) {
        svm_newpw_wipe(pairs, NULL);
        svm_audit(r, dbd, st->name, "staff-create", NULL, NULL, "refused", "invalid name");
        return svm_console_list(r, sc, st, NULL, &caps, "A name is 1 to 64 of A-Z, a-z, "
                                "0-9, _ . @ and -.", 0, pw_set, HTTP_BAD_REQUEST);
    }
    if (caps.admin && caps.decrypt && !confirmed) {
        svm_newpw_wipe(pairs, NULL);
        svm_audit(r, dbd, st->name, "staff-create", NULL, NULL, "held",
                  apr_pstrcat(r->pool, "account ", name, ": admin and decrypt, not yet "
                              "confirmed", NULL));
        return svm_console_list(r, sc, st, name, &caps, NULL, 1, pw_set, HTTP_OK);
    }
    if ((why = svm_form_newpw(r, pairs, &np))) {
        svm_newpw_wipe(pairs, &np);
        svm_audit(r, dbd, st->name, "staff-create", NULL, NULL, "refused",
                  apr_pstrcat(r->pool, "account ", name, ": password not accepted", NULL));
        return svm_console_list(r, sc, st, name, &caps, why, 0, pw_set, HTTP_BAD_REQUEST);
    }
    if (svm_pw_hash(r, sc, st, &np, hash, &rc) != 0) {
        svm_newpw_wipe(pairs, &np);
        return rc;
    }
    if (!np.generated)
        svm_newpw_wipe(pairs, NULL); /* a generated one is still to be shown */
    detail = apr_pstrcat(r->pool, "account ", name, ": ", svm_caps_text(r->pool, &caps),
                         caps.admin && caps.decrypt ? " (admin and decrypt confirmed)" : "",
                         np.generated ? "; password generated" : "; password set by the admin",
                         NULL);
    if (svm_db_tx_begin(r, dbd) != APR_SUCCESS) {
        sv_cleanse(hash, sizeof(hash));
        return svm_con_unavailable(r, sc, st);
    }
    if (svm_con_lock(r, dbd, st, name, &li) != 0) {
        sv_cleanse(hash, sizeof(hash));
        return svm_con_failed(r, sc, st, dbd, "staff-create", name);
    }
    if (!li.actor_ok) {
        sv_cleanse(hash, sizeof(hash));
        return svm_con_refuse(r, sc, st, dbd, 1, "staff-create", name,
                              "You are no longer an enabled administrator.", HTTP_FORBIDDEN);
    }
    {
        const void *args[] = { name, hash, caps.update ? "true" : "false",
                               caps.decrypt ? "true" : "false", caps.admin ? "true" : "false" };
        if (svm_db_select(r, dbd, "svm_con_staff_insert", &res, args)) {
            sv_cleanse(hash, sizeof(hash));
            return svm_con_failed(r, sc, st, dbd, "staff-create", name);
        }
        while (svm_db_row(r, dbd, &res))
            nrows++;
    }
    sv_cleanse(hash, sizeof(hash));
    if (nrows != 1) {
        /* the name is taken, perhaps in another case: say by which */
        const char *have = NULL;
        const void *args[] = { name };
        apr_dbd_row_t *row;
        if (svm_db_select(r, dbd, "svm_con_staff_clash", &res, args))
            return svm_con_failed(r, sc, st, dbd, "staff-create", name);
        while ((row = svm_db_row(r, dbd, &res)))
            have = svm_db_col(r, dbd, row, 0);
        return svm_con_refuse(r, sc, st, dbd, 1, "staff-create", name,
                              apr_psprintf(r->pool, "A staff account named '%s' exists: names "
                                           "are case-insensitive.", have ? have : name),
                              HTTP_CONFLICT);
    }
    if (svm_con_commit(r, sc, st, dbd, "staff-create", name, detail, &rc))
        return rc;
    return svm_con_result(r, sc, st, "Account created",
                          apr_pstrcat(r->pool, "The account ", name, " was created (",
                                      svm_caps_text(r->pool, &caps), ").", NULL),
                          name, &np);
}

/* ---- one account ------------------------------------------------------------ */

/* The account page's actions: the form's "action" value, the audit log's
 * name for it (svm_console_action, for svm_route.c too) and what the
 * account page says when it is done (?done=VALUE picks one of these,
 * never text from the address). The one place these words are compared. */
typedef enum {
    SVM_ACT_CAPS, SVM_ACT_DISABLE, SVM_ACT_ENABLE, SVM_ACT_RESET, SVM_ACT_END_ONE,
    SVM_ACT_END_ALL
} svm_act_kind;

typedef struct {
    svm_act_kind kind;
    const char *form;
    const char *audit;
    const char *done;
} svm_con_act;

static const svm_con_act svm_con_acts[] = {
    { SVM_ACT_CAPS, "caps", "staff-caps", "The capabilities were changed." },
    { SVM_ACT_DISABLE, "disable", "staff-disable",
      "The account was disabled and its sessions ended." },
    { SVM_ACT_ENABLE, "enable", "staff-enable", "The account was enabled." },
    { SVM_ACT_RESET, "reset", "staff-password-reset",
      "The password was reset and the account's sessions ended." },
    { SVM_ACT_END_ONE, "end-session", "session-end", "The session was ended." },
    { SVM_ACT_END_ALL, "end-all", "session-end-all", "Every session of the account was ended." },
};

/* The action of form value v; NULL for any other value. */
static const svm_con_act *svm_con_act_find(const char *v)
{
    apr_size_t i;

    for (i = 0; v && i < sizeof(svm_con_acts) / sizeof(svm_con_acts[0]); i++)
        if (strcmp(v, svm_con_acts[i].form) == 0)
            return &svm_con_acts[i];
    return NULL;
}

/* The account page: its details, forms and sessions; the capabilities
 * form given back (caps) with the separation-of-duties warning (sod), or
 * an error message (msg). */
static int svm_account_show(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                            const char *name, const svm_caps *want, int sod, const char *msg,
                            int status)
{
    ap_dbd_t *dbd = svm_db(r);
    svm_rows res;
    apr_dbd_row_t *row;
    const char *id = NULL, *own, *last = "", *created = "", *pwset = "";
    const svm_con_act *done;
    svm_caps caps = { 0, 0, 0 };
    int disabled = 0, must = 0, n = 0, self;

    if (!dbd)
        return svm_con_unavailable(r, sc, st);
    {
        const void *args[] = { name };
        if (svm_db_select(r, dbd, "svm_con_staff_get", &res, args))
            return svm_con_unavailable(r, sc, st);
    }
    while ((row = svm_db_row(r, dbd, &res))) {
        id = svm_db_col(r, dbd, row, 0);
        caps.update = *svm_db_col(r, dbd, row, 2) == 't';
        caps.decrypt = *svm_db_col(r, dbd, row, 3) == 't';
        caps.admin = *svm_db_col(r, dbd, row, 4) == 't';
        disabled = *svm_db_col(r, dbd, row, 5) == 't';
        must = *svm_db_col(r, dbd, row, 6) == 't';
        last = svm_db_col(r, dbd, row, 7);
        created = svm_db_col(r, dbd, row, 8);
        pwset = svm_db_col(r, dbd, row, 9);
    }
    if (!id)
        return svm_page_message(r, sc, HTTP_NOT_FOUND, "No such account",
                                "There is no staff account of that name.", st);
    self = strcmp(id, svm_i64(r->pool, st->id)) == 0;
    r->status = status;
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, apr_pstrcat(r->pool, "Staff: ", name, NULL), st);
    ap_rprintf(r, "<h1>%s</h1>\n<p><a href=\"%s\">All staff</a></p>\n", svm_esc(r->pool, name),
               svm_esc(r->pool, svm_url(r, sc, "/staff/console")));
    done = svm_con_act_find(svm_query_arg(r, "done"));
    if (done && !msg && !sod)
        ap_rprintf(r, "<p id=\"result\" class=\"note\" role=\"status\">%s</p>\n",
                   svm_esc(r->pool, done->done));
    if (msg)
        ap_rprintf(r, "<p id=\"account-error\" class=\"error\" role=\"alert\">%s</p>\n",
                   svm_esc(r->pool, msg));
    ap_rprintf(r, "<table id=\"account\"><tbody>\n"
               "<tr><th>Capabilities</th><td id=\"account-caps\">%s</td></tr>\n"
               "<tr><th>State</th><td id=\"account-state\">%s</td></tr>\n"
               "<tr><th>Password</th><td id=\"account-password\">%s%s%s</td></tr>\n"
               "<tr><th>Last sign-in (UTC)</th><td id=\"account-last\">%s</td></tr>\n"
               "<tr><th>Created (UTC)</th><td>%s</td></tr>\n</tbody></table>\n",
               svm_caps_text(r->pool, &caps), disabled ? "disabled" : "enabled",
               must ? "must be changed at the next sign-in" : "set by its owner",
               *pwset ? "; set " : "", svm_esc(r->pool, pwset),
               svm_esc(r->pool, *last ? last : "never"), svm_esc(r->pool, created));

    /* capabilities */
    ap_rprintf(r, "<h2>Capabilities</h2>\n<form id=\"caps-form\" method=\"post\" "
               "action=\"%s\">\n<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
               "<input type=\"hidden\" name=\"account\" value=\"%s\">\n"
               "<input type=\"hidden\" name=\"action\" value=\"caps\">\n",
               svm_esc(r->pool, svm_url(r, sc, "/staff/console/account")),
               svm_esc(r->pool, st->csrf), svm_esc(r->pool, name));
    svm_caps_inputs(r, "caps", want ? want : &caps, self);
    if (sod)
        svm_sod_warning(r, "caps", name);
    ap_rputs("<button type=\"submit\" id=\"caps-submit\" name=\"apply\" value=\"1\">Change "
             "the capabilities</button>\n</form>\n", r);

    /* disable or enable, reset the password: never one's own (refused) */
    if (self)
        ap_rprintf(r, "<h2>Sign-in and password</h2>\n<p id=\"own-account-note\" "
                   "class=\"note\">This is your own account: change your password on "
                   "<a id=\"own-password-link\" href=\"%s\">the password page</a>. You "
                   "cannot disable your own account or reset its password here.</p>\n",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/password")));
    else {
        /* disable or enable */
        ap_rprintf(r, "<h2>Sign-in</h2>\n<form id=\"%s-form\" method=\"post\" action=\"%s\">\n"
                   "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
                   "<input type=\"hidden\" name=\"account\" value=\"%s\">\n"
                   "<input type=\"hidden\" name=\"action\" value=\"%s\">\n"
                   "<button type=\"submit\" id=\"%s-submit\" name=\"apply\" value=\"1\"%s>%s"
                   "</button>\n</form>\n", disabled ? "enable" : "disable",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/console/account")),
                   svm_esc(r->pool, st->csrf), svm_esc(r->pool, name),
                   disabled ? "enable" : "disable", disabled ? "enable" : "disable",
                   disabled ? "" : " class=\"secondary\"",
                   disabled ? "Enable the account" : "Disable the account and end its sessions");

        /* reset the password */
        ap_rprintf(r, "<h2>Reset the password</h2>\n<form id=\"reset-form\" method=\"post\" "
                   "action=\"%s\">\n<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
                   "<input type=\"hidden\" name=\"account\" value=\"%s\">\n"
                   "<input type=\"hidden\" name=\"action\" value=\"reset\">\n",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/console/account")),
                   svm_esc(r->pool, st->csrf), svm_esc(r->pool, name));
        svm_newpw_inputs(r, "reset", 0);
        ap_rputs("<button type=\"submit\" id=\"reset-submit\" name=\"apply\" value=\"1\">Reset "
                 "the password and end the account's sessions</button>\n</form>\n", r);
    }

    /* sessions */
    own = svm_session_hash(r, st);
    {
        const void *args[] = { own ? own : "", id, apr_itoa(r->pool, sc->session_idle) };
        if (svm_db_select(r, dbd, "svm_con_sess_list", &res, args)) {
            ap_rputs("<p class=\"error\">The sessions cannot be listed right now.</p>\n", r);
            svm_page_end(r);
            return OK;
        }
    }
    ap_rputs("<h2>Active sessions</h2>\n<table id=\"sessions\"><thead><tr><th>Started "
             "(UTC)</th><th>Last seen</th><th>Expires</th><th>Address</th><th>Browser</th>"
             "<th>Server</th><th></th></tr></thead><tbody>\n", r);
    while ((row = svm_db_row(r, dbd, &res))) {
        const char *sid = svm_db_col(r, dbd, row, 0);
        int mine = *svm_db_col(r, dbd, row, 6) == 't';
        int console = *svm_db_col(r, dbd, row, 7) == 't';
        ap_rprintf(r, "<tr id=\"session-%s\"><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                   "<td>%s</td><td class=\"session-kind\">%s</td>"
                   "<td>%s<form method=\"post\" action=\"%s\">"
                   "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
                   "<input type=\"hidden\" name=\"account\" value=\"%s\">"
                   "<input type=\"hidden\" name=\"action\" value=\"end-session\">"
                   "<input type=\"hidden\" name=\"session\" value=\"%s\">"
                   "<button type=\"submit\" id=\"end-session-%s\" name=\"end\" value=\"1\" "
                   "class=\"secondary\">End</button></form></td></tr>\n",
                   svm_esc(r->pool, sid), svm_esc(r->pool, svm_db_col(r, dbd, row, 1)),
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 2)),
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 3)),
                   svm_esc(r->pool, *svm_db_col(r, dbd, row, 4) ? svm_db_col(r, dbd, row, 4)
                                                                : "unknown"),
                   svm_esc(r->pool, svm_db_col(r, dbd, row, 5)),
                   console ? "console" : "public server",
                   mine ? "<strong class=\"current\" id=\"current-session\">this session"
                          "</strong> " : "",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/console/account")),
                   svm_esc(r->pool, st->csrf), svm_esc(r->pool, name), svm_esc(r->pool, sid),
                   svm_esc(r->pool, sid));
        n++;
    }
    if (!n)
        ap_rputs("<tr><td colspan=\"7\">None.</td></tr>\n", r);
    ap_rputs("</tbody></table>\n", r);
    if (n)
        ap_rprintf(r, "<form id=\"end-all-form\" method=\"post\" action=\"%s\">\n"
                   "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
                   "<input type=\"hidden\" name=\"account\" value=\"%s\">\n"
                   "<input type=\"hidden\" name=\"action\" value=\"end-all\">\n"
                   "<button type=\"submit\" id=\"end-all-submit\" name=\"apply\" value=\"1\" "
                   "class=\"secondary\">End every session of %s</button>\n</form>\n",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/console/account")),
                   svm_esc(r->pool, st->csrf), svm_esc(r->pool, name),
                   svm_esc(r->pool, name));
    svm_page_end(r);
    return OK;
}

int svm_console_account_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st)
{
    const char *name = svm_query_arg(r, "name");

    if (!name || !sv_actor_name_valid(name, strlen(name)))
        return svm_page_message(r, sc, HTTP_NOT_FOUND, "No such account",
                                "There is no staff account of that name.", st);
    return svm_account_show(r, sc, st, name, NULL, 0, NULL, HTTP_OK);
}

const char *svm_console_action(const apr_array_header_t *pairs)
{
    const svm_pair *a = pairs ? svm_form_get(pairs, "action") : NULL;
    const svm_con_act *ca = a ? svm_con_act_find(a->value) : NULL;

    return ca ? ca->audit : "staff-console";
}

/* A session number from the form: 1 to 18 digits. */
static const char *svm_form_session(const apr_array_header_t *pairs)
{
    const svm_pair *x = svm_form_get(pairs, "session");
    apr_size_t i;

    if (!x || x->len == 0 || x->len > 18)
        return NULL;
    for (i = 0; i < x->len; i++)
        if (x->value[i] < '0' || x->value[i] > '9')
            return NULL;
    return x->value;
}

int svm_console_account_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                             apr_array_header_t *pairs)
{
    const svm_pair *ap = svm_form_get(pairs, "action");
    const svm_con_act *ca = ap ? svm_con_act_find(ap->value) : NULL;
    const char *action = svm_console_action(pairs), *name = svm_form_account(pairs);
    const char *why, *detail, *sid = NULL, *tid;
    svm_caps caps = svm_form_caps(pairs);
    int confirmed = svm_form_flag(pairs, "confirm"), rc, nrows = 0;
    svm_newpw np = { NULL, 0, 0 };
    char hash[SV_PWHASH_MAX] = "";
    svm_lockinfo li;
    ap_dbd_t *dbd = svm_db(r);

    if (!dbd) {
        svm_newpw_wipe(pairs, NULL);
        return svm_con_unavailable(r, sc, st);
    }
    if (!name || !ca) {
        svm_newpw_wipe(pairs, NULL);
        return svm_con_refuse(r, sc, st, dbd, 0, action, name,
                              "That is not a request this page makes.", HTTP_BAD_REQUEST);
    }
    detail = apr_pstrcat(r->pool, "account ", name, NULL);
    if (ca->kind == SVM_ACT_CAPS) {
        if (caps.admin && caps.decrypt && !confirmed) {
            svm_audit(r, dbd, st->name, action, NULL, NULL, "held",
                      apr_pstrcat(r->pool, detail, ": admin and decrypt, not yet confirmed",
                                  NULL));
            return svm_account_show(r, sc, st, name, &caps, 1, NULL, HTTP_OK);
        }
        detail = apr_pstrcat(r->pool, detail, ": ", svm_caps_text(r->pool, &caps),
                             caps.admin && caps.decrypt ? " (admin and decrypt confirmed)" : "",
                             NULL);
    }
    else if (ca->kind == SVM_ACT_RESET) {
        if (strcmp(name, st->name) == 0) {
            svm_newpw_wipe(pairs, NULL);
            return svm_con_refuse(r, sc, st, dbd, 0, action, name, "Change your own password "
                                  "on the password page, not by a reset.", HTTP_CONFLICT);
        }
        if ((why = svm_form_newpw(r, pairs, &np))) {
            svm_newpw_wipe(pairs, &np);
            svm_audit(r, dbd, st->name, action, NULL, NULL, "refused",
                      apr_pstrcat(r->pool, detail, ": password not accepted", NULL));
            return svm_account_show(r, sc, st, name, NULL, 0, why, HTTP_BAD_REQUEST);
        }
        if (svm_pw_hash(r, sc, st, &np, hash, &rc) != 0) {
            svm_newpw_wipe(pairs, &np);
            return rc;
        }
        if (!np.generated)
            svm_newpw_wipe(pairs, NULL);
        detail = apr_pstrcat(r->pool, detail, np.generated ? ": password generated"
                             : ": password set by the admin", NULL);
    }
    else if (ca->kind == SVM_ACT_END_ONE) {
        if (!(sid = svm_form_session(pairs)))
            return svm_con_refuse(r, sc, st, dbd, 0, action, name, "That is not a session "
                                  "this page lists.", HTTP_BAD_REQUEST);
        detail = apr_pstrcat(r->pool, detail, ": session ", sid, NULL);
    }

    if (svm_db_tx_begin(r, dbd) != APR_SUCCESS) {
        sv_cleanse(hash, sizeof(hash));
        return svm_con_unavailable(r, sc, st);
    }
    if (svm_con_lock(r, dbd, st, name, &li) != 0) {
        sv_cleanse(hash, sizeof(hash));
        return svm_con_failed(r, sc, st, dbd, action, name);
    }
    why = NULL;
    if (!li.actor_ok)
        why = "You are no longer an enabled administrator.";
    else if (!li.id)
        why = "There is no staff account of that name.";
    else if (ca->kind == SVM_ACT_DISABLE && li.id == st->id)
        why = "You cannot disable your own account.";
    else if (ca->kind == SVM_ACT_DISABLE && li.admin && li.admins <= 1)
        why = "This is the last enabled administrator: it cannot be disabled.";
    else if (ca->kind == SVM_ACT_CAPS && li.id == st->id && !caps.admin)
        why = "You cannot take away your own admin capability.";
    else if (ca->kind == SVM_ACT_CAPS && li.admin && !caps.admin && li.admins <= 1)
        why = "This is the last enabled administrator: it keeps the admin capability.";
    if (why) {
        sv_cleanse(hash, sizeof(hash));
        return svm_con_refuse(r, sc, st, dbd, 1, action, name, why,
                              !li.actor_ok ? HTTP_FORBIDDEN
                              : li.id ? HTTP_CONFLICT : HTTP_NOT_FOUND);
    }
    tid = svm_i64(r->pool, li.id);
    rc = 0;
    if (ca->kind == SVM_ACT_CAPS) {
        const void *args[] = { caps.update ? "true" : "false", caps.decrypt ? "true" : "false",
                               caps.admin ? "true" : "false", tid };
        rc = svm_db_exec(r, dbd, "svm_con_staff_caps", NULL, args) != APR_SUCCESS;
    }
    else if (ca->kind == SVM_ACT_DISABLE || ca->kind == SVM_ACT_ENABLE) {
        const void *args[] = { ca->kind == SVM_ACT_DISABLE ? "true" : "false", tid };
        const void *end[] = { tid };
        rc = svm_db_exec(r, dbd, "svm_con_staff_disable", NULL, args) != APR_SUCCESS
             || (ca->kind == SVM_ACT_DISABLE
                 && svm_db_exec(r, dbd, "svm_con_sess_end_all", &nrows, end) != APR_SUCCESS);
        if (ca->kind == SVM_ACT_DISABLE)
            detail = apr_pstrcat(r->pool, detail, "; ", apr_itoa(r->pool, nrows),
                                 " session(s) ended", NULL);
    }
    else if (ca->kind == SVM_ACT_RESET) {
        const void *args[] = { hash, "true", tid };
        const void *end[] = { tid };
        rc = svm_db_exec(r, dbd, "svm_con_staff_passwd", NULL, args) != APR_SUCCESS
             || svm_db_exec(r, dbd, "svm_con_sess_end_all", &nrows, end) != APR_SUCCESS;
        detail = apr_pstrcat(r->pool, detail, "; ", apr_itoa(r->pool, nrows),
                             " session(s) ended", NULL);
    }
    else if (ca->kind == SVM_ACT_END_ONE) {
        const void *args[] = { tid, sid };
        rc = svm_db_exec(r, dbd, "svm_con_sess_end_one", &nrows, args) != APR_SUCCESS;
        if (!rc && nrows != 1)
            return svm_con_refuse(r, sc, st, dbd, 1, action, name, "That session has "
                                  "ended already.", HTTP_CONFLICT);
    }
    else {
        const void *end[] = { tid };
        rc = svm_db_exec(r, dbd, "svm_con_sess_end_all", &nrows, end) != APR_SUCCESS;
        detail = apr_pstrcat(r->pool, detail, ": ", apr_itoa(r->pool, nrows),
                             " session(s) ended", NULL);
    }
    sv_cleanse(hash, sizeof(hash));
    if (rc)
        return svm_con_failed(r, sc, st, dbd, action, name);
    if (svm_con_commit(r, sc, st, dbd, action, name, detail, &rc))
        return rc;
    if (ca->kind == SVM_ACT_RESET)
        return svm_con_result(r, sc, st, "Password reset",
                              apr_pstrcat(r->pool, "The password of ", name, " was reset and "
                                          "its sessions ended; it must be changed at the next "
                                          "sign-in.", NULL), name, &np);
    return svm_redirect(r, apr_pstrcat(r->pool, svm_url(r, sc, "/staff/console/account"),
                                       "?name=", name, "&done=", ca->form, NULL));
}

/* ---- one's own password ------------------------------------------------------ */

static int svm_password_show(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                             const char *msg, int status)
{
    r->status = status;
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, "Your password", st);
    ap_rputs("<h1>Your password</h1>\n", r);
    if (st->must_change)
        ap_rputs("<p id=\"must-change\" class=\"error\" role=\"alert\">Your password was set "
                 "by an administrator: change it before you go on.</p>\n", r);
    if (msg)
        ap_rprintf(r, "<p id=\"password-error\" class=\"error\" role=\"alert\">%s</p>\n",
                   svm_esc(r->pool, msg));
    ap_rprintf(r, "<form id=\"password-form\" method=\"post\" action=\"%s\">\n"
               "<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
               "<label for=\"current\">Current password</label>\n"
               "<input type=\"password\" id=\"current\" name=\"current\" "
               "autocomplete=\"current-password\" maxlength=\"%d\" required>\n"
               "<label for=\"new\">New password <span class=\"hint\">(at least %d "
               "characters)</span></label>\n"
               "<input type=\"password\" id=\"new\" name=\"new\" autocomplete=\"new-password\" "
               "maxlength=\"%d\" required>\n"
               "<label for=\"new2\">The new password again</label>\n"
               "<input type=\"password\" id=\"new2\" name=\"new2\" "
               "autocomplete=\"new-password\" maxlength=\"%d\" required>\n"
               "<p class=\"hint\">Your other sessions end when it is changed.</p>\n"
               "<button type=\"submit\" id=\"password-submit\" name=\"change\" value=\"1\">"
               "Change the password</button>\n</form>\n",
               svm_esc(r->pool, svm_url(r, sc, "/staff/password")), svm_esc(r->pool, st->csrf),
               SVM_PASSWORD_MAX, SV_PWPOLICY_MIN_CHARS, SVM_PASSWORD_MAX, SVM_PASSWORD_MAX);
    svm_page_end(r);
    return OK;
}

int svm_password_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st)
{
    return svm_password_show(r, sc, st, NULL, HTTP_OK);
}

int svm_password_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                      apr_array_header_t *pairs)
{
    const svm_pair *cur = svm_form_get(pairs, "current");
    const svm_pair *n1 = svm_form_get(pairs, "new"), *n2 = svm_form_get(pairs, "new2");
    const char *why = NULL, *pwhash = NULL, *own;
    char hash[SV_PWHASH_MAX] = "";
    svm_newpw np;
    svm_rows res;
    apr_dbd_row_t *row;
    int refused = 0, rc, nrows = 0, ended = 0;
    ap_dbd_t *dbd = svm_db(r);
    const char *id = svm_i64(r->pool, st->id);

    if (!cur || !n1 || !n2 || cur->len == 0 || cur->len > SVM_PASSWORD_MAX)
        why = "Type your current password and the new one twice.";
    else if (n1->len != n2->len || memcmp(n1->value, n2->value, n1->len) != 0)
        why = "The two new passwords differ.";
    else if ((why = sv_pwpolicy_check(n1->value, n1->len)))
        ;
    else if (n1->len == cur->len && memcmp(n1->value, cur->value, cur->len) == 0)
        why = "The new password must differ from the current one.";
    if (why) {
        svm_newpw_wipe(pairs, NULL);
        return svm_password_show(r, sc, st, apr_pstrcat(r->pool, why, " Nothing was changed.",
                                                        NULL), HTTP_BAD_REQUEST);
    }
    if (!dbd) {
        svm_newpw_wipe(pairs, NULL);
        return svm_con_unavailable(r, sc, st);
    }
    {
        const void *args[] = { id };
        if (svm_db_select(r, dbd, "svm_con_own_get", &res, args)) {
            svm_newpw_wipe(pairs, NULL);
            return svm_con_unavailable(r, sc, st);
        }
        while ((row = svm_db_row(r, dbd, &res)))
            pwhash = svm_db_col(r, dbd, row, 0);
    }
    rc = svm_auth_check(r, sc, dbd, st->name, pwhash, cur->value, cur->len, &refused);
    if (rc == SVM_AUTH_BUSY || rc == SVM_AUTH_UNAVAILABLE) {
        svm_newpw_wipe(pairs, NULL);
        if (rc == SVM_AUTH_BUSY)
            apr_table_setn(r->err_headers_out, "Retry-After", "1");
        return svm_page_message(r, sc, HTTP_SERVICE_UNAVAILABLE, "Try again",
                                "Passwords cannot be checked right now; nothing was changed. "
                                "Please try again in a moment.", st);
    }
    if (rc != SVM_AUTH_OK) {
        svm_newpw_wipe(pairs, NULL);
        svm_audit(r, dbd, st->name, "password-change", NULL, NULL,
                  refused ? "throttled" : "failed", "wrong current password");
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "SV02304: password change %s for %s: "
                      "wrong current password", refused ? "throttled" : "failed", st->name);
        return svm_password_show(r, sc, st, "The current password is wrong; nothing was "
                                 "changed. After repeated failures, password checks are "
                                 "paused for a while.", HTTP_FORBIDDEN);
    }
    np.pw = n1->value;
    np.len = n1->len;
    np.generated = 0;
    if (svm_pw_hash(r, sc, st, &np, hash, &rc) != 0) {
        svm_newpw_wipe(pairs, NULL);
        return rc;
    }
    svm_newpw_wipe(pairs, NULL);
    own = svm_session_hash(r, st);
    if (!own || svm_db_tx_begin(r, dbd) != APR_SUCCESS) {
        sv_cleanse(hash, sizeof(hash));
        return svm_con_unavailable(r, sc, st);
    }
    {
        const void *args[] = { hash, id, pwhash };
        const void *end[] = { id, own };
        rc = svm_db_exec(r, dbd, "svm_con_own_passwd", &nrows, args) != APR_SUCCESS
             || (nrows == 1
                 && svm_db_exec(r, dbd, "svm_con_sess_end_others", &ended, end) != APR_SUCCESS);
    }
    sv_cleanse(hash, sizeof(hash));
    if (rc) {
        svm_db_tx_end(r, dbd, 1);
        svm_audit(r, dbd, st->name, "password-change", NULL, NULL, "error",
                  svm_db_denied(r) ? "the database role may not change staff accounts" : NULL);
        return svm_con_unavailable(r, sc, st);
    }
    if (nrows != 1) {
        svm_db_tx_end(r, dbd, 1);
        svm_audit(r, dbd, st->name, "password-change", NULL, NULL, "refused",
                  "the password was changed meanwhile");
        return svm_password_show(r, sc, st, "Your password was changed by someone else "
                                 "meanwhile; nothing was changed.", HTTP_CONFLICT);
    }
    if (svm_con_commit(r, sc, st, dbd, "password-change", st->name,
                       apr_psprintf(r->pool, "%d other session(s) ended", ended), &rc))
        return rc;
    st->must_change = 0;
    svm_security_headers(r, 1);
    svm_page_begin(r, sc, "Password changed", st);
    ap_rprintf(r, "<h1>Password changed</h1>\n<p id=\"result\" class=\"note\" role=\"status\">"
               "Your password was changed; your other sessions (%d) were ended.</p>\n"
               "<p><a href=\"%s\">Go to the records</a></p>\n", ended,
               svm_esc(r->pool, svm_url(r, sc, "/staff/")));
    svm_page_end(r);
    return OK;
}
