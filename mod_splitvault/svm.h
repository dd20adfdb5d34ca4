/*
 * svm.h - mod_splitvault's internal interfaces.
 *
 * One concern per file:
 *   mod_splitvault.c  module record and hook registration only
 *   svm_config.c      SplitVault* directives, server config, start-up checks
 *   svm_db.c          mod_dbd access, the prepared statements, row helpers
 *   svm_html.c        escaping, security headers, page frame, stylesheet
 *   svm_form.c        request body reading (the public form, staff pages)
 *   svm_parse.c       urlencoded, multipart and UTF-8 parsing (no httpd header)
 *   svm_pwhash.c      Argon2id hashing (shared with splitvault-admin)
 *   svm_session.c     staff sessions (cookie, token hash in the DB)
 *   svm_csrf.c        CSRF tokens derived from the session / login cookie
 *   svm_auth.c        sign-in, sign-out, throttling
 *   svm_pages.c       URL routing and the staff pages
 *   svm_intake.c      the public form and anonymous intake
 *   svm_throttle.c    the intake throttle per client network (shared memory)
 *   svm_update.c      write-only field update by staff
 *   svm_decrypt.c     the decrypt action for privileged staff
 *   svm_keys.c        handler "splitvault-keys" (the admin key location)
 *   svm_key1.c        the active key1 public key, cached per child
 *   svm_shm.c         key1 private keys in anonymous shared memory
 *   svm_upload.c      reading the key location's upload forms (secret bodies)
 *   svm_daemon.c      daemon client: per-child pool of mTLS connections
 *   svm_audit.c       the main-side audit trail
 *
 * Log tags: every log site carries its own "SVnnnnn:" tag, never reused;
 * each file owns a range (config 010xx, db 011xx, auth 012xx, session 013xx,
 * pages 014xx, intake 015xx, update 016xx, daemon 017xx, audit 018xx,
 * key1 019xx, form 020xx, keys/decrypt 021xx, intake throttle 022xx).
 */
#ifndef SVM_H
#define SVM_H

/* config.h first, for SV_TEST_HOOKS; its PACKAGE_* names clash with
 * ap_config_auto.h, so drop them before httpd.h. */
#include "config.h"
#undef PACKAGE_BUGREPORT
#undef PACKAGE_NAME
#undef PACKAGE_STRING
#undef PACKAGE_TARNAME
#undef PACKAGE_URL
#undef PACKAGE_VERSION

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_dbd.h"
#include "mod_dbd.h"
#include "apr_reslist.h"
#include "apr_thread_mutex.h"

#include <openssl/ssl.h>

#include "sv_err.h"
#include "sv_buf.h"
#include "sv_format.h"
#include "sv_wire.h"
#include "sv_keyfile.h"

extern module AP_MODULE_DECLARE_DATA splitvault_module;

/* Log lines name the module; AP_DECLARE_MODULE does this in its own file. */
#if defined(APLOG_USE_MODULE) && !defined(SVM_MODULE_FILE)
APLOG_USE_MODULE(splitvault);
#endif

#define SVM_HANDLER "splitvault"
#define SVM_HANDLER_KEYS "splitvault-keys"

#define SVM_MAX_FIELDS SV_WIRE_MAX_FIELDS
#define SVM_TOKEN_LEN 32          /* session token bytes (256 bits) */
#define SVM_TOKEN_B64_LEN 43      /* its unpadded base64url text */
#define SVM_CSRF_HEX_LEN 64
#define SVM_PASSWORD_MAX 1024
#define SVM_REF_LEN 11            /* XXXXX-XXXXX */
#define SVM_SECURE_HEAP (4u << 20) /* per child: OpenSSL secure heap bytes */
/* statement_timeout of every database connection the module uses */
#define SVM_DB_STATEMENT_TIMEOUT apr_time_from_sec(30)
/* Shares the daemon made for a STORE or DECRYPT are referenced by a commit
 * no later than this after the request was sent, or never: the module
 * checks, right before the INSERT or COMMIT, that it will end by then
 * (with SVM_DB_STATEMENT_TIMEOUT to spare), so that reconcile, whose grace
 * period must exceed this (docs/operations.md), never deletes a share that
 * a commit is about to reference. */
