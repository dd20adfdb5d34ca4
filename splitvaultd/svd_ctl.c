/*
 * svd_ctl.c - control socket server.
 *
 * One thread polls the listening socket and a stop pipe, reads each new
 * client's credentials and hands the client to a short-lived thread of its
 * own, so a client that connects and says nothing delays nobody else.
 * Every client has one deadline from its accept: 5 s to send its line,
 * 60 s in all for the daemon to wait on it (for its line, and for room to
 * write its answer); an answer that cannot be written by then is cut off
 * at the first write that fails, and at a stop every wait on a client ends
 * at once (the stop pipe), so no client can hold up the shutdown. Only
 * unlock and restore run one at a time (cmu); the other commands only read,
 * or (lockdown) are serialised by app->lock_mu, so a client that stops
 * reading a long answer holds up nobody else. Clients that
 * are not root or the admin group (the daemon's own user) get at most
 * CTL_MAX_OTHER such threads at once, root and the admin group at most
 * CTL_MAX_ADMIN of their own (the daemon's user cannot take those); past
 * either a new client is told "busy" and closed. Commands and their
 * arguments are matched exactly; nothing else is read. The durable lock state is synced by the housekeeping thread
 * (svd_house.c), not here: a slow store never keeps the operator waiting
 * for more than their own command.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
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
#include <sys/un.h>
#include <unistd.h>

#include "svd.h"
#include "svd_audit.h"
#include "svd_clock.h"
#include "svd_ctl.h"
#include "svd_file.h"
#include "svd_limit.h"
#include "svd_log.h"
#include "svd_refusal.h"
#include "svd_store.h"
#include "sv_format.h"
#include "sv_hex.h"

#define SVD_CTL_MAGIC 0xc7c7c7c7u

#define CTL_MAX_OTHER 2   /* client threads at once for the daemon's own user */
#define CTL_MAX_ADMIN 16  /* for root and the admin group */
#define CTL_LINE_MS 5000      /* a client's line must arrive within this */
#define CTL_CLIENT_MS 60000   /* and the daemon waits on it this long in all */

struct svd_ctl {
    unsigned magic;
    struct svd_app *app;
    int fd;
    uid_t uid;
    gid_t admin_gid;            /* SVD_NO_GROUP: none */
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t mu;         /* the counts below */
    pthread_cond_t cv;          /* a client thread ended */
    unsigned n_other, n_admin;
    pthread_mutex_t cmu;        /* unlock and restore: one at a time */
    int stopping;               /* svd_ctl_stop() began (atomic) */
};

struct ctl_client {
    struct svd_ctl *ctl;
    int fd;                     /* non-blocking */
    struct ucred cred;
    int admin;
    uint64_t line_deadline;     /* svd_now_ms(): the line must be in by then */
    uint64_t deadline;          /* no wait on the client past this */
    int cut;                    /* a write failed: nothing more is sent */
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
svd_ctl_admin_group(const char *group, const struct svd_who *w, gid_t *gid, char *err,
                    size_t errlen)
{
    struct group *g;

    *gid = SVD_NO_GROUP;
    if (group == NULL)
        return 0;
    errno = 0;
    if ((g = getgrnam(group)) == NULL) {
        snprintf(err, errlen, "control.admin_group: no group \"%s\"%s%s", group,
                 errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
        return -1;
    }
    if (svd_who_in_group(w, g->gr_gid)) {
        snprintf(err, errlen, "control.admin_group: the daemon's user %s is in group %s: it "
                 "could unlock the daemon and restore shares itself; use a group only "
                 "administrators are in", w->user, group);
        return -1;
    }
    *gid = g->gr_gid;
    return 0;
}

int
svd_ctl_listen(const char *path, uid_t uid, gid_t gid, gid_t admin_gid, int *fd, char *err,
               size_t errlen)
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
    /* the umask makes it 0600 (0660 for an admin group) at creation: no
     * chmod by name afterwards */
    old = umask(admin_gid != SVD_NO_GROUP ? 0117 : 0177);
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
    if (geteuid() == 0 &&
        give_socket(path, uid, admin_gid != SVD_NO_GROUP ? admin_gid : gid, err, errlen) != 0)
        goto out;
    *fd = s;
    s = -1;
    r = 0;
out:
    if (s >= 0)
        close(s);
    return r;
}

static int
ctl_stopping(const struct svd_ctl *ctl)
{
    return __atomic_load_n(&ctl->stopping, __ATOMIC_ACQUIRE);
}

/*
 * Wait until the client's socket is ready for events: 1; 0 when the
 * deadline passed first; -1 when the daemon is stopping (the stop pipe,
 * never read, stays readable for every client thread).
 */
static int
ctl_wait(const struct ctl_client *cc, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd pfd[2] = { { cc->fd, events, 0 }, { cc->ctl->stop_pipe[0], POLLIN, 0 } };
        uint64_t now = svd_now_ms();
        int n;

        if (now >= deadline)
            return 0;
        n = poll(pfd, 2, (int)(deadline - now < CTL_CLIENT_MS ? deadline - now : CTL_CLIENT_MS));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return 0;
        if (pfd[1].revents != 0)
            return -1;
        if (pfd[0].revents != 0)
            return 1; /* ready, or an error the next call reports */
    }
}

