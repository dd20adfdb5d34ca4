/*
 * sv_buf.h - a growable byte buffer with explicit ownership.
 *
 * Used to build wire frames. A buffer marked secret keeps its bytes in
 * sv_secret_alloc() memory and is cleansed whenever it grows or is freed;
 * frames that carry key shares or plaintext always use secret buffers.
 */
#ifndef SV_BUF_H
#define SV_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "sv_err.h"

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max;   /* hard cap on len; 0 means SV_BUF_DEFAULT_MAX */
    int secret;
    int failed;   /* sticky: a put failed (cap or allocation) */
} sv_buf;

#define SV_BUF_DEFAULT_MAX (16u << 20)

/* Initialise an empty buffer (no allocation yet). */
void sv_buf_init(sv_buf *b, int secret, size_t max);

/* Cleanse (if secret) and free the storage; b may be reused after init. */
void sv_buf_free(sv_buf *b);

/* Make room for n more bytes. */
sv_status sv_buf_reserve(sv_buf *b, size_t n);

/* Append. After any failure b->failed is set and later puts do nothing, so
 * encoders check once at the end with sv_buf_status(). */
void sv_buf_put(sv_buf *b, const void *p, size_t n);
void sv_buf_put_u8(sv_buf *b, uint8_t v);
void sv_buf_put_u16(sv_buf *b, uint16_t v);
void sv_buf_put_u32(sv_buf *b, uint32_t v);
void sv_buf_put_u64(sv_buf *b, uint64_t v);
sv_status sv_buf_status(const sv_buf *b);

/* Drop the contents (cleansing them if secret), keep the storage. */
void sv_buf_reset(sv_buf *b);

#endif /* SV_BUF_H */