#define SVM_SHARE_MAX_AGE apr_time_from_sec(600)
/* Time kept free after the daemon's answer for sealing and committing:
 * SplitVaultDecryptWait + 2 x SplitVaultDaemonTimeout may not exceed
 * SVM_SHARE_MAX_AGE minus this (checked at start-up). */
#define SVM_COMMIT_RESERVE apr_time_from_sec(120)

/* ---- configuration (svm_config.c) --------------------------------------- */

typedef struct {
    const char *name;   /* [A-Za-z0-9_-]{1,64} */
    const char *label;  /* shown to visitors and staff */
    int required;
    int maxlen;         /* characters (Unicode code points) */
    int multiline;      /* textarea instead of a one-line input */
} svm_field;

typedef struct svm_dpool svm_dpool;

typedef struct {
    const char *base;         /* URL path served by handler "splitvault" */
    const char *title;        /* form title */
    const char *intro;        /* one paragraph above the form */
    apr_array_header_t *fields; /* svm_field, in form order */
    apr_off_t max_body;       /* bytes; larger bodies get 413 */

    /* daemon client */
    const char *daemon_host;
    apr_port_t daemon_port;
    const char *daemon_name;  /* name checked in the daemon's certificate */
    const char *daemon_ca;
    const char *client_cert;
    const char *client_key;
    apr_interval_time_t daemon_timeout;
    int decrypt_wait;         /* seconds a DECRYPT may wait in the daemon's queue */
    int pool_max;             /* connections per child; 0: ThreadsPerChild */
    int pool_idle;            /* seconds an idle connection is kept */

    /* sessions and sign-in */
    int session_idle;         /* seconds */
    int session_max;          /* seconds */
    int cookie_secure;        /* -1 unset, default on */
    int thr_acct_n, thr_acct_s;   /* failures per (name, address), window seconds */
    int thr_addr_n, thr_addr_s;   /* failures per address, window seconds */
    int thr_name_n, thr_name_s;   /* failures per name from every address */
    const char *login_key_file;   /* SplitVaultLoginKeyFile, or NULL */
    int login_concurrency;        /* Argon2id verifications at once per child */

    /* anonymous intake: POSTs per client network and window; 0: Off */
    int ithr_n, ithr_s;
    unsigned ithr_sid;        /* this server's number in the throttle (post_config) */

    /* SplitVaultHSTS: the Strict-Transport-Security value, "" for Off */
    const char *hsts;
    /* SplitVaultKey1Pin: the key1 fingerprints (lower-case hex) intake and
     * decrypt may seal to; empty: any registered active key1 */
    apr_array_header_t *key1_pins;

    /* run time (not merged) */
    SSL_CTX *ssl_ctx;         /* built at check_config */
    svm_dpool *dpool;         /* per child, created in child_init */
    unsigned char *login_key; /* SVM_LOGIN_KEY_LEN bytes, set at check_config
                                 (svm_auth_key_load); cleansed with pconf */
} svm_srv_conf;

/* Defaults (documented in docs/configuration.md). */
#define SVM_DEF_BASE "/splitvault"
#define SVM_DEF_TITLE "Secure submission"
#define SVM_DEF_MAXLEN 1000
#define SVM_DEF_MAX_BODY 65536
#define SVM_DEF_TIMEOUT apr_time_from_sec(5)
#define SVM_DEF_POOL_IDLE 60
#define SVM_DEF_SESSION_IDLE 900
#define SVM_DEF_SESSION_MAX 28800
#define SVM_DEF_THR_ACCT_N 5
#define SVM_DEF_THR_ACCT_S 900
#define SVM_DEF_THR_ADDR_N 20
#define SVM_DEF_THR_ADDR_S 900
#define SVM_DEF_THR_NAME_FACTOR 5 /* name-wide: 5 x the per-(name, address) limit */
#define SVM_DEF_DECRYPT_WAIT 10
#define SVM_DEF_LOGIN_CONCURRENCY 4
#define SVM_DEF_ITHR_N 30
#define SVM_DEF_ITHR_S 600
#define SVM_LOGIN_KEY_LEN 32
#define SVM_DEF_HSTS "max-age=31536000"