/* Write all of buf to the client, waiting for room until its deadline at
 * most. 0, or -1 (and nothing more is sent to it) when that failed. */
static int
put(struct ctl_client *cc, const char *buf, size_t len)
{
    if (cc->cut)
        return -1;
    while (len > 0) {
        ssize_t n = send(cc->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
                   ctl_wait(cc, POLLOUT, cc->deadline) == 1) {
            continue;
        } else {
            cc->cut = 1;
            return -1;
        }
    }
    return 0;
}

static int
say(struct ctl_client *cc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One piece of an answer (at most 511 bytes): 0, or -1 when it could not
 * be written (the client went away, stopped reading past its deadline, or
 * the daemon is stopping); every later say() to it fails at once. */
static int
say(struct ctl_client *cc, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) {
        cc->cut = 1;
        return -1;
    }
    return put(cc, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void
cmd_status(struct ctl_client *cc, const char *arg, const char *source)
{
    struct svd_app *app = cc->ctl->app;
    uint64_t since = 0, active = 0, pending = 0, retired = 0, seq = 0;
    uint8_t hash[SVD_AUDIT_HASH_LEN];
    char hx[2 * SVD_AUDIT_HASH_LEN + 1];
    int locked = svd_limiter_locked(app->limiter, &since);
    int counts = svd_store_counts(app->store, &active, &pending, &retired) == 0;

    uint64_t commits = 0, ops = 0;
    struct svd_limit_status ls;
    const char *lname = "local";
    int lok;

    svd_audit_head(app->audit, &seq, hash);
    sv_hex_encode(hash, sizeof(hash), hx);
    svd_store_writer_stats(app->store, &commits, &ops);
    /* the limiter's state: the store's, when it is shared (one round trip) */
    lok = svd_limiter_status(app->limiter, &ls, &lname) == 0;
    /* each say() after one that failed fails at once, writing nothing */
    (void)say(cc, "ok\nversion=%s\npid=%ld\nuptime=%" PRIu64 "\nlocked=%d\nlocked_since=%"
              PRIu64 "\nqueue_len=%u\nqueue_max=%u\npressure=%u\n", PACKAGE_VERSION,
              (long)getpid(), svd_wall_s() - app->started, locked, since,
              svd_limiter_queue_len(app->limiter), app->conf->queue_max,
              lok ? ls.pressure : 0);
    (void)say(cc, "lock_durable=%d\n", !svd_app_lock_write_pending(app));
    if (lok)
        (void)say(cc, "limiter=%s\nlimiter_tokens=%.2f\nlimiter_pressure=%u\n"
                  "limiter_decrypts_24h=%" PRIu64 "\nlimiter_actors=%" PRIu64 "\n", lname,
                  ls.tokens, ls.pressure, ls.decrypts, ls.actors);
    else
        (void)say(cc, "limiter=%s\nlimiter_store=unavailable\n", lname);
    if (counts)
        (void)say(cc, "shares_active=%" PRIu64 "\nshares_pending=%" PRIu64 "\nshares_retired=%"
                  PRIu64 "\n", active, pending, retired);
    else
        (void)say(cc, "store=unavailable\n");
    (void)say(cc, "store_commits=%" PRIu64 "\nstore_write_ops=%" PRIu64 "\n", commits, ops);
    (void)say(cc, "retention=%" PRIu32 "\nretired_24h=%" PRIu64 "\nretire_budget=%" PRIu32 "\n"
              "house_rounds=%" PRIu64 "\n", app->conf->retention_s,
              svd_limiter_retired_today(app->limiter), app->conf->retire_budget,
              SVD_READ(app, n_house));
    (void)say(cc, "stores=%" PRIu64 "\ndecrypts=%" PRIu64 "\nrefusals=%" PRIu64
              "\naudit_healthy=%d\naudit_seq=%" PRIu64 "\naudit_hash=%s\n",
              SVD_READ(app, n_stores), SVD_READ(app, n_decrypts), SVD_READ(app, n_refusals),
              svd_audit_healthy(app->audit), seq, hx);
}

/* 1 when the peer is in the admin group (primary or supplementary). */
static int
peer_in_group(int fd, const struct ucred *cred, gid_t gid)
{
    gid_t groups[256];
    socklen_t len = sizeof(groups);

    if (gid == SVD_NO_GROUP)
        return 0;
    if (cred->gid == gid)
        return 1;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0)
        return 0; /* cannot tell: not a member (fail closed) */
    for (size_t i = 0; i < len / sizeof(gid_t); i++)
        if (groups[i] == gid)
            return 1;
    return 0;
}

/* "retired [record UUID | since UNIX]": every retired share, a line each
 * (ids, record, field, state, times, reason: no key material). */
static void
cmd_retired(struct ctl_client *cc, const char *arg, const char *source)
{
    struct svd_retired *e = NULL;
    uint8_t uuid[SV_UUID_LEN];
    const uint8_t *up = NULL;
    uint64_t since = 0, after = 0, total = 0;
    const unsigned page = 500;
    int more = 1;

    if (arg != NULL && strncmp(arg, "record ", 7) == 0) {
        if (sv_uuid_parse(arg + 7, strlen(arg + 7), uuid) != SV_OK) {
            (void)say(cc, "error: not a record uuid\n");
            return;
        }
        up = uuid;
    } else if (arg != NULL && strncmp(arg, "since ", 6) == 0) {
        /* bound as a signed 64-bit integer in the store */
        if (svd_parse_u64(arg + 6, &since) != 0 || since > INT64_MAX) {
            (void)say(cc, "error: since takes unix seconds\n");
            return;
        }
    } else if (arg != NULL) {
        (void)say(cc, "error: retired [record UUID | since UNIX-SECONDS]\n");
        return;
    }
    if ((e = calloc(page, sizeof(*e))) == NULL) {
        (void)say(cc, "error: out of memory\n");
        return;
    }
    if (say(cc, "ok\n") != 0)
        goto out;
    /* no count= line unless the list is whole: splitvaultctl fails on an
     * answer without one */
    while (more) {
        unsigned n = 0;
        if (ctl_stopping(cc->ctl)) {
            (void)say(cc, "error=the daemon is stopping; the list above is incomplete\n");
            goto out;
        }
        if (svd_store_retired_list(cc->ctl->app->store, after, since, up, page, e, &n,
                                   &more) != 0) {
            (void)say(cc, "error=store unavailable; the list above is incomplete\n");
            goto out;
        }
        for (unsigned i = 0; i < n; i++) {
            static const char *const whys[] = { "release", "undo", "discard", "superseded",
                                                "reconcile" };
            const char *why = "?";
            char u[SV_UUID_STR_LEN + 1];
            sv_uuid_format(e[i].uuid, u);
            /* the store's text, checked before it reaches a terminal */
            for (size_t k = 0; k < SVD_ARRAY_LEN(whys); k++)
                if (strcmp(e[i].why, whys[k]) == 0)
                    why = whys[k];
            /* the first write that fails ends the answer (and this thread
             * leaves the client) */
            if (say(cc, "share id=%" PRIu64 " record=%s field=%s state=%s created=%" PRIu64
                    " retired=%" PRIu64 " why=%s\n", e[i].id, u,
                    sv_field_name_valid(e[i].field, strlen(e[i].field)) ? e[i].field : "?",
                    e[i].state == SV_SHARE_PENDING ? "pending" : "active", e[i].created,
                    e[i].retired, why) != 0)
                goto out;
            after = e[i].id;
        }
        total += n;
        if (n == 0)
            break;
    }
    (void)say(cc, "count=%" PRIu64 "\n", total);
out:
    free(e);
}

/* "restore id ID | record UUID | since UNIX": recorded before it is done. */
static void
cmd_restore(struct ctl_client *cc, const char *arg, const char *source)
{
    struct svd_app *app = cc->ctl->app;
    enum svd_restore_by by;
    uint8_t uuid[SV_UUID_LEN];
    uint64_t v = 0;
    unsigned restored = 0;
    const char *what, *value;

    if (arg != NULL && strncmp(arg, "id ", 3) == 0 && svd_parse_u64(arg + 3, &v) == 0 && v > 0 &&
        v <= SV_WIRE_MAX_ID) {
        by = SVD_RESTORE_ID;
        what = "id";
        value = arg + 3;
    } else if (arg != NULL && strncmp(arg, "record ", 7) == 0 &&
               sv_uuid_parse(arg + 7, strlen(arg + 7), uuid) == SV_OK) {
        by = SVD_RESTORE_RECORD;
        what = "record";
        value = arg + 7;
    } else if (arg != NULL && strncmp(arg, "since ", 6) == 0 && svd_parse_u64(arg + 6, &v) == 0 &&
               v <= INT64_MAX) {
        by = SVD_RESTORE_SINCE;
        what = "since";
        value = arg + 6;
    } else {
        (void)say(cc, "error: restore id ID | record UUID | since UNIX-SECONDS\n");
        return;
    }
    if (svd_audit_event(app->audit, 1, "event=restore outcome=requested by=%s value=%s "
                        "source=%s", what, value, source) != 0) {
        (void)say(cc, "error: the audit log cannot record it; nothing restored\n");
        return;
    }
    if (svd_store_restore(app->store, by, v, by == SVD_RESTORE_RECORD ? uuid : NULL,
                          &restored) != 0) {
        (void)svd_audit_event(app->audit, 0, "event=restore outcome=failed by=%s value=%s "
                              "source=%s", what, value, source);
        (void)say(cc, "error: the store failed; nothing restored\n");
        return;
    }
    (void)svd_audit_event(app->audit, 1, "event=restore outcome=ok by=%s value=%s restored=%u "
                          "source=%s", what, value, restored, source);
    svd_warn("control: %u retired share(s) restored (%s %s) by %s", restored, what, value,
             source);
    (void)say(cc, "ok\nrestored=%u\n", restored);
}

/* "raise-ids N": new shares get ids above N (after restoring the store
 * from a backup older than the main database); recorded before it is
 * done; never lowers the sequence. */
static void
cmd_raise_ids(struct ctl_client *cc, const char *arg, const char *source)
{
    struct svd_app *app = cc->ctl->app;
    uint64_t n = 0, seq = 0;

    if (arg == NULL || arg[0] < '1' || arg[0] > '9' || svd_parse_u64(arg, &n) != 0 ||
        n > SV_WIRE_MAX_ID / 2) {
        (void)say(cc, "error: raise-ids N (a share id, 1 to 2^62)\n");
        return;
    }
    if (svd_audit_event(app->audit, 1, "event=raise-ids outcome=requested value=%" PRIu64
                        " source=%s", n, source) != 0) {
        (void)say(cc, "error: the audit log cannot record it; nothing changed\n");
        return;
    }
    if (svd_store_raise_ids(app->store, n, &seq) != 0) {
        (void)svd_audit_event(app->audit, 0, "event=raise-ids outcome=failed value=%" PRIu64
                              " source=%s", n, source);
        (void)say(cc, "error: the store failed; nothing changed\n");
        return;
    }
    (void)svd_audit_event(app->audit, 1, "event=raise-ids outcome=ok value=%" PRIu64
                          " seq=%" PRIu64 " source=%s", n, seq, source);
    svd_warn("control: share ids raised: new shares get ids above %" PRIu64 " (asked: %"
             PRIu64 ") by %s", seq, n, source);
    (void)say(cc, "ok\nseq=%" PRIu64 "\n", seq);
}

static void
cmd_lockdown(struct ctl_client *cc, const char *arg, const char *source)
{
    struct svd_app *app = cc->ctl->app;

    if (svd_app_lockdown(app, "operator", source) == 0)
        (void)say(cc, "ok\nlocked=1\n");
    else if (svd_app_lock_write_pending(app))
        (void)say(cc, "error: locked down in memory, but the store could not record it: not "
                  "durable yet (retried every second; see the daemon's log)\nlocked=1\n");
    else
        (void)say(cc, "error: locked down and recorded in the store, but the audit log could "
                  "not record it\nlocked=1\n");
}

static void
cmd_unlock(struct ctl_client *cc, const char *arg, const char *source)
{
    uint64_t newer = 0;

    switch (svd_app_unlock(cc->ctl->app, source, &newer)) {
    case SVD_UNLOCK_OK:
        (void)say(cc, "ok\nlocked=0\n");
        break;
    case SVD_UNLOCK_NOT_LOCKED:
        (void)say(cc, "ok\nlocked=0\nnote=was not locked\n");
        break;
    case SVD_UNLOCK_NEWER:
        (void)say(cc, "error: another lock-down is recorded in the store (since %" PRIu64 ", "
                  "by another daemon or a new trip): still locked; look into it (status, the "
                  "audit logs), then unlock again\nlocked=1\n", newer);
        break;
    case SVD_UNLOCK_AUDIT:
        (void)say(cc, "error: the audit log cannot record the unlock; still locked\n");
        break;
    case SVD_UNLOCK_STORE:
        (void)say(cc, "error: the store could not record the unlock; still locked\n");
        break;
    }
}

static void
cmd_audit_verify(struct ctl_client *cc, const char *arg, const char *source)
{
    struct svd_audit_result res;

    if (svd_audit_verify_live(cc->ctl->app->audit, &res) == 0)
        (void)say(cc, "ok\nentries=%" PRIu64 "\nunconfirmed=%" PRIu64 "\nresult=%s\n",
                  res.entries, res.unconfirmed, res.msg);
    else
        (void)say(cc, "error: audit log does not verify at line %" PRIu64 ": %s\n",
                  res.bad_line, res.msg);
}

/*
 * The commands, in the order the unknown-command answer names them. Who
 * may use which is decided here alone (svd_ctl.h); serial ones run one at
 * a time (cmu): the others only read, or (lockdown) are serialised by
 * app->lock_mu.
 */
static const struct ctl_cmd {
    const char *name;
    int admin_only;     /* root or control.admin_group, never the daemon's user */
    int takes_arg;
    int serial;
    void (*fn)(struct ctl_client *cc, const char *arg, const char *source);
} cmds[] = {
    { "status", 0, 0, 0, cmd_status },
    { "lockdown", 0, 0, 0, cmd_lockdown },
    { "unlock", 1, 0, 1, cmd_unlock },
    { "audit-verify", 0, 0, 0, cmd_audit_verify },
    { "retired", 1, 1, 0, cmd_retired },
    { "restore", 1, 1, 1, cmd_restore },
    { "raise-ids", 1, 1, 1, cmd_raise_ids },
};

static const struct ctl_cmd *
find_cmd(const char *name)
{
    for (size_t i = 0; i < SVD_ARRAY_LEN(cmds); i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

/* "error: unknown command (status, lockdown, ...)": every name, in order. */
static void
say_unknown(struct ctl_client *cc)
{
    char names[128];
    size_t o = 0;

    names[0] = '\0';
    for (size_t i = 0; i < SVD_ARRAY_LEN(cmds); i++) {
        int n = snprintf(names + o, sizeof(names) - o, "%s%s", i > 0 ? ", " : "", cmds[i].name);
        SVD_ASSERT(n > 0 && (size_t)n < sizeof(names) - o);
        o += (size_t)n;
    }
    (void)say(cc, "error: unknown command (%s)\n", names);
}

/* Serve one client whose credentials were checked: read its line, run it. */
static void
serve_client(struct ctl_client *cc)
{
    struct svd_ctl *ctl = cc->ctl;
    const struct ctl_cmd *cmd;
    char line[SVD_CTL_MAX_LINE + 2], source[48], *arg;
    size_t got = 0;
    int w = 1;

    while (got < sizeof(line) - 1) {
        ssize_t n = recv(cc->fd, line + got, sizeof(line) - 1 - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
            if (memchr(line, '\n', got) != NULL)
                break;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
                   (w = ctl_wait(cc, POLLIN, cc->line_deadline)) == 1) {
            continue;
        } else {
            break;
        }
    }
    line[got] = '\0';
    if (w < 0) {
        (void)say(cc, "error: the daemon is stopping\n");
        return;
    }
    if (memchr(line, '\n', got) == NULL) {
        /* a line cut short is never taken for a shorter command */
        (void)say(cc, "error: no whole command line (at most %d bytes, ending in a newline)\n",
                  SVD_CTL_MAX_LINE);
        return;
    }
    line[strcspn(line, "\r\n")] = '\0';
    for (char *c = line; *c != '\0'; c++)
        if (*c < 0x20 || *c > 0x7e)
            *c = '?'; /* never a control character in the log or an entry */
    snprintf(source, sizeof(source), "control-uid-%ld", (long)cc->cred.uid);
    svd_info("control: \"%.*s\" from uid %ld", SVD_CTL_MAX_LINE, line, (long)cc->cred.uid);
    if ((arg = strchr(line, ' ')) != NULL)
        *arg++ = '\0';
    cmd = find_cmd(line);
    if (cmd != NULL && cmd->admin_only && !cc->admin) {
        /* the daemon's own user may not lift what guards against it */
        char who[32];
        snprintf(who, sizeof(who), "uid-%ld", (long)cc->cred.uid);
        if (svd_refusal(ctl->app->refusals, "control-not-admin", who, ""))
            svd_warn("control: %s refused for uid %ld (the daemon's own user): only root or "
                     "control.admin_group", line, (long)cc->cred.uid);
        (void)say(cc, "error: permission denied (%s needs root or control.admin_group)\n",
                  line);
        return;
    }
    /* an unknown word with an argument is answered like a known one's */
    if (arg != NULL && (cmd == NULL || !cmd->takes_arg)) {
        (void)say(cc, "error: %s takes no argument\n", line);
        return;
    }
    if (cmd == NULL) {
        say_unknown(cc);
        return;
    }
    if (cmd->serial)
        AZ(pthread_mutex_lock(&ctl->cmu));
    cmd->fn(cc, arg, source);
    if (cmd->serial)
        AZ(pthread_mutex_unlock(&ctl->cmu));
    if (cc->cut)
        svd_info("control: the answer to \"%s\" from uid %ld was cut short (the client went "
                 "away or did not read it within %d s, or the daemon is stopping)", line,
                 (long)cc->cred.uid, CTL_CLIENT_MS / 1000);
}

static void *
client_main(void *arg)
{
    struct ctl_client *cc = arg;
    struct svd_ctl *ctl = cc->ctl;

    serve_client(cc);
    close(cc->fd);
    AZ(pthread_mutex_lock(&ctl->mu));
    if (cc->admin)
        ctl->n_admin--;
    else
        ctl->n_other--;
    AZ(pthread_cond_broadcast(&ctl->cv));
    AZ(pthread_mutex_unlock(&ctl->mu));
    free(cc);
    return NULL;
}

/* A new client: check who it is, then give it a thread of its own. */
static void
accept_client(struct svd_ctl *ctl, int fd)
{
    struct ctl_client *cc = NULL, nowait;
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    pthread_attr_t attr;
    pthread_t t;
    int admin, full, rv;

    /* refusals below: written at once or not at all (no wait) */
    memset(&nowait, 0, sizeof(nowait));
    nowait.ctl = ctl;
    nowait.fd = fd;
    nowait.line_deadline = nowait.deadline = svd_now_ms();

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
        svd_warn("control: cannot read peer credentials: %s", strerror(errno));
        close(fd);
        return;
    }
    admin = cred.uid == 0 || peer_in_group(fd, &cred, ctl->admin_gid);
    if (!admin && cred.uid != ctl->uid) {
        char who[32];
        snprintf(who, sizeof(who), "uid-%ld", (long)cred.uid);
        if (svd_refusal(ctl->app->refusals, "control-uid", who, ""))
            svd_warn("control: refused uid %ld (only root, control.admin_group or the "
                     "daemon's user)", (long)cred.uid);
        (void)say(&nowait, "error: permission denied\n");
        close(fd);
        return;
    }
    AZ(pthread_mutex_lock(&ctl->mu));
    full = admin ? ctl->n_admin >= CTL_MAX_ADMIN : ctl->n_other >= CTL_MAX_OTHER;
    if (!full) {
        if (admin)
            ctl->n_admin++;
        else
            ctl->n_other++;
    }
    AZ(pthread_mutex_unlock(&ctl->mu));
    if (full) {
        (void)say(&nowait, "error: busy: too many control connections; try again\n");
        close(fd);
        return;
    }
    if ((cc = calloc(1, sizeof(*cc))) != NULL) {
        cc->ctl = ctl;
        cc->fd = fd;
        cc->cred = cred;
        cc->admin = admin;
        /* one deadline for the whole exchange, from the accept */
        cc->line_deadline = nowait.deadline + CTL_LINE_MS;
        cc->deadline = nowait.deadline + CTL_CLIENT_MS;
        AZ(pthread_attr_init(&attr));
        AZ(pthread_attr_setstacksize(&attr, 256 * 1024));
        AZ(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED));
        rv = pthread_create(&t, &attr, client_main, cc);
        AZ(pthread_attr_destroy(&attr));
        if (rv == 0)
            return;
        free(cc);
    }
    svd_warn("control: cannot start a client thread");
    close(fd);
    AZ(pthread_mutex_lock(&ctl->mu));
    if (admin)
        ctl->n_admin--;
    else
        ctl->n_other--;
    AZ(pthread_mutex_unlock(&ctl->mu));
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
            int fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0)
                accept_client(ctl, fd);
        }
    }
    return NULL;
}

