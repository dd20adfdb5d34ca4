/*
 * svd_main.c - splitvaultd: command line, start-up order, signals, shutdown.
 *
 * Start-up order (each step needs the one before; see docs/privsep.md):
 *   1. parse the configuration (fatal errors name file, line and key);
 *   2. harden: no core dumps, umask; the secure heap;
 *   3. as root: load TLS keys, bind the listener and the control socket,
 *      open the audit log (verifying its chain) and the store lock, write
 *      the pid file, lock memory;
 *   4. drop to process.user, verified;
 *   5. connect to the store, read the durable lock-down state;
 *   6. start the audit writer, the store writer, the control and the
 *      housekeeping threads, then accept connections in this thread until
 *      SIGTERM/SIGINT.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "svd.h"
#include "svd_app.h"
#include "svd_audit.h"
#include "svd_clock.h"
#include "svd_conf.h"
#include "svd_ctl.h"
#include "svd_file.h"
#include "svd_harden.h"
#include "svd_house.h"
#include "svd_limit.h"
#include "svd_log.h"
#include "svd_net.h"
#include "svd_refusal.h"
#include "svd_space.h"
#include "svd_store.h"
#include "svd_tls.h"
#include "sv_secret.h"

static int sig_pipe[2] = { -1, -1 };

static void
on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;

    (void)!write(sig_pipe[1], &c, 1);
    errno = saved;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: splitvaultd [-f] [-d] -c FILE    run in the foreground\n"
            "       splitvaultd -t -c FILE           check the configuration and exit\n"
            "       splitvaultd --init-store -c FILE create the share-store schema and exit\n"
            "       splitvaultd -V | --version\n"
            "The control tool is splitvaultctl (status, lockdown, unlock, audit-verify,\n"
            "retired, restore).\n");
}

/* Written as root, in a directory the daemon's user may own: a planted
 * symlink, hard link or FIFO is refused (svd_open_regular), and the file is
 * truncated only once it is known to be a plain file of its own. */
static int
write_pid_file(const char *path, char *err, size_t errlen)
{
    char buf[32];
    int fd, n, r = -1;

    if ((fd = svd_open_regular(path, O_WRONLY | O_CREAT, 0644, "process.pid_file", err,
                               errlen)) < 0)
        return -1;
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, buf, (size_t)n) != n) {
        snprintf(err, errlen, "process.pid_file %s: %s", path, strerror(errno));
        goto out;
    }
    r = 0;
out:
    close(fd);
    return r;
}

/*
 * As root, what only the system can tell: the admin group exists and the
 * daemon's user is not in it, the audit log and its head lie where that
 * user cannot rename, remove or rewrite them, and the control socket where
 * it cannot put a socket of its own in the daemon's place
 * (svd_check_protected).
 * Started without root there is no other user to guard against: warned.
 */
static int
check_system(const struct svd_conf *conf, uid_t uid, gid_t gid, gid_t *admin_gid, char *err,
             size_t errlen)
{
    struct svd_who w;

    /* the user's groups, listed once for every check below */
    if (svd_who_get(&w, conf->user, uid, gid, err, errlen) != 0 ||
        svd_ctl_admin_group(conf->admin_group, &w, admin_gid, err, errlen) != 0)
        return -1;
    if (geteuid() != 0) {
        svd_warn("not started as root: the audit log is writable by the daemon's own user");
        return 0;
    }
    if (svd_check_protected(conf->audit_path, &w, "audit.path", 1, err, errlen) != 0 ||
        svd_check_protected(conf->audit_head, &w, "audit.head", 1, err, errlen) != 0 ||
        svd_check_protected(conf->ctl_socket, &w, "control.socket", 0, err, errlen) != 0)
        return -1;
    return 0;
}

/*
 * What a configuration allows that it may not mean: said by -t (on standard
 * output) and logged at every start, never refused.
 */
