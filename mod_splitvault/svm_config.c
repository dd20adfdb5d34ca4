/*
 * svm_config.c - SplitVault* directives and start-up checks.
 *
 * All directives are server-wide (main server or <VirtualHost>), each with
 * a help string and a scope check; every value is checked when read, so
 * `apache2 -t` names the bad line. Cross-directive checks (daemon files,
 * mod_dbd present, at least one field) run in check_config, which also runs
 * for `apache2 -t` (the hook is in mod_splitvault.c; the checks of one
 * server's values are here, svm_conf_check). docs/configuration.md
 * documents each directive. A leaf: calls no other file of the module.
 */
#include "svm.h"
#include "svm_config.h"

#include "sv_keyfile.h"
#include "sv_share.h"
#include "http_core.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include <netdb.h>
#include <sys/socket.h>

#define UNSET (-1)

/* SplitVaultAllowCoreDumps: process-wide, so server-wide only; reset
 * before every reading of the configuration. */
static int svm_allow_core;

svm_srv_conf *svm_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &splitvault_module);
}

void *svm_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    svm_srv_conf *sc = apr_pcalloc(p, sizeof(*sc));

    sc->fields = apr_array_make(p, 8, sizeof(svm_field));
    sc->key1_pins = apr_array_make(p, 2, sizeof(const char *));
    sc->max_body = UNSET;
    sc->daemon_timeout = UNSET;
    sc->decrypt_wait = UNSET;
    sc->pool_max = UNSET;
    sc->pool_idle = UNSET;
    sc->session_idle = UNSET;
    sc->session_max = UNSET;
    sc->cookie_secure = UNSET;
    sc->thr_acct_n = sc->thr_acct_s = UNSET;
    sc->thr_addr_n = sc->thr_addr_s = UNSET;
    sc->thr_name_n = sc->thr_name_s = UNSET;
    sc->login_concurrency = UNSET;
    sc->ithr_n = sc->ithr_s = UNSET;
    sc->key1_share_timeout = UNSET;
    sc->key1_whole_file = UNSET;
    sc->key1_min_shares = UNSET;
    sc->staff_console = UNSET;
    return sc;
}

#define MERGE_PTR(f) (add->f ? add->f : base->f)
#define MERGE_INT(f) (add->f != UNSET ? add->f : base->f)

void *svm_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    svm_srv_conf *base = basev, *add = addv;
    svm_srv_conf *sc = apr_pcalloc(p, sizeof(*sc));

    sc->base = MERGE_PTR(base);
    sc->title = MERGE_PTR(title);
    sc->intro = MERGE_PTR(intro);
    sc->fields = add->fields->nelts ? add->fields : base->fields;
    sc->max_body = MERGE_INT(max_body);
    sc->daemons = MERGE_PTR(daemons);
    sc->daemon_name = MERGE_PTR(daemon_name);
    sc->daemon_ca = MERGE_PTR(daemon_ca);
    sc->client_cert = MERGE_PTR(client_cert);
    sc->client_key = MERGE_PTR(client_key);
    sc->daemon_timeout = MERGE_INT(daemon_timeout);
    sc->decrypt_wait = MERGE_INT(decrypt_wait);
    sc->pool_max = MERGE_INT(pool_max);
    sc->pool_idle = MERGE_INT(pool_idle);
    sc->session_idle = MERGE_INT(session_idle);
    sc->session_max = MERGE_INT(session_max);
    sc->cookie_secure = MERGE_INT(cookie_secure);
    sc->thr_acct_n = MERGE_INT(thr_acct_n);
    sc->thr_acct_s = MERGE_INT(thr_acct_s);
    sc->thr_addr_n = MERGE_INT(thr_addr_n);
    sc->thr_addr_s = MERGE_INT(thr_addr_s);
    sc->thr_name_n = MERGE_INT(thr_name_n);
    sc->thr_name_s = MERGE_INT(thr_name_s);
    sc->login_key_file = MERGE_PTR(login_key_file);
    sc->login_concurrency = MERGE_INT(login_concurrency);
    sc->ithr_n = MERGE_INT(ithr_n);
    sc->ithr_s = MERGE_INT(ithr_s);
    sc->hsts = MERGE_PTR(hsts);
    /* a virtual host's own pins replace the main server's */
    sc->key1_pins = add->key1_pins->nelts ? add->key1_pins : base->key1_pins;
    sc->key1_share_timeout = MERGE_INT(key1_share_timeout);
    sc->key1_whole_file = MERGE_INT(key1_whole_file);
    sc->key1_min_shares = MERGE_INT(key1_min_shares);
    sc->staff_console = MERGE_INT(staff_console);
    sc->staff_console_url = MERGE_PTR(staff_console_url);
    return sc;
}

