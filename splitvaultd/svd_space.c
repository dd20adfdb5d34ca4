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
svd_space_ok(struct svd_space *sp, uint64_t *free_bytes)
{
    uint64_t least = UINT64_MAX;

    *free_bytes = least;
    if (sp->min_free == 0)
        return 1;
    for (unsigned i = 0; i < sp->nfd; i++) {
        struct statvfs v;
        uint64_t f;

        /* a failure is said when it begins and when it ends: every STORE
         * asks, and a log line each would flood the log */
        if (fstatvfs(sp->fd[i], &v) != 0) {
            int e = errno;
            if (__atomic_exchange_n(&sp->failing[i], 1, __ATOMIC_RELAXED) == 0)
                svd_warn("store.min_free: fstatvfs: %s (free space not checked until it "
                         "works again)", strerror(e));
            continue;
        }
        if (__atomic_load_n(&sp->failing[i], __ATOMIC_RELAXED) != 0 &&
            __atomic_exchange_n(&sp->failing[i], 0, __ATOMIC_RELAXED) != 0)
            svd_info("store.min_free: fstatvfs works again (free space checked)");
        /* f_bavail: what an unprivileged user (the daemon's) may use */
        f = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
        if (f < least)
            least = f;
    }
    *free_bytes = least;
    return least == UINT64_MAX || least >= sp->min_free;
}
