/*
 * svd_ctl.h - the local control socket (splitvaultctl's other end).
 *
 * A Unix stream socket owned by the daemon's user: mode 0600, or 0660 with
 * control.admin_group as its group. Who may do what is decided by the
 * peer's credentials (SO_PEERCRED, SO_PEERGROUPS), never by the mode:
 *
 *   status, lockdown, audit-verify   root, control.admin_group, or the
 *                                    daemon's own user
 *   unlock, retired, restore         root or control.admin_group only:
 *                                    never the daemon's own user, which is
 *                                    not in that group (checked at start)
 *
 * One command per connection, one line. The answer is "ok" or "error:
 * <why>" on the first line, then key=value lines, then the daemon closes.
 */
#ifndef SVD_CTL_H
#define SVD_CTL_H

#include <stddef.h>
#include <sys/types.h>

#include "svd_app.h"

#define SVD_CTL_MAX_LINE 128
#define SVD_NO_GROUP ((gid_t)-1)

/* Create the socket (before privileges are dropped): unlink a stale
 * socket, bind with umask 0177 (mode 0600; 0117, mode 0660, with an admin
 * group), then, as root, hand the node to uid and gid (admin_gid when
 * there is one) through an O_PATH descriptor after checking it is still the
 * socket just bound (no chmod or chown by name). svd_ctl_start() listens. */
int svd_ctl_listen(const char *path, uid_t uid, gid_t gid, gid_t admin_gid, int *fd, char *err,
                   size_t errlen);

struct svd_who;

/* control.admin_group: its gid into *gid (SVD_NO_GROUP when not set). -1
 * with err when the group does not exist or the daemon's user w is in it. */
int svd_ctl_admin_group(const char *group, const struct svd_who *w, gid_t *gid, char *err,
                        size_t errlen);

struct svd_ctl;

struct svd_ctl *svd_ctl_start(struct svd_app *app, int fd, uid_t daemon_uid, gid_t admin_gid);
void svd_ctl_stop(struct svd_ctl *ctl);

#endif /* SVD_CTL_H */