/* See svm.h. */
void svm_conf_defaults(svm_srv_conf *sc)
{
    if (!sc->base)
        sc->base = SVM_DEF_BASE;
    if (!sc->title)
        sc->title = SVM_DEF_TITLE;
    if (sc->max_body == UNSET)
        sc->max_body = SVM_DEF_MAX_BODY;
    if (sc->daemon_timeout == UNSET)
        sc->daemon_timeout = SVM_DEF_TIMEOUT;
    if (sc->decrypt_wait == UNSET)
        sc->decrypt_wait = SVM_DEF_DECRYPT_WAIT;
    if (sc->pool_max == UNSET)
        sc->pool_max = 0;
    if (sc->pool_idle == UNSET)
        sc->pool_idle = SVM_DEF_POOL_IDLE;
    if (sc->session_idle == UNSET)
        sc->session_idle = SVM_DEF_SESSION_IDLE;
    if (sc->session_max == UNSET)
        sc->session_max = SVM_DEF_SESSION_MAX;
    if (sc->thr_acct_n == UNSET) {
        sc->thr_acct_n = SVM_DEF_THR_ACCT_N;
        sc->thr_acct_s = SVM_DEF_THR_ACCT_S;
    }
    if (sc->thr_addr_n == UNSET) {
        sc->thr_addr_n = SVM_DEF_THR_ADDR_N;
        sc->thr_addr_s = SVM_DEF_THR_ADDR_S;
    }
    if (sc->thr_name_n == UNSET) {
        sc->thr_name_n = SVM_DEF_THR_NAME_FACTOR * sc->thr_acct_n;
        sc->thr_name_s = sc->thr_acct_s;
    }
    if (sc->login_concurrency == UNSET)
        sc->login_concurrency = SVM_DEF_LOGIN_CONCURRENCY;
    if (sc->ithr_n == UNSET) {
        sc->ithr_n = SVM_DEF_ITHR_N;
        sc->ithr_s = SVM_DEF_ITHR_S;
    }
    if (!sc->hsts)
        sc->hsts = SVM_DEF_HSTS;
    if (sc->key1_share_timeout == UNSET)
        sc->key1_share_timeout = SVM_DEF_KEY1_SHARE_TIMEOUT;
    if (sc->key1_whole_file == UNSET)
        sc->key1_whole_file = 1;
    if (sc->key1_min_shares == UNSET)
        sc->key1_min_shares = SVM_DEF_KEY1_MIN_SHARES;
    if (sc->staff_console == UNSET)
        sc->staff_console = 0;
}

int svm_cookie_secure(const svm_srv_conf *sc)
{
    return sc->cookie_secure != 0; /* on unless set Off */
}

const svm_field *svm_field_find(const svm_srv_conf *sc, const char *name)
{
    const svm_field *f = (const svm_field *)sc->fields->elts;
    int i;

    for (i = 0; i < sc->fields->nelts; i++)
        if (strcmp(f[i].name, name) == 0)
            return &f[i];
    return NULL;
}

/* ---- directive handlers -------------------------------------------------- */

/* Common prologue: scope check, and this server's own config. */
static const char *svm_cmd_ctx(cmd_parms *cmd, svm_srv_conf **sc)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);

    if (err)
        return err;
    *sc = svm_conf(cmd->server);
    return NULL;
}

/* A positive integer in [lo, hi], or an error message naming the directive. */
static const char *svm_int_arg(cmd_parms *cmd, const char *arg, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number from %ld to %ld",
                            cmd->cmd->name, arg, lo, hi);
    *out = v;
    return NULL;
}

