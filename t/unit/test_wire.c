/*
 * test_wire.c - unit tests for the wire protocol (lib/sv_wire.c), against
 * docs/protocol.md: round trips of every message, every class of refusal,
 * extension handling, and encoders that refuse what decoders would refuse.
 *
 * Bodies are always decoded from an exactly sized heap copy, so a read past
 * the end shows up under valgrind or ASan.
 */
#include "config.h"

#include <check.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "sv_buf.h"
#include "sv_wire.h"
#include "wire_samples.h"

static const uint8_t UUID[SV_UUID_LEN] = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x46, 0x77,
    0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
static uint8_t K1[32], K2[32], K3[32], K4[32], ENC[32], CT[SV_DATUM_MAX + SV_HPKE_TAG_LEN];

static void
setup(void)
{
    size_t i;

    for (i = 0; i < 32; i++) {
        K1[i] = (uint8_t)(0x10 + i);
        K2[i] = (uint8_t)(0x50 + i);
        K3[i] = (uint8_t)(0x90 + i);
        K4[i] = (uint8_t)(0xd0 + i);
        ENC[i] = (uint8_t)(0xe0 ^ i);
    }
    for (i = 0; i < sizeof(CT); i++)
        CT[i] = (uint8_t)(i * 11);
}

/* ---- helpers -------------------------------------------------------------- */

static void
set_str(char *dst, size_t cap, const char *src)
{
    size_t l = strlen(src);

    ck_assert_uint_lt(l, cap);
    memcpy(dst, src, l + 1);
}

/* Decode body[0..len) as `type` from an exactly sized heap copy. */
static sv_status
decode_copy(uint8_t type, const uint8_t *body, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    sv_status st;

    ck_assert_ptr_nonnull(c);
    if (len)
        memcpy(c, body, len);
    st = wsample_decode(type, len ? c : NULL, len);
    free(c);
    return st;
}

/* sv_wire_frame on an exactly sized heap copy of buf[0..len). */
static sv_status
frame_copy(const uint8_t *buf, size_t len, sv_wire_hdr *h)
{
    uint8_t *c = malloc(len ? len : 1);
    const uint8_t *body;
    sv_status st;

    ck_assert_ptr_nonnull(c);
    if (len)
        memcpy(c, buf, len);
    st = sv_wire_frame(c, len, h, &body);
    if (st == SV_OK)
        ck_assert_ptr_eq(body, c + SV_WIRE_HDR_LEN);
    else
        ck_assert_ptr_null(body);
    free(c);
    return st;
}

/* Check that out holds exactly one frame of `type`; return its body. */
static const uint8_t *
one_frame(const sv_buf *out, uint8_t type, uint32_t reqid, size_t *len)
{
    sv_wire_hdr h;
    const uint8_t *body = NULL;

    ck_assert_int_eq(sv_buf_status(out), SV_OK);
    ck_assert_int_eq(sv_wire_frame(out->data, out->len, &h, &body), SV_OK);
    ck_assert_uint_eq(h.version, SV_WIRE_VERSION);
    ck_assert_uint_eq(h.type, type);
    ck_assert_uint_eq(h.reqid, reqid);
    ck_assert_uint_eq(h.body_len + SV_WIRE_HDR_LEN, out->len);
    *len = h.body_len;
    return body;
}

/* A body builder for hand-made (often malformed) messages. */
static sv_buf bb;

static void
bb_start(void)
{
    sv_buf_init(&bb, 0, 0);
}

static void
bb_str8(const char *s)
{
    sv_buf_put_u8(&bb, (uint8_t)strlen(s));
    sv_buf_put(&bb, s, strlen(s));
}

static void
bb_zero(size_t n)
{
    while (n-- > 0)
        sv_buf_put_u8(&bb, 0);
}

/* Decode what bb holds as `type`, then free bb. */
static sv_status
bb_decode(uint8_t type)
{
    sv_status st;

    ck_assert_int_eq(sv_buf_status(&bb), SV_OK);
    st = decode_copy(type, bb.data, bb.len);
    sv_buf_free(&bb);
    return st;
}

/* One STORE field (name given raw: length byte and bytes). */
static void
bb_store_field(const char *name, size_t len)
{
    sv_buf_put_u8(&bb, (uint8_t)len);
    sv_buf_put(&bb, name, len);
    sv_buf_put(&bb, K1, 32);
    sv_buf_put(&bb, K2, 32);
}

/* One DECRYPT field. */
static void
bb_decrypt_field(uint64_t id, const char *name, uint32_t ct_len, uint8_t rotate)
{
    sv_buf_put_u64(&bb, id);
    bb_str8(name);
    sv_buf_put(&bb, K1, 32);
    sv_buf_put(&bb, ENC, 32);
    sv_buf_put_u32(&bb, ct_len);
    sv_buf_put(&bb, CT, ct_len);
    sv_buf_put_u8(&bb, rotate);
    if (rotate == 1) {
        sv_buf_put(&bb, K3, 32);
        sv_buf_put(&bb, K4, 32);
    }
}

static void
bb_decrypt_head(const char *actor, unsigned n)
{
    sv_buf_put(&bb, UUID, 16);
    bb_str8(actor);
    sv_buf_put_u32(&bb, 1000);
    sv_buf_put_u8(&bb, (uint8_t)n);
}

/* Valid STORE / DECRYPT / ... requests used by several tests. */
static void
make_store(sv_store_req *m, unsigned n)
{
    unsigned i;

    memset(m, 0, sizeof(*m));
    memcpy(m->uuid, UUID, 16);
    m->n = n;
    for (i = 0; i < n; i++) {
        snprintf(m->f[i].name, sizeof(m->f[i].name), "field_%u", i);
        m->f[i].pub = K1;
        m->f[i].key2b = K2;
    }
}

static void
make_decrypt(sv_decrypt_req *m, unsigned n, uint32_t ct_len)
{
    unsigned i;

    memset(m, 0, sizeof(*m));
    memcpy(m->uuid, UUID, 16);
    set_str(m->actor, sizeof(m->actor), "carol");
    m->wait_ms = 2500;
    m->n = n;
    for (i = 0; i < n; i++) {
        sv_decrypt_field *f = &m->f[i];

        f->share_id = 500 + i;
        snprintf(f->name, sizeof(f->name), "f%u", i);
        f->key2a = K1;
        f->enc = ENC;
        f->ct = CT;
        f->ct_len = ct_len;
        f->rotate = (int)(i % 2);
        if (f->rotate) {
            f->new_pub = K3;
            f->new_key2b = K4;
        }
    }
}

/* ---- round trips ------------------------------------------------------------ */

START_TEST(test_rt_store)
{
    sv_store_req m, d;
    sv_buf out;
    const uint8_t *body;
    size_t len;
    unsigned i;

    make_store(&m, 3);
    set_str(m.f[2].name, sizeof(m.f[2].name),
            "A123456789012345678901234567890123456789012345678901234567890_-z"); /* 64 */
    m.f[1].pub = K3;
    m.f[1].key2b = K4;
    sv_buf_init(&out, 1, 0);
    ck_assert_int_eq(sv_store_req_encode(&out, 42, &m), SV_OK);
    body = one_frame(&out, SV_MSG_STORE, 42, &len);
    ck_assert_int_eq(sv_store_req_decode(body, len, &d), SV_OK);
    ck_assert_mem_eq(d.uuid, UUID, 16);
    ck_assert_uint_eq(d.n, 3);
    for (i = 0; i < 3; i++) {
        ck_assert_str_eq(d.f[i].name, m.f[i].name);
        ck_assert_mem_eq(d.f[i].pub, m.f[i].pub, 32);
        ck_assert_mem_eq(d.f[i].key2b, m.f[i].key2b, 32);
        /* zero copy: key material points into the body */
        ck_assert(d.f[i].key2b > body && d.f[i].key2b + 32 <= body + len);
    }
    sv_buf_free(&out);
}
END_TEST

START_TEST(test_rt_store_resp)
{
    sv_store_resp m, d;
    sv_buf out;
    const uint8_t *body;
    size_t len;
    unsigned i;

    memset(&m, 0, sizeof(m));
    m.n = SV_WIRE_MAX_FIELDS;
    for (i = 0; i < m.n; i++)
        m.share_id[i] = SV_WIRE_MAX_ID - i; /* the largest ids there are */
    sv_buf_init(&out, 0, 0);
    ck_assert_int_eq(sv_store_resp_encode(&out, 0xffffffffu, &m), SV_OK);
    body = one_frame(&out, SV_MSG_STORE_OK, 0xffffffffu, &len);
    ck_assert_uint_eq(len, 1 + 32 * 8 + 2);
    ck_assert_int_eq(sv_store_resp_decode(body, len, &d), SV_OK);
    ck_assert_uint_eq(d.n, m.n);
    for (i = 0; i < m.n; i++)
        ck_assert(d.share_id[i] == m.share_id[i]);
    sv_buf_free(&out);
}
END_TEST

START_TEST(test_rt_decrypt)
{
    sv_decrypt_req m, d;
    sv_buf out;
    const uint8_t *body;
    size_t len;
    unsigned i;

    make_decrypt(&m, 4, 100);
    set_str(m.actor, sizeof(m.actor), "dr.jane-doe_2@clinic.example");
    m.f[2].ct_len = SV_HPKE_TAG_LEN;                 /* empty datum */
    m.f[3].ct_len = SV_DATUM_MAX + SV_HPKE_TAG_LEN; /* largest datum */
    sv_buf_init(&out, 1, 0);
    ck_assert_int_eq(sv_decrypt_req_encode(&out, 7, &m), SV_OK);
    body = one_frame(&out, SV_MSG_DECRYPT, 7, &len);
    ck_assert_int_eq(sv_decrypt_req_decode(body, len, &d), SV_OK);
    ck_assert_mem_eq(d.uuid, UUID, 16);
    ck_assert_str_eq(d.actor, m.actor);
    ck_assert_uint_eq(d.wait_ms, 2500);
    ck_assert_uint_eq(d.n, 4);
    for (i = 0; i < 4; i++) {
        ck_assert(d.f[i].share_id == m.f[i].share_id);
        ck_assert_str_eq(d.f[i].name, m.f[i].name);
        ck_assert_mem_eq(d.f[i].key2a, K1, 32);
        ck_assert_mem_eq(d.f[i].enc, ENC, 32);
        ck_assert_uint_eq(d.f[i].ct_len, m.f[i].ct_len);
        ck_assert_mem_eq(d.f[i].ct, CT, m.f[i].ct_len);
        ck_assert_int_eq(d.f[i].rotate, m.f[i].rotate);
        if (d.f[i].rotate) {
            ck_assert_mem_eq(d.f[i].new_pub, K3, 32);
            ck_assert_mem_eq(d.f[i].new_key2b, K4, 32);
        } else {
            ck_assert_ptr_null(d.f[i].new_pub);
            ck_assert_ptr_null(d.f[i].new_key2b);
        }
    }
    sv_buf_free(&out);
}
END_TEST

/* The size functions a client splits a record by add up to what the
 * encoder writes, with and without rotation, for short and long actors. */
START_TEST(test_decrypt_sizes)
{
    static const char *const actors[] = { "a", "dr.jane-doe_2@clinic.example" };
    sv_decrypt_req m;
    sv_buf out;
    size_t want;
    unsigned i, a, rot;

    for (a = 0; a < 2; a++)
        for (rot = 0; rot < 2; rot++) {
            make_decrypt(&m, 5, 100);
            set_str(m.actor, sizeof(m.actor), actors[a]);
            m.f[1].ct_len = SV_HPKE_TAG_LEN;
            m.f[4].ct_len = SV_DATUM_MAX + SV_HPKE_TAG_LEN;
            want = sv_decrypt_req_size_fixed(strlen(actors[a]));
            for (i = 0; i < m.n; i++) {
                m.f[i].rotate = (int)rot;
                m.f[i].new_pub = rot ? K3 : NULL;
                m.f[i].new_key2b = rot ? K4 : NULL;
                want += sv_decrypt_req_size_field(strlen(m.f[i].name), m.f[i].ct_len,
                                                  m.f[i].rotate);
            }
            sv_buf_init(&out, 1, 0);
            ck_assert_int_eq(sv_decrypt_req_encode(&out, 9, &m), SV_OK);
            ck_assert_uint_eq(out.len, SV_WIRE_HDR_LEN + want);
            ck_assert_uint_eq(sv_wire_frame_type(out.data, out.len), SV_MSG_DECRYPT);
            sv_buf_free(&out);
        }
    ck_assert(sv_decrypt_req_size_fixed(SV_WIRE_MAX_ACTOR) > sv_decrypt_req_size_fixed(1));
}
END_TEST

