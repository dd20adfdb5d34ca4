/*
 * svd_space.h - the free-space watermark (store.min_free).
 *
 * A flood of submissions must not fill the disk the audit log lives on: a
 * full disk fails audit writes, and the daemon then refuses decrypts and
 * unlock (fail closed). Below store.min_free of free space on the audit
 * log's file system (and, with sqlite3, on the store's), STORE is refused
 * with NO_SPACE, so the room that is left stays for what must keep
 * working: audit entries, decrypts and their rotations, lock-down and
 * unlock. The descriptors are opened as root before privileges are
 * dropped (the audit log, the store's lock file), so the check needs no
 * path the daemon's user could not reach.
 */
#ifndef SVD_SPACE_H
#define SVD_SPACE_H

#include <stdint.h>

#define SVD_SPACE_MAX_FDS 2

struct svd_space {
    uint64_t min_free;             /* bytes; 0: no watermark */
    int fd[SVD_SPACE_MAX_FDS];     /* one open file on each file system watched */
    int failing[SVD_SPACE_MAX_FDS]; /* its last fstatvfs failed (atomic) */
    unsigned nfd;
};

/* Watch the file system of fd (not owned: the caller keeps it open). */
void svd_space_watch(struct svd_space *sp, int fd);

/* 1 when every watched file system has at least min_free bytes free for
 * the daemon's user (or there is no watermark: then at once, nothing
 * asked), else 0; *free_bytes gets the smallest free space seen (for
 * messages). A failed fstatvfs counts as room: the watermark never stops
 * intake by itself failing. Such a failure is logged once, and once more
 * when the check works again, not at every STORE. Any thread. */
int svd_space_ok(struct svd_space *sp, uint64_t *free_bytes);

#endif /* SVD_SPACE_H */
