/*
 * sv_wire.c - the module <-> daemon wire protocol, version 1.
 *
 * The byte layout of every message is specified in docs/protocol.md; this
 * file is its reference implementation and the two must agree.
 *
 * Decoding untrusted input: every read goes through the sv_rd reader, which
 * checks the remaining length before it hands out a byte. Counts are checked
 * against their limits before the loop that uses them, and the only
 * allocations (reconcile lists) are sized from a count that has been checked
 * against both its limit and the bytes actually present. On failure a
 * decoder leaves its output zeroed and owning nothing.
 *
 * Encoding: each encoder first validates its input as strictly as the
 * decoder would and computes the exact body size; only then does it reserve
 * room and write the frame, so a refused message leaves `out` untouched and a
 * written frame is always one the decoder accepts. The pointers in a message
 * must not point into `out` itself (reserving room may move its storage).
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sv_wire.h"
#include "sv_secret.h"

/* Minimum encoded size of one entry, used to bound counts by input size. */
#define RECON_ENTRY_MIN (8 + SV_UUID_LEN + 1 + 1 + 1 + 8) /* id uuid str8(1) state created */
#define SCAN_ENTRY_MIN (RECON_ENTRY_MIN + 8)                  /* ... retired */
#define RECON_REF_MIN (8 + SV_UUID_LEN + 1 + 1)           /* id uuid str8(1) */
#define EXT_ID_MASK 0x7fffu

/* ------------------------------------------------------------------------ */
/* names                                                                     */

int
sv_actor_name_valid(const char *s, size_t len)
{
    size_t i;

    if (s == NULL || len == 0 || len > SV_WIRE_MAX_ACTOR)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@' ||
            c == '-')
            continue;
        return 0;
    }
    return 1;
}

/* 1 when s[0..len) is printable ASCII (0x20..0x7e); the empty string is. */
static int
msg_text_valid(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c > 0x7e)
            return 0;
    }
    return 1;
}

/* Length of the NUL-terminated string in s[0..cap), or cap when s holds no
 * NUL there (which every caller treats as too long). */
static size_t
bounded_len(const char *s, size_t cap)
{
    const char *z = memchr(s, 0, cap);

    return z != NULL ? (size_t)(z - s) : cap;
}

const char *
sv_wire_type_name(uint8_t type)
{
    switch (type) {
    case SV_MSG_STORE: return "STORE";
    case SV_MSG_DECRYPT: return "DECRYPT";
    case SV_MSG_RELEASE: return "RELEASE";
    case SV_MSG_STATUS: return "STATUS";
    case SV_MSG_RECON_LIST: return "RECON_LIST";
    case SV_MSG_RECON_DELETE: return "RECON_DELETE";
    case SV_MSG_CONFIRM: return "CONFIRM";
    case SV_MSG_RECON_SCAN: return "RECON_SCAN";
    case SV_MSG_STORE_OK: return "STORE_OK";
    case SV_MSG_DECRYPT_OK: return "DECRYPT_OK";
    case SV_MSG_RELEASE_OK: return "RELEASE_OK";
    case SV_MSG_STATUS_OK: return "STATUS_OK";
    case SV_MSG_RECON_LIST_OK: return "RECON_LIST_OK";
    case SV_MSG_RECON_DELETE_OK: return "RECON_DELETE_OK";
    case SV_MSG_CONFIRM_OK: return "CONFIRM_OK";
    case SV_MSG_RECON_SCAN_OK: return "RECON_SCAN_OK";
    case SV_MSG_ERROR: return "ERROR";
    default: return "unknown";
    }
}

const char *
sv_wire_error_name(uint16_t code)
{
    switch (code) {
    case SV_WERR_BAD_REQUEST: return "bad request";
    case SV_WERR_UNSUPPORTED: return "unsupported";
    case SV_WERR_REFUSED: return "refused";
    case SV_WERR_RATE_LIMITED: return "rate limited";
    case SV_WERR_LOCKED_DOWN: return "locked down";
    case SV_WERR_BUSY: return "busy";
    case SV_WERR_STORE: return "store failed";
    case SV_WERR_AUDIT: return "audit log unavailable";
    case SV_WERR_INTERNAL: return "internal error";
    case SV_WERR_NOT_ALLOWED: return "not allowed";
    case SV_WERR_NO_SPACE: return "no space";
    case SV_WERR_EXISTS: return "record exists";
    default: return "unknown";
    }
}

static int
type_known(uint8_t type)
{
    return (type >= SV_MSG_STORE && type <= SV_MSG_RECON_SCAN) ||
           (type >= SV_MSG_STORE_OK && type <= SV_MSG_RECON_SCAN_OK) ||
           type == SV_MSG_ERROR;
}

static int
error_code_known(uint16_t code)
{
    return code >= SV_WERR_BAD_REQUEST && code <= SV_WERR_EXISTS;
}

/* ------------------------------------------------------------------------ */
/* reader                                                                    */

typedef struct {
    const uint8_t *p;
    size_t left;
} sv_rd;

static sv_status
rd_init(sv_rd *r, const uint8_t *body, size_t len)
{
    r->p = body;
    r->left = 0;
    if (body == NULL && len != 0)
        return SV_ERR_INVAL;
    if (len > SV_WIRE_MAX_BODY)
        return SV_ERR_WIRE_TOO_LARGE;
    r->left = len;
    return SV_OK;
}

/* Hand out a pointer to the next n bytes and step over them. */
static sv_status
rd_bytes(sv_rd *r, size_t n, const uint8_t **out)
{
    if (r->left < n)
        return SV_ERR_WIRE_TRUNCATED;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return SV_OK;
}

static sv_status
rd_copy(sv_rd *r, void *dst, size_t n)
{
    const uint8_t *p;
    sv_status st;

    if ((st = rd_bytes(r, n, &p)) != SV_OK)
        return st;
    memcpy(dst, p, n);
    return SV_OK;
}

static sv_status
rd_u8(sv_rd *r, uint8_t *v)
{
    const uint8_t *p;
    sv_status st;

    if ((st = rd_bytes(r, 1, &p)) != SV_OK)
        return st;
    *v = p[0];
    return SV_OK;
}

static sv_status
rd_u16(sv_rd *r, uint16_t *v)
{
    const uint8_t *p;
    sv_status st;

    if ((st = rd_bytes(r, 2, &p)) != SV_OK)
        return st;
    *v = (uint16_t)((p[0] << 8) | p[1]);
    return SV_OK;
}

static sv_status
rd_u32(sv_rd *r, uint32_t *v)
{
    const uint8_t *p;
    sv_status st;

    if ((st = rd_bytes(r, 4, &p)) != SV_OK)
        return st;
    *v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | (uint32_t)p[3];
    return SV_OK;
}

static sv_status
rd_u64(sv_rd *r, uint64_t *v)
{
    const uint8_t *p;
    sv_status st;
    uint64_t x = 0;
    int i;

    if ((st = rd_bytes(r, 8, &p)) != SV_OK)
        return st;
    for (i = 0; i < 8; i++)
        x = (x << 8) | p[i];
    *v = x;
    return SV_OK;
}

/* u8 flag that must be 0 or 1. */
static sv_status
rd_flag(sv_rd *r, uint8_t *v)
{
    sv_status st;

    if ((st = rd_u8(r, v)) != SV_OK)
        return st;
    return *v <= 1 ? SV_OK : SV_ERR_WIRE_MALFORMED;
}

