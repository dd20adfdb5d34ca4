/*
 * svd_file.h - files the daemon opens as root, in directories its own user
 * may write (the audit log and its head, the pid file, the store's lock
 * file, the log file).
 *
 * Whoever holds the daemon's user could plant something at such a path
 * before a restart: a symlink or a hard link to a file of root's (which
 * root would then write, truncate or verify), or a FIFO (which would hang
 * the start). svd_open_regular() opens without following a symlink and
 * without blocking, and accepts only a regular file with a single link.
 */
#ifndef SVD_FILE_H
#define SVD_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode), refusing anything but
 * a regular file with one link; the descriptor is blocking again when
 * returned. -1 with err ("<what> <path>: <why>") otherwise. */
int svd_open_regular(const char *path, int flags, mode_t mode, const char *what, char *err,
                     size_t errlen);

/* The daemon's user, as the checks below guard against it. */
struct svd_who {
    const char *user;           /* its name (messages) */
    uid_t uid;
    gid_t groups[256];          /* every group it is in */
    int ngroups;
};

/* Fill w for user, of uid and primary group gid, listing its groups once
 * for every check. 0, or -1 with err. */
int svd_who_get(struct svd_who *w, const char *user, uid_t uid, gid_t gid, char *err,
                size_t errlen);

/* 1 when w is in group gid (primary or supplementary). */
int svd_who_in_group(const struct svd_who *w, gid_t gid);

/*
 * Check that the daemon's user w cannot remove, rename, replace or write
 * path: the audit log and its head, a record that must outlive a
 * compromise of that user, and the control socket, which that user must
 * not be able to stand in for. With
 * check_file, the file, if it exists, is not the user's and not writable
 * by the user. Its directory is not the user's and not writable by the
 * user at all; every directory above it is not the user's and not writable
 * by the user unless it is sticky (like /tmp: then the user cannot rename
 * what is not its own); none carries an ACL (its mode would not tell).
 * Checked along the path as written (so a symbolic link on the way lies in
 * a checked directory) and along the path it resolves to. 0, or -1 with
 * err naming what to change.
 */
int svd_check_protected(const char *path, const struct svd_who *w, const char *what,
                        int check_file, char *err, size_t errlen);

/*
 * The same check of path's directories against every user but root
 * (splitvaultctl, before it trusts the control socket: it cannot know who
 * might stand in for the daemon): the directory and every one above it,
 * as written and as resolved, root's (a symbolic link on the way too) and
 * writable by root alone (one above the directory also when sticky), none
 * with an ACL. 0, or -1 with err naming what to change.
 */
int svd_check_root_only(const char *path, const char *what, char *err, size_t errlen);

#endif /* SVD_FILE_H */
