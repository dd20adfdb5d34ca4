/*
 * svd_ctl.c - control socket server and lock-state housekeeping.
 *
 * One thread: poll(2) on the listening socket and a stop pipe; each client
 * is served to completion (5 s timeout) before the next is accepted.
 * Commands are matched exactly; nothing else is read. The durable lock
 * state is synced by the housekeeping thread (svd_house.c), not here: a
 * slow store never keeps the operator waiting for more than their own
 * command.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "svd.h"
#include "svd_audit.h"
#include "svd_clock.h"
#include "svd_ctl.h"
#include "svd_limit.h"
#include "svd_log.h"
#include "svd_refusal.h"
#include "svd_store.h"
#include "sv_hex.h"

#define SVD_CTL_MAGIC 0xc7c7c7c7u

struct svd_ctl {
    unsigned magic;
    struct svd_app *app;
    int fd;
    uid_t uid;
    int stop_pipe[2];
    pthread_t thread;
};

/*
 * Give the socket just bound at path to the daemon's user, without a path
 * race: the directory may be the user's own, so between bind() and a
 * chown() by name it could put a symlink or a hard link there, and root
 * would hand it the target. Instead the node is opened (O_PATH, never
 * following a symlink), checked to be a socket root just made (owned by
 * root, one link), and changed through that descriptor.
 */
static int
give_socket(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    struct stat st;
    int fd, r = -1;

    if ((fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "control.socket: %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != 0 || st.st_nlink != 1) {
        snprintf(err, errlen, "control.socket: %s was replaced after it was bound (not the "
                 "daemon's socket any more): refused", path);
        goto out;
    }
    if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0) {
        snprintf(err, errlen, "control.socket: %s: %s", path, strerror(errno));
        goto out;
    }
    r = 0;
out:
    close(fd);
    return r;
}

int
svd_ctl_listen(const char *path, uid_t uid, gid_t gid, int *fd, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;
    mode_t old;
    int s = -1, r = -1;

    *fd = -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "control.socket: path too long");
        goto out;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "control.socket: %s exists and is not a socket", path);
            goto out;
        }
        (void)unlink(path); /* stale, from an earlier run (unlink never follows) */
    }
    if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        snprintf(err, errlen, "control.socket: %s", strerror(errno));
        goto out;
    }
    /* the umask makes it 0600 at creation: no chmod by name afterwards */
    old = umask(0177);
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        umask(old);
        snprintf(err, errlen, "control.socket: bind %s: %s", path, strerror(errno));
        goto out;
    }
    umask(old);
#ifdef SV_TEST_HOOKS
    {
        /* test builds: the race, made to happen (the node swapped for a
         * symlink to the file SVD_TEST_CTL_SWAP names) */
        const char *t = getenv("SVD_TEST_CTL_SWAP");
        if (t != NULL && (unlink(path) != 0 || symlink(t, path) != 0)) {
            snprintf(err, errlen, "control.socket: test swap: %s", strerror(errno));
            goto out;
        }
    }
#endif
    if (geteuid() == 0 && give_socket(path, uid, gid, err, errlen) != 0)
        goto out;
    *fd = s;
    s = -1;
    r = 0;
out:
    if (s >= 0)
        close(s);
    return r;
}