struct svd_ctl *
svd_ctl_start(struct svd_app *app, int fd, uid_t daemon_uid, gid_t admin_gid)
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
    ctl->admin_gid = admin_gid;
    AZ(pthread_mutex_init(&ctl->mu, NULL));
    AZ(pthread_cond_init(&ctl->cv, NULL));
    AZ(pthread_mutex_init(&ctl->cmu, NULL));
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
    ssize_t n;

    if (ctl == NULL)
        return;
    CHECK_OBJ(ctl, SVD_CTL_MAGIC);
    __atomic_store_n(&ctl->stopping, 1, __ATOMIC_RELEASE);
    /* never read: readable from now on, it ends every wait on a client */
    do
        n = write(ctl->stop_pipe[1], "x", 1);
    while (n < 0 && errno == EINTR);
    SVD_ASSERT(n == 1); /* an empty pipe of our own: anything else is a bug */
    AZ(pthread_join(ctl->thread, NULL));
    /* client threads end at once when waiting on their clients, or when
     * the command they run is done (a listing at its next page) */
    AZ(pthread_mutex_lock(&ctl->mu));
    while (ctl->n_admin + ctl->n_other > 0)
        AZ(pthread_cond_wait(&ctl->cv, &ctl->mu));
    AZ(pthread_mutex_unlock(&ctl->mu));
    close(ctl->stop_pipe[0]);
    close(ctl->stop_pipe[1]);
    AZ(pthread_mutex_destroy(&ctl->mu));
    AZ(pthread_cond_destroy(&ctl->cv));
    AZ(pthread_mutex_destroy(&ctl->cmu));
    ctl->magic = 0;
    free(ctl);
}
