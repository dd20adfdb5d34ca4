/*
 * sv_wire.h - the module <-> daemon wire protocol, version 1.
 *
 * Full specification: docs/protocol.md. In short, every message is one frame:
 *
 *   offset size  field
 *   0      2     magic "SV" (0x53 0x56)
 *   2      1     version (1)
 *   3      1     type (SV_MSG_*)
 *   4      4     request id, chosen by the client, echoed in the answer
 *   8      4     body length, <= SV_WIRE_MAX_BODY, checked before allocation
 *   12     ...   body
 *
 * Integers are big-endian. Bodies are built from u8/u16/u32/u64, fixed-size
 * byte strings, str8 (u8 length + bytes) and blob32 (u32 length + bytes).
 * Every body ends with an extension block (u16 count, then count x
 * {u16 tag, u16 length, bytes}); tags with bit 0x8000 set are critical: a
 * receiver that does not know one refuses the message. Version 1 defines no
 * extension; unknown non-critical ones are skipped. The DECRYPT request is
 * expected to gain optional extensions (staff approval) in later versions.
 *
 * Decoders are strict: truncated input, oversized counts or lengths, invalid
 * field or actor names, duplicate field names, unknown types, bad flags and
 * trailing bytes are all refused. Decoded messages point into the body
 * buffer (zero copy) for key material and ciphertexts; the body's owner
 * keeps it alive and cleanses it afterwards. Names are copied, NUL-terminated.
 */
#ifndef SV_WIRE_H
#define SV_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include "sv_err.h"
#include "sv_buf.h"
#include "sv_format.h"
#include "sv_hpke.h"

#define SV_WIRE_MAGIC0 0x53
#define SV_WIRE_MAGIC1 0x56
#define SV_WIRE_VERSION 1
#define SV_WIRE_HDR_LEN 12
#define SV_WIRE_MAX_BODY (1u << 20)  /* 1 MiB: hard cap on any body */
#define SV_WIRE_MAX_FIELDS 32        /* fields in one STORE / DECRYPT / RELEASE */
#define SV_WIRE_MAX_ACTOR 64         /* staff name length */
#define SV_WIRE_MAX_MSG 200          /* error message text length */
#define SV_WIRE_MAX_LIST 1000        /* entries in one reconcile list / delete */
#define SV_WIRE_MAX_EXT 16           /* extensions in one message */
/* Share ids are 1..2^63-1 (0: none, where allowed): they are SQL bigints
 * in the share store. Larger values are malformed on the wire. */
#define SV_WIRE_MAX_ID UINT64_C(0x7fffffffffffffff)
#define SV_WIRE_CRITICAL 0x8000

/* Message types. Answers have bit 0x80 set; SV_MSG_ERROR answers anything. */
enum {
    SV_MSG_STORE = 0x01,
    SV_MSG_DECRYPT = 0x02,
    SV_MSG_RELEASE = 0x03,
    SV_MSG_STATUS = 0x04,
    SV_MSG_RECON_LIST = 0x05,
    SV_MSG_RECON_DELETE = 0x06,
    SV_MSG_CONFIRM = 0x07,
    SV_MSG_RECON_SCAN = 0x08,
    SV_MSG_STORE_OK = 0x81,
    SV_MSG_DECRYPT_OK = 0x82,
    SV_MSG_RELEASE_OK = 0x83,
    SV_MSG_STATUS_OK = 0x84,
    SV_MSG_RECON_LIST_OK = 0x85,
    SV_MSG_RECON_DELETE_OK = 0x86,
    SV_MSG_CONFIRM_OK = 0x87,
    SV_MSG_RECON_SCAN_OK = 0x88,
    SV_MSG_ERROR = 0x7f
};

/* Error codes carried by SV_MSG_ERROR. Deliberately coarse: a failed
 * decrypt is SV_WERR_REFUSED whatever the reason (no oracle). */
enum {
    SV_WERR_BAD_REQUEST = 1,  /* malformed frame or message */
    SV_WERR_UNSUPPORTED = 2,  /* version, type or critical extension unknown */
    SV_WERR_REFUSED = 3,      /* decrypt refused: share/record/field/key mismatch */
    SV_WERR_RATE_LIMITED = 4, /* waited in the queue past the allowed time */
    SV_WERR_LOCKED_DOWN = 5,  /* daemon locked down: decrypts refused */
    SV_WERR_BUSY = 6,         /* queue full */
    SV_WERR_STORE = 7,        /* share store failed (nothing stored) */
    SV_WERR_AUDIT = 8,        /* audit log unavailable: decrypts refused */
    SV_WERR_INTERNAL = 9,
    SV_WERR_NOT_ALLOWED = 10, /* request not allowed for this client's role */
    SV_WERR_NO_SPACE = 11,    /* below the daemon's free-space watermark: STORE refused */
    SV_WERR_EXISTS = 12       /* STORE: the record already has shares (new records only) */
};