static const char *set_base(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    apr_size_t n;
    const char *c;

    if (err)
        return err;
    n = strlen(arg);
    if (n < 2 || arg[0] != '/' || arg[n - 1] == '/')
        return "SplitVaultBase: give a URL path such as /splitvault (leading slash, "
               "no trailing slash)";
    for (c = arg; *c; c++)
        if (!apr_isalnum(*c) && !strchr("/-_.~", *c))
            return "SplitVaultBase: only letters, digits and / - _ . ~ are allowed";
    sc->base = arg;
    return NULL;
}

static const char *set_text(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);

    if (err)
        return err;
    if (!*arg || strlen(arg) > 2000)
        return apr_psprintf(cmd->pool, "%s: give a text of 1 to 2000 characters",
                            cmd->cmd->name);
    if (cmd->info == (void *)0)
        sc->title = arg;
    else
        sc->intro = arg;
    return NULL;
}

/* SplitVaultField name "Label" [required] [maxlength=N] [multiline] */
static const char *add_field(cmd_parms *cmd, void *dc, const char *args)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    svm_field *f;
    char *w;
    long v;

    if (err)
        return err;
    f = apr_array_push(sc->fields);
    memset(f, 0, sizeof(*f));
    f->maxlen = SVM_DEF_MAXLEN;
    f->name = ap_getword_conf(cmd->pool, &args);
    f->label = ap_getword_conf(cmd->pool, &args);
    if (!sv_field_name_valid(f->name, strlen(f->name)))
        return apr_psprintf(cmd->pool, "SplitVaultField: '%s' is not a valid field name "
                            "(1 to 64 of A-Z a-z 0-9 _ -)", f->name);
    if (!*f->label)
        return apr_psprintf(cmd->pool, "SplitVaultField %s: a label is required", f->name);
    if (sc->fields->nelts > SVM_MAX_FIELDS)
        return apr_psprintf(cmd->pool, "SplitVaultField: at most %d fields per form",
                            SVM_MAX_FIELDS);
    if (sc->fields->nelts > 1) {
        const svm_field *all = (const svm_field *)sc->fields->elts;
        int i;
        for (i = 0; i < sc->fields->nelts - 1; i++)
            if (strcmp(all[i].name, f->name) == 0)
                return apr_psprintf(cmd->pool, "SplitVaultField: field '%s' is defined twice",
                                    f->name);
    }
    while (*(w = ap_getword_conf(cmd->pool, &args))) {
        if (strcasecmp(w, "required") == 0)
            f->required = 1;
        else if (strcasecmp(w, "optional") == 0)
            f->required = 0;
        else if (strcasecmp(w, "multiline") == 0)
            f->multiline = 1;
        else if (strncasecmp(w, "maxlength=", 10) == 0) {
            if ((err = svm_int_arg(cmd, w + 10, 1, SV_DATUM_MAX / 4, &v)))
                return err;
            f->maxlen = (int)v;
        }
        else
            return apr_psprintf(cmd->pool, "SplitVaultField %s: unknown option '%s' (use "
                                "required, optional, multiline, maxlength=N)", f->name, w);
    }
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    long v;

    if (err || (err = svm_int_arg(cmd, arg, 1024, 4 * 1024 * 1024, &v)))
        return err;
    sc->max_body = v;
    return NULL;
}

/* The form of host under which two endpoints are the same daemon: an IP
 * address as the resolver reads it, written the one way (127.1 and
 * 127.0.0.1, [0::1] and [::1]); a name in lower case without one trailing
 * dot. Names are not resolved (two names of one address pass). */
static const char *svm_daemon_key(apr_pool_t *p, const char *host)
{
    struct addrinfo hints, *ai = NULL;
    char num[NI_MAXHOST], *k;
    apr_size_t len;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = AI_NUMERICHOST;
    if (getaddrinfo(host, NULL, &hints, &ai) == 0) {
        int ok = getnameinfo(ai->ai_addr, ai->ai_addrlen, num, sizeof(num), NULL, 0,
                             NI_NUMERICHOST) == 0;
        freeaddrinfo(ai);
        if (ok)
            return apr_pstrdup(p, num);
    }
    k = apr_pstrdup(p, host);
    len = strlen(k);
    if (len > 1 && k[len - 1] == '.')
        k[len - 1] = '\0';
    ap_str_tolower(k);
    return k;
}

/* SplitVaultDaemon host:port [host:port ...]: one line per context, at
 * most SVM_DAEMON_MAX endpoints, none twice (svm_daemon_key), an IPv6
 * address in brackets. */
