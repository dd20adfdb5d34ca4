/*
 * svd_ctl.h - the local control socket (splitvaultctl's other end).
 *
 * A Unix stream socket, mode 0600, owned by the daemon's user. A peer must
 * be root or the daemon's own uid (SO_PEERCRED). One command per
 * connection, one line: status, lockdown, unlock or audit-verify. The
 * answer is "ok" or "error: <why>" on the first line, then key=value lines,
 * then the daemon closes.
 */
#ifndef SVD_CTL_H
#define SVD_CTL_H

#include <stddef.h>
#include <sys/types.h>

#include "svd_app.h"

#define SVD_CTL_MAX_LINE 64

/* Create the socket (before privileges are dropped): unlink a stale
 * socket, bind with umask 0177 (mode 0600), then, as root, hand the node to
 * uid/gid through an O_PATH descriptor after checking it is still the
 * socket just bound (no chmod or chown by name). svd_ctl_start() listens. */
int svd_ctl_listen(const char *path, uid_t uid, gid_t gid, int *fd, char *err, size_t errlen);

struct svd_ctl;

struct svd_ctl *svd_ctl_start(struct svd_app *app, int fd, uid_t daemon_uid);
void svd_ctl_stop(struct svd_ctl *ctl);

#endif /* SVD_CTL_H */