START_TEST(test_frame_type)
{
    uint8_t hdr[SV_WIRE_HDR_LEN] = { SV_WIRE_MAGIC0, SV_WIRE_MAGIC1, SV_WIRE_VERSION,
                                     SV_MSG_STATUS, 0, 0, 0, 1, 0, 0, 0, 0 };

    ck_assert_uint_eq(sv_wire_frame_type(hdr, sizeof(hdr)), SV_MSG_STATUS);
    ck_assert_uint_eq(sv_wire_frame_type(hdr, sizeof(hdr) - 1), 0);
    ck_assert_uint_eq(sv_wire_frame_type(NULL, 0), 0);
}
END_TEST

START_TEST(test_rt_decrypt_resp)
{
    sv_decrypt_resp m, d;
    sv_buf out;
    const uint8_t *body;
    size_t len;

    memset(&m, 0, sizeof(m));
    m.n = 3;
    m.f[0].pt = (const uint8_t *)"078-05-1120";
    m.f[0].pt_len = 11;
    m.f[0].new_share_id = 9;
    m.f[1].pt = NULL;
    m.f[1].pt_len = 0;
    m.f[1].new_share_id = 0;
    m.f[2].pt = CT;
    m.f[2].pt_len = SV_DATUM_MAX;
    m.f[2].new_share_id = 0; /* 0 may repeat: not rotated */
    sv_buf_init(&out, 1, 0);
    ck_assert_int_eq(sv_decrypt_resp_encode(&out, 1, &m), SV_OK);
    body = one_frame(&out, SV_MSG_DECRYPT_OK, 1, &len);
    ck_assert_int_eq(sv_decrypt_resp_decode(body, len, &d), SV_OK);
    ck_assert_uint_eq(d.n, 3);
    ck_assert_uint_eq(d.f[0].pt_len, 11);
    ck_assert_mem_eq(d.f[0].pt, "078-05-1120", 11);
    ck_assert(d.f[0].new_share_id == 9);
    ck_assert_uint_eq(d.f[1].pt_len, 0);
    ck_assert(d.f[1].new_share_id == 0);
    ck_assert_uint_eq(d.f[2].pt_len, SV_DATUM_MAX);
    ck_assert_mem_eq(d.f[2].pt, CT, SV_DATUM_MAX);
    sv_buf_free(&out);
}
END_TEST

START_TEST(test_rt_release)
{
    sv_release_req m, d;
    sv_release_resp r, rd;
    sv_buf out;
    const uint8_t *body;
    size_t len;

    memset(&m, 0, sizeof(m));
    memcpy(m.uuid, UUID, 16);
    m.n = 3;
    set_str(m.f[0].name, sizeof(m.f[0].name), "a");
    m.f[0].drop_id = 10;
    m.f[0].keep_id = 20;
    set_str(m.f[1].name, sizeof(m.f[1].name), "b");
    m.f[1].drop_id = 11;
    set_str(m.f[2].name, sizeof(m.f[2].name), "c");
    m.f[2].keep_id = 21;
    sv_buf_init(&out, 0, 0);
    ck_assert_int_eq(sv_release_req_encode(&out, 3, &m), SV_OK);
    body = one_frame(&out, SV_MSG_RELEASE, 3, &len);
    ck_assert_int_eq(sv_release_req_decode(body, len, &d), SV_OK);
    ck_assert_mem_eq(d.uuid, UUID, 16);
    ck_assert_uint_eq(d.n, 3);
    ck_assert_str_eq(d.f[1].name, "b");
    ck_assert(d.f[0].drop_id == 10 && d.f[0].keep_id == 20);
    ck_assert(d.f[1].drop_id == 11 && d.f[1].keep_id == 0);
    ck_assert(d.f[2].drop_id == 0 && d.f[2].keep_id == 21);

    sv_buf_reset(&out);
    r.n = 0; /* nothing processed is a valid answer */
    ck_assert_int_eq(sv_release_resp_encode(&out, 3, &r), SV_OK);
    body = one_frame(&out, SV_MSG_RELEASE_OK, 3, &len);
    ck_assert_int_eq(sv_release_resp_decode(body, len, &rd), SV_OK);
    ck_assert_uint_eq(rd.n, 0);
    sv_buf_reset(&out);
    r.n = SV_WIRE_MAX_FIELDS;
    ck_assert_int_eq(sv_release_resp_encode(&out, 3, &r), SV_OK);
    body = one_frame(&out, SV_MSG_RELEASE_OK, 3, &len);
    ck_assert_int_eq(sv_release_resp_decode(body, len, &rd), SV_OK);
    ck_assert_uint_eq(rd.n, SV_WIRE_MAX_FIELDS);
    sv_buf_free(&out);
}
END_TEST

START_TEST(test_rt_confirm)
{
    sv_confirm_req m, d;
    sv_confirm_resp r, rd;
    sv_buf out;
    const uint8_t *body;
    size_t len;
    unsigned i;

    memset(&m, 0, sizeof(m));
    memcpy(m.uuid, UUID, 16);
    set_str(m.actor, sizeof(m.actor), "uma.staff@example.org");
    m.n = SV_WIRE_MAX_FIELDS;
    for (i = 0; i < m.n; i++) {
        snprintf(m.f[i].name, sizeof(m.f[i].name), "f%02u", i);
        m.f[i].share_id = SV_WIRE_MAX_ID - i;
        m.f[i].pub = i % 2 ? K1 : K2;
    }
    sv_buf_init(&out, 0, 0);
    ck_assert_int_eq(sv_confirm_req_encode(&out, 9, &m), SV_OK);
    body = one_frame(&out, SV_MSG_CONFIRM, 9, &len);
    ck_assert_int_eq(sv_confirm_req_decode(body, len, &d), SV_OK);
    ck_assert_mem_eq(d.uuid, UUID, 16);
    ck_assert_str_eq(d.actor, "uma.staff@example.org");
    ck_assert_uint_eq(d.n, SV_WIRE_MAX_FIELDS);
    for (i = 0; i < d.n; i++) {
        ck_assert_str_eq(d.f[i].name, m.f[i].name);
        ck_assert(d.f[i].share_id == SV_WIRE_MAX_ID - i);
        ck_assert_mem_eq(d.f[i].pub, i % 2 ? K1 : K2, SV_X25519_LEN);
    }
    /* refused like the decoders refuse: a repeated id or name, id 0, no actor */
    m.f[1].share_id = m.f[0].share_id;
    ck_assert_int_eq(sv_confirm_req_encode(&out, 9, &m), SV_ERR_INVAL);
    m.f[1].share_id = 7;
    set_str(m.f[1].name, sizeof(m.f[1].name), m.f[0].name);
    ck_assert_int_eq(sv_confirm_req_encode(&out, 9, &m), SV_ERR_INVAL);
    set_str(m.f[1].name, sizeof(m.f[1].name), "other");
    m.f[2].share_id = 0;
    ck_assert_int_eq(sv_confirm_req_encode(&out, 9, &m), SV_ERR_INVAL);
    m.f[2].share_id = 8;
    m.actor[0] = '\0';
    ck_assert_int_eq(sv_confirm_req_encode(&out, 9, &m), SV_ERR_INVAL);

    sv_buf_reset(&out);
    memset(&r, 0, sizeof(r));
    r.n = 3;
    r.ok[0] = 1;
    r.ok[2] = 1;
    ck_assert_int_eq(sv_confirm_resp_encode(&out, 9, &r), SV_OK);
    body = one_frame(&out, SV_MSG_CONFIRM_OK, 9, &len);
    ck_assert_int_eq(sv_confirm_resp_decode(body, len, &rd), SV_OK);
    ck_assert_uint_eq(rd.n, 3);
    ck_assert(rd.ok[0] == 1 && rd.ok[1] == 0 && rd.ok[2] == 1);
    r.ok[1] = 2;
    ck_assert_int_eq(sv_confirm_resp_encode(&out, 9, &r), SV_ERR_INVAL);
    r.ok[1] = 0;
    r.n = 0;
    ck_assert_int_eq(sv_confirm_resp_encode(&out, 9, &r), SV_ERR_INVAL);
    sv_buf_free(&out);
}
END_TEST

START_TEST(test_rt_status)
{
    sv_status_resp m, d;
    sv_buf out;
    const uint8_t *body;
    size_t len;

    sv_buf_init(&out, 0, 0);
    ck_assert_int_eq(sv_status_req_encode(&out, 5), SV_OK);
    body = one_frame(&out, SV_MSG_STATUS, 5, &len);
    ck_assert_uint_eq(len, 2);
    ck_assert_int_eq(sv_status_req_decode(body, len), SV_OK);

    memset(&m, 0, sizeof(m));
    m.locked = 1;
    m.queue_len = 1;
    m.queue_max = 0xfffffffeu;
    m.locked_since = 2;
    m.shares_active = 3;
    m.shares_pending = 4;
    m.stores = 5;
    m.decrypts = 6;
    m.refusals = 7;
    m.uptime = UINT64_MAX;
    sv_buf_reset(&out);
    ck_assert_int_eq(sv_status_resp_encode(&out, 5, &m), SV_OK);
    body = one_frame(&out, SV_MSG_STATUS_OK, 5, &len);
    ck_assert_int_eq(sv_status_resp_decode(body, len, &d), SV_OK);
    ck_assert_mem_eq(&d, &m, sizeof(m)); /* both zeroed first, same padding */
    sv_buf_free(&out);
}
END_TEST

