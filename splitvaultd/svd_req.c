/*
 * svd_req.c - request handlers: the only code that touches key shares.
 *
 * Each handler decodes strictly (lib/sv_wire), does its work, audits it and
 * encodes one answer. Which client may send which request is the table at
 * the end (by the role of its certificate), checked by the connection
 * before a body is read. No request deletes a share: RELEASE and
 * RECON_DELETE retire shares (svd_store.h), and only within the daily
 * budget of retired shares. DECRYPT is the careful one:
 *
 *   1. refuse at once when the audit log is failing or the daemon is locked;
 *   2. pass the limiter (token buckets, FIFO queue; may trip lock-down);
 *   3. read the shares (and the durable lock state) from the store;
 *   4. per field: the share exists, belongs to the request's record uuid
 *      and field, sk2 = key2a XOR key2b, public(sk2) equals the stored key2
 *      public (constant time), and the datum opens (aad/info per
 *      docs/design.md, "Stored format");
 *      any failure refuses the whole request, with one generic answer;
 *   5. store the rotated shares as pending (when asked) before answering;
 *   6. write the audit entry and wait until it is durable;
 *   7. answer, from secret memory, and cleanse.
 *
 * Missing or mismatched shares still run the same key check and open
 * against a random key, so the time taken says little about which check
 * failed. The reason is logged locally (never the values).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "svd.h"
#include "svd_audit.h"
#include "svd_clock.h"
#include "svd_limit.h"
#include "svd_log.h"
#include "svd_refusal.h"
#include "svd_req.h"
#include "svd_secret.h"
#include "svd_space.h"
#include "svd_store.h"
#include "sv_key2.h"
#include "sv_secret.h"

/* Check sk2 against pk2 and open: WHY_OK, WHY_KEY or WHY_OPEN. */
static int
check_and_open(const uint8_t sk2[SV_X25519_LEN], const uint8_t pk2[SV_X25519_LEN],
               const uint8_t uuid[SV_UUID_LEN], const char *field,
               const uint8_t enc[SV_HPKE_ENC_LEN], const uint8_t *ct, size_t ct_len,
               uint8_t *pt);

/* Generic, fixed answers: nothing in them depends on the data. */
static const char *
error_text(uint16_t code)
{
    switch (code) {
    case SV_WERR_BAD_REQUEST: return "malformed request";
    case SV_WERR_UNSUPPORTED: return "unsupported request";
    case SV_WERR_REFUSED: return "decrypt refused";
    case SV_WERR_RATE_LIMITED: return "rate limited: try again later";
    case SV_WERR_LOCKED_DOWN: return "locked down: decrypts refused until unlocked";
    case SV_WERR_BUSY: return "busy: decrypt queue full";
    case SV_WERR_STORE: return "share store unavailable";
    case SV_WERR_AUDIT: return "audit log unavailable: decrypts and deletions refused";
    case SV_WERR_NOT_ALLOWED: return "not allowed for this client";
    case SV_WERR_NO_SPACE: return "no space: the daemon is below its free-space watermark";
    case SV_WERR_EXISTS: return "record exists: STORE makes new records only";
    default: return "internal error";
    }
}

int
svd_req_error(sv_buf *out, uint32_t reqid, uint16_t code, uint32_t retry_ms)
{
    sv_error_msg m;

    memset(&m, 0, sizeof(m));
    m.code = code;
    m.retry_ms = retry_ms;
    snprintf(m.msg, sizeof(m.msg), "%s", error_text(code));
    return sv_error_encode(out, reqid, &m) == SV_OK ? 0 : -1;
}

uint32_t
svd_req_max_body(uint8_t type)
{
    switch (type) {
    case SV_MSG_STORE: return 64u << 10;
    case SV_MSG_DECRYPT: return SV_WIRE_MAX_BODY;
    case SV_MSG_RELEASE: return 16u << 10;
    case SV_MSG_STATUS: return 1u << 10;
    case SV_MSG_RECON_LIST: return 1u << 10;
    case SV_MSG_RECON_DELETE: return 256u << 10;
    case SV_MSG_CONFIRM: return 16u << 10;
    case SV_MSG_RECON_SCAN: return 1u << 10;
    default: return 0;
    }
}

/*
 * Audit events. Lists are comma-joined field names and decimal share ids;
 * each event's worst case (32 fields of the longest names, the largest ids,
 * the longest actor and peer address) fits one audit line, which the
 * assertions below check at build time for every format (sizeof a format
 * counts its conversions as characters too: an overestimate). Values are
 * tokens without spaces: names the decoders restricted, numbers, and the
 * reasons of why_token().
 */
#define NAMES_MAX (SV_WIRE_MAX_FIELDS * (SV_FIELD_MAX + 1)) /* with commas and NUL */
#define IDS_MAX (SV_WIRE_MAX_FIELDS * 21)                   /* 20 digits and a comma each */
#define PEER_MAX sizeof(((struct svd_peer *)0)->ip)
#define WHY_MAX 24
#define U32_MAX_DIGITS 10
#define U64_MAX_DIGITS 20
#define EV_FITS(fmt, values) \
    _Static_assert(sizeof(fmt) + (values) <= SVD_AUDIT_EVENT_MAX, "audit event may not fit")

#define EV_STORE_OK "event=store outcome=ok record=%s fields=%s shares=%s peer=%s"
EV_FITS(EV_STORE_OK, SV_UUID_STR_LEN + NAMES_MAX + IDS_MAX + PEER_MAX);
#define EV_STORE_FAILED "event=store outcome=failed record=%s fields=%s peer=%s"
EV_FITS(EV_STORE_FAILED, SV_UUID_STR_LEN + NAMES_MAX + PEER_MAX);
#define EV_DECRYPT_OK "event=decrypt outcome=ok actor=%s record=%s fields=%s shares=%s " \
                      "rotated=%s peer=%s"
EV_FITS(EV_DECRYPT_OK, SV_WIRE_MAX_ACTOR + SV_UUID_STR_LEN + NAMES_MAX + 2 * IDS_MAX + PEER_MAX);
#define EV_DECRYPT_REFUSED "event=decrypt outcome=refused why=%s actor=%s record=%s fields=%s " \
                           "shares=%s peer=%s"
EV_FITS(EV_DECRYPT_REFUSED,
        WHY_MAX + SV_WIRE_MAX_ACTOR + SV_UUID_STR_LEN + NAMES_MAX + IDS_MAX + PEER_MAX);
#define EV_RELEASE_REQUESTED "event=release outcome=requested record=%s fields=%s drop=%s " \
                             "keep=%s peer=%s"