static void
say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(int fd, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        (void)!write(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void
cmd_status(struct svd_ctl *ctl, int fd)
{
    struct svd_app *app = ctl->app;
    uint64_t since = 0, active = 0, pending = 0, seq = 0;
    uint8_t hash[SVD_AUDIT_HASH_LEN];
    char hx[2 * SVD_AUDIT_HASH_LEN + 1];
    int locked = svd_limiter_locked(app->limiter, &since);
    int counts = svd_store_counts(app->store, &active, &pending) == 0;

    uint64_t commits = 0, ops = 0;

    svd_audit_head(app->audit, &seq, hash);
    sv_hex_encode(hash, sizeof(hash), hx);
    svd_store_writer_stats(app->store, &commits, &ops);
    say(fd, "ok\nversion=%s\npid=%ld\nuptime=%" PRIu64 "\nlocked=%d\nlocked_since=%" PRIu64
        "\nqueue_len=%u\nqueue_max=%u\npressure=%u\n", PACKAGE_VERSION, (long)getpid(),
        svd_wall_s() - app->started, locked, since, svd_limiter_queue_len(app->limiter),
        app->conf->queue_max, svd_limiter_pressure(app->limiter));
    say(fd, "lock_durable=%d\n", !svd_app_lock_write_pending(app));
    if (counts)
        say(fd, "shares_active=%" PRIu64 "\nshares_pending=%" PRIu64 "\n", active, pending);
    else
        say(fd, "store=unavailable\n");
    say(fd, "store_commits=%" PRIu64 "\nstore_write_ops=%" PRIu64 "\n", commits, ops);
    say(fd, "stores=%" PRIu64 "\ndecrypts=%" PRIu64 "\nrefusals=%" PRIu64
        "\naudit_healthy=%d\naudit_seq=%" PRIu64 "\naudit_hash=%s\n",
        SVD_READ(app, n_stores), SVD_READ(app, n_decrypts), SVD_READ(app, n_refusals),
        svd_audit_healthy(app->audit), seq, hx);
}

static void
serve_client(struct svd_ctl *ctl, int fd)
{
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    struct timeval tv = { 5, 0 };
    char line[SVD_CTL_MAX_LINE + 2], source[48];
    size_t got = 0;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
        svd_warn("control: cannot read peer credentials: %s", strerror(errno));
        return;
    }
    if (cred.uid != 0 && cred.uid != ctl->uid) {
        char who[32];
        snprintf(who, sizeof(who), "uid-%ld", (long)cred.uid);
        if (svd_refusal(ctl->app->refusals, "control-uid", who, ""))
            svd_warn("control: refused uid %ld (only root or the daemon's user)", (long)cred.uid);
        say(fd, "error: permission denied\n");
        return;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    while (got < sizeof(line) - 1) {
        ssize_t n = read(fd, line + got, sizeof(line) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(line, '\n', got) != NULL)
            break;
    }
    line[got] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    snprintf(source, sizeof(source), "control-uid-%ld", (long)cred.uid);
    svd_info("control: \"%.*s\" from uid %ld", SVD_CTL_MAX_LINE, line, (long)cred.uid);
    if (strcmp(line, "status") == 0) {
        cmd_status(ctl, fd);
    } else if (strcmp(line, "lockdown") == 0) {
        if (svd_app_lockdown(ctl->app, "operator", source) == 0)
            say(fd, "ok\nlocked=1\n");
        else if (svd_app_lock_write_pending(ctl->app))
            say(fd, "error: locked down in memory, but the store could not record it: not "
                "durable yet (retried every second; see the daemon's log)\nlocked=1\n");
        else
            say(fd, "error: locked down and recorded in the store, but the audit log could not "
                "record it\nlocked=1\n");
    } else if (strcmp(line, "unlock") == 0) {
        if (!svd_limiter_locked(ctl->app->limiter, NULL)) {
            int locked = 0;
            uint64_t since = 0;
            /* maybe only the store says so (another daemon) */
            if (svd_store_lock_state(ctl->app->store, &locked, &since) == 0 && !locked) {
                say(fd, "ok\nlocked=0\nnote=was not locked\n");
                return;
            }
        }
        switch (svd_app_unlock(ctl->app, source)) {
        case SVD_UNLOCK_OK:
            say(fd, "ok\nlocked=0\n");
            break;
        case SVD_UNLOCK_AUDIT:
            say(fd, "error: the audit log cannot record the unlock; still locked\n");
            break;
        case SVD_UNLOCK_STORE:
            say(fd, "error: the store could not record the unlock; still locked\n");
            break;
        }
    } else if (strcmp(line, "audit-verify") == 0) {
        struct svd_audit_result res;
        if (svd_audit_verify_live(ctl->app->audit, &res) == 0)
            say(fd, "ok\nentries=%" PRIu64 "\nunconfirmed=%" PRIu64 "\nresult=%s\n", res.entries,
                res.unconfirmed, res.msg);
        else
            say(fd, "error: audit log does not verify at line %" PRIu64 ": %s\n", res.bad_line,
                res.msg);
    } else {
        say(fd, "error: unknown command (status, lockdown, unlock, audit-verify)\n");
    }
}

static void *
ctl_main(void *arg)
{
    struct svd_ctl *ctl = arg;

    CHECK_OBJ_NOTNULL(ctl, SVD_CTL_MAGIC);
    for (;;) {
        struct pollfd pfd[2] = { { ctl->fd, POLLIN, 0 }, { ctl->stop_pipe[0], POLLIN, 0 } };
        int n = poll(pfd, 2, -1);

        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && pfd[1].revents != 0)
            break;
        if (n > 0 && (pfd[0].revents & POLLIN)) {
            int fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                serve_client(ctl, fd);
                close(fd);
            }
        }
    }
    return NULL;
}

struct svd_ctl *
svd_ctl_start(struct svd_app *app, int fd, uid_t daemon_uid)
{
    struct svd_ctl *ctl;
    pthread_attr_t attr;
    int rv;

    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    if ((ctl = calloc(1, sizeof(*ctl))) == NULL)
        return NULL;
    ctl->magic = SVD_CTL_MAGIC;
    ctl->app = app;
    ctl->fd = fd;
    ctl->uid = daemon_uid;
    if (listen(fd, 8) != 0) {
        svd_err("control.socket: listen: %s", strerror(errno));
        free(ctl);
        return NULL;
    }
    if (pipe2(ctl->stop_pipe, O_CLOEXEC) != 0) {
        free(ctl);
        return NULL;
    }
    AZ(pthread_attr_init(&attr));
    AZ(pthread_attr_setstacksize(&attr, 256 * 1024));
    rv = pthread_create(&ctl->thread, &attr, ctl_main, ctl);
    AZ(pthread_attr_destroy(&attr));
    if (rv != 0) {
        close(ctl->stop_pipe[0]);
        close(ctl->stop_pipe[1]);
        free(ctl);
        return NULL;
    }
    return ctl;
}

void
svd_ctl_stop(struct svd_ctl *ctl)
{
    if (ctl == NULL)
        return;
    CHECK_OBJ(ctl, SVD_CTL_MAGIC);
    (void)!write(ctl->stop_pipe[1], "x", 1);
    AZ(pthread_join(ctl->thread, NULL));
    close(ctl->stop_pipe[0]);
    close(ctl->stop_pipe[1]);
    ctl->magic = 0;
    free(ctl);
}