START_TEST(test_rt_recon)
{
    sv_recon_list_req l, ld;
    sv_recon_list_resp lr, lrd;
    sv_recon_delete_req dr, drd;
    sv_recon_delete_resp dp, dpd;
    sv_recon_entry *e;
    sv_recon_ref *r;
    sv_buf out;
    const uint8_t *body;
    size_t len;
    unsigned i;

    sv_buf_init(&out, 0, 0);
    l.grace_s = 86400;
    l.after_id = UINT64_C(1) << 40;
    l.limit = SV_WIRE_MAX_LIST;
    ck_assert_int_eq(sv_recon_list_req_encode(&out, 8, &l), SV_OK);
    body = one_frame(&out, SV_MSG_RECON_LIST, 8, &len);
    ck_assert_int_eq(sv_recon_list_req_decode(body, len, &ld), SV_OK);
    ck_assert_uint_eq(ld.grace_s, 86400);
    ck_assert(ld.after_id == l.after_id);
    ck_assert_uint_eq(ld.limit, SV_WIRE_MAX_LIST);

    /* a full page: SV_WIRE_MAX_LIST entries */
    e = calloc(SV_WIRE_MAX_LIST, sizeof(*e));
    ck_assert_ptr_nonnull(e);
    for (i = 0; i < SV_WIRE_MAX_LIST; i++) {
        e[i].id = 1 + 3 * (uint64_t)i;
        memcpy(e[i].uuid, UUID, 16);
        e[i].uuid[0] = (uint8_t)i;
        snprintf(e[i].name, sizeof(e[i].name), "n%u", i % 7);
        e[i].state = i % 3 ? SV_SHARE_ACTIVE : SV_SHARE_PENDING;
        e[i].created = 1700000000u + i;
    }
    lr.more = 1;
    lr.n = SV_WIRE_MAX_LIST;
    lr.e = e;
    sv_buf_reset(&out);
    ck_assert_int_eq(sv_recon_list_resp_encode(&out, 9, &lr), SV_OK);
    body = one_frame(&out, SV_MSG_RECON_LIST_OK, 9, &len);
    ck_assert_int_eq(sv_recon_list_resp_decode(body, len, &lrd), SV_OK);
    ck_assert_uint_eq(lrd.more, 1);
    ck_assert_uint_eq(lrd.n, SV_WIRE_MAX_LIST);
    for (i = 0; i < SV_WIRE_MAX_LIST; i++) {
        ck_assert(lrd.e[i].id == e[i].id);
        ck_assert_mem_eq(lrd.e[i].uuid, e[i].uuid, 16);
        ck_assert_str_eq(lrd.e[i].name, e[i].name);
        ck_assert_uint_eq(lrd.e[i].state, e[i].state);
        ck_assert(lrd.e[i].created == e[i].created);
    }
    sv_recon_list_resp_free(&lrd);
    ck_assert_ptr_null(lrd.e);
    ck_assert_uint_eq(lrd.n, 0);
    sv_recon_list_resp_free(&lrd); /* twice is harmless */

    r = calloc(SV_WIRE_MAX_LIST, sizeof(*r));
    ck_assert_ptr_nonnull(r);
    for (i = 0; i < SV_WIRE_MAX_LIST; i++) {
        r[i].id = e[i].id;
        memcpy(r[i].uuid, e[i].uuid, 16);
        memcpy(r[i].name, e[i].name, sizeof(r[i].name));
    }
    dr.grace_s = 60;
    dr.n = SV_WIRE_MAX_LIST;
    dr.e = r;
    sv_buf_reset(&out);
    ck_assert_int_eq(sv_recon_delete_req_encode(&out, 10, &dr), SV_OK);
    body = one_frame(&out, SV_MSG_RECON_DELETE, 10, &len);
    ck_assert_int_eq(sv_recon_delete_req_decode(body, len, &drd), SV_OK);
    ck_assert_uint_eq(drd.grace_s, 60);
    ck_assert_uint_eq(drd.n, SV_WIRE_MAX_LIST);
    for (i = 0; i < SV_WIRE_MAX_LIST; i++) {
        ck_assert(drd.e[i].id == r[i].id);
        ck_assert_mem_eq(drd.e[i].uuid, r[i].uuid, 16);
        ck_assert_str_eq(drd.e[i].name, r[i].name);
    }
    sv_recon_delete_req_free(&drd);
    ck_assert_ptr_null(drd.e);

    dp.n = 999;
    sv_buf_reset(&out);
    ck_assert_int_eq(sv_recon_delete_resp_encode(&out, 11, &dp), SV_OK);
    body = one_frame(&out, SV_MSG_RECON_DELETE_OK, 11, &len);
    ck_assert_int_eq(sv_recon_delete_resp_decode(body, len, &dpd), SV_OK);
    ck_assert_uint_eq(dpd.n, 999);

    free(e);
    free(r);
    sv_buf_free(&out);
}
END_TEST

START_TEST(test_rt_error)
{
    sv_error_msg m, d;
    sv_buf out;
    const uint8_t *body;
    size_t len;
    unsigned code;

    sv_buf_init(&out, 0, 0);
    for (code = SV_WERR_BAD_REQUEST; code <= SV_WERR_EXISTS; code++) {
        memset(&m, 0, sizeof(m));
        m.code = (uint16_t)code;
        m.retry_ms = code * 100;
        snprintf(m.msg, sizeof(m.msg), "%s (~!@#$%%^&*) ", sv_wire_error_name(m.code));
        sv_buf_reset(&out);
        ck_assert_int_eq(sv_error_encode(&out, code, &m), SV_OK);
        body = one_frame(&out, SV_MSG_ERROR, code, &len);
        ck_assert_int_eq(sv_error_decode(body, len, &d), SV_OK);
        ck_assert_uint_eq(d.code, code);
        ck_assert_uint_eq(d.retry_ms, code * 100);
        ck_assert_str_eq(d.msg, m.msg);
    }
    /* longest message */
    memset(m.msg, 'x', SV_WIRE_MAX_MSG);
    m.msg[SV_WIRE_MAX_MSG] = '\0';
    sv_buf_reset(&out);
    ck_assert_int_eq(sv_error_encode(&out, 1, &m), SV_OK);
    body = one_frame(&out, SV_MSG_ERROR, 1, &len);
    ck_assert_int_eq(sv_error_decode(body, len, &d), SV_OK);
    ck_assert_uint_eq(strlen(d.msg), SV_WIRE_MAX_MSG);
    sv_buf_free(&out);
}
END_TEST

/* Every sample message: decode, re-encode, identical bytes. */
START_TEST(test_rt_samples)
{
    const wsample_info *si = wsample_get(_i);
    sv_buf out;
    const uint8_t *body;
    size_t len;
    sv_status st;

    sv_buf_init(&out, 1, 0);
    ck_assert_int_eq(wsample_encode(_i, &out, 1), SV_OK);
    body = one_frame(&out, si->type, 1, &len);
    ck_assert_int_eq(wsample_roundtrip(si->type, body, len, &st), 1);
    ck_assert_int_eq(st, SV_OK);
    sv_buf_free(&out);
}
END_TEST

START_TEST(test_several_frames_in_one_buffer)
{
    sv_buf out;
    sv_wire_hdr h;
    size_t off = 0;
    unsigned i, n = wsample_count();

    sv_buf_init(&out, 1, 0);
    for (i = 0; i < n; i++)
        ck_assert_int_eq(wsample_encode(i, &out, 100 + i), SV_OK);
    for (i = 0; i < n; i++) {
        ck_assert_uint_ge(out.len - off, SV_WIRE_HDR_LEN);
        ck_assert_int_eq(sv_wire_hdr_decode(out.data + off, &h), SV_OK);
        ck_assert_uint_eq(h.reqid, 100 + i);
        ck_assert_uint_eq(h.type, wsample_get(i)->type);
        ck_assert_int_eq(decode_copy(h.type, out.data + off + SV_WIRE_HDR_LEN, h.body_len),
                         SV_OK);
        off += SV_WIRE_HDR_LEN + h.body_len;
    }
    ck_assert_uint_eq(off, out.len);
    sv_buf_free(&out);
}
END_TEST

/* ---- frames and headers ----------------------------------------------------- */

/* Every prefix of every sample frame, and of its body, is truncated. */
START_TEST(test_truncated_every_offset)
{
    const wsample_info *si = wsample_get(_i);
    sv_wire_hdr h;
    sv_buf out;
    const uint8_t *body;
    size_t len, cut;

    sv_buf_init(&out, 1, 0);
    ck_assert_int_eq(wsample_encode(_i, &out, 1), SV_OK);
    body = one_frame(&out, si->type, 1, &len);
    for (cut = 0; cut < out.len; cut++)
        ck_assert_int_eq(frame_copy(out.data, cut, &h), SV_ERR_WIRE_TRUNCATED);
    for (cut = 0; cut < len; cut++)
        ck_assert_int_eq(decode_copy(si->type, body, cut), SV_ERR_WIRE_TRUNCATED);
    ck_assert_int_eq(decode_copy(si->type, body, len), SV_OK);
    sv_buf_free(&out);
}
END_TEST

/* One byte too many, in the frame or in the body. */
START_TEST(test_trailing)
{
    const wsample_info *si = wsample_get(_i);
    sv_wire_hdr h;
    sv_buf out;
    size_t len;
    const uint8_t *body;
    uint8_t *c;

    sv_buf_init(&out, 1, 0);
    ck_assert_int_eq(wsample_encode(_i, &out, 1), SV_OK);
    sv_buf_put_u8(&out, 0);
    ck_assert_int_eq(frame_copy(out.data, out.len, &h), SV_ERR_WIRE_TRAILING);
    out.len--;
    body = one_frame(&out, si->type, 1, &len);
    c = malloc(len + 1);
    ck_assert_ptr_nonnull(c);
    memcpy(c, body, len);
    c[len] = 0x00;
    ck_assert_int_eq(decode_copy(si->type, c, len + 1), SV_ERR_WIRE_TRAILING);
    c[len] = 0xff;
    ck_assert_int_eq(decode_copy(si->type, c, len + 1), SV_ERR_WIRE_TRAILING);
    free(c);
    sv_buf_free(&out);
}
END_TEST

static void
put_hdr(uint8_t *p, uint8_t m0, uint8_t m1, uint8_t ver, uint8_t type,
        uint32_t reqid, uint32_t len)
{
    p[0] = m0;
    p[1] = m1;
    p[2] = ver;
    p[3] = type;
    p[4] = (uint8_t)(reqid >> 24);
    p[5] = (uint8_t)(reqid >> 16);
    p[6] = (uint8_t)(reqid >> 8);
    p[7] = (uint8_t)reqid;
    p[8] = (uint8_t)(len >> 24);
    p[9] = (uint8_t)(len >> 16);
    p[10] = (uint8_t)(len >> 8);
    p[11] = (uint8_t)len;
}

START_TEST(test_hdr_fields)
{
    uint8_t hdr[SV_WIRE_HDR_LEN];
    sv_wire_hdr h;

    put_hdr(hdr, 'S', 'V', 1, SV_MSG_DECRYPT, 0x01020304u, 0x000a0b0cu);
    ck_assert_int_eq(sv_wire_hdr_decode(hdr, &h), SV_OK);
    ck_assert_uint_eq(h.version, 1);
    ck_assert_uint_eq(h.type, SV_MSG_DECRYPT);
    ck_assert_uint_eq(h.reqid, 0x01020304u);
    ck_assert_uint_eq(h.body_len, 0x000a0b0cu);
    ck_assert_int_eq(sv_wire_hdr_decode(NULL, &h), SV_ERR_INVAL);
}
END_TEST

START_TEST(test_hdr_too_large)
{
    uint8_t hdr[SV_WIRE_HDR_LEN], big[SV_WIRE_HDR_LEN];
    sv_wire_hdr h, h2, h3;
    const uint8_t *body, *body2;
    struct mallinfo2 before, after;
    sv_status st[4];

    put_hdr(hdr, 'S', 'V', 1, SV_MSG_STORE, 77, SV_WIRE_MAX_BODY);
    ck_assert_int_eq(sv_wire_hdr_decode(hdr, &h), SV_OK);
    /* the largest legal length with no body yet is truncated, not too large */
    ck_assert_int_eq(sv_wire_frame(hdr, sizeof(hdr), &h, &body), SV_ERR_WIRE_TRUNCATED);

    /* refused from the 12 header bytes alone, before any allocation: call
     * everything first, measure, and only then assert */
    put_hdr(hdr, 'S', 'V', 1, SV_MSG_STORE, 77, SV_WIRE_MAX_BODY + 1);
    put_hdr(big, 'S', 'V', 1, SV_MSG_DECRYPT, 78, 0xffffffffu);
    before = mallinfo2();
    st[0] = sv_wire_hdr_decode(hdr, &h);
    st[1] = sv_wire_frame(hdr, sizeof(hdr), &h2, &body);
    st[2] = sv_wire_hdr_decode(big, &h3);
    st[3] = sv_wire_frame(big, sizeof(big), &h3, &body2);
    after = mallinfo2();
    ck_assert_uint_eq(after.uordblks, before.uordblks);
    ck_assert_uint_eq(after.hblkhd, before.hblkhd);
    ck_assert_int_eq(st[0], SV_ERR_WIRE_TOO_LARGE);
    ck_assert_int_eq(st[1], SV_ERR_WIRE_TOO_LARGE);
    ck_assert_int_eq(st[2], SV_ERR_WIRE_TOO_LARGE);
    ck_assert_int_eq(st[3], SV_ERR_WIRE_TOO_LARGE);
    ck_assert_uint_eq(h.reqid, 77); /* still there, to echo in an ERROR */
    ck_assert_uint_eq(h3.reqid, 78);
    ck_assert_ptr_null(body);
    ck_assert_ptr_null(body2);

    /* body decoders refuse an oversized body too */
    ck_assert_int_eq(sv_status_req_decode(CT, SV_WIRE_MAX_BODY + 1), SV_ERR_WIRE_TOO_LARGE);
}
END_TEST

