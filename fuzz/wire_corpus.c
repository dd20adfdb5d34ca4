/*
 * wire_corpus.c - write the wire seed corpus (fuzz/corpus/wire/), and say
 * what the C decoders make of any frame.
 *
 *   fuzz/wire_corpus gen DIR          write every seed into DIR
 *   fuzz/wire_corpus classify FILE... print "<class> <file>" for each file
 *
 * Every seed is one frame, as a peer would send it, named
 * "<message>-<class>[-<detail>]" where <message> is the message type in
 * lower case (or "frame" for header-level cases) and <class> the result
 * the decoders must give:
 *
 *   valid       accepted (SV_OK)
 *   truncated   SV_ERR_WIRE_TRUNCATED     toolarge     SV_ERR_WIRE_TOO_LARGE
 *   version     SV_ERR_WIRE_VERSION       type         SV_ERR_WIRE_TYPE
 *   malformed   SV_ERR_WIRE_MALFORMED     trailing     SV_ERR_WIRE_TRAILING
 *   unsupported SV_ERR_WIRE_UNSUPPORTED
 *
 * The generator checks each seed against the C decoders before writing it
 * and fails if one does not give its class; t/test_svwire.py holds the
 * Python codec to the same names, and uses `classify` to compare the two
 * codecs on mutated frames. Output is deterministic, so a run over the
 * committed directory changes nothing unless the protocol did.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sv_buf.h"
#include "sv_wire.h"
#include "wire_samples.h"

static const char *outdir;
static unsigned written;
static int failures;
static sv_buf b; /* body under construction */

static const uint8_t U[SV_UUID_LEN] = {
    0x3f, 0x2a, 0x8c, 0x41, 0x9e, 0x07, 0x4b, 0x6d,
    0xa1, 0x55, 0x0c, 0x7e, 0x92, 0xd3, 0x18, 0x64};
static uint8_t K[64];

/* Corpus class name of a decoder status. */
static const char *
class_name(sv_status st)
{
    switch (st) {
    case SV_OK: return "valid";
    case SV_ERR_WIRE_TRUNCATED: return "truncated";
    case SV_ERR_WIRE_TOO_LARGE: return "toolarge";
    case SV_ERR_WIRE_VERSION: return "version";
    case SV_ERR_WIRE_TYPE: return "type";
    case SV_ERR_WIRE_MALFORMED: return "malformed";
    case SV_ERR_WIRE_TRAILING: return "trailing";
    case SV_ERR_WIRE_UNSUPPORTED: return "unsupported";
    default: return "other";
    }
}

/* The decoders' verdict on one frame. */
static sv_status
classify(const uint8_t *p, size_t n)
{
    sv_wire_hdr h;
    const uint8_t *body;
    sv_status st;

    if ((st = sv_wire_frame(p, n, &h, &body)) != SV_OK)
        return st;
    return wsample_decode(h.type, body, h.body_len);
}

static void
emit_raw(const char *name, const uint8_t *p, size_t n, sv_status want)
{
    char path[4096];
    FILE *f;
    sv_status got = classify(p, n);

    if (got != want) {
        fprintf(stderr, "wire_corpus: %s: decoders say %s, want %s\n",
                name, class_name(got), class_name(want));
        failures++;
        return;
    }
    if (snprintf(path, sizeof(path), "%s/%s", outdir, name) >= (int)sizeof(path)) {
        fprintf(stderr, "wire_corpus: path too long\n");
        exit(1);
    }
    if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "wire_corpus: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    written++;
}

static void
hdr(uint8_t *p, uint8_t m0, uint8_t m1, uint8_t ver, uint8_t type, uint32_t reqid,
    uint32_t len)
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

/* Wrap the body under construction in a correct header and emit it. */
static void
emit_body(const char *name, uint8_t type, sv_status want)
{
    sv_buf f;

    sv_buf_init(&f, 0, 0);
    if (sv_buf_reserve(&f, SV_WIRE_HDR_LEN) != SV_OK)
        exit(1);
    hdr(f.data, SV_WIRE_MAGIC0, SV_WIRE_MAGIC1, SV_WIRE_VERSION, type, 1, (uint32_t)b.len);
    f.len = SV_WIRE_HDR_LEN;
    sv_buf_put(&f, b.data, b.len);
    if (sv_buf_status(&b) != SV_OK || sv_buf_status(&f) != SV_OK)
        exit(1);
    emit_raw(name, f.data, f.len, want);
    sv_buf_free(&f);
    sv_buf_free(&b);
    sv_buf_init(&b, 0, 0);
}