/* Share states (daemon store). A retired share keeps its state; the store
 * marks it retired apart (it is never on the wire). */
enum { SV_SHARE_ACTIVE = 1, SV_SHARE_PENDING = 2 };

typedef struct {
    uint8_t version;
    uint8_t type;
    uint32_t reqid;
    uint32_t body_len;
} sv_wire_hdr;

/* ---- STORE: all fields of one submission ------------------------------ */
typedef struct {
    char name[SV_FIELD_MAX + 1];
    const uint8_t *pub;   /* 32 bytes: key2 public */
    const uint8_t *key2b; /* 32 bytes: secret */
} sv_store_field;

typedef struct {
    uint8_t uuid[SV_UUID_LEN];
    unsigned n;
    sv_store_field f[SV_WIRE_MAX_FIELDS];
} sv_store_req;

typedef struct {
    unsigned n;
    uint64_t share_id[SV_WIRE_MAX_FIELDS]; /* in request order, never 0 */
} sv_store_resp;

/* ---- DECRYPT: one record's fields ---------------------------------------- */
typedef struct {
    uint64_t share_id;
    char name[SV_FIELD_MAX + 1];
    const uint8_t *key2a; /* 32 bytes: secret */
    const uint8_t *enc;   /* 32 bytes */
    const uint8_t *ct;    /* ct_len bytes, SV_HPKE_TAG_LEN..SV_DATUM_MAX+16 */
    uint32_t ct_len;
    int rotate;           /* 1: new_pub and new_key2b present */
    const uint8_t *new_pub;   /* 32 bytes */
    const uint8_t *new_key2b; /* 32 bytes: secret */
} sv_decrypt_field;

typedef struct {
    uint8_t uuid[SV_UUID_LEN];
    char actor[SV_WIRE_MAX_ACTOR + 1];
    uint32_t wait_ms;     /* longest the client will wait in the queue */
    unsigned n;
    sv_decrypt_field f[SV_WIRE_MAX_FIELDS];
} sv_decrypt_req;

typedef struct {
    const uint8_t *pt;    /* plaintext: secret */
    uint32_t pt_len;
    uint64_t new_share_id; /* pending share when rotated, else 0 */
} sv_decrypt_out;

typedef struct {
    unsigned n;
    sv_decrypt_out f[SV_WIRE_MAX_FIELDS]; /* in request order */
} sv_decrypt_resp;

/* Body bytes of a DECRYPT request, exactly as sv_decrypt_req_encode writes
 * it: the record part for an actor name of actor_len bytes (the most with
 * SV_WIRE_MAX_ACTOR), plus one item per field. A client that splits a
 * record over several requests adds these up against SV_WIRE_MAX_BODY; the
 * encoder sizes its frames with the same functions, so an extension added
 * to DECRYPT changes both at once. */
size_t sv_decrypt_req_size_fixed(size_t actor_len);
size_t sv_decrypt_req_size_field(size_t name_len, size_t ct_len, int rotate);

/* ---- RELEASE: after the main-DB commit ----------------------------------- */
typedef struct {
    char name[SV_FIELD_MAX + 1];
    uint64_t drop_id;  /* share to delete (0: none) */
    uint64_t keep_id;  /* pending share to activate (0: none) */
} sv_release_item;

typedef struct {
    uint8_t uuid[SV_UUID_LEN];
    unsigned n;
    sv_release_item f[SV_WIRE_MAX_FIELDS];
} sv_release_req;

typedef struct {
    unsigned n; /* items processed */
} sv_release_resp;

/* ---- STATUS --------------------------------------------------------------- */
typedef struct {
    uint8_t locked;          /* 1 when locked down */
    uint32_t queue_len;
    uint32_t queue_max;
    uint64_t locked_since;   /* unix seconds, 0 when not locked */
    uint64_t shares_active;
    uint64_t shares_pending;
    uint64_t stores;         /* counters since start */
    uint64_t decrypts;
    uint64_t refusals;
    uint64_t uptime;         /* seconds */
} sv_status_resp;

