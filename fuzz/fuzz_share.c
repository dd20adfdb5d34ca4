/*
 * fuzz_share.c - libFuzzer target for key1 share files and their
 * combination (lib/sv_share.c): the module parses share files that admins
 * upload at the key location.
 *
 * Input layout (the first byte picks what the rest is):
 *
 *   mode = byte0 & 3
 *   0  rest is a share file text: sv_share_peek, and sv_share_open with
 *      the template passphrase when its KDF line names a cost of at most
 *      CHEAP_WORK (so that the target stays fast)
 *   1  template: byte1 picks a share file made in memory at start-up from
 *      a fixed X25519 key (0 sealed by sv_share_seal, N=32768: peek only;
 *      1 the same share sealed again with scrypt N=16, r=1, p=1, so that
 *      mutations reach the AEAD); bytes 2-3 (big-endian, 0 = none) cut it
 *      to that length; the rest is 3-byte patches {u16 offset modulo the
 *      length, u8 value}. Byte0 bit 2 gives a wrong passphrase.
 *   2  combination: byte1 % 9 = count of shares; then for each share one
 *      index byte and 48 share bytes (missing bytes are zero); every share
 *      claims the fixed key's fingerprint, one split id, k = 2, n = 255
 *      (or byte0 bit 2: k = count)
 *   3  as 2, but the first two shares are two true shares of the fixed
 *      key, and the input patches the rest
 *
 * Oracles, each an abort: a status outside the documented set; an output
 * not zeroed on failure; a peeked share that is not zero or whose headers
 * are out of range; an unmodified template that does not open as its
 * share; a combination that succeeds with another key than the fixed one,
 * or fails with two true shares only.
 *
 * No private key is stored in the corpus: the templates are made here.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sv_hex.h"
#include "sv_share.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define PASS "splitvault fuzz share"
#define CHEAP_WORK 4096 /* N * r * p */

static const uint8_t fixed_sk[SV_X25519_LEN] = {
    0x58, 0x2e, 0x1a, 0x9c, 0x4b, 0x03, 0x7d, 0xe1, 0x28, 0x97, 0x60, 0x3e,
    0xb5, 0x19, 0x46, 0xc4, 0x0b, 0x72, 0x5e, 0xaf, 0x31, 0x8a, 0xd4, 0x68,
    0x1c, 0xa7, 0x33, 0x25, 0x06, 0xfa, 0xc1, 0x50};
static uint8_t fixed_pk[SV_X25519_LEN];
static sv_share truth[3];
static char *templ[2];
static size_t templ_len[2];
static int ready;

static int
all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t i;

    for (i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* The sealed text t re-sealed with scrypt N=16, r=1, p=1 (same salt and
 * nonce): what sv_share_open does, backwards. */
static char *
cheap_template(const char *t, size_t tl, size_t *len)
{
    static const char from[] = "KDF: scrypt N=32768 r=8 p=1\n", to[] = "KDF: scrypt N=16 r=1 p=1\n";
    const char *at = strstr(t, from), *salt_hex, *nonce_hex, *aad, *body;
    uint8_t salt[16], nonce[12], key[32], ct[64];
    char *s, b64[89];
    EVP_CIPHER_CTX *c;
    int n = 0, fin = 0;
    size_t off;

    if (at == NULL || (s = malloc(tl + 1)) == NULL)
        abort();
    off = (size_t)(at - t);
    memcpy(s, t, off);
    memcpy(s + off, to, strlen(to));
    memcpy(s + off + strlen(to), at + strlen(from), tl - off - strlen(from) + 1);
    *len = tl - strlen(from) + strlen(to);
    if ((salt_hex = strstr(s, "Salt: ")) == NULL || (nonce_hex = strstr(s, "Nonce: ")) == NULL
        || sv_hex_decode(salt_hex + 6, 32, salt, sizeof(salt)) != SV_OK
        || sv_hex_decode(nonce_hex + 7, 24, nonce, sizeof(nonce)) != SV_OK)
        abort();
    aad = strchr(s, '\n') + 1;
    body = strstr(s, "\n\n") + 2;
    if (EVP_PBE_scrypt(PASS, strlen(PASS), salt, sizeof(salt), 16, 1, 1, 0, key, 32) != 1
        || (c = EVP_CIPHER_CTX_new()) == NULL
        || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1
        || EVP_EncryptInit_ex(c, NULL, NULL, key, nonce) != 1
        || EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)aad, (int)(body - 1 - aad)) != 1
        || EVP_EncryptUpdate(c, ct, &n, truth[0].share, 48) != 1
        || EVP_EncryptFinal_ex(c, ct + 48, &fin) != 1
        || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, ct + 48) != 1)
        abort();
    EVP_CIPHER_CTX_free(c);
    if (EVP_EncodeBlock((unsigned char *)b64, ct, sizeof(ct)) != 88)
        abort();
    memcpy((char *)body, b64, 64);
    memcpy((char *)body + 65, b64 + 64, 24);
    return s;
}