static void u8(uint8_t v) { sv_buf_put_u8(&b, v); }
static void u16(uint16_t v) { sv_buf_put_u16(&b, v); }
static void u32(uint32_t v) { sv_buf_put_u32(&b, v); }
static void u64(uint64_t v) { sv_buf_put_u64(&b, v); }
static void raw(const void *p, size_t n) { sv_buf_put(&b, p, n); }

static void
str8(const char *s)
{
    u8((uint8_t)strlen(s));
    raw(s, strlen(s));
}

static void
noext(void)
{
    u16(0);
}

static void
store_field(const char *name)
{
    str8(name);
    raw(K, 32);
    raw(K + 32, 32);
}

static void
decrypt_head(const char *actor, uint8_t n)
{
    raw(U, 16);
    str8(actor);
    u32(3000);
    u8(n);
}

static void
decrypt_field(uint64_t id, const char *name, uint32_t ct_len, uint8_t rotate)
{
    u64(id);
    str8(name);
    raw(K, 32);
    raw(K + 32, 32);
    u32(ct_len);
    raw(K, ct_len > 64 ? 64 : ct_len);
    u8(rotate);
    if (rotate == 1) {
        raw(K + 16, 32);
        raw(K + 8, 32);
    }
}

static void
recon_entry(uint64_t id, const char *name, uint8_t state)
{
    u64(id);
    raw(U, 16);
    str8(name);
    u8(state);
    u64(1767225600);
}

static void
scan_entry(uint64_t id, const char *name, uint8_t state, uint64_t retired)
{
    recon_entry(id, name, state);
    u64(retired);
}

/* Valid samples, and their truncations and trailing bytes. */
static void
gen_samples(void)
{
    unsigned i;

    for (i = 0; i < wsample_count(); i++) {
        const wsample_info *si = wsample_get(i);
        sv_buf f;

        sv_buf_init(&f, 1, 0);
        if (wsample_encode(i, &f, 1 + i) != SV_OK) {
            fprintf(stderr, "wire_corpus: sample %s does not encode\n", si->name);
            exit(1);
        }
        emit_raw(si->name, f.data, f.len, SV_OK);
        sv_buf_free(&f);
    }
}

static void
gen_frames(void)
{
    uint8_t h[SV_WIRE_HDR_LEN + 3];
    sv_buf f;

    sv_buf_init(&f, 1, 0);
    if (wsample_encode(0, &f, 9) != SV_OK) /* store-valid */
        exit(1);
    emit_raw("frame-truncated-hdr", f.data, 5, SV_ERR_WIRE_TRUNCATED);
    emit_raw("frame-truncated-body", f.data, f.len - 10, SV_ERR_WIRE_TRUNCATED);
    emit_raw("frame-truncated-empty", f.data, 0, SV_ERR_WIRE_TRUNCATED);
    sv_buf_put_u8(&f, 0x53);
    emit_raw("frame-trailing", f.data, f.len, SV_ERR_WIRE_TRAILING);
    sv_buf_free(&f);

    hdr(h, 'S', 'V', 1, SV_MSG_STORE, 1, SV_WIRE_MAX_BODY + 1);
    emit_raw("frame-toolarge", h, SV_WIRE_HDR_LEN, SV_ERR_WIRE_TOO_LARGE);
    hdr(h, 'S', 'V', 1, SV_MSG_DECRYPT, 1, 0xffffffffu);
    emit_raw("frame-toolarge-max", h, SV_WIRE_HDR_LEN, SV_ERR_WIRE_TOO_LARGE);
    h[12] = h[13] = 0;
    hdr(h, 'X', 'V', 1, SV_MSG_STATUS, 1, 2);
    emit_raw("frame-version-magic", h, SV_WIRE_HDR_LEN + 2, SV_ERR_WIRE_VERSION);
    hdr(h, 'S', 'V', 2, SV_MSG_STATUS, 1, 2);
    emit_raw("frame-version-2", h, SV_WIRE_HDR_LEN + 2, SV_ERR_WIRE_VERSION);
    hdr(h, 'S', 'V', 0, SV_MSG_STATUS, 1, 2);
    emit_raw("frame-version-0", h, SV_WIRE_HDR_LEN + 2, SV_ERR_WIRE_VERSION);
    hdr(h, 'S', 'V', 1, 0x09, 1, 2);
    emit_raw("frame-type-09", h, SV_WIRE_HDR_LEN + 2, SV_ERR_WIRE_TYPE);
    hdr(h, 'S', 'V', 1, 0x00, 1, 2);
    emit_raw("frame-type-00", h, SV_WIRE_HDR_LEN + 2, SV_ERR_WIRE_TYPE);
    hdr(h, 'S', 'V', 1, 0x80, 1, 2);
    emit_raw("frame-type-80", h, SV_WIRE_HDR_LEN + 2, SV_ERR_WIRE_TYPE);
    hdr(h, 'S', 'V', 1, 0xff, 1, 2);
    emit_raw("frame-type-ff", h, SV_WIRE_HDR_LEN + 2, SV_ERR_WIRE_TYPE);
}