START_TEST(test_hdr_magic_version)
{
    static const uint8_t magics[][2] = {{'S', 'W'}, {'s', 'v'}, {'V', 'S'}, {0, 0}, {0xff, 0xff}};
    static const uint8_t versions[] = {0, 2, 0x81, 0xff};
    uint8_t hdr[SV_WIRE_HDR_LEN];
    sv_wire_hdr h;
    size_t i;

    for (i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
        put_hdr(hdr, magics[i][0], magics[i][1], 1, SV_MSG_STATUS, 1, 2);
        ck_assert_int_eq(sv_wire_hdr_decode(hdr, &h), SV_ERR_WIRE_VERSION);
    }
    for (i = 0; i < sizeof(versions); i++) {
        put_hdr(hdr, 'S', 'V', versions[i], SV_MSG_STATUS, 1, 2);
        ck_assert_int_eq(sv_wire_hdr_decode(hdr, &h), SV_ERR_WIRE_VERSION);
        ck_assert_uint_eq(h.version, versions[i]);
    }
    /* a bad magic is reported before an oversized length */
    put_hdr(hdr, 'X', 'V', 1, SV_MSG_STATUS, 1, 0xffffffffu);
    ck_assert_int_eq(sv_wire_hdr_decode(hdr, &h), SV_ERR_WIRE_VERSION);
}
END_TEST

START_TEST(test_hdr_types)
{
    uint8_t hdr[SV_WIRE_HDR_LEN];
    sv_wire_hdr h;
    unsigned t, known = 0;

    for (t = 0; t < 256; t++) {
        sv_status st;

        put_hdr(hdr, 'S', 'V', 1, (uint8_t)t, 1, 2);
        st = sv_wire_hdr_decode(hdr, &h);
        if ((t >= 0x01 && t <= 0x08) || (t >= 0x81 && t <= 0x88) || t == 0x7f) {
            ck_assert_int_eq(st, SV_OK);
            ck_assert_str_ne(sv_wire_type_name((uint8_t)t), "unknown");
            known++;
        } else {
            ck_assert_int_eq(st, SV_ERR_WIRE_TYPE);
            ck_assert_str_eq(sv_wire_type_name((uint8_t)t), "unknown");
            ck_assert_int_eq(wsample_decode((uint8_t)t, (const uint8_t *)"\0", 2),
                             SV_ERR_WIRE_TYPE);
        }
    }
    ck_assert_uint_eq(known, 17);
    ck_assert_str_eq(sv_wire_type_name(SV_MSG_DECRYPT_OK), "DECRYPT_OK");
}
END_TEST

START_TEST(test_frame_args)
{
    sv_wire_hdr h;
    const uint8_t *body = (const uint8_t *)"x";

    ck_assert_int_eq(sv_wire_frame(NULL, 0, &h, &body), SV_ERR_WIRE_TRUNCATED);
    ck_assert_ptr_null(body);
    ck_assert_int_eq(sv_wire_frame(NULL, 20, &h, &body), SV_ERR_INVAL);
    ck_assert_int_eq(sv_status_req_decode(NULL, 0), SV_ERR_WIRE_TRUNCATED);
    ck_assert_int_eq(sv_status_req_decode(NULL, 2), SV_ERR_INVAL);
}
END_TEST

/* ---- counts ---------------------------------------------------------------- */

START_TEST(test_counts_fields)
{
    unsigned i;

    /* STORE n = 0, 33 (33 with 33 complete fields present) */
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 33);
    for (i = 0; i < 33; i++) {
        char nm[8];

        snprintf(nm, sizeof(nm), "x%u", i);
        bb_store_field(nm, strlen(nm));
    }
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE), SV_ERR_WIRE_MALFORMED);
    /* 255 */
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 255);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE), SV_ERR_WIRE_MALFORMED);

    /* STORE_OK */
    bb_start();
    sv_buf_put_u8(&bb, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE_OK), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put_u8(&bb, 33);
    for (i = 0; i < 33; i++)
        sv_buf_put_u64(&bb, i + 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE_OK), SV_ERR_WIRE_MALFORMED);

    /* DECRYPT */
    bb_start();
    bb_decrypt_head("carol", 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);
    bb_start();
    bb_decrypt_head("carol", 33);
    for (i = 0; i < 33; i++) {
        char nm[8];

        snprintf(nm, sizeof(nm), "x%u", i);
        bb_decrypt_field(i + 1, nm, 16, 0);
    }
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);

    /* DECRYPT_OK */
    bb_start();
    sv_buf_put_u8(&bb, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT_OK), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put_u8(&bb, 33);
    for (i = 0; i < 33; i++) {
        sv_buf_put_u32(&bb, 0);
        sv_buf_put_u64(&bb, 0);
    }
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT_OK), SV_ERR_WIRE_MALFORMED);

    /* RELEASE */
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RELEASE), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 33);
    for (i = 0; i < 33; i++) {
        char nm[8];

        snprintf(nm, sizeof(nm), "x%u", i);
        bb_str8(nm);
        sv_buf_put_u64(&bb, i + 1);
        sv_buf_put_u64(&bb, 0);
    }
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RELEASE), SV_ERR_WIRE_MALFORMED);

    /* RELEASE_OK: 0 is fine, 33 is not */
    bb_start();
    sv_buf_put_u8(&bb, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RELEASE_OK), SV_OK);
    bb_start();
    sv_buf_put_u8(&bb, 33);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RELEASE_OK), SV_ERR_WIRE_MALFORMED);
}
END_TEST

START_TEST(test_counts_lists)
{
    unsigned i;

    /* RECON_LIST limit 0, 1000, 1001, 65535 */
    static const struct { uint16_t limit; sv_status st; } lim[] = {
        {0, SV_ERR_WIRE_MALFORMED}, {1, SV_OK}, {1000, SV_OK},
        {1001, SV_ERR_WIRE_MALFORMED}, {0xffff, SV_ERR_WIRE_MALFORMED}};

    for (i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        bb_start();
        sv_buf_put_u32(&bb, 1);
        sv_buf_put_u64(&bb, 0);
        sv_buf_put_u16(&bb, lim[i].limit);
        bb_zero(2);
        ck_assert_int_eq(bb_decode(SV_MSG_RECON_LIST), lim[i].st);
    }

    /* RECON_LIST_OK n = 1001, entries present */
    bb_start();
    sv_buf_put_u8(&bb, 0);
    sv_buf_put_u16(&bb, 1001);
    for (i = 0; i < 1001; i++) {
        sv_buf_put_u64(&bb, i + 1);
        sv_buf_put(&bb, UUID, 16);
        bb_str8("a");
        sv_buf_put_u8(&bb, 1);
        sv_buf_put_u64(&bb, 0);
    }
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_LIST_OK), SV_ERR_WIRE_MALFORMED);
    /* n = 1000 claimed, bytes for 2: truncated, refused before allocating */
    bb_start();
    sv_buf_put_u8(&bb, 0);
    sv_buf_put_u16(&bb, 1000);
    for (i = 0; i < 2; i++) {
        sv_buf_put_u64(&bb, i + 1);
        sv_buf_put(&bb, UUID, 16);
        bb_str8("a");
        sv_buf_put_u8(&bb, 1);
        sv_buf_put_u64(&bb, 0);
    }
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_LIST_OK), SV_ERR_WIRE_TRUNCATED);

    /* RECON_DELETE n = 0, 1001 */
    bb_start();
    sv_buf_put_u32(&bb, 1);
    sv_buf_put_u16(&bb, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_DELETE), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put_u32(&bb, 1);
    sv_buf_put_u16(&bb, 1001);
    for (i = 0; i < 1001; i++) {
        sv_buf_put_u64(&bb, i + 1);
        sv_buf_put(&bb, UUID, 16);
        bb_str8("a");
    }
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_DELETE), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put_u32(&bb, 1);
    sv_buf_put_u16(&bb, 1000);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_DELETE), SV_ERR_WIRE_TRUNCATED);

    /* RECON_DELETE_OK */
    bb_start();
    sv_buf_put_u16(&bb, 1000);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_DELETE_OK), SV_OK);
    bb_start();
    sv_buf_put_u16(&bb, 1001);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_DELETE_OK), SV_ERR_WIRE_MALFORMED);
}
END_TEST

/* ---- names ------------------------------------------------------------------ */

START_TEST(test_field_names)
{
    static const struct { const char *s; size_t len; sv_status st; } cases[] = {
        {"a", 1, SV_OK},
        {"Z9_-", 4, SV_OK},
        {"", 0, SV_ERR_WIRE_MALFORMED},
        {"a b", 3, SV_ERR_WIRE_MALFORMED},
        {"a/b", 3, SV_ERR_WIRE_MALFORMED},
        {"a.b", 3, SV_ERR_WIRE_MALFORMED},
        {"a\0b", 3, SV_ERR_WIRE_MALFORMED},
        {"\xc3\xa9", 2, SV_ERR_WIRE_MALFORMED},
        {"a\n", 2, SV_ERR_WIRE_MALFORMED},
        {"name%", 5, SV_ERR_WIRE_MALFORMED},
    };
    char longname[SV_FIELD_MAX + 2];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bb_start();
        sv_buf_put(&bb, UUID, 16);
        sv_buf_put_u8(&bb, 1);
        bb_store_field(cases[i].s, cases[i].len);
        bb_zero(2);
        ck_assert_msg(bb_decode(SV_MSG_STORE) == cases[i].st, "case %zu", i);
    }
    memset(longname, 'n', sizeof(longname));
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 1);
    bb_store_field(longname, SV_FIELD_MAX);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE), SV_OK);
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 1);
    bb_store_field(longname, SV_FIELD_MAX + 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE), SV_ERR_WIRE_MALFORMED);

    /* the same rule in RELEASE and the reconcile messages */
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 1);
    bb_str8("bad name");
    sv_buf_put_u64(&bb, 1);
    sv_buf_put_u64(&bb, 2);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RELEASE), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put_u32(&bb, 1);
    sv_buf_put_u16(&bb, 1);
    sv_buf_put_u64(&bb, 1);
    sv_buf_put(&bb, UUID, 16);
    bb_str8("a:b");
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_DELETE), SV_ERR_WIRE_MALFORMED);
}
END_TEST

START_TEST(test_actor_names)
{
    static const struct { const char *s; int ok; } cases[] = {
        {"a", 1}, {"alice.smith@example.org", 1}, {"A-Z_0.9@x", 1},
        {"", 0}, {"alice smith", 0}, {"alice/..", 0}, {"al\"ice", 0},
        {"alice\n", 0}, {"caf\xc3\xa9", 0}, {"a+b", 0},
    };
    char longname[SV_WIRE_MAX_ACTOR + 2];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(sv_actor_name_valid(cases[i].s, strlen(cases[i].s)), cases[i].ok);
        bb_start();
        bb_decrypt_head(cases[i].s, 1);
        bb_decrypt_field(1, "f", 16, 0);
        bb_zero(2);
        ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT),
                         cases[i].ok ? SV_OK : SV_ERR_WIRE_MALFORMED);
    }
    ck_assert_int_eq(sv_actor_name_valid(NULL, 3), 0);
    ck_assert_int_eq(sv_actor_name_valid("a\0b", 3), 0);
    memset(longname, 'q', sizeof(longname));
    longname[SV_WIRE_MAX_ACTOR] = '\0';
    ck_assert_int_eq(sv_actor_name_valid(longname, SV_WIRE_MAX_ACTOR), 1);
    ck_assert_int_eq(sv_actor_name_valid(longname, SV_WIRE_MAX_ACTOR + 1), 0);
    bb_start();
    bb_decrypt_head(longname, 1);
    bb_decrypt_field(1, "f", 16, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_OK);
    longname[SV_WIRE_MAX_ACTOR] = 'q';
    longname[SV_WIRE_MAX_ACTOR + 1] = '\0';
    bb_start();
    bb_decrypt_head(longname, 1);
    bb_decrypt_field(1, "f", 16, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);
}
END_TEST