EV_FITS(EV_RELEASE_REQUESTED, SV_UUID_STR_LEN + NAMES_MAX + 2 * IDS_MAX + PEER_MAX);
#define EV_RELEASE_DONE "event=release outcome=%s record=%s retired=%u kept=%u refused=%u peer=%s"
EV_FITS(EV_RELEASE_DONE, WHY_MAX + SV_UUID_STR_LEN + 3 * U32_MAX_DIGITS + PEER_MAX);
#define EV_RECON_REQUESTED "event=reconcile outcome=requested requested=%u first=%" PRIu64 \
                           " last=%" PRIu64 " older_than=%" PRIu64 " peer=%s"
EV_FITS(EV_RECON_REQUESTED, U32_MAX_DIGITS + 3 * U64_MAX_DIGITS + PEER_MAX);
#define EV_RECON_DONE "event=reconcile outcome=%s requested=%u retired=%u peer=%s"
EV_FITS(EV_RECON_DONE, WHY_MAX + 2 * U32_MAX_DIGITS + PEER_MAX);


/* An error code as an audit token (sv_wire_error_name has spaces). */
static const char *
why_token(uint16_t code)
{
    switch (code) {
    case SV_WERR_BAD_REQUEST: return "bad-request";
    case SV_WERR_UNSUPPORTED: return "unsupported";
    case SV_WERR_REFUSED: return "refused";
    case SV_WERR_RATE_LIMITED: return "rate-limited";
    case SV_WERR_LOCKED_DOWN: return "locked-down";
    case SV_WERR_BUSY: return "busy";
    case SV_WERR_STORE: return "store-failed";
    case SV_WERR_AUDIT: return "audit-failed";
    case SV_WERR_NOT_ALLOWED: return "not-allowed";
    case SV_WERR_NO_SPACE: return "no-space";
    case SV_WERR_EXISTS: return "exists";
    default: return "internal";
    }
}

/* "a,b,c" of field names into buf (names are [A-Za-z0-9_-]). */
static void
join_names(char *buf, size_t len, unsigned n, const char *(*get)(const void *, unsigned),
           const void *m)
{
    size_t o = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < n && o < len; i++) {
        int w = snprintf(buf + o, len - o, "%s%s", i ? "," : "", get(m, i));
        if (w < 0 || (size_t)w >= len - o) {
            buf[o] = '\0';
            break;
        }
        o += (size_t)w;
    }
    if (n == 0)
        snprintf(buf, len, "-");
}

static void
join_ids(char *buf, size_t len, unsigned n, const uint64_t *ids)
{
    size_t o = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < n && o < len; i++) {
        int w = snprintf(buf + o, len - o, "%s%" PRIu64, i ? "," : "", ids[i]);
        if (w < 0 || (size_t)w >= len - o) {
            buf[o] = '\0';
            break;
        }
        o += (size_t)w;
    }
    if (n == 0)
        snprintf(buf, len, "-");
}

static const char *
store_name(const void *m, unsigned i)
{
    return ((const sv_store_req *)m)->f[i].name;
}

static const char *
decrypt_name(const void *m, unsigned i)
{
    return ((const sv_decrypt_req *)m)->f[i].name;
}

static const char *
release_name(const void *m, unsigned i)
{
    return ((const sv_release_req *)m)->f[i].name;
}

static const char *
confirm_name(const void *m, unsigned i)
{
    return ((const sv_confirm_req *)m)->f[i].name;
}

/* Map a decoder failure to an answer: unknown critical extensions and
 * versions are UNSUPPORTED, everything else BAD_REQUEST. */
static uint16_t
decode_code(sv_status st)
{
    return (st == SV_ERR_WIRE_UNSUPPORTED || st == SV_ERR_WIRE_VERSION ||
            st == SV_ERR_WIRE_TYPE) ? SV_WERR_UNSUPPORTED : SV_WERR_BAD_REQUEST;
}

/* ---- STORE ------------------------------------------------------------------ */

static int
h_store(struct svd_app *app, const struct svd_peer *peer, const sv_wire_hdr *h,
        const uint8_t *body, sv_buf *out, int *close_after)
{
    sv_store_req *m = NULL;
    sv_store_resp resp;
    const char *names[SV_WIRE_MAX_FIELDS];
    const uint8_t *pubs[SV_WIRE_MAX_FIELDS], *k2b[SV_WIRE_MAX_FIELDS];
    char u[SV_UUID_STR_LEN + 1], fl[NAMES_MAX];
    char il[IDS_MAX];
    uint64_t free_b = 0;
    sv_status st;
    int r = -1, exists = 0;

    /* the decoded request only points into body (key2b stays there) */
    if ((m = calloc(1, sizeof(*m))) == NULL)
        goto out;
    if ((st = sv_store_req_decode(body, h->body_len, m)) != SV_OK) {
        svd_warn("%s: STORE refused: %s", peer->addr, sv_strerror(st));
        *close_after = 1;
        r = svd_req_error(out, h->reqid, decode_code(st), 0);
        goto out;
    }
    if (m->n == 0) {
        *close_after = 1;
        r = svd_req_error(out, h->reqid, SV_WERR_BAD_REQUEST, 0);
        goto out;
    }
    memset(&resp, 0, sizeof(resp));
    for (unsigned i = 0; i < m->n; i++) {
        names[i] = m->f[i].name;
        pubs[i] = m->f[i].pub;
        k2b[i] = m->f[i].key2b;
    }
    sv_uuid_format(m->uuid, u);
    join_names(fl, sizeof(fl), m->n, store_name, m);
    /* below the free-space watermark the room left is for audit entries,
     * decrypts, lock-down and unlock (svd_space.h) */
    if (!svd_space_ok(&app->space, &free_b)) {
        char extra[48];
        snprintf(extra, sizeof(extra), " free=%" PRIu64, free_b);
        if (svd_refusal(app->refusals, "no-space", peer->ip, extra))
            svd_err("%s: STORE record=%s refused: %" PRIu64 " bytes free, below "
                    "store.min_free (%" PRIu64 "); more are summarised", peer->addr, u, free_b,
                    app->conf->min_free);
        SVD_COUNT(app, n_refusals);
        r = svd_req_error(out, h->reqid, SV_WERR_NO_SPACE, 60000);
        goto out;
    }
    if (svd_store_put_new(app->store, m->uuid, m->n, names, pubs, k2b, resp.share_id,
                          &exists) != 0) {
        if (exists) {
            /* a record that ever had shares, whatever the fields named:
             * STORE makes new records only (a planted share could otherwise
             * stand in for a record's own) */
            char extra[SV_UUID_STR_LEN + 16];
            snprintf(extra, sizeof(extra), " record=%s", u);
            if (svd_refusal(app->refusals, "store-exists", peer->ip, extra))
                svd_warn("%s: STORE record=%s fields=%s refused: the record has shares "
                         "already (more are summarised)", peer->addr, u, fl);
            SVD_COUNT(app, n_refusals);
            r = svd_req_error(out, h->reqid, SV_WERR_EXISTS, 0);
            goto out;
        }
        svd_err("%s: STORE record=%s failed in the store; nothing stored", peer->addr, u);
        (void)svd_audit_event(app->audit, 0, EV_STORE_FAILED, u, fl, peer->ip);
        r = svd_req_error(out, h->reqid, SV_WERR_STORE, 1000);
        goto out;
    }
    resp.n = m->n;
    join_ids(il, sizeof(il), m->n, resp.share_id);
    /* queued, not waited for: the shares are durable already, and intake
     * must go on when the audit log fails (logged, not refused). The entry
     * is in the log within one group commit (milliseconds). */
    if (svd_audit_event(app->audit, 0, EV_STORE_OK, u, fl, il, peer->ip) != 0)
        svd_err("audit: store of record %s (shares %s) not recorded", u, il);
    SVD_COUNT(app, n_stores);
    svd_debug("%s: STORE record=%s shares=%s", peer->addr, u, il);
    r = sv_store_resp_encode(out, h->reqid, &resp) == SV_OK ? 0 : -1;
out:
    if (m != NULL)
        sv_cleanse(m, sizeof(*m));
    free(m);
    return r;
}