static void
gen_store(void)
{
    unsigned i;
    char nm[8];

    raw(U, 16); u8(2); store_field("a"); store_field("b");
    emit_body("store-truncated-noext", SV_MSG_STORE, SV_ERR_WIRE_TRUNCATED);
    raw(U, 16); u8(2); store_field("a"); str8("b"); raw(K, 40);
    emit_body("store-truncated-key", SV_MSG_STORE, SV_ERR_WIRE_TRUNCATED);
    raw(U, 16); u8(1); store_field("a"); noext(); u8(0);
    emit_body("store-trailing", SV_MSG_STORE, SV_ERR_WIRE_TRAILING);
    raw(U, 16); u8(0); noext();
    emit_body("store-malformed-count0", SV_MSG_STORE, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); u8(33);
    for (i = 0; i < 33; i++) {
        snprintf(nm, sizeof(nm), "f%u", i);
        store_field(nm);
    }
    noext();
    emit_body("store-malformed-count33", SV_MSG_STORE, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); u8(1); store_field("full name"); noext();
    emit_body("store-malformed-name", SV_MSG_STORE, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); u8(1); store_field(""); noext();
    emit_body("store-malformed-emptyname", SV_MSG_STORE, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); u8(1);
    store_field("n12345678901234567890123456789012345678901234567890123456789012345");
    noext();
    emit_body("store-malformed-longname", SV_MSG_STORE, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); u8(3); store_field("a"); store_field("b"); store_field("a"); noext();
    emit_body("store-malformed-dupname", SV_MSG_STORE, SV_ERR_WIRE_MALFORMED);

    /* extension block */
    raw(U, 16); u8(1); store_field("a");
    u16(1); u16(0x0042); u16(4); raw("ext!", 4);
    emit_body("store-valid-ext", SV_MSG_STORE, SV_OK);
    raw(U, 16); u8(1); store_field("a");
    u16(2); u16(0x0042); u16(0); u16(0x8043); u16(1); u8(7);
    emit_body("store-unsupported", SV_MSG_STORE, SV_ERR_WIRE_UNSUPPORTED);
    raw(U, 16); u8(1); store_field("a");
    u16(SV_WIRE_MAX_EXT + 1);
    for (i = 0; i <= SV_WIRE_MAX_EXT; i++) {
        u16((uint16_t)(0x0100 + i));
        u16(0);
    }
    emit_body("store-malformed-ext17", SV_MSG_STORE, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); u8(1); store_field("a");
    u16(2); u16(0x0042); u16(0); u16(0x8042); u16(0);
    emit_body("store-malformed-extdup", SV_MSG_STORE, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); u8(1); store_field("a");
    u16(1); u16(0x0042); u16(9); raw("short", 5);
    emit_body("store-truncated-ext", SV_MSG_STORE, SV_ERR_WIRE_TRUNCATED);

    u8(2); u64(5); u64(0); noext();
    emit_body("store_ok-malformed-id0", SV_MSG_STORE_OK, SV_ERR_WIRE_MALFORMED);
    u8(2); u64(5); u64(5); noext();
    emit_body("store_ok-malformed-dupid", SV_MSG_STORE_OK, SV_ERR_WIRE_MALFORMED);
    u8(0); noext();
    emit_body("store_ok-malformed-count0", SV_MSG_STORE_OK, SV_ERR_WIRE_MALFORMED);
}