static const char *set_daemon(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    const char *key[SVM_DAEMON_MAX];
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    int i, j;

    if (err)
        return err;
    if (sc->daemons)
        return "SplitVaultDaemon is given twice here: name every daemon on one line "
               "(SplitVaultDaemon host:port host:port ...)";
    if (argc < 1)
        return "SplitVaultDaemon: give host:port, e.g. 127.0.0.1:7443 or [::1]:7443";
    if (argc > SVM_DAEMON_MAX)
        return apr_psprintf(cmd->pool, "SplitVaultDaemon: %d daemons, at most %d", argc,
                            SVM_DAEMON_MAX);
    sc->daemons = apr_array_make(cmd->pool, argc, sizeof(svm_daemon_ep));
    for (i = 0; i < argc; i++) {
        svm_daemon_ep *ep = apr_array_push(sc->daemons);
        char *host, *scope;
        apr_port_t port;

        if (argv[i][0] != '[' && strchr(argv[i], ':') != strrchr(argv[i], ':'))
            return apr_psprintf(cmd->pool, "SplitVaultDaemon: an IPv6 address goes in "
                                "brackets, e.g. [::1]:7443 (not '%s')", argv[i]);
        if (apr_parse_addr_port(&host, &scope, &port, argv[i], cmd->pool) != APR_SUCCESS
            || !host || !port || scope)
            return apr_psprintf(cmd->pool, "SplitVaultDaemon: give host:port, e.g. "
                                "127.0.0.1:7443 or [::1]:7443 (not '%s')", argv[i]);
        ep->host = host;
        ep->port = port;
        ep->addr = argv[i];
        key[i] = svm_daemon_key(cmd->pool, host);
        for (j = 0; j < i; j++) {
            const svm_daemon_ep *o = &APR_ARRAY_IDX(sc->daemons, j, svm_daemon_ep);
            if (o->port == port && strcmp(key[j], key[i]) == 0)
                return apr_psprintf(cmd->pool, "SplitVaultDaemon: %s is named twice",
                                    argv[i]);
        }
    }
    return NULL;
}

static const char *set_daemon_name(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    const char *c;

    if (err)
        return err;
    for (c = arg; *c; c++)
        if (!apr_isalnum(*c) && !strchr(".-:", *c))
            return "SplitVaultDaemonName: give a DNS name or an IP address";
    if (!*arg)
        return "SplitVaultDaemonName: empty name";
    sc->daemon_name = arg;
    return NULL;
}

static const char *set_file(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    const char *path;
    apr_finfo_t fi;

    if (err)
        return err;
    path = ap_server_root_relative(cmd->pool, arg);
    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS
        || fi.filetype != APR_REG)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a readable file", cmd->cmd->name, arg);
    switch ((int)(long)cmd->info) {
    case 0: sc->daemon_ca = path; break;
    case 1: sc->client_cert = path; break;
    case 2: sc->client_key = path; break;
    default: sc->login_key_file = path; break;
    }
    return NULL;
}

static const char *set_timeout(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    long v;

    if (err || (err = svm_int_arg(cmd, arg, 1, 300, &v)))
        return err;
    sc->daemon_timeout = apr_time_from_sec(v);
    return NULL;
}

static const char *set_decrypt_wait(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    long v;

    if (err || (err = svm_int_arg(cmd, arg, 0, 300, &v)))
        return err;
    sc->decrypt_wait = (int)v;
    return NULL;
}

static const char *set_pool(cmd_parms *cmd, void *dc, const char *a1, const char *a2)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    long v;

    if (err || (err = svm_int_arg(cmd, a1, 1, 1024, &v)))
        return err;
    sc->pool_max = (int)v;
    if (a2) {
        if ((err = svm_int_arg(cmd, a2, 1, 86400, &v)))
            return err;
        sc->pool_idle = (int)v;
    }
    return NULL;
}

static const char *set_seconds(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    long v;

    if (err || (err = svm_int_arg(cmd, arg, 1, 7 * 86400, &v)))
        return err;
    if (cmd->info == (void *)0)
        sc->session_idle = (int)v;
    else
        sc->session_max = (int)v;
    return NULL;
}

static const char *set_secure(cmd_parms *cmd, void *dc, int on)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);

    if (err)
        return err;
    sc->cookie_secure = on ? 1 : 0;
    return NULL;
}