/* ---- DECRYPT ------------------------------------------------------------------ */

/* Why a decrypt was refused: for the local log and the audit only. */
static const char *const refuse_why[] = {
    "ok", "unknown-share", "record-mismatch", "field-mismatch", "bad-state",
    "key-mismatch", "open-failed", "internal",
};
enum { WHY_OK, WHY_UNKNOWN, WHY_RECORD, WHY_FIELD, WHY_STATE, WHY_KEY, WHY_OPEN, WHY_INTERNAL };

struct dstate {                 /* secret: lives in secret memory */
    struct svd_share share[SV_WIRE_MAX_FIELDS];
    uint8_t sk2[SV_X25519_LEN];
    uint8_t dummy[SV_X25519_LEN];
};

static int
check_and_open(const uint8_t sk2[SV_X25519_LEN], const uint8_t pk2[SV_X25519_LEN],
               const uint8_t uuid[SV_UUID_LEN], const char *field,
               const uint8_t enc[SV_HPKE_ENC_LEN], const uint8_t *ct, size_t ct_len,
               uint8_t *pt)
{
    sv_status st;

    /* one key import serves the key check and the open: two scalar
     * multiplications per field, whichever way it fails */
    st = sv_datum_open_checked(sk2, pk2, uuid, field, enc, ct, ct_len, pt);
    return st == SV_OK ? WHY_OK : st == SV_ERR_KEY_MISMATCH ? WHY_KEY : WHY_OPEN;
}

/* Retire the pending shares a refused DECRYPT stored (new_ids[i] != 0 for
 * its rotated fields): nobody learnt their ids, so nothing references
 * them. A failure leaves unreferenced shares for reconcile. */
static void
discard_pending(struct svd_app *app, const struct svd_peer *peer, const sv_decrypt_req *m,
                const uint64_t *new_ids, const char *u)
{
    sv_release_item items[SV_WIRE_MAX_FIELDS];
    unsigned n = 0, retired = 0, kept = 0, refused = 0;

    memset(items, 0, sizeof(items));
    for (unsigned i = 0; i < m->n; i++)
        if (new_ids[i] != 0) {
            snprintf(items[n].name, sizeof(items[n].name), "%s", m->f[i].name);
            items[n].drop_id = new_ids[i];
            n++;
        }
    if (n == 0)
        return;
    if (svd_store_release(app->store, m->uuid, items, n, SVD_RELEASE_DISCARD, &retired, &kept,
                          &refused) != 0 || retired != n)
        svd_err("%s: DECRYPT record=%s: the refused request's pending shares could not all be "
                "retired (%u of %u); reconcile retires them", peer->addr, u, retired, n);
}

