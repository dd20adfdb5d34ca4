/*
 * svd.h - common definitions of splitvaultd, the decryption daemon.
 *
 * Objects shared between threads carry a magic number and are checked on
 * every entry point (varnish/hitch CHECK_OBJ style). Assertions are always
 * compiled in: the daemon is the last guard, and an impossible state is a
 * reason to stop, never to carry on. Core dumps are disabled, so an
 * assertion failure logs its location and aborts without leaving secrets.
 */
#ifndef SVD_H
#define SVD_H

#include <stddef.h>
#include <stdint.h>

#define SVD_NAME "splitvaultd"

void svd_assert_fail(const char *func, const char *file, int line, const char *cond)
    __attribute__((noreturn));

#define SVD_ASSERT(e) \
    do { if (!(e)) svd_assert_fail(__func__, __FILE__, __LINE__, #e); } while (0)
#define AN(x) SVD_ASSERT((x) != 0)
#define AZ(x) SVD_ASSERT((x) == 0)
#define CHECK_OBJ(o, m) SVD_ASSERT((o)->magic == (m))
#define CHECK_OBJ_NOTNULL(o, m) \
    do { SVD_ASSERT((o) != NULL); SVD_ASSERT((o)->magic == (m)); } while (0)

#define SVD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* SVD_H */