START_TEST(test_duplicates)
{
    /* STORE: same field twice */
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 3);
    bb_store_field("a", 1);
    bb_store_field("b", 1);
    bb_store_field("a", 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE), SV_ERR_WIRE_MALFORMED);
    /* names compare exactly: case differs, so not duplicates */
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 2);
    bb_store_field("a", 1);
    bb_store_field("A", 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE), SV_OK);
    /* prefix is not a duplicate */
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 2);
    bb_store_field("ab", 2);
    bb_store_field("a", 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE), SV_OK);

    /* DECRYPT: same name, then same share id */
    bb_start();
    bb_decrypt_head("carol", 2);
    bb_decrypt_field(1, "x", 16, 0);
    bb_decrypt_field(2, "x", 16, 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);
    bb_start();
    bb_decrypt_head("carol", 2);
    bb_decrypt_field(5, "x", 16, 0);
    bb_decrypt_field(5, "y", 16, 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);

    /* RELEASE: same name; same id twice across drop/keep; both ids 0;
     * drop = keep */
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 2);
    bb_str8("x");
    sv_buf_put_u64(&bb, 1);
    sv_buf_put_u64(&bb, 2);
    bb_str8("x");
    sv_buf_put_u64(&bb, 3);
    sv_buf_put_u64(&bb, 4);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RELEASE), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 2);
    bb_str8("x");
    sv_buf_put_u64(&bb, 1);
    sv_buf_put_u64(&bb, 2);
    bb_str8("y");
    sv_buf_put_u64(&bb, 0);
    sv_buf_put_u64(&bb, 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RELEASE), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 1);
    bb_str8("x");
    sv_buf_put_u64(&bb, 0);
    sv_buf_put_u64(&bb, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RELEASE), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 1);
    bb_str8("x");
    sv_buf_put_u64(&bb, 9);
    sv_buf_put_u64(&bb, 9);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RELEASE), SV_ERR_WIRE_MALFORMED);

    /* STORE_OK: an id twice; DECRYPT_OK: a new id twice (0 may repeat) */
    bb_start();
    sv_buf_put_u8(&bb, 2);
    sv_buf_put_u64(&bb, 8);
    sv_buf_put_u64(&bb, 8);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE_OK), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put_u8(&bb, 3);
    sv_buf_put_u32(&bb, 0);
    sv_buf_put_u64(&bb, 0);
    sv_buf_put_u32(&bb, 0);
    sv_buf_put_u64(&bb, 0);
    sv_buf_put_u32(&bb, 0);
    sv_buf_put_u64(&bb, 4);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT_OK), SV_OK);
    bb_start();
    sv_buf_put_u8(&bb, 2);
    sv_buf_put_u32(&bb, 0);
    sv_buf_put_u64(&bb, 4);
    sv_buf_put_u32(&bb, 0);
    sv_buf_put_u64(&bb, 4);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT_OK), SV_ERR_WIRE_MALFORMED);
}
END_TEST

/* ---- flags, ranges, ids ----------------------------------------------------- */

START_TEST(test_flags_and_ranges)
{
    static const uint8_t bad_rotate[] = {2, 3, 0x80, 0xff};
    size_t i;

    for (i = 0; i < sizeof(bad_rotate); i++) {
        bb_start();
        bb_decrypt_head("carol", 1);
        bb_decrypt_field(1, "x", 16, bad_rotate[i]);
        sv_buf_put(&bb, K3, 32); /* even with the keys present */
        sv_buf_put(&bb, K4, 32);
        bb_zero(2);
        ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);
    }
    /* ct length: 15 and SV_DATUM_MAX + 17 out of range */
    bb_start();
    bb_decrypt_head("carol", 1);
    bb_decrypt_field(1, "x", 15, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);
    bb_start();
    bb_decrypt_head("carol", 1);
    sv_buf_put_u64(&bb, 1);
    bb_str8("x");
    sv_buf_put(&bb, K1, 32);
    sv_buf_put(&bb, ENC, 32);
    sv_buf_put_u32(&bb, SV_DATUM_MAX + SV_HPKE_TAG_LEN + 1);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);
    /* a huge ct length is malformed, not a read past the end */
    bb_start();
    bb_decrypt_head("carol", 1);
    sv_buf_put_u64(&bb, 1);
    bb_str8("x");
    sv_buf_put(&bb, K1, 32);
    sv_buf_put(&bb, ENC, 32);
    sv_buf_put_u32(&bb, 0xffffffffu);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);
    /* share id 0 */
    bb_start();
    bb_decrypt_head("carol", 1);
    bb_decrypt_field(0, "x", 16, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put_u8(&bb, 1);
    sv_buf_put_u64(&bb, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_STORE_OK), SV_ERR_WIRE_MALFORMED);

    /* DECRYPT_OK pt longer than SV_DATUM_MAX */
    bb_start();
    sv_buf_put_u8(&bb, 1);
    sv_buf_put_u32(&bb, SV_DATUM_MAX + 1);
    sv_buf_put(&bb, CT, SV_DATUM_MAX + 1);
    sv_buf_put_u64(&bb, 0);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT_OK), SV_ERR_WIRE_MALFORMED);

    /* STATUS_OK locked flag */
    bb_start();
    sv_buf_put_u8(&bb, 2);
    bb_zero(4 + 4 + 7 * 8 + 2);
    ck_assert_int_eq(bb_decode(SV_MSG_STATUS_OK), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put_u8(&bb, 0);
    bb_zero(4 + 4 + 7 * 8 + 2);
    ck_assert_int_eq(bb_decode(SV_MSG_STATUS_OK), SV_OK);
}
END_TEST

static void
bb_entry(uint64_t id, const char *name, uint8_t state)
{
    sv_buf_put_u64(&bb, id);
    sv_buf_put(&bb, UUID, 16);
    bb_str8(name);
    sv_buf_put_u8(&bb, state);
    sv_buf_put_u64(&bb, 1700000000);
}

/* The head of a RECON_LIST_OK or RECON_SCAN_OK answer, up to its count. */
static void
bb_listing_head(uint8_t type, uint8_t more, uint16_t n)
{
    bb_start();
    sv_buf_put_u8(&bb, more);
    if (type == SV_MSG_RECON_SCAN_OK) {
        sv_buf_put_u32(&bb, 900); /* min_grace_s */
        sv_buf_put_u64(&bb, 7);   /* total */
    }
    sv_buf_put_u16(&bb, n);
}

/* RECON_LIST_OK and RECON_SCAN_OK list shares by the same rules: each case
 * is tried in both. */
static const struct {
    const char *what;
    uint8_t more;
    uint16_t n;
    unsigned k; /* entries written */
    struct {
        uint64_t id;
        const char *name;
        uint8_t state;
    } e[2];
    sv_status st;
} listing_cases[] = {
    { "more = 2", 2, 1, 1, { { 1, "a", 1 } }, SV_ERR_WIRE_MALFORMED },
    { "more = 1 with nothing listed", 1, 0, 0, { { 0 } }, SV_ERR_WIRE_MALFORMED },
    { "state 0", 0, 1, 1, { { 1, "a", 0 } }, SV_ERR_WIRE_MALFORMED },
    { "state 3", 0, 1, 1, { { 1, "a", 3 } }, SV_ERR_WIRE_MALFORMED },
    { "id 0", 0, 1, 1, { { 0, "a", 1 } }, SV_ERR_WIRE_MALFORMED },
    { "ids equal", 0, 2, 2, { { 5, "a", 1 }, { 5, "b", 2 } }, SV_ERR_WIRE_MALFORMED },
    { "ids descending", 0, 2, 2, { { 5, "a", 1 }, { 4, "b", 2 } },
      SV_ERR_WIRE_MALFORMED },
    { "count past the bytes", 0, 1000, 1, { { 5, "a", 1 } }, SV_ERR_WIRE_TRUNCATED },
    /* the same name may occur twice in a list (different records) */
    { "a name twice", 0, 2, 2, { { 4, "a", 1 }, { 5, "a", 2 } }, SV_OK },
};

START_TEST(test_recon_rules)
{
    static const uint8_t types[] = { SV_MSG_RECON_LIST_OK, SV_MSG_RECON_SCAN_OK };

    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        for (size_t i = 0; i < sizeof(listing_cases) / sizeof(listing_cases[0]); i++) {
            bb_listing_head(types[t], listing_cases[i].more, listing_cases[i].n);
            for (unsigned j = 0; j < listing_cases[i].k; j++) {
                bb_entry(listing_cases[i].e[j].id, listing_cases[i].e[j].name,
                         listing_cases[i].e[j].state);
                if (types[t] == SV_MSG_RECON_SCAN_OK)
                    sv_buf_put_u64(&bb, 0); /* retired: in use */
            }
            bb_zero(2);
            ck_assert_msg(bb_decode(types[t]) == listing_cases[i].st, "type 0x%02x: %s",
                          types[t], listing_cases[i].what);
        }
    }

    /* RECON_DELETE ids descending */
    bb_start();
    sv_buf_put_u32(&bb, 1);
    sv_buf_put_u16(&bb, 2);
    sv_buf_put_u64(&bb, 9);
    sv_buf_put(&bb, UUID, 16);
    bb_str8("a");
    sv_buf_put_u64(&bb, 8);
    sv_buf_put(&bb, UUID, 16);
    bb_str8("a");
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_DELETE), SV_ERR_WIRE_MALFORMED);
}
END_TEST

/* Share ids are 1..2^63-1 (SQL bigints in the store): a larger id in any
 * id field is malformed, and no encoder writes one. */
static const uint64_t too_big[] = { UINT64_C(1) << 63, UINT64_C(0x8000000000000001),
                                    UINT64_MAX };

/* RELEASE body with one item. */
static sv_status
release_ids(uint64_t drop, uint64_t keep)
{
    bb_start();
    sv_buf_put(&bb, UUID, 16);
    sv_buf_put_u8(&bb, 1);
    bb_str8("a");
    sv_buf_put_u64(&bb, drop);
    sv_buf_put_u64(&bb, keep);
    bb_zero(2);
    return bb_decode(SV_MSG_RELEASE);
}

START_TEST(test_id_range)
{
    const uint64_t max = SV_WIRE_MAX_ID;

    ck_assert(max == UINT64_C(9223372036854775807));
    ck_assert_int_eq(release_ids(max, 0), SV_OK);
    ck_assert_int_eq(release_ids(0, max), SV_OK);
    for (size_t i = 0; i < sizeof(too_big) / sizeof(too_big[0]); i++) {
        uint64_t v = too_big[i];

        /* STORE_OK */
        bb_start();
        sv_buf_put_u8(&bb, 1);
        sv_buf_put_u64(&bb, v);
        bb_zero(2);
        ck_assert_int_eq(bb_decode(SV_MSG_STORE_OK), SV_ERR_WIRE_MALFORMED);
        /* DECRYPT: refused at the id, before the rest is read */
        bb_start();
        bb_decrypt_head("carol", 1);
        sv_buf_put_u64(&bb, v);
        ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT), SV_ERR_WIRE_MALFORMED);
        /* DECRYPT_OK new share id */
        bb_start();
        sv_buf_put_u8(&bb, 1);
        sv_buf_put_u32(&bb, 0);
        sv_buf_put_u64(&bb, v);
        bb_zero(2);
        ck_assert_int_eq(bb_decode(SV_MSG_DECRYPT_OK), SV_ERR_WIRE_MALFORMED);
        /* RELEASE drop and keep */
        ck_assert_int_eq(release_ids(v, 0), SV_ERR_WIRE_MALFORMED);
        ck_assert_int_eq(release_ids(0, v), SV_ERR_WIRE_MALFORMED);
        ck_assert_int_eq(release_ids(1, v), SV_ERR_WIRE_MALFORMED);
        /* RECON_LIST cursor */
        bb_start();
        sv_buf_put_u32(&bb, 1);
        sv_buf_put_u64(&bb, v);
        sv_buf_put_u16(&bb, 10);
        bb_zero(2);
        ck_assert_int_eq(bb_decode(SV_MSG_RECON_LIST), SV_ERR_WIRE_MALFORMED);
        /* RECON_LIST_OK and RECON_DELETE entries */
        bb_start();
        sv_buf_put_u8(&bb, 0);
        sv_buf_put_u16(&bb, 1);
        bb_entry(v, "a", 1);
        bb_zero(2);
        ck_assert_int_eq(bb_decode(SV_MSG_RECON_LIST_OK), SV_ERR_WIRE_MALFORMED);
        bb_start();
        sv_buf_put_u32(&bb, 1);
        sv_buf_put_u16(&bb, 1);
        sv_buf_put_u64(&bb, v);
        sv_buf_put(&bb, UUID, 16);
        bb_str8("a");
        bb_zero(2);
        ck_assert_int_eq(bb_decode(SV_MSG_RECON_DELETE), SV_ERR_WIRE_MALFORMED);
    }
}
END_TEST