static int
h_decrypt(struct svd_app *app, const struct svd_peer *peer, const sv_wire_hdr *h,
          const uint8_t *body, sv_buf *out, int *close_after)
{
    sv_decrypt_req *m = NULL;
    sv_decrypt_resp resp;
    struct dstate *ds = NULL;
    uint8_t *pt[SV_WIRE_MAX_FIELDS];
    size_t ptlen[SV_WIRE_MAX_FIELDS];
    uint64_t ids[SV_WIRE_MAX_FIELDS], new_ids[SV_WIRE_MAX_FIELDS];
    int found[SV_WIRE_MAX_FIELDS];
    char u[SV_UUID_STR_LEN + 1], fl[NAMES_MAX];
    char il[IDS_MAX], nl[IDS_MAX];
    int why = WHY_OK, bad_field = -1, locked = 0, r = -1, expecting = 0, summarise = 0;
    unsigned nrot = 0;
    uint64_t since = 0;
    uint32_t retry = 0;
    uint16_t code = 0;
    sv_status st;

    memset(pt, 0, sizeof(pt));
    memset(&resp, 0, sizeof(resp));
    if ((m = svd_secret_alloc(sizeof(*m))) == NULL || (ds = svd_secret_alloc(sizeof(*ds))) == NULL) {
        r = svd_req_error(out, h->reqid, SV_WERR_INTERNAL, 0);
        goto out;
    }
    if ((st = sv_decrypt_req_decode(body, h->body_len, m)) != SV_OK) {
        svd_warn("%s: DECRYPT refused: %s", peer->addr, sv_strerror(st));
        SVD_COUNT(app, n_refusals);
        {
            char extra[32];
            snprintf(extra, sizeof(extra), " cert=%.16s", peer->fp);
            (void)svd_refusal(app->refusals, "malformed-decrypt", peer->ip, extra);
        }
        *close_after = 1;
        r = svd_req_error(out, h->reqid, decode_code(st), 0);
        goto out;
    }
    sv_uuid_format(m->uuid, u);
    join_names(fl, sizeof(fl), m->n, decrypt_name, m);
    for (unsigned i = 0; i < m->n; i++)
        ids[i] = m->f[i].share_id;
    join_ids(il, sizeof(il), m->n, ids);
    if (m->n == 0) {
        *close_after = 1;
        r = svd_req_error(out, h->reqid, SV_WERR_BAD_REQUEST, 0);
        goto out;
    }

    /* 1. fail closed on a failing audit log; refuse while locked */
    if (!svd_audit_healthy(app->audit)) {
        svd_err("%s: DECRYPT record=%s actor=%s refused: audit log failing", peer->addr, u,
                m->actor);
        code = SV_WERR_AUDIT;
        goto refused;
    }
    /* 2. the limiter */
    switch (svd_limiter_admit(app->limiter, m->actor, m->wait_ms, &retry)) {
    case SVD_ADMIT_OK:
        break;
    case SVD_ADMIT_TIMEOUT:
        code = SV_WERR_RATE_LIMITED;
        goto refused;
    case SVD_ADMIT_BUSY:
        code = SV_WERR_BUSY;
        goto refused;
    case SVD_ADMIT_LOCKED:
        code = SV_WERR_LOCKED_DOWN;
        summarise = 1;
        goto refused;
    case SVD_ADMIT_CLOSING:
        code = SV_WERR_BUSY;
        goto refused;
    case SVD_ADMIT_STORE:
        /* the shared limiter's store did not answer: fail closed */
        svd_err("%s: DECRYPT record=%s actor=%s refused: admission failed in the store "
                "(the shared decrypt limiter; nothing decrypted)", peer->addr, u, m->actor);
        code = SV_WERR_STORE;
        goto refused;
    case SVD_ADMIT_TRIPPED:
        (void)svd_app_lockdown(app, svd_limiter_trip_why(app->limiter), peer->ip);
        code = SV_WERR_LOCKED_DOWN;
        goto refused;
    }
    /* this decrypt's audit entry is on its way: the audit writer may hold
     * its current group open for it (group commit across decrypts) */
    svd_audit_expect(app->audit);
    expecting = 1;
    /* 3. the shares, and the durable lock state (shared with other daemons) */
    if (svd_store_get(app->store, ids, m->n, ds->share, found, &locked, &since) != 0) {
        code = SV_WERR_STORE;
        goto refused;
    }
    if (locked) {
        if (svd_limiter_lockdown(app->limiter, since))
            svd_app_lockdown_seen(app, since);
        code = SV_WERR_LOCKED_DOWN;
        summarise = 1;
        goto refused;
    }
    /* 4. check and open every field; all or nothing. At most ncpu threads
     * do this at once: OpenSSL 3.0's algorithm fetches serialise on a
     * global lock, and a crowd of threads contending for it costs far more
     * than queueing here does. */
    svd_crypto_enter(app);
    for (unsigned i = 0; i < m->n; i++) {
        const sv_decrypt_field *f = &m->f[i];
        struct svd_share *sh = &ds->share[i];
        int fwhy = WHY_OK;

        if (!found[i])
            fwhy = WHY_UNKNOWN;
        else if (sv_memcmp_ct(sh->uuid, m->uuid, SV_UUID_LEN) != 0)
            fwhy = WHY_RECORD;
        else if (strcmp(sh->field, f->name) != 0)
            fwhy = WHY_FIELD;
        else if ((sh->state != SV_SHARE_ACTIVE && sh->state != SV_SHARE_PENDING) ||
                 sh->retired != 0)
            fwhy = WHY_STATE; /* a retired share is never used again */
        ptlen[i] = f->ct_len - SV_HPKE_TAG_LEN;
        if ((pt[i] = svd_secret_alloc(ptlen[i])) == NULL) {
            fwhy = WHY_INTERNAL;
        } else if (fwhy != WHY_OK) {
            /* same work against a random key: no timing hint of the cause */
            if (RAND_bytes(ds->dummy, sizeof(ds->dummy)) != 1)
                memset(ds->dummy, 0x5a, sizeof(ds->dummy));
            sv_key2_combine(f->key2a, ds->dummy, ds->sk2);
            (void)check_and_open(ds->sk2, ds->dummy, m->uuid, f->name, f->enc, f->ct,
                                 f->ct_len, pt[i]);
        } else {
            sv_key2_combine(f->key2a, sh->key2b, ds->sk2);
            fwhy = check_and_open(ds->sk2, sh->pub, m->uuid, f->name, f->enc, f->ct,
                                  f->ct_len, pt[i]);
        }
        sv_cleanse(ds->sk2, sizeof(ds->sk2));
        sv_cleanse(sh->key2b, sizeof(sh->key2b));
        if (fwhy != WHY_OK && why == WHY_OK) {
            why = fwhy;
            bad_field = (int)i;
        }
        if (f->rotate)
            nrot++;
    }
    svd_crypto_leave(app);
    if (why != WHY_OK) {
        svd_warn("%s: DECRYPT record=%s actor=%s refused: field %d (%s, share %" PRIu64 "): %s",
                 peer->addr, u, m->actor, bad_field, m->f[bad_field].name,
                 m->f[bad_field].share_id, refuse_why[why]);
        code = SV_WERR_REFUSED;
        goto refused;
    }
    /* 5. rotate-on-use: the new shares are pending before we answer */
    memset(new_ids, 0, sizeof(new_ids));
    snprintf(nl, sizeof(nl), "-");
    if (nrot > 0) {
        const char *names[SV_WIRE_MAX_FIELDS];
        const uint8_t *pubs[SV_WIRE_MAX_FIELDS], *k2b[SV_WIRE_MAX_FIELDS];
        uint64_t got[SV_WIRE_MAX_FIELDS], replaces[SV_WIRE_MAX_FIELDS];
        uint8_t ru[SV_UUID_LEN];
        unsigned k = 0;

        memcpy(ru, m->uuid, SV_UUID_LEN);
        for (unsigned i = 0; i < m->n; i++)
            if (m->f[i].rotate) {
                names[k] = m->f[i].name;
                pubs[k] = m->f[i].new_pub;
                k2b[k] = m->f[i].new_key2b;
                /* bound to the share it replaces: only a RELEASE naming
                 * exactly that share as drop_id can activate it */
                replaces[k] = m->f[i].share_id;
                k++;
            }
        if (svd_store_put_rotated(app->store, ru, k, names, pubs, k2b, replaces, got) != 0) {
            svd_err("%s: DECRYPT record=%s: storing the rotated shares failed", peer->addr, u);
            code = SV_WERR_STORE;
            goto refused;
        }
        k = 0;
        for (unsigned i = 0; i < m->n; i++)
            if (m->f[i].rotate)
                new_ids[i] = got[k++];
        join_ids(nl, sizeof(nl), m->n, new_ids);
    }
    /* 6. audited before anything leaves */
    svd_audit_unexpect(app->audit);
    expecting = 0;
    if (svd_audit_event(app->audit, 1, EV_DECRYPT_OK, m->actor, u, fl, il, nl,
                        peer->ip) != 0) {
        svd_err("%s: DECRYPT record=%s actor=%s refused: audit log write failed", peer->addr,
                u, m->actor);
        /* nothing of a refused request may stay behind: the pending shares
         * stored for it go again (reconcile removes them if this fails) */
        if (nrot > 0)
            discard_pending(app, peer, m, new_ids, u);
        code = SV_WERR_AUDIT;
        goto refused_noaudit;
    }
    /* 7. answer */
    resp.n = m->n;
    for (unsigned i = 0; i < m->n; i++) {
        resp.f[i].pt = pt[i];
        resp.f[i].pt_len = (uint32_t)ptlen[i];
        resp.f[i].new_share_id = new_ids[i];
    }
    SVD_COUNT(app, n_decrypts);
    svd_info("%s: DECRYPT record=%s actor=%s fields=%s rotated=%s", peer->addr, u, m->actor,
             fl, nl);
    r = sv_decrypt_resp_encode(out, h->reqid, &resp) == SV_OK ? 0 : -1;
    goto out;

refused:
    if (expecting) {
        svd_audit_unexpect(app->audit);
        expecting = 0;
    }
    if (summarise) {
        /* locked down: every decrypt is refused alike, and a client asking
         * again and again must not flood the audit log; the first from a
         * peer at once (with its actor and record), then one entry a period */
        char extra[SV_WIRE_MAX_ACTOR + SV_UUID_STR_LEN + 24];
        snprintf(extra, sizeof(extra), " actor=%s record=%s", m->actor, u);
        (void)svd_refusal(app->refusals, "decrypt-locked-down", peer->ip, extra);
    } else {
        (void)svd_audit_event(app->audit, 0, EV_DECRYPT_REFUSED,
                              code == SV_WERR_REFUSED ? refuse_why[why] : why_token(code),
                              m->actor, u, fl, il, peer->ip);
    }
refused_noaudit:
    SVD_COUNT(app, n_refusals);
    if (code != SV_WERR_REFUSED)
        svd_info("%s: DECRYPT record=%s actor=%s refused: %s", peer->addr, u, m->actor,
                 sv_wire_error_name(code));
    r = svd_req_error(out, h->reqid, code, retry);
out:
    for (unsigned i = 0; i < SV_WIRE_MAX_FIELDS; i++)
        if (pt[i] != NULL)
            svd_secret_free(pt[i], ptlen[i]);
    sv_cleanse(&resp, sizeof(resp));
    if (ds != NULL)
        svd_secret_free(ds, sizeof(*ds));
    if (m != NULL)
        svd_secret_free(m, sizeof(*m));
    return r;
}