/* ---- reconcile ------------------------------------------------------------ */
typedef struct {
    uint32_t grace_s;    /* only shares older than this (daemon enforces a minimum) */
    uint64_t after_id;   /* cursor: list ids greater than this */
    uint16_t limit;      /* 1..SV_WIRE_MAX_LIST */
} sv_recon_list_req;

typedef struct {
    uint64_t id;
    uint8_t uuid[SV_UUID_LEN];
    char name[SV_FIELD_MAX + 1];
    uint8_t state;       /* SV_SHARE_* */
    uint64_t created;    /* unix seconds */
} sv_recon_entry;

typedef struct {
    uint8_t more;        /* 1 when entries remain after the last one */
    unsigned n;
    sv_recon_entry *e;   /* n entries; decoder allocates, free with
                            sv_recon_list_resp_free() */
} sv_recon_list_resp;

typedef struct {
    uint64_t id;
    uint8_t uuid[SV_UUID_LEN];
    char name[SV_FIELD_MAX + 1];
} sv_recon_ref;

typedef struct {
    uint32_t grace_s;
    unsigned n;
    sv_recon_ref *e;     /* decoder allocates; free with sv_recon_delete_req_free() */
} sv_recon_delete_req;

typedef struct {
    unsigned n;          /* shares deleted */
} sv_recon_delete_resp;

/* ---- RECON_SCAN: every share, retired ones included (check, read-only) -- */
typedef struct {
    uint64_t after_id;   /* cursor: list ids greater than this (0: start) */
    uint16_t limit;      /* 1..SV_WIRE_MAX_LIST */
} sv_recon_scan_req;

typedef struct {
    uint64_t id;
    uint8_t uuid[SV_UUID_LEN];
    char name[SV_FIELD_MAX + 1];
    uint8_t state;       /* SV_SHARE_*: what it is, or was when retired */
    uint64_t created;    /* unix seconds */
    uint64_t retired;    /* unix seconds; 0: in use */
} sv_scan_entry;

typedef struct {
    uint8_t more;        /* 1 when entries remain after the last one */
    uint32_t min_grace_s; /* the daemon's reconcile.min_grace */
    uint64_t total;      /* shares in the store, retired ones included (an
                            estimate, for progress; 0 when unknown) */
    unsigned n;
    sv_scan_entry *e;    /* n entries; decoder allocates, free with
                            sv_recon_scan_resp_free() */
} sv_recon_scan_resp;

/* ---- CONFIRM: is this the daemon's key2 public for that share? ---------- */
typedef struct {
    char name[SV_FIELD_MAX + 1];
    uint64_t share_id;
    const uint8_t *pub;  /* 32 bytes: the key2 public the main database holds */
} sv_confirm_item;

typedef struct {
    uint8_t uuid[SV_UUID_LEN];
    char actor[SV_WIRE_MAX_ACTOR + 1];
    unsigned n;
    sv_confirm_item f[SV_WIRE_MAX_FIELDS];
} sv_confirm_req;

typedef struct {
    unsigned n;
    uint8_t ok[SV_WIRE_MAX_FIELDS]; /* per item, in request order: 1 confirmed */
} sv_confirm_resp;

/* ---- ERROR ---------------------------------------------------------------- */
typedef struct {
    uint16_t code;       /* SV_WERR_* */
    uint32_t retry_ms;   /* hint, 0 when none */
    char msg[SV_WIRE_MAX_MSG + 1]; /* generic, printable ASCII */
} sv_error_msg;

/* ---- frames ---------------------------------------------------------------- */

/* Decode and check a 12-byte header: magic, version, known type, body length
 * within SV_WIRE_MAX_BODY. Call before allocating the body. */
sv_status sv_wire_hdr_decode(const uint8_t hdr[SV_WIRE_HDR_LEN], sv_wire_hdr *h);

/* The type byte (SV_MSG_*) of the frame that starts at buf[0..len), or 0
 * when len is shorter than a header. */
uint8_t sv_wire_frame_type(const uint8_t *buf, size_t len);

/* Decode one whole frame held in buf[0..len): header plus exactly body_len
 * bytes, nothing after. On success *body points into buf. */
sv_status sv_wire_frame(const uint8_t *buf, size_t len, sv_wire_hdr *h,
                        const uint8_t **body);

/* Encoders append one complete frame (header + body) to out. Inputs are
 * checked as strictly as the decoders check them. */