extern const command_rec svm_cmds[];
void *svm_create_srv_conf(apr_pool_t *p, server_rec *s);
void *svm_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);
/* Fill defaults into a merged configuration (once, at check_config). */
void svm_conf_defaults(svm_srv_conf *sc);
/* 1 when a server uses SplitVault at all (own or inherited directives). */
int svm_conf_in_use(const svm_srv_conf *sc);
/* The cross-directive checks of one server in use: NULL, or what is wrong. */
const char *svm_conf_check(apr_pool_t *ptemp, const svm_srv_conf *sc);
/* SplitVaultAllowCoreDumps (process-wide); svm_conf_reset() before every
 * reading of the configuration. */
int svm_conf_allow_core(void);
void svm_conf_reset(void);

svm_srv_conf *svm_conf(const server_rec *s);
int svm_cookie_secure(const svm_srv_conf *sc);
const svm_field *svm_field_find(const svm_srv_conf *sc, const char *name);

/* ---- database (svm_db.c) ------------------------------------------------ */

void svm_db_retrieve_fns(void);
int svm_db_available(void);
/* Register every prepared statement with mod_dbd for server s, including
 * the one-statement intake for a form of nfields fields. */
void svm_db_prepare(server_rec *s, int nfields);
/* Label of the intake statement for n fields. */
const char *svm_intake_label(apr_pool_t *p, int n);
/* The request's connection (NULL when the database is unreachable; logged). */
ap_dbd_t *svm_db(request_rec *r);
apr_dbd_prepared_t *svm_stmt(request_rec *r, ap_dbd_t *dbd, const char *label);

/* Run a prepared statement with text/blob arguments (apr_dbd_pbquery
 * convention). *nrows may be NULL. Logs failures with tag and returns
 * non-zero on error. */
int svm_db_exec(request_rec *r, ap_dbd_t *dbd, const char *label, int *nrows,
                const void **args);
/* A result being read row by row (apr_dbd keeps its position in the row). */
typedef struct {
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
} svm_rows;
/* Run a prepared select into a random-access result. */
int svm_db_select(request_rec *r, ap_dbd_t *dbd, const char *label, svm_rows *rows,
                  const void **args);
/* Next row, or NULL at the end. */
apr_dbd_row_t *svm_db_row(request_rec *r, ap_dbd_t *dbd, svm_rows *rows);
/* Column n of row, copied into r->pool ("" for NULL). */
const char *svm_db_col(request_rec *r, ap_dbd_t *dbd, apr_dbd_row_t *row, int n);
/* Begin / end a transaction with plain BEGIN, COMMIT and ROLLBACK (apr_dbd's
 * pgsql transaction calls dereference NULL when BEGIN fails on a dead
 * connection). svm_db_tx_begin returns non-zero on failure (logged).
 * svm_db_tx_end commits, or rolls back when rollback is set (callers set
 * it after any failed statement), and says what became of the transaction:
 * committed; rolled back (asked for, or the server answered COMMIT with an
 * error); or unknown (the COMMIT was sent but its answer was lost with the
 * connection: the server may have committed). Failures are logged. */
typedef enum {
    SVM_TX_COMMITTED = 0,
    SVM_TX_ROLLED_BACK,
    SVM_TX_UNKNOWN
} svm_tx_outcome;
int svm_db_tx_begin(request_rec *r, ap_dbd_t *dbd);
svm_tx_outcome svm_db_tx_end(request_rec *r, ap_dbd_t *dbd, int rollback);
/* After SVM_TX_UNKNOWN: a working session on the request's connection
 * (re-established by libpq when it is broken), to find out by reading.
 * 0, or -1 when the database cannot be reached (logged). */