static void
init(void)
{
    EVP_PKEY *k;
    size_t l = SV_X25519_LEN;
    sv_share o;

    if (ready)
        return;
    if ((k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, fixed_sk, SV_X25519_LEN))
            == NULL
        || EVP_PKEY_get_raw_public_key(k, fixed_pk, &l) != 1)
        abort();
    EVP_PKEY_free(k);
    if (sv_share_split(fixed_sk, fixed_pk, 2, 3, truth) != SV_OK)
        abort();
    snprintf(truth[0].holder, sizeof(truth[0].holder), "fuzz.holder@example");
    if (sv_share_seal(&truth[0], PASS, strlen(PASS), &templ[0], &templ_len[0]) != SV_OK)
        abort();
    templ[1] = cheap_template(templ[0], templ_len[0], &templ_len[1]);
    ready = 1;
    if (sv_share_open(templ[1], templ_len[1], PASS, strlen(PASS), &o) != SV_OK
        || memcmp(&o, &truth[0], sizeof(o)) != 0
        || sv_share_peek(templ[0], templ_len[0], &o) != SV_OK)
        abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    init();
    return 0;
}

/* N * r * p of the KDF line, or 0 when there is none to read. */
static unsigned long long
kdf_work(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    unsigned long long n, r, q;
    char line[64];
    size_t l;

    while (p < end && (p = memchr(p, 'K', (size_t)(end - p))) != NULL) {
        l = (size_t)(end - p) < sizeof(line) - 1 ? (size_t)(end - p) : sizeof(line) - 1;
        memcpy(line, p, l);
        line[l] = '\0';
        if (sscanf(line, "KDF: scrypt N=%llu r=%llu p=%llu", &n, &r, &q) == 3)
            return n > CHEAP_WORK || r > CHEAP_WORK || q > CHEAP_WORK ? CHEAP_WORK + 1
                                                                      : n * r * q;
        p++;
    }
    return 0;
}

static void
check_headers(const sv_share *o)
{
    size_t i, hl = strnlen(o->holder, sizeof(o->holder));

    if (strnlen(o->fp, sizeof(o->fp)) != SV_FINGERPRINT_HEX_LEN || o->k < 2
        || o->k > SV_SHARE_MAX_K || o->n < o->k || o->n > SV_SHARE_MAX_N || o->index < 1
        || o->index > o->n || hl > SV_SHARE_HOLDER_MAX)
        abort();
    for (i = 0; i < hl; i++)
        if (o->holder[i] == ' ' || o->holder[i] == '\n')
            abort();
}