START_TEST(test_error_rules)
{
    static const uint16_t bad_codes[] = {0, 13, 0x7fff, 0xffff};
    char msg[SV_WIRE_MAX_MSG + 1];
    size_t i;

    for (i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
        bb_start();
        sv_buf_put_u16(&bb, bad_codes[i]);
        sv_buf_put_u32(&bb, 0);
        bb_str8("x");
        bb_zero(2);
        ck_assert_int_eq(bb_decode(SV_MSG_ERROR), SV_ERR_WIRE_MALFORMED);
        ck_assert_str_eq(sv_wire_error_name(bad_codes[i]), "unknown");
    }
    bb_start();
    sv_buf_put_u16(&bb, 1);
    sv_buf_put_u32(&bb, 0);
    bb_str8("line\nbreak");
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_ERROR), SV_ERR_WIRE_MALFORMED);
    bb_start();
    sv_buf_put_u16(&bb, 1);
    sv_buf_put_u32(&bb, 0);
    bb_str8("del\x7f");
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_ERROR), SV_ERR_WIRE_MALFORMED);
    memset(msg, 'm', sizeof(msg));
    bb_start();
    sv_buf_put_u16(&bb, 1);
    sv_buf_put_u32(&bb, 0);
    sv_buf_put_u8(&bb, SV_WIRE_MAX_MSG + 1);
    sv_buf_put(&bb, msg, SV_WIRE_MAX_MSG + 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_ERROR), SV_ERR_WIRE_MALFORMED);
    ck_assert_str_eq(sv_wire_error_name(SV_WERR_LOCKED_DOWN), "locked down");
}
END_TEST

/* ---- extensions ------------------------------------------------------------- */

/* Replace the (empty) extension block at the end of sample _i's body with
 * `count` extensions of the given tags (NULL: tag 0x0100 + k), each
 * carrying k bytes, then decode. */
static sv_status
with_ext(unsigned sample, unsigned count, const uint16_t *tags, int extra_byte)
{
    const wsample_info *si = wsample_get(sample);
    sv_buf out;
    const uint8_t *body;
    size_t len;
    unsigned k;
    sv_status st;

    sv_buf_init(&out, 1, 0);
    ck_assert_int_eq(wsample_encode(sample, &out, 1), SV_OK);
    body = one_frame(&out, si->type, 1, &len);
    bb_start();
    sv_buf_put(&bb, body, len - 2);
    sv_buf_put_u16(&bb, (uint16_t)count);
    for (k = 0; k < count; k++) {
        sv_buf_put_u16(&bb, tags ? tags[k] : (uint16_t)(0x0100 + k));
        sv_buf_put_u16(&bb, (uint16_t)k);
        sv_buf_put(&bb, CT, k);
    }
    if (extra_byte)
        sv_buf_put_u8(&bb, 0);
    st = bb_decode(si->type);
    sv_buf_free(&out);
    return st;
}

START_TEST(test_extensions)
{
    uint16_t tags[SV_WIRE_MAX_EXT + 1];
    unsigned k;

    /* unknown non-critical: skipped, up to SV_WIRE_MAX_EXT of them */
    ck_assert_int_eq(with_ext(_i, 1, NULL, 0), SV_OK);
    ck_assert_int_eq(with_ext(_i, SV_WIRE_MAX_EXT, NULL, 0), SV_OK);
    /* too many */
    ck_assert_int_eq(with_ext(_i, SV_WIRE_MAX_EXT + 1, NULL, 0), SV_ERR_WIRE_MALFORMED);
    /* unknown critical: refused, wherever it is in the block */
    for (k = 0; k < 3; k++)
        tags[k] = (uint16_t)(0x0200 + k);
    tags[2] |= SV_WIRE_CRITICAL;
    ck_assert_int_eq(with_ext(_i, 3, tags, 0), SV_ERR_WIRE_UNSUPPORTED);
    tags[0] = SV_WIRE_CRITICAL; /* identity 0, critical */
    ck_assert_int_eq(with_ext(_i, 1, tags, 0), SV_ERR_WIRE_UNSUPPORTED);
    /* structure is judged before criticality */
    tags[0] = 0x8001;
    ck_assert_int_eq(with_ext(_i, 1, tags, 1), SV_ERR_WIRE_TRAILING);
    /* the same identity twice, whatever the critical bit */
    tags[0] = 0x0007;
    tags[1] = 0x0007;
    ck_assert_int_eq(with_ext(_i, 2, tags, 0), SV_ERR_WIRE_MALFORMED);
    tags[1] = 0x8007;
    ck_assert_int_eq(with_ext(_i, 2, tags, 0), SV_ERR_WIRE_MALFORMED);
}
END_TEST

START_TEST(test_extension_truncated)
{
    const uint8_t body_ext[] = {0x00, 0x01, 0x00, 0x05, 0x00, 0x04, 'a', 'b', 'c'};

    /* STATUS body: ext block only; the extension claims 4 bytes, has 3 */
    ck_assert_int_eq(decode_copy(SV_MSG_STATUS, body_ext, sizeof(body_ext)),
                     SV_ERR_WIRE_TRUNCATED);
    ck_assert_int_eq(decode_copy(SV_MSG_STATUS, body_ext, sizeof(body_ext) - 4),
                     SV_ERR_WIRE_TRUNCATED);
    ck_assert_int_eq(decode_copy(SV_MSG_STATUS, (const uint8_t *)"\x00\x01\x00\x05\x00\x00", 6),
                     SV_OK);
}
END_TEST

/* ---- failure leaves outputs zeroed ----------------------------------------- */

START_TEST(test_failure_zeroes_output)
{
    sv_store_req m;
    sv_recon_list_resp l;
    sv_buf out;
    const uint8_t *body;
    size_t len;

    sv_buf_init(&out, 1, 0);
    ck_assert_int_eq(wsample_encode(0, &out, 1), SV_OK);
    body = one_frame(&out, SV_MSG_STORE, 1, &len);
    ck_assert_int_eq(sv_store_req_decode(body, len - 1, &m), SV_ERR_WIRE_TRUNCATED);
    ck_assert_uint_eq(m.n, 0);
    ck_assert_ptr_null(m.f[0].key2b);
    ck_assert_uint_eq(m.f[0].name[0], 0);
    sv_buf_reset(&out);
    ck_assert_int_eq(wsample_encode(11, &out, 1), SV_OK); /* recon_list_ok-valid */
    body = one_frame(&out, SV_MSG_RECON_LIST_OK, 1, &len);
    ck_assert_int_eq(sv_recon_list_resp_decode(body, len - 1, &l), SV_ERR_WIRE_TRUNCATED);
    ck_assert_ptr_null(l.e);
    ck_assert_uint_eq(l.n, 0);
    sv_buf_free(&out);
}
END_TEST

/* ---- encoders --------------------------------------------------------------- */

/* An encoder refused: out is exactly as before. */
#define REFUSED(call, want)                                                   \
    do {                                                                      \
        size_t len0_ = out.len;                                               \
        ck_assert_int_eq((call), (want));                                     \
        ck_assert_uint_eq(out.len, len0_);                                    \
        ck_assert_int_eq(sv_buf_status(&out), SV_OK);                         \
    } while (0)

START_TEST(test_encode_refuses_store)
{
    sv_store_req m;
    sv_store_resp r;
    sv_buf out, pub;

    sv_buf_init(&out, 1, 0);
    sv_buf_init(&pub, 0, 0);
    sv_buf_put(&out, "prefix", 6);
    make_store(&m, 2);
    ck_assert_int_eq(sv_store_req_encode(&pub, 1, &m), SV_ERR_INVAL); /* not secret */
    ck_assert_uint_eq(pub.len, 0);
    REFUSED(sv_store_req_encode(&out, 1, NULL), SV_ERR_INVAL);
    m.n = 0;
    REFUSED(sv_store_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_store(&m, SV_WIRE_MAX_FIELDS);
    m.n = SV_WIRE_MAX_FIELDS + 1;
    REFUSED(sv_store_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_store(&m, 2);
    set_str(m.f[1].name, sizeof(m.f[1].name), "field_0");
    REFUSED(sv_store_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_store(&m, 2);
    m.f[1].name[0] = '\0';
    REFUSED(sv_store_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_store(&m, 2);
    set_str(m.f[1].name, sizeof(m.f[1].name), "no spaces");
    REFUSED(sv_store_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_store(&m, 2);
    memset(m.f[1].name, 'a', sizeof(m.f[1].name)); /* no NUL: 65 long */
    REFUSED(sv_store_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_store(&m, 2);
    m.f[1].key2b = NULL;
    REFUSED(sv_store_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_store(&m, 2);
    m.f[0].pub = NULL;
    REFUSED(sv_store_req_encode(&out, 1, &m), SV_ERR_INVAL);

    memset(&r, 0, sizeof(r));
    REFUSED(sv_store_resp_encode(&out, 1, &r), SV_ERR_INVAL);
    r.n = SV_WIRE_MAX_FIELDS + 1;
    REFUSED(sv_store_resp_encode(&out, 1, &r), SV_ERR_INVAL);
    r.n = 2;
    r.share_id[0] = 1;
    r.share_id[1] = 0;
    REFUSED(sv_store_resp_encode(&out, 1, &r), SV_ERR_INVAL);
    r.share_id[1] = 1;
    REFUSED(sv_store_resp_encode(&out, 1, &r), SV_ERR_INVAL);
    ck_assert_mem_eq(out.data, "prefix", 6);
    sv_buf_free(&out);
    sv_buf_free(&pub);
}
END_TEST

START_TEST(test_encode_refuses_decrypt)
{
    sv_decrypt_req m;
    sv_decrypt_resp r;
    sv_buf out, pub;

    sv_buf_init(&out, 1, 0);
    sv_buf_init(&pub, 0, 0);
    make_decrypt(&m, 2, 20);
    ck_assert_int_eq(sv_decrypt_req_encode(&pub, 1, &m), SV_ERR_INVAL);
    m.actor[0] = '\0';
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    set_str(m.actor, sizeof(m.actor), "ca rol");
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    memset(m.actor, 'a', sizeof(m.actor)); /* no NUL */
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, 20);
    m.n = 0;
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    m.n = SV_WIRE_MAX_FIELDS + 1;
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, SV_HPKE_TAG_LEN - 1);
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, SV_DATUM_MAX + SV_HPKE_TAG_LEN + 1);
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, 20);
    m.f[0].rotate = 2;
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, 20);
    m.f[0].rotate = -1;
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, 20);
    m.f[1].new_key2b = NULL; /* f[1] rotates */
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, 20);
    m.f[1].share_id = 0;
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, 20);
    m.f[1].share_id = m.f[0].share_id;
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, 20);
    set_str(m.f[1].name, sizeof(m.f[1].name), m.f[0].name);
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, 20);
    m.f[0].ct = NULL;
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, 20);
    m.f[0].enc = NULL;
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    make_decrypt(&m, 2, 20);
    m.f[0].key2a = NULL;
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_INVAL);
    /* rotate 0 with NULL new keys is fine */
    make_decrypt(&m, 1, 20);
    ck_assert_ptr_null(m.f[0].new_pub);
    ck_assert_int_eq(sv_decrypt_req_encode(&out, 1, &m), SV_OK);

    sv_buf_reset(&out);
    memset(&r, 0, sizeof(r));
    r.n = 1;
    r.f[0].pt = CT;
    r.f[0].pt_len = 5;
    ck_assert_int_eq(sv_decrypt_resp_encode(&pub, 1, &r), SV_ERR_INVAL); /* not secret */
    r.n = 0;
    REFUSED(sv_decrypt_resp_encode(&out, 1, &r), SV_ERR_INVAL);
    r.n = SV_WIRE_MAX_FIELDS + 1;
    REFUSED(sv_decrypt_resp_encode(&out, 1, &r), SV_ERR_INVAL);
    r.n = 1;
    r.f[0].pt_len = SV_DATUM_MAX + 1;
    REFUSED(sv_decrypt_resp_encode(&out, 1, &r), SV_ERR_INVAL);
    r.f[0].pt = NULL;
    r.f[0].pt_len = 1;
    REFUSED(sv_decrypt_resp_encode(&out, 1, &r), SV_ERR_INVAL);
    r.n = 2;
    r.f[0].pt = CT;
    r.f[0].new_share_id = 3;
    r.f[1].pt = CT;
    r.f[1].pt_len = 1;
    r.f[1].new_share_id = 3;
    REFUSED(sv_decrypt_resp_encode(&out, 1, &r), SV_ERR_INVAL);
    sv_buf_free(&out);
    sv_buf_free(&pub);
}
END_TEST