static void
conf_caveats(const struct svd_conf *conf, int to_stdout)
{
    char say[2][400];
    unsigned n = 0;

    if (conf->retention_s == 0)
        snprintf(say[n++], sizeof(say[0]), "retention.period is 0: retired shares are purged "
                 "at once, and nothing taken out of use can be restored (no undo)");
    /* an actor with a decrypt in its window keeps its slot for a day:
     * invented names could fill the table before the global budget trips */
    if (conf->budget_actor != 0 &&
        (conf->budget_global == 0 || conf->budget_global > conf->max_actors)) {
        char what[96];
        if (conf->budget_global == 0)
            snprintf(what, sizeof(what), "is 0 (none)");
        else
            snprintf(what, sizeof(what), "(%u) is above decrypt.max_actors (%u)",
                     conf->budget_global, conf->max_actors);
        snprintf(say[n++], sizeof(say[0]), "decrypt.daily_budget.global %s while "
                 "decrypt.daily_budget.actor is on: an actor that decrypts keeps its place "
                 "among decrypt.max_actors for 24 hours, so a front end that invents actor "
                 "names can fill them and leave new staff names RATE_LIMITED for up to a day; "
                 "keep the global budget at most max_actors", what);
    }
    for (unsigned i = 0; i < n; i++) {
        if (to_stdout)
            printf("splitvaultd: warning: %s\n", say[i]);
        else
            svd_warn("%s", say[i]);
    }
}

/* -t: everything that can be checked without binding or connecting. */
static int
check_config(const char *file)
{
    struct svd_conf *conf = NULL;
    char err[SVD_ERRBUF + 512];
    SSL_CTX *ctx = NULL;
    uid_t uid;
    gid_t gid, admin_gid;
    int r = 1;

    if (svd_conf_load(file, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "splitvaultd: %s\n", err);
        goto out;
    }
    if ((ctx = svd_tls_ctx(conf, err, sizeof(err))) == NULL) {
        fprintf(stderr, "splitvaultd: %s\n", err);
        goto out;
    }
    if (svd_resolve_user(conf->user, &uid, &gid, err, sizeof(err)) != 0 ||
        check_system(conf, uid, gid, &admin_gid, err, sizeof(err)) != 0) {
        fprintf(stderr, "splitvaultd: %s: %s\n", file, err);
        goto out;
    }
    conf_caveats(conf, 1);
    printf("splitvaultd: configuration %s OK\n", file);
    r = 0;
out:
    SSL_CTX_free(ctx);
    svd_conf_free(conf);
    return r;
}

static int
init_store(const char *file)
{
    struct svd_conf *conf = NULL;
    char err[SVD_ERRBUF + 512];
    int r = 1;

    if (svd_conf_load(file, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "splitvaultd: %s\n", err);
        goto out;
    }
    (void)svd_log_open(NULL, err, sizeof(err));
    if (svd_store_init_schema(conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "splitvaultd: %s\n", err);
        goto out;
    }
    printf("splitvaultd: store schema version %d present\n", SVD_SCHEMA_VERSION);
    r = 0;
out:
    svd_conf_free(conf);
    return r;
}