/* peek, and open when cheap, on an exactly sized heap copy */
static void
check_text(const char *text, size_t len, const char *pass)
{
    int is_template = (len == templ_len[1] || len + 1 == templ_len[1])
                      && memcmp(text, templ[1], len) == 0;
    sv_share o;
    char *c = malloc(len ? len : 1);
    sv_status st;

    if (c == NULL)
        abort();
    if (len)
        memcpy(c, text, len);
    memset(&o, 0xa5, sizeof(o));
    st = sv_share_peek(c, len, &o);
    if (st == SV_OK) {
        check_headers(&o);
        if (!all_zero(o.share, sizeof(o.share)))
            abort();
    } else if (st == SV_ERR_SHARE_FORMAT || st == SV_ERR_KEY_KDF) {
        if (!all_zero(&o, sizeof(o)))
            abort();
    } else {
        abort();
    }
    if (st == SV_OK && kdf_work(c, len) <= CHEAP_WORK) {
        memset(&o, 0xa5, sizeof(o));
        st = sv_share_open(c, len, pass, strlen(pass), &o);
        if (st == SV_OK) {
            check_headers(&o);
            /* the tag holds: only the template's own text, give or take
             * its last newline, with its passphrase */
            if (strcmp(pass, PASS) != 0 || !is_template
                || memcmp(o.share, truth[0].share, sizeof(o.share)) != 0)
                abort();
        } else if (st != SV_ERR_SHARE_OPEN || !all_zero(&o, sizeof(o))) {
            abort();
        }
    }
    free(c);
}

static void
run_template(uint8_t flags, const uint8_t *p, size_t n)
{
    unsigned t;
    size_t len, cut, i;
    char *s;

    if (n < 3)
        return;
    t = p[0] % 2;
    cut = ((size_t)p[1] << 8) | p[2];
    p += 3;
    n -= 3;
    len = templ_len[t];
    if (cut != 0 && cut < len)
        len = cut;
    if ((s = malloc(len)) == NULL)
        abort();
    memcpy(s, templ[t], len);
    for (i = 0; i + 3 <= n; i += 3)
        s[(((size_t)p[i] << 8) | p[i + 1]) % len] = (char)p[i + 2];
    check_text(s, len, (flags & 4) ? "not the passphrase" : PASS);
    free(s);
}

static void
run_combine(uint8_t flags, int with_truth, const uint8_t *p, size_t n)
{
    sv_share sh[SV_SHARE_MAX_K];
    const sv_share *v[SV_SHARE_MAX_K];
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN];
    unsigned count, i;
    size_t off = 1;
    sv_status st;

    if (n < 1)
        return;
    count = p[0] % (SV_SHARE_MAX_K + 1);
    if (count == 0)
        return;
    for (i = 0; i < count; i++) {
        sh[i] = truth[0];
        memset(sh[i].share, 0, sizeof(sh[i].share));
        sh[i].holder[0] = '\0';
        sh[i].k = (flags & 4) && count >= 2 ? count : 2;
        sh[i].n = SV_SHARE_MAX_N;
        if (with_truth && i < 2) {
            sh[i].index = truth[2 * i].index;
            memcpy(sh[i].share, truth[2 * i].share, sizeof(sh[i].share));
        } else {
            sh[i].index = off < n && p[off] ? p[off] : 1;
            off++;
            if (off < n) {
                size_t m = n - off < sizeof(sh[i].share) ? n - off : sizeof(sh[i].share);
                memcpy(sh[i].share, p + off, m);
                off += m;
            }
        }
        v[i] = &sh[i];
    }
    memset(sk, 0xa5, sizeof(sk));
    memset(pk, 0xa5, sizeof(pk));
    st = sv_share_combine(v, count, sk, pk);
    switch (st) {
    case SV_OK:
        if (memcmp(sk, fixed_sk, sizeof(sk)) != 0 || memcmp(pk, fixed_pk, sizeof(pk)) != 0)
            abort();
        break;
    case SV_ERR_SHARE_MIX:
    case SV_ERR_SHARE_FEW:
    case SV_ERR_KEY_MISMATCH:
        if (!all_zero(sk, sizeof(sk)) || !all_zero(pk, sizeof(pk)))
            abort();
        if (with_truth && count == 2 && sh[0].k == 2)
            abort(); /* two true shares of a 2-of-n */
        break;
    default:
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size < 1)
        return 0;
    switch (data[0] & 3) {
    case 0:
        check_text((const char *)data + 1, size - 1, PASS);
        break;
    case 1:
        run_template(data[0], data + 1, size - 1);
        break;
    default:
        run_combine(data[0], (data[0] & 3) == 3, data + 1, size - 1);
        break;
    }
    return 0;
}