int svm_db_fresh(request_rec *r, ap_dbd_t *dbd);
/* 1 (once) when the last rolled-back transaction failed only because the
 * connection had lost its prepared statements (libpq re-connects a pooled
 * connection after a database restart, without them) and they have been
 * prepared again: the caller may run its transaction once more. */
int svm_db_repaired(request_rec *r);
/* Decode hex (optionally "\x"-prefixed, as PostgreSQL prints bytea) into
 * exactly n bytes. Returns 0 on success. */
int svm_hex_decode(const char *hex, unsigned char *out, apr_size_t n);
char *svm_hex(apr_pool_t *p, const unsigned char *b, apr_size_t n);

/* ---- html (svm_html.c) -------------------------------------------------- */

const char *svm_esc(apr_pool_t *p, const char *s);
void svm_security_headers(request_rec *r, int staff_page);
/* Strict-Transport-Security on every answer of this request (error pages
 * and redirects included) when SplitVaultHSTS is on and the request came
 * over HTTPS; called first by both handlers. */
void svm_hsts(request_rec *r, const svm_srv_conf *sc);
struct svm_staff;
void svm_page_begin(request_rec *r, const svm_srv_conf *sc, const char *title,
                    const struct svm_staff *st);
void svm_page_end(request_rec *r);
/* Send a complete page with status and a plain message (escaped here).
 * Returns OK: the handler's return value. */
int svm_page_message(request_rec *r, const svm_srv_conf *sc, int status,
                     const char *title, const char *msg, const struct svm_staff *st);
int svm_send_stylesheet(request_rec *r);
int svm_redirect(request_rec *r, const char *path);
const char *svm_url(request_rec *r, const svm_srv_conf *sc, const char *rel);

/* ---- form bodies (svm_form.c) ------------------------------------------- */

/* svm_pair and the parsers (no httpd header; the fuzz targets build it) */
#include "svm_parse.h"

/* Read and parse an application/x-www-form-urlencoded body of at most max
 * bytes. Returns OK, or an HTTP status with *why set to a visitor-safe
 * reason: 415 (content type), 413 (too large), 400 (malformed). The body and
 * decoded values are cleansed when r->pool is cleared. */
int svm_form_read(request_rec *r, apr_off_t max, apr_array_header_t **pairs,
                  const char **why);
const svm_pair *svm_form_get(const apr_array_header_t *pairs, const char *name);
/* Read the request body (at most max bytes; larger gets 413 with *why =
 * too_large, malformed or unreadable 400) into secret memory that grows
 * with what arrives: Content-Length is checked against max but never used
 * to size anything. *out is NUL-terminated, *outlen long, in a block of
 * *size bytes (size may be NULL), cleansed when r->pool is cleared; after
 * a failure that came to reading, they describe what arrived. */
int svm_body_read(request_rec *r, apr_off_t max, char **out, apr_size_t *outlen,
                  apr_size_t *size, const char *too_large, const char **why);
/* Is the Content-Type application/x-www-form-urlencoded (parameters
 * allowed)? */
int svm_ct_urlencoded(const char *ct);
/* OK for SVM_PARSE_OK, else 400 with *why set to a visitor-safe reason. */
int svm_parse_verdict(int rc, const char **why);
/* A zeroed buffer of n bytes tied to pool p (never NULL): secure heap while
 * this pool's share (32 KiB) and the library's budget allow, else the
 * ordinary heap; cleansed and released at pool cleanup either way. */
void *svm_secret_palloc(apr_pool_t *p, apr_size_t n);
/* Is the query-string argument name present: value copied or NULL. */
const char *svm_query_arg(request_rec *r, const char *name);
/* A page number from the query string: 1 to 9 decimal digits, at most max;
 * anything else (absent, signed, too large, not a number) is page 0. */
int svm_query_page(request_rec *r, const char *name, int max);