/* ---- RELEASE ------------------------------------------------------------------- */

/* Spend n of the daily budget of retired shares. When it is spent: the
 * first time, lock down (recorded by svd_app); every time, a refusal
 * (summarised per peer, so that a client cannot flood the audit log), and
 * 0. what: the request, for the refusal entry. */
static int
retire_budget(struct svd_app *app, const struct svd_peer *peer, unsigned n, const char *what)
{
    enum svd_admit a;
    char extra[48];

    if (n == 0 || (a = svd_limiter_retire(app->limiter, n)) == SVD_ADMIT_OK)
        return 1;
    if (a == SVD_ADMIT_TRIPPED) {
        svd_err("%s: %u share(s) to retire would exceed retention.daily_budget (%u in any 24 "
                "hours): locking down", peer->addr, n, app->conf->retire_budget);
        (void)svd_app_lockdown(app, "retire-budget", peer->ip);
    }
    SVD_COUNT(app, n_refusals);
    snprintf(extra, sizeof(extra), " type=%s shares=%u", what, n);
    if (svd_refusal(app->refusals, "retire-budget", peer->ip, extra))
        svd_warn("%s: %s refused: the daily budget of retired shares is spent (more are "
                 "summarised)", peer->addr, what);
    return 0;
}

/*
 * A front end (SVD_ROLE_FRONTEND) finishes or undoes its rotations: every
 * item names a drop_id (with the keep_id that replaces it, or alone for a
 * pending share). Reconcile (SVD_ROLE_RECONCILE) only activates pending
 * shares the main database references: keep_id alone. Anything else is
 * NOT_ALLOWED, whole.
 */