static void
gen_decrypt(void)
{
    static const uint8_t approval[64] = {0};

    decrypt_head("alice", 1); decrypt_field(1, "a", 20, 1); noext(); u8(0xff);
    emit_body("decrypt-trailing", SV_MSG_DECRYPT, SV_ERR_WIRE_TRAILING);
    decrypt_head("alice", 1); u64(1); str8("a"); raw(K, 64); u32(40); raw(K, 20);
    emit_body("decrypt-truncated-ct", SV_MSG_DECRYPT, SV_ERR_WIRE_TRUNCATED);
    decrypt_head("alice", 1); u64(1); str8("a"); raw(K, 64); u32(20); raw(K, 20); u8(1);
    raw(K, 40);
    emit_body("decrypt-truncated-rotate", SV_MSG_DECRYPT, SV_ERR_WIRE_TRUNCATED);
    decrypt_head("alice", 1); decrypt_field(1, "a", 20, 2); raw(K, 64); noext();
    emit_body("decrypt-malformed-rotate", SV_MSG_DECRYPT, SV_ERR_WIRE_MALFORMED);
    decrypt_head("alice smith", 1); decrypt_field(1, "a", 20, 0); noext();
    emit_body("decrypt-malformed-actor", SV_MSG_DECRYPT, SV_ERR_WIRE_MALFORMED);
    decrypt_head("", 1); decrypt_field(1, "a", 20, 0); noext();
    emit_body("decrypt-malformed-emptyactor", SV_MSG_DECRYPT, SV_ERR_WIRE_MALFORMED);
    decrypt_head("alice", 1); decrypt_field(1, "a", 15, 0); noext();
    emit_body("decrypt-malformed-ctlen", SV_MSG_DECRYPT, SV_ERR_WIRE_MALFORMED);
    decrypt_head("alice", 1); u64(1); str8("a"); raw(K, 64); u32(0xffffffffu); noext();
    emit_body("decrypt-malformed-ctlen-huge", SV_MSG_DECRYPT, SV_ERR_WIRE_MALFORMED);
    decrypt_head("alice", 2); decrypt_field(4, "a", 20, 0); decrypt_field(4, "b", 20, 0);
    noext();
    emit_body("decrypt-malformed-dupid", SV_MSG_DECRYPT, SV_ERR_WIRE_MALFORMED);
    decrypt_head("alice", 2); decrypt_field(4, "a", 20, 0); decrypt_field(5, "a", 20, 1);
    noext();
    emit_body("decrypt-malformed-dupname", SV_MSG_DECRYPT, SV_ERR_WIRE_MALFORMED);
    decrypt_head("alice", 1); decrypt_field(0, "a", 20, 0); noext();
    emit_body("decrypt-malformed-id0", SV_MSG_DECRYPT, SV_ERR_WIRE_MALFORMED);
    decrypt_head("alice", 0); noext();
    emit_body("decrypt-malformed-count0", SV_MSG_DECRYPT, SV_ERR_WIRE_MALFORMED);
    /* the shape a later staff approval takes: an extension on DECRYPT */
    decrypt_head("alice", 1); decrypt_field(1, "a", 20, 1);
    u16(1); u16(0x0001); u16(sizeof(approval)); raw(approval, sizeof(approval));
    emit_body("decrypt-valid-ext", SV_MSG_DECRYPT, SV_OK);
    decrypt_head("alice", 1); decrypt_field(1, "a", 20, 1);
    u16(1); u16(0x8001); u16(sizeof(approval)); raw(approval, sizeof(approval));
    emit_body("decrypt-unsupported", SV_MSG_DECRYPT, SV_ERR_WIRE_UNSUPPORTED);

    u8(1); u32(SV_DATUM_MAX + 1); noext();
    emit_body("decrypt_ok-malformed-ptlen", SV_MSG_DECRYPT_OK, SV_ERR_WIRE_MALFORMED);
    u8(2); u32(1); u8('x'); u64(8); u32(0); u64(8); noext();
    emit_body("decrypt_ok-malformed-dupid", SV_MSG_DECRYPT_OK, SV_ERR_WIRE_MALFORMED);
    u8(1); u32(30); raw(K, 29);
    emit_body("decrypt_ok-truncated", SV_MSG_DECRYPT_OK, SV_ERR_WIRE_TRUNCATED);
}