static const char *set_throttle(cmd_parms *cmd, void *dc, const char *a1, const char *a2)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    long n, s;

    if (err || (err = svm_int_arg(cmd, a1, 1, 100000, &n))
        || (err = svm_int_arg(cmd, a2, 1, 7 * 86400, &s)))
        return err;
    if (cmd->info == (void *)0) {
        sc->thr_acct_n = (int)n;
        sc->thr_acct_s = (int)s;
    } else if (cmd->info == (void *)1) {
        sc->thr_addr_n = (int)n;
        sc->thr_addr_s = (int)s;
    } else {
        sc->thr_name_n = (int)n;
        sc->thr_name_s = (int)s;
    }
    return NULL;
}

/* SplitVaultIntakeThrottle count seconds | Off | 0 */
static const char *set_intake_throttle(cmd_parms *cmd, void *dc, const char *a1,
                                       const char *a2)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    long n, s;

    if (err)
        return err;
    if (strcasecmp(a1, "Off") == 0 || strcmp(a1, "0") == 0) {
        if (a2 && strcasecmp(a1, "Off") == 0)
            return "SplitVaultIntakeThrottle: Off takes nothing after it";
        sc->ithr_n = 0;
        sc->ithr_s = 0;
        return NULL;
    }
    if (!a2)
        return "SplitVaultIntakeThrottle: give a number of submissions and seconds (e.g. "
               "30 600), or Off";
    if ((err = svm_int_arg(cmd, a1, 1, 1000000, &n)) || (err = svm_int_arg(cmd, a2, 1, 86400, &s)))
        return err;
    sc->ithr_n = (int)n;
    sc->ithr_s = (int)s;
    return NULL;
}

static const char *set_login_concurrency(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    long v;

    if (err || (err = svm_int_arg(cmd, arg, 1, 256, &v)))
        return err;
    sc->login_concurrency = (int)v;
    return NULL;
}

/* SplitVaultKey1Pin fingerprint...: each the 64 hex digits of SHA-256 of a
 * key1 public key (as splitvault-admin key1-list prints it), kept in lower
 * case. */
static const char *add_key1_pin(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    char *fp;
    int i;

    if (err)
        return err;
    if (strlen(arg) != SV_FINGERPRINT_HEX_LEN
        || strspn(arg, "0123456789abcdefABCDEF") != SV_FINGERPRINT_HEX_LEN)
        return apr_psprintf(cmd->pool, "SplitVaultKey1Pin: '%s' is not a key1 fingerprint "
                            "(%d hex digits, as `splitvault-admin key1-list` shows it)", arg,
                            SV_FINGERPRINT_HEX_LEN);
    fp = apr_pstrdup(cmd->pool, arg);
    ap_str_tolower(fp);
    for (i = 0; i < sc->key1_pins->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(sc->key1_pins, i, const char *), fp) == 0)
            return NULL; /* named twice: once is enough */
    *(const char **)apr_array_push(sc->key1_pins) = fp;
    return NULL;
}

/* SplitVaultHSTS Off | max-age=SECONDS [includeSubDomains] [preload]: the
 * header's value is built here, once, in its canonical spelling. */
static const char *set_hsts(cmd_parms *cmd, void *dc, const char *args)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    const char *w;
    long age = -1;
    int subdomains = 0, preload = 0;

    if (err)
        return err;
    w = ap_getword_conf(cmd->temp_pool, &args);
    if (strcasecmp(w, "Off") == 0) {
        if (*ap_getword_conf(cmd->temp_pool, &args))
            return "SplitVaultHSTS: Off takes nothing after it";
        sc->hsts = "";
        return NULL;
    }
    for (; *w; w = ap_getword_conf(cmd->temp_pool, &args)) {
        if (strncasecmp(w, "max-age=", 8) == 0 && age < 0) {
            if ((err = svm_int_arg(cmd, w + 8, 0, 2 * 31536000L, &age)))
                return err;
        }
        else if (strcasecmp(w, "includeSubDomains") == 0 && !subdomains)
            subdomains = 1;
        else if (strcasecmp(w, "preload") == 0 && !preload)
            preload = 1;
        else
            return apr_psprintf(cmd->pool, "SplitVaultHSTS: unexpected '%s' (give Off, or "
                                "max-age=SECONDS [includeSubDomains] [preload], each once)", w);
    }
    if (age < 0)
        return "SplitVaultHSTS: give max-age=SECONDS (or Off)";
    if (preload && (!subdomains || age < 31536000L))
        return "SplitVaultHSTS: preload needs includeSubDomains and a max-age of at least "
               "31536000 (what browsers' preload lists require)";
    sc->hsts = apr_psprintf(cmd->pool, "max-age=%ld%s%s", age,
                            subdomains ? "; includeSubDomains" : "", preload ? "; preload" : "");
    return NULL;
}