/* u8 count within [lo, hi]. */
static sv_status
rd_count8(sv_rd *r, unsigned lo, unsigned hi, unsigned *n)
{
    uint8_t v;
    sv_status st;

    if ((st = rd_u8(r, &v)) != SV_OK)
        return st;
    if (v < lo || v > hi)
        return SV_ERR_WIRE_MALFORMED;
    *n = v;
    return SV_OK;
}

/* u16 count within [lo, hi]. */
static sv_status
rd_count16(sv_rd *r, unsigned lo, unsigned hi, unsigned *n)
{
    uint16_t v;
    sv_status st;

    if ((st = rd_u16(r, &v)) != SV_OK)
        return st;
    if (v < lo || v > hi)
        return SV_ERR_WIRE_MALFORMED;
    *n = v;
    return SV_OK;
}

/* u64 share id, 0 ("none") allowed, at most SV_WIRE_MAX_ID. */
static sv_status
rd_id0(sv_rd *r, uint64_t *id)
{
    sv_status st;

    if ((st = rd_u64(r, id)) != SV_OK)
        return st;
    return *id <= SV_WIRE_MAX_ID ? SV_OK : SV_ERR_WIRE_MALFORMED;
}

/* u64 share id that must not be 0, at most SV_WIRE_MAX_ID. */
static sv_status
rd_id(sv_rd *r, uint64_t *id)
{
    sv_status st;

    if ((st = rd_id0(r, id)) != SV_OK)
        return st;
    return *id != 0 ? SV_OK : SV_ERR_WIRE_MALFORMED;
}

/* str8 field name into out[SV_FIELD_MAX + 1], NUL-terminated. */
static sv_status
rd_field_name(sv_rd *r, char out[SV_FIELD_MAX + 1])
{
    const uint8_t *p;
    uint8_t len;
    sv_status st;

    if ((st = rd_u8(r, &len)) != SV_OK)
        return st;
    if (len == 0 || len > SV_FIELD_MAX)
        return SV_ERR_WIRE_MALFORMED;
    if ((st = rd_bytes(r, len, &p)) != SV_OK)
        return st;
    if (!sv_field_name_valid((const char *)p, len))
        return SV_ERR_WIRE_MALFORMED;
    memcpy(out, p, len);
    out[len] = '\0';
    return SV_OK;
}

/* str8 actor name into out[SV_WIRE_MAX_ACTOR + 1], NUL-terminated. */
static sv_status
rd_actor(sv_rd *r, char out[SV_WIRE_MAX_ACTOR + 1])
{
    const uint8_t *p;
    uint8_t len;
    sv_status st;

    if ((st = rd_u8(r, &len)) != SV_OK)
        return st;
    if (len == 0 || len > SV_WIRE_MAX_ACTOR)
        return SV_ERR_WIRE_MALFORMED;
    if ((st = rd_bytes(r, len, &p)) != SV_OK)
        return st;
    if (!sv_actor_name_valid((const char *)p, len))
        return SV_ERR_WIRE_MALFORMED;
    memcpy(out, p, len);
    out[len] = '\0';
    return SV_OK;
}

/*
 * The extension block that ends every body, and the end of the body:
 * u16 count (<= SV_WIRE_MAX_EXT), count x {u16 tag, u16 len, len bytes}.
 * An extension's identity is tag & 0x7fff; bit 0x8000 marks it critical.
 * The same identity twice is malformed. Version 1 knows no extension, so
 * every extension is unknown: non-critical ones are skipped, a critical one
 * makes the message SV_ERR_WIRE_UNSUPPORTED. The whole block is checked for
 * structure, and for trailing bytes, before criticality is judged, so a
 * message is only ever "unsupported" when it is otherwise well-formed.
 */
static sv_status
rd_ext_end(sv_rd *r)
{
    uint16_t count, tag, len, seen[SV_WIRE_MAX_EXT];
    const uint8_t *p;
    unsigned i, j;
    int unsupported = 0;
    sv_status st;

    if ((st = rd_u16(r, &count)) != SV_OK)
        return st;
    if (count > SV_WIRE_MAX_EXT)
        return SV_ERR_WIRE_MALFORMED;
    for (i = 0; i < count; i++) {
        if ((st = rd_u16(r, &tag)) != SV_OK ||
            (st = rd_u16(r, &len)) != SV_OK ||
            (st = rd_bytes(r, len, &p)) != SV_OK)
            return st;
        for (j = 0; j < i; j++) {
            if ((seen[j] & EXT_ID_MASK) == (tag & EXT_ID_MASK))
                return SV_ERR_WIRE_MALFORMED;
        }
        seen[i] = tag;
        if (tag & SV_WIRE_CRITICAL)
            unsupported = 1; /* no extension is known in version 1 */
    }
    if (r->left != 0)
        return SV_ERR_WIRE_TRAILING;
    return unsupported ? SV_ERR_WIRE_UNSUPPORTED : SV_OK;
}

/* ------------------------------------------------------------------------ */
/* header and frame                                                          */

sv_status
sv_wire_hdr_decode(const uint8_t hdr[SV_WIRE_HDR_LEN], sv_wire_hdr *h)
{
    memset(h, 0, sizeof(*h));
    if (hdr == NULL)
        return SV_ERR_INVAL;
    /* Fill every field first: a server may echo reqid in its ERROR answer
     * even when the header is refused. None of them is to be trusted then. */
    h->version = hdr[2];
    h->type = hdr[3];
    h->reqid = ((uint32_t)hdr[4] << 24) | ((uint32_t)hdr[5] << 16) |
               ((uint32_t)hdr[6] << 8) | (uint32_t)hdr[7];
    h->body_len = ((uint32_t)hdr[8] << 24) | ((uint32_t)hdr[9] << 16) |
                  ((uint32_t)hdr[10] << 8) | (uint32_t)hdr[11];
    if (hdr[0] != SV_WIRE_MAGIC0 || hdr[1] != SV_WIRE_MAGIC1)
        return SV_ERR_WIRE_VERSION;
    if (h->version != SV_WIRE_VERSION)
        return SV_ERR_WIRE_VERSION;
    if (!type_known(h->type))
        return SV_ERR_WIRE_TYPE;
    if (h->body_len > SV_WIRE_MAX_BODY)
        return SV_ERR_WIRE_TOO_LARGE;
    return SV_OK;
}

uint8_t
sv_wire_frame_type(const uint8_t *buf, size_t len)
{
    return buf != NULL && len >= SV_WIRE_HDR_LEN ? buf[3] : 0;
}

sv_status
sv_wire_frame(const uint8_t *buf, size_t len, sv_wire_hdr *h, const uint8_t **body)
{
    sv_status st;

    *body = NULL;
    if (buf == NULL || len < SV_WIRE_HDR_LEN) {
        memset(h, 0, sizeof(*h));
        return buf == NULL && len != 0 ? SV_ERR_INVAL : SV_ERR_WIRE_TRUNCATED;
    }
    if ((st = sv_wire_hdr_decode(buf, h)) != SV_OK)
        return st;
    if (len - SV_WIRE_HDR_LEN < h->body_len)
        return SV_ERR_WIRE_TRUNCATED;
    if (len - SV_WIRE_HDR_LEN > h->body_len)
        return SV_ERR_WIRE_TRAILING;
    *body = buf + SV_WIRE_HDR_LEN;
    return SV_OK;
}

/* ------------------------------------------------------------------------ */
/* writer                                                                    */

/* Size of the (empty) extension block every version 1 encoder writes. */
#define EXT_EMPTY_LEN 2

/*
 * Start a frame of `type` whose body will be exactly body_len bytes: refuse
 * an oversized body, reserve room for the whole frame (so no later put can
 * fail) and write the header. *start receives the frame's offset in out.
 */