static int
h_release(struct svd_app *app, const struct svd_peer *peer, const sv_wire_hdr *h,
          const uint8_t *body, sv_buf *out, int *close_after)
{
    sv_release_req m;
    sv_release_resp resp;
    uint64_t drop[SV_WIRE_MAX_FIELDS] = { 0 }, keep[SV_WIRE_MAX_FIELDS] = { 0 };
    char u[SV_UUID_STR_LEN + 1], fl[NAMES_MAX];
    char dl[IDS_MAX], kl[IDS_MAX];
    unsigned retired = 0, kept = 0, refused = 0, ndrop = 0, nkeep_only = 0;
    enum svd_release_mode mode;
    sv_status st;

    if ((st = sv_release_req_decode(body, h->body_len, &m)) != SV_OK) {
        svd_warn("%s: RELEASE refused: %s", peer->addr, sv_strerror(st));
        *close_after = 1;
        return svd_req_error(out, h->reqid, decode_code(st), 0);
    }
    sv_uuid_format(m.uuid, u);
    for (unsigned i = 0; i < m.n; i++) {
        drop[i] = m.f[i].drop_id;
        keep[i] = m.f[i].keep_id;
        if (drop[i] != 0)
            ndrop++;
        else
            nkeep_only++;
    }
    join_names(fl, sizeof(fl), m.n, release_name, &m);
    join_ids(dl, sizeof(dl), m.n, drop);
    join_ids(kl, sizeof(kl), m.n, keep);
    if (nkeep_only == 0 && (peer->roles & SVD_ROLE_FRONTEND))
        mode = SVD_RELEASE_FRONTEND;
    else if (ndrop == 0 && (peer->roles & SVD_ROLE_RECONCILE))
        mode = SVD_RELEASE_RECONCILE;
    else {
        char extra[96];
        snprintf(extra, sizeof(extra), " type=RELEASE role=%s cert=%.16s",
                 svd_role_name(peer->roles), peer->fp);
        SVD_COUNT(app, n_refusals);
        if (svd_refusal(app->refusals, "not-allowed", peer->ip, extra))
            svd_warn("%s: RELEASE record=%s refused: a %s client %s (more are summarised)",
                     peer->addr, u, svd_role_name(peer->roles),
                     nkeep_only > 0 && ndrop > 0 ? "may not mix activations and releases"
                     : ndrop > 0 ? "may not release shares" : "may not activate shares");
        *close_after = 1;
        return svd_req_error(out, h->reqid, SV_WERR_NOT_ALLOWED, 0);
    }
    /* retires key2b (restorable for retention.period): recorded durably
     * first, within the daily budget, or not done at all */
    if (!svd_audit_healthy(app->audit)) {
        svd_err("%s: RELEASE record=%s refused: the audit log cannot record it", peer->addr, u);
        return svd_req_error(out, h->reqid, SV_WERR_AUDIT, 1000);
    }
    if (!retire_budget(app, peer, ndrop, "RELEASE"))
        return svd_req_error(out, h->reqid, SV_WERR_LOCKED_DOWN, 0);
    if (svd_audit_event(app->audit, 1, EV_RELEASE_REQUESTED, u, fl, dl, kl, peer->ip) != 0) {
        svd_err("%s: RELEASE record=%s refused: the audit log cannot record it", peer->addr, u);
        return svd_req_error(out, h->reqid, SV_WERR_AUDIT, 1000);
    }
    if (svd_store_release(app->store, m.uuid, m.f, m.n, mode, &retired, &kept, &refused) != 0) {
        svd_err("%s: RELEASE record=%s failed in the store", peer->addr, u);
        (void)svd_audit_event(app->audit, 0, EV_RELEASE_DONE, "failed", u, 0u, 0u, 0u,
                              peer->ip);
        return svd_req_error(out, h->reqid, SV_WERR_STORE, 1000);
    }
    if (refused > 0)
        svd_warn("%s: RELEASE record=%s: %u item(s) not done (an active share is retired only "
                 "by the rotation that replaces it)", peer->addr, u, refused);
    if (svd_audit_event(app->audit, 0, EV_RELEASE_DONE, "ok", u, retired, kept, refused,
                        peer->ip) != 0)
        svd_err("audit: the outcome of the release of record %s (retired=%u kept=%u) not "
                "recorded; its request is", u, retired, kept);
    svd_debug("%s: RELEASE record=%s retired=%u kept=%u refused=%u", peer->addr, u, retired,
              kept, refused);
    resp.n = m.n;
    return sv_release_resp_encode(out, h->reqid, &resp) == SV_OK ? 0 : -1;
}

/* ---- CONFIRM --------------------------------------------------------------------- */

/*
 * An update seals a new value to the field's key2 public key as the main
 * database holds it; a database writer could swap that key for one of its
 * own and read every later update. The module asks first: is this the key2
 * public of that share, of that record and field, and is the share in use
 * (not retired)? Answered per item; a mismatch is logged and audited.
 * Works while locked down (updates go on, like intake).
 */
static int
h_confirm(struct svd_app *app, const struct svd_peer *peer, const sv_wire_hdr *h,
          const uint8_t *body, sv_buf *out, int *close_after)
{
    sv_confirm_req *m = NULL;
    sv_confirm_resp resp;
    struct svd_share *sh = NULL;  /* without key2b: svd_store_get_public */
    uint64_t ids[SV_WIRE_MAX_FIELDS] = { 0 }, bad[SV_WIRE_MAX_FIELDS] = { 0 };
    int found[SV_WIRE_MAX_FIELDS], r = -1;
    char u[SV_UUID_STR_LEN + 1], fl[NAMES_MAX], il[IDS_MAX], bl[IDS_MAX];
    unsigned nbad = 0;
    sv_status st;

    memset(&resp, 0, sizeof(resp));
    if ((m = calloc(1, sizeof(*m))) == NULL ||
        (sh = calloc(SV_WIRE_MAX_FIELDS, sizeof(*sh))) == NULL) {
        r = svd_req_error(out, h->reqid, SV_WERR_INTERNAL, 0);
        goto out;
    }
    if ((st = sv_confirm_req_decode(body, h->body_len, m)) != SV_OK) {
        svd_warn("%s: CONFIRM refused: %s", peer->addr, sv_strerror(st));
        *close_after = 1;
        r = svd_req_error(out, h->reqid, decode_code(st), 0);
        goto out;
    }
    sv_uuid_format(m->uuid, u);
    join_names(fl, sizeof(fl), m->n, confirm_name, m);
    for (unsigned i = 0; i < m->n; i++)
        ids[i] = m->f[i].share_id;
    join_ids(il, sizeof(il), m->n, ids);
    if (svd_store_get_public(app->store, ids, m->n, sh, found) != 0) {
        svd_err("%s: CONFIRM record=%s shares=%s failed in the store", peer->addr, u, il);
        r = svd_req_error(out, h->reqid, SV_WERR_STORE, 1000);
        goto out;
    }
    resp.n = m->n;
    for (unsigned i = 0; i < m->n; i++) {
        const sv_confirm_item *f = &m->f[i];
        int ok = found[i] && sh[i].retired == 0 &&
                 (sh[i].state == SV_SHARE_ACTIVE || sh[i].state == SV_SHARE_PENDING) &&
                 memcmp(sh[i].uuid, m->uuid, SV_UUID_LEN) == 0 &&
                 strcmp(sh[i].field, f->name) == 0 &&
                 memcmp(sh[i].pub, f->pub, SV_X25519_LEN) == 0;
        resp.ok[i] = (uint8_t)ok;
        if (!ok)
            bad[nbad++] = f->share_id;
    }
    join_ids(bl, sizeof(bl), nbad, bad);
    if (nbad > 0) {
        /* the main database names a key the daemon does not hold: audited
         * as a refusal (the first at once, with the record and shares; the
         * rest summarised, so that a client cannot flood the audit log) */
        char extra[SVD_REFUSAL_EXTRA_MAX];
        snprintf(extra, sizeof(extra), " actor=%s record=%s shares=%.200s", m->actor, u, bl);
        SVD_COUNT(app, n_refusals);
        if (svd_refusal(app->refusals, "confirm-mismatch", peer->ip, extra))
            svd_warn("%s: CONFIRM record=%s actor=%s: share(s) %s not confirmed (unknown, "
                     "retired, of another record or field, or another key2 public: the main "
                     "database may have been changed; more are summarised)", peer->addr, u,
                     m->actor, bl);
    }
    svd_debug("%s: CONFIRM record=%s actor=%s fields=%s shares=%s unconfirmed=%s", peer->addr,
              u, m->actor, fl, il, bl);
    r = sv_confirm_resp_encode(out, h->reqid, &resp) == SV_OK ? 0 : -1;
out:
    free(sh);
    free(m);
    return r;
}

