/*
 * svd_file.c - opening root's files without following what the daemon's
 * user may have planted (see svd_file.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "svd.h"
#include "svd_file.h"

int
svd_open_regular(const char *path, int flags, mode_t mode, const char *what, char *err,
                 size_t errlen)
{
    struct stat st;
    int fd, fl;

    /* O_NONBLOCK: opening a FIFO must not wait for its other end */
    fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == ENXIO) /* a FIFO nobody reads, or a device */
            snprintf(err, errlen, "%s %s: not a regular file", what, path);
        else
            snprintf(err, errlen, "%s %s: %s%s", what, path, strerror(errno),
                     errno == ELOOP ? " (a symbolic link: refused)" : "");
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        goto bad;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %s: not a regular file", what, path);
        goto bad;
    }
    if (st.st_nlink != 1) {
        snprintf(err, errlen, "%s %s: has %lu hard links (a link to another file?): refused",
                 what, path, (unsigned long)st.st_nlink);
        goto bad;
    }
    if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        goto bad;
    }
    return fd;
bad:
    close(fd);
    return -1;
}

int
svd_who_get(struct svd_who *w, const char *user, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    w->user = user;
    w->uid = uid;
    w->ngroups = (int)SVD_ARRAY_LEN(w->groups);
    if (getgrouplist(user, gid, w->groups, &w->ngroups) < 0) {
        snprintf(err, errlen, "process.user %s: cannot list its groups (in more than %zu?)",
                 user, SVD_ARRAY_LEN(w->groups));
        return -1;
    }
    return 0;
}

int
svd_who_in_group(const struct svd_who *w, gid_t gid)
{
    for (int i = 0; i < w->ngroups; i++)
        if (w->groups[i] == gid)
            return 1;
    return 0;
}

/*
 * The checks below guard against w, the daemon's user, or, with w NULL,
 * against everyone but root (splitvaultctl's rule for the control socket:
 * it cannot tell who might stand in for the daemon).
 */

/* 1 when the object is w's (w NULL: anyone's but root's). */
static int
owned(const struct svd_who *w, const struct stat *st)
{
    return w != NULL ? st->st_uid == w->uid : st->st_uid != 0;
}

/* 1 when w (NULL: anyone but root) may write an object of this owner,
 * group and mode. */
static int
may_write(const struct svd_who *w, const struct stat *st)
{
    if (owned(w, st))
        return 1; /* the owner can always chmod it writable */
    if (st->st_mode & S_IWOTH)
        return 1;
    if ((st->st_mode & S_IWGRP) && (w == NULL || svd_who_in_group(w, st->st_gid)))
        return 1;
    return 0;
}

/* 1 when p carries a POSIX access ACL: write permission may then be given
 * to anyone, and the mode bits do not tell. */
static int
has_acl(const char *p)
{
    ssize_t n = lgetxattr(p, "system.posix_acl_access", NULL, 0);

    return n > 0;
}

/* The directory of path, into dir (textually: "/a/b/c" gives "/a/b"). */
static void
parent_of(const char *path, char *dir, size_t len)
{
    char *slash;

    snprintf(dir, len, "%s", path);
    if ((slash = strrchr(dir, '/')) == NULL)
        snprintf(dir, len, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
}

/*
 * Check the directory dir and every one above it, by their names as given
 * (a symbolic link on the way is checked as a link, and its target by the
 * caller's second pass over the resolved path): none may be w's (NULL:
 * anyone's but root's); dir may not be writable by w at all, the others
 * only when sticky; none may carry an ACL.
 */
static int
check_dirs(const char *dir, const struct svd_who *w, const char *what, const char *path,
           char *err, size_t errlen)
{
    char cur[PATH_MAX];
    struct stat st;

    if (strlen(dir) >= sizeof(cur)) {
        snprintf(err, errlen, "%s %s: path too long", what, path);
        return -1;
    }
    memcpy(cur, dir, strlen(dir) + 1);
    for (int first = 1;; first = 0) {
        int link;

        if (lstat(cur, &st) != 0) {
            snprintf(err, errlen, "%s %s: %s: %s", what, path, cur, strerror(errno));
            return -1;
        }
        link = S_ISLNK(st.st_mode);
        if (!link && !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s %s: %s: not a directory", what, path, cur);
            return -1;
        }
        if (owned(w, &st) ||
            (!link && may_write(w, &st) && (first || !(st.st_mode & S_ISVTX)))) {
            if (w != NULL)
                snprintf(err, errlen, "%s %s: the daemon's user %s could rename or remove it: "
                         "%s must be root's and writable by root only (it is %s, mode %04o)",
                         what, path, w->user, cur,
                         owned(w, &st) ? "the user's" : "writable by the user",
                         (unsigned)(st.st_mode & 07777));
            else
                snprintf(err, errlen, "%s %s: another user could put something of its own in "
                         "its place: %s must be root's and writable by root only (it is owned "
                         "by uid %ld, mode %04o)", what, path, cur, (long)st.st_uid,
                         (unsigned)(st.st_mode & 07777));
            return -1;
        }
        if (!link && has_acl(cur)) {
            snprintf(err, errlen, "%s %s: %s has an access ACL, so its mode does not say who "
                     "may write it: remove it (setfacl -b) or move %s", what, path, cur, what);
            return -1;
        }
        if (strcmp(cur, "/") == 0 || strcmp(cur, ".") == 0)
            break;
        {
            char up[PATH_MAX];
            parent_of(cur, up, sizeof(up));
            memcpy(cur, up, strlen(up) + 1);
        }
    }
    return 0;
}

/* path's directory and every one above, as written and as resolved
 * (check_dirs). */
static int
check_path(const char *path, const struct svd_who *w, const char *what, char *err,
           size_t errlen)
{
    char dir[PATH_MAX], real[PATH_MAX], abs[PATH_MAX];

    /* the path as written (a link on the way sits in a checked directory),
     * made absolute against the working directory */
    if (path[0] != '/') {
        if (getcwd(abs, sizeof(abs)) == NULL ||
            strlen(abs) + 1 + strlen(path) >= sizeof(abs)) {
            snprintf(err, errlen, "%s %s: cannot make the path absolute", what, path);
            return -1;
        }
        snprintf(abs + strlen(abs), sizeof(abs) - strlen(abs), "/%s", path);
        path = abs;
    }
    parent_of(path, dir, sizeof(dir));
    if (check_dirs(dir, w, what, path, err, errlen) != 0)
        return -1;
    /* and the path it leads to */
    if (realpath(dir, real) == NULL) {
        snprintf(err, errlen, "%s %s: %s: %s", what, path, dir, strerror(errno));
        return -1;
    }
    return strcmp(real, dir) == 0 ? 0 : check_dirs(real, w, what, path, err, errlen);
}

int
svd_check_protected(const char *path, const struct svd_who *w, const char *what, int check_file,
                    char *err, size_t errlen)
{
    struct stat st;

    /* a symbolic link's own mode means nothing (and opening one is refused
     * anyway: svd_open_regular) */
    if (check_file && lstat(path, &st) == 0 && !S_ISLNK(st.st_mode) &&
        (may_write(w, &st) || has_acl(path))) {
        snprintf(err, errlen, "%s %s: the daemon's user %s %s it: make it root's, mode 0600 "
                 "(chown root:root; chmod 0600; setfacl -b)", what, path, w->user,
                 st.st_uid == w->uid ? "owns" : "may be able to write");
        return -1;
    }
    return check_path(path, w, what, err, errlen);
}

int
svd_check_root_only(const char *path, const char *what, char *err, size_t errlen)
{
    return check_path(path, NULL, what, err, errlen);
}
