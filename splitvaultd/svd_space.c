/*
 * svd_space.c - the free-space watermark (see svd_space.h).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "svd.h"
#include "svd_log.h"
#include "svd_space.h"

void
svd_space_watch(struct svd_space *sp, int fd)
{
    SVD_ASSERT(sp->nfd < SVD_SPACE_MAX_FDS);
    if (fd >= 0)
        sp->fd[sp->nfd++] = fd;
}

int
svd_space_ok(const struct svd_space *sp, uint64_t *free_bytes)
{
    uint64_t least = UINT64_MAX;

    for (unsigned i = 0; i < sp->nfd; i++) {
        struct statvfs v;
        uint64_t f;

        if (fstatvfs(sp->fd[i], &v) != 0) {
            svd_warn("store.min_free: fstatvfs: %s (free space not checked)", strerror(errno));
            continue;
        }
        /* f_bavail: what an unprivileged user (the daemon's) may use */
        f = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
        if (f < least)
            least = f;
    }
    *free_bytes = least;
    return sp->min_free == 0 || least == UINT64_MAX || least >= sp->min_free;
}