static sv_status
frame_begin(sv_buf *out, uint8_t type, uint32_t reqid, size_t body_len,
            size_t *start)
{
    sv_status st;

    if ((st = sv_buf_status(out)) != SV_OK)
        return st;
    if (body_len > SV_WIRE_MAX_BODY)
        return SV_ERR_WIRE_TOO_LARGE;
    if ((st = sv_buf_reserve(out, SV_WIRE_HDR_LEN + body_len)) != SV_OK)
        return st;
    *start = out->len;
    sv_buf_put_u8(out, SV_WIRE_MAGIC0);
    sv_buf_put_u8(out, SV_WIRE_MAGIC1);
    sv_buf_put_u8(out, SV_WIRE_VERSION);
    sv_buf_put_u8(out, type);
    sv_buf_put_u32(out, reqid);
    sv_buf_put_u32(out, (uint32_t)body_len);
    return SV_OK;
}

/* Write the empty extension block and check the frame came out exactly as
 * sized. On any failure the partial frame is removed (and cleansed when the
 * buffer is secret), leaving out as it was. */
static sv_status
frame_end(sv_buf *out, size_t start, size_t body_len)
{
    sv_status st;

    sv_buf_put_u16(out, 0);
    st = sv_buf_status(out);
    if (st == SV_OK && out->len - start != SV_WIRE_HDR_LEN + body_len)
        st = SV_ERR_INTERNAL;
    if (st != SV_OK && out->len > start) {
        if (out->secret)
            sv_cleanse(out->data + start, out->len - start);
        out->len = start;
    }
    return st;
}

static void
put_str8(sv_buf *out, const char *s)
{
    size_t len = strlen(s); /* validated <= 255 by the caller */

    sv_buf_put_u8(out, (uint8_t)len);
    sv_buf_put(out, s, len);
}

/* Validate a field name held in a char[SV_FIELD_MAX + 1]; its length or 0. */
static size_t
field_name_len(const char *name)
{
    size_t len = bounded_len(name, SV_FIELD_MAX + 1);

    if (len > SV_FIELD_MAX || !sv_field_name_valid(name, len))
        return 0;
    return len;
}

/*
 * Field names held in an array of structs: element i's name is at
 * (char *)base + i * stride + off. 1 when one of the names of elements
 * 0..n-1 equals the name of element n.
 */
static int
name_seen_at(const void *base, size_t stride, size_t off, unsigned n)
{
    const char *p = (const char *)base;
    const char *name = p + (size_t)n * stride + off;
    unsigned i;

    for (i = 0; i < n; i++) {
        if (strcmp(p + (size_t)i * stride + off, name) == 0)
            return 1;
    }
    return 0;
}

/* 1 when id is a share id an encoder may write: 1..SV_WIRE_MAX_ID, or 0
 * when zero_ok. */
static int
id_ok(uint64_t id, int zero_ok)
{
    return id <= SV_WIRE_MAX_ID && (id != 0 || zero_ok);
}

/* 1 when id (non-zero) already occurs in ids[0..n). */
static int
id_seen(const uint64_t *ids, unsigned n, uint64_t id)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        if (ids[i] == id)
            return 1;
    }
    return 0;
}

/*
 * The head of item i of a request that names shares (DECRYPT, CONFIRM):
 * a share id, distinct from ids[0..i), and a field name, distinct from
 * those of the items before it (held as for name_seen_at). The encoder's
 * check gives the name's length (0: refused) and records the id; the
 * decoder reads both and records the id.
 */
static size_t
item_head_len(uint64_t *ids, unsigned i, uint64_t id, const char *name,
              const void *base, size_t stride, size_t off)
{
    size_t l;

    if (!id_ok(id, 0) || id_seen(ids, i, id) || (l = field_name_len(name)) == 0 ||
        name_seen_at(base, stride, off, i))
        return 0;
    ids[i] = id;
    return l;
}

static sv_status
rd_item_head(sv_rd *r, uint64_t *ids, unsigned i, uint64_t *id, char name[SV_FIELD_MAX + 1],
             const void *base, size_t stride, size_t off)
{
    sv_status st;

    if ((st = rd_id(r, id)) != SV_OK)
        return st;
    if (id_seen(ids, i, *id))
        return SV_ERR_WIRE_MALFORMED;
    ids[i] = *id;
    if ((st = rd_field_name(r, name)) != SV_OK)
        return st;
    return name_seen_at(base, stride, off, i) ? SV_ERR_WIRE_MALFORMED : SV_OK;
}

/* ------------------------------------------------------------------------ */
/* STORE                                                                     */