/* ---- password hashing (svm_pwhash.c; no httpd header) ------------------- */
#include "svm_pwhash.h"

/* ---- sessions (svm_session.c) ------------------------------------------- */

typedef struct svm_staff {
    apr_int64_t id;
    const char *name;
    int can_update;
    int can_decrypt;
    int can_admin;
    unsigned char *token;      /* SVM_TOKEN_LEN bytes, cleansed memory */
    const char *csrf;          /* hex CSRF token for this session */
} svm_staff;

/* The signed-in staff member of this request, or NULL. Touches last_seen. */
svm_staff *svm_session_get(request_rec *r, const svm_srv_conf *sc);
/* Create a session for staff id; sets the cookie. Returns 0 on success. */
int svm_session_create(request_rec *r, const svm_srv_conf *sc, ap_dbd_t *dbd,
                       apr_int64_t staff_id);
/* End the request's session server-side (if any); expire the cookie when
 * clear_cookie is set. */
void svm_session_end(request_rec *r, const svm_srv_conf *sc, ap_dbd_t *dbd, int clear_cookie);
const char *svm_cookie_name(const svm_srv_conf *sc, const char *which);
void svm_cookie_set(request_rec *r, const svm_srv_conf *sc, const char *which,
                    const char *value, int max_age);
/* Raw bytes of a base64url cookie of exactly SVM_TOKEN_LEN bytes, or NULL. */
unsigned char *svm_cookie_token(request_rec *r, const svm_srv_conf *sc, const char *which);
char *svm_token_b64(apr_pool_t *p, const unsigned char *tok);

/* ---- CSRF (svm_csrf.c) -------------------------------------------------- */

/* Hex HMAC-SHA256(key = token, label). */
const char *svm_csrf_derive(apr_pool_t *p, const unsigned char *token, const char *label);
/* 1 when the form's "csrf" value matches the expected token (constant time). */
int svm_csrf_ok(const apr_array_header_t *pairs, const char *expected);
#define SVM_CSRF_SESSION "splitvault/v1 csrf"
#define SVM_CSRF_LOGIN "splitvault/v1 login csrf"

/* ---- sign-in (svm_auth.c) ----------------------------------------------- */

int svm_auth_init(apr_pool_t *p, server_rec *s);
/* The key that names are keyed with in login_throttle (HMAC-SHA256): read
 * from SplitVaultLoginKeyFile, or derived from SplitVaultDaemonKey when that
 * is not set. At check_config, after the daemon TLS context is built. NULL,
 * or an error message. */
const char *svm_auth_key_load(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                              svm_srv_conf *sc);
int svm_login_page(request_rec *r, const svm_srv_conf *sc, const char *msg, int status);
int svm_login_post(request_rec *r, const svm_srv_conf *sc);
int svm_logout_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st);

/* ---- pages (svm_pages.c) ------------------------------------------------ */

int svm_handler(request_rec *r);

/* ---- intake, update, decrypt, keys -------------------------------------- */

int svm_form_page(request_rec *r, const svm_srv_conf *sc, const char *const *errors,
                  int status);
int svm_intake_post(request_rec *r, const svm_srv_conf *sc);
int svm_update_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                    const char *ref, apr_array_header_t *pairs);
int svm_decrypt_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                     const char *ref, apr_array_header_t *pairs);
int svm_keys_handler(request_rec *r);
/* On the record page of privileged staff: a line when key1 is not loaded
 * or the daemon is unreachable or locked down (one STATUS call). */
void svm_decrypt_status_note(request_rec *r, const svm_srv_conf *sc);
/* Start-up note when the form's largest record needs several DECRYPTs. */
void svm_decrypt_check_form(server_rec *s, const svm_srv_conf *sc);

/* A record by reference code: its id and uuid text. 0 found, 1 not found,
 * -1 database error (logged). */
int svm_record_lookup(request_rec *r, ap_dbd_t *dbd, const char *ref, const char **id,
                      const char **uuid);