/* SplitVaultKey1ShareTimeout seconds; SplitVaultKey1MinShares k (2 up to
 * the most shares the key location can hold, SV_SHARE_MAX_K) */
static const char *set_key1_share_int(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    /* the key1 segment is the whole server's: so are its rules */
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (!err)
        err = svm_cmd_ctx(cmd, &sc);
    long v;

    if (err)
        return err;
    if (cmd->info == (void *)0) {
        if ((err = svm_int_arg(cmd, arg, 1, 86400, &v)))
            return err;
        sc->key1_share_timeout = (int)v;
    }
    else {
        if ((err = svm_int_arg(cmd, arg, 2, SV_SHARE_MAX_K, &v)))
            return err;
        sc->key1_min_shares = (int)v;
    }
    return NULL;
}

static const char *set_key1_whole_file(cmd_parms *cmd, void *dc, int on)
{
    svm_srv_conf *sc;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (!err)
        err = svm_cmd_ctx(cmd, &sc);

    if (err)
        return err;
    sc->key1_whole_file = on ? 1 : 0;
    return NULL;
}

static const char *set_staff_console(cmd_parms *cmd, void *dc, int on)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);

    if (err)
        return err;
    sc->staff_console = on ? 1 : 0;
    return NULL;
}

/* SplitVaultStaffConsoleURL URL: an absolute http(s) URL, shown as a link;
 * no character that would need escaping in it. */
static const char *set_staff_console_url(cmd_parms *cmd, void *dc, const char *arg)
{
    svm_srv_conf *sc;
    const char *err = svm_cmd_ctx(cmd, &sc);
    const char *c;
    apr_size_t n = strlen(arg);

    if (err)
        return err;
    for (c = arg; *c; c++)
        if (*c <= ' ' || *c >= 0x7f || strchr("\"'<>\\`", *c))
            break;
    if (*c || n > 2000 || (strncmp(arg, "https://", 8) != 0 && strncmp(arg, "http://", 7) != 0)
        || strlen(arg + (arg[4] == 's' ? 8 : 7)) == 0)
        return "SplitVaultStaffConsoleURL: give an absolute http:// or https:// URL "
               "(no spaces, quotes or angle brackets)";
    sc->staff_console_url = arg;
    return NULL;
}

static const char *set_allow_core(cmd_parms *cmd, void *dc, int on)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err)
        return err;
    svm_allow_core = on;
    return NULL;
}