START_TEST(test_encode_refuses_others)
{
    sv_release_req rq;
    sv_release_resp rr;
    sv_status_resp s;
    sv_recon_list_req lq;
    sv_recon_list_resp lr;
    sv_recon_delete_req dq;
    sv_recon_delete_resp dr;
    sv_error_msg e;
    sv_recon_entry ent[2];
    sv_recon_ref ref[2];
    sv_buf out;

    sv_buf_init(&out, 0, 0);

    memset(&rq, 0, sizeof(rq));
    REFUSED(sv_release_req_encode(&out, 1, &rq), SV_ERR_INVAL); /* n = 0 */
    rq.n = 1;
    set_str(rq.f[0].name, sizeof(rq.f[0].name), "a");
    REFUSED(sv_release_req_encode(&out, 1, &rq), SV_ERR_INVAL); /* both ids 0 */
    rq.f[0].drop_id = 4;
    rq.f[0].keep_id = 4;
    REFUSED(sv_release_req_encode(&out, 1, &rq), SV_ERR_INVAL);
    rq.n = 2;
    rq.f[0].keep_id = 5;
    set_str(rq.f[1].name, sizeof(rq.f[1].name), "a");
    rq.f[1].drop_id = 6;
    REFUSED(sv_release_req_encode(&out, 1, &rq), SV_ERR_INVAL); /* name twice */
    set_str(rq.f[1].name, sizeof(rq.f[1].name), "b");
    rq.f[1].drop_id = 5;
    REFUSED(sv_release_req_encode(&out, 1, &rq), SV_ERR_INVAL); /* id twice */
    rq.f[1].drop_id = 6;
    set_str(rq.f[1].name, sizeof(rq.f[1].name), "b?");
    REFUSED(sv_release_req_encode(&out, 1, &rq), SV_ERR_INVAL);
    rq.n = SV_WIRE_MAX_FIELDS + 1;
    REFUSED(sv_release_req_encode(&out, 1, &rq), SV_ERR_INVAL);

    rr.n = SV_WIRE_MAX_FIELDS + 1;
    REFUSED(sv_release_resp_encode(&out, 1, &rr), SV_ERR_INVAL);

    memset(&s, 0, sizeof(s));
    s.locked = 2;
    REFUSED(sv_status_resp_encode(&out, 1, &s), SV_ERR_INVAL);

    memset(&lq, 0, sizeof(lq));
    REFUSED(sv_recon_list_req_encode(&out, 1, &lq), SV_ERR_INVAL);
    lq.limit = SV_WIRE_MAX_LIST + 1;
    REFUSED(sv_recon_list_req_encode(&out, 1, &lq), SV_ERR_INVAL);

    memset(ent, 0, sizeof(ent));
    ent[0].id = 2;
    set_str(ent[0].name, sizeof(ent[0].name), "a");
    ent[0].state = SV_SHARE_ACTIVE;
    ent[1] = ent[0];
    memset(&lr, 0, sizeof(lr));
    lr.more = 1; /* with n = 0 */
    REFUSED(sv_recon_list_resp_encode(&out, 1, &lr), SV_ERR_INVAL);
    lr.n = 1; /* e NULL */
    REFUSED(sv_recon_list_resp_encode(&out, 1, &lr), SV_ERR_INVAL);
    lr.e = ent;
    lr.more = 2;
    REFUSED(sv_recon_list_resp_encode(&out, 1, &lr), SV_ERR_INVAL);
    lr.more = 0;
    lr.n = 2;
    REFUSED(sv_recon_list_resp_encode(&out, 1, &lr), SV_ERR_INVAL); /* id twice */
    ent[1].id = 3;
    ent[1].state = 3;
    REFUSED(sv_recon_list_resp_encode(&out, 1, &lr), SV_ERR_INVAL);
    ent[1].state = SV_SHARE_PENDING;
    ent[0].id = 0;
    REFUSED(sv_recon_list_resp_encode(&out, 1, &lr), SV_ERR_INVAL);
    ent[0].id = 1;
    ent[1].name[0] = '\0';
    REFUSED(sv_recon_list_resp_encode(&out, 1, &lr), SV_ERR_INVAL);
    lr.n = SV_WIRE_MAX_LIST + 1;
    REFUSED(sv_recon_list_resp_encode(&out, 1, &lr), SV_ERR_INVAL);

    memset(ref, 0, sizeof(ref));
    ref[0].id = 9;
    set_str(ref[0].name, sizeof(ref[0].name), "a");
    ref[1] = ref[0];
    ref[1].id = 8;
    memset(&dq, 0, sizeof(dq));
    dq.e = ref;
    REFUSED(sv_recon_delete_req_encode(&out, 1, &dq), SV_ERR_INVAL); /* n = 0 */
    dq.n = 2;
    REFUSED(sv_recon_delete_req_encode(&out, 1, &dq), SV_ERR_INVAL); /* descending */
    dq.n = 1;
    dq.e = NULL;
    REFUSED(sv_recon_delete_req_encode(&out, 1, &dq), SV_ERR_INVAL);
    dq.e = ref;
    ref[0].name[0] = '\0';
    REFUSED(sv_recon_delete_req_encode(&out, 1, &dq), SV_ERR_INVAL);
    dq.n = SV_WIRE_MAX_LIST + 1;
    REFUSED(sv_recon_delete_req_encode(&out, 1, &dq), SV_ERR_INVAL);

    dr.n = SV_WIRE_MAX_LIST + 1;
    REFUSED(sv_recon_delete_resp_encode(&out, 1, &dr), SV_ERR_INVAL);

    memset(&e, 0, sizeof(e));
    REFUSED(sv_error_encode(&out, 1, &e), SV_ERR_INVAL); /* code 0 */
    e.code = SV_WERR_EXISTS + 1;
    REFUSED(sv_error_encode(&out, 1, &e), SV_ERR_INVAL);
    e.code = SV_WERR_BUSY;
    set_str(e.msg, sizeof(e.msg), "tab\there");
    REFUSED(sv_error_encode(&out, 1, &e), SV_ERR_INVAL);
    memset(e.msg, 'x', sizeof(e.msg)); /* no NUL: 201 long */
    REFUSED(sv_error_encode(&out, 1, &e), SV_ERR_INVAL);

    ck_assert_uint_eq(out.len, 0);
    REFUSED(sv_status_req_encode(NULL, 1), SV_ERR_INVAL);
    sv_buf_free(&out);
}
END_TEST

/* No encoder writes a share id over SV_WIRE_MAX_ID. */
START_TEST(test_encode_refuses_big_ids)
{
    const uint64_t big = SV_WIRE_MAX_ID + 1;
    sv_store_resp sr;
    sv_decrypt_req dq;
    sv_decrypt_resp dp;
    sv_release_req rq;
    sv_recon_list_req lq;
    sv_recon_list_resp lr;
    sv_recon_delete_req xq;
    sv_recon_entry ent;
    sv_recon_ref ref;
    uint8_t pt[1] = { 0 };
    sv_buf out, sec;

    sv_buf_init(&out, 0, 0);
    sv_buf_init(&sec, 1, 0);

    memset(&sr, 0, sizeof(sr));
    sr.n = 1;
    sr.share_id[0] = big;
    REFUSED(sv_store_resp_encode(&out, 1, &sr), SV_ERR_INVAL);
    sr.share_id[0] = SV_WIRE_MAX_ID;
    ck_assert_int_eq(sv_store_resp_encode(&out, 1, &sr), SV_OK);
    sv_buf_reset(&out);

    make_decrypt(&dq, 1, 16);
    dq.f[0].share_id = big;
    ck_assert_int_eq(sv_decrypt_req_encode(&sec, 1, &dq), SV_ERR_INVAL);
    ck_assert_uint_eq(sec.len, 0);

    memset(&dp, 0, sizeof(dp));
    dp.n = 1;
    dp.f[0].pt = pt;
    dp.f[0].pt_len = 1;
    dp.f[0].new_share_id = big;
    ck_assert_int_eq(sv_decrypt_resp_encode(&sec, 1, &dp), SV_ERR_INVAL);
    ck_assert_uint_eq(sec.len, 0);

    memset(&rq, 0, sizeof(rq));
    rq.n = 1;
    set_str(rq.f[0].name, sizeof(rq.f[0].name), "a");
    rq.f[0].drop_id = big;
    REFUSED(sv_release_req_encode(&out, 1, &rq), SV_ERR_INVAL);
    rq.f[0].drop_id = 1;
    rq.f[0].keep_id = big;
    REFUSED(sv_release_req_encode(&out, 1, &rq), SV_ERR_INVAL);

    memset(&lq, 0, sizeof(lq));
    lq.limit = 1;
    lq.after_id = big;
    REFUSED(sv_recon_list_req_encode(&out, 1, &lq), SV_ERR_INVAL);

    memset(&ent, 0, sizeof(ent));
    ent.id = big;
    set_str(ent.name, sizeof(ent.name), "a");
    ent.state = SV_SHARE_ACTIVE;
    memset(&lr, 0, sizeof(lr));
    lr.n = 1;
    lr.e = &ent;
    REFUSED(sv_recon_list_resp_encode(&out, 1, &lr), SV_ERR_INVAL);

    memset(&ref, 0, sizeof(ref));
    ref.id = big;
    set_str(ref.name, sizeof(ref.name), "a");
    memset(&xq, 0, sizeof(xq));
    xq.n = 1;
    xq.e = &ref;
    REFUSED(sv_recon_delete_req_encode(&out, 1, &xq), SV_ERR_INVAL);

    sv_buf_free(&out);
    sv_buf_free(&sec);
}
END_TEST

/* A message whose body would pass SV_WIRE_MAX_BODY is refused whole. */
START_TEST(test_encode_too_large)
{
    sv_decrypt_req m;
    sv_decrypt_resp r;
    sv_buf out;
    const uint8_t *body;
    size_t len;
    unsigned i, n;

    sv_buf_init(&out, 1, 0);
    sv_buf_put(&out, "x", 1);
    make_decrypt(&m, SV_WIRE_MAX_FIELDS, SV_DATUM_MAX + SV_HPKE_TAG_LEN);
    REFUSED(sv_decrypt_req_encode(&out, 1, &m), SV_ERR_WIRE_TOO_LARGE);
    /* the most fields of the largest size that fit */
    for (n = SV_WIRE_MAX_FIELDS; n > 0; n--) {
        make_decrypt(&m, n, SV_DATUM_MAX + SV_HPKE_TAG_LEN);
        if (sv_decrypt_req_encode(&out, 1, &m) == SV_OK)
            break;
    }
    ck_assert_uint_eq(n, 15);
    ck_assert_uint_le(out.len - 1, SV_WIRE_HDR_LEN + SV_WIRE_MAX_BODY);

    sv_buf_reset(&out);
    memset(&r, 0, sizeof(r));
    r.n = SV_WIRE_MAX_FIELDS;
    for (i = 0; i < r.n; i++) {
        r.f[i].pt = CT;
        r.f[i].pt_len = SV_DATUM_MAX;
    }
    REFUSED(sv_decrypt_resp_encode(&out, 1, &r), SV_ERR_WIRE_TOO_LARGE);
    r.n = 15;
    ck_assert_int_eq(sv_decrypt_resp_encode(&out, 1, &r), SV_OK);
    body = one_frame(&out, SV_MSG_DECRYPT_OK, 1, &len);
    ck_assert_int_eq(sv_decrypt_resp_decode(body, len, &r), SV_OK);
    ck_assert_uint_eq(r.n, 15);
    sv_buf_free(&out);
}
END_TEST