/* 1 when s is a well-formed reference code (XXXXX-XXXXX). */
int svm_ref_valid(const char *s);

/* Field value checks shared by intake and update. Returns NULL when value
 * is acceptable for f, else a visitor-safe reason. */
const char *svm_value_problem(apr_pool_t *p, const svm_field *f, const char *v,
                              apr_size_t len);

/* ---- intake throttle (svm_throttle.c) ---------------------------------- */

#define SVM_ITHR_MUTEX "splitvault-intake"

/* The client's network as both throttles count it: r->useragent_addr (so
 * mod_remoteip's view), an IPv6 address by its /64, an IPv4-mapped one as
 * IPv4. */
const char *svm_client_net(request_rec *r);
int svm_ithr_pre_config(apr_pool_t *pconf);
/* Make this generation's table and its mutex (not on the checking pass). */
int svm_ithr_post_config(apr_pool_t *pconf, server_rec *s);
void svm_ithr_child_init(apr_pool_t *p, server_rec *s);
/* Count one POST of the form for the client's network: 1 when it may go
 * on; 0 when it is over SplitVaultIntakeThrottle, with *retry_at the end
 * of the window (the first refusal of a window is logged). */
int svm_ithr_admit(request_rec *r, const svm_srv_conf *sc, apr_time_t *retry_at);

/* ---- key1 public key (svm_key1.c) --------------------------------------- */

typedef struct {
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    unsigned char pub[SV_X25519_LEN];
} svm_key1pub;

void svm_key1_child_init(apr_pool_t *p);
/* The active key1 public key (cached per child for a few seconds).
 * APR_NOTFOUND when none is registered; APR_EACCES when SplitVaultKey1Pin
 * is set and does not list it (logged with its fingerprint: nothing may be
 * sealed to it); other errors logged. */
apr_status_t svm_key1_active(request_rec *r, ap_dbd_t *dbd, svm_key1pub *out);
/* 1 when fp may be sealed to: SplitVaultKey1Pin lists it, or is not set. */
int svm_key1_pinned(const svm_srv_conf *sc, const char *fp);

/* ---- key1 private keys in shared memory (svm_shm.c) -------------------- */

#define SVM_KEY1_SLOTS 4          /* key1 private keys loaded at once, at most */
#define SVM_KEY1_PARTS 8          /* reserved: parts per slot for k-of-n loading */
#define SVM_KEY1_MUTEX "splitvault-key1"

/* What the key location may show of a loaded key (nothing secret). */
typedef struct {
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    char by[SV_WIRE_MAX_ACTOR + 1];
    apr_time_t since;
} svm_key1_info;

int svm_shm_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
/* Create the segment and its mutex once (skipping the first, checking
 * pass); a graceful restart finds them again. */
int svm_shm_post_config(apr_pool_t *pconf, server_rec *s);
void svm_shm_child_init(apr_pool_t *p, server_rec *s);
/* The loaded keys into out[SVM_KEY1_SLOTS]; returns their number, or -1
 * when the segment is unavailable (logged). */
int svm_key1_slots(request_rec *r, svm_key1_info *out);
/* Copy a key1 private key (checked by the caller against its registered
 * public key) into a slot, replacing one of the same fingerprint (then
 * *replaced = 1). APR_ENOSPC when every slot is taken. */
apr_status_t svm_key1_load(request_rec *r, const unsigned char sk[SV_X25519_LEN],
                           const unsigned char pk[SV_X25519_LEN], const char *fp,
                           const char *by, int *replaced);
/* Cleanse the slot holding fp. APR_NOTFOUND when none does. */
apr_status_t svm_key1_forget(request_rec *r, const char *fp);
/* Copy the private key of fp into sk (the caller cleanses it after use).
 * APR_NOTFOUND when it is not loaded. */
apr_status_t svm_key1_private(request_rec *r, const char *fp, unsigned char sk[SV_X25519_LEN]);

/* ---- key location upload bodies (svm_upload.c) --------------------------- */