static int
run(const char *file, int debug)
{
    struct svd_conf *conf = NULL;
    struct svd_app app;
    struct svd_server *srv = NULL;
    struct svd_ctl *ctl = NULL;
    struct svd_house *house = NULL;
    SSL_CTX *ctx = NULL;
    char err[SVD_ERRBUF + 512];
    struct sigaction sa;
    int lfd = -1, cfd = -1, lock_fd = -1, r = 1, locked = 0, leaked = 0, owe_store = 0;
    uint64_t since = 0, audit_since = 0;
    uid_t uid;
    gid_t gid, admin_gid = SVD_NO_GROUP;

    svd_app_init(&app);
    if (svd_conf_load(file, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "splitvaultd: %s\n", err);
        svd_app_fini(&app);
        return 1;
    }
    app.conf = conf;
    if (svd_log_open(conf->log_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "splitvaultd: %s\n", err);
        goto out;
    }
    svd_log_set_level(debug ? SV_LOG_DEBUG : conf->log_level);
#ifdef SV_TEST_HOOKS
    svd_warn("splitvaultd %s: built with --enable-test-hooks: its fault-injection hooks are "
             "compiled in; never run this build in production", SV_VERSION);
#endif
    svd_harden_early();
    if (!sv_secret_init(conf->secure_heap))
        svd_warn("OpenSSL secure heap of %zu bytes not available; secrets use locked heap "
                 "memory", conf->secure_heap);
    if (svd_resolve_user(conf->user, &uid, &gid, err, sizeof(err)) != 0 ||
        check_system(conf, uid, gid, &admin_gid, err, sizeof(err)) != 0)
        goto fatal;
    if ((ctx = svd_tls_ctx(conf, err, sizeof(err))) == NULL)
        goto fatal;
    if (svd_net_listen(conf, &lfd, err, sizeof(err)) != 0)
        goto fatal;
    if (svd_ctl_listen(conf->ctl_socket, uid, gid, admin_gid, &cfd, err, sizeof(err)) != 0)
        goto fatal;
    if (svd_audit_open(conf->audit_path, conf->audit_head, &app.audit, err, sizeof(err)) != 0)
        goto fatal;
    if ((app.refusals = svd_refusals_new(app.audit, conf->refusal_period_ms, "refusal",
                                         "refusals")) == NULL ||
        (app.scans = svd_refusals_new(app.audit, conf->refusal_period_ms, "recon-scan",
                                      "RECON_SCAN pages")) == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        goto fatal;
    }
    if (svd_store_prelock(conf, &lock_fd, err, sizeof(err)) != 0)
        goto fatal;
    /* the watermark watches the audit log's file system and the sqlite3
     * store's (through its lock file, beside it) */
    app.space.min_free = conf->min_free;
    svd_space_watch(&app.space, svd_audit_fd(app.audit));
    svd_space_watch(&app.space, lock_fd);
    if (conf->pid_file != NULL && write_pid_file(conf->pid_file, err, sizeof(err)) != 0)
        goto fatal;
    if (conf->mlock)
        (void)svd_harden_mlock();
    if (svd_drop_privileges(uid, gid, err, sizeof(err)) != 0)
        goto fatal;
    if (svd_store_open(conf, &app.store, err, sizeof(err)) != 0)
        goto fatal;
    if (svd_store_lock_state(app.store, &locked, &since) != 0) {
        snprintf(err, sizeof(err), "store: cannot read the lock-down state");
        goto fatal;
    }
    /* the audit log is the second durable record of a lock-down: one whose
     * last lock-down entry has no later unlock starts locked, and the store
     * is told (below, once its writer runs) */
    if (!locked && svd_audit_locked_at_open(app.audit, &audit_since)) {
        svd_warn("the audit log's last lock-down was never unlocked (the store does not "
                 "record it): starting locked down");
        locked = 1;
        since = audit_since != 0 ? audit_since : svd_wall_s();
        owe_store = 1;
    }
    /* the decrypt limiter: this process's with a sqlite3 store (one
     * daemon), the store's with pgsql (shared by every daemon on it) */
    if ((app.limiter = conf->driver == SVD_DRIVER_PGSQL
         ? svd_limiter_new_with(conf, svd_limit_shared_new(conf, app.store), locked, since)
         : svd_limiter_new(conf, locked, since)) == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        goto fatal;
    }
    svd_info("decrypt limiter: %s", conf->driver == SVD_DRIVER_PGSQL
             ? "shared through the pgsql store (buckets, pressure and daily budgets)"
             : "in this process");
    app.started = svd_wall_s();
    if (svd_audit_start(app.audit) != 0 || svd_store_start(app.store) != 0) {
        snprintf(err, sizeof(err), "cannot start threads");
        goto fatal;
    }
    if (owe_store && svd_store_set_lock(app.store, since, "audit-log") != 0) {
        svd_err("lock-down could not be recorded in the store: retrying every second");
        app.lock_write_pending = 1;
        app.lock_pending_since = since;
        snprintf(app.lock_pending_why, sizeof(app.lock_pending_why), "audit-log");
    }
    if (pipe2(sig_pipe, O_CLOEXEC) != 0) {
        snprintf(err, sizeof(err), "pipe: %s", strerror(errno));
        goto fatal;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if ((ctl = svd_ctl_start(&app, cfd, uid, admin_gid)) == NULL ||
        (house = svd_house_start(&app)) == NULL ||
        (srv = svd_server_new(&app, ctx, lfd)) == NULL) {
        snprintf(err, sizeof(err), "cannot start the control and housekeeping threads");
        goto fatal;
    }
    conf_caveats(conf, 0);
    (void)svd_audit_event(app.audit, 1, "event=start version=%s pid=%ld locked=%d user=%ld",
                          PACKAGE_VERSION, (long)getpid(), locked, (long)uid);
    svd_info("splitvaultd %s listening on %s port %u (TLS 1.3, %s store%s)", SV_VERSION,
             conf->listen_address, conf->listen_port,
             conf->driver == SVD_DRIVER_SQLITE3 ? "sqlite3" : "pgsql",
             locked ? ", LOCKED DOWN: decrypts refused until unlocked" : "");

    svd_server_run(srv, sig_pipe[0]);

    svd_info("shutting down");
    close(lfd);
    lfd = -1;
    svd_limiter_close(app.limiter);
    svd_server_shutdown(srv, 5000);
    r = 0;
    goto out;
fatal:
    svd_err("cannot start: %s", err);
    if (conf->log_file != NULL)
        fprintf(stderr, "splitvaultd: cannot start: %s\n", err);
out:
    svd_ctl_stop(ctl);
    svd_house_stop(house);
    if (srv != NULL)
        leaked = svd_server_nconn(srv) > 0;
    if (app.refusals != NULL && app.audit != NULL)
        svd_refusals_flush(app.refusals, 1);
    if (app.scans != NULL && app.audit != NULL)
        svd_refusals_flush(app.scans, 1);
    if (app.audit != NULL && r == 0)
        (void)svd_audit_event(app.audit, 1, "event=stop pid=%ld", (long)getpid());
    if (leaked) {
        /* threads still inside a request: do not free what they use */
        svd_warn("exiting with busy connection threads");
        svd_audit_stop(app.audit);
        _exit(r);
    }
    svd_store_stop(app.store);
    svd_audit_stop(app.audit);
    svd_server_free(srv);
    svd_limiter_free(app.limiter);
    svd_refusals_free(app.refusals);
    svd_refusals_free(app.scans);
    svd_store_close(app.store);
    svd_audit_close(app.audit);
    if (lfd >= 0)
        close(lfd);
    if (cfd >= 0)
        close(cfd);
    if (lock_fd >= 0)
        close(lock_fd);
    if (conf->ctl_socket != NULL && r == 0)
        (void)unlink(conf->ctl_socket);
    SSL_CTX_free(ctx);
    svd_conf_free(conf);
    svd_app_fini(&app);
    return r;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "version", no_argument, NULL, 'V' },
        { "init-store", no_argument, NULL, 'I' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *file = NULL;
    int c, test = 0, init = 0, debug = 0;

    while ((c = getopt_long(argc, argv, "c:tfdhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            file = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 'f':
            break; /* the daemon always runs in the foreground */
        case 'd':
            debug = 1;
            break;
        case 'I':
            init = 1;
            break;
        case 'V':
            printf("splitvaultd %s (%s)\n", SV_VERSION, OpenSSL_version(OPENSSL_VERSION));
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || file == NULL) {
        usage(stderr);
        return 2;
    }
    if (test)
        return check_config(file);
    if (init)
        return init_store(file);
    return run(file, debug);
}
