/*
 * sv_buf.c - growable byte buffer with explicit ownership (see sv_buf.h).
 *
 * Invariants: len <= cap; len <= the effective max; data is NULL exactly when
 * cap is 0. A secret buffer's storage always comes from sv_secret_alloc():
 * growing allocates a new block, copies, then cleanses and frees the old one,
 * so no stale copy of a secret is ever left behind by realloc(). Public
 * buffers use realloc().
 *
 * Failure is sticky: b->failed holds the first failure's sv_status
 * (SV_ERR_WIRE_TOO_LARGE when max would be passed, SV_ERR_NOMEM when memory
 * ran out) and every later put is a no-op, so a writer appends a whole
 * message and checks once with sv_buf_status(). sv_buf_reset() clears it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "sv_buf.h"
#include "sv_secret.h"

#define SV_BUF_MIN_CAP 256

static size_t
buf_max(const sv_buf *b)
{
    return b->max != 0 ? b->max : SV_BUF_DEFAULT_MAX;
}

void
sv_buf_init(sv_buf *b, int secret, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->secret = secret ? 1 : 0;
    b->max = max;
}

/* Release the storage (cleansed first when secret). */
static void
buf_release(sv_buf *b)
{
    if (b->data == NULL)
        return;
    if (b->secret) {
        sv_secret_free(b->data, b->cap);
    } else {
        free(b->data);
    }
    b->data = NULL;
    b->cap = 0;
}

void
sv_buf_free(sv_buf *b)
{
    if (b == NULL)
        return;
    buf_release(b);
    b->len = 0;
    b->failed = 0;
}

/* Grow so that n more bytes fit. Does not touch b->failed. */
static sv_status
buf_grow(sv_buf *b, size_t n)
{
    size_t max = buf_max(b);
    size_t need, ncap;
    uint8_t *nd;

    if (b->len > max || n > max - b->len)
        return SV_ERR_WIRE_TOO_LARGE;
    need = b->len + n;
    if (need <= b->cap)
        return SV_OK;

    ncap = b->cap < SV_BUF_MIN_CAP ? SV_BUF_MIN_CAP : b->cap;
    while (ncap < need) {
        if (ncap > max / 2) {
            ncap = max;
            break;
        }
        ncap *= 2;
    }
    if (ncap > max)
        ncap = max;
    if (ncap < need) /* only when max < SV_BUF_MIN_CAP */
        ncap = need;

    if (b->secret) {
        nd = sv_secret_alloc(ncap);
        if (nd == NULL)
            return SV_ERR_NOMEM;
        if (b->len > 0)
            memcpy(nd, b->data, b->len);
        buf_release(b);
    } else {
        nd = realloc(b->data, ncap);
        if (nd == NULL)
            return SV_ERR_NOMEM;
    }
    b->data = nd;
    b->cap = ncap;
    return SV_OK;
}

sv_status
sv_buf_reserve(sv_buf *b, size_t n)
{
    if (b->failed)
        return (sv_status)b->failed;
    return buf_grow(b, n);
}

void
sv_buf_put(sv_buf *b, const void *p, size_t n)
{
    size_t off = 0;
    int inside = 0;
    sv_status st;

    if (b->failed || n == 0)
        return;
    if (p == NULL) {
        b->failed = SV_ERR_INVAL;
        return;
    }
    /* p may point into our own storage, which growing would move. */
    if (b->data != NULL && (const uint8_t *)p >= b->data &&
        (const uint8_t *)p < b->data + b->cap) {
        off = (size_t)((const uint8_t *)p - b->data);
        inside = 1;
    }
    st = buf_grow(b, n);
    if (st != SV_OK) {
        b->failed = st;
        return;
    }
    if (inside)
        p = b->data + off;
    memmove(b->data + b->len, p, n);
    b->len += n;
}

void
sv_buf_put_u8(sv_buf *b, uint8_t v)
{
    sv_buf_put(b, &v, 1);
}

void
sv_buf_put_u16(sv_buf *b, uint16_t v)
{
    uint8_t x[2];

    x[0] = (uint8_t)(v >> 8);
    x[1] = (uint8_t)v;
    sv_buf_put(b, x, sizeof(x));
}

void
sv_buf_put_u32(sv_buf *b, uint32_t v)
{
    uint8_t x[4];

    x[0] = (uint8_t)(v >> 24);
    x[1] = (uint8_t)(v >> 16);
    x[2] = (uint8_t)(v >> 8);
    x[3] = (uint8_t)v;
    sv_buf_put(b, x, sizeof(x));
}

void
sv_buf_put_u64(sv_buf *b, uint64_t v)
{
    uint8_t x[8];
    int i;

    for (i = 7; i >= 0; i--) {
        x[i] = (uint8_t)v;
        v >>= 8;
    }
    sv_buf_put(b, x, sizeof(x));
}

sv_status
sv_buf_status(const sv_buf *b)
{
    return (sv_status)b->failed;
}

void
sv_buf_reset(sv_buf *b)
{
    if (b->data != NULL && b->secret)
        sv_cleanse(b->data, b->cap);
    b->len = 0;
    b->failed = 0;
}
