/*
 * svd_harden.c - no core dumps, locked memory, privilege drop.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svd.h"
#include "svd_harden.h"
#include "svd_log.h"

void
svd_harden_early(void)
{
    struct rlimit rl = { 0, 0 };

    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        svd_warn("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        svd_warn("setrlimit(RLIMIT_CORE): %s", strerror(errno));
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    /* few arenas: less address space to lock, less memory per thread */
    (void)mallopt(M_ARENA_MAX, 2);
}

int
svd_harden_mlock(void)
{
    if (geteuid() == 0) {
        /* the limit is inherited past the privilege drop: without it,
         * MCL_FUTURE would make every later allocation fail */
        struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
        if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
            svd_warn("setrlimit(RLIMIT_MEMLOCK): %s", strerror(errno));
    }
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        svd_warn("mlockall: %s: memory may be swapped (run as root, or raise RLIMIT_MEMLOCK)",
                 strerror(errno));
        return -1;
    }
    return 0;
}

int
svd_resolve_user(const char *name, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    struct passwd *pw;

    if (name == NULL || *name == '\0') {
        if (geteuid() == 0) {
            snprintf(err, errlen, "process.user: required when started as root");
            return -1;
        }
        *uid = geteuid();
        *gid = getegid();
        return 0;
    }
    errno = 0;
    if ((pw = getpwnam(name)) == NULL) {
        snprintf(err, errlen, "process.user: no such user \"%s\"", name);
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "process.user: must not be root");
        return -1;
    }
    if (geteuid() != 0 && pw->pw_uid != geteuid()) {
        snprintf(err, errlen, "process.user: cannot switch to \"%s\" without root", name);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

int
svd_drop_privileges(uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (geteuid() == 0) {
        if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 ||
            setresuid(uid, uid, uid) != 0) {
            snprintf(err, errlen, "cannot drop privileges: %s", strerror(errno));
            return -1;
        }
        /* verify: root must be gone for good */
        if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != uid || geteuid() != uid ||
            getgid() != gid || getegid() != gid) {
            snprintf(err, errlen, "privilege drop did not hold");
            return -1;
        }
    }
    /* credential changes reset dumpability: set it again */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "prctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}