const command_rec svm_cmds[] = {
    AP_INIT_TAKE1("SplitVaultBase", set_base, NULL, RSRC_CONF,
                  "URL path where handler splitvault is set (default /splitvault)"),
    AP_INIT_TAKE1("SplitVaultFormTitle", set_text, (void *)0, RSRC_CONF,
                  "Title of the public submission form"),
    AP_INIT_TAKE1("SplitVaultFormIntro", set_text, (void *)1, RSRC_CONF,
                  "A paragraph shown above the public submission form"),
    AP_INIT_RAW_ARGS("SplitVaultField", add_field, NULL, RSRC_CONF,
                     "A form field: name \"Label\" [required] [maxlength=N] [multiline]"),
    AP_INIT_TAKE1("SplitVaultMaxBody", set_max_body, NULL, RSRC_CONF,
                  "Largest accepted form body in bytes (default 65536)"),
    AP_INIT_TAKE_ARGV("SplitVaultDaemon", set_daemon, NULL, RSRC_CONF,
                      "Addresses (host:port) of the daemons, up to 16, sharing one store"),
    AP_INIT_TAKE1("SplitVaultDaemonName", set_daemon_name, NULL, RSRC_CONF,
                  "Name checked in every daemon's certificate (default: each one's host)"),
    AP_INIT_TAKE1("SplitVaultDaemonCA", set_file, (void *)0, RSRC_CONF,
                  "PEM file of the CA that issued the daemon's certificate"),
    AP_INIT_TAKE1("SplitVaultDaemonCertificate", set_file, (void *)1, RSRC_CONF,
                  "PEM file of this server's client certificate towards the daemon"),
    AP_INIT_TAKE1("SplitVaultDaemonKey", set_file, (void *)2, RSRC_CONF,
                  "PEM file of the private key of SplitVaultDaemonCertificate"),
    AP_INIT_TAKE1("SplitVaultDaemonTimeout", set_timeout, NULL, RSRC_CONF,
                  "Seconds to wait for the daemon to connect or answer (default 5)"),
    AP_INIT_TAKE1("SplitVaultDecryptWait", set_decrypt_wait, NULL, RSRC_CONF,
                  "Seconds a decryption may wait in the daemon's queue before staff are told "
                  "it was not served (default 10)"),
    AP_INIT_TAKE12("SplitVaultDaemonPool", set_pool, NULL, RSRC_CONF,
                   "Daemon connections per child process [and idle seconds] "
                   "(default: ThreadsPerChild, 60)"),
    AP_INIT_TAKE1("SplitVaultSessionIdle", set_seconds, (void *)0, RSRC_CONF,
                  "Seconds of inactivity after which a staff session ends (default 900)"),
    AP_INIT_TAKE1("SplitVaultSessionMax", set_seconds, (void *)1, RSRC_CONF,
                  "Seconds after sign-in at which a staff session ends (default 28800)"),
    AP_INIT_FLAG("SplitVaultCookieSecure", set_secure, NULL, RSRC_CONF,
                 "On: session cookie is Secure and __Host- prefixed (default On)"),
    AP_INIT_TAKE2("SplitVaultLoginThrottle", set_throttle, (void *)0, RSRC_CONF,
                  "Failed sign-ins per staff name from one client address before a pause, "
                  "and its seconds (default 5 900)"),
    AP_INIT_TAKE2("SplitVaultLoginThrottleName", set_throttle, (void *)2, RSRC_CONF,
                  "Failed sign-ins per staff name from all addresses together before a "
                  "pause, and its seconds (default: 5 x SplitVaultLoginThrottle)"),
    AP_INIT_TAKE2("SplitVaultLoginThrottleAddress", set_throttle, (void *)1, RSRC_CONF,
                  "Failed sign-ins per client address before a pause, and its seconds "
                  "(default 20 900)"),
    AP_INIT_TAKE1("SplitVaultLoginKeyFile", set_file, (void *)3, RSRC_CONF,
                  "File with the secret (64 hex digits) that keys staff names in the "
                  "sign-in throttle; the same on every front end (default: derived from "
                  "SplitVaultDaemonKey)"),
    AP_INIT_TAKE12("SplitVaultIntakeThrottle", set_intake_throttle, NULL, RSRC_CONF,
                   "Submissions of the public form per client address (IPv6: per /64) "
                   "and window in seconds, or Off (default 30 600)"),
    AP_INIT_TAKE1("SplitVaultLoginConcurrency", set_login_concurrency, NULL, RSRC_CONF,
                  "Password verifications (Argon2id) at once per child; more get 503 "
                  "(default 4)"),
    AP_INIT_ITERATE("SplitVaultKey1Pin", add_key1_pin, NULL, RSRC_CONF,
                    "Fingerprints of the key1 public keys intake and decrypt may seal to "
                    "(default: any registered active key1)"),
    AP_INIT_TAKE1("SplitVaultKey1ShareTimeout", set_key1_share_int, (void *)0, RSRC_CONF,
                  "Seconds a set of key1 shares may wait for the rest at the key location "
                  "before it is wiped (default 900)"),
    AP_INIT_TAKE1("SplitVaultKey1MinShares", set_key1_share_int, (void *)1, RSRC_CONF,
                  "Fewest shares a key1 split must need to be loaded at the key location "
                  "(2 to 8, default 2)"),
    AP_INIT_FLAG("SplitVaultKey1WholeFile", set_key1_whole_file, NULL, RSRC_CONF,
                 "Off: key1 is loaded only from shares, never from a whole key file "
                 "(default On)"),
    AP_INIT_RAW_ARGS("SplitVaultHSTS", set_hsts, NULL, RSRC_CONF,
                     "Strict-Transport-Security on HTTPS answers: max-age=SECONDS "
                     "[includeSubDomains] [preload], or Off (default max-age=31536000)"),
    AP_INIT_FLAG("SplitVaultStaffConsole", set_staff_console, NULL, RSRC_CONF,
                 "On: this server serves the staff console (staff accounts, sessions, own "
                 "passwords); its DBDParams must name the console role (default Off)"),
    AP_INIT_TAKE1("SplitVaultStaffConsoleURL", set_staff_console_url, NULL, RSRC_CONF,
                  "Address of the staff console the staff pages link to for password "
                  "changes when this server has none (default: no link)"),
    AP_INIT_FLAG("SplitVaultAllowCoreDumps", set_allow_core, NULL, RSRC_CONF,
                 "On: httpd children may dump core (debugging only: a core dump may hold "
                 "key1, key shares and submitted values; default Off)"),
    { NULL }
};