static void
gen_others(void)
{
    raw(U, 16); u8(1); str8("a"); u64(0); u64(0); noext();
    emit_body("release-malformed-bothzero", SV_MSG_RELEASE, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); u8(1); str8("a"); u64(7); u64(7); noext();
    emit_body("release-malformed-samedropkeep", SV_MSG_RELEASE, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); u8(2); str8("a"); u64(7); u64(8); str8("a"); u64(9); u64(0); noext();
    emit_body("release-malformed-dupname", SV_MSG_RELEASE, SV_ERR_WIRE_MALFORMED);
    u8(33); noext();
    emit_body("release_ok-malformed-count", SV_MSG_RELEASE_OK, SV_ERR_WIRE_MALFORMED);

    noext(); u8(0);
    emit_body("status-trailing", SV_MSG_STATUS, SV_ERR_WIRE_TRAILING);
    u16(1); u16(0xffff); u16(0);
    emit_body("status-unsupported", SV_MSG_STATUS, SV_ERR_WIRE_UNSUPPORTED);
    u8(2); u32(0); u32(0); u64(0); u64(0); u64(0); u64(0); u64(0); u64(0); u64(0); noext();
    emit_body("status_ok-malformed-locked", SV_MSG_STATUS_OK, SV_ERR_WIRE_MALFORMED);

    u32(60); u64(0); u16(0); noext();
    emit_body("recon_list-malformed-limit0", SV_MSG_RECON_LIST, SV_ERR_WIRE_MALFORMED);
    u32(60); u64(0); u16(1001); noext();
    emit_body("recon_list-malformed-limit1001", SV_MSG_RECON_LIST, SV_ERR_WIRE_MALFORMED);
    u8(0); u16(2); recon_entry(9, "a", 1); recon_entry(8, "b", 1); noext();
    emit_body("recon_list_ok-malformed-order", SV_MSG_RECON_LIST_OK, SV_ERR_WIRE_MALFORMED);
    u8(1); u16(0); noext();
    emit_body("recon_list_ok-malformed-more", SV_MSG_RECON_LIST_OK, SV_ERR_WIRE_MALFORMED);
    u8(0); u16(1); recon_entry(9, "a", 3); noext();
    emit_body("recon_list_ok-malformed-state", SV_MSG_RECON_LIST_OK, SV_ERR_WIRE_MALFORMED);
    u8(0); u16(1000); recon_entry(9, "a", 1); noext();
    emit_body("recon_list_ok-truncated-count", SV_MSG_RECON_LIST_OK, SV_ERR_WIRE_TRUNCATED);

    u64(0); u16(0); noext();
    emit_body("recon_scan-malformed-limit0", SV_MSG_RECON_SCAN, SV_ERR_WIRE_MALFORMED);
    u64(UINT64_C(0x8000000000000000)); u16(10); noext();
    emit_body("recon_scan-malformed-cursor", SV_MSG_RECON_SCAN, SV_ERR_WIRE_MALFORMED);
    u8(0); u32(900); u64(2); u16(2); scan_entry(9, "a", 1, 0); scan_entry(9, "b", 1, 0);
    noext();
    emit_body("recon_scan_ok-malformed-order", SV_MSG_RECON_SCAN_OK, SV_ERR_WIRE_MALFORMED);
    u8(1); u32(900); u64(0); u16(0); noext();
    emit_body("recon_scan_ok-malformed-more", SV_MSG_RECON_SCAN_OK, SV_ERR_WIRE_MALFORMED);
    u8(0); u32(900); u64(1); u16(1); scan_entry(9, "a", 0, 1767225600); noext();
    emit_body("recon_scan_ok-malformed-state", SV_MSG_RECON_SCAN_OK, SV_ERR_WIRE_MALFORMED);
    u8(0); u32(900); u64(1); u16(1000); scan_entry(9, "a", 1, 0); noext();
    emit_body("recon_scan_ok-truncated-count", SV_MSG_RECON_SCAN_OK, SV_ERR_WIRE_TRUNCATED);
    u8(0); u32(900); u64(1); u16(1); recon_entry(9, "a", 1); noext();
    emit_body("recon_scan_ok-truncated-noretired", SV_MSG_RECON_SCAN_OK,
              SV_ERR_WIRE_TRUNCATED);

    u32(60); u16(0); noext();
    emit_body("recon_delete-malformed-count0", SV_MSG_RECON_DELETE, SV_ERR_WIRE_MALFORMED);
    u32(60); u16(1000); u64(1); raw(U, 16); str8("a"); noext();
    emit_body("recon_delete-truncated-count", SV_MSG_RECON_DELETE, SV_ERR_WIRE_TRUNCATED);
    u32(60); u16(2); u64(2); raw(U, 16); str8("a"); u64(2); raw(U, 16); str8("b"); noext();
    emit_body("recon_delete-malformed-order", SV_MSG_RECON_DELETE, SV_ERR_WIRE_MALFORMED);
    u16(1001); noext();
    emit_body("recon_delete_ok-malformed-count", SV_MSG_RECON_DELETE_OK,
              SV_ERR_WIRE_MALFORMED);

    u16(0); u32(0); str8("x"); noext();
    emit_body("error-malformed-code", SV_MSG_ERROR, SV_ERR_WIRE_MALFORMED);
    u16(3); u32(0); str8("two\nlines"); noext();
    emit_body("error-malformed-msg", SV_MSG_ERROR, SV_ERR_WIRE_MALFORMED);
    u16(3); u32(0); u8(201);
    {
        char m[201];

        memset(m, 'm', sizeof(m));
        raw(m, sizeof(m));
    }
    noext();
    emit_body("error-malformed-msglen", SV_MSG_ERROR, SV_ERR_WIRE_MALFORMED);

    raw(U, 16); str8("uma"); u8(0); noext();
    emit_body("confirm-malformed-count0", SV_MSG_CONFIRM, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); str8("uma"); u8(2); u64(5); str8("a"); raw(K, 32); u64(5); str8("b");
    raw(K, 32); noext();
    emit_body("confirm-malformed-dupid", SV_MSG_CONFIRM, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); str8("uma"); u8(2); u64(5); str8("a"); raw(K, 32); u64(6); str8("a");
    raw(K, 32); noext();
    emit_body("confirm-malformed-dupname", SV_MSG_CONFIRM, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); str8("uma"); u8(1); u64(0); str8("a"); raw(K, 32); noext();
    emit_body("confirm-malformed-id0", SV_MSG_CONFIRM, SV_ERR_WIRE_MALFORMED);
    raw(U, 16); str8("uma"); u8(1); u64(5); str8("a"); raw(K, 31);
    emit_body("confirm-truncated", SV_MSG_CONFIRM, SV_ERR_WIRE_TRUNCATED);
    u8(1); u8(2); noext();
    emit_body("confirm_ok-malformed-flag", SV_MSG_CONFIRM_OK, SV_ERR_WIRE_MALFORMED);
    u8(0); noext();
    emit_body("confirm_ok-malformed-count0", SV_MSG_CONFIRM_OK, SV_ERR_WIRE_MALFORMED);
}