sv_status sv_store_req_encode(sv_buf *out, uint32_t reqid, const sv_store_req *m);
sv_status sv_store_resp_encode(sv_buf *out, uint32_t reqid, const sv_store_resp *m);
sv_status sv_decrypt_req_encode(sv_buf *out, uint32_t reqid, const sv_decrypt_req *m);
sv_status sv_decrypt_resp_encode(sv_buf *out, uint32_t reqid, const sv_decrypt_resp *m);
sv_status sv_release_req_encode(sv_buf *out, uint32_t reqid, const sv_release_req *m);
sv_status sv_release_resp_encode(sv_buf *out, uint32_t reqid, const sv_release_resp *m);
sv_status sv_status_req_encode(sv_buf *out, uint32_t reqid);
sv_status sv_status_resp_encode(sv_buf *out, uint32_t reqid, const sv_status_resp *m);
sv_status sv_recon_list_req_encode(sv_buf *out, uint32_t reqid, const sv_recon_list_req *m);
sv_status sv_recon_list_resp_encode(sv_buf *out, uint32_t reqid, const sv_recon_list_resp *m);
sv_status sv_recon_delete_req_encode(sv_buf *out, uint32_t reqid, const sv_recon_delete_req *m);
sv_status sv_recon_delete_resp_encode(sv_buf *out, uint32_t reqid, const sv_recon_delete_resp *m);
sv_status sv_recon_scan_req_encode(sv_buf *out, uint32_t reqid, const sv_recon_scan_req *m);
sv_status sv_recon_scan_resp_encode(sv_buf *out, uint32_t reqid, const sv_recon_scan_resp *m);
sv_status sv_confirm_req_encode(sv_buf *out, uint32_t reqid, const sv_confirm_req *m);
sv_status sv_confirm_resp_encode(sv_buf *out, uint32_t reqid, const sv_confirm_resp *m);
sv_status sv_error_encode(sv_buf *out, uint32_t reqid, const sv_error_msg *m);

/* Decoders parse a body (without header) of the given type. */
sv_status sv_store_req_decode(const uint8_t *body, size_t len, sv_store_req *m);
sv_status sv_store_resp_decode(const uint8_t *body, size_t len, sv_store_resp *m);
sv_status sv_decrypt_req_decode(const uint8_t *body, size_t len, sv_decrypt_req *m);
sv_status sv_decrypt_resp_decode(const uint8_t *body, size_t len, sv_decrypt_resp *m);
sv_status sv_release_req_decode(const uint8_t *body, size_t len, sv_release_req *m);
sv_status sv_release_resp_decode(const uint8_t *body, size_t len, sv_release_resp *m);
sv_status sv_status_req_decode(const uint8_t *body, size_t len);
sv_status sv_status_resp_decode(const uint8_t *body, size_t len, sv_status_resp *m);
sv_status sv_recon_list_req_decode(const uint8_t *body, size_t len, sv_recon_list_req *m);
sv_status sv_recon_list_resp_decode(const uint8_t *body, size_t len, sv_recon_list_resp *m);
sv_status sv_recon_delete_req_decode(const uint8_t *body, size_t len, sv_recon_delete_req *m);
sv_status sv_recon_delete_resp_decode(const uint8_t *body, size_t len, sv_recon_delete_resp *m);
sv_status sv_recon_scan_req_decode(const uint8_t *body, size_t len, sv_recon_scan_req *m);
sv_status sv_recon_scan_resp_decode(const uint8_t *body, size_t len, sv_recon_scan_resp *m);
sv_status sv_confirm_req_decode(const uint8_t *body, size_t len, sv_confirm_req *m);
sv_status sv_confirm_resp_decode(const uint8_t *body, size_t len, sv_confirm_resp *m);
sv_status sv_error_decode(const uint8_t *body, size_t len, sv_error_msg *m);

void sv_recon_list_resp_free(sv_recon_list_resp *m);
void sv_recon_delete_req_free(sv_recon_delete_req *m);
void sv_recon_scan_resp_free(sv_recon_scan_resp *m);

/* 1 when s[0..len) is a valid actor (staff) name: 1..SV_WIRE_MAX_ACTOR of
 * [A-Za-z0-9_.@-]. */
int sv_actor_name_valid(const char *s, size_t len);

/* A short name for a message type ("STORE", ...) or "unknown". */
const char *sv_wire_type_name(uint8_t type);

/* A short, generic name for an SV_WERR_* code. */
const char *sv_wire_error_name(uint16_t code);

#endif /* SV_WIRE_H */