/* ---- start-up checks ------------------------------------------------------ */

int svm_conf_allow_core(void)
{
    return svm_allow_core;
}

void svm_conf_reset(void)
{
    svm_allow_core = 0;
}

int svm_conf_in_use(const svm_srv_conf *sc)
{
    return sc->fields->nelts > 0 || sc->daemons != NULL;
}

/* The most failures one client address can add to a name's count within
 * one of the name's windows: a key of limit n and window w (in seconds)
 * lets n through per window, windows follow each other at least w apart,
 * so a span of ws seconds meets at most ceil(ws / w) + 1 of them. One
 * address is bound both by its (name, address) key and by its own. */
static apr_int64_t svm_one_address_reach(const svm_srv_conf *sc)
{
    apr_int64_t ws = sc->thr_name_s;
    apr_int64_t pair = sc->thr_acct_n * ((ws + sc->thr_acct_s - 1) / sc->thr_acct_s + 1);
    apr_int64_t addr = sc->thr_addr_n * ((ws + sc->thr_addr_s - 1) / sc->thr_addr_s + 1);

    return pair < addr ? pair : addr;
}

const char *svm_conf_check(apr_pool_t *ptemp, const svm_srv_conf *sc)
{
    if (sc->fields->nelts == 0)
        return "no SplitVaultField is configured";
    if (!sc->daemons)
        return "SplitVaultDaemon is not set";
    if (!sc->daemon_ca || !sc->client_cert || !sc->client_key)
        return "SplitVaultDaemonCA, SplitVaultDaemonCertificate and SplitVaultDaemonKey "
               "are all required";
    if (sc->session_idle > sc->session_max)
        return "SplitVaultSessionIdle is longer than SplitVaultSessionMax";
    if (sc->thr_name_n <= svm_one_address_reach(sc))
        /* one address alone must never pause a name for everyone */
        return apr_psprintf(ptemp, "SplitVaultLoginThrottleName (%d per %d s) is within "
                            "reach of a single client address, which SplitVaultLoginThrottle "
                            "(%d per %d s) and SplitVaultLoginThrottleAddress (%d per %d s) "
                            "let make %" APR_INT64_T_FMT " failures in that time: raise "
                            "it above %" APR_INT64_T_FMT,
                            sc->thr_name_n, sc->thr_name_s, sc->thr_acct_n, sc->thr_acct_s,
                            sc->thr_addr_n, sc->thr_addr_s, svm_one_address_reach(sc),
                            svm_one_address_reach(sc));
    if (apr_time_from_sec(sc->decrypt_wait) + 2 * sc->daemon_timeout
        > SVM_SHARE_MAX_AGE - SVM_COMMIT_RESERVE)
        /* a decryption that waits as long as allowed must still commit
         * within SVM_SHARE_MAX_AGE of its request */
        return apr_psprintf(ptemp, "SplitVaultDecryptWait (%d) plus twice "
                            "SplitVaultDaemonTimeout (%d) is more than %d seconds: a "
                            "decryption that waits that long could no longer be committed",
                            sc->decrypt_wait, (int)apr_time_sec(sc->daemon_timeout),
                            (int)apr_time_sec(SVM_SHARE_MAX_AGE - SVM_COMMIT_RESERVE));
    return NULL;
}