/* body: uuid[16] u8 n {str8 field, pub[32], key2b[32]}*n ext */
sv_status
sv_store_req_encode(sv_buf *out, uint32_t reqid, const sv_store_req *m)
{
    size_t body = SV_UUID_LEN + 1 + EXT_EMPTY_LEN, start = 0, l;
    unsigned i;
    sv_status st;

    if (out == NULL || m == NULL || !out->secret)
        return SV_ERR_INVAL; /* carries key2b: secret buffers only */
    if (m->n < 1 || m->n > SV_WIRE_MAX_FIELDS)
        return SV_ERR_INVAL;
    for (i = 0; i < m->n; i++) {
        const sv_store_field *f = &m->f[i];

        if ((l = field_name_len(f->name)) == 0 || f->pub == NULL ||
            f->key2b == NULL ||
            name_seen_at(m->f, sizeof(m->f[0]), offsetof(sv_store_field, name), i))
            return SV_ERR_INVAL;
        body += 1 + l + 2 * SV_X25519_LEN;
    }
    if ((st = frame_begin(out, SV_MSG_STORE, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put(out, m->uuid, SV_UUID_LEN);
    sv_buf_put_u8(out, (uint8_t)m->n);
    for (i = 0; i < m->n; i++) {
        put_str8(out, m->f[i].name);
        sv_buf_put(out, m->f[i].pub, SV_X25519_LEN);
        sv_buf_put(out, m->f[i].key2b, SV_X25519_LEN);
    }
    return frame_end(out, start, body);
}

sv_status
sv_store_req_decode(const uint8_t *body, size_t len, sv_store_req *m)
{
    sv_rd r;
    unsigned i;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_copy(&r, m->uuid, SV_UUID_LEN)) != SV_OK ||
        (st = rd_count8(&r, 1, SV_WIRE_MAX_FIELDS, &m->n)) != SV_OK)
        goto out;
    for (i = 0; i < m->n; i++) {
        sv_store_field *f = &m->f[i];

        if ((st = rd_field_name(&r, f->name)) != SV_OK)
            goto out;
        if (name_seen_at(m->f, sizeof(m->f[0]), offsetof(sv_store_field, name), i)) {
            st = SV_ERR_WIRE_MALFORMED;
            goto out;
        }
        if ((st = rd_bytes(&r, SV_X25519_LEN, &f->pub)) != SV_OK ||
            (st = rd_bytes(&r, SV_X25519_LEN, &f->key2b)) != SV_OK)
            goto out;
    }
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/* body: u8 n (1..32) {u64 share id != 0, distinct}*n ext */
sv_status
sv_store_resp_encode(sv_buf *out, uint32_t reqid, const sv_store_resp *m)
{
    size_t body, start = 0;
    unsigned i;
    sv_status st;

    if (out == NULL || m == NULL || m->n < 1 || m->n > SV_WIRE_MAX_FIELDS)
        return SV_ERR_INVAL;
    for (i = 0; i < m->n; i++) {
        if (!id_ok(m->share_id[i], 0) || id_seen(m->share_id, i, m->share_id[i]))
            return SV_ERR_INVAL;
    }
    body = 1 + (size_t)m->n * 8 + EXT_EMPTY_LEN;
    if ((st = frame_begin(out, SV_MSG_STORE_OK, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put_u8(out, (uint8_t)m->n);
    for (i = 0; i < m->n; i++)
        sv_buf_put_u64(out, m->share_id[i]);
    return frame_end(out, start, body);
}

sv_status
sv_store_resp_decode(const uint8_t *body, size_t len, sv_store_resp *m)
{
    sv_rd r;
    unsigned i;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_count8(&r, 1, SV_WIRE_MAX_FIELDS, &m->n)) != SV_OK)
        goto out;
    for (i = 0; i < m->n; i++) {
        if ((st = rd_id(&r, &m->share_id[i])) != SV_OK)
            goto out;
        if (id_seen(m->share_id, i, m->share_id[i])) {
            st = SV_ERR_WIRE_MALFORMED;
            goto out;
        }
    }
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/* ------------------------------------------------------------------------ */
/* DECRYPT                                                                   */

/*
 * body: uuid[16] str8 actor u32 wait_ms u8 n (1..32)
 *       {u64 share id, str8 field, key2a[32], enc[32], blob32 ct,
 *        u8 rotate, [new_pub[32] new_key2b[32] when rotate = 1]}*n ext
 * Field names and share ids are distinct within one request.
 */
size_t
sv_decrypt_req_size_fixed(size_t actor_len)
{
    return SV_UUID_LEN + 1 + actor_len + 4 + 1 + EXT_EMPTY_LEN;
}

size_t
sv_decrypt_req_size_field(size_t name_len, size_t ct_len, int rotate)
{
    return 8 + 1 + name_len + SV_X25519_LEN + SV_HPKE_ENC_LEN + 4 + ct_len + 1 +
           (rotate ? 2 * SV_X25519_LEN : 0);
}

sv_status
sv_decrypt_req_encode(sv_buf *out, uint32_t reqid, const sv_decrypt_req *m)
{
    size_t body, start = 0, l, al;
    uint64_t ids[SV_WIRE_MAX_FIELDS];
    unsigned i;
    sv_status st;

    if (out == NULL || m == NULL || !out->secret)
        return SV_ERR_INVAL; /* carries key2a and key2b: secret buffers only */
    al = bounded_len(m->actor, SV_WIRE_MAX_ACTOR + 1);
    if (!sv_actor_name_valid(m->actor, al))
        return SV_ERR_INVAL;
    if (m->n < 1 || m->n > SV_WIRE_MAX_FIELDS)
        return SV_ERR_INVAL;
    body = sv_decrypt_req_size_fixed(al);
    for (i = 0; i < m->n; i++) {
        const sv_decrypt_field *f = &m->f[i];

        if ((l = item_head_len(ids, i, f->share_id, f->name, m->f, sizeof(m->f[0]),
                               offsetof(sv_decrypt_field, name))) == 0 ||
            f->key2a == NULL || f->enc == NULL || f->ct == NULL ||
            f->ct_len < SV_HPKE_TAG_LEN ||
            f->ct_len > SV_DATUM_MAX + SV_HPKE_TAG_LEN ||
            (f->rotate != 0 && f->rotate != 1) ||
            (f->rotate == 1 && (f->new_pub == NULL || f->new_key2b == NULL)))
            return SV_ERR_INVAL;
        body += sv_decrypt_req_size_field(l, f->ct_len, f->rotate);
    }
    if ((st = frame_begin(out, SV_MSG_DECRYPT, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put(out, m->uuid, SV_UUID_LEN);
    put_str8(out, m->actor);
    sv_buf_put_u32(out, m->wait_ms);
    sv_buf_put_u8(out, (uint8_t)m->n);
    for (i = 0; i < m->n; i++) {
        const sv_decrypt_field *f = &m->f[i];

        sv_buf_put_u64(out, f->share_id);
        put_str8(out, f->name);
        sv_buf_put(out, f->key2a, SV_X25519_LEN);
        sv_buf_put(out, f->enc, SV_HPKE_ENC_LEN);
        sv_buf_put_u32(out, f->ct_len);
        sv_buf_put(out, f->ct, f->ct_len);
        sv_buf_put_u8(out, (uint8_t)f->rotate);
        if (f->rotate) {
            sv_buf_put(out, f->new_pub, SV_X25519_LEN);
            sv_buf_put(out, f->new_key2b, SV_X25519_LEN);
        }
    }
    return frame_end(out, start, body);
}

sv_status
sv_decrypt_req_decode(const uint8_t *body, size_t len, sv_decrypt_req *m)
{
    uint64_t ids[SV_WIRE_MAX_FIELDS];
    sv_rd r;
    unsigned i;
    uint8_t rot;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_copy(&r, m->uuid, SV_UUID_LEN)) != SV_OK ||
        (st = rd_actor(&r, m->actor)) != SV_OK ||
        (st = rd_u32(&r, &m->wait_ms)) != SV_OK ||
        (st = rd_count8(&r, 1, SV_WIRE_MAX_FIELDS, &m->n)) != SV_OK)
        goto out;
    for (i = 0; i < m->n; i++) {
        sv_decrypt_field *f = &m->f[i];

        if ((st = rd_item_head(&r, ids, i, &f->share_id, f->name, m->f, sizeof(m->f[0]),
                               offsetof(sv_decrypt_field, name))) != SV_OK ||
            (st = rd_bytes(&r, SV_X25519_LEN, &f->key2a)) != SV_OK ||
            (st = rd_bytes(&r, SV_HPKE_ENC_LEN, &f->enc)) != SV_OK ||
            (st = rd_u32(&r, &f->ct_len)) != SV_OK)
            goto out;
        if (f->ct_len < SV_HPKE_TAG_LEN ||
            f->ct_len > SV_DATUM_MAX + SV_HPKE_TAG_LEN) {
            st = SV_ERR_WIRE_MALFORMED;
            goto out;
        }
        if ((st = rd_bytes(&r, f->ct_len, &f->ct)) != SV_OK ||
            (st = rd_flag(&r, &rot)) != SV_OK)
            goto out;
        f->rotate = rot;
        if (rot &&
            ((st = rd_bytes(&r, SV_X25519_LEN, &f->new_pub)) != SV_OK ||
             (st = rd_bytes(&r, SV_X25519_LEN, &f->new_key2b)) != SV_OK))
            goto out;
    }
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/* body: u8 n (1..32) {blob32 pt (0..SV_DATUM_MAX), u64 new share id}*n ext;
 * non-zero new share ids are distinct. */
sv_status
sv_decrypt_resp_encode(sv_buf *out, uint32_t reqid, const sv_decrypt_resp *m)
{
    uint64_t ids[SV_WIRE_MAX_FIELDS];
    size_t body, start = 0;
    unsigned i, nids = 0;
    sv_status st;

    if (out == NULL || m == NULL || !out->secret)
        return SV_ERR_INVAL; /* carries plaintext: secret buffers only */
    if (m->n < 1 || m->n > SV_WIRE_MAX_FIELDS)
        return SV_ERR_INVAL;
    body = 1 + EXT_EMPTY_LEN;
    for (i = 0; i < m->n; i++) {
        const sv_decrypt_out *f = &m->f[i];

        if (f->pt_len > SV_DATUM_MAX || (f->pt == NULL && f->pt_len != 0) ||
            !id_ok(f->new_share_id, 1))
            return SV_ERR_INVAL;
        if (f->new_share_id != 0) {
            if (id_seen(ids, nids, f->new_share_id))
                return SV_ERR_INVAL;
            ids[nids++] = f->new_share_id;
        }
        body += 4 + (size_t)f->pt_len + 8;
    }
    if ((st = frame_begin(out, SV_MSG_DECRYPT_OK, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put_u8(out, (uint8_t)m->n);
    for (i = 0; i < m->n; i++) {
        sv_buf_put_u32(out, m->f[i].pt_len);
        sv_buf_put(out, m->f[i].pt, m->f[i].pt_len);
        sv_buf_put_u64(out, m->f[i].new_share_id);
    }
    return frame_end(out, start, body);
}

sv_status
sv_decrypt_resp_decode(const uint8_t *body, size_t len, sv_decrypt_resp *m)
{
    uint64_t ids[SV_WIRE_MAX_FIELDS];
    sv_rd r;
    unsigned i, nids = 0;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_count8(&r, 1, SV_WIRE_MAX_FIELDS, &m->n)) != SV_OK)
        goto out;
    for (i = 0; i < m->n; i++) {
        sv_decrypt_out *f = &m->f[i];

        if ((st = rd_u32(&r, &f->pt_len)) != SV_OK)
            goto out;
        if (f->pt_len > SV_DATUM_MAX) {
            st = SV_ERR_WIRE_MALFORMED;
            goto out;
        }
        if ((st = rd_bytes(&r, f->pt_len, &f->pt)) != SV_OK ||
            (st = rd_id0(&r, &f->new_share_id)) != SV_OK)
            goto out;
        if (f->new_share_id != 0) {
            if (id_seen(ids, nids, f->new_share_id)) {
                st = SV_ERR_WIRE_MALFORMED;
                goto out;
            }
            ids[nids++] = f->new_share_id;
        }
    }
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/* ------------------------------------------------------------------------ */
/* RELEASE                                                                   */

/* Check one release item against the ids used so far; adds its ids. */
static int
release_item_ok(const sv_release_item *f, uint64_t *ids, unsigned *nids)
{
    if ((f->drop_id == 0 && f->keep_id == 0) || !id_ok(f->drop_id, 1) ||
        !id_ok(f->keep_id, 1))
        return 0;
    if (f->drop_id != 0) {
        if (id_seen(ids, *nids, f->drop_id))
            return 0;
        ids[(*nids)++] = f->drop_id;
    }
    if (f->keep_id != 0) {
        if (id_seen(ids, *nids, f->keep_id))
            return 0;
        ids[(*nids)++] = f->keep_id;
    }
    return 1;
}

/* body: uuid[16] u8 n (1..32) {str8 field, u64 drop_id, u64 keep_id}*n ext;
 * not both ids 0; names distinct; non-zero ids distinct across the message. */
sv_status
sv_release_req_encode(sv_buf *out, uint32_t reqid, const sv_release_req *m)
{
    uint64_t ids[2 * SV_WIRE_MAX_FIELDS];
    size_t body, start = 0, l;
    unsigned i, nids = 0;
    sv_status st;

    if (out == NULL || m == NULL || m->n < 1 || m->n > SV_WIRE_MAX_FIELDS)
        return SV_ERR_INVAL;
    body = SV_UUID_LEN + 1 + EXT_EMPTY_LEN;
    for (i = 0; i < m->n; i++) {
        if ((l = field_name_len(m->f[i].name)) == 0 ||
            name_seen_at(m->f, sizeof(m->f[0]), offsetof(sv_release_item, name), i) ||
            !release_item_ok(&m->f[i], ids, &nids))
            return SV_ERR_INVAL;
        body += 1 + l + 8 + 8;
    }
    if ((st = frame_begin(out, SV_MSG_RELEASE, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put(out, m->uuid, SV_UUID_LEN);
    sv_buf_put_u8(out, (uint8_t)m->n);
    for (i = 0; i < m->n; i++) {
        put_str8(out, m->f[i].name);
        sv_buf_put_u64(out, m->f[i].drop_id);
        sv_buf_put_u64(out, m->f[i].keep_id);
    }
    return frame_end(out, start, body);
}

sv_status
sv_release_req_decode(const uint8_t *body, size_t len, sv_release_req *m)
{
    uint64_t ids[2 * SV_WIRE_MAX_FIELDS];
    sv_rd r;
    unsigned i, nids = 0;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_copy(&r, m->uuid, SV_UUID_LEN)) != SV_OK ||
        (st = rd_count8(&r, 1, SV_WIRE_MAX_FIELDS, &m->n)) != SV_OK)
        goto out;
    for (i = 0; i < m->n; i++) {
        sv_release_item *f = &m->f[i];

        if ((st = rd_field_name(&r, f->name)) != SV_OK)
            goto out;
        if (name_seen_at(m->f, sizeof(m->f[0]), offsetof(sv_release_item, name), i)) {
            st = SV_ERR_WIRE_MALFORMED;
            goto out;
        }
        if ((st = rd_id0(&r, &f->drop_id)) != SV_OK ||
            (st = rd_id0(&r, &f->keep_id)) != SV_OK)
            goto out;
        if (!release_item_ok(f, ids, &nids)) {
            st = SV_ERR_WIRE_MALFORMED;
            goto out;
        }
    }
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/* body: u8 n (0..32) ext */
sv_status
sv_release_resp_encode(sv_buf *out, uint32_t reqid, const sv_release_resp *m)
{
    size_t body = 1 + EXT_EMPTY_LEN, start = 0;
    sv_status st;

    if (out == NULL || m == NULL || m->n > SV_WIRE_MAX_FIELDS)
        return SV_ERR_INVAL;
    if ((st = frame_begin(out, SV_MSG_RELEASE_OK, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put_u8(out, (uint8_t)m->n);
    return frame_end(out, start, body);
}

sv_status
sv_release_resp_decode(const uint8_t *body, size_t len, sv_release_resp *m)
{
    sv_rd r;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_count8(&r, 0, SV_WIRE_MAX_FIELDS, &m->n)) != SV_OK ||
        (st = rd_ext_end(&r)) != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/* ------------------------------------------------------------------------ */
/* STATUS                                                                    */

/* body: ext */
sv_status
sv_status_req_encode(sv_buf *out, uint32_t reqid)
{
    size_t start = 0;
    sv_status st;

    if (out == NULL)
        return SV_ERR_INVAL;
    if ((st = frame_begin(out, SV_MSG_STATUS, reqid, EXT_EMPTY_LEN, &start)) != SV_OK)
        return st;
    return frame_end(out, start, EXT_EMPTY_LEN);
}

sv_status
sv_status_req_decode(const uint8_t *body, size_t len)
{
    sv_rd r;
    sv_status st;

    if ((st = rd_init(&r, body, len)) != SV_OK)
        return st;
    return rd_ext_end(&r);
}

#define STATUS_BODY_LEN (1 + 4 + 4 + 7 * 8 + EXT_EMPTY_LEN)

/* body: u8 locked (0|1) u32 queue_len u32 queue_max u64 locked_since
 *       u64 shares_active u64 shares_pending u64 stores u64 decrypts
 *       u64 refusals u64 uptime ext */
sv_status
sv_status_resp_encode(sv_buf *out, uint32_t reqid, const sv_status_resp *m)
{
    size_t start = 0;
    sv_status st;

    if (out == NULL || m == NULL || m->locked > 1)
        return SV_ERR_INVAL;
    if ((st = frame_begin(out, SV_MSG_STATUS_OK, reqid, STATUS_BODY_LEN,
                          &start)) != SV_OK)
        return st;
    sv_buf_put_u8(out, m->locked);
    sv_buf_put_u32(out, m->queue_len);
    sv_buf_put_u32(out, m->queue_max);
    sv_buf_put_u64(out, m->locked_since);
    sv_buf_put_u64(out, m->shares_active);
    sv_buf_put_u64(out, m->shares_pending);
    sv_buf_put_u64(out, m->stores);
    sv_buf_put_u64(out, m->decrypts);
    sv_buf_put_u64(out, m->refusals);
    sv_buf_put_u64(out, m->uptime);
    return frame_end(out, start, STATUS_BODY_LEN);
}

sv_status
sv_status_resp_decode(const uint8_t *body, size_t len, sv_status_resp *m)
{
    sv_rd r;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_flag(&r, &m->locked)) != SV_OK ||
        (st = rd_u32(&r, &m->queue_len)) != SV_OK ||
        (st = rd_u32(&r, &m->queue_max)) != SV_OK ||
        (st = rd_u64(&r, &m->locked_since)) != SV_OK ||
        (st = rd_u64(&r, &m->shares_active)) != SV_OK ||
        (st = rd_u64(&r, &m->shares_pending)) != SV_OK ||
        (st = rd_u64(&r, &m->stores)) != SV_OK ||
        (st = rd_u64(&r, &m->decrypts)) != SV_OK ||
        (st = rd_u64(&r, &m->refusals)) != SV_OK ||
        (st = rd_u64(&r, &m->uptime)) != SV_OK ||
        (st = rd_ext_end(&r)) != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/* ------------------------------------------------------------------------ */
/* reconcile                                                                 */

/*
 * A page's cursor, as RECON_LIST and RECON_SCAN ask for one: u64 after_id
 * (ids greater than this; 0: from the start) u16 limit (1..1000).
 */
static int
cursor_ok(uint64_t after_id, unsigned limit)
{
    return limit >= 1 && limit <= SV_WIRE_MAX_LIST && id_ok(after_id, 1);
}

static void
put_cursor(sv_buf *out, uint64_t after_id, uint16_t limit)
{
    sv_buf_put_u64(out, after_id);
    sv_buf_put_u16(out, limit);
}

static sv_status
rd_cursor(sv_rd *r, uint64_t *after_id, uint16_t *limit)
{
    unsigned n = 0;
    sv_status st;

    if ((st = rd_id0(r, after_id)) != SV_OK ||
        (st = rd_count16(r, 1, SV_WIRE_MAX_LIST, &n)) != SV_OK)
        return st;
    *limit = (uint16_t)n;
    return SV_OK;
}

/* 1 when a page of n entries (e: has them) with its flag more is sound:
 * more = 0 when n = 0. */
static int
listing_ok(uint8_t more, unsigned n, int has_e)
{
    return more <= 1 && n <= SV_WIRE_MAX_LIST && (n == 0 || has_e) &&
           (n > 0 || !more);
}

/*
 * A share-listing entry, the part RECON_LIST_OK and RECON_SCAN_OK share:
 * u64 id, uuid[16], str8 field, u8 state (1|2), u64 created.  prev is the
 * id of the entry before it (0 for the first): ids are non-zero and
 * strictly increasing.
 */
static sv_status
share_entry_len(uint64_t prev, uint64_t id, const char *name, uint8_t state,
                size_t *len)
{
    size_t l;

    if (!id_ok(id, 0) || id <= prev || (l = field_name_len(name)) == 0 ||
        (state != SV_SHARE_ACTIVE && state != SV_SHARE_PENDING))
        return SV_ERR_INVAL;
    *len = 8 + SV_UUID_LEN + 1 + l + 1 + 8;
    return SV_OK;
}

static void
put_share_entry(sv_buf *out, uint64_t id, const uint8_t uuid[SV_UUID_LEN],
                const char *name, uint8_t state, uint64_t created)
{
    sv_buf_put_u64(out, id);
    sv_buf_put(out, uuid, SV_UUID_LEN);
    put_str8(out, name);
    sv_buf_put_u8(out, state);
    sv_buf_put_u64(out, created);
}

static sv_status
rd_share_entry(sv_rd *r, uint64_t prev, uint64_t *id, uint8_t uuid[SV_UUID_LEN],
               char name[SV_FIELD_MAX + 1], uint8_t *state, uint64_t *created)
{
    sv_status st;

    if ((st = rd_id(r, id)) != SV_OK)
        return st;
    if (*id <= prev)
        return SV_ERR_WIRE_MALFORMED;
    if ((st = rd_copy(r, uuid, SV_UUID_LEN)) != SV_OK ||
        (st = rd_field_name(r, name)) != SV_OK ||
        (st = rd_u8(r, state)) != SV_OK)
        return st;
    if (*state != SV_SHARE_ACTIVE && *state != SV_SHARE_PENDING)
        return SV_ERR_WIRE_MALFORMED;
    return rd_u64(r, created);
}

/*
 * A listing's u16 n (0..1000) after its flag more: more = 0 when n = 0, and
 * the bytes of n entries of at least entry_min each must be there before
 * anything is allocated for them.
 */
static sv_status
rd_listing_count(sv_rd *r, uint8_t more, size_t entry_min, unsigned *n)
{
    sv_status st;

    if ((st = rd_count16(r, 0, SV_WIRE_MAX_LIST, n)) != SV_OK)
        return st;
    if (*n == 0 && more)
        return SV_ERR_WIRE_MALFORMED;
    if (r->left / entry_min < *n)
        return SV_ERR_WIRE_TRUNCATED;
    return SV_OK;
}

#define RECON_LIST_BODY_LEN (4 + 8 + 2 + EXT_EMPTY_LEN)

/* body: u32 grace_s u64 after_id u16 limit (1..1000) ext */
sv_status
sv_recon_list_req_encode(sv_buf *out, uint32_t reqid, const sv_recon_list_req *m)
{
    size_t start = 0;
    sv_status st;

    if (out == NULL || m == NULL || !cursor_ok(m->after_id, m->limit))
        return SV_ERR_INVAL;
    if ((st = frame_begin(out, SV_MSG_RECON_LIST, reqid, RECON_LIST_BODY_LEN,
                          &start)) != SV_OK)
        return st;
    sv_buf_put_u32(out, m->grace_s);
    put_cursor(out, m->after_id, m->limit);
    return frame_end(out, start, RECON_LIST_BODY_LEN);
}

sv_status
sv_recon_list_req_decode(const uint8_t *body, size_t len, sv_recon_list_req *m)
{
    sv_rd r;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_u32(&r, &m->grace_s)) != SV_OK ||
        (st = rd_cursor(&r, &m->after_id, &m->limit)) != SV_OK ||
        (st = rd_ext_end(&r)) != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/*
 * body: u8 more (0|1) u16 n (0..1000)
 *       {u64 id, uuid[16], str8 field, u8 state (1|2), u64 created}*n ext
 * ids non-zero and strictly increasing; more = 0 when n = 0.
 */
sv_status
sv_recon_list_resp_encode(sv_buf *out, uint32_t reqid, const sv_recon_list_resp *m)
{
    size_t body, start = 0, l;
    unsigned i;
    sv_status st;

    if (out == NULL || m == NULL || !listing_ok(m->more, m->n, m->e != NULL))
        return SV_ERR_INVAL;
    body = 1 + 2 + EXT_EMPTY_LEN;
    for (i = 0; i < m->n; i++) {
        const sv_recon_entry *e = &m->e[i];

        if (share_entry_len(i > 0 ? m->e[i - 1].id : 0, e->id, e->name,
                            e->state, &l) != SV_OK)
            return SV_ERR_INVAL;
        body += l;
    }
    if ((st = frame_begin(out, SV_MSG_RECON_LIST_OK, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put_u8(out, m->more);
    sv_buf_put_u16(out, (uint16_t)m->n);
    for (i = 0; i < m->n; i++) {
        const sv_recon_entry *e = &m->e[i];

        put_share_entry(out, e->id, e->uuid, e->name, e->state, e->created);
    }
    return frame_end(out, start, body);
}

sv_status
sv_recon_list_resp_decode(const uint8_t *body, size_t len, sv_recon_list_resp *m)
{
    sv_rd r;
    unsigned i;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_flag(&r, &m->more)) != SV_OK ||
        (st = rd_listing_count(&r, m->more, RECON_ENTRY_MIN, &m->n)) != SV_OK)
        goto out;
    if (m->n > 0 && (m->e = calloc(m->n, sizeof(*m->e))) == NULL) {
        st = SV_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < m->n; i++) {
        sv_recon_entry *e = &m->e[i];

        if ((st = rd_share_entry(&r, i > 0 ? m->e[i - 1].id : 0, &e->id,
                                 e->uuid, e->name, &e->state,
                                 &e->created)) != SV_OK)
            goto out;
    }
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        sv_recon_list_resp_free(m);
    return st;
}

void
sv_recon_list_resp_free(sv_recon_list_resp *m)
{
    if (m == NULL)
        return;
    free(m->e);
    memset(m, 0, sizeof(*m));
}

/*
 * body: u32 grace_s u16 n (1..1000) {u64 id, uuid[16], str8 field}*n ext
 * ids non-zero and strictly increasing.
 */
sv_status
sv_recon_delete_req_encode(sv_buf *out, uint32_t reqid, const sv_recon_delete_req *m)
{
    size_t body, start = 0, l;
    unsigned i;
    sv_status st;

    if (out == NULL || m == NULL || m->n < 1 || m->n > SV_WIRE_MAX_LIST ||
        m->e == NULL)
        return SV_ERR_INVAL;
    body = 4 + 2 + EXT_EMPTY_LEN;
    for (i = 0; i < m->n; i++) {
        const sv_recon_ref *e = &m->e[i];

        if (!id_ok(e->id, 0) || (i > 0 && e->id <= m->e[i - 1].id) ||
            (l = field_name_len(e->name)) == 0)
            return SV_ERR_INVAL;
        body += 8 + SV_UUID_LEN + 1 + l;
    }
    if ((st = frame_begin(out, SV_MSG_RECON_DELETE, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put_u32(out, m->grace_s);
    sv_buf_put_u16(out, (uint16_t)m->n);
    for (i = 0; i < m->n; i++) {
        sv_buf_put_u64(out, m->e[i].id);
        sv_buf_put(out, m->e[i].uuid, SV_UUID_LEN);
        put_str8(out, m->e[i].name);
    }
    return frame_end(out, start, body);
}

sv_status
sv_recon_delete_req_decode(const uint8_t *body, size_t len, sv_recon_delete_req *m)
{
    sv_rd r;
    unsigned i;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_u32(&r, &m->grace_s)) != SV_OK ||
        (st = rd_count16(&r, 1, SV_WIRE_MAX_LIST, &m->n)) != SV_OK)
        goto out;
    if (r.left / RECON_REF_MIN < m->n) {
        st = SV_ERR_WIRE_TRUNCATED;
        goto out;
    }
    if ((m->e = calloc(m->n, sizeof(*m->e))) == NULL) {
        st = SV_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < m->n; i++) {
        sv_recon_ref *e = &m->e[i];

        if ((st = rd_id(&r, &e->id)) != SV_OK)
            goto out;
        if (i > 0 && e->id <= m->e[i - 1].id) {
            st = SV_ERR_WIRE_MALFORMED;
            goto out;
        }
        if ((st = rd_copy(&r, e->uuid, SV_UUID_LEN)) != SV_OK ||
            (st = rd_field_name(&r, e->name)) != SV_OK)
            goto out;
    }
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        sv_recon_delete_req_free(m);
    return st;
}

void
sv_recon_delete_req_free(sv_recon_delete_req *m)
{
    if (m == NULL)
        return;
    free(m->e);
    memset(m, 0, sizeof(*m));
}

/* body: u16 n (0..1000) ext */
sv_status
sv_recon_delete_resp_encode(sv_buf *out, uint32_t reqid, const sv_recon_delete_resp *m)
{
    size_t body = 2 + EXT_EMPTY_LEN, start = 0;
    sv_status st;

    if (out == NULL || m == NULL || m->n > SV_WIRE_MAX_LIST)
        return SV_ERR_INVAL;
    if ((st = frame_begin(out, SV_MSG_RECON_DELETE_OK, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put_u16(out, (uint16_t)m->n);
    return frame_end(out, start, body);
}

sv_status
sv_recon_delete_resp_decode(const uint8_t *body, size_t len, sv_recon_delete_resp *m)
{
    sv_rd r;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_count16(&r, 0, SV_WIRE_MAX_LIST, &m->n)) != SV_OK ||
        (st = rd_ext_end(&r)) != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/* ------------------------------------------------------------------------ */
/* RECON_SCAN: every share, retired ones included                           */

#define RECON_SCAN_BODY_LEN (8 + 2 + EXT_EMPTY_LEN)

/* body: u64 after_id u16 limit (1..1000) ext */
sv_status
sv_recon_scan_req_encode(sv_buf *out, uint32_t reqid, const sv_recon_scan_req *m)
{
    size_t start = 0;
    sv_status st;

    if (out == NULL || m == NULL || !cursor_ok(m->after_id, m->limit))
        return SV_ERR_INVAL;
    if ((st = frame_begin(out, SV_MSG_RECON_SCAN, reqid, RECON_SCAN_BODY_LEN,
                          &start)) != SV_OK)
        return st;
    put_cursor(out, m->after_id, m->limit);
    return frame_end(out, start, RECON_SCAN_BODY_LEN);
}

sv_status
sv_recon_scan_req_decode(const uint8_t *body, size_t len, sv_recon_scan_req *m)
{
    sv_rd r;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_cursor(&r, &m->after_id, &m->limit)) != SV_OK ||
        (st = rd_ext_end(&r)) != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/*
 * body: u8 more (0|1) u32 min_grace_s u64 total u16 n (0..1000)
 *       {u64 id, uuid[16], str8 field, u8 state (1|2), u64 created,
 *        u64 retired}*n ext
 * ids non-zero and strictly increasing; more = 0 when n = 0.
 */
sv_status
sv_recon_scan_resp_encode(sv_buf *out, uint32_t reqid, const sv_recon_scan_resp *m)
{
    size_t body, start = 0, l;
    unsigned i;
    sv_status st;

    if (out == NULL || m == NULL || !listing_ok(m->more, m->n, m->e != NULL))
        return SV_ERR_INVAL;
    body = 1 + 4 + 8 + 2 + EXT_EMPTY_LEN;
    for (i = 0; i < m->n; i++) {
        const sv_scan_entry *e = &m->e[i];

        if (share_entry_len(i > 0 ? m->e[i - 1].id : 0, e->id, e->name,
                            e->state, &l) != SV_OK)
            return SV_ERR_INVAL;
        body += l + 8;
    }
    if ((st = frame_begin(out, SV_MSG_RECON_SCAN_OK, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put_u8(out, m->more);
    sv_buf_put_u32(out, m->min_grace_s);
    sv_buf_put_u64(out, m->total);
    sv_buf_put_u16(out, (uint16_t)m->n);
    for (i = 0; i < m->n; i++) {
        const sv_scan_entry *e = &m->e[i];

        put_share_entry(out, e->id, e->uuid, e->name, e->state, e->created);
        sv_buf_put_u64(out, e->retired);
    }
    return frame_end(out, start, body);
}

sv_status
sv_recon_scan_resp_decode(const uint8_t *body, size_t len, sv_recon_scan_resp *m)
{
    sv_rd r;
    unsigned i;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_flag(&r, &m->more)) != SV_OK ||
        (st = rd_u32(&r, &m->min_grace_s)) != SV_OK ||
        (st = rd_u64(&r, &m->total)) != SV_OK ||
        (st = rd_listing_count(&r, m->more, SCAN_ENTRY_MIN, &m->n)) != SV_OK)
        goto out;
    if (m->n > 0 && (m->e = calloc(m->n, sizeof(*m->e))) == NULL) {
        st = SV_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < m->n; i++) {
        sv_scan_entry *e = &m->e[i];

        if ((st = rd_share_entry(&r, i > 0 ? m->e[i - 1].id : 0, &e->id,
                                 e->uuid, e->name, &e->state,
                                 &e->created)) != SV_OK ||
            (st = rd_u64(&r, &e->retired)) != SV_OK)
            goto out;
    }
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        sv_recon_scan_resp_free(m);
    return st;
}

void
sv_recon_scan_resp_free(sv_recon_scan_resp *m)
{
    if (m == NULL)
        return;
    free(m->e);
    memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------------ */
/* CONFIRM                                                                   */

/* body: uuid16 str8 actor u8 n (1..32) n x {id share_id str8 name key pub} ext */
sv_status
sv_confirm_req_encode(sv_buf *out, uint32_t reqid, const sv_confirm_req *m)
{
    uint64_t ids[SV_WIRE_MAX_FIELDS];
    size_t body, start = 0, l, al;
    unsigned i;
    sv_status st;

    if (out == NULL || m == NULL)
        return SV_ERR_INVAL;
    al = bounded_len(m->actor, SV_WIRE_MAX_ACTOR + 1);
    if (!sv_actor_name_valid(m->actor, al) || m->n < 1 || m->n > SV_WIRE_MAX_FIELDS)
        return SV_ERR_INVAL;
    body = SV_UUID_LEN + 1 + al + 1 + EXT_EMPTY_LEN;
    for (i = 0; i < m->n; i++) {
        const sv_confirm_item *f = &m->f[i];

        if ((l = item_head_len(ids, i, f->share_id, f->name, m->f, sizeof(m->f[0]),
                               offsetof(sv_confirm_item, name))) == 0 || f->pub == NULL)
            return SV_ERR_INVAL;
        body += 8 + 1 + l + SV_X25519_LEN;
    }
    if ((st = frame_begin(out, SV_MSG_CONFIRM, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put(out, m->uuid, SV_UUID_LEN);
    put_str8(out, m->actor);
    sv_buf_put_u8(out, (uint8_t)m->n);
    for (i = 0; i < m->n; i++) {
        sv_buf_put_u64(out, m->f[i].share_id);
        put_str8(out, m->f[i].name);
        sv_buf_put(out, m->f[i].pub, SV_X25519_LEN);
    }
    return frame_end(out, start, body);
}

sv_status
sv_confirm_req_decode(const uint8_t *body, size_t len, sv_confirm_req *m)
{
    uint64_t ids[SV_WIRE_MAX_FIELDS];
    sv_rd r;
    unsigned i;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_copy(&r, m->uuid, SV_UUID_LEN)) != SV_OK ||
        (st = rd_actor(&r, m->actor)) != SV_OK ||
        (st = rd_count8(&r, 1, SV_WIRE_MAX_FIELDS, &m->n)) != SV_OK)
        goto out;
    for (i = 0; i < m->n; i++) {
        sv_confirm_item *f = &m->f[i];

        if ((st = rd_item_head(&r, ids, i, &f->share_id, f->name, m->f, sizeof(m->f[0]),
                               offsetof(sv_confirm_item, name))) != SV_OK ||
            (st = rd_bytes(&r, SV_X25519_LEN, &f->pub)) != SV_OK)
            goto out;
    }
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/* body: u8 n (1..32) n x u8 ok (0 or 1) ext */
sv_status
sv_confirm_resp_encode(sv_buf *out, uint32_t reqid, const sv_confirm_resp *m)
{
    size_t body, start = 0;
    unsigned i;
    sv_status st;

    if (out == NULL || m == NULL || m->n < 1 || m->n > SV_WIRE_MAX_FIELDS)
        return SV_ERR_INVAL;
    for (i = 0; i < m->n; i++)
        if (m->ok[i] > 1)
            return SV_ERR_INVAL;
    body = 1 + (size_t)m->n + EXT_EMPTY_LEN;
    if ((st = frame_begin(out, SV_MSG_CONFIRM_OK, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put_u8(out, (uint8_t)m->n);
    for (i = 0; i < m->n; i++)
        sv_buf_put_u8(out, m->ok[i]);
    return frame_end(out, start, body);
}

sv_status
sv_confirm_resp_decode(const uint8_t *body, size_t len, sv_confirm_resp *m)
{
    sv_rd r;
    unsigned i;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_count8(&r, 1, SV_WIRE_MAX_FIELDS, &m->n)) != SV_OK)
        goto out;
    for (i = 0; i < m->n; i++)
        if ((st = rd_flag(&r, &m->ok[i])) != SV_OK)
            goto out;
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}

/* ------------------------------------------------------------------------ */
/* ERROR                                                                     */

/* body: u16 code (a known SV_WERR_*) u32 retry_ms str8 msg (0..200 printable
 * ASCII) ext */
sv_status
sv_error_encode(sv_buf *out, uint32_t reqid, const sv_error_msg *m)
{
    size_t body, start = 0, l;
    sv_status st;

    if (out == NULL || m == NULL || !error_code_known(m->code))
        return SV_ERR_INVAL;
    l = bounded_len(m->msg, SV_WIRE_MAX_MSG + 1);
    if (l > SV_WIRE_MAX_MSG || !msg_text_valid(m->msg, l))
        return SV_ERR_INVAL;
    body = 2 + 4 + 1 + l + EXT_EMPTY_LEN;
    if ((st = frame_begin(out, SV_MSG_ERROR, reqid, body, &start)) != SV_OK)
        return st;
    sv_buf_put_u16(out, m->code);
    sv_buf_put_u32(out, m->retry_ms);
    put_str8(out, m->msg);
    return frame_end(out, start, body);
}

sv_status
sv_error_decode(const uint8_t *body, size_t len, sv_error_msg *m)
{
    const uint8_t *p;
    uint8_t l;
    sv_rd r;
    sv_status st;

    memset(m, 0, sizeof(*m));
    if ((st = rd_init(&r, body, len)) != SV_OK ||
        (st = rd_u16(&r, &m->code)) != SV_OK)
        goto out;
    if (!error_code_known(m->code)) {
        st = SV_ERR_WIRE_MALFORMED;
        goto out;
    }
    if ((st = rd_u32(&r, &m->retry_ms)) != SV_OK ||
        (st = rd_u8(&r, &l)) != SV_OK)
        goto out;
    if (l > SV_WIRE_MAX_MSG) {
        st = SV_ERR_WIRE_MALFORMED;
        goto out;
    }
    if ((st = rd_bytes(&r, l, &p)) != SV_OK)
        goto out;
    if (!msg_text_valid((const char *)p, l)) {
        st = SV_ERR_WIRE_MALFORMED;
        goto out;
    }
    memcpy(m->msg, p, l);
    m->msg[l] = '\0';
    st = rd_ext_end(&r);
out:
    if (st != SV_OK)
        memset(m, 0, sizeof(*m));
    return st;
}