/* ---- STATUS ---------------------------------------------------------------------- */

static int
h_status(struct svd_app *app, const struct svd_peer *peer, const sv_wire_hdr *h,
         const uint8_t *body, sv_buf *out, int *close_after)
{
    sv_status_resp resp;
    sv_status st;
    uint64_t since = 0, retired = 0;

    if ((st = sv_status_req_decode(body, h->body_len)) != SV_OK) {
        svd_warn("%s: STATUS refused: %s", peer->addr, sv_strerror(st));
        *close_after = 1;
        return svd_req_error(out, h->reqid, decode_code(st), 0);
    }
    memset(&resp, 0, sizeof(resp));
    resp.locked = (uint8_t)svd_limiter_locked(app->limiter, &since);
    resp.locked_since = since;
    resp.queue_len = svd_limiter_queue_len(app->limiter);
    resp.queue_max = app->conf->queue_max;
    if (svd_store_counts(app->store, &resp.shares_active, &resp.shares_pending, &retired) != 0)
        return svd_req_error(out, h->reqid, SV_WERR_STORE, 1000);
    resp.stores = SVD_READ(app, n_stores);
    resp.decrypts = SVD_READ(app, n_decrypts);
    resp.refusals = SVD_READ(app, n_refusals);
    resp.uptime = svd_wall_s() - app->started;
    return sv_status_resp_encode(out, h->reqid, &resp) == SV_OK ? 0 : -1;
}

/* ---- reconcile -------------------------------------------------------------------- */

static uint64_t
older_than(struct svd_app *app, uint32_t grace_s)
{
    uint64_t g = grace_s > app->conf->min_grace_s ? grace_s : app->conf->min_grace_s;
    uint64_t now = svd_wall_s();

    return now > g ? now - g : 0;
}

static int
h_recon_list(struct svd_app *app, const struct svd_peer *peer, const sv_wire_hdr *h,
             const uint8_t *body, sv_buf *out, int *close_after)
{
    sv_recon_list_req m;
    sv_recon_list_resp resp;
    sv_recon_entry *e = NULL;
    unsigned n = 0;
    int more = 0, r = -1;
    sv_status st;

    if ((st = sv_recon_list_req_decode(body, h->body_len, &m)) != SV_OK) {
        svd_warn("%s: RECON_LIST refused: %s", peer->addr, sv_strerror(st));
        *close_after = 1;
        return svd_req_error(out, h->reqid, decode_code(st), 0);
    }
    if ((e = calloc(m.limit > 0 ? m.limit : 1, sizeof(*e))) == NULL)
        return svd_req_error(out, h->reqid, SV_WERR_INTERNAL, 0);
    if (svd_store_recon_list(app->store, m.after_id, older_than(app, m.grace_s), m.limit, e, &n,
                             &more) != 0) {
        r = svd_req_error(out, h->reqid, SV_WERR_STORE, 1000);
        goto out;
    }
    memset(&resp, 0, sizeof(resp));
    resp.more = (uint8_t)more;
    resp.n = n;
    resp.e = e;
    svd_debug("%s: RECON_LIST after=%" PRIu64 " -> %u shares%s", peer->addr, m.after_id, n,
              more ? " (more)" : "");
    r = sv_recon_list_resp_encode(out, h->reqid, &resp) == SV_OK ? 0 : -1;
out:
    free(e);
    return r;
}

/*
 * RECON_SCAN (check): a page of every share, retired ones included, with
 * the daemon's minimum grace and the store's share count (for progress).
 * Read-only and no key material, but it names records and fields, and a
 * certificate of the role may ask for pages at will: pages are audited
 * through the summaries refusals use (svd_refusal.h), the first of a peer
 * at once with its cursor and ids (for check, a scan's first page), the
 * others as one count per audit.refusal_period, so that repeating it
 * cannot fill the audit log's disk. Refused while the audit log is failing
 * and below store.min_free; the entry is queued, not waited for, once the
 * answer is encoded.
 */
static int
h_recon_scan(struct svd_app *app, const struct svd_peer *peer, const sv_wire_hdr *h,
             const uint8_t *body, sv_buf *out, int *close_after)
{
    sv_recon_scan_req m;
    sv_recon_scan_resp resp;
    sv_scan_entry *e = NULL;
    uint64_t a = 0, pe = 0, re = 0, free_b = 0;
    unsigned n = 0;
    int more = 0, r = -1;
    sv_status st;
    char extra[160];

    if ((st = sv_recon_scan_req_decode(body, h->body_len, &m)) != SV_OK) {
        svd_warn("%s: RECON_SCAN refused: %s", peer->addr, sv_strerror(st));
        *close_after = 1;
        return svd_req_error(out, h->reqid, decode_code(st), 0);
    }
    if (!svd_audit_healthy(app->audit)) {
        svd_err("%s: RECON_SCAN refused: the audit log cannot record it", peer->addr);
        return svd_req_error(out, h->reqid, SV_WERR_AUDIT, 1000);
    }
    /* below the watermark the room left is for what must keep working */
    if (!svd_space_ok(&app->space, &free_b)) {
        snprintf(extra, sizeof(extra), " type=RECON_SCAN free=%" PRIu64, free_b);
        if (svd_refusal(app->refusals, "no-space", peer->ip, extra))
            svd_err("%s: RECON_SCAN refused: %" PRIu64 " bytes free, below store.min_free "
                    "(%" PRIu64 "); more are summarised", peer->addr, free_b,
                    app->conf->min_free);
        SVD_COUNT(app, n_refusals);
        return svd_req_error(out, h->reqid, SV_WERR_NO_SPACE, 60000);
    }
    if ((e = calloc(m.limit, sizeof(*e))) == NULL)
        return svd_req_error(out, h->reqid, SV_WERR_INTERNAL, 0);
    if (svd_store_recon_scan(app->store, m.after_id, m.limit, e, &n, &more) != 0) {
        r = svd_req_error(out, h->reqid, SV_WERR_STORE, 1000);
        goto out;
    }
    memset(&resp, 0, sizeof(resp));
    /* only the first page counts (the count scans the table); 0 when the
     * count failed */
    if (m.after_id == 0 && svd_store_counts(app->store, &a, &pe, &re) == 0)
        resp.total = a + pe + re;
    resp.more = (uint8_t)more;
    resp.min_grace_s = app->conf->min_grace_s;
    resp.n = n;
    resp.e = e;
    if (sv_recon_scan_resp_encode(out, h->reqid, &resp) != SV_OK) {
        svd_err("%s: RECON_SCAN: the page of %u shares could not be encoded", peer->addr, n);
        goto out;
    }
    snprintf(extra, sizeof(extra), " after=%" PRIu64 " listed=%u first=%" PRIu64 " last=%"
             PRIu64 " more=%d", m.after_id, n, n ? e[0].id : 0, n ? e[n - 1].id : 0, more);
    (void)svd_refusal(app->scans, "listed", peer->ip, extra);
    svd_debug("%s: RECON_SCAN after=%" PRIu64 " -> %u shares%s", peer->addr, m.after_id, n,
              more ? " (more)" : "");
    r = 0;
out:
    free(e);
    return r;
}