/* The output buffer's own cap and sticky failure are honoured. */
START_TEST(test_encode_buffer_limits)
{
    sv_store_req m;
    sv_buf out;

    make_store(&m, 3);
    sv_buf_init(&out, 1, 64);
    sv_buf_put(&out, "abc", 3);
    REFUSED(sv_store_req_encode(&out, 1, &m), SV_ERR_WIRE_TOO_LARGE);
    ck_assert_int_eq(sv_status_req_encode(&out, 1), SV_OK); /* 14 bytes fit */
    ck_assert_uint_eq(out.len, 3 + SV_WIRE_HDR_LEN + 2);
    sv_buf_free(&out);

    sv_buf_init(&out, 1, 0);
    sv_buf_put(&out, NULL, 1); /* poison it */
    ck_assert_int_eq(sv_status_req_encode(&out, 1), SV_ERR_INVAL);
    ck_assert_uint_eq(out.len, 0);
    sv_buf_free(&out);
}
END_TEST

/* RECON_SCAN (check): a whole page both ways, every share state. */
START_TEST(test_rt_recon_scan)
{
    sv_buf out;
    sv_recon_scan_req q, qd;
    sv_recon_scan_resp r, rd;
    sv_scan_entry *e;
    const uint8_t *body;
    size_t len;
    unsigned i;

    sv_buf_init(&out, 0, 0);
    q.after_id = SV_WIRE_MAX_ID;
    q.limit = SV_WIRE_MAX_LIST;
    ck_assert_int_eq(sv_recon_scan_req_encode(&out, 11, &q), SV_OK);
    body = one_frame(&out, SV_MSG_RECON_SCAN, 11, &len);
    ck_assert_uint_eq(len, 12);
    ck_assert_int_eq(sv_recon_scan_req_decode(body, len, &qd), SV_OK);
    ck_assert(qd.after_id == SV_WIRE_MAX_ID);
    ck_assert_uint_eq(qd.limit, SV_WIRE_MAX_LIST);

    e = calloc(SV_WIRE_MAX_LIST, sizeof(*e));
    ck_assert_ptr_nonnull(e);
    for (i = 0; i < SV_WIRE_MAX_LIST; i++) {
        e[i].id = 1 + 2 * (uint64_t)i;
        memcpy(e[i].uuid, UUID, 16);
        e[i].uuid[1] = (uint8_t)i;
        snprintf(e[i].name, sizeof(e[i].name), "f%u", i % 5);
        e[i].state = i % 2 ? SV_SHARE_ACTIVE : SV_SHARE_PENDING;
        e[i].created = 1700000000u + i;
        e[i].retired = i % 3 ? 0 : UINT64_MAX - i; /* any value: 0 means in use */
    }
    r.more = 1;
    r.min_grace_s = UINT32_MAX;
    r.total = UINT64_MAX;
    r.n = SV_WIRE_MAX_LIST;
    r.e = e;
    sv_buf_reset(&out);
    ck_assert_int_eq(sv_recon_scan_resp_encode(&out, 12, &r), SV_OK);
    body = one_frame(&out, SV_MSG_RECON_SCAN_OK, 12, &len);
    ck_assert_int_eq(sv_recon_scan_resp_decode(body, len, &rd), SV_OK);
    ck_assert_uint_eq(rd.more, 1);
    ck_assert_uint_eq(rd.min_grace_s, UINT32_MAX);
    ck_assert(rd.total == UINT64_MAX);
    ck_assert_uint_eq(rd.n, SV_WIRE_MAX_LIST);
    for (i = 0; i < SV_WIRE_MAX_LIST; i++) {
        ck_assert(rd.e[i].id == e[i].id);
        ck_assert_mem_eq(rd.e[i].uuid, e[i].uuid, 16);
        ck_assert_str_eq(rd.e[i].name, e[i].name);
        ck_assert_uint_eq(rd.e[i].state, e[i].state);
        ck_assert(rd.e[i].created == e[i].created);
        ck_assert(rd.e[i].retired == e[i].retired);
    }
    sv_recon_scan_resp_free(&rd);
    ck_assert_ptr_null(rd.e);
    sv_recon_scan_resp_free(&rd); /* twice is harmless */
    /* a whole page fits the body limit with the longest names */
    for (i = 0; i < SV_WIRE_MAX_LIST; i++)
        memset(e[i].name, 'n', SV_FIELD_MAX);
    sv_buf_reset(&out);
    ck_assert_int_eq(sv_recon_scan_resp_encode(&out, 13, &r), SV_OK);
    free(e);
    sv_buf_free(&out);
}
END_TEST

static void
bb_scan_entry(uint64_t id, const char *name, uint8_t state, uint64_t retired)
{
    bb_entry(id, name, state);
    sv_buf_put_u64(&bb, retired);
}

START_TEST(test_recon_scan_rules)
{
    static const struct {
        unsigned limit;
        sv_status st;
    } lim[] = { { 0, SV_ERR_WIRE_MALFORMED }, { 1, SV_OK }, { 1000, SV_OK },
                { 1001, SV_ERR_WIRE_MALFORMED }, { 65535, SV_ERR_WIRE_MALFORMED } };
    sv_recon_scan_resp r;

    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        bb_start();
        sv_buf_put_u64(&bb, 0);
        sv_buf_put_u16(&bb, (uint16_t)lim[i].limit);
        bb_zero(2);
        ck_assert_int_eq(bb_decode(SV_MSG_RECON_SCAN), lim[i].st);
    }
    /* the cursor is an id: at most 2^63-1 */
    bb_start();
    sv_buf_put_u64(&bb, SV_WIRE_MAX_ID + 1);
    sv_buf_put_u16(&bb, 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_SCAN), SV_ERR_WIRE_MALFORMED);
    /* answers (the rules they share with RECON_LIST_OK: test_recon_rules):
     * an entry without its retired time; one retired */
    bb_listing_head(SV_MSG_RECON_SCAN_OK, 0, 1);
    bb_entry(5, "a", 1);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_SCAN_OK), SV_ERR_WIRE_TRUNCATED);
    bb_listing_head(SV_MSG_RECON_SCAN_OK, 0, 1);
    bb_scan_entry(5, "a", 2, 1700000000);
    bb_zero(2);
    ck_assert_int_eq(bb_decode(SV_MSG_RECON_SCAN_OK), SV_OK);
    /* a refused answer leaves the output zeroed, nothing allocated */
    memset(&r, 0xa5, sizeof(r));
    ck_assert_int_eq(sv_recon_scan_resp_decode((const uint8_t *)"\1", 1, &r),
                     SV_ERR_WIRE_TRUNCATED);
    ck_assert_ptr_null(r.e);
    ck_assert_uint_eq(r.n, 0);
}
END_TEST

START_TEST(test_encode_refuses_recon_scan)
{
    sv_buf out;
    sv_recon_scan_req q;
    sv_recon_scan_resp r;
    sv_scan_entry e[2];

    sv_buf_init(&out, 0, 0);
    memset(&q, 0, sizeof(q));
    REFUSED(sv_recon_scan_req_encode(&out, 1, &q), SV_ERR_INVAL); /* limit 0 */
    q.limit = SV_WIRE_MAX_LIST + 1;
    REFUSED(sv_recon_scan_req_encode(&out, 1, &q), SV_ERR_INVAL);
    q.limit = 1;
    q.after_id = SV_WIRE_MAX_ID + 1;
    REFUSED(sv_recon_scan_req_encode(&out, 1, &q), SV_ERR_INVAL);
    REFUSED(sv_recon_scan_req_encode(&out, 1, NULL), SV_ERR_INVAL);

    memset(&r, 0, sizeof(r));
    memset(e, 0, sizeof(e));
    r.more = 1;
    REFUSED(sv_recon_scan_resp_encode(&out, 1, &r), SV_ERR_INVAL); /* more, no entries */
    r.more = 0;
    r.n = 1;
    REFUSED(sv_recon_scan_resp_encode(&out, 1, &r), SV_ERR_INVAL); /* n without e */
    r.e = e;
    e[0].id = 4;
    snprintf(e[0].name, sizeof(e[0].name), "a");
    REFUSED(sv_recon_scan_resp_encode(&out, 1, &r), SV_ERR_INVAL); /* state 0 */
    e[0].state = SV_SHARE_ACTIVE;
    e[1] = e[0];
    r.n = 2;
    REFUSED(sv_recon_scan_resp_encode(&out, 1, &r), SV_ERR_INVAL); /* id twice */
    e[1].id = 5;
    e[1].name[0] = '\0';
    REFUSED(sv_recon_scan_resp_encode(&out, 1, &r), SV_ERR_INVAL); /* empty name */
    snprintf(e[1].name, sizeof(e[1].name), "b");
    e[1].id = 0;
    REFUSED(sv_recon_scan_resp_encode(&out, 1, &r), SV_ERR_INVAL); /* id 0 */
    e[1].id = 5;
    ck_assert_int_eq(sv_recon_scan_resp_encode(&out, 1, &r), SV_OK);
    sv_buf_free(&out);
}
END_TEST

static Suite *
wire_suite(void)
{
    Suite *s = suite_create("sv_wire");
    TCase *tc = tcase_create("roundtrip");
    int n = (int)wsample_count();

    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rt_store);
    tcase_add_test(tc, test_rt_store_resp);
    tcase_add_test(tc, test_rt_decrypt);
    tcase_add_test(tc, test_rt_decrypt_resp);
    tcase_add_test(tc, test_decrypt_sizes);
    tcase_add_test(tc, test_frame_type);
    tcase_add_test(tc, test_rt_release);
    tcase_add_test(tc, test_rt_confirm);
    tcase_add_test(tc, test_rt_status);
    tcase_add_test(tc, test_rt_recon);
    tcase_add_test(tc, test_rt_recon_scan);
    tcase_add_test(tc, test_rt_error);
    tcase_add_loop_test(tc, test_rt_samples, 0, n);
    tcase_add_test(tc, test_several_frames_in_one_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("refusals");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_truncated_every_offset, 0, n);
    tcase_add_loop_test(tc, test_trailing, 0, n);
    tcase_add_test(tc, test_hdr_fields);
    tcase_add_test(tc, test_hdr_too_large);
    tcase_add_test(tc, test_hdr_magic_version);
    tcase_add_test(tc, test_hdr_types);
    tcase_add_test(tc, test_frame_args);
    tcase_add_test(tc, test_counts_fields);
    tcase_add_test(tc, test_counts_lists);
    tcase_add_test(tc, test_field_names);
    tcase_add_test(tc, test_actor_names);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_flags_and_ranges);
    tcase_add_test(tc, test_recon_rules);
    tcase_add_test(tc, test_recon_scan_rules);
    tcase_add_test(tc, test_id_range);
    tcase_add_test(tc, test_error_rules);
    tcase_add_loop_test(tc, test_extensions, 0, n);
    tcase_add_test(tc, test_extension_truncated);
    tcase_add_test(tc, test_failure_zeroes_output);
    suite_add_tcase(s, tc);

    tc = tcase_create("encoders");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_encode_refuses_store);
    tcase_add_test(tc, test_encode_refuses_decrypt);
    tcase_add_test(tc, test_encode_refuses_others);
    tcase_add_test(tc, test_encode_refuses_recon_scan);
    tcase_add_test(tc, test_encode_refuses_big_ids);
    tcase_add_test(tc, test_encode_too_large);
    tcase_add_test(tc, test_encode_buffer_limits);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    sr = srunner_create(wire_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
