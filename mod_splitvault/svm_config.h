/*
 * svm_config.h - SplitVault* directives, the server configuration, its defaults and checks.
 */
#ifndef SVM_CONFIG_H
#define SVM_CONFIG_H

#include "svm.h"

#include <openssl/ssl.h>

typedef struct {
    const char *name;   /* [A-Za-z0-9_-]{1,64} */
    const char *label;  /* shown to visitors and staff */
    int required;
    int maxlen;         /* characters (Unicode code points) */
    int multiline;      /* textarea instead of a one-line input */
} svm_field;

typedef struct svm_dpool svm_dpool;

/* One daemon of SplitVaultDaemon. */
typedef struct {
    const char *host;
    apr_port_t port;
    const char *addr;   /* "host:port" as configured, for logs and pages */
} svm_daemon_ep;

#define SVM_DAEMON_MAX 16 /* endpoints in one SplitVaultDaemon */

typedef struct {
    const char *base;         /* URL path served by handler "splitvault" */
    const char *title;        /* form title */
    const char *intro;        /* one paragraph above the form */
    apr_array_header_t *fields; /* svm_field, in form order */
    apr_off_t max_body;       /* bytes; larger bodies get 413 */

    /* daemon client */
    apr_array_header_t *daemons; /* svm_daemon_ep, in configured order; NULL: unset */
    const char *daemon_name;  /* name checked in every daemon's certificate; NULL:
                                 each endpoint's host */
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
    /* key1 dual control */
    int key1_share_timeout;   /* SplitVaultKey1ShareTimeout: seconds */
    int key1_whole_file;      /* SplitVaultKey1WholeFile: -1 unset, default on */
    int key1_min_shares;      /* SplitVaultKey1MinShares: least k accepted */

    /* SplitVaultStaffConsole: -1 unset, default off; the console's pages
     * (svm_console.c) exist only where it is on */
    int staff_console;
    /* SplitVaultStaffConsoleURL: where staff change passwords when this
     * server has no console, or NULL */
    const char *staff_console_url;

    /* run time (not merged) */
    SSL_CTX *ssl_ctx;         /* built at check_config */
    svm_dpool *dpool;         /* per child, created in child_init */
    unsigned dbal_base;       /* first entry of this server's daemons in the
                                 shared table (svm_dbal_post_config) */
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
#define SVM_DEF_KEY1_SHARE_TIMEOUT 900
#define SVM_DEF_KEY1_MIN_SHARES 2

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

#endif /* SVM_CONFIG_H */
