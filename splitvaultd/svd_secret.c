/*
 * svd_secret.c - secret memory with a per-thread cache of released blocks.
 */
#include "config.h"

#include <openssl/crypto.h>

#include "svd_secret.h"
#include "sv_secret.h"

/*
 * Per-thread cache of released secret blocks, for threads that ask for it
 * (connection threads: every request allocates the same few sizes, and each
 * secure-heap allocation and release takes OpenSSL's global secure-heap lock
 * and walks its buddy lists, 1.7 us a pair). A block is cleansed when
 * released, so a cached block holds zeros only; blocks are power-of-two
 * sized (what the secure heap hands out anyway) up to SECRET_CACHE_MAX, and
 * at most SECRET_CACHE_SLOTS are kept. svd_secret_cache_end() gives them
 * back when the thread ends.
 */
#define SECRET_CACHE_SLOTS 8
#define SECRET_CACHE_MAX 8192
#define SECRET_CACHE_MIN 32

static __thread int secret_cache_on;
static __thread struct {
    void *p;
    size_t cap;
} secret_cache[SECRET_CACHE_SLOTS];

/* The block size used for n bytes, or 0 when n is not cached. */
static size_t
secret_class(size_t n)
{
    size_t c = SECRET_CACHE_MIN;

    if (!secret_cache_on || n > SECRET_CACHE_MAX)
        return 0;
    while (c < n)
        c <<= 1;
    return c;
}

static void *
secret_alloc_raw(size_t n)
{
    void *p = sv_secret_alloc(n);

    if (p == NULL)
        p = OPENSSL_zalloc(n == 0 ? 1 : n); /* sv_secret_free cleanses it too */
    return p;
}

void *
svd_secret_alloc(size_t n)
{
    size_t c = secret_class(n);

    if (c == 0)
        return secret_alloc_raw(n);
    for (unsigned i = 0; i < SECRET_CACHE_SLOTS; i++)
        if (secret_cache[i].p != NULL && secret_cache[i].cap == c) {
            void *p = secret_cache[i].p;
            secret_cache[i].p = NULL;
            return p; /* all zeros: cleansed when released */
        }
    return secret_alloc_raw(c);
}

void
svd_secret_free(void *p, size_t n)
{
    size_t c;

    if (p == NULL)
        return;
    if ((c = secret_class(n)) == 0) {
        sv_secret_free(p, n);
        return;
    }
    /* the caller used at most n bytes of the c-byte block, which was all
     * zeros when handed out: cleansing n bytes makes it all zeros again */
    sv_cleanse(p, n == 0 ? 1 : n);
    for (unsigned i = 0; i < SECRET_CACHE_SLOTS; i++)
        if (secret_cache[i].p == NULL) {
            secret_cache[i].p = p;
            secret_cache[i].cap = c;
            return;
        }
    sv_secret_free(p, c);
}

void
svd_secret_cache_begin(void)
{
    secret_cache_on = 1;
}

void
svd_secret_cache_end(void)
{
    for (unsigned i = 0; i < SECRET_CACHE_SLOTS; i++)
        if (secret_cache[i].p != NULL) {
            sv_secret_free(secret_cache[i].p, secret_cache[i].cap);
            secret_cache[i].p = NULL;
        }
    secret_cache_on = 0;
}
