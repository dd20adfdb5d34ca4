/*
 * sv_secret.c - secret memory: OpenSSL's secure heap, cleansing, locking and
 * constant-time comparison.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "sv_secret.h"

/* Smallest block the secure heap hands out (power of two). */
#define SV_SECURE_MINSIZE 32

/* Bytes of the secure heap sv_secret_alloc() may use; the rest is left to
 * OpenSSL's own secure allocations. Set by sv_secret_init(). */
static size_t sv_budget;

/*
 * Set up the secure heap once per process. Idempotent: a second call (an
 * httpd graceful restart re-runs post_config) reports the existing heap.
 * CRYPTO_secure_malloc_init() returns 2 when the arena exists but mlock()
 * failed; we report that as 0 so the caller can decide, though allocations
 * still come from the (unlocked, still MADV_DONTDUMP) arena.
 */
int
sv_secret_init(size_t size)
{
    int rc;

    if (CRYPTO_secure_malloc_initialized())
        return 1;
    if (size < 2 * SV_SECURE_MINSIZE || (size & (size - 1)) != 0)
        return 0;
    rc = CRYPTO_secure_malloc_init(size, SV_SECURE_MINSIZE);
    if (rc != 0)
        sv_budget = size / 2;
    return rc == 1;
}

void
sv_secret_set_budget(size_t bytes)
{
    sv_budget = bytes;
}

/*
 * From the secure heap while our share of it (the budget) has room, else
 * from the ordinary heap: a full secure heap must never starve OpenSSL's own
 * use of it (TLS key exchange takes its ephemeral keys from there), and a
 * caller must never be refused memory because peers hold large buffers.
 * Either way sv_secret_free() cleanses (OPENSSL_secure_clear_free tells the
 * two apart).
 */
void *
sv_secret_alloc(size_t n)
{
    void *p;

    if (n == 0)
        n = 1;
    if (sv_budget > 0 && CRYPTO_secure_malloc_initialized() && n <= sv_budget
        && CRYPTO_secure_used() <= sv_budget - n
        && (p = OPENSSL_secure_zalloc(n)) != NULL)
        return p;
    return OPENSSL_zalloc(n);
}

void
sv_secret_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    OPENSSL_secure_clear_free(p, n);
}

void
sv_cleanse(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

/*
 * mlock() and MADV_DONTDUMP the pages covering [p, p+n). Both are attempted
 * even when the first fails; errno is the first failure's.
 */
int
sv_mem_protect(void *p, size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t start, end;
    int rc = 0, saved = 0;

    if (n == 0)
        return 0;
    if (p == NULL || pg <= 0) {
        errno = EINVAL;
        return -1;
    }
    start = (uintptr_t)p & ~((uintptr_t)pg - 1);
    if ((uintptr_t)p > UINTPTR_MAX - n) {
        errno = EINVAL;
        return -1;
    }
    end = ((uintptr_t)p + n + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);

    if (mlock((void *)start, end - start) != 0) {
        saved = errno;
        rc = -1;
    }
#ifdef MADV_DONTDUMP
    if (madvise((void *)start, end - start, MADV_DONTDUMP) != 0) {
        if (rc == 0)
            saved = errno;
        rc = -1;
    }
#else
    if (rc == 0)
        saved = ENOSYS;
    rc = -1;
#endif
    if (rc != 0)
        errno = saved;
    return rc;
}

int
sv_memcmp_ct(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return 0;
    return CRYPTO_memcmp(a, b, n);
}
