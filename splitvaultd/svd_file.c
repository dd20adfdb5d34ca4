/*
 * svd_file.c - opening root's files without following what the daemon's
 * user may have planted (see svd_file.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