/* A request body read whole into secret memory and parsed in place:
 * application/x-www-form-urlencoded or multipart/form-data. Values (the
 * PEM, the passphrase) point into buf; svm_upload_wipe() cleanses all of
 * it at once (a pool cleanup does it again at the end of the request). */
typedef struct {
    char *buf;
    apr_size_t len;
    apr_size_t size;             /* bytes of the block buf is in */
    apr_array_header_t *pairs;   /* svm_pair */
} svm_upload;

/* Read and parse the body (at most max bytes). OK, or an HTTP status with
 * *why set to an admin-safe reason. */
int svm_upload_read(request_rec *r, apr_off_t max, svm_upload *u, const char **why);
void svm_upload_wipe(svm_upload *u);

/* ---- daemon client (svm_daemon.c) --------------------------------------- */

/* An answer from the daemon: type is the message type; body points to
 * body_len bytes in cleansed request-pool memory. For SV_MSG_ERROR, err is
 * decoded. sent is set as soon as the frame is about to be written, also
 * when the exchange then fails: no share of it can be older. */
typedef struct {
    uint8_t type;
    const uint8_t *body;
    apr_size_t body_len;
    sv_error_msg err;
    apr_time_t sent;    /* when the frame began to go out (0: it never did) */
} svm_dreply;

SSL_CTX *svm_daemon_ssl_ctx(apr_pool_t *p, server_rec *s, const svm_srv_conf *sc,
                            const char **err);
void svm_daemon_child_init(apr_pool_t *p, server_rec *s);
/* Send one frame (built by an sv_*_encode with reqid) over a pooled
 * connection and read one answer frame. timeout 0: the configured one.
 * Returns APR_SUCCESS when an answer of any type came back (an ERROR
 * answer included); a transport or protocol failure otherwise (logged). */
apr_status_t svm_daemon_call(request_rec *r, const svm_srv_conf *sc, const sv_buf *frame,
                             uint32_t reqid, apr_interval_time_t timeout, svm_dreply *rep);
/* A request id for a new frame. */
uint32_t svm_daemon_reqid(void);
/* STORE: all fields of one submission, one round trip. On a daemon error
 * answer returns APR_EGENERAL with *werr set (0 for transport failures).
 * *sent: when the frame began to go out (0 when it never did). */
apr_status_t svm_daemon_store(request_rec *r, const svm_srv_conf *sc, const sv_store_req *req,
                              sv_store_resp *resp, int *werr, apr_time_t *sent);
/* STATUS (for the admin pages). */
apr_status_t svm_daemon_status(request_rec *r, const svm_srv_conf *sc, sv_status_resp *st);
/* CONFIRM: does the daemon hold share_id for this record and field, in
 * use, with this key2 public key? *confirmed 1 or 0 on APR_SUCCESS; an
 * error answer or a transport failure otherwise (logged). actor: the staff
 * member, for the daemon's audit log. */
apr_status_t svm_daemon_confirm(request_rec *r, const svm_srv_conf *sc,
                                const uint8_t uuid[SV_UUID_LEN], const char *actor,
                                const char *field, apr_uint64_t share_id,
                                const uint8_t pub[SV_X25519_LEN], int *confirmed);

/* ---- audit (svm_audit.c) ------------------------------------------------ */

/* Insert an audit row (never a value). Any argument but action and outcome
 * may be NULL. Returns 0 on success (failures logged). */
int svm_audit(request_rec *r, ap_dbd_t *dbd, const char *actor, const char *action,
              const char *record_ref, const char *field, const char *outcome,
              const char *detail);
int svm_audit_page(request_rec *r, const svm_srv_conf *sc, svm_staff *st);

/* ---- test-only fault hooks ---------------------------------------------- */
#ifdef SV_TEST_HOOKS
/* Name of the fault to inject, from the request header X-SplitVault-Fault
 * (compiled only into test builds), or NULL. */
const char *svm_test_fault(request_rec *r);
#endif

#endif /* SVM_H */
