/*
 * sv_secret.h - the one path every secret buffer takes.
 *
 * Secrets (private keys, key2a/key2b shares, shared secrets, plaintext data)
 * live in memory from sv_secret_alloc(): OpenSSL's secure heap when the host
 * has initialised it (locked, excluded from core dumps, guard pages), plain
 * heap otherwise. sv_secret_free() cleanses before it releases. Stack buffers
 * holding secrets are wiped with sv_cleanse() on every exit path.
 */
#ifndef SV_SECRET_H
#define SV_SECRET_H

#include <stddef.h>

/* Initialise OpenSSL's secure heap of size bytes (power of two) for this
 * process. Returns 1 on success, 0 when it cannot be locked (the caller
 * decides whether that is fatal; allocations then fall back to the heap). */
int sv_secret_init(size_t size);

/* How much of the secure heap sv_secret_alloc() may use (default: half of
 * what sv_secret_init() set up; the other half stays free for OpenSSL's own
 * secure allocations, such as TLS ephemeral keys). Call at start-up. */
void sv_secret_set_budget(size_t bytes);

/* Zeroed secret buffer of n bytes, or NULL. From the secure heap while the
 * budget allows, else from the ordinary heap (still cleansed on free).
 * Free with sv_secret_free(). */
void *sv_secret_alloc(size_t n);

/* Cleanse n bytes at p and release them. NULL is allowed. */
void sv_secret_free(void *p, size_t n);

/* Cleanse n bytes (OPENSSL_cleanse: not optimised away). */
void sv_cleanse(void *p, size_t n);

/* Best effort: lock [p, p+n) in RAM and exclude it from core dumps
 * (mlock + MADV_DONTDUMP on the covering pages). Returns 0 when both held,
 * -1 otherwise (errno says why); the memory stays usable either way. */
int sv_mem_protect(void *p, size_t n);

/* Constant-time comparison: 0 when equal. */
int sv_memcmp_ct(const void *a, const void *b, size_t n);

#endif /* SV_SECRET_H */
