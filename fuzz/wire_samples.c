/*
 * wire_samples.c - sample wire messages and a generic decoder (see
 * wire_samples.h).
 */
#include "config.h"

#include <string.h>

#include "wire_samples.h"

static const wsample_info samples[] = {
    {"store-valid", SV_MSG_STORE},
    {"store-valid-max", SV_MSG_STORE},
    {"store_ok-valid", SV_MSG_STORE_OK},
    {"decrypt-valid", SV_MSG_DECRYPT},
    {"decrypt-valid-norotate", SV_MSG_DECRYPT},
    {"decrypt_ok-valid", SV_MSG_DECRYPT_OK},
    {"release-valid", SV_MSG_RELEASE},
    {"release_ok-valid", SV_MSG_RELEASE_OK},
    {"status-valid", SV_MSG_STATUS},
    {"status_ok-valid", SV_MSG_STATUS_OK},
    {"recon_list-valid", SV_MSG_RECON_LIST},
    {"recon_list_ok-valid", SV_MSG_RECON_LIST_OK},
    {"recon_list_ok-valid-empty", SV_MSG_RECON_LIST_OK},
    {"recon_delete-valid", SV_MSG_RECON_DELETE},
    {"recon_delete_ok-valid", SV_MSG_RECON_DELETE_OK},
    {"error-valid", SV_MSG_ERROR},
    {"error-valid-nomsg", SV_MSG_ERROR},
    {"confirm-valid", SV_MSG_CONFIRM},
    {"confirm_ok-valid", SV_MSG_CONFIRM_OK},
    {"recon_scan-valid", SV_MSG_RECON_SCAN},
    {"recon_scan_ok-valid", SV_MSG_RECON_SCAN_OK},
    {"recon_scan_ok-valid-empty", SV_MSG_RECON_SCAN_OK},
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

unsigned
wsample_count(void)
{
    return (unsigned)NSAMPLES;
}

const wsample_info *
wsample_get(unsigned i)
{
    return i < NSAMPLES ? &samples[i] : NULL;
}

/* Deterministic stand-in bytes: not keys, not data. */
static void
fill(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
}

static const uint8_t sample_uuid[SV_UUID_LEN] = {
    0x3f, 0x2a, 0x8c, 0x41, 0x9e, 0x07, 0x4b, 0x6d,
    0xa1, 0x55, 0x0c, 0x7e, 0x92, 0xd3, 0x18, 0x64};

/* Stand-in key material and ciphertexts shared by the samples. */
static uint8_t k_pub[SV_WIRE_MAX_FIELDS][SV_X25519_LEN];
static uint8_t k_share[SV_WIRE_MAX_FIELDS][SV_X25519_LEN];
static uint8_t k_enc[4][SV_HPKE_ENC_LEN];
static uint8_t k_ct[4][64];
static int ready;

static void
samples_init(void)
{
    unsigned i;

    if (ready)
        return;
    for (i = 0; i < SV_WIRE_MAX_FIELDS; i++) {
        fill(k_pub[i], SV_X25519_LEN, 10 + i);
        fill(k_share[i], SV_X25519_LEN, 100 + i);
    }
    for (i = 0; i < 4; i++) {
        fill(k_enc[i], SV_HPKE_ENC_LEN, 200 + i);
        fill(k_ct[i], sizeof(k_ct[i]), 220 + i);
    }
    ready = 1;
}

static void
set_name(char *dst, size_t cap, const char *src)
{
    size_t l = strlen(src);

    if (l >= cap)
        l = cap - 1;
    memcpy(dst, src, l);
    dst[l] = '\0';
}

sv_status
wsample_encode(unsigned i, sv_buf *out, uint32_t reqid)
{
    static const char *names[3] = {"national_id", "card-number", "Notes_2"};
    /* large enough for every sample; static: the DECRYPT request is ~5 KiB */
    static union {
        sv_store_req store;
        sv_store_resp store_ok;
        sv_decrypt_req decrypt;
        sv_decrypt_resp decrypt_ok;
        sv_release_req release;
        sv_release_resp release_ok;
        sv_status_resp status_ok;
        sv_recon_list_req recon_list;
        sv_recon_list_resp recon_list_ok;
        sv_recon_delete_req recon_delete;
        sv_recon_delete_resp recon_delete_ok;
        sv_error_msg error;
        sv_confirm_req confirm;
        sv_confirm_resp confirm_ok;
        sv_recon_scan_req recon_scan;
        sv_recon_scan_resp recon_scan_ok;
    } m;
    sv_recon_entry ent[3];
    sv_scan_entry sent[3];
    sv_recon_ref ref[2];
    unsigned k;
    char nm[8];

    samples_init();
    memset(&m, 0, sizeof(m));
    memset(ent, 0, sizeof(ent));
    memset(sent, 0, sizeof(sent));
    memset(ref, 0, sizeof(ref));
    switch (i) {
    case 0: /* store-valid */
        memcpy(m.store.uuid, sample_uuid, SV_UUID_LEN);
        m.store.n = 3;
        for (k = 0; k < 3; k++) {
            set_name(m.store.f[k].name, sizeof(m.store.f[k].name), names[k]);
            m.store.f[k].pub = k_pub[k];
            m.store.f[k].key2b = k_share[k];
        }
        return sv_store_req_encode(out, reqid, &m.store);
    case 1: /* store-valid-max: SV_WIRE_MAX_FIELDS fields */
        memcpy(m.store.uuid, sample_uuid, SV_UUID_LEN);
        m.store.n = SV_WIRE_MAX_FIELDS;
        for (k = 0; k < SV_WIRE_MAX_FIELDS; k++) {
            nm[0] = 'f';
            nm[1] = (char)('0' + k / 10);
            nm[2] = (char)('0' + k % 10);
            nm[3] = '\0';
            set_name(m.store.f[k].name, sizeof(m.store.f[k].name), nm);
            m.store.f[k].pub = k_pub[k];
            m.store.f[k].key2b = k_share[k];
        }
        return sv_store_req_encode(out, reqid, &m.store);
    case 2: /* store_ok-valid */
        m.store_ok.n = 3;
        m.store_ok.share_id[0] = 1001;
        m.store_ok.share_id[1] = 1002;
        m.store_ok.share_id[2] = UINT64_C(0x0123456789abcdef);
        return sv_store_resp_encode(out, reqid, &m.store_ok);
    case 3: /* decrypt-valid: three fields rotated, the last an empty datum */
        memcpy(m.decrypt.uuid, sample_uuid, SV_UUID_LEN);
        set_name(m.decrypt.actor, sizeof(m.decrypt.actor), "alice.smith@example.org");
        m.decrypt.wait_ms = 5000;
        m.decrypt.n = 3;
        for (k = 0; k < 3; k++) {
            sv_decrypt_field *f = &m.decrypt.f[k];

            f->share_id = 1001 + k;
            set_name(f->name, sizeof(f->name), names[k]);
            f->key2a = k_share[k];
            f->enc = k_enc[k];
            f->ct = k_ct[k];
            f->ct_len = k == 2 ? SV_HPKE_TAG_LEN : 27;
            f->rotate = 1;
            f->new_pub = k_pub[10 + k];
            f->new_key2b = k_share[10 + k];
        }
        return sv_decrypt_req_encode(out, reqid, &m.decrypt);
    case 4: /* decrypt-valid-norotate */
        memcpy(m.decrypt.uuid, sample_uuid, SV_UUID_LEN);
        set_name(m.decrypt.actor, sizeof(m.decrypt.actor), "bob");
        m.decrypt.wait_ms = 0;
        m.decrypt.n = 1;
        m.decrypt.f[0].share_id = 77;
        set_name(m.decrypt.f[0].name, sizeof(m.decrypt.f[0].name), "email");
        m.decrypt.f[0].key2a = k_share[5];
        m.decrypt.f[0].enc = k_enc[3];
        m.decrypt.f[0].ct = k_ct[3];
        m.decrypt.f[0].ct_len = sizeof(k_ct[3]);
        m.decrypt.f[0].rotate = 0;
        return sv_decrypt_req_encode(out, reqid, &m.decrypt);
    case 5: /* decrypt_ok-valid */
        m.decrypt_ok.n = 3;
        m.decrypt_ok.f[0].pt = (const uint8_t *)"123-45-6789";
        m.decrypt_ok.f[0].pt_len = 11;
        m.decrypt_ok.f[0].new_share_id = 2001;
        m.decrypt_ok.f[1].pt = (const uint8_t *)"4111 1111 1111 1111";
        m.decrypt_ok.f[1].pt_len = 19;
        m.decrypt_ok.f[1].new_share_id = 2002;
        m.decrypt_ok.f[2].pt = NULL;
        m.decrypt_ok.f[2].pt_len = 0;
        m.decrypt_ok.f[2].new_share_id = 0;
        return sv_decrypt_resp_encode(out, reqid, &m.decrypt_ok);
    case 6: /* release-valid: rotate commit, rollback, reconcile activation */
        memcpy(m.release.uuid, sample_uuid, SV_UUID_LEN);
        m.release.n = 3;
        for (k = 0; k < 3; k++)
            set_name(m.release.f[k].name, sizeof(m.release.f[k].name), names[k]);
        m.release.f[0].drop_id = 1001;
        m.release.f[0].keep_id = 2001;
        m.release.f[1].drop_id = 2002;
        m.release.f[1].keep_id = 0;
        m.release.f[2].drop_id = 0;
        m.release.f[2].keep_id = 2003;
        return sv_release_req_encode(out, reqid, &m.release);
    case 7: /* release_ok-valid */
        m.release_ok.n = 3;
        return sv_release_resp_encode(out, reqid, &m.release_ok);
    case 8: /* status-valid */
        return sv_status_req_encode(out, reqid);
    case 9: /* status_ok-valid */
        m.status_ok.locked = 1;
        m.status_ok.queue_len = 3;
        m.status_ok.queue_max = 64;
        m.status_ok.locked_since = UINT64_C(1767225600);
        m.status_ok.shares_active = 123456;
        m.status_ok.shares_pending = 2;
        m.status_ok.stores = 40000;
        m.status_ok.decrypts = 1500;
        m.status_ok.refusals = 12;
        m.status_ok.uptime = 86400;
        return sv_status_resp_encode(out, reqid, &m.status_ok);
    case 10: /* recon_list-valid */
        m.recon_list.grace_s = 3600;
        m.recon_list.after_id = 1000;
        m.recon_list.limit = 500;
        return sv_recon_list_req_encode(out, reqid, &m.recon_list);
    case 11: /* recon_list_ok-valid */
        for (k = 0; k < 3; k++) {
            ent[k].id = 1001 + 5 * k;
            memcpy(ent[k].uuid, sample_uuid, SV_UUID_LEN);
            ent[k].uuid[15] = (uint8_t)k;
            set_name(ent[k].name, sizeof(ent[k].name), names[k]);
            ent[k].state = k == 1 ? SV_SHARE_PENDING : SV_SHARE_ACTIVE;
            ent[k].created = UINT64_C(1767225600) + k;
        }
        m.recon_list_ok.more = 1;
        m.recon_list_ok.n = 3;
        m.recon_list_ok.e = ent;
        return sv_recon_list_resp_encode(out, reqid, &m.recon_list_ok);
    case 12: /* recon_list_ok-valid-empty */
        m.recon_list_ok.more = 0;
        m.recon_list_ok.n = 0;
        m.recon_list_ok.e = NULL;
        return sv_recon_list_resp_encode(out, reqid, &m.recon_list_ok);
    case 13: /* recon_delete-valid */
        for (k = 0; k < 2; k++) {
            ref[k].id = 1001 + 10 * k;
            memcpy(ref[k].uuid, sample_uuid, SV_UUID_LEN);
            set_name(ref[k].name, sizeof(ref[k].name), names[k]);
        }
        m.recon_delete.grace_s = 3600;
        m.recon_delete.n = 2;
        m.recon_delete.e = ref;
        return sv_recon_delete_req_encode(out, reqid, &m.recon_delete);
    case 14: /* recon_delete_ok-valid */
        m.recon_delete_ok.n = 2;
        return sv_recon_delete_resp_encode(out, reqid, &m.recon_delete_ok);
    case 15: /* error-valid */
        m.error.code = SV_WERR_RATE_LIMITED;
        m.error.retry_ms = 250;
        set_name(m.error.msg, sizeof(m.error.msg), "rate limited: retry later");
        return sv_error_encode(out, reqid, &m.error);
    case 16: /* error-valid-nomsg */
        m.error.code = SV_WERR_REFUSED;
        m.error.retry_ms = 0;
        m.error.msg[0] = '\0';
        return sv_error_encode(out, reqid, &m.error);
    case 17: /* confirm-valid: an update checks the keys it seals to */
        memcpy(m.confirm.uuid, sample_uuid, SV_UUID_LEN);
        set_name(m.confirm.actor, sizeof(m.confirm.actor), "uma@example.org");
        m.confirm.n = 2;
        for (k = 0; k < 2; k++) {
            set_name(m.confirm.f[k].name, sizeof(m.confirm.f[k].name), names[k]);
            m.confirm.f[k].share_id = 1001 + k;
            m.confirm.f[k].pub = k_pub[k];
        }
        return sv_confirm_req_encode(out, reqid, &m.confirm);
    case 18: /* confirm_ok-valid */
        m.confirm_ok.n = 2;
        m.confirm_ok.ok[0] = 1;
        m.confirm_ok.ok[1] = 0;
        return sv_confirm_resp_encode(out, reqid, &m.confirm_ok);
    case 19: /* recon_scan-valid: check's second page */
        m.recon_scan.after_id = 1000;
        m.recon_scan.limit = 1000;
        return sv_recon_scan_req_encode(out, reqid, &m.recon_scan);
    case 20: /* recon_scan_ok-valid: active, pending, retired */
        for (k = 0; k < 3; k++) {
            sent[k].id = 1001 + 5 * k;
            memcpy(sent[k].uuid, sample_uuid, SV_UUID_LEN);
            sent[k].uuid[15] = (uint8_t)k;
            set_name(sent[k].name, sizeof(sent[k].name), names[k]);
            sent[k].state = k == 1 ? SV_SHARE_PENDING : SV_SHARE_ACTIVE;
            sent[k].created = UINT64_C(1767225600) + k;
            sent[k].retired = k == 2 ? UINT64_C(1767312000) : 0;
        }
        m.recon_scan_ok.more = 1;
        m.recon_scan_ok.min_grace_s = 3600;
        m.recon_scan_ok.total = 123458;
        m.recon_scan_ok.n = 3;
        m.recon_scan_ok.e = sent;
        return sv_recon_scan_resp_encode(out, reqid, &m.recon_scan_ok);
    case 21: /* recon_scan_ok-valid-empty */
        m.recon_scan_ok.min_grace_s = 900;
        return sv_recon_scan_resp_encode(out, reqid, &m.recon_scan_ok);
    default:
        return SV_ERR_INVAL;
    }
}

/* ------------------------------------------------------------------------ */

typedef union {
    sv_store_req store;
    sv_store_resp store_ok;
    sv_decrypt_req decrypt;
    sv_decrypt_resp decrypt_ok;
    sv_release_req release;
    sv_release_resp release_ok;
    sv_status_resp status_ok;
    sv_recon_list_req recon_list;
    sv_recon_list_resp recon_list_ok;
    sv_recon_delete_req recon_delete;
    sv_recon_delete_resp recon_delete_ok;
    sv_error_msg error;
    sv_confirm_req confirm;
    sv_confirm_resp confirm_ok;
    sv_recon_scan_req recon_scan;
    sv_recon_scan_resp recon_scan_ok;
} wmsg;

static sv_status
msg_decode(uint8_t type, const uint8_t *b, size_t l, wmsg *m)
{
    memset(m, 0, sizeof(*m));
    switch (type) {
    case SV_MSG_STORE: return sv_store_req_decode(b, l, &m->store);
    case SV_MSG_STORE_OK: return sv_store_resp_decode(b, l, &m->store_ok);
    case SV_MSG_DECRYPT: return sv_decrypt_req_decode(b, l, &m->decrypt);
    case SV_MSG_DECRYPT_OK: return sv_decrypt_resp_decode(b, l, &m->decrypt_ok);
    case SV_MSG_RELEASE: return sv_release_req_decode(b, l, &m->release);
    case SV_MSG_RELEASE_OK: return sv_release_resp_decode(b, l, &m->release_ok);
    case SV_MSG_STATUS: return sv_status_req_decode(b, l);
    case SV_MSG_STATUS_OK: return sv_status_resp_decode(b, l, &m->status_ok);
    case SV_MSG_RECON_LIST: return sv_recon_list_req_decode(b, l, &m->recon_list);
    case SV_MSG_RECON_LIST_OK: return sv_recon_list_resp_decode(b, l, &m->recon_list_ok);
    case SV_MSG_RECON_DELETE: return sv_recon_delete_req_decode(b, l, &m->recon_delete);
    case SV_MSG_RECON_DELETE_OK:
        return sv_recon_delete_resp_decode(b, l, &m->recon_delete_ok);
    case SV_MSG_ERROR: return sv_error_decode(b, l, &m->error);
    case SV_MSG_CONFIRM: return sv_confirm_req_decode(b, l, &m->confirm);
    case SV_MSG_CONFIRM_OK: return sv_confirm_resp_decode(b, l, &m->confirm_ok);
    case SV_MSG_RECON_SCAN: return sv_recon_scan_req_decode(b, l, &m->recon_scan);
    case SV_MSG_RECON_SCAN_OK: return sv_recon_scan_resp_decode(b, l, &m->recon_scan_ok);
    default: return SV_ERR_WIRE_TYPE;
    }
}

static sv_status
msg_encode(uint8_t type, const wmsg *m, sv_buf *out, uint32_t reqid)
{
    switch (type) {
    case SV_MSG_STORE: return sv_store_req_encode(out, reqid, &m->store);
    case SV_MSG_STORE_OK: return sv_store_resp_encode(out, reqid, &m->store_ok);
    case SV_MSG_DECRYPT: return sv_decrypt_req_encode(out, reqid, &m->decrypt);
    case SV_MSG_DECRYPT_OK: return sv_decrypt_resp_encode(out, reqid, &m->decrypt_ok);
    case SV_MSG_RELEASE: return sv_release_req_encode(out, reqid, &m->release);
    case SV_MSG_RELEASE_OK: return sv_release_resp_encode(out, reqid, &m->release_ok);
    case SV_MSG_STATUS: return sv_status_req_encode(out, reqid);
    case SV_MSG_STATUS_OK: return sv_status_resp_encode(out, reqid, &m->status_ok);
    case SV_MSG_RECON_LIST: return sv_recon_list_req_encode(out, reqid, &m->recon_list);
    case SV_MSG_RECON_LIST_OK:
        return sv_recon_list_resp_encode(out, reqid, &m->recon_list_ok);
    case SV_MSG_RECON_DELETE:
        return sv_recon_delete_req_encode(out, reqid, &m->recon_delete);
    case SV_MSG_RECON_DELETE_OK:
        return sv_recon_delete_resp_encode(out, reqid, &m->recon_delete_ok);
    case SV_MSG_ERROR: return sv_error_encode(out, reqid, &m->error);
    case SV_MSG_CONFIRM: return sv_confirm_req_encode(out, reqid, &m->confirm);
    case SV_MSG_CONFIRM_OK: return sv_confirm_resp_encode(out, reqid, &m->confirm_ok);
    case SV_MSG_RECON_SCAN: return sv_recon_scan_req_encode(out, reqid, &m->recon_scan);
    case SV_MSG_RECON_SCAN_OK:
        return sv_recon_scan_resp_encode(out, reqid, &m->recon_scan_ok);
    default: return SV_ERR_WIRE_TYPE;
    }
}

static void
msg_free(uint8_t type, wmsg *m)
{
    if (type == SV_MSG_RECON_LIST_OK)
        sv_recon_list_resp_free(&m->recon_list_ok);
    else if (type == SV_MSG_RECON_DELETE)
        sv_recon_delete_req_free(&m->recon_delete);
    else if (type == SV_MSG_RECON_SCAN_OK)
        sv_recon_scan_resp_free(&m->recon_scan_ok);
}

sv_status
wsample_decode(uint8_t type, const uint8_t *body, size_t len)
{
    static wmsg m;
    sv_status st;

    st = msg_decode(type, body, len, &m);
    msg_free(type, &m);
    return st;
}

int
wsample_roundtrip(uint8_t type, const uint8_t *body, size_t len, sv_status *st)
{
    static wmsg m, m2;
    sv_wire_hdr h;
    const uint8_t *eb;
    size_t el;
    sv_buf out;
    int rc = -1;

    *st = msg_decode(type, body, len, &m);
    if (*st != SV_OK) {
        msg_free(type, &m);
        return 0;
    }
    sv_buf_init(&out, 1, 0);
    if (msg_encode(type, &m, &out, 0x5a5a5a5a) != SV_OK)
        goto out;
    if (sv_wire_frame(out.data, out.len, &h, &eb) != SV_OK || h.type != type ||
        h.reqid != 0x5a5a5a5a)
        goto out;
    el = h.body_len;
    /* The encoder writes an empty extension block (2 zero bytes) last. */
    if (el < 2 || el > len || eb[el - 2] != 0 || eb[el - 1] != 0)
        goto out;
    if (memcmp(eb, body, el - 2) != 0)
        goto out;
    /* Input without extensions: reproduced byte for byte. */
    if (body[el - 2] == 0 && body[el - 1] == 0 && len != el)
        goto out;
    if (msg_decode(type, eb, el, &m2) != SV_OK)
        goto out;
    msg_free(type, &m2);
    rc = 1;
out:
    msg_free(type, &m);
    sv_buf_free(&out);
    return rc;
}
