/*
 * svd_secret.h - secret memory for request bodies, shares and plaintext.
 *
 * OpenSSL's secure heap when it has room, else the ordinary heap (locked by
 * mlockall and never dumped). Zeroed. Release with svd_secret_free(p, n)
 * (n as allocated), which cleanses it; in a thread between
 * svd_secret_cache_begin() and svd_secret_cache_end() small blocks are then
 * kept, cleansed, for the thread's next requests.
 */
#ifndef SVD_SECRET_H
#define SVD_SECRET_H

#include <stddef.h>

void *svd_secret_alloc(size_t n);
void svd_secret_free(void *p, size_t n);
void svd_secret_cache_begin(void);
void svd_secret_cache_end(void); /* releases the thread's cached blocks */

#endif /* SVD_SECRET_H */
