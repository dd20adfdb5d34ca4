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

#include <pthread.h>

/*
 * A one-shot completion: one thread waits for another to post a result.
 * Each has its own mutex, so a writer thread finishing a group wakes its
 * callers one by one without holding the queue's lock (and without the
 * woken callers then queueing for that lock). The waiter owns the object
 * (usually on its stack); the poster must not touch it after posting.
 */
struct svd_done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int posted;
    int result;
};

void svd_done_init(struct svd_done *d);
void svd_done_post(struct svd_done *d, int result);
/* Wait for the post, destroy the object, return the posted result. */
int svd_done_wait(struct svd_done *d);

/* Monotonic and wall clocks in milliseconds / seconds. */
uint64_t svd_now_ms(void);
uint64_t svd_wall_s(void);

/* Secret memory for request bodies and plaintext: OpenSSL's secure heap
 * when it has room, else the ordinary heap (locked by mlockall and never
 * dumped). Zeroed. Release with svd_secret_free(p, n) (n as allocated),
 * which cleanses it; in a thread between svd_secret_cache_begin() and
 * svd_secret_cache_end() small blocks are then kept, cleansed, for the
 * thread's next requests. */
void *svd_secret_alloc(size_t n);
void svd_secret_free(void *p, size_t n);
void svd_secret_cache_begin(void);
void svd_secret_cache_end(void); /* releases the thread's cached blocks */

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void svd_hex(const uint8_t *p, size_t n, char *out);

/* Parse exactly 2n hex digits into out; 0 on success, -1 when malformed. */
int svd_unhex(const char *s, size_t slen, uint8_t *out, size_t n);

#endif /* SVD_H */
