/*
 * svd_harden.c - no core dumps, locked memory, privilege drop.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
    (void)mallopt(M_ARENA_MAX, 8);
}

static int mlocked;

int
svd_harden_mlock(void)
{
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        svd_warn("mlockall: %s: memory may be swapped (run as root, or raise RLIMIT_MEMLOCK)",
                 strerror(errno));
        return -1;
    }
    mlocked = 1;
    return 0;
}

/* Set this thread's capability sets to exactly CAP_IPC_LOCK (or nothing). */
static int
caps_only_ipc_lock(int keep)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof(data));
    if (keep) {
        data[0].effective = data[0].permitted = 1u << CAP_IPC_LOCK;
    }
    return (int)syscall(SYS_capset, &hdr, data);
}

/* The capabilities left: 1 when exactly CAP_IPC_LOCK (or none with
 * want_none), 0 otherwise. */
static int
caps_check(int keep)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    uint32_t want = keep ? 1u << CAP_IPC_LOCK : 0;

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) != 0)
        return 0;
    return data[0].effective == want && data[0].permitted == want &&
           data[0].inheritable == 0 && data[1].effective == 0 && data[1].permitted == 0 &&
           data[1].inheritable == 0;
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

/*
 * With memory locked for the future (MCL_FUTURE), every later allocation
 * counts against RLIMIT_MEMLOCK once root is gone, and a limit of a few MiB
 * would make the daemon fail. Rather than raising the limit (which needs
 * CAP_SYS_RESOURCE, often missing in containers) the daemon keeps exactly
 * one capability, CAP_IPC_LOCK, across the uid change and drops all others;
 * it cannot get root or any other capability back.
 */
int
svd_drop_privileges(uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (geteuid() == 0) {
        int keep = mlocked;

        if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
            snprintf(err, errlen, "prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
            return -1;
        }
        if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 ||
            setresuid(uid, uid, uid) != 0) {
            snprintf(err, errlen, "cannot drop privileges: %s", strerror(errno));
            return -1;
        }
        if (caps_only_ipc_lock(keep) != 0 || prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
            snprintf(err, errlen, "cannot drop capabilities: %s", strerror(errno));
            return -1;
        }
        /* verify: root must be gone for good */
        if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != uid || geteuid() != uid ||
            getgid() != gid || getegid() != gid || !caps_check(keep)) {
            snprintf(err, errlen, "privilege drop did not hold");
            return -1;
        }
        svd_info("running as uid %ld gid %ld%s", (long)uid, (long)gid,
                 keep ? " (keeping only CAP_IPC_LOCK, for locked memory)" : "");
    }
    /* credential changes reset dumpability: set it again */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "prctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}