/* classify FILE...: one line per file, "<class> <file>". */
static int
classify_files(int n, char **files)
{
    int i, rc = 0;

    for (i = 0; i < n; i++) {
        FILE *f = fopen(files[i], "rb");
        uint8_t *p = malloc(SV_WIRE_HDR_LEN + SV_WIRE_MAX_BODY + 2);
        size_t len;

        if (f == NULL || p == NULL) {
            fprintf(stderr, "wire_corpus: %s: %s\n", files[i], strerror(errno));
            free(p);
            if (f != NULL)
                fclose(f);
            rc = 1;
            continue;
        }
        len = fread(p, 1, SV_WIRE_HDR_LEN + SV_WIRE_MAX_BODY + 2, f);
        fclose(f);
        printf("%s %s\n", class_name(classify(p, len)), files[i]);
        free(p);
    }
    return rc;
}

int
main(int argc, char **argv)
{
    unsigned i;

    if (argc >= 2 && strcmp(argv[1], "classify") == 0)
        return classify_files(argc - 2, argv + 2);
    if (argc != 3 || strcmp(argv[1], "gen") != 0) {
        fprintf(stderr, "usage: %s gen DIR | classify FILE...\n", argv[0]);
        return 2;
    }
    outdir = argv[2];
    for (i = 0; i < sizeof(K); i++)
        K[i] = (uint8_t)(0x40 + i);
    sv_buf_init(&b, 0, 0);
    gen_samples();
    gen_frames();
    gen_store();
    gen_decrypt();
    gen_others();
    sv_buf_free(&b);
    if (failures) {
        fprintf(stderr, "wire_corpus: %d seeds do not give their class\n", failures);
        return 1;
    }
    printf("wire_corpus: wrote %u seeds to %s\n", written, outdir);
    return 0;
}