static int
h_recon_delete(struct svd_app *app, const struct svd_peer *peer, const sv_wire_hdr *h,
               const uint8_t *body, sv_buf *out, int *close_after)
{
    sv_recon_delete_req m;
    sv_recon_delete_resp resp;
    unsigned retired = 0;
    uint64_t older, first, last, since = 0;
    int r = -1, locked = 0;
    sv_status st;

    memset(&m, 0, sizeof(m));
    if ((st = sv_recon_delete_req_decode(body, h->body_len, &m)) != SV_OK) {
        svd_warn("%s: RECON_DELETE refused: %s", peer->addr, sv_strerror(st));
        *close_after = 1;
        r = svd_req_error(out, h->reqid, decode_code(st), 0);
        goto out;
    }
    older = older_than(app, m.grace_s);
    first = m.e[0].id;
    last = m.e[m.n - 1].id;
    /* never while locked down (here or, on a shared store, by another
     * daemon): a lock-down may be what stops a stolen certificate */
    if (svd_limiter_locked(app->limiter, NULL) ||
        (svd_store_lock_state(app->store, &locked, &since) == 0 && locked)) {
        char extra[48];
        snprintf(extra, sizeof(extra), " type=RECON_DELETE shares=%u", m.n);
        SVD_COUNT(app, n_refusals);
        if (svd_refusal(app->refusals, "reconcile-locked-down", peer->ip, extra))
            svd_warn("%s: RECON_DELETE refused: locked down (more are summarised)", peer->addr);
        r = svd_req_error(out, h->reqid, SV_WERR_LOCKED_DOWN, 0);
        goto out;
    }
    if (!svd_audit_healthy(app->audit)) {
        svd_err("%s: RECON_DELETE refused: the audit log cannot record it", peer->addr);
        r = svd_req_error(out, h->reqid, SV_WERR_AUDIT, 1000);
        goto out;
    }
    if (!retire_budget(app, peer, m.n, "RECON_DELETE")) {
        r = svd_req_error(out, h->reqid, SV_WERR_LOCKED_DOWN, 0);
        goto out;
    }
    /* retires key2b (restorable for retention.period): recorded durably
     * first, or not done at all */
    if (svd_audit_event(app->audit, 1, EV_RECON_REQUESTED, m.n, first, last, older,
                        peer->ip) != 0) {
        svd_err("%s: RECON_DELETE refused: the audit log cannot record it", peer->addr);
        r = svd_req_error(out, h->reqid, SV_WERR_AUDIT, 1000);
        goto out;
    }
    if (svd_store_recon_delete(app->store, m.e, m.n, older, &retired) != 0) {
        (void)svd_audit_event(app->audit, 0, EV_RECON_DONE, "failed", m.n, 0u, peer->ip);
        r = svd_req_error(out, h->reqid, SV_WERR_STORE, 1000);
        goto out;
    }
    if (svd_audit_event(app->audit, 0, EV_RECON_DONE, "ok", m.n, retired, peer->ip) != 0)
        svd_err("audit: the outcome of a reconcile delete (%u retired) not recorded; its "
                "request is", retired);
    svd_info("%s: RECON_DELETE %u requested, %u retired", peer->addr, m.n, retired);
    resp.n = retired;
    r = sv_recon_delete_resp_encode(out, h->reqid, &resp) == SV_OK ? 0 : -1;
out:
    sv_recon_delete_req_free(&m);
    return r;
}

/* ---- dispatch ----------------------------------------------------------------------- */

typedef int (*handler_fn)(struct svd_app *, const struct svd_peer *, const sv_wire_hdr *,
                          const uint8_t *, sv_buf *, int *);

#define F SVD_ROLE_FRONTEND
#define R SVD_ROLE_RECONCILE
#define M SVD_ROLE_MONITOR

/* The requests, and the roles that may send each (docs/privsep.md). */
static const struct {
    uint8_t type;
    unsigned roles;
    handler_fn fn;
} handlers[] = {
    { SV_MSG_STORE, F, h_store },
    { SV_MSG_DECRYPT, F, h_decrypt },
    { SV_MSG_RELEASE, F | R, h_release },   /* each its own items: h_release */
    { SV_MSG_STATUS, F | R | M, h_status },
    { SV_MSG_RECON_LIST, R, h_recon_list },
    { SV_MSG_RECON_DELETE, R, h_recon_delete },
    { SV_MSG_CONFIRM, F, h_confirm },
    { SV_MSG_RECON_SCAN, R, h_recon_scan },   /* check: read-only */
};

#undef F
#undef R
#undef M

int
svd_req_allowed(unsigned roles, uint8_t type)
{
    for (size_t i = 0; i < SVD_ARRAY_LEN(handlers); i++)
        if (handlers[i].type == type)
            return (handlers[i].roles & roles) != 0;
    return 0;
}

int
svd_req_handle(struct svd_app *app, const struct svd_peer *peer, const sv_wire_hdr *h,
               const uint8_t *body, sv_buf *out, int *close_after)
{
    CHECK_OBJ_NOTNULL(app, SVD_APP_MAGIC);
    AN(peer);
    AN(h);
    *close_after = 0;
    for (size_t i = 0; i < SVD_ARRAY_LEN(handlers); i++)
        if (handlers[i].type == h->type) {
            SVD_ASSERT(h->body_len <= svd_req_max_body(h->type));
            /* the connection refused it before reading the body */
            SVD_ASSERT((handlers[i].roles & peer->roles) != 0);
            return handlers[i].fn(app, peer, h, body, out, close_after);
        }
    svd_warn("%s: unexpected message type 0x%02x (%s)", peer->addr, h->type,
             sv_wire_type_name(h->type));
    *close_after = 1;
    return svd_req_error(out, h->reqid, SV_WERR_UNSUPPORTED, 0);
}
