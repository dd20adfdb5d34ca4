/*
 * svd_harden.h - process hardening and the privilege drop.
 *
 * Early (before any secret exists): no core dumps (PR_SET_DUMPABLE 0,
 * RLIMIT_CORE 0), umask 077, SIGPIPE ignored, at most two malloc arenas.
 * Then mlockall(MCL_CURRENT|MCL_FUTURE) so nothing is ever swapped out
 * (a warning when not permitted). After binding and opening its files the
 * daemon drops root: setgroups, setgid, setuid, verified by trying to get
 * root back, and PR_SET_NO_NEW_PRIVS.
 */
#ifndef SVD_HARDEN_H
#define SVD_HARDEN_H

#include <stddef.h>
#include <sys/types.h>

void svd_harden_early(void);

/* Lock all memory now and in future; returns 0, or -1 (logged). */
int svd_harden_mlock(void);

/* Resolve the user to run as. When not started as root, the user must be
 * the current one (or absent from the config). */
int svd_resolve_user(const char *name, uid_t *uid, gid_t *gid, char *err, size_t errlen);

/* Drop to uid/gid when root; verify. Returns 0 or -1 (err says why). */
int svd_drop_privileges(uid_t uid, gid_t gid, char *err, size_t errlen);

#endif /* SVD_HARDEN_H */
